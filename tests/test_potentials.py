"""Mass models against closed forms and published values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad

from gcml.physics import potentials as pot
from gcml.physics.jeans import batched_interp, jeans_sigma_r
from gcml.physics.units import LITTLE_H, RHO_CRIT, G


def test_rho_crit_and_r200():
    # 3 H0^2 / (8 pi G) = 277.5 h^2 Msun/kpc^3
    assert RHO_CRIT == pytest.approx(277.5 * LITTLE_H**2, rel=2e-3)
    r200 = pot.r200_from_m200(1e12)
    assert 1e12 / (4 / 3 * np.pi * r200**3) == pytest.approx(200 * RHO_CRIT, rel=1e-12)


@pytest.mark.parametrize("c", [4.0, 10.0, 20.0])
def test_nfw_enclosed_mass(c):
    m200 = 3e11
    rs = pot.r200_from_m200(m200) / c
    # M(<r200) = M200 by definition; closed form 4 pi rho_s rs^3 [ln(1+x) - x/(1+x)] against the density
    assert pot.nfw_enclosed_mass(pot.r200_from_m200(m200), m200, c) == pytest.approx(m200, rel=1e-12)
    for r in (1e-3 * rs, 0.3 * rs, rs, 7 * rs):
        num = quad(lambda s: 4 * np.pi * s * s * pot.nfw_density(s, m200, c), 0, r, limit=200)[0]
        assert pot.nfw_enclosed_mass(r, m200, c) == pytest.approx(num, rel=1e-7)
    x = 2.0
    expected = m200 * (np.log(3.0) - 2.0 / 3.0) / (np.log1p(c) - c / (1 + c))
    assert pot.nfw_enclosed_mass(x * rs, m200, c) == pytest.approx(expected, rel=1e-12)


def test_hernquist_enclosed_and_projected_mass():
    m, a = 2e10, 1.5
    assert pot.hernquist_enclosed_mass(a, m, a) == pytest.approx(m / 4)       # M(<a) = M/4
    for r in (0.01, 0.7, 3.0, 40.0):
        num = quad(lambda s: 4 * np.pi * s * s * pot.hernquist_density(s, m, a), 0, r)[0]
        assert pot.hernquist_enclosed_mass(r, m, a) == pytest.approx(num, rel=1e-8)
    assert pot.hernquist_projected_mass(a, m, a) == pytest.approx(m / 3, rel=1e-6)  # Hernquist 1990 eq. 37 at s=1

    def surface(R):
        return 2 * quad(lambda z: pot.hernquist_density(np.hypot(R, z), m, a), 0, np.inf)[0]

    for R in (0.3, 2.0, 9.0):
        num = quad(lambda s: 2 * np.pi * s * surface(s), 0, R, limit=200)[0]
        assert pot.hernquist_projected_mass(R, m, a) == pytest.approx(num, rel=1e-5)
    # R_e = 1.8153 a (Hernquist 1990, eq. 38); exponential disk R_e = 1.6784 R0
    assert pot.projected_half_mass_radius(m_disk=0.0, r_disk=1.0, m_bulge=m, a_bulge=a) == pytest.approx(1.8153 * a, rel=1e-4)
    assert pot.projected_half_mass_radius(m_disk=m, r_disk=2.0, m_bulge=0.0, a_bulge=1.0) == pytest.approx(1.67835 * 2, rel=1e-4)


def test_disk_mass():
    assert pot.disk_enclosed_mass(1e5, 5e10, 3.0) == pytest.approx(5e10)
    num = quad(lambda s: 4 * np.pi * s * s * pot.disk_density_spherical(s, 5e10, 3.0), 0, 7.0)[0]
    assert pot.disk_enclosed_mass(7.0, 5e10, 3.0) == pytest.approx(num, rel=1e-8)


def test_scaling_relations_published_values():
    # Dutton & Maccio 2014: log10 c = 0.905 at M200 = 1e12 / h
    assert np.log10(pot.concentration_dutton_maccio(1e12 / LITTLE_H)) == pytest.approx(0.905)
    assert np.log10(pot.concentration_dutton_maccio(1e14 / LITTLE_H)) == pytest.approx(0.905 - 0.202)
    # Moster et al. 2013: m/M = N = 0.0351 at M = M1 = 10^11.59
    assert pot.stellar_mass_moster2013(10**11.59) / 10**11.59 == pytest.approx(0.0351)
    rng = np.random.default_rng(0)
    c = pot.concentration_dutton_maccio(np.full(20000, 1e12), rng)
    assert np.std(np.log10(c)) == pytest.approx(0.11, rel=0.03)
    assert pot.bulge_size_kpc(1e10) == pytest.approx(3.5)


def test_jeans_hernquist_isotropic_closed_form():
    """Jeans sigma_r of an isotropic Hernquist tracer in its own potential = Hernquist (1990) eq. 10."""
    a = np.array([[0.5], [2.0], [10.0]])
    m = np.array([[1e9], [5e10], [1e12]])
    r = a * np.logspace(-4, 4, 2000)[None, :]
    s = jeans_sigma_r(r, pot.hernquist_density(r, m, a), pot.hernquist_enclosed_mass(r, m, a), 0.0)
    x = np.logspace(np.log10(0.05), np.log10(20), 200)[None, :] * a
    got = batched_interp(np.log(x), np.log(r), s)
    ref = pot.hernquist_sigma_r(x, m, a)
    assert np.max(np.abs(got / ref - 1)) < 0.01
    assert np.max(np.abs(got / ref - 1)) < 1e-3  # in fact much better than the required 1%


def test_jeans_constant_beta_power_law():
    """nu ∝ r^-3 in a point mass: sigma_r^2 = G M / ((4 - 2 beta) r) (scale-free Jeans solution)."""
    r = np.logspace(-2, 6, 3000)
    for beta in (-0.5, 0.0, 0.5):
        s = jeans_sigma_r(r, r ** -3.0 * np.ones((1, 1)), np.full((1, r.size), 1e10), beta)[0]
        sel = (r > 0.1) & (r < 100)
        expected = np.sqrt(G * 1e10 / ((4 - 2 * beta) * r[sel]))
        np.testing.assert_allclose(s[sel], expected, rtol=1e-3)
