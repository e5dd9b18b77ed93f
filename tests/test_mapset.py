"""MapSet format: round trip, checks, splits, merge, atomic writes."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from gcml.errors import FormatError, InputError, OutputExistsError
from gcml.io.mapset import MapSet, assign_splits, merge_mapsets, read_mapset, write_mapset


def _ms(n=12, seed=0):
    rng = np.random.default_rng(seed)
    gid = np.arange(n) // 3
    return MapSet(
        maps=rng.normal(size=(n, 3, 10, 10)), channels=["v", "sigma", "count"], units=["km/s", "km/s", ""],
        pixel_scale=2.0, pixel_unit="kpc", kind="kinematics",
        targets={"log10_mass_total": rng.uniform(11, 13, n).astype("f4")},
        target_units={"log10_mass_total": "dex(Msun)"},
        meta={"group_id": gid, "family": np.array(["disk", "merger"] * (n // 2))},
        meta_units={"group_id": "", "family": ""},
        split=assign_splits(gid, (0.5, 0.25, 0.25), seed=3),
    )


def test_round_trip(tmp_path):
    ms = _ms()
    p = write_mapset(tmp_path / "a.h5", ms, seed=7, config={"x": 1}, command="gcml test")
    r = read_mapset(p)
    np.testing.assert_array_equal(r.maps, ms.maps.astype("f4"))
    np.testing.assert_array_equal(r.targets["log10_mass_total"], ms.targets["log10_mass_total"])
    assert list(r.meta["family"]) == list(ms.meta["family"])
    np.testing.assert_array_equal(r.split, ms.split)
    assert r.channels == ["v", "sigma", "count"] and r.units[0] == "km/s"
    assert r.attrs["seed"] == 7 and r.attrs["config"] == {"x": 1} and r.attrs["command"] == "gcml test"
    assert r.target_units["log10_mass_total"] == "dex(Msun)"
    sub = read_mapset(p, split="train", channels=["sigma"])
    assert sub.maps.shape[1] == 1 and sub.n == int((ms.split == 0).sum())


def test_overwrite_guard_and_no_partial_file(tmp_path):
    p = tmp_path / "a.h5"
    write_mapset(p, _ms())
    with pytest.raises(OutputExistsError, match="pass `overwrite`"):
        write_mapset(p, _ms())
    write_mapset(p, _ms(seed=1), overwrite=True)
    # a failing write leaves nothing behind
    bad = _ms()
    bad.targets["log10_mass_total"] = bad.targets["log10_mass_total"][:3]
    with pytest.raises(InputError, match="rows"):
        write_mapset(tmp_path / "b.h5", bad)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["a.h5"]


def test_format_checks(tmp_path):
    p = tmp_path / "x.h5"
    with h5py.File(p, "w") as f:
        f.attrs["format"] = "something.else"
    with pytest.raises(FormatError, match="expected 'gcml.mapset'"):
        read_mapset(p)
    q = write_mapset(tmp_path / "y.h5", _ms())
    with h5py.File(q, "a") as f:
        f.attrs["format_version"] = "2.0"
    with pytest.raises(FormatError, match="upgrade gcml"):
        read_mapset(q)
    r = write_mapset(tmp_path / "z.h5", _ms())
    with h5py.File(r, "a") as f:
        del f["targets/log10_mass_total"].attrs["unit"]
    with pytest.raises(FormatError, match="no 'unit' attribute"):
        read_mapset(r)
    t = tmp_path / "t.txt"
    t.write_text("hello")
    with pytest.raises(FormatError, match="not an HDF5 file"):
        read_mapset(t)
    w = write_mapset(tmp_path / "w.h5", _ms())
    with pytest.raises(InputError, match="channel"):
        read_mapset(w, channels=["nope"])


def test_splits_are_groupwise_and_stable():
    gid = np.repeat(np.arange(500), 7)
    s = assign_splits(gid, (0.8, 0.1, 0.1), seed=1)
    for g in range(500):
        assert len(set(s[gid == g])) == 1
    frac = np.bincount(s, minlength=3) / len(s)
    assert abs(frac[0] - 0.8) < 0.06 and abs(frac[2] - 0.1) < 0.05
    # a group's split does not depend on the other groups in the run
    s2 = assign_splits(gid[gid >= 250], (0.8, 0.1, 0.1), seed=1)
    np.testing.assert_array_equal(s2, s[gid >= 250])
    with pytest.raises(InputError, match="sum"):
        assign_splits(gid, (0.5, 0.1, 0.1), seed=1)


@pytest.mark.parametrize("virtual", [False, True])
def test_merge(tmp_path, virtual):
    a = write_mapset(tmp_path / "a.h5", _ms(seed=1))
    b = write_mapset(tmp_path / "b.h5", _ms(seed=2))
    m = merge_mapsets([a, b], tmp_path / "m.h5", virtual=virtual)
    r = read_mapset(m)
    assert r.n == 24
    np.testing.assert_array_equal(r.maps[12:], read_mapset(b).maps)
    assert len(r.attrs["parents"]) == 2 and r.attrs["parents"][0]["sha256"]
    other = _ms()
    other.units = ["km/s", "km/s", "1"]
    c = write_mapset(tmp_path / "c.h5", other)
    with pytest.raises(InputError, match="units"):
        merge_mapsets([a, c], tmp_path / "n.h5")
    assert not (tmp_path / "n.h5").exists()


def test_cli_info(tmp_path, cli):
    p = write_mapset(tmp_path / "a.h5", _ms())
    r = cli("info", p)
    assert r.exit_code == 0 and "log10_mass_total" in r.output and "splits" in r.output
    r = cli("info", p, "--plot", tmp_path / "ex.png")
    assert r.exit_code == 0 and (tmp_path / "ex.png").stat().st_size > 1000
    r = cli("info", tmp_path / "missing.h5")
    assert r.exit_code == 2 and "not found" in r.output


def test_cli_version(cli):
    r = cli("--version")
    assert r.exit_code == 0 and r.output.startswith("gcml ")
