"""Accelerated proximal gradient with adaptive steps and a certified stopping rule.

Solves :math:`\\min_W f(W) + \\alpha R(W)` for a :class:`~skconvex.programs.problem.ConvexProblem`
(:math:`f` = datafit composed with the pattern operator, intercept minimized
out; :math:`R` = block penalty with a cheap prox).

Per iteration: one forward product at the new point :math:`x_{k+1}` and one
adjoint at the extrapolated point :math:`y_k`; the forward product at
:math:`y_{k+1} = x_{k+1} + \\beta(x_{k+1} - x_k)` comes free by linearity.
Because the gradient at :math:`y_k` is :math:`\\mathcal{A}^\\top\\nabla F`, the
dual point :math:`-c\\nabla F(y_k)` costs no extra product, and the primal
value of :math:`x_{k+1}` comes with its line search, so the stopping rule, the
certified relative gap (best primal value minus best dual value), is checked
at every iteration for free.

Step sizes grow geometrically and backtrack on the sufficient-decrease test
(Scheinberg, Goldfarb & Bai, 2014); momentum restarts when it points uphill
(O'Donoghue & Candès, 2015).

The certified gap closes more slowly than the primal value (the dual point is
a scaled gradient, accurate to about the square root of the primal error), so
the last digits of a certificate cost FISTA most of its iterations. An
optional ``polish`` (Newton's method on the support, see
:mod:`skconvex.solvers.support_newton`) takes over once the support is stable.

A program moved to an array-API namespace
(:meth:`~skconvex.programs.problem.ConvexProblem.to_namespace`) is solved in
that namespace and on its device: iterates, products, proxes and the
certificate (float64 on the device) stay there, and only scalars, the
intercept and, when a polish is tried, the support's block norms come to the
host. A polish that says it computes on the program
(``polish.runs_in_namespace(problem)``, as
:func:`~skconvex.solvers.support_newton.support_newton` does where the
namespace has what it needs) runs there too; any other runs on the host
program (:meth:`~skconvex.programs.problem.ConvexProblem.to_host`) and its
point is certified back on the device.
"""

import time
from types import SimpleNamespace

import numpy as np

from ..programs.problem import array_helpers
from ._result import SolveResult

__all__ = ["fista", "polish_and_certify", "solve_certified"]


# Iterations between dual points while the certified gap is far above tol.
_FAR_DUAL_EVERY = 4


def _print_iter(k, best_primal, best_dual, step, t0):
    rel = (best_primal - best_dual) / max(abs(best_primal), np.finfo(float).tiny)
    print(
        f"[fista] iter {k:5d}  objective {best_primal:.10g}  rel. gap {rel:.3e}  "
        f"step {step:.3e}  {time.perf_counter() - t0:.2f}s",
        flush=True,
    )


def fista(
    problem,
    *,
    coef_init=None,
    intercept_init=None,
    tol=1e-6,
    max_iter=1000,
    step_init=None,
    step_growth=1.2,
    verbose=0,
    dual_init=-np.inf,
    polish=None,
    polish_gap=1e-2,
    polish_final=True,
):
    """Accelerated proximal gradient (FISTA) with a certified duality-gap stop.

    Parameters
    ----------
    problem : ConvexProblem
        The program to solve.
    coef_init : ndarray of shape problem.coef_shape, default=None
        Starting point (zeros when None).
    intercept_init : ndarray of shape (n_outputs,), default=None
        Warm start of the intercept's inner solver.
    tol : float, default=1e-6
        Stop when the certified gap is at most ``tol`` times the objective.
    max_iter : int, default=1000
        Maximum number of iterations.
    step_init : float, default=None
        First step size; estimated from a few power iterations when None.
    step_growth : float, default=1.2
        Factor by which the step grows before each iteration's line search.
    verbose : int, default=0
        Print progress every 10 iterations (1) or every iteration (>= 2).
    dual_init : float, default=-inf
        A dual value already certified for this problem (a lower bound).
    polish : callable, default=None
        End-game on the support, such as
        :func:`~skconvex.solvers.support_newton.support_newton`, called as
        ``polish(problem, coef, intercept, tol=..., max_products=m)`` and
        returning ``(coef, intercept, info)`` (``info`` with the keys of
        ``support_newton``'s). It is tried once the relative gap is below
        ``polish_gap`` and the support has not changed for 10 iterations
        (then 20, 40, ... after an attempt that did not certify), with a
        budget ``m`` of the products FISTA spent since the previous attempt;
        its point is certified on the full program and FISTA restarts from it
        when it is better. A polish with an ``applies_to(problem)`` attribute
        that returns False is dropped from the start. The returned point is
        solved on its support to machine precision (``tol=1e-12`` in float64;
        Newton converges quadratically there, so this costs a step or two),
        which makes it independent of the iterates that led to it: weighted
        and repeated rows give the same network.
    polish_gap : float, default=1e-2
        Relative gap below which ``polish`` is tried.
    polish_final : bool, default=True
        Polish the returned point on its support to machine precision (see
        ``polish``). A working-set solver, whose inner solves are
        intermediate, does it once at its end instead.

    Returns
    -------
    result : SolveResult
        The best point seen, its objective and the best certified lower bound.

    References
    ----------
    A. Beck and M. Teboulle. A fast iterative shrinkage-thresholding algorithm
    for linear inverse problems. SIAM J. Imaging Sci., 2009.
    K. Scheinberg, D. Goldfarb and X. Bai. Fast first-order methods for
    composite convex optimization with backtracking. Found. Comput. Math., 2014.
    B. O'Donoghue and E. Candès. Adaptive restart for accelerated gradient
    schemes. Found. Comput. Math., 2015.
    """
    A, pen, alpha = problem.operator, problem.penalty, problem.alpha
    dtype = problem.dtype
    ops = array_helpers(problem)
    t0 = time.perf_counter()
    n_products = 0

    x = problem.zeros() if coef_init is None else ops.asarray(coef_init)
    Ax = A.forward(x)
    f_x, b_x = problem.smooth_value(Ax, intercept_init)
    n_products += 1
    best_primal = f_x + alpha * pen.value(x)
    best = (ops.copy(x), b_x)
    best_dual = dual_init
    dual_grad = None

    applies = getattr(polish, "applies_to", None)
    if applies is not None and not applies(problem):
        polish = None
    # Between dual points while far from the certificate: the polish's trigger
    # (polish_gap) and the stop (tol) each see every iteration's dual point
    # from ten times above them, so neither moves.
    far_gap = 10 * (tol if polish is None else max(tol, polish_gap))

    if step_init is None:
        lip = problem.datafit.lipschitz * A.lipschitz(problem.sample_weight, n_iter=3)
        n_products += 6
        step_init = 1.0 / lip if lip > 0 else 1.0
    step = float(step_init)

    y, Ay, b_y = x, Ax, b_x
    t_mom = 1.0
    datafit, Y, sw = problem.datafit, problem.y, problem.sample_weight
    value_test = dtype == np.float64 and not getattr(datafit, "quadratic", False)
    converged = False
    history = []
    support, stable, wait, n_newton, products_at_polish = None, 0, 10, 0, 0
    best_is_polished = False
    k = 0
    for k in range(1, max_iter + 1):
        f_y, b_y, grad_y = problem.smooth(Ay, b_y)
        G = A.adjoint(grad_y)
        n_products += 1

        # The primal side of the certificate comes from the x iterates (their
        # penalty value is a by-product of the prox); y only supplies a dual point.
        # The gap falls by about 10x per hundred iterations, so a dual point
        # every few iterations while it is above far_gap stops as early. The
        # last iteration always takes one: a working set reads the dual
        # point of a solve cut by max_iter.
        far = best_primal - best_dual > far_gap * abs(best_primal)
        if not far or (k - 1) % _FAR_DUAL_EVERY == 0 or k == max_iter:
            dual = problem.dual_value(grad_y, G)
            if dual > best_dual:
                best_dual, dual_grad = dual, grad_y
        history.append((best_primal, best_dual))
        if verbose >= 2 or (verbose and k % 10 == 1):
            _print_iter(k, best_primal, best_dual, step, t0)
        if best_primal - best_dual <= tol * abs(best_primal):
            converged = True
            break
        if not np.isfinite(best_primal):
            raise FloatingPointError(
                "The objective is not finite; check the scaling of X and y."
            )

        # Proximal step with backtracking on a bound of the Taylor remainder
        # of the datafit (exact for the squared loss, self-concordance bounds
        # otherwise). Unlike comparing two nearly equal function values it
        # stays reliable when float32 rounding swamps the decrease; in float64
        # the plain value test may also accept a step.
        step_prev = step
        step *= step_growth
        full_y = ops.add_intercept(Ay, b_y)
        while True:
            x_new, pen_new = pen.prox(y - step * G, step * alpha, return_value=True)
            Ax_new = A.forward(x_new)
            n_products += 1
            d = x_new - y
            dd = ops.vdot(d, d)
            remainder = datafit.remainder_bound(full_y, Y, sw, Ax_new - Ay)
            if remainder <= dd / (2 * step) * (1 + 1e-6):
                f_new, b_new = problem.smooth_value(Ax_new, b_y)
                break
            f_new, b_new = problem.smooth_value(Ax_new, b_y)
            if value_test and f_new <= f_y + ops.vdot(G, d) + dd / (2 * step):
                break
            step *= 0.5
            if step < 1e-30:
                break
        primal_new = f_new + alpha * pen_new
        if primal_new < best_primal:
            best_primal, best, best_is_polished = primal_new, (ops.copy(x_new), b_new), False

        # Momentum, restarted when the step and the momentum disagree
        # (<y - x_new, x_new - x> > 0).
        dx = x_new - x
        if ops.vdot(d, dx) < 0:
            t_mom = 1.0
        # Python floats: a NumPy float64 scalar would promote float32 arrays.
        t_next = 0.5 * (1 + float(np.sqrt(1 + 4 * (step_prev / step) * t_mom**2)))
        beta = float((t_mom - 1) / t_next)
        t_mom = t_next
        y = x_new + beta * dx
        Ay = Ax_new + beta * (Ax_new - Ax)
        b_y = b_new
        x, Ax = x_new, Ax_new
        if step < 1e-30:
            break

        if polish is None:
            continue
        new_support = ops.to_numpy(pen.group_norms(x_new)) > 0
        stable = stable + 1 if support is not None and np.array_equal(new_support, support) else 0
        support = new_support
        if stable < wait or best_primal - best_dual > polish_gap * abs(best_primal):
            continue
        stable, wait = 0, 2 * wait
        # A polish may cost at most about the products FISTA spent since the
        # last one, so failed attempts at most double the work; one that
        # certifies but was cut short finishes its (quadratically converging)
        # restricted solve, so the answer is the restricted optimum.
        budget, start = max(100, n_products - products_at_polish), best
        for _ in range(2):
            pol, spent = polish_and_certify(problem, polish, start[0], start[1], max_products=budget)
            n_products += spent
            n_newton += pol.info["n_steps"]
            if not pol.applied:
                if not pol.info["applicable"]:
                    polish = None
                break
            if pol.dual > best_dual:
                best_dual, dual_grad = pol.dual, pol.grad
            if pol.primal < best_primal:
                best_primal, best = pol.primal, (ops.copy(pol.coef), pol.intercept)
                x, Ax, y, Ay, b_y, t_mom = pol.coef, pol.pred, pol.coef, pol.pred, pol.intercept, 1.0
                best_is_polished = pol.info["converged"]
            converged = best_primal - best_dual <= tol * abs(best_primal)
            if verbose:
                print(
                    f"[fista] iter {k:5d}  Newton on {int(support.sum())} blocks: "
                    f"{pol.info['n_steps']} steps, {pol.info['n_products']} products, "
                    f"rel. gap {(pol.primal - pol.dual) / max(abs(pol.primal), 1e-300):.3e}",
                    flush=True,
                )
            if not converged or pol.info["converged"]:
                break
            budget, start = np.inf, (pol.coef, pol.intercept)
        products_at_polish = n_products
        if converged:
            history.append((best_primal, best_dual))
            break

    if converged and polish is not None and polish_final and not best_is_polished:
        # The certified point itself, solved on its support to machine
        # precision: the answer no longer depends on the iterates that led
        # to it (weighted and repeated rows give the same network).
        pol, spent = polish_and_certify(problem, polish, best[0], best[1], max_products=max(100, n_products))
        n_products += spent
        n_newton += pol.info["n_steps"]
        if pol.applied:
            if pol.dual > best_dual:
                best_dual, dual_grad = pol.dual, pol.grad
            if pol.primal <= best_primal:
                best_primal, best = pol.primal, (ops.copy(pol.coef), pol.intercept)
                best_is_polished = pol.info["converged"]

    if verbose:
        _print_iter(k, best_primal, best_dual, step, t0)
    return SolveResult(
        coef=best[0],
        intercept=np.asarray(best[1], dtype=np.float64),
        objective=best_primal,
        dual_objective=best_dual,
        n_iter=k,
        converged=converged,
        solver="fista",
        n_products=n_products,
        history=history,
        info={"step": step, "dual_grad": dual_grad, "newton_steps": n_newton, "polished": best_is_polished},
    )


def _polish_tol(dtype):
    """Newton decrement aimed at by a polish: machine precision of the compute dtype."""
    return 1e-12 if np.dtype(dtype) == np.float64 else 1e-6


def polish_and_certify(problem, polish, coef, intercept, *, max_products=np.inf):
    """Run ``polish`` from a point and certify its result on the full program.

    Parameters
    ----------
    problem : ConvexProblem
        The program.
    polish : callable
        A polish with the signature of
        :func:`~skconvex.solvers.support_newton.support_newton`.
    coef : ndarray of shape problem.coef_shape
        Starting point.
    intercept : ndarray of shape (n_outputs,)
        Its intercept.
    max_products : float, default=inf
        Budget of operator products of the polish.

    Returns
    -------
    polished : types.SimpleNamespace
        ``applied`` and ``info`` (the polish's) and, when it applied,
        ``coef``, ``intercept``, ``pred`` (forward product), ``primal``,
        ``dual`` and ``grad`` (datafit gradient, the dual point).
    n_products : int
        Operator products spent, certificate included.
    """
    # A polish that supports the program's namespace (``runs_in_namespace``)
    # computes on its arrays; any other runs on the host copy of the program,
    # and its point is certified back on the device.
    ops = array_helpers(problem)
    in_namespace = getattr(polish, "runs_in_namespace", None)
    if in_namespace is not None and in_namespace(problem):
        W, b, info = polish(problem, coef, intercept, tol=_polish_tol(problem.dtype), max_products=max_products)
    else:
        W, b, info = polish(
            ops.to_host(), ops.to_numpy(coef), intercept,
            tol=_polish_tol(problem.dtype), max_products=max_products,
        )
    if not info["applied"]:
        return SimpleNamespace(info=info, applied=False), info["n_products"]
    W = ops.from_host(W)
    A = problem.operator
    pred = A.forward(W)
    value, b, grad = problem.smooth(pred, b)
    dual = problem.dual_value(grad, A.adjoint(grad))
    primal = value + problem.alpha * problem.penalty.value(W)
    polished = SimpleNamespace(
        coef=W, intercept=b, pred=pred, primal=primal, dual=dual, grad=grad, info=info, applied=True
    )
    return polished, info["n_products"] + 2


def solve_certified(problem, solver=fista, *, tol=1e-6, float32_tol=1e-5, **kwargs):
    """Run ``solver`` and certify its answer in float64.

    When the problem computes in float32, the gap seen during the iterations
    is only as precise as float32. This wrapper recomputes the certificate of
    the returned point in float64 and, if that certified gap exceeds ``tol``,
    continues in float64 from there, so the returned gap is always a float64
    certificate.

    Parameters
    ----------
    problem : ConvexProblem
        The program.
    solver : callable, default=fista
        A solver with the signature of :func:`fista`.
    tol : float, default=1e-6
        Relative gap to reach.
    float32_tol : float, default=1e-5
        Relative gap at which a float32 solve hands over to float64.
    **kwargs : dict
        Passed to ``solver``.

    Returns
    -------
    result : SolveResult
        With ``objective`` and ``dual_objective`` computed in float64.
    """
    if problem.dtype == np.float64:
        return solver(problem, tol=tol, **kwargs)
    # float32 certificates are noisy near 1e-6 relative (rounding in the
    # predictions), so float32 stops at ``float32_tol`` and float64 takes over.
    result = solver(problem, tol=max(tol, float32_tol), **kwargs)
    problem64 = problem.astype(np.float64)
    cert, b, _ = problem64.evaluate(array_helpers(problem64).asarray(result.coef), result.intercept)
    result.n_products += 2
    if cert.gap <= tol * abs(cert.primal):
        result.objective, result.dual_objective, result.intercept = cert.primal, cert.dual, b
        return result
    kwargs = dict(kwargs)
    kwargs["max_iter"] = max(1, kwargs.get("max_iter", 1000) - result.n_iter)
    for key in ("coef_init", "intercept_init", "dual_init", "step_init"):
        kwargs.pop(key, None)
    refined = solver(
        problem64,
        tol=tol,
        coef_init=result.coef,
        intercept_init=b,
        dual_init=cert.dual,
        step_init=result.info.get("step"),
        **kwargs,
    )
    refined.n_iter += result.n_iter
    refined.n_products += result.n_products
    refined.info["float32_iter"] = result.n_iter
    return refined
