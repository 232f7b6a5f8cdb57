"""Vivado stage: FINN's full build of every design the reports stand behind, per bit width the
harness trains: the exact optimiser's folding at the calibrated budget, FINN's published folding,
the best channel-pruned network and the design-space report's recommended designs; post-synthesis
utilisation and timing beside FINN's raw estimate and ours with its calibrated bound
(reports/synthesis.md), with the study's out-of-context runs as reference rows. A design that is
not built is a row that says why. The method is ``pynqrepro.study.synthesis``; ``pynqrepro report
synthesis`` records the same rows."""

import pytest

from pynqrepro.study import synthesis


@pytest.mark.study(synthesis)
@pytest.mark.vivado
@pytest.mark.slow
def test_synthesis(setup, results, case):
    syntheses = synthesis.measure(setup, case)
    synthesis.tabulate(results, setup, syntheses)

    board = setup.board
    assert syntheses.builds, f"{case.id}: no row"
    for built in syntheses.builds:
        assert built.build is not None or built.why_not, f"{built.candidate.name}: neither built nor a reason"
        if built.build is not None:
            system = built.build.system
            assert system.lut <= board.luts and system.bram36 <= board.bram18 / 2, \
                f"{case.model} at {built.candidate.name} does not fit {board.name}: {system}"
