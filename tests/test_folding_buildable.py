"""Buildable by construction: every folding the search space admits passes FINN's steps up to the
first Xilinx tool, code generation (step_hw_codegen: HLS sources, filled RTL templates, with their
assertions) included, for the compute nodes and for the DWCs/FIFOs FINN inserts. Swept over the
slowest and the fastest corner and random foldings of CNV, an MLP and an odd-channel channel-pruned
CNV (MVAUs with MW = 1053 and 1809, where MW / 1024 > 1)."""

import tempfile
from pathlib import Path

import numpy as np
import pytest

from pynqrepro.core.errors import UserError
from pynqrepro.finnflow.buildprep import generate_code, insert_dwcs_and_fifos, inserted_nodes, prepare_build
from pynqrepro.finnflow.foldconfig import apply_folding
from pynqrepro.folding.optimise import Folding
from pynqrepro.folding.space import SpaceOptions, build_space

import hw_models
from hw_models import PYNQ_Z1

ODD_CHANNELS = (61, 57, 117, 119, 201, 251)  # conv MW 9 x 117 = 1053 and 9 x 201 = 1809


def _corners_and_random(groups, count: int, seed: int) -> list[list[int]]:
    """Per group the fewest / most lanes (PE x SIMD) candidate, then ``count`` random choices."""
    def lanes(g):
        return np.prod([g.params[p] for p in ("PE", "SIMD") if p in g.params], axis=0) if g.params else np.zeros(1)

    rng = np.random.default_rng(seed)
    choices = [[int(np.argmin(lanes(g))) for g in groups], [int(np.argmax(lanes(g))) for g in groups]]
    choices += [[int(rng.integers(len(g))) for g in groups] for _ in range(count)]
    return choices


def _codegen_rejections(model, count: int, seed: int) -> list[str]:
    groups = build_space(model, PYNQ_Z1.part, SpaceOptions.all_finn_choices())
    rejected = []
    for choice in _corners_and_random(groups, count, seed):
        config = Folding("sweep", groups, choice).config()
        try:
            folded = apply_folding(model, config)
            stitched = insert_dwcs_and_fifos(folded, PYNQ_Z1.part)
            with tempfile.TemporaryDirectory() as tmp:
                generate_code(folded, PYNQ_Z1.part, PYNQ_Z1.clock_ns, Path(tmp) / "compute")
                generate_code(stitched, PYNQ_Z1.part, PYNQ_Z1.clock_ns, Path(tmp) / "inserted",
                              only={n.name for n in inserted_nodes(stitched)})
        except (AssertionError, UserError, Exception) as exc:  # noqa: B014 - any rejection is a finding
            rejected.append(f"{config}: {' '.join(str(exc).split())[:200]}")
    return rejected


@pytest.mark.parametrize("network", ["cnv2", "tfc_2w2a", "pruned_cnv2"])
def test_space_admits_only_what_finn_code_generation_accepts(store, network):
    if network == "cnv2":
        model = hw_models.cnv(store, 2)
    elif network == "pruned_cnv2":
        model = hw_models.cnv(store, 2, ODD_CHANNELS)
        mws = {n.name: n for n in model.graph.node if n.op_type == "MVAU_hls"}
        from qonnx.custom_op.registry import getCustomOp

        assert {1053, 1809} <= {getCustomOp(n).get_nodeattr("MW") for n in mws.values()}
    else:
        model = hw_models.mlp(store, network)
    assert _codegen_rejections(model, count=3, seed=7) == []


def test_build_preparation_runs_code_generation(store):
    """A folding outside the space (MVAU_hls SIMD 1 at MW 1053) is rejected by FINN's own HLS code
    generation inside prepare_build, with FINN's message."""
    model = hw_models.cnv(store, 2, ODD_CHANNELS)
    groups = build_space(model, PYNQ_Z1.part)
    config = Folding("slowest", groups, _corners_and_random(groups, 0, 0)[0]).config()
    wide = next(name for name, g in zip([g.name for g in groups], groups)
                if g.name.startswith("MVAU_hls") and g.nodes[0].attrs["MW"] == 1053)
    assert config[wide]["SIMD"] >= 2  # the space's slowest legal SIMD
    prepare_build(model, config, PYNQ_Z1)
    config[wide] = {**config[wide], "SIMD": 1}
    with pytest.raises(UserError, match="SIMD >= MW / 1024"):
        prepare_build(model, config, PYNQ_Z1)


def _with_simd(folding: Folding, node: str, simd: int) -> Folding:
    """``folding`` with ``node``'s chosen candidate set to ``simd`` (a JSON outside the space)."""
    import dataclasses

    k = next(i for i, g in enumerate(folding.groups) if g.name == node)
    group = folding.groups[k]
    simds = group.params["SIMD"].copy()
    simds[folding.choice[k]] = simd
    groups = list(folding.groups)
    groups[k] = dataclasses.replace(group, params={**group.params, "SIMD": simds})
    return dataclasses.replace(folding, groups=groups)


def test_build_check_records_what_finn_code_generation_rejects(store, monkeypatch):
    """The build-preparation check of the experiments (``outputs.finn_build_checks``, one FINN build
    per distinct JSON change) on the pruning stage's folding of a channel-pruned CNV (MW 1053 and
    1809): it passes with FINN's figures equal to ours; the same JSON with MVAU_hls SIMD 1 at MW 1053
    is recorded as rejected, with FINN's code-generation message, not raised."""
    from pynqrepro.folding import outputs
    from pynqrepro.folding.optimise import optimise
    from pynqrepro.folding.pruned import fitting_budget, folding_design

    model = hw_models.cnv(store, 2, ODD_CHANNELS)
    design = folding_design(model, PYNQ_Z1)
    best = optimise(design, fitting_budget(design, PYNQ_Z1, 0.85))
    wide = next(g.name for g in design.groups if g.name.startswith("MVAU_hls") and g.nodes[0].attrs["MW"] == 1053)
    rejected = _with_simd(best, wide, 1)
    assert rejected.config()[wide]["SIMD"] == 1 and best.config()[wide]["SIMD"] >= 2
    from pynqrepro.finnflow import buildprep

    prepared = []
    monkeypatch.setattr(buildprep, "prepare_build", lambda *args: prepared.append(args) or prepare_build(*args))
    checks = outputs.finn_build_checks(model, {"best": best, "same": best, "SIMD 1": rejected}, PYNQ_Z1)
    assert len(prepared) == 2  # once per distinct change to the model
    assert checks["best"] == checks["same"] == outputs.BuildCheck()
    assert checks["best"].agrees and checks["best"].cell() == "equal"
    failing = checks["SIMD 1"]
    assert not failing.passes and not failing.agrees
    assert "SIMD >= MW / 1024" in failing.rejected and failing.cell().startswith("rejected: FINN's build preparation")
    assert outputs.build_check(model, rejected, PYNQ_Z1) == failing
