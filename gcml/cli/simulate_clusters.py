"""``gcml simulate-clusters``: a time series of star-cluster snapshots (pi-DOC-like presets)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gcml.cli.common import (
    ConfigOpt,
    OverwriteOpt,
    QuietOpt,
    SeedOpt,
    WorkersOpt,
    console,
    default,
    err_console,
    is_quiet,
    make_progress,
    resolve_options,
    stored_options,
    user_errors,
)
from gcml.simulate.clusters_config import SimulateClustersConfig

#: option (parameter) -> the SimulateClustersConfig field it sets, where the names differ (the field's name is
#: accepted too: as an option spelling and as a config-file key); every default comes from the dataclass
FIELDS = {"r_half": "r_half_pc", "r_gal": "r_gal_kpc"}
#: options that are not SimulateClustersConfig fields, besides gcml.cli.common.CLI_ONLY
CLI_ONLY: dict[str, str] = {}


def simulate_clusters_cmd(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder for the snapshots (one HDF5 file per age).")] = Path("snapshots"),
    preset: Annotated[str, typer.Option("--preset", help="mw15-r1.6, mw15 or mw15-r4: 50,000 stars, Kroupa 0.1-50 Msun, Z = 0.001, r_h = 1.6 / 3.2 / 4 pc, circular orbit at 15 kpc.")] = default(SimulateClustersConfig, "preset"),
    n_stars: Annotated[int | None, typer.Option("--n-stars", help="Initial number of stars (default: the preset's 50,000).")] = default(SimulateClustersConfig, "n_stars"),
    ages: Annotated[str, typer.Option("--ages", help="Ages in Gyr: 'a,b,c' or 'start:stop:step'.")] = default(SimulateClustersConfig, "ages"),
    metallicity: Annotated[float | None, typer.Option("--metallicity", help="Metal mass fraction Z (0.0001-0.02).")] = default(SimulateClustersConfig, "metallicity"),
    r_half: Annotated[float | None, typer.Option("--r-half", "--r-half-pc", help="Initial half-mass radius in pc (default: the preset's).")] = default(SimulateClustersConfig, "r_half_pc"),
    r_gal: Annotated[float | None, typer.Option("--r-gal", "--r-gal-kpc", help="Galactocentric radius of the circular orbit in kpc (default 15).")] = default(SimulateClustersConfig, "r_gal_kpc"),
    retain_ns: Annotated[float | None, typer.Option("--retain-ns", help="Fraction of neutron stars retained after natal kicks.")] = default(SimulateClustersConfig, "retain_ns"),
    retain_bh: Annotated[float | None, typer.Option("--retain-bh", help="Fraction of black holes retained after natal kicks.")] = default(SimulateClustersConfig, "retain_bh"),
    simulation: Annotated[str | None, typer.Option("--simulation", help="Simulation name (default: PRESET-sSEED).")] = default(SimulateClustersConfig, "simulation"),
    seed: SeedOpt = default(SimulateClustersConfig, "seed"),
    workers: WorkersOpt = 1,
    config: ConfigOpt = None,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Simulate a star cluster and write one snapshot per age (positions, velocities, masses, L_V, types)."""
    from gcml.simulate.clusters import simulate_clusters

    with user_errors(ctx=ctx):
        o = resolve_options(ctx, config, "simulate-clusters")
        cfg = SimulateClustersConfig(
            preset=o["preset"], ages=o["ages"], seed=o["seed"], n_stars=o["n_stars"],
            metallicity=o["metallicity"], r_half_pc=o["r_half"], r_gal_kpc=o["r_gal"],
            retain_ns=o["retain_ns"], retain_bh=o["retain_bh"], simulation=o["simulation"],
        )
        n_ages = len(cfg.age_list())
        with make_progress(o["quiet"]) as bar:
            task = bar.add_task("simulate-clusters", total=n_ages)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            res = simulate_clusters(cfg, o["out"], overwrite=o["overwrite"], workers=o["workers"],
                                    progress=progress, options=stored_options("simulate-clusters", o))
    from gcml.io.snapshots import list_snapshot_files
    from gcml.observe.mock import simulation_of

    # a note only: other runs may be writing into the folder now (their series not complete yet)
    n_sims = len({simulation_of(f) for f in list_snapshot_files(res.out_dir, partial=True)})
    if n_sims < 20:  # mock-observe's default split (0.8, 0.1, 0.1) draws whole simulations
        err_console.print(
            f"note: {res.out_dir} holds {n_sims} simulation{'s' if n_sims != 1 else ''}; mock-observe splits over "
            "snapshots (with a warning) until about 20 give every split (train/val/test) a simulation of its own: "
            "add more with --seed 2, 3, ...", highlight=False, soft_wrap=True)
    if is_quiet(quiet):
        console.print(str(res.out_dir))
    else:
        console.print(
            f"wrote {len(res.files)} snapshots of '{res.simulation}' to {res.out_dir} in {res.seconds:.1f} s; "
            f"{res.n_stars_initial:,} stars initially, {res.n_stars_final:,} bound "
            f"({res.mass_final:,.0f} Msun) at {res.ages[-1]:g} Gyr"
        )
