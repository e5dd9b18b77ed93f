"""Random-number conventions.

Every random function in gcml takes ``seed: int | numpy.random.Generator | None`` and turns it into a
generator with :func:`make_rng`; there is no global state. Work split over parallel workers gets
independent streams from :func:`spawn_seeds`, keyed by the *item* (galaxy, snapshot) rather than by the
worker, so results do not depend on the number of workers.
"""

from __future__ import annotations

import random as _pyrandom

import numpy as np

SeedLike = int | np.random.Generator | np.random.SeedSequence | None


#: seeds gcml takes: numpy's SeedSequence takes any integer >= 0, torch.manual_seed and the int64 ``seed``
#: attribute of gcml files need it below 2**63
SEED_MAX = 2**63 - 1


def check_seed(seed: object, option: str = "`seed`") -> int:
    """``seed`` as an int in 0..2**63-1, or a ConfigError naming ``option`` (a library parameter, backquoted)."""
    from gcml.errors import ConfigError

    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) <= SEED_MAX:
        raise ConfigError(f"option {option}: expected an integer from 0 to 2**63 - 1 ({SEED_MAX}), got {seed}")
    return int(seed)


def make_rng(seed: SeedLike = None) -> np.random.Generator:
    """Return a numpy Generator from an int, SeedSequence, Generator (returned as is) or None."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def item_seeds(seed: int, n: int, *, stream: int = 0) -> list[np.random.SeedSequence]:
    """Independent SeedSequences for items ``0..n-1`` of a run seeded with ``seed``.

    Item ``i`` always gets the same sequence for the same ``(seed, stream)``, whatever the number of
    workers or the shard the item falls in.
    """
    root = np.random.SeedSequence([int(seed), int(stream)])
    return root.spawn(n)


def item_rng(seed: int, index: int, *, stream: int = 0) -> np.random.Generator:
    """The generator of item ``index`` (equal to ``item_seeds(seed, index + 1)[index]``)."""
    ss = np.random.SeedSequence([int(seed), int(stream)], spawn_key=(int(index),))
    return np.random.default_rng(ss)


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's legacy and torch's global generators (for training only)."""
    _pyrandom.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
