"""The gated estimators on array-API inputs (array-api-strict, CPU torch).

scikit-learn's own array-API checks run from tests/test_common.py (the
gated estimators declare ``array_api_support``); these tests add what those
checks do not: agreement of the fits within their certified gaps, every
fitted attribute's namespace and device, float32, warm starts, and the
errors on bad input.
"""

import subprocess
import sys

import numpy as np
import pytest
from sklearn import config_context
from sklearn.datasets import make_classification, make_regression
from sklearn.utils._array_api import get_namespace_and_device

from skconvex import ConvexGatedReLUClassifier, ConvexGatedReLURegressor

NAMESPACES = ["array_api_strict", "torch"]

FITTED = [
    "gates_",
    "pattern_weights_",
    "coef_",
    "hidden_weights_",
    "hidden_intercepts_",
    "output_weights_",
    "neuron_patterns_",
]


def _namespace(name):
    xp = pytest.importorskip(name)
    if name == "torch":
        return xp, xp.device("cpu")
    return xp, xp.Device("CPU_DEVICE")


def _to_numpy(a):
    if isinstance(a, np.ndarray):
        return a
    if hasattr(a, "cpu"):  # torch
        return a.cpu().numpy()
    import array_api_strict

    return np.asarray(array_api_strict.asarray(a, device=array_api_strict.Device("CPU_DEVICE")))


def _in(xp, device, a, dtype=None):
    return xp.asarray(a, device=device) if dtype is None else xp.asarray(a, device=device, dtype=dtype)


def _assert_lives_in(a, xp_name, device):
    with config_context(array_api_dispatch=True):
        a_xp, _, a_device = get_namespace_and_device(a)
    assert a_xp.__name__.endswith(xp_name), a_xp.__name__
    assert a_device == device


def _regression_data(n_outputs=1):
    X, y = make_regression(n_samples=80, n_features=5, n_targets=n_outputs, noise=5.0, random_state=0)
    return X, y / y.std()


def _classification_data(n_classes=2):
    return make_classification(
        n_samples=90, n_features=5, n_informative=3, n_classes=n_classes, random_state=0
    )


def _agree_within_gaps(est_np, est_xp):
    # Both objectives are within their certified gaps of the same optimum
    # (same gates: same seed and data), so they differ by at most the sum.
    bound = est_np.dual_gap_ + est_xp.dual_gap_ + 1e-12 * abs(est_np.objective_)
    assert abs(est_np.objective_ - est_xp.objective_) <= bound


@pytest.mark.parametrize("name", NAMESPACES)
@pytest.mark.parametrize("n_outputs", [1, 2])
def test_regressor_fit_predict_in_namespace(name, n_outputs):
    xp, device = _namespace(name)
    X, y = _regression_data(n_outputs)
    est_np = ConvexGatedReLURegressor(alpha=1e-2, n_arrangements=30, random_state=0).fit(X, y)
    est = ConvexGatedReLURegressor(alpha=1e-2, n_arrangements=30, random_state=0)
    with config_context(array_api_dispatch=True):
        est.fit(_in(xp, device, X), _in(xp, device, y))
        pred = est.predict(_in(xp, device, X))
    _agree_within_gaps(est_np, est)
    for attr in FITTED:
        _assert_lives_in(getattr(est, attr), name, device)
        assert _to_numpy(getattr(est, attr)).shape == getattr(est_np, attr).shape
    if n_outputs > 1:
        _assert_lives_in(est.intercept_, name, device)
    _assert_lives_in(pred, name, device)
    assert pred.dtype == xp.float64
    # Predictions of two certified fits: equal up to the accuracy the gap allows.
    np.testing.assert_allclose(_to_numpy(pred), est_np.predict(X), atol=1e-3 * np.abs(y).max())


@pytest.mark.parametrize("name", NAMESPACES)
@pytest.mark.parametrize("n_classes", [2, 3])
def test_classifier_fit_predict_in_namespace(name, n_classes):
    xp, device = _namespace(name)
    X, y = _classification_data(n_classes)
    est_np = ConvexGatedReLUClassifier(n_arrangements=30, random_state=0).fit(X, y)
    est = ConvexGatedReLUClassifier(n_arrangements=30, random_state=0)
    X_xp = _in(xp, device, X)
    with config_context(array_api_dispatch=True):
        est.fit(X_xp, _in(xp, device, y))
        labels = est.predict(X_xp)
        proba = est.predict_proba(X_xp)
        log_proba = est.predict_log_proba(X_xp)
        scores = est.decision_function(X_xp)
    _agree_within_gaps(est_np, est)
    for attr in [*FITTED, "intercept_"]:
        _assert_lives_in(getattr(est, attr), name, device)
    assert isinstance(est.classes_, np.ndarray)
    for out in (labels, proba, log_proba, scores):
        _assert_lives_in(out, name, device)
    assert np.mean(_to_numpy(labels) == est_np.predict(X)) > 0.97
    np.testing.assert_allclose(_to_numpy(proba), est_np.predict_proba(X), atol=1e-3)
    np.testing.assert_allclose(_to_numpy(proba).sum(axis=1), 1.0)
    np.testing.assert_allclose(np.exp(_to_numpy(log_proba)), _to_numpy(proba), rtol=1e-12)


@pytest.mark.parametrize("name", NAMESPACES)
def test_float32_stays_float32(name):
    xp, device = _namespace(name)
    X, y = _regression_data()
    est = ConvexGatedReLURegressor(n_arrangements=20, random_state=0)
    with config_context(array_api_dispatch=True):
        est.fit(_in(xp, device, X, xp.float32), _in(xp, device, y, xp.float32))
        pred = est.predict(_in(xp, device, X, xp.float32))
    assert est.pattern_weights_.dtype == xp.float32
    assert pred.dtype == xp.float32
    # The certificate is float64 whatever the compute dtype.
    assert isinstance(est.dual_gap_, float)


@pytest.mark.parametrize("name", NAMESPACES)
def test_warm_start_in_namespace(name):
    xp, device = _namespace(name)
    X, y = _regression_data()
    est = ConvexGatedReLURegressor(alpha=1e-1, n_arrangements=20, warm_start=True, random_state=0)
    with config_context(array_api_dispatch=True):
        est.fit(_in(xp, device, X), _in(xp, device, y))
        gates = _to_numpy(est.gates_).copy()
        est.set_params(alpha=1e-2).fit(_in(xp, device, X), _in(xp, device, y))
    _assert_lives_in(est.pattern_weights_, name, device)
    np.testing.assert_array_equal(_to_numpy(est.gates_), gates)
    cold = ConvexGatedReLURegressor(alpha=1e-2, n_arrangements=20, random_state=0).fit(X, y)
    _agree_within_gaps(cold, est)


def test_torch_without_dispatch_is_numpy():
    torch = pytest.importorskip("torch")
    X, y = _regression_data()
    est = ConvexGatedReLURegressor(n_arrangements=20, random_state=0).fit(torch.asarray(X), torch.asarray(y))
    assert isinstance(est.pattern_weights_, np.ndarray)
    assert isinstance(est.predict(torch.asarray(X)), np.ndarray)


@pytest.mark.parametrize("name", NAMESPACES)
def test_bad_input_same_errors(name):
    xp, device = _namespace(name)
    X, y = _regression_data()
    X_nan = X.copy()
    X_nan[3, 1] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN") as numpy_error:
        ConvexGatedReLURegressor().fit(X_nan, y)
    with config_context(array_api_dispatch=True):
        with pytest.raises(ValueError, match="Input X contains NaN") as xp_error:
            ConvexGatedReLURegressor().fit(_in(xp, device, X_nan), _in(xp, device, y))
        assert str(xp_error.value) == str(numpy_error.value)
        y_nan = y.copy()
        y_nan[0] = np.inf
        with pytest.raises(ValueError, match="Input y contains infinity"):
            ConvexGatedReLURegressor().fit(_in(xp, device, X), _in(xp, device, y_nan))
        est = ConvexGatedReLURegressor(n_arrangements=10, random_state=0)
        est.fit(_in(xp, device, X), _in(xp, device, y))
        with pytest.raises(ValueError, match="Input X contains NaN"):
            est.predict(_in(xp, device, X_nan))
        with pytest.raises(ValueError, match="is expecting 5 features"):
            est.predict(_in(xp, device, X[:, :4]))
        # Predicting on numpy after a fit on another namespace is refused by name.
        with pytest.raises(ValueError, match=r"ConvexGatedReLURegressor.predict\(\)"):
            est.predict(X)


def test_bad_dtype_same_errors():
    torch = pytest.importorskip("torch")
    X, y = _regression_data()
    Xc = torch.asarray(X) * (1 + 1j)
    with pytest.raises(ValueError, match="Complex data not supported") as numpy_error:
        ConvexGatedReLURegressor().fit(X * (1 + 1j), y)
    with config_context(array_api_dispatch=True):
        with pytest.raises(ValueError, match="Complex data not supported") as xp_error:
            ConvexGatedReLURegressor().fit(Xc, torch.asarray(y))
        est = ConvexGatedReLURegressor(n_arrangements=10, random_state=0)
        est.fit(torch.asarray(X), torch.asarray(y))
        with pytest.raises(ValueError, match="Complex data not supported"):
            est.predict(Xc)
    assert str(xp_error.value).splitlines()[0] == str(numpy_error.value).splitlines()[0]


def test_works_without_torch():
    pytest.importorskip("array_api_strict")
    # A fresh interpreter where importing torch fails, as when the optional
    # extra is not installed: the package and the array-API path still work.
    code = """
import sys

class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}")

sys.meta_path.insert(0, NoTorch())
import numpy as np, array_api_strict as xp
from sklearn import config_context
from skconvex import ConvexGatedReLURegressor
X = np.random.default_rng(0).standard_normal((40, 3)); y = X[:, 0]
with config_context(array_api_dispatch=True):
    est = ConvexGatedReLURegressor(n_arrangements=10, random_state=0).fit(xp.asarray(X), xp.asarray(y))
    assert type(est.predict(xp.asarray(X))).__module__.startswith("array_api_strict")
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")


@pytest.mark.parametrize("name", NAMESPACES)
@pytest.mark.parametrize("Estimator", [ConvexGatedReLURegressor, ConvexGatedReLUClassifier])
def test_sklearn_check_values(name, Estimator):
    # scikit-learn's value check (not among the common checks): attributes and
    # outputs equal to the numpy fit's, sample weights given in the namespace.
    from sklearn.utils.estimator_checks import check_array_api_input_and_values

    _namespace(name)
    device = "cpu" if name == "torch" else "CPU_DEVICE"
    check_array_api_input_and_values(
        Estimator.__name__,
        Estimator(n_arrangements=20, random_state=0),
        array_namespace=name,
        device_name=device,
        check_sample_weight=True,
    )


@pytest.mark.parametrize("name", NAMESPACES)
def test_predict_in_row_batches(name):
    # A tiny memory budget splits predict into row batches on the device too.
    from skconvex import config_context as skconvex_config

    xp, device = _namespace(name)
    X, y = _regression_data()
    est = ConvexGatedReLURegressor(n_arrangements=20, random_state=0)
    with config_context(array_api_dispatch=True):
        est.fit(_in(xp, device, X), _in(xp, device, y))
        whole = _to_numpy(est.predict(_in(xp, device, X)))
        with skconvex_config(max_memory=8 * 1024):
            batched = _to_numpy(est.predict(_in(xp, device, X)))
    np.testing.assert_allclose(batched, whole, rtol=1e-12, atol=1e-12)
