"""Gated-ReLU two-layer networks solved as group lasso programs."""

from numbers import Integral

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .. import _array_api
from ..networks import factorize_blocks, gated_forward
from ..programs.operators import PatternOperator
from ..programs.problem import ConvexProblem
from ..solvers import solve_certified
from ..solvers.support_newton import runs_in_namespace, support_newton
from ..solvers.working_set import working_set_solve
from ._blocked import fit_on_cluster, on_cluster, row_blocked_operator
from ._base import (
    BaseConvexNetwork,
    ClassificationTargets,
    RegressionTargets,
    _as_dtype,
    augment,
)
from ._adaptive import ADAPTIVE_ATTRIBUTES, ADAPTIVE_DOC, AdaptiveArrangementsMixin
from ._relu_network import TwoLayerNetworkMixin

__all__ = ["ConvexGatedReLURegressor", "ConvexGatedReLUClassifier"]

# Multiply-adds of one operator product (n_samples x (n_features + 1) x
# n_arrangements x n_outputs) from which a default fit computes in float32:
# whole digits with 10 classes (8.8e7) is above, the sets of bench_defaults.py
# with one output or n <= 1,000 are below (at most 4.7e6, the 3-class
# 20-feature set), and so is every scikit-learn check.
_FLOAT32_WORK = 2e7

_COMMON_DOC = """
    Parameters
    ----------
    alpha : float, default=1e-2
        Weight-decay strength. The objective is the **mean** loss (weighted by
        ``sample_weight``) plus ``alpha`` times the group penalty, so the same
        ``alpha`` means the same thing for any number of samples. For
        regressors ``alpha`` is multiplied by the standard deviation of ``y``,
        which makes the fit equivariant to the unit of ``y``. Larger values
        give fewer active neurons.
    n_arrangements : int, default={n_arrangements}
        Number of gates sampled; after deduplication each distinct activation
        pattern is one convex block (at most this many neurons for one output).
        The defaults of ``alpha`` and ``n_arrangements`` were chosen by
        comparing candidates with scikit-learn's MLP on eleven datasets
        (``benchmarks/bench_defaults.py``).
{adaptive}    fit_intercept : bool, default=True
        Give every neuron a bias (a ones column appended to ``X``; the bias is
        penalized with the neuron's weights) and the output an unpenalized
        intercept.
"""

_COMMON_DOC_REST = """
    penalty : {"nuclear", "frobenius"}, default="nuclear"
        Block norm for several outputs (classes). ``"nuclear"`` is exactly the
        weight decay of a gated network whose neurons each have one output
        vector; ``"frobenius"`` is the plain group lasso. Both are the same for
        one output.
    tol : float, default=1e-4
        Stop when the certified duality gap is at most ``tol`` times the
        objective. The gap shrinks like the square root of the objective's
        error, so 1e-4 typically means an objective within about 1e-8 of the
        optimum; lower it when you need the certificate itself to be tight.
    max_iter : int, default=5000
        Maximum number of solver iterations. Multi-output programs with
        nuclear blocks end on FISTA alone (no Newton end-game) and can need
        thousands of iterations even on small data (``benchmarks/README.md``,
        "Uncertified default fits").
    warm_start : bool, default=False
        Reuse the gates and start from the previous solution when refitting
        (e.g. with another ``alpha``). Clones made by ``GridSearchCV`` do not
        share it. A fit on a dask cluster warm starts the same way: the
        solve on the workers starts from the previous solution.
    dtype : {None, "float32", "float64"}, default=None
        Compute dtype. None uses float32 when ``X`` is float32 or when one
        operator product costs at least 2e7 multiply-adds (``n_samples x
        (n_features + 1) x n_arrangements x n_outputs``, e.g. digits with 10
        classes), where float32 products are about twice as fast, and float64
        otherwise. The certificate is always computed in float64; a float32
        solve that cannot reach ``tol`` goes on in float64.
    block_size : "auto", int or None, default="auto"
        Rows per block of the row-blocked operator, which keeps the
        activation patterns bit-packed and forms every array proportional to
        the number of patterns for one block of rows at a time, so that the
        fit's working memory is bounded by the block size. ``"auto"`` holds
        whole arrays when they fit in the memory budget
        (:func:`skconvex.set_config`) and otherwise picks blocks a quarter of
        the budget in size; None always holds whole arrays (and refuses fits
        that do not fit); an int sets the rows per block (on a dask cluster:
        the rows per block within each worker's chunks). Results agree
        within the certified gap whatever the choice.
    n_jobs : int, default=None
        Parallel jobs for sampling the arrangements (joblib; any backend) and
        threads over the row blocks of a blocked fit.
    random_state : int, RandomState instance or None, default=None
        Seed of the gates.
    verbose : int, default=0
        Solver progress: 1 prints every outer iteration, 2 every inner one.
"""

_COMMON_ATTRIBUTES = """
    gates_ : ndarray of shape (n_features + fit_intercept, n_patterns)
        Gate of each pattern (the last row multiplies the ones column).
    pattern_weights_ : ndarray of shape (n_patterns, n_features + fit_intercept, n_outputs)
        The convex solution: block :math:`W_p` of pattern ``p``.
    coef_ : ndarray of shape (n_patterns * n_outputs, n_features)
        Input weights of the convex blocks without the bias column; row
        ``p * n_outputs + c`` is pattern ``p``, output ``c``. Columns are input
        features, so :class:`~sklearn.feature_selection.SelectFromModel` ranks
        features by the norm of their column.
    hidden_weights_ : ndarray of shape (n_neurons, n_features)
        Input weights of the recovered neurons.
    hidden_intercepts_ : ndarray of shape (n_neurons,)
        Biases of the recovered neurons (zeros when ``fit_intercept=False``).
    output_weights_ : ndarray of shape (n_neurons, n_outputs)
        Output weights of the recovered neurons.
    neuron_patterns_ : ndarray of shape (n_neurons,)
        Pattern (column of ``gates_``) that gates each neuron.
    n_neurons_ : int
        Number of neurons of the recovered network; for one output it is the
        number of non-zero blocks.
    objective_ : float
        Objective value at the solution.
    dual_gap_ : float
        Certified duality gap (an upper bound on ``objective_`` minus the
        optimum of the program with these gates), computed in float64.
    n_iter_ : int
        Solver iterations (of the last solve with ``arrangement="adaptive"``).
{adaptive}    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column names.
"""

_ADAPTIVE_DOC = ADAPTIVE_DOC.format(dual=":math:`R^\\circ(\\tilde X^\\top D\\,\\nabla F)`").lstrip("\n")
_ADAPTIVE_ATTRIBUTES = ADAPTIVE_ATTRIBUTES.format(dual_note="").lstrip("\n")

_NOTES = """
    The network is :math:`f(x) = \\sum_p 1[\\tilde x^\\top g_p \\ge 0]\\,
    \\tilde x^\\top W_p + b` with :math:`\\tilde x = (x, 1)`, fixed gates
    :math:`g_p` and weight decay. With :math:`D_p = \\mathrm{diag}(1[\\tilde X
    g_p \\ge 0])` the training problem is exactly the group lasso

    .. math:: \\min_{W, b}\\; \\frac{1}{\\sum_j s_j}\\sum_j s_j\\,
              \\ell\\Big(\\sum_p D_p \\tilde X W_p + b,\\ y\\Big)_j
              + \\alpha \\sum_p \\|W_p\\|

    (Mishkin, Sahiner & Pilanci, 2022; Pilanci & Ergen, 2020), solved by
    accelerated proximal gradient with working sets; the reported
    ``dual_gap_`` certifies the solution.

    References
    ----------
    M. Pilanci and T. Ergen. Neural networks are convex regularizers: exact
    polynomial-time convex optimization formulations for two-layer networks.
    ICML 2020, arXiv:2002.10553.

    A. Mishkin, A. Sahiner and M. Pilanci. Fast convex optimization for
    two-layer ReLU networks: equivalent model classes and cone
    decompositions. ICML 2022, arXiv:2202.01331.
"""


class _GatedBase(AdaptiveArrangementsMixin, TwoLayerNetworkMixin, BaseConvexNetwork):
    """Fit and prediction of gated-ReLU networks."""

    # Every product of the program runs on the sparse matrix itself.
    _accept_sparse = ["csr", "csc"]

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the network by solving its convex program.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data. Scipy sparse matrices and arrays (CSR or CSC;
            other formats are converted to CSR) are accepted and never
            densified. A dask array chunked by rows with
            an active ``distributed.Client`` (with ``sample_weight`` None,
            numpy or a dask array) is solved on the cluster, its rows staying on the workers (see
            ``skconvex.distributed``); ``warm_start`` applies there too, but
            ``arrangement="adaptive"`` raises a ValueError (its candidate
            search needs the rows in memory).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Row weights; the loss is their weighted mean.

        Returns
        -------
        self : object
            Fitted estimator.

        Notes
        -----
        Under ``sklearn.config_context(array_api_dispatch=True)``, ``X`` may
        be a torch tensor, a CuPy array or any array-API array. Validation
        and the sampling of the gates run on the host (numpy); the program
        (data, masks, targets, weights) then moves to the namespace and
        device of ``X``, where FISTA with its working sets, the datafit, the
        penalty's prox, the Newton end-game on the support and the
        duality-gap certificate compute (the certificate in float64 on the
        device; the end-game needs the namespace's ``linalg.pinv`` for
        several outputs with an intercept, else it runs on the host and its
        point is certified back on the device). What stays on the host:
        ``arrangement="adaptive"``, row-blocked fits
        (``block_size``), and every solve on a device without float64 (such
        as Apple MPS), which is done in numpy as a whole. Every fitted array
        is returned to the namespace and device of ``X``, where
        :meth:`predict` then runs.
        """
        self._check_adaptive_params()
        if on_cluster(X, sample_weight):
            # Rows stay on the workers; see skconvex.distributed.
            return fit_on_cluster(self, X, y, sample_weight)
        xp, device = _array_api.input_namespace(X)
        X, y, sample_weight = _array_api.to_host(X, y, sample_weight)
        if xp is not None:
            _array_api.fitted_to_host(self)  # a warm start reads them in numpy
        self._fit_host(X, y, sample_weight, namespace=(xp, device))
        if xp is not None:
            _array_api.fitted_to(self, xp, device)
        return self

    def _fit_host(self, X, y, sample_weight, namespace=(None, None)):
        """The fit from numpy (or scipy sparse) data; the solve in ``namespace`` where it can."""
        problem, gates, n_features = self._build_problem(X, y, sample_weight)
        coef_init, intercept_init = self._warm_start_point(problem.coef_shape)
        xp, device = namespace
        if (
            xp is not None
            and isinstance(problem.operator, PatternOperator)
            and not problem.operator.sparse
            and getattr(self, "arrangement", "gaussian") != "adaptive"
            and _array_api.supports_float64(xp, device)
        ):
            problem = problem.to_namespace(xp, device)
        result = self._solve_gated(problem, coef_init, intercept_init)
        # The violation report of fixed arrangements (max_violation_) is
        # computed on the host program: one forward product.
        result.coef = problem.to_numpy(result.coef)
        problem = problem.to_host()
        problem, gates, result = self._grow(problem, gates, result, self._solve_gated)
        self._last_step = result.info.get("step")
        self._report(result)
        # Coefficients in the dtype of the fit (float32 for float32 input)
        # whether or not the solve went on in float64 to certify: which one
        # it does depends on rounding (numpy and array-API inputs differed).
        fit_dtype = _as_dtype(self.dtype, X if hasattr(X, "dtype") else np.empty(0))
        eps = np.finfo(np.asarray(result.coef).dtype).eps
        result.coef = np.asarray(result.coef, dtype=fit_dtype)
        self._store_solution(result, gates, n_features, problem.n_outputs, eps=max(eps, np.finfo(fit_dtype).eps))
        return self

    # Intermediate solves of adaptive arrangements only steer the growth.
    _round_tol = 1e-2

    def _solve_gated(self, problem, coef_init, intercept_init, tol=None, max_iter=None):
        """Solve the group lasso from an optional starting point (warm start or grown patterns).

        ``tol`` and ``max_iter`` replace the estimator's own (adaptive
        arrangements ask for their own).
        """
        extra = {}
        if coef_init is not None and getattr(self, "_last_step", None):
            extra["step_init"] = self._last_step
        if coef_init is not None and coef_init.any():
            # A warm start from another alpha is first solved on its own
            # support at this alpha (a predictor step along a path), so FISTA
            # only has to add or drop the blocks that change.
            # In the program's namespace where the end-game computes there
            # (else on the host copy, see fit's Notes).
            target = problem if runs_in_namespace(problem) else problem.to_host()
            coef_init, intercept_init, _ = support_newton(
                target, target.from_host(coef_init), intercept_init, tol=1e-12, max_steps=4,
                # A predictor needs a few Newton steps, not a share of max_iter.
                max_products=min(self.max_iter // 4, 500),
            )
        return solve_certified(
            problem,
            working_set_solve,
            tol=self.tol if tol is None else tol,
            max_iter=self.max_iter if max_iter is None else min(max_iter, self.max_iter),
            coef_init=coef_init,
            intercept_init=intercept_init,
            verbose=self.verbose,
            # Loose intermediate solves (adaptive arrangements) skip the
            # Newton polish: only their supports and dual points are used.
            polish=support_newton if tol is None or tol <= self.tol else None,
            **extra,
        )

    def _build_problem(self, X, y, sample_weight):
        """Validate the data and assemble the group-lasso program (gates included)."""
        X, y, sw = self._validate_fit_data(
            X, y, sample_weight, multi_output=self._multi_output, y_numeric=self._y_numeric
        )
        Y, datafit = self._encode_targets(y)
        dtype = _as_dtype(self.dtype, X)
        work = X.shape[0] * (X.shape[1] + int(self.fit_intercept)) * self.n_arrangements * Y.shape[1]
        if self.dtype is None and work >= _FLOAT32_WORK:
            # Large products run twice as fast in float32; solve_certified
            # still certifies in float64 (and goes on in float64 if float32
            # cannot reach tol).
            dtype = np.dtype(np.float32)
        X_aug = augment(X.astype(dtype, copy=False), self.fit_intercept)
        blocked = row_blocked_operator(self, X_aug, sw, Y.shape[1], dtype)
        if blocked is None:
            gates, patterns = self._arrangements(X_aug, sw, Y.shape[1])
            operator = PatternOperator(X_aug, patterns, n_outputs=Y.shape[1], dtype=dtype)
        else:
            gates, operator = blocked
        problem = ConvexProblem(
            operator,
            datafit,
            self._penalty(),
            Y,
            sw,
            self.alpha * self._alpha_scale(Y, sw),
            fit_intercept=self.fit_intercept,
        )
        return problem, gates, X.shape[1]

    def _alpha_max(self, X, y, sample_weight=None):
        """Smallest ``alpha`` (in this estimator's units) whose solution is the empty network."""
        problem, _, _ = self._build_problem(X, y, sample_weight)
        return problem.alpha_max() / self._alpha_scale(problem.y, problem.sample_weight)

    def _store_solution(self, result, gates, n_features, n_outputs, eps=None):
        W = np.asarray(result.coef)
        self.gates_ = gates
        self.pattern_weights_ = np.ascontiguousarray(W.transpose(1, 0, 2))
        self.coef_ = np.ascontiguousarray(
            self.pattern_weights_[:, :n_features, :].transpose(0, 2, 1)
        ).reshape(-1, n_features)
        b = np.asarray(result.intercept, dtype=np.float64)
        self.intercept_ = float(b[0]) if getattr(self, "_y_1d", False) else b
        # Blocks solved in float32 and stored in float64 keep float32's
        # rounding: its singular values are not neurons.
        hidden, output, blocks = factorize_blocks(W, eps=eps)
        self._set_neurons(hidden, output, n_features)
        self.neuron_patterns_ = blocks

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # fit and predict take arrays of any array-API namespace (skconvex._array_api).
        tags.array_api_support = True
        return tags

    #: Fitted attribute whose namespace and device ``predict`` inputs must share.
    _array_api_attribute = "gates_"

    def _check_predict_data(self, X):
        xp, _ = _array_api.input_namespace(X)
        if xp is None:
            return super()._check_predict_data(X)
        check_is_fitted(self)
        if xp.isdtype(X.dtype, "complex floating"):
            # scikit-learn's validation casts complex arrays of other
            # namespaces to real (a warning); numpy input is refused.
            raise ValueError(f"Complex data not supported\n{X}\n")
        return validate_data(
            self, X, dtype=[xp.float64, xp.float32], accept_sparse=False, reset=False
        )

    def _network_output(self, X):
        xp, device = _array_api.input_namespace(X)
        if xp is not None:
            intercept = xp.reshape(xp.asarray(self.intercept_, dtype=X.dtype, device=device), (-1,))
            hidden = self.hidden_weights_
            if self.fit_intercept:
                hidden = xp.concat([hidden, xp.reshape(self.hidden_intercepts_, (-1, 1))], axis=1)
            return _array_api.gated_forward(
                xp,
                X,
                self.fit_intercept,
                xp.take(self.gates_, self.neuron_patterns_, axis=1),
                hidden,
                self.output_weights_,
                intercept,
            )
        X_aug = augment(X, self.fit_intercept)
        return gated_forward(
            X_aug,
            self.gates_[:, self.neuron_patterns_].astype(X_aug.dtype, copy=False),
            self._hidden_full().astype(X_aug.dtype, copy=False),
            self.output_weights_.astype(X_aug.dtype, copy=False),
            np.atleast_1d(self.intercept_),
        )


class ConvexGatedReLURegressor(RegressionTargets, RegressorMixin, _GatedBase):
    __doc__ = (
        """Two-layer gated-ReLU regressor trained to global optimality.

    Squared error on one or several outputs, weight decay, gates sampled at
    random and fixed; the training problem is a group lasso solved with a
    certified duality gap.
"""
        + _COMMON_DOC.format(n_arrangements=200, adaptive=_ADAPTIVE_DOC).rstrip("\n")
        + """
    loss : {"squared_error"}, default="squared_error"
        Data-fitting term: half the squared error, averaged over samples."""
        + _COMMON_DOC_REST.rstrip("\n")
        + """

    Attributes
    ----------"""
        + _COMMON_ATTRIBUTES.format(adaptive=_ADAPTIVE_ATTRIBUTES)
        + """    n_outputs_ : int
        Number of outputs.
    intercept_ : float or ndarray of shape (n_outputs,)
        Output intercept (a float for one-dimensional ``y``).
    dask_info_ : dict
        Only after a fit on a dask cluster: solver ``rounds``, bytes of
        weights sent (``bytes_out``) and of sums received (``bytes_in``),
        ``n_blocks`` and ``n_samples``.

    See Also
    --------
    ConvexGatedReLUClassifier : The classifier counterpart.
    sklearn.neural_network.MLPRegressor : A non-convex two-layer network.

    Notes
    -----"""
        + _NOTES
        + """
    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from skconvex import ConvexGatedReLURegressor
    >>> X, y = make_regression(n_samples=100, n_features=5, random_state=0)
    >>> reg = ConvexGatedReLURegressor(random_state=0).fit(X, y)
    >>> reg.predict(X[:2]).shape
    (2,)
"""
    )

    _multi_output = True
    _y_numeric = True

    _parameter_constraints = {
        **BaseConvexNetwork._parameter_constraints,
        **AdaptiveArrangementsMixin._adaptive_constraints,
        "block_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left"), None],
        "loss": [StrOptions({"squared_error"})],
    }

    def __init__(
        self,
        alpha=1e-2,
        *,
        n_arrangements=200,
        arrangement="gaussian",
        max_arrangements=None,
        fit_intercept=True,
        loss="squared_error",
        penalty="nuclear",
        tol=1e-4,
        max_iter=5000,
        warm_start=False,
        dtype=None,
        block_size="auto",
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.alpha = alpha
        self.n_arrangements = n_arrangements
        self.arrangement = arrangement
        self.max_arrangements = max_arrangements
        self.fit_intercept = fit_intercept
        self.loss = loss
        self.penalty = penalty
        self.tol = tol
        self.max_iter = max_iter
        self.warm_start = warm_start
        self.dtype = dtype
        self.block_size = block_size
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class ConvexGatedReLUClassifier(ClassificationTargets, ClassifierMixin, _GatedBase):
    __doc__ = (
        """Two-layer gated-ReLU classifier trained to global optimality.

    Logistic loss for two classes, multinomial cross-entropy for more (one
    output per class), weight decay, gates sampled at random and fixed; the
    training problem is a group lasso solved with a certified duality gap.
"""
        + _COMMON_DOC.format(n_arrangements=100, adaptive=_ADAPTIVE_DOC).rstrip("\n")
        + """
    loss : {"log_loss", "squared_error"}, default="log_loss"
        ``"log_loss"``: logistic / multinomial cross-entropy (gives
        ``predict_proba``); ``"squared_error"``: squared error on +-1 or
        one-hot targets."""
        + _COMMON_DOC_REST.rstrip("\n")
        + """

    Attributes
    ----------"""
        + _COMMON_ATTRIBUTES.format(adaptive=_ADAPTIVE_ATTRIBUTES)
        + """    classes_ : ndarray of shape (n_classes,)
        Class labels.
    intercept_ : ndarray of shape (n_outputs,)
        Output intercept (one output for two classes, else one per class).

    See Also
    --------
    ConvexGatedReLURegressor : The regressor counterpart.
    sklearn.neural_network.MLPClassifier : A non-convex two-layer network.

    Notes
    -----"""
        + _NOTES
        + """
    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skconvex import ConvexGatedReLUClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = ConvexGatedReLUClassifier(random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:1]).shape
    (1, 3)
"""
    )

    _multi_output = False
    _y_numeric = False

    _parameter_constraints = {
        **BaseConvexNetwork._parameter_constraints,
        **AdaptiveArrangementsMixin._adaptive_constraints,
        "block_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left"), None],
        "loss": [StrOptions({"log_loss", "squared_error"})],
    }

    def __init__(
        self,
        alpha=1e-2,
        *,
        n_arrangements=100,
        arrangement="gaussian",
        max_arrangements=None,
        fit_intercept=True,
        loss="log_loss",
        penalty="nuclear",
        tol=1e-4,
        max_iter=5000,
        warm_start=False,
        dtype=None,
        block_size="auto",
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.alpha = alpha
        self.n_arrangements = n_arrangements
        self.arrangement = arrangement
        self.max_arrangements = max_arrangements
        self.fit_intercept = fit_intercept
        self.loss = loss
        self.penalty = penalty
        self.tol = tol
        self.max_iter = max_iter
        self.warm_start = warm_start
        self.dtype = dtype
        self.block_size = block_size
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose
