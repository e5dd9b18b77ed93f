"""Measure the map loss variants behind gcml's default pi-DOC loss (docs/pidoc-results.md).

Trains the same small network (pidoc-ced-lite, filters 8,16,32,64) on the same MapSet and seed with
(a) per-pixel MSE on standardised log10 mass only (pi-DOC's loss without the perceptual term),
(b) (a) + the total-mass term, (c) per-pixel Gaussian NLL + the total-mass term (gcml's default),
and reports the test split's pixel error (pi-DOC Eq. 2), total-mass error and interval coverage.

Usage: python benchmarks/bench_pidoc_loss.py IMAGES.h5 WORKDIR [--epochs 4]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import gcml.models.tasks.maps as mt
from gcml.training import TrainConfig, train

ap = argparse.ArgumentParser()
ap.add_argument("images", type=Path)
ap.add_argument("work", type=Path)
ap.add_argument("--epochs", type=int, default=4)
a = ap.parse_args()
rows = []
for name, loss, weight in (("mse, pixels only", "mse", 0.0), ("mse + total", "mse", 1.0),
                           ("nll + total (default)", "gaussian_nll", 1.0)):
    mt.TOTAL_WEIGHT = weight
    cfg = TrainConfig(model="pidoc-ced-lite", loss=loss, arch_kwargs={"filters": [8, 16, 32, 64]},
                      epochs=a.epochs, batch_size=16, lr=2e-3, lr_schedule="cosine", early_stopping=0, seed=0,
                      threads=2, device="cpu")
    t0 = time.perf_counter()
    res = train(a.images, cfg, a.work / name.split()[0].replace(",", "") / str(weight), overwrite=True)
    m = res.test_metrics["test"]["mass"]
    rows.append({"variant": name, "pixel_pct": m["pixel_percentage_error"], "total_pct": m["total_percentage_error"],
                 "total_mae_dex": m["mae_dex"], "total_bias_dex": m["bias_dex"], "cov68": m.get("coverage_68"),
                 "seconds": time.perf_counter() - t0})
    print(json.dumps(rows[-1]), flush=True)
