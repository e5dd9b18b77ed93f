"""Training throughput (maps per second over whole epochs), on this machine's CPU or a GPU.

Runs the real training loop (``gcml.training.train``) on a synthetic in-memory MapSet of Kaur-sized
10x10 maps (mass-cnn) and reports the median maps/s of the training epochs (validation passes not
included); ``--data FILE`` uses an existing MapSet instead, e.g. mock-observe images for the pi-DOC models.

    python benchmarks/bench_training.py --n 200000 --depth 2 --batch-size 1024 --epochs 3
    python benchmarks/bench_training.py --data images.h5 --model pidoc-net --filters 8,16,32,64 --batch-size 16
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000, help="maps in the MapSet (80%% train)")
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--channels", default="sigma,v")
    ap.add_argument("--model", default="mass-cnn")
    ap.add_argument("--batch-size", type=int, nargs="+", default=[256, 1024])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--loss", default="gaussian_nll")
    ap.add_argument("--nproc", type=int, default=1, help="CPU processes (DistributedDataParallel, gloo)")
    ap.add_argument("--data", type=Path, default=None, help="an existing MapSet (default: synthetic 10x10 maps)")
    ap.add_argument("--filters", default="", help="pi-DOC models: filters per level, e.g. 8,16,32,64")
    args = ap.parse_args()

    import torch
    from synth_mapsets import make_mapset

    from gcml.training import TrainConfig, train

    with tempfile.TemporaryDirectory() as tmp:
        if args.data is None:
            views = 100
            data = make_mapset(Path(tmp) / "bench.h5", n_gal=max(1, args.n // views), views=views)
            what = f"depth {args.depth}, channels {args.channels}, {args.n} maps"
            arch, channels = {"depth": args.depth}, tuple(args.channels.split(","))
        else:
            data = args.data
            arch = {"filters": [int(v) for v in args.filters.split(",")]} if args.filters else {}
            what, channels = f"{arch or 'default size'}, {data}", ()
        print(f"torch {torch.__version__}, threads {args.threads or torch.get_num_threads()}, device {args.device}, "
              f"{args.model} {what}, {args.nproc} process(es)")
        for bs in args.batch_size:
            cfg = TrainConfig(model=args.model, channels=channels, epochs=args.epochs,
                              batch_size=bs, device=args.device, threads=args.threads, early_stopping=0,
                              loss=args.loss, arch_kwargs=arch, nproc=args.nproc)
            t0 = time.perf_counter()
            res = train(data, cfg, Path(tmp) / f"run{bs}", overwrite=True)
            wall = time.perf_counter() - t0
            speeds = [h["maps_per_s"] for h in res.history]
            # maps per second of this process's CPU time (all its threads): what an idle machine gives
            # per core-second; on a shared machine the wall-clock figure is lower.
            n_train = res.history[0]["maps_per_s"] * res.history[0]["time_s"]
            cpu = [n_train / h["cpu_s"] for h in res.history]
            print(f"batch {bs:5d}: train maps/s per epoch (wall) {', '.join(f'{s:,.0f}' for s in speeds)} "
                  f"(median of epochs 2+: {res.train_maps_per_s:,.0f}); maps per CPU-second "
                  f"{', '.join(f'{c:,.0f}' for c in cpu)}; wall {wall:.1f} s for {args.epochs} epochs; load "
                  f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
