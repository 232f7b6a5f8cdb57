"""CNV on the PYNQ board (reports/board.md): on-board results beside FINN's estimate and the HW graph
executed in Python.

Method: FINN's deployment package of each trained CNV at FINN's published folding (the Vivado
stage's cached build) runs on the board through FINN's driver: top-1 over the whole test set, fps
and latency; the same HW graph executed by FINN in Python classifies the same images. Rows are
built only from results and names, never from the login: host, user and key cannot reach a report.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pynqrepro.board.compare import ACCURACY_TOLERANCE, accuracy_flag
from pynqrepro.board.results import BoardResult
from pynqrepro.core.errors import UserError
from pynqrepro.core.machine import missing_board
from pynqrepro.core.results import Recorder
from pynqrepro.references import ACCURACY, BOARD_MEASUREMENTS, Scope, select
from pynqrepro.study import Bits, bit_widths

if TYPE_CHECKING:  # the stages are imported where they work, so `pynqrepro report board --help` is quick
    from pynqrepro.finnflow.estimate import NetworkEstimate
    from pynqrepro.pipeline import Network, Setup
    from pynqrepro.synthesis.build import SynthesisBuild

EXPERIMENT = "experiments/test_board.py::test_board"
TABLE = "board"
TITLE = "CNV on the PYNQ board"
NOTES = [
    "On board: FINN's PYNQ driver (finn-plus-driver) on the board; top-1 over the whole test set with "
    "FINN's validation loop, fps = FINN's throughput_test at the throughput batch, latency = its accelerator "
    "runtime at batch 1 (medians over repeats; DMA included, host-side packing excluded).",
    "Python HW graph: the same model's generic HW-layer graph executed by FINN in Python on the same images.",
    f"flag: on-board top-1 differs from the Python HW graph by more than {ACCURACY_TOLERANCE} points.",
    "est.: FINN's analytical estimate at the build's folding and clock (clock / max cycles; critical path).",
]
CASES = bit_widths((1, 1), (1, 2), (2, 2))  # FINN publishes CNV foldings for these
FOLDING = "FINN published"


@dataclass(frozen=True)
class OnBoard:
    case: Bits
    network: Network
    folding: dict
    build: SynthesisBuild
    result: BoardResult
    python_top1: float  # the HW graph executed in Python on the same images
    estimate: NetworkEstimate

    @property
    def top1_difference(self) -> float:
        return self.result.top1 - self.python_top1


def measure(setup: Setup, case: Bits) -> OnBoard:
    from pynqrepro.board.compare import hw_graph_accuracy
    from pynqrepro.board.deploy import run_on_board
    from pynqrepro.pipeline import holdout_images, synthesis_build, trained_network

    if setup.board_login is None:
        raise UserError(missing_board(None))
    network = trained_network(setup, case.weight_bits, case.act_bits)
    folding = network.published_folding()
    build = synthesis_build(setup, network, folding)
    images, labels = holdout_images(setup)
    with tempfile.TemporaryDirectory(prefix="pynqrepro-board-") as work:
        result = run_on_board(setup.board_login, build.deploy_dir, images, labels, Path(work))
    python_top1 = hw_graph_accuracy(setup.store, network.hw, images, labels)
    return OnBoard(case, network, folding, build, result, python_top1, network.estimate(folding))


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


def tabulate(results: Recorder, setup: Setup, run: OnBoard) -> None:
    case, board = run.case, setup.board
    table = results.table(TABLE, title=TITLE, notes=NOTES)
    table.add(board_row(case.model, board.name, FOLDING, run.result, run.python_top1, run.estimate.est_fps,
                        run.estimate.latency_ns / 1e6, f"pynqrepro ({setup.scale.name}, {board.clock_ns} ns)"),
              config={"hw_model": run.network.hw.key, "build": run.build.key, "folding": run.folding})
    bits = dict(weight_bits=case.weight_bits, act_bits=case.act_bits)
    for ref in select(BOARD_MEASUREMENTS, board=board.name, **bits):
        table.add_reference(ref, {"model": case.model, "board": ref.board, "folding": FOLDING,
                                  "fps": ref.measured_fps, "est. fps": ref.estimated_fps, "fclk MHz": ref.clock_mhz},
                            config={"reference": ref.network})
    for ref in select(ACCURACY, board=board.name, scope=Scope.ON_BOARD_ACCURACY, dataset=setup.scale.dataset, **bits):
        table.add_reference(ref, {"model": case.model, "board": ref.board, "on-board top-1 %": ref.top1},
                            config={"reference": ref.model})
