import numpy as np
import pytest
from relu_problems import LOSSES, build, reference

from skconvex.networks import factorize_blocks, factorize_columns, relu_forward, weight_decay


def test_factorize_columns_formulas(rng):
    W = rng.standard_normal((4, 6, 2))
    W[:, 1, 0] = 0
    signs = np.array([1, 1, 1, -1, -1, -1.0])
    hidden, output, blocks, keep = factorize_columns(W, signs)
    assert keep.sum() == 11 and not keep[1, 0]
    k_idx, c_idx = np.nonzero(keep)
    np.testing.assert_array_equal(blocks, k_idx)
    for j, (k, c) in enumerate(zip(k_idx, c_idx)):
        v = W[:, k, c]
        norm = np.linalg.norm(v)
        # u = v / sqrt(|v|), a = +-sqrt(|v|) on output c only
        np.testing.assert_allclose(hidden[j], v / np.sqrt(norm))
        expected = np.zeros(2)
        expected[c] = signs[k] * np.sqrt(norm)
        np.testing.assert_allclose(output[j], expected)
    # balanced factors: the weight decay is the sum of column norms
    np.testing.assert_allclose(weight_decay(hidden, output), np.linalg.norm(W, axis=0).sum())


def test_factorize_blocks_counts_the_same_neurons_in_float32(rng):
    # Blocks of ranks 0-3 with singular values spread over four decades: the
    # float32 copy must give the same neurons, not one per rounding-level
    # singular value (a float32 digits fit reported 477 neurons for 70).
    d, P, C = 12, 8, 6
    W = np.zeros((d, P, C))
    ranks = [0, 1, 2, 3, 1, 2, 3, 1]
    for k, r in enumerate(ranks):
        U = np.linalg.qr(rng.standard_normal((d, r)))[0] if r else np.zeros((d, 0))
        V = np.linalg.qr(rng.standard_normal((C, r)))[0] if r else np.zeros((C, 0))
        W[:, k] = (U * np.logspace(0, -3, r) * 10.0**-k) @ V.T
    hidden, output, blocks = factorize_blocks(W)
    assert len(blocks) == sum(ranks)
    hidden32, output32, blocks32 = factorize_blocks(W.astype(np.float32))
    np.testing.assert_array_equal(blocks32, blocks)
    np.testing.assert_allclose(np.einsum("nd,nc->dc", hidden32, output32), W.sum(axis=1), atol=1e-6)
    # every block's product of factors is the block itself
    for k in range(P):
        mine = blocks32 == k
        np.testing.assert_allclose(hidden32[mine].T @ output32[mine], W[:, k], atol=1e-6 * 10.0**-k)


def test_factorize_columns_of_zero_gives_an_empty_network():
    hidden, output, blocks, keep = factorize_columns(np.zeros((3, 4, 2)))
    assert hidden.shape == (0, 3) and output.shape == (0, 2) and blocks.shape == (0,)
    out = relu_forward(np.ones((5, 3)), hidden, output, np.array([1.0, 2.0]))
    np.testing.assert_array_equal(out, np.tile([1.0, 2.0], (5, 1)))


@pytest.mark.parametrize("case", LOSSES, ids=lambda c: c[0])
def test_recovered_network_reproduces_convex_predictions_and_objective(case):
    kind, datafit, C = case
    problem = build(0, kind, datafit, C)
    ref = reference(problem)
    P = problem.operator.n_patterns // 2
    signs = np.r_[np.ones(P), -np.ones(P)]
    hidden, output, _, keep = factorize_columns(ref.coef, signs, rtol=0)
    X = problem.operator.X
    # on the training rows the ReLU network equals sum_p D_p X (v_p - w_p):
    # the (restored) solution lies in its cones
    np.testing.assert_allclose(
        relu_forward(X, hidden, output, ref.intercept),
        problem.operator.forward(ref.coef) + ref.intercept,
        rtol=1e-10,
        atol=1e-12,
    )
    # and its weight-decay objective is the convex objective (the theorem)
    out = relu_forward(X, hidden, output, ref.intercept)
    nonconvex = datafit.value(out, problem.y, problem.sample_weight) + problem.alpha * weight_decay(
        hidden, output
    )
    np.testing.assert_allclose(nonconvex, ref.objective, rtol=1e-10)


def test_infeasible_columns_do_not_reproduce_the_convex_predictions(rng):
    # the cones are what makes the recovery exact: a column outside its cone
    # gives a network whose output differs from the convex prediction
    problem = build(1, "squared", LOSSES[0][1], 1)
    W = problem.zeros()
    W[:, 0, 0] = rng.standard_normal(W.shape[0])
    assert problem.violation(problem.operator.product(W)) > 0
    hidden, output, _, _ = factorize_columns(W)
    X = problem.operator.X
    assert not np.allclose(relu_forward(X, hidden, output), problem.operator.forward(W))
