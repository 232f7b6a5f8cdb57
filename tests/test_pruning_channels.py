"""Channel pruning: legal kept counts, exact model surgery, sparsity bookkeeping."""

import pytest
import torch

from pynqrepro.core.errors import UserError
from pynqrepro.models.cnv import CNV
from pynqrepro.pruning.channels import (channel_multiples, channel_sparsity, conv_weight_count,
                                        kept_channel_counts, prune_channels, select_channels, shrink)
from pynqrepro.pruning.masks import conv_layers

WIDTHS = (16, 16, 32, 32, 64, 64)


def test_multiples_keep_pe_and_next_simd_legal():
    multiples = channel_multiples(pe=(4, 8, 4, 4, 2, 1), simd=(3, 32, 32, 18, 4, 8))
    # conv0: lcm(PE 4, 32/gcd(32, 9)=32) = 32; conv2: next SIMD 18 -> 18/9 = 2 -> lcm(4, 2) = 4
    assert multiples == (32, 32, 4, 4, 8, 1)
    for count, g, pe, next_simd in zip((64, 64, 128, 128, 256, 256), multiples, (4, 8, 4, 4, 2, 1),
                                       (32, 32, 18, 4, 8, None)):
        assert count % g == 0 and g % pe == 0
        if next_simd:
            assert (9 * g) % next_simd == 0
    with pytest.raises(UserError, match="one per conv layer"):
        channel_multiples((1, 2), (1,))


def test_kept_counts_round_to_granules_and_never_grow():
    counts = kept_channel_counts(WIDTHS, (16, 8, 32, 32, 64, 64), (4, 4, 8, 8, 16, 1), 0.7)
    assert counts == (12, 8, 24, 24, 48, 45)
    assert kept_channel_counts(WIDTHS, WIDTHS, (16,) * 6, 0.01)[0] == 16  # at least one granule
    with pytest.raises(UserError, match="not a multiple of its folding granule 5"):
        kept_channel_counts(WIDTHS, WIDTHS, (5,) * 6, 0.5)


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
    assert conv_weight_count((64, 64, 128, 128, 256, 256)) == 9 * (3 * 64 + 64 * 64 + 64 * 128 + 128 * 128
                                                                   + 128 * 256 + 256 * 256)
    assert channel_sparsity(WIDTHS, WIDTHS) == 0.0
    model = prune_channels(CNV(4, 4, conv_channels=WIDTHS), WIDTHS, (4,) * 6, 0.3)
    assert channel_sparsity(model.conv_channels, WIDTHS) == pytest.approx(0.3, abs=0.08)
    with pytest.raises(UserError, match=r"outside \[0, 1\)"):
        prune_channels(model, WIDTHS, (4,) * 6, 1.2)
