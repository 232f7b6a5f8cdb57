"""Emitted foldings pass the Python part of FINN's build preparation (every builder transformation
before the first Xilinx tool) for CNV 1/2/4/8-bit, the bnn_pynq TFC/SFC/LFC MLPs and every board's
``pynqrepro fold``, and FINN's estimate of the graph it prepares is our whole design."""

import dataclasses
import json
import math

import pytest
from qonnx.custom_op.registry import getCustomOp

from pynqrepro.core.boards import BOARDS, get_board
from pynqrepro.core.errors import UserError
from pynqrepro.finnflow.buildprep import prepare_build
from pynqrepro.folding import costmodel, outputs
from pynqrepro.folding.optimise import board_budget, optimise, smallest_lut_budget
from pynqrepro.folding.space import SpaceOptions
from pynqrepro.folding.wholedesign import build_design

import hw_models
from hw_models import PYNQ_Z1


def fastest_fitting(model, board=PYNQ_Z1):
    """The whole-design optimum on ``board`` (MVAU weights may go to LUTRAM), or, for a network no
    LUT ratio of the board fits (8-bit CNV on the Pynq-Z1), at the smallest LUT budget that fits it."""
    design = build_design(model, board, SpaceOptions(choose_ram_style=True))
    budget = board_budget(board)
    try:
        return optimise(design, budget), budget
    except UserError:
        budget = dataclasses.replace(budget, LUT=smallest_lut_budget(design, budget))
        return optimise(design, budget), budget


def assert_finn_prepares(model, folding, budget, board) -> None:
    """``folding``'s JSON passes FINN's build preparation for ``board``: FINN's IODMAs at the board's
    native AXI width around the accelerator, FINN's estimates of the folded graph equal to ours, and
    FINN's estimate of the stitched graph plus the shell equal to our whole design, within ``budget``."""
    from finn.util.basic import pynq_native_port_width

    assert folding.fits(budget)
    prepared = prepare_build(model, folding.config(), board)
    partitions = list(prepared.partitions.values())
    dmas = [[n.op_type for n in p.graph.node] for p in partitions]
    assert len(dmas) == 3 and dmas[0] == ["IODMA_hls"] and dmas[-1] == ["IODMA_hls"]  # input, accelerator, output
    assert any(op.startswith("StreamingFIFO") for op in dmas[1])
    # FINN's AXI width for the board: the input DMA's, a divisor of it for the 8-bit class index out
    native = pynq_native_port_width[board.finn_board]
    widths = [getCustomOp(partitions[i].graph.node[0]).get_nodeattr("intfWidth") for i in (0, -1)]
    assert widths[0] == native and native % widths[1] == 0
    assert prepared.max_cycles() == folding.max_cycles
    compute = prepared.estimate_reports["estimate_layer_resources.json"]["total"]
    assert all(compute[r] == folding.finn_compute_total(r) for r in costmodel.RESOURCES)
    finn = prepared.resources(board.part)
    for r in costmodel.RESOURCES:  # FINN's estimate of the stitched graph, plus the shell FINN does not estimate
        assert sum(int(v[r]) for v in finn.values()) + board.shell.resource(r) == folding.finn_total(r)
        assert prepared.whole_design(board)[r] == folding.finn_total(r)
    assert len([n for n in prepared.inserted() if n.role == "converter"]) == folding.converters
    assert set(prepared.fifo_sizing["fifo_depths"].values()) == {2}


def check_prepared(model, board=PYNQ_Z1) -> None:
    assert_finn_prepares(model, *fastest_fitting(model, board), board)


@pytest.mark.parametrize("bits", [2, pytest.param(1, marks=pytest.mark.slow), pytest.param(4, marks=pytest.mark.slow),
                                  pytest.param(8, marks=pytest.mark.slow)])
def test_cnv_folding_passes_finn_build_preparation(store, bits):
    check_prepared(hw_models.cnv(store, bits))


@pytest.mark.parametrize("name", ["tfc_2w2a", pytest.param("sfc_1w1a", marks=pytest.mark.slow),
                                  pytest.param("lfc_1w2a", marks=pytest.mark.slow)])
def test_mlp_folding_passes_finn_build_preparation(store, name):
    check_prepared(hw_models.mlp(store, name))


@pytest.mark.parametrize("board", BOARDS)
def test_each_boards_fold_passes_finn_build_preparation(store, tmp_path, capsys, board):
    """``pynqrepro fold --board B`` on the MLP FINN specialised for B's part, at a LUT budget that
    binds (the whole design at full speed does not fit it): its JSON is the whole-design optimum and
    FINN's build preparation for B (its IODMA width, its estimates, plus B's shell) agrees with it."""
    from pynqrepro.cli import main

    board = get_board(board)
    model = hw_models.mlp(store, "tfc_2w2a", board)
    design = build_design(model, board)
    fastest = optimise(design, board_budget(board))
    ratio = math.floor(0.8 * fastest.total("LUT") / board.luts * 1000) / 1000  # 80% of what full speed takes
    budget = board_budget(board, ratio)
    path, out = tmp_path / "hw_model.onnx", tmp_path / "folding.json"
    model.save(str(path))
    assert main(["fold", "--model", str(path), "--board", board.name, "--lut-ratio", str(ratio),
                 "--out", str(out)]) == 0
    assert "whole design" in capsys.readouterr().out
    folding = optimise(design, budget)
    assert json.loads(out.read_text()) == folding.config()
    assert folding.max_cycles > fastest.max_cycles  # the budget binds
    assert_finn_prepares(model, folding, budget, board)


def test_finn_build_check_names_what_differs(store):
    model = hw_models.mlp(store, "tfc_2w2a")
    folding, _ = fastest_fitting(model)
    assert outputs.finn_build_check(model, folding, PYNQ_Z1) == []
    shell = dataclasses.replace(PYNQ_Z1.shell, LUT=PYNQ_Z1.shell.LUT + 1)
    wrong = dataclasses.replace(folding, insertions=dataclasses.replace(folding.insertions, shell=shell))
    total = folding.finn_total("LUT")
    assert outputs.finn_build_check(model, wrong, PYNQ_Z1) == [f"whole design LUT: ours {total + 1} FINN {total}"]


def test_fifo_config_goes_through_finn(store):
    """A fifo_sizing.json-form config is applied as FINN's builder applies it (auto_fifo_depths off)."""
    model = hw_models.mlp(store, "tfc_2w2a")
    first = prepare_build(model, {}, PYNQ_Z1)
    depths = {name: 16 for name in first.fifo_sizing["fifo_depths"]}
    config = {**first.fifo_sizing, "fifo_depths": depths}
    again = prepare_build(model, {}, PYNQ_Z1, fifo_config=config)
    assert set(again.fifo_sizing["fifo_depths"].values()) == {16}


def test_fifo_config_of_another_build_is_user_error(store):
    model = hw_models.mlp(store, "tfc_2w2a")
    config = {"fifo_depths": {"StreamingFIFO_rtl_0": 4}, "impl_style": {}, "ram_style": {}}
    with pytest.raises(UserError, match="rejects this folding or FIFO config: Number of FIFO nodes"):
        prepare_build(model, {}, PYNQ_Z1, fifo_config=config)


def test_reshape_pe_must_divide_both_axes(store):
    """The MLP JSONs of old set Reshape_rtl_0 PE = 784: FINN asserts in InsertFIFO; we say why first."""
    model = hw_models.mlp(store, "tfc_2w2a")
    with pytest.raises(UserError, match=r"Reshape_rtl_0 PE=784 \(legal: 1, 2, 4, 7, 14, 28\)"):
        prepare_build(model, {"Reshape_rtl_0": {"PE": 784}}, PYNQ_Z1)
    prepare_build(model, {"Reshape_rtl_0": {"PE": 28}}, PYNQ_Z1)


def test_unreadable_folding_is_user_error(store, tmp_path):
    (tmp_path / "folding.json").write_text("[1, 2")
    with pytest.raises(UserError, match="cannot read folding"):
        prepare_build(hw_models.mlp(store, "tfc_2w2a"), tmp_path / "folding.json", PYNQ_Z1)
