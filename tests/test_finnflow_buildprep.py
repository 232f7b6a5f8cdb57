"""Emitted foldings pass the Python part of FINN's build preparation (every builder transformation
before the first Xilinx tool) for CNV 1/2/4/8-bit and the bnn_pynq TFC/SFC/LFC MLPs, and FINN's
estimate of the graph it prepares is our whole design."""

import dataclasses

import pytest

from pynqrepro.core.errors import UserError
from pynqrepro.finnflow.buildprep import prepare_build
from pynqrepro.folding import costmodel as cm
from pynqrepro.folding.optimise import board_budget, optimise, smallest_lut_budget
from pynqrepro.folding.space import SpaceOptions
from pynqrepro.folding.wholedesign import build_design

import hw_models
from hw_models import PYNQ_Z1


def fastest_fitting(model):
    """The whole-design optimum on the Pynq-Z1 (MVAU weights may go to LUTRAM), or, for a network
    no LUT ratio of the board fits (8-bit CNV), at the smallest LUT budget that fits it."""
    design = build_design(model, PYNQ_Z1, SpaceOptions(choose_ram_style=True))
    budget = board_budget(PYNQ_Z1)
    try:
        return optimise(design, budget), budget
    except UserError:
        budget = dataclasses.replace(budget, LUT=smallest_lut_budget(design, budget))
        return optimise(design, budget), budget


def check_prepared(model) -> None:
    folding, budget = fastest_fitting(model)
    assert folding.fits(budget)
    prepared = prepare_build(model, folding.config(), PYNQ_Z1)
    dmas = [[n.op_type for n in p.graph.node] for p in prepared.partitions.values()]
    assert len(dmas) == 3 and dmas[0] == ["IODMA_hls"] and dmas[-1] == ["IODMA_hls"]  # input, accelerator, output
    assert any(op.startswith("StreamingFIFO") for op in dmas[1])
    performance = prepared.estimate_reports["estimate_network_performance.json"]
    assert performance["max_cycles"] == folding.max_cycles
    compute = prepared.estimate_reports["estimate_layer_resources.json"]["total"]
    assert all(compute[r] == folding.compute_total(r) for r in cm.RESOURCES)
    finn = prepared.resources(PYNQ_Z1.part)
    for r in cm.RESOURCES:  # FINN's estimate of the stitched graph, plus the shell FINN does not estimate
        assert sum(int(v[r]) for v in finn.values()) + folding.insertions.shell.resource(r) == folding.total(r)
    assert len([n for n in prepared.inserted() if n.role == "converter"]) == folding.converters
    assert set(prepared.fifo_sizing["fifo_depths"].values()) == {2}


@pytest.mark.parametrize("bits", [2, pytest.param(1, marks=pytest.mark.slow), pytest.param(4, marks=pytest.mark.slow),
                                  pytest.param(8, marks=pytest.mark.slow)])
def test_cnv_folding_passes_finn_build_preparation(store, bits):
    check_prepared(hw_models.cnv(store, bits))


@pytest.mark.parametrize("name", ["tfc_2w2a", pytest.param("sfc_1w1a", marks=pytest.mark.slow),
                                  pytest.param("lfc_1w2a", marks=pytest.mark.slow)])
def test_mlp_folding_passes_finn_build_preparation(store, name):
    check_prepared(hw_models.mlp(store, name))


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
