"""Reference solves through CVXPY (Clarabel by default).

The program of a :class:`~skconvex.programs.problem.ConvexProblem` is written with the
explicit sparse design :math:`B = [D_1X, \\dots, D_PX]` (scipy sparse, never
a dense array) and handed to an interior-point solver. This is the accuracy
oracle of the test suite and a solver of its own for small problems; the
``cvxpy.Problem`` lives only inside :func:`~skconvex.solvers.cvxpy_solve`.
"""

import numpy as np

from ._result import SolveResult

__all__ = ["cvxpy_solve", "SolverError"]

_INACCURATE = {"optimal_inaccurate"}


class SolverError(RuntimeError):
    """Raised when an external solver reports failure, infeasibility or unboundedness."""


def cvxpy_problem(problem, constraints_builder=None):
    """Build the CVXPY variables, objective and constraints of ``problem``.

    Parameters
    ----------
    problem : ConvexProblem
        The program.
    constraints_builder : callable, default=None
        ``constraints_builder(W_vars)`` returning extra CVXPY constraints, where
        ``W_vars`` is the list (one per output) of variables of shape
        ``(n_patterns, n_features)``.

    Returns
    -------
    cvx_problem : cvxpy.Problem
    W_vars : list of cvxpy.Variable
    b_var : cvxpy.Variable or None
    """
    import cvxpy as cp

    op = problem.operator
    d, P, C = op.coef_shape
    B = op.explicit().tocsr().astype(np.float64)
    w = [cp.Variable(P * d) for _ in range(C)]
    W_vars = [cp.reshape(wc, (P, d), order="C") for wc in w]
    pred = cp.vstack([B @ wc for wc in w]).T if C > 1 else cp.reshape(B @ w[0], (B.shape[0], 1), order="C")
    b_var = None
    if problem.fit_intercept:
        b_var = cp.Variable(C)
        pred = pred + np.ones((B.shape[0], 1)) @ cp.reshape(b_var, (1, C), order="C")
    objective = problem.datafit.cvxpy(pred, problem.y, problem.sample_weight)
    objective = objective + problem.alpha * problem.penalty.cvxpy(W_vars)
    constraints = [] if constraints_builder is None else constraints_builder(W_vars)
    return cp.Problem(cp.Minimize(objective), constraints), W_vars, b_var


def cvxpy_solve(problem, *, solver="CLARABEL", solver_options=None, verbose=0, constraints_builder=None):
    """Solve ``problem`` with CVXPY and certify the answer.

    Parameters
    ----------
    problem : ConvexProblem
        The program (any loss and penalty with a ``cvxpy`` method).
    solver : str, default="CLARABEL"
        Any solver name known to :func:`cvxpy.installed_solvers`.
    solver_options : dict, default=None
        Keyword arguments for the solver (e.g. ``{"tol_gap_rel": 1e-10}``).
    verbose : int, default=0
        Forwarded to CVXPY as ``verbose=verbose > 1``.
    constraints_builder : callable, default=None
        Extra constraints, see ``skconvex.solvers.conic.cvxpy_problem``.

    Returns
    -------
    result : SolveResult
        ``dual_objective`` is the dual value of the certificate computed by
        :meth:`~skconvex.programs.problem.ConvexProblem.evaluate` at the returned point (for
        unconstrained programs); the solver's own status decides
        ``converged``.

    Raises
    ------
    SolverError
        If the solver fails or reports an infeasible or unbounded program.
    """
    import cvxpy as cp

    if solver not in cp.installed_solvers():
        raise ValueError(
            f"solver {solver!r} is not installed; installed CVXPY solvers: "
            f"{cp.installed_solvers()}."
        )
    cvx_problem, W_vars, b_var = cvxpy_problem(problem, constraints_builder)
    options = dict(solver_options or {})
    try:
        cvx_problem.solve(solver=solver, verbose=verbose > 1, **options)
    except cp.error.SolverError as exc:
        raise SolverError(f"CVXPY solver {solver} failed: {exc}") from exc
    status = cvx_problem.status
    if status not in ("optimal",) and status not in _INACCURATE:
        raise SolverError(f"CVXPY solver {solver} returned status {status!r}.")
    d, P, C = problem.coef_shape
    coef = np.stack([np.asarray(Wc.value).reshape(P, d).T for Wc in W_vars], axis=2)
    coef = coef.astype(problem.dtype)
    intercept = np.zeros(C) if b_var is None else np.asarray(b_var.value, float).reshape(C)
    iters = cvx_problem.solver_stats.num_iters if cvx_problem.solver_stats else None
    result = SolveResult(
        coef=coef,
        intercept=intercept,
        objective=float(cvx_problem.value),
        dual_objective=-np.inf,
        n_iter=max(1, int(iters or 1)),
        converged=status == "optimal",
        solver=f"cvxpy-{solver.lower()}",
    )
    if constraints_builder is None:
        cert, b, _ = problem.evaluate(coef.astype(problem.dtype), intercept)
        result.objective, result.dual_objective = cert.primal, cert.dual
        result.intercept = b
    return result


def cvxpy_cone_solve(problem, *, solver="CLARABEL", solver_options=None, verbose=0):
    """Solve a cone-constrained program with CVXPY and certify the answer.

    The cones come from ``problem.cvxpy_constraints`` (a sparse block-diagonal
    inequality per output); after the solve their dual values are the
    multipliers :math:`\\Lambda \\ge 0` that, with the datafit gradient at the
    returned point, give a certified lower bound (see
    :mod:`skconvex.programs.cones`). The returned point is moved exactly into the cones
    (:meth:`~skconvex.programs.cones.ConeConstrainedProblem.restore`), so its objective
    is a true upper bound.

    Parameters
    ----------
    problem : ConeConstrainedProblem
        The program.
    solver : str, default="CLARABEL"
        Any solver name known to :func:`cvxpy.installed_solvers` that handles
        the program's cones (second-order, and exponential for the logistic
        and multinomial losses).
    solver_options : dict, default=None
        Keyword arguments for the solver.
    verbose : int, default=0
        Forwarded to CVXPY as ``verbose=verbose > 1``.

    Returns
    -------
    result : SolveResult
        ``constraint_violation`` is the relative violation of the returned
        point (0 up to rounding); ``info["solver_violation"]`` that of the
        solver's own point; ``info["multipliers"]`` the cone multipliers of
        the certificate.

    Raises
    ------
    SolverError
        If the solver fails or reports an infeasible or unbounded program.
    """
    from ..programs.cones import certify

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
    coef, cert, b, violation, after = certify(
        problem, result.coef, result.intercept, multipliers
    )
    result.coef, result.intercept = coef, b
    result.objective, result.dual_objective = cert.primal, cert.dual
    result.constraint_violation = after
    result.info["solver_violation"] = violation
    result.info["multipliers"] = multipliers
    result.n_products += 3
    return result
