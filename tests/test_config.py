from __future__ import annotations

import pytest

from gcml.config import config_section, load_config_file, parse_list, parse_range
from gcml.errors import ConfigError


def test_parse_list():
    assert parse_list("10,25,50") == [10.0, 25.0, 50.0]
    assert parse_list("0.5:2:0.5") == [0.5, 1.0, 1.5, 2.0]
    assert parse_list("1:3:1,7", kind=int) == [1, 2, 3, 7]
    assert parse_list("disk,merger", kind=str) == ["disk", "merger"]
    assert len(parse_list("0.5:14:0.01")) == 1351
    with pytest.raises(ConfigError, match="option `ages`: "):
        parse_list("a,b", name="`ages`")
    with pytest.raises(ConfigError, match="step > 0"):
        parse_list("1:0:1", name="x")


def test_parse_range():
    assert parse_range("11:13", name="m") == (11.0, 13.0)
    with pytest.raises(ConfigError, match="low <= high"):
        parse_range("13:11", name="m")


def test_config_files(tmp_path):
    t = tmp_path / "c.toml"
    t.write_text('seed = 3\n[simulate-maps]\nn-galaxies = 10\nfamily = ["disk", "merger"]\n')
    d = config_section(load_config_file(t), "simulate-maps")
    assert d == {"seed": 3, "n_galaxies": 10, "family": ["disk", "merger"]}
    y = tmp_path / "c.yaml"
    y.write_text("seed: 4\nsimulate_maps:\n  views: 5\n")
    assert config_section(load_config_file(y), "simulate-maps") == {"seed": 4, "views": 5}
    bad = tmp_path / "bad.toml"
    bad.write_text("seed = = 3")
    with pytest.raises(ConfigError, match="cannot parse"):
        load_config_file(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config_file(tmp_path / "none.toml")


def test_an_output_configures_the_same_run_again(cli, tmp_path):
    # the resolved command-line options are stored in each output; --config FILE.h5 repeats the run
    import h5py
    import numpy as np

    a = tmp_path / "a.h5"
    r = cli("simulate-maps", "-o", a, "--n-galaxies", "8", "--views", "2", "--extent", "30", "--seed", "5",
            "--block-size", "4", "--shard", "2/2", "-q")
    assert r.exit_code == 0, r.output
    r = cli("simulate-maps", "--config", a, "-o", tmp_path / "b.h5", "-q")
    assert r.exit_code == 0, r.output
    with h5py.File(a) as fa, h5py.File(tmp_path / "b.h5") as fb:
        assert fa.attrs["config"] == fb.attrs["config"]  # shard, extent, seed ... all repeated
        np.testing.assert_array_equal(fa["maps"][()], fb["maps"][()])
    r = cli("mock-observe", tmp_path, "--config", a, "-o", tmp_path / "c.h5")
    assert r.exit_code == 2 and "was made by 'gcml simulate-maps'" in r.output
    assert not (tmp_path / "c.h5").exists()


def test_a_training_run_configures_the_same_run_again(cli, tmp_path):
    import torch
    from synth_mapsets import make_mapset

    data = make_mapset(tmp_path / "syn.h5", n_gal=12, views=4)
    r = cli("train", "mass-cnn", "--data", data, "--channels", "2", "--epochs", "1", "--batch-size", "16",
            "--threads", "1", "-o", tmp_path / "one", "-q")
    assert r.exit_code == 0, r.output
    r = cli("train", "mass-cnn", "--config", tmp_path / "one" / "options.toml", "-o", tmp_path / "two", "-q")
    assert r.exit_code == 0, r.output
    a = torch.load(tmp_path / "one" / "last.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "two" / "last.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
