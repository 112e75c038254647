"""Bad and unusual input for every estimator: a clear error or a valid certificate.

Every estimator the package defines (found by discovery, so new ones join
automatically) meets every input kind of issue 22. For each pair the outcome
must be either a ``ValueError``/``TypeError`` whose message names the problem,
or a finite fit whose certificate holds: ``dual_gap_ >= 0`` (or
``lower_bound_ <= objective_``) and finite predictions. For the two-layer
gated and exact ReLU programs the certificate is also checked against a CVXPY
solve of the same program on the fitted gates.

A kind that an estimator cannot take is skipped by a rule (no
``sample_weight`` in ``fit``, no ``y`` for a transformer, classes only for
classifiers, no parameter of that name), never by a per-estimator table.
"""

import inspect
import pickle
import re
import warnings

import numpy as np
import pytest
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.exceptions import ConvergenceWarning

from skconvex.discovery import all_estimators

ALL = all_estimators()

# Small programs: the sweep checks behaviour, not accuracy. The deep
# estimators use their gated programs, as tests/test_common.py does (the
# exact deep solvers are covered by tests/test_models_deep.py).
SMALL = {
    "ConvexReLUClassifierCV": {"n_alphas": 2, "cv": 2},
    "ConvexReLURegressorCV": {"n_alphas": 2, "cv": 2},
    "ConvexGatedReLUClassifierCV": {"n_alphas": 2, "cv": 2},
    "ConvexGatedReLURegressorCV": {"n_alphas": 2, "cv": 2},
    "ConvexThreeLayerReLUClassifier": {"n_arrangements": (2, 3), "gated": True, "tol": 1e-3},
    "ConvexThreeLayerReLURegressor": {"n_arrangements": (2, 3), "gated": True, "tol": 1e-3},
    "PathRegularizedReLUClassifier": {"n_arrangements": 6, "gated": True, "tol": 1e-3},
    "PathRegularizedReLURegressor": {"n_arrangements": 6, "gated": True, "tol": 1e-3},
}


def make(cls, **params):
    """An instance with small settings (and fixed seed) where it has the parameters."""
    name = cls.__name__
    defaults = cls().get_params()
    kw = dict(SMALL.get(name, {}))
    if "n_arrangements" not in kw and isinstance(defaults.get("n_arrangements"), int):
        kw["n_arrangements"] = 4
    if "random_state" in defaults:
        kw["random_state"] = 0
    kw.update(params)
    return cls(**kw)


def takes_y(cls):
    return is_regressor(cls()) or is_classifier(cls())


def takes_weights(cls):
    return "sample_weight" in inspect.signature(cls.fit).parameters


def data(cls, n=12, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.sin(X @ np.array([1.0, -1.0, 0.5])[:d]) + 0.1 * rng.standard_normal(n)
    if is_classifier(cls()):
        y = (y > np.median(y)).astype(int)
    return X, y


def fit(est, X, y, **kw):
    if takes_y(type(est)):
        return est.fit(X, y, **kw)
    return est.fit(X, **kw)


def outputs(est, X):
    if hasattr(est, "decision_function"):
        return np.asarray(est.decision_function(X))
    if hasattr(est, "predict"):
        return np.asarray(est.predict(X))
    return np.asarray(est.transform(X))


def check_certificate(est, X):
    """A fit's certificate is a true bound and its outputs are finite."""
    if hasattr(est, "objective_"):
        assert np.isfinite(est.objective_), est.objective_
    if hasattr(est, "dual_gap_"):
        assert np.isfinite(est.dual_gap_) and est.dual_gap_ >= 0, est.dual_gap_
    if hasattr(est, "lower_bound_"):
        assert est.lower_bound_ <= est.objective_ + 1e-9 * abs(est.objective_)
    out = outputs(est, X)
    assert np.all(np.isfinite(out.astype(np.float64)))


# ------------------------------------------------------------- input kinds
# Each kind returns (fit callable, regex or None, must_raise). With a regex
# the fit may raise ValueError/TypeError matching it; must_raise demands it.
# A kind returns None where it does not apply to the estimator.


def _kind_nan(cls, X, y):
    X = X.copy()
    X[0, 0] = np.nan
    return (lambda e: fit(e, X, y)), "NaN", True


def _kind_inf(cls, X, y):
    X = X.copy()
    X[1, 1] = np.inf
    return (lambda e: fit(e, X, y)), "infinity", True


def _kind_empty(cls, X, y):
    return (lambda e: fit(e, X[:0], y[:0])), "0 sample", True


def _kind_single_sample(cls, X, y):
    return (lambda e: fit(e, X[:1], y[:1])), "sample", True


def _kind_constant_column(cls, X, y):
    X = X.copy()
    X[:, 1] = 3.0
    return (lambda e: fit(e, X, y)), None, False


def _kind_duplicated_rows(cls, X, y):
    return (lambda e: fit(e, np.vstack([X, X[:4]]), np.r_[y, y[:4]])), None, False


def _scaled(factor, on):
    def kind(cls, X, y):
        if on == "y" and not is_regressor(cls()):
            return None
        Xs, ys = (X * factor, y) if on == "X" else (X, y * factor)
        return (lambda e: fit(e, Xs, ys)), "magnitude|standardize|scale", False

    return kind


def _kind_one_class(cls, X, y):
    if not is_classifier(cls()):
        return None
    return (lambda e: fit(e, X, np.zeros_like(y))), "class", True


def _kind_string_labels(cls, X, y):
    if not takes_y(cls):
        return None
    labels = np.where(y > np.median(y), "yes", "no")
    if is_classifier(cls()):
        return (lambda e: fit(e, X, labels)), None, False
    return (lambda e: fit(e, X, labels)), "string|float|numeric", True


def _kind_mismatched_lengths(cls, X, y):
    if not takes_y(cls):
        return None
    return (lambda e: fit(e, X, y[:-1])), "inconsistent numbers of samples", True


def _weights(kind):
    def make_kind(cls, X, y):
        if not takes_weights(cls):
            return None
        sw = np.ones(X.shape[0])
        if kind == "zero":
            sw[:3] = 0.0
            return (lambda e: fit(e, X, y, sample_weight=sw)), None, False
        if kind == "all_zero":
            sw[:] = 0.0
            return (lambda e: fit(e, X, y, sample_weight=sw)), "[Ss]ample.weight", True
        if kind == "nan":
            sw[0] = np.nan
            return (lambda e: fit(e, X, y, sample_weight=sw)), "NaN", True
        sw[:3] = -1.0
        return (lambda e: fit(e, X, y, sample_weight=sw)), "[Nn]egative", True

    return make_kind


def _kind_float32(cls, X, y):
    X32 = X.astype(np.float32)

    def run(e):
        fit(e, X32, y)
        if hasattr(e, "predict") and not is_classifier(e):
            assert e.predict(X32).dtype == np.float32

    return run, None, False


def _kind_pandas(cls, X, y):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])

    def run(e):
        fit(e, df, y)
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message=".*feature names.*")
            outputs(e, df)
        assert list(e.feature_names_in_) == list(df.columns)

    return run, None, False


def _kind_wrong_feature_count(cls, X, y):
    def run(e):
        fit(e, X, y)
        outputs(e, X[:, :-1])

    return run, "features", True


def _param(name, value, match, must_raise):
    def kind(cls, X, y):
        if name not in cls().get_params():
            return None
        return (lambda e: fit(e.set_params(**{name: value}), X, y)), match, must_raise

    return kind


def _kind_pickle(cls, X, y):
    def run(e):
        fit(e, X, y)
        again = pickle.loads(pickle.dumps(e))
        np.testing.assert_array_equal(outputs(again, X), outputs(e, X))

    return run, None, False


def _kind_clone(cls, X, y):
    def run(e):
        fit(e, X, y)
        other = fit(clone(e), X, y)
        np.testing.assert_allclose(outputs(other, X), outputs(e, X), rtol=1e-10, atol=1e-12)

    return run, None, False


KINDS = {
    "nan": _kind_nan,
    "inf": _kind_inf,
    "empty": _kind_empty,
    "single_sample": _kind_single_sample,
    "constant_column": _kind_constant_column,
    "duplicated_rows": _kind_duplicated_rows,
    "X_times_1e150": _scaled(1e150, "X"),
    "X_times_1e-150": _scaled(1e-150, "X"),
    "y_times_1e150": _scaled(1e150, "y"),
    "y_times_1e-150": _scaled(1e-150, "y"),
    "one_class": _kind_one_class,
    "string_labels": _kind_string_labels,
    "mismatched_lengths": _kind_mismatched_lengths,
    "zero_weights": _weights("zero"),
    "all_zero_weights": _weights("all_zero"),
    "nan_weights": _weights("nan"),
    "negative_weights": _weights("negative"),
    "float32": _kind_float32,
    "pandas": _kind_pandas,
    "wrong_feature_count": _kind_wrong_feature_count,
    "alpha_0": _param("alpha", 0.0, "alpha", False),
    "alpha_-1": _param("alpha", -1.0, "alpha", True),
    "n_arrangements_0": _param("n_arrangements", 0, "n_arrangements", True),
    "tol_0": _param("tol", 0.0, "tol", False),
    "max_iter_1": _param("max_iter", 1, "max_iter", False),
    "pickle": _kind_pickle,
    "clone": _kind_clone,
}


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("cls", [c for _, c in ALL], ids=[n for n, _ in ALL])
def test_bad_input(cls, kind):
    X, y = data(cls)
    planned = KINDS[kind](cls, X, y)
    if planned is None:
        pytest.skip(f"{kind} does not apply to {cls.__name__}")
    run, match, must_raise = planned
    est = make(cls)
    with warnings.catch_warnings():
        # max_iter=1, tol and extreme scales may stop early: that is reported
        # by the certificate, which is what is checked.
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            run(est)
        except (ValueError, TypeError) as exc:
            if match is None or not re.search(match, str(exc)):
                raise
            return
    assert not must_raise, f"{cls.__name__} accepted {kind}"
    Xc = X
    if kind.startswith("X_times_"):
        Xc = X * float(kind.split("_")[-1])
    elif kind == "duplicated_rows":
        Xc = np.vstack([X, X[:4]])
    elif kind == "constant_column":
        Xc = X.copy()
        Xc[:, 1] = 3.0
    elif kind == "pandas":
        import pandas as pd

        Xc = pd.DataFrame(X, columns=est.feature_names_in_)
    check_certificate(est, Xc)


# ------------------------------------------- certificates against CVXPY
def _two_layer():
    from skconvex.models.gated import _GatedBase
    from skconvex.models.relu import _ReLUBase

    return [(n, c) for n, c in ALL if issubclass(c, (_GatedBase, _ReLUBase))]


@pytest.mark.parametrize("kind", ["duplicated_rows", "zero_weights", "max_iter_1", "float32", "constant_column"])
@pytest.mark.parametrize("cls", [c for _, c in _two_layer()], ids=[n for n, _ in _two_layer()])
def test_two_layer_certificate_against_cvxpy(cls, kind):
    from skconvex.models.relu import _ReLUBase
    from skconvex.solvers import cvxpy_cone_solve
    from skconvex.solvers.conic import cvxpy_solve

    X, y = data(cls)
    sw = None
    if kind == "duplicated_rows":
        X, y = np.vstack([X, X[:4]]), np.r_[y, y[:4]]
    elif kind == "zero_weights":
        sw = np.ones(X.shape[0])
        sw[:3] = 0.0
    elif kind == "float32":
        X = X.astype(np.float32)
    elif kind == "constant_column":
        X = X.copy()
        X[:, 1] = 3.0
    est = make(cls, **({"max_iter": 1} if kind == "max_iter_1" else {}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y, sample_weight=sw)
    ref = clone(est).set_params(warm_start=True)
    ref.gates_ = est.gates_
    problem = ref._build_problem(X.astype(np.float64), y, sw)[0]
    run = cvxpy_cone_solve if issubclass(cls, _ReLUBase) else cvxpy_solve
    optimum = run(problem).objective
    slack = 1e-6 * max(1.0, abs(optimum))
    assert est.dual_gap_ >= 0
    assert est.objective_ - est.dual_gap_ <= optimum + slack
    assert est.objective_ >= optimum - slack


# ------------------------------------------------- issue 22's reproducers
def _issue_data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 4))
    y = np.sin(X @ np.array([1.0, -1, 0.5, 0.2])) + 0.1 * rng.standard_normal(40)
    return X, y


def test_negative_weights_refused_not_certified():
    from skconvex import ConvexGatedReLURegressor, ConvexReLURegressor
    from skconvex.programs.problem import ConvexProblem

    X, y = _issue_data()
    sw = np.ones(40)
    sw[:5] = -1.0
    for est in (
        ConvexGatedReLURegressor(n_arrangements=10, fit_intercept=False, random_state=0),
        ConvexReLURegressor(n_arrangements=10, random_state=0),
    ):
        with pytest.raises(ValueError, match="Negative values in data passed to `sample_weight`"):
            est.fit(X, y, sample_weight=sw)
    # The problem layer refuses them too, whoever builds the program.
    est = ConvexGatedReLURegressor(n_arrangements=10, random_state=0).fit(X, y)
    problem = est._build_problem(X, y, None)[0]
    with pytest.raises(ValueError, match="non-negative"):
        ConvexProblem(problem.operator, problem.datafit, problem.penalty, problem.y, -problem.sample_weight, 0.1)


def test_alpha_zero_on_augmented_lagrangian_is_refused():
    from skconvex import ConvexReLURegressor

    X, y = _issue_data()
    with pytest.raises(ValueError, match=r"alpha must be > 0"):
        ConvexReLURegressor(alpha=0.0, n_arrangements=10, max_iter=5000, random_state=0).fit(X, y)
    # The unregularized program itself is fine with an interior-point solver.
    est = ConvexReLURegressor(alpha=0.0, n_arrangements=10, solver="cvxpy", random_state=0).fit(X, y)
    assert est.score(X, y) > 0.99


@pytest.mark.parametrize("factor", [1e8, 1e-8])
def test_conic_solvers_equivariant_in_units(factor):
    from skconvex import ConvexSplineRegressor, CopositiveNetRegressor

    X, y = _issue_data()
    for est in (ConvexSplineRegressor(), CopositiveNetRegressor(n_arrangements=10, random_state=0)):
        ref = clone(est).fit(X, y)
        scaled = clone(est).fit(X, y * factor)
        np.testing.assert_allclose(scaled.predict(X) / factor, ref.predict(X), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(scaled.objective_ / factor**2, ref.objective_, rtol=1e-4)


def test_huge_features_fit_or_clear_error():
    from skconvex import (
        ConvexAttentionHeadRegressor,
        ConvexSplineRegressor,
        CopositiveNetRegressor,
    )

    X, y = _issue_data()
    for est, factor in ((ConvexSplineRegressor(), 1e20), (CopositiveNetRegressor(n_arrangements=10, random_state=0), 1e12)):
        est.fit(X * factor, y)
        check_certificate(est, X * factor)
    with pytest.raises(ValueError, match="Standardize X"):
        ConvexAttentionHeadRegressor(random_state=0).fit(X * 1e100, y)


def test_cv_predict_with_dataframe_does_not_warn():
    pd = pytest.importorskip("pandas")
    from skconvex import ConvexReLURegressorCV

    X, y = _issue_data()
    df = pd.DataFrame(X, columns=list("abcd"))
    est = ConvexReLURegressorCV(n_arrangements=10, random_state=0).fit(df, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est.predict(df)


def test_attention_head_default_converges():
    from skconvex import ConvexAttentionHeadRegressor

    X, y = _issue_data()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est = ConvexAttentionHeadRegressor(random_state=0).fit(X, y)
    assert est.dual_gap_ <= est.tol * est.objective_


@pytest.mark.parametrize(
    "name",
    ["ConvexThreeLayerReLURegressor", "PathRegularizedReLURegressor", "ParallelDeepLinearRegressor", "ConvexAttentionHeadRegressor"],
)
def test_float32_in_float32_out(name):
    cls = dict(ALL)[name]
    X, y = _issue_data()
    X32 = X.astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = make(cls, **({"max_iter": 50} if name == "ConvexAttentionHeadRegressor" else {})).fit(X32, y)
    assert est.predict(X32).dtype == np.float32


# ----------------------------------------------------- unit equivariance
REGRESSORS = [(n, c) for n, c in ALL if is_regressor(c())]


@pytest.mark.parametrize("cls", [c for _, c in REGRESSORS], ids=[n for n, _ in REGRESSORS])
def test_regressors_equivariant_to_target_units(cls):
    X, y = data(cls, n=16)
    ref = make(cls).fit(X, y)
    pred = ref.predict(X)
    # Within the certificate: a relative gap of tol moves predictions by
    # about sqrt(tol) of their spread.
    tol = getattr(ref, "tol", 1e-4)
    atol = 10 * np.sqrt(tol) * np.std(y)
    for c in (1e-6, 1.0, 1e8):
        est = make(cls).fit(X, c * y)
        np.testing.assert_allclose(est.predict(X) / c, pred, atol=atol)
