"""A row-blocked pattern operator whose working memory is bounded by a block size.

:class:`~skconvex.programs.operators.PatternOperator` holds the masks as an
``n x P`` float array and forms ``n x P x C`` products: at a million rows and
200 patterns that is gigabytes, where ``X`` itself is a fifth of one.
:class:`~skconvex.programs.row_blocks.RowBlockOperator` computes the same map

.. math:: \\mathcal{A}(W) = \\sum_p D_p X W_p,
          \\qquad \\mathcal{A}^\\top(R)_p = X^\\top D_p R,

one block of consecutive rows at a time: the masks are kept bit-packed
(:func:`numpy.packbits`, one bit per row and pattern, ``n P / 8`` bytes) and
unpacked for one block just before its GEMM, so that every float array whose
size grows with ``n * P`` has ``block_size`` rows, not ``n``. Sums over
blocks are taken in block order whatever ``n_jobs``, so results do not
depend on the number of threads.

``X`` is stored once in its own dtype; a copy of the operator in another
compute dtype (``astype``, which the float64 certificate of a float32 solve
asks for) shares it and casts one block at a time, so the certificate never
doubles the memory held for ``X``.

The block-sized work arrays of the products (unpacked masks, ``X_b W``,
row-scaled ``X_b``) are reused across blocks and products, one set per
thread: allocated afresh, each is a multi-megabyte ``mmap`` whose pages fault
in on every block wherever the C allocator returns large blocks to the
system at once, as dask's worker nanny configures it
(``MALLOC_TRIM_THRESHOLD_``), which made a worker's block sums 1.6-1.8x
slower.
"""

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator

from .._config import check_memory
from .operators import power_lipschitz

__all__ = ["RowBlockOperator", "block_bytes_per_row", "packed_patterns"]

_BIT_TABLES = {}


def _bit_table(dtype):
    """The 8 bits of every byte value as ``dtype`` 0/1, one opaque 8-float record per byte.

    Unpacking by ``take`` on this table writes each packed byte's eight
    floats with one record copy, straight into the compute dtype: no uint8
    intermediate and no separate cast (used for float32, where it is faster).
    """
    dtype = np.dtype(dtype)
    table = _BIT_TABLES.get(dtype)
    if table is None:
        bits = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).astype(dtype)
        table = _BIT_TABLES[dtype] = bits.view(np.dtype((np.void, 8 * dtype.itemsize))).ravel()
    return table


def block_bytes_per_row(n_features, n_patterns, n_outputs, itemsize):
    """Count the bytes of working memory one row of a block costs in :class:`~skconvex.programs.row_blocks.RowBlockOperator`.

    Parameters
    ----------
    n_features : int
        Columns of ``X`` (ones column included).
    n_patterns : int
        Pattern blocks.
    n_outputs : int
        Output columns.
    itemsize : int
        Bytes per float of the compute dtype.

    Returns
    -------
    n_bytes : int
        The unpacked boolean and float masks, the product ``X_b W`` (or the
        scaled masks of the adjoint) and a cast, row-scaled copy of the rows.
    """
    P, C, d = int(n_patterns), int(n_outputs), int(n_features)
    return P + itemsize * (P + 2 * P * C + 2 * C * d + 2)


def packed_patterns(X, gates, block_size):
    """Bit-packed patterns ``X @ gates >= 0``, computed ``block_size`` rows at a time.

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
        Data.
    gates : ndarray of shape (n_features, n_patterns)
        Gates.
    block_size : int
        Rows per block (rounded up to a multiple of 8, so that the packed
        blocks concatenate into the packing of the whole).

    Returns
    -------
    packed : ndarray of shape (ceil(n_samples / 8), n_patterns), dtype uint8
        :func:`numpy.packbits` of the patterns along axis 0.
    """
    block_size = -(-int(block_size) // 8) * 8
    if sp.issparse(X):
        X = sp.csr_array(X)
    n = X.shape[0]
    parts = [
        np.packbits(np.asarray(X[i : min(i + block_size, n)] @ gates) >= 0, axis=0)
        for i in range(0, n, block_size)
    ]
    if not parts:
        return np.zeros((0, gates.shape[1]), dtype=np.uint8)
    return np.concatenate(parts, axis=0)


class RowBlockOperator:
    """The map :math:`W \\mapsto \\sum_p D_p X W_p` computed one row block at a time.

    Same interface as :class:`~skconvex.programs.operators.PatternOperator`
    for the group-lasso solvers (``forward``, ``adjoint``, ``lipschitz``,
    ``block_gram_diagonals``, ``block_gram_products``, ``restrict``,
    ``astype``); the masks are bit-packed and every float array proportional
    to ``n_patterns`` has at most ``block_size`` rows.

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
        Data the neurons act on (with a ones column for hidden biases). Kept
        in its own floating dtype (shared, not copied, by :meth:`astype`);
        sparse input is kept as CSR.
    packed_patterns : ndarray of shape (ceil(n_samples / 8), n_patterns), dtype uint8
        Activation patterns packed along axis 0 with :func:`numpy.packbits`
        (as returned by ``sample_arrangements(..., packed=True)``).
    block_size : int
        Rows per block (rounded up to a multiple of 8, so that blocks start
        on a byte of the packed masks).
    n_outputs : int, default=1
        Number of output columns :math:`C`.
    dtype : {np.float64, np.float32}, default=None
        Compute dtype. Defaults to the dtype of ``X`` when floating.
    n_jobs : int, default=None
        Threads computing blocks concurrently (the GEMMs release the GIL).
        Block results are summed in block order, so the result does not
        depend on ``n_jobs``.

    Attributes
    ----------
    X : ndarray or scipy.sparse.csr_array of shape (n_samples, n_features)
        Data in its storage dtype.
    packed : ndarray of shape (n_samples, ceil(n_patterns / 8))
        Bit-packed masks, packed along the patterns (each row's bits
        contiguous).
    coef_shape : tuple of int
        ``(n_features, n_patterns, n_outputs)``, the shape of ``W``.
    block_size : int
        Rows per block.

    See Also
    --------
    skconvex.programs.operators.PatternOperator : The whole-array operator.

    References
    ----------
    M. Pilanci and T. Ergen. Neural networks are convex regularizers. ICML 2020,
    arXiv:2002.10553.
    """

    #: Whether :meth:`restrict` selects a subset of blocks (working sets).
    supports_restrict = True

    def __init__(self, X, packed_patterns, *, block_size, n_outputs=1, dtype=None, n_jobs=None):
        if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) or block_size < 1:
            raise ValueError(f"block_size must be a positive integer, got {block_size!r}.")
        if dtype is None:
            dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
        self.dtype = np.dtype(dtype)
        n_samples, n_features = X.shape
        packed_patterns = np.asarray(packed_patterns)
        if packed_patterns.dtype != np.uint8 or packed_patterns.ndim != 2:
            raise ValueError("packed_patterns must be a 2-D uint8 array from numpy.packbits.")
        if packed_patterns.shape[0] != -(-n_samples // 8):
            raise ValueError(
                f"packed_patterns has {packed_patterns.shape[0]} rows; X with {n_samples} "
                f"rows needs {-(-n_samples // 8)} (numpy.packbits along axis 0)."
            )
        self.n_outputs = int(n_outputs)
        self.block_size = int(-(-int(block_size) // 8) * 8)
        if sp.issparse(X):
            X = sp.csr_array(X)
            if X.dtype not in (np.float32, np.float64):
                X = X.astype(np.float64)
        else:
            X = np.asarray(X)
            if X.dtype not in (np.float32, np.float64):
                X = X.astype(np.float64)
            X = np.ascontiguousarray(X)
        self.X = X
        self.n_jobs = n_jobs
        self.coef_shape = (n_features, packed_patterns.shape[1], self.n_outputs)
        # Repacked along the patterns, one byte-aligned block at a time: a
        # row's bits are then contiguous, and unpacking a block is ten times
        # faster than unpacking the column-packed layout of the arrangements.
        self.packed = np.concatenate(
            [
                np.packbits(
                    np.unpackbits(packed_patterns[s.start // 8 : -(-s.stop // 8)], axis=0, count=s.stop - s.start),
                    axis=1,
                )
                for s in self._row_slices()
            ]
            or [np.zeros((0, -(-self.coef_shape[1] // 8)), dtype=np.uint8)],
            axis=0,
        )
        check_memory(
            self._n_threads() * self.block_size
            * block_bytes_per_row(n_features, self.n_patterns, self.n_outputs, self.dtype.itemsize),
            what=f"One row block of {self.block_size} rows and {self.n_patterns} patterns",
            lower="block_size",
        )
        self._blocks = None

    # ------------------------------------------------------------ structure
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
        return self.coef_shape[1]

    @property
    def n_blocks(self):
        """Number of row blocks."""
        return -(-self.n_samples // self.block_size)

    def _n_threads(self):
        if self.n_jobs is None:
            return 1
        if self.n_jobs < 0:
            import os

            return max((os.cpu_count() or 1) + 1 + self.n_jobs, 1)
        return max(int(self.n_jobs), 1)

    def _row_slices(self):
        # Cached: at 10^6 rows, rebuilding the list for every block of every
        # product cost ~5 % of a fit. Copies share it (same rows and blocks).
        slices = self.__dict__.get("_slices")
        if slices is None:
            n, b = self.n_samples, self.block_size
            slices = self._slices = [slice(i, min(i + b, n)) for i in range(0, n, b)]
        return slices

    def _x_blocks(self):
        # CSR row slices copy, so they are cut once; dense slices are views.
        if self._blocks is None:
            self._blocks = [self.X[s] for s in self._row_slices()]
        return self._blocks

    def _x(self, k):
        """Rows of block ``k`` in the compute dtype (a cast of one block at most, into a work array)."""
        Xb = self._x_blocks()[k]
        if Xb.dtype == self.dtype:
            return Xb
        if self.sparse:
            return Xb.astype(self.dtype)
        out = self._scratch("x", Xb.shape, self.dtype)
        np.copyto(out, Xb)
        return out

    def _scratch(self, name, shape, dtype):
        """This thread's reusable work array ``name`` viewed as ``shape`` (see the module notes)."""
        local = self.__dict__.get("_local")
        if local is None:
            local = self.__dict__.setdefault("_local", threading.local())
        arrays = getattr(local, "arrays", None)
        if arrays is None:
            arrays = local.arrays = {}
        dtype = np.dtype(dtype)
        size = int(np.prod(shape))
        buf = arrays.get((name, dtype))
        if buf is None or buf.size < size:
            buf = arrays[(name, dtype)] = np.empty(size, dtype=dtype)
        return buf[:size].reshape(shape)

    def __getstate__(self):
        # Work arrays are per thread and per process: not part of the operator.
        state = self.__dict__.copy()
        state.pop("_local", None)
        return state

    def _masks_work(self, k):
        """Masks of block ``k`` in the compute dtype, unpacked into this thread's work array."""
        packed = self.packed[self._row_slices()[k]]
        buf = self._scratch("masks", (packed.shape[0], 8 * packed.shape[1]), self.dtype)
        return self._unpack_into(packed, buf)

    def _unpack_into(self, packed, out):
        """Unpack ``packed`` rows into the float array ``out`` (8 columns per byte); its mask columns."""
        if out.dtype == np.float32:
            table = _bit_table(out.dtype)
            # take casts its indices to intp: into a work array, not a fresh
            # block-sized one (under dask's MALLOC_TRIM_THRESHOLD_ each fresh
            # one is an mmap whose pages fault in again: a third of a
            # worker's round, benchmarks/README.md).
            index = self._scratch("index", packed.shape, np.intp)
            np.copyto(index, packed)
            # mode="clip": every uint8 index is valid, and "raise" would buffer the output.
            np.take(table, index, out=out.view(table.dtype), mode="clip")
        else:
            # Measured (benchmarks/README.md, the float32 mask lookup table): the table's 64-byte
            # float64 records copy slower than unpackbits and a cast.
            np.copyto(out[:, : self.n_patterns], np.unpackbits(packed, axis=1, count=self.n_patterns))
        # A column slice of the padding bits (a view; BLAS takes its row stride).
        return out[:, : self.n_patterns]

    def masks_block(self, k, dtype=None):
        """Unpacked masks of row block ``k``.

        Parameters
        ----------
        k : int
            Block index.
        dtype : dtype, default=None
            Float dtype of the result; the compute dtype when None.

        Returns
        -------
        masks : ndarray of shape (rows of block k, n_patterns)
            0/1 masks of the block's rows.
        """
        s = self._row_slices()[k]
        dtype = self.dtype if dtype is None else np.dtype(dtype)
        packed = self.packed[s]
        if dtype == np.uint8:
            return np.unpackbits(packed, axis=1, count=self.n_patterns)
        return self._unpack_into(packed, np.empty((packed.shape[0], 8 * packed.shape[1]), dtype=dtype))

    def _map(self, fn):
        """``[fn(k) for k in blocks]``, threaded when ``n_jobs`` allows, in block order."""
        ks = range(self.n_blocks)
        threads = min(self._n_threads(), self.n_blocks)
        if threads <= 1:
            return [fn(k) for k in ks]
        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(fn, ks))

    def _sum(self, fn):
        """Sum of ``fn(k)`` over blocks, accumulated in block order (thread-count invariant)."""
        if self._n_threads() <= 1:
            total = None
            for k in range(self.n_blocks):
                part = fn(k)
                total = part if total is None else total + part
            return total
        parts = self._map(fn)
        total = parts[0]
        for part in parts[1:]:
            total = total + part
        return total

    # ------------------------------------------------------------ products
    def forward(self, W):
        """Compute the predictions :math:`\\sum_p D_p X W_p`, block by block.

        Only the non-zero blocks of ``W`` enter the GEMMs.

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
        out = np.zeros((self.n_samples, C), dtype=self.dtype)
        if len(live) == 0:
            return out
        # Selecting mask columns costs more than multiplying zeros, unless
        # most blocks are zero (as along a path).
        if len(live) >= 0.75 * P:
            live = slice(None)
            Wl = W.reshape(d, P * C)
            n_live = P
        else:
            Wl = np.ascontiguousarray(W[:, live, :]).reshape(d, len(live) * C)
            n_live = len(live)
        slices = self._row_slices()

        def block(k):
            Xb = self._x(k)
            if self.sparse:
                Z = np.asarray(Xb @ Wl)
            else:
                Z = np.matmul(Xb, Wl, out=self._scratch("z", (Xb.shape[0], Wl.shape[1]), self.dtype))
            Z = Z.reshape(-1, n_live, C)
            if isinstance(live, slice):
                M = self._masks_work(k)
            else:
                full = self._masks_work(k)
                M = np.take(full, live, axis=1, out=self._scratch("live", (full.shape[0], n_live), self.dtype), mode="clip")
            if C == 1:
                out[slices[k], 0] = np.einsum("np,np->n", M, Z[:, :, 0])
            else:
                out[slices[k]] = np.matmul(M[:, None, :], Z)[:, 0, :]

        self._map(block)
        return out

    def adjoint(self, R):
        """Adjoint :math:`R \\mapsto [X^\\top D_p R]_p`, summed over row blocks.

        Parameters
        ----------
        R : ndarray of shape (n_samples, n_outputs)
            Residual-like matrix (e.g. the gradient of the loss).

        Returns
        -------
        G : ndarray of shape coef_shape
            The adjoint, in the compute dtype.
        """
        R = np.asarray(R, dtype=self.dtype).reshape(self.n_samples, self.n_outputs)
        d, P, C = self.coef_shape
        slices = self._row_slices()

        def block(k):
            Xb, Rb, M = self._x(k), R[slices[k]], self._masks_work(k)
            if self.sparse:
                H = (M[:, :, None] * Rb[:, None, :]).reshape(-1, P * C)
                return np.asarray(Xb.T @ H).reshape(d, P, C)
            rows = Xb.shape[0]
            if C == 1:
                XR = np.multiply(Xb, Rb, out=self._scratch("xr", (rows, d), self.dtype))
                return (XR.T @ M)[:, :, None]
            XR = np.multiply(
                Rb[:, :, None], Xb[:, None, :], out=self._scratch("xr", (rows, C, d), self.dtype)
            ).reshape(rows, C * d)
            return (XR.T @ M).reshape(C, d, P).transpose(1, 2, 0)

        return np.ascontiguousarray(self._sum(block), dtype=self.dtype)

    def block_gram_diagonals(self, weights):
        """Compute the diagonals of the blocks of :math:`\\mathcal{A}^\\top H\\mathcal{A}`.

        Parameters
        ----------
        weights : ndarray of shape (n_samples,)
            Diagonal of :math:`H` (per-sample curvature of the datafit).

        Returns
        -------
        diagonals : ndarray of shape (n_patterns, n_features)
            :math:`\\mathrm{diag}(X^\\top \\mathrm{diag}(h \\odot m_p) X)` per block.
        """
        h = np.asarray(weights, dtype=self.dtype)
        slices = self._row_slices()

        def block(k):
            Xb, M = self._x(k), self._masks_work(k)
            M *= h[slices[k], None]
            if self.sparse:
                return np.asarray(Xb.multiply(Xb).T @ M).T
            return M.T @ (Xb * Xb)

        return np.ascontiguousarray(self._sum(block), dtype=self.dtype)

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
            Two GEMMs per row block.
        """
        d, P, _ = self.coef_shape
        W = np.asarray(W, dtype=self.dtype).reshape(d, P)
        h = np.asarray(weights, dtype=self.dtype)
        slices = self._row_slices()

        def block(k):
            Xb = self._x(k)
            Z = np.asarray(Xb @ W)
            Z *= self._masks_work(k)
            Z *= h[slices[k], None]
            return np.asarray(Xb.T @ Z)

        return np.ascontiguousarray(self._sum(block), dtype=self.dtype)[:, :, None]

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

    # ------------------------------------------------------------ copies
    def _copy(self, **changes):
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.__dict__.update(changes)
        return new

    def restrict(self, blocks):
        """Operator on a subset of the pattern blocks (a working set).

        Parameters
        ----------
        blocks : ndarray of int
            Indices of the blocks to keep.

        Returns
        -------
        operator : RowBlockOperator
            Shares ``X`` (and its row blocks); copies the selected packed columns.
        """
        self._x_blocks()
        blocks = np.asarray(blocks, dtype=np.intp)
        packed = np.concatenate(
            [np.packbits(self.masks_block(k, np.uint8)[:, blocks], axis=1) for k in range(self.n_blocks)]
            or [np.zeros((0, -(-len(blocks) // 8)), dtype=np.uint8)],
            axis=0,
        )
        return self._copy(packed=packed, coef_shape=(self.coef_shape[0], len(blocks), self.n_outputs))

    def astype(self, dtype):
        """The same operator computing in another dtype, sharing ``X`` and the masks.

        Parameters
        ----------
        dtype : {np.float32, np.float64}
            Target compute dtype.

        Returns
        -------
        operator : RowBlockOperator
            ``self`` if the dtype already matches; else a copy that casts one
            row block at a time.
        """
        if np.dtype(dtype) == self.dtype:
            return self
        self._x_blocks()
        return self._copy(dtype=np.dtype(dtype))

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
            (n * C, int(np.prod(self.coef_shape))), matvec=matvec, rmatvec=rmatvec, dtype=self.dtype
        )
