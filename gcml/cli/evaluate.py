"""``gcml evaluate``: score trained models on a MapSet split (Kaur et al. 2021 metrics and more)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gcml.cli.common import (
    ConfigOpt,
    DeviceOpt,
    OverwriteOpt,
    QuietOpt,
    console,
    resolve_options,
    user_errors,
)


def evaluate_cmd(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="One or more model bundles (best.pt), then the MapSet.")],
    split: Annotated[str, typer.Option("--split", help="test, ood, val, train or all.")] = "test",
    out: Annotated[Path, typer.Option("--out", "-o", help="Report folder.")] = Path("report"),
    device: DeviceOpt = "cpu",
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Maps per forward pass.")] = 4096,
    systematic: Annotated[bool, typer.Option("--systematic/--no-systematic", help="Keep each bundle's systematic "
                                             "term (its error on galaxy families it never saw); --no-systematic "
                                             "scores the statistical intervals alone (for galaxies of the "
                                             "training families).")] = True,
    config: ConfigOpt = None,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Evaluate models on a MapSet: metrics.json, report.md and plots, one comparison table for several models.

    Example: gcml evaluate runs/dl2/best.pt runs/gcml/best.pt maps.h5 --split test -o report/
    """
    with user_errors(ctx=ctx):
        from gcml.api import evaluate
        from gcml.errors import InputError
        from gcml.evaluation.pidoc_metrics import PidocEvaluateResult

        o = resolve_options(ctx, config, "evaluate")
        fl = list(o["files"])
        if len(fl) < 2:
            raise InputError("evaluate: give at least one model bundle and then the MapSet, e.g. "
                             "'gcml evaluate runs/mass-cnn/best.pt maps.h5'")
        res = evaluate(fl[:-1], fl[-1], split=o["split"], out=o["out"], overwrite=o["overwrite"], device=o["device"],
                       batch_size=o["batch_size"], systematic=o["systematic"])
    if isinstance(res, PidocEvaluateResult):  # pi-DOC models on photometry: gcml/evaluation/pidoc_metrics.py
        from gcml.cli.evaluate_pidoc import print_pidoc_evaluation

        print_pidoc_evaluation(res, quiet)
        return
    from rich.table import Table

    t = Table(title=f"{res.split} split, {res.n_maps} maps", title_justify="left")
    for c in ("model", "target", "accuracy %", "MAE 0-10", "RMSE 0-10", "MAE dex", "bias dex", "scatter dex", "68% cov"):
        t.add_column(c)
    for lab, per in res.models.items():
        for tname, m in per.items():
            if tname == "_model":
                continue
            t.add_row(lab, tname, f"{m['accuracy']:.1f}", f"{m['mae_norm']:.3f}", f"{m['rmse_norm']:.3f}",
                      f"{m['mae_dex']:.3f}", f"{m['bias_dex']:+.3f}", f"{m['scatter_dex']:.3f}",
                      f"{m.get('coverage_68', float('nan')):.2f}")
    if res.baseline:
        b = res.baseline
        t.add_row("TME (Watkins+2010)", b["target"], f"{b['accuracy']:.1f}", f"{b['mae_norm']:.3f}",
                  f"{b['rmse_norm']:.3f}", f"{b['mae_dex']:.3f}", f"{b['bias_dex']:+.3f}", f"{b['scatter_dex']:.3f}", "–")
    if not quiet:
        console.print(t)
    console.print(f"report: {res.out / 'report.md'}")
