"""Vivado stage: FINN's full build of the trained CNVs at FINN's published foldings and at the
exact folding optimiser's choice (the study's 85% LUT budget), post-synthesis utilisation and
timing beside FINN's estimates (reports/synthesis.md), with the study's out-of-context runs as
reference rows. The method is ``pynqrepro.study.synthesis``; ``pynqrepro report synthesis`` records
the same rows."""

import pytest

from pynqrepro.study import synthesis


@pytest.mark.study(synthesis)
@pytest.mark.vivado
@pytest.mark.slow
def test_synthesis(setup, results, case):
    syntheses = synthesis.measure(setup, case)
    synthesis.tabulate(results, setup, syntheses)

    board = setup.board
    for built in syntheses.builds:
        system = built.build.system
        assert system.lut <= board.luts and system.bram36 <= board.bram18 / 2, \
            f"{case.model} at {built.folding_name} does not fit {board.name}: {system}"
