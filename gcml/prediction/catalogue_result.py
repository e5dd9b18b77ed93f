"""The result of :func:`gcml.prediction.catalogue.predict_catalogue` and writing it (JSON, an ECSV/VOTable
with units, the maps as FITS with a celestial WCS, and a PNG; for mass-npe models also the posterior
samples, a corner plot and a mass-profile plot, :mod:`gcml.prediction.posterior_outputs`)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: Human-readable names of the mass targets.
TARGET_LABELS = {
    "log10_mass_total": "total mass M200+M*",
    "log10_m200": "halo mass M200",
    "log10_mstar": "stellar mass",
    "log10_mass_within_5kpc": "M(< 5 kpc)",
    "log10_mass_within_10kpc": "M(< 10 kpc)",
    "log10_mass_within_20kpc": "M(< 20 kpc)",
    "log10_mass_within_50kpc": "M(< 50 kpc)",
    "log10_mass_within_5re": "M(< 5 R_e)",
    "log10_mass_within_rout": "M(< R_out)",
}
#: ``CataloguePrediction.method``: kinematic maps through a CNN with Monte Carlo draws, or mass-npe's posterior.
METHODS = ("maps", "posterior")


def percentiles(a: np.ndarray) -> tuple[float, float, float, float, float]:
    """(median, p16, p84, p2.5, p97.5) of the draws ``a``."""
    q = np.percentile(a, [50, 16, 84, 2.5, 97.5])
    return tuple(float(v) for v in q)  # type: ignore[return-value]


def target_radius(name: str, r_out: float, r_e_kpc: float | None) -> float | None:
    """The radius [kpc] an enclosed-mass target refers to (None for total masses)."""
    if name.startswith("log10_mass_within_") and name.endswith("kpc"):
        try:
            return float(name[len("log10_mass_within_"):-3])
        except ValueError:
            return None
    if name == "log10_mass_within_rout":
        return r_out
    if name == "log10_mass_within_5re" and r_e_kpc:
        return 5.0 * float(r_e_kpc)
    return None


def target_label(name: str, r_out: float) -> str:
    """The label of a target in tables and plots (M(< R_out) with its radius)."""
    if name == "log10_mass_within_rout":
        return f"M(<R_out={r_out:.1f} kpc)"
    return TARGET_LABELS.get(name, name)


@dataclass
class MassEstimate:
    """One predicted quantity (log10 Msun) with its percentiles.

    Attributes
    ----------
    name : target name in the bundle (e.g. ``log10_mass_total``)
    label : human-readable label
    unit : "dex(Msun)"
    median, p16, p84, p2_5, p97_5 : percentiles of the combined distribution [log10 Msun]
    network_mean, network_std : network output on the observed map at the nominal distance (mass-npe: the
        posterior mean and standard deviation at the nominal distance)
    bootstrap_std : spread of the network mean over GC resamples (velocity errors included) [dex]; NaN for
        mass-npe, whose posterior holds the GC sampling noise itself
    distance_std : spread of the network mean (mass-npe: of the posterior mean) over distance draws [dex]
    radius_kpc : the radius the mass refers to, when it is an enclosed mass
    systematic_std : the model-systematic term inside ``network_std`` (the bundle's ``calibration.systematic_dex``:
        the error on galaxy families the network never saw, added in quadrature) [dex]; 0 when the model has none
    """

    name: str
    label: str
    unit: str
    median: float
    p16: float
    p84: float
    p2_5: float
    p97_5: float
    network_mean: float
    network_std: float
    bootstrap_std: float
    distance_std: float
    radius_kpc: float | None = None
    systematic_std: float = 0.0

    @property
    def minus(self) -> float:
        return self.median - self.p16

    @property
    def plus(self) -> float:
        return self.p84 - self.median


@dataclass
class CataloguePrediction:
    """Result of :func:`predict_catalogue`.

    Attributes
    ----------
    table, model : input catalogue and model bundle paths
    galaxy : name given with ``galaxy`` (or None)
    ra_deg, dec_deg, distance_mpc, distance_err_mpc, vsys_kms : the galaxy values used
    vsys_estimated : True when vsys came from the GCs
    r_e_kpc : effective radius (None if unknown)
    n_gc : GCs in the catalogue; n_gc_in_map : GCs inside the map's field
    r_out_kpc : projected radius of the outermost GC in the map; r_max_kpc : of all GCs
    velocity_dispersion_kms : rms GC velocity about v_sys (errors subtracted in quadrature)
    map_dispersion_kms : count-weighted mean of the sigma map (compared with the training maps)
    masses : target name -> MassEstimate
    tme : Watkins et al. (2010) tracer mass estimate within r_out (percentiles, log10 Msun)
    maps : (3, H, W) v, sigma, count maps of the observed GCs (before any fill)
    network_input : (C, H, W) what went into the network (the model's channels, fill applied); mass-npe
        reads the GCs, not maps: (0, H, W), and ``maps`` are shown for reference only
    channels : names of the network_input channels (empty for mass-npe)
    geometry : the map geometry used (bundle's)
    warnings : inputs outside the training range, estimated quantities
    notes : assumptions made (e.g. the distance error)
    method : "maps" (a CNN on kinematic maps, ``n_samples`` Monte Carlo draws) or "posterior" (mass-npe:
        ``n_samples`` posterior samples of the GC catalogue, over ``n_distance_draws`` distance draws)
    samples : mass-npe: (n_samples, T) posterior samples [log10 Msun] of the targets in ``masses`` order
    sample_distance_mpc : mass-npe: (n_samples,) the distance each sample was drawn at [Mpc]
    n_distance_draws : mass-npe: distance draws the samples are spread over
    """

    table: Path
    model: Path | None
    galaxy: str | None
    ra_deg: float
    dec_deg: float
    distance_mpc: float
    distance_err_mpc: float
    vsys_kms: float
    vsys_estimated: bool
    r_e_kpc: float | None
    n_gc: int
    n_gc_in_map: int
    r_out_kpc: float
    r_max_kpc: float
    velocity_dispersion_kms: float
    map_dispersion_kms: float
    masses: dict[str, MassEstimate]
    tme: dict[str, float]
    maps: np.ndarray
    network_input: np.ndarray
    channels: list[str]
    geometry: dict[str, Any]
    fill: str | None
    n_samples: int
    seed: int
    columns: dict[str, str | None] = field(default_factory=dict)
    training_ranges: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    method: str = "maps"
    samples: np.ndarray | None = None
    sample_distance_mpc: np.ndarray | None = None
    n_distance_draws: int = 0

    @property
    def is_posterior(self) -> bool:
        """True for mass-npe predictions (posterior samples, corner and profile plots)."""
        return self.method == "posterior"

    def samples_table(self) -> Any:
        """mass-npe: the posterior samples as an ``astropy.table.QTable`` with units
        (:func:`gcml.prediction.posterior_outputs.samples_table`)."""
        from gcml.prediction.posterior_outputs import samples_table

        return samples_table(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain types for JSON (maps as nested lists)."""
        from gcml._version import __version__

        skip = ("masses", "maps", "network_input", "samples", "sample_distance_mpc")
        d = {k: v for k, v in asdict(self).items() if k not in skip}
        if not self.is_posterior:
            d.pop("n_distance_draws")
        d["table"] = str(self.table)
        d["model"] = str(self.model) if self.model is not None else None
        d["masses"] = {k: {**asdict(m), "minus": m.minus, "plus": m.plus} for k, m in self.masses.items()}
        d["maps"] = {"channels": ["v", "sigma", "count"], "units": ["km/s", "km/s", ""],
                     "data": np.round(self.maps.astype(float), 4).tolist(), "origin": "lower",
                     "x_axis": "east (xi)", "y_axis": "north (eta)"}
        d["network_input"] = {"channels": self.channels, "data": np.round(self.network_input.astype(float), 4).tolist()}
        d["format"] = "gcml.catalogue-prediction"
        d["format_version"] = "1.0"
        d["gcml_version"] = __version__
        return _finite(d)


    def to_table(self) -> Any:
        """The masses as an ``astropy.table.QTable`` with units: one row per predicted quantity (median,
        16/84 and 2.5/97.5 percentiles and the network's own mean in ``dex(solMass)``, spreads in ``dex``,
        the radius an enclosed mass refers to in kpc) and a last row ``tme_log10_mass_within_rout`` for the
        Watkins et al. (2010) estimator. The galaxy's values (centre, distance, v_sys, GC numbers, R_out ...)
        are Quantities in ``meta``, with the warnings and notes."""
        import astropy.units as u
        from astropy.table import QTable

        from gcml._version import __version__

        rows = [(m.name, m.label, m.median, m.p16, m.p84, m.p2_5, m.p97_5, m.network_mean, m.network_std,
                 m.bootstrap_std, m.distance_std, math.nan if m.radius_kpc is None else m.radius_kpc,
                 m.systematic_std) for m in self.masses.values()]
        tme = self.tme
        if "median" in tme:
            rows.append(("tme_log10_mass_within_rout", "TME M(< R_out), Watkins et al. 2010", tme["median"],
                         tme["p16"], tme["p84"], tme["p2_5"], tme["p97_5"], tme.get("log10_mass_observed", math.nan),
                         math.nan, math.nan, math.nan, tme.get("r_out_kpc", self.r_out_kpc), math.nan))
        cols = list(zip(*rows, strict=True)) if rows else [[]] * 13
        dex_msun, dex = u.dex(u.Msun), u.dex
        t = QTable()
        t["quantity"] = list(cols[0])
        t["label"] = list(cols[1])
        for k, name in enumerate(("median", "p16", "p84", "p2_5", "p97_5", "network_mean"), start=2):
            t[name] = np.asarray(cols[k], float) * dex_msun
        for k, name in enumerate(("network_std", "bootstrap_std", "distance_std"), start=8):
            t[name] = np.asarray(cols[k], float) * dex
        t["radius"] = np.asarray(cols[11], float) * u.kpc
        t["systematic_std"] = np.asarray(cols[12], float) * dex
        t["systematic_std"].description = ("model-systematic term inside network_std (error on simulated galaxy "
                                           "families the network never saw), added in quadrature")
        if self.is_posterior:
            t["median"].description = "median of the posterior samples (distance marginalised), log10(M / solMass)"
            t["network_mean"].description = ("posterior mean at the nominal distance (TME row: the observed GCs' "
                                             "estimate)")
        else:
            t["median"].description = "median of the Monte Carlo draws, log10(M / solMass)"
            t["network_mean"].description = "network output on the observed map (TME row: the observed GCs' estimate)"
        t["radius"].description = "radius of an enclosed mass (NaN: total mass)"
        t.meta.update({
            "galaxy": self.galaxy or "", "table": str(self.table),
            "model": str(self.model) if self.model is not None else "",
            "ra": self.ra_deg * u.deg, "dec": self.dec_deg * u.deg, "distance": self.distance_mpc * u.Mpc,
            "distance_err": self.distance_err_mpc * u.Mpc, "vsys": self.vsys_kms * u.km / u.s,
            "vsys_estimated": bool(self.vsys_estimated),
            "r_e": (self.r_e_kpc if self.r_e_kpc is not None else math.nan) * u.kpc,
            "n_gc": int(self.n_gc), "n_gc_in_map": int(self.n_gc_in_map), "r_out": self.r_out_kpc * u.kpc,
            "r_max": self.r_max_kpc * u.kpc, "velocity_dispersion": self.velocity_dispersion_kms * u.km / u.s,
            "map_dispersion": self.map_dispersion_kms * u.km / u.s, "fill": self.fill or "",
            "n_samples": int(self.n_samples), "seed": int(self.seed), "method": self.method,
            **({"n_distance_draws": int(self.n_distance_draws)} if self.is_posterior else {}),
            "gcml_version": __version__,
            "warnings": list(self.warnings), "notes": list(self.notes)})
        return t

    def map_wcs(self) -> Any:
        """The celestial WCS of :attr:`maps` written east-left (:func:`map_sky_image`): a TAN projection at the
        galaxy centre with the map's pixel size in kpc turned into an angle at the distance."""
        from gcml.io.fits import make_tan_wcs

        n = int(self.maps.shape[-1])
        pix_kpc = float(self.geometry["extent_kpc"]) / n
        pix_arcsec = math.degrees(pix_kpc / (self.distance_mpc * 1e3)) * 3600.0
        return make_tan_wcs(self.maps.shape[-2:], pix_arcsec, ra_deg=self.ra_deg, dec_deg=self.dec_deg)


def map_sky_image(img: np.ndarray) -> np.ndarray:
    """A (H, W) map on the tangent plane (x = east to the right, y = north up, origin lower) as a sky image
    with east to the left (columns reversed), the orientation of :meth:`CataloguePrediction.map_wcs`."""
    return np.ascontiguousarray(np.asarray(img)[..., ::-1])


def _finite(obj: Any) -> Any:
    """JSON-safe copy: NaN/inf -> None, numpy scalars -> Python numbers."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def plot_prediction_maps(pred: CataloguePrediction, path: str | Path, *, overwrite: bool = False) -> Path:
    """PNG of the V, sigma and count maps that went into the network, on the sky: RA/Dec axes from
    :meth:`CataloguePrediction.map_wcs`, north up and east left."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gcml.io.common import atomic_output

    wcs = pred.map_wcs()
    panels = [("V [km/s]", pred.maps[0], "RdBu_r"), ("sigma [km/s]", pred.maps[1], "viridis"),
              ("count (kernel-weighted GCs)", pred.maps[2], "Greys")]
    for c, name in enumerate(pred.channels):  # show the network's input where a fill changed it
        if pred.fill is not None and name in ("v", "sigma"):
            k = 0 if name == "v" else 1
            panels[k] = (panels[k][0] + f" (fill {pred.fill})", pred.network_input[c], panels[k][2])
    # fixed panel positions (inches on a 13.5 x 4.6 figure): a layout engine would triple the plot's cost
    fig = plt.figure(figsize=(13.5, 4.6))
    side = 3.0   # the square map's side
    for i, (title, img, cmap) in enumerate(panels):
        x0 = (0.9 + 4.4 * i) / 13.5
        ax = fig.add_axes((x0, 0.62 / 4.6, side / 13.5, side / 4.6), projection=wcs)
        kw = {}
        if cmap == "RdBu_r":
            lim = float(np.max(np.abs(img))) or 1.0
            kw = {"vmin": -lim, "vmax": lim}
        im = ax.imshow(map_sky_image(img), origin="lower", cmap=cmap, **kw)
        ax.set_title(title)
        ax.coords[0].set_axislabel("RA (ICRS)")
        ax.coords[1].set_axislabel("Dec (ICRS)" if i == 0 else " ")
        ax.coords[0].set_major_formatter("hh:mm:ss")
        ax.coords[1].set_major_formatter("dd:mm")
        fig.colorbar(im, cax=fig.add_axes((x0 + (side + 0.12) / 13.5, 0.62 / 4.6, 0.14 / 13.5, side / 4.6)))
    m = pred.masses.get("log10_mass_total") or next(iter(pred.masses.values()))
    pix_kpc = float(pred.geometry["extent_kpc"]) / int(pred.maps.shape[-1])
    fig.suptitle(f"{pred.galaxy or pred.table.name}: {pred.n_gc_in_map} GCs in the map, D = {pred.distance_mpc:g} Mpc, "
                 f"{pix_kpc:g} kpc/pixel, north up, east left; {m.label} = {m.median:.2f} "
                 f"(+{m.plus:.2f} / -{m.minus:.2f}) dex")
    p = Path(path)
    with atomic_output(p, overwrite=overwrite) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return p


def write_maps_fits(pred: CataloguePrediction, path: str | Path, *, overwrite: bool = False,
                    command: str | None = None) -> Path:
    """The V, sigma and count maps of the observed GCs as a FITS file with a celestial WCS.

    Primary HDU ``V`` (EXTNAME; ``BUNIT = 'km s-1'``, line-of-sight velocity relative to the galaxy), extensions
    ``SIGMA`` (``km s-1``) and ``COUNT`` (``count``: kernel-weighted number of GCs), all with the TAN WCS of
    :meth:`CataloguePrediction.map_wcs` (centred on the galaxy, east left, north up); HISTORY cards with
    the gcml version, the command and the model's sha256; the galaxy values and the total mass in
    ``GCML*`` keywords.
    """
    from gcml.io.common import sha256_file
    from gcml.io.fits import FitsExtension, write_fits_image

    wcs = pred.map_wcs()
    geom = pred.geometry
    pix_kpc = float(geom["extent_kpc"]) / int(pred.maps.shape[-1])
    m = pred.masses.get("log10_mass_total") or next(iter(pred.masses.values()), None)
    cards: list[tuple] = [
        ("EXTNAME", "V", "line-of-sight velocity map"),
        ("GCMLGAL", (pred.galaxy or "")[:60], "galaxy"),
        ("GCMLDIST", float(pred.distance_mpc), "[Mpc] distance used"),
        ("GCMLDISE", float(pred.distance_err_mpc), "[Mpc] 1-sigma distance error"),
        ("GCMLVSYS", float(pred.vsys_kms), "[km/s] systemic velocity subtracted"),
        ("GCMLPIXK", float(pix_kpc), "[kpc] map pixel size at the distance"),
        ("GCMLSMOO", float(geom.get("smoothing_kpc", math.nan)), "[kpc] Gaussian kernel sigma"),
        ("GCMLNGC", int(pred.n_gc_in_map), "GCs inside the map"),
        ("GCMLROUT", float(pred.r_out_kpc), "[kpc] radius of the outermost GC in the map"),
    ]
    if m is not None:
        cards += [("GCMLLMT", float(m.median), f"[dex Msun] {m.name[:40]}"),
                  ("GCMLLMLO", float(m.p16), "[dex Msun] 16th percentile"),
                  ("GCMLLMHI", float(m.p84), "[dex Msun] 84th percentile")]
    model = Path(pred.model) if pred.model is not None else None
    history = [f"model {model.name} sha256 {sha256_file(model)}" if model is not None and model.is_file()
               else "model in memory (no file, no checksum)",
               f"input catalogue {Path(pred.table).name}",
               "maps: x east (columns reversed: east left), y north; v relative to v_sys, (1+z)-corrected"]
    if command is not None:
        history.append(f"command: {command}")
    comments = [f"warning: {w}" for w in pred.warnings] + [f"note: {n}" for n in pred.notes]
    return write_fits_image(
        path, map_sky_image(pred.maps[0]).astype(np.float32), wcs, unit="km/s", header_cards=cards,
        history=history, comments=comments, overwrite=overwrite,
        extensions=[FitsExtension("SIGMA", map_sky_image(pred.maps[1]).astype(np.float32), unit="km/s",
                                  cards={"COMMENT": "line-of-sight velocity dispersion"}),
                    FitsExtension("COUNT", map_sky_image(pred.maps[2]).astype(np.float32), unit="count",
                                  cards={"COMMENT": "kernel-weighted number of GCs per pixel"})])


def prediction_files(out_dir: str | Path, *, table_format: str = "ecsv", posterior: bool = False,
                     plots: bool = True) -> dict[str, Path]:
    """The files :func:`save_prediction` writes into ``out_dir``: ``prediction.json``, the table, ``maps.fits``,
    ``maps.png`` and, for mass-npe (``posterior``), ``posterior_samples.ecsv``, ``corner.png``, ``profile.png``
    (the PNGs only with ``plots``)."""
    from gcml.io.tables import TABLE_FORMATS

    out = Path(out_dir)
    paths = {"json": out / "prediction.json", "table": out / f"prediction{TABLE_FORMATS[table_format]}",
             "fits": out / "maps.fits", "png": out / "maps.png"}
    if posterior:
        paths.update({"samples": out / "posterior_samples.ecsv", "corner": out / "corner.png",
                      "profile": out / "profile.png"})
    if not plots:
        paths = {k: v for k, v in paths.items() if v.suffix != ".png"}
    return paths


def save_prediction(pred: CataloguePrediction, out_dir: str | Path, *, overwrite: bool = False,
                    command: str | None = None, table_format: str = "ecsv", plots: bool = True) -> dict[str, Path]:
    """Write ``prediction.json``, ``prediction.ecsv`` (or ``prediction.vot`` with ``table_format="votable"``:
    :meth:`CataloguePrediction.to_table`, through :func:`gcml.io.tables.write_table` as for images),
    ``maps.fits`` (:func:`write_maps_fits`) and ``maps.png`` into ``out_dir``; for mass-npe predictions also
    ``posterior_samples.ecsv`` (the samples with units), ``corner.png`` and ``profile.png``
    (:mod:`gcml.prediction.posterior_outputs`); ``plots=False`` leaves out the PNGs (a survey's quickest run).
    Returns their paths (:func:`prediction_files`).

    Raises
    ------
    OutputExistsError : a file exists and ``overwrite`` is False (checked before anything is written).
    """
    from gcml.io.common import output_lock

    # the files are one output: a run holds their lock from the existence checks to the last file, so two
    # runs into one folder never leave a mix of their files (a second writer fails with one sentence)
    with output_lock(Path(out_dir) / "prediction"):
        return _save_prediction(pred, out_dir, overwrite=overwrite, command=command, table_format=table_format,
                                plots=plots)


def _save_prediction(pred: CataloguePrediction, out_dir: str | Path, *, overwrite: bool, command: str | None,
                     table_format: str, plots: bool) -> dict[str, Path]:
    from gcml.io.common import atomic_output, check_output_path, command_line, utc_now
    from gcml.io.tables import write_table

    paths = prediction_files(out_dir, table_format=table_format, posterior=pred.is_posterior, plots=plots)
    for p in paths.values():
        check_output_path(p, overwrite=overwrite)
    d = pred.to_dict()
    d["created_utc"] = utc_now()
    d["command"] = command if command is not None else command_line()
    if pred.is_posterior:
        d["posterior_samples"] = paths["samples"].name
    with atomic_output(paths["json"], overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(d, indent=1))
    write_table(pred.to_table(), paths["table"], overwrite=overwrite)
    write_maps_fits(pred, paths["fits"], overwrite=overwrite, command=command)
    if plots:
        plot_prediction_maps(pred, paths["png"], overwrite=overwrite)
    if pred.is_posterior:
        from gcml.prediction.posterior_outputs import plot_corner, plot_profile

        write_table(pred.samples_table(), paths["samples"], overwrite=overwrite)
        if plots:
            plot_corner(pred, paths["corner"], overwrite=overwrite)
            plot_profile(pred, paths["profile"], overwrite=overwrite)
    return paths
