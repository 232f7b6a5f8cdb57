"""CUDA's deterministic mode: the settings under which a GPU training gives the same weights every
time, so a run resumed from its checkpoint ends where the uninterrupted run does (on the CPU that
holds without them, per (seed, epoch) and thread count).

What breaks it on a GPU, and what the mode does instead:
- cuDNN autotuning (``cudnn.benchmark``) picks the fastest convolution algorithm per process by
  timing, so two processes may pick different ones: off, and ``cudnn.deterministic`` on.
- Kernels that accumulate with atomics (some backward passes, scatter/index adds): PyTorch's
  deterministic algorithms (``torch.use_deterministic_algorithms``; an op with no deterministic
  variant warns rather than stopping a days-long run).
- cuBLAS splits reductions over a workspace whose use varies: ``CUBLAS_WORKSPACE_CONFIG=:4096:8``
  (NVIDIA's documented setting; a valid value the user set is kept).
- Fused Adam (one multi-tensor kernel): the single-tensor Adam step instead.
"""

import os

import torch

CUBLAS_ENV = "CUBLAS_WORKSPACE_CONFIG"
CUBLAS_DETERMINISTIC = (":4096:8", ":16:8")  # the values cuBLAS documents as deterministic


def apply_kernel_settings(deterministic: bool, device: torch.device) -> dict:
    """Set the process's CUDA kernel choices for a training on ``device``; returns what was set
    (nothing on a CPU, which is deterministic as it is)."""
    if device.type != "cuda":
        return {}
    if not deterministic:
        torch.backends.cudnn.benchmark = True  # batches keep one shape: autotuned kernels pay off
        return {"cudnn.benchmark": True}
    if os.environ.get(CUBLAS_ENV) not in CUBLAS_DETERMINISTIC:
        os.environ[CUBLAS_ENV] = CUBLAS_DETERMINISTIC[0]  # read by cuBLAS when its handle is created
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True, warn_only=True)
    return {"cudnn.benchmark": False, "cudnn.deterministic": True, "deterministic_algorithms": True,
            CUBLAS_ENV: os.environ[CUBLAS_ENV]}


def adam_kernel(fused: bool, deterministic: bool) -> dict:
    """``torch.optim.Adam``'s implementation keywords: fused where the config asks and the mode
    allows, the single-tensor loop in deterministic mode."""
    if deterministic:
        return {"fused": None, "foreach": False}
    return {"fused": True if fused else None}
