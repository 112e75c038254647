"""Cross-validated choice of ``alpha`` along warm-started regularization paths."""

from numbers import Integral, Real

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin, _fit_context, clone
from sklearn.metrics import check_scoring
from sklearn.model_selection import check_cv
from sklearn.utils._param_validation import Interval
from sklearn.utils.metaestimators import available_if
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    validate_data,
)

from ._base import BaseConvexNetwork
from .gated import ConvexGatedReLUClassifier, ConvexGatedReLURegressor
from .path import _check_alphas, _fix_random_state, _warm_path, alpha_grid
from .relu import ConvexReLUClassifier, ConvexReLURegressor

__all__ = [
    "ConvexReLURegressorCV",
    "ConvexReLUClassifierCV",
    "ConvexGatedReLURegressorCV",
    "ConvexGatedReLUClassifierCV",
]


def _fold_scores(estimator, X, y, sample_weight, train, test, alphas, scoring):
    """Scores of one fold along the path (fit on ``train``, score on ``test``)."""
    scorer = check_scoring(estimator, scoring=scoring)
    sw_train = sw_test = None
    if sample_weight is not None:
        sw_train, sw_test = sample_weight[train], sample_weight[test]
    # Weighted scores keep weights equivalent to repeated rows.
    kwargs = {} if sw_test is None else {"sample_weight": sw_test}
    path = _warm_path(estimator, X[train], y[train], alphas, sw_train)
    return np.array([scorer(est, X[test], y[test], **kwargs) for _, est in path])


def _best_has(name):
    def check(self):
        return hasattr(self.best_estimator_, name) if hasattr(self, "best_estimator_") else (
            hasattr(self._base_estimator(), name)
        )

    return check


class _ConvexReLUCV(BaseConvexNetwork):
    """Cross-validation of ``alpha`` over warm-started paths (shared machinery).

    Subclasses name the estimator whose ``alpha`` is chosen in
    ``_estimator_class``; the class name, not a parameter, says which program
    is fitted, as for the estimators themselves.
    """

    _estimator_class = None

    _parameter_constraints = {
        "alphas": ["array-like", None],
        "n_alphas": [Interval(Integral, 1, None, closed="left")],
        "eps": [Interval(Real, 0, 1, closed="neither")],
        "cv": ["cv_object"],
        "scoring": [str, callable, None],
        "n_arrangements": [Interval(Integral, 1, None, closed="left")],
        "fit_intercept": ["boolean"],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        alphas=None,
        n_alphas=8,
        eps=1e-3,
        cv=3,
        scoring=None,
        n_arrangements=100,
        fit_intercept=True,
        tol=1e-4,
        max_iter=1000,
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.alphas = alphas
        self.n_alphas = n_alphas
        self.eps = eps
        self.cv = cv
        self.scoring = scoring
        self.n_arrangements = n_arrangements
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.max_iter = max_iter
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    def _base_estimator(self):
        return self._estimator_class(
            n_arrangements=self.n_arrangements,
            fit_intercept=self.fit_intercept,
            tol=self.tol,
            max_iter=self.max_iter,
            random_state=self.random_state,
        )

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Choose ``alpha`` by cross-validation, then refit on all the data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Row weights of the fits and of the held-out scores.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        X, y = validate_data(
            self,
            X,
            y,
            dtype=[np.float64, np.float32],
            ensure_min_samples=2,
            multi_output=not self._is_classifier,
            y_numeric=not self._is_classifier,
        )
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=np.float64, ensure_non_negative=True
            )
        base = _fix_random_state(self._base_estimator())
        if self.alphas is None:
            alphas = alpha_grid(base, X, y, sample_weight=sample_weight, n_alphas=self.n_alphas, eps=self.eps)
        else:
            alphas = _check_alphas(self.alphas)
        cv = check_cv(self.cv, y, classifier=self._is_classifier)
        folds = list(cv.split(X, y))
        scores = Parallel(n_jobs=self.n_jobs, verbose=self.verbose)(
            delayed(_fold_scores)(base, X, y, sample_weight, train, test, alphas, self.scoring)
            for train, test in folds
        )
        self.alphas_ = alphas
        self.scores_ = np.asarray(scores)
        self.mean_scores_ = self.scores_.mean(axis=0)
        best = int(np.argmax(self.mean_scores_))
        self.alpha_ = float(alphas[best])
        self.best_estimator_ = clone(base).set_params(alpha=self.alpha_).fit(
            X, y, sample_weight=sample_weight
        )
        for name in ("classes_", "n_neurons_", "objective_", "dual_gap_", "n_iter_", "coef_", "intercept_"):
            if hasattr(self.best_estimator_, name):
                setattr(self, name, getattr(self.best_estimator_, name))
        return self

    def predict(self, X):
        """Predict with the estimator refitted at ``alpha_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Predictions of ``best_estimator_``.
        """
        check_is_fitted(self)
        # best_estimator_ was fitted on the validated array, so it gets the
        # array too: feature names are checked here, against this estimator's.
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return self.best_estimator_.predict(X)


class _RegressorCV(RegressorMixin, _ConvexReLUCV):
    _is_classifier = False

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class _ClassifierCV(ClassifierMixin, _ConvexReLUCV):
    _is_classifier = True

    def decision_function(self, X):
        """Decision function of the estimator refitted at ``alpha_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            ``best_estimator_.decision_function(X)``.
        """
        check_is_fitted(self)
        # best_estimator_ was fitted on the validated array, so it gets the
        # array too: feature names are checked here, against this estimator's.
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return self.best_estimator_.decision_function(X)

    @available_if(_best_has("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities of the estimator refitted at ``alpha_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            ``best_estimator_.predict_proba(X)``.
        """
        check_is_fitted(self)
        # best_estimator_ was fitted on the validated array, so it gets the
        # array too: feature names are checked here, against this estimator's.
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return self.best_estimator_.predict_proba(X)


_CV_DOC = """{summary}

    The model refitted at the chosen ``alpha`` is a
    :class:`~skconvex.{estimator}` ({program}).
    {sibling}

    Parameters
    ----------
    alphas : array-like of shape (n_alphas,), default=None
        Values of ``alpha`` to try (finite, >= 0); None builds ``n_alphas``
        values from the exact :math:`\\alpha_{{\\max}}` (the smallest ``alpha``
        whose solution is the empty network) down to ``eps * alpha_max``.
    n_alphas : int, default=8
        Grid size when ``alphas`` is None.
    eps : float, default=1e-3
        Ratio of the smallest to the largest grid value.
    cv : int, cross-validation generator or iterable, default=3
        Folds, as in :func:`sklearn.model_selection.check_cv`.
    scoring : str or callable, default=None
        Score to maximize; None uses the estimator's ``score`` ({score}).
    n_arrangements : int, default=100
        Gates sampled (shared by every fold and by the final fit).
    fit_intercept : bool, default=True
        Hidden biases and an output intercept.
    tol : float, default=1e-4
        Certified relative duality gap of every fit.
    max_iter : int, default=1000
        Solver iterations per fit.
    n_jobs : int, default=None
        Folds run in parallel through joblib (any backend, e.g. dask).
    random_state : int, RandomState instance or None, default=None
        Seed of the gates; one seed serves every fold.
    verbose : int, default=0
        Progress of the folds (joblib).

    Attributes
    ----------
    alpha_ : float
        Chosen ``alpha``.
    alphas_ : ndarray of shape (n_alphas,)
        The grid (decreasing).
    scores_ : ndarray of shape (n_folds, n_alphas)
        Test score of every fold along the path.
    mean_scores_ : ndarray of shape (n_alphas,)
        Mean over folds.
    best_estimator_ : {estimator}
        The model refitted on all the data at ``alpha_``.
    n_neurons_ : int
        Neurons of ``best_estimator_``.
    objective_ : float
        Objective of ``best_estimator_``.
    dual_gap_ : float
        Certified duality gap of ``best_estimator_``.
    n_iter_ : int
        Solver iterations of the final fit.
    coef_ : ndarray
        ``best_estimator_.coef_``.
    intercept_ : float or ndarray
        ``best_estimator_.intercept_``.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column names.
{classes}
    See Also
    --------
    {estimator} : The estimator whose ``alpha`` is chosen.
    {other} : {other_summary}
    skconvex.convex_relu_path : The warm-started path every fold computes.

    Notes
    -----
    Each fold computes a regularization path (the path of
    :func:`skconvex.convex_relu_path`: the estimator warm-started down the
    grid, keeping its gates) and scores every point on the held-out part;
    folds run in parallel through ``n_jobs``. GridSearchCV over ``alpha``
    would refit every candidate from scratch.

    Examples
    --------
{example}"""

_CLASSES_DOC = "    classes_ : ndarray of shape (n_classes,)\n        Class labels.\n"

_EXACT = "the exact ReLU program"
_GATED = "the gated program (group lasso)"
_EXACT_SIBLING = (
    "Every fit solves a cone-constrained program, several times slower\n"
    "    than the gated relaxation of :class:`~skconvex.{other}`.\n\n"
    "    .. versionchanged:: 0.1\n"
    "       Fits the exact program; the ``formulation`` parameter is gone (its\n"
    "       former default, ``\"gated\"``, is :class:`~skconvex.{other}`)."
)
_GATED_SIBLING = (
    "The networks are gated, not ReLU;\n"
    "    :class:`~skconvex.{other}` fits the exact ReLU program (slower)."
)

_REGRESSION_EXAMPLE = """\
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skconvex import {name}
    >>> X, y = load_diabetes(return_X_y=True)
    >>> X = StandardScaler().fit_transform(X)
    >>> reg = {name}({params}random_state=0).fit(X, y)
    >>> bool(reg.alpha_ > 0)
    True
"""

_CLASSIFICATION_EXAMPLE = """\
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skconvex import {name}
    >>> X, y = load_iris(return_X_y=True)
    >>> X = StandardScaler().fit_transform(X)
    >>> clf = {name}({params}random_state=0).fit(X, y)
    >>> clf.predict(X[:2]).shape
    (2,)
"""

# The exact examples use a small grid: each of their fits is an exact program.
_SMALL = "n_arrangements=20, n_alphas=4, "


def _cv_doc(name, summary, estimator, program, sibling, other, other_summary, score, example, params):
    return _CV_DOC.format(
        summary=summary,
        estimator=estimator,
        program=program,
        sibling=sibling.format(other=other),
        other=other,
        other_summary=other_summary,
        score=score,
        classes=_CLASSES_DOC if example is _CLASSIFICATION_EXAMPLE else "",
        example=example.format(name=name, params=params),
    )


class ConvexReLURegressorCV(_RegressorCV):
    __doc__ = _cv_doc(
        "ConvexReLURegressorCV",
        "Exact convex ReLU regressor whose ``alpha`` is chosen by cross-validation.",
        "ConvexReLURegressor",
        _EXACT,
        _EXACT_SIBLING,
        "ConvexGatedReLURegressorCV",
        "The gated counterpart (faster).",
        "R^2",
        _REGRESSION_EXAMPLE,
        _SMALL,
    )

    _estimator_class = ConvexReLURegressor


class ConvexReLUClassifierCV(_ClassifierCV):
    __doc__ = _cv_doc(
        "ConvexReLUClassifierCV",
        "Exact convex ReLU classifier whose ``alpha`` is chosen by cross-validation.",
        "ConvexReLUClassifier",
        _EXACT,
        _EXACT_SIBLING,
        "ConvexGatedReLUClassifierCV",
        "The gated counterpart (faster).",
        "accuracy",
        _CLASSIFICATION_EXAMPLE,
        _SMALL,
    )

    _estimator_class = ConvexReLUClassifier


class ConvexGatedReLURegressorCV(_RegressorCV):
    __doc__ = _cv_doc(
        "ConvexGatedReLURegressorCV",
        "Convex gated ReLU regressor whose ``alpha`` is chosen by cross-validation.",
        "ConvexGatedReLURegressor",
        _GATED,
        _GATED_SIBLING,
        "ConvexReLURegressorCV",
        "The exact ReLU counterpart.",
        "R^2",
        _REGRESSION_EXAMPLE,
        "",
    )

    _estimator_class = ConvexGatedReLURegressor


class ConvexGatedReLUClassifierCV(_ClassifierCV):
    __doc__ = _cv_doc(
        "ConvexGatedReLUClassifierCV",
        "Convex gated ReLU classifier whose ``alpha`` is chosen by cross-validation.",
        "ConvexGatedReLUClassifier",
        _GATED,
        _GATED_SIBLING,
        "ConvexReLUClassifierCV",
        "The exact ReLU counterpart.",
        "accuracy",
        _CLASSIFICATION_EXAMPLE,
        "",
    )

    _estimator_class = ConvexGatedReLUClassifier
