"""Point-spread functions and smoothing kernels on a pixel grid.

The pi-DOC mock images (Chardin & Bianchini 2021, MNRAS 504, 5656, Section 2.2) convolve the V-band flux
with a Moffat (1969, A&A 3, 455) PSF of index beta = 2.5,

    I(r) = (beta - 1) / (pi alpha^2) * (1 + (r / alpha)^2)^(-beta),
    FWHM = 2 alpha sqrt(2^(1/beta) - 1),

and then smooth both the flux and the mass maps with a Gaussian of sigma = 4 px. Kernels here are sampled
at pixel centres (as ``astropy.convolution.Moffat2DKernel`` does in its default ``mode='center'``),
truncated at a radius that holds a chosen fraction of the analytic flux, and renormalised so that they
sum to exactly 1: convolving with them conserves the total flux of whatever stays inside the field.
"""

from __future__ import annotations

import math

import numpy as np

from gcml.errors import ConfigError

DEFAULT_BETA = 2.5


def moffat_alpha(fwhm: float, beta: float = DEFAULT_BETA) -> float:
    """Moffat core radius alpha for a FWHM (same unit): alpha = FWHM / (2 sqrt(2^(1/beta) - 1))."""
    _check_positive(fwhm, "PSF FWHM")
    _check_beta(beta)
    return float(fwhm) / (2.0 * math.sqrt(2.0 ** (1.0 / beta) - 1.0))


def moffat_fwhm(alpha: float, beta: float = DEFAULT_BETA) -> float:
    """Inverse of :func:`moffat_alpha`: FWHM = 2 alpha sqrt(2^(1/beta) - 1)."""
    return 2.0 * float(alpha) * math.sqrt(2.0 ** (1.0 / beta) - 1.0)


def moffat_profile(r: np.ndarray, fwhm: float, beta: float = DEFAULT_BETA) -> np.ndarray:
    """Moffat surface brightness at radius ``r``, normalised to unit integral over the plane."""
    a = moffat_alpha(fwhm, beta)
    r = np.asarray(r, float)
    return (beta - 1.0) / (math.pi * a * a) * (1.0 + (r / a) ** 2) ** (-beta)


def moffat_enclosed(r: float | np.ndarray, fwhm: float, beta: float = DEFAULT_BETA) -> np.ndarray:
    """Fraction of a Moffat's flux inside radius ``r``: 1 - (1 + (r/alpha)^2)^(1 - beta)."""
    a = moffat_alpha(fwhm, beta)
    return 1.0 - (1.0 + (np.asarray(r, float) / a) ** 2) ** (1.0 - beta)


def moffat_radius(fwhm: float, beta: float = DEFAULT_BETA, enclosed: float = 0.999) -> float:
    """Radius holding the fraction ``enclosed`` of a Moffat's flux (inverse of :func:`moffat_enclosed`)."""
    if not 0.0 < enclosed < 1.0:
        raise ConfigError(f"PSF enclosed-flux fraction must lie in (0, 1), got {enclosed}")
    a = moffat_alpha(fwhm, beta)
    return a * math.sqrt((1.0 - enclosed) ** (1.0 / (1.0 - beta)) - 1.0)


def moffat_kernel(fwhm_px: float, *, beta: float = DEFAULT_BETA, radius_px: int | None = None,
                  enclosed: float = 0.999) -> np.ndarray:
    """A Moffat PSF kernel sampled at pixel centres, of odd size ``2 R + 1``, summing to 1.

    Parameters
    ----------
    fwhm_px : float
        Full width at half maximum in pixels (``FWHM_arcsec / pixel_scale``).
    beta : float
        Moffat index (2.5 in pi-DOC, a typical seeing profile; Trujillo et al. 2001).
    radius_px : int, optional
        Half-size R of the kernel. Default: the radius holding ``enclosed`` of the analytic flux.
    enclosed : float
        Flux fraction defining the default radius.

    Returns
    -------
    ndarray, float64, shape (2R+1, 2R+1), centred on pixel (R, R).
    """
    if radius_px is None:
        radius_px = max(1, math.ceil(moffat_radius(fwhm_px, beta, enclosed)))
    r = int(radius_px)
    y, x = np.mgrid[-r:r + 1, -r:r + 1]
    k = moffat_profile(np.hypot(x, y), fwhm_px, beta)
    return k / k.sum()


def gaussian_kernel(sigma_px: float, *, truncate: float = 4.0) -> np.ndarray:
    """A circular Gaussian kernel exp(-r^2 / 2 sigma^2) sampled at pixel centres, summing to 1.

    Its half-size is ``ceil(truncate * sigma)`` (as ``scipy.ndimage.gaussian_filter``). ``sigma_px = 0``
    gives the identity kernel ``[[1]]``.
    """
    if not math.isfinite(sigma_px) or sigma_px < 0:
        raise ConfigError(f"smoothing sigma must be >= 0 pixels, got {sigma_px}")
    if sigma_px == 0:
        return np.ones((1, 1))
    r = max(1, math.ceil(truncate * sigma_px))
    g = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma_px) ** 2)
    k = np.outer(g, g)
    return k / k.sum()


def convolve_kernels(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Full 2D convolution of two odd-sized kernels (the kernel of applying both), summing to 1."""
    from scipy.signal import fftconvolve

    k = fftconvolve(a, b, mode="full")
    k = np.clip(k, 0.0, None)
    return k / k.sum()


def _check_positive(value: float, what: str) -> None:
    if not (isinstance(value, (int, float, np.floating)) and math.isfinite(value) and value > 0):
        raise ConfigError(f"{what} must be a positive number, got {value}")


def _check_beta(beta: float) -> None:
    if not (math.isfinite(beta) and beta > 1.0):
        raise ConfigError(f"Moffat beta must be > 1 (finite total flux), got {beta}")
