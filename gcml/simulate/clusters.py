"""``simulate-clusters``: a time series of star-cluster snapshots from the approximate cluster model.

One IMF draw per simulation; the same stars are evolved to every requested age
(:class:`gcml.physics.cluster.ClusterModel`), and each age is written as a ``gcml.snapshot`` HDF5 file
``<simulation>_age<AGE>.h5`` in the output folder. Presets mirror the three N-body runs behind pi-DOC
(Chardin & Bianchini 2021, Sect. 2): 50,000 stars, Kroupa (2001) IMF 0.1-50 Msun, Z = 0.001, circular
orbit at 15 kpc in a Milky-Way-like potential (flat rotation curve, 220 km/s), initial half-mass radius
1.6 (``mw15-r1.6``), 3.2 (``mw15``) or 4 pc (``mw15-r4``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gcml.errors import ConfigError, OutputExistsError
from gcml.parallel import process_pool
from gcml.simulate.clusters_config import (  # noqa: F401  (re-exported: they lived here before issue 14)
    _BASE,
    PRESETS,
    SimulateClustersConfig,
)


@dataclass
class SimulateClustersResult:
    """What :func:`simulate_clusters` wrote."""

    out_dir: Path
    files: list[Path]
    ages: list[float]
    simulation: str
    n_stars_initial: int
    n_stars_final: int
    mass_final: float
    seconds: float
    info: list[dict] = field(default_factory=list)


def snapshot_name(simulation: str, age: float) -> str:
    """File name of one age: ``<simulation>_age<AGE>.h5`` with the age in Gyr to 3 decimals."""
    return f"{simulation}_age{age:07.3f}.h5"


def _restore_manifest(path: Path, content: bytes, touched: set[str]) -> None:
    """Put an older series' manifest back after a failed run that replaced none of its files."""
    import json

    from gcml.io.common import atomic_output

    with contextlib.suppress(Exception):
        listed = {e.get("name") for e in json.loads(content).get("files", [])}
        if listed & touched or path.exists():
            return
        with atomic_output(path) as tmp:
            tmp.write_bytes(content)


def _run_id_of(path: Path) -> str | None:
    """The series run id a snapshot file records (None if unreadable or not tagged)."""
    from gcml.io.series import _series_of

    tag = _series_of(Path(path))
    return None if tag is None else tag.get("run_id")


def _run_chunk(config: SimulateClustersConfig, ages: list[float], paths: list[str], overwrite: bool,
               command: str, progress: Callable[[int], None] | None = None,
               series: dict | None = None, options: dict | None = None) -> list[dict]:
    from gcml.io.snapshots import Snapshot, write_snapshot
    from gcml.physics.cluster import ClusterModel

    params = config.cluster_params()
    model = ClusterModel(params, seed=config.seed)
    out = []
    cfg = dataclasses.asdict(config)
    for age, path in zip(ages, paths, strict=True):
        st = model.at_age(age)
        snap = Snapshot(
            pos=st.pos, vel=st.vel, mass=st.mass, mass_initial=st.mass_initial, lum_v=st.lum_v,
            lum_bol=st.lum_bol, teff=st.teff, radius=st.radius, kstar=st.kstar, id=st.index + 1,
            age=age, time=age * 1000.0, metallicity=params.metallicity, simulation=config.simulation_name(),
            meta={**st.info, "preset": config.preset, "r_half_initial_pc": params.r_half_pc,
                  "n_stars_initial": params.n_stars, "r_gal_kpc": params.r_gal_kpc,
                  "v_circ_kms": params.v_circ_kms, **({"series": series} if series else {})},
        )
        write_snapshot(path, snap, overwrite=overwrite, command=command, config=cfg, seed=config.seed,
                       dtype=config.dtype, options=options)
        out.append(st.info)
        if progress is not None:
            progress(len(out))
    return out


def simulate_clusters(
    config: SimulateClustersConfig, out_dir: str | Path, *, overwrite: bool = False, workers: int = 1,
    progress: Callable[[int, int], None] | bool | None = None, command: str | None = None,
    options: dict | None = None,
) -> SimulateClustersResult:
    """Simulate one cluster and write a snapshot per requested age.

    Parameters
    ----------
    config
        Settings (preset, ages, seed, overrides).
    out_dir
        Output folder (created); files ``<simulation>_age<AGE>.h5``.
    overwrite
        Replace existing snapshot files of the same names.
    workers
        Processes; each builds the same model from the seed, so the files do not depend on it.
    progress
        Called as ``progress(done, total)`` after each age (each block of ages with several workers);
        ``True``: a tqdm.auto bar (:mod:`gcml.progress`).
    command
        Command line recorded in the files (default: the running command).
    options
        Record of the command's options stored in every file (:func:`gcml.io.common.options_record`; the
        CLI passes it, library calls store none).
    """
    from gcml.io.common import command_line, make_output_dir, output_lock
    from gcml.io.series import manifest_name, new_run_id, series_tag, write_manifest
    from gcml.progress import as_progress

    progress = as_progress(progress, "simulate-clusters", "age")
    t0 = time.perf_counter()
    ages = config.age_list()
    params = config.cluster_params()
    params.check()
    sim = config.simulation_name()
    out = Path(out_dir)
    from gcml.io.common import check_resources

    per_star = 4 if config.dtype == "float32" else 8
    check_resources("simulate-clusters", memory=params.n_stars * 20 * 8 * max(1, workers),
                    disk=len(ages) * (params.n_stars * 12 * per_star + 8192), folder=out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output {out}: is a file; expected a folder for the snapshots")
    paths = [out / snapshot_name(sim, a) for a in ages]
    if len(set(paths)) != len(paths):
        raise ConfigError("option `ages`: two ages round to the same file name (ages are kept to 0.001 Gyr)")
    created_dir = not out.exists()
    make_output_dir(out)
    run_id = new_run_id()
    tag = series_tag(sim, run_id, len(paths))
    made: list[Path] = []
    old_manifest: bytes | None = None
    try:
        # The series is this run's while it runs: a second run of the same simulation into the same folder
        # fails at once (other simulations may be written into the folder at the same time).
        with output_lock(out / sim):
            existing = [p for p in paths if p.exists()]
            if existing and not overwrite:
                raise OutputExistsError(
                    f"{existing[0]} already exists ({len(existing)} of {len(paths)} snapshots); pass `overwrite` "
                    "to replace them")
            # An older manifest goes first: until this run writes its own, the series reads as incomplete
            # (it is put back if this run fails without having replaced any of the files it lists).
            mpath = out / manifest_name(sim)
            if mpath.is_file():
                old_manifest = mpath.read_bytes()
                mpath.unlink()
            cmd = command if command is not None else command_line()
            infos: list[dict | None] = [None] * len(ages)
            if workers <= 1:
                # One model for the whole series (the IMF draw and King-model anchors are made once).
                def step(k: int) -> None:
                    made.append(paths[k - 1])
                    if progress:
                        progress(k, len(ages))

                infos = list(_run_chunk(config, ages, [str(p) for p in paths], overwrite, cmd, progress=step,
                                        series=tag, options=options))
            else:
                # Contiguous blocks of ages, a few per worker; each worker rebuilds the same model from the seed.
                n_chunks = max(1, min(len(ages), workers * 3))
                chunks = [list(c) for c in np.array_split(np.arange(len(ages)), n_chunks) if len(c)]
                done = 0
                try:
                    with process_pool(workers) as ex:
                        futs = {ex.submit(_run_chunk, config, [ages[i] for i in c], [str(paths[i]) for i in c],
                                          overwrite, cmd, None, tag, options): c for c in chunks}
                        for fut in ex.as_completed(futs):
                            c = futs[fut]
                            for i, r in zip(c, fut.result(), strict=True):
                                infos[i] = r
                            made.extend(paths[i] for i in c)
                            done += len(c)
                            if progress:
                                progress(done, len(ages))
                except BaseException:
                    # the workers have stopped; files of chunks that finished or were cut short carry this run's id
                    made.extend(p for p in paths if p.exists() and _run_id_of(p) == run_id)
                    raise
            write_manifest(out, sim, run_id, paths, ages=ages)
    except BaseException:
        # A failed series (e.g. the cluster dissolves before the last age) leaves nothing behind: the
        # snapshots this run wrote and the folder it created are removed; nothing another run made is.
        for pth in dict.fromkeys(made):
            pth.unlink(missing_ok=True)
        if old_manifest is not None:
            _restore_manifest(out / manifest_name(sim), old_manifest, {p.name for p in made})
        if created_dir:
            with contextlib.suppress(OSError):
                out.rmdir()  # only if empty
        raise
    last = infos[-1] or {}
    return SimulateClustersResult(
        out_dir=out, files=paths, ages=ages, simulation=sim, n_stars_initial=params.n_stars,
        n_stars_final=int(last.get("n_bound", 0)), mass_final=float(last.get("mass_total", 0.0)),
        seconds=time.perf_counter() - t0, info=[i for i in infos if i is not None],
    )
