"""Vector-output ReLU networks with shared neurons, bounded through their copositive program."""

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions

from ..arrangements import enumerate_arrangements, sample_arrangements
from ..programs._geometry import row_space
from ..programs.datafits import SquaredError
from ..programs.network import ReLUNetworkProblem
from ..programs.oracles import ExhaustiveOracle, PatternOracle
from ..solvers.copositive import (
    copositive_sdp,
    frank_wolfe,
    spike_free_check,
    spike_free_closed_form,
)
from ._base import (
    BaseConvexNetwork,
    ClassificationTargets,
    ProgramUnits,
    RegressionTargets,
    augment,
)
from ._relu_network import (
    ReLUNetworkMixin,
    _check_classes_left,
    _warn_if_not_converged,
    positive_rows,
)

__all__ = ["CopositiveNet", "CopositiveNetRegressor", "CopositiveNetClassifier"]

# method="auto" uses the SDP up to these sizes (see the docstring).
_SDP_MAX_RANK = 7
_SDP_MAX_PATTERNS = 200
_SDP_MAX_SIZE = 20_000
# A certified relative gap below this counts as exact (solver accuracy).
_EXACT_RTOL = 1e-6

_COMMON_DOC = """
    Parameters
    ----------
    alpha : float, default=1e-3
        Weight-decay strength. The objective is the **mean** loss (weighted by
        ``sample_weight``) plus ``alpha`` times the weight decay
        :math:`\\tfrac12\\sum_j \\|u_j\\|^2 + \\|v_j\\|^2` of the network
        (hidden biases included in :math:`u_j`), equal to ``alpha`` times
        :math:`\\sum_j \\|u_j\\|\\|v_j\\|` at the optimal rescaling. For
        regressors ``alpha`` is multiplied by the standard deviation of ``y``.
    method : {"auto", "sdp", "frank_wolfe", "svd"}, default="auto"
        ``"sdp"``: semidefinite relaxation (lower bound) rounded to a network
        (upper bound). ``"frank_wolfe"``: fully corrective conditional
        gradient with the cone-constrained PCA oracle (scales to more cells
        and samples). ``"svd"``: the soft-thresholded SVD closed form, only
        for spike-free data (checked; ``ValueError`` otherwise) and the
        squared loss. ``"auto"``: ``"svd"`` when the data qualify, else
        ``"sdp"`` when the (augmented) data have rank at most 7, there are at
        most 200 cells and ``n_samples * n_cells <= 20000``, else
        ``"frank_wolfe"``.
    arrangement : {"gaussian", "exhaustive"}, default="gaussian"
        Cells of the hyperplane arrangement the neurons may use:
        ``n_arrangements`` Gaussian gates, or every cell (data of small rank;
        then the bounds hold for the unsampled problem). Unused by ``"svd"``,
        whose bounds always hold for the unsampled problem.
    n_arrangements : int, default=20
        Gates sampled for ``arrangement="gaussian"``; for ``"exhaustive"``,
        the largest number of cells accepted (``ValueError`` beyond).
    fit_intercept : bool, default=True
        Give every neuron a bias (a ones column appended to ``X``, penalized
        with the neuron's weights) and the output an unpenalized intercept.
    solver : {"CLARABEL", "SCS"}, default="CLARABEL"
        CVXPY solver of the SDP relaxation. SCS's default accuracy is low;
        pass e.g. ``solver_options={"eps": 1e-8}``.
    solver_options : dict, default=None
        Keyword arguments for the SDP solver.
    tol : float, default=1e-3
        Target certified relative gap of Frank-Wolfe.
    max_iter : int, default=100
        Frank-Wolfe iterations.
    random_state : int, RandomState instance or None, default=None
        Seed of the gates.
    verbose : int, default=0
        Progress of Frank-Wolfe (1) and the SDP solver's log (2).
"""

_COMMON_ATTRIBUTES = """
    method_ : {"sdp", "frank_wolfe", "svd"}
        Method used.
    gates_ : ndarray of shape (n_features + fit_intercept, n_cells) or None
        One gate inside each cell used (None for ``"svd"``).
    lower_bound_ : float
        Certified lower bound on the training objective of every network
        whose neurons use the cells in ``gates_`` (of every network at all for
        ``arrangement="exhaustive"`` and for ``"svd"``). For ``"sdp"`` it is
        the value of a dual point of the relaxation made feasible whatever
        the solver's accuracy, for ``"frank_wolfe"`` the best dual point
        certified by the oracle, for ``"svd"`` the optimum of the linear
        network problem (a bound on spike-free data).
    upper_bound_ : float
        Objective of the returned network (``objective_``).
    gap_ : float
        ``upper_bound_ - lower_bound_``.
    is_exact_ : bool
        Whether the returned network is certified optimal (over the cells
        used): the relaxation is tight (every block numerically rank one with
        its eigenvector in its cone), the closed form's singular vectors are
        non-negative, or the certified relative gap is at most 1e-6.
    relaxation_value_ : float
        Optimal value of the SDP relaxation as reported by the solver (only
        with ``method_ == "sdp"``; NaN otherwise). It is *not* used as the
        lower bound because interior-point solvers may stop slightly above
        the optimum.
    hidden_weights_ : ndarray of shape (n_neurons, n_features)
        Input weights of the neurons (balanced).
    hidden_intercepts_ : ndarray of shape (n_neurons,)
        Biases of the neurons (zeros when ``fit_intercept=False``).
    output_weights_ : ndarray of shape (n_neurons, n_outputs)
        Output weights, one vector per neuron, shared by all outputs.
    n_neurons_ : int
        Number of neurons.
    objective_ : float
        Mean loss plus ``alpha`` times the weight decay of the network.
    n_iter_ : int
        Iterations of the method (interior-point iterations for ``"sdp"``).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column names.
"""

_NOTES = """
    Training a two-layer ReLU network whose neurons feed every output, with
    weight decay, is exactly the convex program
    :math:`\\min_{V_p, b} F(\\sum_p D_pXV_p + \\mathbf 1b^\\top) + \\alpha\\sum_p
    \\|V_p\\|_{\\mathcal K_p,*}` with the cone-constrained nuclear norm of
    each cell, equivalently a completely positive (copositive-dual) program
    (Sahiner, Ergen, Pauly & Pilanci, 2021). Its doubly non-negative
    relaxation is a semidefinite program giving a lower bound; eigenvectors of
    its solution oriented into the cones, with a convex refit of the output
    layer, give a network and an upper bound. With sampled cells both bounds
    concern networks restricted to those cells: a network trained by
    gradient descent may use other cells and reach a lower objective than
    ``lower_bound_``. See :mod:`skconvex.solvers.copositive`.

    References
    ----------
    A. Sahiner, T. Ergen, J. Pauly and M. Pilanci. Vector-output ReLU neural
    network problems are copositive programs: convex analysis of two layer
    networks and polynomial-time algorithms. ICLR 2021, arXiv:2012.13329.

    T. Ergen and M. Pilanci. Convex geometry and duality of over-parameterized
    neural networks. JMLR 22(212), 2021, arXiv:2002.11219.
"""


class _CopositiveBase(ReLUNetworkMixin, BaseConvexNetwork):
    """Fit of the copositive estimators."""

    _parameter_constraints = {
        "alpha": [Interval(Real, 0, None, closed="neither")],
        "method": [StrOptions({"auto", "sdp", "frank_wolfe", "svd"})],
        "arrangement": [StrOptions({"gaussian", "exhaustive"})],
        "n_arrangements": [Interval(Integral, 1, None, closed="left")],
        "fit_intercept": ["boolean"],
        "solver": [StrOptions({"CLARABEL", "SCS"})],
        "solver_options": [dict, None],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def _cells(self, X_aug, sample_weight):
        if self.arrangement == "exhaustive":
            arr = enumerate_arrangements(
                X_aug, sample_weight=sample_weight, max_patterns=self.n_arrangements,
                budget_name="n_arrangements",
            )
        else:
            arr = sample_arrangements(
                X_aug, self.n_arrangements, sample_weight=sample_weight,
                random_state=self.random_state,
            )
        return arr.gates, arr.patterns

    def _resolve_method(self, X, sample_weight, datafit, X_aug, n_cells):
        if self.method != "auto":
            return self.method
        if isinstance(datafit, SquaredError) and spike_free_check(X, sample_weight, self.fit_intercept)[0]:
            return "svd"
        rank = row_space(X_aug)[1].shape[1]
        if (
            rank <= _SDP_MAX_RANK
            and n_cells <= _SDP_MAX_PATTERNS
            and X_aug.shape[0] * n_cells <= _SDP_MAX_SIZE
        ):
            return "sdp"
        return "frank_wolfe"

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the network and bound the global optimum.

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
            X, y, sample_weight, multi_output=self._multi_output, y_numeric=self._y_numeric
        )
        Y, datafit = self._encode_targets(y)
        alpha = self.alpha * self._alpha_scale(Y, sw)
        X64, Y, sw = positive_rows(X.astype(np.float64), Y, sw)
        _check_classes_left(self, Y)
        X_aug = augment(X64, self.fit_intercept)
        gates, patterns = None, None
        method = self.method
        if method == "svd" and not isinstance(datafit, SquaredError):
            raise ValueError("method='svd' needs loss='squared_error'.")
        if method != "svd":
            gates, patterns = self._cells(X_aug, sw)
            method = self._resolve_method(X64, sw, datafit, X_aug, patterns.shape[1])
        self.method_ = method
        self.relaxation_value_ = float("nan")
        if method == "svd":
            result = spike_free_closed_form(
                ReLUNetworkProblem(X64, Y, datafit, sw, alpha, fit_intercept=self.fit_intercept)
            )
            gates = None
        elif method == "sdp":
            units = ProgramUnits(X_aug, Y, scale_targets=isinstance(datafit, SquaredError))
            scaled = ReLUNetworkProblem(
                *units.data(X_aug, Y), datafit, sw, units.alpha(alpha), fit_intercept=self.fit_intercept
            )
            result = copositive_sdp(
                scaled, patterns, gates=gates, solver=self.solver,
                solver_options=self.solver_options, tol=_EXACT_RTOL, verbose=self.verbose,
            )
            result = units.network_result(result)
            self.relaxation_value_ = float(result.info["relaxation_value"]) * units.value
            if result.info["status"] != "optimal" and result.relative_gap > self.tol:
                warnings.warn(
                    f"{type(self).__name__}: the SDP solver {self.solver} returned status "
                    f"{result.info['status']!r}; the bounds remain certified but may be "
                    "loose. Try solver_options with more iterations or fewer cells.",
                    ConvergenceWarning,
                )
        else:
            units = ProgramUnits(X_aug, Y, scale_targets=isinstance(datafit, SquaredError))
            X_s, Y_s = units.data(X_aug, Y)
            if self.arrangement == "exhaustive":
                oracle = ExhaustiveOracle(X_s, max_faces=None)
            else:
                oracle = PatternOracle(X_s, patterns, gates=gates)
            scaled = ReLUNetworkProblem(X_s, Y_s, datafit, sw, units.alpha(alpha), fit_intercept=self.fit_intercept)
            result = units.network_result(frank_wolfe(
                scaled, oracle, tol=self.tol, max_iter=self.max_iter, master_solver="clarabel",
                verbose=self.verbose,
            ))
            _warn_if_not_converged(self, result.converged, result.info, result.n_iter, result.relative_gap)
        self.gates_ = gates
        self._store_network(result.info["directions"], result.info["output"], result.intercept, X.shape[1])
        self.upper_bound_ = float(result.objective)
        self.lower_bound_ = float(min(result.dual_objective, result.objective))
        self.gap_ = float(self.upper_bound_ - self.lower_bound_)
        self.is_exact_ = bool(
            result.info["is_exact"] or self.gap_ <= _EXACT_RTOL * max(abs(self.upper_bound_), 1e-300)
        )
        self.objective_ = self.upper_bound_
        self.n_iter_ = max(1, int(result.n_iter))
        return self


class CopositiveNetRegressor(RegressionTargets, RegressorMixin, _CopositiveBase):
    __doc__ = (
        """Two-layer ReLU regressor with shared neurons, bounded by its copositive program.

    Squared error on one or several outputs; every neuron has one hidden
    weight vector and one output vector (plain weight decay). Fitting returns
    a network together with certified lower and upper bounds on the optimal
    training objective.
"""
        + _COMMON_DOC
        + """
    Attributes
    ----------"""
        + _COMMON_ATTRIBUTES
        + """    n_outputs_ : int
        Number of outputs.
    intercept_ : float or ndarray of shape (n_outputs,)
        Output intercept (a float for one-dimensional ``y``).

    See Also
    --------
    CopositiveNet : The same model under the name of the paper.
    CopositiveNetClassifier : The classifier counterpart.
    CuttingPlaneReLURegressor : Column generation without a fixed pattern set.

    Notes
    -----"""
        + _NOTES
        + """
    Examples
    --------
    >>> import numpy as np
    >>> from skconvex import CopositiveNetRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((30, 2))
    >>> Y = np.c_[np.abs(X[:, 0]), np.maximum(X[:, 1], 0)]
    >>> reg = CopositiveNetRegressor(alpha=1e-2, random_state=0).fit(X, Y)
    >>> reg.method_, bool(reg.lower_bound_ <= reg.upper_bound_)
    ('sdp', True)
"""
    )

    _multi_output = True
    _y_numeric = True

    def __init__(
        self,
        alpha=1e-3,
        *,
        method="auto",
        arrangement="gaussian",
        n_arrangements=20,
        fit_intercept=True,
        solver="CLARABEL",
        solver_options=None,
        tol=1e-3,
        max_iter=100,
        random_state=None,
        verbose=0,
    ):
        self.alpha = alpha
        self.method = method
        self.arrangement = arrangement
        self.n_arrangements = n_arrangements
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.solver_options = solver_options
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class CopositiveNetClassifier(ClassificationTargets, ClassifierMixin, _CopositiveBase):
    __doc__ = (
        """Two-layer ReLU classifier with neurons shared by the classes, bounded by its copositive program.

    One output per class (one for two classes) and plain weight decay;
    fitting returns a network together with certified lower and upper bounds
    on the optimal training objective.
"""
        + _COMMON_DOC
        + """
    loss : {"squared_error", "log_loss"}, default="squared_error"
        ``"squared_error"`` on +-1 (two classes) or one-hot targets, the
        setting of Sahiner et al. (2021) (it allows ``method="svd"``);
        ``"log_loss"``: logistic / multinomial cross-entropy (gives
        ``predict_proba``).

    Attributes
    ----------"""
        + _COMMON_ATTRIBUTES
        + """    classes_ : ndarray of shape (n_classes,)
        Class labels.
    intercept_ : ndarray of shape (n_outputs,)
        Output intercept.

    See Also
    --------
    CopositiveNet : The vector-output network on real-valued targets.
    CopositiveNetRegressor : The regressor counterpart.
    CuttingPlaneReLUClassifier : Column generation without a fixed pattern set.

    Notes
    -----"""
        + _NOTES
        + """
    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skconvex import CopositiveNetClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> X = StandardScaler().fit_transform(X)
    >>> clf = CopositiveNetClassifier(alpha=1e-2, random_state=0).fit(X, y)
    >>> clf.method_, bool(clf.gap_ <= 1e-3 * clf.upper_bound_)
    ('sdp', True)
"""
    )

    _multi_output = False
    _y_numeric = False

    _parameter_constraints = {
        **_CopositiveBase._parameter_constraints,
        "loss": [StrOptions({"log_loss", "squared_error"})],
    }

    def __init__(
        self,
        alpha=1e-3,
        *,
        method="auto",
        arrangement="gaussian",
        n_arrangements=20,
        fit_intercept=True,
        solver="CLARABEL",
        solver_options=None,
        tol=1e-3,
        max_iter=100,
        random_state=None,
        verbose=0,
        loss="squared_error",
    ):
        self.alpha = alpha
        self.method = method
        self.arrangement = arrangement
        self.n_arrangements = n_arrangements
        self.fit_intercept = fit_intercept
        self.loss = loss
        self.solver = solver
        self.solver_options = solver_options
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state
        self.verbose = verbose


class CopositiveNet(CopositiveNetRegressor):
    __doc__ = (
        """Vector-output two-layer ReLU network trained through its copositive program.

    The network :math:`f(x) = \\sum_{j=1}^m (x^\\top u_j + c_j)_+ v_j + b`
    maps each sample to ``n_outputs`` values through neurons shared by all
    outputs (:math:`u_j \\in \\mathbb R^d` and its bias :math:`c_j`,
    :math:`v_j \\in \\mathbb R^{\\text{n\\_outputs}}`). Its training problem,
    half the mean squared error plus the weight decay
    :math:`\\tfrac{\\alpha}{2}\\sum_j \\|(u_j, c_j)\\|^2 + \\|v_j\\|^2` (``alpha``
    in units of the standard deviation of ``y``, see below), is a
    non-convex problem whose optimum equals that of a completely positive
    program, the convex program dual to a copositive one (Sahiner, Ergen,
    Pauly & Pilanci, 2021). The fit solves a relaxation or a restriction of
    that program and returns a network together with certified lower and
    upper bounds on the optimal training objective.

    ``CopositiveNet`` is that model under the name of the paper: a regressor
    on real-valued targets of any number of outputs, with the same
    parameters, fitted attributes and behaviour as
    :class:`CopositiveNetRegressor` (it subclasses it), which is its name
    among the package's task-specific ``*Regressor`` / ``*Classifier``
    front-ends. :class:`CopositiveNetClassifier` fits the same program to
    class labels encoded as one output per class (one for two classes),
    with the squared or the logistic loss.
"""
        + _COMMON_DOC
        + """
    Attributes
    ----------"""
        + _COMMON_ATTRIBUTES
        + """    n_outputs_ : int
        Number of outputs.
    intercept_ : float or ndarray of shape (n_outputs,)
        Output intercept (a float for one-dimensional ``y``).

    See Also
    --------
    CopositiveNetRegressor : The same model as a task-specific front-end.
    CopositiveNetClassifier : The same program on encoded class labels.
    CuttingPlaneReLURegressor : Column generation without a fixed pattern set.

    Notes
    -----"""
        + _NOTES
        + """
    Examples
    --------
    >>> import numpy as np
    >>> from skconvex import CopositiveNet
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((30, 2))
    >>> Y = np.c_[np.abs(X[:, 0]), np.maximum(X[:, 1], 0), X[:, 0] - X[:, 1]]
    >>> net = CopositiveNet(alpha=1e-2, random_state=0).fit(X, Y)
    >>> net.predict(X).shape, net.output_weights_.shape[1]
    ((30, 3), 3)
    >>> bool(net.lower_bound_ <= net.objective_ == net.upper_bound_)
    True
"""
    )
