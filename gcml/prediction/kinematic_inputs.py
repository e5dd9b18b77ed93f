"""Kinematic maps as the mass networks read them: empty-pixel fillings (Kaur et al. 2021, Table 4), the
maps' mean dispersion, and the training maps' ranges that catalogue prediction checks against."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gcml.errors import ConfigError, InputError

#: Kaur et al. (2021) Table 4 fillings of empty pixels.
FILLS = ("0", "50", "100", "interp")

def map_dispersion(maps: np.ndarray, min_count: float = 0.0, channels: list[str] | None = None) -> np.ndarray:
    """Count-weighted mean of the sigma map of kinematic maps (B, C, H, W) [km/s]."""
    ch = channels or ["v", "sigma", "count"]
    s = maps[:, ch.index("sigma")].astype(np.float64)
    c = maps[:, ch.index("count")].astype(np.float64)
    c = np.where(c >= max(min_count, 1e-30), c, 0.0)
    return (s * c).sum((1, 2)) / np.maximum(c.sum((1, 2)), 1e-30)


def training_ranges(mapset: str | Path, *, split: str = "train") -> dict[str, Any]:
    """What the maps of a MapSet span, for the out-of-range warnings of :func:`predict_catalogue`.

    Returns 1st/99th percentiles and extremes of the GC number in the field (``n_gc``), the radius of the
    outermost GC (``r_out_kpc``) and the count-weighted map dispersion (``map_dispersion_kms``), and the
    velocity-error range, of the ``split`` maps. ``scripts/train_default_mass_model.py`` stores this in the
    bundle as ``extra.training_ranges``.
    """
    from gcml.io.mapset import read_mapset

    ms = read_mapset(mapset, split=split, with_truth=False)
    if ms.n == 0:
        raise InputError(f"{mapset}: no maps in split '{split}'")
    out: dict[str, Any] = {"source": str(mapset), "split": split, "n_maps": ms.n}

    def rng(a: np.ndarray) -> dict[str, float]:
        a = np.asarray(a, float)
        a = a[np.isfinite(a)]
        return {"min": float(a.min()), "p01": float(np.percentile(a, 1)), "median": float(np.median(a)),
                "p99": float(np.percentile(a, 99)), "max": float(a.max())}

    if "n_gc" in ms.meta:
        out["n_gc"] = rng(ms.meta["n_gc"])
    if "r_out_kpc" in ms.meta:
        out["r_out_kpc"] = rng(ms.meta["r_out_kpc"])
    if "sigma" in ms.channels and "count" in ms.channels:
        out["map_dispersion_kms"] = rng(map_dispersion(ms.maps, float(ms.map_attrs.get("min_count", 0.0)), ms.channels))
    for k in ("v_error_min_kms", "v_error_max_kms"):
        if k in ms.map_attrs:
            out[k] = float(ms.map_attrs[k])
    for t in ("log10_mass_total", "log10_m200"):
        if t in ms.targets:
            out[t] = rng(ms.targets[t])
    return out


def fill_empty(maps: np.ndarray, count: np.ndarray, min_count: float, fill: str) -> np.ndarray:
    """Kaur et al. (2021) Table 4 fillings of empty pixels of (B, 3, H, W) v, sigma, count maps.

    ``fill`` "0", "50", "100": sigma of empty pixels (count < min_count) set to that many km/s, V to 0;
    "interp": V and sigma of empty pixels from the non-empty ones by inverse-distance weighting (power 2).
    """
    if fill not in FILLS:
        raise ConfigError(f"option `fill`: expected one of {', '.join(FILLS)}, got '{fill}'")
    out = maps.copy()
    empty = count < max(min_count, 1e-30)                        # (B, H, W)
    if fill != "interp":
        out[:, 1] = np.where(empty, np.float32(float(fill)), out[:, 1])
        out[:, 0] = np.where(empty, 0.0, out[:, 0])
        return out
    h, w = count.shape[-2:]
    yy, xx = np.mgrid[0:h, 0:w]
    pts = np.stack([yy.ravel(), xx.ravel()], 1).astype(float)
    d2 = ((pts[:, None, :] - pts[None, :, :]) ** 2).sum(-1)     # (P, P)
    wgt = np.where(d2 > 0, 1.0 / np.where(d2 > 0, d2, 1.0), 0.0)
    full = (~empty).reshape(len(maps), -1).astype(float)          # (B, P)
    for c in (0, 1):
        val = out[:, c].reshape(len(maps), -1).astype(float)
        num = (val * full) @ wgt.T
        den = full @ wgt.T
        interp = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
        out[:, c] = np.where(empty, interp.reshape(out[:, c].shape), out[:, c])
    return out
