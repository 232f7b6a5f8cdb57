"""What a pruning step means in hardware: est. fps, LUT and BRAM18 of the best folding within the
board's budget, from the folding optimiser (FINN's cost model).

SIMD-block steps use the optimiser's pruning-aware mode: each conv MVAU's MW shrinks by the study's
rule at whatever SIMD the optimiser picks. Stock FINN has no input generator that skips pruned
blocks (the study forked one), so those figures are estimates only. Channel-pruned steps are
ordinary smaller networks: their own checkpoint goes through the normal FINN flow.
"""

from dataclasses import dataclass

from pynqrepro.core.boards import Board
from pynqrepro.core.store import Artifact, ArtifactStore
from pynqrepro.finnflow.build import hw_model_artifact, load_hw_model
from pynqrepro.folding.optimise import board_budget, optimise
from pynqrepro.folding.space import SpaceOptions, build_space


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


def best_folding(store: ArtifactStore, checkpoint: Artifact, board: Board, lut_ratio: float,
                 prune_amount: float = 0.0, n_conv: int = 6) -> HardwarePoint:
    """The fastest folding of ``checkpoint``'s network on ``board``; with ``prune_amount``, the
    conv MVAUs are sized by the study's SIMD-block rule. MVAU weights may go to block or distributed
    RAM (the study's "auto_ram" runs): with block RAM only, the 4-bit CNV does not fit a Pynq-Z1."""
    hw_model = load_hw_model(hw_model_artifact(store, checkpoint, board))
    convs = conv_mvau_names(hw_model, n_conv)
    pruning = tuple((name, prune_amount) for name in convs) if prune_amount else ()
    options = SpaceOptions(choose_ram_style=True, pruning=pruning)
    folding = optimise(build_space(hw_model, board.part, options),
                       board_budget(board, lut_ratio))
    config = folding.config()
    return HardwarePoint(
        est_fps=folding.fps(board.clock_ns), max_cycles=folding.max_cycles,
        lut=folding.total("LUT"), bram18=folding.total("BRAM_18K"),
        conv_pe=tuple(config[n]["PE"] for n in convs), conv_simd=tuple(config[n]["SIMD"] for n in convs))
