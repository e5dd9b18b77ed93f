"""Cluster runs: device choice under simulated torchrun/SLURM environments, --resume auto after a kill,
Ctrl-C, --shard auto from job-array variables, the streamed reads and validation split divided across
ranks, and the experiment loggers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from synth_mapsets import make_mapset

from gcml import device as DV
from gcml.errors import ConfigError, DeviceError
from gcml.io.bundle import load_bundle
from gcml.training import TrainConfig, train
from gcml.training import distributed as D

ROOT = Path(__file__).resolve().parents[1]
DIST_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "SLURM_PROCID", "SLURM_NTASKS",
             "SLURM_LOCALID", "CUDA_VISIBLE_DEVICES")


@pytest.fixture
def clean_env(monkeypatch):
    for k in DIST_VARS:
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "29500")
    return monkeypatch


def _device_for(monkeypatch, n_visible: int, device: str = "auto", gpus: int = 0) -> torch.device:
    """What a process launched with the current environment variables would train on."""
    monkeypatch.setattr(DV, "cuda_count", lambda: n_visible)
    env = D.env_from_environment() or D.DistEnv()
    return DV.resolve_device(device, gpus, env.local_rank)


def test_device_under_torchrun(clean_env):
    # torchrun --nproc-per-node 4 on a 4-GPU node: every process sees all GPUs, rank r -> cuda:r
    for k, v in {"RANK": "6", "WORLD_SIZE": "8", "LOCAL_RANK": "2", "LOCAL_WORLD_SIZE": "4"}.items():
        clean_env.setenv(k, v)
    assert _device_for(clean_env, 4) == torch.device("cuda", 2)
    assert _device_for(clean_env, 4, "cuda") == torch.device("cuda", 2)
    assert _device_for(clean_env, 0) == torch.device("cpu")  # CPU node: gloo on the CPU
    with pytest.raises(DeviceError, match="local rank 2 but this process sees only 2 CUDA GPUs"):
        _device_for(clean_env, 2)


def test_device_under_srun_gpus_per_task(clean_env):
    # srun --ntasks-per-node 4 --gpus-per-task 1: SLURM_LOCALID 3, CUDA_VISIBLE_DEVICES=3 -> one visible GPU
    for k, v in {"SLURM_PROCID": "7", "SLURM_NTASKS": "8", "SLURM_LOCALID": "3",
                 "CUDA_VISIBLE_DEVICES": "3"}.items():
        clean_env.setenv(k, v)
    env = D.env_from_environment()
    assert env.launched_by == "slurm" and env.local_rank == 3
    assert _device_for(clean_env, 1) == torch.device("cuda", 0)
    assert _device_for(clean_env, 1, "cuda", gpus=1) == torch.device("cuda", 0)
    # srun with all four GPUs visible to every task: SLURM_LOCALID picks one
    clean_env.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    assert _device_for(clean_env, 4) == torch.device("cuda", 3)


def test_local_cuda_index_rules():
    assert DV.local_cuda_index(0, 1) == 0 and DV.local_cuda_index(5, 1) == 0
    assert DV.local_cuda_index(5, 8) == 5
    with pytest.raises(DeviceError, match="no CUDA GPU is visible"):
        DV.local_cuda_index(0, 0)


def test_shard_auto_from_job_array(monkeypatch):
    from gcml.config import parse_shard_spec, shard_from_environment

    # --array=0-7 (0-based) and --array=1-8 (1-based) both give shards 1/8 ... 8/8
    assert shard_from_environment({"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "8",
                                   "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "7"}) == (1, 8)
    assert shard_from_environment({"SLURM_ARRAY_TASK_ID": "8", "SLURM_ARRAY_TASK_COUNT": "8",
                                   "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "8"}) == (8, 8)
    assert shard_from_environment({"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "8",
                                   "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "14",
                                   "SLURM_ARRAY_TASK_STEP": "2"}) == (3, 8)
    with pytest.raises(ConfigError, match="has gaps"):
        shard_from_environment({"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "3",
                                "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "7"})
    monkeypatch.delenv("SLURM_ARRAY_TASK_ID", raising=False)
    with pytest.raises(ConfigError, match="not a SLURM job-array task"):
        parse_shard_spec("auto")
    for k, v in {"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "1",
                 "SLURM_ARRAY_TASK_MAX": "3"}.items():
        monkeypatch.setenv(k, v)
    assert parse_shard_spec("auto") == (2, 3)


def test_shard_auto_simulate_maps_matches_explicit_and_is_stored(tmp_path, cli, monkeypatch):
    import h5py

    for k, v in {"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "2", "SLURM_ARRAY_TASK_MIN": "0",
                 "SLURM_ARRAY_TASK_MAX": "1"}.items():
        monkeypatch.setenv(k, v)
    common = ["--n-galaxies", "8", "--views", "2", "--block-size", "4", "--family", "disk", "-q"]
    assert cli("simulate-maps", "-o", tmp_path / "a.h5", "--shard", "auto", *common).exit_code == 0
    assert cli("simulate-maps", "-o", tmp_path / "b.h5", "--shard", "2/2", *common).exit_code == 0
    with h5py.File(tmp_path / "a.h5") as fa, h5py.File(tmp_path / "b.h5") as fb:
        np.testing.assert_array_equal(fa["maps"][()], fb["maps"][()])
        assert json.loads(fa.attrs["options"])["shard"] == "2/2"  # the resolved shard, not 'auto'


def test_streamed_reads_and_validation_divided_across_ranks(tmp_path):
    from gcml.training.data import InMemoryData, StreamingData
    from gcml.training.loop import make_task

    path = make_mapset(tmp_path / "syn.h5", n_gal=120, views=8)
    task = make_task(TrainConfig(channels=("sigma",)))
    st = StreamingData(path, task)
    st.chunk_rows = 16  # many small blocks (the file's own chunks hold all 960 rows)
    train_rows = set(np.flatnonzero(st.split == 0).tolist())

    def rows_of(batches):
        return [torch.where((st.y[:, :1] == yb[:, :1].unsqueeze(1)).all(-1))[1] for _, yb in batches]

    # training: each rank reads only its own blocks; both yield the same number of batches
    seen, counts = [], []
    for rank in (0, 1):
        bl = list(st.batches("train", 32, epoch=3, seed=1, rank=rank, world=2))
        counts.append(len(bl))
        assert all(len(xb) == 16 for xb, _ in bl)  # batch 32 over two ranks
        seen.append({float(v) for _, yb in bl for v in yb[:, 0]})
    assert counts[0] == counts[1] > 0
    masses = {float(st.y_all[i, 0]) for i in train_rows}
    assert seen[0] <= masses and seen[1] <= masses
    # the two ranks read different galaxies' blocks (blocks hold consecutive rows)
    assert len(seen[0] & seen[1]) < 0.2 * min(len(seen[0]), len(seen[1]))
    # validation: the ranks' contiguous parts, joined in rank order, are the whole split in file order
    mem = InMemoryData(path, task)
    for data in (st, mem):
        whole = torch.cat([yb for _, yb in data.eval_batches("val", 50)])
        parts = [torch.cat([yb for _, yb in data.eval_batches("val", 50, rank=r, world=2)]) for r in (0, 1)]
        assert 0 < len(parts[0]) < len(whole)
        torch.testing.assert_close(torch.cat(parts), whole)


def test_ddp_gloo_streaming_two_processes(tmp_path):
    data = make_mapset(tmp_path / "syn.h5", n_gal=24, views=8)
    cfg = TrainConfig(channels=("sigma", "v"), epochs=1, batch_size=32, seed=7, device="cpu", threads=1,
                      in_memory="no", nproc=2)
    res = train(data, cfg, tmp_path / "run")
    assert res.world_size == 2 and np.isfinite(res.best_val_loss)


def test_csv_logger_and_tensorboard(tmp_path):
    from astropy.table import Table

    data = make_mapset(tmp_path / "syn.h5", n_gal=12, views=4)
    cfg = TrainConfig(channels=("sigma",), epochs=2, batch_size=32, device="cpu", threads=1)
    train(data, cfg, tmp_path / "csv")
    t = Table.read(tmp_path / "csv" / "metrics.csv", format="ascii.csv")
    assert list(t["epoch"]) == [1, 2] and "val_loss" in t.colnames
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="pip install 'gcml\\[tensorboard\\]'"):
            train(data, cfg.replace(logger="tensorboard"), tmp_path / "tb")
        pytest.skip("tensorboard (optional extra) is not installed")
    train(data, cfg.replace(logger="tensorboard"), tmp_path / "tb")
    assert any((tmp_path / "tb" / "tensorboard").iterdir())


def _gcml(args, **kw):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for k in DIST_VARS:
        env.pop(k, None)
    return subprocess.Popen([sys.executable, "-m", "gcml", *map(str, args)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _wait_for(path: Path, proc, timeout: float = 240) -> None:
    t0 = time.time()
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.time() - t0 < timeout, f"{path} did not appear"
        time.sleep(0.02)


@pytest.mark.slow  # three fresh processes (about two minutes on the 2-core development machine)
def test_resume_auto_after_a_kill(tmp_path, cli):
    """A job killed (SIGKILL, as a preempted/requeued job) and started again with the same command
    continues from its checkpoint and ends with the weights of an uninterrupted run."""
    data = make_mapset(tmp_path / "syn.h5", n_gal=300, views=16)
    args = ["train", "mass-cnn", "--data", data, "--channels", "2", "--epochs", "6", "--batch-size", "32",
            "--patience", "0", "--device", "cpu", "--threads", "1", "--seed", "3", "-q", "--resume", "auto"]
    run = tmp_path / "run"
    # 1. started, killed before its first epoch ended: no checkpoint, 'auto' starts again
    p = _gcml([*args, "-o", run])
    _wait_for(run / "metrics.jsonl", p)
    p.kill()
    p.communicate()
    assert not (run / "checkpoint.pt").exists()
    # 2. started again by the same command, killed after a checkpoint
    p = _gcml([*args, "-o", run])
    _wait_for(run / "checkpoint.pt", p)
    p.send_signal(signal.SIGKILL)
    p.communicate()
    done = torch.load(run / "checkpoint.pt", weights_only=True)["epoch"]
    assert 1 <= done < 6
    # 3. the same command once more resumes and finishes
    p = _gcml([*args, "-o", run])
    out, err = p.communicate(timeout=600)
    assert p.returncode == 0, err[-2000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["resumed_from_epoch"] >= done and summary["epochs_run"] == 6
    # each epoch once in the logs, whatever was written after the last checkpoint
    lines = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines()]
    assert [ln["epoch"] for ln in lines] == [1, 2, 3, 4, 5, 6]
    assert (run / "metrics.csv").read_text().count("\n") == 7
    # the uninterrupted run (same options, in this process; a fresh folder is fine for --resume auto)
    r = cli(*args, "-o", tmp_path / "ref")
    assert r.exit_code == 0, r.output
    a = load_bundle(run / "last.pt")["state_dict"]
    b = load_bundle(tmp_path / "ref" / "last.pt")["state_dict"]
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _ctrl_c_run(tmp_path, nproc: str):
    """Train, send SIGINT to the gcml process once the first checkpoint exists, return (rc, stderr)."""
    data = make_mapset(tmp_path / "syn.h5", n_gal=150, views=16)
    run = tmp_path / "run"
    # long enough, and no early stopping, that the run cannot end by itself before the signal lands (with
    # 50 epochs and early stopping a loaded machine's delay once let it finish first: exit 0)
    # SIGINT as a terminal delivers it: a test run started in the background of a non-interactive shell
    # (nohup ... &) inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler
    p = _gcml(["train", "mass-cnn", "--data", data, "--epochs", "1000", "--patience", "0", "--batch-size", "32",
               "--device", "cpu", "--threads", "1", "--nproc", nproc, "-o", run],
              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        _wait_for(run / "checkpoint.pt", p)
        time.sleep(0.3)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=120)
    finally:  # never leave the process (or its pipes) behind, whatever happened
        if p.poll() is None:
            p.kill()
            p.communicate()
    return p.returncode, err


def _check_interrupted(rc: int, err: str) -> None:
    assert rc == 130, err[-2000:]
    text = " ".join(err.split())
    assert "interrupted: training interrupted;" in text and "checkpoint.pt holds epoch" in text
    assert "resume with: gcml train mass-cnn --data" in text and text.rstrip().endswith("--resume yes")
    assert "Traceback" not in err
    # size and ETA were printed before training (on stderr, with the progress bars)
    assert "training mass-cnn (" in text and "parameters) on" in text and "estimated" in text


def test_ctrl_c_keeps_checkpoint_and_prints_resume_command(tmp_path):
    _check_interrupted(*_ctrl_c_run(tmp_path, "1"))


@pytest.mark.slow
def test_ctrl_c_stops_a_distributed_run(tmp_path):
    """SIGINT to the launching process of a 2-process gloo run (as `kill -INT` or a scheduler sends it;
    a terminal's Ctrl-C reaches every process): the ranks are stopped and the resume command printed."""
    _check_interrupted(*_ctrl_c_run(tmp_path, "2"))


def test_auto_nproc_rule(tmp_path, monkeypatch, clean_env):
    """--nproc 0: one process per two cores for small maps on a long enough run; otherwise one.
    --threads 0: two threads per process for small maps, the process's share of the cores for images."""
    from gcml.training import loop

    monkeypatch.setattr(loop, "_usable_cores", lambda: 8)
    import h5py

    small = make_mapset(tmp_path / "small.h5", n_gal=20, views=5)
    with h5py.File(small) as f:
        n_train = int((f["split"][()] == 0).sum())
    cfg = TrainConfig(channels=("sigma",), device="cpu", epochs=10)
    assert loop.auto_nproc(small, cfg) == 1                          # ~600 map-passes: not worth starting
    monkeypatch.setattr(loop, "AUTO_DDP_MIN_WORK", 100)
    bs = n_train // 3
    assert loop.auto_nproc(small, cfg.replace(batch_size=bs)) == 3  # no more processes than batches
    assert loop.auto_nproc(small, cfg.replace(batch_size=8)) == 4   # 8 cores: 4 processes x 2 threads
    assert loop.auto_threads((10, 10), 4) == 2
    assert loop.auto_threads((10, 10), 1) == 2                       # small maps: at most two threads
    assert loop.auto_threads((160, 160), 1) == 8 and loop.auto_threads((160, 160), 4) == 2
    big = make_mapset(tmp_path / "big.h5", n_gal=20, views=5, size=48)  # 48 x 48 px: threads instead
    assert loop.auto_nproc(big, cfg.replace(batch_size=8)) == 1
    monkeypatch.setattr(loop, "_usable_cores", lambda: 2)            # this machine: 1 process x 2 threads
    assert loop.auto_nproc(small, cfg.replace(batch_size=8)) == 1
    assert loop.auto_threads((10, 10), 1) == 2
    monkeypatch.setattr(loop, "_usable_cores", lambda: 1)
    assert loop.auto_nproc(small, cfg.replace(batch_size=8)) == 1
    assert loop.auto_threads((10, 10), 1) == 1
    for k, v in {"RANK": "0", "WORLD_SIZE": "2"}.items():           # torchrun decides
        clean_env.setenv(k, v)
    monkeypatch.setattr(loop, "_usable_cores", lambda: 8)
    assert loop.auto_nproc(small, cfg.replace(batch_size=8)) == 1


def test_openmp_wait_policy_is_passive_unless_the_user_chose(tmp_path):
    """The gcml command waits passively in OpenMP (no spinning threads beside a busy process), set before
    torch loads; a user's own OMP_WAIT_POLICY / GOMP_SPINCOUNT / KMP_BLOCKTIME is left alone."""
    import subprocess
    import sys

    from gcml.cli.main import openmp_wait_policy

    env: dict[str, str] = {}
    assert openmp_wait_policy(env) == "PASSIVE" and env == {"OMP_WAIT_POLICY": "PASSIVE"}
    for k, v in (("OMP_WAIT_POLICY", "ACTIVE"), ("GOMP_SPINCOUNT", "1000"), ("KMP_BLOCKTIME", "0")):
        env = {k: v}
        assert openmp_wait_policy(env) is None and env == {k: v}
    code = ("import os, sys\nfrom gcml.cli.main import main\nsys.argv = ['gcml', '--version']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)")
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=clean, check=True)
    assert out.stdout.split()[-2:] == ["PASSIVE", "False"]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**clean, "OMP_WAIT_POLICY": "ACTIVE"})
    assert out.stdout.split()[-2:] == ["ACTIVE", "False"]
