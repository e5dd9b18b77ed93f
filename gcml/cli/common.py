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


#: Options of every command that are not settings of its config dataclass: where and how to write or run,
#: not what is computed (checked by tests/test_cli_options.py; a command's own extras are in its CLI_ONLY).
CLI_ONLY = {
    "out": "the output path: a parameter of the library function, not of the config",
    "overwrite": "whether an existing output may be replaced",
    "quiet": "what the CLI prints",
    "config": "the file the options are read from",
    "workers": "processes; results do not depend on them",
    "shard": "which part of the run this process computes (a library-function parameter)",
    "inputs": "the input files (an argument of the library function)",
}


def _field_default(cls: type, name: str) -> Any:
    import dataclasses

    head, _, rest = name.partition(".")
    f = next((f for f in dataclasses.fields(cls) if f.name == head), None)
    if f is None:
        raise AttributeError(f"{cls.__name__} has no field {head!r}")
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        raise AttributeError(f"{cls.__name__}.{head} has no default")
    if rest:
        return _field_default(type(value), rest) if dataclasses.is_dataclass(value) else getattr(value, rest)
    return value


def _text(v: Any) -> str:
    return format(v, "g") if isinstance(v, float) else str(v)


def default(cls: type, name: str, sep: str | None = None) -> Any:
    """The default of field ``name`` of the config dataclass ``cls``, as the command line takes it.

    The one place a CLI default comes from: ``default(SimulateMapsConfig, "extent_kpc")`` is 40.0.
    ``name`` may name a field of a nested dataclass (``"noise.sky_mag"``) or, prefixed with ``!``, the
    negation of a boolean field (``"!rotate"`` for ``--no-rotate``). Tuples become the CLI's text:
    ``sep=":"`` a 'low:high' range (one number when low == high), ``sep=","`` a list; an empty tuple or
    string becomes None (the option's "not given": the library's own default applies).
    """
    if name.startswith("!"):
        return not _field_default(cls, name[1:])
    v = _field_default(cls, name)
    if isinstance(v, tuple):
        if not v:
            return None
        if sep == ":" and len(v) == 2:
            return _text(v[0]) if v[0] == v[1] else f"{_text(v[0])}:{_text(v[1])}"
        if sep is not None:
            return sep.join(_text(x) for x in v)
    if v == "" and sep is None:
        return None
    return v


def field_options(params: dict[str, str], fields: dict[str, str]) -> dict[str, str]:
    """Config field -> command-line option, for messages: ``fields`` maps a command's parameter to the field
    it sets (where the names differ; ``noise.sky_mag`` also maps its last part, ``!rotate`` the field
    ``rotate``), ``params`` a parameter to the option shown for it."""
    out: dict[str, str] = {}
    for param, field in fields.items():
        opt = params.get(param)
        if opt is None:
            continue
        field = field.lstrip("!")
        out.setdefault(field, opt)
        out.setdefault(field.rsplit(".", 1)[-1], opt)
    return out


#: option (parameter) -> the library parameter it sets, where the names differ, for every command that has
#: the option (a command's own ``PARAMETERS`` table adds to it): library messages name the parameter
#: (```fits_dir```), the CLI shows the option (``--fits``). Config fields are in each command's ``FIELDS``.
PARAMETERS = {"fits": "fits_dir", "partial": "partial_series"}


def command_options(ctx: typer.Context | None) -> dict[str, str]:
    """Parameter, library-parameter and config-field names -> the option shown for them, for the command of
    ``ctx`` (its module's ``FIELDS`` and ``PARAMETERS`` tables, and :data:`PARAMETERS`)."""
    import sys

    if ctx is None:
        return {}
    params = {}
    for p in ctx.command.params:
        longs = [o for o in getattr(p, "opts", []) if o.startswith("--")]
        if longs and p.name:
            params[p.name] = longs[0]
    callback = getattr(ctx.command, "callback", None)
    module = sys.modules.get(getattr(callback, "__module__", ""), None)
    out: dict[str, str] = {}
    for table in (getattr(module, "FIELDS", None), getattr(module, "PARAMETERS", None), PARAMETERS):
        for name, opt in field_options(params, table or {}).items():
            out.setdefault(name, opt)
    return {**out, **params}


def is_quiet(quiet: bool = False) -> bool:
    return quiet or state.quiet


@contextlib.contextmanager
def user_errors(options: dict[str, str] | None = None, *, ctx: typer.Context | None = None) -> Iterator[None]:
    """Turn a GcmlError into one red line on stderr and exit code 2.

    Library messages name parameters in backquotes (```distance_mpc```); every message is shown with them
    replaced by the command's option: ``options`` maps parameter -> option (``{"distance_mpc": "--distance"}``);
    then, given the command's ``ctx`` (every command passes it), its own parameters, the config fields its
    module's ``FIELDS`` table maps (``extent_kpc`` -> ``--extent``) and the library parameters of its
    ``PARAMETERS`` and the shared :data:`PARAMETERS` (``fits_dir`` -> ``--fits``); other names become
    ``--name-with-dashes``.
    """
    try:
        yield
    except GcmlError as exc:
        names = {**command_options(ctx), **(options or {})}
        err_console.print(f"[bold red]error:[/] {cli_message(str(exc), names)}", highlight=False, soft_wrap=True)
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


def print_warning(text: str) -> None:
    """A library warning on stderr, its backquoted parameters named as options (``warning: ...``)."""
    err_console.print(f"[bold yellow]warning:[/] {cli_message(text)}", highlight=False, soft_wrap=True)


def print_note(text: str) -> None:
    """A library note on stderr, its backquoted parameters named as options (``note: ...``)."""
    err_console.print(f"note: {cli_message(text)}", highlight=False, soft_wrap=True)


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
    # a key may also be another long spelling of an option (the config field's name: extent_kpc for --extent)
    spellings = {o[2:].replace("-", "_"): p.name for p in ctx.command.params
                 for o in getattr(p, "opts", []) if o.startswith("--") and p.name}
    renamed = {spellings.get(k, k) if k not in names else k: v for k, v in section.items()}
    if len(renamed) < len(section):
        raise ConfigError(f"config file {config_path}: an option is given twice under two names")
    section = renamed
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
