"""Moffat and Gaussian kernels: closed forms, normalisation, and the FWHM seen on a single-star image."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, optimize
from scipy.interpolate import CubicSpline

from gcml.errors import ConfigError
from gcml.observe.photometric import ImageGeometry, PhotometricImager
from gcml.observe.psf import (
    gaussian_kernel,
    moffat_alpha,
    moffat_enclosed,
    moffat_fwhm,
    moffat_kernel,
    moffat_profile,
    moffat_radius,
)


def test_moffat_alpha_fwhm_closed_form():
    # beta = 2.5: FWHM = 2 alpha sqrt(2^0.4 - 1) = 1.13753... alpha
    assert moffat_alpha(1.0, 2.5) == pytest.approx(1.0 / (2 * math.sqrt(2 ** 0.4 - 1)), rel=1e-12)
    assert moffat_fwhm(moffat_alpha(3.7, 4.0), 4.0) == pytest.approx(3.7, rel=1e-12)
    # half maximum at r = FWHM / 2
    assert moffat_profile(0.75, 1.5) / moffat_profile(0.0, 1.5) == pytest.approx(0.5, rel=1e-12)


def test_moffat_profile_integrates_to_one_and_enclosed_fraction():
    fw, beta = 4.0, 2.5
    tot, _ = integrate.quad(lambda r: 2 * math.pi * r * moffat_profile(r, fw, beta), 0, np.inf)
    assert tot == pytest.approx(1.0, rel=1e-8)
    r = 7.3
    inside, _ = integrate.quad(lambda x: 2 * math.pi * x * moffat_profile(x, fw, beta), 0, r)
    assert moffat_enclosed(r, fw, beta) == pytest.approx(inside, rel=1e-8)
    assert moffat_enclosed(moffat_radius(fw, beta, 0.99), fw, beta) == pytest.approx(0.99, rel=1e-10)


@pytest.mark.parametrize("fwhm_px", [2.0, 4.0, 6.0])
def test_moffat_kernel_normalised_symmetric(fwhm_px):
    k = moffat_kernel(fwhm_px)
    r = k.shape[0] // 2
    assert k.shape == (2 * r + 1, 2 * r + 1)
    assert k.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.unravel_index(k.argmax(), k.shape) == (r, r)
    np.testing.assert_allclose(k, k.T, rtol=1e-12)
    np.testing.assert_allclose(k, k[::-1, ::-1], rtol=1e-12)
    # default radius holds >= 99.9 % of the analytic flux
    assert moffat_enclosed(r, fwhm_px) >= 0.999


def test_gaussian_kernel_moments():
    k = gaussian_kernel(4.0)
    r = k.shape[0] // 2
    assert r == 16 and k.sum() == pytest.approx(1.0, abs=1e-12)
    y, x = np.mgrid[-r:r + 1, -r:r + 1]
    # second moment of a Gaussian truncated at 4 sigma: sigma^2 (1 - 4 phi(4) / (2 Phi(4) - 1)) ~ 0.99945 sigma^2
    assert (k * x * x).sum() == pytest.approx(16.0, rel=2e-3)
    assert gaussian_kernel(0.0).tolist() == [[1.0]]
    with pytest.raises(ConfigError):
        gaussian_kernel(-1.0)


def _single_star(fwhm_arcsec: float, pixel_scale: float = 0.25) -> np.ndarray:
    imager = PhotometricImager(ImageGeometry(40.0, pixel_scale), smoothing_px=0.0)
    # a star exactly at the centre of pixel (80, 80): offset half a pixel from the field centre
    xy = np.array([[0.5, 0.5]]) * pixel_scale / (206.26480624709636 / 10.0)
    res = imager.images(xy, np.array([1.0]), np.array([1.0]), distance_kpc=np.array([10.0]),
                        psf_fwhm=np.array([fwhm_arcsec]))
    return res.flux[0].astype(np.float64)


@pytest.mark.parametrize("fwhm", [0.5, 1.0, 1.5])
def test_fwhm_measured_on_single_star_image(fwhm):
    img = _single_star(fwhm)
    assert np.unravel_index(img.argmax(), img.shape) == (80, 80)
    # (1) model-free: half-maximum crossing of the row through the star, by cubic-spline interpolation
    row = img[80] / img[80, 80]
    x = np.arange(row.size) - 80.0
    spl = CubicSpline(x[70:91], row[70:91])
    right = optimize.brentq(lambda t: spl(t) - 0.5, 0.0, 10.0)
    left = optimize.brentq(lambda t: spl(t) - 0.5, -10.0, 0.0)
    assert (right - left) * 0.25 == pytest.approx(fwhm, rel=0.02)

    # (2) a 2D Moffat fit with free alpha, beta, amplitude
    yy, xx = np.mgrid[0:160, 0:160]
    r = np.hypot(xx - 80, yy - 80).ravel()
    sel = r < 25

    def model(rr, amp, alpha, beta):
        return amp * (1 + (rr / alpha) ** 2) ** (-beta)

    p, _ = optimize.curve_fit(model, r[sel], img.ravel()[sel], p0=(img.max(), 2.0, 2.0))
    assert moffat_fwhm(p[1], p[2]) * 0.25 == pytest.approx(fwhm, rel=0.02)
    assert p[2] == pytest.approx(2.5, rel=0.02)


def test_bad_psf():
    with pytest.raises(ConfigError, match="FWHM"):
        moffat_alpha(0.0)
    with pytest.raises(ConfigError, match="beta"):
        moffat_alpha(1.0, beta=1.0)
    imager = PhotometricImager(ImageGeometry())
    with pytest.raises(ConfigError, match="`psf_fwhm`"):
        imager.images(np.zeros((1, 2)), np.ones(1), np.ones(1), distance_kpc=np.array([10.0]),
                      psf_fwhm=np.array([-1.0]))
