"""The settings of ``simulate-clusters``: :class:`SimulateClustersConfig` and the presets.

Kept apart from the simulation (:mod:`gcml.simulate.clusters`, which re-exports these names) and light to
import (no numpy), so that the command line takes its option defaults from this dataclass
(:func:`gcml.cli.common.default`) without slowing ``gcml --help``.
"""

from __future__ import annotations

from dataclasses import dataclass

from gcml.errors import ConfigError, InputError

PRESETS: dict[str, dict] = {
    "mw15-r1.6": {"r_half_pc": 1.6},
    "mw15": {"r_half_pc": 3.2},
    "mw15-r4": {"r_half_pc": 4.0},
}
_BASE = {"n_stars": 50_000, "m_min": 0.1, "m_max": 50.0, "metallicity": 0.001, "r_gal_kpc": 15.0,
         "v_circ_kms": 220.0}


@dataclass(frozen=True)
class SimulateClustersConfig:
    """Settings of ``gcml simulate-clusters`` (``None`` means: the preset's value).

    Attributes
    ----------
    preset : ``mw15-r1.6``, ``mw15`` or ``mw15-r4``
    ages : ages in Gyr, ``"a,b,c"`` or ``"start:stop:step"`` (0-20 Gyr)
    seed : seed of the IMF draw and of every random step
    n_stars, metallicity, r_half_pc, r_gal_kpc, v_circ_kms, m_min, m_max, retain_ns, retain_bh
        Override the preset (see :class:`gcml.physics.cluster.ClusterParams`).
    simulation : name of the simulation (default: the preset name, with ``-s<seed>``)
    dtype : floating-point type on disk
    """

    preset: str = "mw15"
    ages: str = "0.5:14:0.05"
    seed: int = 0
    n_stars: int | None = None
    metallicity: float | None = None
    r_half_pc: float | None = None
    r_gal_kpc: float | None = None
    v_circ_kms: float | None = None
    m_min: float | None = None
    m_max: float | None = None
    retain_ns: float | None = None
    retain_bh: float | None = None
    simulation: str | None = None
    dtype: str = "float32"

    def age_list(self) -> list[float]:
        from gcml.config import parse_list

        ages = parse_list(self.ages, name="`ages`", kind=float)
        bad = [a for a in ages if not 0 <= a <= 20]
        if bad:
            raise ConfigError(f"option `ages`: ages must lie in 0-20 Gyr, got {bad[0]}")
        return ages

    def cluster_params(self):
        from gcml.physics.cluster import ClusterParams

        if self.preset not in PRESETS:
            raise ConfigError(f"option `preset`: unknown preset '{self.preset}'; choose one of {', '.join(PRESETS)}")
        kw = {**_BASE, **PRESETS[self.preset]}
        for f in ("n_stars", "metallicity", "r_half_pc", "r_gal_kpc", "v_circ_kms", "m_min", "m_max",
                  "retain_ns", "retain_bh"):
            v = getattr(self, f)
            if v is not None:
                kw[f] = v
        if self.dtype not in ("float32", "float64"):
            raise ConfigError(f"option `dtype`: expected float32 or float64, got {self.dtype}")
        params = ClusterParams(**kw)
        try:
            params.check()
        except InputError as exc:
            # ClusterParams names its fields (n_stars: ..., m_min, m_max: ...), which are fields of this
            # config too: name them as every config message does (backquoted; the CLI shows the options)
            msg = str(exc)
            head, sep, rest = msg.partition(": ")
            names = head.split(", ")
            if sep and all(n in self.__dataclass_fields__ for n in names):
                msg = f"option{'s' if len(names) > 1 else ''} {'/'.join(f'`{n}`' for n in names)}: {rest}"
            raise ConfigError(msg) from None
        return params

    def __post_init__(self) -> None:
        from gcml.config import check_finite_fields

        check_finite_fields(self)

    def simulation_name(self) -> str:
        from gcml.io.common import check_name

        if self.simulation is not None:
            return check_name(self.simulation, "`simulation`")
        return check_name(f"{self.preset}-s{self.seed}", "`preset`")
