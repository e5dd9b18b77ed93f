"""Restricted N-body mergers: orbit conservation laws, equilibrium, and orbital angular momentum -> rotation."""

from __future__ import annotations

import numpy as np
import pytest

from gcml.observe.kinematic import MapGeometry, kinematic_maps, project
from gcml.physics import potentials as pot
from gcml.physics.gcs import draw_gc_randoms, sample_gc_systems, stack_randoms
from gcml.physics.merger import integrate_mergers, integrate_orbits


def _prof(m200, b):
    ms = pot.stellar_mass_moster2013(m200)
    return {"m200": np.full(b, m200), "c": np.full(b, float(pot.concentration_dutton_maccio(m200))),
            "m_disk": np.full(b, 0.8 * ms), "r_disk": np.full(b, 3.0), "m_bulge": np.full(b, 0.2 * ms),
            "a_bulge": np.full(b, 0.5)}


def _gcs(p, n, seed, f_rot=0.0):
    b = len(p["m200"])
    rng = np.random.default_rng(seed)
    draws, mask = stack_randoms([draw_gc_randoms(rng, n) for _ in range(b)], n)
    pe = {k: v[:, None] for k, v in p.items()}
    size = 5 * p["r_disk"]
    s = sample_gc_systems(draws, mask, a=0.3 * size, r_t=3 * size,
                          enclosed_mass=lambda r: pot.galaxy_enclosed_mass(r, **pe),
                          beta=np.zeros(b), f_rot=np.full(b, f_rot))
    return s.pos, s.vel


def test_orbit_without_friction_conserves_angular_momentum_and_energy():
    p1, p2 = _prof(1e12, 2), _prof(4e11, 2)
    m1 = p1["m200"] + p1["m_disk"] + p1["m_bulge"]
    m2 = p2["m200"] + p2["m_disk"] + p2["m_bulge"]
    d0 = np.array([[80.0, 0, 0], [60.0, 0, 0]])
    v0 = np.array([[0, 150.0, 0], [0, 60.0, 20.0]])
    orbit, t_merge, merged = integrate_orbits(d0, v0, p1, p2, m1, m2, t_max=np.array([3.0, 3.0]), n_steps=6000,
                                              ln_lambda=0.0)
    assert not merged.any()
    dt = 3.0 / 6000
    vel = np.gradient(orbit, dt, axis=1)
    L = np.cross(orbit, vel)
    np.testing.assert_allclose(L[:, 50:-50], np.broadcast_to(L[:, 50:51], L[:, 50:-50].shape), rtol=2e-3, atol=1.0)
    # energy with the potential of the enclosed-mass force: Phi(r) = -int_r^inf G M(<s)/s^2 ds
    from gcml.physics.units import G

    s = np.logspace(-3, 7, 20000)
    for b in range(2):
        menc = pot.galaxy_enclosed_mass(s, **{k: v[b] for k, v in p1.items()}) + \
            pot.galaxy_enclosed_mass(s, **{k: v[b] for k, v in p2.items()})
        f = G * menc / s**2
        tail = np.concatenate([np.cumsum((0.5 * (f[1:] + f[:-1]) * np.diff(s))[::-1])[::-1], [0.0]])
        r = np.linalg.norm(orbit[b, 50:-50], axis=-1)
        e = 0.5 * np.sum(vel[b, 50:-50] ** 2, -1) - np.interp(r, s, tail)
        assert np.ptp(e) < 2e-3 * abs(e.mean())


def test_friction_makes_the_progenitors_merge():
    p1, p2 = _prof(1e12, 3), _prof(5e11, 3)
    pos1, vel1 = _gcs(p1, 20, 1)
    pos2, vel2 = _gcs(p2, 10, 2)
    res = integrate_mergers(pos1, vel1, pos2, vel2, p1=p1, p2=p2, separation_kpc=np.full(3, 90.0),
                            f_v=np.array([0.05, 0.5, 1.0]), n_steps=100)
    assert res.merged.all()
    assert np.all(res.t_end > res.t_merge)
    # higher angular momentum orbits take longer to sink
    assert res.t_merge[0] < res.t_merge[2]


def test_isolated_gc_system_stays_in_equilibrium():
    """A GC system in a progenitor with a negligible partner keeps its radial profile and dispersion."""
    p1 = _prof(5e11, 1)
    p2 = {k: v * (1e-9 if k.startswith("m") else 1.0) for k, v in _prof(5e11, 1).items()}
    pos1, vel1 = _gcs(p1, 4000, 3)
    pos2, vel2 = _gcs(p2, 1, 4)
    res = integrate_mergers(pos1, vel1, pos2, vel2, p1=p1, p2=p2, separation_kpc=np.array([5000.0]),
                            f_v=np.array([0.0]), t_max_units=0.0, t_settle_units=0.005, n_steps=800)
    # the partner starts 5000 kpc away, so the centre of mass is at progenitor 1 to 1e-9
    before = np.linalg.norm(pos1[0], axis=-1)
    after = np.linalg.norm(res.pos[0, :4000], axis=-1)
    q = [0.25, 0.5, 0.75]
    np.testing.assert_allclose(np.quantile(after, q), np.quantile(before, q), rtol=0.05)
    assert np.std(res.vel[0, :4000]) == pytest.approx(np.std(vel1[0]), rel=0.05)
    assert res.t_end[0] > 0


def _v_over_sigma(res, n_views=8):
    """Count-weighted sqrt(<V^2>/<sigma^2>) of edge-on maps (views in the orbital plane, Cappellari 2007 style)."""
    b = res.pos.shape[0]
    theta = np.full((b, n_views), np.pi / 2)
    phi = np.tile(np.linspace(0, np.pi, n_views, endpoint=False), (b, 1))
    x, y, v = project(res.pos, res.vel, theta, phi)
    g = MapGeometry(n_pix=10, extent_kpc=60.0, smoothing_kpc=6.0)
    m = kinematic_maps(x.reshape(b * n_views, -1), y.reshape(b * n_views, -1), v.reshape(b * n_views, -1), g)
    w = m[:, 2]
    return np.sqrt(np.sum(w * m[:, 0] ** 2, axis=(1, 2)) / np.sum(w * m[:, 1] ** 2, axis=(1, 2))).reshape(b, n_views).mean(1)


def test_orbital_angular_momentum_becomes_rotation():
    """f_v = 1 (tangential, high angular momentum) -> rotating remnant; f_v = 0.05 (radial) -> hardly rotating."""
    b = 4
    p1, p2 = _prof(8e11, b), _prof(6e11, b)
    pos1, vel1 = _gcs(p1, 600, 11)
    pos2, vel2 = _gcs(p2, 450, 12)
    f_v = np.array([1.0, 1.0, 0.05, 0.05])
    res = integrate_mergers(pos1, vel1, pos2, vel2, p1=p1, p2=p2, separation_kpc=np.full(b, 6 * 15.0), f_v=f_v,
                            n_steps=500)
    vs = _v_over_sigma(res)
    assert res.merged.all()
    fast, slow = vs[:2].mean(), vs[2:].mean()
    assert fast > 0.3
    assert slow < 0.15
    assert fast > 3 * slow
