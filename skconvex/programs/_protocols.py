"""The interfaces of the problem layer, declared as :class:`typing.Protocol` classes.

A solver is written against these protocols, not against concrete classes: any
object that provides the methods below can be handed to it. Capabilities that
only some implementations have are declared by flags, which solvers check on
entry (:func:`require_restrict`) instead of failing half-way.

* :class:`Operator` -- the linear map :math:`\\mathcal{A}: W \\mapsto \\sum_p D_p X W_p`
  (and its patch, ramp and token analogues) with its adjoint; the adjoint
  identity :math:`\\langle \\mathcal{A}W, R\\rangle = \\langle W, \\mathcal{A}^*R\\rangle`
  holds for every implementation (tested in ``tests/test_protocols.py``).
* :class:`Datafit` -- a separable loss :math:`F(z) = \\sum_j s_j \\ell(z_j, y_j)`
  with its Fenchel conjugate, the ingredient of every duality gap.
* :class:`Penalty` -- a sum of block norms :math:`R(W) = \\sum_p \\|W_p\\|` with
  its prox and dual norm.
* :class:`Problem` -- :math:`\\min_{W,b} F(\\mathcal{A}W + \\mathbf{1}b^\\top) + \\alpha R(W)`,
  possibly with cone constraints, and a certificate (a primal value and a dual
  lower bound) at any point.

References
----------
M. Pilanci and T. Ergen. Neural networks are convex regularizers: exact
polynomial-time convex optimization formulations for two-layer networks.
ICML 2020, arXiv:2002.10553.
"""

from typing import Protocol, runtime_checkable

__all__ = ["Operator", "Datafit", "Penalty", "Problem", "supports_restrict", "require_restrict"]


@runtime_checkable
class Operator(Protocol):
    """A linear map from blocks ``W`` to predictions, with its adjoint.

    ``forward(W)`` is :math:`\\mathcal{A}W` of shape ``(n_samples, n_outputs)``,
    ``adjoint(R)`` is :math:`\\mathcal{A}^*R` of the shape of ``W``. Operators
    whose blocks can be selected set the class attribute
    ``supports_restrict = True`` and implement ``restrict(blocks)``; those
    that only compute in float64 set ``supports_float32 = False`` (their
    ``astype`` returns a float64 operator).

    Parameters
    ----------
    *args, **kwargs
        Not used: a protocol is checked against (``isinstance`` with
        :func:`typing.runtime_checkable`), never instantiated.
    """

    dtype: object
    coef_shape: tuple
    supports_restrict: bool

    @property
    def n_samples(self):
        """Number of rows of the predictions."""

    def forward(self, W):
        """Apply the map to blocks ``W``.

        Parameters
        ----------
        W : ndarray of shape coef_shape
            Blocks.

        Returns
        -------
        pred : ndarray of shape (n_samples, n_outputs)
            :math:`\\mathcal{A}W`.
        """

    def adjoint(self, R):
        """Apply the adjoint map to residuals ``R``.

        Parameters
        ----------
        R : ndarray of shape (n_samples, n_outputs)
            Residuals.

        Returns
        -------
        G : ndarray of shape coef_shape
            :math:`\\mathcal{A}^*R`.
        """

    def lipschitz(self, *args, **kwargs):
        """Upper bound on the squared operator norm.

        Parameters
        ----------
        *args, **kwargs
            Implementation-specific (row weights, for instance).

        Returns
        -------
        L : float
            The bound, used as an inverse step size.
        """

    def astype(self, dtype):
        """Copy of the operator computing in ``dtype``.

        Parameters
        ----------
        dtype : {numpy.float32, numpy.float64}
            Compute dtype.

        Returns
        -------
        operator : Operator
            The copy.
        """


@runtime_checkable
class Datafit(Protocol):
    """A separable loss, its gradient and its Fenchel conjugate.

    ``dual(theta, y, s)`` is :math:`-\\sum_j s_j \\ell^*(-\\theta_j/s_j)`, so that
    for every ``theta`` in the dual-feasible set the dual objective is a lower
    bound on the primal optimum (weak duality).

    Parameters
    ----------
    *args, **kwargs
        Not used: a protocol is checked against (``isinstance`` with
        :func:`typing.runtime_checkable`), never instantiated.
    """

    def value(self, pred, y, sample_weight):
        """Weighted loss :math:`\\sum_j s_j \\ell(z_j, y_j)`.

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
            The loss.
        """

    def gradient(self, pred, y, sample_weight):
        """Gradient with respect to the predictions.

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
            The gradient.
        """

    def dual(self, theta, y, sample_weight):
        """Negated conjugate at ``-theta``: a term of the dual objective.

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
            Dual value (``-inf`` outside the conjugate's domain).
        """

    def optimal_intercept(self, z, y, sample_weight, intercept=None):
        """Intercept minimizing the loss for fixed linear predictions ``z``.

        Parameters
        ----------
        z : ndarray of shape (n_samples, n_outputs)
            Linear predictions.
        y : ndarray of shape (n_samples, n_outputs)
            Encoded targets.
        sample_weight : ndarray of shape (n_samples,)
            Row weights.
        intercept : ndarray of shape (n_outputs,), default=None
            Warm start.

        Returns
        -------
        intercept : ndarray of shape (n_outputs,)
            The minimizer.
        """

    def cvxpy(self, pred, y, sample_weight):
        """The loss as a cvxpy expression (conic reference solves).

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
            The loss.
        """


@runtime_checkable
class Penalty(Protocol):
    """A sum of block norms with its proximal map and dual norm.

    Parameters
    ----------
    *args, **kwargs
        Not used: a protocol is checked against (``isinstance`` with
        :func:`typing.runtime_checkable`), never instantiated.
    """

    def value(self, W):
        """The penalty :math:`R(W)`.

        Parameters
        ----------
        W : ndarray of shape coef_shape
            Blocks.

        Returns
        -------
        value : float
            The penalty.
        """

    def group_norms(self, W):
        """Norm of every block.

        Parameters
        ----------
        W : ndarray of shape coef_shape
            Blocks.

        Returns
        -------
        norms : ndarray of shape (n_blocks,)
            Block norms.
        """

    def prox(self, W, threshold, return_value=False):
        """Proximal map of ``threshold * R``.

        Parameters
        ----------
        W : ndarray of shape coef_shape
            Blocks.
        threshold : float
            Multiplier of the penalty.
        return_value : bool, default=False
            Also return the penalty of the result.

        Returns
        -------
        prox : ndarray of shape coef_shape
            The proximal point (and its penalty when ``return_value``).
        """

    def dual_norm(self, G):
        """Dual norm :math:`R^\\circ(G)`.

        Parameters
        ----------
        G : ndarray of shape coef_shape
            Adjoint gradient.

        Returns
        -------
        norm : float
            The dual norm.
        """

    def cvxpy(self, W):
        """The penalty as a cvxpy expression.

        Parameters
        ----------
        W : list of cvxpy expressions
            Blocks.

        Returns
        -------
        expression : cvxpy.Expression
            The penalty.
        """


@runtime_checkable
class Problem(Protocol):
    """A regularized convex program with a certificate at every point.

    ``evaluate(W, intercept)`` returns a certificate whose ``primal`` is the
    objective at ``W`` (after restoring feasibility for cone programs) and
    whose ``dual`` is a lower bound on the optimal value; their difference is
    the duality gap every solver reports.

    Parameters
    ----------
    *args, **kwargs
        Not used: a protocol is checked against (``isinstance`` with
        :func:`typing.runtime_checkable`), never instantiated.
    """

    operator: Operator
    datafit: Datafit
    penalty: Penalty
    alpha: float
    supports_restrict: bool

    @property
    def coef_shape(self):
        """Shape of ``W``."""

    def objective(self, W, intercept=None):
        """Objective at ``W`` (intercept minimized out when free).

        Parameters
        ----------
        W : ndarray of shape coef_shape
            Blocks.
        intercept : ndarray of shape (n_outputs,), default=None
            Warm start of the intercept.

        Returns
        -------
        objective : float
            The objective.
        """

    def evaluate(self, W, intercept=None):
        """Certificate, intercept and adjoint gradient at ``W``.

        Parameters
        ----------
        W : ndarray of shape coef_shape
            Blocks.
        intercept : ndarray of shape (n_outputs,), default=None
            Warm start of the intercept.

        Returns
        -------
        certificate : Certificate
            Primal value and dual lower bound.
        intercept : ndarray of shape (n_outputs,)
            Optimal intercept.
        G : ndarray of shape coef_shape
            Adjoint of the loss gradient.
        """

    def alpha_max(self):
        """Smallest ``alpha`` whose solution is zero.

        Returns
        -------
        alpha_max : float
            The value.
        """

    def astype(self, dtype):
        """Copy of the problem computing in ``dtype``.

        Parameters
        ----------
        dtype : {numpy.float32, numpy.float64}
            Compute dtype.

        Returns
        -------
        problem : Problem
            The copy.
        """


def supports_restrict(obj):
    """Whether ``obj`` (a problem or an operator) can be restricted to a subset of blocks.

    Parameters
    ----------
    obj : Problem or Operator
        The object to query.

    Returns
    -------
    supported : bool
        Its ``supports_restrict`` flag (False when it declares none).
    """
    return bool(getattr(obj, "supports_restrict", False))


def require_restrict(problem, solver, instead):
    """Raise a clear error when ``solver`` is handed a problem it cannot restrict.

    Parameters
    ----------
    problem : Problem
        The program handed to the solver.
    solver : str
        Name of the solver that needs ``restrict`` (working sets, support Newton).
    instead : str
        The solver to use for such programs.

    Raises
    ------
    TypeError
        If ``problem.supports_restrict`` is False.
    """
    if not supports_restrict(problem):
        raise TypeError(
            f"{solver} solves restricted sub-programs, which {type(problem).__name__} does not support "
            f"(supports_restrict=False); use {instead} instead."
        )
