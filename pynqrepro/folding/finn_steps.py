"""The exact folding inside a FINN user's own flow: a qonnx Transformation and a FINN builder step.

Both run what ``pynqrepro fold`` runs (the whole design FINN builds, pynqrepro's decision estimate,
the exact optimiser) on the model in hand and apply the folding with FINN's ``ApplyConfig``::

    from pynqrepro.folding.finn_steps import SetFoldingExact, step_set_folding_exact
    model = model.transform(SetFoldingExact(board="pynq-z1", lut_ratio=0.85))
    # or, in a DataflowBuildConfig, in place of "step_target_fps_parallelization":
    cfg.steps = [..., "step_specialize_layers", step_set_folding_exact, "step_apply_folding_config", ...]

The builder step reads the board from ``cfg.board`` (FINN's board name, e.g. "Pynq-Z1") and uses
``fold``'s default budget; ``exact_folding_step(lut_ratio=...)`` makes a step with another. It writes
the folding to ``report/auto_folding_config.json``, as step_target_fps_parallelization does.
"""

import json

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation

from pynqrepro.core.boards import BOARDS, Board, get_board
from pynqrepro.core.errors import UserError
from pynqrepro.references import MVAU_WWIDTH_MAX, STUDY_LUT_RATIO

FOLDING_REPORT = "auto_folding_config.json"  # where step_target_fps_parallelization writes its folding


class SetFoldingExact(Transformation):
    """Apply the fastest folding whose whole design fits ``board`` at the given budget fractions
    (``pynqrepro fold``'s defaults: LUT 0.85, BRAM18 and DSP 1.0); ``all_finn_choices`` also decides
    MVAU weight RAM, MVAU_hls multipliers and SWG line buffers, as ``fold --all-finn-choices``.
    ``folding`` holds the applied FINN folding config afterwards."""

    def __init__(self, board: str | Board = "pynq-z1", lut_ratio: float = STUDY_LUT_RATIO, bram_ratio: float = 1.0,
                 dsp_ratio: float = 1.0, all_finn_choices: bool = False, width_converters: bool = True,
                 mvau_wwidth_max: int = MVAU_WWIDTH_MAX):
        super().__init__()
        self.board = board if isinstance(board, Board) else get_board(board)
        self.ratios = (lut_ratio, bram_ratio, dsp_ratio)
        self.all_finn_choices, self.width_converters = all_finn_choices, width_converters
        self.mvau_wwidth_max = mvau_wwidth_max
        self.folding: dict | None = None

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        from finn.transformation.general import ApplyConfig

        from pynqrepro.folding.optimise import board_budget, optimise
        from pynqrepro.folding.space import SpaceOptions
        from pynqrepro.folding.wholedesign import build_design

        choices = dict(choose_ram_style=True, choose_res_type=True, choose_swg_ram_style=True) \
            if self.all_finn_choices else {}
        options = SpaceOptions(mvau_wwidth_max=self.mvau_wwidth_max, **choices)
        design = build_design(model, self.board, options, width_converters=self.width_converters)
        self.folding = optimise(design, board_budget(self.board, *self.ratios)).config()
        return model.transform(ApplyConfig(self.folding)), False


def board_of(cfg) -> Board:
    """Our board of a DataflowBuildConfig (by FINN's board name)."""
    for board in BOARDS.values():
        if board.finn_board == cfg.board:
            return board
    raise UserError(f"DataflowBuildConfig board {cfg.board!r} is none of pynqrepro's boards "
                    f"({', '.join(b.finn_board for b in BOARDS.values())}): set cfg.board to one of them")


def exact_folding_step(**options):
    """A FINN builder step applying ``SetFoldingExact(board of cfg.board, **options)``."""

    def step_set_folding_exact(model: ModelWrapper, cfg) -> ModelWrapper:
        """pynqrepro's exact folding (in place of step_target_fps_parallelization)."""
        transformation = SetFoldingExact(board_of(cfg), **options)
        model = model.transform(transformation)
        report = cfg.get_report_directory() / FOLDING_REPORT
        report.write_text(json.dumps(transformation.folding, indent=2))
        return model

    return step_set_folding_exact


step_set_folding_exact = exact_folding_step()
