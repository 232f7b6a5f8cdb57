"""Experiment: exact budgeted folding of the whole design FINN builds vs FINN SetFolding, the
study's greedy search and FINN's published foldings, boards x bit widths x LUT ratios
(reports/folding.md). The method is ``pynqrepro.study.folding``; ``pynqrepro report folding``
records the same rows."""

import pytest

from pynqrepro.study import folding


@pytest.mark.study(folding)
def test_folding(setup, results, case):
    comparison = folding.measure(setup, case)
    folding.tabulate(results, setup, comparison)

    exact, budget = comparison.exact, comparison.budget
    speedup = comparison.speedup_over_setfolding()
    assert speedup is None or speedup >= 1.0, "SetFolding beat the exact optimiser"
    for method, found in exact.items():  # every optimiser row fits its budget's whole design, by FINN's own estimate
        assert found.whole_design and found.fits(comparison.calibrated if method == folding.CALIBRATED_ROW else budget)
    if folding.CALIBRATED_ROW in exact and folding.COMPARED_IN in exact:  # the same space under its own budget
        tighter = all(getattr(comparison.calibrated, r) <= getattr(budget, r) for r in ("LUT", "BRAM_18K", "DSP"))
        assert not tighter or exact[folding.CALIBRATED_ROW].max_cycles >= exact[folding.COMPARED_IN].max_cycles
        assert comparison.finn_build[method].agrees, (method, comparison.finn_build[method].cell())
    # every exact JSON (the rows' and the recommended one) passes FINN's build preparation, code generation included
    rejected = {name: check.rejected for name, check in comparison.finn_build.items() if not check.passes}
    assert not rejected, f"FINN's build preparation rejects: {rejected}"
    if "exact+LUTRAM" in exact:  # each space contains the one before it: never slower
        assert exact["exact+all FINN options"].max_cycles <= exact["exact+LUTRAM"].max_cycles
    if folding.NO_CONVERTERS in exact:  # forbidding DWCs can only cost speed
        assert exact[folding.NO_CONVERTERS].converters == 0
        assert exact[folding.NO_CONVERTERS].max_cycles >= exact[folding.COMPARED_IN].max_cycles
    if folding.COMPARED_IN in exact:  # counting FINN's insertions can only cost speed
        assert exact[folding.COMPARED_IN].max_cycles >= comparison.compute_only.max_cycles
    for method in comparison.methods:  # baselines are judged on their whole design too
        assert method.folding is None or method.folding.whole_design, method.name
    # where a simple folding fits, the exact search found one (its UserError is no mere note) and is no slower
    baseline = {method.name: method.folding for method in comparison.methods}
    ones = baseline["all PE=SIMD=1"]
    if ones is not None and ones.fits(budget):  # PE = SIMD = 1 lies in the "exact" space
        assert "exact" in exact, "PE = SIMD = 1 fits, but the exact search found no folding"
        assert exact["exact"].max_cycles <= ones.max_cycles
    published = baseline.get("FINN published")
    if published is not None and published.fits(budget):
        assert exact, "FINN's published folding fits, but no exact search found a folding"
        assert min(found.max_cycles for found in exact.values()) <= published.max_cycles, "FINN published beat exact"
