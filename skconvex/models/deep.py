"""Convex programs of networks deeper than two layers.

* :class:`ConvexThreeLayerReLURegressor` / :class:`ConvexThreeLayerReLUClassifier`:
  parallel three-layer ReLU sub-networks with weight decay (Ergen & Pilanci,
  2021), a group-:math:`\\ell_1` program over pairs of first- and second-layer
  patterns with two families of cone constraints (or the gated relaxation).
* :class:`PathRegularizedReLURegressor` / :class:`PathRegularizedReLUClassifier`:
  parallel deep ReLU networks with path regularization (Ergen & Pilanci,
  2023), a group-Frobenius program over sampled sub-network pattern tuples.
* :class:`ParallelDeepLinearRegressor`: parallel deep linear networks (Wang,
  Ergen & Pilanci, 2023), a nuclear-norm program; :func:`standard_deep_linear`
  trains the standard (non-parallel) network of the same depth, whose
  training problem has a duality gap.
"""

import warnings
from numbers import Integral, Real

import numpy as np
from scipy.optimize import minimize
from sklearn.base import ClassifierMixin, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight

from ..arrangements import (
    SubnetworkArrangements,
    _split_levels,
    _unique_with_index,
    compute_subnetwork_patterns,
    sample_subnetworks,
)
from ..programs.nested_cones import NestedConeProblem
from ..programs.operators import PatternOperator
from ..programs.penalties import ColumnBlockL2, ColumnGroupL2, GroupNuclear
from ..programs.problem import ConvexProblem
from ..solvers import cvxpy_solve, fista, solve_certified
from ..solvers.nested import cvxpy_nested_solve, nested_augmented_lagrangian
from ..solvers.working_set import working_set_solve
from ._base import (
    BaseConvexNetwork,
    ClassificationTargets,
    RegressionTargets,
    _as_dtype,
    augment,
)

__all__ = [
    "ConvexThreeLayerReLURegressor",
    "ConvexThreeLayerReLUClassifier",
    "PathRegularizedReLURegressor",
    "PathRegularizedReLUClassifier",
    "ParallelDeepLinearRegressor",
    "standard_deep_linear",
]

_SIGNS = np.array([1.0, -1.0])
_SOLVER_OPTIONS = {"auglag": {"inner", "sigma", "rho", "growth", "max_outer"}, "fista": set()}


# ---------------------------------------------------------------------------
# Arrangements
# ---------------------------------------------------------------------------


def _arrangements_on(X, sample_weight, gates, leaf_weights, edge_weights):
    """Sub-network arrangements of given (previously sampled) weights on data ``X``."""
    depth = len(edge_weights) + 2
    node_patterns = compute_subnetwork_patterns(X, leaf_weights, edge_weights)
    P, N1, d = leaf_weights.shape
    cand_gates = np.concatenate([gates, leaf_weights.reshape(-1, d).T], axis=1)
    cand_patterns = np.concatenate(
        [X @ gates >= 0, node_patterns[0].reshape(X.shape[0], -1)], axis=1
    )
    rows = sample_weight > 0
    kept, position = _unique_with_index(np.packbits(cand_patterns[rows], axis=0))
    width = int(round(N1 ** (1.0 / (depth - 2))))
    return SubnetworkArrangements(
        gates=np.ascontiguousarray(cand_gates[:, kept]),
        first_patterns=np.ascontiguousarray(cand_patterns[:, kept]),
        leaf_weights=leaf_weights,
        edge_weights=tuple(edge_weights),
        leaf_index=position[gates.shape[1]:].reshape(P, N1),
        node_patterns=node_patterns,
        patterns=np.ascontiguousarray(node_patterns[-1][:, :, 0]),
        n_sampled=P,
        gate_index=np.arange(P),
        depth=depth,
        width=width,
    )


# ---------------------------------------------------------------------------
# Three-layer programs
# ---------------------------------------------------------------------------


def _three_layer_program(X, arr, Y, datafit, sw, alpha, *, gated, fit_intercept, dtype):
    """The parallel three-layer program on the sampled patterns, and its layout."""
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
    keep, _ = _unique_with_index(np.packbits(arr.patterns[support], axis=0))
    D2 = arr.patterns[:, keep]
    leaves, edges, index = arr.leaf_weights[keep], arr.edge_weights[0][keep], arr.leaf_index[keep]
    P1, P2, C = D1.shape[1], D2.shape[1], Y.shape[1]
    layout = {"gates": G1, "P1": P1, "P2": P2, "leaf_weights": leaves, "edge_weights": edges}
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
    masks = np.broadcast_to(D2[:, :, None, None, None] & D1[:, None, None, :, None], shape)
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
        directions[:, ok, :, i[ok], (e[ok] < 0).astype(int)] += (np.abs(e[ok])[:, None] * w[ok])[
            :, :, None
        ]
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


def _recover_three_layer(W, P1, P2, gated, rtol=1e-10):
    """Sub-networks (W1, w2, w3) from the convex columns (see the estimators' Notes)."""
    W = np.asarray(W, dtype=np.float64)
    d, B, C = W.shape
    if gated:
        Wr = W.reshape(d, P2, 1, P1, 1, C)
    else:
        Wr = W.reshape(d, P2, 2, P1, 2, C)
    norms = np.sqrt(np.einsum("dlaisc,dlaisc->laisc", Wr, Wr))
    top = norms.max() if norms.size else 0.0
    keep = norms > rtol * top if top > 0 else np.zeros(norms.shape, bool)
    norms = np.where(keep, norms, 0.0)
    S = norms.sum(axis=(2, 3))  # (P2, a, C)
    live = S > 0
    sub_index = np.full(S.shape, -1)
    sub_index[live] = np.arange(int(live.sum()))
    l_sub, a_sub, c_sub = np.nonzero(live)
    output = np.zeros((len(l_sub), C))
    sign_a = np.array([1.0, -1.0]) if not gated else np.array([1.0])
    output[np.arange(len(l_sub)), c_sub] = sign_a[a_sub] * np.sqrt(S[l_sub, a_sub, c_sub])
    l, a, i, s, c = np.nonzero(keep)
    sub = sub_index[l, a, c]
    q = Wr[:, l, a, i, s, c].T
    nq = norms[l, a, i, s, c]
    hidden = q / np.sqrt(nq * S[l, a, c])[:, None]
    sign_s = np.array([1.0, -1.0]) if not gated else np.array([1.0])
    second = sign_s[s] * np.sqrt(nq)
    return {
        "hidden": hidden,
        "second": second,
        "unit_subnetwork": sub,
        "unit_pattern": i,
        "output": output,
        "subnetwork_pattern": l_sub,
        "zeroed": ~keep & (np.sqrt(np.einsum("dlaisc,dlaisc->laisc", Wr, Wr)) > 0),
    }


def _three_layer_forward(X, hidden, second, unit_sub, output, intercept, unit_gates=None, sub_gates=None):
    """Outputs of parallel three-layer networks (ReLU, or gated when gates are given)."""
    Z = X @ hidden.T
    H = (Z >= 0) * Z if unit_gates is None else (X @ unit_gates >= 0) * Z
    K = output.shape[0]
    h2 = np.zeros((X.shape[0], K), dtype=Z.dtype)
    if len(unit_sub):
        # Sum each sub-network's units: one sparse-free matmul with a 0/1 map.
        assign = np.zeros((len(unit_sub), K), dtype=Z.dtype)
        assign[np.arange(len(unit_sub)), unit_sub] = second
        h2 = H @ assign
    h2 = np.maximum(h2, 0) if sub_gates is None else sub_gates * h2
    return h2 @ output + intercept


# ---------------------------------------------------------------------------
# Path-regularized programs
# ---------------------------------------------------------------------------


def _path_program(X, arr, Y, datafit, sw, alpha, *, gated, fit_intercept, dtype):
    """The path-regularized program on the sampled sub-network tuples, and its layout."""
    n, d = X.shape
    P, N1, L, m, C = arr.n_patterns, arr.n_leaves, arr.depth, arr.width, Y.shape[1]
    leaves = np.arange(N1)
    # Pattern of the level-(k+1) node above every leaf, and the edges on the way.
    along = [arr.node_patterns[k][:, :, leaves // m**k] for k in range(L - 1)]
    edge_sign = [np.where(arr.edge_weights[k] < 0, -1.0, 1.0)[:, leaves // m**k] for k in range(L - 2)]
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
        inner = np.prod(edge_sign[: k - 1], axis=0)[None] * np.logical_and.reduce(along[: k - 1])
        nodes = arr.node_patterns[k - 1]
        levels.append(
            (
                m ** (k - 1),
                np.broadcast_to(nodes[:, :, None, :], (n, P, 2, nodes.shape[2])).reshape(n, -1),
                np.broadcast_to(inner[:, :, None, :], shape).reshape(n, -1),
            )
        )
    leaf_w = arr.leaf_weights.transpose(2, 0, 1)[:, :, None, :]
    interior = np.broadcast_to(leaf_w, (d, P, 2, N1))
    directions = np.broadcast_to(leaf_w * scale[None, :, None, :], (d, P, 2, N1))
    op = PatternOperator(X, masks.reshape(n, -1), signs=signs.ravel(), n_outputs=C, dtype=dtype)
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


def _recover_path(W, arr, gated, rtol=1e-10):
    """Tree sub-networks from the convex columns: leaves p / |p|, edges carrying |p|."""
    W = np.asarray(W, dtype=np.float64)
    d, B, C = W.shape
    P, N1, L = arr.n_patterns, arr.n_leaves, arr.depth
    A = 1 if gated else 2
    Wr = W.reshape(d, P, A, N1, C)
    leaf_norms = np.sqrt(np.einsum("dpalc,dpalc->palc", Wr, Wr))
    group = np.sqrt(np.einsum("palc,palc->pac", leaf_norms, leaf_norms))
    top = group.max() if group.size else 0.0
    live = group > rtol * top if top > 0 else np.zeros(group.shape, bool)
    p_idx, a_idx, c_idx = np.nonzero(live)
    K = len(p_idx)
    norms = leaf_norms[p_idx, a_idx, :, c_idx]  # (K, N1)
    vecs = Wr[:, p_idx, a_idx, :, c_idx]  # (d, K, N1) -> below
    vecs = np.moveaxis(Wr, 0, -1)[p_idx, a_idx, :, c_idx, :]  # (K, N1, d)
    with np.errstate(invalid="ignore", divide="ignore"):
        leaf_weights = np.where(norms[:, :, None] > 0, vecs / norms[:, :, None], 0.0)
    edges = []
    for k in range(L - 2):
        e = arr.edge_weights[k][p_idx]
        sign = 1.0 if gated else np.where(e < 0, -1.0, 1.0)
        edges.append(sign * norms if k == 0 else sign * np.ones_like(e))
    output = np.zeros((K, C))
    output[np.arange(K), c_idx] = 1.0 if gated else _SIGNS[a_idx]
    return {
        "leaf_weights": leaf_weights,
        "edge_weights": tuple(edges),
        "output": output,
        "subnetwork": p_idx,
        "group_norms": group,
    }


def _tree_forward(X, leaf_weights, edge_weights, output, intercept, gates=None):
    """Outputs of parallel tree sub-networks (ReLU, or gated by per-level ``gates``)."""
    K, N1, d = leaf_weights.shape
    n = X.shape[0]
    width = N1 if len(edge_weights) <= 1 else int(round(N1 ** (1.0 / len(edge_weights))))
    Z = (X @ leaf_weights.reshape(K * N1, d).T).reshape(n, K, N1)
    a = np.maximum(Z, 0) if gates is None else gates[0] * Z
    for level, e in enumerate(edge_weights, start=1):
        N = a.shape[2]
        z = (a * e[None]).reshape(n, K, N // width, width).sum(axis=3)
        a = np.maximum(z, 0) if gates is None else gates[level] * z
    return a[:, :, 0] @ output + intercept


def _path_norms(leaf_weights, edge_weights, output):
    """:math:`\\ell_2` path norm of every tree sub-network."""
    K, N1, _ = leaf_weights.shape
    width = N1 if len(edge_weights) <= 1 else int(round(N1 ** (1.0 / len(edge_weights))))
    sq = np.einsum("kld,kld->kl", leaf_weights, leaf_weights)
    for level, e in enumerate(edge_weights):
        sq = sq * np.repeat(e**2, width**level, axis=1)[:, :N1]
    return np.sqrt(sq.sum(axis=1) * np.einsum("kc,kc->k", output, output))


# ---------------------------------------------------------------------------
# Shared estimator machinery
# ---------------------------------------------------------------------------

_SOLVER_DOC = """
    solver : {{"auto", "auglag", "fista", "cvxpy"}}, default="auto"
        ``"auglag"`` (exact program): augmented Lagrangian with semismooth
        Newton steps, solved exactly through a Woodbury factorization with
        one block per sub-network
        (:func:`~skconvex.solvers.nested.nested_augmented_lagrangian`).
        ``"fista"`` (gated program): accelerated proximal gradient{working_set}.
        ``"cvxpy"``: the conic program through CVXPY, Clarabel unless
        ``solver_options["solver"]`` names another installed solver (the
        accuracy reference: practical for a few thousand variables only;
        Clarabel may fail on the exponential cones of the logistic loss).
        ``"auto"`` is ``"fista"`` for ``gated=True`` and ``"auglag"``
        otherwise.
    solver_options : dict, default=None
        Extra options: ``"auglag"``: ``inner`` ("newton-cg", "fista"),
        ``sigma``, ``rho``, ``growth``, ``max_outer``; ``"cvxpy"``:
        ``solver`` and that solver's keyword arguments.
    tol : float, default=1e-4
        Stop when the certified duality gap is at most ``tol`` times the
        objective (and, for the exact program, the relative cone violation of
        the iterate is at most ``tol``; the returned point is always moved
        exactly into the cones, so ``dual_gap_`` bounds its suboptimality).
    max_iter : int, default=1000
        Maximum number of iterations: Newton steps for ``"auglag"``,
        proximal-gradient steps for ``"fista"`` (unused by ``"cvxpy"``).
    warm_start : bool, default=False
        Reuse the sampled sub-networks and start from the previous solution
        when refitting (e.g. with another ``alpha``).
    dtype : {{None, "float32", "float64"}}, default=None
        Dtype of the data and gates. None uses float32 when ``X`` is float32
        and float64 otherwise. Certificates are computed in float64.
    n_jobs : int, default=None
        Parallel jobs for sampling the sub-networks (joblib; any backend).
    random_state : int, RandomState instance or None, default=None
        Seed of the sampled sub-networks.
    verbose : int, default=0
        Solver progress: 1 prints every outer iteration, 2 every inner one.
"""


class _DeepReLUBase(BaseConvexNetwork):
    """Sampling, solving and reporting shared by the three-layer and path estimators."""

    _parameter_constraints = {
        **{
            k: v
            for k, v in BaseConvexNetwork._parameter_constraints.items()
            if k not in ("penalty", "n_arrangements")
        },
        "gated": ["boolean"],
        "solver": [StrOptions({"auto", "auglag", "fista", "cvxpy"})],
        "solver_options": [None, dict],
    }

    def _solver_plan(self):
        solver = self.solver
        if solver == "auto":
            solver = "fista" if self.gated else "auglag"
        if solver == "fista" and not self.gated:
            raise ValueError(
                "solver='fista' solves the gated program only (gated=True); the exact "
                "program needs solver='auglag' or 'cvxpy'."
            )
        if solver == "auglag" and self.gated:
            raise ValueError(
                "solver='auglag' solves the exact program only (gated=False); the gated "
                "program needs solver='fista' or 'cvxpy'."
            )
        options = dict(self.solver_options or {})
        if solver in _SOLVER_OPTIONS:
            unknown = set(options) - _SOLVER_OPTIONS[solver]
            if unknown:
                raise ValueError(
                    f"solver_options has keys {sorted(unknown)} that solver={solver!r} does "
                    f"not accept; accepted: {sorted(_SOLVER_OPTIONS[solver])}."
                )
        elif "solver" in options:
            import cvxpy as cp

            if options["solver"] not in cp.installed_solvers():
                raise ValueError(
                    f"solver_options['solver']={options['solver']!r} is not an installed "
                    f"CVXPY solver; installed: {cp.installed_solvers()}."
                )
        return solver, options

    def _subnetworks(self, X_aug, sw, n_first, n_sub, depth, width):
        """Sub-networks of the fit: reused on a warm start, sampled otherwise."""
        state = getattr(self, "_sampled", None)
        if (
            self.warm_start
            and state is not None
            and state["gates"].shape[0] == X_aug.shape[1]
            and state["leaf_weights"].shape[1] == width ** (depth - 2)
        ):
            return _arrangements_on(
                X_aug,
                sw,
                state["gates"].astype(X_aug.dtype),
                state["leaf_weights"].astype(X_aug.dtype),
                tuple(w.astype(X_aug.dtype) for w in state["edge_weights"]),
            )
        arr = sample_subnetworks(
            X_aug,
            n_sub,
            n_first=n_first,
            depth=depth,
            width=width,
            sample_weight=sw,
            n_jobs=self.n_jobs,
            random_state=self.random_state,
        )
        return arr

    def _solve(self, problem, solver, options):
        coef_init, intercept_init = None, None
        previous = getattr(self, "_convex_solution", None)
        if self.warm_start and previous is not None and previous[0].shape == problem.coef_shape:
            coef_init, intercept_init = previous
        if solver == "cvxpy":
            options = dict(options)
            name = options.pop("solver", "CLARABEL")
            if isinstance(problem, NestedConeProblem):
                result = cvxpy_nested_solve(
                    problem, solver=name, solver_options=options, verbose=self.verbose
                )
            else:
                result = cvxpy_solve(problem, solver=name, solver_options=options, verbose=self.verbose)
            result.converged = result.converged or result.relative_gap <= self.tol
        elif solver == "auglag":
            result = nested_augmented_lagrangian(
                problem,
                coef_init=coef_init,
                intercept_init=intercept_init,
                tol=self.tol,
                max_iter=self.max_iter,
                verbose=self.verbose,
                **options,
            )
        else:
            # Sub-network groups of the path program span several columns,
            # which working sets would split; the three-layer columns are
            # independent groups.
            inner = working_set_solve if isinstance(problem.penalty, ColumnGroupL2) else fista
            result = solve_certified(
                problem,
                inner,
                tol=self.tol,
                max_iter=self.max_iter,
                coef_init=coef_init,
                intercept_init=intercept_init,
                verbose=self.verbose,
            )
        self._convex_solution = (
            np.asarray(result.coef).copy(),
            np.asarray(result.intercept, dtype=np.float64).copy(),
        )
        self.solver_ = solver
        return result

    def _finish(self, problem, result, W, objective_net):
        """Certificate attributes: the convex objective at the stored point and the network's."""
        problem64 = problem.astype(np.float64)
        objective, b = problem64.objective(W, result.intercept)
        result.objective = objective
        self._report(result)
        self.nonconvex_objective_ = float(objective_net(b))
        if isinstance(problem64, NestedConeProblem):
            self.constraint_violation_ = float(problem64.violation(problem64.operator.product(W)))
        else:
            self.constraint_violation_ = 0.0
        return b

    def _set_intercept(self, b):
        b = np.asarray(b, dtype=np.float64)
        self.intercept_ = float(b[0]) if getattr(self, "_y_1d", False) else b

    def __getstate__(self):
        state = super().__getstate__()
        # The previous convex solution only serves warm starts; it can be large.
        if not self.warm_start:
            state.pop("_convex_solution", None)
        return state


# ---------------------------------------------------------------------------
# Three-layer estimators
# ---------------------------------------------------------------------------

_THREE_DOC = """
    Parameters
    ----------
    alpha : float, default=1e-3
        Regularization strength. The objective is the **mean** loss (weighted
        by ``sample_weight``) plus ``alpha`` times the weight decay
        :math:`\\tfrac12\\sum_k \\|w_{{2k}}\\|^2 + \\|w_{{3k}}\\|^2` of the last two
        layers, the first layer of every sub-network having unit Frobenius
        norm (see Notes).{alpha_scale} ``alpha=0`` needs ``solver="cvxpy"``: the default augmented
        Lagrangian solver certifies only ``alpha > 0`` and raises a
        ValueError for ``alpha=0``.
    n_arrangements : int or tuple of (int, int), default=(10, 16)
        ``(n_first, n_subnetworks)``: extra first-layer Gaussian gates and
        random sub-networks sampled for the second-layer patterns (an int is
        the number of sub-networks, without extra gates). The first-layer
        patterns are those of the extra gates and of the units of the
        sampled sub-networks (:func:`~skconvex.arrangements.sample_subnetworks`),
        deduplicated; each distinct second-layer pattern is one group.
    width : int, default=2
        First-layer units of each sampled sub-network (the sampling only:
        the fitted sub-networks have as many units as the program selects).
    gated : bool, default=False
        Solve the gated relaxation (fixed gates at both layers, no cone
        constraints: a group lasso) instead of the exact ReLU program.
    fit_intercept : bool, default=True
        Give every first-layer unit a bias (a ones column appended to ``X``,
        penalized with the unit's weights) and the output an unpenalized
        intercept. A first-layer unit active on every row then acts as a
        bias of the second layer.
"""

_THREE_ATTRIBUTES = """
    first_gates_ : ndarray of shape (n_features + fit_intercept, n_first_patterns)
        Gate of every first-layer pattern.
    subnetwork_gates_ : tuple of ndarray
        The sampled sub-networks defining the second-layer patterns:
        first-layer weights of shape ``(n_second_patterns, width, n_features +
        fit_intercept)`` and second-layer weights of shape
        ``(n_second_patterns, width)``.
    convex_weights_ : ndarray of shape (n_features + fit_intercept, n_columns, n_outputs)
        The convex solution; column ``((l * 2 + a) * n_first_patterns + i) * 2
        + s`` is :math:`q^{{s_3 s_1}}_{{l i}}` with :math:`s_3 = (+1, -1)[a]`,
        :math:`s_1 = (+1, -1)[s]` (exact), column ``l * n_first_patterns + i``
        is :math:`v_{{li}}` (gated).
    subnetworks_ : list of tuple
        ``(W1, w2, w3)`` of every recovered sub-network: first-layer weights
        of shape ``(n_features + fit_intercept, n_units)`` (biases in the last
        row when ``fit_intercept``, unit Frobenius norm), second-layer
        weights of shape ``(n_units,)`` and output weights of shape
        ``(n_outputs,)`` (one non-zero entry).
    first_layer_weights_ : ndarray of shape (n_units, n_features)
        Input weights of all units, sub-network after sub-network.
    first_layer_intercepts_ : ndarray of shape (n_units,)
        Biases of the units (zeros when ``fit_intercept=False``).
    second_layer_weights_ : ndarray of shape (n_units,)
        Weight of every unit in its sub-network's second-layer unit.
    unit_subnetwork_ : ndarray of shape (n_units,)
        Sub-network of every unit.
    output_weights_ : ndarray of shape (n_subnetworks, n_outputs)
        Output weights of the sub-networks.
    n_subnetworks_ : int
        Number of recovered sub-networks (non-zero groups).
    objective_ : float
        Objective of the convex program at the solution.
    nonconvex_objective_ : float
        Objective of the recovered network on the training data (equal to
        ``objective_``).
    dual_gap_ : float
        Certified duality gap: an upper bound on ``objective_`` minus the
        optimum of the program with these patterns, in float64.
    constraint_violation_ : float
        Relative violation of the cone constraints at the solution (0 up to
        rounding; 0 for the gated program).
    solver_ : str
        The solver that ran (``"auto"`` resolved).
    n_iter_ : int
        Solver iterations.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column names.
"""

_THREE_NOTES = """
    **Network.** :math:`K` parallel sub-networks, each with :math:`m_1`
    first-layer ReLU units and one second-layer ReLU unit,

    .. math:: f(x) = \\sum_{{k=1}}^K \\big((\\tilde x^\\top W_{{1k}})_+ w_{{2k}}\\big)_+ w_{{3k}} + b,
              \\qquad \\tilde x = (x, 1),

    trained on :math:`\\sum_j s_j \\ell(f(x_j), y_j) + \\tfrac{{\\alpha}}{{2}}
    \\sum_k \\|w_{{2k}}\\|_2^2 + w_{{3k}}^2` subject to :math:`\\|W_{{1k}}\\|_F \\le 1`
    (weights :math:`s` summing to one). **This normalization is what makes
    the program below exact**; it is our choice (the design notes' open
    item O4: the paper's exact regularizer could not be checked): plain
    weight decay on all three layers is, after rescaling,
    :math:`\\tfrac{{3\\alpha}}{{2}}\\sum_k (\\|W_{{1k}}\\|_F\\|w_{{2k}}\\||w_{{3k}}|)^{{2/3}}`,
    which is not convexified this way.

    **Derivation** (ours, proved by the tests). Rescaling :math:`(w_{{2k}},
    w_{{3k}}) \\to (t w_{{2k}}, w_{{3k}}/t)` turns the penalty into
    :math:`\\alpha\\sum_k \\|w_{{2k}}\\|_2|w_{{3k}}|`. For units with patterns
    :math:`D_{{1i}}` and second-layer pattern :math:`D_{{2l}}`, the variables
    :math:`q = |w_{{3k}}||w_{{2kj}}| w_{{1kj}}` (merged per pattern and sign,
    which only lowers the penalty) satisfy
    :math:`\\sum_j\\|q_j\\| \\le |w_{{3k}}|\\|w_{{2k}}\\|\\|W_{{1k}}\\|_F` (Cauchy-Schwarz),
    and sub-networks with the same :math:`(D_{{2l}}, \\operatorname{{sign}} w_3)` merge
    too. The training problem over networks whose patterns are among the
    sampled ones is therefore exactly

    .. math:: \\min_q\\ \\sum_j s_j \\ell\\Big(\\sum_{{l, s_3}} s_3 D_{{2l}}\\sum_i D_{{1i}}
              \\tilde X (q^{{s_3+}}_{{li}} - q^{{s_3-}}_{{li}}) + b,\\ y\\Big)_j
              + \\alpha\\sum_{{l,s_3,i,s_1}} \\|q^{{s_3 s_1}}_{{li}}\\|_2

    subject to two families of cone constraints,
    :math:`(2D_{{1i}} - I)\\tilde X q^{{s_3s_1}}_{{li}} \\ge 0` (first-layer
    patterns) and :math:`(2D_{{2l}} - I)\\sum_i D_{{1i}}\\tilde X(q^{{s_3+}}_{{li}} -
    q^{{s_3-}}_{{li}}) \\ge 0` (second-layer patterns) — a group-:math:`\\ell_1`
    program over the features :math:`D_{{2l}}D_{{1i}}\\tilde X`. Every group
    :math:`(l, s_3)` with :math:`S = \\sum_{{i,s_1}}\\|q\\| > 0` becomes a
    sub-network with units :math:`q/\\sqrt{{\\|q\\|S}}`, second-layer weights
    :math:`s_1\\sqrt{{\\|q\\|}}` and output weight :math:`s_3\\sqrt S`: then
    :math:`\\|W_1\\|_F = 1`, the penalty is :math:`\\alpha S` and the network
    reproduces the convex predictions on the training data.
    With several outputs each sub-network feeds one output (one program
    per output column; the decoupled extension of Pilanci & Ergen, 2020),
    i.e. the penalty on :math:`w_{{3k}} \\in \\mathbb{{R}}^C` is
    :math:`\\|w_{{3k}}\\|_1^2`.

    **Gated relaxation** (``gated=True``): fixed gates at both layers (the
    sampled first-layer gates and sub-networks), no cone constraints: the
    group lasso on :math:`D_{{2l}}D_{{1i}}\\tilde X`, exact for the gated network
    :math:`\\sum_{{l}} 1[h_l(x) \\ge 0] \\sum_i 1[\\tilde x^\\top g_i \\ge 0]\\,
    \\tilde x^\\top W_{{1}} \\dots` with the same normalization, and a lower
    bound of the exact program on the same patterns.

    The exact program has :math:`4 P_1 P_2` columns of
    ``n_features + 1`` variables and two cone families with
    :math:`n(4P_1P_2 + 2P_2)` rows: the Newton solver factorizes one
    :math:`2P_1(d+1)`-square block per group, so keep :math:`P_1` moderate
    for many features (or use ``gated=True``).
    {vector_outputs}
    References
    ----------
    T. Ergen and M. Pilanci. Global optimality beyond two layers: training
    deep ReLU networks via convex programs. ICML 2021, arXiv:2110.05518.

    M. Pilanci and T. Ergen. Neural networks are convex regularizers. ICML
    2020, arXiv:2002.10553.
"""


class _ThreeLayerBase(_DeepReLUBase):
    """Fit, recovery and prediction of parallel three-layer networks."""

    _parameter_constraints = {
        **_DeepReLUBase._parameter_constraints,
        "n_arrangements": [Interval(Integral, 1, None, closed="left"), tuple],
        "width": [Interval(Integral, 1, None, closed="left")],
    }

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the network by solving its convex program.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Row weights; the loss is their weighted mean.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        n_first, n_sub = _split_levels(self.n_arrangements)
        solver, options = self._solver_plan()
        X, y, sw = self._validate_fit_data(
            X, y, sample_weight, multi_output=self._multi_output, y_numeric=self._y_numeric
        )
        Y, datafit = self._encode_targets(y)
        dtype = _as_dtype(self.dtype, X)
        X_aug = augment(X.astype(dtype, copy=False), self.fit_intercept)
        arr = self._subnetworks(X_aug, sw, n_first, n_sub, 3, self.width)
        self._sampled = {
            "gates": arr.gates,
            "leaf_weights": arr.leaf_weights,
            "edge_weights": arr.edge_weights,
        }
        problem, layout = _three_layer_program(
            X_aug,
            arr,
            Y,
            datafit,
            sw,
            self.alpha * self._alpha_scale(Y, sw),
            gated=self.gated,
            fit_intercept=self.fit_intercept,
            dtype=dtype,
        )
        result = self._solve(problem, solver, options)
        net = _recover_three_layer(result.coef, layout["P1"], layout["P2"], self.gated)
        W = np.asarray(result.coef, dtype=np.float64).copy()
        d, B, C = W.shape
        if net["zeroed"].any():
            # Columns dropped as numerically zero are zeroed in the stored
            # solution too, so that objective_ and the network agree.
            Wr = W.reshape(d, *net["zeroed"].shape)
            Wr[:, net["zeroed"]] = 0.0
            W = Wr.reshape(d, B, C)
        n_features = X.shape[1]
        self.first_gates_ = layout["gates"]
        self.subnetwork_gates_ = (layout["leaf_weights"], layout["edge_weights"])
        self.convex_weights_ = W
        hidden = net["hidden"]
        self.first_layer_weights_ = hidden[:, :n_features]
        self.first_layer_intercepts_ = (
            hidden[:, n_features] if self.fit_intercept else np.zeros(len(hidden))
        )
        self.second_layer_weights_ = net["second"]
        self.unit_subnetwork_ = net["unit_subnetwork"]
        self.output_weights_ = net["output"]
        self.n_subnetworks_ = int(net["output"].shape[0])
        self._unit_gate = net["unit_pattern"]
        self._subnetwork_gate = net["subnetwork_pattern"]
        self.subnetworks_ = [
            (
                hidden[self.unit_subnetwork_ == k].T,
                self.second_layer_weights_[self.unit_subnetwork_ == k],
                self.output_weights_[k],
            )
            for k in range(self.n_subnetworks_)
        ]
        X64 = np.asarray(problem.operator.X, dtype=np.float64)

        def objective_net(b):
            out = self._forward_augmented(X64, b)
            decay = 0.5 * float(np.sum(net["second"] ** 2) + np.sum(net["output"] ** 2))
            return problem.datafit.value(out, problem.y, problem.sample_weight) + problem.alpha * decay

        b = self._finish(problem, result, W, objective_net)
        self._set_intercept(b)
        return self

    def _forward_augmented(self, X_aug, intercept):
        hidden = self.first_layer_weights_
        if self.fit_intercept:
            hidden = np.column_stack([hidden, self.first_layer_intercepts_])
        hidden = hidden.astype(X_aug.dtype, copy=False)
        unit_gates = sub_gates = None
        if self.gated:
            unit_gates = self.first_gates_[:, self._unit_gate].astype(X_aug.dtype, copy=False)
            leaves, edges = self.subnetwork_gates_
            top = compute_subnetwork_patterns(X_aug, leaves, (edges,))[-1][:, :, 0]
            sub_gates = top[:, self._subnetwork_gate]
        return _three_layer_forward(
            X_aug,
            hidden,
            self.second_layer_weights_.astype(X_aug.dtype, copy=False),
            self.unit_subnetwork_,
            self.output_weights_.astype(X_aug.dtype, copy=False),
            np.atleast_1d(intercept),
            unit_gates,
            sub_gates,
        )

    def _network_output(self, X):
        return self._forward_augmented(augment(X, self.fit_intercept), self.intercept_)


_VECTOR = """
    **Several outputs** ({what}): every sub-network feeds a single output
    (decoupled program), see the derivation above.
"""


class ConvexThreeLayerReLURegressor(RegressionTargets, RegressorMixin, _ThreeLayerBase):
    __doc__ = (
        """Parallel three-layer ReLU regressor trained to global optimality.

    Squared error with weight decay on parallel three-layer ReLU
    sub-networks, solved as the exact convex program of Ergen & Pilanci
    (2021): a group-:math:`\\ell_1` program over pairs of first- and
    second-layer activation patterns with two families of cone constraints,
    with a certified duality gap; every sub-network is recovered and the
    network predicts.
"""
        + _THREE_DOC.format(
            alpha_scale=" It is multiplied by the standard deviation of ``y``."
        ).rstrip("\n")
        + """
    loss : {"squared_error"}, default="squared_error"
        Data-fitting term: half the squared error, averaged over samples."""
        + _SOLVER_DOC.format(working_set=" with working sets").rstrip("\n")
        + """

    Attributes
    ----------"""
        + _THREE_ATTRIBUTES.format()
        + """    n_outputs_ : int
        Number of outputs.
    intercept_ : float or ndarray of shape (n_outputs,)
        Output intercept (a float for one-dimensional ``y``).

    See Also
    --------
    ConvexThreeLayerReLUClassifier : The classifier counterpart.
    PathRegularizedReLURegressor : Deeper sub-networks with path regularization.
    ConvexReLURegressor : The two-layer exact program.

    Notes
    -----"""
        + _THREE_NOTES.format(vector_outputs=_VECTOR.format(what="multi-output regression"))
        + """
    Examples
    --------
    >>> import numpy as np
    >>> from skconvex import ConvexThreeLayerReLURegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((40, 2))
    >>> y = np.abs(X[:, 0]) - np.maximum(X[:, 1], 0)
    >>> reg = ConvexThreeLayerReLURegressor(n_arrangements=(4, 8), random_state=0).fit(X, y)
    >>> bool(abs(reg.nonconvex_objective_ - reg.objective_) <= 1e-8 * reg.objective_)
    True
"""
    )

    _multi_output = True
    _y_numeric = True

    _parameter_constraints = {
        **_ThreeLayerBase._parameter_constraints,
        "loss": [StrOptions({"squared_error"})],
    }

    def __init__(
        self,
        alpha=1e-3,
        *,
        n_arrangements=(10, 16),
        width=2,
        gated=False,
        fit_intercept=True,
        loss="squared_error",
        solver="auto",
        solver_options=None,
        tol=1e-4,
        max_iter=1000,
        warm_start=False,
        dtype=None,
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.alpha = alpha
        self.n_arrangements = n_arrangements
        self.width = width
        self.gated = gated
        self.fit_intercept = fit_intercept
        self.loss = loss
        self.solver = solver
        self.solver_options = solver_options
        self.tol = tol
        self.max_iter = max_iter
        self.warm_start = warm_start
        self.dtype = dtype
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class ConvexThreeLayerReLUClassifier(ClassificationTargets, ClassifierMixin, _ThreeLayerBase):
    __doc__ = (
        """Parallel three-layer ReLU classifier trained to global optimality.

    Logistic loss for two classes, multinomial cross-entropy for more (one
    output per class), with weight decay on parallel three-layer ReLU
    sub-networks, solved as the exact convex program of Ergen & Pilanci
    (2021) with a certified duality gap; every sub-network is recovered and
    the network predicts.
"""
        + _THREE_DOC.format(alpha_scale="").rstrip("\n")
        + """
    loss : {"log_loss", "squared_error"}, default="log_loss"
        ``"log_loss"``: logistic / multinomial cross-entropy (gives
        ``predict_proba``); ``"squared_error"``: squared error on +-1 or
        one-hot targets."""
        + _SOLVER_DOC.format(working_set=" with working sets").rstrip("\n")
        + """

    Attributes
    ----------"""
        + _THREE_ATTRIBUTES.format()
        + """    classes_ : ndarray of shape (n_classes,)
        Class labels.
    intercept_ : ndarray of shape (n_outputs,)
        Output intercept (one output for two classes, else one per class).

    See Also
    --------
    ConvexThreeLayerReLURegressor : The regressor counterpart.
    PathRegularizedReLUClassifier : Deeper sub-networks with path regularization.
    ConvexReLUClassifier : The two-layer exact program.

    Notes
    -----"""
        + _THREE_NOTES.format(
            vector_outputs=_VECTOR.format(
                what="more than two classes, where the multinomial loss couples the outputs"
            )
        )
        + """
    Examples
    --------
    >>> import numpy as np
    >>> from skconvex import ConvexThreeLayerReLUClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((40, 2))
    >>> y = X[:, 0] * X[:, 1] > 0
    >>> clf = ConvexThreeLayerReLUClassifier(n_arrangements=(4, 8), random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 2)
"""
    )

    _multi_output = False
    _y_numeric = False

    _parameter_constraints = {
        **_ThreeLayerBase._parameter_constraints,
        "loss": [StrOptions({"log_loss", "squared_error"})],
    }

    def __init__(
        self,
        alpha=1e-3,
        *,
        n_arrangements=(10, 16),
        width=2,
        gated=False,
        fit_intercept=True,
        loss="log_loss",
        solver="auto",
        solver_options=None,
        tol=1e-4,
        max_iter=1000,
        warm_start=False,
        dtype=None,
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.alpha = alpha
        self.n_arrangements = n_arrangements
        self.width = width
        self.gated = gated
        self.fit_intercept = fit_intercept
        self.loss = loss
        self.solver = solver
        self.solver_options = solver_options
        self.tol = tol
        self.max_iter = max_iter
        self.warm_start = warm_start
        self.dtype = dtype
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose


# ---------------------------------------------------------------------------
# Path-regularized estimators
# ---------------------------------------------------------------------------

_PATH_DOC = """
    Parameters
    ----------
    alpha : float, default=1e-3
        Regularization strength. The objective is the **mean** loss (weighted
        by ``sample_weight``) plus ``alpha`` times the sum of the
        :math:`\\ell_2` path norms of the sub-networks (see Notes).{alpha_scale} ``alpha=0`` needs ``solver="cvxpy"``: the default augmented
        Lagrangian solver certifies only ``alpha > 0`` and raises a
        ValueError for ``alpha=0``.
    n_arrangements : int, default=200
        Number of random sub-networks sampled; each distinct tuple of
        patterns (every node of the sub-network) and edge signs is one group
        of the program (two, one per output sign, for the exact program).
    depth : int, default=3
        Number of weight layers of every sub-network (output layer
        included), at least 3.
    width : int, default=2
        Children of every hidden node: a sub-network has ``width ** (depth -
        2)`` first-layer units and its last hidden layer one unit.
    gated : bool, default=False
        Solve the gated relaxation (the sampled sub-networks' patterns fixed
        at every layer, no cone constraints) instead of the exact program.
    fit_intercept : bool, default=True
        Give every first-layer unit a bias (a ones column appended to ``X``,
        penalized as a path from a constant input) and the output an
        unpenalized intercept.
"""

_PATH_ATTRIBUTES = """
    subnetwork_gates_ : tuple of ndarray
        The sampled sub-networks (the groups): first-layer weights of shape
        ``(n_groups, n_leaves, n_features + fit_intercept)``, then the edge
        weights of every upper level.
    convex_weights_ : ndarray of shape (n_features + fit_intercept, n_columns, n_outputs)
        The convex solution: column ``(g * 2 + a) * n_leaves + j`` holds leaf
        ``j`` of group ``g`` with output sign ``(+1, -1)[a]`` (exact), column
        ``g * n_leaves + j`` (gated).
    group_norms_ : ndarray of shape (n_groups, n_signs, n_outputs)
        Path norm of every candidate sub-network (``n_signs`` is 2 for the
        exact program, 1 for the gated one): the group sparsity of the
        program, zero for the sub-networks it did not select.
    leaf_weights_ : ndarray of shape (n_subnetworks, n_leaves, n_features)
        First-layer weights of the recovered sub-networks (unit norm with
        the bias).
    leaf_intercepts_ : ndarray of shape (n_subnetworks, n_leaves)
        First-layer biases (zeros when ``fit_intercept=False``).
    edge_weights_ : tuple of ndarray
        Weights of shape ``(n_subnetworks, width ** (depth - k))`` of the
        edges into the nodes of level ``k = 2, ..., depth - 1``.
    output_weights_ : ndarray of shape (n_subnetworks, n_outputs)
        Output weights (one non-zero entry each).
    subnetwork_groups_ : ndarray of shape (n_subnetworks,)
        Group (sampled sub-network) of every recovered sub-network.
    path_norms_ : ndarray of shape (n_subnetworks,)
        :math:`\\ell_2` path norm of every recovered sub-network.
    n_subnetworks_ : int
        Number of recovered sub-networks.
    objective_ : float
        Objective of the convex program at the solution.
    nonconvex_objective_ : float
        Mean loss of the recovered network plus ``alpha`` times its path
        norms (equal to ``objective_``).
    dual_gap_ : float
        Certified duality gap (float64).
    constraint_violation_ : float
        Relative violation of the cone constraints at the solution (0 up to
        rounding; 0 for the gated program).
    solver_ : str
        The solver that ran.
    n_iter_ : int
        Solver iterations.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column names.
"""

_PATH_NOTES = """
    **Network and regularizer.** Parallel ReLU sub-networks
    :math:`f(x) = \\sum_k w_{{L,k}}\\, (z_k(x))_+ + b`, each a deep ReLU network
    with one unit in its last hidden layer. Sub-network :math:`k` is
    regularized by its :math:`\\ell_2` path norm
    :math:`R_k = (\\sum_{{\\text{{paths}}}} \\prod_{{\\text{{edges}}}} w^2)^{{1/2}}`
    (the product of the squared weights along every input-to-output path,
    the ones column included); the objective is
    :math:`\\sum_j s_j \\ell(f(x_j), y_j) + \\alpha\\sum_k R_k`. Our
    definition (design notes, open item O5: the paper's definition for
    general depth and width could not be checked). For depth 3,
    :math:`R_k = (\\sum_j \\|w_{{1kj}}\\|^2 w_{{2kj}}^2)^{{1/2}} |w_{{3k}}|`.

    **Convex program** (our derivation, proved by the tests). Splitting a
    hidden unit into one copy per outgoing edge changes neither the function
    nor the path norm, so sub-networks are trees; fixing the patterns of all
    nodes, the path variables :math:`p_\\ell = w_{{1\\ell}}\\prod|w|` of the
    leaves (first-layer weights times the magnitudes of the edges above)
    make the predictions linear and the path norm :math:`\\|P\\|_F`:

    .. math:: \\min_P\\ \\sum_j s_j\\ell\\Big(\\sum_\\gamma s_{{3}} \\sum_\\ell
              \\epsilon_\\ell \\Big(\\prod_k D_{{k}}\\Big) \\tilde X p_{{\\gamma\\ell}} + b,\\ y\\Big)_j
              + \\alpha \\sum_\\gamma \\|P_\\gamma\\|_F

    with :math:`\\epsilon_\\ell` the product of the edge signs on the path,
    subject to one cone constraint per node and level (the node's
    pre-activation, a signed masked sum of its leaves, has its sampled
    pattern; :class:`~skconvex.programs.nested_cones.NestedConeProblem`). Groups
    :math:`\\gamma` are the sampled tuples (patterns of every node and edge
    signs) with both output signs :math:`s_3`. A non-zero group becomes the
    sub-network with leaves :math:`p/\\|p\\|`, first edges
    :math:`\\epsilon\\|p\\|`, upper edges :math:`\\pm 1` and output weight
    :math:`s_3`, whose path norm is :math:`\\|P_\\gamma\\|_F` and which
    reproduces the convex predictions. Group sparsity is sparsity over
    whole sub-networks (``group_norms_``). With all realizable tuples the
    optimum is the global minimum over parallel networks of this
    architecture; with sampled tuples it is the minimum over networks whose
    sub-networks realize sampled tuples. Several outputs: each sub-network
    feeds one output.

    ``gated=True`` fixes the sampled sub-networks' patterns as gates at
    every layer (no cone constraints): a group lasso with one Frobenius
    group per sub-network, a lower bound of the exact program.
    {vector_outputs}
    References
    ----------
    T. Ergen and M. Pilanci. Path regularization: a convexity and sparsity
    inducing regularization for parallel ReLU networks. ICLR 2023,
    arXiv:2110.09548.
"""


class _PathBase(_DeepReLUBase):
    """Fit, recovery and prediction of path-regularized parallel networks."""

    _parameter_constraints = {
        **_DeepReLUBase._parameter_constraints,
        "n_arrangements": [Interval(Integral, 1, None, closed="left")],
        "depth": [Interval(Integral, 3, None, closed="left")],
        "width": [Interval(Integral, 1, None, closed="left")],
    }

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the network by solving its convex program.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Row weights; the loss is their weighted mean.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        solver, options = self._solver_plan()
        X, y, sw = self._validate_fit_data(
            X, y, sample_weight, multi_output=self._multi_output, y_numeric=self._y_numeric
        )
        Y, datafit = self._encode_targets(y)
        dtype = _as_dtype(self.dtype, X)
        X_aug = augment(X.astype(dtype, copy=False), self.fit_intercept)
        arr = self._subnetworks(X_aug, sw, 0, self.n_arrangements, self.depth, self.width)
        self._sampled = {
            "gates": arr.gates[:, :0],
            "leaf_weights": arr.leaf_weights,
            "edge_weights": arr.edge_weights,
        }
        problem, _ = _path_program(
            X_aug,
            arr,
            Y,
            datafit,
            sw,
            self.alpha * self._alpha_scale(Y, sw),
            gated=self.gated,
            fit_intercept=self.fit_intercept,
            dtype=dtype,
        )
        result = self._solve(problem, solver, options)
        net = _recover_path(result.coef, arr, self.gated)
        W = np.asarray(result.coef, dtype=np.float64).copy()
        d, B, C = W.shape
        A = 1 if self.gated else 2
        Wr = W.reshape(d, arr.n_patterns, A, arr.n_leaves, C)
        # Groups dropped as numerically zero are zeroed in the stored
        # solution too, so that objective_ and the network agree.
        keep = np.zeros(net["group_norms"].shape, bool)
        if len(net["subnetwork"]):
            top = net["group_norms"].max()
            keep = net["group_norms"] > 1e-10 * top
        Wr *= keep[None, :, :, None, :]
        W = Wr.reshape(d, B, C)
        n_features = X.shape[1]
        self.subnetwork_gates_ = (arr.leaf_weights,) + tuple(arr.edge_weights)
        self.convex_weights_ = W
        self.group_norms_ = np.where(keep, net["group_norms"], 0.0)
        leaves = net["leaf_weights"]
        self.leaf_weights_ = leaves[:, :, :n_features]
        self.leaf_intercepts_ = (
            leaves[:, :, n_features] if self.fit_intercept else np.zeros(leaves.shape[:2])
        )
        self.edge_weights_ = net["edge_weights"]
        self.output_weights_ = net["output"]
        self.subnetwork_groups_ = net["subnetwork"]
        self.n_subnetworks_ = int(len(net["subnetwork"]))
        self.path_norms_ = _path_norms(leaves, self.edge_weights_, self.output_weights_)
        X64 = np.asarray(problem.operator.X, dtype=np.float64)

        def objective_net(b):
            out = self._forward_augmented(X64, b)
            return problem.datafit.value(out, problem.y, problem.sample_weight) + problem.alpha * float(
                self.path_norms_.sum()
            )

        b = self._finish(problem, result, W, objective_net)
        self._set_intercept(b)
        return self

    def _forward_augmented(self, X_aug, intercept):
        leaves = self.leaf_weights_
        if self.fit_intercept:
            leaves = np.concatenate([leaves, self.leaf_intercepts_[:, :, None]], axis=2)
        gates = None
        if self.gated:
            patterns = compute_subnetwork_patterns(
                X_aug, self.subnetwork_gates_[0], self.subnetwork_gates_[1:]
            )
            gates = [p[:, self.subnetwork_groups_] for p in patterns]
        return _tree_forward(
            X_aug,
            leaves.astype(X_aug.dtype, copy=False),
            tuple(e.astype(X_aug.dtype, copy=False) for e in self.edge_weights_),
            self.output_weights_.astype(X_aug.dtype, copy=False),
            np.atleast_1d(intercept),
            gates,
        )

    def _network_output(self, X):
        return self._forward_augmented(augment(X, self.fit_intercept), self.intercept_)


class PathRegularizedReLURegressor(RegressionTargets, RegressorMixin, _PathBase):
    __doc__ = (
        """Parallel deep ReLU regressor with path regularization, trained to global optimality.

    Squared error plus the :math:`\\ell_2` path norms of parallel deep ReLU
    sub-networks, solved as the group-sparse convex program of Ergen &
    Pilanci (2023) over sampled sub-network pattern tuples with a certified
    duality gap; the selected sub-networks are recovered and predict.
"""
        + _PATH_DOC.format(
            alpha_scale=" It is multiplied by the standard deviation of ``y``."
        ).rstrip("\n")
        + """
    loss : {"squared_error"}, default="squared_error"
        Data-fitting term: half the squared error, averaged over samples."""
        + _SOLVER_DOC.format(working_set="").rstrip("\n")
        + """

    Attributes
    ----------"""
        + _PATH_ATTRIBUTES
        + """    n_outputs_ : int
        Number of outputs.
    intercept_ : float or ndarray of shape (n_outputs,)
        Output intercept (a float for one-dimensional ``y``).

    See Also
    --------
    PathRegularizedReLUClassifier : The classifier counterpart.
    ConvexThreeLayerReLURegressor : Three-layer sub-networks with weight decay.

    Notes
    -----"""
        + _PATH_NOTES.format(vector_outputs="")
        + """
    Examples
    --------
    >>> import numpy as np
    >>> from skconvex import PathRegularizedReLURegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((40, 2))
    >>> y = np.abs(X[:, 0]) - np.maximum(X[:, 1], 0)
    >>> reg = PathRegularizedReLURegressor(n_arrangements=50, random_state=0).fit(X, y)
    >>> bool(abs(reg.nonconvex_objective_ - reg.objective_) <= 1e-8 * reg.objective_)
    True
"""
    )

    _multi_output = True
    _y_numeric = True

    _parameter_constraints = {
        **_PathBase._parameter_constraints,
        "loss": [StrOptions({"squared_error"})],
    }

    def __init__(
        self,
        alpha=1e-3,
        *,
        n_arrangements=200,
        depth=3,
        width=2,
        gated=False,
        fit_intercept=True,
        loss="squared_error",
        solver="auto",
        solver_options=None,
        tol=1e-4,
        max_iter=1000,
        warm_start=False,
        dtype=None,
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.alpha = alpha
        self.n_arrangements = n_arrangements
        self.depth = depth
        self.width = width
        self.gated = gated
        self.fit_intercept = fit_intercept
        self.loss = loss
        self.solver = solver
        self.solver_options = solver_options
        self.tol = tol
        self.max_iter = max_iter
        self.warm_start = warm_start
        self.dtype = dtype
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class PathRegularizedReLUClassifier(ClassificationTargets, ClassifierMixin, _PathBase):
    __doc__ = (
        """Parallel deep ReLU classifier with path regularization, trained to global optimality.

    Logistic loss for two classes, multinomial cross-entropy for more, plus
    the :math:`\\ell_2` path norms of parallel deep ReLU sub-networks, solved
    as the group-sparse convex program of Ergen & Pilanci (2023) over
    sampled sub-network pattern tuples with a certified duality gap.
"""
        + _PATH_DOC.format(alpha_scale="").rstrip("\n")
        + """
    loss : {"log_loss", "squared_error"}, default="log_loss"
        ``"log_loss"``: logistic / multinomial cross-entropy (gives
        ``predict_proba``); ``"squared_error"``: squared error on +-1 or
        one-hot targets."""
        + _SOLVER_DOC.format(working_set="").rstrip("\n")
        + """

    Attributes
    ----------"""
        + _PATH_ATTRIBUTES
        + """    classes_ : ndarray of shape (n_classes,)
        Class labels.
    intercept_ : ndarray of shape (n_outputs,)
        Output intercept (one output for two classes, else one per class).

    See Also
    --------
    PathRegularizedReLURegressor : The regressor counterpart.
    ConvexThreeLayerReLUClassifier : Three-layer sub-networks with weight decay.

    Notes
    -----"""
        + _PATH_NOTES.format(vector_outputs="")
        + """
    Examples
    --------
    >>> import numpy as np
    >>> from skconvex import PathRegularizedReLUClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((40, 2))
    >>> clf = PathRegularizedReLUClassifier(n_arrangements=50, random_state=0)
    >>> clf.fit(X, X[:, 0] * X[:, 1] > 0).predict(X[:3]).shape
    (3,)
"""
    )

    _multi_output = False
    _y_numeric = False

    _parameter_constraints = {
        **_PathBase._parameter_constraints,
        "loss": [StrOptions({"log_loss", "squared_error"})],
    }

    def __init__(
        self,
        alpha=1e-3,
        *,
        n_arrangements=200,
        depth=3,
        width=2,
        gated=False,
        fit_intercept=True,
        loss="log_loss",
        solver="auto",
        solver_options=None,
        tol=1e-4,
        max_iter=1000,
        warm_start=False,
        dtype=None,
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.alpha = alpha
        self.n_arrangements = n_arrangements
        self.depth = depth
        self.width = width
        self.gated = gated
        self.fit_intercept = fit_intercept
        self.loss = loss
        self.solver = solver
        self.solver_options = solver_options
        self.tol = tol
        self.max_iter = max_iter
        self.warm_start = warm_start
        self.dtype = dtype
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose


# ---------------------------------------------------------------------------
# Parallel deep linear networks
# ---------------------------------------------------------------------------


def _centered(X, Y, s, fit_intercept):
    """Weighted centering (the optimal intercept of a linear model is minimized out)."""
    if not fit_intercept:
        return X, Y, np.zeros(X.shape[1]), np.zeros(Y.shape[1])
    x_mean, y_mean = s @ X, s @ Y
    return X - x_mean, Y - y_mean, x_mean, y_mean


def _svt(M, threshold):
    """Singular-value soft-thresholding :math:`U(\\Sigma - t)_+V^\\top`."""
    U, sv, Vt = np.linalg.svd(M, full_matrices=False)
    return (U * np.maximum(sv - threshold, 0.0)) @ Vt


def _orthogonal_design(X, s, rtol=1e-10):
    """The scale ``c`` when :math:`X^\\top S X = cI`, else None."""
    gram = (X * s[:, None]).T @ X
    c = float(np.trace(gram)) / gram.shape[0] if gram.size else 0.0
    if c <= 0 or np.abs(gram - c * np.eye(gram.shape[0])).max() > rtol * c:
        return None
    return c


class ParallelDeepLinearRegressor(RegressionTargets, RegressorMixin, BaseConvexNetwork):
    """Parallel deep linear regressor trained to global optimality (nuclear-norm program).

    A sum of deep linear branches :math:`f(x) = \\sum_k x^\\top W_{1k}W_{2k}\\cdots
    W_{Lk} + b` with the regularizer below is exactly the nuclear-norm
    regression :math:`\\min_W \\text{loss}(XW) + \\alpha\\|W\\|_*`, solved by
    proximal gradient with singular-value thresholding (or in closed form
    for an orthogonal design) with a certified duality gap; the branches are
    recovered from the SVD of the solution (Wang, Ergen & Pilanci, 2023).

    Parameters
    ----------
    alpha : float, default=1e-2
        Regularization strength, multiplied by the standard deviation of
        ``y``; the objective is the **mean** squared error plus ``alpha``
        times the regularizer (see Notes).
    depth : int, default=3
        Layers :math:`L \\ge 2` of every branch (the convex program does not
        depend on it; the recovered branches do).
    fit_intercept : bool, default=True
        Fit an unpenalized output intercept.
    solver : {"auto", "fista", "closed_form"}, default="auto"
        ``"fista"``: accelerated proximal gradient with singular-value
        thresholding (:func:`~skconvex.solvers.fista` on
        :class:`~skconvex.programs.penalties.GroupNuclear` with a single block).
        ``"closed_form"``: :math:`W = \\mathrm{SVT}_{\\alpha/c}(X^\\top S Y)/c`,
        valid when the (centered, weighted) design is orthogonal,
        :math:`X^\\top S X = cI`; a ``ValueError`` otherwise. ``"auto"`` uses
        the closed form when it applies and FISTA otherwise.
    tol : float, default=1e-6
        Stop when the certified duality gap is at most ``tol`` times the
        objective.
    max_iter : int, default=1000
        Maximum number of proximal-gradient iterations.
    verbose : int, default=0
        Solver progress.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,) or (n_outputs, n_features)
        End-to-end linear map :math:`W^\\top` of the network.
    intercept_ : float or ndarray of shape (n_outputs,)
        Output intercept.
    singular_values_ : ndarray of shape (`rank_`,)
        Non-zero singular values of :math:`W`, one per branch.
    rank_ : int
        Rank of :math:`W`, the number of branches.
    branches_ : list of list of ndarray
        The ``depth`` layers of every branch: ``(n_features, 1)`` (unit
        norm), ``(1, 1)`` (ones) for the middle layers, ``(1, 1)`` and
        ``(1, n_outputs)`` for the last two, whose weight decay is the
        branch's singular value.
    objective_ : float
        Objective of the nuclear-norm program at the solution.
    nonconvex_objective_ : float
        Objective of the recovered parallel network (equal to ``objective_``).
    dual_gap_ : float
        Certified duality gap (zero up to rounding for the closed form).
    solver_ : str
        The solver that ran.
    n_iter_ : int
        Solver iterations (1 for the closed form).
    n_outputs_ : int
        Number of outputs.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column names.

    See Also
    --------
    standard_deep_linear : The standard (non-parallel) network of the same depth.
    sklearn.linear_model.Ridge : Depth one, squared Frobenius penalty.

    Notes
    -----
    **Regularizer and exactness** (our normalization; design notes, open
    item O4: the paper's exact regularizer could not be checked). Branch
    :math:`k` is penalized by the product of its layer norms
    :math:`\\prod_l \\|W_{lk}\\|_F`, equivalently by the weight decay
    :math:`\\tfrac12(\\|W_{L-1,k}\\|_F^2 + \\|W_{Lk}\\|_F^2)` of its last two
    layers with :math:`\\|W_{lk}\\|_F \\le 1` for :math:`l \\le L-2` (rescaling
    the layers, which leaves the function unchanged). Since
    :math:`\\prod_l\\|W_{lk}\\|_F \\ge \\|W_{1k}\\cdots W_{Lk}\\|_* ` (Hölder for
    Schatten norms), any parallel network with end-to-end map :math:`W`
    pays at least :math:`\\|W\\|_*` (triangle inequality), and the SVD
    :math:`W = \\sum_k \\sigma_k a_k b_k^\\top` gives branches paying exactly
    :math:`\\sum_k\\sigma_k`. So, for every depth, training the parallel
    network is exactly

    .. math:: \\min_{W, b}\\ \\tfrac12\\sum_j s_j \\|W^\\top x_j + b - y_j\\|^2 + \\alpha\\|W\\|_*,

    its Lagrangian dual has no gap, and the ``rank_`` recovered branches
    are :math:`W_{1k} = a_k`, :math:`W_{L-1,k} = \\sqrt{\\sigma_k}`,
    :math:`W_{Lk} = \\sqrt{\\sigma_k}\\,b_k^\\top` (middle layers 1).

    A **standard** network of depth :math:`L \\ge 3` (one branch) with the
    same regularizer pays :math:`\\|W\\|_{S_{2/L}}`, a Schatten quasi-norm,
    for the same map: its training problem is non-convex, and since its
    dual is the same as the parallel network's, its duality gap is positive
    exactly when no nuclear-norm solution has rank one
    (:func:`standard_deep_linear`).

    References
    ----------
    Y. Wang, T. Ergen and M. Pilanci. Parallel deep neural networks have
    zero duality gap. ICLR 2023, arXiv:2110.06482.

    N. Srebro, J. Rennie and T. Jaakkola. Maximum-margin matrix
    factorization. NeurIPS 2004.

    Examples
    --------
    >>> import numpy as np
    >>> from skconvex import ParallelDeepLinearRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((50, 4))
    >>> Y = X @ rng.standard_normal((4, 3))
    >>> reg = ParallelDeepLinearRegressor(alpha=0.1).fit(X, Y)
    >>> reg.rank_ <= 3, len(reg.branches_[0])
    (True, 3)
    """

    _parameter_constraints = {
        "alpha": [Interval(Real, 0, None, closed="left")],
        "depth": [Interval(Integral, 2, None, closed="left")],
        "fit_intercept": ["boolean"],
        "solver": [StrOptions({"auto", "fista", "closed_form"})],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        alpha=1e-2,
        *,
        depth=3,
        fit_intercept=True,
        solver="auto",
        tol=1e-6,
        max_iter=1000,
        verbose=0,
    ):
        self.alpha = alpha
        self.depth = depth
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the parallel network by solving its nuclear-norm program.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Row weights; the loss is their weighted mean.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        X, y, sw = self._validate_fit_data(X, y, sample_weight, multi_output=True, y_numeric=True)
        Y, datafit = self._encode_targets(y)
        X = X.astype(np.float64, copy=False)
        alpha = self.alpha * self._alpha_scale(Y, sw)
        operator = PatternOperator(X, np.ones((X.shape[0], 1), dtype=bool), n_outputs=Y.shape[1])
        problem = ConvexProblem(
            operator, datafit, GroupNuclear(), Y, sw, alpha, fit_intercept=self.fit_intercept
        )
        Xc, Yc, _, _ = _centered(X, Y, sw, self.fit_intercept)
        c = _orthogonal_design(Xc, sw)
        solver = self.solver
        if solver == "closed_form" and c is None:
            raise ValueError(
                "solver='closed_form' needs an orthogonal design, X^T S X = c I for the "
                "(centered, weighted) training data; use solver='fista' or 'auto'."
            )
        if solver == "auto":
            solver = "fista" if c is None else "closed_form"
        if solver == "closed_form":
            W = _svt((Xc * sw[:, None]).T @ Yc / c, alpha / c)[:, None, :]
            cert, b, _ = problem.evaluate(W)
            result = Bunch(
                coef=W, intercept=b, objective=cert.primal, dual_objective=cert.dual,
                gap=cert.gap, relative_gap=cert.gap / max(abs(cert.primal), 1e-300),
                converged=True, n_iter=1,
            )
        else:
            result = solve_certified(problem, fista, tol=self.tol, max_iter=self.max_iter, verbose=self.verbose)
        self._report(result)
        self.solver_ = solver
        W = np.asarray(result.coef, dtype=np.float64)[:, 0, :]
        U, sv, Vt = np.linalg.svd(W, full_matrices=False)
        keep = sv > 1e-12 * sv.max() if sv.size and sv.max() > 0 else np.zeros(sv.shape, bool)
        U, sv, Vt = U[:, keep], sv[keep], Vt[keep]
        self.singular_values_ = sv
        self.rank_ = int(len(sv))
        root = np.sqrt(sv)
        self.branches_ = [
            [U[:, [k]]] + [np.ones((1, 1))] * (self.depth - 3) + [root[k] * np.ones((1, 1)), root[k] * Vt[[k]]]
            if self.depth >= 3
            else [root[k] * U[:, [k]], root[k] * Vt[[k]]]
            for k in range(self.rank_)
        ]
        W = (U * sv) @ Vt
        objective, b = problem.objective(W[:, None, :], result.intercept)
        self.objective_ = float(objective)
        self._set_outputs(W, b)
        out = self._branch_output(X) + b
        decay = sum(0.5 * (float(np.sum(br[-2] ** 2)) + float(np.sum(br[-1] ** 2))) for br in self.branches_)
        if self.depth == 2:
            decay = sum(0.5 * (float(np.sum(br[0] ** 2)) + float(np.sum(br[1] ** 2))) for br in self.branches_)
        self.nonconvex_objective_ = float(datafit.value(out, Y, sw) + alpha * decay)
        return self

    def _set_outputs(self, W, b):
        self.coef_ = W[:, 0] if self._y_1d else np.ascontiguousarray(W.T)
        self.intercept_ = float(b[0]) if self._y_1d else np.asarray(b, dtype=np.float64)

    def _branch_output(self, X):
        out = np.zeros((X.shape[0], self.n_outputs_))
        for branch in self.branches_:
            h = X @ branch[0]
            for layer in branch[1:]:
                h = h @ layer
            out += h
        return out

    def _network_output(self, X):
        return self._branch_output(np.asarray(X, dtype=np.float64)) + np.atleast_1d(self.intercept_)


def standard_deep_linear(
    X,
    y,
    *,
    depth=3,
    alpha=1e-2,
    fit_intercept=True,
    sample_weight=None,
    n_init=5,
    max_iter=2000,
    random_state=None,
):
    """Train the standard (non-parallel) deep linear network: the duality-gap baseline.

    The network :math:`f(x) = x^\\top W_1 W_2\\cdots W_L + b` (hidden widths
    :math:`\\min(d, C)`) with the regularizer of
    :class:`ParallelDeepLinearRegressor`, :math:`\\alpha\\prod_l \\|W_l\\|_F`,
    is trained by L-BFGS on the smooth equivalent
    :math:`\\tfrac{\\alpha}{L}\\sum_l \\|W_l\\|_F^L` (equal at balanced layers,
    which any minimizer has) from ``n_init`` random starts and from the
    balanced factorization of the nuclear-norm solution. Its training
    problem equals :math:`\\min_W \\text{loss}(XW) + \\alpha\\|W\\|_{S_{2/L}}`
    (a Schatten quasi-norm for :math:`L \\ge 3`), whose Lagrangian dual is the
    nuclear-norm program: the value of the parallel network is a lower bound
    and the difference is the duality gap that parallel architectures close.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Training data.
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Targets.
    depth : int, default=3
        Number of layers :math:`L \\ge 2`.
    alpha : float, default=1e-2
        Regularization strength, multiplied by the standard deviation of
        ``y`` (as in :class:`ParallelDeepLinearRegressor`).
    fit_intercept : bool, default=True
        Fit an unpenalized output intercept.
    sample_weight : array-like of shape (n_samples,), default=None
        Row weights (normalized to sum to one).
    n_init : int, default=5
        Random starts besides the one from the nuclear-norm solution.
    max_iter : int, default=2000
        L-BFGS iterations per start.
    random_state : int, RandomState instance or None, default=None
        Seed of the random starts.

    Returns
    -------
    result : Bunch
        ``objective`` (the best standard network found: an upper bound on
        the optimum of its training problem), ``layers`` (its ``depth``
        weight matrices), ``intercept``, ``parallel_objective`` (the
        nuclear-norm optimum: the parallel network's value and the dual
        value of the standard network's problem), ``gap`` (``objective -
        parallel_objective``) and ``parallel`` (the fitted
        :class:`ParallelDeepLinearRegressor`).

    Examples
    --------
    >>> import numpy as np
    >>> from skconvex import standard_deep_linear
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((60, 3))
    >>> Y = X @ np.diag([3.0, 2.0, 1.0])
    >>> res = standard_deep_linear(X, Y, depth=3, alpha=0.05, random_state=0)
    >>> bool(res.gap > 0)
    True
    """
    if isinstance(depth, bool) or not isinstance(depth, Integral) or depth < 2:
        raise ValueError(f"depth must be an integer >= 2, got {depth!r}.")
    if isinstance(n_init, bool) or not isinstance(n_init, Integral) or n_init < 0:
        raise ValueError(f"n_init must be a non-negative integer, got {n_init!r}.")
    if not isinstance(alpha, Real) or alpha < 0:
        raise ValueError(f"alpha must be a non-negative number, got {alpha!r}.")
    parallel = ParallelDeepLinearRegressor(
        alpha=alpha, depth=depth, fit_intercept=fit_intercept, tol=1e-10, max_iter=100000
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        parallel.fit(X, y, sample_weight=sample_weight)
    X = np.asarray(X, dtype=np.float64)
    s = _check_sample_weight(sample_weight, X, dtype=np.float64)
    s = s / s.sum()
    Y = np.asarray(y, dtype=np.float64).reshape(X.shape[0], -1)
    scale = parallel._alpha_scale(Y, s)
    a = alpha * scale
    Xc, Yc, x_mean, y_mean = _centered(X, Y, s, fit_intercept)
    d, C = X.shape[1], Y.shape[1]
    r = min(d, C)
    shapes = [(d, r)] + [(r, r)] * (depth - 2) + [(r, C)]
    sizes = [p * q for p, q in shapes]
    L = depth

    def unpack(theta):
        out, start = [], 0
        for shape, size in zip(shapes, sizes):
            out.append(theta[start : start + size].reshape(shape))
            start += size
        return out

    def fun(theta):
        layers = unpack(theta)
        prefix = [np.eye(d)]
        for layer in layers:
            prefix.append(prefix[-1] @ layer)
        W = prefix[-1]
        R = Xc @ W - Yc
        loss = 0.5 * float(np.sum(s[:, None] * R * R))
        norms = [float(np.linalg.norm(layer)) for layer in layers]
        value = loss + a / L * sum(nv**L for nv in norms)
        dW = (Xc * s[:, None]).T @ R
        grads = []
        suffix = np.eye(C)
        for l in range(L - 1, -1, -1):
            g = prefix[l].T @ dW @ suffix.T + a * norms[l] ** (L - 2) * layers[l]
            grads.append(g.ravel())
            suffix = layers[l] @ suffix
        return value, np.concatenate(grads[::-1])

    def objective(layers):
        W = np.linalg.multi_dot(layers) if len(layers) > 2 else layers[0] @ layers[1]
        R = Xc @ W - Yc
        return 0.5 * float(np.sum(s[:, None] * R * R)) + a * float(
            np.prod([np.linalg.norm(layer) for layer in layers])
        )

    rng = check_random_state(random_state)
    W0 = parallel.coef_.reshape(-1, d).T
    U, sv, Vt = np.linalg.svd(W0, full_matrices=False)
    root = np.diag(sv[:r] ** (1.0 / L))
    starts = [np.concatenate(
        [(U[:, :r] @ root).ravel()] + [root.ravel()] * (L - 2) + [(root @ Vt[:r]).ravel()]
    )]
    spread = (float(np.linalg.norm(W0)) + 1e-3) ** (1.0 / L) / np.sqrt(r)
    starts += [rng.standard_normal(sum(sizes)) * spread for _ in range(n_init)]
    best = None
    for theta0 in starts:
        res = minimize(fun, theta0, jac=True, method="L-BFGS-B", options={"maxiter": max_iter})
        layers = unpack(res.x)
        value = objective(layers)
        if best is None or value < best[0]:
            best = (value, layers)
    value, layers = best
    W = np.linalg.multi_dot(layers) if L > 2 else layers[0] @ layers[1]
    intercept = y_mean - x_mean @ W
    return Bunch(
        objective=value,
        layers=layers,
        intercept=intercept,
        parallel_objective=parallel.objective_,
        gap=value - parallel.objective_,
        parallel=parallel,
    )
