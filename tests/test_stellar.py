"""Stellar-evolution table lookup against direct SSE runs, and the photometric relations."""

from __future__ import annotations

import numpy as np
import pytest

from gcml.errors import InputError
from gcml.physics import photometry as ph
from gcml.physics.imf import KROUPA_SLOPES, sample_kroupa
from gcml.physics.stellar import evolve_stars, load_stellar_table, tracks_at

# Direct SSE runs (Hurley et al. 2000 via COSMIC 4.3.3, windflag 0, remnantflag 4) at masses and
# metallicities that are NOT grid points of the table:
# (Z, M0 [Msun], t_ms [Myr], type at 12 Gyr, mass at 12 Gyr [Msun]).
SSE_REFERENCE = [
    (0.001, 1.1, 4629.24, 11, 0.46),
    (0.001, 3.3, 232.53, 11, 0.7032),
    (0.001, 7.7, 40.47, 13, 1.2776),
    (0.001, 25.0, 7.89, 14, 12.599),
    (0.001, 60.0, 4.22, 14, 14.0959),
    (0.0005, 0.85, 10961.26, 11, 0.46),
    (0.0005, 1.1, 4411.21, 11, 0.46),
    (0.0005, 3.3, 223.51, 11, 0.7031),
    (0.0005, 7.7, 39.73, 13, 1.2776),
    (0.0005, 25.0, 7.85, 14, 13.1326),
]
# Initial-mass thresholds at Z = 0.001 and 12 Gyr from the same SSE runs (step 0.002 / 0.02 / 0.1 Msun):
# white dwarfs from 0.856, neutron stars from 6.8, black holes from 16.6 Msun.
M_WD, M_NS, M_BH = 0.856, 6.8, 16.6


@pytest.mark.parametrize(("z", "m0", "t_ms", "k12", "m12"), SSE_REFERENCE)
def test_against_direct_sse(z, m0, t_ms, k12, m12):
    tr = tracks_at(z)
    assert tr.main_sequence_lifetime(m0) == pytest.approx(t_ms, rel=0.03)
    p = tr.lookup(np.array([m0]), 12.0)
    assert int(p.kstar[0]) == k12
    assert p.mass[0] == pytest.approx(m12, rel=0.06)


def test_turnoff_mass_vs_age():
    tr = tracks_at(0.001)
    # SSE: the 0.85 Msun star leaves the main sequence at 11.48 Gyr (Z = 0.001).
    assert tr.turnoff_mass(11.48) == pytest.approx(0.85, rel=0.01)
    ages = np.array([0.1, 0.5, 1, 2, 5, 10, 13])
    mto = np.array([tr.turnoff_mass(a) for a in ages])
    assert np.all(np.diff(mto) < 0)
    # Main-sequence lifetimes at low masses scale close to t ∝ M^-2.5 ... -3.5 (e.g. Hurley et al. 2000).
    slope = np.polyfit(np.log10(mto[3:]), np.log10(ages[3:]), 1)[0]
    assert -4.0 < slope < -2.5
    # Stars just above the turn-off are giants, below it on the main sequence.
    p = tr.lookup(np.array([0.80, 0.845, 0.85, 0.90]), 12.0)
    assert list(p.kstar[:1]) == [1] and 2 <= p.kstar[2] <= 6 and p.kstar[3] >= 10
    # SSE at 12 Gyr: the 0.85 Msun star is a red giant (type 3) with L = 13.68 Lsun, Teff = 5086 K.
    assert p.kstar[2] == 3
    assert p.lum_bol[2] == pytest.approx(13.68, rel=0.1)
    assert p.teff[2] == pytest.approx(5086, rel=0.03)


def test_remnant_fractions_match_sse_thresholds():
    m = sample_kroupa(400_000, m_min=0.1, m_max=50, seed=4)
    p = evolve_stars(m, 12.0, 0.001)
    wd = (p.kstar >= 10) & (p.kstar <= 12)
    ns = p.kstar == 13
    bh = p.kstar == 14

    def frac(lo, hi):  # analytic Kroupa number fraction (alpha = 2.3 above 0.5 Msun)
        a1, a2 = KROUPA_SLOPES[1], KROUPA_SLOPES[2]
        k = 0.5 ** (a2 - a1)
        n_lo = (0.5 ** (1 - a1) - 0.1 ** (1 - a1)) / (1 - a1)
        n_hi = k * (50 ** (1 - a2) - 0.5 ** (1 - a2)) / (1 - a2)
        return k * (hi ** (1 - a2) - lo ** (1 - a2)) / (1 - a2) / (n_lo + n_hi)

    assert wd.mean() == pytest.approx(frac(M_WD, M_NS), rel=0.03)
    assert ns.mean() == pytest.approx(frac(M_NS, M_BH), rel=0.08)
    assert bh.mean() == pytest.approx(frac(M_BH, 50.0), rel=0.10)


def test_mass_to_light_12gyr():
    # Simple stellar population (Kroupa 0.1-50 Msun, Z = 0.001, 12 Gyr, all remnants kept):
    # M/L_V of Milky Way globular clusters is about 1.3-3 (McLaughlin & van der Marel 2005;
    # Baumgardt et al. 2020).
    m = sample_kroupa(300_000, m_min=0.1, m_max=50, seed=5)
    p = evolve_stars(m, 12.0, 0.001)
    ml = p.mass.sum() / p.lum_v.sum()
    assert 1.3 < ml < 3.0
    # Younger populations are brighter per unit mass.
    p5 = evolve_stars(m, 2.0, 0.001)
    assert p5.mass.sum() / p5.lum_v.sum() < 0.6 * ml


def test_zero_age_main_sequence_sun():
    p = evolve_stars(np.array([1.0]), 0.0, 0.02)
    # Direct SSE run (COSMIC 4.3.3) of 1 Msun at Z = 0.02, t = 0: L = 0.6286 Lsun, R = 0.8832 Rsun,
    # Teff = 5493 K (the ZAMS of Tout et al. 1996 used by SSE).
    assert p.lum_bol[0] == pytest.approx(0.6286, rel=0.02)
    assert p.radius[0] == pytest.approx(0.8832, rel=0.01)
    assert p.teff[0] == pytest.approx(5493, rel=0.01)
    assert p.kstar[0] == 1


def test_range_errors():
    with pytest.raises(InputError, match="metallicity"):
        evolve_stars(np.array([1.0]), 1.0, 0.05)
    with pytest.raises(InputError, match="age"):
        evolve_stars(np.array([1.0]), 25.0, 0.001)
    with pytest.raises(InputError, match="initial masses"):
        evolve_stars(np.array([200.0]), 1.0, 0.001)


def test_table_is_small_and_complete():
    t = load_stellar_table()
    assert t.masses[0] <= 0.08 and t.masses[-1] >= 120
    assert np.all(np.isfinite(t.fields["log_l"])) and np.all(t.kstar >= 0)


# --- photometry -----------------------------------------------------------------------------------------


def test_reed_bc_polynomial_and_lv():
    # Reed (1998) at the Sun's Teff = 5772 K: x = -0.23851; the polynomial gives -0.180 mag.
    assert float(ph.bc_v_reed1998(5772.0)) == pytest.approx(-0.180, abs=0.002)
    assert float(ph.bc_v_reed1998(1e4)) == pytest.approx(-0.438)  # x = 0: the constant term
    # M_V = M_bol - BC_V, with M_bol = 4.74 - 2.5 log L and L_V = 10^(-0.4 (M_V - 4.83)).
    lum, teff = np.array([100.0, 0.5]), np.array([4500.0, 3800.0])
    mv = 4.74 - 2.5 * np.log10(lum) - ph.bc_v_reed1998(teff)
    np.testing.assert_allclose(ph.lum_v_from_bolometric(lum, teff), 10 ** (-0.4 * (mv - 4.83)), rtol=1e-12)
    np.testing.assert_allclose(ph.abs_mag_v(ph.lum_v_from_abs_mag(mv)), mv)
    assert ph.lum_v_from_bolometric(np.array([0.0]), np.array([5000.0]))[0] == 0.0
    assert float(ph.distance_modulus(10.0)) == pytest.approx(15.0)


def test_filter_transforms():
    # Kostov & Bonev (2018): g - r = 0.5 -> V = r - 0.020 + 0.251 - 0.002.
    assert float(ph.v_from_ps1(15.5, 15.0)) == pytest.approx(15.0 - 0.020 + 0.251 - 0.002)
    with pytest.raises(InputError, match="outside"):
        ph.v_from_ps1(np.array([18.0]), np.array([15.0]), out_of_range="raise")
    assert float(ph.v_from_ps1(18.0, 15.0, out_of_range="clip")) == pytest.approx(
        15.0 - 0.020 + 0.502 * 2.3 - 0.008 * 2.3**2)
    assert float(ph.v_from_sdss(15.5, 15.0)) == pytest.approx(15.5 - 0.295 - 0.01)
    assert float(ph.v_from_sdss(15.5, 15.0, relation="lupton2005")) == pytest.approx(15.5 - 0.2892 - 0.0038)
