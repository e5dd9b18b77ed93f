"""mass-npe: a neural spline flow against a small affine-coupling flow, same data, same training.

Trains both flows (``gcml.training.train``, identical configuration except ``arch_kwargs``; the two
trainings run side by side, one thread each) on one simulate-maps MapSet (disk + merger, 400 galaxies x 20
views, ``--subsample 0.1:1``, seed 21: the pilot's training set, docs/npe-results.md), then evaluates both
with ``gcml evaluate`` on test sets of *independent* galaxies (``--n-galaxies G --views 1``: one view per
galaxy) with 30, 100 and 200 GCs, and times 10,000 posterior draws for one 200-GC catalogue on one thread.

    python benchmarks/npe_flow_choice.py OUT_DIR [--epochs 15] [--test-galaxies 500]
    python benchmarks/npe_flow_choice.py OUT_DIR --test-family unknown     # the trained flows, another family

Prints a Markdown table: M(< R_out) scatter and bias, 68/95% coverage, SBC minimum KS p and TARP deviation
over the targets, and the sampling time, for each flow.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

# explicit, so the comparison does not change with the registry's defaults (since 2026-11-26 the affine one)
FLOWS = {"nsf": {"flow": "nsf", "transforms": 4, "flow_hidden": 64, "bins": 8},
         "maf 3x32": {"flow": "maf", "transforms": 3, "flow_hidden": 32}}


def _train(data: str, out: str, arch: str, epochs: int) -> None:
    from gcml.models.npe import CATALOGUE_COLUMNS, NPE_TARGETS
    from gcml.training import TrainConfig, train

    cfg = TrainConfig(model="mass-npe", epochs=epochs, batch_size=128, threads=1, early_stopping=0, seed=0,
                      channels=CATALOGUE_COLUMNS, targets=NPE_TARGETS, arch_kwargs=json.loads(arch))
    train(data, cfg, out, overwrite=True)


def _time_sampling(model: Path) -> float:
    import numpy as np
    import torch

    from gcml.models.trained import TrainedModel

    torch.set_num_threads(1)
    net = TrainedModel.load(model).network.eval()
    rng = np.random.default_rng(0)
    cat = np.zeros((1, 200, 6), np.float32)
    cat[0, :, :2] = rng.normal(0, 10, (200, 2))
    cat[0, :, 2] = rng.normal(0, 150, 200)
    cat[0, :, 3], cat[0, :, 4], cat[0, :, 5] = 10.0, 1.0, 1.0
    x = torch.from_numpy(cat)
    net.sample(x, 10_000, seed=0)
    ts = []
    for _ in range(7):
        t0 = time.perf_counter()
        net.sample(x, 10_000, seed=0)
        ts.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(ts))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--train-galaxies", type=int, default=400)
    ap.add_argument("--test-galaxies", type=int, default=500)
    ap.add_argument("--test-family", default="disk,merger", help="family of the test galaxies; another than the "
                    "training families' (e.g. unknown) evaluates the flows already trained in OUT_DIR")
    ap.add_argument("--train-one", nargs=3, metavar=("DATA", "OUT", "ARCH"), help=argparse.SUPPRESS)
    ap.add_argument("--table", action="store_true", help="print the table of OUT/summary.json and stop")
    a = ap.parse_args()
    tag = "" if a.test_family == "disk,merger" else "_" + a.test_family.replace(",", "+")
    if a.table:
        rows = json.loads((a.out / f"summary{tag}.json").read_text())
        print(table({k: {**{int(n): v for n, v in per.items() if n != "ms"}, "ms": per["ms"]} for k, per in rows.items()}))
        return
    if a.train_one:
        _train(*a.train_one, a.epochs)
        return
    out = a.out
    out.mkdir(parents=True, exist_ok=True)
    g = [sys.executable, "-m", "gcml"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    print(f"load average at start: {os.getloadavg()}", flush=True)
    train = out / "train.h5"
    if not train.exists():
        subprocess.run([*g, "simulate-maps", "-o", train, "--family", "disk,merger", "--n-galaxies",
                        str(a.train_galaxies), "--views", "20", "--subsample", "0.1:1", "--seed", "21", "-q"],
                       check=True, env=env)
    t0 = time.perf_counter()
    if tag and all((out / name.split()[0] / "best.pt").exists() for name in FLOWS):
        procs = {}
    else:
        procs = {name: subprocess.Popen([sys.executable, __file__, str(out), "--epochs", str(a.epochs), "--train-one",
                                         str(train), str(out / name.split()[0]), json.dumps(arch)], env=env)
                 for name, arch in FLOWS.items()}
    for p in procs.values():
        if p.wait():
            raise SystemExit("training failed")
    if procs:
        print(f"trained both in {time.perf_counter() - t0:.0f} s", flush=True)
    rows = {name: {} for name in FLOWS}
    for n in (30, 100, 200):
        test = out / f"test{tag}_n{n}.h5"
        if not test.exists():
            subprocess.run([*g, "simulate-maps", "-o", test, "--family", a.test_family, "--n-galaxies",
                            str(a.test_galaxies), "--views", "1", "--n-gc", str(n), "--seed", str(300 + n), "-q"],
                           check=True, env=env)
        for name in FLOWS:
            rep = out / f"report{tag}_{name.split()[0]}_n{n}"
            subprocess.run([*g, "evaluate", out / name.split()[0] / "best.pt", test, "--split", "all", "-o", rep,
                            "--overwrite", "-q"], check=True, env=env)
            rows[name][n] = json.loads((rep / "metrics.json").read_text())
    for name in FLOWS:
        rows[name]["ms"] = _time_sampling(out / name.split()[0] / "best.pt")
    (out / f"summary{tag}.json").write_text(json.dumps(rows, default=str))
    print(f"load average at end: {os.getloadavg()}")
    print(table(rows))


def table(rows: dict) -> str:
    """Markdown: per flow and N, M(< R_out) scatter/bias, its 68/95% coverage, SBC min KS p and TARP |dev|."""
    t = "M(< R_out)"
    lines = [f"| flow | GCs | {t} scatter [dex] | bias [dex] | TME scatter | 68% / 95% coverage ({t}) | "
             "coverage range, 6 targets | min SBC KS p | TARP max dev | 10,000 draws, 1 thread [ms] |",
             "|---|---:|---:|---:|---:|---|---|---:|---:|---:|"]
    for name, per in rows.items():
        for n in (30, 100, 200):
            d = per[n]
            (lab, m), = d["models"].items()
            r = m["log10_mass_within_rout"]
            cal = d["calibration"][lab]
            c68 = [c["coverage"]["0.68"] for c in cal["per_target"].values()]
            c95 = [c["coverage"]["0.95"] for c in cal["per_target"].values()]
            ks = min(c["sbc"]["ks_p"] for c in cal["per_target"].values())
            base = d.get("baseline") or {}
            lines.append(f"| {name} | {n} | {r['scatter_dex']:.3f} | {r['bias_dex']:+.3f} | "
                         f"{base.get('scatter_dex', float('nan')):.3f} | {r['coverage_68']:.2f} / {r['coverage_95']:.2f} | "
                         f"{min(c68):.2f}-{max(c68):.2f} / {min(c95):.2f}-{max(c95):.2f} | {ks:.3g} | "
                         f"{cal['tarp']['max_abs_deviation']:.3f} | {per['ms']:.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
