"""Leave one family out for mass-npe: how much wider must its posteriors be on a family it never saw? (issue 13)

The experiment behind ``scripts/measure_family_systematic.py`` (which gives the shipped CNN its systematic
term), repeated for mass-npe trained on the same recipe (``benchmarks/npe_default_priors.py``): for each
family F of the default recipe (early, disk, merger), mass-npe is trained on the other families' catalogues
(``--epochs``, one thread, two trainings side by side) and evaluated (``gcml evaluate``) on up to
``--views`` catalogues of F; the term ``s_F`` is the smallest that, added in quadrature to the posterior's
standard deviation, gives 68 % coverage there (``quadrature_for_coverage``, Gaussian approximation of the
posterior; maps whose mass lies outside that network's labels, as its bundle records them, left out). The rms
over the three families is then added to the full model's posteriors on the test split and the two held-out families, whose
evaluations ``npe_default_priors.py`` wrote (WORK/report_*/predictions.npz), and the coverage is reported.
``--apply MODEL`` writes the term into a mass-npe bundle as ``calibration.systematic_dex`` (as
``scripts/measure_family_systematic.py`` does for the CNN), with the correlation of the left-out families'
residuals across targets (mean over the folds) as ``calibration.systematic_correlation``: its posterior draws
are then convolved with a Gaussian of those widths and correlations and its standard deviations widened in
quadrature (:meth:`gcml.models.tasks.npe.CatalogueNPETask.decode_samples`).

    python benchmarks/npe_family_systematic.py WORK [--epochs 4] [--views 4000] [--apply WORK/npe/best.pt]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

FOLDS = ("early", "disk", "merger")
T = "log10_mass_within_rout"


def subset(work: Path, rows: np.ndarray, dest: Path) -> None:
    """The MapSet rows ``rows`` of WORK/maps.h5, with their GC catalogues."""
    import h5py

    from gcml.io.catalogues import append, create_datasets, read_catalogues
    from gcml.io.mapset import read_mapset, write_mapset

    ms = read_mapset(work / "maps.h5", with_truth=False)
    write_mapset(dest, ms.select(rows), command="benchmarks/npe_family_systematic.py", overwrite=True)
    with h5py.File(dest, "a") as f:
        create_datasets(f, len(rows))
        append(f, 0, read_catalogues(work / "maps.h5", rows), dest)


def gaussian_cover(y, m, s, z):
    return float(np.mean(np.abs(m - y) <= z * s))


def main() -> None:
    from gcml.evaluation.calibration import quadrature_for_coverage
    from gcml.io.mapset import read_mapset
    from gcml.models.trained import TrainedModel

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("work", type=Path)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--views", type=int, default=4000)
    ap.add_argument("--apply", type=Path, help="write the term into this mass-npe bundle's calibration")
    a = ap.parse_args()
    w = a.work
    g = [sys.executable, "-m", "gcml"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ms = read_mapset(w / "maps.h5", with_truth=False)
    fam = np.asarray(ms.meta["family"]).astype(str)
    rng = np.random.default_rng(0)
    procs = []
    for f in FOLDS:
        run = w / f"npe_lofo_{f}"
        if (run / "best.pt").exists():
            continue
        if not (w / f"npe_lofo_{f}_train.h5").exists():
            subset(w, np.flatnonzero(fam != f), w / f"npe_lofo_{f}_train.h5")
        held = np.flatnonzero(fam == f)
        subset(w, np.sort(rng.choice(held, min(a.views, len(held)), replace=False)), w / f"npe_lofo_{f}_test.h5")
        procs.append(subprocess.Popen([*g, "train", "mass-npe", "--data", w / f"npe_lofo_{f}_train.h5", "-o", run,
                                       "--epochs", str(a.epochs), "--batch-size", "128", "--lr", "1e-3",
                                       "--lr-schedule", "cosine", "--threads", "1", "--patience", "0", "--seed",
                                       "2021", "--overwrite", "-q"], env=env))
        if len(procs) == 2:
            procs.pop(0).wait()
    for p in procs:
        p.wait()
    folds, corrs = {}, {}
    for f in FOLDS:
        rep = w / f"npe_lofo_{f}_report"
        if not (rep / "predictions.npz").exists():
            subprocess.run([*g, "evaluate", w / f"npe_lofo_{f}" / "best.pt", w / f"npe_lofo_{f}_test.h5", "--split",
                            "all", "-o", rep, "--overwrite", "-q"], check=True, env=env)
        d = np.load(rep / "predictions.npz")
        test = read_mapset(w / f"npe_lofo_{f}_test.h5", with_truth=False)
        task = TrainedModel.load(w / f"npe_lofo_{f}" / "best.pt").task  # its training labels' range
        per, resid = {}, {}
        for t in test.targets:
            keys = [k for k in d.files if k.endswith(f"|{t}|mean")]
            if not keys:
                continue
            m, s = d[keys[0]], d[keys[0].replace("|mean", "|std")]
            y = np.asarray(test.targets[t], float)
            lo, hi = (float(v[task.targets.index(t)]) for v in (task.y_min, task.y_max))
            ok = (y >= lo) & (y <= hi) & np.isfinite(m)
            r = m[ok] - y[ok]
            resid[t] = np.where(ok, m - y, np.nan)
            per[t] = {"n": int(ok.sum()), "bias": float(r.mean()), "scatter": float(r.std(ddof=1)),
                      "cov68": gaussian_cover(y[ok], m[ok], s[ok], 0.9945), "s_F": quadrature_for_coverage(r, s[ok])}
        folds[f] = per
        rr = np.array(list(resid.values()))
        corrs[f] = np.corrcoef(rr[:, np.isfinite(rr).all(0)])   # maps inside the labels for every target
    targets = list(folds[FOLDS[0]])
    sysd = {t: float(np.sqrt(np.mean([folds[f][t]["s_F"] ** 2 for f in FOLDS]))) for t in targets}
    # how the errors on an unseen family go together across targets: the residuals' correlation, averaged over
    # the folds (an average of correlation matrices is one); the systematic draws use it
    corr = np.mean([corrs[f] for f in FOLDS], 0)
    print("residual correlation on the left-out families (mean of the folds; targets " + ", ".join(targets) + "):")
    print(np.array2string(corr, precision=2))
    print("| left-out family | M(< R_out): bias / scatter / 68 % (Gaussian) | s_F, M(< R_out) | s_F, total |")
    print("|---|---|---:|---:|")
    for f in FOLDS:
        v = folds[f][T]
        print(f"| {f} | {v['bias']:+.3f} / {v['scatter']:.3f} / {v['cov68']:.2f} | {v['s_F']:.3f} | "
              f"{folds[f]['log10_mass_total']['s_F']:.3f} |")
    print("rms: " + ", ".join(f"{t} {v:.3f}" for t, v in sysd.items()))
    out = {"folds": folds, "systematic_dex": sysd, "systematic_correlation": corr.tolist(), "targets": targets,
           "sets": {}}
    print("\n| set | M(< R_out) 68 % / 95 % (Gaussian), without | with the term |")
    print("|---|---|---|")
    for name, (rep, f, split) in {"test split": ("report_maps", "maps.h5", "test"),
                                  "independent": ("report_independent", "independent.h5", "all"),
                                  "unknown": ("report_unknown", "unknown.h5", "all"),
                                  "early-ood": ("report_early_ood", "early_ood.h5", "all")}.items():
        if not (w / rep / "predictions.npz").exists():  # written by npe_default_priors.py
            continue
        d = np.load(w / rep / "predictions.npz")
        key = [k for k in d.files if "npe" in k and k.endswith(f"|{T}|mean")][0]
        m, s = d[key], d[key.replace("|mean", "|std")]
        y = np.asarray(read_mapset(w / f, split=split, with_truth=False).targets[T], float)
        s2 = np.hypot(s, sysd[T])
        row = {"without": [gaussian_cover(y, m, s, 0.9945), gaussian_cover(y, m, s, 1.96)],
               "with": [gaussian_cover(y, m, s2, 0.9945), gaussian_cover(y, m, s2, 1.96)]}
        out["sets"][name] = row
        print(f"| {name} | {row['without'][0]:.2f} / {row['without'][1]:.2f} | {row['with'][0]:.2f} / "
              f"{row['with'][1]:.2f} |")
    (w / "npe_family_systematic.json").write_text(json.dumps(out, indent=1))
    if a.apply:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
        from measure_family_systematic import write_systematic

        write_systematic(a.apply, sysd, "benchmarks/npe_family_systematic.py", correlation=(targets, corr))


if __name__ == "__main__":
    main()
