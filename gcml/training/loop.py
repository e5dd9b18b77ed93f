"""The training loop shared by every gcml model.

``train(data, config, out)`` trains the registered model ``config.model`` on a MapSet with Adam
(Kingma & Ba 2015), a learning-rate schedule and early stopping on the validation split, and writes a
run folder::

    out/config.toml      resolved TrainConfig (plus data path and sha256)
    out/options.toml     the command-line options (runs started by ``gcml train``; ``--config`` repeats the run)
    out/metrics.jsonl    one JSON line per epoch (train/val loss, val MAE/RMSE, lr, maps/s, ...)
    out/training.png     loss curves
    out/best.pt          model bundle with the best validation loss (+ calibration and test metrics)
    out/last.pt          model bundle after the last epoch
    out/checkpoint.pt    optimizer, scheduler and early-stopping state for ``resume=True``
    out/summary.json     the TrainResult of the run

What the network reads and predicts, the normalisation and the loss come from the model's task
(:mod:`gcml.models.tasks`). Determinism: the initial weights are drawn from ``seed``; the batch
order and dropout of epoch ``e`` from ``(seed, e)`` only, so a run resumed after epoch ``e`` continues
exactly as the uninterrupted run would have, and a DistributedDataParallel run on W processes sees the
same global batches as one process (each rank takes an equal slice).

Why one module of ~650 lines: the loop, its checkpoints and resume, and the run folder share one state
(epoch, best loss, optimizer) that splitting would have to pass around; tasks, data, DDP, config and
metrics are already modules of their own.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gcml.config import to_jsonable
from gcml.device import resolve_device
from gcml.errors import (
    ConfigError,
    FormatError,
    GcmlError,
    InputError,
    OutputExistsError,
    TrainingInterrupted,
)
from gcml.io.common import atomic_output, check_output_dir, make_output_dir, sha256_file
from gcml.io.mapset import read_header
from gcml.models.bundle import Geometry, ModelBundle
from gcml.models.tasks import Task, get_task_class
from gcml.training.config import RESUMABLE_CHANGES, TrainConfig, to_toml
from gcml.training.distributed import (
    DistEnv,
    all_gather_objects,
    all_reduce_sum,
    destroy_process_group,
    env_from_environment,
    init_process_group,
    spawn,
)
from gcml.training.metrics import quick_metrics, split_metrics

RESUME_MODES = ("no", "yes", "auto")
CHECKPOINT_FORMAT = "gcml.checkpoint"
CHECKPOINT_VERSION = "1.0"

#: progress(event, info): event is "start" (info: epochs, batches, start_epoch, n_train, n_val,
#: n_parameters, device, world_size, threads, streaming), "batch" (info: epoch, batch, batches, loss)
#: or "epoch" (info: the epoch's metrics line).
ProgressFn = Callable[[str, dict[str, Any]], None]


@dataclass
class TrainResult:
    """What a training run produced."""

    run_dir: Path
    best_checkpoint: Path
    last_checkpoint: Path
    epochs_run: int
    best_epoch: int
    best_val_loss: float
    stopped_early: bool
    test_metrics: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    train_maps_per_s: float = float("nan")
    device: str = "cpu"
    world_size: int = 1
    resumed_from_epoch: int = 0
    threads: int = 0


# ------------------------------------------------------------------------------------------------
# set-up helpers
# ------------------------------------------------------------------------------------------------

def make_task(config: TrainConfig, channel_units: list[str] | None = None) -> Task:
    """The task of ``config.model`` with the config's channels, targets and loss (model defaults otherwise)."""
    from gcml.models.registry import get_model_spec

    spec = get_model_spec(config.model)
    channels = list(config.channels) or list(spec.default_channels)
    targets = list(config.targets) or list(spec.default_targets)
    if not channels or not targets:
        raise InputError(f"model '{config.model}': give the input channels and targets to train on")
    task = get_task_class(spec.task)(channels, targets, config.loss, channel_units=channel_units)
    if hasattr(task, "configure"):  # image map tasks: flux transform and physical scalar outputs
        task.configure(input_transform=config.input_transform, softening=config.softening,
                       physical_outputs=config.physical_outputs)
    elif config.input_transform != "log10":
        raise ConfigError(f"option `input_transform` '{config.input_transform}' applies to image map models (pidoc-ced, "
                          f"pidoc-net, ...), not to '{config.model}'")
    if config.vgg16_weights:
        if not hasattr(task, "set_perceptual"):
            raise ConfigError(f"option `vgg16_weights`: the perceptual loss applies to map models (pidoc-ced, "
                              f"pidoc-net, ...), not to '{config.model}'")
        from gcml.models.vgg import PerceptualLoss, load_vgg16_features

        task.set_perceptual(PerceptualLoss(load_vgg16_features(config.vgg16_weights)), config.perceptual_weight)
    return task


def _check_kind(path: Path, hdr: dict[str, Any], config: TrainConfig) -> None:
    from gcml.models.registry import get_model_spec

    spec = get_model_spec(config.model)
    if hdr["kind"] != spec.data_kind:
        raise InputError(f"{path}: is a '{hdr['kind']}' MapSet, but model '{config.model}' trains on "
                         f"'{spec.data_kind}' MapSets")


def build_network(config: TrainConfig, task: Task, input_size: tuple[int, int]) -> tuple[torch.nn.Module, dict]:
    from gcml.models.registry import build_model, get_model_spec

    spec = get_model_spec(config.model)
    kwargs = {**spec.defaults, **spec.train_defaults, **config.arch_kwargs, "in_channels": len(task.channels),
              "n_outputs": task.n_outputs}
    if spec.name.startswith("mass-cnn"):
        kwargs["input_size"] = int(input_size[0])
    kwargs = task.network_kwargs(kwargs)
    return build_model(config.model, **kwargs), kwargs


def resume_mode(resume: bool | str | None) -> str:
    """``--resume``: ``yes`` (continue; the checkpoint must exist), ``no`` or ``auto`` (continue when
    ``checkpoint.pt`` exists, else start; what a requeued job or ``torchrun --max-restarts`` needs)."""
    if resume is True:
        return "yes"
    if resume is False or resume is None:
        return "no"
    r = {"true": "yes", "false": "no"}.get(str(resume).strip().lower(), str(resume).strip().lower())
    if r not in RESUME_MODES:
        raise ConfigError(f"option `resume`: expected yes, no or auto, got '{resume}'")
    return r


def auto_threads(shape: tuple[int, int] | list[int], local_processes: int = 1) -> int:
    """CPU threads per process when ``--threads`` is 0 (auto).

    Small maps (up to 32 x 32 px, e.g. Kaur's 10 x 10) give tiny convolutions: at most
    :data:`SMALL_MAP_THREADS` per process (two threads beat one on the 2-core development machine; more
    than two per process were not measured, so bigger machines get more processes of two threads).
    Larger images (pi-DOC's 160 x 160) use the cores this process may run on. Either way the cores are
    divided among the processes started on this machine. Measured in docs/benchmarks.md ("training
    defaults"), with the passive OpenMP wait the ``gcml`` command sets
    (:func:`gcml.cli.main.openmp_wait_policy`).
    """
    h, w = (int(v) for v in shape)
    per_process = max(1, _usable_cores() // max(1, int(local_processes)))
    if h * w <= 32 * 32:
        return min(SMALL_MAP_THREADS, per_process)
    return per_process


#: threads per process for small maps (``auto_threads``); ``auto_nproc`` starts one process per this many cores
SMALL_MAP_THREADS = 2

#: ``--nproc 0`` (auto) starts several CPU processes only when the run has at least this many map-passes
#: (training maps x epochs): starting the processes costs seconds, the gain is half the run or more.
AUTO_DDP_MIN_WORK = 100_000


def _usable_cores() -> int:
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def auto_nproc(data: str | Path, config: TrainConfig) -> int:
    """CPU processes for ``gcml train --nproc 0`` (auto, the command's default).

    On a CPU, small maps (up to 32 x 32 px: Kaur's 10 x 10) use one DistributedDataParallel process per
    :data:`SMALL_MAP_THREADS` cores (each with that many threads, :func:`auto_threads`) once the run is long
    enough to repay starting them (:data:`AUTO_DDP_MIN_WORK`); on a 2-core machine that is one process with
    two threads, which beat two single-threaded processes in docs/benchmarks.md. Large images (pi-DOC's
    160 x 160) use one process with a thread per core; GPUs, torchrun and SLURM decide for themselves (1
    here). The result depends on the machine's cores: a run's ``options.toml`` records the resolved count,
    so ``--config`` repeats it.
    """
    import h5py

    from gcml.training.data import read_header

    if config.gpus or env_from_environment() is not None:
        return 1
    if resolve_device(config.device, 0).type != "cpu":
        return 1
    hdr = read_header(data)
    h, w = (int(v) for v in hdr["shape"])
    procs = _usable_cores() // SMALL_MAP_THREADS
    if h * w > 32 * 32 or procs < 2:
        return 1
    with h5py.File(data, "r") as f:
        n_train = int((f["split"][()] == 0).sum())
    if n_train * config.epochs < AUTO_DDP_MIN_WORK:
        return 1
    return max(1, min(procs, 8, config.batch_size, n_train // max(1, config.batch_size)))


def _local_processes(env: DistEnv) -> int:
    import os

    if env.launched_by == "spawn":
        return env.world_size
    for key in ("LOCAL_WORLD_SIZE", "SLURM_NTASKS_PER_NODE"):
        v = os.environ.get(key, "")
        if v.isdigit():
            return int(v)
    return 1


def _epoch_seed(seed: int, epoch: int, rank: int) -> int:
    ss = np.random.SeedSequence([int(seed), int(epoch), int(rank), 0x64726F70])
    return int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))


def _lr(opt: torch.optim.Optimizer) -> float:
    return float(opt.param_groups[0]["lr"])


def _make_scheduler(opt, config: TrainConfig):
    if config.lr_schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=config.lr_factor,
                                                          patience=config.lr_patience)
    if config.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs)
    return None


def _data_ranges(data: str | Path, hdr: dict[str, Any]) -> dict[str, Any]:
    """``extra.training_ranges`` of kinematic-map models (mass-cnn, mass-npe): what the training maps span, for
    the out-of-range warnings of ``gcml predict`` on a real catalogue; ``{}`` for other data."""
    if hdr.get("kind") != "kinematics":
        return {}
    from gcml.models.kinematic_inputs import training_ranges

    return {"training_ranges": training_ranges(data)}


def _preparation(task: Task, hdr: dict[str, Any], config: TrainConfig) -> dict[str, Any]:
    """What the training images went through (:class:`gcml.models.preparation.ImagePreparation`), recorded
    in image map models: the MapSet's grid and smoothing, the task's flux transform, the training PSF
    range, and ``config.preparation`` (noise model, ...); ``{}`` for other models."""
    if not hasattr(task, "configure") or hdr.get("kind") != "photometry":
        return {}
    from gcml.models.preparation import ImagePreparation

    base = ImagePreparation.from_bundle({"geometry": _geometry(hdr).to_dict(),
                                         "inputs": {"norm": {"transform": ["log10"], "floor": task.input_floor}},
                                         "training_range": task.training_range}).to_dict()
    base.pop("extra", None)
    base.update(transform=task.input_transform[0] if task.input_transform else "log10",
                softening=float(task.input_softening))
    base.update(config.preparation)
    return ImagePreparation.from_dict(base).to_dict()


def _geometry(hdr: dict[str, Any]) -> Geometry:
    return Geometry(shape=list(hdr["shape"]), pixel_scale=hdr["pixel_scale"], pixel_unit=hdr["pixel_unit"],
                    kind=hdr["kind"], map_attrs=dict(hdr["map_attrs"]), channels_available=list(hdr["channels"]))


# ------------------------------------------------------------------------------------------------
# evaluation passes
# ------------------------------------------------------------------------------------------------

@torch.no_grad()
def forward_split(model: torch.nn.Module, task: Task, data, split: str, device: torch.device,
                  batch_size: int, amp: bool = False, env: DistEnv | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Network outputs and physical targets for every map of a split (in file order), on CPU.

    With a distributed ``env`` (every rank must call it) each rank reads and runs its own contiguous part
    of the split and all ranks receive the whole result."""
    model.eval()
    outs, ys = [], []
    if task.max_eval_batch:
        batch_size = min(batch_size, task.max_eval_batch)
    rank, world = (env.rank, env.world_size) if env is not None and env.distributed else (0, 1)
    for xb, yb in data.eval_batches(split, batch_size, rank=rank, world=world):
        xb = task.encode_x(xb.to(device, non_blocking=True))
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda"):
            # a posterior task (mass-npe) also gives the network the targets, for their log-likelihood
            out = task.collect(model(xb, task.encode_y(yb.to(device))) if task.takes_targets else model(xb))
        outs.append(out.float().cpu())
        ys.append(yb.cpu())
    if world > 1:
        parts = all_gather_objects((outs, ys), env)  # type: ignore[arg-type]
        outs = [o for p in parts for o in p[0]]
        ys = [y for p in parts for y in p[1]]
    if not outs:
        return torch.zeros(0, task.n_outputs), torch.zeros(0, len(task.targets))
    return torch.cat(outs), torch.cat(ys)


# ------------------------------------------------------------------------------------------------
# checkpoints
# ------------------------------------------------------------------------------------------------

def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    with atomic_output(path, overwrite=True) as tmp:
        torch.save({"format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION, **state}, tmp)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a resume checkpoint written by :func:`train` (``weights_only=True``)."""
    import pickle

    if not path.is_file():
        raise InputError(f"{path}: no checkpoint to resume from (run without `resume` to start afresh)")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise FormatError(f"{path}: not a readable gcml training checkpoint ({first[:160]})") from None
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise FormatError(f"{path}: not a gcml training checkpoint (no format='{CHECKPOINT_FORMAT}' entry)")
    for key in ("config", "epoch", "model", "optimizer"):
        if key not in ck:
            raise FormatError(f"{path}: training checkpoint lacks '{key}'")
    return ck


def _check_resume_config(path: Path, saved: dict[str, Any], config: TrainConfig) -> None:
    now = config.to_dict()
    for k, v in saved.items():
        if k in RESUMABLE_CHANGES:
            continue
        if k in now and json.dumps(now[k], sort_keys=True) != json.dumps(v, sort_keys=True):
            raise InputError(f"{path}: the checkpoint was trained with {k}={v!r}, not {now[k]!r}; "
                             f"resume with the same settings (only {', '.join(RESUMABLE_CHANGES)} may change)")


# ------------------------------------------------------------------------------------------------
# the loop
# ------------------------------------------------------------------------------------------------

def train(data: str | Path, config: TrainConfig, out: str | Path, *, resume: bool | str = False,
          overwrite: bool = False, progress: ProgressFn | bool | None = None, command: str | None = None,
          options: dict[str, Any] | None = None) -> TrainResult:
    """Train ``config.model`` on the MapSet ``data`` and write the run folder ``out``.

    Parameters
    ----------
    data : path of a MapSet (``gcml simulate-maps`` / ``mock-observe`` output)
    config : the run's settings
    out : run folder
    resume : ``True``/``"yes"``: continue from ``out/checkpoint.pt`` (an interrupted run ends with the
        same weights as an uninterrupted one on CPU); ``"auto"``: continue when that checkpoint exists,
        else start (a folder without outputs, or one whose run was stopped before its first epoch ended)
    overwrite : replace the outputs of an earlier run in ``out``
    progress : callback, see :data:`ProgressFn` (called by rank 0 only); ``True``: tqdm.auto bars (notebooks)
    command : the command line recorded in the bundles
    options : the command-line options of ``gcml train`` (``{"command": "train", option: value, ...}``,
        :func:`gcml.io.common.options_record`): rank 0 writes them to ``options.toml`` so that
        ``--config`` repeats the run. Passed explicitly, also to the processes of a DDP run.

    Returns
    -------
    TrainResult

    Raises
    ------
    InputError, FormatError, ConfigError, DeviceError, OutputExistsError, TrainingInterrupted (Ctrl-C:
    the checkpoint of the last completed epoch is kept)
    """
    import contextlib
    import multiprocessing

    from gcml.io.common import output_lock

    if getattr(multiprocessing.current_process(), "_inheriting", False):
        # a spawned process re-importing the caller's script, whose top level called train() again (checked
        # before the run folder's lock, which the parent holds)
        raise InputError(f"distributed training (nproc={config.world_size}) starts its processes with "
                         "'spawn', which re-imports the calling script: call train() under "
                         "'if __name__ == \"__main__\":' in that script")
    data, out = Path(data), Path(out)
    if progress is True:
        progress = _tqdm_progress()
    elif progress is False:
        progress = None
    env = env_from_environment()
    main_process = env is None or env.is_main
    if main_process:
        check_output_dir(out)
    if env is None and config.world_size > 1:
        import multiprocessing

        if getattr(multiprocessing.current_process(), "_inheriting", False):
            # a spawned process re-importing the caller's script (whose top level calls train()): say so before
            # the run folder's lock, which the parent holds, turns it into an 'output busy' error
            return _train_spawned(data, config, out, resume, progress, command)
    # The run folder is this run's until it ends: a second `train -o` into it fails at once.
    with output_lock(out) if main_process else contextlib.nullcontext():
        mode = resume_mode(resume)
        resume = mode == "yes" or (mode == "auto" and (out / "checkpoint.pt").is_file())
        _preflight(data, config, out, resume=resume, overwrite=overwrite, check_outputs=main_process,
                   auto=mode == "auto")
        if env is not None:  # launched by torchrun or SLURM: this process is one rank
            return _run(env, data, config, out, resume, progress, command, options)
        if config.world_size == 1:
            return _run(DistEnv(), data, config, out, resume, progress, command, options)
        return _train_spawned(data, config, out, resume, progress, command, options)


def _train_spawned(data: Path, config: TrainConfig, out: Path, resume: bool, progress: ProgressFn | None,
                   command: str | None, options: dict[str, Any] | None) -> TrainResult:
    import torch.multiprocessing as mp

    queue = mp.get_context("spawn").SimpleQueue() if progress is not None else None

    def poll() -> None:
        while queue is not None and not queue.empty():
            event, info = queue.get()
            progress(event, info)  # type: ignore[misc]

    try:
        spawn(_spawned, config.world_size, (str(data), config.to_dict(), str(out), resume, queue, command,
                                            options), poll=poll)
    except KeyboardInterrupt:
        raise _interrupted(out, _saved_epoch(out / "checkpoint.pt")) from None
    except Exception as exc:  # a rank failed; show its last line
        last = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
        raise InputError(f"distributed training failed on one process: {last[-1] if last else exc} "
                         "(its own error is printed above)") from None
    return result_from_summary(out)


def _spawned(rank: int, world: int, data: str, config: dict, out: str, resume: bool, queue, command,
             options: dict[str, Any] | None = None) -> None:
    cfg = TrainConfig.from_dict(config)
    prog = (lambda e, i: queue.put((e, i))) if queue is not None else None
    _run(DistEnv(rank=rank, world_size=world, local_rank=rank, launched_by="spawn"), Path(data), cfg,
         Path(out), resume, prog, command, options)


def _tqdm_progress() -> ProgressFn:
    """``train(..., progress=True)``: tqdm.auto bars (epochs; batches of the current epoch) for notebooks."""
    from tqdm.auto import tqdm

    bars: dict[str, Any] = {}

    def fn(event: str, info: dict[str, Any]) -> None:
        if event == "start":
            bars["epochs"] = tqdm(total=info["epochs"], initial=info["start_epoch"], desc="epochs", unit="epoch")
            bars["batches"] = tqdm(total=info["batches"], desc="batches", unit="batch", leave=False)
        elif event == "batch":
            b = bars["batches"]
            if info["batch"] == 1:
                b.reset(total=info["batches"])
            b.update(info["batch"] - b.n)
            b.set_postfix(loss=f"{info['loss']:.4f}", refresh=False)
        elif event == "epoch":
            bars["epochs"].update(1)
            bars["epochs"].set_postfix(val_loss=f"{info['val_loss']:.4f}")
            if info["epoch"] >= bars["epochs"].total:
                bars["batches"].close()
                bars["epochs"].close()

    return fn


def _saved_epoch(path: Path) -> int:
    try:
        return int(load_checkpoint(path)["epoch"])
    except GcmlError:
        return 0


def _interrupted(out: Path, epoch: int) -> TrainingInterrupted:
    ck = out / "checkpoint.pt"
    if epoch:
        msg = f"training interrupted; {ck} holds epoch {epoch}"
    else:
        msg = "training interrupted before its first epoch ended; there is no checkpoint to resume from"
    return TrainingInterrupted(msg, run_dir=out, checkpoint=ck, epoch=epoch)


def _preflight(data: Path, config: TrainConfig, out: Path, *, resume: bool, overwrite: bool,
               check_outputs: bool = True, auto: bool = False) -> None:
    """Checks done once, before any process starts: data, model, devices, output folder."""
    hdr = read_header(data)
    _check_kind(data, hdr, config)
    task = make_task(config)
    task.check_header(hdr, data)
    if hdr["n"] == 0:
        raise InputError(f"{data}: the MapSet has no maps")
    resolve_device(config.device, config.gpus)
    if out.exists() and not out.is_dir():
        raise InputError(f"`out` {out}: exists and is not a folder; expected a run folder")
    check_output_dir(out)
    if resume:
        load_checkpoint(out / "checkpoint.pt")
    elif not overwrite and check_outputs:
        # --resume auto without a checkpoint: files of a run stopped before its first epoch ended are replaced
        for name in ("best.pt", "last.pt") if auto else ("best.pt", "last.pt", "checkpoint.pt", "metrics.jsonl"):
            if (out / name).exists():
                raise OutputExistsError(f"{out / name} already exists; pass `overwrite` to start again "
                                        "or `resume` yes to continue that run")
    if config.logger == "tensorboard":
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            raise ConfigError("option `logger` tensorboard: the tensorboard package is not installed "
                              "(pip install 'gcml[tensorboard]'), or use `logger` csv") from None


def _run(env: DistEnv, data: Path, config: TrainConfig, out: Path, resume: bool,
         progress: ProgressFn | None, command: str | None, options: dict[str, Any] | None = None) -> TrainResult:
    from gcml.training.data import open_training_data

    device = resolve_device(config.device, config.gpus, env.local_rank)
    threads = config.threads or auto_threads(read_header(data)["shape"], _local_processes(env))
    torch.set_num_threads(threads)
    if env.distributed:
        env = init_process_group(env, device)
    try:
        hdr = read_header(data)
        task = make_task(config)
        ds = open_training_data(data, task, in_memory=config.in_memory, max_memory_gb=config.max_memory_gb,
                                workers=config.workers)
        task.channel_units = ds.channel_units
        task.fit(ds.stats)
        if not ds.streaming:
            ds.to(device)
        if ds.n_split("val") == 0:
            raise InputError(f"{data}: the validation split (split == 1) is empty; early stopping needs it (make "
                             "the MapSet from more simulations or galaxies, or with 'gcml mock-observe --split-by "
                             "snapshot')")
        data_sha = sha256_file(data)
        torch.manual_seed(config.seed)
        model, arch_kwargs = build_network(config, task, hdr["shape"])
        model.to(device)
        net: torch.nn.Module = model
        if env.distributed:
            net = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None)
        opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        sched = _make_scheduler(opt, config)
        amp = config.amp and device.type == "cuda"

        start_epoch, best_val, best_epoch, bad_epochs, history = 0, math.inf, 0, 0, []
        ck_path = out / "checkpoint.pt"
        if resume:
            ck = load_checkpoint(ck_path)
            _check_resume_config(ck_path, ck["config"], config)
            if ck.get("data_sha256") not in (None, data_sha):
                raise InputError(f"{data}: differs from the MapSet the checkpoint {ck_path} was trained on "
                                 "(sha256 mismatch)")
            try:
                model.load_state_dict(ck["model"])
                opt.load_state_dict(ck["optimizer"])
                if sched is not None and ck.get("scheduler") is not None:
                    sched.load_state_dict(ck["scheduler"])
            except (RuntimeError, KeyError, ValueError) as exc:
                raise FormatError(f"{ck_path}: checkpoint does not fit model '{config.model}' ({str(exc)[:160]})") from None
            start_epoch = int(ck["epoch"])
            best_val, best_epoch = float(ck.get("best_val", math.inf)), int(ck.get("best_epoch", 0))
            bad_epochs, history = int(ck.get("bad_epochs", 0)), list(ck.get("history", []))
        if env.is_main:
            make_output_dir(out)
            with atomic_output(out / "config.toml", overwrite=True) as tmp:
                tmp.write_text(f"# gcml train: resolved configuration\n# data = {data}\n# data_sha256 = {data_sha}\n"
                               + to_toml(config.to_dict()))
            opts = dict(options) if options else None
            if opts is not None and opts.pop("command") == "train":  # run by the CLI: its options, re-runnable
                with atomic_output(out / "options.toml", overwrite=True) as tmp:
                    tmp.write_text(f"# gcml train: the command-line options of this run; repeat it with\n"
                                   f"# gcml train --config {out}/options.toml -o NEW_RUN\n"
                                   + to_toml({"train": to_jsonable(opts)}))
            # fresh: empty; resumed: the checkpoint's epochs (a line written after it was saved is dropped)
            with atomic_output(out / "metrics.jsonl", overwrite=True) as tmp:
                tmp.write_text("".join(json.dumps(h) + "\n" for h in history))
        logger = _Logger(config.logger, out, history, start_epoch) if env.is_main else None

        preparation = _preparation(task, hdr, config)
        extra = _data_ranges(data, hdr) if env.is_main else {}

        def bundle(state_dict, metrics: dict[str, Any], epoch: int) -> ModelBundle:
            return ModelBundle(
                architecture=config.model, arch_kwargs=arch_kwargs, state_dict=state_dict, task="", inputs={},
                targets={}, geometry=_geometry(hdr), training=config.to_dict(),
                provenance={"data": str(data), "data_sha256": data_sha, "command": command or "",
                            "data_gcml_version": hdr["attrs"].get("gcml_version", ""),
                            "epoch": epoch, "world_size": env.world_size},
                metrics=metrics, preparation=preparation, extra=dict(extra)).set_task(task)

        n_batches = ds.n_batches("train", config.batch_size, env.world_size)
        if env.is_main and progress is not None:
            progress("start", {"epochs": config.epochs, "batches": n_batches, "start_epoch": start_epoch,
                               "n_train": ds.n_split("train"), "n_val": ds.n_split("val"),
                               "n_parameters": sum(p.numel() for p in model.parameters()),
                               "device": str(device), "world_size": env.world_size, "threads": threads,
                               "streaming": bool(ds.streaming)})
        stopped_early = bool(config.early_stopping and bad_epochs >= config.early_stopping)

        saved_epoch = start_epoch
        try:
            for epoch in range(start_epoch, config.epochs):
                if stopped_early:
                    break
                net.train()
                torch.manual_seed(_epoch_seed(config.seed, epoch, env.rank))
                t0, c0 = time.perf_counter(), time.process_time()
                s_loss, s_n = 0.0, 0
                for bi, (xb, yb) in enumerate(ds.batches("train", config.batch_size, epoch=epoch, seed=config.seed,
                                                         rank=env.rank, world=env.world_size)):
                    xb = task.encode_x(xb.to(device, non_blocking=True))
                    yb = task.encode_y(yb.to(device, non_blocking=True))
                    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
                        outb = net(xb, yb) if task.takes_targets else net(xb)
                    loss = task.loss(outb, yb)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    lv = float(loss.detach())
                    if not math.isfinite(lv):
                        raise InputError(f"training diverged: the loss became {lv} in epoch {epoch + 1} "
                                         f"(batch {bi + 1}); lower `lr` (now {config.lr:g})")
                    s_loss += lv * len(xb)
                    s_n += len(xb)
                    if env.is_main and progress is not None:
                        progress("batch", {"epoch": epoch + 1, "batch": bi + 1, "batches": n_batches, "loss": lv})
                s_loss, s_n = all_reduce_sum([s_loss, float(s_n)], device, env)
                dt, dc = time.perf_counter() - t0, time.process_time() - c0
                # each rank runs its part of the validation split; all get the whole result
                vout, vy = forward_split(model, task, ds, "val", device, config.eval_batch_size, amp, env)
                vm = quick_metrics(task, vout, vy)
                val_loss = vm["loss"]
                if not math.isfinite(val_loss):
                    raise InputError(f"training diverged: the validation loss became {val_loss} in epoch "
                                     f"{epoch + 1} (training loss {s_loss / max(s_n, 1):.4g}); lower `lr` "
                                     f"(now {config.lr:g})")
                line = {"epoch": epoch + 1, "train_loss": s_loss / max(s_n, 1), "val_loss": val_loss,
                        "val_mae": vm["mae"], "val_rmse": vm["rmse"], "val_bias": vm["bias"], "lr": _lr(opt),
                        "time_s": dt, "maps_per_s": s_n / dt if dt > 0 else float("nan"),
                        "cpu_s": dc}
                if sched is not None:
                    if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
                        sched.step(val_loss)
                    else:
                        sched.step()
                improved = val_loss < best_val
                if improved:
                    best_val, best_epoch, bad_epochs = val_loss, epoch + 1, 0
                else:
                    bad_epochs += 1
                history.append(line)
                if env.is_main:
                    task.calibrate(vout, vy)
                    sd = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
                    val_metrics = {"val": {k: v for k, v in line.items() if k.startswith("val_")}}
                    if improved:
                        bundle(sd, val_metrics, epoch + 1).save(out / "best.pt", overwrite=True)
                    bundle(sd, val_metrics, epoch + 1).save(out / "last.pt", overwrite=True)
                    with open(out / "metrics.jsonl", "a") as fh:
                        fh.write(json.dumps(line) + "\n")
                    _save_checkpoint(ck_path, {
                        "config": config.to_dict(), "epoch": epoch + 1, "model": sd, "optimizer": opt.state_dict(),
                        "scheduler": sched.state_dict() if sched is not None else None, "best_val": best_val,
                        "best_epoch": best_epoch, "bad_epochs": bad_epochs, "history": history,
                        "data_sha256": data_sha})
                    saved_epoch = epoch + 1
                    if logger is not None:
                        logger.log(line)
                    if progress is not None:
                        progress("epoch", line)
                if config.early_stopping and bad_epochs >= config.early_stopping:
                    stopped_early = True
                    break
        except KeyboardInterrupt:
            raise _interrupted(out, saved_epoch) from None
        finally:
            if logger is not None:
                logger.close()
        result = None
        if env.is_main:
            result = _finish(out, data, ds, task, config, device, amp, history, best_epoch, best_val,
                             stopped_early, env, start_epoch, threads)
        if env.distributed:
            import torch.distributed as dist

            dist.barrier()
        return result if result is not None else TrainResult(
            run_dir=out, best_checkpoint=out / "best.pt", last_checkpoint=out / "last.pt", epochs_run=len(history),
            best_epoch=best_epoch, best_val_loss=best_val, stopped_early=stopped_early, history=history,
            device=str(device), world_size=env.world_size, resumed_from_epoch=start_epoch, threads=threads)
    finally:
        if env.distributed and env.launched_by == "spawn":
            destroy_process_group()


def _finish(out: Path, data: Path, ds, task: Task, config: TrainConfig, device: torch.device, amp: bool,
            history: list[dict], best_epoch: int, best_val: float, stopped_early: bool, env: DistEnv,
            start_epoch: int, threads: int = 0) -> TrainResult:
    """Reload best.pt, calibrate on val, compute test metrics, rewrite best.pt, plot, write summary."""
    from gcml.evaluation.plots import plot_training_curves
    b = ModelBundle.load(out / "best.pt")
    model, _ = build_network(config, task, b.geometry.shape)
    model.load_state_dict(b.state_dict)
    model.to(device)
    vout, vy = forward_split(model, task, ds, "val", device, config.eval_batch_size, amp)
    task.calibrate(vout, vy)
    metrics: dict[str, Any] = {"val": b.metrics.get("val", {})}
    for split in ("test", "ood"):
        if ds.n_split(split):
            o, y = forward_split(model, task, ds, split, device, config.eval_batch_size, amp)
            metrics[split] = split_metrics(task, o, y)
    b.set_task(task)
    b.metrics = metrics
    b.save(out / "best.pt", overwrite=True)
    plot_training_curves(history, out / "training.png", overwrite=True)
    speeds = [h["maps_per_s"] for h in history[1:] or history]
    res = TrainResult(
        run_dir=out, best_checkpoint=out / "best.pt", last_checkpoint=out / "last.pt", epochs_run=len(history),
        best_epoch=best_epoch, best_val_loss=best_val, stopped_early=stopped_early, test_metrics=metrics,
        history=history, train_maps_per_s=float(np.median(speeds)) if speeds else float("nan"),
        device=str(device), world_size=env.world_size, resumed_from_epoch=start_epoch, threads=threads)
    from gcml.config import to_jsonable

    with atomic_output(out / "summary.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps(to_jsonable(res), indent=1, default=str))
    return res


class _Logger:
    """Per-epoch metrics for experiment trackers (rank 0): ``csv`` writes ``metrics.csv``, ``tensorboard``
    event files under ``tensorboard/``, ``none`` nothing (``metrics.jsonl`` is always written)."""

    def __init__(self, kind: str, out: Path, history: list[dict[str, Any]], start_epoch: int) -> None:
        self.kind, self.out, self._writer, self._keys = kind, out, None, None
        if kind == "csv":
            # rewritten from the checkpoint's history, so a resumed run has each epoch once
            self._keys = list(history[0]) if history else None
            with atomic_output(out / "metrics.csv", overwrite=True) as tmp:
                tmp.write_text(self._rows(history))
        elif kind == "tensorboard":
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(out / "tensorboard"), purge_step=start_epoch + 1)

    def _rows(self, lines: list[dict[str, Any]], header: bool = True) -> str:
        if not lines:
            return ""
        keys = self._keys or list(lines[0])
        self._keys = keys
        text = ",".join(keys) + "\n" if header else ""
        return text + "".join(",".join(repr(float(ln.get(k, float("nan")))) for k in keys) + "\n" for ln in lines)

    def log(self, line: dict[str, Any]) -> None:
        if self.kind == "csv":
            first = self._keys is None
            with open(self.out / "metrics.csv", "a") as fh:
                fh.write(self._rows([line], header=first))
        elif self._writer is not None:
            for k, v in line.items():
                if k != "epoch":
                    self._writer.add_scalar(k, float(v), int(line["epoch"]))
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def result_from_summary(out: Path) -> TrainResult:
    p = Path(out) / "summary.json"
    if not p.is_file():
        raise InputError(f"{p}: the training run wrote no summary")
    d = json.loads(p.read_text())
    d["run_dir"] = Path(d["run_dir"])
    d["best_checkpoint"] = Path(d["best_checkpoint"])
    d["last_checkpoint"] = Path(d["last_checkpoint"])
    return TrainResult(**d)
