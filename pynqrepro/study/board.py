"""Rows of reports/board.md: on-board results beside FINN's estimate and the HW graph in Python.

Built only from results and names, never from the login: host, user and key cannot reach a report.
"""

from pynqrepro.board.compare import ACCURACY_TOLERANCE, accuracy_flag
from pynqrepro.board.results import BoardResult

NOTES = [
    "On board: FINN's PYNQ driver (finn-plus-driver) on the board; top-1 over the whole test set with "
    "FINN's validation loop, fps = FINN's throughput_test at the throughput batch, latency = its accelerator "
    "runtime at batch 1 (medians over repeats; DMA included, host-side packing excluded).",
    "Python HW graph: the same model's generic HW-layer graph executed by FINN in Python on the same images.",
    f"flag: on-board top-1 differs from the Python HW graph by more than {ACCURACY_TOLERANCE} points.",
    "est.: FINN's analytical estimate at the build's folding and clock (clock / max cycles; critical path).",
]


def board_row(model: str, board: str, folding: str, result: BoardResult, python_top1: float,
              est_fps: float, est_latency_ms: float, source: str) -> dict:
    return {
        "model": model, "board": board, "folding": folding,
        "on-board top-1 %": round(result.top1, 2), "Python HW graph top-1 %": round(python_top1, 2),
        "flag": accuracy_flag(result.top1, python_top1), "test images": result.num_samples,
        "fps": round(result.fps, 1), "est. fps": round(est_fps, 1),
        "latency ms": round(result.latency_ms, 3), "est. latency ms": round(est_latency_ms, 3),
        "fclk MHz": result.fclk_mhz, "source": source,
    }
