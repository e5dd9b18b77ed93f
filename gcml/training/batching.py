"""Batch order shared by the training data sources: a function of (seed, epoch) only, sliced per DDP rank."""

from __future__ import annotations

import numpy as np
import torch


def epoch_generator(seed: int, epoch: int, stream: int = 0) -> torch.Generator:
    """The torch generator of one epoch's shuffling (a function of seed and epoch only)."""
    ss = np.random.SeedSequence([int(seed), int(epoch), int(stream), 0x6763])
    return torch.Generator().manual_seed(int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1)))


def rank_slice(n: int, rank: int, world: int) -> slice:
    """Equal slices of a global batch of ``n`` rows (the last ``n % world`` rows are dropped)."""
    k = n // world
    return slice(rank * k, (rank + 1) * k)
