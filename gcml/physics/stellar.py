"""Single-star evolution by table lookup: initial mass x age x metallicity -> mass, L, Teff, R, type.

The table ``gcml/data/stellar_table_sse.npz`` is built once by ``scripts/build_stellar_table.py`` from
the SSE tracks of Hurley, Pols & Tout (2000, MNRAS 315, 543) as implemented in COSMIC (Breivik et al.
2020, ApJ 898, 71), for initial masses 0.07-150 Msun (160 values, log-spaced) and Z = 0.0001-0.02
(6 values). Each track is sampled on three segments bounded by the star's own main-sequence lifetime
``t_ms`` and remnant-formation time ``t_rem``; see the script's docstring. At run time:

1. ``log t_ms`` and ``log t_rem`` are interpolated linearly in ``log m`` (and ``log Z``);
2. the star's age fixes its segment and its position inside it (``t/t_ms``; ``(t-t_ms)/(t_rem-t_ms)``;
   ``log(t-t_rem)``), so neighbouring grid masses are compared at equivalent evolutionary points;
3. mass, ``log L``, ``log Teff`` and ``log R`` are interpolated linearly in that position and in
   ``log m``; the stellar type is that of the nearer grid point, and where the two neighbours are
   different kinds of remnant (white dwarf, neutron star, black hole) all values come from the nearer.

Only numpy is needed at run time. Hurley stellar types: 0-1 main sequence, 2 Hertzsprung gap, 3 giant
branch, 4 core helium burning, 5-6 AGB, 7-9 helium stars, 10-12 white dwarfs, 13 neutron star,
14 black hole, 15 massless remnant.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gcml.errors import FormatError, InputError

TABLE_FILE = Path(__file__).resolve().parents[1] / "data" / "stellar_table_sse.npz"
AGE_MAX_GYR = 20.0

KSTAR_NAMES = {
    0: "MS (m < 0.7)", 1: "MS", 2: "Hertzsprung gap", 3: "giant branch", 4: "core He burning",
    5: "early AGB", 6: "TP-AGB", 7: "naked He MS", 8: "naked He HG", 9: "naked He GB",
    10: "He white dwarf", 11: "CO white dwarf", 12: "ONe white dwarf", 13: "neutron star",
    14: "black hole", 15: "massless remnant",
}


@dataclass(frozen=True)
class StellarProperties:
    """Properties of stars at one age (arrays of the same shape as the input masses).

    Attributes
    ----------
    mass : current mass [Msun]
    lum_bol : bolometric luminosity [Lsun]
    teff : effective temperature [K]
    radius : radius [Rsun]
    kstar : Hurley stellar type (int8)
    lum_v : V-band luminosity [L_V,sun] from the Reed (1998) bolometric correction
    """

    mass: np.ndarray
    lum_bol: np.ndarray
    teff: np.ndarray
    radius: np.ndarray
    kstar: np.ndarray
    lum_v: np.ndarray


_FIELDS = ("mass", "log_l", "log_teff", "log_r")


def _remnant_class(k: np.ndarray) -> np.ndarray:
    """0 for stars, 1 white dwarfs, 2 neutron stars, 3 black holes, 4 massless remnants."""
    return np.select([k < 10, k <= 12, k == 13, k == 14], [0, 1, 2, 3], 4)


@dataclass(frozen=True)
class StellarTracks:
    """The table at one metallicity: tracks of every grid mass on the three-segment grid."""

    metallicity: float
    log_masses: np.ndarray  # (M,)
    log_t_ms: np.ndarray  # (M,) log10 Myr
    log_t_rem: np.ndarray  # (M,)
    grid_a: np.ndarray
    grid_b: np.ndarray
    grid_c: np.ndarray
    fields: dict[str, np.ndarray]  # name -> (M, K)
    kstar: np.ndarray  # (M, K) int8

    @property
    def mass_range(self) -> tuple[float, float]:
        return float(10 ** self.log_masses[0]), float(10 ** self.log_masses[-1])

    def main_sequence_lifetime(self, mass_initial: np.ndarray | float) -> np.ndarray:
        """Main-sequence lifetime [Myr] (time of leaving types 0-1) for initial masses [Msun]."""
        lm = np.log10(np.asarray(mass_initial, dtype=float))
        return 10 ** np.interp(lm, self.log_masses, self.log_t_ms)

    def turnoff_mass(self, age_gyr: float) -> float:
        """Initial mass [Msun] whose main-sequence lifetime equals ``age_gyr``."""
        lt = np.log10(age_gyr * 1000.0)
        # log t_ms decreases with mass: interpolate on the reversed arrays.
        return float(10 ** np.interp(lt, self.log_t_ms[::-1], self.log_masses[::-1]))

    def lookup(self, mass_initial: np.ndarray, age_gyr: float | np.ndarray) -> StellarProperties:
        """Stellar properties for initial masses [Msun] at an age [Gyr] (scalar or per star)."""
        from gcml.physics.photometry import lum_v_from_bolometric

        m = np.asarray(mass_initial, dtype=float)
        lo, hi = self.mass_range
        if m.size and (np.any(~np.isfinite(m)) or m.min() < lo * (1 - 1e-9) or m.max() > hi * (1 + 1e-9)):
            raise InputError(
                f"mass_initial: initial masses must lie in the stellar table's range {lo:g}-{hi:g} Msun "
                f"(got {np.nanmin(m):g}-{np.nanmax(m):g})"
            )
        age = np.asarray(age_gyr, dtype=float)
        if np.any(~np.isfinite(age)) or np.any(age < 0) or np.any(age > AGE_MAX_GYR):
            raise InputError(f"age: stellar ages must lie in 0-{AGE_MAX_GYR:g} Gyr (got {age_gyr})")
        shape = m.shape
        m = m.ravel()
        t = np.broadcast_to(age, shape).ravel() * 1000.0
        lm = np.log10(np.clip(m, lo, hi))
        nm = self.log_masses.size
        i = np.clip(np.searchsorted(self.log_masses, lm, side="right") - 1, 0, nm - 2)
        w = (lm - self.log_masses[i]) / (self.log_masses[i + 1] - self.log_masses[i])
        t_ms = 10 ** ((1 - w) * self.log_t_ms[i] + w * self.log_t_ms[i + 1])
        t_rem = 10 ** ((1 - w) * self.log_t_rem[i] + w * self.log_t_rem[i + 1])
        na, nb, nc = self.grid_a.size, self.grid_b.size, self.grid_c.size
        seg = np.where(t < t_ms, 0, np.where(t < t_rem, 1, 2))
        pos = np.empty_like(t)
        a = seg == 0
        pos[a] = t[a] / t_ms[a] * (na - 1)
        b = seg == 1
        s = (t[b] - t_ms[b]) / (t_rem[b] - t_ms[b])
        pos[b] = na + np.interp(s, self.grid_b, np.arange(nb))
        c = seg == 2
        lc = np.log10(np.maximum(t[c] - t_rem[c], 1e-30))
        pos[c] = na + nb + np.interp(lc, self.grid_c, np.arange(nc))
        start = np.choose(seg, [0, na, na + nb])
        stop = np.choose(seg, [na - 1, na + nb - 1, na + nb + nc - 1])
        k0 = np.clip(np.floor(pos).astype(np.int64), start, stop - 1)
        f = np.clip(pos - k0, 0.0, 1.0)
        kn = np.where(f < 0.5, k0, k0 + 1)
        k_lo = self.kstar[i, kn]
        k_hi = self.kstar[i + 1, kn]
        # Different kinds of remnant (or star vs remnant) at the two masses: take the nearer grid mass.
        mixed = _remnant_class(k_lo) != _remnant_class(k_hi)
        w_eff = np.where(mixed, np.where(w < 0.5, 0.0, 1.0), w)
        out = {}
        for name in _FIELDS:
            F = self.fields[name]
            v_lo = (1 - f) * F[i, k0] + f * F[i, k0 + 1]
            v_hi = (1 - f) * F[i + 1, k0] + f * F[i + 1, k0 + 1]
            out[name] = (1 - w_eff) * v_lo + w_eff * v_hi
        kstar = np.where(w_eff < 0.5, k_lo, k_hi).astype(np.int8)
        mass = np.where(kstar == 15, 0.0, np.minimum(out["mass"], m))
        lum = np.where(kstar == 15, 0.0, 10 ** out["log_l"])
        teff = 10 ** out["log_teff"]
        radius = np.where(kstar == 15, 0.0, 10 ** out["log_r"])
        lum_v = lum_v_from_bolometric(lum, teff)
        return StellarProperties(
            mass=mass.reshape(shape), lum_bol=lum.reshape(shape), teff=teff.reshape(shape),
            radius=radius.reshape(shape), kstar=kstar.reshape(shape), lum_v=lum_v.reshape(shape),
        )


@dataclass(frozen=True)
class StellarTable:
    """The full lookup table (all metallicities), as loaded from ``gcml/data``."""

    masses: np.ndarray
    metallicities: np.ndarray
    grid_a: np.ndarray
    grid_b: np.ndarray
    grid_c: np.ndarray
    t_ms: np.ndarray  # (Z, M) Myr
    t_rem: np.ndarray  # (Z, M) Myr
    fields: dict[str, np.ndarray]  # name -> (Z, M, K)
    kstar: np.ndarray  # (Z, M, K)
    info: dict

    @property
    def metallicity_range(self) -> tuple[float, float]:
        return float(self.metallicities[0]), float(self.metallicities[-1])

    def at_metallicity(self, metallicity: float) -> StellarTracks:
        """Tracks at metallicity Z, interpolated linearly in log Z between the two nearest tables.

        Where the two tables give a different kind of remnant (or star vs remnant) at a grid point, all
        values at that point come from the nearer metallicity.
        """
        return _tracks_at(self, float(metallicity))

    def lookup(self, mass_initial: np.ndarray, age_gyr: float | np.ndarray,
               metallicity: float) -> StellarProperties:
        """Stellar properties for initial masses [Msun] at an age [Gyr] and metallicity Z."""
        return self.at_metallicity(metallicity).lookup(mass_initial, age_gyr)


def _tracks_at(table: StellarTable, z: float) -> StellarTracks:
    zmin, zmax = table.metallicity_range
    if not np.isfinite(z) or z < zmin * (1 - 1e-9) or z > zmax * (1 + 1e-9):
        raise InputError(f"metallicity: Z = {z:g} is outside the stellar table's range {zmin:g}-{zmax:g}")
    lz = np.log10(np.clip(z, zmin, zmax))
    lzs = np.log10(table.metallicities)
    j = int(np.clip(np.searchsorted(lzs, lz, side="right") - 1, 0, lzs.size - 2))
    v = float((lz - lzs[j]) / (lzs[j + 1] - lzs[j]))
    near = j if v < 0.5 else j + 1
    mixed = _remnant_class(table.kstar[j]) != _remnant_class(table.kstar[j + 1])
    fields = {}
    for name, F in table.fields.items():
        blend = (1 - v) * F[j] + v * F[j + 1]
        fields[name] = np.where(mixed, F[near], blend)
    kstar = table.kstar[near].copy()
    return StellarTracks(
        metallicity=z, log_masses=np.log10(table.masses),
        log_t_ms=(1 - v) * np.log10(table.t_ms[j]) + v * np.log10(table.t_ms[j + 1]),
        log_t_rem=(1 - v) * np.log10(table.t_rem[j]) + v * np.log10(table.t_rem[j + 1]),
        grid_a=table.grid_a, grid_b=table.grid_b, grid_c=table.grid_c, fields=fields, kstar=kstar,
    )


@functools.lru_cache(maxsize=4)
def load_stellar_table(path: str | Path | None = None) -> StellarTable:
    """Load the stellar-evolution table (default: the one shipped in ``gcml/data``); cached."""
    p = Path(path) if path is not None else TABLE_FILE
    if not p.is_file():
        raise InputError(f"{p}: stellar table not found (build it with scripts/build_stellar_table.py)")
    try:
        with np.load(p, allow_pickle=False) as d:
            arrays = {k: d[k] for k in d.files}
    except (OSError, ValueError) as exc:
        raise FormatError(f"{p}: cannot read the stellar table ({exc})") from None
    need = {"masses", "metallicities", "grid_a", "grid_b", "grid_c", "t_ms", "t_rem", "kstar", *_FIELDS}
    missing = sorted(need - set(arrays))
    if missing:
        raise FormatError(f"{p}: stellar table lacks array(s) {', '.join(missing)}")
    return StellarTable(
        masses=arrays["masses"], metallicities=arrays["metallicities"], grid_a=arrays["grid_a"],
        grid_b=arrays["grid_b"], grid_c=arrays["grid_c"], t_ms=arrays["t_ms"], t_rem=arrays["t_rem"],
        fields={k: arrays[k].astype(float) for k in _FIELDS}, kstar=arrays["kstar"].astype(np.int8),
        info=json.loads(str(arrays["info"])) if "info" in arrays else {},
    )


@functools.lru_cache(maxsize=16)
def tracks_at(metallicity: float) -> StellarTracks:
    """The shipped table at metallicity Z (cached)."""
    return load_stellar_table().at_metallicity(metallicity)


def evolve_stars(mass_initial: np.ndarray, age_gyr: float | np.ndarray, metallicity: float) -> StellarProperties:
    """Current mass, luminosities, Teff, radius and type of stars of given initial masses, age and Z.

    Parameters
    ----------
    mass_initial
        Zero-age main-sequence masses [Msun], within 0.07-150.
    age_gyr
        Age [Gyr], 0-20 (one value, or one per star).
    metallicity
        Metal mass fraction Z, within 0.0001-0.02.
    """
    return tracks_at(float(metallicity)).lookup(mass_initial, age_gyr)
