"""Refine a catalogue position on the cluster light, so that pi-DOC's field does not depend on it.

Catalogue positions (Harris 2010, a user's ``--ra/--dec``) are good to an arcsecond or so, and a field
moved by a fraction of an arcsecond changes every pixel the network sees. :func:`refine_centre` moves the
field centre to the light-weighted centre of the cluster, found the way the training mocks find the
centre of the stars (a shrinking sphere, Power et al. 2003), but on the prepared (smoothed) image:

1. cut out the model's field around the current centre and smooth it like the training images;
2. take the flux-weighted centroid of the pixels within ``radius`` of the centre, counting only flux
   above the field's median (the sky level of a sky-subtracted image, or zero), so that the background
   and negative noise do not pull it;
3. move the centre there, shrink the radius by ``shrink`` (down to ``min_radius``) and repeat until the
   move is below ``tol`` arcsec.

Started from any position within a few arcsec of the cluster, it converges to the same centre to a
small fraction of a pixel, so a catalogue error of 0.5" or 1" gives (nearly) the same field and the
same prediction (``tests/test_predict_image.py`` checks mass and distance). A foreground star within
the first radius can pull the centre; the move is capped at ``max_move`` arcsec and reported.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class CentreRefinement:
    """Result of :func:`refine_centre`: the new centre [deg], the move [arcsec] and the iterations."""

    ra_deg: float
    dec_deg: float
    moved_arcsec: float
    iterations: int
    converged: bool
    capped: bool


def light_centroid(img: np.ndarray, radius_px: float, centre: tuple[float, float] | None = None) -> tuple[float, float]:
    """Flux-weighted centroid (y, x) [px] of ``img`` above its median, inside ``radius_px`` of ``centre``
    (default: the image centre). Returns the centre itself when no pixel has flux above the median."""
    h, w = img.shape
    cy, cx = centre if centre is not None else ((h - 1) / 2.0, (w - 1) / 2.0)
    yy, xx = np.mgrid[0:h, 0:w]
    wgt = np.clip(np.nan_to_num(img - np.nanmedian(img)), 0.0, None)
    wgt = np.where((yy - cy) ** 2 + (xx - cx) ** 2 <= radius_px**2, wgt, 0.0)
    s = wgt.sum()
    if not s > 0:
        return cy, cx
    return float((wgt * yy).sum() / s), float((wgt * xx).sum() / s)


def refine_centre(field_at: Callable[[float, float], tuple[np.ndarray, Any]], ra: float, dec: float,
                  pixel_scale: float, *, radius: float = 8.0, min_radius: float = 3.0, shrink: float = 0.8,
                  tol: float = 0.005, max_iter: int = 30, max_move: float = 5.0) -> CentreRefinement:
    """Shrinking-aperture light centroid (module docstring).

    Parameters
    ----------
    field_at : function (ra, dec) -> (prepared image (H, W) centred there, its WCS)
    ra, dec : starting centre [deg]
    pixel_scale : arcsec per pixel of the prepared image
    radius, min_radius : first and last aperture radius [arcsec]
    shrink : factor applied to the radius after each step
    tol : stop when the centre moves less than this [arcsec]
    max_move : never move further than this from the start [arcsec]
    """
    ra0, dec0 = ra, dec
    r = radius
    converged = capped = False
    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        img, wcs = field_at(ra, dec)
        cy, cx = light_centroid(img, r / pixel_scale)
        new_ra, new_dec = (float(v) for v in wcs.pixel_to_world_values(cx, cy))
        step = _sep_arcsec(ra, dec, new_ra, new_dec)
        ra, dec = new_ra, new_dec
        total = _sep_arcsec(ra0, dec0, ra, dec)
        if total > max_move:  # pull back onto the cap, along the same direction
            f = max_move / total
            ra = ra0 + (ra - ra0) * f
            dec = dec0 + (dec - dec0) * f
            capped = True
            break
        if step < tol and r <= min_radius + 1e-9:
            converged = True
            break
        r = max(min_radius, r * shrink)
    return CentreRefinement(float(ra), float(dec), _sep_arcsec(ra0, dec0, ra, dec), n_iter, converged, capped)


def _sep_arcsec(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    d = math.radians
    c = math.sin(d(dec1)) * math.sin(d(dec2)) + math.cos(d(dec1)) * math.cos(d(dec2)) * math.cos(d(ra1 - ra2))
    return math.degrees(math.acos(min(1.0, max(-1.0, c)))) * 3600.0
