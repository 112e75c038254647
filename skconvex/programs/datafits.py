"""Data-fitting terms: value, gradient, Fenchel conjugate and intercept.

A datafit is :math:`F(\\hat Y) = \\sum_j s_j \\ell(\\hat y_j, y_j)` with row
weights :math:`s_j \\ge 0` (the estimators pass weights summing to one, so
:math:`F` is a weighted mean). Predictions :math:`\\hat Y` are always 2-D,
``(n_samples, n_outputs)``.

The dual of :math:`\\min_W F(\\mathcal{A}W + \\mathbf{1}b^\\top) + \\alpha R(W)` is

.. math:: \\max_\\Theta\\; -\\sum_j s_j \\ell^*(-\\theta_j / s_j, y_j)
          \\quad\\text{s.t.}\\quad R^\\circ(\\mathcal{A}^\\top\\Theta) \\le \\alpha,
          \\quad \\mathbf{1}^\\top\\Theta = 0 \\text{ (with an intercept)},

and ``Datafit.dual`` evaluates its objective. A dual point is obtained
from any primal point by scaling :math:`\\Theta = -c\\,\\nabla F(\\hat Y)`; when
the intercept is optimal for :math:`\\hat Y` the constraint
:math:`\\mathbf{1}^\\top\\Theta = 0` holds automatically.

Predictions of another array-API namespace than numpy (torch, CuPy,
array-api-strict; targets and weights then in the same namespace, in
float64) are computed on in that namespace and device: values and dual
values come back as Python floats, gradients as arrays there, and the
intercept (a few numbers) as a float64 numpy array, found by Newton's method
on the host from sums computed on the device.
"""

import numpy as np
from scipy.special import expit, xlogy

from ._namespace import device_of, namespace_of, to_numpy

__all__ = ["SquaredError", "Logistic", "Multinomial"]


def _as_f64(a):
    return np.asarray(a, dtype=np.float64)


def _row_reduce(ufunc, z):
    # NumPy reduces a short last axis row by row, several times slower than
    # an exponential of the same array; for a few outputs (classes), the
    # elementwise ufunc over the columns is the fast way.
    if z.shape[1] > 32:
        return ufunc.reduce(z, axis=1)
    out = z[:, 0].copy()
    for c in range(1, z.shape[1]):
        ufunc(out, z[:, c], out=out)
    return out


def _row_sum(z):
    return z @ np.ones(z.shape[1], dtype=z.dtype)


def _log_softmax(z):
    # scipy.special.log_softmax is correct but carries array-API overhead that
    # dominates in the inner intercept solver; this is the same formula.
    z = z - _row_reduce(np.maximum, z)[:, None]
    return z - np.log(_row_sum(np.exp(z)))[:, None]


def _softmax(z):
    e = np.exp(z - _row_reduce(np.maximum, z)[:, None])
    e /= _row_sum(e)[:, None]
    return e


def _kappa(r):
    """:math:`(e^r - r - 1)/r^2`, the self-concordance factor of the logistic losses."""
    r = np.minimum(np.abs(r), 700.0)
    small = r < 1e-3
    out = np.empty_like(r)
    rs = r[small]
    out[small] = 0.5 + rs / 6 + rs**2 / 24
    rl = r[~small]
    out[~small] = np.expm1(rl) - rl
    out[~small] /= rl**2
    return out


def _newton(fgh, b, scale, max_iter=100):
    """Damped Newton minimization of a smooth convex function of the intercept.

    ``fgh(b)`` returns the value, gradient and Hessian. Stops when the gradient
    is at rounding level relative to ``scale`` (the sum of the weights), since
    the dual certificate needs the intercept's optimality condition (the
    residuals sum to zero) to hold to that level.
    """
    val, grad, hess = fgh(b)
    for _ in range(max_iter):
        if np.abs(grad).max() <= 1e-14 * scale:
            break
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            # A saturated softmax leaves only the multinomial loss's shift term
            # in its Hessian (singular); the least-norm step ignores the flat
            # directions.
            step = np.linalg.lstsq(np.atleast_2d(hess), np.atleast_1d(grad), rcond=None)[0].reshape(np.shape(grad))
        if np.abs(step).max() <= 1e-16 * (1 + np.abs(b).max()):
            break
        for _ in range(40):
            new = fgh(b - step)
            # Rounding can make an exact Newton step look like a tiny increase.
            if new[0] <= val + 1e-13 * abs(val):
                break
            step = step * 0.5
        else:
            break
        b = b - step
        val, grad, hess = new
    return b


def _xp_f64(xp, a):
    return xp.astype(a, xp.float64)


def _xp_col(xp, s, dtype):
    """Row weights as a column in ``dtype`` (to scale a gradient)."""
    return xp.reshape(xp.astype(s, dtype, copy=False), (-1, 1))


def _xp_expit(xp, t):
    e = xp.exp(-xp.abs(t))
    return xp.where(t >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _xp_log1pexp(xp, t):
    return xp.logaddexp(xp.zeros_like(t), t)


def _xp_log_softmax(xp, z):
    z = z - xp.max(z, axis=1, keepdims=True)
    return z - xp.log(xp.sum(xp.exp(z), axis=1, keepdims=True))


def _xp_softmax(xp, z):
    e = xp.exp(z - xp.max(z, axis=1, keepdims=True))
    return e / xp.sum(e, axis=1, keepdims=True)


def _xp_kappa(xp, r):
    """:func:`_kappa` in ``xp``."""
    r = xp.clip(xp.abs(r), max=700.0)
    small = r < 1e-3
    # Safe operand: the large-r formula is discarded where r is small.
    rl = xp.where(small, xp.ones_like(r), r)
    return xp.where(small, 0.5 + r / 6 + r * r / 24, (xp.expm1(rl) - rl) / (rl * rl))


def _xp_xlogx(xp, p):
    pos = p > 0
    return xp.where(pos, p * xp.log(xp.where(pos, p, xp.ones_like(p))), xp.zeros_like(p))


def _xp_positive(xp, s):
    """Mask of the weighted rows and the weights made safe to divide by."""
    pos = s > 0
    return xp.reshape(pos, (-1, 1)), xp.reshape(xp.where(pos, s, xp.ones_like(s)), (-1, 1))


def _xp_diagonal_factor(xp, root):
    """Per-sample diagonal matrices :math:`\\operatorname{diag}(r_j)` from ``root`` (n, C)."""
    eye = xp.eye(root.shape[1], dtype=root.dtype, device=device_of(root))
    return xp.expand_dims(root, axis=2) * xp.expand_dims(eye, axis=0)


def _xp_weighted(xp, s, rows):
    """:math:`\\sum_j s_j r_j` as a Python float."""
    return float(xp.sum(s * rows))


class Datafit:
    """Base class of the data-fitting terms.

    Public methods are documented here once; each loss implements the private
    counterparts (``_value``, ``_gradient``, ``_dual``, ``_optimal_intercept``,
    ``_remainder_bound``, ``_cvxpy`` and optionally ``_best_dual``) and states
    its formulas in its class docstring.
    """

    #: Bound on the second derivative of the per-sample loss.
    lipschitz = 1.0
    #: Whether the loss is quadratic (its remainder bound is then exact).
    quadratic = False

    def value(self, pred, y, sample_weight):
        """Weighted sum of losses :math:`\\sum_j s_j \\ell(\\hat y_j, y_j)`, in float64.

        Parameters
        ----------
        pred : ndarray of shape (n_samples, n_outputs)
            Predictions.
        y : ndarray of shape (n_samples, n_outputs)
            Encoded targets.
        sample_weight : ndarray of shape (n_samples,)
            Row weights :math:`s`.

        Returns
        -------
        value : float
            The datafit value.
        """
        if not isinstance(pred, np.ndarray):
            return self._xp_value(namespace_of(pred), pred, y, sample_weight)
        return self._value(pred, y, sample_weight)

    def gradient(self, pred, y, sample_weight):
        """Gradient :math:`s_j \\nabla\\ell(\\hat y_j, y_j)` with respect to the predictions.

        Parameters
        ----------
        pred : ndarray of shape (n_samples, n_outputs)
            Predictions.
        y : ndarray of shape (n_samples, n_outputs)
            Encoded targets.
        sample_weight : ndarray of shape (n_samples,)
            Row weights.

        Returns
        -------
        gradient : ndarray of shape (n_samples, n_outputs)
            In the dtype of ``pred``.
        """
        if not isinstance(pred, np.ndarray):
            return self._xp_gradient(namespace_of(pred), pred, y, sample_weight)
        return self._gradient(pred, y, sample_weight)

    def value_and_gradient(self, pred, y, sample_weight):
        """Value and gradient of the datafit at ``pred``.

        Parameters
        ----------
        pred : ndarray of shape (n_samples, n_outputs)
            Predictions.
        y : ndarray of shape (n_samples, n_outputs)
            Encoded targets.
        sample_weight : ndarray of shape (n_samples,)
            Row weights.

        Returns
        -------
        value : float
            Datafit value.
        gradient : ndarray of shape (n_samples, n_outputs)
            Gradient with respect to ``pred``, in the dtype of ``pred``.
        """
        return self.value(pred, y, sample_weight), self.gradient(pred, y, sample_weight)

    def dual(self, theta, y, sample_weight):
        """Dual objective :math:`-\\sum_j s_j\\,\\ell^*(-\\theta_j / s_j, y_j)`.

        Rows with zero weight must have :math:`\\theta_j = 0` and contribute
        nothing.

        Parameters
        ----------
        theta : ndarray of shape (n_samples, n_outputs)
            Dual point.
        y : ndarray of shape (n_samples, n_outputs)
            Encoded targets.
        sample_weight : ndarray of shape (n_samples,)
            Row weights.

        Returns
        -------
        dual : float
            The dual objective, ``-inf`` outside the conjugate's domain.
        """
        if not isinstance(theta, np.ndarray):
            return self._xp_dual(namespace_of(theta), theta, y, sample_weight)
        return self._dual(theta, y, sample_weight)

    def best_dual(self, theta, y, sample_weight, c_max):
        """Dual value at ``c * theta`` for a good scaling ``c`` in ``[0, c_max]``.

        Losses without a closed form use ``c = min(1, c_max)``, which is
        optimal at the solution.

        Parameters
        ----------
        theta : ndarray of shape (n_samples, n_outputs)
            Dual direction (minus a gradient of the datafit).
        y : ndarray of shape (n_samples, n_outputs)
            Encoded targets.
        sample_weight : ndarray of shape (n_samples,)
            Row weights.
        c_max : float
            Largest feasible scaling.

        Returns
        -------
        dual : float
            A dual value, a lower bound on the optimum when ``c_max`` makes
            ``c * theta`` feasible.
        """
        if not isinstance(theta, np.ndarray):
            return self._xp_best_dual(namespace_of(theta), theta, y, sample_weight, c_max)
        return self._best_dual(theta, y, sample_weight, c_max)

    def _best_dual(self, theta, y, sample_weight, c_max):
        return self._dual(min(1.0, c_max) * theta, y, sample_weight)

    def _xp_best_dual(self, xp, theta, y, sample_weight, c_max):
        return self._xp_dual(xp, min(1.0, c_max) * theta, y, sample_weight)

    def _xp_value(self, xp, *args):
        raise TypeError(f"{type(self).__name__} computes on numpy arrays only.")

    _xp_gradient = _xp_dual = _xp_optimal_intercept = _xp_remainder_bound = _xp_hessian_factor = _xp_value

    def optimal_intercept(self, z, y, sample_weight, intercept=None):
        """The unpenalized intercept minimizing the datafit for predictions ``z + b``.

        Parameters
        ----------
        z : ndarray of shape (n_samples, n_outputs)
            Predictions without intercept.
        y : ndarray of shape (n_samples, n_outputs)
            Encoded targets.
        sample_weight : ndarray of shape (n_samples,)
            Row weights.
        intercept : ndarray of shape (n_outputs,), default=None
            Warm start.

        Returns
        -------
        intercept : ndarray of shape (n_outputs,)
            Solved to rounding level, so that the weighted gradient sums to zero.
        """
        if not isinstance(z, np.ndarray):
            return self._xp_optimal_intercept(namespace_of(z), z, y, sample_weight, intercept)
        return self._optimal_intercept(z, y, sample_weight, intercept)

    def remainder_bound(self, pred, y, sample_weight, delta):
        """Upper bound on :math:`F(\\hat Y + \\Delta) - F(\\hat Y) - \\langle\\nabla F(\\hat Y), \\Delta\\rangle`.

        Line searches compare this bound with the step's quadratic term: it
        needs no difference of nearly equal function values, so it stays
        reliable in float32.

        Parameters
        ----------
        pred : ndarray of shape (n_samples, n_outputs)
            Base predictions :math:`\\hat Y`.
        y : ndarray of shape (n_samples, n_outputs)
            Encoded targets.
        sample_weight : ndarray of shape (n_samples,)
            Row weights.
        delta : ndarray of shape (n_samples, n_outputs)
            Change of the predictions.

        Returns
        -------
        bound : float
            The bound.
        """
        if not isinstance(pred, np.ndarray):
            return self._xp_remainder_bound(namespace_of(pred), pred, y, sample_weight, delta)
        return self._remainder_bound(pred, y, sample_weight, delta)

    def hessian_factor(self, pred, y, sample_weight):
        """Per-sample factor of the datafit's Hessian, for second-order solvers.

        Parameters
        ----------
        pred : ndarray of shape (n_samples, n_outputs)
            Predictions.
        y : ndarray of shape (n_samples, n_outputs)
            Encoded targets.
        sample_weight : ndarray of shape (n_samples,)
            Row weights.

        Returns
        -------
        factor : array of shape (n_samples, n_outputs, n_outputs)
            :math:`R_j` with :math:`R_j^\\top R_j = s_j\\nabla^2\\ell(\\hat y_j, y_j)`,
            in float64, in the namespace of ``pred`` (``y`` and
            ``sample_weight`` then in that namespace too).
        """
        if not isinstance(pred, np.ndarray):
            return self._xp_hessian_factor(namespace_of(pred), pred, y, sample_weight)
        return self._hessian_factor(_as_f64(pred), y, sample_weight)

    def cvxpy(self, pred, y, sample_weight):
        """CVXPY expression of the datafit.

        Parameters
        ----------
        pred : cvxpy expression of shape (n_samples, n_outputs)
            Predictions.
        y : ndarray of shape (n_samples, n_outputs)
            Encoded targets.
        sample_weight : ndarray of shape (n_samples,)
            Row weights.

        Returns
        -------
        expression : cvxpy.Expression
            Convex scalar expression equal to :meth:`value`.
        """
        return self._cvxpy(pred, y, sample_weight)

    def __repr__(self):
        return f"{type(self).__name__}()"


class SquaredError(Datafit):
    """Squared error :math:`\\ell(\\hat y, y) = \\tfrac12\\|\\hat y - y\\|_2^2`.

    Conjugate: :math:`\\ell^*(u, y) = \\tfrac12\\|u\\|^2 + u^\\top y`.
    """

    lipschitz = 1.0
    #: The curvature bound is exact, so line searches need no value test.
    quadratic = True

    def _value(self, pred, y, sample_weight):
        """Weighted sum of half squared errors."""
        r = _as_f64(pred) - y
        return 0.5 * float(sample_weight @ np.einsum("nc,nc->n", r, r))

    def _gradient(self, pred, y, sample_weight):
        """:math:`s \\odot (\\hat Y - Y)`."""
        g = pred - y.astype(pred.dtype, copy=False)
        g *= sample_weight.astype(pred.dtype, copy=False)[:, None]
        return g

    def _remainder_bound(self, pred, y, sample_weight, delta):
        """Exact: :math:`\\tfrac12\\sum_j s_j\\|\\Delta_j\\|^2`."""
        return 0.5 * float(sample_weight @ np.einsum("nc,nc->n", delta, delta))

    def _hessian_factor(self, pred, y, sample_weight):
        """:math:`\\sqrt{s_j}\\,I`."""
        n, C = pred.shape
        return np.sqrt(sample_weight)[:, None, None] * np.eye(C)[None]

    def _xp_hessian_factor(self, xp, pred, y, s):
        root = xp.sqrt(xp.reshape(s, (-1, 1)))
        return _xp_diagonal_factor(xp, root * xp.ones(pred.shape, dtype=xp.float64, device=device_of(pred)))

    def _dual(self, theta, y, sample_weight):
        """Dual objective :math:`\\sum_j -\\|\\theta_j\\|^2/(2s_j) + \\theta_j^\\top y_j`."""
        theta = _as_f64(theta)
        pos = sample_weight > 0
        sq = np.einsum("nc,nc->n", theta, theta)
        return float(-0.5 * np.sum(sq[pos] / sample_weight[pos]) + np.sum(theta * y))

    def _best_dual(self, theta, y, sample_weight, c_max):
        """Dual value at the closed-form best scaling of the concave quadratic ``c -> dual(c theta)``."""
        pos = sample_weight > 0
        quad = float(np.sum(np.einsum("nc,nc->n", theta, theta)[pos] / sample_weight[pos]))
        lin = float(np.sum(theta * y))
        if quad <= 0:  # theta = 0 on the weighted rows: the dual value is 0
            return 0.0
        c = float(np.clip(lin / quad, 0.0, c_max))
        return c * lin - 0.5 * c * c * quad

    def _optimal_intercept(self, z, y, sample_weight, intercept=None):
        """Weighted mean of the residual ``y - z``, per output."""
        return sample_weight @ (y - _as_f64(z)) / sample_weight.sum()

    def _xp_value(self, xp, pred, y, s):
        r = _xp_f64(xp, pred) - y
        return 0.5 * _xp_weighted(xp, s, xp.sum(r * r, axis=1))

    def _xp_gradient(self, xp, pred, y, s):
        return (pred - xp.astype(y, pred.dtype, copy=False)) * _xp_col(xp, s, pred.dtype)

    def _xp_remainder_bound(self, xp, pred, y, s, delta):
        return 0.5 * _xp_weighted(xp, s, xp.sum(delta * delta, axis=1))

    def _xp_quad_lin(self, xp, theta, y, s):
        pos, safe = _xp_positive(xp, s)
        theta = _xp_f64(xp, theta)
        sq = xp.where(pos, theta * theta / safe, xp.zeros_like(theta))
        return float(xp.sum(sq)), float(xp.sum(theta * y))

    def _xp_dual(self, xp, theta, y, s):
        quad, lin = self._xp_quad_lin(xp, theta, y, s)
        return -0.5 * quad + lin

    def _xp_best_dual(self, xp, theta, y, s, c_max):
        quad, lin = self._xp_quad_lin(xp, theta, y, s)
        if quad <= 0:
            return 0.0
        c = float(np.clip(lin / quad, 0.0, c_max))
        return c * lin - 0.5 * c * c * quad

    def _xp_optimal_intercept(self, xp, z, y, s, intercept=None):
        col = xp.reshape(s, (-1, 1))
        return to_numpy(xp.sum(col * (y - _xp_f64(xp, z)), axis=0) / xp.sum(s))

    def _cvxpy(self, pred, y, sample_weight):
        """CVXPY expression of the datafit for predictions ``pred`` (n, C)."""
        import cvxpy as cp

        return 0.5 * cp.sum(cp.multiply(sample_weight[:, None], cp.square(pred - y)))


class Logistic(Datafit):
    """Binary logistic loss :math:`\\ell(\\hat y, y) = \\log(1 + e^{-y\\hat y})`, :math:`y \\in \\{-1, 1\\}`.

    Conjugate: with :math:`p = -u y \\in [0, 1]`,
    :math:`\\ell^*(u, y) = p\\log p + (1-p)\\log(1-p)`.
    """

    lipschitz = 0.25

    def _value(self, pred, y, sample_weight):
        """Weighted sum of logistic losses."""
        return float(sample_weight @ np.logaddexp(0.0, -y * _as_f64(pred)).sum(axis=1))

    def _gradient(self, pred, y, sample_weight):
        """:math:`-s\\,y\\,\\sigma(-y\\hat y)`."""
        yt = y.astype(pred.dtype, copy=False)
        g = expit(-yt * pred)
        g *= -yt
        g *= sample_weight.astype(pred.dtype, copy=False)[:, None]
        return g

    def _remainder_bound(self, pred, y, sample_weight, delta):
        """Generalized self-concordance bound.

        :math:`\\ell'' = \\sigma(1-\\sigma)` changes by at most a factor
        :math:`e^{|t|}` over a shift :math:`t`, so the Taylor remainder is at
        most :math:`\\ell''(\\hat y)\\,(e^{|t|} - |t| - 1)` (Bach, 2010).
        """
        sig = expit(-y * _as_f64(pred))
        t = _as_f64(delta)
        return float(sample_weight @ (sig * (1 - sig) * t**2 * _kappa(t)).sum(axis=1))

    def _hessian_factor(self, pred, y, sample_weight):
        """Diagonal :math:`\\sqrt{s_j\\sigma(1-\\sigma)}` (the outputs are independent)."""
        sig = expit(-y * pred)
        root = np.sqrt(sample_weight[:, None] * sig * (1 - sig))
        return root[:, :, None] * np.eye(pred.shape[1])[None]

    def _xp_hessian_factor(self, xp, pred, y, s):
        sig = _xp_expit(xp, -y * _xp_f64(xp, pred))
        return _xp_diagonal_factor(xp, xp.sqrt(xp.reshape(s, (-1, 1)) * sig * (1 - sig)))

    def _dual(self, theta, y, sample_weight):
        """Dual objective :math:`-\\sum_j s_j (p_j\\log p_j + (1-p_j)\\log(1-p_j))`."""
        pos = sample_weight > 0
        p = np.zeros_like(_as_f64(theta))
        p[pos] = _as_f64(theta)[pos] * y[pos] / sample_weight[pos, None]
        if np.any(p < -1e-12) or np.any(p > 1 + 1e-12):
            return -np.inf
        p = np.clip(p, 0.0, 1.0)
        ent = xlogy(p, p) + xlogy(1 - p, 1 - p)
        return float(-sample_weight @ ent.sum(axis=1))

    def _optimal_intercept(self, z, y, sample_weight, intercept=None):
        """Newton's method on the (1-D, per output) intercept."""
        z = _as_f64(z)
        b = np.zeros(z.shape[1]) if intercept is None else np.array(intercept, float)
        s = sample_weight
        for c in range(z.shape[1]):
            zc, yc, sy = z[:, c], y[:, c], s * y[:, c]

            def fgh(bc):
                m = -yc * (zc + bc[0])
                sig = expit(m)
                return s @ np.logaddexp(0.0, m), -(sy @ sig)[None], ((s * sig) @ (1 - sig)).reshape(1, 1) + 1e-300

            b[c] = _newton(fgh, b[c : c + 1], s.sum())[0]
        return b

    def _xp_value(self, xp, pred, y, s):
        return _xp_weighted(xp, s, xp.sum(_xp_log1pexp(xp, -y * _xp_f64(xp, pred)), axis=1))

    def _xp_gradient(self, xp, pred, y, s):
        yt = xp.astype(y, pred.dtype, copy=False)
        return _xp_expit(xp, -yt * pred) * (-yt) * _xp_col(xp, s, pred.dtype)

    def _xp_remainder_bound(self, xp, pred, y, s, delta):
        sig = _xp_expit(xp, -y * _xp_f64(xp, pred))
        t = _xp_f64(xp, delta)
        return _xp_weighted(xp, s, xp.sum(sig * (1 - sig) * t * t * _xp_kappa(xp, t), axis=1))

    def _xp_dual(self, xp, theta, y, s):
        pos, safe = _xp_positive(xp, s)
        theta = _xp_f64(xp, theta)
        p = xp.where(pos, theta * y / safe, xp.zeros_like(theta))
        if float(xp.min(p)) < -1e-12 or float(xp.max(p)) > 1 + 1e-12:
            return -np.inf
        p = xp.clip(p, min=0.0, max=1.0)
        ent = _xp_xlogx(xp, p) + _xp_xlogx(xp, 1 - p)
        return -_xp_weighted(xp, s, xp.sum(ent, axis=1))

    def _xp_optimal_intercept(self, xp, z, y, s, intercept=None):
        # Newton on the host; each step's sums are computed on the device.
        z = _xp_f64(xp, z)
        b = np.zeros(z.shape[1]) if intercept is None else np.array(intercept, float)
        total = float(xp.sum(s))
        for c in range(z.shape[1]):
            zc, yc = z[:, c], y[:, c]
            sy = s * yc

            def fgh(bc, zc=zc, yc=yc, sy=sy):
                m = -yc * (zc + float(bc[0]))
                sig = _xp_expit(xp, m)
                return (
                    _xp_weighted(xp, s, _xp_log1pexp(xp, m)),
                    np.array([-_xp_weighted(xp, sy, sig)]),
                    np.array([[_xp_weighted(xp, s * sig, 1 - sig) + 1e-300]]),
                )

            b[c] = _newton(fgh, b[c : c + 1], total)[0]
        return b

    def _cvxpy(self, pred, y, sample_weight):
        """CVXPY expression of the datafit for predictions ``pred`` (n, C)."""
        import cvxpy as cp

        return cp.sum(
            cp.multiply(sample_weight[:, None], cp.logistic(-cp.multiply(y, pred)))
        )


class Multinomial(Datafit):
    """Multinomial cross-entropy :math:`\\ell(\\hat y, y) = \\log\\sum_k e^{\\hat y_k} - \\hat y^\\top y` for one-hot :math:`y`.

    Conjugate: with :math:`q = u + y` in the simplex,
    :math:`\\ell^*(u, y) = \\sum_k q_k \\log q_k`.
    """

    lipschitz = 0.5

    def _value(self, pred, y, sample_weight):
        """Weighted sum of cross-entropies."""
        logp = _log_softmax(_as_f64(pred))
        return float(-sample_weight @ np.einsum("nc,nc->n", logp, y))

    def _gradient(self, pred, y, sample_weight):
        """:math:`s \\odot (\\operatorname{softmax}(\\hat Y) - Y)`."""
        g = _softmax(pred)
        g -= y.astype(pred.dtype, copy=False)
        g *= sample_weight.astype(pred.dtype, copy=False)[:, None]
        return g

    def _remainder_bound(self, pred, y, sample_weight, delta):
        """Generalized self-concordance bound.

        Along :math:`\\Delta_j` the second derivative of the log-sum-exp is the
        variance of :math:`\\Delta_j` under the softmax, whose logarithm
        changes at rate at most the range :math:`r_j` of :math:`\\Delta_j`; the
        remainder is at most :math:`\\mathrm{Var}_j\\, (e^{r_j} - r_j - 1)/r_j^2`
        (Bach, 2010).
        """
        p = _softmax(_as_f64(pred))
        t = _as_f64(delta)
        mean = np.einsum("nc,nc->n", p, t)
        var = np.clip(np.einsum("nc,nc->n", p, t**2) - mean**2, 0.0, None)
        r = _row_reduce(np.maximum, t) - _row_reduce(np.minimum, t)
        return float(sample_weight @ (var * _kappa(r)))

    def _hessian_factor(self, pred, y, sample_weight):
        """:math:`\\sqrt{s_j}(\\operatorname{diag}\\sqrt{p} - \\sqrt{p}\\,p^\\top)`, whose Gram matrix is :math:`s_j(\\operatorname{diag} p - pp^\\top)`."""
        p = _softmax(pred)
        root = np.sqrt(p)
        R = root[:, :, None] * np.eye(p.shape[1])[None] - root[:, :, None] * p[:, None, :]
        return np.sqrt(sample_weight)[:, None, None] * R

    def _xp_hessian_factor(self, xp, pred, y, s):
        p = _xp_softmax(xp, _xp_f64(xp, pred))
        root = xp.expand_dims(xp.sqrt(p), axis=2)
        R = _xp_diagonal_factor(xp, xp.sqrt(p)) - root * xp.expand_dims(p, axis=1)
        return xp.reshape(xp.sqrt(s), (-1, 1, 1)) * R

    def _dual(self, theta, y, sample_weight):
        """Dual objective :math:`-\\sum_j s_j \\sum_k q_{jk}\\log q_{jk}`, :math:`q_j = y_j - \\theta_j/s_j`."""
        pos = sample_weight > 0
        q = np.zeros_like(_as_f64(theta))
        q[pos] = y[pos] - _as_f64(theta)[pos] / sample_weight[pos, None]
        if np.any(q < -1e-12):
            return -np.inf
        q = np.clip(q, 0.0, None)
        return float(-sample_weight @ xlogy(q, q).sum(axis=1))

    def _optimal_intercept(self, z, y, sample_weight, intercept=None):
        """Damped Newton on the intercept vector, centred (softmax is shift invariant)."""
        z = _as_f64(z)
        C = z.shape[1]
        s = sample_weight
        b = np.zeros(C) if intercept is None else np.array(intercept, float)
        target = s @ y
        # The Hessian is singular along the ones vector (shift invariance);
        # adding ones/C makes it invertible without changing the step's other
        # components, since the gradient sums to zero.
        shift = np.ones((C, C)) / C

        def fgh(b):
            # One exponential per entry and one logarithm per row. Each row's
            # loss is (max_k - true class) + log(sum of exponentials), both
            # terms small for a confident row; summing the maxima and the true
            # classes' scores apart would cancel and cost the end-games of
            # the solvers their last digits.
            zb = z + b
            top = _row_reduce(np.maximum, zb)
            p = np.exp(zb - top[:, None])
            total = _row_sum(p)
            p /= total[:, None]
            sp_ = p * s[:, None]
            hess = np.diag(sp_.sum(axis=0)) - sp_.T @ p + shift
            value = s @ ((top - np.einsum("nc,nc->n", zb, y)) + np.log(total))
            return value, s @ p - target, hess

        b = _newton(fgh, b, s.sum())
        return b - b.mean()

    def _xp_value(self, xp, pred, y, s):
        logp = _xp_log_softmax(xp, _xp_f64(xp, pred))
        return -_xp_weighted(xp, s, xp.sum(logp * y, axis=1))

    def _xp_gradient(self, xp, pred, y, s):
        g = _xp_softmax(xp, pred) - xp.astype(y, pred.dtype, copy=False)
        return g * _xp_col(xp, s, pred.dtype)

    def _xp_remainder_bound(self, xp, pred, y, s, delta):
        p = _xp_softmax(xp, _xp_f64(xp, pred))
        t = _xp_f64(xp, delta)
        mean = xp.sum(p * t, axis=1)
        var = xp.clip(xp.sum(p * t * t, axis=1) - mean * mean, min=0.0)
        r = xp.max(t, axis=1) - xp.min(t, axis=1)
        return _xp_weighted(xp, s, var * _xp_kappa(xp, r))

    def _xp_dual(self, xp, theta, y, s):
        pos, safe = _xp_positive(xp, s)
        theta = _xp_f64(xp, theta)
        q = xp.where(pos, y - theta / safe, xp.zeros_like(theta))
        if float(xp.min(q)) < -1e-12:
            return -np.inf
        q = xp.clip(q, min=0.0)
        return -_xp_weighted(xp, s, xp.sum(_xp_xlogx(xp, q), axis=1))

    def _xp_optimal_intercept(self, xp, z, y, s, intercept=None):
        # Newton on the host (C unknowns); sums and the C x C Gram matrix of
        # each step are computed on the device.
        z = _xp_f64(xp, z)
        C = z.shape[1]
        b = np.zeros(C) if intercept is None else np.array(intercept, float)
        col = xp.reshape(s, (-1, 1))
        target = to_numpy(xp.sum(col * y, axis=0))
        shift = np.ones((C, C)) / C
        dev = device_of(z)

        def fgh(b):
            logp = _xp_log_softmax(xp, z + xp.asarray(b, dtype=xp.float64, device=dev))
            p = xp.exp(logp)
            sp_ = p * col
            gram = to_numpy(xp.matmul(xp.permute_dims(sp_, (1, 0)), p))
            psum = to_numpy(xp.sum(sp_, axis=0))
            value = -_xp_weighted(xp, s, xp.sum(logp * y, axis=1))
            return value, psum - target, np.diag(psum) - gram + shift

        b = _newton(fgh, b, float(xp.sum(s)))
        return b - b.mean()

    def _cvxpy(self, pred, y, sample_weight):
        """CVXPY expression of the datafit for predictions ``pred`` (n, C)."""
        import cvxpy as cp

        lse = cp.log_sum_exp(pred, axis=1)
        return sample_weight @ lse - cp.sum(cp.multiply(sample_weight[:, None] * y, pred))
