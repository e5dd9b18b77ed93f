"""Calibration diagnostics (SBC, TARP, coverage, width against N) against known answers."""

from __future__ import annotations

import numpy as np
import pytest

from gcml.errors import InputError
from gcml.evaluation.calibration import (
    calibration_summary,
    coverage_gaussian,
    coverage_samples,
    cramer_rao_floor_dex,
    pit_from_ranks,
    pit_gaussian,
    sbc_ranks,
    scatter_against_n,
    tarp,
    uniformity_test,
    width_against_n,
    z_central,
)
from gcml.evaluation.metrics import regression_metrics


def linear_gaussian(n: int, d: int, noise: float, seed: int):
    """theta ~ N(0, 1), x = theta + N(0, noise^2): posterior N(x / (1 + noise^2), noise^2 / (1 + noise^2))."""
    rng = np.random.default_rng(seed)
    theta = rng.standard_normal((n, d))
    x = theta + noise * rng.standard_normal((n, d))
    mean = x / (1 + noise**2)
    std = np.full((n, d), noise / np.sqrt(1 + noise**2))
    return theta, mean, std, rng


def test_cramer_rao_floor_matches_issue_numbers():
    assert cramer_rao_floor_dex(200) == pytest.approx(0.0434, abs=1e-4)
    assert cramer_rao_floor_dex(100) == pytest.approx(0.0614, abs=1e-4)
    assert cramer_rao_floor_dex(30) == pytest.approx(0.112, abs=1e-3)
    assert z_central(0.68) == pytest.approx(0.99446, abs=1e-4) and z_central(0.95) == pytest.approx(1.95996, abs=1e-4)


def test_calibrated_samples_pass_every_check():
    theta, mean, std, rng = linear_gaussian(4000, 3, 0.5, 1)
    samples = mean[None] + std[None] * rng.standard_normal((400, *mean.shape))
    s = calibration_summary(theta, ["a", "b", "c"], samples=samples, n_tracers=rng.integers(5, 1000, 4000), seed=3)
    assert s["kind"] == "samples" and s["n"] == 4000
    for d in s["per_target"].values():
        assert d["sbc"]["uniform"] and d["sbc"]["ks_p"] > 0.01
        for lev, c in d["coverage"].items():
            assert c == pytest.approx(float(lev), abs=0.025)
        assert d["width68_median"] == pytest.approx(2 * 0.4472, rel=0.05)  # q84 - q16 of N(0, 0.447)
        assert sum(b["count"] for b in d["width_vs_n"]["bins"]) == 4000
    assert s["all_sbc_uniform"]
    assert s["tarp"]["max_abs_deviation"] <= 0.03 and s["tarp"]["calibrated"]
    ecp = np.array(s["tarp"]["ecp"])
    assert ecp[0] == 0 and ecp[-1] == pytest.approx(1.0, abs=1e-3) and np.all(np.diff(ecp) >= 0)


@pytest.mark.parametrize("factor", [0.5, 2.0])
def test_over_and_under_confident_posteriors_fail(factor):
    theta, mean, std, rng = linear_gaussian(4000, 2, 0.5, 2)
    samples = mean[None] + factor * std[None] * rng.standard_normal((400, *mean.shape))
    s = calibration_summary(theta, ["a", "b"], samples=samples, seed=3)
    assert not s["all_sbc_uniform"]
    for d in s["per_target"].values():
        assert d["sbc"]["ks_p"] < 1e-6
        h = np.array(d["sbc"]["hist"])
        edges, middle = h[[0, -1]].mean(), h[8:12].mean()
        # over-confident: U-shaped rank histogram; under-confident: a hump in the middle
        assert (edges > 2 * middle) if factor < 1 else (middle > 2 * edges)
        c68 = d["coverage"]["0.68"]
        assert (c68 < 0.45) if factor < 1 else (c68 > 0.9)
    assert s["tarp"]["max_abs_deviation"] > 0.1 and not s["tarp"]["calibrated"]


def test_biased_posterior_fails_sbc_and_tarp():
    theta, mean, std, rng = linear_gaussian(4000, 2, 0.5, 4)
    s = calibration_summary(theta, ["a", "b"], mean=mean + std, std=std, seed=0)
    assert all(d["sbc"]["ks_p"] < 1e-6 for d in s["per_target"].values())
    assert s["tarp"]["max_abs_deviation"] > 0.1


def test_gaussian_path_agrees_with_samples_and_metrics():
    theta, mean, std, rng = linear_gaussian(5000, 2, 0.3, 5)
    g = calibration_summary(theta, ["a", "b"], mean=mean, std=std, seed=1)
    assert g["kind"] == "gaussian" and g["all_sbc_uniform"] and g["tarp"]["max_abs_deviation"] <= 0.03
    # exact PIT of a Gaussian
    assert pit_gaussian(np.zeros(3), np.ones(3), np.array([0.0, 1.0, -1.0]))[:, 0] == pytest.approx([0.5, 0.8413, 0.1587], abs=1e-4)
    # the 68 / 95 % Gaussian coverage is the one regression_metrics reports
    cov = coverage_gaussian(mean, std, theta, (0.68, 0.95))
    m = regression_metrics(theta[:, 0], mean[:, 0], std[:, 0])
    assert cov["0.68"][0] == pytest.approx(m["coverage_68"]) and cov["0.95"][0] == pytest.approx(m["coverage_95"])
    # quantile intervals of many draws give the same coverage as the analytic intervals
    samples = mean[None] + std[None] * rng.standard_normal((2000, *mean.shape))
    cs = coverage_samples(samples, theta, (0.68,))
    assert cs["0.68"] == pytest.approx(cov["0.68"], abs=0.01)


def test_tarp_sees_a_wrong_correlation_the_marginals_miss():
    """Joint test: posterior marginals right but correlation flipped -> SBC per target passes, TARP fails."""
    rng = np.random.default_rng(6)
    n, rho = 4000, 0.95
    cov = np.array([[1, rho], [rho, 1]]) * 0.05
    chol = np.linalg.cholesky(cov)
    mean = rng.uniform(-1, 1, (n, 2))
    theta = mean + rng.standard_normal((n, 2)) @ chol.T
    wrong = np.linalg.cholesky(np.array([[1, -rho], [-rho, 1]]) * 0.05)
    good = mean[None] + rng.standard_normal((400, n, 2)) @ chol.T
    bad = mean[None] + rng.standard_normal((400, n, 2)) @ wrong.T
    ranks = sbc_ranks(bad, theta)
    assert all(uniformity_test(pit_from_ranks(ranks[:, j], 400, seed=j))["uniform"] for j in range(2))
    assert tarp(good, theta, seed=0)["max_abs_deviation"] <= 0.03
    assert tarp(bad, theta, seed=0)["max_abs_deviation"] > 0.05


def test_width_against_n_bins_and_bad_input():
    n = np.array([10, 12, 100, 120, 140, 800])
    w = np.array([0.5, 0.7, 0.2, 0.3, 0.4, 0.1])
    r = width_against_n(w, n)["bins"]
    assert [b["count"] for b in r] == [2, 3, 1]
    assert r[0]["width68_median"] == pytest.approx(0.6) and r[1]["n_median"] == 120
    assert r[1]["cramer_rao_width68"] == pytest.approx(2 * 0.99446 * 0.4343 * np.sqrt(2 / 120), rel=1e-3)
    with pytest.raises(InputError, match="samples must be"):
        sbc_ranks(np.zeros((10, 3, 2)), np.zeros((4, 2)))
    with pytest.raises(InputError, match="either"):
        calibration_summary(np.zeros((4, 1)), ["a"])
    with pytest.raises(InputError, match="positive"):
        calibration_summary(np.zeros((4, 1)), ["a"], mean=np.zeros((4, 1)), std=np.zeros((4, 1)))


def test_scatter_against_n_reaches_the_floor_for_an_ideal_estimator():
    """Residuals drawn at exactly the Cramer-Rao scatter give a ratio of 1 in every bin."""
    rng = np.random.default_rng(8)
    n = rng.choice([30, 100, 200], 30000)
    r = rng.standard_normal(n.size) * cramer_rao_floor_dex(n)
    bins = scatter_against_n(r, n)["bins"]
    assert [b["n_median"] for b in bins] == [30, 100, 200]
    for b in bins:
        assert b["ratio_to_floor"] == pytest.approx(1.0, abs=0.03) and abs(b["bias_dex"]) < 0.005


def test_quadrature_for_coverage_known_answer():
    """Residuals N(0, 0.2^2) with claimed sigma 0.1: the missing quadrature term is sqrt(0.2^2 - 0.1^2)."""
    from gcml.evaluation.calibration import quadrature_for_coverage

    rng = np.random.default_rng(3)
    r = rng.normal(0, 0.2, 200_000)
    s = np.full(r.size, 0.1)
    assert quadrature_for_coverage(r, s) == pytest.approx(np.sqrt(0.2**2 - 0.1**2), rel=0.01)
    assert quadrature_for_coverage(r, s, level=0.95) == pytest.approx(np.sqrt(0.2**2 - 0.1**2), rel=0.02)
    # intervals that already cover need nothing; the result makes the coverage what was asked
    assert quadrature_for_coverage(r, np.full(r.size, 0.3)) == 0.0
    t = quadrature_for_coverage(r + 0.1, s)
    y = rng.normal(11.0, 0.5, r.size)
    cov = regression_metrics(y, y + r + 0.1, np.sqrt(s**2 + t**2))["coverage_68"]
    assert cov == pytest.approx(0.68, abs=0.002)
    with pytest.raises(InputError, match="level"):
        quadrature_for_coverage(r, s, level=1.5)


def test_tarp_noise_level_of_a_calibrated_posterior():
    """TARP's largest deviation is a Kolmogorov-Smirnov distance: for a calibrated posterior (fractions f
    uniform) it scatters about 0.87/sqrt(n) over repeats, below 1.36/sqrt(n) 95 % of the time, and its p-value
    is uniform; a 5 % too narrow posterior of n = 20,000 items is detected (p < 1e-3)."""
    from gcml.evaluation.calibration import tarp_from_fractions

    rng = np.random.default_rng(3)
    n = 2000
    runs = [tarp_from_fractions(rng.random(n)) for _ in range(200)]
    dev = np.array([r["max_abs_deviation"] for r in runs])
    assert runs[0]["noise_95"] == pytest.approx(1.358 / np.sqrt(n))
    assert np.mean(dev) == pytest.approx(0.87 / np.sqrt(n), rel=0.1)
    assert 0.90 <= np.mean(dev <= runs[0]["noise_95"]) <= 0.99
    assert 0.04 <= np.mean([r["ks_p"] < 0.1 for r in runs]) <= 0.17
    # the credibility level at which a 5 % too narrow Gaussian posterior first contains the truth: too often near 1
    z = np.abs(rng.standard_normal(20_000))
    from scipy.stats import norm

    f = 2 * norm.cdf(z / 0.95) - 1
    assert tarp_from_fractions(f)["ks_p"] < 1e-3


def test_coverage_in_bins_of_n_finds_what_the_average_hides():
    """Intervals 1.3x too narrow for few tracers and 1.3x too wide for many can still cover about 68 % on
    average; the coverage per bin of N shows both, and calibrated intervals cover 0.68 / 0.95 in every bin
    (Gaussian and sampled posteriors alike)."""
    from scipy.stats import norm

    rng = np.random.default_rng(11)
    n = np.where(rng.random(20000) < 0.5, 20, 400)
    truth = rng.standard_normal((20000, 1))
    off = np.where(n == 20, 1 / 1.3, 1.3)[:, None]            # predicted sigma / true sigma
    mean, std = np.zeros((20000, 1)), off.copy()
    s = calibration_summary(truth, ["m"], mean=mean, std=std, n_tracers=n)
    bins = s["per_target"]["m"]["width_vs_n"]["bins"]
    assert [b["count"] for b in bins] == [int((n == 20).sum()), int((n == 400).sum())]
    expect = [2 * norm.cdf(0.99446 * f) - 1 for f in (1 / 1.3, 1.3)]  # 0.56 and 0.81
    for b, e in zip(bins, expect, strict=True):
        assert b["coverage"]["0.68"] == pytest.approx(e, abs=0.015)
    assert s["per_target"]["m"]["coverage"]["0.68"] == pytest.approx(np.mean(expect), abs=0.01)
    good = calibration_summary(truth, ["m"], samples=rng.standard_normal((400, 20000, 1)), n_tracers=n)
    for b in good["per_target"]["m"]["width_vs_n"]["bins"]:
        assert b["coverage"]["0.68"] == pytest.approx(0.68, abs=0.015)
        assert b["coverage"]["0.95"] == pytest.approx(0.95, abs=0.01)
