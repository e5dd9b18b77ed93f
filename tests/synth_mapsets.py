"""Small synthetic kinematic MapSets for training/evaluation tests (no simulator needed).

Maps whose dispersion scales with a known mass: sigma = 100 km/s x 10^((m - 12) / 3) x profile, so a
network can learn m; V is a rotation pattern, count a smooth profile. Written with gcml's own writer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gcml.io.mapset import MapSet, assign_splits, write_mapset


def make_mapset(path: Path, n_gal: int = 60, views: int = 8, seed: int = 0, size: int = 10,
                kind: str = "kinematics", nan_in: str | None = None) -> Path:
    rng = np.random.default_rng(seed)
    n = n_gal * views
    gid = np.repeat(np.arange(n_gal), views)
    m = np.repeat(rng.uniform(11.0, 13.0, n_gal), views)
    yy, xx = np.mgrid[0:size, 0:size] - (size - 1) / 2
    r = np.hypot(xx, yy)
    prof = 1.0 / (1.0 + (r / 4.0) ** 2)
    sig = 100.0 * 10 ** ((m - 12.0) / 3.0)
    sigma = sig[:, None, None] * (0.6 + 0.4 * prof)[None] * rng.normal(1, 0.05, (n, size, size))
    ang = rng.uniform(0, 2 * np.pi, n)
    v = 0.5 * sig[:, None, None] * np.tanh((np.cos(ang)[:, None, None] * xx + np.sin(ang)[:, None, None] * yy) / 2)
    count = np.broadcast_to(20 * prof, (n, size, size)) * rng.uniform(0.8, 1.2, (n, 1, 1))
    maps = np.stack([v, sigma, count], axis=1).astype(np.float32)
    split = assign_splits(gid, (0.6, 0.2, 0.2), seed)
    targets = {"log10_mass_total": m.astype(np.float32),
               "log10_mass_within_rout": (m - 0.4 + rng.normal(0, 0.02, n)).astype(np.float32)}
    meta = {"group_id": gid, "family": np.where(gid % 2, "disk", "merger"),
            "tme_log10_mass": (targets["log10_mass_within_rout"] + rng.normal(0.05, 0.2, n)).astype(np.float32)}
    if nan_in == "maps":
        maps[3, 1, 2, 2] = np.nan
    elif nan_in == "targets":
        targets["log10_mass_total"][5] = np.nan
    ms = MapSet(maps=maps, channels=["v", "sigma", "count"], units=["km/s", "km/s", ""], pixel_scale=2.0,
                pixel_unit="kpc", kind=kind, targets=targets,
                target_units={k: "dex(Msun)" for k in targets}, meta=meta, split=split,
                map_attrs={"smoothing_kpc": 2.0, "n_pix": size})
    return write_mapset(path, ms, overwrite=True, seed=seed)
