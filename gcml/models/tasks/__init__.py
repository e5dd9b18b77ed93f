"""Tasks: how a model's inputs are prepared and its outputs decoded (and, for training, its loss).

The registry :data:`TASKS` is written out here, one line per task: no task registers itself on import.

=========================  ===========================================  ==============================
name                       class                                        models
=========================  ===========================================  ==============================
``scalar-regression``      :class:`~gcml.models.tasks.scalar.ScalarRegressionTask`       mass-cnn*, pidoc-cnn*
``map-regression``         :class:`~gcml.models.tasks.maps.MapRegressionTask`            pidoc-ced*
``map-scalar-regression``  :class:`~gcml.models.tasks.maps.MapScalarRegressionTask`      pidoc-net
``catalogue-npe``          :class:`~gcml.models.tasks.npe.CatalogueNPETask`              mass-npe
=========================  ===========================================  ==============================
"""

from __future__ import annotations

from typing import Any

from gcml.errors import FormatError, InputError
from gcml.models.tasks.base import DataStats, Task
from gcml.models.tasks.maps import MapRegressionTask, MapScalarRegressionTask
from gcml.models.tasks.npe import CatalogueNPETask
from gcml.models.tasks.scalar import ScalarRegressionTask

TASKS: dict[str, type[Task]] = {
    ScalarRegressionTask.name: ScalarRegressionTask,
    MapRegressionTask.name: MapRegressionTask,
    MapScalarRegressionTask.name: MapScalarRegressionTask,
    CatalogueNPETask.name: CatalogueNPETask,
}


def get_task_class(name: str) -> type[Task]:
    """The task class registered as ``name`` (InputError naming the known ones otherwise)."""
    if name not in TASKS:
        raise InputError(f"unknown task '{name}'; expected one of {', '.join(TASKS)}")
    return TASKS[name]


def task_from_bundle(bundle: dict[str, Any]) -> Task:
    """Rebuild the task a bundle records (its ``task`` entry; ``scalar-regression`` when absent)."""
    name = bundle.get("task", ScalarRegressionTask.name)
    if name not in TASKS:
        raise FormatError(f"model bundle: unknown training task '{name}'; expected one of {', '.join(TASKS)}")
    return TASKS[name].from_bundle(bundle)


__all__ = ["TASKS", "CatalogueNPETask", "DataStats", "MapRegressionTask", "MapScalarRegressionTask", "ScalarRegressionTask", "Task",
           "get_task_class", "task_from_bundle"]
