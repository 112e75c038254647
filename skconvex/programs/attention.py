"""Problem pieces of the convex attention heads: token gates, lifted features, operator.

Sahiner et al. (2022) show that a token-mixing head trained with weight decay
is a convex program in the *products* of its two weight matrices. Every head
of :class:`~skconvex.ConvexAttentionHead` has the form

.. math:: \\hat y_i[c] = \\sum_{k=1}^K \\langle \\Phi_k(X_i),\\, Z_k[:, :, c] \\rangle,
          \\qquad Z_k \\in \\mathbb{R}^{m_1 \\times m_2 \\times C},

where :math:`X_i \\in \\mathbb{R}^{s \\times d}` holds the ``s`` tokens of
sample ``i``, :math:`\\Phi_k(X_i) \\in \\mathbb{R}^{m_1 \\times m_2}` is a
*lifted* (second- or third-order) token feature of block ``k`` (one block per
gate, per Fourier mode, or a single block) and :math:`Z_k` collects
:math:`\\sum_j \\operatorname{vec}(W_{1j}) \\operatorname{vec}(W_{2j})^\\top`
over the heads ``j`` of the block. Weight decay
:math:`\\tfrac12\\sum_j \\|W_{1j}\\|_F^2 + \\|W_{2j}\\|_F^2` becomes the block
nuclear norm :math:`\\sum_k \\|Z_k\\|_*` of the matrices
:math:`Z_k \\in \\mathbb{R}^{m_1 \\times m_2 C}` (Srebro's factorization
identity), so the program is solved by
:class:`~skconvex.programs.problem.ConvexProblem` with
:class:`~skconvex.programs.penalties.GroupNuclear` and the foundation's FISTA. Constant
weights of the penalty (pooling norms, Fourier normalizations) are absorbed
into :math:`\\Phi_k` so that the penalty is always the plain sum of nuclear
norms.

Lifted features per head (``p`` is the pooling vector; tokens carry a
trailing 1 when the heads have biases):

* ``self_attention`` -- head :math:`p^\\top(\\sigma(X W_1 X^\\top) X W_2)`:
  :math:`\\Phi[(a, b), e] = \\sum_{t, u} p_t M[t, u]\\, x_t[a]\\, x_u[b]\\, x_u[e]`
  with :math:`M = 1` (linear) or :math:`M[t, u] = 1[x_t^\\top \\Gamma_k x_u \\ge 0]`
  (gated, one block per token-pair gate :math:`\\Gamma_k`).
* ``mlp_mixer`` -- head :math:`p^\\top(\\sigma(A X) B)` with token mixing
  :math:`A` and channel mixing :math:`B`: linear,
  :math:`\\Phi[u, e] = \\|p\\|\\, X[u, e]` (only :math:`A^\\top p` matters and the
  least :math:`\\|A\\|_F` giving it is :math:`\\|A^\\top p\\| / \\|p\\|`); gated,
  :math:`\\Phi[(t, u), e] = p_t\\, M[t, e]\\, X[u, e]` with
  :math:`M = 1[\\Gamma_k X \\ge 0]`.
* ``fno`` -- spectral convolution along tokens, per-mode channel mixing,
  token-wise readout; see :func:`head_features`.

References
----------
A. Sahiner, T. Ergen, B. Ozturkler, J. Pauly, M. Mardani and M. Pilanci.
Unraveling attention via convex duality: analysis and interpretations of
vision transformers. ICML 2022, arXiv:2205.08078.
"""

import numpy as np

from .._config import check_memory, memory_budget
from ._chunks import row_batches, seed_sequence

__all__ = [
    "TokenFeatureOperator",
    "attention_operator",
    "fno_mode_weights",
    "head_features",
    "pooling_weights",
    "sample_token_gates",
    "token_gate_shape",
    "token_masks",
    "tokens_from_features",
]

HEADS = ("self_attention", "mlp_mixer", "fno")
ACTIVATIONS = ("linear", "gated_relu")


def tokens_from_features(X, n_tokens, *, bias=False):
    """Split the rows of ``X`` into tokens.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_tokens * token_dim)
        Each row is the concatenation of its tokens.
    n_tokens : int
        Number of tokens per sample; must divide ``X.shape[1]``.
    bias : bool, default=False
        Append a constant 1 to every token (the heads' biases then live inside
        their penalized weights).

    Returns
    -------
    tokens : ndarray of shape (n_samples, n_tokens, token_dim + bias)
        The tokens of each sample (a view of ``X`` when ``bias`` is False).

    Raises
    ------
    ValueError
        If ``n_tokens`` does not divide the number of features.
    """
    n_samples, n_features = X.shape
    n_tokens = int(n_tokens)
    if n_tokens < 1 or n_features % n_tokens:
        raise ValueError(
            f"n_tokens={n_tokens} does not divide the number of features "
            f"{n_features}: X must have n_tokens * token_dim columns, the tokens "
            "of each sample one after the other."
        )
    tokens = X.reshape(n_samples, n_tokens, n_features // n_tokens)
    if bias:
        ones = np.ones((n_samples, n_tokens, 1), dtype=X.dtype)
        tokens = np.concatenate([tokens, ones], axis=2)
    return tokens


def pooling_weights(pooling, n_tokens, dtype=np.float64):
    """The pooling vector :math:`p` (head output :math:`p^\\top f(X)`).

    Parameters
    ----------
    pooling : {"mean", "first"}
        ``"mean"``: :math:`p = \\mathbf 1/s`; ``"first"``: :math:`p = e_1` (a
        class-token readout).
    n_tokens : int
        Number of tokens ``s``.
    dtype : dtype, default=np.float64
        Dtype of the result.

    Returns
    -------
    p : ndarray of shape (n_tokens,)
        Non-negative weights of the tokens.
    """
    if pooling == "mean":
        return np.full(n_tokens, 1.0 / n_tokens, dtype=dtype)
    if pooling == "first":
        p = np.zeros(n_tokens, dtype=dtype)
        p[0] = 1.0
        return p
    raise ValueError(f"pooling must be 'mean' or 'first', got {pooling!r}.")


def fno_mode_weights(n_tokens):
    """Multiplicity and penalty weight of each Fourier mode of the FNO head.

    Parameters
    ----------
    n_tokens : int
        Number of tokens ``s``; the head keeps the ``s // 2 + 1`` modes of a
        real FFT.

    Returns
    -------
    multiplicity : ndarray of shape (s // 2 + 1,)
        :math:`c_k = 1` for the real modes (zero and, for even ``s``, the
        Nyquist mode), 2 for the others (they stand for a conjugate pair).
    weight : ndarray of shape (s // 2 + 1,)
        :math:`w_k = \\sqrt{s / c_k}`, the factor of :math:`\\|Z_k\\|_*` in the
        convex penalty.
    """
    n_modes = n_tokens // 2 + 1
    mult = np.full(n_modes, 2.0)
    mult[0] = 1.0
    if n_tokens % 2 == 0:
        mult[-1] = 1.0
    return mult, np.sqrt(n_tokens / mult)


def _fno_real_modes(n_tokens):
    return fno_mode_weights(n_tokens)[0] == 1.0


def token_gate_shape(head, n_tokens, token_dim):
    """Shape of one gate of a gated head.

    Parameters
    ----------
    head : {"self_attention", "mlp_mixer", "fno"}
        Head type.
    n_tokens : int
        Number of tokens ``s``.
    token_dim : int
        Token dimension ``d`` (including the constant 1 if any).

    Returns
    -------
    shape : tuple of int
        ``(d, d)`` for self-attention, ``(s, s)`` for the mixer, ``(d,)`` for
        the FNO.
    """
    return {
        "self_attention": (token_dim, token_dim),
        "mlp_mixer": (n_tokens, n_tokens),
        "fno": (token_dim,),
    }[head]


def sample_token_gates(
    head, n_gates, n_tokens, token_dim, *, dtype=np.float64, random_state=None
):
    """Draw the fixed gates of a gated-ReLU head.

    Gates are standard Gaussian, drawn in batches of 256 from
    ``SeedSequence(random_state).spawn(n_batches)`` as in
    :func:`~skconvex.sample_arrangements`, so the first gates do not change
    when ``n_gates`` grows.

    Parameters
    ----------
    head : {"self_attention", "mlp_mixer", "fno"}
        Which head the gates serve.
    n_gates : int
        Number of gates (convex blocks).
    n_tokens : int
        Number of tokens ``s``.
    token_dim : int
        Token dimension ``d`` (including the constant 1 if any).
    dtype : dtype, default=np.float64
        Dtype of the gates.
    random_state : int, RandomState instance or None, default=None
        Seed.

    Returns
    -------
    gates : ndarray
        ``(n_gates, d, d)`` token-pair gates :math:`\\Gamma` for
        ``self_attention`` (pattern :math:`1[x_t^\\top\\Gamma x_u \\ge 0]`),
        ``(n_gates, s, s)`` token-mixing gates for ``mlp_mixer`` (pattern
        :math:`1[\\Gamma X \\ge 0]`), ``(n_gates, d)`` token gates for ``fno``
        (pattern :math:`1[X g \\ge 0]`).
    """
    shape = token_gate_shape(head, n_tokens, token_dim)
    batch = 256
    n_batches = -(-n_gates // batch)
    seeds = seed_sequence(random_state).spawn(n_batches)
    parts = []
    for b, seed in enumerate(seeds):
        size = min(batch, n_gates - b * batch)
        parts.append(np.random.default_rng(seed).standard_normal((size, *shape)))
    return np.concatenate(parts).astype(dtype, copy=False)


def token_masks(head, tokens, gates):
    """Activation patterns of gated heads.

    Parameters
    ----------
    head : {"self_attention", "mlp_mixer", "fno"}
        Head type.
    tokens : ndarray of shape (n_samples, n_tokens, token_dim)
        Tokens.
    gates : ndarray
        Gates from :func:`sample_token_gates`.

    Returns
    -------
    masks : ndarray of bool
        ``(n, K, s, s)`` token-pair patterns :math:`M[t, u]` for
        ``self_attention``, ``(n, K, s, d)`` for ``mlp_mixer``, ``(n, K, s)``
        for ``fno``.
    """
    gates = gates.astype(tokens.dtype, copy=False)
    if head == "self_attention":
        scores = np.matmul(
            np.matmul(tokens[:, None], gates[None]), tokens.transpose(0, 2, 1)[:, None]
        )
        return scores >= 0
    if head == "mlp_mixer":
        return np.matmul(gates[None], tokens[:, None]) >= 0
    return np.einsum("ntd,kd->nkt", tokens, gates) >= 0


def _block_shape(head, activation, n_tokens, token_dim, n_gates):
    """(n_blocks, m1, m2) of the lifted features."""
    s, d = n_tokens, token_dim
    gated = activation == "gated_relu"
    if head == "self_attention":
        return (n_gates if gated else 1), d * d, d
    if head == "mlp_mixer":
        return (n_gates, s * s, d) if gated else (1, s, d)
    n_modes = s // 2 + 1
    return (n_gates, 2 * n_modes * d, s) if gated else (n_modes, 2 * d, 2)


def _fno_basis(tokens):
    """:math:`\\partial h[t] / \\partial w` for the realified spectral filter ``w``.

    ``h = irfft(rfft(X) . w)`` along tokens; ``w`` has a real and an
    imaginary ``d``-vector per mode, laid out ``(mode, part, channel)``. The
    imaginary parts of the real modes do not reach ``h`` (``irfft`` drops
    them), so their columns are zero.
    """
    n, s, d = tokens.shape
    mult, _ = fno_mode_weights(s)
    n_modes = len(mult)
    X_hat = np.fft.rfft(tokens, axis=1)
    phase = np.exp(2j * np.pi * np.outer(np.arange(n_modes), np.arange(s)) / s)
    # P[n, t, k, a] = X_hat[n, k, a] e^{2 pi i k t / s}
    P = X_hat[:, None, :, :] * phase.T[None, :, :, None]
    scale = (mult / s)[None, None, :, None]
    basis = np.empty((n, s, n_modes, 2, d), dtype=tokens.dtype)
    basis[:, :, :, 0, :] = scale * P.real
    basis[:, :, :, 1, :] = -scale * P.imag
    basis[:, :, _fno_real_modes(s), 1, :] = 0.0
    return basis.reshape(n, s, 2 * n_modes * d)


def _features_batch(tokens, head, activation, p, gates):
    n, s, d = tokens.shape
    dtype = tokens.dtype
    if head == "self_attention":
        outer = np.einsum("ntb,nte->ntbe", tokens, tokens).reshape(n, s, d * d)
        if activation == "linear":
            pooled = p @ tokens
            gram = outer.sum(axis=1)
            return np.einsum("na,nf->naf", pooled, gram).reshape(n, 1, d * d, d)
        M = token_masks(head, tokens, gates).astype(dtype)
        # H[n, k, u] = sum_t p_t M[n, k, t, u] x_t is the pooled query that
        # key u meets, so the gated sum over token pairs is one batched GEMM.
        H = np.matmul(M.transpose(0, 1, 3, 2), (p[None, :, None] * tokens)[:, None])
        feats = np.matmul(H.transpose(0, 1, 3, 2), outer[:, None])
        return feats.reshape(n, -1, d * d, d)
    if head == "mlp_mixer":
        if activation == "linear":
            return (np.linalg.norm(p) * tokens)[:, None]
        M = token_masks(head, tokens, gates).astype(dtype)
        feats = (p[None, None, :, None] * M)[:, :, :, None, :] * tokens[
            :, None, None, :, :
        ]
        return feats.reshape(n, -1, s * s, d)
    if activation == "linear":
        _, weight = fno_mode_weights(s)
        X_hat = np.fft.rfft(tokens, axis=1) / weight[None, :, None]
        re, im = X_hat.real.astype(dtype), X_hat.imag.astype(dtype)
        feats = np.empty((n, len(weight), 2, d, 2), dtype=dtype)
        feats[:, :, 0, :, 0] = re
        feats[:, :, 0, :, 1] = im
        feats[:, :, 1, :, 0] = -im
        feats[:, :, 1, :, 1] = re
        return feats.reshape(n, len(weight), 2 * d, 2)
    basis = _fno_basis(tokens)
    M = token_masks(head, tokens, gates).astype(dtype)
    # Phi[n, k, l, t] = m_k[n, t] dh[t]/dw[l]
    return M[:, :, None, :] * basis.transpose(0, 2, 1)[:, None]


def head_features(
    tokens, head="self_attention", activation="linear", *, pooling="mean", gates=None
):
    """Lifted token features :math:`\\Phi_k(X_i)` of a convex head.

    Parameters
    ----------
    tokens : ndarray of shape (n_samples, n_tokens, token_dim)
        Tokens (with a trailing constant 1 if the heads have biases).
    head : {"self_attention", "mlp_mixer", "fno"}, default="self_attention"
        Head type.
    activation : {"linear", "gated_relu"}, default="linear"
        Activation of the head.
    pooling : {"mean", "first"}, default="mean"
        Pooling of the token outputs (not used by ``fno``, whose readout
        weighs every token).
    gates : ndarray, default=None
        Gates from :func:`sample_token_gates`; required for ``"gated_relu"``.

    Returns
    -------
    features : ndarray of shape (n_samples, n_blocks, m1, m2)
        Block ``k`` pairs with :math:`Z_k \\in \\mathbb{R}^{m_1 \\times m_2
        C}`, whose column ``e * C + c`` feeds output ``c``; shapes per head:

        ======================  ===============  ===================  ==========
        head, activation        n_blocks         m1                   m2
        ======================  ===============  ===================  ==========
        self_attention          1 or n_gates     d**2                 d
        mlp_mixer, linear       1                s                    d
        mlp_mixer, gated_relu   n_gates          s**2                 d
        fno, linear             s // 2 + 1       2 d                  2
        fno, gated_relu         n_gates          2 d (s // 2 + 1)     s
        ======================  ===============  ===================  ==========

        Here ``s`` is ``n_tokens`` and ``d`` the token dimension.

    Notes
    -----
    **FNO head** (our parametrization). With the real FFT along tokens
    :math:`\\hat X_k = \\sum_t X[t] e^{-2\\pi i k t / s}`, modes
    :math:`k = 0..\\lfloor s/2\\rfloor`, the head with ``m`` channels is

    .. math:: H = \\operatorname{irfft}\\big(\\hat X_k W_{1,k}\\big)_k
              \\in \\mathbb{R}^{s \\times m},\\qquad
              \\hat y = \\sum_t \\sigma(H)[t]\\, V[t] \\in \\mathbb{R}^C,

    with per-mode channel mixing :math:`W_{1,k} \\in \\mathbb{C}^{d \\times m}`
    (real for the real modes) and a token-wise readout
    :math:`V \\in \\mathbb{R}^{s \\times m \\times C}` (mean pooling followed by a
    shared projection would keep only mode 0 of a linear FNO). Linear
    :math:`\\sigma`: by Parseval, :math:`\\hat y = \\sum_k \\operatorname{Re}(\\hat
    X_k^\\top Z_k)` with :math:`Z_k = \\tfrac{c_k}{s} W_{1,k}\\overline{\\hat V_k}`
    and :math:`\\|V\\|_F^2 = \\tfrac1s\\sum_k c_k \\|\\hat V_k\\|_F^2`, so weight
    decay is :math:`\\sum_k \\sqrt{s/c_k}\\,\\|Z_k\\|_*` (complex nuclear norms,
    one per mode; :func:`fno_mode_weights`). A complex :math:`Z = A + iB` is
    carried by an unconstrained real block
    :math:`M = [[a, b], [c, e]] \\in \\mathbb{R}^{2d \\times 2C}` read through
    :math:`A = (a + e)/2`, :math:`B = (c - b)/2`: the minimal
    :math:`\\|M\\|_*` reading a given :math:`Z` is
    :math:`\\|[[A, -B], [B, A]]\\|_* = 2\\|Z\\|_*` (averaging ``M`` with its
    image under multiplication by ``i`` on both sides keeps the reading and
    does not increase the norm), so the real program has the same optimum.
    Gated :math:`\\sigma` (token gates, :math:`H[t, j]` kept where
    :math:`x_t^\\top g \\ge 0`): one block per gate, rows = the
    :math:`2d(\\lfloor s/2\\rfloor + 1)` real parameters of a channel's spectral
    filter, columns = its readout :math:`V[:, j, :]`.
    """
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}, got {head!r}.")
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"activation must be one of {ACTIVATIONS}, got {activation!r}."
        )
    if activation == "gated_relu" and gates is None:
        raise ValueError("gates are required for activation='gated_relu'.")
    n, s, d = tokens.shape
    n_gates = 0 if gates is None else len(gates)
    K, m1, m2 = _block_shape(head, activation, s, d, n_gates)
    dtype = tokens.dtype if tokens.dtype in (np.float32, np.float64) else np.float64
    tokens = tokens.astype(dtype, copy=False)
    p = pooling_weights(pooling, s, dtype)
    itemsize = np.dtype(dtype).itemsize
    check_memory(
        itemsize * n * K * m1 * m2,
        what=f"Lifted features of {n} samples ({K} blocks of {m1} x {m2})",
        lower=(
            "n_gates or the token dimension (e.g. PCA of the tokens), "
            "or use fewer samples"
        ),
    )
    out = np.empty((n, K, m1, m2), dtype=dtype)
    # Per-row intermediates (masks, FFT bases) are a few times the features.
    per_row = 4 * itemsize * (K * (m1 * m2 + s * s + s * d) + s * s * d + 2 * s * m1)
    size = int(max(1, min(n, memory_budget() // 16 // per_row, 2**16)))
    for rows in row_batches(n, size):
        out[rows] = _features_batch(tokens[rows], head, activation, p, gates)
    return out


class TokenFeatureOperator:
    """The map :math:`(Z_k)_k \\mapsto \\big(\\sum_k \\langle\\Phi_k(X_i), Z_k[:, :, c]\\rangle\\big)_{i,c}`.

    Stores the lifted features as one ``(n_samples, n_blocks * m1 * m2)``
    matrix, so the forward map and its adjoint are single GEMMs with the
    ``(n_blocks * m1 * m2, n_outputs)`` coefficient matrix. Exposes the
    interface of :class:`~skconvex.programs.operators.PatternOperator` that
    :class:`~skconvex.programs.problem.ConvexProblem` and the solvers use.

    Coefficients ``W`` have shape ``coef_shape``: block ``k`` is ``W[:, k, :]``,
    the matrix :math:`Z_k \\in \\mathbb{R}^{m_1 \\times m_2 C}` or, when that is
    wide, its transpose (the nuclear norm is the same and
    :class:`~skconvex.programs.penalties.GroupNuclear` is cheapest on tall blocks).

    Parameters
    ----------
    features : ndarray of shape (n_samples, n_blocks, m1, m2)
        Lifted features (see :func:`head_features`).
    n_outputs : int, default=1
        Number of outputs ``C``.
    dtype : {np.float64, np.float32}, default=None
        Compute dtype; defaults to that of ``features``.

    Attributes
    ----------
    features : ndarray of shape (n_samples, n_blocks, m1 * m2)
        Features in the compute dtype.
    block_shape : tuple of int
        ``(m1, m2)``.
    transposed : bool
        Whether blocks are stored as :math:`Z_k^\\top`.
    coef_shape : tuple of int
        ``(m1, n_blocks, m2 * C)`` or, if transposed, ``(m2 * C, n_blocks, m1)``.
    """

    #: Whether :meth:`restrict` selects a subset of blocks (see :mod:`skconvex.programs`).
    supports_restrict = True

    def __init__(self, features, *, n_outputs=1, dtype=None):
        if features.ndim != 4:
            raise ValueError(
                "features must have shape (n_samples, n_blocks, m1, m2), "
                f"got {features.shape}."
            )
        if dtype is None:
            dtype = (
                features.dtype
                if features.dtype in (np.float32, np.float64)
                else np.float64
            )
        self.dtype = np.dtype(dtype)
        n, K, m1, m2 = features.shape
        self.n_outputs = int(n_outputs)
        self.block_shape = (m1, m2)
        self.features = np.ascontiguousarray(
            features.reshape(n, K, m1 * m2), dtype=self.dtype
        )
        self._set_layout()

    def _set_layout(self):
        m1, m2 = self.block_shape
        K, C = self.features.shape[1], self.n_outputs
        self.transposed = m1 < m2 * C
        self.coef_shape = (m2 * C, K, m1) if self.transposed else (m1, K, m2 * C)

    @property
    def n_samples(self):
        """Number of samples."""
        return self.features.shape[0]

    @property
    def n_blocks(self):
        """Number of blocks ``K``."""
        return self.features.shape[1]

    def blocks(self, W):
        """Return the blocks :math:`Z_k` held by coefficients ``W``.

        Parameters
        ----------
        W : ndarray of shape coef_shape
            Coefficients.

        Returns
        -------
        Z : ndarray of shape (n_blocks, m1, m2 * n_outputs)
            The blocks (a view of ``W``).
        """
        W = np.asarray(W).reshape(self.coef_shape)
        return W.transpose(1, 2, 0) if self.transposed else W.transpose(1, 0, 2)

    def coef_from_blocks(self, Z):
        """Return the coefficients holding the blocks ``Z`` (inverse of :meth:`blocks`).

        Parameters
        ----------
        Z : ndarray of shape (n_blocks, m1, m2 * n_outputs)
            Blocks.

        Returns
        -------
        W : ndarray of shape coef_shape
            Coefficients in the compute dtype.
        """
        Z = np.asarray(Z, dtype=self.dtype)
        W = Z.transpose(2, 0, 1) if self.transposed else Z.transpose(1, 0, 2)
        return np.ascontiguousarray(W)

    def _design(self):
        n = self.n_samples
        return self.features.reshape(n, -1)

    def forward(self, W):
        """Compute the predictions :math:`\\sum_k \\langle\\Phi_k(X_i), Z_k[:, :, c]\\rangle`.

        Parameters
        ----------
        W : ndarray of shape coef_shape
            Coefficients.

        Returns
        -------
        pred : ndarray of shape (n_samples, n_outputs)
            Predictions without intercept, in the compute dtype.
        """
        m1, m2 = self.block_shape
        Z = np.asarray(self.blocks(W), dtype=self.dtype)
        Zr = Z.reshape(self.n_blocks * m1 * m2, self.n_outputs)
        return self._design() @ Zr

    def adjoint(self, R):
        """Apply the adjoint map to ``R``.

        Parameters
        ----------
        R : ndarray of shape (n_samples, n_outputs)
            Residual-like matrix (e.g. the gradient of the loss).

        Returns
        -------
        G : ndarray of shape coef_shape
            :math:`\\sum_i \\Phi_k(X_i)\\, R[i, c]` in the layout of the coefficients.
        """
        R = np.asarray(R, dtype=self.dtype).reshape(self.n_samples, self.n_outputs)
        m1, m2 = self.block_shape
        G = self._design().T @ R
        return self.coef_from_blocks(G.reshape(self.n_blocks, m1, m2 * self.n_outputs))

    def lipschitz(self, sample_weight=None, *, n_iter=20, random_state=0):
        """Estimate :math:`\\|S^{1/2}\\mathcal{A}\\|_2^2` by power iteration.

        The operator acts on every output with the same design, so this is the
        squared largest singular value of :math:`S^{1/2}\\Phi`.

        Parameters
        ----------
        sample_weight : ndarray of shape (n_samples,), default=None
            Row weights :math:`S`; ones when None.
        n_iter : int, default=20
            Power iterations.
        random_state : int, default=0
            Seed of the start vector.

        Returns
        -------
        lipschitz : float
            Estimate (from below) of the largest eigenvalue of
            :math:`\\mathcal{A}^\\top S\\mathcal{A}`.
        """
        design = self._design()
        v = (
            np.random.default_rng(random_state)
            .standard_normal(design.shape[1])
            .astype(self.dtype)
        )
        v /= np.linalg.norm(v)
        s = None if sample_weight is None else np.asarray(sample_weight, self.dtype)
        value = 0.0
        for _ in range(n_iter):
            r = design @ v
            if s is not None:
                r *= s
            w = design.T @ r
            value = float(np.linalg.norm(w))
            if value == 0.0:
                return 0.0
            v = w / value
        return value

    def restrict(self, blocks):
        """Operator on a subset of the blocks (a working set).

        Parameters
        ----------
        blocks : ndarray of int
            Indices of the blocks to keep.

        Returns
        -------
        operator : TokenFeatureOperator
            The operator on the selected blocks (features copied).
        """
        new = object.__new__(TokenFeatureOperator)
        new.dtype = self.dtype
        new.n_outputs = self.n_outputs
        new.block_shape = self.block_shape
        new.features = np.ascontiguousarray(self.features[:, blocks])
        new._set_layout()
        return new

    def astype(self, dtype):
        """Return the same operator in another compute dtype.

        Parameters
        ----------
        dtype : {np.float32, np.float64}
            Target dtype.

        Returns
        -------
        operator : TokenFeatureOperator
            ``self`` when the dtype is unchanged, else a converted copy.
        """
        if np.dtype(dtype) == self.dtype:
            return self
        new = object.__new__(TokenFeatureOperator)
        new.dtype = np.dtype(dtype)
        new.n_outputs = self.n_outputs
        new.block_shape = self.block_shape
        new.features = self.features.astype(dtype)
        new._set_layout()
        return new


def attention_operator(
    tokens,
    head="self_attention",
    activation="linear",
    *,
    pooling="mean",
    gates=None,
    n_outputs=1,
    dtype=None,
):
    """The :class:`~skconvex.programs.attention.TokenFeatureOperator` of a convex head on ``tokens``.

    Parameters
    ----------
    tokens : ndarray of shape (n_samples, n_tokens, token_dim)
        Tokens (with a trailing constant 1 if the heads have biases).
    head : {"self_attention", "mlp_mixer", "fno"}, default="self_attention"
        Head type.
    activation : {"linear", "gated_relu"}, default="linear"
        Activation.
    pooling : {"mean", "first"}, default="mean"
        Pooling of the token outputs.
    gates : ndarray, default=None
        Gates of a gated head (:func:`sample_token_gates`).
    n_outputs : int, default=1
        Number of outputs.
    dtype : {np.float64, np.float32}, default=None
        Compute dtype (that of ``tokens`` when None).

    Returns
    -------
    operator : TokenFeatureOperator
        The linear map of the head's convex program.
    """
    if dtype is not None:
        tokens = tokens.astype(dtype, copy=False)
    feats = head_features(tokens, head, activation, pooling=pooling, gates=gates)
    return TokenFeatureOperator(feats, n_outputs=n_outputs, dtype=dtype)
