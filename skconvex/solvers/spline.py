"""The exact training program of one-dimensional ReLU networks as a sparse quadratic program.

The Lasso over the ramps of :class:`~skconvex.programs.ramps.RampOperator`,

.. math:: \\min_{z, b}\\; \\tfrac12\\sum_j s_j\\big(b + \\textstyle\\sum_k z_k
          (\\sigma_k(x_j - t_k))_+ - y_j\\big)^2 + \\alpha\\|z\\|_1,

has a dense, highly correlated design. With the knots at the sorted distinct
values :math:`v_1 < \\dots < v_K` of a feature, write the coefficients of the
increasing ramps as differences of *slopes* :math:`S_i` and those of the
decreasing ramps as differences of :math:`T_i`, one per interval
:math:`[v_i, v_{i+1}]` (length :math:`\\Delta_i`):
:math:`z^{\\uparrow}_k = S_k - S_{k-1}` (:math:`S_0 = 0`) and
:math:`z^{\\downarrow}_{k+1} = T_k - T_{k+1}` (:math:`T_K = 0`). The values
:math:`F_j` of the spline at the knots then satisfy
:math:`F_1 = \\sum_i T_i\\Delta_i` and
:math:`F_{j+1} - F_j = (S_j - T_j)\\Delta_j`, so the program becomes a
quadratic program with :math:`O(n)` non-zeros (the :math:`\\ell_1` norm
through :math:`|D| \\le w`), which interior-point (Clarabel) and ADMM (OSQP)
solvers handle in linear time per iteration.
"""

import numpy as np
import scipy.sparse as sp

from ..programs.ramps import RampOperator
from ._result import SolveResult
from .conic import SolverError
from .fista import fista

__all__ = ["spline_qp"]


def _qp(operator, y, sample_weight, alpha):
    """Sparse matrices of the quadratic program (rows with positive weight only)."""
    keep = sample_weight > 0
    n = int(keep.sum())
    s = sample_weight[keep]
    rows, cols, vals = [], [], []
    row = 0
    col = 1  # column 0 is the intercept
    ineq = []
    q_parts, layout = [], []
    resid_cols = []
    for k, v, gaps, u, exact, centre, start, K in operator._parts:
        m = K - 1
        cS, cT, cF, cW = col, col + m, col + 2 * m, col + 2 * m + K
        col += 2 * m + K + 2 * m
        layout.append((start, m, cS, cT))
        idx = np.arange(m)
        # F_1 - sum_i T_i gaps_i = 0
        rows += [np.full(m + 1, row)]
        cols += [np.r_[cF, cT + idx]]
        vals += [np.r_[1.0, -gaps]]
        row += 1
        # F_{j+1} - F_j - S_j gaps_j + T_j gaps_j = 0
        r = row + idx
        rows += [np.repeat(r, 4)]
        cols += [np.stack([cF + idx + 1, cF + idx, cS + idx, cT + idx], axis=1).ravel()]
        vals += [np.stack([np.ones(m), -np.ones(m), -gaps, gaps], axis=1).ravel()]
        row += m
        ineq.append((m, cS, cT, cW))
        q_parts.append((cW, 2 * m))
        resid_cols.append(cF + u[keep])
    n_eq = row
    # Residual equalities: b + sum_f F^f_{u_f(i)} - r_i = y_i.
    cR = col
    n_var = col + n
    idx = np.arange(n)
    r = n_eq + idx
    rows += [r, r]
    cols += [np.zeros(n, dtype=np.intp), cR + idx]
    vals += [np.ones(n), -np.ones(n)]
    for c in resid_cols:
        rows.append(r)
        cols.append(c)
        vals.append(np.ones(n))
    n_eq += n
    # |D| <= w with D the coefficient differences: 2 rows per coefficient.
    row = n_eq
    for m, cS, cT, cW in ineq:
        if m == 0:
            continue
        idx = np.arange(m)
        for sign in (1.0, -1.0):
            # up: S_k - S_{k-1} (S_{-1} = 0); down: T_k - T_{k+1} (T_m = 0)
            r = row + idx
            rows += [r, r[1:], r]
            cols += [cS + idx, cS + idx[:-1], cW + idx]
            vals += [np.full(m, sign), np.full(m - 1, -sign), -np.ones(m)]
            row += m
            r = row + idx
            rows += [r, r[:-1], r]
            cols += [cT + idx, cT + idx[1:], cW + m + idx]
            vals += [np.full(m, sign), np.full(m - 1, -sign), -np.ones(m)]
            row += m
    A = sp.csc_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(row, n_var)
    )
    b_eq = np.r_[np.zeros(n_eq - n), y[keep]]
    q = np.zeros(n_var)
    for cW, size in q_parts:
        q[cW : cW + size] = alpha
    P = sp.diags(np.r_[np.zeros(cR), s], format="csc")
    return P, q, A, b_eq, n_eq, layout


def spline_qp(problem, *, solver="clarabel", tol=1e-8, max_iter=100_000, polish_iter=200, verbose=0):
    """Solve the ramp Lasso through its sparse quadratic program and certify it.

    Parameters
    ----------
    problem : ConvexProblem
        The ramp Lasso over a :class:`~skconvex.programs.ramps.RampOperator`
        (built by :func:`~skconvex.programs.ramps.spline_problem`); rows of
        zero weight are ignored.
    solver : {"clarabel", "osqp"}, default="clarabel"
        Interior point (a few tens of iterations) or ADMM with polishing.
    tol : float, default=1e-8
        Solver tolerance (Clarabel's relative gap and feasibility, OSQP's
        ``eps_abs`` and ``eps_rel``).
    max_iter : int, default=100000
        Solver iterations.
    polish_iter : int, default=200
        Proximal gradient steps after the solve, which give exact zeros.
    verbose : int, default=0
        Solver log when > 1.

    Returns
    -------
    result : SolveResult
        ``coef`` of shape (1, n_ramps, 1) in the order of
        :class:`~skconvex.programs.ramps.RampOperator`; objective and certified lower
        bound from :meth:`~skconvex.programs.problem.ConvexProblem.evaluate`.

    Raises
    ------
    TypeError
        If ``problem`` is not a single-output program over ramps.
    SolverError
        If the solver fails.
    """
    operator = problem.operator
    if not isinstance(operator, RampOperator) or problem.n_outputs != 1:
        raise TypeError(
            "spline_qp solves the single-output ramp Lasso of skconvex.programs.ramps.spline_problem; "
            f"got a problem over {type(operator).__name__} with {problem.n_outputs} outputs."
        )
    y, s = problem.y[:, 0], problem.sample_weight
    zero = np.zeros(operator.coef_shape)
    cert, b, _ = problem.evaluate(zero)
    if cert.gap <= tol * abs(cert.primal):
        # alpha at or above alpha_max: the empty spline is certified, and
        # the QP, with a huge linear term, can make Clarabel fail.
        return SolveResult(
            coef=zero, intercept=np.asarray(b, dtype=np.float64), objective=cert.primal,
            dual_objective=cert.dual, n_iter=1, converged=True, solver=solver,
            info={"status": "empty network certified"},
        )
    P, q, A, b_eq, n_eq, layout = _qp(operator, y, s, problem.alpha)
    n_var = A.shape[1]
    if solver == "clarabel":
        import clarabel

        settings = clarabel.DefaultSettings()
        settings.verbose = verbose > 1
        settings.tol_gap_rel = settings.tol_feas = tol
        settings.tol_gap_abs = tol * 1e-2
        settings.max_iter = min(int(max_iter), 500)
        cones = [clarabel.ZeroConeT(n_eq), clarabel.NonnegativeConeT(A.shape[0] - n_eq)]
        rhs = np.r_[b_eq, np.zeros(A.shape[0] - n_eq)]
        sol = clarabel.DefaultSolver(sp.triu(P, format="csc"), q, A, rhs, cones, settings).solve()
        status = str(sol.status)
        if status not in ("Solved", "AlmostSolved", "MaxIterations", "MaxTime"):
            raise SolverError(f"Clarabel returned status {status!r} on the spline program.")
        x, n_iter, converged = np.asarray(sol.x), int(sol.iterations), status == "Solved"
    else:
        import osqp

        lower = np.r_[b_eq, np.full(A.shape[0] - n_eq, -np.inf)]
        upper = np.r_[b_eq, np.zeros(A.shape[0] - n_eq)]
        model = osqp.OSQP()
        model.setup(
            sp.triu(P, format="csc"), q, A, lower, upper,
            eps_abs=tol, eps_rel=tol, max_iter=int(max_iter), polishing=True, verbose=verbose > 1,
        )
        res = model.solve(raise_error=False)
        status = res.info.status
        if status not in ("solved", "solved inaccurate", "maximum iterations reached"):
            raise SolverError(f"OSQP returned status {status!r} on the spline program.")
        x, n_iter, converged = np.asarray(res.x), int(res.info.iter), status == "solved"
        del model
    if x.shape != (n_var,) or not np.all(np.isfinite(x)):
        raise SolverError(f"The {solver} solver returned no finite solution (status {status!r}).")
    z = np.zeros(operator.coef_shape[1])
    for start, m, cS, cT in layout:
        S, T = x[cS : cS + m], x[cT : cT + m]
        z[start : start + m] = np.diff(np.r_[0.0, S])
        z[start + m : start + 2 * m] = -np.diff(np.r_[T, 0.0])
    coef = z.reshape(operator.coef_shape)
    cert, b, _ = problem.evaluate(coef)
    # Interior-point and ADMM solutions are zero only to the solver's
    # accuracy. Proximal gradient steps from there set the inactive ramps
    # exactly to zero (soft-thresholding) and only lower the objective; the
    # best point is kept, so the certificate can only improve.
    polish = fista(problem, coef_init=coef, intercept_init=b, tol=1e-12, max_iter=polish_iter, dual_init=cert.dual)
    if polish.objective <= cert.primal:
        coef, b = polish.coef, polish.intercept
        cert, b, _ = problem.evaluate(coef, b)
        cert_dual = max(cert.dual, polish.dual_objective)
    else:
        cert_dual = cert.dual
    return SolveResult(
        coef=coef,
        intercept=np.asarray(b, dtype=np.float64),
        objective=cert.primal,
        dual_objective=cert_dual,
        n_iter=max(1, n_iter),
        converged=converged,
        solver=solver,
        info={"status": status},
    )
