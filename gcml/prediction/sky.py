"""Sky positions <-> the tangent plane at a galaxy centre (gnomonic / TAN projection, Calabretta & Greisen
2002, A&A 395, 1077, eqs. 54-55), and mock GC catalogues made from simulated positions."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gcml.physics.units import C_KMS


def tangent_plane(ra_deg: np.ndarray, dec_deg: np.ndarray, ra0_deg: float, dec0_deg: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gnomonic (TAN) projection about (ra0, dec0): xi (east), eta (north) in radians, and cos c.

    Calabretta & Greisen (2002, A&A 395, 1077); points with cos c <= 0 are on the far hemisphere.
    """
    a = np.radians(np.asarray(ra_deg, float))
    d = np.radians(np.asarray(dec_deg, float))
    a0, d0 = math.radians(ra0_deg), math.radians(dec0_deg)
    da = a - a0
    cosc = math.sin(d0) * np.sin(d) + math.cos(d0) * np.cos(d) * np.cos(da)
    with np.errstate(divide="ignore", invalid="ignore"):
        xi = np.cos(d) * np.sin(da) / cosc
        eta = (math.cos(d0) * np.sin(d) - math.sin(d0) * np.cos(d) * np.cos(da)) / cosc
    return xi, eta, cosc


def inverse_tangent_plane(xi: np.ndarray, eta: np.ndarray, ra0_deg: float, dec0_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """RA, Dec [deg] of tangent-plane coordinates xi (east), eta (north) [rad] about (ra0, dec0).

    The inverse of :func:`tangent_plane` (Calabretta & Greisen 2002); used to place simulated GC systems on
    the sky (:func:`mock_catalogue`).
    """
    xi = np.asarray(xi, float)
    eta = np.asarray(eta, float)
    a0, d0 = math.radians(ra0_deg), math.radians(dec0_deg)
    rho = np.hypot(xi, eta)
    c = np.arctan(rho)
    sc, cc = np.sin(c), np.cos(c)
    with np.errstate(divide="ignore", invalid="ignore"):
        dec = np.arcsin(cc * math.sin(d0) + np.where(rho > 0, eta * sc * math.cos(d0) / np.where(rho > 0, rho, 1), 0))
    ra = a0 + np.arctan2(xi * sc, rho * math.cos(d0) * cc - eta * math.sin(d0) * sc)
    return np.mod(np.degrees(ra), 360.0), np.degrees(dec)


def mock_catalogue(x_kpc: np.ndarray, y_kpc: np.ndarray, v_los_kms: np.ndarray, *, ra0_deg: float, dec0_deg: float,
                   distance_mpc: float, vsys_kms: float, v_err_kms: np.ndarray | None = None) -> Any:
    """An ``astropy.table.Table`` (RAJ2000, DEJ2000, HRV, e_HRV) of GCs with projected positions x (east),
    y (north) [kpc] and line-of-sight velocities relative to the galaxy [km/s], placed at ``distance_mpc``
    with systemic velocity ``vsys_kms`` (heliocentric HRV = v (1 + v_sys / c) + v_sys, the inverse of the
    correction in :func:`predict_catalogue`). Velocities are written as given: add noise before calling.
    """
    from astropy import units as u
    from astropy.table import Table

    d_kpc = float(distance_mpc) * 1e3
    ra, dec = inverse_tangent_plane(np.asarray(x_kpc) / d_kpc, np.asarray(y_kpc) / d_kpc, ra0_deg, dec0_deg)
    t = Table()
    t["RAJ2000"] = ra * u.deg
    t["DEJ2000"] = dec * u.deg
    t["HRV"] = (np.asarray(v_los_kms, float) * (1.0 + vsys_kms / C_KMS) + vsys_kms) * u.km / u.s
    t["e_HRV"] = (np.zeros(len(ra)) if v_err_kms is None else np.asarray(v_err_kms, float)) * u.km / u.s
    return t
