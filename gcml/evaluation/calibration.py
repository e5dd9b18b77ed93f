"""Calibration of posteriors: simulation-based calibration, TARP, interval coverage and width against N.

A posterior estimator is *calibrated* when its credible intervals contain the truth as often as they
claim, averaged over the data it is applied to. gcml checks this in four ways, for any model that
returns either posterior samples ``(S, N, D)`` (S draws for N test items and D targets, e.g. mass-npe)
or independent Gaussians per target (``mean``, ``std`` of shape ``(N, D)``, e.g. mass-cnn):

* **SBC** (Talts et al. 2018, arXiv:1804.06788): the rank of the truth among the S posterior draws of
  each target is uniform on {0, ..., S} for a calibrated posterior. gcml turns ranks into a randomised
  probability integral transform ``u = (rank + U(0, 1)) / (S + 1)``, exactly uniform on (0, 1) under
  calibration (for Gaussians ``u = Phi((y - mu) / sigma)`` directly), histograms it and tests it against
  U(0, 1) with a Kolmogorov-Smirnov test. An over-confident posterior piles ranks at both ends
  (U-shape), a biased one at one end, an under-confident one in the middle.
* **TARP** (Lemos, Coogan, Hezaveh & Perreault-Levasseur 2023, ICML, arXiv:2302.03026): for each item a
  random reference point ``theta_r`` (uniform on the box spanned by the truths, after scaling every
  target to [0, 1]) defines a ball around it reaching the truth; ``f_i`` is the fraction of posterior
  draws inside that ball (randomised as the SBC ranks, ``(k + U(0, 1)) / (S + 1)``). The expected coverage probability ``ECP(alpha) = mean_i [f_i < alpha]``
  equals ``alpha`` for every alpha if and only if the joint posterior is calibrated (their Theorem 3),
  so it tests the joint distribution, not only the marginals. gcml reports the curve and its largest
  absolute deviation from the diagonal.
* **Coverage** of central credible intervals at 50, 68, 90 and 95 % per target (for Gaussians
  ``|y - mu| <= z sigma`` with ``z = Phi^-1(1/2 + level/2)``, the same intervals as
  :func:`gcml.evaluation.metrics.regression_metrics`; for samples the central quantile interval).
* **Interval width against N**: the median width of the 68 % interval per bin of the number of GCs, to
  set beside the Cramer-Rao floor ``0.434 sqrt(2/N)`` dex of a mass from N line-of-sight velocities.

Everything is deterministic for a given ``seed``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gcml.errors import InputError

LEVELS = (0.5, 0.68, 0.9, 0.95)
KS_P_MIN = 0.01           # SBC ranks are called uniform when the KS p-value exceeds this
TARP_MAX_DEVIATION = 0.03
N_RANK_BINS = 20
TARP_N_ALPHA = 101


def cramer_rao_floor_dex(n: np.ndarray | float) -> np.ndarray:
    """Scatter floor in dex of a mass from ``n`` line-of-sight velocities: ``log10(e) sqrt(2 / n)``.

    The dispersion estimated from n Gaussian velocities has a relative error sqrt(1 / (2 n)), and the mass
    goes as sigma^2, so its relative error is sqrt(2 / n) (with the anisotropy and tracer profile known).
    """
    return math.log10(math.e) * np.sqrt(2.0 / np.asarray(n, float))


def z_central(level: float) -> float:
    """Half-width in standard deviations of the central Gaussian interval of probability ``level``."""
    from scipy.special import erfinv

    return float(math.sqrt(2.0) * erfinv(level))


def _check(truth: np.ndarray, *, samples: np.ndarray | None = None, mean: np.ndarray | None = None,
           std: np.ndarray | None = None) -> np.ndarray:
    t = np.asarray(truth, float)
    if t.ndim == 1:
        t = t[:, None]
    if t.ndim != 2:
        raise InputError(f"calibration: truths must be (N, D), got shape {t.shape}")
    if samples is not None:
        s = np.asarray(samples)
        if s.ndim == 2:
            s = s[..., None]
        if s.ndim != 3 or s.shape[1:] != t.shape:
            raise InputError(f"calibration: posterior samples must be (S, N, D) with (N, D) = {t.shape}, got {s.shape}")
        if s.shape[0] < 2:
            raise InputError("calibration: need at least 2 posterior samples per item")
    if mean is not None:
        if np.shape(mean) != t.shape or np.shape(std) != t.shape:
            raise InputError(f"calibration: Gaussian mean and std must be (N, D) = {t.shape}, "
                             f"got {np.shape(mean)} and {np.shape(std)}")
        if not (np.asarray(std) > 0).all():
            raise InputError("calibration: Gaussian standard deviations must be positive")
    return t


def _as3(samples: np.ndarray) -> np.ndarray:
    s = np.asarray(samples)
    return s[..., None] if s.ndim == 2 else s


# ----------------------------------------------------------------------------------------- SBC


def sbc_ranks(samples: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Rank of each truth among its posterior draws: number of draws below it, (N, D) ints in [0, S]."""
    t = _check(truth, samples=samples)
    return (_as3(samples) < t[None]).sum(0).astype(np.int64)


def pit_from_ranks(ranks: np.ndarray, n_samples: int, *, seed: int | np.random.Generator | None = 0) -> np.ndarray:
    """Randomised probability integral transform ``(rank + U(0,1)) / (S + 1)``: uniform on (0, 1) when calibrated."""
    rng = np.random.default_rng(seed)
    r = np.asarray(ranks, float)
    return (r + rng.random(r.shape)) / (n_samples + 1.0)


def pit_gaussian(mean: np.ndarray, std: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``Phi((y - mu) / sigma)`` per item and target: the SBC rank of a Gaussian posterior with S -> infinity."""
    from scipy.special import ndtr

    t, m, s = (_2d(a) for a in (truth, mean, std))
    _check(t, mean=m, std=s)
    return ndtr((t - m) / s)


def _2d(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, float)
    return a[:, None] if a.ndim == 1 else a


def uniformity_test(u: np.ndarray, *, n_bins: int = N_RANK_BINS) -> dict[str, Any]:
    """KS test of ``u`` (one target's PIT values) against U(0, 1), with the rank histogram.

    Returns ``ks_stat``, ``ks_p``, ``uniform`` (``ks_p > KS_P_MIN``), ``hist`` (counts in ``n_bins``
    equal bins) and the 99 % band of a bin count under uniformity (binomial, ``hist_band99``).
    """
    from scipy.stats import binom, kstest

    u = np.asarray(u, float)
    u = u[np.isfinite(u)]
    if u.size == 0:
        return {"n": 0, "ks_stat": float("nan"), "ks_p": float("nan"), "uniform": False, "hist": [0] * n_bins,
                "hist_band99": [0, 0]}
    ks = kstest(u, "uniform")
    hist = np.histogram(np.clip(u, 0, 1), bins=n_bins, range=(0, 1))[0]
    band = binom.interval(0.99, u.size, 1.0 / n_bins)
    return {"n": int(u.size), "ks_stat": float(ks.statistic), "ks_p": float(ks.pvalue),
            "uniform": bool(ks.pvalue > KS_P_MIN), "hist": hist.astype(int).tolist(),
            "hist_band99": [float(band[0]), float(band[1])]}


def cramer_von_mises(u: np.ndarray) -> float:
    """Cramer-von Mises statistic ``1 / (12 n) + sum_i (u_(i) - (2 i - 1) / (2 n))^2`` of values ``u`` against
    U(0, 1): the integrated squared distance between their empirical distribution and the uniform one (0.0 for
    an empty array). Smaller is more uniform; it is what :func:`fit_spread_to_ranks`
    minimises."""
    u = np.sort(np.asarray(u, float).ravel())
    n = u.size
    if n == 0:
        return 0.0
    return float(1.0 / (12 * n) + np.sum((u - (2.0 * np.arange(1, n + 1) - 1.0) / (2 * n)) ** 2))


def fit_spread_to_ranks(centred: np.ndarray, resid: np.ndarray, lg: np.ndarray, *, n_bins: int = 4,
                        slope: bool = True) -> np.ndarray:
    """``(a, b)`` for one target such that scaling each catalogue's posterior draws about their mean by
    ``exp(a + b lg)`` makes the ranks of the truths uniform (``gcml models calibrate``).

    :meth:`gcml.models.tasks.npe.CatalogueNPETask.calibrate` matches the variance of the residuals (a Gaussian likelihood) on the
    validation views. When the residuals are not Gaussian (heavier tails than the posterior's) that leaves the
    central intervals too wide while the 95 % ones are right, and simulation-based calibration (SBC) fails;
    this fit works on the ranks instead.

    Parameters
    ----------
    centred : (S, n) posterior draws minus their mean over the S draws, per catalogue
    resid : (n,) truth minus the same mean
    lg : (n,) ``ln(N / 100)`` of each catalogue
    n_bins : the catalogues are split into this many bins of ``lg`` with equal numbers; the objective is the sum
        over bins of the Cramer-von Mises statistic of the ranks (:func:`cramer_von_mises`), so that the
        intervals are right at every N and not only on average
    slope : fit ``b`` (else 0 and one bin)

    Returns
    -------
    ndarray (2,): ``(a, b)``, to be added to the target's ``spread`` entry (factors multiply)
    """
    from scipy.optimize import minimize

    d = np.asarray(centred, float)
    r = np.asarray(resid, float)
    lg = np.asarray(lg, float)
    if not slope or n_bins < 2:
        bins = np.zeros(len(r), np.int64)
    else:
        edges = np.unique(np.quantile(lg, np.linspace(0.0, 1.0, n_bins + 1))[1:-1])
        bins = np.searchsorted(edges, lg, side="right")
    groups = [np.flatnonzero(bins == k) for k in np.unique(bins)]

    def objective(th: np.ndarray) -> float:
        u = (d * np.exp(th[0] + th[1] * lg)[None] < r[None]).mean(0)
        return sum(cramer_von_mises(u[g]) for g in groups)

    if slope:
        res = minimize(objective, np.zeros(2), method="Nelder-Mead",
                       options={"xatol": 1e-3, "fatol": 1e-5, "initial_simplex": [[0, 0], [0.1, 0], [0, 0.1]]})
        return np.asarray(res.x, float)
    res = minimize(lambda a: objective(np.array([a[0], 0.0])), np.zeros(1), method="Nelder-Mead",
                   options={"xatol": 1e-3, "fatol": 1e-5, "initial_simplex": [[0.0], [0.1]]})
    return np.array([float(res.x[0]), 0.0])


# ---------------------------------------------------------------------------------------- TARP


def tarp(samples: np.ndarray, truth: np.ndarray, *, seed: int | np.random.Generator | None = 0,
         bounds: tuple[np.ndarray, np.ndarray] | None = None, n_alpha: int = TARP_N_ALPHA) -> dict[str, Any]:
    """TARP expected coverage probability (Lemos et al. 2023, Algorithm 2) of joint posterior samples.

    Parameters
    ----------
    samples : (S, N, D) posterior draws for N items
    truth : (N, D) true parameters
    seed : random reference points
    bounds : (low, high) of each target used to scale to [0, 1] (default: range of the truths)
    n_alpha : points of the credibility grid on [0, 1]

    Returns
    -------
    dict with ``alpha`` and ``ecp`` (lists), ``max_abs_deviation``, ``mean_deviation`` (ECP - alpha
    averaged over the grid: < 0 over-confident, > 0 under-confident for the usual shapes) and ``f`` summary.
    """
    t = _check(truth, samples=samples)
    s = _as3(samples).astype(float)
    lo, hi = (t.min(0), t.max(0)) if bounds is None else (np.asarray(bounds[0], float), np.asarray(bounds[1], float))
    span = np.where(hi > lo, hi - lo, 1.0)
    tn = (t - lo) / span
    sn = (s - lo) / span
    rng = np.random.default_rng(seed)
    ref = rng.random(t.shape)
    d_true = np.sqrt(((tn - ref) ** 2).sum(-1))                  # (N,)
    d_samp = np.sqrt(((sn - ref[None]) ** 2).sum(-1))            # (S, N)
    # fraction of draws closer to the reference than the truth, randomised like the SBC ranks so that it is
    # exactly uniform for a calibrated posterior whatever S (f = k / S would put ties at 0 and 1)
    k = (d_samp < d_true[None]).sum(0)                           # (N,)
    f = (k + rng.random(k.shape)) / (s.shape[0] + 1.0)
    return tarp_from_fractions(f, n_alpha=n_alpha)


def tarp_from_fractions(f: np.ndarray, *, n_alpha: int = TARP_N_ALPHA) -> dict[str, Any]:
    """ECP curve from the per-item fractions ``f_i`` of posterior mass closer to the reference than the truth.

    ``max_abs_deviation`` is (on the alpha grid) the Kolmogorov-Smirnov distance of the ``f_i`` from U(0, 1),
    so a calibrated posterior reaches about 0.87 / sqrt(n) on average by chance (1.36 / sqrt(n) at 95 %:
    0.030 for n = 2,000 items): ``ks_p`` is the p-value of that test, ``noise_95`` the 95 % level."""
    from scipy.stats import kstest

    f = np.asarray(f, float)
    alpha = np.linspace(0.0, 1.0, n_alpha)
    ecp = (f[None, :] < alpha[:, None]).mean(1) if f.size else np.full(n_alpha, np.nan)
    dev = ecp - alpha
    return {"n": int(f.size), "alpha": alpha.tolist(), "ecp": ecp.tolist(),
            "max_abs_deviation": float(np.max(np.abs(dev))), "mean_deviation": float(np.mean(dev)),
            "ks_p": float(kstest(f, "uniform").pvalue) if f.size else float("nan"),
            "noise_95": float(1.358 / np.sqrt(f.size)) if f.size else float("nan"),
            "calibrated": bool(np.max(np.abs(dev)) <= TARP_MAX_DEVIATION)}


def gaussian_samples(mean: np.ndarray, std: np.ndarray, n_samples: int, *,
                     seed: int | np.random.Generator | None = 0) -> np.ndarray:
    """(S, N, D) draws from independent Gaussians per item and target (for TARP of Gaussian models)."""
    rng = np.random.default_rng(seed)
    m, s = np.asarray(mean, float), np.asarray(std, float)
    return m[None] + s[None] * rng.standard_normal((n_samples, *m.shape))


# ------------------------------------------------------------------------------------ coverage


def inside_samples(samples: np.ndarray, truth: np.ndarray, levels: tuple[float, ...] = LEVELS) -> dict[str, np.ndarray]:
    """Whether each truth lies inside the central quantile interval of its draws, per level: {"0.68": (N, D) bool}."""
    t = _check(truth, samples=samples)
    s = _as3(samples)
    out = {}
    for q in levels:
        lo, hi = np.quantile(s, [0.5 - q / 2, 0.5 + q / 2], axis=0)
        out[f"{q:g}"] = (t >= lo) & (t <= hi)
    return out


def coverage_samples(samples: np.ndarray, truth: np.ndarray, levels: tuple[float, ...] = LEVELS) -> dict[str, np.ndarray]:
    """Fraction of truths inside the central quantile interval of the draws, per level: {"0.68": (D,)}."""
    return {k: v.mean(0) for k, v in inside_samples(samples, truth, levels).items()}


def inside_gaussian(mean: np.ndarray, std: np.ndarray, truth: np.ndarray,
                    levels: tuple[float, ...] = LEVELS) -> dict[str, np.ndarray]:
    """Whether ``|y - mu| <= z(level) sigma`` for each item and target, per level: {"0.68": (N, D) bool}."""
    t, m, s = (_2d(a) for a in (truth, mean, std))
    _check(t, mean=m, std=s)
    z = np.abs(t - m) / s
    return {f"{q:g}": z <= z_central(q) for q in levels}


def coverage_gaussian(mean: np.ndarray, std: np.ndarray, truth: np.ndarray,
                      levels: tuple[float, ...] = LEVELS) -> dict[str, np.ndarray]:
    """Fraction of truths with ``|y - mu| <= z(level) sigma``, per level: {"0.68": (D,)}."""
    return {k: v.mean(0) for k, v in inside_gaussian(mean, std, truth, levels).items()}


DEFAULT_N_EDGES = (5, 15, 30, 60, 100, 150, 250, 500, 1000, 1e9)


def scatter_against_n(residual: np.ndarray, n: np.ndarray, *, edges: tuple[float, ...] = DEFAULT_N_EDGES) -> dict[str, Any]:
    """Scatter (standard deviation) and bias of residuals (dex) in bins of the tracer number N, beside the
    Cramer-Rao floor ``0.434 sqrt(2/N)`` at each bin's median N and the ratio of the two."""
    r = np.asarray(residual, float)
    n = np.asarray(n, float)
    if r.shape != n.shape:
        raise InputError(f"scatter_against_n: residuals {r.shape} and N {n.shape} differ in shape")
    rows = []
    for a, b in zip(edges[:-1], edges[1:], strict=False):
        sel = (n >= a) & (n < b) & np.isfinite(r)
        if sel.sum() < 2:
            continue
        nm = float(np.median(n[sel]))
        sc = float(np.std(r[sel], ddof=1))
        floor = float(cramer_rao_floor_dex(nm))
        rows.append({"n_lo": float(a), "n_hi": float(b), "count": int(sel.sum()), "n_median": nm,
                     "scatter_dex": sc, "bias_dex": float(np.mean(r[sel])), "cramer_rao_dex": floor,
                     "ratio_to_floor": sc / floor})
    return {"bins": rows}


def width_against_n(width: np.ndarray, n: np.ndarray, *, edges: list[float] | None = None,
                    inside: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """Median (and 16/84 percentiles) of interval widths in bins of the tracer number N.

    ``edges`` default to 5, 15, 30, 60, 100, 150, 250, 500, 1000, 10^9 (bins [a, b)); empty bins are dropped.
    The Cramer-Rao floor of each bin (at its median N) is given for comparison (as a 68 % full width,
    2 x 0.994 x floor). ``inside`` ({level: (N,) bool}, whether each truth lies in its interval) adds the
    coverage in each bin (``coverage``: {level: fraction}): calibrated intervals cover at every N, not only
    on average.
    """
    w = np.asarray(width, float)
    n = np.asarray(n, float)
    if w.shape != n.shape:
        raise InputError(f"width_against_n: widths {w.shape} and N {n.shape} differ in shape")
    e = np.asarray(edges if edges is not None else DEFAULT_N_EDGES, float)
    rows = []
    for a, b in zip(e[:-1], e[1:], strict=False):
        sel = (n >= a) & (n < b) & np.isfinite(w)
        if not sel.any():
            continue
        nm = float(np.median(n[sel]))
        q16, q50, q84 = np.quantile(w[sel], [0.16, 0.5, 0.84])
        row = {"n_lo": float(a), "n_hi": float(b), "count": int(sel.sum()), "n_median": nm,
               "width68_median": float(q50), "width68_q16": float(q16), "width68_q84": float(q84),
               "cramer_rao_width68": float(2 * z_central(0.68) * cramer_rao_floor_dex(nm))}
        if inside is not None:
            row["coverage"] = {k: float(np.asarray(v)[sel].mean()) for k, v in inside.items()}
        rows.append(row)
    return {"bins": rows}


# --------------------------------------------------------------------------------- one summary


def calibration_summary(truth: np.ndarray, names: list[str], *, samples: np.ndarray | None = None,
                        mean: np.ndarray | None = None, std: np.ndarray | None = None,
                        n_tracers: np.ndarray | None = None, seed: int = 0, n_tarp_samples: int = 500,
                        max_tarp_items: int = 20000, levels: tuple[float, ...] = LEVELS) -> dict[str, Any]:
    """SBC, TARP, coverage and width against N for one model's predictions on N items.

    Give either ``samples`` (S, N, D) or Gaussian ``mean`` and ``std`` (N, D). Gaussian models get exact
    PIT values for SBC and ``n_tarp_samples`` draws per item for TARP (on at most ``max_tarp_items``
    items chosen at random, to bound the memory). ``n_tracers`` (N,) adds the 68 % width against N.

    Returns
    -------
    dict: ``per_target`` {name: {sbc: uniformity_test, coverage: {level: fraction}, width68_median, width_vs_n}},
    ``tarp`` (joint over all targets), ``all_sbc_uniform``, ``n``, ``kind`` ("samples" or "gaussian").
    """
    if (samples is None) == (mean is None):
        raise InputError("calibration: give either posterior samples or a Gaussian mean and std")
    t = _check(truth, samples=samples, mean=mean, std=std)
    if len(names) != t.shape[1]:
        raise InputError(f"calibration: {len(names)} target names for {t.shape[1]} targets")
    ok = np.isfinite(t).all(1)
    if samples is not None:
        s = _as3(samples)
        ok &= np.isfinite(s).all((0, 2))
        s, t_ok = s[:, ok], t[ok]
        n_s = s.shape[0]
        u = pit_from_ranks(sbc_ranks(s, t_ok), n_s, seed=seed)
        ins = inside_samples(s, t_ok, levels)
        q16, q84 = np.quantile(s, [0.16, 0.84], axis=0)
        width = q84 - q16
        tarp_s = s
        kind = "samples"
    else:
        m = np.asarray(mean, float)
        sd = np.asarray(std, float)
        ok &= np.isfinite(m).all(1) & np.isfinite(sd).all(1)
        m, sd, t_ok = m[ok], sd[ok], t[ok]
        u = pit_gaussian(m, sd, t_ok)
        ins = inside_gaussian(m, sd, t_ok, levels)
        width = 2 * z_central(0.68) * sd
        rng = np.random.default_rng(seed)
        idx = np.sort(rng.choice(len(t_ok), size=max_tarp_items, replace=False)) if len(t_ok) > max_tarp_items else slice(None)
        tarp_s = gaussian_samples(m[idx], sd[idx], n_tarp_samples, seed=rng)
        t_tarp = t_ok[idx]
        kind = "gaussian"
    if kind == "samples":
        t_tarp = t_ok
    n_ok = int(ok.sum())
    if n_ok == 0:
        raise InputError("calibration: no item has finite truths and predictions")
    per: dict[str, Any] = {}
    for j, name in enumerate(names):
        d: dict[str, Any] = {"sbc": uniformity_test(u[:, j]),
                             "coverage": {k: float(v[:, j].mean()) for k, v in ins.items()},
                             "width68_median": float(np.median(width[:, j]))}
        if n_tracers is not None:
            d["width_vs_n"] = width_against_n(width[:, j], np.asarray(n_tracers, float)[ok],
                                              inside={k: v[:, j] for k, v in ins.items() if k in ("0.68", "0.95")})
        per[name] = d
    tr = tarp(tarp_s, t_tarp, seed=seed + 1)
    return {"kind": kind, "n": n_ok, "n_skipped": int((~ok).sum()), "per_target": per, "tarp": tr,
            "all_sbc_uniform": bool(all(d["sbc"]["uniform"] for d in per.values())),
            "criteria": {"ks_p_min": KS_P_MIN, "tarp_max_abs_deviation": TARP_MAX_DEVIATION}}


def quadrature_for_coverage(r: np.ndarray, s: np.ndarray, level: float = 0.68) -> float:
    """The smallest ``t >= 0`` with ``mean(|r| <= z sqrt(s^2 + t^2)) >= level`` (``z`` the Gaussian quantile
    of ``level``), by bisection; 0 if the intervals already reach that coverage.

    ``r`` are residuals (prediction - truth) and ``s`` the predicted standard deviations: ``t`` is the
    model-systematic error that, added in quadrature, makes the intervals cover ``level`` of the truths (used
    by ``scripts/measure_family_systematic.py`` on families a network never saw)."""
    from scipy.stats import norm

    if not 0 < level < 1:
        raise InputError(f"quadrature_for_coverage: level must lie in (0, 1), got {level}")
    r, s = np.abs(np.asarray(r, float)), np.asarray(s, float)
    z = float(norm.ppf(0.5 + level / 2))

    def cov(t: float) -> float:
        return float(np.mean(r <= z * np.sqrt(s**2 + t**2)))

    if cov(0.0) >= level:
        return 0.0
    lo, hi = 0.0, float(np.max(r)) / z + 1e-6
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if cov(mid) >= level else (mid, hi)
    return hi
