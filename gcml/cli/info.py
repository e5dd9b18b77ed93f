"""``gcml info``: summary of any gcml file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from gcml.cli.common import OverwriteOpt, console, user_errors


def info_cmd(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A file gcml writes or reads: MapSet or snapshot (HDF5), model "
                                              "bundle (.pt), FITS, JSON, ECSV/CSV/VOTable/VizieR table, .npz, "
                                              "NBODY6/NBODY6++ conf.3, ASCII particle table.")],
    plot: Annotated[Path | None, typer.Option("--plot", help="Write a PNG of example maps.")] = None,
    n_examples: Annotated[int, typer.Option("--examples", min=1, help="Maps to draw with --plot.")] = 4,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Everything: hashes, stored configuration and "
                                          "options, full provenance, whole arrays, all FITS header cards.")] = False,
    overwrite: OverwriteOpt = False,
) -> None:
    """Print a short summary of a file gcml writes or reads: shapes, channels and units, targets, splits, WCS,
    columns, particles, provenance (--verbose for hashes and everything stored)."""
    from gcml.cli.common import state
    from gcml.io.info import describe

    with user_errors(ctx=ctx):
        d = describe(path, verbose=verbose or state.verbose)
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


def _scalar(v) -> bool:
    return not isinstance(v, (dict, list)) or (isinstance(v, list) and all(not isinstance(x, (dict, list)) for x in v))


def _print_summary(d: dict) -> None:
    console.print(f"[bold]{_fmt(d['file'])}[/]  ({_fmt(d['format'])})", soft_wrap=True)
    for key, val in d.items():
        if key not in ("file", "format"):
            _print_item(key, val, 0)


def _print_item(key, val, indent: int) -> None:
    """Tables for {name: {scalar fields}} and lists of such records; nested sections otherwise."""
    from rich.padding import Padding
    from rich.table import Table

    pad = " " * indent
    if val is None or (isinstance(val, (dict, list)) and not val):
        return
    cols_of = (list(dict.fromkeys(c for v in val.values() for c in v)) if isinstance(val, dict)
               and all(isinstance(v, dict) for v in val.values()) else [])
    if isinstance(val, dict) and 0 < len(cols_of) <= 5 and all(
            isinstance(v, dict) and v and all(_scalar(x) for x in v.values()) for v in val.values()):
        t = Table(title=_fmt(key), title_justify="left", show_edge=False)
        cols = list(dict.fromkeys(c for v in val.values() for c in v))  # first-seen order: unit, min, max
        t.add_column("name", overflow="fold")
        for c in cols:
            t.add_column(_fmt(c), overflow="fold")
        for name, v in val.items():
            t.add_row(_fmt(name), *[_fmt(v.get(c)) for c in cols])
        console.print(Padding(t, (0, 0, 0, indent)))
    elif isinstance(val, list) and all(isinstance(v, dict) for v in val) and len({c for v in val for c in v}) <= 5:
        t = Table(title=_fmt(key), title_justify="left", show_edge=False)
        cols = list(dict.fromkeys(c for v in val for c in v))
        for c in cols:
            t.add_column(_fmt(c), overflow="fold")
        for v in val:
            t.add_row(*[_fmt(v.get(c)) for c in cols])
        console.print(Padding(t, (0, 0, 0, indent)))
    elif isinstance(val, list) and all(isinstance(v, dict) for v in val):
        console.print(f"{pad}[bold]{_fmt(key)}[/]:")
        for i, v in enumerate(val):
            _print_item(str(i), v, indent + 2)
    elif isinstance(val, dict):
        console.print(f"{pad}[bold]{_fmt(key)}[/]:")
        for k, v in val.items():
            _print_item(k, v, indent + 2)
    else:
        console.print(f"{pad}[bold]{_fmt(key)}[/]: {_fmt(val)}", highlight=False, soft_wrap=True)


def _fmt(v) -> str:
    from rich.markup import escape

    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (dict, list)):
        return escape(json.dumps(v, default=str))
    return "" if v is None else escape(str(v))
