"""Gated-ReLU networks solved on a dask cluster, the rows never leaving their workers.

When ``X`` is a dask array chunked by rows and a ``distributed.Client``
is active, :func:`dask_gated_regression` keeps every row block on the worker
that computed it, together with its activation masks (bit-packed, in a
:class:`~skconvex.programs.row_blocks.RowBlockOperator`), for the whole fit.
Each iteration broadcasts the ``d x P x C`` weights, and every block returns
only sums: the adjoint of its residuals :math:`X_k^\\top D_p (s \\odot r)`
(``d x P x C``) and a few scalars per output (:math:`\\sum s r`,
:math:`\\sum s r^2`, :math:`\\sum s r y`). For the squared error these
determine everything the solver needs, with the intercept minimized out:
with :math:`b = -\\sum s r / \\sum s`,

.. math:: F = \\tfrac12 \\textstyle\\sum s (r + b)^2
          = \\tfrac12 (S_2 + 2 b S_1 + b^2 S_0), \\qquad
          \\mathcal{A}^\\top (s \\odot (r + b)) = G_0 + b\\, \\mathcal{A}^\\top s,

and the duality-gap certificate of the group lasso (the scaled dual point
:math:`\\theta = -c\\, s \\odot (r + b)`, the same as
``ConvexProblem.dual_value`` builds in memory) needs only
:math:`\\sum s (r+b)^2` and :math:`\\sum s (r+b) y`. So the traffic of an
iteration is :math:`O(dPC)` per block, independent of ``n``; no ``n``-vector
crosses the network.

The solver is FISTA with gradient restarts on working sets of blocks, the
working sets of the in-memory solver: rounds on a working set cost in
proportion to its size, and a full round certifies the point and adds the
blocks whose dual norm violates. Each block keeps its predictions at the
iterate and at the momentum point between rounds, so a step is one forward
product, as in memory, and the round's sums give the datafit's remainder
(exact for the squared error, the in-memory bound for cross-entropies):
steps grow by 10 % per iteration and halve when the remainder exceeds the
step's quadratic term, as the in-memory FISTA's backtracking does, without
another round to test them. For the squared error the adjoint comes in the
same round; a classifier takes one Newton step on its intercept, then a
gradient round. Fits
with one output then end as the in-memory solve does, with Newton's method on
the support (:func:`~skconvex.solvers.support_newton.newton_on_support`)
once the relative gap is below 1e-2: for the squared error each
conjugate-gradient product is one round of the same sums without targets
(its curvature is the row weights); a classifier's gradient round also keeps
its datafit's curvature on the blocks for the products that follow. The
traffic stays :math:`O(dPC)` per block. The returned point's certificate is
recomputed in float64. If a worker dies, dask recomputes its
blocks from their lineage and the fit continues; if it cannot,
:class:`DaskSolveError` is raised (never an uncertified result).

Row weights (``sample_weight``) travel with their rows and stay on the
workers; the client only learns their sum. Classifiers
(:func:`dask_gated_classification`) have no closed-form intercept: each full
evaluation runs damped Newton steps on the intercept (``C`` gradient and
``C x C`` Hessian entries per block and round), then a gradient round and a
round for the row-separable dual objective, so the certificate is the one
``ConvexProblem`` computes in memory; inner iterations take one Newton step.

A warm start passes the previous ``gates`` (then none are drawn) and
``coef_init``, the first iterate of the solve (and, for classifiers, the
first intercept of its Newton steps).

Gates are drawn exactly as :func:`~skconvex.arrangements.sample_arrangements`
draws them (same seeds, batches and deduplication), with duplicates found
from per-block hashes of the patterns, so a fit on the cluster uses the gates
of the in-memory fit with the same ``random_state``.
"""

import hashlib
import sys
import time
from typing import Protocol

import numpy as np

from .programs._chunks import seed_sequence
from .programs.row_blocks import RowBlockOperator, packed_patterns
from .solvers._result import SolveResult
from .solvers.support_newton import newton_on_support

__all__ = ["DaskSolveError", "active_client", "dask_gated_classification", "dask_gated_regression", "is_dask_array"]


class DaskSolveError(RuntimeError):
    """Raised when a solve on a dask cluster loses data it cannot recompute."""


def is_dask_array(X):
    """Whether ``X`` is a dask array.

    Parameters
    ----------
    X : object
        Anything.

    Returns
    -------
    is_dask : bool
        True for a ``dask.array.Array``.
    """
    # An object can only be a dask array once dask.array has been imported;
    # importing it here would cost every first fit of a process half a second.
    da = sys.modules.get("dask.array")
    return da is not None and isinstance(X, da.Array)


def active_client():
    """The active ``distributed.Client`` (the one dask users set up), or None.

    Returns
    -------
    client : distributed.Client or None
        ``distributed.default_client``, None when there is none.
    """
    try:
        from distributed import default_client
    except ImportError:  # pragma: no cover
        return None
    try:
        return default_client()
    except ValueError:
        return None


# --------------------------------------------------------------- worker side
class _Block:
    """One row block as a worker keeps it: data, targets, raw row weights (None: all ones), masks."""

    def __init__(self, X, y, w=None, operator=None):
        self.X = X
        self.y = y
        self.w = w
        self.operator = operator


def _make_block(X, y, w, fit_intercept, dtype):
    X = np.asarray(X, dtype=dtype)
    if fit_intercept:
        X = np.hstack([X, np.ones((X.shape[0], 1), dtype=X.dtype)])
    y = np.asarray(y, dtype=np.float64).reshape(X.shape[0], -1)
    if w is not None:
        w = np.asarray(w, dtype=np.float64).reshape(X.shape[0], 1)
    return _Block(np.ascontiguousarray(X), y, w)


def _block_target_sums(block):
    """Row count, weight sum, weighted target sums and squares, smallest weight, finiteness."""
    y = block.y
    w = np.ones((y.shape[0], 1)) if block.w is None else block.w
    wmin = float(w.min()) if w.size else np.inf
    return (
        np.array([y.shape[0]]), np.array([w.sum()]), (w * y).sum(axis=0), (w * y * y).sum(axis=0),
        np.array([wmin]), np.array([bool(np.isfinite(w).all())]),
    )


def _block_pattern_keys(block, gates):
    """A 16-byte hash of each gate's pattern on this block, and which patterns are non-zero.

    Rows of zero weight are left out, as ``sample_arrangements`` keys the
    patterns on the support of the weights only.
    """
    X = block.X if block.w is None else block.X[block.w[:, 0] > 0]
    # Packed 8192 rows at a time: no float chunk x n_arrangements product.
    packed = np.ascontiguousarray(packed_patterns(X, gates.astype(X.dtype, copy=False), 8192).T)
    keys = np.array([hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in packed], dtype="S16")
    return keys, packed.any(axis=1)


def _attach_patterns(block, gates, n_outputs, dtype, inner_block_size):
    X = block.X
    packed = packed_patterns(X, gates.astype(X.dtype, copy=False), inner_block_size)
    op = RowBlockOperator(X, packed, block_size=inner_block_size, n_outputs=n_outputs, dtype=dtype)
    return _Block(X, block.y, block.w, op)


def _block_sums(block, W, s, targets, float64, blocks=None):
    """Adjoint of the weighted residuals and the scalar sums of one block.

    ``targets=False`` drops ``y`` (power iterations: the adjoint of the
    weighted predictions). ``blocks`` restricts the program to a working set
    of patterns (``W`` then has only those); the restricted operator is kept
    on the block between rounds, so its masks are repacked once per set.
    """
    op = _restricted(block, blocks)
    op = op.astype(np.float64) if float64 else op
    pred = np.asarray(op.forward(W), dtype=np.float64)
    r = pred - block.y if targets else pred
    sr = s * r if block.w is None else (s * block.w) * r
    G0 = np.asarray(op.adjoint(sr), dtype=np.float64)
    y = block.y
    return G0, sr.sum(axis=0), (sr * r).sum(axis=0), (sr * y).sum(axis=0)


def _advance(block, op, base, token, x, y, x_new, beta):
    """A FISTA step's predictions on a block, kept on the block between rounds.

    The block holds the predictions :math:`A x` and :math:`A y` of the
    iterate and the momentum point under the client's ``base`` token, so a
    step costs one forward product (of ``x_new``), as in memory: the next
    momentum point's predictions are
    :math:`A x_{new} + \\beta (A x_{new} - A x)`. ``base=None`` starts from
    ``x_new`` alone (``beta`` is then ignored). Returns ``(A x_new, A y,
    A y_next)``, kept under ``token`` with the base (a rejected step's retry
    starts from it again); older states are dropped. A block recomputed on
    another worker has lost them: None when ``x`` and ``y`` are None, else
    they are rebuilt from ``x`` and ``y``.
    """
    states = getattr(block, "fista_states", {})
    z_new = np.asarray(op.forward(x_new), dtype=np.float64)
    if base is None:
        z_x = z_y = z_new
    elif base in states:
        z_x, z_y = states[base]
    elif x is None:
        return None
    else:
        z_x = np.asarray(op.forward(x), dtype=np.float64)
        z_y = z_x if np.array_equal(x, y) else np.asarray(op.forward(y), dtype=np.float64)
    z_next = z_new if base is None or beta == 0 else z_new + beta * (z_new - z_x)
    kept = {base: states[base]} if base in states else {}
    kept[token] = (z_new, z_next)
    block.fista_states = kept
    return z_new, z_y, z_next


def _block_fista_step(block, base, token, x, y, x_new, beta, s, blocks):
    """One FISTA round of the squared error on a block (:func:`_advance`), one forward and one adjoint product.

    Returns :func:`_block_sums`' sums at the next momentum point, then
    ``sum s w r`` and ``sum s w r^2`` of the residuals at ``x_new``, and
    ``sum s w D``, ``sum s w D^2`` of the change
    :math:`D = A x_{new} - A y` (the line search's exact remainder); None
    when the block lost its predictions and ``x`` and ``y`` are None.
    """
    op = _restricted(block, blocks)
    advanced = _advance(block, op, base, token, x, y, x_new, beta)
    if advanced is None:
        return None
    z_new, z_y, z_next = advanced
    sw = s if block.w is None else s * block.w
    Y = block.y
    r = z_next - Y
    sr = sw * r
    G0 = np.asarray(op.adjoint(sr), dtype=np.float64)
    r_new = r if z_next is z_new else z_new - Y
    sr_new = sw * r_new
    delta = z_new - z_y
    sd = sw * delta
    return (
        G0, sr.sum(axis=0), (sr * r).sum(axis=0), (sr * Y).sum(axis=0),
        sr_new.sum(axis=0), (sr_new * r_new).sum(axis=0), sd.sum(axis=0), (sd * delta).sum(axis=0),
    )


def _block_class_step(block, base, token, x, y, x_new, beta, b, datafit, s, blocks):
    """One FISTA step of a classifier on a block (:func:`_advance`): one forward product, no adjoint yet.

    Returns the datafit's remainder bound at :math:`A y + b` for the change
    :math:`A x_{new} - A y` (the line search's test), its value at
    :math:`A x_{new} + b`, and the intercept's gradient and Hessian at the
    next momentum point :math:`A y_{next} + b`, whose predictions the block
    keeps for :func:`_block_datafit_gradient`; None when the block lost its
    predictions and ``x`` and ``y`` are None.
    """
    op = _restricted(block, blocks)
    advanced = _advance(block, op, base, token, x, y, x_new, beta)
    if advanced is None:
        return None
    z_new, z_y, z_next = advanced
    sw = _weights(block, s)
    remainder = 0.0 if base is None else datafit.remainder_bound(z_y + b, block.y, sw, z_new - z_y)
    block.z, block.z_op = z_next, op
    return (
        np.array([remainder]), np.array([datafit.value(z_new + b, block.y, sw)]),
        *_intercept_derivatives(datafit, z_next + b, block.y, sw),
    )


def _block_values(block, W, s, blocks):
    """A forward product's residual sums ``sum s w r`` and ``sum s w r^2`` (a line search's round)."""
    op = _restricted(block, blocks)
    r = np.asarray(op.forward(W), dtype=np.float64) - block.y
    sr = s * r if block.w is None else (s * block.w) * r
    return sr.sum(axis=0), (sr * r).sum(axis=0)


def _block_curvature(block, U, s, blocks):
    """Diagonals of each block's :math:`X^\\top D_p S D_p X` and its product with ``U_p`` (one output)."""
    op = _restricted(block, blocks)
    h = _weights(block, s)
    diagonals = np.asarray(op.block_gram_diagonals(h), dtype=np.float64).T[:, :, None]
    return diagonals, np.asarray(op.block_gram_products(U, h), dtype=np.float64)


def _block_weight_adjoint(block, s):
    op = block.operator.astype(np.float64)
    sw = np.full((block.X.shape[0], op.n_outputs), s)
    if block.w is not None:
        sw = sw * block.w
    return np.asarray(op.adjoint(sw), dtype=np.float64)


def _make_class_block(X, y, w, classes, fit_intercept, dtype):
    """A row block whose labels are encoded on the worker: +-1 for two classes, one-hot for more."""
    codes = np.searchsorted(classes, np.asarray(y).ravel())
    if len(classes) == 2:
        Y = np.where(codes == 1, 1.0, -1.0)[:, None]
    else:
        Y = np.eye(len(classes))[codes]
    return _make_block(X, Y, w, fit_intercept, dtype)


def _block_labels(y):
    return np.unique(np.asarray(y).ravel())


def _restricted(block, blocks):
    """The block's operator, restricted to a working set of patterns (cached on the block)."""
    op = block.operator
    if blocks is None:
        return op
    key = np.asarray(blocks).tobytes()
    cached = getattr(block, "restricted", None)
    if cached is None or cached[0] != key:
        cached = (key, op.restrict(blocks))
        block.restricted = cached
    return cached[1]


def _weights(block, s):
    n = block.y.shape[0]
    return np.full(n, s) if block.w is None else s * block.w[:, 0]


def _block_intercept_step(block, b, datafit, s, W=None, float64=False, blocks=None):
    """Datafit value, intercept gradient and Hessian at ``z + b`` (``z = A W``, kept on the block).

    With ``W`` the predictions are recomputed (and kept for the following
    Newton steps and the gradient round); only ``C + C^2 + 1`` floats return.
    """
    if W is not None:
        op = _restricted(block, blocks)
        op = op.astype(np.float64) if float64 else op
        block.z = np.asarray(op.forward(W), dtype=np.float64)
        block.z_op = op
    sw = _weights(block, s)
    full = block.z + b
    return (np.array([datafit.value(full, block.y, sw)]), *_intercept_derivatives(datafit, full, block.y, sw))


def _intercept_derivatives(datafit, full, y, sw):
    """The datafit's gradient and Hessian in the intercept at the predictions ``full`` (``C`` and ``C x C``)."""
    R = datafit.hessian_factor(full, y, sw)
    return datafit.gradient(full, y, sw).sum(axis=0), np.einsum("nkc,nkd->cd", R, R)


def _block_datafit_gradient(block, b, datafit, s, cs=()):
    """``A^T grad`` at ``z + b`` and the dual at ``-c grad`` for each ``c`` in ``cs``; the gradient stays on the block."""
    sw = _weights(block, s)
    g = np.asarray(datafit.gradient(block.z + b, block.y, sw), dtype=np.float64)
    block.g = g
    value = datafit.value(block.z + b, block.y, sw)
    duals = np.array([datafit.dual(-c * g, block.y, sw) for c in cs])
    return np.array([value]), np.asarray(block.z_op.adjoint(g), dtype=np.float64), duals


def _block_gradient_curvature(block, b, datafit, s, U):
    """A Newton step's gradient round (one output) at ``z + b``, ``z = A_S U`` kept on the block.

    Returns the datafit value, :math:`A_S^\\top g`, and from the datafit's
    per-sample curvature ``h`` (kept on the block for the Hessian products):
    ``sum h``, :math:`A_S^\\top h`, the blocks' Gram diagonals and each
    block's own curvature applied to ``U``.
    """
    sw = _weights(block, s)
    full = block.z + b
    op = block.z_op
    g = np.asarray(datafit.gradient(full, block.y, sw), dtype=np.float64)
    h = np.asarray(datafit.hessian_factor(full, block.y, sw)[:, 0, 0], dtype=np.float64) ** 2
    block.h = h
    return (
        np.array([datafit.value(full, block.y, sw)]),
        np.asarray(op.adjoint(g), dtype=np.float64),
        np.array([h.sum()]),
        np.asarray(op.adjoint(h[:, None]), dtype=np.float64),
        np.asarray(op.block_gram_diagonals(h), dtype=np.float64).T[:, :, None],
        np.asarray(op.block_gram_products(U, h), dtype=np.float64),
    )


def _block_hessian_product(block, V):
    """:math:`A_S^\\top (h \\odot A_S V)` and ``sum h A_S V`` at the curvature of the last gradient round."""
    hz = block.h[:, None] * np.asarray(block.z_op.forward(V), dtype=np.float64)
    return np.asarray(block.z_op.adjoint(hz), dtype=np.float64), hz.sum(axis=0)


def _block_dual(block, c, datafit, s):
    """This block's share of the (row-separable) dual objective at ``theta = -c grad``."""
    return (np.array([datafit.dual(-c * block.g, block.y, _weights(block, s))]),)


# --------------------------------------------------------------- client side
class _Cluster:
    """The row blocks on the workers and the rounds of sums over them."""

    def __init__(self, client, blocks):
        self.client = client
        self.blocks = blocks
        self.bytes_out = 0
        self.bytes_in = 0
        self.rounds = 0

    def gather(self, futures):
        try:
            return self.client.gather(futures)
        except Exception as exc:  # KilledWorker, CancelledError, lost data...
            raise DaskSolveError(
                f"The solve on the dask cluster failed ({type(exc).__name__}: {exc}); no "
                "result is returned. Retry the fit (dask recomputes lost blocks when their "
                "inputs can be recomputed), or persist X and y on the cluster first."
            ) from exc

    def map(self, fn, *args, **kwargs):
        """``[fn(block, *args) for block in blocks]``, each run where its block lives.

        Tasks are pinned to the worker holding their block: work stealing
        would otherwise move blocks (rows) to idle workers. A task pinned to
        a worker that has died is resubmitted unpinned, so the lost block is
        recomputed from its lineage wherever the scheduler decides.
        """
        from distributed import wait

        client = self.client
        try:
            holders = client.who_has(self.blocks)
            alive = set(client.nthreads())
        except Exception as exc:
            raise DaskSolveError(f"The dask cluster is unreachable ({type(exc).__name__}: {exc}).") from exc

        def submit(block, pin):
            where = [w for w in holders.get(block.key, ()) if w in alive][:1] if pin else []
            pinning = {"workers": where, "allow_other_workers": False} if where else {}
            future = client.submit(fn, block, *args, pure=False, **pinning, **kwargs)
            return future, (where[0] if where else None)

        tasks = [submit(b, True) for b in self.blocks]
        while True:
            try:
                wait([f for f, _ in tasks], timeout=2)
            except TimeoutError:
                pass
            pending = {f for f, _ in tasks if not f.done()}
            if not pending:
                break
            alive = set(client.nthreads())
            for i, (future, worker) in enumerate(tasks):
                if future in pending and worker is not None and worker not in alive:
                    future.cancel()
                    tasks[i] = submit(self.blocks[i], False)
        return self.gather([f for f, _ in tasks])

    def replace(self, fn, *args, **kwargs):
        """Apply ``fn`` to every block, keeping the results on the workers."""
        from distributed import wait

        self.blocks = [self.client.submit(fn, b, *args, pure=False, **kwargs) for b in self.blocks]
        wait(self.blocks)  # not a gather: the blocks stay where they were computed

    def reduce(self, fn, *args, sent=0):
        """Sums over the blocks of the tuples ``fn(block, *args)`` returns: one round, ``sent`` bytes per block out."""
        return self.total(self.map(fn, *args), sent)

    def total(self, parts, sent=0):
        """Sums over the blocks of a round's tuples ``parts``, counted as one round of ``sent`` bytes per block out."""
        self.bytes_out += sent * len(self.blocks)
        self.rounds += 1
        self.bytes_in += sum(sum(np.asarray(a).nbytes for a in p) for p in parts)
        total = [np.zeros_like(np.asarray(a, dtype=np.float64)) for a in parts[0]]
        for part in parts:
            for acc, a in zip(total, part):
                acc += a
        return total

    def sums(self, W, s, *, targets=True, float64=False, blocks=None):
        """Global sums of :func:`_block_sums`, reduced in block order."""
        # W travels inside each task (d x P x C floats per block): one
        # message per block and round, no separate scatter round trip.
        return self.reduce(_block_sums, W, s, targets, float64, blocks, sent=W.nbytes)


class _FistaRounds(Protocol):
    """What :func:`_backtracking_inner` runs its steps with (:class:`_SquaredErrorRounds`, :class:`_ClassifierRounds`)."""

    def start(self, V, ws):
        """``(token, primal, dual, gradient)`` of ``V`` on the working set ``ws`` without a round, or None."""

    def step(self, base, x, y, x_new, beta, blocks):
        """Send a step from the state ``base``; ``(primal at x_new, remainder bound, token of the new state)``."""

    def gradient(self):
        """``(dual, intercept, gradient)`` at the last step's momentum point."""


def _step_round(cluster, fn, base, token, x, y, x_new, args):
    """The sums of ``fn(block, base, token, x, y, x_new, *args)`` over the blocks: a FISTA step's round.

    ``x`` and ``y`` are sent only when a block answers None: it was
    recomputed on another worker (its own died) and has lost the
    predictions, so the round runs again with the coefficients to rebuild
    them from (the other blocks repeat their step).
    """
    parts = cluster.map(fn, base, token, None, None, x_new, *args)
    sent = x_new.nbytes
    if any(part is None for part in parts):
        cluster.rounds += 1
        cluster.bytes_out += sent * len(cluster.blocks)
        parts = cluster.map(fn, base, token, x, y, x_new, *args)
        sent = 3 * x_new.nbytes
    return cluster.total(parts, sent)


class _SquaredErrorRounds(_FistaRounds):
    """The squared error's evaluations on the cluster, with the intercept minimized out.

    ``evaluate(W)`` is a full round (:func:`_block_fista_step` from
    scratch): the primal value, the dual bound, the intercept and the
    gradient at ``W``, its predictions left on the blocks under a token for
    the FISTA steps that follow (:meth:`step`). With the row weights ``s w``
    summing to one, :math:`b = -\\sum s w r` and
    :math:`F = \\tfrac12 \\sum_c (S_2 - S_1^2)` per output.
    """

    def __init__(self, cluster, s, A1, ysum, fit_intercept, penalty, alpha_abs):
        self.cluster, self.s, self.A1, self.ysum = cluster, s, A1, ysum
        self.fit_intercept, self.penalty, self.alpha_abs = fit_intercept, penalty, alpha_abs
        self.tokens = iter(range(1, sys.maxsize))
        self.last = None  # (W, token, primal, dual, gradient) of the last full evaluation

    def _smooth(self, S1, S2):
        return 0.5 * float((S2 - S1 * S1).sum() if self.fit_intercept else S2.sum())

    def certificate(self, G0, S1, S2, S3, blocks=None):
        """The intercept, the gradient and the dual bound from a round's sums at one point."""
        b = -S1 if self.fit_intercept else np.zeros_like(S1)
        quad = S2 + 2 * b * S1 + b * b  # sum s w (r + b)^2, per output
        lin = -(S3 + b * self.ysum)  # sum theta y at c = 1, theta = -s w (r + b)
        A1 = self.A1 if blocks is None else self.A1[:, blocks]
        G = G0 + (b[None, None, :] * A1 if self.fit_intercept else 0.0)
        dn = self.penalty.dual_norm(G)
        c_max = np.inf if dn == 0 else self.alpha_abs / dn
        q, li = float(quad.sum()), float(lin.sum())
        if q <= 0:
            return b, G, 0.0
        c = float(np.clip(li / q, 0.0, c_max))
        return b, G, c * li - 0.5 * c * c * q

    def evaluate(self, W, float64=False):
        """``(primal, dual, intercept, gradient)`` of the whole program at ``W`` (one round)."""
        if float64:
            G0, S1, S2, S3 = self.cluster.sums(W, self.s, float64=True)
            b, G, dual = self.certificate(G0, S1, S2, S3)
            return self._smooth(S1, S2) + self.alpha_abs * self.penalty.value(W), dual, b, G
        primal, _, token = self.step(None, None, None, W, 0.0, None)
        dual, b, G = self.gradient()
        self.last = (W, token, primal, dual, G)
        return primal, dual, b, G

    def start(self, V, ws):
        """``(token, primal, dual, gradient)`` of ``V`` on ``ws`` from the last full evaluation, or None.

        The last full evaluation serves when ``V`` is its point restricted to
        ``ws`` and the point is zero off ``ws``: its predictions on the
        blocks are then those of ``V``, and its gradient restricted to
        ``ws`` is the restricted program's.
        """
        if self.last is None:
            return None
        W, token, primal, dual, G = self.last
        rest = np.ones(W.shape[1], dtype=bool)
        rest[ws] = False
        if np.array_equal(W[:, ws], V) and not W[:, rest].any():
            return token, primal, dual, G[:, ws]
        return None

    def step(self, base, x, y, x_new, beta, blocks):
        """A FISTA step in one round: ``(primal at x_new, its exact remainder, token)``.

        The remainder :math:`F(x_{new}) - F(y) - \\langle\\nabla F(y),
        x_{new} - y\\rangle` is :math:`\\tfrac12 \\|P A (x_{new} - y)\\|^2`
        (``P`` centers when the intercept is fitted). The same round gives
        :meth:`gradient`'s certificate at the next momentum point
        :math:`y_{next} = x_{new} + \\beta (x_{new} - x)`.
        """
        token = next(self.tokens)
        G0, S1, S2, S3, R1, R2, D1, D2 = _step_round(
            self.cluster, _block_fista_step, base, token, x, y, x_new, (beta, self.s, blocks)
        )
        self.pending = self.certificate(G0, S1, S2, S3, blocks)
        primal = self._smooth(R1, R2) + self.alpha_abs * self.penalty.value(x_new)
        return primal, self._smooth(D1, D2), token

    def gradient(self):
        """``(dual, intercept, gradient)`` at the last step's momentum point (no round)."""
        b, G, dual = self.pending
        return dual, b, G


class _ClusterSupport:
    """The squared error on a support of blocks, each product a round on the cluster (one output).

    The model of :func:`~skconvex.solvers.support_newton.newton_on_support`:
    with the row weights ``s w`` summing to one and the intercept minimized
    out, the curvature is :math:`\\mathcal{A}^\\top S\\mathcal{A}` less the
    rank-one term :math:`(\\mathcal{A}^\\top s)(s^\\top\\mathcal{A})`, so a
    Hessian product is one round of :func:`_block_sums` without targets.
    Every round sends the support's blocks and gets back ``d x |S|`` sums.
    """

    def __init__(self, cluster, s, support, A1, fit_intercept):
        self.cluster, self.s, self.support = cluster, s, support
        self.A1 = A1[:, support] if fit_intercept else None
        self._A1_full, self.fit_intercept = A1, fit_intercept
        self._diagonals = None

    def restrict(self, keep):
        return _ClusterSupport(self.cluster, self.s, self.support[keep], self._A1_full, self.fit_intercept)

    def _intercept(self, S1):
        return -S1 if self.fit_intercept else np.zeros_like(S1)

    def value(self, U, b):
        S1, S2 = self.cluster.reduce(_block_values, U, self.s, self.support, sent=U.nbytes)
        b = self._intercept(S1)
        return 0.5 * float((S2 + 2 * b * S1 + b * b).sum()), b

    def linearize(self, U, b):
        G0, S1, _, _ = self.cluster.sums(U, self.s, blocks=self.support)
        b = self._intercept(S1)
        return b, (G0 + b[None, None, :] * self.A1 if self.fit_intercept else G0)

    def self_products(self, U):
        # The diagonals (constant for the squared error) come in the same round.
        self._diagonals, own = self.cluster.reduce(_block_curvature, U, self.s, self.support, sent=U.nbytes)
        return own

    def hessian_product(self, V):
        G0, S1, _, _ = self.cluster.sums(V, self.s, targets=False, blocks=self.support)
        return G0 - S1[None, None, :] * self.A1 if self.fit_intercept else G0

    def block_diagonals(self):
        return self._diagonals


class _ClassifierRounds(_FistaRounds):
    """A classifier's FISTA steps on the cluster, the predictions kept on the blocks (:func:`_block_class_step`).

    A step is a forward round that returns the datafit's remainder bound at
    the last intercept (the line search's test, as in memory), the value at
    ``x_new`` and the intercept's gradient and Hessian at the next momentum
    point. :meth:`gradient`, after an accepted step, takes one Newton step
    on the intercept (warm started: the predictions move little per step)
    and runs the gradient round, whose dual objectives at a grid of scalings
    of the dual point give the restricted program's (slightly loose) dual
    bound: the feasible scaling is only known after the gradient. ``state``
    holds the intercept, shared with the full evaluations.
    """

    def __init__(self, cluster, datafit, s, fit_intercept, shift, center, penalty, alpha_abs, state):
        self.cluster, self.datafit, self.s, self.fit_intercept, self.shift = cluster, datafit, s, fit_intercept, shift
        self.center, self.penalty, self.alpha_abs, self.state = center, penalty, alpha_abs, state
        self.tokens = iter(range(1, sys.maxsize))
        self.grid = np.unique(np.concatenate([np.geomspace(1e-4, 1.0, 24), 1.0 - np.geomspace(1e-6, 0.5, 24)]))

    def start(self, V, ws):
        """Nothing: every inner loop starts with a step from ``V`` alone (the full evaluations keep no predictions)."""

    def step(self, base, x, y, x_new, beta, blocks):
        """A FISTA step's forward round: ``(primal at x_new with the last intercept, remainder bound, token)``."""
        token = next(self.tokens)
        b = self.state["b"]
        remainder, value, g, h = _step_round(
            self.cluster, _block_class_step, base, token, x, y, x_new, (beta, b, self.datafit, self.s, blocks)
        )
        self.pending = (b, g, h)
        return float(value[0]) + self.alpha_abs * self.penalty.value(x_new), float(remainder[0]), token

    def gradient(self):
        """``(dual, intercept, gradient)`` at the last step's momentum point: one Newton step on the intercept, one round."""
        b, g, h = self.pending
        if self.fit_intercept:
            try:
                b = b - np.linalg.solve(h + self.shift, g)
            except np.linalg.LinAlgError:
                pass
            if self.center:
                b = b - b.mean()  # softmax is shift invariant: the centred intercept
            self.state["b"] = b
        _, G, duals = self.cluster.reduce(_block_datafit_gradient, b, self.datafit, self.s, self.grid, sent=b.nbytes)
        dn = self.penalty.dual_norm(G)
        c_max = np.inf if dn == 0 else self.alpha_abs / dn
        feasible = np.flatnonzero(self.grid <= c_max)
        return (float(duals[feasible[-1]]) if len(feasible) else 0.0), b, G


def _intercept_newton(cluster, W, b, datafit, s, fit_intercept, shift, float64=False, blocks=None):
    """A forward round (``z = A W`` kept on the blocks), then damped Newton rounds on the intercept.

    Each Newton round brings back ``C`` gradient and ``C x C`` Hessian
    entries per block. Returns the intercept and the datafit's value there.
    """
    from .programs.datafits import _newton

    values, first = {}, [True]

    def fgh(b):
        if first[0]:
            first[0] = False
            v, g, h = cluster.reduce(_block_intercept_step, b, datafit, s, W, float64, blocks, sent=W.nbytes)
        else:
            v, g, h = cluster.reduce(_block_intercept_step, b, datafit, s, sent=b.nbytes)
        values[np.asarray(b).tobytes()] = float(v[0])
        return float(v[0]), g, h + shift

    if not fit_intercept:
        b = np.zeros_like(b)
        return b, fgh(b)[0]
    b = _newton(fgh, b.copy(), 1.0)
    return b, values[b.tobytes()]


class _ClusterClassifierSupport:
    """A classifier's datafit (one output) on a support of blocks, each product a round on the cluster.

    Unlike the squared error, the intercept has no closed form (each value
    takes damped Newton rounds on it, see :func:`_intercept_newton`) and the
    curvature ``h`` depends on the point: the gradient round keeps it on the
    blocks, and a Hessian product is the round
    :func:`_block_hessian_product` with the intercept's Schur complement
    :math:`-(\\mathcal{A}^\\top h)(h^\\top\\mathcal{A}V)/\\sum h`.
    """

    def __init__(self, cluster, s, support, datafit, fit_intercept, shift):
        self.cluster, self.s, self.support = cluster, s, support
        self.datafit, self.fit_intercept, self.shift = datafit, fit_intercept, shift
        self._curvature = None
        self._valued = None  # the last point valued: its z and intercept are on the blocks

    def restrict(self, keep):
        return _ClusterClassifierSupport(
            self.cluster, self.s, self.support[keep], self.datafit, self.fit_intercept, self.shift
        )

    def value(self, U, b):
        b, value = _intercept_newton(
            self.cluster, U, b, self.datafit, self.s, self.fit_intercept, self.shift, blocks=self.support
        )
        self._valued = (U, b)
        return value, b

    def linearize(self, U, b):
        if self._valued is not None and self._valued[0] is U:
            # Newton's accepted step is the line search's last point: its
            # predictions and optimal intercept are already on the blocks.
            b = self._valued[1]
        else:
            b, _ = _intercept_newton(
                self.cluster, U, b, self.datafit, self.s, self.fit_intercept, self.shift, blocks=self.support
            )
        self._valued = None
        _, G, h_sum, Ah, diagonals, own = self.cluster.reduce(
            _block_gradient_curvature, b, self.datafit, self.s, U, sent=U.nbytes
        )
        self._curvature = (float(h_sum[0]), Ah, diagonals, own)
        return b, G

    def self_products(self, U):
        # Computed in the gradient round, at the same U.
        return self._curvature[3]

    def hessian_product(self, V):
        AhZ, hz = self.cluster.reduce(_block_hessian_product, V, sent=V.nbytes)
        h_sum, Ah = self._curvature[:2]
        if self.fit_intercept and h_sum > 0:
            return AhZ - Ah * (float(hz.sum()) / h_sum)
        return AhZ

    def block_diagonals(self):
        return self._curvature[2]


def _newton_polish(cluster, model_on, penalty, alpha_abs, dtype, tol, report):
    """The end-game of a cluster solve: Newton's method on the support of a point, its products rounds.

    ``model_on(support)`` builds the support's model for
    :func:`~skconvex.solvers.support_newton.newton_on_support`. Several
    outputs are left to FISTA: the row blocks form each block's own
    curvature for one output only (as in memory). Newton steps are counted
    in ``report["newton_steps"]``.
    """

    # The scaled-gradient dual point is off by about the square root of the
    # primal error: a relative gap of tol needs the primal to about tol^2,
    # and rounds are too dear to go further (the in-memory polish goes to the
    # compute dtype's precision).
    newton_tol = max(1e-12 if dtype == np.float64 else 1e-6, min(1e-6, tol * tol))
    last = [0]  # rounds at the end of the last polish

    def polish(W, b):
        support = np.flatnonzero(penalty.group_norms(W) > 0)
        if W.shape[2] != 1 or support.size == 0:
            return W
        # As in memory, a polish may spend about what FISTA spent since the
        # last one (a conjugate-gradient round counts 2 of Newton's products).
        budget = 2 * max(50, cluster.rounds - last[0])
        keep, U, _, newton = newton_on_support(
            model_on(support), W[:, support], b, alpha_abs, dtype=dtype, tol=newton_tol, max_products=budget
        )
        last[0] = cluster.rounds
        report["newton_steps"] += newton["n_steps"]
        out = np.zeros_like(W)
        out[:, support[keep]] = U
        return out

    return polish


def _certified_fista(
    cluster, evaluate, shape, s, curvature, penalty, alpha_abs, tol, max_iter, callback, dtype, t0, info, rounds,
    coef_init=None, polish=None,
):
    """FISTA with working sets on the cluster, then the returned point's float64 certificate.

    ``rounds`` (:class:`_SquaredErrorRounds`, :class:`_ClassifierRounds`)
    runs the steps of the inner loops (:func:`_backtracking_inner`), which
    backtrack as the in-memory FISTA does. Their first step is ``1 / (1.1 *
    curvature * lambda_max(A_S^T S A_S))`` on the first working set ``S``,
    the eigenvalue by power iteration on the cluster (one round per
    iteration, at the working set's cost). ``coef_init`` (a warm start) is
    the first iterate.
    """
    def lipschitz(blocks):
        V = np.random.default_rng(0).standard_normal((shape[0], len(blocks), shape[2]))
        V = V / np.linalg.norm(V)
        lip = 0.0
        for _ in range(15):
            G0 = cluster.sums(V, s, targets=False, blocks=blocks)[0]
            lip, previous = float(np.linalg.norm(G0)), lip
            if lip == 0:
                break
            V = G0 / lip
            # Backtracking covers what the 10 % margin does not.
            if lip <= 1.01 * previous:
                break
        return 1.1 * curvature * lip if lip > 0 else 1.0

    inner = _backtracking_inner(rounds, lipschitz, penalty, alpha_abs)
    best, best_dual, it = _fista_working_sets(
        evaluate, shape, inner, penalty, alpha_abs, tol, max_iter, callback, coef_init, polish,
    )
    # The returned point's certificate in float64 (the iterations may have
    # computed in float32); the dual bound is the best seen at any point.
    _, coef, _ = best
    primal, dual, b, _ = evaluate(coef, float64=True)
    best_dual = max(best_dual, dual) if dtype == np.float64 else dual
    converged = primal - best_dual <= tol * abs(primal)
    return SolveResult(
        coef=coef,
        intercept=np.asarray(b, dtype=np.float64),
        objective=primal,
        dual_objective=best_dual,
        n_iter=it,
        converged=bool(converged),
        solver="dask-fista",
        n_products=2 * cluster.rounds,
        info=dict(
            info,
            rounds=cluster.rounds,
            bytes_out=cluster.bytes_out,
            bytes_in=cluster.bytes_in,
            n_blocks=len(cluster.blocks),
            time=time.perf_counter() - t0,
        ),
    )


def _backtracking_inner(rounds, lipschitz, penalty, alpha_abs, growth=1.1):
    """FISTA on a working set as :func:`~skconvex.solvers.fista` runs it: the step grows and backtracks.

    ``rounds`` (a :class:`_FistaRounds`): ``rounds.step`` sends a step and
    returns the objective at it and the datafit's remainder bound (exact
    for the squared error), so a step is accepted or halved without another
    round; the blocks keep the predictions, so a step is one forward
    product. ``rounds.gradient`` then gives the gradient and a dual bound
    at the next momentum point (in the step's own round for the squared
    error). The step carries over
    from one working set to the next, growing by ``growth`` per iteration:
    the power iteration's bound (``1 / lipschitz(ws)``, used for the first
    step; the top eigenvector adds up the overlapping gates) is several
    times shorter than the steps backtracking accepts.

    Returns ``inner(V, ws, target, it, max_iter, callback, ready=None)``,
    which runs from ``V`` (the working set's blocks) until the restricted
    relative gap is at most ``target``, or ``ready(relative gap, iterations
    the support held)`` is true (the caller's polish is due), and returns
    ``(best V, iterations the support held, it)``.
    """
    carried = [None]

    def inner(V, ws, target, it, max_iter, callback, ready=None):
        step = 1.0 / lipschitz(ws) if carried[0] is None else carried[0]
        started = rounds.start(V, ws)
        if started is None:
            p_x, _, token = rounds.step(None, None, None, V, 0.0, ws)
            dual, _, G = rounds.gradient()
            it += 1
        else:
            token, p_x, dual, G = started
        x = y = V
        best, best_dual = (p_x, V), dual
        t = 1.0
        support, stable = None, 0
        # At least one step: the outer loop's next working set depends on it.
        while it < max_iter and (support is None or best[0] - best_dual > target * abs(best[0])):
            if ready is not None and ready((best[0] - best_dual) / abs(best[0]), stable):
                break
            step_prev, step = step, step * growth
            while True:
                x_new = penalty.prox(y - step * G, step * alpha_abs)
                d, dx = x_new - y, x_new - x
                dd = float(np.vdot(d, d))
                # Momentum, restarted when the step and the momentum disagree.
                t_cur = 1.0 if np.vdot(d, dx) < 0 else t
                t_next = 0.5 * (1 + np.sqrt(1 + 4 * (step_prev / step) * t_cur * t_cur))
                beta = float((t_cur - 1) / t_next)
                p_new, remainder, new = rounds.step(token, x, y, x_new, beta, ws)
                it += 1
                if remainder <= dd / (2 * step) * (1 + 1e-6) or step < 1e-30 or it >= max_iter:
                    break
                step *= 0.5
            dual, _, G_new = rounds.gradient()
            x, y, G, token, t = x_new, x_new + beta * dx, G_new, new, t_next
            best_dual = max(best_dual, dual)
            if p_new < best[0]:
                best = (p_new, x_new)
            new_support = penalty.group_norms(x_new) > 0
            stable = stable + 1 if support is not None and np.array_equal(new_support, support) else 0
            support = new_support
            if callback is not None:
                callback(it)
        carried[0] = step
        return best[1], stable, it

    return inner


def _fista_working_sets(
    evaluate, shape, inner, penalty, alpha_abs, tol, max_iter, callback, coef_init=None, polish=None,
    polish_gap=1e-2, polish_wait=10,
):
    """FISTA on working sets of blocks; returns ``(best, best_dual, n_iter)``.

    Starts from ``coef_init`` when given (its non-zero blocks start in the
    working set), from zero otherwise. The working sets are those of
    :func:`~skconvex.solvers.working_set_solve`: twice the non-zero blocks
    (at least 16), the whole program once that is half of it. ``inner``
    runs FISTA on a working set (:func:`_backtracking_inner`).
    ``polish(W, b)`` (None: no polish)
    returns a point improved on the support of ``W``; as in the in-memory
    FISTA, it is tried once the relative gap is at most ``polish_gap`` and
    the support has held for ``polish_wait`` iterations (a wait that doubles
    after each try), until one fails to lower the objective.

    ``evaluate(W)`` returns the primal value, a dual lower bound, the
    intercept and the gradient ``G``, each a round (or a few) of sums over
    the cluster. ``best`` is the ``(primal, W, intercept)`` of the best full
    evaluation.
    """
    P = shape[1]
    W = np.zeros(shape) if coef_init is None else np.array(coef_init, dtype=np.float64)
    primal, dual, b, G = evaluate(W)
    best, best_dual = (primal, W, b), dual
    it, wait = 0, polish_wait
    settled = False  # whether the last inner loop's support held for `wait` iterations

    def ready(rel_gap, stable):
        return polish is not None and rel_gap <= polish_gap and stable >= wait

    while it < max_iter:
        gap = (best[0] - best_dual) / abs(best[0])
        if polish is not None and settled and tol < gap <= polish_gap:
            # The polished point's full evaluation certifies it (and its
            # gradient picks the next working set).
            wait *= 2
            W_pol = polish(best[1], best[2])
            p_pol, d_pol, b_pol, G_pol = evaluate(W_pol)
            best_dual = max(best_dual, d_pol)
            if p_pol < best[0]:
                W, G, best = W_pol, G_pol, (p_pol, W_pol, b_pol)
            else:
                polish = None
        if best[0] - best_dual <= tol * abs(best[0]):
            break
        score = penalty.dual_group_norms(G) / max(alpha_abs, np.finfo(float).tiny)
        active = np.flatnonzero(penalty.group_norms(W) > 0)
        score[active] = np.inf
        size = min(P, max(16, 2 * len(active)))
        # A working set restarts the momentum: it pays only when it is much
        # smaller than the whole program, which then runs to tol (or to its
        # polish) without restarts.
        full = size >= P / 2
        ws = np.arange(P) if full else np.sort(np.argsort(-score, kind="stable")[:size])
        target = tol if full else max(tol, 0.3 * (best[0] - best_dual) / abs(best[0]))
        V, stable, it = inner(np.ascontiguousarray(W[:, ws]), ws, target, it, max_iter, callback, ready)
        settled = stable >= wait
        W = np.zeros(shape)
        W[:, ws] = V
        primal, dual, b, G = evaluate(W)
        best_dual = max(best_dual, dual)
        if primal < best[0]:
            best = (primal, W, b)
    return best, best_dual, it


def _unique_gates(cluster, d, n_arrangements, random_state, dtype):
    """The gates of the in-memory fit with the same seed, deduplicated from per-block pattern hashes.

    Duplicates and all-zero patterns are found as in ``sample_arrangements``
    (first occurrence kept); only 16-byte hashes per gate and block travel.
    """
    gates_all = _draw_gates(d, int(n_arrangements), random_state, dtype)
    keys_and_nonzero = cluster.map(_block_pattern_keys, gates_all)
    keys = np.stack([k for k, _ in keys_and_nonzero], axis=1)
    nonzero = np.any([nz for _, nz in keys_and_nonzero], axis=0)
    seen, keep = set(), []
    for j in range(keys.shape[0]):
        key = keys[j].tobytes()
        if key not in seen:
            seen.add(key)
            if nonzero[j]:
                keep.append(j)
    return np.ascontiguousarray(gates_all[:, keep])


def _start(cluster, gates, coef_init, d, n_outputs, n_arrangements, random_state, dtype):
    """The gates of the solve and its first iterate: given ones (a warm start) or drawn ones and None."""
    if gates is None:
        return _unique_gates(cluster, d, n_arrangements, random_state, dtype), None
    gates = np.ascontiguousarray(gates, dtype=dtype)
    if gates.ndim != 2 or gates.shape[0] != d:
        raise ValueError(f"gates must have shape ({d}, n_patterns), got {gates.shape}.")
    if coef_init is not None:
        coef_init = np.asarray(coef_init, dtype=np.float64)
        if coef_init.shape != (d, gates.shape[1], n_outputs):
            # As in memory: a previous solution of another shape (other
            # outputs or classes) is no starting point; the gates still are.
            coef_init = None
    return gates, coef_init


def _draw_gates(n_features, n_arrangements, random_state, dtype, batch_size=256):
    """The gates :func:`~skconvex.arrangements.sample_arrangements` draws, in drawing order."""
    from .arrangements import _GATE_SAMPLERS

    n_batches = -(-n_arrangements // batch_size)
    sizes = [batch_size] * (n_batches - 1) + [n_arrangements - batch_size * (n_batches - 1)]
    seeds = seed_sequence(random_state).spawn(n_batches)
    gaussian = _GATE_SAMPLERS["gaussian"]
    return np.concatenate(
        [gaussian(np.random.default_rng(seed), n_features, size, dtype) for seed, size in zip(seeds, sizes)], axis=1
    )


def _row_chunks(client, X, y, sample_weight=None):
    """Futures of the row chunks of ``X``, ``y`` and ``sample_weight`` (chunked alike), computed on the workers.

    The weights' futures are Nones when ``sample_weight`` is None.
    """
    import dask.array as da

    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D dask array, got {X.ndim} dimensions.")
    if X.numblocks[1] != 1:
        X = X.rechunk({1: -1})
    if np.shape(y)[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but y has {np.shape(y)[0]}.")
    if not is_dask_array(y):
        y = da.from_array(np.asarray(y), chunks=(X.chunks[0],) + ((y.shape[1],) if np.ndim(y) == 2 else ()))
    else:
        y = y.rechunk((X.chunks[0],) + ((-1,) if y.ndim == 2 else ()))
    xs = client.compute(list(X.to_delayed().ravel()))
    ys = client.compute(list(y.to_delayed().ravel()))
    if sample_weight is None:
        ws = [None] * len(xs)
    else:
        if np.ndim(sample_weight) != 1 or np.shape(sample_weight)[0] != X.shape[0]:
            raise ValueError(
                f"sample_weight must have shape ({X.shape[0]},) like the rows of X, got {np.shape(sample_weight)}."
            )
        if is_dask_array(sample_weight):
            sample_weight = sample_weight.rechunk((X.chunks[0],))
        else:
            # A numpy vector is split like X's rows: each piece travels once, to its block.
            sample_weight = da.from_array(np.asarray(sample_weight, dtype=np.float64), chunks=(X.chunks[0],))
        ws = client.compute(list(sample_weight.to_delayed().ravel()))
    return xs, ys, ws, y.ndim == 1


def dask_gated_regression(
    X,
    y,
    *,
    alpha,
    penalty,
    sample_weight=None,
    n_arrangements,
    fit_intercept=True,
    dtype=np.float64,
    tol=1e-4,
    max_iter=2000,
    random_state=None,
    inner_block_size=8192,
    client=None,
    callback=None,
    gates=None,
    coef_init=None,
    intercept_init=None,
):
    """Solve the gated-ReLU group lasso for the squared error on a dask cluster.

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
        Data, chunked by rows (column chunks are merged).
    y : dask.array.Array or ndarray of shape (n_samples,) or (n_samples, n_outputs)
        Targets (rechunked like the rows of ``X``).
    alpha : float
        Penalty strength relative to the weighted standard deviation of
        ``y``, as the estimators' ``alpha``.
    penalty : BlockPenalty
        The block norm (``GroupL2`` or ``GroupNuclear``).
    sample_weight : dask.array.Array or ndarray of shape (n_samples,), default=None
        Non-negative row weights (rechunked, or split, like the rows of
        ``X``); they stay on the workers with their rows and are normalized
        to sum to one, as in the estimators. None: uniform weights.
    n_arrangements : int
        Gates drawn (deduplicated like ``sample_arrangements``).
    fit_intercept : bool, default=True
        Hidden biases (a ones column, appended on the workers) and a free
        output intercept.
    dtype : {np.float32, np.float64}, default=np.float64
        Compute dtype of the products on the workers; sums and the final
        certificate are float64.
    tol : float, default=1e-4
        Target relative certified gap.
    max_iter : int, default=2000
        Maximum FISTA iterations (one round of sums each, full rounds not
        counted).
    random_state : int, RandomState instance or None, default=None
        Seed of the gates.
    inner_block_size : int, default=8192
        Rows per block of each worker's
        :class:`~skconvex.programs.row_blocks.RowBlockOperator`.
    client : distributed.Client, default=None
        The client; the active one when None.
    callback : callable, default=None
        Called as ``callback(iteration)`` after every iteration (tests use
        it to kill a worker mid-fit).
    gates : ndarray of shape (n_features + fit_intercept, n_patterns), default=None
        Gates to use instead of drawing ``n_arrangements`` (a warm start
        reuses the previous fit's); they are not deduplicated.
    coef_init : ndarray of shape (n_features + fit_intercept, n_patterns, n_outputs), default=None
        First iterate (a warm start: the previous solution on ``gates``).
        Ignored unless ``gates`` is given and its shape matches.
    intercept_init : ndarray of shape (n_outputs,), default=None
        Unused: the squared error's intercept is minimized out in closed
        form (accepted for symmetry with :func:`dask_gated_classification`).

    Returns
    -------
    result : SolveResult
        Coefficients of shape ``(n_features + fit_intercept, n_patterns,
        n_outputs)``, intercept, float64 certificate; ``info`` holds the
        ``gates``, ``alpha`` (absolute), ``y_1d``, ``rounds``, the Newton
        steps of the end-game (``newton_steps``), and the bytes of weights
        sent (``bytes_out``) and of sums received (``bytes_in``).

    Raises
    ------
    DaskSolveError
        If the cluster loses data it cannot recompute.
    ValueError
        If no client is active, ``X``, ``y`` and ``sample_weight`` do not
        match, or ``sample_weight`` is negative, not finite or sums to zero.
    """
    t0 = time.perf_counter()
    client = client or active_client()
    if client is None:
        raise ValueError("dask_gated_regression needs an active distributed.Client.")
    dtype = np.dtype(dtype)
    xs, ys, ws, y_1d = _row_chunks(client, X, y, sample_weight)
    cluster = _Cluster(client, [client.submit(_make_block, xk, yk, wk, fit_intercept, dtype, pure=False)
                                for xk, yk, wk in zip(xs, ys, ws)])
    del xs, ys, ws
    parts = cluster.map(_block_target_sums)
    counts, wsum, ysum, yy = (sum(p) for p in list(zip(*parts))[:4])
    if not all(bool(p[5][0]) for p in parts):
        raise ValueError("sample_weight contains NaN or infinity.")
    if min(float(p[4][0]) for p in parts) < 0:
        raise ValueError("sample_weight must be non-negative.")
    wsum = float(wsum[0])
    if not wsum > 0:
        raise ValueError("sample_weight must have a positive sum.")
    n = int(counts[0])
    n_outputs = ysum.shape[0]
    d = X.shape[1] + int(fit_intercept)
    # Row weights normalized to sum to one as in the estimators: the workers
    # multiply their raw weights by s, so sum(s w) = 1 and ysum is sum(s w y).
    s = 1.0 / wsum
    ysum = ysum * s
    mean = ysum
    scale = float(np.sqrt(max(float(np.mean(yy * s - mean**2)), 0.0)))
    alpha_abs = float(alpha) * (scale if scale > 0 else 1.0)

    gates, coef_init = _start(cluster, gates, coef_init, d, n_outputs, n_arrangements, random_state, dtype)
    P = gates.shape[1]
    cluster.replace(_attach_patterns, gates, n_outputs, dtype, inner_block_size)

    # Constants: A^T s (the intercept's direction) and the target sums.
    A1 = np.zeros((d, P, n_outputs))
    for part in cluster.map(_block_weight_adjoint, s):
        A1 += part
    shape = (d, P, n_outputs)

    rounds = _SquaredErrorRounds(cluster, s, A1, ysum, fit_intercept, penalty, alpha_abs)

    # First step: the top eigenvalue of A^T S A on the first working set
    # (it bounds the curvature of the intercept-reduced squared loss too).
    report = {
        "gates": gates, "alpha": alpha_abs, "y_1d": y_1d, "n_samples": n, "n_outputs": n_outputs, "newton_steps": 0,
    }
    polish = _newton_polish(
        cluster, lambda support: _ClusterSupport(cluster, s, support, A1, fit_intercept), penalty, alpha_abs, dtype, tol, report
    )
    return _certified_fista(
        cluster, rounds.evaluate, shape, s, 1.0, penalty, alpha_abs, tol, max_iter, callback, dtype, t0, report,
        rounds, coef_init=coef_init, polish=polish,
    )


def dask_gated_classification(
    X,
    y,
    *,
    alpha,
    penalty,
    n_arrangements,
    loss="log_loss",
    sample_weight=None,
    fit_intercept=True,
    dtype=np.float64,
    tol=1e-4,
    max_iter=2000,
    random_state=None,
    inner_block_size=8192,
    client=None,
    callback=None,
    gates=None,
    coef_init=None,
    intercept_init=None,
):
    """Solve the gated-ReLU group lasso for a classification loss on a dask cluster.

    The labels are found on the client from a reduction (``np.unique`` of
    each block's labels), then encoded on the workers as the in-memory
    classifier encodes them (``+-1`` for two classes, one-hot for more); the
    encoded targets stay with their rows. Every evaluation is a few rounds
    of sums: damped Newton steps on the intercept (``C`` gradient and
    ``C x C`` Hessian entries per block, the predictions kept on the
    workers), then the adjoint of the datafit's gradient (``d x P x C``),
    then the row-separable dual objective at the scaled dual point
    ``-c grad`` (one scalar per block), as ``ConvexProblem.dual_value``
    builds it in memory.

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
        Data, chunked by rows (column chunks are merged).
    y : dask.array.Array or ndarray of shape (n_samples,)
        Class labels (rechunked like the rows of ``X``).
    alpha : float
        Penalty strength (classification losses are scale free: used as
        given, as by the classifier).
    penalty : BlockPenalty
        The block norm (``GroupL2`` or ``GroupNuclear``).
    n_arrangements : int
        Gates drawn (deduplicated like ``sample_arrangements``).
    loss : {"log_loss", "squared_error"}, default="log_loss"
        Logistic (two classes) or multinomial (more) cross-entropy, or the
        squared error on the encoded labels.
    sample_weight : dask.array.Array or ndarray of shape (n_samples,), default=None
        Non-negative row weights, kept on the workers and normalized to sum
        to one. None: uniform weights.
    fit_intercept : bool, default=True
        Hidden biases and a free output intercept.
    dtype : {np.float32, np.float64}, default=np.float64
        Compute dtype of the products on the workers; the datafit, sums and
        the final certificate are float64.
    tol : float, default=1e-4
        Target relative certified gap.
    max_iter : int, default=2000
        Maximum FISTA iterations.
    random_state : int, RandomState instance or None, default=None
        Seed of the gates.
    inner_block_size : int, default=8192
        Rows per block of each worker's
        :class:`~skconvex.programs.row_blocks.RowBlockOperator`.
    client : distributed.Client, default=None
        The client; the active one when None.
    callback : callable, default=None
        Called as ``callback(iteration)`` after every iteration.
    gates : ndarray of shape (n_features + fit_intercept, n_patterns), default=None
        Gates to use instead of drawing ``n_arrangements`` (a warm start
        reuses the previous fit's); they are not deduplicated.
    coef_init : ndarray of shape (n_features + fit_intercept, n_patterns, n_outputs), default=None
        First iterate (a warm start: the previous solution on ``gates``).
        Ignored unless ``gates`` is given and its shape matches.
    intercept_init : ndarray of shape (n_outputs,), default=None
        First intercept of the Newton steps on the intercept (a warm start).

    Returns
    -------
    result : SolveResult
        As :func:`dask_gated_regression`; ``info`` also holds ``classes``.

    Raises
    ------
    DaskSolveError
        If the cluster loses data it cannot recompute.
    ValueError
        If no client is active, the inputs do not match, the labels are not
        classification targets or fewer than two classes are present, or
        ``sample_weight`` is invalid.
    """
    from sklearn.utils.multiclass import check_classification_targets

    from .programs.datafits import Logistic, Multinomial, SquaredError

    t0 = time.perf_counter()
    client = client or active_client()
    if client is None:
        raise ValueError("dask_gated_classification needs an active distributed.Client.")
    dtype = np.dtype(dtype)
    if np.ndim(y) != 1:
        raise ValueError(f"y must be 1-D class labels on the cluster, got shape {np.shape(y)}.")
    xs, ys, ws, _ = _row_chunks(client, X, y, sample_weight)
    # Labels: a reduction of each block's distinct labels, never the rows.
    classes = np.unique(np.concatenate(client.gather(client.map(_block_labels, ys, pure=False))))
    check_classification_targets(classes)
    if len(classes) < 2:
        raise ValueError(
            "The classifier needs samples of at least 2 classes in the data, but the data "
            f"contains only one class: {classes[0]!r}."
        )
    cluster = _Cluster(client, [client.submit(_make_class_block, xk, yk, wk, classes, fit_intercept, dtype,
                                              pure=False) for xk, yk, wk in zip(xs, ys, ws)])
    del xs, ys, ws
    parts = cluster.map(_block_target_sums)
    if not all(bool(p[5][0]) for p in parts):
        raise ValueError("sample_weight contains NaN or infinity.")
    if min(float(p[4][0]) for p in parts) < 0:
        raise ValueError("sample_weight must be non-negative.")
    wsum = float(sum(p[1] for p in parts)[0])
    if not wsum > 0:
        raise ValueError("sample_weight must have a positive sum.")
    n = int(sum(p[0] for p in parts)[0])
    n_outputs = 1 if len(classes) == 2 else len(classes)
    datafit = SquaredError() if loss == "squared_error" else (Logistic() if len(classes) == 2 else Multinomial())
    d = X.shape[1] + int(fit_intercept)
    s = 1.0 / wsum
    alpha_abs = float(alpha)

    gates, coef_init = _start(cluster, gates, coef_init, d, n_outputs, n_arrangements, random_state, dtype)
    P = gates.shape[1]
    cluster.replace(_attach_patterns, gates, n_outputs, dtype, inner_block_size)
    shape = (d, P, n_outputs)
    # Softmax is shift invariant: its intercept Hessian is singular along the
    # ones vector, made invertible as Multinomial.optimal_intercept does.
    shift = np.ones((n_outputs, n_outputs)) / n_outputs if isinstance(datafit, Multinomial) else 0.0
    b0 = np.zeros(n_outputs)
    if coef_init is not None and intercept_init is not None and np.size(intercept_init) == n_outputs:
        b0 = np.array(intercept_init, dtype=np.float64).reshape(n_outputs)
    state = {"b": b0}

    def evaluate(W, float64=False):
        b, _ = _intercept_newton(cluster, W, state["b"], datafit, s, fit_intercept, shift, float64)
        if fit_intercept:
            if isinstance(datafit, Multinomial):
                b = b - b.mean()
            state["b"] = b
        value, G, _ = cluster.reduce(_block_datafit_gradient, b, datafit, s, sent=b.nbytes)
        primal = float(value[0]) + alpha_abs * penalty.value(W)
        dn = penalty.dual_norm(G)
        c = 1.0 if dn == 0 else min(1.0, alpha_abs / dn)
        (dual,) = cluster.reduce(_block_dual, c, datafit, s, sent=8)
        return primal, float(dual[0]), b, G

    # First step: the datafit's curvature bound times the top eigenvalue of
    # A^T S A on the first working set.
    report = {
        "gates": gates, "alpha": alpha_abs, "y_1d": True, "classes": classes, "n_samples": n,
        "n_outputs": n_outputs, "newton_steps": 0,
    }
    polish = _newton_polish(
        cluster, lambda support: _ClusterClassifierSupport(cluster, s, support, datafit, fit_intercept, shift),
        penalty, alpha_abs, dtype, tol, report,
    )
    rounds = _ClassifierRounds(
        cluster, datafit, s, fit_intercept, shift, isinstance(datafit, Multinomial), penalty, alpha_abs, state
    )
    return _certified_fista(
        cluster, evaluate, shape, s, datafit.lipschitz, penalty, alpha_abs, tol, max_iter, callback, dtype, t0,
        report, rounds, coef_init=coef_init, polish=polish,
    )
