"""Training data from a MapSet: in memory when it fits, otherwise streamed from HDF5 in chunks.

Both sources give the loop the same thing: for an epoch, a deterministic sequence of *global* batches
(the same on every process), of which each DistributedDataParallel rank takes its own equal slice,
so a run on ``W`` processes sees exactly the maps a single process sees, batch by batch.

* :class:`InMemoryData` reads the needed channels and targets once (``gcml.io.mapset.read_mapset``).
* :class:`StreamingData` never holds the maps: each epoch shuffles the file's HDF5 chunks (blocks of
  consecutive rows), reads them through a ``torch.utils.data.DataLoader`` whose workers each open
  their own ``h5py.File`` handle, and shuffles rows within a buffer of blocks. Under
  DistributedDataParallel each rank reads only its share of the blocks (the exception to the rule
  above: streamed batches depend on the number of processes, in-memory ones do not). A map target (pi-DOC's
  ``/truth/mass``) is read with its maps, block by block.

Batch order depends only on ``(seed, epoch)``, never on the number of workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from gcml.errors import InputError
from gcml.io.mapset import SPLITS, read_header, read_mapset
from gcml.models.tasks import DataStats, Task
from gcml.training.batching import epoch_generator, rank_slice

BUFFER_BLOCKS = 32


def estimate_bytes(hdr: dict[str, Any], n_channels: int) -> int:
    h, w = hdr["shape"]
    return int(hdr["n"]) * n_channels * h * w * 4


class _Base:
    path: Path
    channels: list[str]
    targets: list[str]
    split: np.ndarray
    y_all: np.ndarray

    def n_split(self, split: str) -> int:
        return int((self.split == SPLITS[split]).sum())

    def n_batches(self, split: str, batch_size: int, world: int = 1) -> int:
        n = self.n_split(split)
        per = batch_size
        full, rest = divmod(n, per)
        return full + (1 if rest >= world else 0)


class InMemoryData(_Base):
    """A MapSet's needed channels and targets held in memory as torch tensors."""

    streaming = False

    def __init__(self, path: str | Path, task: Task) -> None:
        self.path = Path(path)
        ms = read_mapset(self.path, channels=task.channels, with_truth=task.needs_truth)
        bad = ~np.isfinite(ms.maps).all(axis=(1, 2, 3))
        if bad.any():
            raise InputError(f"{self.path}: /maps has NaN or inf values (first in map {int(np.flatnonzero(bad)[0])})")
        self.channels = list(task.channels)
        self.targets = list(task.targets)
        self.channel_units = list(ms.units)
        self.split = ms.split
        self.x = torch.from_numpy(np.ascontiguousarray(ms.maps))
        self.y_all = task.target_array(ms, self.path)
        self.y = torch.from_numpy(self.y_all)
        self.target_units = {t: ms.target_units.get(t, "") for t in ms.targets}
        self.meta = ms.meta
        self._idx = {s: torch.from_numpy(np.flatnonzero(self.split == v)) for s, v in SPLITS.items()}
        tri = self._idx["train"]
        if len(tri) == 0:
            raise InputError(f"{self.path}: the training split (split == 0) is empty")
        # channel statistics of the transformed inputs (log10 flux for photometry), in blocks of maps
        c = self.x.shape[1]
        s1, s2, cnt = torch.zeros(c, dtype=torch.float64), torch.zeros(c, dtype=torch.float64), 0
        for lo in range(0, len(tri), 1024):
            xb = task.transform_x(self.x[tri[lo:lo + 1024]]).double()
            s1 += xb.sum(dim=(0, 2, 3))
            s2 += (xb**2).sum(dim=(0, 2, 3))
            cnt += xb.shape[0] * xb.shape[2] * xb.shape[3]
        mean = s1 / cnt
        self.stats = DataStats(
            channel_mean=mean.numpy(), channel_std=torch.sqrt((s2 / cnt - mean**2).clamp_min(0)).numpy(),
            targets={t: ms.targets[t].astype(float) for t in ms.targets}, split=self.split,
            units=dict(ms.target_units))

    def to(self, device: torch.device, *, max_bytes: float = 8e9) -> None:
        """Keep the maps on the accelerator (one copy; batches are then gathered there) when they fit."""
        if device.type != "cpu" and self.x.numel() * 4 <= max_bytes:
            self.x = self.x.to(device)
            self.y = self.y.to(device)

    def batches(self, split: str, batch_size: int, *, epoch: int | None, seed: int, rank: int = 0,
                world: int = 1) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield this rank's part of each global batch; shuffled when ``epoch`` is given."""
        idx = self._idx[split]
        if epoch is not None:
            idx = idx[torch.randperm(len(idx), generator=epoch_generator(seed, epoch))]
        for start in range(0, len(idx), batch_size):
            b = idx[start:start + batch_size]
            if len(b) < world:
                break
            b = b[rank_slice(len(b), rank, world)]
            yield self.x[b], self.y[b]


    def eval_batches(self, split: str, batch_size: int, *, rank: int = 0,
                     world: int = 1) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This rank's contiguous part of a split, in file order (the parts of all ranks, joined in rank
        order, are the whole split)."""
        idx = self._idx[split]
        n = len(idx)
        idx = idx[rank * n // world:(rank + 1) * n // world]
        for start in range(0, len(idx), batch_size):
            b = idx[start:start + batch_size]
            yield self.x[b], self.y[b]


class _BlockReader(torch.utils.data.Dataset):
    """Reads row blocks of one HDF5 file; each DataLoader worker opens its own file handle.

    Each item is ``(maps, rows, truth)``: the block's maps (its channels ``ch_idx``), its row numbers and,
    when ``truth`` names a ``/truth`` map, those maps flattened to ``(rows, H W)`` (else an empty tensor).
    """

    def __init__(self, path: Path, ch_idx: list[int], blocks: list[np.ndarray], truth: str | None = None) -> None:
        self.path, self.ch_idx, self.blocks, self.truth = path, ch_idx, blocks, truth
        self._f: h5py.File | None = None
        self._pid = -1

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        import os

        if self._f is None or self._pid != os.getpid():
            self._f = h5py.File(self.path, "r")
            self._pid = os.getpid()
        rows = self.blocks[i]
        lo, hi = int(rows.min()), int(rows.max()) + 1
        x = self._f["maps"][lo:hi][rows - lo][:, self.ch_idx]
        t = np.zeros((len(rows), 0), np.float32)
        if self.truth is not None:
            t = self._f["truth"][self.truth][lo:hi][rows - lo].reshape(len(rows), -1)
        return (torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), torch.from_numpy(rows),
                torch.from_numpy(np.ascontiguousarray(t, dtype=np.float32)))


class StreamingData(_Base):
    """A MapSet read block by block from HDF5 (for files larger than memory)."""

    streaming = True

    def __init__(self, path: str | Path, task: Task, *, workers: int = 0) -> None:
        self.path = Path(path)
        self.workers = int(workers)
        hdr = read_header(self.path)
        # a map task (pi-DOC) reads its first target from /truth with the maps; the rest are scalars
        self.truth: str | None = task.targets[0] if task.needs_truth else None
        scalars = list(task.targets[1:] if task.needs_truth else task.targets)
        self.channels = list(task.channels)
        self.targets = list(task.targets)
        self.ch_idx = [hdr["channels"].index(c) for c in self.channels]
        self.channel_units = [hdr["units"][i] for i in self.ch_idx]
        with h5py.File(self.path, "r") as f:
            self.split = f["split"][()]
            ys = {t: f["targets"][t][()] for t in hdr["targets"]}
            self.target_units = {t: str(f["targets"][t].attrs.get("unit", "")) for t in hdr["targets"]}
            d = f["maps"]
            self.chunk_rows = int(d.chunks[0]) if d.chunks else 1024
            self.n = int(d.shape[0])
            c = len(self.ch_idx)
            s1, s2 = np.zeros(c), np.zeros(c)
            count = 0
            flux_train: list[np.ndarray] = []
            if self.truth is not None:
                task.begin_truth(f["truth"][self.truth].shape, self.path)
            # One pass over the file: NaN checks, the training split's channel statistics (and for a map
            # target its pixel normalisation and the training flux range).
            for lo in range(0, self.n, self.chunk_rows * 8):
                hi = min(self.n, lo + self.chunk_rows * 8)
                raw = d[lo:hi][:, self.ch_idx].astype(np.float64)
                x = task.transform_x(torch.from_numpy(raw)).numpy()
                bad = ~np.isfinite(x).all(axis=(1, 2, 3))
                if bad.any():
                    raise InputError(f"{self.path}: /maps has NaN or inf values (first in map {lo + int(np.flatnonzero(bad)[0])})")
                is_tr = self.split[lo:hi] == 0
                tr = x[is_tr]
                s1 += tr.sum(axis=(0, 2, 3))
                s2 += (tr**2).sum(axis=(0, 2, 3))
                count += tr.shape[0] * tr.shape[2] * tr.shape[3]
                if self.truth is not None:
                    task.add_truth_block(f["truth"][self.truth][lo:hi], np.arange(lo, hi), self.split, self.path)
                    flux_train.append(raw[is_tr, 0].sum(axis=(1, 2)))
            meta = {k: f["meta"][k][()] for k in getattr(task, "range_meta", ())
                    if self.truth is not None and "meta" in f and k in f["meta"]}
        if count == 0:
            raise InputError(f"{self.path}: the training split (split == 0) is empty")
        use = self.split <= 2
        for t in scalars:
            if not np.isfinite(ys[t][use]).all():
                raise InputError(f"{self.path}: /targets/{t} has NaN or inf values")
        if self.truth is not None:
            task.end_truth()
            task.set_training_range(np.concatenate(flux_train), meta, ys, self.split)
        mean = s1 / count
        self.stats = DataStats(channel_mean=mean, channel_std=np.sqrt(np.maximum(s2 / count - mean**2, 0)),
                               targets={k: v.astype(float) for k, v in ys.items()}, split=self.split,
                               units=self.target_units)
        # the scalar targets of every row (the map target is read with the maps)
        self.y_all = np.stack([ys[t] for t in scalars], axis=1).astype(np.float32) if scalars \
            else np.zeros((self.n, 0), np.float32)
        self.y = torch.from_numpy(self.y_all)

    def _blocks(self, split: str) -> list[np.ndarray]:
        rows = np.flatnonzero(self.split == SPLITS[split])
        keys = rows // self.chunk_rows
        cuts = np.flatnonzero(np.diff(keys)) + 1
        return [b for b in np.split(rows, cuts) if len(b)]

    def batches(self, split: str, batch_size: int, *, epoch: int | None, seed: int, rank: int = 0,
                world: int = 1) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This rank's batches of an epoch.

        One process reads the epoch's shuffled blocks and yields batches of ``batch_size``. With ``world``
        processes each rank reads only its own blocks (every ``world``-th of the shuffled list, so the file
        is read once per epoch in all) and yields batches of ``batch_size // world``; every rank yields the
        same number of batches (the smallest any rank can fill), so DistributedDataParallel stays in step.
        The batches depend on (seed, epoch, world), not on the worker count.
        """
        blocks = self._blocks(split)
        gen = epoch_generator(seed, epoch) if epoch is not None else None
        if gen is not None:
            blocks = [blocks[i] for i in torch.randperm(len(blocks), generator=gen).tolist()]
        limit = None
        if world > 1:
            batch_size = max(1, batch_size // world)
            limit = min(sum(len(b) for b in blocks[r::world]) for r in range(world)) // batch_size
            blocks = blocks[rank::world]
            if gen is not None:
                gen = epoch_generator(seed, epoch, stream=1 + rank)
        yield from self._read(blocks, batch_size, gen, limit)

    def eval_batches(self, split: str, batch_size: int, *, rank: int = 0,
                     world: int = 1) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This rank's contiguous part of a split's blocks, in file order (the parts of all ranks, joined in
        rank order, are the whole split; each rank reads only its part)."""
        blocks = self._blocks(split)
        if world > 1:
            sizes = np.cumsum([len(b) for b in blocks])
            total = int(sizes[-1]) if len(sizes) else 0
            # block j goes to the rank whose share of the rows contains the block's first row
            starts = sizes - np.array([len(b) for b in blocks])
            owner = (starts * world) // max(total, 1)
            blocks = [b for b, o in zip(blocks, owner, strict=True) if o == rank]
        yield from self._read(blocks, batch_size, None, None)

    def _read(self, blocks: list[np.ndarray], batch_size: int, gen: torch.Generator | None,
              limit: int | None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        loader = torch.utils.data.DataLoader(_BlockReader(self.path, self.ch_idx, blocks, self.truth),
                                             batch_size=None, shuffle=False, num_workers=self.workers)
        buf_x: list[torch.Tensor] = []
        buf_r: list[torch.Tensor] = []
        buf_t: list[torch.Tensor] = []
        n_buf = 0
        done = 0

        def flush(final: bool) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
            nonlocal buf_x, buf_r, buf_t, n_buf, done
            x, r, t = torch.cat(buf_x), torch.cat(buf_r), torch.cat(buf_t)
            if gen is not None:
                p = torch.randperm(len(r), generator=gen)
                x, r, t = x[p], r[p], t[p]
            stop = len(r) if final else (len(r) // batch_size) * batch_size
            for start in range(0, stop, batch_size):
                if limit is not None and done >= limit:
                    break
                b = slice(start, min(start + batch_size, stop))
                xb, rb, tb = x[b], r[b], t[b]
                done += 1
                # targets laid out as in memory: the map target's pixels (if any), then the scalars
                yield xb, (torch.cat([tb, self.y[rb]], 1) if self.truth is not None else self.y[rb])
            buf_x, buf_r, buf_t = [x[stop:]], [r[stop:]], [t[stop:]]
            n_buf = len(r) - stop

        for xb, rb, tb in loader:
            buf_x.append(xb)
            buf_r.append(rb)
            buf_t.append(tb)
            n_buf += len(rb)
            if n_buf >= BUFFER_BLOCKS * self.chunk_rows:
                yield from flush(final=False)
            if limit is not None and done >= limit:
                return
        if n_buf:
            yield from flush(final=True)

    def n_batches(self, split: str, batch_size: int, world: int = 1) -> int:
        if world > 1:  # about: the exact count depends on the epoch's block order
            return self.n_split(split) // batch_size
        return -(-self.n_split(split) // batch_size)


def open_training_data(path: str | Path, task: Task, *, in_memory: str = "auto", max_memory_gb: float = 4.0,
                       workers: int = 0) -> InMemoryData | StreamingData:
    """Load ``path`` for ``task``: in memory when it needs less than ``max_memory_gb`` (or when asked)."""
    hdr = read_header(path)
    task.check_header(hdr, path)
    if task.input_kind == "catalogue":  # mass-npe: GC catalogues, always in memory
        from gcml.training.npe_data import CatalogueData

        return CatalogueData(path, task)  # type: ignore[arg-type]
    need = estimate_bytes(hdr, len(task.channels) + (1 if task.needs_truth else 0))
    if in_memory == "yes" or (in_memory == "auto" and need <= max_memory_gb * 1e9):
        return InMemoryData(path, task)
    return StreamingData(path, task, workers=workers)
