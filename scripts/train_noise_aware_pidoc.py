"""Train gcml's default pi-DOC model (``gcml/data/models/pidoc-net-default.pt``): noise-aware, on survey-like
mock images (noiseless, PS1 3pi stack and SDSS depth).

The shipped file is ``WORKDIR/run/best.pt`` of
``python scripts/train_noise_aware_pidoc.py WORKDIR --device cuda --jobs 15 --seeds 24 --epochs 22 --batch-size 32
--threads 4 --install`` on one H100 (1.8 min of data, 3.1 min of training; docs/model-cards/pidoc-net-default.md).
The recipe below was first sized for one CPU thread (36 clusters, 20 epochs, about 40 minutes):

Sized for about 40 minutes of training on one thread of the shared 2-core development CPU:

1. ``gcml simulate-clusters``: 36 clusters (presets mw15-r1.6, mw15, mw15-r4 x seeds 1-12), 50,000 stars,
   ages 1-12.5 Gyr every 0.5 Gyr (864 snapshots). The three test clusters are those of the shipped
   default's test split (mw15-r1.6-s2, mw15-s10, mw15-r4-s10), so both models are scored on the same
   held-out clusters; validation mw15-r4-s2, mw15-s2, mw15-r1.6-s3; 30 clusters train.
2. ``gcml mock-observe``, three runs merged (10 images per snapshot, 8,640 images), distance 10-100 kpc,
   Moffat PSF FWHM 0.5-1.8" (step 0.1), random 90-degree rotations, centre shifts up to 5", smoothing
   sigma = 4 px applied after the noise, as ``gcml predict`` applies it to an unsmoothed image:

   * clean (3 per snapshot): no noise, as pi-DOC's mocks;
   * PS1 3pi stack depth (4 per snapshot): 5-sigma point-source depth r = 23.2 (Chambers et al. 2016,
     arXiv:1612.05560, Table 11), sky 20.9 mag/arcsec^2, applied in V: ``--zeropoint 25 --exptime 130
     --sky-mag 20.9 --poisson --read-noise 5 --field-stars 3``;
   * SDSS depth (3 per snapshot): r = 22.2 (95 % completeness for point sources, Abazajian et al. 2004),
     sky 20.9 mag/arcsec^2: ``--exptime 28`` with the same sky, read noise, and 10 field stars per arcmin^2.

   The exposure times follow from the depth: for a sky-limited point source of effective area
   ``A = 4 pi (FWHM / 2.355)^2`` (FWHM 1.2" PS1, 1.4" SDSS), ``m_5 = zp + 2.5 log10(t / (5 sqrt(A S)))``
   with ``S`` the sky counts per arcsec^2, i.e. ``t = 25 A 10^(0.4 (2 m_5 - mu_sky - zp))``.
3. ``pidoc-net`` (filters 8-64) with the softlog10 input transform (``TrainConfig.input_transform``;
   softening b = the smoothed per-pixel noise of the PS1-depth images, ``gcml.models.preparation``) and
   parametrised distance (log) and age (logit on (0, 14.5] Gyr) (``TrainConfig.physical_outputs``,
   ``gcml.models.physical_outputs``), Adam 2e-3 cosine, batch 16; the noise model is recorded in the
   bundle's preparation (``TrainConfig.preparation``).

``--device cuda --jobs 16`` runs the same recipe on a GPU machine (the simulations and mock observations
in parallel processes; the files do not depend on the number of jobs).

Usage::

    python scripts/train_noise_aware_pidoc.py WORKDIR [--snapshots DIR] [--epochs 20] [--threads 1]
        [--device cpu|cuda] [--jobs N] [--seeds 12]
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))  # this checkout's gcml, also when run as a script

from train_default_pidoc import resplit_by_simulation  # noqa: E402

PRESETS = ("mw15-r1.6", "mw15", "mw15-r4")
N_SEEDS = 12
VAL = ("mw15-r4-s2", "mw15-s2", "mw15-r1.6-s3")
TEST = ("mw15-r1.6-s2", "mw15-s10", "mw15-r4-s10")
ZEROPOINT, SKY, READ_NOISE, PIXEL = 25.0, 20.9, 5.0, 0.25


def exptime_for_depth(m5: float, fwhm: float, sky: float = SKY, zp: float = ZEROPOINT) -> float:
    """Exposure [s] giving a 5-sigma sky-limited point-source depth ``m5`` (docstring)."""
    area = 4 * math.pi * (fwhm / 2.355) ** 2
    return 25 * area * 10 ** (0.4 * (2 * m5 - sky - zp))


SURVEYS = {  # name: (exptime, field stars per arcmin^2)
    "ps1": (round(exptime_for_depth(23.2, 1.2)), 3.0),
    "sdss": (round(exptime_for_depth(22.2, 1.4)), 10.0),
}


def noise_args(survey: str) -> list[str]:
    t, fs = SURVEYS[survey]
    return ["--zeropoint", str(ZEROPOINT), "--exptime", str(t), "--sky-mag", str(SKY), "--poisson",
            "--read-noise", str(READ_NOISE), "--field-stars", str(fs)]


def smoothed_sigma(survey: str, smoothing_px: float = 4.0) -> float:
    """Per-pixel noise [Lsun/kpc^2] of a survey's mock after the sigma = 4 px smoothing (sky + read noise)."""
    from gcml.models.preparation import smoothed_noise_sigma
    from gcml.observe.photometric import flux_to_counts_factor

    t, _ = SURVEYS[survey]
    sky = t * 10 ** (-0.4 * (SKY - ZEROPOINT)) * PIXEL**2
    return smoothed_noise_sigma(math.sqrt(sky + READ_NOISE**2) / flux_to_counts_factor(ZEROPOINT, t), smoothing_px)


def run(*args: str) -> None:
    print("+ gcml", " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "gcml", *args], check=True)


def run_all(commands: list[list[str]], jobs: int) -> None:
    """Run gcml commands, ``jobs`` at a time (each writes its own files, so the order does not matter)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max(1, jobs)) as pool:
        for f in [pool.submit(run, *c) for c in commands]:
            f.result()


def mock(snaps: Path, out: Path, survey: str, n: int, seed: int, psf: str = "0.5:1.8:0.1",
         smoothing: float = 4.0, extra: tuple[str, ...] = (), dry: bool = False) -> list[str] | None:
    args = ["mock-observe", str(snaps), "-o", str(out), "--distance", "10:100:10", "--psf", psf,
            "--n-random", str(n), "--seed", str(seed), "--smoothing", str(smoothing), "--overwrite", "-q", *extra]
    if survey != "clean":
        args += noise_args(survey)
    if dry:
        return args
    run(*args)
    return None


def preparation() -> dict:
    """What the training images went through beyond the MapSet's own record (TrainConfig.preparation)."""
    return {"psf_fwhm_range": [0.5, 1.8],
            "noise": ("mixture: 30% noiseless; 40% PS1 3pi stack depth (r 23.2, 5 sigma); 30% SDSS depth (r 22.2); "
                      f"sky {SKY} mag/arcsec^2, Poisson, read noise {READ_NOISE} counts, field stars 3 and 10 "
                      "per arcmin^2"),
            "noise_sigma": [0.0, smoothed_sigma("sdss")]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("workdir", type=Path)
    ap.add_argument("--snapshots", type=Path, default=None)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--jobs", type=int, default=1, help="gcml processes at a time for the data (and mock-observe "
                    "--workers)")
    ap.add_argument("--seeds", type=int, default=N_SEEDS, help="clusters per preset (>= 10: the held-out ones)")
    ap.add_argument("--n-stars", type=int, default=50000)
    ap.add_argument("--ages", default="1:12.5:0.5", help="simulate-clusters --ages (a smaller grid for trials)")
    ap.add_argument("--skip-data", action="store_true", help="reuse WORKDIR/images.h5")
    ap.add_argument("--install", action="store_true", help="copy the model to gcml/data/models/pidoc-net-default.pt")
    a = ap.parse_args()
    work = a.workdir
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    snaps = a.snapshots or work / "snapshots"
    if a.snapshots is None and not a.skip_data:
        run_all([["simulate-clusters", "-o", str(snaps), "--preset", preset, "--n-stars", str(a.n_stars),
                  "--ages", a.ages, "--seed", str(seed), "--simulation", f"{preset}-s{seed}", "-q"]
                 for seed in range(1, a.seeds + 1) for preset in PRESETS], a.jobs)
    images = work / "images.h5"
    if not a.skip_data:
        parts, cmds = [], []
        for survey, n, seed in (("clean", 3, 1), ("ps1", 4, 2), ("sdss", 3, 3)):
            p = work / f"images-{survey}.h5"
            cmds.append(mock(snaps, p, survey, n, seed, dry=True) + ["--workers", str(max(1, a.jobs // 3))])
            parts.append(str(p))
        run_all(cmds, 3)
        run("merge", *parts, "-o", str(images), "--overwrite")
        resplit_by_simulation(images, VAL, TEST)
    t1 = time.perf_counter()
    from gcml.training import TrainConfig, train

    softening = float(f"{smoothed_sigma('ps1'):.3g}")
    cfg = TrainConfig(model="pidoc-net", arch_kwargs={"filters": [8, 16, 32, 64]}, epochs=a.epochs,
                      batch_size=a.batch_size, lr=2e-3, lr_schedule="cosine", early_stopping=0, seed=0,
                      threads=a.threads, device=a.device, max_memory_gb=8.0, input_transform="softlog10",
                      softening=softening, physical_outputs=True, preparation=preparation())
    print(f"+ train {cfg}", flush=True)
    res = train(images, cfg, work / "run", overwrite=True,
                progress=lambda e, i: print(f"epoch {i['epoch']}: train {i['train_loss']:.4f} "
                                            f"val {i['val_loss']:.4f} ({time.perf_counter() - t1:.0f} s)",
                                            flush=True) if e == "epoch" else None,
                command="scripts/train_noise_aware_pidoc.py")
    for name, m in res.test_metrics.get("test", {}).items():
        print(f"test {name}: MAE {m['mae_dex']:.3f} bias {m['bias_dex']:+.3f} "
              f"68% coverage {m.get('coverage_68', float('nan')):.2f}"
              + (f" pixel error {m['pixel_percentage_error']:.1f}%" if "pixel_percentage_error" in m else ""))
    print(f"data {t1 - t0:.0f} s, training {time.perf_counter() - t1:.0f} s", flush=True)
    if a.install:
        import shutil

        dest = ROOT / "gcml" / "data" / "models" / "pidoc-net-default.pt"
        shutil.copyfile(work / "run" / "best.pt", dest)
        print(f"installed {dest}")


if __name__ == "__main__":
    main()
