import numpy as np
import pytest
from sklearn.base import is_classifier
from sklearn.datasets import load_diabetes, load_iris
from sklearn.preprocessing import StandardScaler

from skconvex import (
    ConvexGatedReLUClassifier,
    ConvexGatedReLUClassifierCV,
    ConvexGatedReLURegressor,
    ConvexGatedReLURegressorCV,
    ConvexReLUClassifier,
    ConvexReLUClassifierCV,
    ConvexReLURegressor,
    ConvexReLURegressorCV,
    alpha_grid,
    convex_relu_path,
)


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X)[:200], y[:200]


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.mark.parametrize(
    "Est, data",
    [
        (ConvexGatedReLURegressor, "diabetes"),
        (ConvexReLURegressor, "diabetes"),
        (ConvexGatedReLUClassifier, "iris"),
        (ConvexReLUClassifier, "iris"),
    ],
)
def test_alpha_max_is_exact(Est, data, request):
    X, y = request.getfixturevalue(data)
    params = dict(n_arrangements=30, random_state=0)
    alpha_max = alpha_grid(Est(**params), X, y, n_alphas=1)[0]
    above = Est(alpha=alpha_max * 1.001, tol=1e-8, **params).fit(X, y)
    below = Est(alpha=alpha_max * 0.95, tol=1e-8, **params).fit(X, y)
    assert above.n_neurons_ == 0
    assert below.n_neurons_ > 0


def test_exact_alpha_max_is_below_gated_bound(diabetes):
    X, y = diabetes
    exact = alpha_grid(ConvexReLURegressor(random_state=0), X, y, n_alphas=1)[0]
    gated = alpha_grid(ConvexGatedReLURegressor(n_arrangements=100, random_state=0), X, y, n_alphas=1)[0]
    # the same gates; cones can only lower the threshold
    assert exact <= gated * (1 + 1e-12)


def test_path_matches_independent_fits(diabetes):
    X, y = diabetes
    est = ConvexGatedReLURegressor(tol=1e-8, max_iter=20000, random_state=0)
    path = convex_relu_path(X, y, est, n_alphas=5, eps=1e-2, return_estimators=True)
    assert np.all(np.diff(path.alphas) < 0)
    assert path.n_neurons[0] == 0 and path.n_neurons[-1] > 0
    for alpha, objective, model in zip(path.alphas, path.objectives, path.estimators):
        cold = ConvexGatedReLURegressor(alpha=alpha, tol=1e-8, max_iter=20000, random_state=0).fit(X, y)
        np.testing.assert_allclose(objective, cold.objective_, rtol=1e-6)
        np.testing.assert_allclose(model.predict(X), cold.predict(X), rtol=1e-3, atol=1e-3 * np.std(y))
        assert not model.warm_start
    assert np.all(path.dual_gaps <= 1e-8 * path.objectives * (1 + 1e-9))


def test_exact_path_starts_with_certified_zero_network(diabetes):
    # A warm start from the empty network tries it first: at alpha_max it is
    # returned with its certificate, below alpha_max the solver runs.
    X, y = diabetes
    est = ConvexReLURegressor(n_arrangements=20, random_state=0)
    path = convex_relu_path(X, y, est, n_alphas=3, eps=0.1, return_estimators=True)
    assert path.n_neurons[0] == 0 and path.n_iter[0] == 1
    assert path.estimators[0].solver_ == "auglag"
    assert np.all(path.n_neurons[1:] > 0)
    assert np.all(path.dual_gaps <= est.tol * path.objectives * (1 + 1e-9))
    for alpha, objective, gap in zip(path.alphas, path.objectives, path.dual_gaps):
        cold = ConvexReLURegressor(alpha=alpha, n_arrangements=20, tol=1e-7, random_state=0)
        cold.fit(X, y)
        # both certificates are true bounds: each lower bound is below the
        # other fit's objective
        assert objective - gap <= cold.objective_ * (1 + 1e-9)
        assert cold.objective_ - cold.dual_gap_ <= objective * (1 + 1e-9)
    zero = path.estimators[0]
    np.testing.assert_allclose(zero.predict(X), np.mean(y))


def test_path_with_given_alphas_and_seedless_estimator(diabetes):
    X, y = diabetes
    path = convex_relu_path(X, y, ConvexGatedReLURegressor(), alphas=[1e-2, 1.0, 1e-1])
    np.testing.assert_array_equal(path.alphas, [1.0, 1e-1, 1e-2])
    assert len(path.coefs) == 3 and path.gates.shape[0] == X.shape[1] + 1


def test_path_bad_parameters(diabetes):
    X, y = diabetes
    with pytest.raises(ValueError, match="eps"):
        convex_relu_path(X, y, eps=2.0)
    with pytest.raises(ValueError, match="n_alphas"):
        convex_relu_path(X, y, n_alphas=0)
    with pytest.raises(ValueError, match="non-empty 1-D"):
        convex_relu_path(X, y, alphas=0.1)
    from sklearn.linear_model import Ridge

    with pytest.raises(TypeError, match="regularization paths"):
        convex_relu_path(X, y, Ridge())


BAD_ALPHAS = [
    ([], "non-empty 1-D"),
    ([[1.0, 0.1]], "non-empty 1-D"),
    ([1.0, -0.1], "finite and >= 0"),
    ([1.0, np.nan], "finite and >= 0"),
    ([np.inf, 1.0], "finite and >= 0"),
    (["a", "b"], "array of numbers"),
]


@pytest.mark.parametrize("alphas, message", BAD_ALPHAS)
@pytest.mark.parametrize(
    "fit",
    [
        lambda X, y, alphas: convex_relu_path(X, y, alphas=alphas),
        lambda X, y, alphas: ConvexGatedReLURegressorCV(alphas=alphas).fit(X, y),
        lambda X, y, alphas: ConvexReLURegressorCV(alphas=alphas).fit(X, y),
    ],
    ids=["path", "gated_cv", "exact_cv"],
)
def test_user_alphas_are_checked_alike_everywhere(diabetes, fit, alphas, message):
    # One check serves the path and every CV estimator, so a grid one of
    # them rejects is rejected by all with the same message (before any fit).
    X, y = diabetes
    with pytest.raises(ValueError, match=f"alphas must be .*{message}"):
        fit(X, y, alphas)


def test_path_module_moved_with_the_estimators():
    import skconvex.models.path
    import skconvex.path
    from skconvex.path import alpha_grid as grid_from_old_path

    assert skconvex.path is skconvex.models.path
    assert grid_from_old_path is alpha_grid
    assert skconvex.models.convex_relu_path is convex_relu_path


def test_cv_folds_are_points_of_the_path(diabetes):
    # Each fold's scores are those of convex_relu_path on the fold's
    # training rows, point by point: the folds and the path are one path.
    X, y = diabetes
    train, test = np.arange(0, 120), np.arange(120, 200)
    cv = ConvexGatedReLURegressorCV(n_alphas=4, cv=[(train, test)], random_state=0).fit(X, y)
    path = convex_relu_path(
        X[train], y[train], cv.best_estimator_, alphas=cv.alphas_, return_estimators=True
    )
    expected = [est.score(X[test], y[test]) for est in path.estimators]
    np.testing.assert_allclose(cv.scores_[0], expected, rtol=1e-12)


@pytest.mark.parametrize(
    "CV, Est",
    [
        (ConvexReLURegressorCV, ConvexReLURegressor),
        (ConvexReLUClassifierCV, ConvexReLUClassifier),
        (ConvexGatedReLURegressorCV, ConvexGatedReLURegressor),
        (ConvexGatedReLUClassifierCV, ConvexGatedReLUClassifier),
    ],
)
def test_cv_class_name_says_which_program_is_fitted(CV, Est, diabetes, iris):
    X, y = iris if is_classifier(Est()) else diabetes
    assert "formulation" not in CV().get_params()
    cv = CV(n_alphas=2, cv=2, n_arrangements=10, random_state=0).fit(X, y)
    assert type(cv.best_estimator_) is Est
    assert cv.best_estimator_.alpha == cv.alpha_


def test_regressor_cv_picks_best_mean_score(diabetes):
    X, y = diabetes
    cv = ConvexGatedReLURegressorCV(n_alphas=5, random_state=0).fit(X, y)
    assert cv.scores_.shape == (3, 5)
    assert cv.alpha_ == cv.alphas_[np.argmax(cv.mean_scores_)]
    assert cv.best_estimator_.alpha == cv.alpha_
    np.testing.assert_allclose(cv.predict(X), cv.best_estimator_.predict(X))
    assert cv.n_neurons_ == cv.best_estimator_.n_neurons_


def test_classifier_cv_exact_and_proba(iris):
    X, y = iris
    cv = ConvexReLUClassifierCV(n_alphas=3, cv=2, n_arrangements=20, random_state=0).fit(X, y)
    assert isinstance(cv.best_estimator_, ConvexReLUClassifier)
    np.testing.assert_allclose(cv.predict_proba(X).sum(axis=1), 1)
    assert cv.score(X, y) > 0.9
    np.testing.assert_array_equal(cv.classes_, [0, 1, 2])


def test_cv_folds_in_parallel_give_the_same_result(diabetes):
    X, y = diabetes
    a = ConvexGatedReLURegressorCV(n_alphas=4, n_jobs=1, random_state=0).fit(X, y)
    b = ConvexGatedReLURegressorCV(n_alphas=4, n_jobs=2, random_state=0).fit(X, y)
    np.testing.assert_allclose(a.scores_, b.scores_)
    assert a.alpha_ == b.alpha_


def test_cv_weights_equal_repetitions_at_tight_tol(diabetes):
    X, y = diabetes
    X, y = X[:40], y[:40]
    rng = np.random.default_rng(0)
    sw = rng.integers(1, 4, size=len(y)).astype(float)
    Xr, yr = np.repeat(X, sw.astype(int), axis=0), np.repeat(y, sw.astype(int))
    # The same folds in terms of original rows.
    folds = [(np.arange(0, 20), np.arange(20, 40)), (np.arange(20, 40), np.arange(0, 20))]
    owner = np.repeat(np.arange(len(y)), sw.astype(int))
    folds_r = [(np.flatnonzero(np.isin(owner, tr)), np.flatnonzero(np.isin(owner, te))) for tr, te in folds]
    params = dict(n_alphas=3, tol=1e-10, max_iter=100000, random_state=0)
    weighted = ConvexGatedReLURegressorCV(cv=folds, **params).fit(X, y, sample_weight=sw)
    repeated = ConvexGatedReLURegressorCV(cv=folds_r, **params).fit(Xr, yr)
    np.testing.assert_allclose(weighted.scores_, repeated.scores_, rtol=1e-6)
    np.testing.assert_allclose(weighted.predict(X), repeated.predict(X), rtol=1e-6, atol=1e-6)
