"""Approximate evolution of a star cluster in a tidal field (a fast stand-in for direct N-body runs).

The same stars (one IMF draw) are followed through every requested age, so a series of snapshots is a
consistent time series. At each age:

1. **Stellar evolution** of every star from its initial mass with the SSE lookup table
   (:mod:`gcml.physics.stellar`; Hurley et al. 2000).
2. **Remnant retention**: white dwarfs are kept; neutron stars and black holes receive natal kicks
   (Hobbs et al. 2005: sigma = 265 km/s, far above a globular cluster's escape speed of tens of km/s),
   so only fractions ``retain_ns`` (default 0.1) and ``retain_bh`` (default 0.5, fallback-reduced kicks;
   Fryer et al. 2012) stay. Each star draws its retention number once, so the choice is the same at
   every age. Massless remnants (type 15) are removed.
3. **Escape in the tidal field**: the bound number of stars decreases linearly in time (Baumgardt &
   Makino 2003, MNRAS 340, 227, their Fig. 6 and Eq. 7)::

       t_dis = beta [N0 / ln(gamma N0)]^x (R_G / kpc) (V_G / 220 km/s)^-1,   beta = 1.91 Myr, x = 0.75,
       gamma = 0.02

   for a circular orbit at ``R_G`` in an isothermal Galactic halo with circular speed ``V_G``. Low-mass
   stars escape preferentially (Baumgardt & Makino 2003, Fig. 11; Webb & Leigh 2015): escapers are drawn
   without replacement with weight ``(m / <m>)^-p`` (``p = escape_mass_exponent``, default 1), further
   weighted toward stars in the outskirts; the order is fixed once, so escaped stars stay escaped.
4. **Size**: the half-mass radius grows adiabatically with stellar-evolution mass loss,
   ``r_h ∝ M0 / M`` (Hills 1980), and by two-body relaxation, ``dr_h/dt = zeta r_h / t_rh`` with
   ``zeta = 0.1`` (Hénon 1965; Gieles et al. 2011, MNRAS 413, 2509), giving
   ``r_h = r_h0 (1 + 1.5 zeta n_rh)^(2/3)`` with ``n_rh = t / t_rh0``; it is capped at 0.15 of the
   Jacobi radius ``r_J = (G M R_G^2 / 2 V_G^2)^(1/3)`` (the tidally limited regime of Hénon's model).
   ``t_rh`` is Spitzer's (1987, Eq. 2-63) half-mass relaxation time
   ``0.138 N^(1/2) r_h^(3/2) / (<m>^(1/2) G^(1/2) ln(0.02 N))``.
5. **Structure and velocities** from a multi-mass lowered isothermal (King 1966) model in the spirit
   of LIMEPY (Gieles & Zocchi 2015, MNRAS 454, 576): component j (a bin in stellar mass) has the
   distribution function ``f_j ∝ exp(-E / s_j^2) - 1`` with velocity scale
   ``s_j = s (m_j / <m>)^(-delta)`` and shares the self-consistent potential, solved from Poisson's
   equation. ``delta`` grows with the number of relaxation times,
   ``delta = delta_max (1 - exp(-n_rh / 3))`` (0: no primordial segregation; Spitzer's equipartition
   takes a few t_rh), so heavy stars sink and mass segregation grows with time. ``delta_max = 0.25``:
   with the global mean mass as reference mass, larger values (0.5 is full equipartition in LIMEPY's
   convention with the central mean mass, Gieles & Zocchi 2015; Peuten et al. 2017) turn the lightest
   components into nearly unbound halos in this model. The central concentration grows from
   ``W0 = w0`` (default 5) toward 7 as ``n_rh`` increases (core contraction).
   Each star keeps fixed random quantiles of its radius and speed, so stars move smoothly from one age
   to the next.

This is not an N-body integration: no binaries, no core-collapse oscillations, no tidal tails (escapers
are removed), spherical isotropic models in the cluster frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import erf

from gcml.errors import InputError

G_PC_KMS = 4.30091e-3  # pc (km/s)^2 / Msun
G_PC_MYR = 4.49850e-3  # pc^3 / (Msun Myr^2)


def king_density(psi: np.ndarray) -> np.ndarray:
    """Dimensionless density of the King (1966) model at dimensionless potential psi >= 0.

    ``rho(psi) = exp(psi) erf(sqrt(psi)) - sqrt(4 psi / pi) (1 + 2 psi / 3)``.
    """
    x = np.maximum(np.asarray(psi, dtype=float), 0.0)
    return np.exp(x) * erf(np.sqrt(x)) - np.sqrt(4.0 * x / np.pi) * (1.0 + 2.0 * x / 3.0)


@dataclass
class MultiMassKing:
    """A solved multi-mass King model in dimensionless units (r in King radii, s = 1, G = 9/(4 pi)).

    Attributes
    ----------
    r : radii of the solution grid
    psi : dimensionless potential of the mean-mass component on ``r``
    mass_cum : (J, len(r)) cumulative mass of each component
    scale : (J,) velocity-scale factors s_j / s
    r_t : truncation (tidal) radius, where psi = 0
    """

    r: np.ndarray
    psi: np.ndarray
    mass_cum: np.ndarray
    scale: np.ndarray
    r_t: float
    total_mass: float
    a: np.ndarray | None = None
    g: float = 9.0 / (4.0 * np.pi)


def _integrate_king(w0: float, a: np.ndarray, sc2: np.ndarray, n_steps: int = 400):
    """RK4 integration of Poisson's equation in x = ln r from r = 1e-4 to the first zero of psi."""
    r0 = 1e-4
    xs = np.linspace(np.log(r0), np.log(1e5), n_steps + 1)
    h = xs[1] - xs[0]

    def rho(psi):
        return float(np.sum(a * king_density(psi / sc2)))

    def f(x, psi, dpsi):
        r = np.exp(x)
        return r * dpsi, r * (-9.0 * rho(psi) - 2.0 * dpsi / r)

    psi, dpsi = w0 - 1.5 * r0**2, -3.0 * r0
    rs, ps = [r0], [psi]
    for x in xs[:-1]:
        k1 = f(x, psi, dpsi)
        k2 = f(x + h / 2, psi + h / 2 * k1[0], dpsi + h / 2 * k1[1])
        k3 = f(x + h / 2, psi + h / 2 * k2[0], dpsi + h / 2 * k2[1])
        k4 = f(x + h, psi + h * k3[0], dpsi + h * k3[1])
        psi_new = psi + h / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
        dpsi = dpsi + h / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
        if psi_new <= 0:
            # Linear interpolation of the zero in ln r.
            frac = psi / (psi - psi_new)
            rs.append(float(np.exp(x + frac * h)))
            ps.append(0.0)
            return np.array(rs), np.array(ps)
        psi = psi_new
        rs.append(float(np.exp(x + h)))
        ps.append(psi)
    raise InputError(f"cluster model: King model with W0={w0} did not reach its tidal radius")


def solve_multimass_king(w0: float, mass_fractions: np.ndarray, scale: np.ndarray, *, n_iter: int = 60,
                         tol: float = 5e-3, a_init: np.ndarray | None = None) -> MultiMassKing:
    """Solve Poisson's equation for a multi-mass King model with components of given mass fractions.

    Component j has density ``a_j rho_K(psi / scale_j^2)``; the ``a_j`` are iterated until each
    component holds its share ``mass_fractions[j]`` of the total mass to within ``tol`` (relative), as in
    LIMEPY's multi-mass normalisation (Gieles & Zocchi 2015, Sect. 2.2). Units: ``psi'' + 2 psi' / r =
    -9 rho / rho_0`` with ``rho_0`` the central density, so r is in King radii (King 1966).
    """
    frac = np.asarray(mass_fractions, dtype=float)
    frac = frac / frac.sum()
    sc2 = np.asarray(scale, dtype=float) ** 2
    rho_c = king_density(w0 / sc2)
    # Initial guess: a component's mass scales roughly as a_j s_j^3 (its density spreads over a volume
    # ∝ s_j^3), so start from a_j ∝ frac_j / s_j^3.
    a = frac / sc2**1.5 if a_init is None else np.asarray(a_init, dtype=float).copy()
    a = a / np.sum(a * rho_c)
    for _ in range(n_iter):
        r, psi = _integrate_king(w0, a, sc2)
        r = np.concatenate([[0.0], r])
        psi = np.concatenate([[w0], psi])
        dens = a[:, None] * king_density(psi[None, :] / sc2[:, None])
        dm = 4 * np.pi * r**2 * dens
        mcum = np.concatenate([np.zeros((a.size, 1)),
                               np.cumsum(0.5 * (dm[:, 1:] + dm[:, :-1]) * np.diff(r)[None, :], axis=1)], axis=1)
        mj = mcum[:, -1] / mcum[:, -1].sum()
        if np.max(np.abs(mj / frac - 1)) < tol:
            break
        a = a * (frac / np.maximum(mj, 1e-300)) ** 1.5
        a = a / np.sum(a * rho_c)
    return MultiMassKing(r=r, psi=psi, mass_cum=mcum, scale=np.sqrt(sc2), r_t=float(r[-1]),
                         total_mass=float(mcum[:, -1].sum()), a=a)


def _speed_quantiles(psi_j: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Speeds (in units of the component's s_j) with CDF quantile u, for local potential psi_j (vectorised).

    Speed distribution of the King model at fixed psi: ``p(v) ∝ v^2 (exp(psi - v^2/2) - 1)``,
    ``0 <= v <= sqrt(2 psi)``; inverted on a tabulated grid of psi.
    """
    grid_psi = np.concatenate([[0.0], np.geomspace(1e-4, max(float(psi_j.max()), 1e-3) * 1.0001, 127)])
    x = np.linspace(0.0, 1.0, 257)  # v / v_esc
    vesc = np.sqrt(2.0 * grid_psi)[:, None]
    v = x[None, :] * vesc
    with np.errstate(over="ignore"):
        pdf = v**2 * np.expm1(np.maximum(grid_psi[:, None] - v**2 / 2.0, 0.0))
    cdf = np.concatenate([np.zeros((grid_psi.size, 1)),
                          np.cumsum(0.5 * (pdf[:, 1:] + pdf[:, :-1]), axis=1)], axis=1)
    tot = cdf[:, -1:]
    cdf = np.where(tot > 0, cdf / np.where(tot > 0, tot, 1.0), x[None, :])
    row = np.clip(np.searchsorted(grid_psi, psi_j), 0, grid_psi.size - 1)
    c = cdf[row]
    k = np.clip((c < u[:, None]).sum(axis=1) - 1, 0, x.size - 2)
    c0 = c[np.arange(u.size), k]
    c1 = c[np.arange(u.size), k + 1]
    frac = np.where(c1 > c0, (u - c0) / np.where(c1 > c0, c1 - c0, 1.0), 0.0)
    xs = x[k] + frac * (x[1] - x[0])
    return xs * np.sqrt(2.0 * np.maximum(psi_j, 0.0))


def relaxation_time_myr(n: float, r_h_pc: float, mean_mass: float) -> float:
    """Spitzer (1987, Eq. 2-63) half-mass relaxation time [Myr], Coulomb logarithm ln(0.02 N)."""
    lnl = np.log(max(0.02 * n, 2.0))
    return float(0.138 * np.sqrt(n) * r_h_pc**1.5 / (np.sqrt(mean_mass * G_PC_MYR) * lnl))


def dissolution_time_myr(n0: float, r_gal_kpc: float, v_circ_kms: float) -> float:
    """Baumgardt & Makino (2003, Eq. 7) dissolution time [Myr] for a circular orbit (eccentricity 0)."""
    return float(1.91 * (n0 / np.log(0.02 * n0)) ** 0.75 * r_gal_kpc * (v_circ_kms / 220.0) ** -1)


def jacobi_radius_pc(mass: float, r_gal_kpc: float, v_circ_kms: float) -> float:
    """Jacobi radius [pc] in a flat rotation curve: ``(G M R^2 / (2 V^2))^(1/3)`` (King 1962)."""
    r = r_gal_kpc * 1000.0
    return float((G_PC_KMS * mass * r**2 / (2.0 * v_circ_kms**2)) ** (1.0 / 3.0))


@dataclass(frozen=True)
class ClusterParams:
    """Physical set-up of one simulated cluster (see the module docstring for the physics)."""

    n_stars: int = 50_000
    m_min: float = 0.1
    m_max: float = 50.0
    metallicity: float = 0.001
    r_half_pc: float = 3.2
    r_gal_kpc: float = 15.0
    v_circ_kms: float = 220.0
    w0: float = 5.0
    w0_final: float = 7.0
    retain_ns: float = 0.1
    retain_bh: float = 0.5
    escape_mass_exponent: float = 1.0
    zeta: float = 0.1
    delta_max: float = 0.25
    n_equipartition: float = 3.0
    n_mass_bins: int = 12
    dissolution_time_gyr: float | None = None  # override Baumgardt & Makino (2003)

    def check(self) -> None:
        if self.n_stars < 100:
            # Baumgardt & Makino (2003) dissolution time uses ln(0.02 N), undefined below N = 50
            raise InputError(f"n_stars: need at least 100 stars (the Baumgardt & Makino 2003 dissolution time "
                             f"uses ln(0.02 N)), got {self.n_stars}")
        if not 0.07 <= self.m_min < self.m_max <= 150:
            raise InputError(f"m_min, m_max: expected 0.07 <= m_min < m_max <= 150 Msun, got {self.m_min}, {self.m_max}")
        for name in ("r_half_pc", "r_gal_kpc", "v_circ_kms"):
            if not getattr(self, name) > 0:
                raise InputError(f"{name}: must be positive, got {getattr(self, name)}")
        for name in ("retain_ns", "retain_bh"):
            if not 0 <= getattr(self, name) <= 1:
                raise InputError(f"{name}: a retention fraction must lie in 0-1, got {getattr(self, name)}")
        if not 1.0 <= self.w0 <= 12.0:
            raise InputError(f"w0: King concentration must lie in 1-12, got {self.w0}")


@dataclass
class ClusterState:
    """One age of a simulated cluster (all arrays over the bound stars, cluster frame)."""

    age_gyr: float
    index: np.ndarray  # indices into the initial star list
    pos: np.ndarray
    vel: np.ndarray
    mass: np.ndarray
    mass_initial: np.ndarray
    lum_v: np.ndarray
    lum_bol: np.ndarray
    teff: np.ndarray
    radius: np.ndarray
    kstar: np.ndarray
    info: dict = field(default_factory=dict)


class ClusterModel:
    """A cluster whose stars are drawn once and evolved to any age with :meth:`at_age`.

    Parameters
    ----------
    params
        Physical set-up.
    seed
        Seed of the one IMF draw and of every star's fixed random numbers.
    """

    def __init__(self, params: ClusterParams, seed: int | np.random.Generator | None = 0):
        from gcml.physics.imf import sample_kroupa
        from gcml.physics.stellar import tracks_at
        from gcml.random import make_rng

        params.check()
        self.params = params
        rng = make_rng(seed)
        n = params.n_stars
        self.m0 = sample_kroupa(n, m_min=params.m_min, m_max=params.m_max, seed=rng)
        self.u_ret = rng.random(n)
        self.u_r = rng.random(n)
        self.u_v = rng.random(n)
        d = rng.normal(size=(n, 3))
        self.dir_r = d / np.linalg.norm(d, axis=1)[:, None]
        d = rng.normal(size=(n, 3))
        self.dir_v = d / np.linalg.norm(d, axis=1)[:, None]
        self.tracks = tracks_at(params.metallicity)
        # Dynamical mass of each star (fixed): its mass at 12 Gyr, used for escape weights and mass bins.
        late = self.tracks.lookup(self.m0, 12.0)
        self.m_dyn = np.where(late.kstar == 15, self.m0, late.mass)
        # Escape order (Efraimidis & Spirakis 2006 weighted sampling without replacement).
        w = (self.m_dyn / self.m_dyn.mean()) ** (-params.escape_mass_exponent) * (0.25 + self.u_r)
        key = rng.exponential(size=n) / w
        self.escape_rank = np.empty(n, dtype=np.int64)
        self.escape_rank[np.argsort(key, kind="stable")] = np.arange(n)
        edges = np.quantile(np.log10(self.m_dyn), np.linspace(0, 1, params.n_mass_bins + 1))
        edges[-1] += 1e-9
        self.bin_of = np.clip(np.searchsorted(edges, np.log10(self.m_dyn), side="right") - 1, 0,
                              params.n_mass_bins - 1)
        self.m_init_total = float(self.m0.sum())
        self.mean_mass0 = float(self.m0.mean())
        self.t_rh0 = relaxation_time_myr(n, params.r_half_pc, self.mean_mass0)
        self.t_dis = (params.dissolution_time_gyr * 1000.0 if params.dissolution_time_gyr is not None
                      else dissolution_time_myr(n, params.r_gal_kpc, params.v_circ_kms))
        self._anchors: dict[float, np.ndarray] = {}

    def _inputs(self, age_gyr: float) -> dict:
        """Bound stars, size, segregation and King-model inputs at one age (no random numbers)."""
        p = self.params
        t = float(age_gyr) * 1000.0
        props = self.tracks.lookup(self.m0, age_gyr)
        k = props.kstar
        keep = k != 15
        keep &= ~((k == 13) & (self.u_ret >= p.retain_ns))
        keep &= ~((k == 14) & (self.u_ret >= p.retain_bh))
        n0 = p.n_stars
        n_esc = int(round(n0 * min(1.0, t / self.t_dis)))
        keep &= self.escape_rank >= n_esc
        idx = np.flatnonzero(keep)
        if idx.size < 2:
            raise InputError(f"age {age_gyr} Gyr: the cluster has dissolved (fewer than 2 bound stars left)")
        mass = props.mass[idx]
        m_tot = float(mass.sum())
        # Size: adiabatic expansion from stellar mass loss, relaxation-driven expansion, tidal cap.
        m_se = float(props.mass[props.kstar != 15].sum())
        n_rh = t / self.t_rh0
        r_h = p.r_half_pc * (self.m_init_total / m_se) * (1.0 + 1.5 * p.zeta * n_rh) ** (2.0 / 3.0)
        r_j = jacobi_radius_pc(m_tot, p.r_gal_kpc, p.v_circ_kms)
        r_h = min(r_h, 0.15 * r_j)
        n_rh_now = t / relaxation_time_myr(idx.size, r_h, m_tot / idx.size) if t > 0 else 0.0
        n_relax = 0.5 * (n_rh + n_rh_now)
        delta = p.delta_max * (1.0 - np.exp(-n_relax / p.n_equipartition))
        w0 = p.w0 + (p.w0_final - p.w0) * (1.0 - np.exp(-n_relax / 10.0))
        nb = p.n_mass_bins
        bins = self.bin_of[idx]
        mb = np.bincount(bins, weights=mass, minlength=nb)
        nbn = np.bincount(bins, minlength=nb)
        present = nbn > 0
        m_mean_bin = np.where(present, mb / np.maximum(nbn, 1), 1.0)
        mbar = m_tot / idx.size
        scale = (np.maximum(m_mean_bin, 1e-3) / mbar) ** (-delta)
        return {"props": props, "idx": idx, "mass": mass, "m_tot": m_tot, "r_h": r_h, "r_j": r_j,
                "n_relax": n_relax, "delta": delta, "w0": w0, "bins": bins, "present": present,
                "fractions": np.where(present, mb, 1e-12 * m_tot), "scale": scale, "n_esc": n_esc}

    def _anchor(self, anchor_age: float) -> np.ndarray:
        """Converged King-model weights at an anchor age (every 0.5 Gyr), the start of nearby solves.

        Starting every age from the same anchor (not from the previous age) keeps each snapshot a
        function of its age only, whatever the order or the split of ages over workers.
        """
        if anchor_age not in self._anchors:
            x = self._inputs(anchor_age)
            self._anchors[anchor_age] = solve_multimass_king(x["w0"], x["fractions"], x["scale"],
                                                             n_iter=60, tol=2e-3).a
        return self._anchors[anchor_age]

    def at_age(self, age_gyr: float) -> ClusterState:
        """The cluster's bound stars at ``age_gyr``."""
        x = self._inputs(age_gyr)
        props, idx, mass, m_tot, r_h, r_j = x["props"], x["idx"], x["mass"], x["m_tot"], x["r_h"], x["r_j"]
        n_relax, delta, w0, bins, present, n_esc = (x["n_relax"], x["delta"], x["w0"], x["bins"],
                                                    x["present"], x["n_esc"])
        k = props.kstar
        # Multi-mass King model with the current mass spectrum.
        a0 = self._anchor(float(np.floor(age_gyr * 2.0) / 2.0))
        model = solve_multimass_king(w0, x["fractions"], x["scale"], n_iter=30, tol=5e-3, a_init=a0)
        # Positions: each star's fixed quantile of its component's mass profile.
        # Escape favours the outskirts (large u_r), so the bound stars' u_r are re-ranked within their
        # component: each star keeps its order, and the quantiles are uniform again.
        u_r = self.u_r[idx]
        order = np.lexsort((u_r, bins))
        counts = np.bincount(bins, minlength=len(present))
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rank = np.empty(idx.size)
        rank[order] = np.arange(idx.size) - starts[bins[order]]
        q = (rank + 0.5) / counts[bins]
        r_model = np.empty(idx.size)
        for j in np.flatnonzero(present):
            sel = bins == j
            cum = model.mass_cum[j] / model.mass_cum[j, -1]
            cu, first = np.unique(cum, return_index=True)
            r_model[sel] = np.interp(q[sel], cu, model.r[first])
        tot_cum = model.mass_cum.sum(axis=0) / model.total_mass
        rh_model = float(np.interp(0.5, tot_cum, model.r))
        psi_star = np.interp(r_model, model.r, model.psi)
        psi_j = psi_star / model.scale[bins] ** 2
        v_model = _speed_quantiles(psi_j, self.u_v[idx]) * model.scale[bins]
        # Physical units: length from r_h; velocity from G M / r (virial scaling of the model).
        length = r_h / rh_model
        vunit = np.sqrt((G_PC_KMS * m_tot / length) / (model.g * model.total_mass))
        pos = self.dir_r[idx] * (r_model * length)[:, None]
        vel = self.dir_v[idx] * (v_model * vunit)[:, None]
        info = {
            "age_gyr": float(age_gyr), "n_bound": int(idx.size), "mass_total": m_tot,
            "r_half_pc": float(r_h), "r_jacobi_pc": float(r_j), "r_tidal_model_pc": float(model.r_t * length),
            "t_rh0_myr": self.t_rh0, "n_relax": float(n_relax), "delta": float(delta), "w0": float(w0),
            "t_dis_myr": float(self.t_dis), "n_escaped": n_esc,
        }
        return ClusterState(
            age_gyr=float(age_gyr), index=idx, pos=pos, vel=vel, mass=mass, mass_initial=self.m0[idx],
            lum_v=props.lum_v[idx], lum_bol=props.lum_bol[idx], teff=props.teff[idx],
            radius=props.radius[idx], kstar=k[idx], info=info,
        )
