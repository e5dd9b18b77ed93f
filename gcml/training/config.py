"""``TrainConfig``: every setting of a training run, as one frozen dataclass.

The resolved config is written to the run folder (``config.toml``) and into every model bundle, and a
resumed run checks that it continues the same config (only ``epochs`` may grow).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from gcml.errors import ConfigError

LOSSES = ("gaussian_nll", "mse")
SCHEDULES = ("plateau", "cosine", "none")
IN_MEMORY = ("auto", "yes", "no")

#: Settings that may differ between an interrupted run and its resumption.
RESUMABLE_CHANGES = ("epochs", "device", "workers", "threads", "in_memory", "max_memory_gb", "gpus", "nproc",
                     "logger")
LOGGERS = ("csv", "tensorboard", "none")


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run.

    Attributes
    ----------
    model : registry name (``mass-cnn``, ``mass-cnn-gcml``, ``pidoc-cnn``, ...)
    arch_kwargs : keyword arguments of the model builder (e.g. ``{"depth": 4}``)
    channels : MapSet channels the network reads, in order (empty: the model's default)
    targets : target names under ``/targets`` (empty: the model's default)
    loss : ``gaussian_nll`` (mean + log-variance head, targets standardised) or ``mse``
        (Kaur et al. 2021: one output, squared error on the target rescaled to 0-10 over the data range)
    epochs, batch_size, lr, weight_decay : Adam optimisation (Kingma & Ba 2015)
    lr_schedule : ``plateau`` (halve the rate after ``lr_patience`` epochs without improvement of the
        validation loss), ``cosine`` (cosine annealing to 0 over ``epochs``) or ``none``
    early_stopping : stop after this many epochs without a better validation loss (0: never)
    seed : seeds the initial weights, the batch order and dropout (per epoch, so resuming is exact)
    device : ``auto``, ``cpu``, ``cuda`` or ``cuda:K``
    gpus : number of GPUs; more than one runs DistributedDataParallel with NCCL
    nproc : CPU processes for DistributedDataParallel with gloo (testing and CPU clusters)
    workers : data-loading worker processes when the MapSet is streamed from HDF5
    in_memory : ``auto`` (load the MapSet when it needs less than ``max_memory_gb``), ``yes`` or ``no``
    amp : mixed precision (bfloat16 autocast) on CUDA; ignored on CPU
    threads : torch intra-op threads per process (0: auto, see :func:`gcml.training.loop.auto_threads`:
        the available cores divided among this machine's processes, at most 2 for maps up to 32 x 32 px)
    eval_batch_size : batch size for validation and test passes
    vgg16_weights : file of ImageNet VGG16 weights (torchvision layout) for pi-DOC's perceptual loss on
        map targets; empty: no perceptual term (see :mod:`gcml.models.vgg`)
    perceptual_weight : weight of the perceptual term relative to the per-pixel loss
    logger : per-epoch metrics for experiment trackers besides ``metrics.jsonl``: ``csv``
        (``metrics.csv``), ``tensorboard`` (``tensorboard/``; the optional ``tensorboard`` package) or ``none``
    input_transform : image models: how the flux is read, ``log10`` (noiseless mocks, pi-DOC) or
        ``softlog10`` (noisy images; see :mod:`gcml.models.preparation`)
    softening : ``b`` of ``softlog10`` [Lsun/kpc^2]: the smoothed per-pixel noise of the training images
    physical_outputs : map models with scalar targets: learn distance as log and age as logit on
        (0, 14.5] Gyr so predictions and intervals are physical by construction
        (:mod:`gcml.models.physical_outputs`); False: linear, as models trained before it
    preparation : image models: fields of :class:`gcml.models.preparation.ImagePreparation` to record in
        the model beyond what the MapSet says (``noise``, ``noise_sigma``, ``psf_fwhm_range``, ...)
    """

    model: str = "mass-cnn"
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    channels: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    loss: str = "gaussian_nll"
    epochs: int = 30
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    lr_schedule: str = "plateau"
    lr_patience: int = 3
    lr_factor: float = 0.5
    early_stopping: int = 8
    seed: int = 0
    device: str = "auto"
    gpus: int = 0
    nproc: int = 1
    workers: int = 0
    in_memory: str = "auto"
    max_memory_gb: float = 4.0
    amp: bool = True
    threads: int = 0
    eval_batch_size: int = 4096
    vgg16_weights: str = ""
    perceptual_weight: float = 1.0
    logger: str = "csv"
    input_transform: str = "log10"
    softening: float = 0.0
    physical_outputs: bool = True
    preparation: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from gcml.config import check_finite_fields

        check_finite_fields(self)
        object.__setattr__(self, "channels", tuple(str(c) for c in self.channels))
        object.__setattr__(self, "targets", tuple(str(t) for t in self.targets))
        object.__setattr__(self, "arch_kwargs", dict(self.arch_kwargs))
        object.__setattr__(self, "preparation", dict(self.preparation))
        checks = [
            (self.loss in LOSSES, f"`loss` must be one of {', '.join(LOSSES)}, got '{self.loss}'"),
            (self.lr_schedule in SCHEDULES, f"`lr_schedule` must be one of {', '.join(SCHEDULES)}, got '{self.lr_schedule}'"),
            (self.logger in LOGGERS, f"`logger` must be one of {', '.join(LOGGERS)}, got '{self.logger}'"),
            (self.in_memory in IN_MEMORY, f"`in_memory` must be one of {', '.join(IN_MEMORY)}, got '{self.in_memory}'"),
            (self.epochs >= 1, f"`epochs` must be at least 1, got {self.epochs}"),
            (self.batch_size >= 1, f"`batch_size` must be at least 1, got {self.batch_size}"),
            (self.eval_batch_size >= 1, f"`eval_batch_size` must be at least 1, got {self.eval_batch_size}"),
            (self.lr > 0, f"`lr` must be positive, got {self.lr}"),
            (self.weight_decay >= 0, f"`weight_decay` must be >= 0, got {self.weight_decay}"),
            (0 < self.lr_factor < 1, f"`lr_factor` must be in (0, 1), got {self.lr_factor}"),
            (self.lr_patience >= 0 and self.early_stopping >= 0, "`lr_patience` and `early_stopping` must be >= 0"),
            (self.gpus >= 0 and self.nproc >= 1, f"`gpus` must be >= 0 and `nproc` >= 1, got {self.gpus}, {self.nproc}"),
            (not (self.gpus > 1 and self.nproc > 1), "give either `gpus` (NCCL) or `nproc` (gloo on CPU), not both"),
            (self.workers >= 0 and self.threads >= 0, "`workers` and `threads` must be >= 0"),
            (self.perceptual_weight >= 0, f"`perceptual_weight` must be >= 0, got {self.perceptual_weight}"),
            (self.max_memory_gb > 0, f"`max_memory_gb` must be positive, got {self.max_memory_gb}"),
            (self.input_transform in ("log10", "softlog10"),
             f"`input_transform` must be log10 or softlog10, got '{self.input_transform}'"),
            (self.softening >= 0, f"`softening` must be >= 0, got {self.softening}"),
            (self.input_transform != "softlog10" or self.softening > 0,
             "`input_transform` softlog10 needs a `softening` > 0 (the smoothed per-pixel noise [Lsun/kpc2])"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(f"training option {msg}")

    @property
    def world_size(self) -> int:
        """Processes of a DistributedDataParallel run started by gcml (1: a single process)."""
        return max(self.gpus, self.nproc, 1)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["channels"] = list(self.channels)
        d["targets"] = list(self.targets)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"training config: unknown setting(s) {', '.join(unknown)}")
        return cls(**d)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


def to_toml(d: dict[str, Any]) -> str:
    """A small TOML writer for flat configs with one level of tables (``arch_kwargs``)."""

    def val(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(val(x) for x in v) + "]"
        s = str(v).replace("\\", "\\\\").replace('"', '\\"')
        return f'"{s}"'

    lines, tables = [], []
    for k, v in d.items():
        if isinstance(v, dict):
            tables.append((k, v))
        elif v is not None:
            lines.append(f"{k} = {val(v)}")
    for k, v in tables:
        lines.append(f"\n[{k}]")
        lines.extend(f"{kk} = {val(vv)}" for kk, vv in v.items() if vv is not None)
    return "\n".join(lines) + "\n"
