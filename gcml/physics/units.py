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


def as_value(value, unit: str, name: str):
    """A number in ``unit`` from a plain number (taken to be in ``unit`` already) or an astropy Quantity /
    Angle / Distance in any compatible unit, so that library functions accept what a user has.

    Raises ``InputError`` naming the argument when a Quantity's unit does not convert.
    """
    if value is None:
        return None
    if hasattr(value, "unit") and hasattr(value, "to_value"):
        import astropy.units as u

        try:
            return value.to_value(u.Unit(unit))
        except u.UnitConversionError:
            from gcml.errors import InputError

            raise InputError(f"{name}: a quantity in {value.unit} cannot be converted to {unit}") from None
    return value


def radec_deg(ra, dec, position, name: str = "position") -> tuple:
    """``(ra, dec)`` in degrees from numbers/Angles or a SkyCoord ``position`` (any frame; ICRS is used)."""
    if position is not None:
        if ra is not None or dec is not None:
            from gcml.errors import InputError

            raise InputError(f"{name}: give either a SkyCoord or ra and dec, not both")
        c = position.icrs
        return float(c.ra.deg), float(c.dec.deg)
    return as_value(ra, "deg", "ra"), as_value(dec, "deg", "dec")
