"""Newton's method on the support of a block-sparse point: the end-game of FISTA.

Once a first-order method has found which blocks of a group-lasso program are
non-zero, the program restricted to them is smooth: on a non-zero block the
norm has gradient :math:`\\alpha W_p/\\|W_p\\|` and Hessian
:math:`\\tfrac{\\alpha}{\\|W_p\\|}(I - n_p n_p^\\top)`, :math:`n_p = W_p/\\|W_p\\|`.
Newton's method there converges quadratically, where FISTA's certified gap
closes only linearly and lags its primal value (the dual point is the scaled
gradient, whose error is about the square root of the primal error). With the
right support a few Newton steps bring the *full* program's certified gap from
1e-3 to below 1e-6, and the point they return is a valid (feasible) point of
the full program whatever the support, so a wrong guess costs time, never
correctness.

Newton systems are solved by conjugate gradients with the matrix-free
operator (products cost as much as one FISTA iteration on the support),
preconditioned per block by the diagonal of the data curvature plus the exact
curvature of the norm (inverted by Sherman-Morrison); the intercept is
minimized out, so its Schur complement enters the Hessian as a rank-one
correction (rank C for C outputs). Several outputs (Frobenius blocks) use the
datafit's per-sample C x C Hessians; a preconditioner that also kept the
coupling of the classes was tried and saved under 2 % of the products, so the
diagonal one stays. Nuclear-norm blocks of several outputs are not smooth on
their support; :func:`support_newton` hands them to
:func:`~skconvex.solvers.factored_newton.factored_newton` (Newton on their
factors).

A program in an array-API namespace
(:class:`~skconvex.programs.problem.NamespaceProblem`) is solved in that
namespace and on its device: products, the datafit's Hessians, conjugate
gradients and preconditioner stay there, in the program's compute dtype, and
only one number per block (norms steering which blocks drop) and scalars
come to the host. Several outputs with an intercept need the ``linalg``
extension's ``pinv`` (a C x C pseudo-inverse); without it
:func:`runs_in_namespace` is False and the caller runs the end-game on the
host copy of the program. The numpy path is the reference: its arithmetic is
unchanged.
"""

from typing import Protocol, runtime_checkable

import numpy as np

from ..programs._namespace import to_numpy
from ..programs._protocols import supports_restrict
from . import factored_newton as _factored
from ._curvature import DataCurvature

__all__ = ["SupportModel", "applies_to", "newton_on_support", "runs_in_namespace", "support_newton"]


@runtime_checkable
class SupportModel(Protocol):
    """The smooth part of a program on a support of blocks, as ``newton_on_support`` needs it.

    :math:`F(\\mathcal{A}_S U + \\mathbf{1}b^\\top)` with the intercept
    minimized out, known only through its values, its gradient and the
    products of its curvature. In memory (``support_newton``) the products are
    operator products; on a dask cluster (``skconvex.distributed``) each is a
    round of per-block sums.

    Parameters
    ----------
    *args, **kwargs
        Not used: a protocol is checked against (``isinstance`` with
        :func:`typing.runtime_checkable`), never instantiated.
    """

    def value(self, U, b):
        """Return the datafit's value at ``U`` with its optimal intercept.

        Parameters
        ----------
        U : array of shape (n_features, n_support, n_outputs)
            The support's blocks.
        b : ndarray of shape (n_outputs,) or None
            Where the intercept's minimization starts.

        Returns
        -------
        value : float
            The datafit at the optimal intercept.
        intercept : ndarray of shape (n_outputs,)
            That intercept.
        """

    def linearize(self, U, b):
        """Return the optimal intercept and the datafit's gradient at ``U``, keeping the curvature there.

        Parameters
        ----------
        U : array of shape (n_features, n_support, n_outputs)
            The support's blocks.
        b : ndarray of shape (n_outputs,) or None
            Where the intercept's minimization starts.

        Returns
        -------
        intercept : ndarray of shape (n_outputs,)
            The optimal intercept at ``U``.
        gradient : array of the shape of ``U``
            :math:`\\mathcal{A}_S^\\top \\nabla F` there.
        """

    def self_products(self, U):
        """Return each block's own curvature, at the last ``linearize``, applied to it.

        Parameters
        ----------
        U : array of shape (n_features, n_support, n_outputs)
            The point of the last ``linearize``.

        Returns
        -------
        products : array of the shape of ``U``
            :math:`\\mathcal{A}_p^\\top H \\mathcal{A}_p U_p` for every block ``p``.
        """

    def hessian_product(self, V):
        """Return the curvature at the last ``linearize``, intercept minimized out, applied to ``V``.

        Parameters
        ----------
        V : array of shape (n_features, n_support, n_outputs)
            A direction.

        Returns
        -------
        product : array of the shape of ``V``
            The curvature's product with ``V``.
        """

    def block_diagonals(self):
        """Return the diagonals of the blocks of the curvature at the last ``linearize``.

        Returns
        -------
        diagonals : array of shape (n_features, n_support, n_outputs)
            The diagonal of each block of :math:`\\mathcal{A}_S^\\top H\\mathcal{A}_S`.
        """

    def restrict(self, keep):
        """Return the same model on the blocks ``keep`` of its support.

        Parameters
        ----------
        keep : ndarray of int
            Positions in the current support.

        Returns
        -------
        model : SupportModel
            The model on the smaller support.
        """


def _applicable(problem):
    """Euclidean block norms over a pattern operator.

    Frobenius blocks (:class:`~skconvex.programs.penalties.GroupL2` itself)
    take any number of outputs over a
    :class:`~skconvex.programs.operators.PatternOperator`; its subclasses
    only coincide with a Euclidean norm for one output (the nuclear norm of a
    column is its length).
    """
    from ..programs.operators import NamespacePatternOperator, PatternOperator

    op = problem.operator
    C = op.coef_shape[2]
    if isinstance(op, NamespacePatternOperator):
        return _namespace_applicable(problem)
    # Several outputs need the blocks' own products with the full C x C
    # curvature, which only the in-memory operator forms (row-blocked ones
    # stay with the first-order method).
    if C > 1 and not isinstance(op, PatternOperator):
        return False
    return (
        supports_restrict(problem)
        and _euclidean_blocks(problem.penalty, C)
        and hasattr(op, "block_gram_diagonals")
        and hasattr(problem.datafit, "hessian_factor")
    )


def _euclidean_blocks(penalty, n_outputs):
    """Whether each block's norm is the Euclidean norm of its entries (smooth off zero)."""
    from ..programs.penalties import ColumnGroupL2, GroupL2

    return isinstance(penalty, GroupL2) and not isinstance(penalty, ColumnGroupL2) and (
        n_outputs == 1 or type(penalty) is GroupL2
    )


def applies_to(problem):
    """Whether :func:`~skconvex.solvers.support_newton.support_newton` may apply to ``problem``.

    The end-game needs block norms that are Euclidean in the blocks' entries
    (Frobenius blocks, or nuclear blocks of one output), or nuclear blocks of
    several outputs, which it hands to
    :func:`~skconvex.solvers.factored_newton.factored_newton` (the nuclear
    norm of a matrix with several columns is not smooth on its support, but
    its factored form is). When this is False no call applies, on the
    program or on its host copy, so a caller can drop the polish from the
    start.

    Parameters
    ----------
    problem : ConvexProblem
        The program.

    Returns
    -------
    applies : bool
        False when the polish can never apply to ``problem``.
    """
    from ..programs.penalties import GroupNuclear

    return _euclidean_blocks(problem.penalty, problem.operator.coef_shape[2]) or (
        type(problem.penalty) is GroupNuclear
    )


def _has_pinv(xp):
    """Whether ``xp`` has the ``linalg`` extension's pseudo-inverse."""
    return hasattr(getattr(xp, "linalg", None), "pinv")


def _namespace_applicable(problem):
    """The end-game computes in the namespace of a :class:`NamespaceProblem`.

    It needs the datafit's Hessian in the namespace and, for several outputs
    with an intercept, the pseudo-inverse of a C x C matrix from the
    namespace's ``linalg`` extension; the rest is products, reductions and
    ``take``. Otherwise :func:`~skconvex.solvers.fista.polish_and_certify`
    runs the end-game on the host copy of the program.
    """
    from ..programs.datafits import Datafit

    datafit = problem.datafit
    C = problem.operator.coef_shape[2]
    has_pinv = _has_pinv(problem.xp)
    return _euclidean_blocks(problem.penalty, C) and (
        isinstance(datafit, Datafit)
        and type(datafit)._xp_hessian_factor is not Datafit._xp_hessian_factor
        and (C == 1 or not problem.fit_intercept or has_pinv)
    )


def runs_in_namespace(problem):
    """Whether :func:`~skconvex.solvers.support_newton.support_newton` computes on ``problem``'s own arrays.

    Parameters
    ----------
    problem : ConvexProblem
        A program, numpy or in an array-API namespace
        (:class:`~skconvex.programs.problem.NamespaceProblem`).

    Returns
    -------
    in_namespace : bool
        True for numpy programs, for namespace programs whose datafit,
        penalty and namespace the end-game supports (see
        :func:`support_newton`) and for those it does not apply to at all
        (it returns at once); False when the end-game must run on the host
        copy of the program.
    """
    from ..programs.operators import NamespacePatternOperator

    if not isinstance(problem.operator, NamespacePatternOperator):
        return True
    host = problem.to_host()
    return _namespace_applicable(problem) or not (_applicable(host) or _factored.applies_to(host))


class _HostOps:
    """The end-game's array operations on numpy arrays (the reference path)."""

    def __init__(self, dtype):
        self.dtype = dtype

    @staticmethod
    def block_dot(a, b):
        """Inner product of every block of ``a`` and ``b`` (d, P, C)."""
        return np.einsum("dpc,dpc->p", a, b)

    @staticmethod
    def vdot(a, b):
        return float(np.vdot(a, b))

    @staticmethod
    def host(a):
        return a

    @staticmethod
    def per_block(v):
        return v[None, :, None]

    @staticmethod
    def take(U, keep):
        return U[:, keep]

    def astype(self, a):
        return a.astype(self.dtype)


class _NamespaceOps:
    """The same operations in an array-API namespace, on the program's device."""

    def __init__(self, xp, device, dtype):
        self.xp, self.device, self.dtype = xp, device, dtype

    def block_dot(self, a, b):
        return self.xp.sum(a * b, axis=(0, 2))

    def vdot(self, a, b):
        return float(self.xp.sum(a * b))

    @staticmethod
    def host(a):
        # Per-block scalars (length P) that steer the end-game's decisions.
        return to_numpy(a)

    def per_block(self, v):
        return self.xp.reshape(v, (1, -1, 1))

    def take(self, U, keep):
        index = self.xp.asarray(np.asarray(keep, dtype=np.int64), device=self.device)
        return self.xp.take(U, index, axis=1)

    def astype(self, a):
        return self.xp.astype(a, self.dtype)


def _block_norms(U, ops=None):
    """Frobenius norm of every block of ``U`` (d, P, C), in the namespace of ``ops``."""
    if isinstance(ops, _NamespaceOps):
        return ops.xp.sqrt(ops.block_dot(U, U))
    return np.sqrt(np.einsum("dpc,dpc->p", U, U))


def _preconditioner(diagonals, curv, normals):
    """Inverse of each block's Gram diagonal plus its exact norm curvature.

    Block p is :math:`\\mathrm{diag}(g_p) + c_p(I - n_pn_p^\\top)` over its
    d x C entries, a diagonal minus a rank-one term: Sherman-Morrison inverts
    it in O(dC).

    Parameters are ``diagonals`` (d, P, C), ``curv`` (P,), ``normals`` (d, P, C).
    """
    E = diagonals + curv[None, :, None]
    E += 1e-12 * np.maximum(E.max(axis=(0, 2), keepdims=True), np.finfo(float).tiny)
    En = normals / E
    denom = 1.0 - curv * np.einsum("dpc,dpc->p", normals, En)
    coef = curv / np.maximum(denom, 1e-12)

    def apply(R):
        return R / E + En * (coef * np.einsum("dpc,dpc->p", En, R))[None, :, None]

    return apply


def _namespace_preconditioner(ops, diagonals, curv, normals):
    """:func:`_preconditioner` in the namespace of ``ops``."""
    xp = ops.xp
    E = diagonals + ops.per_block(curv)
    E = E + 1e-12 * xp.clip(xp.max(E, axis=(0, 2), keepdims=True), min=float(np.finfo(float).tiny))
    En = normals / E
    denom = 1.0 - curv * ops.block_dot(normals, En)
    coef = curv / xp.clip(denom, min=1e-12)

    def apply(R):
        return R / E + En * ops.per_block(coef * ops.block_dot(En, R))

    return apply


class _NamespaceCurvature:
    """:class:`~skconvex.solvers._curvature.DataCurvature` computed in the namespace of ``ops``."""

    def __init__(self, ops, datafit, pred, y, sample_weight, fit_intercept):
        xp, dtype = ops.xp, ops.dtype
        self.ops = ops
        R = datafit.hessian_factor(pred, y, sample_weight)
        self.C = R.shape[1]
        # Diagonal of R^T R per sample.
        self.diag = xp.astype(xp.sum(R * R, axis=1), dtype)
        if self.C == 1:
            h = R[:, 0, 0] ** 2
            self.H = None
            h_sum = float(xp.sum(h))
            self.schur = fit_intercept and h_sum > 0
            self.h, self.h_sum = xp.astype(h, dtype), h_sum
        else:
            H = xp.matmul(xp.permute_dims(R, (0, 2, 1)), R)
            self.schur = bool(fit_intercept)
            if self.schur:
                # C x C and symmetric positive semi-definite.
                self.H_bb_pinv = xp.linalg.pinv(xp.sum(H, axis=0))
            self.H = xp.astype(H, dtype)

    def apply(self, Z):
        """Per-sample Hessian times ``Z`` (n, C), intercept minimized out."""
        xp = self.ops.xp
        if self.H is None:
            h = xp.reshape(self.h, (-1, 1))
            out = Z * h
            if self.schur:
                out = out - h * (float(xp.sum(out)) / self.h_sum)
            return out
        out = xp.matmul(self.H, xp.expand_dims(Z, axis=2))[:, :, 0]
        if self.schur:
            shift = xp.astype(xp.matmul(self.H_bb_pinv, xp.astype(xp.sum(out, axis=0), xp.float64)), out.dtype)
            out = out - xp.matmul(self.H, shift)
        return out

    def block_products(self, A, U):
        """Each block's own curvature applied to it, :math:`A_p^\\top H A_p U_p`."""
        xp = self.ops.xp
        d, P, C = U.shape
        n = A.n_samples
        Z = A.product(U) * xp.expand_dims(A.masks, axis=2)
        if self.H is None:
            HZ = Z * xp.reshape(self.h, (-1, 1, 1))
        else:
            HZ = xp.matmul(Z, xp.permute_dims(self.H, (0, 2, 1)))
        HZ = HZ * xp.expand_dims(A.masks, axis=2)
        return xp.reshape(xp.matmul(xp.permute_dims(A.X, (1, 0)), xp.reshape(HZ, (n, P * C))), (d, P, C))

    def block_diagonals(self, A):
        """Diagonals of the blocks of :math:`A^\\top H A`, shape (d, P, C): one GEMM."""
        xp = self.ops.xp
        n, P = A.masks.shape
        scaled = xp.expand_dims(A.masks * A.masks, axis=2) * xp.expand_dims(self.diag, axis=1)
        D = xp.matmul(xp.permute_dims(xp.reshape(scaled, (n, P * self.C)), (1, 0)), A.X * A.X)
        return xp.permute_dims(xp.reshape(D, (P, self.C, -1)), (2, 0, 1))


def _pcg(matvec, rhs, precond, *, rtol, max_iter, vdot=_HostOps.vdot):
    """Preconditioned conjugate gradients from zero; returns (x, n_products)."""
    # Fresh arrays (updated in place) in the namespace of ``rhs``.
    x = 0 * rhs
    r = 1 * rhs
    z = precond(r)
    p = z
    rz = vdot(r, z)
    stop = rtol * np.sqrt(vdot(rhs, rhs))
    k = 0
    for k in range(1, max_iter + 1):
        Hp = matvec(p)
        pHp = vdot(p, Hp)
        if pHp <= 0:
            break
        step = rz / pHp
        x += step * p
        r -= step * Hp
        if np.sqrt(vdot(r, r)) <= stop:
            break
        z = precond(r)
        rz_new = vdot(r, z)
        p = z + (rz_new / rz) * p
        rz = rz_new
    return x, k


def support_newton(
    problem,
    coef,
    intercept=None,
    *,
    tol=1e-6,
    max_steps=10,
    cg_rtol=1e-2,
    max_cg=500,
    max_products=np.inf,
):
    """Minimize ``problem`` over the blocks that are non-zero in ``coef``.

    Damped Newton with conjugate-gradient steps on
    :math:`\\min_{W_S} F(\\mathcal{A}_S W_S) + \\alpha\\sum_{p\\in S}\\|W_p\\|`
    (intercept minimized out), started from ``coef`` and stopped when the
    Newton decrement is below ``tol`` times the objective. Zero blocks stay
    zero; certifying the result on the full program is the caller's job.
    Applies to Euclidean block norms over a
    :class:`~skconvex.programs.operators.PatternOperator`: Frobenius blocks
    (:class:`~skconvex.programs.penalties.GroupL2`) with any number of
    outputs (the data curvature is then the per-sample C x C Hessian, e.g.
    the softmax covariance of the multinomial), and
    :class:`~skconvex.programs.penalties.GroupNuclear` for one output (with
    several outputs, a numpy program goes to
    :func:`~skconvex.solvers.factored_newton.factored_newton`, which
    returns what this function does). On a
    program in an array-API namespace with ``coef`` in that namespace it
    computes there (see :func:`runs_in_namespace` for when it can).

    Parameters
    ----------
    problem : ConvexProblem
        The full program (numpy, or a
        :class:`~skconvex.programs.problem.NamespaceProblem`).
    coef : array of shape problem.coef_shape
        Starting point, numpy or in the program's namespace; its non-zero
        blocks are the support.
    intercept : ndarray of shape (n_outputs,), default=None
        Warm start of the intercept.
    tol : float, default=1e-6
        Relative objective accuracy aimed at (half the squared Newton
        decrement estimates the suboptimality).
    max_steps : int, default=10
        Maximum number of Newton steps.
    cg_rtol : float, default=1e-2
        Relative residual at which conjugate gradients stop in the first
        Newton step; later steps use the smaller of this and the square root
        of the last relative decrement (inexact Newton).
    max_cg : int, default=500
        Maximum conjugate-gradient iterations per Newton step.
    max_products : float, default=inf
        Budget of operator products (each costs about a GEMM on the
        support); Newton stops when the next step could exceed it.

    Returns
    -------
    coef : array of shape problem.coef_shape
        The improved point, in the namespace of ``coef`` (``coef`` itself
        when nothing applies).
    intercept : ndarray of shape (n_outputs,)
        Its optimal intercept.
    info : dict
        ``n_steps`` (Newton steps), ``n_products`` (operator products),
        ``applicable`` (whether the program is of the supported kind),
        ``applied`` (False when it is not, or when the support is empty) and
        ``converged`` (whether the Newton decrement reached ``tol``).

    References
    ----------
    R. S. Dembo, S. C. Eisenstat and T. Steihaug. Inexact Newton methods.
    SIAM J. Numer. Anal., 1982.
    """
    namespace = hasattr(problem, "xp") and not isinstance(coef, np.ndarray)
    if not namespace and _factored.applies_to(problem):
        return _factored.factored_newton(
            problem, coef, intercept, tol=tol, max_steps=max_steps, cg_rtol=cg_rtol, max_cg=max_cg,
            max_products=max_products,
        )
    W = coef if namespace else np.asarray(coef)
    info = {
        "n_steps": 0,
        "n_products": 0,
        "applied": False,
        "applicable": _applicable(problem),
        "converged": False,
    }
    if not info["applicable"]:
        return W, intercept, info
    dtype = problem.dtype
    if namespace:
        ops = _NamespaceOps(problem.xp, problem.device, problem.operator.X.dtype)
    else:
        ops = _HostOps(dtype)
    support = np.flatnonzero(ops.host(problem.penalty.group_norms(W)) > 0)
    if support.size == 0:
        return W, intercept, info
    info["applied"] = True
    U = ops.astype(ops.take(W, support)) if namespace else np.array(W[:, support, :], dtype=dtype)
    model = _ProgramSupport(problem.restrict(support), ops, namespace)
    keep, U, b, newton = newton_on_support(
        model, U, intercept, problem.alpha, ops=ops, dtype=dtype, tol=tol, max_steps=max_steps,
        cg_rtol=cg_rtol, max_cg=max_cg, max_products=max_products,
    )
    info.update(newton)
    support = support[keep]
    if namespace:
        out = problem.scatter_blocks(support, U)
        return problem.xp.astype(out, W.dtype, copy=False), b, info
    out = np.zeros(problem.coef_shape, dtype=W.dtype)
    out[:, support, :] = U
    return out, b, info


class _ProgramSupport:
    """A program restricted to a support, as :func:`newton_on_support` uses it.

    The smooth part's value, its gradient and curvature at a point, and the
    curvature's products, from the restricted program's operator and datafit
    (in the namespace of ``ops`` where ``namespace``).
    """

    def __init__(self, sub, ops, namespace):
        self.sub, self.ops, self.namespace = sub, ops, namespace
        self._curvature = None

    def restrict(self, keep):
        """The same program on the blocks ``keep`` of this support."""
        return _ProgramSupport(self.sub.restrict(keep), self.ops, self.namespace)

    def value(self, U, b):
        """Datafit value at ``U`` with the optimal intercept (from ``b``): ``(value, b)``, one product."""
        return self.sub.smooth_value(self.sub.operator.forward(U), b)

    def linearize(self, U, b):
        """Optimal intercept and the datafit's gradient at ``U``; the curvature is kept there. Two products."""
        sub = self.sub
        A = sub.operator
        pred = A.forward(U)
        _, b, grad_pred = sub.smooth(pred, b)
        if self.namespace:
            self._curvature = _NamespaceCurvature(
                self.ops, sub.datafit, sub.add_intercept(pred, b), sub.y, sub.sample_weight, sub.fit_intercept
            )
        else:
            self._curvature = DataCurvature(
                sub.datafit, pred + b.astype(self.ops.dtype), sub.y, sub.sample_weight, sub.fit_intercept, self.ops.dtype
            )
        return b, A.adjoint(grad_pred)

    def self_products(self, U):
        """Each block's own curvature applied to it (two products)."""
        return self._curvature.block_products(self.sub.operator, U)

    def hessian_product(self, V):
        """The datafit's curvature applied to ``V``, intercept minimized out (two products)."""
        A = self.sub.operator
        return A.adjoint(self._curvature.apply(A.forward(V)))

    def block_diagonals(self):
        """Diagonals of the blocks of the datafit's curvature, shape of ``U`` (one product)."""
        return self._curvature.block_diagonals(self.sub.operator)


def newton_on_support(
    model, U, intercept, alpha, *, dtype, tol, max_steps=10, cg_rtol=1e-2, max_cg=500, max_products=np.inf, ops=None
):
    """Damped Newton on a support given by a model of its smooth part (the loop of ``support_newton``).

    Minimizes :math:`F(\\mathcal{A}_S U) + \\alpha\\sum_{p\\in S}\\|U_p\\|`
    over the blocks of ``U``, the intercept minimized out, from the model's
    values, gradients and curvature products only; where those products run
    (memory, a device, the workers of a cluster) is the model's business.

    Parameters
    ----------
    model : SupportModel
        The smooth part on the support.
    U : array of shape (n_features, n_support, n_outputs)
        The support's blocks at the start.
    intercept : ndarray of shape (n_outputs,) or None
        Warm start of the intercept.
    alpha : float
        Penalty strength.
    dtype : dtype
        Compute dtype (sets the rounding level of the stopping rule).
    tol : float
        Relative objective accuracy aimed at, as in
        :func:`~skconvex.solvers.support_newton.support_newton`.
    max_steps : int, default=10
        Maximum number of Newton steps.
    cg_rtol : float, default=1e-2
        First forcing term of the conjugate gradients.
    max_cg : int, default=500
        Maximum conjugate-gradient iterations per step.
    max_products : float, default=inf
        Budget of the model's products.
    ops : object, default=None
        Array operations of the namespace of ``U``; None: numpy in ``dtype``.

    Returns
    -------
    keep : ndarray of int
        The blocks of the starting support that are still in it.
    U : array
        Their blocks.
    intercept : ndarray of shape (n_outputs,)
        Its optimal intercept.
    info : dict
        ``n_steps``, ``n_products`` and ``converged``, as in
        :func:`~skconvex.solvers.support_newton.support_newton`.
    """
    info = {"n_steps": 0, "n_products": 0, "converged": False}
    ops = _HostOps(dtype) if ops is None else ops
    keep_all = np.arange(U.shape[1])

    def objective(m, U, b):
        value, b = m.value(U, b)
        return value + alpha * float(ops.host(_block_norms(U, ops)).sum()), b

    value, b = objective(model, U, intercept)
    n_products = 1
    forcing = cg_rtol
    for step in range(1, max_steps + 1):
        # A step needs about 6 products besides its conjugate gradients.
        cg_budget = max_cg
        if np.isfinite(max_products):
            cg_budget = min(max_cg, int(max_products - n_products - 6) // 2)
        if cg_budget < 1:
            break
        info["n_steps"] = step
        b, smooth_grad = model.linearize(U, b)
        norms = _block_norms(U, ops)
        norms_host = ops.host(norms)
        n_products += 2
        # Zero is optimal for block p, the others fixed, when the gradient
        # with the block's own contribution removed (to first order) has norm
        # at most alpha.
        at_zero = smooth_grad - model.self_products(U)
        zero_ok = ops.host(_block_norms(at_zero, ops)) <= alpha
        n_products += 2
        # Newton shrinks a block whose optimum is zero only linearly (its
        # curvature alpha/||W_p|| grows as it shrinks), so such blocks are
        # set to zero directly: all of them when that lowers the objective
        # (a block-coordinate step, exact for the squared loss), else the
        # tiny ones.
        if zero_ok.any() and not zero_ok.all():
            keep = np.flatnonzero(~zero_ok)
            model_kept = model.restrict(keep)
            U_kept = ops.take(U, keep)
            trial, b_trial = objective(model_kept, U_kept, b)
            n_products += 1
            vanishing = norms_host < 1e-3 * norms_host.max()
            if trial < value or np.all(vanishing[zero_ok]):
                model, keep_all, U, value, b = model_kept, keep_all[keep], U_kept, trial, b_trial
                continue
            vanishing &= zero_ok
            if vanishing.any():
                keep = np.flatnonzero(~vanishing)
                model, keep_all, U = model.restrict(keep), keep_all[keep], ops.take(U, keep)
                value, b = objective(model, U, b)
                n_products += 1
                continue
        N = U / ops.per_block(norms)
        grad = smooth_grad + alpha * N
        curv = ops.astype(alpha / norms)

        def hess(V, model=model, N=N, curv=curv):
            radial = ops.block_dot(N, V)
            return model.hessian_product(V) + ops.per_block(curv) * (V - N * ops.per_block(radial))

        if isinstance(ops, _NamespaceOps):
            precond = _namespace_preconditioner(ops, model.block_diagonals(), curv, N)
        else:
            precond = _preconditioner(model.block_diagonals(), curv, N)
        n_products += 1

        # Forcing terms shrink with the decrement (superlinear inexact Newton).
        delta, n_cg = _pcg(hess, -grad, precond, rtol=forcing, max_iter=cg_budget, vdot=ops.vdot)
        n_products += 2 * n_cg
        decrement = -ops.vdot(grad, delta)
        if not decrement > 0:
            info["converged"] = True
            break
        # A block the Newton step pushes through zero belongs at zero (the
        # kink of its norm): try the step with those blocks removed first.
        through = (ops.host(ops.block_dot(N, U + delta)) <= 0) & zero_ok
        if through.any() and not through.all():
            keep = np.flatnonzero(~through)
            model_kept = model.restrict(keep)
            U_kept = ops.take(U + delta, keep)
            trial, b_trial = objective(model_kept, U_kept, b)
            n_products += 1
            if trial < value:
                model, keep_all, U, value, b = model_kept, keep_all[keep], U_kept, trial, b_trial
                continue
        # Armijo backtracking on the exact objective (convex everywhere, so a
        # step that shrinks a block through zero is merely rejected).
        t = 1.0
        while True:
            # The accepted point is the one the model valued last (a model
            # may keep what it computed there).
            U_trial = U + t * delta
            trial, b_trial = objective(model, U_trial, b)
            n_products += 1
            if trial <= value - 1e-4 * t * decrement or t < 1e-6:
                break
            t *= 0.5
        if trial >= value:
            # Rounding only: the decrement is at the objective's precision.
            info["converged"] = decrement <= (1e-10 if dtype == np.float64 else 1e-5) * abs(value)
            break
        U, value, b = U_trial, trial, b_trial
        if decrement <= 2 * tol * abs(value):
            info["converged"] = True
            break
        forcing = min(cg_rtol, np.sqrt(decrement / max(abs(value), np.finfo(float).tiny)))
    info["n_products"] = n_products
    return keep_all, U, b, info


# polish_and_certify asks a polish whether it computes on a namespace program,
# fista whether it can apply at all.
support_newton.runs_in_namespace = runs_in_namespace
support_newton.applies_to = applies_to
