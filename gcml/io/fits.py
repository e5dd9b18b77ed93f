"""FITS images with a celestial WCS, for mock observations and predicted maps.

One image per file: the primary HDU holds the image (rows = y, FITS order, so a ``(H, W)`` array with
``origin="lower"`` maps to FITS pixels directly), a TAN (gnomonic) WCS, ``BUNIT``, ``ORIGIN``, ``DATE``
and ``GCML*`` keywords; further images (e.g. the truth mass map) follow as named image extensions with the
same WCS. Files are written atomically and never overwritten unless asked, and open in astropy and DS9.

Units follow the FITS standard (v4.0, section 4.3), so ``astropy.units.Unit(s, format="fits")`` parses every
``BUNIT`` and every ``[unit]`` at the start of a card comment gcml writes: ``Msun`` is written
``solMass``, ``Lsun/kpc2`` ``solLum kpc-2``, ``km/s`` ``km s-1`` (:func:`fits_unit`). The standard has no
logarithmic units, so **dex-valued quantities** (log10 of a quantity, and uncertainties of such logs) are
written as dimensionless numbers: ``BUNIT`` is left out (an image) and the comment names the quantity,
``log10(value / solMass)`` or ``dex`` for a difference of log10 values. Every file carries ``HISTORY`` cards
with the gcml version and the command that wrote it (and, for predictions, the model's sha256).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gcml.errors import InputError
from gcml.io.common import atomic_output, utc_now


def make_tan_wcs(shape: tuple[int, int], pixel_scale_arcsec: float, *, ra_deg: float = 0.0,
                 dec_deg: float = 0.0, crpix: tuple[float, float] | None = None,
                 east_left: bool = True) -> Any:
    """A celestial TAN WCS for an image of ``shape`` (H, W) with square pixels.

    Parameters
    ----------
    shape : (H, W)
    pixel_scale_arcsec : float
        Pixel size [arcsec]; ``CDELT2 = scale / 3600`` deg, ``CDELT1 = -scale / 3600`` when ``east_left``
        (north up, east left, as on the sky).
    ra_deg, dec_deg : float
        ``CRVAL``: sky position of the reference pixel (ICRS, degrees).
    crpix : (x, y), optional
        1-based FITS reference pixel; default the image centre ((W + 1) / 2, (H + 1) / 2).

    Returns
    -------
    astropy.wcs.WCS
    """
    from astropy.wcs import WCS

    h, w = (int(v) for v in shape)
    if not (math.isfinite(pixel_scale_arcsec) and pixel_scale_arcsec > 0):
        raise InputError(f"WCS pixel scale must be a positive number of arcsec, got {pixel_scale_arcsec}")
    if not (math.isfinite(ra_deg) and math.isfinite(dec_deg) and -90.0 <= dec_deg <= 90.0):
        raise InputError(f"WCS centre must have finite RA and -90 <= Dec <= 90 degrees, got ({ra_deg}, {dec_deg})")
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.cunit = ["deg", "deg"]
    wcs.wcs.crval = [float(ra_deg) % 360.0, float(dec_deg)]
    wcs.wcs.crpix = list(crpix) if crpix is not None else [(w + 1) / 2.0, (h + 1) / 2.0]
    s = pixel_scale_arcsec / 3600.0
    wcs.wcs.cdelt = [-s if east_left else s, s]
    wcs.wcs.radesys = "ICRS"
    wcs.wcs.equinox = 2000.0
    return wcs


_LOG = re.compile(r"^(?:dex|log10|log)\s*(?:\((.*)\)|\s+(.+))?$", re.IGNORECASE)


def fits_unit(unit: str) -> tuple[str, str]:
    """``(unit string of the FITS standard, what it means)`` for a gcml/astropy unit string.

    ``"Msun"`` -> ``("solMass", "")``; ``"Lsun/kpc2"`` -> ``("solLum kpc-2", "")``; a dex-valued unit
    (``"dex"``, ``"dex(Msun)"``, ``"dex Msun"``, ``"log10(Lsun/kpc2)"``) -> ``("", "log10(value / solMass)")``
    or ``("", "dex")``: FITS has no logarithmic units, so such values are dimensionless and the comment
    says what they are the log of. Raises ValueError for a string astropy cannot parse.
    """
    import astropy.units as u

    s = str(unit or "").strip()
    if not s:
        return "", ""
    m = _LOG.match(s)
    if m:
        inner = (m.group(1) or m.group(2) or "").strip()
        if not inner:
            return "", "dex"
        return "", f"log10(value / {u.Unit(inner).to_string('fits')})"
    return u.Unit(ALIASES.get(s, s)).to_string("fits"), ""


#: unit spellings gcml uses that astropy does not know
ALIASES = {"px": "pix", "pixel": "pix", "pixels": "pix"}


def fits_comment(comment: str) -> str:
    """A card comment whose leading ``[unit]`` is written in FITS units (see :func:`fits_unit`)."""
    m = re.match(r"^\[([^\]]*)\]\s*(.*)$", str(comment))
    if not m:
        return str(comment)
    unit, text = fits_unit(m.group(1))
    if unit:
        return f"[{unit}] {text}".rstrip() if not m.group(2) else f"[{unit}] {m.group(2)}"
    if text:  # dex-valued: dimensionless, say what it is the log of
        return f"{text}: {m.group(2)}" if m.group(2) else text
    return m.group(2)


@dataclass
class FitsExtension:
    """An extra image HDU: ``name`` (EXTNAME), data (H, W), unit (BUNIT) and more header cards."""

    name: str
    data: np.ndarray
    unit: str = ""
    cards: Mapping[str, Any] = field(default_factory=dict)


def _card_key(key: str) -> str:
    k = key.upper()
    if len(k) > 8 and not k.startswith("HIERARCH"):
        k = "HIERARCH " + k
    return k


def set_cards(header: Any, cards: Mapping[str, Any] | Sequence[tuple] | None) -> None:
    """Set (key, value[, comment]) cards: HIERARCH keys, FITS units in comments, non-finite floats as text,
    and a comment that does not fit on its card dropped rather than truncated with a warning."""
    if not cards:
        return
    items = cards.items() if isinstance(cards, Mapping) else cards
    for item in items:
        key, value, *comment = item
        if isinstance(value, (np.generic,)):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            value = str(value)
        k = _card_key(key)
        # a comment that does not fit on the card is dropped rather than truncated with a warning
        text = fits_comment(comment[0]) if comment else ""
        fits_card = not text or len(k) + len(repr(value)) + len(text) + 6 <= 80
        header[k] = (value, text) if text and fits_card else value


def _set_unit(header: Any, unit: str) -> None:
    bunit, meaning = fits_unit(unit)
    if bunit:
        header["BUNIT"] = (bunit, "unit of the pixel values (FITS standard)")
    elif meaning:
        note = "dimensionless: FITS has no log units"
        header["BTYPE"] = (meaning[:68], note) if len(meaning) + len(note) + 16 <= 80 else meaning[:68]


def write_fits_image(path: str | Path, data: np.ndarray, wcs: Any | None = None, *,
                     header_cards: Mapping[str, Any] | Sequence[tuple] | None = None,
                     extensions: Sequence[FitsExtension] = (), unit: str = "",
                     history: Sequence[str] = (), comments: Sequence[str] = (),
                     overwrite: bool = False) -> Path:
    """Write one image (and optional extensions) to a FITS file, atomically.

    Parameters
    ----------
    path : path
        Output file; refused if it exists unless ``overwrite``.
    data : (H, W) array
        The image, row 0 at the bottom (FITS convention).
    wcs : astropy.wcs.WCS, optional
        Written into the primary header and every extension.
    header_cards : mapping or sequence of (key, value[, comment])
        Extra primary-header cards; keys longer than 8 characters become HIERARCH cards.
    extensions : sequence of FitsExtension
        Extra images of the same shape, written as named ImageHDUs with the same WCS.
    unit : str
        Unit of the primary image, any astropy unit string or a dex-valued one (written with
        :func:`fits_unit`: ``Msun`` becomes ``BUNIT = 'solMass'``).
    history : sequence of str
        ``HISTORY`` lines after the one gcml always writes (gcml version, UTC date, the command line),
        e.g. the model's checksum.
    comments : sequence of str
        ``COMMENT`` lines (assumptions and warnings of the result).

    Returns
    -------
    Path of the written file.
    """
    from astropy.io import fits

    from gcml._version import __version__

    arr = np.asarray(data)
    if arr.ndim != 2:
        raise InputError(f"{path}: a FITS image must be 2-D (H, W), got shape {arr.shape}")
    if arr.dtype.kind not in "fiu":
        raise InputError(f"{path}: FITS image data must be numeric, got dtype {arr.dtype}")
    from gcml.io.common import command_line

    hdr = wcs.to_header() if wcs is not None else fits.Header()
    _set_unit(hdr, unit)
    hdr["ORIGIN"] = ("gcml", "software that wrote this file")
    now = utc_now().rstrip("Z")
    hdr["DATE"] = (now, "UTC date the file was written")
    hdr["GCMLVER"] = (__version__, "gcml version")
    set_cards(hdr, header_cards)
    for line in (f"gcml {__version__} {now}: {command_line()}", *history):
        hdr.add_history(str(line))
    for line in comments:
        hdr.add_comment(str(line))
    hdus = [fits.PrimaryHDU(data=arr, header=hdr)]
    for ext in extensions:
        e = np.asarray(ext.data)
        if e.shape != arr.shape:
            raise InputError(f"{path}: extension {ext.name} has shape {e.shape}, the image {arr.shape}")
        eh = wcs.to_header() if wcs is not None else fits.Header()
        _set_unit(eh, ext.unit)
        set_cards(eh, ext.cards)
        hdus.append(fits.ImageHDU(data=e, header=eh, name=ext.name.upper()))
    out = Path(path)
    with atomic_output(out, overwrite=overwrite) as tmp:
        fits.HDUList(hdus).writeto(tmp, output_verify="exception")
    return out
