"""DistributedDataParallel launch, as the study's trainer does it (PyTorch ImageNet-example style).

Three ways in: under ``torchrun`` (RANK / WORLD_SIZE / LOCAL_RANK in the environment); with
``--multiprocessing-distributed``, one spawned process per GPU (or per ``--nproc-per-node`` CPU
process with gloo) and ``--world-size`` counting nodes; or one process started by hand per
``--rank`` of ``--world-size``.
"""

import os
from dataclasses import dataclass, replace

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from pynqrepro.core.errors import UserError
from pynqrepro.training.config import TrainConfig
from pynqrepro.training.trainer import RunOptions, TrainResult, train

BACKENDS = ("nccl", "gloo")


@dataclass(frozen=True)
class DistSpec:
    """Resolved distributed settings; ``world_size`` 1 means a plain single process."""

    world_size: int = 1
    rank: int = 0  # global rank of the first process this launcher starts
    nprocs: int = 1  # processes this launcher spawns
    dist_url: str = "env://"
    backend: str = "gloo"


def resolve(world_size: int = 1, rank: int = 0, dist_url: str = "env://", backend: str | None = None,
            multiprocessing_distributed: bool = False, nproc_per_node: int | None = None) -> DistSpec:
    """Check the study's distributed options and turn them into a DistSpec (UserError if inconsistent)."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ and not multiprocessing_distributed:
        world_size, rank, dist_url = int(os.environ["WORLD_SIZE"]), int(os.environ["RANK"]), "env://"
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    if backend not in BACKENDS:
        raise UserError(f"unknown --dist-backend {backend!r}: choose nccl (GPUs) or gloo (CPU)")
    if backend == "nccl" and not torch.cuda.is_available():
        raise UserError("--dist-backend nccl needs CUDA GPUs and none is visible: use --dist-backend gloo on CPU")
    if world_size < 1:
        raise UserError(f"--world-size must be at least 1, got {world_size}")
    if not 0 <= rank < world_size:
        raise UserError(f"--rank {rank} is outside --world-size {world_size}: use a rank in 0..{world_size - 1}")
    if world_size > 1 or multiprocessing_distributed:
        _check_rendezvous(dist_url)
    if not multiprocessing_distributed:
        return DistSpec(world_size, rank, 1, dist_url, backend)
    gpus = torch.cuda.device_count()
    nprocs = nproc_per_node or gpus or 1
    if backend == "nccl" and nprocs > gpus:
        raise UserError(f"--nproc-per-node {nprocs} exceeds the {gpus} visible GPUs: use at most {gpus}")
    return DistSpec(world_size * nprocs, rank * nprocs, nprocs, dist_url, backend)


def _run_rank(rank: int, cfg: TrainConfig, opts: RunOptions, spec: DistSpec) -> TrainResult:
    dist.init_process_group(spec.backend, init_method=spec.dist_url, world_size=spec.world_size, rank=rank)
    try:
        return train(cfg, replace(opts, rank=rank, world_size=spec.world_size))
    finally:
        dist.destroy_process_group()


def _check_rendezvous(dist_url: str) -> None:
    """A --dist-url torch.distributed can meet at, before any work (torch's own error is a traceback)."""
    scheme = dist_url.partition("://")[0] if "://" in dist_url else ""
    if scheme not in ("env", "tcp", "file"):
        raise UserError(f"--dist-url {dist_url[:80]!r} is not a rendezvous URL: use env:// (with MASTER_ADDR and "
                        f"MASTER_PORT set, as torchrun does), tcp://HOST:PORT or file:///shared/path")
    missing = [name for name in ("MASTER_ADDR", "MASTER_PORT") if scheme == "env" and name not in os.environ]
    if missing:
        raise UserError(f"--dist-url env:// reads the rendezvous from the environment, which lacks "
                        f"{' and '.join(missing)}: export them, start under torchrun, or pass --dist-url tcp://HOST:PORT")


def _worker(local_rank: int, cfg: TrainConfig, opts: RunOptions, spec: DistSpec, queue) -> None:
    result = _run_rank(spec.rank + local_rank, cfg, opts, spec)
    if spec.rank + local_rank == 0:
        queue.put(result)


def launch(cfg: TrainConfig, opts: RunOptions, spec: DistSpec = DistSpec()) -> TrainResult | None:
    """Train under ``spec``; returns the result on the launcher that runs rank 0, else None."""
    if spec.world_size == 1:
        return train(cfg, opts)
    if spec.nprocs == 1:
        result = _run_rank(spec.rank, cfg, opts, spec)
        return result if spec.rank == 0 else None
    queue = mp.get_context("spawn").SimpleQueue()
    mp.spawn(_worker, args=(cfg, opts, spec, queue), nprocs=spec.nprocs, join=True)
    return queue.get() if spec.rank == 0 else None
