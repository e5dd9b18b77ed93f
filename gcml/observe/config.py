"""The settings of ``mock-observe``: :class:`MockObserveConfig`, its :class:`NoiseConfig` and
:class:`ImageGeometry`.

Kept apart from the image-making code (:mod:`gcml.observe.mock`, :mod:`gcml.observe.photometric`) and
light to import (no numpy), so that the command line takes its option defaults from these dataclasses
(:func:`gcml.cli.common.default`) without slowing ``gcml --help``. Both names are re-exported where they
used to live.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

from gcml.errors import ConfigError


@dataclass(frozen=True)
class ImageGeometry:
    """The pixel grid of a mock image: a square field ``fov_arcsec`` wide, ``pixel_scale`` arcsec/px."""

    fov_arcsec: float = 40.0
    pixel_scale: float = 0.25

    def __post_init__(self) -> None:
        for name in ("fov_arcsec", "pixel_scale"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ConfigError(f"option `{name}`: "
                                  f"expected a positive number of arcsec, got {v}")
        if self.fov_arcsec < self.pixel_scale:
            raise ConfigError(f"option `fov_arcsec`: the field ({self.fov_arcsec} arcsec) is smaller than one pixel "
                              f"({self.pixel_scale} arcsec)")

    @property
    def n_pix(self) -> int:
        """Pixels per side: ``round(fov / pixel_scale)``."""
        return max(1, int(round(self.fov_arcsec / self.pixel_scale)))

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """(x_min, x_max, y_min, y_max) in arcsec, centred on the field centre."""
        h = self.n_pix * self.pixel_scale / 2
        return (-h, h, -h, h)


#: What train/val/test splits are drawn over: whole simulations (no simulation in two splits; needs
#: several simulations), single snapshots (ages of one simulation may fall in different splits), or
#: single images (as pi-DOC did: views of one snapshot in both training and test sets).
SPLIT_BY = ("auto", "simulation", "snapshot", "image")
#: ``--fits DIR`` files: gcml's (flux + MASS extension, TAN WCS) or Pan-STARRS1-style r-band cutouts
#: (:mod:`gcml.observe.synthetic`: counts with the PS1 zero point, asinh scaling, NaN border, PS1 header)
FITS_FLAVOURS = ("gcml", "ps1")


@dataclass(frozen=True)
class NoiseConfig:
    """Observational effects beyond pi-DOC (all off by default).

    Attributes
    ----------
    zeropoint : float
        V magnitude giving 1 count per second (Pan-STARRS1 stacks: 25 + 2.5 log10 EXPTIME per exposure).
    exptime : float
        Exposure time [s].
    sky_mag : float or None
        Sky surface brightness [V mag arcsec^-2] (dark sky about 21.8); None: no sky.
    poisson : bool
        Poisson noise on source + sky counts.
    read_noise : float
        Gaussian read noise [counts per pixel, rms].
    saturation : float or None
        Pixels above this many counts are clipped (before sky subtraction).
    field_density : float
        Field stars per arcmin^2 between ``field_mag_min`` and ``field_mag_max`` (0: none).
    field_mag_min, field_mag_max : float
        V-magnitude range of field stars.
    field_slope : float
        Slope of the field-star number counts, dN/dm ∝ 10^(slope m) (about 0.3 at high latitude).
    """

    zeropoint: float = 25.0
    exptime: float = 100.0
    sky_mag: float | None = None
    poisson: bool = False
    read_noise: float = 0.0
    saturation: float | None = None
    field_density: float = 0.0
    field_mag_min: float = 14.0
    field_mag_max: float = 24.0
    field_slope: float = 0.3

    def __post_init__(self) -> None:
        from gcml.config import check_finite_fields

        check_finite_fields(self)
        if not self.exptime > 0:
            raise ConfigError(f"option `exptime`: expected a positive number of seconds, got {self.exptime}")
        if self.read_noise < 0:
            raise ConfigError(f"option `read_noise`: expected >= 0, got {self.read_noise}")
        if self.saturation is not None and not self.saturation > 0:
            raise ConfigError(f"option `saturation`: expected a positive number of counts, got {self.saturation}")
        if self.field_density < 0 or self.field_mag_max < self.field_mag_min:
            raise ConfigError("field stars: expected density >= 0 and field_mag_min <= field_mag_max")

    @property
    def detector(self) -> bool:
        """True when any effect is applied after the PSF (sky, noise, saturation)."""
        return self.sky_mag is not None or self.poisson or self.read_noise > 0 or self.saturation is not None

    @property
    def active(self) -> bool:
        return self.detector or self.field_density > 0


KINDS = ("photometry", "kinematics")
FLUX_CONVENTIONS = ("gcml", "pidoc")
CENTRES = ("shrinking-sphere", "com", "origin")
AXIS_CHOICES = ("x", "y", "z", "random")
#: (theta, phi) of the named axes, as in gcml.observe.kinematic.view_basis
AXIS_ANGLES = {"x": (math.pi / 2, 0.0), "y": (math.pi / 2, math.pi / 2), "z": (0.0, 0.0)}


@dataclass(frozen=True)
class MockObserveConfig:
    """Everything that decides the images; stored (resolved) in the output file.

    Photometry (Chardin & Bianchini 2021, Section 2.2; defaults are the paper's):

    psf_fwhm : PSF FWHMs [arcsec]; distance_kpc : distances [kpc]; axes : lines of sight (x, y, z or
    random); the grid axes x distance x PSF is made for every snapshot, or ``n_random`` images drawn
    from it (with replacement when ``n_random`` exceeds the grid). fov_arcsec, pixel_scale : the field
    and its pixels; smoothing_px : Gaussian sigma of both maps; max_shift_arcsec : centre shift, uniform
    in [-max, max] per axis; rotate : random rotation by 0/90/180/270 deg; beta : Moffat index;
    flux_convention : "gcml" (F = L_V / (4 pi d^2) per pixel, Lsun kpc^-2) or "pidoc" (log10 of that,
    see docs/mock-observe.md; ``pidoc_four_pi`` and ``pidoc_floor`` set its details); age_gyr,
    metallicity : for snapshots without ages / luminosities; centre : how the cluster centre is found;
    noise : beyond the paper (off by default).

    Kinematics (the map code of gcml.observe.kinematic): kin_n_pix, kin_extent_kpc, kin_smoothing_kpc,
    kin_min_count; ``n_random`` random viewing directions per snapshot (axes "random") or the named axes.

    Output: compression of the MapSet: "none" (default) or "gzip" (level 1 with shuffle). Measured on
    160x160 mock images: gzip saves about 30% of the file size but costs ~3.4 ms of CPU per image, as
    much as making the image (docs/benchmarks.md), so it is off by default.
    """

    kind: str = "photometry"
    psf_fwhm: tuple[float, ...] = (0.5, 1.5)
    distance_kpc: tuple[float, ...] = (10.0, 25.0, 50.0, 75.0, 100.0)
    axes: tuple[str, ...] = ("z",)
    n_random: int = 0
    fov_arcsec: float = 40.0
    pixel_scale: float = 0.25
    smoothing_px: float = 4.0
    max_shift_arcsec: float = 5.0
    rotate: bool = True
    beta: float = 2.5
    flux_convention: str = "gcml"
    pidoc_four_pi: bool = True
    pidoc_floor: float = 1e-9
    age_gyr: float | None = None
    metallicity: float | None = None
    centre: str = "shrinking-sphere"
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    fits_flavour: str = "gcml"
    fits_ra: float = 180.0
    fits_dec: float = 0.0
    kin_n_pix: int = 10
    kin_extent_kpc: float = 40.0
    kin_smoothing_kpc: float = 4.0
    kin_min_count: float = 0.1
    pattern: str | None = None
    partial_series: bool = False
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    split_by: str = "auto"
    compression: str = "none"
    seed: int = 0

    def __post_init__(self) -> None:
        from gcml.config import check_finite_fields

        check_finite_fields(self)
        if self.kind not in KINDS:
            raise ConfigError(f"option `kind`: expected photometry or kinematics, got '{self.kind}'")
        if self.flux_convention not in FLUX_CONVENTIONS:
            raise ConfigError(f"option `flux_convention`: expected gcml or pidoc, got '{self.flux_convention}'")
        if self.centre not in CENTRES:
            raise ConfigError(f"option `centre`: expected one of {', '.join(CENTRES)}, got '{self.centre}'")
        if not self.axes:
            raise ConfigError("option `axes`: give at least one of x, y, z, random")
        for a in self.axes:
            if a not in AXIS_CHOICES:
                raise ConfigError(f"option `axes`: expected x, y, z or random, got '{a}'")
        f = self.split_fractions
        if len(f) != 3 or any(not (v >= 0) for v in f) or abs(sum(f) - 1) > 1e-6:
            raise ConfigError(f"option `split_fractions`: expected three fractions >= 0 summing to 1, got {list(f)}")
        if self.split_by not in SPLIT_BY:
            raise ConfigError(f"option `split_by`: expected one of {', '.join(SPLIT_BY)}, got '{self.split_by}'")
        if self.fits_flavour not in FITS_FLAVOURS:
            raise ConfigError(f"option `fits_flavour`: expected gcml or ps1, got '{self.fits_flavour}'")
        if self.fits_flavour == "ps1" and (self.kind != "photometry" or self.flux_convention != "gcml"):
            raise ConfigError("option `fits_flavour` ps1: PS1-style cutouts are made from photometry with "
                              "`flux_convention` gcml")
        if self.compression not in ("gzip", "none"):
            raise ConfigError(f"option `compression`: expected gzip or none, got '{self.compression}'")
        if self.n_random < 0:
            raise ConfigError(f"option `n_random`: expected a number of images >= 0, got {self.n_random}")
        if self.kind == "photometry":
            if not self.psf_fwhm or any(not (math.isfinite(f) and f > 0) for f in self.psf_fwhm):
                raise ConfigError(f"option `psf_fwhm`: FWHM must be positive arcsec, got {list(self.psf_fwhm)}")
            if not self.distance_kpc or any(not (math.isfinite(d) and d > 0) for d in self.distance_kpc):
                raise ConfigError(f"option `distance_kpc`: distances must be positive kpc, got {list(self.distance_kpc)}")
            self.geometry  # noqa: B018  (validates the field)
            if not (math.isfinite(self.smoothing_px) and self.smoothing_px >= 0):
                raise ConfigError(f"option `smoothing_px`: expected a sigma >= 0 pixels, got {self.smoothing_px}")
            if not (math.isfinite(self.max_shift_arcsec) and self.max_shift_arcsec >= 0):
                raise ConfigError(f"option `max_shift_arcsec`: expected >= 0 arcsec, got {self.max_shift_arcsec}")
            if not self.beta > 1:
                raise ConfigError(f"option `beta`: the Moffat index must be > 1, got {self.beta}")
        from gcml.physics.stellar import AGE_MAX_GYR

        if self.age_gyr is not None and not 0 < self.age_gyr <= AGE_MAX_GYR:
            raise ConfigError(f"option `age_gyr`: expected an age in Gyr in (0, {AGE_MAX_GYR:g}] (the stellar table's "
                              f"range), got {self.age_gyr}")
        if not -90.0 <= self.fits_dec <= 90.0:
            raise ConfigError(f"option `fits_dec`: expected a declination in -90..90 deg, got {self.fits_dec}")
        if not 0.0 <= self.fits_ra < 360.0:
            raise ConfigError(f"option `fits_ra`: expected a right ascension in 0..360 deg, got {self.fits_ra}")
        if self.metallicity is not None and not 0 < self.metallicity < 0.1:
            raise ConfigError(f"option `metallicity`: expected a metal mass fraction Z in (0, 0.1), got {self.metallicity}")

    @property
    def geometry(self) -> ImageGeometry:
        return ImageGeometry(self.fov_arcsec, self.pixel_scale)

    def grid(self) -> list[tuple[str, float, float]]:
        """The (axis, distance, PSF) combinations made for every snapshot (photometry)."""
        if self.kind == "kinematics":
            return [(a, float("nan"), float("nan")) for a in self.axes]
        return list(itertools.product(self.axes, self.distance_kpc, self.psf_fwhm))

    @property
    def images_per_snapshot(self) -> int:
        return self.n_random if self.n_random > 0 else len(self.grid())
