"""DistributedDataParallel on 2 CPU processes (gloo) follows the single-process run batch for batch."""

from __future__ import annotations

import json

import pytest
import torch
from synth_mapsets import make_mapset

from gcml.device import resolve_device
from gcml.errors import DeviceError
from gcml.io.bundle import load_bundle
from gcml.training import TrainConfig, train
from gcml.training.distributed import DistEnv, _first_slurm_host, env_from_environment


def _losses(run):
    return [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines()]


def test_ddp_two_cpu_processes_match_single_process(tmp_path):
    data = make_mapset(tmp_path / "syn.h5", n_gal=24, views=8)
    cfg = TrainConfig(channels=("sigma", "v"), epochs=2, batch_size=32, seed=7, device="cpu", threads=1,
                      loss="mse", early_stopping=0, arch_kwargs={"dropout_conv": 0.0, "dropout_dense": 0.0})
    single = train(data, cfg, tmp_path / "one")
    multi = train(data, cfg.replace(nproc=2), tmp_path / "two")
    assert multi.world_size == 2 and single.world_size == 1
    a, b = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert len(a) == len(b) == 2
    for la, lb in zip(a, b, strict=False):
        assert lb["train_loss"] == pytest.approx(la["train_loss"], abs=1e-5, rel=0)
        assert lb["val_loss"] == pytest.approx(la["val_loss"], abs=1e-5, rel=0)
    wa = load_bundle(tmp_path / "one" / "last.pt")["state_dict"]
    wb = load_bundle(tmp_path / "two" / "last.pt")["state_dict"]
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], atol=1e-5, rtol=0)


def test_environment_detection(monkeypatch):
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"):
        monkeypatch.delenv(k, raising=False)
    assert env_from_environment() is None
    monkeypatch.setenv("SLURM_PROCID", "5")
    monkeypatch.setenv("SLURM_NTASKS", "8")
    monkeypatch.setenv("SLURM_LOCALID", "1")
    monkeypatch.setenv("SLURM_JOB_NODELIST", "gpu[003-006,010]")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.delenv("MASTER_PORT", raising=False)
    assert env_from_environment() == DistEnv(rank=5, world_size=8, local_rank=1, launched_by="slurm")
    import os

    assert os.environ["MASTER_ADDR"] == "gpu003"
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert env_from_environment() == DistEnv(rank=3, world_size=4, local_rank=3, launched_by="torchrun")
    assert _first_slurm_host("node17") == "node17"


def test_too_many_gpus_is_one_clear_error():
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(DeviceError, match=f"option `gpus` {n + 1}: this machine has {n} CUDA GPU"):
        resolve_device("auto", n + 1)
    assert resolve_device("cpu").type == "cpu"


@pytest.mark.slow  # starts torchrun and two fresh processes
def test_torchrun_launch_two_cpu_ranks(tmp_path):
    import shutil
    import subprocess
    import sys

    exe = shutil.which("torchrun") or str(__import__("pathlib").Path(sys.executable).with_name("torchrun"))
    data = make_mapset(tmp_path / "syn.h5", n_gal=12, views=6)
    r = subprocess.run([exe, "--nproc-per-node", "2", "-m", "gcml", "train", "mass-cnn", "--data", str(data), "-o",
                        str(tmp_path / "run"), "--epochs", "1", "--batch-size", "32", "--device", "cpu", "-q"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("run folder:") == 1  # only rank 0 reports
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["world_size"] == 2



def test_script_without_main_guard_gets_a_clear_message(tmp_path):
    # spawn re-imports the calling script, whose top level then calls train() again in each child
    import subprocess
    import sys

    data = make_mapset(tmp_path / "syn.h5", n_gal=4, views=2)
    script = tmp_path / "noguard.py"
    script.write_text(
        "from gcml.training import TrainConfig, train\n"
        f"train({str(data)!r}, TrainConfig(channels=('sigma', 'v'), epochs=1, nproc=2, threads=1), "
        f"{str(tmp_path / 'run')!r})\n")
    import os
    from pathlib import Path

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}  # this checkout's gcml
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                       env=env)
    assert r.returncode != 0 and "distributed training failed on one process" in r.stderr.strip().splitlines()[-1]
    assert "InputError: distributed training (nproc=2) starts its processes with 'spawn'" in r.stderr, r.stderr
