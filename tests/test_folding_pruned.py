"""How a pruned network folds: the sweep budget (the board's when the dense network fits, else the
smallest LUT grid budget) and which MVAUs are conv layers."""

import numpy as np
import pytest

from pynqrepro.core.boards import get_board
from pynqrepro.core.errors import UserError
from pynqrepro.folding import costmodel
from pynqrepro.folding import pruned
from pynqrepro.folding.optimise import board_budget, optimise, smallest_lut_budget
from pynqrepro.folding.space import Group
from pynqrepro.folding.pruned import describe_budget, fitting_budget, lut_budget

BOARD = get_board("pynq-z1")  # 53,200 LUT, 280 BRAM18


def group(name: str, *candidates) -> Group:
    """A decision whose candidates are (cycles, LUT, BRAM18)."""
    cycles, lut, bram = (np.asarray(c, dtype=np.int64) for c in zip(*candidates))
    zeros = np.zeros_like(cycles)
    return Group(name, [], {}, costmodel.Costs(cycles, lut, bram, zeros, zeros), {})


def test_dense_that_fits_keeps_the_board_budget():
    groups = [group("a", (100, 20_000, 10), (50, 40_000, 10)), group("b", (80, 5_000, 0))]
    assert fitting_budget(groups, BOARD, 0.85) == board_budget(BOARD, 0.85)


def test_dense_too_big_gets_smallest_fitting_lut_budget_on_the_grid(monkeypatch):
    # leanest folding: 60,000 + 10,000 LUT = 1.316 x device -> 1.35 x device on the 0.05 grid
    groups = [group("a", (100, 60_000, 10), (50, 90_000, 10)), group("b", (80, 10_000, 0))]
    searches = []

    def counted(*args):
        searches.append(args)
        return smallest_lut_budget(*args)

    monkeypatch.setattr(pruned, "smallest_lut_budget", counted)
    budget = fitting_budget(groups, BOARD, 0.85)
    assert len(searches) == 1  # one search says both that the board's budget is too small and what fits
    assert budget.lut_ratio == 1.35 and budget.LUT == int(BOARD.luts * 1.35)
    assert (budget.BRAM_18K, budget.DSP) == (BOARD.bram18, BOARD.dsp)
    assert smallest_lut_budget(groups, budget) == 70_000  # fits 1.35 x device, not 1.30 x (69,160)
    assert optimise(groups, budget).max_cycles == 100  # the faster candidate needs 100,000 LUT
    assert describe_budget(budget, BOARD, 0.85) == "1.35 x LUT (dense does not fit pynq-z1)"
    assert describe_budget(board_budget(BOARD, 0.85), BOARD, 0.85) == "0.85 x LUT"


def test_no_lut_budget_helps_a_bram_bound_network():
    groups = [group("a", (100, 1_000, 300))]
    with pytest.raises(UserError, match="needs 300 BRAM18"):
        fitting_budget(groups, BOARD, 0.85)
    with pytest.raises(UserError, match="LUT ratio 0 is not positive"):
        lut_budget(BOARD, 0)


def test_conv_layers_are_the_mvaus_a_sliding_window_feeds(store):
    """Layer roles come from the graph, not from positions: CNV's six convs, then its three FCs."""
    from pynqrepro.finnflow.hw_build import hw_model_artifact, load_hw_model
    from pynqrepro.folding.pruned import conv_mvau_names

    from cnv_checkpoints import random_cnv_checkpoint

    hw_model = load_hw_model(hw_model_artifact(store, random_cnv_checkpoint(store, 2, 2), BOARD))
    assert conv_mvau_names(hw_model) == [f"MVAU_hls_{i}" for i in range(6)]
