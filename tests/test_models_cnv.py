"""CNV matches Brevitas's cnv (so pretrained weights load) and exports to QONNX."""

import pytest
import torch
from brevitas.core.function_wrapper import RoundSte
from brevitas.core.quant import IntQuant as BrevitasIntQuant
from brevitas.function.ops import tensor_clamp
from brevitas_examples.bnn_pynq.models.CNV import CNV as BrevitasCNV
from torch import nn

from pynqrepro.core.errors import UserError
from pynqrepro.models.cnv import CNV, Clamp, IntQuant


@pytest.mark.parametrize("weight_bits,act_bits", [(1, 1), (1, 2), (2, 2), (4, 4), (8, 8)])
def test_state_dict_and_outputs_match_brevitas_cnv(weight_bits, act_bits):
    ours = CNV(weight_bits, act_bits).eval()
    brevitas_model = BrevitasCNV(10, weight_bits, act_bits, 8, 3).eval()
    brevitas_model.load_state_dict(ours.state_dict(), strict=True)
    x = torch.rand(3, 3, 32, 32)
    assert torch.equal(ours(x), brevitas_model(x))


def test_clamp_gives_brevitas_tensor_clamp_values_and_gradients_at_the_bounds_too():
    x = torch.tensor([-float("inf"), -3.0, -1.0, -0.5, 0.0, 1.0, 2.0, float("inf")])
    grads = []
    for clamp in (Clamp(), tensor_clamp):
        xs = x.clone().requires_grad_()
        low, high = torch.tensor(-1.0, requires_grad=True), torch.tensor(1.0, requires_grad=True)
        out = clamp(xs, low, high)
        out.backward(torch.arange(1.0, 9.0))
        grads.append((out.detach(), xs.grad, low.grad, high.grad))
    for ours, brevitas in zip(*grads):
        assert torch.equal(ours, brevitas)


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_training_steps_are_bit_identical_to_brevitas_cnv(bits, memory_format):
    """Our quantizers take fewer passes; training is unchanged to the bit (values, gradients, Adam),
    in the trainer's channels_last layout too."""
    torch.manual_seed(bits)
    nets = [CNV(bits, bits), BrevitasCNV(10, bits, bits, 8, 3)]
    nets[1].load_state_dict(nets[0].state_dict())
    for net in nets:
        net.to(memory_format=memory_format)
        optimizer = torch.optim.Adam(net.parameters(), lr=0.02)
        generator = torch.Generator().manual_seed(0)
        for _ in range(3):
            images = torch.rand(8, 3, 32, 32, generator=generator).contiguous(memory_format=memory_format)
            labels = torch.randint(0, 10, (8,), generator=generator)
            images[:, :, :4] = 1.0  # on the input quantizer's bound
            loss = torch.nn.functional.cross_entropy(net.train()(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            net.clip_weights(-1.0, 1.0)  # weights on the weight quantizers' bounds
    ours, brevitas = (net.state_dict() for net in nets)
    assert all(torch.equal(ours[name], brevitas[name]) for name in ours)


def test_int_quant_with_a_trained_scale_takes_brevitas_path():
    """A scale that learns needs Brevitas's gradient for it: the shortcut steps aside."""
    x = torch.linspace(-3.0, 3.0, 25)
    grads = []
    for quant in (IntQuant(True, True, 3, nn.Identity(), RoundSte(), Clamp()),
                  BrevitasIntQuant(True, True, nn.Identity(), RoundSte(), Clamp())):
        xs, scale = x.clone().requires_grad_(), torch.tensor(0.7, requires_grad=True)
        out = quant(scale, torch.tensor(0.0), torch.tensor(3.0), xs)
        out.backward(torch.arange(25.0))
        grads.append((out.detach(), xs.grad, scale.grad))
    for ours, brevitas in zip(*grads):
        assert torch.equal(ours, brevitas)


def _values_and_gradients(quant, zero_point: torch.Tensor, bit_width: torch.Tensor):
    x = torch.linspace(-3.0, 3.0, 25).requires_grad_()
    out = quant(torch.tensor(0.25), zero_point, bit_width, x)
    out.backward(torch.arange(25.0))
    return out.detach(), x.grad


@pytest.mark.parametrize("zero_point, bit_width", [
    (torch.tensor(1.0), torch.tensor(3.0)),  # a non-zero zero point
    (torch.tensor([0.0, 2.0]).repeat_interleave(torch.tensor([12, 13])), torch.tensor(3.0)),  # one per element
    (torch.tensor(0.0), torch.tensor(5.0)),  # a bit width other than the one the quantizer was built with
    (torch.tensor(0.0, requires_grad=True), torch.tensor(3.0)),  # a learned zero point
    (torch.tensor(0.0), torch.tensor(3.0, requires_grad=True)),  # a learned bit width
], ids=["zero-point-1", "zero-point-per-element", "bit-width-5", "learned-zero-point", "learned-bit-width"])
def test_int_quant_gives_brevitas_values_for_what_its_shortcut_does_not_cover(zero_point, bit_width):
    """Brevitas's quantizers other than bnn_pynq's: the shortcut (zero point 0, the built bit width)
    steps aside and the values and gradients are Brevitas's own (the oracle: Brevitas's IntQuant)."""
    ours = _values_and_gradients(IntQuant(False, True, 3, nn.Identity(), RoundSte(), Clamp()), zero_point, bit_width)
    brevitas = _values_and_gradients(BrevitasIntQuant(False, True, nn.Identity(), RoundSte(), Clamp()),
                                     zero_point, bit_width)
    assert all(torch.equal(a, b) for a, b in zip(ours, brevitas))


def test_int_quant_sees_a_bit_width_or_zero_point_changed_in_place_at_run_time():
    """The shortcut reads the buffers once; a change in place (a new version) is read again."""
    quant = IntQuant(False, True, 3, nn.Identity(), RoundSte(), Clamp())
    oracle = BrevitasIntQuant(False, True, nn.Identity(), RoundSte(), Clamp())
    zero_point, bit_width = torch.tensor(0.0), torch.tensor(3.0)
    for change in (None, lambda: bit_width.fill_(6.0), lambda: zero_point.fill_(2.0),
                   lambda: (bit_width.fill_(3.0), zero_point.fill_(0.0))):
        if change:
            change()
        views = zero_point.detach(), bit_width.detach()  # as Brevitas's StatelessBuffer hands them out
        assert all(torch.equal(a, b) for a, b in zip(_values_and_gradients(quant, *views),
                                                     _values_and_gradients(oracle, *views)))


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


@pytest.mark.parametrize("bits", [1, 2])
def test_exports_to_the_same_qonnx_as_brevitas_cnv(tmp_path, bits):
    """The faster quantizers leave export alone: FINN sees Brevitas's graph, node for node."""
    from brevitas.export import export_qonnx
    import onnx
    from onnx import numpy_helper

    ours = CNV(bits, bits).eval()
    brevitas_model = BrevitasCNV(10, bits, bits, 8, 3).eval()
    brevitas_model.load_state_dict(ours.state_dict())
    graphs = []
    for name, model in (("ours", ours), ("brevitas", brevitas_model)):
        export_qonnx(model, torch.rand(1, 3, 32, 32), str(tmp_path / f"{name}.onnx"))
        graphs.append(onnx.load(tmp_path / f"{name}.onnx").graph)
    ops = [[node.op_type for node in graph.node] for graph in graphs]
    assert ops[0] == ops[1] and {"BipolarQuant" if bits == 1 else "Quant", "Conv", "MaxPool", "Gemm"} <= set(ops[0])
    weights = [sorted(numpy_helper.to_array(t).tobytes() for t in graph.initializer) for graph in graphs]
    assert weights[0] == weights[1]
