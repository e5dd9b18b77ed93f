"""Bad input across commands (DESIGN.md "Reliability"): one clear sentence, exit code 2, nothing half-written."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from synth_mapsets import make_mapset
from test_pidoc_training import write_toy_mapset

from gcml.errors import FormatError, InputError, OutputExistsError
from gcml.io.common import atomic_output, check_output_path, make_output_dir

SHIPPED_MASS_CNN = Path(__file__).resolve().parents[1] / "gcml" / "data" / "models" / "mass-cnn-default.pt"


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.startswith(".gcml-tmp-")]


# ----------------------------------------------------------------------------------------------- outputs
def test_existing_folder_is_never_replaced_by_a_file(tmp_path):
    (tmp_path / "out").mkdir()
    for overwrite in (False, True):
        with pytest.raises(OutputExistsError, match="is a folder; expected a file name"):
            check_output_path(tmp_path / "out", overwrite=overwrite)
    assert (tmp_path / "out").is_dir()


def test_output_below_a_regular_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(InputError, match="is not a folder"):
        with atomic_output(tmp_path / "f" / "a" / "b.h5"):
            pass
    with pytest.raises(InputError, match=r"cannot create folder .*f/run: .*f is not a folder"):
        make_output_dir(tmp_path / "f" / "run")
    with pytest.raises(InputError, match="is a file; expected a folder"):
        make_output_dir(tmp_path / "f")
    assert make_output_dir(tmp_path / "new" / "run").is_dir()


def test_cli_output_is_a_folder_or_below_a_file(cli, tmp_path):
    (tmp_path / "adir").mkdir()
    (tmp_path / "f").write_text("x")
    a = make_mapset(tmp_path / "a.h5", n_gal=6, views=2)
    r = cli("simulate-maps", "-o", tmp_path / "adir", "--n-galaxies", "2", "--views", "1", "--overwrite")
    assert r.exit_code == 2 and "is a folder" in r.output
    r = cli("merge", a, "-o", tmp_path / "adir", "--overwrite")
    assert r.exit_code == 2 and "is a folder" in r.output
    r = cli("train", "mass-cnn", "--data", a, "--epochs", "1", "-o", tmp_path / "f" / "run")
    assert r.exit_code == 2 and "f is not a folder" in r.output
    r = cli("evaluate", SHIPPED_MASS_CNN, a, "-o", tmp_path / "f" / "rep")
    assert r.exit_code == 2 and "f is not a folder" in r.output
    assert not _leftovers(tmp_path)


# ------------------------------------------------------------------------------------------ option names
def test_option_names_in_messages(cli, tmp_path):
    r = cli("simulate-maps", "-o", tmp_path / "m.h5", "--n-galaxies", "2", "--block-size", "0")
    assert r.exit_code == 2 and "option --block-size" in r.output
    r = cli("simulate-maps", "-o", tmp_path / "m.h5", "--n-galaxies", "2", "--v-error", "-3:-1")
    assert r.exit_code == 2 and "option --v-error:" in r.output
    r = cli("simulate-clusters", "-o", tmp_path / "s", "--ages", "9", "--n-stars", "-5")
    assert r.exit_code == 2 and "option --n-stars" in r.output
    r = cli("simulate-clusters", "-o", tmp_path / "s", "--ages", "-1")
    assert r.exit_code == 2 and "option --ages" in r.output
    for opt, val in (("--extent", "0"), ("--smoothing", "-1"), ("--min-count", "-0.5")):
        r = cli("simulate-maps", "-o", tmp_path / "m.h5", "--n-galaxies", "2", opt, val)
        assert r.exit_code == 2 and f"{opt} " in r.output and "_kpc" not in r.output, r.output
    assert not (tmp_path / "s").exists() and not (tmp_path / "m.h5").exists()


def test_failed_cluster_series_leaves_no_folder(cli, tmp_path):
    # 200 stars dissolve long before 9 Gyr: the error must not leave an empty (or partial) output folder
    r = cli("simulate-clusters", "-o", tmp_path / "snaps", "--ages", "0.1,9", "--n-stars", "200", "-q")
    assert r.exit_code == 2 and "dissolved" in r.output
    assert not (tmp_path / "snaps").exists()


# ----------------------------------------------------------------------------------------- model files
@pytest.mark.parametrize("kind", ["text", "hdf5", "folder", "truncated"])
def test_model_file_of_the_wrong_kind(tmp_path, kind):
    from gcml.io.bundle import load_bundle

    p = tmp_path / "model.pt"
    if kind == "text":
        p.write_text("hello\n")
    elif kind == "hdf5":
        make_mapset(p, n_gal=4, views=1)
    elif kind == "folder":
        p.mkdir()
    else:
        p.write_bytes(SHIPPED_MASS_CNN.read_bytes()[:300])
    with pytest.raises(InputError) as exc:
        load_bundle(p)
    msg = str(exc.value)
    assert msg.startswith(str(p)) and "\n" not in msg
    if kind == "hdf5":
        assert isinstance(exc.value, FormatError) and "HDF5" in msg
    if kind == "folder":
        assert "is a folder" in msg


def test_evaluate_kinematic_model_on_images(cli, tmp_path):
    img = write_toy_mapset(tmp_path / "img.h5", n=8, size=16)
    r = cli("evaluate", SHIPPED_MASS_CNN, img, "--split", "all", "-o", tmp_path / "rep")
    assert r.exit_code == 2
    assert "is a 'photometry' MapSet, but model" in r.output and "'kinematics'" in r.output
    assert not (tmp_path / "rep").exists()


def test_evaluate_images_with_nan(cli, tmp_path):
    from gcml.io.bundle import load_bundle, save_bundle

    img = write_toy_mapset(tmp_path / "img.h5", n=8, size=16)
    with h5py.File(img, "a") as f:
        m = f["maps"][2]
        m[0, 3, 3] = np.nan
        f["maps"][2] = m
    # a photometry bundle of the right size (only the header matters: the NaN check comes first)
    b = load_bundle(SHIPPED_MASS_CNN)
    b["geometry"] = {**b["geometry"], "kind": "photometry", "shape": [16, 16]}
    save_bundle(tmp_path / "p.pt", b)
    r = cli("evaluate", tmp_path / "p.pt", img, "--split", "all", "-o", tmp_path / "rep")
    assert r.exit_code == 2 and "NaN or inf" in r.output and "image 2" in r.output


# ------------------------------------------------------------------------------------------ snapshots
def test_snapshot_with_nan_positions(tmp_path):
    from test_snapshots import _snap

    from gcml.io.snapshots import read_snapshot, write_snapshot

    write_snapshot(tmp_path / "s.h5", _snap(n=50))
    with h5py.File(tmp_path / "s.h5", "a") as f:
        pos = f["particles/pos"][()]
        pos[7, 1] = np.nan
        f["particles/pos"][...] = pos
    with pytest.raises(InputError, match=r"/particles/pos has NaN or inf values \(1 particle\(s\), first index 7\)"):
        read_snapshot(tmp_path / "s.h5")


# ---------------------------------------------------------------------------------------------- merge
def test_merge_refuses_duplicates(cli, tmp_path):
    a = make_mapset(tmp_path / "a.h5", n_gal=4, views=2, seed=0)
    r = cli("merge", a, a, "-o", tmp_path / "m.h5")
    assert r.exit_code == 2 and "given twice" in r.output
    r = cli("simulate-maps", "-o", tmp_path / "s1.h5", "--n-galaxies", "4", "--views", "1", "--block-size", "2", "--shard", "1/2", "-q")
    assert r.exit_code == 0
    r = cli("simulate-maps", "-o", tmp_path / "s2.h5", "--n-galaxies", "4", "--views", "1", "--block-size", "2", "--shard", "2/2", "-q")
    assert r.exit_code == 0
    r = cli("merge", tmp_path / "s1.h5", tmp_path / "s2.h5", "-o", tmp_path / "all.h5")
    assert r.exit_code == 0
    # the whole run merged again with one of its shards duplicates galaxies
    r = cli("merge", tmp_path / "all.h5", tmp_path / "s1.h5", "-o", tmp_path / "m.h5")
    assert r.exit_code == 2 and "same seed and options" in r.output and "disjoint shards" in r.output
    assert not (tmp_path / "m.h5").exists() and not _leftovers(tmp_path)


def test_merge_of_two_runs_keeps_galaxy_ids_distinct(cli, tmp_path):
    # simulate-maps numbers the galaxies of every run from 0: two runs share ids unless renumbered
    def run(name, seed, shard="1/1"):
        r = cli("simulate-maps", "-o", tmp_path / name, "--n-galaxies", "4", "--views", "2", "--block-size", "2",
                "--seed", seed, "--shard", shard, "-q")
        assert r.exit_code == 0, r.output

    run("a.h5", 1)
    run("b1.h5", 2, "1/2")
    run("b2.h5", 2, "2/2")
    r = cli("merge", tmp_path / "a.h5", tmp_path / "b1.h5", tmp_path / "b2.h5", "-o", tmp_path / "m.h5")
    assert r.exit_code == 2 and "overlap those of" in r.output and "--renumber" in r.output
    assert not (tmp_path / "m.h5").exists()
    r = cli("merge", tmp_path / "a.h5", tmp_path / "b1.h5", tmp_path / "b2.h5", "-o", tmp_path / "m.h5",
            "--renumber", "--virtual")
    assert r.exit_code == 2 and "without --virtual" in r.output
    r = cli("merge", tmp_path / "a.h5", tmp_path / "b1.h5", tmp_path / "b2.h5", "-o", tmp_path / "m.h5", "--renumber")
    assert r.exit_code == 0, r.output
    with h5py.File(tmp_path / "m.h5") as f:
        gid = f["meta/group_id"][()]
        # run a keeps ids 0-3; both shards of run b move by the same offset, to 4-7
        np.testing.assert_array_equal(np.unique(gid[:8]), [0, 1, 2, 3])
        np.testing.assert_array_equal(np.unique(gid[8:]), [4, 5, 6, 7])
        assert [o["offset"] for o in json.loads(f["meta/group_id"].attrs["offsets"])] == [0, 4, 4]
    # shards of one run need no renumbering
    r = cli("merge", tmp_path / "b1.h5", tmp_path / "b2.h5", "-o", tmp_path / "b.h5")
    assert r.exit_code == 0, r.output


def test_too_few_stars_named_before_the_physics_breaks(cli, tmp_path):
    # ln(0.02 N) of Baumgardt & Makino (2003) is negative below N = 50: a clear error, not a NaN warning
    r = cli("simulate-clusters", "-o", tmp_path / "s", "--ages", "1", "--n-stars", "20")
    assert r.exit_code == 2 and "option --n-stars: need at least 100 stars" in r.output


def test_folders_given_as_inputs_say_so(cli, tmp_path):
    for args in (("predict", tmp_path), ("info", tmp_path)):
        r = cli(*args)
        assert r.exit_code == 2 and "is a folder" in r.output
