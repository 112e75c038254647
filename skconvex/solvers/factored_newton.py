"""Newton's method on the factors of nuclear-norm blocks: the end-game of FISTA for several outputs.

A nuclear-norm block :math:`W_p` (``d x C``) of rank :math:`r_p` is not smooth
in its entries, so Newton's method on the support
(:func:`~skconvex.solvers.support_newton.support_newton`) does not apply to
it. Its variational form is smooth:
:math:`\\|W\\|_* = \\min_{W = PQ^\\top} \\tfrac12(\\|P\\|_F^2 + \\|Q\\|_F^2)`,
attained at the balanced factors :math:`P = U\\Sigma^{1/2}`,
:math:`Q = V\\Sigma^{1/2}` of an SVD. With the ranks of a FISTA iterate fixed,
the program becomes

.. math::

    \\min_{P, Q} F\\Big(\\sum_p D_p X P_p Q_p^\\top + \\mathbf{1}b^\\top\\Big)
    + \\frac{\\alpha}{2}\\sum_p (\\|P_p\\|_F^2 + \\|Q_p\\|_F^2),

which is the weight-decay training problem of the gated network whose neurons
are the factors' columns (Sahiner et al., 2021; Mishkin et al., 2022). It is
not convex, but every point it reaches is a point of the convex program with
no larger objective (the nuclear norm of :math:`PQ^\\top` is at most the
factors' penalty), and at the convex optimum with its ranks it is a local
minimum with a non-singular Hessian up to the rotations
:math:`(P_pR, Q_pR)`, along which the gradient vanishes; Newton's method
converges quadratically there. The products cost a GEMM with
:math:`\\sum_p r_p` columns instead of FISTA's :math:`P C`, a few percent of
an iteration on digits (rank about 1 per block of 10 outputs). A factor whose
block should lose a rank goes to zero at a quadratic rate too: at zero its
curvature is :math:`\\alpha` minus the dual norm of its gradient, positive
exactly when zero is optimal. Ranks the support lacks are not added; the
caller certifies the returned point on the full program and goes on from it.

References
----------
A. Sahiner, T. Ergen, J. Pauly and M. Pilanci. Vector-output ReLU neural
network problems are copositive programs. ICML 2021, arXiv:2012.13329.
A. Mishkin, A. Sahiner and M. Pilanci. Fast convex optimization for two-layer
ReLU networks. ICML 2022, arXiv:2202.01331.
S. Burer and R. D. C. Monteiro. A nonlinear programming algorithm for solving
semidefinite programs via low-rank factorization. Math. Program., 2003.
"""

import numpy as np
import scipy.sparse as sp

from ..networks import factorize_blocks
from ..programs._chunks import row_batches
from ..programs._protocols import supports_restrict
from ._curvature import DataCurvature

__all__ = ["applies_to", "factored_newton"]

# Largest work array (bytes) of the block preconditioner: the blocks of the
# factor columns, or the products of pairs of features.
_BLOCK_BYTES = 64 * 2**20
# Conjugate-gradient iterations of a Newton step after which the next step
# rebuilds the preconditioner.
_REFRESH_CG = 50
# Newton decrements below this fraction of the objective are at its rounding
# level: the line search cannot judge a step there, the gradient's norm can.
_ROUNDING = 1e-10


def applies_to(problem):
    """Whether :func:`~skconvex.solvers.factored_newton.factored_newton` applies to ``problem``.

    It needs nuclear-norm blocks with several outputs over an in-memory
    :class:`~skconvex.programs.operators.PatternOperator` and a datafit with
    a Hessian factor.

    Parameters
    ----------
    problem : ConvexProblem
        The program.

    Returns
    -------
    applies : bool
        True for the programs :func:`~skconvex.solvers.factored_newton.factored_newton` solves.
    """
    from ..programs.operators import PatternOperator
    from ..programs.penalties import GroupNuclear

    op = problem.operator
    return (
        type(problem.penalty) is GroupNuclear
        and isinstance(op, PatternOperator)
        and op.coef_shape[2] > 1
        and supports_restrict(problem)
        and hasattr(problem.datafit, "hessian_factor")
    )


class _MaskedRows:
    """Factor columns over a pattern operator: column ``r`` acts through :math:`D_{p(r)} X`."""

    def __init__(self, op, owner):
        self.X = op.X if sp.issparse(op.X) else np.asarray(op.X, dtype=np.float64)
        self.masks = np.ascontiguousarray(np.asarray(op.masks, dtype=np.float64)[:, owner])
        self.n, self.d = self.X.shape
        # Products of pairs of features (n x d^2), for the preconditioner's blocks.
        self._pairs = None

    def apply(self, P):
        """Hidden activations :math:`m_r \\odot XP_r` of every column, ``n x R``."""
        return np.asarray(self.X @ P) * self.masks

    def adjoint(self, A):
        """:math:`X^\\top(m_r \\odot A_r)` for every column, ``d x R``."""
        return np.asarray(self.X.T @ (A * self.masks))

    def squares_adjoint(self, w):
        """:math:`\\sum_j w_{jr} m_{jr}^2 X_j^{\\odot 2}`, the diagonals of the columns' Gram blocks."""
        X2 = self.X.multiply(self.X) if sp.issparse(self.X) else self.X * self.X
        return np.asarray(X2.T @ (w * self.masks**2))

    def blocks_fit(self, budget):
        """Whether the dense Gram blocks can be formed within ``budget`` bytes."""
        return not sp.issparse(self.X) and self.n * self.d * self.d * 8 <= budget

    def gram_blocks(self, w):
        """:math:`\\sum_j w_{jr} m_{jr}^2 X_j X_j^\\top` for every column, ``R x d x d``."""
        n, d = self.X.shape
        if self._pairs is None:
            self._pairs = (self.X[:, :, None] * self.X[:, None, :]).reshape(n, d * d)
        return (self._pairs.T @ (w * self.masks**2)).T.reshape(-1, d, d)

    def cross_adjoint(self, rows, M):
        """:math:`X^\\top(m_r \\odot M_r)` over ``rows`` for ``M`` of shape ``(rows, R, C)``, as ``R x d x C``."""
        R, C = M.shape[1], M.shape[2]
        out = self.X[rows].T @ (self.masks[rows][:, :, None] * M).reshape(-1, R * C)
        return out.reshape(-1, R, C).transpose(1, 0, 2)


class _Factors:
    """The program on a support, in the balanced factors of its blocks.

    ``owner[r]`` is the block (position in the support) of factor column
    ``r``; ``P`` is ``d x R`` and ``Q`` is ``C x R``. The columns' hidden
    activations :math:`a_r = D_{p(r)}XP_r` (``cols``) are linear in ``P``
    and the predictions are :math:`\\sum_r a_r Q_r^\\top`.
    """

    def __init__(self, sub, owner):
        self.sub, self.owner = sub, owner
        op = sub.operator
        self.cols = _MaskedRows(op, owner)
        self.alpha = sub.alpha

    def predict(self, P, Q):
        """Predictions without intercept and the hidden activations ``T``."""
        T = self.cols.apply(P)
        return T @ Q.T, T

    def objective(self, P, Q, b):
        """Datafit at the optimal intercept plus the factors' penalty: ``(value, b)``."""
        pred, _ = self.predict(P, Q)
        value, b = self.sub.smooth_value(pred, b)
        return value + 0.5 * self.alpha * (np.vdot(P, P) + np.vdot(Q, Q)), b

    def linearize(self, P, Q, b):
        """Objective, intercept, gradient ``(gP, gQ)`` and the pieces of the Hessian at ``(P, Q)``."""
        sub = self.sub
        pred, T = self.predict(P, Q)
        value, b, G = sub.smooth(pred, b)
        value += 0.5 * self.alpha * (np.vdot(P, P) + np.vdot(Q, Q))
        G = np.asarray(G, dtype=np.float64)
        curv = DataCurvature(sub.datafit, pred + b, sub.y, sub.sample_weight, sub.fit_intercept, np.float64)
        gP = self.cols.adjoint(G @ Q) + self.alpha * P
        gQ = G.T @ T + self.alpha * Q
        return value, b, gP, gQ, (G, T, curv)

    def hessian_product(self, state, Q, dP, dQ):
        """Hessian of the reduced objective at the linearized point applied to ``(dP, dQ)``.

        Gauss-Newton part :math:`J^\\top H J` (intercept minimized out, in
        ``curv``) plus the bilinear terms of :math:`PQ^\\top` weighted by the
        gradient ``G``.
        """
        G, T, curv = state
        A = self.cols.apply(dP)
        HdZ = curv.apply(A @ Q.T + T @ dQ.T)
        hP = self.cols.adjoint(HdZ @ Q + G @ dQ) + self.alpha * dP
        hQ = HdZ.T @ T + G.T @ A + self.alpha * dQ
        return hP, hQ

    def preconditioner(self, state, Q):
        """Inverses of the Hessian's blocks of each factor column ``(P_r, Q_r)``, as a function.

        The blocks hold what a diagonal cannot: the coupling of ``P_r`` and
        ``Q_r``, along which the penalty alone curves the rescaling
        :math:`(cP_r, Q_r/c)`. Each is the Gauss-Newton block (without the
        intercept's correction) plus the gradient's cross term
        :math:`X^\\top(m_r \\odot G)` and ``alpha``; blocks that are not
        positive definite away from a minimum are inverted on the absolute
        values of their eigenvalues. Where the blocks or their work arrays
        would not fit in ``_BLOCK_BYTES`` (many features), or ``X`` is
        sparse, the diagonal is used instead.
        """
        G, T, curv = state
        cols = self.cols
        n, d = cols.n, cols.d
        C, R = Q.shape
        blocks = R * (d + C) ** 2 * 8 <= _BLOCK_BYTES and cols.blocks_fit(_BLOCK_BYTES)
        # Q_r^T H_j Q_r for every row and factor column and, for the blocks,
        # the P-Q coupling sum_j m_jr X_j (T_jr H_j Q_r + G_j)^T: through
        # n x R x C arrays, in row batches that fit in _BLOCK_BYTES.
        h = np.empty((n, R))
        PQ = np.zeros((R, d, C)) if blocks else None
        for rows in row_batches(n, _BLOCK_BYTES // (8 * R * C)):
            HQ = np.matmul(curv.H[rows], Q).transpose(0, 2, 1)
            h[rows] = np.einsum("nrc,cr->nr", HQ, Q)
            if blocks:
                PQ += cols.cross_adjoint(rows, T[rows][:, :, None] * HQ + G[rows, None, :])
        if not blocks:
            dP = cols.squares_adjoint(h) + self.alpha
            dQ = curv.diag.T @ (T * T) + self.alpha
            return lambda rP, rQ: (rP / dP, rQ / dQ)
        B = np.empty((R, d + C, d + C))
        B[:, :d, :d] = cols.gram_blocks(h)
        B[:, d:, d:] = ((T * T).T @ curv.H.reshape(n, C * C)).reshape(R, C, C)
        B[:, :d, d:] = PQ
        B[:, d:, :d] = PQ.transpose(0, 2, 1)
        B[:, np.arange(d + C), np.arange(d + C)] += self.alpha
        try:
            # Near a minimum every block is positive definite; the Cholesky
            # factorization tests it for a fraction of an eigendecomposition.
            np.linalg.cholesky(B)
            inv = np.linalg.inv(B)
        except np.linalg.LinAlgError:
            lam, V = np.linalg.eigh(B)
            lam = np.maximum(np.abs(lam), 1e-12 * np.abs(lam).max())
            inv = np.matmul(V / lam[:, None, :], V.transpose(0, 2, 1))

        def apply(rP, rQ):
            z = np.einsum("rij,rj->ri", inv, np.concatenate([rP.T, rQ.T], axis=1))
            return np.ascontiguousarray(z[:, :d].T), np.ascontiguousarray(z[:, d:].T)

        return apply


def _pcg(hess, gP, gQ, precond, rtol, max_iter):
    """Preconditioned CG for ``H x = -g`` on the pair of factor arrays.

    The Hessian may be indefinite away from a minimum: CG stops at the first
    direction of non-positive curvature and returns its last iterate, or the
    preconditioned steepest descent direction if that is the first one.
    Returns ``(dP, dQ, n_iterations)``.
    """
    dP, dQ = np.zeros_like(gP), np.zeros_like(gQ)
    rP, rQ = -gP, -gQ
    zP, zQ = precond(rP, rQ)
    pP, pQ = zP, zQ
    rz = np.vdot(rP, zP) + np.vdot(rQ, zQ)
    stop = rtol * np.sqrt(np.vdot(gP, gP) + np.vdot(gQ, gQ))
    k = 0
    for k in range(1, max_iter + 1):
        hP, hQ = hess(pP, pQ)
        curv = np.vdot(pP, hP) + np.vdot(pQ, hQ)
        if curv <= 0:
            if k == 1:
                return zP, zQ, k
            break
        a = rz / curv
        dP, dQ = dP + a * pP, dQ + a * pQ
        rP, rQ = rP - a * hP, rQ - a * hQ
        if np.sqrt(np.vdot(rP, rP) + np.vdot(rQ, rQ)) <= stop:
            break
        zP, zQ = precond(rP, rQ)
        rz_new = np.vdot(rP, zP) + np.vdot(rQ, zQ)
        pP, pQ = zP + (rz_new / rz) * pP, zQ + (rz_new / rz) * pQ
        rz = rz_new
    return dP, dQ, k


def factored_newton(
    problem, coef, intercept=None, *, tol=1e-6, max_steps=10, cg_rtol=1e-2, max_cg=500, max_products=np.inf
):
    """Minimize a nuclear-norm program over the factors of the non-zero blocks of ``coef``.

    Damped Newton with conjugate-gradient steps on the balanced factors
    :math:`W_p = P_pQ_p^\\top` of the blocks of ``coef``, ranks fixed (see the
    module's notes), started from an SVD of each block and stopped when the
    Newton decrement is below ``tol`` times the objective. Zero blocks stay
    zero; certifying the result on the full program is the caller's job.
    Same signature and returns as
    :func:`~skconvex.solvers.support_newton.support_newton`, which hands it
    the nuclear-norm programs with several outputs.

    Parameters
    ----------
    problem : ConvexProblem
        The full program, with :class:`~skconvex.programs.penalties.GroupNuclear`
        blocks of several outputs over a
        :class:`~skconvex.programs.operators.PatternOperator`.
    coef : ndarray of shape problem.coef_shape
        Starting point; its non-zero blocks are the support and their ranks
        the factors' widths.
    intercept : ndarray of shape (n_outputs,), default=None
        Warm start of the intercept.
    tol : float, default=1e-6
        Relative objective accuracy aimed at (half the squared Newton
        decrement estimates the suboptimality).
    max_steps : int, default=10
        Maximum number of Newton steps.
    cg_rtol : float, default=1e-2
        Forcing term of the first step's conjugate gradients; later steps use
        the smaller of this and the square root of the last relative
        decrement.
    max_cg : int, default=500
        Maximum conjugate-gradient iterations per Newton step.
    max_products : float, default=inf
        Budget, in operator products on the support: a product on the ``R``
        factor columns counts as the fraction
        ``(2 d R + 6 R C + 2 C^2) / (d n_support C)`` of one (their flops'
        ratio, ``d`` features and ``C`` outputs).

    Returns
    -------
    coef : ndarray of shape problem.coef_shape
        The improved point (``coef`` itself when nothing applies).
    intercept : ndarray of shape (n_outputs,)
        Its optimal intercept.
    info : dict
        ``n_steps``, ``n_products``, ``applicable``, ``applied`` and
        ``converged``, as :func:`~skconvex.solvers.support_newton.support_newton`
        reports them.
    """
    info = {"n_steps": 0, "n_products": 0, "applied": False, "applicable": applies_to(problem), "converged": False}
    W = np.asarray(coef)
    if not info["applicable"]:
        return W, intercept, info
    support = np.flatnonzero(problem.penalty.group_norms(W) > 0)
    if support.size == 0:
        return W, intercept, info
    info["applied"] = True
    # The balanced factors are the network's neurons; rounding-level singular
    # values (of a float32 block, say) are not ranks.
    hidden, output, owner = factorize_blocks(W[:, support, :])
    P, Q = np.ascontiguousarray(hidden.T), np.ascontiguousarray(output.T)
    model = _Factors(problem.restrict(support), owner)
    d, C, R = W.shape[0], W.shape[2], P.shape[1]
    # Flops of a product on the factors (GEMMs with R columns, per-row C x C
    # curvatures) relative to one on the support's blocks.
    unit = min(1.0, (2 * d * R + 6 * R * C + 2 * C * C) / (d * support.size * C))

    value, b, gP, gQ, state = model.linearize(P, Q, intercept)
    n_products = 2 * unit
    forcing = cg_rtol
    precond, n_cg, close, rounding_steps = None, 0, False, 0
    for step in range(1, max_steps + 1):
        cg_budget = max_cg
        if np.isfinite(max_products):
            cg_budget = min(max_cg, int((max_products - n_products) / (2 * unit)) - 3)
        if cg_budget < 1:
            break
        info["n_steps"] = step
        # The blocks cost about a GEMM with d * d rows: they are kept while
        # CG converges quickly with them (the Hessian moves little near the
        # minimum) and rebuilt after a step that needed many iterations.
        if precond is None or n_cg > _REFRESH_CG:
            precond = model.preconditioner(state, Q)
            n_products += unit

        def hess(dP, dQ, state=state, Q=Q):
            return model.hessian_product(state, Q, dP, dQ)

        dP, dQ, n_cg = _pcg(hess, gP, gQ, precond, forcing, cg_budget)
        n_products += 2 * n_cg * unit
        decrement = -(np.vdot(gP, dP) + np.vdot(gQ, dQ))
        if not decrement > 0:
            info["converged"] = True
            break
        if decrement <= _ROUNDING * abs(value):
            # The objective cannot tell the step's progress from rounding,
            # the gradient (the certificate's dual point) can: take up to
            # two full steps while they shrink it (each squares its error).
            new = model.linearize(P + dP, Q + dQ, b)
            n_products += 2 * unit
            if np.vdot(new[2], new[2]) + np.vdot(new[3], new[3]) >= np.vdot(gP, gP) + np.vdot(gQ, gQ):
                info["converged"] = True
                break
            P, Q = P + dP, Q + dQ
            value, b, gP, gQ, state = new
            rounding_steps += 1
            if rounding_steps == 2:
                info["converged"] = True
                break
            forcing = min(cg_rtol, np.sqrt(decrement / max(abs(value), np.finfo(float).tiny)))
            continue
        t = 1.0
        while True:
            trial, b_trial = model.objective(P + t * dP, Q + t * dQ, b)
            n_products += unit
            if trial <= value - 1e-4 * t * decrement or t < 1e-6:
                break
            t *= 0.5
        if trial >= value:
            break
        P, Q = P + t * dP, Q + t * dQ
        if t == 1.0 and decrement <= 2 * tol * abs(trial):
            # One step more than the objective needs: the certificate's dual
            # point is the gradient, whose error this step squares (the
            # factored program is less well conditioned than the convex one).
            if close:
                value, b = trial, b_trial
                info["converged"] = True
                break
            close = True
        forcing = min(cg_rtol, np.sqrt(decrement / max(abs(trial), np.finfo(float).tiny)))
        value, b, gP, gQ, state = model.linearize(P, Q, b_trial)
        n_products += 2 * unit
    info["n_products"] = int(np.ceil(n_products))

    out_blocks = np.zeros((support.size, W.shape[0], W.shape[2]))
    np.add.at(out_blocks, owner, P.T[:, :, None] * Q.T[:, None, :])
    out = np.zeros(problem.coef_shape, dtype=W.dtype)
    out[:, support, :] = out_blocks.transpose(1, 0, 2)
    return out, b, info
