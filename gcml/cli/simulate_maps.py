"""``gcml simulate-maps``: V / sigma / count maps of GC systems of simulated galaxies (Kaur et al. 2021)."""

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
    is_quiet,
    make_progress,
    resolve_options,
    resolve_shard,
    stored_options,
    user_errors,
)
from gcml.simulate.maps_config import SimulateMapsConfig

#: option (parameter) -> the SimulateMapsConfig field it sets, where the names differ (the field's name is
#: accepted too: as an option spelling and as a config-file key); every default comes from the dataclass
FIELDS = {"family": "families", "v_error": "v_error_kms", "extent": "extent_kpc", "smoothing": "smoothing_kpc",
          "block_size": "batch_galaxies", "split": "split_fractions"}
#: options that are not SimulateMapsConfig fields, besides gcml.cli.common.CLI_ONLY
CLI_ONLY: dict[str, str] = {}


def simulate_maps_cmd(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output MapSet (HDF5).")] = Path("maps.h5"),
    family: Annotated[str, typer.Option("--family", "--families", help="Galaxy families, comma-separated: disk, merger, unknown, early, early-ood (unknown and early-ood are written with split=ood).")] = default(SimulateMapsConfig, "families", ","),
    n_galaxies: Annotated[int, typer.Option("--n-galaxies", help="Number of galaxies (families alternate).")] = default(SimulateMapsConfig, "n_galaxies"),
    views: Annotated[int, typer.Option("--views", help="Viewing directions per galaxy (uniform on the sphere).")] = default(SimulateMapsConfig, "views"),
    seed: SeedOpt = default(SimulateMapsConfig, "seed"),
    workers: WorkersOpt = 1,
    shard: ShardOpt = None,
    n_gc: Annotated[int, typer.Option("--n-gc", help="GCs per galaxy (at M200 = 1e12 Msun when --n-gc-slope is set).")] = default(SimulateMapsConfig, "n_gc"),
    n_gc_slope: Annotated[float, typer.Option("--n-gc-slope", help="N_gc ∝ (M200 / 1e12 Msun)^slope (1 = constant GC-to-halo mass ratio).")] = default(SimulateMapsConfig, "n_gc_slope"),
    n_gc_min: Annotated[int, typer.Option("--n-gc-min", help="Fewest GCs per galaxy when scaling with mass.")] = default(SimulateMapsConfig, "n_gc_min"),
    n_gc_max: Annotated[int, typer.Option("--n-gc-max", help="Most GCs per galaxy when scaling with mass.")] = default(SimulateMapsConfig, "n_gc_max"),
    subsample: Annotated[str, typer.Option("--subsample", help="Fraction of GCs kept per view, 'low:high' drawn uniformly (1 = all).")] = default(SimulateMapsConfig, "subsample", ":"),
    v_error: Annotated[str, typer.Option("--v-error", "--v-error-kms", help="Per-GC velocity error [km/s], 'low:high' drawn uniformly per GC; noise is added to the velocities.")] = default(SimulateMapsConfig, "v_error_kms", ":"),
    v_error_model: Annotated[str, typer.Option("--v-error-model", help="'uniform' (errors from --v-error) or 'sluggs' (errors drawn from the SLUGGS catalogue's e_HRV distribution, Forbes et al. 2017).")] = default(SimulateMapsConfig, "v_error_model"),
    subtract_errors: Annotated[bool, typer.Option("--subtract-errors", help="Subtract the velocity errors from sigma in quadrature.")] = default(SimulateMapsConfig, "subtract_errors"),
    n_pix: Annotated[int, typer.Option("--n-pix", help="Map size in pixels per side.")] = default(SimulateMapsConfig, "n_pix"),
    extent: Annotated[float, typer.Option("--extent", "--extent-kpc", help="Full map width [kpc].")] = default(SimulateMapsConfig, "extent_kpc"),
    smoothing: Annotated[float, typer.Option("--smoothing", "--smoothing-kpc", help="Gaussian kernel sigma [kpc].")] = default(SimulateMapsConfig, "smoothing_kpc"),
    min_count: Annotated[float, typer.Option("--min-count", help="Pixels with a kernel-weighted GC count below this get V = sigma = 0.")] = default(SimulateMapsConfig, "min_count"),
    log_m200: Annotated[str, typer.Option("--log-m200", help="log10 halo mass range [Msun], drawn uniformly.")] = default(SimulateMapsConfig, "log_m200", ":"),
    early_log_m200: Annotated[str, typer.Option("--early-log-m200", help="log10 halo mass range [Msun] of the early and early-ood families.")] = default(SimulateMapsConfig, "early_log_m200", ":"),
    bulge_to_disk: Annotated[str, typer.Option("--bulge-to-disk", help="Bulge-to-disk mass ratio range.")] = default(SimulateMapsConfig, "bulge_to_disk", ":"),
    beta: Annotated[str, typer.Option("--beta", help="GC velocity anisotropy range (0 = isotropic).")] = default(SimulateMapsConfig, "beta", ":"),
    f_rot: Annotated[str, typer.Option("--f-rot", help="GC rotation T_rot / T_kin range.")] = default(SimulateMapsConfig, "f_rot", ":"),
    mass_ratio: Annotated[str, typer.Option("--mass-ratio", help="Merger mass ratio range (secondary / primary).")] = default(SimulateMapsConfig, "mass_ratio", ":"),
    f_v: Annotated[str, typer.Option("--f-v", help="Merger relative speed in units of the circular speed.")] = default(SimulateMapsConfig, "f_v", ":"),
    separation: Annotated[str, typer.Option("--separation", help="Initial merger separation in disk sizes (5 scale lengths).")] = default(SimulateMapsConfig, "separation", ":"),
    merger_steps: Annotated[int, typer.Option("--merger-steps", help="Leapfrog steps of the merger GC integration.")] = default(SimulateMapsConfig, "merger_steps"),
    block_size: Annotated[int, typer.Option("--block-size", "--batch-galaxies", help="Galaxies computed together (memory vs speed); the unit of --shard and of bitwise reproducibility.")] = default(SimulateMapsConfig, "batch_galaxies"),
    split: Annotated[str, typer.Option("--split", "--split-fractions", help="Train, val, test fractions (by galaxy).")] = default(SimulateMapsConfig, "split_fractions", ","),
    catalogues: Annotated[bool, typer.Option("--catalogues/--no-catalogues", help="Also store each map's GC catalogue (x, y, v_los, v_err, in-map flag; for mass-npe).")] = default(SimulateMapsConfig, "catalogues"),
    config: ConfigOpt = None,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Simulate galaxies with GC systems and write their V, sigma and count maps with true-mass labels."""
    from gcml.config import parse_list, parse_range
    from gcml.simulate.galaxies import simulate_maps

    with user_errors(ctx=ctx):
        o = resolve_options(ctx, config, "simulate-maps")
        resolve_shard(o)
        cfg = SimulateMapsConfig(
            families=tuple(parse_list(o["family"], name="--family", kind=str)),
            n_galaxies=o["n_galaxies"], views=o["views"], seed=o["seed"], n_gc=o["n_gc"],
            n_gc_slope=o["n_gc_slope"], n_gc_min=o["n_gc_min"], n_gc_max=o["n_gc_max"],
            subsample=parse_range(o["subsample"], name="--subsample"),
            v_error_kms=parse_range(o["v_error"], name="--v-error"), v_error_model=o["v_error_model"],
            subtract_errors=o["subtract_errors"], n_pix=o["n_pix"], extent_kpc=o["extent"],
            smoothing_kpc=o["smoothing"], min_count=o["min_count"],
            log_m200=parse_range(o["log_m200"], name="--log-m200"),
            early_log_m200=parse_range(o["early_log_m200"], name="--early-log-m200"),
            bulge_to_disk=parse_range(o["bulge_to_disk"], name="--bulge-to-disk"),
            beta=parse_range(o["beta"], name="--beta"), f_rot=parse_range(o["f_rot"], name="--f-rot"),
            mass_ratio=parse_range(o["mass_ratio"], name="--mass-ratio"), f_v=parse_range(o["f_v"], name="--f-v"),
            separation=parse_range(o["separation"], name="--separation"), merger_steps=o["merger_steps"],
            split_fractions=tuple(parse_list(o["split"], name="--split")), batch_galaxies=o["block_size"],
            catalogues=o["catalogues"],
        )
        with make_progress(o["quiet"]) as bar:
            task = bar.add_task("simulate-maps", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            res = simulate_maps(cfg, o["out"], overwrite=o["overwrite"], workers=o["workers"], shard=o["shard"],
                                progress=progress, options=stored_options("simulate-maps", o))
    fams = ", ".join(f"{k} {v}" for k, v in res.families.items())
    msg = (f"wrote {res.path}: {res.n_maps} maps of {res.n_galaxies} galaxies ({fams}; ids "
           f"{res.galaxy_range[0]}-{res.galaxy_range[1] - 1}) in {res.seconds:.1f} s, "
           f"{res.maps_per_second:,.0f} maps/s, {res.file_size_bytes / 1e6:.1f} MB")
    if is_quiet(quiet):
        console.print(str(res.path), soft_wrap=True, highlight=False)
    else:
        console.print(msg, soft_wrap=True, highlight=False)
