"""Early-type galaxy physics against closed forms: Osipkov-Merritt Jeans dispersion of a Hernquist sphere,
coreNFW / truncated / Einasto enclosed masses, the GC half-number radius, the SLUGGS error distribution,
and the early / early-ood families of simulate-maps."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad

from gcml.physics import potentials as pot
from gcml.physics.gcs import (
    SLUGGS_E_HRV_QUANTILES,
    draw_gc_randoms,
    draw_sluggs_errors,
    gc_density,
    gc_half_number_scale,
    sample_gc_systems,
    stack_randoms,
)
from gcml.physics.jeans import anisotropy_profile, jeans_sigma_r
from gcml.physics.units import G


def _hernquist_om_sigma_r(r, m, a, r_a):
    """Closed form: Osipkov-Merritt sigma_r of a self-consistent Hernquist sphere.

    nu sigma_r^2 (r^2 + r_a^2) = Int_r^inf (r'^2 + r_a^2) nu G M / r'^2 dr'
      = r_a^2 rho sigma_iso^2 + G Int_r^inf rho M dr', with rho M = M^2 a r / (2 pi (r + a)^5), whose integral
    from r to infinity is M^2 a / (2 pi) [1 / (3 (r + a)^3) - a / (4 (r + a)^4)]; sigma_iso from Hernquist (1990,
    eq. 10)."""
    rho = pot.hernquist_density(r, m, a)
    iso = rho * pot.hernquist_sigma_r(r, m, a) ** 2
    u = r + a
    tail = G * m * m * a / (2 * np.pi) * (1 / (3 * u**3) - a / (4 * u**4))
    return np.sqrt((r_a**2 * iso + tail) / (rho * (r * r + r_a**2)))


@pytest.mark.parametrize("r_a_over_a", [0.5, 1.0, 3.0])
def test_jeans_osipkov_merritt_hernquist_closed_form(r_a_over_a):
    m, a = 1e11, 2.0
    r = a * np.logspace(-3, 3, 3000)[None, :]
    sig = jeans_sigma_r(r, pot.hernquist_density(r, m, a), pot.hernquist_enclosed_mass(r, m, a), 0.0,
                        beta_inf=1.0, r_a=r_a_over_a * a)
    rr = a * np.logspace(-1.3, 1.3, 30)
    got = np.interp(np.log(rr), np.log(r[0]), sig[0])
    want = _hernquist_om_sigma_r(rr, m, a, r_a_over_a * a)
    np.testing.assert_allclose(got, want, rtol=5e-3)


def test_generalised_anisotropy_reduces_to_constant():
    m, a = 1e11, 2.0
    r = a * np.logspace(-3, 3, 2000)[None, :]
    nu, mass = pot.hernquist_density(r, m, a), pot.hernquist_enclosed_mass(r, m, a)
    const = jeans_sigma_r(r, nu, mass, 0.3)
    gen = jeans_sigma_r(r, nu, mass, 0.3, beta_inf=0.3, r_a=5.0)
    np.testing.assert_allclose(gen, const, rtol=1e-10)
    prof = anisotropy_profile(np.array([0.0, 5.0, 1e6]), 0.0, 1.0, 5.0)
    np.testing.assert_allclose(prof, [0.0, 0.5, 1.0], atol=1e-9)


def test_sampled_osipkov_merritt_anisotropy():
    """Sampled velocities follow beta(r) of an OM-like profile (-0.3 inside, 0.7 outside)."""
    rng = np.random.default_rng(3)
    n = 60000
    draws, mask = stack_randoms([draw_gc_randoms(rng, n)], n)
    p = dict(m200=np.array([[1e12]]), c=np.array([[8.0]]), m_disk=np.array([[0.0]]), r_disk=np.array([[1.0]]),
             m_bulge=np.array([[1e11]]), a_bulge=np.array([[2.0]]))
    r_a = 8.0
    s = sample_gc_systems(draws, mask, a=np.array([3.0]), r_t=np.array([80.0]),
                          enclosed_mass=lambda r: pot.galaxy_enclosed_mass(r, **p), beta=np.array([-0.3]),
                          f_rot=np.array([0.0]), slope=np.array([3.0]), beta_inf=np.array([0.7]), r_a=np.array([r_a]))
    r = np.linalg.norm(s.pos[0], axis=-1)
    vr = np.sum(s.vel[0] * s.pos[0], -1) / r
    vt2 = np.sum(s.vel[0] ** 2, -1) - vr**2
    for lo, hi in ((0.5, 3.0), (25.0, 80.0)):
        sel = (r > lo) & (r < hi)
        b_hat = 1 - np.mean(vt2[sel]) / (2 * np.mean(vr[sel] ** 2))
        b_exp = np.mean(anisotropy_profile(r[sel], -0.3, 0.7, r_a))
        assert b_hat == pytest.approx(b_exp, abs=0.05)


def test_halo_masses_closed_forms():
    m200, c = 1e12, 10.0
    r200 = float(pot.r200_from_m200(m200))
    r = np.array([1.0, 10.0, 100.0])
    nfw = pot.nfw_enclosed_mass(r, m200, c)
    np.testing.assert_allclose(pot.halo_enclosed_mass(r, m200=m200, c=c), nfw)
    # coreNFW (Read et al. 2016): tanh(r / r_c)^n factor
    np.testing.assert_allclose(pot.halo_enclosed_mass(r, m200=m200, c=c, core_n=1.0, r_core=5.0),
                               nfw * np.tanh(r / 5.0))
    # tidal truncation: constant mass beyond r_t
    mt = pot.halo_enclosed_mass(np.array([30.0, 50.0, 500.0]), m200=m200, c=c, r_trunc=50.0)
    np.testing.assert_allclose(mt, pot.nfw_enclosed_mass(np.array([30.0, 50.0, 50.0]), m200, c))
    # Einasto: M(<r200) = M200 and M(<r) = integral of 4 pi r^2 rho with rho ∝ exp(-2/alpha ((r/r_-2)^alpha - 1))
    alpha = 0.17
    r2 = r200 / c
    rho = lambda x: np.exp(-2 / alpha * ((x / r2) ** alpha - 1))  # noqa: E731
    norm = m200 / quad(lambda x: 4 * np.pi * x * x * rho(x), 0, r200, limit=200)[0]
    for rr in (2.0, 20.0, r200):
        want = norm * quad(lambda x: 4 * np.pi * x * x * rho(x), 0, rr, limit=200)[0]
        got = float(pot.halo_enclosed_mass(np.array([rr]), m200=m200, c=c, einasto_alpha=alpha)[0])
        assert got == pytest.approx(want, rel=1e-6)


def test_shen_size_and_burkert_forbes_numbers():
    # Shen et al. 2003 eq. 14: log R = 0.56 log M* + log 2.88e-6
    assert float(pot.early_type_size_shen2003(1e11)) == pytest.approx(2.88e-6 * 1e11**0.56)
    assert float(pot.n_gc_burkert_forbes2020(5e12)) == pytest.approx(1000.0)


def test_gc_half_number_scale():
    r_h = np.array([5.0, 10.0, 20.0])
    rt = np.array([8.0, 10.0, 12.0])
    slope = np.array([3.0, 3.5, 4.5])
    a = gc_half_number_scale(r_h, rt, slope)
    for i in range(3):
        f = lambda x, i=i: x * x * gc_density(x, a[i], rt[i] * r_h[i], slope[i])  # noqa: E731
        frac = quad(f, 0, r_h[i], limit=200)[0] / quad(f, 0, rt[i] * r_h[i], limit=200)[0]
        assert frac == pytest.approx(0.5, abs=2e-3)


def test_sluggs_error_distribution():
    e = draw_sluggs_errors(np.random.default_rng(0), (200000,))
    q = np.asarray(SLUGGS_E_HRV_QUANTILES)
    assert e.min() >= q[0] and e.max() <= q[-1]
    np.testing.assert_allclose(np.percentile(e, [25, 50, 75]), [q[5], q[10], q[15]], rtol=0.03)


def test_early_families_simulate():
    from gcml.simulate.galaxies import EARLY_PRIORS, SimulateMapsConfig, simulate_galaxies

    cfg = SimulateMapsConfig(families=("early", "early-ood"), n_galaxies=12, views=3, seed=4, v_error_model="sluggs")
    r = simulate_galaxies(range(12), cfg)
    m, t = r["meta"], r["targets"]
    early = m["family"] == "early"
    ood = m["family"] == "early-ood"
    assert early.sum() == 18 and ood.sum() == 18
    lm = np.log10(m["m200"])
    assert np.all((lm >= 11.0) & (lm <= 14.5))
    assert np.all(np.isnan(m["einasto_alpha"][early])) and np.all(m["einasto_alpha"][ood] > 0)
    assert np.all(np.isfinite(m["red_fraction"][ood]))
    assert np.all((m["gc_slope"][ood] >= 4.5) & (m["f_rot"][ood] >= 0.3))
    lo, hi = EARLY_PRIORS["beta_inf"]
    assert np.all((m["beta_inf"][early] >= lo) & (m["beta_inf"][early] <= hi))
    # stellar masses dominated by the spheroid, total mass = bound halo + stars
    assert np.all(m["m_bulge"] >= 0.7 * m["mstar"])
    np.testing.assert_allclose(10 ** t["log10_mass_total"], m["m_halo_bound"] + m["mstar"], rtol=1e-5)
    # enclosed masses increase outwards
    assert np.all(np.diff(np.stack([t[f"log10_mass_within_{k}kpc"] for k in (5, 10, 20, 50)]), axis=0) > 0)
    assert np.all(np.isfinite(r["maps"]))
    # same seed, same bytes
    r2 = simulate_galaxies(range(12), cfg)
    assert np.array_equal(r["maps"], r2["maps"])
