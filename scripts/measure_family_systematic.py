"""Measure the mass model's error on a family of galaxies it never saw (leave one family out), issue 12.

A network's calibrated intervals describe its error on galaxies like its training set. Real galaxies can
differ in ways no training prior spans (orbits, halo profiles, rotation, substructure), and held-out
families show the intervals are then too narrow. This script measures how much, using the training
families only: for each family F of the default recipe (``early``, ``disk``, ``merger``) it

1. trains the default recipe's network (``scripts/train_default_mass_model.py``: same maps, same
   configuration and seed) on the other families' maps;
2. predicts every map of F (all splits: the network never saw that family), keeping only the maps whose
   target lies inside that network's training labels (extrapolation in mass is flagged by ``gcml predict``'s
   edge warnings and is not what is measured here);
3. finds, per target, the systematic ``s_F`` that, added in quadrature to the calibrated sigma, makes 68 %
   of those maps' intervals hold the truth (0 if they already do).

The systematic per target is the root mean square of ``s_F`` over the three families, written to a bundle
as ``calibration.systematic_dex`` (``--apply MODEL``): its decoded sigma becomes
``sqrt(sigma_stat^2 + systematic^2)`` (:meth:`gcml.models.tasks.scalar.ScalarRegressionTask.decode`).

    python scripts/measure_family_systematic.py WORK [--apply gcml/data/models/mass-cnn-default.pt]

WORK holds the recipe's ``maps.h5`` (made by ``scripts/train_default_mass_model.py --work WORK``). Writes
WORK/lofo_F/ (each network) and WORK/family_systematic.json. The unknown and early-ood families are not used
to measure the term; with ``--apply``, the bundle's held-out metrics (``extra.held_out_metrics``, on
WORK/unknown.h5 and WORK/early_ood.h5 when present) and its test-split metrics with the term
(``extra.test_metrics_with_systematic``) are recomputed for the intervals it now gives.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
FOLDS = ("early", "disk", "merger")


def main(argv: list[str] | None = None) -> int:
    from train_default_mass_model import DEFAULT_TARGETS

    from gcml.evaluation.calibration import quadrature_for_coverage
    from gcml.evaluation.metrics import regression_metrics
    from gcml.io.mapset import read_mapset, write_mapset
    from gcml.models.trained import TrainedModel
    from gcml.training import TrainConfig, train

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("work", type=Path)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=2021)
    ap.add_argument("--apply", type=Path, help="write the result into this bundle's calibration")
    a = ap.parse_args(argv)
    ms = read_mapset(a.work / "maps.h5", with_truth=False)
    fam = np.asarray(ms.meta["family"]).astype(str)
    folds = {}
    for f in FOLDS:
        run = a.work / f"lofo_{f}"
        if not (run / "best.pt").exists():
            sub = a.work / f"lofo_{f}.h5"
            if not sub.exists():
                write_mapset(sub, ms.select(fam != f), command="scripts/measure_family_systematic.py")
            cfg = TrainConfig(model="mass-cnn-gcml", targets=DEFAULT_TARGETS, epochs=a.epochs, batch_size=256, lr=2e-3,
                              lr_schedule="cosine", early_stopping=0, seed=a.seed, device="cpu", in_memory="yes",
                              threads=1)
            train(sub, cfg, run, overwrite=True, command="scripts/measure_family_systematic.py")
            sub.unlink()
        tm = TrainedModel.load(run / "best.pt")
        sel = fam == f
        mean, std = tm.predict_maps(ms.maps[sel][:, [ms.channels.index(c) for c in tm.channels]])
        lo, hi = tm.task.y_min, tm.task.y_max
        per = {}
        for j, t in enumerate(tm.targets):
            y = np.asarray(ms.targets[t], float)[sel]
            ok = (y >= lo[j]) & (y <= hi[j])
            m = regression_metrics(y[ok], mean[ok, j], std[ok, j])
            per[t] = {"n": int(ok.sum()), **{k: m[k] for k in ("bias_dex", "scatter_dex", "coverage_68", "coverage_95")},
                      "systematic_dex": quadrature_for_coverage(mean[ok, j] - y[ok], std[ok, j])}
        folds[f] = per
        print(f"left out {f}: " + ", ".join(f"{t} {v['systematic_dex']:.3f}" for t, v in per.items()), flush=True)
    targets = list(DEFAULT_TARGETS)
    sysd = {t: float(np.sqrt(np.mean([folds[f][t]["systematic_dex"] ** 2 for f in FOLDS]))) for t in targets}
    res = {"folds": folds, "systematic_dex": sysd, "epochs": a.epochs, "seed": a.seed}
    (a.work / "family_systematic.json").write_text(json.dumps(res, indent=1))
    print("| left-out family | target | maps | bias [dex] | scatter [dex] | 68% / 95% coverage | s_F [dex] |")
    print("|---|---|---:|---:|---:|---|---:|")
    for f in FOLDS:
        for t, v in folds[f].items():
            print(f"| {f} | {t} | {v['n']} | {v['bias_dex']:+.3f} | {v['scatter_dex']:.3f} | "
                  f"{v['coverage_68']:.2f} / {v['coverage_95']:.2f} | {v['systematic_dex']:.3f} |")
    print("systematic (rms over the folds): " + ", ".join(f"{t} {v:.3f}" for t, v in sysd.items()))
    if a.apply:
        from gcml.io.bundle import load_bundle, save_bundle

        write_systematic(a.apply, sysd, "scripts/measure_family_systematic.py")
        # the held-out metrics the bundle reports describe its intervals as they now are
        from train_default_mass_model import held_out_metrics

        ood = {name: held_out_metrics(a.apply, a.work / f"{name}.h5") for name in ("unknown", "early_ood")
               if (a.work / f"{name}.h5").exists()}
        tm = TrainedModel.load(a.apply)
        test = read_mapset(a.work / "maps.h5", split="test", with_truth=False)
        mean, std = tm.predict_maps(test.maps[:, [test.channels.index(c) for c in tm.channels]])
        tmet = {}
        for j, t in enumerate(tm.targets):
            m = regression_metrics(test.targets[t], mean[:, j], std[:, j])
            tmet[t] = {k: m[k] for k in ("n", "bias_dex", "scatter_dex", "coverage_68", "coverage_95")}
        b = load_bundle(a.apply)
        b["extra"] = {**(b.get("extra") or {}), "held_out_metrics": {**(b.get("extra") or {}).get("held_out_metrics", {}),
                                                                      **ood},
                      "test_metrics_with_systematic": tmet}
        save_bundle(a.apply, b, overwrite=True)
        for name, mets in {**ood, "test": tmet}.items():
            v = mets["log10_mass_within_rout"]
            print(f"{name}: M(< R_out) bias {v['bias_dex']:+.3f} dex, 68%/95% coverage {v['coverage_68']:.2f}/"
                  f"{v['coverage_95']:.2f} with the systematic term")
    return 0


def write_systematic(path: Path, sysd: dict[str, float], how: str,
                     correlation: tuple[list[str], np.ndarray] | None = None) -> None:
    """Store the per-target systematic ``sysd`` [dex] in the bundle ``path`` as ``calibration.systematic_dex``
    (targets it does not name get 0), with how it was measured (``how``: the script), and optionally the
    correlation of the systematic shifts across targets (``(target names, matrix)``, mass-npe draws:
    ``calibration.systematic_correlation``, in the bundle's target order; unnamed targets uncorrelated)."""
    from gcml.io.bundle import load_bundle, save_bundle

    b = load_bundle(path)
    names = list(b["targets"]["names"])
    cal = {**b.get("calibration", {}), "systematic_dex": [float(sysd.get(t, 0.0)) for t in names],
           "systematic_method": f"leave-one-family-out ({how}): rms over the early, disk and merger "
           "families of the quadrature term giving 68 % coverage on the family left out"}
    if correlation is not None:
        order, mat = correlation
        pos = {t: i for i, t in enumerate(order)}
        r = np.eye(len(names))
        for i, a in enumerate(names):
            for j, c in enumerate(names):
                if a in pos and c in pos:
                    r[i, j] = float(np.asarray(mat)[pos[a], pos[c]])
        cal["systematic_correlation"] = r.tolist()
    b["calibration"] = cal
    save_bundle(path, b, overwrite=True)
    print(f"wrote calibration.systematic_dex into {path}")


if __name__ == "__main__":
    sys.exit(main())
