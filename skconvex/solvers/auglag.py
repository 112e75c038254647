"""Augmented Lagrangian methods for cone-constrained programs.

For :math:`\\min_U f(U) + \\alpha R(U)` s.t. :math:`\\mathcal{G}U \\ge 0`
(:class:`~skconvex.programs.cones.ConeConstrainedProblem`; :math:`f` is the datafit
composed with the pattern operator, the intercept minimized out) both
variants alternate an approximate minimization of an augmented Lagrangian with
the classical multiplier update for inequality constraints

.. math:: \\Lambda_{k+1} = (\\Lambda_k - \\rho\\,\\mathcal{G}U_{k+1})_+

(Hestenes, Powell, Rockafellar; Nocedal & Wright, 2006, §17.4). The constraint
values :math:`\\mathcal{G}U = S \\odot XU` are sign flips of the product the
forward pass computes, and :math:`\\mathcal{A}^\\top R + \\mathcal{G}^\\top
\\Lambda` is one GEMM (:meth:`~skconvex.programs.cones.ConeConstrainedProblem.joint_adjoint`).

``inner="newton"``
    The group penalty is put in the augmented Lagrangian too, through the
    splitting :math:`U = Q` with multiplier :math:`\\Gamma`. Minimizing over
    :math:`Q` in closed form leaves the smooth, convex and piecewise twice
    differentiable function

    .. math::
        \\phi(U) = f(U) + \\sigma\\, e_{\\alpha/\\sigma}(U + \\Gamma/\\sigma)
        + \\tfrac{1}{2\\rho}\\|(\\Lambda - \\rho\\,\\mathcal{G}U)_+\\|^2,

    with :math:`e_\\tau` the Moreau envelope of :math:`\\tau\\|\\cdot\\|_2`
    per column (a Huber function), minimized by a globalized semismooth Newton
    method (Li, Sun & Toh, 2018). The generalized Hessian is block diagonal
    (one ``d x d`` block per column: the envelope's and the active
    constraints' curvature) plus the datafit's Gram term, and each Newton
    system is solved exactly through the Woodbury identity with one
    ``(n C) x (n C)`` factorization (:mod:`skconvex.solvers._lowrank`), so
    large penalties :math:`\\sigma, \\rho`, which make the multipliers
    converge fast, cost nothing in conditioning (problems too large for that
    factorization use matrix-free truncated conjugate gradient instead). Then
    :math:`Q = \\operatorname{prox}_{(\\alpha/\\sigma) R}(U + \\Gamma/\\sigma)`,
    :math:`\\Gamma \\leftarrow \\sigma(U + \\Gamma/\\sigma - Q)` and :math:`\\Lambda` is
    updated as above.

``inner="fista"``
    Only the cones are in the augmented Lagrangian; each subproblem
    "smooth + block penalty" is solved by the package's accelerated proximal
    gradient (:func:`~skconvex.solvers.fista`) on the stacked map
    :math:`U \\mapsto (\\mathcal{A}U, \\mathcal{G}U)`. Iterations are as cheap
    as FISTA's on the unconstrained program, but the penalty's curvature
    :math:`\\rho\\|x_j\\|^2` on each tight row shrinks the step, so this
    variant needs many iterations for tight tolerances; it needs no
    :math:`(nC)^2` memory.

**Certificate.** Any datafit gradient :math:`\\nabla F` (at an optimal
intercept) and any multiplier :math:`\\Lambda \\ge 0` give the dual point
:math:`(\\Theta, \\Lambda) = c(-\\nabla F, \\Lambda)` of the constrained
program, feasible when :math:`c\\,R^\\circ(\\mathcal{A}^\\top\\nabla F -
\\mathcal{G}^\\top\\Lambda) \\le \\alpha`, with value :math:`-F^*(-\\Theta)`
(derivation in :mod:`skconvex.programs.cones`). At an exact subproblem solution the
Lagrangian gradient is :math:`-\\Gamma` (Newton) or lies in
:math:`-\\alpha\\partial R` (FISTA), so :math:`c = 1`. Every outer iteration
moves its primal point exactly into the cones
(:meth:`~skconvex.programs.cones.ConeConstrainedProblem.restore`); the methods stop
when the relative gap between the best of these feasible points (or the
feasible start) and the best lower bound is at most ``tol``, whether or not
the last iterate is itself within ``tol`` of the cones: the point returned is
the certified one.
"""

import numpy as np
import scipy.sparse as sp

from .._config import memory_budget
from ..programs.cones import certify
from ._al_newton import (
    _DENSE_BYTES,
    _AugmentedSubproblem,
    _blas_threads,
    _ConeGram,
    _curvature_scale,
    _NewtonSubproblem,
    fista_al,
    newton_al_with_retry,
)
from ._lowrank import BlockPlusLowRank
from .face_newton import finish_on_faces

__all__ = ["augmented_lagrangian"]

def check_positive_alpha(alpha):
    """Refuse ``alpha <= 0``, which the augmented Lagrangian cannot certify.

    Its dual point is the gradient scaled into the ball of radius ``alpha``
    of the penalty's dual norm, so at ``alpha = 0`` the dual bound is that of
    the empty network: the gap never closes, and the solver would stop on a
    stalled gap at the empty network.

    Parameters
    ----------
    alpha : float
        Penalty strength of the program.

    Raises
    ------
    ValueError
        If ``alpha`` is not positive.
    """
    if not alpha > 0:
        raise ValueError(
            f"alpha={alpha!r} is not supported by the augmented Lagrangian solver "
            "(solver='auglag', the default of the exact ReLU programs): alpha must "
            "be > 0, since its certificate scales the dual point by alpha. Use a "
            "positive alpha, or solver='cvxpy' for the unregularized program."
        )


def augmented_lagrangian(
    problem,
    *,
    coef_init=None,
    intercept_init=None,
    multipliers_init=None,
    tol=1e-6,
    max_iter=None,
    inner="newton",
    sigma=None,
    rho=None,
    growth=None,
    max_outer=100,
    verbose=0,
):
    """Solve a cone-constrained program by an augmented Lagrangian method.

    Parameters
    ----------
    problem : ConeConstrainedProblem
        The program.
    coef_init : ndarray of shape problem.coef_shape, default=None
        Starting point (zeros when None).
    intercept_init : ndarray of shape (n_outputs,), default=None
        Warm start of the intercept.
    multipliers_init : ndarray of shape (n_samples, n_blocks, n_outputs), default=None
        Starting cone multipliers :math:`\\Lambda \\ge 0` (zeros when None).
    tol : float, default=1e-6
        Stop when the certified relative gap of the best restored (feasible)
        point is at most ``tol``. The last iterate's own cone violation does
        not count: a feasible warm start (the previous solution of a path)
        is certified as soon as the multipliers are good, before the iterates
        reach the cones.
    max_iter : int, default=None
        Total budget of inner iterations: Newton steps (default 500) or FISTA
        iterations (default 20000).
    inner : {"newton", "newton-cg", "fista"}, default="newton"
        Subproblem solver, see the module docstring. ``"newton"`` solves each
        Newton system exactly through the Woodbury identity when its
        ``(n_samples * n_outputs)``-row factorization fits in 200 MiB (squared
        loss: one ``n_samples``-row system per output), and by truncated
        conjugate gradient otherwise (matrix-free, two products per CG step),
        preconditioned by the inverse of each column's ``d x d`` block where
        ``X`` is dense and those blocks fit, by the Hessian's diagonal
        elsewhere; ``"newton-cg"``
        always uses the latter. On a sparse ``X``, ``"newton"`` solves on a
        dense copy (:meth:`~skconvex.programs.problem.ConvexProblem.densified`)
        when that copy and the exact systems together fit in 200 MiB and in
        the memory budget (:func:`skconvex.set_config`), and matrix-free on
        the sparse ``X`` otherwise.
    sigma : float, default=None
        Starting penalty of the splitting ``U = Q`` (Newton only); by default
        the datafit's curvature :math:`L_F\\lambda_{\\max}(X^\\top S X)`.
    rho : float, default=None
        Starting cone penalty; by default that curvature divided by the mean
        squared row norm (Newton) or the curvature per unit weight (FISTA).
    growth : float, default=None
        Factor applied to a penalty when its residual falls by less than a
        factor 4 in one outer iteration (default 10 for Newton, 3 for FISTA).
    max_outer : int, default=100
        Maximum number of multiplier updates.
    verbose : int, default=0
        1 prints one line per outer iteration, 2 also the inner iterations.

    Returns
    -------
    result : SolveResult
        The best feasible point found, its objective and the best certified
        lower bound; ``constraint_violation`` is the relative violation of the
        returned point (0 up to rounding); ``history`` has one
        ``(objective, lower bound, violation[, seconds])`` record per outer
        iteration (seconds for the Newton variant). ``info`` holds the last
        ``multipliers``, ``rho``, the ``inner`` method and the violation of the
        last iterate before restoring (``iterate_violation``).

    Notes
    -----
    With :math:`(\\Theta,\\Lambda) = c\\,(-\\nabla F, \\Lambda^+)`, the dual
    :math:`\\max -F^*(-\\Theta)` s.t. :math:`R^\\circ(\\mathcal{A}^\\top\\Theta +
    \\mathcal{G}^\\top\\Lambda) \\le \\alpha`, :math:`\\Lambda \\ge 0`,
    :math:`\\mathbf{1}^\\top\\Theta = 0` certifies every outer iterate; the
    returned ``dual_objective`` is the best of these values, a lower bound on
    the optimum.

    The cone penalty :math:`\\tfrac{1}{2\\rho}\\|(\\Lambda - \\rho\\,\\mathcal{G}(U))_+\\|^2`
    is not twice differentiable where a row's argument is zero, and many rows
    sit there (those of columns headed to zero). The exact Newton steps use
    the generalized Hessian that counts them inactive; when that run stops
    short of ``tol`` before ``max_iter`` (a stall: its steps shrink while
    the penalties grow), the program is solved again on the rest of the
    budget with rows within a relative ``1e-8`` of the kink counted active,
    and the better certified result is returned.

    Fits from zero (no ``coef_init``) end with
    :func:`~skconvex.solvers.face_newton.finish_on_faces`: where the support
    is small (support columns times features at most 512), Newton's method on
    the faces of the cones takes the returned point to the optimum of its
    support, to rounding, and keeps it when it is better; ``info["face_newton"]``
    reports it.

    References
    ----------
    J. Nocedal and S. J. Wright. Numerical Optimization, 2nd ed., Springer,
    2006, Section 17.4.
    X. Li, D. Sun and K.-C. Toh. A highly efficient semismooth Newton
    augmented Lagrangian method for solving Lasso problems. SIAM J. Optim.,
    28(1), 2018.
    A. Mishkin, A. Sahiner and M. Pilanci. Fast convex optimization for
    two-layer ReLU networks: equivalent model classes and cone
    decompositions. ICML 2022, arXiv:2202.01331.

    Examples
    --------
    >>> import numpy as np
    >>> from skconvex import sample_arrangements
    >>> from skconvex.programs.cones import ConeConstrainedProblem
    >>> from skconvex.programs.datafits import SquaredError
    >>> from skconvex.programs.operators import PatternOperator
    >>> from skconvex.programs.penalties import ColumnGroupL2
    >>> from skconvex.solvers.auglag import augmented_lagrangian
    >>> rng = np.random.default_rng(0)
    >>> X = np.c_[rng.standard_normal((30, 2)), np.ones(30)]
    >>> y = np.abs(X[:, :1])
    >>> arr = sample_arrangements(X, 20, random_state=0)
    >>> P = arr.n_patterns
    >>> op = PatternOperator(X, np.hstack([arr.patterns] * 2), signs=[1] * P + [-1] * P)
    >>> problem = ConeConstrainedProblem(op, SquaredError(), ColumnGroupL2(), y,
    ...     np.full(30, 1 / 30), 0.01, interior=np.hstack([arr.gates] * 2))
    >>> result = augmented_lagrangian(problem, tol=1e-6)
    >>> bool(result.converged), result.relative_gap <= 1e-6
    (True, True)
    """
    check_positive_alpha(problem.alpha)
    if inner not in ("newton", "newton-cg", "fista"):
        raise ValueError(f"inner must be 'newton', 'newton-cg' or 'fista', got {inner!r}.")
    rows = getattr(problem.operator, "n_rows", problem.operator.n_samples)
    if inner != "fista" and problem.multiplier_shape != (rows,) + problem.coef_shape[1:]:
        raise ValueError(
            f"inner={inner!r} needs one cone constraint per row and column (its Newton "
            "systems are block diagonal over the columns); use inner='fista' for this "
            "program."
        )
    if inner != "fista":
        problem = problem.astype(np.float64)
        if inner == "newton":
            problem = _dense_for_newton(problem)
        family = _ColumnCones(problem, matrix_free=inner == "newton-cg")
        budget = 500 if max_iter is None else max_iter

        with _blas_threads(problem.operator.n_samples * problem.coef_shape[2]):
            result = newton_al_with_retry(
                family,
                budget,
                coef_init=coef_init,
                intercept_init=intercept_init,
                multipliers_init=multipliers_init,
                tol=tol,
                max_outer=max_outer,
                sigma=sigma,
                rho=rho,
                growth=10.0 if growth is None else growth,
                verbose=verbose,
            )
            return _finish(problem, result, tol, coef_init)
    # float32 iterates stall the multiplier updates near 1e-4 relative
    # violation, so this variant computes in float64 as well.
    # (matrix_free: FISTA needs no Newton blocks, so no row Gram either.)
    problem = problem.astype(np.float64)
    result = fista_al(
        _ColumnCones(problem, matrix_free=True),
        coef_init,
        intercept_init,
        multipliers_init,
        tol=tol,
        max_iter=20000 if max_iter is None else max_iter,
        max_outer=max_outer,
        rho=rho,
        growth=3.0 if growth is None else growth,
        verbose=verbose,
    )
    return _finish(problem, result, tol, coef_init)


def _finish(problem, result, tol, coef_init):
    """:func:`~skconvex.solvers.face_newton.finish_on_faces` for cold fits.

    Warm fits (a path's next ``alpha``, a working set's restricted programs)
    are polished at their start instead (see
    :func:`~skconvex.solvers.working_set.cone_working_set_solve`); finishing
    them too made the exact diabetes path of ``bench_path.py`` twice as slow
    (``benchmarks/README.md``).
    """
    if coef_init is not None and np.any(coef_init):
        return result
    return finish_on_faces(problem, result, tol)


def _newton_bytes(problem):
    """Bytes of the exact Newton systems of ``problem`` (factorization and row Gram)."""
    op = problem.operator
    d, _, C = problem.coef_shape
    n = op.n_samples
    size = n * n * C if getattr(problem.datafit, "quadratic", False) else (n * C) ** 2
    return 8 * (size + op.X.shape[0] * d * d)


def _preconditioner_bytes(problem):
    """Bytes of the matrix-free Newton's block-Jacobi preconditioner.

    The row Gram (``n * d (d + 1) / 2``), its column sums (half a set of
    blocks), and the blocks and their inverses (``d * d`` per column each).
    """
    d, B, C = problem.coef_shape
    return 8 * (problem.operator.X.shape[0] * d * (d + 1) // 2 + 5 * B * C * d * d // 2)


def _dense_for_newton(problem):
    """``problem`` over a dense copy of a sparse ``X`` when its exact Newton systems are small.

    The exact systems hold dense row products of ``X``, so on sparse ``X``
    they need a dense copy. When the systems and that copy fit in
    ``_DENSE_BYTES`` (200 MiB) and in the memory budget, the copy is cheap
    next to them and the exact Newton steps converge in far fewer, more
    accurate iterations than the matrix-free ones (the tiny sparse data of
    scikit-learn's checks, issue 18); larger sparse ``X`` is never copied.
    """
    op = problem.operator
    if not getattr(op, "sparse", False) or not hasattr(op, "densified"):
        return problem
    n, d = op.X.shape
    needed = _newton_bytes(problem) + 8 * n * d
    if needed > min(_DENSE_BYTES, memory_budget()):
        return problem
    return problem.densified()


class _ColumnCones:
    """The per-column cones of the two-layer programs, as the engine of :mod:`._al_newton` sees them.

    One constraint per row and column of the coefficients, the group
    penalty's groups are the columns, and each Newton system is
    block-diagonal over the columns plus the datafit's low-rank term
    (factorized by :class:`~skconvex.solvers._lowrank.BlockPlusLowRank`)
    unless ``matrix_free``.
    """

    label = "auglag"
    solver = "auglag"

    def __init__(self, problem, matrix_free=False, kink_rtol=0.0):
        self.problem = problem
        self.kink_rtol = kink_rtol
        op = problem.operator
        X = op.X
        # The exact systems hold dense row products of X; sparse X (left
        # sparse by _dense_for_newton) only enters the matrix-free Hessian
        # through sparse products.
        self.matrix_free = (
            matrix_free or sp.issparse(X) or _newton_bytes(problem) > _DENSE_BYTES
        )
        # The row Gram gives the exact systems their cone blocks, and the
        # matrix-free ones a block-Jacobi preconditioner where it and the
        # blocks are small (dense X; e.g. multinomial programs, whose
        # Woodbury systems grow with n_samples * n_outputs); built on the
        # first Newton subproblem (FISTA needs none).
        self._use_gram = not self.matrix_free or (
            not sp.issparse(X) and _preconditioner_bytes(problem) <= min(2 * _DENSE_BYTES, memory_budget())
        )
        self._row_gram = None

    @property
    def row_gram(self):
        """The :class:`_ConeGram` of ``X`` where it is used, else None (built on first use)."""
        if self._row_gram is None and self._use_gram:
            self._row_gram = _ConeGram(self.problem.operator.X)
        return self._row_gram

    def scales(self):
        """Curvature scale ``h0`` of the datafit and the mean squared row norm of the cone rows."""
        problem = self.problem
        op = problem.operator
        X = op.X
        n = op.n_samples
        B = problem.coef_shape[1]
        weighted = problem.cone_signs[:, 0] != 0 if B else np.zeros(n, bool)
        if not weighted.any():
            row_sq = 1.0
        elif sp.issparse(X):
            row_sq = float(X[weighted].multiply(X[weighted]).sum()) / int(weighted.sum())
        else:
            row_sq = float(np.mean(np.einsum("nd,nd->n", X[weighted], X[weighted])))
        return _curvature_scale(problem), row_sq

    def initial_multipliers(self, multipliers_init):
        """Starting multipliers: zeros, or ``multipliers_init`` clipped to the cones' support."""
        problem = self.problem
        shape = problem.multiplier_shape
        if multipliers_init is None:
            return np.zeros(shape, dtype=problem.dtype)
        lam = np.asarray(multipliers_init, dtype=problem.dtype).reshape(shape)
        return np.maximum(lam, 0) * problem.multiplier_support()

    def joint_adjoint(self, grad, multipliers):
        return self.problem.joint_adjoint(grad, multipliers)

    @staticmethod
    def group_norms(W):
        return np.sqrt(np.einsum("dkc,dkc->kc", W, W))

    @staticmethod
    def expand(x):
        return x[None]

    def certify(self, W, b, multipliers, Z=None):
        return certify(self.problem, W, b, multipliers, Z)

    def constraint_values(self, Z):
        return self.problem.constraint_values(Z)

    def refine(self, grad, multipliers):
        # Best multipliers for this gradient, on the columns the bound needs.
        return self.problem.refine_multipliers(grad, multipliers, bound_only=True)[1]

    def fista_subproblem(self, multipliers, rho):
        return _AugmentedSubproblem(self.problem, multipliers, rho)

    def newton_subproblem(self, gamma, multipliers, sigma, rho):
        return _NewtonSubproblem(
            self.problem, gamma, multipliers, sigma, rho, self.row_gram, kink_rtol=self.kink_rtol
        )

    def hessian(self, sub, cache, ridge, damping):
        if self.matrix_free:
            return sub.hessian_free(cache, ridge, damping)
        return sub.hessian(cache, ridge, damping)

    def factorize(self, sub, parts, hess, g):
        """Exact Newton system through the Woodbury identity; its solve and the direction for ``g``."""
        system = BlockPlusLowRank(self.problem.operator, parts[1], parts[2], parts[0])
        return system.solve, system.solve(-g)
