"""Cheap exact answers to the optimiser's threshold questions, before any MILP.

A threshold question: per group, candidates with their resource costs; per stream between two
groups, a cost table over (producer class, consumer class) with the allowed pairs; resource limits.
When the streams form a forest (CNV and the MLPs are a chain), the minimum of any non-negative
weighted sum of the resources over all choices is exact by leaf elimination (dynamic programming).
That gives two certificates, both checked exactly:

- a witness: a choice whose every resource total is within its limit (it fits);
- a Lagrangian proof of infeasibility: for weights w >= 0, every choice has
  sum_r w_r total_r >= min(...) > sum_r w_r limit_r, so none fits.

Weights follow a subgradient walk from "LUT only" towards the resources that overflow; questions
neither certificate settles go to the MILP.
"""

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from pynqrepro.folding.costmodel import RESOURCES


@dataclass
class Question:
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
    def stacked(self) -> tuple[list, list]:
        """Per group (candidates x resources) and per stream (rows x columns x resources) costs."""
        groups = [np.stack([c[r] for r in RESOURCES], axis=-1).astype(np.float64) for c in self.costs]
        streams = [np.stack([t[r] for r in RESOURCES], axis=-1).astype(np.float64) for _, _, _, t in self.streams]
        return groups, streams


class StreamForest:
    """A leaf-elimination order of the groups' stream graph; ``of`` is None when the graph has a
    cycle (or two streams between one pair of groups), where the exact DP does not apply."""

    def __init__(self, order: list, roots: list):
        self.order = order  # (leaf group, its neighbour, stream index, leaf is the producer)
        self.roots = roots

    @classmethod
    def of(cls, n_groups: int, ends: list) -> "StreamForest | None":
        pairs = [frozenset(e) for e in ends]
        if len(set(pairs)) != len(pairs) or any(len(p) == 1 for p in pairs):
            return None
        incident = {g: set() for g in range(n_groups)}
        for s, (p, c) in enumerate(ends):
            incident[p].add(s)
            incident[c].add(s)
        order, alive = [], set(range(n_groups))
        leaves = [g for g in alive if len(incident[g]) == 1]
        while leaves:
            g = leaves.pop()
            if g not in alive or len(incident[g]) != 1:
                continue
            (s,) = incident[g]
            p, c = ends[s]
            h = c if g == p else p
            order.append((g, h, s, g == p))
            alive.discard(g)
            incident[g].clear()
            incident[h].discard(s)
            if len(incident[h]) == 1:
                leaves.append(h)
        if any(incident[g] for g in alive):
            return None  # a cycle remains
        return cls(order, sorted(alive))

    @staticmethod
    def _weighted(question: Question, weights: dict) -> tuple[list, list]:
        """Per group and per stream (allowed pairs only; inf elsewhere) the weighted cost."""
        vector = np.asarray([weights.get(r, 0.0) for r in RESOURCES])
        groups, streams = question.stacked
        return [g @ vector for g in groups], [np.where(s[2], t @ vector, np.inf)
                                              for s, t in zip(question.streams, streams)]

    def _message(self, question: Question, table: np.ndarray, s: int, source: int, values: np.ndarray):
        """min over ``source``'s candidates of values + stream cost, per class of the other end, and
        the argmin candidate of ``source`` per class of the other end."""
        k, l, _, _ = question.streams[s]
        p, _ = question.ends[s]
        mine, theirs = (k, l) if source == p else (l, k)
        rows = table if source == p else table.T  # rows: the source's classes
        order = np.lexsort((values, mine))  # by class, cheapest first
        ordered = mine[order]
        first = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        classes = ordered[first]
        best = np.full(rows.shape[0], np.inf)
        best[classes] = values[order[first]]
        arg = np.zeros(rows.shape[0], dtype=np.int64)
        arg[classes] = order[first]  # the cheapest candidate of each class of the source
        total = best[:, None] + rows
        return total.min(axis=0), arg[np.argmin(total, axis=0)], theirs

    def minimise(self, question: Question, weights: dict) -> tuple[float, list]:
        """(min over all choices of sum_r weights[r] x total_r, a choice attaining it)."""
        unary, tables = self._weighted(question, weights)
        choice_of = {}
        for g, h, s, _ in self.order:
            message, pick_by_class, theirs = self._message(question, tables[s], s, g, unary[g])
            unary[h] = unary[h] + message[theirs]
            choice_of[g] = (h, theirs, pick_by_class)
        picks = [None] * len(question.costs)
        value = 0.0
        for g in self.roots:
            picks[g] = int(np.argmin(unary[g]))
            value += float(unary[g][picks[g]])
        for g, _, _, _ in reversed(self.order):
            h, theirs, pick_by_class = choice_of[g]
            picks[g] = int(pick_by_class[theirs[picks[h]]])
        return value, picks

    def min_marginals(self, question: Question, weights: dict) -> list:
        """Per group and candidate: the minimum weighted total over all choices containing it."""
        base, tables = self._weighted(question, weights)
        incoming = [dict() for _ in base]  # group -> {neighbour: message over its candidates}
        up = [b.copy() for b in base]
        for g, h, s, _ in self.order:
            message, _, theirs = self._message(question, tables[s], s, g, up[g])
            incoming[h][g] = message[theirs]
            up[h] = up[h] + incoming[h][g]
        for g, h, s, _ in reversed(self.order):
            others = base[h] + sum((m for n, m in incoming[h].items() if n != g), np.zeros(len(base[h])))
            message, _, theirs = self._message(question, tables[s], s, h, others)
            incoming[g][h] = message[theirs]
        return [b + sum(incoming[g].values(), np.zeros(len(b))) for g, b in enumerate(base)]


def _normalised(question: Question) -> dict:
    return {r: 1.0 / max(question.limits[r], 1) for r in RESOURCES}


def _excess(question: Question, total: dict, scale: dict) -> float:
    return sum(max(0, total[r] - question.limits[r]) * scale[r] for r in RESOURCES)


def _moves(question: Question, picks: list, g: int) -> tuple[np.ndarray, dict]:
    """For every candidate of group g: whether switching to it keeps every stream pair allowed,
    and the change of each resource total."""
    costs = question.costs[g]
    n = len(costs["LUT"])
    change = {r: costs[r].astype(np.int64) - int(costs[r][picks[g]]) for r in RESOURCES}
    allowed = np.ones(n, dtype=bool)
    for (p, c), (k, l, ok, tables) in zip(question.ends, question.streams):
        if g not in (p, c):
            continue
        rows = k if g == p else np.full(n, k[picks[p]])
        cols = l if g == c else np.full(n, l[picks[c]])
        allowed &= ok[rows, cols]
        here = k[picks[p]], l[picks[c]]
        for r in RESOURCES:
            change[r] = change[r] + tables[r][rows, cols] - int(tables[r][here])
    return allowed, change


def repair(question: Question, picks: list, scale: dict, moves: int = 60) -> list | None:
    """Single-group moves from ``picks`` that most reduce the normalised overflow (ties: least
    added cost) until it fits: a witness, or None when stuck."""
    picks = list(picks)
    for _ in range(moves):
        total = question.totals(picks)
        if total is None:
            return None
        excess = _excess(question, total, scale)
        if excess == 0:
            return picks
        best = None
        for g in range(len(question.costs)):
            allowed, change = _moves(question, picks, g)
            after = sum(np.maximum(0, total[r] + change[r] - question.limits[r]) * scale[r] for r in RESOURCES)
            added = sum(change[r] * scale[r] for r in RESOURCES)
            score = np.where(allowed, after, np.inf)
            j = int(np.lexsort((added, score))[0])
            if score[j] < excess and (best is None or (score[j], added[j]) < best[:2]):
                best = (score[j], added[j], g, j)
        if best is None:
            return None
        picks[best[2]] = best[3]
    return picks if question.fits(picks) else None


def improve(question: Question, picks: list, objective: dict, moves: int = 60) -> list:
    """Single-group moves from fitting ``picks`` that most lower the objective and keep it fitting."""
    picks = list(picks)
    for _ in range(moves):
        total = question.totals(picks)
        best = None
        for g in range(len(question.costs)):
            allowed, change = _moves(question, picks, g)
            for r in RESOURCES:
                allowed &= total[r] + change[r] <= question.limits[r]
            gain = np.where(allowed, sum(objective.get(r, 0.0) * change[r] for r in RESOURCES), np.inf)
            j = int(np.argmin(gain))
            if gain[j] < 0 and (best is None or gain[j] < best[0]):
                best = (gain[j], g, j)
        if best is None:
            return picks
        picks[best[1]] = best[2]
    return picks


def lagrangian(forest: StreamForest, question: Question, iterations: int = 40) -> tuple[str | None, list | None, dict]:
    """Feasibility: ("fits", witness, weights), ("infeasible", None, weights) or (None, None, the
    weights of the best bound) when undecided; a walk that ends near a fit is repaired to one."""
    scale = _normalised(question)
    multiplier = {r: (1.0 if r == "LUT" else 1e-3) for r in RESOURCES}
    best, best_weights = -np.inf, None
    closest, closest_excess = None, np.inf
    step = 1.0
    for _ in range(iterations):
        weights = {r: multiplier[r] * scale[r] for r in RESOURCES}
        value, picks = forest.minimise(question, weights)
        if not np.isfinite(value):
            return "infeasible", None, weights  # no allowed pair on some stream
        budget = sum(weights[r] * question.limits[r] for r in RESOURCES)
        margin = (value - budget) / sum(multiplier.values())  # the multipliers are scale-free
        if margin > 1e-9:
            return "infeasible", None, weights
        if margin > best:
            best, best_weights = margin, weights
        total = question.totals(picks)
        excess = _excess(question, total, scale)
        if excess == 0:
            return "fits", picks, weights
        if excess < closest_excess:
            closest, closest_excess = picks, excess
        for r in RESOURCES:
            multiplier[r] = max(0.0, multiplier[r] + step * (total[r] - question.limits[r]) * scale[r])
        step *= 0.9
    for start in (closest, forest.minimise(question, {"LUT": 1.0})[1]):
        repaired = repair(question, start, scale)
        if repaired is not None:
            return "fits", repaired, best_weights
    return None, None, best_weights


def dual(forest: StreamForest, question: Question, objective: dict, incumbent: float,
         iterations: int = 30) -> tuple[dict, float]:
    """(weights objective + lambda, lambda >= 0 on the resources, of the best Lagrangian lower
    bound found on the cheapest fitting choice's objective; that bound), by Polyak steps towards
    ``incumbent``."""
    scale = _normalised(question)
    multiplier = {r: 0.0 for r in RESOURCES}
    best, best_weights = -np.inf, dict(objective)
    theta = 1.0
    for _ in range(iterations):
        weights = {r: objective.get(r, 0.0) + multiplier[r] * scale[r] for r in RESOURCES}
        value, picks = forest.minimise(question, weights)
        bound = value - sum(multiplier[r] * scale[r] * question.limits[r] for r in RESOURCES)
        if bound > best:
            best, best_weights = bound, weights
        total = question.totals(picks)
        gradient = {r: (total[r] - question.limits[r]) * scale[r] for r in RESOURCES}
        norm = sum(g * g for g in gradient.values())
        if norm == 0 or bound >= incumbent:
            break
        for r in RESOURCES:
            multiplier[r] = max(0.0, multiplier[r] + theta * (incumbent - bound) / norm * gradient[r])
        theta *= 0.9
    return best_weights, best


def survivors(forest: StreamForest, question: Question, weights: dict, cutoff: float) -> list:
    """Per group, the candidates some choice with weighted total <= ``cutoff`` contains."""
    slack = 1e-9 * (abs(cutoff) + 1.0)
    return [m <= cutoff + slack for m in forest.min_marginals(question, weights)]
