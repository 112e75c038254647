"""ADMM for cone-constrained programs with the squared loss.

For :math:`\\min_U \\tfrac12\\|\\Pi(\\mathcal{A}U - Y)\\|^2 + \\alpha R(U)` s.t.
:math:`\\mathcal{G}U \\ge 0` (:class:`~skconvex.programs.cones.ConeConstrainedProblem`
with :class:`~skconvex.programs.datafits.SquaredError`; :math:`\\Pi^\\top\\Pi` is the
weighted, intercept-centred Gram in prediction space) the splitting

.. math:: U = Q \\ (\\text{group prox}), \\qquad \\mathcal{G}U = T \\ge 0 \\ (\\text{cone slack})

gives the scaled ADMM iteration (Boyd et al., 2011, §3.1)

.. math::
    U &\\leftarrow (\\mathcal{A}^\\top\\Pi^\\top\\Pi\\mathcal{A} + \\rho(I + \\mathcal{G}^\\top\\mathcal{G}))^{-1}
        \\big(\\mathcal{A}^\\top\\Pi^\\top\\Pi Y + \\rho(Q - \\Gamma) + \\rho\\mathcal{G}^\\top(T - \\Lambda)\\big),\\\\
    Q &\\leftarrow \\operatorname{prox}_{(\\alpha/\\rho)R}(U + \\Gamma), \\qquad
    T \\leftarrow (\\mathcal{G}U + \\Lambda)_+,\\\\
    \\Gamma &\\leftarrow \\Gamma + U - Q, \\qquad \\Lambda \\leftarrow \\Lambda + \\mathcal{G}U - T.

Because :math:`((2D_k - I)X)^\\top (2D_k - I)X = X^\\top X` for every cone,
:math:`I + \\mathcal{G}^\\top\\mathcal{G}` is block diagonal with the *same*
``d x d`` block :math:`I + X^\\top X` for every column: one factorization serves
all cones, and the datafit term is added by the Woodbury identity with one
``n x n`` factorization per output (:mod:`skconvex.solvers._lowrank`). Both
are refactorized only when :math:`\\rho` changes (residual balancing).

**Certificate.** The :math:`U`-update's optimality condition reads
:math:`\\mathcal{A}^\\top\\nabla F(U) - \\mathcal{G}^\\top(-\\rho\\Lambda) =
-\\rho\\Gamma` after the dual updates, and :math:`\\rho\\Gamma \\in
\\alpha\\partial R(Q)` has every column norm at most :math:`\\alpha`, while
:math:`-\\rho\\Lambda \\ge 0`. So :math:`(\\Theta, \\Lambda) = (-\\nabla F(U),
-\\rho\\Lambda)` is dual feasible at every iteration (see
:mod:`skconvex.programs.cones`) and certifies a lower bound; the primal value is taken
at :math:`Q` moved exactly into the cones.
"""

import time

import numpy as np

from ..programs.cones import certify
from ._lowrank import BlockPlusLowRank, prediction_factor
from ._result import SolveResult

__all__ = ["admm"]


def admm(
    problem,
    *,
    coef_init=None,
    intercept_init=None,
    multipliers_init=None,
    tol=1e-6,
    max_iter=5000,
    rho=None,
    relax=1.0,
    check_every=10,
    verbose=0,
):
    """Solve a squared-loss cone-constrained program by ADMM.

    Parameters
    ----------
    problem : ConeConstrainedProblem
        The program; its datafit must be quadratic
        (:class:`~skconvex.programs.datafits.SquaredError`).
    coef_init : ndarray of shape problem.coef_shape, default=None
        Starting point (zeros when None).
    intercept_init : ndarray of shape (n_outputs,), default=None
        Unused (the intercept is eliminated exactly); accepted for a common
        solver signature.
    multipliers_init : ndarray of shape (n_samples, n_blocks, n_outputs), default=None
        Starting cone multipliers :math:`\\Lambda_{\\mathrm{cone}} \\ge 0`.
    tol : float, default=1e-6
        Stop when the certified relative gap of the restored point and the
        relative cone violation of :math:`Q` are both at most ``tol``.
    max_iter : int, default=5000
        Maximum number of ADMM iterations.
    rho : float, default=None
        Starting penalty; by default the largest eigenvalue of
        :math:`X^\\top S X` (the datafit's curvature per column).
    relax : float, default=1.0
        Over-relaxation factor in (0, 2) (1 is plain ADMM).
    check_every : int, default=10
        Iterations between certificates (each costs two products).
    verbose : int, default=0
        Print one line per certificate.

    Returns
    -------
    result : SolveResult
        The best feasible point found and the best certified lower bound;
        ``info["rho"]`` is the last penalty, ``info["multipliers"]`` the last
        cone multipliers.

    Raises
    ------
    ValueError
        If the datafit is not quadratic.

    References
    ----------
    S. Boyd, N. Parikh, E. Chu, B. Peleato and J. Eckstein. Distributed
    optimization and statistical learning via the alternating direction
    method of multipliers. Found. Trends Mach. Learn., 3(1), 2011.

    Examples
    --------
    >>> import numpy as np
    >>> from skconvex import sample_arrangements
    >>> from skconvex.programs.cones import ConeConstrainedProblem
    >>> from skconvex.programs.datafits import SquaredError
    >>> from skconvex.programs.operators import PatternOperator
    >>> from skconvex.programs.penalties import ColumnGroupL2
    >>> from skconvex.solvers.admm import admm
    >>> rng = np.random.default_rng(0)
    >>> X = np.c_[rng.standard_normal((30, 2)), np.ones(30)]
    >>> y = np.abs(X[:, :1])
    >>> arr = sample_arrangements(X, 20, random_state=0)
    >>> P = arr.n_patterns
    >>> op = PatternOperator(X, np.hstack([arr.patterns] * 2), signs=[1] * P + [-1] * P)
    >>> problem = ConeConstrainedProblem(op, SquaredError(), ColumnGroupL2(), y,
    ...     np.full(30, 1 / 30), 0.01, interior=np.hstack([arr.gates] * 2))
    >>> result = admm(problem, tol=1e-4)
    >>> bool(result.converged)
    True
    """
    if not getattr(problem.datafit, "quadratic", False):
        raise ValueError(
            f"admm solves squared-loss programs only, got {problem.datafit!r}; "
            "use the 'auglag' or 'cvxpy' solver."
        )
    t0 = time.perf_counter()
    problem = problem.astype(np.float64)
    op = problem.operator
    d, B, C = problem.coef_shape
    n = op.n_samples
    X = op.X
    S = problem.cone_signs
    weighted = (S != 0).any(axis=1) if B else np.zeros(n, bool)
    Xw = X[weighted]
    H0 = np.eye(d) + Xw.T @ Xw
    if rho is None:
        s = problem.sample_weight
        rho = float(np.linalg.eigvalsh((X * s[:, None]).T @ X)[-1]) if d else 1.0
        rho = max(rho, np.finfo(float).tiny)

    R, Qbasis = prediction_factor(problem, np.zeros((n, C)))
    _, _, grad0 = problem.smooth(np.zeros((n, C)))
    # A^T Pi^T Pi Y: minus the reduced gradient at zero predictions.
    rhs_data = -np.asarray(op.adjoint(grad0), dtype=np.float64)

    U = problem.zeros() if coef_init is None else np.array(coef_init, dtype=np.float64)
    Q = problem.penalty.prox(U, 0.0)
    T = np.maximum(problem.constraint_values(op.product(U)), 0)
    gamma = np.zeros_like(U)
    lam = np.zeros((n, B, C))
    if multipliers_init is not None:
        lam = -np.maximum(np.asarray(multipliers_init, dtype=np.float64).reshape(n, B, C), 0) / rho

    system = BlockPlusLowRank(op, R, Qbasis, rho * H0)
    best_primal, best_dual = np.inf, -np.inf
    W_best, b_best, best_after, violation = problem.zeros(), np.zeros(C), 0.0, np.inf
    n_products = 2
    history = []
    converged = False
    k = 0
    for k in range(1, max_iter + 1):
        rhs = rhs_data + rho * (Q - gamma) + rho * problem.joint_adjoint(None, T - lam)
        U = system.solve(rhs)
        Z = op.product(U)
        GU = problem.constraint_values(Z)
        Q_old, T_old = Q, T
        # Over-relaxation (Boyd et al., 2011, §3.4.3).
        U_hat = relax * U + (1 - relax) * Q_old
        GU_hat = relax * GU + (1 - relax) * T_old
        Q = problem.penalty.prox(U_hat + gamma, problem.alpha / rho)
        T = np.maximum(GU_hat + lam, 0)
        gamma += U_hat - Q
        lam += GU_hat - T
        n_products += 4

        if k % check_every and k != max_iter:
            continue
        multipliers = -rho * lam
        value, b, grad_f = problem.smooth(op.reduce(Z))
        G = problem.joint_adjoint(grad_f, -multipliers)
        best_dual = max(best_dual, problem.dual_value(grad_f, G))
        W_feas, cert, b_feas, violation, after = certify(problem, Q, b, None)
        n_products += 4
        if cert.primal < best_primal:
            best_primal, W_best, b_best, best_after = cert.primal, W_feas, b_feas, after
        rel_gap = (best_primal - best_dual) / max(abs(best_primal), np.finfo(float).tiny)
        history.append((best_primal, best_dual, violation))
        if verbose:
            print(
                f"[admm] iter {k:5d}  objective {best_primal:.10g}  rel. gap {rel_gap:.3e}  "
                f"violation {violation:.2e}  rho {rho:.2e}  {time.perf_counter() - t0:.2f}s",
                flush=True,
            )
        if rel_gap <= tol and violation <= tol:
            converged = True
            break

        # Residual balancing (Boyd et al., 2011, §3.4.1), refactorizing only
        # on a change.
        primal_res = np.sqrt(np.vdot(U - Q, U - Q) + np.vdot(GU - T, GU - T))
        dual_res = rho * np.sqrt(
            np.vdot(Q - Q_old, Q - Q_old)
            + np.vdot(*(2 * [problem.joint_adjoint(None, T - T_old)]))
        )
        factor = 1.0
        if primal_res > 10 * dual_res:
            factor = 4.0
        elif dual_res > 10 * primal_res:
            factor = 0.25
        if factor != 1.0:
            rho *= factor
            gamma /= factor
            lam /= factor
            system = BlockPlusLowRank(op, R, Qbasis, rho * H0)

    if not converged and k:
        # Best multipliers for the last gradient, column by column.
        _, _, grad_f = problem.smooth(op.forward(U))
        _, G = problem.refine_multipliers(grad_f, -rho * lam, bound_only=True)
        best_dual = max(best_dual, problem.dual_value(grad_f, G))
        converged = (best_primal - best_dual) <= tol * abs(best_primal) and violation <= tol
        n_products += 3

    return SolveResult(
        coef=W_best,
        intercept=np.asarray(b_best, dtype=np.float64),
        objective=best_primal,
        dual_objective=best_dual,
        n_iter=max(k, 1),
        converged=bool(converged),
        solver="admm",
        constraint_violation=best_after,
        n_products=n_products,
        history=history,
        info={"rho": rho, "multipliers": -rho * lam, "iterate_violation": violation},
    )
