"""The spherical Jeans equation with constant or radially varying anisotropy, vectorised over many galaxies.

For a tracer of number density nu(r) in a spherical mass distribution M(r) with constant velocity
anisotropy beta = 1 - sigma_t^2 / sigma_r^2 (sigma_t the dispersion in one tangential direction), the
Jeans equation d(nu sigma_r^2)/dr + 2 beta nu sigma_r^2 / r = -nu G M(r) / r^2 has the solution
(Binney & Tremaine 2008, eq. 4.216; van der Marel 1994)

    nu(r) sigma_r^2(r) = r^(-2 beta) Integral_r^inf r'^(2 beta) nu(r') G M(r') / r'^2 dr'.

For an anisotropy that varies with radius, beta(r) = beta_0 + (beta_inf - beta_0) r^2 / (r^2 + r_a^2)
(Osipkov 1979 and Merritt 1985 for beta_0 = 0, beta_inf = 1; the generalisation of Baes & van Hese 2007),
the integrating factor exp(Integral 2 beta / r dr) is f(r) = r^(2 beta_0) (r^2 + r_a^2)^(beta_inf - beta_0),
and nu sigma_r^2 = f(r)^-1 Integral_r^inf f(r') nu G M / r'^2 dr' (Binney & Tremaine 2008, eq. 4.215).
Constant anisotropy is the case beta_inf = beta_0.

The integral is evaluated with the trapezoidal rule in ln r on a log-spaced grid (one row per galaxy),
accumulated from the outer end; a tracer truncated at r_t (nu = 0 beyond) needs no tail.
"""

from __future__ import annotations

import numpy as np

from gcml.errors import InputError
from gcml.physics.units import G


def anisotropy_profile(r: np.ndarray, beta: np.ndarray | float, beta_inf: np.ndarray | float | None = None,
                       r_a: np.ndarray | float | None = None) -> np.ndarray:
    """beta(r) = beta_0 + (beta_inf - beta_0) r^2 / (r^2 + r_a^2); constant ``beta`` when beta_inf or r_a is None."""
    r = np.asarray(r, float)
    b0 = np.asarray(beta, float)
    if beta_inf is None or r_a is None:
        return np.broadcast_to(b0, np.broadcast(r, b0).shape).copy()
    r2 = r * r
    return b0 + (np.asarray(beta_inf, float) - b0) * r2 / (r2 + np.asarray(r_a, float) ** 2)


def jeans_sigma_r(r: np.ndarray, nu: np.ndarray, mass: np.ndarray, beta: np.ndarray | float = 0.0, *,
                  beta_inf: np.ndarray | float | None = None, r_a: np.ndarray | float | None = None) -> np.ndarray:
    """Radial velocity dispersion sigma_r(r) [km/s] from the spherical Jeans equation.

    Parameters
    ----------
    r : ndarray, shape (K,) or (B, K)
        Increasing radii [kpc], ideally log-spaced, covering the tracer out to where nu vanishes or
        becomes negligible.
    nu : ndarray, shape (B, K)
        Tracer density at ``r`` (any normalisation).
    mass : ndarray, shape (B, K)
        Total enclosed mass M(<r) [Msun].
    beta : float or ndarray broadcastable to (B, 1)
        Anisotropy (beta < 1): constant, or the central value beta_0 when ``beta_inf`` and ``r_a`` are given.
    beta_inf, r_a : float or ndarray broadcastable to (B, 1), optional
        Outer anisotropy (< 1) and transition radius [kpc] of beta(r) = beta_0 + (beta_inf - beta_0)
        r^2 / (r^2 + r_a^2); Osipkov-Merritt is beta_0 = 0, beta_inf = 1 (r_a > 0).

    Returns
    -------
    ndarray, shape (B, K)
        sigma_r; zero where ``nu`` is zero.
    """
    nu = np.atleast_2d(np.asarray(nu, float))
    mass = np.atleast_2d(np.asarray(mass, float))
    r = np.broadcast_to(np.asarray(r, float), nu.shape)
    beta = np.asarray(beta, float)
    if beta.ndim == 1:
        beta = beta[:, None]
    if np.any(beta >= 1.0):
        raise InputError("beta: the velocity anisotropy must be below 1")
    lnr = np.log(r)
    varying = beta_inf is not None and r_a is not None
    if varying:
        binf = np.asarray(beta_inf, float)
        ra = np.asarray(r_a, float)
        if binf.ndim == 1:
            binf = binf[:, None]
        if ra.ndim == 1:
            ra = ra[:, None]
        if np.any(binf > 1.0) or np.any(ra <= 0):
            raise InputError("beta_inf, r_a: expected an outer anisotropy <= 1 and a positive transition radius")
        # ln f = 2 beta_0 ln r + (beta_inf - beta_0) ln(r^2 + r_a^2), relative to its value at the outer end
        # (any constant cancels) so that the powers stay finite.
        lnf = 2.0 * beta * lnr + (binf - beta) * np.log(r * r + ra * ra)
    else:
        lnf = 2.0 * beta * lnr
    lnf = lnf - lnf[:, -1:]
    f = np.exp(lnf - lnr) * nu * G * mass                # integrand per d ln r
    seg = 0.5 * (f[:, 1:] + f[:, :-1]) * np.diff(lnr, axis=1)
    tail = np.concatenate([np.cumsum(seg[:, ::-1], axis=1)[:, ::-1], np.zeros((nu.shape[0], 1))], axis=1)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        s2 = np.where(nu > 0, np.exp(-lnf) * tail / np.where(nu > 0, nu, 1.0), 0.0)
    return np.sqrt(np.maximum(s2, 0.0))


def batched_interp(xq: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Linear interpolation row by row: ``out[b] = np.interp(xq[b], x[b], y[b])`` without a Python loop.

    ``x`` (B, K) must increase along each row; ``xq`` (B, N); values outside are clamped to the ends.
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    xq = np.asarray(xq, float)
    b, k = x.shape
    lo = x[:, :1]
    span = x[:, -1:] - lo
    span = np.where(span > 0, span, 1.0)
    # Map every row into its own interval [2 row, 2 row + 1] so one searchsorted serves all rows.
    off = 2.0 * np.arange(b, dtype=float)[:, None]
    xs = ((x - lo) / span + off).ravel()
    q = np.clip((xq - lo) / span, 0.0, 1.0) + off
    idx = np.searchsorted(xs, q.ravel(), side="right").reshape(q.shape) - 1
    idx = np.clip(idx - (np.arange(b) * k)[:, None], 0, k - 2)
    # The shifted search can be off by one where rounding of the shift matters; settle the segment with
    # the unshifted values so the result does not depend on the row's position in the batch.
    xqc = np.clip(xq, x[:, :1], x[:, -1:])
    idx = np.where((np.take_along_axis(x, idx, 1) > xqc) & (idx > 0), idx - 1, idx)
    idx = np.where((np.take_along_axis(x, idx + 1, 1) <= xqc) & (idx < k - 2), idx + 1, idx)
    x0 = np.take_along_axis(x, idx, 1)
    x1 = np.take_along_axis(x, idx + 1, 1)
    y0 = np.take_along_axis(y, idx, 1)
    y1 = np.take_along_axis(y, idx + 1, 1)
    w = np.where(x1 > x0, (xqc - x0) / np.where(x1 > x0, x1 - x0, 1.0), 0.0)
    return y0 + w * (y1 - y0)
