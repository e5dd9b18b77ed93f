"""Restricted N-body galaxy mergers: rigid progenitor potentials, dynamical friction, GC test particles.

This is how gcml makes the merger remnants that stand in for the "elliptical" models of Kaur et al.
(2021, Section 2.1.2), who ran self-consistent N-body (GRAPE) merger simulations. The approximation:

1. Each progenitor is a rigid, spherically averaged mass model (NFW halo + exponential disk + Hernquist
   bulge, :mod:`gcml.physics.potentials`) that moves as one body; it is not deformed or stripped.
2. The relative orbit d = c2 - c1 obeys
       d'' = -G [M1(<|d|) + M2(<|d|)] d / |d|^3 + a_df,
   i.e. each progenitor feels the other's mass inside the separation (which softens the force smoothly
   to zero as they overlap), and Chandrasekhar (1943) dynamical friction on both bodies,
       a_df = -4 pi G^2 ln(Lambda) [M2(<|d|) rho1(|d|) chi(X1) + M1(<|d|) rho2(|d|) chi(X2)] v / |v|^3 = -gamma v,
   chi(X) = erf(X) - 2 X / sqrt(pi) exp(-X^2), X_k = |v| / (sqrt(2) sigma_k), with sigma_k = v_c,k / sqrt(2)
   (isothermal approximation; Binney & Tremaine 2008, eq. 8.7). Each body enters with its mass inside the
   separation (the outer halo is not a compact perturber), and ln(Lambda) = ln(1 + M1/M2) (M1 >= M2; the
   usual choice for major mergers, e.g. Boylan-Kolchin, Ma & Quataert 2008), unless given. The centre of mass stays at rest:
   c1 = -M2 / (M1 + M2) d, c2 = M1 / (M1 + M2) d. When |d| first falls below ``merge_radius`` the
   progenitors are taken to have coalesced (d = 0 from then on), and the remnant is the sum of both
   mass models at the centre of mass.
3. The orbit is integrated first, accurately (fine leapfrog steps, centres only). The GCs of both
   progenitors are then test particles in the two moving potentials, integrated with a kick-drift-kick
   leapfrog of ``n_steps`` steps up to ``t_merge + t_settle``, for all mergers of a batch at once
   (arrays (B, N, 3); each merger has its own time step), with the centres interpolated from the orbit.

What it misses: violent relaxation of the stars and dark matter, tidal stripping of the progenitors'
halos, and the change of the remnant's potential, so remnant GC systems are somewhat less relaxed than
in a live N-body merger. The transfer of orbital angular momentum into GC-system rotation, which is
what the maps encode (Kaur et al. 2021, Fig. 3), is kept: high f_v (tangential, high-angular-momentum
orbits) gives rotating remnants, low f_v (nearly radial) gives hardly rotating ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import erf

from gcml.physics.potentials import galaxy_enclosed_mass, r200_from_m200
from gcml.physics.units import G

PROFILE_KEYS = ("m200", "c", "m_disk", "r_disk", "m_bulge", "a_bulge")


@dataclass
class MergerResult:
    """GCs of a batch of merger remnants in the remnant's frame (centre of mass at rest at the origin).

    Attributes
    ----------
    pos, vel : (B, N, 3) [kpc], [km/s]
    mask : (B, N) bool, False for padding
    t_merge, t_end : (B,) coalescence time and end of the integration [kpc/(km/s)]
    merged : (B,) bool, whether the progenitors coalesced before ``t_max``
    """

    pos: np.ndarray
    vel: np.ndarray
    mask: np.ndarray
    t_merge: np.ndarray
    t_end: np.ndarray
    merged: np.ndarray


class _Profile:
    """A progenitor's mass model with its constants precomputed (the integrators call it every step).

    Same formulas as :func:`gcml.physics.potentials.galaxy_enclosed_mass` and ``galaxy_density``.
    """

    def __init__(self, p: dict[str, np.ndarray], ndim: int, dtype: type = np.float64) -> None:
        shape = (-1,) + (1,) * (ndim - 1)
        m200 = np.asarray(p["m200"], float)
        c = np.asarray(p["c"], float)
        rs = np.maximum(r200_from_m200(m200) / c, 1e-12)
        self.inv_rs = (1.0 / rs).reshape(shape)
        self.m_nfw = (m200 / (np.log1p(c) - c / (1.0 + c))).reshape(shape)
        self.rho_s = (m200 / (4.0 * np.pi * rs**3 * (np.log1p(c) - c / (1.0 + c)))).reshape(shape)
        self.m_disk = np.asarray(p["m_disk"], float).reshape(shape)
        self.inv_rd = (1.0 / np.asarray(p["r_disk"], float)).reshape(shape)
        self.m_bulge = np.asarray(p["m_bulge"], float).reshape(shape)
        self.a_bulge = np.asarray(p["a_bulge"], float).reshape(shape)
        for k, val in vars(self).items():
            setattr(self, k, val.astype(dtype))

    def enclosed(self, r: np.ndarray) -> np.ndarray:
        x = r * self.inv_rs
        y = r * self.inv_rd
        rb = r / (r + self.a_bulge)
        return (self.m_nfw * (np.log1p(x) - x / (1.0 + x)) + self.m_disk * (1.0 - (1.0 + y) * np.exp(-y))
                + self.m_bulge * rb * rb)

    def density(self, r: np.ndarray) -> np.ndarray:
        r = np.maximum(r, 1e-12)
        x = r * self.inv_rs
        a = self.a_bulge
        return (self.rho_s / (x * (1.0 + x) ** 2)
                + self.m_disk * np.exp(-r * self.inv_rd) * self.inv_rd**2 / (4.0 * np.pi * r)
                + self.m_bulge * a / (2.0 * np.pi * r * (r + a) ** 3))


def _norm(d: np.ndarray) -> np.ndarray:
    """Length of (B, 3) vectors by explicit sums (rounding independent of the batch)."""
    return np.sqrt(d[:, 0] ** 2 + d[:, 1] ** 2 + d[:, 2] ** 2)


def _chi(x: np.ndarray) -> np.ndarray:
    """Chandrasekhar's chi(X) = erf(X) - 2X/sqrt(pi) exp(-X^2), with its series 4X^3/(3 sqrt(pi)) (1 - 3X^2/5)
    below X = 0.01 (the difference of the two terms loses all precision there)."""
    small = x < 1e-2
    xs = np.where(small, 1.0, x)
    full = erf(xs) - 2.0 * xs / np.sqrt(np.pi) * np.exp(-xs * xs)
    series = 4.0 * x**3 / (3.0 * np.sqrt(np.pi)) * (1.0 - 0.6 * x * x)
    return np.maximum(np.where(small, series, full), 0.0)


def _orbit_accel(d: np.ndarray, v: np.ndarray, p1: _Profile, p2: _Profile, m1: np.ndarray, m2: np.ndarray,
                 ln_lambda: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Gravitational acceleration (B, 3) of the relative orbit and the friction rate gamma (B,) [1/time]."""
    r = np.maximum(_norm(d), 1e-9)
    menc1 = p1.enclosed(r)
    menc2 = p2.enclosed(r)
    a = -G * (menc1 + menc2)[:, None] * d / r[:, None] ** 3
    speed = np.maximum(_norm(v), 1e-9)
    vc1 = np.sqrt(G * np.maximum(menc1, 1e-30) / r)
    vc2 = np.sqrt(G * np.maximum(menc2, 1e-30) / r)
    chi1 = _chi(speed / vc1)
    chi2 = _chi(speed / vc2)
    # Each body acts as a perturber with its mass inside the separation (the rest is not compact with
    # respect to the orbit), which keeps Chandrasekhar's formula sensible for major mergers.
    gamma = 4.0 * np.pi * G * G * ln_lambda * (menc2 * p1.density(r) * chi1 + menc1 * p2.density(r) * chi2) / speed**3
    return a, gamma


def integrate_orbits(d0: np.ndarray, v0: np.ndarray, p1: dict, p2: dict, m1: np.ndarray, m2: np.ndarray, *,
                     t_max: np.ndarray, n_steps: int = 4000, ln_lambda: np.ndarray | float = 1.0,
                     merge_radius: np.ndarray | float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Leapfrog the relative orbits of B progenitor pairs; returns (d(t) (B, n_steps+1, 3), t_merge, merged).

    The sampled times are ``t_k = k t_max / n_steps`` per pair. After the first step with
    |d| < ``merge_radius`` the orbit is set to d = 0 (coalescence); t_merge is that time (t_max if never).
    """
    b = d0.shape[0]
    dt = (np.asarray(t_max, float) / n_steps)[:, None]
    d = np.array(d0, float)
    v = np.array(v0, float)
    merge_radius = np.broadcast_to(np.asarray(merge_radius, float), (b,))
    out = np.zeros((b, n_steps + 1, 3))
    out[:, 0] = d
    merged = np.zeros(b, bool)
    t_merge = np.array(t_max, float, copy=True)
    # Friction enters the kicks as the exact decay v -> v exp(-gamma dt / 2) (unconditionally stable
    # even where the drag rate gamma is large, near the centres of cuspy haloes).
    p1, p2 = _Profile(p1, 1), _Profile(p2, 1)
    acc, gam = _orbit_accel(d, v, p1, p2, m1, m2, ln_lambda)
    for k in range(1, n_steps + 1):
        v = (v + 0.5 * dt * acc) * np.exp(-0.5 * dt * gam[:, None])
        d = d + dt * v
        acc, gam = _orbit_accel(d, v, p1, p2, m1, m2, ln_lambda)
        v = (v * np.exp(-0.5 * dt * gam[:, None])) + 0.5 * dt * acc
        now = (~merged) & (_norm(d) < merge_radius)
        t_merge = np.where(now, k * dt[:, 0], t_merge)
        merged |= now
        d = np.where(merged[:, None], 0.0, d)
        v = np.where(merged[:, None], 0.0, v)
        out[:, k] = d
    return out, t_merge, merged


def _gc_accel(x: np.ndarray, c1: np.ndarray, c2: np.ndarray, p1: _Profile, p2: _Profile) -> np.ndarray:
    a = np.zeros_like(x)
    for c, p in ((c1, p1), (c2, p2)):
        dx = x - c[:, None, :]
        r = np.maximum(np.sqrt(dx[..., 0] ** 2 + dx[..., 1] ** 2 + dx[..., 2] ** 2), 1e-6)
        a -= (G * p.enclosed(r) / r**3)[..., None] * dx
    return a


def integrate_mergers(
    pos1: np.ndarray, vel1: np.ndarray, pos2: np.ndarray, vel2: np.ndarray, *, p1: dict, p2: dict,
    mask1: np.ndarray | None = None, mask2: np.ndarray | None = None,
    separation_kpc: np.ndarray, f_v: np.ndarray, t_max_units: float = 40.0, t_settle_units: float = 6.0,
    n_orbit_steps: int = 3000, n_steps: int = 600, ln_lambda: float | None = None, merge_fraction: float = 0.05,
) -> MergerResult:
    """Merge B progenitor pairs and integrate their GCs as test particles (see the module docstring).

    Parameters
    ----------
    pos1, vel1, pos2, vel2 : (B, N1, 3), (B, N2, 3)
        GC phase-space coordinates relative to each progenitor's centre, already oriented (spins).
    mask1, mask2 : (B, N1), (B, N2) bool, optional
        False marks padding; the real GCs of both progenitors are packed into N = max(n1 + n2) columns
        (progenitor 1's first) before the integration, and ``MergerResult.mask`` marks the rest.
    p1, p2 : dict of (B,) arrays with keys m200, c, m_disk, r_disk, m_bulge, a_bulge.
    separation_kpc : (B,) initial separation.
    f_v : (B,) initial relative speed in units of the circular speed sqrt(G (M1 + M2)(<d0) / d0); the
        velocity is perpendicular to the separation, so f_v sets the orbital angular momentum.
    t_max_units, t_settle_units : longest time allowed for coalescence and the time integrated after it,
        both in units of t_unit = d0 / v_c(d0).
    n_orbit_steps, n_steps : leapfrog steps of the orbit and of the GCs.
    ln_lambda : Coulomb logarithm; None for ln(1 + M_big / M_small) per pair.
    merge_fraction : coalescence when |d| < merge_fraction d0.
    """
    b = pos1.shape[0]
    p1 = {k: np.asarray(p1[k], float) for k in PROFILE_KEYS}
    p2 = {k: np.asarray(p2[k], float) for k in PROFILE_KEYS}
    m1 = p1["m200"] + p1["m_disk"] + p1["m_bulge"]
    m2 = p2["m200"] + p2["m_disk"] + p2["m_bulge"]
    d0 = np.asarray(separation_kpc, float)
    vc = np.sqrt(G * (galaxy_enclosed_mass(d0, **p1) + galaxy_enclosed_mass(d0, **p2)) / d0)
    t_unit = d0 / vc
    dvec = np.zeros((b, 3))
    dvec[:, 0] = d0
    vvec = np.zeros((b, 3))
    vvec[:, 1] = np.asarray(f_v, float) * vc
    t_max = (t_max_units + t_settle_units) * t_unit
    if ln_lambda is None:
        ln_lambda = np.log1p(np.maximum(m1, m2) / np.minimum(m1, m2))
    orbit, t_merge, merged = integrate_orbits(dvec, vvec, p1, p2, m1, m2, t_max=t_max, n_steps=n_orbit_steps,
                                              ln_lambda=ln_lambda, merge_radius=merge_fraction * d0)
    t_merge = np.minimum(t_merge, t_max_units * t_unit)
    t_end = t_merge + t_settle_units * t_unit
    # Relative velocity of the orbit, for the initial GC velocities.
    mu1 = (m2 / (m1 + m2))[:, None]
    mu2 = (m1 / (m1 + m2))[:, None]
    x = np.concatenate([pos1 - (mu1 * dvec)[:, None], pos2 + (mu2 * dvec)[:, None]], 1)
    v = np.concatenate([vel1 - (mu1 * vvec)[:, None], vel2 + (mu2 * vvec)[:, None]], 1)
    m1_ = np.ones(pos1.shape[:2], bool) if mask1 is None else np.asarray(mask1, bool)
    m2_ = np.ones(pos2.shape[:2], bool) if mask2 is None else np.asarray(mask2, bool)
    mask = np.concatenate([m1_, m2_], 1)
    n_keep = max(1, int(mask.sum(1).max()))
    order = np.argsort(~mask, axis=1, kind="stable")[:, :n_keep]
    x = np.take_along_axis(x, order[..., None], 1)
    v = np.take_along_axis(v, order[..., None], 1)
    mask = np.take_along_axis(mask, order, 1)
    # The test particles are integrated in float32 (2x faster; rounding ~1e-7 of a GC's orbit per step,
    # far below the approximations above); the orbit of the centres stays in float64.
    f32 = np.float32
    x = x.astype(f32)
    v = v.astype(f32)
    pp1 = _Profile(p1, 2, f32)
    pp2 = _Profile(p2, 2, f32)
    dt = t_end / n_steps
    fine_dt = t_max / n_orbit_steps
    rows = np.arange(b)

    def centres(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s = np.clip(t / fine_dt, 0.0, n_orbit_steps)
        i0 = np.minimum(np.floor(s).astype(int), n_orbit_steps - 1)
        w = (s - i0)[:, None]
        d = orbit[rows, i0] * (1 - w) + orbit[rows, i0 + 1] * w
        return (-mu1 * d).astype(f32), (mu2 * d).astype(f32)

    c1, c2 = centres(np.zeros(b))
    a = _gc_accel(x, c1, c2, pp1, pp2)
    dt3 = dt[:, None, None].astype(f32)
    for k in range(1, n_steps + 1):
        v += 0.5 * dt3 * a
        x += dt3 * v
        c1, c2 = centres(k * dt)
        a = _gc_accel(x, c1, c2, pp1, pp2)
        v += 0.5 * dt3 * a
    return MergerResult(pos=x, vel=v, mask=mask, t_merge=t_merge, t_end=t_end, merged=merged)
