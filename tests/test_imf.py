"""Kroupa (2001) IMF sampling reproduces the published slopes and mass fractions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate

from gcml.errors import InputError
from gcml.physics.imf import (
    broken_power_law_pdf,
    mean_mass,
    sample_broken_power_law,
    sample_kroupa,
)


def _mle_slope(m: np.ndarray, lo: float, hi: float) -> float:
    """Maximum-likelihood exponent alpha of dN/dm ∝ m^-alpha truncated to [lo, hi]."""
    from scipy.optimize import brentq

    x = m[(m >= lo) & (m < hi)]
    mean_log = np.log(x).mean()

    def score(alpha):
        e = 1 - alpha
        if abs(e) < 1e-9:
            return mean_log - 0.5 * (np.log(lo) + np.log(hi))
        # d/dalpha of the log-likelihood per star = 0  <=>  E[ln m] under the model = sample mean
        model = (hi**e * np.log(hi) - lo**e * np.log(lo)) / (hi**e - lo**e) - 1 / e
        return model - mean_log

    return brentq(score, -3, 6)


def test_kroupa_slopes():
    m = sample_kroupa(400_000, m_min=0.01, m_max=50, seed=1)
    assert m.min() >= 0.01 and m.max() <= 50
    assert _mle_slope(m, 0.01, 0.08) == pytest.approx(0.3, abs=0.05)
    assert _mle_slope(m, 0.08, 0.5) == pytest.approx(1.3, abs=0.03)
    assert _mle_slope(m, 0.5, 50) == pytest.approx(2.3, abs=0.03)


def test_kroupa_fractions_and_mean_mass():
    # Number fraction above 0.5 Msun and mean mass from the analytic integrals of Kroupa's Eq. 2.
    k1 = 0.5 ** (2.3 - 1.3)  # continuity at 0.5 Msun
    n_low = (0.5**-0.3 - 0.1**-0.3) / -0.3
    n_high = k1 * (50**-1.3 - 0.5**-1.3) / -1.3
    m_low = (0.5**0.7 - 0.1**0.7) / 0.7
    m_high = k1 * (50**-0.3 - 0.5**-0.3) / -0.3
    frac_high = n_high / (n_low + n_high)
    mbar = (m_low + m_high) / (n_low + n_high)
    assert mean_mass() == pytest.approx(mbar, rel=1e-10)
    assert mbar == pytest.approx(0.610, abs=0.001)
    m = sample_kroupa(200_000, seed=2)
    assert np.mean(m > 0.5) == pytest.approx(frac_high, abs=0.003)
    assert m.mean() == pytest.approx(mbar, rel=0.01)


def test_pdf_normalised_and_continuous():
    total, _ = integrate.quad(lambda x: broken_power_law_pdf(np.array([x]))[0], 0.1, 50,
                              points=[0.5], limit=200)
    assert total == pytest.approx(1.0, rel=1e-6)
    eps = 1e-9
    left, right = broken_power_law_pdf(np.array([0.5 - eps, 0.5 + eps]))
    assert left == pytest.approx(right, rel=1e-6)


def test_seed_reproducible_and_slope_one():
    a = sample_kroupa(1000, seed=7)
    b = sample_kroupa(1000, seed=7)
    np.testing.assert_array_equal(a, b)
    # alpha = 1 (the logarithmic case): ln m uniform on [ln 1, ln 10].
    m = sample_broken_power_law(100_000, m_min=1, m_max=10, breaks=[1], slopes=[1.0], seed=3)
    assert np.log(m).mean() == pytest.approx(0.5 * np.log(10), rel=0.01)


def test_bad_ranges():
    with pytest.raises(InputError, match="0 < m_min < m_max"):
        sample_kroupa(10, m_min=5, m_max=1)
    with pytest.raises(InputError, match="below the lowest segment"):
        sample_kroupa(10, m_min=0.001)
