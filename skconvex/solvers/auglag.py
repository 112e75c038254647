"""Augmented Lagrangian methods for cone-constrained programs.

For :math:`\\min_U f(U) + \\alpha R(U)` s.t. :math:`\\mathcal{G}U \\ge 0`
(:class:`~skconvex.programs.cones.ConeConstrainedProblem`; :math:`f` is the datafit
composed with the pattern operator, the intercept minimized out) both
variants alternate an approximate minimization of an augmented Lagrangian with
the classical multiplier update for inequality constraints

.. math:: \\Lambda_{k+1} = (\\Lambda_k - \\rho\\,\\mathcal{G}U_{k+1})_+

(Hestenes, Powell, Rockafellar; Nocedal & Wright, 2006, §17.4). The constraint
values :math:`\\mathcal{G}U = S \\odot XU` are sign flips of the product the
forward pass computes, and :math:`\\mathcal{A}^\\top R + \\mathcal{G}^\\top
\\Lambda` is one GEMM (:meth:`~skconvex.programs.cones.ConeConstrainedProblem.joint_adjoint`).

``inner="newton"``
    The group penalty is put in the augmented Lagrangian too, through the
    splitting :math:`U = Q` with multiplier :math:`\\Gamma`. Minimizing over
    :math:`Q` in closed form leaves the smooth, convex and piecewise twice
    differentiable function

    .. math::
        \\phi(U) = f(U) + \\sigma\\, e_{\\alpha/\\sigma}(U + \\Gamma/\\sigma)
        + \\tfrac{1}{2\\rho}\\|(\\Lambda - \\rho\\,\\mathcal{G}U)_+\\|^2,

    with :math:`e_\\tau` the Moreau envelope of :math:`\\tau\\|\\cdot\\|_2`
    per column (a Huber function), minimized by a globalized semismooth Newton
    method (Li, Sun & Toh, 2018). The generalized Hessian is block diagonal
    (one ``d x d`` block per column: the envelope's and the active
    constraints' curvature) plus the datafit's Gram term, and each Newton
    system is solved exactly through the Woodbury identity with one
    ``(n C) x (n C)`` factorization (:mod:`skconvex.solvers._lowrank`), so
    large penalties :math:`\\sigma, \\rho`, which make the multipliers
    converge fast, cost nothing in conditioning (problems too large for that
    factorization use matrix-free truncated conjugate gradient instead). Then
    :math:`Q = \\operatorname{prox}_{(\\alpha/\\sigma) R}(U + \\Gamma/\\sigma)`,
    :math:`\\Gamma \\leftarrow \\sigma(U + \\Gamma/\\sigma - Q)` and :math:`\\Lambda` is
    updated as above.

``inner="fista"``
    Only the cones are in the augmented Lagrangian; each subproblem
    "smooth + block penalty" is solved by the package's accelerated proximal
    gradient (:func:`~skconvex.solvers.fista`) on the stacked map
    :math:`U \\mapsto (\\mathcal{A}U, \\mathcal{G}U)`. Iterations are as cheap
    as FISTA's on the unconstrained program, but the penalty's curvature
    :math:`\\rho\\|x_j\\|^2` on each tight row shrinks the step, so this
    variant needs many iterations for tight tolerances; it needs no
    :math:`(nC)^2` memory.

**Certificate.** Any datafit gradient :math:`\\nabla F` (at an optimal
intercept) and any multiplier :math:`\\Lambda \\ge 0` give the dual point
:math:`(\\Theta, \\Lambda) = c(-\\nabla F, \\Lambda)` of the constrained
program, feasible when :math:`c\\,R^\\circ(\\mathcal{A}^\\top\\nabla F -
\\mathcal{G}^\\top\\Lambda) \\le \\alpha`, with value :math:`-F^*(-\\Theta)`
(derivation in :mod:`skconvex.programs.cones`). At an exact subproblem solution the
Lagrangian gradient is :math:`-\\Gamma` (Newton) or lies in
:math:`-\\alpha\\partial R` (FISTA), so :math:`c = 1`. Every outer iteration
moves its primal point exactly into the cones
(:meth:`~skconvex.programs.cones.ConeConstrainedProblem.restore`); the methods stop
when the relative gap between the best of these feasible points (or the
feasible start) and the best lower bound is at most ``tol``, whether or not
the last iterate is itself within ``tol`` of the cones: the point returned is
the certified one.
"""

import time

import numpy as np
import scipy.sparse as sp

from ..programs.cones import certify
from ._al_newton import (
    _CG_ACCEPT,
    _CG_MAXITER,
    _CG_MAXITER_FREE,
    _CG_RTOL,
    _CG_RTOL_FREE,
    _DENSE_BYTES,
    _armijo_step,
    _AugmentedSubproblem,
    _blas_threads,
    _ConeGram,
    _curvature_scale,
    _gradient_shrinking_step,
    _NewtonSubproblem,
    _next_damping,
    _pcg,
    _PenaltySchedule,
    _print_newton_step,
    _start_step,
)
from ._lowrank import BlockPlusLowRank
from ._result import SolveResult
from .fista import fista

__all__ = ["augmented_lagrangian"]

def _default_rho(problem):
    """Starting cone penalty of the FISTA variant: the datafit's curvature per unit weight."""
    s = problem.sample_weight
    n_pos = max(int(np.count_nonzero(s)), 1)
    return float(problem.datafit.lipschitz * s.sum() / n_pos)


def check_positive_alpha(alpha):
    """Refuse ``alpha <= 0``, which the augmented Lagrangian cannot certify.

    Its dual point is the gradient scaled into the ball of radius ``alpha``
    of the penalty's dual norm, so at ``alpha = 0`` the dual bound is that of
    the empty network: the gap never closes, and the solver would stop on a
    stalled gap at the empty network.

    Parameters
    ----------
    alpha : float
        Penalty strength of the program.

    Raises
    ------
    ValueError
        If ``alpha`` is not positive.
    """
    if not alpha > 0:
        raise ValueError(
            f"alpha={alpha!r} is not supported by the augmented Lagrangian solver "
            "(solver='auglag', the default of the exact ReLU programs): alpha must "
            "be > 0, since its certificate scales the dual point by alpha. Use a "
            "positive alpha, or solver='cvxpy' for the unregularized program."
        )


def augmented_lagrangian(
    problem,
    *,
    coef_init=None,
    intercept_init=None,
    multipliers_init=None,
    tol=1e-6,
    max_iter=None,
    inner="newton",
    sigma=None,
    rho=None,
    growth=None,
    max_outer=100,
    verbose=0,
):
    """Solve a cone-constrained program by an augmented Lagrangian method.

    Parameters
    ----------
    problem : ConeConstrainedProblem
        The program.
    coef_init : ndarray of shape problem.coef_shape, default=None
        Starting point (zeros when None).
    intercept_init : ndarray of shape (n_outputs,), default=None
        Warm start of the intercept.
    multipliers_init : ndarray of shape (n_samples, n_blocks, n_outputs), default=None
        Starting cone multipliers :math:`\\Lambda \\ge 0` (zeros when None).
    tol : float, default=1e-6
        Stop when the certified relative gap of the best restored (feasible)
        point is at most ``tol``. The last iterate's own cone violation does
        not count: a feasible warm start (the previous solution of a path)
        is certified as soon as the multipliers are good, before the iterates
        reach the cones.
    max_iter : int, default=None
        Total budget of inner iterations: Newton steps (default 500) or FISTA
        iterations (default 20000).
    inner : {"newton", "newton-cg", "fista"}, default="newton"
        Subproblem solver, see the module docstring. ``"newton"`` solves each
        Newton system exactly through the Woodbury identity when its
        ``(n_samples * n_outputs)``-row factorization fits in 200 MiB (squared
        loss: one ``n_samples``-row system per output), and by truncated
        conjugate gradient preconditioned by the Hessian's diagonal
        (matrix-free, two products per CG step) otherwise; ``"newton-cg"``
        always uses the latter.
    sigma : float, default=None
        Starting penalty of the splitting ``U = Q`` (Newton only); by default
        the datafit's curvature :math:`L_F\\lambda_{\\max}(X^\\top S X)`.
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
        The best feasible point found, its objective and the best certified
        lower bound; ``constraint_violation`` is the relative violation of the
        returned point (0 up to rounding); ``history`` has one
        ``(objective, lower bound, violation[, seconds])`` record per outer
        iteration (seconds for the Newton variant). ``info`` holds the last
        ``multipliers``, ``rho``, the ``inner`` method and the violation of the
        last iterate before restoring (``iterate_violation``).

    Notes
    -----
    With :math:`(\\Theta,\\Lambda) = c\\,(-\\nabla F, \\Lambda^+)`, the dual
    :math:`\\max -F^*(-\\Theta)` s.t. :math:`R^\\circ(\\mathcal{A}^\\top\\Theta +
    \\mathcal{G}^\\top\\Lambda) \\le \\alpha`, :math:`\\Lambda \\ge 0`,
    :math:`\\mathbf{1}^\\top\\Theta = 0` certifies every outer iterate; the
    returned ``dual_objective`` is the best of these values, a lower bound on
    the optimum.

    References
    ----------
    J. Nocedal and S. J. Wright. Numerical Optimization, 2nd ed., Springer,
    2006, Section 17.4.
    X. Li, D. Sun and K.-C. Toh. A highly efficient semismooth Newton
    augmented Lagrangian method for solving Lasso problems. SIAM J. Optim.,
    28(1), 2018.
    A. Mishkin, A. Sahiner and M. Pilanci. Fast convex optimization for
    two-layer ReLU networks: equivalent model classes and cone
    decompositions. ICML 2022, arXiv:2202.01331.

    Examples
    --------
    >>> import numpy as np
    >>> from skconvex import sample_arrangements
    >>> from skconvex.programs.cones import ConeConstrainedProblem
    >>> from skconvex.programs.datafits import SquaredError
    >>> from skconvex.programs.operators import PatternOperator
    >>> from skconvex.programs.penalties import ColumnGroupL2
    >>> from skconvex.solvers.auglag import augmented_lagrangian
    >>> rng = np.random.default_rng(0)
    >>> X = np.c_[rng.standard_normal((30, 2)), np.ones(30)]
    >>> y = np.abs(X[:, :1])
    >>> arr = sample_arrangements(X, 20, random_state=0)
    >>> P = arr.n_patterns
    >>> op = PatternOperator(X, np.hstack([arr.patterns] * 2), signs=[1] * P + [-1] * P)
    >>> problem = ConeConstrainedProblem(op, SquaredError(), ColumnGroupL2(), y,
    ...     np.full(30, 1 / 30), 0.01, interior=np.hstack([arr.gates] * 2))
    >>> result = augmented_lagrangian(problem, tol=1e-6)
    >>> bool(result.converged), result.relative_gap <= 1e-6
    (True, True)
    """
    check_positive_alpha(problem.alpha)
    if inner not in ("newton", "newton-cg", "fista"):
        raise ValueError(f"inner must be 'newton', 'newton-cg' or 'fista', got {inner!r}.")
    rows = getattr(problem.operator, "n_rows", problem.operator.n_samples)
    if inner != "fista" and problem.multiplier_shape != (rows,) + problem.coef_shape[1:]:
        raise ValueError(
            f"inner={inner!r} needs one cone constraint per row and column (its Newton "
            "systems are block diagonal over the columns); use inner='fista' for this "
            "program."
        )
    if inner != "fista":
        with _blas_threads(problem.operator.n_samples * problem.coef_shape[2]):
            return _newton_al(
                problem.astype(np.float64),
                coef_init,
                intercept_init,
                multipliers_init,
                tol=tol,
                max_iter=500 if max_iter is None else max_iter,
                max_outer=max_outer,
                sigma=sigma,
                rho=rho,
                growth=10.0 if growth is None else growth,
                verbose=verbose,
                matrix_free=inner == "newton-cg",
            )
    return _fista_al(
        problem,
        coef_init,
        intercept_init,
        multipliers_init,
        tol=tol,
        max_iter=20000 if max_iter is None else max_iter,
        max_outer=max_outer,
        rho=rho,
        growth=3.0 if growth is None else growth,
        verbose=verbose,
    )


def _print(k, n_iter, primal, dual, violation, rho, t0, sigma=None):
    rel = (primal - dual) / max(abs(primal), np.finfo(float).tiny)
    extra = "" if sigma is None else f"  sigma {sigma:.2e}"
    print(
        f"[auglag] outer {k:3d}  inner iters {n_iter:6d}  objective {primal:.10g}  "
        f"rel. gap {rel:.3e}  violation {violation:.2e}  rho {rho:.2e}{extra}  "
        f"{time.perf_counter() - t0:.2f}s",
        flush=True,
    )


def _initial_multipliers(problem, U, multipliers_init):
    shape = problem.multiplier_shape
    if multipliers_init is None:
        return np.zeros(shape, dtype=problem.dtype)
    lam = np.asarray(multipliers_init, dtype=problem.dtype).reshape(shape)
    return np.maximum(lam, 0) * problem.multiplier_support()


# --------------------------------------------------------------------------
# Newton inner solver
# --------------------------------------------------------------------------


def _newton_al(
    problem, coef_init, intercept_init, multipliers_init, *, tol, max_iter, max_outer,
    sigma, rho, growth, verbose, matrix_free=False,
):
    t0 = time.perf_counter()
    op = problem.operator
    d, B, C = problem.coef_shape
    n = op.n_samples
    alpha = problem.alpha
    X = op.X
    size = n * n * C if getattr(problem.datafit, "quadratic", False) else (n * C) ** 2
    # The exact systems hold dense row products of X; sparse X only enters
    # the matrix-free Hessian through sparse products.
    matrix_free = matrix_free or sp.issparse(X) or 8 * (size + X.shape[0] * d * d) > _DENSE_BYTES
    row_gram = None
    if not matrix_free:
        row_gram = _ConeGram(X)
    h0 = _curvature_scale(problem)
    weighted = problem.cone_signs[:, 0] != 0 if B else np.zeros(n, bool)
    if not weighted.any():
        row_sq = 1.0
    elif sp.issparse(X):
        row_sq = float(X[weighted].multiply(X[weighted]).sum()) / int(weighted.sum())
    else:
        row_sq = float(np.mean(np.einsum("nd,nd->n", X[weighted], X[weighted])))
    sigma = h0 if sigma is None else float(sigma)
    rho = h0 / max(row_sq, np.finfo(float).tiny) if rho is None else float(rho)
    ridge = 1e-10 * h0

    U = problem.zeros() if coef_init is None else np.array(coef_init, dtype=np.float64)
    b = None if intercept_init is None else np.asarray(intercept_init, dtype=np.float64)
    lam = _initial_multipliers(problem, U, multipliers_init)
    # Start Gamma at the projection of minus the Lagrangian gradient onto the
    # dual ball, its value at a solution.
    value, b, grad_f = problem.smooth(op.forward(U), b)
    G0 = problem.joint_adjoint(grad_f, -lam)
    norms = np.sqrt(np.einsum("dkc,dkc->kc", G0, G0))
    with np.errstate(divide="ignore", invalid="ignore"):
        gamma = -G0 * np.where(norms > alpha, alpha / norms, 1.0)[None]

    W_best, cert, b_best, violation, after = certify(problem, U, b, lam)
    best_primal, best_dual, best_after = cert.primal, cert.dual, after
    n_iter, n_products = 0, 4
    history = [(best_primal, best_dual, violation, time.perf_counter() - t0)]
    schedule = _PenaltySchedule(tol, growth)
    system, penalties = None, None
    damping = 0.0
    # A warm start may already be close: solve the first subproblem to a
    # tenth of its certified gap.
    rel0 = (best_primal - best_dual) / max(abs(best_primal), np.finfo(float).tiny)
    inner_tol = float(np.clip(0.1 * rel0, 0.01 * tol, 0.1))
    converged = False
    alpha_ref = alpha if alpha > 0 else _curvature_scale(problem) * 1e-12
    if verbose:
        _print(0, 0, best_primal, best_dual, violation, rho, t0, sigma)
    for k in range(1, max_outer + 1):
        sub = _NewtonSubproblem(problem, gamma, lam, sigma, rho, row_gram)
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
            # Along nearly flat directions (saturated losses) Newton can creep;
            # the multiplier update then helps more than further steps.
            if gmax < 0.9 * best_gmax:
                best_gmax, flat = gmax, 0
            else:
                flat += 1
                if flat >= 10:
                    break
            if matrix_free:
                parts = sub.hessian_free(cache, ridge, damping)
            else:
                parts = sub.hessian(cache, ridge, damping)

            def hess(v, parts=parts):
                return sub.hessian_product(parts, v)

            direction = None
            if matrix_free:
                # Truncated CG with the Hessian's diagonal as preconditioner.
                diagonal = parts[-1]
                direction = _pcg(
                    hess, lambda r: r / diagonal, -g, _CG_RTOL_FREE, _CG_MAXITER_FREE, return_last=True
                )
                if direction is None:
                    direction = -g / diagonal
                n_products += 2 * _CG_MAXITER_FREE
                fresh = True
            elif system is not None:
                # The last factorization preconditions CG on the current
                # Hessian: a few cheap products instead of a new factorization.
                direction = _pcg(
                    hess, system.solve, -g, _CG_RTOL, _CG_MAXITER, accept_rtol=_CG_ACCEPT
                )
            fresh = matrix_free or direction is None
            if direction is None:
                system = BlockPlusLowRank(op, parts[1], parts[2], parts[0])
                direction = system.solve(-g)
            n_products += 2
            n_iter += 1
            direction, slope, step = _start_step(g, direction, cache, sub.tau)
            capped = step < 1.0
            if -slope <= 1e-12 * abs(phi):
                # The predicted decrease is at the rounding level of phi, where
                # Armijo cannot tell progress: accept a step that shrinks the
                # gradient, which rounding does not hide. An inexact (CG)
                # direction that fails is replaced by an exact one once.
                g_norm = np.linalg.norm(g)
                while True:
                    accepted, phi_new, cache_new, spent = _gradient_shrinking_step(
                        sub, cache, direction, step, g_norm
                    )
                    n_products += spent
                    if accepted is not None or fresh:
                        break
                    system = BlockPlusLowRank(op, parts[1], parts[2], parts[0])
                    direction, slope, step = _start_step(g, system.solve(-g), cache, sub.tau)
                    fresh = True
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
        Qc = V * keep[None]
        gamma = sigma * (V - Qc)
        lam = cache["r"]

        # Certificate: dual from (grad F, lam), primal at the restored Q.
        G = problem.joint_adjoint(cache["grad_f"], -lam)
        best_dual = max(best_dual, problem.dual_value(cache["grad_f"], G))
        W_feas, cert, b_feas, new_violation, after = certify(problem, Qc, b, None)
        n_products += 4
        if cert.primal < best_primal:
            best_primal, W_best, b_best, best_after = cert.primal, W_feas, b_feas, after
        violation = new_violation
        rel_gap = (best_primal - best_dual) / max(abs(best_primal), np.finfo(float).tiny)
        history.append((best_primal, best_dual, violation, time.perf_counter() - t0))
        if verbose:
            _print(k, n_iter, best_primal, best_dual, violation, rho, t0, sigma)
        if rel_gap <= tol and best_after <= tol:
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

    if not converged:
        # Best multipliers for the last gradient, column by column: a tighter
        # certificate for the point returned.
        lam_refined, G = problem.refine_multipliers(cache["grad_f"], lam)
        best_dual = max(best_dual, problem.dual_value(cache["grad_f"], G))
        # What matters now is the returned (restored) point: certified within
        # tol and feasible, even if the last iterate was not.
        converged = (best_primal - best_dual) <= tol * abs(best_primal) and best_after <= tol
        n_products += 2

    return SolveResult(
        coef=W_best,
        intercept=np.asarray(b_best, dtype=np.float64),
        objective=best_primal,
        dual_objective=best_dual,
        n_iter=max(n_iter, 1),
        converged=bool(converged),
        solver="auglag-newton",
        constraint_violation=best_after,
        n_products=n_products,
        history=history,
        info={
            "multipliers": lam,
            "rho": rho,
            "sigma": sigma,
            "inner": "newton",
            "iterate": U,
            "iterate_violation": violation,
        },
    )


# --------------------------------------------------------------------------
# FISTA inner solver
# --------------------------------------------------------------------------


def _fista_al(
    problem, coef_init, intercept_init, multipliers_init, *, tol, max_iter, max_outer, rho,
    growth, verbose, step_init=None, dual_init=-np.inf,
):
    # float32 iterates stall the multiplier updates near 1e-4 relative
    # violation, so this variant computes in float64 as well.
    problem = problem.astype(np.float64)
    t0 = time.perf_counter()
    op = problem.operator
    d, B, C = problem.coef_shape
    U = problem.zeros() if coef_init is None else np.array(coef_init, dtype=problem.dtype)
    lam = _initial_multipliers(problem, U, multipliers_init)
    rho = _default_rho(problem) if rho is None else float(rho)
    b = None if intercept_init is None else np.asarray(intercept_init, dtype=np.float64)

    W_best, cert, b_best, violation, after = certify(problem, U, b, lam)
    best_primal, best_dual = cert.primal, max(dual_init, cert.dual)
    best_after = after
    n_products, n_iter = 3, 0
    step = step_init
    history = [(best_primal, best_dual, violation)]
    converged = False
    inner_tol = 1e-2
    if verbose:
        _print(0, 0, best_primal, best_dual, violation, rho, t0)
    for k in range(1, max_outer + 1):
        if best_primal - best_dual <= tol * abs(best_primal) and best_after <= tol:
            converged = True
            break
        if n_iter >= max_iter:
            break
        sub = _AugmentedSubproblem(problem, lam, rho)
        if step is None:
            lip = sub.operator.lipschitz(
                problem.sample_weight, curvature=problem.datafit.lipschitz, rho=rho
            )
            n_products += 10
            step = 1.0 / lip if lip > 0 else 1.0
        b_full = None if b is None else np.concatenate([b, np.zeros(sub.n_outputs - C)])
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
        new_lam = lam - rho * problem.constraint_values(Z)
        np.maximum(new_lam, 0, out=new_lam)
        W_feas, cert, b_feas, new_violation, after = certify(problem, U, b, new_lam, Z)
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
        converged = best_primal - best_dual <= tol * abs(best_primal) and best_after <= tol

    if not converged:
        # Best multipliers for the last gradient, column by column.
        _, _, grad_f = problem.smooth(op.forward(U), b)
        lam_refined, G = problem.refine_multipliers(grad_f, lam)
        best_dual = max(best_dual, problem.dual_value(grad_f, G))
        converged = (best_primal - best_dual) <= tol * abs(best_primal) and best_after <= tol
        n_products += 3

    return SolveResult(
        coef=W_best,
        intercept=np.asarray(b_best, dtype=np.float64),
        objective=best_primal,
        dual_objective=best_dual,
        n_iter=max(n_iter, 1),
        converged=bool(converged),
        solver="auglag-fista",
        constraint_violation=best_after,
        n_products=n_products,
        history=history,
        info={
            "multipliers": lam,
            "rho": rho,
            "step": step,
            "inner": "fista",
            "iterate": U,
            "iterate_violation": violation,
        },
    )
