"""The training machinery shared by every gcml model (see docs/training.md).

``train(data, config, out)`` with a :class:`TrainConfig`; tasks (normalisation, loss, decoding) in
:mod:`gcml.models.tasks`, data sources in :mod:`gcml.training.data`, DistributedDataParallel in
:mod:`gcml.training.distributed`. Loading a trained model is :class:`gcml.models.trained.TrainedModel`;
nothing outside ``gcml/cli`` imports this package.

``TrainResult`` and ``train`` are imported on first use (PEP 562), so that ``gcml.training.config`` (no
torch) can be imported on its own: the command line takes its option defaults from ``TrainConfig``.
"""

from __future__ import annotations

from typing import Any

from gcml.training.config import TrainConfig

__all__ = ["TrainConfig", "TrainResult", "train"]


def __getattr__(name: str) -> Any:
    if name in ("TrainResult", "train"):
        from gcml.training import loop

        return getattr(loop, name)
    raise AttributeError(f"module 'gcml.training' has no attribute {name!r}")
