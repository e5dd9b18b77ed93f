"""Held-out comparison of gcml's SLUGGS masses with published dynamical masses.

    python benchmarks/compare_literature.py [--summary SUMMARY.ecsv | --table PATH] [--literature CSV] [--out CSV]

Without ``--summary`` it first runs all 27 SLUGGS galaxies through the shipped default (``predict_survey``, as
``bench_sluggs.py`` and ``gcml predict TABLE --galaxy all`` do; 1,000 draws, seed 0, about a minute of CPU) and
reads the summary table it writes. The published values are in ``benchmarks/data/literature_masses.csv`` (each
with its reference); nothing in gcml was tuned to them.

Method (documented in docs/real-galaxies.md):

* the published radius is converted to kpc at gcml's (SLUGGS) distance: an angular radius with that distance, a
  multiple of R_e with the SLUGGS R_e, a physical radius r at the paper's distance D_pub as r * D / D_pub;
* a dynamical mass within a fixed angle scales linearly with the distance (M ~ sigma^2 r / G, r ~ D), so a
  published enclosed mass is rescaled by D / D_pub when the paper's distance is known; total (virial) masses are
  not rescaled; where D_pub is unknown nothing is rescaled and the row is flagged;
* gcml's log M(< r) is interpolated linearly in log r between its apertures (5, 10, 20, 50 kpc and R_out), the
  median and the 16th/84th percentiles separately (an approximation to interpolating the samples); outside
  5-50 kpc the nearest segment is extrapolated and flagged; radii beyond R_out (where gcml's own masses are
  extrapolations through its priors) are flagged;
* difference = gcml median - published (dex); pull = difference / sqrt(w^2 + e^2), w = gcml's 68 % half-width on
  the side of the published value, e = the published error (0 where none is quoted; flagged).
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LITERATURE = ROOT / "benchmarks" / "data" / "literature_masses.csv"
APERTURES = (("logM_5kpc", 5.0), ("logM_10kpc", 10.0), ("logM_20kpc", 20.0), ("logM_50kpc", 50.0))


def _num(s: str) -> float:
    s = (s or "").strip()
    return float(s) if s else math.nan


def read_literature(path: Path = LITERATURE) -> list[dict]:
    """Rows of the literature CSV (``#`` comment lines skipped), numbers as floats (NaN where empty)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(line for line in f if not line.startswith("#")))
    for r in rows:
        for k in ("radius_kpc", "radius_arcsec", "radius_re", "log10_mass", "err_dex", "distance_mpc"):
            r[k] = _num(r[k])
    return rows


def gcml_at(radii: np.ndarray, logm: np.ndarray, r: float) -> tuple[float, bool]:
    """log M at r, linear in log r between the (sorted) radii; True when r lies outside them (extrapolated)."""
    o = np.argsort(radii)
    x, y = np.log10(radii[o]), logm[o]
    lr = math.log10(r)
    if lr <= x[0]:
        i, out = 0, lr < x[0]
    elif lr >= x[-1]:
        i, out = len(x) - 2, lr > x[-1]
    else:
        i, out = int(np.searchsorted(x, lr)) - 1, False
    t = (lr - x[i]) / (x[i + 1] - x[i])
    return float(y[i] + t * (y[i + 1] - y[i])), out


@dataclass
class Comparison:
    galaxy: str
    quantity: str
    radius_kpc: float            # at gcml's distance (NaN for totals)
    published: float             # log10 M at gcml's distance
    err: float
    gcml: float
    p16: float
    p84: float
    r_out: float
    reference: str
    flags: list[str] = field(default_factory=list)

    @property
    def diff(self) -> float:
        return self.gcml - self.published

    @property
    def pull(self) -> float:
        w = (self.p84 - self.gcml) if self.published > self.gcml else (self.gcml - self.p16)
        return self.diff / math.hypot(w, self.err)


def compare(summary, literature: list[dict]) -> list[Comparison]:
    """One :class:`Comparison` per literature row whose galaxy gcml predicted."""
    by_name = {str(g).replace(" ", "").upper(): i for i, g in enumerate(summary["galaxy"])}
    out = []
    for lit in literature:
        i = by_name.get(lit["galaxy"].replace(" ", "").upper())
        if i is None or str(summary["status"][i]) != "predicted":
            continue
        row = summary[i]
        d = float(row["distance"])
        d_pub = lit["distance_mpc"]
        flags: list[str] = []
        logm = lit["log10_mass"]
        if lit["quantity"] == "total":
            r = math.nan
            med, p16, p84 = (float(row[k]) for k in ("logM_total", "logM_total_p16", "logM_total_p84"))
            if np.isfinite(d_pub) and abs(d_pub / d - 1) > 0.02:
                flags.append(f"paper at {d_pub:g} Mpc, not rescaled (total mass)")
        else:
            scale = d / d_pub if np.isfinite(d_pub) else 1.0
            if np.isfinite(lit["radius_kpc"]):
                r = lit["radius_kpc"] * scale
            elif np.isfinite(lit["radius_arcsec"]):
                r = lit["radius_arcsec"] / 206264.806 * d * 1e3
            else:
                r = lit["radius_re"] * float(row["r_e"])
                flags.append("radius in R_e: SLUGGS R_e used")
            if np.isfinite(d_pub):
                logm += math.log10(scale)
            else:
                flags.append("paper distance unknown: not rescaled")
            rout = float(row["r_out"])
            radii = np.array([a for _, a in APERTURES] + [rout])
            vals = {}
            for q in ("", "_p16", "_p84"):
                y = np.array([float(row[k + q]) for k, _ in APERTURES] + [float(row["logM_rout" + q])])
                vals[q], extrap = gcml_at(radii, y, r)
            med, p16, p84 = vals[""], vals["_p16"], vals["_p84"]
            if extrap:
                flags.append("outside gcml's apertures: extrapolated")
            if r > rout * 1.02:
                flags.append(f"beyond R_out = {rout:.1f} kpc")
        if lit["err_dex"] == 0:
            flags.append("no published error")
        out.append(Comparison(lit["galaxy"], lit["quantity"], r, logm, lit["err_dex"], med, p16, p84,
                              float(row["r_out"]), lit["reference"], flags))
    return out


def summary_stats(rows: list[Comparison]) -> dict:
    d = np.array([c.diff for c in rows])
    p = np.array([c.pull for c in rows])
    return dict(n=len(rows), median_diff=float(np.median(d)), rms_diff=float(np.sqrt(np.mean(d ** 2))),
                within1=float(np.mean(np.abs(p) <= 1)), within2=float(np.mean(np.abs(p) <= 2)))


def markdown(rows: list[Comparison]) -> str:
    lines = ["| galaxy | quantity | r (kpc, gcml distance) | published log M | gcml log M (68 %) | difference (dex) | pull | "
             "reference | flags |", "|---|---|---|---|---|---|---|---|---|"]
    for c in rows:
        r = "total" if not np.isfinite(c.radius_kpc) else f"{c.radius_kpc:.1f}"
        e = f" ± {c.err:.2f}" if c.err > 0 else " (no error)"
        lines.append(f"| {c.galaxy} | {c.quantity} | {r} | {c.published:.2f}{e} | {c.gcml:.2f} ({c.p16:.2f}-{c.p84:.2f}) | "
                     f"{c.diff:+.2f} | {c.pull:+.1f} | {c.reference} | {'; '.join(c.flags)} |")
    return "\n".join(lines)


def stats_line(name: str, rows: list[Comparison]) -> str:
    if not rows:
        return f"{name}: none"
    s = summary_stats(rows)
    return (f"{name}: N = {s['n']}, median difference {s['median_diff']:+.2f} dex, rms {s['rms_diff']:.2f} dex, "
            f"|pull| <= 1: {s['within1']:.2f}, |pull| <= 2: {s['within2']:.2f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--summary", type=Path, help="an existing 'gcml predict --galaxy all' summary (ECSV)")
    ap.add_argument("--table", type=Path, default=ROOT.parent / "shared" / "data" / "sluggs" /
                    "forbes2017_table5_gc_velocities.tsv")
    ap.add_argument("--literature", type=Path, default=LITERATURE)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--out", type=Path, help="write the comparison as CSV here")
    ap.add_argument("--save-summary", type=Path, help="write the survey summary (ECSV) here, for --summary later")
    a = ap.parse_args()
    from astropy.table import Table

    if a.summary:
        summary = Table.read(a.summary, format="ascii.ecsv")
    else:
        import torch

        torch.set_num_threads(1)
        from gcml.prediction.survey import predict_survey, summary_table

        with tempfile.TemporaryDirectory() as tmp:
            res = predict_survey(a.table, Path(tmp) / "out", n_samples=a.samples, seed=0, plots=False)
            summary = summary_table(res.galaxies)
        if a.save_summary:
            summary.write(a.save_summary, format="ascii.ecsv", overwrite=True)
    rows = compare(summary, read_literature(a.literature))
    print(markdown(rows))
    print()
    print(stats_line("all rows", rows))
    enc = [c for c in rows if c.quantity == "enclosed"]
    print(stats_line("enclosed masses", enc))
    print(stats_line("enclosed, within R_out and with a published error",
                     [c for c in enc if not any(f.startswith(("beyond", "no published")) for f in c.flags)]))
    print(stats_line("total masses", [c for c in rows if c.quantity == "total"]))
    if a.out:
        with open(a.out, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["galaxy", "quantity", "radius_kpc", "published_log10_mass", "published_err_dex", "gcml_median",
                        "gcml_p16", "gcml_p84", "r_out_kpc", "difference_dex", "pull", "reference", "flags"])
            for c in rows:
                w.writerow([c.galaxy, c.quantity, f"{c.radius_kpc:.2f}", f"{c.published:.3f}", f"{c.err:.3f}",
                            f"{c.gcml:.3f}", f"{c.p16:.3f}", f"{c.p84:.3f}", f"{c.r_out:.2f}", f"{c.diff:.3f}",
                            f"{c.pull:.2f}", c.reference, "; ".join(c.flags)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
