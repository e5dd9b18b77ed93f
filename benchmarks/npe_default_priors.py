"""mass-npe trained on the shipped default's priors, against the shipped mass-cnn-default on the same galaxies.

The training MapSet is the default model's (``scripts/train_default_mass_model.py``: early-type galaxies on
the broadened priors of issue 12 plus Kaur et al.'s disks and mergers, 1,600 galaxies x 40 views, SLUGGS
velocity errors, seed 2021; it stores each view's GC catalogue), so mass-npe sees exactly the galaxies the
CNN saw and both are tested on the same held-out galaxies::

    gcml train mass-npe --data WORK/maps.h5 -o WORK/npe --epochs 8 --batch-size 128 --lr 1e-3 \\
        --lr-schedule cosine --threads 2 --patience 0 --seed 2021
    gcml simulate-maps -o WORK/independent.h5 --family early,disk,early,merger --n-galaxies 2000 --views 1 \\
        --n-gc 300 --subsample 0.1:1 --v-error-model sluggs --seed 2121        # independent test galaxies
    gcml evaluate WORK/npe/best.pt mass-cnn-default.pt SET -o WORK/report_SET --split S
        # SET: maps.h5 (its test split), independent.h5, unknown.h5, early_ood.h5 (the held-out families)
    gcml predict forbes2017_table5_gc_velocities.tsv --galaxy all --split-half --samples 1000 --seed 0 \\
        [--model WORK/npe/best.pt] -o WORK/sluggs_{npe,cnn}

Usage::

    python benchmarks/npe_default_priors.py WORK          # WORK holds maps.h5, unknown.h5, early_ood.h5
    python benchmarks/npe_default_priors.py WORK --table  # print the tables of WORK/summary.json again

(``python scripts/train_default_mass_model.py --work WORK`` makes the three MapSets.) Prints Markdown tables:
M(< R_out) scatter, bias and coverage of both models and the tracer mass estimator per set, scatter in bins
of N against the Cramer-Rao floor, the calibration diagnostics, and the SLUGGS split-half consistency.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CNN = ROOT / "gcml" / "data" / "models" / "mass-cnn-default.pt"
SLUGGS = ROOT.parent / "shared" / "data" / "sluggs" / "forbes2017_table5_gc_velocities.tsv"
SETS = {"test split": ("maps.h5", "test"), "independent": ("independent.h5", "all"),
        "unknown": ("unknown.h5", "all"), "early-ood": ("early_ood.h5", "all")}
T = "log10_mass_within_rout"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("work", type=Path)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--independent-galaxies", type=int, default=2000)
    ap.add_argument("--table", action="store_true", help="print the tables of WORK/summary.json and stop")
    a = ap.parse_args()
    w = a.work
    if a.table:
        print(tables(json.loads((w / "summary.json").read_text())))
        return
    g = [sys.executable, "-m", "gcml"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    npe = w / "npe" / "best.pt"
    if not npe.exists():
        subprocess.run([*g, "train", "mass-npe", "--data", w / "maps.h5", "-o", w / "npe", "--epochs", str(a.epochs),
                        "--batch-size", "128", "--lr", "1e-3", "--lr-schedule", "cosine", "--threads", "2",
                        "--patience", "0", "--seed", "2021", "-q"], check=True, env=env)
    if not (w / "independent.h5").exists():
        subprocess.run([*g, "simulate-maps", "-o", w / "independent.h5", "--family", "early,disk,early,merger",
                        "--n-galaxies", str(a.independent_galaxies), "--views", "1", "--n-gc", "300",
                        "--subsample", "0.1:1", "--v-error-model", "sluggs", "--seed", "2121", "-q"],
                       check=True, env=env)
    out: dict = {"sets": {}, "sluggs": {}}
    for name, (f, split) in SETS.items():
        rep = w / f"report_{f.removesuffix('.h5')}"
        if not (rep / "metrics.json").exists():
            subprocess.run([*g, "evaluate", npe, CNN, w / f, "--split", split, "-o", rep, "--overwrite", "-q"],
                           check=True, env=env)
        out["sets"][name] = json.loads((rep / "metrics.json").read_text())
    for tag, model in (("npe", [npe]), ("cnn", [])):
        d = w / f"sluggs_{tag}"
        if not (d / "summary.ecsv").exists():
            subprocess.run([*g, "predict", SLUGGS, "--galaxy", "all", "--split-half", "--samples", "1000", "--seed",
                            "0", "-o", d, "--overwrite", "-q", *sum((["--model", m] for m in model), [])],
                           check=True, env=env)
        out["sluggs"][tag] = sluggs_summary(d / "summary.ecsv")
    (w / "summary.json").write_text(json.dumps(out, default=str))
    print(tables(out))


def sluggs_summary(path: Path) -> dict:
    """Per galaxy: M(< R_out) median and 68 % interval, the split-half difference and its 68 % width."""
    import numpy as np
    from astropy.table import Table

    t = Table.read(path, format="ascii.ecsv")
    rows = {}
    for r in t:
        if r["status"] != "predicted":
            continue
        rows[str(r["galaxy"])] = {k: (float(r[k]) if np.isfinite(r[k]) else None)
                                  for k in ("logM_rout", "logM_rout_p16", "logM_rout_p84", "split_diff", "split_sigma",
                                            "logM_tme") if k in t.colnames}
    return rows


def _label(d: dict, key: str) -> str:
    (lab,) = [k for k in d["models"] if key in k]
    return lab


def tables(out: dict) -> str:
    lines = ["| set | model | M(< R_out) scatter [dex] | bias [dex] | 68% / 95% coverage | TME scatter / bias |",
             "|---|---|---:|---:|---|---|"]
    for name, d in out["sets"].items():
        base = d.get("baseline") or {}
        for tag, key in (("mass-npe", "npe"), ("mass-cnn-default", "mass-cnn-default")):
            r = d["models"][_label(d, key)][T]
            lines.append(f"| {name} | {tag} | {r['scatter_dex']:.3f} | {r['bias_dex']:+.3f} | "
                         f"{r['coverage_68']:.2f} / {r['coverage_95']:.2f} | "
                         f"{base.get('scatter_dex', float('nan')):.3f} / {base.get('bias_dex', float('nan')):+.3f} |")
    lines += ["", "| set | GCs per galaxy (bin) | galaxies | mass-npe | mass-cnn-default | TME | Cramer-Rao floor |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for name in ("test split", "independent"):
        d = out["sets"][name]
        bn = d["models"][_label(d, "npe")][T]["scatter_vs_n"]["bins"]
        bc = {(b["n_lo"], b["n_hi"]): b for b in d["models"][_label(d, "mass-cnn-default")][T]["scatter_vs_n"]["bins"]}
        bt = {(b["n_lo"], b["n_hi"]): b for b in (d.get("baseline") or {}).get("scatter_vs_n", {}).get("bins", [])}
        for b in bn:
            k = (b["n_lo"], b["n_hi"])
            lines.append(f"| {name} | {b['n_lo']:.0f}-{b['n_hi']:.0f} (median {b['n_median']:.0f}) | {b['count']} | "
                         f"{b['scatter_dex']:.3f} | {bc[k]['scatter_dex']:.3f} | "
                         f"{bt[k]['scatter_dex'] if k in bt else float('nan'):.3f} | {b['cramer_rao_dex']:.3f} |")
    lines += ["", "| set | model | 68% coverage, 6 targets | 95% coverage | min SBC KS p | TARP max dev |",
              "|---|---|---|---|---:|---:|"]
    for name, d in out["sets"].items():
        for tag, key in (("mass-npe", "npe"), ("mass-cnn-default", "mass-cnn-default")):
            cal = d["calibration"][_label(d, key)]
            pt = cal["per_target"].values()
            c68 = [c["coverage"]["0.68"] for c in pt]
            c95 = [c["coverage"]["0.95"] for c in pt]
            ks = min(c["sbc"]["ks_p"] for c in pt if "sbc" in c) if any("sbc" in c for c in pt) else float("nan")
            tarp = (cal.get("tarp") or {}).get("max_abs_deviation", float("nan"))
            lines.append(f"| {name} | {tag} | {min(c68):.2f}-{max(c68):.2f} | {min(c95):.2f}-{max(c95):.2f} | "
                         f"{ks:.3g} | {tarp:.3f} |")
    s = out.get("sluggs") or {}
    if s:
        lines += ["", "| SLUGGS (27 galaxies) | split halves agree (68 %) | median M(< R_out) npe - cnn [dex] | "
                  "rms npe - cnn | median npe - TME |", "|---|---|---:|---:|---:|"]
        import numpy as np

        for tag in s:
            rows = s[tag]
            sp = [abs(r["split_diff"]) <= r["split_sigma"] for r in rows.values()
                  if r.get("split_diff") is not None and r.get("split_sigma") is not None]
            common = [k for k in rows if k in s.get("cnn", {})]
            dd = np.array([rows[k]["logM_rout"] - s["cnn"][k]["logM_rout"] for k in common])
            dt = np.array([rows[k]["logM_rout"] - rows[k]["logM_tme"] for k in rows
                           if rows[k].get("logM_tme") is not None])
            lines.append(f"| {tag} | {sum(sp)} of {len(sp)} ({sum(sp) / max(len(sp), 1):.2f}) | "
                         f"{np.median(dd):+.3f} | {np.sqrt(np.mean(dd ** 2)):.3f} | {np.median(dt):+.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
