"""DistributedDataParallel (DDP) process groups (devices: :mod:`gcml.device`).

Three ways to run on several processes, all ending in the same :func:`gcml.training.loop.train` code:

* ``gcml train ... --gpus N`` (or ``--nproc N`` on CPU): gcml spawns N local processes with
  :func:`torch.multiprocessing.spawn`; rank r uses ``cuda:r`` with NCCL, or the CPU with gloo.
* ``torchrun --nproc-per-node N -m gcml train ...``: torchrun sets ``RANK``, ``WORLD_SIZE``,
  ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; gcml joins that group (multi-node included).
* SLURM (``srun gcml train ...``): ``SLURM_PROCID``, ``SLURM_NTASKS`` and ``SLURM_LOCALID`` give rank,
  world size and local rank; ``MASTER_ADDR`` is taken from the environment or the first host of
  ``SLURM_JOB_NODELIST``, ``MASTER_PORT`` from the environment or 29500.

The GPU of a process: ``cuda:LOCAL_RANK`` when it sees all the node's GPUs (torchrun), ``cuda:0`` when
it sees one (``srun --gpus-per-task 1`` sets CUDA_VISIBLE_DEVICES per task); see :func:`gcml.device.local_cuda_index`.
See docs/cluster.md.

Only rank 0 writes files.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in a (possibly single-process) run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = ""
    launched_by: str = "single"  # single | spawn | torchrun | slurm

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def env_from_environment() -> DistEnv | None:
    """The DDP position set by torchrun or SLURM, or None when this process was not launched by either."""
    e = os.environ
    if "RANK" in e and "WORLD_SIZE" in e and int(e["WORLD_SIZE"]) > 1:
        return DistEnv(rank=int(e["RANK"]), world_size=int(e["WORLD_SIZE"]),
                       local_rank=int(e.get("LOCAL_RANK", 0)), launched_by="torchrun")
    if "SLURM_PROCID" in e and int(e.get("SLURM_NTASKS", "1")) > 1:
        e.setdefault("MASTER_ADDR", _first_slurm_host(e.get("SLURM_JOB_NODELIST", e.get("SLURM_NODELIST", ""))))
        e.setdefault("MASTER_PORT", "29500")
        return DistEnv(rank=int(e["SLURM_PROCID"]), world_size=int(e["SLURM_NTASKS"]),
                       local_rank=int(e.get("SLURM_LOCALID", 0)), launched_by="slurm")
    return None


def _first_slurm_host(nodelist: str) -> str:
    """First host of a SLURM node list such as ``gpu[003-006,010],cpu01`` -> ``gpu003``."""
    s = nodelist.strip()
    if not s:
        return "127.0.0.1"
    m = re.match(r"([^,\[]+)(?:\[([^\]]+)\])?", s)
    if not m:
        return s.split(",")[0]
    base, rng = m.group(1), m.group(2)
    if not rng:
        return base
    first = rng.split(",")[0].split("-")[0]
    return base + first


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def init_process_group(env: DistEnv, device: torch.device) -> DistEnv:
    """Join the process group (NCCL for CUDA devices, gloo for CPU)."""
    import torch.distributed as dist

    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=env.rank, world_size=env.world_size)
    return DistEnv(env.rank, env.world_size, env.local_rank, backend, env.launched_by)


def destroy_process_group() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(values: list[float], device: torch.device, env: DistEnv) -> list[float]:
    """Sum a few floats over all ranks (identity in a single process)."""
    if not env.distributed:
        return list(values)
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return [float(v) for v in t.cpu()]


def all_gather_objects(obj, env: DistEnv) -> list:
    """Every rank's ``obj`` in rank order (``[obj]`` in a single process)."""
    if not env.distributed:
        return [obj]
    import torch.distributed as dist

    parts: list = [None] * env.world_size
    dist.all_gather_object(parts, obj)
    return parts


def spawn(fn, nprocs: int, args: tuple, *, poll=None) -> None:
    """Run ``fn(rank, nprocs, *args)`` in ``nprocs`` fresh processes on this machine.

    ``poll`` is called about five times a second while they run (the CLI uses it to draw progress
    sent by rank 0 through a queue). An exception in any process is re-raised here.
    """
    import torch.multiprocessing as mp

    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ["MASTER_PORT"] = os.environ.get("GCML_MASTER_PORT", str(free_port()))
    ctx = mp.spawn(fn, args=(nprocs, *args), nprocs=nprocs, join=False)
    try:
        while not ctx.join(timeout=0.2):
            if poll is not None:
                poll()
    except KeyboardInterrupt:  # Ctrl-C: the processes got it too; make sure none is left
        for p in ctx.processes:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
        raise
    if poll is not None:
        poll()
