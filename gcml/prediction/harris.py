"""The Harris (1996, 2010 edition) catalogue of Milky Way globular clusters, shipped with gcml.

``gcml/data/catalogs/harris2010_mwgc.dat`` is the catalogue file as distributed (balbinot/mwgc, MIT; the data
are free to use with a reference to the original: Harris, W. E. 1996, AJ, 112, 1487, cited as "Harris 1996
(2010 edition)"). Part I gives identifications, J2000 positions and distances; Part II metallicities,
reddening and integrated photometry; Part III structural parameters (read here: the half-light radius).
:func:`lookup` finds a cluster by its ID (``"NGC 104"``, ``"NGC104"``, ``"Pal 5"``) or its other name
(``"47 Tuc"``, ``"omega Cen"``), ignoring case and spaces, and also accepts Messier numbers written as
``"M 13"``/``"M13"`` when the catalogue lists them as other names.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from gcml.errors import InputError

CITATION = "Harris, W. E. 1996, AJ, 112, 1487 (2010 edition)"


@dataclass(frozen=True)
class HarrisCluster:
    """One catalogue entry (NaN where the catalogue has no value).

    Attributes
    ----------
    id, name : catalogue ID and other common name
    ra_deg, dec_deg : J2000 position [deg]
    distance_kpc : heliocentric distance R_Sun [kpc]
    feh : [Fe/H]; ebv : foreground reddening E(B-V) [mag]; v_t : integrated apparent V [mag];
    m_v_t : integrated absolute V [mag]; b_v : integrated B - V [mag]
    r_h_arcmin : projected half-light radius [arcmin] (Part III)
    """

    id: str
    name: str
    ra_deg: float
    dec_deg: float
    distance_kpc: float
    feh: float = math.nan
    ebv: float = math.nan
    v_t: float = math.nan
    m_v_t: float = math.nan
    b_v: float = math.nan
    r_h_arcmin: float = math.nan

    @property
    def r_h_pc(self) -> float:
        """Projected half-light radius [pc] at the catalogue distance (NaN when either is unknown)."""
        return self.distance_kpc * 1e3 * math.radians(self.r_h_arcmin / 60.0)


def _key(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name).lower()


def _float(text: str) -> float:
    text = text.strip()
    try:
        return float(text) if text else math.nan
    except ValueError:
        return math.nan


def _sexagesimal(h: str, m: str, s: str, *, hours: bool) -> float:
    sign = -1.0 if h.strip().startswith("-") else 1.0
    v = abs(float(h)) + float(m) / 60.0 + float(s) / 3600.0
    return sign * v * (15.0 if hours else 1.0)


def parse_harris(text: str) -> dict[str, HarrisCluster]:
    """Parse the catalogue text (Parts I and II) into clusters keyed by normalised ID.

    Part I lines: ID (columns 2-12), other name (13-25), then RA (h m s), Dec (d m s), l, b, R_Sun, R_gc,
    X, Y, Z (13 fields). Part II lines: ID, [Fe/H], wt, E(B-V), V_HB, (m-M)V, V_t, M_V,t, U-B, B-V, ... in fixed
    columns (blank when unknown). Part III lines: ID, v_r, ..., c, r_c, r_h (columns 65-70, arcmin), ...
    """
    lines = text.splitlines()
    part = 0
    rows: dict[str, dict] = {}
    for line in lines:
        s = line.strip()
        if s.startswith("Part I:"):
            part = 1
            continue
        if s.startswith("Part II:"):
            part = 2
            continue
        if s.startswith("Part III:"):
            part = 3
            continue
        if not s or s.startswith("ID") or s.startswith("(") or s.startswith("_") or len(line) < 40:
            continue
        if part == 1:
            tok = line[25:].split()
            if len(tok) != 13:
                continue
            try:
                ra = _sexagesimal(*tok[0:3], hours=True)
                dec = _sexagesimal(*tok[3:6], hours=False)
            except ValueError:
                continue
            cid = line[1:12].strip()
            rows[_key(cid)] = {"id": cid, "name": line[12:25].strip(), "ra_deg": ra, "dec_deg": dec,
                               "distance_kpc": _float(tok[8])}
        elif part == 2:
            k = _key(line[1:12])
            if k in rows:
                rows[k].update(feh=_float(line[12:18]), ebv=_float(line[21:28]), v_t=_float(line[40:46]),
                               m_v_t=_float(line[46:53]), b_v=_float(line[60:66]))
        elif part == 3:
            k = _key(line[1:12])
            if k in rows:
                rows[k].update(r_h_arcmin=_float(line[64:70]))
    return {k: HarrisCluster(**v) for k, v in rows.items()}


@lru_cache(maxsize=1)
def harris_catalogue() -> dict[str, HarrisCluster]:
    """All clusters of the shipped catalogue, keyed by normalised ID."""
    text = resources.files("gcml").joinpath("data/catalogs/harris2010_mwgc.dat").read_text(encoding="latin-1")
    cat = parse_harris(text)
    if len(cat) < 150:
        raise InputError(f"gcml/data/catalogs/harris2010_mwgc.dat: parsed {len(cat)} clusters, expected 157")
    return cat


def lookup(name: str) -> HarrisCluster:
    """The cluster called ``name`` (ID or other name; case and spaces ignored).

    Raises
    ------
    InputError
        When no cluster matches (the message suggests close names).
    """
    cat = harris_catalogue()
    k = _key(name)
    if k in cat:
        return cat[k]
    for c in cat.values():
        if c.name and _key(c.name) == k:
            return c
    close = [c.id for c in cat.values() if k and (k in _key(c.id) or k in _key(c.name))][:5]
    hint = f"; did you mean {', '.join(close)}?" if close else " (names as in Harris 1996, 2010 edition, e.g. 'NGC 104', '47 Tuc', 'Pal 5')"
    raise InputError(f"`target` {name}: not a Milky Way globular cluster in the Harris catalogue{hint}")
