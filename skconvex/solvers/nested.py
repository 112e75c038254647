"""Solvers for programs with cone constraints on nested groups of columns.

:class:`~skconvex.programs.nested_cones.NestedConeProblem` (the exact programs of
parallel three-layer and path-regularized deep ReLU networks) couples the
columns of a node through its upper-level constraints, so the per-column
semismooth Newton method of :mod:`skconvex.solvers.auglag` does not apply.
Two solvers are provided:

* :func:`nested_augmented_lagrangian`: the augmented Lagrangian method with
  an accelerated proximal gradient inner solver (:func:`~skconvex.solvers.fista`)
  on the stacked map :math:`U \\mapsto (\\mathcal{A}U, \\mathcal{G}_1U, \\dots,
  \\mathcal{G}_LU)`: the same method as ``augmented_lagrangian(inner="fista")``
  with every constraint family in the penalty
  :math:`\\tfrac{1}{2\\rho}\\|(\\Lambda - \\rho\\,\\mathcal{G}U)_+\\|^2` and the
  multiplier update :math:`\\Lambda \\leftarrow (\\Lambda - \\rho\\,\\mathcal{G}U)_+`;
  every outer iterate is restored into all cones and certified;
* :func:`cvxpy_nested_solve`: the conic program through CVXPY (interior
  point; the accuracy reference on small problems).
"""

import numpy as np

from .._config import MemoryBudgetError
from ..programs.nested_cones import certify_nested
from ._al_newton import (
    _CG_RTOL,
    _AugmentedSubproblem,
    _blas_threads,
    _curvature_scale,
    _pcg,
    _StackedOperator,
    fista_al,
    newton_al,
)
from ._lowrank import BlockPlusLowRank, prediction_factor
from .auglag import check_positive_alpha
from .conic import cvxpy_solve

__all__ = ["nested_augmented_lagrangian", "cvxpy_nested_solve"]


class _NestedStacked(_StackedOperator):
    """:math:`U \\mapsto [\\mathcal{A}U, \\mathcal{G}U]` of shape ``(n, C + K)`` and its adjoint.

    The nested constraints in the flat layout of
    :meth:`~skconvex.programs.nested_cones.NestedConeProblem.flat_values`.
    """

    def __init__(self, problem):
        self.problem = problem
        self.base = problem.operator
        self.coef_shape = self.base.coef_shape
        self.dtype = self.base.dtype
        C = self.coef_shape[2]
        self.n_outputs = C + sum(s[1] * s[2] for s in problem.multiplier_shapes())

    def forward(self, W):
        Z = self.base.product(W)
        return np.concatenate([self.base.reduce(Z), self.problem.flat_values(Z)], axis=1)

    def adjoint(self, R):
        C = self.coef_shape[2]
        return self.problem.nested_adjoint(R[:, :C], R[:, C:])


def nested_augmented_lagrangian(
    problem,
    *,
    coef_init=None,
    intercept_init=None,
    multipliers_init=None,
    tol=1e-6,
    max_iter=None,
    inner="newton-cg",
    sigma=None,
    rho=None,
    growth=None,
    max_outer=100,
    verbose=0,
):
    """Solve a nested cone program by an augmented Lagrangian method.

    Parameters
    ----------
    problem : NestedConeProblem
        The program; its penalty is
        :class:`~skconvex.programs.penalties.ColumnGroupL2` or
        :class:`~skconvex.programs.penalties.ColumnBlockL2`.
    coef_init : ndarray of shape problem.coef_shape, default=None
        Starting point (zeros when None).
    intercept_init : ndarray of shape (n_outputs,), default=None
        Warm start of the intercept.
    multipliers_init : ndarray of shape (n_samples, n_constraint_columns), default=None
        Starting multipliers in the flat layout of
        :meth:`~skconvex.programs.nested_cones.NestedConeProblem.flat_values`.
    tol : float, default=1e-6
        Stop when the certified relative gap of the best restored
        (feasible) point is at most ``tol`` (the rule of
        :func:`~skconvex.solvers.auglag.augmented_lagrangian`, whose engine
        this solver shares).
    max_iter : int, default=None
        Total budget of inner iterations: Newton steps (default 500) or FISTA
        iterations (default 20000).
    inner : {"newton-cg", "fista"}, default="newton-cg"
        ``"newton-cg"``: the group penalty enters the augmented Lagrangian
        through the splitting :math:`U = Q` (multiplier :math:`\\Gamma`,
        penalty :math:`\\sigma`), leaving the smooth, piecewise twice
        differentiable

        .. math::
            \\phi(U) = f(U) + \\sigma\\, e_{\\alpha/\\sigma}(U + \\Gamma/\\sigma)
            + \\tfrac{1}{2\\rho}\\|(\\Lambda - \\rho\\,\\mathcal{G}U)_+\\|^2

        (:math:`e_\\tau` the Moreau envelope of :math:`\\tau R`), minimized by
        semismooth Newton steps whose systems are solved by conjugate
        gradient with the Hessian's diagonal as preconditioner (Hessian
        products cost two products with the data: the upper-level
        constraints couple the columns of a node, so the per-column block
        factorization of :func:`~skconvex.solvers.auglag.augmented_lagrangian`
        does not apply). ``"fista"``: accelerated proximal gradient on the
        subproblems with only the cones in the augmented Lagrangian (cheap
        iterations, slow for tight tolerances).
    sigma : float, default=None
        Starting splitting penalty (Newton only); by default the datafit's
        curvature :math:`L_F\\lambda_{\\max}(X^\\top S X)`.
    rho : float, default=None
        Starting cone penalty; by default that curvature divided by the mean
        squared row norm (Newton) or the curvature per unit weight (FISTA).
    growth : float, default=None
        Factor applied to a penalty when its residual falls by less than a
        factor 4 in one outer iteration (default 10 for Newton, 3 for FISTA).
    max_outer : int, default=100
        Maximum number of multiplier updates.
    verbose : int, default=0
        1 prints one line per outer iteration, 2 also the inner iterations.

    Returns
    -------
    result : SolveResult
        The best feasible point found, its objective, the best certified
        lower bound and ``constraint_violation`` of the returned point (0 up
        to rounding); ``info`` holds the last flat ``multipliers`` and the
        penalties.

    Notes
    -----
    With :math:`(\\Theta, \\Lambda) = c\\,(-\\nabla F, \\Lambda^+)` for the
    multipliers :math:`\\Lambda^+` after an update, the dual of the program
    (:mod:`skconvex.programs.nested_cones`) certifies every outer iterate; its primal
    point is restored into all cones
    (:meth:`~skconvex.programs.nested_cones.NestedConeProblem.restore`).

    References
    ----------
    J. Nocedal and S. J. Wright. Numerical Optimization, 2nd ed., Springer,
    2006, Section 17.4.
    X. Li, D. Sun and K.-C. Toh. A highly efficient semismooth Newton
    augmented Lagrangian method for solving Lasso problems. SIAM J. Optim.,
    28(1), 2018.

    Examples
    --------
    >>> import numpy as np
    >>> from skconvex.programs.datafits import SquaredError
    >>> from skconvex.programs.nested_cones import NestedConeProblem
    >>> from skconvex.programs.operators import PatternOperator
    >>> from skconvex.programs.penalties import ColumnGroupL2
    >>> from skconvex.solvers.nested import nested_augmented_lagrangian
    >>> rng = np.random.default_rng(0)
    >>> X = np.c_[rng.standard_normal((20, 2)), np.ones(20)]
    >>> gates = rng.standard_normal((3, 2))
    >>> D1 = X @ gates >= 0
    >>> D2 = np.ones((20, 1), dtype=bool)
    >>> problem = NestedConeProblem(PatternOperator(X, D1), SquaredError(), ColumnGroupL2(),
    ...     np.abs(X[:, :1]), np.full(20, 0.05), 0.01, cone_patterns=D1,
    ...     levels=[(2, D2, D1 * 1.0)], interior=gates, directions=gates)
    >>> result = nested_augmented_lagrangian(problem, tol=1e-6)
    >>> bool(result.converged), result.constraint_violation <= 1e-12
    (True, True)
    """
    check_positive_alpha(problem.alpha)
    if inner not in ("newton-cg", "fista"):
        raise ValueError(f"inner must be 'newton-cg' or 'fista', got {inner!r}.")
    problem = problem.astype(np.float64)
    if inner == "fista":
        return fista_al(
            _NestedCones(problem), coef_init, intercept_init, multipliers_init, tol=tol,
            max_iter=20000 if max_iter is None else max_iter, max_outer=max_outer, rho=rho,
            growth=3.0 if growth is None else growth, verbose=verbose,
        )
    family = _NestedCones(problem)
    with _blas_threads(problem.operator.n_samples * problem.coef_shape[2]):
        return newton_al(
            family, coef_init, intercept_init, multipliers_init, tol=tol,
            max_iter=500 if max_iter is None else max_iter, max_outer=max_outer, sigma=sigma,
            rho=rho, growth=10.0 if growth is None else growth, verbose=verbose,
        )


# Truncated CG on the Newton systems preconditioned by the blocks alone, when
# the Woodbury system does not fit in memory: at most this many iterations.
_CG_MAXITER_BLOCKS = 50


def _top_size(problem):
    """Columns per top node (the sub-network): the last level's group size."""
    return problem.level_sizes[-1] if problem.level_sizes else 1


def _diagonal_blocks(M):
    """Writeable view ``(G, C, k, s, s)`` of the diagonal sub-blocks of ``M`` (``(G, C, k, s, k, s)``).

    Adding into it changes ``M`` in place, where fancy indexing would copy the
    sub-blocks out and back (a quarter of the block assembly's time on the
    three-layer spirals program).
    """
    return np.einsum("gcisit->gcist", M)


def _lift(W, m):
    """Flat columns ``(d, G m, C)`` to one lifted column per top node, ``(m d, G, C)``."""
    d, B, C = W.shape
    return W.reshape(d, B // m, m, C).transpose(2, 0, 1, 3).reshape(m * d, B // m, C)


def _unlift(U, m, d):
    """Inverse of :func:`_lift`."""
    D, G, C = U.shape
    return U.reshape(m, d, G, C).transpose(1, 2, 0, 3).reshape(d, G * m, C)


class _LiftedOperator:
    """The prediction map on lifted columns: top node ``g`` predicts with features ``F[:, :, g]``.

    ``F[:, j d + k, g] = m_{g m + j} x_k`` (the masks of its leaves times the
    data), the per-block features :class:`~skconvex.solvers._lowrank.BlockPlusLowRank`
    factorizes with.
    """

    def __init__(self, problem):
        op = problem.operator
        self.base = op
        d, B, C = op.coef_shape
        n = op.n_samples
        self.m = _top_size(problem)
        G = B // self.m
        X = np.asarray(op.X, dtype=np.float64)
        masks = np.asarray(op.masks, dtype=np.float64).reshape(n, G, self.m)
        self.features = np.ascontiguousarray(
            (masks[:, :, :, None] * X[:, None, None, :]).reshape(n, G, self.m * d).transpose(0, 2, 1)
        )
        self.coef_shape = (self.m * d, G, C)
        self.n_samples = n
        self.d = d

    def forward(self, U):
        return self.base.forward(_unlift(U, self.m, self.d))

    def adjoint(self, R):
        return _lift(np.asarray(self.base.adjoint(R), dtype=np.float64), self.m)


class _NewtonNested:
    """:math:`\\phi` of one outer iteration: value, gradient, Hessian products."""

    def __init__(self, family, gamma, lam, sigma, rho):
        self.problem = problem = family.problem
        self.row_gram = family.row_gram
        self.op = problem.operator
        self.gamma, self.lam = gamma, lam
        self.sigma, self.rho = float(sigma), float(rho)
        self.tau = problem.alpha / self.sigma
        self.m = family.m
        self.scale = family.h0
        # The penalty's groups are the family's.
        self.group_norms, self.expand = family.group_norms, family.expand

    def evaluate(self, U, intercept=None):
        p, op = self.problem, self.op
        Z = op.product(U)
        pred = op.reduce(Z)
        try:
            with np.errstate(over="raise", invalid="raise"):
                value, b, grad_f = p.smooth(pred, intercept)
        except (FloatingPointError, np.linalg.LinAlgError):
            return np.inf, None
        r = self.lam - self.rho * p.flat_values(Z)
        np.maximum(r, 0, out=r)
        V = U + self.gamma / self.sigma
        vn = self.group_norms(V)
        alpha = p.alpha
        huber = np.where(vn <= self.tau, 0.5 * self.sigma * vn**2, alpha * vn - 0.5 * alpha * self.tau)
        phi = value + float(huber.sum()) + float(np.vdot(r, r)) / (2 * self.rho)
        return phi, {"U": U, "Z": Z, "pred": pred, "b": b, "grad_f": grad_f, "r": r, "V": V, "vn": vn}

    def gradient(self, cache):
        vn = cache["vn"]
        with np.errstate(divide="ignore"):
            shrink = np.where(vn > 0, np.minimum(1.0, self.tau / np.where(vn > 0, vn, 1.0)), 1.0)
        G = self.problem.nested_adjoint(cache["grad_f"], -cache["r"])
        return G + self.sigma * cache["V"] * self.expand(shrink)

    def hessian(self, cache, ridge, damping):
        """Generalized Hessian at ``cache``: datafit factors and the envelope's radial data."""
        p = self.problem
        R, Q = prediction_factor(p, cache["pred"], cache["b"])
        vn = cache["vn"]
        outside = vn > self.tau
        env = np.where(outside, p.alpha / np.where(outside, vn, 1.0), self.sigma) + ridge
        # Along the radial direction of a group outside the envelope's ball the
        # envelope is flat; a little curvature is kept there (Levenberg-Marquardt).
        drop = np.where(outside, np.maximum(env - ridge - damping * self.scale, 0.0), 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            vhat = cache["V"] / self.expand(np.where(outside, vn, np.inf))
        active = (cache["r"] > 0).astype(np.float64)
        return R, Q, env, drop, vhat, active

    def blocks(self, parts, ridge):
        """The block-diagonal part of the Hessian, one ``(m d) x (m d)`` block per top node and output."""
        p = self.problem
        op = self.op
        d, B, C = p.coef_shape
        n = op.n_samples
        m = _top_size(p)
        G, D = B // m, m * d
        _, _, env, drop, vhat, active = parts
        X = np.asarray(op.X, dtype=np.float64)
        M = np.zeros((G, C, D, D))
        pm = self.m
        # Envelope: per penalty group, env I - drop vhat vhat^T.
        vg = vhat.reshape(d, B // pm, pm, C).transpose(1, 3, 2, 0).reshape(B // pm, C, pm * d)
        E = env[:, :, None, None] * np.eye(pm * d) - drop[:, :, None, None] * (
            vg[:, :, :, None] * vg[:, :, None, :]
        )
        if pm == m:
            M += E
        else:
            _diagonal_blocks(M.reshape(G, C, m, d, m, d))[...] += E.reshape(G, m, C, d, d).transpose(0, 2, 1, 3, 4)
        parts_active = p.split(active)
        # Column cones: rho sum_j a_j x_j x_j^T on the diagonal sub-blocks.
        a1 = parts_active[0] * (p.cone_signs**2)[:, :, None]
        K1 = (self.row_gram.T @ a1.reshape(n, B * C)).reshape(d, d, B, C).transpose(2, 3, 0, 1)
        _diagonal_blocks(M.reshape(G, C, m, d, m, d))[...] += self.rho * K1.reshape(G, m, C, d, d).transpose(
            0, 2, 1, 3, 4
        )
        # Node cones: rho sum_j a_j z_j z_j^T with lifted rows z_j = (e_jb x_j)_b.
        for size, signs, masks, a in zip(p.level_sizes, p.level_signs, p.level_masks, parts_active[1:]):
            N = B // size
            lifted = (masks.reshape(n, N, size)[:, :, :, None] * X[:, None, None, :]).reshape(
                n, N, size * d
            ).transpose(1, 0, 2)
            w = (a * (signs**2)[:, :, None]).transpose(1, 2, 0)
            # One batched GEMM per node and output (einsum's three-operand
            # contraction ran in C loops, 20x slower).
            K = np.matmul((lifted[:, None] * w[:, :, :, None]).transpose(0, 1, 3, 2), lifted[:, None])
            per = m // size
            _diagonal_blocks(M.reshape(G, C, per, size * d, per, size * d))[...] += self.rho * K.reshape(
                G, per, C, size * d, size * d
            ).transpose(0, 2, 1, 3, 4)
        scale = np.trace(M, axis1=2, axis2=3) / D
        np.einsum("gcii->gci", M)[...] += (ridge + 1e-12 * scale)[:, :, None]
        return M.reshape(G * C, D, D)

    def hessian_product(self, parts, v):
        p, op = self.problem, self.op
        d, B, C = p.coef_shape
        n = op.n_samples
        R, Q, env, drop, vhat, active = parts
        Z = op.product(v)
        pred = np.asarray(op.reduce(Z), dtype=np.float64)
        h = np.einsum("jab,jb->ja", R, pred).reshape(n * C)
        if Q.shape[1]:
            h -= Q @ (Q.T @ h)
        w = np.einsum("jab,ja->jb", R, h.reshape(n, C))
        out = np.asarray(p.nested_adjoint(w, self.rho * active * p.flat_values(Z)), dtype=np.float64)
        radial = np.einsum("dgmc,dgmc->gc", vhat.reshape(d, -1, self.m, C), v.reshape(d, -1, self.m, C))
        out += self.expand(env) * v - self.expand(drop * radial) * vhat
        return out


class _NestedCones:
    """The nested cones of the three-layer and path-regularized programs, for the engine of :mod:`._al_newton`.

    The constraints are flat columns (:meth:`NestedConeProblem.flat_values`),
    the penalty's groups hold ``group_size`` columns, and a node's upper-level
    constraints couple its columns: each Newton system is block diagonal over
    the top nodes (one ``(m d) x (m d)`` block per node and output, on lifted
    columns) plus the datafit's low-rank term.
    """

    label = "nested auglag"
    solver = "nested-auglag"
    matrix_free = False

    def __init__(self, problem):
        self.problem = problem
        op = problem.operator
        n = op.n_samples
        self.d = problem.coef_shape[0]
        self.n_cols = sum(sh[1] * sh[2] for sh in problem.multiplier_shapes())
        self.m = int(getattr(problem.penalty, "group_size", 1))
        self.h0 = None
        self.lifted = None
        X = np.asarray(op.X, dtype=np.float64)
        self.row_gram = (X[:, :, None] * X[:, None, :]).reshape(n, self.d * self.d)
        self.X = X

    def scales(self):
        """Curvature scale ``h0`` of the datafit and the mean squared norm of the weighted rows."""
        X = self.X
        weighted = self.problem.sample_weight > 0
        row_sq = float(np.mean(np.einsum("nd,nd->n", X[weighted], X[weighted]))) if weighted.any() else 1.0
        self.h0 = _curvature_scale(self.problem)
        return self.h0, row_sq

    def initial_multipliers(self, multipliers_init):
        """Starting flat multipliers: zeros or ``multipliers_init`` clipped at 0."""
        n = self.problem.operator.n_samples
        if multipliers_init is None:
            return np.zeros((n, self.n_cols))
        return np.maximum(np.asarray(multipliers_init, dtype=np.float64).reshape(n, self.n_cols), 0)

    def joint_adjoint(self, grad, multipliers):
        return self.problem.nested_adjoint(grad, multipliers)

    def group_norms(self, W):
        d, B, C = W.shape
        Wg = W.reshape(d, B // self.m, self.m, C)
        return np.sqrt(np.einsum("dgmc,dgmc->gc", Wg, Wg))

    def expand(self, x):
        """Per-group values (G, C) broadcast to the columns, shape (1, B, C)."""
        return np.repeat(x, self.m, axis=0)[None]

    def certify(self, W, b, multipliers, Z=None):
        split = None if multipliers is None else self.problem.split(multipliers)
        return certify_nested(self.problem, W, b, split, Z)

    def constraint_values(self, Z):
        return self.problem.flat_values(Z)

    def refine(self, grad, multipliers):
        # No column-by-column refinement: the node cones couple the columns.
        return None

    def fista_subproblem(self, multipliers, rho):
        return _AugmentedSubproblem(self.problem, multipliers, rho, stacked=_NestedStacked(self.problem))

    def newton_subproblem(self, gamma, multipliers, sigma, rho):
        if self.h0 is None:
            self.scales()
        return _NewtonNested(self, gamma, multipliers, sigma, rho)

    def hessian(self, sub, cache, ridge, damping):
        return sub.hessian(cache, ridge, damping)

    def factorize(self, sub, parts, hess, g):
        """Solve of the Newton system (Woodbury on lifted columns) and the direction for ``g``.

        When the Woodbury system does not fit in memory the blocks alone
        precondition truncated CG, whose result is the direction.
        """
        if self.lifted is None:
            self.lifted = _LiftedOperator(self.problem)
        lifted, d, C = self.lifted, self.d, self.problem.coef_shape[2]
        m_top = lifted.m
        M = sub.blocks(parts, 1e-10 * self.h0)
        try:
            factor = BlockPlusLowRank(lifted, parts[0], parts[1], M)
        except MemoryBudgetError:
            M_inv = np.linalg.inv(M)

            def solve(r):
                cols = _lift(r, m_top).transpose(1, 2, 0).reshape(-1, m_top * d, 1)
                out = np.matmul(M_inv, cols).reshape(r.shape[1] // m_top, C, m_top * d)
                return _unlift(out.transpose(2, 0, 1), m_top, d)

            direction = _pcg(hess, solve, -g, _CG_RTOL, _CG_MAXITER_BLOCKS, return_last=True)
            return solve, solve(-g) if direction is None else direction

        def solve(r):
            return _unlift(factor.solve(_lift(r, m_top)), m_top, d)

        return solve, solve(-g)


def cvxpy_nested_solve(problem, *, solver="CLARABEL", solver_options=None, verbose=0):
    """Solve a nested cone program with CVXPY and certify the answer.

    The constraints of every family come from
    :meth:`~skconvex.programs.nested_cones.NestedConeProblem.cvxpy_constraints`; their
    dual values are the multipliers of the certificate, and the returned
    point is moved exactly into all cones
    (:meth:`~skconvex.programs.nested_cones.NestedConeProblem.restore`).

    Parameters
    ----------
    problem : NestedConeProblem
        The program.
    solver : str, default="CLARABEL"
        An installed CVXPY solver handling the program's cones.
    solver_options : dict, default=None
        Keyword arguments for the solver.
    verbose : int, default=0
        Forwarded to CVXPY as ``verbose=verbose > 1``.

    Returns
    -------
    result : SolveResult
        Certified, with ``constraint_violation`` of the returned point and
        ``info["solver_violation"]`` that of the solver's own point.

    Raises
    ------
    SolverError
        If the solver fails or reports an infeasible or unbounded program.
    """
    captured = []

    def builder(W_vars):
        constraints = problem.cvxpy_constraints(W_vars)
        captured.extend(constraints)
        return constraints

    result = cvxpy_solve(
        problem,
        solver=solver,
        solver_options=solver_options,
        verbose=verbose,
        constraints_builder=builder,
    )
    multipliers = problem.multipliers_from_cvxpy(captured)
    del captured
    coef, cert, b, violation, after = certify_nested(
        problem.astype(np.float64), result.coef.astype(np.float64), result.intercept, multipliers
    )
    result.coef, result.intercept = coef, b
    result.objective, result.dual_objective = cert.primal, cert.dual
    result.constraint_violation = after
    result.info["solver_violation"] = violation
    result.n_products += 3
    return result
