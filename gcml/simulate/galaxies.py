"""``simulate-maps``: V / sigma / count maps of GC systems of simulated galaxies with true-mass labels.

The training data of Kaur et al. (2021, MNRAS 508, 868), regenerated: galaxies of three families

- ``disk``: NFW halo (Navarro, Frenk & White 1997) with the Dutton & Macciò (2014) c(M) relation and
  scatter, exponential disk and Hernquist (1990) bulge with stellar mass from Moster et al. (2013) and
  disk size from Kravtsov (2013); GC system in Jeans equilibrium with rotation (:mod:`gcml.physics.gcs`).
- ``merger``: remnants of two such galaxies merged by the restricted N-body scheme of
  :mod:`gcml.physics.merger` (the paper's "elliptical" models).
- ``unknown``: the paper's "completely unknown" set (Section 3.5), drawn from other priors (anisotropic
  GC systems, concentrations off the relation, fast rotators, minor mergers) and written with split = ood.
- ``early``: early-type galaxies as observed (beyond the paper): spheroid-dominated hosts, haloes of
  10^11-10^14.5 Msun (cuspy NFW or cored, some tidally truncated), GC systems with the observed sizes, slopes,
  numbers, anisotropy profiles and rotation, SLUGGS-like velocity errors (:data:`EARLY_PRIORS`).
- ``early-ood``: a second held-out family (split = ood) whose physics lies outside every training family:
  Einasto haloes and two GC sub-populations (concentrated radial "red", extended tangential "blue"),
  rotating faster than the ``early`` prior.

Every galaxy draws all its random numbers from its own stream ``item_rng(seed, galaxy_index)`` in a
fixed order, so the output does not depend on batching, ``workers`` or ``shard``. Each galaxy is seen from
``views`` directions uniform on the sphere; the GCs are sampled once per galaxy and projected onto all
views with one batched product, and the maps come from :func:`gcml.observe.kinematic.kinematic_maps`.

Why one module of ~740 lines: every family's draws (``_draw_*``), their phase-space sampling and the block
driver share the fixed order in which a galaxy consumes its random stream, which is what makes the output
bitwise independent of ``workers``, ``shard`` and batching; keeping them together keeps that order
readable in one place. The settings moved to :mod:`gcml.simulate.maps_config`; the next seam, if the
module grows, is the ``early`` family's draws (``_draw_early``, ``_sample_early``, ``_early_*``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gcml.errors import ConfigError
from gcml.io.catalogues import Catalogues
from gcml.io.mapset import MapSetWriter, assign_splits
from gcml.observe.kinematic import (
    CHANNELS,
    UNITS,
    kinematic_maps,
    project,
    random_views,
    view_basis,
)
from gcml.parallel import process_pool
from gcml.physics import potentials as pot
from gcml.physics.gcs import (
    GC_CORE_FRACTION,
    GC_TRUNCATION_FRACTION,
    draw_gc_randoms,
    draw_sluggs_errors,
    gc_half_number_scale,
    sample_gc_systems,
    stack_randoms,
)
from gcml.physics.merger import PROFILE_KEYS, integrate_mergers
from gcml.physics.tracer_mass import tracer_mass_estimator
from gcml.random import item_rng
from gcml.simulate.maps_config import (  # noqa: F401  (re-exported: they lived here before issue 14)
    APERTURES_KPC,
    EARLY_KINDS,
    FAMILIES,
    OOD_FAMILIES,
    V_ERROR_MODELS,
    SimulateMapsConfig,
    _option,
    _pair,
)

#: Priors of the ``early`` family (ranges drawn uniformly unless stated); references in docs/physics-galaxies.md.
EARLY_PRIORS: dict[str, Any] = {
    "disk_fraction": (0.0, 0.3),        # S0 disks: disk-to-total stellar mass
    "size_scatter_dex": 0.15,           # Shen et al. 2003 early-type R_e(M*)
    "cored_fraction": 0.5,              # half the haloes cored (coreNFW, Read et al. 2016)
    "core_n": (0.3, 1.0),
    "log_r_core_over_re": (-0.3, 0.4),  # r_c = 0.5-2.5 R_e (Read et al. 2016: 1.75 R_e)
    "truncated_fraction": 0.3,          # group/cluster members with tidally truncated haloes
    "r_trunc_over_r200": (0.15, 0.6),
    "re_gc_over_re": (2.0, 5.0),        # GC system half-number radius (Forbes 2017; Lim et al. 2024)
    "gc_slope": (2.6, 4.5),             # 3D outer slope of the GC density
    "r_t_over_rh": (6.0, 12.0),         # GC system extent in 3D half-number radii
    "beta_0": (-0.5, 0.5),              # central anisotropy
    "beta_inf": (-0.5, 0.9),            # outer anisotropy (radial, tangential, Osipkov-Merritt-like)
    "log_r_a_over_rh": (-0.5, 0.5),
    "f_rot": (0.0, 0.3),                # T_rot / T_kin, V_rot / sigma up to ~1 (Pota et al. 2013)
    "two_population_fraction": 0.5,     # half the systems as red + blue populations
    "red_fraction": (0.2, 0.7),
    "re_gc_red_over_re": (1.0, 3.0),
    "re_gc_blue_over_re": (3.0, 8.0),
    "n_gc_scatter_dex": 0.2,            # N_GC = M200 / 5e9 Msun (Burkert & Forbes 2020)
    "log_observed_fraction": (-1.5, -0.2),  # fraction of the GCs with a measured velocity
    "n_observed": (15, 650),            # SLUGGS: 15-653 GCs per galaxy (Forbes et al. 2017)
}
#: GC numbers of the early families are rounded to these levels (galaxies of one level are computed together).
N_GC_LEVELS = (15, 18, 22, 27, 33, 40, 50, 60, 75, 90, 110, 135, 165, 200, 245, 300, 370, 450, 550, 650)

# Parameters recorded in /meta for every map (NaN where a family does not have one).
PARAM_META: dict[str, str] = {
    "m200": "Msun", "concentration": "", "mstar": "Msun", "r_disk_kpc": "kpc", "bulge_to_disk": "",
    "m_bulge": "Msun", "a_bulge_kpc": "kpc", "f_rot": "", "beta": "", "mass_ratio": "", "f_v": "",
    "separation_kpc": "kpc", "m200_2": "Msun", "concentration_2": "", "mstar_2": "Msun",
    "r_disk_2_kpc": "kpc", "bulge_to_disk_2": "", "t_merge_gyr": "Gyr", "merged": "",
    "core_n": "", "r_core_kpc": "kpc", "r_trunc_kpc": "kpc", "einasto_alpha": "", "beta_inf": "", "r_a_kpc": "kpc",
    "gc_slope": "", "r_h_gc_kpc": "kpc", "m_halo_bound": "Msun", "red_fraction": "",
}


@dataclass
class SimulateMapsResult:
    """What :func:`simulate_maps` wrote."""

    path: Path
    n_maps: int
    n_galaxies: int
    galaxy_range: tuple[int, int]
    seconds: float
    maps_per_second: float
    file_size_bytes: int
    families: dict[str, int] = field(default_factory=dict)


# ----------------------------------------------------------------------------------- per galaxy draws


def _draw_profile(rng: np.random.Generator, log_m200: float, cfg: SimulateMapsConfig, *, c_offset: float = 0.0,
                  bd_range: tuple[float, float] | None = None) -> dict[str, float]:
    m200 = 10.0**log_m200
    c = float(pot.concentration_dutton_maccio(m200, rng, offset_dex=c_offset))
    mstar = float(pot.stellar_mass_moster2013(m200, rng))
    rd = float(pot.disk_scale_length_kravtsov(m200, rng))
    lo, hi = bd_range or cfg.bulge_to_disk
    bd = float(rng.uniform(lo, hi))
    m_bulge = mstar * bd / (1.0 + bd)
    # Bulge "size" R_b (Kaur Table 1) taken as 5 Hernquist scale radii, like the disk size = 5 R0.
    a_bulge = max(float(pot.bulge_size_kpc(m_bulge)) / 5.0, 0.01)
    return dict(m200=m200, c=c, m_disk=mstar - m_bulge, r_disk=rd, m_bulge=m_bulge, a_bulge=a_bulge,
                mstar=mstar, bulge_to_disk=bd)


def _n_gc(cfg: SimulateMapsConfig, m200: float) -> int:
    n = cfg.n_gc * (m200 / 1e12) ** cfg.n_gc_slope
    return int(np.clip(round(n), cfg.n_gc_min, cfg.n_gc_max))


def _u(rng: np.random.Generator, key: str) -> float:
    lo, hi = EARLY_PRIORS[key]
    return float(rng.uniform(lo, hi))


def _draw_gc_population(rng: np.random.Generator, r_e: float, r_max: float, *, re_gc_over_re: tuple[float, float],
                        slope: tuple[float, float], beta_0: tuple[float, float], beta_inf: tuple[float, float],
                        f_rot: tuple[float, float]) -> dict[str, float]:
    """Structure and kinematics of one GC population (sizes in units of the host's R_e)."""
    r_h = 4.0 / 3.0 * r_e * float(rng.uniform(*re_gc_over_re))   # 3D half-number radius ~ 4/3 projected
    gam = float(rng.uniform(*slope))
    r_t = min(r_h * _u(rng, "r_t_over_rh"), r_max)
    a = float(gc_half_number_scale(np.array([r_h]), np.array([r_t / r_h]), np.array([gam]))[0])
    b0 = float(rng.uniform(*beta_0))
    binf = float(rng.uniform(*beta_inf))
    r_a = r_h * 10.0 ** _u(rng, "log_r_a_over_rh")
    return dict(a=a, r_t=r_t, r_h=r_h, slope=gam, beta=b0, beta_inf=binf, r_a=r_a, f_rot=float(rng.uniform(*f_rot)))


def _draw_early(rng: np.random.Generator, g: dict[str, Any], cfg: SimulateMapsConfig) -> None:
    """Host, halo and GC system of an ``early`` / ``early-ood`` galaxy (fixed order of draws)."""
    ood = g["family"] == "early-ood"
    P = EARLY_PRIORS
    log_m = float(rng.uniform(*cfg.early_log_m200))
    m200 = 10.0**log_m
    c = float(pot.concentration_dutton_maccio(m200, rng))
    mstar = float(pot.stellar_mass_moster2013(m200, rng))
    f_disk = _u(rng, "disk_fraction")
    r_e_sph = float(pot.early_type_size_shen2003(mstar, rng, scatter_dex=P["size_scatter_dex"]))
    rd = float(pot.disk_scale_length_kravtsov(m200, rng))
    m_bulge = mstar * (1.0 - f_disk)
    a_bulge = r_e_sph / pot.HERNQUIST_RE_OVER_A
    r200 = float(pot.r200_from_m200(m200))
    cored = rng.random() < P["cored_fraction"]
    core_n = _u(rng, "core_n") if cored else 0.0
    r_core = r_e_sph * 10.0 ** _u(rng, "log_r_core_over_re")
    trunc = rng.random() < P["truncated_fraction"]
    r_trunc = r200 * _u(rng, "r_trunc_over_r200") if trunc else math.inf
    alpha = float(rng.uniform(0.12, 0.3)) if ood else 0.0
    if ood:
        core_n = 0.0   # Einasto haloes, neither NFW nor coreNFW
    prof = dict(m200=m200, c=c, core_n=core_n, r_core=r_core, r_trunc=r_trunc, einasto_alpha=alpha,
                m_disk=mstar - m_bulge, r_disk=rd, m_bulge=m_bulge, a_bulge=a_bulge)
    r_e = float(pot.projected_half_mass_radius(m_disk=prof["m_disk"], r_disk=rd, m_bulge=m_bulge, a_bulge=a_bulge))
    r_max = min(r200, r_trunc)
    n_tot = pot.n_gc_burkert_forbes2020(m200) * 10.0 ** (P["n_gc_scatter_dex"] * rng.standard_normal())
    n_obs = n_tot * 10.0 ** _u(rng, "log_observed_fraction")
    lo, hi = P["n_observed"]
    n_obs = float(np.clip(n_obs, lo, hi))
    levels = np.asarray(N_GC_LEVELS)
    n = int(levels[np.argmin(np.abs(np.log(levels / n_obs)))])
    two = rng.random() < P["two_population_fraction"]
    if not ood and not two:
        pops = [_draw_gc_population(rng, r_e, r_max, re_gc_over_re=P["re_gc_over_re"], slope=P["gc_slope"],
                                    beta_0=P["beta_0"], beta_inf=P["beta_inf"], f_rot=P["f_rot"])]
        ns = [n]
        red = math.nan
    elif not ood:
        # Red (metal-rich, concentrated) and blue (metal-poor, extended) GCs, each with its own density profile,
        # anisotropy profile and rotation drawn from the early priors (e.g. Pota et al. 2013; Lim et al. 2024).
        red = _u(rng, "red_fraction")
        pops = [_draw_gc_population(rng, r_e, r_max, re_gc_over_re=P["re_gc_red_over_re"], slope=P["gc_slope"],
                                    beta_0=P["beta_0"], beta_inf=P["beta_inf"], f_rot=P["f_rot"]),
                _draw_gc_population(rng, r_e, r_max, re_gc_over_re=P["re_gc_blue_over_re"], slope=P["gc_slope"],
                                    beta_0=P["beta_0"], beta_inf=P["beta_inf"], f_rot=P["f_rot"])]
        n1 = max(1, int(round(n * red)))
        ns = [n1, max(1, n - n1)]
    else:
        # Second held-out family: Einasto haloes (above) and a concentrated, radially anisotropic "red"
        # population with a steeper profile than the early prior, plus an extended, strongly tangential "blue"
        # one (e.g. Pota et al. 2013; Zhu et al. 2016), both rotating faster than the early prior allows.
        red = float(rng.uniform(0.3, 0.6))
        pops = [_draw_gc_population(rng, r_e, r_max, re_gc_over_re=(1.0, 2.0), slope=(4.5, 5.5), beta_0=(0.3, 0.6),
                                    beta_inf=(0.5, 0.9), f_rot=(0.3, 0.45)),
                _draw_gc_population(rng, r_e, r_max, re_gc_over_re=(4.0, 8.0), slope=(2.6, 3.2),
                                    beta_0=(-0.8, -0.4), beta_inf=(-0.4, 0.2), f_rot=(0.3, 0.45))]
        n1 = max(1, int(round(n * red)))
        ns = [n1, max(1, n - n1)]
    g["kind"] = g["family"]
    g["p1"] = prof
    g["r_e"] = r_e
    g["pops"] = pops
    g["red_fraction"] = red
    g["gc1"] = draw_gc_randoms(rng, ns[0])
    if len(ns) > 1:
        g["gc2"] = draw_gc_randoms(rng, ns[1])
        g["n_cols"] = 2 * n
    g["n_gc"] = n
    g["beta"] = pops[0]["beta"]
    g["f_rot"] = pops[0]["f_rot"]


def _draw_observation(rng: np.random.Generator, g: dict[str, Any], cfg: SimulateMapsConfig) -> None:
    """Views, subsampling and velocity errors (per view and GC)."""
    v = cfg.views
    g["views"] = rng.random((v, 2))
    n = g.get("n_cols", g["n_gc"])   # columns of the GC arrays (two padded populations: 2 n_gc)
    # The early families draw their observed GC numbers themselves (EARLY_PRIORS): --subsample is not applied.
    sub = cfg.subsample != (1.0, 1.0) and g["family"] not in EARLY_KINDS
    g["keep_u"] = rng.random((v, n)) if sub else None
    g["keep_p"] = rng.uniform(*cfg.subsample, size=v) if sub else None
    if cfg.v_error_model == "sluggs":
        g["err"] = draw_sluggs_errors(rng, (v, n))
        g["noise"] = rng.standard_normal((v, n))
    elif cfg.v_error_kms[1] > 0:
        g["err"] = rng.uniform(*cfg.v_error_kms, size=(v, n))
        g["noise"] = rng.standard_normal((v, n))
    else:
        g["err"] = None


def _draw_galaxy(index: int, cfg: SimulateMapsConfig) -> dict[str, Any]:
    """All random choices of galaxy ``index``, drawn from its own stream in a fixed order."""
    rng = item_rng(cfg.seed, index)
    family = cfg.families[index % len(cfg.families)]
    g: dict[str, Any] = {"index": index, "family": family}
    if family in EARLY_KINDS:
        _draw_early(rng, g, cfg)
        _draw_observation(rng, g, cfg)
        return g
    kind = family
    beta_r, frot_r, q_r, c_off, bd_r = cfg.beta, cfg.f_rot, cfg.mass_ratio, 0.0, None
    if family == "unknown":
        # Paper Section 3.5: models outside the training priors.
        kind = "disk" if rng.random() < 0.5 else "merger"
        beta_r, frot_r, q_r = (0.2, 0.6), (0.5, 0.8), (0.1, 0.3)
        c_off = float(rng.choice([-0.25, 0.25]))
        bd_r = (4.0, 8.0)
    g["kind"] = kind
    log_m = float(rng.uniform(*cfg.log_m200))
    g["beta"] = float(rng.uniform(*beta_r))
    g["f_rot"] = float(rng.uniform(*frot_r))
    if kind == "disk":
        g["p1"] = _draw_profile(rng, log_m, cfg, c_offset=c_off, bd_range=bd_r)
        n = _n_gc(cfg, g["p1"]["m200"])
        g["gc1"] = draw_gc_randoms(rng, n)
        g["n_gc"] = n
    else:
        q = float(rng.uniform(*q_r))
        m_tot = 10.0**log_m
        g["mass_ratio"] = q
        g["f_v"] = float(rng.uniform(*cfg.f_v))
        g["p1"] = _draw_profile(rng, math.log10(m_tot / (1 + q)), cfg, c_offset=c_off, bd_range=bd_r)
        g["p2"] = _draw_profile(rng, math.log10(m_tot * q / (1 + q)), cfg, c_offset=c_off, bd_range=bd_r)
        n = _n_gc(cfg, m_tot)
        n2 = max(1, int(round(n * q / (1 + q))))
        n1 = max(1, n - n2)
        g["gc1"] = draw_gc_randoms(rng, n1)
        g["gc2"] = draw_gc_randoms(rng, n2)
        g["spins"] = rng.random((2, 2))
        g["sep_sizes"] = float(rng.uniform(*cfg.separation))
        g["n_gc"] = n1 + n2
    _draw_observation(rng, g, cfg)
    return g


# ------------------------------------------------------------------------------- physics of a batch


def _profiles(gals: list[dict], key: str) -> dict[str, np.ndarray]:
    return {k: np.array([g[key][k] if key in g else 0.0 for g in gals], float) for k in PROFILE_KEYS}


def _zero_profile(n: int) -> dict[str, np.ndarray]:
    p = {k: np.zeros(n) for k in PROFILE_KEYS}
    p["c"] = np.full(n, 10.0)
    p["r_disk"] = np.ones(n)
    p["a_bulge"] = np.ones(n)
    return p


def _gc_scales(p: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    size = 5.0 * p["r_disk"]
    return GC_CORE_FRACTION * size, GC_TRUNCATION_FRACTION * size


def _sample(gals: list[dict], key: str, pkey: str, n_pad: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p = _profiles(gals, pkey)
    draws, mask = stack_randoms([g[key] for g in gals], n_pad)
    a, rt = _gc_scales(p)
    pe = {k: v[:, None] for k, v in p.items()}
    s = sample_gc_systems(draws, mask, a=a, r_t=rt, enclosed_mass=lambda r: pot.galaxy_enclosed_mass(r, **pe),
                          beta=np.array([g["beta"] for g in gals]), f_rot=np.array([g["f_rot"] for g in gals]))
    return s.pos, s.vel, mask


EARLY_KEYS = ("m200", "c", "core_n", "r_core", "r_trunc", "einasto_alpha", "m_disk", "r_disk", "m_bulge", "a_bulge")


def _early_profiles(gals: list[dict]) -> dict[str, np.ndarray]:
    return {k: np.array([g["p1"][k] for g in gals], float) for k in EARLY_KEYS}


def _early_enclosed(p: dict[str, np.ndarray], r: np.ndarray) -> np.ndarray:
    """Total enclosed mass of early-type galaxies, parameters (B,), radii (B, K)."""
    return pot.early_type_enclosed_mass(r, **{k: v[:, None] for k, v in p.items()})


def _sample_early(gals: list[dict], key: str, j: int, n_pad: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p = _early_profiles(gals)
    draws, mask = stack_randoms([g[key] for g in gals], n_pad)

    def pop(k: str) -> np.ndarray:
        return np.array([g["pops"][j][k] for g in gals], float)

    s = sample_gc_systems(draws, mask, a=pop("a"), r_t=pop("r_t"), enclosed_mass=lambda r: _early_enclosed(p, r),
                          beta=pop("beta"), f_rot=pop("f_rot"), slope=pop("slope"), beta_inf=pop("beta_inf"),
                          r_a=pop("r_a"))
    return s.pos, s.vel, mask


def _phase_space(gals: list[dict], cfg: SimulateMapsConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """GC positions/velocities (B, N, 3) in each galaxy's frame, mask, and per-galaxy extras."""
    kind = gals[0]["kind"]
    b = len(gals)
    n = gals[0]["n_gc"]
    if kind in EARLY_KINDS:
        pos, vel, mask = _sample_early(gals, "gc1", 0, n)
        if "gc2" in gals[0]:
            # two populations, each padded to n so that shapes depend only on n
            p2, v2, m2 = _sample_early(gals, "gc2", 1, n)
            pos, vel, mask = np.concatenate([pos, p2], 1), np.concatenate([vel, v2], 1), np.concatenate([mask, m2], 1)
        return pos, vel, mask, {}
    if kind == "disk":
        pos, vel, mask = _sample(gals, "gc1", "p1", n)
        return pos, vel, mask, {}
    # Both progenitors padded to the galaxy's n_gc, so array shapes depend only on n_gc.
    pos1, vel1, m1 = _sample(gals, "gc1", "p1", n)
    pos2, vel2, m2 = _sample(gals, "gc2", "p2", n)
    spins = np.stack([g["spins"] for g in gals])                      # (B, 2, 2)
    th, ph = random_views(spins[..., 0], spins[..., 1])
    rot = np.swapaxes(view_basis(th, ph), -1, -2)                     # galaxy z -> spin direction
    pos1, vel1 = _rotate(rot[:, 0], pos1), _rotate(rot[:, 0], vel1)
    pos2, vel2 = _rotate(rot[:, 1], pos2), _rotate(rot[:, 1], vel2)
    p1, p2 = _profiles(gals, "p1"), _profiles(gals, "p2")
    sep = np.array([g["sep_sizes"] for g in gals]) * 5.0 * p1["r_disk"]
    res = integrate_mergers(pos1, vel1, pos2, vel2, p1=p1, p2=p2, mask1=m1, mask2=m2, separation_kpc=sep,
                            f_v=np.array([g["f_v"] for g in gals]), n_steps=cfg.merger_steps)
    pos, vel, mask = res.pos, res.vel, res.mask
    from gcml.physics.units import TIME_UNIT_GYR

    extra = {"separation_kpc": sep, "t_merge_gyr": res.t_merge * TIME_UNIT_GYR, "merged": res.merged.astype(float)}
    assert pos.shape[0] == b and mask.all()
    return pos, vel, mask, extra


def _rotate(rot: np.ndarray, x: np.ndarray) -> np.ndarray:
    """rot (B, 3, 3) applied to vectors x (B, N, 3), by explicit sums (batch-independent rounding)."""
    return np.stack([rot[:, j, 0, None] * x[..., 0] + rot[:, j, 1, None] * x[..., 1] + rot[:, j, 2, None] * x[..., 2]
                     for j in range(3)], -1)


def _enclosed_total(r: np.ndarray, p1: dict, p2: dict) -> np.ndarray:
    return pot.galaxy_enclosed_mass(r, **p1) + pot.galaxy_enclosed_mass(r, **p2)


def _effective_radius(p1: dict, p2: dict) -> np.ndarray:
    """Projected half-stellar-mass radius of one or two (concentric) stellar components, by bisection."""
    half = 0.5 * (p1["m_disk"] + p1["m_bulge"] + p2["m_disk"] + p2["m_bulge"])
    lo = np.zeros_like(half)
    hi = 50.0 * np.maximum.reduce([p1["r_disk"], p1["a_bulge"], p2["r_disk"], p2["a_bulge"]])
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        m = sum(pot.disk_cylinder_mass(mid, p["m_disk"], p["r_disk"]) + pot.hernquist_projected_mass(mid, p["m_bulge"], p["a_bulge"])
                for p in (p1, p2))
        below = m < half
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return 0.5 * (lo + hi)


def _views_chunk(gals: list[dict], pos: np.ndarray, vel: np.ndarray, mask: np.ndarray, theta: np.ndarray,
                 phi: np.ndarray, cfg: SimulateMapsConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Any]:
    """Maps, TME mass, r_out, GC number in the field and GC catalogues (or None) for all views of a few galaxies."""
    b, n = mask.shape
    v = cfg.views
    x, y, vlos = project(pos, vel, theta.astype(np.float32), phi.astype(np.float32))   # (B, V, N)
    m = np.broadcast_to(mask[:, None, :], (b, v, n))
    err = None
    if gals[0]["keep_u"] is not None:
        ku = np.stack([g["keep_u"] for g in gals])
        kp = np.stack([g["keep_p"] for g in gals])
        m = m & (ku < kp[..., None])
    if gals[0]["err"] is not None:
        err = np.stack([g["err"] for g in gals]).astype(np.float32)
        vlos = vlos + err * np.stack([g["noise"] for g in gals]).astype(np.float32)
    half = np.float32(cfg.extent_kpc / 2.0)
    infield = m & (np.abs(x) <= half) & (np.abs(y) <= half)
    bv = b * v
    maps = kinematic_maps(x.reshape(bv, n), y.reshape(bv, n), vlos.reshape(bv, n), cfg.geometry,
                          v_err=None if err is None else err.reshape(bv, n), mask=m.reshape(bv, n))
    R = np.sqrt(x * x + y * y)  # not np.hypot: its SIMD tail rounds differently with the array length
    tme, r_out = tracer_mass_estimator(R.reshape(bv, n), vlos.reshape(bv, n), mask=infield.reshape(bv, n),
                                       alpha=cfg.tme_alpha, gamma=cfg.tme_gamma, beta=cfg.tme_beta)
    cats = None
    if cfg.catalogues:
        cats = Catalogues.from_padded(x.reshape(bv, n), y.reshape(bv, n), vlos.reshape(bv, n),
                                      None if err is None else err.reshape(bv, n), infield.reshape(bv, n),
                                      m.reshape(bv, n))
    return maps, tme, r_out, infield.reshape(bv, n).sum(1), cats


def _simulate_block(gals: list[dict], cfg: SimulateMapsConfig) -> dict[str, Any]:
    """Maps, targets and meta of a block of galaxies of one kind."""
    b = len(gals)
    v = cfg.views
    geom = cfg.geometry
    pos, vel, mask, extra = _phase_space(gals, cfg)
    views = np.stack([g["views"] for g in gals])                      # (B, V, 2)
    theta, phi = random_views(views[..., 0], views[..., 1])
    # Views are projected and mapped a few galaxies at a time, so the temporaries stay in the CPU cache.
    maps = np.empty((b * v, 3, geom.n_pix, geom.n_pix), np.float32)
    tme = np.empty(b * v)
    r_out = np.empty(b * v)
    n_in = np.empty(b * v, np.int32)
    step = max(1, 256 // v)
    cats = []
    for i0 in range(0, b, step):
        i1 = min(i0 + step, b)
        rows = slice(i0 * v, i1 * v)
        res = _views_chunk(gals[i0:i1], pos[i0:i1].astype(np.float32), vel[i0:i1].astype(np.float32),
                           mask[i0:i1], theta[i0:i1], phi[i0:i1], cfg)
        maps[rows], tme[rows], r_out[rows], n_in[rows] = res[:4]
        cats.append(res[4])
    cats = Catalogues.concatenate(cats) if cfg.catalogues else None
    if gals[0]["kind"] in EARLY_KINDS:
        return _early_block_labels(gals, cfg, maps, tme, r_out, n_in, theta, phi, cats)
    p1 = _profiles(gals, "p1")
    p2 = _profiles(gals, "p2") if gals[0]["kind"] == "merger" else _zero_profile(b)
    mstar = p1["m_disk"] + p1["m_bulge"] + p2["m_disk"] + p2["m_bulge"]
    m200 = p1["m200"] + p2["m200"]
    r_e = _effective_radius(p1, p2)
    rep = lambda a: np.repeat(np.asarray(a, float), v)  # noqa: E731
    rp1 = {k: rep(val) for k, val in p1.items()}
    rp2 = {k: rep(val) for k, val in p2.items()}
    targets = {
        "log10_mass_total": rep(np.log10(m200 + mstar)),
        "log10_m200": rep(np.log10(m200)),
        "log10_mstar": rep(np.log10(mstar)),
    }
    for ap in APERTURES_KPC:
        targets[f"log10_mass_within_{ap}kpc"] = rep(np.log10(_enclosed_total(np.full(b, float(ap)), p1, p2)))
    targets["log10_mass_within_5re"] = rep(np.log10(_enclosed_total(5.0 * r_e, p1, p2)))
    with np.errstate(divide="ignore"):
        targets["log10_mass_within_rout"] = np.where(r_out > 0, np.log10(np.maximum(_enclosed_total(r_out, rp1, rp2), 1e-300)), np.nan)
    merger = gals[0]["kind"] == "merger"
    nan = np.full(b, np.nan)
    params = {
        "m200": m200, "concentration": p1["c"], "mstar": mstar, "r_disk_kpc": p1["r_disk"],
        "bulge_to_disk": np.array([g["p1"]["bulge_to_disk"] for g in gals]), "m_bulge": p1["m_bulge"] + p2["m_bulge"],
        "a_bulge_kpc": p1["a_bulge"], "f_rot": np.array([g["f_rot"] for g in gals]),
        "beta": np.array([g["beta"] for g in gals]),
        "mass_ratio": np.array([g.get("mass_ratio", np.nan) for g in gals]),
        "f_v": np.array([g.get("f_v", np.nan) for g in gals]),
        "separation_kpc": extra.get("separation_kpc", nan),
        "m200_2": p2["m200"] if merger else nan, "concentration_2": p2["c"] if merger else nan,
        "mstar_2": (p2["m_disk"] + p2["m_bulge"]) if merger else nan,
        "r_disk_2_kpc": p2["r_disk"] if merger else nan,
        "bulge_to_disk_2": np.array([g["p2"]["bulge_to_disk"] for g in gals]) if merger else nan,
        "t_merge_gyr": extra.get("t_merge_gyr", nan), "merged": extra.get("merged", nan),
    }
    return _block_result(gals, v, maps, targets, params, tme, r_out, n_in, theta, phi, r_e, cats)



def _block_result(gals: list[dict], v: int, maps: np.ndarray, targets: dict[str, Any], params: dict[str, Any],
                  tme: np.ndarray, r_out: np.ndarray, n_in: np.ndarray, theta: np.ndarray, phi: np.ndarray,
                  r_e: np.ndarray, cats: Any) -> dict[str, Any]:
    """A block's maps, targets and per-map meta (every family's galaxy parameters repeated over its views;
    parameters a family lacks are NaN)."""
    rep = lambda a: np.repeat(np.asarray(a, float), v)  # noqa: E731
    meta = {
        "group_id": rep([g["index"] for g in gals]).astype(np.int64),
        "family": np.repeat(np.array([g["family"] for g in gals]), v),
        "view_theta": theta.reshape(-1), "view_phi": phi.reshape(-1),
        "n_gc": n_in,
        "r_out_kpc": r_out, "tme_log10_mass": np.where(np.isfinite(tme) & (tme > 0), np.log10(np.where(tme > 0, tme, 1.0)), np.nan),
        "r_e_kpc": rep(r_e),
    }
    meta.update({k: rep(val) for k, val in params.items()})
    for k in PARAM_META:
        meta.setdefault(k, np.full(len(gals) * v, np.nan))
    return {"maps": maps, "targets": {k: np.asarray(t, np.float32) for k, t in targets.items()}, "meta": meta,
            "catalogues": cats}

def _early_block_labels(gals: list[dict], cfg: SimulateMapsConfig, maps: np.ndarray, tme: np.ndarray,
                        r_out: np.ndarray, n_in: np.ndarray, theta: np.ndarray, phi: np.ndarray,
                        cats: Any = None) -> dict[str, Any]:
    """Targets and meta of a block of early-type galaxies (labels from :func:`pot.early_type_enclosed_mass`)."""
    b = len(gals)
    v = cfg.views
    p = _early_profiles(gals)
    mstar = p["m_disk"] + p["m_bulge"]
    r200 = pot.r200_from_m200(p["m200"])
    halo = {k: p[k][:, None] for k in ("m200", "c", "core_n", "r_core", "r_trunc", "einasto_alpha")}
    m_halo = pot.halo_enclosed_mass(r200[:, None], **halo)[:, 0]     # bound halo mass (truncation included)
    r_e = np.array([g["r_e"] for g in gals])
    rep = lambda a: np.repeat(np.asarray(a, float), v)  # noqa: E731
    targets = {
        "log10_mass_total": rep(np.log10(m_halo + mstar)),
        "log10_m200": rep(np.log10(p["m200"])),
        "log10_mstar": rep(np.log10(mstar)),
    }
    for ap in APERTURES_KPC:
        targets[f"log10_mass_within_{ap}kpc"] = rep(np.log10(_early_enclosed(p, np.full((b, 1), float(ap)))[:, 0]))
    targets["log10_mass_within_5re"] = rep(np.log10(_early_enclosed(p, 5.0 * r_e[:, None])[:, 0]))
    ro = r_out.reshape(b, v)
    with np.errstate(divide="ignore"):
        targets["log10_mass_within_rout"] = np.where(
            r_out > 0, np.log10(np.maximum(_early_enclosed(p, np.maximum(ro, 1e-6)), 1e-300)).reshape(-1), np.nan)
    pop = lambda k: np.array([g["pops"][0][k] for g in gals], float)  # noqa: E731
    params = {
        "m200": p["m200"], "concentration": p["c"], "mstar": mstar, "r_disk_kpc": p["r_disk"],
        "m_bulge": p["m_bulge"], "a_bulge_kpc": p["a_bulge"], "f_rot": pop("f_rot"), "beta": pop("beta"),
        "core_n": p["core_n"], "r_core_kpc": p["r_core"],
        "r_trunc_kpc": np.where(np.isfinite(p["r_trunc"]), p["r_trunc"], np.nan),
        "einasto_alpha": np.where(p["einasto_alpha"] > 0, p["einasto_alpha"], np.nan),
        "beta_inf": pop("beta_inf"), "r_a_kpc": pop("r_a"), "gc_slope": pop("slope"), "r_h_gc_kpc": pop("r_h"),
        "m_halo_bound": m_halo, "red_fraction": np.array([g["red_fraction"] for g in gals], float),
        "bulge_to_disk": np.where(p["m_disk"] > 0, p["m_bulge"] / np.maximum(p["m_disk"], 1e-300), np.inf),
    }
    return _block_result(gals, v, maps, targets, params, tme, r_out, n_in, theta, phi, r_e, cats)


def simulate_galaxies(indices: list[int] | range, cfg: SimulateMapsConfig) -> dict[str, Any]:
    """Maps, targets and meta of the galaxies ``indices`` (rows ordered by galaxy, then view)."""
    gals = [_draw_galaxy(int(i), cfg) for i in indices]
    parts: list[tuple[list[int], dict]] = []
    # Galaxies are computed in groups of the same kind and GC number, so that every array a galaxy
    # takes part in has the same shape whatever else is in the batch: the bytes written do not depend
    # on batching, workers or shards.
    keys = sorted({(g["kind"], g["n_gc"], g.get("n_cols", g["n_gc"])) for g in gals})
    for kind, n, nc in keys:
        sel = [j for j, g in enumerate(gals) if g["kind"] == kind and g["n_gc"] == n and g.get("n_cols", n) == nc]
        parts.append((sel, _simulate_block([gals[j] for j in sel], cfg)))
    # Back into galaxy order.
    v = cfg.views
    rows = np.concatenate([np.concatenate([np.arange(j * v, (j + 1) * v) for j in sel]) for sel, _ in parts])
    order = np.argsort(rows, kind="stable")
    cat = lambda key, name: np.concatenate([p[key][name] for _, p in parts])[order]  # noqa: E731
    out = {
        "maps": np.concatenate([p["maps"] for _, p in parts])[order],
        "targets": {k: cat("targets", k) for k in parts[0][1]["targets"]},
        "meta": {k: cat("meta", k) for k in parts[0][1]["meta"]},
    }
    if cfg.catalogues:
        out["catalogues"] = Catalogues.concatenate([p["catalogues"] for _, p in parts]).select(order)
    return out


# ------------------------------------------------------------------------------------------ driver


TARGET_DESCRIPTIONS = {
    "log10_mass_total": "halo M200 + stellar mass",
    "log10_m200": "NFW halo mass within r200 (200 x critical density)",
    "log10_mstar": "stellar mass (disk + bulge)",
    "log10_mass_within_5kpc": "true 3D mass (halo + stars) within 5 kpc",
    "log10_mass_within_10kpc": "true 3D mass (halo + stars) within 10 kpc",
    "log10_mass_within_20kpc": "true 3D mass (halo + stars) within 20 kpc",
    "log10_mass_within_50kpc": "true 3D mass (halo + stars) within 50 kpc",
    "log10_mass_within_5re": "true 3D mass within 5 projected half-stellar-mass radii",
    "log10_mass_within_rout": "true 3D mass within the projected radius of the outermost GC in the map",
}
META_UNITS = {"group_id": "", "family": "", "view_theta": "rad", "view_phi": "rad", "n_gc": "",
              "r_out_kpc": "kpc", "tme_log10_mass": "dex(Msun)", "r_e_kpc": "kpc", **PARAM_META}


def parse_shard(shard: tuple[int, int] | str | None, n_galaxies: int, block: int = 1) -> tuple[int, int]:
    """Galaxy index range [start, stop) of shard K/N (K from 1).

    Shards are made of whole blocks of ``block`` galaxies (the unit of computation, see
    :func:`simulate_maps`), as equal in number as possible.
    """
    from gcml.config import parse_shard_spec

    spec = parse_shard_spec(shard)
    if spec is None:
        return 0, n_galaxies
    k, n = spec
    nb = -(-n_galaxies // block)
    if n > nb:
        raise ConfigError(f"option `shard`: {n} shards of {n_galaxies} galaxies in blocks of {block} "
                          f"(`batch_galaxies`) leave some shards empty; use at most {nb} shards or a smaller `batch_galaxies`")
    start = min((k - 1) * nb // n * block, n_galaxies)
    stop = min(k * nb // n * block, n_galaxies)
    return start, stop


def _worker(args: tuple[list[int], SimulateMapsConfig]) -> dict[str, Any]:
    return simulate_galaxies(args[0], args[1])


def simulate_maps(
    config: SimulateMapsConfig, out: str | Path = "maps.h5", *, overwrite: bool = False, workers: int = 1,
    shard: tuple[int, int] | str | None = None, progress: Callable[[int, int], None] | bool | None = None,
    command: str | None = None, options: dict[str, Any] | None = None,
) -> SimulateMapsResult:
    """Simulate galaxies, make their maps and write a MapSet.

    Parameters
    ----------
    config : SimulateMapsConfig
    out : output MapSet path (refused if it exists unless ``overwrite``).
    workers : processes; results are identical for any number.
    shard : (K, N) or "K/N": compute only the K-th of N parts of the galaxies (global group ids); parts are
        whole blocks of ``config.batch_galaxies`` galaxies, the unit of computation (changing the block size
        may change the last bits of the results, nothing else does).
    progress : called as ``progress(maps_done, maps_total)``; ``True``: a tqdm.auto bar (:mod:`gcml.progress`).
    command, options : provenance stored in the file: the command line (default: this process's) and the
        record of the command's options (:func:`gcml.io.common.options_record`; the CLI passes it).

    Returns
    -------
    SimulateMapsResult
    """
    from gcml.progress import as_progress

    progress = as_progress(progress, "simulate-maps", "map")
    cfg = config
    bs = cfg.batch_galaxies
    start, stop = parse_shard(shard, cfg.n_galaxies, bs)
    if workers < 1:
        raise ConfigError(f"option `workers`: expected at least 1, got {workers}")
    v = cfg.views
    n_ids = stop - start
    geom = cfg.geometry
    from gcml.io.common import check_resources

    npx, nch = geom.n_pix ** 2, len(CHANNELS)
    n_gc_top = max(cfg.n_gc, cfg.n_gc_max if cfg.n_gc_slope else cfg.n_gc)
    block = min(bs, n_ids) * (workers if workers > 1 else 1)
    check_resources("simulate-maps", disk=n_ids * v * nch * npx * 4, folder=Path(out).parent,
                    memory=block * (v * nch * npx * 8 * 2 + n_gc_top * 8 * 12) + min(bs, n_ids) * v * npx * 8)
    ids = list(range(start, stop))
    n_maps = len(ids) * v
    fams = {f: sum(1 for i in ids if cfg.families[i % len(cfg.families)] == f) for f in cfg.families}
    from gcml.physics.gcs import SLUGGS_E_HRV_QUANTILES

    v_err = ((SLUGGS_E_HRV_QUANTILES[0], SLUGGS_E_HRV_QUANTILES[-1]) if cfg.v_error_model == "sluggs"
             else cfg.v_error_kms)
    map_attrs = {**geom.to_attrs(), "extent": list(geom.extent), "v_error_min_kms": v_err[0],
                 "v_error_max_kms": v_err[1], "v_error_model": cfg.v_error_model, "subsample_min": cfg.subsample[0],
                 "subsample_max": cfg.subsample[1], "centre": "galaxy centre of mass",
                 "tme": json_tme(cfg)}
    meta_spec = {k: (u, "str" if k == "family" else ("<i8" if k == "group_id" else ("<i4" if k == "n_gc" else "<f8")))
                 for k, u in META_UNITS.items()}
    targets_spec = {k: ("dex(Msun)", d) for k, d in TARGET_DESCRIPTIONS.items()}
    resolved = asdict(cfg)
    resolved["shard"] = f"{start}:{stop}"
    t0 = time.perf_counter()
    # Galaxies are computed in fixed blocks of global indices [j bs, (j + 1) bs): numpy's vectorised
    # transcendental functions may round the last bit differently with the array size, so a galaxy must
    # always be computed together with the same companions to give the same bytes for any --workers or
    # --shard (shards are whole blocks).
    blocks = [list(range(i, min(i + bs, stop))) for i in range(start, stop, bs)]
    path = Path(out)
    with MapSetWriter(path, n=n_maps, channels=CHANNELS, units=UNITS, pixel_scale=geom.pixel_scale, pixel_unit="kpc",
                      shape=(geom.n_pix, geom.n_pix), kind="kinematics", targets=targets_spec, meta=meta_spec,
                      map_attrs=map_attrs, overwrite=overwrite, command=command, config=resolved, seed=cfg.seed,
                      options=options,
                      # float32 V/sigma/count maps do not compress (gzip+shuffle: 31.5 MB vs 30.7 MB raw for
                      # 25,600 maps) but gzip cost more CPU than making the maps; write them uncompressed.
                      compression=None, catalogues=cfg.catalogues) as w:
        done = 0

        def write(res: dict[str, Any]) -> None:
            nonlocal done
            gid = res["meta"]["group_id"]
            split = assign_splits(gid, cfg.split_fractions, cfg.seed)
            split = np.where(np.isin(res["meta"]["family"], OOD_FAMILIES), 3, split).astype(np.uint8)
            w.write(done, maps=res["maps"], targets=res["targets"], meta=res["meta"], split=split,
                    catalogues=res.get("catalogues"))
            done += len(gid)
            if progress is not None:
                progress(done, n_maps)

        if workers == 1 or len(blocks) <= 1:
            for blk in blocks:
                write(simulate_galaxies(blk, cfg))
        else:
            with process_pool(workers) as ex:
                for res in ex.map(_worker, [(blk, cfg) for blk in blocks]):
                    write(res)
    dt = time.perf_counter() - t0
    size = path.stat().st_size
    return SimulateMapsResult(path=path, n_maps=n_maps, n_galaxies=len(ids), galaxy_range=(start, stop),
                              seconds=dt, maps_per_second=n_maps / dt if dt > 0 else float("inf"),
                              file_size_bytes=size, families=fams)


def json_tme(cfg: SimulateMapsConfig) -> str:
    """The TME settings stored with the maps (JSON)."""
    import json

    return json.dumps({"alpha": cfg.tme_alpha, "gamma": cfg.tme_gamma, "beta": cfg.tme_beta,
                       "reference": "Watkins, Evans & An 2010, MNRAS 406, 264, eq. 24"})
