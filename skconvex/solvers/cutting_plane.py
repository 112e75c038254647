"""Column generation (cutting planes on the dual) for two-layer ReLU networks with weight decay.

The training problem of :math:`f(x) = \\sum_j (x^\\top u_j)_+ a_j^\\top + b`
with the mean loss and weight decay is, after rescaling every neuron to
:math:`\\|u_j\\| = 1` (Pilanci & Ergen, 2020),

.. math:: p^\\star = \\min_{m,\\ \\|u_j\\| = 1,\\ a_j,\\ b}\\;
          F\\Big(\\sum_j (Xu_j)_+ a_j^\\top + \\mathbf{1}b^\\top\\Big)
          + \\alpha \\sum_j \\|a_j\\|_2,

a convex problem over measures on the unit sphere whose dual is the
semi-infinite program

.. math:: \\max_{\\Theta}\\; -F^*(-\\Theta) \\quad\\text{s.t.}\\quad
          \\mathbf{1}^\\top\\Theta = 0,\\quad
          \\max_{\\|u\\| \\le 1}\\|\\Theta^\\top (Xu)_+\\| \\le \\alpha

(Ergen & Pilanci, 2021; Sahiner et al., 2021 for vector outputs). Column
generation alternates a **restricted master problem** (the group lasso over
the output weights of the current neurons, solved by FISTA with a certified
gap) and the **oracle** (:mod:`skconvex.programs.oracles`), which maximizes the dual
constraint at :math:`\\Theta = -\\nabla F` and adds the most violated
directions as neurons. Scaling :math:`\\Theta` by
:math:`\\min(1, \\alpha/\\omega)` with the oracle's certified bound
:math:`\\omega` makes it dual feasible for the *full* problem over the
oracle's domain (every face of the arrangement for an exhaustive oracle), so
each iteration certifies a lower bound on :math:`p^\\star` itself, not only on
the master.

After each master solve, neurons that share a cell are *merged*: inside one
cell the features are linear in :math:`u`, so the neurons :math:`u_j, a_j`
of a cell are replaced by the rank-one factors of :math:`\\sum_j u_j
a_j^\\top` when that lowers the penalty (for one output the merged neuron
:math:`\\sum_j a_j u_j` has norm at most :math:`\\sum_j |a_j|`). The move
keeps every neuron in its cell (so in the oracle's domain) and only lowers
the primal objective; the certificate does not depend on it.
"""

import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..programs.network import ReLUNetworkProblem
from ..programs.operators import PatternOperator
from ..programs.penalties import GroupL2
from ..programs.problem import ConvexProblem
from ._result import SolveResult
from .fista import fista

__all__ = ["cutting_plane", "fit_output_layer"]


def fit_output_layer(
    problem,
    directions,
    *,
    solver="clarabel",
    coef_init=None,
    intercept_init=None,
    tol=1e-8,
    max_iter=5000,
):
    r"""Convex refit of the output layer of a ReLU network with fixed hidden directions.

    Solves the group lasso :math:`\min_{A, b} F((XU)_+A + \mathbf{1}b^\top)
    + \alpha\sum_j\|a_j\|` over the output weights of the unit directions
    ``U`` (the restricted master problem of column generation, and the refit
    step of the rounding of relaxations).

    Parameters
    ----------
    problem : ReLUNetworkProblem
        The network's training problem (data, targets, loss, ``alpha``).
    directions : ndarray of shape (n_features, n_neurons)
        Unit hidden directions.
    solver : {"clarabel", "fista"}, default="clarabel"
        Interior point through CVXPY (accurate, small problems) or FISTA
        (first order, certified to ``tol``).
    coef_init : ndarray of shape (n_neurons, n_outputs), default=None
        Warm start (FISTA only).
    intercept_init : ndarray of shape (n_outputs,), default=None
        Warm start of the intercept.
    tol : float, default=1e-8
        Relative duality gap of the FISTA solve.
    max_iter : int, default=5000
        FISTA iterations.

    Returns
    -------
    result : SolveResult
        ``coef`` of shape (1, n_neurons, n_outputs) (row ``j`` is
        :math:`a_j`), the intercept, the objective and the master problem's
        certified lower bound.
    """
    from .conic import SolverError, cvxpy_solve

    C = problem.n_outputs
    problem = problem.output_layer(directions)
    if solver == "clarabel":
        try:
            with warnings.catch_warnings():
                # An inaccurate master costs nothing: the caller certifies the
                # point it gets, and the next iteration re-solves.
                warnings.filterwarnings("ignore", message="Solution may be inaccurate")
                result = cvxpy_solve(problem, solver="CLARABEL", solver_options=_CLARABEL_TIGHT)
        except SolverError:
            # Interior point can fail on badly scaled masters; the first-order
            # solver cannot, and is certified as well.
            solver = "fista"
    if solver == "clarabel":
        # Interior-point solutions are zero only up to the solver's accuracy;
        # exact zeros make the neuron count meaningful and cost nothing.
        coef = result.coef
        norms = np.linalg.norm(coef, axis=(0, 2))
        coef[:, norms <= 1e-9 * max(norms.max(initial=0.0), 1e-300), :] = 0.0
        cert, b, _ = problem.evaluate(coef, result.intercept)
        result.coef, result.intercept = coef, b
        result.objective, result.dual_objective = cert.primal, max(cert.dual, -np.inf)
        return result
    init = None if coef_init is None else np.asarray(coef_init, dtype=np.float64).reshape(1, -1, C)
    return fista(problem, coef_init=init, intercept_init=intercept_init, tol=tol, max_iter=max_iter)


_CLARABEL_TIGHT = {"tol_gap_rel": 1e-10, "tol_gap_abs": 1e-12, "tol_feas": 1e-10}


def _merge_cells(X, U, A):
    """Replace the neurons sharing a pattern by the rank-one factors of their sum.

    Inside one cell :math:`(Xu)_+ = DXu` is linear, so neurons of a cell only
    matter through :math:`W = \\sum_j u_j a_j^\\top`; a neuron of the SVD of
    :math:`W` stays in the cell when its direction does, and the merge is
    kept only if it lowers :math:`\\sum_j\\|a_j\\|` (the penalty) and keeps
    every direction in the cell.
    """
    if U.shape[1] <= 1:
        return U, A
    Z = X @ U
    scale = 1e-10 * np.abs(Z).max(axis=0, keepdims=True)
    masks = Z > scale
    # Group by the full sign pattern (zeros included): members then share the
    # face they lie on, and so does any combination of them that keeps the
    # signs, which stays inside the oracle's domain.
    keys = np.packbits(np.concatenate([masks, np.abs(Z) <= scale]), axis=0)
    _, inverse, counts = np.unique(keys, axis=1, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    if counts.max() == 1:
        return U, A
    keep_U, keep_A = [], []
    for g in range(len(counts)):
        idx = np.flatnonzero(inverse == g)
        if idx.size == 1:
            keep_U.append(U[:, idx])
            keep_A.append(A[idx])
            continue
        W = U[:, idx] @ A[idx]
        P, s, Qt = np.linalg.svd(W, full_matrices=False)
        live = s > 1e-12 * max(s.max(initial=0.0), 1e-300)
        P, s, Qt = P[:, live], s[live], Qt[live]
        # The SVD's sign is arbitrary; the ReLU is not: orient each factor
        # into the cell of the group (same pattern as its members).
        ref = masks[:, idx[0]]
        zero = np.abs(Z[:, idx[0]]) <= scale[0, idx[0]]
        ok = True
        for k in range(P.shape[1]):
            zk = X @ P[:, k]
            tiny = 1e-9 * np.abs(zk).max()
            for sign in (1.0, -1.0):
                z = sign * zk
                if np.array_equal(z > tiny, ref) and np.all(np.abs(z[zero]) <= tiny):
                    P[:, k], Qt[k] = sign * P[:, k], sign * Qt[k]
                    break
            else:
                ok = False
                break
        penalty_old = np.linalg.norm(A[idx], axis=1).sum()
        if ok and s.sum() < penalty_old:
            keep_U.append(P)
            keep_A.append(s[:, None] * Qt)
        else:
            keep_U.append(U[:, idx])
            keep_A.append(A[idx])
    return np.concatenate(keep_U, axis=1), np.concatenate(keep_A, axis=0)


@dataclass
class _State:
    U: np.ndarray
    A: np.ndarray
    b: np.ndarray
    history: list = field(default_factory=list)


def cutting_plane(
    problem,
    oracle,
    *,
    tol=1e-4,
    max_iter=100,
    n_add=5,
    init_directions=None,
    master_solver="clarabel",
    master_max_iter=5000,
    verbose=0,
):
    """Solve the two-layer ReLU training problem by column generation.

    Parameters
    ----------
    problem : ReLUNetworkProblem
        The training problem (:mod:`skconvex.programs.network`); its
        ``alpha`` must be > 0.
    oracle : callable
        ``oracle(Theta, n_directions=k)`` returning an
        :class:`~skconvex.programs.oracles.OracleResult` (e.g.
        :class:`~skconvex.programs.oracles.ExhaustiveOracle`) on the
        problem's data.
    tol : float, default=1e-4
        Stop when the certified gap is at most ``tol`` times the objective.
    max_iter : int, default=100
        Maximum number of outer iterations (oracle calls).
    n_add : int, default=5
        Largest number of violating directions (distinct patterns) added per
        iteration.
    init_directions : ndarray of shape (n_features, k), default=None
        Initial neurons (unit directions after normalization).
    master_solver : {"clarabel", "fista"}, default="clarabel"
        Solver of the restricted master problem (see :func:`fit_output_layer`).
    master_max_iter : int, default=5000
        FISTA iterations per master problem.
    verbose : int, default=0
        Print one line per outer iteration.

    Returns
    -------
    result : SolveResult
        ``coef`` holds one rank-one block :math:`u_j a_j^\\top` per neuron
        (shape (n_features, n_neurons, n_outputs)); ``info`` holds
        ``"directions"`` (n_features, n_neurons) unit hidden weights,
        ``"output"`` (n_neurons, n_outputs), ``"oracle_values"`` (history of
        the oracle's certified bound divided by ``alpha``), ``"oracle_exact"``
        and ``"stalled"`` (stopped because the oracle found no violated
        constraint while the certified gap exceeded ``tol``: the certificate
        of an inexact oracle cannot be tightened). ``dual_objective`` is a
        lower bound on the optimum over the oracle's domain.

    References
    ----------
    T. Ergen and M. Pilanci. Convex geometry and duality of over-parameterized
    neural networks. JMLR 22(212), 2021, arXiv:2002.11219.

    A. Sahiner, T. Ergen, J. Pauly and M. Pilanci. Vector-output ReLU neural
    network problems are copositive programs. ICLR 2021, arXiv:2012.13329.
    """
    t0 = time.perf_counter()
    X, Y, s, datafit, alpha = problem.X, problem.y, problem.sample_weight, problem.datafit, problem.alpha
    fit_intercept = problem.fit_intercept
    n, d = X.shape
    C = Y.shape[1]
    if not alpha > 0:
        raise ValueError(f"alpha must be positive for column generation, got {alpha!r}.")
    from ..programs.datafits import SquaredError

    if isinstance(datafit, SquaredError):
        # Solve for Y / sigma with alpha / sigma: the objective is exactly
        # sigma^2 times the scaled one, and unit-scale targets keep the
        # interior-point masters well conditioned.
        sigma = float(np.sqrt(s @ ((Y - s @ Y / s.sum()) ** 2).mean(axis=1) / s.sum()))
        if sigma > 0 and not 0.1 <= sigma <= 10:
            scaled = ReLUNetworkProblem(X, Y / sigma, datafit, s, alpha / sigma, fit_intercept=fit_intercept)
            res = cutting_plane(
                scaled, oracle, tol=tol, max_iter=max_iter, n_add=n_add,
                init_directions=init_directions, master_solver=master_solver,
                master_max_iter=master_max_iter, verbose=verbose,
            )
            res.coef *= sigma
            res.intercept = res.intercept * sigma
            res.objective *= sigma**2
            res.dual_objective *= sigma**2
            res.info["output"] = res.info["output"] * sigma
            return res
    if init_directions is None:
        U = np.zeros((d, 0))
    else:
        U = np.asarray(init_directions, dtype=np.float64).reshape(d, -1)
        U = U[:, np.linalg.norm(U, axis=0) > 0]
        U = U / np.linalg.norm(U, axis=0, keepdims=True)
    A = np.zeros((U.shape[1], C))
    b = None
    best_dual = -np.inf
    best = None
    oracle_values = []
    exact = True
    converged = False
    n_products = 0
    rel_gap = 1.0
    tight_master = False
    stalled = False
    # Loss, optimal intercept and gradient at given predictions (no blocks).
    intercept_only = ConvexProblem(
        PatternOperator(np.ones((n, 1)), np.zeros((n, 0)), n_outputs=C),
        datafit, GroupL2(), Y, s, alpha, fit_intercept=fit_intercept,
    )
    k = 0
    for k in range(1, max_iter + 1):
        # Restricted master problem on the current neurons.
        if U.shape[1]:
            res = fit_output_layer(
                problem,
                U,
                # A tight refinement is first order from the current point:
                # warm-started and certified to the floor accuracy.
                solver="fista" if tight_master else master_solver,
                coef_init=A,
                intercept_init=b,
                # The outer gap includes the master's: solving it much more
                # accurately than the current outer gap is wasted work.
                tol=0.01 * tol if tight_master else max(0.3 * rel_gap, 0.3 * tol),
                max_iter=master_max_iter,
            )
            n_products += res.n_products
            A = res.coef.reshape(-1, C)
            b = res.intercept
            live = np.linalg.norm(A, axis=1) > 0
            U, A = U[:, live], A[live]
            U, A = _merge_cells(X, U, A)
        pred = np.maximum(X @ U, 0.0) @ A
        loss, b, grad = intercept_only.smooth(pred, b)
        primal = loss + alpha * float(np.linalg.norm(A, axis=1).sum())
        if best is None or primal < best[0]:
            best = (primal, U.copy(), A.copy(), np.array(b, dtype=np.float64))

        theta = -np.asarray(grad, dtype=np.float64)
        result = oracle(theta, n_directions=n_add)
        n_products += 1
        exact = exact and result.exact
        omega = result.upper
        oracle_values.append(omega / alpha)
        c_max = np.inf if omega == 0 else alpha / omega
        best_dual = max(best_dual, datafit.best_dual(theta, Y, s, c_max))
        gap = best[0] - best_dual
        rel_gap = gap / max(abs(best[0]), np.finfo(float).tiny)
        if verbose:
            print(
                f"[cutting plane] iter {k:4d}  neurons {U.shape[1]:4d}  objective {best[0]:.10g}  "
                f"lower bound {best_dual:.10g}  rel. gap {rel_gap:.3e}  "
                f"oracle/alpha {omega / alpha:.6f}  {time.perf_counter() - t0:.2f}s",
                flush=True,
            )
        if rel_gap <= tol:
            converged = True
            break
        new = result.directions[:, result.scores > alpha * (1 + 1e-9)]
        if new.shape[1]:
            U = np.concatenate([U, new], axis=1)
            A = np.concatenate([A, np.zeros((new.shape[1], C))], axis=0)
            tight_master = False
        elif not tight_master:
            # No violated constraint found: the gap is the master's, solve it
            # to the floor accuracy once more.
            tight_master = True
        else:
            # Nothing left to add: with an exact oracle this cannot happen
            # above tol (the gap would be the master's); with a heuristic one
            # (vector outputs on cones of large rank) the certificate is
            # loose and no iteration can tighten it.
            stalled = True
            break

    primal, U, A, b = best
    coef = np.einsum("dm,mc->dmc", U, A)
    return SolveResult(
        coef=coef,
        intercept=np.asarray(b, dtype=np.float64).reshape(C),
        objective=float(primal),
        dual_objective=float(best_dual),
        n_iter=k,
        converged=converged,
        solver="cutting-plane",
        n_products=n_products,
        history=oracle_values,
        info={
            "directions": U,
            "output": A,
            "oracle_values": np.array(oracle_values),
            "oracle_exact": exact,
            "stalled": stalled,
        },
    )
