"""Cheap exact answers for the optimiser's threshold instances, before any MILP: a min-sum dynamic
program over the stream forest and the Lagrangian bounds it gives.

A threshold instance (``ThresholdInstance``): per group, candidates with their resource costs; per
stream between two groups, a cost table over (producer class, consumer class) with the allowed pairs; resource limits.
When the streams form a forest (CNV and the MLPs are a chain), the minimum of any non-negative
weighted sum of the resources over all choices is exact by leaf elimination (dynamic programming).
That gives two certificates, both checked exactly:

- a witness: a choice whose every resource total is within its limit (it fits);
- a Lagrangian proof of infeasibility: for weights w >= 0, every choice has
  sum_r w_r total_r >= min(...) > sum_r w_r limit_r, so none fits.

Weights follow a subgradient walk from "LUT only" towards the resources that overflow; instances
neither certificate settles go to the MILP.
"""

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from pynqrepro.folding.costmodel import RESOURCES


@dataclass
class ThresholdInstance:
    """Allowed candidates of every group under a threshold, and the streams between groups."""

    costs: list  # per group: {resource: per allowed candidate}
    ends: list  # per stream: (producer group, consumer group)
    streams: list  # per stream: (producer class per candidate, consumer class per candidate, allowed pairs, tables)
    limits: dict

    def totals(self, picks: list) -> dict | None:
        """Every resource's total at ``picks``; None if a stream's pair is not allowed."""
        total = {r: sum(int(c[r][i]) for c, i in zip(self.costs, picks)) for r in RESOURCES}
        for (p, c), (k, l, ok, tables) in zip(self.ends, self.streams):
            at = k[picks[p]], l[picks[c]]
            if not ok[at]:
                return None
            for r in RESOURCES:
                total[r] += int(tables[r][at])
        return total

    def fits(self, picks: list) -> bool:
        total = self.totals(picks)
        return total is not None and all(total[r] <= self.limits[r] for r in RESOURCES)

    @cached_property
    def members(self) -> list:
        """Per stream, (producer candidates x classes, consumer candidates x classes) membership."""
        return [(k[:, None] == np.arange(ok.shape[0])[None, :], l[:, None] == np.arange(ok.shape[1])[None, :])
                for k, l, ok, _ in self.streams]

    @cached_property
    def stacked(self) -> tuple[list, list]:
        """Per group (candidates x resources) and per stream (rows x columns x resources) costs."""
        groups = [np.stack([c[r] for r in RESOURCES], axis=-1).astype(np.float64) for c in self.costs]
        streams = [np.stack([t[r] for r in RESOURCES], axis=-1).astype(np.float64) for _, _, _, t in self.streams]
        return groups, streams


class StreamForest:
    """The groups' stream graph as rooted trees, children before parents (a chain is rooted at one
    end, so every group hears from one child at most); ``of`` is None when the graph has a cycle
    (or two streams between one pair of groups), where the exact DP does not apply."""

    def __init__(self, order: list, roots: list):
        self.order = order  # (group, its parent, stream index, group is the producer), leaves first
        self.roots = roots
        self.root_of = {r: r for r in roots}
        for g, h, _, _ in reversed(order):  # parents before children
            self.root_of[g] = self.root_of[h]

    @classmethod
    def of(cls, n_groups: int, ends: list) -> "StreamForest | None":
        pairs = [frozenset(e) for e in ends]
        if len(set(pairs)) != len(pairs) or any(len(p) == 1 for p in pairs):
            return None
        incident = {g: [] for g in range(n_groups)}
        for s, (p, c) in enumerate(ends):
            incident[p].append(s)
            incident[c].append(s)
        seen, order, roots = set(), [], []
        for root in sorted(range(n_groups), key=lambda g: (len(incident[g]) > 1, g)):  # leaves first
            if root in seen:
                continue
            roots.append(root)
            seen.add(root)
            frontier = [root]
            while frontier:
                nxt = []
                for h in frontier:
                    for s in incident[h]:
                        p, c = ends[s]
                        g = c if h == p else p
                        if g in seen:
                            if (g, h, s, g == p) not in order and (h, g, s, h == p) not in order:
                                return None  # a cycle
                            continue
                        seen.add(g)
                        order.append((g, h, s, g == p))
                        nxt.append(g)
                frontier = nxt
        return cls(order[::-1], roots)

    @staticmethod
    def _weighted(instance: ThresholdInstance, weights: dict) -> tuple[list, list]:
        """Per group and per stream (allowed pairs only; inf elsewhere) the weighted cost."""
        vector = np.asarray([weights.get(r, 0.0) for r in RESOURCES])
        groups, streams = instance.stacked
        return [g @ vector for g in groups], [np.where(s[2], t @ vector, np.inf)
                                              for s, t in zip(instance.streams, streams)]

    def _message(self, instance: ThresholdInstance, table: np.ndarray, s: int, source: int, values: np.ndarray):
        """min over ``source``'s candidates of values + stream cost, per class of the other end, and
        the argmin candidate of ``source`` per class of the other end."""
        k, l, _, _ = instance.streams[s]
        p, _ = instance.ends[s]
        producing = source == p
        other_class = l if producing else k
        rows = table if producing else table.T  # rows: the source's classes
        members = instance.members[s][0 if producing else 1]  # candidates x classes of the source
        by_class = np.where(members, values[:, None], np.inf)
        arg = np.argmin(by_class, axis=0)  # the cheapest candidate of each class of the source
        best = by_class[arg, np.arange(len(arg))]
        total = best[:, None] + rows
        return total.min(axis=0), arg[np.argmin(total, axis=0)], other_class

    def minimise(self, instance: ThresholdInstance, weights: dict) -> tuple[float, list]:
        """(min over all choices of sum_r weights[r] x total_r, a choice attaining it)."""
        group_costs, tables = self._weighted(instance, weights)
        choice_of = {}
        for g, h, s, _ in self.order:
            message, pick_by_class, other_class = self._message(instance, tables[s], s, g, group_costs[g])
            group_costs[h] = group_costs[h] + message[other_class]
            choice_of[g] = (h, other_class, pick_by_class)
        picks = [None] * len(instance.costs)
        value = 0.0
        for g in self.roots:
            picks[g] = int(np.argmin(group_costs[g]))
            value += float(group_costs[g][picks[g]])
        for g, _, _, _ in reversed(self.order):
            h, other_class, pick_by_class = choice_of[g]
            picks[g] = int(pick_by_class[other_class[picks[h]]])
        return value, picks

    def min_marginals(self, instance: ThresholdInstance, weights: dict) -> list:
        """Per group and candidate: the minimum weighted total over all choices containing it."""
        base, tables = self._weighted(instance, weights)
        incoming = [dict() for _ in base]  # group -> {neighbour: message over its candidates}
        up = [b.copy() for b in base]
        for g, h, s, _ in self.order:
            message, _, other_class = self._message(instance, tables[s], s, g, up[g])
            incoming[h][g] = message[other_class]
            up[h] = up[h] + incoming[h][g]
        for g, h, s, _ in reversed(self.order):
            others = base[h] + sum((m for n, m in incoming[h].items() if n != g), np.zeros(len(base[h])))
            message, _, other_class = self._message(instance, tables[s], s, h, others)
            incoming[g][h] = message[other_class]
        best = {r: float(up[r].min()) for r in self.roots}  # each tree's own minimum
        if not all(np.isfinite(list(best.values()))):
            return [np.full(len(b), np.inf) for b in base]
        rest = sum(best.values())
        return [b + sum(incoming[g].values(), np.zeros(len(b))) + rest - best[self.root_of[g]]
                for g, b in enumerate(base)]


def _shifted(values: np.ndarray, by: np.ndarray) -> np.ndarray:
    """Row i of ``values`` moved right by ``by[i]`` (budget used), inf where it would start below 0."""
    index = np.arange(values.shape[-1])[None, :] - by[:, None]
    return np.where(index >= 0, np.take_along_axis(values, np.clip(index, 0, None), axis=-1), np.inf)


def _min_plus(f: np.ndarray, g: np.ndarray) -> np.ndarray:
    """h[b] = min over a of f[a] + g[b - a] (both "within budget b" functions)."""
    sums = f[:, None] + g[None, :]
    index = np.add.outer(np.arange(len(f)), np.arange(len(g)))
    keep = index < len(f)
    h = np.full(len(f), np.inf)
    np.minimum.at(h, index[keep], sums[keep])
    return h


def resource_bound(forest: StreamForest, instance: ThresholdInstance, weights: dict, resource: str) -> float:
    """min over all choices whose ``resource`` total is within its limit of the other resources'
    weighted total: exact in ``resource`` (a DP over its integer budget), so stronger than any
    Lagrangian bound on it. inf if no choice keeps ``resource`` within its limit."""
    budget = int(instance.limits[resource])
    if budget < 0:
        return np.inf
    span = budget + 1
    others = {r: w for r, w in weights.items() if r != resource}
    group_costs, tables = forest._weighted(instance, others)
    used = [c[resource].astype(np.int64) for c in instance.costs]
    within = [np.where(np.arange(span)[None, :] >= u[:, None], v[:, None], np.inf) for u, v in zip(used, group_costs)]
    stepped = [True] * len(group_costs)  # still "own cost once own use fits": a merge is a shift
    for g, h, s, g_produces in forest.order:
        k, l, _, t = instance.streams[s]
        own_class, other_class = (k, l) if g_produces else (l, k)
        cost, use = (tables[s], t[resource]) if g_produces else (tables[s].T, t[resource].T)
        best = np.full((cost.shape[0], span), np.inf)
        np.minimum.at(best, own_class, within[g])
        message = np.full((cost.shape[1], span), np.inf)
        for a in range(cost.shape[0]):
            moved = _shifted(np.repeat(best[a][None, :], cost.shape[1], axis=0), use[a]) + cost[a][:, None]
            message = np.minimum(message, moved)
        if stepped[h]:
            within[h] = _shifted(message[other_class], used[h]) + group_costs[h][:, None]
            stepped[h] = False
        else:
            within[h] = np.stack([_min_plus(row, message[c]) for row, c in zip(within[h], other_class)])
    total = None
    for root in forest.roots:
        best = within[root].min(axis=0)
        total = best if total is None else _min_plus(total, best)
    return float(total[budget])


def _normalised(instance: ThresholdInstance) -> dict:
    return {r: 1.0 / max(instance.limits[r], 1) for r in RESOURCES}


def _excess(instance: ThresholdInstance, total: dict, scale: dict) -> float:
    return sum(max(0, total[r] - instance.limits[r]) * scale[r] for r in RESOURCES)


def _moves(instance: ThresholdInstance, picks: list, g: int) -> tuple[np.ndarray, dict]:
    """For every candidate of group g: whether switching to it keeps every stream pair allowed,
    and the change of each resource total."""
    costs = instance.costs[g]
    n = len(costs["LUT"])
    change = {r: costs[r].astype(np.int64) - int(costs[r][picks[g]]) for r in RESOURCES}
    allowed = np.ones(n, dtype=bool)
    for (p, c), (k, l, ok, tables) in zip(instance.ends, instance.streams):
        if g not in (p, c):
            continue
        rows = k if g == p else np.full(n, k[picks[p]])
        cols = l if g == c else np.full(n, l[picks[c]])
        allowed &= ok[rows, cols]
        here = k[picks[p]], l[picks[c]]
        for r in RESOURCES:
            change[r] = change[r] + tables[r][rows, cols] - int(tables[r][here])
    return allowed, change


def repair(instance: ThresholdInstance, picks: list, scale: dict, moves: int = 60) -> list | None:
    """Single-group moves from ``picks`` that most reduce the normalised overflow (ties: least
    added cost) until it fits: a witness, or None when stuck."""
    picks = list(picks)
    for _ in range(moves):
        total = instance.totals(picks)
        if total is None:
            return None
        excess = _excess(instance, total, scale)
        if excess == 0:
            return picks
        best = None
        for g in range(len(instance.costs)):
            allowed, change = _moves(instance, picks, g)
            after = sum(np.maximum(0, total[r] + change[r] - instance.limits[r]) * scale[r] for r in RESOURCES)
            added = sum(change[r] * scale[r] for r in RESOURCES)
            score = np.where(allowed, after, np.inf)
            j = int(np.lexsort((added, score))[0])
            if score[j] < excess and (best is None or (score[j], added[j]) < best[:2]):
                best = (score[j], added[j], g, j)
        if best is None:
            return None
        picks[best[2]] = best[3]
    return picks if instance.fits(picks) else None


def improve(instance: ThresholdInstance, picks: list, objective: dict, moves: int = 60) -> list:
    """Single-group moves from fitting ``picks`` that most lower the objective and keep it fitting."""
    picks = list(picks)
    for _ in range(moves):
        total = instance.totals(picks)
        best = None
        for g in range(len(instance.costs)):
            allowed, change = _moves(instance, picks, g)
            for r in RESOURCES:
                allowed &= total[r] + change[r] <= instance.limits[r]
            gain = np.where(allowed, sum(objective.get(r, 0.0) * change[r] for r in RESOURCES), np.inf)
            j = int(np.argmin(gain))
            if gain[j] < 0 and (best is None or gain[j] < best[0]):
                best = (gain[j], g, j)
        if best is None:
            return picks
        picks[best[1]] = best[2]
    return picks


def lagrangian(forest: StreamForest, instance: ThresholdInstance, iterations: int = 40) -> tuple[str | None, list | None, dict]:
    """Feasibility: ("fits", witness, weights), ("infeasible", None, weights) or (None, None, the
    weights of the best bound) when undecided; a walk that ends near a fit is repaired to one."""
    scale = _normalised(instance)
    multiplier = {r: (1.0 if r == "LUT" else 1e-3) for r in RESOURCES}
    best, best_weights = -np.inf, None
    closest, closest_excess = None, np.inf
    step = 1.0
    for _ in range(iterations):
        weights = {r: multiplier[r] * scale[r] for r in RESOURCES}
        value, picks = forest.minimise(instance, weights)
        if not np.isfinite(value):
            return "infeasible", None, weights  # no allowed pair on some stream
        budget = sum(weights[r] * instance.limits[r] for r in RESOURCES)
        margin = (value - budget) / sum(multiplier.values())  # the multipliers are scale-free
        if margin > 1e-9:
            return "infeasible", None, weights
        if margin > best:
            best, best_weights = margin, weights
        total = instance.totals(picks)
        excess = _excess(instance, total, scale)
        if excess == 0:
            return "fits", picks, weights
        if excess < closest_excess:
            closest, closest_excess = picks, excess
        for r in RESOURCES:
            multiplier[r] = max(0.0, multiplier[r] + step * (total[r] - instance.limits[r]) * scale[r])
        step *= 0.9
    for start in (closest, forest.minimise(instance, {"LUT": 1.0})[1]):
        repaired = repair(instance, start, scale)
        if repaired is not None:
            return "fits", repaired, best_weights
    return None, None, best_weights


def dual(forest: StreamForest, instance: ThresholdInstance, objective: dict, incumbent: float,
         iterations: int = 30) -> tuple[dict, float]:
    """(weights objective + lambda, lambda >= 0 on the resources, of the best Lagrangian lower
    bound found on the cheapest fitting choice's objective; that bound), by Polyak steps towards
    ``incumbent``."""
    scale = _normalised(instance)
    multiplier = {r: 0.0 for r in RESOURCES}
    best, best_weights = -np.inf, dict(objective)
    theta = 1.0
    for _ in range(iterations):
        weights = {r: objective.get(r, 0.0) + multiplier[r] * scale[r] for r in RESOURCES}
        value, picks = forest.minimise(instance, weights)
        bound = value - sum(multiplier[r] * scale[r] * instance.limits[r] for r in RESOURCES)
        if bound > best:
            best, best_weights = bound, weights
        total = instance.totals(picks)
        gradient = {r: (total[r] - instance.limits[r]) * scale[r] for r in RESOURCES}
        norm = sum(g * g for g in gradient.values())
        if norm == 0 or bound >= incumbent:
            break
        for r in RESOURCES:
            multiplier[r] = max(0.0, multiplier[r] + theta * (incumbent - bound) / norm * gradient[r])
        theta *= 0.9
    return best_weights, best


def candidates_within(forest: StreamForest, instance: ThresholdInstance, weights: dict, cutoff: float) -> list:
    """Per group, the candidates some choice with weighted total <= ``cutoff`` contains."""
    slack = 1e-9 * (abs(cutoff) + 1.0)
    return [m <= cutoff + slack for m in forest.min_marginals(instance, weights)]
