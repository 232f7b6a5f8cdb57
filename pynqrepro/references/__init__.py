"""Published figures that reports show beside ours, as typed records that say what the figure is
(``Scope``), which board it holds for (None: any board, e.g. an accuracy in simulation) and where
it comes from. ``select`` picks the records that apply to a row of ours; ``Table.add_reference``
writes one as a "reference: <source>" row.

"Study" is the thesis "Optimizing Neural Networks for PYNQ" (code: rbcarlos/Bachelor-Thesis, 2021,
FINN v0.5b era); estimated fps there is clock / max per-layer cycles. Files copied from public
sources live in ``data/`` (see ``data/SOURCE.md``).
"""

import json
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from pynqrepro.core.errors import UserError

DATA = Path(__file__).parent / "data"
BREVITAS_README = "Brevitas brevitas_examples/bnn_pynq/README.md (pretrained)"
STUDY_PROFILING = "study, folding/profiling.ipynb"
STUDY_LUT_RATIO = 0.85  # the study's LUT budget: 85% of the device's LUTs
MVAU_WWIDTH_MAX = 36  # FINN SetFolding's default limit on an MVAU's SIMD x weight bits


class Scope(Enum):
    """What a published figure is."""

    SIMULATED_ACCURACY = "test top-1 in simulation (PyTorch)"
    ON_BOARD_ACCURACY = "test top-1 measured on the board"
    STUDY_ESTIMATE = "the study's FINN v0.5b estimate (and out-of-context synthesis where run)"
    BOARD_MEASUREMENT = "throughput measured on the board, beside FINN's estimate"
    SYNTHESIS = "post-synthesis or post-implementation resources of a known folding"


@dataclass(frozen=True, kw_only=True)
class Reference:
    source: str
    scope: Scope
    board: str | None = None  # the board the figure holds for; None: any board
    dataset: str = "cifar10"


def select(records, board: str | None = None, **fields) -> list:
    """The records that apply to a row of ours: those for ``board`` or for no particular board
    (when ``board`` is given) whose ``fields`` all equal the values given."""
    return [r for r in records
            if (board is None or r.board in (None, board)) and all(getattr(r, k) == v for k, v in fields.items())]


@dataclass(frozen=True)
class AccuracyReference(Reference):
    model: str
    weight_bits: int
    act_bits: int
    top1: float  # CIFAR-10 test top-1, %


_SIMULATED = dict(scope=Scope.SIMULATED_ACCURACY)
ACCURACY = (
    AccuracyReference("CNV W1A1", 1, 1, 84.22, source=BREVITAS_README, **_SIMULATED),
    AccuracyReference("CNV W1A2", 1, 2, 87.80, source=BREVITAS_README, **_SIMULATED),
    AccuracyReference("CNV W2A2", 2, 2, 89.03, source=BREVITAS_README, **_SIMULATED),
    AccuracyReference("CNV 2-bit unpruned", 2, 2, 88.62, source=STUDY_PROFILING, **_SIMULATED),
    AccuracyReference("CNV 4-bit unpruned", 4, 4, 90.21, source=STUDY_PROFILING, **_SIMULATED),
    AccuracyReference("CNV W1A1 on board (Pynq)", 1, 1, 84.19, source="FINN cnv_end2end_example notebook",
                      scope=Scope.ON_BOARD_ACCURACY, board="pynq-z1"),
)

STUDY_PRUNING_SOURCE = "study, SIMD-block L1 pruning sweep, fine-tuned (est. fps at OOC fmax)"


@dataclass(frozen=True)
class PruningPoint(Reference):
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
    PruningPoint(bits, sparsity, fps, top1, source=STUDY_PRUNING_SOURCE, scope=Scope.STUDY_ESTIMATE,
                 board="pynq-z1")
    for sparsity, points in _SWEEP.items()
    for bits, (fps, top1) in zip((2, 4), points)
)
STUDY_FOLDING_SOURCE = "study, Pynq-Z1 folding runs (FINN v0.5b estimates @100 MHz)"


@dataclass(frozen=True)
class FoldingRun(Reference):
    """One of the study's folding runs on Pynq-Z1 (estimates at 100 MHz; OOC synthesis if run) of
    CNV W{bits}A{bits}."""

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

    @property
    def weight_bits(self) -> int:
        return self.bits

    @property
    def act_bits(self) -> int:
        return self.bits

    @property
    def synthesised(self) -> bool:
        """Whether the study ran out-of-context synthesis of this folding."""
        return self.ooc_lut is not None

    def compares_with(self, lut_ratio: float) -> bool:
        """A run at this LUT budget, or one without a budget (FINN's own foldings)."""
        return self.lut_ratio in (lut_ratio, None)

    def bottleneck(self) -> str:
        """The run's slowest layer as finn-plus names it (its report uses FINN v0.5b names)."""
        name = study_run_files(self.run)["estimate_network_performance"]["max_cycles_node_name"]
        return finn05_name_to_finn_plus(name)


_STUDY_RUN = dict(source=STUDY_FOLDING_SOURCE, scope=Scope.STUDY_ESTIMATE, board="pynq-z1")
STUDY_FOLDING_RUNS = (
    FoldingRun("estimate_set_folding_default_1bit_nonpruned", 1, "FINN default folding", None,
               3051.8, 32768, 25_849, 146, 20_212, 26_157, 101, 0, 101.0, **_STUDY_RUN),
    FoldingRun("estimate_set_folding_exhaustive_no_pruning_100_budget_1bit_nonpruned", 1, "study search", 1.0,
               6944.4, 14400, 50_279, 195, 29_167, 35_798, 113, 0, 100.4, **_STUDY_RUN),
    FoldingRun("estimate_set_folding_finn_no_pruning_targetfps_6800_1bit_nonpruned", 1,
               "FINN SetFolding, target 6800 fps", None, 6944.4, 14400, 48_992, 208, **_STUDY_RUN),
    FoldingRun("estimate_set_folding_exhaustive_no_pruning_85_budget_prio_simd_2bit_nonpruned", 2,
               "study search (prio SIMD)", 0.85, 1808.4, 55296, 44_846, 273, 42_237, 44_466, 136, 0, 100.1,
               **_STUDY_RUN),
    FoldingRun("estimate_set_folding_finn_no_pruning_targetfps_1800_2bit_nonpruned", 2,
               "FINN SetFolding, target 1800 fps", None, 1953.1, 51200, 32_416, 243, **_STUDY_RUN),
    FoldingRun("estimate_set_folding_exhaustive_no_pruning_85_budget_prio_simd_auto_ram_4bit_nonpruned", 4,
               "study search (prio SIMD, auto RAM)", 0.85, 442.9, 225792, 47_651, 382, 46_008, 61_292, 232, 0, 123.5,
               **_STUDY_RUN),
    FoldingRun("estimate_set_folding_finn_no_pruning_targetfps_442_4bit_nonpruned", 4,
               "FINN SetFolding, target 442 fps", None, 452.1, 221184, 48_505, 427, **_STUDY_RUN),
)


def reference_folding(path: str) -> dict:
    """A folding kept under data/ (FINN ApplyConfig JSON, conv windows numbered by conv layer as in
    FINN's published CNV foldings; ``finnflow.foldconfig.model_folding`` maps it to a model)."""
    return json.loads((DATA / path).read_text())


@dataclass(frozen=True)
class BoardMeasurement(Reference):
    network: str
    weight_bits: int
    act_bits: int
    clock_mhz: float
    measured_fps: float
    estimated_fps: float  # clock / max_cycles, rounded
    max_cycles: int  # the largest "Ext Latency" of BNN-PYNQ's config.h
    bnn_pynq: str  # the BNN-PYNQ network (its folding: data/bnn-pynq-foldings/<bnn_pynq>.json)

    @property
    def folding_file(self) -> str:
        return f"bnn-pynq-foldings/{self.bnn_pynq}.json"


_BNN_PYNQ = dict(source="BNN-PYNQ notebooks/CNV-QNN_Cifar10_Testset.ipynb, max cycles from its config.h",
                 scope=Scope.BOARD_MEASUREMENT)
BOARD_MEASUREMENTS = (
    BoardMeasurement("CNV W1A1", 1, 1, 300, 9150, 9155, 32768, "cnvW1A1", board="ultra96", **_BNN_PYNQ),
    BoardMeasurement("CNV W2A2", 2, 2, 300, 2580, 2604, 115200, "cnvW2A2", board="ultra96", **_BNN_PYNQ),
)


@dataclass(frozen=True)
class SynthesisAnchor(Reference):
    """Resources Vivado reported for a known folding of CNV: what FINN's estimates are calibrated
    against. ``bram18`` counts 18 Kb blocks (a RAMB36 is 2); ``shell`` says whether the figure
    includes the platform shell around the accelerator (whole design) or not (accelerator only)."""

    design: str
    weight_bits: int
    act_bits: int
    folding_file: str  # under data/: the folding synthesised
    shell: bool
    tool: str
    lut: int
    ff: int
    bram18: int
    dsp: int
    differs: str  # what differs from the design finn-plus builds from the same folding

    def folding(self) -> dict:
        return reference_folding(self.folding_file)


_IMPLEMENTED = dict(scope=Scope.SYNTHESIS, board="pynq-z1", shell=True,
                    tool="Vivado 2018.2, Pynq-Z1, implemented, whole design")
_BNN_PYNQ_DIFFERS = ("BNN-PYNQ's own 2018 HLS library (weights and thresholds as HLS arrays in its own packing) and "
                     "shell (its HLS top's AXI master on the Zynq PS, no DMA IP); last layer 64 padded outputs at PE 4 "
                     "(finn-plus: 10 at PE 5)")
_PR209 = dict(scope=Scope.SYNTHESIS, board="pynq-z1", shell=False,
              source="Xilinx/finn pull request #209, comment of 2020-09-05 (cnv-w1a1 ZynqBuild)",
              tool="Vivado, Pynq-Z1, FINN ZynqBuild post-synthesis, excluding shell",
              folding_file="finn-foldings/cnv-w1a1.json")
_PR209_DIFFERS = ("FINN of Sep 2020 (HLS layers, decoupled weights), in the end-to-end test's folding (= FINN's "
                  "shipped cnv-w1a1); that build's FIFO depths are not published (finn-plus: minimal)")
SYNTHESIS_ANCHORS = (
    SynthesisAnchor("CNV W1A1, BNN-PYNQ folding", 1, 1, "bnn-pynq-foldings/cnvW1A1.json", lut=26_072, ff=41_312,
                    bram18=76 * 2 + 96, dsp=24, differs=_BNN_PYNQ_DIFFERS,
                    source="BNN-PYNQ bnn/src/network/cnvW1A1/README.md", **_IMPLEMENTED),
    SynthesisAnchor("CNV W1A2, BNN-PYNQ folding", 1, 2, "bnn-pynq-foldings/cnvW1A2.json", lut=40_321, ff=56_276,
                    bram18=90 * 2 + 83, dsp=26, differs=_BNN_PYNQ_DIFFERS,
                    source="BNN-PYNQ bnn/src/network/cnvW1A2/README.md", **_IMPLEMENTED),
    SynthesisAnchor("CNV W2A2, BNN-PYNQ folding", 2, 2, "bnn-pynq-foldings/cnvW2A2.json", lut=37_302, ff=51_386,
                    bram18=138 * 2 + 4, dsp=32, differs=_BNN_PYNQ_DIFFERS,
                    source="BNN-PYNQ bnn/src/network/cnvW2A2/README.md", **_IMPLEMENTED),
    SynthesisAnchor("CNV W1A1, FINN end-to-end folding, before PR #209", 1, 1, lut=26_487, ff=34_031,
                    bram18=94 * 2 + 73, dsp=0, **_PR209,
                    differs=_PR209_DIFFERS + "; weight memories as before PR #209, which FINN has not built since"),
    SynthesisAnchor("CNV W1A1, FINN end-to-end folding, after PR #209 (decoupled weight memories)", 1, 1,
                    lut=21_135, ff=31_517, bram18=98 * 2 + 9, dsp=0, differs=_PR209_DIFFERS, **_PR209),
) + tuple(
    SynthesisAnchor(f"CNV W{run.bits}A{run.bits}, study: {run.method}", run.bits, run.bits,
                    f"study-foldings/{run.run}.json", shell=False, lut=run.ooc_lut, ff=run.ooc_ff,
                    bram18=2 * run.ooc_bram36, dsp=run.ooc_dsp, scope=Scope.SYNTHESIS, board=run.board,
                    tool=f"Vivado, Pynq-Z1 part, out-of-context synthesis of the accelerator "
                         f"(fmax {run.ooc_fmax_mhz} MHz)",
                    differs="FINN v0.5b (2021): HLS sliding windows and thresholds (finn-plus: RTL), its DWCs and "
                            "FIFOs; folding reconstructed from the study's reports",
                    source=f"study, {run.run}/ooc_synth_and_timing.json")
    for run in STUDY_FOLDING_RUNS if run.synthesised
)

FINN_FOLDINGS = {"w1a1": "cnv-w1a1.json", "w1a2": "cnv-w1a2.json", "w2a2": "cnv-w2a2.json"}


def has_finn_folding(weight_bits: int, act_bits: int) -> bool:
    return f"w{weight_bits}a{act_bits}" in FINN_FOLDINGS


def finn_folding(weight_bits: int, act_bits: int) -> dict:
    """FINN's published Pynq-Z1 folding (ApplyConfig JSON) for CNV W{weight_bits}A{act_bits}."""
    name = f"w{weight_bits}a{act_bits}"
    if name not in FINN_FOLDINGS:
        raise UserError(f"FINN publishes CNV foldings only for {', '.join(FINN_FOLDINGS)}, not {name}")
    return reference_folding(f"finn-foldings/{FINN_FOLDINGS[name]}")


def study_run_files(run: str) -> dict[str, dict]:
    """The JSON reports of one of the study's folding runs, by file stem."""
    folder = DATA / "thesis-folding-results" / run
    if not folder.is_dir():
        raise UserError(f"no study run {run!r}: choose one of {', '.join(r.run for r in STUDY_FOLDING_RUNS)}")
    return {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}


# FINN v0.5b layer names (the study's reports) -> finn-plus op types. Numbering is per op type in
# both; SWG and pool numbering differ (finn-plus lowers each max-pool to a depthwise SWG + Pool,
# see pynqrepro.finnflow.foldconfig.published_folding), MVAU numbering matches.
FINN05_OP_TYPES = {
    "StreamingFCLayer_Batch": "MVAU_hls",
    "ConvolutionInputGenerator": "ConvolutionInputGenerator_rtl (conv)",
    "StreamingMaxPool_Batch": "ConvolutionInputGenerator_rtl (depthwise) + Pool_hls",
    "Thresholding_Batch": "Thresholding_rtl",
    "LabelSelect_Batch": "LabelSelect_hls",
}


def finn05_name_to_finn_plus(name: str) -> str:
    """``StreamingFCLayer_Batch_6`` -> ``MVAU_hls_6``; other FINN v0.5b names map to their op type."""
    base, _, index = name.rpartition("_")
    mapped = FINN05_OP_TYPES.get(base)
    if mapped is None:
        return name
    return f"{mapped}_{index}" if mapped == "MVAU_hls" else f"{mapped} #{index}"
