"""Scalar regression (galaxy mass from GC kinematics maps; age and distance from images)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from gcml.errors import FormatError, InputError
from gcml.models.tasks.base import LOGVAR_MAX, LOGVAR_MIN, DataStats, Task


class ScalarRegressionTask(Task):
    """Scalar targets from ``/targets`` (galaxy mass, age, distance), one or several at once.

    Losses
    ------
    ``gaussian_nll``
        Targets are standardised, ``y' = (y - mean) / std`` (training split). The network predicts a
        mean ``mu`` and a log-variance ``s`` for each target; the loss is the Gaussian negative
        log-likelihood ``0.5 * (s + (y' - mu)^2 exp(-s))`` averaged over maps and targets
        (Nix & Weigend 1994; Kendall & Gal 2017). After training, the predicted variances are
        multiplied by one factor per target, ``k = mean(z^2)`` with ``z = (y' - mu) / sigma`` on the
        validation split, so that the standardised residuals have unit variance there (stored in the
        bundle as ``calibration.variance_scale``). A bundle may also carry ``calibration.systematic_dex``,
        one model-systematic term per target measured outside the training distribution (for the mass
        models: leave one family out, ``scripts/measure_family_systematic.py``); it is added in quadrature,
        ``sigma = sqrt(sigma_stat^2 + systematic^2)``.
    ``mse``
        Kaur et al. (2021): one output per target, the label rescaled to 0-10 over the range of the
        data (``y' = 10 (y - min) / (max - min)``, min and max over the train, val and test splits),
        mean squared error loss. Its uncertainty is homoscedastic: the rms residual on the validation
        split (``calibration.sigma``).
    """

    name = "scalar-regression"
    source = "targets"

    def __init__(self, channels, targets, loss: str = "gaussian_nll", channel_units=None, target_units=None):
        super().__init__(channels, targets, loss, channel_units)
        if loss not in ("gaussian_nll", "mse"):
            raise InputError(f"loss '{loss}' is not available for scalar targets; use gaussian_nll or mse")
        self.target_units = list(target_units or [""] * len(self.targets))
        t = len(self.targets)
        self.y_offset = np.zeros(t)
        self.y_scale = np.ones(t)
        self.y_min = np.zeros(t)
        self.y_max = np.ones(t)
        self.variance_scale = np.ones(t)
        self.systematic = np.zeros(t)
        self.sigma_const = np.ones(t)
        self._yo: torch.Tensor | None = None

    @property
    def n_outputs(self) -> int:  # type: ignore[override]
        return 2 * len(self.targets) if self.loss_name == "gaussian_nll" else len(self.targets)

    def fit(self, stats: DataStats) -> None:
        super().fit(stats)
        sp = stats.split if stats.split is not None else np.zeros(len(next(iter(stats.targets.values()))), np.uint8)
        train, known = sp == 0, sp <= 2
        self.target_units = [stats.units.get(t, "") for t in self.targets]
        for j, name in enumerate(self.targets):
            y = np.asarray(stats.targets[name], float)
            self.y_min[j] = float(y[known].min())
            self.y_max[j] = float(y[known].max())
            if self.loss_name == "gaussian_nll":
                sd = float(y[train].std())
                self.y_offset[j] = float(y[train].mean())
                self.y_scale[j] = sd if sd > 0 else 1.0
            else:
                rng = self.y_max[j] - self.y_min[j]
                self.y_offset[j] = self.y_min[j]
                self.y_scale[j] = rng / 10.0 if rng > 0 else 1.0
        self._yo = None

    def _ytensors(self, device) -> tuple[torch.Tensor, torch.Tensor]:
        if self._yo is None or self._yo.device != device:
            self._yo = torch.as_tensor(self.y_offset, dtype=torch.float32, device=device)
            self._ys = torch.as_tensor(self.y_scale, dtype=torch.float32, device=device)
        return self._yo, self._ys

    def encode_y(self, y: torch.Tensor) -> torch.Tensor:
        yo, ys = self._ytensors(y.device)
        return (y - yo) / ys

    def _split_out(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        t = len(self.targets)
        out = out.float()
        if self.loss_name == "gaussian_nll":
            return out[:, :t], out[:, t:].clamp(LOGVAR_MIN, LOGVAR_MAX)
        return out, None

    def loss(self, out: torch.Tensor, y_enc: torch.Tensor) -> torch.Tensor:
        mu, logvar = self._split_out(out)
        if logvar is None:
            return torch.mean((mu - y_enc) ** 2)
        return 0.5 * torch.mean(logvar + (y_enc - mu) ** 2 * torch.exp(-logvar))

    def decode(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Physical-unit mean and (calibrated) standard deviation, each (B, n_targets)."""
        mu, logvar = self._split_out(out)
        yo, ys = self._ytensors(out.device)
        mean = mu * ys + yo
        if logvar is None:
            std = torch.as_tensor(self.sigma_const, dtype=torch.float32, device=out.device).expand_as(mean)
        else:
            vs = torch.as_tensor(self.variance_scale, dtype=torch.float32, device=out.device)
            std = torch.exp(0.5 * logvar) * ys * torch.sqrt(vs)
        if np.any(self.systematic):
            sy = torch.as_tensor(self.systematic, dtype=torch.float32, device=out.device)
            std = torch.sqrt(std**2 + sy**2)
        return mean, std

    def statistical_std(self, std: np.ndarray) -> np.ndarray:
        """The statistical part of decoded standard deviations ``std`` (..., n_targets): without the
        systematic term, ``sqrt(std^2 - systematic^2)``; ``std`` itself for a model without one."""
        std = np.asarray(std, float)
        return np.sqrt(np.maximum(std**2 - np.asarray(self.systematic, float) ** 2, 0.0))

    def calibrate(self, out: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
        """Fit the uncertainty scale on the validation split (``out`` network outputs, ``y`` physical)."""
        self.variance_scale = np.ones(len(self.targets))
        self.sigma_const = np.ones(len(self.targets))
        self.systematic = np.zeros(len(self.targets))   # the statistical part is what the val split calibrates
        mean, std = self.decode(out)
        r = (y.float() - mean).double()
        if self.loss_name == "gaussian_nll":
            z2 = (r / std.double()) ** 2
            self.variance_scale = z2.mean(0).cpu().numpy()
        else:
            self.sigma_const = torch.sqrt((r**2).mean(0)).cpu().numpy()
        return self.calibration()

    def calibration(self) -> dict[str, Any]:
        if self.loss_name == "gaussian_nll":
            c = {"method": "variance_scale on val split", "variance_scale": [float(v) for v in self.variance_scale]}
            if np.any(self.systematic):
                c["systematic_dex"] = [float(v) for v in self.systematic]
            return c
        return {"method": "rms residual on val split", "sigma": [float(v) for v in self.sigma_const]}

    def bundle_entries(self) -> dict[str, Any]:
        return {
            "inputs": {"channels": self.channels, "units": self.channel_units,
                       "norm": {"kind": "standardise", "mean": [float(v) for v in self.x_mean],
                                "std": [float(v) for v in self.x_std], **self._norm_entries()}},
            "targets": {"names": self.targets, "units": self.target_units, "output": "scalar",
                        "source": self.source, "loss": self.loss_name,
                        "norm": {"offset": [float(v) for v in self.y_offset],
                                 "scale": [float(v) for v in self.y_scale],
                                 "data_min": [float(v) for v in self.y_min],
                                 "data_max": [float(v) for v in self.y_max]}},
            "calibration": self.calibration(),
            "task": self.name,
        }

    @classmethod
    def from_bundle(cls, bundle: dict[str, Any]) -> ScalarRegressionTask:
        try:
            task, _, _ = cls._from_bundle_common(bundle)
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"model bundle: inputs/targets normalisation is incomplete ({exc})") from None
        return task
