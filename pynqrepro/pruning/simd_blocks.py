"""The study's SIMD-block pruning of conv layers (``PruneSIMD`` in its pruning scripts).

FINN's MVAU reads a conv weight (OC, IC, K, K) as an OC x (K*K*IC) matrix with columns in
(K, K, IC) order and consumes SIMD consecutive columns per cycle. Zeroing whole SIMD-wide column
blocks for all output channels lets an input generator that skips those blocks shorten every
output pixel's fold, which is where the study's speed-up comes from.
"""

import torch

from pynqrepro.core.divisors import divisors
from pynqrepro.core.errors import UserError
from pynqrepro.pruning.masks import conv_layers
from pynqrepro.pruning.rules import kept_blocks


def mvau_columns(layer) -> int:
    """MW of the MVAU this conv becomes: K*K*IC."""
    out_ch, in_ch, kh, kw = layer.weight.shape
    return in_ch * kh * kw


def check_simd_list(model, simd) -> tuple[int, ...]:
    """One SIMD per conv layer, each a positive divisor of the layer's MW (FINN's folding rule)."""
    layers = conv_layers(model)
    columns = [mvau_columns(layer) for layer in layers.values()]
    simd = tuple(simd)
    if len(simd) != len(columns):
        raise UserError(f"SIMD list has {len(simd)} entries, the model has {len(columns)} conv layers "
                        f"(MW {', '.join(map(str, columns))}): give {len(columns)} values")
    for i, (s, mw) in enumerate(zip(simd, columns)):
        if not isinstance(s, int) or s <= 0 or s > mw or mw % s:
            raise UserError(f"SIMD {s} for conv layer {i} (MW {mw}) is not legal: use a divisor of {mw}, "
                            f"one of {divisors(mw).tolist()}")
    return simd


def to_mvau_matrix(weight: torch.Tensor) -> torch.Tensor:
    """(OC, IC, K, K) -> OC x (K*K*IC) in FINN's MVAU column order."""
    return weight.permute(0, 2, 3, 1).reshape(weight.shape[0], -1)


def from_mvau_matrix(matrix: torch.Tensor, shape) -> torch.Tensor:
    """Inverse of ``to_mvau_matrix`` for a weight of ``shape`` (OC, IC, K, K)."""
    out_ch, in_ch, kh, kw = shape
    return matrix.reshape(out_ch, kh, kw, in_ch).permute(0, 3, 1, 2)


def block_scores(weight: torch.Tensor, simd: int, norm_order: float = 1) -> torch.Tensor:
    """Lp norm of each SIMD-wide column block over all output channels: shape (MW / SIMD,)."""
    matrix = to_mvau_matrix(weight.detach().float())
    blocks = matrix.reshape(matrix.shape[0], -1, simd)
    return torch.linalg.vector_norm(blocks, ord=norm_order, dim=(0, 2))


def block_mask(weight: torch.Tensor, simd: int, amount: float, norm_order: float = 1) -> torch.Tensor:
    """Bool mask (weight's shape) keeping the study's number of highest-scoring column blocks.

    As in the study, blocks scoring at or below the k-th lowest score are all pruned, so blocks
    already zero from an earlier step (score 0) never come back.
    """
    scores = block_scores(weight, simd, norm_order)
    n_blocks = scores.numel()
    n_prune = n_blocks - kept_blocks(n_blocks * simd, simd, amount)
    if n_prune == 0:
        keep = torch.ones(n_blocks, dtype=torch.bool)
    else:
        keep = scores > torch.kthvalue(scores, n_prune).values
    columns = keep.repeat_interleave(simd).expand(weight.shape[0], -1)
    return from_mvau_matrix(columns, weight.shape).contiguous()


def simd_block_masks(model, simd, amount: float, norm_order: float = 1) -> dict[str, torch.Tensor]:
    """The study's masks for every conv layer of ``model`` at pruning ``amount`` (FC layers untouched)."""
    simd = check_simd_list(model, simd)
    return {
        name: block_mask(layer.weight, s, amount, norm_order)
        for (name, layer), s in zip(conv_layers(model).items(), simd)
    }


def kept_columns(masks: dict[str, torch.Tensor]) -> dict[str, int]:
    """MW left per layer after pruning (columns with any kept weight), as the folding optimiser sizes it."""
    return {name: int(to_mvau_matrix(mask).any(dim=0).sum()) for name, mask in masks.items()}
