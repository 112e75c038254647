"""Array API support of the gated estimators: where arrays come from and go back to.

With ``sklearn.config_context(array_api_dispatch=True)``, the gated
estimators accept arrays of any array-API namespace scikit-learn supports
(torch tensors, CuPy arrays, ``array_api_strict`` arrays). What runs where:

* ``fit`` validates ``X``, ``y`` and ``sample_weight`` and samples the gates
  on the host (numpy), then moves the program (data, activation masks,
  targets and weights) to the namespace and device of ``X``
  (:meth:`skconvex.programs.problem.ConvexProblem.to_namespace`): FISTA, its
  working sets, the datafits, the penalties' proxes and the duality-gap
  certificate (in float64) compute there, and so does the Newton end-game
  (:mod:`skconvex.solvers.support_newton`), except for several outputs with
  an intercept in a namespace without ``linalg.pinv`` and for nuclear-norm
  blocks of several outputs (Newton on their factors,
  :mod:`skconvex.solvers.factored_newton`), where it runs on the host and its
  point is certified back on the device. Adaptive arrangements,
  row-blocked fits and
  devices without float64 (Apple MPS) solve on the host. Every fitted array
  is then moved to the namespace and device of ``X``.
* ``predict``, ``decision_function``, ``predict_proba`` and
  ``predict_log_proba`` run in the namespace and on the device of ``X`` (two
  GEMMs and a masked product), and return arrays there.

scikit-learn's private helpers (``sklearn.utils._array_api``, with the
``array_api_compat`` copy it vendors) do the namespace and device work, as in
scikit-learn's own estimators; the version bound on scikit-learn in
``pyproject.toml`` pins their behaviour.
"""

import numpy as np
import scipy.sparse as sp
from sklearn import get_config
from sklearn.utils._array_api import (
    _is_numpy_namespace,
    _max_precision_float_dtype,
    check_same_namespace,
    get_namespace_and_device,
    move_to,
)

from .programs._namespace import device_of, namespace_of, supports_float64, to_numpy

__all__ = [
    "check_fitted_namespace",
    "device_of",
    "fitted_to",
    "fitted_to_host",
    "input_namespace",
    "is_numpy",
    "namespace_of",
    "supports_float64",
    "to_host",
    "to_numpy",
]


def _is_foreign(a):
    """Whether ``a`` is an array of a namespace other than numpy (torch, CuPy, ...)."""
    if a is None or isinstance(a, np.ndarray) or sp.issparse(a):
        return False
    if not (hasattr(a, "__array_namespace__") or hasattr(a, "__dlpack__")):
        # Lists, dataframes and other array-likes go through numpy validation.
        return False
    xp, _, _ = get_namespace_and_device(a)
    return not _is_numpy_namespace(xp)


def is_numpy(a):
    """Whether ``a`` is a numpy array (the host path of the solvers)."""
    return isinstance(a, np.ndarray)


def input_namespace(X):
    """Namespace and device of ``X`` when array-API dispatch is on and ``X`` is not numpy.

    Parameters
    ----------
    X : array-like
        Input of ``fit`` or ``predict``.

    Returns
    -------
    xp : namespace or None
        The array-API namespace of ``X``; None when dispatch is off or ``X`` is
        a numpy array, a sparse matrix or another array-like (the numpy path).
    device : device or None
        The device of ``X`` (None with ``xp``).
    """
    if not get_config()["array_api_dispatch"] or not _is_foreign(X):
        return None, None
    xp, _, device = get_namespace_and_device(X)
    return xp, device


def to_host(*arrays):
    """Every array of another namespace moved to host numpy; others unchanged.

    ``y`` and ``sample_weight`` may come from another namespace or device
    than ``X``: each is moved on its own.

    Parameters
    ----------
    *arrays : array-like or None
        Arrays to move.

    Returns
    -------
    arrays : tuple
        The arrays, numpy where they were of another namespace.
    """
    if not get_config()["array_api_dispatch"]:
        return arrays
    return tuple(move_to(a, xp=np, device="cpu") if _is_foreign(a) else a for a in arrays)


def fitted_to_host(estimator):
    """Move the estimator's fitted arrays of another namespace back to numpy (warm starts)."""
    for name, value in list(vars(estimator).items()):
        if _is_foreign(value):
            setattr(estimator, name, move_to(value, xp=np, device="cpu"))


def fitted_to(estimator, xp, device):
    """Move the estimator's fitted numeric numpy arrays to ``xp`` on ``device``.

    ``classes_`` stays numpy (labels may be strings), as in scikit-learn.
    On a device without float64 (Apple MPS) float64 arrays become float32.

    Parameters
    ----------
    estimator : estimator object
        A fitted estimator whose array attributes are numpy.
    xp : namespace
        Target namespace.
    device : device
        Target device.
    """
    for name, value in list(vars(estimator).items()):
        if name == "classes_" or not isinstance(value, np.ndarray):
            continue
        if value.dtype.kind in "biuf":
            setattr(estimator, name, move_to(np.ascontiguousarray(value), xp=xp, device=device))


def check_fitted_namespace(X, estimator, attribute, method):
    """Raise when ``X`` is not in the namespace and on the device of the fit.

    Parameters
    ----------
    X : array-like
        Input of ``method``.
    estimator : estimator object
        The fitted estimator.
    attribute : str
        A fitted array attribute that carries the fit's namespace and device.
    method : str
        Name of the calling method, for the error message.
    """
    check_same_namespace(X, estimator, attribute=attribute, method=method)


def float_dtype(xp, device, dtype):
    """``dtype`` itself, or float32 where ``device`` has no float64."""
    if _max_precision_float_dtype(xp, device) == xp.float32:
        return xp.float32
    return dtype


def gated_forward(xp, X, fit_intercept, gates, hidden, output, intercept):
    """The gated network's outputs computed in ``xp`` on the device of ``X``.

    Parameters
    ----------
    xp : namespace
        Namespace of ``X`` and of the fitted arrays.
    X : array of shape (n_samples, n_features)
        Validated inputs (floating).
    fit_intercept : bool
        Whether neurons carry a bias (a ones column is appended).
    gates : array of shape (n_features + fit_intercept, n_neurons)
        Gate of each neuron.
    hidden : array of shape (n_neurons, n_features + fit_intercept)
        Hidden weights (bias last).
    output : array of shape (n_neurons, n_outputs)
        Output weights.
    intercept : array of shape (n_outputs,)
        Output intercept.

    Returns
    -------
    out : array of shape (n_samples, n_outputs)
        Outputs in the dtype of ``X``.
    """
    from .networks import _row_batches

    dtype = X.dtype
    device = get_namespace_and_device(X)[2]
    gates, hidden, output, intercept = (
        xp.astype(a, dtype) for a in (gates, hidden, output, intercept)
    )
    hidden_t = xp.permute_dims(hidden, (1, 0))
    n = X.shape[0]
    outs = []
    # Row batches as in the numpy forward pass, which also bound the
    # (batch, n_neurons) intermediates in device memory.
    for rows in _row_batches(n, hidden.shape[0], xp.finfo(dtype).bits // 8):
        Xb = X[rows, :]
        if fit_intercept:
            ones = xp.ones((Xb.shape[0], 1), dtype=dtype, device=device)
            Xb = xp.concat([Xb, ones], axis=1)
        # Same two GEMMs as the numpy forward pass; the gate is a 0/1 float mask.
        act = xp.astype(Xb @ gates >= 0, dtype) * (Xb @ hidden_t)
        outs.append(act @ output + intercept)
    return outs[0] if len(outs) == 1 else xp.concat(outs, axis=0)


def take_classes(classes, indices, xp, device):
    """``classes[indices]`` in ``xp`` for numeric labels (numpy for strings)."""
    if classes.dtype.kind in "biuf":
        return xp.take(move_to(classes, xp=xp, device=device), indices, axis=0)
    return classes[move_to(indices, xp=np, device="cpu")]


def log_proba(xp, scores, device):
    """Log-probabilities from one logit column or one score per class, in ``xp``.

    Computed in float64 where the device has it (as the numpy path does).
    """
    scores = xp.astype(scores, float_dtype(xp, device, xp.float64))
    if scores.ndim == 1:
        zero = xp.zeros_like(scores)
        # log(expit(-s)) = -log(1 + e^s), stable for either sign of s.
        return xp.stack([-xp.logaddexp(zero, scores), -xp.logaddexp(zero, -scores)], axis=1)
    m = xp.max(scores, axis=1, keepdims=True)
    shifted = scores - m
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))
