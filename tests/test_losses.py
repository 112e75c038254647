import numpy as np
import pytest
from scipy.optimize import approx_fprime

from skconvex.programs.datafits import Logistic, Multinomial, SquaredError


def _case(name, rng, n=25):
    if name == "squared":
        return SquaredError(), rng.standard_normal((n, 2)), rng.standard_normal((n, 2))
    if name == "logistic":
        y = np.where(rng.random((n, 1)) > 0.5, 1.0, -1.0)
        return Logistic(), y, rng.standard_normal((n, 1))
    y = np.eye(3)[rng.integers(0, 3, n)]
    return Multinomial(), y, rng.standard_normal((n, 3))


NAMES = ["squared", "logistic", "multinomial"]


@pytest.mark.parametrize("name", NAMES)
def test_gradient_matches_finite_differences(rng, name):
    loss, y, pred = _case(name, rng)
    s = rng.random(len(y))
    num = approx_fprime(pred.ravel(), lambda p: loss.value(p.reshape(pred.shape), y, s), 1e-7)
    np.testing.assert_allclose(loss.gradient(pred, y, s).ravel(), num, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_fenchel_young_equality_at_gradient(rng, name):
    # value(pred) = dual(theta) - <theta, pred> for theta = -gradient
    # (equality case of Fenchel-Young, summed over rows).
    loss, y, pred = _case(name, rng)
    s = rng.random(len(y)) + 0.1
    theta = -loss.gradient(pred, y, s)
    lhs = loss.value(pred, y, s)
    rhs = loss.dual(theta, y, s) - np.sum(theta * pred)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-10)


@pytest.mark.parametrize("name", NAMES)
def test_dual_is_a_lower_bound(rng, name):
    # For any feasible theta and any pred: value(pred) >= dual(theta) - <theta, pred>.
    loss, y, pred = _case(name, rng)
    s = rng.random(len(y)) + 0.1
    other = pred + rng.standard_normal(pred.shape)
    theta = -0.7 * loss.gradient(other, y, s)
    assert loss.value(pred, y, s) >= loss.dual(theta, y, s) - np.sum(theta * pred) - 1e-12


@pytest.mark.parametrize("name", NAMES)
def test_optimal_intercept(rng, name):
    loss, y, pred = _case(name, rng)
    s = rng.random(len(y)) + 0.1
    b = loss.optimal_intercept(pred, y, s)
    grad = loss.gradient(pred + b, y, s).sum(axis=0)
    np.testing.assert_allclose(grad, 0, atol=1e-12)
    base = loss.value(pred + b, y, s)
    for _ in range(5):
        assert loss.value(pred + b + 1e-3 * rng.standard_normal(b.shape), y, s) >= base


@pytest.mark.parametrize("name", NAMES)
def test_cvxpy_expression_matches_value(rng, name):
    loss, y, pred = _case(name, rng)
    s = rng.random(len(y))
    np.testing.assert_allclose(loss.cvxpy(pred, y, s).value, loss.value(pred, y, s), rtol=1e-10)


def test_dual_outside_domain_is_minus_infinity(rng):
    loss, y, pred = _case("logistic", rng)
    s = np.ones(len(y))
    theta = 3 * -loss.gradient(pred, y, s)  # p = 3 sigma(.) leaves [0, 1]
    assert loss.dual(theta, y, s) == -np.inf


def test_zero_weight_rows_ignored(rng):
    for name in NAMES:
        loss, y, pred = _case(name, rng)
        s = np.ones(len(y))
        s[:5] = 0
        theta = -loss.gradient(pred, y, s)
        assert np.all(theta[:5] == 0)
        np.testing.assert_allclose(
            loss.dual(theta, y, s), loss.dual(theta[5:], y[5:], s[5:]), rtol=1e-12
        )


def test_multinomial_intercept_with_saturated_softmax():
    # Predictions so large that the softmax is one-hot on every row: the
    # intercept's Hessian is then singular (found by hypothesis at alpha=0).
    from skconvex.programs.datafits import Multinomial

    z = np.array([[800.0, 0.0, 0.0], [0.0, 800.0, 0.0], [0.0, 0.0, 800.0]])
    y = np.eye(3)[[0, 0, 2]]
    b = Multinomial().optimal_intercept(z, y, np.full(3, 1 / 3))
    assert b.shape == (3,) and np.all(np.isfinite(b))
