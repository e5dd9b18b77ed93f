"""Mass map, total mass, M/L, age and distance of a globular cluster from a FITS image (pi-DOC).

Chardin & Bianchini (2021, MNRAS 504, 5656) apply their networks to Pan-STARRS1 cutouts of Milky Way
globular clusters. :func:`predict_image` does the same with any gcml pi-DOC model bundle:

1. **Read** the image and its celestial WCS (:func:`read_sky_image`). Pixel values become *counts with an
   apparent-magnitude zero point* ``m = zp - 2.5 log10(counts)``:

   * Pan-STARRS1 stacks: astropy applies BZERO/BSCALE; when BSOFTEN and BOFFSET are present the asinh
     compression is undone, ``linear = BOFFSET + 2 BSOFTEN sinh(v / a)`` with ``a = 2.5 log10(e)``
     (IPP psLib; legacypipe ``ps1.py``); ``zp = FPA.ZP + 2.5 log10(EXPTIME)`` (FPA.ZP = 25). Cutouts
     are already linear (no BSOFTEN). The filter comes from ``FPA.FILTER`` (``"r.00000"``).
   * SDSS frames: ``BUNIT = nanomaggies`` -> ``zp = 22.5`` (AB), filter from ``FILTER``.
   * gcml mock FITS: ``BUNIT = Lsun/kpc2`` (V-band flux per pixel, no conversion needed).
   * Any image with a zero point (``MAGZP``, ``ZP``, ``PHOTZP``, ``MAGZERO``, ``ZEROPT``) and a band.
   Anything else is refused (unknown units).

2. **Combine bands into V**. With g and r: the field's integrated colour ``x = g - r`` (inside the model's
   field) and the Kostov & Bonev (2018) PS1 relation ``V = r - 0.020 + 0.502 x - 0.008 x^2`` or, for
   SDSS, Jester et al. (2005) ``V = g - 0.59 (g - r) - 0.01``, applied as one factor to the r image:
   ``F_V = F_r 10^(-0.4 (V - r))``. Colour gradients in globular clusters are small (a few 0.01 mag) and
   per-pixel colours are noisy in the outskirts, so one colour is the more accurate choice. With one band
   only (g or r) the colour is assumed: Harris (2010) B - V converted with Jester et al. (2005)
   ``g - r = 1.02 (B - V) - 0.22`` for a ``--target``, otherwise ``g - r = 0.5`` (old GCs), with a warning.

3. **Cut out and resample** the model's field (e.g. 160 x 160 px of 0.25") around RA/Dec (or the Harris
   position of ``--target``, or the image centre) on a north-up TAN grid. Resampling conserves flux: the
   surface brightness (counts per arcsec^2) is sampled bilinearly at ``k x k`` points per output pixel
   (``k`` = ceil(output/input pixel size), at least 2), averaged and multiplied by the output pixel area.
   Pixels outside the image make the field too large for the image (an error). Missing pixels (NaN,
   inf: PS1's border, masks) are left out of the interpolation (normalised by the valid weight) and an
   output pixel less than half covered by valid ones is missing; the smoothing of step 5 fills them
   (never a zero under a logarithm). More than 10 % missing in the field is an error.

4. **Convert to the model's flux unit** with a distance-free zero point. The models read
   ``F = L_V / (4 pi d^2)`` per pixel [Lsun kpc^-2]. For a pixel of apparent magnitude ``m``,
   ``M = m - 5 log10(d / kpc) - 10`` and ``L_V = 10^(-0.4 (M - M_V,sun))`` (``M_V,sun = 4.83``), so
   ``log10 F = -0.4 (m - M_V,sun - 10) - log10(4 pi)``: the distance cancels (surface brightness does not
   depend on distance), and ``F = counts x 10^(-0.4 (zp - 14.83)) / (4 pi)``.
   With a Harris target the foreground extinction ``A_V = 3.1 E(B-V)`` is removed (the training mocks have
   none); otherwise it is not, and the report says so.

5. **Prepare** the field as the model's training images were (:class:`gcml.models.preparation.ImagePreparation`,
   recorded in the bundle): Gaussian smoothing (sigma = 4 px for pi-DOC, Chardin & Bianchini 2021 Sect. 5;
   an input already smoothed, a gcml mock FITS with ``GCMLSMTH``, gets only the rest), missing pixels
   inpainted by the same smoothing, then the model's input transform. The noise of the unsmoothed field is
   measured; models trained on noiseless mocks read a log softened at that noise.

6. **Centre** (default; ``refine_centre=False`` to keep the given position): the catalogue position
   (``--ra/--dec``, the Harris position of ``--target``, or the image centre) is moved to the cluster's
   light centroid on the prepared field (:mod:`gcml.prediction.centring`), and the field is cut out
   again there, so that a position error of an arcsecond gives the same field.

7. **Predict** with the bundle (gcml map tasks; four 90-degree rotations averaged, as the training images
   are rotated), and derive: mass in the field ``M`` with its calibrated uncertainty (dex), the
   luminosity in the field ``L_V = 4 pi d^2 sum F`` at the predicted distance, ``M/L_V`` with
   ``sigma_log(M/L)^2 = sigma_logM^2 + (2 sigma_d / (d ln 10))^2``, age and distance with their
   uncertainties (68 % intervals inside the physical ranges for models with parametrised outputs).
   Inputs and results outside the model's training range (total flux, luminosity, distance, noise level,
   missing or floored pixels, predictions near a range edge) are flagged, after pi-DOC's Fig. 10: the
   published CNN failed on clusters brighter than its training set. Far outside (more than
   :data:`FAR_OUTSIDE_DEX` beyond the field flux or luminosity range) the result's ``status`` says so,
   first, before the numbers: they are reported but are extrapolations.

Why one module of ~750 lines: reading the sky image, putting it on the model's grid, the prediction with
its rotations, the range checks and the writers (FITS, JSON, table, quick-look) are one pipeline over one
result type (:class:`ImagePrediction`), and every step reads the model's recorded preparation; the
pieces that stand alone already live beside it (``centring.py``, ``harris.py``, ``models/preparation.py``).
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gcml.errors import FormatError, InputError
from gcml.physics.photometry import FLUX_ZP  # the zero point of the pi-DOC flux unit (Lsun/kpc^2)
from gcml.physics.photometry import v_over_r_flux_factor as _colour_factor

#: asinh softening of Pan-STARRS1 stacks, a = 2.5 log10(e)
PS1_ALPHA = 2.5 * math.log10(math.e)
ZP_KEYS = ("MAGZP", "ZP", "PHOTZP", "MAGZERO", "ZEROPT", "ZPT")
DEFAULT_GR = 0.5
MAX_NAN_FRACTION = 0.10
#: beyond this many dex outside the training range of field flux or luminosity a result is "far outside"
FAR_OUTSIDE_DEX = 0.5
#: a prediction within this fraction of its training range's width from an edge is "near the edge"
EDGE_FRACTION = 0.05
DEFAULT_MODEL = "pidoc-net-default.pt"


def default_model_path() -> Path:
    """The shipped default pi-DOC model (``gcml/data/models/pidoc-net-default.pt``)."""
    from importlib import resources

    return Path(str(resources.files("gcml").joinpath("data/models/" + DEFAULT_MODEL)))


@dataclass
class SkyImage:
    """An image in counts with a magnitude zero point: ``m = zero_point - 2.5 log10(data)``.

    ``data`` (H, W) float64 (NaN where missing); ``wcs`` the 2-D celestial astropy WCS; ``band`` (g, r, i, V,
    ...); ``survey`` ("ps1", "sdss", "gcml", "generic"); ``notes`` how the file was read.
    """

    path: Path
    data: np.ndarray
    wcs: Any
    zero_point: float
    band: str
    survey: str
    notes: list[str] = field(default_factory=list)
    #: Gaussian sigma [arcsec] the image was already smoothed with (gcml mock FITS: GCMLSMTH); 0 for the sky
    smoothing_arcsec: float = 0.0

    @property
    def pixel_scale_arcsec(self) -> float:
        from astropy.wcs.utils import proj_plane_pixel_scales

        s = proj_plane_pixel_scales(self.wcs) * 3600.0
        return float(np.sqrt(s[0] * s[1]))

    @property
    def pixel_area_arcsec2(self) -> float:
        from astropy.wcs.utils import proj_plane_pixel_area

        return float(proj_plane_pixel_area(self.wcs) * 3600.0**2)

    def centre(self) -> tuple[float, float]:
        h, w = self.data.shape
        ra, dec = self.wcs.pixel_to_world_values((w - 1) / 2.0, (h - 1) / 2.0)
        return float(ra), float(dec)


def _band_from(text: str) -> str:
    t = str(text).strip()
    if not t:
        return ""
    b = t.split(".")[0].strip()
    return b if b in ("V", "B", "R", "I") else b.lower()


def _image_hdu(hdul: Any, path: Path) -> Any:
    for hdu in hdul:
        if getattr(hdu, "data", None) is not None and getattr(hdu, "is_image", False) and hdu.data.ndim >= 2:
            return hdu
    raise InputError(f"{path}: no image in the FITS file (no HDU with 2-D data); expected an image, not a table")


def read_sky_image(path: str | Path) -> SkyImage:
    """Read a FITS image and express it as counts with an apparent-magnitude zero point (module docstring).

    Raises
    ------
    InputError
        No image, no celestial WCS, unknown flux units.
    """
    from astropy.io import fits
    from astropy.wcs import WCS

    p = Path(path)
    if p.is_dir():
        raise InputError(f"{p}: is a folder; expected a image file")
    if not p.is_file():
        raise InputError(f"{p}: image file not found")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # astropy only warns about a truncated file; it is an error here
            with open(p, "rb") as fh, fits.open(fh, memmap=False) as hdul:  # our handle: closed on errors too
                hdu = _image_hdu(hdul, p)
                hdr = hdu.header.copy()
                data = np.asarray(hdu.data, dtype=np.float64)
                primary = hdul[0].header.copy()
    except (OSError, ValueError, TypeError, IndexError, EOFError) as exc:
        msg = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise FormatError(f"{p}: not a readable FITS file (truncated or damaged: {msg})") from None
    trunc = [str(w.message) for w in caught if "truncated" in str(w.message).lower()]
    if trunc:
        raise FormatError(f"{p}: not a readable FITS file (truncated: {trunc[0][:160]})")
    while data.ndim > 2:
        if data.shape[0] != 1:
            raise InputError(f"{p}: image has shape {data.shape}; expected a 2-D image")
        data = data[0]
    # keywords may sit in the primary header of tile-compressed files
    for k, v in primary.items():
        if k not in hdr and k not in ("SIMPLE", "EXTEND", "NAXIS", "NAXIS1", "NAXIS2", "BITPIX"):
            try:
                hdr[k] = v
            except (ValueError, KeyError):
                pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # obsolete PC001001 keywords of PS1 stacks, missing RADESYS, ...
        try:
            wcs = WCS(hdr, naxis=2, fix=True)
        except Exception as exc:  # astropy raises several kinds for broken WCS headers
            raise InputError(f"{p}: the WCS cannot be read ({str(exc).splitlines()[0][:120]})") from None
    if not wcs.has_celestial or "RA" not in str(wcs.wcs.ctype[0]).upper() and "RA" not in str(wcs.wcs.ctype[1]).upper():
        raise InputError(f"{p}: no celestial WCS (CTYPE1/2 = RA---TAN/DEC--TAN or similar); gcml needs it to "
                         "find the cluster and the pixel scale")
    wcs = wcs.celestial
    notes: list[str] = []
    bunit = str(hdr.get("BUNIT", "")).strip().lower().replace(" ", "")
    filt = hdr.get("HIERARCH FPA.FILTER", hdr.get("FILTER", hdr.get("BAND", "")))
    band = _band_from(filt)
    is_ps1 = any(k in hdr for k in ("HIERARCH FPA.ZP", "BSOFTEN", "PSCAMERA")) or \
        str(hdr.get("HIERARCH FPA.TELESCOPE", "")).strip() == "PS1"
    if bunit in ("lsun/kpc2", "lsun/kpc^2", "lsunkpc-2", "sollumkpc-2", "sollum/kpc2"):  # gcml's flux
        band = band or "V"
        if band != "V":
            raise InputError(f"{p}: BUNIT {hdr['BUNIT']} is gcml's V-band flux but FILTER says '{band}'")
        im = SkyImage(p, data, wcs, FLUX_ZP - 2.5 * math.log10(4 * math.pi), "V", "gcml",
                      ["gcml V-band flux per pixel F = L_V/(4 pi d^2) [Lsun/kpc^2]"])
        try:
            im.smoothing_arcsec = float(hdr.get("GCMLSMTH", 0.0)) * im.pixel_scale_arcsec
        except (TypeError, ValueError):
            raise InputError(f"{p}: GCMLSMTH = {hdr['GCMLSMTH']!r} is not a number of pixels") from None
        if im.smoothing_arcsec:
            im.notes.append(f"already smoothed with sigma = {hdr['GCMLSMTH']} px (GCMLSMTH)")
        return im
    if is_ps1:
        if "BSOFTEN" in hdr and "BOFFSET" in hdr:
            data = float(hdr["BOFFSET"]) + 2.0 * float(hdr["BSOFTEN"]) * np.sinh(data / PS1_ALPHA)
            notes.append("PS1 asinh scaling undone (BOFFSET + 2 BSOFTEN sinh(v/a))")
        if "EXPTIME" not in hdr:
            raise InputError(f"{p}: Pan-STARRS1 image without EXPTIME; the zero point is 25 + 2.5 log10(EXPTIME)")
        exptime = float(hdr["EXPTIME"])
        if not exptime > 0:
            raise InputError(f"{p}: EXPTIME = {exptime}; expected a positive exposure time")
        zp0 = float(hdr.get("HIERARCH FPA.ZP", 25.0))
        notes.append(f"PS1 zero point {zp0} + 2.5 log10(EXPTIME={exptime:g})")
        return SkyImage(p, data, wcs, zp0 + 2.5 * math.log10(exptime), band, "ps1", notes)
    if bunit in ("nanomaggies", "nanomaggy", "nmgy"):
        return SkyImage(p, data, wcs, 22.5, band, "sdss", ["SDSS nanomaggies, zero point 22.5 (AB)"])
    for k in ZP_KEYS:
        if k in hdr:
            try:
                zp = float(hdr[k])
            except (TypeError, ValueError):
                raise InputError(f"{p}: header keyword {k} = {hdr[k]!r} is not a number") from None
            return SkyImage(p, data, wcs, zp, band, "generic", [f"zero point {k} = {zp}"])
    raise InputError(f"{p}: unknown flux units: no BUNIT gcml knows (nanomaggies, Lsun/kpc2), no Pan-STARRS1 "
                     f"keywords (FPA.ZP, EXPTIME) and no zero point ({', '.join(ZP_KEYS)})")


def counts_to_flux_factor(zero_point: float, extinction_v: float = 0.0) -> float:
    """Factor turning counts with ``zero_point`` into gcml's F = L_V/(4 pi d^2) [Lsun/kpc^2] (distance-free).

    ``F = counts 10^(-0.4 (zp - A_V - M_V,sun - 10)) / (4 pi)``; see the module docstring.
    """
    return 10.0 ** (-0.4 * (zero_point - extinction_v - FLUX_ZP)) / (4.0 * math.pi)


def resample_field(img: SkyImage, ra: float, dec: float, shape: tuple[int, int], pixel_scale: float) -> tuple[np.ndarray, Any, float]:
    """Flux-conserving resampling of ``img`` onto a north-up TAN grid centred on (ra, dec).

    Returns (counts per output pixel (H, W), NaN where less than half of the pixel is covered by valid
    input pixels; output WCS; fraction of the field not covered by valid pixels). The interpolation is
    normalised by the valid weight, so a valid pixel next to a hole keeps its surface brightness.
    """
    from scipy.ndimage import map_coordinates

    from gcml.io.fits import make_tan_wcs

    h, w = shape
    out_wcs = make_tan_wcs(shape, pixel_scale, ra_deg=ra, dec_deg=dec)
    in_scale = img.pixel_scale_arcsec
    k = max(2, int(math.ceil(pixel_scale / in_scale - 1e-9)))
    sub = (np.arange(k) + 0.5) / k - 0.5
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    xs = np.broadcast_to(xx[:, :, None, None] + sub[None, None, None, :], (h, w, k, k)).ravel()
    ys = np.broadcast_to(yy[:, :, None, None] + sub[None, None, :, None], (h, w, k, k)).ravel()
    wra, wdec = out_wcs.pixel_to_world_values(xs, ys)
    ix, iy = img.wcs.world_to_pixel_values(wra, wdec)
    ih, iw = img.data.shape
    off = (ix < -0.5) | (ix > iw - 0.5) | (iy < -0.5) | (iy > ih - 0.5) | ~np.isfinite(ix) | ~np.isfinite(iy)
    if off.mean() > MAX_NAN_FRACTION:
        raise InputError(
            f"{img.path}: the image ({iw} x {ih} px of {in_scale:.3f}\") is too small for the model's "
            f"{w * pixel_scale:.0f}\" x {h * pixel_scale:.0f}\" field around RA {ra:.5f}, Dec {dec:.5f} "
            f"({100 * off.mean():.1f}% of the field lies outside it); give a larger image or move `ra`/`dec`")
    good = np.isfinite(img.data)
    sb = np.where(good, img.data, 0.0) / img.pixel_area_arcsec2  # counts per arcsec^2, 0 where missing
    coords = np.vstack([np.where(off, 0.0, iy), np.where(off, 0.0, ix)])
    vals = np.where(off, 0.0, map_coordinates(sb, coords, order=1, mode="nearest"))
    # beyond the image border counts as missing (a few percent at most: filled like masked pixels)
    cover = np.where(off, 0.0, map_coordinates(good.astype(np.float64), coords, order=1, mode="nearest"))
    cover = np.clip(cover, 0.0, 1.0)
    nan_frac = float(np.mean(1.0 - cover))
    nan_frac = nan_frac if nan_frac > 1e-9 else 0.0
    if nan_frac > MAX_NAN_FRACTION:
        raise InputError(f"{img.path}: {100 * nan_frac:.0f}% of the field around RA {ra:.5f}, Dec {dec:.5f} is NaN "
                         f"or beyond the image (masked or outside the survey footprint); at most "
                         f"{100 * MAX_NAN_FRACTION:.0f}% can be filled")
    v = vals.reshape(h, w, k, k).mean(axis=(2, 3))
    c = cover.reshape(h, w, k, k).mean(axis=(2, 3))
    out = np.where(c >= 0.5, v / np.maximum(c, 1e-12), np.nan) * pixel_scale**2
    return out, out_wcs, nan_frac


@dataclass
class ImagePrediction:
    """What :func:`predict_image` returns (masses in Msun, distances in kpc, ages in Gyr).

    ``mass_map`` (H, W) Msun per pixel and ``log10_mass_std`` (H, W) dex; ``flux_v`` (H, W) the model input
    [Lsun/kpc^2]; ``wcs`` of the cutout; scalars with 1-sigma uncertainties (NaN when the model does not
    predict them); ``warnings`` (outside the training range, filled pixels, assumed colours) and ``notes``.
    """

    image: str
    model: str
    ra_deg: float
    dec_deg: float
    target: str | None
    mass_map: np.ndarray
    log10_mass_std: np.ndarray
    flux_v: np.ndarray
    wcs: Any
    mass_total: float
    log10_mass_total: float
    log10_mass_total_err: float
    distance_kpc: float = math.nan
    distance_err_kpc: float = math.nan
    age_gyr: float = math.nan
    age_err_gyr: float = math.nan
    lum_v: float = math.nan
    ml_v: float = math.nan
    log10_ml_v_err: float = math.nan
    flux_total: float = math.nan
    extinction_v: float = 0.0
    g_minus_r: float = math.nan
    harris: dict[str, Any] | None = None
    in_training_range: bool = True
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: 68 % intervals (inside the physical ranges for parametrised outputs)
    distance_lo_kpc: float = math.nan
    distance_hi_kpc: float = math.nan
    age_lo_gyr: float = math.nan
    age_hi_gyr: float = math.nan
    #: "ok", "outside the training range" or "far outside the training range" (then the first warning says why)
    status: str = "ok"
    #: how the input was prepared (gcml.models.preparation) and what it held
    noise_sigma: float = math.nan
    masked_fraction: float = 0.0
    unfilled_fraction: float = 0.0
    floored_fraction: float = 0.0
    transform_used: str = ""
    smoothing_applied_px: float = math.nan
    centre_refined: bool = False
    centre_moved_arcsec: float = 0.0
    #: rotational asymmetry of the prepared field's inner 5" about the (refined) centre
    #: (gcml.models.preparation.light_asymmetry): lumpy light, resolved or foreground stars
    asymmetry: float = math.nan

    def to_table(self) -> Any:
        """The scalars as a one-row ``astropy.table.QTable`` with units (log10 quantities in ``dex(...)``);
        warnings, notes and the model in ``meta``."""
        import astropy.units as u
        from astropy.table import QTable

        def q(v: float, unit: Any) -> Any:
            return [v] * unit

        cols = {
            "image": [Path(self.image).name], "target": [self.target or ""],
            "ra": q(self.ra_deg, u.deg), "dec": q(self.dec_deg, u.deg),
            "mass_total": q(self.mass_total, u.Msun),
            "log10_mass_total": q(self.log10_mass_total, u.dex(u.Msun)),
            "log10_mass_total_err": q(self.log10_mass_total_err, u.dex),
            "distance": q(self.distance_kpc, u.kpc), "distance_err": q(self.distance_err_kpc, u.kpc),
            "age": q(self.age_gyr, u.Gyr), "age_err": q(self.age_err_gyr, u.Gyr),
            "lum_v": q(self.lum_v, u.Lsun), "ml_v": q(self.ml_v, u.Msun / u.Lsun),
            "log10_ml_v_err": q(self.log10_ml_v_err, u.dex), "flux_total": q(self.flux_total, u.Lsun / u.kpc**2),
            "extinction_v": q(self.extinction_v, u.mag), "g_minus_r": q(self.g_minus_r, u.mag),
            "asymmetry": q(self.asymmetry, u.dimensionless_unscaled),
            "in_training_range": [bool(self.in_training_range)],
        }
        t = QTable(cols)
        t.meta.update({"model": str(self.model), "warnings": list(self.warnings), "notes": list(self.notes)})
        return t

    def summary(self) -> dict[str, Any]:
        """JSON-ready scalars (no arrays); ``status`` and ``warnings`` first."""
        d = {"status": self.status, "warnings": list(self.warnings)}
        d.update({k: v for k, v in asdict(self).items() if k not in ("mass_map", "log10_mass_std", "flux_v", "wcs")})
        d["mass_total_err_plus"] = self.mass_total * (10 ** self.log10_mass_total_err - 1)
        d["mass_total_err_minus"] = self.mass_total * (1 - 10 ** -self.log10_mass_total_err)
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


def _load(model: str | Path | None, device: str):
    from gcml.models.trained import TrainedModel

    path = Path(model) if model is not None else default_model_path()
    if model is None and not path.is_file():
        raise InputError(f"{path}: the default pi-DOC model is not installed; give one with `model` "
                         "(train it with scripts/train_default_pidoc.py)")
    tm = TrainedModel.load(path, device=device)
    if not tm.is_map_model:
        raise InputError(f"{path}: model '{tm.architecture}' predicts no mass map; give a pi-DOC map model "
                         "(pidoc-net, pidoc-ced, pidoc-ced-lite)")
    return path, tm


def predict_image(path: str | Path, *, model: str | Path | None = None, g: str | Path | None = None,
                  r: str | Path | None = None, ra: float | None = None, dec: float | None = None,
                  target: str | None = None, device: str = "cpu", rotations: int = 4,
                  refine_centre: bool = True, position: Any = None) -> ImagePrediction:
    """Predict the mass map, mass, M/L, age and distance of the cluster in a FITS image.

    Parameters
    ----------
    path : FITS image (PS1 stack or cutout, SDSS frame, gcml mock, any image with a zero point)
    model : pi-DOC model bundle (default: the shipped ``pidoc-net-default.pt``)
    g, r : further images of the same field in g and r; g + r are combined into V
    ra, dec : starting field centre [deg] or astropy Angles/Quantities (default: the Harris position of
        ``target``, else the image centre)
    position : the starting field centre as an astropy ``SkyCoord`` (instead of ``ra``, ``dec``)
    target : Milky Way GC name looked up in Harris (1996, 2010 edition): position, E(B-V), B-V
    device : torch device
    rotations : 1-4 rotations by 90 degrees averaged (test-time augmentation)
    refine_centre : move the centre to the cluster's light centroid (module docstring, step 6)

    Returns
    -------
    ImagePrediction
    """
    from gcml.models.preparation import ASYMMETRY_RADIUS_ARCSEC, ImagePreparation, light_asymmetry
    from gcml.physics.units import radec_deg
    from gcml.prediction.centring import refine_centre as _refine
    from gcml.prediction.harris import lookup

    ra, dec = radec_deg(ra, dec, position)
    if (ra is None) != (dec is None):
        raise InputError("`ra` and `dec`: give both or neither")
    if ra is not None and not (math.isfinite(ra) and math.isfinite(dec) and -90 <= dec <= 90):
        raise InputError(f"`ra` {ra} `dec` {dec}: expected finite degrees with -90 <= Dec <= 90")
    mpath, tm = _load(model, device)
    task = tm.task
    bundle = tm.bundle.to_dict()
    prep = ImagePreparation.from_bundle(bundle)
    geo = bundle["geometry"]
    shape = tuple(int(v) for v in geo["shape"][-2:])
    pscale = float(geo["pixel_scale"])
    if str(geo.get("pixel_unit", "arcsec")) != "arcsec":
        raise InputError(f"{mpath}: model pixels are in {geo.get('pixel_unit')}, expected arcsec (a photometry model)")
    warn: list[str] = []
    notes: list[str] = []
    hc = lookup(target) if target else None
    if hc is not None:
        notes.append(f"{hc.id} ({hc.name or 'no other name'}) from {'Harris 1996 (2010 edition)'}: "
                     f"RA {hc.ra_deg:.5f}, Dec {hc.dec_deg:.5f}, R_Sun {hc.distance_kpc} kpc, E(B-V) {hc.ebv}")
    images = [read_sky_image(path)]
    for extra, want in ((g, "g"), (r, "r")):
        if extra is not None:
            im = read_sky_image(extra)
            im.band = im.band or want
            if im.band != want:
                raise InputError(f"`{want}` {extra}: the header says band '{im.band}', expected {want}")
            images.append(im)
    by_band: dict[str, SkyImage] = {}
    for im in images:
        if not im.band:
            raise InputError(f"{im.path}: no filter in the header (FPA.FILTER, FILTER or BAND); give it as `g` or `r`")
        by_band.setdefault(im.band, im)
    if ra is None:
        ra, dec = (hc.ra_deg, hc.dec_deg) if hc is not None else images[0].centre()
        if hc is None:
            notes.append("field centred on the image centre (no `ra`/`dec` or `target`)")
    av = 3.1 * hc.ebv if hc is not None and math.isfinite(hc.ebv) else 0.0
    if hc is None:
        notes.append("no foreground extinction correction (give `target` to use Harris E(B-V))")
    else:
        notes.append(f"foreground extinction A_V = 3.1 E(B-V) = {av:.3f} mag removed")
    already_px = max(im.smoothing_arcsec for im in images) / pscale

    def v_field(ra_c: float, dec_c: float) -> tuple[np.ndarray, Any, float, float, list[str], list[str]]:
        """V flux (NaN where missing), WCS, missing fraction, g - r, warnings, notes of the field at a centre."""
        w_: list[str] = []
        n_: list[str] = []
        fr_: list[float] = []

        def field_flux(im: SkyImage) -> tuple[np.ndarray, Any]:
            counts, wcs, nf = resample_field(im, ra_c, dec_c, shape, pscale)
            fr_.append(nf)
            return counts * counts_to_flux_factor(im.zero_point, av), wcs

        gr_ = math.nan
        if "V" in by_band:
            flux_, wcs_ = field_flux(by_band["V"])
        elif "g" in by_band and "r" in by_band:
            fg, wcs_ = field_flux(by_band["g"])
            fr, _ = field_flux(by_band["r"])
            # the AB flux ratio g/r over pixels valid in both: the colour is -2.5 log10(sum g / sum r)
            both = np.isfinite(fg) & np.isfinite(fr)
            sg, sr = float(fg[both].sum()), float(fr[both].sum())
            if not (sg > 0 and sr > 0):
                raise InputError(f"{by_band['g'].path}, {by_band['r'].path}: the field has no positive flux in g or r")
            gr_ = -2.5 * math.log10(sg / sr)
            if not -0.5 < gr_ < 2.3:
                w_.append(f"g - r = {gr_:.2f} is outside the range of the Kostov & Bonev (2018) relation (-0.5 to 2.3)")
            flux_ = np.where(both, fr, np.nan) * _colour_factor(by_band["r"].survey, gr_)
            n_.append(f"V from r and the field's g - r = {gr_:.3f}")
        elif "g" in by_band or "r" in by_band:
            band = "r" if "r" in by_band else "g"
            if hc is not None and math.isfinite(hc.b_v):
                gr_ = 1.02 * hc.b_v - 0.22
                src = f"Harris B - V = {hc.b_v} via Jester et al. (2005)"
            else:
                gr_ = DEFAULT_GR
                src = "a typical old globular cluster"
            w_.append(f"only the {band} band given: assumed g - r = {gr_:.2f} ({src}); give --g and --r for V")
            f1, wcs_ = field_flux(by_band[band])
            fac = _colour_factor(by_band[band].survey, gr_)
            flux_ = f1 * fac if band == "r" else f1 * fac * 10 ** (0.4 * gr_)  # F_r = F_g 10^(0.4 (g - r))
        else:
            raise InputError(f"{images[0].path}: band(s) {', '.join(by_band)} cannot be turned into V; give a V, "
                             "g + r, or a g or r image")
        return flux_, wcs_, max(fr_), gr_, w_, n_

    flux, out_wcs, nan_frac, gr, w1, n1 = v_field(ra, dec)
    ref = None
    if refine_centre:
        sm0, _ = prep.smooth(flux, already_px=already_px)
        ref = _refine(sm0, out_wcs, pscale)
        if ref.moved_arcsec > 1e-3:
            flux, out_wcs, nan_frac, gr, w1, n1 = v_field(ref.ra_deg, ref.dec_deg)
            ra, dec = ref.ra_deg, ref.dec_deg
        notes.append(f"centre refined on the cluster light: moved {ref.moved_arcsec:.2f}\" in {ref.iterations} steps"
                     + ("" if ref.converged else " (not converged)"))
        if ref.capped:
            warn.append(f"the light centroid lies more than {ref.moved_arcsec:.1f}\" from the given position; the "
                        "centre was moved that far only: check `ra`/`dec` or `target` (a bright star nearby?)")
    warn.extend(w1)
    notes.extend(n1)
    prepared = prep.prepare(flux, already_px=already_px)
    # missing area: the field's fraction not covered by valid input pixels (resampling), at least the
    # fraction of model pixels left empty by it
    prepared.masked_fraction = max(prepared.masked_fraction, nan_frac)
    if prepared.masked_fraction > 0:
        warn.append(f"{100 * prepared.masked_fraction:.2f}% of the field is missing (NaN, masked or beyond the image "
                    "border) and was inpainted by the smoothing"
                    + (f"; {100 * prepared.unfilled_fraction:.2f}% lies too far from valid pixels to be filled well"
                       if prepared.unfilled_fraction > 0 else ""))
    notes.append(f"prepared as the training images: smoothing sigma = {prepared.smoothing_applied_px:.2f} px, "
                 f"input {prepared.transform_used}")
    # ---------------------------------------------------------------- network
    # the prepared input holds transformed values already: the model only standardises them
    d = tm.decode_parts(tm.outputs(np.asarray(prepared.x, np.float32)[None, None], log10_input=True,
                                   rotations=max(1, min(4, rotations))))
    lmap = d["log10_map"][0]
    lstd = d["log10_map_std"][0]
    ltot = float(d["log10_total"][0])
    ltot_err = float(d["log10_total_std"][0])
    res = ImagePrediction(image=str(path), model=str(mpath), ra_deg=float(ra), dec_deg=float(dec), target=target,
                          mass_map=10.0**lmap, log10_mass_std=lstd, flux_v=prepared.flux, wcs=out_wcs,
                          mass_total=10.0**ltot, log10_mass_total=ltot, log10_mass_total_err=ltot_err,
                          extinction_v=av, g_minus_r=gr, flux_total=float(prepared.flux.sum()),
                          warnings=warn, notes=notes + [n for im in images for n in im.notes],
                          noise_sigma=prepared.noise_sigma, masked_fraction=prepared.masked_fraction,
                          unfilled_fraction=prepared.unfilled_fraction, floored_fraction=prepared.floored_fraction,
                          transform_used=prepared.transform_used, smoothing_applied_px=prepared.smoothing_applied_px,
                          centre_refined=ref is not None, centre_moved_arcsec=ref.moved_arcsec if ref else 0.0,
                          asymmetry=light_asymmetry(prepared.flux, prepared.noise_sigma, ASYMMETRY_RADIUS_ARCSEC / pscale))
    names = list(getattr(task, "scalar_names", []))
    if "scalar" in d:
        for j, nm in enumerate(names):
            v, s = float(d["scalar"][0, j]), float(d["scalar_std"][0, j])
            lo = float(d["scalar_lo"][0, j]) if "scalar_lo" in d else v - s
            hi = float(d["scalar_hi"][0, j]) if "scalar_hi" in d else v + s
            if nm == "distance":
                res.distance_kpc, res.distance_err_kpc, res.distance_lo_kpc, res.distance_hi_kpc = v, s, lo, hi
            elif nm == "age":
                res.age_gyr, res.age_err_gyr, res.age_lo_gyr, res.age_hi_gyr = v, s, lo, hi
    if hc is not None:
        res.harris = {"id": hc.id, "name": hc.name, "distance_kpc": hc.distance_kpc, "ebv": hc.ebv,
                      "m_v_t": hc.m_v_t, "citation": "Harris 1996, AJ 112, 1487 (2010 edition)"}
    if math.isfinite(res.distance_kpc) and res.distance_kpc > 0:
        res.lum_v = 4.0 * math.pi * res.distance_kpc**2 * res.flux_total
        if res.lum_v > 0:
            res.ml_v = res.mass_total / res.lum_v
            res.log10_ml_v_err = math.sqrt(ltot_err**2 + (2 * res.distance_err_kpc / (res.distance_kpc * math.log(10))) ** 2)
    elif res.distance_kpc <= 0:
        warn.append(f"predicted distance {res.distance_kpc:.1f} kpc is not positive; no luminosity or M/L "
                    "(a model without parametrised outputs)")
    if math.isfinite(res.age_gyr) and not 0 < res.age_gyr <= 14.5:
        warn.append(f"predicted age {res.age_gyr:.2f} Gyr is outside (0, 14.5] Gyr (a model without parametrised "
                    "outputs): not a physical age")
    _check_inputs(res, prep, warn)
    _check_range(res, task, warn)
    if hc is not None:
        _check_catalogue(res, hc, task, warn)
    return res


def _check_catalogue(res: ImagePrediction, hc: Any, task: Any, warn: list[str]) -> None:
    """With a Harris target: its distance beside the prediction (a note), and its half-light radius against
    the training clusters' (pi-DOC reads distance largely from apparent size; docs/pidoc-results.md)."""
    if math.isfinite(hc.distance_kpc) and math.isfinite(res.distance_kpc):
        lo, hi = res.distance_lo_kpc, res.distance_hi_kpc
        inside = "inside" if lo <= hc.distance_kpc <= hi else "outside"
        res.notes.append(f"Harris 1996 (2010 edition) gives R_Sun = {hc.distance_kpc:g} kpc, {inside} the predicted "
                         f"68% interval ({lo:.1f}-{hi:.1f} kpc)")
    rng = (getattr(task, "training_range", {}) or {}).get("r_half_light_pc")
    r = hc.r_h_pc
    if not rng or not math.isfinite(r):
        return
    lo, hi = (float(v) for v in rng)
    if lo <= r <= hi:
        return
    res.in_training_range = False
    if res.status == "ok":
        res.status = "outside the training range"
    side, direction = ("smaller", "too large") if r < lo else ("larger", "too small")
    ratio = lo / r if r < lo else r / hi
    warn.append(f"{hc.id}'s half-light radius is {r:.2f} pc (Harris: {hc.r_h_arcmin:g}' at {hc.distance_kpc:g} kpc), "
                f"{side} than the training clusters' {lo:.2f}-{hi:.2f} pc: the model reads distance largely from "
                f"apparent size, so the distance is likely {direction}, by up to {ratio:.1f}x, and the luminosity "
                "and M/L with it")


def _check_inputs(res: ImagePrediction, prep: Any, warn: list[str]) -> None:
    """Noise level and floored pixels against what the model was trained on."""
    sig = res.noise_sigma
    hi = float(prep.noise_sigma[1]) if prep.noise_sigma else 0.0
    if math.isfinite(sig):
        if prep.noise == "none" and sig > 10 * prep.floor:
            warn.append(f"the model was trained on noiseless images; this one has a smoothed noise of {sig:.2g} "
                        "Lsun/kpc^2 per pixel (read with a log softened at that noise; a noise-aware model is better)")
        elif hi > 0 and sig > 1.5 * hi:
            res.in_training_range = False
            warn.append(f"the image's smoothed noise, {sig:.2g} Lsun/kpc^2 per pixel, is {sig / hi:.1f} times the "
                        f"noisiest training image ({hi:.2g}): the prediction is an extrapolation")
    if res.floored_fraction > 0.95:
        warn.append(f"{100 * res.floored_fraction:.0f}% of the field is at or below the noise level / log floor: "
                    "little of the cluster is visible")


def _check_range(res: ImagePrediction, task: Any, warn: list[str]) -> None:
    """Flag inputs and results outside the training set (Chardin & Bianchini 2021, Fig. 10) or near its
    edges, and set ``status``; far outside, the warning goes first."""
    rng = getattr(task, "training_range", {}) or {}
    checks = []  # (what, value, (lo, hi), log scale)
    if res.flux_total > 0 and "log10_flux_total" in rng:
        checks.append(("total V flux in the field (log10 Lsun/kpc^2)", math.log10(res.flux_total), rng["log10_flux_total"], False))
    if math.isfinite(res.lum_v) and res.lum_v > 0 and "lum_v_fov" in rng:
        checks.append(("V luminosity in the field (Lsun)", res.lum_v, rng["lum_v_fov"], True))
    if math.isfinite(res.distance_kpc) and "distance" in rng:
        checks.append(("distance (kpc)", res.distance_kpc, rng["distance"], False))
    if "mass_fov" in rng:
        checks.append(("mass in the field (Msun)", res.mass_total, rng["mass_fov"], True))
    far = []
    for what, v, (lo, hi), logscale in checks:
        if not (lo <= v <= hi):
            res.in_training_range = False
            dex = (math.log10(v / hi) if v > hi else math.log10(lo / v)) if logscale else (
                v - hi if v > hi else lo - v) if "log10" in what else 0.0
            if what.startswith(("total V flux", "V luminosity")) and dex > FAR_OUTSIDE_DEX:
                far.append(f"{what} = {v:.4g} is {dex:.1f} dex outside the training range {lo:.4g} to {hi:.4g}")
            warn.append(f"{what} = {v:.4g} lies outside the training range {lo:.4g} to {hi:.4g}: the prediction "
                        "is an extrapolation (pi-DOC failed on clusters brighter than its training set)")
    for what, v, key in (("distance", res.distance_kpc, "distance"), ("age", res.age_gyr, "age")):
        if key in rng and math.isfinite(v) and rng[key][0] <= v <= rng[key][1]:
            lo, hi = rng[key]
            if min(v - lo, hi - v) < EDGE_FRACTION * (hi - lo):
                warn.append(f"predicted {what} {v:.3g} is near the edge of the training range ({lo:.3g} to {hi:.3g}): "
                            "networks pull predictions inwards there, so the truth may lie beyond it")
    if "asymmetry" in rng and math.isfinite(res.asymmetry) and res.asymmetry > float(rng["asymmetry"][1]):
        res.in_training_range = False
        warn.append(f"the light in the inner 5\" is more asymmetric (A = {res.asymmetry:.2f}) than in any training "
                    f"image (at most {float(rng['asymmetry'][1]):.2f}): resolved bright stars, a foreground star or "
                    "a second source near the centre; the prediction is an extrapolation")
    if res.flux_total <= 0:
        res.in_training_range = False
        warn.append("the field has no positive flux; the image may not contain the cluster")
    if far:
        res.status = "far outside the training range"
        warn[:0] = [res.status + ": the numbers are extrapolations, not measurements (" + "; ".join(far) + ")"]
    elif not res.in_training_range:
        res.status = "outside the training range"


def save_image_prediction(pred: ImagePrediction, out: str | Path, *, overwrite: bool = False,
                          stem: str | None = None, table_format: str = "ecsv", plots: bool = True) -> dict[str, Path]:
    """Write ``<stem>_mass.fits`` (mass map with the cutout's WCS; LOGSTD and FLUXV extensions),
    ``<stem>_prediction.json``, ``<stem>_prediction.ecsv`` (or ``.vot`` with ``table_format="votable"``; the
    scalars with units, :meth:`ImagePrediction.to_table`) and, with ``plots``, ``<stem>_quicklook.png`` into
    the folder ``out``."""
    from gcml.io.common import make_output_dir

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"`out` {out}: exists and is not a folder")
    make_output_dir(out)
    stem = stem or Path(pred.image).name.split(".")[0]
    from gcml.io.common import output_lock

    # one image's files are one output: locked from the existence checks to the last file, so two runs
    # never leave a mix of their files (a second writer fails with one sentence)
    with output_lock(out / stem):
        return _save_image_prediction(pred, out, stem, overwrite, table_format, plots)


def _save_image_prediction(pred: ImagePrediction, out: Path, stem: str, overwrite: bool,
                           table_format: str, plots: bool) -> dict[str, Path]:
    from gcml.io.common import atomic_output
    from gcml.io.fits import FitsExtension, write_fits_image
    from gcml.io.tables import TABLE_FORMATS, write_table

    paths = {"fits": out / f"{stem}_mass.fits", "json": out / f"{stem}_prediction.json",
             "table": out / f"{stem}_prediction{TABLE_FORMATS[table_format]}", "png": out / f"{stem}_quicklook.png"}
    if not plots:
        del paths["png"]
    if not overwrite:
        for p in paths.values():
            if p.exists():
                from gcml.errors import OutputExistsError

                raise OutputExistsError(f"{p} already exists; pass `overwrite` to replace it")

    def num(v: float) -> float | str:
        return float(v) if math.isfinite(v) else "nan"

    cards = [
        ("GCMLMTOT", num(pred.mass_total), "[Msun] mass in the field"),
        ("GCMLLMT", num(pred.log10_mass_total), "[dex Msun] log10 mass in the field"),
        ("GCMLLMTE", num(pred.log10_mass_total_err), "[dex] 1-sigma of log10 mass"),
        ("GCMLDIST", num(pred.distance_kpc), "[kpc] distance"),
        ("GCMLDISE", num(pred.distance_err_kpc), "[kpc] 1-sigma distance"),
        ("GCMLAGE", num(pred.age_gyr), "[Gyr] age"),
        ("GCMLAGEE", num(pred.age_err_gyr), "[Gyr] 1-sigma age"),
        ("GCMLLV", num(pred.lum_v), "[Lsun] V luminosity in the field"),
        ("GCMLML", num(pred.ml_v), "[Msun/Lsun] M/L_V in the field"),
        ("GCMLMLE", num(pred.log10_ml_v_err), "[dex] 1-sigma of log10 M/L_V"),
        ("GCMLAV", float(pred.extinction_v), "[mag] A_V removed"),
        ("GCMLGR", num(pred.g_minus_r), "[mag] g - r used for V (measured or assumed)"),
        ("GCMLINR", bool(pred.in_training_range), "inputs inside the training range"),
        ("GCMLSTAT", pred.status, "ok / (far) outside the training range"),
        ("GCMLDILO", num(pred.distance_lo_kpc), "[kpc] 68% interval, lower"),
        ("GCMLDIHI", num(pred.distance_hi_kpc), "[kpc] 68% interval, upper"),
        ("GCMLAGLO", num(pred.age_lo_gyr), "[Gyr] 68% interval, lower"),
        ("GCMLAGHI", num(pred.age_hi_gyr), "[Gyr] 68% interval, upper"),
        ("GCMLNOIS", num(pred.noise_sigma), "[Lsun/kpc2] smoothed noise per pixel"),
        ("GCMLMASK", float(pred.masked_fraction), "fraction of the field missing, inpainted"),
        ("GCMLFLOR", float(pred.floored_fraction), "fraction below noise / log floor"),
        ("GCMLCMOV", float(pred.centre_moved_arcsec), "[arcsec] centre moved onto the light"),
        ("GCMLASYM", num(pred.asymmetry), "rotational asymmetry of the inner 5 arcsec"),
        ("GCMLNWRN", len(pred.warnings), "warnings GCMLWnnn (full text: JSON)"),
        *[(f"GCMLW{i + 1:03d}", w[:66], "") for i, w in enumerate(pred.warnings[:99])],
        ("GCMLMODL", Path(pred.model).name[-60:], "model bundle"),
        ("GCMLIMG", Path(pred.image).name[-60:], "input image"),
    ]
    from gcml.io.common import sha256_file

    model = Path(pred.model)
    history = [f"model {model.name} sha256 {sha256_file(model) if model.is_file() else 'unknown'}",
               f"input image {Path(pred.image).name}"]
    comments = [f"warning: {w}" for w in pred.warnings] + [f"note: {n}" for n in pred.notes]
    write_fits_image(paths["fits"], pred.mass_map.astype(np.float32), pred.wcs, unit="Msun", header_cards=cards,
                     history=history, comments=comments,
                     extensions=[FitsExtension("LOGSTD", pred.log10_mass_std.astype(np.float32), unit="dex",
                                               cards={"COMMENT": "1-sigma of log10 mass per pixel"}),
                                 FitsExtension("FLUXV", pred.flux_v.astype(np.float32), unit="Lsun/kpc2",
                                               cards={"COMMENT": "model input: V flux per pixel L/(4 pi d^2)"})],
                     overwrite=overwrite)
    with atomic_output(paths["json"], overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(pred.summary(), indent=1, default=str))
    write_table(pred.to_table(), paths["table"], overwrite=overwrite)
    if plots:
        _quicklook(pred, paths["png"], overwrite)
    return paths


def sky_extent(wcs: Any, shape: tuple[int, int]) -> tuple[list[float], str, str] | None:
    """imshow extent [arcsec] of a north-up TAN field about its centre, east to the left (RA offset grows to
    the left), and the axis labels; None when the WCS is not a north-up celestial one (then pixels are shown)."""
    if wcs is None or not getattr(wcs, "has_celestial", False):
        return None
    try:
        pc = wcs.wcs.get_pc()
        cd = np.asarray(wcs.wcs.cdelt, float)[:2] * 3600.0
    except Exception:  # noqa: BLE001  (a WCS without PC/CDELT: show pixels)
        return None
    if abs(pc[0, 1]) > 1e-9 or abs(pc[1, 0]) > 1e-9:
        return None  # rotated: offsets along the pixel axes would not be RA/Dec
    h, w = shape
    x0, x1 = -w / 2 * cd[0], w / 2 * cd[0]  # CDELT1 < 0 (east left): x0 > 0 on the left
    y0, y1 = -h / 2 * cd[1], h / 2 * cd[1]
    return [x0, x1, y0, y1], "ΔRA cos Dec [arcsec] (east left)", "ΔDec [arcsec] (north up)"


def _quicklook(pred: ImagePrediction, path: Path, overwrite: bool) -> None:
    """Three panels: the prepared V flux, the mass map, its uncertainty, in arcsec offsets from the field's
    centre (RA/Dec given in the title), east left, north up. Plain matplotlib axes: WCSAxes and
    tight_layout took 0.5-0.8 s of CPU, more than the whole prediction (docs/benchmarks.md)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from gcml.io.common import atomic_output

    h, w = pred.mass_map.shape
    sky = sky_extent(pred.wcs, (h, w))
    ext, xl, yl = sky if sky else ([-w / 2, w / 2, -h / 2, h / 2], "x [pixel]", "y [pixel]")
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(12, 4.2))
    fig.subplots_adjust(left=0.06, right=0.94, bottom=0.14, top=0.85, wspace=0.3)
    ax = fig.subplots(1, 3, sharex=True, sharey=True)  # one set of axis labels: a third of the text to draw
    kw = {"origin": "lower", "extent": ext, "interpolation": "nearest"}
    # explicit title heights (no search for the tick labels' extent) and at most 5 ticks per axis: matplotlib
    # builds and draws every tick, and the automatic title placement measured them all again (half the
    # quick-look's CPU time before, docs/benchmarks.md)
    tkw = {"fontsize": 10, "y": 1.01}
    ax[0].imshow(np.log10(np.maximum(pred.flux_v, 1e-9)), cmap="gray", **kw)
    ax[0].set_title("log10 V flux (model input)", **tkw)
    im = ax[1].imshow(np.log10(pred.mass_map), cmap="magma", **kw)
    cb1 = fig.colorbar(im, ax=ax[1], label="log10 M [Msun/px]", fraction=0.046, pad=0.02)
    ax[1].set_title(f"mass: 10^{pred.log10_mass_total:.2f}±{pred.log10_mass_total_err:.2f} Msun", **tkw)
    im = ax[2].imshow(pred.log10_mass_std, cmap="viridis", **kw)
    cb2 = fig.colorbar(im, ax=ax[2], label="sigma [dex]", fraction=0.046, pad=0.02)
    ax[2].set_title(f"d = {pred.distance_kpc:.1f}±{pred.distance_err_kpc:.1f} kpc, age {pred.age_gyr:.1f}±{pred.age_err_gyr:.1f} Gyr",
                    fontsize=9, y=1.01)
    for cb in (cb1, cb2):
        cb.locator = MaxNLocator(4)
    ax[0].xaxis.set_major_locator(MaxNLocator(4))
    ax[0].yaxis.set_major_locator(MaxNLocator(4))
    for a in ax:
        a.set_xlabel(xl, fontsize=9)
    ax[0].set_ylabel(yl, fontsize=9)
    if sky:
        fig.suptitle(f"field centre RA {pred.ra_deg:.5f}, Dec {pred.dec_deg:+.5f} (ICRS, deg)", fontsize=10)
    with atomic_output(path, overwrite=overwrite) as tmp:
        fig.savefig(tmp, dpi=80, format="png", pil_kwargs={"compress_level": 1})  # zlib level 6: 35 ms more per image
