"""Is mass-npe's scatter at N ~ 200 set by too few training galaxies? Ten times more, same catalogues (issue 13).

The default recipe (``benchmarks/npe_default_priors.py``) trains mass-npe on 1,600 galaxies x 40 views. Views of
one galaxy share its halo, anisotropy and GC profile, so the network sees 1,600 different sets of the
parameters that the GC velocities cannot pin down. This script trains the same network with the same command
on 16,000 galaxies x 4 views (the same 64,000 catalogues, the same families and priors, seed 2022) and
evaluates both on the same 2,000 independent galaxies (one view each) and the two held-out families::

    gcml simulate-maps -o WORK/wide.h5 --family early,disk,early,merger --n-galaxies 16000 --views 4 --n-gc 300 \\
        --subsample 0.1:1 --v-error-model sluggs --seed 2022
    gcml train mass-npe --data WORK/wide.h5 -o WORK/npe_wide --epochs 8 --batch-size 128 --lr 1e-3 \\
        --lr-schedule cosine --threads 2 --patience 0 --seed 2021
    gcml evaluate WORK/npe_wide/best.pt BASELINE WORK/SET.h5 --split all -o WORK/diversity_SET

    python benchmarks/npe_training_diversity.py WORK --baseline WORK/npe/best.pt

WORK is ``npe_default_priors.py``'s folder (independent.h5, unknown.h5, early_ood.h5). BASELINE is the model
trained on the default recipe, without a systematic term (the comparison is of the posteriors as trained).
Prints M(< R_out) scatter per bin of GC number beside the Cramer-Rao floor, and the calibration diagnostics.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

T = "log10_mass_within_rout"
SETS = ("independent", "unknown", "early_ood")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("work", type=Path)
    ap.add_argument("--baseline", type=Path, required=True, help="mass-npe trained on the default recipe")
    ap.add_argument("--epochs", type=int, default=8)
    a = ap.parse_args()
    w, g = a.work, [sys.executable, "-m", "gcml"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    wide = w / "npe_wide" / "best.pt"
    if not (w / "wide.h5").exists():
        subprocess.run([*g, "simulate-maps", "-o", w / "wide.h5", "--family", "early,disk,early,merger",
                        "--n-galaxies", "16000", "--views", "4", "--n-gc", "300", "--subsample", "0.1:1",
                        "--v-error-model", "sluggs", "--seed", "2022", "--workers", "2", "-q"], check=True, env=env)
    if not wide.exists():
        subprocess.run([*g, "train", "mass-npe", "--data", w / "wide.h5", "-o", wide.parent, "--epochs", str(a.epochs),
                        "--batch-size", "128", "--lr", "1e-3", "--lr-schedule", "cosine", "--threads", "2",
                        "--patience", "0", "--seed", "2021", "-q"], check=True, env=env)
    for s in SETS:
        rep = w / f"diversity_{s}"
        if not (rep / "metrics.json").exists():
            subprocess.run([*g, "evaluate", wide, a.baseline, w / f"{s}.h5", "--split", "all", "-o", rep,
                            "--overwrite", "-q"], check=True, env=env)
    docs = {s: json.loads((w / f"diversity_{s}" / "metrics.json").read_text()) for s in SETS}
    labels = list(docs["independent"]["models"])                     # [wide, baseline]
    names = {labels[0]: "16,000 x 4", labels[1]: "1,600 x 40"}
    print("| GCs (bin, independent galaxies) | galaxies | 1,600 x 40 | 16,000 x 4 | Cramer-Rao floor |")
    print("|---|---:|---:|---:|---:|")
    bins = [docs["independent"]["models"][lab][T]["scatter_vs_n"]["bins"] for lab in labels]
    for bw, bb in zip(*bins, strict=True):
        print(f"| {bw['n_lo']:.0f}-{bw['n_hi']:.0f} (median {bw['n_median']:.0f}) | {bw['count']} | "
              f"{bb['scatter_dex']:.3f} | {bw['scatter_dex']:.3f} | {bw['cramer_rao_dex']:.3f} |")
    print("\n| set | training galaxies x views | M(< R_out) bias / scatter | 68 % / 95 % | TARP | SBC KS p (5, 10, 20, "
          "50 kpc, R_out, total) |")
    print("|---|---|---|---|---:|---|")
    for s, d in docs.items():
        for lab in reversed(labels):
            r, cal = d["models"][lab][T], d["calibration"][lab]
            ks = ", ".join(f"{c['sbc']['ks_p']:.2g}" for c in cal["per_target"].values())
            print(f"| {s} | {names[lab]} | {r['bias_dex']:+.3f} / {r['scatter_dex']:.3f} | {r['coverage_68']:.2f} / "
                  f"{r['coverage_95']:.2f} | {cal['tarp']['max_abs_deviation']:.3f} | {ks} |")


if __name__ == "__main__":
    main()
