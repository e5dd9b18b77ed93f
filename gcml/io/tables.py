"""Globular-cluster catalogues from any table astropy reads, and the shipped SLUGGS galaxy table.

:func:`read_gc_table` reads

- VizieR TSV downloads (``asu-tsv``: ``#`` comment lines, a tab-separated header, a line of units and a
  line of dashes), read with astropy's ``ascii.tab`` reader after the unit and dash lines are taken off
  (the units are kept on the columns);
- CSV, ECSV, FITS binary/ASCII tables, VOTable (astropy's readers, chosen by suffix), and any other text
  table astropy's ``ascii`` reader can guess;

finds the RA, Dec, velocity and velocity-error columns by their usual names (``RAJ2000``, ``RA``,
``_RA``, ...; ``DEJ2000``, ``Dec``, ...; ``HRV``, ``v``, ``velocity``, ``RV``, ...; ``e_HRV``,
``v_err``, ...) or by the names given, accepts decimal degrees or sexagesimal strings (``10:47:42.3``,
``10h47m42.3s``) and checks the catalogue: missing columns, non-numeric or missing velocities, NaN,
duplicated rows and too few GCs each give one :class:`~gcml.errors.InputError` sentence naming the file,
the column and what was expected.

The SLUGGS galaxy table (Forbes et al. 2017, AJ 153, 114, Table 1, from VizieR J/AJ/153/114) is shipped
as ``gcml/data/sluggs_galaxies.tsv`` for ``--galaxy NAME`` look-ups (:func:`lookup_galaxy`).

Why one module of ~510 lines: it is the one reader of user tables (format sniffing, column lookup, angle
and number parsing, the checks and their messages) and the SLUGGS look-up that fills the same columns.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gcml.errors import InputError

#: The shipped SLUGGS galaxy table (Forbes et al. 2017, Table 1).
SLUGGS_FILE = Path(__file__).resolve().parents[1] / "data" / "sluggs_galaxies.tsv"

#: Fewest GCs gcml accepts for a kinematic map.
MIN_GCS = 10

RA_NAMES = ("RAJ2000", "RA_ICRS", "_RAJ2000", "_RA", "RA", "RAdeg", "RA_deg", "ra_deg", "alpha", "alpha_j2000")
DEC_NAMES = ("DEJ2000", "DE_ICRS", "_DEJ2000", "_DE", "DEC", "Dec", "DE", "DEdeg", "DEC_deg", "dec_deg", "delta",
             "delta_j2000")
V_NAMES = ("HRV", "Vhel", "V_hel", "vhelio", "v_helio", "RV", "RVel", "vel", "velocity", "vlos", "v_los", "cz",
           "V", "v")
VERR_NAMES = ("e_HRV", "eHRV", "HRV_err", "e_Vhel", "e_RV", "eRV", "RV_err", "e_vel", "vel_err", "velocity_err",
              "e_velocity", "e_vlos", "vlos_err", "e_cz", "v_err", "verr", "e_v", "ev", "dv", "sigma_v", "V_err",
              "e_V")

SUFFIX_FORMATS = {
    ".csv": "ascii.csv", ".ecsv": "ascii.ecsv", ".fits": "fits", ".fit": "fits", ".fts": "fits",
    ".fits.gz": "fits", ".fit.gz": "fits", ".vot": "votable", ".votable": "votable", ".xml": "votable",
}


@dataclass
class GCTable:
    """A validated GC catalogue.

    Attributes
    ----------
    path : the file read
    ra_deg, dec_deg : (N,) ICRS/J2000 position [deg]
    v_kms : (N,) line-of-sight (heliocentric) velocity [km/s]
    v_err_kms : (N,) velocity error [km/s]; zeros when the table has none (see ``warnings``)
    columns : dict role -> column name used ("ra", "dec", "v", "v_err")
    warnings : things the user should know (e.g. no velocity-error column)
    """

    path: Path
    ra_deg: np.ndarray
    dec_deg: np.ndarray
    v_kms: np.ndarray
    v_err_kms: np.ndarray
    columns: dict[str, str | None]
    warnings: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return int(len(self.v_kms))


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for s in (".fits.gz", ".fit.gz"):
        if name.endswith(s):
            return s
    return path.suffix.lower()


_DASHES = re.compile(r"^[\s\-]+$")


def _read_vizier_tsv(path: Path, lines: list[str]) -> Any:
    """Read a VizieR ``asu-tsv`` file: header, unit line, dash line, tab-separated rows."""
    from astropy import units as u
    from astropy.table import Table

    body = [ln.rstrip("\r\n") for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    dash = next(i for i, ln in enumerate(body) if _DASHES.match(ln) and "-" in ln)
    header = body[0]
    unit_line = body[1] if dash == 2 else None
    rows = body[dash + 1:]
    if not rows:
        raise InputError(f"{path}: the table has a header but no data rows; expected one row per GC")
    t = Table.read([header, *rows], format="ascii.tab", guess=False)
    if unit_line is not None:
        units = unit_line.split("\t")
        for name, us in zip(t.colnames, units, strict=False):
            us = us.strip()
            if us:
                un = u.Unit(us, parse_strict="silent")
                if not isinstance(un, u.UnrecognizedUnit):
                    t[name].unit = un
    return t


#: speed of light [km/s]
C_KMS = 299792.458

_SIGNATURES = ((b"\x89HDF\r\n\x1a\n", "an HDF5 file"), (b"PK\x03\x04", "a zip archive (a model bundle .pt?)"),
               (b"\x80", "a Python pickle"))


def not_a_table(path: str | Path) -> str | None:
    """Say what ``path`` is when it clearly is no catalogue (HDF5 such as a gcml MapSet, a model bundle)."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            head = fh.read(8)
    except OSError:
        return None
    for sig, what in _SIGNATURES:
        if head.startswith(sig):
            if sig.startswith(b"\x89HDF"):
                try:
                    import h5py

                    with h5py.File(p, "r") as f:
                        fmt = f.attrs.get("format")
                    fmt = fmt.decode() if isinstance(fmt, bytes) else fmt
                    if fmt:
                        return f"a '{fmt}' file"
                except OSError:
                    pass
            return what
    return None


#: What error messages and results call a catalogue given as an in-memory astropy Table.
TABLE_LABEL = "<astropy Table>"


def is_astropy_table(source: Any) -> bool:
    """True when ``source`` is an in-memory ``astropy.table.Table`` (or ``QTable``), not a file name."""
    if source is None or isinstance(source, (str, Path)):
        return False
    from astropy.table import Table

    return isinstance(source, Table)


def source_path(source: Any) -> Path:
    """The path a catalogue source names, or :data:`TABLE_LABEL` for an in-memory astropy Table (used in
    messages and recorded in results)."""
    return Path(TABLE_LABEL) if is_astropy_table(source) else Path(source)


def _from_astropy(t: Any) -> Any:
    """An in-memory (Q)Table as the readers' plain ``Table``: Quantity columns become columns with units;
    a SkyCoord column (when the table has no RA/Dec columns of its own) becomes ``RA``/``DEC`` columns in
    ICRS degrees."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord
    from astropy.table import Table

    out = Table(t, copy=True)
    coords = [c for c in out.colnames if isinstance(out[c], SkyCoord)]
    names = {c.lower() for c in out.colnames}
    if coords and not ({n.lower() for n in RA_NAMES} & names):
        if len(coords) > 1:
            raise InputError(f"{TABLE_LABEL}: has {len(coords)} SkyCoord columns ({', '.join(coords)}); expected "
                             "one (or RA and Dec columns)")
        icrs = out[coords[0]].icrs
        idx = out.colnames.index(coords[0])
        out.remove_column(coords[0])
        out.add_column(icrs.ra.to(u.deg), name="RA", index=idx)
        out.add_column(icrs.dec.to(u.deg), name="DEC", index=idx + 1)
    return Table(out, copy=False)


def read_table(path: str | Path) -> Any:
    """Read any table astropy reads into an ``astropy.table.Table`` (first table of a FITS/VOTable file).

    ``path`` may also be an in-memory astropy ``Table``/``QTable`` (units on its columns are used; a
    ``SkyCoord`` column gives RA and Dec), returned as a copy.

    Raises
    ------
    InputError : the file is missing or cannot be read as a table.
    """
    from astropy.table import Table

    if is_astropy_table(path):
        return _from_astropy(path)
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{p}: is a folder; expected a catalogue file")
    if not p.is_file():
        raise InputError(f"{p}: catalogue file not found")
    other = not_a_table(p)
    if other is not None:
        raise InputError(f"{p}: is {other}, not a catalogue; expected VizieR TSV, CSV, ECSV, FITS or VOTable")
    fmt = SUFFIX_FORMATS.get(_suffix(p))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # astropy unit / VOTable chatter; problems are checked below
            if fmt is None:
                try:
                    with open(p, encoding="utf-8", errors="replace") as fh:
                        lines = fh.readlines()
                except OSError as exc:
                    raise InputError(f"{p}: cannot read the file ({exc.strerror})") from None
                body = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
                if not body:
                    raise InputError(f"{p}: the file holds no table (only comments or blank lines)")
                if "\t" in body[0] and any(_DASHES.match(ln) and "-" in ln for ln in body[1:3]):
                    return _read_vizier_tsv(p, lines)
                return Table.read(p, format="ascii")
            if fmt == "fits":
                return Table.read(p, format="fits", hdu=_first_table_hdu(p))
            return Table.read(p, format=fmt)
    except InputError:
        raise
    except Exception as exc:  # astropy raises many types for unreadable files
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{p}: cannot be read as a table ({first}); expected VizieR TSV, CSV, ECSV, FITS or "
                         "VOTable") from None


def _first_table_hdu(p: Path) -> int:
    from astropy.io import fits

    with fits.open(p) as hdul:
        for i, h in enumerate(hdul):
            if isinstance(h, (fits.BinTableHDU, fits.TableHDU)):
                return i
    raise InputError(f"{p}: the FITS file holds no table extension; expected a binary or ASCII table of GCs")


def is_fits_table(path: str | Path) -> bool:
    """True when ``path`` is a FITS file whose data is a table (no image in any HDU)."""
    from astropy.io import fits

    try:  # our own file handle: astropy leaves its own open when a damaged file fails half-way
        with open(path, "rb") as fh, fits.open(fh) as hdul:
            has_table = any(isinstance(h, (fits.BinTableHDU, fits.TableHDU)) for h in hdul)
            has_image = any(isinstance(h, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU))
                            and h.header.get("NAXIS", 0) >= 2 for h in hdul)
    except Exception:  # not FITS at all: let the image reader say so
        return False
    return has_table and not has_image


def _find(colnames: list[str], wanted: str | None, candidates: tuple[str, ...], role: str, path: Path,
          option: str, required: bool = True) -> str | None:
    if wanted is not None:
        if wanted in colnames:
            return wanted
        low = {c.lower(): c for c in colnames}
        if wanted.lower() in low:
            return low[wanted.lower()]
        raise InputError(f"{path}: no column '{wanted}' (given by {option}); the table has "
                         f"{', '.join(colnames)}")
    low = {c.lower(): c for c in colnames}
    for cand in candidates:
        if cand in colnames:
            return cand
    for cand in candidates:
        if cand.lower() in low:
            return low[cand.lower()]
    if not required:
        return None
    raise InputError(f"{path}: no {role} column found (looked for {', '.join(candidates[:6])}, ...); name it with "
                     f"{option}; the table has {', '.join(colnames)}")


def _rows(idx: np.ndarray) -> str:
    rows = [str(int(i) + 1) for i in idx[:5]]
    more = f" and {len(idx) - 5} more" if len(idx) > 5 else ""
    return ", ".join(rows) + more


def _numeric(t: Any, name: str, path: Path, what: str, unit: str | None = None) -> np.ndarray:
    """A column as float64 in ``unit`` (when the column carries a unit); errors name the bad rows."""
    col = t[name]
    mask = np.zeros(len(col), bool)
    if hasattr(col, "mask") and col.mask is not np.False_:
        mask = np.asarray(col.mask, bool).reshape(len(col), -1).any(1)
    data = np.asarray(col.filled(0) if hasattr(col, "filled") else col)
    if data.ndim != 1:
        raise InputError(f"{path}: column {name} holds arrays, expected one {what} per row")
    if data.dtype.kind in "iuf":
        vals = data.astype(np.float64)
    else:
        strs = np.char.strip(data.astype(str))
        vals = np.full(len(strs), np.nan)
        bad = []
        for i, s in enumerate(strs):
            if mask[i] or s == "" or s.lower() in ("nan", "--", "null", "none", "na"):
                continue
            try:
                vals[i] = float(s)
            except ValueError:
                bad.append(i)
        if bad:
            raise InputError(f"{path}: column {name} has non-numeric values in row(s) {_rows(np.array(bad))} "
                             f"(e.g. '{strs[bad[0]]}'); expected {what} as numbers")
    vals = np.where(mask, np.nan, vals)
    if unit is not None and col.unit is not None:
        from astropy import units as u

        try:
            vals = (vals * col.unit).to_value(u.Unit(unit))
        except u.UnitConversionError:
            raise InputError(f"{path}: column {name} has unit '{col.unit}', expected {what} in a unit convertible "
                             f"to {unit}") from None
    bad = np.flatnonzero(~np.isfinite(vals))
    if len(bad):
        raise InputError(f"{path}: column {name} has missing, NaN or infinite values in row(s) {_rows(bad)}; "
                         f"expected {what} for every GC (remove those rows)")
    return vals


def _angles(t: Any, name: str, path: Path, what: str, is_ra: bool) -> np.ndarray:
    """RA or Dec in degrees from decimal degrees (or hours with an hour unit) or sexagesimal strings."""
    from astropy import units as u
    from astropy.coordinates import Angle

    col = t[name]
    data = np.asarray(col)
    if data.dtype.kind in "iuf" or _all_float(data):
        if col.unit is not None and col.unit.physical_type == "angle":
            return _numeric(t, name, path, what, "deg")
        if col.unit is not None and str(col.unit) not in ("h", "hourangle", ""):
            raise InputError(f"{path}: column {name} has unit '{col.unit}', expected {what} as an angle "
                             "(deg, hourangle, rad, ...)")
        vals = _numeric(t, name, path, what)
        if col.unit is not None and str(col.unit) in ("h", "hourangle"):
            return vals * 15.0
        return vals
    strs = [str(s).strip() for s in data]
    unit = u.hourangle if is_ra and not any(("d" in s or "°" in s) for s in strs) else u.deg
    out = np.empty(len(strs))
    for i, s in enumerate(strs):
        try:
            out[i] = Angle(s, unit=unit).to_value(u.deg)
        except (ValueError, u.UnitsError):
            raise InputError(f"{path}: column {name} row {i + 1} has '{s}', expected {what} in degrees or "
                             f"sexagesimal form ({'10:47:42.3 hours' if is_ra else '+13:59:09 degrees'})") from None
    return out


def _all_float(a: np.ndarray) -> bool:
    try:
        np.asarray(a, dtype=np.float64)
        return True
    except (TypeError, ValueError):
        return False


def gc_columns(t: Any, p: Path, *, ra_col: str | None = None, dec_col: str | None = None, v_col: str | None = None,
               verr_col: str | None = None) -> tuple[str, str, str, str | None]:
    """The RA, Dec, velocity and (optional) velocity-error columns of a GC table: the names given, else the
    usual VizieR/CSV names; raises InputError naming the missing column."""
    names = list(t.colnames)
    c_ra = _find(names, ra_col, RA_NAMES, "RA", p, "`ra_col`")
    c_dec = _find(names, dec_col, DEC_NAMES, "Dec", p, "`dec_col`")
    c_v = _find(names, v_col, V_NAMES, "velocity", p, "`v_col`")
    c_e = _find(names, verr_col, VERR_NAMES, "velocity-error", p, "`verr_col`", required=False)
    if c_e == c_v:
        c_e = None
    return c_ra, c_dec, c_v, c_e


def read_gc_table(
    path: str | Path, *, ra_col: str | None = None, dec_col: str | None = None, v_col: str | None = None,
    verr_col: str | None = None, min_gcs: int = MIN_GCS,
) -> GCTable:
    """Read and check a GC catalogue (positions and line-of-sight velocities).

    Parameters
    ----------
    path : any table astropy reads (VizieR TSV, CSV, ECSV, FITS table, VOTable, other text tables), or an
        astropy ``Table``/``QTable`` in memory (column units are converted; a ``SkyCoord`` column is the position)
    ra_col, dec_col, v_col, verr_col : column names; by default found among the usual names
        (:data:`RA_NAMES`, :data:`DEC_NAMES`, :data:`V_NAMES`, :data:`VERR_NAMES`, case-insensitive)
    min_gcs : fewest GCs accepted

    Returns
    -------
    GCTable

    Raises
    ------
    InputError : unreadable file, a missing column, non-numeric / missing / NaN values, duplicated rows,
        negative velocity errors, RA/Dec out of range or fewer than ``min_gcs`` GCs.
    """
    p = source_path(path)
    t = read_table(path)
    if len(t) == 0:
        raise InputError(f"{p}: the catalogue has no rows; expected one row per GC")
    c_ra, c_dec, c_v, c_e = gc_columns(t, p, ra_col=ra_col, dec_col=dec_col, v_col=v_col, verr_col=verr_col)
    warn: list[str] = []
    ra = _angles(t, c_ra, p, "the right ascension", True)
    dec = _angles(t, c_dec, p, "the declination", False)
    v = _numeric(t, c_v, p, "line-of-sight velocities [km/s]", "km/s")
    fast = np.flatnonzero(np.abs(v) >= C_KMS)
    if len(fast):
        raise InputError(f"{p}: column {c_v} has speeds at or above the speed of light ({C_KMS:,.0f} km/s) in row(s) "
                         f"{_rows(fast)}; expected line-of-sight velocities in km/s")
    if c_e is not None:
        e = _numeric(t, c_e, p, "velocity errors [km/s]", "km/s")
        neg = np.flatnonzero(e < 0)
        if len(neg):
            raise InputError(f"{p}: column {c_e} has negative velocity errors in row(s) {_rows(neg)}; expected "
                             "errors >= 0 km/s")
    else:
        e = np.zeros(len(v))
        warn.append(f"{p.name}: no velocity-error column found (looked for {', '.join(VERR_NAMES[:4])}, ...); "
                    "velocities are taken as exact")
    if np.any((dec < -90) | (dec > 90)):
        bad = np.flatnonzero((dec < -90) | (dec > 90))
        raise InputError(f"{p}: column {c_dec} has declinations outside -90..90 deg in row(s) {_rows(bad)}")
    ra = np.mod(ra, 360.0)
    # Duplicated rows: the same position twice (a GC listed twice, or repeated measurements not averaged).
    key = np.round(np.stack([ra, dec], 1) * 3.6e6).astype(np.int64)  # 1 mas
    _, first, inv, counts = np.unique(key, axis=0, return_index=True, return_inverse=True, return_counts=True)
    dup = np.flatnonzero(counts[inv.ravel()] > 1)
    if len(dup):
        i = dup[0]
        j = first[inv.ravel()[i]]
        if j == i:
            j = dup[1] if len(dup) > 1 else i
        raise InputError(f"{p}: rows {min(i, j) + 1} and {max(i, j) + 1} have the same position ({c_ra}, {c_dec}); "
                         f"{len(dup)} rows are duplicated, expected each GC once (average repeated measurements)")
    if len(v) < min_gcs:
        raise InputError(f"{p}: the catalogue has {len(v)} GCs; expected at least {min_gcs} for a kinematic map")
    return GCTable(path=p, ra_deg=ra, dec_deg=dec, v_kms=v, v_err_kms=e,
                   columns={"ra": c_ra, "dec": c_dec, "v": c_v, "v_err": c_e}, warnings=warn)


# ------------------------------------------------------------------------------- SLUGGS galaxy table


@dataclass(frozen=True)
class GalaxyInfo:
    """A galaxy of the shipped SLUGGS table (Forbes et al. 2017, AJ 153, 114, Table 1).

    Attributes
    ----------
    name : e.g. "NGC 3377"
    ra_deg, dec_deg : centre (J2000) [deg]
    distance_mpc : distance [Mpc]
    vsys_kms : systemic velocity [km/s]
    r_e_arcsec : effective radius [arcsec]
    log10_mstar : stellar mass [log10 Msun]
    sigma_kms : central stellar velocity dispersion (within 1 kpc) [km/s]
    morphology : Hubble type
    reference : citation
    """

    name: str
    ra_deg: float
    dec_deg: float
    distance_mpc: float
    vsys_kms: float
    r_e_arcsec: float
    log10_mstar: float
    sigma_kms: float
    morphology: str
    reference: str = "Forbes et al. 2017, AJ 153, 114 (SLUGGS), Table 1; VizieR J/AJ/153/114"

    @property
    def r_e_kpc(self) -> float:
        """Effective radius at the tabulated distance [kpc]."""
        return float(self.r_e_arcsec * np.pi / (180 * 3600) * self.distance_mpc * 1e3)


def _norm_name(name: str) -> str:
    s = re.sub(r"[\s_\-]+", "", str(name)).upper()
    m = re.fullmatch(r"(?:NGC)?0*(\d+)", s)
    return f"NGC{int(m.group(1))}" if m else s


def sluggs_galaxies() -> dict[str, GalaxyInfo]:
    """All galaxies of the shipped SLUGGS table, keyed by normalised name ("NGC3377")."""
    text = SLUGGS_FILE.read_text()
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    header = lines[0].split("\t")
    out: dict[str, GalaxyInfo] = {}
    for ln in lines[3:]:
        row = dict(zip(header, (c.strip() for c in ln.split("\t")), strict=False))
        g = GalaxyInfo(name=f"NGC {int(row['NGC'])}", ra_deg=float(row["RAJ2000"]), dec_deg=float(row["DEJ2000"]),
                       distance_mpc=float(row["Dist"]), vsys_kms=float(row["Vsys"]), r_e_arcsec=float(row["Reff"]),
                       log10_mstar=float(row["logM*"]), sigma_kms=float(row["sigma"]), morphology=row["MType"])
        out[_norm_name(g.name)] = g
    return out


def lookup_galaxy(name: str) -> GalaxyInfo:
    """Centre, distance, systemic velocity and R_e of a SLUGGS galaxy ("NGC 3377", "ngc3377", "3377").

    Raises
    ------
    InputError : the galaxy is not in the table (the message lists the ones that are).
    """
    gals = sluggs_galaxies()
    key = _norm_name(name)
    if key not in gals:
        raise InputError(f"option `galaxy`: '{name}' is not in gcml's SLUGGS table (Forbes et al. 2017); expected "
                         f"one of {', '.join(g.name for g in gals.values())}, or give `ra`, `dec`, `distance_mpc`")
    return gals[key]


#: result tables gcml writes: format -> file suffix
TABLE_FORMATS = {"ecsv": ".ecsv", "votable": ".vot"}


def write_table(table: Any, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write a result table (``to_table()`` of a prediction) atomically as ECSV or VOTable (by suffix).

    ECSV keeps every astropy unit, ``dex(solMass)`` included, and the metadata (warnings, notes,
    Quantities). VOTable units follow the VOUnits standard, which has no logarithmic units: a ``dex(X)``
    column is written without a unit and with the description ``log10(value / X)``; the metadata become
    INFO elements of the table (lists joined with `` | ``, Quantities as ``"10.9 Mpc"``; astropy's own
    VOTable writer drops ``meta``), read with ``astropy.io.votable.parse(path).get_first_table().infos``.
    """
    from astropy.table import Table

    from gcml.io.common import atomic_output

    p = Path(path)
    fmt = {v: k for k, v in TABLE_FORMATS.items()}.get(p.suffix.lower())
    if fmt is None:
        raise InputError(f"{p}: result tables are written as {' or '.join(TABLE_FORMATS.values())}")
    t = Table(table, copy=True)
    if fmt == "votable":
        import astropy.units as u

        for name in t.colnames:
            unit = t[name].unit
            if unit is None:
                continue
            try:
                unit.to_string("vounit")
            except (ValueError, TypeError):  # dex, dex(X): no VOUnit
                t[name].unit = None
                phys = getattr(unit, "physical_unit", u.dimensionless_unscaled)
                t[name].description = f"log10(value / {phys})" if phys != u.dimensionless_unscaled else "dex"
        meta = {k: (" | ".join(map(str, v)) if isinstance(v, list) else str(v)) for k, v in t.meta.items()}
        t.meta = {}
        with atomic_output(p, overwrite=overwrite) as tmp:
            _write_votable(t, meta, tmp)
        return p
    with atomic_output(p, overwrite=overwrite) as tmp:
        t.write(tmp, format="ascii.ecsv", overwrite=True)  # our temporary
    return p


def _write_votable(t: Any, meta: dict[str, str], path: Path) -> None:
    """A VOTable of ``t`` with ``meta`` as INFO elements of the table."""
    from astropy.io.votable import from_table
    from astropy.io.votable.tree import Info

    vot = from_table(t)
    infos = vot.get_first_table().infos
    for k, v in meta.items():
        infos.append(Info(name=str(k), value=v))
    vot.to_xml(str(path))
