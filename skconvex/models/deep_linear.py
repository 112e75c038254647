"""Parallel deep linear networks (Wang, Ergen & Pilanci, 2023).

:class:`ParallelDeepLinearRegressor` solves the nuclear-norm program of
parallel deep linear networks; :func:`standard_deep_linear` trains the
standard (non-parallel) network of the same depth, whose training problem has
a duality gap.
"""

import warnings
from numbers import Integral, Real

import numpy as np
from scipy.optimize import minimize
from sklearn.base import RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight

from ..programs.operators import PatternOperator
from ..programs.penalties import GroupNuclear
from ..programs.problem import ConvexProblem
from ..solvers import fista, solve_certified
from ._base import (
    BaseConvexNetwork,
    RegressionTargets,
)

__all__ = ["ParallelDeepLinearRegressor", "standard_deep_linear"]


def _centered(X, Y, s, fit_intercept):
    """Weighted centering (the optimal intercept of a linear model is minimized out)."""
    if not fit_intercept:
        return X, Y, np.zeros(X.shape[1]), np.zeros(Y.shape[1])
    x_mean, y_mean = s @ X, s @ Y
    return X - x_mean, Y - y_mean, x_mean, y_mean


def _svt(M, threshold):
    """Singular-value soft-thresholding :math:`U(\\Sigma - t)_+V^\\top`."""
    U, sv, Vt = np.linalg.svd(M, full_matrices=False)
    return (U * np.maximum(sv - threshold, 0.0)) @ Vt


def _orthogonal_design(X, s, rtol=1e-10):
    """The scale ``c`` when :math:`X^\\top S X = cI`, else None."""
    gram = (X * s[:, None]).T @ X
    c = float(np.trace(gram)) / gram.shape[0] if gram.size else 0.0
    if c <= 0 or np.abs(gram - c * np.eye(gram.shape[0])).max() > rtol * c:
        return None
    return c


class ParallelDeepLinearRegressor(RegressionTargets, RegressorMixin, BaseConvexNetwork):
    """Parallel deep linear regressor trained to global optimality (nuclear-norm program).

    A sum of deep linear branches :math:`f(x) = \\sum_k x^\\top W_{1k}W_{2k}\\cdots
    W_{Lk} + b` with the regularizer below is exactly the nuclear-norm
    regression :math:`\\min_W \\text{loss}(XW) + \\alpha\\|W\\|_*`, solved by
    proximal gradient with singular-value thresholding (or in closed form
    for an orthogonal design) with a certified duality gap; the branches are
    recovered from the SVD of the solution (Wang, Ergen & Pilanci, 2023).

    Parameters
    ----------
    alpha : float, default=1e-2
        Regularization strength, multiplied by the standard deviation of
        ``y``; the objective is the **mean** squared error plus ``alpha``
        times the regularizer (see Notes).
    depth : int, default=3
        Layers :math:`L \\ge 2` of every branch (the convex program does not
        depend on it; the recovered branches do).
    fit_intercept : bool, default=True
        Fit an unpenalized output intercept.
    solver : {"auto", "fista", "closed_form"}, default="auto"
        ``"fista"``: accelerated proximal gradient with singular-value
        thresholding (:func:`~skconvex.solvers.fista` on
        :class:`~skconvex.programs.penalties.GroupNuclear` with a single block).
        ``"closed_form"``: :math:`W = \\mathrm{SVT}_{\\alpha/c}(X^\\top S Y)/c`,
        valid when the (centered, weighted) design is orthogonal,
        :math:`X^\\top S X = cI`; a ``ValueError`` otherwise. ``"auto"`` uses
        the closed form when it applies and FISTA otherwise.
    tol : float, default=1e-6
        Stop when the certified duality gap is at most ``tol`` times the
        objective.
    max_iter : int, default=1000
        Maximum number of proximal-gradient iterations.
    verbose : int, default=0
        Solver progress.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,) or (n_outputs, n_features)
        End-to-end linear map :math:`W^\\top` of the network.
    intercept_ : float or ndarray of shape (n_outputs,)
        Output intercept.
    singular_values_ : ndarray of shape (`rank_`,)
        Non-zero singular values of :math:`W`, one per branch.
    rank_ : int
        Rank of :math:`W`, the number of branches.
    branches_ : list of list of ndarray
        The ``depth`` layers of every branch: ``(n_features, 1)`` (unit
        norm), ``(1, 1)`` (ones) for the middle layers, ``(1, 1)`` and
        ``(1, n_outputs)`` for the last two, whose weight decay is the
        branch's singular value.
    objective_ : float
        Objective of the nuclear-norm program at the solution.
    nonconvex_objective_ : float
        Objective of the recovered parallel network (equal to ``objective_``).
    dual_gap_ : float
        Certified duality gap (zero up to rounding for the closed form).
    solver_ : str
        The solver that ran.
    n_iter_ : int
        Solver iterations (1 for the closed form).
    n_outputs_ : int
        Number of outputs.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column names.

    See Also
    --------
    standard_deep_linear : The standard (non-parallel) network of the same depth.
    sklearn.linear_model.Ridge : Depth one, squared Frobenius penalty.

    Notes
    -----
    **Regularizer and exactness** (our normalization; design notes, open
    item O4: the paper's exact regularizer could not be checked). Branch
    :math:`k` is penalized by the product of its layer norms
    :math:`\\prod_l \\|W_{lk}\\|_F`, equivalently by the weight decay
    :math:`\\tfrac12(\\|W_{L-1,k}\\|_F^2 + \\|W_{Lk}\\|_F^2)` of its last two
    layers with :math:`\\|W_{lk}\\|_F \\le 1` for :math:`l \\le L-2` (rescaling
    the layers, which leaves the function unchanged). Since
    :math:`\\prod_l\\|W_{lk}\\|_F \\ge \\|W_{1k}\\cdots W_{Lk}\\|_* ` (Hölder for
    Schatten norms), any parallel network with end-to-end map :math:`W`
    pays at least :math:`\\|W\\|_*` (triangle inequality), and the SVD
    :math:`W = \\sum_k \\sigma_k a_k b_k^\\top` gives branches paying exactly
    :math:`\\sum_k\\sigma_k`. So, for every depth, training the parallel
    network is exactly

    .. math:: \\min_{W, b}\\ \\tfrac12\\sum_j s_j \\|W^\\top x_j + b - y_j\\|^2 + \\alpha\\|W\\|_*,

    its Lagrangian dual has no gap, and the ``rank_`` recovered branches
    are :math:`W_{1k} = a_k`, :math:`W_{L-1,k} = \\sqrt{\\sigma_k}`,
    :math:`W_{Lk} = \\sqrt{\\sigma_k}\\,b_k^\\top` (middle layers 1).

    A **standard** network of depth :math:`L \\ge 3` (one branch) with the
    same regularizer pays :math:`\\|W\\|_{S_{2/L}}`, a Schatten quasi-norm,
    for the same map: its training problem is non-convex, and since its
    dual is the same as the parallel network's, its duality gap is positive
    exactly when no nuclear-norm solution has rank one
    (:func:`standard_deep_linear`).

    References
    ----------
    Y. Wang, T. Ergen and M. Pilanci. Parallel deep neural networks have
    zero duality gap. ICLR 2023, arXiv:2110.06482.

    N. Srebro, J. Rennie and T. Jaakkola. Maximum-margin matrix
    factorization. NeurIPS 2004.

    Examples
    --------
    >>> import numpy as np
    >>> from skconvex import ParallelDeepLinearRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((50, 4))
    >>> Y = X @ rng.standard_normal((4, 3))
    >>> reg = ParallelDeepLinearRegressor(alpha=0.1).fit(X, Y)
    >>> reg.rank_ <= 3, len(reg.branches_[0])
    (True, 3)
    """

    _parameter_constraints = {
        "alpha": [Interval(Real, 0, None, closed="left")],
        "depth": [Interval(Integral, 2, None, closed="left")],
        "fit_intercept": ["boolean"],
        "solver": [StrOptions({"auto", "fista", "closed_form"})],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        alpha=1e-2,
        *,
        depth=3,
        fit_intercept=True,
        solver="auto",
        tol=1e-6,
        max_iter=1000,
        verbose=0,
    ):
        self.alpha = alpha
        self.depth = depth
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the parallel network by solving its nuclear-norm program.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Row weights; the loss is their weighted mean.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        X, y, sw = self._validate_fit_data(
            X, y, sample_weight, multi_output=True, y_numeric=True
        )
        Y, datafit = self._encode_targets(y)
        X = X.astype(np.float64, copy=False)
        alpha = self.alpha * self._alpha_scale(Y, sw)
        operator = PatternOperator(
            X, np.ones((X.shape[0], 1), dtype=bool), n_outputs=Y.shape[1]
        )
        problem = ConvexProblem(
            operator,
            datafit,
            GroupNuclear(),
            Y,
            sw,
            alpha,
            fit_intercept=self.fit_intercept,
        )
        Xc, Yc, _, _ = _centered(X, Y, sw, self.fit_intercept)
        c = _orthogonal_design(Xc, sw)
        solver = self.solver
        if solver == "closed_form" and c is None:
            raise ValueError(
                "solver='closed_form' needs an orthogonal design, X^T S X = c I for the "
                "(centered, weighted) training data; use solver='fista' or 'auto'."
            )
        if solver == "auto":
            solver = "fista" if c is None else "closed_form"
        if solver == "closed_form":
            W = _svt((Xc * sw[:, None]).T @ Yc / c, alpha / c)[:, None, :]
            cert, b, _ = problem.evaluate(W)
            result = Bunch(
                coef=W,
                intercept=b,
                objective=cert.primal,
                dual_objective=cert.dual,
                gap=cert.gap,
                relative_gap=cert.gap / max(abs(cert.primal), 1e-300),
                converged=True,
                n_iter=1,
            )
        else:
            result = solve_certified(
                problem,
                fista,
                tol=self.tol,
                max_iter=self.max_iter,
                verbose=self.verbose,
            )
        self._report(result)
        self.solver_ = solver
        W = np.asarray(result.coef, dtype=np.float64)[:, 0, :]
        U, sv, Vt = np.linalg.svd(W, full_matrices=False)
        keep = (
            sv > 1e-12 * sv.max()
            if sv.size and sv.max() > 0
            else np.zeros(sv.shape, bool)
        )
        U, sv, Vt = U[:, keep], sv[keep], Vt[keep]
        self.singular_values_ = sv
        self.rank_ = int(len(sv))
        root = np.sqrt(sv)
        self.branches_ = [
            [U[:, [k]]]
            + [np.ones((1, 1))] * (self.depth - 3)
            + [root[k] * np.ones((1, 1)), root[k] * Vt[[k]]]
            if self.depth >= 3
            else [root[k] * U[:, [k]], root[k] * Vt[[k]]]
            for k in range(self.rank_)
        ]
        W = (U * sv) @ Vt
        objective, b = problem.objective(W[:, None, :], result.intercept)
        self.objective_ = float(objective)
        self._set_outputs(W, b)
        out = self._branch_output(X) + b
        decay = sum(
            0.5 * (float(np.sum(br[-2] ** 2)) + float(np.sum(br[-1] ** 2)))
            for br in self.branches_
        )
        if self.depth == 2:
            decay = sum(
                0.5 * (float(np.sum(br[0] ** 2)) + float(np.sum(br[1] ** 2)))
                for br in self.branches_
            )
        self.nonconvex_objective_ = float(datafit.value(out, Y, sw) + alpha * decay)
        return self

    def _set_outputs(self, W, b):
        self.coef_ = W[:, 0] if self._y_1d else np.ascontiguousarray(W.T)
        self.intercept_ = float(b[0]) if self._y_1d else np.asarray(b, dtype=np.float64)

    def _branch_output(self, X):
        out = np.zeros((X.shape[0], self.n_outputs_))
        for branch in self.branches_:
            h = X @ branch[0]
            for layer in branch[1:]:
                h = h @ layer
            out += h
        return out

    def _network_output(self, X):
        return self._branch_output(np.asarray(X, dtype=np.float64)) + np.atleast_1d(
            self.intercept_
        )


def standard_deep_linear(
    X,
    y,
    *,
    depth=3,
    alpha=1e-2,
    fit_intercept=True,
    sample_weight=None,
    n_init=5,
    max_iter=2000,
    random_state=None,
):
    """Train the standard (non-parallel) deep linear network: the duality-gap baseline.

    The network :math:`f(x) = x^\\top W_1 W_2\\cdots W_L + b` (hidden widths
    :math:`\\min(d, C)`) with the regularizer of
    :class:`ParallelDeepLinearRegressor`, :math:`\\alpha\\prod_l \\|W_l\\|_F`,
    is trained by L-BFGS on the smooth equivalent
    :math:`\\tfrac{\\alpha}{L}\\sum_l \\|W_l\\|_F^L` (equal at balanced layers,
    which any minimizer has) from ``n_init`` random starts and from the
    balanced factorization of the nuclear-norm solution. Its training
    problem equals :math:`\\min_W \\text{loss}(XW) + \\alpha\\|W\\|_{S_{2/L}}`
    (a Schatten quasi-norm for :math:`L \\ge 3`), whose Lagrangian dual is the
    nuclear-norm program: the value of the parallel network is a lower bound
    and the difference is the duality gap that parallel architectures close.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Training data.
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Targets.
    depth : int, default=3
        Number of layers :math:`L \\ge 2`.
    alpha : float, default=1e-2
        Regularization strength, multiplied by the standard deviation of
        ``y`` (as in :class:`ParallelDeepLinearRegressor`).
    fit_intercept : bool, default=True
        Fit an unpenalized output intercept.
    sample_weight : array-like of shape (n_samples,), default=None
        Row weights (normalized to sum to one).
    n_init : int, default=5
        Random starts besides the one from the nuclear-norm solution.
    max_iter : int, default=2000
        L-BFGS iterations per start.
    random_state : int, RandomState instance or None, default=None
        Seed of the random starts.

    Returns
    -------
    result : Bunch
        ``objective`` (the best standard network found: an upper bound on
        the optimum of its training problem), ``layers`` (its ``depth``
        weight matrices), ``intercept``, ``parallel_objective`` (the
        nuclear-norm optimum: the parallel network's value and the dual
        value of the standard network's problem), ``gap`` (``objective -
        parallel_objective``) and ``parallel`` (the fitted
        :class:`ParallelDeepLinearRegressor`).

    Examples
    --------
    >>> import numpy as np
    >>> from skconvex import standard_deep_linear
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((60, 3))
    >>> Y = X @ np.diag([3.0, 2.0, 1.0])
    >>> res = standard_deep_linear(X, Y, depth=3, alpha=0.05, random_state=0)
    >>> bool(res.gap > 0)
    True
    """
    if isinstance(depth, bool) or not isinstance(depth, Integral) or depth < 2:
        raise ValueError(f"depth must be an integer >= 2, got {depth!r}.")
    if isinstance(n_init, bool) or not isinstance(n_init, Integral) or n_init < 0:
        raise ValueError(f"n_init must be a non-negative integer, got {n_init!r}.")
    if not isinstance(alpha, Real) or alpha < 0:
        raise ValueError(f"alpha must be a non-negative number, got {alpha!r}.")
    parallel = ParallelDeepLinearRegressor(
        alpha=alpha,
        depth=depth,
        fit_intercept=fit_intercept,
        tol=1e-10,
        max_iter=100000,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        parallel.fit(X, y, sample_weight=sample_weight)
    X = np.asarray(X, dtype=np.float64)
    s = _check_sample_weight(sample_weight, X, dtype=np.float64)
    s = s / s.sum()
    Y = np.asarray(y, dtype=np.float64).reshape(X.shape[0], -1)
    scale = parallel._alpha_scale(Y, s)
    a = alpha * scale
    Xc, Yc, x_mean, y_mean = _centered(X, Y, s, fit_intercept)
    d, C = X.shape[1], Y.shape[1]
    r = min(d, C)
    shapes = [(d, r)] + [(r, r)] * (depth - 2) + [(r, C)]
    sizes = [p * q for p, q in shapes]
    L = depth

    def unpack(theta):
        out, start = [], 0
        for shape, size in zip(shapes, sizes):
            out.append(theta[start : start + size].reshape(shape))
            start += size
        return out

    def fun(theta):
        layers = unpack(theta)
        prefix = [np.eye(d)]
        for layer in layers:
            prefix.append(prefix[-1] @ layer)
        W = prefix[-1]
        R = Xc @ W - Yc
        loss = 0.5 * float(np.sum(s[:, None] * R * R))
        norms = [float(np.linalg.norm(layer)) for layer in layers]
        value = loss + a / L * sum(nv**L for nv in norms)
        dW = (Xc * s[:, None]).T @ R
        grads = []
        suffix = np.eye(C)
        for l in range(L - 1, -1, -1):
            g = prefix[l].T @ dW @ suffix.T + a * norms[l] ** (L - 2) * layers[l]
            grads.append(g.ravel())
            suffix = layers[l] @ suffix
        return value, np.concatenate(grads[::-1])

    def objective(layers):
        W = np.linalg.multi_dot(layers) if len(layers) > 2 else layers[0] @ layers[1]
        R = Xc @ W - Yc
        return 0.5 * float(np.sum(s[:, None] * R * R)) + a * float(
            np.prod([np.linalg.norm(layer) for layer in layers])
        )

    rng = check_random_state(random_state)
    W0 = parallel.coef_.reshape(-1, d).T
    U, sv, Vt = np.linalg.svd(W0, full_matrices=False)
    root = np.diag(sv[:r] ** (1.0 / L))
    starts = [
        np.concatenate(
            [(U[:, :r] @ root).ravel()]
            + [root.ravel()] * (L - 2)
            + [(root @ Vt[:r]).ravel()]
        )
    ]
    spread = (float(np.linalg.norm(W0)) + 1e-3) ** (1.0 / L) / np.sqrt(r)
    starts += [rng.standard_normal(sum(sizes)) * spread for _ in range(n_init)]
    best = None
    for theta0 in starts:
        res = minimize(
            fun, theta0, jac=True, method="L-BFGS-B", options={"maxiter": max_iter}
        )
        layers = unpack(res.x)
        value = objective(layers)
        if best is None or value < best[0]:
            best = (value, layers)
    value, layers = best
    W = np.linalg.multi_dot(layers) if L > 2 else layers[0] @ layers[1]
    intercept = y_mean - x_mean @ W
    return Bunch(
        objective=value,
        layers=layers,
        intercept=intercept,
        parallel_objective=parallel.objective_,
        gap=value - parallel.objective_,
        parallel=parallel,
    )
