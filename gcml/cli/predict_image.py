"""How ``gcml predict`` shows an image prediction (pi-DOC: a globular cluster's mass map, total mass, M/L,
age and distance); :func:`gcml.api.predict` makes it."""

from __future__ import annotations

import math
from pathlib import Path

from gcml.cli.common import console, err_console, print_note, print_warning


def print_image_prediction(pred, paths: dict[str, Path], quiet: bool = False, as_json: bool = False) -> None:
    """Print an image prediction (:class:`gcml.prediction.images.ImagePrediction`) with rich."""
    if pred.status != "ok":  # said first, before any number
        err_console.print(f"[bold red]{pred.status}[/]", highlight=False, soft_wrap=True)
    for w in pred.warnings:
        print_warning(w)
    if as_json:  # for scripts: the JSON written beside the map, on stdout
        import json

        import typer

        typer.echo(json.dumps(pred.summary(), indent=1, default=str))
        return
    if quiet:
        console.print(f"{pred.mass_total:.4g} Msun  (log10 {pred.log10_mass_total:.3f} ± {pred.log10_mass_total_err:.3f})",
                      highlight=False)
        return
    from rich.table import Table

    for n in pred.notes:
        print_note(n)

    def pm(v: float, e: float, fmt: str = ".3g") -> str:
        if not math.isfinite(v):
            return "—"
        return f"{v:{fmt}} ± {e:{fmt}}" if math.isfinite(e) else f"{v:{fmt}}"

    t = Table(title=f"{Path(pred.image).name}: field of the model around RA {pred.ra_deg:.5f}, Dec {pred.dec_deg:.5f}"
                    + (f" ({pred.target})" if pred.target else ""))
    t.add_column("quantity")
    t.add_column("value", justify="right")
    t.add_column("unit")
    lo = pred.mass_total * 10 ** -pred.log10_mass_total_err
    hi = pred.mass_total * 10 ** pred.log10_mass_total_err
    t.add_row("mass in the field", f"{pred.mass_total:.4g}  ({lo:.3g} – {hi:.3g})", "Msun")
    t.add_row("log10 mass", pm(pred.log10_mass_total, pred.log10_mass_total_err, ".3f"), "dex")
    t.add_row("V luminosity in the field", f"{pred.lum_v:.4g}" if math.isfinite(pred.lum_v) else "—", "Lsun")
    ml_err = pred.ml_v * (10 ** pred.log10_ml_v_err - 1) if math.isfinite(pred.ml_v) else math.nan
    t.add_row("M/L_V", pm(pred.ml_v, ml_err), "Msun/Lsun")
    def iv(v: float, lo: float, hi: float, fmt: str) -> str:
        if not math.isfinite(v):
            return "—"
        return f"{v:{fmt}}  (68%: {lo:{fmt}} – {hi:{fmt}})" if math.isfinite(lo) and math.isfinite(hi) else f"{v:{fmt}}"

    t.add_row("age", iv(pred.age_gyr, pred.age_lo_gyr, pred.age_hi_gyr, ".2f"), "Gyr")
    t.add_row("distance", iv(pred.distance_kpc, pred.distance_lo_kpc, pred.distance_hi_kpc, ".1f"), "kpc")
    if pred.harris:
        t.add_row("distance (Harris 2010)", f"{pred.harris['distance_kpc']}", "kpc")
    t.add_row("inside the training range", "yes" if pred.in_training_range else "[yellow]no[/]", "")
    if pred.centre_refined:
        t.add_row("centre moved onto the cluster light", f"{pred.centre_moved_arcsec:.2f}", "arcsec")
    console.print(t)
    for _k, p in paths.items():
        console.print(f"wrote {p}", highlight=False)
