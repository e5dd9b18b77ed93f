"""Image prediction (pi-DOC): FITS readers, zero points, flux-conserving cutouts, the full predict path
on a synthetic PS1 cutout with known truth, bad images, CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from gcml.errors import InputError

RA, DEC = 250.4218, 36.4599  # M 13


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A pidoc-net trained for one epoch on 32 x 32 Plummer images (8" field): exercises the machinery."""
    from test_pidoc_training import write_toy_mapset

    from gcml.training import TrainConfig, train

    d = tmp_path_factory.mktemp("tiny")
    data = write_toy_mapset(d / "images.h5")
    cfg = TrainConfig(model="pidoc-net", arch_kwargs={"filters": [4, 8, 8, 8]}, epochs=1, batch_size=8,
                      early_stopping=0)
    return train(data, cfg, d / "run").best_checkpoint


def gaussian_blob(size: int, sigma_px: float, total: float) -> np.ndarray:
    c = (size - 1) / 2
    y, x = np.mgrid[0:size, 0:size]
    g = np.exp(-((x - c) ** 2 + (y - c) ** 2) / (2 * sigma_px**2))
    return total * g / g.sum()


def test_distance_free_zero_point_known_answer():
    from gcml.prediction.images import counts_to_flux_factor

    # L_V = 1e5 Lsun at 10 kpc: M_V = 4.83 - 12.5, m = M_V + 15; F = L/(4 pi d^2) = 1e5/(400 pi) Lsun/kpc^2
    m = 4.83 - 2.5 * 5 + 15.0
    counts = 10 ** (-0.4 * (m - 25.0))
    assert counts * counts_to_flux_factor(25.0) == pytest.approx(1e5 / (400 * math.pi), rel=1e-12)
    # the same surface brightness at 100 kpc: 100x less light in 100x more area per pixel... per pixel
    # flux is L/(4 pi d^2): a 100x more luminous cluster at 10x the distance has the same F
    m100 = 4.83 - 2.5 * 7 + 20.0
    assert 10 ** (-0.4 * (m100 - 25.0)) * counts_to_flux_factor(25.0) == pytest.approx(1e5 / (400 * math.pi))
    # extinction: removing A_V brightens by 10^(0.4 A_V)
    assert counts_to_flux_factor(25.0, 0.5) / counts_to_flux_factor(25.0) == pytest.approx(10**0.2)


def test_ps1_asinh_and_zero_point_roundtrip(tmp_path):
    from gcml.observe.synthetic import write_ps1_cutout
    from gcml.prediction.images import counts_to_flux_factor, read_sky_image

    f = gaussian_blob(160, 10.0, 3.0)
    p = write_ps1_cutout(tmp_path / "c.fits", f, ra=RA, dec=DEC, band="r", g_minus_r=0.5, exptime=300.0)
    im = read_sky_image(p)
    assert im.survey == "ps1" and im.band == "r"
    assert im.zero_point == pytest.approx(25 + 2.5 * math.log10(300.0))
    assert im.pixel_scale_arcsec == pytest.approx(0.25, rel=1e-9)
    assert np.isnan(im.data[:3]).all() and np.isnan(im.data[:, -3:]).all()  # PS1's NaN border kept
    inner = im.data[40:200, 40:200] * counts_to_flux_factor(im.zero_point)
    from gcml.prediction.images import _colour_factor

    np.testing.assert_allclose(inner * _colour_factor("ps1", 0.5), f, rtol=1e-4, atol=1e-9 * f.max())


@pytest.mark.parametrize("in_scale", [0.25, 0.1, 0.4])
def test_resampling_conserves_flux(tmp_path, in_scale):
    from astropy.io import fits

    from gcml.io.fits import make_tan_wcs
    from gcml.prediction.images import read_sky_image, resample_field

    n = int(round(80 / in_scale))
    img = gaussian_blob(n, 2.0 / in_scale, 1000.0)  # sigma 2", total 1000 counts
    w = make_tan_wcs(img.shape, in_scale, ra_deg=RA, dec_deg=DEC)
    hdr = w.to_header()
    hdr["MAGZP"] = 25.0
    hdr["FILTER"] = "V"
    fits.PrimaryHDU(img, hdr).writeto(tmp_path / "i.fits")
    im = read_sky_image(tmp_path / "i.fits")
    out, _, nanf = resample_field(im, RA, DEC, (160, 160), 0.25)
    assert nanf < 1e-12
    assert out.sum() == pytest.approx(1000.0, rel=2e-3)
    # the centroid stays at the field centre
    y, x = np.mgrid[0:160, 0:160]
    assert (out * x).sum() / out.sum() == pytest.approx(79.5, abs=0.05)


def test_sdss_nanomaggies_and_gcml_units(tmp_path):
    from astropy.io import fits

    from gcml.io.fits import make_tan_wcs, write_fits_image
    from gcml.prediction.images import counts_to_flux_factor, read_sky_image

    w = make_tan_wcs((50, 50), 0.396, ra_deg=RA, dec_deg=DEC)
    h = w.to_header()
    h["BUNIT"] = "nanomaggy"
    h["FILTER"] = "r"
    fits.PrimaryHDU(np.ones((50, 50)), h).writeto(tmp_path / "sdss.fits")
    im = read_sky_image(tmp_path / "sdss.fits")
    assert (im.survey, im.band, im.zero_point) == ("sdss", "r", 22.5)
    write_fits_image(tmp_path / "g.fits", np.ones((20, 20)), make_tan_wcs((20, 20), 0.25, ra_deg=RA, dec_deg=DEC),
                     unit="Lsun/kpc2")
    im = read_sky_image(tmp_path / "g.fits")
    assert im.survey == "gcml" and im.band == "V"
    assert counts_to_flux_factor(im.zero_point) == pytest.approx(1.0)


def test_bad_images(tmp_path, tiny_model):
    from astropy.io import fits

    from gcml.io.fits import make_tan_wcs
    from gcml.observe.synthetic import write_ps1_cutout
    from gcml.prediction.images import predict_image, read_sky_image

    fits.PrimaryHDU(np.ones((50, 50))).writeto(tmp_path / "nowcs.fits")
    with pytest.raises(InputError, match="no celestial WCS"):
        read_sky_image(tmp_path / "nowcs.fits")
    h = make_tan_wcs((50, 50), 0.25, ra_deg=RA, dec_deg=DEC).to_header()
    fits.PrimaryHDU(np.ones((50, 50)), h).writeto(tmp_path / "nounit.fits")
    with pytest.raises(InputError, match="unknown flux units"):
        read_sky_image(tmp_path / "nounit.fits")
    with pytest.raises(InputError, match="not found"):
        read_sky_image(tmp_path / "missing.fits")
    # the tiny model's field is 8" (32 px of 0.25"); a 6" image is too small for it
    write_ps1_cutout(tmp_path / "small.fits", gaussian_blob(24, 3, 1.0), ra=RA, dec=DEC, size=24)
    with pytest.raises(InputError, match="too small for the model's 8\" x 8\" field"):
        predict_image(tmp_path / "small.fits", model=tiny_model)
    # field near the NaN border: the 3-px border lies inside -> inpainted by the smoothing, with a warning
    write_ps1_cutout(tmp_path / "edge.fits", gaussian_blob(32, 4, 1.0), ra=RA, dec=DEC, size=38, g_minus_r=0.5)
    pred = predict_image(tmp_path / "edge.fits", model=tiny_model, g=None, refine_centre=False)
    assert any("missing" in w and "inpainted" in w for w in pred.warnings)
    assert pred.masked_fraction > 0 and np.isfinite(pred.flux_v).all()
    # a field mostly NaN is refused
    d, cards = __import__("gcml.observe.synthetic", fromlist=["x"]).ps1_cutout_from_flux(
        gaussian_blob(32, 4, 1.0), ra=RA, dec=DEC, size=40, nan_border=12)
    hdr = fits.Header()
    for k, v, *_c in cards:
        hdr[k] = v
    fits.PrimaryHDU(d, hdr).writeto(tmp_path / "nan.fits")
    with pytest.raises(InputError, match="is NaN"):
        predict_image(tmp_path / "nan.fits", model=tiny_model)
    with pytest.raises(InputError, match="give both or neither"):
        predict_image(tmp_path / "edge.fits", model=tiny_model, ra=RA)


def test_g_plus_r_combine_into_v(tmp_path, tiny_model):
    from gcml.observe.synthetic import write_ps1_cutout
    from gcml.prediction.images import predict_image

    f = gaussian_blob(32, 4, 0.5)
    write_ps1_cutout(tmp_path / "r.fits", f, ra=RA, dec=DEC, size=60, band="r", g_minus_r=0.7)
    write_ps1_cutout(tmp_path / "g.fits", f, ra=RA, dec=DEC, size=60, band="g", g_minus_r=0.7)
    pred = predict_image(tmp_path / "r.fits", g=tmp_path / "g.fits", model=tiny_model)
    assert pred.g_minus_r == pytest.approx(0.7, abs=1e-4)
    # V flux recovered through g - r (Kostov & Bonev); the smoothing of the 8" field loses ~1 % at its edges
    assert pred.flux_total == pytest.approx(0.5, rel=1.5e-2)
    assert not any("assumed g - r" in w for w in pred.warnings)
    one = predict_image(tmp_path / "r.fits", model=tiny_model, target="M 13")  # Harris B - V = 0.68
    assert one.g_minus_r == pytest.approx(1.02 * 0.68 - 0.22)
    assert one.extinction_v == pytest.approx(3.1 * 0.02)
    assert one.harris["id"] == "NGC 6205"


def test_outputs_and_cli(tmp_path, tiny_model, cli):
    from astropy.io import fits

    from gcml.observe.synthetic import write_ps1_cutout

    write_ps1_cutout(tmp_path / "ps1_cutout.fits", gaussian_blob(32, 4, 0.5), ra=RA, dec=DEC, size=60)
    out = tmp_path / "out"
    args = ("predict", tmp_path / "ps1_cutout.fits", "--model", tiny_model, "-o", out)
    r = cli(*args)
    assert r.exit_code == 0, r.output
    assert "mass in the field" in r.output
    # notes speak in library terms in the files and name the options on the terminal
    text = " ".join(r.output.split())
    assert "no --ra/--dec or --target" in text and "give --target to use Harris" in text
    with fits.open(out / "ps1_cutout_mass.fits") as h:
        assert h[0].header["BUNIT"] == "solMass" and h[0].data.shape == (32, 32)
        from test_fits import assert_fits_units

        assert_fits_units(h)
        history = " ".join(str(v) for v in h[0].header["HISTORY"])
        assert "gcml " in history and "model best.pt sha256 " in history

        assert h[0].header["CTYPE1"] == "RA---TAN"
        assert h[0].header["GCMLMTOT"] == pytest.approx(float(h[0].data.astype(float).sum()), rel=1e-4)
        assert [x.name for x in h[1:]] == ["LOGSTD", "FLUXV"]
    js = json.loads((out / "ps1_cutout_prediction.json").read_text())
    assert js["log10_mass_total_err"] > 0 and "ml_v" in js
    assert "field centred on the image centre (no `ra`/`dec` or `target`)" in js["notes"]
    with fits.open(out / "ps1_cutout_mass.fits") as h:  # the assumed colour and the warnings in the header
        assert h[0].header["GCMLGR"] == pytest.approx(js["g_minus_r"])
        comments = " ".join(str(v) for v in h[0].header["COMMENT"]).split()
        for w in js["warnings"]:
            assert " ".join(w.split())[:40] in " ".join(comments)
    assert (out / "ps1_cutout_quicklook.png").stat().st_size > 1000
    # the results table: ECSV read back by astropy with units (log10 masses in dex(solMass))
    import astropy.units as u
    from astropy.table import QTable

    t = QTable.read(out / "ps1_cutout_prediction.ecsv")
    assert len(t) == 1 and t["mass_total"].unit == u.Msun and t["distance"].unit == u.kpc
    assert t["age"].unit == u.Gyr and t["ra"].unit == u.deg and t["ml_v"].unit == u.Msun / u.Lsun
    assert t["log10_mass_total"].unit == u.dex(u.Msun)
    assert t["mass_total"][0].to_value(u.Msun) == pytest.approx(js["mass_total"], rel=1e-6)
    assert t["log10_mass_total"][0].physical.to_value(u.Msun) == pytest.approx(js["mass_total"], rel=1e-4)
    assert list(t.meta["warnings"]) == js["warnings"]
    r = cli(*args)
    assert r.exit_code == 2  # refuses to overwrite
    assert cli(*args, "--overwrite").exit_code == 0
    # VOTable on request (VOUnits have no dex: such columns say what they are the log of); JSON on stdout
    r = cli(*args, "--overwrite", "--format", "votable", "--json", "-q")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["mass_total"] == pytest.approx(js["mass_total"])
    from astropy.table import Table

    v = Table.read(out / "ps1_cutout_prediction.vot")
    assert v["mass_total"].unit == u.Msun and v["log10_mass_total"].description == "log10(value / solMass)"
    # --no-plots: no quick-look PNG, the same numbers
    r = cli("predict", tmp_path / "ps1_cutout.fits", "--model", tiny_model, "-o", tmp_path / "np", "--no-plots")
    assert r.exit_code == 0, r.output
    assert not list((tmp_path / "np").glob("*.png"))
    assert json.loads((tmp_path / "np" / "ps1_cutout_prediction.json").read_text())["mass_total"] == js["mass_total"]


def test_default_model_recovers_a_synthetic_ps1_cutout(tmp_path):
    """The full path on a PS1-style cutout of a new gcml cluster: truth within the reported uncertainty."""
    from gcml.prediction.images import default_model_path, predict_image

    if not default_model_path().is_file():
        pytest.skip("the default pi-DOC model is not installed")
    from gcml.observe.mock import MockObserveConfig, mock_observe
    from gcml.observe.synthetic import write_ps1_cutout
    from gcml.simulate.clusters import SimulateClustersConfig, simulate_clusters

    simulate_clusters(SimulateClustersConfig(preset="mw15", ages="9", seed=101, simulation="test-s101"),
                      tmp_path / "snaps")
    # a survey image is not smoothed: gcml predict smooths it as the model's training images were
    cfg = MockObserveConfig(psf_fwhm=(1.0,), distance_kpc=(30.0,), seed=3, smoothing_px=0.0)
    mock_observe([tmp_path / "snaps"], tmp_path / "img.h5", cfg)
    from gcml.io.mapset import read_mapset

    ms = read_mapset(tmp_path / "img.h5")
    true_m = float(ms.truth["mass"][0].astype(float).sum())
    write_ps1_cutout(tmp_path / "ps1_cutout.fits", ms.maps[0, 0], ra=RA, dec=DEC, g_minus_r=0.5, sky_sigma_mag=27.0)
    write_ps1_cutout(tmp_path / "ps1_g.fits", ms.maps[0, 0], ra=RA, dec=DEC, g_minus_r=0.5, band="g",
                     sky_sigma_mag=27.0, seed=1)
    pred = predict_image(tmp_path / "ps1_cutout.fits", g=tmp_path / "ps1_g.fits")
    z_mass = abs(pred.log10_mass_total - math.log10(true_m)) / pred.log10_mass_total_err
    z_dist = abs(pred.distance_kpc - 30.0) / pred.distance_err_kpc
    z_age = abs(pred.age_gyr - 9.0) / pred.age_err_gyr
    assert z_mass < 2.0 and z_dist < 2.0 and z_age < 2.0, (pred.summary(), true_m)


def test_python_api_takes_skycoord_and_angles(tmp_path, tiny_model):
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    from gcml.observe.synthetic import write_ps1_cutout
    from gcml.prediction.images import predict_image

    write_ps1_cutout(tmp_path / "c.fits", gaussian_blob(32, 4, 0.5), ra=RA, dec=DEC, size=60)
    a = predict_image(tmp_path / "c.fits", model=tiny_model, ra=RA, dec=DEC)
    b = predict_image(tmp_path / "c.fits", model=tiny_model, position=SkyCoord(RA * u.deg, DEC * u.deg))
    c = predict_image(tmp_path / "c.fits", model=tiny_model, ra=RA * 60 * u.arcmin, dec=DEC * u.deg)
    assert a.mass_total == pytest.approx(b.mass_total, rel=1e-6) == pytest.approx(c.mass_total, rel=1e-6)
    assert b.to_table()["mass_total"].unit == u.Msun
    with pytest.raises(InputError, match="ra: a quantity in kpc cannot be converted to deg"):
        predict_image(tmp_path / "c.fits", model=tiny_model, ra=3 * u.kpc, dec=DEC)


def test_quicklook_axes_are_sky_offsets_east_left():
    from gcml.io.fits import make_tan_wcs
    from gcml.prediction.images import sky_extent

    ext, xl, yl = sky_extent(make_tan_wcs((160, 160), 0.25, ra_deg=10.0, dec_deg=-30.0), (160, 160))
    # 160 px of 0.25": +-20"; RA offset grows to the left (east left), Dec upwards (north up)
    assert ext == pytest.approx([20.0, -20.0, -20.0, 20.0])
    assert "east left" in xl and "north up" in yl
    assert sky_extent(None, (10, 10)) is None


def test_noisy_ps1_flavour_mock_states_its_own_exposure(tmp_path, cli):
    """mock-observe --fits --flavour ps1 with noise: EXPTIME is the exposure the noise was drawn for (not
    PS1's 600 s stack default), and the fluxes read back through that zero point equal the MapSet's."""
    from astropy.io import fits

    from gcml.io.mapset import read_mapset
    from gcml.prediction.images import _colour_factor, counts_to_flux_factor, read_sky_image

    snaps = tmp_path / "snaps"
    assert cli("simulate-clusters", "-o", snaps, "--n-stars", "3000", "--ages", "1", "-q").exit_code == 0
    r = cli("mock-observe", snaps, "-o", tmp_path / "i.h5", "--psf", "1", "--distance", "30", "--smoothing", "0",
            "--sky-mag", "20.9", "--exptime", "129", "--poisson", "--read-noise", "5", "--fits", tmp_path / "f",
            "--flavour", "ps1", "--split-by", "image", "-q")
    assert r.exit_code == 0, r.output
    path = tmp_path / "f" / "ps1_cutout_0000000.fits"
    assert fits.getheader(path)["EXPTIME"] == 129.0
    im = read_sky_image(path)
    flux = read_mapset(tmp_path / "i.h5").maps[0, 0]
    h, w = flux.shape
    y0, x0 = (im.data.shape[0] - h) // 2, (im.data.shape[1] - w) // 2
    back = im.data[y0:y0 + h, x0:x0 + w] * counts_to_flux_factor(im.zero_point) * _colour_factor("ps1", 0.5)
    np.testing.assert_allclose(back, flux, rtol=1e-4, atol=1e-6 * np.abs(flux).max())


def test_target_size_outside_training_range_is_warned(tmp_path, tiny_model):
    """With --target, the Harris half-light radius is checked against the training clusters' recorded
    range (pi-DOC reads distance from apparent size) and the Harris distance is noted beside the prediction."""
    from gcml.models.bundle import ModelBundle
    from gcml.observe.synthetic import write_ps1_cutout
    from gcml.prediction.harris import lookup
    from gcml.prediction.images import predict_image

    b = ModelBundle.load(tiny_model)
    b.training_range["r_half_light_pc"] = [1.82, 7.04]
    model = b.save(tmp_path / "sized.pt")
    write_ps1_cutout(tmp_path / "c.fits", gaussian_blob(32, 4, 0.5), ra=RA, dec=DEC, size=60)
    assert lookup("M 13").r_h_pc == pytest.approx(3.49, abs=0.01)        # inside: no size warning
    ok = predict_image(tmp_path / "c.fits", model=model, target="M 13")
    assert not any("half-light radius" in w for w in ok.warnings)
    assert any(n.startswith("Harris 1996 (2010 edition) gives R_Sun = 7.1 kpc") for n in ok.notes)
    small = predict_image(tmp_path / "c.fits", model=model, target="Pal 1", ra=RA, dec=DEC)  # 1.49 pc
    w = [x for x in small.warnings if "half-light radius" in x]
    assert len(w) == 1 and "smaller than the training clusters' 1.82-7.04 pc" in w[0] and "too large" in w[0]
    assert not small.in_training_range and small.status != "ok"
    big = predict_image(tmp_path / "c.fits", model=model, target="omega Cen", ra=RA, dec=DEC)  # 7.56 pc
    assert any("larger than the training clusters'" in x and "too small" in x for x in big.warnings)
    b.training_range.pop("r_half_light_pc")  # a model trained before the size was recorded
    plain = predict_image(tmp_path / "c.fits", model=b.save(tmp_path / "plain.pt"), target="Pal 1", ra=RA, dec=DEC)
    assert not any("half-light radius" in x for x in plain.warnings)


def test_asymmetric_light_beyond_training_is_warned(tmp_path, tiny_model):
    """The rotational asymmetry of the prepared inner field is reported (JSON, FITS GCMLASYM) and, above the
    training images' largest (training_range.asymmetry), warned: a bright star beside the core."""
    from gcml.models.bundle import ModelBundle
    from gcml.observe.synthetic import write_ps1_cutout
    from gcml.prediction.images import predict_image

    b = ModelBundle.load(tiny_model)
    b.training_range["asymmetry"] = [0.0, 0.3]
    model = b.save(tmp_path / "asym.pt")
    write_ps1_cutout(tmp_path / "round.fits", gaussian_blob(32, 4, 0.5), ra=RA, dec=DEC, size=60)
    star = gaussian_blob(32, 4, 0.5)
    star[16 + 6, 16 + 3] += 1.0  # a point source twice the cluster's flux, 1.7" from its centre (0.25" pixels)
    write_ps1_cutout(tmp_path / "star.fits", star, ra=RA, dec=DEC, size=60)
    ok = predict_image(tmp_path / "round.fits", model=model, refine_centre=False)
    bad = predict_image(tmp_path / "star.fits", model=model, refine_centre=False)
    assert ok.asymmetry < 0.05 and not any("asymmetric" in w for w in ok.warnings)
    assert bad.asymmetry > 0.3 and not bad.in_training_range
    assert any("more asymmetric" in w and "at most 0.30" in w for w in bad.warnings)
