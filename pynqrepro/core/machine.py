"""Which stage resources this machine has, and what to do when one is missing.

Each check returns None when the resource is present, else a one-line skip reason that names
what is missing and how to provide it.
"""

import os
import shutil


def missing_gpu() -> str | None:
    import torch

    if torch.cuda.is_available():
        return None
    return "needs a CUDA GPU: none is visible to torch (install a CUDA build of torch on a GPU machine)"


def vivado_path() -> str | None:
    if os.environ.get("XILINX_VIVADO"):
        return os.path.join(os.environ["XILINX_VIVADO"], "bin", "vivado")
    return shutil.which("vivado")


def missing_vivado() -> str | None:
    if vivado_path():
        return None
    return "needs Vivado/Vitis HLS: set XILINX_VIVADO or put vivado on PATH (source settings64.sh)"


BOARD_HOST_ENV = "PYNQ_BOARD_HOST"


def missing_board(board_host: str | None) -> str | None:
    if board_host:
        return None
    return f"needs a PYNQ board: pass --board-host HOST or set {BOARD_HOST_ENV}"
