"""CPU time of predicting all 27 SLUGGS galaxies (``gcml predict TABLE --galaxy all``), 1,000 Monte Carlo draws each.

    python benchmarks/bench_sluggs.py [--table PATH] [--samples 1000] [--split-half] [--no-plots] [--model PT]

Prints the CPU seconds of the whole run (reading the table, 27 predictions, outputs) in this process, the
time to import gcml/torch excluded, and the split-half consistency when asked for.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import cpu_seconds  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--table", type=Path, default=ROOT.parent / "shared" / "data" / "sluggs" /
                    "forbes2017_table5_gc_velocities.tsv")
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--split-half", action="store_true")
    ap.add_argument("--no-plots", action="store_true")
    ap.add_argument("--model", type=Path, help="model bundle (default: the shipped default); a mass-npe bundle "
                    "draws --samples posterior samples per galaxy")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    import astropy.table  # noqa: F401  (imports outside the timed region)
    import matplotlib.pyplot  # noqa: F401

    from gcml.prediction.survey import predict_survey

    with tempfile.TemporaryDirectory() as tmp:
        c0, w0 = cpu_seconds(), time.perf_counter()
        res = predict_survey(a.table, Path(tmp) / "out", model=a.model, n_samples=a.samples, seed=0,
                             split_half=a.split_half, plots=not a.no_plots)
        c1, w1 = cpu_seconds(), time.perf_counter()
    n_ok = sum(g.prediction is not None for g in res.galaxies)
    print(f"{len(res.galaxies)} galaxies ({n_ok} predicted), {a.samples} draws each, split-half {a.split_half}, "
          f"plots {not a.no_plots}: {c1 - c0:.1f} s CPU, {w1 - w0:.1f} s wall (1 torch thread; model "
          f"{a.model.name if a.model else 'default'})")
    agree, n = res.split_half_consistency()
    if n:
        print(f"split halves agree within 68 %: {agree}/{n} = {agree / n:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
