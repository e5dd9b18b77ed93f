"""Load a model bundle and apply it to arrays in physical units (pre- and post-processing included).

A bundle records how its inputs were standardised and how its outputs map back to physical units
(``inputs.norm`` and ``targets.norm``, see docs/pidoc.md):

``inputs.norm``  ``transform`` ("log10" or "none" per channel), ``mean``, ``std`` (per channel) and,
                 for "log10", ``floor``: values below it (zero or negative flux) are raised to it first;
``targets.norm`` ``transform`` ("log10" or "none" per target), ``mean``, ``std``: a network output ``y``
                 becomes ``y * std + mean`` (then ``10 **`` for "log10").

For the imported pi-DOC CED this is the authors' ``log10(M/Msun per pixel) = y * 0.4493 - 0.8510``, for
their CNN ``(distance kpc, age Gyr) = y * 32.402 + 29.629`` (Chardin & Bianchini 2021, Section 3).
Networks with uncertainty heads predict a log-variance ``s`` of the standardised quantity; its standard
deviation in the de-standardised (log10 or linear) unit is ``exp(s / 2) * std``.

Bundles written by ``gcml train`` carry a ``task`` entry; for them the training task
(:mod:`gcml.training.tasks`) standardises the inputs and decodes the outputs (with its calibrated
uncertainty), so training and prediction cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gcml.errors import FormatError, InputError


@dataclass
class LoadedModel:
    """A bundle's network in evaluation mode, with its pre- and post-processing.

    Attributes
    ----------
    model : torch.nn.Module (eval mode, CPU unless moved)
    bundle : the bundle dict (``state_dict`` included)
    architecture : registry name
    output : "scalar", "map" or "map+scalar"
    target_names, target_units : what the outputs are
    path : file the bundle came from (None when built in memory)
    """

    model: Any
    bundle: dict[str, Any]
    architecture: str
    output: str
    target_names: list[str]
    target_units: list[str]
    path: Path | None = None
    device: str = "cpu"
    task: Any = None
    channels_last: bool = False
    notes: list[str] = field(default_factory=list)

    # ---------------------------------------------------------------- preprocessing
    def standardize(self, x: np.ndarray, *, log10_input: bool = False) -> tuple[np.ndarray, int]:
        """Physical inputs (N, C, H, W) -> standardised network inputs; returns (array, n values floored).

        ``log10_input``: the channels with a "log10" transform already hold log10 values (e.g. a MapSet
        written with ``--flux-convention pidoc``, unit "log10(Lsun/kpc2)").
        """
        norm = self.bundle["inputs"].get("norm") or {}
        c = x.shape[1]
        tr = _per(norm.get("transform", "none"), c, "inputs.norm.transform", self.path)
        mean = np.asarray(_per(norm.get("mean", 0.0), c, "inputs.norm.mean", self.path), dtype=np.float64)
        std = np.asarray(_per(norm.get("std", 1.0), c, "inputs.norm.std", self.path), dtype=np.float64)
        floor = _per(norm.get("floor", None), c, "inputs.norm.floor", self.path)
        out = np.empty(x.shape, dtype=np.float32)
        n_floored = 0
        for i in range(c):
            xi = x[:, i].astype(np.float64)
            if tr[i] == "log10" and log10_input:
                pass
            elif tr[i] == "log10":
                lo = floor[i] if floor[i] is not None else np.finfo(np.float64).tiny
                low = xi < lo
                n_floored += int(low.sum())
                xi = np.log10(np.where(low, lo, xi))
            elif tr[i] != "none":
                raise FormatError(f"{self.path or 'bundle'}: inputs.norm.transform '{tr[i]}' is not 'log10' or 'none'")
            out[:, i] = (xi - mean[i]) / std[i]
        return out, n_floored

    # ---------------------------------------------------------------- postprocessing
    def destandardize(self, y: np.ndarray, index: int) -> np.ndarray:
        """Network output of target ``index`` -> physical value (log10 quantity for 'log10' targets)."""
        norm = self.bundle["targets"].get("norm") or {}
        n = len(self.target_names)
        mean = _per(norm.get("mean", 0.0), n, "targets.norm.mean", self.path)[index]
        std = _per(norm.get("std", 1.0), n, "targets.norm.std", self.path)[index]
        return y * std + mean

    def target_transform(self, index: int) -> str:
        norm = self.bundle["targets"].get("norm") or {}
        return _per(norm.get("transform", "none"), len(self.target_names), "targets.norm.transform",
                    self.path)[index]

    def target_std(self, index: int) -> float:
        norm = self.bundle["targets"].get("norm") or {}
        return float(_per(norm.get("std", 1.0), len(self.target_names), "targets.norm.std", self.path)[index])


def _per(value: Any, n: int, what: str, path: Path | None) -> list:
    """A scalar or a length-n list -> a length-n list."""
    if isinstance(value, (list, tuple)):
        if len(value) == 1:
            return list(value) * n
        if len(value) != n:
            raise FormatError(f"{path or 'bundle'}: {what} has {len(value)} entries, expected 1 or {n}")
        return list(value)
    return [value] * n


def load_model(bundle: str | Path | dict[str, Any], *, device: str = "cpu", optimize: bool = True) -> LoadedModel:
    """Rebuild a bundle's network (``weights_only`` loading) in evaluation mode.

    Parameters
    ----------
    bundle : path of a ``.pt`` bundle or a bundle dict (as :func:`gcml.io.bundle.load_bundle` returns)
    device : torch device for the network
    optimize : fold BatchNorm into the preceding convolutions (:func:`gcml.models.pidoc.fuse_for_inference`,
        exact up to float rounding) and use the channels-last memory layout, which oneDNN runs faster on
        CPUs; the module then no longer matches the bundle's ``state_dict`` keys (use False to fine-tune it)
    """

    import torch

    from gcml.io.bundle import load_bundle
    from gcml.models.registry import build_model, get_model_spec

    path = None
    if not isinstance(bundle, dict):
        path = Path(bundle)
        bundle = load_bundle(path)
    arch = bundle["architecture"]
    spec = get_model_spec(arch)
    model = build_model(arch, **(bundle.get("arch_kwargs") or {}))
    try:
        model.load_state_dict(bundle["state_dict"], strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise FormatError(f"{path or 'bundle'}: state_dict does not fit architecture {arch} ({first[:160]})") from None
    model.eval().to(device)
    if optimize:
        from gcml.models.pidoc import fuse_for_inference

        model = fuse_for_inference(model).to(memory_format=torch.channels_last)
    targets = bundle.get("targets") or {}
    task = None
    if "task" in bundle:  # written by gcml train: its task owns normalisation and decoding
        from gcml.training.tasks import task_from_bundle

        task = task_from_bundle(bundle)
    return LoadedModel(model=model, bundle=bundle, architecture=arch,
                       output=str(targets.get("output", spec.output)),
                       target_names=list(targets.get("names") or []),
                       target_units=list(targets.get("units") or []), path=path, device=device, task=task,
                       channels_last=optimize)


def _to_model(lm: LoadedModel, x: Any) -> Any:
    import torch

    x = x.to(lm.device)
    return x.contiguous(memory_format=torch.channels_last) if lm.channels_last else x


def _as_nchw(x: Any, channels: int, path: Path | None) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim == 2:
        a = a[None, None]
    elif a.ndim == 3:
        a = a[:, None] if channels == 1 else a[None]
    if a.ndim != 4 or a.shape[1] != channels:
        raise InputError(f"input array of shape {np.shape(x)}: expected (H, W), (N, H, W) or (N, {channels}, H, W) "
                         f"for model {path or ''}".rstrip() + "")
    if not np.issubdtype(a.dtype, np.number):
        raise InputError(f"input array has dtype {a.dtype}; expected numbers")
    if not np.all(np.isfinite(a)):
        raise InputError(f"input array has {int((~np.isfinite(a)).sum())} NaN or infinite values; expected finite "
                         "values (cut out or fill the bad pixels first)")
    return a


def predict_arrays(bundle: str | Path | dict[str, Any] | LoadedModel, x: Any, *, standardized: bool = False,
                   log10_input: bool = False, batch_size: int = 32, device: str = "cpu",
                   num_threads: int | None = None) -> dict[str, np.ndarray]:
    """Apply a bundle to input maps and return physical outputs.

    Parameters
    ----------
    bundle : bundle path, bundle dict or :class:`LoadedModel`
    x : input maps (H, W), (N, H, W) or (N, C, H, W) in the bundle's input units (pi-DOC: V-band flux per
        pixel in Lsun/kpc^2), or already standardised network inputs with ``standardized=True``
    standardized : skip the input standardisation
    log10_input : ``x`` holds log10 of the input quantity for channels the bundle log-transforms (pi-DOC's
        own input convention; ``gcml mock-observe --flux-convention pidoc``)
    batch_size : images per forward pass
    device : torch device (when ``bundle`` is not already loaded)
    num_threads : CPU threads for this call (``torch.set_num_threads``, restored afterwards); None keeps
        torch's setting. On a machine whose cores are busy with other jobs one thread is often faster,
        because every parallel operation waits for the slowest thread (docs/benchmarks.md, "inference").

    Returns
    -------
    dict of numpy arrays
        Map targets (e.g. ``"mass"``): ``"<name>"`` (N, H, W) in the target unit (Msun per pixel),
        ``"log10_<name>"`` for log10 targets and ``"<name>_total"`` (N,) the sum over the map.
        Scalar targets (e.g. ``"distance"``, ``"age"``): ``"<name>"`` (N,) in their unit. With uncertainty
        heads also ``"<name>_std"`` (``"log10_<name>_std"`` in dex for log10 targets). ``"raw"`` (or
        ``"raw_map"``/``"raw_scalar"``) holds the network outputs and ``"n_floored"`` the number of input
        values raised to the log10 floor.
    """
    import torch

    if num_threads is not None:
        if num_threads < 1:
            raise InputError(f"num_threads must be at least 1, got {num_threads}")
        previous = torch.get_num_threads()
        torch.set_num_threads(int(num_threads))
        try:
            return predict_arrays(bundle, x, standardized=standardized, log10_input=log10_input,
                                  batch_size=batch_size, device=device, num_threads=None)
        finally:
            torch.set_num_threads(previous)
    lm = bundle if isinstance(bundle, LoadedModel) else load_model(bundle, device=device)
    channels = len(lm.bundle["inputs"].get("channels") or [1])
    a = _as_nchw(x, channels, lm.path)
    if lm.task is not None:
        return _predict_task(lm, a, standardized, batch_size)
    n_floored = 0
    if standardized:
        xs = a.astype(np.float32)
    else:
        xs, n_floored = lm.standardize(a, log10_input=log10_input)
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}")
    outs: list[Any] = []
    with torch.inference_mode():
        for i in range(0, len(xs), batch_size):
            y = lm.model(_to_model(lm, torch.from_numpy(xs[i:i + batch_size])))
            outs.append({k: v.float().cpu().numpy() for k, v in y.items()} if isinstance(y, dict)
                        else y.float().cpu().numpy())
    result: dict[str, np.ndarray] = {"n_floored": np.asarray(n_floored)}
    model = lm.model
    unc = bool(getattr(model, "uncertainty", False))
    names = lm.target_names
    if lm.output == "map+scalar":
        raw_map = np.concatenate([o["map"] for o in outs])
        raw_scalar = np.concatenate([o["scalar"] for o in outs])
        result.update(raw_map=raw_map, raw_scalar=raw_scalar)
        _maps(lm, raw_map, [names[0]], 0, unc, result)
        _scalars(lm, raw_scalar, names[1:], 1, unc, result)
    elif lm.output == "map":
        raw = np.concatenate(outs)
        result["raw"] = raw
        _maps(lm, raw, names[:1], 0, unc, result)
    else:
        raw = np.concatenate(outs)
        result["raw"] = raw
        _scalars(lm, raw, names, 0, unc, result)
    return result


def _maps(lm: LoadedModel, raw: np.ndarray, names: list[str], first: int, unc: bool,
          result: dict[str, np.ndarray]) -> None:
    for j, name in enumerate(names):
        idx = first + j
        val = lm.destandardize(raw[:, 0].astype(np.float64), idx)
        if lm.target_transform(idx) == "log10":
            result[f"log10_{name}"] = val
            lin = 10.0 ** val
        else:
            lin = val
        result[name] = lin
        result[f"{name}_total"] = lin.sum(axis=(-2, -1))
        if unc and raw.shape[1] > 1:
            sd = np.exp(0.5 * raw[:, 1].astype(np.float64)) * lm.target_std(idx)
            result[f"log10_{name}_std" if lm.target_transform(idx) == "log10" else f"{name}_std"] = sd


def _scalars(lm: LoadedModel, raw: np.ndarray, names: list[str], first: int, unc: bool,
             result: dict[str, np.ndarray]) -> None:
    t = len(names)
    for j, name in enumerate(names):
        idx = first + j
        val = lm.destandardize(raw[:, j].astype(np.float64), idx)
        if lm.target_transform(idx) == "log10":
            result[f"log10_{name}"] = val
            result[name] = 10.0 ** val
        else:
            result[name] = val
        if unc and raw.shape[1] >= 2 * t:
            sd = np.exp(0.5 * raw[:, t + j].astype(np.float64)) * lm.target_std(idx)
            result[f"log10_{name}_std" if lm.target_transform(idx) == "log10" else f"{name}_std"] = sd


def _predict_task(lm: LoadedModel, a: np.ndarray, standardized: bool, batch_size: int) -> dict[str, np.ndarray]:
    """Prediction with a training task's encode_x/decode (bundles from ``gcml train``)."""
    import torch

    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}")
    means, stds = [], []
    with torch.inference_mode():
        for i in range(0, len(a), batch_size):
            xb = torch.from_numpy(np.ascontiguousarray(a[i:i + batch_size], dtype=np.float32)).to(lm.device)
            out = lm.model(_to_model(lm, xb if standardized else lm.task.encode_x(xb)))
            m, sd = lm.task.decode(out)
            means.append(m.float().cpu().numpy())
            stds.append(sd.float().cpu().numpy())
    mean = np.concatenate(means).astype(np.float64)
    std = np.concatenate(stds).astype(np.float64)
    result: dict[str, np.ndarray] = {"n_floored": np.asarray(0)}
    for j, name in enumerate(lm.task.targets):
        result[name] = mean[:, j]
        result[f"{name}_std"] = std[:, j]
    return result
