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

import time

import numpy as np

from .._config import MemoryBudgetError
from ..programs.nested_cones import certify_nested
from ..programs.problem import ConvexProblem
from ._al_newton import (
    _armijo_step,
    _AugmentedDatafit,
    _AugmentedSubproblem,
    _gradient_shrinking_step,
    _next_damping,
    _pcg,
    _PenaltySchedule,
    _print_newton_step,
    _start_step,
)
from ._lowrank import BlockPlusLowRank, prediction_factor
from ._result import SolveResult
from .auglag import check_positive_alpha
from .conic import cvxpy_solve
from .fista import fista

__all__ = ["nested_augmented_lagrangian", "cvxpy_nested_solve"]


class _NestedStacked:
    """:math:`U \\mapsto [\\mathcal{A}U, \\mathcal{G}U]` of shape ``(n, C + K)`` and its adjoint."""

    def __init__(self, problem):
        self.problem = problem
        self.base = problem.operator
        self.coef_shape = self.base.coef_shape
        self.dtype = self.base.dtype
        C = self.coef_shape[2]
        self.n_outputs = C + sum(s[1] * s[2] for s in problem.multiplier_shapes())

    @property
    def n_samples(self):
        return self.base.n_samples

    def forward(self, W):
        Z = self.base.product(W)
        return np.concatenate([self.base.reduce(Z), self.problem.flat_values(Z)], axis=1)

    def adjoint(self, R):
        C = self.coef_shape[2]
        return self.problem.nested_adjoint(R[:, :C], R[:, C:])

    def lipschitz(self, sample_weight=None, *, curvature=1.0, rho=1.0, n_iter=5, random_state=0):
        rng = np.random.default_rng(random_state)
        W = rng.standard_normal(self.coef_shape).astype(self.dtype)
        W /= np.linalg.norm(W)
        C = self.coef_shape[2]
        s = np.ones(self.n_samples) if sample_weight is None else np.asarray(sample_weight)
        s = (curvature * s).astype(self.dtype)
        value = 0.0
        for _ in range(n_iter):
            R = self.forward(W)
            R[:, :C] *= s[:, None]
            R[:, C:] *= self.dtype.type(rho)
            V = self.adjoint(R)
            value = float(np.linalg.norm(V))
            if value == 0.0:
                return 0.0
            W = V / value
        return value


class _NestedSubproblem(_AugmentedSubproblem):
    """One augmented-Lagrangian subproblem of a nested program (FISTA sees a composite program)."""

    def __init__(self, problem, multipliers, rho):
        C = problem.coef_shape[2]
        stacked = _NestedStacked(problem)
        lam = np.asarray(multipliers, dtype=problem.dtype)
        ConvexProblem.__init__(
            self,
            stacked,
            _AugmentedDatafit(problem.datafit, C, lam, rho),
            problem.penalty,
            problem.y,
            problem.sample_weight,
            problem.alpha,
            fit_intercept=problem.fit_intercept,
        )
        self.base = problem
        self.lam64 = lam.astype(np.float64)
        self.rho = float(rho)
        self.C = C
        self.n_outputs = stacked.n_outputs
        self.best_outer_dual = -np.inf


def _print(k, n_iter, primal, dual, violation, rho, t0):
    rel = (primal - dual) / max(abs(primal), np.finfo(float).tiny)
    print(
        f"[nested auglag] outer {k:3d}  inner iters {n_iter:6d}  objective {primal:.10g}  "
        f"rel. gap {rel:.3e}  violation {violation:.2e}  rho {rho:.2e}  "
        f"{time.perf_counter() - t0:.2f}s",
        flush=True,
    )


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
        Stop when the certified relative gap of the restored (feasible)
        point and the relative violation before restoring are both at most
        ``tol``.
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
    if inner == "fista":
        return _fista_nested(
            problem, coef_init, intercept_init, multipliers_init, tol=tol,
            max_iter=20000 if max_iter is None else max_iter, max_outer=max_outer, rho=rho,
            growth=3.0 if growth is None else growth, verbose=verbose,
        )
    return _newton_nested(
        problem, coef_init, intercept_init, multipliers_init, tol=tol,
        max_iter=500 if max_iter is None else max_iter, max_outer=max_outer, sigma=sigma,
        rho=rho, growth=10.0 if growth is None else growth, verbose=verbose,
    )


# CG on the Newton systems, preconditioned by the last factorization (relative
# residual, iterations before refactorizing), or by the blocks alone when the
# Woodbury system does not fit in memory (truncated).
_CG_RTOL = 0.1
_CG_MAXITER_PRE = 10
_CG_MAXITER = 50


def _top_size(problem):
    """Columns per top node (the sub-network): the last level's group size."""
    return problem.level_sizes[-1] if problem.level_sizes else 1


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

    def __init__(self, problem, gamma, lam, sigma, rho, scale, row_gram=None):
        self.problem = problem
        self.row_gram = row_gram
        self.op = problem.operator
        self.gamma, self.lam = gamma, lam
        self.sigma, self.rho = float(sigma), float(rho)
        self.tau = problem.alpha / self.sigma
        self.m = int(getattr(problem.penalty, "group_size", 1))
        self.scale = scale

    def group_norms(self, W):
        d, B, C = W.shape
        Wg = W.reshape(d, B // self.m, self.m, C)
        return np.sqrt(np.einsum("dgmc,dgmc->gc", Wg, Wg))

    def expand(self, x):
        """Per-group values (G, C) broadcast to the columns, shape (1, B, C)."""
        G, C = x.shape
        return np.repeat(x, self.m, axis=0)[None]

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
        idx = np.arange(m)
        pm = self.m
        # Envelope: per penalty group, env I - drop vhat vhat^T.
        vg = vhat.reshape(d, B // pm, pm, C).transpose(1, 3, 2, 0).reshape(B // pm, C, pm * d)
        E = env[:, :, None, None] * np.eye(pm * d) - drop[:, :, None, None] * (
            vg[:, :, :, None] * vg[:, :, None, :]
        )
        if pm == m:
            M += E
        else:
            Mv = M.reshape(G, C, m, d, m, d)
            Mv[:, :, idx, :, idx, :] += E.reshape(G, m, C, d, d).transpose(1, 0, 2, 3, 4)
        parts_active = p.split(active)
        # Column cones: rho sum_j a_j x_j x_j^T on the diagonal sub-blocks.
        a1 = parts_active[0] * (p.cone_signs**2)[:, :, None]
        K1 = (self.row_gram.T @ a1.reshape(n, B * C)).reshape(d, d, B, C).transpose(2, 3, 0, 1)
        Mv = M.reshape(G, C, m, d, m, d)
        Mv[:, :, idx, :, idx, :] += self.rho * K1.reshape(G, m, C, d, d).transpose(1, 0, 2, 3, 4)
        # Node cones: rho sum_j a_j z_j z_j^T with lifted rows z_j = (e_jb x_j)_b.
        for size, signs, masks, a in zip(p.level_sizes, p.level_signs, p.level_masks, parts_active[1:]):
            N = B // size
            lifted = (masks.reshape(n, N, size)[:, :, :, None] * X[:, None, None, :]).reshape(
                n, N, size * d
            )
            w = a * (signs**2)[:, :, None]
            K = np.einsum("jvp,jvc,jvq->vcpq", lifted, w, lifted, optimize=True)
            per = m // size
            Mn = M.reshape(G, C, per, size * d, per, size * d)
            sub = np.arange(per)
            Mn[:, :, sub, :, sub, :] += self.rho * K.reshape(G, per, C, size * d, size * d).transpose(
                1, 0, 2, 3, 4
            )
        scale = np.trace(M, axis1=2, axis2=3) / D
        M += (ridge + 1e-12 * scale)[:, :, None, None] * np.eye(D)
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


def _newton_nested(
    problem, coef_init, intercept_init, multipliers_init, *, tol, max_iter, max_outer,
    sigma, rho, growth, verbose,
):
    problem = problem.astype(np.float64)
    t0 = time.perf_counter()
    op = problem.operator
    d, B, C = problem.coef_shape
    n = op.n_samples
    alpha = problem.alpha
    X = op.X
    s = problem.sample_weight
    gram = (X * s[:, None]).T @ X
    h0 = max(problem.datafit.lipschitz * float(np.linalg.eigvalsh(gram)[-1]), np.finfo(float).tiny)
    weighted = s > 0
    row_sq = float(np.mean(np.einsum("nd,nd->n", X[weighted], X[weighted]))) if weighted.any() else 1.0
    sigma = h0 if sigma is None else float(sigma)
    rho = h0 / max(row_sq, np.finfo(float).tiny) if rho is None else float(rho)
    ridge = 1e-10 * h0
    n_cols = sum(sh[1] * sh[2] for sh in problem.multiplier_shapes())
    m = int(getattr(problem.penalty, "group_size", 1))

    U = problem.zeros() if coef_init is None else np.array(coef_init, dtype=np.float64)
    b = None if intercept_init is None else np.asarray(intercept_init, dtype=np.float64)
    if multipliers_init is None:
        lam = np.zeros((n, n_cols))
    else:
        lam = np.maximum(np.asarray(multipliers_init, dtype=np.float64).reshape(n, n_cols), 0)
    # Start Gamma at the projection of minus the Lagrangian gradient onto the
    # dual ball, its value at a solution.
    value, b, grad_f = problem.smooth(op.forward(U), b)
    G0 = problem.nested_adjoint(grad_f, -lam)
    G0n = np.sqrt(np.einsum("dgmc,dgmc->gc", G0.reshape(d, -1, m, C), G0.reshape(d, -1, m, C)))
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(G0n > alpha, alpha / G0n, 1.0)
    gamma = -G0 * np.repeat(factor, m, axis=0)[None]

    W_best, cert, b_best, violation, best_after = certify_nested(problem, U, b, problem.split(lam))
    best_primal, best_dual = cert.primal, cert.dual
    n_iter, n_products = 0, 4
    history = [(best_primal, best_dual, violation, time.perf_counter() - t0)]
    schedule = _PenaltySchedule(tol, growth)
    damping = 0.0
    rel0 = (best_primal - best_dual) / max(abs(best_primal), np.finfo(float).tiny)
    inner_tol = float(np.clip(0.1 * rel0, 0.01 * tol, 0.1))
    converged = False
    alpha_ref = alpha if alpha > 0 else h0 * 1e-12
    if verbose:
        _print(0, 0, best_primal, best_dual, violation, rho, t0)
    cache = None
    lifted = _LiftedOperator(problem)
    m_top = lifted.m
    row_gram = (X[:, :, None] * X[:, None, :]).reshape(n, d * d)
    system, penalties = None, None
    for k in range(1, max_outer + 1):
        sub = _NewtonNested(problem, gamma, lam, sigma, rho, h0, row_gram)
        if (sigma, rho) != penalties:
            system, penalties = None, (sigma, rho)
        phi, cache = sub.evaluate(U, b)
        n_products += 1
        best_gmax, flat = np.inf, 0
        inner_converged = False
        while True:
            g = sub.gradient(cache)
            n_products += 1
            gmax = float(np.sqrt(np.einsum("dkc,dkc->kc", g, g)).max()) if g.size else 0.0
            if gmax <= inner_tol * alpha_ref or n_iter >= max_iter:
                inner_converged = gmax <= inner_tol * alpha_ref
                break
            if gmax < 0.9 * best_gmax:
                best_gmax, flat = gmax, 0
            else:
                flat += 1
                if flat >= 10:
                    break
            parts = sub.hessian(cache, ridge, damping)

            def hess(v, parts=parts):
                return sub.hessian_product(parts, v)

            direction = None
            if system is not None:
                # The last factorization preconditions CG on the current
                # Hessian: a few products instead of a new factorization.
                direction = _pcg(hess, system_solve, -g, _CG_RTOL, _CG_MAXITER_PRE)
                n_products += 2 * _CG_MAXITER_PRE
            if direction is None:
                M = sub.blocks(parts, ridge)
                try:
                    factor = BlockPlusLowRank(lifted, parts[0], parts[1], M)

                    def system_solve(r, factor=factor):
                        return _unlift(factor.solve(_lift(r, m_top)), m_top, d)

                except MemoryBudgetError:
                    # Too many prediction rows for the Woodbury system: the
                    # blocks alone precondition truncated CG.
                    M_inv = np.linalg.inv(M)

                    def system_solve(r, M_inv=M_inv):
                        cols = _lift(r, m_top).transpose(1, 2, 0).reshape(-1, m_top * d, 1)
                        out = np.matmul(M_inv, cols).reshape(r.shape[1] // m_top, C, m_top * d)
                        return _unlift(out.transpose(2, 0, 1), m_top, d)

                    direction = _pcg(hess, system_solve, -g, _CG_RTOL, _CG_MAXITER, return_last=True)
                system = system_solve
                if direction is None:
                    direction = system_solve(-g)
                n_products += 2
            n_iter += 1
            direction, slope, step = _start_step(g, direction, cache, sub.tau)
            capped = step < 1.0
            if -slope <= 1e-12 * abs(phi):
                # At the rounding level of phi Armijo cannot see progress:
                # accept a step that shrinks the gradient.
                accepted, phi_new, cache_new, spent = _gradient_shrinking_step(
                    sub, cache, direction, step, np.linalg.norm(g)
                )
            else:
                accepted, phi_new, cache_new, spent = _armijo_step(sub, cache, direction, step, phi, slope)
            n_products += spent
            if accepted is None:
                break
            step = accepted
            _print_newton_step(verbose, n_iter, phi_new, gmax, step)
            phi, cache = phi_new, cache_new
            damping, shortened = _next_damping(damping, capped or step < 0.1, step)
            if shortened:
                system = None

        U, b = cache["U"], cache["b"]

        # Multiplier updates.
        V, vn = cache["V"], cache["vn"]
        with np.errstate(divide="ignore", invalid="ignore"):
            keep = np.where(vn > sub.tau, 1.0 - sub.tau / vn, 0.0)
        Qc = V * sub.expand(keep)
        gamma = sigma * (V - Qc)
        lam = cache["r"]

        G = problem.nested_adjoint(cache["grad_f"], -lam)
        best_dual = max(best_dual, problem.dual_value(cache["grad_f"], G))
        W_feas, cert, b_feas, violation, after = certify_nested(problem, Qc, b, None)
        n_products += 4
        if cert.primal < best_primal:
            best_primal, W_best, b_best, best_after = cert.primal, W_feas, b_feas, after
        rel_gap = (best_primal - best_dual) / max(abs(best_primal), np.finfo(float).tiny)
        history.append((best_primal, best_dual, violation, time.perf_counter() - t0))
        if verbose:
            _print(k, n_iter, best_primal, best_dual, violation, rho, t0)
        if rel_gap <= tol and violation <= tol:
            converged = True
            break
        if n_iter >= max_iter:
            break
        if schedule.stalled(rel_gap):
            break
        consensus = float(np.linalg.norm(U - Qc)) / max(float(np.linalg.norm(Qc)), np.finfo(float).tiny)
        sigma, rho = schedule.grow(
            sigma, rho, consensus, problem.violation(cache["Z"]), rel_gap, inner_converged
        )
        inner_tol = float(np.clip(0.1 * min(rel_gap, inner_tol), 0.01 * tol, 0.1))
    converged = converged or (
        (best_primal - best_dual) <= tol * abs(best_primal) and best_after <= tol
    )
    return SolveResult(
        coef=W_best,
        intercept=np.asarray(b_best, dtype=np.float64),
        objective=best_primal,
        dual_objective=best_dual,
        n_iter=max(n_iter, 1),
        converged=bool(converged),
        solver="nested-auglag-newton",
        constraint_violation=best_after,
        n_products=n_products,
        history=history,
        info={"multipliers": lam, "sigma": sigma, "rho": rho, "iterate_violation": violation},
    )


def _fista_nested(
    problem, coef_init, intercept_init, multipliers_init, *, tol, max_iter, max_outer, rho,
    growth, verbose,
):
    problem = problem.astype(np.float64)
    t0 = time.perf_counter()
    op = problem.operator
    C = problem.coef_shape[2]
    n = op.n_samples
    U = problem.zeros() if coef_init is None else np.array(coef_init, dtype=np.float64)
    n_cols = sum(s[1] * s[2] for s in problem.multiplier_shapes())
    if multipliers_init is None:
        lam = np.zeros((n, n_cols))
    else:
        lam = np.maximum(np.asarray(multipliers_init, dtype=np.float64).reshape(n, n_cols), 0)
    if rho is None:
        s = problem.sample_weight
        rho = float(problem.datafit.lipschitz * s.sum() / max(int(np.count_nonzero(s)), 1))
    rho = float(rho)
    b = None if intercept_init is None else np.asarray(intercept_init, dtype=np.float64)

    W_best, cert, b_best, violation, best_after = certify_nested(
        problem, U, b, problem.split(lam)
    )
    best_primal, best_dual = cert.primal, cert.dual
    n_products, n_iter = 3, 0
    step = None
    history = [(best_primal, best_dual, violation)]
    converged = False
    inner_tol = 1e-2
    if verbose:
        _print(0, 0, best_primal, best_dual, violation, rho, t0)
    for k in range(1, max_outer + 1):
        if best_primal - best_dual <= tol * abs(best_primal) and violation <= tol:
            converged = True
            break
        if n_iter >= max_iter:
            break
        sub = _NestedSubproblem(problem, lam, rho)
        if step is None:
            lip = sub.operator.lipschitz(
                problem.sample_weight, curvature=problem.datafit.lipschitz, rho=rho
            )
            n_products += 10
            step = 1.0 / lip if lip > 0 else 1.0
        b_full = None if b is None else np.concatenate([b, np.zeros(n_cols)])
        res = fista(
            sub,
            coef_init=U,
            intercept_init=b_full,
            tol=inner_tol,
            max_iter=max_iter - n_iter,
            step_init=step,
            verbose=max(0, verbose - 1),
        )
        n_iter += res.n_iter
        n_products += res.n_products
        step = res.info.get("step", step)
        U = res.coef
        b = np.asarray(res.intercept[:C], dtype=np.float64)
        best_dual = max(best_dual, sub.best_outer_dual)

        Z = op.product(U)
        new_lam = np.maximum(lam - rho * problem.flat_values(Z), 0)
        W_feas, cert, b_feas, new_violation, after = certify_nested(
            problem, U, b, problem.split(new_lam), Z
        )
        n_products += 3
        best_dual = max(best_dual, cert.dual)
        if cert.primal < best_primal:
            best_primal, W_best, b_best, best_after = cert.primal, W_feas, b_feas, after
        history.append((best_primal, best_dual, new_violation))
        if verbose:
            _print(k, n_iter, best_primal, best_dual, new_violation, rho, t0)
        if new_violation > 0.25 * violation and new_violation > tol:
            rho *= growth
            step /= growth
        violation = new_violation
        lam = new_lam
        rel_gap = (best_primal - best_dual) / max(abs(best_primal), np.finfo(float).tiny)
        inner_tol = float(np.clip(0.1 * min(rel_gap, inner_tol), 0.1 * tol, 1e-2))
    else:
        converged = best_primal - best_dual <= tol * abs(best_primal) and violation <= tol

    return SolveResult(
        coef=W_best,
        intercept=np.asarray(b_best, dtype=np.float64),
        objective=best_primal,
        dual_objective=best_dual,
        n_iter=max(n_iter, 1),
        converged=bool(converged),
        solver="nested-auglag-fista",
        constraint_violation=best_after,
        n_products=n_products,
        history=history,
        info={"multipliers": lam, "rho": rho, "step": step, "iterate_violation": violation},
    )


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
