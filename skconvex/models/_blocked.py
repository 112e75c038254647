"""The row-blocked path of the gated estimators: gates and operator in bounded memory.

``block_size`` decides (through :func:`skconvex._config.choose_block_size`)
whether a fit holds its ``n x P`` arrays whole (the
:class:`~skconvex.programs.operators.PatternOperator`) or one row block at a
time (the :class:`~skconvex.programs.row_blocks.RowBlockOperator`). In the
blocked path the patterns are sampled and kept bit-packed, computed block by
block, so no unpacked ``n x P`` array is ever formed; the gates are the same
as the whole-array path's for the same ``random_state``.
"""

from numbers import Integral

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


def on_cluster(X, sample_weight=None):
    """Whether a fit on ``X`` runs on the dask cluster (see ``skconvex.distributed``).

    Parameters
    ----------
    X : object
        Training data.
    sample_weight : object, default=None
        Row weights: None, a numpy vector (split like the rows of ``X``) or
        a dask array (rechunked like them) all run on the cluster.

    Returns
    -------
    on_cluster : bool
        True when ``X`` is a dask array and a ``distributed.Client`` is
        active.
    """
    from ..distributed import active_client, is_dask_array

    return is_dask_array(X) and active_client() is not None


def _cluster_warm_start(estimator, d):
    """``gates``, ``coef_init`` and ``intercept_init`` of a warm-started cluster solve (empty when cold)."""
    if not (estimator.warm_start and hasattr(estimator, "gates_") and estimator.gates_.shape[0] == d):
        return {}
    start = {"gates": np.asarray(estimator.gates_)}
    # The solve drops them if the outputs (classes) changed; the gates stay.
    start["coef_init"] = np.asarray(estimator.pattern_weights_).transpose(1, 0, 2)
    start["intercept_init"] = np.atleast_1d(estimator.intercept_).astype(np.float64)
    return start


def fit_on_cluster(estimator, X, y, sample_weight=None):
    """Fit a gated regressor or classifier on a dask cluster and store its solution.

    Parameters
    ----------
    estimator : ConvexGatedReLURegressor or ConvexGatedReLUClassifier
        The estimator (parameters already validated).
    X : dask.array.Array of shape (n_samples, n_features)
        Data chunked by rows.
    y : array-like or dask.array.Array of shape (n_samples,) or (n_samples, n_outputs)
        Targets.
    sample_weight : array-like or dask.array.Array of shape (n_samples,), default=None
        Row weights, kept on the workers with their rows.

    Returns
    -------
    estimator : ConvexGatedReLURegressor or ConvexGatedReLUClassifier
        Fitted.

    Raises
    ------
    ValueError
        If ``arrangement="adaptive"`` (its candidate search needs the rows
        on the client), or the data are invalid.

    Notes
    -----
    With ``warm_start=True`` a refit reuses the previous gates (when the
    number of features is unchanged) and starts the cluster solve from the
    previous solution and intercept (when their shapes match), as in memory.
    """
    import dask.array as da

    from ..distributed import dask_gated_classification, dask_gated_regression

    if getattr(estimator, "arrangement", "gaussian") == "adaptive":
        raise ValueError(
            "arrangement='adaptive' is not supported for a fit on a dask cluster: its "
            "candidate gates are searched on the rows in memory. Use arrangement='gaussian' "
            "(with a larger n_arrangements), or fit on a numpy array."
        )
    if X.ndim != 2:
        raise ValueError(f"Expected a 2-D dask array for X, got {X.ndim} dimensions.")
    if X.shape[0] < 2:
        raise ValueError(f"n_samples={X.shape[0]}: at least 2 samples are needed.")
    if not np.issubdtype(X.dtype, np.number):
        raise ValueError(f"X must be numeric, got dtype {X.dtype}.")
    if not bool(da.isfinite(X).all().compute()):  # one boolean crosses the wire
        raise ValueError("Input X contains NaN or infinity.")
    dtype = np.dtype(estimator.dtype) if estimator.dtype is not None else (
        np.dtype(np.float32) if X.dtype == np.float32 else np.dtype(np.float64)
    )
    classifier = not estimator._y_numeric
    solve = dask_gated_classification if classifier else dask_gated_regression
    extra = {"loss": estimator.loss} if classifier else {}
    extra.update(_cluster_warm_start(estimator, X.shape[1] + int(estimator.fit_intercept)))
    if isinstance(getattr(estimator, "block_size", None), Integral):
        # The row blocks of each worker's operator (one dask chunk holds several).
        extra["inner_block_size"] = int(estimator.block_size)
    result = solve(
        X,
        y,
        **extra,
        alpha=estimator.alpha,
        penalty=estimator._penalty(),
        sample_weight=sample_weight,
        n_arrangements=estimator.n_arrangements,
        fit_intercept=estimator.fit_intercept,
        dtype=dtype,
        tol=estimator.tol,
        max_iter=estimator.max_iter,
        random_state=estimator.random_state,
    )
    info = result.info
    estimator.n_features_in_ = X.shape[1]
    if hasattr(estimator, "feature_names_in_"):
        del estimator.feature_names_in_
    if classifier:
        # As the in-memory classifier: classes_, and an array intercept_.
        estimator.classes_ = info["classes"]
        estimator._y_1d = False
    else:
        estimator._y_1d = info["y_1d"]
        estimator.n_outputs_ = info["n_outputs"]
    estimator._report(result)
    estimator._store_solution(result, info["gates"], X.shape[1], info["n_outputs"])
    estimator.dask_info_ = {k: info[k] for k in ("rounds", "bytes_out", "bytes_in", "n_blocks", "n_samples")}
    return estimator
