"""Outputs under faults and concurrency (issue 15): owned outputs, locks, disk full, manifests, virtual merges."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from synth_mapsets import make_mapset

from gcml.errors import OutputBusyError, OutputError, OutputExistsError
from gcml.io.common import TMP_PREFIX, atomic_output, lock_path_for, output_lock

ROOT = Path(__file__).resolve().parents[1]


def _debris(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.startswith(TMP_PREFIX) or p.name.endswith(".gcml-lock")]


# --------------------------------------------------------------------------------------- atomic outputs
def test_output_appearing_meanwhile_is_not_replaced(tmp_path):
    out = tmp_path / "a.txt"
    with pytest.raises(OutputExistsError, match="appeared while this run was writing"):
        with atomic_output(out) as tmp:
            tmp.write_text("mine")
            out.write_text("theirs")  # another program makes the file before this run finishes
    assert out.read_text() == "theirs"
    assert not _debris(tmp_path)


def test_overwrite_replaces(tmp_path):
    out = tmp_path / "a.txt"
    out.write_text("old")
    with atomic_output(out, overwrite=True) as tmp:
        tmp.write_text("new")
    assert out.read_text() == "new" and not _debris(tmp_path)


def test_second_writer_fails_at_once(tmp_path):
    out = tmp_path / "a.h5"
    with atomic_output(out):
        with pytest.raises(OutputBusyError, match=r"a.h5 is being written by another gcml run"):
            with atomic_output(out, overwrite=True):
                pass
    assert out.read_bytes() == b""  # the first run's (empty) output, untouched by the second
    assert not _debris(tmp_path)


def test_lock_held_by_another_process(tmp_path):
    out = tmp_path / "run"
    code = (f"import sys,time; sys.path.insert(0, {str(ROOT)!r}); from gcml.io.common import output_lock\n"
            f"with output_lock({str(out)!r}):\n    print('locked', flush=True); time.sleep(30)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(OutputBusyError, match="being written by another gcml run"):
            with output_lock(out):
                pass
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    # killed holder: the kernel dropped its lock, the next run goes ahead (and removes the stale lock file)
    with output_lock(out):
        pass
    assert not lock_path_for(out).exists()


def _hold_lock(path):
    code = (f"import sys,time; sys.path.insert(0, {str(ROOT)!r}); from gcml.io.common import output_lock\n"
            f"with output_lock({str(path)!r}):\n    print('locked', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_prediction_files_are_one_output(tmp_path):
    """A catalogue prediction's four files and an image prediction's four files are written under one lock:
    a second run (even with --overwrite) fails with one sentence before writing any of them, so two runs
    into one folder never leave a mix (seen before: prediction.json of a failed run beside maps.png of the
    run that succeeded)."""
    from types import SimpleNamespace

    from gcml.prediction.catalogue_result import save_prediction
    from gcml.prediction.images import save_image_prediction

    out = tmp_path / "pred"
    for lock, save in ((out / "prediction", lambda: save_prediction(SimpleNamespace(), out, overwrite=True)),
                       (out / "img", lambda: save_image_prediction(SimpleNamespace(image="img.fits"), out,
                                                                   overwrite=True))):
        proc = _hold_lock(lock)
        try:
            with pytest.raises(OutputBusyError, match="being written by another gcml run"):
                save()
        finally:
            proc.kill()
            proc.wait()
            proc.stdout.close()
    assert not out.exists() or not any(p for p in out.iterdir() if not p.name.startswith("."))


def test_interrupt_and_disk_full_remove_the_temporary(tmp_path):
    out = tmp_path / "a.h5"
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(out) as tmp:
            tmp.write_bytes(b"x" * 100)
            raise KeyboardInterrupt
    with pytest.raises(OutputError, match=r"^disk full writing .*a\.h5$"):
        with atomic_output(out) as tmp:
            with h5py.File(tmp, "w") as f:
                f["x"] = np.zeros(10)
            raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(OutputError, match=r"^disk full writing"):  # HDF5's OSErrors carry the errno in text
        with atomic_output(out):
            raise OSError("Can't write data (file write failed: errno = 28, error message = 'No space left')")
    assert not out.exists() and not _debris(tmp_path)


def test_stale_temporaries_of_killed_runs_are_removed(tmp_path):
    stale = tmp_path / f"{TMP_PREFIX}999999-0123abcd-a.h5"
    other = tmp_path / f"{TMP_PREFIX}999999-0123abcd-3-a.h5"  # belongs to output "3-a.h5", not "a.h5"
    stale.write_bytes(b"x" * 1000)
    other.write_bytes(b"y")
    with atomic_output(tmp_path / "a.h5") as tmp:
        tmp.write_text("ok")
    assert not stale.exists() and other.exists()


def test_cli_disk_full_is_one_sentence(cli, tmp_path, monkeypatch):
    from gcml.io import mapset

    def full(self, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(mapset.MapSetWriter, "write", full)
    r = cli("simulate-maps", "-o", tmp_path / "m.h5", "--n-galaxies", "4", "--views", "2", "-q")
    assert r.exit_code == 2 and "disk full writing" in r.output and "Traceback" not in r.output, r.output
    assert not list(tmp_path.iterdir())


def _default_signals() -> None:
    # as a shell starts a command: a test run in the background of a non-interactive shell inherits ignored or
    # blocked signals, which would test the runner rather than gcml
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})


@pytest.mark.parametrize("delay", [0.0, 0.02, 0.2])
def test_sigterm_removes_temporaries(tmp_path, delay):
    """A `gcml simulate-maps` terminated (SIGTERM, e.g. SLURM's time limit) stops at once and leaves no temporary
    file, wherever the signal lands: a SIGTERM while the worker pool was still being fed once left thousands of
    queued tasks to run first (CI: no exit within 60 s)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "gcml", "simulate-maps", "-o", str(tmp_path / "m.h5"),
                             "--n-galaxies", "200000", "--views", "10", "--family", "disk", "--workers", "2", "-q"],
                            cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True, preexec_fn=_default_signals)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not list(tmp_path.glob(f"{TMP_PREFIX}*")):
            time.sleep(0.005)
        assert list(tmp_path.glob(f"{TMP_PREFIX}*")), "the run never started writing"
        time.sleep(delay)
        t0 = time.time()
        proc.terminate()
        _, err = proc.communicate(timeout=30)
        assert time.time() - t0 < 15, f"took {time.time() - t0:.1f} s to stop"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode != 0
    assert not (tmp_path / "m.h5").exists() and not _debris(tmp_path), err


# ------------------------------------------------------------------------------------------ run folders
def test_train_run_folder_is_locked(cli, tmp_path):
    data = make_mapset(tmp_path / "a.h5", n_gal=12, views=2)
    with output_lock(tmp_path / "run"):
        r = cli("train", "mass-cnn", "--data", data, "-o", tmp_path / "run", "--epochs", "1", "--threads", "1")
    assert r.exit_code == 2 and "being written by another gcml run" in r.output, r.output
    assert not (tmp_path / "run").exists()


def test_training_divergence_is_named(cli, tmp_path):
    data = make_mapset(tmp_path / "a.h5", n_gal=12, views=2)
    r = cli("train", "mass-cnn", "--data", data, "-o", tmp_path / "run", "--epochs", "3", "--threads", "1",
            "--lr", "1e30")
    assert r.exit_code == 2 and "training diverged" in r.output and "epoch 1" in r.output, r.output
    assert "best.pt" not in r.output


# ------------------------------------------------------------------------------------- snapshot series
def _series(cli, out: Path, *extra: str):
    return cli("simulate-clusters", "-o", out, "--n-stars", "3000", "--ages", "0.5,1,1.5", "-q", *extra)


def test_series_manifest_written_last_and_checked(cli, tmp_path):
    snaps = tmp_path / "snaps"
    r = _series(cli, snaps, "--simulation", "a")
    assert r.exit_code == 0, r.output
    man = json.loads((snaps / "a.manifest.json").read_text())
    assert man["complete"] and man["n_files"] == 3
    # killed after two snapshots: no manifest, the reader refuses, --partial uses what is there
    (snaps / "a.manifest.json").unlink()
    (snaps / "a_age001.500.h5").unlink()
    r = cli("mock-observe", snaps, "-o", tmp_path / "i.h5", "--psf", "1", "--distance", "50", "-q")
    assert r.exit_code == 2 and "series 'a' is incomplete" in r.output and "2 of 3" in r.output, r.output
    assert "--partial" in r.output and not (tmp_path / "i.h5").exists()
    r = cli("mock-observe", snaps, "-o", tmp_path / "i.h5", "--psf", "1", "--distance", "50", "-q", "--partial")
    assert r.exit_code == 0, r.output
    with h5py.File(tmp_path / "i.h5") as f:
        assert f["maps"].shape[0] == 2


def test_another_series_still_being_written_does_not_break_a_run(cli, tmp_path):
    """Parallel simulate-clusters runs into one folder: a run that finishes while another's series has no
    manifest yet (still being written) succeeds (its closing note once read every series and ended in a
    traceback)."""
    snaps = tmp_path / "snaps"
    assert _series(cli, snaps, "--simulation", "a").exit_code == 0
    (snaps / "a.manifest.json").unlink()  # series 'a' as it is while its run is still writing
    r = _series(cli, snaps, "--simulation", "b")
    assert r.exit_code == 0, r.output
    assert (snaps / "b.manifest.json").is_file()


def test_series_mixed_or_shortened_is_refused(cli, tmp_path):
    snaps = tmp_path / "snaps"
    assert _series(cli, snaps, "--simulation", "a").exit_code == 0
    keep = (snaps / "a_age000.500.h5").read_bytes()
    # a second run (another seed) replaces the series; an old file put back is from another run
    assert _series(cli, snaps, "--simulation", "a", "--seed", "5", "--overwrite").exit_code == 0
    (snaps / "a_age000.500.h5").write_bytes(keep)
    r = cli("mock-observe", snaps, "-o", tmp_path / "i.h5", "--psf", "1", "--distance", "50", "-q")
    assert r.exit_code == 2 and "written by another run" in r.output, r.output
    (snaps / "a_age000.500.h5").unlink()
    r = cli("mock-observe", snaps, "-o", tmp_path / "i.h5", "--psf", "1", "--distance", "50", "-q")
    assert r.exit_code == 2 and "lacks 1 of its 3 snapshots" in r.output, r.output


def test_series_failure_removes_only_its_own_files(cli, tmp_path):
    snaps = tmp_path / "snaps"
    assert _series(cli, snaps, "--simulation", "b").exit_code == 0
    before = sorted(p.name for p in snaps.iterdir())
    # the same name, busy: fails at once, touches nothing
    with output_lock(snaps / "b"):
        r = _series(cli, snaps, "--simulation", "b", "--overwrite")
    assert r.exit_code == 2 and "being written by another gcml run" in r.output
    # another simulation into the same folder that fails (dissolves) removes only its own snapshots
    r = cli("simulate-clusters", "-o", snaps, "--n-stars", "200", "--ages", "0.1,9", "--simulation", "c", "-q")
    assert r.exit_code == 2 and "dissolved" in r.output
    assert sorted(p.name for p in snaps.iterdir()) == before


def test_simulation_name_is_sanitised(cli, tmp_path):
    for bad in ("../escaped", "/abs/path", ".hidden", "a b", "x/y"):
        r = cli("simulate-clusters", "-o", tmp_path / "s", "--n-stars", "500", "--ages", "1", "--simulation", bad)
        assert r.exit_code == 2 and "option --simulation" in r.output and "file name" in r.output, (bad, r.output)
    assert not list(tmp_path.rglob("*.h5"))


# ----------------------------------------------------------------------------------------- FITS folders
def test_fits_folder_is_written_whole(cli, tmp_path):
    snaps = tmp_path / "snaps"
    assert _series(cli, snaps, "--simulation", "a").exit_code == 0
    r = cli("mock-observe", snaps, "-o", tmp_path / "i.h5", "--psf", "1", "--distance", "50", "-q",
            "--fits", tmp_path / "fits", "--fov", "20", "--pixel-scale", "0.5")
    assert r.exit_code == 0, r.output
    man = json.loads((tmp_path / "fits" / "manifest.json").read_text())
    assert man["complete"] and man["n_files"] == 3 and len(list((tmp_path / "fits").glob("*.fits"))) == 3
    # a failing run (bad snapshot among the inputs) leaves neither the MapSet nor any FITS
    (snaps / "zz_bad.h5").write_bytes(b"not hdf5")
    r = cli("mock-observe", snaps, "--pattern", "*.h5", "-o", tmp_path / "j.h5", "--psf", "1", "--distance", "50",
            "-q", "--fits", tmp_path / "fits2", "--fov", "20", "--pixel-scale", "0.5")
    assert r.exit_code == 2, r.output
    assert not (tmp_path / "j.h5").exists() and not (tmp_path / "fits2").exists() and not _debris(tmp_path)
    r = cli("mock-observe", snaps, "-o", tmp_path / "k.h5", "--psf", "1", "--distance", "50", "-q",
            "--fits", tmp_path / "fits", "--fov", "20", "--pixel-scale", "0.5")
    assert r.exit_code == 2 and "not empty" in r.output


# -------------------------------------------------------------------------------------- virtual merges
def test_virtual_merge_checks_its_sources(cli, tmp_path):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    for k, p in ((1, a), (2, b)):
        r = cli("simulate-maps", "-o", p, "--n-galaxies", "12", "--views", "2", "--family", "disk",
                "--shard", f"{k}/2", "--block-size", "4", "-q")
        assert r.exit_code == 0, r.output
    r = cli("merge", a, b, "-o", tmp_path / "v.h5", "--virtual")
    assert r.exit_code == 0, r.output
    assert cli("info", tmp_path / "v.h5").exit_code == 0
    b.rename(tmp_path / "b_moved.h5")
    for args in (("info", tmp_path / "v.h5"),
                 ("train", "mass-cnn", "--data", tmp_path / "v.h5", "-o", tmp_path / "run", "--epochs", "1")):
        r = cli(*args)
        assert r.exit_code == 2 and "b.h5 is missing" in r.output, r.output
    (tmp_path / "b_moved.h5").rename(b)
    with h5py.File(b, "r+") as f:  # same name and size, other data
        f["maps"][0] = f["maps"][0] + 1.0
    r = cli("info", tmp_path / "v.h5")
    assert r.exit_code == 2 and "changed after 'gcml merge --virtual'" in r.output, r.output


def test_merge_of_mismatched_channels(cli, tmp_path):
    a = make_mapset(tmp_path / "a.h5", n_gal=6, views=2, seed=1)
    b = make_mapset(tmp_path / "b.h5", n_gal=6, views=2, seed=2, size=8)
    r = cli("merge", a, b, "-o", tmp_path / "m.h5")
    assert r.exit_code == 2 and "cannot merge" in r.output and not (tmp_path / "m.h5").exists()


def test_swallowed_interrupt_is_delivered_again():
    """An interrupt lost in a weakref callback or at-fork handler ("Exception ignored") is raised again in the
    main program (through SIGTERM, whose handler gcml always installs: SIGINT may be ignored in a background
    job); other unraisable exceptions go to the previous hook."""
    import signal
    from types import SimpleNamespace

    from gcml.cli.main import _terminate, _unraisable

    previous = signal.signal(signal.SIGTERM, _terminate)  # as `gcml` installs it
    try:
        seen = []
        hook = _unraisable(seen.append)
        hook(SimpleNamespace(exc_type=ValueError))
        assert len(seen) == 1
        hook(SimpleNamespace(exc_type=KeyboardInterrupt))
        t0 = time.time()
        with pytest.raises(KeyboardInterrupt):
            while time.time() - t0 < 5:
                pass
        assert time.time() - t0 < 1 and len(seen) == 1
    finally:
        signal.signal(signal.SIGTERM, previous)
