"""Star-cluster snapshots: the in-memory :class:`Snapshot` and its readers and writers.

A snapshot is one particle set (stars and stellar remnants) at one time. Every reader returns the same
:class:`Snapshot` object in the same units, whatever the file it came from:

=============== ========= =====================================================================
field           unit      meaning
=============== ========= =====================================================================
``pos``         pc        (N, 3) positions relative to the cluster centre (x, y, z)
``vel``         km/s      (N, 3) velocities in the cluster frame
``mass``        Msun      (N,) current mass
``mass_initial`` Msun     (N,) zero-age main-sequence mass (optional)
``lum_v``       Lsun      (N,) Johnson V-band luminosity, in units of the Sun's V luminosity
``lum_bol``     Lsun      (N,) bolometric luminosity (optional)
``teff``        K         (N,) effective temperature (optional)
``radius``      Rsun      (N,) stellar radius (optional)
``kstar``       --        (N,) Hurley et al. (2000) stellar type 0-15 (optional)
``age``         Gyr       age of the stellar population
``time``        Myr       simulation time of the snapshot
``metallicity`` --        metal mass fraction Z
=============== ========= =====================================================================

File format ``gcml.snapshot`` 1.0 (HDF5; see ``docs/snapshots.md``)::

    / attrs: format="gcml.snapshot", format_version="1.0", gcml_version, created_utc, command, seed,
             config (JSON), parents (JSON), age, time, metallicity, simulation, units (JSON),
             meta (JSON: scalar facts about the cluster, e.g. r_half_pc, mass_total)
    /particles/pos (N, 3), vel (N, 3), mass, mass_initial, lum_v, lum_bol, teff, radius,
               kstar (int8), id (int64)   -- each dataset with attrs["unit"]

Readers for other formats: NBODY6/NBODY6++ ``conf.3`` (:func:`read_nbody6_conf3`) and ASCII/CSV tables
with a column map (:func:`read_ascii_snapshot`); :func:`read_snapshot` picks one from the file itself.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from gcml.errors import FormatError, InputError
from gcml.io.common import (
    atomic_output,
    attr_json,
    attr_str,
    check_format,
    open_h5,
    provenance,
    read_quantity,
    write_quantity,
)
from gcml.io.info import register

FORMAT = "gcml.snapshot"
FORMAT_VERSION = "1.0"

#: Units of every :class:`Snapshot` field (in memory and in gcml files).
UNITS: dict[str, str] = {
    "pos": "pc",
    "vel": "km/s",
    "mass": "Msun",
    "mass_initial": "Msun",
    "lum_v": "Lsun",
    "lum_bol": "Lsun",
    "teff": "K",
    "radius": "Rsun",
    "kstar": "",
    "id": "",
    "age": "Gyr",
    "time": "Myr",
    "metallicity": "",
}

#: Per-particle fields that are optional (may be ``None``).
OPTIONAL_FIELDS = ("mass_initial", "lum_v", "lum_bol", "teff", "radius", "kstar", "id")

_DTYPES = {"kstar": np.int8, "id": np.int64}


@dataclass
class Snapshot:
    """One star cluster at one time (units in :data:`UNITS`).

    Attributes
    ----------
    pos : ndarray (N, 3), pc
    vel : ndarray (N, 3), km/s
    mass : ndarray (N,), Msun, current mass (remnants included)
    mass_initial, lum_v, lum_bol, teff, radius : ndarray (N,) or None
        Zero-age mass [Msun], V-band and bolometric luminosity [Lsun], effective temperature [K],
        radius [Rsun].
    kstar : ndarray (N,) int8 or None
        Stellar type of Hurley, Pols & Tout (2000): 0-1 main sequence, 2-9 giants and helium stars,
        10-12 white dwarfs, 13 neutron star, 14 black hole, 15 massless remnant.
    id : ndarray (N,) int64 or None
        Particle names (NBODY ``NAME``), kept through a time series.
    age : float or None
        Age of the stellar population [Gyr].
    time : float or None
        Simulation time [Myr].
    metallicity : float or None
        Metal mass fraction Z.
    simulation : str
        Name of the simulation the snapshot belongs to (used as the group id for data splits).
    meta : dict
        JSON-friendly scalar facts (e.g. ``r_half_pc``, ``mass_total``, ``preset``).
    attrs : dict
        Provenance read from a gcml file (command, config, seed, ...); ignored when writing.
    """

    pos: np.ndarray
    vel: np.ndarray
    mass: np.ndarray
    mass_initial: np.ndarray | None = None
    lum_v: np.ndarray | None = None
    lum_bol: np.ndarray | None = None
    teff: np.ndarray | None = None
    radius: np.ndarray | None = None
    kstar: np.ndarray | None = None
    id: np.ndarray | None = None
    age: float | None = None
    time: float | None = None
    metallicity: float | None = None
    simulation: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.pos = np.asarray(self.pos, dtype=float)
        self.vel = np.asarray(self.vel, dtype=float)
        self.mass = np.asarray(self.mass, dtype=float)
        if self.pos.ndim != 2 or self.pos.shape[1] != 3:
            raise InputError(f"snapshot {self.simulation!r}: pos must have shape (N, 3), got {self.pos.shape}")
        n = self.pos.shape[0]
        if self.vel.shape != (n, 3):
            raise InputError(f"snapshot {self.simulation!r}: vel must have shape ({n}, 3), got {self.vel.shape}")
        if self.mass.shape != (n,):
            raise InputError(f"snapshot {self.simulation!r}: mass must have shape ({n},), got {self.mass.shape}")
        for name in OPTIONAL_FIELDS:
            v = getattr(self, name)
            if v is None:
                continue
            v = np.asarray(v, dtype=_DTYPES.get(name, float))
            if v.shape != (n,):
                raise InputError(f"snapshot {self.simulation!r}: {name} must have shape ({n},), got {v.shape}")
            setattr(self, name, v)

    @property
    def n(self) -> int:
        """Number of particles."""
        return int(self.pos.shape[0])

    @property
    def units(self) -> dict[str, str]:
        """Units of the fields (always :data:`UNITS`)."""
        return dict(UNITS)

    @property
    def mass_total(self) -> float:
        """Total current mass [Msun]."""
        return float(self.mass.sum())

    @property
    def lum_v_total(self) -> float:
        """Total V-band luminosity [Lsun]; raises if the snapshot has none."""
        if self.lum_v is None:
            raise InputError(f"snapshot {self.simulation!r}: has no V-band luminosities (lum_v)")
        return float(self.lum_v.sum())

    def select(self, mask_or_index: np.ndarray) -> Snapshot:
        """A new snapshot with the particles selected by a boolean mask or an index array."""
        kw = {"pos": self.pos[mask_or_index], "vel": self.vel[mask_or_index], "mass": self.mass[mask_or_index]}
        for name in OPTIONAL_FIELDS:
            v = getattr(self, name)
            kw[name] = None if v is None else v[mask_or_index]
        return replace(self, **kw, meta=dict(self.meta), attrs=dict(self.attrs))


# ---------------------------------------------------------------------------------------------------
# gcml HDF5
# ---------------------------------------------------------------------------------------------------


def write_snapshot(
    path: str | Path, snap: Snapshot, *, overwrite: bool = False, command: str | None = None,
    config: dict | None = None, seed: int | None = None, parents: list[str | Path] | None = None,
    dtype: str = "float32", compression: str | None = None,
) -> Path:
    """Write a snapshot as a ``gcml.snapshot`` 1.0 HDF5 file (atomically; refuses to overwrite).

    Parameters
    ----------
    path
        Output file (``.h5``).
    snap
        The snapshot.
    overwrite
        Replace an existing file.
    command, config, seed, parents
        Provenance recorded in the root attributes (see :func:`gcml.io.common.provenance`).
    dtype
        Floating-point type on disk (``"float32"`` halves the size; ``"float64"`` round-trips exactly).
    compression
        h5py compression filter (``None``, ``"lzf"`` or ``"gzip"``).

    Returns
    -------
    Path of the written file.
    """
    p = Path(path)
    with atomic_output(p, overwrite=overwrite) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["format_version"] = FORMAT_VERSION
            for k, v in provenance(command=command, config=config, seed=seed, parents=parents).items():
                f.attrs[k] = v
            f.attrs["age"] = np.nan if snap.age is None else float(snap.age)
            f.attrs["time"] = np.nan if snap.time is None else float(snap.time)
            f.attrs["metallicity"] = np.nan if snap.metallicity is None else float(snap.metallicity)
            f.attrs["simulation"] = str(snap.simulation)
            f.attrs["units"] = json.dumps({k: UNITS[k] for k in ("age", "time", "metallicity")}
                                          | {"length": "pc", "velocity": "km/s", "mass": "Msun",
                                             "luminosity": "Lsun", "temperature": "K", "radius": "Rsun"})
            from gcml.config import to_jsonable

            f.attrs["meta"] = json.dumps(to_jsonable(snap.meta), sort_keys=True)
            f.attrs["n_particles"] = snap.n
            g = f.create_group("particles")
            kw: dict[str, Any] = {"compression": compression} if compression else {}
            for name in ("pos", "vel", "mass", *OPTIONAL_FIELDS):
                v = getattr(snap, name)
                if v is None:
                    continue
                arr = v.astype(_DTYPES.get(name, dtype))
                write_quantity(g, name, arr, UNITS[name], **kw)
    return p


def _open_h5(path: Path) -> h5py.File:
    return open_h5(path, "a gcml snapshot")


def _nan_to_none(v: Any) -> float | None:
    if v is None:
        return None
    v = float(v)
    return None if not np.isfinite(v) else v


def read_gcml_snapshot(path: str | Path) -> Snapshot:
    """Read a ``gcml.snapshot`` HDF5 file (checks format, major version and units)."""
    p = Path(path)
    with _open_h5(p) as f:
        check_format(f.attrs, p, FORMAT, int(FORMAT_VERSION.split(".")[0]))
        if "particles" not in f:
            raise FormatError(f"{p}: missing group '/particles'")
        g = f["particles"]
        data: dict[str, Any] = {}
        for name in ("pos", "vel", "mass", *OPTIONAL_FIELDS):
            if name not in g and name in OPTIONAL_FIELDS:
                data[name] = None
                continue
            arr, unit = read_quantity(g, name, p)
            if unit != UNITS[name]:
                raise FormatError(f"{p}: /particles/{name} has unit '{unit}', expected '{UNITS[name]}'")
            data[name] = arr.astype(_DTYPES.get(name, float))
        attrs = {k: attr_str(f.attrs, k) for k in ("gcml_version", "created_utc", "command", "format_version")}
        attrs["seed"] = int(f.attrs.get("seed", -1))
        attrs["config"] = attr_json(f.attrs, "config", {})
        attrs["parents"] = attr_json(f.attrs, "parents", [])
        snap_kw = {
            "age": _nan_to_none(f.attrs.get("age")),
            "time": _nan_to_none(f.attrs.get("time")),
            "metallicity": _nan_to_none(f.attrs.get("metallicity")),
            "simulation": attr_str(f.attrs, "simulation"),
            "meta": attr_json(f.attrs, "meta", {}),
        }
    try:
        return Snapshot(**data, **snap_kw, attrs=attrs)
    except InputError as exc:
        raise FormatError(f"{p}: inconsistent particle arrays ({exc})") from None


@register(FORMAT)
def describe_snapshot(path: Path) -> dict[str, Any]:
    """Summary of a gcml snapshot for ``gcml info``."""
    from gcml.io.info import summarise_snapshot

    s = read_gcml_snapshot(path)
    return summarise_snapshot(s, path, f"{FORMAT} {s.attrs.get('format_version', '')}")


def half_mass_radius(snap: Snapshot, *, weights: np.ndarray | None = None, projected: bool = False) -> float:
    """Radius [pc] enclosing half of the total ``weights`` (default: mass) about the origin.

    Parameters
    ----------
    snap
        The snapshot.
    weights
        Per-particle weights (e.g. ``snap.lum_v`` for the half-light radius); default ``snap.mass``.
    projected
        Use the projected radius in the x-y plane instead of the 3D radius.
    """
    w = snap.mass if weights is None else np.asarray(weights, float)
    xyz = snap.pos[:, :2] if projected else snap.pos
    r = np.sqrt((xyz**2).sum(axis=1))
    order = np.argsort(r)
    cw = np.cumsum(w[order])
    if cw.size == 0 or cw[-1] <= 0:
        raise InputError(f"snapshot {snap.simulation!r}: no particles with positive weight")
    i = int(np.searchsorted(cw, 0.5 * cw[-1]))
    return float(r[order][min(i, r.size - 1)])


# ---------------------------------------------------------------------------------------------------
# Dispatch
# ---------------------------------------------------------------------------------------------------

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def sniff_format(path: str | Path) -> str:
    """Guess a snapshot file's format from its first bytes: ``"gcml"``, ``"conf3"`` or ``"ascii"``."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: file not found")
    if p.is_dir():
        raise InputError(f"{p}: is a folder, expected a snapshot file")
    with open(p, "rb") as fh:
        head = fh.read(4096)
    if head.startswith(_HDF5_MAGIC):
        return "gcml"
    if b"\x00" in head or not head:
        return "conf3"
    return "ascii"


def read_snapshot(path: str | Path, *, format: str | None = None, **opts: Any) -> Snapshot:
    """Read one snapshot from a gcml HDF5 file, an NBODY6/NBODY6++ ``conf.3`` file or an ASCII table.

    Parameters
    ----------
    path
        The file.
    format
        ``"gcml"``, ``"conf3"`` or ``"ascii"``; guessed from the file's first bytes when omitted
        (HDF5 signature -> gcml, binary -> conf.3, text -> ASCII).
    **opts
        Passed to the reader (:func:`read_nbody6_conf3` or :func:`read_ascii_snapshot`).
    """
    fmt = format or sniff_format(path)
    if fmt == "gcml":
        if opts:
            raise InputError(f"{path}: options {sorted(opts)} do not apply to gcml HDF5 snapshots")
        snap = read_gcml_snapshot(path)
        for name in ("pos", "vel", "mass", "lum_v"):
            a = getattr(snap, name)
            if a is not None and not np.isfinite(a).all():
                bad = np.flatnonzero(~np.isfinite(a.reshape(len(a), -1)).all(axis=1))
                raise InputError(f"{path}: /particles/{name} has NaN or inf values ({bad.size} particle(s), first "
                                 f"index {int(bad[0])}); expected finite values for every particle")
        return snap
    if fmt == "conf3":
        return read_nbody6_conf3(path, **opts)
    if fmt == "ascii":
        return read_ascii_snapshot(path, **opts)
    raise InputError(f"{path}: unknown snapshot format {fmt!r}; expected 'gcml', 'conf3' or 'ascii'")



def _natural_key(p: Path) -> tuple:
    return tuple(float(x) if x[0].isdigit() else x for x in re.split(r"(\d+(?:\.\d+)?)", p.name) if x)


def list_snapshot_files(directory: str | Path, *, pattern: str | None = None) -> list[Path]:
    """Snapshot files in a folder (``*.h5``/``*.hdf5`` by default; hidden and temporary files skipped).

    A path to a single file gives a one-element list.
    """
    d = Path(directory)
    if not d.exists():
        raise InputError(f"{d}: folder not found")
    if d.is_file():
        return [d]
    if pattern is not None:
        files = sorted(d.glob(pattern), key=_natural_key)
    else:
        files = sorted([*d.glob("*.h5"), *d.glob("*.hdf5")], key=_natural_key)
    files = [f for f in files if f.is_file() and not f.name.startswith(".")]
    if not files:
        raise InputError(f"{d}: no snapshot files found (looked for {pattern or '*.h5, *.hdf5'})")
    return files


def read_snapshots(directory: str | Path, *, pattern: str | None = None, format: str | None = None,
                   **opts: Any) -> list[Snapshot]:
    """Read every snapshot in a folder, sorted by time (then age, then file name).

    Parameters
    ----------
    directory
        Folder of snapshots (or one snapshot file).
    pattern
        Glob pattern (default ``*.h5`` and ``*.hdf5``; e.g. ``"conf.3_*"`` for NBODY6 output).
    format, **opts
        As for :func:`read_snapshot`.
    """
    files = list_snapshot_files(directory, pattern=pattern)
    snaps = [read_snapshot(f, format=format, **opts) for f in files]
    order = sorted(range(len(snaps)), key=lambda i: (
        np.inf if snaps[i].time is None else snaps[i].time,
        np.inf if snaps[i].age is None else snaps[i].age, i))
    return [snaps[i] for i in order]


# ---------------------------------------------------------------------------------------------------
# NBODY6 / NBODY6++ conf.3 (Fortran unformatted)
# ---------------------------------------------------------------------------------------------------

#: Names of the NK = 20 header scalars AS(1..20) written by NBODY6/NBODY6++ ``output.f``
#: (Aarseth 2003, "Gravitational N-body simulations", and the NBODY6++GPU manual, Wang et al. 2015).
NBODY6_AS_NAMES = (
    "ttot", "npairs", "rbar", "zmbar", "rtide", "tidal4", "rdens_x", "rdens_y", "rdens_z", "ttot_tcr",
    "tscale", "vstar", "rc", "nc", "vc", "rhom", "cmax", "rscale", "rsmin", "dmin1",
)


def _fortran_records(buf: bytes, path: Path, endian: str) -> list[tuple[int, int]]:
    """(start, length) of the payload of every Fortran sequential record (4-byte markers)."""
    recs = []
    pos = 0
    n = len(buf)
    while pos < n:
        if pos + 4 > n:
            raise FormatError(f"{path}: truncated Fortran record marker at byte {pos}; the file is incomplete")
        length = int(np.frombuffer(buf, dtype=f"{endian}i4", count=1, offset=pos)[0])
        if length < 0 or pos + 8 + length > n:
            raise FormatError(
                f"{path}: Fortran record at byte {pos} announces {length} bytes but the file ends at byte {n}; "
                "the file is truncated or not a conf.3 snapshot"
            )
        end = int(np.frombuffer(buf, dtype=f"{endian}i4", count=1, offset=pos + 4 + length)[0])
        if end != length:
            raise FormatError(
                f"{path}: Fortran record at byte {pos} has mismatched length markers ({length} and {end}); "
                "the file is corrupt or not a conf.3 snapshot"
            )
        recs.append((pos + 4, length))
        pos += 8 + length
    return recs


def read_nbody6_conf3(
    path: str | Path, *, index: int = 0, center: str = "density", endian: str | None = None,
    metallicity: float | None = None, age: float | None = None, simulation: str | None = None,
) -> Snapshot:
    """Read an NBODY6 ``OUT3`` or NBODY6++ ``conf.3`` snapshot (Fortran unformatted) in physical units.

    The file holds, per snapshot, two sequential records (``output.f`` of NBODY6 and NBODY6++GPU;
    Aarseth 2003; Wang et al. 2015, MNRAS 450, 4070)::

        NTOT, MODEL, NRUN, NK                                   (4 x int32)
        AS(1..NK), BODYS(N), [RHOS(N), XNS(N),] X(3,N), V(3,N), [PHI(N),] NAME(N)   (float32; NAME int32)

    where the bracketed arrays are written by NBODY6++ only (told apart by the record length). Masses,
    positions, velocities and time are in N-body units and scaled with the header's
    ``ZMBAR = AS(4)`` [Msun], ``RBAR = AS(3)`` [pc], ``VSTAR = AS(12)`` [km/s] and ``TSCALE = AS(11)``
    [Myr]; ``TTOT = AS(1)``. Little- and big-endian files are recognised from the record markers.

    Parameters
    ----------
    path
        The file.
    index
        Which snapshot, when the file holds several (NBODY6 appends every output to OUT3).
    center
        ``"density"`` subtracts the density centre ``RDENS = AS(7..9)``; ``"none"`` keeps the code frame;
        ``"mass"`` subtracts the centre of mass (positions and velocities).
    endian
        ``"little"`` or ``"big"`` to insist on a byte order; default: recognised from the first record
        marker (which must be 16, the header length).
    metallicity, age, simulation
        Stored in the snapshot (conf.3 does not record Z; age defaults to the simulation time).

    Returns
    -------
    Snapshot with ``id`` from ``NAME`` and ``meta`` holding the header (``ntot``, ``model``, ``nrun``,
    every ``AS`` value under :data:`NBODY6_AS_NAMES`, ``variant`` ``"nbody6++"`` or ``"nbody6"``).
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: file not found")
    if center not in ("density", "none", "mass"):
        raise InputError(f"{p}: center must be 'density', 'none' or 'mass', got {center!r}")
    buf = p.read_bytes()
    if len(buf) < 24:
        raise FormatError(f"{p}: only {len(buf)} bytes; a conf.3 snapshot starts with a 16-byte header record")
    orders = {"little": "<", "big": ">"}
    if endian is not None and endian not in orders:
        raise InputError(f"{p}: endian must be 'little' or 'big', got {endian!r}")
    found = None
    for e in ("<", ">"):
        if int(np.frombuffer(buf, dtype=f"{e}i4", count=1)[0]) == 16:
            found = e
            break
    if found is not None and endian is not None and orders[endian] != found:
        other = "big" if endian == "little" else "little"
        raise FormatError(
            f"{p}: the Fortran record markers are {other}-endian but endian='{endian}' was requested; "
            f"the file was written on a {other}-endian machine (omit the option to read it anyway)"
        )
    endian = found
    if endian is None:
        raise FormatError(
            f"{p}: first Fortran record marker is not 16 (the NTOT, MODEL, NRUN, NK header) in either byte order; "
            "not an NBODY6/NBODY6++ conf.3 file"
        )
    recs = _fortran_records(buf, p, endian)
    if len(recs) % 2:
        raise FormatError(f"{p}: odd number of Fortran records ({len(recs)}); the last snapshot is incomplete")
    nsnap = len(recs) // 2
    if not 0 <= index < nsnap:
        raise InputError(f"{p}: snapshot index {index} out of range; the file holds {nsnap} snapshot(s)")
    (h0, hlen), (d0, dlen) = recs[2 * index], recs[2 * index + 1]
    if hlen != 16:
        raise FormatError(f"{p}: header record of snapshot {index} has {hlen} bytes, expected 16")
    ntot, model, nrun, nk = (int(v) for v in np.frombuffer(buf, dtype=f"{endian}i4", count=4, offset=h0))
    if ntot <= 0 or nk <= 0 or nk > 1000:
        raise FormatError(
            f"{p}: header of snapshot {index} has NTOT={ntot}, NK={nk}; expected positive counts "
            "(is the file big-endian or not a conf.3 file?)"
        )
    words = dlen // 4
    if words == nk + 11 * ntot:
        variant = "nbody6++"
    elif words == nk + 8 * ntot:
        variant = "nbody6"
    else:
        raise FormatError(
            f"{p}: data record of snapshot {index} has {words} words; expected NK + 11 NTOT = {nk + 11 * ntot} "
            f"(NBODY6++) or NK + 8 NTOT = {nk + 8 * ntot} (NBODY6)"
        )
    f4 = np.frombuffer(buf, dtype=f"{endian}f4", count=words, offset=d0).astype(float)
    i4 = np.frombuffer(buf, dtype=f"{endian}i4", count=words, offset=d0)
    as_ = f4[:nk]
    o = nk
    body = f4[o:o + ntot]
    o += ntot
    if variant == "nbody6++":
        o += 2 * ntot  # RHOS, XNS
    x = f4[o:o + 3 * ntot].reshape(ntot, 3)
    o += 3 * ntot
    v = f4[o:o + 3 * ntot].reshape(ntot, 3)
    o += 3 * ntot
    if variant == "nbody6++":
        o += ntot  # PHI
    name = i4[o:o + ntot].astype(np.int64)
    if nk < 12:
        raise FormatError(f"{p}: header has NK={nk} scalars; at least 12 (up to VSTAR) are needed for units")
    ttot, rbar, zmbar, tscale, vstar = as_[0], as_[2], as_[3], as_[10], as_[11]
    for label, val in (("RBAR = AS(3)", rbar), ("ZMBAR = AS(4)", zmbar), ("VSTAR = AS(12)", vstar)):
        if not np.isfinite(val) or val <= 0:
            raise FormatError(f"{p}: header scalar {label} is {val}; expected a positive number")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(v)) and np.all(np.isfinite(body))):
        raise FormatError(f"{p}: masses, positions or velocities contain NaN or inf")
    pos = x * rbar
    vel = v * vstar
    mass = body * zmbar
    if center == "density" and nk >= 9:
        pos = pos - as_[6:9] * rbar
    elif center == "mass":
        pos = pos - (mass[:, None] * pos).sum(0) / mass.sum()
        vel = vel - (mass[:, None] * vel).sum(0) / mass.sum()
    meta: dict[str, Any] = {"ntot": ntot, "model": model, "nrun": nrun, "nk": nk, "variant": variant,
                            "center": center, "source_format": "conf3"}
    meta.update({NBODY6_AS_NAMES[k]: float(as_[k]) for k in range(min(nk, len(NBODY6_AS_NAMES)))})
    time_myr = float(ttot * tscale)
    return Snapshot(
        pos=pos, vel=vel, mass=mass, id=name, time=time_myr,
        age=age if age is not None else time_myr / 1000.0, metallicity=metallicity,
        simulation=simulation if simulation is not None else p.stem, meta=meta,
    )


# ---------------------------------------------------------------------------------------------------
# ASCII / CSV tables
# ---------------------------------------------------------------------------------------------------

#: Column names understood by :func:`read_ascii_snapshot` (aliases -> Snapshot field or component).
ASCII_ALIASES: dict[str, str] = {
    "m": "mass", "mass": "mass", "mass_initial": "mass_initial", "m0": "mass_initial",
    "x": "x", "y": "y", "z": "z", "vx": "vx", "vy": "vy", "vz": "vz",
    "id": "id", "name": "id", "lum_v": "lum_v", "lv": "lum_v", "lum_bol": "lum_bol", "lum": "lum_bol",
    "teff": "teff", "radius": "radius", "kstar": "kstar", "kw": "kstar",
}
_SKIP = ("_", "-", "skip")
_UNIT_KIND = {"mass": "Msun", "length": "pc", "velocity": "km/s", "luminosity": "Lsun"}


def _unit_factor(unit: str, kind: str, path: Path) -> float:
    target = _UNIT_KIND[kind]
    if unit == target:
        return 1.0
    import astropy.units as u

    try:
        return float(u.Unit(unit).to(u.Unit(target.replace("Msun", "solMass").replace("Lsun", "solLum"))))
    except (ValueError, u.UnitConversionError, TypeError):
        raise InputError(f"{path}: {kind} unit '{unit}' cannot be converted to {target}") from None


def read_ascii_snapshot(
    path: str | Path, *, columns: str | list[str] | None = None, units: dict[str, str] | None = None,
    delimiter: str | None = None, skiprows: int = 0, scale: dict[str, float] | None = None,
    age: float | None = None, time: float | None = None, metallicity: float | None = None,
    simulation: str | None = None,
) -> Snapshot:
    """Read a whitespace- or comma-separated table of particles.

    Parameters
    ----------
    path
        The table. Lines starting with ``#`` are comments; a first non-numeric line is read as a header
        of column names when ``columns`` is not given.
    columns
        Names of the table's columns in order, as a list or a comma/space-separated string; default:
        the header line, or ``"m x y z vx vy vz"`` (the NBODY6 ``dat.10`` layout). Names: see
        :data:`ASCII_ALIASES`; ``_`` skips a column. ``m, x, y, z, vx, vy, vz`` are required.
    units
        Units of the ``mass``, ``length``, ``velocity`` and ``luminosity`` columns as astropy unit strings
        (default Msun, pc, km/s, Lsun).
    delimiter
        Column separator; default: comma for ``.csv`` files, otherwise whitespace.
    skiprows
        Lines to skip at the top.
    scale
        Extra multiplicative factors for ``mass``, ``length``, ``velocity`` applied after ``units`` (e.g.
        ``{"mass": ZMBAR, "length": RBAR, "velocity": VSTAR}`` for a table in N-body units).
    age, time, metallicity, simulation
        Stored in the snapshot.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: file not found")
    if delimiter is None and p.suffix.lower() == ".csv":
        delimiter = ","
    try:
        lines = p.read_text().splitlines()[skiprows:]
    except UnicodeDecodeError:
        raise FormatError(f"{p}: not a text table (binary content); use format='conf3' or 'gcml'") from None
    lines = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise InputError(f"{p}: the table has no data rows")
    first = lines[0].replace(",", " ").split() if delimiter in (None, ",") else lines[0].split(delimiter)
    try:
        [float(t) for t in first]
        header = None
    except ValueError:
        header = [t.strip() for t in first]
        lines = lines[1:]
    if columns is None:
        columns = header if header is not None else "m x y z vx vy vz"
    if isinstance(columns, str):
        columns = columns.replace(",", " ").split()
    cols = [c.strip().lower() for c in columns]
    fields: dict[str, int] = {}
    for i, c in enumerate(cols):
        if c in _SKIP:
            continue
        if c not in ASCII_ALIASES:
            raise InputError(f"{p}: unknown column name '{c}'; known: {', '.join(sorted(ASCII_ALIASES))} or '_' to skip")
        fields[ASCII_ALIASES[c]] = i
    missing = [c for c in ("mass", "x", "y", "z", "vx", "vy", "vz") if c not in fields]
    if missing:
        raise InputError(f"{p}: column map lacks required column(s) {', '.join(missing)} (columns given: {', '.join(cols)})")
    if not lines:
        raise InputError(f"{p}: the table has a header but no data rows")
    try:
        data = np.loadtxt(lines, delimiter=delimiter, ndmin=2)
    except ValueError as exc:
        raise FormatError(f"{p}: cannot read the table as numbers ({exc})") from None
    if data.shape[1] < len(cols):
        raise InputError(
            f"{p}: the table has {data.shape[1]} columns but the column map names {len(cols)} ({', '.join(cols)})"
        )
    if not np.all(np.isfinite(data[:, [fields[c] for c in fields]])):
        raise InputError(f"{p}: the table contains NaN or inf values")
    units = {**_UNIT_KIND, **(units or {})}
    scale = scale or {}
    bad = sorted(set(units) - set(_UNIT_KIND)) + sorted(set(scale) - {"mass", "length", "velocity"})
    if bad:
        raise InputError(f"{p}: unknown unit/scale key(s) {bad}; expected mass, length, velocity, luminosity")
    fm = _unit_factor(units["mass"], "mass", p) * scale.get("mass", 1.0)
    fl = _unit_factor(units["length"], "length", p) * scale.get("length", 1.0)
    fv = _unit_factor(units["velocity"], "velocity", p) * scale.get("velocity", 1.0)
    flum = _unit_factor(units["luminosity"], "luminosity", p)
    col = lambda name: data[:, fields[name]]  # noqa: E731
    kw: dict[str, Any] = {
        "pos": np.stack([col("x"), col("y"), col("z")], axis=1) * fl,
        "vel": np.stack([col("vx"), col("vy"), col("vz")], axis=1) * fv,
        "mass": col("mass") * fm,
    }
    if "mass_initial" in fields:
        kw["mass_initial"] = col("mass_initial") * fm
    for name in ("lum_v", "lum_bol"):
        if name in fields:
            kw[name] = col(name) * flum
    for name in ("teff", "radius"):
        if name in fields:
            kw[name] = col(name)
    for name in ("kstar", "id"):
        if name in fields:
            kw[name] = np.rint(col(name))
    return Snapshot(**kw, age=age, time=time, metallicity=metallicity,
                    simulation=simulation if simulation is not None else p.stem.split(".")[0],
                    meta={"source_format": "ascii", "columns": cols})


# ---------------------------------------------------------------------------------------------------
# Luminosities for snapshots that have none
# ---------------------------------------------------------------------------------------------------


def with_luminosities(snap: Snapshot, *, age_gyr: float | None = None, metallicity: float | None = None,
                      replace_existing: bool = False) -> Snapshot:
    """Return the snapshot with V-band luminosities (and L_bol, Teff, R, type where missing).

    * If it has ``lum_v`` already (and ``replace_existing`` is false), it is returned unchanged.
    * If it has ``lum_bol`` and ``teff``, ``lum_v`` follows from the Reed (1998) bolometric correction.
    * Otherwise every star is looked up in the SSE table (:mod:`gcml.physics.stellar`) at ``age_gyr``
      and ``metallicity`` (default: the snapshot's own), from ``mass_initial`` or, when the snapshot
      has none, from the current mass taken as the initial mass (exact for main-sequence stars; stars
      that have lost mass are then treated as younger, lower-mass stars). Current masses are kept.
    """
    from gcml.physics.photometry import lum_v_from_bolometric

    if snap.lum_v is not None and not replace_existing:
        return snap
    if snap.lum_bol is not None and snap.teff is not None:
        out = snap.select(slice(None))
        out.lum_v = lum_v_from_bolometric(snap.lum_bol, snap.teff)
        return out
    from gcml.physics.stellar import evolve_stars

    age = age_gyr if age_gyr is not None else snap.age
    z = metallicity if metallicity is not None else snap.metallicity
    if age is None:
        raise InputError(f"snapshot {snap.simulation!r}: has no luminosities and no age; give the age in Gyr")
    if z is None:
        raise InputError(f"snapshot {snap.simulation!r}: has no luminosities and no metallicity; give Z")
    m0 = snap.mass_initial if snap.mass_initial is not None else snap.mass
    props = evolve_stars(m0, age, z)
    out = snap.select(slice(None))
    out.lum_v, out.lum_bol, out.teff, out.radius = props.lum_v, props.lum_bol, props.teff, props.radius
    if out.kstar is None:
        out.kstar = props.kstar
    out.age, out.metallicity = age, z
    return out
