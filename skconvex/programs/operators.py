"""Matrix-free linear operators of the convex network programs.

The two-layer program of Pilanci & Ergen (2020) predicts with

.. math:: \\mathcal{A}(W) = \\sum_{p=1}^P D_p X W_p,

one block :math:`W_p \\in \\mathbb{R}^{d \\times C}` per activation pattern
:math:`D_p = \\operatorname{diag}(m_p)`. Stacking the blocks as
:math:`W \\in \\mathbb{R}^{d \\times P \\times C}`, the forward map is one GEMM
:math:`Z = X W` followed by a masked reduction over patterns, and the adjoint
:math:`\\mathcal{A}^\\top(R)_p = X^\\top \\operatorname{diag}(m_p) R` is one GEMM
:math:`(R \\odot X)^\\top M` with the float mask :math:`M`. The
:math:`n \\times dP` design is never built.
"""

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator

from .._config import check_memory

__all__ = ["NamespacePatternOperator", "PatternOperator"]


def power_lipschitz(operator, sample_weight=None, *, n_iter=20, random_state=0):
    """Estimate :math:`\\|S^{1/2}\\mathcal{A}\\|_2^2` of an operator by power iteration.

    Shared by the operators whose ``lipschitz`` is the largest eigenvalue of
    :math:`\\mathcal{A}^\\top S \\mathcal{A}` with nothing cheaper known.

    Parameters
    ----------
    operator : Operator
        Has ``coef_shape``, ``dtype``, ``forward`` and ``adjoint``.
    sample_weight : ndarray of shape (n_samples,), default=None
        Row weights :math:`S`; ones when None.
    n_iter : int, default=20
        Power iterations (each costs one forward and one adjoint).
    random_state : int, default=0
        Seed of the start vector.

    Returns
    -------
    lipschitz : float
        The estimate.
    """
    rng = np.random.default_rng(random_state)
    W = rng.standard_normal(operator.coef_shape).astype(operator.dtype)
    W /= np.linalg.norm(W)
    s = None if sample_weight is None else np.asarray(sample_weight, operator.dtype)
    value = 0.0
    for _ in range(n_iter):
        R = operator.forward(W)
        if s is not None:
            R *= s[:, None]
        V = operator.adjoint(R)
        value = float(np.linalg.norm(V))
        if value == 0.0:
            return 0.0
        W = V / value
    return value


def _as_operand(X, dtype):
    """``X`` as the operator keeps it: C-contiguous, or CSR when sparse.

    Sparse input stays sparse (a densified ``X`` can be orders of magnitude
    larger than the masks), as a ``csr_array`` so that products give plain
    ndarrays whether the caller passed a sparse matrix or a sparse array.
    """
    if sp.issparse(X):
        return sp.csr_array(X, dtype=dtype)
    return np.ascontiguousarray(X, dtype=dtype)


class PatternOperator:
    """The map :math:`W \\mapsto \\sum_p D_p X W_p` and its adjoint.

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
        Data the neurons act on (with a ones column for hidden biases).
        Sparse matrices and arrays are kept sparse (as CSR): every product
        is a sparse-times-dense product.
    patterns : ndarray of shape (n_samples, n_patterns)
        Boolean activation patterns (columns :math:`m_p` of the masks).
    signs : ndarray of shape (n_patterns,), default=None
        Optional +1/-1 multiplier per pattern block; the exact ReLU program
        uses blocks ``[M, M]`` with signs ``[+1, -1]`` for the positive and
        negative neurons.
    n_outputs : int, default=1
        Number of output columns :math:`C`.
    dtype : {np.float64, np.float32}, default=None
        Compute dtype. Defaults to the dtype of ``X`` when floating.

    Attributes
    ----------
    X : ndarray or scipy.sparse.csr_array of shape (n_samples, n_features)
        Data, C-contiguous (or CSR), in the compute dtype.
    masks : ndarray of shape (n_samples, n_patterns)
        Patterns as 0/1 (times ``signs``) floats in the compute dtype.
    coef_shape : tuple of int
        ``(n_features, n_patterns, n_outputs)``, the shape of ``W``.

    References
    ----------
    M. Pilanci and T. Ergen. Neural networks are convex regularizers. ICML 2020,
    arXiv:2002.10553.
    """

    #: Whether :meth:`restrict` selects a subset of blocks (see :mod:`skconvex.programs`).
    supports_restrict = True

    def __init__(self, X, patterns, *, signs=None, n_outputs=1, dtype=None):
        if dtype is None:
            dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
        self.dtype = np.dtype(dtype)
        n_samples, n_features = X.shape
        if patterns.shape[0] != n_samples:
            raise ValueError(
                f"patterns has {patterns.shape[0]} rows but X has {n_samples}."
            )
        n_patterns = patterns.shape[1]
        self.n_outputs = int(n_outputs)
        # Masks, a copy of them for working sets, the product Z (n x P x C) and
        # the row-scaled copies of X in the adjoint (n x C x d).
        # Sparse X is never copied row-scaled: the adjoint scales the n x P x C
        # side instead.
        per_row = (
            n_patterns * (2 + 2 * self.n_outputs)
            if sp.issparse(X)
            else n_patterns * (2 + self.n_outputs) + self.n_outputs * n_features
        )
        check_memory(
            self.dtype.itemsize * n_samples * per_row,
            what=(
                f"The pattern operator for {n_samples} samples and {n_patterns} "
                "patterns"
            ),
            lower="n_arrangements (or use fewer samples)",
        )
        self.X = _as_operand(X, self.dtype)
        masks = np.asarray(patterns, dtype=self.dtype)
        if signs is not None:
            signs = np.asarray(signs, dtype=self.dtype)
            masks = masks * signs
        self.masks = np.ascontiguousarray(masks)
        self.signs = signs
        self.coef_shape = (n_features, n_patterns, self.n_outputs)

    @property
    def sparse(self):
        """Whether ``X`` is a scipy sparse array (kept sparse in every product)."""
        return sp.issparse(self.X)

    @property
    def n_samples(self):
        """Number of rows of ``X``."""
        return self.X.shape[0]

    @property
    def n_patterns(self):
        """Number of pattern blocks."""
        return self.masks.shape[1]

    def product(self, W):
        """The forward GEMM :math:`Z = XW`.

        Cone constraints of the exact ReLU program are sign flips of this same
        product, so solvers that need both call it once and reuse it.

        Parameters
        ----------
        W : ndarray of shape coef_shape
            Blocks.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_patterns, n_outputs)
            ``Z[:, p, :] = X @ W[:, p, :]``.
        """
        d, P, C = self.coef_shape
        W = np.asarray(W, dtype=self.dtype).reshape(d, P * C)
        return (self.X @ W).reshape(-1, P, C)

    def reduce(self, Z, masks=None):
        """Masked sum over patterns of a product: the predictions.

        Parameters
        ----------
        Z : ndarray of shape (n_samples, n_patterns, n_outputs)
            A product from :meth:`product`.
        masks : ndarray of shape (n_samples, n_patterns), default=None
            Masks to use instead of ``self.masks`` (a column subset).

        Returns
        -------
        pred : ndarray of shape (n_samples, n_outputs)
            :math:`\\sum_p m_p \\odot Z_p`.
        """
        masks = self.masks if masks is None else masks
        if self.n_outputs == 1:
            return np.einsum("np,np->n", masks, Z[:, :, 0])[:, None]
        # A batched (1 x P) @ (P x C) product per row; faster than einsum here.
        return np.matmul(masks[:, None, :], Z)[:, 0, :]

    def forward(self, W):
        """Compute the predictions :math:`\\sum_p D_p X W_p`.

        Zero blocks contribute nothing, so when most blocks of ``W`` are zero
        (as along a group-lasso path) only the others enter the GEMM.

        Parameters
        ----------
        W : ndarray of shape coef_shape
            Blocks.

        Returns
        -------
        pred : ndarray of shape (n_samples, n_outputs)
            Predictions in the compute dtype.
        """
        W = np.asarray(W, dtype=self.dtype)
        d, P, C = self.coef_shape
        live = np.flatnonzero(W.any(axis=(0, 2)))
        if len(live) >= 0.75 * P:
            return self.reduce(self.product(W))
        if len(live) == 0:
            return np.zeros((self.n_samples, C), dtype=self.dtype)
        Z = (self.X @ W[:, live, :].reshape(d, len(live) * C)).reshape(-1, len(live), C)
        return self.reduce(Z, self.masks[:, live])

    def adjoint(self, R):
        """Adjoint :math:`R \\mapsto [X^\\top D_p R]_p`.

        Parameters
        ----------
        R : ndarray of shape (n_samples, n_outputs)
            Residual-like matrix (e.g. the gradient of the loss).

        Returns
        -------
        G : ndarray of shape coef_shape
            One GEMM ``(R * X).T @ masks`` (all outputs stacked).
        """
        R = np.asarray(R, dtype=self.dtype).reshape(self.n_samples, self.n_outputs)
        d, P, C = self.coef_shape
        if self.sparse:
            # X^T (R * M): scaling the dense n x P side keeps X untouched.
            H = (self.masks[:, :, None] * R[:, None, :]).reshape(self.n_samples, P * C)
            return np.ascontiguousarray((self.X.T @ H).reshape(d, P, C))
        if C == 1:
            G = (self.X * R).T @ self.masks
            return G[:, :, None]
        # One GEMM for all outputs: stack the C row-scaled copies of X.
        XR = (R[:, :, None] * self.X[:, None, :]).reshape(self.n_samples, C * d)
        G = XR.T @ self.masks
        return np.ascontiguousarray(G.reshape(C, d, P).transpose(1, 2, 0))

    def block_gram_diagonals(self, weights):
        """Compute the diagonals of the blocks of :math:`\\mathcal{A}^\\top H\\mathcal{A}`.

        Parameters
        ----------
        weights : ndarray of shape (n_samples,)
            Diagonal of :math:`H` (per-sample curvature of the datafit).

        Returns
        -------
        diagonals : ndarray of shape (n_patterns, n_features)
            :math:`\\mathrm{diag}(X^\\top \\mathrm{diag}(h \\odot m_p^2) X)`
            for every block (one GEMM).
        """
        scaled = self.masks * self.masks * np.asarray(weights, dtype=self.dtype)[:, None]
        if self.sparse:
            return np.ascontiguousarray((self.X.multiply(self.X).T @ scaled).T).astype(
                self.dtype, copy=False
            )
        return (scaled.T @ (self.X * self.X)).astype(self.dtype, copy=False)

    def block_gram_products(self, W, weights):
        """Apply each block's own curvature to it, :math:`(X^\\top D_p H D_p X) W_p`.

        Parameters
        ----------
        W : ndarray of shape coef_shape
            Blocks (one output).
        weights : ndarray of shape (n_samples,)
            Diagonal of :math:`H`.

        Returns
        -------
        products : ndarray of shape coef_shape
            Two GEMMs: :math:`Z = XW` and :math:`X^\\top(h \\odot m_p^2 \\odot Z_p)`.
        """
        Z = self.product(W)[:, :, 0]
        Z *= self.masks * self.masks * np.asarray(weights, dtype=self.dtype)[:, None]
        return (self.X.T @ Z)[:, :, None]

    def lipschitz(self, sample_weight=None, *, n_iter=20, random_state=0):
        """Estimate :math:`\\|S^{1/2}\\mathcal{A}\\|_2^2` by power iteration.

        Parameters
        ----------
        sample_weight : ndarray of shape (n_samples,), default=None
            Row weights :math:`S`; ones when None.
        n_iter : int, default=20
            Power iterations (each costs one forward and one adjoint).
        random_state : int, default=0
            Seed of the start vector.

        Returns
        -------
        lipschitz : float
            Estimate of the largest eigenvalue of :math:`\\mathcal{A}^\\top S\\mathcal{A}`.
        """
        return power_lipschitz(self, sample_weight, n_iter=n_iter, random_state=random_state)

    def restrict(self, blocks):
        """Operator on a subset of the pattern blocks (a working set).

        Parameters
        ----------
        blocks : ndarray of int
            Indices of the blocks to keep.

        Returns
        -------
        operator : PatternOperator
            Shares ``X``; copies the selected mask columns.
        """
        new = object.__new__(type(self))
        new.dtype = self.dtype
        new.n_outputs = self.n_outputs
        new.X = self.X
        new.masks = np.ascontiguousarray(self.masks[:, blocks])
        new.signs = None if self.signs is None else self.signs[blocks]
        new.coef_shape = (self.coef_shape[0], len(blocks), self.n_outputs)
        return new

    def astype(self, dtype):
        """The same operator in another compute dtype.

        Parameters
        ----------
        dtype : {np.float32, np.float64}
            Target dtype.

        Returns
        -------
        operator : PatternOperator
            ``self`` if the dtype already matches, else a converted copy.
        """
        if np.dtype(dtype) == self.dtype:
            return self
        new = object.__new__(type(self))
        new.dtype = np.dtype(dtype)
        new.n_outputs = self.n_outputs
        new.X = self.X.astype(dtype)
        new.masks = self.masks.astype(dtype)
        new.signs = None if self.signs is None else self.signs.astype(dtype)
        new.coef_shape = self.coef_shape
        return new

    def densified(self):
        """The same operator over a dense copy of a sparse ``X``.

        Solvers whose exact steps need dense row products of ``X`` (the
        exact Newton systems of the augmented Lagrangian) ask for this copy
        when ``X`` is sparse but small; large sparse data keeps the sparse
        operator and its matrix-free solvers.

        Returns
        -------
        operator : PatternOperator
            ``self`` when ``X`` is already dense; otherwise a copy with a
            C-contiguous dense ``X`` (same dtype) that shares the masks,
            signs and shapes, so that it computes the same products up to
            rounding.

        Raises
        ------
        MemoryBudgetError
            If the dense copy of ``X`` exceeds the memory budget
            (:func:`skconvex.set_config`).
        """
        if not self.sparse:
            return self
        n, d = self.X.shape
        check_memory(
            self.dtype.itemsize * n * d,
            what=f"A dense copy of the sparse X ({n} x {d})",
            lower="the number of samples or features (or keep X sparse)",
        )
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.X = np.ascontiguousarray(self.X.toarray(), dtype=self.dtype)
        return new

    def to_namespace(self, xp, device):
        """The same operator with its arrays in namespace ``xp`` on ``device``.

        Parameters
        ----------
        xp : namespace
            An array-API namespace (as returned by scikit-learn's
            ``get_namespace``), e.g. torch or array_api_strict.
        device : device
            Device of ``xp`` that the products run on.

        Returns
        -------
        operator : NamespacePatternOperator
            Computes every product in ``xp`` on ``device``.

        Raises
        ------
        TypeError
            If ``X`` is sparse (sparse products stay on the host).
        """
        return NamespacePatternOperator(self, xp, device)

    def aslinearoperator(self):
        """A :class:`scipy.sparse.linalg.LinearOperator` on flattened arrays.

        Returns
        -------
        operator : scipy.sparse.linalg.LinearOperator
            Maps ``W.ravel()`` (C order of shape ``coef_shape``) to
            ``forward(W).ravel()``; its adjoint is :meth:`adjoint`.
        """
        n, C = self.n_samples, self.n_outputs

        def matvec(w):
            return self.forward(np.asarray(w).reshape(self.coef_shape)).ravel()

        def rmatvec(r):
            return self.adjoint(np.asarray(r).reshape(n, C)).ravel()

        return LinearOperator(
            (n * C, int(np.prod(self.coef_shape))),
            matvec=matvec,
            rmatvec=rmatvec,
            dtype=self.dtype,
        )

    def explicit(self):
        """The explicit per-output design as a sparse matrix.

        Returns
        -------
        B : scipy.sparse.csr_array of shape (n_samples, n_patterns * n_features)
            Pattern-major columns: column ``p * n_features + k`` is
            ``masks[:, p] * X[:, k]``, so that output ``c`` equals
            ``B @ W[:, :, c].T.ravel()``. Meant for conic solvers on small
            problems.
        """
        n, (d, P, _) = self.n_samples, self.coef_shape
        check_memory(
            12 * n * d * P,
            what=f"An explicit sparse design with up to {n * d * P} entries",
            lower="n_arrangements",
        )
        if self.sparse:
            # One column-scaled copy of the sparse X per pattern: nnz(X) * P
            # entries at most, the same bound as the dense construction.
            return sp.hstack(
                [sp.csr_array(self.X.multiply(self.masks[:, [p]])) for p in range(P)],
                format="csr",
            ).astype(self.dtype)
        rows, pats = np.nonzero(self.masks)
        vals = self.masks[rows, pats][:, None] * self.X[rows]
        cols = pats[:, None] * d + np.arange(d)[None, :]
        B = sp.csr_array(
            (vals.ravel(), (np.repeat(rows, d), cols.ravel())), shape=(n, P * d)
        )
        return B


_XP_DTYPES = {np.dtype(np.float32): "float32", np.dtype(np.float64): "float64"}


class NamespacePatternOperator:
    """A :class:`~skconvex.programs.operators.PatternOperator` whose products run in an array-API namespace.

    The same map :math:`W \\mapsto \\sum_p D_p X W_p` and adjoint, with ``X``
    and the masks held in ``xp`` on ``device`` (a torch CUDA tensor computes
    on the GPU); every product is a GEMM of ``xp`` (``xp.matmul``). Built by
    :meth:`PatternOperator.to_namespace`; :meth:`to_host` gives the numpy
    operator back for the parts of a solve that stay on the host (the Newton
    end-game in a namespace without ``linalg.pinv``, the violation report).

    Parameters
    ----------
    host : PatternOperator
        The numpy operator (dense ``X``).
    xp : namespace
        Target array-API namespace.
    device : device
        Target device.

    Attributes
    ----------
    X : array of shape (n_samples, n_features)
        Data in ``xp``, in the compute dtype.
    masks : array of shape (n_samples, n_patterns)
        Masks in ``xp``, in the compute dtype.
    coef_shape : tuple of int
        ``(n_features, n_patterns, n_outputs)``.
    dtype : numpy.dtype
        Compute dtype (as a numpy dtype, as the host operator's).
    """

    #: Whether :meth:`restrict` selects a subset of blocks (see :mod:`skconvex.programs`).
    supports_restrict = True
    #: Products never see a scipy sparse matrix.
    sparse = False

    def __init__(self, host, xp, device):
        if host.sparse:
            raise TypeError("A sparse X stays on the host: it has no array-API operator.")
        self.xp, self.device = xp, device
        self.dtype = host.dtype
        self.n_outputs = host.n_outputs
        self.coef_shape = host.coef_shape
        xdtype = self._xp_dtype(self.dtype)
        self.X = xp.asarray(host.X, dtype=xdtype, device=device)
        self.masks = xp.asarray(host.masks, dtype=xdtype, device=device)
        self._host, self._blocks = host, None

    def _xp_dtype(self, dtype):
        return getattr(self.xp, _XP_DTYPES[np.dtype(dtype)])

    def _derived(self, masks, dtype, blocks):
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.masks, new.dtype, new._blocks = masks, np.dtype(dtype), blocks
        new.coef_shape = (self.coef_shape[0], masks.shape[1], self.n_outputs)
        return new

    @property
    def n_samples(self):
        """Number of rows of ``X``."""
        return self.X.shape[0]

    @property
    def n_patterns(self):
        """Number of pattern blocks."""
        return self.masks.shape[1]

    def product(self, W):
        """The forward GEMM :math:`Z = XW` (see :meth:`PatternOperator.product`).

        Parameters
        ----------
        W : array of shape coef_shape
            Blocks, in ``xp``.

        Returns
        -------
        Z : array of shape (n_samples, n_patterns, n_outputs)
            ``Z[:, p, :] = X @ W[:, p, :]``.
        """
        d, P, C = self.coef_shape
        W = self.xp.reshape(self.xp.astype(W, self.X.dtype, copy=False), (d, P * C))
        return self.xp.reshape(self.xp.matmul(self.X, W), (-1, P, C))

    def reduce(self, Z, masks=None):
        """Masked sum over patterns of a product (see :meth:`PatternOperator.reduce`).

        Parameters
        ----------
        Z : array of shape (n_samples, n_patterns, n_outputs)
            A product from :meth:`product`.
        masks : array of shape (n_samples, n_patterns), default=None
            Masks to use instead of ``self.masks``.

        Returns
        -------
        pred : array of shape (n_samples, n_outputs)
            :math:`\\sum_p m_p \\odot Z_p`.
        """
        xp = self.xp
        masks = self.masks if masks is None else masks
        if self.n_outputs == 1:
            return xp.sum(masks * Z[:, :, 0], axis=1, keepdims=True)
        # A batched (1 x P) @ (P x C) product per row.
        return xp.matmul(xp.expand_dims(masks, axis=1), Z)[:, 0, :]

    def forward(self, W):
        """Compute the predictions :math:`\\sum_p D_p X W_p`.

        Unlike the numpy operator it does not look for zero blocks (that
        would synchronize with the device); working sets restrict instead.

        Parameters
        ----------
        W : array of shape coef_shape
            Blocks, in ``xp``.

        Returns
        -------
        pred : array of shape (n_samples, n_outputs)
            Predictions in the compute dtype.
        """
        return self.reduce(self.product(W))

    def adjoint(self, R):
        """Adjoint :math:`R \\mapsto [X^\\top D_p R]_p`, one GEMM ``(R * X).T @ masks``.

        Parameters
        ----------
        R : array of shape (n_samples, n_outputs)
            Residual-like matrix, in ``xp``.

        Returns
        -------
        G : array of shape coef_shape
            The adjoint, in the compute dtype.
        """
        xp = self.xp
        d, P, C = self.coef_shape
        R = xp.reshape(xp.astype(R, self.X.dtype, copy=False), (self.n_samples, C))
        if C == 1:
            G = xp.matmul(xp.permute_dims(self.X * R, (1, 0)), self.masks)
            return xp.expand_dims(G, axis=2)
        # One GEMM for all outputs: stack the C row-scaled copies of X.
        XR = xp.reshape(xp.expand_dims(R, axis=2) * xp.expand_dims(self.X, axis=1), (self.n_samples, C * d))
        G = xp.matmul(xp.permute_dims(XR, (1, 0)), self.masks)
        return xp.permute_dims(xp.reshape(G, (C, d, P)), (1, 2, 0))

    def lipschitz(self, sample_weight=None, *, n_iter=20, random_state=0):
        """Estimate :math:`\\|S^{1/2}\\mathcal{A}\\|_2^2` by power iteration in ``xp``.

        Parameters
        ----------
        sample_weight : array of shape (n_samples,), default=None
            Row weights :math:`S` (numpy or ``xp``); ones when None.
        n_iter : int, default=20
            Power iterations (each costs one forward and one adjoint).
        random_state : int, default=0
            Seed of the start vector (the numpy operator's).

        Returns
        -------
        lipschitz : float
            The estimate.
        """
        xp = self.xp
        rng = np.random.default_rng(random_state)
        W0 = rng.standard_normal(self.coef_shape).astype(self.dtype)
        W = xp.asarray(W0 / np.linalg.norm(W0), device=self.device)
        s = None
        if sample_weight is not None:
            s = sample_weight if not isinstance(sample_weight, np.ndarray) else xp.asarray(sample_weight, device=self.device)
            s = xp.reshape(xp.astype(s, self.X.dtype), (-1, 1))
        value = 0.0
        for _ in range(n_iter):
            R = self.forward(W)
            if s is not None:
                R = R * s
            V = self.adjoint(R)
            value = float(xp.linalg.vector_norm(V))
            if value == 0.0:
                return 0.0
            W = V / value
        return value

    def restrict(self, blocks):
        """Operator on a subset of the pattern blocks (a working set).

        Parameters
        ----------
        blocks : ndarray of int
            Indices (numpy) of the blocks to keep.

        Returns
        -------
        operator : NamespacePatternOperator
            Shares ``X``; the selected mask columns gathered on the device.
        """
        blocks = np.asarray(blocks, dtype=np.int64)
        index = self.xp.asarray(blocks, device=self.device)
        composed = blocks if self._blocks is None else self._blocks[blocks]
        return self._derived(self.xp.take(self.masks, index, axis=1), self.dtype, composed)

    def astype(self, dtype):
        """The same operator in another compute dtype.

        Parameters
        ----------
        dtype : {np.float32, np.float64}
            Target dtype.

        Returns
        -------
        operator : NamespacePatternOperator
            ``self`` if the dtype already matches, else a converted copy.
        """
        if np.dtype(dtype) == self.dtype:
            return self
        xdtype = self._xp_dtype(dtype)
        new = self._derived(self.xp.astype(self.masks, xdtype), dtype, self._blocks)
        new.X = self.xp.astype(self.X, xdtype)
        return new

    def to_host(self):
        """The numpy :class:`PatternOperator` of the same blocks and dtype.

        Returns
        -------
        operator : PatternOperator
            Built from the host operator this one came from (no transfer of
            ``X``).
        """
        host = self._host if self._blocks is None else self._host.restrict(self._blocks)
        return host.astype(self.dtype)
