"""Experiment: the study's SIMD-block pruning sweeps and channel pruning (reports/pruning.md).

Per bit width: the dense CNV of this scale, its best folding on the board (the baseline fps), then
both sweeps with fine-tuning, each step's best folding under the same budget. The method is
``pynqrepro.study.pruning``; ``pynqrepro report pruning`` records the same rows.
"""

import pytest

from pynqrepro.study import pruning


@pytest.mark.study(pruning, trains=True)
@pytest.mark.slow
def test_pruning(setup, results, case):
    sweeps = pruning.measure(setup, case)
    pruning.tabulate(results, setup, sweeps)

    assert sweeps.check.first_divergence is None, f"pruned network diverges in FINN at {sweeps.check.first_divergence}"
    assert sweeps.base.fits_board == (sweeps.budget == sweeps.board_limit), (sweeps.budget, sweeps.base)
    # a channel-pruned step is a smaller network: faster; a SIMD-block step skips blocks only at a SIMD
    # dividing its mask's (stock FINN has no block skipping), so it may tie the dense design, never lose
    slower = [(s.method, s.result.step, sweeps.speedup(s)) for s in sweeps.steps
              if sweeps.speedup(s) < 1.0 or (s.method == "channels" and sweeps.speedup(s) == 1.0)]
    assert not slower, f"steps slower than dense (or channel steps without a speed-up): {slower}"
    assert sweeps.drops_beyond(setup.scale.pruning_drop_limits) == []
    # buildable by construction: every row's folding JSON passes FINN's build preparation (code generation
    # included) on its own HW model, and where stock FINN builds the row's network as estimated (dense,
    # channels) FINN's figures of the prepared build are ours
    assert sweeps.build_rejections() == [], "foldings FINN's build preparation rejects"
    assert sweeps.build_disagreements() == [], "stock-FINN foldings whose FINN figures differ from ours"
