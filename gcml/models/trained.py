"""A trained model: a bundle's network with its input preparation, normalisation, decoding and calibration.

:class:`TrainedModel` is the one way evaluation, prediction and the CLI reach a trained network. It loads
any bundle (trained by ``gcml train``, imported from the pi-DOC Keras files, or shipped in
``gcml/data/models``), and predicts in physical units, batched, on any torch device::

    tm = TrainedModel.load("runs/mass/best.pt", device="cpu")
    mean, std = tm.predict_maps(maps)          # (N, C, H, W) in the MapSet's units -> (N, T) each
    out = tm.predict(flux)                     # dict of named physical outputs (maps as (N, H, W))

Inputs are prepared and outputs decoded by the bundle's task (:mod:`gcml.models.tasks`), the same code
the training loop used, so training and prediction cannot disagree. The bundle is read by
:class:`gcml.models.bundle.ModelBundle`, which turns the Keras-import layout of format 1.0 into the
equivalent task. Networks without an uncertainty head have no standard deviation (NaN, left out of
:meth:`TrainedModel.predict`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gcml.errors import FormatError, GcmlError, InputError
from gcml.models.bundle import ModelBundle
from gcml.models.tasks import MapScalarRegressionTask, Task, task_from_bundle


def _as_nchw(x: Any, channels: int, path: Path | None) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim == 2:
        a = a[None, None]
    elif a.ndim == 3:
        a = a[:, None] if channels == 1 else a[None]
    if a.ndim != 4 or a.shape[1] != channels:
        raise InputError(f"input array of shape {np.shape(x)}: expected (H, W), (N, H, W) or (N, {channels}, H, W) "
                         f"for model {path or ''}".rstrip())
    if not np.issubdtype(a.dtype, np.number):
        raise InputError(f"input array has dtype {a.dtype}; expected numbers")
    if not np.all(np.isfinite(a)):
        raise InputError(f"input array has {int((~np.isfinite(a)).sum())} NaN or infinite values; expected finite "
                         "values (cut out or fill the bad pixels first)")
    return a


@dataclass
class TrainedModel:
    """A bundle's network in evaluation mode with its task (input preparation, decoding, calibration).

    Attributes
    ----------
    network : torch.nn.Module, eval mode, on ``device``
    task : the :class:`~gcml.models.tasks.Task` that prepares inputs and decodes outputs
    bundle : the :class:`~gcml.models.bundle.ModelBundle` (``state_dict`` included)
    path : file the bundle came from (None when built in memory)
    device : torch device of the network
    channels_last : inputs are passed in the channels-last memory layout (``optimize=True``)
    """

    network: torch.nn.Module
    task: Task
    bundle: ModelBundle
    path: Path | None = None
    device: torch.device = torch.device("cpu")
    channels_last: bool = False

    # ---------------------------------------------------------------- loading
    @classmethod
    def load(cls, source: str | Path | dict[str, Any], *, device: str | torch.device = "cpu",
             optimize: bool = False) -> TrainedModel:
        """Load a bundle file (``weights_only``) or a bundle dict.

        Parameters
        ----------
        source : path of a ``.pt`` bundle, a bundle dict (as :func:`gcml.io.bundle.load_bundle` returns) or a
            :class:`~gcml.models.bundle.ModelBundle`
        device : torch device for the network
        optimize : fold BatchNorm into the preceding convolutions (:func:`gcml.models.pidoc.fuse_for_inference`,
            exact up to float rounding) and use the channels-last memory layout, which oneDNN runs faster on
            CPUs; the network then no longer matches the bundle's ``state_dict`` keys
        """
        from gcml.models.registry import build_model

        if isinstance(source, ModelBundle):
            b = source
        elif isinstance(source, dict):
            b = ModelBundle.from_dict(source)
        else:
            b = ModelBundle.load(source)
        path = b.path
        try:
            network = build_model(b.architecture, **b.arch_kwargs)
            network.load_state_dict(b.state_dict, strict=True)
        except GcmlError:
            raise
        except (RuntimeError, KeyError, TypeError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise FormatError(f"{path or 'bundle'}: weights do not fit architecture '{b.architecture}' "
                              f"({first[:160]})") from None
        task = task_from_bundle(b.to_dict())
        dev = torch.device(device) if isinstance(device, str) else device
        network.eval().to(dev)
        if optimize:
            from gcml.models.pidoc import fuse_for_inference

            network = fuse_for_inference(network).to(memory_format=torch.channels_last)
        return cls(network=network, task=task, bundle=b, path=path, device=dev, channels_last=optimize)

    # ---------------------------------------------------------------- what it is
    @property
    def architecture(self) -> str:
        return self.bundle.architecture

    @property
    def channels(self) -> list[str]:
        """MapSet channels the network reads, in order."""
        return list(self.task.channels)

    @property
    def targets(self) -> list[str]:
        return list(self.task.targets)

    @property
    def target_units(self) -> list[str]:
        return list(self.task.target_units)

    @property
    def geometry(self):
        """The maps the model reads (:class:`gcml.models.bundle.Geometry`)."""
        return self.bundle.geometry

    @property
    def is_map_model(self) -> bool:
        """True when the model predicts a per-pixel map (pi-DOC's mass map)."""
        return isinstance(self.task, MapScalarRegressionTask)

    @property
    def scalar_names(self) -> list[str]:
        """Names of the scalar targets (all targets of a scalar model; those after the map otherwise)."""
        return list(self.task.scalar_names) if self.is_map_model else self.targets

    @property
    def training_range(self) -> dict[str, list[float]]:
        return dict(getattr(self.task, "training_range", {}) or {})

    # ---------------------------------------------------------------- network passes
    def _run(self, xb: torch.Tensor) -> Any:
        xb = xb.to(self.device)
        if self.channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        return self.network(xb)

    @torch.no_grad()
    def outputs(self, maps: Any, *, batch_size: int = 64, standardized: bool = False, log10_input: bool = False,
                rotations: int = 1, progress: Any = None) -> torch.Tensor:
        """Network outputs (as the task collects them, float32 on CPU) for maps (N, C, H, W).

        ``maps`` hold the channels :attr:`channels` in order, in the units of the training data;
        ``standardized``: they are network inputs already; ``log10_input``: log-transformed channels hold
        log10 values already. ``rotations`` (1-4): average over that many rotations by 90 degrees of the
        input, the map outputs rotated back (test-time augmentation). ``progress``: called as
        ``progress(maps_done, maps_total)`` after each batch (:mod:`gcml.progress`).
        """
        if batch_size < 1:
            raise InputError(f"batch_size must be at least 1, got {batch_size}")
        if not 1 <= rotations <= 4:
            raise InputError(f"rotations must be 1 to 4, got {rotations}")
        x_all = torch.from_numpy(np.ascontiguousarray(maps, dtype=np.float32))
        outs = []
        for s in range(0, len(x_all), batch_size):
            xb = x_all[s:s + batch_size].to(self.device)
            if not standardized:
                xb = self.task.encode_x(xb, transformed=log10_input)
            rot = []
            for k in range(rotations):
                o = self._run(torch.rot90(xb, k, dims=(-2, -1)) if k else xb)
                if k:
                    o = ({"map": torch.rot90(o["map"], -k, dims=(-2, -1)), "scalar": o["scalar"]}
                         if isinstance(o, dict) else torch.rot90(o, -k, dims=(-2, -1)) if o.dim() == 4 else o)
                rot.append(self.task.collect(o).float().cpu())
            outs.append(torch.stack(rot).mean(0) if rotations > 1 else rot[0])
            if progress is not None:
                progress(min(s + batch_size, len(x_all)), len(x_all))
        if not outs:
            return torch.zeros(0, 0)
        return torch.cat(outs)

    def decode(self, out: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Network outputs -> (mean, std) in physical units, (N, n_targets) float64 (map tasks: log10 pixels)."""
        if len(out) == 0:
            t = len(self.targets)
            return np.zeros((0, t)), np.zeros((0, t))
        m, sd = self.task.decode(out)
        return m.double().numpy(), sd.double().numpy()

    def decode_parts(self, out: torch.Tensor) -> dict[str, np.ndarray]:
        """Map models: ``log10_map`` (N, H, W), ``log10_map_std``, ``log10_total`` (N,), ``log10_total_std``,
        ``scalar`` (N, T), ``scalar_std`` (see :meth:`MapScalarRegressionTask.decode_parts`), float64."""
        if not self.is_map_model:
            raise InputError(f"{self.path or 'model'}: model '{self.architecture}' predicts no map")
        d = self.task.decode_parts(out)
        h, w = self.task.shape
        res = {k: v.double().numpy() for k, v in d.items()}
        for k in ("log10_map", "log10_map_std"):
            res[k] = res[k].reshape(len(out), h, w)
        return res

    def predict_maps(self, maps: Any, *, batch_size: int = 4096, progress: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation (physical units, each (N, n_targets) float64) for maps (N, C, H, W)
        whose channels are :attr:`channels` in order; ``progress`` as in :meth:`outputs`."""
        if self.task.max_eval_batch:
            batch_size = min(batch_size, self.task.max_eval_batch)
        return self.decode(self.outputs(maps, batch_size=batch_size, progress=progress))

    def predict(self, x: Any, *, standardized: bool = False, log10_input: bool = False, batch_size: int = 32,
                num_threads: int | None = None) -> dict[str, np.ndarray]:
        """Apply the model to input maps and return named physical outputs.

        Parameters
        ----------
        x : input maps (H, W), (N, H, W) or (N, C, H, W) in the bundle's input units (pi-DOC: V-band flux per
            pixel in Lsun/kpc^2), or network inputs with ``standardized=True``
        standardized : skip the input preparation
        log10_input : the log-transformed channels hold log10 values already (pi-DOC's input convention,
            ``gcml mock-observe --flux-convention pidoc``)
        batch_size : maps per forward pass
        num_threads : CPU threads for this call (``torch.set_num_threads``, restored afterwards); None keeps
            torch's setting. On a machine whose cores are busy one thread is often faster
            (docs/benchmarks.md, "inference").

        Returns
        -------
        dict of numpy arrays
            Map target (e.g. ``"mass"``): ``"<name>"`` (N, H, W) in its unit (Msun per pixel),
            ``"log10_<name>"``, ``"<name>_total"`` (N,) the sum over the map, ``"log10_<name>_std"`` (dex)
            and ``"log10_<name>_total_std"`` where calibrated. Scalar targets: ``"<name>"`` (N,) and
            ``"<name>_std"`` where the model has an uncertainty. ``"raw"`` (or ``"raw_map"``/``"raw_scalar"``)
            holds the network outputs, ``"n_floored"`` the number of input values raised to the log10 floor.
        """
        if num_threads is not None:
            if num_threads < 1:
                raise InputError(f"num_threads must be at least 1, got {num_threads}")
            previous = torch.get_num_threads()
            torch.set_num_threads(int(num_threads))
            try:
                return self.predict(x, standardized=standardized, log10_input=log10_input, batch_size=batch_size)
            finally:
                torch.set_num_threads(previous)
        a = _as_nchw(x, len(self.channels), self.path)
        if self.is_map_model and tuple(a.shape[-2:]) != tuple(self.task.shape):
            raise InputError(f"input maps of {a.shape[-2]}x{a.shape[-1]} pixels: model {self.path or ''} "
                             f"expects {self.task.shape[0]}x{self.task.shape[1]}")
        n_floored = 0
        if not (standardized or log10_input):
            logc = [i for i, t in enumerate(self.task.input_transform) if t == "log10"]
            n_floored = int((a[:, logc] < self.task.input_floor).sum()) if logc else 0
        out = self.outputs(a, batch_size=batch_size, standardized=standardized, log10_input=log10_input)
        res: dict[str, np.ndarray] = {"n_floored": np.asarray(n_floored)}
        if self.is_map_model:
            d = self.decode_parts(out)
            name = self.task.map_name
            res[f"log10_{name}"] = d["log10_map"]
            res[name] = 10.0 ** d["log10_map"]
            res[f"{name}_total"] = res[name].sum(axis=(-2, -1))
            for key, src in ((f"log10_{name}_std", "log10_map_std"), (f"log10_{name}_total_std", "log10_total_std")):
                if np.isfinite(d[src]).any():
                    res[key] = d[src]
            h, w = self.task.shape
            k = self.task.k
            res["raw_map" if self.scalar_names else "raw"] = out[:, :k * h * w].numpy().reshape(len(out), k, h, w)
            if self.scalar_names:
                res["raw_scalar"] = out[:, k * h * w:].numpy()
            mean, std = d.get("scalar"), d.get("scalar_std")
        else:
            res["raw"] = out.numpy()
            mean, std = self.decode(out)
        for j, name in enumerate(self.scalar_names):
            res[name] = mean[:, j]
            if np.isfinite(std[:, j]).any():
                res[f"{name}_std"] = std[:, j]
        return res
