"""The model bundle, typed: what a ``.pt`` model file holds, in one layout, with its reader for older files.

:class:`ModelBundle` is the in-memory form of a model file; ``to_dict``/``from_dict`` are the file layout
(plain types and tensors only, so :func:`gcml.io.bundle.load_bundle` opens it with
``torch.load(weights_only=True)``). Format ``gcml.model`` version 1.1::

    architecture, arch_kwargs      registry name and builder keywords (gcml.models.registry)
    state_dict                     name -> tensor
    task                           the task that prepares inputs and decodes outputs (gcml.models.tasks)
    inputs, targets, calibration   the task's entries (Task.bundle_entries / Task.from_bundle): channels,
                                   units, input normalisation; target names, units, output kind, loss,
                                   target normalisation; uncertainty calibration
    training_range                 map models: the training split's ranges (prediction's range warnings)
    geometry                       :class:`Geometry`: the maps the model reads
    preparation                    pi-DOC image models: how images are prepared like the training images
                                   (:class:`gcml.models.preparation.ImagePreparation`), when recorded
    training, provenance, metrics, extra    plain-type records (config, data sha256, test metrics, ...)
    format, format_version, gcml_version, created_utc

Reading version 1.0 files (:meth:`ModelBundle.from_dict`): bundles written by ``gcml train`` already had
this layout. Bundles written by ``gcml models import-keras`` had no ``task`` and recorded the authors'
normalisation as ``targets.norm = {transform, mean, std}`` (``log10(M) = y * std + mean`` for the CED's
map, ``(distance, age) = y * std + mean`` for the CNN; Chardin & Bianchini 2021, Section 3) and their
geometry as top-level keys; they are read into the equivalent task (:func:`task_from_imported`) and
:class:`Geometry`, so every bundle in memory has one layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gcml.errors import FormatError
from gcml.io.bundle import FORMAT_VERSION
from gcml.models.tasks import (
    MapRegressionTask,
    MapScalarRegressionTask,
    ScalarRegressionTask,
    Task,
)

#: The version this gcml writes (one constant, in gcml.io.bundle). 1.1 = 1.0 with a task in every bundle,
#: so gcml versions that read 1.0 open 1.1 files too.
BUNDLE_VERSION = FORMAT_VERSION

#: Top-level entries of the layout (plus the file's own: format, version, gcml version, date).
_KNOWN = ("architecture", "arch_kwargs", "state_dict", "task", "inputs", "targets", "calibration", "training_range",
          "geometry", "training", "provenance", "metrics", "extra", "preparation", "format", "format_version",
          "gcml_version", "created_utc")

#: Geometry keys of 1.0 imported bundles that describe the maps (moved under ``map_attrs``).
_GEOMETRY_CORE = ("shape", "pixel_scale", "pixel_unit", "kind", "map_attrs", "channels_available")


@dataclass
class Geometry:
    """The maps a model reads.

    Attributes
    ----------
    shape : (H, W) pixels (empty when the bundle does not say)
    pixel_scale : pixel size in ``pixel_unit`` (kpc for kinematic maps, arcsec for images)
    pixel_unit : "kpc" or "arcsec"
    kind : MapSet kind ("kinematics" or "photometry")
    map_attrs : the training MapSet's map attributes (extent, smoothing, flux unit, PSF, ...); the
        kinematic ones rebuild :class:`gcml.observe.kinematic.MapGeometry`
    channels_available : the channels of the training MapSet
    """

    shape: list[int] = field(default_factory=list)
    pixel_scale: float | None = None
    pixel_unit: str = ""
    kind: str = ""
    map_attrs: dict[str, Any] = field(default_factory=dict)
    channels_available: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"shape": [int(v) for v in self.shape], "pixel_scale": self.pixel_scale,
                "pixel_unit": self.pixel_unit, "kind": self.kind, "map_attrs": dict(self.map_attrs),
                "channels_available": list(self.channels_available)}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: Any = "bundle") -> Geometry:
        """Read ``geometry``; keys outside the core (1.0 imported bundles: extent, smoothing, PSF ...)
        join ``map_attrs``."""
        if not isinstance(d, dict):
            raise FormatError(f"{where}: geometry must be a dict, got {type(d).__name__}")
        try:
            shape = [int(v) for v in d.get("shape") or []]
        except (TypeError, ValueError):
            raise FormatError(f"{where}: geometry.shape must be a list of integers, got {d['shape']!r}") from None
        attrs = {k: v for k, v in d.items() if k not in _GEOMETRY_CORE}
        attrs.update(d.get("map_attrs") or {})
        ps = d.get("pixel_scale")
        return cls(shape=shape, pixel_scale=None if ps is None else float(ps), pixel_unit=str(d.get("pixel_unit", "")),
                   kind=str(d.get("kind", "")), map_attrs=attrs,
                   channels_available=list(d.get("channels_available") or []))

    def check_maps(self, kind: str, shape: Any, pixel_scale: float | None, pixel_unit: str, *, maps: Any,
                   model: Any) -> None:
        """InputError when maps of this ``kind``, ``shape`` and pixel scale (file ``maps``) are not what the
        model (file ``model``) reads."""
        from gcml.errors import InputError

        if self.kind and self.kind != kind:
            raise InputError(f"{maps}: is a '{kind}' MapSet, but model {model} was trained on '{self.kind}' maps")
        if self.shape and list(self.shape) != [int(v) for v in shape]:
            raise InputError(f"{maps}: maps are {shape[0]}x{shape[1]} pixels, model {model} expects "
                             f"{self.shape[0]}x{self.shape[1]}")
        ps = self.pixel_scale
        if ps is not None and pixel_scale is not None and pixel_scale == pixel_scale \
                and not np.isclose(ps, pixel_scale, rtol=1e-4):
            raise InputError(f"{maps}: pixel_scale {pixel_scale} {pixel_unit} differs from the {ps} {self.pixel_unit} "
                             f"model {model} was trained on")


@dataclass
class ModelBundle:
    """A model file in memory (see the module docstring for each field)."""

    architecture: str
    arch_kwargs: dict[str, Any]
    state_dict: dict[str, Any]
    task: str
    inputs: dict[str, Any]
    targets: dict[str, Any]
    geometry: Geometry
    calibration: dict[str, Any] = field(default_factory=dict)
    training_range: dict[str, list[float]] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    preparation: dict[str, Any] = field(default_factory=dict)
    #: top-level entries this gcml does not know (a newer minor version wrote them): kept and written back
    unknown: dict[str, Any] = field(default_factory=dict)
    gcml_version: str = ""
    created_utc: str = ""
    format_version: str = BUNDLE_VERSION
    path: Path | None = None

    # ------------------------------------------------------------------ layout
    def to_dict(self) -> dict[str, Any]:
        """The file layout (plain types and tensors); ``format``/``format_version`` are added on saving."""
        d = {"architecture": self.architecture, "arch_kwargs": dict(self.arch_kwargs), "state_dict": self.state_dict,
             "task": self.task, "inputs": self.inputs, "targets": self.targets, "calibration": self.calibration,
             "geometry": self.geometry.to_dict(), "training": self.training, "provenance": self.provenance,
             "metrics": self.metrics, "extra": self.extra}
        if self.training_range:
            d["training_range"] = self.training_range
        if self.preparation:
            d["preparation"] = self.preparation
        d.update({k: v for k, v in self.unknown.items() if k not in d})
        if self.created_utc:
            d["created_utc"] = self.created_utc
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], path: str | Path | None = None) -> ModelBundle:
        """Read a bundle dict of version 1.0 (trained or Keras-imported layout) or 1.1."""
        where = path or "model bundle"
        missing = [k for k in ("architecture", "state_dict", "inputs", "targets", "geometry") if k not in d]
        if missing:
            raise FormatError(f"{where}: model bundle lacks {', '.join(missing)}")
        entries = {k: d[k] for k in ("task", "inputs", "targets", "calibration", "training_range") if k in d}
        if "task" not in d:  # 1.0 Keras-imported layout
            try:
                task = task_from_imported(d, _has_uncertainty(d), where)
            except (KeyError, TypeError, ValueError) as exc:
                raise FormatError(f"{where}: inputs/targets normalisation is incomplete ({exc})") from None
            e = task.bundle_entries()
            e["calibration"]["method"] = "none: imported weights, not calibrated by gcml"
            entries = {"task": e["task"], "inputs": {**d["inputs"], **e["inputs"]},
                       "targets": {**d["targets"], **e["targets"]}, "calibration": e["calibration"],
                       "training_range": e.get("training_range") or {}}
        return cls(architecture=str(d["architecture"]), arch_kwargs=dict(d.get("arch_kwargs") or {}),
                   state_dict=d["state_dict"], task=str(entries["task"]), inputs=dict(entries["inputs"]),
                   targets=dict(entries["targets"]), geometry=Geometry.from_dict(d["geometry"], where),
                   calibration=dict(entries.get("calibration") or {}),
                   training_range=dict(entries.get("training_range") or {}),
                   training=dict(d.get("training") or {}), provenance=dict(d.get("provenance") or {}),
                   metrics=dict(d.get("metrics") or {}), extra=dict(d.get("extra") or {}),
                   preparation=dict(d.get("preparation") or {}),
                   unknown={k: v for k, v in d.items() if k not in _KNOWN},
                   gcml_version=str(d.get("gcml_version", "")), created_utc=str(d.get("created_utc", "")),
                   format_version=str(d.get("format_version", BUNDLE_VERSION)),
                   path=Path(path) if path is not None else None)

    def set_task(self, task: Task) -> ModelBundle:
        """Record ``task``'s entries (task name, inputs, targets, calibration, training range); returns self."""
        e = task.bundle_entries()
        self.task, self.inputs, self.targets = e["task"], e["inputs"], e["targets"]
        self.calibration, self.training_range = e["calibration"], dict(e.get("training_range") or {})
        return self

    # ------------------------------------------------------------------ files
    @classmethod
    def load(cls, path: str | Path) -> ModelBundle:
        """Read a ``.pt`` model file (``weights_only``; see :func:`gcml.io.bundle.load_bundle`)."""
        from gcml.io.bundle import load_bundle, resolve_model_path

        path = resolve_model_path(path)   # a shipped model may be named without its folder
        return cls.from_dict(load_bundle(path), path)

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the bundle atomically (format version :data:`BUNDLE_VERSION`)."""
        from gcml.io.bundle import save_bundle

        return save_bundle(path, self.to_dict(), overwrite=overwrite)

    # ------------------------------------------------------------------ reading it
    @property
    def output(self) -> str:
        """"scalar", "map" or "map+scalar"."""
        return str(self.targets.get("output", "scalar"))

    @property
    def training_ranges(self) -> dict[str, Any]:
        """Kinematic-map models: the training maps' ranges (``extra.training_ranges``, written by ``gcml train``
        since 2026-11-26); empty when the bundle records none (older bundles)."""
        return dict(self.extra.get("training_ranges") or {})


def _has_uncertainty(d: dict[str, Any]) -> bool:
    """Whether the bundle's network predicts log-variances (its ``uncertainty`` attribute, which every
    pi-DOC network has; the builders' defaults differ between architectures, so the network is built)."""
    from gcml.models.registry import build_model

    return bool(getattr(build_model(str(d["architecture"]), **(d.get("arch_kwargs") or {})), "uncertainty", False))


def _per(value: Any, n: int, what: str, where: Any) -> list:
    """A scalar or a length-n list -> a length-n list."""
    if isinstance(value, (list, tuple)):
        if len(value) == 1:
            return list(value) * n
        if len(value) != n:
            raise FormatError(f"{where}: {what} has {len(value)} entries, expected 1 or {n}")
        return list(value)
    return [value] * n


def task_from_imported(d: dict[str, Any], uncertainty: bool, where: Any = "bundle") -> Task:
    """The task equivalent to a 1.0 imported bundle's ``inputs.norm`` and ``targets.norm``.

    ``uncertainty``: whether the network predicts log-variances (a Gaussian head); without, one output per
    quantity and no standard deviation (NaN).
    """
    inp, tgt = d["inputs"], d["targets"]
    channels = list(inp.get("channels") or ["flux"])
    names = list(tgt.get("names") or [])
    units = list(tgt.get("units") or [""] * len(names))
    output = str(tgt.get("output", "scalar"))
    c, n = len(channels), len(names)
    if not n:
        raise FormatError(f"{where}: targets.names is empty")
    inorm, tnorm = inp.get("norm") or {}, tgt.get("norm") or {}
    transform = [str(t) for t in _per(inorm.get("transform", "none"), c, "inputs.norm.transform", where)]
    bad = [t for t in transform if t not in ("log10", "none")]
    if bad:
        raise FormatError(f"{where}: inputs.norm.transform '{bad[0]}' is not 'log10' or 'none'")
    floors = {float(f) for f, t in zip(_per(inorm.get("floor", None), c, "inputs.norm.floor", where), transform,
                                       strict=True) if t == "log10" and f is not None}
    if len(floors) > 1:
        raise FormatError(f"{where}: inputs.norm.floor differs between channels; expected one floor")
    t_tr = [str(t) for t in _per(tnorm.get("transform", "none"), n, "targets.norm.transform", where)]
    t_mean = [float(v) for v in _per(tnorm.get("mean", 0.0), n, "targets.norm.mean", where)]
    t_std = [float(v) for v in _per(tnorm.get("std", 1.0), n, "targets.norm.std", where)]
    loss = "gaussian_nll" if uncertainty else "mse"
    n_maps = {"scalar": 0, "map": 1, "map+scalar": 1}.get(output)
    if n_maps is None:
        raise FormatError(f"{where}: targets.output '{output}' is not 'scalar', 'map' or 'map+scalar'")
    if n_maps and t_tr[0] != "log10":
        raise FormatError(f"{where}: targets.norm.transform of the map target must be 'log10', got '{t_tr[0]}'")
    if any(t != "none" for t in t_tr[n_maps:]):
        raise FormatError(f"{where}: targets.norm.transform of scalar targets must be 'none', got {t_tr[n_maps:]}")
    if output == "scalar":
        task: Task = ScalarRegressionTask(channels, names, loss, channel_units=inp.get("units"), target_units=units)
    else:
        cls = MapRegressionTask if output == "map" else MapScalarRegressionTask
        task = cls(channels, names, loss, channel_units=inp.get("units"), target_units=units)
        task.pix_mean, task.pix_std = t_mean[0], t_std[0]
        shape = (d.get("geometry") or {}).get("shape") or [0, 0]
        task.shape = (int(shape[-2]), int(shape[-1]))
    k = n - n_maps
    task.x_mean = np.asarray(_per(inorm.get("mean", 0.0), c, "inputs.norm.mean", where), float)
    task.x_std = np.asarray(_per(inorm.get("std", 1.0), c, "inputs.norm.std", where), float)
    task.input_transform = transform
    task.input_floor = floors.pop() if floors else float(np.finfo(np.float64).tiny)
    task.y_offset, task.y_scale = np.asarray(t_mean[n_maps:], float), np.asarray(t_std[n_maps:], float)
    task.y_min, task.y_max = np.full(k, np.nan), np.full(k, np.nan)
    task.variance_scale = np.ones(k)
    task.sigma_const = np.full(k, np.nan)
    return task
