"""Two-layer ReLU networks with batch normalization, trained through their exact convex program.

A batch-normalized neuron :math:`x \\mapsto (\\gamma\\,(x^\\top w - \\mu_w)/\\sigma_w +
\\beta)_+` only depends on the direction of :math:`w` in the whitened
coordinates of the training batch. With the weighted mean :math:`\\bar x` and
the compact SVD :math:`S^{1/2}(X - \\mathbf{1}\\bar x^\\top) = U\\Sigma V^\\top`
(:math:`S` the normalized sample weights), the whitened data
:math:`Z = (X - \\mathbf{1}\\bar x^\\top)V\\Sigma^{-1}` has
:math:`Z^\\top S Z = I`, and on the batch

.. math:: \\mathrm{BN}_{\\gamma,\\beta}(Xw) = \\gamma\\, Z\\hat z + \\beta\\mathbf{1}
          = [Z\\ \\mathbf{1}]\\, q, \\qquad
          \\hat z = \\frac{\\Sigma V^\\top w}{\\|\\Sigma V^\\top w\\|},\\quad
          q = (\\gamma\\hat z, \\beta),\\quad \\|q\\|^2 = \\gamma^2 + \\beta^2 .

So the BN network trained with weight decay on :math:`(\\gamma, \\beta, a)` is
*exactly* a plain two-layer ReLU network without hidden bias on the lifted
data :math:`[Z\\ \\mathbf{1}]` (Ergen, Sahiner, Ozturkler, Pauly, Mardani &
Pilanci, 2022), and the exact program of Pilanci & Ergen (2020) on that data
(:mod:`skconvex.models.relu`) trains it to global optimality.
"""

from numbers import Integral

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin, _fit_context
from sklearn.utils._param_validation import Interval, RealNotInt, StrOptions

from ..networks import batchnorm_relu_forward
from ..programs.cones import ConeConstrainedProblem
from ..programs.operators import PatternOperator
from ..programs.penalties import ColumnGroupL2
from ..solvers import SolveResult
from ._base import ClassificationTargets, RegressionTargets, _as_dtype
from .relu import _ReLUBase

__all__ = [
    "ConvexBatchNormReLURegressor",
    "ConvexBatchNormReLUClassifier",
    "batchnorm_closed_form",
]


# --------------------------------------------------------------------------
# problem pieces
# --------------------------------------------------------------------------


class _Lifting:
    """Weighted centring, whitening and lifting of the training batch.

    ``features(X)`` is :math:`[Z\\,\\mathrm{diag}(c)\\ \\mathbf{1}]` with the
    whitened coordinates :math:`Z = (X - \\bar x)V_k\\Sigma_k^{-1}` and column
    scales :math:`c` (ones, or :math:`\\sigma_k/\\sigma_1` for the implicit
    regularization); the convex program's columns :math:`u'` relate to the
    BN lifted weights by :math:`q = (c \\odot u'_{1:k},\\ u'_{k+1})`.
    """

    def __init__(self, X, sample_weight, rank, implicit):
        X = np.asarray(X, dtype=np.float64)
        s = np.asarray(sample_weight, dtype=np.float64)
        self.mean = s @ X
        centred = X - self.mean
        pos = s > 0
        A = np.sqrt(s[pos])[:, None] * centred[pos]
        _, sv, Vt = np.linalg.svd(A, full_matrices=False)
        # A fixed sign per direction (largest entry positive) makes the lifted
        # data, hence the patterns of given gates, independent of how the
        # SVD resolves signs (repeated rows, another BLAS).
        Vt *= np.where(Vt[np.arange(len(Vt)), np.argmax(np.abs(Vt), axis=1)] < 0, -1.0, 1.0)[:, None]
        tol = sv[0] * max(A.shape) * np.finfo(np.float64).eps if sv.size else 0.0
        full = int(np.count_nonzero(sv > tol)) if sv.size and sv[0] > 0 else 0
        self.full_rank = full
        self.rank = _truncation(rank, sv[:full])
        k = self.rank
        self.singular_values = sv[:k].copy()
        self.components = Vt[:k].T / sv[:k] if k else np.zeros((X.shape[1], 0))
        if implicit and k:
            self.column_scale = sv[:k] / sv[0]
        else:
            self.column_scale = np.ones(k)
        # Repeated rows share their features: the closed form needs the
        # distinct rows to be as many as the lifted dimension.
        self.n_distinct = int(len(np.unique(X[pos], axis=0))) if pos.any() else 0

    @property
    def penalty_weights(self):
        """:math:`m_k = 1/c_k`: the penalty on whitened direction ``k``."""
        return 1.0 / self.column_scale

    def features(self, X, dtype=np.float64):
        Z = (np.asarray(X, dtype=np.float64) - self.mean) @ self.components
        Z *= self.column_scale
        return np.ascontiguousarray(np.column_stack([Z, np.ones(len(Z))]), dtype=dtype)


def _truncation(rank, sv):
    """Number of kept components: all, a count, or a fraction of the variance."""
    r = len(sv)
    if rank is None or r == 0:
        return r
    if isinstance(rank, Integral) and not isinstance(rank, bool):
        return min(int(rank), r)
    energy = np.cumsum(sv**2) / np.sum(sv**2)
    # Rounding may leave the last cumulative value a hair below 1.
    return min(int(np.searchsorted(energy, float(rank) * (1 - 1e-12))) + 1, r)


def _bisect_intercept(Y, s, alpha, n_iter=200):
    """Minimize the convex :math:`g(b) = h(\\|(y-b)_+\\|_s) + h(\\|(b-y)_+\\|_s)` per column by bisection."""
    lo, hi = Y.min(axis=0).copy(), Y.max(axis=0).copy()

    def slope(b):
        up = np.maximum(Y - b, 0)
        down = np.maximum(b - Y, 0)
        t_up = np.sqrt(s @ up**2)
        t_down = np.sqrt(s @ down**2)
        f_up = np.minimum(1.0, np.divide(alpha, t_up, out=np.ones_like(t_up), where=t_up > 0))
        f_down = np.minimum(1.0, np.divide(alpha, t_down, out=np.ones_like(t_down), where=t_down > 0))
        return -f_up * (s @ up) + f_down * (s @ down)

    for _ in range(n_iter):
        mid = 0.5 * (lo + hi)
        neg = slope(mid) < 0
        lo = np.where(neg, mid, lo)
        hi = np.where(neg, hi, mid)
        if np.all(hi - lo <= 4 * np.finfo(np.float64).eps * np.maximum(1.0, np.abs(mid))):
            break
    return 0.5 * (lo + hi)


def batchnorm_closed_form(Y, sample_weight, alpha, *, fit_intercept=True):
    """Globally optimal outputs of a BN network whose lifted data is square (high-dimensional regime).

    When the whitened lifted data :math:`[Z\\ \\mathbf{1}]` restricted to the
    rows of positive weight is square (the weighted-centred data has rank
    ``n_positive - 1``, e.g. ``n_samples <= n_features`` in general position),
    :math:`S^{1/2}[Z\\ \\mathbf{1}]` is orthogonal: every vector
    :math:`p = [Z\\ \\mathbf{1}]q` is reachable and
    :math:`\\|q\\| = \\|p\\|_s = (\\sum_i s_i p_i^2)^{1/2}`. The squared-loss
    program over networks of any width then reduces, per output, to

    .. math:: \\min_{b,\\ p, m \\ge 0}\\ \\tfrac12\\|y - b - p + m\\|_s^2
              + \\alpha(\\|p\\|_s + \\|m\\|_s),

    (any set of neurons merges into one non-negative "positive" and one
    "negative" neuron without raising the penalty, by the triangle
    inequality), whose solution is the group soft-thresholding of the
    positive and negative parts of the residual

    .. math:: p = \\Big(1 - \\frac{\\alpha}{\\|(y-b)_+\\|_s}\\Big)_+ (y-b)_+,\\qquad
              m = \\Big(1 - \\frac{\\alpha}{\\|(b-y)_+\\|_s}\\Big)_+ (b-y)_+,

    with :math:`b` the minimizer of the convex scalar function
    :math:`g(b) = h(\\|(y-b)_+\\|_s) + h(\\|(b-y)_+\\|_s)`,
    :math:`h(t) = t^2/2` for :math:`t \\le \\alpha` and
    :math:`\\alpha t - \\alpha^2/2` beyond (found by bisection on its
    monotone derivative; :math:`b = 0` without intercept). Both neurons are
    active on every training sample.

    Parameters
    ----------
    Y : ndarray of shape (n_samples, n_outputs)
        Targets of the rows of positive weight.
    sample_weight : ndarray of shape (n_samples,)
        Positive weights summing to one.
    alpha : float
        Penalty strength (already scaled).
    fit_intercept : bool, default=True
        Whether the output intercept is free.

    Returns
    -------
    positive : ndarray of shape (n_samples, n_outputs)
        Output of the positive neuron :math:`p \\ge 0` on the training rows.
    negative : ndarray of shape (n_samples, n_outputs)
        Output of the negative neuron :math:`m \\ge 0`.
    intercept : ndarray of shape (n_outputs,)
        Optimal intercept :math:`b`.
    value : float
        Optimal objective :math:`\\sum_c g_c(b_c)`.

    References
    ----------
    T. Ergen, A. Sahiner, B. Ozturkler, J. Pauly, M. Mardani and M. Pilanci.
    Demystifying batch normalization in ReLU networks: equivalent convex
    optimization models and implicit regularization. ICLR 2022,
    arXiv:2103.01499 (which states that closed forms exist in this regime;
    the derivation here is ours).

    Examples
    --------
    >>> import numpy as np
    >>> from skconvex.models.batchnorm import batchnorm_closed_form
    >>> y = np.array([[1.0], [-1.0], [3.0]])
    >>> p, m, b, value = batchnorm_closed_form(y, np.full(3, 1 / 3), 0.0, fit_intercept=False)
    >>> (p - m).ravel().tolist()
    [1.0, -1.0, 3.0]
    """
    Y = np.asarray(Y, dtype=np.float64)
    s = np.asarray(sample_weight, dtype=np.float64)
    alpha = float(alpha)
    if fit_intercept:
        b = _bisect_intercept(Y, s, alpha)
    else:
        b = np.zeros(Y.shape[1])
    up = np.maximum(Y - b, 0)
    down = np.maximum(b - Y, 0)
    t_up = np.sqrt(s @ up**2)
    t_down = np.sqrt(s @ down**2)
    shrink_up = np.maximum(1 - np.divide(alpha, t_up, out=np.full_like(t_up, np.inf), where=t_up > 0), 0)
    shrink_down = np.maximum(
        1 - np.divide(alpha, t_down, out=np.full_like(t_down, np.inf), where=t_down > 0), 0
    )

    def h(t):
        return np.where(t <= alpha, 0.5 * t**2, alpha * t - 0.5 * alpha**2)

    value = float(np.sum(h(t_up) + h(t_down)))
    return up * shrink_up, down * shrink_down, b, value


# --------------------------------------------------------------------------
# estimators
# --------------------------------------------------------------------------


class _BatchNormBase(_ReLUBase):
    """The exact ReLU program on whitened, lifted data, and the BN network it encodes."""

    # The whitening and lifting are dense factorizations of X.
    _accept_sparse = False

    _parameter_constraints = {
        **_ReLUBase._parameter_constraints,
        "solver": [StrOptions({"auto", "closed_form", "auglag", "cvxpy"})],
        "rank": [None, Interval(Integral, 1, None, closed="left"), Interval(RealNotInt, 0, 1, closed="right")],
        "implicit_regularization": ["boolean"],
    }

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the batch-normalized network by solving its exact convex program.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (the batch whose statistics the BN layer uses).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Row weights; the loss and the batch statistics are their
            weighted means (so a weight of 2 equals a repeated row).

        Returns
        -------
        self : object
            Fitted estimator.
        """
        problem, gates, signs, n_features = self._build_problem(X, y, sample_weight)
        if self._lift.closed_form:
            result, solver = self._closed_form_result(problem), "closed_form"
        else:
            result, solver = self._solve_problem(problem)
        self.solver_ = solver
        self._store_solution(problem, result, gates, signs, n_features)
        del self._lift
        return self

    def _solver_plan(self, datafit):
        if self.solver == "closed_form":
            if self.solver_options:
                raise ValueError(
                    "solver='closed_form' takes no solver_options; got "
                    f"{sorted(self.solver_options)}."
                )
            return "closed_form", {}
        return super()._solver_plan(datafit)

    def _closed_form_reason(self, datafit, lift):
        """Why the closed form does not apply (None when it does)."""
        if not getattr(datafit, "quadratic", False):
            return f"loss={self.loss!r} (it needs the squared error)"
        if self.implicit_regularization:
            return "implicit_regularization=True"
        if lift.rank < lift.full_rank:
            return f"rank={self.rank!r} truncates the data"
        if lift.rank + 1 != lift.n_distinct:
            return (
                f"the centred data has rank {lift.rank}, not n_distinct_samples - 1 = "
                f"{lift.n_distinct - 1} (it needs n_samples <= n_features + 1 in general position)"
            )
        return None

    def _build_problem(self, X, y, sample_weight):
        """Validate, whiten and lift the data, and assemble the exact program on it."""
        X, y, sw = self._validate_fit_data(
            X, y, sample_weight, multi_output=self._multi_output, y_numeric=self._y_numeric
        )
        Y, datafit = self._encode_targets(y)
        if self.solver == "closed_form":
            self._solver_plan(datafit)  # validates solver_options
        dtype = _as_dtype(self.dtype, X)
        lift = _Lifting(X, sw, self.rank, self.implicit_regularization)
        reason = self._closed_form_reason(datafit, lift)
        if self.solver == "closed_form" and reason is not None:
            raise ValueError(
                "solver='closed_form' applies to the squared error on data whose centred "
                f"rank is n_samples - 1, without truncation or implicit regularization; here {reason}. "
                "Use solver='auto'."
            )
        lift.closed_form = reason is None and self.solver in ("auto", "closed_form")
        lift.X = X
        U = lift.features(X, dtype)
        k1 = U.shape[1]
        if lift.closed_form:
            # One pattern suffices: both optimal neurons are active on every row.
            gates = np.eye(k1, 1, -(k1 - 1), dtype=dtype)
            patterns = np.ones((len(U), 1), dtype=bool)
        else:
            gates, patterns = self._arrangements(U, sw)
            gates, patterns = _with_constant_gate(U, sw, gates, patterns)
        P = gates.shape[1]
        signs = np.concatenate([np.ones(P), -np.ones(P)])
        operator = PatternOperator(
            U, np.hstack([patterns, patterns]), signs=signs, n_outputs=Y.shape[1], dtype=dtype
        )
        problem = ConeConstrainedProblem(
            operator,
            datafit,
            ColumnGroupL2(),
            Y,
            sw,
            self.alpha * self._alpha_scale(Y, sw),
            interior=np.hstack([gates, gates]),
            fit_intercept=self.fit_intercept,
        )
        self._lift = lift
        return problem, gates, signs, k1

    def _closed_form_result(self, problem):
        """The closed form as a point of the one-pattern program, certified for all networks."""
        problem = problem.astype(np.float64)
        U = problem.operator.X
        s = problem.sample_weight
        pos = s > 0
        # Repeated rows are one row of summed weight and weighted-mean target
        # (the squared loss splits that way up to a constant).
        rows, group = np.unique(U[pos], axis=0, return_inverse=True)
        group = group.ravel()
        weight = np.bincount(group, weights=s[pos])
        Y = np.stack(
            [np.bincount(group, weights=s[pos] * yc) for yc in problem.y[pos].T], axis=1
        ) / weight[:, None]
        p, m, b, _ = batchnorm_closed_form(Y, weight, problem.alpha, fit_intercept=problem.fit_intercept)
        # S^{1/2} U is orthogonal on the distinct rows, so q = U^T S p maps p back.
        Us = rows * weight[:, None]
        coef = np.stack([Us.T @ p, Us.T @ m], axis=1)
        value, b, grad = problem.smooth(problem.operator.forward(coef), b)
        objective = value + problem.alpha * problem.penalty.value(coef)
        # Dual norm over every neuron of every width: for ||q|| <= 1 the
        # features (Uq)_+ are exactly the non-negative p (one value per
        # distinct row) with ||p||_S <= 1.
        theta = np.stack([np.bincount(group, weights=gc) for gc in -grad[pos].T], axis=1)
        r = theta / weight[:, None]
        dn = max(
            float(np.max(np.sqrt(weight @ np.maximum(r, 0) ** 2), initial=0.0)),
            float(np.max(np.sqrt(weight @ np.maximum(-r, 0) ** 2), initial=0.0)),
        )
        c_max = np.inf if dn == 0 else problem.alpha / dn
        dual = problem.datafit.best_dual(-grad, problem.y, s, c_max)
        return SolveResult(
            coef=coef,
            intercept=b,
            objective=objective,
            dual_objective=dual,
            n_iter=1,
            converged=True,
            solver="closed_form",
        )

    def _store_solution(self, problem, result, gates, signs, n_features):
        problem, hidden, output, b = self._store_convex_solution(problem, result, gates, signs)
        lift = self._lift
        k = lift.rank
        q = hidden.copy()
        q[:, :k] *= lift.column_scale
        gamma = np.linalg.norm(q[:, :k], axis=1)
        zhat = np.divide(q[:, :k], gamma[:, None], out=np.zeros_like(q[:, :k]), where=gamma[:, None] > 0)
        self.mean_ = lift.mean
        self.components_ = lift.components
        self.singular_values_ = lift.singular_values
        self.rank_ = k
        self.penalty_weights_ = lift.penalty_weights
        self.hidden_weights_ = zhat @ lift.components.T
        # The batch statistics of x^T w: mean_ @ w and ||Sigma V^T w|| = ||zhat||.
        self.bn_mean_ = self.hidden_weights_ @ lift.mean
        self.bn_std_ = np.linalg.norm(zhat, axis=1)
        self.gamma_ = gamma
        self.beta_ = q[:, k]
        self.output_weights_ = output
        out = batchnorm_relu_forward(
            lift.X.astype(np.float64),
            self.hidden_weights_,
            self.bn_mean_,
            self.bn_std_,
            self.gamma_,
            self.beta_,
            output,
            b,
        )
        decay = 0.5 * float(
            np.sum(gamma**2 * np.sum((zhat * lift.penalty_weights) ** 2, axis=1))
            + np.sum(self.beta_**2)
            + np.sum(output**2)
        )
        self.nonconvex_objective_ = float(
            problem.datafit.value(out, problem.y, problem.sample_weight) + problem.alpha * decay
        )

    # ------------------------------------------------------------ predict
    def _network_output(self, X):
        return batchnorm_relu_forward(
            X,
            self.hidden_weights_,
            self.bn_mean_,
            self.bn_std_,
            self.gamma_,
            self.beta_,
            self.output_weights_,
            np.atleast_1d(self.intercept_),
        )


def _with_constant_gate(U, sample_weight, gates, patterns):
    """Add the all-ones pattern (gate on the ones column) if the sampled gates missed it.

    Neurons of this pattern are active on every training row: they carry the
    linear part of the network, and in the high-dimensional regime they are
    the whole optimum (see :func:`~skconvex.models.batchnorm.batchnorm_closed_form`).
    """
    pos = sample_weight > 0
    if patterns.shape[1] and patterns[pos].all(axis=0).any():
        return gates, patterns
    k1 = U.shape[1]
    gate = np.zeros((k1, 1), dtype=gates.dtype)
    gate[-1] = 1
    return np.hstack([gates, gate]), np.hstack([patterns, np.ones((len(U), 1), dtype=bool)])


_COMMON_PARAMS = """
    Parameters
    ----------
    alpha : float, default=1e-2
        Weight-decay strength on :math:`(\\gamma_j, \\beta_j, a_j)`. The
        objective is the **mean** loss (weighted by ``sample_weight``) plus
        ``alpha`` times :math:`\\tfrac12\\sum_j \\gamma_j^2 + \\beta_j^2 +
        \\|a_j\\|^2`.{alpha_scale} ``alpha=0`` needs ``solver="cvxpy"``: the default augmented
        Lagrangian solver certifies only ``alpha > 0`` and raises a
        ValueError for ``alpha=0``.
    n_arrangements : int, default=50
        Number of gates sampled on the whitened, lifted data; each distinct
        activation pattern gives two convex columns per output. The all-ones
        pattern (neurons active on every training sample) is always added.
    rank : int, float or None, default=None
        Whitened directions kept. None keeps all (the numerical rank of the
        centred data); an int keeps that many principal directions; a float
        in (0, 1] keeps the fewest whose variance reaches that fraction. A
        truncated fit solves the program restricted to BN networks whose
        first-layer weights lie in the kept principal subspace; its network
        is an exact BN network, and on the same activation patterns its
        optimum bounds the untruncated one from above.
    implicit_regularization : bool, default=False
        Replace the weight decay on :math:`\\gamma_j` by
        :math:`\\gamma_j^2\\sum_k m_k^2\\hat z_{jk}^2` with
        :math:`m_k = \\sigma_1/\\sigma_k`: the explicit convex regularizer of
        gradient descent's bias towards high-variance directions (see Notes).
        Equivalently, weight decay on the first-layer weights folded with the
        BN scale, in units of the largest principal standard deviation.
    fit_intercept : bool, default=True
        Give the output an unpenalized intercept (every neuron already has
        its BN shift :math:`\\beta_j`).
"""

_COMMON_PARAMS_REST = """
    solver : {{"auto", "closed_form", "auglag", "cvxpy"}}, default="auto"
        ``"closed_form"``: the global optimum over networks of any width in
        the high-dimensional regime (squared loss, centred data of rank
        ``n_samples - 1``, see :func:`~skconvex.models.batchnorm.batchnorm_closed_form`), certified by
        a duality gap over all networks. ``"auglag"``, ``"cvxpy"``: as in
        :class:`~skconvex.ConvexReLURegressor`, on the sampled patterns.
        ``"auto"`` is ``"closed_form"`` where it applies and ``"auglag"``
        otherwise.
    solver_options : dict, default=None
        Extra options of the iterative solvers (see
        :class:`~skconvex.ConvexReLURegressor`); none for ``"closed_form"``.
    tol : float, default=1e-4
        Stop when the certified duality gap is at most ``tol`` times the
        objective (and the relative cone violation at most ``tol``).
    max_iter : int, default=1000
        Maximum number of solver iterations.
    warm_start : bool, default=False
        Reuse the gates and start from the previous solution when refitting.
    dtype : {{None, "float32", "float64"}}, default=None
        Compute dtype of the solver (whitening and certificates are float64).
        None uses float32 when ``X`` is float32.
    n_jobs : int, default=None
        Parallel jobs for sampling the arrangements.
    random_state : int, RandomState instance or None, default=None
        Seed of the gates.
    verbose : int, default=0
        Solver progress.
"""

_COMMON_ATTRIBUTES = """
    mean_ : ndarray of shape (n_features,)
        Weighted mean of the training batch.
    components_ : ndarray of shape (n_features, `rank_`)
        Whitening map :math:`V\\Sigma^{-1}`: ``(X - mean_) @ components_`` has
        weighted identity covariance on the training batch.
    singular_values_ : ndarray of shape (`rank_`,)
        Weighted standard deviations :math:`\\sigma_k` along the principal
        directions.
    rank_ : int
        Whitened directions used.
    penalty_weights_ : ndarray of shape (`rank_`,)
        :math:`m_k` (ones unless ``implicit_regularization``).
    gates_ : ndarray of shape (`rank_` + 1, n_patterns)
        Gates on the lifted data (the last row multiplies the ones column).
    pattern_weights_ : ndarray of shape (2 * n_patterns, `rank_` + 1, n_outputs)
        The convex solution in lifted coordinates (positive then negative
        neurons).
    hidden_weights_ : ndarray of shape (n_neurons, n_features)
        First-layer weights :math:`w_j` (their scale is irrelevant to BN).
    bn_mean_ : ndarray of shape (n_neurons,)
        Frozen batch means :math:`\\mu_j` of :math:`x^\\top w_j`.
    bn_std_ : ndarray of shape (n_neurons,)
        Frozen batch standard deviations :math:`\\sigma_j` (1, or 0 for a
        constant neuron).
    gamma_ : ndarray of shape (n_neurons,)
        BN scales :math:`\\gamma_j \\ge 0`.
    beta_ : ndarray of shape (n_neurons,)
        BN shifts :math:`\\beta_j`.
    output_weights_ : ndarray of shape (n_neurons, n_outputs)
        Output weights :math:`a_j` (one non-zero entry per neuron).
    neuron_patterns_ : ndarray of shape (n_neurons,)
        Pattern (column of ``gates_``) of each neuron.
    n_neurons_ : int
        Width of the recovered network.
    objective_ : float
        Objective of the convex program at the solution.
    nonconvex_objective_ : float
        Training objective of the recovered BN network (equal to
        ``objective_``).
    dual_gap_ : float
        Certified duality gap (over all networks for ``"closed_form"``, over
        the sampled patterns otherwise).
    constraint_violation_ : float
        Relative violation of the cone constraints (0 up to rounding).
    solver_ : str
        The solver that ran.
    n_iter_ : int
        Solver iterations (1 for the closed form).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column names.
"""

_NOTES = """
    **The network.** Neuron :math:`j` computes
    :math:`\\mathrm{BN}_{\\gamma_j,\\beta_j}(x^\\top w_j)_+\\,a_j` with batch
    normalization by the (weighted) batch mean and standard deviation
    (deep-learning libraries' BN without epsilon); the training objective is
    the mean loss plus :math:`\\tfrac{\\alpha}{2}\\sum_j \\gamma_j^2 + \\beta_j^2
    + \\|a_j\\|^2`. :math:`w_j` is scale free, so weight decay on it would
    only drive its norm to 0 without changing the network; it is left out.

    **The convex program** (Ergen et al., 2022). With the weighted SVD of
    the centred batch and :math:`Z = (X - \\bar x)V\\Sigma^{-1}`,
    :math:`\\mathrm{BN}(Xw) = [Z\\ \\mathbf 1]q` with
    :math:`q = (\\gamma\\hat z, \\beta)`, :math:`\\|q\\|^2 = \\gamma^2 + \\beta^2`,
    so the BN network is a ReLU network without hidden bias on
    :math:`[Z\\ \\mathbf 1]`, and the exact program of Pilanci & Ergen (2020)
    on this data is solved (:class:`~skconvex.ConvexReLURegressor`). A
    column :math:`v` becomes the neuron :math:`q = v/\\sqrt{\\|v\\|}`,
    :math:`a = \\pm\\sqrt{\\|v\\|}`, :math:`\\gamma = \\|q_{1:k}\\|`,
    :math:`\\beta = q_{k+1}`, :math:`w = V\\Sigma^{-1}q_{1:k}/\\gamma`; its
    frozen statistics are :math:`\\mu = \\bar x^\\top w`, :math:`\\sigma = 1`.
    With every activation pattern of the lifted batch this optimum is the
    global minimum over BN networks of any width; with sampled patterns
    (``n_arrangements``) it is the minimum over networks whose neurons'
    patterns on the batch are among the sampled ones, and gradient descent
    can find a lower objective (measured in ``benchmarks/bench_batchnorm.py``,
    results in ``benchmarks/README.md``).
    ``predict`` evaluates this BN network (valid out of sample); on the
    training batch it equals the convex model, and its objective equals
    ``objective_``. The paper normalizes by the :math:`\\ell_2` norm of the
    centred pre-activations, :math:`\\sqrt n` times the standard deviation;
    that only rescales :math:`\\gamma` (and so its penalty relative to
    :math:`\\beta`); the standard deviation keeps the program independent of
    the batch size and of repeated rows.

    **High-dimensional regime.** When the centred batch has rank
    :math:`n - 1` (e.g. :math:`n \\le d`), :math:`S^{1/2}[Z\\ \\mathbf 1]` is
    orthogonal, every activation pattern is realizable, and the optimum
    over networks of *any* width has two neurons, both active on the whole
    batch, given by group soft-thresholding
    (:func:`~skconvex.models.batchnorm.batchnorm_closed_form`); ``solver="auto"`` uses it for the
    squared loss. The paper states that closed forms exist in this regime
    (abstract); its exact statements could not be consulted here, so this
    derivation is ours, and tests check it against the iterative solver
    and gradient descent.

    **Implicit regularization** (``implicit_regularization=True``; our
    derivation, the paper's exact term could not be consulted). Gradient
    descent on :math:`w` moves the whitened direction
    :math:`z = \\Sigma V^\\top w` by :math:`\\Delta z = \\Sigma^2\\Delta_{\\text{GD on }z}`:
    it is gradient descent on :math:`z` preconditioned by :math:`\\Sigma^2`,
    fast along high-variance directions and slow along low-variance ones.
    Preconditioned gradient descent from a small start is biased towards
    small :math:`\\|\\Sigma^{-1}z\\|` (its least-squares limit is the
    :math:`\\Sigma^{-1}`-weighted minimum-norm solution), which the convex
    objective encodes as the weighted penalty
    :math:`\\gamma^2\\|M\\hat z\\|^2`, :math:`M = \\sigma_1\\Sigma^{-1}`:
    the same program with :math:`[Z\\,\\sigma_1^{-1}\\Sigma\\ \\mathbf 1]`, i.e. the
    centred data in principal coordinates (unit top standard deviation), as
    lifted data. It equals weight decay
    :math:`\\sigma_1^2\\|w_{\\text{eff}}\\|^2 + \\beta^2 + a^2` on the BN
    network folded into a plain ReLU network
    (:math:`w_{\\text{eff}} = \\gamma w/\\sigma_w`).
    {vector_outputs}
    References
    ----------
    T. Ergen, A. Sahiner, B. Ozturkler, J. Pauly, M. Mardani and M. Pilanci.
    Demystifying batch normalization in ReLU networks: equivalent convex
    optimization models and implicit regularization. ICLR 2022,
    arXiv:2103.01499.

    M. Pilanci and T. Ergen. Neural networks are convex regularizers: exact
    polynomial-time convex optimization formulations for two-layer networks.
    ICML 2020, arXiv:2002.10553.
"""


class ConvexBatchNormReLURegressor(RegressionTargets, RegressorMixin, _BatchNormBase):
    __doc__ = (
        """Two-layer ReLU regressor with batch normalization, trained to global optimality.

    Batch normalization before the ReLU, squared error, weight decay: solved
    exactly as the two-layer ReLU program on the whitened, lifted batch
    :math:`[Z\\ \\mathbf{1}]` (Ergen et al., 2022), with a closed form in the
    high-dimensional regime; the recovered BN network (frozen batch
    statistics) predicts.
"""
        + _COMMON_PARAMS.replace(
            "{alpha_scale}", " It is multiplied by the standard deviation of ``y``."
        ).rstrip("\n")
        + """
    loss : {"squared_error"}, default="squared_error"
        Half the squared error, averaged over samples."""
        + _COMMON_PARAMS_REST.format().rstrip("\n")
        + """

    Attributes
    ----------"""
        + _COMMON_ATTRIBUTES
        + """    n_outputs_ : int
        Number of outputs.
    intercept_ : float or ndarray of shape (n_outputs,)
        Output intercept.

    See Also
    --------
    ConvexBatchNormReLUClassifier : The classifier counterpart.
    ConvexReLURegressor : The same program without batch normalization.

    Notes
    -----"""
        + _NOTES.replace("{vector_outputs}", "")
        + """
    Examples
    --------
    >>> import numpy as np
    >>> from skconvex import ConvexBatchNormReLURegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((60, 3)) * [1.0, 10.0, 0.1]
    >>> y = np.maximum(X[:, 0], 0) - np.abs(X[:, 2]) * 5
    >>> reg = ConvexBatchNormReLURegressor(alpha=1e-3, random_state=0).fit(X, y)
    >>> bool(abs(reg.nonconvex_objective_ - reg.objective_) <= 1e-8 * reg.objective_)
    True
"""
    )

    _multi_output = True
    _y_numeric = True

    _parameter_constraints = {
        **_BatchNormBase._parameter_constraints,
        "loss": [StrOptions({"squared_error"})],
    }

    def __init__(
        self,
        alpha=1e-2,
        *,
        n_arrangements=50,
        rank=None,
        implicit_regularization=False,
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
        self.rank = rank
        self.implicit_regularization = implicit_regularization
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


class ConvexBatchNormReLUClassifier(ClassificationTargets, ClassifierMixin, _BatchNormBase):
    __doc__ = (
        """Two-layer ReLU classifier with batch normalization, trained to global optimality.

    Batch normalization before the ReLU, logistic loss for two classes and
    multinomial cross-entropy for more, weight decay: solved exactly as the
    two-layer ReLU program on the whitened, lifted batch
    :math:`[Z\\ \\mathbf{1}]` (Ergen et al., 2022); the recovered BN network
    (frozen batch statistics) predicts.
"""
        + _COMMON_PARAMS.replace("{alpha_scale}", "").rstrip("\n")
        + """
    loss : {"log_loss", "squared_error"}, default="log_loss"
        ``"log_loss"``: logistic / multinomial cross-entropy (gives
        ``predict_proba``); ``"squared_error"``: squared error on +-1 or
        one-hot targets (the closed form applies to it)."""
        + _COMMON_PARAMS_REST.format().rstrip("\n")
        + """

    Attributes
    ----------"""
        + _COMMON_ATTRIBUTES
        + """    classes_ : ndarray of shape (n_classes,)
        Class labels.
    intercept_ : ndarray of shape (n_outputs,)
        Output intercept (one output for two classes, else one per class).

    See Also
    --------
    ConvexBatchNormReLURegressor : The regressor counterpart.
    ConvexReLUClassifier : The same program without batch normalization.

    Notes
    -----"""
        + _NOTES.replace(
            "{vector_outputs}",
            """
    **Several classes**: one pair of columns per pattern and class (the
    decoupled program of :class:`~skconvex.ConvexReLUClassifier`), so every
    recovered neuron feeds one class.
"""
        )
        + """
    Examples
    --------
    >>> from sklearn.datasets import load_wine
    >>> from skconvex import ConvexBatchNormReLUClassifier
    >>> X, y = load_wine(return_X_y=True)
    >>> clf = ConvexBatchNormReLUClassifier(alpha=1e-2, random_state=0).fit(X, y)
    >>> bool(clf.score(X, y) > 0.95)
    True
"""
    )

    _multi_output = False
    _y_numeric = False

    _parameter_constraints = {
        **_BatchNormBase._parameter_constraints,
        "loss": [StrOptions({"log_loss", "squared_error"})],
    }

    def __init__(
        self,
        alpha=1e-2,
        *,
        n_arrangements=50,
        rank=None,
        implicit_regularization=False,
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
        self.rank = rank
        self.implicit_regularization = implicit_regularization
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
