"""Initial mass functions: the Kroupa (2001) broken power law, sampled by inverse transform (vectorised).

Kroupa (2001, MNRAS 322, 231, Eq. 2): ``xi(m) = dN/dm ∝ m^-alpha`` with

=====================  =========
mass range [Msun]      alpha
=====================  =========
0.01 - 0.08            0.3
0.08 - 0.5             1.3
0.5 - (upper limit)    2.3
=====================  =========

continuous at the break masses.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gcml.errors import InputError
from gcml.random import SeedLike, make_rng

KROUPA_BREAKS = (0.01, 0.08, 0.5)
KROUPA_SLOPES = (0.3, 1.3, 2.3)


def _segments(m_min: float, m_max: float, breaks: Sequence[float], slopes: Sequence[float]):
    """Segment edges, slopes and continuous normalisations of a broken power law on [m_min, m_max]."""
    if not (0 < m_min < m_max) or not np.isfinite(m_max):
        raise InputError(f"IMF mass range: expected 0 < m_min < m_max, got m_min={m_min}, m_max={m_max}")
    if len(breaks) != len(slopes):
        raise InputError("IMF: 'breaks' (lower edges) and 'slopes' must have the same length")
    if m_min < breaks[0]:
        raise InputError(f"IMF mass range: m_min={m_min} is below the lowest segment edge {breaks[0]} Msun")
    edges = list(breaks) + [np.inf]
    # Coefficients k_i making xi continuous: k_0 = 1, k_i = k_{i-1} b_i^(alpha_i - alpha_{i-1}).
    k = [1.0]
    for i in range(1, len(slopes)):
        k.append(k[-1] * breaks[i] ** (slopes[i] - slopes[i - 1]))
    lo, hi, a, c = [], [], [], []
    for i in range(len(slopes)):
        l_, h_ = max(edges[i], m_min), min(edges[i + 1], m_max)
        if h_ > l_:
            lo.append(l_)
            hi.append(h_)
            a.append(slopes[i])
            c.append(k[i])
    return np.array(lo), np.array(hi), np.array(a), np.array(c)


def _power_integral(lo, hi, alpha, p=0.0):
    """∫_lo^hi m^(p - alpha) dm, elementwise."""
    e = 1.0 + p - alpha
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(np.abs(e) < 1e-12, np.log(hi / lo), (hi**e - lo**e) / np.where(e == 0, 1, e))
    return out


def broken_power_law_pdf(m: np.ndarray, *, m_min: float = 0.1, m_max: float = 50.0,
                         breaks: Sequence[float] = KROUPA_BREAKS,
                         slopes: Sequence[float] = KROUPA_SLOPES) -> np.ndarray:
    """Normalised probability density dN/dm [1/Msun] of a continuous broken power law on [m_min, m_max]."""
    lo, hi, a, c = _segments(m_min, m_max, breaks, slopes)
    norm = float(np.sum(c * _power_integral(lo, hi, a)))
    m = np.asarray(m, dtype=float)
    idx = np.clip(np.searchsorted(lo, m, side="right") - 1, 0, lo.size - 1)
    inside = (m >= m_min) & (m <= m_max)
    return np.where(inside, c[idx] * m ** (-a[idx]) / norm, 0.0)


def mean_mass(*, m_min: float = 0.1, m_max: float = 50.0, breaks: Sequence[float] = KROUPA_BREAKS,
              slopes: Sequence[float] = KROUPA_SLOPES) -> float:
    """Mean stellar mass [Msun] of the IMF on [m_min, m_max] (0.610 Msun for Kroupa 0.1-50 Msun)."""
    lo, hi, a, c = _segments(m_min, m_max, breaks, slopes)
    return float(np.sum(c * _power_integral(lo, hi, a, 1.0)) / np.sum(c * _power_integral(lo, hi, a)))


def sample_broken_power_law(n: int, *, m_min: float, m_max: float, breaks: Sequence[float],
                            slopes: Sequence[float], seed: SeedLike = None) -> np.ndarray:
    """Draw ``n`` masses from a continuous broken power law by inverse-transform sampling.

    A segment is chosen for each star with probability equal to its share of the integral, then the mass
    is ``m = [lo^e + u (hi^e - lo^e)]^(1/e)`` with ``e = 1 - alpha`` (``lo exp(u ln(hi/lo))`` for alpha = 1).
    """
    if n < 0:
        raise InputError(f"IMF: number of stars must be >= 0, got {n}")
    rng = make_rng(seed)
    lo, hi, a, c = _segments(m_min, m_max, breaks, slopes)
    w = c * _power_integral(lo, hi, a)
    cdf = np.cumsum(w) / w.sum()
    u1 = rng.random(n)
    u2 = rng.random(n)
    seg = np.minimum(np.searchsorted(cdf, u1, side="right"), lo.size - 1)
    e = 1.0 - a[seg]
    L, H = lo[seg], hi[seg]
    log_case = np.abs(e) < 1e-12
    e_safe = np.where(log_case, 1.0, e)
    m_pow = (L**e_safe + u2 * (H**e_safe - L**e_safe)) ** (1.0 / e_safe)
    m_log = L * np.exp(u2 * np.log(H / L))
    return np.where(log_case, m_log, m_pow)


def sample_kroupa(n: int, *, m_min: float = 0.1, m_max: float = 50.0, seed: SeedLike = None) -> np.ndarray:
    """Draw ``n`` stellar masses [Msun] from the Kroupa (2001) IMF between ``m_min`` and ``m_max``.

    Examples
    --------
    >>> m = sample_kroupa(50_000, m_min=0.1, m_max=50, seed=1)   # the pi-DOC initial conditions
    """
    return sample_broken_power_law(n, m_min=m_min, m_max=m_max, breaks=KROUPA_BREAKS,
                                   slopes=KROUPA_SLOPES, seed=seed)
