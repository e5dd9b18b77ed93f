"""Library entry points for what ``gcml predict`` and ``gcml evaluate`` do: :func:`predict`, :func:`evaluate`.

They choose the method from the input, as the command line does, so a script gets the same result as
the command: :func:`predict` sends GC catalogues (any table astropy reads) to
:func:`gcml.prediction.catalogue.predict_catalogue` and FITS images to
:func:`gcml.prediction.images.predict_image`; :func:`evaluate` sends kinematic MapSets to
:func:`gcml.evaluation.report.evaluate` (Kaur et al. 2021 metrics) and photometric ones to
:func:`gcml.evaluation.pidoc_metrics.evaluate_photometry` (pi-DOC metrics).

Errors name the library's parameters in backquotes (```distance_mpc```); the command line shows its
option names there instead (:func:`gcml.cli.common.user_errors`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gcml.errors import ConfigError, InputError

#: Suffixes of FITS files (an image unless the file holds a table).
IMAGE_SUFFIXES = (".fits", ".fit", ".fits.gz", ".fit.gz", ".fz")
#: Parameters of :func:`predict` that apply to one kind of input only.
CATALOGUE_ONLY = ("galaxy", "distance_mpc", "distance_err_mpc", "vsys", "r_e_kpc", "fill", "ra_col", "dec_col",
                  "v_col", "verr_col", "galaxy_col")
IMAGE_ONLY = ("g", "r", "target")


def input_kind(path: str | Path) -> str:
    """``"image"`` for a FITS image, ``"catalogue"`` for anything else (a GC table)."""
    p = Path(path)
    if not p.name.lower().endswith(IMAGE_SUFFIXES):
        return "catalogue"
    if p.is_file():
        from gcml.io.tables import is_fits_table

        return "catalogue" if is_fits_table(p) else "image"
    return "image"


@dataclass
class PredictResult:
    """What :func:`predict` made: ``kind`` ("catalogue" or "image"), the ``prediction``
    (:class:`~gcml.prediction.catalogue.CataloguePrediction` or :class:`~gcml.prediction.images.ImagePrediction`)
    and the ``files`` written (empty without ``out``)."""

    kind: str
    prediction: Any
    files: dict[str, Path] = field(default_factory=dict)

    def to_table(self) -> Any:
        """The prediction's numbers as an ``astropy.table.QTable`` with units (``prediction.to_table()``): one
        row per mass for a catalogue, one row for an image, one row per galaxy for a survey table."""
        return self.prediction.to_table()


def predict(path: str | Path, *, model: str | Path | None = None, out: str | Path | None = None,
            overwrite: bool = False, device: str = "auto", seed: int = 0, n_samples: int | None = None,
            ra: float | None = None, dec: float | None = None, galaxy: str | None = None,
            distance_mpc: float | None = None, distance_err_mpc: float | None = None, vsys: float | None = None,
            r_e_kpc: float | None = None, fill: str | None = None, ra_col: str | None = None,
            dec_col: str | None = None, v_col: str | None = None, verr_col: str | None = None,
            g: str | Path | None = None, r: str | Path | None = None, target: str | None = None,
            refine_centre: bool = True, table_format: str = "ecsv", galaxy_col: str | None = None,
            split_half: bool = False, n_splits: int = 1, command: str | None = None, position: Any = None,
            progress: Any = None, plots: bool = True) -> PredictResult:
    """Predict from real data: galaxy masses from a GC catalogue, or a cluster's mass map, mass, M/L, age
    and distance from a FITS image.

    Parameters
    ----------
    path : GC catalogue (VizieR TSV, CSV, ECSV, FITS table, VOTable, or an astropy ``Table``/``QTable`` in
        memory) or FITS image
    model : model bundle; None: the shipped default for the input
    out : folder to write the results into (None: write nothing)
    overwrite : replace earlier results in ``out``
    device : torch device ("auto", "cpu", "cuda", "cuda:K")
    seed : random seed of the catalogue's Monte Carlo draws or posterior samples (images draw none)
    n_samples : catalogues: Monte Carlo draws of a CNN model (default 1000) or posterior samples of a
        mass-npe model (default 10,000); see :func:`gcml.prediction.catalogue.predict_catalogue`
    galaxy, distance_mpc, distance_err_mpc, vsys, r_e_kpc, fill, ra_col, dec_col, v_col, verr_col :
        catalogues only, see :func:`gcml.prediction.catalogue.predict_catalogue`
    ra, dec : centre [deg], or astropy Angles / Quantities
    g, r, target, refine_centre : images only, see :func:`gcml.prediction.images.predict_image`
    table_format : "ecsv" or "votable", the results table beside the JSON (``to_table()`` of the prediction)
    galaxy_col, split_half, n_splits : multi-galaxy catalogues (``galaxy`` a name or "all"), see
        :func:`gcml.prediction.survey.predict_survey`; the result's ``kind`` is then "survey"
    command : the command line recorded in the outputs
    position : the centre as an astropy ``SkyCoord`` (any frame), instead of ``ra``/``dec``
    progress : multi-galaxy tables: ``True`` for a tqdm.auto bar over the galaxies (notebooks), a callable
        ``progress(done, total)``, or None (silent, the default)
    plots : write the PNGs into ``out`` (maps, corner and profile plots, an image's quick-look, a survey's
        summary plots); False: the tables, JSON and FITS files only (large surveys, pipelines)

    ``distance_mpc``, ``distance_err_mpc``, ``vsys`` and ``r_e_kpc`` may be astropy Quantities in any
    compatible unit (``r_e_kpc`` also an angle); plain numbers are in the units their names say. The
    result's ``to_table()`` gives its numbers as a ``QTable`` with units.

    Raises
    ------
    InputError, ConfigError, FormatError, DeviceError, OutputExistsError
    """
    from gcml.device import resolve_device
    from gcml.io.tables import is_astropy_table, not_a_table, source_path

    in_memory = is_astropy_table(path)
    p = source_path(path)
    if not in_memory:
        if p.is_dir():
            raise InputError(f"{p}: is a folder; expected a GC catalogue table or a FITS image")
        if not p.exists():
            raise InputError(f"{p}: file not found")
        other = not_a_table(p)
        if other is not None:
            raise InputError(f"{p}: is {other}; gcml predict takes a GC catalogue (VizieR TSV, CSV, ECSV, FITS "
                             "table, VOTable) or a FITS image")
    given = {k: v for k, v in locals().items() if k in CATALOGUE_ONLY + IMAGE_ONLY and v is not None}
    kind = "catalogue" if in_memory else input_kind(p)
    wrong = [k for k in (CATALOGUE_ONLY if kind == "image" else IMAGE_ONLY) if k in given]
    if wrong:
        names = ", ".join(f"`{k}`" for k in wrong)
        raise ConfigError(f"{p}: is a {'FITS image' if kind == 'image' else 'GC catalogue'}; {names} apply to "
                          f"{'GC catalogues' if kind == 'image' else 'FITS images'} only")
    from gcml.io.tables import TABLE_FORMATS

    if table_format not in TABLE_FORMATS:
        raise ConfigError(f"`table_format`: expected {' or '.join(TABLE_FORMATS)}, got '{table_format}'")
    if position is not None:
        from gcml.physics.units import radec_deg

        ra, dec = radec_deg(ra, dec, position, "`position`")
    dev = str(resolve_device(device))
    if kind == "image":
        from gcml.prediction.images import predict_image, save_image_prediction

        pred = predict_image(p, model=model, g=g, r=r, ra=ra, dec=dec, target=target, device=dev,
                             refine_centre=refine_centre)
        files = (save_image_prediction(pred, out, overwrite=overwrite, table_format=table_format, plots=plots)
                 if out is not None else {})
        return PredictResult("image", pred, files)
    survey = None
    if galaxy is not None:
        from gcml.io.survey import survey_galaxy_names

        names = survey_galaxy_names(path, galaxy_col)
        if galaxy.strip().lower() == "all" or (names is not None and len(names) > 1):
            survey = names
    if survey is not None or split_half:
        if survey is None:
            raise ConfigError("`split_half`: applies to multi-galaxy tables with `galaxy` a name or all")
        per_gal_values = {"ra": ra, "dec": dec, "distance_mpc": distance_mpc, "distance_err_mpc": distance_err_mpc,
                          "vsys": vsys, "r_e_kpc": r_e_kpc, "fill": fill}
        per_gal = [k for k, v in per_gal_values.items() if v is not None]
        if per_gal:
            raise ConfigError(f"{p}: holds several galaxies; {', '.join(f'`{k}`' for k in per_gal)} cannot apply "
                              "to all of them (centres, distances and v_sys come from the SLUGGS table, Forbes et "
                              "al. 2017)")
        from gcml.prediction.survey import predict_survey

        if out is None:
            raise ConfigError("`out`: a multi-galaxy table needs an output folder for its per-galaxy results")
        res = predict_survey(path, out, galaxy=galaxy, model=model, n_samples=n_samples, seed=seed,
                             split_half=split_half, n_splits=n_splits, overwrite=overwrite, galaxy_col=galaxy_col, ra_col=ra_col,
                             dec_col=dec_col, v_col=v_col, verr_col=verr_col, progress=progress, plots=plots)
        return PredictResult("survey", res, {})
    from gcml.prediction.catalogue import predict_catalogue, save_prediction

    pred = predict_catalogue(path, model, galaxy=galaxy, ra=ra, dec=dec, distance_mpc=distance_mpc,
                             distance_err_mpc=distance_err_mpc, vsys=vsys, r_e_kpc=r_e_kpc, fill=fill,
                             n_samples=n_samples, seed=seed, ra_col=ra_col, dec_col=dec_col, v_col=v_col,
                             verr_col=verr_col, device=dev)
    files = (save_prediction(pred, out, overwrite=overwrite, command=command, table_format=table_format,
                             plots=plots)
             if out is not None else {})
    return PredictResult("catalogue", pred, files)


def evaluate(models: list[str | Path], mapset: str | Path, *, split: str = "test", out: str | Path = "report",
             overwrite: bool = False, device: str = "cpu", batch_size: int = 4096, progress: Any = None,
             systematic: bool = True) -> Any:
    """Score model bundles on a MapSet split and write the report folder ``out``.

    Kinematic MapSets: :func:`gcml.evaluation.report.evaluate` (returns an ``EvaluateResult``); photometric
    ones: :func:`gcml.evaluation.pidoc_metrics.evaluate_photometry` (``PidocEvaluateResult``; at most 16
    images per forward pass). ``progress``: ``True`` for a tqdm.auto bar (notebooks), a callable
    ``progress(done, total)``, or None (silent, the default). ``systematic=False`` scores kinematic models
    without their bundle's systematic term (the statistical intervals, for galaxies of the training families).
    """
    from gcml.io.mapset import read_header

    if not models:
        raise InputError("evaluate: give at least one model bundle and then the MapSet")
    if read_header(mapset)["kind"] == "photometry":
        from gcml.evaluation.pidoc_metrics import evaluate_photometry

        if not systematic:
            raise ConfigError("`systematic`: pi-DOC models carry no systematic term; leave it out")
        return evaluate_photometry(list(models), mapset, split, out, overwrite=overwrite, device=device,
                                   batch_size=min(batch_size, 16), progress=progress)
    from gcml.evaluation.report import evaluate as evaluate_kinematics

    return evaluate_kinematics(list(models), mapset, split, out, overwrite=overwrite, device=device,
                               batch_size=batch_size, progress=progress, systematic=systematic)
