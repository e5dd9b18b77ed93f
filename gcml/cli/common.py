"""Shared command-line pieces: options, config resolution, error handling, console and progress."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from gcml.errors import GcmlError

console = Console()
err_console = Console(stderr=True)


class _State:
    quiet: bool = False
    verbose: bool = False


state = _State()

SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed; the same seed gives the same bytes.")]
WorkersOpt = Annotated[int, typer.Option("--workers", "-j", min=1, help="Worker processes (results do not depend on it).")]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML or YAML file setting any option; command-line values win."),
]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors and the final result.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Print more detail.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:1, or auto (cuda if available).")]
GpusOpt = Annotated[int, typer.Option("--gpus", min=0, help="GPUs to use; >1 runs DistributedDataParallel.")]


def is_quiet(quiet: bool = False) -> bool:
    return quiet or state.quiet


@contextlib.contextmanager
def user_errors(options: dict[str, str] | None = None) -> Iterator[None]:
    """Turn a GcmlError into one red line on stderr and exit code 2.

    Library messages name parameters in backquotes (```distance_mpc```); they are shown as the command's
    option: ``options`` maps parameter -> option (``{"distance_mpc": "--distance"}``), other names become
    ``--name-with-dashes``.
    """
    try:
        yield
    except GcmlError as exc:
        err_console.print(f"[bold red]error:[/] {cli_message(str(exc), options)}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except OSError as exc:
        # A full disk met outside an output's own write (a plot, a library's cache) is still the user's
        # environment, not a gcml bug: one sentence. Other OSErrors are bugs and keep their traceback.
        from gcml.io.common import is_disk_full

        if not is_disk_full(exc):
            raise
        where = getattr(exc, "filename", None)
        err_console.print(f"[bold red]error:[/] disk full{f' writing {where}' if where else ''}",
                          highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except MemoryError:
        err_console.print("[bold red]error:[/] out of memory; use smaller sizes (fewer maps, pixels or stars "
                          "per run) or a machine with more memory", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def cli_message(message: str, options: dict[str, str] | None = None) -> str:
    """``message`` with every backquoted library parameter replaced by its command-line option."""
    import re

    opts = options or {}
    return re.sub(r"`([A-Za-z_][A-Za-z0-9_]*)`", lambda m: opts.get(m.group(1), "--" + m.group(1).replace("_", "-")),
                  message)


def resolve_options(ctx: typer.Context, config_path: Path | None, command: str,
                    skip: tuple[str, ...] = ("config",)) -> dict[str, Any]:
    """Merge defaults < config file < explicit command-line values for the current command.

    Returns a dict of parameter name -> value. Unknown keys in the config file are an error. Commands
    hand :func:`stored_options` of the result to the library function, whose outputs store it.
    """
    values = {k: v for k, v in ctx.params.items() if k not in skip}
    if config_path is not None:
        values = _merge_config(ctx, config_path, command, skip, values)
    check_values(ctx, values)
    return values


def stored_options(command: str, options: dict[str, Any]) -> dict[str, Any]:
    """The record of ``command``'s resolved ``options`` that its outputs store (attribute ``options``, read back
    by ``--config FILE.h5``): passed explicitly to the library function (``options=``), never through a global."""
    from gcml.io.common import options_record

    return options_record(command, options)


def option_name(ctx: typer.Context, name: str) -> str:
    """The long option name (``--sky-mag``) of parameter ``name`` of the running command."""
    for p in ctx.command.params:
        if p.name == name:
            longs = [o for o in getattr(p, "opts", []) if o.startswith("--")]
            return longs[0] if longs else (p.opts[0] if getattr(p, "opts", None) else name)
    return "--" + name.replace("_", "-")


def check_values(ctx: typer.Context, values: dict[str, Any]) -> None:
    """Checks every command gets, in one place: no NaN or infinity in any number option, and a seed that
    numpy, torch and the HDF5 attributes all take (0 <= seed < 2**63)."""
    import math

    from gcml.errors import ConfigError
    from gcml.random import check_seed

    for name, v in values.items():
        if isinstance(v, float) and not math.isfinite(v):
            raise ConfigError(f"option {option_name(ctx, name)}: expected a finite number, got {v}")
        if name == "seed" and v is not None and not isinstance(v, bool):
            check_seed(v, option_name(ctx, name))


def _merge_config(ctx: typer.Context, config_path: Path, command: str, skip: tuple[str, ...],
                  values: dict[str, Any]) -> dict[str, Any]:
    from gcml.config import config_section, load_config_file
    from gcml.errors import ConfigError

    section = config_section(load_config_file(config_path, command), command)
    names = {p.name for p in ctx.command.params}
    unknown = sorted(set(section) - names)
    if unknown:
        raise ConfigError(
            f"config file {config_path}: unknown option(s) for {command}: {', '.join(unknown)}"
        )
    for name, val in section.items():
        if name in skip:
            continue
        src = ctx.get_parameter_source(name)
        if src is None or getattr(src, "name", "") in ("DEFAULT", "DEFAULT_MAP"):
            param = next(p for p in ctx.command.params if p.name == name)
            try:
                if isinstance(val, list) and not getattr(param, "multiple", False):
                    val = ",".join(str(v) for v in val)
                cast = getattr(param, "process_value", None) or param.type_cast_value
                values[name] = cast(ctx, val) if val is not None else None
            except Exception as exc:  # click/typer BadParameter and friends
                msg = getattr(exc, "message", None) or str(exc)
                raise ConfigError(f"config file {config_path}: option {name}: {msg}") from None
    return values


ShardOpt = Annotated[str | None, typer.Option(
    "--shard", help="K/N: compute only part K of N (K from 1; join the parts with 'gcml merge'); auto: from a "
    "SLURM job array (SLURM_ARRAY_TASK_ID/COUNT/MIN, whether the array counts from 0 or 1; see docs/cluster.md).")]


def resolve_shard(options: dict[str, Any]) -> None:
    """Replace ``--shard auto`` by the K/N it means here, in ``options`` (and so in the options outputs store)."""
    from gcml.config import parse_shard_spec

    text = options.get("shard")
    if isinstance(text, str) and text.strip().lower() == "auto":
        k, n = parse_shard_spec(text)  # type: ignore[misc]
        options["shard"] = f"{k}/{n}"


def make_progress(quiet: bool = False) -> Progress:
    """A rich progress bar on stderr (disabled when quiet)."""
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), console=err_console,
        disable=is_quiet(quiet), transient=False,
    )


def print_json(obj: Any) -> None:
    console.print_json(json.dumps(obj))
