"""pi-DOC models through gcml's one training loop: map tasks (mass maps from /truth), joint map+scalar
task, bundles, calibration, bad input. Tiny Plummer-cluster MapSets (32 x 32 px) keep it fast."""

from __future__ import annotations

import math

import h5py
import numpy as np
import pytest
import torch

from gcml.errors import InputError


def plummer_images(n: int, size: int = 32, *, seed: int = 0, ml: float = 2.0, scale: bool = False):
    """Face-on Plummer clusters: projected mass per pixel (closed form, Plummer 1911) and flux F = L/(4 pi d^2)."""
    rng = np.random.default_rng(seed)
    mass = 10 ** rng.uniform(4.0, 5.0, n)
    a_px = rng.uniform(2.0, 6.0, n)
    dist = rng.uniform(10.0, 100.0, n)
    age = rng.uniform(1.0, 13.0, n)
    c = (size - 1) / 2.0
    yy, xx = np.mgrid[0:size, 0:size]
    r2 = (xx - c) ** 2 + (yy - c) ** 2
    # projected Plummer surface density Sigma(R) = M a^2 / (pi (a^2 + R^2)^2), per unit pixel area
    m = mass[:, None, None] * a_px[:, None, None] ** 2 / (math.pi * (a_px[:, None, None] ** 2 + r2) ** 2)
    lum = m / ml * (1.0 + 0.02 * (age[:, None, None] - 7))  # a weak age signal
    flux = lum / (4 * math.pi * dist[:, None, None] ** 2)
    out = flux[:, None].astype(np.float32), m[:, None].astype(np.float32), dist, age
    return (*out, a_px) if scale else out


def write_toy_mapset(path, n=48, size=32, seed=0):
    from gcml.io.mapset import MapSet, write_mapset

    flux, m, dist, age, a_px = plummer_images(n, size, seed=seed, scale=True)
    split = np.zeros(n, np.uint8)
    split[n // 2: 3 * n // 4] = 1
    split[3 * n // 4:] = 2
    ms = MapSet(maps=flux, channels=["flux"], units=["Lsun/kpc2"], pixel_scale=0.25, pixel_unit="arcsec",
                kind="photometry", targets={"distance": dist.astype(np.float32), "age": age.astype(np.float32)},
                target_units={"distance": "kpc", "age": "Gyr"}, truth={"mass": m}, truth_units={"mass": "Msun"},
                meta={"group_id": np.arange(n), "lum_v_fov": flux.sum(axis=(1, 2, 3)) * 4 * np.pi * dist**2,
                      "psf_fwhm": np.full(n, 1.0), "distance": dist,
                      # the face-on Plummer's projected half-light radius is its scale a [px -> pc]
                      "r_half_light_pc": a_px * 0.25 * dist * 4.8481368},
                split=split)
    write_mapset(path, ms)
    return path


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return write_toy_mapset(tmp_path_factory.mktemp("toy") / "images.h5")


def test_log10_sum_exp10_known_answer():
    from gcml.models.tasks.maps import log10_sum_exp10

    a = torch.tensor([[[1.0, 2.0], [3.0, -40.0]]], dtype=torch.float64)
    assert float(log10_sum_exp10(a)[0]) == pytest.approx(math.log10(10 + 100 + 1000 + 1e-40), rel=1e-12)


def _task(toy, model="pidoc-net", loss="gaussian_nll"):
    from gcml.training.config import TrainConfig
    from gcml.training.data import open_training_data
    from gcml.training.loop import make_task

    task = make_task(TrainConfig(model=model, loss=loss))
    ds = open_training_data(toy, task)
    task.fit(ds.stats)
    return task, ds


def test_map_task_reads_truth_and_encodes_log_mass(toy):
    task, ds = _task(toy)
    assert task.channels == ["flux"]  # the registry's flux_v resolved to mock-observe's flux
    assert task.input_transform == ["log10"]
    assert ds.y_all.shape == (48, 32 * 32 + 2)
    # the standardised log mass of the training split has mean 0 and unit variance
    y = task.encode_y(torch.from_numpy(ds.y_all[ds.split == 0]))
    pix = y[:, :1024].double()
    assert float(pix.mean()) == pytest.approx(0.0, abs=1e-6)
    assert float(pix.std(correction=0)) == pytest.approx(1.0, abs=1e-6)
    # decoding a perfect prediction gives back log10 of the truth and the exact total mass
    ytrue = torch.from_numpy(ds.y_all[:4])
    enc = task.encode_y(ytrue)
    out = torch.cat([enc[:, :1024], torch.zeros(4, 1024), enc[:, 1024:], torch.zeros(4, 2)], 1)
    d = task.decode_parts(out)
    np.testing.assert_allclose(d["log10_map"].numpy(), np.log10(ds.y_all[:4, :1024]), atol=2e-5)
    np.testing.assert_allclose(d["log10_total"].numpy(), np.log10(ds.y_all[:4, :1024].astype(float).sum(1)), atol=2e-5)
    np.testing.assert_allclose(d["scalar"].numpy(), ds.y_all[:4, 1024:], rtol=1e-5)
    # the loss of a perfect mean with unit variance is 0 (pixel NLL 0, total term 0, scalar NLL 0)
    assert float(task.loss(out, enc)) == pytest.approx(0.0, abs=1e-5)


def test_total_mass_term_penalises_a_scaled_map(toy):
    task, ds = _task(toy, model="pidoc-ced-lite", loss="mse")
    y = torch.from_numpy(ds.y_all[:4])
    enc = task.encode_y(y)
    shift = math.log10(2.0) / task.pix_std  # every pixel twice too heavy
    out = enc + shift
    pix_only = shift**2
    assert float(task.loss(out, enc)) == pytest.approx(pix_only * (1 + task.total_weight), rel=1e-4)


def test_calibration_known_answer(toy):
    task, ds = _task(toy)
    y = torch.from_numpy(ds.y_all[:8])
    enc = task.encode_y(y)
    # predictions off by exactly 0.1 dex everywhere with a claimed sigma of 0.05 dex: variance factor 4
    off = 0.1 / task.pix_std
    lv = math.log((0.05 / task.pix_std) ** 2)
    out = torch.cat([enc[:, :1024] + off, torch.full((8, 1024), lv), enc[:, 1024:], torch.zeros(8, 2)], 1)
    cal = task.calibrate(out, y)
    assert cal["pixel_variance_scale"] == pytest.approx(4.0, rel=1e-3)
    assert cal["total_sigma_dex"] == pytest.approx(0.1, rel=1e-3)
    d = task.decode_parts(out)
    assert float(d["log10_map_std"].mean()) == pytest.approx(0.1, rel=1e-3)


@pytest.mark.parametrize("model,loss", [pytest.param("pidoc-net", "gaussian_nll", marks=pytest.mark.slow),
                                        ("pidoc-ced-lite", "mse")])
def test_train_map_models_through_the_loop(toy, tmp_path, model, loss):
    from gcml.models.trained import TrainedModel
    from gcml.training import TrainConfig, train

    arch = {"filters": [4, 8, 16, 16]}
    cfg = TrainConfig(model=model, loss=loss, epochs=3, batch_size=8, lr=3e-3, seed=1, arch_kwargs=arch,
                      lr_schedule="none", early_stopping=0)
    res = train(toy, cfg, tmp_path / "run")
    hist = [h["train_loss"] for h in res.history]
    assert hist[-1] < hist[0]
    test = res.test_metrics["test"]
    assert "pixel_percentage_error" in test["mass"] and test["mass"]["n"] == 12
    if model == "pidoc-net":
        assert set(test) == {"mass", "distance", "age"}
    # the bundle reloads (weights_only) with its task: same decoding in both loaders
    tm = TrainedModel.load(res.best_checkpoint)
    net, task, b = tm.network, tm.task, tm.bundle.to_dict()
    assert b["task"] == ("map-scalar-regression" if model == "pidoc-net" else "map-regression")
    assert b["training_range"]["log10_flux_total"][0] < b["training_range"]["log10_flux_total"][1]
    from gcml.io.mapset import read_mapset

    ms = read_mapset(toy, split="test")
    with torch.no_grad():
        d = task.decode_parts(net(task.encode_x(torch.from_numpy(ms.maps))))
    assert d["log10_map"].shape == (12, 1024)
    assert np.isfinite(d["log10_total_std"].numpy()).all()
    assert task.name == b["task"]
    out = tm.predict(ms.maps)
    np.testing.assert_allclose(out["log10_mass"].reshape(12, -1), d["log10_map"].numpy(), rtol=1e-6)


def test_pidoc_cnn_reads_log_flux(toy, tmp_path):
    from gcml.training import TrainConfig, train

    cfg = TrainConfig(model="pidoc-cnn-lite", epochs=2, batch_size=8, seed=0, arch_kwargs={"filters": [4, 8]},
                      early_stopping=0)
    res = train(toy, cfg, tmp_path / "run")
    from gcml.io.bundle import load_bundle

    b = load_bundle(res.best_checkpoint)
    assert b["inputs"]["norm"]["transform"] == ["log10"]
    # standardised log10 flux: the stored mean is that of log10 F of the training maps
    from gcml.io.mapset import read_mapset

    ms = read_mapset(toy, split="train")
    assert b["inputs"]["norm"]["mean"][0] == pytest.approx(np.log10(np.maximum(ms.maps, 1e-9)).mean(), abs=1e-4)
    assert set(res.test_metrics["test"]) == {"distance", "age"}


def test_map_targets_stream_from_hdf5(toy, tmp_path):
    # --in-memory no reads /truth/mass block by block: the same normalisation, ranges and targets
    from gcml.training import TrainConfig, train
    from gcml.training.data import open_training_data
    from gcml.training.loop import make_task

    cfg = TrainConfig(model="pidoc-net", arch_kwargs={"filters": [4, 8, 16, 16]}, epochs=2, batch_size=8,
                      seed=1, early_stopping=0)
    tm, ts = make_task(cfg), make_task(cfg)
    dm, ds = open_training_data(toy, tm, in_memory="yes"), open_training_data(toy, ts, in_memory="no")
    assert ds.streaming and not dm.streaming
    tm.fit(dm.stats)
    ts.fit(ds.stats)
    assert ts.pix_mean == pytest.approx(tm.pix_mean, rel=1e-12)
    assert ts.pix_std == pytest.approx(tm.pix_std, rel=1e-12)
    assert ts.shape == tm.shape == (32, 32)
    assert ts.training_range.keys() == tm.training_range.keys()
    with h5py.File(toy) as f:  # the recorded size range is the training split's
        tr = f["split"][()] == 0
        r = f["meta/r_half_light_pc"][()][tr]
    np.testing.assert_allclose(tm.training_range["r_half_light_pc"], [r.min(), r.max()], rtol=1e-6)
    for k, v in tm.training_range.items():
        np.testing.assert_allclose(ts.training_range[k], v, rtol=1e-6)
    np.testing.assert_allclose(ts.y_offset, tm.y_offset)
    for split in ("train", "val", "test"):  # evaluation order: file order in both
        xm, ym = zip(*dm.batches(split, 5, epoch=None, seed=0), strict=True)
        xs, ys = zip(*ds.batches(split, 5, epoch=None, seed=0), strict=True)
        assert torch.equal(torch.cat(xm), torch.cat(xs)) and torch.equal(torch.cat(ym), torch.cat(ys))
    # a shuffled epoch visits every training row once, maps and targets together
    xs, ys = zip(*ds.batches("train", 8, epoch=0, seed=1), strict=True)
    xs, ys = torch.cat(xs), torch.cat(ys)
    xm, ym = torch.cat([x for x, _ in dm.batches("train", 8, epoch=None, seed=0)]), \
        torch.cat([y for _, y in dm.batches("train", 8, epoch=None, seed=0)])
    order = torch.argsort(ys[:, -1] * 1e3 + ys[:, -2])
    ref = torch.argsort(ym[:, -1] * 1e3 + ym[:, -2])
    assert torch.equal(xs[order], xm[ref]) and torch.equal(ys[order], ym[ref])
    res = train(toy, cfg.replace(in_memory="no"), tmp_path / "stream")
    assert all(np.isfinite(h["train_loss"]) for h in res.history)
    assert "pixel_percentage_error" in res.test_metrics["test"]["mass"]


def test_map_task_bad_input(toy, tmp_path):
    from gcml.training import TrainConfig, train
    from gcml.training.loop import make_task

    with pytest.raises(InputError, match="scalar targets"):
        make_task(TrainConfig(model="pidoc-net", targets=("mass",)))
    with pytest.raises(InputError, match="predicts one map"):
        make_task(TrainConfig(model="pidoc-ced", targets=("mass", "age")))
    from gcml.io.mapset import MapSet, write_mapset

    flux, m, dist, age = plummer_images(8, 32)
    ms = MapSet(maps=flux, channels=["flux"], units=["Lsun/kpc2"], pixel_scale=0.25, pixel_unit="arcsec",
                kind="photometry", targets={"age": age}, target_units={"age": "Gyr"}, split=np.arange(8) % 3)
    write_mapset(tmp_path / "nomass.h5", ms)
    with pytest.raises(InputError, match="/truth/mass"):
        train(tmp_path / "nomass.h5", TrainConfig(model="pidoc-ced-lite", epochs=1), tmp_path / "r2")


def test_cli_train_pidoc(toy, tmp_path, cli):
    r = cli("train", "pidoc-ced-lite", "--data", toy, "-o", tmp_path / "run", "--epochs", "1", "--batch-size", "8",
            "--quiet")
    assert r.exit_code == 0, r.output
    assert "test mass" in r.output
    assert (tmp_path / "run" / "best.pt").is_file()
    # the noise-aware options from the command line; a softlog10 without softening is one sentence, exit 2
    r = cli("train", "pidoc-ced-lite", "--data", toy, "-o", tmp_path / "soft", "--epochs", "1", "--batch-size", "8",
            "--input-transform", "softlog10", "--softening", "1e-3", "--quiet")
    assert r.exit_code == 0, r.output
    from gcml.io.bundle import load_bundle

    b = load_bundle(tmp_path / "soft" / "best.pt")
    assert b["preparation"]["transform"] == "softlog10" and b["preparation"]["softening"] == 1e-3
    r = cli("train", "pidoc-ced-lite", "--data", toy, "-o", tmp_path / "bad", "--input-transform", "softlog10")
    assert r.exit_code == 2 and "softening" in r.output


# ------------------------------------------------------------------------------------------ evaluation
def test_pidoc_metrics_known_answers():
    from gcml.evaluation.pidoc_metrics import (
        coverage,
        pixel_percentage_error,
        r2_score,
        radial_profiles,
        scalar_report,
    )

    t = np.array([1.0, 2.0, 4.0, 8.0])
    pe = pixel_percentage_error(t, t * np.array([1.1, 0.9, 1.0, 1.5]), n_bins=3)
    assert pe["mean"] == pytest.approx((10 + 10 + 0 + 50) / 4)
    assert r2_score(t, t) == 1.0 and r2_score(t, np.full(4, t.mean())) == 0.0
    cov = coverage(np.zeros(4), np.array([0.5, 1.5, 2.5, -0.1]), np.ones(4))
    assert cov == {"coverage_68": 0.5, "coverage_95": 0.75}
    sr = scalar_report(np.array([10.0, 10, 20, 20]), np.array([12.0, 8, 20, 26]), None, per_value=True)
    assert sr["mae"] == pytest.approx(2.5)
    assert [r["mean"] for r in sr["per_true_value"]] == [10.0, 23.0]
    flux, m, dist, _ = plummer_images(3, 32)
    rp = radial_profiles(m[:, 0].astype(float), m[:, 0].astype(float), flux[:, 0].astype(float), dist)
    assert len(rp["mass_frac_error_mean"]) == 25
    assert np.nanmax(np.array(rp["mass_frac_error_mean"], dtype=float)) == 0.0
    rp2 = radial_profiles(m[:, 0].astype(float), 2 * m[:, 0].astype(float), flux[:, 0].astype(float), dist)
    np.testing.assert_allclose(np.array(rp2["ml_frac_error_mean"], dtype=float)[1:10], 1.0)  # annulus 0 (r < 0.64 px) holds no pixel centre


def test_evaluate_cli_photometry(toy, tmp_path, cli):
    from gcml.training import TrainConfig, train

    a = train(toy, TrainConfig(model="pidoc-net", arch_kwargs={"filters": [4, 8, 8, 8]}, epochs=1, batch_size=8,
                               early_stopping=0), tmp_path / "net").best_checkpoint
    b = train(toy, TrainConfig(model="pidoc-cnn-lite", arch_kwargs={"filters": [4, 8]}, epochs=1, batch_size=8,
                               early_stopping=0), tmp_path / "cnn").best_checkpoint
    r = cli("evaluate", a, b, toy, "--split", "test", "-o", tmp_path / "rep")
    assert r.exit_code == 0, r.output
    import json

    doc = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    net, cnn = doc["models"]["net/best.pt"], doc["models"]["cnn/best.pt"]
    assert net["mass"]["total"]["n"] == 12 and "radial" in net and "per_true_value" in net["distance"]
    assert "mass" not in cnn and cnn["age"]["n"] == 12
    report = (tmp_path / "rep" / "report.md").read_text()
    assert "Chardin & Bianchini 2021" in report and "27.4" in report
    for png in ("pixel_error.png", "radial.png", "mass_maps.png", "age.png", "distance_pdf.png"):
        assert (tmp_path / "rep" / png).is_file()


def test_noise_aware_training_records_preparation_and_physical_outputs(toy, tmp_path):
    """softlog10 inputs and parametrised scalars, trained in the one loop: the bundle records the
    preparation the images went through and decodes age/distance inside their physical ranges."""
    from gcml.io.mapset import read_mapset
    from gcml.models.preparation import ImagePreparation
    from gcml.models.trained import TrainedModel
    from gcml.training import TrainConfig, train

    b_soft = 1e-3
    cfg = TrainConfig(model="pidoc-net", epochs=2, batch_size=8, lr=3e-3, seed=1, lr_schedule="none",
                      early_stopping=0, arch_kwargs={"filters": [4, 8, 16, 16]}, input_transform="softlog10",
                      softening=b_soft, preparation={"noise": "toy: none", "noise_sigma": [0.0, 2e-3]})
    res = train(toy, cfg, tmp_path / "run")
    tm = TrainedModel.load(res.best_checkpoint)
    b = tm.bundle.to_dict()
    prep = ImagePreparation.from_bundle(b)
    assert (prep.transform, prep.softening, prep.noise, prep.noise_sigma) == ("softlog10", b_soft, "toy: none",
                                                                              (0.0, 2e-3))
    assert prep.shape == (32, 32) and prep.pixel_scale_arcsec == 0.25
    assert b["inputs"]["norm"]["transform"] == ["softlog10"] and b["inputs"]["norm"]["softening"] == b_soft
    assert b["targets"]["norm"]["scalar_transform"] == ["log", "logit:0:14.5"]
    # the stored input mean is that of the softened log of the training maps
    ms = read_mapset(toy, split="train")
    x = np.log10(b_soft) + np.arcsinh(ms.maps.astype(np.float64) / (2 * b_soft)) / np.log(10)
    assert b["inputs"]["norm"]["mean"][0] == pytest.approx(x.mean(), abs=1e-4)
    # whatever the network says, distance > 0 and age in (0, 14.5], intervals inside
    test = read_mapset(toy, split="test")
    d = tm.decode_parts(torch.cat([torch.zeros(3, 2 * 1024), torch.tensor([[-40.0, -40.0, 0, 0], [40.0, 40.0, 0, 0],
                                                                           [0.0, 0.0, 5.0, 5.0]])], 1))
    assert np.all(d["scalar"][:, 0] > 0) and np.all((d["scalar"][:, 1] > 0) & (d["scalar"][:, 1] <= 14.5))
    assert np.all(d["scalar_lo"] <= d["scalar"]) and np.all(d["scalar"] <= d["scalar_hi"])
    assert np.all(d["scalar_lo"][:, 1] >= 0) and np.all(d["scalar_hi"][:, 1] <= 14.5)
    out = tm.predict(test.maps)
    assert np.all(out["distance"] > 0) and np.all((out["age"] > 0) & (out["age"] <= 14.5))


def test_training_options_of_the_noise_aware_path_are_checked(toy, tmp_path):
    from gcml.errors import ConfigError
    from gcml.training import TrainConfig, train

    with pytest.raises(ConfigError, match="softening"):
        TrainConfig(model="pidoc-net", input_transform="softlog10")
    with pytest.raises(ConfigError, match="input_transform"):
        TrainConfig(model="pidoc-net", input_transform="sqrt")
    with pytest.raises(ConfigError, match="image map models"):
        train(toy, TrainConfig(model="pidoc-cnn-lite", input_transform="softlog10", softening=1.0, epochs=1),
              tmp_path / "run")
