"""Why pi-DOC's distance fails on the real N-body files: cluster sizes, light asymmetry, implied M/L.

Two parts, both printed as tables:

* ``--snapshots FILE_OR_DIR ...``: the projected (x-y) and 3-D half-mass radii of snapshots (gcml's own
  ``simulate-clusters`` output and the N-body files), around a shrinking-sphere centre;
* ``--fits DIR ...``: every ``image_*.fits`` of mock-observe ``--fits`` folders through ``predict_image``
  (one rotation), with the truth from the GCML* cards, and two candidate "resolved / lumpy light"
  statistics: the rotational asymmetry A of the prepared field about the refined centre (Conselice et al.
  2000, ``A = (sum |F - F_180| - N 2 sigma / sqrt(pi)) / (2 sum |F|)`` within ``r`` arcsec, the noise term
  removing the expectation of pure noise) and the mass-to-light ratio implied at the predicted distance.

Usage (the folders as ``benchmarks/bench_nbody_predict.py`` makes them, see docs/pidoc-results.md)::

    python benchmarks/nbody_diagnostics.py --snapshots snaps/ ../shared/data/nbody/nbody6pp_conf.3_0.dat
    python benchmarks/nbody_diagnostics.py --fits fits-snaps fits-nbody6pp_conf fits-clustertools_N10k
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def half_mass_radii(pos: np.ndarray, m: np.ndarray) -> tuple[float, float]:
    """(projected x-y, 3-D) half-mass radius about a shrinking-sphere centre (inner half of the stars)."""
    c = np.average(pos, axis=0, weights=m)
    for _ in range(10):
        r = np.linalg.norm(pos - c, axis=1)
        sel = r < np.percentile(r, 50)
        c = np.average(pos[sel], axis=0, weights=m[sel])
    out = []
    for r in (np.hypot(pos[:, 0] - c[0], pos[:, 1] - c[1]), np.linalg.norm(pos - c, axis=1)):
        o = np.argsort(r)
        cm = np.cumsum(m[o])
        out.append(float(r[o][np.searchsorted(cm, cm[-1] / 2)]))
    return out[0], out[1]


def asymmetry(flux: np.ndarray, noise: float, radius_px: float) -> float:
    """Rotational asymmetry about the field centre (the refined light centre), noise expectation removed."""
    h, w = flux.shape
    yy, xx = np.mgrid[0:h, 0:w]
    m = (yy - (h - 1) / 2) ** 2 + (xx - (w - 1) / 2) ** 2 <= radius_px**2
    d = np.abs(flux - flux[::-1, ::-1])[m].sum()
    s = noise if math.isfinite(noise) else 0.0
    return max(0.0, d - m.sum() * 2 * s / math.sqrt(math.pi)) / (2 * np.abs(flux[m]).sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--snapshots", nargs="*", default=[])
    ap.add_argument("--fits", nargs="*", default=[])
    ap.add_argument("--radius", type=float, default=5.0, help="aperture of A [arcsec]")
    a = ap.parse_args()
    if a.snapshots:
        from gcml.io.snapshots import read_snapshot

        print("| snapshot | stars | mass [Msun] | R_h projected [pc] | r_h 3-D [pc] |\n|---|---:|---:|---:|---:|")
        for src in a.snapshots:
            p = Path(src)
            for f in sorted(p.rglob("*.h5")) if p.is_dir() else [p]:
                s = read_snapshot(f)
                rp, r3 = half_mass_radii(np.asarray(s.pos, float), np.asarray(s.mass, float))
                print(f"| {f.name} | {len(s.mass):,} | {float(np.sum(s.mass)):,.0f} | {rp:.2f} | {r3:.2f} |")
    if a.fits:
        from astropy.io import fits

        from gcml.prediction.images import predict_image

        print("| folder | true d [kpc] | predicted d [kpc] | age [Gyr] | centre moved [\"] | A | M/L_V at predicted d |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for folder in a.fits:
            for f in sorted(Path(folder).glob("image_*.fits")):
                p = predict_image(f, rotations=1)
                d_true = float(fits.getheader(f)["GCMLDIST"])
                A = asymmetry(p.flux_v, p.noise_sigma, a.radius / 0.25)
                print(f"| {Path(folder).name} | {d_true:g} | {p.distance_kpc:.1f} | {p.age_gyr:.1f} | "
                      f"{p.centre_moved_arcsec:.2f} | {A:.3f} | {p.ml_v:.2f} |", flush=True)


if __name__ == "__main__":
    main()
