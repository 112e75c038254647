"""Property-based robustness tests: odd but valid inputs never crash or give NaN."""

import warnings

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from skconvex import (  # noqa: E402
    ConvexGatedReLUClassifier,
    ConvexGatedReLURegressor,
    ConvexReLUClassifier,
    ConvexReLURegressor,
)

SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@st.composite
def datasets(draw, classification):
    n = draw(st.integers(2, 30))
    d = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * 10.0 ** draw(st.integers(-3, 3))
    if draw(st.booleans()):  # duplicated rows
        X[n // 2 :] = X[: n - n // 2]
    if draw(st.booleans()):  # a constant feature
        X[:, 0] = draw(st.floats(-5, 5))
    X = X.astype(draw(st.sampled_from([np.float32, np.float64])))
    if classification:
        n_classes = draw(st.integers(2, 3))
        y = np.arange(n) % n_classes
        rng.shuffle(y)
        if draw(st.booleans()):
            y = np.array(["a", "b", "c"])[y]
    else:
        y = rng.standard_normal(n) * 10.0 ** draw(st.integers(-3, 3))
        if draw(st.booleans()):
            y[:] = draw(st.floats(-5, 5))  # all-equal targets
    alpha = draw(st.sampled_from([0.0, 1e-6, 1e-2, 1e6]))
    return X, y, alpha


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


def _refuses_alpha(Est, alpha, X, y):
    """The exact estimators' augmented Lagrangian refuses alpha=0 with a clear error."""
    if alpha > 0 or Est not in (ConvexReLURegressor, ConvexReLUClassifier):
        return False
    with pytest.raises(ValueError, match="alpha"):
        _fit(Est(alpha=alpha, n_arrangements=20, max_iter=200, random_state=0), X, y)
    return True


@pytest.mark.parametrize("Est", [ConvexGatedReLURegressor, ConvexReLURegressor])
@SETTINGS
@given(data=datasets(classification=False))
def test_regressor_never_returns_nan(Est, data):
    X, y, alpha = data
    if _refuses_alpha(Est, alpha, X, y):
        return
    reg = _fit(Est(alpha=alpha, n_arrangements=20, max_iter=200, random_state=0), X, y)
    pred = reg.predict(X)
    assert pred.shape == y.shape
    assert np.all(np.isfinite(pred))
    assert np.isfinite(reg.objective_) and reg.dual_gap_ >= 0
    if alpha >= 1e6:
        assert reg.n_neurons_ == 0
        np.testing.assert_allclose(pred, np.mean(y), rtol=1e-4, atol=1e-6 * (1 + np.abs(y).max()))


@pytest.mark.parametrize("Est", [ConvexGatedReLUClassifier, ConvexReLUClassifier])
@SETTINGS
@given(data=datasets(classification=True))
def test_classifier_never_returns_nan(Est, data):
    X, y, alpha = data
    if _refuses_alpha(Est, alpha, X, y):
        return
    clf = _fit(Est(alpha=alpha, n_arrangements=20, max_iter=200, random_state=0), X, y)
    proba = clf.predict_proba(X)
    assert np.all(np.isfinite(proba))
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    assert set(clf.predict(X)) <= set(y)
    assert np.isfinite(clf.objective_) and clf.dual_gap_ >= 0


@pytest.mark.parametrize("Est", [ConvexGatedReLUClassifier, ConvexReLUClassifier])
@SETTINGS
@given(n=st.integers(2, 20), label=st.sampled_from([0, "x", 7]))
def test_one_class_is_a_clear_error(Est, n, label):
    X = np.random.default_rng(n).standard_normal((n, 2))
    with pytest.raises(ValueError, match="at least 2 classes"):
        Est().fit(X, [label] * n)


@pytest.mark.parametrize("Est", [ConvexGatedReLURegressor, ConvexReLURegressor])
@pytest.mark.parametrize("value", [1.4375, 3.3, -2.7, 1e5 / 3])
def test_constant_targets_keep_alpha(Est, value):
    # Constant targets centre to rounding errors (their weighted mean is off
    # by an ulp), not to zero. alpha is scaled by the targets' standard
    # deviation; scaled by that rounding it vanished, and a hypothesis
    # example (22 rows, y = 1.4375, alpha = 1e6) fitted 18 neurons to it.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((22, 2)) * 5
    y = np.full(22, value)
    reg = _fit(Est(alpha=1e6, n_arrangements=20, max_iter=200, random_state=0), X, y)
    assert reg._alpha_scale(y[:, None], np.full(22, 1 / 22)) == 1.0
    assert reg.n_neurons_ == 0
    np.testing.assert_allclose(reg.predict(X), value, rtol=1e-12)
