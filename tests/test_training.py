"""The training loop: overfitting, exact resume, streaming, configs, bad input (CLI exit code 2)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from synth_mapsets import make_mapset

from gcml.io.bundle import load_bundle
from gcml.models.tasks import DataStats
from gcml.models.trained import TrainedModel
from gcml.training import TrainConfig, train
from gcml.training.loop import build_network, make_task

FAST = dict(batch_size=64, device="cpu", threads=1)


@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    return make_mapset(tmp_path_factory.mktemp("syn") / "syn.h5")


def test_one_batch_overfit(loss="mse", steps=150, tol=0.05):
    """The paper model without dropout memorises one batch of 16 random maps (labels 11-13 dex)."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    cfg = TrainConfig(model="mass-cnn", channels=("sigma", "v"), loss=loss,
                      arch_kwargs={"dropout_conv": 0.0, "dropout_dense": 0.0})
    task = make_task(cfg)
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.normal(size=(16, 2, 10, 10)).astype(np.float32))
    y = torch.from_numpy(rng.uniform(11, 13, (16, 1)).astype(np.float32))
    task.fit(DataStats(channel_mean=np.zeros(2), channel_std=np.ones(2), targets={"log10_mass_total": y[:, 0].numpy()},
                       split=np.zeros(16, np.uint8)))
    model, _ = build_network(cfg, task, (10, 10))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    ye = task.encode_y(y)
    for _ in range(steps):
        opt.zero_grad()
        loss_v = task.loss(model(task.encode_x(x)), ye)
        loss_v.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        mean, _ = task.decode(model(task.encode_x(x)))
    assert float(torch.abs(mean - y).max()) < tol  # dex; predicting the mean would miss by up to 1 dex


def test_train_writes_run_folder_and_learns(syn, tmp_path):
    res = train(syn, TrainConfig(channels=("sigma", "v"), epochs=6, seed=3, **FAST), tmp_path / "run")
    names = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"best.pt", "last.pt", "config.toml", "metrics.jsonl", "training.png", "checkpoint.pt"} <= names
    lines = [json.loads(s) for s in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [ln["epoch"] for ln in lines] == list(range(1, 7))
    b = load_bundle(tmp_path / "run" / "best.pt")  # weights_only=True inside
    assert b["inputs"]["channels"] == ["sigma", "v"] and b["targets"]["names"] == ["log10_mass_total"]
    assert b["geometry"]["shape"] == [10, 10] and b["geometry"]["map_attrs"]["smoothing_kpc"] == 2.0
    assert len(b["provenance"]["data_sha256"]) == 64
    test = b["metrics"]["test"]["log10_mass_total"]
    # sigma encodes the mass (synthetic maps): the network must beat predicting the mean (std ~0.58 dex)
    assert test["rmse_dex"] < 0.25
    assert res.best_epoch >= 1 and res.epochs_run == 6
    # predictions from the saved bundle reproduce the stored test metric
    tm = TrainedModel.load(tmp_path / "run" / "best.pt")
    from gcml.io.mapset import read_mapset

    ms = read_mapset(syn, split="test", channels=["sigma", "v"])
    mean, std = tm.predict_maps(ms.maps)
    rmse = float(np.sqrt(np.mean((mean[:, 0] - ms.targets["log10_mass_total"]) ** 2)))
    assert rmse == pytest.approx(test["rmse_dex"], rel=1e-4)
    assert (std > 0).all()


class _Interrupt(Exception):
    pass


def test_resume_gives_same_weights_as_uninterrupted(syn, tmp_path):
    cfg = TrainConfig(channels=("sigma", "v"), epochs=4, seed=5, early_stopping=0, **FAST)
    train(syn, cfg, tmp_path / "full")

    def stop_after_two(event, info):
        if event == "epoch" and info["epoch"] == 2:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        train(syn, cfg, tmp_path / "cut", progress=stop_after_two)
    res = train(syn, cfg, tmp_path / "cut", resume=True)
    assert res.resumed_from_epoch == 2 and res.epochs_run == 4
    a = load_bundle(tmp_path / "full" / "last.pt")["state_dict"]
    b = load_bundle(tmp_path / "cut" / "last.pt")["state_dict"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    la = (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()
    lb = (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(s)["val_loss"] for s in la] == [json.loads(s)["val_loss"] for s in lb]


def test_streaming_matches_in_memory_statistics(syn, tmp_path):
    cfg = TrainConfig(channels=("sigma",), epochs=2, seed=1, **FAST)
    mem = train(syn, cfg, tmp_path / "mem")
    stream = train(syn, cfg.replace(in_memory="no"), tmp_path / "stream")
    bm, bs = (load_bundle(tmp_path / d / "best.pt") for d in ("mem", "stream"))
    np.testing.assert_allclose(bm["inputs"]["norm"]["mean"], bs["inputs"]["norm"]["mean"], rtol=1e-6)
    np.testing.assert_allclose(bm["inputs"]["norm"]["std"], bs["inputs"]["norm"]["std"], rtol=1e-5)
    assert stream.epochs_run == mem.epochs_run == 2
    assert np.isfinite(stream.best_val_loss)


def test_cli_train_config_file_and_overrides(syn, tmp_path, cli):
    cfgfile = tmp_path / "t.toml"
    cfgfile.write_text(f'data = "{syn}"\nepochs = 1\n[train]\nbatch_size = 64\nchannels = "1"\nloss = "mse"\n')
    r = cli("train", "mass-cnn", "--config", cfgfile, "-o", tmp_path / "r", "--epochs", "2", "-q")
    assert r.exit_code == 0, r.output
    b = load_bundle(tmp_path / "r" / "best.pt")
    assert b["training"]["epochs"] == 2 and b["training"]["batch_size"] == 64 and b["training"]["loss"] == "mse"
    assert b["inputs"]["channels"] == ["sigma"]
    assert b["targets"]["norm"]["scale"][0] == pytest.approx(
        (b["targets"]["norm"]["data_max"][0] - b["targets"]["norm"]["data_min"][0]) / 10)


def _run_bad(cli, *args):
    r = cli("train", *[str(a) for a in args])
    assert r.exit_code == 2, r.output
    return " ".join(r.output.split())


def test_bad_inputs_one_clear_message(tmp_path, cli):
    wrong = make_mapset(tmp_path / "phot.h5", n_gal=6, views=2, kind="photometry")
    msg = _run_bad(cli, "mass-cnn", "--data", wrong, "-o", tmp_path / "a")
    assert "is a 'photometry' MapSet" in msg and "'kinematics'" in msg
    ok = make_mapset(tmp_path / "ok.h5", n_gal=6, views=2)
    msg = _run_bad(cli, "mass-cnn", "--data", ok, "--channels", "sigma,vrot", "-o", tmp_path / "b")
    assert "channel(s) vrot not in the MapSet" in msg
    msg = _run_bad(cli, "mass-cnn", "--data", ok, "--target", "log10_m500", "-o", tmp_path / "b")
    assert "/targets/log10_m500 not in the MapSet" in msg
    nan_maps = make_mapset(tmp_path / "nm.h5", n_gal=6, views=2, nan_in="maps")
    msg = _run_bad(cli, "mass-cnn", "--data", nan_maps, "-o", tmp_path / "c")
    assert "/maps has NaN or inf values (first in map 3)" in msg
    nan_t = make_mapset(tmp_path / "nt.h5", n_gal=6, views=2, nan_in="targets")
    msg = _run_bad(cli, "mass-cnn", "--data", nan_t, "-o", tmp_path / "d")
    assert "/targets/log10_mass_total has NaN or inf values" in msg
    msg = _run_bad(cli, "mass-cnn", "--data", ok, "--gpus", "64", "-o", tmp_path / "e")
    assert "option --gpus 64: this machine has" in msg
    # corrupt and foreign checkpoints
    run = tmp_path / "f"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"\x80\x02garbage")
    msg = _run_bad(cli, "mass-cnn", "--data", ok, "-o", run, "--resume")
    assert "not a readable gcml training checkpoint" in msg
    torch.save({"model": {"w": torch.zeros(2)}, "epoch": 3}, run / "checkpoint.pt")
    msg = _run_bad(cli, "mass-cnn", "--data", ok, "-o", run, "--resume")
    assert "not a gcml training checkpoint" in msg
    msg = _run_bad(cli, "mass-cnn", "--data", ok, "-o", tmp_path / "g", "--resume")
    assert "no checkpoint to resume from" in msg
    msg = _run_bad(cli, "no-such-net", "--data", ok)
    assert "unknown model 'no-such-net'" in msg


@pytest.mark.gpu
def test_train_on_cuda_with_mixed_precision(syn, tmp_path):
    res = train(syn, TrainConfig(channels=("sigma", "v"), epochs=2, batch_size=64, device="cuda", amp=True),
                tmp_path / "gpu")
    assert res.device.startswith("cuda") and np.isfinite(res.best_val_loss)
    b = load_bundle(tmp_path / "gpu" / "best.pt")
    assert all(t.device.type == "cpu" for t in b["state_dict"].values())


def test_cli_defaults_data_maps_h5_and_runs_folder(tmp_path, cli, monkeypatch):
    make_mapset(tmp_path / "maps.h5", n_gal=20, views=4)
    monkeypatch.chdir(tmp_path)
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    r = cli("train", "mass-cnn", "--channels", "2", "--gpus", str(n + 4))  # the user's example, too many GPUs
    assert r.exit_code == 2 and f"option --gpus {n + 4}: this machine has {n} CUDA GPU" in " ".join(r.output.split())
    r = cli("train", "mass-cnn", "--channels", "2", "--epochs", "1", "--batch-size", "32", "-q")
    assert r.exit_code == 0, r.output
    b = load_bundle(tmp_path / "runs" / "mass-cnn" / "best.pt")
    assert b["inputs"]["channels"] == ["sigma", "v"] and b["provenance"]["data"] == "maps.h5"


def test_streaming_weights_do_not_depend_on_workers(syn, tmp_path):
    cfg = TrainConfig(channels=("sigma", "v"), epochs=1, seed=4, in_memory="no", **FAST)
    train(syn, cfg, tmp_path / "w0")
    train(syn, cfg.replace(workers=2), tmp_path / "w2")
    a = load_bundle(tmp_path / "w0" / "last.pt")["state_dict"]
    b = load_bundle(tmp_path / "w2" / "last.pt")["state_dict"]
    for k in a:
        assert torch.equal(a[k], b[k]), k
