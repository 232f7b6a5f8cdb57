"""Board stage: FINN's deployment package of each trained CNV at the exact optimiser's folding
beside FINN's published one on the PYNQ board: on-board top-1 over the test set, fps and latency
(reports/board.md) beside FINN's estimate (measured/estimated fps, flagged below 0.95: the FIFOs
stall) and the top-1 of the same HW graph executed in Python, flagged beyond 0.1 points. A design
without a build is a row saying why. The method is ``pynqrepro.study.board``; ``pynqrepro report
board`` records the same rows.

Marked ``vivado`` too: the package is the Vivado stage's (cached) build of the same key."""

import pytest

from pynqrepro.board.compare import ACCURACY_TOLERANCE
from pynqrepro.study import board as on_board


@pytest.mark.study(on_board)
@pytest.mark.vivado  # checked second: without a board, the board's skip reason is shown
@pytest.mark.board
@pytest.mark.slow
def test_board(setup, results, case):
    run = on_board.measure(setup, case)
    on_board.tabulate(results, setup, run)

    if run.result is None:
        assert run.why_not, f"{case.id}: neither run nor a reason"
        return
    assert abs(run.top1_difference) <= ACCURACY_TOLERANCE, \
        f"{case.model}: on-board top-1 {run.result.top1:.2f}% vs Python HW graph {run.python_top1:.2f}%"
