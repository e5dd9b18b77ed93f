"""Galaxy masses from real globular-cluster catalogues (``gcml predict catalogue.tsv``).

The method of Kaur et al. (2021, MNRAS 508, 868, Section 4) applied to an observed GC system, with
uncertainties:

1. **Positions.** GC positions are projected onto the tangent plane at the galaxy centre (the gnomonic /
   TAN projection, Calabretta & Greisen 2002, A&A 395, 1077, eqs. 54-55)::

       cos c = sin d0 sin d + cos d0 cos d cos(a - a0)
       xi    = cos d sin(a - a0) / cos c                      (towards the east)
       eta   = (cos d0 sin d - sin d0 cos d cos(a - a0)) / cos c   (towards the north)

   and scaled to kpc at the distance D: x = xi D, y = eta D. (xi, eta, line of sight) is a right-handed
   frame, as the sky axes of :func:`gcml.observe.kinematic.view_basis` used for the training maps.
2. **Velocities.** Line-of-sight velocities relative to the galaxy, v = (v_hel - v_sys) / (1 + v_sys / c),
   the (1 + z) correction of Danese, de Zotti & di Tullio (1980, A&A 82, 322). Without ``vsys`` the
   systemic velocity is the mean GC velocity (with a warning).
3. **Maps** are made by :func:`gcml.observe.kinematic.kinematic_maps`, the code that made the training
   maps, with the :class:`~gcml.observe.kinematic.MapGeometry` recorded in the model bundle (grid, extent,
   smoothing, empty-pixel threshold, error subtraction); every GC contributes, as in training.
4. **Network** (:meth:`gcml.models.trained.TrainedModel.predict_maps`): the calibrated mean and standard deviation of
   every target the model predicts (log10 total mass, M200, enclosed masses within the apertures of the
   training labels, in particular within R_out, the projected radius of the outermost GC in the map).
5. **Uncertainty.** ``n_samples`` Monte Carlo draws, each with (a) a distance from a log-normal of width
   sigma_D / D, (b) a bootstrap resample of the GCs (Efron 1979) whose velocities are perturbed by their
   errors. For each target, with mu_0, s_0 the network's mean and calibrated standard deviation on the
   observed map, mu_D the mean at the drawn distance (all GCs) and mu_B on the resampled GCs at that
   distance, the samples are

       y = mu_D + z sqrt(max(s_0', std(mu_B - mu_D))^2 + s_sys^2),   z ~ N(0, 1),

   whose 2.5/16/50/84/97.5 percentiles are reported. The network's calibrated variance already contains
   the GC sampling noise of training maps like this one, so adding the bootstrap variance in quadrature
   would count that noise twice; the bootstrap spread is used instead when it is the larger (a catalogue
   noisier than the training maps). The distance uncertainty, which the network never saw (training maps
   are in exact kpc), is propagated by the draws of mu_D. ``s_sys`` is the model's systematic term
   (``calibration.systematic_dex``: its error on simulated galaxy families it never saw) and ``s_0'`` the
   statistical part of s_0, ``sqrt(s_0^2 - s_sys^2)``; a model without one has ``s_sys = 0``.

For comparison the Watkins, Evans & An (2010, MNRAS 406, 264) tracer mass estimator within R_out is
computed from the same GCs and Monte Carlo draws (:func:`gcml.physics.tracer_mass.tracer_mass_estimator`).

``fill`` reproduces Kaur et al.'s (2021) Table 4 treatments of empty pixels: sigma of empty pixels set to 0,
50 or 100 km/s (V stays 0, the systemic velocity), or both V and sigma interpolated from the non-empty
pixels (inverse-distance weighting, power 2). It is meant for models trained without a count channel.

Why one module of ~510 lines: it holds :func:`predict_catalogue` and the named steps it is made of
(``galaxy_values`` -> ``gc_sample`` -> ``monte_carlo_maps`` -> ``network_masses`` -> ``tme_baseline`` ->
``range_checks``), each with its small result type; the result and its writers are in
``catalogue_result.py``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gcml.errors import ConfigError, FormatError, InputError
from gcml.io.bundle import SHIPPED_DIR
from gcml.models.kinematic_inputs import FILLS, fill_empty, map_dispersion, training_ranges  # noqa: F401
from gcml.physics.units import C_KMS
from gcml.prediction.catalogue_result import (  # noqa: F401  (the result and its writers, re-exported)
    TARGET_LABELS,
    CataloguePrediction,
    MassEstimate,
    percentiles,
    plot_prediction_maps,
    prediction_files,
    save_prediction,
    target_label,
    target_radius,
)
from gcml.prediction.sky import inverse_tangent_plane, mock_catalogue, tangent_plane  # noqa: F401

#: The shipped default model for catalogues: mass-npe (``scripts/train_default_npe_model.py``; model card
#: docs/model-cards/mass-npe-default.md). The shipped CNN, ``mass-cnn-default``, is one ``model=`` away.
DEFAULT_MODEL_FILE = SHIPPED_DIR / "mass-npe-default.pt"
#: Monte Carlo draws of a CNN prediction when ``n_samples`` is not given.
DEFAULT_SAMPLES = 1000
#: Fractional distance error assumed when none is given.
DEFAULT_DISTANCE_FRACTION = 0.1
#: A centre is "far from the GCs" when the GCs' median position lies further from it than this many
#: median GC radii (about the centre).
CENTRE_OFFSET_LIMIT = 0.75

def default_model_path() -> Path:
    """The shipped default galaxy-mass model (``gcml/data/models/mass-npe-default.pt``).

    Raises
    ------
    InputError : the file is not installed.
    """
    if not DEFAULT_MODEL_FILE.is_file():
        raise InputError(f"{DEFAULT_MODEL_FILE}: the default mass model is not installed; give `model` or run "
                         "scripts/train_default_npe_model.py --install")
    return DEFAULT_MODEL_FILE


def _load(bundle_or_path: str | Path | dict | None, device: str) -> tuple[Any, Path | None]:
    from gcml.models.trained import TrainedModel

    if isinstance(bundle_or_path, dict):
        return TrainedModel.load(bundle_or_path, device=device), None
    path = Path(bundle_or_path) if bundle_or_path is not None else default_model_path()
    return TrainedModel.load(path, device=device), path


def _geometry(b: Any, path: Path | None) -> Any:
    from gcml.observe.kinematic import MapGeometry

    g = b.geometry
    if g.kind not in ("", "kinematics"):
        raise InputError(f"{path or 'model'}: is a '{g.kind}' model; catalogue prediction needs a model "
                         "trained on kinematic MapSets (mass-cnn, mass-cnn-gcml, mass-npe)")
    try:
        return MapGeometry.from_attrs(g.map_attrs)
    except InputError as exc:
        raise FormatError(f"{path or 'model'}: the bundle does not record its map geometry ({exc})") from None


def _tme_settings(b: Any) -> dict[str, float]:
    raw = b.geometry.map_attrs.get("tme")
    try:
        d = json.loads(raw) if isinstance(raw, str) else dict(raw or {})
    except (TypeError, ValueError):
        d = {}
    return {"alpha": float(d.get("alpha", 0.0)), "gamma": float(d.get("gamma", 3.0)), "beta": float(d.get("beta", 0.0))}


# ------------------------------------------------------------------------------------------- predict


@dataclass
class GalaxyValues:
    """Where the galaxy is: centre [deg], distance and its error [Mpc], systemic velocity [km/s] (None:
    estimated from the GCs), effective radius [kpc], name; with the notes on where the values came from."""

    ra: float
    dec: float
    distance_mpc: float
    distance_err_mpc: float
    vsys: float | None
    r_e_kpc: float | None
    name: str | None
    notes: list[str] = field(default_factory=list)


def galaxy_values(*, galaxy: str | None = None, ra: float | None = None, dec: float | None = None,
                  distance_mpc: float | None = None, distance_err_mpc: float | None = None,
                  vsys: float | None = None, r_e_kpc: float | None = None, position: Any = None) -> GalaxyValues:
    """Step 1: the galaxy's values from a SLUGGS name (:func:`gcml.io.tables.lookup_galaxy`) and explicit
    values (which override it); ConfigError naming the missing or bad value.

    Every value may be a plain number in the unit its name says or an astropy Quantity in any compatible
    unit (:func:`quantity_values`); ``position`` is the centre as a ``SkyCoord`` instead of ``ra``/``dec``.
    """
    from gcml.io.tables import lookup_galaxy

    ra, dec, distance_mpc, distance_err_mpc, vsys, r_e_kpc, r_e_rad = quantity_values(
        ra=ra, dec=dec, position=position, distance_mpc=distance_mpc, distance_err_mpc=distance_err_mpc, vsys=vsys,
        r_e_kpc=r_e_kpc)
    info = lookup_galaxy(galaxy) if galaxy else None
    notes: list[str] = []
    if info is not None:
        ra = info.ra_deg if ra is None else ra
        dec = info.dec_deg if dec is None else dec
        distance_mpc = info.distance_mpc if distance_mpc is None else distance_mpc
        vsys = info.vsys_kms if vsys is None else vsys
        if r_e_kpc is None:
            r_e_kpc = info.r_e_arcsec * math.pi / (180 * 3600) * float(distance_mpc) * 1e3
        notes.append(f"{info.name}: centre, distance, v_sys and R_e from {info.reference}")
    if r_e_rad is not None and distance_mpc is not None:  # an angular R_e at the galaxy's distance
        r_e_kpc = r_e_rad * float(distance_mpc) * 1e3
    if ra is None or dec is None:
        raise ConfigError("`ra`/`dec`: the galaxy centre is needed; give `ra` and `dec` in degrees or "
                          "`galaxy` NAME")
    if distance_mpc is None:
        raise ConfigError("`distance_mpc`: the galaxy distance [Mpc] is needed to turn positions into kpc; "
                          "give `distance_mpc` or `galaxy` NAME")
    if not (math.isfinite(distance_mpc) and distance_mpc > 0):
        raise ConfigError(f"`distance_mpc`: expected a positive distance in Mpc, got {distance_mpc}")
    if not (-90 <= dec <= 90) or not math.isfinite(ra):
        raise ConfigError(f"`ra`/`dec`: expected degrees with -90 <= dec <= 90, got {ra}, {dec}")
    if vsys is not None and not (math.isfinite(vsys) and abs(vsys) < C_KMS):
        raise ConfigError(f"`vsys`: expected a systemic velocity in km/s below the speed of light, got {vsys}")
    if r_e_kpc is not None and not (math.isfinite(r_e_kpc) and r_e_kpc > 0):
        raise ConfigError(f"`r_e_kpc`: expected a positive effective radius in kpc, got {r_e_kpc}")
    if distance_err_mpc is None:
        distance_err_mpc = DEFAULT_DISTANCE_FRACTION * distance_mpc
        notes.append(f"distance error not given: {DEFAULT_DISTANCE_FRACTION:.0%} assumed "
                     f"({distance_err_mpc:.2f} Mpc)")
    if not (distance_err_mpc >= 0):
        raise ConfigError(f"`distance_err_mpc`: expected an error >= 0 Mpc, got {distance_err_mpc}")
    return GalaxyValues(ra=float(ra), dec=float(dec), distance_mpc=float(distance_mpc),
                        distance_err_mpc=float(distance_err_mpc), vsys=vsys, r_e_kpc=r_e_kpc,
                        name=info.name if info is not None else galaxy, notes=notes)


def quantity_values(*, ra: Any = None, dec: Any = None, position: Any = None, distance_mpc: Any = None,
                    distance_err_mpc: Any = None, vsys: Any = None, r_e_kpc: Any = None) -> tuple:
    """Plain numbers in gcml's units from what a user has: numbers (taken to be in the unit the parameter's
    name says: deg, Mpc, km/s, kpc) or astropy Quantities / Angles / Distances in any compatible unit;
    ``position`` a ``SkyCoord`` (any frame; ICRS is used) instead of ``ra``/``dec``; ``r_e_kpc`` may be an
    angle, converted at the galaxy's distance by the caller.

    Returns ``(ra, dec, distance_mpc, distance_err_mpc, vsys, r_e_kpc, r_e_rad)`` (None where not given;
    ``r_e_rad`` the angular R_e in radians when ``r_e_kpc`` was an angle, and ``r_e_kpc`` then None).

    Raises
    ------
    InputError : a Quantity whose unit does not convert, or both ``position`` and ``ra``/``dec``.
    """
    from gcml.physics.units import as_value, radec_deg

    ra, dec = radec_deg(ra, dec, position, "`position`")
    r_e_rad = None
    if getattr(getattr(r_e_kpc, "unit", None), "physical_type", None) == "angle":
        r_e_rad, r_e_kpc = float(as_value(r_e_kpc, "rad", "`r_e_kpc`")), None
    vals = []
    for v, unit, name in ((ra, "deg", "ra"), (dec, "deg", "dec"), (distance_mpc, "Mpc", "distance_mpc"),
                          (distance_err_mpc, "Mpc", "distance_err_mpc"), (vsys, "km/s", "vsys"),
                          (r_e_kpc, "kpc", "r_e_kpc")):
        v = as_value(v, unit, f"`{name}`")
        try:
            vals.append(None if v is None else float(v))
        except (TypeError, ValueError):
            raise ConfigError(f"`{name}`: expected a number in {unit} or an astropy Quantity, got {v!r}") from None
    return (*vals, r_e_rad)


@dataclass
class GCSample:
    """The catalogue's GCs in the galaxy frame: ``x``, ``y`` [kpc] on the tangent plane, ``R`` [kpc],
    ``v_rel`` [km/s] relative to the galaxy, heliocentric ``v_obs`` and errors ``e_obs``, ``infield`` (inside
    the model's map), ``vsys`` used and whether it was estimated."""

    table: Any
    x: np.ndarray
    y: np.ndarray
    R: np.ndarray
    v_obs: np.ndarray
    e_obs: np.ndarray
    v_rel: np.ndarray
    infield: np.ndarray
    vsys: float
    vsys_estimated: bool
    warnings: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return int(len(self.x))

    @property
    def n_in(self) -> int:
        return int(self.infield.sum())


def gc_sample(tab: Any, gal: GalaxyValues, extent_kpc: float) -> GCSample:
    """Step 2: select and convert: GC positions onto the tangent plane at the centre in kpc, velocities
    relative to the galaxy (``vsys`` from the GCs when not given), the GCs inside the model's map."""
    from gcml.io.tables import MIN_GCS

    warns = list(tab.warnings)
    xi, eta, cosc = tangent_plane(tab.ra_deg, tab.dec_deg, gal.ra, gal.dec)
    far = cosc <= 0.5  # more than 60 deg away
    d_kpc = gal.distance_mpc * 1e3
    x, y = xi * d_kpc, eta * d_kpc
    if np.any(far):
        raise InputError(f"{tab.path}: {int(far.sum())} GC(s) lie more than 60 deg from the centre "
                         f"({gal.ra:.5f}, {gal.dec:.5f}); expected a centre among the GCs (check `ra`/`dec` or "
                         "`galaxy`)")
    R = np.sqrt(x * x + y * y)
    r_med = float(np.median(R))
    off = float(np.hypot(np.median(x), np.median(y)))
    if off > CENTRE_OFFSET_LIMIT * r_med:
        raise InputError(f"{tab.path}: the centre ({gal.ra:.5f}, {gal.dec:.5f}) is far from the GCs (their median "
                         f"position is {off:.1f} kpc from it, their median radius about it {r_med:.1f} kpc); "
                         "expected a centre among the GCs (check `ra`/`dec` or `galaxy`)")
    half = float(extent_kpc) / 2.0
    infield = (np.abs(x) <= half) & (np.abs(y) <= half)
    n_in = int(infield.sum())
    if n_in < MIN_GCS:
        raise InputError(f"{tab.path}: only {n_in} GCs fall inside the model's {extent_kpc:g} kpc map at "
                         f"{gal.distance_mpc:g} Mpc; expected at least {MIN_GCS} (check `distance_mpc` and the centre)")
    v_obs, e_obs = tab.v_kms, tab.v_err_kms
    vsys_est = gal.vsys is None
    vsys = float(np.mean(v_obs)) if vsys_est else float(gal.vsys)
    if vsys_est:
        warns.append(f"systemic velocity not given: estimated from the GCs as {vsys:.1f} ± "
                     f"{np.std(v_obs) / math.sqrt(len(v_obs)):.1f} km/s (re-estimated in every Monte Carlo draw)")
    v_rel = (v_obs - vsys) / (1.0 + vsys / C_KMS)
    return GCSample(table=tab, x=x, y=y, R=R, v_obs=v_obs, e_obs=e_obs, v_rel=v_rel, infield=infield, vsys=vsys,
                    vsys_estimated=vsys_est, warnings=warns)


@dataclass
class MonteCarloMaps:
    """Step 3's maps: row 0 the observed GCs, rows 1..S at the drawn distances (all GCs), rows S+1..2S the
    bootstrap resamples with perturbed velocities at those distances; ``xb``, ``yb``, ``vb`` the resampled
    GCs (for the tracer mass estimator); ``dscale`` (S,) the drawn distances over the nominal one."""

    maps: np.ndarray
    xb: np.ndarray
    yb: np.ndarray
    vb: np.ndarray
    n_samples: int
    dscale: np.ndarray | None = None


def monte_carlo_maps(gcs: GCSample, gal: GalaxyValues, geom: Any, n_samples: int, rng: np.random.Generator
                     ) -> MonteCarloMaps:
    """Step 3: the observed map and the Monte Carlo maps (distance, bootstrap + velocity errors), drawn in a
    fixed order from ``rng``, made by :func:`gcml.observe.kinematic.kinematic_maps` as in training."""
    from gcml.observe.kinematic import kinematic_maps

    s, n = int(n_samples), gcs.n
    x, y, v_obs, e_obs = gcs.x, gcs.y, gcs.v_obs, gcs.e_obs
    frac = gal.distance_err_mpc / gal.distance_mpc
    dscale = np.exp(frac * rng.standard_normal(s)) if frac > 0 else np.ones(s)    # (S,)
    boot = rng.integers(0, n, size=(s, n))                                           # (S, N)
    noise = rng.standard_normal((s, n))
    vb_hel = v_obs[boot] + e_obs[boot] * noise
    vsys_b = vb_hel.mean(1, keepdims=True) if gcs.vsys_estimated else np.full((s, 1), gcs.vsys)
    vb = (vb_hel - vsys_b) / (1.0 + vsys_b / C_KMS)
    xb, yb = x[boot] * dscale[:, None], y[boot] * dscale[:, None]
    xd, yd = x[None, :] * dscale[:, None], y[None, :] * dscale[:, None]
    vd = np.broadcast_to(gcs.v_rel, (s, n))
    xs = np.concatenate([x[None], xd, xb])                                           # (1 + 2S, N)
    ys = np.concatenate([y[None], yd, yb])
    vs = np.concatenate([gcs.v_rel[None], vd, vb])
    es = np.concatenate([e_obs[None], np.broadcast_to(e_obs, (s, n)), e_obs[boot]])
    maps = kinematic_maps(xs, ys, vs, geom, v_err=es)                                # (1 + 2S, 3, H, W)
    return MonteCarloMaps(maps=maps, xb=xb, yb=yb, vb=vb, n_samples=s, dscale=dscale)


def network_masses(tm: Any, x_net: np.ndarray, n_samples: int, rng: np.random.Generator, r_out: float,
                   r_e_kpc: float | None) -> dict[str, MassEstimate]:
    """Step 4: the network on the Monte Carlo maps (channels already the model's), combined into the
    percentiles of each target (module docstring, item 5)."""
    s = int(n_samples)
    mean, std = tm.predict_maps(x_net)                                               # (1 + 2S, T)
    mu0, sd0 = mean[0], std[0]
    mu_d, mu_b = mean[1:s + 1], mean[s + 1:]
    zz = rng.standard_normal((s, mean.shape[1]))
    units = tm.target_units
    sys_sd = np.broadcast_to(np.asarray(tm.task.systematic, float), (mean.shape[1],))
    stat0 = tm.task.statistical_std(sd0)
    masses: dict[str, MassEstimate] = {}
    for j, name in enumerate(tm.targets):
        boot_sd = float(np.std(mu_b[:, j] - mu_d[:, j]))
        width = math.hypot(max(float(stat0[j]), boot_sd), float(sys_sd[j]))
        med, p16, p84, p2, p97 = percentiles(mu_d[:, j] + width * zz[:, j])
        masses[name] = MassEstimate(
            name=name, label=target_label(name, r_out), unit=(units[j] if j < len(units) else "") or "dex(Msun)",
            median=med, p16=p16, p84=p84, p2_5=p2, p97_5=p97, network_mean=float(mu0[j]),
            network_std=float(sd0[j]), bootstrap_std=boot_sd, distance_std=float(np.std(mu_d[:, j])),
            radius_kpc=target_radius(name, r_out, r_e_kpc), systematic_std=float(sys_sd[j]))
    return masses


def tme_baseline(gcs: GCSample, mc: MonteCarloMaps, extent_kpc: float, settings: dict[str, float],
                 r_out: float) -> dict[str, Any]:
    """Step 5: the Watkins et al. (2010) tracer mass estimator within R_out on the same GCs and draws."""
    from gcml.physics.tracer_mass import tracer_mass_estimator

    half = float(extent_kpc) / 2.0
    mb_in = (np.abs(mc.xb) <= half) & (np.abs(mc.yb) <= half)
    tm0, _ = tracer_mass_estimator(gcs.R[None], gcs.v_rel[None], mask=gcs.infield[None], **settings)
    tmb, _ = tracer_mass_estimator(np.sqrt(mc.xb * mc.xb + mc.yb * mc.yb), mc.vb, mask=mb_in, **settings)
    with np.errstate(divide="ignore", invalid="ignore"):
        ltm = np.log10(tmb[np.isfinite(tmb) & (tmb > 0)])
    tme = {"log10_mass_observed": float(np.log10(tm0[0])) if np.isfinite(tm0[0]) and tm0[0] > 0 else float("nan"),
           "r_out_kpc": r_out, **settings, "reference": "Watkins, Evans & An 2010, MNRAS 406, 264"}
    if len(ltm):
        tme.update(zip(("median", "p16", "p84", "p2_5", "p97_5"), percentiles(ltm), strict=True))
    return tme


def range_checks(tm: Any, gcs: GCSample, masses: dict[str, MassEstimate], map_disp: float, r_out: float,
                 extent_kpc: float, *, posterior: bool = False) -> tuple[dict[str, Any], list[str], list[str]]:
    """Step 6: the catalogue compared with the training data; returns (training ranges, warnings, notes).
    ``posterior``: a mass-npe model (GCs outside the map are its input with ``in_map = 0``)."""
    b = tm.bundle
    warns: list[str] = []
    notes: list[str] = []
    n_in = gcs.n_in
    ranges = b.training_ranges
    attrs = b.geometry.map_attrs
    if not ranges:
        notes.append("the model bundle records no training ranges (extra.training_ranges); out-of-range checks "
                     "are limited to the velocity errors")
    if "n_gc" in ranges and n_in < ranges["n_gc"]["p01"]:
        warns.append(f"only {n_in} GCs lie in the map; the model was trained on maps with "
                     f"{ranges['n_gc']['p01']:.0f}-{ranges['n_gc']['p99']:.0f} GCs (1st-99th percentile): "
                     "expect a less certain, possibly biased mass")
    if "r_out_kpc" in ranges and r_out < ranges["r_out_kpc"]["p01"]:
        warns.append(f"the GCs reach only R_out = {r_out:.1f} kpc; the training maps reach "
                     f"{ranges['r_out_kpc']['p01']:.1f}-{ranges['r_out_kpc']['p99']:.1f} kpc: total masses are "
                     "extrapolated beyond the data")
    if "map_dispersion_kms" in ranges:
        lo, hi = ranges["map_dispersion_kms"]["p01"], ranges["map_dispersion_kms"]["p99"]
        if not (lo <= map_disp <= hi):
            warns.append(f"the map's mean velocity dispersion {map_disp:.0f} km/s is outside the training maps' "
                         f"{lo:.0f}-{hi:.0f} km/s (1st-99th percentile): the mass is an extrapolation")
    vmax = attrs.get("v_error_max_kms", ranges.get("v_error_max_kms"))
    e_obs = gcs.e_obs
    if vmax is not None and len(e_obs) and float(np.median(e_obs)) > float(vmax):
        warns.append(f"the median velocity error {np.median(e_obs):.0f} km/s exceeds the training maps' "
                     f"{float(vmax):.0f} km/s; the dispersion is inflated by noise the model has not seen")
    vmin = attrs.get("v_error_min_kms", ranges.get("v_error_min_kms"))
    if posterior and vmin is not None and len(e_obs) and float(np.median(e_obs)) < float(vmin):
        # mass-npe reads every GC's error: errors of 0 (a table without them) lie outside what it was trained on
        warns.append(f"the median velocity error {np.median(e_obs):.1f} km/s is below the smallest training error "
                     f"({float(vmin):g} km/s); this model reads each GC's error, so its posterior is an "
                     "extrapolation: give the catalogue's errors if it has them")
    n_out = gcs.n - n_in
    if n_out and posterior:
        notes.append(f"{n_out} GC(s) lie outside the {extent_kpc:g} kpc map; they are passed to the network "
                     "flagged as outside it (in_map = 0), as in training")
    elif n_out:
        notes.append(f"{n_out} GC(s) lie outside the {extent_kpc:g} kpc map; they weigh on the edge pixels "
                     "through the smoothing kernel, as in training")
    task = tm.task
    if hasattr(task, "y_min"):
        warns += label_warnings(masses, list(tm.targets), task.y_min, task.y_max)
    return ranges, warns, notes


#: A result closer than this to either end of the training labels' range is "at the edge" [dex].
EDGE_MARGIN_DEX = 0.15


def label_warnings(masses: dict[str, MassEstimate], names: list[str], lo: Any, hi: Any) -> list[str]:
    """Warnings for masses outside the training labels' range [lo, hi] (per target), or at its edge: a median
    within :data:`EDGE_MARGIN_DEX` of either end, or a 95 % interval reaching beyond it (the network
    saturates there and cannot return more, or less)."""
    out = []
    for j, name in enumerate(names):
        m = masses.get(name)
        if m is None:
            continue
        lo_t, hi_t = float(np.asarray(lo).ravel()[j]), float(np.asarray(hi).ravel()[j])
        if m.median < lo_t or m.median > hi_t:
            out.append(f"{name} = {m.median:.2f} is outside the training labels' range {lo_t:.2f}-{hi_t:.2f}")
        elif m.median > hi_t - EDGE_MARGIN_DEX or m.p97_5 > hi_t:
            out.append(f"{m.label} = {m.median:.2f} sits at the upper edge of the training labels "
                       f"({lo_t:.2f}-{hi_t:.2f}): the network cannot return more, the true mass may be higher")
        elif m.median < lo_t + EDGE_MARGIN_DEX or m.p2_5 < lo_t:
            out.append(f"{m.label} = {m.median:.2f} sits at the lower edge of the training labels "
                       f"({lo_t:.2f}-{hi_t:.2f}): the network cannot return less, the true mass may be lower")
    return out


def predict_catalogue(
    table_path: str | Path,
    bundle_or_path: str | Path | dict | None = None,
    *,
    galaxy: str | None = None,
    ra: float | None = None,
    dec: float | None = None,
    distance_mpc: float | None = None,
    distance_err_mpc: float | None = None,
    vsys: float | None = None,
    r_e_kpc: float | None = None,
    fill: str | None = None,
    n_samples: int | None = None,
    seed: int = 0,
    ra_col: str | None = None,
    dec_col: str | None = None,
    v_col: str | None = None,
    verr_col: str | None = None,
    device: str = "cpu",
    position: Any = None,
) -> CataloguePrediction:
    """Predict a galaxy's masses from its GC catalogue (see the module docstring for the method).

    The steps, each a function of this module: :func:`galaxy_values` -> read the table
    (:func:`gcml.io.tables.read_gc_table`) -> :func:`gc_sample` (select and convert) -> :func:`monte_carlo_maps`
    (build maps) -> :func:`network_masses` (predict) -> :func:`tme_baseline` (baseline) -> :func:`range_checks`
    -> the :class:`CataloguePrediction`.

    A ``mass-npe`` model (task ``catalogue-npe``) goes through the same steps up to the Monte Carlo draws,
    whose distances it uses; instead of :func:`network_masses` the GCs themselves are passed to its
    posterior (:func:`gcml.prediction.catalogue_npe.npe_catalogues` and
    :func:`~gcml.prediction.catalogue_npe.posterior_masses`): the result then has ``method == "posterior"``
    and carries the posterior ``samples``.

    The galaxy's values may be plain numbers in the units below or astropy Quantities in any compatible
    unit (``distance_mpc=10.9 * u.Mpc``, ``vsys=690 * u.km / u.s``, ``r_e_kpc=35 * u.arcsec``), and the
    centre a ``SkyCoord`` (``position``); the same numbers give the same result either way.

    Parameters
    ----------
    table_path : GC catalogue (any table :func:`gcml.io.tables.read_gc_table` reads), or an astropy
        ``Table``/``QTable`` in memory (column units are converted; a ``SkyCoord`` column is the position)
    bundle_or_path : model bundle path or dict; None: the shipped default (:func:`default_model_path`)
    galaxy : SLUGGS galaxy name ("NGC 3377") filling the centre, distance, vsys and R_e
        (:func:`gcml.io.tables.lookup_galaxy`); explicit values override it
    ra, dec : galaxy centre [deg] (numbers, Angles or Quantities)
    distance_mpc : distance [Mpc]; distance_err_mpc its 1-sigma error (default 10 %)
    vsys : systemic velocity [km/s]; None: the mean GC velocity (with a warning)
    r_e_kpc : effective radius [kpc], or an angle (converted at the distance) (only reported: R_out / R_e)
    fill : Kaur et al. Table 4 filling of empty pixels ("0", "50", "100", "interp"), or None
    n_samples : Monte Carlo draws (distance, bootstrap, velocity errors; default 1000), or for a mass-npe
        model posterior samples (default 10,000, spread over up to 1000 distance draws)
    seed : random seed (same seed, same result)
    ra_col, dec_col, v_col, verr_col : catalogue column names (found automatically otherwise)
    device : torch device
    position : galaxy centre as an astropy ``SkyCoord`` (any frame), instead of ``ra``/``dec``

    Returns
    -------
    CataloguePrediction

    Raises
    ------
    InputError, ConfigError, FormatError : bad catalogue, missing galaxy values, unusable model, a centre far
        from the GCs, fewer than 10 GCs in the map.
    """
    from gcml.io.tables import read_gc_table
    from gcml.observe.kinematic import CHANNELS
    from gcml.random import make_rng

    if n_samples is not None and n_samples < 10:
        raise ConfigError(f"`n_samples`: expected at least 10 Monte Carlo samples, got {n_samples}")
    from gcml.io.common import check_resources

    if fill is not None:
        fill = str(fill).strip().lower()
        fill = {"interpolation": "interp", "0.0": "0", "50.0": "50", "100.0": "100"}.get(fill, fill)
        if fill not in FILLS:
            raise ConfigError(f"`fill`: expected one of {', '.join(FILLS)}, got '{fill}'")
    gal = galaxy_values(galaxy=galaxy, ra=ra, dec=dec, distance_mpc=distance_mpc, distance_err_mpc=distance_err_mpc,
                        vsys=vsys, r_e_kpc=r_e_kpc, position=position)
    tab = read_gc_table(table_path, ra_col=ra_col, dec_col=dec_col, v_col=v_col, verr_col=verr_col)
    tm, mpath = _load(bundle_or_path, device)
    if getattr(tm.task, "source", "targets") != "targets":
        raise InputError(f"{mpath or 'model'}: predicts maps, not scalar masses; expected a mass-cnn model")
    posterior = getattr(tm.task, "input_kind", "maps") == "catalogue"  # mass-npe: reads the GCs themselves
    if posterior and fill is not None:
        raise ConfigError(f"`fill`: fills empty map pixels; {mpath or 'the model'} is a mass-npe model, which reads "
                          "the GCs themselves, not maps (leave `fill` out)")
    if n_samples is None:
        from gcml.prediction.catalogue_npe import DEFAULT_NPE_SAMPLES

        n_samples = DEFAULT_NPE_SAMPLES if posterior else DEFAULT_SAMPLES
    n_draws = n_samples
    sample_bytes = 0.0
    if posterior:
        from gcml.prediction.catalogue_npe import baseline_draws

        n_draws = baseline_draws(n_samples)
        # the posterior samples (float64, kept twice) and a float32 copy, a lower bound on the flow's own memory
        sample_bytes = float(n_samples) * len(tm.targets) * (8 * 2 + 4)
    check_resources("predict", memory=float(n_draws) * 8 * 3 * 10 * 10 * 4 + sample_bytes)
    geom = _geometry(tm.bundle, mpath)
    missing = [] if posterior else [c for c in tm.channels if c not in CHANNELS]
    if missing:
        raise FormatError(f"{mpath or 'model'}: reads channel(s) {', '.join(missing)} that kinematic maps do not "
                          f"have (v, sigma, count)")
    gcs = gc_sample(tab, gal, float(geom.extent_kpc))
    warns = list(gcs.warnings)
    disp = float(np.sqrt(max(np.mean(gcs.v_rel[gcs.infield] ** 2) - np.mean(gcs.e_obs[gcs.infield] ** 2), 0.0)))

    rng = make_rng(seed)
    mc = monte_carlo_maps(gcs, gal, geom, n_draws, rng)
    r_out = float(gcs.R[gcs.infield].max())
    if posterior:
        return _posterior_prediction(tm, mpath, tab, gal, gcs, mc, geom, n_samples, seed, rng, r_out, disp, warns)
    net_in = mc.maps
    if fill is not None:
        net_in = fill_empty(mc.maps, mc.maps[:, 2], float(geom.min_count), fill)
        if "count" in tm.channels:
            warns.append(f"`fill` {fill}: this model reads the count channel and was trained with empty pixels "
                         "at V = sigma = 0; filled maps lie outside its training data (Kaur et al. Table 4 "
                         "fillings are meant for models without a count channel)")
    x_net = net_in[:, [CHANNELS.index(c) for c in tm.channels]]
    masses = network_masses(tm, x_net, mc.n_samples, rng, r_out, gal.r_e_kpc)
    tme = tme_baseline(gcs, mc, float(geom.extent_kpc), _tme_settings(tm.bundle), r_out)
    mdisp = float(map_dispersion(mc.maps[:1], float(geom.min_count))[0])
    ranges, range_warns, range_notes = range_checks(tm, gcs, masses, mdisp, r_out, float(geom.extent_kpc))

    return CataloguePrediction(
        table=tab.path, model=mpath, galaxy=gal.name, ra_deg=gal.ra, dec_deg=gal.dec,
        distance_mpc=gal.distance_mpc, distance_err_mpc=gal.distance_err_mpc, vsys_kms=gcs.vsys,
        vsys_estimated=gcs.vsys_estimated, r_e_kpc=float(gal.r_e_kpc) if gal.r_e_kpc else None, n_gc=gcs.n,
        n_gc_in_map=gcs.n_in, r_out_kpc=r_out, r_max_kpc=float(gcs.R.max()), velocity_dispersion_kms=disp,
        map_dispersion_kms=mdisp, masses=masses, tme=tme, maps=mc.maps[0], network_input=x_net[0],
        channels=list(tm.channels), geometry=geom.to_attrs(), fill=fill, n_samples=mc.n_samples, seed=int(seed),
        columns=tab.columns, training_ranges=ranges, warnings=warns + range_warns,
        notes=gal.notes + range_notes)


def _posterior_prediction(tm: Any, mpath: Path | None, tab: Any, gal: GalaxyValues, gcs: GCSample, mc: MonteCarloMaps,
                          geom: Any, n_samples: int, seed: int, rng: np.random.Generator, r_out: float, disp: float,
                          warns: list[str]) -> CataloguePrediction:
    """The mass-npe branch of :func:`predict_catalogue` after the common steps: the GCs as the model's
    catalogues at the Monte Carlo distances, the posterior, the TME baseline and the range checks."""
    from gcml.prediction.catalogue_npe import distance_draws, npe_catalogues, posterior_masses, vsys_draws

    extent = float(geom.extent_kpc)
    k = distance_draws(n_samples)                     # the first k of the Monte Carlo distances (iid draws)
    dscale = mc.dscale[:k]
    vk = vsys_draws(gcs.v_obs, gcs.vsys, gcs.vsys_estimated, k, rng)
    cats = npe_catalogues(gcs.x, gcs.y, gcs.v_obs, gcs.e_obs, gcs.vsys, vk, dscale, extent)
    post = posterior_masses(tm, cats, dscale, gal.distance_mpc, n_samples, seed, r_out, gal.r_e_kpc)
    tme = tme_baseline(gcs, mc, extent, _tme_settings(tm.bundle), r_out)
    mdisp = float(map_dispersion(mc.maps[:1], float(geom.min_count))[0])
    ranges, range_warns, range_notes = range_checks(tm, gcs, post.masses, mdisp, r_out, extent,
                                                      posterior=True)
    notes = [f"mass-npe posterior: {len(post.samples)} samples over {k} distance draws; the velocity errors are an "
             "input of the network and the GC sampling noise is part of its posterior (no bootstrap)"]
    if gcs.vsys_estimated:
        notes.append("v_sys estimated from the GCs: drawn from its standard error in every distance draw")
    h, w = mc.maps.shape[-2:]
    return CataloguePrediction(
        table=tab.path, model=mpath, galaxy=gal.name, ra_deg=gal.ra, dec_deg=gal.dec,
        distance_mpc=gal.distance_mpc, distance_err_mpc=gal.distance_err_mpc, vsys_kms=gcs.vsys,
        vsys_estimated=gcs.vsys_estimated, r_e_kpc=float(gal.r_e_kpc) if gal.r_e_kpc else None, n_gc=gcs.n,
        n_gc_in_map=gcs.n_in, r_out_kpc=r_out, r_max_kpc=float(gcs.R.max()), velocity_dispersion_kms=disp,
        map_dispersion_kms=mdisp, masses=post.masses, tme=tme, maps=mc.maps[0],
        network_input=np.zeros((0, h, w), np.float32), channels=[], geometry=geom.to_attrs(), fill=None,
        n_samples=len(post.samples), seed=int(seed), columns=tab.columns, training_ranges=ranges,
        warnings=warns + range_warns, notes=gal.notes + notes + range_notes, method="posterior",
        samples=post.samples, sample_distance_mpc=post.sample_distance_mpc, n_distance_draws=post.n_distance_draws)
