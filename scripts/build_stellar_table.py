"""Build gcml's stellar-evolution lookup table from the Hurley et al. (2000) SSE tracks (via COSMIC).

Developer-only: needs ``cosmic-popsynth`` (Breivik et al. 2020, ApJ 898, 71), which wraps Hurley's SSE/BSE
Fortran code. Install it outside the gcml environment, e.g.::

    python3 -m venv /tmp/cosmic && /tmp/cosmic/bin/pip install cosmic-popsynth numpy
    /tmp/cosmic/bin/python scripts/build_stellar_table.py -o gcml/data/stellar_table_sse.npz

Table layout (read by :mod:`gcml.physics.stellar`): for each metallicity Z and initial mass m, the
track is sampled at ``K = A + B + C`` points on three segments whose boundaries are the star's own
main-sequence lifetime ``t_ms`` (first time with stellar type >= 2) and remnant-formation time ``t_rem``
(first type >= 10), so that neighbouring masses are compared at equivalent evolutionary points
(the idea of "equivalent evolutionary phases", Hurley et al. 2000 Sect. 7; Dotter 2016):

* A: main sequence, ``x = t / t_ms`` in [0, 1] (uniform);
* B: post-main sequence, ``s = (t - t_ms) / (t_rem - t_ms)`` in [0, 1], ``s = 1 - (1 - u)^3`` with uniform u,
  dense at both ends (sub-giants; the short horizontal branch, AGB and thermal pulses at s > 0.99);
* C: remnant, ``log10(t - t_rem / Myr)`` from -2 to log10(21 Gyr) (uniform).

Stars that do not reach a segment within 40 Gyr (low masses) hold their last computed values there; the
runtime lookup never asks for them at ages below 20 Gyr except through interpolation neighbours.

Each point stores the current mass [Msun], log10 L [Lsun], log10 Teff [K], log10 R [Rsun] and the
Hurley stellar type. Single stars with COSMIC's defaults except the original Hurley et al. (2000) wind
mass loss (``windflag = 0``, Reimers eta = 0.5); remnant masses from the "delayed" prescription of
Fryer et al. (2012, ApJ 749, 91; ``remnantflag = 4``, COSMIC's default), because Hurley's original
prescription (``remnantflag = 0``) turns every star up to 50 Msun at Z = 0.001 into a neutron star of
< 2.2 Msun.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

MASSES = np.geomspace(0.07, 150.0, 160)
METALLICITIES = np.array([0.0001, 0.0003, 0.001, 0.003, 0.008, 0.02])
N_A, N_B, N_C = 41, 300, 40
T_MAX = 40_000.0  # Myr: evolve every star this long
T_AGE_MAX = 21_000.0  # Myr: the table serves ages up to 20 Gyr
COLS = ["tphys", "kstar_1", "mass_1", "lum_1", "rad_1", "teff_1"]


def grids() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = np.linspace(0.0, 1.0, N_A)
    u = np.linspace(0.0, 1.0, N_B)
    b = 1.0 - (1.0 - u) ** 3
    c = np.linspace(-2.0, np.log10(T_AGE_MAX), N_C)
    return a, b, c


def bse_settings() -> tuple[dict, dict]:
    import cosmic

    with open(os.path.join(os.path.dirname(cosmic.__file__), "data", "cosmic-settings.json")) as fh:
        settings = json.load(fh)
    bse, sse = {}, {}
    for cat in settings:
        if cat["category"] not in ("bse", "sse"):
            continue
        for s in cat["settings"]:
            default = [o["name"] for o in s.get("options", []) if o.get("default")][0]
            if default in ("True", "False"):
                default = default == "True"
            elif isinstance(default, str):
                try:
                    default = json.loads(default.replace("2.0/21.0", str(2.0 / 21.0)))
                except ValueError:
                    pass
            (bse if cat["category"] == "bse" else sse)[s["name"]] = default
    bse["windflag"] = 0
    bse["remnantflag"] = 4
    return bse, sse


def evolve(masses: np.ndarray, z: float, tphysf: np.ndarray, dtp: np.ndarray, bse: dict, sse: dict):
    from cosmic.evolve import Evolve
    from cosmic.sample.initialbinarytable import InitialBinaryTable

    n = masses.size
    ibt = InitialBinaryTable.InitialBinaries(
        m1=masses, m2=np.zeros(n), porb=np.zeros(n), ecc=np.zeros(n), tphysf=tphysf,
        kstar1=np.where(masses < 0.7, 0, 1), kstar2=np.full(n, 15), metallicity=np.full(n, z))
    ibt = ibt.assign(dtp=dtp)
    bpp, bcm, _, _ = Evolve.evolve(initialbinarytable=ibt, BSEDict=bse, SSEDict=sse, randomseed=1,
                                   bcm_columns=COLS)
    return bpp, bcm


def track_for_metallicity(z: float, bse: dict, sse: dict) -> dict[str, np.ndarray]:
    ga, gb, gc = grids()
    m = MASSES
    n = m.size
    # Pass 1: phase-change times only (bpp), evolved far enough to find t_ms and t_rem of every star.
    bpp, _ = evolve(m, z, np.full(n, 1.0e7), np.full(n, 1.0e7), bse, sse)
    t_ms = np.full(n, np.nan)
    t_rem = np.full(n, np.nan)
    for i in range(n):
        rows = bpp[bpp.bin_num == i]
        post = rows[rows.kstar_1 >= 2]
        rem = rows[rows.kstar_1 >= 10]
        if len(post):
            t_ms[i] = post.tphys.iloc[0]
        if len(rem):
            t_rem[i] = rem.tphys.iloc[0]
    # Low-mass stars that never leave the main sequence within 1e7 Myr: extrapolate log t_ms (log m).
    ok = np.isfinite(t_ms)
    if not ok.all():
        j = np.flatnonzero(ok)[:4]
        p = np.polyfit(np.log10(m[j]), np.log10(t_ms[j]), 1)
        t_ms[~ok] = 10 ** np.polyval(p, np.log10(m[~ok]))
    ok = np.isfinite(t_rem)
    t_rem[~ok] = t_ms[~ok] * (t_rem[ok][0] / t_ms[ok][0] if ok.any() else 1.1)

    # Pass 2: fine output through the main sequence and post-main sequence (per-star time step).
    t_end = np.minimum(t_rem * 1.00001, T_MAX)
    dtp = np.where(t_ms < T_MAX, (t_rem - t_ms) / 3000.0, T_MAX / 400.0)
    # COSMIC's bcm array holds a limited number of rows per star (about 40,000): stay below 30,000.
    dtp = np.clip(dtp, t_end / 30000.0, t_end / 200.0)
    # Pass 3: coarse output for the remnant phase.
    fields = {k: np.full((n, N_A + N_B + N_C), np.nan) for k in ("mass", "log_l", "log_teff", "log_r")}
    kst = np.full((n, N_A + N_B + N_C), -1, dtype=np.int8)
    chunk = 8
    for s in range(0, n, chunk):
        idx = np.arange(s, min(s + chunk, n))
        _, bcm_fine = evolve(m[idx], z, t_end[idx], dtp[idx], bse, sse)
        _, bcm_rem = evolve(m[idx], z, np.full(idx.size, T_MAX), np.full(idx.size, 5.0), bse, sse)
        for k, i in enumerate(idx):
            f = bcm_fine[bcm_fine.bin_num == k]
            r = bcm_rem[(bcm_rem.bin_num == k) & (bcm_rem.kstar_1 >= 10)]
            t = np.concatenate([f.tphys.to_numpy(), r.tphys.to_numpy()])
            order = np.argsort(t, kind="stable")
            t = t[order]
            cols = {
                "mass": np.concatenate([f.mass_1, r.mass_1])[order],
                "log_l": np.log10(np.maximum(np.concatenate([f.lum_1, r.lum_1])[order], 1e-30)),
                "log_teff": np.log10(np.maximum(np.concatenate([f.teff_1, r.teff_1])[order], 1.0)),
                "log_r": np.log10(np.maximum(np.concatenate([f.rad_1, r.rad_1])[order], 1e-12)),
            }
            ks = np.concatenate([f.kstar_1, r.kstar_1])[order].astype(int)
            t_query = np.concatenate([
                ga * t_ms[i],
                t_ms[i] + gb * (t_rem[i] - t_ms[i]),
                t_rem[i] + 10.0 ** gc,
            ])
            # Within each segment, sample only the rows of that segment (no blending across t_ms, t_rem).
            seg_of_row = np.where(ks >= 10, 2, np.where(ks >= 2, 1, 0))
            seg_of_q = np.repeat([0, 1, 2], [N_A, N_B, N_C])
            for sg in range(3):
                rows = seg_of_row == sg
                q = seg_of_q == sg
                reach = t_query <= t[-1] + 1e-9
                if rows.sum() == 0:
                    continue
                tt = t[rows]
                for name, v in cols.items():
                    fields[name][i, q & reach] = np.interp(t_query[q & reach], tt, v[rows])
                j = np.clip(np.searchsorted(tt, t_query[q & reach], side="right") - 1, 0, tt.size - 1)
                kst[i, q & reach] = ks[rows][j]
    # Hold the last computed value over points a star does not reach within T_MAX.
    for i in range(n):
        good = kst[i] >= 0
        j = np.maximum.accumulate(np.where(good, np.arange(good.size), 0))
        kst[i] = kst[i][j]
        for name in fields:
            fields[name][i] = fields[name][i][j]
    return {"t_ms": t_ms, "t_rem": t_rem, "kstar": kst, **fields}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-o", "--out", default="gcml/data/stellar_table_sse.npz")
    args = ap.parse_args()
    import cosmic

    bse, sse = bse_settings()
    ga, gb, gc = grids()
    per_z = []
    for z in METALLICITIES:
        t0 = time.time()
        per_z.append(track_for_metallicity(float(z), bse, sse))
        print(f"Z = {z}: {time.time() - t0:.1f} s", flush=True)
    out = {
        "masses": MASSES, "metallicities": METALLICITIES, "grid_a": ga, "grid_b": gb, "grid_c": gc,
        "t_ms": np.stack([d["t_ms"] for d in per_z]), "t_rem": np.stack([d["t_rem"] for d in per_z]),
        "kstar": np.stack([d["kstar"] for d in per_z]),
        "mass": np.stack([d["mass"] for d in per_z]).astype(np.float32),
        "log_l": np.stack([d["log_l"] for d in per_z]).astype(np.float32),
        "log_teff": np.stack([d["log_teff"] for d in per_z]).astype(np.float32),
        "log_r": np.stack([d["log_r"] for d in per_z]).astype(np.float32),
        "info": np.array(json.dumps({
            "source": "Hurley, Pols & Tout (2000) SSE via COSMIC (Breivik et al. 2020)",
            "cosmic_version": cosmic.__version__, "windflag": 0, "remnantflag": 4,
            "units": {"t_ms": "Myr", "t_rem": "Myr", "mass": "Msun", "log_l": "dex(Lsun)",
                      "log_teff": "dex(K)", "log_r": "dex(Rsun)", "grid_c": "dex(Myr)"},
            "t_max_myr": T_MAX,
        })),
    }
    np.savez_compressed(args.out, **out)
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
