"""Problem pieces of the convex CNN programs: patches, pooling, patch operators.

A convolution applies the same filter :math:`u` to the ``K`` patches
:math:`x_{i,1}, \\dots, x_{i,K}` of every image, so a two-layer CNN with
pooling is a two-layer network on the **stacked patch matrix**
:math:`X_{\\rm st}` (one row per (sample, patch) pair, sample-major) whose
row outputs are pooled per sample (Ergen & Pilanci, 2021). The convex
programs of the package therefore only need, besides the pieces of the fully
connected programs,

* the patch geometry (:func:`~skconvex.programs.patches.image_geometry`) and a vectorized patch
  extraction (:func:`extract_patches`, :func:`numpy.lib.stride_tricks.sliding_window_view`,
  no loop over samples or patches);
* an operator with the interface of :class:`~skconvex.programs.operators.PatternOperator`
  whose blocks act on patch rows and whose predictions are pooled per sample
  (:class:`PatchOperator`): :class:`~skconvex.programs.problem.ConvexProblem`,
  :class:`~skconvex.programs.cones.ConeConstrainedProblem` (one cone constraint per
  patch row), the proximal, augmented-Lagrangian and CVXPY solvers use it
  unchanged;
* for the three-layer program, the second family of cone constraints that
  couples the columns of one sub-network
  (:class:`~skconvex.programs.subnetwork_cones.SubnetworkConeProblem`).

The forward passes of the recovered CNNs live with the other networks in
:mod:`skconvex.networks`.

Images are rows of ``X`` holding an ``(H, W, C)`` array in C order
(channels last); patches and filters use the same ``(kh, kw, C)`` order.

References
----------
T. Ergen and M. Pilanci. Implicit convex regularizers of CNN architectures:
convex optimization of two- and three-layer networks in polynomial time.
ICLR 2021, arXiv:2006.14798.
"""

from dataclasses import dataclass
from numbers import Integral

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator

from .._config import check_memory, memory_budget
from ._chunks import row_batches
from .operators import power_lipschitz

__all__ = [
    "ImageGeometry",
    "image_geometry",
    "extract_patches",
    "PatchOperator",
]


# --------------------------------------------------------------------------
# geometry
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageGeometry:
    """Validated image, convolution and pooling geometry (see :func:`~skconvex.programs.patches.image_geometry`).

    Parameters
    ----------
    image_shape : tuple of int
        ``(H, W)``.
    n_channels : int
        ``C``.
    kernel : tuple of int
        ``(kh, kw)``.
    stride : tuple of int
        ``(sh, sw)``.
    padding : tuple of int
        Zero padding ``(ph, pw)`` added on both sides.
    output_shape : tuple of int
        ``(oh, ow)``, the grid of filter positions.
    pool_size : tuple of int or None
        ``(qh, qw)`` of local pooling, None for global pooling.
    regions : ndarray of shape (n_patches,)
        Pooling region of every filter position (all 0 for global pooling).
    """

    image_shape: tuple
    n_channels: int
    kernel: tuple
    stride: tuple
    padding: tuple
    output_shape: tuple
    pool_size: tuple
    regions: np.ndarray

    @property
    def n_patches(self):
        """Number of filter positions ``K = oh * ow``."""
        return self.output_shape[0] * self.output_shape[1]

    @property
    def patch_size(self):
        """Length ``kh * kw * C`` of a patch."""
        return self.kernel[0] * self.kernel[1] * self.n_channels

    @property
    def n_features(self):
        """Length ``H * W * C`` of an image."""
        return self.image_shape[0] * self.image_shape[1] * self.n_channels

    @property
    def n_regions(self):
        """Number of pooling regions (1 for global pooling)."""
        return int(self.regions.max()) + 1

    def pool_weights(self, pooling):
        """Weight of every filter position in its region's pooled value.

        Parameters
        ----------
        pooling : {"avg", "sum"}
            Average or sum pooling.

        Returns
        -------
        weights : ndarray of shape (n_patches,)
            1 for sum pooling, one over the size of the position's region for
            average pooling.
        """
        if pooling == "sum":
            return np.ones(self.n_patches)
        sizes = np.bincount(self.regions)
        return 1.0 / sizes[self.regions]


def _pair(value, name, *, minimum):
    """An int or a pair of ints, each at least ``minimum``, as a tuple of two ints."""
    if isinstance(value, (Integral, np.integer)) and not isinstance(value, bool):
        value = (int(value), int(value))
    try:
        pair = tuple(value)
    except TypeError:
        pair = None
    if (
        pair is None
        or len(pair) != 2
        or not all(isinstance(v, (Integral, np.integer)) and not isinstance(v, bool) for v in pair)
        or min(pair) < minimum
    ):
        raise ValueError(
            f"{name} must be an int or a pair of ints, each >= {minimum}; got {value!r}."
        )
    return int(pair[0]), int(pair[1])


def image_geometry(
    n_features,
    image_shape=None,
    n_channels=1,
    kernel_size=3,
    stride=1,
    padding=0,
    pool_size=None,
):
    """Validate and resolve the geometry of images, filters and pooling.

    Rows of ``X`` hold images of shape ``(H, W, C)`` in C order. A filter of
    size ``(kh, kw)`` slides with ``stride`` over the image padded with
    ``padding`` zeros on each side; its positions form an ``(oh, ow)`` grid
    with ``oh = (H + 2 ph - kh) / sh + 1``. Local pooling partitions that grid
    into ``pool_size`` windows (the last row or column of windows may be
    smaller).

    With ``image_shape=None`` a row is a 1-D signal: ``H = n_features /
    n_channels``, ``W = 1``, and the kernel is ``(min(kh, H + 2 ph), 1)``
    (so the default kernel works on any number of features).

    Parameters
    ----------
    n_features : int
        Number of columns of ``X``.
    image_shape : tuple of int, default=None
        ``(H, W)``; None for 1-D signals.
    n_channels : int, default=1
        Number of channels ``C``.
    kernel_size : int or tuple of int, default=3
        Filter size.
    stride : int or tuple of int, default=1
        Filter stride.
    padding : int or tuple of int, default=0
        Zero padding on each side, smaller than the kernel.
    pool_size : int or tuple of int, default=None
        Local pooling windows over the grid of filter positions, each side
        larger than 1 and smaller than the grid (at least one of them);
        None pools globally.

    Returns
    -------
    geometry : ImageGeometry
        The resolved geometry.

    Raises
    ------
    ValueError
        If the number of features does not match ``image_shape`` and
        ``n_channels``, the kernel does not fit the padded image, the stride
        skips pixels at the border, or ``pool_size`` is not smaller than the
        grid of filter positions. The message names the parameter to change.

    Examples
    --------
    >>> from skconvex.programs.patches import image_geometry
    >>> geo = image_geometry(64, image_shape=(8, 8), kernel_size=3, pool_size=3)
    >>> geo.output_shape, geo.n_patches, geo.n_regions
    ((6, 6), 36, 4)
    """
    if not isinstance(n_channels, (Integral, np.integer)) or isinstance(n_channels, bool) or n_channels < 1:
        raise ValueError(f"n_channels must be a positive int, got {n_channels!r}.")
    n_channels = int(n_channels)
    kh, kw = _pair(kernel_size, "kernel_size", minimum=1)
    sh, sw = _pair(stride, "stride", minimum=1)
    ph, pw = _pair(padding, "padding", minimum=0)
    if image_shape is None:
        if n_features % n_channels:
            raise ValueError(
                f"X has {n_features} features, not a multiple of n_channels={n_channels}; "
                "set image_shape and n_channels to describe the images."
            )
        H, W = n_features // n_channels, 1
        kh, kw, pw = min(kh, H + 2 * ph), 1, 0
    else:
        H, W = _pair(image_shape, "image_shape", minimum=1)
        if H * W * n_channels != n_features:
            raise ValueError(
                f"X has {n_features} features but image_shape={tuple(image_shape)!r} with "
                f"n_channels={n_channels} needs H * W * C = {H * W * n_channels}."
            )
    if ph >= kh or pw >= kw:
        raise ValueError(
            f"padding={(ph, pw)} must be smaller than kernel_size={(kh, kw)} on each axis "
            "(larger padding only adds all-zero patches)."
        )
    for axis, size, k, s, p in (("height", H, kh, sh, ph), ("width", W, kw, sw, pw)):
        if k > size + 2 * p:
            raise ValueError(
                f"kernel_size={(kh, kw)} does not fit the image {axis} {size} with padding "
                f"{p} on each side; use a smaller kernel_size or more padding."
            )
        if (size + 2 * p - k) % s:
            raise ValueError(
                f"stride={(sh, sw)} skips the last {(size + 2 * p - k) % s} pixel(s) of the "
                f"image {axis}: (size + 2 * padding - kernel) = {size + 2 * p - k} is not a "
                "multiple of the stride; change stride, padding or kernel_size."
            )
    oh, ow = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    if pool_size is None:
        regions = np.zeros(oh * ow, dtype=np.intp)
        pool = None
    else:
        qh, qw = _pair(pool_size, "pool_size", minimum=1)
        qh, qw = min(qh, oh), min(qw, ow)
        if qh * qw <= 1 or (qh >= oh and qw >= ow):
            raise ValueError(
                f"pool_size={pool_size!r} must pool more than one filter position and less "
                f"than the whole {oh}x{ow} grid of filter positions (use pool_size=None for "
                "global pooling)."
            )
        rows = np.arange(oh) // qh
        cols = np.arange(ow) // qw
        regions = (rows[:, None] * (-(-ow // qw)) + cols[None, :]).ravel()
        pool = (qh, qw)
    return ImageGeometry(
        image_shape=(H, W),
        n_channels=n_channels,
        kernel=(kh, kw),
        stride=(sh, sw),
        padding=(ph, pw),
        output_shape=(oh, ow),
        pool_size=pool,
        regions=regions,
    )


def extract_patches(X, geometry, *, fit_intercept=False):
    """All filter patches of every image, without a loop over samples or patches.

    Parameters
    ----------
    X : ndarray of shape (n_samples, H * W * C)
        Images, rows in ``(H, W, C)`` C order.
    geometry : ImageGeometry
        From :func:`~skconvex.programs.patches.image_geometry`.
    fit_intercept : bool, default=False
        Append a ones entry to every patch (the filter's bias).

    Returns
    -------
    patches : ndarray of shape (n_samples, n_patches, kh * kw * C + fit_intercept)
        Patch ``k = r * ow + c`` of the filter position ``(r, c)``, entries in
        ``(kh, kw, C)`` order, in the dtype of ``X``.

    Examples
    --------
    >>> import numpy as np
    >>> from skconvex.programs.patches import extract_patches, image_geometry
    >>> X = np.arange(2 * 16, dtype=float).reshape(2, 16)
    >>> geo = image_geometry(16, image_shape=(4, 4), kernel_size=2, stride=2)
    >>> extract_patches(X, geo)[0, 1]
    array([2., 3., 6., 7.])
    """
    X = np.asarray(X)
    n = X.shape[0]
    (H, W), C = geometry.image_shape, geometry.n_channels
    (kh, kw), (sh, sw), (ph, pw) = geometry.kernel, geometry.stride, geometry.padding
    h = geometry.patch_size + bool(fit_intercept)
    check_memory(
        X.itemsize * n * geometry.n_patches * h * 2,
        what=f"The {geometry.n_patches} patches of {n} images",
        lower="the number of samples (or use a larger stride)",
    )
    images = X.reshape(n, H, W, C)
    if ph or pw:
        images = np.pad(images, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(images, (kh, kw), axis=(1, 2))
    # (n, H', W', C, kh, kw) -> strided positions -> (n, oh, ow, kh, kw, C)
    windows = windows[:, ::sh, ::sw].transpose(0, 1, 2, 4, 5, 3)
    K = geometry.n_patches
    out = np.empty((n, K, h), dtype=X.dtype)
    out[:, :, : geometry.patch_size] = windows.reshape(n, K, geometry.patch_size)
    if fit_intercept:
        out[:, :, -1] = 1
    return out


# --------------------------------------------------------------------------
# the operator
# --------------------------------------------------------------------------


def _pooled_features(X, patterns, signs, row_weights, n_samples, dtype):
    """``F[i, :, b] = sum_k w_k s_b m_{ikb} x_{ik}`` in sample batches (one batched GEMM each)."""
    nK, h = X.shape
    K = nK // n_samples
    B = patterns.shape[1]
    F = np.empty((n_samples, h, B), dtype=dtype)
    per_sample = K * B * np.dtype(dtype).itemsize * 2
    size = int(max(1, min(n_samples, memory_budget() // 8 // max(per_sample, 1))))
    for batch in row_batches(n_samples, size):
        rows = slice(batch.start * K, batch.stop * K)
        m = patterns[rows].astype(dtype).reshape(-1, K, B)
        xw = (X[rows] * row_weights[rows, None]).reshape(-1, K, h)
        F[batch] = np.matmul(xw.transpose(0, 2, 1), m)
    if signs is not None:
        F *= signs.astype(dtype)[None, None, :]
    return F


class PatchOperator:
    """Pooled pattern operator on patch rows, :math:`W \\mapsto \\operatorname{pool}(\\sum_b D_b X_{\\rm st} W_b)`.

    Row ``i * K + k`` of the stacked patch matrix :math:`X_{\\rm st}` is patch
    ``k`` of sample ``i``. Block ``b`` has a pattern (mask) :math:`m_b` over
    the rows and an optional sign :math:`s_b`; the prediction of sample
    ``i`` is

    .. math:: \\hat y_i = \\sum_b s_b \\sum_k w_k\\, m_{ikb}\\, x_{ik}^\\top W_b,

    with pooling weights :math:`w_k` (1 for sum pooling, :math:`1/K` or one
    over the region size for average pooling). It has the interface of
    :class:`~skconvex.programs.operators.PatternOperator`, where rows of the
    *products* (:meth:`product`, cone constraints) are patch rows and rows of
    the *predictions* are samples; ``n_rows``, ``row_samples``,
    :meth:`expand` and :meth:`pool` connect the two. Predictions and the
    adjoint use the pooled features :math:`F_{i,:,b} = \\sum_k w_k s_b
    m_{ikb} x_{ik}` (one GEMM each, independent of ``K``).

    Parameters
    ----------
    patches : ndarray of shape (n_samples, n_patches, patch_size)
        Patches (with a ones entry for filter biases).
    patterns : ndarray of shape (n_samples * n_patches, n_blocks)
        Boolean masks :math:`m_b` over patch rows (sample-major).
    signs : ndarray of shape (n_blocks,), default=None
        +1/-1 per block.
    pool_weights : ndarray of shape (n_patches,), default=None
        Pooling weight of each patch position (ones when None: sum pooling).
    n_outputs : int, default=1
        Number of output columns ``C``.
    dtype : {np.float64, np.float32}, default=None
        Compute dtype; the dtype of ``patches`` when floating.

    Attributes
    ----------
    X : ndarray of shape (n_samples * n_patches, patch_size)
        The stacked patch matrix.
    patterns : ndarray of shape (n_samples * n_patches, n_blocks), dtype bool
        The block masks.
    features : ndarray of shape (n_samples, patch_size, n_blocks)
        Pooled masked features :math:`F`.
    coef_shape : tuple of int
        ``(patch_size, n_blocks, n_outputs)``.

    References
    ----------
    T. Ergen and M. Pilanci. Implicit convex regularizers of CNN
    architectures. ICLR 2021, arXiv:2006.14798.

    Examples
    --------
    >>> import numpy as np
    >>> from skconvex.programs.patches import PatchOperator
    >>> rng = np.random.default_rng(0)
    >>> patches = rng.standard_normal((5, 4, 3))
    >>> patterns = patches.reshape(20, 3) @ rng.standard_normal((3, 6)) >= 0
    >>> op = PatchOperator(patches, patterns, pool_weights=np.full(4, 0.25))
    >>> op.forward(np.ones(op.coef_shape)).shape
    (5, 1)
    """

    #: Whether :meth:`restrict` selects a subset of blocks (see :mod:`skconvex.programs`).
    supports_restrict = True

    def __init__(self, patches, patterns, *, signs=None, pool_weights=None, n_outputs=1, dtype=None):
        patches = np.asarray(patches)
        if patches.ndim != 3:
            raise ValueError(f"patches must be 3-D (n_samples, n_patches, patch_size), got {patches.shape}.")
        if dtype is None:
            dtype = patches.dtype if patches.dtype in (np.float32, np.float64) else np.float64
        self.dtype = np.dtype(dtype)
        n, K, h = patches.shape
        patterns = np.asarray(patterns, dtype=bool)
        if patterns.ndim != 2 or patterns.shape[0] != n * K:
            raise ValueError(
                f"patterns must have one row per (sample, patch) pair ({n * K}), got shape "
                f"{patterns.shape}."
            )
        B = patterns.shape[1]
        self.n_outputs = int(n_outputs)
        self.n_patches = K
        self._n_samples = n
        check_memory(
            self.dtype.itemsize * (n * h * B + n * K * B) + n * K * B,
            what=f"The patch operator for {n} samples, {K} patches and {B} blocks",
            lower="n_arrangements (or use fewer samples or a larger stride)",
        )
        self.X = np.ascontiguousarray(patches.reshape(n * K, h), dtype=self.dtype)
        self.patterns = np.ascontiguousarray(patterns)
        self.signs = None if signs is None else np.asarray(signs, dtype=self.dtype).reshape(B)
        w = np.ones(K) if pool_weights is None else np.asarray(pool_weights, dtype=np.float64)
        if w.shape != (K,):
            raise ValueError(f"pool_weights must have shape ({K},), got {w.shape}.")
        self.pool_weights = w
        self.row_weights = np.tile(w, n).astype(self.dtype)
        self.features = _pooled_features(self.X, self.patterns, self.signs, self.row_weights, n, self.dtype)
        self.coef_shape = (h, B, self.n_outputs)
        self._masks = None

    # ------------------------------------------------------------ shapes
    @property
    def n_samples(self):
        """Number of samples (rows of the predictions)."""
        return self._n_samples

    @property
    def n_rows(self):
        """Number of patch rows (rows of the products and of the cone constraints)."""
        return self.X.shape[0]

    @property
    def n_patterns(self):
        """Number of blocks."""
        return self.patterns.shape[1]

    @property
    def row_samples(self):
        """Sample of every patch row, shape ``(n_rows,)``."""
        return np.repeat(np.arange(self.n_samples), self.n_patches)

    @property
    def masks(self):
        """Block masks times signs as floats, shape ``(n_rows, n_blocks)`` (built on first use)."""
        if self._masks is None:
            masks = self.patterns.astype(self.dtype)
            if self.signs is not None:
                masks *= self.signs[None, :]
            self._masks = masks
        return self._masks

    # ------------------------------------------------------------ rows <-> samples
    def expand(self, R):
        """Adjoint of the pooling: sample rows to patch rows.

        Parameters
        ----------
        R : ndarray of shape (n_samples, n_outputs)
            Per-sample values (e.g. a datafit gradient).

        Returns
        -------
        rows : ndarray of shape (n_rows, n_outputs)
            Row ``i * K + k`` is :math:`w_k R_i`.
        """
        R = np.asarray(R, dtype=self.dtype).reshape(self.n_samples, -1)
        return np.repeat(R, self.n_patches, axis=0) * self.row_weights[:, None]

    def pool(self, V):
        """Pool patch rows into samples: :math:`\\sum_k w_k V_{ik}`.

        Parameters
        ----------
        V : ndarray of shape (n_rows, ...)
            Per-row values.

        Returns
        -------
        pooled : ndarray of shape (n_samples, ...)
            Weighted sums over each sample's patch rows.
        """
        V = np.asarray(V)
        w = self.row_weights.reshape((-1,) + (1,) * (V.ndim - 1))
        return (V * w).reshape((self.n_samples, self.n_patches) + V.shape[1:]).sum(axis=1)

    # ------------------------------------------------------------ products
    def product(self, W):
        """The GEMM :math:`Z = X_{\\rm st} W` on patch rows.

        Parameters
        ----------
        W : ndarray of shape coef_shape
            Blocks.

        Returns
        -------
        Z : ndarray of shape (n_rows, n_blocks, n_outputs)
            ``Z[:, b, :] = X_st @ W[:, b, :]``; cone constraints are sign
            flips of it.
        """
        h, B, C = self.coef_shape
        W = np.asarray(W, dtype=self.dtype).reshape(h, B * C)
        return (self.X @ W).reshape(-1, B, C)

    def reduce(self, Z, masks=None):
        """Masked sum over blocks of a product, pooled per sample: the predictions.

        Parameters
        ----------
        Z : ndarray of shape (n_rows, n_blocks, n_outputs)
            A product from :meth:`product`.
        masks : ndarray of shape (n_rows, n_blocks), default=None
            Masks to use instead of ``self.masks``.

        Returns
        -------
        pred : ndarray of shape (n_samples, n_outputs)
            :math:`\\sum_k w_k \\sum_b s_b m_{ikb} Z_{ik,b}`.
        """
        masks = self.masks if masks is None else masks
        rows = np.matmul(masks[:, None, :], Z)[:, 0, :]
        return self.pool(rows)

    def forward(self, W):
        """Compute the predictions :math:`\\hat y_i = \\sum_b \\langle F_{i,:,b}, W_b\\rangle` (one GEMM).

        Parameters
        ----------
        W : ndarray of shape coef_shape
            Blocks.

        Returns
        -------
        pred : ndarray of shape (n_samples, n_outputs)
            Predictions in the compute dtype.
        """
        h, B, C = self.coef_shape
        W = np.asarray(W, dtype=self.dtype).reshape(h * B, C)
        return self.features.reshape(self.n_samples, h * B) @ W

    def adjoint(self, R):
        """Adjoint :math:`R \\mapsto [\\sum_i F_{i,:,b} R_i^\\top]_b` (one GEMM).

        Parameters
        ----------
        R : ndarray of shape (n_samples, n_outputs)
            Residual-like matrix.

        Returns
        -------
        G : ndarray of shape coef_shape
            Equal to :math:`X_{\\rm st}^\\top (m_b \\odot` :meth:`expand` :math:`(R))`.
        """
        R = np.asarray(R, dtype=self.dtype).reshape(self.n_samples, self.n_outputs)
        h, B, C = self.coef_shape
        return (self.features.reshape(self.n_samples, h * B).T @ R).reshape(h, B, C)

    def lipschitz(self, sample_weight=None, *, n_iter=20, random_state=0):
        """Estimate :math:`\\|S^{1/2}\\mathcal{A}\\|_2^2` by power iteration.

        Parameters
        ----------
        sample_weight : ndarray of shape (n_samples,), default=None
            Row weights :math:`S` of the samples; ones when None.
        n_iter : int, default=20
            Power iterations.
        random_state : int, default=0
            Seed of the start vector.

        Returns
        -------
        lipschitz : float
            Estimate of the largest eigenvalue of :math:`\\mathcal{A}^\\top S\\mathcal{A}`.
        """
        return power_lipschitz(self, sample_weight, n_iter=n_iter, random_state=random_state)

    # ------------------------------------------------------------ views
    def _copy(self, **changes):
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new._masks = None
        new.__dict__.update(changes)
        return new

    def restrict(self, blocks):
        """Operator on a subset of the blocks (a working set).

        Parameters
        ----------
        blocks : ndarray of int
            Indices of the blocks kept.

        Returns
        -------
        operator : PatchOperator
            Shares the patches; copies the selected features and masks.
        """
        blocks = np.asarray(blocks)
        h, _, C = self.coef_shape
        return self._copy(
            patterns=np.ascontiguousarray(self.patterns[:, blocks]),
            signs=None if self.signs is None else self.signs[blocks],
            features=np.ascontiguousarray(self.features[:, :, blocks]),
            coef_shape=(h, len(blocks), C),
        )

    def astype(self, dtype):
        """The same operator in another compute dtype.

        Parameters
        ----------
        dtype : {np.float32, np.float64}
            Target dtype.

        Returns
        -------
        operator : PatchOperator
            ``self`` if the dtype already matches, else a converted copy.
        """
        if np.dtype(dtype) == self.dtype:
            return self
        return self._copy(
            dtype=np.dtype(dtype),
            X=self.X.astype(dtype),
            signs=None if self.signs is None else self.signs.astype(dtype),
            row_weights=self.row_weights.astype(dtype),
            features=self.features.astype(dtype),
        )

    def aslinearoperator(self):
        """A :class:`scipy.sparse.linalg.LinearOperator` on flattened arrays.

        Returns
        -------
        operator : scipy.sparse.linalg.LinearOperator
            Maps ``W.ravel()`` to ``forward(W).ravel()``.
        """
        n, C = self.n_samples, self.n_outputs

        def matvec(w):
            return self.forward(np.asarray(w).reshape(self.coef_shape)).ravel()

        def rmatvec(r):
            return self.adjoint(np.asarray(r).reshape(n, C)).ravel()

        return LinearOperator(
            (n * C, int(np.prod(self.coef_shape))), matvec=matvec, rmatvec=rmatvec, dtype=self.dtype
        )

    def explicit(self):
        """The explicit per-output design (pooled features) as a sparse matrix.

        Returns
        -------
        B : scipy.sparse.csr_array of shape (n_samples, n_blocks * patch_size)
            Pattern-major columns: column ``b * patch_size + k`` is
            ``features[:, k, b]``, so that output ``c`` equals
            ``B @ W[:, :, c].T.ravel()`` (the layout of
            :meth:`~skconvex.programs.operators.PatternOperator.explicit`).
        """
        h, B, _ = self.coef_shape
        check_memory(
            12 * self.n_samples * h * B,
            what=f"An explicit design with {self.n_samples * h * B} entries",
            lower="n_arrangements",
        )
        dense = np.asarray(self.features, dtype=np.float64).transpose(0, 2, 1).reshape(self.n_samples, B * h)
        return sp.csr_array(dense)
