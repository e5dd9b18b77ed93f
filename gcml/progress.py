"""Progress of long library calls, for notebooks and scripts.

Long calls (``simulate_maps``, ``simulate_clusters``, ``mock_observe``, ``train``, ``gcml.api.evaluate``, and
``gcml.api.predict`` on multi-galaxy tables) take ``progress=``: ``None``/``False`` (the default: silent, as a
library should be), a callable
``progress(done, total)`` (what the CLI passes to draw its rich bars), or ``True`` for a ``tqdm.auto`` bar
(a widget in Jupyter, text in a terminal)::

    from gcml.simulate.galaxies import SimulateMapsConfig, simulate_maps
    simulate_maps(SimulateMapsConfig(n_galaxies=200), "maps.h5", progress=True)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ProgressArg = Callable[..., None] | bool | None


class TqdmProgress:
    """A ``progress(done, total)`` callable drawing a ``tqdm.auto`` bar; closes itself when done."""

    def __init__(self, desc: str, unit: str = "it") -> None:
        self.desc, self.unit, self.bar = desc, unit, None

    def __call__(self, done: int, total: int | None = None) -> None:
        from tqdm.auto import tqdm

        if self.bar is None:
            self.bar = tqdm(total=total, desc=self.desc, unit=self.unit)
        if total is not None and self.bar.total != total:
            self.bar.total = total
        self.bar.update(int(done) - self.bar.n)
        if total is not None and done >= total:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def as_progress(progress: ProgressArg, desc: str, unit: str = "it") -> Callable[..., Any] | None:
    """The callable a library function reports to: ``True`` -> a tqdm.auto bar, a callable as given,
    ``None``/``False`` -> None (silent)."""
    if progress is True:
        return TqdmProgress(desc, unit)
    if progress is False or progress is None:
        return None
    if not callable(progress):
        raise TypeError(f"progress must be None, True or a callable progress(done, total), got {progress!r}")
    return progress


def offset_progress(report: Callable[..., Any] | None, offset: int, total: int) -> Callable[..., Any] | None:
    """A ``progress(done, n)`` for one part of a longer job: reports ``offset + done`` of ``total`` to
    ``report`` (None stays None), e.g. the maps of the k-th of several models."""
    if report is None:
        return None

    def step(done: int, _n: int | None = None) -> None:
        report(offset + int(done), total)

    return step
