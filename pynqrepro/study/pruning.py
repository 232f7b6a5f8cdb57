"""Pruning (reports/pruning.md): the study's SIMD-block pruning sweeps and channel pruning, fine-tuned,
each step's best folding on the board beside the dense network's.

Method: per bit width, the dense CNV of this scale and its best folding on the board (the baseline
fps), then both sweeps with fine-tuning (the scale's epochs and sparsity limit). A dense network
the board cannot hold (8-bit on a Pynq-Z1) is estimated, with every step, under the smallest LUT
budget that fits it; each row says which budget and whether the step fits the board itself.
SIMD-block rows are FINN cost-model estimates only (stock FINN has no block-skipping input
generator); the smallest channel-pruned network goes through the normal FINN flow and must verify.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pynqrepro.core.results import Recorder, is_reference_row
from pynqrepro.core.scale import AccuracyDropLimit
from pynqrepro.core.store import Artifact
from pynqrepro.pruning.config import METHODS, SweepConfig
from pynqrepro.references import STUDY_LUT_RATIO, STUDY_PRUNING_SWEEP, select

if TYPE_CHECKING:  # the stages are imported where they work, so `pynqrepro report pruning --help` is quick
    from pynqrepro.finnflow.verify import Verification
    from pynqrepro.folding.optimise import Budget
    from pynqrepro.folding.pruned import HardwarePoint
    from pynqrepro.pipeline import Setup
    from pynqrepro.pruning.sweep import StepResult

EXPERIMENT = "experiments/test_pruning.py::test_pruning"
TABLE = "pruning"
TITLE = "Pruning: SIMD-block (study) and channel pruning, fine-tuned"
FIGURE = "pruning_pareto.png"
VERIFY_IMAGES = 10  # test images through every FINN stage of the most pruned channel network
NOTES = [
    "sparsity: fraction of conv weights pruned (SIMD blocks: masked; channels: removed). FC layers stay dense.",
    "est. fps / LUT / BRAM18: the fastest folding whose whole design fits the row's budget under FINN's cost "
    "model, at the board's default clock; the whole design is the compute nodes, the DWCs and FIFOs FINN's build "
    "inserts (minimal depths; FIFO sizing on a Vivado host may deepen them) and the board's shell. The budget "
    f"is the board's ({STUDY_LUT_RATIO:g} x LUTs, all BRAM18/DSP) when the dense network fits it; otherwise (8-bit "
    "on a Pynq-Z1) the smallest LUT budget, rounded up to 0.05 x device, that fits the dense network, so "
    f"speed-ups compare like with like. 'fits {STUDY_LUT_RATIO:g} x LUT': some folding of the step fits the board's "
    f"own budget ({STUDY_LUT_RATIO:g} x LUTs), whole design. 'fits': some folding fits the calibrated budget, our "
    "estimate x (1 + our stated upper bound) within the device (reports/calibration.md); 'LUT/BRAM18 bound': the "
    "row's folding's estimate x (1 + bound), the most a synthesis should use.",
    "channels: kept counts per conv layer are multiples of 1/16 of its dense width (L1 channel scores), not "
    "of the dense folding's PE/SIMD: that rule left the fully parallel layers that bound throughput "
    "unprunable (2-bit step 1 gained nothing); the optimiser re-folds every step.",
    "simd_blocks rows are estimates only: the speed-up needs the study's forked input generator that "
    "skips pruned blocks, which stock FINN lacks. channels rows are ordinary smaller networks.",
    "simd_blocks folding: a pruned conv MVAU whose SIMD divides the SIMD its masks were cut at (the preset "
    "list) skips whole mask blocks and streams only the columns the step's masks keep; at any other SIMD "
    "the optimiser may still run it dense, as stock FINN would.",
    "FINN build prep: the row's folding JSON (its config in pruning.json) went through the Python part of FINN's "
    "build on the step's own HW model, as a user applies it: ApplyConfig ... InsertDWC, InsertFIFO, code "
    "generation (step_hw_codegen), InsertIODMA, dataflow partitioning. 'equal': FINN accepts it and its "
    "estimate of the prepared graph plus the shell is ours; else what differs (simd_blocks: stock FINN builds "
    "the masked network dense, so cycles differ where the estimate skips pruned blocks) or 'rejected:' and "
    "FINN's reason.",
    "Study rows: CIFAR-10, est. fps at the out-of-context fmax; smoke-scale rows are digits and not comparable.",
]
HARDWARE_NOTE = {"simd_blocks": "estimate only (needs block-skipping input generator)", "channels": "stock FINN"}


@dataclass(frozen=True)
class Case:
    bits: int  # weight and activation bits

    @property
    def cnv_bits(self) -> tuple[int, int]:
        return self.bits, self.bits

    @property
    def id(self) -> str:
        return str(self.bits)


CASES = (Case(2), Case(4), Case(8))


@dataclass(frozen=True)
class Step:
    """One sweep step: its artifact, what it reached and its best folding."""

    method: str
    sweep: SweepConfig
    artifact: Artifact
    result: StepResult
    point: HardwarePoint


@dataclass(frozen=True)
class PruningSweeps:
    case: Case
    dense: Artifact
    dense_acc: float
    budget: Budget  # the sweep's: the board's, or the smallest grid budget fitting the dense network
    board_limit: Budget  # the board's own
    base: HardwarePoint  # the dense network's best folding
    steps: list  # Step, both methods in order
    checked: Step  # the smallest channel-pruned network ...
    check: Verification  # ... through every FINN stage

    def points(self) -> list[tuple[str, int, HardwarePoint]]:
        """(method, step, folding) of every row with a folding: the dense network's, then each step's."""
        return [("dense", 0, self.base)] + [(s.method, s.result.step, s.point) for s in self.steps]

    def build_rejections(self) -> list[tuple[str, int, str]]:
        """(method, step, FINN's reason) of every row whose folding FINN's build preparation rejects."""
        return [(method, step, point.finn_build.rejected) for method, step, point in self.points()
                if not point.finn_build.passes]

    def build_disagreements(self) -> list[tuple[str, int, str]]:
        """(method, step, what differs) of the stock-FINN rows (dense, channels) where FINN's figures
        of the prepared build differ from ours (simd_blocks rows differ by design: FINN builds them dense)."""
        return [(method, step, point.finn_build.cell()) for method, step, point in self.points()
                if method != "simd_blocks" and not point.finn_build.agrees]

    def speedup(self, step: Step) -> float:
        return step.point.est_fps / self.base.est_fps

    def drops_beyond(self, limits: tuple[AccuracyDropLimit, ...]) -> list[str]:
        """The accuracy-drop limits of this bit width that a method's step nearest the limit's
        sparsity exceeds."""
        broken = []
        for limit in limits:
            if limit.bits != self.case.bits:
                continue
            for method in METHODS:
                near = min((s for s in self.steps if s.method == method),
                           key=lambda s: abs(s.result.sparsity - limit.sparsity))
                drop, allowed = self.dense_acc - near.result.test_acc, allowed_drop(limit)
                if drop > allowed:
                    broken.append(f"{method} step {near.result.step} ({100 * near.result.sparsity:.1f}% sparse) "
                                  f"loses {drop:.2f} points, more than {allowed:.2f}")
        return broken


def allowed_drop(limit: AccuracyDropLimit) -> float:
    """A limit's points: its own, or the study's published drop (dense top-1 minus top-1 at the
    limit's sparsity, its sweep's step nearest that sparsity) plus ``above_published``."""
    if limit.points is not None:
        return limit.points
    sweep = select(STUDY_PRUNING_SWEEP, bits=limit.bits)
    dense = next(point for point in sweep if point.conv_sparsity == 0.0)
    near = min(sweep, key=lambda point: abs(point.conv_sparsity - limit.sparsity))
    return dense.top1 - near.top1 + limit.above_published


def measure(setup: Setup, case: Case) -> PruningSweeps:
    from pynqrepro.finnflow.hw_build import hw_model_artifact
    from pynqrepro.finnflow.verify import stored_verification
    from pynqrepro.folding.budget_calibration import calibrated_budget
    from pynqrepro.folding.optimise import board_budget
    from pynqrepro.folding.pruned import best_folding, masked_blocks, sweep_budget
    from pynqrepro.pipeline import holdout_images
    from pynqrepro.pruning.sweep import run_sweep, sweep_recipe
    from pynqrepro.training.recipes import trained_checkpoint, training_result
    from pynqrepro.training.trainer import RunOptions

    store, board = setup.store, setup.board
    dense = trained_checkpoint(store, setup.scale, case.bits, case.bits, setup.data_dir)
    board_limit = board_budget(board, STUDY_LUT_RATIO)
    calibrated = calibrated_budget(board, store.root)
    budget = sweep_budget(store, dense, board, STUDY_LUT_RATIO)
    base = best_folding(store, dense, board, budget, board_limit, calibrated=calibrated)
    run = RunOptions(experiments=store.root, data_dir=setup.data_dir, progress=False)
    steps = []
    for method in METHODS:
        sweep = sweep_recipe(setup.scale, case.bits, method)
        for artifact, result in run_sweep(store, dense, sweep, run, bit_width=case.bits):
            point = best_folding(store, artifact, board, budget, board_limit, masked_blocks(artifact), calibrated)
            steps.append(Step(method, sweep, artifact, result, point))
    smallest = [s for s in steps if s.method == "channels"][-1]
    images, _ = holdout_images(setup, VERIFY_IMAGES)
    check = stored_verification(store, smallest.artifact, hw_model_artifact(store, smallest.artifact, board), images)
    return PruningSweeps(case, dense, training_result(dense).test_acc, budget, board_limit, base, steps,
                         smallest, check)


def tabulate(results: Recorder, setup: Setup, sweeps: PruningSweeps) -> None:
    from pynqrepro.folding.budget_calibration import bounded, calibrated_margins
    from pynqrepro.folding.pruned import describe_budget

    board, bits = setup.board, sweeps.case.bits
    table = results.table(TABLE, title=TITLE, notes=NOTES, plot=f"{__name__}:pareto_plot",
                          summary=f"{__name__}:first_screen")
    common = {"bits": bits, "board": board.name, "dataset": setup.scale.dataset,
              "budget": describe_budget(sweeps.budget, board, STUDY_LUT_RATIO)}
    source = f"pynqrepro ({setup.scale.name})"
    margins = calibrated_margins(setup.store.root)

    def row(method: str, step: int, sparsity: float, acc: float, point: HardwarePoint, note: str) -> dict:
        return {**common, "method": method, "step": step, "sparsity %": round(100 * sparsity, 1),
                "acc %": round(acc, 2), "drop vs dense": round(sweeps.dense_acc - acc, 2),
                "est fps": round(point.est_fps, 1), "speedup vs dense": round(point.est_fps / sweeps.base.est_fps, 3),
                "LUT (whole)": point.lut, "BRAM18 (whole)": point.bram18,
                "LUT bound": bounded(point.lut, "LUT", margins),
                "BRAM18 bound": bounded(point.bram18, "BRAM_18K", margins), FITS: point.fits_calibrated,
                f"fits {STUDY_LUT_RATIO:g} x LUT": point.fits_board, "FINN build prep": point.finn_build.cell(),
                "note": note, "source": source}

    table.add(row("dense", 0, 0.0, sweeps.dense_acc, sweeps.base, HARDWARE_NOTE["channels"]),
              config={"checkpoint": sweeps.dense.key, "folding": sweeps.base.config})
    for step in sweeps.steps:
        table.add(row(step.method, step.result.step, step.result.sparsity, step.result.test_acc, step.point,
                      HARDWARE_NOTE[step.method]),
                  config={"sweep": step.sweep.step_key(), "artifact": step.artifact.key,
                          "folding": step.point.config})
    for ref in select(STUDY_PRUNING_SWEEP, board=board.name, bits=bits):
        table.add_reference(ref, {"bits": bits, "board": ref.board, "dataset": ref.dataset, "method": "simd_blocks",
                                  "sparsity %": round(100 * ref.conv_sparsity, 1), "acc %": ref.top1,
                                  "est fps": ref.est_fps, "note": "CIFAR-10"})
    table.add({**common, "method": "channels: FINN flow check", "step": sweeps.checked.result.step,
               "note": f"top-1 agreement: {sweeps.check.agreement()}", "source": source},
              config={"artifact": sweeps.checked.artifact.key})


MAX_DROP = 1.0  # accuracy points the first screen's "best pruned" may lose against the dense network
FITS = "fits"  # the column: some folding of the step fits the calibrated (default) budget


def first_screen(rows: list[dict]) -> list[str]:
    """pruning.md's answer: per bit width, the dense network's fps and the fastest step of each
    method within ``MAX_DROP`` points of its accuracy, with its speed-up and whether it fits."""
    from tabulate import tabulate as render

    ours = [r for r in rows if not is_reference_row(r) and r.get("est fps") not in (None, "")]
    body = []
    for bits, board in sorted({(r["bits"], r["board"]) for r in ours}):
        same = [r for r in ours if r["bits"] == bits and r["board"] == board]
        dense = next((r for r in same if r["method"] == "dense"), None)
        for method in METHODS:
            kept = [r for r in same if r["method"] == method and float(r.get("drop vs dense") or 0) <= MAX_DROP]
            best = max(kept, key=lambda r: float(r["est fps"]), default=None)
            if best is None or dense is None:
                continue
            body.append([board, f"{bits}/{bits}", method, f"{float(dense['est fps']):,.0f}", f"{float(best['est fps']):,.0f}",
                         f"{float(best['speedup vs dense']):.2f}x", best["sparsity %"], best["acc %"],
                         "yes" if best.get(FITS) else "no", HARDWARE_NOTE[method]])
    if not body:
        return []
    return ["## Best pruned network per bit width", "",
            f"The fastest step within {MAX_DROP:g} point of the dense network's accuracy (this scale's dataset).", "",
            render(body, headers=["board", "W/A", "method", "dense fps", "fps", "speed-up", "sparsity %", "acc %",
                                  "fits (default budget)", "hardware"], tablefmt="github", disable_numparse=True)]


DATASETS = {"digits": "scikit-learn digits", "cifar10": "CIFAR-10"}  # how the figure names a dataset


def _scale_of(row: dict) -> str:
    """The scale of one of our rows, from its source "pynqrepro (<scale>)"."""
    source = str(row.get("source", ""))
    return source[source.find("(") + 1:source.rfind(")")] if "(" in source else ""


def _dataset_of(row: dict, ours: bool) -> str:
    """A row's dataset where it does not name one (rows recorded before the column): ours the
    scale's, the study's CIFAR-10."""
    from pynqrepro.core.scale import SCALES

    scale = SCALES.get(_scale_of(row).removesuffix("-dry"))
    return scale.dataset if ours and scale else "cifar10"


def pareto_series(rows: list[dict]) -> dict[str, dict]:
    """panel (one per dataset and source) -> (label, ours) -> [(sparsity %, fps, acc %, fits)]."""
    panels: dict[str, dict] = {}
    for row in rows:
        if row.get("est fps") in (None, "") or row.get("acc %") in (None, ""):
            continue
        ours = not is_reference_row(row)
        dataset = DATASETS.get(row.get("dataset") or _dataset_of(row, ours), row.get("dataset"))
        panel = f"ours: {dataset}, {_scale_of(row)} scale" if ours else f"the study's: {dataset}"
        label = (f"{row['bits']}-bit {row['method']}", ours)
        fits = row.get(FITS) is not False
        panels.setdefault(panel, {}).setdefault(label, []).append(
            (float(row["sparsity %"]), float(row["est fps"]), float(row["acc %"]), fits))
    return panels


def pareto_plot(rows: list[dict], reports_dir: Path) -> None:
    """The table's figure: accuracy against estimated throughput, one panel per dataset (ours at
    this scale, the study's on CIFAR-10: their accuracies do not compare), one series per (source,
    bit width, method), points in sparsity order; a design that does not fit the board is drawn
    hollow with a cross; log-scale fps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = pareto_series(rows)
    if not panels:
        return
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False, sharex=True)
    for ax, (panel, series) in zip(axes[0], sorted(panels.items())):  # ours first
        for (label, ours), points in sorted(series.items()):
            points.sort()
            line, = ax.plot([p[1] for p in points], [p[2] for p in points], "o-" if ours else "s--", label=label)
            misfits = [p for p in points if not p[3]]
            if misfits:
                ax.plot([p[1] for p in misfits], [p[2] for p in misfits], "x", color="red", ms=9,
                        label="does not fit the board" if ax.get_legend_handles_labels()[1].count(
                            "does not fit the board") == 0 else None)
                ax.plot([p[1] for p in misfits], [p[2] for p in misfits], "o", mfc="white", color=line.get_color())
        ax.set_xscale("log")
        ax.set_xlabel("estimated throughput (fps, FINN cost model)")
        ax.set_ylabel("top-1 accuracy (%)")
        ax.set_title(panel, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Pruning: accuracy vs estimated throughput (sparsity grows along each line)")
    fig.tight_layout()
    fig.savefig(Path(reports_dir) / FIGURE, dpi=120)
    plt.close(fig)
