"""``gcml merge``: join MapSet shards into one file or a virtual dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gcml.cli.common import OverwriteOpt, console, user_errors


def merge_cmd(
    ctx: typer.Context,
    inputs: Annotated[list[Path], typer.Argument(help="MapSet files to join (e.g. shards of one run).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output MapSet.")] = Path("maps.h5"),
    virtual: Annotated[bool, typer.Option("--virtual", help="Write an HDF5 virtual dataset pointing at the inputs instead of copying.")] = False,
    renumber: Annotated[bool, typer.Option("--renumber", help="Shift the galaxy ids of a run whose ids overlap an earlier input's (simulate-maps numbers every run from 0).")] = False,
    overwrite: OverwriteOpt = False,
) -> None:
    """Join MapSets with the same channels, geometry and fields (e.g. --shard outputs) into one."""
    from gcml.io.mapset import merge_mapsets

    with user_errors(ctx=ctx):
        p = merge_mapsets(inputs, out, overwrite=overwrite, virtual=virtual, renumber=renumber)
    console.print(f"wrote {p}")
