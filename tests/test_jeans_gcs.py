"""Sampled GC systems reproduce the Jeans dispersion, the anisotropy, the rotation and the density."""

from __future__ import annotations

import numpy as np
import pytest

from gcml.observe.kinematic import MapGeometry, kinematic_maps, project
from gcml.physics import potentials as pot
from gcml.physics.gcs import draw_gc_randoms, gc_density, sample_gc_systems, stack_randoms
from gcml.physics.jeans import jeans_sigma_r

PROF = dict(m200=np.array([1e12, 3e11]), c=np.array([9.0, 11.0]), m_disk=np.array([4e10, 1e10]),
            r_disk=np.array([3.0, 2.0]), m_bulge=np.array([1e10, 2e9]), a_bulge=np.array([0.7, 0.3]))


def _sample(n=40000, beta=(0.0, 0.0), f_rot=(0.0, 0.0), seed=1):
    rng = np.random.default_rng(seed)
    draws, mask = stack_randoms([draw_gc_randoms(rng, n), draw_gc_randoms(rng, n)], n)
    size = 5 * PROF["r_disk"]
    pe = {k: v[:, None] for k, v in PROF.items()}
    s = sample_gc_systems(draws, mask, a=0.3 * size, r_t=3 * size,
                          enclosed_mass=lambda r: pot.galaxy_enclosed_mass(r, **pe),
                          beta=np.array(beta), f_rot=np.array(f_rot))
    return s, 0.3 * size, 3 * size


def _spherical(pos, vel):
    r = np.linalg.norm(pos, axis=-1)
    rhat = pos / r[..., None]
    vr = np.sum(vel * rhat, -1)
    vt2 = np.sum(vel * vel, -1) - vr**2
    return r, vr, vt2


def test_radii_follow_density():
    s, a, rt = _sample()
    r, _, _ = _spherical(s.pos, s.vel)
    assert np.all(r <= rt[:, None] * (1 + 1e-9))
    # fraction inside a: integral of r^2 (a^2+r^2)^-1.75 from 0..a over 0..r_t
    from scipy.integrate import quad

    for b in range(2):
        f = lambda x, b=b: x * x * gc_density(x, a[b], rt[b])  # noqa: E731
        expected = quad(f, 0, a[b])[0] / quad(f, 0, rt[b], points=[a[b]])[0]
        n = r.shape[1]
        frac = np.mean(r[b] < a[b])
        assert abs(frac - expected) < 4 * np.sqrt(expected * (1 - expected) / n)


@pytest.mark.parametrize("beta", [0.0, 0.4, -0.5])
def test_velocities_reproduce_jeans_sigma_and_beta(beta):
    s, a, rt = _sample(beta=(beta, beta))
    r, vr, vt2 = _spherical(s.pos, s.vel)
    pe = {k: v[:, None] for k, v in PROF.items()}
    for b in range(2):
        edges = np.quantile(r[b], np.linspace(0.02, 0.9, 8))
        idx = np.digitize(r[b], edges)
        for k in range(1, len(edges)):
            sel = idx == k
            n = sel.sum()
            rr = np.array([[np.median(r[b, sel])]])
            grid = rt[b] * np.logspace(-4, 0, 400)[None, :]
            sig = jeans_sigma_r(grid, gc_density(grid, a[b], rt[b] * (1 + 1e-9)),
                                pot.galaxy_enclosed_mass(grid, **{kk: v[b:b + 1] for kk, v in pe.items()}), beta)
            expected = np.interp(np.log(rr[0, 0]), np.log(grid[0]), sig[0])
            measured = np.sqrt(np.mean(vr[b, sel] ** 2))
            # sampling error of an rms from n Gaussian values ~ sigma / sqrt(2 n); bins are finite in r
            assert abs(measured / expected - 1) < 4 / np.sqrt(2 * n) + 0.02
        beta_hat = 1 - np.mean(vt2[b]) / (2 * np.mean(vr[b] ** 2))
        assert beta_hat == pytest.approx(beta, abs=0.03)


@pytest.mark.parametrize("f_rot", [0.1, 0.5])
def test_rotation_fraction_at_fixed_kinetic_energy(f_rot):
    s0, _, _ = _sample(f_rot=(0.0, 0.0), seed=5)
    s, _, _ = _sample(f_rot=(f_rot, f_rot), seed=5)
    t0 = 0.5 * np.sum(s0.vel**2, axis=(1, 2))
    t1 = 0.5 * np.sum(s.vel**2, axis=(1, 2))
    np.testing.assert_allclose(t1, t0, rtol=1e-10)           # T_kin kept fixed (same random numbers)
    # measured rotation: least-squares streaming amplitude along the known profile shape
    pos, vel = s.pos, s.vel
    R = np.hypot(pos[..., 0], pos[..., 1])
    vphi = (pos[..., 0] * vel[..., 1] - pos[..., 1] * vel[..., 0]) / R
    w = s.v_rot / np.max(s.v_rot, axis=1, keepdims=True)
    k = np.sum(vphi * w, 1) / np.sum(w * w, 1)
    t_rot = 0.5 * k**2 * np.sum(w * w, 1)
    measured = t_rot / t1
    n = pos.shape[1]
    assert np.all(np.abs(measured - f_rot) < 0.02 + 4 * np.sqrt(f_rot / n))


def test_face_on_and_edge_on_disk_rotation():
    s, _, _ = _sample(n=20000, f_rot=(0.6, 0.6), seed=3)
    g = MapGeometry(n_pix=10, extent_kpc=60.0, smoothing_kpc=6.0)
    theta = np.array([[0.0, np.pi / 2]] * 2)
    phi = np.zeros((2, 2))
    x, y, v = project(s.pos, s.vel, theta, phi)
    maps = kinematic_maps(x.reshape(4, -1), y.reshape(4, -1), v.reshape(4, -1), g).reshape(2, 2, 3, 10, 10)
    for b in range(2):
        face, edge = maps[b, 0], maps[b, 1]
        def rms(m):  # count-weighted rms of V and sigma over the map
            return np.sqrt(np.sum(m[2] * m[0] ** 2) / m[2].sum()), np.sqrt(np.sum(m[2] * m[1] ** 2) / m[2].sum())

        v_face, sig = rms(face)
        v_edge, sig_edge = rms(edge)
        assert v_face < 0.05 * sig                                      # face-on: V ~ 0
        assert v_edge > 0.4 * sig_edge                                  # edge-on: rotation
        # spin axis = sky y: V changes sign across x and is antisymmetric
        left, right = edge[0][:, :5].mean(), edge[0][:, 5:].mean()
        assert np.sign(left) != np.sign(right)
        inner = edge[2] > 0.05 * edge[2].max()
        np.testing.assert_allclose((edge[0][:, ::-1] + edge[0])[inner], 0.0, atol=0.15 * sig_edge)


def test_rotation_moves_line_of_sight_energy_with_inclination():
    """At fixed kinetic energy, rotation (a fraction f of it, about the spin axis z) and isotropic random
    motions give <v_los^2> = <v^2>/3 [1 + 1.5 f (sin^2 i - 2/3)]: random motions put a third of their energy on
    the line of sight, streaming along e_phi puts sin^2(i)/2 of it. Face-on (i = 0) a system with f = 0.5 shows
    half the line-of-sight energy of a non-rotating one, edge-on 1.25 times: the inclination degeneracy that a
    line-of-sight mass estimate cannot remove (docs/npe-results.md)."""
    f = np.array([0.5, 0.3])
    s, _, _ = _sample(n=20000, f_rot=tuple(f), seed=5)
    v2 = np.sum(s.vel**2 * s.mask[..., None], (1, 2)) / s.mask.sum(1)          # <v^2> per galaxy
    incl = np.array([0.0, np.pi / 4, np.pi / 3, np.pi / 2])
    theta = np.tile(incl, (2, 1))
    _, _, v = project(s.pos, s.vel, theta, np.zeros_like(theta))
    m = s.mask[:, None, :]
    vlos2 = np.sum(v**2 * m, -1) / m.sum(-1)                                     # (2 galaxies, 4 inclinations)
    expect = v2[:, None] / 3 * (1 + 1.5 * f[:, None] * (np.sin(incl)[None] ** 2 - 2 / 3))
    np.testing.assert_allclose(vlos2, expect, rtol=0.04)
    assert vlos2[0, 0] / vlos2[0, -1] == pytest.approx(0.5 / 1.25, rel=0.06)
