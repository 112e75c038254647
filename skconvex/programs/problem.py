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

:meth:`ConvexProblem.to_namespace` moves a program to an array-API namespace
and device (:class:`NamespaceProblem`): its operator, datafit and penalty
then compute there, and so do the solvers that see it
(:func:`~skconvex.solvers.fista`,
:func:`~skconvex.solvers.working_set.working_set_solve`) through the few
array helpers of the problem (:meth:`ConvexProblem.asarray`,
:meth:`ConvexProblem.vdot`, ...), which are plain numpy on the host.
"""

import numpy as np

from ._namespace import supports_float64, to_numpy
from ._protocols import require_restrict, supports_restrict

__all__ = ["ConvexProblem", "NamespaceProblem", "Certificate", "array_helpers", "check_row_weights"]


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
        full = self.add_intercept(pred, b)
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
        return self.datafit.value(self.add_intercept(pred, b), self.y, self.sample_weight), b

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

    # Array helpers of the solvers: numpy here, the namespace's in
    # NamespaceProblem. Intercepts stay float64 numpy (a few numbers) in both.

    def asarray(self, W):
        """A copy of ``W`` in the compute dtype, in the problem's namespace.

        Parameters
        ----------
        W : array-like of shape coef_shape
            Blocks (numpy or of the problem's namespace).

        Returns
        -------
        W : ndarray of shape coef_shape
            A new array.
        """
        return np.array(W, dtype=self.dtype)

    def copy(self, W):
        """Copy of an array of the problem's namespace.

        Parameters
        ----------
        W : ndarray
            Array to copy.

        Returns
        -------
        copy : ndarray
            A new array.
        """
        return W.copy()

    def vdot(self, a, b):
        """Inner product :math:`\\langle a, b\\rangle` of two arrays of the same shape.

        Parameters
        ----------
        a, b : ndarray
            Arrays of the problem's namespace.

        Returns
        -------
        value : float
            The inner product.
        """
        return float(np.vdot(a, b))

    def add_intercept(self, pred, intercept):
        """Add the (numpy) intercept to predictions, in the dtype of ``pred``.

        Parameters
        ----------
        pred : ndarray of shape (n_samples, n_outputs)
            Predictions without intercept.
        intercept : ndarray of shape (n_outputs,)
            Intercept (float64 numpy).

        Returns
        -------
        full : ndarray of shape (n_samples, n_outputs)
            ``pred + intercept``.
        """
        return pred + intercept.astype(pred.dtype)

    def to_numpy(self, a):
        """An array of the problem's namespace as numpy (a small one: norms, a solution).

        Parameters
        ----------
        a : ndarray
            Array of the problem's namespace.

        Returns
        -------
        a : ndarray
            ``a`` itself on the host.
        """
        return a

    def from_host(self, a):
        """A numpy array in the problem's namespace (``a`` itself on the host).

        Parameters
        ----------
        a : ndarray
            Numpy array.

        Returns
        -------
        a : ndarray
            The array in the problem's namespace and on its device.
        """
        return a

    def take_blocks(self, W, blocks):
        """Select the blocks ``W[:, blocks]`` (a working set's starting point).

        Parameters
        ----------
        W : ndarray of shape coef_shape
            Blocks.
        blocks : ndarray of int
            Indices (numpy).

        Returns
        -------
        W_blocks : ndarray of shape (n_features, len(blocks), n_outputs)
            The selected blocks.
        """
        return W[:, blocks]

    def scatter_blocks(self, blocks, coef):
        """Full-size blocks, zero but for ``coef`` at ``blocks``.

        Parameters
        ----------
        blocks : ndarray of int
            Indices (numpy) of the blocks of ``coef``.
        coef : ndarray of shape (n_features, len(blocks), n_outputs)
            Blocks of a restricted solution.

        Returns
        -------
        W : ndarray of shape coef_shape
            The padded solution.
        """
        W = self.zeros()
        W[:, blocks] = coef
        return W

    def to_host(self):
        """The program on the host, in numpy (``self`` here).

        Returns
        -------
        problem : ConvexProblem
            The numpy program.
        """
        return self

    def to_namespace(self, xp, device):
        """The program with its arrays in namespace ``xp`` on ``device``.

        The operator's data and masks, the targets and the row weights move
        to ``device``; targets and weights in float64, which the certificate
        needs (see :meth:`~skconvex.programs.problem.NamespaceProblem.dual_value`).

        Parameters
        ----------
        xp : namespace
            Array-API namespace (scikit-learn's ``get_namespace``).
        device : device
            Device of ``xp``; it must support float64.

        Returns
        -------
        problem : NamespaceProblem
            The same program computing in ``xp``.

        Raises
        ------
        ValueError
            If ``device`` has no float64 (solve such programs on the host).
        """
        if not supports_float64(xp, device):
            raise ValueError(
                f"device={device!r} has no float64, which the certificate needs; "
                "solve on the host instead."
            )
        new = object.__new__(NamespaceProblem)
        new.__dict__.update(self.__dict__)
        new.operator = self.operator.to_namespace(xp, device)
        new.xp, new.device, new._host = xp, device, self
        new.y = xp.asarray(self.y, dtype=xp.float64, device=device)
        new.sample_weight = xp.asarray(self.sample_weight, dtype=xp.float64, device=device)
        return new

    def _with_operator(self, operator):
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.operator = operator
        return new



class _HostHelpers:
    """The numpy array helpers of :class:`ConvexProblem` for any other program."""

    def __init__(self, problem):
        self._problem = problem
        self.dtype = problem.dtype

    def zeros(self):
        return self._problem.zeros()

    def to_host(self):
        return self._problem

    asarray = ConvexProblem.asarray
    copy = ConvexProblem.copy
    vdot = ConvexProblem.vdot
    add_intercept = ConvexProblem.add_intercept
    to_numpy = ConvexProblem.to_numpy
    from_host = ConvexProblem.from_host
    take_blocks = ConvexProblem.take_blocks
    scatter_blocks = ConvexProblem.scatter_blocks


def array_helpers(problem):
    """The array helpers a solver uses on ``problem``'s arrays.

    Parameters
    ----------
    problem : Problem
        A program: a :class:`ConvexProblem` (or :class:`NamespaceProblem`),
        or any other object following the
        :class:`~skconvex.programs.Problem` protocol.

    Returns
    -------
    helpers : object
        ``problem`` itself when it is a :class:`ConvexProblem`; otherwise an
        object with the same helpers (``asarray``, ``copy``, ``vdot``,
        ``add_intercept``, ``to_numpy``, ``from_host``, ``take_blocks``,
        ``scatter_blocks``, ``to_host``) in numpy.
    """
    return problem if isinstance(problem, ConvexProblem) else _HostHelpers(problem)

class NamespaceProblem(ConvexProblem):
    """A :class:`~skconvex.programs.problem.ConvexProblem` whose arrays live in an array-API namespace.

    Built by :meth:`ConvexProblem.to_namespace`, not directly. The operator
    (:class:`~skconvex.programs.operators.NamespacePatternOperator`), the
    datafit, the penalty and the solver helpers compute in ``xp`` on
    ``device``; intercepts and scalars stay on the host (float64 numpy and
    Python floats). The certificate is computed in float64 on ``device``.

    Parameters
    ----------
    operator : NamespacePatternOperator
        The linear map :math:`\\mathcal{A}` in ``xp``.
    datafit : Datafit
        The loss :math:`F`.
    penalty : GroupL2 or GroupNuclear
        The block penalty :math:`R`.
    y : array of shape (n_samples, n_outputs)
        Encoded targets.
    sample_weight : array of shape (n_samples,)
        Row weights.
    alpha : float
        Penalty strength, >= 0.
    fit_intercept : bool, default=True
        Whether the output intercept :math:`b` is free (True) or zero.

    Attributes
    ----------
    xp : namespace
        The array-API namespace.
    device : device
        The device the products run on.
    y : array of shape (n_samples, n_outputs)
        Encoded targets, float64, in ``xp``.
    sample_weight : array of shape (n_samples,)
        Row weights, float64, in ``xp``.
    """

    def _xp_dtype(self):
        return self.operator.X.dtype

    def zeros(self):
        """Return the all-zero coefficient array in ``xp`` on ``device``.

        Returns
        -------
        W : array of shape coef_shape
            Zeros in the compute dtype.
        """
        return self.xp.zeros(self.coef_shape, dtype=self._xp_dtype(), device=self.device)

    def dual_value(self, grad, G):
        """Value of the scaled dual point :math:`-c\\nabla F`, computed in float64 on ``device``.

        Parameters
        ----------
        grad : array of shape (n_samples, n_outputs)
            Gradient of the datafit, in ``xp``.
        G : array of shape coef_shape
            ``operator.adjoint(grad)``.

        Returns
        -------
        dual : float
            A lower bound on the optimal value.
        """
        theta = -self.xp.astype(grad, self.xp.float64)
        dn = self.penalty.dual_norm(G)
        c_max = np.inf if dn == 0 else self.alpha / dn
        return self.datafit.best_dual(theta, self.y, self.sample_weight, c_max)

    def asarray(self, W):
        """A copy of ``W`` (numpy or ``xp``) in ``xp`` on ``device``, in the compute dtype.

        Parameters
        ----------
        W : array-like of shape coef_shape
            Blocks.

        Returns
        -------
        W : array of shape coef_shape
            A new array.
        """
        xp = self.xp
        if isinstance(W, np.ndarray):
            return xp.asarray(np.array(W, dtype=self.dtype), device=self.device)
        return xp.asarray(xp.astype(W, self._xp_dtype()), copy=True)

    def copy(self, W):
        """Copy of an array of ``xp``.

        Parameters
        ----------
        W : array
            Array to copy.

        Returns
        -------
        copy : array
            A new array.
        """
        return self.xp.asarray(W, copy=True)

    def vdot(self, a, b):
        """Inner product of two real arrays of ``xp``, as a Python float.

        Parameters
        ----------
        a, b : array
            Arrays of the same shape.

        Returns
        -------
        value : float
            The inner product.
        """
        return float(self.xp.sum(a * b))

    def add_intercept(self, pred, intercept):
        """Add the numpy intercept, moved to ``device`` in the dtype of ``pred``, to ``pred``.

        Parameters
        ----------
        pred : array of shape (n_samples, n_outputs)
            Predictions without intercept.
        intercept : ndarray of shape (n_outputs,)
            Intercept (float64 numpy).

        Returns
        -------
        full : array of shape (n_samples, n_outputs)
            ``pred + intercept``.
        """
        return pred + self.xp.asarray(np.asarray(intercept), dtype=pred.dtype, device=self.device)

    def to_numpy(self, a):
        """An array of ``xp`` copied to the host as numpy.

        Parameters
        ----------
        a : array
            Array of ``xp``.

        Returns
        -------
        a : ndarray
            The copy.
        """
        return to_numpy(a)

    def from_host(self, a):
        """A numpy array moved to ``xp`` on ``device``.

        Parameters
        ----------
        a : ndarray
            Numpy array (an array of ``xp`` is returned as is).

        Returns
        -------
        a : array
            The array in ``xp``.
        """
        if not isinstance(a, np.ndarray):
            return a
        return self.xp.asarray(np.ascontiguousarray(a), device=self.device)

    def take_blocks(self, W, blocks):
        """Gather the blocks ``W[:, blocks]`` on ``device``.

        Parameters
        ----------
        W : array of shape coef_shape
            Blocks.
        blocks : ndarray of int
            Indices (numpy).

        Returns
        -------
        W_blocks : array of shape (n_features, len(blocks), n_outputs)
            The selected blocks.
        """
        index = self.xp.asarray(np.asarray(blocks, dtype=np.int64), device=self.device)
        return self.xp.take(W, index, axis=1)

    def scatter_blocks(self, blocks, coef):
        """Full-size blocks, zero but for ``coef`` at ``blocks`` (a gather: no item assignment).

        Parameters
        ----------
        blocks : ndarray of int
            Indices (numpy) of the blocks of ``coef``.
        coef : array of shape (n_features, len(blocks), n_outputs)
            Blocks of a restricted solution.

        Returns
        -------
        W : array of shape coef_shape
            The padded solution.
        """
        xp = self.xp
        d, P, C = self.coef_shape
        # Every block not in ``blocks`` gathers the appended zero block.
        source = np.full(P, len(blocks), dtype=np.int64)
        source[np.asarray(blocks, dtype=np.int64)] = np.arange(len(blocks))
        zero = xp.zeros((d, 1, C), dtype=coef.dtype, device=self.device)
        padded = xp.concat([coef, zero], axis=1)
        return xp.take(padded, xp.asarray(source, device=self.device), axis=1)

    def to_host(self):
        """The same program (blocks and compute dtype) on the host, in numpy.

        Returns
        -------
        problem : ConvexProblem
            Shares the host program's targets and weights; its operator is
            the host operator of the same blocks.
        """
        return self._host._with_operator(self.operator.to_host())

    def to_namespace(self, xp, device):
        """Refuse a second move (the program already computes in a namespace).

        Parameters
        ----------
        xp : namespace
            Array-API namespace.
        device : device
            Device.

        Returns
        -------
        problem : NamespaceProblem
            ``self`` when ``xp`` and ``device`` are its own.

        Raises
        ------
        ValueError
            If they differ: move the host program (:meth:`to_host`) instead.
        """
        if xp is self.xp and device == self.device:
            return self
        raise ValueError("Move the host program (to_host()) to another namespace.")
