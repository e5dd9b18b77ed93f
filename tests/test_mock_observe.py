"""mock-observe: flux and mass conservation, geometry, determinism, FITS output, real N-body data, errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import h5py
import numpy as np
import pytest
from scipy.signal import fftconvolve

from gcml.io.mapset import merge_mapsets, read_mapset
from gcml.io.snapshots import Snapshot, write_snapshot
from gcml.observe.photometric import (
    ARCSEC_PC_PER_KPC,
    ImageGeometry,
    NoiseConfig,
    PhotometricImager,
    bin_views,
    to_pidoc_flux,
)

GEO = ImageGeometry(40.0, 0.25)


def plummer(n: int, a_pc: float, seed: int, r_max: float = 50.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plummer (1911) sphere positions [pc] (truncated at r_max), masses and V luminosities."""
    rng = np.random.default_rng(seed)
    u = rng.uniform(0, (r_max ** 2 / (r_max ** 2 + a_pc ** 2)) ** 1.5, n)  # enclosed-mass fraction
    r = a_pc / np.sqrt(u ** (-2.0 / 3.0) - 1.0)
    d = rng.normal(size=(n, 3))
    pos = d / np.linalg.norm(d, axis=1)[:, None] * r[:, None]
    m = rng.uniform(0.1, 0.9, n)
    return pos, m, m ** 4


def make_snapshots(folder: Path, n_snap: int = 2, n: int = 5000, a_pc: float = 2.0, **kw) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n_snap):
        pos, m, lv = plummer(n, a_pc, seed=100 + i)
        vel = np.random.default_rng(i).normal(size=(n, 3))
        write_snapshot(folder / f"snap_{i:03d}.h5",
                       Snapshot(pos=pos, vel=vel, mass=m, lum_v=lv, age=10.0 + i, metallicity=0.001,
                                simulation=kw.get("simulation", f"sim{i // 2}")), dtype="float64")
    return folder


# --------------------------------------------------------------------------------------------------
# Library: binning and conservation


def test_vectorised_binning_equals_histogram2d_per_view():
    pos, m, lv = plummer(3000, 2.0, seed=1)
    xy = pos[:, :2]
    rng = np.random.default_rng(2)
    d = np.array([10.0, 25.0, 60.0, 100.0, 33.0])
    rot = np.array([0, 1, 2, 3, 1])
    sh = rng.uniform(-5, 5, (5, 2))
    maps, inside = bin_views(xy, np.stack([lv, m], 1), d, GEO, rotation_k=rot, shift_arcsec=sh)
    for b in range(5):
        th = xy * ARCSEC_PC_PER_KPC / d[b]
        ang = rot[b] * math.pi / 2
        th = th @ np.array([[math.cos(ang), math.sin(ang)], [-math.sin(ang), math.cos(ang)]]) + sh[b]
        for j, w in enumerate((lv, m)):
            h, _, _ = np.histogram2d(th[:, 1], th[:, 0], bins=160, range=[[-20, 20], [-20, 20]], weights=w)
            np.testing.assert_allclose(maps[b, j], h, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(inside, maps.sum((2, 3)))


def _inside_mask(xy, d, rot, shift):
    th = xy * ARCSEC_PC_PER_KPC / d
    ang = rot * math.pi / 2
    th = th @ np.array([[math.cos(ang), math.sin(ang)], [-math.sin(ang), math.cos(ang)]]) + shift
    return (np.abs(th) < 20.0).all(1)


def test_flux_and_mass_conservation_before_psf():
    pos, m, lv = plummer(20000, 3.0, seed=3)
    xy = pos[:, :2]
    d = np.array([10.0, 40.0, 100.0])
    rot = np.array([0, 3, 1])
    sh = np.array([[4.0, -3.0], [0.0, 0.0], [-5.0, 5.0]])
    imager = PhotometricImager(GEO, smoothing_px=0.0)
    res = imager.images(xy, lv, m, distance_kpc=d, psf_fwhm=np.zeros(3), rotation_k=rot, shift_arcsec=sh)
    for b in range(3):
        ins = _inside_mask(xy, d[b], rot[b], sh[b])
        assert 0 < ins.sum() < len(xy) or d[b] == 100.0
        expected_flux = lv[ins].sum() / (4 * math.pi * d[b] ** 2)
        assert res.flux[b].sum(dtype=np.float64) == pytest.approx(expected_flux, rel=1e-6)
        assert res.flux_fov[b] == pytest.approx(expected_flux, rel=1e-12)
        assert res.mass[b].sum(dtype=np.float64) == pytest.approx(m[ins].sum(), rel=1e-6)
        assert res.mass_fov[b] == pytest.approx(m[ins].sum(), rel=1e-12)


def test_psf_and_smoothing_change_totals_only_by_what_leaves_the_field():
    pos, m, lv = plummer(20000, 2.0, seed=4, r_max=6.0)   # 6 pc = 12.4" at 100 kpc
    xy = pos[:, :2]
    d = np.array([12.0, 100.0])
    sh = np.array([[5.0, -5.0], [0.0, 0.0]])
    imager = PhotometricImager(GEO, smoothing_px=4.0)
    res = imager.images(xy, lv, m, distance_kpc=d, psf_fwhm=np.array([1.5, 0.5]), shift_arcsec=sh)
    raw, _ = bin_views(xy, np.stack([lv, m], 1), d, GEO, shift_arcsec=sh)
    for b, fw in enumerate((1.5, 0.5)):
        fraw = raw[b, 0] / (4 * math.pi * d[b] ** 2)
        k = imager.combined_kernel(fw)
        full = fftconvolve(fraw, k, mode="full")            # on an unbounded canvas nothing is lost
        assert full.sum() == pytest.approx(fraw.sum(), rel=1e-9)
        r = k.shape[0] // 2
        stays = full[r:r + 160, r:r + 160].sum()            # what is still inside the field
        assert res.flux[b].sum(dtype=np.float64) == pytest.approx(stays, rel=1e-5)
        g = imager._gauss
        fm = fftconvolve(raw[b, 1], g, mode="full")
        rg = g.shape[0] // 2
        assert res.mass[b].sum(dtype=np.float64) == pytest.approx(fm[rg:rg + 160, rg:rg + 160].sum(), rel=1e-5)
    # b = 0 overflows the field and loses light at the edges; b = 1 (compact, centred) keeps it all
    assert res.flux[0].sum() < 0.99 * raw[0, 0].sum() / (4 * math.pi * 144)
    assert res.flux[1].sum(dtype=np.float64) == pytest.approx(res.flux_fov[1], rel=1e-5)
    assert res.mass[1].sum(dtype=np.float64) == pytest.approx(res.mass_fov[1], rel=1e-5)
    # no negative ringing beyond float32 round-off
    assert res.flux.min() > -1e-6 * res.flux.max()


def test_twice_the_distance_half_the_size_quarter_the_flux():
    pos, m, lv = plummer(40000, 1.0, seed=5, r_max=3.0)   # 3 pc = 12.4" at 50 kpc: all inside
    xy = pos[:, :2]
    imager = PhotometricImager(ImageGeometry(40.0, 0.05), smoothing_px=0.0)   # fine pixels for sizes
    res = imager.images(xy, lv, m, distance_kpc=np.array([50.0, 100.0]), psf_fwhm=np.zeros(2))
    f50, f100 = (res.flux[i].astype(np.float64) for i in range(2))
    assert f100.sum() / f50.sum() == pytest.approx(0.25, rel=1e-6)

    def half_light_radius(img):
        n = img.shape[0]
        yy, xx = np.mgrid[0:n, 0:n]
        r = np.hypot(xx - (n - 1) / 2, yy - (n - 1) / 2).ravel() * 0.05
        o = np.argsort(r)
        c = np.cumsum(img.ravel()[o])
        return r[o][np.searchsorted(c, 0.5 * c[-1])]

    assert half_light_radius(f100) / half_light_radius(f50) == pytest.approx(0.5, rel=0.02)


def test_pidoc_convention():
    f = np.array([0.0, 1e-12, 1e-5, 2.0])
    np.testing.assert_allclose(to_pidoc_flux(f, four_pi=True, floor=1e-9), [-9, -9, -5, math.log10(2)])
    np.testing.assert_allclose(to_pidoc_flux(f[2:], four_pi=False), np.log10(f[2:] * 4 * math.pi))


def test_noise_seeded_and_sky_subtracted():
    pos, m, lv = plummer(5000, 2.0, seed=6)
    noise = NoiseConfig(sky_mag=21.0, poisson=True, read_noise=5.0, field_density=2.0)
    imager = PhotometricImager(GEO, smoothing_px=0.0, noise=noise)
    far = np.full((1, 2), 1e6)  # no cluster star in the field: pure sky + field stars

    def run(seed):
        return imager.images(far, np.ones(1), np.ones(1), distance_kpc=np.array([50.0]),
                             psf_fwhm=np.array([1.0]), rngs=[np.random.default_rng(seed)]).flux[0]

    a, b, c = run(1), run(1), run(2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    quiet = PhotometricImager(GEO, smoothing_px=0.0, noise=NoiseConfig(sky_mag=21.0, poisson=True, read_noise=5.0))
    n = quiet.images(far, np.ones(1), np.ones(1), distance_kpc=np.array([50.0]), psf_fwhm=np.array([1.0]),
                     rngs=[np.random.default_rng(3)]).flux[0].astype(np.float64)
    from gcml.observe.photometric import flux_to_counts_factor
    cf = flux_to_counts_factor(25.0, 100.0)
    sky = 100.0 * 10 ** (-0.4 * (21.0 - 25.0)) * 0.25 ** 2
    # sky-subtracted: mean zero; rms = sqrt(sky + read^2) counts
    assert abs(n.mean() * cf) < 5 * math.sqrt(sky + 25) / 160
    assert n.std() * cf == pytest.approx(math.sqrt(sky + 25.0), rel=0.03)


# --------------------------------------------------------------------------------------------------
# The command


def test_users_example_as_typed(cli, tmp_path, monkeypatch):
    make_snapshots(tmp_path / "snapshots", n_snap=3)
    monkeypatch.chdir(tmp_path)
    r = cli("mock-observe", "snapshots/", "--psf", "1.0", "--distance", "60")
    assert r.exit_code == 0, r.output
    ms = read_mapset(tmp_path / "images.h5")
    assert ms.kind == "photometry" and ms.maps.shape == (3, 1, 160, 160)
    assert ms.channels == ["flux"] and ms.units == ["Lsun/kpc2"] and ms.pixel_unit == "arcsec"
    assert ms.pixel_scale == 0.25
    np.testing.assert_allclose(ms.targets["distance"], 60.0)
    np.testing.assert_allclose(ms.targets["age"], [10.0, 11.0, 12.0])
    assert ms.target_units["age"] == "Gyr" and ms.target_units["distance"] == "kpc"
    assert ms.truth["mass"].shape == (3, 1, 160, 160) and ms.truth_units["mass"] == "Msun"
    for k in ("psf_fwhm", "distance", "shift_x", "shift_y", "rotation", "snapshot_id", "group_id", "axis",
              "simulation", "lum_v_fov"):
        assert k in ms.meta, k
    # images of one simulation share a group id (snapshots 0, 1 are sim0; 2 is sim1)
    g = ms.meta["group_id"]
    assert g[0] == g[1] != g[2]
    assert np.all(np.abs(ms.meta["shift_x"]) <= 5) and set(ms.meta["rotation"]) <= {0, 90, 180, 270}
    # truth mass total = stars in the field (minus what smoothing pushed out, small here)
    np.testing.assert_allclose(ms.truth["mass"].sum((1, 2, 3)), 10 ** ms.targets["log10_mass_fov"], rtol=0.02)
    with h5py.File(tmp_path / "images.h5") as f:
        assert f.attrs["kind"] == "photometry"
        assert json.loads(f.attrs["config"])["psf_fwhm"] == [1.0]
        assert f["meta/r_half_light_pc"].attrs.get("unit", f["meta/r_half_light_pc"].attrs.get("units")) == "pc"
    # projected half-light radius: a Plummer sphere's projected half-mass radius is its scale a = 2 pc
    # (luminosities drawn independently of position, so light follows mass up to sampling noise)
    np.testing.assert_allclose(ms.meta["r_half_light_pc"], 2.0, rtol=0.08)


def test_grid_workers_shards_and_determinism(cli, tmp_path):
    snaps = make_snapshots(tmp_path / "s", n_snap=3, n=3000)
    base = ["mock-observe", str(snaps), "--psf", "0.5,1.5", "--distance", "20,80", "--axis", "x,random",
            "--seed", "7"]
    assert cli(*base, "-o", tmp_path / "a.h5").exit_code == 0
    assert cli(*base, "-o", tmp_path / "b.h5", "--workers", "2").exit_code == 0
    assert cli(*base, "-o", tmp_path / "s1.h5", "--shard", "1/2").exit_code == 0
    assert cli(*base, "-o", tmp_path / "s2.h5", "--shard", "2/2").exit_code == 0
    merge_mapsets([tmp_path / "s1.h5", tmp_path / "s2.h5"], tmp_path / "m.h5")
    a, b, mm = (read_mapset(tmp_path / n) for n in ("a.h5", "b.h5", "m.h5"))
    assert a.n == 3 * 8
    for other in (b, mm):
        np.testing.assert_array_equal(a.maps, other.maps)
        np.testing.assert_array_equal(a.truth["mass"], other.truth["mass"])
        for k in a.meta:
            np.testing.assert_array_equal(a.meta[k], other.meta[k])
    # the grid: every (axis, distance, PSF) combination once per snapshot
    combos = {(str(ax), d, p) for ax, d, p in zip(a.meta["axis"][:8], a.meta["distance"][:8], a.meta["psf_fwhm"][:8], strict=True)}
    assert len(combos) == 8
    # a different seed changes shifts, not the grid
    assert cli(*base[:-1], "8", "-o", tmp_path / "c.h5").exit_code == 0
    c = read_mapset(tmp_path / "c.h5")
    assert not np.array_equal(a.meta["shift_x"], c.meta["shift_x"])
    np.testing.assert_array_equal(a.meta["distance"], c.meta["distance"])


def test_random_subset_and_pidoc_convention(cli, tmp_path):
    snaps = make_snapshots(tmp_path / "s", n_snap=2, n=3000)
    r = cli("mock-observe", snaps, "-o", tmp_path / "g.h5", "--n-random", "3", "--seed", "1")
    assert r.exit_code == 0, r.output
    g = read_mapset(tmp_path / "g.h5")
    assert g.n == 6
    r = cli("mock-observe", snaps, "-o", tmp_path / "p.h5", "--n-random", "3", "--seed", "1",
            "--flux-convention", "pidoc")
    assert r.exit_code == 0, r.output
    p = read_mapset(tmp_path / "p.h5")
    assert p.units == ["log10(Lsun/kpc2)"]
    np.testing.assert_allclose(p.maps, to_pidoc_flux(g.maps, four_pi=True), rtol=1e-6)
    with h5py.File(tmp_path / "p.h5") as f:
        assert "log10(F)" in f["maps"].attrs["flux_unit"]
    r = cli("mock-observe", snaps, "-o", tmp_path / "q.h5", "--n-random", "3", "--seed", "1",
            "--flux-convention", "pidoc", "--pidoc-no-4pi")
    assert r.exit_code == 0, r.output
    q = read_mapset(tmp_path / "q.h5").maps
    above = p.maps > -9 + 1e-3   # pixels not raised to the 1e-9 floor
    assert above.mean() > 0.5
    np.testing.assert_allclose(q[above], p.maps[above] + math.log10(4 * math.pi), rtol=1e-6)
    np.testing.assert_array_equal(p.truth["mass"], g.truth["mass"])


def test_fits_output_wcs_maps_cluster_centre(cli, tmp_path):
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from astropy.io import fits
    from astropy.wcs import WCS

    snaps = make_snapshots(tmp_path / "s", n_snap=1, n=20000, a_pc=0.5)
    r = cli("mock-observe", snaps, "-o", tmp_path / "i.h5", "--psf", "1.0", "--distance", "50",
            "--fits", tmp_path / "fits", "--ra", "150", "--dec", "30", "--seed", "3")
    assert r.exit_code == 0, r.output
    ms = read_mapset(tmp_path / "i.h5")
    files = sorted((tmp_path / "fits").glob("*.fits"))
    assert len(files) == 1
    sx, sy = float(ms.meta["shift_x"][0]), float(ms.meta["shift_y"][0])
    with fits.open(files[0]) as h:
        img = h[0].data.astype(np.float64)
        np.testing.assert_array_equal(h[0].data, ms.maps[0, 0])
        np.testing.assert_array_equal(h["MASS"].data, ms.truth["mass"][0, 0])
        assert h[0].header["BUNIT"] == "solLum kpc-2" and h[0].header["GCMLDIST"] == 50.0
        w = WCS(h[0].header)
    # where the cluster centre is on the sky: the field centre offset by the shift (x to the west)
    centre = SkyCoord(150 * u.deg, 30 * u.deg).spherical_offsets_by(-sx * u.arcsec, sy * u.arcsec)
    px, py = w.world_to_pixel(centre)
    assert float(px) == pytest.approx(79.5 + sx / 0.25, abs=0.01)
    assert float(py) == pytest.approx(79.5 + sy / 0.25, abs=0.01)
    # ... and that is where the light is: the flux-weighted centroid of the inner image
    yy, xx = np.mgrid[0:160, 0:160]
    near = np.hypot(xx - px, yy - py) < 30
    cx = (img * xx * near).sum() / (img * near).sum()
    cy = (img * yy * near).sum() / (img * near).sum()
    assert cx == pytest.approx(float(px), abs=0.5) and cy == pytest.approx(float(py), abs=0.5)


def test_real_nbody6pp_snapshot_end_to_end(cli, tmp_path, shared_data):
    stellar = pytest.importorskip("gcml.physics.stellar", reason="stellar-evolution module not present")
    if not stellar.TABLE_FILE.is_file():
        pytest.skip("the stellar-evolution table (gcml/data) is not built in this checkout")
    conf3 = shared_data / "nbody" / "nbody6pp_conf.3_0.dat"
    r = cli("mock-observe", conf3, "-o", tmp_path / "n.h5", "--age", "12", "--metallicity", "0.001",
            "--psf", "1.0", "--distance", "15,60", "--fits", tmp_path / "fits")
    assert r.exit_code == 0, r.output
    ms = read_mapset(tmp_path / "n.h5")
    assert ms.n == 2 and np.all(ms.targets["age"] == 12.0)
    lum = ms.meta["lum_v_fov"]
    assert np.all(lum > 0) and lum[1] > lum[0]              # a wider field at 60 kpc holds more stars
    # the field holds less than the cluster's 7574 Msun, more at 60 kpc than at 15 kpc
    mf = 10 ** ms.targets["log10_mass_fov"]
    assert 0 < mf[0] < mf[1] <= 7574.1
    # the flux map's total is the field's L_V / (4 pi d^2) minus what the PSF and smoothing push out
    tot = ms.maps.sum((1, 2, 3))
    expect = lum / (4 * math.pi * ms.targets["distance"].astype(float) ** 2)
    assert np.all(tot <= expect * 1.00001) and np.all(tot > 0.8 * expect)
    assert len(list((tmp_path / "fits").glob("*.fits"))) == 2


def test_kinematics_uses_the_kinematic_map_code(cli, tmp_path):
    from gcml.observe.kinematic import MapGeometry, kinematic_maps

    rng = np.random.default_rng(9)
    n = 400
    r = rng.uniform(1000, 20000, n)   # pc: a rotating disk of GCs, 1-20 kpc
    ph = rng.uniform(0, 2 * np.pi, n)
    pos = np.stack([r * np.cos(ph), r * np.sin(ph), rng.normal(0, 300, n)], 1)
    vel = np.stack([-200 * np.sin(ph), 200 * np.cos(ph), np.zeros(n)], 1) + rng.normal(0, 30, (n, 3))
    write_snapshot(tmp_path / "gcs" / "g.h5", Snapshot(pos=pos, vel=vel, mass=np.ones(n), simulation="disk"))
    res = cli("mock-observe", tmp_path / "gcs", "-o", tmp_path / "k.h5", "--kind", "kinematics",
              "--axis", "z,x", "--centre", "origin")
    assert res.exit_code == 0, res.output
    ms = read_mapset(tmp_path / "k.h5")
    assert ms.kind == "kinematics" and ms.channels == ["v", "sigma", "count"] and ms.pixel_unit == "kpc"
    face, edge = ms.maps[0], ms.maps[1]
    assert np.abs(face[0]).max() < 40                     # face-on: no line-of-sight rotation
    assert np.abs(edge[0]).max() > 100                    # edge-on: the disk rotates
    # identical to calling the map code directly (viewed along x: image axes (y, z), line of sight x)
    vmean = vel.mean(0)
    direct = kinematic_maps((pos[:, 1] / 1e3)[None], (pos[:, 2] / 1e3)[None], (vel[:, 0] - vmean[0])[None],
                            MapGeometry())
    np.testing.assert_allclose(edge, direct[0], rtol=1e-4, atol=1e-3)


# --------------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize("case", ["unknown_file", "psf_zero", "distance_negative", "tiny_field", "empty"])
def test_bad_input_one_message_exit_2_no_file(cli, tmp_path, monkeypatch, case):
    snaps = make_snapshots(tmp_path / "s", n_snap=1, n=500)
    args = [str(snaps)]
    if case == "unknown_file":
        bad = tmp_path / "picture.png"
        bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
        args = [str(bad)]
    elif case == "psf_zero":
        args += ["--psf", "0"]
    elif case == "distance_negative":
        args += ["--distance", "-10"]
    elif case == "tiny_field":
        args += ["--fov", "0.1"]
    elif case == "empty":
        write_snapshot(tmp_path / "e" / "empty.h5", Snapshot(pos=np.zeros((0, 3)), vel=np.zeros((0, 3)),
                                                            mass=np.zeros(0), lum_v=np.zeros(0)))
        args = [str(tmp_path / "e")]
    monkeypatch.chdir(tmp_path)
    r = cli("mock-observe", *args)
    assert r.exit_code == 2
    lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
    assert lines and lines[-1].startswith("error:") or "error:" in r.output
    msg = r.output.split("error:", 1)[1]
    assert {"unknown_file": "picture.png", "psf_zero": "--psf", "distance_negative": "--distance",
            "tiny_field": "--fov", "empty": "no particles"}[case] in " ".join(msg.split())
    assert not (tmp_path / "images.h5").exists()
    assert not list(tmp_path.glob(".gcml-tmp*"))


def test_refuses_to_overwrite(cli, tmp_path):
    snaps = make_snapshots(tmp_path / "s", n_snap=1, n=500)
    out = tmp_path / "o.h5"
    assert cli("mock-observe", snaps, "-o", out, "--psf", "1", "--distance", "50").exit_code == 0
    r = cli("mock-observe", snaps, "-o", out, "--psf", "1", "--distance", "50")
    assert r.exit_code == 2 and "--overwrite" in r.output
    assert cli("mock-observe", snaps, "-o", out, "--psf", "1", "--distance", "50", "--overwrite").exit_code == 0


def test_shrinking_sphere_centre_ignores_a_tidal_tail():
    from gcml.observe.photometric import cluster_centre

    rng = np.random.default_rng(11)
    core = rng.normal(size=(20000, 3)) * 2.0 + np.array([3.0, -1.0, 0.5])
    tail = rng.normal(size=(5000, 3)) * 5.0 + np.array([60.0, 0.0, 0.0])   # 20 % of the stars far away
    pos = np.concatenate([core, tail])
    assert np.linalg.norm(pos.mean(0) - [3.0, -1.0, 0.5]) > 10               # the plain mean is pulled away
    assert np.linalg.norm(cluster_centre(pos) - [3.0, -1.0, 0.5]) < 0.2


@pytest.mark.parametrize("split_by", ["simulation", "snapshot", "image"])
def test_split_by_groups_and_shard_independence(cli, tmp_path, split_by):
    # simulations sim0 ... sim3, two snapshots each (whole simulations need one per split)
    snaps = make_snapshots(tmp_path / "s", n_snap=8 if split_by == "simulation" else 4, n=1000)
    base = ["mock-observe", str(snaps), "--psf", "1.0", "--distance", "10,20,40,80", "--axis", "x,y",
            "--seed", "3", "--split-by", split_by, "--split", "0.5,0.25,0.25", "--compression", "none"]
    assert cli(*base, "-o", tmp_path / "a.h5", "-q").exit_code == 0
    assert cli(*base, "-o", tmp_path / "s2.h5", "--shard", "2/2", "-q").exit_code == 0
    a, s2 = read_mapset(tmp_path / "a.h5"), read_mapset(tmp_path / "s2.h5")
    np.testing.assert_array_equal(a.split[a.n // 2:], s2.split)  # a shard draws the same splits
    sim, snap = a.meta["group_id"], a.meta["snapshot_id"]
    key = {"simulation": sim, "snapshot": snap, "image": np.arange(a.n)}[split_by]
    for k in np.unique(key):
        assert len(set(a.split[key == k])) == 1
    if split_by == "image":  # 32 images at 0.5/0.25/0.25: some of each snapshot land in different splits
        assert any(len(set(a.split[snap == s])) > 1 for s in np.unique(snap))


def test_too_few_simulations_auto_falls_back_explicit_refused(cli, tmp_path):
    """The chain simulate-clusters (one simulation) -> mock-observe works as typed: 'auto' splits over
    snapshots and warns; an explicit --split-by simulation stops before any work, naming the fix."""
    snaps = make_snapshots(tmp_path / "s", n_snap=6, n=1000, simulation="only")
    base = ["mock-observe", str(snaps), "--psf", "1.0", "--distance", "60", "--axis", "x,y,z"]
    r = cli(*base, "-o", tmp_path / "a.h5", "--split-by", "simulation")
    msg = " ".join(r.output.split())
    assert r.exit_code == 2 and "come from 1 simulation (only)" in msg and "leaves the val and test splits empty" in msg
    assert "gcml simulate-clusters -o" in msg and "--split-by snapshot" in msg
    assert not (tmp_path / "a.h5").exists()
    r = cli(*base, "-o", tmp_path / "b.h5")
    assert r.exit_code == 0, r.output
    assert "warning:" in r.output and "split over snapshots instead" in " ".join(r.output.split())
    ms = read_mapset(tmp_path / "b.h5")
    assert (ms.split == 0).any() and (ms.split == 1).any()
    with h5py.File(tmp_path / "b.h5") as f:
        assert json.loads(f.attrs["config"])["split_by"] == "snapshot"  # what was done, not 'auto'
