"""Make a Pan-STARRS1-style r-band cutout (asinh-scaled, PS1 header, NaN border) from one gcml mock image.

Usage: python examples/make_ps1_cutout.py IMAGES.h5 OUT.fits [--index 0] [--ra 250.4218 --dec 36.4599]
       [--band r] [--g-minus-r 0.5] [--overwrite]

We have no real PS1 files here; this stands in for one (gcml.prediction.synthetic documents the header).
The truth (mass in the field, age, distance) of the mock is printed so the prediction can be checked.
"""

from __future__ import annotations

import argparse

import numpy as np

from gcml.io.mapset import read_mapset
from gcml.prediction.synthetic import write_ps1_cutout

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("images")
ap.add_argument("out")
ap.add_argument("--index", type=int, default=0)
ap.add_argument("--ra", type=float, default=250.4218)
ap.add_argument("--dec", type=float, default=36.4599)
ap.add_argument("--band", default="r")
ap.add_argument("--g-minus-r", type=float, default=0.5)
ap.add_argument("--overwrite", action="store_true")
a = ap.parse_args()
ms = read_mapset(a.images)
i = a.index
write_ps1_cutout(a.out, ms.maps[i, ms.channels.index("flux")], ra=a.ra, dec=a.dec, band=a.band,
                 g_minus_r=a.g_minus_r, overwrite=a.overwrite)
mass = float(ms.truth["mass"][i].astype(float).sum())
print(f"wrote {a.out}: truth mass in the field {mass:.4g} Msun (log10 {np.log10(mass):.3f}), "
      f"age {float(ms.targets['age'][i]):.2f} Gyr, distance {float(ms.targets['distance'][i]):.1f} kpc")
