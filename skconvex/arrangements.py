"""Hyperplane arrangements: gates and the activation patterns they induce.

A gate :math:`g \\in \\mathbb{R}^d` splits the training rows by the sign of
:math:`x_j^\\top g`; the resulting 0/1 vector :math:`D(g) = 1[Xg \\ge 0]` is an
*activation pattern*. The convex reformulations of Pilanci & Ergen (2020) have
one block of variables per distinct pattern, so sampling, deduplicating and
storing patterns is the first step of every model in the package.
"""

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.utils.parallel import Parallel, delayed

from ._config import check_memory
from .programs._chunks import row_batches, seed_sequence, unique_columns

__all__ = [
    "Arrangements",
    "SubnetworkArrangements",
    "sample_arrangements",
    "compute_patterns",
    "compute_subnetwork_patterns",
    "enumerate_arrangements",
    "propose_gates",
    "sample_subnetworks",
]


@dataclass(frozen=True)
class Arrangements:
    """Result of :func:`sample_arrangements`.

    Parameters
    ----------
    gates : ndarray of shape (n_features, n_patterns)
        One gate per distinct pattern, the first sampled gate that produced it.
    patterns : ndarray of shape (n_samples, n_patterns) or (ceil(n_samples / 8), n_patterns)
        Boolean patterns ``X @ gates >= 0``, or the same packed along axis 0
        with :func:`numpy.packbits` when ``packed`` is True.
    n_sampled : int
        Number of gates drawn.
    gate_index : ndarray of shape (n_patterns,)
        Index, in drawing order, of the gate kept for each pattern.
    packed : bool
        Whether ``patterns`` is bit-packed.
    """

    gates: np.ndarray
    patterns: np.ndarray
    n_sampled: int
    gate_index: np.ndarray
    packed: bool = False

    @property
    def n_patterns(self):
        """Number of distinct non-zero patterns found."""
        return self.gates.shape[1]

    def unpacked(self, n_samples):
        """Return the patterns as booleans.

        Parameters
        ----------
        n_samples : int
            Number of rows of the data (packing pads to a multiple of 8).

        Returns
        -------
        patterns : ndarray of shape (n_samples, n_patterns), dtype bool
            Unpacked patterns.
        """
        if not self.packed:
            return self.patterns
        return np.unpackbits(self.patterns, axis=0, count=n_samples).astype(bool)


def _gaussian_gates(rng, n_features, size, dtype):
    return rng.standard_normal((n_features, size)).astype(dtype, copy=False)


def _conv_gates(rng, n_features, size, dtype, *, image_shape, n_channels=1, window=(3, 3)):
    """Dense gates on ``(H, W, C)`` images, Gaussian on a random ``window`` and zero elsewhere.

    A last coordinate beyond ``H * W * C`` (the ones column of neurons with a
    bias) gets a Gaussian entry too.
    """
    (H, W), C = image_shape, n_channels
    kh, kw = min(window[0], H), min(window[1], W)
    top = rng.integers(0, H - kh + 1, size)
    left = rng.integers(0, W - kw + 1, size)
    images = np.zeros((size, H, W, C), dtype=dtype)
    rows = (top[:, None] + np.arange(kh))[:, :, None]
    cols = (left[:, None] + np.arange(kw))[:, None, :]
    images[np.arange(size)[:, None, None], rows, cols] = rng.standard_normal((size, kh, kw, C))
    gates = images.reshape(size, H * W * C).T
    if n_features == H * W * C + 1:
        gates = np.vstack([gates, rng.standard_normal((1, size)).astype(dtype)])
    elif n_features != H * W * C:
        raise ValueError(
            f"kind='conv' gates for images {image_shape} with {C} channel(s) have "
            f"{H * W * C} (+1) entries, but X has {n_features} columns."
        )
    return np.ascontiguousarray(gates)


# One entry per kind of gate distribution. Each returns gates of shape
# (n_features, size); new kinds (convolutional windows, sub-networks, ...) are
# registered here so that every kind shares seeding, batching and deduplication.
# Samplers may take keyword parameters, passed as ``gate_params``.
_GATE_SAMPLERS = {"gaussian": _gaussian_gates, "patch": _gaussian_gates, "conv": _conv_gates}


def compute_patterns(X, gates, *, packed=False):
    """Activation patterns ``X @ gates >= 0``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Data (including a ones column when the gates act on an augmented input).
    gates : ndarray of shape (n_features, n_gates)
        Gates.
    packed : bool, default=False
        Return the patterns bit-packed along axis 0.

    Returns
    -------
    patterns : ndarray of shape (n_samples, n_gates), dtype bool
        Or of shape (ceil(n_samples / 8), n_gates), dtype uint8, if ``packed``.
    """
    patterns = (X @ gates) >= 0
    if packed:
        return np.packbits(patterns, axis=0)
    return patterns


def _sample_batch(X, seed, size, kind, support, gate_params=None, row_block_size=None):
    """Draw one batch of gates and return them with their packed patterns."""
    rng = np.random.default_rng(seed)
    gates = _GATE_SAMPLERS[kind](rng, X.shape[1], size, X.dtype, **(gate_params or {}))
    if row_block_size is None:
        patterns = compute_patterns(X, gates)
        keys = patterns if support is None else patterns[support]
        return gates, np.packbits(patterns, axis=0), np.packbits(keys, axis=0)
    # Row blocks (a multiple of 8 rows) are packed one at a time, so no
    # unpacked n x size array exists; the packed blocks concatenate exactly.
    # Keys only need to tell patterns apart, so packing them per block (with
    # padding bits inside) is as good as packing them whole.
    packed, keys = [], []
    for rows in row_batches(X.shape[0], row_block_size):
        block = compute_patterns(X[rows], gates)
        packed.append(np.packbits(block, axis=0))
        keys.append(packed[-1] if support is None else np.packbits(block[support[rows]], axis=0))
    return gates, np.concatenate(packed, axis=0), np.concatenate(keys, axis=0)


def _stack_patches(X, sample_weight):
    """Rows of the stacked patch matrix (sample-major) and the row weights of ``kind="patch"``."""
    if X.ndim != 3:
        raise ValueError(
            "kind='patch' needs X of shape (n_samples, n_patches, patch_size), got an "
            f"array of shape {X.shape}."
        )
    n, K, h = X.shape
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight)
        if sample_weight.shape != (n,):
            raise ValueError(f"sample_weight must have shape ({n},), got {sample_weight.shape}.")
        sample_weight = np.repeat(sample_weight, K)
    return X.reshape(n * K, h), sample_weight


def _first_unique_columns(keys):
    """Indices of the first occurrence of each distinct column of ``keys``."""
    rows = np.ascontiguousarray(keys.T)
    if rows.shape[1] == 0:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=bool)
    as_void = rows.view(np.dtype((np.void, rows.shape[1]))).ravel()
    _, first = np.unique(as_void, return_index=True)
    first = np.sort(first)
    nonzero = rows[first].any(axis=1)
    return first, nonzero


def sample_arrangements(
    X,
    n_arrangements,
    *,
    kind="gaussian",
    sample_weight=None,
    batch_size=256,
    packed=False,
    n_jobs=None,
    random_state=None,
    depth=3,
    width=2,
    gate_params=None,
    row_block_size=None,
):
    """Sample gates and deduplicate the activation patterns they induce.

    Gates :math:`g_k` are drawn in batches; pattern :math:`k` is
    :math:`D_k = 1[X g_k \\ge 0]`. Patterns that repeat an earlier one, and the
    all-zero pattern (a neuron that never fires contributes nothing), are
    dropped, keeping the first gate that produced each pattern, so the result
    is deterministic. This is the sampled arrangement of Pilanci & Ergen
    (2020), Section 3 ("sampling hyperplane arrangements").

    Each batch gets its own generator from
    ``np.random.SeedSequence(random_state).spawn(n_batches)``, so the result is
    identical for any ``n_jobs`` and any joblib backend (``dask`` included).

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_samples, n_features) or (n_samples, n_patches, patch_size)
        Data, with a ones column appended if the neurons carry a bias; for
        ``kind="patch"`` the patches of every sample (see
        :func:`skconvex.programs.patches.extract_patches`). Sparse matrices
        and arrays (``kind="gaussian"`` or ``"conv"``) stay sparse: patterns
        come from the product ``X @ gates``.
    n_arrangements : int
        Number of gates to draw. At most this many distinct patterns result.
    kind : {"gaussian", "patch", "conv", "exhaustive", "subnetwork"}, default="gaussian"
        Distribution of the gates: ``"gaussian"`` draws :math:`g \\sim N(0, I)`.
        ``"patch"`` draws Gaussian filters :math:`g \\in \\mathbb{R}^{h}` for
        3-D ``X`` of patches: one filter gives one pattern jointly over all
        patches of all samples, with one row per (sample, patch) pair
        (sample-major), the arrangement of the stacked patch matrix of
        convolutional networks (Ergen & Pilanci, 2021). ``"conv"`` draws
        dense gates on images that are Gaussian on a random local window and
        zero elsewhere (the "convolutional gates" of Pilanci & Ergen's code);
        it needs ``gate_params={"image_shape": (H, W), "n_channels": C,
        "window": (kh, kw)}``.
        ``"exhaustive"`` draws nothing: it returns every cell of the
        arrangement (:func:`enumerate_arrangements`) and raises
        ``ValueError`` when there may be more than ``n_arrangements``.
        ``"subnetwork"`` draws random ReLU sub-networks (two or more levels
        of patterns, for networks deeper than two layers) and returns a
        :class:`SubnetworkArrangements`; ``n_arrangements`` is then the
        number of sub-networks, or a pair ``(n_first, n_subnetworks)`` that
        also draws ``n_first`` extra first-level Gaussian gates. See
        :func:`sample_subnetworks`.
    sample_weight : array-like of shape (n_samples,), default=None
        Rows with zero weight are ignored when deciding whether two patterns
        are the same (they do not change the training objective), which makes
        fits with zero weights equal to fits without those rows.
    batch_size : int, default=256
        Gates per batch (the unit of parallel work and of seeding).
    packed : bool, default=False
        Return bit-packed patterns (8x less memory).
    n_jobs : int, default=None
        Number of parallel jobs through :class:`sklearn.utils.parallel.Parallel`;
        threads are preferred because the work is a BLAS product.
    random_state : int, RandomState instance or None, default=None
        Seed of the gates.
    depth : int, default=3
        Only for ``kind="subnetwork"``: number of weight layers of the
        sampled sub-networks (see :func:`sample_subnetworks`).
    width : int, default=2
        Only for ``kind="subnetwork"``: children per hidden node.
    gate_params : dict, default=None
        Keyword parameters of the gate sampler (``kind="conv"``).
    row_block_size : int, default=None
        Only for ``kind="gaussian"`` or ``"conv"`` with ``packed=True``:
        compute and pack the patterns this many rows at a time (rounded up
        to a multiple of 8), so that no unpacked ``n_samples x batch_size``
        array exists; the gates (and so the result) are the same as
        without it.

    Returns
    -------
    arrangements : Arrangements or SubnetworkArrangements
        Gates, patterns, and the number of gates drawn (``n_sampled``); the
        number of distinct patterns is ``arrangements.n_patterns``.

    Raises
    ------
    MemoryBudgetError
        If the patterns would not fit in the memory budget (lower
        ``n_arrangements``).

    References
    ----------
    M. Pilanci and T. Ergen. Neural networks are convex regularizers: exact
    polynomial-time convex optimization formulations for two-layer networks.
    ICML 2020, arXiv:2002.10553.

    Examples
    --------
    >>> import numpy as np
    >>> from skconvex import sample_arrangements
    >>> X = np.random.default_rng(0).standard_normal((20, 3))
    >>> arr = sample_arrangements(X, 50, random_state=0)
    >>> arr.gates.shape[0], arr.patterns.shape[0]
    (3, 20)
    """
    if sp.issparse(X):
        # Patterns come from the sparse product X @ gates; X stays sparse.
        if kind not in ("gaussian", "conv"):
            raise ValueError(f"kind={kind!r} needs dense X; got a sparse matrix.")
        X = sp.csr_array(X)
    else:
        X = np.asarray(X)
    if kind == "patch":
        X, sample_weight = _stack_patches(X, sample_weight)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D, got an array of shape {X.shape}.")
    if not np.issubdtype(X.dtype, np.floating):
        X = X.astype(np.float64)
    if kind == "conv" and not gate_params:
        raise ValueError(
            "kind='conv' needs gate_params={'image_shape': (H, W), 'n_channels': C, "
            "'window': (kh, kw)}."
        )
    if kind == "exhaustive":
        if int(n_arrangements) != n_arrangements or n_arrangements < 1:
            raise ValueError(
                f"n_arrangements must be a positive integer, got {n_arrangements!r}."
            )
        return enumerate_arrangements(
            X, sample_weight=sample_weight, max_patterns=int(n_arrangements),
            packed=packed, budget_name="n_arrangements",
        )
    if kind == "subnetwork":
        n_first, n_sub = _split_levels(n_arrangements)
        return sample_subnetworks(
            X, n_sub, n_first=n_first, depth=depth, width=width,
            sample_weight=sample_weight, batch_size=batch_size, n_jobs=n_jobs,
            random_state=random_state,
        )
    if kind not in _GATE_SAMPLERS:
        raise ValueError(
            f"kind must be one of {sorted(_GATE_SAMPLERS) + ['exhaustive', 'subnetwork']}, "
            f"got {kind!r}."
        )
    if int(n_arrangements) != n_arrangements or n_arrangements < 1:
        raise ValueError(
            f"n_arrangements must be a positive integer, got {n_arrangements!r}."
        )
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    n_arrangements, batch_size = int(n_arrangements), int(batch_size)
    n_samples, n_features = X.shape

    support = None
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight)
        if sample_weight.shape != (n_samples,):
            raise ValueError(
                f"sample_weight must have shape ({n_samples},), got "
                f"{sample_weight.shape}."
            )
        if not np.all(sample_weight > 0):
            support = sample_weight > 0

    if row_block_size is not None:
        if not packed:
            raise ValueError("row_block_size needs packed=True (unpacked patterns are n_samples x n_patterns).")
        if int(row_block_size) != row_block_size or row_block_size < 1:
            raise ValueError(f"row_block_size must be a positive integer, got {row_block_size!r}.")
        row_block_size = -(-int(row_block_size) // 8) * 8
    # Packed patterns of every drawn gate, then the unpacked kept ones
    # (unless they stay packed), and one batch's product and booleans.
    n_packed_rows = -(-n_samples // 8)
    rows = n_samples if row_block_size is None else min(row_block_size, n_samples)
    check_memory(
        2 * n_packed_rows * n_arrangements
        + (0 if packed else n_samples * n_arrangements)
        + min(batch_size, n_arrangements) * rows * (X.dtype.itemsize + 1),
        what=f"Activation patterns for {n_samples} samples and {n_arrangements} gates",
        lower="n_arrangements",
    )

    n_batches = -(-n_arrangements // batch_size)
    sizes = [batch_size] * (n_batches - 1) + [n_arrangements - batch_size * (n_batches - 1)]
    seeds = seed_sequence(random_state).spawn(n_batches)
    results = Parallel(n_jobs=n_jobs, prefer="threads")(
        delayed(_sample_batch)(X, seed, size, kind, support, gate_params, row_block_size)
        for seed, size in zip(seeds, sizes)
    )
    gates = np.concatenate([r[0] for r in results], axis=1)
    patterns = np.concatenate([r[1] for r in results], axis=1)
    keys = np.concatenate([r[2] for r in results], axis=1)
    del results

    first, nonzero = _first_unique_columns(keys)
    keep = first[nonzero]
    patterns = np.ascontiguousarray(patterns[:, keep])
    if not packed:
        patterns = np.unpackbits(patterns, axis=0, count=n_samples).astype(bool)
    return Arrangements(
        gates=np.ascontiguousarray(gates[:, keep]),
        patterns=patterns,
        n_sampled=n_arrangements,
        gate_index=keep,
        packed=packed,
    )


def enumerate_arrangements(
    X, *, sample_weight=None, max_patterns=None, packed=False, tol=1e-9, budget_name="max_patterns"
):
    """Every activation pattern of ``X``: one gate inside each cell of its arrangement.

    The hyperplanes :math:`x_j^\\top g = 0` cut :math:`\\mathbb{R}^d` into
    cells on which :math:`1[Xg \\ge 0]` is constant. For data of rank
    :math:`r` there are at most :math:`2\\sum_{k<r}\\binom{n-1}{k}` of them
    (Cover, 1965), so for small rank (1-D inputs with a bias, 2-D inputs,
    rank :math:`\\le 2` data, or tiny data sets) all of them can be listed,
    and the convex programs built on them are exact for the unsampled
    training problem (Pilanci & Ergen, 2020). Each cell is found from one of
    its extreme rays (an intersection of :math:`r-1` hyperplanes) and the
    local arrangement around it; degenerate data (repeated points, points on
    a common hyperplane) are handled. See ``skconvex.programs._geometry``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Data, with a ones column appended if the neurons carry a bias.
    sample_weight : array-like of shape (n_samples,), default=None
        Rows with zero weight do not define hyperplanes (they do not change the
        training objective).
    max_patterns : int, default=None
        Refuse (``ValueError``) data whose arrangement may have more cells
        than this (the bound above, computed before enumerating).
    packed : bool, default=False
        Return bit-packed patterns.
    tol : float, default=1e-9
        Geometric tolerance: a unit row whose inner product with a unit ray is
        below ``tol`` is taken to contain it.
    budget_name : str, default="max_patterns"
        Name of the budget in the error message.

    Returns
    -------
    arrangements : Arrangements
        ``gates`` holds one point inside each cell, ``patterns`` the cells'
        patterns ``X @ gates >= 0`` (the all-zero pattern excluded) and
        ``n_sampled`` the number of candidate points examined.

    Raises
    ------
    ValueError
        If the number of cells may exceed ``max_patterns``.

    References
    ----------
    T. M. Cover. Geometrical and statistical properties of systems of linear
    inequalities with applications in pattern recognition. IEEE Trans.
    Electronic Computers, 1965.

    M. Pilanci and T. Ergen. Neural networks are convex regularizers. ICML
    2020, arXiv:2002.10553.

    Examples
    --------
    >>> import numpy as np
    >>> from skconvex import enumerate_arrangements
    >>> x = np.random.default_rng(0).standard_normal(10)
    >>> arr = enumerate_arrangements(np.c_[x, np.ones(10)])
    >>> arr.n_patterns  # 2 * 10 cells, less the one where no neuron fires
    19
    """
    from .programs._geometry import (
        _unit_hyperplanes,
        cell_points,
        count_cells_bound,
        row_space,
    )

    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D, got an array of shape {X.shape}.")
    if not np.issubdtype(X.dtype, np.floating):
        X = X.astype(np.float64)
    n_samples, n_features = X.shape
    support = np.ones(n_samples, dtype=bool)
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight)
        if sample_weight.shape != (n_samples,):
            raise ValueError(
                f"sample_weight must have shape ({n_samples},), got {sample_weight.shape}."
            )
        support = sample_weight > 0
    basis, Z = row_space(X[support].astype(np.float64))
    rank = Z.shape[1]
    if rank == 0:
        points = np.eye(n_features, 1)
    else:
        m = len(_unit_hyperplanes(Z, tol))
        bound = count_cells_bound(m, rank)
        if max_patterns is not None and bound > max_patterns:
            raise ValueError(
                f"The arrangement of {m} distinct hyperplanes of rank {rank} may have "
                f"up to {bound} cells, more than {budget_name}={max_patterns}; raise "
                f"{budget_name} or sample the arrangements instead."
            )
        check_memory(
            bound * (n_samples // 8 + 1 + 8 * n_features) + n_samples * 2 * bound,
            what=f"The {bound} cells of the arrangement",
            lower=f"{budget_name} (or use sampled arrangements)",
        )
        points = basis @ cell_points(Z, tol=tol)
    gates = points.astype(X.dtype, copy=False)
    patterns = compute_patterns(X, gates)
    keys = np.packbits(patterns[support], axis=0)
    first, nonzero = _first_unique_columns(keys)
    keep = first[nonzero]
    patterns = np.ascontiguousarray(patterns[:, keep])
    if packed:
        patterns = np.packbits(patterns, axis=0)
    return Arrangements(
        gates=np.ascontiguousarray(gates[:, keep]),
        patterns=patterns,
        n_sampled=points.shape[1],
        gate_index=keep,
        packed=packed,
    )



def _dense_rows(X, rows):
    """Rows of ``X`` (dense or sparse) as a dense float64 array."""
    sub = X[rows]
    return np.asarray(sub.toarray() if sp.issparse(sub) else sub, dtype=np.float64)


def _unit_columns(U):
    norms = np.linalg.norm(U, axis=0)
    norms[norms == 0] = 1.0
    return U / norms


def _ascend(X, theta, U, n_steps):
    """Ascent steps on :math:`\\|\\Theta^\\top (Xu)_+\\|` for every column of ``U`` at once.

    The gradient of that objective at ``u`` is :math:`X^\\top D(u)\\Theta c`
    with :math:`c = \\Theta^\\top (Xu)_+ / \\|\\cdot\\|`; stepping to it (a
    power iteration) moves the gate towards the pattern whose dual constraint
    is most violated near it. Two GEMMs with ``X`` per step, vectorized over
    the candidates.
    """
    for _ in range(n_steps):
        H = np.asarray(X @ U)
        A = np.maximum(H, 0.0)
        c = theta.T @ A  # (C, k)
        V = np.asarray(X.T @ ((H >= 0) * (theta @ c)))
        dead = ~np.any(V, axis=0)
        V[:, dead] = U[:, dead]
        U = _unit_columns(V)
    return U


def _pair_offsets(qa, qb, a, b, sides):
    """Directions ``v`` with ``a^T v = sides[0]`` and ``b^T v = sides[1]`` for every pair.

    ``qa, qb`` is an orthonormal basis of each pair's span: ``v = s qa + t
    qb`` solves the 2 x 2 system of the two points' coordinates. A pair whose
    second point adds no direction (``qb = 0``: no bias, or repeated points)
    gets ``v = sides[0] a / ||a||^2``.
    """
    sa, sb = sides
    a1, a2 = np.sum(qa * a, axis=0), np.sum(qb * a, axis=0)
    b1, b2 = np.sum(qa * b, axis=0), np.sum(qb * b, axis=0)
    det = a1 * b2 - a2 * b1
    ok = np.abs(det) > 1e-12 * (np.abs(a1 * b2) + np.abs(a2 * b1) + 1e-300)
    safe = np.where(ok, det, 1.0)
    s = np.where(ok, (sa * b2 - sb * a2) / safe, sa / np.where(a1 != 0, a1, 1.0))
    t = np.where(ok, (sb * a1 - sa * b1) / safe, 0.0)
    return qa * s + qb * t


def propose_gates(
    X,
    theta,
    *,
    seeds=None,
    n_random=100,
    n_pairs=100,
    n_perturb=2,
    scale=0.3,
    n_ascent=2,
    bias=False,
    support=None,
    random_state=None,
):
    """Candidate gates for growing an arrangement where the dual says it pays.

    At a solution of a program over some activation patterns, a pattern not
    in the program lowers the objective when its dual constraint is violated
    (:func:`skconvex.programs.oracles.gated_dual_norms`,
    :func:`skconvex.programs.oracles.relu_dual_norm`). This proposes gates
    likely to violate it:

    * ``seeds`` (the active neurons' own weights) and ``n_perturb`` Gaussian
      perturbations of each (relative size ``scale``): patterns next to those
      the solution uses;
    * ``n_pairs`` hyperplanes through two random training points (a random
      direction projected orthogonally to both augmented points, when
      ``bias``), each shifted into the eight cells around it (both signs,
      each point active or not): the data-anchored gates that Gaussian gates in
      many dimensions rarely produce, since their hyperplanes all pass near
      the origin;
    * ``n_random`` Gaussian gates;

    then every candidate is refined by ``n_ascent`` ascent steps on
    :math:`\\|\\Theta^\\top (Xu)_+\\|` (the dual objective of a ReLU neuron with
    direction ``u``), and both the raw and the refined candidates are
    returned. Everything is vectorized over candidates.

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
        Data the gates act on (with a ones column last when ``bias``).
    theta : ndarray of shape (n_samples, n_outputs)
        Dual point (the negative gradient of the datafit).
    seeds : ndarray of shape (n_features, n_seeds), default=None
        Directions to perturb (e.g. active neurons' weights).
    n_random : int, default=100
        Number of Gaussian gates.
    n_pairs : int, default=100
        Number of hyperplanes through pairs of training points.
    n_perturb : int, default=2
        Perturbations per seed.
    scale : float, default=0.3
        Size of the perturbations relative to the seed's norm.
    n_ascent : int, default=2
        Ascent steps applied to every candidate.
    bias : bool, default=False
        Whether the last column of ``X`` is the ones column (a hyperplane
        then goes through points, not only through directions).
    support : ndarray of shape (n_samples,), dtype bool, default=None
        Rows that may anchor hyperplanes (those with positive weight).
    random_state : int, RandomState instance, Generator or None, default=None
        Seed of the random parts.

    Returns
    -------
    gates : ndarray of shape (n_features, n_candidates)
        Unit candidate gates (raw first, then refined), float64.

    Examples
    --------
    >>> import numpy as np
    >>> from skconvex import propose_gates
    >>> rng = np.random.default_rng(0)
    >>> X = np.c_[rng.standard_normal((30, 2)), np.ones(30)]
    >>> U = propose_gates(X, rng.standard_normal((30, 1)), n_random=5, n_pairs=5,
    ...                   bias=True, random_state=0)
    >>> U.shape
    (3, 90)
    """
    rng = (
        random_state
        if isinstance(random_state, np.random.Generator)
        else np.random.default_rng(seed_sequence(random_state))
    )
    n, d = X.shape
    theta = np.asarray(theta, dtype=np.float64).reshape(n, -1)
    parts = [_unit_columns(rng.standard_normal((d, int(n_random))))]
    if seeds is not None and seeds.shape[1]:
        S = _unit_columns(np.asarray(seeds, dtype=np.float64))
        noise = rng.standard_normal((d, S.shape[1] * int(n_perturb))) * (scale / np.sqrt(d))
        parts += [S, _unit_columns(np.repeat(S, int(n_perturb), axis=1) + noise)]
    rows = np.flatnonzero(np.ones(n, dtype=bool) if support is None else support)
    if n_pairs and rows.size >= 2:
        idx = rows[rng.integers(0, rows.size, size=(2, int(n_pairs)))]
        a, b = _dense_rows(X, idx[0]).T, _dense_rows(X, idx[1]).T  # (d, k)
        if not bias:
            # Without a bias column every hyperplane contains the origin:
            # the best one can do is pass through the first point.
            b = np.zeros_like(b)
        # Gram-Schmidt of (a, b) column by column, then a random direction
        # with its components along both removed.
        qa = _unit_columns(a)
        b_raw = b
        b = b - qa * np.sum(qa * b, axis=0)
        qb = _unit_columns(b) * (np.linalg.norm(b, axis=0) > 1e-12 * np.linalg.norm(a, axis=0))
        R = rng.standard_normal((d, int(n_pairs)))
        R -= qa * np.sum(qa * R, axis=0) + qb * np.sum(qb * R, axis=0)
        # Both points lie on that hyperplane, where the pattern is ambiguous
        # (rounding decides). Shifting it by a small multiple of a direction
        # v with a^T v = +-1, b^T v = +-1 puts each point on a chosen side:
        # the hyperplane's sign and the shifts give the eight cells around
        # the two rays +-R (all of them when the gates live in 3-D).
        row_norms = np.sqrt(np.asarray((X.multiply(X) if sp.issparse(X) else X * X).sum(axis=1)).ravel())
        H = np.asarray(X @ R)
        tie = np.abs(H) <= 1e-9 * row_norms[:, None] * np.linalg.norm(R, axis=0)
        for sides in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
            V = _pair_offsets(qa, qb, a, b_raw, sides)
            HV = np.asarray(X @ V)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(tie | (HV == 0), np.inf, np.abs(H) / np.abs(HV))
            # Half the distance to the nearest other row keeps every other
            # row on its side.
            eps = 0.5 * ratio.min(axis=0)
            eps[~np.isfinite(eps)] = 1.0
            parts += [_unit_columns(R + eps * V), _unit_columns(-R + eps * V)]
    U = np.concatenate(parts, axis=1)
    if n_ascent:
        U = np.concatenate([U, _ascend(X, theta, U, int(n_ascent))], axis=1)
    return U

# ---------------------------------------------------------------------------
# Sub-network (multi-level) arrangements: deeper networks
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SubnetworkArrangements:
    """Result of :func:`sample_subnetworks` (``kind="subnetwork"``).

    A sampled sub-network is a random ReLU tree: ``n_leaves`` first-layer
    units feed, ``width`` at a time, the nodes of the next layer, and so on
    up to one top node (its last hidden unit). Level 1 holds the leaves and
    level ``depth - 1`` the top node.

    Parameters
    ----------
    gates : ndarray of shape (n_features, n_first)
        First-level gates: one per distinct non-zero first-level pattern
        among the extra Gaussian gates and the leaves of the kept
        sub-networks, in that order.
    first_patterns : ndarray of shape (n_samples, n_first), dtype bool
        Their patterns ``X @ gates >= 0``.
    leaf_weights : ndarray of shape (n_subnetworks, n_leaves, n_features)
        First-layer weights of every kept sub-network.
    edge_weights : tuple of ndarray
        For each level ``k = 2, ..., depth - 1``, the weights of shape
        ``(n_subnetworks, width ** (depth - k))`` of the edges from the
        nodes of level ``k - 1`` to their parents (consecutive groups of
        ``width`` children share a parent).
    leaf_index : ndarray of shape (n_subnetworks, n_leaves), dtype int
        Column of ``gates`` whose pattern each leaf has (-1 for a leaf that
        is active on no row of positive weight).
    node_patterns : tuple of ndarray
        For each level ``k = 1, ..., depth - 1``, the boolean patterns of
        shape ``(n_samples, n_subnetworks, width ** (depth - 1 - k))`` of
        the nodes' pre-activations.
    patterns : ndarray of shape (n_samples, n_subnetworks), dtype bool
        Top-level patterns (the last entry of ``node_patterns``).
    n_sampled : int
        Number of sub-networks drawn.
    gate_index : ndarray of shape (n_subnetworks,)
        Index, in drawing order, of each kept sub-network.
    depth : int
        Number of weight layers of the sub-networks (output layer included).
    width : int
        Children per hidden node.
    """

    gates: np.ndarray
    first_patterns: np.ndarray
    leaf_weights: np.ndarray
    edge_weights: tuple
    leaf_index: np.ndarray
    node_patterns: tuple
    patterns: np.ndarray
    n_sampled: int
    gate_index: np.ndarray
    depth: int = 3
    width: int = 2

    @property
    def n_patterns(self):
        """Number of distinct sub-networks kept."""
        return self.patterns.shape[1]

    @property
    def n_first(self):
        """Number of distinct first-level patterns."""
        return self.gates.shape[1]

    @property
    def n_leaves(self):
        """Number of first-layer units of each sub-network."""
        return self.leaf_weights.shape[1]


def _split_levels(n_arrangements):
    """``(n_first, n_subnetworks)`` from an int or a pair."""
    if isinstance(n_arrangements, (tuple, list)):
        if len(n_arrangements) != 2:
            raise ValueError(
                "n_arrangements must be an int or a pair (n_first, n_subnetworks), "
                f"got {n_arrangements!r}."
            )
        n_first, n_sub = n_arrangements
    else:
        n_first, n_sub = 0, n_arrangements
    for name, value, low in (("n_first", n_first, 0), ("n_subnetworks", n_sub, 1)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise ValueError(
                f"n_arrangements: {name} must be an integer >= {low}, got {value!r}."
            )
    return int(n_first), int(n_sub)


def _subnetwork_pre_activations(X, leaf_weights, edge_weights, width):
    """Pre-activations of every node, level by level, each of shape (n, n_subnetworks, n_nodes)."""
    P, N1, d = leaf_weights.shape
    Z = (X @ leaf_weights.reshape(P * N1, d).T).reshape(X.shape[0], P, N1)
    levels = [Z]
    for w in edge_weights:
        A = np.maximum(levels[-1], 0) * w[None].astype(Z.dtype, copy=False)
        n, _, N = A.shape
        levels.append(A.reshape(n, P, N // width, width).sum(axis=3))
    return levels


def compute_subnetwork_patterns(X, leaf_weights, edge_weights):
    """Compute the patterns of every node of tree sub-networks on (new) data.

    Level 1 are the leaves :math:`1[X w_{1j} \\ge 0]`; a node of level
    :math:`k > 1` has the pattern of its pre-activation
    :math:`\\sum_{\\text{children } c} w_c\\,(z_c)_+`, where :math:`z_c` is the
    child's pre-activation.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Data (with the ones column when the leaves carry biases).
    leaf_weights : ndarray of shape (n_subnetworks, n_leaves, n_features)
        First-layer weights.
    edge_weights : tuple of ndarray
        Edge weights per level, as in :class:`SubnetworkArrangements`.

    Returns
    -------
    patterns : tuple of ndarray
        One boolean array of shape ``(n_samples, n_subnetworks, n_nodes)``
        per level ``1, ..., depth - 1``.
    """
    leaf_weights = np.asarray(leaf_weights)
    depth = len(edge_weights) + 2
    n_leaves = leaf_weights.shape[1]
    width = int(round(n_leaves ** (1.0 / (depth - 2)))) if depth > 2 else 1
    levels = _subnetwork_pre_activations(
        np.asarray(X), leaf_weights.astype(np.result_type(X, np.float32), copy=False),
        edge_weights, width,
    )
    return tuple(z >= 0 for z in levels)


# Further rounds of sub-networks drawn when no top node of a round is active.
_EXTRA_ROUNDS = 10


def _subnetwork_batch(X, seed, size, depth, width, support):
    """Draw one batch of random sub-networks; return them, their patterns and dedup keys."""
    rng = np.random.default_rng(seed)
    d = X.shape[1]
    leaves = rng.standard_normal((size, width ** (depth - 2), d)).astype(X.dtype)
    edges = tuple(
        rng.standard_normal((size, width ** (depth - k))).astype(X.dtype)
        for k in range(2, depth)
    )
    patterns = [z >= 0 for z in _subnetwork_pre_activations(X, leaves, edges, width)]
    rows = slice(None) if support is None else support
    # Two sub-networks are the same program group when every node pattern
    # (on rows of positive weight) and every edge sign agree.
    key = np.concatenate(
        [p[rows].transpose(0, 2, 1).reshape(-1, size) for p in patterns]
        + [(w > 0).T for w in edges],
        axis=0,
    )
    top_nonzero = patterns[-1][rows, :, 0].any(axis=0)
    return leaves, edges, patterns, np.packbits(key, axis=0), top_nonzero


def sample_subnetworks(
    X,
    n_subnetworks,
    *,
    n_first=0,
    depth=3,
    width=2,
    sample_weight=None,
    batch_size=256,
    n_jobs=None,
    random_state=None,
):
    """Sample random ReLU sub-networks and the multi-level patterns they induce.

    A sub-network of depth :math:`L` is a ReLU tree: :math:`m^{L-2}` leaves
    :math:`(x^\\top w_{1j})_+` (:math:`m` = ``width``), whose outputs are
    combined ``width`` at a time by the nodes of the next layer,
    :math:`z = \\sum_c w_c (z_c)_+`, up to one top node. Its patterns are the
    signs of every node's pre-activation on the training rows; for
    :math:`L = 3` these are the first-layer patterns :math:`D_{1j}` of its
    units and the second-layer pattern
    :math:`D_2 = 1[\\sum_j w_{2j}(Xw_{1j})_+ \\ge 0]`. These tuples index the
    groups of the convex programs of parallel three-layer and
    path-regularized networks (Ergen & Pilanci, 2021, 2023), which need
    feasible patterns at every level: sampling whole sub-networks gives
    exactly realizable ones, and each sampled sub-network is itself a
    feasible point of its group (used to restore feasibility).

    Sub-networks are drawn in batches, each from its own generator of
    ``np.random.SeedSequence(random_state).spawn(n_batches + 1)`` (the first
    child draws the extra first-level gates), so the result does not depend
    on ``n_jobs`` or the joblib backend. Duplicates (same patterns at every
    level and same edge signs on rows of positive weight) and sub-networks
    whose top node is active on no such row are dropped, keeping the first
    drawn. When that drops every sub-network of a draw (data with a few
    distinct rows), up to 10 further rounds of ``n_subnetworks`` are drawn
    from new children of the same seed sequence.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Data, with a ones column appended if the leaves carry a bias.
    n_subnetworks : int
        Number of sub-networks to draw.
    n_first : int, default=0
        Extra first-level Gaussian gates :math:`g \\sim N(0, I)` added to the
        leaves' gates in the first-level set (``gates``).
    depth : int, default=3
        Number of weight layers of a sub-network (output layer included),
        at least 3.
    width : int, default=2
        Children per hidden node (the leaves of a depth-3 sub-network).
    sample_weight : array-like of shape (n_samples,), default=None
        Rows with zero weight are ignored when deciding whether two patterns
        are the same.
    batch_size : int, default=256
        Sub-networks per batch (the unit of parallel work and of seeding).
    n_jobs : int, default=None
        Number of parallel jobs through :class:`sklearn.utils.parallel.Parallel`
        (threads).
    random_state : int, RandomState instance or None, default=None
        Seed.

    Returns
    -------
    arrangements : SubnetworkArrangements
        The kept sub-networks, their patterns at every level and the
        distinct first-level patterns.

    Raises
    ------
    ValueError
        If no sub-network of any round is active on a row of positive
        weight.

    References
    ----------
    T. Ergen and M. Pilanci. Global optimality beyond two layers: training
    deep ReLU networks via convex programs. ICML 2021, arXiv:2110.05518.

    T. Ergen and M. Pilanci. Path regularization: a convexity and sparsity
    inducing regularization for parallel ReLU networks. ICLR 2023,
    arXiv:2110.09548.

    Examples
    --------
    >>> import numpy as np
    >>> from skconvex.arrangements import sample_subnetworks
    >>> X = np.random.default_rng(0).standard_normal((30, 3))
    >>> arr = sample_subnetworks(X, 40, n_first=10, random_state=0)
    >>> arr.leaf_weights.shape[1:], arr.patterns.shape[0]
    ((2, 3), 30)
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D, got an array of shape {X.shape}.")
    if not np.issubdtype(X.dtype, np.floating):
        X = X.astype(np.float64)
    for name, value, low in (
        ("n_subnetworks", n_subnetworks, 1),
        ("n_first", n_first, 0),
        ("depth", depth, 3),
        ("width", width, 1),
        ("batch_size", batch_size, 1),
    ):
        if isinstance(value, bool) or int(value) != value or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
    n_subnetworks, n_first, depth, width, batch_size = map(
        int, (n_subnetworks, n_first, depth, width, batch_size)
    )
    n_samples, n_features = X.shape
    support = None
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight)
        if sample_weight.shape != (n_samples,):
            raise ValueError(
                f"sample_weight must have shape ({n_samples},), got {sample_weight.shape}."
            )
        if not np.all(sample_weight > 0):
            support = sample_weight > 0
    n_nodes = sum(width ** (depth - 1 - k) for k in range(1, depth))
    check_memory(
        n_samples * n_subnetworks * n_nodes * 2
        + n_samples * (n_first + n_subnetworks * width ** (depth - 2)) * 2
        + min(batch_size, n_subnetworks) * n_samples * n_nodes * X.itemsize,
        what=(
            f"Patterns of {n_subnetworks} sub-networks of depth {depth} on "
            f"{n_samples} samples"
        ),
        lower="n_arrangements",
    )

    n_batches = -(-n_subnetworks // batch_size)
    sizes = [batch_size] * (n_batches - 1) + [n_subnetworks - batch_size * (n_batches - 1)]
    sequence = seed_sequence(random_state)
    seeds = sequence.spawn(n_batches + 1)
    batch_seeds = seeds[1:]
    results = []
    for _ in range(1 + _EXTRA_ROUNDS):
        results += Parallel(n_jobs=n_jobs, prefer="threads")(
            delayed(_subnetwork_batch)(X, seed, size, depth, width, support)
            for seed, size in zip(batch_seeds, sizes)
        )
        if any(r[4].any() for r in results):
            break
        # Every top node was silent on the weighted rows (a few distinct
        # rows, e.g. scikit-learn's check data): the program would have no
        # column. Another round from new children of the same sequence keeps
        # the draw reproducible and leaves the first round as it was.
        batch_seeds = sequence.spawn(n_batches)
    else:
        raise ValueError(
            f"None of {sum(len(r[4]) for r in results)} sampled sub-networks is active on a "
            "sample of positive weight; the data may have too few distinct rows."
        )
    n_drawn = sum(len(r[4]) for r in results)
    leaves = np.concatenate([r[0] for r in results], axis=0)
    edges = tuple(
        np.concatenate([r[1][k] for r in results], axis=0) for k in range(depth - 2)
    )
    node_patterns = [
        np.concatenate([r[2][k] for r in results], axis=1) for k in range(depth - 1)
    ]
    keys = np.concatenate([r[3] for r in results], axis=1)
    top_nonzero = np.concatenate([r[4] for r in results])
    del results
    first, _ = _first_unique_columns(keys)
    keep = first[top_nonzero[first]]
    leaves = np.ascontiguousarray(leaves[keep])
    edges = tuple(np.ascontiguousarray(w[keep]) for w in edges)
    node_patterns = tuple(np.ascontiguousarray(p[:, keep]) for p in node_patterns)

    # First level: the extra Gaussian gates, then every leaf, deduplicated.
    extra = np.random.default_rng(seeds[0]).standard_normal((n_features, n_first)).astype(X.dtype)
    n_leaves = leaves.shape[1]
    cand_gates = np.concatenate([extra, leaves.reshape(-1, n_features).T], axis=1)
    cand_patterns = np.concatenate(
        [X @ extra >= 0, node_patterns[0].reshape(n_samples, -1)], axis=1
    )
    rows = slice(None) if support is None else support
    kept, position = unique_columns(np.packbits(cand_patterns[rows], axis=0))
    return SubnetworkArrangements(
        gates=np.ascontiguousarray(cand_gates[:, kept]),
        first_patterns=np.ascontiguousarray(cand_patterns[:, kept]),
        leaf_weights=leaves,
        edge_weights=edges,
        leaf_index=position[n_first:].reshape(len(keep), n_leaves),
        node_patterns=node_patterns,
        patterns=np.ascontiguousarray(node_patterns[-1][:, :, 0]),
        n_sampled=n_drawn,
        gate_index=keep,
        depth=depth,
        width=width,
    )
