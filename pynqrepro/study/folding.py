"""Folding under a LUT budget (reports/folding.md): the exact optimiser against FINN's SetFolding,
the study's greedy search and FINN's published foldings, per board, bit width and LUT ratio.

Method: on the HW-layer model of the trained CNV for the board, search the provably fastest
folding within the budget over three spaces (PE/SIMD only; MVAU weights also in LUTRAM; every FINN
implementation choice the estimates model), then the baselines over the same cost model; check
that FINN's own estimate of each exact folding's JSON equals ours.
"""

from dataclasses import dataclass, field

from pynqrepro.core.boards import Board, get_board
from pynqrepro.core.errors import UserError
from pynqrepro.core.results import Recorder
from pynqrepro.folding import baselines, outputs
from pynqrepro.folding.optimise import Budget, Folding, board_budget, optimise
from pynqrepro.folding.space import SpaceOptions, build_space
from pynqrepro.pipeline import Setup, trained_network
from pynqrepro.references import STUDY_FOLDING_RUNS, has_finn_folding, select

EXPERIMENT = "experiments/test_folding.py::test_folding"
TABLE = "folding"
TITLE = "CNV folding under a LUT budget"
NOTES = [
    "FINN's analytical estimates (exp_cycles, res_estimation), fps at the board's default clock.",
    "exact: provably fastest folding under the budget (SIMD x W <= 36); exact+LUTRAM: MVAU weights may "
    "also go to distributed RAM; exact+all FINN options: also MVAU_hls multipliers in DSPs (resType) and "
    "sliding-window line buffers in BRAM (SWG ram_style), where FINN's build sets LUTs / LUTRAM; "
    "SetFolding: FINN's SetFolding at its fastest target that fits.",
    "study greedy: the study's search re-implemented (prio SIMD); it ignores BRAM, as the study did.",
    "FINN published: FINN's shipped CNV foldings (W1A1/W1A2/W2A2 only).",
]
EXACT_SPACES = {  # method -> the space the exact optimiser searches
    "exact": SpaceOptions(),
    "exact+LUTRAM": SpaceOptions(choose_ram_style=True),
    "exact+all FINN options": SpaceOptions.all_finn_choices(),
}


@dataclass(frozen=True)
class Case:
    lut_ratio: float
    bits: int  # weight and activation bits
    target_board: str

    @property
    def id(self) -> str:
        return f"{self.lut_ratio}-{self.bits}w{self.bits}a-{self.target_board}"


STUDY_BOARDS = ("pynq-z1", "ultra96")  # the boards the study targets
CASES = tuple(Case(ratio, bits, board)
              for ratio in (1.0, 0.85, 0.7) for bits in (1, 2, 4, 8) for board in STUDY_BOARDS)


@dataclass(frozen=True)
class Method:
    """One row of ours: a method's folding, or why it has none."""

    name: str
    folding: Folding | None
    note: str = ""


@dataclass(frozen=True)
class FoldingComparison:
    case: Case
    board: Board
    budget: Budget
    methods: list  # Method rows in report order
    exact: dict  # space name -> the exact optimiser's folding, where one fits
    setfolding: Folding | None
    finn_disagreements: dict = field(default_factory=dict)  # space name -> where FINN's re-estimate differs

    def speedup_over_setfolding(self) -> float | None:
        """exact / SetFolding fps, where both found a folding."""
        if "exact" not in self.exact or self.setfolding is None:
            return None
        return self.setfolding.max_cycles / self.exact["exact"].max_cycles


def _exact(name: str, model, part: str, options: SpaceOptions, budget: Budget) -> Method:
    try:
        return Method(name, optimise(build_space(model, part, options), budget))
    except UserError as exc:  # no folding of this space fits: the row says what would
        return Method(name, None, str(exc))


def measure(setup: Setup, case: Case) -> FoldingComparison:
    board = get_board(case.target_board)
    network = trained_network(setup, case.bits, case.bits, board)
    model = network.hw_model
    budget = board_budget(board, case.lut_ratio)
    methods = [_exact(name, model, board.part, options, budget) for name, options in EXACT_SPACES.items()]
    exact = {m.name: m.folding for m in methods if m.folding is not None}
    uncapped = baselines.uncapped_space(model, board.part)
    setfolding = baselines.setfolding_baseline(model, uncapped, budget)
    methods.append(Method("FINN SetFolding at budget", setfolding, "" if setfolding else "no SetFolding target fits"))
    methods.append(Method("study greedy (prio SIMD)", baselines.study_greedy(build_space(model, board.part), budget)))
    if has_finn_folding(case.bits, case.bits):
        methods.append(Method("FINN published", baselines.from_config(uncapped, network.published_folding(),
                                                                      "FINN published")))
    disagreements = {name: outputs.disagreements(folding, outputs.finn_reestimate(model, folding, board.part,
                                                                                    board.clock_ns))
                     for name, folding in exact.items()}
    return FoldingComparison(case, board, budget, methods, exact, setfolding, disagreements)


def tabulate(results: Recorder, setup: Setup, comparison: FoldingComparison) -> None:
    case, board, budget = comparison.case, comparison.board, comparison.budget
    table = results.table(TABLE, title=TITLE, notes=NOTES)
    base = {"board": board.name, "W/A": f"{case.bits}/{case.bits}", "LUT ratio": case.lut_ratio}
    config = {**base, "scale": setup.scale.name}
    source = f"pynqrepro ({setup.scale.name})"
    for method in comparison.methods:
        row = {**base, "method": method.name}
        if method.folding is not None:
            folding = method.folding
            row.update({"est. fps": round(folding.fps(board.clock_ns), 1), "LUT": folding.total("LUT"),
                        "BRAM18": folding.total("BRAM_18K"), "DSP": folding.total("DSP"),
                        "bottleneck": folding.bottleneck, "fits": folding.fits(budget)})
        table.add({**row, "note": method.note, "source": source}, config=config)
    speedup = comparison.speedup_over_setfolding()
    if speedup is not None:
        table.add({**base, "method": "exact / SetFolding fps", "est. fps": round(speedup, 3), "source": source},
                  config=config)
    for run in select(STUDY_FOLDING_RUNS, board=board.name, bits=case.bits):
        if run.compares_with(case.lut_ratio):
            table.add_reference(run, {**base, "method": run.method, "est. fps": run.est_fps, "LUT": run.est_lut,
                                      "BRAM18": run.est_bram18}, source=f"study {run.run}")
    if "exact" in comparison.exact:
        name = f"folding_{board.name}_{case.bits}w{case.bits}a_{int(case.lut_ratio * 100)}.png"
        outputs.plot_cycles_remainder(comparison.exact["exact"], budget, results.figure_path(name))
