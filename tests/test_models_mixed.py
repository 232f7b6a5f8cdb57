"""Per-layer mixed precision: the CNV, its config and keys, and the flow after training (export, FINN's
HW model, bit-exact verification, channel pruning, the exact folding) at mixed widths."""

import pytest
import torch
from qonnx.custom_op.registry import getCustomOp

from pynqrepro.cli import main
from pynqrepro.core.boards import get_board
from pynqrepro.core.errors import UserError
from pynqrepro.finnflow.hw_build import QONNX_MODEL, hw_model_artifact, load_hw_model
from pynqrepro.finnflow.export import load_cnv
from pynqrepro.finnflow.verify import verify
from pynqrepro.folding.optimise import board_budget, optimise
from pynqrepro.folding.pruned import folding_design
from pynqrepro.models.spec import LAYER_BIT_PRESETS
from pynqrepro.pruning.channels import prune_channels
from pynqrepro.training.config import TrainConfig
from pynqrepro.training.recipes import train_artifact

MIXED = "4/4,2/2,2/2,2/2,4/4,2/2,2/2,4/4,8"
SMALL = dict(conv_channels=(16, 16, 32, 32, 64, 64), fc_features=(64, 64))


@pytest.mark.parametrize("text, match", [
    ("2/2,2/2", "has 2 entries"),
    ("2/2,2/2,2/2,2/2,2/2,2/2,2/2,2/2,2/2", r"entry 9 '2/2' is not W \(the classifier"),
    ("2/2,3/2,2/2,2/2,2/2,2/2,2/2,2/2,2", "entry 2 '3/2' is not W/A"),
    ("2/2,2,2/2,2/2,2/2,2/2,2/2,2/2,2", "entry 2 '2' is not W/A"),
    ("two", "has 1 entries.*or a preset: ends4-mid2"),
])
def test_bad_layer_bits_are_one_line_errors(text, match, capsys):
    with pytest.raises(UserError, match=match):
        TrainConfig(2, 2, layer_bits=text)
    assert main(["train", "--layer-bits", text, "--dataset", "digits"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pynqrepro: error: --layer-bits") and "\n" not in err


def test_layer_bits_with_bit_width_is_one_line_error(capsys):
    assert main(["train", "--layer-bits", MIXED, "--bit-width", "2"]) == 2
    assert "drop --bit-width" in capsys.readouterr().err


def test_uniform_configs_keep_their_keys_and_mixed_ones_get_their_own():
    """A uniform per-layer list is the uniform network: the same key as before the field existed
    (the dict that key was computed from has no ``layer_bits``); a mixed one differs."""
    uniform = TrainConfig(2, 2)
    assert "layer_bits" not in uniform.to_dict()
    assert TrainConfig(8, 8, layer_bits="2/2," * 8 + "2").to_dict() == uniform.to_dict()
    mixed = TrainConfig(1, 1, layer_bits="ends4-mid2")
    assert (mixed.weight_bits, mixed.act_bits, mixed.layer_bits) == (4, 4, LAYER_BIT_PRESETS["ends4-mid2"])
    assert mixed.to_dict()["layer_bits"] == LAYER_BIT_PRESETS["ends4-mid2"]
    assert TrainConfig.from_dict(mixed.to_dict()) == mixed
    assert mixed.name == "CNV_4W4A-" + "2W2A-" * 7 + "4W"


def test_each_layer_quantises_at_its_own_width():
    """Brevitas's own quantised tensors carry the widths: weights per layer, activations per layer."""
    model = TrainConfig(1, 1, layer_bits=MIXED, **SMALL).build_model().eval()
    weights = [int(layer.quant_weight().bit_width) for layer in model.quant_layers()]
    assert weights == [4, 2, 2, 2, 4, 2, 2, 4, 8]
    acts = [int(m.act_quant.bit_width()) for m in model.modules()
            if type(m).__name__ == "QuantIdentity"][1:]  # after the 8-bit input quantiser
    assert acts == [4, 2, 2, 2, 4, 2, 2, 4]
    assert (model.weight_bits, model.act_bits) == (8, 4)


@pytest.fixture(scope="module")
def mixed_trained(store):
    """A small mixed-precision CNV trained a few steps on digits, and its HW model for the Pynq-Z1."""
    config = TrainConfig(1, 1, layer_bits=MIXED, dataset="digits", epochs=1, batch_size=64, augment="none",
                         max_steps=6, **SMALL)
    checkpoint = train_artifact(store, config)
    return checkpoint, hw_model_artifact(store, checkpoint, get_board("pynq-z1"))


def test_mixed_cnv_trains_exports_and_verifies_bit_exactly(mixed_trained):
    from pynqrepro.data.digits import load_digits32
    from qonnx.core.modelwrapper import ModelWrapper

    checkpoint, hw = mixed_trained
    qonnx = ModelWrapper(str(hw.file(QONNX_MODEL)))  # the export's Quant nodes carry each layer's width
    quant_bits = [int(qonnx.get_initializer(n.input[3])) for n in qonnx.graph.node if n.op_type == "Quant"]
    assert sorted(set(quant_bits)) == [2, 4, 8]
    hw_model = load_hw_model(hw)  # FINN's MVAUs take each layer's weight width
    mvaus = [getCustomOp(n) for n in hw_model.graph.node if n.op_type.startswith("MVAU")]
    weights = [m.get_nodeattr("weightDataType") for m in mvaus]
    assert weights == ["INT4", "INT2", "INT2", "INT2", "INT4", "INT2", "INT2", "INT4", "INT8"]
    images = (load_digits32()[2][:8])
    result = verify(load_cnv(checkpoint.path), hw, images)
    assert all(s.agree == s.total == 8 for s in result.stages)
    assert result.first_inexact is None and result.stages[-1].exact == 8


def test_mixed_cnv_prunes_and_folds_per_layer(mixed_trained):
    checkpoint, hw = mixed_trained
    model = load_cnv(checkpoint.path)
    small = prune_channels(model, model.conv_channels, (4, 4, 8, 8, 16, 16), 0.3)
    assert small.layer_bits == model.layer_bits and small.conv_channels != model.conv_channels
    assert [int(layer.quant_weight().bit_width) for layer in small.quant_layers()] == [4, 2, 2, 2, 4, 2, 2, 4, 8]
    board = get_board("pynq-z1")
    folding = optimise(folding_design(load_hw_model(hw), board), board_budget(board))
    assert folding.fps(board.clock_ns) > 0 and folding.total("LUT") <= board_budget(board).LUT


def test_each_board_specialises_one_shared_lowering(mixed_trained, store):
    """FINN's board-independent steps run once per checkpoint: every board's HW model starts from the
    same lowered files (FINN names tensors at random, so two lowerings differ in bytes); only its
    specialisation ran for its part."""
    from pynqrepro.finnflow.hw_build import dataflow_artifact

    checkpoint, _ = mixed_trained
    boards = [get_board(name) for name in ("ultra96", "zcu104")]
    models = [hw_model_artifact(store, checkpoint, board) for board in boards]
    lowered = dataflow_artifact(store, checkpoint)
    for name in (QONNX_MODEL, "streamlined.onnx", "hw_generic.onnx"):
        assert all(m.file(name).read_bytes() == lowered.file(name).read_bytes() for m in models), name
    assert [m.config["part"] for m in models] == [b.part for b in boards]
