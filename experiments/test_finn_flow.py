"""FINN flow on the trained CNVs: bit-exact verification, then FINN's estimates on the board at
all-ones folding and at FINN's published CNV foldings, beside the study's FINN v0.5b estimate runs."""

import pytest

from pynqrepro.data.splits import uint8_test_set
from pynqrepro.finnflow import (
    apply_folding,
    conv_swg_names_to_model,
    estimate,
    hw_model_artifact,
    load_cnv,
    load_hw_model,
    verify,
)
from pynqrepro.finnflow.foldconfig import finn05_name_to_finn_plus
from pynqrepro.references import STUDY_FOLDING_RUNS, STUDY_FOLDING_SOURCE, finn_folding, study_run_files
from pynqrepro.training.recipes import trained_checkpoint

BITS = ((1, 1), (1, 2), (2, 2), (4, 4), (8, 8))  # every trained bit width
PUBLISHED = {(1, 1), (1, 2), (2, 2)}  # FINN publishes CNV foldings for these
VERIFY_IMAGES = {"smoke": 20, "paper": 100}
NOTES = [
    "Estimates are FINN's own (finn-plus exp_cycles_per_layer, res_estimation, dataflow_performance) "
    "on the HW-layer graph built by FINN's estimate-only builder steps; est. fps = clock / max cycles.",
    "FINN's published foldings name only the conv sliding-window generators; finn-plus also lowers each "
    "max-pool to a depthwise SWG + Pool, so published SWG k is applied to the SWG feeding MVAU k and the "
    "pool layers keep FINN's defaults.",
    "Study rows: FINN v0.5b (the thesis), names mapped: StreamingFCLayer_Batch_N -> MVAU_hls_N, "
    "StreamingMaxPool_Batch -> depthwise SWG + Pool_hls. Study '1-bit' = W1A1, '2-bit' = W2A2, '4-bit' = W4A4.",
    "Verification: top-1 agreement of QONNX with Brevitas and of each FINN stage with QONNX on test images.",
]


@pytest.mark.parametrize("weight_bits,act_bits", BITS, ids=[f"{w}w{a}a" for w, a in BITS])
def test_finn_flow(scale, store, data_dir, board, results, weight_bits, act_bits):
    checkpoint = trained_checkpoint(store, scale, weight_bits, act_bits, data_dir)
    artifact = hw_model_artifact(store, checkpoint, board)
    hw_model = load_hw_model(artifact)
    images, _ = uint8_test_set(scale.dataset, data_dir, VERIFY_IMAGES[scale.name])
    check = verify(load_cnv(checkpoint.path), artifact, images)

    table = results.table("finn_estimates", title="FINN estimates of the trained CNVs", notes=NOTES)
    agreement = ", ".join(f"{s.stage} {s.agree}/{s.total}" for s in check.stages)
    foldings = {"all PE=SIMD=1": None}
    if (weight_bits, act_bits) in PUBLISHED:
        foldings["FINN published"] = conv_swg_names_to_model(finn_folding(weight_bits, act_bits), hw_model)
    for name, folding in foldings.items():
        result = estimate(apply_folding(hw_model, folding), board.part, board.clock_ns)
        table.add({
            "model": f"CNV W{weight_bits}A{act_bits}", "board": board.name, "folding": name,
            "max cycles": result.max_cycles, "bottleneck": result.bottleneck,
            "est. fps": round(result.est_fps, 1), "latency ms": round(result.latency_ns / 1e6, 3),
            "LUT": round(result.totals["lut"]), "BRAM18": round(result.totals["bram18"]),
            "DSP": round(result.totals["dsp"]), "verification": agreement,
            "source": f"pynqrepro ({scale.name}, {board.clock_ns} ns)",
        }, config={"checkpoint": checkpoint.key, "hw_model": artifact.key, "folding": folding})
    if weight_bits == act_bits:
        for run in STUDY_FOLDING_RUNS:
            if run.bits == weight_bits and board.name == "pynq-z1":

                bottleneck = study_run_files(run.run)["estimate_network_performance"]["max_cycles_node_name"]
                table.add({
                    "model": f"CNV W{run.bits}A{run.bits}", "board": "pynq-z1", "folding": run.method,
                    "max cycles": run.max_cycles, "bottleneck": finn05_name_to_finn_plus(bottleneck),
                    "est. fps": run.est_fps, "latency ms": None, "LUT": run.est_lut, "BRAM18": run.est_bram18,
                    "DSP": None, "verification": None, "source": f"reference: {STUDY_FOLDING_SOURCE}",
                }, config={"run": run.run})
    assert check.first_divergence is None, f"FINN flow diverges first at {check.first_divergence}: {agreement}"
    assert check.stages[0].agree == check.stages[0].total or weight_bits == 1, \
        f"QONNX export disagrees with Brevitas: {agreement}"
