"""Storage and prediction of recovered two-layer ReLU networks, shared by several estimators."""

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from ..networks import relu_forward
from ._base import augment


class TwoLayerNetworkMixin:
    """Fitted attributes and forward pass of a recovered two-layer network.

    Stores neurons as ``hidden_weights_`` (n_neurons, n_features),
    ``hidden_intercepts_`` (zeros without ``fit_intercept``),
    ``output_weights_`` (n_neurons, n_outputs) and ``n_neurons_``, and
    evaluates the ReLU network
    :math:`f(x) = \\sum_j (x^\\top w_j + c_j)_+ a_j^\\top + b`. Gated estimators
    override :meth:`_network_output` with their fixed gates.
    """

    def _set_neurons(self, hidden, output, n_features):
        """Store neurons from hidden weights in the augmented space (bias last)."""
        hidden = np.asarray(hidden)
        self.hidden_weights_ = np.ascontiguousarray(hidden[:, :n_features])
        self.hidden_intercepts_ = (
            np.ascontiguousarray(hidden[:, n_features])
            if self.fit_intercept
            else np.zeros(hidden.shape[0])
        )
        self.output_weights_ = np.ascontiguousarray(output)
        self.n_neurons_ = int(hidden.shape[0])

    def _hidden_full(self):
        """Hidden weights in the augmented space (bias last when ``fit_intercept``)."""
        hidden = self.hidden_weights_
        if self.fit_intercept:
            hidden = np.column_stack([hidden, self.hidden_intercepts_])
        return hidden

    def _network_output(self, X):
        X_aug = augment(X, self.fit_intercept)
        return relu_forward(
            X_aug,
            self._hidden_full().astype(X_aug.dtype, copy=False),
            self.output_weights_.astype(X_aug.dtype, copy=False),
            np.atleast_1d(self.intercept_),
        )


class ReLUNetworkMixin(TwoLayerNetworkMixin):
    """Balanced storage of ReLU networks found outside the convex program, and their objective.

    ``_store_network`` takes unit hidden directions in the augmented space
    (a last coordinate for the bias when ``fit_intercept``) and output
    weights, and stores the *balanced* network: neuron ``j`` gets hidden
    weights :math:`\\sqrt{\\|a_j\\|}\\,u_j` and output weights
    :math:`a_j/\\sqrt{\\|a_j\\|}`, whose weight decay
    :math:`\\tfrac12(\\|\\cdot\\|^2 + \\|\\cdot\\|^2)` is :math:`\\|a_j\\|`, the
    convex penalty (ReLU neurons are positively homogeneous, so the function
    is unchanged).
    """

    def _store_network(self, directions, output, intercept, n_features):
        n_out = np.asarray(intercept).size
        output = np.asarray(output, dtype=np.float64).reshape(-1, n_out)
        directions = np.asarray(directions, dtype=np.float64)
        if directions.ndim != 2 or directions.shape[1] != output.shape[0]:
            raise ValueError("directions must have shape (n_features, n_neurons).")
        norms = np.linalg.norm(output, axis=1)
        keep = norms > 0
        directions, output, norms = directions[:, keep], output[keep], norms[keep]
        root = np.sqrt(norms)
        self._set_neurons((directions * root).T, output / root[:, None], n_features)
        b = np.asarray(intercept, dtype=np.float64).reshape(-1)
        self.intercept_ = float(b[0]) if getattr(self, "_y_1d", False) else b

    def weight_decay_objective(self, X, y, sample_weight=None):
        """Training objective of the fitted network on ``(X, y)``.

        The weighted **mean** loss plus ``alpha`` (times the standard
        deviation of ``y`` for regressors, as in ``fit``) times the weight
        decay :math:`\\tfrac12\\sum_j \\|(w_j, c_j)\\|^2 + \\|a_j\\|^2` of the
        recovered neurons (hidden weights, hidden biases and output
        weights). On the training data it equals ``objective_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets (class labels for classifiers).
        sample_weight : array-like of shape (n_samples,), default=None
            Row weights (normalized to sum to one).

        Returns
        -------
        objective : float
            The network's objective on ``(X, y)``.
        """
        from sklearn.utils.validation import _check_sample_weight

        X = self._check_predict_data(X)
        s = _check_sample_weight(sample_weight, X, dtype=np.float64)
        s = s / s.sum()
        Y, datafit = _encode_eval_targets(self, y)
        out = self._network_output(X).astype(np.float64)
        alpha = self.alpha * self._alpha_scale(Y, s)
        hidden = self._hidden_full()
        decay = 0.5 * float(np.sum(hidden**2) + np.sum(self.output_weights_**2))
        return datafit.value(out, Y, s) + alpha * decay


def _encode_eval_targets(estimator, y):
    """Targets and loss of a fitted estimator, without refitting its label encoding."""
    from ..programs.datafits import Logistic, Multinomial, SquaredError

    if not hasattr(estimator, "classes_"):
        y = np.asarray(y, dtype=np.float64)
        return y.reshape(y.shape[0], -1), SquaredError()
    classes = estimator.classes_
    codes = np.searchsorted(classes, y)
    codes = np.clip(codes, 0, len(classes) - 1)
    if not np.all(classes[codes] == np.asarray(y)):
        raise ValueError("y contains labels not seen during fit.")
    if len(classes) == 2:
        Y = np.where(codes == 1, 1.0, -1.0)[:, None]
        return Y, (SquaredError() if estimator.loss == "squared_error" else Logistic())
    Y = np.eye(len(classes))[codes]
    return Y, (SquaredError() if estimator.loss == "squared_error" else Multinomial())


def _check_classes_left(estimator, Y):
    """Classifiers need two classes among the rows of positive weight."""
    if not hasattr(estimator, "classes_"):
        return
    left = np.unique(Y, axis=0).shape[0]
    if left < 2:
        raise ValueError(
            f"{type(estimator).__name__} needs samples of at least 2 classes with positive "
            "sample_weight; only one class is left."
        )


def _warn_if_not_converged(estimator, converged, info, n_iter, relative_gap):
    """ConvergenceWarning for column generation / Frank-Wolfe runs that missed ``tol``.

    A stall of a heuristic oracle (vector outputs on cones of large rank) is
    not a convergence failure: no iteration can tighten its certificate, and
    the documented ``lower_bound_`` is the gated one.
    """
    if converged or (info.get("stalled") and not info.get("oracle_exact", True)):
        return
    name = type(estimator).__name__
    if info.get("stalled"):
        message = (
            f"{name} could not certify a relative gap below tol={estimator.tol} "
            f"(reached {relative_gap:.2e}): the master problems are at their numerical "
            "accuracy. Increase tol."
        )
    else:
        message = (
            f"{name} stopped after {n_iter} iterations (max_iter) with a certified relative "
            f"gap of {relative_gap:.2e} > tol={estimator.tol}. Increase max_iter or tol."
        )
    warnings.warn(message, ConvergenceWarning)


def positive_rows(X, Y, sample_weight):
    """Drop rows of zero weight: they do not change the objective, and removing them makes
    weighted fits identical to fits on the subset (hyperplanes of such rows would otherwise
    add cells and oracle candidates)."""
    keep = sample_weight > 0
    if keep.all():
        return X, Y, sample_weight
    return X[keep], Y[keep], sample_weight[keep]
