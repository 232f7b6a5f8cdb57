"""Baseline foldings read from a config mean what FINN's ApplyConfig makes of that config."""

import json

import pytest

from pynqrepro.core.boards import get_board
from pynqrepro.core.errors import UserError
from pynqrepro.finnflow.hw_build import hw_model_artifact, load_hw_model
from pynqrepro.finnflow.estimate import estimate
from pynqrepro.finnflow.foldconfig import all_ones_folding, apply_folding, published_folding
from pynqrepro.folding import baselines
from pynqrepro.folding.optimise import board_budget, optimise
from pynqrepro.folding.space import build_space
from pynqrepro.folding.wholedesign import build_design

import hw_models
from cnv_checkpoints import random_cnv_checkpoint

PYNQ_Z1 = get_board("pynq-z1")


@pytest.fixture(scope="module")
def w1a1(store):
    return load_hw_model(hw_model_artifact(store, random_cnv_checkpoint(store, 1, 1), PYNQ_Z1))


def test_published_folding_costs_what_finn_estimates(w1a1):
    """Nodes the published config omits (the pools) keep the model's settings, as in ApplyConfig;
    the ram_style/resType it sets count as FINN's estimate counts them."""
    config = published_folding(w1a1, 1, 1)
    finn = estimate(apply_folding(w1a1, config), PYNQ_Z1.part, PYNQ_Z1.clock_ns)
    ours = baselines.from_applied_config(w1a1, PYNQ_Z1, config, "FINN published")
    assert ours.max_cycles == finn.max_cycles == 32768
    cycles = {layer.name: layer.cycles for layer in finn.layers}
    for group, choice in zip(ours.groups, ours.choice):
        assert group.costs.cycles[choice] == max(cycles[spec.name] for spec in group.nodes), group.name
    assert [ours.finn_compute_total(r) for r in ("LUT", "BRAM_18K")] == [finn.totals["lut"], finn.totals["bram18"]]


def test_settings_a_space_keeps_fixed_are_refused(store):
    """FINN's w2a2 folding puts two MVAUs' weights in LUTRAM: judged on a space that keeps the
    model's ram_style it would cost another design than FINN's, so it is refused, naming the
    setting and the way out."""
    w2a2 = hw_models.cnv(store, 2)
    groups = build_space(w2a2, PYNQ_Z1.part, baselines.UNCAPPED)
    with pytest.raises(UserError, match=r"MVAU_hls_\d\.ram_style=distributed.*from_applied_config"):
        baselines.from_config(groups, published_folding(w2a2, 2, 2), "FINN published")


def test_all_ones_is_the_slowest_folding_finn_builds(w1a1):
    """PE = SIMD = 1 everywhere but where FINN's HLS code generation needs SIMD >= MW / 1024: CNV's
    MVAU_hls_3/4/5 (MW 1152, 1152, 2304) take the smallest such divisor of MW."""
    groups = build_space(w1a1, PYNQ_Z1.part)
    folding = baselines.all_ones(groups)
    needs = {}
    for group, choice in zip(groups, folding.choice):
        for node, attrs in group.assignment(choice).items():
            mw = group.nodes[0].attrs.get("MW", 0) if node.startswith("MVAU_hls") else 0
            least = min(d for d in range(1, mw + 1) if mw % d == 0 and d >= mw / 1024) if mw > 1024 else 1
            assert attrs.get("PE", 1) == 1 and attrs.get("SIMD", 1) == least, (node, attrs)
            if least > 1:
                needs[node] = least
    assert needs == {"MVAU_hls_3": 2, "MVAU_hls_4": 2, "MVAU_hls_5": 3}
    config = {n: {"SIMD": s} for n, s in needs.items()}
    assert folding.max_cycles == estimate(apply_folding(w1a1, {**all_ones_folding(w1a1), **{
        n: {**all_ones_folding(w1a1)[n], **c} for n, c in config.items()}}), PYNQ_Z1.part, PYNQ_Z1.clock_ns).max_cycles


def test_fold_cli_takes_a_training_checkpoint(store, tmp_path, capsys):
    """A user's checkpoint is folded through its cached HW model: the same folding as that model's."""
    from pynqrepro.cli import main

    checkpoint = random_cnv_checkpoint(store, 1, 1)
    out = tmp_path / "folding.json"
    assert main(["fold", "--model", str(checkpoint.file("checkpoint.tar")), "--lut-ratio", "1.0",
                 "--store-dir", str(store.root), "--out", str(out)]) == 0
    hw_model = load_hw_model(hw_model_artifact(store, checkpoint, PYNQ_Z1))
    fastest = optimise(build_design(hw_model, PYNQ_Z1), board_budget(PYNQ_Z1, 1.0))
    assert f"est. {fastest.fps(PYNQ_Z1.clock_ns):,.1f} fps" in capsys.readouterr().out
    assert json.loads(out.read_text())["MVAU_hls_0"]["PE"] >= 1
    assert main(["fold", "--model", str(tmp_path / "missing.tar"), "--out", str(out)]) == 2
    assert "pass a training checkpoint or a HW-layer ONNX" in capsys.readouterr().err
