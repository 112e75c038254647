"""Penalties over pattern blocks: value, proximal operator, dual norm.

Coefficients are stacked as ``W`` of shape ``(n_features, n_patterns,
n_outputs)``; block :math:`p` is the matrix ``W[:, p, :]`` of shape
``(d, C)``. Both penalties below are sums of block norms, so their dual norm
is the largest dual block norm and their prox acts block by block.

* :class:`GroupL2` — :math:`\\sum_p \\|W_p\\|_F` (the group lasso, the group
  :math:`\\ell_2` penalty of Pilanci & Ergen, 2020).
* :class:`GroupNuclear` — :math:`\\sum_p \\|W_p\\|_*`. For a gated network
  :math:`f(x) = \\sum_j 1[x^\\top g_j \\ge 0]\\, (x^\\top u_j) a_j^\\top` trained
  with weight decay :math:`\\tfrac12\\sum_j \\|u_j\\|^2 + \\|a_j\\|^2`, the
  neurons sharing gate :math:`p` form :math:`W_p = \\sum_j u_j a_j^\\top` and
  the least weight decay that produces a given :math:`W_p` is exactly
  :math:`\\|W_p\\|_*` (Srebro's factorization identity); so this penalty is the
  exact weight-decay equivalent for vector outputs. With one output both
  penalties coincide.
* :class:`ColumnGroupL2` — :math:`\\sum_p \\sum_c \\|W_{:,p,c}\\|_2`, one group per
  (block, output) column: the decoupled vector-output penalty of the exact
  ReLU programs, where every neuron feeds one output.
"""

import numpy as np

__all__ = ["GroupL2", "GroupNuclear", "ColumnGroupL2"]


class GroupL2:
    """Sum of Frobenius norms of the pattern blocks, :math:`\\sum_p \\|W_p\\|_F`.

    Prox: block soft-thresholding :math:`W_p \\mapsto (1 - \\tau/\\|W_p\\|_F)_+ W_p`.
    Dual norm: :math:`\\max_p \\|G_p\\|_F`.
    """

    def group_norms(self, W):
        """Frobenius norm of each block, shape (n_patterns,)."""
        return np.sqrt(np.einsum("dpc,dpc->p", W, W))

    def value(self, W):
        """Penalty value."""
        return float(self.group_norms(W).astype(np.float64).sum())

    def prox(self, W, threshold, return_value=False):
        """Block soft-thresholding at ``threshold``.

        With ``return_value`` also returns the penalty of the result, known
        without recomputation (every block norm shrinks by ``threshold``).
        """
        norms = self.group_norms(W)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(norms > threshold, 1.0 - threshold / norms, 0.0)
        out = W * scale.astype(W.dtype, copy=False)[None, :, None]
        if return_value:
            return out, float(np.maximum(norms.astype(np.float64) - threshold, 0.0).sum())
        return out

    def dual_group_norms(self, G):
        """Dual norm of each block (Frobenius), shape (n_patterns,)."""
        return self.group_norms(G)

    def dual_norm(self, G):
        """Dual norm :math:`\\max_p \\|G_p\\|_F` (0 for no blocks)."""
        norms = self.dual_group_norms(G)
        return float(norms.max()) if norms.size else 0.0

    def cvxpy(self, W):
        """CVXPY expression of the penalty.

        Parameters
        ----------
        W : list of cvxpy expressions of shape (n_patterns, n_features)
            One per output; row ``p`` of each holds block ``p``.
        """
        import cvxpy as cp

        return cp.sum(cp.norm(cp.hstack(W), 2, axis=1))

    def __repr__(self):
        return "GroupL2()"


class GroupNuclear(GroupL2):
    """Sum of nuclear norms of the pattern blocks, :math:`\\sum_p \\|W_p\\|_*`.

    Prox: singular-value soft-thresholding of each block.
    Dual norm: :math:`\\max_p \\|G_p\\|_2` (largest singular value).

    Blocks are tall (``d x C`` with few outputs ``C``): singular values come
    from a batched QR of the blocks followed by SVDs of the small triangular
    factors (accurate even for tiny singular values, which the certificate
    needs), and spectral norms from the eigenvalues of the ``C x C`` Gram
    matrices (accurate for the largest one).
    """

    @staticmethod
    def _blocks(W):
        return W.transpose(1, 0, 2)

    def _svd(self, W):
        R = np.linalg.qr(self._blocks(W).astype(np.float64), mode="r")
        _, s, Vt = np.linalg.svd(R, full_matrices=False)
        return s, Vt

    def group_norms(self, W):
        """Nuclear norm of each block, shape (n_patterns,)."""
        if W.shape[2] == 1:
            return super().group_norms(W)
        R = np.linalg.qr(self._blocks(W).astype(np.float64), mode="r")
        return np.linalg.svd(R, compute_uv=False).sum(axis=1).astype(W.dtype)

    def prox(self, W, threshold, return_value=False):
        """Singular-value soft-thresholding of every block at ``threshold``.

        With ``return_value`` also returns the penalty of the result (the sum
        of the shrunk singular values).
        """
        if W.shape[2] == 1:
            return super().prox(W, threshold, return_value)
        out = np.zeros_like(W)
        value = 0.0
        # A block whose Frobenius norm is <= threshold has every singular
        # value <= threshold and is zeroed without a decomposition.
        live = np.flatnonzero(super().group_norms(W) > threshold)
        if live.size:
            Wl = W[:, live, :]
            s, Vt = self._svd(Wl)
            with np.errstate(divide="ignore", invalid="ignore"):
                shrink = np.where(s > threshold, 1.0 - threshold / s, 0.0)
            # W_p V diag(shrink) V^T shrinks each singular value s to s - threshold
            # (directions outside the row space of V are already zero).
            M = np.matmul(Vt.transpose(0, 2, 1) * shrink[:, None, :], Vt).astype(W.dtype)
            out[:, live, :] = np.matmul(self._blocks(Wl), M).transpose(1, 0, 2)
            value = float(np.maximum(s - threshold, 0.0).sum())
        if return_value:
            return out, value
        return out

    def dual_group_norms(self, G):
        """Spectral norm of each block, shape (n_patterns,)."""
        if G.shape[2] == 1:
            return super().group_norms(G)
        B = self._blocks(G).astype(np.float64)
        eig = np.linalg.eigvalsh(np.matmul(B.transpose(0, 2, 1), B))[:, -1]
        return np.sqrt(np.clip(eig, 0.0, None)).astype(G.dtype)

    def cvxpy(self, W):
        """CVXPY expression of the penalty (see :meth:`GroupL2.cvxpy`)."""
        import cvxpy as cp

        if len(W) == 1:
            return super().cvxpy(W)
        n_patterns = W[0].shape[0]
        return cp.sum(
            cp.hstack(
                [cp.normNuc(cp.vstack([Wc[p] for Wc in W])) for p in range(n_patterns)]
            )
        )

    def __repr__(self):
        return "GroupNuclear()"


class ColumnGroupL2(GroupL2):
    """One :math:`\\ell_2` group per (block, output) column, :math:`\\sum_p\\sum_c \\|W_{:,p,c}\\|_2`.

    The norm of block :math:`p` is :math:`\\|W_p\\|_{2,1}` (the sum of its
    column norms), whose dual is the largest column norm
    :math:`\\|G_p\\|_{2,\\infty}`; the prox soft-thresholds every column.
    With one output it equals :class:`GroupL2`.

    This is the penalty of the exact vector-output ReLU program in which a
    neuron feeds a single output: the weight decay
    :math:`\\tfrac12(\\|u\\|_2^2 + \\|a\\|_1^2)` of a neuron with input weights
    :math:`u` and output weights :math:`a` is minimized over rescalings by
    :math:`\\|u\\|_2\\|a\\|_1 = \\sum_c \\|u |a_c|\\|_2`, one column per output
    (Pilanci & Ergen, 2020, vector-output extension).
    """

    @staticmethod
    def column_norms(W):
        """Euclidean norm of every column ``W[:, p, c]``, shape (n_patterns, n_outputs)."""
        return np.sqrt(np.einsum("dpc,dpc->pc", W, W))

    def group_norms(self, W):
        """Block norms :math:`\\|W_p\\|_{2,1}`, shape (n_patterns,)."""
        return self.column_norms(W).sum(axis=1)

    def prox(self, W, threshold, return_value=False):
        """Column-wise soft-thresholding at ``threshold``.

        With ``return_value`` also returns the penalty of the result.
        """
        norms = self.column_norms(W)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(norms > threshold, 1.0 - threshold / norms, 0.0)
        out = W * scale.astype(W.dtype, copy=False)[None, :, :]
        if return_value:
            return out, float(np.maximum(norms.astype(np.float64) - threshold, 0.0).sum())
        return out

    def dual_group_norms(self, G):
        """Dual block norms :math:`\\max_c \\|G_{:,p,c}\\|_2`, shape (n_patterns,)."""
        norms = self.column_norms(G)
        return norms.max(axis=1) if norms.shape[1] else norms.sum(axis=1)

    def cvxpy(self, W):
        """CVXPY expression of the penalty (see :meth:`GroupL2.cvxpy`)."""
        import cvxpy as cp

        return cp.sum(cp.hstack([cp.sum(cp.norm(Wc, 2, axis=1)) for Wc in W]))

    def __repr__(self):
        return "ColumnGroupL2()"
