import numpy as np
import pytest

from skconvex.programs.penalties import GroupL2, GroupNuclear

PENALTIES = [GroupL2(), GroupNuclear()]


def _blocks_norm(pen, W):
    if isinstance(pen, GroupNuclear):
        return sum(np.linalg.norm(W[:, p, :], "nuc") for p in range(W.shape[1]))
    return sum(np.linalg.norm(W[:, p, :]) for p in range(W.shape[1]))


@pytest.mark.parametrize("pen", PENALTIES)
@pytest.mark.parametrize("shape", [(5, 7, 1), (6, 4, 3), (2, 4, 5)])
def test_value_and_dual_norm(rng, pen, shape):
    W = rng.standard_normal(shape)
    np.testing.assert_allclose(pen.value(W), _blocks_norm(pen, W), rtol=1e-10)
    # Dual norm: max over blocks of the dual block norm, and <W, G> <= R(W) R°(G).
    G = rng.standard_normal(shape)
    assert np.vdot(W, G) <= pen.value(W) * pen.dual_norm(G) + 1e-10
    if isinstance(pen, GroupNuclear):
        expected = max(np.linalg.norm(G[:, p, :], 2) for p in range(shape[1]))
    else:
        expected = max(np.linalg.norm(G[:, p, :]) for p in range(shape[1]))
    np.testing.assert_allclose(pen.dual_norm(G), expected, rtol=1e-10)


@pytest.mark.parametrize("pen", PENALTIES)
@pytest.mark.parametrize("shape", [(5, 7, 1), (6, 4, 3), (2, 4, 5)])
def test_prox_is_the_minimizer(rng, pen, shape):
    V = rng.standard_normal(shape)
    t = 0.8
    P = pen.prox(V, t)

    def obj(W):
        return 0.5 * np.sum((W - V) ** 2) + t * pen.value(W)

    base = obj(P)
    for _ in range(30):
        assert obj(P + 1e-3 * rng.standard_normal(shape)) >= base - 1e-12
    # Subgradient optimality: (V - P) / t has dual norm <= 1.
    assert pen.dual_norm((V - P) / t) <= 1 + 1e-10


def test_prox_zeroes_small_blocks(rng):
    W = rng.standard_normal((4, 6, 2)) * 0.01
    for pen in PENALTIES:
        assert not pen.prox(W, 1.0).any()


def test_nuclear_equals_group_l2_for_one_output(rng):
    W = rng.standard_normal((5, 8, 1))
    np.testing.assert_allclose(GroupNuclear().value(W), GroupL2().value(W))
    np.testing.assert_allclose(GroupNuclear().prox(W, 0.5), GroupL2().prox(W, 0.5))


def test_nuclear_prox_small_singular_values_exact(rng):
    # Rank-deficient blocks must keep an accurate nuclear norm (the
    # certificate depends on it).
    u = rng.standard_normal((10, 1))
    W = np.stack([u @ rng.standard_normal((1, 4)) for _ in range(3)], axis=1)
    np.testing.assert_allclose(GroupNuclear().value(W), _blocks_norm(GroupNuclear(), W), rtol=1e-13)


@pytest.mark.parametrize("pen", PENALTIES)
@pytest.mark.parametrize("shape", [(5, 7, 1), (6, 4, 3)])
def test_prox_returns_value_of_result(rng, pen, shape):
    V = rng.standard_normal(shape)
    P, value = pen.prox(V, 0.7, return_value=True)
    np.testing.assert_allclose(value, pen.value(P), rtol=1e-10)
    np.testing.assert_array_equal(P, pen.prox(V, 0.7))
