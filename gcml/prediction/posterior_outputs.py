"""What a mass-npe catalogue prediction writes beside the common outputs: the posterior samples as a table
with units (``posterior_samples.ecsv``), a corner plot (``corner.png``: pairwise 2-D histograms and 1-D
marginals of the targets, matplotlib only) and a mass-profile plot (``profile.png``: median M(< r) at the
fixed radii and at R_out with 68 % and 95 % bands).

Each function takes a :class:`gcml.prediction.catalogue_result.CataloguePrediction` whose ``method`` is
"posterior" (this module does not import it: the result module imports this one to write).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from gcml.errors import InputError


def _check(pred: Any) -> np.ndarray:
    s = getattr(pred, "samples", None)
    if s is None or getattr(pred, "method", "") != "posterior":
        raise InputError("posterior samples exist for mass-npe predictions only (this prediction came from maps)")
    return np.asarray(s)


def samples_table(pred: Any) -> Any:
    """The posterior samples as an ``astropy.table.QTable``: one row per sample, one column per target in
    ``dex(solMass)`` (names as in the model: ``log10_mass_within_rout`` ...) and ``distance`` [Mpc], the
    distance the sample was drawn at; ``meta`` holds the galaxy, centre, model, seed and the radius of
    each enclosed mass."""
    import astropy.units as u
    from astropy.table import QTable

    from gcml._version import __version__

    s = _check(pred)
    t = QTable()
    names = list(pred.masses)
    for j, name in enumerate(names):
        t[name] = s[:, j].astype(np.float32) * u.dex(u.Msun)
        t[name].description = pred.masses[name].label
    if pred.sample_distance_mpc is not None:
        t["distance"] = np.asarray(pred.sample_distance_mpc, np.float32) * u.Mpc
        t["distance"].description = "distance the sample was drawn at (log-normal, width distance_err / distance)"
    radii = {n: m.radius_kpc for n, m in pred.masses.items() if m.radius_kpc is not None}
    t.meta.update({
        "galaxy": pred.galaxy or "", "table": str(pred.table),
        "model": str(pred.model) if pred.model is not None else "",
        "ra": pred.ra_deg * u.deg, "dec": pred.dec_deg * u.deg, "distance": pred.distance_mpc * u.Mpc,
        "distance_err": pred.distance_err_mpc * u.Mpc, "vsys": pred.vsys_kms * u.km / u.s,
        "n_samples": int(len(s)), "n_distance_draws": int(pred.n_distance_draws), "seed": int(pred.seed),
        "radius_kpc": {n: float(r) for n, r in radii.items()}, "gcml_version": __version__,
        "comments": ["mass-npe posterior samples of log10 masses [dex(solMass)], the distance uncertainty "
                     "marginalised by drawing the distance (column distance)"]})
    return t


def _save(fig: Any, path: str | Path, overwrite: bool) -> Path:
    import matplotlib.pyplot as plt

    from gcml.io.common import atomic_output

    p = Path(path)
    with atomic_output(p, overwrite=overwrite) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return p


def plot_corner(pred: Any, path: str | Path, *, overwrite: bool = False, bins: int = 40) -> Path:
    """``corner.png``: the 1-D marginal of every target on the diagonal (median and 16/84 percentiles marked)
    and the pairwise 2-D histograms of the samples below it.

    All panels are drawn into one matplotlib Axes, each in its own unit square (tick labels on the outer
    edges, one frame per panel): with one Axes per panel the plot cost about 1 s of CPU, most of it
    building and drawing 21 Axes, which made the plots most of a 27-galaxy survey's time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Rectangle
    from matplotlib.ticker import MaxNLocator

    s = _check(pred)
    names = list(pred.masses)
    d = len(names)
    lims = []
    for j in range(d):
        lo, hi = np.percentile(s[:, j], [0.5, 99.5])
        pad = 0.05 * max(hi - lo, 1e-3)
        lims.append((lo - pad, hi + pad))
    gap = 0.08
    step = 1.0 + gap

    def unit(v: Any, j: int) -> np.ndarray:      # value of target j -> position in its panel's unit square
        return (np.asarray(v, float) - lims[j][0]) / (lims[j][1] - lims[j][0])

    size = max(1.9 * d, 4.0)
    fig = plt.figure(figsize=(size, size))
    ax = fig.add_axes((0.1, 0.1, 0.88, 0.83))
    frames, vx, vy0, vls = [], [], [], []
    for i in range(d):
        y0 = (d - 1 - i) * step
        for j in range(i + 1):   # the lower triangle only
            x0 = j * step
            frames.append(Rectangle((x0, y0), 1.0, 1.0))
            if i == j:
                h, e = np.histogram(s[:, j], bins=bins, range=lims[j])
                ax.stairs(y0 + 0.92 * h / max(h.max(), 1), x0 + unit(e, j), baseline=y0, color="C0", fill=True,
                          alpha=0.6)
                m = pred.masses[names[j]]
                for v, ls in ((m.median, "-"), (m.p16, "--"), (m.p84, "--")):
                    vx.append(x0 + float(np.clip(unit(v, j), 0, 1)))
                    vy0.append(y0)
                    vls.append(ls)
                ax.text(x0 + 0.5, y0 + 1.03, f"{m.median:.2f} +{m.plus:.2f} -{m.minus:.2f}", ha="center",
                        va="bottom", fontsize=8)
            else:
                h, _, _ = np.histogram2d(s[:, j], s[:, i], bins=bins, range=[lims[j], lims[i]])
                ax.imshow(h.T, origin="lower", extent=(x0, x0 + 1, y0, y0 + 1), aspect="auto", cmap="Greys",
                          interpolation="nearest")
    for ls in ("-", "--"):
        k = [n for n, v in enumerate(vls) if v == ls]
        ax.vlines([vx[n] for n in k], [vy0[n] for n in k], [vy0[n] + 1 for n in k], colors="k", linestyles=ls,
                  lw=0.8)
    ax.add_collection(PatchCollection(frames, facecolor="none", edgecolor="k", lw=0.8))
    xt, xl, yt, yl = [], [], [], []
    for j in range(d):
        ticks = [v for v in MaxNLocator(3).tick_values(*lims[j]) if lims[j][0] <= v <= lims[j][1]]
        xt += [j * step + float(unit(v, j)) for v in ticks]
        xl += [f"{v:g}" for v in ticks]
        ax.text(j * step + 0.5, -0.2, pred.masses[names[j]].label, ha="center", va="top", fontsize=8)
        if j > 0:   # rows 1.. have a 2-D panel in the first column: their y axis is target j
            y0 = (d - 1 - j) * step
            yt += [y0 + float(unit(v, j)) for v in ticks]
            yl += [f"{v:g}" for v in ticks]
            ax.text(-0.3, y0 + 0.5, pred.masses[names[j]].label, ha="right", va="center", rotation=90, fontsize=8)
    ax.set_xticks(xt, xl, fontsize=7)
    ax.set_yticks(yt, yl, fontsize=7)
    ax.set_xlim(-0.01, d * step - gap + 0.01)
    ax.set_ylim(-0.01, d * step - gap + 0.01)
    for sp in ax.spines.values():
        sp.set_visible(False)
    ax.set_title(f"{pred.galaxy or Path(pred.table).name}: mass-npe posterior, log10 M [Msun] "
                 f"({len(s)} samples)", fontsize=10, pad=22)
    return _save(fig, path, overwrite)


def plot_profile(pred: Any, path: str | Path, *, overwrite: bool = False) -> Path:
    """``profile.png``: the median enclosed mass M(< r) at the fixed radii of the targets (5, 10, 20, 50 kpc)
    with its 68 % and 95 % bands, M(< R_out) at R_out with 68 % / 95 % error bars, the Watkins et al. (2010)
    tracer mass estimate at R_out, and the total mass M200 + M* as a horizontal band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fixed = sorted((m.radius_kpc, m) for n, m in pred.masses.items()
                   if m.radius_kpc is not None and n != "log10_mass_within_rout")
    fig, ax = plt.subplots(figsize=(6.2, 4.6))
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.11, top=0.93)   # fixed: a layout engine doubles the cost
    if fixed:
        r = np.array([f[0] for f in fixed])
        ms = [f[1] for f in fixed]
        ax.fill_between(r, [m.p2_5 for m in ms], [m.p97_5 for m in ms], color="C0", alpha=0.18, lw=0,
                        label="95 %")
        ax.fill_between(r, [m.p16 for m in ms], [m.p84 for m in ms], color="C0", alpha=0.35, lw=0, label="68 %")
        ax.plot(r, [m.median for m in ms], "o-", color="C0", ms=4, label="median M(< r)")
    m = pred.masses.get("log10_mass_within_rout")
    if m is not None:
        ro = pred.r_out_kpc
        ax.errorbar([ro], [m.median], yerr=[[m.median - m.p2_5], [m.p97_5 - m.median]], fmt="none", ecolor="C3",
                    elinewidth=1, capsize=3)
        ax.errorbar([ro], [m.median], yerr=[[m.minus], [m.plus]], fmt="s", color="C3", elinewidth=2.5, ms=6,
                    label=f"M(< R_out = {ro:.1f} kpc)")
    tme = getattr(pred, "tme", {}) or {}
    if "median" in tme:
        ax.errorbar([pred.r_out_kpc * 1.07], [tme["median"]], yerr=[[tme["median"] - tme["p16"]],
                    [tme["p84"] - tme["median"]]], fmt="^", color="C2", ms=5, label="TME (Watkins+10) at R_out")
    tot = pred.masses.get("log10_mass_total")
    if tot is not None:
        ax.axhspan(tot.p16, tot.p84, color="0.5", alpha=0.2, lw=0)
        ax.axhline(tot.median, color="0.4", ls="--", lw=1, label=f"M200 + M* = {tot.median:.2f}")
    ax.set_xscale("log")
    ticks = sorted({f[0] for f in fixed})
    if m is not None and all(abs(math.log(pred.r_out_kpc / t)) > 0.25 for t in ticks):
        ticks = sorted([*ticks, round(pred.r_out_kpc, 1)])   # R_out labelled unless next to a fixed radius's tick
    if ticks:
        ax.set_xticks(ticks, [f"{v:g}" for v in ticks])
        ax.minorticks_off()
    ax.set_xlabel("r [kpc]")
    ax.set_ylabel("log10 M(< r) [Msun]")
    ax.set_title(f"{pred.galaxy or Path(pred.table).name}: enclosed mass (mass-npe posterior, "
                 f"{pred.n_gc_in_map} GCs in the map)", fontsize=10)
    ax.legend(fontsize=8, loc="best")
    return _save(fig, path, overwrite)
