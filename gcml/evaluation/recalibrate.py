"""Recalibrating a trained mass-npe bundle on independent simulated galaxies (``gcml models calibrate``).

``gcml train`` fits the posterior's N-dependent spread on the validation views by matching variances
(:meth:`gcml.models.tasks.npe.CatalogueNPETask.calibrate`). :func:`refit_spread` refits it on the ranks of
the truths among posterior draws of galaxies seen once each (:func:`gcml.evaluation.calibration.
fit_spread_to_ranks`), the quantity simulation-based calibration tests, and writes a new bundle.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch


@dataclass
class SpreadRefit:
    """What :func:`refit_spread` did: the bundle written, the catalogues used, the spread before and after, and
    per target the 68 % / 95 % coverage and the SBC KS p-value on those catalogues before and after (in-sample:
    check the new bundle on other galaxies with ``gcml evaluate --no-systematic``)."""

    path: Path
    n_catalogues: int
    targets: list[str]
    spread_before: np.ndarray
    spread_after: np.ndarray
    before: dict[str, dict[str, float]]
    after: dict[str, dict[str, float]]


def refit_spread(model: str | Path, mapset: str | Path, out: str | Path, *, split: str = "all",
                 n_samples: int = 1000, seed: int = 0, overwrite: bool = False,
                 device: str | torch.device = "cpu") -> SpreadRefit:
    """Refit a mass-npe bundle's N-dependent spread on a MapSet of independent simulated galaxies (with
    catalogues and true targets) so that its posterior ranks are uniform, and write the result as a new bundle.

    ``gcml train`` fits the spread on the validation views by a Gaussian likelihood (:meth:`gcml.models.tasks.
    npe.CatalogueNPETask.calibrate`). This draws ``n_samples`` posterior samples per catalogue of ``split``
    (without the systematic term, which is kept in the bundle as it was) and fits, per target, a further factor
    ``exp(a + b ln(N / 100))`` by :func:`gcml.evaluation.calibration.fit_spread_to_ranks`. The galaxies should be
    drawn from the training priors and be other than those used to test the model. Everything else in the
    bundle is unchanged; ``calibration.spread_refit`` records the MapSet, its SHA-256, the catalogues, draws and
    seed.
    """
    import h5py

    from gcml.errors import InputError
    from gcml.evaluation.calibration import (
        coverage_samples,
        fit_spread_to_ranks,
        pit_from_ranks,
        sbc_ranks,
        uniformity_test,
    )
    from gcml.io.atomic import check_output_path
    from gcml.io.bundle import load_bundle, save_bundle
    from gcml.io.catalogues import read_catalogues
    from gcml.io.common import check_resources, sha256_file
    from gcml.io.mapset import SPLITS, read_header
    from gcml.models.npe import posterior_samples
    from gcml.models.tasks.npe import REFIT_MIN, REFIT_N_BINS, SPREAD_N0, CatalogueNPETask
    from gcml.models.trained import TrainedModel

    mpath, out = Path(mapset), Path(out)
    if int(n_samples) < 100:
        raise InputError(f"option `samples`: expected at least 100 posterior draws per catalogue, got {n_samples}")
    if split != "all" and split not in SPLITS:
        raise InputError(f"option `split`: expected all or one of {', '.join(SPLITS)}, got '{split}'")
    check_output_path(out, overwrite=overwrite)
    tm = TrainedModel.load(model, device=device)
    task = tm.task
    if not isinstance(task, CatalogueNPETask):
        raise InputError(f"{model}: is a {tm.architecture} model; gcml models calibrate refits the posteriors "
                         "of mass-npe models only")
    hdr = read_header(mpath)
    task.check_header(hdr, mpath)
    with h5py.File(mpath, "r") as f:
        sp = f["split"][()]
        rows = np.arange(len(sp)) if split == "all" else np.flatnonzero(sp == SPLITS[split])
        truth = np.stack([f["targets"][t][()][rows].astype(float) for t in task.targets], 1)
    # the draws (float32), their float64 copy and the centred draws, at least
    check_resources("models calibrate", memory=float(len(rows)) * int(n_samples) * len(task.targets) * (4 + 8 + 8))
    cat = read_catalogues(mpath, rows)
    systematic, corr = np.array(task.systematic, float), task.systematic_corr
    task.systematic, task.systematic_corr = np.zeros(len(task.targets)), None
    s = posterior_samples(tm.network, task, cat, int(n_samples), seed=int(seed), min_gc=task.min_gc,
                          device=device).astype(float)
    ok = np.isfinite(s[0]).all(1) & np.isfinite(truth).all(1)
    if ok.sum() < REFIT_MIN:
        raise InputError(f"{mpath}: {int(ok.sum())} catalogues of split '{split}' have at least {task.min_gc} GCs "
                         f"and finite targets; the refit needs at least {REFIT_MIN} (simulate more galaxies)")
    s, truth = s[:, ok], truth[ok]
    n_gc = cat.counts.astype(float)[ok]
    lg = np.log(np.maximum(n_gc, 1.0) / SPREAD_N0)
    slope = float(np.ptp(lg)) > 0.1
    mean = s.mean(0)
    centred = s - mean[None]
    resid = truth - mean

    def diagnostics(draws: np.ndarray) -> dict[str, dict[str, float]]:
        cov = coverage_samples(draws, truth, levels=(0.68, 0.95))
        u = pit_from_ranks(sbc_ranks(draws, truth), draws.shape[0], seed=seed)
        return {t: {"coverage_68": float(cov["0.68"][j]), "coverage_95": float(cov["0.95"][j]),
                    "ks_p": float(uniformity_test(u[:, j])["ks_p"])} for j, t in enumerate(task.targets)}

    before = diagnostics(s)
    old = np.array(task.spread, float)
    inc = np.stack([fit_spread_to_ranks(centred[:, :, j], resid[:, j], lg, n_bins=REFIT_N_BINS, slope=slope)
                    for j in range(len(task.targets))])
    after = diagnostics(mean[None] + centred * np.exp(inc[:, 0][None] + lg[:, None] * inc[:, 1][None])[None])
    b = load_bundle(tm.path or model)
    task.spread = old + inc
    task.spread_refit = {"mapset": mpath.name, "mapset_sha256": sha256_file(mpath), "split": split,
                         "catalogues": int(ok.sum()), "samples": int(n_samples), "seed": int(seed),
                         "n_bins": int(REFIT_N_BINS if slope else 1)}
    task.systematic, task.systematic_corr = systematic, corr
    cal = {**(b.get("calibration") or {}), **task.calibration()}
    b["calibration"] = cal
    path = save_bundle(out, b, overwrite=overwrite)
    return SpreadRefit(path=path, n_catalogues=int(ok.sum()), targets=list(task.targets), spread_before=old,
                       spread_after=np.array(task.spread), before=before, after=after)
