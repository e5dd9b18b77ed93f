"""gcml: deep learning for masses, ages and distances of star clusters and galaxies.

Implements Kaur et al. (2021, MNRAS 508, 868) galaxy masses from globular-cluster kinematics and
pi-DOC (Chardin & Bianchini 2021, MNRAS 504, 5656) for globular-cluster images.
"""

from gcml._version import __version__
from gcml.errors import GcmlError

__all__ = ["GcmlError", "__version__", "evaluate", "predict"]


def __getattr__(name: str):
    """``gcml.predict`` and ``gcml.evaluate`` (:mod:`gcml.api`), imported on first use to keep ``import gcml`` light."""
    if name in ("predict", "evaluate"):
        from gcml import api

        return getattr(api, name)
    raise AttributeError(f"module 'gcml' has no attribute {name!r}")
