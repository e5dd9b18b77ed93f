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


def training_ranges(mapset: str | Path, *, split: str = "train", chunk: int = 65536) -> dict[str, Any]:
    """What the maps of a MapSet span, for the out-of-range warnings of catalogue prediction.

    Returns 1st/99th percentiles and extremes of the GC number in the field (``n_gc``), the radius of the
    outermost GC (``r_out_kpc``), the count-weighted map dispersion (``map_dispersion_kms``) and the total
    and halo masses, and the velocity-error range, of the ``split`` maps. ``gcml train`` stores this in the
    bundles of kinematic-map models as ``extra.training_ranges``. The maps are read ``chunk`` at a time
    (only the sigma and count channels), so a MapSet larger than memory is fine.
    """
    import h5py

    from gcml.io.mapset import SPLITS, _read_meta, read_mapset_header

    p = Path(mapset)
    if split not in SPLITS:
        raise InputError(f"unknown split '{split}'; expected one of {', '.join(SPLITS)}")
    with h5py.File(p, "r") as f:
        hdr = read_mapset_header(f, p)
        sel = np.flatnonzero(f["split"][()] == SPLITS[split])
        if len(sel) == 0:
            raise InputError(f"{mapset}: no maps in split '{split}'")
        out: dict[str, Any] = {"source": str(mapset), "split": split, "n_maps": int(len(sel))}
        for name in ("n_gc", "r_out_kpc"):
            if name in hdr["meta"]:
                _put(out, name, _read_meta(f["meta"][name], slice(None))[sel])
        ch = hdr["channels"]
        if "sigma" in ch and "count" in ch:
            maps = f["maps"]
            cols = sorted((ch.index("sigma"), ch.index("count")))
            names = [ch[i] for i in cols]
            disp = np.empty(len(sel))
            for i in range(0, len(sel), chunk):
                rows = sel[i:i + chunk]
                block = maps[rows[0]:rows[-1] + 1, cols][rows - rows[0]]   # one contiguous read per chunk
                disp[i:i + len(rows)] = map_dispersion(block, float(hdr["map_attrs"].get("min_count", 0.0)), names)
            _put(out, "map_dispersion_kms", disp)
        for k in ("v_error_min_kms", "v_error_max_kms"):
            if k in hdr["map_attrs"]:
                out[k] = float(hdr["map_attrs"][k])
        for t in ("log10_mass_total", "log10_m200"):
            if t in hdr["targets"]:
                _put(out, t, f["targets"][t][()][sel])
    return out


def _put(out: dict[str, Any], name: str, a: np.ndarray) -> None:
    """``out[name]``: extremes, 1st/99th percentiles and median of the finite values of ``a`` (none: left out)."""
    a = np.asarray(a, float)
    a = a[np.isfinite(a)]
    if len(a):
        out[name] = {"min": float(a.min()), "p01": float(np.percentile(a, 1)), "median": float(np.median(a)),
                     "p99": float(np.percentile(a, 99)), "max": float(a.max())}


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
