"""Throughput of ``gcml simulate-clusters``: an age series of 50,000-star snapshots.

Usage::

    python benchmarks/bench_simulate_clusters.py --n-ages 1000 --workers 1 --out /tmp/bench_snaps

Reports the wall time of the whole series (IMF draw, stellar-evolution lookups, King-model solves,
sampling, HDF5 writing), snapshots per second, the bytes written, and a per-stage breakdown measured on
a few ages in the same process (the baseline: the cost of writing the same snapshot alone).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-ages", type=int, default=1000)
    ap.add_argument("--n-stars", type=int, default=50_000)
    ap.add_argument("--preset", default="mw15-r1.6")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None, help="Output folder (default: a temporary one, removed).")
    ap.add_argument("--keep", action="store_true", help="Keep the snapshots.")
    args = ap.parse_args()

    from gcml.io.snapshots import Snapshot, write_snapshot
    from gcml.physics.cluster import ClusterModel
    from gcml.simulate.clusters import SimulateClustersConfig, simulate_clusters

    step = (14.0 - 0.5) / args.n_ages
    ages = f"0.5:{0.5 + step * (args.n_ages - 1) + 1e-9}:{step}"
    cfg = SimulateClustersConfig(preset=args.preset, n_stars=args.n_stars, ages=ages, seed=1)
    out = args.out or Path(tempfile.mkdtemp(prefix="gcml-bench-"))

    # Per-stage breakdown on a few ages.
    params = cfg.cluster_params()
    t = time.perf_counter()
    model = ClusterModel(params, seed=1)
    t_init = time.perf_counter() - t
    stage = {"lookup": 0.0, "model+sampling": 0.0, "write": 0.0}
    sample_ages = [2.0, 6.0, 12.0]
    for a in sample_ages:
        t = time.perf_counter()
        model.tracks.lookup(model.m0, a)
        stage["lookup"] += time.perf_counter() - t
        t = time.perf_counter()
        st = model.at_age(a)
        stage["model+sampling"] += time.perf_counter() - t
        snap = Snapshot(pos=st.pos, vel=st.vel, mass=st.mass, mass_initial=st.mass_initial, lum_v=st.lum_v,
                        lum_bol=st.lum_bol, teff=st.teff, radius=st.radius, kstar=st.kstar, id=st.index + 1,
                        age=a, metallicity=params.metallicity)
        t = time.perf_counter()
        write_snapshot(out / f"stage_{a}.h5", snap, overwrite=True)
        stage["write"] += time.perf_counter() - t
        (out / f"stage_{a}.h5").unlink()

    t = time.perf_counter()
    c = time.process_time()
    res = simulate_clusters(cfg, out / "series", overwrite=True, workers=args.workers, command="benchmark")
    wall = time.perf_counter() - t
    cpu = time.process_time() - c  # this process only (workers=1 runs everything in it)
    size = sum(p.stat().st_size for p in res.files)
    print(f"{len(res.files)} snapshots of {args.n_stars:,} stars ({args.preset}), workers={args.workers}: "
          f"{wall:.1f} s = {wall / 60:.2f} min, {len(res.files) / wall:.2f} snapshots/s, "
          f"{size / 1e9:.2f} GB written")
    if args.workers == 1:
        print(f"CPU time {cpu:.1f} s = {cpu / len(res.files) * 1000:.0f} ms per snapshot "
              f"({len(res.files) / cpu:.2f} snapshots per CPU second; wall/CPU = {wall / cpu:.1f})")
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in __import__('os').getloadavg())}")
    print(f"model set-up (IMF draw, escape order, table at Z): {t_init:.2f} s")
    for k, v in stage.items():
        print(f"  {k}: {v / len(sample_ages) * 1000:.0f} ms per snapshot (includes lookup)"
              if k == "model+sampling" else f"  {k}: {v / len(sample_ages) * 1000:.0f} ms per snapshot")
    r_h = [i["r_half_pc"] for i in res.info]
    print(f"r_h {min(r_h):.2f}-{max(r_h):.2f} pc; bound stars at {res.ages[-1]:g} Gyr: {res.n_stars_final:,}; "
          f"mass {res.mass_final:,.0f} Msun; mean {np.mean([i['n_bound'] for i in res.info]):,.0f} stars")
    if not args.keep and args.out is None:
        shutil.rmtree(out)


if __name__ == "__main__":
    main()
