"""`gcml train mass-cnn` thread settings on a quiet machine and beside one busy process, in one run.

Why: on this shared 2-core machine the fastest setting flips with the load. One process with two OpenMP
threads that spin while they wait (libgomp's default) wins when the machine is quiet and collapses when
another process takes a core; a passive wait (``OMP_WAIT_POLICY=PASSIVE``, which the ``gcml`` command sets
for itself unless the environment names a policy) trades some of the quiet speed for robustness. This runs each setting in a fresh process on the same synthetic
MapSet of 10x10 maps, in rounds, alternately with the machine as it is and with one extra busy Python
process (``while True: pass``) competing for a core; reported are the training maps/s from the run's
summary.json and the wall time of the command.

    python benchmarks/bench_train_threads_load.py --n 42000 --epochs 3 --rounds 2
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

T2 = ["--threads", "2", "--nproc", "1"]
#: name -> (options, extra environment). The gcml command waits passively in OpenMP unless the environment
#: names a wait policy (gcml.cli.main.openmp_wait_policy): the ACTIVE / GOMP_SPINCOUNT lines are libgomp's
#: own spinning, as gcml ran before it set the policy.
SETTINGS = {
    "default": ([], {}),
    "--threads 1 --nproc 1": (["--threads", "1", "--nproc", "1"], {}),
    "--threads 2 --nproc 1": (T2, {}),
    "--nproc 2 --threads 1": (["--nproc", "2", "--threads", "1"], {}),
    "--threads 2, OMP_WAIT_POLICY=ACTIVE": (T2, {"OMP_WAIT_POLICY": "ACTIVE"}),
    "--threads 2, GOMP_SPINCOUNT=10000": (T2, {"GOMP_SPINCOUNT": "10000"}),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=42_000, help="maps in the MapSet (60%% train)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()

    from synth_mapsets import make_mapset

    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; mass-cnn, {args.n} maps, "
          f"{args.epochs} epochs")
    best: dict[tuple[str, bool], float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = make_mapset(Path(tmp) / "maps.h5", n_gal=max(1, args.n // 100), views=100)
        k = 0
        for r in range(args.rounds):
            for busy in (False, True):
                hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
                try:
                    for name, (opts, extra) in SETTINGS.items():
                        k += 1
                        run = Path(tmp) / f"run{k}"
                        cmd = [sys.executable, "-m", "gcml", "train", "mass-cnn", "--data", str(data), "-o", str(run),
                               "--epochs", str(args.epochs), "--patience", "0", "--device", "cpu", "-q", *opts]
                        t0 = time.perf_counter()
                        subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True,
                                       env={**os.environ, "PYTHONPATH": str(ROOT), **extra})
                        wall = time.perf_counter() - t0
                        speed = float(json.loads((run / "summary.json").read_text())["train_maps_per_s"])
                        print(f"round {r + 1} {'busy ' if busy else 'as is'}  {name:38s} {speed:9,.0f} maps/s  "
                              f"wall {wall:6.1f} s", flush=True)
                        best[name, busy] = max(speed, best.get((name, busy), 0.0))
                finally:
                    if hog is not None:
                        hog.kill()
                        hog.wait()
    print(f"load average {os.getloadavg()[0]:.1f}")
    print("| setting | maps/s, machine as is (best) | maps/s, one busy process beside (best) |")
    print("|---|---:|---:|")
    for name in SETTINGS:
        print(f"| `{name}` | {best[name, False]:,.0f} | {best[name, True]:,.0f} |")
    for busy in (False, True):
        top = max(best[n, busy] for n in SETTINGS)
        print(f"{'busy' if busy else 'as is'}: " + ", ".join(f"{n}: {top / best[n, busy]:.2f}x" for n in SETTINGS))


if __name__ == "__main__":
    main()
