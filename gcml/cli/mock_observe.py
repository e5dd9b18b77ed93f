"""``gcml mock-observe``: mock images (pi-DOC) or kinematic maps (Kaur) from snapshots."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gcml.cli.common import (
    ConfigOpt,
    OverwriteOpt,
    QuietOpt,
    SeedOpt,
    ShardOpt,
    WorkersOpt,
    console,
    default,
    err_console,
    is_quiet,
    make_progress,
    resolve_options,
    resolve_shard,
    stored_options,
    user_errors,
)
from gcml.observe.config import MockObserveConfig

#: option (parameter) -> the MockObserveConfig field it sets, where the names differ (``noise.X``: a field of
#: its NoiseConfig; ``!rotate``: the negation of ``rotate``). The field's name is accepted too: as an option
#: spelling and as a config-file key. Every default comes from the dataclass.
FIELDS = {"psf": "psf_fwhm", "distance": "distance_kpc", "axis": "axes", "fov": "fov_arcsec",
          "smoothing": "smoothing_px", "max_shift": "max_shift_arcsec", "no_rotate": "!rotate",
          "pidoc_4pi": "pidoc_four_pi", "age": "age_gyr", "partial": "partial_series", "sky_mag": "noise.sky_mag",
          "poisson": "noise.poisson", "read_noise": "noise.read_noise", "saturation": "noise.saturation",
          "zeropoint": "noise.zeropoint", "exptime": "noise.exptime", "field_stars": "noise.field_density",
          "flavour": "fits_flavour", "ra": "fits_ra", "dec": "fits_dec", "map_pixels": "kin_n_pix",
          "map_extent": "kin_extent_kpc", "map_smoothing": "kin_smoothing_kpc", "split": "split_fractions"}
#: option -> the parameter of a library function it sets, for messages: the kinematic map options set the
#: MapGeometry made from kin_* (its messages name ``n_pix``, ``extent_kpc``, ``smoothing_kpc``)
PARAMETERS = {"map_pixels": "n_pix", "map_extent": "extent_kpc", "map_smoothing": "smoothing_kpc"}
#: options that are not MockObserveConfig fields, besides gcml.cli.common.CLI_ONLY
CLI_ONLY = {"fits": "the FITS folder: a parameter (fits_dir) of mock_observe, like the output path"}


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"K/N"`` (1 <= K <= N) -> 0-based ``(K - 1, N)``; ``None`` -> ``(0, 1)``."""
    from gcml.config import parse_shard_spec

    spec = parse_shard_spec(text)
    return (0, 1) if spec is None else (spec[0] - 1, spec[1])


def mock_observe_cmd(
    ctx: typer.Context,
    inputs: Annotated[list[Path], typer.Argument(
        help="Snapshot files or folders (gcml HDF5 from simulate-clusters, NBODY6/NBODY6++ conf.3, ASCII tables).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output MapSet.")] = Path("images.h5"),
    kind: Annotated[str, typer.Option("--kind", help="photometry (pi-DOC images) or kinematics (V/sigma maps).")] = default(MockObserveConfig, "kind"),
    psf: Annotated[str, typer.Option("--psf", "--psf-fwhm", help="Moffat PSF FWHM(s) [arcsec]: '1.0', '0.5,1.5' or '0.5:1.5:0.25'.")] = default(MockObserveConfig, "psf_fwhm", ","),
    distance: Annotated[str, typer.Option("--distance", "--distance-kpc", help="Distance(s) [kpc]: list or start:stop:step.")] = default(MockObserveConfig, "distance_kpc", ","),
    axis: Annotated[str, typer.Option("--axis", "--axes", help="Line(s) of sight: x, y, z, random, or a list 'x,y,z'.")] = default(MockObserveConfig, "axes", ","),
    n_random: Annotated[int, typer.Option("--n-random", help="Images per snapshot drawn at random from the axis x distance x PSF grid (0 = the whole grid; kinematics: random views).")] = default(MockObserveConfig, "n_random"),
    fov: Annotated[float, typer.Option("--fov", "--fov-arcsec", help="Field of view [arcsec] (square).")] = default(MockObserveConfig, "fov_arcsec"),
    pixel_scale: Annotated[float, typer.Option("--pixel-scale", help="Pixel size [arcsec].")] = default(MockObserveConfig, "pixel_scale"),
    smoothing: Annotated[float, typer.Option("--smoothing", "--smoothing-px", help="Gaussian smoothing sigma of both maps [px] (0 = none).")] = default(MockObserveConfig, "smoothing_px"),
    max_shift: Annotated[float, typer.Option("--max-shift", "--max-shift-arcsec", help="Random centre shift, uniform in +-max per axis [arcsec].")] = default(MockObserveConfig, "max_shift_arcsec"),
    no_rotate: Annotated[bool, typer.Option("--no-rotate", help="Do not rotate by random multiples of 90 degrees.")] = default(MockObserveConfig, "!rotate"),
    beta: Annotated[float, typer.Option("--beta", help="Moffat index of the PSF.")] = default(MockObserveConfig, "beta"),
    flux_convention: Annotated[str, typer.Option("--flux-convention", help="gcml (F = L_V/(4 pi d^2) per pixel, Lsun/kpc^2) or pidoc (log10 F, the published pi-DOC models' input).")] = default(MockObserveConfig, "flux_convention"),
    pidoc_4pi: Annotated[bool, typer.Option("--pidoc-4pi/--pidoc-no-4pi", help="pidoc convention: log10 of L/(4 pi d^2) (default) or of L/d^2 (see docs/mock-observe.md).")] = default(MockObserveConfig, "pidoc_four_pi"),
    age: Annotated[float | None, typer.Option("--age", "--age-gyr", help="Age [Gyr] of the stars (replaces the snapshot's; used for luminosities from the stellar table).")] = default(MockObserveConfig, "age_gyr"),
    metallicity: Annotated[float | None, typer.Option("--metallicity", help="Metallicity Z (replaces the snapshot's; used for luminosities from the stellar table).")] = default(MockObserveConfig, "metallicity"),
    centre: Annotated[str, typer.Option("--centre", help="Cluster centre: shrinking-sphere, com or origin.")] = default(MockObserveConfig, "centre"),
    pattern: Annotated[str | None, typer.Option("--pattern", help="File pattern inside folders (default *.h5, *.hdf5; e.g. 'conf.3_*').")] = default(MockObserveConfig, "pattern"),
    partial: Annotated[bool, typer.Option("--partial", "--partial-series", help="Use the snapshots of an incomplete series (a simulate-clusters run that did not finish) as they are.")] = default(MockObserveConfig, "partial_series"),
    sky_mag: Annotated[float | None, typer.Option("--sky-mag", help="Add sky background [V mag/arcsec^2] (image stays sky-subtracted).")] = default(MockObserveConfig, "noise.sky_mag"),
    poisson: Annotated[bool, typer.Option("--poisson", help="Add Poisson noise to source and sky counts.")] = default(MockObserveConfig, "noise.poisson"),
    read_noise: Annotated[float, typer.Option("--read-noise", help="Gaussian read noise [counts rms per pixel].")] = default(MockObserveConfig, "noise.read_noise"),
    saturation: Annotated[float | None, typer.Option("--saturation", help="Clip pixels above this many counts.")] = default(MockObserveConfig, "noise.saturation"),
    zeropoint: Annotated[float, typer.Option("--zeropoint", help="V magnitude giving 1 count/s (for the noise model).")] = default(MockObserveConfig, "noise.zeropoint"),
    exptime: Annotated[float, typer.Option("--exptime", help="Exposure time [s] (for the noise model).")] = default(MockObserveConfig, "noise.exptime"),
    field_stars: Annotated[float, typer.Option("--field-stars", "--field-density", help="Field stars per arcmin^2 with 14 < V < 24 (0 = none).")] = default(MockObserveConfig, "noise.field_density"),
    fits: Annotated[Path | None, typer.Option("--fits", help="Also write one FITS image (flux + MASS extension, TAN WCS) per image into this folder.")] = None,
    flavour: Annotated[str, typer.Option("--flavour", "--fits-flavour", help="With --fits: gcml (flux + MASS extension, TAN WCS) or ps1 (Pan-STARRS1-style r-band cutouts, counts with the PS1 zero point, asinh-scaled, NaN border, g - r = 0.5: what 'gcml predict' reads; the truth in GCML* cards).")] = default(MockObserveConfig, "fits_flavour"),
    ra: Annotated[float, typer.Option("--ra", "--fits-ra", help="RA [deg] of the field centre in the FITS WCS.")] = default(MockObserveConfig, "fits_ra"),
    dec: Annotated[float, typer.Option("--dec", "--fits-dec", help="Dec [deg] of the field centre in the FITS WCS.")] = default(MockObserveConfig, "fits_dec"),
    map_pixels: Annotated[int, typer.Option("--map-pixels", "--kin-n-pix", help="Kinematics: pixels per side.")] = default(MockObserveConfig, "kin_n_pix"),
    map_extent: Annotated[float, typer.Option("--map-extent", "--kin-extent-kpc", help="Kinematics: map width [kpc].")] = default(MockObserveConfig, "kin_extent_kpc"),
    map_smoothing: Annotated[float, typer.Option("--map-smoothing", "--kin-smoothing-kpc", help="Kinematics: Gaussian kernel sigma [kpc].")] = default(MockObserveConfig, "kin_smoothing_kpc"),
    split_by: Annotated[str, typer.Option("--split-by", help="Draw train/val/test over whole simulations (needs at least one per split), snapshots, or images (as pi-DOC did; leaks views of one snapshot across splits); auto (default): simulations when there are enough, else snapshots or images, with a warning.")] = default(MockObserveConfig, "split_by"),
    split: Annotated[str, typer.Option("--split", "--split-fractions", help="Train, val, test fractions.")] = default(MockObserveConfig, "split_fractions", ","),
    compression: Annotated[str, typer.Option("--compression", help="MapSet compression: none (default) or gzip (about 30% smaller files, about twice the run time).")] = default(MockObserveConfig, "compression"),
    seed: SeedOpt = default(MockObserveConfig, "seed"),
    workers: WorkersOpt = 1,
    shard: ShardOpt = None,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Mock-observe snapshots: pi-DOC V-band images with truth mass maps, or V/sigma maps of GC systems.

    Example: gcml mock-observe snapshots/ --psf 1.0 --distance 60   (writes images.h5)
    """
    from gcml.config import parse_list
    from gcml.observe.config import NoiseConfig
    from gcml.observe.mock import mock_observe

    with user_errors(ctx=ctx):
        o = resolve_options(ctx, config, "mock-observe")
        resolve_shard(o)
        axes = tuple(parse_list(o["axis"], name="--axis", kind=str))
        cfg = MockObserveConfig(
            kind=o["kind"], psf_fwhm=tuple(parse_list(o["psf"], name="--psf")),
            distance_kpc=tuple(parse_list(o["distance"], name="--distance")), axes=axes,
            n_random=o["n_random"], fov_arcsec=o["fov"], pixel_scale=o["pixel_scale"],
            smoothing_px=o["smoothing"], max_shift_arcsec=o["max_shift"], rotate=not o["no_rotate"],
            beta=o["beta"], flux_convention=o["flux_convention"], pidoc_four_pi=o["pidoc_4pi"], age_gyr=o["age"],
            metallicity=o["metallicity"], centre=o["centre"], pattern=o["pattern"], partial_series=o["partial"],
            noise=NoiseConfig(zeropoint=o["zeropoint"], exptime=o["exptime"], sky_mag=o["sky_mag"],
                              poisson=o["poisson"], read_noise=o["read_noise"], saturation=o["saturation"],
                              field_density=o["field_stars"]),
            fits_flavour=o["flavour"], fits_ra=o["ra"], fits_dec=o["dec"], kin_n_pix=o["map_pixels"], kin_extent_kpc=o["map_extent"],
            kin_smoothing_kpc=o["map_smoothing"], compression=o["compression"], seed=o["seed"],
            split_by=o["split_by"], split_fractions=tuple(parse_list(o["split"], name="--split")),
        )
        sh = parse_shard(o["shard"])
        with make_progress(o["quiet"]) as prog:
            task = prog.add_task("mock-observe", total=None)
            result = mock_observe(
                o["inputs"], o["out"], cfg, overwrite=o["overwrite"], workers=o["workers"], shard=sh,
                fits_dir=o["fits"], progress=lambda done, total: prog.update(task, completed=done, total=total),
                options=stored_options("mock-observe", o))
    for w in result.warnings:
        err_console.print(f"[bold yellow]warning:[/] {w}", highlight=False, soft_wrap=True)
    if not is_quiet(quiet):
        size = result.path.stat().st_size / 1e6
        console.print(f"wrote {result.path}: {result.n_images} {result.kind} images from {result.n_snapshots} "
                      f"snapshots in {result.seconds:.1f} s ({result.images_per_second:.0f} images/s, {size:.1f} MB)")
        if result.fits_files:
            console.print(f"wrote {len(result.fits_files)} FITS files to {o['fits']}")
    else:
        console.print(str(result.path))
