"""Exact solves with "block diagonal + pattern operator Gram" matrices.

Second-order steps of the cone programs (the augmented-Lagrangian Newton
steps of the two-layer and nested cone programs) solve

.. math:: (M + \\mathcal{A}^\\top \\Pi^\\top \\Pi \\mathcal{A})\\, x = g,

where :math:`M` is block diagonal with one ``d x d`` block per column
``(block k, output c)`` of the coefficients and :math:`\\Pi^\\top\\Pi` is the
Hessian of the datafit in prediction space with the intercept minimized out
(:math:`\\Pi = (I - QQ^\\top) R`, :math:`R_j^\\top R_j = s_j\\nabla^2\\ell_j`,
:math:`Q` an orthonormal basis of the intercept directions :math:`R E`).
The unknowns number ``d * n_blocks * n_outputs`` but :math:`\\Pi\\mathcal{A}`
has only ``n_samples * n_outputs`` rows, so the Woodbury identity

.. math:: x = M^{-1}g - M^{-1}\\mathcal{A}^\\top\\Pi^\\top K^{-1}\\Pi\\mathcal{A}M^{-1}g,
    \\qquad K = I + \\Pi\\mathcal{A}M^{-1}\\mathcal{A}^\\top\\Pi^\\top,

needs one Cholesky factorization of the ``(n C) x (n C)`` matrix :math:`K`,
whose pattern part :math:`\\mathcal{A}M^{-1}\\mathcal{A}^\\top` is, per output,
:math:`\\sum_k D_k (X M_{kc}^{-1} X^\\top) D_k = Y_c Y_c^\\top` with
:math:`Y_c = [D_g X L_{gc}]_g` (one GEMM; columns sharing a mask are grouped,
:math:`L_{gc}L_{gc}^\\top = \\sum_{k \\in g} M_{kc}^{-1}`), or
:math:`(X M_0^{-1} X^\\top)\\odot(|M||M|^\\top)` when every block is the same
:math:`M_0`. Each solve then costs one forward and one adjoint product.
"""

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.linalg.lapack import dpotrf, dpotri, dpotrs

from .._config import check_memory

__all__ = ["BlockPlusLowRank", "prediction_factor"]


def prediction_factor(problem, pred, intercept=None):
    """Factor :math:`\\Pi` of the reduced datafit Hessian at linear predictions ``pred``.

    Parameters
    ----------
    problem : ConvexProblem
        The program (its datafit provides ``hessian_factor``).
    pred : ndarray of shape (n_samples, n_outputs)
        Predictions :math:`\\mathcal{A}W` without intercept.
    intercept : ndarray of shape (n_outputs,), default=None
        The optimal intercept of ``pred`` when already known.

    Returns
    -------
    R : ndarray of shape (n_samples, n_outputs, n_outputs)
        Per-sample factors at the optimal intercept.
    Q : ndarray of shape (n_samples * n_outputs, r)
        Orthonormal basis of the intercept directions (``r = 0`` without
        intercept).
    """
    b = problem.intercept(pred) if intercept is None else np.asarray(intercept, dtype=np.float64)
    R = problem.datafit.hessian_factor(
        np.asarray(pred, dtype=np.float64) + b, problem.y, problem.sample_weight
    )
    n, C, _ = R.shape
    if not problem.fit_intercept:
        return R, np.zeros((n * C, 0))
    RE = R.reshape(n * C, C)
    U, s, _ = np.linalg.svd(RE, full_matrices=False)
    keep = s > 1e-12 * (s.max() if s.size else 0.0)
    return R, U[:, keep]


# Blocks at least this large are inverted one LAPACK call at a time: from
# about 24 rows, LAPACK's Cholesky inverse (potrf + potri) in a loop beats the
# batched Cholesky and triangular solves (2,000 blocks: 42 against 52 ms at
# 32 rows, 0.29 against 0.70 s for 4,000 blocks of 62 rows; 18 against 12 ms
# at 16 rows).
_LOOP_BLOCK_SIZE = 24


def _spd_inverse_one(M, upper=None):
    """Inverse of one SPD block by LAPACK's Cholesky, or through its eigenvalues when that fails.

    ``upper``, the indices of the strict upper triangle, saves recomputing
    them for every block of a loop.
    """
    c, info = dpotrf(M, lower=1, clean=0)
    if info == 0:
        c, info = dpotri(c, lower=1)
    if info == 0:
        # dpotri fills the lower triangle only.
        upper = np.triu_indices(M.shape[0], 1) if upper is None else upper
        c[upper] = c.T[upper]
        return c
    # Positive definite in exact arithmetic but not numerically (a penalty
    # of 1e20 on badly scaled features): invert through the eigenvalues,
    # floored at the block's rounding level.
    w, V = np.linalg.eigh(M)
    w = np.maximum(w, M.shape[0] * np.finfo(float).eps * max(w.max(), np.finfo(float).tiny))
    return (V / w) @ V.T


def _spd_inverses(M):
    """Inverses of the symmetric positive definite blocks ``M[k]`` through their Cholesky factors.

    Much more accurate than ``np.linalg.inv`` (LU) for the ill-conditioned
    blocks of large penalties. All blocks are factorized in one batched call
    (:math:`M^{-1} = L^{-\top}L^{-1}`): a Python loop of LAPACK calls on
    hundreds of small blocks cost more than the rest of a Newton step. Only
    when some block is numerically indefinite does it fall back to one block
    at a time.
    """
    M = np.asarray(M, dtype=np.float64)
    if M.ndim == 3 and M.shape[1] >= _LOOP_BLOCK_SIZE:
        # Large blocks: LAPACK's Cholesky inverse (potrf + potri, a third of
        # the batched path's flops) block by block; the loop's overhead is
        # negligible at this size (measured 1.7x faster on 26 blocks of 216).
        out = np.empty(M.shape)  # C order, whatever the layout of M
        upper = np.triu_indices(M.shape[1], 1)
        for k, Mk in enumerate(M):
            out[k] = _spd_inverse_one(Mk, upper)
        return out
    try:
        L = np.linalg.cholesky(M)
    except np.linalg.LinAlgError:
        return np.stack([_spd_inverse_one(Mk) for Mk in M]) if len(M) else M.copy()
    # Triangular inverses by batched solves (exact enough: L is well scaled
    # relative to M, its condition number is the square root of M's).
    eye = np.broadcast_to(np.eye(M.shape[1]), M.shape)
    L_inv = np.linalg.solve(L, eye)
    out = np.matmul(L_inv.transpose(0, 2, 1), L_inv)
    return out


def _spd_inverses_in_place(M):
    """Replace the symmetric positive definite blocks ``M[k]`` by their inverses; return ``M``.

    ``M`` is a float64 C-ordered array of shape ``(n_blocks, d, d)``. Blocks
    of at least ``_LOOP_BLOCK_SIZE`` rows are inverted by LAPACK's Cholesky
    inverse in their own memory (the transpose of a symmetric C-ordered
    block is the same matrix in Fortran order): no array of ``M``'s size is
    allocated, and no block is copied but for the fallback of
    :func:`_spd_inverse_one`. Smaller blocks go through :func:`_spd_inverses`.
    """
    d = M.shape[1]
    if d < _LOOP_BLOCK_SIZE:
        M[...] = _spd_inverses(M)
        return M
    scratch = np.empty((d, d))
    for Mk in M:
        np.copyto(scratch, Mk)
        F = Mk.T
        c, info = dpotrf(F, lower=1, overwrite_a=1, clean=0)
        if info == 0:
            c, info = dpotri(c, lower=1, overwrite_c=1)
        if info != 0:
            Mk[...] = _spd_inverse_one(scratch)
        elif not np.may_share_memory(c, Mk):
            F[...] = c
    # The lower triangles of the Fortran views are the upper triangles of the
    # blocks: mirror them, one row of every block at a time.
    for i in range(d - 1):
        M[:, i + 1 :, i] = M[:, i, i + 1 :]
    return M


def _cho_factor_capacitance(K):
    """Cholesky factor of a capacitance matrix :math:`I + P A P` (``A`` PSD).

    Its eigenvalues are at least 1 in exact arithmetic, but when ``A`` is
    huge (large penalties, saturated curvatures) the identity drowns in the
    rounding of ``A`` and Cholesky can meet a negative pivot (seen on the
    sparse data of scikit-learn's checks, depending on BLAS summation
    order). Then the symmetrized matrix gets a diagonal shift of the size of
    that rounding: the Newton direction is only approximate there, which
    the solver's line search and its certificate do not rely on.
    """
    try:
        return cho_factor(K, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        pass
    K = 0.5 * (K + K.T)
    shift = K.shape[0] * np.finfo(np.float64).eps * max(float(np.abs(np.diag(K)).max()), 1.0)
    for _ in range(8):
        K[np.diag_indices_from(K)] += shift
        try:
            return cho_factor(K, lower=True, check_finite=False)
        except np.linalg.LinAlgError:
            shift *= 10.0
    raise np.linalg.LinAlgError("Newton capacitance matrix is not positive definite even after a diagonal shift")


class BlockPlusLowRank:
    """Factorization of :math:`M + \\mathcal{A}^\\top\\Pi^\\top\\Pi\\mathcal{A}` for repeated solves.

    Parameters
    ----------
    operator : PatternOperator
        :math:`\\mathcal{A}` (``coef_shape = (d, B, C)``).
    R : ndarray of shape (n_samples, C, C)
        Per-sample Hessian factors (see :func:`prediction_factor`).
    Q : ndarray of shape (n_samples * C, r)
        Orthonormal intercept directions.
    M : ndarray of shape (B * C, d, d) or (d, d)
        Symmetric positive definite blocks, one per column ``k * C + c``, or a
        single block shared by all columns.
    """

    def __init__(self, operator, R, Q, M):
        self.operator = operator
        d, B, C = operator.coef_shape
        n = operator.n_samples
        self.R, self.Q = R, Q
        separable = C > 1 and np.array_equal(R, R[:, :1, :1] * np.eye(C)[None])
        rows = n * n * C if separable or C == 1 else (n * C) ** 2
        check_memory(
            8 * (2 * rows + n * d * B * C),
            what=f"A Newton system with {n * C} prediction rows",
            lower="n_arrangements or the number of samples (or use the first-order solver)",
        )
        # Operators pooling patch rows (CNN programs) predict column k with
        # their pooled features F[:, :, k] instead of D_k X.
        F = getattr(operator, "features", None)
        if F is None:
            X = np.asarray(operator.X, dtype=np.float64)
            absmasks = np.abs(np.asarray(operator.masks, dtype=np.float64))
        else:
            F = np.asarray(F, dtype=np.float64).transpose(0, 2, 1)
        self.shared = M.ndim == 2
        if self.shared:
            self.M_inv = np.linalg.inv(M)
            self.M_inv = 0.5 * (self.M_inv + self.M_inv.T)
            if F is None:
                core = (X @ self.M_inv) @ X.T
                pattern = absmasks @ absmasks.T
                blocks = [core * pattern] * C
            else:
                blocks = [(F @ self.M_inv).reshape(n, B * d) @ F.reshape(n, B * d).T] * C
        elif F is None:
            self.M_inv = _spd_inverses(M)
            # Columns sharing a 0/1 mask (the +/- neuron blocks of the ReLU
            # program) share D_k: sum_k D_k X M_k^{-1} X^T D_k
            # = sum_g D_g X S_g X^T D_g with S_g the sum of the group's
            # M_k^{-1}, so one n x (G d) factor per output instead of
            # n x (B d).
            groups, first, label = {}, [], np.empty(B, dtype=np.intp)
            for k in range(B):
                label[k] = groups.setdefault(absmasks[:, k].tobytes(), len(first))
                if label[k] == len(first):
                    first.append(k)
            G = len(first)
            member = np.zeros((G, B))
            member[label, np.arange(B)] = 1.0
            S = (member @ self.M_inv.reshape(B, C * d * d)).reshape(G * C, d, d)
            L_S = np.linalg.cholesky(S)
            # X L_S for every (group, output) in one GEMM: (n, d) @ (d, G*C*d).
            Z = (X @ L_S.transpose(1, 0, 2).reshape(d, G * C * d)).reshape(n, G, C, d)
            Z *= absmasks[:, first, None, None]
            blocks = []
            for c in range(C):
                Yc = Z[:, :, c, :].reshape(n, G * d)
                blocks.append(Yc @ Yc.T)
        elif M.shape[1] >= _LOOP_BLOCK_SIZE:
            # Large blocks: their Cholesky inverses (see _spd_inverses), then
            # F_k M_k^{-1} for every column in one batched GEMM and the sum
            # over the columns in one GEMM (symmetrized: its two triangles
            # round differently).
            self.M_inv = _spd_inverses(M)
            T = np.matmul(F.transpose(1, 0, 2)[:, None], self.M_inv.reshape(B, C, d, d))
            F_flat = F.reshape(n, B * d)
            blocks = []
            for c in range(C):
                K = T[:, c].transpose(1, 0, 2).reshape(n, B * d) @ F_flat.T
                blocks.append(0.5 * (K + K.T))
        else:
            # Small blocks: batched Cholesky factors, Y = F L^{-T} by one
            # batched GEMM, and Y Y^T (a symmetric product, half the flops).
            L_inv = np.linalg.inv(np.linalg.cholesky(M))
            # M^{-1} = L^{-T} L^{-1}
            self.M_inv = np.matmul(L_inv.transpose(0, 2, 1), L_inv)
            Z = np.matmul(F.transpose(1, 0, 2)[:, None], L_inv.reshape(B, C, d, d).transpose(0, 1, 3, 2))
            blocks = []
            for c in range(C):
                Yc = Z[:, c].transpose(1, 0, 2).reshape(n, B * d)
                blocks.append(Yc @ Yc.T)
        # Squared-error-like factors (R_j = r_j I) decouple the outputs: one
        # n x n system per output instead of one (n C) x (n C) system.
        self.root = None
        if separable:
            self.root = R[:, 0, 0]
            self.factor = [self._separable(block) for block in blocks]
        else:
            self.factor = _cho_factor_capacitance(self._capacitance(blocks))

    def _separable(self, block):
        r = self.root
        K = r[:, None] * block * r[None, :]
        if self.Q.shape[1]:
            q = r / max(float(np.linalg.norm(r)), np.finfo(float).tiny)
            Kq = K @ q
            K = K - np.outer(Kq, q) - np.outer(q, Kq) + float(q @ Kq) * np.outer(q, q)
        K[np.diag_indices_from(K)] += 1.0
        return _cho_factor_capacitance(K)

    def _capacitance(self, blocks):
        R, Q = self.R, self.Q
        n, C, _ = R.shape
        if C == 1:
            r = R[:, 0, 0]
            K = blocks[0] * r[:, None]
            K *= r[None, :]
        else:
            # K[(j,a),(k,e)] = sum_b R[j,a,b] block_b[j,k] R[k,e,b]: one
            # broadcast product per output b (einsum's generic four-index
            # loop was 20x slower than these C vectorized passes).
            K = np.zeros((n, C, n, C))
            for b, block in enumerate(blocks):
                Rb = R[:, :, b]
                K += (Rb[:, :, None] * block[:, None, :])[:, :, :, None] * Rb[None, None, :, :]
            K = K.reshape(n * C, n * C)
        if Q.shape[1]:
            # (I - QQ^T) K (I - QQ^T) = K - U Q^T - Q U^T, U = KQ - Q (Q^T K Q) / 2.
            KQ = K @ Q
            U = KQ - 0.5 * (Q @ (Q.T @ KQ))
            K -= U @ Q.T
            K -= Q @ U.T
        K[np.diag_indices_from(K)] += 1.0
        return K

    def apply_block_inverse(self, g):
        """:math:`M^{-1}g` for ``g`` of shape ``coef_shape``."""
        d, B, C = self.operator.coef_shape
        if self.shared:
            return np.tensordot(self.M_inv, g, axes=(1, 0))
        cols = g.transpose(1, 2, 0).reshape(B * C, d, 1)
        out = np.matmul(self.M_inv, cols).reshape(B, C, d)
        return np.ascontiguousarray(out.transpose(2, 0, 1))

    def _pi(self, p):
        n, C = p.shape
        h = np.einsum("jab,jb->ja", self.R, p).reshape(n * C)
        if self.Q.shape[1]:
            h = h - self.Q @ (self.Q.T @ h)
        return h

    def _pi_t(self, z):
        n, C, _ = self.R.shape
        if self.Q.shape[1]:
            z = z - self.Q @ (self.Q.T @ z)
        return np.einsum("jab,ja->jb", self.R, z.reshape(n, C))

    @staticmethod
    def _cho_solve(factor, rhs):
        # LAPACK directly: cho_solve's checks cost more than the solve here.
        x, info = dpotrs(factor[0], rhs, lower=int(factor[1]))
        if info != 0:
            return cho_solve(factor, rhs, check_finite=False)
        return x

    def solve(self, g):
        """Solve :math:`(M + \\mathcal{A}^\\top\\Pi^\\top\\Pi\\mathcal{A})x = g`.

        Parameters
        ----------
        g : ndarray of shape coef_shape
            Right-hand side.

        Returns
        -------
        x : ndarray of shape coef_shape
            The solution (float64).
        """
        op = self.operator
        t = self.apply_block_inverse(np.asarray(g, dtype=np.float64))
        p = np.asarray(op.forward(t), dtype=np.float64)
        if self.root is None:
            w = self._pi_t(self._cho_solve(self.factor, self._pi(p)))
        else:
            r = self.root
            q = r / max(float(np.linalg.norm(r)), np.finfo(float).tiny)
            h = r[:, None] * p
            if self.Q.shape[1]:
                h -= np.outer(q, q @ h)
            z = np.column_stack(
                [self._cho_solve(f, h[:, c]) for c, f in enumerate(self.factor)]
            )
            if self.Q.shape[1]:
                z -= np.outer(q, q @ z)
            w = r[:, None] * z
        return t - self.apply_block_inverse(np.asarray(op.adjoint(w), dtype=np.float64))
