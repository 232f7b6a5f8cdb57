"""An independent oracle for the whole-design optimiser (issue 18 item 7): the fastest folding of
the real CNV whose whole design (compute nodes, every DWC and FIFO FINN's build inserts, the shell)
fits a budget, as one min-max MILP written here with python-mip, directly over every candidate of
every group and, per stream between two groups, every (producer output, consumer input) stream
class pair. No bisection, Pareto filter, bound or decomposition of the optimiser's: if its answer
is not this MILP's optimum (or does not fit by this file's own sum), the optimiser is wrong."""

import pytest
import torch

from pynqrepro.core.boards import get_board
from pynqrepro.finnflow.hw_build import build_hw_model
from pynqrepro.finnflow.export import export_qonnx
from pynqrepro.folding import costmodel
from pynqrepro.folding.optimise import board_budget, optimise
from pynqrepro.folding.wholedesign import build_design
from pynqrepro.models.cnv import CNV

PYNQ_Z1 = get_board("pynq-z1")


def whole_design_milp(design, budget) -> tuple[int, list[int]]:
    """(smallest bottleneck cycles, one choice reaching it) of ``design`` within ``budget``."""
    import mip

    groups, edges, shell = design.groups, design.insertions.edges, design.insertions.shell
    model = mip.Model(sense=mip.MINIMIZE, solver_name=mip.CBC)
    model.verbose = 0
    model.max_mip_gap, model.max_mip_gap_abs = 0.0, 0.5
    bottleneck = model.add_var(lb=0)
    x = [[model.add_var(var_type=mip.BINARY) for _ in range(len(group))] for group in groups]
    cost = {r: [] for r in costmodel.RESOURCES}  # linear terms of each resource's whole-design total
    for group, xs in zip(groups, x):
        model += mip.xsum(xs) == 1
        model += bottleneck >= mip.xsum(int(c) * v for c, v in zip(group.costs.cycles, xs))
        for r in costmodel.RESOURCES:
            cost[r] += [int(c) * v for c, v in zip(group.costs.resource(r), xs)]
    for edge in edges:
        p, c = edge.producer_group, edge.consumer_group
        if p is not None and c is not None and p != c:  # a stream between two decisions: every class pair
            rows, cols = edge.tables["LUT"].shape
            y = [[model.add_var(lb=0, ub=1) for _ in range(cols)] for _ in range(rows)]
            for k in range(rows):  # y's marginals are the one-hot classes the two choices give
                model += mip.xsum(y[k]) == mip.xsum(v for i, v in enumerate(x[p]) if edge.out_class[i] == k)
            for l in range(cols):
                model += mip.xsum(y[k][l] for k in range(rows)) == \
                    mip.xsum(v for i, v in enumerate(x[c]) if edge.in_class[i] == l)
            for r in costmodel.RESOURCES:
                cost[r] += [edge.cost(r, k, l) * y[k][l] for k in range(rows) for l in range(cols)
                            if edge.cost(r, k, l)]
        else:  # the graph's input/output FIFO, or a stream inside one group: one decision sets it
            owner = p if p is not None else c
            for i, v in enumerate(x[owner]):
                k = int(edge.out_class[i]) if p is not None else 0
                l = int(edge.in_class[i]) if c is not None else 0
                for r in costmodel.RESOURCES:
                    cost[r].append(edge.cost(r, k, l) * v)
    for r in costmodel.RESOURCES:
        model += mip.xsum(cost[r]) + shell.resource(r) <= getattr(budget, r)
    model.objective = bottleneck
    assert model.optimize() == mip.OptimizationStatus.OPTIMAL
    choice = [max(range(len(xs)), key=lambda i: xs[i].x) for xs in x]
    return round(model.objective_value), choice


def total(design, choice, resource: str) -> int:
    """The whole design's ``resource`` at ``choice``, summed here: groups, every stream, the shell."""
    groups, insertions = design.groups, design.insertions
    compute = sum(int(g.costs.resource(resource)[i]) for g, i in zip(groups, choice))
    streams = 0
    for edge in insertions.edges:
        k = int(edge.out_class[choice[edge.producer_group]]) if edge.producer_group is not None else 0
        l = int(edge.in_class[choice[edge.consumer_group]]) if edge.consumer_group is not None else 0
        streams += edge.cost(resource, k, l)
    return compute + streams + insertions.shell.resource(resource)


@pytest.fixture(scope="module")
def cnv2_design():
    torch.manual_seed(0)
    model = build_hw_model(export_qonnx(CNV(2, 2).eval()), PYNQ_Z1).hw_model
    return build_design(model, PYNQ_Z1)


@pytest.mark.slow
@pytest.mark.parametrize("lut_ratio", [0.5, 0.7, 0.85])
def test_whole_design_optimiser_is_the_milps_optimum_on_the_real_cnv(cnv2_design, lut_ratio):
    budget = board_budget(PYNQ_Z1, lut_ratio)
    found = optimise(cnv2_design, budget)
    optimum, witness = whole_design_milp(cnv2_design, budget)
    print(f"CNV 2w2a pynq-z1 LUT ratio {lut_ratio}: optimiser {found.max_cycles} cycles, MILP {optimum} "
          f"({1e9 / PYNQ_Z1.clock_ns / optimum:,.1f} fps), LUT {total(cnv2_design, found.choice, 'LUT'):,}")
    assert found.max_cycles == optimum
    assert all(total(cnv2_design, found.choice, r) <= getattr(budget, r) for r in costmodel.RESOURCES)
    assert all(total(cnv2_design, witness, r) <= getattr(budget, r) for r in costmodel.RESOURCES)
