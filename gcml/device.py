"""Torch devices from the user's ``--device``/``--gpus`` (used by training, evaluation and prediction)."""

from __future__ import annotations

import re

import torch

from gcml.errors import ConfigError, DeviceError


def cuda_count() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def resolve_device(device: str, gpus: int = 0, local_rank: int = 0) -> torch.device:
    """Turn ``--device``/``--gpus`` into a torch device; a GPU that is not there is a DeviceError."""
    n = cuda_count()
    if gpus > n:
        raise DeviceError(f"option --gpus {gpus}: this machine has {n} CUDA GPU{'s' if n != 1 else ''}; "
                          f"use --gpus {n} or fewer" + (" (or --nproc N for CPU processes)" if n == 0 else ""))
    dev = str(device).strip().lower()
    if gpus >= 1:
        if dev not in ("auto", "cuda") and not dev.startswith("cuda"):
            raise ConfigError(f"option --device {device}: --gpus {gpus} needs a CUDA device")
        return torch.device("cuda", local_rank)
    if dev == "auto":
        return torch.device("cuda", local_rank) if n else torch.device("cpu")
    if dev == "cpu":
        return torch.device("cpu")
    m = re.fullmatch(r"cuda(?::(\d+))?", dev)
    if not m:
        raise ConfigError(f"option --device: expected cpu, cuda, cuda:K or auto, got '{device}'")
    k = int(m.group(1) or 0) + local_rank
    if k >= n:
        raise DeviceError(f"option --device {device}: CUDA device {k} is not available (this machine has {n})")
    return torch.device("cuda", k)
