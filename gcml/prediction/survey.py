"""Masses of every galaxy of a multi-galaxy GC table (``gcml predict TABLE --galaxy all``).

For each galaxy of the table (:func:`gcml.io.survey.read_survey_table`: rows selected by galaxy, repeat
measurements combined by inverse-variance weighting):

1. centre, distance, systemic velocity and R_e from the shipped SLUGGS table (Forbes et al. 2017, Table 1;
   :func:`gcml.io.tables.lookup_galaxy`);
2. likely non-members flagged by the friendless rule (:func:`gcml.prediction.membership.flag_nonmembers`,
   10 neighbours, 3 sigma) and left out;
3. the cleaned catalogue written to ``<out>/<galaxy>/gcs.ecsv`` (every input row, with the combined
   velocity, the number of repeats and the member flag) and predicted by
   :func:`gcml.prediction.catalogue.predict_catalogue` (``prediction.json``, ``prediction.ecsv``, ``maps.fits``,
   ``maps.png``);
4. optionally two random halves of the members (seeded) predicted separately (split-half consistency),
   both at the galaxy's nominal distance: a distance error moves both halves together and cancels in their
   difference, so it is left out of the intervals compared, as is the model's systematic term;
5. one row per galaxy in ``<out>/summary.ecsv`` (units in the ECSV header), including the galaxies refused
   and why.

A galaxy is refused with its one-sentence reason (e.g. fewer than 10 GCs in the map) and the others go on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gcml.errors import GcmlError, InputError

#: The targets reported in the summary table, with their column stem.
SUMMARY_TARGETS = {
    "log10_mass_within_rout": "logM_rout", "log10_mass_within_5kpc": "logM_5kpc", "log10_mass_within_10kpc": "logM_10kpc",
    "log10_mass_within_20kpc": "logM_20kpc", "log10_mass_within_50kpc": "logM_50kpc", "log10_mass_total": "logM_total",
}
#: Split-half comparisons use the aperture (kpc) nearest the full catalogue's R_out among these.
SPLIT_APERTURES = (5, 10, 20, 50)


@dataclass
class GalaxyResult:
    """One galaxy of a survey prediction: its numbers, or why it was refused."""

    name: str
    status: str                     # "predicted" or "refused"
    reason: str = ""
    n_rows: int = 0
    n_gc: int = 0
    n_repeats_combined: int = 0
    n_nonmembers: int = 0
    prediction: Any = None          # CataloguePrediction
    splits: list[list[Any]] = field(default_factory=list)   # each random split's two predictions
    split_aperture_kpc: float | None = None
    notes: list[str] = field(default_factory=list)
    out_dir: Path | None = None

    @property
    def halves(self) -> list[Any]:
        """The first split's two predictions (empty when no split was predicted)."""
        return self.splits[0] if self.splits else []


@dataclass
class SurveyResult:
    """What :func:`predict_survey` computed and wrote."""

    table: Path
    galaxies: list[GalaxyResult]
    summary_path: Path | None
    seconds: float

    def to_table(self) -> Any:
        """One row per galaxy as an ``astropy.table.QTable`` with units (the ``summary.ecsv`` table,
        :func:`summary_table`)."""
        from astropy.table import QTable

        return QTable(summary_table(self.galaxies))

    def split_half_consistency(self) -> tuple[int, int]:
        """(agreeing, compared) over every split of every galaxy: splits whose two halves agree within the 68 %
        intervals, i.e. |m1 - m2| <= sqrt(s1^2 + s2^2) with s the half-widths of the 16-84 % intervals
        (:func:`split_half_difference`). With one split per galaxy these are galaxies."""
        agree = n = 0
        for g in self.galaxies:
            ds = split_half_differences(g)
            n += len(ds)
            agree += sum(abs(d) <= s for d, s in ds)
        return agree, n


def split_half_differences(g: GalaxyResult) -> list[tuple[float, float]]:
    """:func:`split_half_difference` of every split of ``g`` that could be compared."""
    ds = (split_half_difference(g, k) for k in range(len(g.splits)))
    return [d for d in ds if d is not None]


def split_half_difference(g: GalaxyResult, k: int = 0) -> tuple[float, float] | None:
    """(m1 - m2, sqrt(s1^2 + s2^2)) of the split halves' mass in the split aperture, or None. ``s`` is each
    half's 68 % half-width without the model's systematic term, which both halves share. ``k``: which split."""
    if k >= len(g.splits) or len(g.splits[k]) != 2 or g.split_aperture_kpc is None:
        return None
    key = f"log10_mass_within_{int(g.split_aperture_kpc)}kpc"
    a, b = (h.masses[key] for h in g.splits[k])
    # a model-systematic term (MassEstimate.systematic_std) is shared by the halves and cancels like the distance
    sa, sb = (math.sqrt(max((0.5 * (m.p84 - m.p16)) ** 2 - m.systematic_std**2, 0.0)) for m in (a, b))
    return a.median - b.median, math.hypot(sa, sb)


def _write_gcs(path: Path, sg: Any, info: Any, member: np.ndarray, overwrite: bool) -> None:
    from astropy import units as u
    from astropy.table import Table

    from gcml.io.common import atomic_output

    t = Table()
    t["row"] = sg.rows
    t["RAJ2000"] = sg.table.ra_deg * u.deg
    t["DEJ2000"] = sg.table.dec_deg * u.deg
    t["HRV"] = sg.table.v_kms * u.km / u.s
    t["e_HRV"] = sg.table.v_err_kms * u.km / u.s
    nrep = np.ones(len(sg.rows), int)
    for rows, _, _ in sg.repeats:
        nrep[np.flatnonzero(sg.rows == rows[0])] = len(rows)
    t["n_measurements"] = nrep
    t["member"] = member
    t.meta["galaxy"] = sg.name
    t.meta["comments"] = [*sg.notes, "member: False = likely non-member (friendless rule of Merrett et al. 2003, "
                          "10 neighbours, 3 sigma), left out of the prediction"]
    with atomic_output(path, overwrite=overwrite) as tmp:
        t.write(tmp, format="ascii.ecsv", overwrite=True)


def predict_survey(table: str | Path, out: str | Path, *, galaxy: str = "all", model: str | Path | dict | None = None,
                   n_samples: int | None = None, seed: int = 0, split_half: bool = False, n_splits: int = 1,
                   overwrite: bool = False,
                   distance_err_fraction: float | None = None, galaxy_col: str | None = None, plots: bool = True,
                   progress: Any = None, **columns: Any) -> SurveyResult:
    """Predict every galaxy (or one) of a multi-galaxy GC table; see the module docstring.

    Parameters
    ----------
    table : the survey table (e.g. SLUGGS table 5 as VizieR serves it)
    out : output folder (one sub-folder per galaxy and ``summary.ecsv``)
    galaxy : "all" or one galaxy's name
    model : model bundle path (default: the shipped model)
    n_samples : Monte Carlo draws (CNN models, default 1000) or posterior samples (mass-npe models, default
        10,000) per galaxy
    split_half : also predict two random halves of each catalogue (seeded by ``seed``)
    n_splits : with ``split_half``, how many independent random splits per galaxy (each two predictions); the
        consistency rate is counted over all of them, a less noisy estimate than one split per galaxy
    plots : write the PNGs: masses.png, mass_vs_mstar.png (and split_half.png) (:func:`plot_survey`) and each
        galaxy's (:func:`gcml.prediction.catalogue.save_prediction`); False: tables, JSON and FITS only
    progress : ``True`` for a tqdm.auto bar (notebooks), a callable ``progress(done, total)`` called after
        each galaxy, or None (silent) (:mod:`gcml.progress`)
    columns : ra_col, dec_col, v_col, verr_col for :func:`gcml.io.survey.read_survey_table`

    Raises
    ------
    InputError : unreadable table, an unknown galaxy, outputs that exist without ``overwrite``.
    """
    import time

    from gcml.io.common import check_output_path, make_output_dir
    from gcml.io.survey import read_survey_table
    from gcml.io.tables import MIN_GCS, lookup_galaxy
    from gcml.prediction.catalogue import predict_catalogue, save_prediction, tangent_plane
    from gcml.prediction.membership import flag_nonmembers
    from gcml.random import item_rng

    t0 = time.perf_counter()
    out = Path(out)
    gals = read_survey_table(table, galaxy=galaxy, galaxy_col=galaxy_col, **columns)
    summary = out / "summary.ecsv"
    for f in ("summary.ecsv", "masses.png", "mass_vs_mstar.png", "split_half.png"):
        check_output_path(out / f, overwrite=overwrite)
    from gcml.io.bundle import load_bundle
    from gcml.prediction.catalogue import default_model_path, prediction_files

    # the bundle is read once and reused for every galaxy
    bundle = model if isinstance(model, dict) else load_bundle(Path(model) if model is not None else default_model_path())
    posterior = bundle.get("task") == "catalogue-npe"  # mass-npe: posterior samples and plots as well
    for name in gals:
        gdir = out / name.replace(" ", "_")
        for p in (gdir / "gcs.ecsv", *prediction_files(gdir, posterior=posterior, plots=plots).values()):
            check_output_path(p, overwrite=overwrite)
    make_output_dir(out)
    results: list[GalaxyResult] = []
    names = sorted(gals, key=lambda s: (len(s), s))
    from gcml.progress import as_progress

    report = as_progress(progress, "galaxies", "galaxy")
    for i, name in enumerate(names):
        if report is not None:
            report(i, len(names))
        sg = gals[name]
        gdir = out / name.replace(" ", "_")
        res = GalaxyResult(name=name, status="refused", n_rows=sg.n_rows, n_gc=sg.table.n,
                           n_repeats_combined=sum(len(r) for r, _, _ in sg.repeats), notes=list(sg.notes), out_dir=gdir)
        results.append(res)
        try:
            info = lookup_galaxy(name)
        except InputError as exc:
            res.reason = str(exc)
            continue
        xi, eta, _ = tangent_plane(sg.table.ra_deg, sg.table.dec_deg, info.ra_deg, info.dec_deg)
        member = ~flag_nonmembers(xi, eta, sg.table.v_kms, sg.table.v_err_kms)
        res.n_nonmembers = int((~member).sum())
        if res.n_nonmembers:
            res.notes.append(f"{name}: {res.n_nonmembers} likely non-member(s) left out (rows "
                             f"{', '.join(map(str, sg.rows[~member][:20]))}; friendless rule, Merrett et al. 2003)")
        gdir.mkdir(parents=True, exist_ok=True)
        cat = gdir / "gcs.ecsv"
        _write_gcs(cat, sg, info, member, overwrite)
        if member.sum() < MIN_GCS:
            res.reason = (f"only {int(member.sum())} member GCs; expected at least {MIN_GCS} for a kinematic map")
            continue
        members_path = gdir / ".members.ecsv"
        _write_members(members_path, sg, member)
        derr = None if distance_err_fraction is None else distance_err_fraction * info.distance_mpc
        try:
            pred = predict_catalogue(members_path, bundle, galaxy=name, n_samples=n_samples, seed=seed,
                                     distance_err_mpc=derr)
        except GcmlError as exc:
            res.reason = str(exc).replace(str(members_path), name)
            members_path.unlink(missing_ok=True)
            continue
        pred.table = cat
        pred.notes = [*res.notes, *pred.notes]
        res.prediction = pred
        res.status = "predicted"
        save_prediction(pred, gdir, overwrite=overwrite, plots=plots)
        if split_half:
            rng = item_rng(seed, i)
            idx = np.flatnonzero(member)
            ap = min(SPLIT_APERTURES, key=lambda a: abs(math.log(a / max(pred.r_out_kpc, 1e-3))))
            for j in range(n_splits):
                perm = rng.permutation(idx)
                halves = (np.sort(perm[: len(idx) // 2]), np.sort(perm[len(idx) // 2:]))
                hp = []
                for k, h in enumerate(halves):
                    m = np.zeros(len(member), bool)
                    m[h] = True
                    _write_members(members_path, sg, m)
                    try:
                        # both halves lie at the same (uncertain) distance: its error moves them together and
                        # cancels in their difference, so the halves are compared at the nominal distance
                        hp.append(predict_catalogue(members_path, bundle, galaxy=name, n_samples=n_samples,
                                                    seed=seed + 1 + 2 * j + k, distance_err_mpc=0.0))
                    except GcmlError:   # e.g. a half with fewer than 10 GCs in the map: this split is skipped
                        hp = []
                        break
                if len(hp) == 2:
                    res.splits.append(hp)
            if res.splits:
                res.split_aperture_kpc = float(ap)
        members_path.unlink(missing_ok=True)
    if report is not None:
        report(len(names), len(names))
    write_summary(summary, results, overwrite=overwrite)
    if plots:
        plot_survey(results, out, overwrite=overwrite)
    dt = time.perf_counter() - t0
    from gcml.io.tables import source_path

    return SurveyResult(table=source_path(table), galaxies=results, summary_path=summary, seconds=dt)


def _write_members(path: Path, sg: Any, member: np.ndarray) -> None:
    from astropy import units as u
    from astropy.table import Table

    t = Table()
    t["RAJ2000"] = sg.table.ra_deg[member] * u.deg
    t["DEJ2000"] = sg.table.dec_deg[member] * u.deg
    t["HRV"] = sg.table.v_kms[member] * u.km / u.s
    t["e_HRV"] = sg.table.v_err_kms[member] * u.km / u.s
    t.write(path, format="ascii.ecsv", overwrite=True)


def summary_table(results: list[GalaxyResult]) -> Any:
    """One row per galaxy (astropy Table with units): inputs used, masses with 68/95 % intervals, TME,
    warnings, split-half results, status and reason."""
    from astropy import units as u
    from astropy.table import Table

    from gcml.io.tables import lookup_galaxy

    dex = u.dex(u.Msun)
    rows: dict[str, list] = {k: [] for k in (
        "galaxy", "status", "reason", "n_rows", "n_gc", "n_repeats_combined", "n_nonmembers", "n_gc_in_map",
        "distance", "vsys", "r_e", "r_out", "sigma_map", "logMstar")}
    stems = list(SUMMARY_TARGETS.values())
    for st in stems:
        for q in ("", "_p16", "_p84", "_p2_5", "_p97_5"):
            rows[st + q] = []
    for k in ("logM_tme", "logM_tme_p16", "logM_tme_p84", "split_aperture", "split_diff", "split_sigma",
              "n_splits", "split_agree_fraction", "n_warnings", "warnings"):
        rows[k] = []
    for g in results:
        p = g.prediction
        try:
            info = lookup_galaxy(g.name)
            lms = info.log10_mstar
        except InputError:
            info, lms = None, math.nan
        rows["galaxy"].append(g.name)
        rows["status"].append(g.status)
        rows["reason"].append(g.reason)
        rows["n_rows"].append(g.n_rows)
        rows["n_gc"].append(g.n_gc)
        rows["n_repeats_combined"].append(g.n_repeats_combined)
        rows["n_nonmembers"].append(g.n_nonmembers)
        rows["n_gc_in_map"].append(p.n_gc_in_map if p else 0)
        rows["distance"].append(p.distance_mpc if p else (info.distance_mpc if info else math.nan))
        rows["vsys"].append(p.vsys_kms if p else (info.vsys_kms if info else math.nan))
        rows["r_e"].append((p.r_e_kpc or math.nan) if p else (info.r_e_kpc if info else math.nan))
        rows["r_out"].append(p.r_out_kpc if p else math.nan)
        rows["sigma_map"].append(p.map_dispersion_kms if p else math.nan)
        rows["logMstar"].append(lms)
        for t, st in SUMMARY_TARGETS.items():
            m = p.masses.get(t) if p else None
            vals = (m.median, m.p16, m.p84, m.p2_5, m.p97_5) if m else (math.nan,) * 5
            for q, v in zip(("", "_p16", "_p84", "_p2_5", "_p97_5"), vals, strict=True):
                rows[st + q].append(v)
        tme = p.tme if p else {}
        rows["logM_tme"].append(tme.get("median", math.nan))
        rows["logM_tme_p16"].append(tme.get("p16", math.nan))
        rows["logM_tme_p84"].append(tme.get("p84", math.nan))
        d = split_half_difference(g)
        rows["split_aperture"].append(g.split_aperture_kpc if d else math.nan)
        rows["split_diff"].append(d[0] if d else math.nan)
        rows["split_sigma"].append(d[1] if d else math.nan)
        ds = split_half_differences(g)
        rows["n_splits"].append(len(ds))
        rows["split_agree_fraction"].append(float(np.mean([abs(a) <= b for a, b in ds])) if ds else math.nan)
        w = p.warnings if p else []
        rows["n_warnings"].append(len(w))
        rows["warnings"].append(" | ".join(w))
    t = Table(rows)
    units = {"distance": u.Mpc, "vsys": u.km / u.s, "r_e": u.kpc, "r_out": u.kpc, "sigma_map": u.km / u.s,
             "split_aperture": u.kpc, "split_diff": u.dex, "split_sigma": u.dex}
    for k, un in units.items():
        t[k].unit = un
    for k in t.colnames:
        if k.startswith("logM"):
            t[k].unit = dex
    t.meta["comments"] = [
        "gcml predict --galaxy all: one row per galaxy. logM_* are log10 masses [dex(Msun)]: median and 16/84 and "
        "2.5/97.5 percentiles; logM_rout is the 3D mass within R_out (outermost member GC in the map), logM_tme "
        "the Watkins et al. (2010) tracer mass estimate within R_out; logMstar from Forbes et al. (2017, Table 1).",
        "split_*: two random halves of the members predicted separately (at the nominal distance); split_diff = "
        "difference of their masses within split_aperture, split_sigma = quadrature sum of their 68 % half-widths "
        "without the model's systematic term (first split); split_agree_fraction: of the n_splits random splits, "
        "the fraction whose halves agree within split_sigma.",
    ]
    return t


def write_summary(path: Path, results: list[GalaxyResult], *, overwrite: bool = False) -> Path:
    """Write :func:`summary_table` as ECSV (atomically)."""
    from gcml.io.common import atomic_output

    t = summary_table(results)
    with atomic_output(path, overwrite=overwrite) as tmp:
        t.write(tmp, format="ascii.ecsv", overwrite=True)
    return path


def plot_survey(results: list[GalaxyResult], out: Path, *, overwrite: bool = False) -> dict[str, Path]:
    """Three PNGs in ``out``: ``masses.png`` (M(< r) with 68 % intervals per galaxy, the TME at R_out),
    ``mass_vs_mstar.png`` (M(< R_out) and M(< 50 kpc) against the stellar mass of Forbes et al. 2017) and,
    when halves were predicted, ``split_half.png`` (difference of the halves over its 68 % width)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gcml.io.common import atomic_output
    from gcml.io.tables import lookup_galaxy

    done = [g for g in results if g.prediction is not None]
    paths: dict[str, Path] = {}
    if not done:
        return paths

    def save(fig, name: str) -> None:
        p = out / name
        with atomic_output(p, overwrite=overwrite) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
        plt.close(fig)
        paths[name] = p

    n = len(done)
    ncol = min(6, n)
    nrow = -(-n // ncol)
    w, h = 2.6 * ncol, 2.3 * nrow
    fig, axes = plt.subplots(nrow, ncol, figsize=(w, h), squeeze=False, sharex=True)
    # fixed margins in inches (a layout engine costs seconds on 27 panels)
    fig.subplots_adjust(left=0.75 / w, right=1 - 0.1 / w, bottom=0.6 / h, top=1 - 0.3 / h, wspace=0.3, hspace=0.35)
    for ax, g in zip(axes.ravel(), done, strict=False):
        p = g.prediction
        r, med, lo, hi = [], [], [], []
        for ap in SPLIT_APERTURES:
            m = p.masses.get(f"log10_mass_within_{ap}kpc")
            if m is not None:
                r.append(ap)
                med.append(m.median)
                lo.append(m.median - m.p16)
                hi.append(m.p84 - m.median)
        ax.errorbar(r, med, yerr=[lo, hi], fmt="o-", ms=3, color="C0", label="network")
        m = p.masses["log10_mass_within_rout"]
        ax.errorbar([p.r_out_kpc], [m.median], yerr=[[m.median - m.p16], [m.p84 - m.median]], fmt="s", ms=4,
                    color="C3", label="M(<R_out)")
        if "median" in p.tme:
            ax.errorbar([p.r_out_kpc * 1.08], [p.tme["median"]], yerr=[[p.tme["median"] - p.tme["p16"]],
                        [p.tme["p84"] - p.tme["median"]]], fmt="^", ms=4, color="C2", label="TME")
        ax.set_xscale("log")
        ax.set_title(g.name + (" (!)" if p.warnings else ""), fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    axes[0, 0].legend(fontsize=6)
    fig.supxlabel("r [kpc]")
    fig.supylabel("log10 M(< r) [Msun]")
    save(fig, "masses.png")

    fig, ax = plt.subplots(figsize=(5.5, 4.5), constrained_layout=True)
    for key, lab, c in (("log10_mass_within_rout", "M(< R_out)", "C3"), ("log10_mass_within_50kpc", "M(< 50 kpc)", "C0")):
        xs, ys, e1, e2 = [], [], [], []
        for g in done:
            m = g.prediction.masses.get(key)
            if m is None:
                continue
            xs.append(lookup_galaxy(g.name).log10_mstar)
            ys.append(m.median)
            e1.append(m.median - m.p16)
            e2.append(m.p84 - m.median)
        ax.errorbar(xs, ys, yerr=[e1, e2], fmt="o", ms=4, color=c, label=lab)
    lim = np.array([10.0, 12.0])
    ax.plot(lim, lim, "k:", lw=1, label="M = M*")
    ax.set_xlabel("log10 M* [Msun] (Forbes et al. 2017)")
    ax.set_ylabel("log10 dynamical mass [Msun]")
    ax.legend(fontsize=8)
    save(fig, "mass_vs_mstar.png")

    diffs = [(g.name, *d) for g in done if (d := split_half_difference(g)) is not None]
    if diffs:
        fig, ax = plt.subplots(figsize=(7, 4), constrained_layout=True)
        x = np.arange(len(diffs))
        z = np.array([d / s for _, d, s in diffs])
        ax.axhspan(-1, 1, color="0.9", label="68 % (|z| <= 1)")
        ax.plot(x, z, "o", color="C0")
        ax.set_xticks(x, [nm for nm, _, _ in diffs], rotation=70, fontsize=7)
        ax.set_ylabel("(m1 - m2) / sqrt(s1^2 + s2^2)")
        agree = float(np.mean(np.abs(z) <= 1))
        ax.set_title(f"split halves: {agree:.2f} agree within 68 % (0.68 expected)")
        ax.legend(fontsize=8)
        save(fig, "split_half.png")
    return paths
