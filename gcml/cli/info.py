"""``gcml info``: summary of any gcml file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from gcml.cli.common import OverwriteOpt, console, user_errors


def info_cmd(
    path: Annotated[Path, typer.Argument(help="A gcml file: MapSet, snapshot or model bundle.")],
    plot: Annotated[Path | None, typer.Option("--plot", help="Write a PNG of example maps.")] = None,
    n_examples: Annotated[int, typer.Option("--examples", min=1, help="Maps to draw with --plot.")] = 4,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    overwrite: OverwriteOpt = False,
) -> None:
    """Print a summary of a gcml file: shapes, channels and units, targets, splits, provenance."""
    from gcml.io.info import describe

    with user_errors():
        d = describe(path)
        if as_json:
            console.print_json(json.dumps(d, default=str))
        else:
            _print_summary(d)
        if plot is not None:
            if d.get("kind") not in ("kinematics", "photometry"):
                from gcml.errors import InputError

                raise InputError(f"{path}: --plot draws MapSets; this is a {d.get('format')} file")
            from gcml.evaluation.plots import plot_mapset_examples
            from gcml.io.mapset import read_mapset

            ms = read_mapset(path)
            plot_mapset_examples(ms, plot, n_examples=n_examples, overwrite=overwrite)
            console.print(f"example maps: {plot}")


def _print_summary(d: dict) -> None:
    from rich.table import Table

    console.print(f"[bold]{d['file']}[/]  ({d['format']})")
    for key, val in d.items():
        if key in ("file", "format"):
            continue
        if isinstance(val, dict) and val and all(isinstance(v, dict) for v in val.values()):
            t = Table(title=key, title_justify="left", show_edge=False)
            cols = list(dict.fromkeys(c for v in val.values() for c in v))  # first-seen order: unit, min, max
            t.add_column("name")
            for c in cols:
                t.add_column(c)
            for name, v in val.items():
                t.add_row(name, *[_fmt(v.get(c)) for c in cols])
            console.print(t)
        elif isinstance(val, list) and val and all(isinstance(v, dict) for v in val):
            t = Table(title=key, title_justify="left", show_edge=False)
            cols = list(val[0].keys())
            for c in cols:
                t.add_column(c)
            for v in val:
                t.add_row(*[_fmt(v.get(c)) for c in cols])
            console.print(t)
        elif isinstance(val, dict):
            console.print(f"[bold]{key}[/]:")
            for k, v in val.items():
                console.print(f"  {k}: {_fmt(v)}", highlight=False, soft_wrap=True)
        else:
            console.print(f"[bold]{key}[/]: {_fmt(val)}", highlight=False)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (dict, list)):
        return json.dumps(v, default=str)
    return "" if v is None else str(v)
