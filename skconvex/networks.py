"""From convex solutions back to neural-network weights, and back to predictions.

Two-layer networks appear in two forms in the package:

* **gated** networks :math:`f(x) = \\sum_j 1[\\tilde x^\\top g_j \\ge 0]\\,
  (\\tilde x^\\top u_j)\\, a_j^\\top + b`, whose gates :math:`g_j` are fixed;
* **ReLU** networks :math:`f(x) = \\sum_j (\\tilde x^\\top u_j)_+ a_j^\\top + b`,

with :math:`\\tilde x = (x, 1)` when neurons carry a bias. A convex block
:math:`W_p` (shape ``d x C``) becomes neurons through its SVD
:math:`W_p = \\sum_k \\sigma_k p_k q_k^\\top`: neuron :math:`k` has hidden
weights :math:`\\sqrt{\\sigma_k}\\,p_k` and output weights
:math:`\\sqrt{\\sigma_k}\\,q_k` (for one output this is
:math:`u = W_p/\\sqrt{\\|W_p\\|}`, :math:`a = \\sqrt{\\|W_p\\|}`, Pilanci & Ergen,
2020). The factorization is balanced, so the weight decay
:math:`\\tfrac12\\sum_j \\|u_j\\|^2 + \\|a_j\\|^2` of the recovered neurons
equals :math:`\\sum_p \\|W_p\\|_*`, the convex penalty.
"""

import numpy as np

from ._config import memory_budget
from .programs._chunks import row_batches

__all__ = [
    "factorize_blocks",
    "factorize_columns",
    "gated_forward",
    "relu_forward",
    "weight_decay",
    "cnn_forward",
    "three_layer_forward",
    "batchnorm_relu_forward",
]


def factorize_blocks(W, *, rtol=1e-10, eps=None):
    """Balanced rank-one factors of every non-zero block of ``W``.

    Parameters
    ----------
    W : ndarray of shape (n_features, n_patterns, n_outputs)
        Convex blocks.
    rtol : float, default=1e-10
        Singular values below ``rtol`` times the largest one of all blocks are
        treated as zero, and so are those below the rounding level of their
        own block (``max(n_features, n_outputs) * eps`` times the block's
        largest singular value).
    eps : float, default=None
        Relative rounding of the entries of ``W``: the machine epsilon of the
        dtype the blocks were computed in (float32 blocks stored in float64
        keep float32's). None: that of ``W``'s dtype.

    Returns
    -------
    hidden : ndarray of shape (n_neurons, n_features)
        Hidden weights :math:`\\sqrt{\\sigma_k}\\,p_k`.
    output : ndarray of shape (n_neurons, n_outputs)
        Output weights :math:`\\sqrt{\\sigma_k}\\,q_k`.
    block : ndarray of shape (n_neurons,)
        Index of the block (pattern) each neuron comes from.
    """
    d, P, C = W.shape
    # A block stored in float32 carries singular values of about 1e-8 of its
    # own largest one from rounding alone; counted as neurons they would make
    # a float32 fit report several times the neurons of the same float64 fit.
    if eps is None:
        eps = np.finfo(W.dtype).eps if np.issubdtype(W.dtype, np.floating) else np.finfo(np.float64).eps
    blocks = np.ascontiguousarray(W.transpose(1, 0, 2), dtype=np.float64)
    U, s, Vt = np.linalg.svd(blocks, full_matrices=False)
    smax = s.max() if s.size else 0.0
    keep = s > rtol * smax if smax > 0 else np.zeros_like(s, dtype=bool)
    if s.size:
        keep &= s > max(d, C) * eps * s[:, :1]
    p_idx, k_idx = np.nonzero(keep)
    root = np.sqrt(s[p_idx, k_idx])
    # Orient each factor so that the output weight of one-output networks is
    # signed and the hidden weight is the direction of the block.
    hidden = U[p_idx, :, k_idx] * root[:, None]
    output = Vt[p_idx, k_idx, :] * root[:, None]
    if C == 1:
        sign = np.sign(output[:, 0])
        sign[sign == 0] = 1
        hidden *= sign[:, None]
        output *= sign[:, None]
    return hidden, output, p_idx


def factorize_columns(W, signs=None, *, rtol=1e-10):
    """Split an exact ReLU solution into neurons, one per non-zero column of ``W``.

    Column :math:`v = W_{:,k,c}` of block :math:`k` (sign :math:`\\epsilon_k`)
    and output :math:`c` becomes the neuron with hidden weights
    :math:`u = v/\\sqrt{\\|v\\|}` and output weights
    :math:`a = \\epsilon_k\\sqrt{\\|v\\|}\\,e_c` (Pilanci & Ergen, 2020). When
    :math:`v` lies in its cone, :math:`(Xu)_+ a_c = \\epsilon_k D_k X v`, so the
    network reproduces the convex predictions, and its weight decay
    :math:`\\tfrac12(\\|u\\|^2 + \\|a\\|^2) = \\|v\\|` is the convex penalty.

    Parameters
    ----------
    W : ndarray of shape (n_features, n_blocks, n_outputs)
        Convex columns.
    signs : ndarray of shape (n_blocks,), default=None
        Sign :math:`\\epsilon_k = \\pm 1` of each block (``+1`` when None).
    rtol : float, default=1e-10
        Columns whose norm is at most ``rtol`` times the largest one are
        treated as zero.

    Returns
    -------
    hidden : ndarray of shape (n_neurons, n_features)
        Hidden weights :math:`u`.
    output : ndarray of shape (n_neurons, n_outputs)
        Output weights, one non-zero entry per neuron.
    block : ndarray of shape (n_neurons,)
        Block of each neuron.
    keep : ndarray of shape (n_blocks, n_outputs), dtype bool
        Which columns became neurons.
    """
    W = np.asarray(W, dtype=np.float64)
    d, B, C = W.shape
    norms = np.sqrt(np.einsum("dkc,dkc->kc", W, W))
    top = norms.max() if norms.size else 0.0
    keep = norms > rtol * top if top > 0 else np.zeros((B, C), dtype=bool)
    k_idx, c_idx = np.nonzero(keep)
    root = np.sqrt(norms[k_idx, c_idx])
    hidden = W[:, k_idx, c_idx].T / root[:, None]
    output = np.zeros((len(k_idx), C))
    sign = np.ones(B) if signs is None else np.asarray(signs, dtype=np.float64)
    output[np.arange(len(k_idx)), c_idx] = sign[k_idx] * root
    return hidden, output, k_idx, keep


def weight_decay(hidden, output):
    """Compute the weight decay :math:`\\tfrac12\\sum_j \\|u_j\\|^2 + \\|a_j\\|^2` of a two-layer network.

    Parameters
    ----------
    hidden : ndarray of shape (n_neurons, n_features)
        Hidden weights (biases included as a column when they are penalized).
    output : ndarray of shape (n_neurons, n_outputs)
        Output weights.

    Returns
    -------
    penalty : float
        Half the sum of all squared weights.
    """
    return 0.5 * float(np.sum(hidden**2) + np.sum(output**2))


def _row_batches(n_samples, n_columns, itemsize):
    # Keep the (batch, n_columns) intermediates well inside the memory budget.
    per_row = max(1, n_columns) * (itemsize * 2 + 1)
    size = int(max(1, min(n_samples, min(memory_budget() // 8, 2**26) // per_row)))
    return row_batches(n_samples, size)


def gated_forward(X, gates, hidden, output, intercept=None):
    """Compute the output of a gated network.

    Parameters
    ----------
    X : {ndarray, sparse array} of shape (n_samples, n_features)
        Inputs (augmented with a ones column when neurons carry a bias); a
        CSR array is sliced by rows and multiplied without densifying.
    gates : ndarray of shape (n_features, n_neurons)
        Gate of each neuron.
    hidden : ndarray of shape (n_neurons, n_features)
        Hidden weights.
    output : ndarray of shape (n_neurons, n_outputs)
        Output weights.
    intercept : ndarray of shape (n_outputs,), default=None
        Output intercept.

    Returns
    -------
    out : ndarray of shape (n_samples, n_outputs)
        Network outputs, computed in row batches that fit the memory budget.
    """
    out = np.empty((X.shape[0], output.shape[1]), dtype=np.result_type(X.dtype, hidden))
    for rows in _row_batches(X.shape[0], hidden.shape[0], X.dtype.itemsize):
        Xb = X[rows]
        act = (Xb @ gates >= 0) * (Xb @ hidden.T)
        out[rows] = act @ output
    if intercept is not None:
        out += intercept
    return out


def relu_forward(X, hidden, output, intercept=None):
    """Compute the output of a ReLU network :math:`(X U^\\top)_+ A + b`.

    Parameters
    ----------
    X : {ndarray, sparse array} of shape (n_samples, n_features)
        Inputs (augmented with a ones column when neurons carry a bias); a
        CSR array is sliced by rows and multiplied without densifying.
    hidden : ndarray of shape (n_neurons, n_features)
        Hidden weights.
    output : ndarray of shape (n_neurons, n_outputs)
        Output weights.
    intercept : ndarray of shape (n_outputs,), default=None
        Output intercept.

    Returns
    -------
    out : ndarray of shape (n_samples, n_outputs)
        Network outputs, computed in row batches that fit the memory budget.
    """
    out = np.empty((X.shape[0], output.shape[1]), dtype=np.result_type(X.dtype, hidden))
    for rows in _row_batches(X.shape[0], hidden.shape[0], X.dtype.itemsize):
        out[rows] = np.maximum(X[rows] @ hidden.T, 0) @ output
    if intercept is not None:
        out += intercept
    return out


# --------------------------------------------------------------------------
# convolutional networks
# --------------------------------------------------------------------------


def _region_matrix(regions, pool_weights):
    """``(K, R)`` matrix pooling filter positions into regions with their weights."""
    R = int(regions.max()) + 1
    Q = np.zeros((len(regions), R))
    Q[np.arange(len(regions)), regions] = pool_weights
    return Q


def cnn_forward(
    patches, filters, output, *, regions, pool_weights, intercept=None, gates=None, sample_gates=None
):
    """Output of a two-layer CNN with (local) pooling, in sample batches.

    .. math:: f(x) = \\sum_j \\sum_r a_{jr}^\\top \\sum_{k \\in r} w_k\\,
              \\phi_j(x_k), \\qquad \\phi_j(x_k) = (x_k^\\top u_j)_+
              \\ \\text{or}\\ 1[x_k^\\top g_j \\ge 0]\\, x_k^\\top u_j \\ \\text{(gated)}.

    Parameters
    ----------
    patches : ndarray of shape (n_samples, n_patches, patch_size)
        Patches (with the ones entry when filters carry a bias).
    filters : ndarray of shape (n_filters, patch_size)
        Filters :math:`u_j` (bias last).
    output : ndarray of shape (n_filters, n_regions, n_outputs)
        Output weights :math:`a_{jr}`.
    regions : ndarray of shape (n_patches,)
        Pooling region of each filter position.
    pool_weights : ndarray of shape (n_patches,)
        Pooling weight :math:`w_k` of each filter position.
    intercept : ndarray of shape (n_outputs,), default=None
        Output intercept.
    gates : ndarray of shape (patch_size, n_filters), default=None
        Gates :math:`g_j` of a gated CNN; None for ReLU.
    sample_gates : ndarray of shape (n_samples, n_filters), default=None
        Gates of a gated CNN evaluated on whole images (the same for every
        patch of a sample, ``arrangement="conv"``); None for ReLU.

    Returns
    -------
    out : ndarray of shape (n_samples, n_outputs)
        Network outputs.
    """
    n, K, h = patches.shape
    m, R, C = output.shape
    dtype = np.result_type(patches.dtype, np.float32)
    Q = _region_matrix(np.asarray(regions), np.asarray(pool_weights)).astype(dtype)
    out = np.zeros((n, C), dtype=dtype)
    filters = np.asarray(filters, dtype=dtype)
    output = np.asarray(output, dtype=dtype)
    size = int(max(1, min(n, memory_budget() // 16 // max(K * max(m, 1) * 8, 1))))
    for rows in row_batches(n, size) if m else ():
        P = patches[rows].reshape(-1, h)
        act = P @ filters.T
        if sample_gates is not None:
            act *= np.repeat(np.asarray(sample_gates[rows], dtype=dtype), K, axis=0)
        elif gates is not None:
            act *= P @ np.asarray(gates, dtype=dtype) >= 0
        else:
            np.maximum(act, 0, out=act)
        pooled = np.einsum("nkm,kr->nrm", act.reshape(-1, K, m), Q)
        out[rows] = np.einsum("nrm,mrc->nc", pooled, output)
    if intercept is not None:
        out += np.asarray(intercept, dtype=dtype)
    return out


def three_layer_forward(
    patches, filters, second_weights, subnetworks, output, *, pool_weights, intercept=None
):
    """Output of a three-layer CNN of parallel sub-networks with global pooling.

    .. math:: f(x) = \\sum_t a_t^\\top \\sum_k w_k \\Big(\\sum_{j \\in t} v_j\\,
              (x_k^\\top u_j)_+\\Big)_+ :

    convolution with filters :math:`u_j`, ReLU, a 1x1 convolution that sums
    the channels of sub-network :math:`t` with weights :math:`v_j`, ReLU,
    pooling and a linear output layer.

    Parameters
    ----------
    patches : ndarray of shape (n_samples, n_patches, patch_size)
        Patches.
    filters : ndarray of shape (n_filters, patch_size)
        First-layer filters :math:`u_j` (bias last).
    second_weights : ndarray of shape (n_filters,)
        Second-layer weight :math:`v_j` of each filter.
    subnetworks : ndarray of shape (n_filters,)
        Sub-network of each filter.
    output : ndarray of shape (n_subnetworks, n_outputs)
        Output weights :math:`a_t`.
    pool_weights : ndarray of shape (n_patches,)
        Pooling weights.
    intercept : ndarray of shape (n_outputs,), default=None
        Output intercept.

    Returns
    -------
    out : ndarray of shape (n_samples, n_outputs)
        Network outputs.
    """
    n, K, h = patches.shape
    S, C = output.shape
    m = len(second_weights)
    dtype = np.result_type(patches.dtype, np.float32)
    V = np.zeros((m, S), dtype=dtype)
    V[np.arange(m), np.asarray(subnetworks, dtype=np.intp)] = second_weights
    w = np.asarray(pool_weights, dtype=dtype)
    out = np.zeros((n, C), dtype=dtype)
    size = int(max(1, min(n, memory_budget() // 16 // max(K * max(m + S, 1) * 8, 1))))
    for rows in row_batches(n, size) if m else ():
        P = patches[rows].reshape(-1, h)
        hidden = np.maximum(np.maximum(P @ np.asarray(filters, dtype=dtype).T, 0) @ V, 0)
        pooled = np.einsum("nks,k->ns", hidden.reshape(-1, K, S), w)
        out[rows] = pooled @ np.asarray(output, dtype=dtype)
    if intercept is not None:
        out += np.asarray(intercept, dtype=dtype)
    return out


# --------------------------------------------------------------------------
# batch-normalized networks
# --------------------------------------------------------------------------


def batchnorm_relu_forward(X, hidden, bn_mean, bn_std, gamma, beta, output, intercept=None):
    """Output of a two-layer batch-normalized ReLU network with frozen statistics.

    .. math:: f(x) = \\sum_j \\Big(\\gamma_j \\frac{x^\\top w_j - \\mu_j}{\\sigma_j}
              + \\beta_j\\Big)_+ a_j^\\top + b,

    with the term :math:`(x^\\top w_j - \\mu_j)/\\sigma_j` taken as 0 for a
    neuron with :math:`\\sigma_j = 0` (a constant neuron, :math:`\\gamma_j = 0`).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Inputs.
    hidden : ndarray of shape (n_neurons, n_features)
        First-layer weights :math:`w_j`.
    bn_mean : ndarray of shape (n_neurons,)
        Frozen batch means :math:`\\mu_j` of :math:`x^\\top w_j`.
    bn_std : ndarray of shape (n_neurons,)
        Frozen batch standard deviations :math:`\\sigma_j`.
    gamma : ndarray of shape (n_neurons,)
        BN scales.
    beta : ndarray of shape (n_neurons,)
        BN shifts.
    output : ndarray of shape (n_neurons, n_outputs)
        Output weights :math:`a_j`.
    intercept : ndarray of shape (n_outputs,), default=None
        Output intercept :math:`b`.

    Returns
    -------
    out : ndarray of shape (n_samples, n_outputs)
        Network outputs.

    Examples
    --------
    >>> import numpy as np
    >>> from skconvex.networks import batchnorm_relu_forward
    >>> X = np.array([[0.0], [1.0], [2.0]])
    >>> out = batchnorm_relu_forward(X, np.ones((1, 1)), np.array([1.0]), np.array([1.0]),
    ...                              np.array([2.0]), np.array([0.0]), np.ones((1, 1)))
    >>> out.ravel().tolist()
    [0.0, 0.0, 2.0]
    """
    dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
    std = np.asarray(bn_std, dtype=np.float64)
    scale = np.divide(
        np.asarray(gamma, dtype=np.float64), std, out=np.zeros_like(std), where=std > 0
    )
    # Folding the normalization into the first layer gives one GEMM.
    folded = (np.asarray(hidden, dtype=np.float64) * scale[:, None]).astype(dtype)
    shift = (np.asarray(beta, dtype=np.float64) - scale * np.asarray(bn_mean)).astype(dtype)
    H = X @ folded.T
    H += shift
    np.maximum(H, 0, out=H)
    out = H @ np.asarray(output, dtype=dtype)
    if intercept is not None:
        out += np.asarray(intercept, dtype=dtype)
    return out


# --------------------------------------------------------------------------
# parallel three-layer and deep path-regularized networks
# --------------------------------------------------------------------------

_SIGNS = np.array([1.0, -1.0])


def _recover_three_layer(W, P1, P2, gated, rtol=1e-10):
    """Sub-networks (W1, w2, w3) from the convex columns (see the estimators' Notes)."""
    W = np.asarray(W, dtype=np.float64)
    d, B, C = W.shape
    if gated:
        Wr = W.reshape(d, P2, 1, P1, 1, C)
    else:
        Wr = W.reshape(d, P2, 2, P1, 2, C)
    norms = np.sqrt(np.einsum("dlaisc,dlaisc->laisc", Wr, Wr))
    top = norms.max() if norms.size else 0.0
    keep = norms > rtol * top if top > 0 else np.zeros(norms.shape, bool)
    norms = np.where(keep, norms, 0.0)
    S = norms.sum(axis=(2, 3))  # (P2, a, C)
    live = S > 0
    sub_index = np.full(S.shape, -1)
    sub_index[live] = np.arange(int(live.sum()))
    l_sub, a_sub, c_sub = np.nonzero(live)
    output = np.zeros((len(l_sub), C))
    sign_a = np.array([1.0, -1.0]) if not gated else np.array([1.0])
    output[np.arange(len(l_sub)), c_sub] = sign_a[a_sub] * np.sqrt(S[l_sub, a_sub, c_sub])
    l, a, i, s, c = np.nonzero(keep)
    sub = sub_index[l, a, c]
    q = Wr[:, l, a, i, s, c].T
    nq = norms[l, a, i, s, c]
    hidden = q / np.sqrt(nq * S[l, a, c])[:, None]
    sign_s = np.array([1.0, -1.0]) if not gated else np.array([1.0])
    second = sign_s[s] * np.sqrt(nq)
    return {
        "hidden": hidden,
        "second": second,
        "unit_subnetwork": sub,
        "unit_pattern": i,
        "output": output,
        "subnetwork_pattern": l_sub,
        "zeroed": ~keep & (np.sqrt(np.einsum("dlaisc,dlaisc->laisc", Wr, Wr)) > 0),
    }


def _parallel_three_layer_forward(X, hidden, second, unit_sub, output, intercept, unit_gates=None, sub_gates=None):
    """Outputs of parallel three-layer networks (ReLU, or gated when gates are given)."""
    Z = X @ hidden.T
    H = (Z >= 0) * Z if unit_gates is None else (X @ unit_gates >= 0) * Z
    K = output.shape[0]
    h2 = np.zeros((X.shape[0], K), dtype=Z.dtype)
    if len(unit_sub):
        # Sum each sub-network's units: one sparse-free matmul with a 0/1 map.
        assign = np.zeros((len(unit_sub), K), dtype=Z.dtype)
        assign[np.arange(len(unit_sub)), unit_sub] = second
        h2 = H @ assign
    h2 = np.maximum(h2, 0) if sub_gates is None else sub_gates * h2
    return h2 @ output + intercept


def _recover_path(W, arr, gated, rtol=1e-10):
    """Tree sub-networks from the convex columns: leaves p / |p|, edges carrying |p|."""
    W = np.asarray(W, dtype=np.float64)
    d, B, C = W.shape
    P, N1, L = arr.n_patterns, arr.n_leaves, arr.depth
    A = 1 if gated else 2
    Wr = W.reshape(d, P, A, N1, C)
    leaf_norms = np.sqrt(np.einsum("dpalc,dpalc->palc", Wr, Wr))
    group = np.sqrt(np.einsum("palc,palc->pac", leaf_norms, leaf_norms))
    top = group.max() if group.size else 0.0
    live = group > rtol * top if top > 0 else np.zeros(group.shape, bool)
    p_idx, a_idx, c_idx = np.nonzero(live)
    K = len(p_idx)
    norms = leaf_norms[p_idx, a_idx, :, c_idx]  # (K, N1)
    vecs = Wr[:, p_idx, a_idx, :, c_idx]  # (d, K, N1) -> below
    vecs = np.moveaxis(Wr, 0, -1)[p_idx, a_idx, :, c_idx, :]  # (K, N1, d)
    with np.errstate(invalid="ignore", divide="ignore"):
        leaf_weights = np.where(norms[:, :, None] > 0, vecs / norms[:, :, None], 0.0)
    edges = []
    for k in range(L - 2):
        e = arr.edge_weights[k][p_idx]
        sign = 1.0 if gated else np.where(e < 0, -1.0, 1.0)
        edges.append(sign * norms if k == 0 else sign * np.ones_like(e))
    output = np.zeros((K, C))
    output[np.arange(K), c_idx] = 1.0 if gated else _SIGNS[a_idx]
    return {
        "leaf_weights": leaf_weights,
        "edge_weights": tuple(edges),
        "output": output,
        "subnetwork": p_idx,
        "group_norms": group,
    }


def _tree_forward(X, leaf_weights, edge_weights, output, intercept, gates=None):
    """Outputs of parallel tree sub-networks (ReLU, or gated by per-level ``gates``)."""
    K, N1, d = leaf_weights.shape
    n = X.shape[0]
    width = N1 if len(edge_weights) <= 1 else int(round(N1 ** (1.0 / len(edge_weights))))
    Z = (X @ leaf_weights.reshape(K * N1, d).T).reshape(n, K, N1)
    a = np.maximum(Z, 0) if gates is None else gates[0] * Z
    for level, e in enumerate(edge_weights, start=1):
        N = a.shape[2]
        z = (a * e[None]).reshape(n, K, N // width, width).sum(axis=3)
        a = np.maximum(z, 0) if gates is None else gates[level] * z
    return a[:, :, 0] @ output + intercept


def _path_norms(leaf_weights, edge_weights, output):
    """:math:`\\ell_2` path norm of every tree sub-network."""
    K, N1, _ = leaf_weights.shape
    width = N1 if len(edge_weights) <= 1 else int(round(N1 ** (1.0 / len(edge_weights))))
    sq = np.einsum("kld,kld->kl", leaf_weights, leaf_weights)
    for level, e in enumerate(edge_weights):
        sq = sq * np.repeat(e**2, width**level, axis=1)[:, :N1]
    return np.sqrt(sq.sum(axis=1) * np.einsum("kc,kc->k", output, output))
