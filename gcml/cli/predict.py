"""``gcml predict``: galaxy masses from a GC catalogue, or (FITS images) pi-DOC predictions.

A thin layer over :func:`gcml.api.predict`, which chooses the method from the input. :data:`PARAMETERS`
maps the options whose names differ from the library's parameters (one place, both directions: the call
and the error messages, through :func:`gcml.cli.common.user_errors`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gcml.cli.common import (
    ConfigOpt,
    DeviceOpt,
    OverwriteOpt,
    QuietOpt,
    SeedOpt,
    console,
    is_quiet,
    print_note,
    print_warning,
    resolve_options,
    user_errors,
)

#: option (parameter name of predict_cmd) -> parameter of gcml.api.predict, where they differ
PARAMETERS = {"input": "path", "distance": "distance_mpc", "distance_err": "distance_err_mpc", "re": "r_e_kpc",
              "samples": "n_samples", "splits": "n_splits"}


def predict_cmd(
    ctx: typer.Context,
    input: Annotated[Path, typer.Argument(help="GC catalogue (VizieR TSV, CSV, ECSV, FITS table, VOTable) or a FITS "
                                               "image (pi-DOC).", show_default=False)],
    model: Annotated[Path | None, typer.Option("--model", "-m", help="Model bundle (.pt) (default: the shipped "
                                               "default model for the input).")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (prediction.json, maps.png).")] = Path("predict_out"),
    galaxy: Annotated[str | None, typer.Option("--galaxy", help="Catalogue: SLUGGS galaxy (e.g. 'NGC 3377') "
                                               "giving centre, distance, v_sys and R_e (Forbes et al. 2017).")] = None,
    ra: Annotated[float | None, typer.Option("--ra", help="Centre right ascension (deg).")] = None,
    dec: Annotated[float | None, typer.Option("--dec", help="Centre declination (deg).")] = None,
    distance: Annotated[float | None, typer.Option("--distance", help="Catalogue: distance (Mpc).")] = None,
    distance_err: Annotated[float | None, typer.Option("--distance-err", help="Catalogue: 1-sigma distance error "
                                                       "(Mpc) (default: 10% of the distance).")] = None,
    vsys: Annotated[float | None, typer.Option("--vsys", help="Catalogue: systemic velocity (km/s) (default: "
                                               "the mean GC velocity, with a warning).")] = None,
    re: Annotated[float | None, typer.Option("--re", help="Catalogue: effective radius (kpc) (reported as "
                                             "R_out / R_e).")] = None,
    fill: Annotated[str | None, typer.Option("--fill", help="Catalogue: Kaur et al. Table 4 filling of empty "
                                             "pixels: 0, 50, 100 (sigma in km/s) or interp.")] = None,
    ra_col: Annotated[str | None, typer.Option("--ra-col", help="Catalogue RA column (default: RAJ2000, RA, ...).")] = None,
    dec_col: Annotated[str | None, typer.Option("--dec-col", help="Catalogue Dec column (default: DEJ2000, Dec, ...).")] = None,
    v_col: Annotated[str | None, typer.Option("--v-col", help="Catalogue velocity column (default: HRV, v, "
                                              "velocity, RV, ...).")] = None,
    verr_col: Annotated[str | None, typer.Option("--verr-col", help="Catalogue velocity-error column (default: "
                                                 "e_HRV, v_err, ...).")] = None,
    galaxy_col: Annotated[str | None, typer.Option("--galaxy-col", help="Catalogue: column naming each row's galaxy in "
                                                   "a multi-galaxy table (default: Galaxy, Host, ... or the id prefix, "
                                                   "e.g. NGC4278_S12).")] = None,
    split_half: Annotated[bool, typer.Option("--split-half", help="Multi-galaxy tables: also predict two random halves "
                                             "of each catalogue (consistency check).")] = False,
    splits: Annotated[int, typer.Option("--splits", min=1, help="With --split-half: independent random splits per "
                                        "galaxy (the agreement rate is counted over all of them).")] = 1,
    samples: Annotated[int | None, typer.Option("--samples", min=10, show_default=False, help="Catalogue: Monte "
                                                "Carlo draws (distance, bootstrap of GCs, velocity errors; default "
                                                "1000), or posterior samples of a mass-npe model (default 10000).")] = None,
    g: Annotated[Path | None, typer.Option("--g", help="Image: g-band FITS (combined with --r into V).")] = None,
    r: Annotated[Path | None, typer.Option("--r", help="Image: r-band FITS.")] = None,
    target: Annotated[str | None, typer.Option("--target", help="Image: Milky Way globular cluster (Harris 2010 "
                                               "name, e.g. 'NGC 6205' or 'M 13'): its catalogue position starts "
                                               "the field (then refined on the cluster light), E(B-V) removes the "
                                               "extinction, B-V gives the colour of a one-band image.")] = None,
    refine_centre: Annotated[bool, typer.Option("--refine-centre/--no-refine-centre", help="Image: move the field "
                                                "centre from the catalogue position (--target, --ra/--dec, or the "
                                                "image centre) to the cluster's light centroid.")] = True,
    table_format: Annotated[str, typer.Option("--format", help="Format of the results table written "
                                              "beside the JSON: ecsv (default; astropy units) or votable.")] = "ecsv",
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Write the PNGs (maps, corner and profile "
                                        "plots, an image's quick-look, a survey's summary plots); --no-plots "
                                        "writes the tables, JSON and FITS files only.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout (for scripts) "
                                          "instead of the table.")] = False,
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
    config: ConfigOpt = None,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Predict from real data: galaxy masses from a GC catalogue, or cluster mass/age/distance from an image.

    Examples: gcml predict ngc3377_gcs.tsv --galaxy "NGC 3377" -o out/ ;
    gcml predict gcs.csv --ra 161.926 --dec 13.986 --distance 10.9 --vsys 690 ;
    gcml predict ps1_cutout.fits
    """
    with user_errors(ctx=ctx):
        from gcml.api import predict

        o = resolve_options(ctx, config, "predict")
        kwargs = {PARAMETERS.get(k, k): v for k, v in o.items() if k not in ("quiet", "as_json")}
        res = predict(**kwargs)
    if res.kind == "image":
        from gcml.cli.predict_image import print_image_prediction

        print_image_prediction(res.prediction, res.files, is_quiet(o["quiet"]), as_json=o["as_json"])
        return
    if res.kind == "survey":
        if o["as_json"]:
            _print_survey_json(res.prediction)
            return
        _report_survey(res.prediction, is_quiet(o["quiet"]))
        return
    if o["as_json"]:  # what was written, for scripts
        for w in res.prediction.warnings:
            print_warning(w)
        typer.echo(Path(res.files["json"]).read_text())
        return
    _report(res.prediction, res.files, is_quiet(o["quiet"]))


def _report(pred, paths: dict[str, Path], quiet: bool) -> None:
    from rich.table import Table

    for w in pred.warnings:
        print_warning(w)
    if not quiet:
        for nline in pred.notes:
            print_note(nline)
        re_txt = f", R_out/R_e = {pred.r_out_kpc / pred.r_e_kpc:.1f}" if pred.r_e_kpc else ""
        console.print(
            f"{pred.galaxy or pred.table.name}: {pred.n_gc} GCs ({pred.n_gc_in_map} in the "
            f"{pred.geometry['extent_kpc']:g} kpc map), D = {pred.distance_mpc:g} ± {pred.distance_err_mpc:.2g} Mpc, "
            f"v_sys = {pred.vsys_kms:.0f} km/s{' (estimated)' if pred.vsys_estimated else ''}, "
            f"sigma = {pred.velocity_dispersion_kms:.0f} km/s, R_out = {pred.r_out_kpc:.1f} kpc{re_txt}",
            highlight=False, soft_wrap=True)
    how = (f"mass-npe posterior, {pred.n_samples} samples over {pred.n_distance_draws} distance draws"
           if pred.is_posterior else f"{pred.n_samples} Monte Carlo draws")
    t = Table(title=f"log10 mass [Msun] (model {pred.model.name if pred.model else 'in memory'}, {how})")
    for col in ("quantity", "median", "68% interval", "95% interval",
                "posterior at D" if pred.is_posterior else "network"):
        t.add_column(col, justify="left" if col == "quantity" else "right")
    for m in pred.masses.values():
        t.add_row(m.label, f"{m.median:.2f}", f"{m.p16:.2f} - {m.p84:.2f}", f"{m.p2_5:.2f} - {m.p97_5:.2f}",
                  f"{m.network_mean:.2f} ± {m.network_std:.2f}")
    if "median" in pred.tme:
        tm = pred.tme
        t.add_row("TME M(< R_out), Watkins+10", f"{tm['median']:.2f}", f"{tm['p16']:.2f} - {tm['p84']:.2f}",
                  f"{tm['p2_5']:.2f} - {tm['p97_5']:.2f}", "-")
    console.print(t)
    console.print(f"wrote {', '.join(str(p) for p in paths.values())}", highlight=False, soft_wrap=True)


def _report_survey(res, quiet: bool) -> None:
    from rich.table import Table

    t = Table(title=f"{res.table.name}: {len(res.galaxies)} galaxies, log10 M(< R_out) [Msun] (median, 68% interval)")
    for col in ("galaxy", "GCs", "in map", "R_out [kpc]", "M(<R_out)", "68%", "TME", "status"):
        t.add_column(col, justify="left" if col in ("galaxy", "status") else "right")
    for g in res.galaxies:
        p = g.prediction
        if p is None:
            t.add_row(g.name, str(g.n_gc), "-", "-", "-", "-", "-", f"refused: {g.reason}")
            continue
        m = p.masses["log10_mass_within_rout"]
        tm = p.tme.get("median", float("nan"))
        st = "predicted" + (f" ({len(p.warnings)} warning(s))" if p.warnings else "")
        t.add_row(g.name, str(g.n_gc), str(p.n_gc_in_map), f"{p.r_out_kpc:.1f}", f"{m.median:.2f}",
                  f"{m.p16:.2f}-{m.p84:.2f}", f"{tm:.2f}", st)
    if not quiet:
        console.print(t)
        for g in res.galaxies:
            for w in (g.prediction.warnings if g.prediction else []):
                print_warning(f"{g.name}: {w}")
    agree, n = res.split_half_consistency()
    if n:
        n_gal = sum(1 for g in res.galaxies if g.splits)
        what = f"{n} galaxies" if n == n_gal else f"{n} random splits of {n_gal} galaxies"
        console.print(f"split halves agree within their 68% intervals for {agree} of {what} ({agree / n:.2f}; "
                      "0.68 expected)", highlight=False, soft_wrap=True)
    console.print(f"wrote {res.summary_path} and one folder per galaxy ({res.seconds:.1f} s)", highlight=False,
                  soft_wrap=True)


def _print_survey_json(res) -> None:
    """``--json`` for a multi-galaxy table: the rows of summary.ecsv (values in its units) on stdout."""
    import json
    import math

    t = res.to_table()
    for g in res.galaxies:
        for w in (g.prediction.warnings if g.prediction else []):
            print_warning(f"{g.name}: {w}")

    def plain(v):
        v = getattr(v, "value", v)
        v = v.item() if hasattr(v, "item") else v
        return None if isinstance(v, float) and not math.isfinite(v) else v

    rows = [{c: plain(row[c]) for c in t.colnames} for row in t]
    units = {c: str(t[c].unit) for c in t.colnames if getattr(t[c], "unit", None) is not None}
    typer.echo(json.dumps({"format": "gcml.survey-prediction", "table": str(res.table), "units": units,
                           "summary": str(res.summary_path), "galaxies": rows}, indent=1))
