"""Plots (matplotlib, Agg backend; nothing is shown on screen)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gcml.io.common import atomic_output


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_mapset_examples(ms, out: str | Path, *, n_examples: int = 4, seed: int = 0,
                         overwrite: bool = False) -> Path:
    """Draw ``n_examples`` maps (all channels, plus truth maps) of a MapSet into a PNG."""
    plt = _plt()
    rng = np.random.default_rng(seed)
    n = min(n_examples, ms.n)
    idx = np.sort(rng.choice(ms.n, size=n, replace=False)) if ms.n else np.array([], int)
    cols = list(range(len(ms.channels))) + [f"truth:{k}" for k in ms.truth]
    fig, axes = plt.subplots(max(n, 1), len(cols), figsize=(2.6 * len(cols), 2.4 * max(n, 1)), squeeze=False)
    ext = ms.extent
    tname = next((t for t in ("log10_mass_total", "age", "distance") if t in ms.targets), None)
    for r, i in enumerate(idx):
        for c, col in enumerate(cols):
            ax = axes[r, c]
            if isinstance(col, int):
                img, label = ms.maps[i, col], f"{ms.channels[col]} [{ms.units[col]}]"
                cmap = "RdBu_r" if ms.channels[col] in ("v",) else "viridis"
                if cmap == "RdBu_r":
                    lim = float(np.nanmax(np.abs(img))) or 1.0
                    im = ax.imshow(img, origin="lower", extent=ext, cmap=cmap, vmin=-lim, vmax=lim)
                else:
                    im = ax.imshow(img, origin="lower", extent=ext, cmap=cmap)
            else:
                k = col.split(":", 1)[1]
                img, label = ms.truth[k][i, 0], f"truth {k} [{ms.truth_units.get(k, '')}]"
                im = ax.imshow(img, origin="lower", extent=ext, cmap="magma")
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
            ax.set_title(label, fontsize=8)
            ax.tick_params(labelsize=6)
            if c == 0:
                lab = f"#{i}"
                if tname:
                    lab += f"  {tname}={ms.targets[tname][i]:.2f}"
                ax.set_ylabel(f"{lab}\n[{ms.pixel_unit}]", fontsize=7)
    fig.tight_layout()
    out = Path(out)
    with atomic_output(out, overwrite=overwrite) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return out


def plot_training_curves(history: list[dict], out: str | Path, *, overwrite: bool = False) -> Path:
    """Training and validation loss (and validation MAE) per epoch, from ``metrics.jsonl`` lines."""
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.4))
    ep = [h["epoch"] for h in history]
    a1.plot(ep, [h["train_loss"] for h in history], "o-", ms=3, label="train")
    a1.plot(ep, [h["val_loss"] for h in history], "s-", ms=3, label="val")
    a1.set_xlabel("epoch")
    a1.set_ylabel("loss")
    a1.legend()
    a2.plot(ep, [h.get("val_mae", np.nan) for h in history], "o-", ms=3, color="C2")
    a2.set_xlabel("epoch")
    a2.set_ylabel("val MAE [target unit]")
    fig.tight_layout()
    out = Path(out)
    with atomic_output(out, overwrite=overwrite) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return out


def _save(fig, out: str | Path, overwrite: bool) -> Path:
    plt = _plt()
    out = Path(out)
    fig.tight_layout()
    with atomic_output(out, overwrite=overwrite) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return out


def plot_pred_vs_true(results: dict[str, dict], out: str | Path, *, overwrite: bool = False) -> Path:
    """Predicted vs true label with the binned mean and standard deviation (Kaur et al. 2021, Fig. 7 style).

    ``results`` maps a label to ``{"true", "pred", "binned": binned_stats(...)}`` and, for the axis labels,
    the target's ``name`` and ``unit`` (e.g. ``log10_mass_total``, ``dex(Msun)``).
    """
    plt = _plt()
    k = len(results)
    fig, axes = plt.subplots(1, k, figsize=(4.2 * k, 4), squeeze=False)
    for ax, (name, r) in zip(axes[0], results.items(), strict=False):
        t, p = np.asarray(r["true"]), np.asarray(r["pred"])
        ax.scatter(t, p, s=2, alpha=0.25, color="0.5", rasterized=True)
        b = r["binned"]
        c = np.asarray(b["centre"])
        m = np.array([np.nan if v is None else v for v in b["mean"]])
        s = np.array([np.nan if v is None else v for v in b["std"]])
        ax.errorbar(c, m, yerr=s, fmt="o", color="C3", ms=4, capsize=2, label="binned mean ± std")
        lo, hi = float(np.nanmin(t)), float(np.nanmax(t))
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
        q = str(r.get("name", "")).replace("_", " ")
        unit = f" [{r['unit']}]" if r.get("unit") else ""
        ax.set_xlabel(f"true {q}{unit}".replace("  ", " "))
        ax.set_ylabel(f"predicted {q}{unit}".replace("  ", " "))
        ax.set_title(name, fontsize=9)
        ax.legend(fontsize=7)
    return _save(fig, out, overwrite)


def plot_error_histograms(errors: dict[str, np.ndarray], out: str | Path, *, overwrite: bool = False) -> Path:
    """Histograms of E_i = (M_p - M_c)/M_c and the cumulative distribution of |E_i| (Kaur et al. 2021)."""
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.6))
    allv = np.concatenate([np.asarray(v)[np.isfinite(v)] for v in errors.values()]) if errors else np.zeros(1)
    lim = float(np.quantile(np.abs(allv), 0.995)) if allv.size else 1.0
    bins = np.linspace(-lim, lim, 61)
    for name, e in errors.items():
        e = np.asarray(e)[np.isfinite(e)]
        a1.hist(e, bins=bins, histtype="step", label=name, density=True)
        a = np.sort(np.abs(e))
        a2.plot(a, np.arange(1, len(a) + 1) / max(len(a), 1), label=name)
    a1.set_xlabel("E = (M_p - M_c) / M_c")
    a1.set_ylabel("density")
    a2.set_xlabel("|E|")
    a2.set_ylabel("cumulative fraction")
    a2.set_xlim(0, lim)
    a1.legend(fontsize=7)
    a2.legend(fontsize=7)
    return _save(fig, out, overwrite)


def plot_coverage(zscores: dict[str, np.ndarray], out: str | Path, *, overwrite: bool = False) -> Path:
    """Observed vs nominal coverage of central Gaussian intervals (a calibrated model lies on the diagonal)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4, 4))
    levels = np.linspace(0.01, 0.99, 50)
    zl = np.sqrt(2) * _erfinv(levels)
    for name, z in zscores.items():
        z = np.abs(np.asarray(z))
        z = z[np.isfinite(z)]
        ax.plot(levels, [(z <= q).mean() if z.size else np.nan for q in zl], label=name)
    ax.plot([0, 1], [0, 1], "k--", lw=1)
    ax.set_xlabel("nominal coverage")
    ax.set_ylabel("observed coverage")
    ax.legend(fontsize=7)
    return _save(fig, out, overwrite)


def _erfinv(x):
    from scipy.special import erfinv

    return erfinv(x)


def plot_rank_histograms(sbc: dict[str, dict], out: str | Path, *, overwrite: bool = False) -> Path:
    """SBC rank histograms, one panel per (model, target), with the 99 % band of a uniform histogram.

    ``sbc`` maps a label to the result of :func:`gcml.evaluation.calibration.uniformity_test`.
    """
    plt = _plt()
    k = max(len(sbc), 1)
    cols = min(k, 4)
    rows = -(-k // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.ravel()[len(sbc):]:
        ax.set_visible(False)
    for ax, (name, r) in zip(axes.ravel(), sbc.items(), strict=False):
        h = np.asarray(r["hist"], float)
        nb = len(h)
        ax.bar((np.arange(nb) + 0.5) / nb, h, width=1.0 / nb, color="C0", alpha=0.7)
        lo, hi = r["hist_band99"]
        ax.axhspan(lo, hi, color="0.8", zorder=0)
        ax.axhline(r["n"] / nb, color="k", lw=0.8)
        ax.set_title(f"{name}\nKS p = {r['ks_p']:.2g}", fontsize=7)
        ax.set_xlabel("normalised rank", fontsize=7)
        ax.tick_params(labelsize=6)
    return _save(fig, out, overwrite)


def plot_tarp(curves: dict[str, dict], out: str | Path, *, overwrite: bool = False) -> Path:
    """TARP expected coverage against credibility level (Lemos et al. 2023); calibrated on the diagonal."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4, 4))
    for name, r in curves.items():
        ax.plot(r["alpha"], r["ecp"], label=f"{name} (max |dev| {r['max_abs_deviation']:.3f})")
    ax.plot([0, 1], [0, 1], "k--", lw=1)
    ax.set_xlabel("credibility level")
    ax.set_ylabel("expected coverage (TARP)")
    ax.legend(fontsize=6)
    return _save(fig, out, overwrite)
