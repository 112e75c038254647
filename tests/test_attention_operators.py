"""Problem pieces of the convex attention heads, checked against definitions written with loops."""

import numpy as np
import pytest

from skconvex import MemoryBudgetError, config_context
from skconvex.programs.attention import (
    attention_operator,
    fno_mode_weights,
    head_features,
    sample_token_gates,
    token_gate_shape,
    tokens_from_features,
)
from skconvex.programs.datafits import Logistic, Multinomial, SquaredError
from skconvex.programs.penalties import GroupNuclear
from skconvex.programs.problem import ConvexProblem
from skconvex.solvers import fista

HEAD_TYPES = [
    ("self_attention", "linear"),
    ("self_attention", "gated_relu"),
    ("mlp_mixer", "linear"),
    ("mlp_mixer", "gated_relu"),
    ("fno", "linear"),
    ("fno", "gated_relu"),
]


def _ids(case):
    return "-".join(case)


def _pool(pooling, s):
    return np.full(s, 1 / s) if pooling == "mean" else np.eye(s)[0]


def _real_modes(s):
    return np.array([k == 0 or 2 * k == s for k in range(s // 2 + 1)])


def reference_output(T, head, activation, heads, gates, pooling):
    """Output of non-convex heads, one sample and one head at a time.

    ``heads`` is a list of ``(W1, W2, gate)``; the FNO head is
    ``irfft(rfft(X) w)`` along tokens, optionally gated, read out token-wise.
    """
    n, s, d = T.shape
    p = _pool(pooling, s)
    out = np.zeros((n, heads[0][1].shape[-1]))
    for i in range(n):
        X = T[i]
        for W1, W2, g in heads:
            if head == "self_attention":
                S = X @ W1 @ X.T
                if activation == "gated_relu":
                    S = S * (X @ gates[g] @ X.T >= 0)
                out[i] += p @ S @ X @ W2
            elif head == "mlp_mixer":
                H = W1 @ X
                if activation == "gated_relu":
                    H = H * (gates[g] @ X >= 0)
                out[i] += p @ H @ W2
            else:
                h = np.fft.irfft(np.sum(np.fft.rfft(X, axis=0) * W1, axis=1), n=s)
                if activation == "gated_relu":
                    h = h * (X @ gates[g] >= 0)
                out[i] += h @ W2
    return out


def lift(head, activation, heads, n_blocks, s, d, C, pooling):
    """Convex blocks Z_k (n_blocks, m1, m2 * C) of non-convex heads, and their weight decay."""
    p = _pool(pooling, s)
    mult, weight = fno_mode_weights(s)
    blocks = None
    decay = 0.0
    for j, (W1, W2, g) in enumerate(heads):
        decay += 0.5 * (np.sum(np.abs(W1) ** 2) + np.sum(W2**2))
        if head == "fno" and activation == "linear":
            # Z_k = (c_k / s) W1_k conj(hat V_k), carried as (w_k / 2) [[A, -B], [B, A]].
            V_hat = np.fft.rfft(W2, axis=0)
            Zc = (mult / s)[:, None, None] * W1[:, :, None] * np.conj(V_hat)[:, None, :]
            A, B = Zc.real, Zc.imag
            M = np.concatenate(
                [np.concatenate([A, -B], axis=2), np.concatenate([B, A], axis=2)],
                axis=1,
            )
            # columns of M are (part, output): reorder to (part * C + c)
            term = 0.5 * weight[:, None, None] * M
            k_of = None
        elif head == "fno":
            left = np.stack([W1.real, W1.imag], axis=1).ravel()
            term, k_of = np.outer(left, W2.ravel()), g
        elif head == "mlp_mixer" and activation == "linear":
            term, k_of = np.outer(W1.T @ p, W2.ravel()) / np.linalg.norm(p), 0
        else:
            term, k_of = np.outer(W1.ravel(), W2.ravel()), (
                g if activation == "gated_relu" else 0
            )
        if blocks is None:
            shape = term.shape if k_of is None else (n_blocks, *term.shape)
            blocks = np.zeros(shape)
        if k_of is None:
            blocks += term
        else:
            blocks[k_of] += term
    return blocks, decay


def random_heads(rng, head, activation, n_heads, s, d, C, n_gates):
    heads = []
    n_modes = s // 2 + 1
    for j in range(n_heads):
        g = j % n_gates
        if head == "self_attention":
            W1, W2 = rng.standard_normal((d, d)), rng.standard_normal((d, C))
        elif head == "mlp_mixer":
            W1, W2 = rng.standard_normal((s, s)), rng.standard_normal((d, C))
        else:
            W1 = rng.standard_normal((n_modes, d)) + 1j * rng.standard_normal(
                (n_modes, d)
            )
            W1[_real_modes(s)] = W1[_real_modes(s)].real
            W2 = rng.standard_normal((s, C))
        heads.append((W1, W2, g))
    return heads


def _tokens(rng, n=9, s=4, d=2, bias=True):
    return tokens_from_features(rng.standard_normal((n, s * d)), s, bias=bias)


# The FNO head reads every token and does not pool.
POOLED_CASES = [(*case, pooling) for case in HEAD_TYPES for pooling in ("mean", "first")]
POOLED_CASES = [c for c in POOLED_CASES if not (c[0] == "fno" and c[2] == "first")]


@pytest.mark.parametrize("case", POOLED_CASES, ids=_ids)
@pytest.mark.parametrize("s", [4, 5])
def test_lifting_identity_and_weight_decay_bound(rng, case, s):
    """The operator reproduces any non-convex head; weight decay >= block nuclear norm.

    With the recovery tests (the recovered heads reach the convex optimum),
    this shows that the convex program and the non-convex head have the same
    optimal value.
    """
    head, activation, pooling = case
    C, n_gates = 2, 3
    T = _tokens(rng, s=s)
    d = T.shape[2]
    gates = sample_token_gates(head, n_gates, s, d, random_state=0)
    heads = random_heads(rng, head, activation, 5, s, d, C, n_gates)
    op = attention_operator(
        T,
        head,
        activation,
        pooling=pooling,
        gates=gates if activation == "gated_relu" else None,
        n_outputs=C,
    )
    Z, decay = lift(head, activation, heads, op.n_blocks, s, d, C, pooling)
    np.testing.assert_allclose(
        op.forward(op.coef_from_blocks(Z)),
        reference_output(T, head, activation, heads, gates, pooling),
        rtol=1e-10,
        atol=1e-10,
    )
    assert decay >= GroupNuclear().value(op.coef_from_blocks(Z)) * (1 - 1e-12)


@pytest.mark.parametrize("case", HEAD_TYPES, ids=_ids)
@pytest.mark.parametrize("C", [1, 3])
def test_adjoint_identity(rng, case, C):
    head, activation = case
    T = _tokens(rng, n=7, s=3, d=2)
    gates = sample_token_gates(head, 2, 3, T.shape[2], random_state=1)
    op = attention_operator(T, head, activation, gates=gates, n_outputs=C)
    W = rng.standard_normal(op.coef_shape)
    R = rng.standard_normal((7, C))
    np.testing.assert_allclose(
        np.vdot(op.forward(W), R), np.vdot(W, op.adjoint(R)), rtol=1e-12
    )
    # blocks and coefficients are two views of the same numbers
    np.testing.assert_array_equal(op.coef_from_blocks(op.blocks(W)), W)


def test_blocks_are_stored_tall(rng):
    T = _tokens(rng, s=6, d=1)
    wide = attention_operator(T, "mlp_mixer", "linear", n_outputs=4)  # Z is 6 x 8
    assert wide.transposed and wide.coef_shape == (8, 1, 6)
    tall = attention_operator(T, "mlp_mixer", "linear", n_outputs=1)  # Z is 6 x 2
    assert not tall.transposed and tall.coef_shape == (6, 1, 2)


def test_lipschitz_close_to_spectral_norm(rng):
    op = attention_operator(_tokens(rng, n=30), "self_attention", "linear", n_outputs=2)
    s = rng.random(30)
    design = op.features.reshape(30, -1) * np.sqrt(s)[:, None]
    exact = np.linalg.norm(design, 2) ** 2
    est = op.lipschitz(s, n_iter=200)
    assert exact * 0.99 <= est <= exact * (1 + 1e-8)


def test_float32_restrict_astype(rng):
    T = _tokens(rng)
    gates = sample_token_gates("self_attention", 4, 4, T.shape[2], random_state=0)
    op = attention_operator(
        T.astype(np.float32), "self_attention", "gated_relu", gates=gates, n_outputs=2
    )
    W = rng.standard_normal(op.coef_shape)
    assert op.forward(W).dtype == np.float32
    assert op.adjoint(rng.standard_normal((9, 2))).dtype == np.float32
    op64 = op.astype(np.float64)
    np.testing.assert_allclose(op64.forward(W), op.forward(W), rtol=1e-4, atol=1e-4)
    keep = np.array([0, 2])
    W_sub = np.zeros_like(W)
    W_sub[:, keep] = W[:, keep]
    np.testing.assert_allclose(
        op64.restrict(keep).forward(W[:, keep]), op64.forward(W_sub), atol=1e-12
    )


def test_gates_are_seeded_and_nested():
    a = sample_token_gates("self_attention", 5, 3, 2, random_state=0)
    b = sample_token_gates("self_attention", 9, 3, 2, random_state=0)
    assert a.shape == (5, 2, 2)
    np.testing.assert_array_equal(a, b[:5])
    assert not np.array_equal(
        a, sample_token_gates("self_attention", 5, 3, 2, random_state=1)
    )
    assert sample_token_gates("mlp_mixer", 2, 3, 2, random_state=0).shape == (2, 3, 3)
    assert sample_token_gates("fno", 2, 3, 2, random_state=0).shape == (2, 2)


def test_bad_n_tokens_and_arguments(rng):
    X = rng.standard_normal((4, 6))
    with pytest.raises(
        ValueError, match="n_tokens=4 does not divide the number of features 6"
    ):
        tokens_from_features(X, 4)
    with pytest.raises(ValueError, match="head"):
        head_features(_tokens(rng), "conv")
    with pytest.raises(ValueError, match="gates"):
        head_features(_tokens(rng), "fno", "gated_relu")


def test_memory_guard_names_parameters(rng):
    T = _tokens(rng, n=200, s=4, d=6)
    with config_context(max_memory=100_000):
        with pytest.raises(MemoryBudgetError, match="n_gates or the token dimension"):
            head_features(T, "self_attention", "linear")


# ----------------------------------------------------------------- convex programs
def _features_by_definition(T, head, activation, gates, pooling):
    """Lifted features and penalty weights, from the formulas, one entry at a time.

    Returns a list of per-block designs (n, m1 * m2) and the weight of each
    block's nuclear norm (the operator absorbs these weights; here they stay
    explicit). For the linear FNO the blocks are complex (see the CVXPY
    reference).
    """
    n, s, d = T.shape
    p = _pool(pooling, s)
    designs, weights = [], []
    if head == "self_attention":
        K = 1 if activation == "linear" else len(gates)
        for k in range(K):
            F = np.zeros((n, d, d, d))
            for i in range(n):
                X = T[i]
                for t in range(s):
                    for u in range(s):
                        m = (
                            1.0
                            if activation == "linear"
                            else float(X[t] @ gates[k] @ X[u] >= 0)
                        )
                        F[i] += p[t] * m * np.einsum("a,b,e->abe", X[t], X[u], X[u])
            designs.append(F.reshape(n, -1))
            weights.append(1.0)
    elif head == "mlp_mixer" and activation == "linear":
        designs.append(T.reshape(n, -1))
        weights.append(1.0 / np.linalg.norm(p))
    elif head == "mlp_mixer":
        for k in range(len(gates)):
            F = np.zeros((n, s, s, d))
            for i in range(n):
                M = gates[k] @ T[i] >= 0
                for t in range(s):
                    for u in range(s):
                        F[i, t, u] = p[t] * M[t] * T[i, u]
            designs.append(F.reshape(n, -1))
            weights.append(1.0)
    elif activation == "gated_relu":
        n_modes = s // 2 + 1
        for k in range(len(gates)):
            F = np.zeros((n, n_modes, 2, d, s))
            for i in range(n):
                mask = T[i] @ gates[k] >= 0
                for mode in range(n_modes):
                    for part in range(2):
                        for a in range(d):
                            w = np.zeros((n_modes, d), dtype=complex)
                            w[mode, a] = 1.0 if part == 0 else 1j
                            h = np.fft.irfft(
                                np.sum(np.fft.rfft(T[i], axis=0) * w, axis=1), n=s
                            )
                            F[i, mode, part, a] = mask * h
            designs.append(F.reshape(n, -1))
            weights.append(1.0)
    return designs, weights


def cvxpy_reference(T, y, datafit, alpha, head, activation, gates=None, pooling="mean"):
    """Optimal value of the convex program written from its definition (Clarabel)."""
    import cvxpy as cp

    n, s, d = T.shape
    C = y.shape[1]
    sw = np.full(n, 1.0 / n)
    b = cp.Variable(C)
    pred = np.ones((n, 1)) @ cp.reshape(b, (1, C), order="C")
    penalty = 0
    if head == "fno" and activation == "linear":
        # Complex blocks, complex nuclear norms: independent of the realification.
        mult, weight = fno_mode_weights(s)
        X_hat = np.fft.rfft(T, axis=1)
        for k in range(s // 2 + 1):
            if mult[k] == 1:
                Z = cp.Variable((d, C))
                pred = pred + X_hat[:, k].real @ Z
            else:
                Z = cp.Variable((d, C), complex=True)
                pred = pred + cp.real(X_hat[:, k] @ Z)
            penalty = penalty + weight[k] * cp.normNuc(Z)
    else:
        designs, weights = _features_by_definition(T, head, activation, gates, pooling)
        m2 = {"self_attention": d, "mlp_mixer": d, "fno": s}[head]
        for D, w in zip(designs, weights):
            m1 = D.shape[1] // m2
            Z = cp.Variable((m1, m2 * C))
            cols = [cp.vec(Z[:, c::C], order="C") for c in range(C)]
            pred = pred + cp.hstack(
                [cp.reshape(D @ col, (n, 1), order="C") for col in cols]
            )
            penalty = penalty + w * cp.normNuc(Z)
    objective = datafit.cvxpy(pred, y, sw) + alpha * penalty
    problem = cp.Problem(cp.Minimize(objective))
    problem.solve(
        solver="CLARABEL", tol_gap_rel=1e-10, tol_gap_abs=1e-12, tol_feas=1e-10
    )
    assert problem.status == "optimal"
    return problem.value


def _tiny_problem(seed, head, activation, kind):
    rng = np.random.default_rng(seed)
    n, s = 12, 4
    d_raw = 1 if head == "self_attention" else 2
    T = tokens_from_features(rng.standard_normal((n, s * d_raw)), s, bias=True)
    gates = sample_token_gates(head, 2, s, T.shape[2], random_state=seed)
    if kind == "squared":
        y, datafit = rng.standard_normal((n, 2)), SquaredError()
    elif kind == "logistic":
        y = np.where(T[:, 0, 0] + 0.5 * rng.standard_normal(n) > 0, 1.0, -1.0)[:, None]
        datafit = Logistic()
    else:
        y, datafit = np.eye(3)[np.arange(n) % 3], Multinomial()
    op = attention_operator(
        T,
        head,
        activation,
        gates=gates if activation == "gated_relu" else None,
        n_outputs=y.shape[1],
    )
    alpha = 0.05
    problem = ConvexProblem(op, datafit, GroupNuclear(), y, np.full(n, 1.0 / n), alpha)
    return problem, T, y, datafit, alpha, gates


CVXPY_CASES = [
    ("self_attention", "linear", "squared"),
    ("self_attention", "gated_relu", "logistic"),
    ("mlp_mixer", "linear", "multinomial"),
    ("mlp_mixer", "gated_relu", "squared"),
    ("fno", "linear", "squared"),
    ("fno", "linear", "logistic"),
    ("fno", "gated_relu", "multinomial"),
]


@pytest.mark.parametrize("case", CVXPY_CASES, ids=_ids)
def test_fista_matches_cvxpy_and_gap_bounds_suboptimality(case):
    head, activation, kind = case
    problem, T, y, datafit, alpha, gates = _tiny_problem(0, head, activation, kind)
    ref = cvxpy_reference(T, y, datafit, alpha, head, activation, gates)
    res = fista(problem, tol=1e-9, max_iter=50000)
    assert res.converged
    np.testing.assert_allclose(res.objective, ref, rtol=1e-6)
    assert res.dual_objective <= ref * (1 + 1e-8)
    # Stopped early, the certified gap still bounds the distance to the optimum.
    for it in (3, 15):
        early = fista(problem, tol=1e-14, max_iter=it)
        assert early.gap > 0
        assert early.objective - ref <= early.gap + 1e-9 * abs(ref)


@pytest.mark.parametrize("head", ["self_attention", "mlp_mixer", "fno"])
def test_linear_program_equals_gated_program_with_an_always_open_gate(rng, head):
    # A zero gate opens every pattern (ties count as open), so the gated
    # program with that single gate is the linear head under another
    # derivation: the least-norm token mixing for the mixer, per-mode
    # decoupling (Parseval) for the FNO.
    T = _tokens(rng, n=30, s=4, d=2)
    y = rng.standard_normal((30, 2))
    shape = (1, *token_gate_shape(head, 4, T.shape[2]))
    values = []
    for activation, gates in (("linear", None), ("gated_relu", np.zeros(shape))):
        op = attention_operator(T, head, activation, gates=gates, n_outputs=2)
        problem = ConvexProblem(
            op, SquaredError(), GroupNuclear(), y, np.full(30, 1 / 30), 0.02
        )
        res = fista(problem, tol=1e-10, max_iter=50000)
        assert res.converged
        values.append((res.objective, res.gap))
    (a, gap_a), (b, gap_b) = values
    assert abs(a - b) <= gap_a + gap_b + 1e-12 * abs(a)
