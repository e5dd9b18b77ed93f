"""Benchmark of ``gcml simulate-maps``: maps per second for the disk and merger families.

Targets (DESIGN.md): >= 20,000 maps/s for disks and >= 2,000 maps/s for mergers (10x10 maps, 3 channels,
200 GCs) on the 2-core development machine. The baseline, run in the same process, is the naive way to make
the same maps: one map at a time, with a loop over the pixels (same GCs, same physics), timed on a subset.

Usage::

    python benchmarks/bench_simulate_maps.py [--galaxies 256] [--views 100] [--workers 2] [--family disk,merger]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from gcml.observe.kinematic import MapGeometry, project, random_views
from gcml.simulate import galaxies as G
from gcml.simulate.galaxies import SimulateMapsConfig, simulate_maps


def naive_maps(gals: list[dict], cfg: SimulateMapsConfig, n_maps: int) -> float:
    """Seconds per map for the naive per-map, per-pixel loop on the same galaxies."""
    g: MapGeometry = cfg.geometry
    pos, vel, mask, _ = G._phase_space(gals, cfg)
    views = np.stack([x["views"] for x in gals])
    theta, phi = random_views(views[..., 0], views[..., 1])
    c = g.pixel_centres()
    t0 = time.perf_counter()
    done = 0
    for b in range(len(gals)):
        for k in range(cfg.views):
            x, y, v = project(pos[b:b + 1], vel[b:b + 1], theta[b:b + 1, k:k + 1], phi[b:b + 1, k:k + 1])
            x, y, v = x[0, 0][mask[b]], y[0, 0][mask[b]], v[0, 0][mask[b]]
            out = np.zeros((3, g.n_pix, g.n_pix))
            for i, yc in enumerate(c):
                for j, xc in enumerate(c):
                    w = np.exp(-((x - xc) ** 2 + (y - yc) ** 2) / (2 * g.smoothing_kpc**2))
                    s = w.sum()
                    out[2, i, j] = s
                    if s >= g.min_count:
                        m = np.sum(w * v) / s
                        out[0, i, j] = m
                        out[1, i, j] = np.sqrt(max(np.sum(w * (v - m) ** 2) / s, 0.0))
            done += 1
            if done >= n_maps:
                return (time.perf_counter() - t0) / done
    return (time.perf_counter() - t0) / done


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the worker processes)."""
    t = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        u = resource.getrusage(who)
        t += u.ru_utime + u.ru_stime
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--galaxies", type=int, default=256)
    ap.add_argument("--views", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--family", default="disk,merger")
    ap.add_argument("--baseline-maps", type=int, default=300)
    a = ap.parse_args()
    print(f"cpus: {os.cpu_count()}, load average: {os.getloadavg()}")
    for fam in a.family.split(","):
        cfg = SimulateMapsConfig(families=(fam,), n_galaxies=a.galaxies, views=a.views, seed=1, n_gc=200)
        with tempfile.TemporaryDirectory() as d:
            c0 = _cpu_seconds()
            res = simulate_maps(cfg, Path(d) / "m.h5", workers=a.workers)
            cpu = _cpu_seconds() - c0
        gals = [G._draw_galaxy(i, cfg) for i in range(2)]
        c1 = _cpu_seconds()
        t_naive = naive_maps(gals, cfg, a.baseline_maps)
        cpu_naive = (_cpu_seconds() - c1) / min(a.baseline_maps, 2 * a.views)
        print(f"{fam:7s} gcml simulate-maps: {res.n_maps} maps in {res.seconds:.2f} s wall = {res.maps_per_second:,.0f} "
              f"maps/s (workers={a.workers}, whole run: physics, maps, labels, HDF5), {cpu:.2f} CPU s = "
              f"{res.n_maps / cpu:,.0f} maps per CPU second")
        print(f"{fam:7s} naive per-map, per-pixel loop (maps only, same GCs, 1 process): {1 / t_naive:,.0f} maps/s wall, "
              f"{1 / cpu_naive:,.0f} maps per CPU second; speed-up per CPU second {cpu_naive * res.n_maps / cpu:,.0f}x")


if __name__ == "__main__":
    main()
