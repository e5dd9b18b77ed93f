"""Metrics the training loop records: per-epoch validation numbers and the test/ood metrics of ``best.pt``."""

from __future__ import annotations

from typing import Any

import torch

from gcml.evaluation.metrics import regression_metrics
from gcml.models.tasks import MapScalarRegressionTask, Task


def quick_metrics(task: Task, out: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Loss and, for the first target, MAE, RMSE and bias in its own unit (e.g. dex)."""
    if len(y) == 0:
        return {}
    custom = task.quick_metrics(out, y)
    if custom is not None:
        return custom
    loss = float(task.loss(out, task.encode_y(y)))
    mean, _ = task.decode(out)
    r = (mean[:, 0] - y[:, 0]).double()
    return {"loss": loss, "mae": float(r.abs().mean()), "rmse": float(torch.sqrt((r**2).mean())),
            "bias": float(r.mean())}


def split_metrics(task: Task, out: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
    """Regression metrics per target of one split (network outputs ``out``, physical targets ``y``).

    Map tasks: the map target is scored on its log10 total mass in the field (dex), plus pi-DOC's
    per-pixel percentage error, the per-pixel MAE in dex and the total-mass percentage error.
    """
    if isinstance(task, MapScalarRegressionTask):
        return _map_metrics(task, out, y)
    mean, std = task.decode(out)
    return {name: regression_metrics(y[:, j].numpy().astype(float), mean[:, j].numpy().astype(float),
                                     std[:, j].numpy().astype(float),
                                     data_min=float(task.y_min[j]), data_max=float(task.y_max[j]))
            for j, name in enumerate(task.targets)}


def _map_metrics(task: MapScalarRegressionTask, out: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
    d = task.decode_parts(out)
    lm, lt, ys = task.truth(y)
    m_true = 10.0 ** lm
    m_pred = 10.0 ** d["log10_map"].double()
    mass = regression_metrics(lt.numpy(), d["log10_total"].double().numpy(), d["log10_total_std"].double().numpy())
    mass["what"] = "log10 total mass in the field [dex]; pixel_* per pixel"
    mass["pixel_percentage_error"] = float((100.0 * (m_pred - m_true).abs() / m_true).mean())
    mass["pixel_mae_dex"] = float((d["log10_map"].double() - lm).abs().mean())
    mass["total_percentage_error"] = float((100.0 * (10.0 ** (d["log10_total"].double() - lt) - 1).abs()).mean())
    res = {task.map_name: mass}
    for j, name in enumerate(task.scalar_names):
        res[name] = regression_metrics(ys[:, j].numpy(), d["scalar"][:, j].double().numpy(),
                                       d["scalar_std"][:, j].double().numpy(),
                                       data_min=float(task.y_min[j]), data_max=float(task.y_max[j]))
    return res
