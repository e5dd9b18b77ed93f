"""The task of ``mass-npe``: GC catalogues in, a posterior over mass targets out (its data source for
training is :class:`gcml.training.npe_data.CatalogueData`).

The task plugs the neural posterior estimator (:mod:`gcml.models.npe`) into gcml's one training loop:

* inputs are the MapSet's GC catalogues (``/catalogue``, :mod:`gcml.io.catalogues`), batched as padded
  tensors ``(B, N_max, 6)`` (x, y, v_los, v_err, in_map, valid) by the data source; each global
  batch is padded to its own longest catalogue, the same on every DistributedDataParallel rank;
* targets are standardised with the training split's mean and standard deviation (as the Gaussian CNN
  heads), and the loss is the flow's negative log-likelihood of the standardised targets
  (``-log q(y' | catalogue)``, averaged over the batch): maximum likelihood on simulations, i.e. neural
  posterior estimation;
* the network is called as ``net(catalogues, y_standardised)`` (:attr:`CatalogueNPETask.takes_targets`);
  in eval mode it also returns the mean and standard deviation of posterior draws, which the loop's
  metrics (MAE, scatter, coverage of mean +- z std) read through :meth:`decode`. Full posteriors
  (samples) come from the model's ``sample`` method; ``gcml evaluate`` scores them with SBC and TARP.

Maps whose catalogue has fewer than :data:`MIN_GC` GCs, or no GC inside the map (no R_out), are left out
of every split (their number is in ``gcml.training.npe_data.CatalogueData.n_excluded``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from gcml.errors import InputError
from gcml.models.tasks.base import DataStats
from gcml.models.tasks.scalar import ScalarRegressionTask

#: Fewest GCs a catalogue needs to be used in training and evaluation.
MIN_GC = 5
CATALOGUE_UNITS = ["kpc", "kpc", "km/s", "km/s", "", ""]


class CatalogueNPETask(ScalarRegressionTask):
    """Posterior of scalar targets from GC catalogues (see the module docstring)."""

    name: ClassVar[str] = "catalogue-npe"
    source: ClassVar[str] = "targets"
    #: the data layer reads /catalogue instead of /maps
    input_kind: ClassVar[str] = "catalogue"
    #: the loop calls the network with the standardised targets (it returns their negative log-likelihood)
    takes_targets: ClassVar[bool] = True

    def __init__(self, channels, targets, loss: str = "flow_nll", channel_units=None, target_units=None):
        from gcml.models.npe import CATALOGUE_COLUMNS

        if loss not in ("flow_nll", "gaussian_nll"):
            raise InputError(f"loss '{loss}' is not available for mass-npe: it is trained by the flow's "
                             "negative log-likelihood (leave `loss` at its default)")
        if list(channels) != list(CATALOGUE_COLUMNS):
            raise InputError(f"mass-npe reads GC catalogues ({', '.join(CATALOGUE_COLUMNS)}), not map channels "
                             f"{', '.join(channels)}; leave `channels` out")
        super().__init__(channels, targets, "gaussian_nll", channel_units=CATALOGUE_UNITS, target_units=target_units)
        self.loss_name = "flow_nll"
        self.min_gc = MIN_GC

    @property
    def n_outputs(self) -> int:  # type: ignore[override]
        return 1 + 2 * len(self.targets)

    def check_header(self, hdr: dict[str, Any], path: Any) -> None:
        from gcml.io.catalogues import has_catalogues

        missing = [t for t in self.targets if t not in hdr["targets"]]
        if missing:
            raise InputError(f"{path}: /targets/{missing[0]} not in the MapSet (it has {', '.join(hdr['targets'])})")
        if not has_catalogues(path):
            raise InputError(f"{path}: has no GC catalogues (/catalogue); mass-npe trains on MapSets made by "
                             "gcml simulate-maps with catalogues (the default)")

    def network_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        kwargs = {k: v for k, v in kwargs.items() if k not in ("in_channels", "n_outputs")}
        kwargs["n_targets"] = len(self.targets)
        return kwargs

    def encode_x(self, x: torch.Tensor, *, transformed: bool = False) -> torch.Tensor:
        return x  # the network scales its inputs itself (fixed scales, stored as architecture arguments)

    def fit(self, stats: DataStats) -> None:
        """Ranges as the scalar task; every target standardised with the training split's mean and std."""
        super().fit(stats)
        sp = np.asarray(stats.split)
        for j, name in enumerate(self.targets):
            y = np.asarray(stats.targets[name], float)[sp == 0]
            sd = float(y.std())
            self.y_offset[j] = float(y.mean())
            self.y_scale[j] = sd if sd > 0 else 1.0
        self._yo = None

    def loss(self, out: torch.Tensor, y_enc: torch.Tensor) -> torch.Tensor:
        return out[:, 0].float().mean()

    def decode(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and standard deviation of the posterior draws behind an eval-mode output, physical units."""
        d = len(self.targets)
        if out.shape[1] < 1 + 2 * d:
            raise InputError("mass-npe: posterior summaries need the network in eval mode")
        yo, ys = self._ytensors(out.device)
        return out[:, 1:1 + d] * ys + yo, out[:, 1 + d:1 + 2 * d] * ys

    def calibrate(self, out: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
        return self.calibration()

    def calibration(self) -> dict[str, Any]:
        return {"method": "none: the flow's posterior is used as trained (checked by SBC and TARP in gcml evaluate)"}

    def bundle_entries(self) -> dict[str, Any]:
        b = super().bundle_entries()
        b["targets"]["loss"] = "flow_nll"
        b["targets"]["output"] = "posterior"
        b["inputs"]["kind"] = "catalogue"
        b["inputs"]["min_gc"] = MIN_GC
        return b

    def decode_samples(self, samples: torch.Tensor) -> torch.Tensor:
        """Standardised posterior draws (S, B, D) -> physical units."""
        yo, ys = self._ytensors(samples.device)
        return samples * ys + yo
