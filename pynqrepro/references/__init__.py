"""Published figures that reports show beside ours, as data, each with its source.

"Study" is the thesis "Optimizing Neural Networks for PYNQ" (code: rbcarlos/Bachelor-Thesis, 2021,
FINN v0.5b era); estimated fps there is clock / max per-layer cycles. Files copied from public
sources live in ``data/`` (see ``data/SOURCE.md``).
"""

import json
from dataclasses import dataclass
from pathlib import Path

from pynqrepro.core.errors import UserError

DATA = Path(__file__).parent / "data"
BREVITAS_README = "Brevitas brevitas_examples/bnn_pynq/README.md (pretrained)"
STUDY_PROFILING = "study, folding/profiling.ipynb"


@dataclass(frozen=True)
class AccuracyReference:
    model: str
    weight_bits: int
    act_bits: int
    top1: float  # CIFAR-10 test top-1, %
    source: str


ACCURACY = (
    AccuracyReference("CNV W1A1", 1, 1, 84.22, BREVITAS_README),
    AccuracyReference("CNV W1A2", 1, 2, 87.80, BREVITAS_README),
    AccuracyReference("CNV W2A2", 2, 2, 89.03, BREVITAS_README),
    AccuracyReference("CNV 2-bit unpruned", 2, 2, 88.62, STUDY_PROFILING),
    AccuracyReference("CNV 4-bit unpruned", 4, 4, 90.21, STUDY_PROFILING),
    AccuracyReference("CNV W1A1 on board (Pynq)", 1, 1, 84.19, "FINN cnv_end2end_example notebook"),
)


def accuracy_references(weight_bits: int, act_bits: int) -> list[AccuracyReference]:
    """CIFAR-10 references for a W/A combination (simulation results, not on-board)."""
    return [r for r in ACCURACY if (r.weight_bits, r.act_bits) == (weight_bits, act_bits) and "board" not in r.model]


@dataclass(frozen=True)
class PruningPoint:
    bits: int
    conv_sparsity: float  # fraction of conv weights pruned
    est_fps: float  # at the out-of-context fmax
    top1: float


_SWEEP = {  # conv sparsity: ((fps, top1) 2-bit, (fps, top1) 4-bit)
    0.00: ((1810, 88.62), (547, 90.21)),
    0.15: ((2353, 88.02), (617, 89.64)),
    0.30: ((2719, 83.35), (684, 87.79)),
    0.45: ((2764, 69.20), (845, 85.85)),
    0.60: ((3587, 38.88), (1149, 65.61)),
    0.75: ((3538, 30.12), (1399, 45.52)),
}
STUDY_PRUNING_SWEEP = tuple(
    PruningPoint(bits, sparsity, fps, top1)
    for sparsity, points in _SWEEP.items()
    for bits, (fps, top1) in zip((2, 4), points)
)
STUDY_PRUNING_SOURCE = "study, SIMD-block L1 pruning sweep, fine-tuned (est. fps at OOC fmax)"


@dataclass(frozen=True)
class FoldingRun:
    """One of the study's folding runs on Pynq-Z1 (estimates at 100 MHz; OOC synthesis if run)."""

    run: str  # folder name under data/thesis-folding-results
    bits: int
    method: str
    lut_ratio: float | None
    est_fps: float
    max_cycles: int
    est_lut: int
    est_bram18: int
    ooc_lut: int | None = None
    ooc_ff: int | None = None
    ooc_bram36: int | None = None
    ooc_dsp: int | None = None
    ooc_fmax_mhz: float | None = None


STUDY_FOLDING_RUNS = (
    FoldingRun("estimate_set_folding_default_1bit_nonpruned", 1, "FINN default folding", None,
               3051.8, 32768, 25_849, 146, 20_212, 26_157, 101, 0, 101.0),
    FoldingRun("estimate_set_folding_exhaustive_no_pruning_100_budget_1bit_nonpruned", 1, "study search", 1.0,
               6944.4, 14400, 50_279, 195, 29_167, 35_798, 113, 0, 100.4),
    FoldingRun("estimate_set_folding_finn_no_pruning_targetfps_6800_1bit_nonpruned", 1,
               "FINN SetFolding, target 6800 fps", None, 6944.4, 14400, 48_992, 208),
    FoldingRun("estimate_set_folding_exhaustive_no_pruning_85_budget_prio_simd_2bit_nonpruned", 2,
               "study search (prio SIMD)", 0.85, 1808.4, 55296, 44_846, 273, 42_237, 44_466, 136, 0, 100.1),
    FoldingRun("estimate_set_folding_finn_no_pruning_targetfps_1800_2bit_nonpruned", 2,
               "FINN SetFolding, target 1800 fps", None, 1953.1, 51200, 32_416, 243),
    FoldingRun("estimate_set_folding_exhaustive_no_pruning_85_budget_prio_simd_auto_ram_4bit_nonpruned", 4,
               "study search (prio SIMD, auto RAM)", 0.85, 442.9, 225792, 47_651, 382, 46_008, 61_292, 232, 0, 123.5),
    FoldingRun("estimate_set_folding_finn_no_pruning_targetfps_442_4bit_nonpruned", 4,
               "FINN SetFolding, target 442 fps", None, 452.1, 221184, 48_505, 427),
)
STUDY_FOLDING_SOURCE = "study, Pynq-Z1 folding runs (FINN v0.5b estimates @100 MHz)"


@dataclass(frozen=True)
class BoardMeasurement:
    network: str
    board: str
    clock_mhz: float
    measured_fps: float
    estimated_fps: float
    max_cycles: int
    source: str = "BNN-PYNQ, same PE/SIMD as FINN's shipped CNV foldings"


BOARD_MEASUREMENTS = (
    BoardMeasurement("CNV W1A1", "ultra96", 300, 9150, 9228, 32400),
    BoardMeasurement("CNV W2A2", "ultra96", 300, 2580, 2595, 115200),
)

FINN_FOLDINGS = {"w1a1": "cnv-w1a1.json", "w1a2": "cnv-w1a2.json", "w2a2": "cnv-w2a2.json"}
FINN_FOLDING_SOURCE = "FINN's published CNV folding for Pynq-Z1 (finn-plus repository)"


def finn_folding(weight_bits: int, act_bits: int) -> dict:
    """FINN's published Pynq-Z1 folding (ApplyConfig JSON) for CNV W{weight_bits}A{act_bits}."""
    name = f"w{weight_bits}a{act_bits}"
    if name not in FINN_FOLDINGS:
        raise UserError(f"FINN publishes CNV foldings only for {', '.join(FINN_FOLDINGS)}, not {name}")
    return json.loads((DATA / "finn-foldings" / FINN_FOLDINGS[name]).read_text())


def study_run_files(run: str) -> dict[str, dict]:
    """The JSON reports of one of the study's folding runs, by file stem."""
    folder = DATA / "thesis-folding-results" / run
    if not folder.is_dir():
        raise UserError(f"no study run {run!r}: choose one of {', '.join(r.run for r in STUDY_FOLDING_RUNS)}")
    return {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}
