"""Programs of the networks deeper than two layers.

* :func:`three_layer_program`: parallel three-layer ReLU sub-networks with
  weight decay (Ergen & Pilanci, 2021), a group-:math:`\\ell_1` program over
  pairs of first- and second-layer patterns with two families of cone
  constraints (:class:`~skconvex.programs.nested_cones.NestedConeProblem`), or
  its gated relaxation (:class:`~skconvex.programs.problem.ConvexProblem`).
* :func:`path_program`: parallel deep ReLU networks with path regularization
  (Ergen & Pilanci, 2023), a group-Frobenius program over sampled sub-network
  pattern tuples with one family of nested cones per level.

Weights are recovered from the solutions by :mod:`skconvex.networks`.

References
----------
T. Ergen and M. Pilanci. Global optimality beyond two layers: training deep
ReLU networks via convex programs. ICML 2021, arXiv:2110.05518.

T. Ergen and M. Pilanci. Path regularization: a convexity and sparsity
inducing regularization for parallel ReLU networks. NeurIPS 2023,
arXiv:2110.09548.
"""

import numpy as np

from ._chunks import unique_columns
from .nested_cones import NestedConeProblem
from .operators import PatternOperator
from .penalties import ColumnBlockL2, ColumnGroupL2
from .problem import ConvexProblem

__all__ = ["three_layer_program", "path_program"]

_SIGNS = np.array([1.0, -1.0])

_PARAMS = """
    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Data, with a last column of ones when neurons carry a bias.
    arr : SubnetworkArrangements
        Sampled sub-networks and their patterns.
    Y : ndarray of shape (n_samples, n_outputs)
        Encoded targets.
    datafit : Datafit
        The loss.
    sw : ndarray of shape (n_samples,)
        Row weights.
    alpha : float
        Penalty strength.
    gated : bool
        Build the gated relaxation (no cone constraints) instead of the exact program.
    fit_intercept : bool
        Whether the output intercept is free.
    dtype : {numpy.float32, numpy.float64}
        Compute dtype of the operator.

    Returns
    -------
    problem : ConvexProblem or NestedConeProblem
        The program.
    layout : dict
        What recovering the network needs (pattern counts, gates, sub-networks).
"""


def three_layer_program(X, arr, Y, datafit, sw, alpha, *, gated, fit_intercept, dtype):
    """Build the parallel three-layer program on the sampled patterns.

    Columns are indexed by (second-level pattern, output sign, first-level
    pattern, second-layer sign); the exact program adds the cones of the
    second layer as a level of nested cones.
    {params}"""
    n, d = X.shape
    support = sw > 0
    G1, D1 = arr.gates, arr.first_patterns
    i_const = None
    if fit_intercept:
        # A unit firing on every row (the ones column) makes a constant
        # second-layer input, a bias of the second layer; it also makes the
        # feasibility-restoring directions strictly interior.
        const = np.flatnonzero(D1[support].all(axis=0))
        if const.size == 0:
            g = np.zeros((d, 1), dtype=G1.dtype)
            g[-1] = 1
            G1, D1 = np.hstack([G1, g]), np.hstack([D1, X @ g >= 0])
            i_const = G1.shape[1] - 1
        else:
            i_const = int(const[0])
    # One group per distinct second-level pattern (first sub-network kept).
    keep, _ = unique_columns(np.packbits(arr.patterns[support], axis=0))
    D2 = arr.patterns[:, keep]
    leaves, edges, index = (
        arr.leaf_weights[keep],
        arr.edge_weights[0][keep],
        arr.leaf_index[keep],
    )
    P1, P2, C = D1.shape[1], D2.shape[1], Y.shape[1]
    layout = {
        "gates": G1,
        "P1": P1,
        "P2": P2,
        "leaf_weights": leaves,
        "edge_weights": edges,
    }
    if gated:
        masks = (D2[:, :, None] & D1[:, None, :]).reshape(n, P2 * P1)
        op = PatternOperator(X, masks, n_outputs=C, dtype=dtype)
        problem = ConvexProblem(
            op, datafit, ColumnGroupL2(), Y, sw, alpha, fit_intercept=fit_intercept
        )
        return problem, layout
    # Columns (l, s3, i, s1): second-level pattern l and output sign s3,
    # first-level pattern i and second-layer sign s1.
    shape = (n, P2, 2, P1, 2)
    masks = np.broadcast_to(
        D2[:, :, None, None, None] & D1[:, None, None, :, None], shape
    )
    signs = (_SIGNS[:, None, None] * _SIGNS[None, None, :]) * np.ones((P2, 2, P1, 2))
    cone = np.broadcast_to(D1[:, None, None, :, None], shape)
    inner = np.broadcast_to(D1[:, None, None, :, None] * _SIGNS, shape)
    interior = np.broadcast_to(G1[:, None, None, :, None], (d, P2, 2, P1, 2))
    # Feasible directions: each group's own sampled sub-network, plus a small
    # constant unit where it has rows without any active unit.
    directions = np.zeros((d, P2, 2, P1, 2))
    h = np.zeros((n, P2))
    for j in range(leaves.shape[1]):
        w, e, i = leaves[:, j, :], edges[:, j], index[:, j]
        h += np.maximum(X @ w.T, 0) * e
        ok = np.flatnonzero(i >= 0)
        # Both output signs share the direction; (l, i) pairs are distinct
        # within one unit index j, so the fancy-indexed update is exact.
        directions[:, ok, :, i[ok], (e[ok] < 0).astype(int)] += (
            np.abs(e[ok])[:, None] * w[ok]
        )[:, :, None]
    if i_const is not None:
        negative = ~D2 & support[:, None]
        with np.errstate(invalid="ignore"):
            low = np.where(negative, np.abs(h), np.inf).min(axis=0)
        top = np.abs(h).max(axis=0)
        eps = np.where(np.isfinite(low), 0.5 * low, 0.5 * top)
        eps = np.where(eps > 0, eps, 1.0)
        directions[-1, :, :, i_const, 0] += eps[:, None]
    op = PatternOperator(
        X, masks.reshape(n, -1), signs=signs.ravel(), n_outputs=C, dtype=dtype
    )
    problem = NestedConeProblem(
        op,
        datafit,
        ColumnGroupL2(),
        Y,
        sw,
        alpha,
        cone_patterns=cone.reshape(n, -1),
        levels=[(2 * P1, np.repeat(D2, 2, axis=1), inner.reshape(n, -1))],
        interior=interior.reshape(d, -1),
        directions=directions.reshape(d, -1),
        fit_intercept=fit_intercept,
    )
    return problem, layout


def path_program(X, arr, Y, datafit, sw, alpha, *, gated, fit_intercept, dtype):
    """Build the path-regularized program on the sampled sub-network tuples.

    Columns are indexed by (sub-network, output sign, leaf); one group per
    sub-network and output carries its :math:`\\ell_2` path norm.
    {params}"""
    n, d = X.shape
    P, N1, L, m, C = arr.n_patterns, arr.n_leaves, arr.depth, arr.width, Y.shape[1]
    leaves = np.arange(N1)
    # Pattern of the level-(k+1) node above every leaf, and the edges on the way.
    along = [arr.node_patterns[k][:, :, leaves // m**k] for k in range(L - 1)]
    edge_sign = [
        np.where(arr.edge_weights[k] < 0, -1.0, 1.0)[:, leaves // m**k]
        for k in range(L - 2)
    ]
    edge_size = [np.abs(arr.edge_weights[k])[:, leaves // m**k] for k in range(L - 2)]
    full = np.logical_and.reduce(along)
    path_sign = np.prod(edge_sign, axis=0)
    scale = np.prod(edge_size, axis=0)
    layout = {"P": P, "N1": N1}
    if gated:
        op = PatternOperator(X, full.reshape(n, P * N1), n_outputs=C, dtype=dtype)
        problem = ConvexProblem(
            op, datafit, ColumnBlockL2(N1), Y, sw, alpha, fit_intercept=fit_intercept
        )
        return problem, layout
    # Columns (sub-network, output sign, leaf).
    shape = (n, P, 2, N1)
    masks = np.broadcast_to(full[:, :, None, :], shape)
    signs = _SIGNS[None, :, None] * path_sign[:, None, :]
    cone = np.broadcast_to(along[0][:, :, None, :], shape)
    levels = []
    for k in range(2, L):
        inner = np.prod(edge_sign[: k - 1], axis=0)[None] * np.logical_and.reduce(
            along[: k - 1]
        )
        nodes = arr.node_patterns[k - 1]
        levels.append(
            (
                m ** (k - 1),
                np.broadcast_to(
                    nodes[:, :, None, :], (n, P, 2, nodes.shape[2])
                ).reshape(n, -1),
                np.broadcast_to(inner[:, :, None, :], shape).reshape(n, -1),
            )
        )
    leaf_w = arr.leaf_weights.transpose(2, 0, 1)[:, :, None, :]
    interior = np.broadcast_to(leaf_w, (d, P, 2, N1))
    directions = np.broadcast_to(leaf_w * scale[None, :, None, :], (d, P, 2, N1))
    op = PatternOperator(
        X, masks.reshape(n, -1), signs=signs.ravel(), n_outputs=C, dtype=dtype
    )
    problem = NestedConeProblem(
        op,
        datafit,
        ColumnBlockL2(N1),
        Y,
        sw,
        alpha,
        cone_patterns=cone.reshape(n, -1),
        levels=levels,
        interior=interior.reshape(d, -1),
        directions=directions.reshape(d, -1),
        fit_intercept=fit_intercept,
    )
    return problem, layout


three_layer_program.__doc__ = three_layer_program.__doc__.format(params=_PARAMS)
path_program.__doc__ = path_program.__doc__.format(params=_PARAMS)
