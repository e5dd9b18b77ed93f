"""Reproduce gcml's shipped noiseless pi-DOC model (``gcml/data/models/pidoc-net-noiseless.pt``; the default until
the noise-aware model of ``scripts/train_noise_aware_pidoc.py`` replaced it).

simulate-clusters -> mock-observe -> train -> evaluate, sized for about an hour of training on the two
cores of a laptop-class CPU:

1. ``gcml simulate-clusters``: 96 clusters (presets mw15-r1.6, mw15, mw15-r4 x seeds 1-32), 50,000 stars
   each, ages 1-12.5 Gyr every 0.5 Gyr, 2,304 snapshots (Chardin & Bianchini 2021 use r_h = 1.6, 3.2, 4 pc
   and ages 0.5-14 Gyr).
2. ``gcml mock-observe``: 10 random images per snapshot from the grid distance 10-100 kpc (step 10) x
   PSF FWHM 0.5-1.5" (step 0.25), random 90-degree rotations, shifts up to 5", smoothing sigma = 4 px.
   Splits by simulation (no cluster in two splits): three clusters test (mw15-r1.6-s2, the cluster the
   earlier defaults were tested on, mw15-s10 and mw15-r4-s10: one per preset), six validate (two per
   preset, so that the uncertainty calibration sees every structure), the other 87 train (20,880 images).
3. ``gcml train pidoc-net`` (gcml's joint mass-map + distance + age network with uncertainty heads)
   with the small filters (8, 16, 32, 64), batch 16, Adam 2e-3 with a cosine schedule, 36 epochs,
   two threads (75 minutes on the 2-core development machine).
4. ``gcml evaluate`` on the held-out clusters (``WORKDIR/report-test``) and, for the comparison with the
   paper's random image split, on new images (mock-observe seed 2, 2 per snapshot) of the training
   clusters' snapshots (``WORKDIR/report-paper-protocol``).

Usage::

    python scripts/train_default_pidoc.py WORKDIR [--snapshots DIR] [--epochs 36] [--install]

``--snapshots`` reuses snapshots made before (by this script); ``--install`` copies the best model to
``gcml/data/models/pidoc-net-noiseless.pt`` (``gcml predict IMAGE.fits --model`` that file; the paper's
noiseless protocol, docs/pidoc-results.md).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PRESETS = ("mw15-r1.6", "mw15", "mw15-r4")
N_SEEDS = 32  # clusters per preset (seeds 1..N_SEEDS)
# two validation and one test cluster per preset; mw15-r1.6-s2 is the cluster the earlier defaults were tested on
VAL_SIMULATIONS = ("mw15-r4-s2", "mw15-s2", "mw15-r1.6-s3", "mw15-r4-s9", "mw15-s9", "mw15-r1.6-s10")
TEST_SIMULATIONS = ("mw15-r1.6-s2", "mw15-s10", "mw15-r4-s10")


def run(*args: str) -> None:
    print("+ gcml", " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "gcml", *args], check=True)


def resplit_by_simulation(path: Path, val: tuple[str, ...] = VAL_SIMULATIONS,
                          test: tuple[str, ...] = TEST_SIMULATIONS, *, paper_protocol: bool = False) -> None:
    """Hold out whole simulations: the ``val`` ones validate, the ``test`` ones test, every other one trains.

    ``paper_protocol``: mark the images of the *training* simulations as the test split (and the rest as
    train, unused). Made with another mock-observe seed, these are new images (distance, PSF, rotation,
    shift) of snapshots seen in training: the protocol of pi-DOC's random image split.
    """
    import h5py

    with h5py.File(path, "r+") as f:
        sim = np.array([s.decode() if isinstance(s, bytes) else str(s) for s in f["meta/simulation"][()]])
        for name in (*val, *test):
            if not (sim == name).any():
                raise SystemExit(f"{path}: meta/simulation has no {name!r}")
        held_out = np.isin(sim, (*val, *test))
        split = np.zeros(len(sim), np.uint8)
        if paper_protocol:
            split[~held_out] = 2
        else:
            split[np.isin(sim, val)] = 1
            split[np.isin(sim, test)] = 2
        f["split"][...] = split


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("workdir", type=Path)
    ap.add_argument("--snapshots", type=Path, default=None, help="reuse these snapshots")
    ap.add_argument("--seeds", type=int, default=N_SEEDS, help="clusters per preset (>= 10)")
    ap.add_argument("--epochs", type=int, default=36)
    ap.add_argument("--n-random", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-memory-gb", type=float, default=8.0, help="above this the MapSet streams from disk")
    ap.add_argument("--install", action="store_true", help="copy best.pt to gcml/data/models/")
    a = ap.parse_args()
    work = a.workdir
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    snaps = a.snapshots or work / "snapshots"
    if a.snapshots is None:
        for preset in PRESETS:
            for seed in range(1, a.seeds + 1):
                run("simulate-clusters", "-o", str(snaps), "--preset", preset, "--n-stars", "50000",
                    "--ages", "1:12.5:0.5", "--seed", str(seed), "--simulation", f"{preset}-s{seed}", "-q")
    images = work / "images.h5"
    run("mock-observe", str(snaps), "-o", str(images), "--distance", "10:100:10", "--psf", "0.5:1.5:0.25",
        "--n-random", str(a.n_random), "--seed", "1", "--overwrite", "-q")
    resplit_by_simulation(images)
    t1 = time.perf_counter()
    # the library call of `gcml train pidoc-net` (the CLI has no option for the filters)
    from gcml.training import TrainConfig, train

    cfg = TrainConfig(model="pidoc-net", arch_kwargs={"filters": [8, 16, 32, 64]}, epochs=a.epochs,
                      batch_size=16, lr=2e-3, lr_schedule="cosine", early_stopping=0, seed=0,
                      threads=a.threads, device="cpu", max_memory_gb=a.max_memory_gb)
    print(f"+ train {cfg}", flush=True)
    res = train(images, cfg, work / "run", overwrite=True,
                progress=lambda e, i: print(f"epoch {i['epoch']}: train {i['train_loss']:.4f} "
                                            f"val {i['val_loss']:.4f}", flush=True) if e == "epoch" else None,
                command="scripts/train_default_pidoc.py")
    for name, m in res.test_metrics.get("test", {}).items():
        print(f"test {name}: MAE {m['mae_dex']:.3f} RMSE {m['rmse_dex']:.3f} bias {m['bias_dex']:+.3f} "
              f"68% coverage {m.get('coverage_68', float('nan')):.2f}"
              + (f" pixel error {m['pixel_percentage_error']:.1f}%" if "pixel_percentage_error" in m else ""))
    t2 = time.perf_counter()
    print(f"data {t1 - t0:.0f} s, training {t2 - t1:.0f} s", flush=True)
    best = str(work / "run" / "best.pt")
    run("evaluate", best, str(images), "--split", "test", "-o", str(work / "report-test"), "--overwrite", "-q")
    # the paper's protocol: new images (mock-observe seed 2) of the training clusters' snapshots
    paper = work / "images-paper-protocol.h5"
    run("mock-observe", str(snaps), "-o", str(paper), "--distance", "10:100:10", "--psf", "0.5:1.5:0.25",
        "--n-random", "2", "--seed", "2", "--overwrite", "-q")
    resplit_by_simulation(paper, paper_protocol=True)
    run("evaluate", best, str(paper), "--split", "test", "-o", str(work / "report-paper-protocol"),
        "--overwrite", "-q")
    if a.install:
        dest = ROOT / "gcml" / "data" / "models" / "pidoc-net-noiseless.pt"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(work / "run" / "best.pt", dest)
        print(f"installed {dest}")


if __name__ == "__main__":
    main()
