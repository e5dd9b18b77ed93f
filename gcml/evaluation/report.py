"""``evaluate(models, mapset, split, out)``: metrics, plots and a one-page report for trained models.

For each model bundle the MapSet maps of the chosen split are run through the network exactly as in
training (channels, normalisation from the bundle) and compared with the true labels
(:mod:`gcml.evaluation.metrics`, defined in docs/evaluation.md). When the MapSet carries the
Watkins et al. (2010) tracer mass estimate per map (meta ``tme_log10_mass``, the TME mass within
``r_out``, the projected radius of the outermost GC) and the true mass within the same radius
(target ``log10_mass_within_rout``), the TME is scored against that target on the same maps, as a
classical baseline; each CNN is scored against its own target (like with like when a model was
trained on ``log10_mass_within_rout``).

Every model is also checked for calibration (:mod:`gcml.evaluation.calibration`): SBC rank histograms
with a KS uniformity test per target, TARP expected coverage of the joint posterior, coverage at
50/68/90/95 % and the 68 % interval width against the number of GCs (meta ``n_gc``).

Outputs in ``out``: ``metrics.json``, ``report.md``, ``pred_vs_true.png``, ``errors.png``
(E_i histograms and cumulative |E_i|), ``coverage.png``, ``sbc_ranks.png``, ``tarp.png`` and
``predictions.npz``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gcml.errors import InputError, OutputExistsError
from gcml.evaluation.metrics import N_BINS, regression_metrics, relative_errors
from gcml.io.common import atomic_output, check_output_dir, make_output_dir

TME_META, TME_TARGET = "tme_log10_mass", "log10_mass_within_rout"
SPLIT_CHOICES = ("test", "ood", "val", "train", "all")


@dataclass
class EvaluateResult:
    """What ``evaluate`` produced."""

    out: Path
    split: str
    n_maps: int
    models: dict[str, dict[str, Any]] = field(default_factory=dict)  # label -> {target: metrics}
    baseline: dict[str, Any] | None = None
    calibration: dict[str, dict[str, Any]] = field(default_factory=dict)  # label -> calibration_summary
    files: list[Path] = field(default_factory=list)


def _label(path: Path, used: set[str]) -> str:
    lab = path.parent.name + "/" + path.name if path.parent.name else path.name
    base, k = lab, 2
    while lab in used:
        lab, k = f"{base}#{k}", k + 1
    used.add(lab)
    return lab


def _catalogue_posteriors(model, task, mpath: Path, split: str, dev, n_samples: int) -> np.ndarray:
    """Posterior draws (S, N, D) of a catalogue model for the maps of ``split`` (NaN where unusable)."""
    import h5py

    from gcml.io.catalogues import read_catalogues
    from gcml.io.mapset import SPLITS
    from gcml.models.npe import posterior_samples

    with h5py.File(mpath, "r") as f:
        sp = f["split"][()]
    rows = np.arange(len(sp)) if split == "all" else np.flatnonzero(sp == SPLITS[split])
    cat = read_catalogues(mpath, rows)
    return posterior_samples(model, task, cat, n_samples, seed=0, min_gc=getattr(task, "min_gc", 1), device=dev)


def evaluate(models: list[str | Path], mapset: str | Path, split: str, out: str | Path, *,
             overwrite: bool = False, device: str = "cpu", batch_size: int = 4096,
             n_samples: int = 500, progress: Any = None, systematic: bool = True) -> EvaluateResult:
    """Evaluate one or more model bundles on a MapSet split and write the report folder ``out``.

    Parameters
    ----------
    models : model bundles (``best.pt`` of ``gcml train``)
    mapset : MapSet file
    split : ``test``, ``ood``, ``val``, ``train`` or ``all``
    out : report folder
    n_samples : posterior draws per map for models that return posteriors (mass-npe)
    progress : ``True`` for a tqdm.auto bar over the maps of every model (notebooks), a callable
        ``progress(done, total)``, or None (silent, the default) (:mod:`gcml.progress`)
    systematic : keep a bundle's systematic term (``calibration.systematic_dex``: its error on galaxy
        families it never saw); False scores the statistical intervals alone, the ones to check on galaxies
        of the training families (the term makes them conservative there by design)

    Returns
    -------
    EvaluateResult
    """

    from gcml.device import resolve_device
    from gcml.evaluation.calibration import calibration_summary, scatter_against_n
    from gcml.evaluation.plots import (
        plot_coverage,
        plot_error_histograms,
        plot_pred_vs_true,
        plot_rank_histograms,
        plot_tarp,
    )
    from gcml.io.mapset import read_header, read_mapset
    from gcml.models.trained import TrainedModel

    if split not in SPLIT_CHOICES:
        raise InputError(f"option `split`: expected one of {', '.join(SPLIT_CHOICES)}, got '{split}'")
    if not models:
        raise InputError("evaluate: give at least one model bundle")
    mpath, out = Path(mapset), Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"`out` {out}: exists and is not a folder")
    check_output_dir(out)
    names = ("metrics.json", "report.md", "pred_vs_true.png", "errors.png", "coverage.png", "sbc_ranks.png",
             "tarp.png", "predictions.npz")
    if not overwrite:
        for n in names:
            if (out / n).exists():
                raise OutputExistsError(f"{out / n} already exists; pass `overwrite` to replace it")
    hdr = read_header(mpath)
    dev = resolve_device(device)
    loaded = []
    for m in models:
        tm = TrainedModel.load(m, device=dev)
        if tm.task.input_kind != "catalogue":  # mass-npe reads catalogues, not pixels
            tm.geometry.check_maps(hdr["kind"], hdr["shape"], hdr["pixel_scale"], hdr["pixel_unit"], maps=mpath,
                                   model=m)
        tm.task.check_header(hdr, mpath)
        if not systematic and hasattr(tm.task, "systematic"):
            tm.task.systematic = np.zeros_like(np.asarray(tm.task.systematic, float))
            if hasattr(tm.task, "systematic_corr"):
                tm.task.systematic_corr = None
        loaded.append((Path(m), tm))
    ms = read_mapset(mpath, split=split, with_truth=False)
    if ms.n == 0:
        raise InputError(f"{mpath}: the '{split}' split has no maps")
    bad = ~np.isfinite(ms.maps).all(axis=(1, 2, 3))
    if bad.any():
        raise InputError(f"{mpath}: /maps has NaN or inf values (first in map {int(np.flatnonzero(bad)[0])} of split {split})")

    used: set[str] = set()
    res = EvaluateResult(out=out, split=split, n_maps=ms.n)
    scatter: dict[str, dict] = {}
    errors: dict[str, np.ndarray] = {}
    zs: dict[str, np.ndarray] = {}
    arrays: dict[str, np.ndarray] = {}
    families = np.asarray(ms.meta["family"]).astype(str) if "family" in ms.meta else None
    from gcml.progress import as_progress, offset_progress

    report = as_progress(progress, "evaluate", "map")
    for k, (path, tm) in enumerate(loaded):
        step = offset_progress(report, k * ms.n, len(loaded) * ms.n)
        lab = _label(path, used)
        task, b = tm.task, tm.bundle
        samples = None
        if task.input_kind == "catalogue":
            samples = _catalogue_posteriors(tm.network, task, mpath, split, dev, n_samples)
            with np.errstate(invalid="ignore"):
                mean, std = np.nanmean(samples, 0).astype(float), np.nanstd(samples, 0, ddof=1).astype(float)
            if step is not None:
                step(ms.n, ms.n)
        else:
            x = ms.maps[:, [ms.channels.index(c) for c in task.channels]]
            mean, std = tm.predict_maps(x, batch_size=batch_size, progress=step)
        tn = b.targets["norm"]
        per: dict[str, Any] = {}
        for j, t in enumerate(task.targets):
            y = ms.targets[t].astype(float)
            lo, hi = float(tn["data_min"][j]), float(tn["data_max"][j])
            met = regression_metrics(y, mean[:, j], std[:, j], data_min=lo, data_max=hi)
            if families is not None:
                met["by_family"] = {f: {k: v for k, v in regression_metrics(
                    y[families == f], mean[families == f, j], std[families == f, j], data_min=lo, data_max=hi).items()
                    if k != "binned_pred"} for f in sorted(set(families))}
            if "n_gc" in ms.meta:  # scatter in bins of the number of GCs in the field, beside the Cramer-Rao floor
                met["scatter_vs_n"] = scatter_against_n(mean[:, j] - y, np.asarray(ms.meta["n_gc"], float))
            per[t] = met
            key = f"{lab}: {t}" if len(task.targets) > 1 else lab
            scatter[key] = {"true": y, "pred": mean[:, j], "binned": met["binned_pred"], "name": t,
                            "unit": ms.target_units.get(t, "")}
            errors[key] = relative_errors(y, mean[:, j])
            zs[key] = (mean[:, j] - y) / std[:, j]
            arrays[f"{lab}|{t}|mean"] = mean[:, j]
            arrays[f"{lab}|{t}|std"] = std[:, j]
        truth = np.stack([ms.targets[t].astype(float) for t in task.targets], 1)
        n_tr = np.asarray(ms.meta["n_gc"], float) if "n_gc" in ms.meta else None
        if samples is not None:
            res.calibration[lab] = calibration_summary(truth, list(task.targets), samples=samples, n_tracers=n_tr)
        else:
            res.calibration[lab] = calibration_summary(truth, list(task.targets), mean=mean, std=std, n_tracers=n_tr)
        per["_model"] = {"file": str(path), "architecture": b.architecture, "arch_kwargs": b.arch_kwargs,
                         "channels": task.channels, "loss": b.targets.get("loss"),
                         "parameters": int(sum(p.numel() for p in tm.network.parameters())),
                         "trained_on_sha256": b.provenance.get("data_sha256"),
                         "systematic_term": ("left out" if not systematic else
                                             "included" if np.any(np.asarray(b.calibration.get("systematic_dex", 0.0)))
                                             else "none in the bundle")}
        res.models[lab] = per

    if TME_META in ms.meta and TME_TARGET in ms.targets:
        y = ms.targets[TME_TARGET].astype(float)
        tme = np.asarray(ms.meta[TME_META], float)
        ok = np.isfinite(tme) & np.isfinite(y)
        if ok.any():
            met = regression_metrics(y[ok], tme[ok], data_min=float(y[ok].min()), data_max=float(y[ok].max()))
            met["n_without_estimate"] = int((~ok).sum())
            if "n_gc" in ms.meta:
                met["scatter_vs_n"] = scatter_against_n(tme[ok] - y[ok], np.asarray(ms.meta["n_gc"], float)[ok])
            res.baseline = {"name": "Watkins et al. (2010) tracer mass estimator", "target": TME_TARGET, **met}
            scatter[f"TME vs {TME_TARGET}"] = {"true": y[ok], "pred": tme[ok], "binned": met["binned_pred"],
                                               "name": TME_TARGET, "unit": ms.target_units.get(TME_TARGET, "")}
            errors["TME"] = relative_errors(y[ok], tme[ok])
            # each CNN that predicts the same target is compared like with like on the same maps
            for per in res.models.values():
                if TME_TARGET in per:
                    per[TME_TARGET]["same_maps_as_tme"] = True

    make_output_dir(out)
    files = [
        plot_pred_vs_true(scatter, out / "pred_vs_true.png", overwrite=True),
        plot_error_histograms(errors, out / "errors.png", overwrite=True),
        plot_coverage(zs, out / "coverage.png", overwrite=True),
        plot_rank_histograms({f"{lab}: {t}": c["sbc"] for lab, cal in res.calibration.items()
                              for t, c in cal["per_target"].items()}, out / "sbc_ranks.png", overwrite=True),
        plot_tarp({lab: cal["tarp"] for lab, cal in res.calibration.items()}, out / "tarp.png", overwrite=True),
    ]
    with atomic_output(out / "predictions.npz", overwrite=True) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, split=ms.split, group_id=ms.meta.get("group_id", np.zeros(ms.n)), **{
                k.replace("/", "_"): v for k, v in arrays.items()})
    files.append(out / "predictions.npz")
    from gcml.config import to_jsonable

    doc = {"mapset": str(mpath), "split": split, "n_maps": ms.n, "n_bins": N_BINS, "models": res.models,
           "baseline": res.baseline, "calibration": res.calibration}
    with atomic_output(out / "metrics.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps(to_jsonable(doc), indent=1, allow_nan=True))
    with atomic_output(out / "report.md", overwrite=True) as tmp:
        tmp.write_text(render_report(doc))
    files += [out / "metrics.json", out / "report.md"]
    res.files = files
    return res


def _f(v: Any, fmt: str) -> str:
    return "–" if v is None or (isinstance(v, float) and not np.isfinite(v)) else format(v, fmt)


def comparison_table(doc: dict[str, Any]) -> str:
    """Markdown table in the layout of Kaur et al. (2021) Tables 2 and 3 (one row per model), plus gcml's columns."""
    head = ("| model | input | target | N | accuracy (%) | MAE (0-10) | RMSE (0-10) | MAE (dex) | bias (dex) | "
            "scatter (dex) | 68% cov. | 95% cov. |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
    rows = []
    for lab, per in doc["models"].items():
        info = per["_model"]
        for t, m in per.items():
            if t == "_model":
                continue
            desc = f"{info['architecture']} d{info['arch_kwargs'].get('depth', '')} {info.get('loss') or ''}".strip()
            if info.get("systematic_term") == "left out":
                desc += ", systematic term left out"
            rows.append(f"| {lab} ({desc}) | {','.join(info['channels'])} | {t} | {m['n']} | {_f(m['accuracy'], '.1f')} | "
                        f"{_f(m['mae_norm'], '.3f')} | {_f(m['rmse_norm'], '.3f')} | {_f(m['mae_dex'], '.3f')} | "
                        f"{_f(m['bias_dex'], '+.3f')} | {_f(m['scatter_dex'], '.3f')} | {_f(m.get('coverage_68'), '.2f')} | "
                        f"{_f(m.get('coverage_95'), '.2f')} |")
    b = doc.get("baseline")
    if b:
        rows.append(f"| TME (Watkins+2010) | GC x, y, v | {b['target']} | {b['n']} | {_f(b['accuracy'], '.1f')} | "
                    f"{_f(b['mae_norm'], '.3f')} | {_f(b['rmse_norm'], '.3f')} | {_f(b['mae_dex'], '.3f')} | "
                    f"{_f(b['bias_dex'], '+.3f')} | {_f(b['scatter_dex'], '.3f')} | – | – |")
    return head + "\n".join(rows) + "\n"


def render_report(doc: dict[str, Any]) -> str:
    lines = [f"# gcml evaluation: {doc['mapset']} (split {doc['split']}, {doc['n_maps']} maps)", "",
             "Metrics as defined in docs/evaluation.md: accuracy = 100 (1 - mean over 20 equal true-label bins of the "
             "mean |E_i|), E_i = (M_p - M_c)/M_c on the log10 mass label; MAE/RMSE (0-10) on the label rescaled to "
             "0-10 over the training data range; bias/scatter in dex; coverage of the central 68%/95% Gaussian intervals.",
             "", comparison_table(doc)]
    fam_rows = []
    for lab, per in doc["models"].items():
        for t, m in per.items():
            if t != "_model" and "by_family" in m:
                for f, fm in m["by_family"].items():
                    fam_rows.append(f"| {lab} | {t} | {f} | {fm['n']} | {_f(fm.get('mae_dex'), '.3f')} | "
                                    f"{_f(fm.get('bias_dex'), '+.3f')} | {_f(fm.get('scatter_dex'), '.3f')} | "
                                    f"{_f(fm.get('coverage_68'), '.2f')} |")
    if fam_rows:
        lines += ["## By galaxy family", "", "| model | target | family | N | MAE (dex) | bias | scatter | 68% cov. |",
                  "|---|---|---|---:|---:|---:|---:|---:|", *fam_rows, ""]
    if doc.get("baseline"):
        lines += ["The TME row scores the Watkins et al. (2010) tracer mass estimate within r_out (from the GCs behind "
                  "each map) against the true mass within the same radius, on the same maps; each CNN row is scored "
                  "against its own target.", ""]
    lines += scatter_n_section(doc)
    if doc.get("calibration"):
        lines += calibration_section(doc["calibration"])
    lines += ["![predicted vs true](pred_vs_true.png)", "", "![relative errors](errors.png)", "",
              "![interval coverage](coverage.png)", ""]
    if doc.get("calibration"):
        lines += ["![SBC rank histograms](sbc_ranks.png)", "", "![TARP expected coverage](tarp.png)", ""]
    return "\n".join(lines)


def scatter_n_section(doc: dict[str, Any]) -> list[str]:
    """Markdown lines: scatter (dex) per bin of the number of GCs in the field against the Cramer-Rao floor."""
    rows = []
    items = [(lab, t, m) for lab, per in doc["models"].items() for t, m in per.items() if t != "_model"]
    if doc.get("baseline"):
        items.append(("TME (Watkins+2010)", doc["baseline"]["target"], doc["baseline"]))
    for lab, t, m in items:
        for b in m.get("scatter_vs_n", {}).get("bins", []):
            rows.append(f"| {lab} | {t} | {b['n_lo']:g}-{min(b['n_hi'], 99999):g} | {b['n_median']:g} | {b['count']} | "
                        f"{b['scatter_dex']:.3f} | {b['bias_dex']:+.3f} | {b['cramer_rao_dex']:.3f} | {b['ratio_to_floor']:.2f} |")
    if not rows:
        return []
    return ["## Scatter against the number of GCs", "",
            "Scatter (standard deviation of predicted - true, dex) in bins of the number of GCs in the map's field "
            "(meta n_gc), beside the Cramer-Rao floor 0.434 sqrt(2/N) at the bin's median N (the scatter of a mass "
            "from N line-of-sight velocities with the anisotropy and tracer profile known).", "",
            "| model | target | N range | median N | maps | scatter | bias | Cramer-Rao floor | ratio |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|", *rows, ""]


def calibration_section(cal: dict[str, dict[str, Any]]) -> list[str]:
    """Markdown lines: SBC / coverage per target, TARP per model, 68 % width against N (docs/evaluation.md)."""
    lines = ["## Calibration", "",
             "SBC: KS test of the (randomised) rank of each truth among the posterior draws against uniform "
             "(uniform when p > 0.01); coverage of central 50/68/90/95% credible intervals; median 68% interval "
             "width (dex). Gaussian models: exact ranks Phi((y - mu)/sigma).", "",
             "| model | target | N | SBC KS p | uniform | 50% | 68% | 90% | 95% | median 68% width |",
             "|---|---|---:|---:|---|---:|---:|---:|---:|---:|"]
    for lab, c in cal.items():
        for t, d in c["per_target"].items():
            cv = d["coverage"]
            lines.append(f"| {lab} | {t} | {c['n']} | {d['sbc']['ks_p']:.3g} | {'yes' if d['sbc']['uniform'] else 'no'} | "
                         f"{_f(cv.get('0.5'), '.3f')} | {_f(cv.get('0.68'), '.3f')} | {_f(cv.get('0.9'), '.3f')} | "
                         f"{_f(cv.get('0.95'), '.3f')} | {_f(d['width68_median'], '.3f')} |")
    lines += ["", "TARP (Lemos et al. 2023) expected coverage of the joint posterior over all targets of a model: "
              "calibrated on the diagonal; max |ECP - alpha| <= 0.03 is called calibrated.", "",
              "| model | targets | max abs deviation | mean deviation | calibrated |", "|---|---:|---:|---:|---|"]
    for lab, c in cal.items():
        tr = c["tarp"]
        lines.append(f"| {lab} | {len(c['per_target'])} | {tr['max_abs_deviation']:.3f} | {tr['mean_deviation']:+.3f} | "
                     f"{'yes' if tr['calibrated'] else 'no'} |")
    rows = []
    for lab, c in cal.items():
        for t, d in c["per_target"].items():
            for b in d.get("width_vs_n", {}).get("bins", []):
                cv = b.get("coverage", {})
                rows.append(f"| {lab} | {t} | {b['n_lo']:g}-{min(b['n_hi'], 99999):g} | {b['count']} | "
                            f"{b['width68_median']:.3f} | {b['cramer_rao_width68']:.3f} | "
                            f"{_f(cv.get('0.68'), '.2f')} | {_f(cv.get('0.95'), '.2f')} |")
    if rows:
        lines += ["", "68% interval width (dex) against the number of GCs in the field, beside the Cramer-Rao "
                  "width 2 x 0.994 x 0.434 sqrt(2/N) at the bin's median N, and the coverage of the 68% and 95% "
                  "intervals in each bin (calibrated intervals cover at every N):", "",
                  "| model | target | N range | maps | median 68% width | Cramer-Rao 68% width | 68% coverage | "
                  "95% coverage |",
                  "|---|---|---|---:|---:|---:|---:|---:|", *rows]
    return lines + [""]
