"""``gcml predict``: galaxy masses from a GC catalogue, or (FITS images) pi-DOC predictions.

Catalogues go to :func:`gcml.prediction.catalogue.predict_catalogue`; FITS images (.fits, .fit, .fits.gz,
.fz that hold an image) go to ``gcml.cli.predict_image.run_image_prediction``.
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
    err_console,
    is_quiet,
    resolve_options,
    user_errors,
)

IMAGE_SUFFIXES = (".fits", ".fit", ".fits.gz", ".fit.gz", ".fz")


def _is_image(path: Path) -> bool:
    name = path.name.lower()
    if not name.endswith(IMAGE_SUFFIXES):
        return False
    if path.is_file():
        from gcml.io.tables import is_fits_table

        return not is_fits_table(path)
    return True


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
    samples: Annotated[int, typer.Option("--samples", min=10, help="Catalogue: Monte Carlo draws (distance, "
                                         "bootstrap of GCs, velocity errors).")] = 1000,
    g: Annotated[Path | None, typer.Option("--g", help="Image: g-band FITS (combined with --r into V).")] = None,
    r: Annotated[Path | None, typer.Option("--r", help="Image: r-band FITS.")] = None,
    target: Annotated[str | None, typer.Option("--target", help="Image: what to predict (see the image models).")] = None,
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
    with user_errors():
        from gcml.errors import ConfigError, InputError

        o = resolve_options(ctx, config, "predict")
        path = Path(o["input"])
        if path.is_dir():
            raise InputError(f"{path}: is a folder; expected a GC catalogue table or a FITS image")
        if not path.exists():
            raise InputError(f"{path}: file not found")
        if _is_image(path):
            cat_only = {k: o[k] for k in ("galaxy", "distance", "distance_err", "vsys", "re", "fill", "ra_col",
                                          "dec_col", "v_col", "verr_col") if o[k] is not None}
            if cat_only:
                raise ConfigError(f"{path}: is a FITS image; option(s) {', '.join('--' + k.replace('_', '-') for k in cat_only)} "
                                  "apply to GC catalogues only")
            try:
                from gcml.cli.predict_image import run_image_prediction
            except ModuleNotFoundError as exc:
                if exc.name != "gcml.cli.predict_image":
                    raise
                raise InputError(f"{path}: image prediction needs the pi-DOC models, which this gcml does not have "
                                 "yet; give a GC catalogue (TSV, CSV, ECSV, VOTable) instead") from None
            run_image_prediction(path, model=o["model"], g=o["g"], r=o["r"], ra=o["ra"], dec=o["dec"],
                                 target=o["target"], out=Path(o["out"]), overwrite=o["overwrite"], device=o["device"],
                                 seed=o["seed"], quiet=is_quiet(o["quiet"]))
            return
        img_only = [k for k in ("g", "r", "target") if o[k] is not None]
        if img_only:
            raise ConfigError(f"{path}: is a GC catalogue; option(s) {', '.join('--' + k for k in img_only)} apply "
                              "to FITS images only")
        from gcml.device import resolve_device
        from gcml.prediction.catalogue import predict_catalogue, save_prediction

        dev = str(resolve_device(o["device"]))
        pred = predict_catalogue(
            path, o["model"], galaxy=o["galaxy"], ra=o["ra"], dec=o["dec"], distance_mpc=o["distance"],
            distance_err_mpc=o["distance_err"], vsys=o["vsys"], r_e_kpc=o["re"], fill=o["fill"],
            n_samples=o["samples"], seed=o["seed"], ra_col=o["ra_col"], dec_col=o["dec_col"], v_col=o["v_col"],
            verr_col=o["verr_col"], device=dev)
        paths = save_prediction(pred, o["out"], overwrite=o["overwrite"])
    _report(pred, paths, is_quiet(o["quiet"]))


def _report(pred, paths: dict[str, Path], quiet: bool) -> None:
    from rich.table import Table

    for w in pred.warnings:
        err_console.print(f"[bold yellow]warning:[/] {w}", highlight=False, soft_wrap=True)
    if not quiet:
        for nline in pred.notes:
            err_console.print(f"note: {nline}", highlight=False, soft_wrap=True)
        re_txt = f", R_out/R_e = {pred.r_out_kpc / pred.r_e_kpc:.1f}" if pred.r_e_kpc else ""
        console.print(
            f"{pred.galaxy or pred.table.name}: {pred.n_gc} GCs ({pred.n_gc_in_map} in the "
            f"{pred.geometry['extent_kpc']:g} kpc map), D = {pred.distance_mpc:g} ± {pred.distance_err_mpc:.2g} Mpc, "
            f"v_sys = {pred.vsys_kms:.0f} km/s{' (estimated)' if pred.vsys_estimated else ''}, "
            f"sigma = {pred.velocity_dispersion_kms:.0f} km/s, R_out = {pred.r_out_kpc:.1f} kpc{re_txt}",
            highlight=False, soft_wrap=True)
    t = Table(title=f"log10 mass [Msun] (model {pred.model.name if pred.model else 'in memory'}, "
                    f"{pred.n_samples} Monte Carlo draws)")
    for col in ("quantity", "median", "68% interval", "95% interval", "network"):
        t.add_column(col, justify="left" if col == "quantity" else "right")
    for m in pred.masses.values():
        t.add_row(m.label, f"{m.median:.2f}", f"{m.p16:.2f} - {m.p84:.2f}", f"{m.p2_5:.2f} - {m.p97_5:.2f}",
                  f"{m.network_mean:.2f} ± {m.network_std:.2f}")
    if "median" in pred.tme:
        tm = pred.tme
        t.add_row("TME M(< R_out), Watkins+10", f"{tm['median']:.2f}", f"{tm['p16']:.2f} - {tm['p84']:.2f}",
                  f"{tm['p2_5']:.2f} - {tm['p97_5']:.2f}", "-")
    console.print(t)
    console.print(f"wrote {paths['json']} and {paths['png']}", highlight=False, soft_wrap=True)
