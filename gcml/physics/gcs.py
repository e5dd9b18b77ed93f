"""Globular-cluster systems in equilibrium in a galaxy's potential (Kaur et al. 2021, Section 2.1).

The GC number density follows rho ∝ (a^2 + r^2)^-1.75 with a = 0.3 x disk size, and no GC lies beyond
r_t = 3 x disk size (disk size = 5 disk scale lengths, Kaur et al. 2021 Table 1). Velocities are drawn
from a Gaussian with the radial dispersion sigma_r(r) of the spherical Jeans equation in the total
(spherically averaged) mass profile and tangential dispersion sigma_t = sqrt(1 - beta) sigma_r
(constant anisotropy beta). The local Gaussian velocity distribution is the usual Jeans-model
approximation (the true distribution function is not Gaussian; its second moments are what matter here).

Rotation about the spin axis (+z of the galaxy frame) is added with f_rot = T_rot / T_kin at fixed total
kinetic energy T_kin: the random velocities are scaled by s and a streaming velocity
v_phi = k w(r) with w = v_c(r) R / r (cylindrical rotation that follows the circular speed) is added;
k and s are solved per galaxy from the sampled GCs so that (1/2) sum k^2 w^2 = f_rot T_kin and the total
kinetic energy equals that of the non-rotating sample exactly.

Everything is vectorised over a batch of galaxies: arrays (B, N) padded, with a validity mask.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gcml.errors import InputError
from gcml.physics.jeans import anisotropy_profile, batched_interp, jeans_sigma_r
from gcml.physics.units import G

#: Power-law index of the GC density profile rho ∝ (a^2 + r^2)^(-GC_SLOPE/2), Kaur et al. (2021).
GC_SLOPE = 3.5
#: Core radius and truncation radius of the GC system in units of the disk size (5 R0).
GC_CORE_FRACTION = 0.3
GC_TRUNCATION_FRACTION = 3.0


@dataclass
class GCSystem:
    """A batch of sampled GC systems in their galaxies' frames (spin axis +z).

    Attributes
    ----------
    pos : (B, N, 3) positions [kpc]
    vel : (B, N, 3) velocities [km/s]
    mask : (B, N) bool, True for real (not padding) GCs
    sigma_r : (B, N) Jeans radial dispersion at each GC before rotation was added [km/s]
    v_rot : (B, N) streaming speed about the spin axis [km/s]
    scale : (B,) factor applied to the random velocities to keep T_kin fixed
    """

    pos: np.ndarray
    vel: np.ndarray
    mask: np.ndarray
    sigma_r: np.ndarray
    v_rot: np.ndarray
    scale: np.ndarray


def gc_density(r: np.ndarray, a: np.ndarray, r_t: np.ndarray, slope: np.ndarray | float = GC_SLOPE) -> np.ndarray:
    """Unnormalised GC number density (a^2 + r^2)^(-slope/2), zero beyond ``r_t`` (slope 3.5: Kaur et al.)."""
    r = np.asarray(r, float)
    return np.where(r <= r_t, (np.asarray(a, float) ** 2 + r * r) ** (-np.asarray(slope, float) / 2.0), 0.0)


def draw_gc_randoms(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """The random numbers one GC system of ``n`` GCs needs, in a fixed order (for reproducibility)."""
    return {
        "u_r": rng.random(n),
        "u_mu": rng.random(n),
        "u_phi": rng.random(n),
        "z": rng.standard_normal((n, 3)),
    }


def stack_randoms(items: list[dict[str, np.ndarray]], n_max: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Pad per-galaxy random draws to ``n_max`` and stack them; returns (draws, mask)."""
    b = len(items)
    out = {
        "u_r": np.full((b, n_max), 0.5), "u_mu": np.full((b, n_max), 0.5),
        "u_phi": np.zeros((b, n_max)), "z": np.zeros((b, n_max, 3)),
    }
    mask = np.zeros((b, n_max), bool)
    for i, d in enumerate(items):
        n = len(d["u_r"])
        for k in out:
            out[k][i, :n] = d[k]
        mask[i, :n] = True
    return out, mask


def sample_gc_radii(u: np.ndarray, a: np.ndarray, r_t: np.ndarray, *, slope: np.ndarray | float = GC_SLOPE,
                    n_grid: int = 512) -> np.ndarray:
    """Radii from rho ∝ (a^2 + r^2)^(-slope/2) truncated at r_t, by inverting the tabulated cumulative number.

    ``u`` (B, N) uniform numbers; ``a``, ``r_t`` (and ``slope``) (B, 1) [kpc]. The grid is uniform in
    sqrt(r / r_t) so the core is well resolved.
    """
    t = np.linspace(0.0, 1.0, n_grid)[None, :] ** 2
    r = t * r_t
    f = r * r * gc_density(r, a, r_t * (1 + 1e-12), slope)
    cdf = np.concatenate([np.zeros((r.shape[0], 1)), np.cumsum(0.5 * (f[:, 1:] + f[:, :-1]) * np.diff(r, axis=1), 1)], 1)
    cdf /= cdf[:, -1:]
    return batched_interp(u, cdf, r)


def sample_gc_systems(
    draws: dict[str, np.ndarray], mask: np.ndarray, *, a: np.ndarray, r_t: np.ndarray,
    enclosed_mass: Callable[[np.ndarray], np.ndarray], beta: np.ndarray, f_rot: np.ndarray,
    n_grid: int = 400, slope: np.ndarray | float = GC_SLOPE, beta_inf: np.ndarray | None = None,
    r_a: np.ndarray | None = None,
) -> GCSystem:
    """Sample positions and velocities of a batch of GC systems in equilibrium (Jeans) with rotation.

    Parameters
    ----------
    draws, mask
        From :func:`draw_gc_randoms` / :func:`stack_randoms` (arrays (B, N) and (B, N, 3)).
    a, r_t : (B,) core and truncation radii of the GC density [kpc].
    enclosed_mass
        Function of radii (B, K) [kpc] returning the total enclosed mass (B, K) [Msun] of each galaxy.
    beta : (B,) velocity anisotropy (< 1): constant, or the central value when ``beta_inf`` and ``r_a`` are given.
    f_rot : (B,) T_rot / T_kin in [0, 1).
    slope : (B,) or float, power-law index of the GC density (default 3.5, Kaur et al. 2021).
    beta_inf, r_a : (B,) optional outer anisotropy and transition radius [kpc] of
        beta(r) = beta + (beta_inf - beta) r^2 / (r^2 + r_a^2) (:func:`gcml.physics.jeans.anisotropy_profile`;
        Osipkov-Merritt: beta = 0, beta_inf = 1).
    """
    a = np.asarray(a, float)[:, None]
    r_t = np.asarray(r_t, float)[:, None]
    beta = np.asarray(beta, float)[:, None]
    f_rot = np.asarray(f_rot, float)[:, None]
    if np.any((f_rot < 0) | (f_rot >= 1)):
        raise InputError("f_rot: expected values in [0, 1)")
    if np.any(beta >= 1):
        raise InputError("beta: the velocity anisotropy must be below 1")
    slope = np.broadcast_to(np.asarray(slope, float), (a.shape[0],))[:, None]
    varying = beta_inf is not None and r_a is not None
    if varying:
        beta_inf = np.asarray(beta_inf, float)[:, None]
        r_a = np.asarray(r_a, float)[:, None]
        if np.any(beta_inf >= 1):
            raise InputError("beta_inf: the outer velocity anisotropy must be below 1")
    r = sample_gc_radii(draws["u_r"], a, r_t, slope=slope)
    mu = 2.0 * draws["u_mu"] - 1.0
    phi = 2.0 * np.pi * draws["u_phi"]
    st = np.sqrt(np.maximum(1.0 - mu * mu, 0.0))
    rhat = np.stack([st * np.cos(phi), st * np.sin(phi), mu], -1)
    pos = r[..., None] * rhat
    # Jeans dispersion on a log grid per galaxy, then interpolated (in ln r) at the GC radii.
    rg = r_t * np.logspace(-4, 0, n_grid)[None, :]
    sig_g = jeans_sigma_r(rg, gc_density(rg, a, r_t * (1 + 1e-9), slope), enclosed_mass(rg), beta,
                          beta_inf=beta_inf if varying else None, r_a=r_a if varying else None)
    lr = np.log(np.maximum(r, rg[:, :1]))
    sig = batched_interp(lr, np.log(rg), sig_g)
    beta_r = anisotropy_profile(r, beta, beta_inf, r_a) if varying else beta
    sig_t = np.sqrt(1.0 - beta_r) * sig
    # Local orthonormal frame: e_r, e_theta, e_phi.
    thhat = np.stack([mu * np.cos(phi), mu * np.sin(phi), -st], -1)
    phhat = np.stack([-np.sin(phi), np.cos(phi), np.zeros_like(phi)], -1)
    z = draws["z"]
    vr, vth, vph = sig * z[..., 0], sig_t * z[..., 1], sig_t * z[..., 2]
    m = mask.astype(float)
    # Rotation at fixed kinetic energy.
    vc = np.sqrt(G * enclosed_mass(r) / np.maximum(r, 1e-12))
    w = vc * st * m
    t_kin = 0.5 * np.sum(m * (vr**2 + vth**2 + vph**2), 1, keepdims=True)
    k = np.sqrt(2.0 * f_rot * t_kin / np.maximum(np.sum(w * w, 1, keepdims=True), 1e-300))
    v_rot = k * w
    c_rot = 0.5 * np.sum(v_rot**2, 1, keepdims=True)
    b_cross = np.sum(m * vph * v_rot, 1, keepdims=True)
    # s^2 T_kin + s B + C = T_kin
    disc = b_cross**2 + 4.0 * t_kin * (t_kin - c_rot)
    s = (-b_cross + np.sqrt(np.maximum(disc, 0.0))) / np.maximum(2.0 * t_kin, 1e-300)
    vel = (s * vr)[..., None] * rhat + (s * vth)[..., None] * thhat + (s * vph + v_rot)[..., None] * phhat
    pos = pos * mask[..., None]
    vel = vel * mask[..., None]
    return GCSystem(pos=pos, vel=vel, mask=mask, sigma_r=sig * m, v_rot=v_rot, scale=s[:, 0])


#: Quantiles (0, 5, ..., 100 %) of the velocity errors e_HRV [km/s] of all 3,573 GC velocities of the SLUGGS
#: catalogue (Forbes et al. 2017, AJ 153, 114, table 5 as served by VizieR J/AJ/153/114), pooled over its
#: 27 galaxies. Only the distribution is used (no galaxy's own errors): :func:`draw_sluggs_errors`.
SLUGGS_E_HRV_QUANTILES = (2.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 18.0, 19.0, 21.0,
                          24.0, 28.0, 34.0, 75.0, 194.0)


def draw_sluggs_errors(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Velocity errors [km/s] drawn from the pooled SLUGGS e_HRV distribution (inverse of its tabulated CDF,
    linear between the 5 % quantiles of :data:`SLUGGS_E_HRV_QUANTILES`)."""
    q = np.asarray(SLUGGS_E_HRV_QUANTILES)
    return np.interp(rng.random(shape), np.linspace(0.0, 1.0, len(q)), q)


def gc_half_number_scale(r_h: np.ndarray, r_t_over_rh: np.ndarray, slope: np.ndarray, *, n_grid: int = 256,
                         iterations: int = 40) -> np.ndarray:
    """Core radius a of rho ∝ (a^2 + r^2)^(-slope/2), truncated at r_t = r_t_over_rh r_h, whose 3D half-number
    radius is r_h (bisection in ln a, vectorised over systems; arrays (B,)). Returns a [kpc]."""
    r_h = np.asarray(r_h, float)[:, None]
    rt = r_h * np.asarray(r_t_over_rh, float)[:, None]
    sl = np.asarray(slope, float)[:, None]
    t = np.linspace(0.0, 1.0, n_grid)[None, :] ** 2
    r = t * rt
    lo = np.log(r_h * 1e-3)
    hi = np.log(r_h * 10.0)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        f = r * r * gc_density(r, np.exp(mid), rt * (1 + 1e-12), sl)
        cdf = np.concatenate([np.zeros((r.shape[0], 1)), np.cumsum(0.5 * (f[:, 1:] + f[:, :-1]) * np.diff(r, axis=1), 1)], 1)
        inside = np.array([np.interp(r_h[i, 0], r[i], cdf[i]) for i in range(r.shape[0])])[:, None] / cdf[:, -1:]
        # more than half inside r_h: the core is too small
        too_small = inside > 0.5
        lo = np.where(too_small, mid, lo)
        hi = np.where(too_small, hi, mid)
    return np.exp(0.5 * (lo + hi))[:, 0]
