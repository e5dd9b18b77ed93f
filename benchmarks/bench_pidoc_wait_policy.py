"""pi-DOC training speed under gcml's passive OpenMP wait against libgomp's spinning threads.

The ``gcml`` command sets ``OMP_WAIT_POLICY=PASSIVE`` unless the environment names a wait policy
(:func:`gcml.cli.main.openmp_wait_policy`); this measures what that costs or gains for 160 x 160 images
(``pidoc-net`` filters 8-64, batch 16, 2 epochs of 240 toy Plummer images, the default 1 process x 2
threads), with the machine as it is and beside one busy Python process, in rounds:

    python benchmarks/bench_pidoc_wait_policy.py --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

SETTINGS = {"default (PASSIVE)": {}, "OMP_WAIT_POLICY=ACTIVE": {"OMP_WAIT_POLICY": "ACTIVE"}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    from test_pidoc_training import write_toy_mapset

    res: dict[tuple[str, bool], list[float]] = {}
    print(f"load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        data = write_toy_mapset(Path(tmp) / "images.h5", n=480, size=160)
        for rnd in range(args.rounds):
            for busy in (False, True):
                hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
                try:
                    for name, env in SETTINGS.items():
                        run = Path(tmp) / f"run{rnd}{busy}{len(env)}"
                        subprocess.run([sys.executable, "-m", "gcml", "train", "pidoc-net", "--data", str(data),
                                        "-o", str(run), "--epochs", "2", "--patience", "0", "--device", "cpu", "-q",
                                        "--batch-size", "16"], check=True, capture_output=True, cwd=ROOT,
                                       env={**os.environ, "PYTHONPATH": str(ROOT), **env})
                        speed = float(json.loads((run / "summary.json").read_text())["train_maps_per_s"])
                        print(f"round {rnd + 1} {'busy ' if busy else 'as is'} {name:24s} {speed:6.1f} images/s", flush=True)
                        res.setdefault((name, busy), []).append(speed)
                finally:
                    if hog is not None:
                        hog.kill()
                        hog.wait()
    print(f"load average {os.getloadavg()[0]:.1f}")
    for (name, busy), v in res.items():
        print(f"{name:24s} {'busy ' if busy else 'as is'} best {max(v):6.1f}  rounds {' / '.join(f'{x:.1f}' for x in v)}")


if __name__ == "__main__":
    main()
