"""mass-npe speed: posterior sampling per catalogue, and training catalogues/s beside mass-cnn's maps/s.

Inference: one catalogue of ``--n-gc`` GCs, ``--samples`` posterior draws, ``torch.set_num_threads(--threads)``;
median and minimum wall time of ``--repeat`` calls of ``MassNPE.sample`` (encoder + flow), for the
architecture ``gcml train mass-npe`` builds and the variants given with ``--variant key=value,...`` (on top
of it; speed does not depend on the weights, so untrained networks are timed).

Training: one MapSet (``--galaxies`` x ``--views`` maps with their catalogues, simulated here with a fixed
seed), then ``gcml train mass-npe`` and ``gcml train mass-cnn`` (the library call, ``--epochs`` epochs,
``--threads``), in this process one after the other; the median of the epochs' maps (catalogues) per second
after the first epoch, as the loop records it in ``metrics.jsonl``.

Example::

    python benchmarks/bench_npe.py --threads 1 --variant flow=nsf,transforms=4,flow_hidden=64
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def _variant(s: str) -> dict:
    out = {}
    for kv in s.split(","):
        k, v = kv.split("=")
        try:
            out[k] = int(v)
        except ValueError:
            out[k] = v
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n-gc", type=int, default=200)
    ap.add_argument("--samples", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--variant", action="append", default=[], help="architecture keywords, e.g. flow=maf,transforms=3")
    ap.add_argument("--galaxies", type=int, default=60)
    ap.add_argument("--views", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--skip-training", action="store_true")
    ap.add_argument("--ab", type=int, default=0, metavar="N",
                    help="also time MassNPE.sample against zuko's flow(ctx).sample, N alternating calls each")
    a = ap.parse_args()

    import numpy as np
    import torch

    from gcml.models.npe import MassNPE

    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(0)
    cat = np.zeros((1, a.n_gc, 6), np.float32)
    cat[0, :, :2] = rng.normal(0, 10, (a.n_gc, 2))
    cat[0, :, 2] = rng.normal(0, 150, a.n_gc)
    cat[0, :, 3] = 10.0
    cat[0, :, 4] = (np.abs(cat[0, :, :2]) < 20).all(1)
    cat[0, :, 5] = 1
    x = torch.from_numpy(cat)
    print(f"load average at start: {os.getloadavg()}")
    print(f"# inference: 1 catalogue of {a.n_gc} GCs, {a.samples} draws, {a.threads} thread(s)")
    from gcml.models.registry import get_model_spec

    train_default = dict(get_model_spec("mass-npe").train_defaults)   # what `gcml train mass-npe` builds
    for kw in [{}] + [_variant(v) for v in a.variant]:
        torch.manual_seed(0)
        m = MassNPE(**{**train_default, **kw}).eval()
        m.sample(x, a.samples, seed=0)
        ts = []
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            m.sample(x, a.samples, seed=0)
            ts.append(time.perf_counter() - t0)
        n_par = sum(p.numel() for p in m.parameters())
        print(f"{json.dumps(kw) if kw else 'default'}: median {1e3 * np.median(ts):.1f} ms, min {1e3 * min(ts):.1f} ms "
              f"({n_par:,} parameters)")
    if a.ab:
        torch.manual_seed(0)
        m = MassNPE(**train_default).eval()

        def plain() -> None:  # zuko's own path: the context goes through every hyper-network with every draw
            with torch.no_grad():
                torch.manual_seed(0)
                m.flow(m.context(x)).sample((a.samples,))

        for _ in range(5):
            plain()
            m.sample(x, a.samples, seed=0)
        tp, tf = [], []
        for _ in range(a.ab):
            t0 = time.perf_counter()
            plain()
            tp.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            m.sample(x, a.samples, seed=0)
            tf.append(time.perf_counter() - t0)
        print(f"zuko flow(ctx).sample: median {1e3 * np.median(tp):.1f} ms (min {1e3 * min(tp):.1f}); MassNPE.sample: "
              f"median {1e3 * np.median(tf):.1f} ms (min {1e3 * min(tf):.1f}); {a.ab} alternating calls each")
    if a.skip_training:
        return

    from gcml.simulate.galaxies import SimulateMapsConfig, simulate_maps
    from gcml.training import TrainConfig, train

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        cfg = SimulateMapsConfig(n_galaxies=a.galaxies, views=a.views, seed=11, merger_steps=300, subsample=(0.1, 1.0))
        simulate_maps(cfg, d / "maps.h5")
        print(f"# training on {a.galaxies * a.views} maps / catalogues (80% train), batch {a.batch_size}, "
              f"{a.epochs} epochs, {a.threads} thread(s)")
        for model in ("mass-npe", "mass-cnn"):
            tc = TrainConfig(model=model, epochs=a.epochs, batch_size=a.batch_size, threads=a.threads, seed=0,
                             early_stopping=0, **({"channels": ("sigma", "v", "count"),
                                                   "targets": ("log10_mass_total",)} if model == "mass-cnn" else {}))
            if model == "mass-npe":
                from gcml.models.npe import CATALOGUE_COLUMNS, NPE_TARGETS

                tc = tc.replace(channels=CATALOGUE_COLUMNS, targets=NPE_TARGETS)
            r = train(d / "maps.h5", tc, d / model)
            unit = "catalogues/s" if model == "mass-npe" else "maps/s"
            print(f"{model}: {r.train_maps_per_s:,.0f} {unit} (median of epochs 2-{a.epochs})")


if __name__ == "__main__":
    main()
