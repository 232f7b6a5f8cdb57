"""The pruning sweep end to end on a tiny digits CNV: schedule, held masks, stored steps, export."""

from pathlib import Path

import numpy as np
import pytest
import torch

from pynqrepro.core.errors import UserError
from pynqrepro.core.store import ArtifactStore
from pynqrepro.pruning.masks import MASKS_FILE, conv_layers, load_masks
from pynqrepro.pruning.simd_blocks import mvau_columns
from pynqrepro.pruning.sweep import SweepConfig, run_sweep
from pynqrepro.training.checkpoint import LAST, import_checkpoint, load_model, read_checkpoint
from pynqrepro.training.config import TrainConfig
from pynqrepro.training.trainer import RunOptions, train

SIMD = (9, 8, 6, 9, 3, 4)  # the study's 4-bit list: legal for these widths too
TINY = dict(dataset="digits", epochs=2, batch_size=64, augment="none", conv_channels=(16, 16, 32, 32, 64, 64),
            fc_features=(64, 64))


@pytest.fixture(scope="module")
def dense(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("sweep")
    result = train(TrainConfig(4, 4, **TINY), RunOptions(experiments=root / "dense", progress=False))
    store = ArtifactStore(root / "store")
    return store, import_checkpoint(store, result.run_dir), root


def _run(root: Path) -> RunOptions:
    return RunOptions(experiments=root / "runs", progress=False)


def test_simd_sweep_follows_the_study_schedule_and_masks_hold(dense):
    store, checkpoint, root = dense
    sweep = SweepConfig("simd_blocks", SIMD, max_sparsity=0.2, epochs=1)
    steps = run_sweep(store, checkpoint, sweep, _run(root), bit_width=4)
    assert [s.step for _, s in steps] == [1, 2]
    assert steps[0][1].amount == 0.15
    assert steps[1][1].amount == pytest.approx(steps[0][1].sparsity + 0.15, abs=1e-6)
    assert steps[-1][1].sparsity > 0.2 > steps[0][1].sparsity
    for artifact, result in steps:
        masks, meta = load_masks(artifact.file(MASKS_FILE))
        assert meta["step"] == result.step
        model, _ = load_model(artifact.file(result.checkpoint))
        for name, layer in conv_layers(model).items():
            assert (layer.weight[~masks[name]] == 0).all()
        last = read_checkpoint(artifact.file("checkpoints") / LAST)["state_dict"]
        assert all((last[f"{n}.weight"][~m] == 0).all() for n, m in masks.items())
    first, second = (load_masks(a.file(MASKS_FILE))[0] for a, _ in steps)
    assert all(not (second[n] & ~first[n]).any() for n in first)  # pruned stays pruned

    again = run_sweep(store, checkpoint, SweepConfig("simd_blocks", SIMD, max_sparsity=0.1, epochs=1),
                      _run(root), bit_width=4)
    assert [a.key for a, _ in again] == [steps[0][0].key]  # a lower limit reuses the stored step


def test_pruned_weights_are_exact_zeros_in_the_qonnx_export(dense):
    from pynqrepro.finnflow.export import export_qonnx

    store, checkpoint, root = dense
    artifact, result = run_sweep(store, checkpoint, SweepConfig("simd_blocks", SIMD, max_sparsity=0.1, epochs=1),
                                 _run(root), bit_width=4)[0]
    model, _ = load_model(artifact.file(result.checkpoint))
    masks, _ = load_masks(artifact.file(MASKS_FILE))
    onnx_model = export_qonnx(model)
    weights = {tuple(init.dims): init for init in onnx_model.graph.initializer}
    for name, mask in masks.items():
        exported = onnx_model.get_initializer(weights[tuple(mask.shape)].name)
        assert np.all(exported[~mask.numpy()] == 0)
        assert np.all(exported[mask.numpy()] != 0)


def test_channel_sweep_shrinks_the_network(dense):
    store, checkpoint, root = dense
    sweep = SweepConfig("channels", max_sparsity=0.1, epochs=1)
    (artifact, result), = run_sweep(store, checkpoint, sweep, _run(root), bit_width=4)
    model, config = load_model(artifact.file(result.checkpoint))
    assert config.conv_channels == result.conv_channels
    assert sum(result.conv_channels) < sum(TINY["conv_channels"])
    assert all(c < w and c % (w // 16) == 0 for c, w in zip(result.conv_channels, TINY["conv_channels"]))
    assert result.sparsity == pytest.approx(0.15, abs=0.06)
    assert not artifact.file(MASKS_FILE).exists()


def test_channel_step_folding_passes_finn_build_preparation(dense):
    """The pruning stage puts a channel-pruned step's best folding, its JSON as a user applies it,
    through FINN's build preparation (code generation included) on the step's own HW model: stock
    FINN builds it as estimated, so FINN's figures are ours."""
    from pynqrepro.core.boards import get_board
    from pynqrepro.folding.optimise import board_budget
    from pynqrepro.folding.pruned import best_folding

    store, checkpoint, root = dense
    (artifact, _), = run_sweep(store, checkpoint, SweepConfig("channels", max_sparsity=0.1, epochs=1), _run(root),
                               bit_width=4)
    board = get_board("pynq-z1")
    budget = board_budget(board, 0.85)
    point = best_folding(store, artifact, board, budget, budget)
    assert point.finn_build.agrees and point.finn_build.cell() == "equal", point.finn_build.cell()
    assert point.config["Defaults"] == {} and len(point.config) > 1  # the ApplyConfig JSON the report records


def test_masked_step_folds_within_its_mask_blocks(dense):
    from pynqrepro.core.boards import get_board
    from pynqrepro.folding.optimise import board_budget
    from pynqrepro.folding.pruned import best_folding, masked_blocks

    store, checkpoint, root = dense
    artifact, result = run_sweep(store, checkpoint, SweepConfig("simd_blocks", SIMD, max_sparsity=0.1, epochs=1),
                                 _run(root), bit_width=4)[0]
    blocks = masked_blocks(artifact)
    assert tuple(b.mask_simd for b in blocks) == SIMD
    assert tuple(b.kept_columns for b in blocks) == result.kept_columns
    board = get_board("pynq-z1")
    budget = board_budget(board, 0.85)
    point = best_folding(store, artifact, board, budget, budget, blocks)
    assert point.fits_board and point.lut <= budget.LUT and point.fits_calibrated is None
    # the step's folding JSON, as a user applies it to the masked network, passes FINN's build preparation
    # (code generation included); stock FINN builds it dense, so its cycles may differ from the estimate's
    assert point.finn_build.passes, point.finn_build.rejected
    # the shell alone takes 4 BRAM18: no folding fits a 2-BRAM18 calibrated budget
    tight = best_folding(store, artifact, board, budget, budget, blocks, calibrated=board_budget(board, 0.85, 0.01))
    assert tight.fits_calibrated is False and tight.fits_board
    model, _ = load_model(artifact.file(result.checkpoint))
    columns = [mvau_columns(layer) for layer in conv_layers(model).values()]
    assert any(b.kept_columns < mw for b, mw in zip(blocks, columns, strict=True))
    assert all(mw % simd == 0 for mw, simd in zip(columns, point.conv_simd, strict=True)), point.conv_simd
    with pytest.raises(UserError, match="pruning given for 5 conv layers, the network has 6"):
        best_folding(store, artifact, board, budget, budget, blocks[:5])


@pytest.mark.parametrize("kwargs, bits, match", [
    (dict(method="simd_blocks", simd=SIMD), 2, "is CNV 4W4A, not 2-bit: pass --bit-width 4"),
    (dict(method="simd_blocks", simd=SIMD[:5]), 4, "5 entries, the model has 6 conv layers"),
    (dict(method="channels", channel_steps=3), 4, "conv width 16 is not a multiple of 3 channel steps"),
])
def test_checkpoints_that_do_not_fit_are_rejected(dense, kwargs, bits, match):
    store, checkpoint, root = dense
    with pytest.raises(UserError, match=match):
        run_sweep(store, checkpoint, SweepConfig(**kwargs, epochs=1), _run(root), bit_width=bits)


@pytest.mark.parametrize("kwargs, match", [
    (dict(max_sparsity=1.0), r"--max-sparsity 1.0 is outside \[0, 1\)"),
    (dict(max_sparsity=-0.1), r"outside \[0, 1\)"),
    (dict(method="magnitude"), "choose one of simd_blocks, channels"),
    (dict(increment=0.0), "--increment"),
    (dict(simd=()), "SIMD-block pruning needs --simd-list"),
])
def test_bad_sweep_options(kwargs, match):
    with pytest.raises(UserError, match=match):
        SweepConfig(**{"method": "simd_blocks", "simd": SIMD, **kwargs})


@pytest.mark.parametrize("extra, message", [
    (["--bit-width", "2"], "pynqrepro: error: the checkpoint is CNV 4W4A, not 2-bit: pass --bit-width 4"),
    (["--bit-width", "4", "--max-sparsity", "1"], r"pynqrepro: error: --max-sparsity 1.0 is outside [0, 1)"),
    (["--bit-width", "4", "--simd-list", "9,x"], "pynqrepro: error: --simd-list '9,x' is not a comma-separated"),
])
def test_prune_command_reports_bad_input_in_one_line(dense, capsys, extra, message):
    from pynqrepro.cli import main

    store, checkpoint, root = dense
    code = main(["prune", "--model", str(checkpoint.path), "--store-dir", str(root / "store"), *extra])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(message) and err.count("\n") == 1
