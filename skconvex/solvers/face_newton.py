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

The augmented Lagrangian (:mod:`~skconvex.solvers.auglag`) finds good
multipliers in one outer iteration but reaches a feasible point as good as a
warm start only after its cone penalty has grown for several; started from
the previous solution of a regularization path, this polish supplies that
point directly.
"""

import numpy as np
from scipy.linalg import cho_factor, cho_solve

from ._lowrank import prediction_factor

__all__ = ["face_newton"]

# Eigenvalues of a face's row Gram matrix below this fraction of the largest
# span its null space.
_NULL_RTOL = 1e-10
# Largest n_support * n_features: the Newton systems are dense (measured in
# benchmarks/README.md: beyond it a step costs more than it saves).
_MAX_VARIABLES = 512


def _applicable(problem, n_support=0, max_variables=_MAX_VARIABLES):
    """Whether it covers ``problem`` (one output, column norms, a pattern operator, interior points) with that support."""
    from ..programs.penalties import ColumnGroupL2, GroupL2

    op = problem.operator
    return (
        op.coef_shape[2] == 1
        and n_support * op.coef_shape[0] <= max_variables
        and isinstance(problem.penalty, (ColumnGroupL2, GroupL2))
        and hasattr(op, "masks")
        # Its face systems hold the dense n x d^2 products of the rows of X.
        and not getattr(op, "sparse", False)
        and not hasattr(op, "features")
        and not hasattr(op, "expand")
        and hasattr(problem.datafit, "hessian_factor")
        and getattr(problem, "interior", None) is not None
    )


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
        ``tol`` times the objective.
    max_steps : int, default=10
        Maximum number of Newton steps.
    max_variables : int, default=512
        Largest ``n_support * n_features`` for which it runs: its Newton
        systems are dense.
    rel_tight : float, default=1e-2
        See ``multipliers``.

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
    support = np.flatnonzero(np.einsum("dkc,dkc->k", W, W) > 0)
    if support.size == 0 or not _applicable(problem, support.size, max_variables):
        return coef, intercept, info
    d = problem.coef_shape[0]
    W = W[:, :, 0]
    info["applied"] = True
    op = problem.operator
    X = np.asarray(op.X, dtype=np.float64)
    XX = (X[:, :, None] * X[:, None, :]).reshape(X.shape[0], d * d)
    alpha = problem.alpha
    U = W[:, support]
    S = np.asarray(problem.cone_signs, dtype=np.float64)[:, support]
    masks = np.asarray(op.masks, dtype=np.float64)[:, support]
    lam = np.asarray(multipliers, dtype=np.float64).reshape(S.shape[0], -1)[:, support]
    values = S * (X @ U)
    near = values <= rel_tight * np.linalg.norm(X, axis=1)[:, None] * np.linalg.norm(U, axis=0)
    tight = (S != 0) & (((lam > 0) & near) | (values < 0))
    U, tight, E, free = _enter_faces(X, XX, S, U, tight)
    n_products = 2

    def objective(U, b):
        pred = np.einsum("nk,nk->n", masks, X @ U)[:, None]
        value, b = problem.smooth_value(pred, b)
        return value + alpha * float(np.linalg.norm(U, axis=0).sum()), b, pred

    value, b, pred = objective(U, intercept)
    for step in range(1, max_steps + 1):
        keep = np.linalg.norm(U, axis=0) > 0
        if not keep.all():
            info["dropped"] += int(np.count_nonzero(~keep))
            U, S, masks, tight = U[:, keep], S[:, keep], masks[:, keep], tight[:, keep]
            E, free, support = E[keep], free[keep], support[keep]
            if support.size == 0:
                break
        info["n_steps"] = step
        K = support.size
        _, b, grad = problem.smooth(pred, b)
        R, Q = prediction_factor(problem, pred, b)
        # Column k's variables are its coordinates in the eigenbasis E_k;
        # only the free ones (its face's null space) move.
        J = (masks[:, :, None] * (X @ E.transpose(1, 0, 2).reshape(d, K * d)).reshape(-1, K, d))
        J = (J * free[None]).reshape(-1, K * d)
        LJ = R[:, 0, 0][:, None] * J
        if Q.shape[1]:
            # The intercept is minimized out: its Schur complement.
            LJ -= Q @ (Q.T @ LJ)
        n_products += 2
        norms = np.linalg.norm(U, axis=0)
        N = U / norms
        Nr = np.einsum("kde,dk->ke", E, N)
        g = ((J.T @ grad[:, 0]).reshape(K, d) + alpha * Nr) * free
        # Curvature of the norm, (alpha/|u|)(I - n n^T), on the free
        # coordinates; the others get an identity (and a zero gradient).
        blocks = (alpha / norms)[:, None, None] * (np.eye(d)[None] - Nr[:, :, None] * Nr[:, None, :])
        blocks *= free[:, :, None] * free[:, None, :]
        blocks += np.eye(d)[None] * (~free)[:, :, None]
        H = LJ.T @ LJ
        H.reshape(K, d, K, d)[np.arange(K), :, np.arange(K), :] += blocks
        H[np.diag_indices_from(H)] += 1e-12 * np.trace(H) / H.shape[0]
        try:
            delta = -cho_solve(cho_factor(H, lower=True, overwrite_a=True, check_finite=False), g.ravel())
        except np.linalg.LinAlgError:
            break
        delta = delta.reshape(K, d) * free
        decrement = -float(np.vdot(g, delta))
        if not decrement > 2 * tol * abs(value):
            # This face is solved. The row whose multiplier is most negative
            # in each column leaves its face (one per column: after several,
            # the next step may cross some of them again).
            full = X.T @ (masks * grad) + alpha * N
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
            break
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
    out[:, support, 0] = U
    # Rounding may leave last-bit violations on the tight rows.
    out, _ = problem.restore(out)
    info["n_products"] = n_products
    return out, b, info
