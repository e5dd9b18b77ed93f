"""Catalogue prediction at astropy's edges: Table / SkyCoord / Quantity inputs give the same numbers as a path
and plain floats; results as QTables with units; ``gcml predict CATALOGUE`` writes an ECSV (or VOTable) that
astropy reads back with units, and the V / sigma / count maps as FITS with a celestial WCS."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gcml.prediction.catalogue import DEFAULT_MODEL_FILE, predict_catalogue

needs_default = pytest.mark.skipif(not DEFAULT_MODEL_FILE.is_file(), reason="default mass model not installed")

NGC3377 = {"ra": 161.92638, "dec": 13.985916, "distance_mpc": 10.9, "vsys": 690.0}


def _tsv(shared_data):
    return shared_data / "sluggs" / "ngc3377_gc_rv_forbes2017.tsv.txt"


def _masses(pred):
    return {k: (m.median, m.p16, m.p84, m.p2_5, m.p97_5, m.network_mean) for k, m in pred.masses.items()}


@needs_default
def test_table_skycoord_quantity_same_numbers_as_path_and_floats(shared_data):
    """An in-memory QTable (SkyCoord column, velocities in m/s), a SkyCoord centre and Quantities give the
    numbers of the file + floats call."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from astropy.table import QTable

    from gcml.io.tables import read_table

    tsv = _tsv(shared_data)
    ref = predict_catalogue(tsv, None, n_samples=40, seed=3, r_e_kpc=2.0, **NGC3377)
    t = read_table(tsv)
    q = QTable()
    q["pos"] = SkyCoord(np.asarray(t["RAJ2000"]) * u.deg, np.asarray(t["DEJ2000"]) * u.deg)
    q["HRV"] = np.asarray(t["HRV"], float) * 1000.0 * u.m / u.s
    q["e_HRV"] = np.asarray(t["e_HRV"], float) * u.km / u.s
    centre = SkyCoord(NGC3377["ra"] * u.deg, NGC3377["dec"] * u.deg).galactic  # any frame
    r_e = (2.0 / 10.9e3 * u.rad).to(u.arcsec)  # 2 kpc at 10.9 Mpc, as an angle
    pred = predict_catalogue(q, None, n_samples=40, seed=3, position=centre, distance_mpc=10900 * u.kpc,
                             vsys=690 * u.km / u.s, r_e_kpc=r_e)
    assert pred.n_gc == ref.n_gc == 126
    assert pred.ra_deg == pytest.approx(ref.ra_deg, abs=1e-9) and pred.dec_deg == pytest.approx(ref.dec_deg, abs=1e-9)
    assert pred.distance_mpc == pytest.approx(10.9) and pred.vsys_kms == pytest.approx(690.0)
    assert pred.r_e_kpc == pytest.approx(2.0)
    a, b = _masses(pred), _masses(ref)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=0, atol=1e-6, err_msg=k)
    np.testing.assert_allclose(pred.maps, ref.maps, rtol=1e-6, atol=1e-4)
    assert str(pred.table) == "<astropy Table>"


@needs_default
def test_api_predict_takes_a_table_and_result_to_table(shared_data, tmp_path):
    """gcml.api.predict with an astropy Table writes the same files as with a path; to_table() has units."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from astropy.table import QTable

    from gcml.api import predict
    from gcml.io.tables import read_table

    t = read_table(_tsv(shared_data))
    res = predict(t, position=SkyCoord(NGC3377["ra"], NGC3377["dec"], unit="deg"),
                  distance_mpc=10.9 * u.Mpc, vsys=NGC3377["vsys"], n_samples=30, out=tmp_path / "o", device="cpu")
    assert res.kind == "catalogue"
    assert {p.name for p in res.files.values()} == {"prediction.json", "prediction.ecsv", "maps.fits", "maps.png",
                                                    "posterior_samples.ecsv", "corner.png", "profile.png"}
    qt = res.to_table()
    assert isinstance(qt, QTable)
    assert qt["median"].unit == u.dex(u.Msun) and qt["network_std"].unit == u.dex and qt["radius"].unit == u.kpc
    assert qt.meta["distance"] == 10.9 * u.Mpc
    row = qt[list(qt["quantity"]).index("log10_mass_total")]
    assert row["median"].value == pytest.approx(res.prediction.masses["log10_mass_total"].median)
    assert "tme_log10_mass_within_rout" in list(qt["quantity"])
    # a Quantity of the wrong kind names the parameter
    from gcml.errors import GcmlError

    with pytest.raises(GcmlError, match="`distance_mpc`"):
        predict(t, position=SkyCoord(NGC3377["ra"], NGC3377["dec"], unit="deg"), distance_mpc=10.9 * u.km / u.s,
                n_samples=30, device="cpu")
    with pytest.raises(GcmlError, match="`position`"):
        predict(t, position=SkyCoord(NGC3377["ra"], NGC3377["dec"], unit="deg"), ra=1.0, dec=2.0,
                distance_mpc=10.9, n_samples=30, device="cpu")


@needs_default
def test_cli_catalogue_writes_ecsv_and_fits_with_wcs(shared_data, tmp_path, cli):
    """`gcml predict CATALOGUE` writes prediction.ecsv (units read back by astropy) and maps.fits whose WCS puts
    the galaxy centre at the central pixel, east left, with BUNITs FITS parses and HISTORY cards."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from astropy.io import fits
    from astropy.table import QTable
    from astropy.wcs import WCS

    out = tmp_path / "out"
    r = cli("predict", _tsv(shared_data), "--galaxy", "NGC 3377", "-o", out, "--samples", "40", "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert "prediction.ecsv" in r.output and "maps.fits" in r.output
    d = json.loads((out / "prediction.json").read_text())
    t = QTable.read(out / "prediction.ecsv")
    assert t["median"].unit == u.dex(u.Msun) and t["p16"].unit == u.dex(u.Msun)
    assert t["bootstrap_std"].unit == u.dex and t["radius"].unit == u.kpc
    i = list(t["quantity"]).index("log10_mass_total")
    assert t["median"][i].value == pytest.approx(d["masses"]["log10_mass_total"]["median"])
    assert t.meta["distance"].unit == u.Mpc and t.meta["distance"].value == pytest.approx(10.9)
    assert t.meta["vsys"].to_value(u.km / u.s) == pytest.approx(690.0)

    with fits.open(out / "maps.fits") as hdul:
        assert [h.name for h in hdul] == ["V", "SIGMA", "COUNT"]
        for h in hdul:
            u.Unit(h.header["BUNIT"], format="fits")  # parses
        assert u.Unit(hdul[0].header["BUNIT"], format="fits") == u.km / u.s
        hist = "\n".join(str(v) for v in hdul[0].header["HISTORY"])
        assert "gcml" in hist and "sha256" in hist and "mass-npe-default.pt" in hist
        w = WCS(hdul[0].header)
        v_fits = hdul[0].data
        h, wd = v_fits.shape
        assert hdul[0].header["CDELT1"] < 0 < hdul[0].header["CDELT2"]  # east left, north up
    centre = SkyCoord(d["ra_deg"], d["dec_deg"], unit="deg")
    c = w.pixel_to_world((wd - 1) / 2, (h - 1) / 2)
    assert c.separation(centre).arcsec < 1e-6
    # the pixel size is the map's kpc pixel at 10.9 Mpc
    pix_kpc = d["geometry"]["extent_kpc"] / wd
    step = w.pixel_to_world((wd - 1) / 2 + 1, (h - 1) / 2).separation(c).to_value(u.rad) * 10.9e3
    assert step == pytest.approx(pix_kpc, rel=1e-4)
    # orientation: map column j (x = east increasing) is FITS column W-1-j, and lies east of the centre for x > 0
    maps = np.asarray(d["maps"]["data"])
    np.testing.assert_allclose(v_fits, maps[0][:, ::-1], atol=1e-3)
    east = w.pixel_to_world(0, (h - 1) / 2)  # FITS column 0 = the map's last (most eastern) column
    assert centre.position_angle(east).to_value(u.deg) == pytest.approx(90.0, abs=0.1)


@needs_default
def test_cli_catalogue_votable_and_json(shared_data, tmp_path, cli):
    from astropy.table import Table

    out = tmp_path / "out"
    r = cli("predict", _tsv(shared_data), "--galaxy", "NGC 3377", "-o", out, "--samples", "20", "--device", "cpu",
            "--format", "votable", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["format"] == "gcml.catalogue-prediction" and d["n_gc"] == 126
    t = Table.read(out / "prediction.vot")
    assert str(t["radius"].unit) == "kpc"
    assert "log10" in t["median"].description  # VOUnits have no dex: the description says what it is
    from astropy.io.votable import parse

    info = {i.name: i.value for i in parse(out / "prediction.vot").get_first_table().infos}
    assert info["galaxy"] == "NGC 3377" and info["distance"] == "10.9 Mpc" and "warnings" in info
    r = cli("info", out / "prediction.vot")  # gcml info shows the INFO metadata too
    assert r.exit_code == 0 and "10.9 Mpc" in r.output and "VOTable" in r.output
    r = cli("info", out / "maps.fits")
    assert r.exit_code == 0 and "RA---TAN" in r.output and "km s-1" in r.output


def test_survey_result_to_table_has_units():
    import astropy.units as u
    from astropy.table import QTable

    from gcml.prediction.survey import GalaxyResult, SurveyResult

    res = SurveyResult(table=__import__("pathlib").Path("t.tsv"), summary_path=None, seconds=0.0,
                       galaxies=[GalaxyResult(name="NGC 3377", status="refused", reason="test")])
    t = res.to_table()
    assert isinstance(t, QTable) and len(t) == 1
    assert t["distance"].unit == u.Mpc and t["logM_rout"].unit == u.dex(u.Msun)
