"""Ramp dictionaries: the features of one-dimensional two-layer ReLU networks.

A neuron :math:`(wx + c)_+a` with :math:`w \\ne 0` is, up to the factor
:math:`|w|`, a ramp :math:`(\\pm(x - t))_+` with knot :math:`t = -c/w`. On
sorted data :math:`x_{(1)} < \\dots < x_{(n)}` the vector of values of a ramp
is affine in :math:`t` between consecutive data points, so a ramp with a knot
between two points is a convex combination of the ramps at those points with
the same total coefficient; a knot outside the data range differs from the
ramp at the extreme point by a constant, absorbed by the output intercept.
Hence, with unpenalized hidden biases and weight decay
:math:`\\tfrac12(w^2 + a^2) \\ge |wa|`, training the network is exactly the
Lasso over the ramps with knots at the data points (Ergen & Pilanci, 2021;
the optimal networks are linear splines with knots at data points).

References
----------
T. Ergen and M. Pilanci. Convex geometry and duality of over-parameterized
neural networks. JMLR 22(212), 2021, arXiv:2002.11219.
"""

import numpy as np

from .._config import check_memory
from .datafits import SquaredError
from .penalties import GroupL2
from .problem import ConvexProblem

__all__ = ["RampOperator", "ramp_dictionary", "ramp_features", "spline_problem"]


def ramp_dictionary(X, sample_weight=None):
    """Knots, features and signs of the ramp dictionary of every column of ``X``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Inputs; every feature gets its own ramps (an additive model).
    sample_weight : ndarray of shape (n_samples,), default=None
        Only values of rows with positive weight become knots.

    Returns
    -------
    knots : ndarray of shape (n_ramps,)
        Knot of every ramp.
    features : ndarray of shape (n_ramps,)
        Feature (column of ``X``) of every ramp.
    signs : ndarray of shape (n_ramps,)
        +1 for :math:`(x - t)_+` (increasing), -1 for :math:`(t - x)_+`.
        Ramps that vanish on all the knots' data (``+1`` at the largest
        value, ``-1`` at the smallest) are left out.
    """
    X = np.asarray(X, dtype=np.float64)
    support = np.ones(X.shape[0], dtype=bool) if sample_weight is None else sample_weight > 0
    knots, feats, signs = [], [], []
    for k in range(X.shape[1]):
        values = np.unique(X[support, k])
        if values.size < 2:
            continue
        # (x - max)_+ and (min - x)_+ vanish on the data.
        knots += [values[:-1], values[1:]]
        feats += [np.full(values.size - 1, k)] * 2
        signs += [np.ones(values.size - 1), -np.ones(values.size - 1)]
    if not knots:
        return np.zeros(0), np.zeros(0, dtype=np.intp), np.zeros(0)
    return np.concatenate(knots), np.concatenate(feats).astype(np.intp), np.concatenate(signs)


def ramp_features(X, knots, features, signs):
    """Evaluate the ramps :math:`(s_k(x_{f_k} - t_k))_+` on the rows of ``X``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Inputs.
    knots, features, signs : ndarray of shape (n_ramps,)
        The dictionary (see :func:`ramp_dictionary`).

    Returns
    -------
    F : ndarray of shape (n_samples, n_ramps)
        Dense ramp features (for small problems and tests; the solvers use
        :class:`~skconvex.programs.ramps.RampOperator`).
    """
    X = np.asarray(X, dtype=np.float64)
    check_memory(
        8 * X.shape[0] * len(knots),
        what=f"The ramp features of {X.shape[0]} samples and {len(knots)} knots",
        lower="the number of samples",
    )
    return np.maximum(signs * (X[:, features] - knots), 0.0)


class RampOperator:
    """Matrix-free map :math:`z \\mapsto \\sum_k z_k (s_k(x_{f_k} - t_k))_+` and its adjoint.

    Knots are the sorted distinct values of each feature (the dictionary of
    :func:`ramp_dictionary`), so both maps cost :math:`O(n\\log n)` per
    feature through prefix and suffix sums instead of the :math:`n \\times 2n`
    dense design. The interface is that of
    :class:`~skconvex.programs.operators.PatternOperator` with one block of size one
    per ramp (coefficients of shape ``(1, n_ramps, 1)``), so
    :class:`~skconvex.programs.problem.ConvexProblem`, its certificate and FISTA apply.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Inputs.
    sample_weight : ndarray of shape (n_samples,), default=None
        Only values of rows with positive weight become knots.

    Attributes
    ----------
    knots, features, signs : ndarray of shape (n_ramps,)
        The dictionary.
    coef_shape : tuple
        ``(1, n_ramps, 1)``.
    """

    #: Whether ``restrict`` selects a subset of blocks (see :mod:`skconvex.programs`).
    supports_restrict = False

    dtype = np.dtype(np.float64)
    n_outputs = 1
    #: Prefix sums over sorted knots lose accuracy in float32, and the operator
    #: is cheap: :meth:`astype` keeps float64 (see :mod:`skconvex.programs`).
    supports_float32 = False

    def __init__(self, X, sample_weight=None):
        X = np.asarray(X, dtype=np.float64)
        self.knots, self.features, self.signs = ramp_dictionary(X, sample_weight)
        self.X = X
        support = np.ones(X.shape[0], dtype=bool) if sample_weight is None else sample_weight > 0
        # Per feature: centred distinct values (the centring keeps the
        # prefix sums of x * r accurate), gaps, and the knot index of each row.
        self._parts = []
        start = 0
        for k in range(X.shape[1]):
            values = np.unique(X[support, k])
            if values.size < 2:
                continue
            centre = values.mean()
            v = values - centre
            # Rows of zero weight may fall between knots: they are evaluated
            # with the exact formula in forward(), and carry no weight in the
            # adjoint's use (the certificate).
            u = np.clip(np.searchsorted(values, X[:, k]), 0, values.size - 1)
            exact = values[u] == X[:, k]
            K = values.size
            self._parts.append((k, v, np.diff(values), u, exact, centre, start, K))
            start += 2 * (K - 1)
        self.coef_shape = (1, start, 1)

    @property
    def n_samples(self):
        """Number of rows."""
        return self.X.shape[0]

    def forward(self, W):
        """Compute the predictions of ramp coefficients (prefix sums over the sorted knots).

        Parameters
        ----------
        W : ndarray of shape (1, n_ramps, 1)
            Ramp coefficients.

        Returns
        -------
        pred : ndarray of shape (n_samples, 1)
            :math:`\\sum_k w_k (\\sigma_k (x - t_k))_+`, in float64.
        """
        z = np.asarray(W, dtype=np.float64).reshape(-1)
        out = np.zeros(self.n_samples)
        for k, v, gaps, u, exact, centre, start, K in self._parts:
            right, left = z[start : start + K - 1], z[start + K - 1 : start + 2 * (K - 1)]
            # Slopes of the right ramps on each interval (cumulative sums of
            # their coefficients) and of the left ramps (reverse sums).
            S = np.cumsum(right)
            T = np.cumsum(left[::-1])[::-1]
            values = np.concatenate([[0.0], np.cumsum(S * gaps)]) + np.concatenate(
                [np.cumsum((T * gaps)[::-1])[::-1], [0.0]]
            )
            out += np.where(exact, values[u], 0.0)
            if not exact.all():
                x = self.X[~exact, k][:, None]
                knots = v + centre
                out[~exact] += np.maximum(x - knots[:-1], 0.0) @ right + np.maximum(knots[1:] - x, 0.0) @ left
        return out[:, None]

    def adjoint(self, R):
        """Compute the correlations of residuals with every ramp.

        Parameters
        ----------
        R : ndarray of shape (n_samples, 1)
            Residuals.

        Returns
        -------
        G : ndarray of shape (1, n_ramps, 1)
            :math:`\\sum_j r_j (\\sigma_k (x_j - t_k))_+` for every ramp ``k``.
        """
        r = np.asarray(R, dtype=np.float64).reshape(-1)
        G = np.zeros(self.coef_shape[1])
        for k, v, gaps, u, exact, centre, start, K in self._parts:
            rho = np.bincount(u[exact], weights=r[exact], minlength=K)
            rv = rho * v
            # right ramp at v_j: sum_{i>j} rho_i (v_i - v_j); left ramp at
            # v_{j+1}: sum_{i<=j} rho_i (v_{j+1} - v_i).
            suffix_r = np.cumsum(rho[::-1])[::-1]
            suffix_rv = np.cumsum(rv[::-1])[::-1]
            prefix_r, prefix_rv = np.cumsum(rho), np.cumsum(rv)
            G[start : start + K - 1] = suffix_rv[1:] - v[:-1] * suffix_r[1:]
            G[start + K - 1 : start + 2 * (K - 1)] = v[1:] * prefix_r[:-1] - prefix_rv[:-1]
            if not exact.all():
                x = self.X[~exact, k]
                knots = v + centre
                G[start : start + K - 1] += np.maximum(x[:, None] - knots[:-1], 0.0).T @ r[~exact]
                G[start + K - 1 : start + 2 * (K - 1)] += np.maximum(knots[1:] - x[:, None], 0.0).T @ r[~exact]
        return G.reshape(self.coef_shape)

    def lipschitz(self, sample_weight=None, *, n_iter=20, random_state=0):
        """Estimate :math:`\\|S^{1/2}A\\|_2^2` by power iteration.

        Parameters
        ----------
        sample_weight : ndarray of shape (n_samples,), default=None
            Row weights :math:`S` (ones when None).
        n_iter : int, default=20
            Power iterations.
        random_state : int, default=0
            Seed of the starting vector.

        Returns
        -------
        L : float
            The estimate (a step-size bound for proximal gradient).
        """
        rng = np.random.default_rng(random_state)
        W = rng.standard_normal(self.coef_shape)
        W /= max(np.linalg.norm(W), 1e-300)
        s = np.ones(self.n_samples) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        value = 0.0
        for _ in range(n_iter):
            V = self.adjoint(self.forward(W) * s[:, None])
            value = float(np.linalg.norm(V))
            if value == 0.0:
                return 0.0
            W = V / value
        return value

    def astype(self, dtype):
        """Return the operator itself: computations stay in float64 (``supports_float32`` is False).

        Parameters
        ----------
        dtype : {numpy.float32, numpy.float64}
            Requested compute dtype (ignored).

        Returns
        -------
        operator : RampOperator
            ``self``.
        """
        return self


def spline_problem(X, y, sample_weight, alpha):
    """The ramp Lasso as a :class:`~skconvex.programs.problem.ConvexProblem` (intercept fitted).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Inputs.
    y : ndarray of shape (n_samples,)
        Targets.
    sample_weight : ndarray of shape (n_samples,)
        Row weights.
    alpha : float
        Penalty strength.

    Returns
    -------
    problem : ConvexProblem
        Matrix free (:class:`~skconvex.programs.ramps.RampOperator`).
    """
    operator = RampOperator(X, sample_weight)
    n = operator.n_samples
    return ConvexProblem(
        operator, SquaredError(), GroupL2(), np.reshape(y, (n, 1)), sample_weight, alpha,
        fit_intercept=True,
    )
