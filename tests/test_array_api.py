"""The gated estimators on array-API inputs (array-api-strict, CPU torch).

scikit-learn's own array-API checks run from tests/test_common.py (the
gated estimators declare ``array_api_support``); these tests add what those
checks do not: agreement of the fits within their certified gaps, every
fitted attribute's namespace and device, float32, warm starts, the errors on
bad input, and that the solve itself computes in the namespace (operator
products, FISTA iterates, working sets, Newton end-game, certificate) while
the parts that stay on the host (adaptive arrangements, devices without
float64, namespaces without the end-game's linear algebra) do.
"""

import subprocess
import sys

import numpy as np
import pytest
from sklearn import config_context
from sklearn.datasets import make_classification, make_regression
from sklearn.utils._array_api import get_namespace_and_device

from skconvex import ConvexGatedReLUClassifier, ConvexGatedReLURegressor
from skconvex.programs.datafits import Logistic, Multinomial, SquaredError
from skconvex.programs.operators import NamespacePatternOperator, PatternOperator
from skconvex.programs.penalties import GroupL2, GroupNuclear
from skconvex.programs.problem import ConvexProblem, NamespaceProblem
from skconvex.solvers import solve_certified
from skconvex.solvers.fista import fista
from skconvex.solvers.support_newton import support_newton
from skconvex.solvers.working_set import working_set_solve

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
def test_warm_start_in_namespace(name, monkeypatch):
    import skconvex.solvers.support_newton as sn

    xp, device = _namespace(name)
    X, y = _regression_data()
    est = ConvexGatedReLURegressor(alpha=1e-1, n_arrangements=20, warm_start=True, random_state=0)
    with config_context(array_api_dispatch=True):
        est.fit(_in(xp, device, X), _in(xp, device, y))
        gates = _to_numpy(est.gates_).copy()
        newton = []

        def spy_newton(problem, coef, *args, **kwargs):
            newton.append(type(coef))
            return sn.support_newton(problem, coef, *args, **kwargs)

        spy_newton.runs_in_namespace = sn.runs_in_namespace
        monkeypatch.setattr("skconvex.models.gated.support_newton", spy_newton)
        est.set_params(alpha=1e-2).fit(_in(xp, device, X), _in(xp, device, y))
    # The warm start's predictor step on the old support runs in the namespace.
    assert newton and {t.__module__.split(".")[0] for t in newton} == {name}
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
from skconvex import ConvexGatedReLUClassifier, ConvexGatedReLURegressor
X = np.random.default_rng(0).standard_normal((40, 3)); y = X[:, 0]
labels = np.digitize(X[:, 1], [-0.5, 0.5])
# The numpy path, then the array-API path (with its Newton end-game).
ConvexGatedReLURegressor(n_arrangements=10, random_state=0).fit(X, y).predict(X)
ConvexGatedReLUClassifier(n_arrangements=10, random_state=0).fit(X, labels).predict(X)
with config_context(array_api_dispatch=True):
    est = ConvexGatedReLURegressor(n_arrangements=10, random_state=0).fit(xp.asarray(X), xp.asarray(y))
    assert type(est.predict(xp.asarray(X))).__module__.startswith("array_api_strict")
    clf = ConvexGatedReLUClassifier(n_arrangements=10, random_state=0).fit(xp.asarray(X), xp.asarray(labels))
    assert type(clf.predict_proba(xp.asarray(X))).__module__.startswith("array_api_strict")
assert "torch" not in sys.modules or sys.modules["torch"] is None
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")


@pytest.mark.parametrize("name", NAMESPACES)
@pytest.mark.parametrize("Estimator", [ConvexGatedReLURegressor, ConvexGatedReLUClassifier])
def test_attributes_and_outputs_match_numpy(name, Estimator):
    # The values part of scikit-learn's check_array_api_input_and_values
    # (attributes and outputs equal to the numpy fit's, sample weights in the
    # namespace), with tolerances relative to each array's scale: that check
    # compares every element at rtol 1e-7, which a weight of 1e-5 in a
    # solution of scale 1 misses once the Newton end-game's conjugate
    # gradients round differently in the namespace (by ~1e-11).
    xp, device = _namespace(name)
    if Estimator is ConvexGatedReLURegressor:
        X, y = _regression_data()
    else:
        X, y = _classification_data(3)
    sw = np.random.default_rng(0).random(X.shape[0]) + 0.5
    est_np = Estimator(n_arrangements=20, random_state=0).fit(X, y, sample_weight=sw)
    est = Estimator(n_arrangements=20, random_state=0)
    methods = [m for m in ("predict", "decision_function", "predict_proba", "predict_log_proba") if hasattr(est, m)]
    with config_context(array_api_dispatch=True):
        est.fit(_in(xp, device, X), _in(xp, device, y), sample_weight=_in(xp, device, sw))
        outputs = {m: _to_numpy(getattr(est, m)(_in(xp, device, X))) for m in methods}
    for attr, ref in vars(est_np).items():
        if not isinstance(ref, np.ndarray) or ref.dtype.kind not in "biuf" or attr == "classes_":
            continue
        value = _to_numpy(getattr(est, attr))
        scale = max(np.abs(ref).max(initial=0.0), 1.0)
        np.testing.assert_allclose(value, ref, rtol=0, atol=1e-9 * scale, err_msg=attr)
    for m in methods:
        ref = getattr(est_np, m)(X)
        if m == "predict" and Estimator is ConvexGatedReLUClassifier:
            np.testing.assert_array_equal(outputs[m], ref)
        else:
            np.testing.assert_allclose(outputs[m], ref, rtol=0, atol=1e-9 * max(np.abs(ref).max(), 1.0), err_msg=m)


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


def _xp_of(name):
    xp, device = _namespace(name)
    with config_context(array_api_dispatch=True):
        ns, _, dev = get_namespace_and_device(xp.asarray([1.0], device=device))
    return ns, dev


def _spy_products(monkeypatch):
    """Record the type of every array the namespace and host operators multiply."""
    seen = {"xp": [], "host": 0}
    forward, adjoint = NamespacePatternOperator.forward, NamespacePatternOperator.adjoint
    host_forward = PatternOperator.forward

    def spy_forward(self, W):
        seen["xp"].append(type(W))
        return forward(self, W)

    def spy_adjoint(self, R):
        seen["xp"].append(type(R))
        return adjoint(self, R)

    def spy_host(self, W):
        seen["host"] += 1
        return host_forward(self, W)

    monkeypatch.setattr(NamespacePatternOperator, "forward", spy_forward)
    monkeypatch.setattr(NamespacePatternOperator, "adjoint", spy_adjoint)
    monkeypatch.setattr(PatternOperator, "forward", spy_host)
    return seen


@pytest.mark.parametrize("name", NAMESPACES)
@pytest.mark.parametrize(
    "Estimator, penalty",
    [(ConvexGatedReLURegressor, "nuclear"), (ConvexGatedReLUClassifier, "nuclear"), (ConvexGatedReLUClassifier, "frobenius")],
)
def test_solve_computes_in_namespace(name, Estimator, penalty, monkeypatch):
    import skconvex.solvers.support_newton as sn

    xp, device = _namespace(name)
    X, y = _regression_data() if Estimator is ConvexGatedReLURegressor else _classification_data(3)
    seen = _spy_products(monkeypatch)
    newton = []
    polish = sn.support_newton

    def spy_newton(problem, coef, *args, **kwargs):
        newton.append(type(coef))
        return polish(problem, coef, *args, **kwargs)

    spy_newton.runs_in_namespace = sn.runs_in_namespace
    monkeypatch.setattr("skconvex.models.gated.support_newton", spy_newton)
    est = Estimator(n_arrangements=30, random_state=0, penalty=penalty)
    with config_context(array_api_dispatch=True):
        est.fit(_in(xp, device, X), _in(xp, device, y))
    # FISTA's products (its iterates and gradients: at least two per
    # iteration) and the Newton end-game all ran on the namespace's arrays,
    # except Newton on the factors of nuclear blocks of several outputs,
    # which runs on the host copy (its point is certified on the device).
    # The host's only product is the report of max_violation_.
    assert len(seen["xp"]) >= 2 * est.n_iter_
    assert {t.__module__.split(".")[0] for t in seen["xp"]} == {name}
    factored = Estimator is ConvexGatedReLUClassifier and penalty == "nuclear"
    assert newton and {t.__module__.split(".")[0] for t in newton} == {"numpy" if factored else name}
    assert seen["host"] <= 1


@pytest.mark.parametrize("name", NAMESPACES)
def test_no_float64_device_solves_on_host(name, monkeypatch):
    # A device without float64 (Apple MPS) solves in numpy, its fitted arrays
    # still go back to the namespace.
    from skconvex import _array_api

    xp, device = _namespace(name)
    X, y = _regression_data()
    seen = _spy_products(monkeypatch)
    monkeypatch.setattr(_array_api, "supports_float64", lambda xp, device: False)
    est = ConvexGatedReLURegressor(n_arrangements=20, random_state=0)
    with config_context(array_api_dispatch=True):
        est.fit(_in(xp, device, X), _in(xp, device, y))
    assert seen["xp"] == [] and seen["host"] > 0
    _assert_lives_in(est.pattern_weights_, name, device)


@pytest.mark.parametrize("name", NAMESPACES)
def test_adaptive_solves_on_host(name, monkeypatch):
    xp, device = _namespace(name)
    X, y = _regression_data()
    seen = _spy_products(monkeypatch)
    est = ConvexGatedReLURegressor(n_arrangements=10, arrangement="adaptive", max_arrangements=20, random_state=0)
    with config_context(array_api_dispatch=True):
        est.fit(_in(xp, device, X), _in(xp, device, y))
    assert seen["xp"] == []
    _assert_lives_in(est.pattern_weights_, name, device)
    est_np = ConvexGatedReLURegressor(
        n_arrangements=10, arrangement="adaptive", max_arrangements=20, random_state=0
    ).fit(X, y)
    _agree_within_gaps(est_np, est)


@pytest.mark.parametrize("name", NAMESPACES)
def test_float32_torch_agrees_within_gaps(name):
    xp, device = _namespace(name)
    X, y = _regression_data()
    est_np = ConvexGatedReLURegressor(n_arrangements=30, random_state=0).fit(X.astype(np.float32), y)
    est = ConvexGatedReLURegressor(n_arrangements=30, random_state=0)
    with config_context(array_api_dispatch=True):
        est.fit(_in(xp, device, X, xp.float32), _in(xp, device, y, xp.float32))
    # Both certificates are float64 (the float32 solve hands over to float64).
    assert est.dual_gap_ <= est.tol * est.objective_
    _agree_within_gaps(est_np, est)


def _program(kind, n_outputs, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    n, d, P = 120, 4, 25
    X = np.hstack([rng.standard_normal((n, d - 1)), np.ones((n, 1))])
    patterns = X @ rng.standard_normal((d, P)) >= 0
    if kind == "squared":
        datafit, Y = SquaredError(), rng.standard_normal((n, n_outputs))
    elif kind == "logistic":
        datafit, Y = Logistic(), np.sign(rng.standard_normal((n, 1)))
    else:
        datafit, Y = Multinomial(), np.eye(n_outputs)[rng.integers(0, n_outputs, n)]
    sw = rng.random(n)
    sw[:3] = 0.0  # weightless rows: the dual must skip them
    sw /= sw.sum()
    op = PatternOperator(X, patterns, n_outputs=Y.shape[1], dtype=dtype)
    penalty = GroupNuclear() if n_outputs > 1 else GroupL2()
    problem = ConvexProblem(op, datafit, penalty, Y, sw, 1.0, fit_intercept=True)
    problem.alpha = 0.1 * problem.alpha_max()
    return problem


@pytest.mark.parametrize("name", NAMESPACES)
@pytest.mark.parametrize("kind, n_outputs", [("squared", 1), ("squared", 3), ("logistic", 1), ("multinomial", 3)])
def test_program_pieces_match_numpy(name, kind, n_outputs):
    xp, device = _xp_of(name)
    problem = _program(kind, n_outputs)
    ns = problem.to_namespace(xp, device)
    assert isinstance(ns, NamespaceProblem) and ns.to_namespace(xp, device) is ns
    rng = np.random.default_rng(1)
    W = rng.standard_normal(problem.coef_shape) * (rng.random((1, problem.coef_shape[1], 1)) > 0.5)
    W_xp = ns.from_host(W)
    cert, b, G = problem.evaluate(W)
    cert_xp, b_xp, G_xp = ns.evaluate(W_xp)
    np.testing.assert_allclose([cert_xp.primal, cert_xp.dual], [cert.primal, cert.dual], rtol=1e-10)
    np.testing.assert_allclose(b_xp, b, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(_to_numpy(G_xp), G, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(_to_numpy(problem.penalty.prox(W_xp, 0.5)), problem.penalty.prox(W, 0.5), atol=1e-12)
    assert ns.alpha_max() == pytest.approx(problem.alpha_max(), rel=1e-10)
    blocks = np.array([0, 3, 7])
    sub = ns.restrict(blocks)
    np.testing.assert_array_equal(_to_numpy(ns.take_blocks(W_xp, blocks)), W[:, blocks])
    padded = _to_numpy(ns.scatter_blocks(blocks, ns.take_blocks(W_xp, blocks)))
    expected = np.zeros_like(W)
    expected[:, blocks] = W[:, blocks]
    np.testing.assert_array_equal(padded, expected)
    host = sub.astype(np.float32).to_host()
    assert type(host) is ConvexProblem and host.dtype == np.float32
    np.testing.assert_array_equal(host.operator.masks, problem.operator.masks[:, blocks].astype(np.float32))


@pytest.mark.parametrize("name", NAMESPACES)
@pytest.mark.parametrize("kind, n_outputs", [("squared", 1), ("logistic", 1), ("multinomial", 3)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fista_iterates_in_namespace(name, kind, n_outputs, dtype):
    # The working-set solve of the namespace program: its coefficients stay in
    # the namespace, its float64 certificate agrees with the numpy solve's
    # optimum within the two gaps, and the Newton polish (on the host) hands
    # back a point in the namespace.
    xp, device = _xp_of(name)
    problem = _program(kind, n_outputs, dtype)
    ns = problem.to_namespace(xp, device)
    kwargs = {"tol": 1e-8, "max_iter": 3000, "polish": support_newton}
    res_np = solve_certified(problem, working_set_solve, **kwargs)
    res = solve_certified(ns, working_set_solve, **kwargs)
    assert type(res.coef).__module__.split(".")[0] == name
    assert res.converged and res_np.converged
    assert abs(res.objective - res_np.objective) <= res.gap + res_np.gap + 1e-12
    # The namespace solution's objective, recomputed on the host in float64,
    # and both certified lower bounds below the other solve's objective.
    cert, _, _ = problem.astype(np.float64).evaluate(_to_numpy(res.coef).astype(np.float64), res.intercept)
    assert cert.primal == pytest.approx(res.objective, rel=1e-9)
    assert res.dual_objective <= res_np.objective + 1e-12
    assert res_np.dual_objective <= res.objective + 1e-12
    plain = fista(ns, tol=1e-6, max_iter=2000)
    assert type(plain.coef).__module__.split(".")[0] == name
    assert plain.objective - res_np.objective <= plain.gap + res_np.gap + 1e-12


@pytest.mark.parametrize("name", NAMESPACES)
@pytest.mark.parametrize(
    "kind, n_outputs, fit_intercept",
    [("squared", 1, True), ("logistic", 1, True), ("squared", 3, True), ("multinomial", 3, True), ("multinomial", 3, False)],
)
def test_newton_end_game_in_namespace(name, kind, n_outputs, fit_intercept, monkeypatch):
    # The support Newton end-game computes on the namespace's arrays (its
    # products, the datafit's Hessian, its conjugate gradients; only per-block
    # scalars come to the host) and agrees with the numpy end-game started
    # from the same point, on the objective and on the certified gap.
    import skconvex.solvers.support_newton as sn
    from skconvex.solvers.fista import polish_and_certify

    xp, device = _xp_of(name)
    problem = _program(kind, n_outputs)
    problem.penalty = GroupL2()  # Frobenius blocks: Newton applies to several outputs
    problem.fit_intercept = fit_intercept
    start = fista(problem, tol=1e-3, max_iter=300)
    ns = problem.to_namespace(xp, device)
    assert sn.runs_in_namespace(ns)
    ref, _ = polish_and_certify(problem, support_newton, start.coef, start.intercept)
    assert ref.applied

    seen = _spy_products(monkeypatch)
    hessians, moved = [], []
    factor = type(problem.datafit).hessian_factor

    def spy_factor(self, pred, y, sample_weight):
        hessians.append(type(pred))
        return factor(self, pred, y, sample_weight)

    def spy_to_numpy(a):
        moved.append(tuple(a.shape))
        return _to_numpy(a)

    monkeypatch.setattr(type(problem.datafit), "hessian_factor", spy_factor)
    monkeypatch.setattr(sn, "to_numpy", spy_to_numpy)
    pol, _ = polish_and_certify(ns, support_newton, ns.from_host(start.coef), start.intercept)
    assert pol.applied and pol.info["n_steps"] >= 1
    assert seen["host"] == 0
    assert {t.__module__.split(".")[0] for t in seen["xp"] + hessians} == {name}
    assert hessians
    # Nothing larger than one number per block went to the host.
    P = problem.operator.n_patterns
    assert moved and all(len(shape) == 1 and shape[0] <= P for shape in moved)
    assert type(pol.coef).__module__.split(".")[0] == name
    assert pol.primal == pytest.approx(ref.primal, rel=1e-10)
    scale = abs(ref.primal)
    gap, gap_ref = pol.primal - pol.dual, ref.primal - ref.dual
    if kind == "multinomial":
        # The objective is flat to rounding along the classes' shift, so the
        # two points (equal objectives) differ by ~sqrt(eps) and their
        # certified gaps by rounding of that size: both must be tiny.
        assert max(gap, gap_ref) <= 1e-8 * scale
    else:
        assert abs(gap - gap_ref) <= 1e-10 * scale
    np.testing.assert_allclose(_to_numpy(pol.coef), ref.coef, atol=1e-6 * np.abs(ref.coef).max())


@pytest.mark.parametrize("name", NAMESPACES)
def test_newton_end_game_host_fallback(name, monkeypatch):
    # A namespace without the linalg pseudo-inverse (needed for several
    # outputs with an intercept) runs the end-game on the host copy.
    import skconvex.solvers.support_newton as sn
    from skconvex.solvers.fista import polish_and_certify

    xp, device = _xp_of(name)
    problem = _program("multinomial", 3)
    problem.penalty = GroupL2()
    start = fista(problem, tol=1e-3, max_iter=300)
    ns = problem.to_namespace(xp, device)
    monkeypatch.setattr(sn, "_has_pinv", lambda xp: False)
    assert not sn.runs_in_namespace(ns)
    seen = _spy_products(monkeypatch)
    pol, _ = polish_and_certify(ns, support_newton, ns.from_host(start.coef), start.intercept)
    assert pol.applied and seen["host"] > 0
    assert type(pol.coef).__module__.split(".")[0] == name
