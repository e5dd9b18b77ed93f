"""Kinematic maps: known answers, batching against a naive per-map loop, geometry round trip, baseline TME."""

from __future__ import annotations

import numpy as np
import pytest

from gcml.errors import InputError
from gcml.observe.kinematic import MapGeometry, kinematic_map_reference, kinematic_maps, project, view_basis
from gcml.physics.tracer_mass import tme_constant, tracer_mass_estimator
from gcml.physics.units import G


def test_batched_maps_equal_naive_loop():
    rng = np.random.default_rng(0)
    g = MapGeometry(n_pix=7, extent_kpc=30, smoothing_kpc=3.0, min_count=0.2, subtract_errors=True)
    x, y = rng.normal(0, 8, (5, 60)), rng.normal(0, 8, (5, 60))
    v = 900 + rng.normal(0, 120, (5, 60))           # a large systemic velocity tests float32 precision
    e = rng.uniform(0, 20, (5, 60))
    maps = kinematic_maps(x, y, v, g, v_err=e)
    assert maps.dtype == np.float32 and maps.shape == (5, 3, 7, 7)
    for b in range(5):
        np.testing.assert_allclose(maps[b], kinematic_map_reference(x[b], y[b], v[b], g, e[b]), rtol=2e-4, atol=2e-3)


def test_single_tracer_and_orientation():
    g = MapGeometry(n_pix=4, extent_kpc=4.0, smoothing_kpc=0.3)
    # one GC at the centre of pixel (row 0 = lowest y, column 3 = largest x)
    m = kinematic_maps(np.array([[1.5]]), np.array([[-1.5]]), np.array([[42.0]]), g)[0]
    assert m[2, 0, 3] == pytest.approx(1.0)
    assert m[0, 0, 3] == pytest.approx(42.0)
    assert m[1, 0, 3] == pytest.approx(0.0, abs=1e-3)
    # far pixels are empty: count below min_count, V = sigma = 0
    assert m[2, 3, 0] < g.min_count and m[0, 3, 0] == 0 and m[1, 3, 0] == 0


def test_two_tracers_mean_and_dispersion():
    g = MapGeometry(n_pix=1, extent_kpc=2.0, smoothing_kpc=1.0)
    m = kinematic_maps(np.array([[0.0, 0.0]]), np.array([[0.0, 0.0]]), np.array([[100.0, 140.0]]), g)[0]
    assert m[0, 0, 0] == pytest.approx(120.0)
    assert m[1, 0, 0] == pytest.approx(20.0, rel=1e-5)
    assert m[2, 0, 0] == pytest.approx(2.0)


def test_dispersion_of_gaussian_velocities_and_error_subtraction():
    rng = np.random.default_rng(1)
    n = 200000
    x, y = rng.uniform(-10, 10, (1, n)), rng.uniform(-10, 10, (1, n))
    v = rng.normal(0, 150, (1, n))
    err = np.full((1, n), 80.0)
    noisy = v + err * rng.standard_normal((1, n))
    g = MapGeometry(n_pix=4, extent_kpc=8, smoothing_kpc=1.0, subtract_errors=True)
    m = kinematic_maps(x, y, noisy, g, v_err=err)[0]
    np.testing.assert_allclose(m[1], 150.0, rtol=0.03)
    g2 = MapGeometry(n_pix=4, extent_kpc=8, smoothing_kpc=1.0, subtract_errors=False)
    m2 = kinematic_maps(x, y, noisy, g2, v_err=err)[0]
    np.testing.assert_allclose(m2[1], np.hypot(150.0, 80.0), rtol=0.03)


def test_mask_and_non_finite_are_ignored():
    rng = np.random.default_rng(2)
    g = MapGeometry()
    x, y, v = rng.normal(0, 5, (2, 50)), rng.normal(0, 5, (2, 50)), rng.normal(0, 50, (2, 50))
    mask = np.ones((2, 50), bool)
    mask[:, 30:] = False
    xx = x.copy()
    xx[:, 40] = np.nan
    a = kinematic_maps(xx, y, v, g, mask=mask)
    b = kinematic_maps(x[:, :30], y[:, :30], v[:, :30], g)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)


def test_geometry_round_trip_and_checks():
    g = MapGeometry(n_pix=12, extent_kpc=30.0, smoothing_kpc=2.5, min_count=0.3, subtract_errors=True)
    assert MapGeometry.from_attrs({**g.to_attrs(), "channels": "x"}) == g
    assert g.pixel_scale == pytest.approx(2.5)
    assert g.extent == (-15.0, 15.0, -15.0, 15.0)
    with pytest.raises(InputError, match="`smoothing_kpc` .kernel sigma. must be a positive number of kpc"):
        MapGeometry(smoothing_kpc=0)
    with pytest.raises(InputError, match="extent_kpc"):
        MapGeometry.from_attrs({"n_pix": 10})


def test_projection_basis_is_orthonormal_and_face_on():
    rng = np.random.default_rng(3)
    p = view_basis(rng.uniform(0, np.pi, 10), rng.uniform(0, 2 * np.pi, 10))
    np.testing.assert_allclose(p @ np.swapaxes(p, -1, -2), np.broadcast_to(np.eye(3), (10, 3, 3)), atol=1e-12)
    pos = np.array([[[1.0, 2.0, 3.0]]])
    vel = np.array([[[4.0, 5.0, 6.0]]])
    x, y, v = project(pos, vel, np.zeros((1, 1)), np.zeros((1, 1)))
    assert v[0, 0, 0] == pytest.approx(6.0)                  # face-on: line of sight = spin axis z
    assert np.hypot(x, y)[0, 0, 0] == pytest.approx(np.hypot(1.0, 2.0))


def test_tme_isothermal_known_answer():
    """Scale-free tracer (gamma = 3) in a flat rotation curve: M(<r_out) = v_c^2 r_out / G (Watkins 2010 eq. 24)."""
    rng = np.random.default_rng(4)
    n, rin, rout, vc, gam = 200000, 0.01, 100.0, 200.0, 3.0
    r = rin * np.exp(rng.random(n) * np.log(rout / rin))     # nu ∝ r^-3 -> dN/dln r = const
    mu = 2 * rng.random(n) - 1
    R = r * np.sqrt(1 - mu**2)
    v = rng.normal(0, vc / np.sqrt(gam), n)                  # isotropic Jeans: sigma^2 = v_c^2 / gamma
    mass, r_out = tracer_mass_estimator(R[None], v[None], gamma=gam, r_out=np.array([rout]))
    assert mass[0] == pytest.approx(vc**2 * rout / G, rel=0.02)
    assert tme_constant(0.0, 3.0, 0.0) == pytest.approx(3.0)
    assert tme_constant(0.0, 3.0, 0.5) == pytest.approx(3 * 2 / 2)
    m2, _ = tracer_mass_estimator(np.array([[1.0, 0, 0]]), np.array([[10.0, 0, 0]]), mask=np.array([[True, False, False]]))
    assert np.isnan(m2[0])
