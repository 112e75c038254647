"""Parallel three-layer ReLU networks (Ergen & Pilanci, 2021).

A group-:math:`\\ell_1` program over pairs of first- and second-layer patterns
with two families of cone constraints (or the gated relaxation); the program
is built by :func:`skconvex.programs.deep.three_layer_program`.
"""

from numbers import Integral

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions

from ..arrangements import (
    _split_levels,
    compute_subnetwork_patterns,
)
from ..networks import _parallel_three_layer_forward, _recover_three_layer
from ..programs.deep import three_layer_program
from ._base import (
    ClassificationTargets,
    RegressionTargets,
    _as_dtype,
    augment,
)
from ._deep_base import _SOLVER_DOC, _DeepReLUBase

__all__ = ["ConvexThreeLayerReLURegressor", "ConvexThreeLayerReLUClassifier"]


_THREE_DOC = """
    Parameters
    ----------
    alpha : float, default=1e-3
        Regularization strength. The objective is the **mean** loss (weighted
        by ``sample_weight``) plus ``alpha`` times the weight decay
        :math:`\\tfrac12\\sum_k \\|w_{{2k}}\\|^2 + \\|w_{{3k}}\\|^2` of the last two
        layers, the first layer of every sub-network having unit Frobenius
        norm (see Notes).{alpha_scale} ``alpha=0`` needs ``solver="cvxpy"``: the default augmented
        Lagrangian solver certifies only ``alpha > 0`` and raises a
        ValueError for ``alpha=0``.
    n_arrangements : int or tuple of (int, int), default=(10, 16)
        ``(n_first, n_subnetworks)``: extra first-layer Gaussian gates and
        random sub-networks sampled for the second-layer patterns (an int is
        the number of sub-networks, without extra gates). The first-layer
        patterns are those of the extra gates and of the units of the
        sampled sub-networks (:func:`~skconvex.sample_subnetworks`),
        deduplicated; each distinct second-layer pattern is one group.
    width : int, default=2
        First-layer units of each sampled sub-network (the sampling only:
        the fitted sub-networks have as many units as the program selects).
    gated : bool, default=False
        Solve the gated relaxation (fixed gates at both layers, no cone
        constraints: a group lasso) instead of the exact ReLU program.
    fit_intercept : bool, default=True
        Give every first-layer unit a bias (a ones column appended to ``X``,
        penalized with the unit's weights) and the output an unpenalized
        intercept. A first-layer unit active on every row then acts as a
        bias of the second layer.
"""

_THREE_ATTRIBUTES = """
    first_gates_ : ndarray of shape (n_features + fit_intercept, n_first_patterns)
        Gate of every first-layer pattern.
    subnetwork_gates_ : tuple of ndarray
        The sampled sub-networks defining the second-layer patterns:
        first-layer weights of shape ``(n_second_patterns, width, n_features +
        fit_intercept)`` and second-layer weights of shape
        ``(n_second_patterns, width)``.
    convex_weights_ : ndarray of shape (n_features + fit_intercept, n_columns, n_outputs)
        The convex solution; column ``((l * 2 + a) * n_first_patterns + i) * 2
        + s`` is :math:`q^{{s_3 s_1}}_{{l i}}` with :math:`s_3 = (+1, -1)[a]`,
        :math:`s_1 = (+1, -1)[s]` (exact), column ``l * n_first_patterns + i``
        is :math:`v_{{li}}` (gated).
    subnetworks_ : list of tuple
        ``(W1, w2, w3)`` of every recovered sub-network: first-layer weights
        of shape ``(n_features + fit_intercept, n_units)`` (biases in the last
        row when ``fit_intercept``, unit Frobenius norm), second-layer
        weights of shape ``(n_units,)`` and output weights of shape
        ``(n_outputs,)`` (one non-zero entry).
    first_layer_weights_ : ndarray of shape (n_units, n_features)
        Input weights of all units, sub-network after sub-network.
    first_layer_intercepts_ : ndarray of shape (n_units,)
        Biases of the units (zeros when ``fit_intercept=False``).
    second_layer_weights_ : ndarray of shape (n_units,)
        Weight of every unit in its sub-network's second-layer unit.
    unit_subnetwork_ : ndarray of shape (n_units,)
        Sub-network of every unit.
    output_weights_ : ndarray of shape (n_subnetworks, n_outputs)
        Output weights of the sub-networks.
    n_subnetworks_ : int
        Number of recovered sub-networks (non-zero groups).
    objective_ : float
        Objective of the convex program at the solution.
    nonconvex_objective_ : float
        Objective of the recovered network on the training data (equal to
        ``objective_``).
    dual_gap_ : float
        Certified duality gap: an upper bound on ``objective_`` minus the
        optimum of the program with these patterns, in float64.
    constraint_violation_ : float
        Relative violation of the cone constraints at the solution (0 up to
        rounding; 0 for the gated program).
    solver_ : str
        The solver that ran (``"auto"`` resolved).
    n_iter_ : int
        Solver iterations.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column names.
"""

_THREE_NOTES = """
    **Network.** :math:`K` parallel sub-networks, each with :math:`m_1`
    first-layer ReLU units and one second-layer ReLU unit,

    .. math:: f(x) = \\sum_{{k=1}}^K \\big((\\tilde x^\\top W_{{1k}})_+ w_{{2k}}\\big)_+ w_{{3k}} + b,
              \\qquad \\tilde x = (x, 1),

    trained on :math:`\\sum_j s_j \\ell(f(x_j), y_j) + \\tfrac{{\\alpha}}{{2}}
    \\sum_k \\|w_{{2k}}\\|_2^2 + w_{{3k}}^2` subject to :math:`\\|W_{{1k}}\\|_F \\le 1`
    (weights :math:`s` summing to one). **This normalization is what makes
    the program below exact**; it is our choice (the design notes' open
    item O4: the paper's exact regularizer could not be checked): plain
    weight decay on all three layers is, after rescaling,
    :math:`\\tfrac{{3\\alpha}}{{2}}\\sum_k (\\|W_{{1k}}\\|_F\\|w_{{2k}}\\||w_{{3k}}|)^{{2/3}}`,
    which is not convexified this way.

    **Derivation** (ours, proved by the tests). Rescaling :math:`(w_{{2k}},
    w_{{3k}}) \\to (t w_{{2k}}, w_{{3k}}/t)` turns the penalty into
    :math:`\\alpha\\sum_k \\|w_{{2k}}\\|_2|w_{{3k}}|`. For units with patterns
    :math:`D_{{1i}}` and second-layer pattern :math:`D_{{2l}}`, the variables
    :math:`q = |w_{{3k}}||w_{{2kj}}| w_{{1kj}}` (merged per pattern and sign,
    which only lowers the penalty) satisfy
    :math:`\\sum_j\\|q_j\\| \\le |w_{{3k}}|\\|w_{{2k}}\\|\\|W_{{1k}}\\|_F` (Cauchy-Schwarz),
    and sub-networks with the same :math:`(D_{{2l}}, \\operatorname{{sign}} w_3)` merge
    too. The training problem over networks whose patterns are among the
    sampled ones is therefore exactly

    .. math:: \\min_q\\ \\sum_j s_j \\ell\\Big(\\sum_{{l, s_3}} s_3 D_{{2l}}\\sum_i D_{{1i}}
              \\tilde X (q^{{s_3+}}_{{li}} - q^{{s_3-}}_{{li}}) + b,\\ y\\Big)_j
              + \\alpha\\sum_{{l,s_3,i,s_1}} \\|q^{{s_3 s_1}}_{{li}}\\|_2

    subject to two families of cone constraints,
    :math:`(2D_{{1i}} - I)\\tilde X q^{{s_3s_1}}_{{li}} \\ge 0` (first-layer
    patterns) and :math:`(2D_{{2l}} - I)\\sum_i D_{{1i}}\\tilde X(q^{{s_3+}}_{{li}} -
    q^{{s_3-}}_{{li}}) \\ge 0` (second-layer patterns) — a group-:math:`\\ell_1`
    program over the features :math:`D_{{2l}}D_{{1i}}\\tilde X`. Every group
    :math:`(l, s_3)` with :math:`S = \\sum_{{i,s_1}}\\|q\\| > 0` becomes a
    sub-network with units :math:`q/\\sqrt{{\\|q\\|S}}`, second-layer weights
    :math:`s_1\\sqrt{{\\|q\\|}}` and output weight :math:`s_3\\sqrt S`: then
    :math:`\\|W_1\\|_F = 1`, the penalty is :math:`\\alpha S` and the network
    reproduces the convex predictions on the training data.
    With several outputs each sub-network feeds one output (one program
    per output column; the decoupled extension of Pilanci & Ergen, 2020),
    i.e. the penalty on :math:`w_{{3k}} \\in \\mathbb{{R}}^C` is
    :math:`\\|w_{{3k}}\\|_1^2`.

    **Gated relaxation** (``gated=True``): fixed gates at both layers (the
    sampled first-layer gates and sub-networks), no cone constraints: the
    group lasso on :math:`D_{{2l}}D_{{1i}}\\tilde X`, exact for the gated network
    :math:`\\sum_{{l}} 1[h_l(x) \\ge 0] \\sum_i 1[\\tilde x^\\top g_i \\ge 0]\\,
    \\tilde x^\\top W_{{1}} \\dots` with the same normalization, and a lower
    bound of the exact program on the same patterns.

    The exact program has :math:`4 P_1 P_2` columns of
    ``n_features + 1`` variables and two cone families with
    :math:`n(4P_1P_2 + 2P_2)` rows: the Newton solver factorizes one
    :math:`2P_1(d+1)`-square block per group, so keep :math:`P_1` moderate
    for many features (or use ``gated=True``).
    {vector_outputs}
    References
    ----------
    T. Ergen and M. Pilanci. Global optimality beyond two layers: training
    deep ReLU networks via convex programs. ICML 2021, arXiv:2110.05518.

    M. Pilanci and T. Ergen. Neural networks are convex regularizers. ICML
    2020, arXiv:2002.10553.
"""


class _ThreeLayerBase(_DeepReLUBase):
    """Fit, recovery and prediction of parallel three-layer networks."""

    _parameter_constraints = {
        **_DeepReLUBase._parameter_constraints,
        "n_arrangements": [Interval(Integral, 1, None, closed="left"), tuple],
        "width": [Interval(Integral, 1, None, closed="left")],
    }

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the network by solving its convex program.

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
        n_first, n_sub = _split_levels(self.n_arrangements)
        solver, options = self._solver_plan()
        X, y, sw = self._validate_fit_data(
            X,
            y,
            sample_weight,
            multi_output=self._multi_output,
            y_numeric=self._y_numeric,
        )
        Y, datafit = self._encode_targets(y)
        dtype = _as_dtype(self.dtype, X)
        X_aug = augment(X.astype(dtype, copy=False), self.fit_intercept)
        arr = self._subnetworks(X_aug, sw, n_first, n_sub, 3, self.width)
        self._sampled = {
            "gates": arr.gates,
            "leaf_weights": arr.leaf_weights,
            "edge_weights": arr.edge_weights,
        }
        problem, layout = three_layer_program(
            X_aug,
            arr,
            Y,
            datafit,
            sw,
            self.alpha * self._alpha_scale(Y, sw),
            gated=self.gated,
            fit_intercept=self.fit_intercept,
            dtype=dtype,
        )
        result = self._solve(problem, solver, options)
        net = _recover_three_layer(result.coef, layout["P1"], layout["P2"], self.gated)
        W = np.asarray(result.coef, dtype=np.float64).copy()
        d, B, C = W.shape
        if net["zeroed"].any():
            # Columns dropped as numerically zero are zeroed in the stored
            # solution too, so that objective_ and the network agree.
            Wr = W.reshape(d, *net["zeroed"].shape)
            Wr[:, net["zeroed"]] = 0.0
            W = Wr.reshape(d, B, C)
        n_features = X.shape[1]
        self.first_gates_ = layout["gates"]
        self.subnetwork_gates_ = (layout["leaf_weights"], layout["edge_weights"])
        self.convex_weights_ = W
        hidden = net["hidden"]
        self.first_layer_weights_ = hidden[:, :n_features]
        self.first_layer_intercepts_ = (
            hidden[:, n_features] if self.fit_intercept else np.zeros(len(hidden))
        )
        self.second_layer_weights_ = net["second"]
        self.unit_subnetwork_ = net["unit_subnetwork"]
        self.output_weights_ = net["output"]
        self.n_subnetworks_ = int(net["output"].shape[0])
        self._unit_gate = net["unit_pattern"]
        self._subnetwork_gate = net["subnetwork_pattern"]
        self.subnetworks_ = [
            (
                hidden[self.unit_subnetwork_ == k].T,
                self.second_layer_weights_[self.unit_subnetwork_ == k],
                self.output_weights_[k],
            )
            for k in range(self.n_subnetworks_)
        ]
        X64 = np.asarray(problem.operator.X, dtype=np.float64)

        def objective_net(b):
            out = self._forward_augmented(X64, b)
            decay = 0.5 * float(np.sum(net["second"] ** 2) + np.sum(net["output"] ** 2))
            return (
                problem.datafit.value(out, problem.y, problem.sample_weight)
                + problem.alpha * decay
            )

        b = self._finish(problem, result, W, objective_net)
        self._set_intercept(b)
        return self

    def _forward_augmented(self, X_aug, intercept):
        hidden = self.first_layer_weights_
        if self.fit_intercept:
            hidden = np.column_stack([hidden, self.first_layer_intercepts_])
        hidden = hidden.astype(X_aug.dtype, copy=False)
        unit_gates = sub_gates = None
        if self.gated:
            unit_gates = self.first_gates_[:, self._unit_gate].astype(
                X_aug.dtype, copy=False
            )
            leaves, edges = self.subnetwork_gates_
            top = compute_subnetwork_patterns(X_aug, leaves, (edges,))[-1][:, :, 0]
            sub_gates = top[:, self._subnetwork_gate]
        return _parallel_three_layer_forward(
            X_aug,
            hidden,
            self.second_layer_weights_.astype(X_aug.dtype, copy=False),
            self.unit_subnetwork_,
            self.output_weights_.astype(X_aug.dtype, copy=False),
            np.atleast_1d(intercept),
            unit_gates,
            sub_gates,
        )

    def _network_output(self, X):
        return self._forward_augmented(augment(X, self.fit_intercept), self.intercept_)


_VECTOR = """
    **Several outputs** ({what}): every sub-network feeds a single output
    (decoupled program), see the derivation above.
"""


class ConvexThreeLayerReLURegressor(RegressionTargets, RegressorMixin, _ThreeLayerBase):
    __doc__ = (
        """Parallel three-layer ReLU regressor trained to global optimality.

    Squared error with weight decay on parallel three-layer ReLU
    sub-networks, solved as the exact convex program of Ergen & Pilanci
    (2021): a group-:math:`\\ell_1` program over pairs of first- and
    second-layer activation patterns with two families of cone constraints,
    with a certified duality gap; every sub-network is recovered and the
    network predicts.
"""
        + _THREE_DOC.format(
            alpha_scale=" It is multiplied by the standard deviation of ``y``."
        ).rstrip("\n")
        + """
    loss : {"squared_error"}, default="squared_error"
        Data-fitting term: half the squared error, averaged over samples."""
        + _SOLVER_DOC.format(working_set=" with working sets").rstrip("\n")
        + """

    Attributes
    ----------"""
        + _THREE_ATTRIBUTES.format()
        + """    n_outputs_ : int
        Number of outputs.
    intercept_ : float or ndarray of shape (n_outputs,)
        Output intercept (a float for one-dimensional ``y``).

    See Also
    --------
    ConvexThreeLayerReLUClassifier : The classifier counterpart.
    PathRegularizedReLURegressor : Deeper sub-networks with path regularization.
    ConvexReLURegressor : The two-layer exact program.

    Notes
    -----"""
        + _THREE_NOTES.format(
            vector_outputs=_VECTOR.format(what="multi-output regression")
        )
        + """
    Examples
    --------
    >>> import numpy as np
    >>> from skconvex import ConvexThreeLayerReLURegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((40, 2))
    >>> y = np.abs(X[:, 0]) - np.maximum(X[:, 1], 0)
    >>> reg = ConvexThreeLayerReLURegressor(n_arrangements=(4, 8), random_state=0).fit(X, y)
    >>> bool(abs(reg.nonconvex_objective_ - reg.objective_) <= 1e-8 * reg.objective_)
    True
"""
    )

    _multi_output = True
    _y_numeric = True

    _parameter_constraints = {
        **_ThreeLayerBase._parameter_constraints,
        "loss": [StrOptions({"squared_error"})],
    }

    def __init__(
        self,
        alpha=1e-3,
        *,
        n_arrangements=(10, 16),
        width=2,
        gated=False,
        fit_intercept=True,
        loss="squared_error",
        solver="auto",
        solver_options=None,
        tol=1e-4,
        max_iter=1000,
        warm_start=False,
        dtype=None,
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.alpha = alpha
        self.n_arrangements = n_arrangements
        self.width = width
        self.gated = gated
        self.fit_intercept = fit_intercept
        self.loss = loss
        self.solver = solver
        self.solver_options = solver_options
        self.tol = tol
        self.max_iter = max_iter
        self.warm_start = warm_start
        self.dtype = dtype
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class ConvexThreeLayerReLUClassifier(
    ClassificationTargets, ClassifierMixin, _ThreeLayerBase
):
    __doc__ = (
        """Parallel three-layer ReLU classifier trained to global optimality.

    Logistic loss for two classes, multinomial cross-entropy for more (one
    output per class), with weight decay on parallel three-layer ReLU
    sub-networks, solved as the exact convex program of Ergen & Pilanci
    (2021) with a certified duality gap; every sub-network is recovered and
    the network predicts.
"""
        + _THREE_DOC.format(alpha_scale="").rstrip("\n")
        + """
    loss : {"log_loss", "squared_error"}, default="log_loss"
        ``"log_loss"``: logistic / multinomial cross-entropy (gives
        ``predict_proba``); ``"squared_error"``: squared error on +-1 or
        one-hot targets."""
        + _SOLVER_DOC.format(working_set=" with working sets").rstrip("\n")
        + """

    Attributes
    ----------"""
        + _THREE_ATTRIBUTES.format()
        + """    classes_ : ndarray of shape (n_classes,)
        Class labels.
    intercept_ : ndarray of shape (n_outputs,)
        Output intercept (one output for two classes, else one per class).

    See Also
    --------
    ConvexThreeLayerReLURegressor : The regressor counterpart.
    PathRegularizedReLUClassifier : Deeper sub-networks with path regularization.
    ConvexReLUClassifier : The two-layer exact program.

    Notes
    -----"""
        + _THREE_NOTES.format(
            vector_outputs=_VECTOR.format(
                what="more than two classes, where the multinomial loss couples the outputs"
            )
        )
        + """
    Examples
    --------
    >>> import numpy as np
    >>> from skconvex import ConvexThreeLayerReLUClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((40, 2))
    >>> y = X[:, 0] * X[:, 1] > 0
    >>> clf = ConvexThreeLayerReLUClassifier(n_arrangements=(4, 8), random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 2)
"""
    )

    _multi_output = False
    _y_numeric = False

    _parameter_constraints = {
        **_ThreeLayerBase._parameter_constraints,
        "loss": [StrOptions({"log_loss", "squared_error"})],
    }

    def __init__(
        self,
        alpha=1e-3,
        *,
        n_arrangements=(10, 16),
        width=2,
        gated=False,
        fit_intercept=True,
        loss="log_loss",
        solver="auto",
        solver_options=None,
        tol=1e-4,
        max_iter=1000,
        warm_start=False,
        dtype=None,
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.alpha = alpha
        self.n_arrangements = n_arrangements
        self.width = width
        self.gated = gated
        self.fit_intercept = fit_intercept
        self.loss = loss
        self.solver = solver
        self.solver_options = solver_options
        self.tol = tol
        self.max_iter = max_iter
        self.warm_start = warm_start
        self.dtype = dtype
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose


# ---------------------------------------------------------------------------
# Path-regularized estimators
# ---------------------------------------------------------------------------
