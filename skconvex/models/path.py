"""Regularization paths: one estimator warm-started down a grid of ``alpha``.

As scikit-learn's ``enet_path`` serves ``ElasticNet`` and ``ElasticNetCV``,
one warm-started path (``_warm_path``) serves both
:func:`convex_relu_path` and the folds of the cross-validated estimators, and
a grid of ``alpha`` is checked in one place (``_check_alphas``).

Solutions of neighbouring ``alpha`` are close, and the first one is known in
closed form: above :math:`\\alpha_{\\max}` the empty network is optimal. A path
therefore starts at :math:`\\alpha_{\\max}`, computed exactly from the gradient
at zero, and each fit starts from the previous solution (gates, coefficients,
intercept and, for the gated programs, the solver's last step size; for the
exact ones, the cone multipliers the column tests start from). A fit
warm-started from the empty network first checks the empty network's own
certificate (with the best cone multipliers for the exact programs), so the
fits at and above :math:`\\alpha_{\\max}` cost one evaluation. Further down the
grid, a warm-started gated fit first solves the previous support at the new
``alpha`` by Newton's method and FISTA only adds or drops the blocks that
change; a warm-started exact fit first solves the previous support again with
each neuron on the face of its cone (Newton on the tight rows' null spaces),
then certifies it on the previous support plus the columns that fail their
optimality test. The saving against independent fits is bounded because
FISTA's iteration count hardly depends on its starting point and the faces
polish only applies to small supports; ``benchmarks/README.md`` measures it.
"""

import copy

import numpy as np
from sklearn.base import clone
from sklearn.utils import Bunch, check_random_state

from .gated import ConvexGatedReLURegressor

__all__ = ["convex_relu_path", "alpha_grid"]


def _fix_random_state(estimator):
    """Clone ``estimator`` with an integer ``random_state``.

    The gates are drawn from ``random_state``; computing the grid, the path
    and cross-validation folds with the same gates needs a fixed seed even
    when the estimator was given None or a RandomState.
    """
    est = clone(estimator)
    rs = est.random_state
    if not isinstance(rs, (int, np.integer)):
        est.set_params(random_state=int(check_random_state(rs).randint(np.iinfo(np.int32).max)))
    return est


def _check_alphas(alphas):
    """Validate a user-given grid and return it as floats in decreasing order.

    Decreasing order is what makes the warm starts pay: the path starts from
    the sparsest solutions. Zero is accepted (an unregularized end point);
    whether an estimator can fit it is that estimator's ``alpha`` check.
    """
    try:
        values = np.asarray(alphas, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"alphas must be a 1-D array of numbers, got {alphas!r}.") from exc
    if values.ndim != 1 or values.size == 0:
        raise ValueError(
            f"alphas must be a non-empty 1-D array, got an array of shape {values.shape}."
        )
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError(f"alphas must be finite and >= 0, got {values.tolist()!r}.")
    return np.sort(values)[::-1]


def alpha_grid(estimator, X, y, *, sample_weight=None, n_alphas=20, eps=1e-3):
    """Geometric grid of ``alpha`` from the exact :math:`\\alpha_{\\max}` down.

    Parameters
    ----------
    estimator : estimator instance
        A skconvex estimator with warm-start support (gated or exact ReLU).
    X : array-like of shape (n_samples, n_features)
        Training data.
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Targets.
    sample_weight : array-like of shape (n_samples,), default=None
        Row weights.
    n_alphas : int, default=20
        Number of values.
    eps : float, default=1e-3
        Ratio of the smallest to the largest value.

    Returns
    -------
    alphas : ndarray of shape (n_alphas,)
        Decreasing, starting at :math:`\\alpha_{\\max}` (the smallest ``alpha``
        whose solution is the empty network, for the estimator's gates).

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from skconvex import ConvexGatedReLURegressor, alpha_grid
    >>> X, y = load_diabetes(return_X_y=True)
    >>> alphas = alpha_grid(ConvexGatedReLURegressor(random_state=0), X, y, n_alphas=3)
    >>> alphas.shape
    (3,)
    """
    if not (isinstance(eps, (float, int, np.floating, np.integer)) and 0 < eps < 1):
        raise ValueError(f"eps must be in (0, 1), got {eps!r}.")
    if (
        not isinstance(n_alphas, (int, np.integer))
        or isinstance(n_alphas, bool)
        or n_alphas < 1
    ):
        raise ValueError(f"n_alphas must be a positive integer, got {n_alphas!r}.")
    if not hasattr(estimator, "_alpha_max"):
        raise TypeError(
            f"{type(estimator).__name__} does not support regularization paths; use a "
            "skconvex gated or exact ReLU estimator."
        )
    alpha_max = clone(estimator)._alpha_max(X, y, sample_weight)
    if alpha_max <= 0:
        raise ValueError(
            "alpha_max is 0: the empty network already fits the targets exactly, so "
            "there is no regularization path."
        )
    return np.geomspace(alpha_max, alpha_max * eps, int(n_alphas))


def _warm_path(estimator, X, y, alphas, sample_weight=None):
    """Fit ``estimator`` at each of ``alphas`` in turn, each fit warm-started.

    Yields ``(alpha, estimator)`` after each fit; the estimator is one clone,
    refitted in place, so a caller that keeps a fit copies it. Both
    :func:`convex_relu_path` and the cross-validated estimators' folds walk
    their grids through this generator, so the two cannot drift apart.
    """
    est = clone(estimator).set_params(warm_start=True)
    for alpha in alphas:
        est.set_params(alpha=float(alpha)).fit(X, y, sample_weight=sample_weight)
        yield float(alpha), est


def convex_relu_path(
    X,
    y,
    estimator=None,
    *,
    alphas=None,
    n_alphas=20,
    eps=1e-3,
    sample_weight=None,
    return_estimators=False,
    verbose=0,
):
    """Fit a convex network along a decreasing grid of ``alpha`` with warm starts.

    The estimator is cloned with ``warm_start=True``, so every fit keeps the
    gates and starts from the previous solution. The first value is
    :math:`\\alpha_{\\max}`, computed exactly: for gated networks the largest
    dual block norm of the loss gradient at the empty network, for exact ReLU
    networks the same after the best cone multipliers of each column
    (non-negative least squares).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Training data.
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Targets.
    estimator : estimator instance, default=None
        The model whose path is computed: ``ConvexGatedReLURegressor``,
        ``ConvexGatedReLUClassifier``, ``ConvexReLURegressor`` or
        ``ConvexReLUClassifier`` (its ``alpha`` is ignored). None means
        ``ConvexGatedReLURegressor()``.
    alphas : array-like of shape (n_alphas,), default=None
        Values of ``alpha`` (finite, >= 0), fitted in decreasing order. None
        builds ``n_alphas`` values from :math:`\\alpha_{\\max}` down to
        ``eps * alpha_max``.
    n_alphas : int, default=20
        Grid size when ``alphas`` is None.
    eps : float, default=1e-3
        Grid ratio when ``alphas`` is None.
    sample_weight : array-like of shape (n_samples,), default=None
        Row weights.
    return_estimators : bool, default=False
        Also return a fitted copy of the estimator for every ``alpha``.
    verbose : int, default=0
        Print one line per ``alpha``.

    Returns
    -------
    path : Bunch
        ``alphas`` (decreasing), ``coefs`` (list of ``pattern_weights_``),
        ``intercepts``, ``objectives``, ``dual_gaps``, ``n_neurons``,
        ``n_iter`` (arrays over the grid), ``gates`` (shared by the whole
        path) and ``estimators`` (list, when ``return_estimators``).

    See Also
    --------
    alpha_grid : The default grid.
    skconvex.ConvexGatedReLURegressorCV : Chooses ``alpha`` along such paths.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from skconvex import ConvexGatedReLURegressor, convex_relu_path
    >>> X, y = load_diabetes(return_X_y=True)
    >>> path = convex_relu_path(X, y, ConvexGatedReLURegressor(random_state=0), n_alphas=5)
    >>> int(path.n_neurons[0])
    0
    """
    if estimator is None:
        estimator = ConvexGatedReLURegressor()
    est = _fix_random_state(estimator)
    if alphas is None:
        alphas = alpha_grid(est, X, y, sample_weight=sample_weight, n_alphas=n_alphas, eps=eps)
    else:
        alphas = _check_alphas(alphas)
    n = len(alphas)
    out = Bunch(
        alphas=alphas,
        coefs=[],
        intercepts=[],
        objectives=np.empty(n),
        dual_gaps=np.empty(n),
        n_neurons=np.empty(n, dtype=int),
        n_iter=np.empty(n, dtype=int),
    )
    if return_estimators:
        out.estimators = []
    for i, (alpha, fitted) in enumerate(_warm_path(est, X, y, alphas, sample_weight)):
        out.coefs.append(fitted.pattern_weights_.copy())
        out.intercepts.append(np.copy(fitted.intercept_))
        out.objectives[i] = fitted.objective_
        out.dual_gaps[i] = fitted.dual_gap_
        out.n_neurons[i] = fitted.n_neurons_
        out.n_iter[i] = fitted.n_iter_
        if return_estimators:
            out.estimators.append(
                copy.deepcopy(fitted).set_params(warm_start=estimator.warm_start)
            )
        if verbose:
            print(
                f"[path] alpha={alpha:.3e} neurons={fitted.n_neurons_} iters={fitted.n_iter_} "
                f"rel. gap={fitted.dual_gap_ / max(abs(fitted.objective_), 1e-300):.1e}",
                flush=True,
            )
    out.gates = fitted.gates_
    return out
