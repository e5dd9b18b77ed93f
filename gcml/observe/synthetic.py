"""Synthetic Pan-STARRS1-style FITS cutouts made from gcml mock images with known truth.

No real PS1 file can be fetched here, so tests and examples turn a gcml mock (V-band flux per pixel
``F = L_V/(4 pi d^2)`` [Lsun/kpc^2], 0.25" pixels) into what the PS1 stack archive delivers
(``../shared/data/ps1/ps1_stack_header_examples.txt``): counts in one band with zero point
``25 + 2.5 log10(EXPTIME)``, optionally asinh-compressed (``BSOFTEN``, ``BOFFSET``; the archive's full
skycells), a 3-pixel NaN border, the obsolete ``PC001001`` WCS keywords, ``FPA.FILTER`` and ``FPA.ZP``.

The band conversion inverts the one :mod:`gcml.prediction.images` applies: ``F_r = F_V 10^(0.4 (V - r))``
with ``V - r`` from Kostov & Bonev (2018) at the given ``g - r``, and ``F_g = F_r 10^(-0.4 (g - r))``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from gcml.errors import InputError


def ps1_cutout_from_flux(flux_v: np.ndarray, *, ra: float, dec: float, band: str = "r", g_minus_r: float = 0.5,
                         size: int = 240, pixel_scale: float = 0.25, exptime: float = 600.0,
                         sky_sigma_mag: float | None = None, seed: int = 0, nan_border: int = 3,
                         asinh: bool = True, extinction_v: float = 0.0) -> tuple[np.ndarray, list[tuple]]:
    """A PS1-style image (data, header cards) of a gcml V-band flux map placed at the centre.

    Parameters
    ----------
    flux_v : (H, W) gcml flux per pixel [Lsun/kpc^2] at ``pixel_scale``
    ra, dec : sky position of the image centre [deg]
    band : "g" or "r"
    g_minus_r : colour used to convert V into the band (PS1, Kostov & Bonev 2018)
    size : side of the cutout [px] (PS1 default cutout: 240)
    exptime : EXPTIME [s]; the zero point is 25 + 2.5 log10(EXPTIME)
    sky_sigma_mag : add Gaussian sky noise whose rms per pixel is this many mag/arcsec^2 (None: no noise)
    nan_border : NaN pixels along every edge (PS1 cutouts have 3)
    asinh : store asinh-compressed values with BSOFTEN/BOFFSET (as full PS1 skycells)
    extinction_v : foreground A_V [mag] applied (the image is made fainter)
    """
    from gcml.physics.photometry import FLUX_ZP
    from gcml.physics.photometry import v_over_r_flux_factor as _colour_factor

    f = np.asarray(flux_v, float)
    h, w = f.shape
    if size < max(h, w):
        raise InputError(f"synthetic cutout: size {size} px is smaller than the map ({h} x {w})")
    if band not in ("g", "r"):
        raise InputError(f"synthetic cutout: band must be g or r, got '{band}'")
    zp = 25.0 + 2.5 * math.log10(exptime)
    fr = f / _colour_factor("ps1", g_minus_r)
    fb = fr if band == "r" else fr * 10 ** (-0.4 * g_minus_r)
    # counts = F 4 pi 10^(0.4 (zp - A_V - FLUX_ZP))  (inverse of images.counts_to_flux_factor)
    counts_map = fb * 4 * math.pi * 10 ** (0.4 * (zp - extinction_v - FLUX_ZP))
    img = np.zeros((size, size))
    y0, x0 = (size - h) // 2, (size - w) // 2
    img[y0:y0 + h, x0:x0 + w] = counts_map
    if sky_sigma_mag is not None:
        sigma = 10 ** (-0.4 * (sky_sigma_mag - zp)) * pixel_scale**2
        img = img + np.random.default_rng(seed).normal(0.0, sigma, img.shape)
    cards: list[tuple] = []
    if asinh:
        a = 2.5 * math.log10(math.e)
        boff = float(np.median(img))
        bsoft = float(math.sqrt(a) * max(img.std(), 1e-3))
        img = a * np.arcsinh((img - boff) / (2.0 * bsoft))
        cards += [("BSOFTEN", bsoft, "Scaling: LINEAR = 2 * BSOFTEN * sinh(TRUE/a)"),
                  ("BOFFSET", boff, "Scaling: UNCOMP = BOFFSET + LINEAR")]
    if nan_border:
        img[:nan_border] = img[-nan_border:] = np.nan
        img[:, :nan_border] = img[:, -nan_border:] = np.nan
    s = pixel_scale / 3600.0
    cards = [("CTYPE1", "RA---TAN"), ("CTYPE2", "DEC--TAN"), ("CRVAL1", float(ra)), ("CRVAL2", float(dec)),
             ("CRPIX1", (size + 1) / 2.0), ("CRPIX2", (size + 1) / 2.0), ("CDELT1", s), ("CDELT2", s),
             ("PC001001", -1.0), ("PC001002", 0.0), ("PC002001", 0.0), ("PC002002", 1.0),
             ("EXPTIME", float(exptime), "sum of input exposure times"), ("HIERARCH FPA.ZP", 25.0),
             ("HIERARCH FPA.FILTER", f"{band}.00000"), ("HIERARCH FPA.TELESCOPE", "PS1"),
             ("PSCAMERA", "GPC1"), ("PSFORMAT", "SKYCELL")] + cards
    return img.astype(np.float32), cards


def write_ps1_cutout(path: str | Path, flux_v: np.ndarray, *, overwrite: bool = False,
                     extra_cards: list[tuple] = (), **kwargs) -> Path:
    """Write :func:`ps1_cutout_from_flux` to a FITS file (primary HDU, like PS1 cutouts); returns the path.

    ``extra_cards``: more (key, value, comment) cards, e.g. the truth of the mock (``gcml mock-observe --fits
    DIR --flavour ps1`` writes the mass in the field, age and distance as GCML* cards)."""
    from astropy.io import fits

    from gcml.io.common import atomic_output
    from gcml.io.fits import set_cards

    data, cards = ps1_cutout_from_flux(flux_v, **kwargs)
    hdr = fits.Header()
    set_cards(hdr, [*cards, *extra_cards])  # as every gcml FITS: FITS units, over-long comments dropped
    out = Path(path)
    with atomic_output(out, overwrite=overwrite) as tmp:
        fits.PrimaryHDU(data=data, header=hdr).writeto(tmp)
    return out
