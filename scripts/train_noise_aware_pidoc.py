"""Train a noise-aware pi-DOC model on survey-like mock images (PS1 3pi stack and SDSS depth) on one CPU thread.

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
3. ``pidoc-net`` (filters 8-64) with the softlog10 input transform (softening b = the smoothed per-pixel
   noise of the PS1-depth images, ``gcml.models.preparation``) and parametrised distance (log) and age
   (logit on (0, 14.5] Gyr) (``gcml.models.physical_outputs``), Adam 2e-3 cosine, batch 16, one thread.

Usage::

    python scripts/train_noise_aware_pidoc.py WORKDIR [--snapshots DIR] [--epochs 20] [--threads 1]
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


# ---------------------------------------------------------------------------------------------------
# the task (see NoiseAwareTask's docstring)
import numpy as np  # noqa: E402
import torch  # noqa: E402

from gcml.models import physical_outputs as po  # noqa: E402
from gcml.models.tasks.maps import MapScalarRegressionTask, _minmax, log10_sum_exp10  # noqa: E402


class NoiseAwareTask(MapScalarRegressionTask):
    """pidoc-net's task with the recorded preparation's input transform and parametrised scalars.

    Kept in this script until the map task itself carries both (after issue 14 moves the tasks to
    gcml/models/tasks): its bundles name the task ``map-scalar-regression-physical``, which this gcml
    refuses to load rather than decode the parametrised outputs as linear ones.
    """

    name = "map-scalar-regression-physical"
    PREPARATION = None

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.scalar_transform = [po.DEFAULT_SCALAR_TRANSFORMS.get(n, "none") for n in self.scalar_names]
        self.preparation = self.PREPARATION

    def check_header(self, hdr, path):
        super().check_header(hdr, path)
        p = self.preparation
        self.input_transform = [p.transform]
        self.input_floor = p.floor

    def transform_x(self, x):
        return self.preparation.transform_tensor(x)

    def _norm_entries(self):
        return {"transform": list(self.input_transform), "floor": float(self.input_floor),
                "softening": float(self.preparation.softening)}

    def set_training_range(self, flux_total_train, meta, targets, split):
        super().set_training_range(flux_total_train, meta, targets, split)
        if split is not None and (split == 0).any() and "log10_flux_total" not in self.training_range:
            self.training_range["log10_flux_total"] = _minmax(np.log10(np.maximum(flux_total_train, 1e-300)))

    def fit(self, stats):
        super().fit(stats)
        sp = stats.split
        train = sp == 0 if sp is not None else slice(None)
        for j, name in enumerate(self.scalar_names):
            kind = self.scalar_transform[j]
            y = np.asarray(stats.targets[name], float)
            known = y[(sp <= 2) if sp is not None else slice(None)]
            po.check_in_range(kind, known, name)
            z = po.forward(kind, y[train])
            sd = float(z.std())
            self.y_offset[j] = float(z.mean())
            self.y_scale[j] = sd if sd > 0 else 1.0

    def _zt(self, y, device):
        return torch.stack([po.forward(k, y[:, j]) for j, k in enumerate(self.scalar_transform)], 1)

    def encode_y(self, y):
        p = self.n_pix
        pix = (torch.log10(y[:, :p].clamp_min(self.mass_floor)) - self.pix_mean) / self.pix_std
        z = self._zt(y[:, p:], y.device)
        sc = (z - self._t(self.y_offset, y.device)) / self._t(self.y_scale, y.device)
        return torch.cat([pix, sc], 1)

    def decode_parts(self, out):
        mu, lv, smu, slv = self._parts(out)
        s, m0 = self.pix_std, self.pix_mean
        lm = mu * s + m0
        res = {"log10_map": lm, "log10_total": log10_sum_exp10(lm)}
        res["log10_map_std"] = (torch.exp(0.5 * lv) * s * math.sqrt(self.pix_variance_scale) if lv is not None
                                else torch.full_like(lm, float("nan")))
        res["log10_total_std"] = torch.full_like(res["log10_total"], self.total_sigma_dex)
        yo, ys = self._t(self.y_offset, mu.device), self._t(self.y_scale, mu.device)
        z = smu * ys + yo
        if slv is not None:
            sz = torch.exp(0.5 * slv) * ys * torch.sqrt(self._t(self.variance_scale, mu.device))
        else:
            sz = self._t(self.sigma_const, mu.device).expand_as(z)
        res["scalar_z"], res["scalar_z_std"] = z, sz
        res["scalar"] = torch.stack([po.inverse(k, z[:, j]) for j, k in enumerate(self.scalar_transform)], 1)
        res["scalar_std"] = torch.stack([po.derivative(k, z[:, j]).abs() * sz[:, j]
                                         for j, k in enumerate(self.scalar_transform)], 1)
        res["scalar_lo"] = torch.stack([po.inverse(k, z[:, j] - sz[:, j]) for j, k in enumerate(self.scalar_transform)], 1)
        res["scalar_hi"] = torch.stack([po.inverse(k, z[:, j] + sz[:, j]) for j, k in enumerate(self.scalar_transform)], 1)
        return res

    def calibrate(self, out, y):
        self.pix_variance_scale = 1.0
        self.total_sigma_dex = float("nan")
        self.variance_scale = np.ones(len(self.scalar_names))
        self.sigma_const = np.ones(len(self.scalar_names))
        d = self.decode_parts(out)
        lm, lt, ys = self._truth(y)
        if self.k == 2:
            zz = (lm - d["log10_map"].double()) / d["log10_map_std"].double()
            self.pix_variance_scale = float((zz**2).mean())
        self.total_sigma_dex = float(torch.sqrt(((d["log10_total"].double() - lt) ** 2).mean()))
        zt = self._zt(ys, ys.device)
        r = zt - d["scalar_z"].double()
        if self.k == 2:
            self.variance_scale = ((r / d["scalar_z_std"].double()) ** 2).mean(0).numpy()
        else:
            self.sigma_const = torch.sqrt((r**2).mean(0)).numpy()
        return self.calibration()

    def bundle_entries(self):
        b = super().bundle_entries()
        b["targets"]["norm"]["scalar_transform"] = list(self.scalar_transform)
        b["preparation"] = self.preparation.to_dict()
        return b


def run(*args: str) -> None:
    print("+ gcml", " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "gcml", *args], check=True)


def mock(snaps: Path, out: Path, survey: str, n: int, seed: int, psf: str = "0.5:1.8:0.1",
         smoothing: float = 4.0, extra: tuple[str, ...] = ()) -> None:
    args = ["mock-observe", str(snaps), "-o", str(out), "--distance", "10:100:10", "--psf", psf,
            "--n-random", str(n), "--seed", str(seed), "--smoothing", str(smoothing), "--overwrite", "-q", *extra]
    if survey != "clean":
        args += noise_args(survey)
    run(*args)


def preparation():
    from gcml.models.preparation import ImagePreparation

    return ImagePreparation(
        transform="softlog10", softening=float(f"{smoothed_sigma('ps1'):.3g}"), floor=1e-9,
        psf_fwhm_range=(0.5, 1.8),
        noise=("mixture: 30% noiseless; 40% PS1 3pi stack depth (r 23.2, 5 sigma); 30% SDSS depth (r 22.2); "
               f"sky {SKY} mag/arcsec^2, Poisson, read noise {READ_NOISE} counts, field stars 3 and 10 per arcmin^2"),
        noise_sigma=(0.0, smoothed_sigma("sdss")))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("workdir", type=Path)
    ap.add_argument("--snapshots", type=Path, default=None)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--skip-data", action="store_true", help="reuse WORKDIR/images.h5")
    a = ap.parse_args()
    work = a.workdir
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    snaps = a.snapshots or work / "snapshots"
    if a.snapshots is None and not a.skip_data:
        for seed in range(1, N_SEEDS + 1):
            for preset in PRESETS:
                run("simulate-clusters", "-o", str(snaps), "--preset", preset, "--n-stars", "50000",
                    "--ages", "1:12.5:0.5", "--seed", str(seed), "--simulation", f"{preset}-s{seed}", "-q")
    images = work / "images.h5"
    if not a.skip_data:
        parts = []
        for survey, n, seed in (("clean", 3, 1), ("ps1", 4, 2), ("sdss", 3, 3)):
            p = work / f"images-{survey}.h5"
            mock(snaps, p, survey, n, seed)
            parts.append(str(p))
        run("merge", *parts, "-o", str(images), "--overwrite")
        resplit_by_simulation(images, VAL, TEST)
    t1 = time.perf_counter()
    from gcml.models.tasks import TASKS
    from gcml.training import TrainConfig, train

    prep = preparation()
    print(f"preparation: {prep.to_dict()}", flush=True)
    NoiseAwareTask.PREPARATION = prep
    TASKS["map-scalar-regression"] = NoiseAwareTask
    cfg = TrainConfig(model="pidoc-net", arch_kwargs={"filters": [8, 16, 32, 64]}, epochs=a.epochs,
                      batch_size=16, lr=2e-3, lr_schedule="cosine", early_stopping=0, seed=0,
                      threads=a.threads, device="cpu", max_memory_gb=8.0)
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


if __name__ == "__main__":
    main()
