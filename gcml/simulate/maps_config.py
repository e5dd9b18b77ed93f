"""The settings of ``simulate-maps``: :class:`SimulateMapsConfig`, the galaxy families and error models.

Kept apart from the simulation (:mod:`gcml.simulate.galaxies`) and light to import (no numpy), so that
the command line takes its option defaults from this dataclass (:func:`gcml.cli.common.default`)
without slowing ``gcml --help``. :mod:`gcml.simulate.galaxies` re-exports every name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gcml.errors import ConfigError

if TYPE_CHECKING:
    from gcml.observe.kinematic import MapGeometry

FAMILIES = ("disk", "merger", "unknown", "early", "early-ood")
#: Families written with split = 3 (ood): never trained on, for generalisation tests.
OOD_FAMILIES = ("unknown", "early-ood")
EARLY_KINDS = ("early", "early-ood")
APERTURES_KPC = (5, 10, 20, 50)
V_ERROR_MODELS = ("uniform", "sluggs")


def _option(field: str) -> str:
    """How messages name config field ``field``: in library terms, backquoted (```n_gc_min```); the CLI shows
    it as the option that sets it (``gcml.cli.common.user_errors`` with the command's ``FIELDS``)."""
    return f"`{field}`"


def _pair(v: Any, name: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v[0]), float(v[1])) if isinstance(v, (list, tuple)) else (float(v), float(v))
    except (TypeError, ValueError, IndexError):
        raise ConfigError(f"option {name}: expected 'low:high', got {v!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        raise ConfigError(f"option {name}: expected finite 'low:high' with low <= high, got {lo}:{hi}")
    return lo, hi


@dataclass(frozen=True)
class SimulateMapsConfig:
    """Everything ``simulate-maps`` needs; every field is also a command-line option and config key.

    Ranges are (low, high) tuples drawn uniformly (``log_m200`` in log10 Msun, i.e. log-uniform mass).
    """

    families: tuple[str, ...] = ("disk", "merger")
    n_galaxies: int = 2000
    views: int = 100
    seed: int = 0
    # GC system
    n_gc: int = 200
    n_gc_slope: float = 0.0
    n_gc_min: int = 10
    n_gc_max: int = 5000
    subsample: tuple[float, float] = (1.0, 1.0)
    v_error_kms: tuple[float, float] = (0.0, 0.0)
    v_error_model: str = "uniform"
    # Maps
    n_pix: int = 10
    extent_kpc: float = 40.0
    smoothing_kpc: float = 4.0
    min_count: float = 0.1
    subtract_errors: bool = False
    # Galaxy priors
    log_m200: tuple[float, float] = (11.0, 13.0)
    early_log_m200: tuple[float, float] = (11.0, 14.5)
    bulge_to_disk: tuple[float, float] = (0.0, 4.0)
    beta: tuple[float, float] = (0.0, 0.0)
    f_rot: tuple[float, float] = (0.0, 0.5)
    # Mergers
    mass_ratio: tuple[float, float] = (0.3, 1.0)
    f_v: tuple[float, float] = (0.05, 1.0)
    separation: tuple[float, float] = (4.0, 8.0)
    merger_steps: int = 600
    # Output
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    tme_alpha: float = 0.0
    tme_gamma: float = 3.0
    tme_beta: float = 0.0
    batch_galaxies: int = 128
    catalogues: bool = True

    def __post_init__(self) -> None:
        from gcml.config import check_finite_fields

        check_finite_fields(self)
        fams = tuple(str(f).strip() for f in self.families)
        bad = [f for f in fams if f not in FAMILIES]
        if not fams or bad:
            raise ConfigError(f"option `families`: unknown family {', '.join(bad) or '(none)'}; expected one or more of "
                              f"{', '.join(FAMILIES)}")
        object.__setattr__(self, "families", fams)
        for name in ("n_galaxies", "views", "n_gc", "n_pix", "merger_steps", "batch_galaxies", "n_gc_min", "n_gc_max"):
            v = getattr(self, name)
            if int(v) != v or v < 1:
                raise ConfigError(f"option {_option(name)}: expected a positive integer, got {v}")
        if self.n_gc_min > self.n_gc_max:
            raise ConfigError("options `n_gc_min`/`n_gc_max`: expected min <= max")
        if self.v_error_model not in V_ERROR_MODELS:
            raise ConfigError(f"option `v_error_model`: expected one of {', '.join(V_ERROR_MODELS)}, got "
                              f"'{self.v_error_model}'")
        for name in ("subsample", "v_error_kms", "log_m200", "early_log_m200", "bulge_to_disk", "beta", "f_rot", "mass_ratio", "f_v",
                     "separation"):
            object.__setattr__(self, name, _pair(getattr(self, name), _option(name)))
        checks = {
            "subsample": (0.0, 1.0, "fractions in (0, 1]"), "v_error_kms": (0.0, math.inf, "errors >= 0 km/s"),
            "log_m200": (8.0, 16.0, "log10 halo masses between 8 and 16"),
            "early_log_m200": (8.0, 16.0, "log10 halo masses between 8 and 16"),
            "bulge_to_disk": (0.0, 100.0, "ratios between 0 and 100"), "beta": (-10.0, 0.95, "anisotropies below 0.95"),
            "f_rot": (0.0, 0.95, "values in [0, 0.95]"), "mass_ratio": (0.01, 1.0, "ratios in [0.01, 1]"),
            "f_v": (0.0, 3.0, "values in [0, 3]"), "separation": (0.5, 50.0, "0.5-50 disk sizes"),
        }
        for name, (lo, hi, what) in checks.items():
            a, b = getattr(self, name)
            if a < lo or b > hi or (name == "subsample" and a <= 0):
                raise ConfigError(f"option {_option(name)}: {a}:{b} is impossible; expected {what}")
        fr = tuple(float(x) for x in self.split_fractions)
        if len(fr) != 3 or min(fr) < 0 or abs(sum(fr) - 1.0) > 1e-6:
            raise ConfigError(f"option `split_fractions`: expected three non-negative fractions summing to 1, got {list(fr)}")
        object.__setattr__(self, "split_fractions", fr)
        # validates the map geometry
        self.geometry  # noqa: B018

    @property
    def geometry(self) -> MapGeometry:
        from gcml.observe.kinematic import MapGeometry

        return MapGeometry(n_pix=int(self.n_pix), extent_kpc=float(self.extent_kpc),
                           smoothing_kpc=float(self.smoothing_kpc), min_count=float(self.min_count),
                           subtract_errors=bool(self.subtract_errors))
