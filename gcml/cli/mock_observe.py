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
    err_console,
    is_quiet,
    make_progress,
    resolve_options,
    resolve_shard,
    stored_options,
    user_errors,
)


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
    kind: Annotated[str, typer.Option("--kind", help="photometry (pi-DOC images) or kinematics (V/sigma maps).")] = "photometry",
    psf: Annotated[str, typer.Option("--psf", help="Moffat PSF FWHM(s) [arcsec]: '1.0', '0.5,1.5' or '0.5:1.5:0.25'.")] = "0.5,1.5",
    distance: Annotated[str, typer.Option("--distance", help="Distance(s) [kpc]: list or start:stop:step.")] = "10,25,50,75,100",
    axis: Annotated[str, typer.Option("--axis", help="Line(s) of sight: x, y, z, random, or a list 'x,y,z'.")] = "z",
    n_random: Annotated[int, typer.Option("--n-random", help="Images per snapshot drawn at random from the axis x distance x PSF grid (0 = the whole grid; kinematics: random views).")] = 0,
    fov: Annotated[float, typer.Option("--fov", help="Field of view [arcsec] (square).")] = 40.0,
    pixel_scale: Annotated[float, typer.Option("--pixel-scale", help="Pixel size [arcsec].")] = 0.25,
    smoothing: Annotated[float, typer.Option("--smoothing", help="Gaussian smoothing sigma of both maps [px] (0 = none).")] = 4.0,
    max_shift: Annotated[float, typer.Option("--max-shift", help="Random centre shift, uniform in +-max per axis [arcsec].")] = 5.0,
    no_rotate: Annotated[bool, typer.Option("--no-rotate", help="Do not rotate by random multiples of 90 degrees.")] = False,
    beta: Annotated[float, typer.Option("--beta", help="Moffat index of the PSF.")] = 2.5,
    flux_convention: Annotated[str, typer.Option("--flux-convention", help="gcml (F = L_V/(4 pi d^2) per pixel, Lsun/kpc^2) or pidoc (log10 F, the published pi-DOC models' input).")] = "gcml",
    pidoc_4pi: Annotated[bool, typer.Option("--pidoc-4pi/--pidoc-no-4pi", help="pidoc convention: log10 of L/(4 pi d^2) (default) or of L/d^2 (see docs/mock-observe.md).")] = True,
    age: Annotated[float | None, typer.Option("--age", help="Age [Gyr] of the stars (replaces the snapshot's; used for luminosities from the stellar table).")] = None,
    metallicity: Annotated[float | None, typer.Option("--metallicity", help="Metallicity Z (replaces the snapshot's; used for luminosities from the stellar table).")] = None,
    centre: Annotated[str, typer.Option("--centre", help="Cluster centre: shrinking-sphere, com or origin.")] = "shrinking-sphere",
    pattern: Annotated[str | None, typer.Option("--pattern", help="File pattern inside folders (default *.h5, *.hdf5; e.g. 'conf.3_*').")] = None,
    partial: Annotated[bool, typer.Option("--partial", help="Use the snapshots of an incomplete series (a simulate-clusters run that did not finish) as they are.")] = False,
    sky_mag: Annotated[float | None, typer.Option("--sky-mag", help="Add sky background [V mag/arcsec^2] (image stays sky-subtracted).")] = None,
    poisson: Annotated[bool, typer.Option("--poisson", help="Add Poisson noise to source and sky counts.")] = False,
    read_noise: Annotated[float, typer.Option("--read-noise", help="Gaussian read noise [counts rms per pixel].")] = 0.0,
    saturation: Annotated[float | None, typer.Option("--saturation", help="Clip pixels above this many counts.")] = None,
    zeropoint: Annotated[float, typer.Option("--zeropoint", help="V magnitude giving 1 count/s (for the noise model).")] = 25.0,
    exptime: Annotated[float, typer.Option("--exptime", help="Exposure time [s] (for the noise model).")] = 100.0,
    field_stars: Annotated[float, typer.Option("--field-stars", help="Field stars per arcmin^2 with 14 < V < 24 (0 = none).")] = 0.0,
    fits: Annotated[Path | None, typer.Option("--fits", help="Also write one FITS image (flux + MASS extension, TAN WCS) per image into this folder.")] = None,
    flavour: Annotated[str, typer.Option("--flavour", help="With --fits: gcml (flux + MASS extension, TAN WCS) or ps1 (Pan-STARRS1-style r-band cutouts, counts with the PS1 zero point, asinh-scaled, NaN border, g - r = 0.5: what 'gcml predict' reads; the truth in GCML* cards).")] = "gcml",
    ra: Annotated[float, typer.Option("--ra", help="RA [deg] of the field centre in the FITS WCS.")] = 180.0,
    dec: Annotated[float, typer.Option("--dec", help="Dec [deg] of the field centre in the FITS WCS.")] = 0.0,
    map_pixels: Annotated[int, typer.Option("--map-pixels", help="Kinematics: pixels per side.")] = 10,
    map_extent: Annotated[float, typer.Option("--map-extent", help="Kinematics: map width [kpc].")] = 40.0,
    map_smoothing: Annotated[float, typer.Option("--map-smoothing", help="Kinematics: Gaussian kernel sigma [kpc].")] = 4.0,
    split_by: Annotated[str, typer.Option("--split-by", help="Draw train/val/test over whole simulations (needs at least one per split), snapshots, or images (as pi-DOC did; leaks views of one snapshot across splits); auto (default): simulations when there are enough, else snapshots or images, with a warning.")] = "auto",
    split: Annotated[str, typer.Option("--split", help="Train, val, test fractions.")] = "0.8,0.1,0.1",
    compression: Annotated[str, typer.Option("--compression", help="MapSet compression: none (default) or gzip (about 30% smaller files, about twice the run time).")] = "none",
    seed: SeedOpt = 0,
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
    from gcml.observe.mock import MockObserveConfig, mock_observe
    from gcml.observe.photometric import NoiseConfig

    with user_errors():
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
