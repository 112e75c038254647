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
from sklearn.utils import gen_batches

from ._config import memory_budget

__all__ = [
    "factorize_blocks",
    "factorize_columns",
    "gated_forward",
    "relu_forward",
    "weight_decay",
]


def factorize_blocks(W, *, rtol=1e-10):
    """Balanced rank-one factors of every non-zero block of ``W``.

    Parameters
    ----------
    W : ndarray of shape (n_features, n_patterns, n_outputs)
        Convex blocks.
    rtol : float, default=1e-10
        Singular values below ``rtol`` times the largest one of all blocks are
        treated as zero.

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
    blocks = np.ascontiguousarray(W.transpose(1, 0, 2), dtype=np.float64)
    U, s, Vt = np.linalg.svd(blocks, full_matrices=False)
    smax = s.max() if s.size else 0.0
    keep = s > rtol * smax if smax > 0 else np.zeros_like(s, dtype=bool)
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
    return gen_batches(n_samples, size)


def gated_forward(X, gates, hidden, output, intercept=None):
    """Compute the output of a gated network.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Inputs (augmented with a ones column when neurons carry a bias).
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
    out = np.empty((X.shape[0], output.shape[1]), dtype=np.result_type(X, hidden))
    for rows in _row_batches(X.shape[0], hidden.shape[0], X.itemsize):
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
    X : ndarray of shape (n_samples, n_features)
        Inputs (augmented with a ones column when neurons carry a bias).
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
    out = np.empty((X.shape[0], output.shape[1]), dtype=np.result_type(X, hidden))
    for rows in _row_batches(X.shape[0], hidden.shape[0], X.itemsize):
        out[rows] = np.maximum(X[rows] @ hidden.T, 0) @ output
    if intercept is not None:
        out += intercept
    return out
