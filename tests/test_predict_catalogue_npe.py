"""gcml predict CATALOGUE --model npe.pt: a tiny mass-npe trained here on a small simulate-maps MapSet
(conftest ``npe_mapset``), then a mock catalogue of one of its views predicted through the API and the CLI:
the catalogue representation equals the one simulate-maps stored, outputs exist, percentiles are ordered,
samples are reproducible with the seed, the ECSV files read back with units, API and CLI agree, and
multi-galaxy tables go through the same path."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gcml.errors import ConfigError
from gcml.models.npe import CATALOGUE_COLUMNS, NPE_TARGETS

SMALL = dict(hidden=32, context=16, transforms=2, flow_hidden=32)
CENTRE = dict(ra=150.0, dec=-20.0, distance_mpc=15.0, vsys=1500.0)


@pytest.fixture(scope="module")
def npe_model(npe_mapset, tmp_path_factory):
    """A 2-epoch mass-npe bundle trained on ``a.h5``."""
    import torch

    from gcml.training import TrainConfig, train

    d, _ = npe_mapset
    out = tmp_path_factory.mktemp("npe_model")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(d / "a.h5", TrainConfig(model="mass-npe", epochs=2, batch_size=32, threads=1, seed=1,
                                      channels=CATALOGUE_COLUMNS, targets=NPE_TARGETS, arch_kwargs=SMALL), out)
    finally:
        torch.set_num_threads(n)
    return out / "best.pt"


@pytest.fixture(scope="module")
def view(npe_mapset, tmp_path_factory):
    """(table path, map index): the catalogue of the test-split view with the most GCs in the map, as a
    mock observed table (RA, Dec, heliocentric velocity, error) at 15 Mpc."""
    import h5py

    from gcml.io.catalogues import read_catalogues
    from gcml.prediction.catalogue import mock_catalogue

    d, _ = npe_mapset
    cat = read_catalogues(d / "a.h5")
    with h5py.File(d / "a.h5", "r") as f:
        split = f["split"][()]
    n_in = np.add.reduceat(cat.in_map.astype(int), cat.offsets[:-1])
    i = int(np.argmax(np.where(split == 2, n_in, -1)))
    c = cat.table(i)
    t = mock_catalogue(c["x"], c["y"], c["v_los"], ra0_deg=CENTRE["ra"], dec0_deg=CENTRE["dec"],
                       distance_mpc=CENTRE["distance_mpc"], vsys_kms=CENTRE["vsys"], v_err_kms=c["v_err"])
    p = tmp_path_factory.mktemp("npe_view") / "gcs.ecsv"
    t.write(p)
    return p, i


def test_catalogue_representation_is_simulate_maps(npe_mapset, npe_model, view):
    """The GCs of the table, at the nominal distance, are the catalogue simulate-maps stored for that view,
    so the posterior at the nominal distance is the one of the stored catalogue."""
    from gcml.io.catalogues import read_catalogues
    from gcml.io.tables import read_gc_table
    from gcml.models.npe import posterior_samples
    from gcml.models.trained import TrainedModel
    from gcml.prediction.catalogue import galaxy_values, gc_sample
    from gcml.prediction.catalogue_npe import npe_catalogues

    d, cfg = npe_mapset
    p, i = view
    stored = read_catalogues(d / "a.h5").select([i])
    gcs = gc_sample(read_gc_table(p), galaxy_values(**CENTRE, distance_err_mpc=0.0), cfg.extent_kpc)
    mine = npe_catalogues(gcs.x, gcs.y, gcs.v_obs, gcs.e_obs, gcs.vsys, np.array([CENTRE["vsys"]]), np.ones(1),
                          cfg.extent_kpc).select([0])
    for c, tol in (("x", 1e-4), ("y", 1e-4), ("v_los", 1e-3), ("v_err", 1e-5)):
        np.testing.assert_allclose(getattr(mine, c), getattr(stored, c), atol=tol, rtol=0)
    assert np.array_equal(mine.in_map, stored.in_map)
    tm = TrainedModel.load(npe_model)
    a = posterior_samples(tm.network, tm.task, stored, 500, seed=4)
    b = posterior_samples(tm.network, tm.task, mine, 500, seed=4)
    np.testing.assert_allclose(a, b, atol=1e-3)


def test_predict_npe_api_and_cli_agree(npe_model, view, tmp_path, cli):
    import astropy.units as u
    from astropy.table import QTable

    from gcml.api import predict

    p, _ = view
    res = predict(p, model=npe_model, **CENTRE, distance_err_mpc=1.0, n_samples=400, seed=3, device="cpu",
                  out=tmp_path / "api")
    pred = res.prediction
    assert res.kind == "catalogue" and pred.is_posterior and pred.samples.shape == (400, len(NPE_TARGETS))
    assert list(pred.masses) == list(NPE_TARGETS) and pred.n_distance_draws == 100   # at most MAX_DISTANCE_DRAWS
    for m in pred.masses.values():
        assert m.p2_5 <= m.p16 <= m.median <= m.p84 <= m.p97_5
        assert np.isfinite(m.network_mean) and m.network_std > 0 and np.isnan(m.bootstrap_std)
    assert pred.masses["log10_mass_within_rout"].radius_kpc == pytest.approx(pred.r_out_kpc)
    # the distance draws spread the samples: a log-normal of width 1/15 about 15 Mpc
    assert np.std(np.log(pred.sample_distance_mpc / 15.0)) == pytest.approx(1 / 15, rel=0.25)
    for f in ("prediction.json", "prediction.ecsv", "maps.fits", "maps.png", "posterior_samples.ecsv"):
        assert (tmp_path / "api" / f).is_file(), f
    for f in ("corner.png", "profile.png"):
        assert (tmp_path / "api" / f).stat().st_size > 10_000, f
    # the ECSV files read back with their units
    s = QTable.read(tmp_path / "api" / "posterior_samples.ecsv")
    assert s["log10_mass_total"].unit == u.dex(u.Msun) and s["distance"].unit == u.Mpc and len(s) == 400
    np.testing.assert_allclose(s["log10_mass_within_rout"].value, pred.samples[:, 4], rtol=1e-6)
    assert s.meta["seed"] == 3 and s.meta["distance"] == 15 * u.Mpc
    t = QTable.read(tmp_path / "api" / "prediction.ecsv")
    assert t["median"].unit == u.dex(u.Msun) and t.meta["method"] == "posterior"
    assert list(t["quantity"][:len(NPE_TARGETS)]) == list(NPE_TARGETS)
    assert res.to_table()["p84"].unit == u.dex(u.Msun)
    # the same seed, the same samples; another seed, others
    again = predict(p, model=npe_model, **CENTRE, distance_err_mpc=1.0, n_samples=400, seed=3, device="cpu")
    assert np.array_equal(again.prediction.samples, pred.samples)
    other = predict(p, model=npe_model, **CENTRE, distance_err_mpc=1.0, n_samples=400, seed=4, device="cpu")
    assert not np.array_equal(other.prediction.samples, pred.samples)
    # the CLI gives the same numbers
    r = cli("predict", p, "--model", npe_model, "--ra", "150", "--dec", "-20", "--distance", "15", "--distance-err",
            "1", "--vsys", "1500", "--samples", "400", "--seed", "3", "--device", "cpu", "-o", tmp_path / "cli")
    assert r.exit_code == 0, r.output
    assert "mass-npe posterior, 400 samples" in r.output
    a = json.loads((tmp_path / "api" / "prediction.json").read_text())
    b = json.loads((tmp_path / "cli" / "prediction.json").read_text())
    assert b["method"] == "posterior" and b["posterior_samples"] == "posterior_samples.ecsv"
    assert a["masses"] == b["masses"] and a["tme"] == b["tme"]
    sb = QTable.read(tmp_path / "cli" / "posterior_samples.ecsv")
    assert all(np.array_equal(s[c], sb[c]) for c in s.colnames)
    # --no-plots: the same numbers and files, the PNGs left out
    r = cli("predict", p, "--model", npe_model, "--ra", "150", "--dec", "-20", "--distance", "15", "--distance-err",
            "1", "--vsys", "1500", "--samples", "400", "--seed", "3", "--device", "cpu", "-o", tmp_path / "np",
            "--no-plots")
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "np" / "prediction.json").read_text())["masses"] == a["masses"]
    assert sorted(f.name for f in (tmp_path / "np").iterdir()) == ["maps.fits", "posterior_samples.ecsv",
                                                                     "prediction.ecsv", "prediction.json"]


def test_npe_defaults_and_refusals(npe_model, view):
    from gcml.prediction.catalogue import predict_catalogue

    p, _ = view
    pred = predict_catalogue(p, npe_model, **CENTRE, seed=1)      # default: 10,000 samples, 100 distance draws
    assert pred.n_samples == 10_000 and len(pred.samples) == 10_000 and pred.n_distance_draws == 100
    with pytest.raises(ConfigError, match="`fill`.*mass-npe"):
        predict_catalogue(p, npe_model, **CENTRE, fill="50", n_samples=20)
    # v_sys estimated from the GCs: drawn per distance draw, noted
    est = predict_catalogue(p, npe_model, ra=CENTRE["ra"], dec=CENTRE["dec"], distance_mpc=15.0, n_samples=50)
    assert est.vsys_estimated and any("drawn from its standard error" in n for n in est.notes)


def test_npe_multi_galaxy_table(npe_model, tmp_path):
    """--galaxy all dispatches every galaxy through predict_catalogue: the NPE outputs per galaxy."""
    from astropy.table import Table
    from test_survey_tables import _mock_survey

    p = _mock_survey(tmp_path)
    from gcml.api import predict

    res = predict(p, model=npe_model, galaxy="all", out=tmp_path / "o", n_samples=50, device="cpu")
    g = res.prediction.galaxies[0]
    assert g.status == "predicted" and g.prediction.is_posterior
    for f in ("posterior_samples.ecsv", "corner.png", "profile.png", "prediction.ecsv"):
        assert (tmp_path / "o" / "NGC_3377" / f).is_file(), f
    t = Table.read(tmp_path / "o" / "summary.ecsv", format="ascii.ecsv")
    assert np.isfinite(t["logM_rout"][0]) and t["status"][1] == "refused"
    assert (tmp_path / "o" / "masses.png").is_file()
    # plots=False: the same tables, no PNG anywhere
    predict(p, model=npe_model, galaxy="all", out=tmp_path / "q", n_samples=50, device="cpu", plots=False)
    assert not list((tmp_path / "q").rglob("*.png"))
    assert (tmp_path / "q" / "NGC_3377" / "posterior_samples.ecsv").is_file()
    tq = Table.read(tmp_path / "q" / "summary.ecsv", format="ascii.ecsv")
    assert tq["logM_rout"][0] == t["logM_rout"][0]


def test_trained_bundle_records_training_ranges_and_predict_warns(npe_mapset, npe_model, view, tmp_path):
    """`gcml train` stores what the training maps span (extra.training_ranges, read in chunks) in every
    kinematic-map bundle, so a catalogue far outside it is warned about with a model a user trained."""
    from astropy.table import Table

    from gcml.io.mapset import read_mapset
    from gcml.models.kinematic_inputs import map_dispersion, training_ranges
    from gcml.models.trained import TrainedModel
    from gcml.prediction.catalogue import predict_catalogue

    d, _ = npe_mapset
    ranges = TrainedModel.load(npe_model).bundle.training_ranges
    assert ranges == training_ranges(d / "a.h5")
    # the chunked read gives the in-memory answer
    ms = read_mapset(d / "a.h5", split="train")
    disp = map_dispersion(ms.maps, float(ms.map_attrs.get("min_count", 0.0)), ms.channels)
    assert training_ranges(d / "a.h5", chunk=7)["map_dispersion_kms"] == ranges["map_dispersion_kms"]
    assert ranges["map_dispersion_kms"]["median"] == pytest.approx(float(np.median(disp)))
    assert ranges["n_gc"]["min"] == float(ms.meta["n_gc"].min()) and ranges["n_maps"] == ms.n
    # twelve GCs of the view: fewer than the training maps had
    p, _ = view
    few = Table.read(p)[:12]
    assert ranges["n_gc"]["p01"] > 12
    few.write(tmp_path / "few.ecsv")
    res = predict_catalogue(tmp_path / "few.ecsv", npe_model, **CENTRE, n_samples=100, seed=1)
    assert any("GCs lie in the map; the model was trained on maps with" in w for w in res.warnings), res.warnings
    assert not any("records no training ranges" in n for n in res.notes)


def test_shipped_mass_npe_by_name_on_ngc3377(shared_data, tmp_path, cli):
    """The shipped mass-npe (scripts/train_default_npe_model.py) is found by its name, loads weights-only,
    carries its leave-one-family-out term and held-out metrics, and on the real NGC 3377 catalogue gives a
    mass within R_out that agrees with the tracer mass estimator on the same GCs (an independent estimator)
    within their combined 2-sigma, with the systematic term inside its interval."""
    from gcml.io.bundle import SHIPPED_DIR, resolve_model_path
    from gcml.models.trained import TrainedModel
    from gcml.prediction.catalogue import predict_catalogue

    path = resolve_model_path("mass-npe-default")
    assert path == SHIPPED_DIR / "mass-npe-default.pt" and resolve_model_path("mass-npe-default.pt") == path
    assert resolve_model_path(tmp_path / "mass-npe-default") == tmp_path / "mass-npe-default"  # a folder: as given
    tm = TrainedModel.load("mass-npe-default")
    j = tm.targets.index("log10_mass_within_rout")
    assert tm.task.systematic[j] > 0.03 and set(tm.bundle.extra["held_out_metrics"]) == {"unknown", "early_ood"}
    table = shared_data / "sluggs" / "ngc3377_gc_rv_forbes2017.tsv.txt"
    pred = predict_catalogue(table, "mass-npe-default", galaxy="NGC 3377", n_samples=2000, seed=0)
    m = pred.masses["log10_mass_within_rout"]
    assert pred.is_posterior and m.systematic_std == pytest.approx(tm.task.systematic[j])
    assert 0.5 * (m.p84 - m.p16) > m.systematic_std
    tme = pred.tme
    assert abs(m.median - tme["median"]) < 2 * np.hypot(0.5 * (m.p84 - m.p16), 0.5 * (tme["p84"] - tme["p16"]))
    r = cli("predict", str(table), "--galaxy", "NGC 3377", "--model", "no-such-model", "-o", str(tmp_path / "x"))
    assert r.exit_code == 2 and "mass-npe-default" in r.output and not (tmp_path / "x").exists()


def test_distance_spread_is_the_distance_part_only():
    """distance_std of a posterior: samples = a + b ln D + scatter give |b| std(ln D), whatever the scatter
    and however few samples share a distance; one distance for all samples gives exactly 0."""
    from gcml.prediction.catalogue_npe import distance_spread

    rng = np.random.default_rng(1)
    d = 15.0 * np.exp(0.1 * rng.standard_normal(100))
    dist = np.tile(d, 100)                                       # 100 distances, 100 samples each (round robin)
    b = np.array([0.434, -0.2, 0.0])
    s = 11.0 + np.log(dist)[:, None] * b + 0.15 * rng.standard_normal((len(dist), 3))
    got = distance_spread(s, dist)
    np.testing.assert_allclose(got, np.abs(b) * np.std(np.log(dist)), atol=0.003)
    # the spread of per-distance means would also count the scatter's Monte Carlo noise (0.15 / sqrt(100))
    per_mean = s.reshape(100, 100, 3).mean(0)
    assert np.std(per_mean[:, 2]) > 0.01 > got[2]
    assert np.array_equal(distance_spread(s, np.full(len(s), 15.0)), np.zeros(3))


def test_default_model_warns_when_errors_are_missing(shared_data, tmp_path):
    """The default (mass-npe) reads every GC's velocity error; a table without errors (taken as exact, 0 km/s)
    is below every training error (2-194 km/s) and is warned about, besides the missing column."""
    from gcml.io.tables import read_table
    from gcml.prediction.catalogue import predict_catalogue

    t = read_table(shared_data / "sluggs" / "ngc3377_gc_rv_forbes2017.tsv.txt")
    t.remove_column("e_HRV")
    t.write(tmp_path / "noerr.ecsv")
    p = predict_catalogue(tmp_path / "noerr.ecsv", None, galaxy="NGC 3377", n_samples=200, seed=0)
    text = " ".join(p.warnings)
    assert "no velocity-error column" in text and "below the smallest training error (2 km/s)" in text
    with_err = predict_catalogue(shared_data / "sluggs" / "ngc3377_gc_rv_forbes2017.tsv.txt", None,
                                 galaxy="NGC 3377", n_samples=200, seed=0)
    assert not any("smallest training error" in w for w in with_err.warnings)
