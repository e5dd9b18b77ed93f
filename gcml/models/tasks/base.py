"""The :class:`Task` interface: what a network reads from a MapSet, what it predicts, how both are
normalised, the loss, and how outputs decode into physical units.

The one training loop (:func:`gcml.training.loop.train`) and the one loader of trained models
(:class:`gcml.models.trained.TrainedModel`) are written against this interface, so a new kind of model
adds a Task subclass to the explicit registry :data:`gcml.models.tasks.TASKS`, not a second loop or
loader. A model registry entry names its task (``ModelSpec.task``).

A task

* names the MapSet ``channels`` the network reads and the ``targets`` it predicts (``source``:
  ``"targets"`` for scalars under ``/targets``, ``"truth"`` for maps under ``/truth``);
* learns its normalisation from the training split (:meth:`Task.fit`) and stores it in the model
  bundle (:meth:`Task.bundle_entries`), so prediction reproduces it exactly;
* says how many network outputs it needs (:attr:`Task.n_outputs`), computes the loss on encoded
  targets (:meth:`Task.loss`) and decodes network outputs into physical units with an uncertainty
  (:meth:`Task.decode`);
* calibrates its uncertainty on the validation split (:meth:`Task.calibrate`).
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from gcml.errors import FormatError, InputError

#: Gaussian log-variance is clamped to this range (in units of the standardised target) for stability.
LOGVAR_MIN, LOGVAR_MAX = -14.0, 6.0

#: Channel units holding a linear flux: the network reads log10 of it, as pi-DOC does (Chardin & Bianchini
#: 2021, Section 2.3: the input is the standardised log10 of the V-band flux per pixel).
LOG_FLUX_UNITS = ("Lsun/kpc2",)
#: Flux per pixel [Lsun/kpc^2] below which (empty sky, noise) pixels are raised before the logarithm;
#: the same floor as mock-observe's pi-DOC convention.
FLUX_FLOOR = 1e-9
#: Names of the same channel (the registry's pi-DOC models say ``flux_v``, mock-observe writes ``flux``).
CHANNEL_ALIASES = {"flux_v": "flux", "flux": "flux_v"}


@dataclass
class DataStats:
    """What a task may learn from the data before training (computed by :mod:`gcml.training.data`).

    Attributes
    ----------
    channel_mean, channel_std : (C,) float64, per-channel mean and standard deviation of the training maps
    targets : dict name -> (N,) float64, every row's targets (all splits)
    split : (N,) uint8, the MapSet split of each row
    units : dict name -> unit string of each target
    """

    channel_mean: np.ndarray
    channel_std: np.ndarray
    targets: dict[str, np.ndarray] = field(default_factory=dict)
    split: np.ndarray | None = None
    units: dict[str, str] = field(default_factory=dict)


class Task(abc.ABC):
    """Base class of training tasks (see the module docstring)."""

    name: ClassVar[str] = ""
    source: ClassVar[str] = "targets"

    def __init__(self, channels: list[str], targets: list[str], loss: str, channel_units: list[str] | None = None):
        self.channels = list(channels)
        self.targets = list(targets)
        self.loss_name = loss
        self.channel_units = list(channel_units or [""] * len(self.channels))
        self.x_mean = np.zeros(len(self.channels))
        self.x_std = np.ones(len(self.channels))
        #: per channel "log10" (linear fluxes, see LOG_FLUX_UNITS), "softlog10" (map tasks configured so,
        #: see :mod:`gcml.models.preparation`) or "none"; set from the MapSet's units
        self.input_transform = ["none"] * len(self.channels)
        self.input_floor = FLUX_FLOOR
        #: softening b of "softlog10" channels [the channel's unit]
        self.input_softening = 0.0
        self._xm: torch.Tensor | None = None
        self._xs: torch.Tensor | None = None

    #: What the data layer reads: "maps" (/maps) or "catalogue" (/catalogue, GC catalogues of mass-npe).
    input_kind: ClassVar[str] = "maps"
    #: True when the network is called as ``net(x, y_encoded)`` (a posterior estimator returning the
    #: targets' negative log-likelihood) instead of ``net(x)``.
    takes_targets: ClassVar[bool] = False
    #: True when the targets include per-pixel maps under /truth (the data layer then reads them).
    needs_truth: ClassVar[bool] = False
    #: Largest batch for evaluation passes (None: the config's eval_batch_size); map tasks need less.
    max_eval_batch: ClassVar[int | None] = None

    # --- inputs -------------------------------------------------------------------------------
    def check_header(self, hdr: dict[str, Any], path: Any) -> None:
        """Raise InputError if a MapSet lacks a channel or target this task needs.

        A channel missing under one name but present under its alias (:data:`CHANNEL_ALIASES`) is renamed;
        channels whose unit is a linear flux (:data:`LOG_FLUX_UNITS`) are read as log10.
        """
        self.channels = [CHANNEL_ALIASES[c] if c not in hdr["channels"] and CHANNEL_ALIASES.get(c) in hdr["channels"]
                         else c for c in self.channels]
        missing = [c for c in self.channels if c not in hdr["channels"]]
        if missing:
            raise InputError(f"{path}: channel(s) {', '.join(missing)} not in the MapSet "
                             f"(it has {', '.join(hdr['channels'])})")
        have = hdr["targets"] if self.source == "targets" else hdr["truth"]
        missing = [t for t in self.targets if t not in have]
        if missing:
            raise InputError(f"{path}: /{self.source}/{missing[0]} not in the MapSet "
                             f"(it has {', '.join(have) or 'none'})")
        units = [hdr["units"][hdr["channels"].index(c)] for c in self.channels]
        self.input_transform = ["log10" if u in LOG_FLUX_UNITS else "none" for u in units]

    def transform_x(self, x: torch.Tensor) -> torch.Tensor:
        """Channels with a log10 transform become ``log10(max(x, input_floor))``, softlog10 channels
        ``log10(b) + asinh(x / 2b) / ln 10`` (b = ``input_softening``); others pass unchanged."""
        if all(t == "none" for t in self.input_transform):
            return x

        def one(c: torch.Tensor, t: str) -> torch.Tensor:
            if t == "log10":
                return torch.log10(c.clamp_min(self.input_floor))
            if t == "softlog10":
                b = self.input_softening
                return math.log10(b) + torch.asinh(c / (2.0 * b)) / math.log(10.0)
            return c

        return torch.cat([one(x[:, i:i + 1], t) for i, t in enumerate(self.input_transform)], 1)

    def target_array(self, ms: Any, path: Any) -> np.ndarray:
        """The (N, K) float32 target rows the data layer batches, checked for NaN (train/val/test rows)."""
        for t in self.targets:
            y = ms.targets[t]
            use = ms.split <= 2
            if not np.isfinite(y[use]).all():
                raise InputError(f"{path}: /targets/{t} has NaN or inf values "
                                 f"(first in map {int(np.flatnonzero(~np.isfinite(y) & use)[0])})")
        return np.stack([ms.targets[t] for t in self.targets], axis=1).astype(np.float32)

    def collect(self, out: Any) -> torch.Tensor:
        """Network output (a tensor, or a dict for multi-head networks) as one (B, K) tensor."""
        return out

    def network_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Adjust the builder's keyword arguments (the loop passes in_channels and n_outputs)."""
        return kwargs

    def quick_metrics(self, out: torch.Tensor, y: torch.Tensor) -> dict[str, float] | None:
        """Per-epoch validation numbers (loss, mae, rmse, bias); None: the loop's default for scalars."""
        return None

    def _norm_entries(self) -> dict[str, Any]:
        e = {"transform": list(self.input_transform), "floor": float(self.input_floor)}
        if "softlog10" in self.input_transform:
            e["softening"] = float(self.input_softening)
        return e

    def _read_norm_entries(self, norm: dict[str, Any]) -> None:
        self.input_transform = list(norm.get("transform", ["none"] * len(self.channels)))
        self.input_floor = float(norm.get("floor", FLUX_FLOOR))
        self.input_softening = float(norm.get("softening", 0.0))
        if "softlog10" in self.input_transform and not self.input_softening > 0:
            raise FormatError("model bundle: a softlog10 input needs a softening > 0 (inputs.norm.softening)")

    def encode_x(self, x: torch.Tensor, *, transformed: bool = False) -> torch.Tensor:
        """Standardise each input channel (after :meth:`transform_x`, unless ``transformed``: the channels
        hold the transformed values already) with the training-split mean and std."""
        if not transformed:
            x = self.transform_x(x)
        if self._xm is None or self._xm.device != x.device:
            self._xm = torch.as_tensor(self.x_mean, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
            self._xs = torch.as_tensor(self.x_std, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
        return (x - self._xm) / self._xs

    def fit(self, stats: DataStats) -> None:
        std = np.where(stats.channel_std > 0, stats.channel_std, 1.0)
        self.x_mean = np.asarray(stats.channel_mean, float)
        self.x_std = np.asarray(std, float)
        self._xm = self._xs = None

    @classmethod
    def _from_bundle_common(cls, bundle: dict[str, Any]) -> tuple[Task, dict[str, Any], dict[str, Any]]:
        """Build the task and restore what every task stores: input normalisation, scalar target
        normalisation and ranges, scalar calibration. Returns (task, targets entry, calibration entry)."""
        inp, tgt, cal = bundle["inputs"], bundle["targets"], bundle.get("calibration", {})
        task = cls(inp["channels"], tgt["names"], tgt.get("loss", "gaussian_nll"),
                   channel_units=inp.get("units"), target_units=tgt.get("units"))
        task.x_mean = np.asarray(inp["norm"]["mean"], float)
        task.x_std = np.asarray(inp["norm"]["std"], float)
        task._read_norm_entries(inp["norm"])
        n = tgt["norm"]
        task.y_offset = np.asarray(n["offset"], float)
        task.y_scale = np.asarray(n["scale"], float)
        task.y_min = np.asarray(n.get("data_min", task.y_offset), float)
        task.y_max = np.asarray(n.get("data_max", task.y_offset + 10 * task.y_scale), float)
        if "variance_scale" in cal:
            task.variance_scale = np.asarray(cal["variance_scale"], float)
        if "sigma" in cal:
            task.sigma_const = np.asarray(cal["sigma"], float)
        if "systematic_dex" in cal and hasattr(task, "systematic"):
            task.systematic = np.asarray(cal["systematic_dex"], float)
        return task, tgt, cal

    # --- to be provided by subclasses -----------------------------------------------------------
    n_outputs: int

    @abc.abstractmethod
    def encode_y(self, y: torch.Tensor) -> torch.Tensor:
        """Physical targets -> the network's training space (standardised, rescaled)."""

    @abc.abstractmethod
    def loss(self, out: torch.Tensor, y_enc: torch.Tensor) -> torch.Tensor:
        """Scalar loss of network outputs against encoded targets."""

    @abc.abstractmethod
    def decode(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Network outputs -> (mean, standard deviation) in physical units."""

    @abc.abstractmethod
    def calibrate(self, out: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
        """Fit the uncertainty calibration on the validation split; returns what goes in the bundle."""

    @abc.abstractmethod
    def bundle_entries(self) -> dict[str, Any]:
        """Everything prediction needs to reproduce this task (normalisation, targets, calibration)."""

    @classmethod
    @abc.abstractmethod
    def from_bundle(cls, bundle: dict[str, Any]) -> Task:
        """Rebuild the task from a model bundle."""
