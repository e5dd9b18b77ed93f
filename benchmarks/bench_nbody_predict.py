"""pi-DOC beyond gcml's own simulator: the real N-body files in ../shared/data/nbody through ``gcml predict``.

Two snapshots nobody on the gcml team made (webbjj/clustertools docs, MIT): an NBODY6++ ``conf.3``
(12,500 stars, 7,574 Msun) and an ASCII table (10,000 stars, 6,219 Msun). Both carry masses only, so
``gcml mock-observe --age 12 --metallicity 0.001`` gives the stars luminosities (12 Gyr, Z = 0.001,
docs/mock-observe.md). Each is observed along x, y, z at several distances and PSFs in a 60" image
(the cluster centred; the model's 40" field is cut out of it by ``gcml predict``), unsmoothed
(``--smoothing 0``, as a survey frame is) with PS1 3pi stack depth noise and field stars (the survey
options of ``scripts/train_noise_aware_pidoc.py``), written as FITS (``--fits``) and sent through
``gcml predict IMAGE.fits`` one by one (its library call, ``predict_image`` + ``save_image_prediction``). Truth: the mass in the field (the
FITS ``MASS`` extension, central 40"), the distance and the age. Reported: the error of each, and how often the truth
lies inside the reported 68 % interval.

Usage::

    python benchmarks/bench_nbody_predict.py WORK [--model M.pt] [--shared ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))

from train_noise_aware_pidoc import noise_args  # noqa: E402

FILES = {"nbody6pp_conf.3_0.dat": ["--pattern", "nbody6pp_conf.3_0.dat"],
         "clustertools_N10k.dat.10.dat": ["--pattern", "clustertools_N10k.dat.10.dat"]}


def gcml(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "gcml", *args], check=True, cwd=ROOT)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("work", type=Path)
    ap.add_argument("--model", default=None)
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--distances", default="15,30,60")
    ap.add_argument("--psf", default="1.0,1.5")
    a = ap.parse_args()
    work = a.work.resolve()
    from gcml.prediction.images import predict_image, save_image_prediction

    rows = []
    for name in FILES:
        src = a.shared / "nbody" / name
        fdir = work / f"fits-{name.split('.')[0]}"
        if not fdir.exists():
            gcml("mock-observe", str(src), "-o", str(work / f"{name}.h5"), "--age", "12", "--metallicity", "0.001",
                 "--distance", a.distances, "--psf", a.psf, "--axis", "x,y,z", "--smoothing", "0",
                 "--fov", "60", "--max-shift", "0",
                 "--seed", "21", "--fits", str(fdir), "--overwrite", "-q", *noise_args("ps1"))
        for fits in sorted(fdir.glob("image_*.fits")):
            from astropy.io import fits as pf

            with pf.open(fits) as h:
                hdr = h[0].header
                m = h["MASS"].data.astype(np.float64)
                c = (m.shape[0] - 160) // 2  # the model's 40" field around the cluster (the image centre)
                mass = float(m[c:c + 160, c:c + 160].sum())
                truth = {"distance": float(hdr["GCMLDIST"]), "age": float(hdr["GCMLAGE"]), "psf": float(hdr["GCMLPSF"]),
                         "log10_mass": float(np.log10(mass))}
            out = work / "pred" / fits.stem
            # the library call behind `gcml predict FITS -o OUT` (same code, without a Python start-up per image)
            pred = predict_image(fits, model=a.model)
            save_image_prediction(pred, out, overwrite=True)
            p = json.loads((out / f"{fits.stem}_prediction.json").read_text())
            rows.append({"file": name, "image": fits.name, **truth, "pred": p})
    res = {"n": len(rows)}

    def cover(v, lo, hi, t):
        return lo <= t <= hi

    dm = [r["pred"]["log10_mass_total"] - r["log10_mass"] for r in rows]
    res["mass_mae_dex"], res["mass_bias_dex"] = float(np.mean(np.abs(dm))), float(np.mean(dm))
    res["mass_cov68"] = float(np.mean([abs(d) <= r["pred"]["log10_mass_total_err"] for d, r in zip(dm, rows, strict=True)]))
    for q, unit in (("distance", "kpc"), ("age", "gyr")):
        err = [r["pred"][f"{q}_{unit}"] - r[q] for r in rows]
        res[f"{q}_mae"] = float(np.mean(np.abs(err)))
        res[f"{q}_bias"] = float(np.mean(err))
        res[f"{q}_rel_mae"] = float(np.mean(np.abs(err) / np.array([r[q] for r in rows])))
        res[f"{q}_cov68"] = float(np.mean([cover(r["pred"][f"{q}_{unit}"], r["pred"].get(f"{q}_lo_{unit}", r["pred"][f"{q}_{unit}"] - r["pred"][f"{q}_err_{unit}"]),
                                                 r["pred"].get(f"{q}_hi_{unit}", r["pred"][f"{q}_{unit}"] + r["pred"][f"{q}_err_{unit}"]), r[q]) for r in rows]))
    res["warned"] = float(np.mean([bool(r["pred"].get("warnings")) for r in rows]))
    per = {}
    for r in rows:
        k = f"{r['file']} d={r['distance']:g}"
        per.setdefault(k, []).append((r["pred"]["log10_mass_total"] - r["log10_mass"], r["pred"]["distance_kpc"], r["pred"]["age_gyr"]))
    res["per_file_distance"] = {k: {"mass_err_dex": float(np.mean([v[0] for v in vs])),
                                    "distance_kpc": float(np.mean([v[1] for v in vs])),
                                    "age_gyr": float(np.mean([v[2] for v in vs]))} for k, vs in per.items()}
    (work / "bench_nbody_predict.json").write_text(json.dumps({"summary": res, "rows": rows}, indent=1, default=str))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
