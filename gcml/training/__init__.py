"""The training machinery shared by every gcml model (see docs/training.md).

``train(data, config, out)`` with a :class:`TrainConfig`; tasks in :mod:`gcml.training.tasks`,
data sources in :mod:`gcml.training.data`, DistributedDataParallel in :mod:`gcml.training.distributed`.
"""

from gcml.training.config import TrainConfig
from gcml.training.loop import TrainResult, load_model, predict_maps, train

__all__ = ["TrainConfig", "TrainResult", "train", "load_model", "predict_maps"]
