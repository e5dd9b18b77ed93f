"""Input preparation of pi-DOC models on noisy, unsmoothed survey-like images: candidates and models.

Makes mock images of held-out clusters (the shipped default's test clusters mw15-r1.6-s2, mw15-s10,
mw15-r4-s10) with ``gcml mock-observe``: clean (smoothed, as the training mocks), and PS1 3pi stack /
SDSS depth *unsmoothed* (``--smoothing 0``, what a survey frame is), then scores

* ``--candidates``: preparations of the noisy unsmoothed images for one model (default: the shipped
  default): no smoothing + log10 floor 1e-9 (gcml predict before issue 11); sigma = 4 px smoothing + log10
  floor 1e-9; smoothing + log10 with a floor at the image's smoothed noise; smoothing + softlog10 with the
  softening at the image's noise; smoothing + softlog10 with a fixed softening;
* ``--models A.pt B.pt``: each model with its own recorded preparation on the clean and noisy sets, as
  ``gcml predict`` prepares an image (``ImagePreparation.prepare``; no centre refinement, one rotation).

Metrics per set: total mass in the field (MAE and bias in dex, 68 % coverage), pi-DOC's pixel error,
distance and age MAE, and the fraction of impossible outputs (age <= 0 or > 14.5 Gyr, distance <= 0).

Usage::

    python benchmarks/bench_pidoc_preparation.py SNAPSHOTS WORK [--candidates] [--models A.pt B.pt]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from train_noise_aware_pidoc import TEST, mock  # noqa: E402

SETS = {  # name: (survey, smoothing, seed, psf)
    "clean": ("clean", 4.0, 11, "0.5:1.5:0.25"),
    "ps1-raw": ("ps1", 0.0, 12, "0.8:1.8:0.1"),
    "sdss-raw": ("sdss", 0.0, 13, "0.8:1.8:0.1"),
}


def make_sets(snapshots: Path, work: Path, n: int) -> dict[str, Path]:
    sub = work / "test-snapshots"
    sub.mkdir(parents=True, exist_ok=True)
    for sim in TEST:
        for p in [*sorted(snapshots.glob(f"{sim}_age*.h5")), *snapshots.glob(f"{sim}.manifest.json")]:
            q = sub / p.name
            if not q.exists():
                q.symlink_to(p.resolve())
    out = {}
    for name, (survey, sm, seed, psf) in SETS.items():
        p = work / f"test-{name}.h5"
        if not p.exists():
            mock(sub, p, survey, n, seed, psf=psf, smoothing=sm)
        out[name] = p
    return out


def load(path: str | Path):
    from gcml.models.preparation import ImagePreparation
    from gcml.models.trained import TrainedModel

    tm = TrainedModel.load(path)
    bundle = tm.bundle.to_dict()
    return tm.network, tm.task, bundle, ImagePreparation.from_bundle(bundle)


def run_net(net, task, x_enc: np.ndarray, batch: int = 64) -> dict[str, np.ndarray]:
    import torch

    outs = []
    with torch.no_grad():
        for s in range(0, len(x_enc), batch):
            outs.append(task.collect(net(torch.from_numpy(x_enc[s:s + batch].astype(np.float32)))).float())
    d = task.decode_parts(torch.cat(outs))
    return {k: v.double().numpy() for k, v in d.items()}


def score(d: dict[str, np.ndarray], ms, task) -> dict[str, float]:
    mass = ms.truth["mass"][:, 0].astype(np.float64)
    n = len(mass)
    lt = np.log10(mass.reshape(n, -1).sum(1))
    lm = np.log10(np.maximum(mass.reshape(n, -1), task.mass_floor))
    r = d["log10_total"] - lt
    res = {"n": n, "mass_mae_dex": float(np.abs(r).mean()), "mass_bias_dex": float(r.mean()),
           "mass_cov68": float((np.abs(r) <= d["log10_total_std"]).mean()),
           "pixel_error_pct": float((100 * np.abs(10 ** d["log10_map"] - 10 ** lm) / 10 ** lm).mean()),
           "total_error_pct": float((100 * np.abs(10 ** r - 1)).mean())}
    names = list(task.scalar_names)
    for j, nm in enumerate(names):
        t = np.asarray(ms.targets[nm], float)
        res[f"{nm}_mae"] = float(np.abs(d["scalar"][:, j] - t).mean())
        if "scalar_lo" in d:  # the model's 68 % interval (asymmetric for parametrised outputs)
            res[f"{nm}_cov68"] = float(((d["scalar_lo"][:, j] <= t) & (t <= d["scalar_hi"][:, j])).mean())
        else:
            res[f"{nm}_cov68"] = float((np.abs(d["scalar"][:, j] - t) <= d["scalar_std"][:, j]).mean())
    ia, idist = names.index("age"), names.index("distance")
    bad = (d["scalar"][:, ia] <= 0) | (d["scalar"][:, ia] > 14.5) | (d["scalar"][:, idist] <= 0)
    res["impossible_frac"] = float(bad.mean())
    return res


def standardise(task, x: np.ndarray) -> np.ndarray:
    return (x - float(task.x_mean[0])) / float(task.x_std[0])


def candidates(model: str, sets: dict[str, Path]) -> dict[str, dict]:
    from gcml.io.mapset import read_mapset
    from gcml.models.preparation import ImagePreparation, noise_sigma, smoothed_noise_sigma

    net, task, _, prep = load(model)
    out = {}
    for name in ("ps1-raw", "sdss-raw"):
        ms = read_mapset(sets[name])
        raw = ms.maps[:, 0].astype(np.float64)
        sm, _ = prep.smooth(raw)
        sig = np.array([smoothed_noise_sigma(noise_sigma(f), prep.smoothing_px) for f in raw])
        cands = {
            "no smoothing, log10 floor 1e-9": np.log10(np.maximum(raw, 1e-9)),
            "smoothing, log10 floor 1e-9": np.log10(np.maximum(sm, 1e-9)),
            "smoothing, log10 floor = noise": np.log10(np.maximum(sm, sig[:, None, None])),
            "smoothing, softlog10 b = noise": np.stack([
                ImagePreparation(transform="softlog10", softening=float(s)).transform_array(f) for s, f in zip(sig, sm, strict=True)]),
            "smoothing, softlog10 b = 7.2e-8 (fixed)": ImagePreparation(
                transform="softlog10", softening=7.22e-8).transform_array(sm),
        }
        for cname, x in cands.items():
            out[f"{name}: {cname}"] = score(run_net(net, task, standardise(task, x)[:, None]), ms, task)
            print(name, cname, json.dumps(out[f"{name}: {cname}"]), flush=True)
        out[f"{name}: median smoothed noise sigma"] = float(np.median(sig))
    return out


def models(paths: list[str], sets: dict[str, Path]) -> dict[str, dict]:
    from gcml.io.mapset import read_mapset

    out = {}
    for mp in paths:
        net, task, _, prep = load(mp)
        for name, p in sets.items():
            ms = read_mapset(p)
            already = SETS[name][1]
            # the prediction path: ImagePreparation.prepare per image (noise measured on unsmoothed inputs)
            x = standardise(task, np.stack([prep.prepare(f, already_px=already).x for f in ms.maps[:, 0]]))
            out[f"{Path(mp).name} | {name}"] = score(run_net(net, task, x[:, None]), ms, task)
            print(Path(mp).name, name, json.dumps(out[f"{Path(mp).name} | {name}"]), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("snapshots", type=Path)
    ap.add_argument("work", type=Path)
    ap.add_argument("--n", type=int, default=10, help="images per snapshot per set")
    ap.add_argument("--candidates", action="store_true")
    ap.add_argument("--candidate-model", default=str(ROOT / "gcml/data/models/pidoc-net-default.pt"))
    ap.add_argument("--models", nargs="*", default=[])
    ap.add_argument("--register", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    sets = make_sets(a.snapshots, a.work, a.n)
    res = {}
    if a.candidates:
        res["candidates"] = candidates(a.candidate_model, sets)
    if a.models:
        res["models"] = models(a.models, sets)
    out = a.work / "bench_pidoc_preparation.json"
    old = json.loads(out.read_text()) if out.exists() else {}
    old.update(res)
    out.write_text(json.dumps(old, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
