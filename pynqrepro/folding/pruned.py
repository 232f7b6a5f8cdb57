"""How a pruned network folds: est. fps, LUT and BRAM18 of the best folding of a pruning step whose
whole design (compute nodes, FINN's DWCs and minimal FIFOs, the board's shell) fits the board's
budget, from the folding optimiser (FINN's cost model).

SIMD-block steps use the optimiser's pruning-aware mode sized by the step's masks: a pruned conv
MVAU whose folding SIMD divides the SIMD its masks were cut at skips whole mask blocks and streams
only the kept columns; at any other SIMD it runs dense. Stock FINN has no input generator that skips
pruned blocks (the study forked one), so those figures are estimates only. Channel-pruned steps are
ordinary smaller networks: their own checkpoint goes through the normal FINN flow.

A sweep is estimated under one budget so its speed-ups compare like with like: the board's when
the dense network fits it, otherwise the smallest LUT budget (on a 0.05 x device grid) that fits
the dense network, e.g. the 8-bit CNV on a Pynq-Z1. Each point also says whether any folding fits
the board's own budget, so a larger budget never passes for a fit.

Each point's folding JSON goes through FINN's build preparation (``outputs.build_check``: every
builder step before the first Xilinx tool, code generation included) on the step's own HW model, as
a user would apply it: a channel-pruned step is built as it is; a SIMD-block step's masked network
is built dense by stock FINN, so FINN's figures differ where the estimate skips pruned blocks.
"""

import dataclasses
import math
from dataclasses import dataclass, field

from qonnx.custom_op.registry import getCustomOp

from pynqrepro.core.boards import Board
from pynqrepro.core.errors import UserError
from pynqrepro.core.store import Artifact, ArtifactStore
from pynqrepro.finnflow.hw_build import hw_model_artifact, load_hw_model
from pynqrepro.folding.outputs import BuildCheck, build_check
from pynqrepro.folding.optimise import Budget, board_budget, optimise, smallest_lut_budget
from pynqrepro.folding.space import MaskedBlocks, SpaceOptions
from pynqrepro.folding.wholedesign import Design, build_design
from pynqrepro.pruning.masks import MASKS_FILE, load_masks
from pynqrepro.pruning.simd_blocks import kept_columns


@dataclass(frozen=True)
class HardwarePoint:
    est_fps: float
    max_cycles: int
    lut: int  # the whole design's
    bram18: int
    conv_pe: tuple[int, ...]  # the chosen folding of the conv MVAUs
    conv_simd: tuple[int, ...]
    fits_board: bool  # some folding fits the board's own budget, not only the sweep's
    fits_calibrated: bool | None = None  # some folding fits the calibrated budget (device / (1 + bound))
    config: dict = field(default_factory=dict, compare=False)  # the folding's FINN ApplyConfig JSON
    finn_build: BuildCheck | None = None  # that JSON through FINN's build preparation on the step's HW model


LUT_GRID = 0.05  # a larger-than-board LUT budget is rounded up to a multiple of this x device LUTs


def lut_budget(board: Board, lut_ratio: float) -> Budget:
    """The board's budget with ``lut_ratio`` x its LUTs, a ratio above 1 allowed (what-if budgets)."""
    if not lut_ratio > 0:
        raise UserError(f"LUT ratio {lut_ratio} is not positive: use e.g. 0.85 for 85% of the device")
    return dataclasses.replace(board_budget(board), LUT=int(board.luts * lut_ratio), lut_ratio=lut_ratio)


def sweep_budget(store: ArtifactStore, dense: Artifact, board: Board, lut_ratio: float) -> Budget:
    """The budget a sweep from ``dense`` is estimated under (see ``fitting_budget``)."""
    hw_model = load_hw_model(hw_model_artifact(store, dense, board))
    return fitting_budget(folding_design(hw_model, board), board, lut_ratio)


def fitting_budget(space: "list | Design", board: Board, lut_ratio: float) -> Budget:
    """``lut_ratio`` x the board's LUTs if ``space`` (a whole design, or compute groups) fits it,
    else the smallest multiple of ``LUT_GRID`` x device LUTs that fits it. A network that no LUT
    budget fits (BRAM or DSP bound) gets the optimiser's error naming what it needs."""
    budget = lut_budget(board, lut_ratio)
    luts = smallest_lut_budget(space, budget)  # whether it fits, and else what would
    if luts is None:
        optimise(space, budget)  # raises the error naming the BRAM18/DSP the network needs
    if luts <= budget.LUT:
        return budget
    return lut_budget(board, round(math.ceil(luts / board.luts / LUT_GRID - 1e-9) * LUT_GRID, 6))


def describe_budget(budget: Budget, board: Board, board_ratio: float) -> str:
    """Row label of a sweep budget, e.g. "0.85 x LUT" or "2.5 x LUT (dense does not fit pynq-z1)"."""
    label = f"{budget.lut_ratio:g} x LUT"
    return label if budget.lut_ratio == board_ratio else f"{label} (dense does not fit {board.name})"


def conv_mvau_names(hw_model) -> list[str]:
    """The conv layers' MVAU nodes in graph order: those a (non-depthwise) sliding-window generator
    feeds, as FINN lowers a convolution (Im2Col -> ConvolutionInputGenerator, MatMul -> MVAU); an
    FC layer's MVAU reads its input stream as it is."""
    convs = []
    for node in hw_model.graph.node:
        producer = hw_model.find_producer(node.input[0])
        if (node.op_type.startswith("MVAU") and producer is not None
                and producer.op_type.startswith("ConvolutionInputGenerator")
                and not getCustomOp(producer).get_nodeattr("depthwise")):
            convs.append(node.name)
    return convs


def masked_blocks(step: Artifact) -> tuple[MaskedBlocks, ...]:
    """Per conv layer in network order, the block SIMD a SIMD-block step's masks were cut at and
    the columns they keep (masks are stored in conv order, beside the SIMD list in their meta);
    none for a step without masks (channel pruning: an ordinary smaller network)."""
    if not step.file(MASKS_FILE).is_file():
        return ()
    masks, meta = load_masks(step.file(MASKS_FILE))
    columns = kept_columns(masks)
    return tuple(MaskedBlocks(int(simd), columns[name]) for name, simd in zip(masks, meta["simd"], strict=True))


def folding_design(hw_model, board: Board, conv_pruning: tuple = ()) -> Design:
    """The whole design the optimiser searches for a network's HW model on ``board``.
    ``conv_pruning`` gives one entry per conv layer for the pruning-aware mode (a study-rule
    fraction or ``MaskedBlocks``). MVAU weights may go to block or distributed RAM (the study's
    "auto_ram" runs): with block RAM only, the 4-bit CNV does not fit a Pynq-Z1."""
    convs = conv_mvau_names(hw_model)
    if conv_pruning and len(conv_pruning) != len(convs):
        raise UserError(f"pruning given for {len(conv_pruning)} conv layers, the network has {len(convs)}: "
                        "give one entry per conv layer")
    options = SpaceOptions(choose_ram_style=True, pruning=tuple(zip(convs, conv_pruning)))
    return build_design(hw_model, board, options)


def best_folding(store: ArtifactStore, checkpoint: Artifact, board: Board, budget: Budget,
                 board_limit: Budget, conv_pruning: tuple = (), calibrated: Budget | None = None) -> HardwarePoint:
    """The fastest folding of ``checkpoint``'s network whose whole design fits ``budget`` (the
    sweep's), and whether any folding fits ``board_limit`` (the board's own budget) and
    ``calibrated`` (the default budget: our estimate plus its stated upper bound within the device).
    The folding's JSON goes through FINN's build preparation on the network's HW model
    (``outputs.build_check``: a rejection is recorded, with FINN's reason)."""
    hw_model = load_hw_model(hw_model_artifact(store, checkpoint, board))
    design = folding_design(hw_model, board, conv_pruning)
    convs = conv_mvau_names(hw_model)
    folding = optimise(design, budget)
    config = folding.config()
    return HardwarePoint(
        est_fps=folding.fps(board.clock_ns), max_cycles=folding.max_cycles,
        lut=folding.total("LUT"), bram18=folding.total("BRAM_18K"),
        conv_pe=tuple(config[n]["PE"] for n in convs), conv_simd=tuple(config[n]["SIMD"] for n in convs),
        fits_board=_fits(design, board_limit),
        fits_calibrated=None if calibrated is None else _fits(design, calibrated),
        config=config, finn_build=build_check(hw_model, folding, board))


def _fits(space: "list | Design", budget: Budget) -> bool:
    """Whether some folding of ``space`` fits ``budget``."""
    luts = smallest_lut_budget(space, budget)
    return luts is not None and luts <= budget.LUT
