"""Likely non-members of a GC system: the "friendless" algorithm of Merrett et al. (2003, MNRAS 346, L62).

For each GC, the mean and standard deviation of the line-of-sight velocities of its ``n_neighbours`` nearest
neighbours on the sky are computed; the GC is flagged when its velocity differs from that mean by more
than ``n_sigma`` times the neighbours' spread (with the GC's own velocity error added in quadrature).
SLUGGS (Pota et al. 2013, MNRAS 428, 389) used this rule with 10 neighbours and 3 sigma, and those are
the defaults. The rule is local, so it follows the dispersion profile and rotation of the system, and it
is one pass (no iteration), as in the original.
"""

from __future__ import annotations

import numpy as np

#: Default rule (Merrett et al. 2003 as used by Pota et al. 2013).
N_NEIGHBOURS = 10
N_SIGMA = 3.0


def flag_nonmembers(x: np.ndarray, y: np.ndarray, v: np.ndarray, v_err: np.ndarray | None = None, *,
                    n_neighbours: int = N_NEIGHBOURS, n_sigma: float = N_SIGMA) -> np.ndarray:
    """True for GCs whose velocity is an outlier among their nearest neighbours (see module docstring).

    Parameters
    ----------
    x, y : (N,) projected positions (any common unit)
    v : (N,) line-of-sight velocities [km/s]; v_err : (N,) their errors (default 0)
    n_neighbours : neighbours compared with (fewer when the catalogue is small, at least 5)
    n_sigma : threshold in standard deviations

    Returns
    -------
    (N,) bool, True = likely non-member
    """
    x, y, v = (np.asarray(a, float) for a in (x, y, v))
    n = len(v)
    e = np.zeros(n) if v_err is None else np.asarray(v_err, float)
    k = min(int(n_neighbours), n - 1)
    if k < 5:
        return np.zeros(n, bool)
    d2 = (x[:, None] - x[None, :]) ** 2 + (y[:, None] - y[None, :]) ** 2
    np.fill_diagonal(d2, np.inf)
    nn = np.argpartition(d2, k - 1, axis=1)[:, :k]          # (N, k) nearest neighbours
    vn = v[nn]
    mu = vn.mean(1)
    sd = vn.std(1, ddof=1)
    return np.abs(v - mu) > n_sigma * np.sqrt(sd**2 + e**2)
