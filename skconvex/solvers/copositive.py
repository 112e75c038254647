"""Vector-output ReLU networks as copositive programs: relaxation, Frank-Wolfe, closed form.

Two-layer ReLU networks :math:`f(x) = \\sum_j (x^\\top u_j)_+ v_j^\\top + b`
whose neurons are shared by all outputs, trained with the mean loss
:math:`F` and weight decay :math:`\\tfrac{\\alpha}{2}\\sum_j
\\|u_j\\|^2 + \\|v_j\\|^2`, solve (Sahiner, Ergen, Pauly & Pilanci, 2021)

.. math:: p^\\star = \\min_{V_p,\\, b}\\; F\\Big(\\sum_p D_p X V_p + \\mathbf 1 b^\\top\\Big)
          + \\alpha \\sum_p \\|V_p\\|_{\\mathcal K_p, *},

with one block per cell :math:`p` of the arrangement, cones
:math:`\\mathcal K_p = \\{u : (2D_p - I)Xu \\ge 0\\}` and the cone-constrained
nuclear norm :math:`\\|V\\|_{\\mathcal K,*} = \\min\\{\\sum_k t_k : V = \\sum_k t_k
a_k g_k^\\top,\\ a_k \\in \\mathcal K,\\ \\|a_k\\| = \\|g_k\\| = 1\\}`.

**Semidefinite relaxation** (our per-block form, derivation in the notes of
:func:`sdp_relaxation`): for any :math:`U \\in \\mathcal{CP}(\\mathcal K) =
\\operatorname{conv}\\{aa^\\top : a \\in \\mathcal K\\}`,

.. math:: \\alpha\\|V\\|_{\\mathcal K,*} = \\min_{U \\in \\mathcal{CP}(\\mathcal K)}
          \\tfrac{\\alpha}{2}\\big(\\operatorname{tr}(V^\\top U^{-1} V) + \\operatorname{tr} U\\big),

so replacing the completely positive cone by its doubly non-negative outer
approximation :math:`\\{U \\succeq 0 : F U F^\\top \\ge 0\\}` (:math:`F` = the
facet rows of :math:`\\mathcal K`) gives a convex program, for any convex loss,
whose value is a **lower bound** on :math:`p^\\star` over the same cells. For
the squared loss it is the copositive relaxation of Sahiner et al. (their
matrix-fractional form with an :math:`n \\times n` block, to which it is equal
by an infimal-convolution identity), but with :math:`d \\times d` blocks only.
Rounding the eigenvectors of each :math:`U_p` into :math:`\\mathcal K_p` and
refitting the output layer gives a network, hence an **upper bound**.

**Frank-Wolfe**: fully corrective conditional gradient on the atomic form:
the linear minimization oracle is the cone-constrained PCA
:math:`\\max_{a \\in \\mathcal K_p, \\|a\\| \\le 1}\\|\\Theta^\\top D_p X a\\|`
(:mod:`skconvex.programs.oracles`) and the corrective step refits the output layer of
all atoms found; see :func:`skconvex.solvers.cutting_plane.cutting_plane`.

**Closed form** for spike-free data: when every ReLU feature is a linear
feature of no larger norm, :math:`p^\\star` is at least the optimum of the
two-layer *linear* network, a nuclear-norm regression solved by a
soft-thresholded SVD for isotropic (whitened) data, and equal to it when the
singular vectors of the optimal predictions can be taken non-negative.

References
----------
A. Sahiner, T. Ergen, J. Pauly and M. Pilanci. Vector-output ReLU neural
network problems are copositive programs: convex analysis of two layer
networks and polynomial-time algorithms. ICLR 2021, arXiv:2012.13329.

T. Ergen and M. Pilanci. Convex geometry and duality of over-parameterized
neural networks. JMLR 22(212), 2021, arXiv:2002.11219.
"""

import time
import warnings

import numpy as np
import scipy.sparse as sp

from ..programs._geometry import cone_facets, row_space
from ..programs.network import ReLUNetworkProblem
from ..programs.oracles import project_cone
from ._result import SolveResult
from .cutting_plane import cutting_plane, fit_output_layer

__all__ = [
    "sdp_relaxation",
    "round_relaxation",
    "relaxation_dual_bound",
    "copositive_sdp",
    "frank_wolfe",
    "spike_free_closed_form",
    "spike_free_check",
]


def _network_result(lower, upper, directions, output, intercept, *, is_exact, n_iter, method, converged=True, info=None):
    """A :class:`SolveResult` for a network found by a copositive method.

    ``coef[:, j, :]`` is neuron ``j``'s block :math:`u_j a_j^\\top` (unit
    direction times output weights); the directions themselves, which fix the
    ReLU's orientation, and the exactness certificate are in ``info``
    (``"directions"``, ``"output"``, ``"is_exact"``). ``objective`` is the
    network's objective (the upper bound), ``dual_objective`` the certified
    lower bound on the training problem.
    """
    directions = np.asarray(directions, dtype=np.float64)
    output = np.asarray(output, dtype=np.float64).reshape(directions.shape[1], -1)
    return SolveResult(
        coef=directions[:, :, None] * output[None, :, :],
        intercept=np.asarray(intercept, dtype=np.float64),
        objective=float(upper),
        dual_objective=float(lower),
        n_iter=int(n_iter),
        converged=bool(converged),
        solver=method,
        info={**(info or {}), "directions": directions, "output": output, "is_exact": bool(is_exact)},
    )


# --------------------------------------------------------------------- cones
_MAX_HULL_RANK = 7


def _cone_rows(Z, patterns, gates, max_rows):
    """Facet rows (in the coordinates of ``Z``) of the cone of every pattern.

    Exact facets (convex hull) up to rank ``_MAX_HULL_RANK``; beyond, the
    ``max_rows`` rows closest to the cell's gate hyperplane, which keeps the
    relaxation valid (fewer constraints only weaken the lower bound).
    """
    rows = []
    for p in range(patterns.shape[1]):
        G = np.where(patterns[:, p], 1.0, -1.0)[:, None] * Z
        g = None if gates is None else gates[:, p]
        if Z.shape[1] <= _MAX_HULL_RANK:
            rows.append(G[cone_facets(G, g)])
        else:
            norms = np.linalg.norm(G, axis=1)
            live = np.flatnonzero(norms > 0)
            score = (G[live] @ g) / norms[live] if g is not None else -norms[live]
            rows.append(G[live[np.argsort(score)[:max_rows]]])
    return rows


def _project_cone(F, a):
    """Euclidean projection of ``a`` onto ``{x : F x >= 0}``."""
    if F.shape[0] == 0:
        return a
    return project_cone(F, a)


def _orient(F, a, tol=1e-9):
    """``a`` or ``-a``, whichever lies in the cone; otherwise the larger projection (unit)."""
    scale = np.linalg.norm(F, axis=1) if F.shape[0] else np.zeros(0)
    best, best_norm = None, -1.0
    for cand in (a, -a):
        if F.shape[0] == 0 or np.all(F @ cand >= -tol * scale):
            return cand / np.linalg.norm(cand), True
        proj = _project_cone(F, cand)
        norm = np.linalg.norm(proj)
        if norm > best_norm:
            best, best_norm = proj, norm
    if best_norm <= 0:
        return None, False
    return best / best_norm, False


# ----------------------------------------------------------------------- SDP
def sdp_relaxation(
    problem,
    patterns,
    *,
    gates=None,
    solver="CLARABEL",
    solver_options=None,
    max_facet_rows=20,
    verbose=0,
):
    """Doubly non-negative relaxation of the copositive program on given cells.

    Solves, with CVXPY,

    .. math:: \\min_{W_p, U_p, b}\\; F\\Big(\\sum_p D_p X W_p + \\mathbf 1 b^\\top\\Big)
              + \\frac{\\alpha}{2}\\sum_p \\big(\\operatorname{tr}(W_p^\\top U_p^{-1} W_p)
              + \\operatorname{tr} U_p\\big)
              \\quad\\text{s.t.}\\quad U_p \\succeq 0,\\ F_p U_p F_p^\\top \\ge 0,

    with :math:`F_p` the facet rows of the cone of cell :math:`p`.

    Parameters
    ----------
    problem : ReLUNetworkProblem
        The training problem (:mod:`skconvex.programs.network`): data with a
        ones column for hidden biases, encoded targets, loss, row weights,
        ``alpha`` > 0 and ``fit_intercept``.
    patterns : ndarray of shape (n_samples, n_patterns), dtype bool
        Cells of the arrangement (each must have an interior).
    gates : ndarray of shape (n_features, n_patterns), default=None
        A point inside each cell (speeds up finding the facets).
    solver : {"CLARABEL", "SCS"}, default="CLARABEL"
        CVXPY solver; Clarabel is accurate, SCS's defaults are not (pass
        ``solver_options={"eps": 1e-8}``).
    solver_options : dict, default=None
        Keyword arguments for the solver.
    max_facet_rows : int, default=20
        For data of rank above 7 (no exact facets), the number of constraint
        rows used per cell.
    verbose : int, default=0
        ``verbose > 1`` prints the solver's log.

    Returns
    -------
    value : float
        Optimal value of the relaxation (a lower bound on the training
        objective of every network using these cells, to the solver's
        accuracy).
    info : dict
        ``"gram"`` (n_patterns, n_features, n_features) the matrices
        :math:`U_p`, ``"coef"`` (n_features, n_patterns, n_outputs) the
        blocks :math:`W_p`, ``"intercept"``, ``"facets"`` (list of facet rows
        in row-space coordinates), ``"basis"`` (the row-space basis),
        ``"status"`` and ``"n_iter"``.

    Notes
    -----
    Derivation. For :math:`U = \\sum_k\\lambda_k a_k a_k^\\top` with unit
    :math:`a_k \\in \\mathcal K` and :math:`W` in its range,
    :math:`W = \\sum_k a_k g_k^\\top` with :math:`g_k = \\lambda_k
    W^\\top U^+ a_k` and :math:`\\operatorname{tr}(W^\\top U^+ W) =
    \\sum_k\\|g_k\\|^2/\\lambda_k`, so by AM-GM the penalty is at least
    :math:`\\alpha\\sum_k\\|g_k\\| \\ge \\alpha\\|W\\|_{\\mathcal K,*}`; the
    choice :math:`\\lambda_k = t_k` attains :math:`\\alpha\\sum_k t_k` for any
    decomposition. Hence over the completely positive cone the program is the
    copositive program itself, and the doubly non-negative cone contains it.
    For the squared loss, minimizing over :math:`W_p` (an infimal convolution
    of :math:`\\tfrac12\\|S^{1/2}\\cdot\\|^2` and the quadratic forms
    :math:`\\tfrac{1}{2\\alpha}\\cdot^\\top (XU_pX^\\top)^{-1}\\cdot`) gives
    the matrix-fractional form :math:`\\tfrac12\\operatorname{tr}((Y -
    \\mathbf 1b^\\top)^\\top(S^{-1} + \\tfrac1\\alpha\\sum_p D_pXU_pX^\\top
    D_p)^{-1}(Y - \\mathbf 1 b^\\top)) + \\tfrac\\alpha2\\sum_p\\operatorname{tr}U_p`
    of Sahiner et al. (with their :math:`U` scaled by :math:`2\\alpha`); the
    test suite checks the two numerically.
    """
    X, Y, datafit, alpha = problem.X, problem.y, problem.datafit, problem.alpha
    sample_weight = problem.sample_weight
    fit_intercept = problem.fit_intercept
    import cvxpy as cp

    from .conic import SolverError

    s = sample_weight
    basis, Z = row_space(X)
    n, r = Z.shape
    C = Y.shape[1]
    patterns = np.asarray(patterns, dtype=bool)
    P = patterns.shape[1]
    gates_r = None if gates is None else basis.T @ np.asarray(gates, dtype=np.float64)
    facets = _cone_rows(Z, patterns, gates_r, max_facet_rows)

    rows, pats = np.nonzero(patterns)
    vals = Z[rows]
    cols = pats[:, None] * r + np.arange(r)[None, :]
    B = sp.csr_array((vals.ravel(), (np.repeat(rows, r), cols.ravel())), shape=(n, P * r))
    Wall = cp.Variable((P * r, C))
    pred = B @ Wall
    b = None
    if fit_intercept:
        b = cp.Variable((1, C))
        pred = pred + np.ones((n, 1)) @ b
    Us = [cp.Variable((r, r), symmetric=True) for _ in range(P)]
    penalty = []
    constraints, pairs = [], []
    for p in range(P):
        Wp = Wall[p * r : (p + 1) * r, :]
        penalty.append(cp.matrix_frac(Wp, Us[p]))
        F = facets[p]
        i, j = np.triu_indices(F.shape[0], k=1)
        pairs.append((F, i, j))
        if i.size:
            # (F U F^T)_{ij} = <(f_i f_j^T + f_j f_i^T) / 2, U>, one row per pair.
            K = 0.5 * (np.einsum("pa,pb->pab", F[i], F[j]) + np.einsum("pa,pb->pab", F[j], F[i]))
            constraints.append(K.reshape(i.size, r * r) @ cp.vec(Us[p], order="C") >= 0)
        else:
            constraints.append(None)
    traces = cp.hstack([cp.trace(U) for U in Us]) if P else 0
    penalty = cp.sum(cp.hstack(penalty)) + cp.sum(traces) if P else 0
    options = dict(solver_options or {})
    try:
        with warnings.catch_warnings():
            # CVXPY warns on "optimal_inaccurate"; the status is returned
            # instead and the estimators turn it into a ConvergenceWarning.
            warnings.filterwarnings("ignore", message="Solution may be inaccurate")
            # One matrix-fractional block per cell is the structure of the
            # relaxation; CVXPY's advice to vectorize does not apply.
            warnings.filterwarnings("ignore", message="Objective contains too many subexpressions")
            objective = datafit.cvxpy(pred, Y, s) + 0.5 * alpha * penalty
            problem = cp.Problem(cp.Minimize(objective), [c for c in constraints if c is not None])
            problem.solve(solver=solver, verbose=verbose > 1, **options)
    except cp.error.SolverError as exc:
        raise SolverError(f"CVXPY solver {solver} failed on the SDP relaxation: {exc}") from exc
    if problem.status not in ("optimal", "optimal_inaccurate"):
        raise SolverError(f"CVXPY solver {solver} returned status {problem.status!r}.")
    W = np.asarray(Wall.value).reshape(P, r, C)
    gram = np.stack([np.asarray(U.value) for U in Us]) if P else np.zeros((0, r, r))
    gram = 0.5 * (gram + gram.transpose(0, 2, 1))
    intercept = np.zeros(C) if b is None else np.asarray(b.value, dtype=np.float64).reshape(C)
    stats = problem.solver_stats
    info = {
        "gram_r": gram,
        "coef_r": W,
        "gram": np.einsum("ia,pab,jb->pij", basis, gram, basis),
        "coef": np.einsum("ia,pac->ipc", basis, W),
        "intercept": intercept,
        "facets": facets,
        "multipliers": [
            None if c is None or c.dual_value is None else np.maximum(np.asarray(c.dual_value).ravel(), 0.0)
            for c in constraints
        ],
        "pairs": pairs,
        "patterns": patterns,
        "basis": basis,
        "status": problem.status,
        "n_iter": int(stats.num_iters or 1) if stats else 1,
    }
    return float(problem.value), info


def relaxation_dual_bound(problem, info, *, oracle=None):
    r"""Certified lower bound from a (possibly inaccurate) relaxation solution.

    The dual of the relaxation is :math:`\max_\Theta -F^*(-\Theta)` subject
    to :math:`\mathbf 1^\top\Theta = 0` and, for every cell, the existence of
    :math:`N_p = \sum_{i<j}\nu_{ij}(f_if_j^\top + f_jf_i^\top)/2`,
    :math:`\nu \ge 0`, with :math:`\lambda_{\max}(A_p + 2\alpha N_p)
    \le \alpha^2`, :math:`A_p = X^\top D_p\Theta\Theta^\top D_pX`. With
    :math:`\Theta = -\nabla F` at the relaxation's predictions (optimal
    intercept) and :math:`\nu` the solver's multipliers of the doubly
    non-negative constraints, scaling :math:`\Theta` by
    :math:`\min_p \alpha/\sqrt{\lambda_{\max}}` makes it feasible whatever
    the solver's accuracy; an exact ``oracle`` over the same (or more) cells
    gives another valid scaling, and the larger is used.

    Parameters
    ----------
    problem : ReLUNetworkProblem
        The training problem (:mod:`skconvex.programs.network`): data with a
        ones column for hidden biases, encoded targets, loss, row weights,
        ``alpha`` > 0 and ``fit_intercept``.
    info : dict
        Second output of :func:`sdp_relaxation`.
    oracle : callable, default=None
        Dual oracle (:mod:`skconvex.programs.oracles`) whose ``upper`` bounds the
        cone-constrained PCA over the cells.

    Returns
    -------
    bound : float
        A lower bound on the training objective of every network using the
        relaxation's cells (all networks when ``oracle`` is exhaustive).
    theta : ndarray of shape (n_samples, n_outputs)
        The (unscaled) dual direction.
    """
    X, Y, datafit, alpha = problem.X, problem.y, problem.datafit, problem.alpha
    sample_weight = problem.sample_weight
    fit_intercept = problem.fit_intercept
    s = sample_weight
    basis = info["basis"]
    Z = X @ basis
    patterns = info["patterns"]
    pred = np.einsum("np,nr,prc->nc", patterns.astype(np.float64), Z, info["coef_r"], optimize=True)
    b = datafit.optimal_intercept(pred, Y, s) if fit_intercept else np.zeros(Y.shape[1])
    theta = -datafit.gradient(pred + b, Y, s)
    B = np.einsum("nr,nc,np->prc", Z, theta, patterns.astype(np.float64), optimize=True)
    A = np.matmul(B, B.transpose(0, 2, 1))
    for p, ((F, i, j), nu) in enumerate(zip(info["pairs"], info["multipliers"])):
        if nu is not None and i.size:
            N = np.einsum("q,qa,qb->ab", nu, F[i], F[j])
            A[p] += alpha * (N + N.T)
    omega = float(np.sqrt(max(np.linalg.eigvalsh(A)[:, -1].max(initial=0.0), 0.0))) if len(A) else 0.0
    if oracle is not None:
        omega = min(omega, oracle(theta).upper)
    c_max = np.inf if omega == 0 else alpha / omega
    return float(datafit.best_dual(theta, Y, s, c_max)), theta


def round_relaxation(X, info, *, rtol=1e-6):
    """Hidden directions from a relaxation solution, oriented into their cones.

    Every eigenvector of :math:`U_p` with a non-negligible eigenvalue and
    every left singular vector of :math:`W_p` is turned into :math:`\\pm`
    itself when one of them lies in the cone of cell :math:`p`, and otherwise
    into the larger of its two projections onto the cone.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Data (as passed to :func:`sdp_relaxation`).
    info : dict
        The second output of :func:`sdp_relaxation`.
    rtol : float, default=1e-6
        Eigenvalues (singular values) below ``rtol`` times the largest one of
        all cells are ignored.

    Returns
    -------
    directions : ndarray of shape (n_features, n_directions)
        Unit directions, each inside the closed cone of its cell.
    rank_one : bool
        Whether every non-zero :math:`U_p` is numerically rank one with its
        eigenvector in :math:`\\pm\\mathcal K_p` (then the relaxation is
        exact on these cells).
    """
    gram, W, facets, basis = info["gram_r"], info["coef_r"], info["facets"], info["basis"]
    r = gram.shape[1] if gram.ndim == 3 else 0
    if gram.shape[0] == 0 or r == 0:
        return np.zeros((X.shape[1], 0)), True
    evals, evecs = np.linalg.eigh(gram)
    top = max(evals.max(), 0.0)
    svals = np.linalg.svd(W, compute_uv=False) if W.size else np.zeros((0,))
    stop = max(svals.max(initial=0.0), 0.0)
    dirs = []
    rank_one = True
    for p in range(gram.shape[0]):
        live = np.flatnonzero(evals[p] > rtol * top) if top > 0 else np.zeros(0, int)
        if live.size > 1:
            rank_one = False
        cands = [evecs[p][:, k] for k in live]
        if stop > 0:
            Up, sv, _ = np.linalg.svd(W[p], full_matrices=False)
            cands += [Up[:, k] for k in np.flatnonzero(sv > rtol * stop)]
        for j, a in enumerate(cands):
            oriented, inside = _orient(facets[p], a)
            if j == 0 and live.size == 1 and not inside:
                rank_one = False
            if oriented is not None:
                dirs.append(oriented)
    if not dirs:
        return np.zeros((X.shape[1], 0)), rank_one
    D = np.stack(dirs, axis=1)
    # Merge duplicates (the eigenvector and the singular vector of a
    # rank-one cell coincide).
    keys = np.round(D / 1e-9).astype(np.int64)
    _, first = np.unique(keys, axis=1, return_index=True)
    return basis @ D[:, np.sort(first)], rank_one


def copositive_sdp(
    problem,
    patterns,
    *,
    gates=None,
    solver="CLARABEL",
    solver_options=None,
    refit_solver="clarabel",
    oracle=None,
    tol=1e-6,
    verbose=0,
):
    """Lower bound by the SDP relaxation, upper bound by rounding and a convex refit.

    Parameters
    ----------
    problem : ReLUNetworkProblem
        The training problem (:mod:`skconvex.programs.network`): data with a
        ones column for hidden biases, encoded targets, loss, row weights,
        ``alpha`` > 0 and ``fit_intercept``.
    patterns : ndarray of shape (n_samples, n_patterns), dtype bool
        Cells of the arrangement.
    gates : ndarray of shape (n_features, n_patterns), default=None
        A point inside each cell.
    solver : {"CLARABEL", "SCS"}, default="CLARABEL"
        CVXPY solver of the relaxation.
    solver_options : dict, default=None
        Keyword arguments for the solver.
    refit_solver : {"clarabel", "fista"}, default="clarabel"
        Solver of the output-layer refit
        (:func:`~skconvex.solvers.cutting_plane.fit_output_layer`).
    oracle : callable, default=None
        Dual oracle used to tighten the certificate (see
        :func:`relaxation_dual_bound`).
    tol : float, default=1e-6
        Relative gap under which the result is declared exact even when the
        relaxation's blocks are not numerically rank one.
    verbose : int, default=0
        ``verbose > 1`` prints the solver's log.

    Returns
    -------
    result : SolveResult
        ``info`` holds the relaxation's blocks (``"gram"``, ``"coef"``) and
        ``"rank_one"``.
    """
    X, Y, datafit, sample_weight = problem.X, problem.y, problem.datafit, problem.sample_weight
    fit_intercept = problem.fit_intercept
    t0 = time.perf_counter()
    value, info = sdp_relaxation(
        problem, patterns, gates=gates, solver=solver, solver_options=solver_options, verbose=verbose
    )
    lower, _ = relaxation_dual_bound(problem, info, oracle=oracle)
    directions, rank_one = round_relaxation(X, info)
    C = Y.shape[1]
    if directions.shape[1]:
        refit = fit_output_layer(problem, directions, solver=refit_solver, tol=1e-10)
        output = refit.coef.reshape(-1, C)
        intercept = np.asarray(refit.intercept, dtype=np.float64)
        live = np.linalg.norm(output, axis=1) > 0
        directions, output = directions[:, live], output[live]
        upper = problem.objective(directions, output, intercept)
    else:
        output = np.zeros((0, C))
        intercept = _best_intercept(datafit, Y, sample_weight, fit_intercept)
        upper = problem.objective(directions, output, intercept)
    gap = upper - lower
    exact = (rank_one and info["status"] == "optimal") or gap <= tol * max(abs(upper), np.finfo(float).tiny)
    info = {k: info[k] for k in ("gram", "coef", "intercept", "status", "n_iter")} | {
        "rank_one": rank_one,
        "relaxation_value": value,
        "time": time.perf_counter() - t0,
    }
    return _network_result(
        lower,
        float(upper),
        directions,
        output,
        intercept,
        is_exact=bool(exact),
        n_iter=int(info["n_iter"]),
        method="sdp",
        converged=info["status"] == "optimal",
        info=info,
    )


def _best_intercept(datafit, Y, sample_weight, fit_intercept):
    if not fit_intercept:
        return np.zeros(Y.shape[1])
    return datafit.optimal_intercept(np.zeros_like(Y), Y, sample_weight)


# --------------------------------------------------------------- Frank-Wolfe
def frank_wolfe(
    problem,
    oracle,
    *,
    tol=1e-4,
    max_iter=100,
    n_add=5,
    master_solver="fista",
    verbose=0,
):
    """Fully corrective Frank-Wolfe on the cone-constrained nuclear-norm program.

    Each iteration calls the linear minimization oracle (the cone-constrained
    PCA of every cell, :mod:`skconvex.programs.oracles`) at the gradient, adds its
    best atoms :math:`a g^\\top` as neurons and re-optimizes the weights of
    all atoms (the corrective step, a group lasso over output vectors solved
    by ``master_solver``). The oracle's certified bound turns the gradient
    into a dual point, so every iteration also yields a lower bound (the
    Frank-Wolfe gap of the penalized problem).

    Parameters
    ----------
    problem : ReLUNetworkProblem
        The training problem (:mod:`skconvex.programs.network`): data with a
        ones column for hidden biases, encoded targets, loss, row weights,
        ``alpha`` > 0 and ``fit_intercept``.
    oracle : callable
        :class:`~skconvex.programs.oracles.PatternOracle` (cells of an arrangement) or
        :class:`~skconvex.programs.oracles.ExhaustiveOracle`.
    tol : float, default=1e-4
        Target certified relative gap.
    max_iter : int, default=100
        Maximum number of iterations (oracle calls).
    n_add : int, default=5
        Atoms (neurons) added per iteration.
    master_solver : {"fista", "clarabel"}, default="fista"
        Solver of the corrective step; FISTA is matrix free and scales to
        data the SDP cannot handle.
    verbose : int, default=0
        One line per iteration.

    Returns
    -------
    result : SolveResult
        ``is_exact`` is True when the oracle was exact and the certified
        relative gap is at most 1e-6.

    References
    ----------
    Z. Harchaoui, A. Juditsky and A. Nemirovski. Conditional gradient
    algorithms for norm-regularized smooth convex optimization. Math.
    Program. 152, 2015.
    """
    res = cutting_plane(
        problem, oracle, tol=tol, max_iter=max_iter, n_add=n_add, master_solver=master_solver, verbose=verbose
    )
    exact = bool(res.info["oracle_exact"] and res.relative_gap <= 1e-6)
    return _network_result(
        res.dual_objective,
        res.objective,
        res.info["directions"],
        res.info["output"],
        res.intercept,
        is_exact=exact,
        n_iter=res.n_iter,
        method="frank_wolfe",
        converged=res.converged,
        info={
            "oracle_values": res.info["oracle_values"],
            "oracle_exact": res.info["oracle_exact"],
            "stalled": res.info["stalled"],
        },
    )


# --------------------------------------------------------------- closed form
def spike_free_check(X, sample_weight, fit_intercept, *, tol=1e-8):
    """Whether the data qualify for the soft-thresholded SVD closed form, and why not.

    Two conditions are checked on the rows with positive weight:

    1. *Spike-free* (sufficient test): the augmented data :math:`\\tilde X`
       (with the ones column of the hidden biases) has full row rank and
       :math:`Q = (\\tilde X\\tilde X^\\top)^{-1}` has non-positive
       off-diagonal entries. Then for every :math:`u` the ReLU feature
       :math:`(\\tilde Xu)_+` equals :math:`\\tilde X u'` with
       :math:`\\|u'\\| \\le \\|u\\|`: writing :math:`z = z_+ - z_-`,
       :math:`q(z) - q(z_+) = q(z_-) - 2z_+^\\top Qz_- \\ge 0` since the
       supports are disjoint. Rows whitened to :math:`XX^\\top = I` qualify,
       with or without the ones column.
    2. *Isotropic*: the weighted (and, with an intercept, centred) data
       :math:`S^{1/2}PX` has equal non-zero singular values, so the linear
       problem has a closed form.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Raw inputs (without a ones column).
    sample_weight : ndarray of shape (n_samples,)
        Row weights (summing to one).
    fit_intercept : bool
        Whether neurons carry biases and the output an intercept.
    tol : float, default=1e-8
        Relative tolerance of the tests.

    Returns
    -------
    ok : bool
        Whether both conditions hold.
    reason : str
        Why not (empty when ``ok``).
    """
    pos = sample_weight > 0
    Xp = X[pos]
    Xa = np.c_[Xp, np.ones(len(Xp))] if fit_intercept else Xp
    G = Xa @ Xa.T
    evals = np.linalg.eigvalsh(G)
    if evals[0] <= tol * max(evals[-1], 1e-300):
        return False, (
            "the data are not spike-free by our test: it needs at most as many samples "
            "as (augmented) features, with linearly independent rows"
        )
    Q = np.linalg.inv(G)
    off = Q - np.diag(np.diag(Q))
    if off.max() > tol * np.abs(np.diag(Q)).max():
        return False, (
            "the data are not spike-free by our test: the inverse Gram matrix of the rows "
            "has positive off-diagonal entries (whiten the rows, e.g. XX^T = I)"
        )
    sv = _isotropy_singular_values(X, sample_weight, fit_intercept)
    live = sv[sv > tol * max(sv.max(initial=0.0), 1e-300)]
    if live.size and live.max() - live.min() > 1e-6 * live.max():
        return False, (
            "the weighted, centred data are not isotropic (unequal singular values), so "
            "the soft-thresholded SVD is not the solution of the linear problem"
        )
    return True, ""


def _centred(X, sample_weight, fit_intercept):
    s = sample_weight
    Xc = X - s @ X if fit_intercept else X
    return np.sqrt(s)[:, None] * Xc


def _isotropy_singular_values(X, sample_weight, fit_intercept):
    return np.linalg.svd(_centred(X, sample_weight, fit_intercept), compute_uv=False)


def spike_free_closed_form(problem, *, check=True):
    """Soft-thresholded SVD solution of the squared-loss problem on spike-free data.

    With :math:`Z = S^{1/2}PX = \\sigma\\,U_zV_z^\\top` (isotropic) and
    :math:`T = S^{1/2}PY`, the two-layer linear network problem
    :math:`\\min_{W,b}\\tfrac12\\sum_js_j\\|x_j^\\top W + b - y_j\\|^2 +
    \\alpha\\|W\\|_*` is solved by :math:`W = V_z\\,\\mathrm{SVT}_{\\alpha/\\sigma}
    (U_z^\\top T)/\\sigma`. On spike-free data its value is a lower bound on
    the ReLU problem (every ReLU network is a linear network of no larger
    weight decay); each rank-one component :math:`w_k g_k^\\top` of
    :math:`W` is a ReLU neuron with the same cost when :math:`Xw_k` has one
    sign on the data, and then the bound is attained. Otherwise the output
    layer is refitted on the neurons :math:`\\pm w_k`, a biased copy when
    ``fit_intercept``, and the minimum-norm preimages of the positive and
    negative parts of :math:`Xw_k` (which, on spike-free data, produce those
    parts as ReLU features), giving an upper bound.

    Parameters
    ----------
    problem : ReLUNetworkProblem
        The training problem with the squared loss, on the raw inputs (the
        ones column is added here when ``fit_intercept``, which also adds
        hidden biases).
    check : bool, default=True
        Raise ``ValueError`` when :func:`spike_free_check` fails.

    Returns
    -------
    result : SolveResult
        Directions are in the augmented space (with a bias coordinate when
        ``fit_intercept``).
    """
    X, Y, sample_weight, alpha = problem.X, problem.y, problem.sample_weight, problem.alpha
    fit_intercept = problem.fit_intercept
    from ..programs.datafits import SquaredError

    if not isinstance(problem.datafit, SquaredError):
        raise ValueError(
            f"spike_free_closed_form solves the squared loss, got {type(problem.datafit).__name__}."
        )
    s = sample_weight
    if check:
        ok, reason = spike_free_check(X, s, fit_intercept)
        if not ok:
            raise ValueError(f"method='svd' cannot be used: {reason}.")
    pos = s > 0
    Zc = _centred(X, s, fit_intercept)
    Tc = _centred(Y, s, fit_intercept)
    Uz, sz, Vzt = np.linalg.svd(Zc, full_matrices=False)
    live = sz > 1e-10 * max(sz.max(initial=0.0), 1e-300)
    Uz, sz, Vz = Uz[:, live], sz[live], Vzt[live].T
    sigma = float(sz.mean()) if sz.size else 1.0
    M = Uz.T @ Tc
    P, g, Qt = np.linalg.svd(M, full_matrices=False)
    shrunk = np.maximum(g - alpha / sigma, 0.0)
    k = shrunk > 0
    # W = sum_k (shrunk_k / sigma) (V_z p_k) q_k^T: unit direction V_z p_k,
    # output weights (shrunk_k / sigma) q_k.
    dirs = Vz @ P[:, k]
    outs = (shrunk[k] / sigma)[:, None] * Qt[k]
    W = dirs @ outs
    pred = X @ W
    b = s @ (Y - pred) if fit_intercept else np.zeros(Y.shape[1])
    lower = 0.5 * float(s @ ((pred + b - Y) ** 2).sum(axis=1)) + alpha * float(shrunk[k].sum() / sigma)

    Xa = np.c_[X, np.ones(len(X))] if fit_intercept else X
    pad = (lambda v: np.r_[v, 0.0]) if fit_intercept else (lambda v: v)
    oriented, out_rows, exact = [], [], True
    for j in range(dirs.shape[1]):
        z = X[pos] @ dirs[:, j]
        scale = max(np.abs(z).max(initial=0.0), 1e-300)
        if np.all(z >= -1e-9 * scale):
            oriented.append(pad(dirs[:, j]))
            out_rows.append(outs[j])
        elif np.all(z <= 1e-9 * scale):
            oriented.append(pad(-dirs[:, j]))
            out_rows.append(-outs[j])
        else:
            exact = False
            break
    lifted = ReLUNetworkProblem(Xa, Y, SquaredError(), s, alpha, fit_intercept=fit_intercept)
    if exact:
        directions = np.stack(oriented, axis=1) if oriented else np.zeros((Xa.shape[1], 0))
        output = np.stack(out_rows) if out_rows else np.zeros((0, Y.shape[1]))
        intercept = b
    else:
        cands = []
        pinv = np.linalg.pinv(Xa[pos])
        for j in range(dirs.shape[1]):
            cands += [pad(dirs[:, j]), pad(-dirs[:, j])]
            # On spike-free data a non-negative feature t is produced by the
            # ReLU neuron with the minimum-norm preimage of t: the positive
            # and negative parts of each component are efficient neurons.
            z = X[pos] @ dirs[:, j]
            for part in (np.maximum(z, 0.0), np.maximum(-z, 0.0)):
                w = pinv @ part
                if np.linalg.norm(w) > 0:
                    cands.append(w / np.linalg.norm(w))
            if fit_intercept:
                z = X[pos] @ dirs[:, j]
                for sign in (1.0, -1.0):
                    # A bias that makes the neuron active on every training
                    # row turns it into a linear feature (at a higher cost).
                    c = max(-(sign * z).min(), 0.0)
                    v = np.r_[sign * dirs[:, j], c]
                    cands.append(v / np.linalg.norm(v))
        directions = np.stack(cands, axis=1)
        refit = fit_output_layer(lifted, directions)
        output = refit.coef.reshape(-1, Y.shape[1])
        intercept = np.asarray(refit.intercept, dtype=np.float64)
        keep = np.linalg.norm(output, axis=1) > 0
        directions, output = directions[:, keep], output[keep]
    upper = lifted.objective(directions, output, intercept)
    return _network_result(
        float(min(lower, upper)) if exact else float(lower),
        float(upper),
        directions,
        output,
        np.asarray(intercept, dtype=np.float64),
        is_exact=bool(exact),
        n_iter=1,
        method="svd",
        info={"singular_values": g, "threshold": alpha / sigma},
    )
