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
        assert hdr["BUNIT"] == "Lsun/kpc2" and hdr["ORIGIN"] == "gcml" and "DATE" in hdr
        assert hdr["GCMLDIST"] == 60.0 and hdr["SNAPSHOT_NAME"] == "x"
        assert h[1].header["BUNIT"] == "Msun"
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
