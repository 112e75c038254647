"""One-dimensional two-layer ReLU networks: exact training as a Lasso over ramps."""

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight

from ..networks import relu_forward
from ..programs.ramps import ramp_dictionary, spline_problem
from ..solvers import fista
from ..solvers.spline import spline_qp
from ._base import BaseConvexNetwork, ProgramUnits, RegressionTargets

__all__ = ["ConvexSplineRegressor"]


class ConvexSplineRegressor(RegressionTargets, RegressorMixin, BaseConvexNetwork):
    """Two-layer ReLU network on one input, trained to global optimality as a linear spline.

    The network :math:`f(x) = \\sum_j (w_jx + c_j)_+a_j + b` with weight decay
    on :math:`w_j, a_j` (the hidden biases :math:`c_j`, i.e. the knots, are
    free) is optimal as a linear spline with knots at the data points, and
    training it is exactly a Lasso over the ramp features
    :math:`(x - x_k)_+` and :math:`(x_k - x)_+` (Ergen & Pilanci, 2021). With
    several features the model is *additive*: every neuron reads one feature,
    and the same argument makes the Lasso over all features' ramps exact for
    that architecture.

    Parameters
    ----------
    alpha : float, default=1e-3
        Weight-decay strength. The objective is the **mean** squared error
        (weighted by ``sample_weight``, halved) plus ``alpha`` times
        :math:`\\tfrac12\\sum_j w_j^2 + a_j^2`, which equals ``alpha`` times
        the :math:`\\ell_1` norm of the ramp coefficients; ``alpha`` is
        multiplied by the standard deviation of ``y``. It bounds the total
        change of slope of the spline.
    solver : {"clarabel", "osqp", "fista"}, default="clarabel"
        ``"clarabel"`` (interior point) or ``"osqp"`` (ADMM) on the sparse
        quadratic program of :mod:`skconvex.solvers.spline` (linear cost per
        iteration), followed by proximal steps that give exact zeros;
        ``"fista"``: accelerated proximal gradient on the matrix-free ramp
        Lasso, stopped at the certified relative gap ``tol``. The output
        intercept is always fitted: with free hidden biases a constant output
        is the limit of ramps with far-away knots at vanishing cost.
    tol : float, default=1e-8
        Solver tolerance (relative gap and feasibility for Clarabel,
        ``eps_abs``/``eps_rel`` for OSQP, the certified relative gap for
        FISTA).
    max_iter : int, default=100000
        Solver iterations.
    verbose : int, default=0
        Solver output.

    Attributes
    ----------
    knots_ : ndarray of shape (n_neurons,)
        Kink of every neuron (where its ramp starts), in input units.
    knot_features_ : ndarray of shape (n_neurons,)
        Feature each neuron reads (all 0 with one feature).
    coef_ : ndarray of shape (n_neurons,)
        Ramp coefficients :math:`z_k`: neuron ``k`` adds
        :math:`z_k(s_k(x - t_k))_+` with :math:`s_k` the sign of its hidden
        weight.
    hidden_weights_ : ndarray of shape (n_neurons, n_features)
        Input weights :math:`\\pm\\sqrt{|z_k|}` (one non-zero per row).
    hidden_intercepts_ : ndarray of shape (n_neurons,)
        Hidden biases :math:`-w_kt_k`.
    output_weights_ : ndarray of shape (n_neurons, 1)
        Output weights :math:`\\operatorname{sign}(z_k)\\sqrt{|z_k|}`.
    intercept_ : float
        Output intercept.
    n_neurons_ : int
        Number of neurons (non-zero ramps).
    objective_ : float
        Objective at the solution.
    dual_gap_ : float
        Certified duality gap of the Lasso: an upper bound on
        ``objective_`` minus the global optimum of the network's training
        problem.
    n_iter_ : int
        Solver iterations.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column names.

    See Also
    --------
    CuttingPlaneReLURegressor : Networks on several inputs, certified globally for small rank.
    sklearn.neural_network.MLPRegressor : A non-convex two-layer network.

    Notes
    -----
    Recovery: a coefficient :math:`z` of the ramp :math:`(s(x - t))_+` is the
    neuron :math:`w = s\\sqrt{|z|}`, :math:`c = -wt`,
    :math:`a = \\operatorname{sign}(z)\\sqrt{|z|}`, whose weight decay
    :math:`\\tfrac12(w^2 + a^2)` is :math:`|z|`; so ``objective_`` equals the
    network's objective, and the Lasso's certified gap bounds its distance to
    the global optimum over networks of any width.

    References
    ----------
    T. Ergen and M. Pilanci. Convex geometry and duality of over-parameterized
    neural networks. JMLR 22(212), 2021, arXiv:2002.11219.

    P. Savarese, I. Evron, D. Soudry and N. Srebro. How do infinite width
    bounded norm networks look in function space? COLT 2019.

    Examples
    --------
    >>> import numpy as np
    >>> from skconvex import ConvexSplineRegressor
    >>> x = np.linspace(-1, 1, 21)[:, None]
    >>> reg = ConvexSplineRegressor(alpha=1e-3).fit(x, np.abs(x[:, 0]))
    >>> reg.knots_.round(6).tolist()  # two neurons, (x)_+ and (-x)_+
    [0.0, 0.0]
"""

    _parameter_constraints = {
        "alpha": [Interval(Real, 0, None, closed="neither")],
        "solver": [StrOptions({"clarabel", "osqp", "fista"})],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "verbose": ["verbose"],
    }

    def __init__(self, alpha=1e-3, *, solver="clarabel", tol=1e-8, max_iter=100_000, verbose=0):
        self.alpha = alpha
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the spline (the network) by solving the Lasso over ramps.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inputs (one feature for the plain 1-D network).
        y : array-like of shape (n_samples,)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Row weights; the loss is their weighted mean.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        X, y, sw = self._validate_fit_data(X, y, sample_weight, multi_output=False, y_numeric=True)
        Y, _ = self._encode_targets(y)
        alpha = self.alpha * self._alpha_scale(Y, sw)
        X64 = X.astype(np.float64)
        keep = sw > 0
        X64, y_fit, s_fit = X64[keep], Y[keep, 0], sw[keep]
        units = ProgramUnits(X64, y_fit, scale_targets=True)
        X_s, y_s = units.data(X64, y_fit)
        problem = spline_problem(X_s, y_s, s_fit, units.alpha(alpha))
        if self.solver == "fista":
            result = fista(problem, tol=self.tol, max_iter=self.max_iter, verbose=self.verbose)
        else:
            result = spline_qp(
                problem, solver=self.solver, tol=self.tol, max_iter=self.max_iter, verbose=self.verbose
            )
        # Same dictionary and order as the solver's RampOperator.
        knots, feats, signs = ramp_dictionary(X64, s_fit)
        if not result.converged and result.relative_gap > self.tol:
            warnings.warn(
                f"ConvexSplineRegressor: the {self.solver} solver did not converge "
                f"(certified relative gap {result.relative_gap:.2e}). Increase max_iter.",
                ConvergenceWarning,
            )
        z = np.asarray(result.coef, dtype=np.float64).reshape(-1) * units.output
        nz = np.flatnonzero(z)
        root = np.sqrt(np.abs(z[nz]))
        w = signs[nz] * root
        self.knots_ = knots[nz]
        self.knot_features_ = feats[nz]
        self.coef_ = z[nz]
        hidden = np.zeros((nz.size, X.shape[1]))
        hidden[np.arange(nz.size), feats[nz]] = w
        self.hidden_weights_ = hidden
        self.hidden_intercepts_ = -w * knots[nz]
        self.output_weights_ = (np.sign(z[nz]) * root)[:, None]
        self.n_neurons_ = int(nz.size)
        self.intercept_ = float(np.asarray(result.intercept).reshape(-1)[0]) * units.cy
        self.objective_ = float(result.objective) * units.value
        self.dual_gap_ = float(max(result.gap, 0.0)) * units.value
        self.n_iter_ = int(result.n_iter)
        return self

    def _network_output(self, X):
        X = np.asarray(X)
        hidden = np.column_stack([self.hidden_weights_, self.hidden_intercepts_]).astype(X.dtype, copy=False)
        X_aug = np.hstack([X, np.ones((X.shape[0], 1), dtype=X.dtype)])
        return relu_forward(
            X_aug, hidden, self.output_weights_.astype(X.dtype, copy=False), np.atleast_1d(self.intercept_)
        )

    def weight_decay_objective(self, X, y, sample_weight=None):
        """Training objective of the fitted network on ``(X, y)``.

        Half the weighted mean squared error plus ``alpha`` (times the
        standard deviation of ``y``) times :math:`\\tfrac12\\sum_j w_j^2 +
        a_j^2` (hidden biases are not penalized). On the training data it
        equals ``objective_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inputs.
        y : array-like of shape (n_samples,)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Row weights (normalized to sum to one).

        Returns
        -------
        objective : float
            The network's objective on ``(X, y)``.
        """
        X = self._check_predict_data(X)
        s = _check_sample_weight(sample_weight, X, dtype=np.float64)
        s = s / s.sum()
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        r = self._network_output(X)[:, 0] - y
        alpha = self.alpha * self._alpha_scale(y[:, None], s)
        decay = 0.5 * float(np.sum(self.hidden_weights_**2) + np.sum(self.output_weights_**2))
        return 0.5 * float(s @ r**2) + alpha * decay
