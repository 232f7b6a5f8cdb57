"""Channel pruning: legal kept counts, exact model surgery, sparsity bookkeeping."""

import pytest
import torch

from pynqrepro.core.errors import UserError
from pynqrepro.models.cnv import CNV
from pynqrepro.pruning.channels import (channel_granules, channel_sparsity, conv_weight_count, keep_fraction_for,
                                        kept_channel_counts, prune_channels, select_channels, shrink)
from pynqrepro.pruning.masks import conv_layers

WIDTHS = (16, 16, 32, 32, 64, 64)
CNV_WIDTHS = (64, 64, 128, 128, 256, 256)


def test_granules_are_a_fixed_fraction_of_each_dense_layer():
    assert channel_granules(CNV_WIDTHS) == (4, 4, 8, 8, 16, 16)
    assert channel_granules(WIDTHS, 8) == (2, 2, 4, 4, 8, 8)
    with pytest.raises(UserError, match="conv width 16 is not a multiple of 3 channel steps: use --channel-steps"):
        channel_granules(WIDTHS, 3)
    with pytest.raises(UserError, match="--channel-steps must be a positive integer"):
        channel_granules(WIDTHS, 0)


def test_first_step_shrinks_the_layers_a_fully_parallel_folding_bounds():
    # The 2-bit smoke CNV's best Pynq-Z1 folding has PE 64 on 64-channel convs 0-1 and PE 32 on
    # 128-channel convs 2-3: rounding to those folds kept them whole, so a 15% step was not faster.
    granules = channel_granules(CNV_WIDTHS)
    counts = kept_channel_counts(CNV_WIDTHS, CNV_WIDTHS, granules, keep_fraction_for(0.15))
    assert counts == (60, 60, 120, 120, 240, 240)
    assert all(c < w and c % g == 0 for c, w, g in zip(counts, CNV_WIDTHS, granules))
    assert channel_sparsity(counts, CNV_WIDTHS) == pytest.approx(0.12, abs=0.01)


def test_kept_counts_round_to_granules_and_never_grow():
    counts = kept_channel_counts(WIDTHS, (16, 8, 32, 32, 64, 64), (4, 4, 8, 8, 16, 1), 0.7)
    assert counts == (12, 8, 24, 24, 48, 45)
    assert kept_channel_counts(WIDTHS, WIDTHS, (16,) * 6, 0.01)[0] == 16  # at least one granule
    with pytest.raises(UserError, match="5 channel granules for 6 conv layers"):
        kept_channel_counts(WIDTHS, WIDTHS, (4,) * 5, 0.5)


def test_shrunk_model_equals_big_model_with_dropped_channels_disconnected():
    torch.manual_seed(0)
    big = CNV(4, 4, conv_channels=WIDTHS).eval()
    kept = select_channels(big, (8, 12, 16, 24, 32, 48))
    small = shrink(big, kept).eval()
    assert small.conv_channels == (8, 12, 16, 24, 32, 48)
    # cut every dropped channel's outgoing weights in the big model: same function as the small one
    convs = list(conv_layers(big).values())
    with torch.no_grad():
        for i, keep in enumerate(kept):
            dropped = torch.ones(WIDTHS[i], dtype=torch.bool)
            dropped[keep] = False
            consumer = convs[i + 1] if i + 1 < len(convs) else big.linear_features[0]
            consumer.weight[:, dropped] = 0
    x = torch.rand(3, 3, 32, 32)
    assert torch.equal(big(x), small(x))


def test_highest_l1_channels_are_kept():
    model = CNV(2, 2, conv_channels=WIDTHS)
    with torch.no_grad():
        conv_layers(model)["conv_features.1"].weight[[3, 7]] *= 0.01
    kept = select_channels(model, (14, 16, 32, 32, 64, 64))[0]
    assert 3 not in kept.tolist() and 7 not in kept.tolist()


def test_sparsity_bookkeeping():
    assert conv_weight_count(CNV_WIDTHS) == 9 * (3 * 64 + 64 * 64 + 64 * 128 + 128 * 128
                                                                   + 128 * 256 + 256 * 256)
    assert channel_sparsity(WIDTHS, WIDTHS) == 0.0
    model = prune_channels(CNV(4, 4, conv_channels=WIDTHS), WIDTHS, (4,) * 6, 0.3)
    assert channel_sparsity(model.conv_channels, WIDTHS) == pytest.approx(0.3, abs=0.08)
    with pytest.raises(UserError, match=r"outside \[0, 1\)"):
        prune_channels(model, WIDTHS, (4,) * 6, 1.2)
