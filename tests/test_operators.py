import numpy as np
import pytest

from skconvex import MemoryBudgetError, config_context, sample_arrangements
from skconvex.programs.operators import PatternOperator


def _operator(rng, n=30, d=4, C=1, dtype=np.float64, signs=False):
    X = rng.standard_normal((n, d))
    patterns = sample_arrangements(X, 12, random_state=0).patterns
    s = None
    if signs:
        s = np.where(rng.random(patterns.shape[1]) > 0.5, 1.0, -1.0)
    return X, patterns, PatternOperator(X, patterns, n_outputs=C, dtype=dtype, signs=s)


@pytest.mark.parametrize("C", [1, 3])
@pytest.mark.parametrize("signs", [False, True])
def test_forward_matches_definition(rng, C, signs):
    X, patterns, op = _operator(rng, C=C, signs=signs)
    W = rng.standard_normal(op.coef_shape)
    expected = sum(
        op.masks[:, [p]] * (X @ W[:, p, :]) for p in range(patterns.shape[1])
    )
    np.testing.assert_allclose(op.forward(W), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("C", [1, 3])
def test_adjoint_identity(rng, C):
    _, _, op = _operator(rng, C=C)
    W = rng.standard_normal(op.coef_shape)
    R = rng.standard_normal((op.n_samples, C))
    lhs = np.vdot(op.forward(W), R)
    rhs = np.vdot(W, op.adjoint(R))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12)


def test_explicit_design_and_linear_operator(rng):
    _, _, op = _operator(rng, C=1)
    W = rng.standard_normal(op.coef_shape)
    B = op.explicit()
    d, P, _ = op.coef_shape
    np.testing.assert_allclose(B @ W[:, :, 0].T.ravel(), op.forward(W)[:, 0], atol=1e-12)
    lin = op.aslinearoperator()
    np.testing.assert_allclose(lin.matvec(W.ravel()), op.forward(W).ravel(), atol=1e-12)
    R = rng.standard_normal(op.n_samples)
    np.testing.assert_allclose(lin.rmatvec(R), op.adjoint(R[:, None]).ravel(), atol=1e-12)


def test_lipschitz_estimate_close_to_spectral_norm(rng):
    _, _, op = _operator(rng, C=1)
    B = op.explicit().toarray()
    exact = np.linalg.norm(B, 2) ** 2
    est = op.lipschitz(n_iter=200)
    assert est <= exact * (1 + 1e-8)
    assert est >= 0.99 * exact


def test_float32_stays_float32(rng):
    _, _, op = _operator(rng, C=2, dtype=np.float32)
    W = rng.standard_normal(op.coef_shape)  # float64 input is cast, not promoted
    assert op.forward(W).dtype == np.float32
    assert op.adjoint(rng.standard_normal((op.n_samples, 2))).dtype == np.float32


def test_restrict_and_astype(rng):
    _, _, op = _operator(rng, C=2)
    W = rng.standard_normal(op.coef_shape)
    blocks = np.array([0, 3, 5])
    sub = op.restrict(blocks)
    W_sub = np.zeros_like(W)
    W_sub[:, blocks] = W[:, blocks]
    np.testing.assert_allclose(sub.forward(W[:, blocks]), op.forward(W_sub), atol=1e-12)
    op32 = op.astype(np.float32)
    np.testing.assert_allclose(op32.forward(W), op.forward(W), rtol=1e-4, atol=1e-4)


def test_memory_guard(rng):
    X = rng.standard_normal((1000, 3))
    patterns = np.ones((1000, 500), dtype=bool)
    with config_context(max_memory=100_000):
        with pytest.raises(MemoryBudgetError, match="n_arrangements"):
            PatternOperator(X, patterns)


def test_patterns_rows_must_match(rng):
    with pytest.raises(ValueError, match="rows"):
        PatternOperator(rng.standard_normal((5, 2)), np.ones((4, 3), dtype=bool))


def test_block_gram_diagonals_and_products_match_the_weighted_normal_matrix():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 4))
    patterns = rng.random((30, 6)) > 0.5
    signs = np.where(rng.random(6) > 0.5, 1.0, -1.0)
    op = PatternOperator(X, patterns, signs=signs)
    h = rng.random(30)
    W = rng.standard_normal(op.coef_shape)
    diagonals = op.block_gram_diagonals(h)
    products = op.block_gram_products(W, h)
    for p in range(6):
        Ap = X * op.masks[:, p : p + 1]
        gram = Ap.T @ (h[:, None] * Ap)
        np.testing.assert_allclose(diagonals[p], np.diag(gram), atol=1e-12)
        np.testing.assert_allclose(products[:, p, 0], gram @ W[:, p, 0], atol=1e-12)
