"""NBODY6 / NBODY6++ ``conf.3`` snapshots (Fortran unformatted)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gcml.errors import FormatError, InputError
from gcml.io.snapshots.snapshot import Snapshot

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
