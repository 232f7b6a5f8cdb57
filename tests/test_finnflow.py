"""The FINN estimate flow on an untrained CNV (random weights, randomised BatchNorm statistics)."""

import dataclasses
import json
import shutil

import numpy as np
import pytest
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from pynqrepro.core.boards import get_board
from pynqrepro.core.errors import UserError
from pynqrepro.finnflow.hw_build import hw_model_artifact, load_hw_model
from pynqrepro.finnflow.estimate import FoldingEvaluator, estimate
from pynqrepro.finnflow.export import load_cnv
from pynqrepro.finnflow.finn_setup import builder_steps
from pynqrepro.finnflow.foldconfig import all_ones_folding, apply_folding, published_folding
from pynqrepro.finnflow.verify import FINN_STAGES, stored_verification, verify
from pynqrepro.training.checkpoint import save_checkpoint
from pynqrepro.training.config import TrainConfig

from cnv_checkpoints import random_cnv_checkpoint

PYNQ_Z1 = get_board("pynq-z1")


@pytest.fixture(scope="module")
def w2a2(store):
    checkpoint = random_cnv_checkpoint(store, 2, 2)
    return checkpoint, hw_model_artifact(store, checkpoint, PYNQ_Z1)


@pytest.fixture(scope="module")
def hw_model(w2a2):
    return load_hw_model(w2a2[1])


def test_builder_steps_import_without_vivado():
    assert "step_streamline" in builder_steps().build_dataflow_step_lookup


def test_hw_model_is_specialised_cnv_dataflow(hw_model):
    op_types = [node.op_type for node in hw_model.graph.node]
    assert op_types[0] == "Thresholding_rtl"  # uint8 input quantiser
    assert op_types[-1] == "LabelSelect_hls"  # TopK(1) post-processing
    assert op_types.count("MVAU_hls") == 9
    assert all(t.endswith(("_hls", "_rtl")) for t in op_types)


def test_hw_model_artifact_is_reused(store, w2a2):
    checkpoint, artifact = w2a2
    again = hw_model_artifact(store, checkpoint, PYNQ_Z1)
    assert again.path == artifact.path
    assert hw_model_artifact(store, checkpoint, get_board("ultra96")).key != artifact.key


def test_mvau_cycles_are_finn_formula(hw_model):
    """exp cycles of an MVAU = MH/PE * MW/SIMD * output pixels (FINN's MVAU.get_exp_cycles)."""
    folded = apply_folding(hw_model, None)
    result = estimate(folded, PYNQ_Z1.part, clock_ns=5.0)
    for layer in result.layers:
        if layer.op_type == "MVAU_hls":
            pixels = int(np.prod(getCustomOp(folded.get_node_from_name(layer.name)).get_nodeattr("numInputVectors")))
            assert layer.cycles == layer.mh // layer.pe * layer.mw // layer.simd * pixels
    assert result.max_cycles == max(layer.cycles for layer in result.layers)
    assert result.bottleneck == max(result.layers, key=lambda layer: layer.cycles).name
    assert result.est_fps == pytest.approx(2e8 / result.max_cycles)


def test_published_w2a2_folding(hw_model):
    """FINN's w2a2 folding on finn-plus's graph: conv SWGs renamed, MVAU bottleneck as published."""
    folding = published_folding(hw_model, 2, 2)
    result = estimate(apply_folding(hw_model, folding), PYNQ_Z1.part)
    by_name = {layer.name: layer for layer in result.layers}
    assert (by_name["MVAU_hls_1"].pe, by_name["MVAU_hls_1"].simd) == (16, 16)
    # each conv SWG streams as many channels per cycle as its MVAU consumes
    for node in hw_model.graph.node:
        if node.op_type.startswith("ConvolutionInputGenerator") and not getCustomOp(node).get_nodeattr("depthwise"):
            consumer = hw_model.find_consumer(node.output[0])
            assert by_name[node.name].simd == by_name[consumer.name].simd
    assert result.bottleneck.startswith("MVAU_hls")
    assert 0 < result.totals["lut"] < PYNQ_Z1.luts


def test_evaluator_equals_finn_path(hw_model):
    """The fast evaluator (one bit-width minimisation) gives FINN's full-path numbers."""
    evaluator = FoldingEvaluator(hw_model, PYNQ_Z1.part)
    for folding in (published_folding(hw_model, 2, 2), all_ones_folding(hw_model), {}):
        full_model = apply_folding(hw_model, folding)
        assert evaluator.evaluate(folding) == estimate(full_model, PYNQ_Z1.part)
        for node in full_model.graph.node:
            for tensor in list(node.input) + list(node.output):
                assert evaluator.model.get_tensor_datatype(tensor) == full_model.get_tensor_datatype(tensor)


def test_folding_unknown_node_is_user_error(hw_model):
    with pytest.raises(UserError, match=r"unknown node\(s\) MVAU_hls_42.*MVAU_hls_0"):
        apply_folding(hw_model, {"MVAU_hls_42": {"PE": 2}})


@pytest.mark.parametrize("pe", [3, 0, 2.0, "2", True], ids=repr)
def test_folding_illegal_pe_lists_legal_values(hw_model, pe):
    """Any PE that is not a positive integer dividing its dimension, bool included (True is an int)."""
    with pytest.raises(UserError, match=rf"MVAU_hls_0 PE={pe} \(legal: 1, 2, 4, 8, 16, 32, 64\).*MVAU_hls_1 SIMD=7"):
        apply_folding(hw_model, {"MVAU_hls_0": {"PE": pe}, "MVAU_hls_1": {"SIMD": 7}})


def test_folding_unknown_attribute_is_user_error(hw_model):
    with pytest.raises(UserError, match="MVAU_hls_0 has no attribute PEE"):
        apply_folding(hw_model, {"MVAU_hls_0": {"PEE": 2}})


def test_depthwise_swg_must_match_pool(hw_model):
    with pytest.raises(UserError, match="ConvolutionInputGenerator_rtl_2 SIMD=2 but Pool_hls_0 PE=1"):
        apply_folding(hw_model, {"ConvolutionInputGenerator_rtl_2": {"SIMD": 2}, "Pool_hls_0": {"PE": 1}})


def test_checkpoint_of_other_architecture_is_user_error(tmp_path):
    small = TrainConfig(2, 2, conv_channels=(32, 32, 64, 64, 128, 128))
    save_checkpoint(tmp_path / "checkpoint.tar",
                    {"state_dict": TrainConfig(2, 2).build_model().state_dict(), "config": small.to_dict()})
    with pytest.raises(UserError, match="does not fit CNV"):
        load_cnv(tmp_path)


@pytest.fixture(scope="module")
def digits():
    from pynqrepro.data.digits import load_digits32

    return load_digits32()[2][:8]


def test_verify_all_stages_agree_integer_stages_bit_exact(w2a2, digits):
    checkpoint, artifact = w2a2
    result = verify(load_cnv(checkpoint.path), artifact, digits, chunk=3)
    assert [s.stage for s in result.stages] == ["qonnx", "finn_tidy", "streamlined", "hw_generic"]
    assert all(s.agree == s.total == 8 for s in result.stages)
    assert result.stages[0].max_logit_diff < 1e-4 and result.stages[1].max_logit_diff < 1e-4
    hw = result.stages[-1]
    assert (hw.exact, hw.exact_reference, hw.first_difference) == (8, "streamlined", None)
    assert result.first_divergence is None and result.first_inexact is None
    assert result.exactness() == "hw_generic 8/8 = streamlined" and result.seconds > 0


def _broken_copy(artifact, tmp_path, stage: str, node_index: int):
    """A copy of the HW model artifact whose ``stage`` graph has MatMul/MVAU ``node_index``'s
    weights negated."""
    shutil.copytree(artifact.path, tmp_path / "copy")
    broken = dataclasses.replace(artifact, path=tmp_path / "copy")
    model = ModelWrapper(str(broken.file(FINN_STAGES[stage])))
    node = [n for n in model.graph.node if n.op_type in ("MatMul", "MVAU")][node_index]
    model.set_initializer(node.input[1], -model.get_initializer(node.input[1]))
    model.save(str(broken.file(FINN_STAGES[stage])))
    return broken, node.name


def test_verify_names_first_diverging_stage(w2a2, digits, tmp_path):
    """A streamlined model with its last layer's weights negated diverges there, not later."""
    checkpoint, artifact = w2a2
    broken, _ = _broken_copy(artifact, tmp_path, "streamlined", -1)
    assert verify(load_cnv(checkpoint.path), broken, digits).first_divergence == "streamlined"


def test_verify_names_first_node_that_is_not_bit_exact(w2a2, digits, tmp_path):
    """A HW graph with one conv MVAU's weights negated differs from the streamlined graph first
    at that MVAU's output, whatever the classes do."""
    checkpoint, artifact = w2a2
    broken, name = _broken_copy(artifact, tmp_path, "hw_generic", 3)
    result = verify(load_cnv(checkpoint.path), broken, digits)
    inexact = result.first_inexact
    assert inexact.stage == "hw_generic" and inexact.exact < inexact.total
    assert name == "MVAU_3"
    assert inexact.first_difference.startswith("image 0: MVAU_3 (MVAU) output ")
    assert "first difference: image 0: MVAU_3 (MVAU)" in result.exactness()


def test_verify_rejects_float_images(w2a2, digits):
    with pytest.raises(UserError, match="uint8 N x 3 x 32 x 32"):
        verify(load_cnv(w2a2[0].path), w2a2[1], digits.astype(np.float32))


def test_stored_verification_runs_once_per_images(store, w2a2, digits, monkeypatch):
    import importlib

    verify_module = importlib.import_module("pynqrepro.finnflow.verify")  # the package exports verify()
    checkpoint, artifact = w2a2
    first = stored_verification(store, checkpoint, artifact, digits[:4])
    monkeypatch.setattr(verify_module, "verify", lambda *args: pytest.fail("verified again"))
    assert stored_verification(store, checkpoint, artifact, digits[:4]) == first
    with pytest.raises(UserError, match="uint8"):
        stored_verification(store, checkpoint, artifact, digits[:4].astype(np.int64))


def test_cli_estimate_published_folding(w2a2, hw_model, store, capsys):
    from pynqrepro.cli import main

    checkpoint = w2a2[0].file("checkpoint.tar")
    assert main(["estimate", str(checkpoint), "--folding", "finn:w2a2", "--store-dir", str(store.root), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["bottleneck"].startswith("MVAU_hls") and out["est_fps"] == pytest.approx(1e8 / out["max_cycles"])
    # the whole design beside it: FINN's estimate after its DWCs/FIFOs, plus the shell, is what we budget
    from pynqrepro.folding import baselines

    # FINN's published folding as the folding study judges it: its ram_style/resType settings too
    published = baselines.from_applied_config(hw_model, PYNQ_Z1, published_folding(hw_model, 2, 2), "FINN published")
    whole = out["whole_design"]
    assert whole["totals"] == {r: published.finn_total(r) for r in ("LUT", "BRAM_18K", "URAM", "DSP")}
    assert out["totals"]["lut"] == published.finn_compute_total("LUT") < whole["totals"]["LUT"]
    assert whole["converters"] == published.converters
    assert "measured" in whole["shell"]


def test_cli_unknown_board_is_one_line_error(capsys):
    from pynqrepro.cli import main

    assert main(["estimate", "missing.tar", "--board", "zedboard"]) == 2
    assert capsys.readouterr().err.strip() == (
        "pynqrepro: error: argument --board: invalid choice: 'zedboard' (choose from 'aup-zu3', 'kv260', 'pynq-z1', "
        "'pynq-z2', 'ultra96', 'zcu104') "
        "(see pynqrepro estimate --help)")
