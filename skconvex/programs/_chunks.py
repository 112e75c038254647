"""Row chunks and seeds shared by the problem layer and the arrangement samplers.

Kept free of scikit-learn so that :mod:`skconvex.programs` imports numpy,
scipy and :mod:`skconvex._config` only.
"""

from numbers import Integral

import numpy as np

__all__ = ["row_batches", "seed_sequence", "unique_columns"]


def row_batches(n, batch_size):
    """Consecutive slices of ``range(n)`` of at most ``batch_size`` rows."""
    batch_size = max(int(batch_size), 1)
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def seed_sequence(random_state):
    """A :class:`numpy.random.SeedSequence` from a scikit-learn style ``random_state``.

    ``None`` draws fresh entropy, an integer seeds it, and a
    :class:`numpy.random.RandomState` hands over four of its draws, so that a
    generator passed by the user advances as scikit-learn's
    ``check_random_state`` would make it.
    """
    if random_state is None or random_state is np.random:
        return np.random.SeedSequence()
    if isinstance(random_state, (Integral, np.integer)) and not isinstance(random_state, bool):
        return np.random.SeedSequence(int(random_state))
    if isinstance(random_state, np.random.RandomState):
        return np.random.SeedSequence(random_state.randint(0, 2**31 - 1, size=4).tolist())
    raise ValueError(f"{random_state!r} cannot be used to seed a numpy.random.RandomState instance")


def unique_columns(keys):
    """First occurrences of the distinct columns of packed ``keys``, and each column's class.

    Returns the indices of the first occurrence of every distinct non-zero
    column (in order of first occurrence) and, for every column, the position
    of its class in that list (-1 for the all-zero column).
    """
    rows = np.ascontiguousarray(keys.T)
    if rows.shape[0] == 0:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    as_void = rows.view(np.dtype((np.void, rows.shape[1]))).ravel()
    _, first, inverse = np.unique(as_void, return_index=True, return_inverse=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    first = first[order]
    nonzero = rows[first].any(axis=1)
    position = np.where(nonzero, np.cumsum(nonzero) - 1, -1)
    return first[nonzero], position[rank[inverse.ravel()]]
