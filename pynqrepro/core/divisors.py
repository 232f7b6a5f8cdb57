"""Divisors: FINN's legal PE/SIMD values (a folding factor divides the dimension it unrolls), the
study's legal SIMD lists, and batch sizes that split a test set evenly."""

import numpy as np


def divisors(n: int) -> np.ndarray:
    """The positive divisors of ``n`` in ascending order (int64)."""
    n = int(n)
    candidates = np.arange(1, n + 1, dtype=np.int64)
    return candidates[n % candidates == 0]
