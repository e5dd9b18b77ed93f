"""ASCII / CSV particle tables with a column map and units."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gcml.errors import FormatError, InputError
from gcml.io.snapshots.snapshot import Snapshot

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
