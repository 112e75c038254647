"""Newton's method on the faces of the cones: a primal end-game for exact ReLU programs.

At a solution of an exact program most columns are zero, and every non-zero
column :math:`u_k` lies on a face of its cone: the rows :math:`T_k` with a
positive multiplier are tight, :math:`s_{jk} x_j^\\top u_k = 0`. With the support
and the faces fixed the program is smooth and only equality constrained,

.. math::
    \\min_{u_k \\in \\mathcal{N}_k} F\\Big(\\sum_k D_k X u_k\\Big) + \\alpha \\sum_k \\|u_k\\|_2,
    \\qquad \\mathcal{N}_k = \\{u : X_{T_k} u = 0\\},

a group lasso in orthonormal coordinates of the null spaces :math:`\\mathcal{N}_k`
(the norm is unchanged by them), where Newton's method converges
quadratically. Faces change by a primal active-set rule (Nocedal & Wright,
2006, §16.5): a step that crosses non-tight rows is projected back onto the
faces with those rows added; when a face is solved, the row whose
least-squares multiplier is most negative in each column leaves it; a column
that a step pushes through zero is dropped. Every iterate is feasible, so a
wrong support or face costs time, never correctness: the caller certifies the
point on the full program.

With several outputs each (pattern, output) pair is a column with its own
norm and its pattern's cone, and the datafit's per-sample Hessians couple
the outputs. For a patch operator (exact CNNs) the cone rows are patches and a
column predicts through its pooled features.

The augmented Lagrangian (:mod:`~skconvex.solvers.auglag`) finds good
multipliers in one outer iteration but reaches a feasible point as good as a
warm start only after its cone penalty has grown for several; started from
the previous solution of a regularization path, this polish supplies that
point directly. At the end of a cold fit, :func:`finish_on_faces` takes the
certified point to the optimum's rounding level.
"""

import numpy as np
from scipy.linalg import cho_factor, cho_solve

from .._config import memory_budget
from ._lowrank import prediction_factor

__all__ = ["face_newton", "finish_on_faces"]

# Eigenvalues of a face's row Gram matrix below this fraction of the largest
# span its null space.
_NULL_RTOL = 1e-10
# Largest n_support * n_features: the Newton systems are dense (measured in
# benchmarks/README.md: beyond it a step costs more than it saves).
_MAX_VARIABLES = 512
# Newton decrements below this fraction of the objective are rounding.
_ROUNDING = 1e-12
# Largest working memory: the rows' outer products and the support's
# n x (n_support * d) Jacobians (a few copies) are dense.
_MAX_BYTES = 200 * 2**20


def _applicable(problem, n_support=0, max_variables=_MAX_VARIABLES):
    """Whether it covers ``problem`` with ``n_support`` columns.

    It needs column norms, a pattern or patch operator, interior points, and
    dense systems within ``_MAX_BYTES`` and the memory budget.
    """
    from ..programs.patches import PatchOperator
    from ..programs.penalties import ColumnGroupL2, GroupL2

    op = problem.operator
    penalty = problem.penalty
    d = op.coef_shape[0]
    n_rows = getattr(op, "n_rows", op.n_samples)
    size = 8 * (n_rows * d * d + 4 * op.n_samples * op.coef_shape[2] * n_support * d)
    return (
        n_support * d <= max_variables
        and size <= min(_MAX_BYTES, memory_budget())
        # Several outputs need one norm per (pattern, output) column.
        and (
            isinstance(penalty, ColumnGroupL2)
            or (isinstance(penalty, GroupL2) and op.coef_shape[2] == 1)
        )
        and (isinstance(op, PatchOperator) or (hasattr(op, "masks") and not hasattr(op, "expand")))
        # One cone per column over the rows of X (not the sub-network cones
        # of deeper CNN programs).
        and tuple(getattr(problem, "multiplier_shape", ()))[:2] == (n_rows, op.coef_shape[1])
        # Its face systems hold the dense n x d^2 products of the rows of X.
        and not getattr(op, "sparse", False)
        and hasattr(problem.datafit, "hessian_factor")
        and getattr(problem, "interior", None) is not None
    )


def _column_designs(op, columns):
    """Each column's map to the predictions, shape ``(n_samples, d, K)``.

    A pattern operator's column ``k`` predicts ``m_k * (X u)``; a patch
    operator's predicts its pooled features ``F_k u`` (the cone rows are
    then patch rows, not samples).
    """
    features = getattr(op, "features", None)
    if features is not None and hasattr(op, "expand"):
        return np.asarray(features, dtype=np.float64)[:, :, columns]
    X = np.asarray(op.X, dtype=np.float64)
    return X[:, :, None] * np.asarray(op.masks, dtype=np.float64)[:, None, columns]


def _face_bases(XX, tight, d):
    """Eigenvectors ``E`` (``(K, d, d)``) of each face's row Gram matrix and which span its null space.

    ``XX`` holds the rows' outer products, shape ``(n, d * d)``.
    """
    G = (tight.T.astype(np.float64) @ XX).reshape(-1, d, d)
    vals, E = np.linalg.eigh(G)
    top = vals[:, -1:]
    free = (vals <= _NULL_RTOL * top) | (top <= np.finfo(float).tiny)
    return E, free


def _project(E, free, U):
    """Each column of ``U`` (``(d, K)``) projected onto the null space of its face."""
    return np.einsum("kde,ke,kfe,fk->dk", E, free, E, U)


def _enter_faces(X, XX, S, U, tight, max_rounds=10):
    """Project ``U`` onto its faces, adding the rows the projection violates, until feasible."""
    for _ in range(max_rounds):
        E, free = _face_bases(XX, tight, U.shape[0])
        U = _project(E, free, U)
        crossed = ~tight & (S != 0) & (S * (X @ U) < 0)
        if not crossed.any():
            break
        tight = tight | crossed
    return U, tight, E, free


def _face_multipliers(X, S, tight, G):
    """Least-squares multipliers of the tight rows, :math:`X_{T_k}^\\top S_{T_k}\\lambda \\approx g_k`.

    Returns an ``(n, K)`` array, zero off the faces (a loop over the columns
    of the support, each a ``d x |T_k|`` least-squares problem).
    """
    lam = np.zeros(tight.shape)
    for k in np.flatnonzero(tight.any(axis=0)):
        rows = np.flatnonzero(tight[:, k])
        A = (S[rows, k, None] * X[rows]).T
        lam[rows, k] = np.linalg.lstsq(A, G[:, k], rcond=None)[0]
    return lam


def face_newton(
    problem,
    coef,
    intercept,
    multipliers,
    *,
    tol=1e-10,
    max_steps=10,
    max_variables=_MAX_VARIABLES,
    rel_tight=1e-2,
    shift=False,
):
    """Minimize an exact program over the support of ``coef``, each column on a face of its cone.

    Parameters
    ----------
    problem : ConeConstrainedProblem
        The program: one output, a pattern operator, column norms, interior
        points.
    coef : ndarray of shape problem.coef_shape
        A feasible point; its non-zero columns are the support.
    intercept : ndarray of shape (n_outputs,)
        Warm start of the intercept.
    multipliers : ndarray of shape problem.multiplier_shape
        Cone multipliers. A row starts on its column's face when its
        multiplier is positive and its constraint value is within
        ``rel_tight`` of zero (relative to the row's and the column's norms),
        or when the constraint is violated.
    tol : float, default=1e-10
        A face is solved when half the squared Newton decrement is below
        ``tol`` times the objective, or when, below ``1e-12`` times the
        objective, it stops falling (the rounding floor; ``tol=0`` solves
        each face to that floor).
    max_steps : int, default=10
        Maximum number of Newton steps.
    max_variables : int, default=512
        Largest ``n_support * n_features`` for which it runs: its Newton
        systems are dense.
    rel_tight : float, default=1e-2
        See ``multipliers``.
    shift : bool, default=False
        Add the Levenberg-Marquardt shift :math:`\\|g\\|/\\|U\\|` to every
        Newton system, not only where the undamped step predicts a decrease
        larger than the objective. It vanishes at the solution and steers
        the steps along nearly singular directions (parallel columns whose
        masks agree on the training rows), which matters when the faces are
        solved to rounding; it slows the first steps from a far start.

    Returns
    -------
    coef : ndarray of shape problem.coef_shape
        A feasible point (``coef`` itself when nothing applies). It can be
        worse than ``coef`` when the first faces are wrong; callers keep the
        better of the two.
    intercept : ndarray of shape (n_outputs,)
        Its optimal intercept.
    info : dict
        ``applied``, ``converged`` (a face was solved and none of its
        multipliers is negative: a KKT point of the program restricted to
        the support), ``n_steps``, ``n_products`` (products with the data),
        ``added``, ``released`` (rows) and ``dropped`` (columns).

    References
    ----------
    J. Nocedal and S. J. Wright. Numerical Optimization, 2nd ed., Springer,
    2006, Section 16.5.
    M. Pilanci and T. Ergen. Neural networks are convex regularizers: exact
    polynomial-time convex optimization formulations for two-layer networks.
    ICML 2020, arXiv:2002.10553.
    """
    info = {
        "applied": False,
        "converged": False,
        "n_steps": 0,
        "n_products": 0,
        "added": 0,
        "released": 0,
        "dropped": 0,
    }
    W = np.asarray(coef, dtype=np.float64)
    d, P, C = problem.coef_shape
    # The columns are the non-zero (pattern, output) pairs: each has its own
    # norm and its pattern's cone.
    nonzero = np.einsum("dkc,dkc->kc", W, W) > 0
    if not nonzero.any() or not _applicable(problem, int(nonzero.sum()), max_variables):
        return coef, intercept, info
    cols_k, cols_c = np.nonzero(nonzero)
    info["applied"] = True
    op = problem.operator
    # The cone rows: samples, or the patches of a patch operator.
    X = np.asarray(op.X, dtype=np.float64)
    XX = (X[:, :, None] * X[:, None, :]).reshape(X.shape[0], d * d)
    A = _column_designs(op, cols_k)
    n = A.shape[0]
    alpha = problem.alpha
    U = W[:, cols_k, cols_c]
    S = np.asarray(problem.cone_signs, dtype=np.float64)[:, cols_k]
    lam = np.asarray(multipliers, dtype=np.float64).reshape(X.shape[0], P, -1)
    lam = lam[:, cols_k, cols_c if lam.shape[2] == C else 0]
    values = S * (X @ U)
    near = values <= rel_tight * np.linalg.norm(X, axis=1)[:, None] * np.linalg.norm(U, axis=0)
    tight = (S != 0) & (((lam > 0) & near) | (values < 0))
    U, tight, E, free = _enter_faces(X, XX, S, U, tight)
    n_products = 2
    # Which output each column feeds.
    outputs = np.eye(C)[cols_c]

    def objective(U, b):
        pred = np.einsum("ndk,dk->nk", A, U) @ outputs
        value, b = problem.smooth_value(pred, b)
        return value + alpha * float(np.linalg.norm(U, axis=0).sum()), b, pred

    def face_gradient(J, grad, U, E, free):
        """Gradient in the free coordinates, and the columns' directions in them.

        From the face Jacobians ``J`` and the datafit's ``grad``.
        """
        Nr = np.einsum("kde,dk->ke", E, U / np.linalg.norm(U, axis=0))
        return (np.einsum("nkv,nk->kv", J, grad @ outputs.T) + alpha * Nr) * free, Nr

    value, b, pred = objective(U, intercept)
    stalled, decrement = False, np.inf
    for step in range(1, max_steps + 1):
        # Columns at rounding level are zero: their norm's curvature,
        # alpha / |u|, would swamp the Newton system.
        norms = np.linalg.norm(U, axis=0)
        keep = norms > _ROUNDING * norms.max(initial=0.0)
        if not keep.all():
            info["dropped"] += int(np.count_nonzero(~keep))
            U, S, A, tight = U[:, keep], S[:, keep], A[:, :, keep], tight[:, keep]
            E, free, outputs = E[keep], free[keep], outputs[keep]
            cols_k, cols_c = cols_k[keep], cols_c[keep]
            if cols_k.size == 0:
                break
        info["n_steps"] = step
        K = cols_k.size
        _, b, grad = problem.smooth(pred, b)
        R, Q = prediction_factor(problem, pred, b)
        # Column k's variables are its coordinates in the eigenbasis E_k;
        # only the free ones (its face's null space) move.
        J = np.einsum("ndk,kde->nke", A, E) * free[None]
        # The Hessian's factor maps column k's variables into its output.
        LJ = np.einsum("nab,bk,nkv->nakv", R, outputs.T, J).reshape(n * C, K * d)
        if Q.shape[1]:
            # The intercept is minimized out: its Schur complement.
            LJ -= Q @ (Q.T @ LJ)
        n_products += 2
        norms = np.linalg.norm(U, axis=0)
        N = U / norms
        g, Nr = face_gradient(J, grad, U, E, free)
        # Curvature of the norm, (alpha/|u|)(I - n n^T), on the free
        # coordinates; the others get an identity (and a zero gradient).
        blocks = (alpha / norms)[:, None, None] * (np.eye(d)[None] - Nr[:, :, None] * Nr[:, None, :])
        blocks *= free[:, :, None] * free[:, None, :]
        blocks += np.eye(d)[None] * (~free)[:, :, None]
        H = LJ.T @ LJ
        H.reshape(K, d, K, d)[np.arange(K), :, np.arange(K), :] += blocks
        H[np.diag_indices_from(H)] += 1e-12 * np.trace(H) / H.shape[0]
        # Levenberg-Marquardt: a shift that vanishes with the gradient.
        lm = np.linalg.norm(g) / np.linalg.norm(U)
        if shift:
            H[np.diag_indices_from(H)] += lm
        try:
            delta = -cho_solve(cho_factor(H, lower=True, check_finite=False), g.ravel())
            if not shift and -float(np.vdot(g, delta)) > 2 * abs(value):
                # A predicted decrease larger than the (non-negative)
                # objective: a nearly singular direction (parallel columns
                # with the same masks), which the shift bounds.
                H[np.diag_indices_from(H)] += lm
                delta = -cho_solve(cho_factor(H, lower=True, overwrite_a=True, check_finite=False), g.ravel())
        except np.linalg.LinAlgError:
            break
        delta = delta.reshape(K, d) * free
        decrement, last = -float(np.vdot(g, delta)), decrement
        # Below rounding level, Newton's decrements fall quadratically until
        # they reach the floor of float64: one that does not fall marks it.
        floor = decrement <= _ROUNDING * abs(value) and decrement > 0.25 * last
        if stalled or floor or not decrement > 2 * tol * abs(value):
            stalled = False
            # This face is solved. The row whose multiplier is most negative
            # in each column leaves its face (one per column: after several,
            # the next step may cross some of them again).
            full = np.einsum("ndk,nk->dk", A, grad @ outputs.T) + alpha * N
            mult = _face_multipliers(X, S, tight, full)
            scale = float(np.abs(mult).max()) if mult.size else 0.0
            negative = tight & (mult < -1e-8 * scale)
            if not negative.any():
                info["converged"] = True
                break
            cols = np.flatnonzero(negative.any(axis=0))
            rows = np.argmin(np.where(negative, mult, 0.0), axis=0)[cols]
            tight[rows, cols] = False
            info["released"] += cols.size
            E[cols], free[cols] = _face_bases(XX, tight[:, cols], d)
            continue
        D = np.einsum("kde,ke->dk", E, delta)
        if decrement <= _ROUNDING * abs(value):
            # Armijo cannot resolve a decrease at rounding level, but the
            # gradient can: the full step is taken when it shrinks the
            # gradient (weakly curved directions, such as the per-sample
            # shift of multinomial logits, converge only so).
            trial, t_tight, t_E, t_free = U + D, tight, E, free
            if (~tight & (S != 0) & (S * (X @ trial) < 0)).any():
                trial, t_tight, t_E, t_free = _enter_faces(X, XX, S, trial, tight)
            t_value, t_b, t_pred = objective(trial, b)
            _, t_b, t_grad = problem.smooth(t_pred, t_b)
            t_J = np.einsum("ndk,kde->nke", A, t_E) * t_free[None]
            n_products += 3
            if np.linalg.norm(face_gradient(t_J, t_grad, trial, t_E, t_free)[0]) < np.linalg.norm(g):
                U, value, b, pred = trial, t_value, t_b, t_pred
                tight, E, free = t_tight, t_E, t_free
            else:
                stalled = True
            continue
        through = np.einsum("dk,dk->k", N, U + D) <= 0
        if through.any():
            # Columns the step pushes through zero belong at zero.
            trial = np.where(through[None], 0.0, U)
            t_value, t_b, t_pred = objective(trial, b)
            n_products += 1
            if t_value < value:
                U, value, b, pred = trial, t_value, t_b, t_pred
                continue
        accepted = False
        t = 1.0
        for _ in range(4):
            # A step that crosses non-tight rows is projected back onto the
            # faces with them.
            trial, t_tight, t_E, t_free = U + t * D, tight, E, free
            if (~tight & (S != 0) & (S * (X @ trial) < 0)).any():
                trial, t_tight, t_E, t_free = _enter_faces(X, XX, S, trial, tight)
            t_value, t_b, t_pred = objective(trial, b)
            n_products += 2
            if t_value <= value - 1e-4 * t * decrement:
                accepted = True
                break
            t *= 0.5
        if accepted:
            info["added"] += int(np.count_nonzero(t_tight & ~tight))
            U, value, b, pred = trial, t_value, t_b, t_pred
            tight, E, free = t_tight, t_E, t_free
            continue
        # Else the longest step that keeps the non-tight rows feasible, and
        # the rows that stop it join their faces.
        V, dV = S * (X @ U), S * (X @ D)
        n_products += 1
        blocking = ~tight & (S != 0) & (dV < 0)
        ratios = np.where(blocking, np.maximum(V, 0) / np.where(blocking, -dV, 1.0), np.inf)
        t_max = min(1.0, float(ratios.min())) if blocking.any() else 1.0
        t = t_max
        while True:
            t_value, t_b, t_pred = objective(U + t * D, b)
            n_products += 1
            if t_value <= value - 1e-4 * t * decrement or t < 1e-10:
                break
            t *= 0.5
        if t_value >= value:
            if decrement > _ROUNDING * abs(value):
                break
            # No step of a decrement at rounding level can show a decrease:
            # the face is solved as far as float64 can tell.
            stalled = True
            continue
        U, value, b, pred = U + t * D, t_value, t_b, t_pred
        if t == t_max < 1.0:
            hit = blocking & (ratios <= t_max * (1 + 1e-9))
            info["added"] += int(np.count_nonzero(hit))
            tight |= hit
            cols = np.flatnonzero(hit.any(axis=0))
            E[cols], free[cols] = _face_bases(XX, tight[:, cols], d)
            U[:, cols] = _project(E[cols], free[cols], U[:, cols])
            value, b, pred = objective(U, b)
            n_products += 1
    out = np.zeros(problem.coef_shape, dtype=np.float64)
    out[:, cols_k, cols_c] = U
    # Rounding may leave last-bit violations on the tight rows.
    out, _ = problem.restore(out)
    info["n_products"] = n_products
    return out, b, info


# Newton steps of the final polish: a face is solved in a few, and each
# release of a row costs one more.
_FINISH_STEPS = 30

# Thresholds of the rows the final polish starts tight on, tried in turn
# (see _FINISH_CERTIFIED for when it stops). A point restored by projections
# on the cones has many rows near its faces, and no single threshold finds
# the optimum's faces from every start: on the batch-norm classifier's
# sample-weight check (9 features) 1e-2 ended 1.4 % above the start of one
# fit and 1e-4 0.5 % above the other's, and on a 3-class test program 1e-2
# ended 8e-7 above the optimum, which 1e-4 and 1e-6 reached.
_FINISH_REL_TIGHT = (1e-2, 1e-4, 1e-6)

# A polished point whose relative gap (with the best multipliers at its
# gradient) is below this is the optimum: the other starts are skipped.
_FINISH_CERTIFIED = 1e-10


def finish_on_faces(problem, result, tol):
    """Polish a solver's point on the faces of its cones, to the optimum of its support.

    The augmented Lagrangian certifies a point within ``tol`` of the optimum;
    where the support is small (``n_support * n_features`` at most 512),
    :func:`face_newton` from that point and its multipliers converges
    quadratically to the optimum of the program restricted to the support
    and the faces, which is the optimum of the program when the support is
    right. Fits then end at optima accurate to rounding, so that two fits of
    the same program (weighted and repeated rows, issue 18) agree to
    rounding rather than to ``tol``. The polished point replaces the
    result's only when its objective is lower, and the best multipliers at
    its gradient tighten the bound. The polish starts from up to three sets
    of tight rows (``rel_tight`` 1e-2, 1e-4 and 1e-6: the rows near a face
    whose multiplier is positive), since a polish started on wrong faces
    ends above the optimum; it stops at the first point that this bound
    certifies to 1e-10, and otherwise keeps the best of the three.

    Parameters
    ----------
    problem : ConeConstrainedProblem
        The program ``result`` solves.
    result : SolveResult
        A solver's result with ``info["multipliers"]``.
    tol : float
        The certificate's relative tolerance.

    Returns
    -------
    result : SolveResult
        ``result``, updated in place when the polish helped; its
        ``info["face_newton"]`` says what the polish did.
    """
    W = result.coef
    n_columns = int(np.count_nonzero(np.einsum("dkc,dkc->kc", W, W)))
    lam = result.info.get("multipliers")
    if lam is None or n_columns == 0 or not _applicable(problem, n_columns):
        return result
    op = problem.operator
    best, dual = None, result.dual_objective
    for rel_tight in _FINISH_REL_TIGHT:
        W_face, b_face, info = face_newton(
            problem, W, result.intercept, lam, tol=0.0, max_steps=_FINISH_STEPS, shift=True,
            rel_tight=rel_tight,
        )
        if not info["applied"]:
            result.info["face_newton"] = info
            return result
        Z = op.product(W_face)
        violation = problem.violation(Z)
        value, b_face, grad = problem.smooth(op.reduce(Z), b_face)
        primal = value + problem.alpha * problem.penalty.value(W_face)
        result.n_products += info["n_products"] + 1
        if violation > result.constraint_violation + tol or not primal < result.objective:
            continue
        if best is None or primal < best[0]:
            best = (primal, W_face, b_face, violation, info)
        # The best multipliers at the polished point's gradient: an optimum
        # is certified to rounding by them, and no other start can improve
        # on it.
        _, G = problem.refine_multipliers(grad, lam, bound_only=True)
        dual = max(dual, problem.dual_value(grad, G))
        result.n_products += 3
        if best[0] - dual <= _FINISH_CERTIFIED * abs(best[0]):
            break
    if best is None:
        result.info["face_newton"] = info
        return result
    primal, W_face, b_face, violation, info = best
    result.info["face_newton"] = info
    result.coef, result.intercept = W_face, np.asarray(b_face, dtype=np.float64)
    result.objective, result.dual_objective = primal, dual
    result.constraint_violation = violation
    result.converged = result.converged or (primal - dual <= tol * abs(primal) and violation <= tol)
    return result
