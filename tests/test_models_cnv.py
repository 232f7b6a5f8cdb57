"""CNV matches Brevitas's cnv (so pretrained weights load) and exports to QONNX."""

import pytest
import torch
from brevitas_examples.bnn_pynq.models.CNV import CNV as BrevitasCNV

from pynqrepro.core.errors import UserError
from pynqrepro.models.cnv import CNV


@pytest.mark.parametrize("weight_bits,act_bits", [(1, 1), (1, 2), (2, 2), (4, 4), (8, 8)])
def test_state_dict_and_outputs_match_brevitas_cnv(weight_bits, act_bits):
    ours = CNV(weight_bits, act_bits).eval()
    theirs = BrevitasCNV(10, weight_bits, act_bits, 8, 3).eval()
    theirs.load_state_dict(ours.state_dict(), strict=True)
    x = torch.rand(3, 3, 32, 32)
    assert torch.equal(ours(x), theirs(x))


def test_channel_widths_are_configurable():
    model = CNV(2, 2, conv_channels=(8, 8, 16, 16, 32, 24), fc_features=(40, 20))
    assert model.quant_layers()[5].weight.shape == (24, 32, 3, 3)
    assert model.quant_layers()[6].weight.shape == (40, 24)
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_clip_weights_clamps_every_quant_layer():
    model = CNV(1, 1, conv_channels=(4,) * 6, fc_features=(8, 8))
    for layer in model.quant_layers():
        layer.weight.data.mul_(5)
    model.clip_weights()
    assert all(layer.weight.abs().max() <= 1 for layer in model.quant_layers())


@pytest.mark.parametrize("kwargs,match", [
    ({"weight_bits": 3, "act_bits": 2}, "weight bit width 3"),
    ({"weight_bits": 2, "act_bits": 16}, "activation bit width 16"),
    ({"weight_bits": 2, "act_bits": 2, "conv_channels": (8, 8)}, "conv_channels must be 6"),
    ({"weight_bits": 2, "act_bits": 2, "fc_features": (0, 8)}, "fc_features must be 2"),
])
def test_bad_arguments_are_user_errors(kwargs, match):
    with pytest.raises(UserError, match=match):
        CNV(**kwargs)


def test_1w1a_exports_to_qonnx(tmp_path):
    from brevitas.export import export_qonnx
    import onnx

    model = CNV(1, 1, conv_channels=(8, 8, 16, 16, 32, 32), fc_features=(32, 32)).eval()
    export_qonnx(model, torch.rand(1, 3, 32, 32), str(tmp_path / "cnv.onnx"))
    ops = {node.op_type for node in onnx.load(tmp_path / "cnv.onnx").graph.node}
    assert {"BipolarQuant", "Conv", "MaxPool", "Gemm"} <= ops
