"""Cone-constrained convex programs (the exact ReLU programs and their relatives).

.. math::
    \\min_{U,\\, b}\\; F(\\mathcal{A}U + \\mathbf{1} b^\\top) + \\alpha R(U)
    \\quad\\text{s.t.}\\quad \\mathcal{G}(U) \\ge 0,
    \\qquad \\mathcal{G}(U)_{:,k,c} = (2D_k - I)\\, X U_{:,k,c},

one polyhedral cone per block :math:`k` and output column :math:`c`. For the
two-layer ReLU program of Pilanci & Ergen (2020) the blocks are
:math:`[V, W]` (``2P`` blocks) on the masks ``[M, M]`` with signs
``[+1] * P + [-1] * P``, so :math:`\\mathcal{A}U = \\sum_p D_p X (v_p - w_p)`,
and the constraints keep every :math:`v_p, w_p` in the cone
:math:`\\mathcal{K}_p = \\{u : (2D_p - I) X u \\ge 0\\}` where
:math:`(Xu)_+ = D_p X u`. Convolutional, batch-norm and deeper exact programs
reuse the same piece with their own patterns.

The constraint values are sign flips of the product :math:`Z = XU` that the
forward pass computes anyway (:meth:`~skconvex.programs.operators.PatternOperator.product`):
:math:`\\mathcal{G}(U) = S \\odot Z` with :math:`S = 2D - 1`. Rows of zero
sample weight get :math:`S = 0` (no constraint), so that a zero weight is the
same as removing the row.

**Duality.** With multipliers :math:`\\Lambda \\ge 0` the Lagrangian is
:math:`F(\\mathcal{A}U + \\mathbf{1}b^\\top) + \\alpha R(U) - \\langle \\Lambda,
\\mathcal{G}U\\rangle`; minimizing over :math:`U, b` through the conjugates gives
the dual

.. math::
    \\max_{\\Theta,\\ \\Lambda \\ge 0}\\; -F^*(-\\Theta)
    \\quad\\text{s.t.}\\quad
    R^\\circ(\\mathcal{A}^\\top\\Theta + \\mathcal{G}^\\top\\Lambda) \\le \\alpha,
    \\quad \\mathbf{1}^\\top\\Theta = 0,

so any :math:`\\Theta = -c\\nabla F` (at an optimal intercept) and any
:math:`\\Lambda = c\\hat\\Lambda`, :math:`\\hat\\Lambda \\ge 0`, with
:math:`c \\le \\alpha / R^\\circ(\\mathcal{A}^\\top\\Theta/c +
\\mathcal{G}^\\top\\hat\\Lambda)` certify a lower bound. Both adjoints act on the
same data matrix, so :math:`\\mathcal{A}^\\top R + \\mathcal{G}^\\top \\Lambda` is
one GEMM :math:`X^\\top (M \\odot R + S \\odot \\Lambda)`.
"""

import numpy as np
import scipy.sparse as sp

from .._config import check_memory
from .problem import Certificate, ConvexProblem

__all__ = ["ConeConstrainedProblem"]


class ConeConstrainedProblem(ConvexProblem):
    """:math:`\\min_{U,b} F(\\mathcal{A}U + \\mathbf{1}b^\\top) + \\alpha R(U)` s.t. :math:`(2D_k - I)XU_{:,k,c} \\ge 0`.

    Parameters
    ----------
    operator : PatternOperator
        The linear map :math:`\\mathcal{A}` with ``n_blocks`` blocks.
    datafit : Datafit
        The loss :math:`F` (see :mod:`skconvex.programs.datafits`).
    penalty : GroupL2, ColumnGroupL2 or GroupNuclear
        The block penalty :math:`R`.
    y : ndarray of shape (n_samples, n_outputs)
        Encoded targets.
    sample_weight : ndarray of shape (n_samples,)
        Row weights (the estimators normalize them to sum to one). Rows of
        zero weight carry no constraint.
    alpha : float
        Penalty strength, >= 0.
    cone_patterns : ndarray of shape (n_samples, n_blocks), default=None
        Boolean patterns :math:`D_k` of the cones; by default the non-zero
        entries of ``operator.masks``.
    interior : ndarray of shape (n_features, n_blocks), default=None
        A point of each cone with :math:`(2D_k - I) X g_k \\ge 0` (the gate
        that produced the pattern). It makes :meth:`restore` possible: a
        nearly feasible point is moved along it into the cone.
    fit_intercept : bool, default=True
        Whether the output intercept :math:`b` is free (True) or zero.
    cone_support : ndarray of shape (n_rows, n_blocks), default=None
        Boolean; rows where it is False carry no constraint for that block
        (e.g. patches outside a block's pooling region). All True when None.

    Attributes
    ----------
    cone_signs : ndarray of shape (n_samples, n_blocks)
        :math:`S = 2D - 1` in the compute dtype, 0 on rows of zero weight.

    Notes
    -----
    The dual certificate is described in the module docstring: a multiplier
    estimate :math:`\\Lambda \\ge 0` (from an augmented Lagrangian or an
    interior-point solver) enters only the dual constraint
    :math:`R^\\circ(\\mathcal{A}^\\top\\Theta + \\mathcal{G}^\\top\\Lambda) \\le
    \\alpha`, never the dual objective :math:`-F^*(-\\Theta)`.

    Operators whose products have more rows than their predictions (the
    patch rows of :class:`~skconvex.programs.patches.PatchOperator`) expose
    ``n_rows``, ``row_samples`` (the sample of every row) and ``expand``
    (the adjoint of the pooling); the constraints then live on those rows.

    References
    ----------
    M. Pilanci and T. Ergen. Neural networks are convex regularizers: exact
    polynomial-time convex optimization formulations for two-layer networks.
    ICML 2020, arXiv:2002.10553.

    Examples
    --------
    >>> import numpy as np
    >>> from skconvex import sample_arrangements
    >>> from skconvex.programs.cones import ConeConstrainedProblem
    >>> from skconvex.programs.datafits import SquaredError
    >>> from skconvex.programs.operators import PatternOperator
    >>> from skconvex.programs.penalties import ColumnGroupL2
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.standard_normal((20, 3)), rng.standard_normal((20, 1))
    >>> arr = sample_arrangements(X, 10, random_state=0)
    >>> P = arr.n_patterns
    >>> op = PatternOperator(X, np.hstack([arr.patterns] * 2), signs=[1] * P + [-1] * P)
    >>> problem = ConeConstrainedProblem(
    ...     op, SquaredError(), ColumnGroupL2(), y, np.full(20, 0.05), 0.1,
    ...     interior=np.hstack([arr.gates] * 2))
    >>> problem.violation(op.product(problem.zeros()))
    0.0
    """

    def __init__(
        self,
        operator,
        datafit,
        penalty,
        y,
        sample_weight,
        alpha,
        *,
        cone_patterns=None,
        interior=None,
        fit_intercept=True,
        cone_support=None,
    ):
        super().__init__(
            operator, datafit, penalty, y, sample_weight, alpha, fit_intercept=fit_intercept
        )
        if cone_patterns is None:
            cone_patterns = operator.masks != 0
        cone_patterns = np.asarray(cone_patterns, dtype=bool)
        n, B = _n_rows(operator), operator.n_patterns
        if cone_patterns.shape != (n, B):
            raise ValueError(
                f"cone_patterns must have shape {(n, B)}, got {cone_patterns.shape}."
            )
        signs = np.where(cone_patterns, 1.0, -1.0).astype(operator.dtype)
        row_weight = self.sample_weight
        if hasattr(operator, "row_samples"):
            row_weight = row_weight[operator.row_samples]
        signs[row_weight <= 0] = 0.0
        if cone_support is not None:
            cone_support = np.asarray(cone_support, dtype=bool)
            if cone_support.shape != (n, B):
                raise ValueError(
                    f"cone_support must have shape {(n, B)}, got {cone_support.shape}."
                )
            signs[~cone_support] = 0.0
        self.cone_signs = np.ascontiguousarray(signs)
        if interior is not None:
            interior = np.ascontiguousarray(interior, dtype=operator.dtype)
            if interior.shape != (operator.coef_shape[0], B):
                raise ValueError(
                    f"interior must have shape {(operator.coef_shape[0], B)}, got "
                    f"{interior.shape}."
                )
        self.interior = interior
        self._margins = None

    # ----------------------------------------------------------- constraints
    @property
    def multiplier_shape(self):
        """Shape ``(n_rows, n_blocks, n_outputs)`` of the constraint values and multipliers."""
        d, B, C = self.coef_shape
        return (_n_rows(self.operator), B, C)

    def multiplier_support(self):
        """Where constraints exist, broadcastable to :attr:`multiplier_shape`.

        Returns
        -------
        support : ndarray of shape (n_rows, n_blocks, 1), dtype bool
            False on rows of zero weight (and outside ``cone_support``).
        """
        return (self.cone_signs != 0)[:, :, None]

    @property
    def n_constraints(self):
        """Number of scalar cone constraints (rows of non-zero weight x blocks x outputs)."""
        return int(np.count_nonzero(self.cone_signs)) * self.operator.n_outputs

    def constraint_values(self, Z):
        """:math:`\\mathcal{G}(U) = S \\odot Z` from the product ``Z = operator.product(U)``.

        Parameters
        ----------
        Z : ndarray of shape (n_samples, n_blocks, n_outputs)
            Product :math:`XU` of the forward pass.

        Returns
        -------
        values : ndarray of shape (n_samples, n_blocks, n_outputs)
            Non-negative at feasible points.
        """
        return self.cone_signs[:, :, None] * Z

    def violation(self, Z):
        """Largest cone violation relative to the largest pre-activation.

        Parameters
        ----------
        Z : ndarray of shape (n_samples, n_blocks, n_outputs)
            Product :math:`XU` of the forward pass.

        Returns
        -------
        violation : float
            :math:`\\max (-S \\odot Z)_+ / \\max |Z|` (0 at feasible points and
            at ``U = 0``). It is scale free: a neuron's pre-activations are
            wrong-signed by at most this fraction of the largest one.
        """
        if Z.size == 0:
            return 0.0
        # The cone family itself (subclasses may stack further families).
        worst = float(np.max(-ConeConstrainedProblem.constraint_values(self, Z)))
        if worst <= 0:
            return 0.0
        return worst / float(np.max(np.abs(Z)))

    def joint_adjoint(self, R, multipliers=None):
        """:math:`\\mathcal{A}^\\top R + \\mathcal{G}^\\top \\Lambda` in one GEMM.

        Parameters
        ----------
        R : ndarray of shape (n_samples, n_outputs)
            Residual-like matrix (a gradient of the datafit), or None for 0.
        multipliers : ndarray of shape (n_samples, n_blocks, n_outputs), default=None
            :math:`\\Lambda`; None means 0.

        Returns
        -------
        G : ndarray of shape (n_features, n_blocks, n_outputs)
            :math:`X^\\top (M \\odot R + S \\odot \\Lambda)`, block by block.
        """
        op = self.operator
        if multipliers is None:
            return op.adjoint(R)
        _, B, C = op.coef_shape
        H = self.cone_signs[:, :, None] * np.asarray(multipliers, dtype=op.dtype).reshape(_n_rows(op), B, C)
        return self._adjoint_plus_datafit(H, R)

    def _adjoint_plus_datafit(self, H, R):
        # X^T (H + M * R) in one GEMM, H of shape (rows, B, C) (added to in
        # place); R None means 0.
        op = self.operator
        d, B, C = op.coef_shape
        if R is not None:
            R = np.asarray(R, dtype=op.dtype).reshape(op.n_samples, C)
            if hasattr(op, "expand"):
                R = op.expand(R)
            H += op.masks[:, :, None] * R[:, None, :]
        return (op.X.T @ H.reshape(-1, B * C)).reshape(d, B, C)

    def _plain_cones(self):
        # Whether the cones are this class's sign flips of the product (a
        # subclass may stack further families on them).
        cls = type(self)
        return (
            cls.constraint_values is ConeConstrainedProblem.constraint_values
            and cls.joint_adjoint is ConeConstrainedProblem.joint_adjoint
        )

    def cone_curvature_weights(self, weights):
        """Fold the cone curvature's weights for :meth:`cone_curvature_adjoint`: zero them on rows without constraints.

        Parameters
        ----------
        weights : ndarray of shape (n_samples, n_blocks, n_outputs)
            Non-negative weights :math:`W` of the cone curvature
            :math:`\\mathcal{G}^\\top(W \\odot \\mathcal{G}U)` (a penalty
            parameter on the active rows).

        Returns
        -------
        folded : ndarray of shape (n_samples, n_blocks, n_outputs)
            To compute once and pass to every :meth:`cone_curvature_adjoint`
            with the same weights.
        """
        if not self._plain_cones():
            return weights
        return weights * self.multiplier_support()

    def cone_curvature_adjoint(self, R, Z, folded):
        """:math:`\\mathcal{A}^\\top R + \\mathcal{G}^\\top(W \\odot \\mathcal{G}U)` from ``Z = XU`` in one GEMM.

        The datafit and active-cone parts of a Newton system's product. With
        sign flips :math:`S \\in \\{-1, 0, 1\\}` as cones,
        :math:`S \\odot (W \\odot (S \\odot Z)) = W \\odot Z` where :math:`W`
        vanishes on the rows of zero sign: one pass over the product instead
        of four, exactly the same numbers as :meth:`joint_adjoint` of
        ``W * constraint_values(Z)``.

        Parameters
        ----------
        R : ndarray of shape (n_samples, n_outputs)
            Residual-like matrix.
        Z : ndarray of shape (n_samples, n_blocks, n_outputs)
            Product :math:`XU` of the forward pass.
        folded : ndarray of shape (n_samples, n_blocks, n_outputs)
            :meth:`cone_curvature_weights` of :math:`W`.

        Returns
        -------
        G : ndarray of shape (n_features, n_blocks, n_outputs)
            The sum of both adjoints.
        """
        if not self._plain_cones():
            return self.joint_adjoint(R, folded * self.constraint_values(Z))
        op = self.operator
        _, B, C = op.coef_shape
        H = np.asarray(folded * Z, dtype=op.dtype).reshape(_n_rows(op), B, C)
        return self._adjoint_plus_datafit(H, R)

    # ----------------------------------------------------------- certificate
    def evaluate(self, W, intercept=None, multipliers=None):
        """Certificate at ``W`` with cone multipliers :math:`\\Lambda \\ge 0`.

        Parameters
        ----------
        W : ndarray of shape coef_shape
            Coefficients (need not be feasible; the primal value ignores the
            constraints, see :meth:`restore`).
        intercept : ndarray of shape (n_outputs,), default=None
            Warm start of the intercept.
        multipliers : ndarray of shape (n_samples, n_blocks, n_outputs), default=None
            Non-negative multiplier estimate; None means 0 (still a valid, if
            weak, certificate).

        Returns
        -------
        certificate : Certificate
            Primal value at ``W`` and the dual value of
            :math:`(\\Theta, \\Lambda) = c\\,(-\\nabla F, \\Lambda)`.
        intercept : ndarray of shape (n_outputs,)
            The optimal intercept.
        G : ndarray of shape coef_shape
            :math:`\\mathcal{A}^\\top\\nabla F - \\mathcal{G}^\\top\\Lambda`, the
            gradient of the Lagrangian.
        """
        value, b, grad = self.smooth(self.operator.forward(W), intercept)
        if multipliers is not None:
            multipliers = np.maximum(np.asarray(multipliers, dtype=self.dtype), 0)
            G = self.joint_adjoint(grad, -multipliers)
        else:
            G = self.operator.adjoint(grad)
        return self.certificate(W, value, grad, G), b, G

    def refine_multipliers(self, grad, multipliers=None, *, max_columns=2000, blocks=None, bound_only=False):
        """Improve multipliers column by column for the dual point of ``grad``.

        For a fixed :math:`\\Theta = -\\nabla F` the best multipliers of column
        :math:`(k, c)` minimize :math:`\\|(\\mathcal{A}^\\top\\nabla F)_{kc} -
        X^\\top S_k \\lambda\\|_2` over :math:`\\lambda \\ge 0`, a non-negative least
        squares problem with ``d`` rows (its value is the norm of the
        projection of :math:`-(\\mathcal{A}^\\top\\nabla F)_{kc}` on the cone
        :math:`\\mathcal{K}_k`). Solving it for the columns whose current dual
        norm exceeds ``alpha`` (those that set the dual scaling) tightens the
        certificate of an inexact solution without changing the primal point.

        Parameters
        ----------
        grad : ndarray of shape (n_samples, n_outputs)
            Datafit gradient at an optimal intercept.
        multipliers : ndarray of shape (n_samples, n_blocks, n_outputs), default=None
            Current multipliers (zeros when None).
        max_columns : int, default=2000
            Largest number of columns refined (the worst ones first).
        blocks : ndarray of int, default=None
            Only columns of these blocks are refined (None: all blocks).
        bound_only : bool, default=False
            Refine only the columns the dual bound needs. The bound depends on
            the columns only through their largest dual norm, so columns are
            refined in decreasing order of norm until the largest refined norm
            is at least the next column's: refining the rest could not lower
            the maximum, and the bound is that of refining every column. The
            other columns keep their multipliers (far from the optimum, on
            many columns, this saves all but a few of the least-squares
            solves; a certificate needs no more, a working set's ranking
            does).

        Returns
        -------
        multipliers : ndarray of shape (n_samples, n_blocks, n_outputs)
            Non-negative; columns are only changed where this lowers their
            dual norm.
        G : ndarray of shape coef_shape
            :math:`\\mathcal{A}^\\top\\nabla F - \\mathcal{G}^\\top\\Lambda` for the
            returned multipliers.
        """
        from scipy.optimize import nnls

        op = self.operator
        n, (_, B, C) = _n_rows(op), self.coef_shape
        lam = (
            np.zeros((n, B, C))
            if multipliers is None
            else np.maximum(np.asarray(multipliers, dtype=np.float64), 0).reshape(n, B, C).copy()
        )
        G = np.asarray(self.joint_adjoint(grad, -lam), dtype=np.float64)
        norms = np.sqrt(np.einsum("dkc,dkc->kc", G, G))
        above = norms > self.alpha
        if blocks is not None:
            above &= np.isin(np.arange(B), blocks)[:, None]
        bad = np.flatnonzero(above.ravel())
        if bad.size == 0:
            return lam, G
        sparse = sp.issparse(getattr(op, "X", None))
        if sparse and 8 * op.X.shape[0] * op.X.shape[1] > _SPARSE_NNLS_BYTES:
            # Each column's least-squares basis is the dense block of its rows
            # of X, which large sparse X must not become; the multipliers
            # given still certify (only less tightly).
            return lam, G
        bad = bad[np.argsort(-norms.ravel()[bad])][:max_columns]
        AtG = np.asarray(op.adjoint(grad), dtype=np.float64)
        X = op.X.astype(np.float64) if sparse else np.asarray(op.X, dtype=np.float64)
        refined_max = 0.0
        for k, c in zip(*np.divmod(bad, C)):
            if bound_only and refined_max >= norms[k, c]:
                break
            rows = np.flatnonzero(self.cone_signs[:, k])
            Xr = X[rows].toarray() if sparse else X[rows]
            basis = (self.cone_signs[rows, k, None] * Xr).T
            sol, residual = nnls(basis, AtG[:, k, c], maxiter=50 * len(rows))
            if residual < norms[k, c]:
                lam[:, k, c] = 0
                lam[rows, k, c] = sol
                G[:, k, c] = AtG[:, k, c] - basis @ sol
            refined_max = max(refined_max, min(residual, norms[k, c]))
        return lam, G

    def alpha_max(self):
        """An upper bound on the smallest ``alpha`` for which ``U = 0`` is optimal.

        Returns
        -------
        alpha_max : float
            :math:`R^\\circ(\\mathcal{A}^\\top\\nabla F(\\mathbf{1}b^{*\\top}))`,
            the threshold of the program without cones; the cones can only
            lower it (``Lambda = 0`` is one admissible multiplier).
        """
        return super().alpha_max()

    # ----------------------------------------------------------- feasibility
    def _interior_margins(self):
        if self._margins is None:
            self._margins = self.cone_signs * (self.operator.X @ self.interior)
        return self._margins

    def restore(self, W, Z=None):
        """Move a nearly feasible point into the cones: project it, then shift along the interior points.

        A column :math:`v` of block :math:`k` whose worst violation is at most
        1 % of its largest pre-activation (10 % for the columns of at least
        1e-3 times the largest column's norm) is replaced by its Euclidean
        projection on :math:`\\mathcal{K}_k` (a non-negative least-squares
        problem on the violated rows). Then every column still violated (the
        others, and the rounding left by the projections) becomes
        :math:`u + t g_k` with the smallest :math:`t \\ge 0` that makes
        :math:`(2D_k - I)X(u + t g_k) \\ge 0` (vectorized over all columns
        with the product already computed), or 0 when that shift would be
        larger than the column itself. The result is feasible, so its
        objective is a true upper bound of the optimum and the recovered ReLU
        network reproduces its predictions exactly.

        The projection matters for the certificate: the shift along a random
        gate is large where the gate's hyperplane passes near a violated row,
        and it cost the restored point of a multinomial digits program 55 %
        of its objective, where the projection costs 0.5 % (measured in
        ``benchmarks/README.md``, "Restored points: projections on the cones").

        Parameters
        ----------
        W : ndarray of shape coef_shape
            Coefficients.
        Z : ndarray of shape (n_samples, n_blocks, n_outputs), default=None
            ``operator.product(W)`` if already computed.

        Returns
        -------
        W_feasible : ndarray of shape coef_shape
            ``W`` itself when it is feasible or no interior points are known.
        n_changed : int
            Number of columns projected, moved or zeroed.
        """
        if self.interior is None:
            return W, 0
        if Z is None:
            Z = self.operator.product(W)
        W, projected = self._project_nearly_feasible(W, Z)
        if projected.any():
            Z = self.operator.product(W)
        excess = -ConeConstrainedProblem.constraint_values(self, Z)
        bad = excess.max(axis=0) > 0 if excess.size else np.zeros(W.shape[1:], bool)
        if not bad.any():
            return W, int(projected.sum())
        margins = self._interior_margins()[:, :, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(excess > 0, excess / margins, 0.0)
        # Rounding in the new product would leave a last-bit violation at the
        # row that sets t; a relative nudge keeps it on the feasible side.
        t = ratio.max(axis=0) * (1 + 16 * np.finfo(W.dtype).eps)
        g = self.interior[:, :, None]
        shift = t * np.linalg.norm(self.interior, axis=0)[:, None]
        size = np.sqrt(np.einsum("dkc,dkc->kc", W, W))
        zero = bad & ~(np.isfinite(shift) & (shift <= size))
        out = W + g * np.where(bad & ~zero, t, 0.0).astype(W.dtype)[None]
        out[:, zero] = 0
        return out, int((bad | projected).sum())

    def _project_nearly_feasible(self, W, Z):
        """Project the nearly feasible columns that violate their cones onto them.

        The projection of :math:`v` on :math:`\\mathcal{K}_k = \\{u : A u \\ge
        0\\}`, :math:`A = (2D_k - I)X`, is :math:`v + A_S^\\top \\mu` with
        :math:`\\mu = \\arg\\min_{\\mu \\ge 0} \\|A_S^\\top \\mu + v\\|_2` (its
        dual, a non-negative least-squares problem) once :math:`S` holds the
        rows active at the projection. :math:`S` starts as the violated rows
        and takes the rows the projection violates, for at most
        ``_PROJECT_ROUNDS`` rounds. Columns violated by more (see
        ``_PROJECT_RTOL``) are left to the shift of :meth:`restore`.

        Parameters
        ----------
        W : ndarray of shape coef_shape
            Coefficients.
        Z : ndarray of shape (n_rows, n_blocks, n_outputs)
            ``operator.product(W)``.

        Returns
        -------
        W_projected : ndarray of shape coef_shape
            ``W`` with the projected columns replaced (a copy when any is).
        projected : ndarray of shape (n_blocks, n_outputs), dtype bool
            The columns replaced.
        """
        from scipy.optimize import nnls

        values = ConeConstrainedProblem.constraint_values(self, Z)
        if values.size == 0:
            return W, np.zeros(W.shape[1:], bool)
        worst = -values.min(axis=0) / np.maximum(np.abs(Z).max(axis=0), np.finfo(float).tiny)
        size = np.sqrt(np.einsum("dkc,dkc->kc", W, W))
        large = size >= _PROJECT_LARGE * size.max()
        near = (worst > 0) & (worst <= np.where(large, _PROJECT_RTOL_LARGE, _PROJECT_RTOL))
        if not near.any():
            return W, near
        X = self.operator.X
        sparse = sp.issparse(X)
        if sparse and 8 * X.shape[0] * X.shape[1] > _SPARSE_NNLS_BYTES:
            # As in refine_multipliers: dense row blocks of a large sparse X
            # are not made; the shift alone restores.
            return W, np.zeros_like(near)
        out = np.array(W, copy=True)
        max_rows = _PROJECT_MAX_ROWS * W.shape[0]
        for k, c in zip(*np.nonzero(near)):
            signs = self.cone_signs[:, k].astype(np.float64)
            v = out[:, k, c].astype(np.float64)
            rows = np.flatnonzero(values[:, k, c] < 0)
            u = None
            for _ in range(_PROJECT_ROUNDS):
                if rows.size > max_rows:
                    u = None
                    break
                Xr = X[rows].toarray() if sparse else X[rows]
                A = signs[rows, None] * np.asarray(Xr, dtype=np.float64)
                try:
                    mu = nnls(A.T, -v, maxiter=50 * len(rows))[0]
                except RuntimeError:  # no convergence: leave it to the shift
                    break
                # A step 1e-8 longer than the projection's leaves the rows
                # it fixes inside their cone by more than rounding (exactly
                # on the boundary, a new product puts half of them outside).
                u = v + (1 + _PROJECT_OVERSTEP) * (A.T @ mu)
                violated = np.flatnonzero(signs * (X @ u) < 0)
                violated = violated[~np.isin(violated, rows)]
                if violated.size == 0:
                    break
                rows = np.union1d(rows, violated)
            if u is None:
                near[k, c] = False
            else:
                out[:, k, c] = u
        return out, near

    # ----------------------------------------------------------- cvxpy
    def cvxpy_constraints(self, W_vars):
        """CVXPY cone constraints, one sparse block-diagonal inequality per output.

        Parameters
        ----------
        W_vars : list of cvxpy expressions of shape (n_blocks, n_features)
            One per output (see ``skconvex.solvers.conic.cvxpy_problem``).

        Returns
        -------
        constraints : list of cvxpy constraints
            ``G @ vec(W_c) >= 0`` with ``G`` a scipy sparse matrix holding
            :math:`(2D_k - I)X` on its diagonal blocks (rows of zero weight
            dropped). Their dual values are the multipliers, see
            :meth:`multipliers_from_cvxpy`.
        """
        import cvxpy as cp

        G = self.cone_matrix()
        d, B, _ = self.coef_shape
        return [G @ cp.reshape(Wc, (B * d,), order="C") >= 0 for Wc in W_vars]

    def cone_matrix(self):
        """The explicit constraint matrix of one output column.

        Returns
        -------
        G : scipy.sparse.csr_array of shape (n_constraints / n_outputs, n_blocks * n_features)
            Row ``r`` is :math:`s_{jk} x_j^\\top` placed in the columns of
            block ``k`` (pattern-major, as :meth:`~skconvex.programs.operators.PatternOperator.explicit`).
        """
        d, B, _ = self.coef_shape
        blocks, rows = np.nonzero(self.cone_signs.T)
        check_memory(
            20 * len(rows) * d,
            what=f"An explicit cone matrix with {len(rows) * d} entries",
            lower="n_arrangements",
        )
        X = self.operator.X.astype(np.float64)
        if sp.issparse(X):
            # Block k is diag(s_k) X on the rows where s_k is non-zero, ordered
            # as np.nonzero orders ``rows`` above (block-major, rows ascending).
            parts = []
            for k in range(B):
                keep = np.flatnonzero(self.cone_signs[:, k])
                parts.append(
                    sp.csr_array(X[keep].multiply(self.cone_signs[keep, k, None].astype(np.float64)))
                )
            G = sp.block_diag(parts, format="csr")
            return sp.csr_array(G)
        vals = self.cone_signs[rows, blocks].astype(np.float64)[:, None] * X[rows]
        cols = blocks[:, None] * d + np.arange(d)[None, :]
        r = np.repeat(np.arange(len(rows)), d)
        return sp.csr_array((vals.ravel(), (r, cols.ravel())), shape=(len(rows), B * d))

    def multipliers_from_cvxpy(self, constraints):
        """Read the multipliers :math:`\\Lambda` from the dual values of :meth:`cvxpy_constraints`.

        Parameters
        ----------
        constraints : list of solved cvxpy constraints
            As returned by :meth:`cvxpy_constraints`, after the solve.

        Returns
        -------
        multipliers : ndarray of shape (n_samples, n_blocks, n_outputs)
            Non-negative (clipped at 0), in the compute dtype.
        """
        n, (_, B, C) = _n_rows(self.operator), self.coef_shape
        lam = np.zeros((n, B, C), dtype=self.dtype)
        blocks, rows = np.nonzero(self.cone_signs.T)
        for c, con in enumerate(constraints):
            if con.dual_value is not None:
                lam[rows, blocks, c] = np.maximum(np.asarray(con.dual_value).ravel(), 0)
        return lam

    # ----------------------------------------------------------- views
    def astype(self, dtype):
        """Return the same problem with the operator and cone data in another dtype.

        Parameters
        ----------
        dtype : {np.float32, np.float64}
            Target dtype.

        Returns
        -------
        problem : ConeConstrainedProblem
            ``self`` if the dtype already matches, else a converted copy.
        """
        new = super().astype(dtype)
        if new is not self and new.operator is not self.operator:
            new.cone_signs = self.cone_signs.astype(dtype)
            new.interior = None if self.interior is None else self.interior.astype(dtype)
            new._margins = None
        return new

    def restrict(self, blocks):
        """Return the problem restricted to a subset of the blocks, with their cones.

        Parameters
        ----------
        blocks : ndarray of int
            Indices of the blocks kept.

        Returns
        -------
        problem : ConeConstrainedProblem
            The restricted program; its solutions padded with zeros are
            feasible for the full one.
        """
        new = super().restrict(blocks)
        new.cone_signs = np.ascontiguousarray(self.cone_signs[:, blocks])
        new.interior = (
            None if self.interior is None else np.ascontiguousarray(self.interior[:, blocks])
        )
        new._margins = None if self._margins is None else self._margins[:, blocks]
        return new


#: ``restore`` projects a violated column on its cone when its worst violation
#: is at most ``_PROJECT_RTOL`` of its largest pre-activation, or at most
#: ``_PROJECT_RTOL_LARGE`` for columns of at least ``_PROJECT_LARGE`` times the
#: largest column's norm; it shifts the others along their interior points.
#: Projections of columns violated by more have many active rows and cost up
#: to 100 times more; on the multinomial digits program they restored slightly
#: worse points (0.1762 against 0.1761, the program's optimum being 0.1747),
#: while the large columns violated by 1-6 % carried the batch-norm digits
#: program's certificate (``benchmarks/README.md``, "Restored points:
#: projections on the cones").
_PROJECT_RTOL = 1e-2
_PROJECT_RTOL_LARGE = 1e-1
_PROJECT_LARGE = 1e-3

#: Relative overstep of the projections past their active rows.
_PROJECT_OVERSTEP = 1e-8

#: Largest active set of a projection, in multiples of ``n_features``; a
#: column violated on more rows is left to the shift (its least-squares
#: problem would cost more than a Newton step, as on large sparse X).
_PROJECT_MAX_ROWS = 4

#: Rounds of rows added to a projection's active set (rows it violates).
_PROJECT_ROUNDS = 5

#: Largest dense copy of a sparse X's rows that ``refine_multipliers`` makes
#: (one column at a time); beyond it the refinement is skipped.
_SPARSE_NNLS_BYTES = 16 * 2**20


def _n_rows(operator):
    """Rows of the products: patch rows for patch operators, samples otherwise."""
    return getattr(operator, "n_rows", operator.n_samples)


def certify(problem, W, intercept, multipliers, Z=None):
    """Certify a point of a cone program: restore feasibility, primal and dual values.

    Parameters
    ----------
    problem : ConeConstrainedProblem
        The program.
    W : ndarray of shape coef_shape
        A (nearly feasible) point.
    intercept : ndarray of shape (n_outputs,)
        Warm start of the intercept.
    multipliers : ndarray of shape (n_samples, n_blocks, n_outputs) or None
        Multiplier estimate :math:`\\Lambda \\ge 0`.
    Z : ndarray, default=None
        ``problem.operator.product(W)`` if known.

    Returns
    -------
    W_feasible : ndarray of shape coef_shape
        The restored point (see :meth:`ConeConstrainedProblem.restore`).
    certificate : Certificate
        Primal value at ``W_feasible`` and the dual value from ``(W,
        multipliers)``; its gap bounds the suboptimality of ``W_feasible``.
    intercept : ndarray of shape (n_outputs,)
        Optimal intercept of ``W_feasible``.
    violation : float
        Relative violation of ``W`` (before restoring).
    violation_after : float
        Relative violation of ``W_feasible`` (0 up to rounding).
    """
    op = problem.operator
    if Z is None:
        Z = op.product(W)
    violation = problem.violation(Z)
    value, b, grad = problem.smooth(op.reduce(Z), intercept)
    if multipliers is None:
        G = op.adjoint(grad)
    else:
        G = problem.joint_adjoint(grad, -np.maximum(multipliers, 0))
    dual = problem.dual_value(grad, G)
    W_feas, changed = problem.restore(W, Z)
    if changed:
        Z = op.product(W_feas)
        value, b = problem.smooth_value(op.reduce(Z), b)
    primal = value + problem.alpha * problem.penalty.value(W_feas)
    return W_feas, Certificate(primal, dual), b, violation, problem.violation(Z)
