"""What a pruning step means in hardware: est. fps, LUT and BRAM18 of the best folding within the
board's budget, from the folding optimiser (FINN's cost model).

SIMD-block steps use the optimiser's pruning-aware mode sized by the step's masks: a pruned conv
MVAU whose folding SIMD divides the SIMD its masks were cut at skips whole mask blocks and streams
only the kept columns; at any other SIMD it runs dense. Stock FINN has no input generator that skips
pruned blocks (the study forked one), so those figures are estimates only. Channel-pruned steps are
ordinary smaller networks: their own checkpoint goes through the normal FINN flow.
"""

from dataclasses import dataclass

from pynqrepro.core.boards import Board
from pynqrepro.core.errors import UserError
from pynqrepro.core.store import Artifact, ArtifactStore
from pynqrepro.finnflow.build import hw_model_artifact, load_hw_model
from pynqrepro.folding.optimise import board_budget, optimise
from pynqrepro.folding.space import MaskedBlocks, SpaceOptions, build_space
from pynqrepro.pruning.masks import MASKS_FILE, load_masks
from pynqrepro.pruning.simd_blocks import kept_columns


@dataclass(frozen=True)
class HardwarePoint:
    est_fps: float
    max_cycles: int
    lut: int
    bram18: int
    conv_pe: tuple[int, ...]  # the chosen folding of the conv MVAUs
    conv_simd: tuple[int, ...]


def conv_mvau_names(hw_model, n_conv: int) -> list[str]:
    """The conv layers' MVAU nodes: the first ``n_conv`` MVAUs in graph order (FC MVAUs follow)."""
    return [n.name for n in hw_model.graph.node if n.op_type.startswith("MVAU")][:n_conv]


def masked_blocks(step: Artifact) -> tuple[MaskedBlocks, ...]:
    """Per conv layer in network order, the block SIMD a SIMD-block step's masks were cut at and
    the columns they keep (masks are stored in conv order, beside the SIMD list in their meta)."""
    masks, meta = load_masks(step.file(MASKS_FILE))
    columns = kept_columns(masks)
    return tuple(MaskedBlocks(int(simd), columns[name]) for name, simd in zip(masks, meta["simd"], strict=True))


def best_folding(store: ArtifactStore, checkpoint: Artifact, board: Board, lut_ratio: float,
                 conv_pruning: tuple = (), n_conv: int = 6) -> HardwarePoint:
    """The fastest folding of ``checkpoint``'s network on ``board``. ``conv_pruning`` gives one
    entry per conv layer for the optimiser's pruning-aware mode (a study-rule fraction or
    ``MaskedBlocks``). MVAU weights may go to block or distributed RAM (the study's "auto_ram"
    runs): with block RAM only, the 4-bit CNV does not fit a Pynq-Z1."""
    hw_model = load_hw_model(hw_model_artifact(store, checkpoint, board))
    convs = conv_mvau_names(hw_model, n_conv)
    if conv_pruning and len(conv_pruning) != len(convs):
        raise UserError(f"pruning given for {len(conv_pruning)} conv layers, the network has {len(convs)}: "
                        "give one entry per conv layer")
    options = SpaceOptions(choose_ram_style=True, pruning=tuple(zip(convs, conv_pruning)))
    folding = optimise(build_space(hw_model, board.part, options),
                       board_budget(board, lut_ratio))
    config = folding.config()
    return HardwarePoint(
        est_fps=folding.fps(board.clock_ns), max_cycles=folding.max_cycles,
        lut=folding.total("LUT"), bram18=folding.total("BRAM_18K"),
        conv_pe=tuple(config[n]["PE"] for n in convs), conv_simd=tuple(config[n]["SIMD"] for n in convs))
