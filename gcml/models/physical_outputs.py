"""Physical outputs by construction: the scalar targets of pi-DOC models are learnt in an unbounded space.

A Gaussian output head predicts a mean and a variance on the whole real line. Learnt directly in kpc and
Gyr, nothing stops a distance <= 0 or an age of -0.04 or 43 Gyr (both were seen on real images). gcml
learns instead

* ``log``:            ``z = ln d``                          -> ``d = exp(z) > 0``;
* ``logit:lo:hi``:    ``z = ln((a - lo) / (hi - a))``       -> ``a = lo + (hi - lo) / (1 + exp(-z))`` in (lo, hi);

standardises ``z`` with the training split and fits the Gaussian there. The point estimate is the back-
transformed mean (the median of the implied distribution), the interval ``[f(z - k s), f(z + k s)]`` lies
inside the physical range for every ``k``, and the quoted 1-sigma is the delta-method ``|f'(z)| s``.
Ages use ``(0, AGE_MAX_GYR]``: a Hubble time of 13.8 Gyr with a margin for model ages of the oldest
clusters; a predicted age can come close to 14.5 Gyr but not reach it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from gcml.errors import FormatError

AGE_MAX_GYR = 14.5
#: default parametrisation per scalar target name (others: "none", i.e. learnt as they are)
DEFAULT_SCALAR_TRANSFORMS = {"distance": "log", "age": f"logit:0:{AGE_MAX_GYR}"}


def _parse(kind: str) -> tuple[str, float, float]:
    if kind in ("none", "log"):
        return kind, 0.0, 0.0
    if kind.startswith("logit:"):
        try:
            _, lo, hi = kind.split(":")
            lo_f, hi_f = float(lo), float(hi)
        except ValueError:
            raise FormatError(f"scalar transform '{kind}': expected logit:LO:HI") from None
        if not hi_f > lo_f:
            raise FormatError(f"scalar transform '{kind}': expected LO < HI")
        return "logit", lo_f, hi_f
    raise FormatError(f"scalar transform '{kind}' is unknown (none, log or logit:LO:HI)")


def forward(kind: str, y: Any) -> Any:
    """Physical value -> unbounded ``z`` (numpy arrays or torch tensors)."""
    k, lo, hi = _parse(kind)
    lib = torch if isinstance(y, torch.Tensor) else np
    if k == "none":
        return y
    if k == "log":
        return lib.log(y)
    return lib.log((y - lo) / (hi - y))


def inverse(kind: str, z: Any) -> Any:
    """Unbounded ``z`` -> physical value inside the range."""
    k, lo, hi = _parse(kind)
    if k == "none":
        return z
    if isinstance(z, torch.Tensor):
        return torch.exp(z) if k == "log" else lo + (hi - lo) * torch.sigmoid(z)
    z = np.asarray(z, float)
    return np.exp(z) if k == "log" else lo + (hi - lo) / (1.0 + np.exp(-z))


def derivative(kind: str, z: Any) -> Any:
    """``d inverse / dz`` (for the delta-method 1-sigma)."""
    k, lo, hi = _parse(kind)
    if k == "none":
        return torch.ones_like(z) if isinstance(z, torch.Tensor) else np.ones_like(np.asarray(z, float))
    if isinstance(z, torch.Tensor):
        if k == "log":
            return torch.exp(z)
        s = torch.sigmoid(z)
        return (hi - lo) * s * (1 - s)
    z = np.asarray(z, float)
    if k == "log":
        return np.exp(z)
    s = 1.0 / (1.0 + np.exp(-z))
    return (hi - lo) * s * (1 - s)


def check_in_range(kind: str, y: np.ndarray, what: str) -> None:
    """Training targets must lie strictly inside the parametrised range."""
    k, lo, hi = _parse(kind)
    y = np.asarray(y, float)
    if k == "log" and (y <= 0).any():
        raise FormatError(f"/targets/{what}: values <= 0 cannot be learnt as log")
    if k == "logit" and ((y <= lo) | (y >= hi)).any():
        raise FormatError(f"/targets/{what}: values outside ({lo}, {hi}) cannot be learnt as {kind}")


def interval(kind: str, z: Any, s: Any, k: float = 1.0) -> tuple[Any, Any]:
    """``(f(z - k s), f(z + k s))``: the central interval, inside the physical range by construction."""
    return inverse(kind, z - k * s), inverse(kind, z + k * s)


def is_identity(kinds: list[str]) -> bool:
    return all(k == "none" for k in kinds)

