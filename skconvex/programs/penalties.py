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

Arrays of another array-API namespace (torch, CuPy, array-api-strict; see the
user guide's array-API section) are computed on in their namespace and device
by :class:`GroupL2` and :class:`GroupNuclear`: values and dual norms come back
as Python floats, block norms, proxes and dual block norms as arrays there.
"""

import numpy as np

from ._namespace import namespace_of as _xp

__all__ = ["BlockPenalty", "GroupL2", "GroupNuclear", "ColumnGroupL2", "ColumnBlockL2"]


class BlockPenalty:
    """Base class of the penalties that sum a norm over pattern blocks.

    Public methods are documented here once; each penalty implements
    ``_group_norms``, ``_prox`` (returning the result and its penalty value),
    ``_dual_group_norms`` and ``_cvxpy`` and states its formulas in its class
    docstring.
    """

    def group_norms(self, W):
        """Compute the norm of every block.

        Parameters
        ----------
        W : ndarray of shape (n_features, n_patterns, n_outputs)
            Blocks.

        Returns
        -------
        norms : ndarray of shape (n_patterns,)
            Block norms, in the dtype of ``W``.
        """
        if not isinstance(W, np.ndarray):
            return self._xp_group_norms(_xp(W), W)
        return self._group_norms(W)

    def value(self, W):
        """Compute the penalty, the sum of the block norms.

        Parameters
        ----------
        W : ndarray of shape (n_features, n_patterns, n_outputs)
            Blocks.

        Returns
        -------
        value : float
            The penalty, summed in float64.
        """
        if not isinstance(W, np.ndarray):
            xp = _xp(W)
            return float(xp.sum(xp.astype(self._xp_group_norms(xp, W), xp.float64)))
        return float(np.asarray(self._group_norms(W), dtype=np.float64).sum())

    def prox(self, W, threshold, return_value=False):
        """Apply the proximal operator of ``threshold`` times the penalty.

        Parameters
        ----------
        W : ndarray of shape (n_features, n_patterns, n_outputs)
            Point.
        threshold : float
            Step size times penalty strength.
        return_value : bool, default=False
            Also return the penalty of the result, which the prox knows
            without recomputation (every norm it keeps shrinks by
            ``threshold``).

        Returns
        -------
        prox : ndarray of shape (n_features, n_patterns, n_outputs)
            The proximal point.
        value : float
            Penalty of ``prox``; only with ``return_value``.
        """
        if not isinstance(W, np.ndarray):
            out, value = self._xp_prox(_xp(W), W, threshold)
        else:
            out, value = self._prox(W, threshold)
        return (out, value) if return_value else out

    def dual_group_norms(self, G):
        """Compute the dual norm of every block.

        Parameters
        ----------
        G : ndarray of shape (n_features, n_patterns, n_outputs)
            Dual blocks (e.g. a gradient).

        Returns
        -------
        norms : ndarray of shape (n_patterns,)
            Dual block norms.
        """
        if not isinstance(G, np.ndarray):
            return self._xp_dual_group_norms(_xp(G), G)
        return self._dual_group_norms(G)

    def dual_norm(self, G):
        """Compute the dual norm of the penalty, the largest dual block norm.

        Parameters
        ----------
        G : ndarray of shape (n_features, n_patterns, n_outputs)
            Dual blocks (e.g. a gradient).

        Returns
        -------
        dual_norm : float
            Largest dual block norm (0 for no blocks).
        """
        if not isinstance(G, np.ndarray):
            xp = _xp(G)
            norms = self._xp_dual_group_norms(xp, G)
            return float(xp.max(norms)) if norms.shape[0] else 0.0
        norms = self._dual_group_norms(G)
        return float(norms.max()) if norms.size else 0.0

    def _xp_group_norms(self, xp, W):
        raise TypeError(f"{type(self).__name__} computes on numpy arrays only (got {type(W).__name__}).")

    _xp_dual_group_norms = _xp_group_norms

    def _xp_prox(self, xp, W, threshold):
        return self._xp_group_norms(xp, W), 0.0

    def cvxpy(self, W):
        """Build the CVXPY expression of the penalty.

        Parameters
        ----------
        W : list of cvxpy expressions of shape (n_patterns, n_features)
            One per output; row ``p`` of each holds the column of block ``p``.

        Returns
        -------
        expression : cvxpy.Expression
            Convex scalar expression equal to :meth:`value`.
        """
        return self._cvxpy(W)

    def __repr__(self):
        return f"{type(self).__name__}()"


class GroupL2(BlockPenalty):
    """Sum of Frobenius norms of the pattern blocks, :math:`\\sum_p \\|W_p\\|_F`.

    Prox: block soft-thresholding :math:`W_p \\mapsto (1 - \\tau/\\|W_p\\|_F)_+ W_p`.
    Dual norm: :math:`\\max_p \\|G_p\\|_F`.
    """

    def _group_norms(self, W):
        return np.sqrt(np.einsum("dpc,dpc->p", W, W))

    def _prox(self, W, threshold):
        norms = GroupL2._group_norms(self, W)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(norms > threshold, 1.0 - threshold / norms, 0.0)
        out = W * scale.astype(W.dtype, copy=False)[None, :, None]
        return out, float(np.maximum(norms.astype(np.float64) - threshold, 0.0).sum())

    def _dual_group_norms(self, G):
        return GroupL2._group_norms(self, G)

    def _xp_group_norms(self, xp, W):
        return xp.sqrt(xp.sum(W * W, axis=(0, 2)))

    def _xp_prox(self, xp, W, threshold):
        norms = GroupL2._xp_group_norms(self, xp, W)
        keep = norms > threshold
        # Safe denominator: the division is discarded where the block is zeroed.
        scale = xp.where(keep, 1.0 - threshold / xp.where(keep, norms, xp.ones_like(norms)), xp.zeros_like(norms))
        out = W * xp.reshape(xp.astype(scale, W.dtype, copy=False), (1, -1, 1))
        value = float(xp.sum(xp.clip(xp.astype(norms, xp.float64) - threshold, min=0.0)))
        return out, value

    def _xp_dual_group_norms(self, xp, G):
        return GroupL2._xp_group_norms(self, xp, G)

    def _cvxpy(self, W):
        import cvxpy as cp

        return cp.sum(cp.norm(cp.hstack(W), 2, axis=1))


class GroupNuclear(GroupL2):
    """Sum of nuclear norms of the pattern blocks, :math:`\\sum_p \\|W_p\\|_*`.

    Prox: singular-value soft-thresholding of each block.
    Dual norm: :math:`\\max_p \\|G_p\\|_2` (largest singular value).

    Blocks are tall (``d x C`` with few outputs ``C``): the value's singular
    values come from a batched QR of the blocks followed by SVDs of the small
    triangular factors (accurate even for tiny singular values, which the
    certificate needs); the prox and the spectral norms take them from the
    eigenvalues of the ``C x C`` Gram matrices (accurate for the values above
    the threshold and for the largest one). With one output it equals
    :class:`GroupL2`.
    """

    @staticmethod
    def _blocks(W):
        return W.transpose(1, 0, 2)

    def _group_norms(self, W):
        if W.shape[2] == 1:
            return super()._group_norms(W)
        R = np.linalg.qr(self._blocks(W).astype(np.float64), mode="r")
        return np.linalg.svd(R, compute_uv=False).sum(axis=1).astype(W.dtype)

    def _prox(self, W, threshold):
        if W.shape[2] == 1:
            return super()._prox(W, threshold)
        out = np.zeros_like(W)
        value = 0.0
        # A block whose Frobenius norm is <= threshold has every singular
        # value <= threshold and is zeroed without a decomposition.
        live = np.flatnonzero(super()._group_norms(W) > threshold)
        if live.size:
            B = self._blocks(W[:, live, :]).astype(np.float64)
            # Singular values and right vectors from the C x C Gram matrices:
            # half the cost of a QR followed by an SVD. A singular value s
            # comes out with absolute error about eps * s_max^2 / s, so only
            # values far below the threshold (which are zeroed anyway) lose
            # digits; the kept ones and the prox's value are accurate.
            lam, V = np.linalg.eigh(np.matmul(B.transpose(0, 2, 1), B))
            s = np.sqrt(np.clip(lam, 0.0, None))
            with np.errstate(divide="ignore", invalid="ignore"):
                shrink = np.where(s > threshold, 1.0 - threshold / s, 0.0)
            # W_p V diag(shrink) V^T shrinks each singular value s to s - threshold.
            M = np.matmul(V * shrink[:, None, :], V.transpose(0, 2, 1))
            out[:, live, :] = np.matmul(B, M).astype(W.dtype).transpose(1, 0, 2)
            value = float(np.maximum(s - threshold, 0.0).sum())
        return out, value

    def _dual_group_norms(self, G):
        if G.shape[2] == 1:
            return super()._dual_group_norms(G)
        B = self._blocks(G).astype(np.float64)
        eig = np.linalg.eigvalsh(np.matmul(B.transpose(0, 2, 1), B))[:, -1]
        return np.sqrt(np.clip(eig, 0.0, None)).astype(G.dtype)

    # Array-API versions: batched SVDs and eigenvalues of all blocks in float64
    # (the namespace has no QR without Q); zero blocks come out zero, so the
    # prox needs no selection of live blocks (which would synchronize).
    def _xp_group_norms(self, xp, W):
        if W.shape[2] == 1:
            return super()._xp_group_norms(xp, W)
        B = xp.astype(xp.permute_dims(W, (1, 0, 2)), xp.float64)
        return xp.astype(xp.sum(xp.linalg.svdvals(B), axis=1), W.dtype)

    def _xp_prox(self, xp, W, threshold):
        if W.shape[2] == 1:
            return super()._xp_prox(xp, W, threshold)
        B = xp.astype(xp.permute_dims(W, (1, 0, 2)), xp.float64)
        _, s, Vt = xp.linalg.svd(B, full_matrices=False)
        keep = s > threshold
        shrink = xp.where(keep, 1.0 - threshold / xp.where(keep, s, xp.ones_like(s)), xp.zeros_like(s))
        V = xp.permute_dims(Vt, (0, 2, 1))
        M = xp.astype(xp.matmul(V * xp.expand_dims(shrink, axis=1), Vt), W.dtype)
        out = xp.permute_dims(xp.matmul(xp.permute_dims(W, (1, 0, 2)), M), (1, 0, 2))
        return out, float(xp.sum(xp.clip(s - threshold, min=0.0)))

    def _xp_dual_group_norms(self, xp, G):
        if G.shape[2] == 1:
            return super()._xp_dual_group_norms(xp, G)
        B = xp.astype(xp.permute_dims(G, (1, 0, 2)), xp.float64)
        eig = xp.linalg.eigvalsh(xp.matmul(xp.permute_dims(B, (0, 2, 1)), B))[:, -1]
        return xp.astype(xp.sqrt(xp.clip(eig, min=0.0)), G.dtype)

    def _cvxpy(self, W):
        import cvxpy as cp

        if len(W) == 1:
            return super()._cvxpy(W)
        n_patterns = W[0].shape[0]
        return cp.sum(
            cp.hstack(
                [cp.normNuc(cp.vstack([Wc[p] for Wc in W])) for p in range(n_patterns)]
            )
        )


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

    Examples
    --------
    >>> import numpy as np
    >>> from skconvex.programs.penalties import ColumnGroupL2
    >>> W = np.zeros((2, 1, 2)); W[:, 0, 0] = [3, 4]; W[:, 0, 1] = [0, 1]
    >>> ColumnGroupL2().value(W)
    6.0
    """

    @staticmethod
    def column_norms(W):
        """Compute the Euclidean norm of every column ``W[:, p, c]``.

        Parameters
        ----------
        W : ndarray of shape (n_features, n_patterns, n_outputs)
            Blocks.

        Returns
        -------
        norms : ndarray of shape (n_patterns, n_outputs)
            Column norms.
        """
        return np.sqrt(np.einsum("dpc,dpc->pc", W, W))

    def _group_norms(self, W):
        return self.column_norms(W).sum(axis=1)

    def _prox(self, W, threshold):
        norms = self.column_norms(W)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(norms > threshold, 1.0 - threshold / norms, 0.0)
        out = W * scale.astype(W.dtype, copy=False)[None, :, :]
        return out, float(np.maximum(norms.astype(np.float64) - threshold, 0.0).sum())

    def _dual_group_norms(self, G):
        norms = self.column_norms(G)
        return norms.max(axis=1) if norms.shape[1] else norms.sum(axis=1)

    def _cvxpy(self, W):
        import cvxpy as cp

        return cp.sum(cp.hstack([cp.sum(cp.norm(Wc, 2, axis=1)) for Wc in W]))


class ColumnBlockL2(GroupL2):
    """Frobenius norm of every run of ``group_size`` consecutive columns, per output.

    With ``W`` of shape ``(d, G * m, C)`` (``m = group_size``) the penalty is
    :math:`\\sum_{g, c} \\|W_{:, gm:(g+1)m, c}\\|_F`: one group per sub-network
    (its ``m`` leaves) and output. This is the path-regularization penalty
    of Ergen & Pilanci (2023): the :math:`\\ell_2` path norm of a sub-network
    equals the Frobenius norm of its leaf variables. The prox shrinks each
    group, the dual norm is the largest group Frobenius norm. With
    ``group_size=1`` it equals :class:`ColumnGroupL2`.

    Parameters
    ----------
    group_size : int
        Consecutive columns per group.

    Examples
    --------
    >>> import numpy as np
    >>> from skconvex.programs.penalties import ColumnBlockL2
    >>> W = np.zeros((1, 4, 1)); W[0, :, 0] = [3, 4, 0, 1]
    >>> ColumnBlockL2(2).value(W)
    6.0
    """

    def __init__(self, group_size):
        self.group_size = int(group_size)

    def _split(self, W):
        d, B, C = W.shape
        if B % self.group_size:
            raise ValueError(f"{B} columns do not split into groups of {self.group_size}.")
        return W.reshape(d, B // self.group_size, self.group_size, C)

    def block_norms(self, W):
        """Compute the Frobenius norm of every (group, output).

        Parameters
        ----------
        W : ndarray of shape (n_features, n_groups * group_size, n_outputs)
            Columns.

        Returns
        -------
        norms : ndarray of shape (n_groups, n_outputs)
            Group norms.
        """
        Wg = self._split(W)
        return np.sqrt(np.einsum("dgmc,dgmc->gc", Wg, Wg))

    def group_norms(self, W):
        """Compute the norm of every group, summed over outputs.

        Parameters
        ----------
        W : ndarray of shape (n_features, n_groups * group_size, n_outputs)
            Columns.

        Returns
        -------
        norms : ndarray of shape (n_groups,)
            Group norms.
        """
        return self.block_norms(W).sum(axis=1)

    def value(self, W):
        """Compute the penalty.

        Parameters
        ----------
        W : ndarray of shape (n_features, n_groups * group_size, n_outputs)
            Columns.

        Returns
        -------
        value : float
            Sum of the group norms, in float64.
        """
        return float(self.block_norms(W).astype(np.float64).sum())

    def prox(self, W, threshold, return_value=False):
        """Shrink every (group, output) by ``threshold`` (the proximal operator).

        Parameters
        ----------
        W : ndarray of shape (n_features, n_groups * group_size, n_outputs)
            Point.
        threshold : float
            Step times penalty strength.
        return_value : bool, default=False
            Also return the penalty of the result.

        Returns
        -------
        prox : ndarray of shape (n_features, n_groups * group_size, n_outputs)
            Groups scaled by :math:`(1 - \\tau/\\|P\\|_F)_+`.
        value : float
            Penalty of ``prox``; only with ``return_value``.
        """
        norms = self.block_norms(W)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(norms > threshold, 1.0 - threshold / norms, 0.0)
        out = (self._split(W) * scale.astype(W.dtype, copy=False)[None, :, None, :]).reshape(W.shape)
        if return_value:
            return out, float(np.maximum(norms.astype(np.float64) - threshold, 0.0).sum())
        return out

    def dual_group_norms(self, G):
        """Compute the dual norm of every group (largest over outputs).

        Parameters
        ----------
        G : ndarray of shape (n_features, n_groups * group_size, n_outputs)
            Dual point (e.g. a gradient).

        Returns
        -------
        norms : ndarray of shape (n_groups,)
            Largest group Frobenius norm over the outputs.
        """
        norms = self.block_norms(G)
        return norms.max(axis=1) if norms.shape[1] else norms.sum(axis=1)

    def dual_norm(self, G):
        """Compute the dual norm :math:`\\max_{g,c} \\|G_{g,c}\\|_F`.

        Parameters
        ----------
        G : ndarray of shape (n_features, n_groups * group_size, n_outputs)
            Dual point.

        Returns
        -------
        dual_norm : float
            Largest group norm (0 for no groups).
        """
        norms = self.block_norms(G)
        return float(norms.max()) if norms.size else 0.0

    def cvxpy(self, W):
        """Build the CVXPY expression of the penalty.

        Parameters
        ----------
        W : list of cvxpy expressions of shape (n_groups * group_size, n_features)
            One per output.

        Returns
        -------
        expression : cvxpy.Expression
            Sum of the group Frobenius norms.
        """
        import cvxpy as cp

        terms = []
        for Wc in W:
            B, d = Wc.shape
            rows = cp.reshape(Wc, (B // self.group_size, self.group_size * d), order="C")
            terms.append(cp.sum(cp.norm(rows, 2, axis=1)))
        return cp.sum(cp.hstack(terms))

    def __repr__(self):
        return f"ColumnBlockL2(group_size={self.group_size})"

