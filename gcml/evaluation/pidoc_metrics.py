"""pi-DOC evaluation on photometry MapSets (Chardin & Bianchini 2021, MNRAS 504, 5656, Section 4).

Metrics (definitions in docs/pidoc-results.md; ``M`` mass per pixel, ``i`` over pixels):

* **pixel percentage error** (their Eq. 2): ``eps_i = 100 |M_pred,i - M_true,i| / M_true,i``, averaged over
  all pixels of the split (the paper's 27.4 %) and per bin of ``log10 M_true`` (10 bins);
* **total mass** in the field: mean ``100 |M_pred - M_true| / M_true`` (paper: 15.6 %), plus MAE, bias,
  scatter of ``log10 M`` and the 68/95 % coverage of the predicted intervals;
* **M/L**: ``M / L_V`` with ``L_V`` the true V luminosity in the field (``meta/lum_v_fov``): its
  percentage error equals the total-mass error; the radial M/L profile uses ``L`` per annulus from the
  flux map and the true distance;
* **radial profiles** (25 annuli out to the field's half width, centred on the flux-weighted centroid):
  mean fractional error of the enclosed-annulus mass and M/L per annulus;
* **R^2** of log10 pixel masses, total masses, ages and distances: ``1 - SS_res / SS_tot``;
* **age**: MAE (paper: 1.26 Gyr) overall and per 1-Gyr bin of the true age;
* **distance**: MAE (paper: ~6 kpc); per true distance the distribution (PDF) of the predictions, with
  mean, standard deviation and 16/50/84 percentiles (the paper's Table 2);
* **coverage** of the central 68 % and 95 % Gaussian intervals for every quantity with an uncertainty.

:func:`evaluate_photometry` applies one or several model bundles (gcml map or scalar models, or the
published networks imported with ``gcml models import-keras``) to the same MapSet split and writes
``metrics.json``, ``report.md`` (with the paper's numbers beside gcml's) and PNG plots.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gcml.errors import InputError, OutputExistsError

#: Chardin & Bianchini (2021) test-set numbers (abstract and Section 4).
PAPER = {"pixel_percentage_error": 27.4, "total_mass_percentage_error": 15.6, "age_mae_gyr": 1.26,
         "distance_mae_kpc": 6.0}
N_RADIAL = 25
Z68, Z95 = 0.9944578832097535, 1.959963984540054


def r2_score(true: np.ndarray, pred: np.ndarray) -> float:
    """Coefficient of determination ``1 - sum (t - p)^2 / sum (t - mean t)^2``."""
    t, p = np.asarray(true, float).ravel(), np.asarray(pred, float).ravel()
    ss = float(((t - t.mean()) ** 2).sum())
    return float(1.0 - ((t - p) ** 2).sum() / ss) if ss > 0 else float("nan")


def coverage(true: np.ndarray, pred: np.ndarray, std: np.ndarray | None) -> dict[str, float]:
    """Fraction of truths inside ``pred +- z std`` for the 68 % and 95 % Gaussian intervals."""
    if std is None:
        return {}
    s = np.asarray(std, float)
    z = np.abs(np.asarray(pred, float) - np.asarray(true, float)) / np.where(s > 0, s, np.nan)
    return {"coverage_68": float(np.mean(z <= Z68)), "coverage_95": float(np.mean(z <= Z95))}


def pixel_percentage_error(m_true: np.ndarray, m_pred: np.ndarray, n_bins: int = 10) -> dict[str, Any]:
    """pi-DOC Eq. 2 over all pixels and per bin of log10 true pixel mass (equal-width bins)."""
    t = np.asarray(m_true, float).ravel()
    p = np.asarray(m_pred, float).ravel()
    ok = t > 0
    t, p = t[ok], p[ok]
    eps = 100.0 * np.abs(p - t) / t
    lt = np.log10(t)
    edges = np.linspace(lt.min(), lt.max(), n_bins + 1)
    k = np.clip(np.digitize(lt, edges[1:-1]), 0, n_bins - 1)
    cnt = np.bincount(k, minlength=n_bins)
    mean = np.bincount(k, weights=eps, minlength=n_bins) / np.maximum(cnt, 1)
    return {"mean": float(eps.mean()), "median": float(np.median(eps)), "bin_edges_log10_msun": edges.tolist(),
            "bin_count": cnt.tolist(), "bin_mean": [float(v) if c else None for v, c in zip(mean, cnt, strict=False)]}


def radial_profiles(mass_true: np.ndarray, mass_pred: np.ndarray, flux: np.ndarray, distance_kpc: np.ndarray,
                    n_bins: int = N_RADIAL) -> dict[str, Any]:
    """Mass and M/L per annulus (25 annuli out to half the field width) around the flux-weighted centroid.

    Returns the mean fractional error per annulus of mass and M/L (prediction / truth - 1) and the
    mean true and predicted profiles. ``flux`` is F = L/(4 pi d^2) per pixel, so ``L = 4 pi d^2 F``.
    """
    n, h, w = mass_true.shape
    y, x = np.mgrid[0:h, 0:w].astype(float)
    f = np.maximum(flux, 0.0)
    fs = f.sum(axis=(1, 2))
    cx = (f * x).sum(axis=(1, 2)) / np.where(fs > 0, fs, 1)
    cy = (f * y).sum(axis=(1, 2)) / np.where(fs > 0, fs, 1)
    r = np.hypot(x[None] - cx[:, None, None], y[None] - cy[:, None, None])
    rmax = min(h, w) / 2.0
    k = np.minimum((r / rmax * n_bins).astype(int), n_bins)  # index n_bins = outside
    lum = 4 * math.pi * (np.asarray(distance_kpc, float) ** 2)[:, None, None] * f
    rows = np.repeat(np.arange(n)[:, None, None], h, 1).repeat(w, 2)
    idx = (rows * (n_bins + 1) + k).ravel()

    def per_annulus(v: np.ndarray) -> np.ndarray:
        return np.bincount(idx, weights=v.ravel(), minlength=n * (n_bins + 1)).reshape(n, n_bins + 1)[:, :n_bins]

    mt, mp, lt = per_annulus(mass_true), per_annulus(mass_pred), per_annulus(lum)
    import warnings

    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # empty annuli give all-NaN columns
        em = mp / mt - 1.0
        mlt, mlp = mt / lt, mp / lt
        eml = mlp / mlt - 1.0
        res = {"r_edges_px": (np.arange(n_bins + 1) * rmax / n_bins).tolist(),
               "mass_frac_error_mean": _nanlist(np.nanmean(np.abs(em), 0)),
               "mass_frac_bias": _nanlist(np.nanmean(em, 0)),
               "ml_frac_error_mean": _nanlist(np.nanmean(np.abs(eml), 0)),
               "mass_true_mean": _nanlist(mt.mean(0)), "mass_pred_mean": _nanlist(mp.mean(0)),
               "ml_true_median": _nanlist(np.nanmedian(mlt, 0)), "ml_pred_median": _nanlist(np.nanmedian(mlp, 0))}
    return res


def _nanlist(a: np.ndarray) -> list:
    return [float(v) if np.isfinite(v) else None for v in np.asarray(a, float)]


def scalar_report(true: np.ndarray, pred: np.ndarray, std: np.ndarray | None, bin_width: float | None = None,
                  per_value: bool = False) -> dict[str, Any]:
    """MAE, bias, RMSE, R^2, coverage; MAE per bin of the truth; per distinct true value the PDF stats."""
    t, p = np.asarray(true, float), np.asarray(pred, float)
    r = p - t
    out: dict[str, Any] = {"n": int(len(t)), "mae": float(np.abs(r).mean()), "bias": float(r.mean()),
                           "rmse": float(np.sqrt((r**2).mean())), "r2": r2_score(t, p), **coverage(t, p, std)}
    if std is not None:
        out["mean_sigma"] = float(np.mean(std))
    if bin_width:
        lo = math.floor(t.min() / bin_width) * bin_width
        k = np.floor((t - lo) / bin_width).astype(int)
        out["mae_per_bin"] = [{"lo": lo + i * bin_width, "hi": lo + (i + 1) * bin_width, "n": int((k == i).sum()),
                               "mae": float(np.abs(r[k == i]).mean())} for i in np.unique(k)]
    if per_value:
        rows = []
        for v in np.unique(t):
            s = p[t == v]
            q = np.percentile(s, [16, 50, 84])
            hist, edges = np.histogram(s, bins=20, range=(0.0, max(2 * float(t.max()), float(p.max()) + 1)), density=True)
            rows.append({"true": float(v), "n": int(len(s)), "mean": float(s.mean()), "std": float(s.std()),
                         "p16": float(q[0]), "p50": float(q[1]), "p84": float(q[2]),
                         "pdf": hist.tolist(), "pdf_edges": edges.tolist()})
        out["per_true_value"] = rows
    return out


@dataclass
class ModelOutputs:
    """A model's predictions on the split, physical units (None where the model does not predict it)."""

    label: str
    architecture: str
    mass_map: np.ndarray | None = None          # (N, H, W) Msun per pixel
    log10_mass_total: np.ndarray | None = None  # (N,)
    log10_mass_total_std: np.ndarray | None = None
    scalars: dict[str, np.ndarray] = field(default_factory=dict)
    scalar_std: dict[str, np.ndarray] = field(default_factory=dict)


def predict_split(path: Path, x: np.ndarray, *, label: str, device: str = "cpu", batch_size: int = 16,
                  progress: Any = None) -> ModelOutputs:
    """Apply one bundle (trained or imported) to flux maps ``x`` (N, 1, H, W) [Lsun/kpc^2]; ``progress(done,
    total)`` after each batch."""
    from gcml.models.trained import TrainedModel

    tm = TrainedModel.load(path, device=device)
    res = ModelOutputs(label=label, architecture=tm.architecture)
    out = tm.outputs(x, batch_size=min(batch_size, tm.task.max_eval_batch or batch_size), progress=progress)
    if tm.is_map_model:
        d = tm.decode_parts(out)
        res.mass_map = 10.0 ** d["log10_map"]
        res.log10_mass_total = d["log10_total"]
        if np.isfinite(d["log10_total_std"]).any():
            res.log10_mass_total_std = d["log10_total_std"]
        mean, std = d.get("scalar"), d.get("scalar_std")
    else:
        mean, std = tm.decode(out)
    for j, nm in enumerate(tm.scalar_names):
        res.scalars[nm] = mean[:, j]
        if np.isfinite(std[:, j]).any():
            res.scalar_std[nm] = std[:, j]
    return res


@dataclass
class PidocEvaluateResult:
    out: Path
    split: str
    n_maps: int
    models: dict[str, dict[str, Any]]
    paper: dict[str, float] = field(default_factory=lambda: dict(PAPER))


def model_metrics(o: ModelOutputs, mass_true: np.ndarray | None, flux: np.ndarray, meta: dict[str, np.ndarray],
                  targets: dict[str, np.ndarray]) -> dict[str, Any]:
    """All pi-DOC metrics of one model's outputs."""
    m: dict[str, Any] = {"architecture": o.architecture}
    if o.mass_map is not None and mass_true is not None:
        lt_tot = np.log10(mass_true.sum(axis=(1, 2)))
        pix = pixel_percentage_error(mass_true, o.mass_map)
        lp = np.log10(np.maximum(o.mass_map, 1e-30))
        lt = np.log10(np.maximum(mass_true, 1e-30))
        tot = scalar_report(lt_tot, o.log10_mass_total, o.log10_mass_total_std)
        tot["percentage_error"] = float(np.mean(100 * np.abs(10 ** (o.log10_mass_total - lt_tot) - 1)))
        m["mass"] = {"pixel_percentage_error": pix, "pixel_r2_log10": r2_score(lt, lp),
                     "pixel_mae_dex": float(np.abs(lp - lt).mean()), "total": tot}
        if "lum_v_fov" in meta:
            ml_t = 10**lt_tot / meta["lum_v_fov"]
            ml_p = 10**o.log10_mass_total / meta["lum_v_fov"]
            m["ml"] = {"percentage_error": float(np.mean(100 * np.abs(ml_p / ml_t - 1))),
                       "median_true": float(np.median(ml_t)), "median_pred": float(np.median(ml_p))}
        dist = targets.get("distance", meta.get("distance"))
        if dist is not None:
            m["radial"] = radial_profiles(mass_true, o.mass_map, flux, dist)
    for nm, width, per in (("age", 1.0, False), ("distance", None, True)):
        if nm in o.scalars and nm in targets:
            m[nm] = scalar_report(targets[nm], o.scalars[nm], o.scalar_std.get(nm), bin_width=width, per_value=per)
    return m


def evaluate_photometry(models: list[str | Path], mapset: str | Path, split: str, out: str | Path, *,
                        overwrite: bool = False, device: str = "cpu", batch_size: int = 16,
                        progress: Any = None) -> PidocEvaluateResult:
    """Evaluate pi-DOC models on a photometry MapSet split; writes metrics.json, report.md and plots.

    ``progress``: ``True`` for a tqdm.auto bar over the images of every model (notebooks), a callable
    ``progress(done, total)``, or None (silent, the default) (:mod:`gcml.progress`).
    """
    from gcml.io.common import atomic_output, check_output_dir, make_output_dir
    from gcml.io.mapset import read_mapset

    out = check_output_dir(out)
    if not overwrite and (out / "metrics.json").exists():
        raise OutputExistsError(f"{out / 'metrics.json'} already exists; pass `overwrite` to replace it")
    from gcml.models.bundle import ModelBundle

    ms = read_mapset(mapset, split=None if split == "all" else split, channels=None)
    if ms.kind != "photometry":
        raise InputError(f"{mapset}: is a '{ms.kind}' MapSet; pi-DOC evaluation needs photometry images")
    for mp in models:
        # every model must read these images: same kind of map and image size (checked before any work)
        ModelBundle.load(mp).geometry.check_maps("photometry", ms.maps.shape[2:], None, "", maps=mapset, model=mp)
    if ms.n == 0:
        raise InputError(f"{mapset}: the {split} split is empty")
    if "flux" not in ms.channels:
        raise InputError(f"{mapset}: no 'flux' channel (it has {', '.join(ms.channels)})")
    x = ms.maps[:, [ms.channels.index("flux")]]
    bad = ~np.isfinite(x).all(axis=(1, 2, 3))
    if bad.any():
        raise InputError(f"{mapset}: /maps has NaN or inf values (first in image {int(np.flatnonzero(bad)[0])} "
                         f"of split {split})")
    mass_true = ms.truth["mass"][:, 0].astype(np.float64) if "mass" in ms.truth else None
    flux = x[:, 0].astype(np.float64)
    targets = {k: np.asarray(v, float) for k, v in ms.targets.items()}
    meta = {k: np.asarray(v, float) for k, v in ms.meta.items() if np.asarray(v).dtype.kind in "fiu"}
    res: dict[str, dict[str, Any]] = {}
    outputs = []
    used: set[str] = set()
    from gcml.progress import as_progress, offset_progress

    report = as_progress(progress, "evaluate", "image")
    for k, mp in enumerate(models):
        p = Path(mp)
        lab = p.parent.name + "/" + p.name if p.parent.name else p.name
        while lab in used:
            lab += "'"
        used.add(lab)
        o = predict_split(p, x, label=lab, device=device, batch_size=batch_size,
                          progress=offset_progress(report, k * ms.n, len(models) * ms.n))
        outputs.append(o)
        res[lab] = model_metrics(o, mass_true, flux, meta, targets)
    make_output_dir(out)
    doc = {"mapset": str(mapset), "split": split, "n_maps": int(ms.n), "paper": PAPER, "models": res}
    from gcml.config import to_jsonable

    with atomic_output(out / "metrics.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps(to_jsonable(doc), indent=1, default=str))
    _plots(outputs, res, mass_true, targets, out)
    with atomic_output(out / "report.md", overwrite=True) as tmp:
        tmp.write_text(render_report(doc))
    return PidocEvaluateResult(out=out, split=split, n_maps=int(ms.n), models=res)


def summary_rows(models: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per model: the headline numbers of the paper's abstract."""
    rows = []
    for lab, m in models.items():
        mass, tot = m.get("mass", {}), m.get("mass", {}).get("total", {})
        rows.append({"model": lab, "architecture": m["architecture"],
                     "pixel_pct": mass.get("pixel_percentage_error", {}).get("mean"),
                     "total_pct": tot.get("percentage_error"), "total_cov68": tot.get("coverage_68"),
                     "age_mae": m.get("age", {}).get("mae"), "age_cov68": m.get("age", {}).get("coverage_68"),
                     "dist_mae": m.get("distance", {}).get("mae"),
                     "dist_cov68": m.get("distance", {}).get("coverage_68")})
    return rows


def render_report(doc: dict[str, Any]) -> str:
    def f(v: Any, fmt: str) -> str:
        return "–" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, fmt)

    lines = [f"# pi-DOC evaluation: {doc['mapset']} ({doc['split']} split, {doc['n_maps']} images)", "",
             "Metrics as defined in `gcml/evaluation/pidoc_metrics.py` (Chardin & Bianchini 2021, Section 4).", "",
             "| model | pixel error % (Eq. 2) | total mass error % | 68% cov. (mass) | age MAE [Gyr] | 68% cov. (age) "
             "| distance MAE [kpc] | 68% cov. (dist.) |", "|---|---|---|---|---|---|---|---|"]
    for r in summary_rows(doc["models"]):
        lines.append(f"| {r['model']} ({r['architecture']}) | {f(r['pixel_pct'], '.1f')} | {f(r['total_pct'], '.1f')} | "
                     f"{f(r['total_cov68'], '.2f')} | {f(r['age_mae'], '.2f')} | {f(r['age_cov68'], '.2f')} | "
                     f"{f(r['dist_mae'], '.1f')} | {f(r['dist_cov68'], '.2f')} |")
    p = doc["paper"]
    lines.append(f"| Chardin & Bianchini 2021 (their test set, random image split) | {p['pixel_percentage_error']} | "
                 f"{p['total_mass_percentage_error']} | – | {p['age_mae_gyr']} | – | ~{p['distance_mae_kpc']:.0f} | – |")
    lines += ["", "Plots: `pixel_error.png` (Eq. 2 per mass bin), `radial.png` (25-annulus mass and M/L profiles, "
              "true and predicted, and the annulus error), `mass_maps.png` (true, predicted and residual mass maps), "
              "`age.png`, `distance_pdf.png` (PDF of predictions per true distance, Table 2 below).", ""]
    for lab, m in doc["models"].items():
        if "distance" in m and "per_true_value" in m["distance"]:
            lines += [f"## Distance per true distance (Table 2): {lab}", "", "| true [kpc] | n | mean | std | 16% | 50% | 84% |",
                      "|---|---|---|---|---|---|---|"]
            for row in m["distance"]["per_true_value"]:
                lines.append(f"| {row['true']:.0f} | {row['n']} | {row['mean']:.1f} | {row['std']:.1f} | "
                             f"{row['p16']:.1f} | {row['p50']:.1f} | {row['p84']:.1f} |")
            lines.append("")
        if "age" in m and "mae_per_bin" in m["age"]:
            lines += [f"## Age MAE per 1-Gyr bin: {lab}", "", "| true age [Gyr] | n | MAE [Gyr] |", "|---|---|---|"]
            lines += [f"| {b['lo']:.0f}-{b['hi']:.0f} | {b['n']} | {b['mae']:.2f} |" for b in m["age"]["mae_per_bin"]]
            lines.append("")
    return "\n".join(lines) + "\n"


def _mass_map_panels(o: ModelOutputs, mass_true, save, plt, n_show: int = 4) -> None:
    """``mass_maps.png``: true, predicted and residual (log10 predicted / true) mass maps of a few images
    spread over the split (first model)."""
    if mass_true is None or o.mass_map is None:
        return
    n = len(mass_true)
    rows = np.unique(np.linspace(0, n - 1, min(n_show, n)).round().astype(int))
    fig, ax = plt.subplots(len(rows), 3, figsize=(10.5, 3.2 * len(rows)), squeeze=False)
    floor = 1e-3
    for k, i in enumerate(rows):
        lt = np.log10(np.maximum(mass_true[i], floor))
        lp = np.log10(np.maximum(o.mass_map[i], floor))
        lo, hi = float(np.percentile(lt, 1)), float(lt.max())
        for j, (img, title, cmap, vmin, vmax, lab) in enumerate((
                (lt, f"true (image {i})", "magma", lo, hi, "log10 M [Msun/px]"),
                (lp, f"predicted ({o.label})", "magma", lo, hi, "log10 M [Msun/px]"),
                (lp - lt, "residual", "RdBu_r", -0.5, 0.5, "log10 (pred / true) [dex]"))):
            im = ax[k, j].imshow(img, origin="lower", cmap=cmap, vmin=vmin, vmax=vmax)
            ax[k, j].set_title(title, fontsize=9)
            ax[k, j].set_xlabel("x [px]")
            ax[k, j].set_ylabel("y [px]")
            fig.colorbar(im, ax=ax[k, j], label=lab, shrink=0.85)
    save(fig, "mass_maps.png")


def _plots(outputs: list[ModelOutputs], res: dict[str, dict[str, Any]], mass_true, targets, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gcml.io.common import atomic_output

    def save(fig, name):
        fig.tight_layout()
        with atomic_output(out / name, overwrite=True) as tmp:
            fig.savefig(tmp, dpi=80, format="png")
        plt.close(fig)

    maps = [(o, res[o.label]) for o in outputs if "mass" in res[o.label]]
    if maps:
        fig, ax = plt.subplots(1, 1, figsize=(5, 4))
        for o, m in maps:
            pe = m["mass"]["pixel_percentage_error"]
            e = np.asarray(pe["bin_edges_log10_msun"])
            ax.step(0.5 * (e[1:] + e[:-1]), [np.nan if v is None else v for v in pe["bin_mean"]], where="mid", label=o.label)
        ax.axhline(PAPER["pixel_percentage_error"], color="k", ls=":", label="pi-DOC (all pixels)")
        ax.set(xlabel="log10 true mass per pixel [Msun]", ylabel="mean pixel error [%] (Eq. 2)")
        ax.legend(fontsize=7)
        save(fig, "pixel_error.png")
        # radial profiles: the annulus masses, true and predicted; the M/L profiles; the annulus error.
        # The M/L of an annulus is M / L with the observed L in both, so its fractional error equals the
        # mass error: one error panel, labelled for both.
        fig, ax = plt.subplots(1, 3, figsize=(13, 4))
        drawn_truth = False
        for i, (o, m) in enumerate(maps):
            if "radial" not in m:
                continue
            rd = m["radial"]
            r = np.asarray(rd["r_edges_px"])
            rc = 0.5 * (r[1:] + r[:-1])

            def arr(key: str, rd: dict = rd) -> np.ndarray:
                return np.array([np.nan if v is None else v for v in rd[key]], float)

            if not drawn_truth:
                ax[0].plot(rc, arr("mass_true_mean"), "k-", lw=2, label="true")
                ax[1].plot(rc, arr("ml_true_median"), "k-", lw=2, label="true")
                drawn_truth = True
            ax[0].plot(rc, arr("mass_pred_mean"), f"C{i}--", label=f"{o.label}")
            ax[1].plot(rc, arr("ml_pred_median"), f"C{i}--", label=f"{o.label}")
            ax[2].plot(rc, 100 * arr("mass_frac_error_mean"), f"C{i}-", label=o.label)
        ax[0].set(xlabel="radius [px]", ylabel="mean annulus mass [Msun]", yscale="log",
                  title="mass profile")
        ax[1].set(xlabel="radius [px]", ylabel="median annulus M/L_V [Msun/Lsun]", yscale="log",
                  title="M/L profile")
        ax[2].set(xlabel="radius [px]", ylabel="mean |error| per annulus [%]",
                  title="annulus mass error (= M/L error: same L)")
        for a in ax:
            a.legend(fontsize=7)
        save(fig, "radial.png")
        _mass_map_panels(maps[0][0], mass_true, save, plt)
    for nm, fname in (("age", "age.png"), ("distance", "distance_pdf.png")):
        sc = [o for o in outputs if nm in o.scalars]
        if not sc or nm not in targets:
            continue
        fig, ax = plt.subplots(1, 1, figsize=(5, 4))
        t = targets[nm]
        for o in sc:
            if nm == "distance":
                for row in res[o.label]["distance"]["per_true_value"]:
                    e = np.asarray(row["pdf_edges"])
                    ax.plot(0.5 * (e[1:] + e[:-1]), row["pdf"], lw=0.8)
            else:
                ax.errorbar(t, o.scalars[nm], yerr=o.scalar_std.get(nm), fmt=".", ms=2, lw=0.3, label=o.label)
        if nm == "age":
            ax.plot([t.min(), t.max()], [t.min(), t.max()], "k:")
            ax.set(xlabel="true age [Gyr]", ylabel="predicted age [Gyr]")
            ax.legend(fontsize=7)
        else:
            ax.set(xlabel="predicted distance [kpc]", ylabel="PDF per true distance")
        save(fig, fname)
