import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_iris, load_linnerud, make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import SelectFromModel
from sklearn.model_selection import GridSearchCV, ShuffleSplit
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_sample_weight_equivalence_on_dense_data

from skconvex import (
    ConvexGatedReLUClassifier,
    ConvexGatedReLURegressor,
    MemoryBudgetError,
    config_context,
)
from skconvex.programs.datafits import Logistic, Multinomial, SquaredError


@pytest.fixture
def regression_data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 5))
    y = np.maximum(X @ rng.standard_normal(5), 0) - 0.5 * np.maximum(X[:, 0], 0)
    return X, y + 0.05 * rng.standard_normal(120)


@pytest.fixture
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _augmented(est, X):
    return np.c_[X, np.ones(len(X))] if est.fit_intercept else X


def _pattern_prediction(est, X):
    """Sum over patterns of D_p X W_p + b, computed from the convex solution."""
    Xa = _augmented(est, X)
    masks = Xa @ est.gates_ >= 0
    out = np.einsum("np,npc->nc", masks, np.einsum("nd,pdc->npc", Xa, est.pattern_weights_))
    return out + np.atleast_1d(est.intercept_)


def _mean_loss(est, X, y, out):
    if isinstance(est, ConvexGatedReLURegressor):
        return SquaredError().value(out, y.reshape(len(y), -1), np.full(len(y), 1 / len(y)))
    codes = np.searchsorted(est.classes_, y)
    s = np.full(len(y), 1 / len(y))
    if len(est.classes_) == 2:
        return Logistic().value(out, np.where(codes == 1, 1.0, -1.0)[:, None], s)
    return Multinomial().value(out, np.eye(len(est.classes_))[codes], s)


@pytest.mark.parametrize("penalty", ["nuclear", "frobenius"])
def test_predict_equals_recovered_and_convex_forms(iris, penalty):
    X, y = iris
    clf = ConvexGatedReLUClassifier(penalty=penalty, random_state=0).fit(X, y)
    X_new = np.random.default_rng(1).standard_normal((40, 4))
    np.testing.assert_allclose(
        clf.decision_function(X_new), _pattern_prediction(clf, X_new), rtol=1e-8, atol=1e-9
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda: (ConvexGatedReLURegressor(alpha=1e-2, tol=1e-8, random_state=0), "reg"),
        lambda: (ConvexGatedReLUClassifier(alpha=1e-2, tol=1e-8, random_state=0), "bin"),
        lambda: (ConvexGatedReLUClassifier(alpha=1e-2, tol=1e-8, random_state=0), "multi"),
    ],
)
def test_objective_equals_weight_decay_of_recovered_network(regression_data, iris, make):
    est, kind = make()
    if kind == "reg":
        X, y = regression_data
    else:
        X, y = iris
        if kind == "bin":
            y = (y == 2).astype(int)
    est.fit(X, y)
    Xa = _augmented(est, X)
    hidden = np.c_[est.hidden_weights_, est.hidden_intercepts_]
    gates = est.gates_[:, est.neuron_patterns_]
    out = ((Xa @ gates >= 0) * (Xa @ hidden.T)) @ est.output_weights_ + np.atleast_1d(est.intercept_)
    alpha = est.alpha
    if kind == "reg":
        alpha *= np.std(y)
    weight_decay = 0.5 * (np.sum(hidden**2) + np.sum(est.output_weights_**2))
    nonconvex = _mean_loss(est, X, y, out) + alpha * weight_decay
    np.testing.assert_allclose(nonconvex, est.objective_, rtol=1e-6)
    assert est.dual_gap_ <= 1e-8 * est.objective_ * (1 + 1e-9)


def test_pipeline_grid_search_and_coef(iris):
    X, y = iris
    pipe = make_pipeline(StandardScaler(), ConvexGatedReLUClassifier(random_state=0))
    search = GridSearchCV(pipe, {"convexgatedreluclassifier__alpha": [1e-3, 1e-2]}, cv=3)
    search.fit(X, y)
    assert search.best_score_ > 0.9
    best = search.best_estimator_[-1]
    assert best.coef_.shape == (best.gates_.shape[1] * 3, 4)


def test_select_from_model_finds_planted_features():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 10))
    y = np.maximum(X[:, 0] + X[:, 3], 0) - np.maximum(X[:, 3] - X[:, 0], 0)
    reg = ConvexGatedReLURegressor(alpha=0.05, random_state=0)
    selector = SelectFromModel(reg, threshold="mean").fit(X, y)
    assert selector.get_support().shape == (10,)
    assert set(np.flatnonzero(selector.get_support())) == {0, 3}


@pytest.mark.parametrize("Est", [ConvexGatedReLUClassifier, ConvexGatedReLURegressor])
def test_n_jobs_invariance(iris, Est):
    X, y = iris
    a = Est(n_arrangements=600, n_jobs=1, random_state=0).fit(X, y)
    b = Est(n_arrangements=600, n_jobs=2, random_state=0).fit(X, y)
    np.testing.assert_array_equal(a.gates_, b.gates_)
    np.testing.assert_allclose(a.predict(X), b.predict(X))


def test_warm_start_takes_fewer_iterations(iris):
    X, y = iris
    clf = ConvexGatedReLUClassifier(alpha=1e-2, tol=1e-6, warm_start=True, random_state=0)
    first = clf.fit(X, y).n_iter_
    gates = clf.gates_.copy()
    second = clf.fit(X, y).n_iter_
    assert second < first / 2
    np.testing.assert_array_equal(clf.gates_, gates)
    # a new alpha reuses gates and converges
    clf.set_params(alpha=2e-2).fit(X, y)
    assert clf.dual_gap_ <= 1e-6 * clf.objective_


def test_pickle_roundtrip(iris):
    X, y = iris
    clf = ConvexGatedReLUClassifier(random_state=0).fit(X, y)
    clone = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(clone.predict_proba(X), clf.predict_proba(X))


def test_float32_compute_with_float64_certificate(iris):
    X, y = iris
    clf32 = ConvexGatedReLUClassifier(tol=1e-6, random_state=0).fit(X.astype(np.float32), y)
    clf64 = ConvexGatedReLUClassifier(tol=1e-6, random_state=0).fit(X, y)
    assert clf32.gates_.dtype == np.float32
    assert clf32.dual_gap_ <= 1e-6 * clf32.objective_
    np.testing.assert_allclose(clf32.objective_, clf64.objective_, rtol=2e-6)
    forced = ConvexGatedReLUClassifier(dtype="float32", random_state=0).fit(X, y)
    assert forced.gates_.dtype == np.float32


def test_string_classes_and_binary(iris):
    X, y = iris
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = ConvexGatedReLUClassifier(random_state=0).fit(X, labels)
    assert set(clf.predict(X)) <= set(labels)
    assert clf.score(X, labels) > 0.95
    binary = ConvexGatedReLUClassifier(random_state=0).fit(X, labels == "virginica")
    assert binary.decision_function(X).shape == (150,)
    np.testing.assert_allclose(binary.predict_proba(X).sum(axis=1), 1)


def test_squared_error_classifier_has_no_proba(iris):
    X, y = iris
    clf = ConvexGatedReLUClassifier(loss="squared_error", random_state=0).fit(X, y)
    assert clf.score(X, y) > 0.9
    assert not hasattr(clf, "predict_proba")


def test_regressor_equivariant_to_target_scale(regression_data):
    X, y = regression_data
    params = dict(alpha=1e-2, tol=1e-8, max_iter=20000, random_state=0)
    a = ConvexGatedReLURegressor(**params).fit(X, y)
    b = ConvexGatedReLURegressor(**params).fit(X, 1000 * y + 7)
    np.testing.assert_allclose(1000 * a.predict(X) + 7, b.predict(X), rtol=1e-4, atol=1e-3)


def test_multioutput_regression(regression_data):
    X, y = regression_data
    Y = np.c_[y, -y, 2 * y]
    reg = ConvexGatedReLURegressor(random_state=0).fit(X, Y)
    assert reg.predict(X).shape == (120, 3)
    assert reg.output_weights_.shape[1] == 3
    # the nuclear penalty shares neurons across these (collinear) outputs
    frob = ConvexGatedReLURegressor(penalty="frobenius", random_state=0).fit(X, Y)
    assert reg.n_neurons_ <= frob.n_neurons_ * 3


@pytest.mark.parametrize("split, seed", [(0, 0), (4, 1)])
def test_default_multioutput_fit_certifies_on_linnerud(split, seed):
    # Nuclear blocks end on FISTA alone; on these standardized splits of
    # load_linnerud (15 rows, 3 outputs) it needs 2902 and 4056 iterations,
    # so the former default max_iter=2000 stopped them uncertified.
    X, y = load_linnerud(return_X_y=True)
    train, _ = list(ShuffleSplit(10, test_size=0.25, random_state=1).split(X))[split]
    Xs = StandardScaler().fit_transform(X[train])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        reg = ConvexGatedReLURegressor(random_state=seed).fit(Xs, y[train])
    assert reg.dual_gap_ <= reg.tol * reg.objective_
    # The certified objective is the one of the returned weights: the loss
    # of its predictions plus alpha (times the targets' standard deviation)
    # times the nuclear norms of its blocks.
    Y = y[train]
    loss = 0.5 * np.mean(np.sum((reg.predict(Xs) - Y) ** 2, axis=1))
    scale = np.sqrt(np.mean((Y - Y.mean(axis=0)) ** 2))
    nuclear = sum(np.linalg.svd(W, compute_uv=False).sum() for W in reg.pattern_weights_)
    np.testing.assert_allclose(reg.objective_, loss + reg.alpha * scale * nuclear, rtol=1e-9)


def test_large_alpha_gives_empty_network(regression_data):
    X, y = regression_data
    reg = ConvexGatedReLURegressor(alpha=1e3, random_state=0).fit(X, y)
    assert reg.n_neurons_ == 0
    np.testing.assert_allclose(reg.predict(X), y.mean())


@pytest.mark.parametrize(
    "Est, tol", [(ConvexGatedReLUClassifier, 1e-12), (ConvexGatedReLURegressor, 1e-10)]
)
def test_sample_weight_equals_repetition_at_tight_tol(Est, tol):
    # Weighted and repeated fits solve the same program; at a tight gap their
    # predictions agree to the check's 1e-7.
    check_sample_weight_equivalence_on_dense_data(Est.__name__, Est(tol=tol, max_iter=100000))


def test_convergence_warning(iris):
    X, y = iris
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        clf = ConvexGatedReLUClassifier(max_iter=1, random_state=0).fit(X, y)
    assert clf.n_iter_ >= 1 and clf.dual_gap_ > 0


def test_verbose_prints_progress(iris, capsys):
    X, y = iris
    ConvexGatedReLUClassifier(verbose=1, random_state=0).fit(X, y)
    assert "rel. gap" in capsys.readouterr().out


@pytest.mark.parametrize(
    "X_bad, error, match",
    [
        (np.full((10, 3), np.nan), ValueError, "NaN"),
        (np.full((10, 3), np.inf), ValueError, "infinity"),
        (np.ones((1, 3)), ValueError, "minimum of 2"),
        (np.array([["a", "b"], ["c", "d"]]), ValueError, "float"),
        # Sparse input is accepted (issue 23); bad sparse input is refused alike.
        (sp.csr_array(np.full((10, 3), np.nan)), ValueError, "NaN"),
    ],
)
def test_bad_input_is_rejected(X_bad, error, match):
    y = np.arange(X_bad.shape[0]) % 2
    for est in (ConvexGatedReLUClassifier(), ConvexGatedReLURegressor()):
        with pytest.raises(error, match=match):
            est.fit(X_bad, y)


def test_wrong_shape_at_predict(iris):
    X, y = iris
    clf = ConvexGatedReLUClassifier(random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        clf.predict(X[:, :3])


def test_memory_guard_names_the_parameter():
    X, y = make_classification(2000, 10, random_state=0)
    with config_context(max_memory=200_000):
        with pytest.raises(MemoryBudgetError, match="n_arrangements"):
            ConvexGatedReLUClassifier(n_arrangements=500).fit(X, y)


def test_regression_score_reasonable():
    X, y = make_regression(300, 8, noise=5, random_state=0)
    reg = make_pipeline(StandardScaler(), ConvexGatedReLURegressor(random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        reg.fit(X[:200], y[:200])
    assert reg.score(X[200:], y[200:]) > 0.95


def test_interrupted_fit_leaves_estimator_unfitted(iris, monkeypatch):
    from sklearn.exceptions import NotFittedError

    import skconvex.models.gated as gated

    X, y = iris
    clf = ConvexGatedReLUClassifier(random_state=0, warm_start=True).fit(X, y)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(gated, "solve_certified", interrupted)
    with pytest.raises(KeyboardInterrupt):
        clf.fit(X, y)
    with pytest.raises(NotFittedError):
        clf.predict(X)
    assert not [k for k in vars(clf) if k.endswith("_") and not k.startswith("__")]
    # and the wrapper keeps fit's signature (sample_weight routing relies on it)
    import inspect

    assert "sample_weight" in inspect.signature(ConvexGatedReLUClassifier.fit).parameters


def test_default_dtype_is_float32_only_for_large_products(monkeypatch):
    # dtype=None computes in float32 once an operator product costs
    # _FLOAT32_WORK multiply-adds (whole digits with 10 classes), in float64
    # below it; either way the certificate is float64 and a float32 fit
    # certifies the float64 fit's optimum within the two gaps.
    from skconvex.models import gated

    X, y = make_classification(300, 8, n_informative=5, n_classes=3, random_state=0)
    X = StandardScaler().fit_transform(X)
    work = 300 * 9 * 100 * 3

    def compute_dtype(**kw):
        est = ConvexGatedReLUClassifier(random_state=0, **kw)
        return est._build_problem(X, y, None)[0].dtype

    assert compute_dtype() == np.float64
    monkeypatch.setattr(gated, "_FLOAT32_WORK", work)
    assert compute_dtype() == np.float32
    assert compute_dtype(dtype="float64") == np.float64
    assert compute_dtype(n_arrangements=99) == np.float64
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        fit32 = ConvexGatedReLUClassifier(random_state=0).fit(X, y)
    fit64 = ConvexGatedReLUClassifier(random_state=0, dtype="float64").fit(X, y)
    assert 0 <= fit32.dual_gap_ <= fit32.tol * fit32.objective_
    assert abs(fit32.objective_ - fit64.objective_) <= fit32.dual_gap_ + fit64.dual_gap_
    assert fit32.predict_proba(X).dtype == np.float64
