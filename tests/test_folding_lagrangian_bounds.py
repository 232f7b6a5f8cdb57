"""The optimiser's certificates are exact: on random stream trees (chains and branching ones) the
forest DP's minimum, its min-marginals and the resource-exact bound equal brute force, and the
Lagrangian/repair answers are never wrong."""

import itertools

import numpy as np
import pytest

from pynqrepro.folding import costmodel
from pynqrepro.folding.lagrangian_bounds import ThresholdInstance, StreamForest, lagrangian, resource_bound


def random_threshold_instance(rng, n_groups: int, allow_all: bool) -> ThresholdInstance:
    """Groups of 1-4 candidates on a random forest of streams (most groups hang off an earlier one,
    either direction), 2-3 classes per stream end, some pairs forbidden unless ``allow_all``."""
    sizes = rng.integers(1, 5, n_groups)
    costs = [{"LUT": rng.integers(0, 50, n), "BRAM_18K": rng.integers(0, 6, n), "URAM": np.zeros(n, dtype=np.int64),
              "DSP": rng.integers(0, 3, n)} for n in sizes]
    ends, streams = [], []
    for g in range(1, n_groups):
        if rng.random() < 0.25:
            continue  # a forest of several trees, or isolated groups
        h = int(rng.integers(0, g))
        p, c = (h, g) if rng.random() < 0.5 else (g, h)
        rows, cols = int(rng.integers(2, 4)), int(rng.integers(2, 4))
        k = rng.integers(0, rows, sizes[p])
        l = rng.integers(0, cols, sizes[c])
        ok = np.ones((rows, cols), dtype=bool) if allow_all else rng.random((rows, cols)) < 0.7
        tables = {"LUT": rng.integers(0, 20, (rows, cols)), "BRAM_18K": rng.integers(0, 3, (rows, cols)),
                  "URAM": np.zeros((rows, cols), dtype=np.int64), "DSP": rng.integers(0, 2, (rows, cols))}
        ends.append((p, c))
        streams.append((k, l, ok, tables))
    limits = {"LUT": int(rng.integers(40, 200)), "BRAM_18K": int(rng.integers(2, 15)), "URAM": 0,
              "DSP": int(rng.integers(1, 8))}
    return ThresholdInstance(costs, ends, streams, limits)


def every_choice(instance: ThresholdInstance):
    for picks in itertools.product(*(range(len(c["LUT"])) for c in instance.costs)):
        total = instance.totals(list(picks))
        if total is not None:
            yield list(picks), total


@pytest.mark.parametrize("allow_all", [True, False])
def test_forest_dp_and_bounds_equal_brute_force(allow_all):
    rng = np.random.default_rng(int(allow_all))
    weights = {"LUT": 1.0, "BRAM_18K": 3.0, "DSP": 7.0}
    for _ in range(30):
        instance = random_threshold_instance(rng, int(rng.integers(2, 7)), allow_all)
        forest = StreamForest.of(len(instance.costs), instance.ends)
        assert forest is not None
        choices = list(every_choice(instance))
        if not choices:
            continue
        value, picks = forest.minimise(instance, weights)
        brute = min(sum(w * t[r] for r, w in weights.items()) for _, t in choices)
        assert value == pytest.approx(brute)
        assert sum(w * instance.totals(picks)[r] for r, w in weights.items()) == pytest.approx(brute)
        marginals = forest.min_marginals(instance, weights)
        for g, per_candidate in enumerate(marginals):
            for i, m in enumerate(per_candidate):
                containing = [sum(w * t[r] for r, w in weights.items()) for p, t in choices if p[g] == i]
                assert m == pytest.approx(min(containing) if containing else np.inf)
        for resource in ("BRAM_18K", "DSP"):
            others = {r: w for r, w in weights.items() if r != resource}
            within = [sum(w * t[r] for r, w in others.items()) for _, t in choices
                      if t[resource] <= instance.limits[resource]]
            bound = resource_bound(forest, instance, others, resource)
            assert bound == pytest.approx(min(within) if within else np.inf)
        verdict, witness, _ = lagrangian(forest, instance)
        fits = [p for p, t in choices if all(t[r] <= instance.limits[r] for r in costmodel.RESOURCES)]
        if verdict == "fits":
            assert instance.fits(witness)
        elif verdict == "infeasible":
            assert not fits


def test_cycles_and_parallel_streams_have_no_forest():
    assert StreamForest.of(3, [(0, 1), (1, 2), (2, 0)]) is None
    assert StreamForest.of(2, [(0, 1), (1, 0)]) is None
    forest = StreamForest.of(4, [(0, 1), (1, 2)])
    assert forest is not None and set(forest.roots) >= {3}
