"""Channel pruning (beyond the study): whole conv output channels removed, so stock FINN is faster.

SIMD-block zeros only pay off with the study's forked input generator. Removing output channels
instead shrinks MH of a conv's MVAU and MW of the next one, which every stock FINN node turns
into fewer cycles and resources. The smaller CNV is built with ``conv_channels`` and the kept
weights copied (Brevitas model surgery); pruning the exported graph instead
(qonnx.transformation.pruning) would leave nothing to fine-tune in PyTorch.

Kept counts are multiples of a per-layer granule, 1/``steps`` of the dense width (default 16), so
the folding PE_i | granule_i, SIMD_i+1 | K*K*granule_i stays legal at every step. The granule is
deliberately not the dense network's folding: the optimiser re-folds every step anyway, and
rounding to the dense PE/SIMD made the fully parallel layers that bound throughput (e.g. PE 64 of
64 channels) unprunable, so a step only shrank layers with slack and gained no speed.
"""

import math

import torch

from pynqrepro.core.errors import UserError
from pynqrepro.models.cnv import CNV
from pynqrepro.models.spec import KERNEL_SIZE
from pynqrepro.pruning.config import CHANNEL_STEPS
from pynqrepro.pruning.masks import conv_layers



def channel_granules(dense_channels, steps: int = CHANNEL_STEPS) -> tuple[int, ...]:
    """Granule of kept output channels per conv layer: 1/``steps`` of its dense width."""
    if not isinstance(steps, int) or steps <= 0:
        raise UserError(f"--channel-steps must be a positive integer, got {steps!r}: use e.g. {CHANNEL_STEPS}")
    for width in dense_channels:
        if width % steps:
            raise UserError(f"conv width {width} is not a multiple of {steps} channel steps: "
                            f"use --channel-steps dividing {', '.join(map(str, dense_channels))}")
    return tuple(width // steps for width in dense_channels)


def channel_scores(weight: torch.Tensor) -> torch.Tensor:
    """L1 norm of each output channel's filter."""
    return weight.detach().abs().flatten(1).sum(1)


def kept_channel_counts(dense_channels, current_channels, granules, keep_fraction: float) -> tuple[int, ...]:
    """Per layer: ``keep_fraction`` of the dense width, to the nearest multiple of its granule,
    at least one granule and never more than the layer has now."""
    if len(granules) != len(dense_channels):
        raise UserError(f"{len(granules)} channel granules for {len(dense_channels)} conv layers: give one per layer")
    counts = []
    for dense, current, g in zip(dense_channels, current_channels, granules):
        counts.append(min(current, max(g, g * round(dense * keep_fraction / g))))
    return tuple(counts)


def keep_fraction_for(sparsity: float) -> float:
    """Uniform channel fraction giving ``sparsity`` of conv weights: a conv's weights scale with
    kept inputs x kept outputs, so keeping f of every layer's channels leaves about f^2."""
    if not 0.0 <= sparsity < 1.0:
        raise UserError(f"target sparsity {sparsity} is outside [0, 1): use a fraction such as 0.15")
    return math.sqrt(1.0 - sparsity)


def select_channels(model: CNV, counts) -> list[torch.Tensor]:
    """Indices (ascending) of the highest-L1 output channels of each conv layer."""
    return [torch.sort(torch.topk(channel_scores(layer.weight), n).indices).values
            for layer, n in zip(conv_layers(model).values(), counts)]


def shrink(model: CNV, kept: list[torch.Tensor]) -> CNV:
    """A CNV with only the ``kept`` channels of each conv layer, weights and BN statistics copied.

    Conv i loses output channels (its weight rows, its BatchNorm entries) and conv i+1 the matching
    input channels; the first FC layer loses the inputs of the last conv's dropped channels
    (the conv stack ends at 1x1, so FC inputs are channels).
    """
    small = CNV(model.weight_bits, model.act_bits, model.in_bits, conv_channels=[len(k) for k in kept],
                fc_features=model.fc_features, num_classes=model.num_classes, layer_bits=model.layer_bits)
    state = model.state_dict()
    convs = list(conv_layers(model))
    prefix_in = {name: kept[i - 1] if i else None for i, name in enumerate(convs)}
    new_state = {}
    for key, value in small.state_dict().items():
        old = state[key]
        module = key.rsplit(".", 1)[0]
        if module in convs:
            i = convs.index(module)
            old = old[kept[i]]
            if prefix_in[module] is not None:
                old = old[:, prefix_in[module]]
        elif _bn_of(module, convs) is not None and old.dim() == 1:
            old = old[kept[_bn_of(module, convs)]]
        elif key == "linear_features.0.weight":
            old = old[:, kept[-1]]
        new_state[key] = old.clone()
    small.load_state_dict(new_state, strict=True)
    return small


def _bn_of(module: str, convs: list[str]) -> int | None:
    """Index of the conv whose BatchNorm2d is ``module`` (the module right after the conv)."""
    parent, _, index = module.rpartition(".")
    if parent != "conv_features" or not index.isdigit():
        return None
    previous = f"conv_features.{int(index) - 1}"
    return convs.index(previous) if previous in convs else None


def prune_channels(model: CNV, dense_channels, granules, sparsity: float) -> CNV:
    """The smaller CNV keeping about ``sparsity`` of the dense conv weights pruned."""
    counts = kept_channel_counts(dense_channels, model.conv_channels, granules, keep_fraction_for(sparsity))
    return shrink(model, select_channels(model, counts))


def conv_weight_count(conv_channels, in_channels: int = 3) -> int:
    """Conv weights of a CNV with these widths: sum of K*K*IC*OC."""
    widths = (in_channels, *conv_channels)
    return sum(KERNEL_SIZE * KERNEL_SIZE * a * b for a, b in zip(widths, widths[1:]))


def channel_sparsity(conv_channels, dense_channels) -> float:
    """Fraction of the dense network's conv weights that channel pruning removed."""
    return 1.0 - conv_weight_count(conv_channels) / conv_weight_count(dense_channels)
