"""Folding under a LUT budget (reports/folding.md): the exact optimiser against FINN's SetFolding,
the study's greedy search and FINN's published foldings, per board, bit width and LUT ratio, every
row judged by the whole design FINN builds.

Method: on the HW-layer model of the trained CNV for the board, build the whole design FINN's build
makes at any folding (compute nodes, the DWCs and FIFOs its InsertDWC / InsertFIFO add, the board's
shell), search the provably fastest folding whose whole design fits the budget over three spaces
(PE/SIMD only; MVAU weights also in LUTRAM; every FINN implementation choice the estimates model),
and without width converters; beside them today's compute-only search, and the baselines over the
same designs. Every optimiser JSON goes through FINN's build preparation, whose own estimate of the
prepared graph plus the shell must equal our whole-design totals.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pynqrepro.core.boards import BOARDS, Board, get_board
from pynqrepro.core.errors import UserError
from pynqrepro.core.results import Recorder
from pynqrepro.references import STUDY_FOLDING_RUNS, has_finn_folding, select

if TYPE_CHECKING:  # the stages are imported where they work, so `pynqrepro report folding --help` is quick
    from pynqrepro.folding.optimise import Budget, Folding
    from pynqrepro.folding.wholedesign import Design
    from pynqrepro.pipeline import Setup

EXPERIMENT = "experiments/test_folding.py::test_folding"
TABLE = "folding"
TITLE = "CNV folding under a LUT budget (whole design)"
# The user choice and the comparison are searched with LUTRAM weights allowed: only so does the
# 4-bit CNV fit a Pynq-Z1
COMPARED_IN = "exact+LUTRAM"
NO_CONVERTERS = f"{COMPARED_IN}, no width converters"
COMPUTE_ONLY = f"{COMPARED_IN}, compute-only search"
CALIBRATED_ROW = f"{COMPARED_IN}, calibrated budget"  # the default budget of `fold`: ours x (1 + bound) <= device
NOTES = [
    "pynqrepro's estimate decides: FINN's analytical exp_cycles, and the per-node fit on real builds "
    "(node_model.json) applied to FINN's res_estimation of each node, chosen over the analytic model on the "
    "CNV anchors (reports/calibration.md; pynqrepro.folding.decision); "
    "FINN (whole) columns: FINN's raw estimate of the same whole design. fps at the board's default clock.",
    "Whole design: the compute nodes, the width converters (DWCs) and FIFOs FINN's build inserts (InsertDWC, "
    "InsertFIFO at minimal depths, as force_minimal_fifos builds) and the board's shell (IODMAs, AXI "
    "interconnect; FINN does not estimate it). Every row, ours and the baselines', is judged on those totals: "
    "'fits' (calibrated, see below) and 'within row budget'; "
    "the (compute) columns are the compute nodes alone (ours; the study's rows: its FINN estimate).",
    "exact: provably fastest folding whose whole design fits the budget (SIMD x W <= 36); exact+LUTRAM: MVAU "
    "weights may also go to distributed RAM; exact+all FINN options: also MVAU_hls multipliers in DSPs "
    "(resType) and sliding-window line buffers in BRAM (SWG ram_style), where FINN's build sets LUTs / LUTRAM; "
    f"{NO_CONVERTERS}: neighbouring stream widths forced equal (no DWC), a user choice (pynqrepro fold "
    f"--no-width-converters); {COMPUTE_ONLY}: the search of the compute nodes alone, for comparison (its whole "
    "design may not fit); SetFolding: FINN's SetFolding at its fastest target whose whole design fits.",
    "FINN build prep: each exact JSON went through the Python part of FINN's build (ApplyConfig ... InsertDWC, "
    "InsertFIFO, InsertIODMA, dataflow partitioning) and FINN's estimate of the prepared graph plus the shell "
    "equals the whole-design totals.",
    "study greedy: the study's search re-implemented (prio SIMD); it ignores BRAM and counts compute LUTs only, "
    "as the study did. FINN published: FINN's shipped CNV foldings (W1A1/W1A2/W2A2 only) with every setting "
    "they carry (PE/SIMD, and MVAU/SWG ram_style: some weights in LUTRAM).",
    f"{CALIBRATED_ROW}: the default budget of `pynqrepro fold`, device / (1 + our stated upper bound) per "
    "resource (reports/calibration.md), whatever the row's LUT ratio; the ratio rows are the study's budgets, kept "
    "for comparison. 'LUT/BRAM18 bound': our whole-design estimate x (1 + bound), the most a synthesis should "
    "use; 'fits' is judged on it (bound within the device), 'within row budget' on the row's LUT ratio.",
    "Only a Vivado host knows: FIFO depths sized by simulation (FINN's FIFO sizing deepens some FIFOs; "
    "`pynqrepro fold --fifo-config` re-searches with a build's depths), post-route LUTs, and the shell of a "
    "part without a measured figure (a stated proxy here).",
]


@dataclass(frozen=True)
class Case:
    lut_ratio: float
    bits: int  # weight and activation bits
    target_board: str

    @property
    def cnv_bits(self) -> tuple[int, int]:
        return self.bits, self.bits

    @property
    def id(self) -> str:
        return f"{self.lut_ratio}-{self.bits}w{self.bits}a-{self.target_board}"


STUDY_BOARDS = ("pynq-z1", "ultra96")  # the boards the study targets
RATIOS, BITS = (1.0, 0.85, 0.7), (1, 2, 4, 8)
CASES = tuple(Case(ratio, bits, board) for ratio in RATIOS for bits in BITS for board in STUDY_BOARDS)
# What `pynqrepro report folding` also offers: every board (the experiment runs the study's two,
# keeping CI short), e.g. --target-board zcu104.
REPORT_CASES = tuple(Case(ratio, bits, board) for ratio, bits, board in itertools.product(RATIOS, BITS, BOARDS))


def exact_spaces() -> dict:
    """method -> the space the exact optimiser searches."""
    from pynqrepro.folding.space import SpaceOptions

    return {"exact": SpaceOptions(), "exact+LUTRAM": SpaceOptions(choose_ram_style=True),
            "exact+all FINN options": SpaceOptions.all_finn_choices()}


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
    exact: dict  # method name -> the whole-design optimiser's folding, where one fits
    compute_only: Folding | None  # the compute-only search's folding, judged as a whole design
    setfolding: Folding | None
    finn_build: dict = field(default_factory=dict)  # exact method -> where FINN's prepared build differs
    calibrated: Budget | None = None  # the default budget: device / (1 + bound)
    margins: object = None  # folding.calibration.Margins of that budget (its bound per resource)

    def speedup_over_setfolding(self) -> float | None:
        """exact / SetFolding fps, where both found a folding."""
        if "exact" not in self.exact or self.setfolding is None:
            return None
        return self.setfolding.max_cycles / self.exact["exact"].max_cycles


def _exact(name: str, space, budget: Budget) -> Method:
    from pynqrepro.folding.optimise import optimise

    try:
        return Method(name, optimise(space, budget))
    except UserError as exc:  # no folding of this space fits: the row says what would
        return Method(name, None, str(exc))


def _compute_only(design: Design, budget: Budget) -> Method:
    """Today's search of the compute nodes alone, its folding judged by its whole design."""
    from pynqrepro.folding.optimise import Folding

    found = _exact(COMPUTE_ONLY, design.groups, budget)
    if found.folding is None:
        return found
    return Method(COMPUTE_ONLY, Folding.of(COMPUTE_ONLY, design, found.folding.choice))


def _finn_build_checks(model, exact: dict, board: Board) -> dict:
    """``outputs.finn_build_check`` of every exact folding, FINN's build prepared once per distinct
    change the JSONs make to the model (exact and exact+LUTRAM often choose the same)."""
    from pynqrepro.finnflow.buildprep import prepare_build
    from pynqrepro.finnflow.foldconfig import changes
    from pynqrepro.folding import outputs

    prepared: dict = {}
    out = {}
    for name, folding in exact.items():
        key = json.dumps(changes(model, folding.config()), sort_keys=True)
        if key not in prepared:
            prepared[key] = prepare_build(model, folding.config(), board)
        out[name] = outputs.finn_build_check(model, folding, board, prepared[key])
    return out


def measure(setup: Setup, case: Case) -> FoldingComparison:
    from pynqrepro.folding import baselines
    from pynqrepro.folding.calibration import calibrated_margins
    from pynqrepro.folding.optimise import board_budget
    from pynqrepro.folding.wholedesign import build_design
    from pynqrepro.pipeline import trained_network

    board = get_board(case.target_board)
    network = trained_network(setup, case.bits, case.bits, board)
    model = network.hw_model
    budget = board_budget(board, case.lut_ratio)
    designs = {name: build_design(model, board, options) for name, options in exact_spaces().items()}
    methods = [_exact(name, design, budget) for name, design in designs.items()]
    methods.append(_exact(NO_CONVERTERS, designs[COMPARED_IN].without_width_converters(), budget))
    margins = calibrated_margins(setup.store.root)
    calibrated = board_budget(board, margins.LUT, margins.BRAM_18K, margins.DSP)
    methods.insert(0, _exact(CALIBRATED_ROW, designs[COMPARED_IN], calibrated))
    exact = {m.name: m.folding for m in methods if m.folding is not None}
    compute_only = _compute_only(designs[COMPARED_IN], budget)
    methods.append(compute_only)
    uncapped = build_design(model, board, baselines.UNCAPPED)
    setfolding = baselines.setfolding_baseline(model, uncapped, budget)
    methods.append(Method("FINN SetFolding at budget", setfolding, "" if setfolding else "no SetFolding target fits"))
    methods.append(Method("study greedy (prio SIMD)", baselines.study_greedy(designs["exact"], budget)))
    if has_finn_folding(case.bits, case.bits):
        methods.append(Method("FINN published", baselines.from_applied_config(model, board, network.published_folding(),
                                                                              "FINN published")))
    methods.append(Method("all PE=SIMD=1", baselines.all_ones(designs["exact"])))
    return FoldingComparison(case, board, budget, methods, exact, compute_only.folding, setfolding,
                             _finn_build_checks(model, exact, board), calibrated, margins)


def vivado_unknowns(board: Board) -> str:
    """What a row's figures cannot know without a Vivado host."""
    shell = "" if board.shell.measured else ", shell (proxy)"
    return f"Vivado host: sized FIFO depths, post-route LUTs{shell}"


def tabulate(results: Recorder, setup: Setup, comparison: FoldingComparison) -> None:
    from pynqrepro.folding import outputs
    from pynqrepro.folding.calibration import upper_bound

    case, board, budget = comparison.case, comparison.board, comparison.budget
    table = results.table(TABLE, title=TITLE, notes=NOTES)
    base = {"board": board.name, "W/A": f"{case.bits}/{case.bits}", "LUT ratio": case.lut_ratio}
    config = {**base, "scale": setup.scale.name}
    source = f"pynqrepro ({setup.scale.name})"
    for method in comparison.methods:
        row = {**base, "method": method.name}
        note = [method.note] if method.note else []
        if method.folding is not None:
            folding = method.folding
            row.update({"est. fps": round(folding.fps(board.clock_ns), 1), "LUT (whole)": folding.total("LUT"),
                        "BRAM18 (whole)": folding.total("BRAM_18K"), "DSP (whole)": folding.total("DSP"),
                        "LUT bound": upper_bound(folding, "LUT", comparison.margins),
                        "BRAM18 bound": upper_bound(folding, "BRAM_18K", comparison.margins),
                        "fits": folding.fits(comparison.calibrated), "within row budget": folding.fits(budget),
                        "LUT (compute)": folding.compute_total("LUT"),
                        "BRAM18 (compute)": folding.compute_total("BRAM_18K"),
                        "DSP (compute)": folding.compute_total("DSP"), "DWCs": folding.converters,
                        "bottleneck": folding.bottleneck,
                        # FINN's raw estimate of the same whole design, beside ours (which decides)
                        "FINN LUT (whole)": folding.finn_total("LUT"),
                        "FINN BRAM18 (whole)": folding.finn_total("BRAM_18K"),
                        "FINN DSP (whole)": folding.finn_total("DSP")})
            if method.name in comparison.finn_build:
                differences = comparison.finn_build[method.name]
                row["FINN build prep"] = "equal" if not differences else "; ".join(differences)
            note.append(vivado_unknowns(board))
        table.add({**row, "note": "; ".join(note), "source": source}, config=config)
    speedup = comparison.speedup_over_setfolding()
    if speedup is not None:
        table.add({**base, "method": "exact / SetFolding fps", "est. fps": round(speedup, 3), "source": source},
                  config=config)
    for run in select(STUDY_FOLDING_RUNS, board=board.name, bits=case.bits):
        if run.compares_with(case.lut_ratio):
            table.add_reference(run, {**base, "method": run.method, "est. fps": run.est_fps,
                                      "LUT (compute)": run.est_lut, "BRAM18 (compute)": run.est_bram18},
                                source=f"study {run.run}")
    if "exact" in comparison.exact:
        name = f"folding_{board.name}_{case.bits}w{case.bits}a_{int(case.lut_ratio * 100)}.png"
        outputs.plot_cycles_remainder(comparison.exact["exact"], budget, results.figure_path(name))
