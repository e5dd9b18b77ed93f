"""FITS writer: valid celestial WCS, units, keywords, extensions, atomic and overwrite-safe."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from gcml.errors import InputError, OutputExistsError
from gcml.io.fits import FitsExtension, make_tan_wcs, write_fits_image


def test_tan_wcs_scale_and_reference(tmp_path):
    wcs = make_tan_wcs((160, 160), 0.25, ra_deg=201.7, dec_deg=-47.5)
    data = np.arange(160 * 160, dtype=np.float32).reshape(160, 160)
    p = write_fits_image(tmp_path / "a.fits", data, wcs, unit="Lsun/kpc2",
                         header_cards={"GCMLDIST": (60.0, "[kpc] distance"), "snapshot_name": "x"},
                         extensions=[FitsExtension("mass", np.ones((160, 160)), unit="Msun")])
    with fits.open(p) as h:
        assert [hdu.name for hdu in h] == ["PRIMARY", "MASS"]
        hdr = h[0].header
        assert hdr["BUNIT"] == "solLum kpc-2" and hdr["ORIGIN"] == "gcml" and "DATE" in hdr
        assert hdr["GCMLDIST"] == 60.0 and hdr["SNAPSHOT_NAME"] == "x"
        assert h[1].header["BUNIT"] == "solMass"
        np.testing.assert_array_equal(h[0].data, data)   # row 0 stays row 0 (origin lower)
        w = WCS(hdr)
        assert w.wcs.ctype[0] == "RA---TAN" and w.wcs.ctype[1] == "DEC--TAN"
        # reference point at the image centre, 0-based (79.5, 79.5)
        x, y = w.world_to_pixel_values(201.7, -47.5)
        assert x == pytest.approx(79.5) and y == pytest.approx(79.5)
        # one pixel = 0.25 arcsec; north up, east (increasing RA) to the left
        sc = w.pixel_to_world(np.array([79.5, 80.5, 79.5]), np.array([79.5, 79.5, 80.5]))
        assert sc[0].separation(sc[1]).arcsec == pytest.approx(0.25, rel=1e-6)
        assert sc[1].ra.deg < sc[0].ra.deg and sc[2].dec.deg > sc[0].dec.deg
        # the extension carries the same WCS
        assert WCS(h[1].header).wcs.crval.tolist() == pytest.approx([201.7, -47.5])


def test_overwrite_and_bad_input(tmp_path):
    wcs = make_tan_wcs((4, 4), 1.0)
    p = write_fits_image(tmp_path / "b.fits", np.zeros((4, 4)), wcs)
    with pytest.raises(OutputExistsError):
        write_fits_image(p, np.ones((4, 4)), wcs)
    write_fits_image(p, np.ones((4, 4)), wcs, overwrite=True)
    assert fits.getdata(p).sum() == 16
    with pytest.raises(InputError, match="2-D"):
        write_fits_image(tmp_path / "c.fits", np.zeros((2, 4, 4)), wcs)
    with pytest.raises(InputError, match="extension"):
        write_fits_image(tmp_path / "d.fits", np.zeros((4, 4)), wcs,
                         extensions=[FitsExtension("M", np.zeros((3, 3)))])
    with pytest.raises(InputError, match="pixel scale"):
        make_tan_wcs((4, 4), 0.0)
    assert sorted(f.name for f in tmp_path.iterdir()) == ["b.fits"]   # nothing half-written


def assert_fits_units(hdul) -> None:
    """Every BUNIT and every leading [unit] of a card comment parses with the FITS unit parser."""
    import re

    import astropy.units as u

    for hdu in hdul:
        for card in hdu.header.cards:
            if card.keyword == "BUNIT":
                u.Unit(card.value, format="fits")
            m = re.match(r"^\[([^\]]*)\]", card.comment or "")
            if m:
                u.Unit(m.group(1), format="fits")


@pytest.mark.parametrize("unit, bunit", [
    ("Msun", "solMass"), ("Lsun/kpc2", "solLum kpc-2"), ("km/s", "km s-1"), ("Msun/Lsun", "solMass solLum-1"),
    ("kpc", "kpc"), ("arcsec", "arcsec"), ("Gyr", "Gyr"), ("mag", "mag"), ("Lsun", "solLum"),
    ("px", "pix"), ("deg", "deg"), ("dex", ""), ("dex(Msun)", ""), ("log10(Lsun/kpc2)", ""), ("", "")])
def test_every_unit_gcml_writes_is_fits(unit, bunit):
    """FITS has no log units: dex-valued images are dimensionless and say what they are the log of."""
    import astropy.units as u

    from gcml.io.fits import fits_comment, fits_unit

    got, meaning = fits_unit(unit)
    assert got == bunit
    u.Unit(got, format="fits")
    if unit.startswith(("dex(", "log10(")):
        assert meaning.startswith("log10(value / ") and "Msun" not in meaning and "Lsun" not in meaning
    c = fits_comment(f"[{unit}] a value")
    if bunit:
        assert c == f"[{bunit}] a value"
    else:
        assert not c.startswith("[")


def test_written_file_units_and_history(tmp_path):
    wcs = make_tan_wcs((8, 8), 0.25)
    p = write_fits_image(tmp_path / "h.fits", np.ones((8, 8)), wcs, unit="Msun",
                         header_cards=[("GCMLLMT", 11.5, "[dex Msun] log10 mass"), ("GCMLML", 2.0, "[Msun/Lsun] M/L"),
                                       ("GCMLLMTE", 0.1, "[dex] 1-sigma of log10 mass")],
                         extensions=[FitsExtension("LOGSTD", np.ones((8, 8)), unit="dex"),
                                     FitsExtension("LOGF", np.ones((8, 8)), unit="log10(Lsun/kpc2)")],
                         history=["model m.pt sha256 abc"], comments=["warning: assumed g - r = 0.50"])
    with fits.open(p) as h:
        assert_fits_units(h)
        hdr = h[0].header
        assert hdr["BUNIT"] == "solMass"
        assert hdr.comments["GCMLLMT"] == "log10(value / solMass): log10 mass"
        assert hdr.comments["GCMLML"] == "[solMass solLum-1] M/L"
        history = [str(v) for v in hdr["HISTORY"]]
        assert history[0].startswith("gcml ") and history[-1] == "model m.pt sha256 abc"
        assert "warning: assumed g - r = 0.50" in [str(v) for v in hdr["COMMENT"]]
        assert "BUNIT" not in h["LOGSTD"].header and h["LOGSTD"].header["BTYPE"] == "dex"
        assert h["LOGF"].header["BTYPE"] == "log10(value / solLum kpc-2)"
