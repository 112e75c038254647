"""Newton machinery of the augmented-Lagrangian solvers of cone programs.

The augmented Lagrangian of a cone program replaces its constraints by a
penalty :math:`\\tfrac{\\rho}{2}\\|(\\Lambda/\\rho - \\mathcal{G}W)_+\\|^2`; each outer
iteration minimizes it over ``W`` (a smooth group lasso, :class:`_AugmentedSubproblem`)
by semismooth Newton steps (:class:`_NewtonSubproblem`: block Hessians through
a Woodbury factorization, or preconditioned CG when that is too large), with
the line searches, damping and penalty schedule, and the outer loops
themselves (:func:`newton_al`, :func:`fista_al`): the one engine of the
two-layer (:func:`~skconvex.solvers.auglag.augmented_lagrangian`) and nested
(:func:`~skconvex.solvers.nested.nested_augmented_lagrangian`) solvers, which
only describe their cones to it.
"""


import contextlib
import time

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import eigsh
from threadpoolctl import threadpool_limits

from ..programs.datafits import Datafit
from ..programs.problem import ConvexProblem
from ._lowrank import _spd_inverses_in_place, prediction_factor
from ._result import SolveResult
from .fista import fista

# Inexact Newton: CG preconditioned by the last factorization stops at this
# relative residual, and is abandoned for a new factorization after this many
# iterations.
_CG_RTOL = 0.1
_CG_MAXITER = 10
# ... unless its best iterate is within this relative residual: still a
# descent direction (inexact Newton with a looser forcing term), and much
# cheaper than refreshing the factorization.
_CG_ACCEPT = 0.3
# Matrix-free Newton (large problems): truncated, preconditioned CG.
_CG_RTOL_FREE = 0.05
_CG_MAXITER_FREE = 50
# Largest Woodbury system (bytes) before Newton goes matrix-free.
_DENSE_BYTES = 200 * 2**20
# Newton systems with at most this many prediction rows run their BLAS on one
# thread: their products and factorizations take well under a millisecond
# each, where waking threads costs as much as the work (measured 2-3x slower
# with two threads for 150 to 570 rows on two cores).
_SINGLE_THREAD_ROWS = 2000
# Levenberg-Marquardt damping of the columns' radial directions, relative to
# the datafit's curvature along them: raised by this factor (from
# _RADIAL_DAMPING_MIN) when a Newton step is cut short, lowered after full
# steps.
_RADIAL_DAMPING_MIN = 1e-4
_RADIAL_DAMPING_FACTOR = 10.0


def _blas_threads(n_rows):
    """Context limiting BLAS to one thread for Newton systems of ``n_rows`` rows or fewer."""
    if n_rows <= _SINGLE_THREAD_ROWS:
        return threadpool_limits(limits=1, user_api="blas")
    return contextlib.nullcontext()


# Newton steps without a 10% fall of the gradient before an inner loop hands
# over to the multiplier update. Steps that cross kinks of the cone penalty
# make the gradient norm jump, so a loop that looks stuck after 10 steps often
# converges within 20; stopping at 10 left the penalties to grow on
# subproblems that were not solved, up to rho = 1e15 on the nested cones.
# 20 instead of 10 certified all 20 gate draws of 100 diabetes rows without
# the Clarabel finish (10.4 s in all against 35.1 s, 6 of them finished by
# Clarabel), 12 of 12 nested-cone fits instead of 8 in half the time, and
# matrix-free multinomial digits programs that stalled (benchmarks/README.md,
# "Inner Newton loops: 20 creeping steps", issue 18).
_CREEP_STEPS = 20
# Relative distance to the kink within which a cone row counts as active in
# the Newton systems of a retry after a stall (see newton_al_with_retry).
_KINK_RTOL = 1e-8


class _AugmentedDatafit(Datafit):
    """The datafit on the first ``C`` columns plus :math:`\\|(\\Lambda - \\rho Z)_+\\|^2/(2\\rho)` on the rest.

    ``pred`` is the stacked array ``[A U, G U]`` of shape ``(n, C + K)``.
    """

    lipschitz = 1.0

    def __init__(self, datafit, n_outputs, multipliers, rho):
        self.datafit = datafit
        self.C = n_outputs
        self.lam = multipliers
        self.rho = float(rho)

    def _active(self, pred):
        r = self.lam - self.rho * pred[:, self.C :]
        np.maximum(r, 0, out=r)
        return r

    def value(self, pred, y, sample_weight):
        r = self._active(pred)
        h = float(np.vdot(r, r)) / (2 * self.rho)
        return self.datafit.value(pred[:, : self.C], y, sample_weight) + h

    def gradient(self, pred, y, sample_weight):
        return self.value_and_gradient(pred, y, sample_weight)[1]

    def value_and_gradient(self, pred, y, sample_weight):
        pf = pred[:, : self.C]
        r = self._active(pred)
        value = self.datafit.value(pf, y, sample_weight) + float(np.vdot(r, r)) / (2 * self.rho)
        grad = np.empty_like(pred)
        grad[:, : self.C] = self.datafit.gradient(pf, y, sample_weight)
        np.negative(r, out=grad[:, self.C :])
        return value, grad

    def remainder_bound(self, pred, y, sample_weight, delta):
        # The penalty's gradient is rho-Lipschitz.
        dz = delta[:, self.C :]
        return self.datafit.remainder_bound(
            pred[:, : self.C], y, sample_weight, delta[:, : self.C]
        ) + 0.5 * self.rho * float(np.vdot(dz, dz))

    def optimal_intercept(self, z, y, sample_weight, intercept=None):
        if intercept is not None:
            intercept = np.asarray(intercept)[: self.C]
        b = self.datafit.optimal_intercept(z[:, : self.C], y, sample_weight, intercept)
        return np.concatenate([b, np.zeros(z.shape[1] - self.C)])


class _StackedOperator:
    """:math:`U \\mapsto [\\mathcal{A}U,\\ \\mathcal{G}U]` of shape ``(n, C + B C)`` and its adjoint."""

    def __init__(self, problem):
        self.problem = problem
        self.base = problem.operator
        self.coef_shape = self.base.coef_shape
        self.dtype = self.base.dtype
        d, B, C = self.coef_shape
        # Constraint rows may outnumber the samples (patch rows of CNN
        # programs, sample-major): each sample's constraints are one row here.
        self.multiplier_shape = problem.multiplier_shape
        self.n_outputs = C + int(np.prod(self.multiplier_shape)) // self.base.n_samples

    @property
    def n_samples(self):
        return self.base.n_samples

    def forward(self, W):
        Z = self.base.product(W)
        cone = self.problem.constraint_values(Z).reshape(self.n_samples, -1)
        return np.concatenate([self.base.reduce(Z), cone], axis=1)

    def adjoint(self, R):
        C = self.coef_shape[2]
        return self.problem.joint_adjoint(R[:, :C], R[:, C:].reshape(self.multiplier_shape))

    def lipschitz(self, sample_weight=None, *, curvature=1.0, rho=1.0, n_iter=5, random_state=0):
        """Power-iteration estimate of the subproblem's smoothness constant.

        The curvature is ``curvature * sample_weight`` on the prediction rows
        and ``rho`` on the constraint rows.
        """
        rng = np.random.default_rng(random_state)
        W = rng.standard_normal(self.coef_shape).astype(self.dtype)
        W /= np.linalg.norm(W)
        C = self.coef_shape[2]
        s = np.ones(self.n_samples) if sample_weight is None else np.asarray(sample_weight)
        s = (curvature * s).astype(self.dtype)
        value = 0.0
        for _ in range(n_iter):
            R = self.forward(W)
            R[:, :C] *= s[:, None]
            R[:, C:] *= self.dtype.type(rho)
            V = self.adjoint(R)
            value = float(np.linalg.norm(V))
            if value == 0.0:
                return 0.0
            W = V / value
        return value


class _AugmentedSubproblem(ConvexProblem):
    """One augmented-Lagrangian subproblem, seen by FISTA as an ordinary composite program.

    Its :meth:`dual_value` also records the dual value of the *constrained*
    program carried by the same gradient (``best_outer_dual``).
    """

    def __init__(self, problem, multipliers, rho, stacked=None):
        d, B, C = problem.coef_shape
        n = problem.operator.n_samples
        lam = np.asarray(multipliers, dtype=problem.dtype).reshape(n, -1)
        super().__init__(
            _StackedOperator(problem) if stacked is None else stacked,
            _AugmentedDatafit(problem.datafit, C, lam, rho),
            problem.penalty,
            problem.y,
            problem.sample_weight,
            problem.alpha,
            fit_intercept=problem.fit_intercept,
        )
        self.base = problem
        self.lam64 = lam.astype(np.float64)
        self.rho = float(rho)
        self.C = C
        self.n_outputs = C + lam.shape[1]
        self.best_outer_dual = -np.inf

    def intercept(self, pred, intercept=None):
        if not self.fit_intercept:
            return np.zeros(pred.shape[1])
        return self.datafit.optimal_intercept(pred, self.y, self.sample_weight, intercept)

    def dual_value(self, grad, G):
        C = self.C
        theta = -np.asarray(grad[:, :C], dtype=np.float64)
        mu = -np.asarray(grad[:, C:], dtype=np.float64)
        if mu.size and mu.min() < 0:
            return -np.inf
        dn = self.penalty.dual_norm(G)
        c_max = np.inf if dn == 0 else self.alpha / dn
        outer = self.base.datafit.best_dual(theta, self.y, self.sample_weight, c_max)
        self.best_outer_dual = max(self.best_outer_dual, outer)
        c = min(1.0, c_max)
        inner = self.base.datafit.dual(c * theta, self.y, self.sample_weight)
        return inner + (c * float(np.vdot(mu, self.lam64)) - 0.5 * c * c * float(np.vdot(mu, mu))) / self.rho




class _ConeGram:
    """:math:`\\sum_j a_{jk} x_j x_j^\\top` for every column ``k`` of a 0/1 activity matrix.

    The curvature of the active cone constraints, one ``d x d`` block per
    column. Only upper triangles are summed, and between Newton steps only
    the rows whose activity changed (a sparse product); a full product every
    ``refresh`` updates bounds the rounding drift.
    """

    refresh = 20

    def __init__(self, X):
        X = np.asarray(X, dtype=np.float64)
        d = X.shape[1]
        upper_r, upper_c = np.triu_indices(d)
        packed = np.zeros((d, d), dtype=np.intp)
        packed[upper_r, upper_c] = packed[upper_c, upper_r] = np.arange(upper_r.size)
        self.gram = np.ascontiguousarray(X[:, upper_r] * X[:, upper_c])
        self.packed = packed.reshape(d * d)
        self.active, self.sums, self.updates = None, None, 0
        self._blocks = None

    def __call__(self, active):
        """The blocks, shape ``(n_columns, d * d)``, for boolean ``active`` (``(n, n_columns)``).

        They are written to a work array of this object, which the next call
        overwrites: on digits-sized multinomial programs the blocks take 120
        MB, and a fresh array of that size cost 0.1-0.3 s of page faults at
        every Newton step.
        """
        prev = self.active
        if prev is not None and prev.shape == active.shape and self.updates < self.refresh:
            rows, cols = np.nonzero(active != prev)
            if rows.size <= 0.1 * active.size:
                if rows.size:
                    sign = np.where(active[rows, cols], 1.0, -1.0)
                    change = sp.csr_matrix((sign, (cols, rows)), shape=active.shape[::-1])
                    self.sums = self.sums + change @ self.gram
                    self.updates += 1
                self.active = active
                return self._unpack()
        self.sums = active.T.astype(np.float64) @ self.gram
        self.active, self.updates = active, 0
        return self._unpack()

    def _unpack(self):
        shape = (self.sums.shape[0], self.packed.size)
        if self._blocks is None or self._blocks.shape != shape:
            self._blocks = np.empty(shape)
        # np.take into the work array, not sums[:, packed]: 14 ms against
        # 85 ms for the 4,000 columns of a multinomial batch-norm program on
        # digits ("clip" because "raise" buffers the output; the indices are
        # valid).
        return np.take(self.sums, self.packed, axis=1, out=self._blocks, mode="clip")


class _NewtonSubproblem:
    """:math:`\\phi` of one outer iteration: value, gradient and Newton direction."""

    def __init__(self, problem, gamma, lam, sigma, rho, row_gram, kink_rtol=0.0):
        self.problem = problem
        self.op = problem.operator
        self.gamma, self.lam = gamma, lam
        self.sigma, self.rho = float(sigma), float(rho)
        self.tau = problem.alpha / self.sigma
        self.row_gram = row_gram
        # Rows whose penalty argument lambda - rho c is within kink_rtol of
        # the kink (relative to its largest magnitude) count as active in the
        # generalized Hessian: a valid element of it at the tied rows, and
        # one that keeps a Newton step from pushing many of them through the
        # kink at once (see newton_al_with_retry).
        self.kink_rtol = float(kink_rtol)

    def evaluate(self, U, intercept=None):
        p, op = self.problem, self.op
        Z = op.product(U)
        pred = op.reduce(Z)
        try:
            with np.errstate(over="raise", invalid="raise"):
                value, b, grad_f = p.smooth(pred, intercept)
        except (FloatingPointError, np.linalg.LinAlgError):
            # A trial point of a line search so far out that the loss
            # overflows: reject it.
            return np.inf, None
        r = self.lam - self.rho * p.constraint_values(Z)
        # Rows within kink_rtol of the kink, before clipping (see __init__);
        # without it the active rows are read off the clipped r when needed.
        tied = r > -self.kink_rtol * np.abs(r).max(initial=0.0) if self.kink_rtol else None
        np.maximum(r, 0, out=r)
        V = U + self.gamma / self.sigma
        vn = np.sqrt(np.einsum("dkc,dkc->kc", V, V))
        inside = vn <= self.tau
        alpha = p.alpha
        huber = np.where(inside, 0.5 * self.sigma * vn**2, alpha * vn - 0.5 * alpha * self.tau)
        phi = value + float(huber.sum()) + float(np.vdot(r, r)) / (2 * self.rho)
        return phi, {"U": U, "Z": Z, "pred": pred, "b": b, "grad_f": grad_f, "r": r, "V": V, "vn": vn, "tied": tied}

    @staticmethod
    def _active(cache):
        """Rows the generalized Hessian counts active."""
        return cache["r"] > 0 if cache["tied"] is None else cache["tied"]

    def gradient(self, cache):
        vn = cache["vn"]
        shrink = np.where(vn > 0, np.minimum(1.0, self.tau / np.where(vn > 0, vn, 1.0)), 1.0)
        G = self.problem.joint_adjoint(cache["grad_f"], -cache["r"])
        return G + self.sigma * cache["V"] * shrink[None]

    def hessian(self, cache, ridge, radial):
        """Regularized generalized Hessian at ``cache``: blocks and datafit factors.

        Parameters
        ----------
        cache : dict
            From :meth:`evaluate`.
        ridge : float
            Isotropic ridge added to every block.
        radial : float
            Along each column outside the envelope's ball, where the envelope
            is flat, curvature equal to ``radial`` times the datafit's own
            curvature in that direction is kept. Without it the Hessian is
            singular along combinations of columns the datafit does not see
            either (there are more columns than the datafit's rank ``n (C -
            1)`` on small data), and Newton steps would be unbounded there; it
            is a Levenberg-Marquardt damping of the radial directions only.

        Returns
        -------
        M : ndarray of shape (n_blocks * n_outputs, d, d)
            Blocks of the envelope and cone terms.
        R, Q : ndarray
            Datafit factors (see :func:`~skconvex.solvers._lowrank.prediction_factor`).
        """
        p = self.problem
        d, B, C = p.coef_shape
        vn = cache["vn"].reshape(B * C)
        V = cache["V"].transpose(1, 2, 0).reshape(B * C, d)
        eye = np.eye(d)
        # Envelope curvature: sigma I inside the ball, (alpha/|v|)(I - v v^T/|v|^2) outside.
        outside = vn > self.tau
        coef = np.where(outside, p.alpha / np.where(outside, vn, 1.0), self.sigma)
        M = coef[:, None, None] * eye[None]
        R, Q = prediction_factor(p, cache["pred"], cache["b"])
        if outside.any():
            idx = np.flatnonzero(outside)
            vhat = V[idx] / vn[idx, None]
            # Datafit curvature along each radial direction: the diagonal of
            # A^T W A for that column, sum_j w_jc m_jk^2 (x_j^T vhat)^2.
            w = np.einsum("jac,jac->jc", R, R)
            k_idx, c_idx = np.divmod(idx, C)
            curv = _radial_curvature(self.op, w, vhat, k_idx, c_idx)
            keep = np.minimum(radial * curv, coef[idx]) - coef[idx]
            radial_part = keep[:, None, None] * (vhat[:, :, None] * vhat[:, None, :])
            if idx.size == M.shape[0]:
                M += radial_part
            else:
                M[idx] += radial_part
        active = self._active(cache).reshape(-1, B * C)
        if active.any():
            M += self.rho * self.row_gram(active).reshape(B * C, d, d)
        # A relative ridge keeps the blocks numerically positive definite
        # when the penalties are large (the datafit term covers the rest).
        scale = np.trace(M, axis1=1, axis2=2) / d
        M += (ridge + 1e-12 * scale)[:, None, None] * eye[None]
        return M, R, Q

    def hessian_free(self, cache, ridge, radial):
        """Matrix-free generalized Hessian at ``cache`` and its preconditioner.

        Same operator as :meth:`hessian` without the datafit's low-rank
        factorization: the cone term is applied as :math:`\\rho X^\\top(t
        \\odot XV)` (the forward product and the fused adjoint), for problems
        whose Woodbury system would be too large. The preconditioner is
        block Jacobi when the row Gram is available (one ``d x d`` block per
        column: the envelope's and the active cones' curvature exactly, the
        datafit's diagonal), the Hessian's diagonal otherwise.

        Returns
        -------
        parts : tuple
            ``("free", R, Q, env, vhat, outside, drop, cone, precondition)``,
            ``cone`` the weights of the active cones' curvature (see
            ``cone_curvature_weights`` of the problem), ``precondition(r)``
            applying the preconditioner's inverse.
        """
        p = self.problem
        d, B, C = p.coef_shape
        n = self.op.n_samples
        vn = cache["vn"].reshape(B * C)
        V = cache["V"].transpose(1, 2, 0).reshape(B * C, d)
        R, Q = prediction_factor(p, cache["pred"], cache["b"])
        outside = vn > self.tau
        env = np.where(outside, p.alpha / np.where(outside, vn, 1.0), self.sigma) + ridge
        vhat = V[outside] / vn[outside, None] if outside.any() else np.zeros((0, d))
        # keep radial * (datafit curvature) along each radial direction
        w = np.einsum("jac,jac->jc", R, R)
        X2 = self.op.X.multiply(self.op.X) if sp.issparse(self.op.X) else self.op.X**2
        if hasattr(self.op, "features"):
            # Pooled patch operators: column (k, c) predicts with features[:, :, k].
            F2 = np.asarray(self.op.features, dtype=np.float64) ** 2
            loss_diag = np.einsum("jdk,jc->kcd", F2, w).reshape(B * C, d)
        else:
            masks2 = self.op.masks**2
            loss_diag = (X2.T @ (masks2[:, :, None] * w[:, None, :]).reshape(n, B * C)).T
        drop = env[outside] - ridge
        if outside.any() and radial > 0:
            k_idx, c_idx = np.divmod(np.flatnonzero(outside), C)
            curv = _radial_curvature(self.op, w, vhat, k_idx, c_idx)
            drop = drop - np.minimum(radial * curv, drop)
        active_rows = self._active(cache)
        active = active_rows.astype(np.float64)
        # The cone curvature's weights, once per step for every product.
        cone = self.problem.cone_curvature_weights(self.rho * active)
        if self.row_gram is not None:
            # Rebuilt every step: one four steps old took 6x the CG
            # iterations on a multinomial digits program.
            precondition = self._block_jacobi(env, loss_diag, active_rows, vhat, outside, drop)
            return ("free", R, Q, env, vhat, outside, drop, cone, precondition)
        diagonal = env[:, None] + loss_diag + self.rho * (X2.T @ active.reshape(-1, B * C)).T
        if outside.any():
            diagonal[outside] -= drop[:, None] * vhat**2
        diagonal = np.maximum(diagonal, ridge + np.finfo(float).tiny)
        diagonal = diagonal.reshape(B, C, d).transpose(2, 0, 1)
        return ("free", R, Q, env, vhat, outside, drop, cone, lambda r: r / diagonal)

    def _block_jacobi(self, env, loss_diag, active, vhat, outside, drop):
        """Inverse of the Hessian's ``d x d`` column blocks, datafit part diagonal, as a function.

        The cone and envelope terms of a column are exact (the cones' from
        the row Gram, updated between steps only where rows changed); the
        datafit's coupling of the columns through the predictions is left
        out, and of its own block only the diagonal is kept (its full blocks
        cost a product with every row's outer product per step and saved
        no CG iterations on digits). Measured on the multinomial digits
        program: 4x fewer CG iterations than the diagonal alone.
        """
        d, B, C = self.problem.coef_shape
        # The blocks (B C d^2 numbers) are built and inverted in the row
        # Gram's work array: no array of their size is allocated per step
        # (see _ConeGram).
        M = self.row_gram(active.reshape(-1, B * C)).reshape(B * C, d, d)
        M *= self.rho
        diag = np.einsum("kii->ki", M)
        diag += env[:, None] + loss_diag
        if outside.any():
            # Rank-one downdates of all blocks (zero inside the ball), one row
            # of every block at a time: a boolean-indexed update of the
            # outside ones took 4x as long.
            a = np.zeros((B * C, d))
            a[outside] = np.sqrt(drop)[:, None] * vhat
            for i in range(d):
                M[:, i, :] -= a[:, i, None] * a
        # A relative ridge keeps every block numerically positive definite.
        diag += 1e-12 * (diag.sum(axis=1) / d)[:, None]
        M_inv = _spd_inverses_in_place(M)

        def precondition(r):
            cols = np.ascontiguousarray(r.transpose(1, 2, 0)).reshape(B * C, d, 1)
            return np.matmul(M_inv, cols).reshape(B, C, d).transpose(2, 0, 1)

        return precondition

    def hessian_product(self, parts, v):
        """Generalized Hessian times ``v`` (two products with the data)."""
        d, B, C = self.problem.coef_shape
        n = self.op.n_samples
        free = isinstance(parts[0], str)
        if free:
            _, R, Q, env, vhat, outside, drop, cone, _ = parts
        else:
            M, R, Q = parts
        Z = self.op.product(v)
        pred = np.asarray(self.op.reduce(Z), dtype=np.float64)
        h = np.einsum("jab,jb->ja", R, pred).reshape(n * C)
        if Q.shape[1]:
            h -= Q @ (Q.T @ h)
        w = np.einsum("jab,ja->jb", R, h.reshape(n, C))
        cols = v.transpose(1, 2, 0).reshape(B * C, d)
        if not free:
            out = np.asarray(self.op.adjoint(w), dtype=np.float64)
            out += np.matmul(M, cols[:, :, None]).reshape(B, C, d).transpose(2, 0, 1)
            return out
        out = np.asarray(self.problem.cone_curvature_adjoint(w, Z, cone), dtype=np.float64)
        env_cols = env[:, None] * cols
        if outside.any():
            env_cols[outside] -= drop[:, None] * vhat * np.einsum("id,id->i", vhat, cols[outside])[:, None]
        out += env_cols.reshape(B, C, d).transpose(2, 0, 1)
        return out


def _pcg(hessian_product, solve, g, rtol, max_iter, return_last=False, accept_rtol=None):
    """Preconditioned conjugate gradient for ``H x = g``.

    Returns None if it does not reach ``rtol`` in ``max_iter`` iterations,
    unless ``return_last`` (truncated CG: every iterate is a descent
    direction) or the iterate with the smallest residual is within
    ``accept_rtol`` (then that iterate).
    """
    x = np.zeros_like(g)
    r = g.copy()
    z = solve(r)
    p = z.copy()
    rz = float(np.vdot(r, z))
    g_norm = float(np.linalg.norm(g))
    best, best_res = None, np.inf
    for _ in range(max_iter):
        Hp = hessian_product(p)
        curv = float(np.vdot(p, Hp))
        if curv <= 0:
            return x if return_last and x.any() else None
        a = rz / curv
        x += a * p
        r -= a * Hp
        res = float(np.linalg.norm(r))
        if res <= rtol * g_norm:
            return x
        if accept_rtol is not None and res < best_res:
            best, best_res = x.copy(), res
        z = solve(r)
        rz_new = float(np.vdot(r, z))
        p = z + (rz_new / rz) * p
        rz = rz_new
    if return_last and x.any():
        return x
    if accept_rtol is not None and best_res <= accept_rtol * g_norm:
        return best
    return None


def _gradient_shrinking_step(sub, cache, direction, step, g_norm):
    """First of ``step``, ``step/2``, ``step/4`` whose gradient is smaller than ``g_norm``.

    Used where the predicted decrease is at the rounding level of the
    objective, which Armijo cannot resolve but the gradient norm can.
    Returns ``(step or None, phi, cache, n_products)``.
    """
    n_products = 0
    for t in (step, 0.5 * step, 0.25 * step):
        phi_new, cache_new = sub.evaluate(cache["U"] + t * direction, cache["b"])
        n_products += 2
        if cache_new is not None and np.linalg.norm(sub.gradient(cache_new)) < g_norm:
            return t, phi_new, cache_new, n_products
    return None, phi_new, cache_new, n_products


def _armijo_step(sub, cache, direction, step, phi, slope):
    """Backtracking (halving, at most 40 times) to sufficient decrease.

    Returns ``(step or None, phi, cache, n_products)``.
    """
    for n_products in range(1, 41):
        phi_new, cache_new = sub.evaluate(cache["U"] + step * direction, cache["b"])
        if cache_new is not None and phi_new <= phi + 1e-4 * step * slope:
            return step, phi_new, cache_new, n_products
        step *= 0.5
    return None, phi_new, cache_new, n_products


def _next_damping(damping, shortened, step):
    """Radial damping after a Newton step; ``(damping, shortened)``.

    Steps cut short mean the Hessian is (nearly) singular along directions the
    line search cannot use: damp them more (the caller refactorizes). Full
    steps relax the damping until it vanishes.
    """
    if shortened:
        return max(damping * _RADIAL_DAMPING_FACTOR, _RADIAL_DAMPING_MIN), True
    if step == 1.0 and damping > 0:
        damping = damping / _RADIAL_DAMPING_FACTOR
        if damping < _RADIAL_DAMPING_MIN:
            damping = 0.0
    return damping, False


def _print_newton_step(verbose, n_iter, phi, gmax, step):
    if verbose >= 2:
        print(
            f"  [newton] step {n_iter:4d}  phi {phi:.12g}  |grad| {gmax:.2e}  t {step:.3g}",
            flush=True,
        )


def _start_step(g, direction, cache, tau):
    """Descent direction, its slope, and the first step of the line search."""
    slope = float(np.vdot(g, direction))
    if slope >= 0:
        direction, slope = -g, -float(np.vdot(g, g))
    # Along directions no term curves (duplicate columns) Newton steps are
    # huge; the line search starts from a step that changes no column by more
    # than ten times the largest current one.
    dn = np.sqrt(np.einsum("dkc,dkc->kc", direction, direction)).max()
    reach = 10 * (float(cache["vn"].max()) + tau)
    step = min(1.0, reach / dn) if dn > 0 else 1.0
    return direction, slope, step


def _radial_curvature(op, w, vhat, k_idx, c_idx):
    """Datafit curvature :math:`\\sum_j w_{jc} (A_k \\hat v)_j^2` of columns ``(k, c)`` along ``vhat``."""
    if hasattr(op, "features"):
        F = np.asarray(op.features, dtype=np.float64)[:, :, k_idx]
        pred = np.einsum("jdi,id->ji", F, vhat)
    else:
        pred = op.masks[:, k_idx] * (op.X @ vhat.T)
    return np.einsum("ji,ji->i", w[:, c_idx], pred**2)


def _curvature_scale(problem):
    """:math:`L_F\\lambda_{\\max}(X^\\top S X)`, the datafit's curvature per column."""
    s = problem.sample_weight
    if hasattr(problem.operator, "features"):
        # Pooled patch operators: the largest curvature of any block's features.
        F = np.asarray(problem.operator.features, dtype=np.float64)
        gram = np.einsum("jdk,j,jek->kde", F, s, F)
        top = float(np.linalg.eigvalsh(gram)[:, -1].max()) if gram.size else 0.0
        return max(problem.datafit.lipschitz * top, np.finfo(float).tiny)
    X = problem.operator.X
    if sp.issparse(X):
        # Only the top eigenvalue is needed: Lanczos on the sparse d x d Gram.
        X = X.astype(np.float64)
        gram = sp.csr_array(X.T @ X.multiply(s[:, None]))
        if gram.shape[0] > 2:
            # A fixed start: ARPACK's own random start changes from call
            # to call, and with it the step sizes and the fit.
            v0 = np.random.default_rng(0).standard_normal(gram.shape[0])
            top = float(eigsh(gram, k=1, which="LA", v0=v0, return_eigenvectors=False)[0])
        else:
            top = float(np.linalg.eigvalsh(gram.toarray())[-1]) if gram.shape[0] else 0.0
        return max(problem.datafit.lipschitz * top, np.finfo(float).tiny)
    X = np.asarray(X, dtype=np.float64)
    gram = (X * s[:, None]).T @ X
    top = float(np.linalg.eigvalsh(gram)[-1]) if gram.size else 0.0
    return max(problem.datafit.lipschitz * top, np.finfo(float).tiny)


class _PenaltySchedule:
    """Outer-loop bookkeeping of the augmented-Lagrangian solvers.

    Penalties grow while their residuals, or the gap, fall too slowly: larger
    penalties make the multipliers converge faster, and Newton's exact solves
    do not mind the conditioning. Residuals and gap count only after an
    accurate subproblem solve, since otherwise the penalties are not what
    limits them (the subproblem is).
    Rounding eventually stops the progress of the certificate, so the solver
    gives up after several outer iterations without a 10% improvement.
    """

    def __init__(self, tol, growth):
        self.tol, self.growth = tol, growth
        self.consensus = self.violation = self.gap = np.inf
        self.best_gap, self.n_stalled = np.inf, 0

    def stalled(self, rel_gap):
        if rel_gap < 0.9 * self.best_gap:
            self.best_gap, self.n_stalled = rel_gap, 0
        else:
            self.n_stalled += 1
        return self.n_stalled >= 8

    def grow(self, sigma, rho, consensus, violation, rel_gap, inner_converged, exact=True):
        tol, growth = self.tol, self.growth
        if exact and not inner_converged:
            # Exact Newton steps that stop short of the subproblem's
            # tolerance mean the subproblem itself is hard (saturated losses,
            # where Newton creeps): the residuals it leaves say nothing about
            # the penalties, and growing them makes the next subproblem harder
            # still. Growing on them (with thresholds of 0.1 * tol) pushed both
            # penalties up 10^4-fold on a separable logistic program at tight
            # tol, so the multipliers stopped converging and tighter tol ended
            # with a worse, uncertified gap (issue 18). Only a stalled gap
            # grows them then. (Truncated CG directions rarely reach the
            # subproblem's tolerance at all; there the residuals still guide.)
            if self.n_stalled >= 2:
                sigma, rho = sigma * growth, rho * growth
            self.consensus, self.violation, self.gap = consensus, violation, rel_gap
            return sigma, rho
        slow_gap = inner_converged and rel_gap > 0.25 * self.gap
        if (consensus > 0.25 * self.consensus and consensus > 0.1 * tol) or slow_gap:
            sigma *= growth
        if (violation > 0.25 * self.violation and violation > 0.1 * tol) or slow_gap:
            rho *= growth
        self.consensus, self.violation, self.gap = consensus, violation, rel_gap
        return sigma, rho




# --------------------------------------------------------------------------
# The engine: one outer loop per inner solver, for every cone family
# --------------------------------------------------------------------------
#
# A cone family (``_ColumnCones`` of :mod:`~skconvex.solvers.auglag`, the
# per-column cones of the two-layer programs; ``_NestedCones`` of
# :mod:`~skconvex.solvers.nested`, the nested cones of the three-layer and
# path-regularized programs) gives the loops below what differs between the
# programs: its ``problem`` (float64), ``label`` and ``solver`` names,
# ``initial_multipliers(init)``, ``joint_adjoint(grad, multipliers)``,
# ``group_norms(W)`` and ``expand(x)`` (the penalty's groups),
# ``certify(W, b, multipliers, Z=None)``, ``constraint_values(Z)``,
# ``refine(grad, multipliers)`` (a tighter dual matrix ``G`` or None),
# ``fista_subproblem(multipliers, rho)``, and for Newton ``scales()``,
# ``newton_subproblem(gamma, multipliers, sigma, rho)``, ``matrix_free``,
# ``hessian(sub, cache, ridge, damping)`` and ``factorize(sub, parts, hess, g)``
# (a solve of the Newton system and the direction for ``g``). The penalty
# schedule, line searches, conjugate gradient, certificates and stopping
# rule are the engine's alone.


def _print_outer(label, k, n_iter, primal, dual, violation, rho, t0, sigma=None):
    rel = (primal - dual) / max(abs(primal), np.finfo(float).tiny)
    extra = "" if sigma is None else f"  sigma {sigma:.2e}"
    print(
        f"[{label}] outer {k:3d}  inner iters {n_iter:6d}  objective {primal:.10g}  "
        f"rel. gap {rel:.3e}  violation {violation:.2e}  rho {rho:.2e}{extra}  "
        f"{time.perf_counter() - t0:.2f}s",
        flush=True,
    )


def newton_al(
    family, coef_init, intercept_init, multipliers_init, *, tol, max_iter, max_outer,
    sigma, rho, growth, verbose,
):
    """Semismooth Newton augmented Lagrangian on the cone family ``family``.

    See :func:`~skconvex.solvers.auglag.augmented_lagrangian` for the method
    and the parameters; ``family`` is one of the cone families described in
    this module's comments.

    Returns
    -------
    result : SolveResult
        The best restored point, its objective and the best certified bound.
    """
    t0 = time.perf_counter()
    problem = family.problem
    op = problem.operator
    alpha = problem.alpha
    h0, row_sq = family.scales()
    sigma = h0 if sigma is None else float(sigma)
    rho = h0 / max(row_sq, np.finfo(float).tiny) if rho is None else float(rho)
    ridge = 1e-10 * h0

    U = problem.zeros() if coef_init is None else np.array(coef_init, dtype=np.float64)
    b = None if intercept_init is None else np.asarray(intercept_init, dtype=np.float64)
    lam = family.initial_multipliers(multipliers_init)
    # Start Gamma at the projection of minus the Lagrangian gradient onto the
    # dual ball, its value at a solution.
    value, b, grad_f = problem.smooth(op.forward(U), b)
    G0 = family.joint_adjoint(grad_f, -lam)
    norms = family.group_norms(G0)
    with np.errstate(divide="ignore", invalid="ignore"):
        gamma = -G0 * family.expand(np.where(norms > alpha, alpha / norms, 1.0))

    W_best, cert, b_best, violation, after = family.certify(U, b, lam)
    best_primal, best_dual, best_after = cert.primal, cert.dual, after
    n_iter, n_products = 0, 4
    history = [(best_primal, best_dual, violation, time.perf_counter() - t0)]
    schedule = _PenaltySchedule(tol, growth)
    system, penalties = None, None
    damping = 0.0
    # A warm start may already be close: solve the first subproblem to a
    # tenth of its certified gap.
    rel0 = (best_primal - best_dual) / max(abs(best_primal), np.finfo(float).tiny)
    inner_tol = float(np.clip(0.1 * rel0, 0.01 * tol, 0.1))
    converged = False
    alpha_ref = alpha if alpha > 0 else h0 * 1e-12
    if verbose:
        _print_outer(family.label, 0, 0, best_primal, best_dual, violation, rho, t0, sigma)
    for k in range(1, max_outer + 1):
        sub = family.newton_subproblem(gamma, lam, sigma, rho)
        if (sigma, rho) != penalties:
            system, penalties = None, (sigma, rho)
        phi, cache = sub.evaluate(U, b)
        n_products += 1
        best_gmax, flat = np.inf, 0
        inner_converged = False
        while True:
            g = sub.gradient(cache)
            n_products += 1
            gmax = float(np.sqrt(np.einsum("dkc,dkc->kc", g, g)).max()) if g.size else 0.0
            if gmax <= inner_tol * alpha_ref or n_iter >= max_iter:
                inner_converged = gmax <= inner_tol * alpha_ref
                break
            # Along nearly flat directions (saturated losses) Newton can creep;
            # the multiplier update then helps more than further steps.
            if gmax < 0.9 * best_gmax:
                best_gmax, flat = gmax, 0
            else:
                flat += 1
                if flat >= _CREEP_STEPS:
                    break
            parts = family.hessian(sub, cache, ridge, damping)

            def hess(v, parts=parts):
                return sub.hessian_product(parts, v)

            direction = None
            if family.matrix_free:
                # Truncated CG with the subproblem's preconditioner.
                precondition = parts[-1]
                direction = _pcg(hess, precondition, -g, _CG_RTOL_FREE, _CG_MAXITER_FREE, return_last=True)
                if direction is None:
                    direction = -precondition(g)
                n_products += 2 * _CG_MAXITER_FREE
            elif system is not None:
                # The last factorization preconditions CG on the current
                # Hessian: a few cheap products instead of a new factorization.
                direction = _pcg(hess, system, -g, _CG_RTOL, _CG_MAXITER, accept_rtol=_CG_ACCEPT)
            fresh = family.matrix_free or direction is None
            if direction is None:
                system, direction = family.factorize(sub, parts, hess, g)
            n_products += 2
            n_iter += 1
            direction, slope, step = _start_step(g, direction, cache, sub.tau)
            capped = step < 1.0
            if -slope <= 1e-12 * abs(phi):
                # The predicted decrease is at the rounding level of phi, where
                # Armijo cannot tell progress: accept a step that shrinks the
                # gradient, which rounding does not hide. An inexact (CG)
                # direction that fails is replaced by an exact one once.
                g_norm = np.linalg.norm(g)
                while True:
                    accepted, phi_new, cache_new, spent = _gradient_shrinking_step(
                        sub, cache, direction, step, g_norm
                    )
                    n_products += spent
                    if accepted is not None or fresh:
                        break
                    system, direction = family.factorize(sub, parts, hess, g)
                    direction, slope, step = _start_step(g, direction, cache, sub.tau)
                    fresh = True
            else:
                accepted, phi_new, cache_new, spent = _armijo_step(sub, cache, direction, step, phi, slope)
                n_products += spent
            if accepted is None:
                break
            step = accepted
            _print_newton_step(verbose, n_iter, phi_new, gmax, step)
            phi, cache = phi_new, cache_new
            damping, shortened = _next_damping(damping, capped or step < 0.1, step)
            if shortened:
                system = None

        U, b = cache["U"], cache["b"]

        # Multiplier updates.
        V, vn = cache["V"], cache["vn"]
        with np.errstate(divide="ignore", invalid="ignore"):
            keep = np.where(vn > sub.tau, 1.0 - sub.tau / vn, 0.0)
        Qc = V * family.expand(keep)
        gamma = sigma * (V - Qc)
        lam = cache["r"]

        # Certificate: dual from (grad F, lam), primal at the restored Q.
        G = family.joint_adjoint(cache["grad_f"], -lam)
        best_dual = max(best_dual, problem.dual_value(cache["grad_f"], G))
        W_feas, cert, b_feas, violation, after = family.certify(Qc, b, None)
        n_products += 4
        if cert.primal < best_primal:
            best_primal, W_best, b_best, best_after = cert.primal, W_feas, b_feas, after
        rel_gap = (best_primal - best_dual) / max(abs(best_primal), np.finfo(float).tiny)
        history.append((best_primal, best_dual, violation, time.perf_counter() - t0))
        if verbose:
            _print_outer(family.label, k, n_iter, best_primal, best_dual, violation, rho, t0, sigma)
        # The returned (restored) point is what is certified: within tol and
        # feasible, whether or not the last iterate is.
        if rel_gap <= tol and best_after <= tol:
            converged = True
            break
        if n_iter >= max_iter or schedule.stalled(rel_gap):
            break
        consensus = float(np.linalg.norm(U - Qc)) / max(float(np.linalg.norm(Qc)), np.finfo(float).tiny)
        sigma, rho = schedule.grow(
            sigma, rho, consensus, problem.violation(cache["Z"]), rel_gap, inner_converged,
            exact=not family.matrix_free,
        )
        inner_tol = float(np.clip(0.1 * min(rel_gap, inner_tol), 0.01 * tol, 0.1))

    return _engine_result(
        family, "newton", tol, lambda: cache["grad_f"], W_best, b_best, best_primal, best_dual,
        n_iter, converged, best_after, n_products, history, lam, rho, U, violation, sigma=sigma,
    )


def newton_al_with_retry(family, budget, **options):
    """:func:`newton_al` on ``budget`` Newton steps, run again on the rest after a stall.

    A stall of the exact Newton steps (short of ``tol`` before ``budget``):
    steps that push cone rows tied at the kink of the penalty through it at
    once shrink to nothing while the penalties grow. The program is solved
    again with the rows within :data:`_KINK_RTOL` of the kink counted active
    (another element of the generalized Hessian; measured in
    ``benchmarks/README.md``, "Uncertified default fits"); the better
    certificate is kept and the work of both runs counts. Matrix-free
    families get no retry (with tied rows active their truncated CG did not
    converge on small programs).
    """
    result = newton_al(family, max_iter=budget, **options)
    if result.converged or result.n_iter >= budget or family.matrix_free:
        return result
    family.kink_rtol = _KINK_RTOL
    retry = newton_al(family, max_iter=budget - result.n_iter, **options)
    best = retry if retry.relative_gap < result.relative_gap else result
    best.n_iter = result.n_iter + retry.n_iter
    best.n_products = result.n_products + retry.n_products
    return best


def fista_al(
    family, coef_init, intercept_init, multipliers_init, *, tol, max_iter, max_outer, rho,
    growth, verbose,
):
    """Augmented Lagrangian with accelerated proximal gradient subproblems on ``family``.

    See :func:`~skconvex.solvers.auglag.augmented_lagrangian`
    (``inner="fista"``) for the method and the parameters.

    Returns
    -------
    result : SolveResult
        The best restored point, its objective and the best certified bound.
    """
    t0 = time.perf_counter()
    problem = family.problem
    op = problem.operator
    C = problem.coef_shape[2]
    U = problem.zeros() if coef_init is None else np.array(coef_init, dtype=np.float64)
    lam = family.initial_multipliers(multipliers_init)
    if rho is None:
        # The datafit's curvature per unit weight.
        s = problem.sample_weight
        rho = problem.datafit.lipschitz * s.sum() / max(int(np.count_nonzero(s)), 1)
    rho = float(rho)
    b = None if intercept_init is None else np.asarray(intercept_init, dtype=np.float64)

    W_best, cert, b_best, violation, after = family.certify(U, b, lam)
    best_primal, best_dual, best_after = cert.primal, cert.dual, after
    n_products, n_iter = 3, 0
    step = None
    history = [(best_primal, best_dual, violation)]
    converged = False
    inner_tol = 1e-2
    if verbose:
        _print_outer(family.label, 0, 0, best_primal, best_dual, violation, rho, t0)
    for k in range(1, max_outer + 1):
        if best_primal - best_dual <= tol * abs(best_primal) and best_after <= tol:
            converged = True
            break
        if n_iter >= max_iter:
            break
        sub = family.fista_subproblem(lam, rho)
        if step is None:
            lip = sub.operator.lipschitz(
                problem.sample_weight, curvature=problem.datafit.lipschitz, rho=rho
            )
            n_products += 10
            step = 1.0 / lip if lip > 0 else 1.0
        b_full = None if b is None else np.concatenate([b, np.zeros(sub.n_outputs - C)])
        res = fista(
            sub,
            coef_init=U,
            intercept_init=b_full,
            tol=inner_tol,
            max_iter=max_iter - n_iter,
            step_init=step,
            verbose=max(0, verbose - 1),
        )
        n_iter += res.n_iter
        n_products += res.n_products
        step = res.info.get("step", step)
        U = res.coef
        b = np.asarray(res.intercept[:C], dtype=np.float64)
        best_dual = max(best_dual, sub.best_outer_dual)

        Z = op.product(U)
        new_lam = lam - rho * family.constraint_values(Z)
        np.maximum(new_lam, 0, out=new_lam)
        W_feas, cert, b_feas, new_violation, after = family.certify(U, b, new_lam, Z)
        n_products += 3
        best_dual = max(best_dual, cert.dual)
        if cert.primal < best_primal:
            best_primal, W_best, b_best, best_after = cert.primal, W_feas, b_feas, after
        history.append((best_primal, best_dual, new_violation))
        if verbose:
            _print_outer(family.label, k, n_iter, best_primal, best_dual, new_violation, rho, t0)
        if new_violation > 0.25 * violation and new_violation > tol:
            rho *= growth
            step /= growth
        violation = new_violation
        lam = new_lam
        rel_gap = (best_primal - best_dual) / max(abs(best_primal), np.finfo(float).tiny)
        inner_tol = float(np.clip(0.1 * min(rel_gap, inner_tol), 0.1 * tol, 1e-2))
    else:
        converged = best_primal - best_dual <= tol * abs(best_primal) and best_after <= tol

    return _engine_result(
        family, "fista", tol, lambda: problem.smooth(op.forward(U), b)[2], W_best, b_best,
        best_primal, best_dual, n_iter, converged, best_after, n_products, history, lam, rho, U,
        violation, step=step,
    )


def _engine_result(
    family, inner, tol, last_gradient, W, b, primal, dual, n_iter, converged, after, n_products,
    history, lam, rho, iterate, iterate_violation, **penalties,
):
    """The engine's :class:`SolveResult`: the best restored point and the last iterate's state.

    Unless already converged, the best multipliers for the last iterate's
    datafit gradient (``last_gradient()``), where the family can compute
    them, tighten the certificate of the point returned first.
    """
    if not converged:
        grad = last_gradient()
        G = family.refine(grad, lam)
        if G is not None:
            dual = max(dual, family.problem.dual_value(grad, G))
            n_products += 3
        converged = (primal - dual) <= tol * abs(primal) and after <= tol
    return SolveResult(
        coef=W,
        intercept=np.asarray(b, dtype=np.float64),
        objective=primal,
        dual_objective=dual,
        n_iter=max(n_iter, 1),
        converged=bool(converged),
        solver=f"{family.solver}-{inner}",
        constraint_violation=after,
        n_products=n_products,
        history=history,
        info={
            "multipliers": lam,
            "rho": rho,
            **penalties,
            "inner": inner,
            "iterate": iterate,
            "iterate_violation": iterate_violation,
        },
    )
