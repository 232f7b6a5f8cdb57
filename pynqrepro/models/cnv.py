"""The study's CNV, with configurable bit widths and per-layer channel widths.

Built from ``brevitas_examples.bnn_pynq`` quantizers and TensorNorm, and laid out module for module
like Brevitas's ``cnv`` (same ``conv_features`` / ``linear_features`` indices), so Brevitas's
published pretrained state_dicts load with ``strict=True`` and FINN's CNV flow sees the same graph.
Brevitas's own class hard-codes the channel widths, which pruning needs to change.
"""

import torch
from brevitas.core.function_wrapper import RoundSte
from brevitas.core.quant import IntQuant as BrevitasIntQuant
from brevitas.core.restrict_val import RestrictValueType
from brevitas.function.ops import max_int, min_int
from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear
from brevitas_examples.bnn_pynq.models.common import CommonActQuant, CommonWeightQuant
from brevitas_examples.bnn_pynq.models.tensor_norm import TensorNorm
from torch import nn

from pynqrepro.models.spec import (CONV_CHANNELS, FC_FEATURES, IN_CHANNELS, KERNEL_SIZE, POOL_AFTER, check_bits,
                                   check_widths, format_layer_bits, parse_layer_bits, uniform_layer_bits,
                                   widest_bits)

class Clamp(nn.Module):
    """Brevitas's ``TensorClamp`` as one ``torch.clamp``: the same values and the same gradients (to x
    where min <= x <= max, to a bound beyond it) as ``brevitas.function.ops.tensor_clamp``'s compare
    and ``torch.where`` passes, in one pass over the tensor forward and fewer backward: 5-10 % of a
    CNV training step on CPU (benchmarks/bench_training.py). Only a NaN (a run already diverged)
    differs: its gradient stops here, where Brevitas passes it on."""

    def __init__(self) -> None:  # explicit: Brevitas's injector refuses *args/**kwargs constructors
        super().__init__()

    def forward(self, x: torch.Tensor, min_val: torch.Tensor, max_val: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x, min=min_val.type_as(x), max=max_val.type_as(x))


class _RoundClampScale(torch.autograd.Function):
    """``clamp(round(x / scale), low, high) * scale`` with Brevitas's straight-through gradient,
    ``where(low <= round(x / scale) <= high, grad * scale, 0) / scale``, in the same float operations."""

    @staticmethod
    def forward(ctx, x, scale, low: float, high: float):
        rounded = torch.round(x / scale)
        ctx.save_for_backward(rounded, scale)
        ctx.low, ctx.high = low, high
        return rounded.clamp(low, high).mul_(scale)

    @staticmethod
    def backward(ctx, grad):
        rounded, scale = ctx.saved_tensors
        # ``rounded`` holds integers and the bounds are integers: half a step inside them, hardtanh's
        # strict comparison is clamp's inclusive one, in one kernel instead of three and a where.
        passed = torch.ops.aten.hardtanh_backward(grad * scale, rounded, ctx.low - 0.5, ctx.high + 0.5)
        return passed.div_(scale), None, None, None


def _same_tensor(tensor: torch.Tensor, held: torch.Tensor, version: int) -> bool:
    """``tensor`` views ``held``'s memory as it was at ``version`` (same address, shape, version)."""
    return (tensor.data_ptr() == held.data_ptr() and tensor.shape == held.shape and tensor.device == held.device
            and tensor._version == version)


class IntQuant(nn.Module):
    """Brevitas's ``IntQuant`` for a constant scale and zero point (bnn_pynq's quantizers) in four
    passes over the tensor forward and three backward, where Brevitas's chain of divide, add zero
    point, round, clamp, subtract zero point, multiply takes six each way: a fifth of a CNV training
    step on CPU (benchmarks/bench_training.py). The values and gradients are Brevitas's
    (tests/test_models_cnv.py). The shortcut assumes a zero point of 0 and the bit width it was built
    with; anything else (a trained scale, zero point or bit width, a non-zero zero point, a bit width
    changed at run time, another rounding) takes Brevitas's own path."""

    def __init__(self, narrow_range: bool, signed: bool, bit_width: int, input_view_impl: nn.Module,
                 float_to_int_impl: nn.Module, tensor_clamp_impl: nn.Module):
        super().__init__()
        self.brevitas = BrevitasIntQuant(narrow_range, signed, input_view_impl, float_to_int_impl, tensor_clamp_impl)
        self.rounds = isinstance(float_to_int_impl, RoundSte)  # the shortcut rounds as RoundSte does
        self.bit_width = float(bit_width)
        width = torch.tensor(self.bit_width)
        self.low, self.high = min_int(signed, narrow_range, width).item(), max_int(signed, narrow_range, width).item()
        self._checked = None  # (zero point, its version, bit width, its version) last found to fit the shortcut

    def _shortcut_fits(self, zero_point: torch.Tensor, bit_width: torch.Tensor) -> bool:
        """Zero point 0 and the built bit width. Read once (a device sync) and again only when either
        tensor changes: Brevitas's constants are detached views of one buffer, so the same memory at the
        same version (the views share the buffer's version counter) holds the same values. The tensors
        last read are held, so their memory cannot be reused by another tensor meanwhile."""
        last = self._checked
        if last is not None and _same_tensor(zero_point, *last[:2]) and _same_tensor(bit_width, *last[2:]):
            return True
        fits = bool((zero_point == 0).all()) and bit_width.numel() == 1 and bit_width.item() == self.bit_width
        self._checked = (zero_point, zero_point._version, bit_width, bit_width._version) if fits else None
        return fits

    def forward(self, scale: torch.Tensor, zero_point: torch.Tensor, bit_width: torch.Tensor,
                x: torch.Tensor) -> torch.Tensor:
        if (scale.requires_grad or zero_point.requires_grad or bit_width.requires_grad or not self.rounds
                or not self._shortcut_fits(zero_point, bit_width)):
            return self.brevitas(scale, zero_point, bit_width, x)
        return _RoundClampScale.apply(self.brevitas.input_view_impl(x), scale, self.low, self.high)


class ActQuant(CommonActQuant):
    """bnn_pynq's activation quantizer, quantizing in fewer passes."""
    int_quant = IntQuant
    tensor_clamp_impl = Clamp


class WeightQuant(CommonWeightQuant):
    """bnn_pynq's weight quantizer, quantizing in fewer passes."""
    int_quant = IntQuant
    tensor_clamp_impl = Clamp


class CNV(nn.Module):
    """CNV: six 3x3 conv (no padding) + BN + quant act, pools after conv 2 and 4, three FC, TensorNorm.

    Input: images in [0, 1], scaled to ``2x - 1`` and quantized to 8-bit Q1.7 as in the study.
    ``layer_bits`` (``spec.parse_layer_bits``'s text or tuple) gives each layer its own weight and
    activation widths; ``weight_bits`` / ``act_bits`` are then their widest, whatever was passed.
    """

    def __init__(self, weight_bits: int, act_bits: int, in_bits: int = 8,
                 conv_channels=CONV_CHANNELS, fc_features=FC_FEATURES, num_classes: int = 10, layer_bits=None):
        super().__init__()
        if layer_bits is None:
            layers = uniform_layer_bits(check_bits("weight bit width", weight_bits),
                                        check_bits("activation bit width", act_bits))
        else:
            layers = parse_layer_bits(layer_bits if isinstance(layer_bits, str) else format_layer_bits(layer_bits))
        self.layer_bits = layers
        self.weight_bits, self.act_bits = widest_bits(layers)
        self.in_bits = check_bits("input bit width", in_bits)
        self.conv_channels = check_widths("conv_channels", conv_channels, len(CONV_CHANNELS))
        self.fc_features = check_widths("fc_features", fc_features, len(FC_FEATURES))
        self.num_classes = num_classes

        self.conv_features = nn.ModuleList()
        self.linear_features = nn.ModuleList()
        self.conv_features.append(QuantIdentity(  # Q1.7 input format
            act_quant=ActQuant, bit_width=in_bits, min_val=-1.0, max_val=1.0 - 2.0 ** (-7),
            narrow_range=False, restrict_scaling_type=RestrictValueType.POWER_OF_TWO))
        in_ch = IN_CHANNELS
        bits = iter(layers)
        for i, out_ch in enumerate(self.conv_channels):
            w, a = next(bits)
            self.conv_features.append(QuantConv2d(
                in_ch, out_ch, KERNEL_SIZE, bias=False,
                weight_quant=WeightQuant, weight_bit_width=w))
            self.conv_features.append(nn.BatchNorm2d(out_ch, eps=1e-4))
            self.conv_features.append(QuantIdentity(act_quant=ActQuant, bit_width=a))
            if i in POOL_AFTER:
                self.conv_features.append(nn.MaxPool2d(kernel_size=2))
            in_ch = out_ch

        in_features = in_ch
        for out_features in self.fc_features:
            w, a = next(bits)
            self.linear_features.append(QuantLinear(
                in_features, out_features, bias=False,
                weight_quant=WeightQuant, weight_bit_width=w))
            self.linear_features.append(nn.BatchNorm1d(out_features, eps=1e-4))
            self.linear_features.append(QuantIdentity(act_quant=ActQuant, bit_width=a))
            in_features = out_features
        self.linear_features.append(QuantLinear(
            in_features, num_classes, bias=False,
            weight_quant=WeightQuant, weight_bit_width=next(bits)[0]))
        self.linear_features.append(TensorNorm())

        for layer in self.quant_layers():
            nn.init.uniform_(layer.weight.data, -1, 1)

    def quant_layers(self):
        """The QuantConv2d / QuantLinear layers in network order."""
        return [m for m in self.modules() if isinstance(m, (QuantConv2d, QuantLinear))]

    def clip_weights(self, min_val: float = -1.0, max_val: float = 1.0) -> None:
        """Clamp weights in place after each optimizer step (the study's recipe)."""
        for layer in self.quant_layers():
            layer.weight.data.clamp_(min_val, max_val)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = 2.0 * x - torch.tensor([1.0], device=x.device)
        for mod in self.conv_features:
            x = mod(x)
        x = x.view(x.shape[0], -1)
        for mod in self.linear_features:
            x = mod(x)
        return x
