"""The in-memory :class:`Snapshot` every reader returns, its units, and the half-mass radius."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from gcml.errors import InputError

#: Units of every :class:`Snapshot` field (in memory and in gcml files).
UNITS: dict[str, str] = {
    "pos": "pc",
    "vel": "km/s",
    "mass": "Msun",
    "mass_initial": "Msun",
    "lum_v": "Lsun",
    "lum_bol": "Lsun",
    "teff": "K",
    "radius": "Rsun",
    "kstar": "",
    "id": "",
    "age": "Gyr",
    "time": "Myr",
    "metallicity": "",
}

#: Per-particle fields that are optional (may be ``None``).
OPTIONAL_FIELDS = ("mass_initial", "lum_v", "lum_bol", "teff", "radius", "kstar", "id")

_DTYPES = {"kstar": np.int8, "id": np.int64}


@dataclass
class Snapshot:
    """One star cluster at one time (units in :data:`UNITS`).

    Attributes
    ----------
    pos : ndarray (N, 3), pc
    vel : ndarray (N, 3), km/s
    mass : ndarray (N,), Msun, current mass (remnants included)
    mass_initial, lum_v, lum_bol, teff, radius : ndarray (N,) or None
        Zero-age mass [Msun], V-band and bolometric luminosity [Lsun], effective temperature [K],
        radius [Rsun].
    kstar : ndarray (N,) int8 or None
        Stellar type of Hurley, Pols & Tout (2000): 0-1 main sequence, 2-9 giants and helium stars,
        10-12 white dwarfs, 13 neutron star, 14 black hole, 15 massless remnant.
    id : ndarray (N,) int64 or None
        Particle names (NBODY ``NAME``), kept through a time series.
    age : float or None
        Age of the stellar population [Gyr].
    time : float or None
        Simulation time [Myr].
    metallicity : float or None
        Metal mass fraction Z.
    simulation : str
        Name of the simulation the snapshot belongs to (used as the group id for data splits).
    meta : dict
        JSON-friendly scalar facts (e.g. ``r_half_pc``, ``mass_total``, ``preset``).
    attrs : dict
        Provenance read from a gcml file (command, config, seed, ...); ignored when writing.
    """

    pos: np.ndarray
    vel: np.ndarray
    mass: np.ndarray
    mass_initial: np.ndarray | None = None
    lum_v: np.ndarray | None = None
    lum_bol: np.ndarray | None = None
    teff: np.ndarray | None = None
    radius: np.ndarray | None = None
    kstar: np.ndarray | None = None
    id: np.ndarray | None = None
    age: float | None = None
    time: float | None = None
    metallicity: float | None = None
    simulation: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.pos = np.asarray(self.pos, dtype=float)
        self.vel = np.asarray(self.vel, dtype=float)
        self.mass = np.asarray(self.mass, dtype=float)
        if self.pos.ndim != 2 or self.pos.shape[1] != 3:
            raise InputError(f"snapshot {self.simulation!r}: pos must have shape (N, 3), got {self.pos.shape}")
        n = self.pos.shape[0]
        if self.vel.shape != (n, 3):
            raise InputError(f"snapshot {self.simulation!r}: vel must have shape ({n}, 3), got {self.vel.shape}")
        if self.mass.shape != (n,):
            raise InputError(f"snapshot {self.simulation!r}: mass must have shape ({n},), got {self.mass.shape}")
        for name in OPTIONAL_FIELDS:
            v = getattr(self, name)
            if v is None:
                continue
            v = np.asarray(v, dtype=_DTYPES.get(name, float))
            if v.shape != (n,):
                raise InputError(f"snapshot {self.simulation!r}: {name} must have shape ({n},), got {v.shape}")
            setattr(self, name, v)

    @property
    def n(self) -> int:
        """Number of particles."""
        return int(self.pos.shape[0])

    @property
    def units(self) -> dict[str, str]:
        """Units of the fields (always :data:`UNITS`)."""
        return dict(UNITS)

    @property
    def mass_total(self) -> float:
        """Total current mass [Msun]."""
        return float(self.mass.sum())

    @property
    def lum_v_total(self) -> float:
        """Total V-band luminosity [Lsun]; raises if the snapshot has none."""
        if self.lum_v is None:
            raise InputError(f"snapshot {self.simulation!r}: has no V-band luminosities (lum_v)")
        return float(self.lum_v.sum())

    def select(self, mask_or_index: np.ndarray) -> Snapshot:
        """A new snapshot with the particles selected by a boolean mask or an index array."""
        kw = {"pos": self.pos[mask_or_index], "vel": self.vel[mask_or_index], "mass": self.mass[mask_or_index]}
        for name in OPTIONAL_FIELDS:
            v = getattr(self, name)
            kw[name] = None if v is None else v[mask_or_index]
        return replace(self, **kw, meta=dict(self.meta), attrs=dict(self.attrs))


def half_mass_radius(snap: Snapshot, *, weights: np.ndarray | None = None, projected: bool = False) -> float:
    """Radius [pc] enclosing half of the total ``weights`` (default: mass) about the origin.

    Parameters
    ----------
    snap
        The snapshot.
    weights
        Per-particle weights (e.g. ``snap.lum_v`` for the half-light radius); default ``snap.mass``.
    projected
        Use the projected radius in the x-y plane instead of the 3D radius.
    """
    w = snap.mass if weights is None else np.asarray(weights, float)
    r = half_weight_radius(snap.pos[:, :2] if projected else snap.pos, w)
    if not np.isfinite(r):
        raise InputError(f"snapshot {snap.simulation!r}: no particles with positive weight")
    return r


def projected_half_light_radius(rel: np.ndarray, lum: np.ndarray) -> float:
    """A cluster's projected half-light radius [pc]: the median over its x-y, y-z and x-z projections of the
    radius about the origin (the cluster centre; ``rel`` (N, 3) positions relative to it) enclosing half of
    the luminosity ``lum``. One value per snapshot (what Harris 2010 lists as r_h for real clusters)."""
    return float(np.median([half_weight_radius(rel[:, ax], lum) for ax in ((0, 1), (1, 2), (0, 2))]))


def half_weight_radius(xyz: np.ndarray, weights: np.ndarray) -> float:
    """Radius about the origin enclosing half of the total ``weights`` (positions (N, 2) or (N, 3));
    NaN when the weights do not sum to a positive value."""
    r = np.sqrt((np.asarray(xyz, float) ** 2).sum(axis=1))
    order = np.argsort(r)
    cw = np.cumsum(np.asarray(weights, float)[order])
    if cw.size == 0 or not cw[-1] > 0:
        return float("nan")
    i = int(np.searchsorted(cw, 0.5 * cw[-1]))
    return float(r[order][min(i, r.size - 1)])


# ---------------------------------------------------------------------------------------------------
# Dispatch
# ---------------------------------------------------------------------------------------------------
