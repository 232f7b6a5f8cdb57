"""Baseline foldings read from a config mean what FINN's ApplyConfig makes of that config."""

import json

import pytest

from pynqrepro.core.boards import get_board
from pynqrepro.finnflow import apply_folding, estimate, hw_model_artifact, load_hw_model, published_folding
from pynqrepro.folding import baselines
from pynqrepro.folding.space import build_space

from cnv_checkpoints import random_cnv_checkpoint

PYNQ_Z1 = get_board("pynq-z1")


@pytest.fixture(scope="module")
def w1a1(store):
    return load_hw_model(hw_model_artifact(store, random_cnv_checkpoint(store, 1, 1), PYNQ_Z1))


def test_published_folding_costs_what_finn_estimates(w1a1):
    """Nodes the published config omits (the pools) keep the model's settings, as in ApplyConfig."""
    config = published_folding(w1a1, 1, 1)
    finn = estimate(apply_folding(w1a1, config), PYNQ_Z1.part, PYNQ_Z1.clock_ns)
    groups = baselines.uncapped_space(w1a1, PYNQ_Z1.part)
    ours = baselines.from_config(groups, config, "FINN published")
    assert ours.max_cycles == finn.max_cycles == 32768
    cycles = {layer.name: layer.cycles for layer in finn.layers}
    for group, choice in zip(groups, ours.choice):
        assert group.costs.cycles[choice] == max(cycles[spec.name] for spec in group.nodes), group.name


def test_all_ones_sets_every_pe_and_simd_to_one(w1a1):
    groups = build_space(w1a1, PYNQ_Z1.part)
    folding = baselines.all_ones(groups)
    for group, choice in zip(groups, folding.choice):
        for attrs in group.assignment(choice).values():
            assert all(value == 1 for attr, value in attrs.items() if attr in ("PE", "SIMD")), group.name
    assert folding.max_cycles == estimate(apply_folding(w1a1, None), PYNQ_Z1.part, PYNQ_Z1.clock_ns).max_cycles


def test_fold_cli_takes_a_training_checkpoint(store, tmp_path, capsys):
    """A user's checkpoint is folded through its cached HW model: the same folding as that model's."""
    from pynqrepro.cli import main

    checkpoint = random_cnv_checkpoint(store, 1, 1)
    out = tmp_path / "folding.json"
    assert main(["fold", "--model", str(checkpoint.file("checkpoint.tar")), "--lut-ratio", "1.0",
                 "--store-dir", str(store.root), "--out", str(out)]) == 0
    assert "est. 7,971.9 fps" in capsys.readouterr().out
    assert json.loads(out.read_text())["MVAU_hls_0"]["PE"] >= 1
    assert main(["fold", "--model", str(tmp_path / "missing.tar"), "--out", str(out)]) == 2
    assert "pass a training checkpoint or a HW-layer ONNX" in capsys.readouterr().err
