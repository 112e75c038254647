"""The memory guard: what it admits fits in the budget; what it refuses is refused early."""

import tracemalloc
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from skconvex import (
    ConvexGatedReLUClassifier,
    ConvexGatedReLURegressor,
    MemoryBudgetError,
    config_context,
)

BUDGET = 24 * 2**20


def _fits(Est, X, y, n_arrangements):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            # block_size=None: the whole-array plan, which the guard refuses
            # (block_size="auto" would fall back to row blocks instead; see
            # tests/test_row_blocks.py).
            Est(n_arrangements=n_arrangements, max_iter=3, random_state=0, block_size=None).fit(X, y)
        except MemoryBudgetError:
            return False
    return True


@pytest.mark.parametrize("Est, n_classes", [(ConvexGatedReLURegressor, None), (ConvexGatedReLUClassifier, 4)])
def test_largest_admitted_problem_fits_and_next_is_refused_early(Est, n_classes):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3000, 8))
    y = rng.standard_normal(3000) if n_classes is None else rng.integers(0, n_classes, 3000)
    with config_context(max_memory=BUDGET):
        lo, hi = 1, 3000
        while lo < hi:  # the largest n_arrangements the guard admits
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if _fits(Est, X, y, mid) else (lo, mid - 1)
        assert 10 < lo < 3000
        tracemalloc.start()
        assert _fits(Est, X, y, lo)
        admitted_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        tracemalloc.start()
        with pytest.raises(MemoryBudgetError, match="n_arrangements"):
            Est(n_arrangements=lo + 1, max_iter=3, random_state=0, block_size=None).fit(X, y)
        refused_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    # it fits: the plan's real peak stays within the budget
    assert admitted_peak <= BUDGET
    # refused before the large allocations: less than a tenth of the budget used
    assert refused_peak < BUDGET / 10
