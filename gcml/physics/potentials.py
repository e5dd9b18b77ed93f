"""Mass models of galaxies: NFW halo, Hernquist bulge, exponential disk, and the scaling relations that
tie them to the halo mass.

All functions broadcast over numpy arrays, so one call evaluates many galaxies at many radii
(parameters of shape ``(B, 1)`` against radii of shape ``(B, K)``). Units: kpc, Msun, km/s.

References
----------
- Navarro, Frenk & White 1997, ApJ 490, 493 (NFW profile).
- Hernquist 1990, ApJ 356, 359 (Hernquist profile, its projected mass, eq. 37).
- Freeman 1970, ApJ 160, 811 (exponential disk).
- Dutton & Macciò 2014, MNRAS 441, 3359 (concentration-mass relation, NFW, M200c, z = 0, eq. 7-8,
  scatter 0.11 dex).
- Moster, Naab & White 2013, MNRAS 428, 3121 (stellar-to-halo mass relation, eq. 2 with the z = 0
  parameters of their Table 1, scatter 0.15 dex).
- Kravtsov 2013, ApJ 764, L31 (galaxy size r_1/2 = 0.015 r200, scatter 0.2 dex).
- Read, Agertz & Collins 2016, MNRAS 459, 2573 (coreNFW: M(<r) = M_NFW(<r) tanh(r / r_c)^n).
- Navarro et al. 2004, MNRAS 349, 1039; Einasto 1965 (Einasto profile, M(<r) by the incomplete gamma function).
- Shen et al. 2003, MNRAS 343, 978 (early-type size-mass relation R_e = 2.88e-6 kpc (M*/Msun)^0.56, eq. 14).
- Burkert & Forbes 2020, AJ 159, 56 (M_vir = 5e9 Msun x N_GC).
"""

from __future__ import annotations

import numpy as np

from gcml.physics.units import LITTLE_H, RHO_CRIT, G

# ----------------------------------------------------------------------------------------------- NFW


def r200_from_m200(m200: np.ndarray | float) -> np.ndarray:
    """Radius within which the mean density is 200 times critical: M200 = (4/3) pi 200 rho_crit r200^3."""
    return np.cbrt(3.0 * np.asarray(m200, float) / (4.0 * np.pi * 200.0 * RHO_CRIT))


def _mu(x: np.ndarray) -> np.ndarray:
    """NFW mass function mu(x) = ln(1 + x) - x / (1 + x).

    Evaluated directly: log1p and x/(1+x) are accurate to ~1e-16 relative, so the difference keeps a
    relative accuracy ~1e-16/x^2 (better than 1e-6 for x > 1e-5), ample for masses.
    """
    x = np.asarray(x, float)
    return np.log1p(x) - x / (1.0 + x)


def nfw_enclosed_mass(r: np.ndarray, m200: np.ndarray, c: np.ndarray) -> np.ndarray:
    """NFW mass inside radius ``r`` [kpc]: M(<r) = M200 mu(r/r_s) / mu(c), r_s = r200 / c (NFW 1997).

    The profile is not truncated at r200.
    """
    m200 = np.asarray(m200, float)
    c = np.asarray(c, float)
    rs = np.maximum(r200_from_m200(m200) / c, 1e-12)
    return m200 * _mu(np.asarray(r, float) / rs) / _mu(c)


def nfw_density(r: np.ndarray, m200: np.ndarray, c: np.ndarray) -> np.ndarray:
    """NFW density rho(r) = rho_s / [(r/r_s)(1 + r/r_s)^2], rho_s = M200 / (4 pi r_s^3 mu(c)) [Msun/kpc^3]."""
    m200 = np.asarray(m200, float)
    c = np.asarray(c, float)
    rs = np.maximum(r200_from_m200(m200) / c, 1e-12)
    rho_s = m200 / (4.0 * np.pi * rs**3 * _mu(c))
    x = np.maximum(np.asarray(r, float) / rs, 1e-12)
    return rho_s / (x * (1.0 + x) ** 2)


# ----------------------------------------------------------------------------------------- Hernquist


def hernquist_enclosed_mass(r: np.ndarray, m: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Hernquist (1990, eq. 3) mass inside radius ``r``: M r^2 / (r + a)^2."""
    r = np.asarray(r, float)
    return np.asarray(m, float) * r * r / (r + np.asarray(a, float)) ** 2


def hernquist_density(r: np.ndarray, m: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Hernquist (1990, eq. 2) density M a / (2 pi r (r + a)^3)."""
    r = np.maximum(np.asarray(r, float), 1e-12)
    a = np.asarray(a, float)
    return np.asarray(m, float) * a / (2.0 * np.pi * r * (r + a) ** 3)


def hernquist_sigma_r(r: np.ndarray, m: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Isotropic 1D velocity dispersion of a Hernquist sphere in its own potential (Hernquist 1990, eq. 10).

    sigma^2 = G M / (12 a) { 12 r (r + a)^3 / a^4 ln((r + a) / r) - r / (r + a) [25 + 52 r/a + 42 (r/a)^2
    + 12 (r/a)^3] }.
    """
    r = np.asarray(r, float)
    a = np.asarray(a, float)
    x = r / a
    s2 = G * np.asarray(m, float) / (12.0 * a) * (
        12.0 * x * (1.0 + x) ** 3 * np.log1p(1.0 / x) - x / (1.0 + x) * (25.0 + 52.0 * x + 42.0 * x**2 + 12.0 * x**3)
    )
    return np.sqrt(np.maximum(s2, 0.0))


def hernquist_projected_mass(R: np.ndarray, m: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Hernquist mass inside projected radius ``R`` (cylinder): M s^2 (X(s) - 1) / (1 - s^2), s = R/a.

    X(s) = arcsech(s) / sqrt(1 - s^2) for s < 1 and arcsec(s) / sqrt(s^2 - 1) for s > 1 (Hernquist 1990,
    eqs. 33 and 37); at s = 1 the limit is M / 3.
    """
    s = np.maximum(np.asarray(R, float) / np.asarray(a, float), 1e-12)
    lo = s < 1.0 - 1e-6
    hi = s > 1.0 + 1e-6
    sl = np.where(lo, s, 0.5)
    sh = np.where(hi, s, 2.0)
    x_lo = np.arccosh(1.0 / sl) / np.sqrt(1.0 - sl * sl)
    x_hi = np.arccos(1.0 / sh) / np.sqrt(sh * sh - 1.0)
    X = np.where(lo, x_lo, np.where(hi, x_hi, 1.0))
    frac = np.where(lo | hi, s * s * (X - 1.0) / np.where(lo | hi, 1.0 - s * s, 1.0), 1.0 / 3.0)
    return np.asarray(m, float) * frac


# ------------------------------------------------------------------------------------ exponential disk


def disk_cylinder_mass(R: np.ndarray, m: np.ndarray, rd: np.ndarray) -> np.ndarray:
    """Mass of an exponential disk (Freeman 1970) inside cylindrical radius R: M [1 - (1 + R/Rd) e^{-R/Rd}]."""
    x = np.asarray(R, float) / np.asarray(rd, float)
    return np.asarray(m, float) * (1.0 - (1.0 + x) * np.exp(-x))


def disk_enclosed_mass(r: np.ndarray, m: np.ndarray, rd: np.ndarray) -> np.ndarray:
    """Spherically averaged enclosed mass of a thin exponential disk.

    Approximation: the disk mass inside the sphere of radius r is taken as its mass inside the cylinder
    R < r, which is exact for a razor-thin disk (all its mass lies in the plane z = 0). The Jeans
    equation and the merger forces use it as if the disk were spherical: the GC systems are spheroidal
    and extend to ~15 disk scale lengths, where the disk's non-spherical potential terms are small.
    """
    return disk_cylinder_mass(r, m, rd)


def disk_density_spherical(r: np.ndarray, m: np.ndarray, rd: np.ndarray) -> np.ndarray:
    """Density of the spherically averaged exponential disk: (dM/dr) / (4 pi r^2) = M e^{-r/Rd} / (4 pi r Rd^2)."""
    r = np.maximum(np.asarray(r, float), 1e-12)
    rd = np.asarray(rd, float)
    return np.asarray(m, float) * np.exp(-r / rd) / (4.0 * np.pi * r * rd * rd)


# ----------------------------------------------------------------------------------- galaxy profile


def galaxy_enclosed_mass(r: np.ndarray, *, m200, c, m_disk, r_disk, m_bulge, a_bulge) -> np.ndarray:
    """Total (halo + disk + bulge) spherically averaged mass inside radius r [Msun]."""
    return (nfw_enclosed_mass(r, m200, c) + disk_enclosed_mass(r, m_disk, r_disk)
            + hernquist_enclosed_mass(r, m_bulge, a_bulge))


def galaxy_density(r: np.ndarray, *, m200, c, m_disk, r_disk, m_bulge, a_bulge) -> np.ndarray:
    """Total spherically averaged density [Msun/kpc^3] (used by dynamical friction)."""
    return (nfw_density(r, m200, c) + disk_density_spherical(r, m_disk, r_disk)
            + hernquist_density(r, m_bulge, a_bulge))


def projected_half_mass_radius(*, m_disk, r_disk, m_bulge, a_bulge, iterations: int = 60) -> np.ndarray:
    """Effective radius R_e: projected radius enclosing half the stellar (disk + bulge) mass.

    The disk is seen face-on (its cylinder mass) and the bulge through Hernquist's projected mass;
    solved by bisection, vectorised over galaxies.
    """
    m_disk = np.asarray(m_disk, float)
    m_bulge = np.asarray(m_bulge, float)
    half = 0.5 * (m_disk + m_bulge)
    lo = np.zeros(np.broadcast(m_disk, m_bulge, r_disk, a_bulge).shape)
    hi = lo + 50.0 * np.maximum(r_disk, a_bulge)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        m = disk_cylinder_mass(mid, m_disk, r_disk) + hernquist_projected_mass(mid, m_bulge, a_bulge)
        below = m < half
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    return 0.5 * (lo + hi)


# ------------------------------------------------------------------------------- scaling relations


def concentration_dutton_maccio(m200: np.ndarray, rng: np.random.Generator | None = None, *,
                                scatter_dex: float = 0.11, offset_dex: float = 0.0) -> np.ndarray:
    """NFW concentration c200 at z = 0 from Dutton & Macciò (2014, eqs. 7-8, M200c, Planck cosmology).

    log10 c = a + b log10(M200 / (1e12 h^-1 Msun)), a = 0.905, b = -0.101 at z = 0, with log-normal
    scatter of ``scatter_dex`` (0.11 dex in the paper). ``offset_dex`` shifts the relation (used by the
    'unknown' family to test generalisation). With ``rng`` None the median relation is returned.
    """
    m200 = np.asarray(m200, float)
    logc = 0.905 - 0.101 * np.log10(m200 / (1e12 / LITTLE_H)) + offset_dex
    if rng is not None:
        logc = logc + scatter_dex * rng.standard_normal(m200.shape)
    return 10.0**logc


def stellar_mass_moster2013(m200: np.ndarray, rng: np.random.Generator | None = None, *,
                            scatter_dex: float = 0.15) -> np.ndarray:
    """Stellar mass from the z = 0 stellar-to-halo mass relation of Moster, Naab & White (2013, eq. 2).

    m/M = 2 N [(M/M1)^-beta + (M/M1)^gamma]^-1 with log10 M1 = 11.590, N = 0.0351, beta = 1.376,
    gamma = 0.608 (their Table 1), and log-normal scatter ``scatter_dex`` (0.15 dex in the paper).
    """
    m200 = np.asarray(m200, float)
    x = m200 / 10**11.590
    ms = m200 * 2.0 * 0.0351 / (x**-1.376 + x**0.608)
    if rng is not None:
        ms = ms * 10.0 ** (scatter_dex * rng.standard_normal(m200.shape))
    return ms


def disk_scale_length_kravtsov(m200: np.ndarray, rng: np.random.Generator | None = None, *,
                               scatter_dex: float = 0.2) -> np.ndarray:
    """Exponential disk scale length R0 [kpc] from the Kravtsov (2013) size relation r_1/2 = 0.015 r200.

    The 3D half-mass radius of a thin exponential disk (spherical radius) is 1.678 R0, so
    R0 = 0.015 r200 / 1.678, with log-normal scatter ``scatter_dex`` (0.2 dex in the paper).
    """
    rd = 0.015 * r200_from_m200(m200) / 1.678
    if rng is not None:
        rd = rd * 10.0 ** (scatter_dex * rng.standard_normal(np.shape(rd)))
    return rd


def bulge_size_kpc(m_bulge: np.ndarray) -> np.ndarray:
    """Bulge size R_b = C_b M_b^0.5 with R_b = 3.5 kpc at M_b = 1e10 Msun (Kaur et al. 2021, Table 1)."""
    return 3.5 * np.sqrt(np.maximum(np.asarray(m_bulge, float), 0.0) / 1e10)


def circular_velocity(r: np.ndarray, enclosed_mass: np.ndarray) -> np.ndarray:
    """v_c = sqrt(G M(<r) / r) [km/s]."""
    return np.sqrt(G * np.asarray(enclosed_mass, float) / np.maximum(np.asarray(r, float), 1e-12))


# ------------------------------------------------------------ haloes of early-type galaxies (cored, truncated)


def halo_enclosed_mass(r: np.ndarray, *, m200, c, core_n=0.0, r_core=1.0, r_trunc=np.inf,
                       einasto_alpha=0.0) -> np.ndarray:
    """Dark-halo mass inside radius ``r`` [Msun] of the early-type families of ``simulate-maps``.

    - ``einasto_alpha`` = 0: NFW (M200, c); otherwise an Einasto halo with the same M200 and
      r_-2 = r200 / c: M(<r) = M200 P(3/alpha, (2/alpha) (r/r_-2)^alpha) / P(3/alpha, (2/alpha) c^alpha),
      P the regularised lower incomplete gamma function (Einasto 1965; Navarro et al. 2004).
    - ``core_n`` > 0: the coreNFW of Read, Agertz & Collins (2016, eq. 18): M(<r) tanh(r / r_core)^n
      (n = 1 a full core, n = 0 the cusp).
    - ``r_trunc``: the halo of a group member tidally truncated at r_trunc: M(<r) = M(<min(r, r_trunc)).
    """
    from scipy.special import gammainc

    r = np.asarray(r, float)
    m200 = np.asarray(m200, float)
    c = np.asarray(c, float)
    rr = np.minimum(r, np.asarray(r_trunc, float))
    alpha = np.asarray(einasto_alpha, float)
    m = nfw_enclosed_mass(rr, m200, c)
    if np.any(alpha > 0):
        al = np.where(alpha > 0, alpha, 0.17)
        r2 = r200_from_m200(m200) / c
        s = 3.0 / al
        me = m200 * gammainc(s, (2.0 / al) * (rr / r2) ** al) / gammainc(s, (2.0 / al) * c**al)
        m = np.where(alpha > 0, me, m)
    n = np.asarray(core_n, float)
    if np.any(n > 0):
        m = m * np.tanh(rr / np.maximum(np.asarray(r_core, float), 1e-12)) ** n
    return m


def early_type_enclosed_mass(r: np.ndarray, *, m200, c, core_n, r_core, r_trunc, einasto_alpha, m_disk, r_disk,
                             m_bulge, a_bulge) -> np.ndarray:
    """Total (halo + Hernquist spheroid + exponential disk) spherically averaged mass inside r [Msun]."""
    return (halo_enclosed_mass(r, m200=m200, c=c, core_n=core_n, r_core=r_core, r_trunc=r_trunc,
                               einasto_alpha=einasto_alpha)
            + disk_enclosed_mass(r, m_disk, r_disk) + hernquist_enclosed_mass(r, m_bulge, a_bulge))


#: Ratio R_e / a of a Hernquist sphere (projected half-mass radius over scale radius; Hernquist 1990, eq. 38).
HERNQUIST_RE_OVER_A = 1.8153


def early_type_size_shen2003(mstar: np.ndarray, rng: np.random.Generator | None = None, *,
                             scatter_dex: float = 0.15) -> np.ndarray:
    """Effective radius R_e [kpc] of early-type galaxies: R_e = 2.88e-6 kpc (M*/Msun)^0.56 (Shen et al. 2003,
    eq. 14 and Table 1, SDSS early types), with log-normal scatter ``scatter_dex`` (their sigma_lnR ~ 0.3-0.4)."""
    re = 2.88e-6 * np.asarray(mstar, float) ** 0.56
    if rng is not None:
        re = re * 10.0 ** (scatter_dex * rng.standard_normal(np.shape(re)))
    return re


def n_gc_burkert_forbes2020(m200: np.ndarray) -> np.ndarray:
    """Total number of GCs of a halo: N_GC = M_vir / (5e9 Msun) (Burkert & Forbes 2020, AJ 159, 56)."""
    return np.asarray(m200, float) / 5e9
