"""Training data source of ``mass-npe``: a MapSet's GC catalogues (``/catalogue``) batched as padded tensors.

The task is :class:`gcml.models.tasks.npe.CatalogueNPETask` (see its module for the method).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gcml.errors import InputError
from gcml.models.tasks.base import DataStats
from gcml.models.tasks.npe import CATALOGUE_UNITS, MIN_GC, CatalogueNPETask
from gcml.training.batching import epoch_generator, rank_slice


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
        idx = self._idx[split]
        if epoch is not None:
            idx = idx[torch.randperm(len(idx), generator=epoch_generator(seed, epoch)).numpy()]
        for start in range(0, len(idx), batch_size):
            b = idx[start:start + batch_size]
            if len(b) < world:
                break
            n_max = int(self.cat.counts[b].max())
            b = b[rank_slice(len(b), rank, world)]
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
