"""Multi-galaxy GC catalogues as surveys serve them (e.g. the whole SLUGGS table, Forbes et al. 2017).

A survey table lists the GCs of many galaxies in one file. :func:`read_survey_table` reads it once, finds
which galaxy each row belongs to, and returns one checked :class:`~gcml.io.tables.GCTable` per galaxy:

- **Galaxy of a row**: a galaxy column (``galaxy_col``, or one named ``Galaxy``, ``Host``, ``Gal``,
  ``NGC``, ``Name_gal``), or else the prefix of the object id (``Star``, ``ID``, ``Name``, ``GC``), as in
  SLUGGS's ``NGC4278_S12`` (everything before the first ``_``). Names are normalised like
  :func:`gcml.io.tables.lookup_galaxy` does ("NGC4278", "ngc 4278" and "4278" are one galaxy).
- **Repeat measurements** (rows of one galaxy at the same position to 0.1 arcsec; SLUGGS lists 12 such
  rows in NGC 720, 4374, 4459 and 4474) are combined by inverse-variance weighting,
  v = sum(v_i / e_i^2) / sum(1 / e_i^2), e = sum(1 / e_i^2)^-1/2, with a note giving the rows and how
  well the repeats agree (chi^2 of the repeats about their mean). Rows without errors (e = 0) are
  averaged with equal weights and the error of the mean is the spread of the repeats / sqrt(n).
- Everything else is checked as :func:`~gcml.io.tables.read_gc_table` checks a single-galaxy table.

Likely non-members are flagged later, once positions are in kpc
(:func:`gcml.prediction.membership.flag_nonmembers`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gcml.errors import InputError
from gcml.io.tables import (
    MIN_GCS,
    GCTable,
    _angles,
    _norm_name,
    _numeric,
    gc_columns,
    read_table,
    source_path,
)

GALAXY_COLUMNS = ("Galaxy", "galaxy", "Host", "host", "Gal", "NGC", "Name_gal", "galaxy_name")
ID_COLUMNS = ("Star", "ID", "Id", "id", "Name", "name", "GC", "Object", "object")
#: Rows of one galaxy closer than this are repeat measurements of one GC [arcsec].
REPEAT_TOLERANCE_ARCSEC = 0.1


@dataclass
class SurveyGalaxy:
    """The GCs of one galaxy of a survey table.

    Attributes
    ----------
    name : normalised galaxy name ("NGC 4278")
    table : the galaxy's checked catalogue (repeats combined)
    rows : (N,) 1-based row numbers in the survey file of each GC (the first row of a combined repeat)
    n_rows : rows of this galaxy in the file
    repeats : list of (rows, chi2, dof) for each combined group of repeat measurements
    notes : what was done (combined repeats)
    """

    name: str
    table: GCTable
    rows: np.ndarray
    n_rows: int
    repeats: list[tuple[list[int], float, int]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def display_name(key: str) -> str:
    """'NGC4278' -> 'NGC 4278' (other names unchanged)."""
    m = re.fullmatch(r"NGC(\d+)", key)
    return f"NGC {m.group(1)}" if m else key


def galaxy_of_rows(t, path: Path, galaxy_col: str | None = None) -> tuple[np.ndarray, str]:
    """Normalised galaxy key of every row and the column it came from.

    Raises
    ------
    InputError : no galaxy column and no object id with a galaxy prefix.
    """
    names = list(t.colnames)
    col = galaxy_col
    if col is not None and col not in names:
        raise InputError(f"{path}: no column '{col}' (given as the galaxy column); the table has {', '.join(names)}")
    if col is None:
        col = next((c for c in GALAXY_COLUMNS if c in names), None)
    if col is not None:
        return np.array([_norm_name(str(x)) for x in t[col]]), col
    idc = next((c for c in ID_COLUMNS if c in names), None)
    if idc is not None:
        ids = [str(x) for x in t[idc]]
        if all("_" in s for s in ids):
            return np.array([_norm_name(s.split("_", 1)[0]) for s in ids]), idc
    raise InputError(f"{path}: cannot tell which galaxy each row belongs to; expected a galaxy column "
                     f"({', '.join(GALAXY_COLUMNS[:4])}, ...) or object ids like 'NGC4278_S12' in a column "
                     f"{', '.join(ID_COLUMNS[:3])}, ... (or give the galaxy column's name)")


def combine_repeats(ra: np.ndarray, dec: np.ndarray, v: np.ndarray, e: np.ndarray, *,
                    tol_arcsec: float = REPEAT_TOLERANCE_ARCSEC) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                         np.ndarray, list[tuple[list[int], float, int]]]:
    """Combine repeat measurements (positions within ``tol_arcsec``) by inverse-variance weighting.

    Returns (keep, v, e, members, groups): ``keep`` indices of the rows kept (the first of each group),
    combined ``v`` and ``e`` at those rows, ``members`` the group index of every input row, and per group of
    repeats (input indices, chi^2 of the repeats about the combined value, degrees of freedom).
    """
    n = len(v)
    tol = tol_arcsec / 3600.0
    cosd = np.cos(np.radians(dec))
    group = -np.ones(n, int)
    g = 0
    for i in range(n):
        if group[i] >= 0:
            continue
        d = np.hypot((ra - ra[i]) * cosd[i], dec - dec[i])
        near = (d <= tol) & (group < 0)
        group[near] = g
        g += 1
    keep, vv, ee, groups = [], [], [], []
    for k in range(g):
        idx = np.flatnonzero(group == k)
        keep.append(idx[0])
        if len(idx) == 1:
            vv.append(v[idx[0]])
            ee.append(e[idx[0]])
            continue
        vi, ei = v[idx], e[idx]
        if np.all(ei > 0):
            w = 1.0 / ei**2
            vm = float(np.sum(w * vi) / np.sum(w))
            em = float(np.sum(w) ** -0.5)
            chi2 = float(np.sum(w * (vi - vm) ** 2))
        else:
            vm = float(np.mean(vi))
            em = float(np.std(vi, ddof=1) / np.sqrt(len(vi)))
            chi2 = float("nan")
        vv.append(vm)
        ee.append(em)
        groups.append(([int(i) for i in idx], chi2, len(idx) - 1))
    return np.array(keep, int), np.array(vv), np.array(ee), group, groups


def read_survey_table(path: str | Path, *, galaxy: str | None = None, galaxy_col: str | None = None,
                      ra_col: str | None = None, dec_col: str | None = None, v_col: str | None = None,
                      verr_col: str | None = None, min_gcs: int = MIN_GCS) -> dict[str, SurveyGalaxy]:
    """Read a multi-galaxy GC table; return the galaxies' catalogues keyed by display name ("NGC 4278").

    Parameters
    ----------
    galaxy : one galaxy's name ("NGC 4278", "ngc4278", "4278"), or None / "all" for every galaxy
    galaxy_col : the column naming each row's galaxy (default: found, or the id prefix)
    min_gcs : galaxies with fewer GCs (after combining repeats) are still returned; the caller refuses them

    Raises
    ------
    InputError : unreadable table, missing columns, bad values, or ``galaxy`` not in the table.
    """
    p = source_path(path)
    t = read_table(path)
    if len(t) == 0:
        raise InputError(f"{p}: the catalogue has no rows; expected one row per GC")
    keys, gcol = galaxy_of_rows(t, p, galaxy_col)
    c_ra, c_dec, c_v, c_e = gc_columns(t, p, ra_col=ra_col, dec_col=dec_col, v_col=v_col, verr_col=verr_col)
    want = None
    if galaxy is not None and str(galaxy).strip().lower() != "all":
        want = _norm_name(galaxy)
        if want not in set(keys):
            have = ", ".join(display_name(k) for k in sorted(set(keys)))
            raise InputError(f"{p}: no rows of galaxy '{galaxy}' (column {gcol}); the table has {have}")
    ra_all = np.mod(_angles(t, c_ra, p, "the right ascension", True), 360.0)
    dec_all = _angles(t, c_dec, p, "the declination", False)
    v_all = _numeric(t, c_v, p, "line-of-sight velocities [km/s]", "km/s")
    warn: list[str] = []
    if c_e is not None:
        e_all = _numeric(t, c_e, p, "velocity errors [km/s]", "km/s")
        if np.any(e_all < 0):
            bad = np.flatnonzero(e_all < 0)[:5] + 1
            raise InputError(f"{p}: column {c_e} has negative velocity errors in row(s) {', '.join(map(str, bad))}; "
                             "expected errors >= 0 km/s")
    else:
        e_all = np.zeros(len(v_all))
        warn.append(f"{p.name}: no velocity-error column found; velocities are taken as exact")
    if np.any((dec_all < -90) | (dec_all > 90)):
        raise InputError(f"{p}: column {c_dec} has declinations outside -90..90 deg")
    out: dict[str, SurveyGalaxy] = {}
    for key in sorted(set(keys)):
        if want is not None and key != want:
            continue
        rows = np.flatnonzero(keys == key)
        keep, v, e, _, groups = combine_repeats(ra_all[rows], dec_all[rows], v_all[rows], e_all[rows])
        name = display_name(key)
        notes = []
        rep = []
        for idx, chi2, dof in groups:
            r = [int(rows[i]) + 1 for i in idx]
            rep.append((r, chi2, dof))
        if rep:
            nr = sum(len(r) for r, _, _ in rep)
            chi = sum(c for _, c, _ in rep if np.isfinite(c))
            dof = sum(d for _, c, d in rep if np.isfinite(c))
            notes.append(f"{name}: {nr} rows are repeat measurements of {len(rep)} GC(s) (same position to "
                         f"{REPEAT_TOLERANCE_ARCSEC:g} arcsec; rows {'; '.join(','.join(map(str, r)) for r, _, _ in rep)}), "
                         f"combined by inverse-variance weighting (repeats' chi^2 = {chi:.1f} for {dof} degrees of "
                         "freedom)")
        tab = GCTable(path=p, ra_deg=ra_all[rows][keep], dec_deg=dec_all[rows][keep], v_kms=v, v_err_kms=e,
                      columns={"ra": c_ra, "dec": c_dec, "v": c_v, "v_err": c_e, "galaxy": gcol},
                      warnings=list(warn))
        out[name] = SurveyGalaxy(name=name, table=tab, rows=rows[keep] + 1, n_rows=len(rows), repeats=rep, notes=notes)
    return out


def survey_galaxy_names(path: str | Path, galaxy_col: str | None = None) -> list[str] | None:
    """Display names of the galaxies a table holds, or None when its rows do not say which galaxy they belong to."""
    p = source_path(path)
    t = read_table(path)
    try:
        keys, _ = galaxy_of_rows(t, p, galaxy_col)
    except InputError:
        if galaxy_col is not None:
            raise
        return None
    return [display_name(k) for k in sorted(set(keys))]
