"""A composite convex program assembled from the problem pieces.

.. math::
    \\min_{W,\\, b}\\; F(\\mathcal{A}W + \\mathbf{1} b^\\top) + \\alpha R(W)

with a datafit :math:`F` (:mod:`skconvex.programs.datafits`), a pattern operator
:math:`\\mathcal{A}` (:mod:`skconvex.programs.operators`), a block penalty :math:`R`
(:mod:`skconvex.programs.penalties`) and an optional unpenalized output intercept
:math:`b`. Solvers in :mod:`skconvex.solvers` see only this object.

The intercept is minimized out: every evaluation at a point :math:`W` uses
:math:`b^*(W) = \\arg\\min_b F(\\mathcal{A}W + \\mathbf{1}b^\\top)`. The reduced
objective is convex and as smooth as :math:`F`, its gradient is
:math:`\\mathcal{A}^\\top\\nabla F` at :math:`b^*(W)` (Danskin), and that
gradient sums to zero over the rows, so scaling it gives a dual-feasible point
for the program with intercept at no extra cost.
"""

import numpy as np

from ._protocols import require_restrict, supports_restrict

__all__ = ["ConvexProblem", "Certificate", "check_row_weights"]


def check_row_weights(sample_weight):
    """Return row weights as float64 after checking that they are finite and >= 0.

    With a negative weight the weighted loss is unbounded below, so no
    primal-dual pair exists and a duality gap would certify nothing; solvers
    call this so that such a program is refused rather than "solved".

    Parameters
    ----------
    sample_weight : array-like of shape (n_samples,)
        Row weights.

    Returns
    -------
    sample_weight : ndarray of shape (n_samples,)
        The weights as float64.

    Raises
    ------
    ValueError
        If a weight is negative or not finite.
    """
    s = np.asarray(sample_weight, dtype=np.float64)
    if not np.all(np.isfinite(s)):
        raise ValueError("sample_weight must be finite (got NaN or inf).")
    if np.any(s < 0):
        raise ValueError(
            "sample_weight must be non-negative: with a negative weight the "
            "weighted loss is unbounded below and has no optimum to certify."
        )
    return s


class Certificate:
    """Primal value, certified lower bound and gap at one point.

    Parameters
    ----------
    primal : float
        Objective value at the point.
    dual : float
        Value of a feasible dual point.

    Attributes
    ----------
    primal : float
        Objective value at the point.
    dual : float
        Value of a feasible dual point: a lower bound on the optimum.
    gap : float
        ``primal - dual`` (an upper bound on the suboptimality).
    """

    __slots__ = ("primal", "dual", "gap")

    def __init__(self, primal, dual):
        self.primal = float(primal)
        self.dual = float(dual)
        self.gap = self.primal - self.dual

    def __repr__(self):
        return f"Certificate(primal={self.primal:.10g}, dual={self.dual:.10g}, gap={self.gap:.3g})"


class ConvexProblem:
    """:math:`\\min_{W,b} F(\\mathcal{A}W + \\mathbf{1}b^\\top) + \\alpha R(W)`.

    Parameters
    ----------
    operator : PatternOperator
        The linear map :math:`\\mathcal{A}`.
    datafit : Datafit
        The loss :math:`F` (see :mod:`skconvex.programs.datafits`).
    penalty : GroupL2 or GroupNuclear
        The block penalty :math:`R`.
    y : ndarray of shape (n_samples, n_outputs)
        Encoded targets.
    sample_weight : ndarray of shape (n_samples,)
        Row weights (the estimators normalize them to sum to one).
    alpha : float
        Penalty strength, >= 0.
    fit_intercept : bool, default=True
        Whether the output intercept :math:`b` is free (True) or zero.
    """

    def __init__(self, operator, datafit, penalty, y, sample_weight, alpha, *, fit_intercept=True):
        self.operator = operator
        self.datafit = datafit
        self.penalty = penalty
        self.y = np.asarray(y, dtype=np.float64).reshape(operator.n_samples, -1)
        self.sample_weight = check_row_weights(sample_weight)
        self.alpha = float(alpha)
        self.fit_intercept = bool(fit_intercept)
        self.n_outputs = self.y.shape[1]

    @property
    def dtype(self):
        """Compute dtype of the operator."""
        return self.operator.dtype

    @property
    def coef_shape(self):
        """Shape of ``W``."""
        return self.operator.coef_shape

    def zeros(self):
        """Return the all-zero coefficient array.

        Returns
        -------
        W : ndarray of shape coef_shape
            Zeros in the compute dtype.
        """
        return np.zeros(self.coef_shape, dtype=self.dtype)

    def intercept(self, pred, intercept=None):
        """Return the optimal intercept for linear predictions ``pred``.

        Parameters
        ----------
        pred : ndarray of shape (n_samples, n_outputs)
            :math:`\\mathcal{A}W`, without intercept.
        intercept : ndarray of shape (n_outputs,), default=None
            Warm start.

        Returns
        -------
        intercept : ndarray of shape (n_outputs,)
            Zeros when ``fit_intercept`` is False.
        """
        if not self.fit_intercept:
            return np.zeros(self.n_outputs)
        return self.datafit.optimal_intercept(pred, self.y, self.sample_weight, intercept)

    def smooth(self, pred, intercept=None):
        """Reduced datafit at linear predictions ``pred`` (intercept minimized out).

        Parameters
        ----------
        pred : ndarray of shape (n_samples, n_outputs)
            :math:`\\mathcal{A}W`, without intercept.
        intercept : ndarray of shape (n_outputs,), default=None
            Warm start for the intercept.

        Returns
        -------
        value : float
            Datafit value at the optimal intercept.
        intercept : ndarray of shape (n_outputs,)
            The optimal intercept.
        grad : ndarray of shape (n_samples, n_outputs)
            :math:`\\nabla F` at the full predictions, in the compute dtype.
        """
        b = self.intercept(pred, intercept)
        full = pred + b.astype(pred.dtype)
        value, grad = self.datafit.value_and_gradient(full, self.y, self.sample_weight)
        return value, b, grad

    def smooth_value(self, pred, intercept=None):
        """Compute the reduced datafit like :meth:`smooth`, without the gradient.

        Parameters
        ----------
        pred : ndarray of shape (n_samples, n_outputs)
            :math:`\\mathcal{A}W`, without intercept.
        intercept : ndarray of shape (n_outputs,), default=None
            Warm start for the intercept.

        Returns
        -------
        value : float
            Datafit value at the optimal intercept.
        intercept : ndarray of shape (n_outputs,)
            The optimal intercept.
        """
        b = self.intercept(pred, intercept)
        return self.datafit.value(pred + b.astype(pred.dtype), self.y, self.sample_weight), b

    def objective(self, W, intercept=None):
        """Compute the objective at ``W`` with the optimal intercept.

        Parameters
        ----------
        W : ndarray of shape coef_shape
            Blocks.
        intercept : ndarray of shape (n_outputs,), default=None
            Warm start for the intercept.

        Returns
        -------
        objective : float
            :math:`F(\\mathcal{A}W + \\mathbf{1}b^{*\\top}) + \\alpha R(W)`.
        intercept : ndarray of shape (n_outputs,)
            The optimal intercept :math:`b^*`.
        """
        value, b, _ = self.smooth(self.operator.forward(W), intercept)
        return value + self.alpha * self.penalty.value(W), b

    def certificate(self, W, smooth_value, grad, G):
        """Build the certificate at ``W`` from quantities a solver already has.

        Parameters
        ----------
        W : ndarray of shape coef_shape
            Blocks.
        smooth_value : float
            Reduced datafit value at ``W``.
        grad : ndarray of shape (n_samples, n_outputs)
            Datafit gradient at ``W`` (optimal intercept).
        G : ndarray of shape coef_shape
            ``operator.adjoint(grad)``.

        Returns
        -------
        certificate : Certificate
            Primal value at ``W`` and the dual value of the scaled gradient.
        """
        primal = smooth_value + self.alpha * self.penalty.value(W)
        return Certificate(primal, self.dual_value(grad, G))

    def dual_value(self, grad, G):
        r"""Value of the dual point obtained by scaling ``-grad``.

        The dual point is :math:`\Theta = -c\,\nabla F` with ``c`` chosen so
        that the dual constraint :math:`R^\circ(\mathcal{A}^\top\Theta) \le
        \alpha` holds (and, for the squared loss, optimally within it). It is
        feasible when ``grad`` was taken at an optimal intercept.

        Parameters
        ----------
        grad : ndarray of shape (n_samples, n_outputs)
            Gradient of the datafit at some predictions.
        G : ndarray of shape coef_shape
            ``operator.adjoint(grad)``.

        Returns
        -------
        dual : float
            A lower bound on the optimal value.
        """
        theta = -np.asarray(grad, dtype=np.float64)
        dn = self.penalty.dual_norm(G)
        c_max = np.inf if dn == 0 else self.alpha / dn
        return self.datafit.best_dual(theta, self.y, self.sample_weight, c_max)

    def evaluate(self, W, intercept=None):
        """Evaluate ``W`` fully: forward, intercept, gradient, adjoint, certificate.

        Parameters
        ----------
        W : ndarray of shape coef_shape
            Blocks.
        intercept : ndarray of shape (n_outputs,), default=None
            Warm start for the intercept.

        Returns
        -------
        certificate : Certificate
            Primal value at ``W`` and a certified lower bound.
        intercept : ndarray of shape (n_outputs,)
            The optimal intercept.
        G : ndarray of shape coef_shape
            Gradient of the reduced datafit with respect to ``W``.
        """
        value, b, grad = self.smooth(self.operator.forward(W), intercept)
        G = self.operator.adjoint(grad)
        return self.certificate(W, value, grad, G), b, G

    def alpha_max(self):
        """Smallest ``alpha`` for which ``W = 0`` is optimal.

        Returns
        -------
        alpha_max : float
            :math:`R^\\circ(\\mathcal{A}^\\top \\nabla F(\\mathbf{1}b^{*\\top}))`.
        """
        _, _, G = self.evaluate(self.zeros())
        return self.penalty.dual_norm(G)

    def astype(self, dtype):
        """Return the same problem with the operator in another compute dtype.

        Parameters
        ----------
        dtype : {np.float32, np.float64}
            Target dtype.

        Returns
        -------
        problem : ConvexProblem
            Shares the targets and weights.
        """
        return self._with_operator(self.operator.astype(dtype))

    def densified(self):
        """Return the same problem over a dense copy of the operator's sparse ``X``.

        Solvers call this when their exact steps need dense products of
        ``X`` and the problem is small enough (they decide; this method only
        refuses copies beyond the memory budget).

        Returns
        -------
        problem : ConvexProblem
            ``self`` when the operator is not sparse; otherwise a view whose
            operator is :meth:`PatternOperator.densified
            <skconvex.programs.operators.PatternOperator.densified>`, sharing
            the datafit, penalty, targets, weights (and, for cone-constrained
            programs, the cones).

        Raises
        ------
        TypeError
            If the operator is sparse but has no dense counterpart.
        MemoryBudgetError
            If the dense copy exceeds the memory budget.
        """
        operator = self.operator
        if not getattr(operator, "sparse", False):
            return self
        if not hasattr(operator, "densified"):
            raise TypeError(
                f"{type(operator).__name__} has no densified(): this program cannot "
                "be solved on a dense copy of X."
            )
        return self._with_operator(operator.densified())

    @property
    def supports_restrict(self):
        """Whether :meth:`restrict` applies: the operator's flag (subclasses may turn it off)."""
        return supports_restrict(self.operator)

    def restrict(self, blocks):
        """Return the problem restricted to a subset of the pattern blocks.

        Parameters
        ----------
        blocks : ndarray of int
            Indices of the blocks kept (a working set).

        Returns
        -------
        problem : ConvexProblem
            The restricted program; its solutions padded with zeros are
            feasible for the full one.

        Raises
        ------
        TypeError
            If the program does not support restriction (``supports_restrict``).
        """
        require_restrict(self, "restrict", "a solver of the full program")
        return self._with_operator(self.operator.restrict(blocks))

    def _with_operator(self, operator):
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.operator = operator
        return new
