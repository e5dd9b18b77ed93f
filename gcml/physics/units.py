"""Physical constants and unit conversions in gcml's internal units.

Internal units (see docs/conventions.md): length kpc, velocity km/s, mass Msun, time in kpc/(km/s)
(1 kpc/(km/s) = 0.9778 Gyr). With these, Newton's constant is ``G = 4.30091727e-6 kpc (km/s)^2 / Msun``
(CODATA 2018 G and the IAU nominal solar mass parameter).
"""

from __future__ import annotations

#: Speed of light in km/s (exact).
C_KMS = 299792.458
#: Newton's constant in kpc (km/s)^2 / Msun.
G = 4.300917270e-6
#: One kpc/(km/s) in Gyr.
TIME_UNIT_GYR = 0.97779222
#: Hubble constant (km/s/Mpc) used by the halo definitions (Planck-like h = 0.7).
H0 = 70.0
#: Little h.
LITTLE_H = H0 / 100.0
#: Critical density of the Universe at z = 0 in Msun / kpc^3: 3 H0^2 / (8 pi G).
RHO_CRIT = 3.0 * (H0 * 1e-3) ** 2 / (8.0 * 3.141592653589793 * G)
