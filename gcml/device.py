"""Torch devices from the user's ``--device``/``--gpus`` (used by training, evaluation and prediction)."""

from __future__ import annotations

import os
import re

import torch

from gcml.errors import ConfigError, DeviceError


def cuda_count() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def local_cuda_index(local_rank: int, n_visible: int) -> int:
    """The CUDA device index of a process with local rank ``local_rank`` that sees ``n_visible`` GPUs.

    * torchrun, or ``srun`` with all of a node's GPUs visible to each task: one GPU per local rank,
      ``cuda:LOCAL_RANK``.
    * ``srun --gpus-per-task 1`` (or ``--gpu-bind=single:1``, or a CUDA_VISIBLE_DEVICES set per task):
      each process sees only its own GPU, so every local rank uses ``cuda:0``.
    """
    if n_visible <= 0:
        raise DeviceError("no CUDA GPU is visible to this process (CUDA_VISIBLE_DEVICES="
                          f"{os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}); use `device` cpu")
    if local_rank < n_visible:
        return local_rank
    if n_visible == 1:
        return 0
    raise DeviceError(f"local rank {local_rank} but this process sees only {n_visible} CUDA GPUs "
                      f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}); start at most "
                      f"{n_visible} processes per node, or give each process one GPU (srun --gpus-per-task 1)")


def resolve_device(device: str, gpus: int = 0, local_rank: int = 0) -> torch.device:
    """Turn ``device``/``gpus`` (``--device``/``--gpus``) into a torch device; a GPU that is not there is a DeviceError.

    ``local_rank`` is the process's rank on its node (0 in a single process); see :func:`local_cuda_index`.
    """
    n = cuda_count()
    if gpus > n:
        raise DeviceError(f"option `gpus` {gpus}: this machine has {n} CUDA GPU{'s' if n != 1 else ''}; "
                          f"use `gpus` {n} or fewer" + (" (or `nproc` N for CPU processes)" if n == 0 else ""))
    dev = str(device).strip().lower()
    if gpus >= 1:
        if dev not in ("auto", "cuda") and not dev.startswith("cuda"):
            raise ConfigError(f"option `device` {device}: `gpus` {gpus} needs a CUDA device")
        return torch.device("cuda", local_cuda_index(local_rank, n))
    if dev == "auto":
        return torch.device("cuda", local_cuda_index(local_rank, n)) if n else torch.device("cpu")
    if dev == "cpu":
        return torch.device("cpu")
    m = re.fullmatch(r"cuda(?::(\d+))?", dev)
    if not m:
        raise ConfigError(f"option `device`: expected cpu, cuda, cuda:K or auto, got '{device}'")
    if m.group(1) is None:
        return torch.device("cuda", local_cuda_index(local_rank, n))
    k = int(m.group(1)) + (local_cuda_index(local_rank, n) if n else local_rank)
    if k >= n:
        raise DeviceError(f"option `device` {device}: CUDA device {k} is not available (this process sees {n})")
    return torch.device("cuda", k)
