"""Experiment: the study's SIMD-block pruning sweeps and channel pruning (reports/pruning.md).

Per bit width: the dense CNV of this scale, its best folding on the board (the baseline fps), then
both sweeps with fine-tuning. SIMD-block rows are FINN cost-model estimates only (stock FINN has
no block-skipping input generator); channel-pruned networks go through the normal FINN flow.
"""

import pytest

from pynqrepro.pruning.hardware import best_folding, masked_blocks
from pynqrepro.pruning.report import pareto_plot  # noqa: F401  (the table's plot)
from pynqrepro.pruning.sweep import run_sweep, sweep_recipe
from pynqrepro.references import STUDY_PRUNING_SOURCE, STUDY_PRUNING_SWEEP
from pynqrepro.training.recipes import trained_checkpoint, training_result
from pynqrepro.training.trainer import RunOptions

LUT_RATIO = 0.85  # the study's LUT downscaling ratio
NOTES = [
    "sparsity: fraction of conv weights pruned (SIMD blocks: masked; channels: removed). FC layers stay dense.",
    "est. fps / LUT / BRAM18: the fastest folding within the board budget "
    f"({LUT_RATIO:g} x LUTs) under FINN's cost model, at the board's default clock.",
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
    base = best_folding(store, dense, board, LUT_RATIO)
    run = RunOptions(experiments=store.root, data_dir=data_dir, progress=False)
    table = results.table("pruning", title="Pruning: SIMD-block (study) and channel pruning, fine-tuned",
                          notes=NOTES, plot="pynqrepro.pruning.report:pareto_plot")
    common = {"bits": bits, "board": board.name}

    def add(method, step, sparsity, acc, point, note, config):
        table.add({**common, "method": method, "step": step, "sparsity %": round(100 * sparsity, 1),
                   "acc %": round(acc, 2), "drop vs dense": round(dense_acc - acc, 2),
                   "est fps": round(point.est_fps, 1), "speedup vs dense": round(point.est_fps / base.est_fps, 3),
                   "LUT": point.lut, "BRAM18": point.bram18, "note": note,
                   "source": f"pynqrepro ({scale.name})"}, config=config)

    add("dense", 0, 0.0, dense_acc, base, "stock FINN", {"checkpoint": dense.key})
    sweeps = {
        "simd_blocks": sweep_recipe(scale.name, bits),
        "channels": sweep_recipe(scale.name, bits, "channels", simd=base.conv_simd, pe=base.conv_pe),
    }
    speedups, acc_at = [], {}
    for method, sweep in sweeps.items():
        for artifact, step in run_sweep(store, dense, sweep, run, bit_width=bits):
            if method == "simd_blocks":
                point = best_folding(store, artifact, board, LUT_RATIO, masked_blocks(artifact))
                note = "estimate only (needs block-skipping input generator)"
            else:
                point = best_folding(store, artifact, board, LUT_RATIO)
                note = "stock FINN"
            add(method, step.step, step.sparsity, step.test_acc, point, note,
                {"sweep": sweep.step_key(), "artifact": artifact.key})
            speedups.append((method, step.step, point.est_fps / base.est_fps))
            acc_at.setdefault(method, []).append((step.sparsity, step.test_acc))
    for ref in STUDY_PRUNING_SWEEP:
        if ref.bits == bits:
            table.add({**common, "method": "simd_blocks", "sparsity %": round(100 * ref.conv_sparsity, 1),
                       "acc %": ref.top1, "est fps": ref.est_fps, "note": "CIFAR-10",
                       "source": f"reference: {STUDY_PRUNING_SOURCE}"})

    assert all(s > 1.0 for _, _, s in speedups), f"steps without a speed-up: {speedups}"
    if scale.name == "smoke" and bits == 4:
        for method, points in acc_at.items():
            near_30 = min(points, key=lambda p: abs(p[0] - 0.30))
            assert dense_acc - near_30[1] <= 2.0, (method, near_30, dense_acc)
