"""Experiment: the study's SIMD-block pruning sweeps and channel pruning (reports/pruning.md).

Per bit width: the dense CNV of this scale, its best folding on the board (the baseline fps), then
both sweeps with fine-tuning. A dense network the board cannot hold (8-bit on a Pynq-Z1) is
estimated, with every step, under the smallest LUT budget that fits it; each row says which
budget and whether the step fits the board itself. SIMD-block rows are FINN cost-model estimates only (stock FINN has
no block-skipping input generator); channel-pruned networks go through the normal FINN flow.
"""

import pytest

from pynqrepro.data.splits import uint8_test_set
from pynqrepro.finnflow import hw_model_artifact, load_cnv, verify
from pynqrepro.folding.optimise import board_budget
from pynqrepro.folding.pruned import best_folding, describe_budget, masked_blocks, sweep_budget
from pynqrepro.pruning.sweep import run_sweep, sweep_recipe
from pynqrepro.references import STUDY_PRUNING_SOURCE, STUDY_PRUNING_SWEEP
from pynqrepro.training.recipes import trained_checkpoint, training_result
from pynqrepro.training.trainer import RunOptions

LUT_RATIO = 0.85
VERIFY_IMAGES = 10  # test images through every FINN stage of the most pruned channel network  # the study's LUT downscaling ratio
NOTES = [
    "sparsity: fraction of conv weights pruned (SIMD blocks: masked; channels: removed). FC layers stay dense.",
    "est. fps / LUT / BRAM18: the fastest folding within the row's budget under FINN's cost model, at the "
    f"board's default clock. The budget is the board's ({LUT_RATIO:g} x LUTs, all BRAM18/DSP) when the dense "
    "network fits it; otherwise (8-bit on a Pynq-Z1) the smallest LUT budget, rounded up to 0.05 x device, "
    "that fits the dense network, so speed-ups compare like with like. 'fits board': some folding of the step "
    f"fits the board's own budget ({LUT_RATIO:g} x LUTs).",
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


@pytest.mark.slow
@pytest.mark.parametrize("bits", [2, 4, 8])
def test_pruning(scale, store, data_dir, board, results, bits, request):
    if scale.name == "paper":
        request.applymarker(pytest.mark.gpu)
    dense = trained_checkpoint(store, scale, bits, bits, data_dir)
    dense_acc = training_result(dense).test_acc
    board_limit = board_budget(board, LUT_RATIO)
    budget = sweep_budget(store, dense, board, LUT_RATIO)
    base = best_folding(store, dense, board, budget, board_limit)
    run = RunOptions(experiments=store.root, data_dir=data_dir, progress=False)
    table = results.table("pruning", title="Pruning: SIMD-block (study) and channel pruning, fine-tuned",
                          notes=NOTES, plot="pynqrepro.pruning.report:pareto_plot")
    common = {"bits": bits, "board": board.name, "budget": describe_budget(budget, board, LUT_RATIO)}

    def add(method, step, sparsity, acc, point, note, config):
        table.add({**common, "method": method, "step": step, "sparsity %": round(100 * sparsity, 1),
                   "acc %": round(acc, 2), "drop vs dense": round(dense_acc - acc, 2),
                   "est fps": round(point.est_fps, 1), "speedup vs dense": round(point.est_fps / base.est_fps, 3),
                   "LUT": point.lut, "BRAM18": point.bram18, "fits board": point.fits_board, "note": note,
                   "source": f"pynqrepro ({scale.name})"}, config=config)

    add("dense", 0, 0.0, dense_acc, base, "stock FINN", {"checkpoint": dense.key})
    sweeps = {
        "simd_blocks": sweep_recipe(scale.name, bits),
        "channels": sweep_recipe(scale.name, bits, "channels"),
    }
    speedups, acc_at = [], {}
    for method, sweep in sweeps.items():
        for artifact, step in run_sweep(store, dense, sweep, run, bit_width=bits):
            if method == "simd_blocks":
                point = best_folding(store, artifact, board, budget, board_limit, masked_blocks(artifact))
                note = "estimate only (needs block-skipping input generator)"
            else:
                point = best_folding(store, artifact, board, budget, board_limit)
                note = "stock FINN"
                smallest = artifact, step
            add(method, step.step, step.sparsity, step.test_acc, point, note,
                {"sweep": sweep.step_key(), "artifact": artifact.key})
            speedups.append((method, step.step, point.est_fps / base.est_fps))
            acc_at.setdefault(method, []).append((step.sparsity, step.test_acc))
    for ref in STUDY_PRUNING_SWEEP:
        if ref.bits == bits:
            table.add({"bits": bits, "board": board.name, "method": "simd_blocks", "sparsity %": round(100 * ref.conv_sparsity, 1),
                       "acc %": ref.top1, "est fps": ref.est_fps, "note": "CIFAR-10",
                       "source": f"reference: {STUDY_PRUNING_SOURCE}"})

    # the smallest channel-pruned network goes through the normal FINN flow: it must still verify
    artifact, step = smallest
    check = verify(load_cnv(artifact.path), hw_model_artifact(store, artifact, board),
                   uint8_test_set(scale.dataset, data_dir, VERIFY_IMAGES)[0])
    table.add({**common, "method": "channels: FINN flow check", "step": step.step,
               "note": "top-1 agreement: " + ", ".join(f"{s.stage} {s.agree}/{s.total}" for s in check.stages),
               "source": f"pynqrepro ({scale.name})"}, config={"artifact": artifact.key})

    assert check.first_divergence is None, f"pruned network diverges in FINN at {check.first_divergence}"
    assert base.fits_board == (budget == board_limit), (budget, base)
    assert all(s > 1.0 for _, _, s in speedups), f"steps without a speed-up: {speedups}"
    if scale.name == "smoke" and bits == 4:
        for method, points in acc_at.items():
            near_30 = min(points, key=lambda p: abs(p[0] - 0.30))
            assert dense_acc - near_30[1] <= 2.0, (method, near_30, dense_acc)
