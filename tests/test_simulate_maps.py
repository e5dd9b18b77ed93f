"""gcml simulate-maps end to end: file contents, determinism across workers and shards, bad input."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pytest

from gcml.errors import ConfigError
from gcml.io.mapset import read_mapset
from gcml.simulate.galaxies import SimulateMapsConfig, parse_shard, simulate_maps

SMALL = ["--n-galaxies", "6", "--views", "5", "--n-gc", "60", "--merger-steps", "60", "--seed", "3", "-q"]


def _same(a, b):
    np.testing.assert_array_equal(a.maps, b.maps)
    assert sorted(a.targets) == sorted(b.targets) and sorted(a.meta) == sorted(b.meta)
    for k in a.targets:
        np.testing.assert_array_equal(a.targets[k], b.targets[k])
    for k in a.meta:
        np.testing.assert_array_equal(a.meta[k], b.meta[k], err_msg=k)
    np.testing.assert_array_equal(a.split, b.split)


def test_cli_writes_a_complete_mapset(cli, tmp_path):
    out = tmp_path / "maps.h5"
    r = cli("simulate-maps", "-o", out, "--family", "disk,merger,unknown", *SMALL[:-1])
    assert r.exit_code == 0, r.output
    assert "maps/s" in r.output and "30 maps" in r.output
    ms = read_mapset(out)
    assert ms.kind == "kinematics" and ms.channels == ["v", "sigma", "count"] and ms.units == ["km/s", "km/s", ""]
    assert ms.pixel_unit == "kpc" and ms.maps.shape == (30, 3, 10, 10)
    assert np.isfinite(ms.maps).all()
    for k in ("n_pix", "extent_kpc", "smoothing_kpc", "min_count", "subtract_errors", "v_error_min_kms"):
        assert k in ms.map_attrs
    for t in ("log10_mass_total", "log10_m200", "log10_mstar", "log10_mass_within_5kpc", "log10_mass_within_10kpc",
              "log10_mass_within_20kpc", "log10_mass_within_50kpc", "log10_mass_within_5re", "log10_mass_within_rout"):
        assert ms.target_units[t] == "dex(Msun)" and ms.targets[t].dtype == np.float32
        assert np.isfinite(ms.targets[t]).all()
    for m in ("group_id", "family", "view_theta", "view_phi", "n_gc", "r_out_kpc", "tme_log10_mass", "r_e_kpc",
              "m200", "concentration", "mstar", "r_disk_kpc", "bulge_to_disk", "f_rot", "beta", "mass_ratio", "f_v"):
        assert m in ms.meta
    fam = ms.meta["family"]
    assert set(fam) == {"disk", "merger", "unknown"}
    assert np.all(ms.split[fam == "unknown"] == 3) and np.all(ms.split[fam != "unknown"] < 3)
    assert np.all(np.isnan(ms.meta["f_v"][fam == "disk"])) and np.all(np.isfinite(ms.meta["f_v"][fam == "merger"]))
    # labels are consistent: total >= M200 and aperture masses increase with radius
    t = ms.targets
    assert np.all(t["log10_mass_total"] >= t["log10_m200"])
    assert np.all(np.diff(np.stack([t[f"log10_mass_within_{a}kpc"] for a in (5, 10, 20, 50)]), axis=0) > 0)
    np.testing.assert_array_equal(ms.meta["group_id"], np.repeat(np.arange(6), 5))
    assert ms.attrs["config"]["n_galaxies"] == 6 and ms.attrs["seed"] == 3


def test_workers_and_shards_give_identical_output(cli, tmp_path):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    args = [*SMALL, "--family", "disk,merger", "--block-size", "2"]
    assert cli("simulate-maps", "-o", a, "--workers", "1", *args).exit_code == 0
    cfg = SimulateMapsConfig(families=("disk", "merger"), n_galaxies=6, views=5, n_gc=60, merger_steps=60, seed=3,
                             batch_galaxies=2)
    simulate_maps(cfg, b, workers=2)
    _same(read_mapset(a), read_mapset(b))
    parts = []
    for k in (1, 2, 3):
        p = tmp_path / f"s{k}.h5"
        assert cli("simulate-maps", "-o", p, "--shard", f"{k}/3", *args).exit_code == 0
        parts.append(p)
    m = tmp_path / "merged.h5"
    assert cli("merge", *parts, "-o", m).exit_code == 0
    _same(read_mapset(a), read_mapset(m))
    assert parse_shard("2/3", 7) == (2, 4)
    assert parse_shard("2/3", 70, 8) == (24, 48) and parse_shard("3/3", 70, 8) == (48, 70)


def test_config_file_sets_options(cli, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('family = "disk"\n[simulate-maps]\nn-galaxies = 3\nviews = 2\nn-pix = 8\nextent = 30.0\n'
                   'v-error = "5:10"\nsubsample = "0.5:1"\nn-gc = 40\n')
    out = tmp_path / "m.h5"
    r = cli("simulate-maps", "-o", out, "--config", cfg, "-q")
    assert r.exit_code == 0, r.output
    ms = read_mapset(out)
    assert ms.maps.shape == (6, 3, 8, 8)
    assert ms.map_attrs["extent_kpc"] == 30.0 and ms.map_attrs["v_error_max_kms"] == 10.0
    assert np.all(ms.meta["n_gc"] <= 40)


@pytest.mark.parametrize("args, message", [
    (["--family", "disk,spiral"], "--family"),
    (["--log-m200", "13:11"], "--log-m200"),
    (["--f-rot", "0.2:1.5"], "--f-rot"),
    (["--mass-ratio", "0:0.5"], "--mass-ratio"),
    (["--split", "0.8,0.3,0.1"], "--split"),
    (["--smoothing", "0"], "smoothing"),
    (["--shard", "4/3"], "--shard"),
])
def test_bad_input_exit_code_2_and_no_file(cli, tmp_path, args, message):
    out = tmp_path / "x.h5"
    r = cli("simulate-maps", "-o", out, "--n-galaxies", "2", "--views", "2", *args)
    assert r.exit_code == 2
    assert message in r.output and len(r.output.strip().splitlines()) <= 2
    assert list(tmp_path.iterdir()) == []


def test_existing_output_and_unwritable_folder(cli, tmp_path):
    out = tmp_path / "x.h5"
    out.write_text("keep me")
    r = cli("simulate-maps", "-o", out, "--n-galaxies", "2", "--views", "2", "--family", "disk")
    assert r.exit_code == 2 and "--overwrite" in r.output
    assert out.read_text() == "keep me"
    r = cli("simulate-maps", "-o", out, "--n-galaxies", "2", "--views", "2", "--family", "disk", "--overwrite", "-q")
    assert r.exit_code == 0 and h5py.is_hdf5(out)
    # a path below a regular file cannot be written
    r = cli("simulate-maps", "-o", out / "m.h5", "--n-galaxies", "2", "--views", "2", "--family", "disk")
    assert r.exit_code == 2 and "not a folder" in r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.h5"]
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o500)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        r = cli("simulate-maps", "-o", ro / "m.h5", "--n-galaxies", "2", "--views", "2", "--family", "disk")
        assert r.exit_code == 2 and "not writable" in r.output
        assert list(ro.iterdir()) == []
    finally:
        os.chmod(ro, 0o700)


def test_library_errors_are_config_errors():
    # library messages name the config field; the CLI shows the option (test_library_terms_become_options)
    with pytest.raises(ConfigError, match="`views`"):
        SimulateMapsConfig(views=0)
    with pytest.raises(ConfigError, match="option `shard`"):
        parse_shard("a/b", 10)
    with pytest.raises(ConfigError, match="empty"):
        parse_shard("1/2", 4, 128)  # 4 galaxies are one block of 128: a second shard would be empty


def test_library_terms_become_options(cli, tmp_path):
    """SimulateMapsConfig says `split_fractions`; gcml simulate-maps says --split (its FIELDS table)."""
    with pytest.raises(ConfigError, match="`split_fractions`"):
        SimulateMapsConfig(split_fractions=(0.5, 0.5, 0.5))
    r = cli("simulate-maps", "-o", tmp_path / "m.h5", "--split", "0.5,0.5,0.5", "--n-galaxies", "2", "--views", "1")
    assert r.exit_code == 2 and "option --split:" in r.output and "`" not in r.output
