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

The package, one module per concern: :mod:`~gcml.io.snapshots.snapshot` (the type and its units),
:mod:`~gcml.io.snapshots.hdf5` (gcml files), :mod:`~gcml.io.snapshots.nbody6` (``conf.3``),
:mod:`~gcml.io.snapshots.ascii` (tables), :mod:`~gcml.io.snapshots.evolution` (luminosities from stellar
evolution); this module picks the reader for a file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from gcml.errors import InputError
from gcml.io.snapshots.ascii import ASCII_ALIASES, read_ascii_snapshot
from gcml.io.snapshots.evolution import with_luminosities
from gcml.io.snapshots.hdf5 import FORMAT, FORMAT_VERSION, read_gcml_snapshot, write_snapshot
from gcml.io.snapshots.nbody6 import NBODY6_AS_NAMES, read_nbody6_conf3
from gcml.io.snapshots.snapshot import OPTIONAL_FIELDS, UNITS, Snapshot, half_mass_radius

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


def list_snapshot_files(directory: str | Path, *, pattern: str | None = None, partial: bool = False) -> list[Path]:
    """Snapshot files in a folder (``*.h5``/``*.hdf5`` by default; hidden and temporary files skipped).

    A path to a single file gives a one-element list. Series written by ``gcml simulate-clusters`` must be
    complete (:func:`gcml.io.series.check_series`) unless ``partial``.
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
    from gcml.io.series import check_series

    return check_series(files, d, partial=partial, whole_folder=pattern is None)


def read_snapshots(directory: str | Path, *, pattern: str | None = None, format: str | None = None,
                   partial: bool = False, **opts: Any) -> list[Snapshot]:
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
    files = list_snapshot_files(directory, pattern=pattern, partial=partial)
    snaps = [read_snapshot(f, format=format, **opts) for f in files]
    order = sorted(range(len(snaps)), key=lambda i: (
        np.inf if snaps[i].time is None else snaps[i].time,
        np.inf if snaps[i].age is None else snaps[i].age, i))
    return [snaps[i] for i in order]


__all__ = ["ASCII_ALIASES", "FORMAT", "FORMAT_VERSION", "NBODY6_AS_NAMES", "OPTIONAL_FIELDS", "UNITS", "Snapshot",
           "half_mass_radius", "list_snapshot_files", "read_ascii_snapshot", "read_gcml_snapshot",
           "read_nbody6_conf3", "read_snapshot", "read_snapshots", "sniff_format", "with_luminosities",
           "write_snapshot"]
