"""The datafit's curvature at a point, intercept minimized out: the Hessian of Newton's end-games.

Shared by Newton's method on the support of Euclidean blocks
(:mod:`skconvex.solvers.support_newton`) and on the factors of nuclear-norm
blocks (:mod:`skconvex.solvers.factored_newton`).
"""

import numpy as np

__all__ = ["DataCurvature"]


class DataCurvature:
    """The datafit's Hessian at the predictions, intercept minimized out.

    One output keeps the per-sample scalar curvature; several outputs use the
    per-sample C x C Hessians :math:`H_j = R_j^\\top R_j` from the datafit's
    ``hessian_factor``. With an intercept, the Hessian in the coefficients is
    the Schur complement :math:`H - H\\mathbf{1}(\\sum_j H_j)^+\\mathbf{1}^\\top H`
    (the intercept's optimum moves with the step); the pseudo-inverse covers
    the multinomial's shift invariance, along which every :math:`H_j` vanishes.
    """

    def __init__(self, datafit, pred, y, sample_weight, fit_intercept, dtype):
        R = datafit.hessian_factor(pred, y, sample_weight)
        self.C = R.shape[1]
        if self.C == 1:
            h = R[:, 0, 0] ** 2
            self.H = None
            self.diag = h[:, None].astype(dtype)
            h_sum = float(h.sum())
            self.schur = fit_intercept and h_sum > 0
            self.h, self.h_sum = h.astype(dtype), h_sum
        else:
            H = np.einsum("nkc,nke->nce", R, R)
            self.diag = np.einsum("ncc->nc", H).astype(dtype)
            self.schur = bool(fit_intercept)
            if self.schur:
                self.H_bb_pinv = np.linalg.pinv(H.sum(axis=0), hermitian=True)
            self.H = H.astype(dtype)

    def apply(self, Z):
        """Per-sample Hessian times ``Z`` (n, C), intercept minimized out."""
        if self.H is None:
            out = Z * self.h[:, None]
            if self.schur:
                out -= self.h[:, None] * (out.sum() / self.h_sum)
            return out
        out = np.einsum("nce,ne->nc", self.H, Z)
        if self.schur:
            shift = (self.H_bb_pinv @ out.sum(axis=0)).astype(out.dtype)
            out -= np.einsum("nce,e->nc", self.H, shift)
        return out

    def block_products(self, A, U):
        """Each block's own curvature applied to it, :math:`A_p^\\top H A_p U_p`."""
        if self.H is None:
            return A.block_gram_products(U, self.h)
        d, P, C = U.shape
        Z = A.product(U) * A.masks[:, :, None]
        HZ = np.einsum("nce,npe->npc", self.H, Z) * A.masks[:, :, None]
        return np.ascontiguousarray((A.X.T @ HZ.reshape(-1, P * C)).reshape(d, P, C))

    def block_diagonals(self, A):
        """Diagonals of the blocks of :math:`A^\\top H A`, shape (d, P, C)."""
        if self.H is None or A.sparse:
            return np.stack([A.block_gram_diagonals(self.diag[:, c]).T for c in range(self.C)], axis=2)
        # One GEMM for all outputs: masks scaled by each output's curvature.
        n, P = A.masks.shape
        scaled = (A.masks * A.masks)[:, :, None] * self.diag[:, None, :]
        D = scaled.reshape(n, P * self.C).T @ (A.X * A.X)
        return np.ascontiguousarray(D.reshape(P, self.C, -1).transpose(2, 0, 1)).astype(A.dtype, copy=False)
