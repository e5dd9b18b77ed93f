"""`gcml train` with its default thread/process counts against explicit settings, in one run.

Each setting runs the real command (``python -m gcml train mass-cnn ...``) in a fresh process on the same
synthetic MapSet of Kaur-sized 10x10 maps; reported are the training maps/s (median over epochs, from the
run's summary.json) and the command's wall time (start-up, validation and test passes included). The
settings are run in rounds (default, --threads 1, --threads 2, --nproc 2; the next round starting one
setting later) so that a change of the machine's load hits them alike; the best of the rounds is kept
for each.

    python benchmarks/bench_train_defaults.py --n 50000 --epochs 3 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

# the explicit settings name both counts (the defaults, --threads 0 --nproc 0, choose them)
SETTINGS = {"default": [], "--threads 1 --nproc 1": ["--threads", "1", "--nproc", "1"],
            "--threads 2 --nproc 1": ["--threads", "2", "--nproc", "1"],
            "--nproc 2 --threads 1": ["--nproc", "2", "--threads", "1"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50_000, help="maps in the MapSet (60%% train)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--model", default="mass-cnn")
    ap.add_argument("--extra", default="", help="more options for every run, e.g. '--batch-size 1024'")
    args = ap.parse_args()

    from synth_mapsets import make_mapset

    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; {args.model}, {args.n} maps, "
          f"{args.epochs} epochs {args.extra}".rstrip())
    best: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = make_mapset(Path(tmp) / "maps.h5", n_gal=max(1, args.n // 100), views=100)
        names = list(SETTINGS)
        for r in range(args.rounds):
            # each round starts one setting later, so that no setting always runs first (after the MapSet
            # was written, or after the previous round's last run)
            for name in names[r % len(names):] + names[:r % len(names)]:
                opts = SETTINGS[name]
                run = Path(tmp) / f"run{r}_{len(best)}_{name.replace(' ', '')}"
                cmd = [sys.executable, "-m", "gcml", "train", args.model, "--data", str(data), "-o", str(run),
                       "--epochs", str(args.epochs), "--patience", "0", "--device", "cpu", "-q",
                       *args.extra.split(), *opts]
                t0 = time.perf_counter()
                subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
                wall = time.perf_counter() - t0
                s = json.loads((run / "summary.json").read_text())
                speed = float(s["train_maps_per_s"])
                print(f"round {r + 1}  {name:22s} {speed:9,.0f} maps/s  wall {wall:6.1f} s  "
                      f"({s['world_size']} process(es), {s.get('threads', '?')} thread(s) each)", flush=True)
                old = best.get(name)
                best[name] = (max(speed, old[0]) if old else speed, min(wall, old[1]) if old else wall)
    top = max(v[0] for k, v in best.items() if k != "default")
    top_wall = min(v[1] for k, v in best.items() if k != "default")
    print(f"load average {os.getloadavg()[0]:.1f}")
    print("| setting | training maps/s | wall time [s] |")
    print("|---|---|---|")
    for name, (speed, wall) in best.items():
        print(f"| `{name}` | {speed:,.0f} | {wall:.1f} |")
    d = best["default"]
    print(f"default: {top / d[0]:.2f}x slower than the best explicit setting in maps/s, "
          f"{d[1] / top_wall:.2f}x in wall time")


if __name__ == "__main__":
    main()
