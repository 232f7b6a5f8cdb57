"""The study's SIMD-block pruning arithmetic, shared by the pruning stage (which builds the masks)
and the folding optimiser's pruning-aware mode (which sizes the pruned MVAUs).

The rule is reproduced as the study's pruning scripts apply it, rounding quirk included: the number
of kept blocks is raised to the next multiple of SIMD above it whenever it exceeds SIMD.
"""

from pynqrepro.core.errors import UserError


def kept_blocks(columns: int, simd: int, amount: float) -> int:
    """Number of SIMD-wide column blocks the study keeps when pruning ``amount`` of them.

    ``columns`` is the MVAU's MW (K*K*IC for a conv layer). With B = floor(columns / simd) blocks,
    keep = B - round(B * amount), raised to simd * (floor(keep / simd) + 1) when keep > simd, and
    never more than B (a mask cannot keep blocks that do not exist) nor fewer than one: a layer
    with every column pruned has no MVAU (FINN needs MW > 0). The study's sweeps stopped at 75%
    sparsity, before its rule could empty a layer (conv 0 of 2-bit CNV, 3 blocks, above ~83%).
    """
    if simd <= 0 or simd > columns:
        raise UserError(f"SIMD {simd} is not legal for a layer of {columns} columns: use 1..{columns}")
    if not 0.0 <= amount < 1.0:
        raise UserError(f"pruning amount {amount} is outside [0, 1): use a fraction such as 0.15")
    blocks = columns // simd
    keep = blocks - round(blocks * amount)
    if keep > simd:
        keep = simd * (keep // simd + 1)
    return max(1, min(keep, blocks))


def pruned_columns(columns: int, simd: int, amount: float) -> int:
    """MW of the MVAU after the study's SIMD-block pruning: kept blocks x SIMD."""
    return kept_blocks(columns, simd, amount) * simd
