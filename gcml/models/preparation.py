"""What every training image of a pi-DOC model went through, recorded in the model and applied to any input.

Chardin & Bianchini (2021, MNRAS 504, 5656, Sect. 5) smooth real Pan-STARRS1 maps with the same Gaussian
(sigma = 4 px) as their training mocks before applying pi-DOC. gcml records that step, with the rest of
the training images' preparation, in the model bundle (``bundle["preparation"]``, :class:`ImagePreparation`),
and the one prediction path applies it to every input (a MapSet image, a gcml mock FITS, a survey frame):

1. **Grid**: ``shape`` pixels of ``pixel_scale_arcsec`` (the cut-out and resampling in
   :mod:`gcml.prediction.images` put any image on it).
2. **Smoothing** (:meth:`ImagePreparation.smooth`): a Gaussian of ``smoothing_px`` sigma, the kernel
   and zero-padded FFT convolution of ``gcml mock-observe`` itself (:func:`gcml.observe.psf.gaussian_kernel`,
   :class:`gcml.observe.photometric.FFTConvolver`), so an unsmoothed mock, prepared, equals the smoothed
   one to float rounding (tested). An input already smoothed by ``s`` px (gcml mock FITS record it as
   ``GCMLSMTH``) is smoothed by the rest, ``sqrt(smoothing_px^2 - s^2)``.
   Missing pixels (NaN, inf, masks) are *inpainted by the smoothing itself* (normalised convolution,
   Knutsson & Westin 1993): ``S = G*(F w) x G*1 / G*w`` with ``w`` = 1 on valid pixels and 0 elsewhere.
   Where every pixel is valid this is exactly the plain zero-padded smoothing of the mocks; inside a
   hole each pixel gets the Gaussian-weighted mean of the valid pixels around it. Pixels whose valid
   weight ``G*w / G*1`` is below :data:`MIN_VALID_WEIGHT` (holes wider than about 2 sigma) cannot be
   filled from their neighbours; they are counted (``unfilled_fraction``) and get the local mean anyway.
3. **Transform** (:meth:`ImagePreparation.transform`), defined for every real value of the flux:

   * ``log10``: ``log10(max(F, floor))`` (the noiseless models; pixels <= floor are counted as floored);
   * ``softlog10``: ``log10(b) + asinh(F / (2 b)) / ln 10`` with a softening ``b`` [Lsun/kpc^2] at the
     noise level of the training images. It equals ``log10 F`` to 1 % for ``F > 10 b`` (asinh(x) =
     ln(2x) + O(x^-2)), is linear through zero and odd-symmetric about ``log10 b`` for ``|F| < b``,
     so sky-subtracted pixels <= 0 keep their information (a negative noise dip is not a decade-deep hole).

The recorded noise level (``noise_sigma``: the smoothed per-pixel noise of the training images, min and
max) and PSF range let prediction say when an image is noisier than anything the model saw.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from gcml.errors import FormatError, InputError

TRANSFORMS = ("log10", "softlog10")
#: pixels whose valid Gaussian weight (G*w / G*1) is below this are "unfilled" (see the module docstring)
MIN_VALID_WEIGHT = 0.05
_LN10 = math.log(10.0)


@dataclass(frozen=True)
class ImagePreparation:
    """The preparation of a pi-DOC model's input images (module docstring); stored as ``bundle["preparation"]``.

    Attributes
    ----------
    shape : (H, W) pixels of the model's field
    pixel_scale_arcsec : pixel size [arcsec]
    smoothing_px : Gaussian sigma [px] applied to every training image (pi-DOC: 4)
    flux_unit : V-band flux per pixel, F = L_V / (4 pi d^2) [Lsun/kpc^2]
    transform : ``log10`` or ``softlog10``
    floor : flux raised to this before ``log10`` [Lsun/kpc^2]
    softening : ``b`` of ``softlog10`` [Lsun/kpc^2] (0 for ``log10``)
    psf_fwhm_range : [min, max] Moffat FWHM [arcsec] of the training images
    noise : how the training images were made noisy (text; "none" for noiseless mocks)
    noise_sigma : [min, max] smoothed per-pixel noise of the training images [Lsun/kpc^2] ([0, 0]: none)
    max_shift_arcsec : training centres were shifted uniformly by up to this per axis
    centring : how the training images were centred (``shrinking-sphere`` centre of the stars)
    """

    shape: tuple[int, int] = (160, 160)
    pixel_scale_arcsec: float = 0.25
    smoothing_px: float = 4.0
    flux_unit: str = "Lsun/kpc2"
    transform: str = "log10"
    floor: float = 1e-9
    softening: float = 0.0
    psf_fwhm_range: tuple[float, float] = (0.5, 1.5)
    noise: str = "none"
    noise_sigma: tuple[float, float] = (0.0, 0.0)
    max_shift_arcsec: float = 5.0
    centring: str = "shrinking-sphere"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.transform not in TRANSFORMS:
            raise FormatError(f"model preparation: transform '{self.transform}' is unknown (expected "
                              f"{' or '.join(TRANSFORMS)})")
        if self.transform == "softlog10" and not self.softening > 0:
            raise FormatError(f"model preparation: softlog10 needs a softening > 0, got {self.softening}")
        if self.transform == "log10" and not self.floor > 0:
            raise FormatError(f"model preparation: log10 needs a floor > 0, got {self.floor}")
        if not (math.isfinite(self.smoothing_px) and self.smoothing_px >= 0):
            raise FormatError(f"model preparation: smoothing_px must be >= 0, got {self.smoothing_px}")

    # ------------------------------------------------------------------------------------- bundle
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["shape"] = [int(v) for v in self.shape]
        d["psf_fwhm_range"] = [float(v) for v in self.psf_fwhm_range]
        d["noise_sigma"] = [float(v) for v in self.noise_sigma]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImagePreparation:
        try:
            kw = dict(d)
            kw["shape"] = tuple(int(v) for v in kw.get("shape", (160, 160)))
            kw["psf_fwhm_range"] = tuple(float(v) for v in kw.get("psf_fwhm_range", (0.5, 1.5)))
            kw["noise_sigma"] = tuple(float(v) for v in kw.get("noise_sigma", (0.0, 0.0)))
            known = set(cls.__dataclass_fields__)
            extra = {k: v for k, v in kw.items() if k not in known}
            kw = {k: v for k, v in kw.items() if k in known}
            kw.setdefault("extra", {}).update(extra)
            return cls(**kw)
        except (TypeError, ValueError) as exc:
            raise FormatError(f"model bundle: 'preparation' cannot be read ({exc})") from None

    @classmethod
    def from_bundle(cls, bundle: dict[str, Any]) -> ImagePreparation:
        """The bundle's ``preparation``; bundles written before it existed (pi-DOC map models trained on
        noiseless smoothed mocks, imported Keras models) get it from their geometry and input norm."""
        if bundle.get("preparation"):
            return cls.from_dict(bundle["preparation"])
        geo = bundle.get("geometry") or {}
        attrs = geo.get("map_attrs") or {}
        norm = (bundle.get("inputs") or {}).get("norm") or {}
        tr = list(norm.get("transform") or ["log10"])
        floor = norm.get("floor", 1e-9)
        floor = float(floor[0] if isinstance(floor, (list, tuple)) else floor)
        rng = (bundle.get("training_range") or {}).get("psf_fwhm", [0.5, 1.5])
        return cls(shape=tuple(int(v) for v in geo.get("shape", (160, 160))[-2:]),
                   pixel_scale_arcsec=float(geo.get("pixel_scale", 0.25)),
                   smoothing_px=float(attrs.get("smoothing_px", geo.get("smoothing", 4.0))),
                   transform="log10" if tr[0] in ("log10", "none") else str(tr[0]), floor=floor,
                   psf_fwhm_range=(float(rng[0]), float(rng[1])), noise="none",
                   max_shift_arcsec=5.0, extra={"from": "geometry and input norm (bundle without preparation)"})

    # ------------------------------------------------------------------------------------- steps
    def smooth(self, flux: np.ndarray, valid: np.ndarray | None = None, *, already_px: float = 0.0,
               ) -> tuple[np.ndarray, dict[str, float]]:
        """Smooth ``flux`` (H, W) or (B, H, W) like the training images, inpainting invalid pixels.

        ``valid``: False where a pixel is missing (default: the finite pixels). ``already_px``: sigma the
        input was already smoothed with (a gcml mock FITS). Returns (smoothed float64 array, stats with
        ``masked_fraction`` and ``unfilled_fraction``).
        """
        from gcml.observe.photometric import FFTConvolver
        from gcml.observe.psf import gaussian_kernel

        f = np.asarray(flux, np.float64)
        squeeze = f.ndim == 2
        f3 = f[None] if squeeze else f
        good = np.isfinite(f3) if valid is None else (np.asarray(valid, bool).reshape(f3.shape) & np.isfinite(f3))
        if already_px > self.smoothing_px + 1e-6:
            raise InputError(f"the image was smoothed with sigma = {already_px} px, more than the model's "
                             f"{self.smoothing_px} px; it cannot be prepared like the training images")
        sigma = math.sqrt(max(self.smoothing_px**2 - already_px**2, 0.0))
        stats = {"masked_fraction": float(1.0 - good.mean()), "unfilled_fraction": 0.0, "smoothing_px": sigma}
        if sigma < 1e-6:
            if not good.all():
                raise InputError("the image has missing pixels and needs no more smoothing; nothing can fill them")
            out = f3
        else:
            k = gaussian_kernel(sigma)
            conv = FFTConvolver()
            key = ("gauss-prep", sigma)
            # float64 FFTs: FFTConvolver works in float32, enough for the mocks; do the same here so the
            # prepared unsmoothed mock equals mock-observe's smoothed image to float32 rounding
            num = conv.convolve(np.where(good, f3, 0.0), key, k).astype(np.float64)
            if good.all():
                out = num
            else:
                ones = np.ones(f3.shape[-2:])[None]
                cover = conv.convolve(ones, key, k).astype(np.float64)
                wsum = conv.convolve(good.astype(np.float64), key, k).astype(np.float64)
                rel = wsum / np.maximum(cover, 1e-30)
                stats["unfilled_fraction"] = float((rel < MIN_VALID_WEIGHT).mean())
                out = num * cover / np.maximum(wsum, 1e-12 * cover)
                out = np.where(wsum > 1e-12 * cover, out, 0.0)
        return (out[0] if squeeze else out), stats

    def transform_array(self, flux: np.ndarray) -> np.ndarray:
        """The network's input before standardisation (numpy; see :meth:`transform_tensor`)."""
        f = np.asarray(flux, np.float64)
        if self.transform == "log10":
            return np.log10(np.maximum(f, self.floor))
        b = self.softening
        return math.log10(b) + np.arcsinh(f / (2.0 * b)) / _LN10

    def transform_tensor(self, x: Any) -> Any:
        """:meth:`transform_array` for a torch tensor (the training task calls this)."""
        import torch

        if self.transform == "log10":
            return torch.log10(x.clamp_min(self.floor))
        b = self.softening
        return math.log10(b) + torch.asinh(x / (2.0 * b)) / _LN10

    def prepare(self, flux: np.ndarray, valid: np.ndarray | None = None, *, already_px: float = 0.0,
                ) -> PreparedImage:
        """The whole preparation of one image (H, W) in the model's grid and flux unit: smoothing with
        inpainting (:meth:`smooth`), then the transform, with what prediction needs to judge the input.

        The noise of an image that arrives unsmoothed is measured (:func:`noise_sigma`, propagated through
        the smoothing). A ``log10`` model (trained on noiseless mocks) then reads ``softlog10`` with the
        softening at that noise: identical to ``log10`` where the flux is well above the noise (as in every
        training image), and no decade-deep holes where sky-subtracted noise dips below zero
        (``benchmarks/bench_pidoc_preparation.py`` measures the choice). A ``softlog10`` model keeps the
        softening it was trained with.
        """
        f = np.asarray(flux, np.float64)
        sm, st = self.smooth(f, valid, already_px=already_px)
        sig = math.nan
        if already_px == 0.0 and self.smoothing_px > 0:
            good = np.isfinite(f) if valid is None else (np.asarray(valid, bool) & np.isfinite(f))
            sig = smoothed_noise_sigma(noise_sigma(np.where(good, f, np.nan)), self.smoothing_px)
        if self.transform == "log10" and math.isfinite(sig) and sig > self.floor:
            used = ImagePreparation(transform="softlog10", softening=sig, smoothing_px=self.smoothing_px)
            how = f"softlog10, softening = measured noise {sig:.3g}"
        else:
            used = self
            how = self.transform + (f", softening {self.softening:.3g}" if self.transform == "softlog10" else
                                    f", floor {self.floor:.3g}")
        x = used.transform_array(sm)
        return PreparedImage(flux=sm, x=x, masked_fraction=st["masked_fraction"],
                             unfilled_fraction=st["unfilled_fraction"], smoothing_applied_px=st["smoothing_px"],
                             noise_sigma=sig, floored_fraction=used.floored_fraction(sm), transform_used=how)

    def floored_fraction(self, flux: np.ndarray) -> float:
        """Fraction of pixels at or below the log floor (``log10``) or below the softening (``softlog10``):
        the pixels where the transform no longer follows log10 F."""
        f = np.asarray(flux, np.float64)
        lim = self.floor if self.transform == "log10" else self.softening
        return float((f <= lim).mean())


@dataclass
class PreparedImage:
    """One image after :meth:`ImagePreparation.prepare`.

    ``flux``: smoothed flux (H, W) [Lsun/kpc^2]; ``x``: the transformed network input before
    standardisation; ``masked_fraction`` / ``unfilled_fraction``: missing pixels, and those the smoothing
    could not fill; ``smoothing_applied_px``; ``noise_sigma``: measured smoothed per-pixel noise
    [Lsun/kpc^2] (NaN when the input arrived smoothed); ``floored_fraction``: pixels where the transform
    no longer follows log10 F (at or below the floor or softening); ``transform_used`` (text).
    """

    flux: np.ndarray
    x: np.ndarray
    masked_fraction: float
    unfilled_fraction: float
    smoothing_applied_px: float
    noise_sigma: float
    floored_fraction: float
    transform_used: str


#: aperture radius [arcsec] of :func:`light_asymmetry` (the inner field, where the cluster light dominates)
ASYMMETRY_RADIUS_ARCSEC = 5.0


def light_asymmetry(flux: np.ndarray, noise: float, radius_px: float) -> float:
    """Rotational asymmetry of a prepared (smoothed) field about its centre (Conselice et al. 2000, ApJ 529,
    886): ``A = (sum |F - F_180| - N 2 sigma / sqrt(pi)) / (2 sum |F|)`` over the N pixels within
    ``radius_px`` of the field centre, ``F_180`` the field rotated by 180 degrees and ``sigma`` its smoothed
    per-pixel noise (``2 sigma / sqrt(pi)`` is the mean ``|n_1 - n_2|`` of two such noise values, so pure
    noise gives A ~ 0; NaN noise counts as none). A smooth, centred cluster gives ~0; resolved bright stars,
    a foreground star or a second source give up to ~1. Clipped at 0; NaN for a field without flux.
    """
    f = np.asarray(flux, np.float64)
    h, w = f.shape
    yy, xx = np.ogrid[0:h, 0:w]
    inside = (yy - (h - 1) / 2.0) ** 2 + (xx - (w - 1) / 2.0) ** 2 <= radius_px**2
    total = 2.0 * np.abs(f[inside]).sum()
    if not total > 0:
        return math.nan
    diff = np.abs(f - f[::-1, ::-1])[inside].sum()
    s = noise if math.isfinite(noise) else 0.0
    return max(0.0, (diff - inside.sum() * 2.0 * s / math.sqrt(math.pi)) / total)


def noise_sigma(flux: np.ndarray) -> float:
    """Robust per-pixel noise [input units] of an *unsmoothed* image from neighbouring-pixel differences:
    ``1.4826 MAD(F[i, j+1] - F[i, j]) / sqrt 2`` (smooth cluster light cancels in the differences)."""
    f = np.asarray(flux, np.float64)
    d = np.concatenate([(f[:, 1:] - f[:, :-1]).ravel(), (f[1:, :] - f[:-1, :]).ravel()])
    d = d[np.isfinite(d)]
    if not len(d):
        return math.nan
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / math.sqrt(2.0))


def smoothed_noise_sigma(sigma_pix: float, smoothing_px: float) -> float:
    """Per-pixel noise after Gaussian smoothing of white noise: ``sigma sqrt(sum k^2)`` of the same kernel."""
    from gcml.observe.psf import gaussian_kernel

    k = gaussian_kernel(smoothing_px)
    return float(sigma_pix * math.sqrt((k**2).sum()))


def check_transform(name: str) -> str:
    if name not in TRANSFORMS:
        raise InputError(f"input transform '{name}' is unknown; expected {' or '.join(TRANSFORMS)}")
    return name
