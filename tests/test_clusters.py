"""Approximate cluster evolution and ``gcml simulate-clusters``."""

from __future__ import annotations

import numpy as np
import pytest

from gcml.errors import ConfigError
from gcml.io.snapshots import Snapshot, half_mass_radius, read_snapshot, read_snapshots
from gcml.physics.cluster import (
    G_PC_KMS,
    ClusterModel,
    ClusterParams,
    dissolution_time_myr,
    relaxation_time_myr,
    solve_multimass_king,
)


@pytest.fixture(scope="module")
def model() -> ClusterModel:
    return ClusterModel(ClusterParams(n_stars=20_000, r_half_pc=4.0, dissolution_time_gyr=25.0), seed=11)


def test_king_concentration_single_mass():
    # King (1966): W0 = 3, 6, 9 give c = log10(r_t / r_0) = 0.67, 1.26, 2.12.
    for w0, c in ((3.0, 0.67), (6.0, 1.26), (9.0, 2.12)):
        k = solve_multimass_king(w0, np.array([1.0]), np.array([1.0]))
        assert np.log10(k.r_t) == pytest.approx(c, abs=0.03)


def test_multimass_king_heavy_component_more_concentrated():
    k = solve_multimass_king(6.0, np.array([0.5, 0.5]), np.array([1.2, 0.7]))
    half = [np.interp(0.5, k.mass_cum[j] / k.mass_cum[j, -1], k.r) for j in range(2)]
    assert half[1] < 0.8 * half[0]
    frac = k.mass_cum[:, -1] / k.mass_cum[:, -1].sum()
    np.testing.assert_allclose(frac, [0.5, 0.5], atol=3e-3)


def test_timescales_known_values():
    # Spitzer t_rh for N = 50,000, r_h = 1.6 pc, <m> = 0.61 Msun: ~0.17 Gyr.
    assert relaxation_time_myr(50_000, 1.6, 0.61) == pytest.approx(170, rel=0.05)
    # Baumgardt & Makino (2003) at 15 kpc for N = 50,000: 1.91 (N/ln 0.02N)^0.75 x 15 Myr.
    assert dissolution_time_myr(50_000, 15.0, 220.0) == pytest.approx(1.91 * (50_000 / np.log(1000)) ** 0.75 * 15)


def _r_half(st, sel):
    r = np.linalg.norm(st.pos[sel], axis=1)
    return float(np.median(r))


def test_mass_segregation_grows(model):
    ratios = []
    for age in (0.0, 0.5, 12.0):
        st = model.at_age(age)
        heavy = st.mass > 0.7
        light = (st.mass < 0.3) & (st.kstar < 10)
        ratios.append(_r_half(st, heavy) / _r_half(st, light))
    assert ratios[0] == pytest.approx(1.0, abs=0.08)  # no primordial segregation
    assert ratios[1] < 0.95
    assert ratios[2] < ratios[1] - 0.05


def test_virial_equilibrium_and_half_mass_radius(model):
    st = model.at_age(8.0)
    snap = Snapshot(pos=st.pos, vel=st.vel, mass=st.mass)
    assert half_mass_radius(snap) == pytest.approx(st.info["r_half_pc"], rel=0.05)
    rng = np.random.default_rng(0)
    sub = rng.choice(st.mass.size, 3000, replace=False)
    x, m, v = st.pos[sub], st.mass[sub], st.vel[sub]
    n, n_s = st.mass.size, sub.size
    ke = 0.5 * (m * (v**2).sum(1)).sum() * n / n_s
    d = np.linalg.norm(x[:, None] - x[None], axis=2)
    iu = np.triu_indices(n_s, 1)
    w = -(G_PC_KMS * (m[:, None] * m[None])[iu] / d[iu]).sum() * n * (n - 1) / (n_s * (n_s - 1))
    assert 2 * ke / -w == pytest.approx(1.0, abs=0.15)


def test_mass_loss_and_preferential_escape(model):
    s0, s12 = model.at_age(0.0), model.at_age(12.0)
    assert s12.mass.sum() < 0.6 * s0.mass.sum()
    assert s12.info["n_bound"] < s0.info["n_bound"]
    # Low-mass main-sequence stars are lost preferentially: the mass function flattens.
    low0 = np.mean(s0.mass_initial[s0.mass_initial < 0.8] < 0.3)
    low12 = np.mean(s12.mass_initial[s12.mass_initial < 0.8] < 0.3)
    assert low12 < low0 - 0.02
    # Escaped stars stay escaped; the same star ids persist (a consistent time series).
    assert np.isin(s12.index, model.at_age(6.0).index).all()
    # Most neutron stars are kicked out.
    n_ns = np.sum(s12.kstar == 13)
    n_ns_all = np.sum(model.tracks.lookup(model.m0, 12.0).kstar == 13)
    assert n_ns < 0.25 * n_ns_all


def test_cluster_mass_to_light(model):
    st = model.at_age(12.0)
    ml = st.mass.sum() / st.lum_v.sum()
    assert 1.3 < ml < 3.0


def test_same_seed_same_stars():
    a = ClusterModel(ClusterParams(n_stars=2000), seed=3).at_age(1.0)
    b = ClusterModel(ClusterParams(n_stars=2000), seed=3).at_age(1.0)
    np.testing.assert_array_equal(a.pos, b.pos)
    c = ClusterModel(ClusterParams(n_stars=2000), seed=4).at_age(1.0)
    assert not np.array_equal(a.mass_initial[:10], c.mass_initial[:10])


def test_cli_simulate_clusters(tmp_path, cli):
    out = tmp_path / "snaps"
    r = cli("simulate-clusters", "-o", out, "--preset", "mw15-r1.6", "--n-stars", "3000", "--ages", "1:3:1",
            "--seed", "2", "--quiet")
    assert r.exit_code == 0, r.output
    snaps = read_snapshots(out)
    assert [s.age for s in snaps] == [1.0, 2.0, 3.0]
    s = snaps[-1]
    assert s.metallicity == 0.001 and s.meta["preset"] == "mw15-r1.6" and s.lum_v is not None
    assert s.simulation == "mw15-r1.6-s2" and s.attrs["seed"] == 2
    # Refuses to overwrite, and workers do not change the result.
    r = cli("simulate-clusters", "-o", out, "--preset", "mw15-r1.6", "--n-stars", "3000", "--ages", "1:3:1",
            "--seed", "2")
    assert r.exit_code == 2 and "--overwrite" in r.output
    out2 = tmp_path / "snaps2"
    r = cli("simulate-clusters", "-o", out2, "--preset", "mw15-r1.6", "--n-stars", "3000", "--ages", "1:3:1",
            "--seed", "2", "--workers", "2", "--quiet")
    assert r.exit_code == 0, r.output
    s2 = read_snapshot(sorted(out2.glob("*.h5"))[-1])
    np.testing.assert_array_equal(s2.pos, s.pos)
    np.testing.assert_array_equal(s2.lum_v, s.lum_v)


def test_cli_bad_preset_and_ages(tmp_path, cli):
    r = cli("simulate-clusters", "-o", tmp_path / "x", "--preset", "mw99")
    assert r.exit_code == 2 and "unknown preset 'mw99'" in r.output
    r = cli("simulate-clusters", "-o", tmp_path / "x", "--ages", "1:30:1")
    assert r.exit_code == 2 and "0-20 Gyr" in r.output
    from gcml.simulate.clusters import SimulateClustersConfig

    with pytest.raises(ConfigError, match="unknown preset"):
        SimulateClustersConfig(preset="nope").cluster_params()


# LIMEPY (Gieles & Zocchi 2015; astro-limepy 1.3.0, scipy 1.16) for W0 = 6, g = 1, two components
# mj = (0.3, 1.0) Msun, Mj = (0.6, 0.4), delta = 0.5, global mean mass: rt/r0 = 380.12 and
# component half-mass radii rhj/r0 = 92.24, 49.55.
LIMEPY_MM = {"rt": 380.12, "rhj": (92.24, 49.55)}


def _two_component_model():
    mj, big_mj = np.array([0.3, 1.0]), np.array([0.6, 0.4])
    mmean = big_mj.sum() / (big_mj / mj).sum()
    k = solve_multimass_king(6.0, big_mj, (mj / mmean) ** -0.5, n_iter=200, tol=1e-4)
    rh = [np.interp(0.5, k.mass_cum[j] / k.mass_cum[j, -1], k.r) for j in range(2)]
    return k, rh


def test_multimass_against_limepy_values():
    k, rh = _two_component_model()
    assert k.r_t == pytest.approx(LIMEPY_MM["rt"], rel=0.005)
    np.testing.assert_allclose(rh, LIMEPY_MM["rhj"], rtol=0.005)


def test_optional_limepy_cross_check():
    limepy = pytest.importorskip("limepy")
    for w0 in (3.0, 6.0, 9.0):
        lm = limepy.limepy(w0, 1)
        k = solve_multimass_king(w0, np.array([1.0]), np.array([1.0]))
        assert k.r_t == pytest.approx(lm.rt / lm.r0, rel=0.002)
    lm = limepy.limepy(6.0, 1, mj=np.array([0.3, 1.0]), Mj=np.array([0.6, 0.4]), delta=0.5)
    k, rh = _two_component_model()
    assert k.r_t == pytest.approx(lm.rt / lm.r0, rel=0.005)
    np.testing.assert_allclose(rh, np.asarray(lm.rhj) / lm.r0, rtol=0.005)


def test_cli_config_file(tmp_path, cli):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[simulate-clusters]\npreset = "mw15-r4"\nn-stars = 1500\nages = "0.5,1.5"\nseed = 5\n')
    out = tmp_path / "s"
    r = cli("simulate-clusters", "-o", out, "--config", cfg, "--seed", "6", "--quiet")
    assert r.exit_code == 0, r.output
    snaps = read_snapshots(out)
    assert [s.age for s in snaps] == [0.5, 1.5]
    assert snaps[0].meta["preset"] == "mw15-r4" and snaps[0].meta["n_stars_initial"] == 1500
    assert snaps[0].attrs["seed"] == 6  # the command line wins over the file
