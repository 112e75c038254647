"""The block-diagonal plus low-rank solves behind the cone programs' Newton steps."""

import numpy as np
import pytest
from relu_problems import build

from skconvex.programs.datafits import SquaredError
from skconvex.solvers._lowrank import BlockPlusLowRank, prediction_factor


class _PooledView:
    """A pattern operator seen through its per-column features ``F[:, :, k] = D_k X``.

    The layout of the pooled patch operators of the CNN and nested programs,
    which take :class:`BlockPlusLowRank`'s features path.
    """

    def __init__(self, op):
        self._op = op
        X, masks = np.asarray(op.X), np.asarray(op.masks)
        self.features = masks[:, None, :] * X[:, :, None]

    def __getattr__(self, name):
        return getattr(self._op, name)


@pytest.mark.parametrize("features", [None, "small", "large"], ids=["masks", "features", "features-large"])
@pytest.mark.parametrize("kind, C", [("squared", 1), ("squared2", 2), ("multinomial", 3)])
def test_block_plus_low_rank_solve_matches_dense(rng, kind, C, features, monkeypatch):
    from skconvex.programs.datafits import Multinomial
    from skconvex.solvers import _lowrank

    if features == "large":
        # The features path's branch for blocks it inverts one at a time.
        monkeypatch.setattr(_lowrank, "_LOOP_BLOCK_SIZE", 1)

    datafit = Multinomial() if kind == "multinomial" else SquaredError()
    problem = build(6, kind, datafit, C, n=12, n_gates=4)
    op = problem.operator
    d, B, _ = op.coef_shape
    U = 0.3 * rng.standard_normal(op.coef_shape)
    R, Q = prediction_factor(problem, op.forward(U))
    blocks = rng.standard_normal((B * C, d, d))
    blocks = blocks @ blocks.transpose(0, 2, 1) + np.eye(d)
    # Dense Hessian of the reduced datafit (intercept minimized out) by
    # differences of exact gradients, plus the block diagonal.
    N = U.size

    def grad(u):
        _, _, g = problem.smooth(op.forward(u.reshape(op.coef_shape)))
        return op.adjoint(g).ravel()

    H = np.empty((N, N))
    g0 = grad(U.ravel())
    for i in range(N):
        e = U.ravel().copy()
        e[i] += 1e-6
        H[:, i] = (grad(e) - g0) / 1e-6
    H = 0.5 * (H + H.T)
    for M in (blocks, blocks[0]):
        dense = H.copy()
        for k in range(B):
            for c in range(C):
                idx = np.arange(d) * B * C + k * C + c
                dense[np.ix_(idx, idx)] += M[k * C + c] if M.ndim == 3 else M
        g = rng.standard_normal(op.coef_shape)
        x = BlockPlusLowRank(_PooledView(op) if features else op, R, Q, M).solve(g)
        expected = np.linalg.solve(dense, g.ravel())
        np.testing.assert_allclose(x.ravel(), expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())


@pytest.mark.parametrize("size", [5, 70])
def test_block_inverses_match_lapack_for_small_and_large_blocks(rng, size):
    # Small blocks go through the batched Cholesky, large ones through
    # LAPACK's Cholesky inverse one block at a time.
    from skconvex.solvers._lowrank import _LOOP_BLOCK_SIZE, _spd_inverses

    assert (size >= _LOOP_BLOCK_SIZE) == (size == 70)
    A = rng.standard_normal((4, size, 2 * size))
    M = A @ A.transpose(0, 2, 1) + 1e-3 * np.eye(size)
    inv = _spd_inverses(M)
    np.testing.assert_allclose(inv, np.linalg.inv(M), rtol=1e-8, atol=1e-10)
    np.testing.assert_array_equal(inv, inv.transpose(0, 2, 1))


@pytest.mark.parametrize("size", [5, 30])
def test_block_inverses_in_place(rng, size):
    # The block-Jacobi preconditioner inverts its blocks in the row Gram's
    # work array (a fresh array of digits' 4,000 blocks cost page faults at
    # every Newton step); a numerically indefinite block takes the fallback.
    from skconvex.solvers._lowrank import _LOOP_BLOCK_SIZE, _spd_inverses_in_place

    assert (size >= _LOOP_BLOCK_SIZE) == (size == 30)
    A = rng.standard_normal((5, size, 2 * size))
    M = A @ A.transpose(0, 2, 1) + 1e-3 * np.eye(size)
    M[2] = np.outer(A[2, :, 0], A[2, :, 0])  # rank one: Cholesky fails
    expected = [np.linalg.inv(Mk) for Mk in M[[0, 1, 3, 4]]]
    work = M.copy()
    inv = _spd_inverses_in_place(work)
    assert inv is work
    np.testing.assert_allclose(inv[[0, 1, 3, 4]], expected, rtol=1e-8, atol=1e-10)
    if size >= _LOOP_BLOCK_SIZE:
        # Mirrored from the triangle LAPACK computes.
        np.testing.assert_array_equal(inv, inv.transpose(0, 2, 1))
    np.testing.assert_allclose(inv, inv.transpose(0, 2, 1), rtol=1e-12)
    assert np.all(np.isfinite(inv[2])) and np.all(np.linalg.eigvalsh(inv[2]) > 0)


def test_cone_gram_blocks_match_their_sums_through_updates(rng):
    # The cone curvature blocks sum_j a_jk x_j x_j^T, from scratch and through
    # the sparse updates between Newton steps, written to one work array.
    from skconvex.solvers._al_newton import _ConeGram

    X = rng.standard_normal((40, 6))
    gram = _ConeGram(X)
    active = rng.random((40, 9)) < 0.5
    for _ in range(4):
        blocks = gram(active).reshape(9, 6, 6).copy()
        expected = np.einsum("jk,jd,je->kde", active.astype(float), X, X)
        np.testing.assert_allclose(blocks, expected, rtol=1e-12, atol=1e-12)
        flip = rng.random(active.shape) < 0.05
        active = active ^ flip
    assert gram.updates > 0
