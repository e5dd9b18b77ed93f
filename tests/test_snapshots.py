"""Snapshots: gcml HDF5 round trip, NBODY6++ conf.3 and ASCII readers, bad input."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from gcml.errors import FormatError, InputError, OutputExistsError
from gcml.io.snapshots import (
    Snapshot,
    half_mass_radius,
    read_ascii_snapshot,
    read_nbody6_conf3,
    read_snapshot,
    read_snapshots,
    write_snapshot,
)

G_PC = 4.30091e-3  # gravitational constant in pc (km/s)^2 / Msun


def _snap(n=200, seed=0, age=12.0, time=None, lum=True) -> Snapshot:
    rng = np.random.default_rng(seed)
    kw = {}
    if lum:
        kw = dict(
            mass_initial=rng.uniform(0.1, 2, n), lum_v=rng.uniform(0, 3, n), lum_bol=rng.uniform(0, 3, n),
            teff=rng.uniform(3000, 8000, n), radius=rng.uniform(0.1, 10, n), kstar=rng.integers(0, 15, n),
            id=np.arange(1, n + 1),
        )
    return Snapshot(pos=rng.normal(size=(n, 3)), vel=rng.normal(size=(n, 3)), mass=rng.uniform(0.1, 1, n),
                    age=age, time=time if time is not None else age * 1000, metallicity=0.001,
                    simulation="test-sim", meta={"r_half_pc": 1.6, "preset": "mw15"}, **kw)


def test_roundtrip_exact_float64(tmp_path):
    s = _snap()
    write_snapshot(tmp_path / "s.h5", s, dtype="float64", seed=3)
    r = read_snapshot(tmp_path / "s.h5")
    for name in ("pos", "vel", "mass", "mass_initial", "lum_v", "lum_bol", "teff", "radius", "kstar", "id"):
        np.testing.assert_array_equal(getattr(r, name), getattr(s, name), err_msg=name)
    assert (r.age, r.time, r.metallicity, r.simulation) == (12.0, 12000.0, 0.001, "test-sim")
    assert r.meta == s.meta
    assert r.attrs["seed"] == 3
    assert r.kstar.dtype == np.int8 and r.id.dtype == np.int64


def test_roundtrip_float32_and_missing_optional(tmp_path):
    s = _snap(lum=False, age=0.5)
    s.metallicity = None
    write_snapshot(tmp_path / "s.h5", s, compression="gzip")
    r = read_snapshot(tmp_path / "s.h5")
    np.testing.assert_allclose(r.pos, s.pos, rtol=1e-6)
    assert r.lum_v is None and r.kstar is None and r.metallicity is None
    with h5py.File(tmp_path / "s.h5") as f:
        assert f.attrs["format"] == "gcml.snapshot" and f.attrs["format_version"] == "1.0"
        assert f["particles/pos"].attrs["unit"] == "pc" and f["particles/vel"].attrs["unit"] == "km/s"
        assert f["particles/pos"].dtype == np.float32


def test_no_overwrite_and_atomic(tmp_path):
    s = _snap()
    write_snapshot(tmp_path / "s.h5", s)
    with pytest.raises(OutputExistsError):
        write_snapshot(tmp_path / "s.h5", s)
    write_snapshot(tmp_path / "s.h5", s, overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["s.h5"]


def test_reader_rejects_other_format_and_newer_version(tmp_path):
    with h5py.File(tmp_path / "m.h5", "w") as f:
        f.attrs["format"] = "gcml.mapset"
        f.attrs["format_version"] = "1.0"
    with pytest.raises(FormatError, match="expected 'gcml.snapshot'"):
        read_snapshot(tmp_path / "m.h5")
    write_snapshot(tmp_path / "s.h5", _snap())
    with h5py.File(tmp_path / "s.h5", "a") as f:
        f.attrs["format_version"] = "2.0"
    with pytest.raises(FormatError, match="upgrade gcml"):
        read_snapshot(tmp_path / "s.h5")


def test_unit_attribute_checked(tmp_path):
    write_snapshot(tmp_path / "s.h5", _snap())
    with h5py.File(tmp_path / "s.h5", "a") as f:
        f["particles/pos"].attrs["unit"] = "kpc"
    with pytest.raises(FormatError, match="unit 'kpc', expected 'pc'"):
        read_snapshot(tmp_path / "s.h5")


def test_shape_checks():
    with pytest.raises(InputError, match=r"vel must have shape \(3, 3\)"):
        Snapshot(pos=np.zeros((3, 3)), vel=np.zeros((2, 3)), mass=np.ones(3))


def test_read_snapshots_time_order(tmp_path):
    for i, t in enumerate([3.0, 1.0, 2.0]):
        write_snapshot(tmp_path / f"snap_{i}.h5", _snap(age=t))
    snaps = read_snapshots(tmp_path)
    assert [s.age for s in snaps] == [1.0, 2.0, 3.0]
    assert [s.age for s in read_snapshots(tmp_path / "snap_0.h5")] == [3.0]  # one file
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no snapshot files"):
        read_snapshots(tmp_path / "empty")


def test_half_mass_radius_plummer():
    # Plummer sphere: r_h = a / sqrt(2^(2/3) - 1) = 1.3048 a (Plummer 1911).
    rng = np.random.default_rng(1)
    n = 200_000
    r = 1.0 / np.sqrt(rng.uniform(0, 1, n) ** (-2 / 3) - 1)
    u = rng.normal(size=(n, 3))
    pos = u / np.linalg.norm(u, axis=1)[:, None] * r[:, None]
    s = Snapshot(pos=pos, vel=np.zeros((n, 3)), mass=np.ones(n))
    assert half_mass_radius(s) == pytest.approx(1.3048, rel=0.01)
    assert half_mass_radius(s, projected=True) == pytest.approx(1.0, rel=0.01)  # projected r_h = a


# --- NBODY6++ conf.3 ------------------------------------------------------------------------------------


def test_conf3_real_file(shared_data):
    path = shared_data / "nbody" / "nbody6pp_conf.3_0.dat"
    s = read_snapshot(path)
    assert s.n == 12_500
    assert s.meta["variant"] == "nbody6++" and s.meta["ntot"] == 12_500 and s.meta["nk"] == 20
    assert s.meta["zmbar"] == pytest.approx(7574.082, rel=1e-6)
    assert s.meta["rbar"] == pytest.approx(8.0)
    # N-body units: total mass 1, so the physical total mass is ZMBAR.
    assert s.mass_total == pytest.approx(7574.082, rel=1e-4)
    assert s.mass.min() == pytest.approx(0.1, rel=1e-3)  # Kroupa 0.1 Msun lower limit
    np.testing.assert_array_equal(s.id, np.arange(1, 12_501))
    assert s.time == 0.0
    # VSTAR = 0.06557 sqrt(ZMBAR / RBAR) km/s (Aarseth 2003, G in pc (km/s)^2/Msun).
    assert s.meta["vstar"] == pytest.approx(np.sqrt(G_PC * s.meta["zmbar"] / s.meta["rbar"]), rel=2e-3)
    # Initial N-body model is in virial equilibrium (Q = 0.5): 2 T + W = 0, with W from pairs.
    sub = s.select(np.random.default_rng(0).choice(s.n, 2500, replace=False))
    ke = 0.5 * (sub.mass * (sub.vel**2).sum(1)).sum() * (s.n / sub.n)
    d = np.linalg.norm(sub.pos[:, None] - sub.pos[None], axis=2)
    iu = np.triu_indices(sub.n, 1)
    w = -G_PC * (sub.mass[:, None] * sub.mass[None])[iu] / d[iu]
    w_total = w.sum() * (s.n * (s.n - 1)) / (sub.n * (sub.n - 1))
    assert 2 * ke / -w_total == pytest.approx(1.0, abs=0.15)


def _conf3_bytes(shared_data) -> bytes:
    return (shared_data / "nbody" / "nbody6pp_conf.3_0.dat").read_bytes()


def test_conf3_big_endian_and_explicit_endian(shared_data, tmp_path):
    raw = np.frombuffer(_conf3_bytes(shared_data), dtype="<u4").byteswap().tobytes()
    (tmp_path / "be.3").write_bytes(raw)
    s = read_nbody6_conf3(tmp_path / "be.3")
    assert s.n == 12_500 and s.mass_total == pytest.approx(7574.082, rel=1e-4)
    with pytest.raises(FormatError, match="big-endian but endian='little'"):
        read_nbody6_conf3(tmp_path / "be.3", endian="little")


def test_conf3_truncated(shared_data, tmp_path):
    (tmp_path / "t.3").write_bytes(_conf3_bytes(shared_data)[:300_000])
    with pytest.raises(FormatError, match="truncated"):
        read_snapshot(tmp_path / "t.3")
    (tmp_path / "tiny.3").write_bytes(b"\x10\x00")
    with pytest.raises(FormatError, match="bytes"):
        read_nbody6_conf3(tmp_path / "tiny.3")


def test_conf3_garbage(tmp_path):
    (tmp_path / "g.3").write_bytes(np.arange(100, dtype="<i4").tobytes())
    with pytest.raises(FormatError, match="not an NBODY6/NBODY6\\+\\+ conf.3 file"):
        read_nbody6_conf3(tmp_path / "g.3")


def test_conf3_nbody6_variant_and_multiple(tmp_path):
    # NBODY6 OUT3 layout (no RHOS, XNS, PHI), two snapshots appended, written here by hand.
    rng = np.random.default_rng(0)

    def rec(arr):
        b = arr.tobytes()
        return np.int32(len(b)).tobytes() + b + np.int32(len(b)).tobytes()

    out = b""
    for t in (0.0, 10.0):
        n = 5
        as_ = np.zeros(20, "<f4")
        as_[0], as_[2], as_[3], as_[10], as_[11] = t, 2.0, 1000.0, 0.5, 1.5
        body = np.full(n, 1 / n, "<f4")
        x = rng.normal(size=3 * n).astype("<f4")
        v = rng.normal(size=3 * n).astype("<f4")
        out += rec(np.array([n, 1, 1, 20], "<i4"))
        out += rec(np.concatenate([as_, body, x, v, np.arange(1, n + 1).astype("<i4").view("<f4")]))
    (tmp_path / "OUT3").write_bytes(out)
    s = read_nbody6_conf3(tmp_path / "OUT3", index=1, center="none")
    assert s.meta["variant"] == "nbody6" and s.n == 5
    assert s.mass_total == pytest.approx(1000.0) and s.time == pytest.approx(5.0)
    np.testing.assert_array_equal(s.id, np.arange(1, 6))
    with pytest.raises(InputError, match="holds 2 snapshot"):
        read_nbody6_conf3(tmp_path / "OUT3", index=2)


# --- ASCII ----------------------------------------------------------------------------------------------


def test_ascii_clustertools(shared_data):
    s = read_snapshot(shared_data / "nbody" / "clustertools_N10k.dat.10.dat")
    assert s.n == 10_000
    assert s.mass_total == pytest.approx(6218.6, abs=0.5)
    assert 0.08 <= s.mass.min() and s.mass.max() <= 120
    # In physical units (Msun, pc, km/s) the table is close to virial equilibrium:
    # sigma_3D^2 ~ 0.4 G M / r_h (Spitzer 1987).
    sig2 = (s.vel**2).sum(1).mean()
    assert sig2 == pytest.approx(0.4 * G_PC * s.mass_total / half_mass_radius(s), rel=0.3)


def test_ascii_csv_header_and_units(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("# comment\nid,mass,x,y,z,vx,vy,vz\n1,1.0,0.001,0,0,1000,0,0\n2,2.0,0,0.002,0,0,0,0\n")
    s = read_ascii_snapshot(p, units={"length": "kpc", "velocity": "m/s"})
    np.testing.assert_allclose(s.pos[:, 0], [1.0, 0.0])
    np.testing.assert_allclose(s.vel[0], [1.0, 0, 0])
    np.testing.assert_array_equal(s.id, [1, 2])
    s2 = read_ascii_snapshot(p, scale={"mass": 10.0}, units={"length": "kpc"})
    assert s2.mass_total == pytest.approx(30.0)


def test_ascii_missing_columns(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("1 2 3 4 5\n1 2 3 4 5\n")
    with pytest.raises(InputError, match="has 5 columns but the column map names 7"):
        read_snapshot(p)
    with pytest.raises(InputError, match="lacks required column\\(s\\) vz"):
        read_ascii_snapshot(p, columns="m x y z vx vy")
    with pytest.raises(InputError, match="unknown column name 'foo'"):
        read_ascii_snapshot(p, columns="m x y z vx vy foo")
    p7 = tmp_path / "t7.txt"
    p7.write_text("1 2 3 4 5 6 7\n")
    with pytest.raises(InputError, match="cannot be converted"):
        read_ascii_snapshot(p7, units={"length": "km/s"})


def test_info_describes_snapshot(tmp_path, cli):
    write_snapshot(tmp_path / "s.h5", _snap())
    res = cli("info", tmp_path / "s.h5", "--json")
    assert res.exit_code == 0, res.output
    assert '"gcml.snapshot 1.0"' in res.output and '"n": 200' in res.output


def test_with_luminosities(shared_data):
    from gcml.io.snapshots import with_luminosities
    from gcml.physics.photometry import lum_v_from_bolometric

    s = read_snapshot(shared_data / "nbody" / "nbody6pp_conf.3_0.dat", metallicity=0.001)
    with pytest.raises(InputError, match="no luminosities and no metallicity"):
        with_luminosities(read_snapshot(shared_data / "nbody" / "nbody6pp_conf.3_0.dat"))
    lit = with_luminosities(s, age_gyr=12.0)
    assert lit.lum_v.shape == (s.n,) and np.all(lit.lum_v >= 0) and lit.lum_v.sum() > 0
    np.testing.assert_array_equal(lit.mass, s.mass)
    # Stars with L_bol and Teff use the Reed (1998) correction directly.
    t = _snap(lum=False)
    t.lum_bol, t.teff = np.full(t.n, 2.0), np.full(t.n, 5000.0)
    np.testing.assert_allclose(with_luminosities(t).lum_v, lum_v_from_bolometric(2.0, 5000.0))
