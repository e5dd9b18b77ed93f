"""Benchmark of ``gcml simulate-maps``: maps per second for the disk and merger families.

Targets (DESIGN.md): >= 20,000 maps/s for disks and >= 2,000 maps/s for mergers (10x10 maps, 3 channels,
200 GCs) on the 2-core development machine. The baseline, run in the same process, is the naive way to make
the same maps: one map at a time, with a loop over the pixels (same GCs, same physics), timed on a subset.

Usage::

    python benchmarks/bench_simulate_maps.py [--galaxies 256] [--views 100] [--workers 2] [--family disk,merger] [--repeat 3]

The whole run is timed ``--repeat`` times and the best wall-clock and best CPU figures are reported (on a shared
machine the best run is the one least disturbed by other jobs); the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from _timing import cpu_seconds as _cpu_seconds

from gcml.observe.kinematic import MapGeometry, kinematic_map_reference, project, random_views
from gcml.simulate import galaxies as G
from gcml.simulate.galaxies import SimulateMapsConfig, simulate_maps


def naive_maps(gals: list[dict], cfg: SimulateMapsConfig, n_maps: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) per map of the naive per-map, per-pixel loop on the same galaxies.

    The galaxies' phase space (Jeans sampling, merger integration) is made before the clocks start.
    """
    g: MapGeometry = cfg.geometry
    pos, vel, mask, _ = G._phase_space(gals, cfg)
    views = np.stack([x["views"] for x in gals])
    theta, phi = random_views(views[..., 0], views[..., 1])
    t0, c0 = time.perf_counter(), _cpu_seconds()
    done = 0
    for b in range(len(gals)):
        for k in range(cfg.views):
            x, y, v = project(pos[b:b + 1], vel[b:b + 1], theta[b:b + 1, k:k + 1], phi[b:b + 1, k:k + 1])
            x, y, v = x[0, 0][mask[b]], y[0, 0][mask[b]], v[0, 0][mask[b]]
            kinematic_map_reference(x, y, v, g)
            done += 1
            if done >= n_maps:
                return (time.perf_counter() - t0) / done, (_cpu_seconds() - c0) / done
    return (time.perf_counter() - t0) / done, (_cpu_seconds() - c0) / done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--galaxies", type=int, default=256)
    ap.add_argument("--views", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--family", default="disk,merger")
    ap.add_argument("--baseline-maps", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=3, help="time the run this many times, report the best")
    a = ap.parse_args()
    print(f"cpus: {os.cpu_count()}, load average before: {os.getloadavg()}")
    for fam in a.family.split(","):
        cfg = SimulateMapsConfig(families=(fam,), n_galaxies=a.galaxies, views=a.views, seed=1, n_gc=200)
        walls, cpus = [], []
        for _ in range(a.repeat):
            with tempfile.TemporaryDirectory() as d:
                c0 = _cpu_seconds()
                res = simulate_maps(cfg, Path(d) / "m.h5", workers=a.workers)
                cpus.append(_cpu_seconds() - c0)
                walls.append(res.seconds)
        wall, cpu = min(walls), min(cpus)
        gals = [G._draw_galaxy(i, cfg) for i in range(2)]
        t_naive, cpu_naive = naive_maps(gals, cfg, a.baseline_maps)
        print(f"{fam:7s} gcml simulate-maps: {res.n_maps} maps in {wall:.2f} s wall = {res.n_maps / wall:,.0f} "
              f"maps/s (workers={a.workers}, whole run: physics, maps, labels, HDF5; best of {a.repeat}: "
              f"{', '.join(f'{w:.2f}' for w in walls)} s), {cpu:.2f} CPU s = {res.n_maps / cpu:,.0f} maps per CPU "
              f"second ({1e6 * cpu / res.n_maps:.1f} CPU us per map)")
        print(f"{fam:7s} naive per-map, per-pixel loop (maps only, same GCs, 1 process): {1 / t_naive:,.0f} maps/s wall, "
              f"{1 / cpu_naive:,.0f} maps per CPU second; speed-up per CPU second {cpu_naive * res.n_maps / cpu:,.0f}x")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
