"""``gcml train``: train a registered network on a MapSet."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gcml.cli.common import (
    ConfigOpt,
    DeviceOpt,
    GpusOpt,
    OverwriteOpt,
    QuietOpt,
    SeedOpt,
    console,
    default,
    err_console,
    is_quiet,
    make_progress,
    print_note,
    resolve_options,
    stored_options,
    user_errors,
)
from gcml.training.config import TrainConfig

#: option (parameter) -> the TrainConfig field it sets, where the names differ (the field's name is accepted
#: too: as an option spelling and as a config-file key); every default comes from the dataclass
FIELDS = {"target": "targets", "patience": "early_stopping"}
#: options that are not TrainConfig fields, besides gcml.cli.common.CLI_ONLY
CLI_ONLY = {
    "data": "the MapSet to train on: an argument of train() (default: the model's usual file)",
    "depth": "sets arch_kwargs['depth'] (the model builder's keyword)",
    "no_dropout": "sets the dropout keywords of arch_kwargs to 0",
    "nproc": "0 = auto (resolved by auto_nproc before TrainConfig(nproc=...) is made)",
    "resume": "an argument of train(): continue the run in the run folder",
}


def train_cmd(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Architecture from the registry: mass-cnn (Kaur et al. 2021), "
                                              "mass-cnn-gcml, ... ('gcml models list').")] = default(TrainConfig, "model"),
    data: Annotated[Path | None, typer.Option("--data", "-d", help="MapSet to train on [default: the model's "
                                              "usual file, maps.h5 for mass-cnn].")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run folder [default: runs/MODEL/].")] = None,
    channels: Annotated[str | None, typer.Option("--channels", help="Input channels: a count (1 = sigma, "
                                                 "2 = sigma,v, 3 = sigma,v,count) or names [default: the model's].")] = default(TrainConfig, "channels"),
    target: Annotated[str | None, typer.Option("--target", "--targets", help="Target(s) under /targets, comma-separated "
                                               "[default: log10_mass_total].")] = default(TrainConfig, "targets"),
    depth: Annotated[int | None, typer.Option("--depth", help="mass-cnn convolutions: 2 or 4.")] = None,
    loss: Annotated[str, typer.Option("--loss", help="gaussian_nll (mean + log-variance) or mse (paper: "
                                      "squared error on the label rescaled to 0-10).")] = default(TrainConfig, "loss"),
    vgg16_weights: Annotated[Path | None, typer.Option("--vgg16-weights", help="ImageNet VGG16 weights (torchvision state dict, e.g. vgg16-397923af.pth) for pi-DOC's perceptual loss on map models; gcml never downloads them.")] = default(TrainConfig, "vgg16_weights"),
    perceptual_weight: Annotated[float, typer.Option("--perceptual-weight", min=0.0, help="Weight of the perceptual term (with --vgg16-weights).")] = default(TrainConfig, "perceptual_weight"),
    no_dropout: Annotated[bool, typer.Option("--no-dropout", help="Switch dropout off.")] = False,
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Maximum epochs.")] = default(TrainConfig, "epochs"),
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Global batch size.")] = default(TrainConfig, "batch_size"),
    lr: Annotated[float, typer.Option("--lr", help="Adam learning rate.")] = default(TrainConfig, "lr"),
    weight_decay: Annotated[float, typer.Option("--weight-decay", help="Adam weight decay.")] = default(TrainConfig, "weight_decay"),
    lr_schedule: Annotated[str, typer.Option("--lr-schedule", help="plateau, cosine or none.")] = default(TrainConfig, "lr_schedule"),
    patience: Annotated[int, typer.Option("--patience", "--early-stopping", min=0, help="Early stopping: epochs without a better "
                                          "validation loss (0 = never stop early).")] = default(TrainConfig, "early_stopping"),
    device: DeviceOpt = default(TrainConfig, "device"),
    gpus: GpusOpt = default(TrainConfig, "gpus"),
    nproc: Annotated[int, typer.Option("--nproc", min=0, help="CPU processes for DistributedDataParallel "
                                       "(gloo); 0 = auto: one per two cores for small maps (up to 32x32 px) on a "
                                       "run of 100,000 map-passes or more, else 1.")] = 0,
    workers: Annotated[int, typer.Option("--workers", "-j", min=0, help="Data-loading workers when the MapSet "
                                         "is streamed from disk.")] = default(TrainConfig, "workers"),
    in_memory: Annotated[str, typer.Option("--in-memory", help="auto, yes or no.")] = default(TrainConfig, "in_memory"),
    max_memory_gb: Annotated[float, typer.Option("--max-memory-gb", help="'auto' loads MapSets smaller than "
                                                 "this into memory.")] = default(TrainConfig, "max_memory_gb"),
    amp: Annotated[bool, typer.Option("--amp/--no-amp", help="Mixed precision (bfloat16) on CUDA.")] = default(TrainConfig, "amp"),
    threads: Annotated[int, typer.Option("--threads", min=0, help="CPU threads per process (0 = auto: the cores "
                                         "divided among the processes, at most 2 for maps up to 32x32 px).")] = default(TrainConfig, "threads"),
    resume: Annotated[str, typer.Option("--resume", help="yes: continue the interrupted run in the run folder "
                                        "(a bare --resume means yes); auto: continue if it has a checkpoint, else "
                                        "start (for requeued jobs and torchrun --max-restarts); no.")] = "no",
    logger: Annotated[str, typer.Option("--logger", help="Per-epoch metrics besides metrics.jsonl: csv "
                                        "(metrics.csv), tensorboard (tensorboard/; pip install 'gcml[tensorboard]') "
                                        "or none.")] = default(TrainConfig, "logger"),
    input_transform: Annotated[str, typer.Option("--input-transform", help="Image models: how the flux is read, "
                                                 "log10 (noiseless mocks, pi-DOC) or softlog10 (noisy images; needs "
                                                 "--softening).")] = default(TrainConfig, "input_transform"),
    softening: Annotated[float, typer.Option("--softening", min=0.0, help="softlog10's softening b [Lsun/kpc2]: the "
                                             "smoothed per-pixel noise of the training images.")] = default(TrainConfig, "softening"),
    physical_outputs: Annotated[bool, typer.Option("--physical-outputs/--linear-outputs", help="Map models with "
                                                   "scalar targets: learn distance as log and age as logit on (0, 14.5] "
                                                   "Gyr (predictions and intervals physical by construction).")] = default(TrainConfig, "physical_outputs"),
    seed: SeedOpt = default(TrainConfig, "seed"),
    config: ConfigOpt = None,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Train a network on a MapSet; writes best.pt, last.pt, metrics.jsonl and training.png to the run folder.

    Example: gcml train mass-cnn --channels 2 --depth 4 --data maps.h5 -o runs/dl2
    """
    with user_errors(ctx=ctx):
        from gcml.errors import ConfigError, TrainingInterrupted
        from gcml.models.mass_cnn import resolve_channels
        from gcml.models.registry import get_model_spec
        from gcml.training import TrainConfig, train

        o = resolve_options(ctx, config, "train")
        spec = get_model_spec(o["model"])
        arch: dict = {}
        if o["depth"] is not None:
            arch["depth"] = o["depth"]
        if o["no_dropout"]:
            arch.update(dropout_conv=0.0, dropout_dense=0.0)
        chans = resolve_channels(o["channels"]) if o["channels"] is not None else list(spec.default_channels)
        targets = [t.strip() for t in o["target"].split(",") if t.strip()] if o["target"] else list(spec.default_targets)
        data_path = Path(o["data"]) if o["data"] is not None else Path(spec.default_data)
        out_dir = Path(o["out"]) if o["out"] is not None else Path("runs") / spec.name
        from gcml.device import resolve_device

        resolve_device(o["device"], o["gpus"])  # too many GPUs: say so before anything else
        if not data_path.exists():
            raise ConfigError(f"--data {data_path}: file not found" + (
                " (make one with 'gcml simulate-maps -o maps.h5')" if o["data"] is None else ""))
        cfg = TrainConfig(
            model=spec.name, arch_kwargs=arch, channels=tuple(chans), targets=tuple(targets), loss=o["loss"],
            epochs=o["epochs"], batch_size=o["batch_size"], lr=o["lr"], weight_decay=o["weight_decay"],
            lr_schedule=o["lr_schedule"], early_stopping=o["patience"], seed=o["seed"], device=o["device"],
            gpus=o["gpus"], workers=o["workers"], in_memory=o["in_memory"],
            max_memory_gb=o["max_memory_gb"], amp=o["amp"], threads=o["threads"],
            vgg16_weights=str(o["vgg16_weights"] or ""), perceptual_weight=o["perceptual_weight"],
            logger=o["logger"], nproc=max(1, o["nproc"]), input_transform=o["input_transform"],
            softening=o["softening"], physical_outputs=o["physical_outputs"])
        if o["nproc"] == 0:
            from gcml.training.loop import auto_nproc

            cfg = cfg.replace(nproc=auto_nproc(data_path, cfg))
            o["nproc"] = cfg.nproc  # stored options repeat the run as it was made
        from gcml.training.loop import resume_mode

        resume_mode(o["resume"])  # a bad value: say so before reading the data
        q = is_quiet(o["quiet"])
        with make_progress(q) as prog:
            tasks: dict[str, int] = {}
            clock: dict[str, float] = {}

            def progress(event: str, info: dict) -> None:
                import time

                if event == "start":
                    clock.update(t0=time.perf_counter(), epochs_left=info["epochs"] - info["start_epoch"],
                                 batches=max(1, info["batches"]))
                    if not q:
                        prog.console.print(describe_run(cfg, info), highlight=False)
                    tasks["epochs"] = prog.add_task("epochs", total=info["epochs"], completed=info["start_epoch"])
                    tasks["batches"] = prog.add_task("batches", total=info["batches"])
                elif event == "batch":
                    prog.update(tasks["batches"], completed=info["batch"],
                                description=f"epoch {info['epoch']} loss {info['loss']:.4f}")
                    # an estimate once the first batches have run (the first few are slower: warm-up)
                    el = time.perf_counter() - clock["t0"]
                    if "eta" not in clock and (el > 5 or info["batch"] >= min(50, clock["batches"])):
                        clock["eta"] = el / info["batch"] * clock["batches"]
                        if not q:
                            prog.console.print(
                                f"estimated {_duration(clock['eta'])} per epoch, at most "
                                f"{_duration(clock['eta'] * clock['epochs_left'])} for {clock['epochs_left']:.0f} "
                                "epochs (early stopping may end it sooner)", highlight=False)
                elif event == "epoch":
                    prog.update(tasks["epochs"], completed=info["epoch"])
                    if info["epoch"] >= cfg.epochs:
                        prog.remove_task(tasks["batches"])
                    else:
                        prog.reset(tasks["batches"])
                    if not q:
                        prog.console.print(
                            f"epoch {info['epoch']:3d}  train {info['train_loss']:.4f}  val {info['val_loss']:.4f}  "
                            f"val MAE {info['val_mae']:.4f}  lr {info['lr']:.2e}  {info['maps_per_s']:.0f} maps/s",
                            highlight=False)

            try:
                res = train(data_path, cfg, out_dir, resume=o["resume"], overwrite=o["overwrite"],
                            progress=progress, options=stored_options("train", o))
            except TrainingInterrupted as exc:
                prog.stop()
                err_console.print(f"[bold red]interrupted:[/] {exc}", highlight=False, soft_wrap=True)
                if exc.epoch:
                    err_console.print(f"resume with:  {resume_command()}", highlight=False, soft_wrap=True)
                raise typer.Exit(130) from None
        from gcml.training.distributed import env_from_environment

        env = env_from_environment()
        if env is not None and not env.is_main:  # torchrun / SLURM: rank 0 reports
            return
    console.print(f"run folder: {res.run_dir}  (best epoch {res.best_epoch} of {res.epochs_run}"
                  f"{', stopped early' if res.stopped_early else ''}; {res.train_maps_per_s:.0f} maps/s on {res.device}"
                  f"{f' x {res.world_size} processes' if res.world_size > 1 else ''})", highlight=False)
    test = res.test_metrics.get("test", {})
    for name, m in test.items():
        console.print(f"test {name}: MAE {m['mae_dex']:.3f}, RMSE {m['rmse_dex']:.3f}, bias {m['bias_dex']:+.3f}, "
                      f"scatter {m['scatter_dex']:.3f}; normalised MAE {m['mae_norm']:.3f}, RMSE {m['rmse_norm']:.3f}; "
                      f"accuracy {m['accuracy']:.1f}%; 68% coverage {m.get('coverage_68', float('nan')):.2f}",
                      highlight=False)
    console.print(f"best model: {res.best_checkpoint}")
    if cfg.model == "mass-npe" and not is_quiet(o["quiet"]):
        print_note("the posterior's spread was fitted on the validation views (matching variances); for intervals "
                   "calibrated on ranks at every number of GCs, run 'gcml models calibrate "
                   f"{res.best_checkpoint} CALSET.h5 -o calibrated.pt' on independent simulated galaxies "
                   "(docs/training.md)")


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def describe_run(cfg, info: dict) -> str:
    """One line before training starts: data, network size, hardware."""
    where = info["device"] + (f" x {info['world_size']} processes" if info["world_size"] > 1 else "")
    if info["device"] == "cpu":
        where += f", {info['threads']} thread{'s' if info['threads'] != 1 else ''}" + (
            " each" if info["world_size"] > 1 else "")
    start = f", resuming after epoch {info['start_epoch']}" if info["start_epoch"] else ""
    return (f"training {cfg.model} ({info['n_parameters']:,} parameters) on {info['n_train']:,} maps, validating "
            f"on {info['n_val']:,}{' (streamed from disk)' if info['streaming'] else ''}; up to {cfg.epochs} epochs "
            f"of {info['batches']:,} batches of {cfg.batch_size}{start}; {where}")


def resume_command() -> str:
    """The running command with ``--resume yes`` (and without --overwrite)."""
    import shlex
    import sys

    argv = ["gcml", *sys.argv[1:]] if sys.argv and sys.argv[0].endswith(("gcml", "__main__.py")) else list(sys.argv)
    out, skip = [], False
    for i, a in enumerate(argv):
        if skip:
            skip = False
            continue
        if a == "--overwrite" or a.startswith("--resume="):
            continue
        if a == "--resume":
            skip = i + 1 < len(argv) and argv[i + 1].lower() in ("yes", "no", "auto", "true", "false")
            continue
        out.append(a)
    return " ".join(shlex.quote(a) for a in out + ["--resume", "yes"])
