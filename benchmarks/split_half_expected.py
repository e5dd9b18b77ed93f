"""What split-half agreement rate should a real survey show? The same test on simulated galaxies (issue 12).

``gcml predict TABLE --galaxy all --split-half`` predicts two random halves of each galaxy's GCs and counts the
galaxies whose halves agree within the quadrature sum of their 68 % half-widths. 0.68 is expected only if
those intervals held nothing but the halves' independent sampling noise. A posterior also carries what the
GCs cannot tell (the orbital anisotropy, the halo's shape beyond the GCs, ...): that part is the same for both
halves of one galaxy and cancels in their difference, so a calibrated model agrees with itself *more* often
than 0.68. This script measures the rate the shipped model gives on simulated galaxies whose intervals are
known to be calibrated (the default recipe's test split) and on the held-out families, with the survey's
rule: each view's GCs split at random into halves, both halves made into maps by the same code as predict
(:func:`gcml.observe.kinematic.kinematic_maps`), the aperture (5, 10, 20, 50 kpc) nearest R_out, halves with
fewer than 10 GCs in the map skipped, half-widths without the model's systematic term (the survey's
definition, :func:`gcml.prediction.survey.split_half_difference`; the survey's Monte Carlo over GC resamples
is not repeated here: the network's own sigma is used). A mass-npe model (``--model mass-npe-default``)
reads each half's catalogue; its mean and sigma are those of ``--samples`` posterior draws per half.

    python benchmarks/split_half_expected.py WORK [--model MODEL] [--max-views 3000] [--seed 0] [--samples 1000]
        [--survey SUMMARY.ecsv]

The rate depends on the number of GCs (intervals of small catalogues are the least well calibrated), so
``--survey`` (a ``gcml predict --galaxy all --split-half`` summary) also prints the rate matched to the
survey's galaxies: for each galaxy with splits, the mean agreement of the simulated views whose number of GCs
in the map is within 25 % of the galaxy's, averaged over the galaxies (each weighted by its splits).

WORK holds the default recipe's maps.h5 (test split used), unknown.h5 and early_ood.h5
(``scripts/train_default_mass_model.py --work WORK``).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SETS = {"test split (training families)": ("maps.h5", "test"), "unknown": ("unknown.h5", "all"),
        "early-ood": ("early_ood.h5", "all")}


def split_half_rate(model: Path, mapset: Path, split: str, *, max_views: int, seed: int,
                    n_samples: int = 1000) -> dict[str, float]:
    from gcml.io.catalogues import read_catalogues
    from gcml.io.mapset import read_mapset
    from gcml.io.tables import MIN_GCS
    from gcml.models.trained import TrainedModel
    from gcml.observe.kinematic import kinematic_maps
    from gcml.prediction.catalogue import _geometry
    from gcml.prediction.survey import SPLIT_APERTURES

    rng = np.random.default_rng(seed)
    ms = read_mapset(mapset, split=split, with_truth=False)
    rows = np.flatnonzero(read_mapset(mapset, with_truth=False).split_mask(split))
    if len(rows) > max_views:
        keep = np.sort(rng.choice(len(rows), max_views, replace=False))
        rows, ms = rows[keep], ms.select(keep)
    cats = read_catalogues(mapset, rows)
    tm = TrainedModel.load(model)
    geom = _geometry(tm.bundle, model)
    cnt = cats.counts
    n_max = int(cnt.max())
    b = len(rows)
    x, y, v, e = (np.zeros((b, n_max), np.float32) for _ in range(4))
    half = np.zeros((b, n_max), np.int8)          # 1, 2: the two halves; 0 padding
    inmap = np.zeros((b, n_max), bool)
    for i in range(b):
        t = cats.table(i)
        n = len(t["x"])
        x[i, :n], y[i, :n], v[i, :n], e[i, :n] = t["x"], t["y"], t["v_los"], t["v_err"]
        inmap[i, :n] = t["in_map"].astype(bool)
        perm = rng.permutation(n)
        half[i, perm[: n // 2]] = 1
        half[i, perm[n // 2: n]] = 2
    if getattr(tm.task, "input_kind", "maps") == "catalogue":   # mass-npe: the halves' catalogues themselves
        from gcml.io.catalogues import Catalogues
        from gcml.models.npe import posterior_samples

        two = (np.concatenate([a, a]) for a in (x, y, v, e, inmap))
        hc = Catalogues.from_padded(*two, np.concatenate([half == 1, half == 2]))
        draws = posterior_samples(tm.network, tm.task, hc, n_samples, seed=seed, min_gc=tm.task.min_gc)
        mean, std = np.nanmean(draws, 0), np.nanstd(draws, 0)
    else:
        maps = kinematic_maps(np.concatenate([x, x]), np.concatenate([y, y]), np.concatenate([v, v]), geom,
                              v_err=np.concatenate([e, e]), mask=np.concatenate([half == 1, half == 2]))
        order = ("v", "sigma", "count")
        mean, std = tm.predict_maps(maps[:, [order.index(c) for c in tm.channels]])
    stat = tm.task.statistical_std(std)
    r_out = np.asarray(ms.meta["r_out_kpc"], float)
    ok = (((half == 1) & inmap).sum(1) >= MIN_GCS) & (((half == 2) & inmap).sum(1) >= MIN_GCS)
    agree, with_sys = [], []
    for i in np.flatnonzero(ok):
        ap = min(SPLIT_APERTURES, key=lambda a: abs(math.log(a / max(r_out[i], 1e-3))))
        j = tm.targets.index(f"log10_mass_within_{int(ap)}kpc")
        d = mean[i, j] - mean[b + i, j]
        agree.append(abs(d) <= math.hypot(stat[i, j], stat[b + i, j]))
        with_sys.append(abs(d) <= math.hypot(std[i, j], std[b + i, j]))
    return {"views": int(ok.sum()), "rate": float(np.mean(agree)), "rate_with_systematic": float(np.mean(with_sys)),
            "n_in": inmap.sum(1)[ok].astype(float), "agree": np.asarray(agree, float)}


def matched_rate(n_in: np.ndarray, agree: np.ndarray, survey_n: np.ndarray, weights: np.ndarray,
                 tol: float = 0.25) -> tuple[float, int]:
    """The agreement rate of simulated views matched in GC number to a survey's galaxies (module docstring);
    also the number of survey galaxies with matching views (>= 20 views each)."""
    rates, w = [], []
    for n, wt in zip(survey_n, weights, strict=True):
        m = np.abs(np.log(n_in / n)) <= math.log1p(tol)
        if m.sum() >= 20:
            rates.append(agree[m].mean())
            w.append(wt)
    return (float(np.average(rates, weights=w)) if rates else float("nan")), len(rates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("work", type=Path)
    ap.add_argument("--model", type=Path, default=ROOT / "gcml" / "data" / "models" / "mass-cnn-default.pt")
    ap.add_argument("--max-views", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--samples", type=int, default=1000, help="posterior draws per half (mass-npe)")
    ap.add_argument("--survey", type=Path, help="summary.ecsv of gcml predict --galaxy all --split-half: also the "
                    "rate matched to its galaxies' numbers of GCs in the map")
    a = ap.parse_args()
    sn = sw = None
    if a.survey is not None:
        from astropy.table import Table

        t = Table.read(a.survey, format="ascii.ecsv")
        has = np.asarray(t["n_splits"], float) > 0
        sn, sw = np.asarray(t["n_gc_in_map"], float)[has], np.asarray(t["n_splits"], float)[has]
    extra = " | matched to the survey's GC numbers |" if sn is not None else " |"
    print("| set | views | halves agree (68 %), survey rule | with the systematic term in the widths" + extra)
    print("|---|---:|---:|---:|" + ("---:|" if sn is not None else ""))
    for name, (f, split) in SETS.items():
        r = split_half_rate(a.model, a.work / f, split, max_views=a.max_views, seed=a.seed, n_samples=a.samples)
        row = f"| {name} | {r['views']} | {r['rate']:.2f} | {r['rate_with_systematic']:.2f} |"
        if sn is not None:
            m, k = matched_rate(r["n_in"], r["agree"], sn, sw)
            row += f" {m:.2f} ({k} of {len(sn)} galaxies matched) |"
        print(row, flush=True)


if __name__ == "__main__":
    main()
