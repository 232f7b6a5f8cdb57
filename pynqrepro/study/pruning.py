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
                drop = self.dense_acc - near.result.test_acc
                if drop > limit.points:
                    broken.append(f"{method} step {near.result.step} ({100 * near.result.sparsity:.1f}% sparse) "
                                  f"loses {drop:.2f} points, more than {limit.points}")
        return broken


def measure(setup: Setup, case: Case) -> PruningSweeps:
    from pynqrepro.finnflow.build import hw_model_artifact
    from pynqrepro.finnflow.verify import stored_verification
    from pynqrepro.folding.calibration import calibrated_budget
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
    from pynqrepro.folding.calibration import calibrated_margins
    from pynqrepro.folding.pruned import describe_budget

    board, bits = setup.board, sweeps.case.bits
    table = results.table(TABLE, title=TITLE, notes=NOTES, plot=f"{__name__}:pareto_plot")
    common = {"bits": bits, "board": board.name, "budget": describe_budget(sweeps.budget, board, STUDY_LUT_RATIO)}
    source = f"pynqrepro ({setup.scale.name})"
    bound = calibrated_margins(setup.store.root).bound

    def bounded(value: int, resource: str) -> int | None:
        return None if bound.get(resource) is None else round(value * (1 + bound[resource]))

    def row(method: str, step: int, sparsity: float, acc: float, point: HardwarePoint, note: str) -> dict:
        return {**common, "method": method, "step": step, "sparsity %": round(100 * sparsity, 1),
                "acc %": round(acc, 2), "drop vs dense": round(sweeps.dense_acc - acc, 2),
                "est fps": round(point.est_fps, 1), "speedup vs dense": round(point.est_fps / sweeps.base.est_fps, 3),
                "LUT (whole)": point.lut, "BRAM18 (whole)": point.bram18, "LUT bound": bounded(point.lut, "LUT"),
                "BRAM18 bound": bounded(point.bram18, "BRAM_18K"), "fits": point.fits_calibrated,
                f"fits {STUDY_LUT_RATIO:g} x LUT": point.fits_board, "note": note,
                "source": source}

    table.add(row("dense", 0, 0.0, sweeps.dense_acc, sweeps.base, HARDWARE_NOTE["channels"]),
              config={"checkpoint": sweeps.dense.key})
    for step in sweeps.steps:
        table.add(row(step.method, step.result.step, step.result.sparsity, step.result.test_acc, step.point,
                      HARDWARE_NOTE[step.method]),
                  config={"sweep": step.sweep.step_key(), "artifact": step.artifact.key})
    for ref in select(STUDY_PRUNING_SWEEP, board=board.name, bits=bits):
        table.add_reference(ref, {"bits": bits, "board": ref.board, "method": "simd_blocks",
                                  "sparsity %": round(100 * ref.conv_sparsity, 1), "acc %": ref.top1,
                                  "est fps": ref.est_fps, "note": "CIFAR-10"})
    table.add({**common, "method": "channels: FINN flow check", "step": sweeps.checked.result.step,
               "note": f"top-1 agreement: {sweeps.check.agreement()}", "source": source},
              config={"artifact": sweeps.checked.artifact.key})


def pareto_plot(rows: list[dict], reports_dir: Path) -> None:
    """The table's figure: accuracy against estimated throughput, ours and the study's, one series
    per (source, bit width, method), points in sparsity order; log-scale fps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[tuple, list] = {}
    for row in rows:
        if row.get("est fps") in (None, "") or row.get("acc %") in (None, ""):
            continue
        ours = not is_reference_row(row)
        label = (f"{'ours' if ours else 'study'} {row['bits']}-bit {row['method']}", ours)
        series.setdefault(label, []).append((float(row["sparsity %"]), float(row["est fps"]), float(row["acc %"])))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (label, ours), points in sorted(series.items()):
        points.sort()
        ax.plot([p[1] for p in points], [p[2] for p in points], "o-" if ours else "s--", label=label,
                alpha=1.0 if ours else 0.6)
    ax.set_xscale("log")
    ax.set_xlabel("estimated throughput (fps, FINN cost model)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title("Pruning: accuracy vs estimated throughput (sparsity grows along each line)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(Path(reports_dir) / FIGURE, dpi=120)
    plt.close(fig)
