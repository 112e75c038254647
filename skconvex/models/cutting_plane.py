"""Two-layer ReLU networks trained by column generation, with a certified gap to the unsampled problem."""

from numbers import Integral, Real

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions

from ..arrangements import sample_arrangements
from ..programs._geometry import estimate_faces, row_space
from ..programs.network import ReLUNetworkProblem
from ..programs.oracles import ExhaustiveOracle, PatternOracle
from ..solvers.cutting_plane import cutting_plane
from ._base import BaseConvexNetwork, ClassificationTargets, RegressionTargets, augment
from ._relu_network import (
    ReLUNetworkMixin,
    _check_classes_left,
    _warn_if_not_converged,
    positive_rows,
)

__all__ = ["CuttingPlaneReLURegressor", "CuttingPlaneReLUClassifier"]

_COMMON_DOC = """
    Parameters
    ----------
    alpha : float, default=1e-3
        Weight-decay strength. The objective is the **mean** loss (weighted by
        ``sample_weight``) plus ``alpha`` times the weight decay
        :math:`\\tfrac12\\sum_j \\|u_j\\|^2 + \\|a_j\\|^2` (hidden biases
        included in :math:`u_j`), which equals ``alpha`` times
        :math:`\\sum_j \\|u_j\\|\\|a_j\\|` at the optimal rescaling of each
        neuron. For regressors ``alpha`` is multiplied by the standard
        deviation of ``y``.
    oracle : {"auto", "exhaustive", "sampled"}, default="auto"
        Domain of the dual oracle. ``"exhaustive"`` searches every face of the
        hyperplane arrangement of the (augmented) data, so ``dual_gap_``
        bounds the distance to the global optimum of the *unsampled* training
        problem; it needs data of small rank (e.g. one or two features plus
        the bias) and refuses arrangements with more than ``max_faces``
        faces. ``"sampled"`` searches the cells of ``n_arrangements`` Gaussian
        gates, and ``dual_gap_`` bounds the distance to the optimum over
        networks whose neurons use those activation patterns. ``"auto"`` is
        ``"exhaustive"`` when the arrangement has at most ``max_faces``
        faces (an upper estimate computed before enumerating), else
        ``"sampled"``; ``oracle_`` records the choice.
    n_arrangements : int, default=100
        Gates sampled for ``oracle="sampled"``.
    max_faces : int, default=20000
        Largest (estimated) number of faces for the exhaustive oracle.
    fit_intercept : bool, default=True
        Give every neuron a bias (a ones column appended to ``X``, penalized
        with the neuron's weights) and the output an unpenalized intercept.
    tol : float, default=1e-3
        Stop when the certified duality gap is at most ``tol`` times the
        objective.
    max_iter : int, default=100
        Maximum number of outer iterations (oracle calls).
    max_new_neurons : int, default=20
        Largest number of violating directions (distinct activation patterns)
        added as neurons per iteration.
    master_solver : {"clarabel", "fista"}, default="clarabel"
        Solver of the restricted master problem (a group lasso over the output
        weights of the current neurons): the interior-point solver Clarabel
        through CVXPY, or FISTA (first order, matrix free).
    random_state : int, RandomState instance or None, default=None
        Seed of the sampled gates (unused by the exhaustive oracle).
    verbose : int, default=0
        Print one line per outer iteration.
"""

_COMMON_ATTRIBUTES = """
    oracle_ : {"exhaustive", "sampled"}
        Oracle used (the resolution of ``oracle="auto"``).
    gates_ : ndarray of shape (n_features + fit_intercept, n_patterns) or None
        Gates of the sampled cells (None for the exhaustive oracle).
    hidden_weights_ : ndarray of shape (n_neurons, n_features)
        Input weights of the neurons (balanced: their norm with the bias
        squared equals the norm of their output weights squared).
    hidden_intercepts_ : ndarray of shape (n_neurons,)
        Biases of the neurons (zeros when ``fit_intercept=False``).
    output_weights_ : ndarray of shape (n_neurons, n_outputs)
        Output weights of the neurons.
    n_neurons_ : int
        Number of neurons.
    objective_ : float
        Objective of the fitted network (mean loss plus ``alpha`` times its
        weight decay).
    lower_bound_ : float
        Certified lower bound on the optimal objective: of the unsampled
        problem when ``oracle_ == "exhaustive"``, of the problem restricted
        to the sampled cells otherwise.
    dual_gap_ : float
        ``objective_ - lower_bound_``.
    oracle_values_ : ndarray of shape (`n_iter_`,)
        Certified value of :math:`\\max_{\\|u\\|\\le1}\\|\\Theta^\\top(Xu)_+\\|`
        divided by the (scaled) ``alpha`` at each iteration; 1 means the
        current dual point is feasible.
    n_iter_ : int
        Outer iterations.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column names.
"""

_NOTES = """
    With the neurons rescaled to :math:`\\|u_j\\| = 1`, training
    :math:`f(x) = \\sum_j (\\tilde x^\\top u_j)_+ a_j^\\top + b` is a convex
    problem over measures on the sphere; its dual constraint
    :math:`\\max_{\\|u\\|\\le1}\\|\\Theta^\\top(\\tilde Xu)_+\\|\\le\\alpha` has
    infinitely many constraints (Ergen & Pilanci, 2021). Column generation
    alternates a restricted master problem (the group lasso on the output
    weights of the current neurons) with an oracle that finds the most
    violated constraint at :math:`\\Theta = -\\nabla F`, adds it as a neuron,
    and scales :math:`\\Theta` by the oracle's certified value into a dual
    feasible point: every iteration certifies a lower bound on the optimum of
    the full problem over the oracle's domain, whatever the master's accuracy.
    With several outputs the oracle is the cone-constrained PCA of the
    copositive formulation (Sahiner et al., 2021). See
    :func:`skconvex.solvers.cutting_plane.cutting_plane`.

    References
    ----------
    T. Ergen and M. Pilanci. Convex geometry and duality of over-parameterized
    neural networks. JMLR 22(212), 2021, arXiv:2002.11219.

    A. Sahiner, T. Ergen, J. Pauly and M. Pilanci. Vector-output ReLU neural
    network problems are copositive programs: convex analysis of two layer
    networks and polynomial-time algorithms. ICLR 2021, arXiv:2012.13329.
"""


class _CuttingPlaneBase(ReLUNetworkMixin, BaseConvexNetwork):
    """Fit of the column-generation estimators."""

    _parameter_constraints = {
        "alpha": [Interval(Real, 0, None, closed="neither")],
        "oracle": [StrOptions({"auto", "exhaustive", "sampled"})],
        "n_arrangements": [Interval(Integral, 1, None, closed="left")],
        "max_faces": [Interval(Integral, 1, None, closed="left")],
        "fit_intercept": ["boolean"],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "max_new_neurons": [Interval(Integral, 1, None, closed="left")],
        "master_solver": [StrOptions({"clarabel", "fista"})],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def _make_oracle(self, X_aug, sample_weight):
        oracle = self.oracle
        if oracle != "sampled":
            estimate = estimate_faces(row_space(X_aug)[1])
            if oracle == "exhaustive" and estimate > self.max_faces:
                raise ValueError(
                    f"oracle='exhaustive': the arrangement of the data may have up to "
                    f"{estimate} faces, more than max_faces={self.max_faces}. Raise "
                    "max_faces, reduce the number of features or samples, or use "
                    "oracle='sampled'."
                )
            oracle = "exhaustive" if estimate <= self.max_faces else "sampled"
        if oracle == "exhaustive":
            return "exhaustive", ExhaustiveOracle(X_aug, max_faces=None), None
        arr = sample_arrangements(
            X_aug, self.n_arrangements, sample_weight=sample_weight, random_state=self.random_state
        )
        return "sampled", PatternOracle(X_aug, arr.patterns, gates=arr.gates), arr.gates

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the network by column generation.

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
        self.oracle_, oracle, self.gates_ = self._make_oracle(X_aug, sw)
        problem = ReLUNetworkProblem(X_aug, Y, datafit, sw, alpha, fit_intercept=self.fit_intercept)
        result = cutting_plane(
            problem,
            oracle,
            tol=self.tol,
            max_iter=self.max_iter,
            n_add=self.max_new_neurons,
            master_solver=self.master_solver,
            verbose=self.verbose,
        )
        _warn_if_not_converged(self, result.converged, result.info, result.n_iter, result.relative_gap)
        self._store_network(result.info["directions"], result.info["output"], result.intercept, X.shape[1])
        self.objective_ = float(result.objective)
        self.lower_bound_ = float(result.dual_objective)
        self.dual_gap_ = float(max(result.gap, 0.0))
        self.oracle_values_ = np.asarray(result.info["oracle_values"], dtype=np.float64)
        self.n_iter_ = int(result.n_iter)
        return self


class CuttingPlaneReLURegressor(RegressionTargets, RegressorMixin, _CuttingPlaneBase):
    __doc__ = (
        """Two-layer ReLU regressor trained by column generation, with a certified gap.

    Squared error on one or several outputs (neurons shared by the outputs),
    weight decay, and no activation patterns fixed in advance: neurons are
    added where the dual constraint is most violated until the duality gap of
    the full problem is certified below ``tol``.
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
    CuttingPlaneReLUClassifier : The classifier counterpart.
    CopositiveNetRegressor : Bounds from the copositive relaxation.
    ConvexGatedReLURegressor : Gated networks on sampled patterns.

    Notes
    -----"""
        + _NOTES
        + """
    Examples
    --------
    >>> import numpy as np
    >>> from skconvex import CuttingPlaneReLURegressor
    >>> x = np.linspace(-2, 2, 30)[:, None]
    >>> reg = CuttingPlaneReLURegressor(alpha=1e-2).fit(x, np.abs(x[:, 0]))
    >>> reg.oracle_, bool(reg.dual_gap_ <= 1e-3 * reg.objective_)
    ('exhaustive', True)
"""
    )

    _multi_output = True
    _y_numeric = True

    def __init__(
        self,
        alpha=1e-3,
        *,
        oracle="auto",
        n_arrangements=100,
        max_faces=20000,
        fit_intercept=True,
        tol=1e-3,
        max_iter=100,
        max_new_neurons=20,
        master_solver="clarabel",
        random_state=None,
        verbose=0,
    ):
        self.alpha = alpha
        self.oracle = oracle
        self.n_arrangements = n_arrangements
        self.max_faces = max_faces
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.max_iter = max_iter
        self.max_new_neurons = max_new_neurons
        self.master_solver = master_solver
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class CuttingPlaneReLUClassifier(ClassificationTargets, ClassifierMixin, _CuttingPlaneBase):
    __doc__ = (
        """Two-layer ReLU classifier trained by column generation, with a certified gap.

    Logistic loss for two classes, multinomial cross-entropy for more (one
    output per class, neurons shared by the classes), weight decay; neurons
    are added where the dual constraint is most violated until the duality
    gap of the full problem is certified below ``tol``.
"""
        + _COMMON_DOC
        + """
    loss : {"log_loss", "squared_error"}, default="log_loss"
        ``"log_loss"``: logistic / multinomial cross-entropy (gives
        ``predict_proba``); ``"squared_error"``: squared error on +-1 or
        one-hot targets.

    Attributes
    ----------"""
        + _COMMON_ATTRIBUTES
        + """    classes_ : ndarray of shape (n_classes,)
        Class labels.
    intercept_ : ndarray of shape (n_outputs,)
        Output intercept (one output for two classes, else one per class).

    See Also
    --------
    CuttingPlaneReLURegressor : The regressor counterpart.
    CopositiveNetClassifier : Bounds from the copositive relaxation.

    Notes
    -----"""
        + _NOTES
        + """
    Examples
    --------
    >>> import numpy as np
    >>> from skconvex import CuttingPlaneReLUClassifier
    >>> X = np.random.default_rng(0).standard_normal((40, 2))
    >>> y = (np.abs(X[:, 0]) > 0.7).astype(int)
    >>> clf = CuttingPlaneReLUClassifier(alpha=1e-2).fit(X, y)
    >>> clf.oracle_, clf.score(X, y) > 0.9
    ('exhaustive', True)
"""
    )

    _multi_output = False
    _y_numeric = False

    _parameter_constraints = {
        **_CuttingPlaneBase._parameter_constraints,
        "loss": [StrOptions({"log_loss", "squared_error"})],
    }

    def __init__(
        self,
        alpha=1e-3,
        *,
        oracle="auto",
        n_arrangements=100,
        max_faces=20000,
        fit_intercept=True,
        tol=1e-3,
        max_iter=100,
        max_new_neurons=20,
        master_solver="clarabel",
        random_state=None,
        verbose=0,
        loss="log_loss",
    ):
        self.alpha = alpha
        self.oracle = oracle
        self.n_arrangements = n_arrangements
        self.max_faces = max_faces
        self.fit_intercept = fit_intercept
        self.loss = loss
        self.tol = tol
        self.max_iter = max_iter
        self.max_new_neurons = max_new_neurons
        self.master_solver = master_solver
        self.random_state = random_state
        self.verbose = verbose
