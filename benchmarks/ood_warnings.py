"""How often does ``gcml predict`` warn on galaxies outside the training distribution, and how often inside it?

    python benchmarks/ood_warnings.py WORK [--model mass-npe-default] [--views 300] [--samples 1000]

WORK holds the default recipe's ``independent.h5`` (galaxies of the training mixture), ``unknown.h5`` and
``early_ood.h5`` (``benchmarks/npe_default_priors.py``, ``scripts/train_default_mass_model.py``). Up to
``--views`` views of each set (a fixed random choice) go through the catalogue path exactly as a real table
does (``mock_catalogue`` at 8-25 Mpc, a stated 5 % distance error, :func:`predict_catalogue`), and the
script counts the views with at least one out-of-range warning (predict's range checks: GC number, R_out,
map dispersion, velocity errors, masses at the edge of the training labels), which warnings, and the
M(< R_out) residual of the warned and unwarned views. A flag that fired mostly out of distribution would be
an out-of-distribution score; this measures whether predict's warnings are one.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

SETS = {"training mixture (independent)": "independent.h5", "unknown": "unknown.h5", "early-ood": "early_ood.h5"}


def warned_views(mapset: Path, model: str, n_views: int, n_samples: int, seed: int = 0) -> dict:
    import h5py

    from gcml.io.bundle import load_bundle, resolve_model_path
    from gcml.io.catalogues import read_catalogues
    from gcml.prediction.catalogue import mock_catalogue, predict_catalogue

    bundle = load_bundle(resolve_model_path(model))
    cats = read_catalogues(mapset)
    with h5py.File(mapset, "r") as f:
        truth = f["targets/log10_mass_within_rout"][:].astype(float)
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(cats.n, min(n_views, cats.n), replace=False))
    kinds: Counter = Counter()
    warned, resid = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for k in rows:
            t = cats.table(int(k))
            if len(t["x"]) < 10:
                continue
            d_true = rng.uniform(8, 25)
            d_given = d_true * math.exp(0.05 * rng.standard_normal())
            ra0, dec0, vsys = rng.uniform(0, 360), rng.uniform(-60, 60), rng.uniform(300, 3000)
            tab = mock_catalogue(t["x"], t["y"], t["v_los"], ra0_deg=ra0, dec0_deg=dec0, distance_mpc=d_true,
                                 vsys_kms=vsys, v_err_kms=t["v_err"])
            p = Path(tmp) / "g.ecsv"
            tab.write(p, overwrite=True)
            try:
                pred = predict_catalogue(p, bundle, ra=ra0, dec=dec0, distance_mpc=d_given,
                                         distance_err_mpc=0.05 * d_given, vsys=vsys, n_samples=n_samples,
                                         seed=int(k))
            except Exception:   # e.g. fewer than 10 GCs in the map at this distance: not a prediction
                continue
            w = [s for s in pred.warnings if "no velocity-error column" not in s]
            warned.append(bool(w))
            for s in w:
                kinds[_kind(s)] += 1
            resid.append(pred.masses["log10_mass_within_rout"].median - truth[k])
    warned_a, resid_a = np.array(warned), np.array(resid)
    return {"views": len(warned_a), "warned": float(warned_a.mean()), "kinds": dict(kinds),
            "resid_warned": (float(resid_a[warned_a].mean()) if warned_a.any() else math.nan),
            "resid_unwarned": (float(resid_a[~warned_a].mean()) if (~warned_a).any() else math.nan),
            "scatter_unwarned": (float(resid_a[~warned_a].std()) if (~warned_a).any() else math.nan)}


def _kind(w: str) -> str:
    for key, name in (("GCs lie in the map", "few GCs"), ("reach only R_out", "small R_out"),
                      ("velocity dispersion", "map dispersion"), ("velocity error", "velocity errors"),
                      ("edge of the training labels", "mass at a label edge"),
                      ("outside the training labels", "mass outside the labels")):
        if key in w:
            return name
    return "other"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("work", type=Path)
    ap.add_argument("--model", default="mass-npe-default")
    ap.add_argument("--views", type=int, default=300)
    ap.add_argument("--samples", type=int, default=1000)
    a = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    print("| set | views | warned | warnings (count) | M(< R_out) bias, warned / not warned | scatter, not warned |")
    print("|---|---:|---:|---|---|---:|")
    for name, f in SETS.items():
        r = warned_views(a.work / f, a.model, a.views, a.samples)
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(r["kinds"].items(), key=lambda kv: -kv[1])) or "-"
        print(f"| {name} | {r['views']} | {r['warned']:.2f} | {kinds} | {r['resid_warned']:+.3f} / "
              f"{r['resid_unwarned']:+.3f} | {r['scatter_unwarned']:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
