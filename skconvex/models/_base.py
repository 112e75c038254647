"""Machinery shared by the two-layer convex-network estimators.

An estimator here validates its inputs, encodes targets, samples (or reuses)
arrangements, assembles a :class:`~skconvex.programs.problem.ConvexProblem` from the
problem pieces, calls a solver, and stores both the convex solution and the
recovered network. It never iterates itself.
"""

import functools
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    validate_data,
)

from .._config import check_memory
from ..arrangements import sample_arrangements
from ..programs.penalties import GroupL2, GroupNuclear
from ..solvers.conic import SolverError

_PENALTIES = {"nuclear": GroupNuclear, "frobenius": GroupL2}


def _as_dtype(dtype, X):
    """The compute dtype: the ``dtype`` parameter, else float32 only for float32 input."""
    if dtype is not None:
        return np.dtype(dtype)
    return np.dtype(np.float32) if X.dtype == np.float32 else np.dtype(np.float64)


def _in_dtype_of(out, X):
    """Network outputs in the float dtype of ``X`` (float32 in, float32 out).

    Float64 fitted attributes (an intercept, a float64 solve) would otherwise
    promote the outputs of float32 input, estimator by estimator.
    """
    converted = _array_api_output(out, X)
    if converted is not None:
        return converted
    return np.asarray(out).astype(X.dtype, copy=False)


def _array_api_output(out, X):
    """``out`` in the dtype of ``X`` when both are of another array-API namespace, else None."""
    from .._array_api import input_namespace

    xp, _ = input_namespace(X)
    return None if xp is None else xp.astype(out, X.dtype)


def _magnitude(A):
    """Largest absolute entry of ``A`` (1 for an all-zero array)."""
    m = float(np.max(np.abs(A), initial=0.0))
    return m if m > 0 and np.isfinite(m) else 1.0


class ProgramUnits:
    """Rescale a conic program to unit-sized data, and its answer back.

    Interior-point solvers work to absolute feasibility tolerances and fail
    (``infeasible``, ``InsufficientProgress``) on data in large or tiny units.
    For the two-layer ReLU programs with the output weights the only
    penalized variables per unit hidden direction (the copositive and cutting
    plane programs on the augmented data, the ramp Lasso), dividing the data
    by ``cx``, the targets by ``cy`` and ``alpha`` by ``cx * cy`` is an exact
    change of units: output weights scale by ``cy / cx``, intercepts by
    ``cy`` and every objective value and bound by ``cy**2``, so the scaled
    fit's certificate certifies the fit in the user's units.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Data as the solver sees it (augmented with the ones column if the
        program has hidden biases: the column is scaled too, which keeps the
        change of units exact).
    Y : ndarray of shape (n_samples, n_outputs)
        Encoded targets.
    scale_targets : bool
        Whether the datafit is the squared error (the only one that is
        homogeneous in the targets); otherwise ``cy = 1``.
    """

    def __init__(self, X, Y, *, scale_targets):
        self.cx = _magnitude(X)
        self.cy = _magnitude(Y) if scale_targets else 1.0

    def data(self, X, Y):
        """Scaled data and targets."""
        return X / self.cx, Y / self.cy

    def alpha(self, alpha):
        """Penalty strength of the scaled program."""
        # Two divisions: cx * cy can under- or overflow where neither does.
        return alpha / self.cx / self.cy

    @property
    def output(self):
        """Factor from the scaled program's output weights to the user's."""
        return self.cy / self.cx

    @property
    def value(self):
        """Factor from the scaled program's objective values to the user's."""
        return self.cy**2

    def network_result(self, result):
        """A network solve (:class:`~skconvex.solvers.SolveResult`) in the user's units.

        Objective and lower bound scale by :attr:`value`, output weights (and
        the rank-one blocks ``coef``) by :attr:`output`, the intercept by
        ``cy``; the unit hidden directions in ``info`` are unchanged.
        """
        import dataclasses

        info = dict(result.info)
        info["output"] = np.asarray(info["output"]) * self.output
        return dataclasses.replace(
            result,
            coef=np.asarray(result.coef) * self.output,
            objective=result.objective * self.value,
            dual_objective=result.dual_objective * self.value,
            intercept=np.asarray(result.intercept) * self.cy,
            info=info,
        )


def finish_stalled(result, max_iter, tol, interior_point):
    """The better of a stalled augmented-Lagrangian ``result`` and an interior-point solve.

    A stall is a result short of ``tol`` before ``max_iter`` (an exhausted
    budget is the user's to raise). ``interior_point()`` solves the same
    program (Clarabel through CVXPY); the result with the smaller certified
    relative gap is kept, and the iterations of both count.

    Returns
    -------
    result : SolveResult
        ``result`` or the interior-point result.
    finished : bool
        Whether the interior-point result was kept.
    """
    if result.converged or result.n_iter >= max_iter:
        return result, False
    try:
        finished = interior_point()
    except SolverError:
        return result, False
    if not finished.relative_gap < result.relative_gap:
        return result, False
    finished.converged = finished.relative_gap <= tol
    finished.n_iter += result.n_iter
    return finished, True


def augment(X, fit_intercept):
    """Append a ones column (the hidden bias lives inside the neuron's weights).

    Sparse ``X`` stays sparse (CSR): the ones column is one more stored
    entry per row, where densifying could cost far more memory than ``X``.
    """
    if not fit_intercept:
        return sp.csr_array(X) if sp.issparse(X) else X
    if sp.issparse(X):
        ones = sp.csr_array(np.ones((X.shape[0], 1), dtype=X.dtype))
        return sp.hstack([sp.csr_array(X), ones], format="csr").astype(X.dtype, copy=False)
    return np.hstack([X, np.ones((X.shape[0], 1), dtype=X.dtype)])


def _unfitted_on_interrupt(fit):
    """Wrap ``fit`` so that Ctrl-C leaves the estimator unfitted.

    A fit interrupted half-way (or a warm-started refit) would otherwise keep a
    mix of old and new fitted attributes. Worker threads and joblib processes
    are stopped by joblib itself when the interrupt propagates.
    """

    @functools.wraps(fit)
    def wrapper(self, *args, **kwargs):
        try:
            return fit(self, *args, **kwargs)
        except KeyboardInterrupt:
            for name in [k for k in vars(self) if k.endswith("_") and not k.startswith("__")]:
                delattr(self, name)
            raise

    wrapper._unfitted_on_interrupt = True
    return wrapper


class BaseConvexNetwork(BaseEstimator):
    """Common parameters, validation and fitting steps of the convex networks.

    Subclasses build their program from the problem pieces, call a solver in
    ``fit``, and provide ``_encode_targets`` (through the target mixins below)
    and ``_network_output``. Every subclass's ``fit`` is wrapped so that an
    interrupted fit (Ctrl-C) leaves the estimator unfitted.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        fit = cls.__dict__.get("fit")
        if fit is not None and not getattr(fit, "_unfitted_on_interrupt", False):
            cls.fit = _unfitted_on_interrupt(fit)

    _parameter_constraints = {
        "alpha": [Interval(Real, 0, None, closed="left")],
        "n_arrangements": [Interval(Integral, 1, None, closed="left")],
        "fit_intercept": ["boolean"],
        "penalty": [StrOptions(set(_PENALTIES))],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "warm_start": ["boolean"],
        "dtype": [None, StrOptions({"float32", "float64"}), Options(type, {np.float32, np.float64})],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    # ------------------------------------------------------------------ fit
    def _validate_fit_data(self, X, y, sample_weight, *, multi_output, y_numeric):
        X, y = validate_data(
            self,
            X,
            y,
            dtype=[np.float64, np.float32],
            accept_sparse=self._accept_sparse,
            ensure_min_samples=2,
            multi_output=multi_output,
            y_numeric=y_numeric,
        )
        # Negative weights make the weighted loss unbounded below: no solver
        # could certify an optimum, so they are refused before any solve.
        sample_weight = _check_sample_weight(
            sample_weight, X, dtype=np.float64, ensure_non_negative=True
        )
        total = sample_weight.sum()
        if not total > 0:
            raise ValueError("sample_weight must have a positive sum.")
        return X, y, sample_weight / total

    #: Sparse formats ``fit`` and ``predict`` accept (others are converted to
    #: the first); False refuses sparse input with scikit-learn's TypeError.
    _accept_sparse = False

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # The tag follows what validation accepts, so subclasses set one attribute.
        tags.input_tags.sparse = bool(self._accept_sparse)
        return tags

    #: Convex blocks per sampled pattern (exact ReLU programs have two) and
    #: float arrays of shape (n_samples, n_blocks, n_outputs) their solvers keep.
    _blocks_per_pattern = 1
    _arrays_per_block = 2

    def _planned_fit_bytes(self, X_aug, n_outputs):
        """Bytes of the whole-array plan of a fit (what :meth:`_check_fit_memory` checks)."""
        n, d = X_aug.shape
        blocks = self._blocks_per_pattern * self.n_arrangements
        itemsize = np.dtype(X_aug.dtype).itemsize
        # Boolean and packed patterns while sampling, then the operator's
        # masks, products and row-scaled copies of X (see PatternOperator).
        return n * self.n_arrangements * 1.25 + itemsize * n * (
            blocks * (self._arrays_per_block + n_outputs) + n_outputs * d
        )

    def _check_fit_memory(self, X_aug, n_outputs):
        """Refuse the whole fit before sampling when its arrays would not fit."""
        n = X_aug.shape[0]
        planned = self._planned_fit_bytes(X_aug, n_outputs)
        check_memory(
            planned,
            what=(
                f"Fitting {type(self).__name__} on {n} samples with "
                f"n_arrangements={self.n_arrangements}"
            ),
            lower="n_arrangements",
        )

    def _arrangements(self, X_aug, sample_weight, n_outputs=1):
        """Gates of the fit: reused on a warm start, sampled otherwise."""
        self._check_fit_memory(X_aug, n_outputs)
        reuse = (
            self.warm_start
            and hasattr(self, "gates_")
            and self.gates_.shape[0] == X_aug.shape[1]
        )
        if reuse:
            gates = self.gates_.astype(X_aug.dtype)
            return gates, X_aug @ gates >= 0
        arr = sample_arrangements(
            X_aug,
            self.n_arrangements,
            sample_weight=sample_weight,
            n_jobs=self.n_jobs,
            random_state=self.random_state,
        )
        return arr.gates, arr.patterns

    def _penalty(self):
        return _PENALTIES[self.penalty]()

    def _warm_start_point(self, shape):
        """Previous convex solution (and intercept) when warm starting with the same shape."""
        if self.warm_start and hasattr(self, "pattern_weights_"):
            coef = self.pattern_weights_.transpose(1, 0, 2)
            if coef.shape == shape:
                return coef, np.atleast_1d(self.intercept_).astype(np.float64)
        return None, None

    def _report(self, result):
        if not result.converged:
            warnings.warn(
                f"{type(self).__name__} stopped after {result.n_iter} iterations with "
                f"a relative duality gap of {result.relative_gap:.2e} > tol={self.tol}. "
                "Increase max_iter, increase tol, or standardize the features.",
                ConvergenceWarning,
            )
        self.objective_ = float(result.objective)
        self.dual_gap_ = float(max(result.gap, 0.0))
        self.n_iter_ = int(result.n_iter)

    #: Fitted attribute that carries the namespace and device of an
    #: array-API fit (None: numpy only); see :mod:`skconvex._array_api`.
    _array_api_attribute = None

    def _check_namespace(self, X, method):
        """Refuse ``X`` of another namespace or device than the fit (array-API estimators)."""
        if self._array_api_attribute is not None:
            from .._array_api import check_fitted_namespace

            check_is_fitted(self)
            check_fitted_namespace(X, self, self._array_api_attribute, method)

    def _check_predict_data(self, X):
        check_is_fitted(self)
        return validate_data(
            self, X, dtype=[np.float64, np.float32], accept_sparse=self._accept_sparse, reset=False
        )


class RegressionTargets:
    """Target handling of the regressors: squared error on one or several outputs."""

    def _encode_targets(self, y):
        from ..programs.datafits import SquaredError

        y = np.asarray(y, dtype=np.float64)
        self._y_1d = y.ndim == 1
        Y = y.reshape(y.shape[0], -1)
        self.n_outputs_ = Y.shape[1]
        return Y, SquaredError()

    def _alpha_scale(self, Y, sample_weight):
        """Weighted standard deviation of the targets (root mean over outputs).

        The squared loss grows like the square of the targets' scale and the
        penalty like the scale itself, so multiplying ``alpha`` by this makes
        the fitted network equivariant to rescaling ``y`` and lets one default
        ``alpha`` serve targets of any unit.
        """
        centred = Y - sample_weight @ Y
        scale = float(np.sqrt(sample_weight @ (centred**2).mean(axis=1)))
        # Constant targets centre to rounding errors, not to zero: a scale at
        # that level would make alpha vanish and let neurons fit the rounding.
        return scale if scale > 1e-13 * float(np.abs(Y).max(initial=0.0)) else 1.0

    def _format_output(self, out):
        return out[:, 0] if self._y_1d else out

    def predict(self, X):
        """Predict with the fitted network.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples; sparse matrices are accepted (and kept sparse) by
            the estimators whose ``fit`` accepts them.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Network outputs.
        """
        self._check_namespace(X, "predict")
        X = self._check_predict_data(X)
        return self._format_output(_in_dtype_of(self._network_output(X), X))


def _has_log_loss(estimator):
    return estimator.loss == "log_loss"


class ClassificationTargets:
    """Target handling of the classifiers.

    ``loss="log_loss"`` is the logistic loss for two classes (one output) and
    the multinomial cross-entropy for more (one output per class);
    ``loss="squared_error"`` regresses +-1 (two classes) or one-hot targets.
    """

    def _alpha_scale(self, Y, sample_weight):
        """Classification losses are scale free: ``alpha`` is used as given."""
        return 1.0

    def _encode_targets(self, y):
        from sklearn.preprocessing import LabelEncoder
        from sklearn.utils.multiclass import check_classification_targets

        from ..programs.datafits import Logistic, Multinomial, SquaredError

        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        n_classes = len(self.classes_)
        if n_classes < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes in the "
                f"data, but the data contains only one class: {self.classes_[0]!r}."
            )
        codes = encoder.transform(y)
        if n_classes == 2:
            Y = np.where(codes == 1, 1.0, -1.0)[:, None]
        else:
            Y = np.eye(n_classes)[codes]
        datafit = SquaredError() if self.loss == "squared_error" else (
            Logistic() if n_classes == 2 else Multinomial()
        )
        return Y, datafit

    def decision_function(self, X):
        """Network outputs (logits for ``loss="log_loss"``).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples; sparse matrices are accepted (and kept sparse) by
            the estimators whose ``fit`` accepts them.

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            One score per sample for two classes (positive means
            ``classes_[1]``), else one per class.
        """
        self._check_namespace(X, "decision_function")
        X = self._check_predict_data(X)
        out = _in_dtype_of(self._network_output(X), X)
        return out[:, 0] if out.shape[1] == 1 else out

    def predict(self, X):
        """Predict class labels.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples; sparse matrices are accepted (and kept sparse) by
            the estimators whose ``fit`` accepts them.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Predicted classes.
        """
        from .._array_api import input_namespace, take_classes

        self._check_namespace(X, "predict")
        scores = self.decision_function(X)
        xp, device = input_namespace(scores)
        if xp is not None:
            codes = xp.astype(scores > 0, xp.int64) if scores.ndim == 1 else xp.argmax(scores, axis=1)
            return take_classes(self.classes_, codes, xp, device)
        if scores.ndim == 1:
            return self.classes_[(scores > 0).astype(int)]
        return self.classes_[np.argmax(scores, axis=1)]

    @available_if(_has_log_loss)
    def predict_proba(self, X):
        """Class probabilities (sigmoid or softmax of the outputs).

        Only available with ``loss="log_loss"``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples; sparse matrices are accepted (and kept sparse) by
            the estimators whose ``fit`` accepts them.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities in the order of ``classes_``.
        """
        from scipy.special import expit, softmax

        from .._array_api import input_namespace, log_proba

        self._check_namespace(X, "predict_proba")
        scores = self.decision_function(X)
        xp, device = input_namespace(scores)
        if xp is not None:
            return xp.exp(log_proba(xp, scores, device))
        scores = np.asarray(scores, dtype=np.float64)
        if scores.ndim == 1:
            # expit(-s), not 1 - expit(s): the latter rounds to 0 for s > 37
            # and breaks log(predict_proba) == predict_log_proba.
            return np.column_stack([expit(-scores), expit(scores)])
        return softmax(scores, axis=1)

    @available_if(_has_log_loss)
    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples; sparse matrices are accepted (and kept sparse) by
            the estimators whose ``fit`` accepts them.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Log-probabilities in the order of ``classes_``.
        """
        from scipy.special import log_expit, log_softmax

        from .._array_api import input_namespace, log_proba

        self._check_namespace(X, "predict_log_proba")
        scores = self.decision_function(X)
        xp, device = input_namespace(scores)
        if xp is not None:
            return log_proba(xp, scores, device)
        scores = np.asarray(scores, dtype=np.float64)
        if scores.ndim == 1:
            return np.column_stack([log_expit(-scores), log_expit(scores)])
        return log_softmax(scores, axis=1)
