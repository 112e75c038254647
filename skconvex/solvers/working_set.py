"""Working sets: solve on the blocks that matter, certify on all of them.

At the solution of a block-sparse program most blocks are zero, and a zero
block :math:`p` stays optimal as long as its dual norm
:math:`R^\\circ_p(\\mathcal{A}^\\top\\nabla F) \\le \\alpha`. The outer loop
evaluates the full gradient, keeps the non-zero blocks plus the zero blocks
that violate (or nearly violate) that condition, solves the restricted program
with an inner solver to a fraction of the current gap, and stops once the
*full* certified gap is below ``tol``. Each inner iteration costs in
proportion to the working set, not to all patterns (the strategy of celer,
Massias, Gramfort & Salmon, 2018, for the Lasso).

:func:`cone_working_set_solve` does the same for the exact ReLU programs,
whose zero columns are tested with their best cone multipliers; it is what a
warm-started exact fit (a step of a regularization path) runs.

:func:`working_set_solve` also solves programs moved to an array-API
namespace (:class:`~skconvex.programs.problem.NamespaceProblem`): the blocks
are gathered and padded on the device, and only the block norms that rank
the working set come to the host.
"""

import time

import numpy as np

from ..programs._protocols import require_restrict
from ..programs.cones import certify
from ..programs.problem import array_helpers
from ._result import SolveResult
from .auglag import augmented_lagrangian
from .face_newton import _applicable as _face_newton_applies
from .face_newton import face_newton
from .fista import fista, polish_and_certify

__all__ = ["cone_working_set_solve", "working_set_solve"]


def working_set_solve(
    problem,
    *,
    inner=fista,
    coef_init=None,
    intercept_init=None,
    tol=1e-6,
    max_iter=1000,
    min_size=16,
    growth=2.0,
    verbose=0,
    dual_init=-np.inf,
    **inner_params,
):
    """Solve ``problem`` by an inner solver on growing working sets of blocks.

    Parameters
    ----------
    problem : ConvexProblem
        The program.
    inner : callable, default=fista
        Inner solver with the signature of :func:`~skconvex.solvers.fista`.
    coef_init : ndarray of shape problem.coef_shape, default=None
        Starting point.
    intercept_init : ndarray of shape (n_outputs,), default=None
        Warm start of the intercept.
    tol : float, default=1e-6
        Target relative gap of the full program.
    max_iter : int, default=1000
        Total budget of inner iterations.
    min_size : int, default=16
        Smallest working set.
    growth : float, default=2.0
        The working set holds ``growth`` times the number of non-zero blocks.
    verbose : int, default=0
        Print one line per outer iteration (and pass ``verbose - 1`` inside).
    dual_init : float, default=-inf
        A lower bound already certified for this problem.
    **inner_params : dict
        Passed to ``inner``. A ``polish`` among them is also applied once to
        the final point (the inner solves get ``polish_final=False``).

    Returns
    -------
    result : SolveResult
        Full-size coefficients with the full program's certificate.

    References
    ----------
    M. Massias, A. Gramfort and J. Salmon. Celer: a fast solver for the Lasso
    with dual extrapolation. ICML 2018.
    """
    require_restrict(problem, "working_set_solve", "a single solve of the full program (fista, augmented_lagrangian or nested_augmented_lagrangian)")
    t0 = time.perf_counter()
    A = problem.operator
    d, P, C = problem.coef_shape
    pen, alpha = problem.penalty, problem.alpha
    ops = array_helpers(problem)
    W = problem.zeros() if coef_init is None else ops.asarray(coef_init)
    cert, b, G = problem.evaluate(W, intercept_init)
    primal, best_dual = cert.primal, max(dual_init, cert.dual)
    n_iter, n_products = 0, 2
    history = []
    step = inner_params.pop("step_init", None)
    polish = inner_params.get("polish")
    if polish is not None:
        # Inner solves are intermediate: the final polish is done once, below.
        inner_params["polish_final"] = False
    converged = polished = False
    while True:
        gap = primal - best_dual
        history.append((primal, best_dual))
        converged = gap <= tol * abs(primal)
        if verbose:
            print(
                f"[working set] inner iters {n_iter:5d}  objective {primal:.10g}  "
                f"rel. gap {gap / max(abs(primal), 1e-300):.3e}  "
                f"{time.perf_counter() - t0:.2f}s",
                flush=True,
            )
        if converged or n_iter >= max_iter:
            break

        active = ops.to_numpy(pen.group_norms(W)) > 0
        size = min(P, max(min_size, int(growth * active.sum())))
        # Zero blocks ranked by how much they violate the optimality condition
        # R_p(G_p) <= alpha at the latest dual point.
        # Block norms come to the host (P numbers) to pick the working set.
        score = np.array(ops.to_numpy(pen.dual_group_norms(G))) if alpha > 0 else np.ones(P)
        score[active] = np.inf
        # A working set restarts the inner solver's momentum; it pays only when
        # it is much smaller than the whole problem.
        if size >= P / 2:
            blocks = np.arange(P)
        else:
            blocks = np.sort(np.argpartition(-score, size - 1)[:size])
        full = blocks.size == P
        sub = problem if full else problem.restrict(blocks)
        res = inner(
            sub,
            coef_init=ops.take_blocks(W, blocks),
            intercept_init=b,
            tol=tol if full else max(0.5 * tol, 0.3 * gap / abs(primal)),
            max_iter=max_iter - n_iter,
            step_init=step,
            verbose=max(0, verbose - 1),
            **inner_params,
        )
        n_iter += res.n_iter
        polished = res.info.get("polished", False)
        n_products += res.n_products
        step = res.info.get("step")
        W = ops.scatter_blocks(blocks, res.coef)
        b, primal = res.intercept, res.objective
        if full:
            best_dual = max(best_dual, res.dual_objective)
            converged = res.converged
            break
        # The best dual point of the restricted program, rescaled to satisfy
        # the dual constraint of every block, certifies the full program.
        grad = res.info.get("dual_grad")
        if grad is None:
            cert, b, G = problem.evaluate(W, b)
            best_dual = max(best_dual, cert.dual)
        else:
            G = A.adjoint(grad)
            best_dual = max(best_dual, problem.dual_value(grad, G))
        n_products += 1

    if converged and polish is not None and not polished:
        # As in fista: the answer, solved on its support to machine precision
        # (unless the last inner solve ended on a converged polish).
        pol, spent = polish_and_certify(problem, polish, W, b, max_products=max(100, n_products))
        n_products += spent
        if pol.applied:
            best_dual = max(best_dual, pol.dual)
            if pol.primal <= primal:
                W, b, primal = pol.coef, pol.intercept, pol.primal

    return SolveResult(
        coef=W,
        intercept=np.asarray(b, dtype=np.float64),
        objective=primal,
        dual_objective=best_dual,
        n_iter=max(n_iter, 1),
        converged=converged,
        solver="fista-ws",
        n_products=n_products,
        history=history,
        info={"step": step},
    )


def cone_working_set_solve(
    problem,
    *,
    restricted_solver=None,
    coef_init=None,
    intercept_init=None,
    multipliers_init=None,
    tol=1e-6,
    max_iter=500,
    min_size=16,
    polish=True,
    verbose=0,
    **inner_params,
):
    """Solve a cone-constrained program on working sets seeded by a warm start.

    Most columns of an exact ReLU program
    (:class:`~skconvex.programs.cones.ConeConstrainedProblem`) are zero at its
    solution, and a zero column is optimal when cone multipliers can bring
    its gradient to a dual norm at most ``alpha``: a non-negative
    least-squares test per column
    (:meth:`~skconvex.programs.cones.ConeConstrainedProblem.refine_multipliers`). Each
    round solves the program restricted to a working set, pads the solution
    with zeros (feasible for the full program: a zero column lies in every
    cone) and certifies it on the full program, with the restricted solver's
    multipliers on the working set and the best multipliers of every other
    column. Columns that fail their test join the next working set. The
    start is certified with the best multipliers of every column, and the
    first restricted solve starts from them: from zero multipliers (or a
    poor guess) on columns whose cone constraints are tight, the augmented
    Lagrangian drifts out of the cones and spends most of its Newton steps
    coming back. The first working set is the support of ``coef_init`` plus
    as many other columns again (at least ``min_size``), those that fail
    their test by the most: the sequential strong rule of a regularization
    path. Restricted solves restart the augmented Lagrangian's penalties, so
    rounds pay only when the first working set is nearly right: from a cold
    start the full program is cheaper (measured in ``benchmarks/README.md``).
    A warm start is first solved again on its own support, each column on
    the face of its cone that its multipliers mark
    (:func:`~skconvex.solvers.face_newton.face_newton`): the augmented
    Lagrangian's certificate then needs about one outer iteration. Between
    rounds every column keeps its multipliers, so only those whose dual norm
    rose above ``alpha`` are solved for again.

    Parameters
    ----------
    problem : ConeConstrainedProblem
        The program (one cone constraint per row and column).
    restricted_solver : callable, default=None
        Solver of the restricted programs, with the signature of
        :func:`~skconvex.solvers.auglag.augmented_lagrangian` (the default).
    coef_init : ndarray of shape problem.coef_shape, default=None
        Starting point (zeros when None), restored into the cones first.
    intercept_init : ndarray of shape (n_outputs,), default=None
        Warm start of the intercept.
    multipliers_init : ndarray of shape problem.multiplier_shape, default=None
        Starting cone multipliers (e.g. those of the previous solution of a
        path); a column whose dual norm exceeds ``alpha`` with them gets its
        best ones instead.
    tol : float, default=1e-6
        Target relative gap (and cone violation) of the full program.
    max_iter : int, default=500
        Total budget of inner iterations over all rounds; 0 only certifies
        the start (e.g. the empty network at alpha_max).
    min_size : int, default=16
        Fewest columns a round adds to the support (or to the previous
        working set).
    polish : bool, default=True
        Whether to polish a warm start by Newton's method on its support and
        faces before the first round (single-output programs whose support
        holds at most 512 variables; the better point is kept).
    verbose : int, default=0
        Print one line per round (and pass ``verbose - 1`` inside).
    **inner_params : dict
        Passed to ``restricted_solver``.

    Returns
    -------
    result : SolveResult
        Full-size coefficients with the full program's certificate; ``info``
        holds the inner solver's last ``info`` with full-size
        ``multipliers`` and ``iterate``, the number of ``rounds`` and the
        last ``working_set`` (column indices).

    References
    ----------
    M. Massias, A. Gramfort and J. Salmon. Celer: a fast solver for the Lasso
    with dual extrapolation. ICML 2018.
    R. Tibshirani, J. Bien, J. Friedman et al. Strong rules for discarding
    predictors in lasso-type problems. JRSS B, 74(2), 2012.
    """
    require_restrict(problem, "cone_working_set_solve", "augmented_lagrangian or nested_augmented_lagrangian on the full program")
    if restricted_solver is None:
        restricted_solver = augmented_lagrangian
    t0 = time.perf_counter()
    problem = problem.astype(np.float64)
    op, alpha = problem.operator, problem.alpha
    _, P, C = problem.coef_shape
    W = problem.zeros() if coef_init is None else np.array(coef_init, dtype=np.float64)
    lam = None if multipliers_init is None else np.asarray(multipliers_init, dtype=np.float64)
    W, cert, b, _, violation = certify(problem, W, intercept_init, None)
    U, primal, best_dual = W, cert.primal, -np.inf
    n_iter, n_products, rounds, solver = 0, 2, 0, "warm-start"
    blocks = np.flatnonzero(np.einsum("dkc,dkc->k", W, W) > 0)
    history, info = [], {}
    if polish and blocks.size and max_iter > 0 and _face_newton_applies(problem, blocks.size):
        # The previous solution of a path, solved again at this alpha on its
        # support and faces (marked by the support's best multipliers): the
        # feasible point the certificate then needs.
        _, _, grad = problem.smooth(op.forward(W), b)
        lam_support, _ = problem.refine_multipliers(grad, lam, max_columns=P * C, blocks=blocks)
        W_face, b_face, face_info = face_newton(problem, W, b, lam_support)
        n_products += face_info["n_products"] + 2
        if face_info["applied"]:
            p_face, b_face = problem.objective(W_face, b_face)
            if verbose:
                print(
                    f"[cone working set] face Newton: {face_info['n_steps']} steps, objective "
                    f"{primal:.10g} -> {p_face:.10g}",
                    flush=True,
                )
            if p_face < primal:
                W, U, b, primal = W_face, W_face, b_face, p_face
                blocks = np.flatnonzero(np.einsum("dkc,dkc->k", W, W) > 0)
    while True:
        # Certificate of the full program at the latest iterate: the
        # restricted solver's multipliers on the working set, the best ones
        # (non-negative least squares) on the other columns above alpha. At
        # the start every column is refined (see the docstring).
        _, _, grad = problem.smooth(op.forward(U), b)
        outside = np.setdiff1d(np.arange(P), blocks) if rounds else None
        lam, G = problem.refine_multipliers(grad, lam, max_columns=P * C, blocks=outside)
        best_dual = max(best_dual, problem.dual_value(grad, G))
        n_products += 2
        gap = primal - best_dual
        history.append((primal, best_dual, violation))
        converged = gap <= tol * abs(primal) and violation <= tol
        if verbose:
            print(
                f"[cone working set] round {rounds:2d}  columns {blocks.size:5d}  inner iters "
                f"{n_iter:5d}  objective {primal:.10g}  rel. gap "
                f"{gap / max(abs(primal), 1e-300):.3e}  {time.perf_counter() - t0:.2f}s",
                flush=True,
            )
        if converged or n_iter >= max_iter:
            break

        score = np.sqrt(np.einsum("dkc,dkc->kc", G, G)).max(axis=1)
        score[blocks] = np.inf
        violators = int(np.count_nonzero(np.isfinite(score) & (score > alpha)))
        # At least min_size new columns, at most doubling the working set.
        size = blocks.size + max(min_size, min(violators, blocks.size))
        blocks = np.arange(P) if size >= P / 2 else np.sort(np.argpartition(-score, size - 1)[:size])
        full = blocks.size == P
        res = restricted_solver(
            problem if full else problem.restrict(blocks),
            coef_init=W[:, blocks],
            intercept_init=b,
            multipliers_init=None if lam is None else lam[:, blocks],
            tol=tol,
            max_iter=max_iter - n_iter,
            verbose=max(0, verbose - 1),
            **inner_params,
        )
        rounds += 1
        n_iter += res.n_iter
        n_products += res.n_products
        info, solver = res.info, res.solver
        # Multipliers outside the working set are kept: with the next
        # gradient most of those columns stay below alpha and need no new
        # non-negative least-squares solve.
        W, U = problem.zeros(), problem.zeros()
        lam = np.array(lam, dtype=np.float64).reshape(problem.multiplier_shape)
        W[:, blocks] = res.coef
        U[:, blocks] = info.get("iterate", res.coef)
        lam[:, blocks] = np.asarray(info["multipliers"]).reshape(lam[:, blocks].shape)
        b, primal, violation = res.intercept, res.objective, res.constraint_violation
        if full:
            best_dual = max(best_dual, res.dual_objective)
            converged = res.converged
            break

    return SolveResult(
        coef=W,
        intercept=np.asarray(b, dtype=np.float64),
        objective=primal,
        dual_objective=best_dual,
        n_iter=max(n_iter, 1),
        converged=bool(converged),
        solver=f"{solver}-ws" if rounds else solver,
        constraint_violation=violation,
        n_products=n_products,
        history=history,
        info={**info, "multipliers": lam, "iterate": U, "rounds": rounds, "working_set": blocks},
    )
