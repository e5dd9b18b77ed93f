"""Record the size and light asymmetry of a pi-DOC model's training clusters in its bundle.

``gcml predict`` compares two properties of a cluster with the model's training clusters
(``training_range`` of the bundle): the projected half-light radius (with ``--target``, the Harris 2010
r_h; pi-DOC reads distance largely from apparent size) and the rotational asymmetry A of the prepared
field (:func:`gcml.models.preparation.light_asymmetry`; resolved bright stars, foreground stars). Since
2026-11-26 ``gcml mock-observe`` stores each snapshot's half-light radius (``meta/r_half_light_pc``) and
``gcml train`` records its range; the asymmetry of *prepared, re-centred* images cannot be read off the
training MapSet (its images are smoothed and shifted), and older models lack both. This script measures
them on the model's recipe and adds them:

1. simulate the recipe's clusters, e.g. for the shipped default (``scripts/train_noise_aware_pidoc.py``:
   presets mw15-r1.6, mw15, mw15-r4, 50,000 stars, ages 1-12.5 Gyr every 0.5 Gyr)::

       for p in mw15-r1.6 mw15 mw15-r4; do
           gcml simulate-clusters -o SNAPS --preset $p --n-stars 50000 --ages 1:12.5:0.5 --seed 1 --simulation $p-s1
       done

2. observe them as the recipe does, but unsmoothed and unshifted, as FITS images (``gcml predict`` smooths
   and centres them itself), once per noise level (``clean``: none; ``ps1``/``sdss``: the recipe's
   ``noise_args``)::

       gcml mock-observe SNAPS -o X.h5 --distance 10:100:10 --psf 0.5:1.8:0.1 --n-random 2 --seed S \\
           --smoothing 0 --fov 60 --max-shift 0 --fits FITS_X [noise options]

3. ``python scripts/record_training_structure.py SNAPS gcml/data/models/pidoc-net-default.pt
   --fits FITS_clean FITS_ps1 FITS_sdss --write``

The half-light radius of each snapshot is the median of its x, y and z projections about the
shrinking-sphere centre, as mock-observe records it; the asymmetry of each image is measured as
``gcml predict`` measures it (``predict_image``: resampling, smoothing, centre refinement). Only the seed-1
cluster of each preset is simulated (the size follows the preset's r_h(t), docs/physics-clusters.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def radii(folder: Path) -> list[tuple[str, float, float]]:
    """(snapshot name, age [Gyr], projected half-light radius [pc]) of every snapshot, as mock-observe
    records it (:func:`gcml.io.snapshots.snapshot.projected_half_light_radius` about the same centre)."""
    from gcml.io.snapshots import read_snapshot
    from gcml.io.snapshots.snapshot import projected_half_light_radius
    from gcml.observe.photometric import cluster_centre

    out = []
    for f in sorted(folder.rglob("*.h5")):
        s = read_snapshot(f)
        out.append((f.name, float(s.age), projected_half_light_radius(s.pos - cluster_centre(s.pos, s.mass), s.lum_v)))
    return out


def asymmetries(folders: list[Path], model: Path) -> list[float]:
    """The asymmetry ``gcml predict`` measures on each ``image_*.fits`` of the folders."""
    from gcml.prediction.images import predict_image

    return [predict_image(f, model=model, rotations=1).asymmetry
            for d in folders for f in sorted(Path(d).glob("image_*.fits"))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("snapshots", type=Path)
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--fits", nargs="*", type=Path, default=[], help="mock-observe --fits folders (step 2)")
    ap.add_argument("--write", action="store_true", help="add training_range.r_half_light_pc (and asymmetry) to the bundle")
    a = ap.parse_args()
    rows = radii(a.snapshots)
    r = np.array([v[2] for v in rows])
    ages = np.array([v[1] for v in rows])
    for age in np.unique(ages):
        sel = ages == age
        print(f"age {age:5.2f} Gyr: R_h,light {r[sel].min():.2f}-{r[sel].max():.2f} pc")
    rng = [round(float(r.min()), 3), round(float(r.max()), 3)]
    print(f"{len(rows)} snapshots: projected half-light radius {rng[0]:.2f}-{rng[1]:.2f} pc")
    ranges = {"r_half_light_pc": rng}
    prov = {"r_half_light_pc": f"scripts/record_training_structure.py on the recipe's seed-1 clusters ({len(rows)} snapshots)"}
    if a.fits:
        asym = np.array(asymmetries(a.fits, a.bundle))
        asym = asym[np.isfinite(asym)]
        q = np.percentile(asym, [50, 90, 99, 100])
        print(f"{len(asym)} images: asymmetry median {q[0]:.3f}, 90% {q[1]:.3f}, 99% {q[2]:.3f}, max {q[3]:.3f}")
        ranges["asymmetry"] = [round(float(asym.min()), 4), round(float(asym.max()), 4)]
        prov["asymmetry"] = (f"scripts/record_training_structure.py on {len(asym)} unsmoothed, unshifted recipe images "
                             f"({', '.join(p.name for p in a.fits)}), prepared as gcml predict prepares them")
    if a.write:
        from gcml.models.bundle import ModelBundle

        b = ModelBundle.load(a.bundle)
        b.training_range.update(ranges)
        b.provenance.update(prov)
        b.save(a.bundle, overwrite=True)
        print(f"wrote training_range {ranges} into {a.bundle}")


if __name__ == "__main__":
    main()
