"""gcml: deep learning for masses, ages and distances of star clusters and galaxies.

Implements Kaur et al. (2021, MNRAS 508, 868) galaxy masses from globular-cluster kinematics and
pi-DOC (Chardin & Bianchini 2021, MNRAS 504, 5656) for globular-cluster images.
"""

from gcml.errors import GcmlError

__version__ = "0.1.0"

__all__ = ["GcmlError", "__version__"]
