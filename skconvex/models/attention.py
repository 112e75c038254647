"""Convex attention, MLP-mixer and FNO heads on token features (Sahiner et al., 2022)."""

from numbers import Integral, Real

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin, _fit_context
from sklearn.utils import gen_batches
from sklearn.utils._param_validation import Interval, Options, StrOptions

from .._config import memory_budget
from ..networks import factorize_blocks
from ..programs.attention import (
    ACTIVATIONS,
    HEADS,
    _fno_real_modes,
    attention_operator,
    fno_mode_weights,
    pooling_weights,
    sample_token_gates,
    token_gate_shape,
    token_masks,
    tokens_from_features,
)
from ..programs.penalties import GroupNuclear
from ..programs.problem import ConvexProblem
from ..solvers import fista, solve_certified
from ._base import (
    BaseConvexNetwork,
    ClassificationTargets,
    RegressionTargets,
    _as_dtype,
)

__all__ = [
    "ConvexAttentionHead",
    "ConvexAttentionHeadRegressor",
    "recover_heads",
    "head_token_contributions",
]


# --------------------------------------------------------------------------- recovery
def recover_heads(
    Z, head, activation, *, n_tokens, token_dim, n_outputs, pooling="mean", rtol=1e-10
):
    """Recover the heads :math:`(W_1, W_2)` of the non-convex network equivalent to blocks ``Z``.

    Each block :math:`Z_k = \\sum_j \\sigma_j p_j q_j^\\top` (SVD) gives one head
    per non-zero singular value, with :math:`\\sqrt{\\sigma_j}p_j` and
    :math:`\\sqrt{\\sigma_j}q_j` reshaped into the head's weights; the weight
    decay :math:`\\tfrac12\\sum_j \\|W_{1j}\\|^2 + \\|W_{2j}\\|^2` of the heads
    equals :math:`\\sum_k \\|Z_k\\|_*`, and their output equals the convex
    model's. The number of heads is the total rank.

    Parameters
    ----------
    Z : ndarray of shape (n_blocks, m1, m2 * n_outputs)
        Convex blocks (see :func:`skconvex.programs.attention.head_features`).
    head : {"self_attention", "mlp_mixer", "fno"}
        Head type.
    activation : {"linear", "gated_relu"}
        Activation.
    n_tokens : int
        Number of tokens ``s``.
    token_dim : int
        Token dimension ``d`` (including the constant 1 if any).
    n_outputs : int
        Number of outputs ``C``.
    pooling : {"mean", "first"}, default="mean"
        Pooling (the linear mixer's token-mixing matrices depend on it).
    rtol : float, default=1e-10
        Singular values below ``rtol`` times the largest are dropped.

    Returns
    -------
    W1 : ndarray
        First-layer weights, one per head: ``(n_heads, d, d)`` (query-key
        matrix) for self-attention, ``(n_heads, s, s)`` (token mixing) for the
        mixer, ``(n_heads, s // 2 + 1, d)`` complex (spectral filter, one
        channel-mixing vector per Fourier mode) for the FNO.
    W2 : ndarray
        Second-layer weights: ``(n_heads, d, C)`` (value-output) for
        self-attention and the mixer, ``(n_heads, s, C)`` (token-wise readout)
        for the FNO.
    block : ndarray of shape (n_heads,)
        Block of each head: its gate for gated heads (0 for linear
        self-attention and mixer heads; for the linear FNO, a head is one
        channel shared by all modes and ``block`` is -1).
    """
    s, d, C = n_tokens, token_dim, n_outputs
    Z = np.asarray(Z, dtype=np.float64)
    if head == "fno" and activation == "linear":
        return _recover_linear_fno(Z, s, d, C, rtol)
    hidden, output, block = factorize_blocks(Z.transpose(1, 0, 2), rtol=rtol)
    J = len(block)
    if head == "self_attention":
        return hidden.reshape(J, d, d), output.reshape(J, d, C), block
    if head == "mlp_mixer":
        W2 = output.reshape(J, d, C)
        if activation == "gated_relu":
            return hidden.reshape(J, s, s), W2, block
        # Only A^T p matters; A = p a^T / ||p|| is the least-norm matrix with
        # A^T p = ||p|| a, and ||A||_F = ||a||.
        p = pooling_weights(pooling, s)
        W1 = p[None, :, None] * hidden[:, None, :] / np.linalg.norm(p)
        return W1, W2, block
    n_modes = s // 2 + 1
    h = hidden.reshape(J, n_modes, 2, d)
    return h[:, :, 0] + 1j * h[:, :, 1], output.reshape(J, s, C), block


def _recover_linear_fno(Z, s, d, C, rtol):
    mult, weight = fno_mode_weights(s)
    real = _fno_real_modes(s)
    n_modes = len(mult)
    # Undo the absorbed weight (w_k / 2) and read the complex block A + iB.
    M = Z.reshape(n_modes, 2, d, 2, C) * (2.0 / weight)[:, None, None, None, None]
    A = 0.5 * (M[:, 0, :, 0] + M[:, 1, :, 1])
    B = 0.5 * (M[:, 1, :, 0] - M[:, 0, :, 1])
    # W1_k Vt_k = sqrt(s / c_k) Z_k with Vt_k = sqrt(c_k / s) conj(hat V_k).
    Y = weight[:, None, None] * (A + 1j * B)
    Y[real] = Y[real].real
    U = np.zeros((n_modes, d, min(d, C)), dtype=complex)
    sv = np.zeros((n_modes, min(d, C)))
    Vh = np.zeros((n_modes, min(d, C), C), dtype=complex)
    if real.any():
        U[real], sv[real], Vh[real] = np.linalg.svd(Y[real].real, full_matrices=False)
    if (~real).any():
        U[~real], sv[~real], Vh[~real] = np.linalg.svd(Y[~real], full_matrices=False)
    smax = sv.max() if sv.size else 0.0
    keep = sv > rtol * smax if smax > 0 else np.zeros_like(sv, dtype=bool)
    n_heads = int(keep.sum(axis=1).max()) if keep.size else 0
    root = np.sqrt(np.where(keep, sv, 0.0))[:, :n_heads]
    W1 = (U[:, :, :n_heads] * root[:, None, :]).transpose(2, 0, 1)
    Vt = Vh[:, :n_heads, :] * root[:, :, None]
    V_hat = (np.sqrt(s / mult)[:, None, None] * np.conj(Vt)).transpose(1, 0, 2)
    W2 = np.fft.irfft(V_hat, n=s, axis=1)
    return W1, W2, np.full(n_heads, -1)


# ------------------------------------------------------------------ non-convex forward
def head_token_contributions(
    tokens, head, activation, W1, W2, block, *, gates=None, pooling="mean"
):
    """Split the output of non-convex heads by head and token.

    The network output (without intercept) is the sum of the result over
    heads and tokens. Token ``u``'s share through head ``j`` is, with pooling
    vector ``p`` and patterns ``M`` of the head's gate (ones when linear):

    * self-attention: :math:`\\big(\\sum_t p_t M[t, u]\\, x_t^\\top W_{1j} x_u\\big)\\, W_{2j}^\\top x_u`
      (the pooled attention paid to key ``u`` times its value);
    * mixer: :math:`\\sum_e \\big(\\sum_t p_t M[t, e] A_j[t, u]\\big) X[u, e]\\, B_j[e, :]`;
    * FNO: :math:`\\sigma(h_j)[u]\\, V_j[u, :]`, the readout of the ``u``-th output
      token of channel ``j``.

    Parameters
    ----------
    tokens : ndarray of shape (n_samples, n_tokens, token_dim)
        Tokens.
    head : {"self_attention", "mlp_mixer", "fno"}
        Head type.
    activation : {"linear", "gated_relu"}
        Activation.
    W1, W2, block : ndarray
        Heads, as returned by :func:`recover_heads`.
    gates : ndarray, default=None
        Gates of a gated head.
    pooling : {"mean", "first"}, default="mean"
        Pooling.

    Returns
    -------
    contributions : ndarray of shape (n_samples, n_heads, n_tokens, n_outputs)
        Share of each head and token in each output.
    """
    n, s, d = tokens.shape
    J, C = W2.shape[0], W2.shape[-1]
    out = np.zeros((n, J, s, C), dtype=np.result_type(tokens.dtype, np.float32))
    if J == 0:
        return out
    per_row = 8 * J * (s * s + 2 * s * d + s * C + 2 * s)
    size = int(max(1, min(n, memory_budget() // 16 // per_row, 2**16)))
    for rows in gen_batches(n, size):
        out[rows] = _contributions_batch(
            tokens[rows], head, activation, W1, W2, block, gates, pooling
        )
    return out


def _contributions_batch(X, head, activation, W1, W2, block, gates, pooling):
    s = X.shape[1]
    dtype = X.dtype
    gated = activation == "gated_relu"
    masks = token_masks(head, X, gates)[:, block].astype(dtype) if gated else None
    if head == "fno":
        X_hat = np.fft.rfft(X, axis=1)
        h = np.fft.irfft(np.einsum("nka,jka->njk", X_hat, W1), n=s, axis=2)
        if gated:
            h = h * masks
        return h[..., None] * W2[None].astype(dtype)
    p = pooling_weights(pooling, s, dtype)
    W1 = W1.astype(dtype, copy=False)
    W2 = W2.astype(dtype, copy=False)
    if head == "self_attention":
        scores = np.matmul(
            np.matmul(X[:, None], W1[None]), X.transpose(0, 2, 1)[:, None]
        )
        if gated:
            scores *= masks
        attention = np.einsum("t,njtu->nju", p, scores)
        values = np.matmul(X[:, None], W2[None])
        return attention[..., None] * values
    # mixer: coef[n, j, u, e] = sum_t p_t M[n, j, t, e] A_j[t, u]
    if gated:
        coef = np.einsum("njte,jtu->njue", p[None, None, :, None] * masks, W1)
    else:
        coef = np.broadcast_to(
            (p @ W1)[None, :, :, None], (X.shape[0], len(W1), s, X.shape[2])
        )
    return np.matmul(coef * X[:, None], W2[None])


# --------------------------------------------------------------------------- estimators
_COMMON_DOC = """
    Parameters
    ----------
    alpha : float, default=1e-3
        Weight-decay strength: the objective is the weighted **mean** loss plus
        ``alpha`` times :math:`\\tfrac12\\sum_j \\|W_{1j}\\|_F^2 +
        \\|W_{2j}\\|_F^2`, i.e. ``alpha`` times the block nuclear norm of the
        convex program.ALPHA_SCALE
    n_tokens : int, default=1
        Number of tokens per sample. ``X`` has ``n_tokens * token_dim`` columns,
        the tokens of a sample one after the other; ``n_tokens`` must divide
        the number of features. With one token the self-attention head is a
        cubic model of the features and the mixer a linear one.
    head : {"self_attention", "mlp_mixer", "fno"}, default="self_attention"
        Token mixing of the head. ``"self_attention"``:
        :math:`p^\\top\\sigma(X W_1 X^\\top) X W_2` summed over heads;
        ``"mlp_mixer"``: :math:`p^\\top\\sigma(A X) B`; ``"fno"``: Fourier
        neural operator, per-mode channel mixing of the FFT of the tokens
        along the token axis and a token-wise readout (see Notes).
    activation : {"linear", "gated_relu"}, default="linear"
        :math:`\\sigma`: identity, or a ReLU whose on/off pattern is set by
        fixed random gates (token-pair gates
        :math:`1[x_t^\\top\\Gamma x_u \\ge 0]` for self-attention, token-mixing
        gates :math:`1[\\Gamma X \\ge 0]` for the mixer, token gates
        :math:`1[x_t^\\top g \\ge 0]` for the FNO).
    n_gates : int, default=8
        Number of gates of a gated head (one convex block each); unused when
        ``activation="linear"``.
    pooling : {"mean", "first"}, default="mean"
        How token outputs become the sample's output: their mean or the
        first token's (a class token). The FNO head reads every token with its
        own weights and does not pool.
    fit_intercept : bool, default=True
        Append a constant 1 to every token (biases inside the heads, penalized
        with them) and fit an unpenalized output intercept.
    tol : float, default=1e-4
        Stop when the certified duality gap is at most ``tol`` times the
        objective.
    max_iter : int, default=10000
        Maximum number of FISTA iterations (first-order: a few thousand are
        common on well-conditioned data; a fit stops as soon as ``tol`` is
        certified).
    warm_start : bool, default=False
        Reuse the gates and start from the previous convex solution when
        refitting with the same shapes.
    dtype : {None, "float32", "float64"}, default=None
        Compute dtype. None uses float32 when ``X`` is float32 and float64
        otherwise. The certificate is always computed in float64.
    random_state : int, RandomState instance or None, default=None
        Seed of the gates.
    verbose : int, default=0
        Solver progress (1: every 10 iterations, 2: every iteration).
"""

_ATTRIBUTES = """
    Z_ : ndarray of shape (n_blocks, m1, m2 * n_outputs)
        The convex solution: the objective is the mean loss of
        :math:`\\hat y_i = \\sum_k \\langle\\Phi_k(X_i), Z_k\\rangle + b` plus
        ``alpha`` times :math:`\\sum_k \\|Z_k\\|_*` (see
        :func:`skconvex.programs.attention.head_features` for the blocks).
    heads_ : list of tuple of ndarray
        The recovered heads ``(W1, W2)``, one per non-zero singular value of
        the blocks (see :func:`~skconvex.models.attention.recover_heads` for
        their shapes).
    n_heads_ : int
        Number of heads, the total rank of the blocks.
    head_blocks_ : ndarray of shape (`n_heads_`,)
        Gate of each head for gated heads (0 for linear self-attention and
        mixer heads, -1 for linear FNO channels).
    gates_ : ndarray or None
        Gates of a gated head (None when linear).
    token_clusters_ : ndarray of shape (n_samples_fit, n_tokens)
        The implicit clustering of the training tokens: the head that carries
        each token's largest contribution to the output (see
        :meth:`token_clusters`).
    objective_ : float
        Objective value at the solution (equal to the weight-decay objective
        of the recovered heads).
    dual_gap_ : float
        Certified duality gap (float64), an upper bound on ``objective_`` minus
        the optimum.
    n_iter_ : int
        Solver iterations.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column names.
"""

_NOTES = """
    Every head is linear in the product of its two weight matrices, so the
    head is a linear model :math:`\\hat y_i[c] = \\sum_k \\langle \\Phi_k(X_i),
    Z_k[:, :, c]\\rangle` on lifted token features, and weight decay on the
    heads is exactly the block nuclear norm :math:`\\sum_k \\|Z_k\\|_*`
    (Sahiner et al., 2022):

    * self-attention, :math:`Z_k = \\sum_j \\operatorname{vec}(W_{1j})
      \\operatorname{vec}(W_{2j})^\\top \\in \\mathbb{R}^{d^2 \\times dC}`, lifted
      feature :math:`\\Phi[(a, b), e] = \\sum_{t,u} p_t M[t, u] x_t[a] x_u[b]
      x_u[e]` (linear: :math:`(X^\\top p) \\otimes X^\\top X`);
    * MLP-mixer, :math:`Z = \\sum_j (A_j^\\top p) \\operatorname{vec}(B_j)^\\top`
      with penalty :math:`\\|Z\\|_* / \\|p\\|` (linear) or :math:`Z_k = \\sum_j
      \\operatorname{vec}(A_j)\\operatorname{vec}(B_j)^\\top` (gated);
    * FNO, one complex block :math:`Z_k = \\tfrac{c_k}{s} W_{1,k}
      \\overline{\\hat V_k}` per Fourier mode with penalty
      :math:`\\sqrt{s/c_k}\\|Z_k\\|_*` (linear; Parseval), or one block per gate
      (gated).

    The program is solved by accelerated proximal gradient with batched
    singular-value thresholding; its dual uses the spectral norms of the
    blocks, and ``dual_gap_`` certifies the solution. The heads are recovered
    from the SVD of each block (number of heads = rank) and ``predict`` runs
    them. Gated-ReLU heads are exact for their fixed gates; the exact ReLU
    (or softmax) head is not a program of this kind.

    The lifted features are stored, ``n_samples * n_blocks * m1 * m2``
    numbers (:math:`d^3` per block for self-attention), so keep the token
    dimension small, e.g. by a PCA of the tokens; a memory guard names the
    parameters to lower before anything large is allocated.

    The paper's own parametrizations (where the query-key product, pooling
    and nonlinearity sit, and its FNO program) could not be checked here; the
    programs above are our derivations, each verified numerically (the convex
    optimum equals the weight-decay objective of the recovered heads, and
    CVXPY agrees on small problems).

    References
    ----------
    A. Sahiner, T. Ergen, B. Ozturkler, J. Pauly, M. Mardani and M. Pilanci.
    Unraveling attention via convex duality: analysis and interpretations of
    vision transformers. ICML 2022, arXiv:2205.08078.

    N. Srebro, J. Rennie and T. Jaakkola. Maximum-margin matrix factorization.
    NeurIPS 2004.
"""


def _constraints():
    base = BaseConvexNetwork._parameter_constraints
    return {
        "alpha": [Interval(Real, 0, None, closed="left")],
        "n_tokens": [Interval(Integral, 1, None, closed="left")],
        "head": [StrOptions(set(HEADS))],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "n_gates": [Interval(Integral, 1, None, closed="left")],
        "pooling": [StrOptions({"mean", "first"})],
        "fit_intercept": ["boolean"],
        "tol": base["tol"],
        "max_iter": base["max_iter"],
        "warm_start": ["boolean"],
        "dtype": [
            None,
            StrOptions({"float32", "float64"}),
            Options(type, {np.float32, np.float64}),
        ],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }


class _AttentionBase(BaseConvexNetwork):
    """Fit, recovery and prediction shared by the attention heads."""

    def _tokens(self, X):
        return tokens_from_features(X, self.n_tokens, bias=self.fit_intercept)

    def _gates(self, n_tokens, token_dim, dtype):
        if self.activation == "linear":
            return None
        shape_ok = (
            self.warm_start
            and getattr(self, "gates_", None) is not None
            and self.gates_.shape
            == (self.n_gates, *token_gate_shape(self.head, n_tokens, token_dim))
        )
        if shape_ok:
            return self.gates_.astype(dtype)
        return sample_token_gates(
            self.head,
            self.n_gates,
            n_tokens,
            token_dim,
            dtype=dtype,
            random_state=self.random_state,
        )

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the head by solving its convex program.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_tokens * token_dim)
            Token features, the tokens of each sample one after the other.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Row weights; the loss is their weighted mean.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        X, y, sw = self._validate_fit_data(
            X,
            y,
            sample_weight,
            multi_output=self._multi_output,
            y_numeric=self._y_numeric,
        )
        dtype = _as_dtype(self.dtype, X)
        tokens = self._tokens(X.astype(dtype, copy=False))
        Y, datafit = self._encode_targets(y)
        _, s, d = tokens.shape
        gates = self._gates(s, d, dtype)
        operator = attention_operator(
            tokens,
            self.head,
            self.activation,
            pooling=self.pooling,
            gates=gates,
            n_outputs=Y.shape[1],
            dtype=dtype,
        )
        with np.errstate(over="ignore", invalid="ignore"):
            curvature = operator.lipschitz(sw, n_iter=2)
        if not np.isfinite(curvature):
            # Caught here, the overflow would surface as a LinAlgError deep
            # inside the penalty's dual norm.
            raise ValueError(
                f"X is too large in magnitude for {type(self).__name__} (max |X| = "
                f"{float(np.max(np.abs(X))):.3g}): the head features, products of "
                f"entries of X, overflow {np.dtype(dtype).name}. Standardize X "
                "(e.g. with sklearn.preprocessing.StandardScaler) before fitting."
            )
        problem = ConvexProblem(
            operator,
            datafit,
            GroupNuclear(),
            Y,
            sw,
            self.alpha * self._alpha_scale(Y, sw),
            fit_intercept=self.fit_intercept,
        )
        coef_init = intercept_init = None
        if self.warm_start and hasattr(self, "Z_"):
            W = operator.coef_from_blocks(self.Z_)
            if W.shape == operator.coef_shape:
                coef_init, intercept_init = W, np.atleast_1d(self.intercept_).astype(
                    np.float64
                )
        result = solve_certified(
            problem,
            fista,
            tol=self.tol,
            max_iter=self.max_iter,
            coef_init=coef_init,
            intercept_init=intercept_init,
            verbose=self.verbose,
        )
        self._report(result)
        self.gates_ = gates
        self.Z_ = np.ascontiguousarray(operator.blocks(result.coef), dtype=np.float64)
        b = np.asarray(result.intercept, dtype=np.float64)
        self.intercept_ = float(b[0]) if getattr(self, "_y_1d", False) else b
        W1, W2, block = recover_heads(
            self.Z_,
            self.head,
            self.activation,
            n_tokens=s,
            token_dim=d,
            n_outputs=Y.shape[1],
            pooling=self.pooling,
        )
        self.heads_ = list(zip(W1, W2))
        self.head_blocks_ = block
        self.n_heads_ = len(block)
        self.token_clusters_ = self._clusters(self._contributions(tokens))
        return self

    def _stacked_heads(self):
        s = self.n_tokens
        if self.heads_:
            W1 = np.stack([h[0] for h in self.heads_])
            W2 = np.stack([h[1] for h in self.heads_])
            return W1, W2
        C = len(np.atleast_1d(self.intercept_))
        d = self.Z_.shape[2] // C if self.head != "fno" else 0
        W2 = np.zeros((0, s if self.head == "fno" else d, C))
        return np.zeros((0, 1, 1)), W2

    def _contributions(self, tokens):
        W1, W2 = self._stacked_heads()
        return head_token_contributions(
            tokens,
            self.head,
            self.activation,
            W1,
            W2,
            self.head_blocks_,
            gates=self.gates_,
            pooling=self.pooling,
        )

    @staticmethod
    def _clusters(contributions):
        norms = np.linalg.norm(contributions, axis=3)
        labels = (
            np.argmax(norms, axis=1)
            if norms.shape[1]
            else np.zeros(norms.shape[::2], int)
        )
        labels = np.where(norms.max(axis=1, initial=0.0) > 0, labels, -1)
        return labels

    def _network_output(self, X):
        contributions = self._contributions(self._tokens(X))
        return contributions.sum(axis=(1, 2)) + np.atleast_1d(self.intercept_)

    def token_contributions(self, X):
        """Output of each head through each token.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_tokens * token_dim)
            Samples.

        Returns
        -------
        contributions : ndarray of shape (n_samples, `n_heads_`, n_tokens, n_outputs)
            Summed over heads and tokens and added to ``intercept_`` they give
            the network output (see
            :func:`~skconvex.models.attention.head_token_contributions`).
        """
        return self._contributions(self._tokens(self._check_predict_data(X)))

    def token_clusters(self, X):
        """The implicit clustering of tokens by the heads.

        Each head reads the tokens through a low-rank similarity
        (:math:`x_t^\\top W_{1j} x_u` for self-attention), and the convex
        penalty keeps few heads; tokens whose output goes mostly through the
        same head form a cluster. Sahiner et al. (2022) interpret attention as
        an implicit clustering of tokens; this argmax rule is our reading of
        it.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_tokens * token_dim)
            Samples.

        Returns
        -------
        labels : ndarray of shape (n_samples, n_tokens)
            Index of the head carrying the largest contribution of each token
            (Euclidean norm over outputs), -1 for tokens that do not reach the
            output.
        """
        return self._clusters(self.token_contributions(X))


class ConvexAttentionHead(ClassificationTargets, ClassifierMixin, _AttentionBase):
    __doc__ = (
        """Convex attention head classifier (self-attention, MLP-mixer or FNO).

    Trains, to global optimality, a classification head that mixes the tokens
    of each sample with self-attention, an MLP-mixer or a Fourier neural
    operator, from weight decay and a logistic / multinomial (or squared)
    loss, by solving the equivalent block-nuclear-norm program. Meant for
    token features of a frozen backbone (transfer learning).
"""
        + _COMMON_DOC.replace("ALPHA_SCALE", "")
        + """    loss : {"log_loss", "squared_error"}, default="log_loss"
        ``"log_loss"``: logistic loss for two classes, multinomial
        cross-entropy for more (gives ``predict_proba``); ``"squared_error"``:
        squared error on +-1 or one-hot targets.

    Attributes
    ----------"""
        + _ATTRIBUTES
        + """    classes_ : ndarray of shape (n_classes,)
        Class labels.
    intercept_ : ndarray of shape (n_outputs,)
        Output intercept (one output for two classes, else one per class).

    See Also
    --------
    ConvexAttentionHeadRegressor : The regressor counterpart.
    ConvexGatedReLUClassifier : A convex two-layer head on flattened features.

    Notes
    -----"""
        + _NOTES
        + """
    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skconvex import ConvexAttentionHead
    >>> X, y = load_digits(return_X_y=True)
    >>> # 16 tokens per image: its 2x2 pixel patches
    >>> X = X.reshape(-1, 4, 2, 4, 2).transpose(0, 1, 3, 2, 4).reshape(-1, 64) / 16
    >>> head = ConvexAttentionHead(n_tokens=16, alpha=1e-2).fit(X[:300], y[:300])
    >>> head.predict_proba(X[:2]).shape
    (2, 10)
    >>> head.token_clusters(X[:2]).shape
    (2, 16)
"""
    )

    _multi_output = False
    _y_numeric = False
    _parameter_constraints = {
        **_constraints(),
        "loss": [StrOptions({"log_loss", "squared_error"})],
    }

    def __init__(
        self,
        alpha=1e-3,
        *,
        n_tokens=1,
        head="self_attention",
        activation="linear",
        n_gates=8,
        pooling="mean",
        fit_intercept=True,
        tol=1e-4,
        max_iter=10000,
        warm_start=False,
        dtype=None,
        random_state=None,
        verbose=0,
        loss="log_loss",
    ):
        self.alpha = alpha
        self.n_tokens = n_tokens
        self.head = head
        self.activation = activation
        self.n_gates = n_gates
        self.pooling = pooling
        self.fit_intercept = fit_intercept
        self.loss = loss
        self.tol = tol
        self.max_iter = max_iter
        self.warm_start = warm_start
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose


class ConvexAttentionHeadRegressor(RegressionTargets, RegressorMixin, _AttentionBase):
    __doc__ = (
        """Convex attention head regressor (self-attention, MLP-mixer or FNO).

    Trains, to global optimality, a regression head that mixes the tokens of
    each sample with self-attention, an MLP-mixer or a Fourier neural
    operator, from weight decay and the squared error, by solving the
    equivalent block-nuclear-norm program.
"""
        + _COMMON_DOC.replace(
            "ALPHA_SCALE",
            (
                " ``alpha`` is multiplied by the standard deviation of ``y``, "
                "which makes the fit equivariant to the unit of ``y``."
            ),
        )
        + """    loss : {"squared_error"}, default="squared_error"
        Half the squared error, averaged over samples.

    Attributes
    ----------"""
        + _ATTRIBUTES
        + """    n_outputs_ : int
        Number of outputs.
    intercept_ : float or ndarray of shape (n_outputs,)
        Output intercept (a float for one-dimensional ``y``).

    See Also
    --------
    ConvexAttentionHead : The classifier counterpart.
    ConvexGatedReLURegressor : A convex two-layer network on flattened features.

    Notes
    -----"""
        + _NOTES
        + """
    Examples
    --------
    >>> import numpy as np
    >>> from skconvex import ConvexAttentionHeadRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((100, 6))  # 3 tokens of dimension 2
    >>> y = X[:, 0] * X[:, 2] + X[:, 4]
    >>> reg = ConvexAttentionHeadRegressor(n_tokens=3, random_state=0).fit(X, y)
    >>> reg.predict(X[:2]).shape
    (2,)
"""
    )

    _multi_output = True
    _y_numeric = True
    _parameter_constraints = {**_constraints(), "loss": [StrOptions({"squared_error"})]}

    def __init__(
        self,
        alpha=1e-3,
        *,
        n_tokens=1,
        head="self_attention",
        activation="linear",
        n_gates=8,
        pooling="mean",
        fit_intercept=True,
        tol=1e-4,
        max_iter=10000,
        warm_start=False,
        dtype=None,
        random_state=None,
        verbose=0,
        loss="squared_error",
    ):
        self.alpha = alpha
        self.n_tokens = n_tokens
        self.head = head
        self.activation = activation
        self.n_gates = n_gates
        self.pooling = pooling
        self.fit_intercept = fit_intercept
        self.loss = loss
        self.tol = tol
        self.max_iter = max_iter
        self.warm_start = warm_start
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
