"""The study's SIMD-block pruning: column order, block scores, kept counts, masks that hold."""

import pytest
import torch

from pynqrepro.core.errors import UserError
from pynqrepro.models.cnv import CNV
from pynqrepro.pruning.config import STUDY_PRESETS
from pynqrepro.pruning.masks import (MaskHold, apply_masks, conv_layers, conv_sparsity, load_masks,
                                     save_masks)
from pynqrepro.pruning.rules import kept_blocks
from pynqrepro.pruning.simd_blocks import (block_mask, block_scores, check_simd_list,
                                           kept_columns, simd_block_masks,
                                           to_mvau_matrix)


@pytest.fixture(scope="module")
def cnv4():
    torch.manual_seed(0)
    return CNV(4, 4)


def test_mvau_column_order_is_kernel_rows_then_kernel_cols_then_input_channels():
    weight = torch.randn(5, 4, 3, 3)
    matrix = to_mvau_matrix(weight)
    for oc, ic, kh, kw in [(0, 0, 0, 0), (1, 3, 0, 0), (2, 1, 2, 1), (4, 2, 1, 2)]:
        assert matrix[oc, (kh * 3 + kw) * 4 + ic] == weight[oc, ic, kh, kw]


def test_lowest_l1_blocks_are_pruned_for_all_output_channels():
    weight = torch.ones(2, 16, 1, 1)  # MW 16, SIMD 4: block i = input channels 4i..4i+3
    weight[:, 4:8] = 0.1  # block 1: L1 0.8
    weight[0, 12:16] = 0.2  # block 3: L1 4.8, though output channel 1 keeps large weights there
    mask = block_mask(weight, simd=4, amount=0.5)
    assert not mask[:, 4:8].any() and not mask[:, 12:16].any()
    assert mask[:, 0:4].all() and mask[:, 8:12].all()


def test_a_layer_keeps_at_least_one_block():
    assert kept_blocks(27, 9, 0.9) == 1  # the study's rule alone would keep round(3 - 2.7) = 0


def test_norm_order_changes_the_ranking():
    weight = torch.zeros(4, 2, 1, 1)
    weight[:, 0] = 1.0          # L1 4, L2 2
    weight[0, 1] = 3.0          # L1 3, L2 3
    assert block_scores(weight, 1, 1).argmin() == 1
    assert block_scores(weight, 1, 2).argmin() == 0


@pytest.mark.parametrize("bits", sorted(STUDY_PRESETS))
@pytest.mark.parametrize("amount", [0.0, 0.15, 0.3, 0.6, 0.85])
def test_kept_blocks_follow_the_study_rule_and_are_whole_blocks(bits, amount):
    torch.manual_seed(bits)
    model = CNV(bits, bits)
    simd = STUDY_PRESETS[bits].simd
    masks = simd_block_masks(model, simd, amount)
    for (name, layer), s in zip(conv_layers(model).items(), simd):
        columns = to_mvau_matrix(masks[name])
        assert (columns == columns[0]).all()  # same columns for every output channel
        blocks = columns[0].reshape(-1, s)
        assert (blocks == blocks[:, :1]).all()  # whole SIMD blocks
        assert int(blocks[:, 0].sum()) == kept_blocks(columns.shape[1], s, amount)
    assert kept_columns(masks)["conv_features.1"] == kept_blocks(27, simd[0], amount) * simd[0]


def test_zero_blocks_from_an_earlier_step_stay_pruned(cnv4):
    simd = STUDY_PRESETS[4].simd
    first = simd_block_masks(cnv4, simd, 0.3)
    model = CNV(4, 4)
    model.load_state_dict(cnv4.state_dict())
    apply_masks(model, first)
    second = simd_block_masks(model, simd, 0.2)  # lower amount: the study's rule still keeps zeros out
    for name in first:
        assert not (second[name] & ~first[name]).any()


@pytest.mark.parametrize("simd, match", [
    ((9, 8, 6, 9, 3), "5 entries, the model has 6 conv layers"),
    ((9, 8, 6, 9, 3, 0), "SIMD 0 for conv layer 5 .MW 2304."),
    ((9, 8, 6, 9, 3, 5000), "SIMD 5000 for conv layer 5"),
    ((10, 8, 6, 9, 3, 4), r"divisor of 27, one of \[1, 3, 9, 27\]"),
])
def test_bad_simd_lists_name_the_expected_values(cnv4, simd, match):
    with pytest.raises(UserError, match=match):
        check_simd_list(cnv4, simd)


def test_amount_outside_unit_interval_is_rejected(cnv4):
    with pytest.raises(UserError, match=r"outside \[0, 1\)"):
        simd_block_masks(cnv4, STUDY_PRESETS[4].simd, 1.0)


def test_masks_hold_through_adam_with_stale_momentum_and_in_state_dict(cnv4):
    torch.manual_seed(1)
    model = CNV(4, 4)
    model.load_state_dict(cnv4.state_dict())
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    x, y = torch.rand(4, 3, 32, 32), torch.randint(0, 10, (4,))
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()  # dense momentum everywhere, as when fine-tuning resumes a dense optimiser
    masks = simd_block_masks(model, STUDY_PRESETS[4].simd, 0.45)
    with MaskHold(model, masks):
        for _ in range(2):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
            model.clip_weights()
        state = model.state_dict()  # straight after a step: still exact zeros
    for name, mask in masks.items():
        assert (state[f"{name}.weight"][~mask] == 0).all()
        assert (state[f"{name}.weight"][mask] != 0).all()
    assert conv_sparsity(model) == pytest.approx(conv_sparsity(model, masks))


def test_masks_survive_save_and_load(tmp_path, cnv4):
    masks = simd_block_masks(cnv4, STUDY_PRESETS[4].simd, 0.3)
    save_masks(tmp_path / "masks.pt", masks, {"method": "simd_blocks", "amount": 0.3})
    loaded, meta = load_masks(tmp_path / "masks.pt")
    assert meta["amount"] == 0.3
    assert all(torch.equal(loaded[k], masks[k]) for k in masks)
    with pytest.raises(UserError, match="no masks file"):
        load_masks(tmp_path / "absent.pt")
    with pytest.raises(UserError, match="use the masks saved with this checkpoint"):
        apply_masks(CNV(4, 4, conv_channels=(32, 32, 64, 64, 128, 128)), loaded)
