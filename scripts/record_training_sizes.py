"""Record the projected half-light radii of a pi-DOC model's training clusters in its bundle.

Since 2026-11-26 ``gcml mock-observe`` stores each image's projected half-light radius
(``meta/r_half_light_pc``) and ``gcml train`` records its range in the bundle (``training_range``), so
``gcml predict --target NAME`` can compare it with the Harris (2010) half-light radius of the cluster
(pi-DOC reads distance largely from apparent size: docs/pidoc-results.md). Models trained before that lack
the range; this script measures it on snapshots of the same recipe and adds it:

1. simulate the recipe's clusters, e.g. for the shipped default (``scripts/train_noise_aware_pidoc.py``:
   presets mw15-r1.6, mw15, mw15-r4, 50,000 stars, ages 1-12.5 Gyr every 0.5 Gyr)::

       for p in mw15-r1.6 mw15 mw15-r4; do
           gcml simulate-clusters -o SNAPS --preset $p --n-stars 50000 --ages 1:12.5:0.5 --seed 1 --simulation $p-s1
       done

2. ``python scripts/record_training_sizes.py SNAPS gcml/data/models/pidoc-net-default.pt --write``

The radius of each snapshot is the median of its x, y and z projections about the shrinking-sphere centre,
as mock-observe records it; only the seed-1 cluster of each preset is simulated (the size follows the preset's r_h(t), docs/physics-clusters.md, so other seeds differ little).
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("snapshots", type=Path)
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--write", action="store_true", help="add training_range.r_half_light_pc to the bundle")
    a = ap.parse_args()
    rows = radii(a.snapshots)
    r = np.array([v[2] for v in rows])
    ages = np.array([v[1] for v in rows])
    for age in np.unique(ages):
        sel = ages == age
        print(f"age {age:5.2f} Gyr: R_h,light {r[sel].min():.2f}-{r[sel].max():.2f} pc")
    rng = [float(r.min()), float(r.max())]
    print(f"{len(rows)} snapshots: projected half-light radius {rng[0]:.2f}-{rng[1]:.2f} pc")
    if a.write:
        from gcml.models.bundle import ModelBundle

        b = ModelBundle.load(a.bundle)
        b.training_range["r_half_light_pc"] = [round(rng[0], 3), round(rng[1], 3)]
        b.provenance["r_half_light_pc"] = ("scripts/record_training_sizes.py on the recipe's seed-1 clusters "
                                           f"({len(rows)} snapshots)")
        b.save(a.bundle, overwrite=True)
        print(f"wrote training_range.r_half_light_pc = {b.training_range['r_half_light_pc']} into {a.bundle}")


if __name__ == "__main__":
    main()
