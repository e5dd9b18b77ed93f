"""Metrics for scalar predictions (galaxy masses), as defined in docs/evaluation.md.

Kaur et al. (2021, MNRAS 508, 868), Section 3, measure their CNN with

* MAE and RMSE of the mass label rescaled to 0-10 over the range of the data set,
  ``m' = 10 (m - m_min) / (m_max - m_min)`` (we rescale the log10 mass, the label gcml trains on);
* the relative error of each prediction ``E_i = (M_p - M_c) / M_c`` (predicted and correct label);
* an "accuracy" in 20 mass bins, which the paper does not define exactly. gcml's definition:
  the true labels' range ``[m_min, m_max]`` is cut into 20 equal-width bins; in each non-empty bin
  ``b`` the mean ``<|E_i|>_b`` is taken; ``accuracy = 100 % x (1 - mean_b <|E_i|>_b)``, every bin
  weighted equally, with ``E_i`` computed on the log10 mass label (as the network's output).
  We also report ``bin_accuracy``, the percentage of maps whose prediction falls in the same bin as
  the truth, and ``bin_accuracy_pm1`` (same or adjacent bin).

gcml adds the bias (mean of ``m_p - m_c``) and scatter (its standard deviation) in dex, MAE/RMSE in
dex, and the coverage of the central 68 % and 95 % Gaussian intervals ``m_p +- z sigma_p``
(``z = 0.994, 1.960``): a calibrated model covers 68 % and 95 % of the truths.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gcml.errors import InputError

N_BINS = 20
Z68 = 0.9944578832097535  # sqrt(2) erfinv(0.68)
Z95 = 1.959963984540054


def normalise_0_10(m: np.ndarray, m_min: float, m_max: float) -> np.ndarray:
    """Kaur et al.'s label scaling: 0 at the smallest and 10 at the largest mass of the data set."""
    span = m_max - m_min
    return 10.0 * (np.asarray(m, float) - m_min) / (span if span > 0 else 1.0)


def relative_errors(true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """``E_i = (M_p - M_c) / M_c``."""
    true = np.asarray(true, float)
    return (np.asarray(pred, float) - true) / np.where(true != 0, true, np.nan)


def binned_stats(true: np.ndarray, values: np.ndarray, lo: float, hi: float, n_bins: int = N_BINS) -> dict[str, list]:
    """Per bin of ``true`` (``n_bins`` equal bins on [lo, hi]): centre, count, mean and std of ``values``."""
    edges = np.linspace(lo, hi, n_bins + 1)
    k = np.clip(np.digitize(true, edges[1:-1]), 0, n_bins - 1)
    cnt = np.bincount(k, minlength=n_bins).astype(float)
    s1 = np.bincount(k, weights=values, minlength=n_bins)
    s2 = np.bincount(k, weights=values**2, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / cnt
        std = np.sqrt(np.maximum(s2 / cnt - mean**2, 0))
    return {"edges": edges.tolist(), "centre": (0.5 * (edges[1:] + edges[:-1])).tolist(),
            "count": cnt.astype(int).tolist(), "mean": _nan_to_none(mean), "std": _nan_to_none(std)}


def _nan_to_none(a: np.ndarray) -> list:
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(a, float)]


def kaur_accuracy(true: np.ndarray, pred: np.ndarray, lo: float, hi: float, n_bins: int = N_BINS) -> float:
    """gcml's reading of Kaur et al.'s "accuracy" (percent); see the module docstring."""
    e = np.abs(relative_errors(true, pred))
    b = binned_stats(true, e, lo, hi, n_bins)
    per_bin = [m for m, c in zip(b["mean"], b["count"], strict=False) if c > 0 and m is not None]
    return float(100.0 * (1.0 - np.mean(per_bin))) if per_bin else float("nan")


def regression_metrics(true: np.ndarray, pred: np.ndarray, std: np.ndarray | None = None, *,
                       data_min: float | None = None, data_max: float | None = None,
                       n_bins: int = N_BINS) -> dict[str, Any]:
    """All scalar metrics of one prediction set (labels in dex for masses).

    Parameters
    ----------
    true, pred : (N,) true and predicted labels
    std : (N,) predicted standard deviations (None: no coverage)
    data_min, data_max : label range used for the 0-10 normalisation and the bins (default: of ``true``)
    """
    true = np.asarray(true, float)
    pred = np.asarray(pred, float)
    if true.shape != pred.shape or true.ndim != 1:
        raise InputError(f"metrics: true and predicted values must be equal-length 1D arrays, got {true.shape} and {pred.shape}")
    n = int(len(true))
    if n == 0:
        return {"n": 0}
    ok = np.isfinite(true) & np.isfinite(pred)
    true, pred = true[ok], pred[ok]
    lo = float(true.min()) if data_min is None else float(data_min)
    hi = float(true.max()) if data_max is None else float(data_max)
    r = pred - true
    tn, pn = normalise_0_10(true, lo, hi), normalise_0_10(pred, lo, hi)
    edges = np.linspace(lo, hi, n_bins + 1)
    kt = np.clip(np.digitize(true, edges[1:-1]), 0, n_bins - 1)
    kp = np.clip(np.digitize(pred, edges[1:-1]), 0, n_bins - 1)
    out: dict[str, Any] = {
        "n": n, "n_finite": int(ok.sum()),
        "bias_dex": float(r.mean()), "scatter_dex": float(r.std(ddof=1)) if len(r) > 1 else 0.0,
        "mae_dex": float(np.abs(r).mean()), "rmse_dex": float(np.sqrt((r**2).mean())),
        "median_abs_dex": float(np.median(np.abs(r))),
        "mae_norm": float(np.abs(pn - tn).mean()), "rmse_norm": float(np.sqrt(((pn - tn) ** 2).mean())),
        "accuracy": kaur_accuracy(true, pred, lo, hi, n_bins),
        "bin_accuracy": float(100.0 * np.mean(kt == kp)),
        "bin_accuracy_pm1": float(100.0 * np.mean(np.abs(kt - kp) <= 1)),
        "mean_abs_E": float(np.nanmean(np.abs(relative_errors(true, pred)))),
        "data_min": lo, "data_max": hi,
        "binned_pred": binned_stats(true, pred, lo, hi, n_bins),
    }
    if std is not None:
        s = np.asarray(std, float)[ok]
        z = np.abs(r) / np.where(s > 0, s, np.nan)
        out.update({
            "coverage_68": float(np.mean(z <= Z68)), "coverage_95": float(np.mean(z <= Z95)),
            "mean_sigma_dex": float(np.mean(s)),
            "nll": float(np.mean(0.5 * np.log(2 * math.pi * s**2) + 0.5 * (r / s) ** 2)),
        })
    return out


SUMMARY_KEYS = ("n", "accuracy", "mae_norm", "rmse_norm", "mae_dex", "rmse_dex", "bias_dex", "scatter_dex",
                "coverage_68", "coverage_95")
