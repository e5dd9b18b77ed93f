"""Classical mass estimators used as baselines for the networks.

Tracer mass estimator (TME) of Watkins, Evans & An (2010, MNRAS 406, 264), for projected radii R_i and
line-of-sight velocities v_i of tracers (e.g. GCs) whose number density falls as r^-gamma in a
scale-free potential Phi ∝ r^-alpha with constant anisotropy beta. Their eqs. (24)-(26) give the mass
within the outermost tracer radius r_out:

    M(< r_out) = C / G < v_los^2 R^alpha >,
    C = (alpha + gamma - 2 beta) / I(alpha, beta) r_out^(1 - alpha),
    I(alpha, beta) = sqrt(pi) Gamma(alpha/2 + 1) / (4 Gamma(alpha/2 + 5/2)) [alpha + 3 - beta (alpha + 2)].

For alpha = 0 (flat rotation curve, isothermal potential) this reduces to
M = 3 (gamma - 2 beta) / (3 - 2 beta) r_out <v_los^2> / G. The estimator assumes r_in << r_out.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln

from gcml.errors import InputError
from gcml.physics.units import G


def tme_constant(alpha: float, gamma: float, beta: float) -> float:
    """(alpha + gamma - 2 beta) / I(alpha, beta) of Watkins et al. (2010, eqs. 25-26)."""
    if not (-1.0 <= alpha <= 1.0):
        raise InputError(f"TME alpha: expected -1 <= alpha <= 1 (potential power law), got {alpha}")
    if beta >= 1.0:
        raise InputError(f"TME beta: the anisotropy must be below 1, got {beta}")
    i_ab = np.sqrt(np.pi) * np.exp(gammaln(alpha / 2 + 1) - gammaln(alpha / 2 + 2.5)) / 4.0 * (alpha + 3 - beta * (alpha + 2))
    return float((alpha + gamma - 2 * beta) / i_ab)


def tracer_mass_estimator(
    R: np.ndarray, v_los: np.ndarray, *, mask: np.ndarray | None = None, alpha: float = 0.0,
    gamma: float = 3.0, beta: float = 0.0, r_out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Watkins et al. (2010) mass within r_out from projected radii and line-of-sight velocities.

    Parameters
    ----------
    R : (B, N) projected radii [kpc] from the galaxy centre.
    v_los : (B, N) line-of-sight velocities relative to the systemic velocity [km/s].
    mask : (B, N) bool, optional; False for padding or excluded tracers.
    alpha, gamma, beta : power-law indices of potential, tracer density, and the anisotropy.
    r_out : (B,), optional; defaults to the largest projected radius of each set.

    Returns
    -------
    mass, r_out : (B,) mass [Msun] (NaN where fewer than 2 tracers) and the radius it refers to [kpc].
    """
    R = np.atleast_2d(np.asarray(R, float))
    v = np.atleast_2d(np.asarray(v_los, float))
    m = np.ones(R.shape, bool) if mask is None else np.atleast_2d(np.asarray(mask, bool))
    m = m & np.isfinite(R) & np.isfinite(v)
    n = m.sum(1)
    if r_out is None:
        r_out = np.where(m, R, 0.0).max(1)
    r_out = np.asarray(r_out, float)
    c = tme_constant(alpha, gamma, beta)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(m, v * v * np.where(m, R, 1.0) ** alpha, 0.0).sum(1) / np.maximum(n, 1)
        mass = c / G * mean * r_out ** (1.0 - alpha)
    mass = np.where((n >= 2) & (r_out > 0), mass, np.nan)
    return mass, r_out
