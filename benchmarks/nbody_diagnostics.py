"""Why pi-DOC's distance fails on the real N-body files: cluster sizes, light asymmetry, implied M/L.

Two parts, both printed as tables:

* ``--snapshots FILE_OR_DIR ...``: the projected (x-y) and 3-D half-mass radii of snapshots (gcml's own
  ``simulate-clusters`` output and the N-body files), around the shrinking-sphere centre mock-observe uses;
* ``--fits DIR ...``: every ``image_*.fits`` of mock-observe ``--fits`` folders through ``predict_image``
  (one rotation), with the truth from the GCML* cards, and two candidate "resolved / lumpy light"
  statistics: the rotational asymmetry A of the prepared field about the refined centre
  (:func:`gcml.models.preparation.light_asymmetry`, Conselice et al. 2000, within ``--radius`` arcsec; what
  ``gcml predict`` reports) and the mass-to-light ratio implied at the predicted distance.

Usage (the folders as ``benchmarks/bench_nbody_predict.py`` makes them, see docs/pidoc-results.md)::

    python benchmarks/nbody_diagnostics.py --snapshots snaps/ ../shared/data/nbody/nbody6pp_conf.3_0.dat
    python benchmarks/nbody_diagnostics.py --fits fits-snaps fits-nbody6pp_conf fits-clustertools_N10k
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def half_mass_radii(pos: np.ndarray, m: np.ndarray) -> tuple[float, float]:
    """(projected x-y, 3-D) half-mass radius about the shrinking-sphere centre mock-observe uses."""
    from gcml.io.snapshots.snapshot import half_weight_radius
    from gcml.observe.photometric import cluster_centre

    rel = pos - cluster_centre(pos, m)
    return half_weight_radius(rel[:, :2], m), half_weight_radius(rel, m)


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

        from gcml.models.preparation import ASYMMETRY_RADIUS_ARCSEC, light_asymmetry
        from gcml.prediction.images import predict_image

        print("| folder | true d [kpc] | predicted d [kpc] | age [Gyr] | centre moved [\"] | A | M/L_V at predicted d |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for folder in a.fits:
            for f in sorted(Path(folder).glob("image_*.fits")):
                p = predict_image(f, rotations=1)
                d_true = float(fits.getheader(f)["GCMLDIST"])
                A = p.asymmetry if a.radius == ASYMMETRY_RADIUS_ARCSEC else light_asymmetry(
                    p.flux_v, p.noise_sigma, a.radius / 0.25)
                print(f"| {Path(folder).name} | {d_true:g} | {p.distance_kpc:.1f} | {p.age_gyr:.1f} | "
                      f"{p.centre_moved_arcsec:.2f} | {A:.3f} | {p.ml_v:.2f} |", flush=True)


if __name__ == "__main__":
    main()
