"""Hyperplane arrangements: gates and the activation patterns they induce.

A gate :math:`g \\in \\mathbb{R}^d` splits the training rows by the sign of
:math:`x_j^\\top g`; the resulting 0/1 vector :math:`D(g) = 1[Xg \\ge 0]` is an
*activation pattern*. The convex reformulations of Pilanci & Ergen (2020) have
one block of variables per distinct pattern, so sampling, deduplicating and
storing patterns is the first step of every model in the package.
"""

from dataclasses import dataclass

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.parallel import Parallel, delayed

from ._config import check_memory

__all__ = ["Arrangements", "sample_arrangements", "compute_patterns"]


@dataclass(frozen=True)
class Arrangements:
    """Result of :func:`sample_arrangements`.

    Attributes
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
        """Boolean patterns of shape (n_samples, n_patterns)."""
        if not self.packed:
            return self.patterns
        return np.unpackbits(self.patterns, axis=0, count=n_samples).astype(bool)


def _gaussian_gates(rng, n_features, size, dtype):
    return rng.standard_normal((n_features, size)).astype(dtype, copy=False)


# One entry per kind of gate distribution. Each returns gates of shape
# (n_features, size); new kinds (convolutional windows, sub-networks, ...) are
# registered here so that every kind shares seeding, batching and deduplication.
_GATE_SAMPLERS = {"gaussian": _gaussian_gates}


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


def _sample_batch(X, seed, size, kind, support):
    """Draw one batch of gates and return them with their packed patterns."""
    rng = np.random.default_rng(seed)
    gates = _GATE_SAMPLERS[kind](rng, X.shape[1], size, X.dtype)
    patterns = compute_patterns(X, gates)
    keys = patterns if support is None else patterns[support]
    return gates, np.packbits(patterns, axis=0), np.packbits(keys, axis=0)


def _seed_sequence(random_state):
    """A SeedSequence from a scikit-learn style ``random_state``."""
    if random_state is None:
        return np.random.SeedSequence()
    if isinstance(random_state, (int, np.integer)):
        return np.random.SeedSequence(int(random_state))
    rng = check_random_state(random_state)
    return np.random.SeedSequence(rng.randint(0, 2**31 - 1, size=4).tolist())


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
    X : ndarray of shape (n_samples, n_features)
        Data, with a ones column appended if the neurons carry a bias.
    n_arrangements : int
        Number of gates to draw. At most this many distinct patterns result.
    kind : {"gaussian"}, default="gaussian"
        Distribution of the gates: ``"gaussian"`` draws :math:`g \\sim N(0, I)`.
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

    Returns
    -------
    arrangements : Arrangements
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
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D, got an array of shape {X.shape}.")
    if not np.issubdtype(X.dtype, np.floating):
        X = X.astype(np.float64)
    if kind not in _GATE_SAMPLERS:
        raise ValueError(
            f"kind must be one of {sorted(_GATE_SAMPLERS)}, got {kind!r}."
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

    # Packed patterns of every drawn gate, then the unpacked kept ones.
    n_packed_rows = -(-n_samples // 8)
    check_memory(
        2 * n_packed_rows * n_arrangements
        + n_samples * n_arrangements
        + min(batch_size, n_arrangements) * n_samples * (X.itemsize + 1),
        what=f"Activation patterns for {n_samples} samples and {n_arrangements} gates",
        lower="n_arrangements",
    )

    n_batches = -(-n_arrangements // batch_size)
    sizes = [batch_size] * (n_batches - 1) + [n_arrangements - batch_size * (n_batches - 1)]
    seeds = _seed_sequence(random_state).spawn(n_batches)
    results = Parallel(n_jobs=n_jobs, prefer="threads")(
        delayed(_sample_batch)(X, seed, size, kind, support)
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
