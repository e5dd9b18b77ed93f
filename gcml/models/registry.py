"""Model registry: the names users type (``mass-cnn``, ``pidoc-cnn``, ...) mapped to builders.

A builder is a function ``builder(**kwargs) -> torch.nn.Module``. The registry is explicit: each module
of :data:`MODEL_MODULES` declares its architectures as a ``MODELS`` tuple of :class:`ModelSpec` (plain
data; importing a module registers nothing), and :func:`_load_all` reads those tuples, in this order, on
first use. Code outside gcml may add architectures with :func:`register_model`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gcml.errors import ConfigError

#: the modules whose ``MODELS`` make up the registry (imported on first use: they import torch)
MODEL_MODULES = ("gcml.models.mass_cnn", "gcml.models.pidoc", "gcml.models.npe")


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about an architecture.

    Attributes
    ----------
    name : registry key (what users type)
    builder : function(**kwargs) -> torch.nn.Module
    description : one line for ``gcml models list``
    data_kind : MapSet kind it trains on ("kinematics" or "photometry")
    output : "scalar" (one value per target) or "map" (a per-pixel map)
    default_data : default ``--data`` file for ``gcml train``
    paper : True for the published architectures, False for gcml variants
    defaults : default keyword arguments
    train_defaults : keyword arguments a new training gets and records in its bundles, while a bundle that
        lacks them (written before they were chosen) keeps the builder's own defaults when it is loaded
    task : training task (see ``gcml.models.tasks.TASKS``): what the network reads and predicts,
        the normalisation and the loss ("scalar-regression": targets from /targets)
    default_channels : MapSet channels read when the user gives none
    default_targets : target names predicted when the user gives none
    """

    name: str
    builder: Callable[..., Any]
    description: str
    data_kind: str
    output: str = "scalar"
    default_data: str = "maps.h5"
    paper: bool = False
    defaults: dict[str, Any] = field(default_factory=dict)
    train_defaults: dict[str, Any] = field(default_factory=dict)
    task: str = "scalar-regression"
    default_channels: tuple[str, ...] = ()
    default_targets: tuple[str, ...] = ()


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add an architecture from outside gcml (gcml's own are the ``MODELS`` of :data:`MODEL_MODULES`)."""
    _load_all()
    _REGISTRY[spec.name] = spec
    return spec


_LOADED: list[bool] = []


def _load_all() -> None:
    """Read the ``MODELS`` of every module of :data:`MODEL_MODULES` into the registry (once)."""
    if _LOADED:
        return
    for mod in MODEL_MODULES:
        for spec in importlib.import_module(mod).MODELS:
            if spec.name in _REGISTRY:
                raise RuntimeError(f"model name {spec.name!r} is declared twice")  # a gcml bug, not a user error
            _REGISTRY[spec.name] = spec
    _LOADED.append(True)


def list_models() -> list[ModelSpec]:
    _load_all()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def get_model_spec(name: str) -> ModelSpec:
    _load_all()
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model '{name}'; available: {', '.join(sorted(_REGISTRY)) or 'none'}")
    return _REGISTRY[name]


def build_model(name: str, **kwargs: Any):
    """Instantiate registered model ``name``; a keyword it does not take is a ConfigError."""
    spec = get_model_spec(name)
    args = {**spec.defaults, **kwargs}
    try:
        return spec.builder(**args)
    except TypeError as exc:
        raise ConfigError(f"model '{name}': {exc}") from None
