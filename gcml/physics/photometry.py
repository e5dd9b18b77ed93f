"""Bolometric corrections, V-band luminosities, magnitudes and filter transformations.

Conventions (``docs/conventions.md``): luminosities in solar units, the V-band luminosity ``L_V`` in units
of the Sun's V-band luminosity, so that ``M_V = M_V,sun - 2.5 log10(L_V)``.

Constants
---------
``M_BOL_SUN = 4.74``
    Solar absolute bolometric magnitude, IAU 2015 Resolution B2 (Mamajek et al. 2015, arXiv:1510.06262).
``M_V_SUN = 4.83``
    Solar absolute V magnitude (Binney & Merrifield 1998, Table 2.1; the value pi-DOC uses).

The solar bolometric correction implied by the two is ``BC_V,sun = M_bol,sun - M_V,sun = -0.09``.
"""

from __future__ import annotations

import numpy as np

from gcml.errors import InputError

M_BOL_SUN = 4.74
M_V_SUN = 4.83
BC_V_SUN = M_BOL_SUN - M_V_SUN

#: Reed (1998) polynomial coefficients of BC_V in x = log10(Teff) - 4, highest power first.
REED1998_COEFFS = (-8.499, 13.421, -8.131, -3.901, -0.438)


def bc_v_reed1998(teff: np.ndarray | float) -> np.ndarray:
    """V-band bolometric correction BC_V(Teff) of Reed (1998, JRASC 92, 36).

    ``BC_V = -8.499 x^4 + 13.421 x^3 - 8.131 x^2 - 3.901 x - 0.438`` with ``x = log10(Teff / K) - 4``,
    the fit used by Chardin & Bianchini (2021) for pi-DOC's mock images; ``M_V = M_bol - BC_V``.

    Parameters
    ----------
    teff
        Effective temperature [K]; must be positive.

    Returns
    -------
    ndarray of BC_V [mag]
    """
    t = np.asarray(teff, dtype=float)
    if np.any(~(t > 0)):
        raise InputError("teff: effective temperatures must be positive and finite for the Reed (1998) BC_V")
    x = np.log10(t) - 4.0
    return np.polyval(REED1998_COEFFS, x)


def lum_v_from_bolometric(lum_bol: np.ndarray | float, teff: np.ndarray | float) -> np.ndarray:
    """V-band luminosity [L_V,sun] from bolometric luminosity [Lsun] and Teff [K] (Reed 1998 BC_V).

    ``M_bol = M_bol,sun - 2.5 log10 L``, ``M_V = M_bol - BC_V(Teff)`` and
    ``L_V = 10^(-0.4 (M_V - M_V,sun)) = L 10^(0.4 (BC_V - BC_V,sun))``.
    Particles with ``lum_bol <= 0`` or ``teff <= 0`` (massless remnants, black holes, neutron stars) get 0.
    """
    lum = np.asarray(lum_bol, dtype=float)
    t = np.asarray(teff, dtype=float)
    lum, t = np.broadcast_arrays(lum, t)
    if np.any(~np.isfinite(lum)) or np.any(~np.isfinite(t)):
        raise InputError("lum_bol, teff: luminosities and temperatures must be finite")
    ok = (lum > 0) & (t > 0)
    out = np.zeros(lum.shape, dtype=float)
    out[ok] = lum[ok] * 10.0 ** (0.4 * (bc_v_reed1998(t[ok]) - BC_V_SUN))
    return out


def abs_mag_v(lum_v: np.ndarray | float) -> np.ndarray:
    """Absolute V magnitude from L_V [L_V,sun]: ``M_V = 4.83 - 2.5 log10 L_V``."""
    return M_V_SUN - 2.5 * np.log10(np.asarray(lum_v, dtype=float))


def lum_v_from_abs_mag(m_v: np.ndarray | float) -> np.ndarray:
    """L_V [L_V,sun] from the absolute V magnitude: ``L_V = 10^(-0.4 (M_V - 4.83))``."""
    return 10.0 ** (-0.4 * (np.asarray(m_v, dtype=float) - M_V_SUN))


def distance_modulus(distance_kpc: np.ndarray | float) -> np.ndarray:
    """``m - M = 5 log10(d / 10 pc)`` for a distance in kpc."""
    d = np.asarray(distance_kpc, dtype=float)
    if np.any(~(d > 0)):
        raise InputError("distance_kpc: distances must be positive")
    return 5.0 * np.log10(d * 100.0)


def _out_of_range(x: np.ndarray, lo: float, hi: float, mode: str, what: str) -> np.ndarray:
    if mode not in ("extrapolate", "clip", "raise"):
        raise InputError(f"out_of_range must be 'extrapolate', 'clip' or 'raise', got {mode!r}")
    bad = (x < lo) | (x > hi)
    if mode == "raise" and np.any(bad):
        raise InputError(
            f"{what}: {int(np.count_nonzero(bad))} colour(s) outside the transformation's range {lo} to {hi}"
        )
    if mode == "clip":
        return np.clip(x, lo, hi)
    return x


def v_from_ps1(g: np.ndarray | float, r: np.ndarray | float, *, out_of_range: str = "extrapolate") -> np.ndarray:
    """Johnson V from Pan-STARRS1 g and r magnitudes (Kostov & Bonev 2018, Bulg. Astron. J. 28, 3).

    ``V = r - 0.020 + 0.502 x - 0.008 x^2`` with ``x = (g - r)_PS1``, valid for ``-0.5 < x < 2.3``.

    Parameters
    ----------
    g, r
        PS1 magnitudes (AB).
    out_of_range
        What to do with colours outside the fitted range: ``"extrapolate"`` (use the polynomial),
        ``"clip"`` (evaluate at the nearest end of the range) or ``"raise"``.
    """
    g = np.asarray(g, dtype=float)
    r = np.asarray(r, dtype=float)
    x = _out_of_range(g - r, -0.5, 2.3, out_of_range, "g - r (PS1)")
    return r - 0.020 + 0.502 * x - 0.008 * x**2


def v_from_sdss(g: np.ndarray | float, r: np.ndarray | float, *, relation: str = "jester2005") -> np.ndarray:
    """Johnson V from SDSS g and r magnitudes.

    ``relation="jester2005"``: ``V = g - 0.59 (g - r) - 0.01`` (Jester et al. 2005, AJ 130, 873, Table 1,
    stars with R - I < 1.15); ``relation="lupton2005"``: ``V = g - 0.5784 (g - r) - 0.0038`` (Lupton 2005,
    SDSS DR4 transformation page).
    """
    g = np.asarray(g, dtype=float)
    r = np.asarray(r, dtype=float)
    if relation == "jester2005":
        return g - 0.59 * (g - r) - 0.01
    if relation == "lupton2005":
        return g - 0.5784 * (g - r) - 0.0038
    raise InputError(f"relation must be 'jester2005' or 'lupton2005', got {relation!r}")


#: the magnitude zero point of the flux unit Lsun/kpc^2 per pixel at 10 pc: F = 10^(-0.4 (m - FLUX_ZP)) / (4 pi)
FLUX_ZP = M_V_SUN + 10.0


def v_over_r_flux_factor(survey: str, gr: float) -> float:
    """``F_V / F_r`` for a colour ``g - r``: Kostov & Bonev (2018) for PS1, Jester et al. (2005) otherwise."""
    if survey == "ps1":
        v_minus_r = -0.020 + 0.502 * gr - 0.008 * gr**2
    else:
        v_minus_r = 0.41 * gr - 0.01  # V - r = (g - 0.59 (g - r) - 0.01) - r
    return 10.0 ** (-0.4 * v_minus_r)
