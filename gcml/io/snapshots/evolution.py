"""Luminosities for snapshots that have none: the Reed (1998) bolometric correction or the SSE table."""

from __future__ import annotations

from gcml.errors import InputError
from gcml.io.snapshots.snapshot import Snapshot


def with_luminosities(snap: Snapshot, *, age_gyr: float | None = None, metallicity: float | None = None,
                      replace_existing: bool = False) -> Snapshot:
    """Return the snapshot with V-band luminosities (and L_bol, Teff, R, type where missing).

    * If it has ``lum_v`` already (and ``replace_existing`` is false), it is returned unchanged.
    * If it has ``lum_bol`` and ``teff``, ``lum_v`` follows from the Reed (1998) bolometric correction.
    * Otherwise every star is looked up in the SSE table (:mod:`gcml.physics.stellar`) at ``age_gyr``
      and ``metallicity`` (default: the snapshot's own), from ``mass_initial`` or, when the snapshot
      has none, from the current mass taken as the initial mass (exact for main-sequence stars; stars
      that have lost mass are then treated as younger, lower-mass stars). Current masses are kept.
    """
    from gcml.physics.photometry import lum_v_from_bolometric

    if snap.lum_v is not None and not replace_existing:
        return snap
    if snap.lum_bol is not None and snap.teff is not None:
        out = snap.select(slice(None))
        out.lum_v = lum_v_from_bolometric(snap.lum_bol, snap.teff)
        return out
    from gcml.physics.stellar import evolve_stars

    age = age_gyr if age_gyr is not None else snap.age
    z = metallicity if metallicity is not None else snap.metallicity
    if age is None:
        raise InputError(f"snapshot {snap.simulation!r}: has no luminosities and no age; give the age in Gyr")
    if z is None:
        raise InputError(f"snapshot {snap.simulation!r}: has no luminosities and no metallicity; give Z")
    m0 = snap.mass_initial if snap.mass_initial is not None else snap.mass
    props = evolve_stars(m0, age, z)
    out = snap.select(slice(None))
    out.lum_v, out.lum_bol, out.teff, out.radius = props.lum_v, props.lum_bol, props.teff, props.radius
    if out.kstar is None:
        out.kstar = props.kstar
    out.age, out.metallicity = age, z
    return out
