"""Exact resource-budgeted folding search.

Minimise the largest per-node cycle count subject to LUT <= ratio x device LUTs, BRAM18, URAM and
DSP within their budgets; among equally fast foldings take fewer LUTs, then fewer BRAM18.

Why it is exact: a bottleneck threshold T admits, per group, the candidates with cycles <= T, so
feasibility is monotone in T and the optimum is one of the sorted distinct candidate cycle counts.
Bisection over them finds the smallest feasible T; each question is a multiple-choice knapsack,
a MILP (CBC through python-mip): during bisection CBC stops at the first fitting choice or proves
there is none; at the smallest feasible T it is solved to proven optimality (zero gap) with the
objective LUT x (BRAM budget + 1) + BRAM, which encodes the tie-break. Cheap bounds answer most questions without a
MILP: the sum of per-group minima of one resource is a lower bound, and a per-group min-LUT choice
that also fits BRAM/URAM/DSP is feasible outright. Dominated candidates are dropped first.
"""

from dataclasses import dataclass

import mip
import numpy as np

from pynqrepro.core.boards import Board
from pynqrepro.core.errors import UserError
from pynqrepro.folding import costmodel as cm
from pynqrepro.folding.space import Group


@dataclass(frozen=True)
class Budget:
    """Absolute resource limits of a search."""

    LUT: int
    BRAM_18K: int
    URAM: int
    DSP: int
    lut_ratio: float = 1.0

    def describe(self) -> str:
        return f"{self.LUT:,} LUT ({self.lut_ratio:g} x device), {self.BRAM_18K} BRAM18, {self.DSP} DSP"


def board_budget(board: Board, lut_ratio: float = 1.0, bram_ratio: float = 1.0, dsp_ratio: float = 1.0) -> Budget:
    for label, ratio in (("LUT", lut_ratio), ("BRAM", bram_ratio), ("DSP", dsp_ratio)):
        if not 0.0 < ratio <= 1.0:
            raise UserError(f"{label} ratio {ratio} is outside (0, 1]: use e.g. 0.85 for 85% of the device")
    return Budget(int(board.luts * lut_ratio), int(board.bram18 * bram_ratio), board.uram,
                  int(board.dsp * dsp_ratio), lut_ratio)


@dataclass
class Folding:
    """One candidate index per group, with its totals under the cost model."""

    method: str
    groups: list
    choice: list

    @property
    def cycles(self) -> np.ndarray:
        return np.asarray([g.costs.cycles[i] for g, i in zip(self.groups, self.choice)])

    @property
    def max_cycles(self) -> int:
        return int(self.cycles.max())

    @property
    def bottleneck(self) -> str:
        return self.groups[int(np.argmax(self.cycles))].name

    def total(self, resource: str) -> int:
        return int(sum(g.costs.resource(resource)[i] for g, i in zip(self.groups, self.choice)))

    def fits(self, budget: Budget) -> bool:
        return all(self.total(r) <= getattr(budget, r) for r in cm.RESOURCES)

    def fps(self, clock_ns: float) -> float:
        return 1e9 / clock_ns / self.max_cycles

    def config(self) -> dict:
        """FINN folding config (ApplyConfig JSON form) of this folding."""
        out = {"Defaults": {}}
        for group, i in zip(self.groups, self.choice):
            out.update(group.assignment(i))
        return out


def _pareto(group: Group) -> np.ndarray:
    """Indices of candidates no other candidate beats or equals in every cost (first kept on ties)."""
    cost = np.stack([group.costs.cycles] + [group.costs.resource(r) for r in cm.RESOURCES], axis=1)
    order = np.lexsort(cost.T[::-1])
    cost = cost[order]
    keep = []
    for k in range(len(cost)):
        if not keep or not np.any(np.all(cost[keep] <= cost[k], axis=1)):
            keep.append(k)
    return order[keep]


class _Problem:
    """Pareto-reduced candidates of all groups, stacked for fast threshold queries."""

    def __init__(self, groups: list[Group], budget: Budget):
        self.groups, self.budget = groups, budget
        self.index = [_pareto(g) for g in groups]
        self.cost = [
            {k: (g.costs.cycles if k == "cycles" else g.costs.resource(k))[idx] for k in ("cycles",) + cm.RESOURCES}
            for g, idx in zip(groups, self.index)
        ]
        self.solves = 0

    def thresholds(self) -> np.ndarray:
        floor = max(int(c["cycles"].min()) for c in self.cost)
        values = np.unique(np.concatenate([c["cycles"] for c in self.cost]))
        return values[values >= floor]

    def solve(self, threshold: float, limits: dict, optimal: bool = True) -> list | None:
        """Lexicographically (LUT, BRAM) cheapest choice with cycles <= threshold within ``limits``,
        as indices into each group's original candidates, or None if there is none. With
        ``optimal=False`` any fitting choice will do (a feasibility question)."""
        allowed = [c["cycles"] <= threshold for c in self.cost]
        sub = [{k: v[a] for k, v in c.items()} for c, a in zip(self.cost, allowed)]
        for r in cm.RESOURCES:
            if sum(int(s[r].min()) for s in sub) > limits[r]:
                return None
        weight = limits["BRAM_18K"] + 1
        greedy = [int(np.argmin(s["LUT"] * weight + s["BRAM_18K"])) for s in sub]
        if all(sum(int(s[r][i]) for s, i in zip(sub, greedy)) <= limits[r] for r in cm.RESOURCES):
            picks = greedy  # every group at its own lexicographic minimum: optimal
        else:
            picks = self._milp(sub, limits, weight, optimal)
            if picks is None:
                return None
        return [int(idx[np.flatnonzero(a)[p]]) for idx, a, p in zip(self.index, allowed, picks)]

    def _milp(self, sub: list, limits: dict, weight: int, optimal: bool) -> list | None:
        self.solves += 1
        model = mip.Model(sense=mip.MINIMIZE, solver_name=mip.CBC)
        model.verbose = 0
        model.max_mip_gap = 0.0
        model.max_mip_gap_abs = 0.5
        if not optimal:
            model.max_solutions = 1  # stop at the first fitting choice; infeasibility is still proven
        x = [[model.add_var(var_type=mip.BINARY) for _ in range(len(s["LUT"]))] for s in sub]
        for xs in x:
            model += mip.xsum(xs) == 1
        for r in cm.RESOURCES:
            if any(s[r].any() for s in sub):
                model += mip.xsum(int(s[r][i]) * v for s, xs in zip(sub, x) for i, v in enumerate(xs)) <= limits[r]
        model.objective = mip.xsum(
            int(s["LUT"][i] * weight + s["BRAM_18K"][i]) * v for s, xs in zip(sub, x) for i, v in enumerate(xs)
        )
        status = model.optimize()
        if status == mip.OptimizationStatus.INFEASIBLE:
            return None
        if status != mip.OptimizationStatus.OPTIMAL and (optimal or status != mip.OptimizationStatus.FEASIBLE):
            raise RuntimeError(f"CBC ended with {status} on a folding knapsack")
        return [int(np.argmax([v.x for v in xs])) for xs in x]


def optimise(groups: list[Group], budget: Budget) -> Folding:
    """The fastest folding within ``budget`` (exact under the cost model), or a UserError naming
    the smallest budget that fits."""
    problem = _Problem(groups, budget)
    limits = {r: getattr(budget, r) for r in cm.RESOURCES}
    values = problem.thresholds()
    if problem.solve(values[-1], limits, optimal=False) is None:
        raise UserError(_infeasible_message(problem, budget))
    lo, hi = 0, len(values) - 1  # values[hi] is feasible
    while lo < hi:
        mid = (lo + hi) // 2
        if problem.solve(values[mid], limits, optimal=False) is None:
            lo = mid + 1
        else:
            hi = mid
    return Folding("exact", groups, problem.solve(values[hi], limits))


def _fewest_luts(problem: _Problem, budget: Budget) -> int | None:
    """The fewest LUTs of any folding within the budget's other limits (None: BRAM/URAM/DSP bound)."""
    unbounded = dict(LUT=10**12, BRAM_18K=budget.BRAM_18K, URAM=budget.URAM, DSP=budget.DSP)
    picks = problem.solve(np.inf, unbounded)
    if picks is None:
        return None
    return sum(int(g.costs.LUT[i]) for g, i in zip(problem.groups, picks))


def smallest_lut_budget(groups: list[Group], budget: Budget) -> int | None:
    """The smallest LUT limit at which some folding fits ``budget``'s other limits: a folding fits
    a LUT budget exactly when that budget is at least this. None when no LUT budget helps."""
    return _fewest_luts(_Problem(groups, budget), budget)


def _infeasible_message(problem: _Problem, budget: Budget) -> str:
    """Name the smallest budget that fits: fewest LUTs within the other limits, or else the BRAM18
    and DSP the network needs at least."""
    luts = _fewest_luts(problem, budget)
    if luts is not None:
        device = budget.LUT / budget.lut_ratio
        return (f"no folding fits {budget.describe()}: the smallest fitting budget is {luts:,} LUT "
                f"(ratio {luts / device:.3f}); raise the LUT ratio or choose a larger board")
    need = {r: sum(int(c[r].min()) for c in problem.cost) for r in ("BRAM_18K", "DSP", "URAM")}
    return (f"no folding fits {budget.describe()}: even the leanest folding needs {need['BRAM_18K']} BRAM18, "
            f"{need['DSP']} DSP; allow distributed-RAM weights or choose a larger board")
