"""Experiment: exact budgeted folding vs FINN SetFolding, the study's greedy search and FINN's
published foldings, boards x bit widths x LUT ratios (reports/folding.md). The method is
``pynqrepro.study.folding``; ``pynqrepro report folding`` records the same rows."""

import pytest

from pynqrepro.study import folding


@pytest.mark.study(folding)
def test_folding(setup, results, case):
    comparison = folding.measure(setup, case)
    folding.tabulate(results, setup, comparison)

    exact = comparison.exact
    speedup = comparison.speedup_over_setfolding()
    assert speedup is None or speedup >= 1.0, "SetFolding beat the exact optimiser"
    for method, found in exact.items():
        assert found.fits(comparison.budget), method
        assert comparison.finn_disagreements[method] == [], method
    if "exact+LUTRAM" in exact:  # each space contains the one before it: never slower
        assert exact["exact+all FINN options"].max_cycles <= exact["exact+LUTRAM"].max_cycles
