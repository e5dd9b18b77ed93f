"""``gcml models``: list the architectures and shipped models, import the published pi-DOC Keras models,
recalibrate a mass-npe bundle's posterior spread."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from gcml.cli.common import DeviceOpt, OverwriteOpt, SeedOpt, console, is_quiet, user_errors
from gcml.io.bundle import SHIPPED_DIR  # where the models shipped with the package live

models_app = typer.Typer(
    name="models",
    help="Model architectures and bundles: list them, import the published pi-DOC Keras models, recalibrate "
         "a mass-npe posterior on independent simulated galaxies.",
    no_args_is_help=True,
)


@models_app.command("list")
def list_cmd(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False,
) -> None:
    """Show the registered architectures (names for 'gcml train') and the default models shipped with gcml."""
    from gcml.io.bundle import describe_bundle
    from gcml.models.registry import list_models
    from gcml.prediction.catalogue import DEFAULT_MODEL_FILE
    from gcml.prediction.images import DEFAULT_MODEL

    # which shipped model gcml predict uses when no --model is given
    default_for = {DEFAULT_MODEL_FILE.name: "gcml predict CATALOGUE", DEFAULT_MODEL: "gcml predict IMAGE"}
    with user_errors(ctx=ctx):
        specs = list_models()
        shipped = []
        for p in sorted(SHIPPED_DIR.glob("*.pt")) if SHIPPED_DIR.is_dir() else []:
            d = describe_bundle(p)
            shipped.append({"file": p.name, "architecture": d["architecture"],
                            "targets": d["targets"]["names"], "output": d["targets"]["output"],
                            "default_for": default_for.get(p.name)})
    rows = [{"name": s.name, "data": s.data_kind, "output": s.output, "paper": s.paper,
             "default_data": s.default_data, "description": s.description} for s in specs]
    if as_json:
        console.print_json(json.dumps({"architectures": rows, "shipped_models": shipped}))
        return
    from rich.table import Table

    t = Table(title="architectures", title_justify="left")
    for col in ("name", "data", "output", "paper", "description"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["name"], r["data"], r["output"], "yes" if r["paper"] else "gcml", r["description"])
    console.print(t)
    if shipped:
        t = Table(title=f"shipped models ({SHIPPED_DIR})", title_justify="left")
        for col in ("file", "architecture", "targets", "output", "default for"):
            t.add_column(col)
        for s in shipped:
            t.add_row(s["file"], s["architecture"], ", ".join(s["targets"] or []), str(s["output"]),
                      s["default_for"] or "-")
        console.print(t)
        console.print(f"a shipped model can be named without its folder, e.g. --model {Path(shipped[0]['file']).stem}")
    else:
        console.print("shipped models: none in this installation")


@models_app.command("import-keras")
def import_keras_cmd(
    ctx: typer.Context,
    architecture: Annotated[Path, typer.Argument(help="Keras model JSON (the authors' CNN.json or CED.json).")],
    weights: Annotated[Path, typer.Argument(help="Keras HDF5 weights (e.g. CNN_100.h5).")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Bundle to write (default: pidoc_<kind>.pt).")] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="cnn (age, distance) or ced (mass map); "
                                             "detected from the JSON when omitted.")] = None,
    standardization: Annotated[Path | None, typer.Option(
        "--standardization", help="JSON of the authors' training standardisation constants "
        "(default: the pi-DOC constants shipped with gcml).")] = None,
    flux_definition: Annotated[str, typer.Option(
        "--flux-definition", help="The authors' input flux: 4pi = L/(4 pi d^2) (gcml's F) or d2 = L/d^2; the "
        "paper does not say (docs/pidoc.md). The bundle always reads gcml's F.")] = "4pi",
    overwrite: OverwriteOpt = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors.")] = False,
) -> None:
    """Convert a published pi-DOC Keras model into a gcml bundle (predictions in Msun, kpc and Gyr)."""
    from gcml.models.keras_import import import_keras, read_keras_architecture

    with user_errors(ctx=ctx):
        if out is None:
            out = Path(f"pidoc_{read_keras_architecture(architecture, kind=kind).kind}.pt")
        res = import_keras(architecture, weights, out, kind=kind, standardization=standardization,
                           flux_definition=flux_definition, overwrite=overwrite)
    if not is_quiet(quiet):
        b = res.bundle
        console.print(f"{res.architecture.architecture}: {res.n_params:,} parameters (Keras count) from "
                      f"{weights.name}; outputs {', '.join(f'{n} ({u})' for n, u in zip(b['targets']['names'], b['targets']['units'], strict=True))}")
    console.print(f"model bundle: {res.path}")


@models_app.command("calibrate")
def calibrate_cmd(
    ctx: typer.Context,
    model: Annotated[Path, typer.Argument(help="mass-npe model bundle (best.pt of gcml train, or a shipped name).")],
    mapset: Annotated[Path, typer.Argument(help="MapSet with catalogues and true targets of independent galaxies "
                                           "drawn from the training priors (gcml simulate-maps --views 1).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Bundle to write (the input is never modified).")],
    split: Annotated[str, typer.Option("--split", help="Maps of the MapSet to use: all, train, val, test or ood.")] = "all",
    samples: Annotated[int, typer.Option("--samples", min=100, help="Posterior draws per catalogue.")] = 1000,
    seed: SeedOpt = 0,
    device: DeviceOpt = "cpu",
    overwrite: OverwriteOpt = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors and the bundle written.")] = False,
) -> None:
    """Refit a mass-npe model's posterior spread so that the ranks of the true masses among its posterior
    draws are uniform (simulation-based calibration), at every number of GCs.

    gcml train fits the spread on the validation views by matching variances; this refit works on the ranks
    of independent galaxies, which also fixes central intervals left too wide by non-Gaussian errors. The
    systematic term is kept as it was. Check the new bundle on other galaxies with
    'gcml evaluate MODEL TEST.h5 --no-systematic'.
    """
    from gcml.device import resolve_device
    from gcml.evaluation.recalibrate import refit_spread

    with user_errors(ctx=ctx):
        res = refit_spread(model, mapset, out, split=split, n_samples=samples, seed=seed,
                           overwrite=overwrite, device=resolve_device(device))
    if not is_quiet(quiet):
        import numpy as np
        from rich.table import Table

        t = Table(title=f"posterior ranks of {res.n_catalogues:,} catalogues of {mapset.name} (in-sample)",
                  title_justify="left")
        for col in ("target", "68 % coverage", "95 % coverage", "SBC KS p", "spread factor at N = 30 / 300"):
            t.add_column(col)
        for j, name in enumerate(res.targets):
            b, a = res.before[name], res.after[name]
            d = res.spread_after[j] - res.spread_before[j]
            f = [float(np.exp(d[0] + d[1] * np.log(n / 100.0))) for n in (30, 300)]
            t.add_row(name, f"{b['coverage_68']:.3f} -> {a['coverage_68']:.3f}",
                      f"{b['coverage_95']:.3f} -> {a['coverage_95']:.3f}", f"{b['ks_p']:.2g} -> {a['ks_p']:.2g}",
                      f"{f[0]:.3f} / {f[1]:.3f}")
        console.print(t)
    console.print(f"model bundle: {res.path}")
