"""CNV on the PYNQ board (reports/board.md): on-board results beside FINN's estimate and the HW graph
executed in Python.

Method: FINN's deployment package of each trained CNV at the exact optimiser's folding and, beside
it, at FINN's published folding (the Vivado stage's cached builds of the same designs) runs on the
board through FINN's driver: top-1 over the whole test set, fps and latency, and measured fps
against the estimate (below 0.95 of it: the minimal FIFOs stall); the same HW graph executed by
FINN in Python classifies the same images. A design without a build (no published folding, nothing
fits) is a row saying why. Rows are built only from results and names, never from the login: host,
user and key cannot reach a report.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pynqrepro.board.compare import ACCURACY_TOLERANCE, accuracy_flag
from pynqrepro.board.measurements import BoardResult
from pynqrepro.core.errors import UserError
from pynqrepro.core.machine import missing_board
from pynqrepro.core.results import Recorder
from pynqrepro.references import ACCURACY, BOARD_MEASUREMENTS, Scope, select
from pynqrepro.study.synthesis import BUILT_BITS, Build, Candidate

if TYPE_CHECKING:  # the stages are imported where they work, so `pynqrepro report board --help` is quick
    from pynqrepro.finnflow.estimate import NetworkEstimate
    from pynqrepro.pipeline import Setup
    from pynqrepro.synthesis.vivado_build import SynthesisBuild

EXPERIMENT = "experiments/test_board.py::test_board"
TABLE = "board"
TITLE = "CNV on the PYNQ board"
STALL_RATIO = 0.95  # measured / estimated fps below this: the pipeline stalls
NOTES = [
    "On board: FINN's PYNQ driver (finn-plus-driver) on the board; top-1 over the whole test set with "
    "FINN's validation loop, fps = FINN's throughput_test at the throughput batch, latency = its accelerator "
    "runtime at batch 1 (medians over repeats; DMA included, host-side packing excluded).",
    "Python HW graph: the same model's generic HW-layer graph executed by FINN in Python on the same images.",
    f"flag: on-board top-1 differs from the Python HW graph by more than {ACCURACY_TOLERANCE} points.",
    "est.: FINN's analytical estimate at the build's folding and clock (clock / max cycles; critical path).",
    f"fps/est.: measured over estimated fps; 'stalls' where it is below {STALL_RATIO:g}: the FIFOs FINN's build "
    "sized (minimal depths, where the folding was searched with them) stall the pipeline.",
    "exact: the optimiser's folding at the calibrated budget (reports/synthesis.md); FINN published: its shipped "
    "folding (W1A1, W1A2, W2A2).",
]
CASES = tuple(Build(w, a, design) for w, a in BUILT_BITS for design in ("exact", "published"))


@dataclass(frozen=True)
class OnBoard:
    case: Build
    candidate: Candidate
    build: SynthesisBuild | None = None  # None: not built, ``why_not`` says why
    result: BoardResult | None = None
    python_top1: float | None = None  # the HW graph executed in Python on the same images
    estimate: NetworkEstimate | None = None
    why_not: str = ""

    @property
    def top1_difference(self) -> float:
        return self.result.top1 - self.python_top1


def measure(setup: Setup, case: Build) -> OnBoard:
    from pynqrepro.board.compare import hw_graph_accuracy
    from pynqrepro.board.deploy import run_on_board
    from pynqrepro.pipeline import holdout_images, synthesis_build
    from pynqrepro.study.synthesis import buildable, candidates

    if setup.board_login is None:
        raise UserError(missing_board(None))
    candidate = candidates(setup, case)[0]
    _, why_not = buildable(setup, candidate)
    if why_not:
        return OnBoard(case, candidate, why_not=why_not)
    network, folding = candidate.network, candidate.folding
    build = synthesis_build(setup, network, folding)
    images, labels = holdout_images(setup)
    with tempfile.TemporaryDirectory(prefix="pynqrepro-board-") as work:
        result = run_on_board(setup.board_login, build.deploy_dir, images, labels, Path(work))
    python_top1 = hw_graph_accuracy(setup.store, network.hw, images, labels)
    return OnBoard(case, candidate, build, result, python_top1, network.estimate(folding))


def stall_flag(measured_fps: float, est_fps: float) -> str:
    """'stalls' where the board runs below ``STALL_RATIO`` of the estimated fps."""
    return "stalls" if measured_fps < STALL_RATIO * est_fps else ""


def board_row(model: str, board: str, folding: str, result: BoardResult, python_top1: float,
              est_fps: float, est_latency_ms: float, source: str) -> dict:
    return {
        "model": model, "board": board, "folding": folding,
        "on-board top-1 %": round(result.top1, 2), "Python HW graph top-1 %": round(python_top1, 2),
        "flag": accuracy_flag(result.top1, python_top1), "test images": result.num_samples,
        "fps": round(result.fps, 1), "est. fps": round(est_fps, 1), "fps/est.": round(result.fps / est_fps, 3),
        "FIFO flag": stall_flag(result.fps, est_fps),
        "latency ms": round(result.latency_ms, 3), "est. latency ms": round(est_latency_ms, 3),
        "fclk MHz": result.fclk_mhz, "source": source,
    }


def tabulate(results: Recorder, setup: Setup, run: OnBoard) -> None:
    case, board, candidate = run.case, setup.board, run.candidate
    table = results.table(TABLE, title=TITLE, notes=NOTES, summary=f"{__name__}:first_screen")
    source = f"pynqrepro ({setup.scale.name}, {board.clock_ns} ns)"
    if run.result is None:
        table.add({"model": case.model, "board": board.name, "folding": candidate.name, "note": run.why_not,
                   "source": source}, config={"folding": candidate.folding})
    else:
        table.add(board_row(case.model, board.name, candidate.name, run.result, run.python_top1,
                            run.estimate.est_fps, run.estimate.latency_ns / 1e6, source),
                  config={"hw_model": candidate.network.hw.key, "build": run.build.key, "folding": candidate.folding})
    if case.design != "published":
        return  # the published figures beside the published folding's row
    bits = dict(weight_bits=case.weight_bits, act_bits=case.act_bits)
    for ref in select(BOARD_MEASUREMENTS, board=board.name, **bits):
        table.add_reference(ref, {"model": case.model, "board": ref.board, "folding": candidate.name,
                                  "fps": ref.measured_fps, "est. fps": ref.estimated_fps,
                                  "fps/est.": round(ref.measured_fps / ref.estimated_fps, 3)
                                  if ref.measured_fps and ref.estimated_fps else None,
                                  "fclk MHz": ref.clock_mhz},
                            config={"reference": ref.network})
    for ref in select(ACCURACY, board=board.name, scope=Scope.ON_BOARD_ACCURACY, dataset=setup.scale.dataset, **bits):
        table.add_reference(ref, {"model": case.model, "board": ref.board, "on-board top-1 %": ref.top1},
                            config={"reference": ref.model})


def first_screen(rows: list[dict]) -> list[str]:
    """board.md's answer: per CNV the exact folding's measured fps beside FINN's published one's,
    with measured/estimated fps and the stall flag."""
    from tabulate import tabulate as render

    from pynqrepro.core.results import is_reference_row

    measured: dict = {}
    for r in rows:
        if not is_reference_row(r) and r.get("fps") not in (None, ""):
            measured.setdefault((r["model"], r["board"]), {})["published" if "published" in r["folding"] else "exact"] = r
    if not measured:
        return []

    def cell(r, key):
        return "" if r is None else r.get(key, "")

    body = []
    for (model, board), pair in sorted(measured.items()):
        exact, published = pair.get("exact"), pair.get("published")
        speedup = (f"{exact['fps'] / published['fps']:.2f}x" if exact and published and published["fps"] else "")
        body.append([model, board, cell(exact, "fps"), cell(exact, "fps/est."), cell(exact, "FIFO flag"),
                     cell(exact, "on-board top-1 %"), cell(published, "fps"), speedup])
    return ["## Exact beside published, measured", "",
            render(body, headers=["CNV", "board", "exact fps", "fps/est.", "flag", "top-1 %", "published fps",
                                  "exact/published"], tablefmt="github", disable_numparse=True)]
