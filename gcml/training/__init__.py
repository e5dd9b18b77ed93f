"""The training machinery shared by every gcml model (see docs/training.md).

``train(data, config, out)`` with a :class:`TrainConfig`; tasks (normalisation, loss, decoding) in
:mod:`gcml.models.tasks`, data sources in :mod:`gcml.training.data`, DistributedDataParallel in
:mod:`gcml.training.distributed`. Loading a trained model is :class:`gcml.models.trained.TrainedModel`;
nothing outside ``gcml/cli`` imports this package.
"""

from gcml.training.config import TrainConfig
from gcml.training.loop import TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "train"]
