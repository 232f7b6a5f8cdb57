"""Experiment: what to deploy on each board (reports/design_space.md).

Per board: every candidate of per-layer bits x channel pruning folded exactly on the board; the
candidates that can reach the accuracy-vs-fps front fine-tuned (short, then full for the better
half); the front and two recommended designs, whose foldings pass FINN's build preparation. The
method is ``pynqrepro.study.design_space``; ``pynqrepro explore`` and ``pynqrepro report
design_space`` record the same rows.
"""

import pytest

from pynqrepro.study import design_space
from pynqrepro.study.design_space import dominates


@pytest.mark.study(design_space, trains=True)
@pytest.mark.slow
def test_design_space(setup, results, case):
    measured = design_space.measure(setup, case)
    design_space.tabulate(results, setup, measured)

    exploration = measured.exploration
    trained = [(e.accuracy, e.hardware.est_fps) for e in exploration.full()]
    front = {(e.accuracy, e.hardware.est_fps) for e in exploration.front}
    assert front == {p for p in trained if not any(dominates(q, p) for q in trained)}
    assert [r.rule for r in measured.recommendations] == ["a", "b"]
    assert all(r.hardware.fits for r in measured.recommendations)
