"""Mock V-band images and truth mass maps of star clusters (the pi-DOC training images).

Recipe of Chardin & Bianchini (2021, MNRAS 504, 5656, Section 2.2), with the paper's values as defaults:

1. project the stars along a line of sight and place the cluster at distance d: a star at projected
   offset x [pc] appears at theta = x / d (small angles; 1 pc at 1 kpc = 206.265 arcsec). All stars share
   the cluster's distance d (a cluster's depth, a few pc, changes fluxes by < 0.1 % at d >= 10 kpc);
2. rotate the projected cluster about its centre by 0/90/180/270 degrees and shift its centre by up to
   ``max_shift`` arcsec per axis (done on the star positions, which is exact: stars shifted into the field
   are counted, no pixels wrap around);
3. bin on the pixel grid (default 40" x 40" at 0.25"/px = 160 x 160): the apparent V-band flux
   ``F = sum L_V / (4 pi d^2)`` [Lsun kpc^-2] (docs/conventions.md) and the mass [Msun] of the stars in
   each pixel; stars outside the field are dropped;
4. convolve the flux (not the mass) with a Moffat PSF (beta = 2.5, given FWHM; :mod:`gcml.observe.psf`);
5. smooth both maps with a Gaussian of sigma = 4 px.

Rotation by multiples of 90 degrees and shifts commute with convolution by the circularly symmetric
kernels, so doing 2 before 4-5 equals the paper's order. Steps 4 and 5 are linear, so without noise the
flux goes through one FFT multiplication by the combined (Moffat * Gaussian) kernel. Convolutions are
linear (zero padding, not circular): light leaves the field at the edges, none wraps in, so totals change
only by what leaves the field.

Beyond the paper (all off by default, all seeded): field stars (added before the PSF), sky background,
Poisson and read noise and saturation (applied after the PSF, before the smoothing; the image is returned
sky-subtracted, as survey stacks are).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gcml.errors import ConfigError, InputError
from gcml.observe.config import ImageGeometry, NoiseConfig  # noqa: F401  (re-exported: their home until issue 14)
from gcml.observe.psf import DEFAULT_BETA, convolve_kernels, gaussian_kernel, moffat_kernel

ARCSEC_PER_RAD = 206264.80624709636
#: arcsec subtended by 1 pc at 1 kpc
ARCSEC_PC_PER_KPC = ARCSEC_PER_RAD * 1e-3
M_V_SUN = 4.83  # absolute V magnitude of the Sun (Willmer 2018, ApJS 236, 47)
AXES = ("x", "y", "z")


# ---------------------------------------------------------------------------------------------------
# Flux units


def flux_to_counts_factor(zeropoint: float, exptime: float) -> float:
    """Detected counts per unit of gcml flux (Lsun kpc^-2), for a V-band zero point and exposure time.

    ``m_V = 4.83 - 2.5 log10(F 4 pi 1e-4)`` (docs/conventions.md) and counts = t 10^(-0.4 (m_V - ZP)).
    """
    return exptime * 4.0 * math.pi * 1e-4 * 10.0 ** (0.4 * (zeropoint - M_V_SUN))


def flux_to_mag(flux: np.ndarray) -> np.ndarray:
    """Apparent V magnitude of a flux in Lsun kpc^-2: m_V = 4.83 - 2.5 log10(4 pi 1e-4 F)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return M_V_SUN - 2.5 * np.log10(np.asarray(flux, float) * 4.0 * math.pi * 1e-4)


def flux_to_nanomaggies(flux: np.ndarray) -> np.ndarray:
    """SDSS-style nanomaggies, f = 10^(-0.4 (m_V - 22.5)), of a flux in Lsun kpc^-2 (linear in F)."""
    return np.asarray(flux, float) * 4.0 * math.pi * 1e-4 * 10.0 ** (0.4 * (22.5 - M_V_SUN))


def to_pidoc_flux(flux: np.ndarray, *, four_pi: bool = True, floor: float = 1e-9) -> np.ndarray:
    """The input convention of the published pi-DOC models: log10 of the V flux per pixel [Lsun kpc^-2].

    Parameters
    ----------
    flux : ndarray
        gcml flux maps, ``F = L / (4 pi d^2)`` per pixel.
    four_pi : bool
        True (default) keeps ``L / (4 pi d^2)``, with which the published CNN reads gcml's mocks of old
        clusters at 15-80 kpc with the smaller distance bias; False uses ``L / d^2`` (4 pi times larger).
        docs/mock-observe.md gives the measurement and its caveats.
    floor : float
        Pixels below this flux (empty sky, FFT round-off) are set to it before the logarithm.
    """
    if not floor > 0:
        raise ConfigError(f"pi-DOC flux floor must be > 0, got {floor}")
    f = np.asarray(flux, np.float64) * (1.0 if four_pi else 4.0 * math.pi)
    return np.log10(np.maximum(f, floor))


# ---------------------------------------------------------------------------------------------------
# Geometry of the stars


def projection_matrix(axis: str | tuple[float, float]) -> np.ndarray:
    """3x3 rotation whose rows are the image x, image y and line-of-sight unit vectors.

    ``axis`` is ``"x"``, ``"y"``, ``"z"`` (look along that axis; right-handed cyclic image axes: along z
    the image is (x, y), along x it is (y, z), along y it is (z, x)) or a direction ``(theta, phi)`` in
    radians, for which the image axes are the spherical unit vectors (e_phi, -e_theta).
    """
    if isinstance(axis, str):
        if axis not in AXES:
            raise ConfigError(f"option `axis`: expected x, y, z or random, got '{axis}'")
        i = AXES.index(axis)
        e = np.eye(3)
        return np.stack([e[(i + 1) % 3], e[(i + 2) % 3], e[i]])
    th, ph = (float(a) for a in axis)
    n = np.array([math.sin(th) * math.cos(ph), math.sin(th) * math.sin(ph), math.cos(th)])
    e_phi = np.array([-math.sin(ph), math.cos(ph), 0.0])
    e_th = np.array([math.cos(th) * math.cos(ph), math.cos(th) * math.sin(ph), -math.sin(th)])
    return np.stack([e_phi, -e_th, n])


def cluster_centre(pos: np.ndarray, weights: np.ndarray | None = None, *, shrink: float = 0.8,
                   min_stars: int = 100) -> np.ndarray:
    """Centre of a cluster by the shrinking-sphere method (Power et al. 2003, MNRAS 338, 14).

    Start from the weighted centre of all stars and the sphere holding 90 % of them; repeatedly keep the
    stars within ``shrink`` times the previous radius around the current centre and recompute, until fewer
    than ``min_stars`` (or 1% of the stars) remain. Robust to escapers and tidal tails, unlike the plain centre of mass.
    """
    pos = np.asarray(pos, float)
    w = np.ones(len(pos)) if weights is None else np.asarray(weights, float)
    if len(pos) == 0:
        raise InputError("cannot find the centre of a snapshot with no stars")
    if not w.sum() > 0:
        w = np.ones(len(pos))

    def wmean(p: np.ndarray, ww: np.ndarray) -> np.ndarray:
        return (ww @ p) / ww.sum() if ww.sum() > 0 else p.mean(0)

    def dist2(p: np.ndarray, c: np.ndarray) -> np.ndarray:
        q = p - c
        return np.einsum("ij,ij->i", q, q)

    c = wmean(pos, w)
    d2 = dist2(pos, c)
    # start from the sphere holding 90 % of the stars (escapers beyond it only slow the first steps)
    k = int(0.9 * (len(d2) - 1))
    r = float(np.sqrt(np.partition(d2, k)[k])) / shrink + 1e-12
    stop = max(min_stars, len(pos) // 100)
    p, ww = pos, w
    while True:
        # each sphere lies inside the previous one (up to the centre's small move), so only the stars
        # kept last time are tested: the work shrinks geometrically. The first sphere has the same
        # centre as d2, which is reused.
        r *= shrink
        idx = np.flatnonzero((d2 if p is pos else dist2(p, c)) < r * r)
        if len(idx) < stop:
            break
        p, ww = p[idx], ww[idx]
        c = wmean(p, ww)
    return c


# ---------------------------------------------------------------------------------------------------
# Binning


def bin_views(xy_pc: np.ndarray, weights: np.ndarray, distance_kpc: np.ndarray, geometry: ImageGeometry, *,
              rotation_k: np.ndarray | None = None, shift_arcsec: np.ndarray | None = None,
              ) -> tuple[np.ndarray, np.ndarray]:
    """Bin weighted points onto the pixel grid for many views at once.

    Parameters
    ----------
    xy_pc : (N, 2) float
        Projected positions relative to the cluster centre [pc].
    weights : (N, K) float
        Quantities summed per pixel (e.g. L_V and mass).
    distance_kpc : (B,) float
        Distance of each view.
    rotation_k : (B,) int, optional
        Counter-clockwise rotation by ``90 * k`` degrees about the centre.
    shift_arcsec : (B, 2) float, optional
        Position of the cluster centre relative to the field centre (x, y) [arcsec].

    Returns
    -------
    maps : (B, K, H, W) float64
        Sums of the weights of the stars in each pixel (row = y, ``origin="lower"``).
    inside : (B, K) float64
        Totals of the weights over the stars inside the field (equal to ``maps.sum((2, 3))``).
    """
    xy = np.asarray(xy_pc, np.float64)
    w = np.asarray(weights, np.float64)
    if w.ndim == 1:
        w = w[:, None]
    d = np.atleast_1d(np.asarray(distance_kpc, np.float64))
    b, k = len(d), w.shape[1]
    if np.any(~np.isfinite(d)) or np.any(d <= 0):
        raise ConfigError(f"option `distance_kpc`: distances must be positive kpc, got {d.tolist()}")
    rot = np.zeros(b, int) if rotation_k is None else np.asarray(rotation_k, int) % 4
    sh = np.zeros((b, 2)) if shift_arcsec is None else np.asarray(shift_arcsec, np.float64).reshape(b, 2)
    npx = geometry.n_pix
    ps = geometry.pixel_scale
    npp = npx * npx
    # A rotation by k * 90 deg about the cluster centre followed by the shift equals binning the unrotated
    # cluster shifted by R^-1 shift and then rotating the binned map about the field centre with np.rot90,
    # which is exact because the grid is symmetric about its centre (pixel edges map onto pixel edges).
    cs = np.array([1.0, 0.0, -1.0, 0.0])[rot]
    sn = np.array([0.0, 1.0, 0.0, -1.0])[rot]
    shx = cs * sh[:, 0] + sn * sh[:, 1]
    shy = -sn * sh[:, 0] + cs * sh[:, 1]
    # Only stars within the field's circumscribed circle (about the shifted centre) can land in it: sort
    # the stars by projected radius once, and view b uses the first n_b of them (contiguous slices of the
    # sorted columns, no copies). The views are then binned one after the other: each pass is vectorised
    # over its stars and its arrays (a few hundred kB) stay in the CPU cache, which is ~3x faster than one
    # pass over all views' stars concatenated (tens of MB). The loop is over the handful of views of one
    # snapshot, never over stars or pixels; sums are accumulated in the same order as a single bincount.
    r2 = np.einsum("ij,ij->i", xy, xy)
    order = np.argsort(r2)
    scale = ARCSEC_PC_PER_KPC / d / ps  # pixels per pc, (B,)
    rmax_px = npx / 2 * math.sqrt(2) + np.hypot(shx, shy) / ps + 1.0
    n_b = np.searchsorted(r2[order], (rmax_px / scale) ** 2, side="right")
    sel = order[:int(n_b.max())] if b else order[:0]
    xs, ys = xy[sel, 0], xy[sel, 1]
    ws = [w[sel, j] for j in range(k)]  # K is a handful of quantities, not particles
    offx = shx / ps + npx / 2
    offy = shy / ps + npx / 2
    maps = np.empty((b, k, npx, npx))
    for i in range(b):
        n = int(n_b[i])
        u = xs[:n] * scale[i]
        u += offx[i]
        v = ys[:n] * scale[i]
        v += offy[i]
        # floor, then one unsigned comparison per axis tests 0 <= pixel < npx (negative -> huge unsigned)
        ui = np.floor(u, out=u).astype(np.int64)
        vi = np.floor(v, out=v).astype(np.int64)
        ok = ui.view(np.uint64) < npx
        ok &= vi.view(np.uint64) < npx
        vi *= npx
        vi += ui
        vi[~ok] = npp  # dump bin for stars outside the field
        for j in range(k):
            maps[i, j] = np.bincount(vi, weights=ws[j][:n], minlength=npp + 1)[:npp].reshape(npx, npx)
    for kk in (1, 2, 3):
        sel = rot == kk
        if sel.any():
            maps[sel] = np.rot90(maps[sel], kk, axes=(3, 2))
    inside = maps.sum(axis=(2, 3))
    return maps, inside


# ---------------------------------------------------------------------------------------------------
# Batched FFT convolution


def _next_fast(n: int) -> int:
    from scipy.fft import next_fast_len

    return int(next_fast_len(int(n), real=True))


class FFTConvolver:
    """Linear (zero-padded) 2D convolution of many images at once with cached kernel transforms.

    The kernel's real FFT is computed once per (kernel key, image shape) and reused for every batch, so a
    run with a few PSFs pays for a few kernel FFTs in total. Images are padded to a fast FFT length
    ``L >= H + K // 2``; the output is cropped to the input's shape ('same'). That is all a linear 'same'
    convolution needs: output pixel n of the full convolution (0 <= n < H + K - 1) is kept for
    K//2 <= n < K//2 + H, and the circular wrap-around only moves the terms with n >= L onto n - L
    <= H + K - 2 - L < K//2, outside the crop (shorter than the ``H + K - 1`` of a full linear
    convolution: with the 139-px Moffat*Gaussian kernel of a 1.5" PSF, 240 instead of 300 per side).
    """

    def __init__(self, workers: int = 1) -> None:
        self.workers = max(1, int(workers))
        self._cache: dict[tuple, tuple[np.ndarray, int, int]] = {}

    def kernel_fft(self, key: tuple, kernel: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, int, int]:
        """(rfft2 of the padded kernel, padded length, kernel half-size) for images of ``shape``."""
        ck = (key, shape)
        hit = self._cache.get(ck)
        if hit is not None:
            return hit
        from scipy import fft

        kh, kw = kernel.shape
        r = kh // 2
        length = _next_fast(max(shape) + r)  # no wrap-around into the 'same' crop (class docstring)
        kf = fft.rfft2(kernel.astype(np.float32), s=(length, length), workers=self.workers)
        self._cache[ck] = (kf, length, r)
        return self._cache[ck]

    def convolve(self, images: np.ndarray, key: tuple, kernel: np.ndarray) -> np.ndarray:
        """Convolve ``images`` (B, H, W) with ``kernel`` (odd square); returns float32 (B, H, W)."""
        from scipy import fft

        imgs = np.asarray(images, np.float32)
        b, h, w = imgs.shape
        if kernel.shape == (1, 1):
            return imgs * np.float32(kernel[0, 0])
        kf, length, r = self.kernel_fft(key, kernel, (h, w))
        spec = fft.rfft2(imgs, s=(length, length), workers=self.workers)
        spec *= kf
        full = fft.irfft2(spec, s=(length, length), workers=self.workers)
        return np.ascontiguousarray(full[:, r:r + h, r:r + w])


# ---------------------------------------------------------------------------------------------------
# Noise and contamination


def field_star_fluxes(rng: np.random.Generator, geometry: ImageGeometry, noise: NoiseConfig) -> tuple[
        np.ndarray, np.ndarray]:
    """Draw field stars: pixel flat indices and fluxes [Lsun kpc^-2], uniform over the field.

    Number ~ Poisson(density x area); magnitudes from dN/dm ∝ 10^(slope m) on [m_min, m_max] by inverse
    transform sampling; flux from m_V = 4.83 - 2.5 log10(4 pi 1e-4 F).
    """
    area = (geometry.n_pix * geometry.pixel_scale / 60.0) ** 2
    n = rng.poisson(noise.field_density * area)
    npx = geometry.n_pix
    idx = rng.integers(0, npx * npx, size=n)
    a, m0, m1 = noise.field_slope * math.log(10), noise.field_mag_min, noise.field_mag_max
    uu = rng.random(n)
    if a > 0:
        m = np.log(np.exp(a * m0) + uu * (np.exp(a * m1) - np.exp(a * m0))) / a
    else:
        m = m0 + uu * (m1 - m0)
    flux = 10.0 ** (-0.4 * (m - M_V_SUN)) / (4.0 * math.pi * 1e-4)
    return idx, flux


def apply_detector(flux: np.ndarray, rng: np.random.Generator, geometry: ImageGeometry,
                   noise: NoiseConfig) -> np.ndarray:
    """Sky, Poisson and read noise and saturation on one PSF-convolved flux image; sky-subtracted result."""
    cf = flux_to_counts_factor(noise.zeropoint, noise.exptime)
    counts = np.asarray(flux, np.float64) * cf
    sky = 0.0
    if noise.sky_mag is not None:
        sky = noise.exptime * 10.0 ** (-0.4 * (noise.sky_mag - noise.zeropoint)) * geometry.pixel_scale ** 2
    counts = counts + sky
    if noise.poisson:
        counts = rng.poisson(np.clip(counts, 0.0, None)).astype(np.float64)
    if noise.read_noise > 0:
        counts = counts + rng.normal(0.0, noise.read_noise, size=counts.shape)
    if noise.saturation is not None:
        counts = np.minimum(counts, noise.saturation)
    return (counts - sky) / cf


# ---------------------------------------------------------------------------------------------------
# The images


@dataclass
class PhotometricImages:
    """Mock images of one snapshot.

    Attributes
    ----------
    flux : (B, H, W) float32
        V-band flux per pixel [Lsun kpc^-2] after PSF (and noise) and smoothing.
    mass : (B, H, W) float32
        Mass per pixel [Msun] after smoothing.
    lum_v_fov, mass_fov : (B,) float64
        Totals of the stars inside the field before any convolution [Lsun, Msun].
    flux_fov : (B,) float64
        ``lum_v_fov / (4 pi d^2)``: the raw flux map's total [Lsun kpc^-2].
    """

    flux: np.ndarray
    mass: np.ndarray
    lum_v_fov: np.ndarray
    mass_fov: np.ndarray
    flux_fov: np.ndarray


class PhotometricImager:
    """Makes pi-DOC mock images; holds the kernel caches so that many snapshots reuse them.

    Parameters
    ----------
    geometry : ImageGeometry
    smoothing_px : float
        Gaussian sigma applied to both maps (pi-DOC: 4 px; 0 = none).
    beta : float
        Moffat index of the PSF.
    noise : NoiseConfig, optional
    workers : int
        Threads for the FFTs.
    """

    def __init__(self, geometry: ImageGeometry = ImageGeometry(), *, smoothing_px: float = 4.0,
                 beta: float = DEFAULT_BETA, noise: NoiseConfig | None = None, workers: int = 1) -> None:
        self.geometry = geometry
        self.smoothing_px = float(smoothing_px)
        self.beta = float(beta)
        self.noise = noise or NoiseConfig()
        self.fft = FFTConvolver(workers)
        self._gauss = gaussian_kernel(self.smoothing_px)
        self._kernels: dict[tuple, np.ndarray] = {}

    def psf_kernel(self, fwhm_arcsec: float | None) -> np.ndarray:
        """The Moffat kernel for a FWHM in arcsec (``None`` or 0: no PSF)."""
        if not fwhm_arcsec:
            return np.ones((1, 1))
        key = ("moffat", float(fwhm_arcsec))
        if key not in self._kernels:
            if not fwhm_arcsec > 0:
                raise ConfigError(f"option `psf_fwhm`: FWHM must be a positive number of arcsec, got {fwhm_arcsec}")
            self._kernels[key] = moffat_kernel(fwhm_arcsec / self.geometry.pixel_scale, beta=self.beta)
        return self._kernels[key]

    def combined_kernel(self, fwhm_arcsec: float | None) -> np.ndarray:
        key = ("combined", float(fwhm_arcsec or 0.0))
        if key not in self._kernels:
            self._kernels[key] = convolve_kernels(self.psf_kernel(fwhm_arcsec), self._gauss)
        return self._kernels[key]

    def images(self, xy_pc: np.ndarray, lum_v: np.ndarray, mass: np.ndarray, *, distance_kpc: np.ndarray,
               psf_fwhm: np.ndarray, rotation_k: np.ndarray | None = None,
               shift_arcsec: np.ndarray | None = None, rngs: list[np.random.Generator] | None = None,
               ) -> PhotometricImages:
        """Images of one projected cluster for B views (distance, PSF, rotation, shift per view).

        Parameters
        ----------
        xy_pc : (N, 2) projected positions about the cluster centre [pc]
        lum_v, mass : (N,) V-band luminosity [Lsun] and mass [Msun] of each star
        distance_kpc, psf_fwhm : (B,) distance [kpc] and PSF FWHM [arcsec] of each view
        rotation_k, shift_arcsec : (B,), (B, 2) rotation by 90 k degrees; centre offset [arcsec]
        rngs : one generator per view; needed only when noise or field stars are on
        """
        d = np.atleast_1d(np.asarray(distance_kpc, np.float64))
        fw = np.broadcast_to(np.asarray(psf_fwhm, np.float64), d.shape)
        if np.any(~np.isfinite(fw)) or np.any(fw < 0):
            raise ConfigError(f"option `psf_fwhm`: FWHM must be a positive number of arcsec, got {fw.tolist()}")
        raw, inside = bin_views(xy_pc, np.stack([lum_v, mass], axis=1), d, self.geometry,
                                rotation_k=rotation_k, shift_arcsec=shift_arcsec)
        four_pi_d2 = 4.0 * math.pi * d ** 2
        fluxraw = raw[:, 0] / four_pi_d2[:, None, None]
        massraw = raw[:, 1]
        noise = self.noise
        if noise.active and (rngs is None or len(rngs) != len(d)):
            raise ConfigError("noise or field stars need one random generator per image")
        if noise.field_density > 0:
            npx = self.geometry.n_pix
            for i in range(len(d)):  # per image: the field stars differ (a handful of images)
                idx, fl = field_star_fluxes(rngs[i], self.geometry, noise)
                np.add.at(fluxraw[i].reshape(-1), idx, fl)
            fluxraw = fluxraw.reshape(len(d), npx, npx)
        flux = np.empty(fluxraw.shape, np.float32)
        for f in np.unique(fw):
            sel = np.flatnonzero(fw == f)
            if noise.detector:
                psf = self.psf_kernel(float(f))
                tmp = self.fft.convolve(fluxraw[sel], ("moffat", float(f)), psf)
                tmp = np.stack([apply_detector(tmp[j], rngs[i], self.geometry, noise)
                                for j, i in enumerate(sel)])
                flux[sel] = self.fft.convolve(tmp, ("gauss",), self._gauss)
            else:
                flux[sel] = self.fft.convolve(fluxraw[sel], ("combined", float(f)), self.combined_kernel(float(f)))
        mass_s = self.fft.convolve(massraw, ("gauss",), self._gauss)
        return PhotometricImages(flux=flux, mass=mass_s, lum_v_fov=inside[:, 0], mass_fov=inside[:, 1],
                                 flux_fov=inside[:, 0] / four_pi_d2)
