"""mass-npe's scatter at N = 100 and 200 with and without hidden rotation: is the floor physics or the network?

    python benchmarks/npe_floor_physics.py OUT_DIR [--epochs 20] [--train-galaxies 2000] [--test-galaxies 500]

Two trainings that differ in one physics switch only: disk galaxies as in Kaur et al. (isotropic GCs,
``--beta 0``) with rotation (``--f-rot 0:0.5``, the default) or without (``--f-rot 0``). Everything else is
``benchmarks/npe_flow_choice.py``'s run 2 recipe (2,000 galaxies x 20 views, ``--subsample 0.1:1``, the
registry's affine flow, batch 128, one thread each, side by side, seed 0), and each model is tested with
``gcml evaluate`` on 500 independent galaxies of its own physics (one view each, 100 and 200 GCs).

Without rotation and with isotropic orbits the simulated galaxies meet the assumptions of the Cramer-Rao
floor the issue quotes (0.434 sqrt(2/N) dex: anisotropy known, no rotation; the tracer profile is fitted from
the same GCs), so the scatter there says how close this network gets to the floor when no hidden physics
stands in the way; the difference between the two says what rotation at an unknown inclination costs
(docs/npe-results.md, "Part of the floor is physics").
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from npe_flow_choice import FLOWS  # noqa: E402  (the same affine flow and training call)
from npe_flow_choice import _train as train_one  # noqa: E402

VARIANTS = {"rotating": ["--f-rot", "0:0.5"], "no-rotation": ["--f-rot", "0"]}
NS = (100, 200)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--train-galaxies", type=int, default=2000)
    ap.add_argument("--test-galaxies", type=int, default=500)
    ap.add_argument("--train-one", nargs=2, metavar=("DATA", "OUT"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    arch = json.dumps(FLOWS["maf 3x32"])
    if a.train_one:
        train_one(*a.train_one, arch, a.epochs)
        return
    out = a.out
    out.mkdir(parents=True, exist_ok=True)
    g = [sys.executable, "-m", "gcml"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    print(f"load average at start: {os.getloadavg()}", flush=True)
    for name, opts in VARIANTS.items():
        train = out / f"train_{name}.h5"
        if not train.exists():
            subprocess.run([*g, "simulate-maps", "-o", train, "--family", "disk", "--n-galaxies", str(a.train_galaxies),
                            "--views", "20", "--subsample", "0.1:1", "--seed", "21", *opts, "--catalogues", "-q"],
                           check=True, env=env)
    t0 = time.perf_counter()
    procs = {name: subprocess.Popen([sys.executable, __file__, str(out), "--epochs", str(a.epochs), "--train-one",
                                     str(out / f"train_{name}.h5"), str(out / name)], env=env)
             for name in VARIANTS if not (out / name / "best.pt").exists()}
    for p in procs.values():
        if p.wait():
            raise SystemExit("training failed")
    if procs:
        print(f"trained in {time.perf_counter() - t0:.0f} s", flush=True)
    rows = {}
    for name, opts in VARIANTS.items():
        for n in NS:
            test = out / f"test_{name}_n{n}.h5"
            if not test.exists():
                subprocess.run([*g, "simulate-maps", "-o", test, "--family", "disk", "--n-galaxies", str(a.test_galaxies),
                                "--views", "1", "--n-gc", str(n), "--seed", str(300 + n), *opts, "--catalogues", "-q"],
                               check=True, env=env)
            rep = out / f"report_{name}_n{n}"
            subprocess.run([*g, "evaluate", out / name / "best.pt", test, "--split", "all", "-o", rep, "--overwrite",
                            "-q"], check=True, env=env)
            rows[f"{name} {n}"] = json.loads((rep / "metrics.json").read_text())
    (out / "summary.json").write_text(json.dumps(rows, default=str))
    print(f"load average at end: {os.getloadavg()}")
    print(table(rows))


def table(rows: dict) -> str:
    """Markdown: M(< R_out) scatter and bias, the TME's scatter, the Cramer-Rao floor and the ratio."""
    lines = ["| disk galaxies | GCs | M(< R_out) scatter [dex] | bias | 68 % / 95 % coverage | TME scatter | "
             "Cramer-Rao floor | scatter / floor |", "|---|---:|---:|---:|---|---:|---:|---:|"]
    for key, d in rows.items():
        name, n = key.rsplit(" ", 1)
        (_, m), = d["models"].items()
        r = m["log10_mass_within_rout"]
        floor = 0.434 * math.sqrt(2.0 / int(n))
        base = d.get("baseline") or {}
        lines.append(f"| {name} | {n} | {r['scatter_dex']:.3f} | {r['bias_dex']:+.3f} | {r['coverage_68']:.2f} / "
                     f"{r['coverage_95']:.2f} | {base.get('scatter_dex', float('nan')):.3f} | {floor:.3f} | "
                     f"{r['scatter_dex'] / floor:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
