"""``mock-observe``: snapshots -> pi-DOC mock images (photometry) or Kaur-style V/sigma maps (kinematics).

The driver enumerates images before reading any snapshot: snapshot ``s`` (in input order; folders in
natural file-name order) gets ``n_per`` images, image ``i = s * n_per + j`` draws its random choices
(centre shift, rotation, random viewing direction, noise) from ``item_rng(seed, i)``, and the random
subset of the (axis, distance, PSF) grid of a snapshot from ``item_rng(seed, s, stream=1)``. The output
therefore does not depend on ``workers`` or on how a run is sharded (``--shard K/N`` makes the K-th
contiguous block of snapshots; ``gcml merge`` joins the shards in order into the single-run file).

Rows are streamed to a :class:`gcml.io.mapset.MapSetWriter` one snapshot at a time, so memory stays
bounded whatever the number of snapshots.

Why one module of ~630 lines: input expansion, split assignment, the per-snapshot photometry and kinematics
workers and the FITS side outputs all follow the image enumeration described above (image ``i`` of
snapshot ``s``); splitting them would spread that one contract over several files. The settings live in
:mod:`gcml.observe.config`, the image physics in :mod:`gcml.observe.photometric`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gcml.errors import ConfigError, InputError
from gcml.io.snapshots.snapshot import projected_half_light_radius
from gcml.observe.config import (  # noqa: F401  (re-exported: they lived here before issue 14)
    AXIS_ANGLES,
    AXIS_CHOICES,
    CENTRES,
    FITS_FLAVOURS,
    FLUX_CONVENTIONS,
    KINDS,
    SPLIT_BY,
    MockObserveConfig,
)
from gcml.observe.photometric import (
    ARCSEC_PC_PER_KPC,
    PhotometricImager,
    cluster_centre,
    projection_matrix,
    to_pidoc_flux,
)
from gcml.random import item_rng


@dataclass
class MockObserveResult:
    """What a run made: output path, counts, timing, FITS files."""

    path: Path
    n_images: int
    n_snapshots: int
    seconds: float
    kind: str
    fits_files: list[Path] = field(default_factory=list)
    split_by: str = "simulation"
    warnings: list[str] = field(default_factory=list)

    @property
    def images_per_second(self) -> float:
        return self.n_images / self.seconds if self.seconds > 0 else float("inf")


# ---------------------------------------------------------------------------------------------------
# Inputs


def expand_inputs(inputs: Sequence[str | Path], *, pattern: str | None = None, partial: bool = False) -> list[Path]:
    """Snapshot files from files and folders, in the order given (folders in natural name order)."""
    from gcml.io.snapshots import list_snapshot_files

    if not inputs:
        raise InputError("no input snapshots given; pass snapshot files or folders")
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if not p.exists():
            raise InputError(f"{p}: file or folder not found")
        files.extend(list_snapshot_files(p, pattern=pattern, partial=partial) if p.is_dir() else [p])
    return files


def split_keys(meta: dict[str, np.ndarray], split_by: str, images_per_snapshot: int) -> np.ndarray:
    """Group keys for :func:`gcml.io.mapset.assign_splits` (same key -> same split)."""
    gid = np.asarray(meta["group_id"], np.int64)
    sid = np.asarray(meta["snapshot_id"], np.int64)
    if split_by == "simulation":
        return gid
    if split_by == "snapshot":
        return (gid * 1_000_003 + sid) % (2**62)
    # images: snapshot s holds images s * per ... s * per + per - 1 of the run, whatever the sharding
    first = np.r_[True, sid[1:] != sid[:-1]]
    within = np.arange(len(sid)) - np.maximum.accumulate(np.where(first, np.arange(len(sid)), 0))
    return sid * images_per_snapshot + within


def simulation_of(path: Path) -> str:
    """The simulation a snapshot file belongs to, without reading its particles (as :func:`load_snapshot`
    names it: a gcml snapshot's ``simulation`` attribute, otherwise the file's stem)."""
    with open(path, "rb") as fh:
        is_h5 = fh.read(8) == b"\x89HDF\r\n\x1a\n"
    if is_h5:
        import h5py

        try:
            with h5py.File(path, "r") as f:
                sim = f.attrs.get("simulation", "")
        except OSError:  # unreadable (e.g. truncated): the snapshot reader reports it when the file is read
            return path.stem
        sim = sim.decode() if isinstance(sim, bytes) else str(sim)
        if sim:
            return sim
    return path.stem


def _splits_of(files: Sequence[Path], sims: list[str], mode: str, per: int, config: MockObserveConfig) -> np.ndarray:
    from gcml.io.mapset import assign_splits

    n = len(files)
    meta = {"group_id": np.repeat([group_id_of(sims[i]) for i in range(n)], per).astype(np.int64),
            "snapshot_id": np.repeat(np.arange(n), per).astype(np.int64)}
    return assign_splits(split_keys(meta, mode, per), config.split_fractions, config.seed)


def resolve_split_by(files: Sequence[Path], config: MockObserveConfig) -> tuple[str, list[str]]:
    """What ``--split-by`` means for these inputs, and warnings for the user.

    ``auto`` (the default) splits over whole simulations when every split (train, val, test) gets one;
    otherwise (``gcml simulate-clusters`` makes one simulation per run) over snapshots, or failing that
    over images, and says so: those splits are correlated (the same cluster at other ages or from other
    views) and make test scores optimistic. An explicit ``simulation`` that leaves a split empty is refused
    with the fix named, before any work.
    """
    from gcml.io.mapset import SPLIT_NAMES

    if config.split_by in ("snapshot", "image") or not files:
        return config.split_by, []
    sims = [simulation_of(Path(f)) for f in files]
    per = config.images_per_snapshot
    wanted = [i for i, f in enumerate(config.split_fractions) if f > 0]

    def empty(mode: str, need: list[int]) -> list[str]:
        sp = _splits_of(files, sims, mode, per, config)
        return [SPLIT_NAMES[i] for i in need if not (sp == i).any()]

    missing = empty("simulation", wanted)
    if not missing:
        return "simulation", []
    uniq = sorted(set(sims))
    where = Path(files[0]).parent
    f_min = min(config.split_fractions[i] for i in wanted)
    fix = (f"simulate more clusters into the folder ('gcml simulate-clusters -o {where}/ --seed 2', 3, ...: each "
           f"simulation lands in a split at random with the fractions of `split_fractions`, so about {math.ceil(2 / f_min)} "
           "runs give every split one)")
    what = (f"the {len(files)} snapshots come from {len(uniq)} simulation{'s' if len(uniq) != 1 else ''} "
            f"({', '.join(uniq[:3])}{', ...' if len(uniq) > 3 else ''}), so splitting over simulations leaves "
            f"the {' and '.join(missing)} split{'s' if len(missing) > 1 else ''} empty")
    if config.split_by == "simulation":
        raise InputError(f"{where}: {what} and 'gcml train' could not validate; {fix}, or pass `split_by` "
                         "snapshot (ages of one cluster then fall in different splits: correlated, optimistic)")
    need = [i for i in (0, 1) if i in wanted]  # training needs train and validation; test may stay empty
    for mode in ("snapshot", "image"):
        still = empty(mode, need)
        if not still:
            test_empty = 2 in wanted and empty(mode, [2])
            return mode, [f"{what}: split over {mode}s instead (the same cluster at other "
                          f"{'ages' if mode == 'snapshot' else 'ages or views'} is then in other splits, so test "
                          f"scores are optimistic){'; the test split is empty' if test_empty else ''}; for "
                          f"independent splits {fix}"]
    return "simulation", [f"{what}, and even split over images the training or validation split stays empty; "
                          f"'gcml train' needs both (the file serves prediction and evaluation): {fix}"]


def group_id_of(name: str) -> int:
    """A stable integer id of a simulation name (first 6 bytes of its SHA-256), equal across runs."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:6], "big")


def load_snapshot(path: Path, config: MockObserveConfig) -> Any:
    """Read a snapshot and make sure it has V-band luminosities (photometry) and an age.

    ``config.age_gyr`` and ``config.metallicity``, when given, replace the snapshot's own values.
    Luminosities, in order of preference: the snapshot's own ``lum_v``; ``lum_bol`` and ``teff`` with the
    Reed (1998) bolometric correction; the stellar-evolution table (``mass_initial`` or ``mass``) at the
    snapshot's age and metallicity.
    """
    from dataclasses import replace

    from gcml.io.snapshots import read_snapshot

    snap = read_snapshot(path)
    if snap.n == 0:
        raise InputError(f"{path}: the snapshot has no particles")
    if config.age_gyr is not None:
        snap = replace(snap, age=float(config.age_gyr))
    if config.metallicity is not None:
        snap = replace(snap, metallicity=float(config.metallicity))
    if config.kind != "photometry":
        return snap
    if snap.lum_v is not None and np.all(np.isfinite(snap.lum_v)):
        pass
    elif snap.lum_bol is not None and snap.teff is not None:
        from gcml.physics.photometry import lum_v_from_bolometric

        snap = replace(snap, lum_v=np.asarray(lum_v_from_bolometric(snap.lum_bol, snap.teff), float))
    else:
        age, z = snap.age, snap.metallicity
        if age is None or not np.isfinite(age) or z is None or not np.isfinite(z):
            raise InputError(f"{path}: the snapshot has no V-band luminosities; pass `age_gyr` GYR and "
                             "`metallicity` Z to take them from the stellar-evolution table")
        snap = replace(snap, lum_v=stellar_lum_v(snap, float(age), float(z), path))
    if np.any(~np.isfinite(snap.lum_v)) or np.any(snap.lum_v < 0):
        raise InputError(f"{path}: lum_v has negative or non-finite values")
    return snap


def stellar_lum_v(snap: Any, age_gyr: float, metallicity: float, path: Path) -> np.ndarray:
    """V-band luminosities from the stellar-evolution table (:func:`gcml.physics.stellar.evolve_stars`).

    The table wants zero-age masses: ``mass_initial`` when the snapshot has them, else the current masses
    (exact at t = 0, and for the main-sequence stars that dominate the light of an old cluster below the
    turn-off; evolved stars and remnants of an old N-body snapshot are then approximate).
    """
    try:
        from gcml.physics.stellar import evolve_stars
    except ImportError:  # pragma: no cover - the table ships with gcml
        raise InputError(f"{path}: the snapshot has no luminosities and this gcml has no "
                         "stellar-evolution table (gcml.physics.stellar)") from None
    m0 = snap.mass_initial if snap.mass_initial is not None else snap.mass
    return np.asarray(evolve_stars(m0, age_gyr, metallicity).lum_v, float)


# ---------------------------------------------------------------------------------------------------
# Per-snapshot work (runs in worker processes)


def _views_for_snapshot(config: MockObserveConfig, s: int) -> list[tuple[str, float, float]]:
    grid = config.grid()
    if config.n_random <= 0:
        return grid
    rng = item_rng(config.seed, s, stream=1)
    k = config.n_random
    idx = rng.choice(len(grid), size=k, replace=k > len(grid))
    return [grid[i] for i in idx]


def _image_randoms(config: MockObserveConfig, index: int, axis: str) -> dict[str, Any]:
    """Random choices of one image from its own stream (shift, rotation, direction, then noise)."""
    rng = item_rng(config.seed, index)
    u = rng.random(6)
    shift = (2.0 * u[0:2] - 1.0) * config.max_shift_arcsec
    rot = int(min(3, math.floor(u[2] * 4))) if config.rotate else 0
    if axis == "random":
        theta, phi = math.acos(min(1.0, max(-1.0, 2.0 * u[3] - 1.0))), 2.0 * math.pi * u[4]
    else:
        theta, phi = AXIS_ANGLES[axis]
    return {"shift": shift, "rot": rot, "theta": theta, "phi": phi, "rng": rng}


def _snapshot_setup(path: Path, s: int, config: MockObserveConfig) -> tuple[Any, list, list[dict[str, Any]]]:
    """Snapshot ``s`` loaded, its views, and the random draws of each of its images (image ``s * per + j``
    of the run draws from its own stream, whatever the sharding or the worker count)."""
    snap = load_snapshot(path, config)
    views = _views_for_snapshot(config, s)
    first = s * config.images_per_snapshot
    return snap, views, [_image_randoms(config, first + j, views[j][0]) for j in range(len(views))]


def _photometry_snapshot(path: Path, s: int, config: MockObserveConfig, threads: int = 1) -> dict[str, Any]:
    snap, views, rnd = _snapshot_setup(path, s, config)
    n = len(views)
    imager = _imager(config, threads)
    if config.centre == "shrinking-sphere":
        c = cluster_centre(snap.pos, snap.mass)
    elif config.centre == "com":
        c = np.average(snap.pos, axis=0, weights=snap.mass) if snap.mass.sum() > 0 else snap.pos.mean(0)
    else:
        c = np.zeros(3)
    rel = snap.pos - c
    geo = config.geometry
    h = geo.n_pix
    flux = np.empty((n, 1, h, h), np.float32)
    mass = np.empty((n, 1, h, h), np.float32)
    lum_fov = np.empty(n)
    mass_fov = np.empty(n)
    # the cluster's projected half-light radius [pc] (median of x, y, z; once per snapshot: ~2 ms each)
    r_half = np.full(n, projected_half_light_radius(rel, snap.lum_v))
    # Views sharing a projection (named axis) are binned together; random directions one by one.
    keys: dict[tuple, list[int]] = {}
    for j, (axis, _, _) in enumerate(views):
        key = (axis,) if axis != "random" else ("random", j)
        keys.setdefault(key, []).append(j)
    for key, js in keys.items():
        r0 = rnd[js[0]]
        p = projection_matrix(key[0] if key[0] != "random" else (r0["theta"], r0["phi"]))
        xy = rel @ p[:2].T
        res = imager.images(
            xy, snap.lum_v, snap.mass,
            distance_kpc=np.array([views[j][1] for j in js]), psf_fwhm=np.array([views[j][2] for j in js]),
            rotation_k=np.array([rnd[j]["rot"] for j in js]),
            shift_arcsec=np.array([rnd[j]["shift"] for j in js]),
            rngs=[rnd[j]["rng"] for j in js],
        )
        f = res.flux
        if config.flux_convention == "pidoc":
            f = to_pidoc_flux(f, four_pi=config.pidoc_four_pi, floor=config.pidoc_floor)
        flux[js, 0] = f
        mass[js, 0] = res.mass
        lum_fov[js] = res.lum_v_fov
        mass_fov[js] = res.mass_fov
    sim = snap.simulation or path.stem
    age = snap.age if snap.age is not None else float("nan")
    with np.errstate(divide="ignore"):
        targets = {
            "age": np.full(n, age, np.float32),
            "distance": np.array([v[1] for v in views], np.float32),
            "log10_mass_fov": np.log10(mass_fov).astype(np.float32),
            "log10_mass_total": np.full(n, math.log10(max(snap.mass.sum(), 1e-300)), np.float32),
        }
    meta = {
        "group_id": np.full(n, group_id_of(sim), np.int64),
        "snapshot_id": np.full(n, s, np.int64),
        "snapshot_file": np.array([str(path)] * n, dtype=object),
        "simulation": np.array([sim] * n, dtype=object),
        "axis": np.array([v[0] for v in views], dtype=object),
        "view_theta": np.array([r["theta"] for r in rnd]),
        "view_phi": np.array([r["phi"] for r in rnd]),
        "psf_fwhm": np.array([v[2] for v in views]),
        "distance": np.array([v[1] for v in views]),
        "shift_x": np.array([r["shift"][0] for r in rnd]),
        "shift_y": np.array([r["shift"][1] for r in rnd]),
        "rotation": np.array([90.0 * r["rot"] for r in rnd]),
        "lum_v_fov": lum_fov,
        "mass_fov": mass_fov,
        "r_half_light_pc": r_half,
        "metallicity": np.full(n, np.nan if snap.metallicity is None else snap.metallicity),
    }
    return {"maps": flux, "truth": {"mass": mass}, "targets": targets, "meta": meta}


def _kinematics_snapshot(path: Path, s: int, config: MockObserveConfig, threads: int = 1) -> dict[str, Any]:
    from gcml.observe.kinematic import kinematic_maps, project

    snap, views, rnd = _snapshot_setup(path, s, config)
    n = len(views)
    geo = _map_geometry(config)
    if config.centre == "origin":
        c = np.zeros(3)
    else:
        c = cluster_centre(snap.pos, snap.mass) if config.centre == "shrinking-sphere" else np.average(
            snap.pos, axis=0, weights=snap.mass)
    pos_kpc = (snap.pos - c)[None] * 1e-3                        # snapshots are in pc, maps in kpc
    w = snap.mass if snap.mass.sum() > 0 else np.ones(snap.n)
    vel = snap.vel - np.average(snap.vel, axis=0, weights=w)     # systemic velocity removed
    theta = np.array([[r["theta"] for r in rnd]])
    phi = np.array([[r["phi"] for r in rnd]])
    x, y, v = project(pos_kpc, vel[None], theta, phi)
    maps = kinematic_maps(x[0], y[0], v[0], geo)
    sim = snap.simulation or path.stem
    mt = snap.meta.get("mass_total", float("nan")) if isinstance(snap.meta, dict) else float("nan")
    targets = {"log10_mass_total": np.full(n, math.log10(mt) if mt and mt > 0 else np.nan, np.float32)}
    meta = {
        "group_id": np.full(n, group_id_of(sim), np.int64),
        "snapshot_id": np.full(n, s, np.int64),
        "snapshot_file": np.array([str(path)] * n, dtype=object),
        "simulation": np.array([sim] * n, dtype=object),
        "family": np.array(["snapshot"] * n, dtype=object),
        "axis": np.array([v_[0] for v_ in views], dtype=object),
        "view_theta": theta[0],
        "view_phi": phi[0],
        "n_gc": np.full(n, snap.n, np.int64),
    }
    return {"maps": maps, "truth": {}, "targets": targets, "meta": meta}


def _map_geometry(config: MockObserveConfig) -> Any:
    from gcml.observe.kinematic import MapGeometry

    return MapGeometry(n_pix=config.kin_n_pix, extent_kpc=config.kin_extent_kpc,
                       smoothing_kpc=config.kin_smoothing_kpc, min_count=config.kin_min_count)


_IMAGERS: dict[tuple, PhotometricImager] = {}


def _imager(config: MockObserveConfig, threads: int) -> PhotometricImager:
    """One imager (with its kernel-FFT cache) per process and configuration."""
    key = (config.fov_arcsec, config.pixel_scale, config.smoothing_px, config.beta, config.noise, threads)
    if key not in _IMAGERS:
        _IMAGERS[key] = PhotometricImager(config.geometry, smoothing_px=config.smoothing_px, beta=config.beta,
                                          noise=config.noise, workers=threads)
    return _IMAGERS[key]


def _work(args: tuple) -> dict[str, Any]:
    path, s, config, threads = args
    fn = _photometry_snapshot if config.kind == "photometry" else _kinematics_snapshot
    return fn(path, s, config, threads)


# ---------------------------------------------------------------------------------------------------
# Driver


def _specs(config: MockObserveConfig) -> dict[str, Any]:
    if config.kind == "photometry":
        geo = config.geometry
        unit = "Lsun/kpc2" if config.flux_convention == "gcml" else "log10(Lsun/kpc2)"
        return dict(
            channels=["flux"], units=[unit], pixel_scale=geo.pixel_scale, pixel_unit="arcsec",
            shape=(geo.n_pix, geo.n_pix), kind="photometry",
            targets={"age": ("Gyr", "age of the stellar population"),
                     "distance": ("kpc", "distance of the cluster"),
                     "log10_mass_fov": ("dex(Msun)", "true mass of the stars inside the field"),
                     "log10_mass_total": ("dex(Msun)", "true mass of the whole snapshot")},
            truth={"mass": ("Msun", "mass per pixel, smoothed like the image (no PSF)")},
            meta={"group_id": ("", "i8"), "snapshot_id": ("", "i8"), "snapshot_file": ("", "str"),
                  "simulation": ("", "str"), "axis": ("", "str"), "view_theta": ("rad", "f8"),
                  "view_phi": ("rad", "f8"), "psf_fwhm": ("arcsec", "f8"), "distance": ("kpc", "f8"),
                  "shift_x": ("arcsec", "f8"), "shift_y": ("arcsec", "f8"), "rotation": ("deg", "f8"),
                  "lum_v_fov": ("Lsun", "f8"), "mass_fov": ("Msun", "f8"), "metallicity": ("", "f8"),
                  "r_half_light_pc": ("pc", "f8")},
            map_attrs={"extent": list(geo.extent), "fov_arcsec": config.fov_arcsec,
                       "smoothing_px": config.smoothing_px, "psf": "moffat", "psf_beta": config.beta,
                       "flux_convention": config.flux_convention,
                       "flux_unit": "V-band flux per pixel F = L_V / (4 pi d^2) [Lsun kpc^-2]"
                       + ("" if config.flux_convention == "gcml" else
                          f"; stored as log10({'F' if config.pidoc_four_pi else '4 pi F'}) with floor "
                          f"{config.pidoc_floor}")},
        )
    from gcml.observe.kinematic import CHANNELS, UNITS

    geo = _map_geometry(config)
    return dict(
        channels=list(CHANNELS), units=list(UNITS), pixel_scale=geo.pixel_scale, pixel_unit="kpc",
        shape=(geo.n_pix, geo.n_pix), kind="kinematics",
        targets={"log10_mass_total": ("dex(Msun)", "snapshot meta mass_total (NaN when absent)")},
        truth={},
        meta={"group_id": ("", "i8"), "snapshot_id": ("", "i8"), "snapshot_file": ("", "str"),
              "simulation": ("", "str"), "family": ("", "str"), "axis": ("", "str"),
              "view_theta": ("rad", "f8"), "view_phi": ("rad", "f8"), "n_gc": ("", "i8")},
        map_attrs={"extent": list(geo.extent), **geo.to_attrs()},
    )


def mock_observe(inputs: Sequence[str | Path], out: str | Path, config: MockObserveConfig, *,
                 overwrite: bool = False, workers: int = 1, shard: tuple[int, int] = (0, 1),
                 fits_dir: str | Path | None = None,
                 progress: Callable[[int, int], None] | bool | None = None,
                 command: str | None = None, options: dict[str, Any] | None = None) -> MockObserveResult:
    """Turn snapshots into a MapSet of mock images (photometry) or kinematic maps.

    Parameters
    ----------
    inputs : snapshot files or folders (gcml HDF5, NBODY6/NBODY6++ conf.3, ASCII tables)
    out : output MapSet path (``images.h5``)
    config : MockObserveConfig
    overwrite : replace an existing output (and FITS files)
    workers : processes, one snapshot at a time each; the result does not depend on it
    shard : (k, n), 0-based: make the k-th of n contiguous blocks of snapshots
    fits_dir : also write one FITS per image there (photometry only)
    progress : called with (images done, images total); ``True``: a tqdm.auto bar (:mod:`gcml.progress`)
    command, options : provenance stored in the MapSet: the command line (default: this process's) and the
        record of the command's options (:func:`gcml.io.common.options_record`; the CLI passes it)

    Returns
    -------
    MockObserveResult
    """
    import contextlib

    from gcml.io.common import atomic_output, check_output_folder, check_output_path
    from gcml.io.mapset import MapSetWriter, assign_splits
    from gcml.progress import as_progress

    progress = as_progress(progress, "mock-observe", "image")
    t0 = time.perf_counter()
    k, nshard = (int(v) for v in shard)
    if not (nshard >= 1 and 0 <= k < nshard):
        raise ConfigError(f"option `shard`: expected K/N with 1 <= K <= N, got {k + 1}/{nshard}")
    if workers < 1:
        raise ConfigError(f"option `workers`: expected at least 1, got {workers}")
    if fits_dir is not None and config.kind != "photometry":
        raise ConfigError("option `fits_dir`: FITS images are written for `kind` photometry only")
    check_output_path(out, overwrite=overwrite)
    if fits_dir is not None:
        check_output_folder(fits_dir, overwrite=overwrite, option="`fits_dir`")
    files = expand_inputs(inputs, pattern=config.pattern, partial=config.partial_series)
    split_by, warnings = resolve_split_by(files, config)
    if split_by != config.split_by:
        config = dataclasses.replace(config, split_by=split_by)
    n_all = len(files)
    lo, hi = k * n_all // nshard, (k + 1) * n_all // nshard
    mine = list(range(lo, hi))
    per = config.images_per_snapshot
    n_images = len(mine) * per
    _check_sizes(config, n_images, per, workers, out, fits_dir)
    spec = _specs(config)
    fits_files: list[Path] = []
    jobs = [(files[s], s, config) for s in mine]
    threads = 1 if workers > 1 else 2
    from gcml.config import to_jsonable

    # the stored configuration names the block of snapshots (input indices lo:hi) this file holds
    stored_config = {**to_jsonable(config), "shard": f"{lo}:{hi}"}
    # The FITS folder is written whole: into a temporary folder renamed once the MapSet is complete, with
    # a manifest.json (file names, sizes, the MapSet rows they show) written last.
    fits_ctx = (atomic_output(fits_dir, overwrite=overwrite, folder=True) if fits_dir is not None
                else contextlib.nullcontext(None))
    with fits_ctx as fits_tmp, MapSetWriter(
            out, n=n_images, overwrite=overwrite, config=stored_config, seed=config.seed,
            parents=[files[s] for s in mine], command=command, options=options,
            compression=None if config.compression == "none" else "gzip", **spec) as writer:
        row = 0
        for res in _run(jobs, workers, threads):
            m = len(res["maps"])
            keys = split_keys(res["meta"], config.split_by, per)
            split = assign_splits(keys, config.split_fractions, config.seed)
            writer.write(row, maps=res["maps"], targets=res["targets"], meta=res["meta"], split=split,
                         truth=res["truth"])
            if fits_tmp is not None:
                fits_files.extend(_write_fits(fits_tmp, row, res, config, overwrite=True))
            row += m
            if progress is not None:
                progress(row, n_images)
        if fits_tmp is not None:
            _write_fits_manifest(fits_tmp, fits_files, out)
    if fits_dir is not None:
        fits_files = [Path(fits_dir) / f.name for f in fits_files]
    return MockObserveResult(path=Path(out), n_images=n_images, n_snapshots=len(mine),
                             seconds=time.perf_counter() - t0, kind=config.kind, fits_files=fits_files,
                             split_by=config.split_by, warnings=warnings)


def _run(jobs: list[tuple], workers: int, threads: int) -> Iterator[dict[str, Any]]:
    if workers <= 1 or len(jobs) <= 1:
        for path, s, config in jobs:
            yield _work((path, s, config, threads))
        return
    import multiprocessing as mp

    from gcml.parallel import process_pool

    with process_pool(workers, mp.get_context("spawn")) as ex:
        yield from ex.map(_work, [(p, s, c, 1) for p, s, c in jobs])


def _write_fits(fits_dir: str | Path, row0: int, res: dict[str, Any], config: MockObserveConfig, *,
                overwrite: bool) -> list[Path]:
    """One FITS per image: flux (primary) and truth mass (extension MASS), TAN WCS at (fits_ra, fits_dec)."""
    from gcml.io.fits import FitsExtension, make_tan_wcs, write_fits_image

    geo = config.geometry
    wcs = make_tan_wcs((geo.n_pix, geo.n_pix), geo.pixel_scale, ra_deg=config.fits_ra, dec_deg=config.fits_dec)
    out = []
    meta, tg = res["meta"], res["targets"]
    unit = "Lsun/kpc2" if config.flux_convention == "gcml" else "log10(Lsun/kpc2)"
    for j in range(len(res["maps"])):
        cards = [
            ("GCMLKIND", "mock-observe photometry", "gcml mock observation"),
            ("GCMLSNAP", str(meta["snapshot_file"][j])[-68:], "snapshot file"),
            ("GCMLSIM", str(meta["simulation"][j])[-68:], "simulation"),
            ("GCMLROW", row0 + j, "row in the MapSet"),
            ("GCMLDIST", float(meta["distance"][j]), "[kpc] distance"),
            ("GCMLAGE", float(tg["age"][j]), "[Gyr] age"),
            ("GCMLPSF", float(meta["psf_fwhm"][j]), "[arcsec] Moffat PSF FWHM"),
            ("GCMLBETA", config.beta, "Moffat beta"),
            ("GCMLSMTH", config.smoothing_px, "[px] Gaussian smoothing sigma"),
            ("GCMLSHX", float(meta["shift_x"][j]), "[arcsec] cluster centre x offset"),
            ("GCMLSHY", float(meta["shift_y"][j]), "[arcsec] cluster centre y offset"),
            ("GCMLROT", float(meta["rotation"][j]), "[deg] rotation"),
            ("GCMLAXIS", str(meta["axis"][j]), "line of sight"),
            ("GCMLLUM", float(meta["lum_v_fov"][j]), "[Lsun] V luminosity in field"),
            ("GCMLMASS", float(meta["mass_fov"][j]), "[Msun] mass in field"),
            ("GCMLFLUX", config.flux_convention, "flux convention (docs/conventions.md)"),
        ]
        if config.fits_flavour == "ps1":
            from gcml.observe.synthetic import write_ps1_cutout

            truth = [c for c in cards if c[0] in ("GCMLSNAP", "GCMLSIM", "GCMLROW", "GCMLDIST", "GCMLAGE",
                                                  "GCMLPSF", "GCMLLUM", "GCMLMASS")]
            # a noisy mock's noise was drawn for its own exposure: the header says that exposure (zero point
            # 25 + 2.5 log10 EXPTIME, as the noise model's 25 per second), so EXPTIME and the noise agree
            noisy = config.noise is not None and config.noise.active
            out.append(write_ps1_cutout(Path(fits_dir) / f"ps1_cutout_{row0 + j:07d}.fits", res["maps"][j, 0],
                                        ra=config.fits_ra, dec=config.fits_dec, band="r", g_minus_r=0.5,
                                        extra_cards=truth, overwrite=overwrite,
                                        **({"exptime": float(config.noise.exptime)} if noisy else {})))
            continue
        path = Path(fits_dir) / f"image_{row0 + j:07d}.fits"
        out.append(write_fits_image(
            path, res["maps"][j, 0], wcs, header_cards=cards, unit=unit, overwrite=overwrite,
            extensions=[FitsExtension("MASS", res["truth"]["mass"][j, 0], unit="Msun",
                                      cards={"GCMLNOTE": "true mass per pixel, smoothed, no PSF"})]))
    return out


def _check_sizes(config: MockObserveConfig, n_images: int, per: int, workers: int, out: str | Path,
                 fits_dir: str | Path | None) -> None:
    """Refuse before any work a run whose images or output cannot fit (lower-bound estimates)."""
    from gcml.io.common import check_resources

    if config.kind == "photometry":
        npx = config.geometry.n_pix ** 2
        planes = 2  # flux and truth mass
        fov_arcmin2 = (config.fov_arcsec / 60.0) ** 2
        field = config.noise.field_density * fov_arcmin2 * 8 * 6 if config.noise is not None else 0.0
        mem = max(1, workers) * (npx * 8 * 6 + field) + per * npx * planes * 4
    else:
        npx = config.kin_n_pix ** 2
        planes = 3
        mem = max(1, workers) * npx * 8 * 6 + per * npx * planes * 4
    disk = n_images * npx * planes * 4
    check_resources("mock-observe", memory=mem, disk=disk * (2 if fits_dir is not None else 1),
                    folder=Path(out).parent)


def _write_fits_manifest(folder: Path, files: list[Path], mapset: str | Path) -> None:
    import json

    from gcml._version import __version__
    from gcml.io.common import utc_now

    doc = {"format": "gcml.fits-folder", "format_version": "1.0", "complete": True, "mapset": str(Path(mapset).name),
           "n_files": len(files), "files": [{"name": f.name, "size": f.stat().st_size} for f in files],
           "gcml_version": __version__, "created_utc": utc_now()}
    (Path(folder) / "manifest.json").write_text(json.dumps(doc, indent=1))


__all__ = [
    "ARCSEC_PC_PER_KPC", "MockObserveConfig", "MockObserveResult", "expand_inputs", "group_id_of",
    "load_snapshot", "mock_observe",
]
