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
import textwrap
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pynqrepro.core.boards import BOARDS, Board, get_board
from pynqrepro.core.errors import UserError
from pynqrepro.core.results import Recorder
from pynqrepro.references import STUDY_FOLDING_RUNS, STUDY_LUT_RATIO, has_finn_folding, select

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
    "(node_model.json) applied to FINN's res_estimation of each node, plus each MVAU's threshold levels beyond "
    "the one the fit sees at FINN's distributed-threshold terms, chosen over the analytic model on the "
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
    "InsertFIFO, code generation (step_hw_codegen), InsertIODMA, dataflow partitioning): 'equal' where FINN "
    "accepts it and its estimate of the prepared graph plus the shell equals the whole-design totals, else what "
    "differs or 'rejected:' and FINN's reason.",
    "study greedy: the study's search re-implemented (prio SIMD); it ignores BRAM and counts compute LUTs only, "
    "as the study did. FINN published: FINN's shipped CNV foldings (W1A1/W1A2/W2A2 only) with every setting "
    "they carry (PE/SIMD, and MVAU/SWG ram_style: some weights in LUTRAM).",
    f"{CALIBRATED_ROW}: the default budget of `pynqrepro fold`, device / (1 + our stated upper bound) per "
    "resource (reports/calibration.md), whatever the row's LUT ratio; the ratio rows are the study's budgets, kept "
    "for comparison. 'LUT/BRAM18 bound': our whole-design estimate x (1 + bound), the most a synthesis should "
    "use; 'fits' is judged on it (bound within the device), 'within row budget' on the row's LUT ratio.",
    "Only a Vivado host knows: FIFO depths sized by simulation (FINN's FIFO sizing deepens some FIFOs; "
    "`pynqrepro fold --fifo-config` re-searches with a build's depths), post-route LUTs, and the shell of a "
    "part without a measured figure (a stated proxy here). This holds for every row: the figures are estimates.",
    "fits: ours and the baselines' on the whole design at the row's budget (LUT ratio x device LUTs, all "
    "BRAM18/DSP); the study's rows report compute LUT/BRAM18 only, so their verdict is 'no' where the compute "
    "nodes alone exceed the budget and 'compute only: yes' otherwise (the whole design needs more).",
    "Columns: fps = estimated fps; LUT/BRAM18/DSP = whole design; 'cmp' = compute nodes only.",
]
FOLDINGS_DIR = "foldings"  # reports/foldings/<board>-w<W>a<A>.json: the recommended foldings
HEADERS = {"est. fps": "fps", "LUT (whole)": "LUT", "BRAM18 (whole)": "BRAM18", "DSP (whole)": "DSP",
           "fits (whole design)": "fits", "LUT (compute)": "LUT cmp", "BRAM18 (compute)": "BRAM18 cmp",
           "DSP (compute)": "DSP cmp", "FINN build prep": "FINN prep", "LUT ratio": "ratio", "recommended": "rec."}


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
    finn_build: dict = field(default_factory=dict)  # exact method -> outputs.BuildCheck of its JSON
    calibrated: Budget | None = None  # the default budget: device / (1 + bound)
    margins: object = None  # folding.budget_calibration.Margins of that budget (its bound per resource)

    def recommended(self) -> Folding | None:
        """What to deploy: the exact folding at the default budget (``pynqrepro fold``'s: our estimate
        x (1 + its bound) within the device), where FINN's build preparation agrees with it; None
        where no folding fits that budget. Given once per board and bit width (by the study's LUT
        ratio case, whose rows carry the calibrated row too)."""
        if self.case.lut_ratio != STUDY_LUT_RATIO:
            return None
        folding = self.exact.get(CALIBRATED_ROW)
        check = self.finn_build.get(CALIBRATED_ROW)
        return folding if folding is not None and (check is None or check.agrees) else None

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


def measure(setup: Setup, case: Case) -> FoldingComparison:
    from pynqrepro.folding import baselines, outputs
    from pynqrepro.folding.budget_calibration import calibrated_margins
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
                             outputs.finn_build_checks(model, exact, board), calibrated, margins)


def folding_file(board: str, bits: int) -> str:
    """Where a recommended folding's ApplyConfig JSON goes, relative to reports/."""
    return f"{FOLDINGS_DIR}/{board}-w{bits}a{bits}.json"


def reference_fits(lut: int | None, bram18: int | None, budget: Budget) -> str | None:
    """A study row's verdict from its compute figures: 'no' if they alone exceed the budget."""
    if lut is None:
        return None
    over = lut > budget.LUT or (bram18 is not None and bram18 > budget.BRAM_18K)
    return "no" if over else "compute only: yes"


def tabulate(results: Recorder, setup: Setup, comparison: FoldingComparison) -> None:
    from pynqrepro.folding import outputs
    from pynqrepro.folding.budget_calibration import upper_bound

    case, board, budget = comparison.case, comparison.board, comparison.budget
    table = results.table(TABLE, title=TITLE, notes=NOTES, plot=f"{__name__}:fps_budget_plot",
                          summary=f"{__name__}:recommended_summary", group_by="board", headers=HEADERS)
    base = {"board": board.name, "W/A": f"{case.bits}/{case.bits}", "LUT ratio": case.lut_ratio}
    config = {**base, "scale": setup.scale.name}
    source = f"pynqrepro ({setup.scale.name})"
    recommended = comparison.recommended()
    if recommended is not None:
        path = results.figure_path(folding_file(board.name, case.bits))
        path.parent.mkdir(parents=True, exist_ok=True)
        outputs.write_config(recommended, path)
    for method in comparison.methods:
        row = {**base, "method": method.name}
        note = [method.note] if method.note else []
        if method.folding is not None and method.folding is recommended:
            name = folding_file(board.name, case.bits)
            row.update({"recommended": "yes", "folding JSON": f"[JSON]({name})"})
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
                row["FINN build prep"] = comparison.finn_build[method.name].cell()
        folding_config = {"folding": method.folding.config()} if method.folding is not None else {}
        table.add({**row, "note": "; ".join(note), "source": source}, config={**config, **folding_config})
    speedup = comparison.speedup_over_setfolding()
    if speedup is not None:
        table.add({**base, "method": "exact / SetFolding fps", "est. fps": round(speedup, 3), "source": source},
                  config=config)
    for run in select(STUDY_FOLDING_RUNS, board=board.name, bits=case.bits):
        if run.compares_with(case.lut_ratio):
            table.add_reference(run, {**base, "method": run.method, "est. fps": run.est_fps,
                                      "fits (whole design)": reference_fits(run.est_lut, run.est_bram18, budget),
                                      "LUT (compute)": run.est_lut, "BRAM18 (compute)": run.est_bram18},
                                source=f"study {run.run}")
    if "exact" in comparison.exact:
        name = f"folding_{board.name}_{case.bits}w{case.bits}a_{int(case.lut_ratio * 100)}.png"
        outputs.plot_cycles_remainder(comparison.exact["exact"], budget, results.figure_path(name))


def _percent(value, of) -> str:
    return f"{100 * float(value) / of:.0f}%" if value not in (None, "") and of else ""


def recommended_summary(rows: list[dict]) -> list[str]:
    """folding.md's first screen: per board and bit width the recommended folding (fps, share of
    the device, its ApplyConfig JSON), and how much faster the exact optimiser is than SetFolding."""
    from tabulate import tabulate as render

    picked = [r for r in rows if r.get("recommended") == "yes"]
    if not picked:
        return []
    body = []
    for r in sorted(picked, key=lambda r: (r["board"], r["W/A"])):
        board = BOARDS.get(r["board"])
        body.append([r["board"], r["W/A"], f"{float(r['est. fps']):,.0f}", _percent(r.get("LUT (whole)"), board.luts),
                     _percent(r.get("BRAM18 (whole)"), board.bram18), _percent(r.get("DSP (whole)"), board.dsp),
                     r["method"], r["folding JSON"]])
    speedups = [float(r["est. fps"]) for r in rows if r.get("method") == "exact / SetFolding fps"]
    lines = ["## Recommended folding", "",
             textwrap.fill("What to deploy: per board and bit width, the provably fastest folding whose whole design "
                           "(compute, DWCs, FIFOs, shell) fits `pynqrepro fold`'s default budget (pynqrepro's estimate "
                           "x (1 + its upper bound from real builds) within the device, reports/calibration.md) and "
                           "passes FINN's build preparation; % of the device: our estimate of the whole design. A board "
                           "and bit width missing here has no folding that fits that budget (its rows name the "
                           "smallest budget that would). Deploy with `pynqrepro build CHECKPOINT --folding "
                           "reports/<JSON>` (CHECKPOINT: the CNV of that W/A in training.md).", 110), "",
             render(body, headers=["board", "W/A", "fps", "LUT", "BRAM18", "DSP", "method", "folding JSON"],
                    tablefmt="github", disable_numparse=True)]
    if speedups:
        spread = f"{min(speedups):.2f}x" + (f" to {max(speedups):.2f}x" if max(speedups) > min(speedups) else "")
        lines += ["", f"Exact optimiser against FINN's SetFolding at the same budgets: {spread} the fps "
                      f"({len(speedups)} board x bit width x budget cases)."]
    return lines + ["", "Figure: [folding_fps_budget.png](folding_fps_budget.png) (fps against budget per method)."]


FIGURE = "folding_fps_budget.png"
STUDY_LABEL = "study's run: "  # the figure's label of a reference row's method
UNPLOTTED = ("exact / SetFolding fps", "all PE=SIMD=1")  # a ratio, and a floor that would flatten the axes


def fps_budget_plot(rows: list[dict], reports_dir) -> None:
    """Small multiples: one panel per board and bit width, estimated fps against the LUT budget,
    one line per method (ours and the baselines but PE=SIMD=1; the study's runs as points); a
    design that does not fit its budget is a cross."""
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pynqrepro.core.results import is_reference_row

    panels: dict = {}
    for r in rows:
        if r.get("est. fps") in (None, "") or r.get("method") in UNPLOTTED:
            continue
        label = f"{STUDY_LABEL}{r['method']}" if is_reference_row(r) else r["method"]
        fits = r.get("fits (whole design)") not in (False, "no")
        panels.setdefault((r["board"], r["W/A"]), {}).setdefault(label, []).append(
            (float(r["LUT ratio"]), float(r["est. fps"]), fits))
    if not panels:
        return
    boards = sorted({b for b, _ in panels})
    bits = sorted({w for _, w in panels}, key=lambda w: int(w.split("/")[0]))
    legend_width = 3.4
    fig_width = 3.2 * len(bits) + legend_width
    fig, axes = plt.subplots(len(boards), len(bits), figsize=(fig_width, 2.8 * len(boards) + 0.5),
                             squeeze=False, sharex=True)
    methods = sorted({m for series in panels.values() for m in series})
    style = {m: (plt.cm.tab10(i % 10), ("-", "--", ":")[i // 10 % 3]) for i, m in enumerate(methods)}
    for i, board in enumerate(boards):
        for j, bit_width in enumerate(bits):
            ax = axes[i][j]
            ax.set_title(f"{board} W/A {bit_width}", fontsize=9)
            for method, points in sorted(panels.get((board, bit_width), {}).items()):
                points.sort()
                colour, line = style[method]
                xs, ys = [p[0] for p in points], [p[1] for p in points]
                if method.startswith(STUDY_LABEL):
                    ax.plot(xs, ys, "s", ms=4, color=colour, alpha=0.7)
                else:
                    ax.plot(xs, ys, line, marker="o", ms=3, color=colour)
                misfits = [p for p in points if not p[2]]
                ax.plot([p[0] for p in misfits], [p[1] for p in misfits], "x", ms=8, color="red")
            ax.set_yscale("log")
            ax.grid(True, which="both", alpha=0.3)
            if i == len(boards) - 1:
                ax.set_xlabel("LUT budget (x device)")
            if j == 0:
                ax.set_ylabel("est. fps")
    handles = [plt.Line2D([], [], color=style[m][0], linestyle="none" if m.startswith(STUDY_LABEL) else style[m][1],
                          marker="s" if m.startswith(STUDY_LABEL) else "o") for m in methods]
    handles.append(plt.Line2D([], [], color="red", marker="x", linestyle="none"))
    fig.legend(handles, methods + ["does not fit its budget"], loc="center right", fontsize=7)
    fig.suptitle("Estimated fps against the LUT budget, per method (whole design, FINN's cost model)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1 - legend_width / fig_width, 1))
    fig.savefig(Path(reports_dir) / FIGURE, dpi=110)
    plt.close(fig)
