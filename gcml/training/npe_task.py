"""Training task and data source of ``mass-npe``: GC catalogues in, a posterior over mass targets out.

The task plugs the neural posterior estimator (:mod:`gcml.models.npe`) into gcml's one training loop:

* inputs are the MapSet's GC catalogues (``/catalogue``, :mod:`gcml.io.catalogues`), batched as padded
  tensors ``(B, N_max, 6)`` (x, y, v_los, v_err, in_map, valid) by :class:`CatalogueData`; each global
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
of every split (their number is in ``CatalogueData.n_excluded``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from gcml.errors import InputError
from gcml.training.tasks import DataStats, ScalarRegressionTask

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
                             "negative log-likelihood (leave --loss at its default)")
        if list(channels) != list(CATALOGUE_COLUMNS):
            raise InputError(f"mass-npe reads GC catalogues ({', '.join(CATALOGUE_COLUMNS)}), not map channels "
                             f"{', '.join(channels)}; leave --channels out")
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

    def encode_x(self, x: torch.Tensor) -> torch.Tensor:
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


class CatalogueData:
    """A MapSet's GC catalogues and targets in memory, batched as padded tensors (same interface as
    :class:`gcml.training.data.InMemoryData`)."""

    streaming = False

    def __init__(self, path: str | Path, task: CatalogueNPETask) -> None:
        import h5py

        from gcml.io.catalogues import COLUMNS, read_catalogues
        from gcml.io.mapset import SPLITS

        self.path = Path(path)
        self._splits = SPLITS
        self.cat = read_catalogues(self.path)
        with h5py.File(self.path, "r") as f:
            split = f["split"][()].astype(np.uint8)
            ys = {t: f["targets"][t][()].astype(float) for t in f["targets"]}
            self.target_units = {t: str(f["targets"][t].attrs.get("unit", "")) for t in f["targets"]}
        for c in COLUMNS:
            v = getattr(self.cat, c)
            if not np.isfinite(v).all():
                i = int(np.searchsorted(self.cat.offsets, np.flatnonzero(~np.isfinite(v))[0], side="right") - 1)
                raise InputError(f"{self.path}: /catalogue/{c} has NaN or inf values (first in the catalogue of map {i})")
        counts = self.cat.counts
        n_in = np.add.reduceat(self.cat.in_map.astype(np.int64), self.cat.offsets[:-1]) if len(self.cat.in_map) \
            else np.zeros(self.cat.n, np.int64)
        n_in = np.where(counts > 0, n_in, 0)
        usable = (counts >= MIN_GC) & (n_in > 0)
        self.n_excluded = int((~usable & (split <= 3)).sum())
        self.split = np.where(usable, split, 255).astype(np.uint8)
        for t in task.targets:
            bad = ~np.isfinite(ys[t]) & (self.split <= 2)
            if bad.any():
                raise InputError(f"{self.path}: /targets/{t} has NaN or inf values (first in map {int(np.flatnonzero(bad)[0])})")
        self.channels = list(task.channels)
        self.targets = list(task.targets)
        self.channel_units = list(CATALOGUE_UNITS)
        self.y_all = np.stack([np.nan_to_num(ys[t]) for t in task.targets], 1).astype(np.float32)
        self.y = torch.from_numpy(self.y_all)
        self._idx = {s: np.flatnonzero(self.split == v) for s, v in SPLITS.items()}
        if len(self._idx["train"]) == 0:
            raise InputError(f"{self.path}: the training split has no catalogue with at least {MIN_GC} GCs")
        self.stats = DataStats(channel_mean=np.zeros(6), channel_std=np.ones(6),
                               targets=ys,  # excluded maps count as ood below, so fit() ignores them
                               split=np.where(self.split == 255, 3, self.split).astype(np.uint8),
                               units=dict(self.target_units))

    def n_split(self, split: str) -> int:
        return int(len(self._idx[split]))

    def n_batches(self, split: str, batch_size: int, world: int = 1) -> int:
        full, rest = divmod(self.n_split(split), batch_size)
        return full + (1 if rest >= world else 0)

    def to(self, device: torch.device, **kwargs: Any) -> None:
        """Catalogues stay on the CPU (each batch is padded there and moved by the loop)."""

    def batches(self, split: str, batch_size: int, *, epoch: int | None, seed: int, rank: int = 0,
                world: int = 1) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This rank's part of each global batch (padded to the global batch's longest catalogue)."""
        from gcml.training.data import _rank_slice, epoch_generator

        idx = self._idx[split]
        if epoch is not None:
            idx = idx[torch.randperm(len(idx), generator=epoch_generator(seed, epoch)).numpy()]
        for start in range(0, len(idx), batch_size):
            b = idx[start:start + batch_size]
            if len(b) < world:
                break
            n_max = int(self.cat.counts[b].max())
            b = b[_rank_slice(len(b), rank, world)]
            yield torch.from_numpy(self.cat.padded(b, n_max)), self.y[torch.from_numpy(b)]

    def eval_batches(self, split: str, batch_size: int, *, rank: int = 0,
                     world: int = 1) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This rank's contiguous part of a split, in file order (all ranks' parts joined are the split)."""
        idx = self._idx[split]
        n = len(idx)
        idx = idx[rank * n // world:(rank + 1) * n // world]
        for start in range(0, len(idx), batch_size):
            b = idx[start:start + batch_size]
            yield torch.from_numpy(self.cat.padded(b)), self.y[torch.from_numpy(b)]
