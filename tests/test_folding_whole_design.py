"""The whole design FINN builds: our DWC/FIFO/shell costs equal FINN's estimate node by node on the
graph after FINN's own insertions (random foldings of CNV 1/2/4/8-bit, a channel-pruned CNV and
the bnn_pynq MLPs, minimal and user FIFO depths), and the whole-design optimiser is exact (brute
force on synthetic and cut-down FINN designs, with and without width converters)."""

import dataclasses
import itertools
from functools import partial

import numpy as np
import pytest

from pynqrepro.core.boards import Shell
from pynqrepro.core.errors import UserError
from pynqrepro.finnflow.buildprep import insert_dwcs_and_fifos, inserted_nodes
from pynqrepro.finnflow.foldconfig import apply_folding
from pynqrepro.folding import baselines, costmodel, outputs
from pynqrepro.folding.decision import load_node_model
from pynqrepro.folding.optimise import Budget, Folding, board_budget, optimise, smallest_lut_budget
from pynqrepro.folding.space import Group, SpaceOptions
from pynqrepro.folding.fifoconfig import FifoDepths, fifo_depths
from pynqrepro.folding.wholedesign import Design, Edge, Insertions, build_design, dwc_luts

import hw_models
from hw_models import PYNQ_Z1

ALL_CHOICES = SpaceOptions.all_finn_choices()
PRUNED_CHANNELS = (61, 57, 125, 119, 247, 251)  # odd channel counts, as channel pruning leaves them


def finn_whole_design(model, folding: Folding, fifo_config=None) -> tuple[dict, dict]:
    """FINN's estimate of every node after ApplyConfig, minimised bit widths, InsertDWC,
    InsertFIFO(create_shallow_fifos=True), SpecializeLayers (+ a FIFO config), as the builder runs
    them: ({(producer, consumer, role): (op type, costs)} of the inserted nodes, {node: costs})."""
    from finn.analysis.fpgadataflow.res_estimation import res_estimation

    graph = insert_dwcs_and_fifos(apply_folding(model, folding.config()), PYNQ_Z1.part, fifo_config)
    res = graph.analysis(partial(res_estimation, fpgapart=PYNQ_Z1.part))
    costs = {name: tuple(int(r[k]) for k in costmodel.RESOURCES) for name, r in res.items()}
    inserted = {(n.producer, n.consumer, n.role): (n.op_type, costs[n.name]) for n in inserted_nodes(graph)}
    return inserted, costs


def ours(folding: Folding) -> dict:
    return {(n["producer"], n["consumer"], n["role"]): (n["op_type"], tuple(n[r] for r in costmodel.RESOURCES))
            for n in folding.inserted()}


def check_random_foldings(model, design: Design, count: int, seed: int) -> int:
    """``count`` random foldings: inserted nodes, compute nodes and totals equal FINN's."""
    rng = np.random.default_rng(seed)
    converters = 0
    for _ in range(count):
        folding = Folding.of("random", design, [int(rng.integers(len(g))) for g in design.groups])
        inserted, finn = finn_whole_design(model, folding)
        assert ours(folding) == inserted
        for group, i in zip(folding.groups, folding.choice):
            if len(group.nodes) == 1:
                assert finn[group.name] == tuple(int(group.finn_costs.resource(r)[i]) for r in costmodel.RESOURCES)
        shell = design.insertions.shell
        for k, r in enumerate(costmodel.RESOURCES):
            assert folding.finn_total(r) == sum(c[k] for c in finn.values()) + shell.resource(r)
        converters += folding.converters
    return converters


@pytest.fixture(scope="module")
def cnv2(store):
    return hw_models.cnv(store, 2)


@pytest.fixture(scope="module")
def tfc(store):
    return hw_models.mlp(store, "tfc_2w2a")


def test_inserted_nodes_equal_finn_cnv_2bit(cnv2):
    design = build_design(cnv2, PYNQ_Z1, ALL_CHOICES)
    assert check_random_foldings(cnv2, design, count=3, seed=0) > 0  # some DWCs among them


def test_inserted_nodes_equal_finn_tfc(tfc):
    design = build_design(tfc, PYNQ_Z1, ALL_CHOICES)
    reshape = next(g for g in design.groups if g.name.startswith("Reshape"))
    assert set(reshape.params["PE"].tolist()) == {1, 2, 4, 7, 14, 28}  # PE divides 28 and 784
    assert check_random_foldings(tfc, design, count=3, seed=1) > 0


@pytest.mark.slow
@pytest.mark.parametrize("bits", [1, 4, 8])
def test_inserted_nodes_equal_finn_cnv_other_widths(store, bits):
    model = hw_models.cnv(store, bits)
    check_random_foldings(model, build_design(model, PYNQ_Z1, ALL_CHOICES), count=2, seed=bits)


@pytest.mark.slow
def test_inserted_nodes_equal_finn_channel_pruned_cnv(store):
    model = hw_models.cnv(store, 2, PRUNED_CHANNELS)
    check_random_foldings(model, build_design(model, PYNQ_Z1, ALL_CHOICES), count=2, seed=7)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sfc_1w1a", "lfc_1w2a"])
def test_inserted_nodes_equal_finn_other_mlps(store, name):
    model = hw_models.mlp(store, name)
    check_random_foldings(model, build_design(model, PYNQ_Z1, ALL_CHOICES), count=2, seed=3)


def test_dwc_luts_equal_finn_for_every_width_pair():
    """The copied lut_estimation on every pair of widths up to 64 bits (integer and non-integer ratios)."""
    from onnx import helper

    from finn.custom_op.fpgadataflow.rtl.streamingdatawidthconverter_rtl import StreamingDataWidthConverter_rtl

    widths = np.arange(1, 65)
    ins, outs = np.meshgrid(widths, widths, indexing="ij")
    node = helper.make_node("StreamingDataWidthConverter_rtl", ["i"], ["o"], inWidth=1, outWidth=1)
    inst = StreamingDataWidthConverter_rtl(node)
    finn = np.zeros_like(ins)
    for a, b in zip(ins.ravel(), outs.ravel()):
        inst.set_nodeattr("inWidth", int(a))
        inst.set_nodeattr("outWidth", int(b))
        finn[a - 1, b - 1] = inst.lut_estimation("xc7z020clg400-1")
    assert (dwc_luts(ins, outs) == finn).all()


# ----------------------------------------------------------------------------------------------
# FIFO configs


def test_user_fifo_depths_reproduced_by_finn_and_costed_equal(cnv2, tmp_path):
    """Depths in FINN's fifo_sizing.json form (FIFO names of the folding's own build): the emitted
    JSON alone makes FINN's InsertFIFO build the FIFOs we cost, and so does FINN's own
    ApplyFIFODepthsFromFile with that file; shift-register, LUTRAM and BRAM FIFOs alike."""
    import json

    design = build_design(cnv2, PYNQ_Z1)
    folding = Folding.of("x", design, [len(g) // 2 for g in design.groups])
    graph = insert_dwcs_and_fifos(apply_folding(cnv2, folding.config()), PYNQ_Z1.part)
    names = [n.name for n in inserted_nodes(graph) if n.role != "converter"]
    depths = dict(zip(names, itertools.cycle([2, 40, 300, 600])))
    config = {"fifo_depths": depths, "impl_style": {n: "rtl" for n in names}, "ram_style": {n: "auto" for n in names}}
    user = fifo_depths(cnv2, config, PYNQ_Z1.part, reference=folding.config())
    assert user.changed
    design = build_design(cnv2, PYNQ_Z1, fifo_config=user)
    folding = Folding.of("x", design, folding.choice)
    assert all(set(folding.config()[n]) >= {"inFIFODepths", "outFIFODepths"} for n in user.changed)
    emitted, _ = finn_whole_design(cnv2, folding)
    assert ours(folding) == emitted
    path = tmp_path / "fifo_sizing.json"
    path.write_text(json.dumps(config))
    plain = Folding.of("x", build_design(cnv2, PYNQ_Z1), folding.choice)
    applied, _ = finn_whole_design(cnv2, plain, fifo_config=path)
    assert applied == emitted
    nodes = folding.inserted()
    assert {n["depth"] for n in nodes if n["role"] != "converter"} == {2, 40, 300, 600}
    assert all(n["BRAM_18K"] > 0 for n in nodes if n["depth"] == 600 and n["in_width"] >= 8)
    assert all(n["BRAM_18K"] == 0 for n in nodes if n["depth"] in (2, 40))


def test_fifo_config_node_depths(cnv2):
    config = {"MVAU_hls_1": {"inFIFODepths": [64], "outFIFODepths": [3]}, "Defaults": {}}
    depths = fifo_depths(cnv2, config, PYNQ_Z1.part)
    assert depths.changed == {"MVAU_hls_1"} and depths.inputs["MVAU_hls_1"] == (64,)
    assert FifoDepths.of_model(cnv2).inputs["MVAU_hls_1"] == (2,)


@pytest.mark.parametrize("config, match", [
    ({"MVAU_hls_99": {"inFIFODepths": [4]}}, "names MVAU_hls_99, not a HW node"),
    ({"fifo_depths": {"StreamingFIFO_rtl_999": 4}}, "StreamingFIFO_rtl_999"),
    ({"MVAU_hls_1": {"inFIFODepths": [0]}}, "not a positive integer"),
    ({"MVAU_hls_1": {"outFIFODepths": [1]}}, "at least 2"),
    ({"MVAU_hls_1": {"outFIFODepths": ["8"]}}, "not a positive integer"),
    ({"fifo_depths": {"StreamingFIFO_rtl_1": -3}}, "not a positive integer"),
    ({"fifo_depths": {"StreamingFIFO_rtl_1": 8}, "ram_style": {"StreamingFIFO_rtl_1": "block"}}, "ram_style"),
    ({"StreamingFIFO_rtl_1": {"depth": 8, "ram_style": "ultra"}}, "ram_style"),
])
def test_bad_fifo_config_is_user_error(cnv2, config, match):
    with pytest.raises(UserError, match=match):
        fifo_depths(cnv2, config, PYNQ_Z1.part)


def test_unreadable_fifo_config_is_user_error(cnv2, tmp_path):
    (tmp_path / "fifo.json").write_text("{not json")
    with pytest.raises(UserError, match="cannot read FIFO config"):
        fifo_depths(cnv2, tmp_path / "fifo.json", PYNQ_Z1.part)


# ----------------------------------------------------------------------------------------------
# Unknown nodes


def test_unknown_node_types_are_user_errors(tfc):
    from onnx import helper
    from qonnx.core.modelwrapper import ModelWrapper

    for op_type, domain in (("Relu", ""), ("Frobnicate_hls", "finn.custom_op.fpgadataflow.hls")):
        proto = ModelWrapper(tfc.model.SerializeToString())
        first = proto.graph.node[0]
        node = helper.make_node(op_type, [first.output[0]], ["odd_out"], name="Odd_0", domain=domain,
                                backend="fpgadataflow")
        consumer = proto.find_consumer(first.output[0])
        consumer.input[0] = "odd_out"
        proto.graph.node.insert(1, node)
        with pytest.raises(UserError, match=r"Odd_0 \(" + op_type + r"\).*cannot be optimised"):
            build_design(proto, PYNQ_Z1)


# ----------------------------------------------------------------------------------------------
# The optimiser: exact against brute force


def brute_force(design: Design, budget: Budget):
    """(max cycles, LUT, BRAM18) of the best fitting whole design, over every choice; None if none."""
    best = None
    for choice in itertools.product(*(range(len(g)) for g in design.groups)):
        f = Folding.of("brute", design, list(choice))
        if f.fits(budget):
            key = (f.max_cycles, f.total("LUT"), f.total("BRAM_18K"))
            best = key if best is None or key < best else best
    return best


def check_exact(design: Design, budget: Budget) -> bool:
    """The optimiser equals brute force (or both find nothing); True if something fits."""
    best = brute_force(design, budget)
    if best is None:
        with pytest.raises(UserError, match="no whole design"):
            optimise(design, budget)
        return False
    found = optimise(design, budget)
    assert found.fits(budget)
    assert (found.max_cycles, found.total("LUT"), found.total("BRAM_18K")) == best
    return True


def synthetic_design(rng, n_groups: int, extra_streams: int, width_converters: bool) -> Design:
    """Random groups on a chain of streams plus ``extra_streams`` random ones (cycles and parallel
    streams included), a stream inside one group, and the graph's input/output FIFOs."""
    def costs(n):
        return costmodel.Costs(rng.integers(1, 40, n), rng.integers(0, 100, n), rng.integers(0, 8, n),
                        np.zeros(n, dtype=np.int64), rng.integers(0, 4, n))

    groups = [Group(f"g{g}", [], {}, costs(int(rng.integers(1, 5))), {}) for g in range(n_groups)]

    def stream(p, c):
        rows = int(rng.integers(2, 4)) if p is not None else 1
        cols = int(rng.integers(2, 4)) if c is not None else 1
        tables = {"LUT": rng.integers(0, 40, (rows, cols)), "BRAM_18K": rng.integers(0, 3, (rows, cols)),
                  "URAM": np.zeros((rows, cols), dtype=np.int64), "DSP": rng.integers(0, 2, (rows, cols))}
        out_class = rng.integers(0, rows, len(groups[p])) if p is not None else np.zeros(1, dtype=np.int64)
        in_class = rng.integers(0, cols, len(groups[c])) if c is not None else np.zeros(1, dtype=np.int64)
        same = p == c  # a stream inside a group, like a depthwise SWG's into its Pool: widths tied
        return Edge(p is not None and f"g{p}" or None, c is not None and f"g{c}" or None, p, c, out_class, in_class,
                    np.ones(rows, dtype=np.int64) if same else np.arange(rows) % 2 + 1,
                    np.ones(cols, dtype=np.int64) if same else np.arange(cols) % 2 + 1, np.ones(rows, dtype=np.int64),
                    np.ones(cols, dtype=np.int64), np.ones(max(rows, cols), dtype=np.int64), (2, 2, 2), tables)

    pairs = [(g, g + 1) for g in range(n_groups - 1)]
    pairs += [tuple(rng.choice(n_groups, 2, replace=False)) for _ in range(extra_streams)]
    inside = int(rng.integers(n_groups))
    edges = [stream(int(p), int(c)) for p, c in pairs] + [stream(inside, inside), stream(None, 0),
                                                          stream(n_groups - 1, None)]
    shell = Shell(LUT=int(rng.integers(0, 20)), BRAM_18K=1, URAM=0, DSP=0, source="test")
    return Design(groups, Insertions(edges, shell, FifoDepths({}, {}), PYNQ_Z1.part, width_converters))


def _budget(rng, design: Design) -> Budget:
    """A budget that binds: mostly between one random admitted choice's totals (so something fits)
    and the largest, sometimes between the leanest and the largest (maybe nothing fits)."""
    totals = []
    for _ in range(300):
        f = Folding.of("r", design, [int(rng.integers(len(g))) for g in design.groups])
        if f.insertions.admits(f.choice):
            totals.append([f.total(r) for r in costmodel.RESOURCES])
    if not totals:
        return Budget(10**6, 10**6, 0, 10**6)
    totals = np.asarray(totals)
    high = totals.max(axis=0)
    low = totals.min(axis=0) if rng.random() < 0.3 else totals[rng.integers(len(totals))]
    pick = low + rng.random(4) * (high - low)
    return Budget(int(pick[0]), int(pick[1]), 0, int(pick[3]))


@pytest.mark.parametrize("extra_streams", [0, 2])
@pytest.mark.parametrize("width_converters", [True, False])
def test_optimiser_equals_brute_force_synthetic(monkeypatch, extra_streams, width_converters):
    """Chains (the forest DP, Lagrangian certificates and pruning before any MILP) and graphs with
    cycles or parallel streams (MILP only); every path is taken and every answer is brute force's."""
    from pynqrepro.folding import optimise as optimiser

    paths = {"milp": 0, "fits": 0, "infeasible": 0, "open": 0}

    def count(name, function):
        def counted(*args, **kwargs):
            result = function(*args, **kwargs)
            paths[result[0] if name == "lagrangian" else name] += 1
            return result
        return counted

    monkeypatch.setattr(optimiser._ThresholdSolver, "_milp", count("milp", optimiser._ThresholdSolver._milp))
    monkeypatch.setattr(optimiser._ThresholdSolver, "_lagrangian", count("lagrangian", optimiser._ThresholdSolver._lagrangian))
    rng = np.random.default_rng(extra_streams * 10 + width_converters)
    feasible = 0
    for _ in range(25):
        design = synthetic_design(rng, int(rng.integers(3, 6)), extra_streams, width_converters)
        feasible += check_exact(design, _budget(rng, design))
    assert feasible >= 8
    assert paths["milp"] > 0
    if extra_streams == 0:
        assert paths["fits"] > 0 and paths["infeasible"] > 0 and paths["open"] > 0, paths


def restrict(design: Design, keep: list) -> Design:
    """``design`` with group g cut to its candidates ``keep[g]`` (streams follow)."""
    groups = [Group(g.name, g.nodes, {p: v[k] for p, v in g.params.items()}, g.costs.take(k), g.node_attrs)
              for g, k in zip(design.groups, keep)]
    edges = [dataclasses.replace(
        e, out_class=e.out_class[keep[e.producer_group]] if e.producer_group is not None else e.out_class,
        in_class=e.in_class[keep[e.consumer_group]] if e.consumer_group is not None else e.in_class)
        for e in design.insertions.edges]
    return Design(groups, dataclasses.replace(design.insertions, edges=edges))


@pytest.mark.parametrize("width_converters", [True, False])
def test_optimiser_equals_brute_force_on_cut_down_cnv(cnv2, width_converters):
    """Five neighbouring FINN groups of the 2-bit CNV with four candidates each (PE, SIMD <= 2, so
    neighbours' widths both match and differ), the rest fixed at the fewest-LUT folding."""
    design = build_design(cnv2, PYNQ_Z1, ALL_CHOICES, width_converters=width_converters)
    from pynqrepro.folding import optimise as optimiser

    # the background: the fewest-LUT folding FINN builds (no DWC where the design forbids them);
    # PE = SIMD = 1 everywhere is not one (FINN's codegen needs SIMD >= MW / 1024)
    unbounded = {r: 10**9 for r in costmodel.RESOURCES}
    ones = optimiser._ThresholdSolver(design.groups, Budget(**unbounded), design.insertions).solve(np.inf, unbounded)
    rng = np.random.default_rng(5)
    feasible = 0
    for start in (1, 8, 13):
        keep = [np.asarray([i]) for i in ones]
        for g in range(start, min(start + 5, len(design.groups))):
            group = design.groups[g]
            small = np.ones(len(group), dtype=bool)
            for param in ("PE", "SIMD"):
                if param in group.params:
                    small &= group.params[param] <= 2
            options = np.setdiff1d(np.flatnonzero(small), [ones[g]])
            picked = rng.choice(options, min(3, len(options)), replace=False) if len(options) else []
            keep[g] = np.sort(np.concatenate([[ones[g]], picked]).astype(np.int64))
        cut = restrict(design, keep)
        feasible += check_exact(cut, _budget(rng, cut))
    assert feasible >= 2


def test_whole_design_fits_where_compute_only_did_not(cnv2):
    """At 85% of the Pynq-Z1 the compute-only optimum overflows once FINN's insertions and the
    shell are counted; the whole-design optimum fits and is no faster."""
    budget = board_budget(PYNQ_Z1, 0.85)
    design = build_design(cnv2, PYNQ_Z1)
    compute = optimise(design.groups, budget)
    judged = Folding.of("compute-only", design, compute.choice)
    assert compute.fits(budget) and not judged.fits(budget)
    whole = optimise(design, budget)
    assert whole.fits(budget) and whole.max_cycles >= compute.max_cycles
    assert whole.total("LUT") == whole.compute_total("LUT") + whole.inserted_total("LUT")
    dwcs_fifos = sum(node["LUT"] for node in whole.inserted())  # FINN's fifo.sv / DWC models
    assert dwcs_fifos == whole.inserted_total("LUT", finn=True) - PYNQ_Z1.shell.LUT > 0
    fit = load_node_model()  # ours: the fit's cost per inserted node (fitted on zero features)
    ours = sum(fit.predict({"op_type": node["op_type"], "memory_bits": 0}, "LUT") for node in whole.inserted())
    assert whole.dwc_fifo_total("LUT") == ours == whole.inserted_total("LUT") - PYNQ_Z1.shell.LUT > 0
    assert compute.dwc_fifo_total("LUT") == 0
    assert smallest_lut_budget(design, budget) <= budget.LUT


def test_no_width_converters_forces_equal_widths(cnv2):
    budget = board_budget(PYNQ_Z1, 1.0)
    with_dwc = optimise(build_design(cnv2, PYNQ_Z1), budget)
    without = optimise(build_design(cnv2, PYNQ_Z1, width_converters=False), budget)
    assert with_dwc.converters > 0 and without.converters == 0
    assert without.max_cycles >= with_dwc.max_cycles
    inserted, _ = finn_whole_design(cnv2, without)
    assert not any(op.startswith("StreamingDataWidthConverter") for op, _ in inserted.values())


def test_baselines_are_judged_as_whole_designs(cnv2):
    budget = board_budget(PYNQ_Z1, 0.85)
    design = build_design(cnv2, PYNQ_Z1)
    greedy = baselines.study_greedy(design, budget)
    assert greedy.whole_design and greedy.total("LUT") > greedy.compute_total("LUT")
    ones = baselines.all_ones(design)
    assert ones.whole_design and ones.total("BRAM_18K") > ones.compute_total("BRAM_18K")


def test_parallel_window_sliding_window_streams_all_channels(cnv2):
    """FINN's RTL sliding window asserts SIMD = IFMChannels for a parallel window (not depthwise):
    the space offers only that, from FINN's own check."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    from pynqrepro.folding.space import build_space

    model = ModelWrapper(cnv2.model.SerializeToString())
    swg = model.get_node_from_name("ConvolutionInputGenerator_rtl_1")
    getCustomOp(swg).set_nodeattr("parallel_window", 1)
    group = next(g for g in build_space(model, PYNQ_Z1.part) if g.name == swg.name)
    assert group.params["SIMD"].tolist() == [64]


def test_deep_fifos_take_uram_budgeted_on_uram_parts(store):
    """FINN's fifo.sv model puts a FIFO deeper than 2,028 words (5 bits or wider) in URAM: on the
    ZCU104 such a design is budgeted with the part's 96 URAM, FINN's estimate of its prepared build
    counts the same, and a budget without URAM has no room for it."""
    from pynqrepro.core.boards import get_board

    board = get_board("zcu104")
    model = hw_models.mlp(store, "tfc_2w2a", board)
    first = model.graph.node[0].name  # the graph input's FIFO: 8-bit pixels, whatever the folding
    design = build_design(model, board, fifo_config=fifo_depths(model, {first: {"inFIFODepths": [4096]}}, board.part))
    budget = board_budget(board)
    folding = optimise(design, budget)
    assert budget.URAM == 96 and 0 < folding.total("URAM") <= budget.URAM
    assert outputs.finn_build_check(model, folding, board) == []
    with pytest.raises(UserError, match=r"needs .* URAM \(budget 0\)"):
        optimise(design, dataclasses.replace(budget, URAM=0))
