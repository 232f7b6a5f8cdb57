"""Exact resource-budgeted folding search, of the compute nodes or of the whole design FINN builds.

Minimise the largest per-node cycle count subject to LUT <= ratio x device LUTs, BRAM18, URAM and
DSP within their budgets; among equally fast foldings take fewer LUTs, then fewer BRAM18. For a
``Design`` the totals are the whole design's: compute nodes, the DWCs/FIFOs FINN inserts on every
stream (their cost depends on both neighbours' foldings) and the board's shell.

Why it is exact: a bottleneck threshold T admits, per group, the candidates with cycles <= T; DWCs
and FIFOs take no cycles in FINN's estimate, so feasibility is monotone in T and the optimum is one
of the sorted distinct candidate cycle counts. Bisection over them finds the smallest feasible T;
at it the cheapest folding is solved to proven optimality (zero gap, objective LUT x (BRAM budget
+ 1) + BRAM, which encodes the tie-break); during bisection CBC stops at the first fitting choice
or proves there is none. Each threshold instance is a MILP (CBC through python-mip): x[g, i] binary,
one per group; per stream e between groups p and c, a continuous z[e, k, l] >= 0 per allowed pair of
producer class k and consumer class l (the stream widths the candidates give it), with
sum_l z[e, k, l] = sum of x[p, i] over p's candidates of class k and sum_k z[e, k, l] = sum of
x[c, j] over c's candidates of class l. For binary x exactly one class per end carries 1, so the
row of that class sums to 1, every other row and column to 0, and z is the indicator of the chosen
pair: the stream's cost sum cost[e, k, l] z[e, k, l] is exact. "No width converters" drops the pairs
that need one. Cheap bounds answer most instances without a MILP: the per-group and per-stream
minima of a resource bound its total from below; the per-group cheapest choice, if it fits, is a
witness, and optimal when it also meets every stream's minimum. A candidate is dropped first if
another of its group with the same stream classes is no worse in every cost.
"""

from dataclasses import dataclass

import mip
import numpy as np

from pynqrepro.core.boards import Board
from pynqrepro.core.errors import UserError
from pynqrepro.folding import costmodel
from pynqrepro.folding.lagrangian_bounds import (StreamForest, ThresholdInstance, candidates_within, dual, improve,
                                                 lagrangian, resource_bound)
from pynqrepro.folding.space import Group
from pynqrepro.folding.wholedesign import Design, Insertions


@dataclass(frozen=True)
class Budget:
    """Absolute resource limits of a search."""

    LUT: int
    BRAM_18K: int
    URAM: int
    DSP: int
    lut_ratio: float = 1.0

    def describe(self) -> str:
        uram = f", {self.URAM} URAM" if self.URAM else ""
        return f"{self.LUT:,} LUT ({self.lut_ratio:g} x device), {self.BRAM_18K} BRAM18{uram}, {self.DSP} DSP"


def board_budget(board: Board, lut_ratio: float = 1.0, bram_ratio: float = 1.0, dsp_ratio: float = 1.0) -> Budget:
    for label, ratio in (("LUT", lut_ratio), ("BRAM", bram_ratio), ("DSP", dsp_ratio)):
        if not 0.0 < ratio <= 1.0:
            raise UserError(f"{label} ratio {ratio} is outside (0, 1]: use e.g. 0.85 for 85% of the device")
    return Budget(int(board.luts * lut_ratio), int(board.bram18 * bram_ratio), board.uram,
                  int(board.dsp * dsp_ratio), lut_ratio)


def unpack(space: "list[Group] | Design") -> tuple[list, Insertions | None]:
    """(groups, what FINN inserts or None) of a compute-only space or a whole design."""
    if isinstance(space, Design):
        return space.groups, space.insertions
    return list(space), None


@dataclass
class Folding:
    """One candidate index per group, with its totals under the cost model: of the whole design
    when it knows FINN's ``insertions`` (DWCs, FIFOs, shell), else of the compute nodes only."""

    method: str
    groups: list
    choice: list
    insertions: Insertions | None = None

    @classmethod
    def of(cls, method: str, space: "list[Group] | Design", choice: list) -> "Folding":
        groups, insertions = unpack(space)
        return cls(method, groups, list(choice), insertions)

    @property
    def cycles(self) -> np.ndarray:
        return np.asarray([g.costs.cycles[i] for g, i in zip(self.groups, self.choice)])

    @property
    def max_cycles(self) -> int:
        return int(self.cycles.max())

    @property
    def bottleneck(self) -> str:
        return self.groups[int(np.argmax(self.cycles))].name

    @property
    def whole_design(self) -> bool:
        return self.insertions is not None

    def compute_total(self, resource: str) -> int:
        """The compute nodes' total, pynqrepro's estimate (``folding.decision``)."""
        return int(sum(g.costs.resource(resource)[i] for g, i in zip(self.groups, self.choice)))

    def finn_compute_total(self, resource: str) -> int:
        """The compute nodes' total as FINN estimates it (what FINN's estimate of the folded HW
        model reports)."""
        return int(sum(g.finn_costs.resource(resource)[i] for g, i in zip(self.groups, self.choice)))

    def inserted_total(self, resource: str, finn: bool = False) -> int:
        """DWCs, FIFOs and the shell (0 for a compute-only folding); ``finn``: FINN's estimate."""
        return self.insertions.total(resource, self.choice, finn) if self.insertions else 0

    def finn_total(self, resource: str) -> int:
        """FINN's raw estimate of what ``total`` covers (its blind spots left at zero), beside ours."""
        return self.finn_compute_total(resource) + self.inserted_total(resource, finn=True)

    def dwc_fifo_total(self, resource: str) -> int:
        """DWCs and FIFOs alone (0 for a compute-only folding): the part of FINN's insertions the
        folding decides, apart from the board's fixed shell."""
        return self.inserted_total(resource) - self.insertions.shell.resource(resource) if self.insertions else 0

    def total(self, resource: str) -> int:
        return self.compute_total(resource) + self.inserted_total(resource)

    def inserted(self) -> list[dict]:
        """Every DWC/FIFO FINN inserts for this folding, in graph order per stream (empty for a
        compute-only folding): op type, role, neighbours, widths, depth, costs."""
        return self.insertions.nodes(self.choice) if self.insertions else []

    @property
    def converters(self) -> int:
        """DWCs FINN inserts for this folding (0 for a compute-only folding)."""
        return self.insertions.converters(self.choice) if self.insertions else 0

    def fits(self, budget: Budget) -> bool:
        """Within ``budget`` (the whole design's totals when known), and without DWCs where the
        design forbids them."""
        admitted = self.insertions is None or self.insertions.admits(self.choice)
        return admitted and all(self.total(r) <= getattr(budget, r) for r in costmodel.RESOURCES)

    def fps(self, clock_ns: float) -> float:
        return 1e9 / clock_ns / self.max_cycles

    def config(self) -> dict:
        """FINN folding config (ApplyConfig JSON form) of this folding; with a user's FIFO depths,
        the node depths that make FINN's InsertFIFO reproduce them."""
        out = {"Defaults": {}}
        for group, i in zip(self.groups, self.choice):
            out.update(group.assignment(i))
        if self.insertions is not None:
            for node, attrs in self.insertions.depths.config().items():
                out[node] = {**out.get(node, {}), **attrs}
        return out


def _non_dominated(cost: np.ndarray) -> np.ndarray:
    """Rows no other row beats or equals in every column (first kept on ties)."""
    order = np.lexsort(cost.T[::-1])
    cost = cost[order]
    keep = []
    for k in range(len(cost)):
        if not keep or not np.any(np.all(cost[keep] <= cost[k], axis=1)):
            keep.append(k)
    return order[keep]


def _pareto(cost: dict, signature: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated candidates among those with the same stream classes."""
    matrix = np.stack([cost[k] for k in ("cycles",) + costmodel.RESOURCES], axis=1)
    keep = []
    for sig in np.unique(signature, axis=0):
        members = np.flatnonzero(np.all(signature == sig, axis=1))
        keep.extend(members[_non_dominated(matrix[members])])
    return np.sort(np.asarray(keep, dtype=np.int64))


class _ThresholdSolver:
    """Pareto-reduced candidates of all groups and the streams coupling them, for threshold queries."""

    RESOURCE_SPAN = 4096  # the largest budget the resource-exact bound enumerates

    def __init__(self, groups: list[Group], budget: Budget, insertions: Insertions | None = None):
        self.groups, self.budget, self.insertions = groups, budget, insertions
        self.edges = insertions.between_groups() if insertions else []
        self.constant = {r: insertions.shell.resource(r) if insertions else 0 for r in costmodel.RESOURCES}
        self.width_converters = insertions is None or insertions.width_converters
        group_costs, eligible = [], []
        for g, group in enumerate(groups):
            cost = {"cycles": group.costs.cycles, **{r: group.costs.resource(r) for r in costmodel.RESOURCES}}
            keep = np.arange(len(group))
            if insertions:
                extra = insertions.within_group(g, len(group))
                cost = {k: v + extra[k] if k in costmodel.RESOURCES else v for k, v in cost.items()}
                if not self.width_converters:  # a DWC inside the group: never a candidate
                    keep = np.flatnonzero(~extra["converters"])
            group_costs.append({k: v[keep] for k, v in cost.items()})
            eligible.append(keep)
        signatures = []  # a candidate's stream classes: only candidates sharing them compete
        for g, keep in enumerate(eligible):
            ends = [e.out_class[keep] for e in self.edges if e.producer_group == g]
            ends += [e.in_class[keep] for e in self.edges if e.consumer_group == g]
            signatures.append(np.stack(ends, axis=1) if ends else np.zeros((len(keep), 0), dtype=np.int64))
        reduced = [_pareto(c, s) for c, s in zip(group_costs, signatures)]
        self.index = [keep[idx] for keep, idx in zip(eligible, reduced)]
        self.cost = [{k: v[idx] for k, v in c.items()} for c, idx in zip(group_costs, reduced)]
        self.ends = [(e.out_class[self.index[e.producer_group]], e.in_class[self.index[e.consumer_group]])
                     for e in self.edges]
        self.pair_ok = [np.ones_like(e.converter) if self.width_converters else ~e.converter for e in self.edges]
        self.forest = StreamForest.of(len(groups), [(e.producer_group, e.consumer_group) for e in self.edges])
        self.solves = 0

    def thresholds(self) -> np.ndarray:
        if any(len(c["cycles"]) == 0 for c in self.cost):
            return np.zeros(1, dtype=np.int64)  # some group has no candidate: nothing is feasible
        floor = max(int(c["cycles"].min()) for c in self.cost)
        values = np.unique(np.concatenate([c["cycles"] for c in self.cost]))
        return values[values >= floor]

    def _consistent(self, allowed: list) -> list | None:
        """``allowed`` without candidates whose stream class has no permitted partner among the
        neighbour's allowed candidates (only "no width converters" forbids pairs); None if a group
        is left empty."""
        if any(not a.any() for a in allowed):
            return None
        if self.width_converters:
            return allowed
        allowed = [a.copy() for a in allowed]
        changed = True
        while changed:
            changed = False
            for e, (k, l), ok in zip(self.edges, self.ends, self.pair_ok):
                p, c = e.producer_group, e.consumer_group
                rows = np.zeros(ok.shape[0], dtype=bool)
                rows[k[allowed[p]]] = True
                cols = np.zeros(ok.shape[1], dtype=bool)
                cols[l[allowed[c]]] = True
                keep_p = allowed[p] & (ok[:, cols].any(axis=1))[k]
                keep_c = allowed[c] & (ok[rows, :].any(axis=0))[l]
                if (keep_p != allowed[p]).any() or (keep_c != allowed[c]).any():
                    allowed[p], allowed[c], changed = keep_p, keep_c, True
            if any(not a.any() for a in allowed):
                return None
        return allowed

    def solve(self, threshold: float, limits: dict, optimal: bool = True, start: list | None = None) -> list | None:
        """Lexicographically (LUT, BRAM) cheapest choice with cycles <= threshold within ``limits``,
        as indices into each group's original candidates, or None if there is none. With
        ``optimal=False`` any fitting choice will do (a feasibility question). ``start``: a choice
        known to fit (original indices), handed to CBC as its first incumbent."""
        allowed = self._consistent([c["cycles"] <= threshold for c in self.cost])
        if allowed is None:
            return None
        instance = self._instance(allowed, limits)
        weight = max(instance.limits["BRAM_18K"], 0) + 1
        for r in costmodel.RESOURCES:  # separable lower bound
            floor = sum(int(c[r].min()) for c in instance.costs)
            floor += sum(int(tables[r][ok].min()) for _, _, ok, tables in instance.streams)
            if floor > instance.limits[r]:
                return None
        objective = {"LUT": float(weight), "BRAM_18K": 1.0}
        if self.forest is not None:
            _, cheapest = self.forest.minimise(instance, objective)  # exact: the optimum if it fits
            if instance.fits(cheapest):
                return self._original(allowed, cheapest)
            verdict, found, weights = self._lagrangian(instance, objective, optimal, self._positions(allowed, start))
            if verdict == "infeasible":
                return None
            if verdict == "fits":
                return self._original(allowed, found)
            allowed = self._consistent([self._narrowed(a, keep) for a, keep in zip(allowed, found)])
            if allowed is None:  # no fitting choice survives
                return None
            instance = self._instance(allowed, limits)
            if not optimal and self._exceeds(instance, weights):
                return None
        else:
            cheapest = [int(np.argmin(c["LUT"] * weight + c["BRAM_18K"])) for c in instance.costs]
            if instance.fits(cheapest) and (not optimal or self._separable_optimum(instance, cheapest, weight)):
                return self._original(allowed, cheapest)
        picks = self._milp(instance, weight, optimal, self._positions(allowed, start))
        return None if picks is None else self._original(allowed, picks)

    def _lagrangian(self, instance: ThresholdInstance, objective: dict, optimal: bool, start: list | None) -> tuple:
        """Lagrangian answers on the stream forest: ("infeasible", None); ("fits", positions of a
        witness) for a feasibility question, of the optimum for an optimality one (``start``,
        improved, meets the Lagrangian bound); or ("open", per group the candidates that may be in
        the answer: those of some fitting choice, or of one no worse than ``start``)."""
        everything = [np.ones(len(c["LUT"]), dtype=bool) for c in instance.costs]
        if not optimal:
            verdict, witness, weights = lagrangian(self.forest, instance)
            if verdict is not None:
                return verdict, witness, weights
            if weights is None:
                return "open", everything, None
            return "open", candidates_within(self.forest, instance, weights,
                                             sum(weights[r] * instance.limits[r] for r in costmodel.RESOURCES)), weights
        if start is None or not instance.fits(start):
            return "open", everything, None
        start = improve(instance, start, objective)
        total = instance.totals(start)
        incumbent = sum(objective[r] * total[r] for r in objective)
        normalised = {r: w / incumbent for r, w in objective.items()}
        weights, bound = dual(self.forest, instance, normalised, 1.0)
        if bound * incumbent > incumbent - 1 + 1e-2:  # objectives are integers: none is cheaper
            return "fits", start, weights
        relaxed = sum((weights[r] - normalised.get(r, 0.0)) * instance.limits[r] for r in costmodel.RESOURCES)
        return "open", candidates_within(self.forest, instance, weights, 1.0 + relaxed), weights

    def _exceeds(self, instance: ThresholdInstance, weights: dict | None) -> bool:
        """Whether a bound exact in one small-budget resource (BRAM18, DSP) and Lagrangian in the
        others proves that no choice fits."""
        scale = {r: 1.0 / max(instance.limits[r], 1) for r in costmodel.RESOURCES}
        for resource in ("BRAM_18K", "DSP"):
            if instance.limits[resource] > self.RESOURCE_SPAN or not any(c[resource].any() for c in instance.costs):
                continue
            for w in filter(None, (weights, {"LUT": scale["LUT"]})):
                others = {r: v for r, v in w.items() if r != resource}
                budget = sum(v * instance.limits[r] for r, v in others.items())
                if resource_bound(self.forest, instance, others, resource) > budget + 1e-9 * (abs(budget) + 1):
                    return True
        return False

    @staticmethod
    def _narrowed(allowed: np.ndarray, keep: np.ndarray) -> np.ndarray:
        """``allowed`` narrowed to ``keep`` (a mask over its allowed candidates)."""
        out = np.zeros_like(allowed)
        out[np.flatnonzero(allowed)[keep]] = True
        return out

    def _instance(self, allowed: list, limits: dict) -> ThresholdInstance:
        costs = [{k: v[a] for k, v in c.items()} for c, a in zip(self.cost, allowed)]
        streams = []  # classes renumbered to those the allowed candidates use
        for e, (k, l), ok in zip(self.edges, self.ends, self.pair_ok):
            k, l = k[allowed[e.producer_group]], l[allowed[e.consumer_group]]
            rows, k = np.unique(k, return_inverse=True)
            cols, l = np.unique(l, return_inverse=True)
            streams.append((k.reshape(-1), l.reshape(-1), ok[np.ix_(rows, cols)],
                            {r: e.tables[r][np.ix_(rows, cols)] for r in costmodel.RESOURCES}))
        ends = [(e.producer_group, e.consumer_group) for e in self.edges]
        return ThresholdInstance(costs, ends, streams, {r: limits[r] - self.constant[r] for r in costmodel.RESOURCES})

    @staticmethod
    def _separable_optimum(instance: ThresholdInstance, picks: list, weight: int) -> bool:
        """Whether ``picks`` meets the sum of per-group and per-stream objective minima."""
        def objective(costs):
            return costs["LUT"] * weight + costs["BRAM_18K"]

        bound = sum(int(objective(c).min()) for c in instance.costs)
        bound += sum(int(objective(t)[ok].min()) for _, _, ok, t in instance.streams)
        total = instance.totals(picks)
        return total is not None and total["LUT"] * weight + total["BRAM_18K"] == bound

    def _original(self, allowed: list, picks: list) -> list:
        return [int(idx[np.flatnonzero(a)[p]]) for idx, a, p in zip(self.index, allowed, picks)]

    def _positions(self, allowed: list, picks: list | None) -> list | None:
        """``picks`` (original indices) as positions among the allowed candidates, if all allowed."""
        if picks is None:
            return None
        out = []
        for idx, a, pick in zip(self.index, allowed, picks):
            where = np.flatnonzero(idx[a] == pick)
            if len(where) == 0:
                return None
            out.append(int(where[0]))
        return out

    def _milp(self, instance: ThresholdInstance, weight: int, optimal: bool, start: list | None) -> list | None:
        self.solves += 1
        model = mip.Model(sense=mip.MINIMIZE, solver_name=mip.CBC)
        model.verbose = 0
        model.max_mip_gap = 0.0
        model.max_mip_gap_abs = 0.5
        if not optimal:
            model.max_solutions = 1  # stop at the first fitting choice; infeasibility is still proven
            model.cuts = 0  # measured: CBC proves these knapsacks infeasible faster without cut rounds
        x = [[model.add_var(var_type=mip.BINARY) for _ in range(len(c["LUT"]))] for c in instance.costs]
        for xs in x:
            model += mip.xsum(xs) == 1
        terms = {r: [(int(c[r][i]), v) for c, xs in zip(instance.costs, x) for i, v in enumerate(xs) if c[r][i]]
                 for r in costmodel.RESOURCES}
        objective = [(int(c["LUT"][i] * weight + c["BRAM_18K"][i]), v)
                     for c, xs in zip(instance.costs, x) for i, v in enumerate(xs)]
        incumbent = [(xs[i], 1.0) for xs, i in zip(x, start)] if start is not None else []
        for (p, c), (k, l, ok, tables) in zip(instance.ends, instance.streams):
            xp, xc = x[p], x[c]
            z = {(a, b): model.add_var(lb=0.0) for a, b in zip(*np.nonzero(ok))}
            for a in range(ok.shape[0]):
                model += mip.xsum(v for (row, _), v in z.items() if row == a) == mip.xsum(
                    xp[i] for i in np.flatnonzero(k == a))
            for b in range(ok.shape[1]):
                model += mip.xsum(v for (_, col), v in z.items() if col == b) == mip.xsum(
                    xc[j] for j in np.flatnonzero(l == b))
            for (a, b), v in z.items():
                for r in costmodel.RESOURCES:
                    if tables[r][a, b]:
                        terms[r].append((int(tables[r][a, b]), v))
                objective.append((int(tables["LUT"][a, b] * weight + tables["BRAM_18K"][a, b]), v))
            if start is not None:
                incumbent.append((z[(k[start[p]], l[start[c]])], 1.0))
        for r in costmodel.RESOURCES:
            if terms[r]:
                model += mip.xsum(c * v for c, v in terms[r]) <= instance.limits[r]
        model.objective = mip.xsum(c * v for c, v in objective)
        if incumbent:
            model.start = incumbent
        status = model.optimize()
        if status in (mip.OptimizationStatus.INFEASIBLE, mip.OptimizationStatus.INT_INFEASIBLE):
            return None
        if status != mip.OptimizationStatus.OPTIMAL and (optimal or status != mip.OptimizationStatus.FEASIBLE):
            raise RuntimeError(f"CBC ended with {status} on a folding knapsack")
        return [int(np.argmax([v.x for v in xs])) for xs in x]

    def floor(self, resource: str) -> int:
        """The least ``resource`` any folding needs (per-group and per-stream minima, shell)."""
        groups = sum(int(c[resource].min()) for c in self.cost)
        streams = sum(int(e.tables[resource][ok].min()) for e, ok in zip(self.edges, self.pair_ok))
        return groups + streams + self.constant[resource]


def optimise(space: "list[Group] | Design", budget: Budget) -> Folding:
    """The fastest folding within ``budget`` (exact under the cost model; for a ``Design`` the
    whole design's totals), or a UserError naming the smallest budget that fits."""
    groups, insertions = unpack(space)
    solver = _ThresholdSolver(groups, budget, insertions)
    limits = {r: getattr(budget, r) for r in costmodel.RESOURCES}
    values = solver.thresholds()
    lo, hi, witness = 0, len(values), None  # the fastest fitting bottleneck is values[hi], hi < len
    while lo < hi:
        mid = (lo + hi) // 2
        found = solver.solve(values[mid], limits, optimal=False)
        if found is None:
            lo = mid + 1
        else:  # the witness may be faster than the threshold asked
            witness, hi = found, int(np.searchsorted(values, _bottleneck(groups, found)))
    if witness is None:
        raise UserError(_infeasible_message(solver, budget))
    return Folding("exact", groups, solver.solve(values[hi], limits, start=witness), insertions)


def _bottleneck(groups: list[Group], choice: list) -> int:
    return max(int(g.costs.cycles[i]) for g, i in zip(groups, choice))


def _fewest_luts(solver: _ThresholdSolver, budget: Budget) -> int | None:
    """The fewest LUTs of any folding within the budget's other limits (None: BRAM/URAM/DSP bound)."""
    unbounded = dict(LUT=10**12, BRAM_18K=budget.BRAM_18K, URAM=budget.URAM, DSP=budget.DSP)
    picks = solver.solve(np.inf, unbounded)
    if picks is None:
        return None
    return Folding("fewest LUTs", solver.groups, picks, solver.insertions).total("LUT")


def smallest_lut_budget(space: "list[Group] | Design", budget: Budget) -> int | None:
    """The smallest LUT limit at which some folding fits ``budget``'s other limits: a folding fits
    a LUT budget exactly when that budget is at least this. None when no LUT budget helps."""
    groups, insertions = unpack(space)
    return _fewest_luts(_ThresholdSolver(groups, budget, insertions), budget)


def _infeasible_message(solver: _ThresholdSolver, budget: Budget) -> str:
    """Name the smallest budget that fits: fewest LUTs within the other limits, or else the BRAM18
    and DSP the network needs at least."""
    scope = "no folding fits" if solver.insertions is None else "no whole design (DWCs, FIFOs, shell) fits"
    luts = _fewest_luts(solver, budget)
    if luts is not None:
        device = budget.LUT / budget.lut_ratio
        return (f"{scope} {budget.describe()}: the smallest fitting budget is {luts:,} LUT "
                f"(ratio {luts / device:.3f}); raise the LUT ratio or choose a larger board")
    if not solver.width_converters and solver.solve(np.inf, dict(LUT=10**12, BRAM_18K=10**12, URAM=10**12,
                                                                   DSP=10**12)) is None:
        return f"{scope} {budget.describe()} without width converters: allow them"
    need = {r: solver.floor(r) for r in ("BRAM_18K", "DSP", "URAM")}
    uram = f", {need['URAM']} URAM (budget {budget.URAM})" if need["URAM"] > budget.URAM else ""
    return (f"{scope} {budget.describe()}: even the leanest folding needs {need['BRAM_18K']} BRAM18, "
            f"{need['DSP']} DSP{uram}; allow distributed-RAM weights or choose a larger board")
