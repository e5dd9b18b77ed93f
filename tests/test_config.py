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
    with pytest.raises(ConfigError, match="--ages"):
        parse_list("a,b", name="--ages")
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
