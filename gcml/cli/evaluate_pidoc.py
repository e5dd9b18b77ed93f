"""Rich output of ``gcml evaluate`` for photometry MapSets (pi-DOC models)."""

from __future__ import annotations

import math
from typing import Any

from gcml.cli.common import console


def print_pidoc_evaluation(res: Any, quiet: bool = False) -> None:
    """One comparison table (gcml models, imported published networks, the paper's numbers)."""
    from rich.table import Table

    from gcml.evaluation.pidoc_metrics import PAPER, summary_rows

    def f(v: Any, fmt: str) -> str:
        return "–" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, fmt)

    if not quiet:
        t = Table(title=f"{res.split} split, {res.n_maps} images", title_justify="left")
        for c in ("model", "pixel err %", "total mass err %", "68% cov", "age MAE Gyr", "68% cov",
                  "dist MAE kpc", "68% cov"):
            t.add_column(c)
        for r in summary_rows(res.models):
            t.add_row(f"{r['model']} ({r['architecture']})", f(r["pixel_pct"], ".1f"), f(r["total_pct"], ".1f"),
                      f(r["total_cov68"], ".2f"), f(r["age_mae"], ".2f"), f(r["age_cov68"], ".2f"),
                      f(r["dist_mae"], ".1f"), f(r["dist_cov68"], ".2f"))
        t.add_row("Chardin & Bianchini 2021 (paper)", f"{PAPER['pixel_percentage_error']}",
                  f"{PAPER['total_mass_percentage_error']}", "–", f"{PAPER['age_mae_gyr']}", "–",
                  f"~{PAPER['distance_mae_kpc']:.0f}", "–")
        console.print(t)
    console.print(f"report: {res.out / 'report.md'}")
