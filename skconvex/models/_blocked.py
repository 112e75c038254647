"""The row-blocked path of the gated estimators: gates and operator in bounded memory.

``block_size`` decides (through :func:`skconvex._config.choose_block_size`)
whether a fit holds its ``n x P`` arrays whole (the
:class:`~skconvex.programs.operators.PatternOperator`) or one row block at a
time (the :class:`~skconvex.programs.row_blocks.RowBlockOperator`). In the
blocked path the patterns are sampled and kept bit-packed, computed block by
block, so no unpacked ``n x P`` array is ever formed; the gates are the same
as the whole-array path's for the same ``random_state``.
"""

import numpy as np

from .._config import choose_block_size
from ..arrangements import sample_arrangements
from ..programs.row_blocks import RowBlockOperator, block_bytes_per_row, packed_patterns

__all__ = ["row_blocked_operator"]


def row_blocked_operator(estimator, X_aug, sample_weight, n_outputs, dtype):
    """Gates and a :class:`RowBlockOperator` for ``estimator``, or None for whole arrays.

    Parameters
    ----------
    estimator : BaseConvexNetwork
        A gated estimator (its ``block_size``, ``n_arrangements``, ``n_jobs``,
        ``random_state`` and ``warm_start`` are read).
    X_aug : {ndarray, sparse matrix} of shape (n_samples, n_features)
        Data with the ones column, in the compute dtype.
    sample_weight : ndarray of shape (n_samples,)
        Row weights.
    n_outputs : int
        Output columns.
    dtype : numpy.dtype
        Compute dtype.

    Returns
    -------
    blocked : tuple of (ndarray, RowBlockOperator) or None
        ``(gates, operator)``, or None when the whole-array path applies.
    """
    n, d = X_aug.shape
    P = estimator._blocks_per_pattern * estimator.n_arrangements
    rows = choose_block_size(
        estimator.block_size,
        n,
        whole_bytes=estimator._planned_fit_bytes(X_aug, n_outputs),
        bytes_per_row=block_bytes_per_row(d, P, n_outputs, np.dtype(dtype).itemsize),
        what=f"A row-blocked fit of {type(estimator).__name__} with n_arrangements={estimator.n_arrangements}",
    )
    if rows is None:
        return None
    reuse = (
        estimator.warm_start
        and hasattr(estimator, "gates_")
        and estimator.gates_.shape[0] == d
    )
    if reuse:
        gates = estimator.gates_.astype(X_aug.dtype)
        packed = packed_patterns(X_aug, gates, rows)
    else:
        arr = sample_arrangements(
            X_aug,
            estimator.n_arrangements,
            sample_weight=sample_weight,
            packed=True,
            row_block_size=rows,
            n_jobs=estimator.n_jobs,
            random_state=estimator.random_state,
        )
        gates, packed = arr.gates, arr.patterns
    operator = RowBlockOperator(
        X_aug, packed, block_size=rows, n_outputs=n_outputs, dtype=dtype, n_jobs=estimator.n_jobs
    )
    return gates, operator
