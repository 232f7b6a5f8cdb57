"""The FINN flow on the trained CNVs (reports/finn_estimates.md).

Method: verify the trained CNV through every FINN stage that executes in Python (the scale's test
images through Brevitas, QONNX, FINN's tidied, streamlined and generic HW-layer graphs: the same
top-1, and the integer stages bit for bit), then take FINN's own estimates of the HW-layer model on the board at PE = SIMD = 1 and at FINN's
published CNV folding (where FINN publishes one), beside the study's FINN v0.5b estimate runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pynqrepro.core.results import Recorder
from pynqrepro.references import STUDY_FOLDING_RUNS, has_finn_folding, select
from pynqrepro.study import Bits, bit_widths

if TYPE_CHECKING:  # the stages are imported where they work, so `pynqrepro report finn_estimates --help` is quick
    from pynqrepro.finnflow.estimate import NetworkEstimate
    from pynqrepro.finnflow.verify import Verification
    from pynqrepro.pipeline import Network, Setup

EXPERIMENT = "experiments/test_finn_flow.py::test_finn_flow"
TABLE = "finn_estimates"
TITLE = "FINN estimates of the trained CNVs"
NOTES = [
    "Estimates are FINN's own (finn-plus exp_cycles_per_layer, res_estimation, dataflow_performance) "
    "on the HW-layer graph built by FINN's estimate-only builder steps; est. fps = clock / max cycles.",
    "FINN's published foldings name only the conv sliding-window generators; finn-plus also lowers each "
    "max-pool to a depthwise SWG + Pool, so published SWG k is applied to the SWG feeding MVAU k and the "
    "pool layers keep FINN's defaults.",
    "Study rows: FINN v0.5b (the thesis), names mapped: StreamingFCLayer_Batch_N -> MVAU_hls_N, "
    "StreamingMaxPool_Batch -> depthwise SWG + Pool_hls. Study '1-bit' = W1A1, '2-bit' = W2A2, '4-bit' = W4A4.",
    "Verification: top-1 agreement of QONNX with Brevitas and of each FINN stage with QONNX on the scale's "
    "test images (smoke: all 360); bit-exact: images whose HW-layer graph's LabelSelect input equals the "
    "streamlined graph's TopK input exactly (both integers; where one differs, the first HW node whose output "
    "differs from the streamlined tensor of the same name is named). verify s: wall time of that verification "
    "(FINN's node execution batched over images; cached per checkpoint, HW model and image set).",
]
CASES = bit_widths((1, 1), (1, 2), (2, 2), (4, 4), (8, 8))  # every trained bit width


@dataclass(frozen=True)
class FlowCheck:
    case: Bits
    network: Network
    verification: Verification
    estimates: dict  # folding name -> (FINN ApplyConfig dict or None for PE=SIMD=1, NetworkEstimate)


def measure(setup: Setup, case: Bits) -> FlowCheck:
    from pynqrepro.finnflow.verify import stored_verification
    from pynqrepro.pipeline import holdout_images, trained_network

    network = trained_network(setup, case.weight_bits, case.act_bits)
    images, _ = holdout_images(setup, setup.scale.verify_images)
    check = stored_verification(setup.store, network.checkpoint, network.hw, images)
    foldings = {"all PE=SIMD=1": None}
    if has_finn_folding(case.weight_bits, case.act_bits):
        foldings["FINN published"] = network.published_folding()
    estimates: dict[str, tuple[dict | None, NetworkEstimate]] = {
        name: (folding, network.estimate(folding)) for name, folding in foldings.items()}
    return FlowCheck(case, network, check, estimates)


def tabulate(results: Recorder, setup: Setup, flow: FlowCheck) -> None:
    case, network, board = flow.case, flow.network, setup.board
    table = results.table(TABLE, title=TITLE, notes=NOTES)
    for name, (folding, result) in flow.estimates.items():
        table.add({
            "model": case.model, "board": board.name, "folding": name,
            "max cycles": result.max_cycles, "bottleneck": result.bottleneck,
            "est. fps": round(result.est_fps, 1), "latency ms": round(result.latency_ns / 1e6, 3),
            "LUT": round(result.totals["lut"]), "BRAM18": round(result.totals["bram18"]),
            "DSP": round(result.totals["dsp"]), "verification": flow.verification.agreement(),
            "bit-exact": flow.verification.exactness(), "verify s": flow.verification.seconds,
            "source": f"pynqrepro ({setup.scale.name}, {board.clock_ns} ns)",
        }, config={"checkpoint": network.checkpoint.key, "hw_model": network.hw.key, "folding": folding})
    for run in select(STUDY_FOLDING_RUNS, board=board.name, weight_bits=case.weight_bits, act_bits=case.act_bits):
        table.add_reference(run, {
            "model": case.model, "board": run.board, "folding": run.method,
            "max cycles": run.max_cycles, "bottleneck": run.bottleneck(),
            "est. fps": run.est_fps, "latency ms": None, "LUT": run.est_lut, "BRAM18": run.est_bram18,
            "DSP": None, "verification": None, "bit-exact": None, "verify s": None,
        }, config={"run": run.run})
