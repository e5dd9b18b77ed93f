"""Does an ensemble of mass CNNs give honest intervals out of distribution? (issue 12)

Trains ``--members`` copies of the shipped default's recipe (``scripts/train_default_mass_model.py``: the same
simulated maps, the same configuration) that differ only in the training seed, and scores each member and
their ensemble on the two held-out families the recipe evaluates (``unknown``, ``early-ood``; the same
simulations, seeds 77 and 78) and on the training families' test split. The ensemble's mean is the members'
mean and its variance the mean of their (calibrated) variances plus the variance of their means (a mixture's
first two moments; Lakshminarayanan et al. 2017). Reported for M(< R_out): bias, scatter, 68 / 95 % coverage.

    python benchmarks/mass_ensemble_ood.py WORK [--members 4] [--epochs 10]

WORK/maps.h5, unknown.h5 and early_ood.h5 are made first if missing (as the recipe makes them).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))

TARGET = "log10_mass_within_rout"


def predictions(model: Path, mapset: Path, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(truth, mean, calibrated std) of TARGET for the maps of ``split``."""
    from gcml.io.mapset import read_mapset
    from gcml.models.trained import TrainedModel

    tm = TrainedModel.load(model)
    ms = read_mapset(mapset, split=split, with_truth=False)
    mean, std = tm.predict_maps(ms.maps[:, [ms.channels.index(c) for c in tm.channels]])
    j = tm.targets.index(TARGET)
    return np.asarray(ms.targets[TARGET], float), mean[:, j], std[:, j]


def scores(y: np.ndarray, m: np.ndarray, s: np.ndarray) -> dict[str, float]:
    """Bias, scatter, 68 / 95 % coverage (gcml's own metrics) and the median predicted sigma."""
    from gcml.evaluation.metrics import regression_metrics

    r = regression_metrics(y, m, s)
    return {"bias": r["bias_dex"], "scatter": r["scatter_dex"], "cov68": r["coverage_68"],
            "cov95": r["coverage_95"], "median_std": float(np.median(s))}


def main() -> None:
    from train_default_mass_model import DEFAULT_TARGETS, FAMILIES

    from gcml.simulate.galaxies import SimulateMapsConfig, simulate_maps
    from gcml.training import TrainConfig, train

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("work", type=Path)
    ap.add_argument("--members", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=2021)
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    sims = {  # as scripts/train_default_mass_model.py makes them
        "maps.h5": SimulateMapsConfig(families=FAMILIES, n_galaxies=1600, views=40, seed=a.seed, n_gc=300,
                                      subsample=(0.1, 1.0), v_error_model="sluggs"),
        "unknown.h5": SimulateMapsConfig(families=("unknown",), n_galaxies=120, views=10, seed=77, n_gc=300,
                                         subsample=(0.1, 1.0), v_error_model="sluggs"),
        "early_ood.h5": SimulateMapsConfig(families=("early-ood",), n_galaxies=120, views=10, seed=78,
                                           v_error_model="sluggs"),
    }
    for name, sim in sims.items():
        if not (a.work / name).exists():
            simulate_maps(sim, a.work / name, workers=2, command="benchmarks/mass_ensemble_ood.py")
    models = []
    for k in range(a.members):
        run = a.work / f"member{k}"
        if not (run / "best.pt").exists():
            cfg = TrainConfig(model="mass-cnn-gcml", targets=DEFAULT_TARGETS, epochs=a.epochs, batch_size=256,
                              lr=2e-3, lr_schedule="cosine", early_stopping=0, seed=a.seed + k, device="cpu",
                              in_memory="yes", threads=1)
            train(a.work / "maps.h5", cfg, run, overwrite=True, command="benchmarks/mass_ensemble_ood.py")
        models.append(run / "best.pt")
        print(f"member {k}: {run / 'best.pt'}", flush=True)
    rows = {}
    for label, (name, split) in {"test (training families)": ("maps.h5", "test"), "unknown": ("unknown.h5", "ood"),
                                 "early-ood": ("early_ood.h5", "ood")}.items():
        preds = [predictions(m, a.work / name, split) for m in models]
        y = preds[0][0]
        means = np.stack([p[1] for p in preds])
        stds = np.stack([p[2] for p in preds])
        rows[label] = {f"member {k}": scores(y, means[k], stds[k]) for k in range(len(models))}
        ens_m = means.mean(0)
        ens_s = np.sqrt((stds**2).mean(0) + means.var(0))
        rows[label]["ensemble"] = scores(y, ens_m, ens_s)
    (a.work / "ensemble_ood.json").write_text(json.dumps(rows, indent=1))
    print("| set | model | bias [dex] | scatter [dex] | 68% / 95% coverage | median sigma [dex] |")
    print("|---|---|---:|---:|---|---:|")
    for label, per in rows.items():
        for name, s in per.items():
            print(f"| {label} | {name} | {s['bias']:+.3f} | {s['scatter']:.3f} | {s['cov68']:.2f} / {s['cov95']:.2f} | "
                  f"{s['median_std']:.3f} |")


if __name__ == "__main__":
    main()
