"""Convex programs with cone constraints on nested groups of columns (deeper ReLU networks).

The exact convex programs of parallel three-layer ReLU networks (Ergen &
Pilanci, 2021) and of path-regularized deep ReLU networks (Ergen & Pilanci,
2023) predict, like the two-layer program, with a masked sum of products
:math:`\\mathcal{A}U = \\sum_b m_b \\odot X u_b` over columns :math:`u_b` (one
:class:`~skconvex.programs.operators.PatternOperator` whose masks are products of
patterns of several layers, times signs). Their feasible sets are nested:

* level 1, one cone per column: :math:`(2D_{1,b} - I) X u_b \\ge 0` (the
  first-layer unit of column :math:`b` has activation pattern
  :math:`D_{1,b}`), handled by :class:`~skconvex.programs.cones.ConeConstrainedProblem`;
* level :math:`k \\ge 2`, one cone per *node* :math:`v` (a run of
  :math:`s_k` consecutive columns, the leaves below :math:`v`):

  .. math:: (2D_{k,v} - I)\\, h_{k,v} \\ge 0,\\qquad
            h_{k,v} = \\sum_{b \\in v} e_{k,b} \\odot X u_b,

  where the signed mask :math:`e_{k,b}` holds the signs of the edges and the
  patterns of the lower levels on the path from leaf :math:`b` to
  :math:`v`, so that :math:`h_{k,v}` is the pre-activation of node
  :math:`v` up to a positive factor. The top level is the sub-network's
  last hidden unit, whose pattern the prediction mask also contains.

All constraint values are masked sums of the product :math:`Z = XU` the
forward pass computes anyway, and the adjoint
:math:`\\mathcal{A}^\\top R + \\sum_k \\mathcal{G}_k^\\top \\Lambda_k` is one
GEMM :math:`X^\\top H` with :math:`H = M \\odot R + \\sum_k E_k \\odot
\\operatorname{repeat}(S_k \\odot \\Lambda_k)`.

**Duality.** As for one family (:mod:`skconvex.programs.cones`): with multipliers
:math:`\\Lambda_k \\ge 0` of every level, :math:`(\\Theta, \\Lambda) =
c(-\\nabla F, \\Lambda)` is dual feasible when :math:`c\\, R^\\circ(\\mathcal{A}^\\top
\\nabla F - \\sum_k \\mathcal{G}_k^\\top\\Lambda_k) \\le \\alpha`, with value
:math:`-F^*(-\\Theta)` (a lower bound on the optimum).

**Feasibility.** A column is moved into its level-1 cone along its gate
(:meth:`~skconvex.programs.cones.ConeConstrainedProblem.restore`); then, level by level, every node
with a violated constraint is moved along a *direction* (one column per
leaf) that is feasible at every level and strictly inside the node's cone
wherever the constraint can bind: the sub-network that produced the
patterns, which is such a point by construction
(:func:`~skconvex.sample_subnetworks`). Moving a node never
breaks the constraints below it (all cones are convex and contain the
direction), so the result is exactly feasible and the recovered ReLU network
reproduces the convex predictions on the training data.
"""

import numpy as np
import scipy.sparse as sp

from .._config import check_memory
from .cones import ConeConstrainedProblem
from .problem import Certificate

__all__ = ["NestedConeProblem", "certify_nested"]


class NestedConeProblem(ConeConstrainedProblem):
    """:math:`\\min F(\\mathcal{A}U + \\mathbf{1}b^\\top) + \\alpha R(U)` with cones on columns and on nested groups of columns.

    Parameters
    ----------
    operator : PatternOperator
        The prediction map (masks are products of the patterns of all levels
        times the signs of the paths), ``n_blocks`` columns.
    datafit : Datafit
        The loss :math:`F` (see :mod:`skconvex.programs.datafits`).
    penalty : ColumnGroupL2 or ColumnBlockL2
        The penalty :math:`R`.
    y : ndarray of shape (n_samples, n_outputs)
        Encoded targets.
    sample_weight : ndarray of shape (n_samples,)
        Row weights summing to one; rows of zero weight carry no constraint.
    alpha : float
        Penalty strength, >= 0.
    cone_patterns : ndarray of shape (n_samples, n_blocks)
        Level-1 patterns :math:`D_{1,b}` of the columns.
    levels : list of tuple
        One ``(group_size, patterns, inner_masks)`` per upper level, from the
        bottom: ``group_size`` consecutive columns form a node (sizes nest:
        each divides the next and ``n_blocks``), ``patterns`` of shape
        ``(n_samples, n_blocks // group_size)`` are the nodes' patterns
        :math:`D_{k,v}` and ``inner_masks`` of shape ``(n_samples, n_blocks)``
        the signed masks :math:`e_{k,b}`.
    interior : ndarray of shape (n_features, n_blocks), default=None
        A point of each level-1 cone (the gate of the column's unit).
    directions : ndarray of shape (n_features, n_blocks), default=None
        A point feasible at every level and strictly inside every upper-level
        cone where it can bind (see the module docstring); needed by
        :meth:`restore` for the upper levels.
    fit_intercept : bool, default=True
        Whether the output intercept is free.

    Attributes
    ----------
    level_sizes : list of int
        Columns per node at each upper level.
    level_signs : list of ndarray
        :math:`S_k = 2D_k - 1` of shape ``(n_samples, n_nodes_k)``, 0 on rows of
        zero weight.
    level_masks : list of ndarray
        The signed masks :math:`e_k` in the compute dtype.

    References
    ----------
    T. Ergen and M. Pilanci. Global optimality beyond two layers: training
    deep ReLU networks via convex programs. ICML 2021, arXiv:2110.05518.

    T. Ergen and M. Pilanci. Path regularization: a convexity and sparsity
    inducing regularization for parallel ReLU networks. ICLR 2023,
    arXiv:2110.09548.

    Examples
    --------
    >>> import numpy as np
    >>> from skconvex.programs.datafits import SquaredError
    >>> from skconvex.programs.nested_cones import NestedConeProblem
    >>> from skconvex.programs.operators import PatternOperator
    >>> from skconvex.programs.penalties import ColumnGroupL2
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.standard_normal((10, 2)), rng.standard_normal((10, 1))
    >>> D1 = X @ rng.standard_normal((2, 2)) >= 0
    >>> D2 = np.ones((10, 1), dtype=bool)
    >>> op = PatternOperator(X, D1 & D2)
    >>> problem = NestedConeProblem(op, SquaredError(), ColumnGroupL2(), y,
    ...     np.full(10, 0.1), 0.1, cone_patterns=D1, levels=[(2, D2, D1 * 1.0)])
    >>> problem.violation(op.product(problem.zeros()))
    0.0
    """

    #: Columns are coupled by the nested cones, so working sets and support
    #: Newton (which solve restricted sub-programs) do not apply.
    supports_restrict = False

    def __init__(
        self,
        operator,
        datafit,
        penalty,
        y,
        sample_weight,
        alpha,
        *,
        cone_patterns,
        levels,
        interior=None,
        directions=None,
        fit_intercept=True,
    ):
        super().__init__(
            operator,
            datafit,
            penalty,
            y,
            sample_weight,
            alpha,
            cone_patterns=cone_patterns,
            interior=interior,
            fit_intercept=fit_intercept,
        )
        n, B = operator.n_samples, operator.n_patterns
        dtype = operator.dtype
        self.level_sizes, self.level_signs, self.level_masks = [], [], []
        previous = 1
        for size, patterns, masks in levels:
            size = int(size)
            if size < 1 or B % size or size % previous:
                raise ValueError(
                    f"Level group sizes must nest and divide the {B} columns; got "
                    f"{size} after {previous}."
                )
            patterns = np.asarray(patterns, dtype=bool)
            masks = np.asarray(masks)
            if patterns.shape != (n, B // size) or masks.shape != (n, B):
                raise ValueError(
                    f"A level of group size {size} needs patterns of shape {(n, B // size)} "
                    f"and masks of shape {(n, B)}; got {patterns.shape} and {masks.shape}."
                )
            signs = np.where(patterns, 1.0, -1.0).astype(dtype)
            signs[self.sample_weight <= 0] = 0.0
            self.level_sizes.append(size)
            self.level_signs.append(np.ascontiguousarray(signs))
            self.level_masks.append(np.ascontiguousarray(masks, dtype=dtype))
            previous = size
        if directions is not None:
            directions = np.ascontiguousarray(directions, dtype=dtype)
            if directions.shape != (operator.coef_shape[0], B):
                raise ValueError(
                    f"directions must have shape {(operator.coef_shape[0], B)}, got "
                    f"{directions.shape}."
                )
        self.directions = directions
        self._level_margins = None

    # ----------------------------------------------------------- constraints
    @property
    def n_levels(self):
        """Number of constraint families (the column cones included)."""
        return 1 + len(self.level_sizes)

    def _node_sums(self, k, Z):
        """:math:`h_{k,v}` from the product ``Z``: signed masked sums over each node's columns."""
        n, B, C = Z.shape
        size = self.level_sizes[k]
        inner = self.level_masks[k][:, :, None] * Z
        # einsum's reduction over the short middle axis: 10x faster than
        # ndarray.sum's strided one on (124, 200, 2, 3) arrays.
        return np.einsum("jvsc->jvc", inner.reshape(n, B // size, size, C))

    def level_values(self, Z):
        """Constraint values of every family from the product ``Z = operator.product(U)``.

        Parameters
        ----------
        Z : ndarray of shape (n_samples, n_blocks, n_outputs)
            Product :math:`XU`.

        Returns
        -------
        values : list of ndarray
            Level 1: :math:`S_1 \\odot Z` of shape ``(n_samples, n_blocks,
            n_outputs)``; level :math:`k`: :math:`S_k \\odot h_k` of shape
            ``(n_samples, n_nodes_k, n_outputs)``. All non-negative at
            feasible points.
        """
        values = [self.constraint_values(Z)]
        for k, signs in enumerate(self.level_signs):
            values.append(signs[:, :, None] * self._node_sums(k, Z))
        return values

    def multiplier_shapes(self):
        """Return the shapes of the multipliers of every family.

        Returns
        -------
        shapes : list of tuple
            ``(n_samples, n_blocks, n_outputs)`` then ``(n_samples, n_nodes_k,
            n_outputs)`` per upper level.
        """
        n, (_, B, C) = self.operator.n_samples, self.coef_shape
        return [(n, B, C)] + [(n, B // s, C) for s in self.level_sizes]

    def flat_values(self, Z):
        """All constraint values side by side, shape ``(n_samples, n_constraint_columns)``.

        Parameters
        ----------
        Z : ndarray of shape (n_samples, n_blocks, n_outputs)
            Product :math:`XU`.

        Returns
        -------
        values : ndarray of shape (n_samples, sum of n_blocks_k * n_outputs)
            The families of :meth:`level_values`, flattened per row.
        """
        n = Z.shape[0]
        return np.concatenate([v.reshape(n, -1) for v in self.level_values(Z)], axis=1)

    def split(self, flat):
        """Split flat per-row multipliers into one array per family.

        Parameters
        ----------
        flat : ndarray of shape (n_samples, n_constraint_columns)
            As laid out by :meth:`flat_values`.

        Returns
        -------
        multipliers : list of ndarray
            Shapes of :meth:`multiplier_shapes`.
        """
        shapes = self.multiplier_shapes()
        ends = np.cumsum([s[1] * s[2] for s in shapes])[:-1]
        return [part.reshape(shape) for part, shape in zip(np.split(flat, ends, axis=1), shapes)]

    def nested_adjoint(self, R, multipliers=None):
        """:math:`\\mathcal{A}^\\top R + \\sum_k \\mathcal{G}_k^\\top \\Lambda_k` in one GEMM.

        Parameters
        ----------
        R : ndarray of shape (n_samples, n_outputs) or None
            Residual-like matrix (None for 0).
        multipliers : list of ndarray or ndarray, default=None
            :math:`\\Lambda_k` of every family (:meth:`multiplier_shapes`), or
            their flat layout (:meth:`flat_values`); None means 0.

        Returns
        -------
        G : ndarray of shape (n_features, n_blocks, n_outputs)
            :math:`X^\\top H`, block by block.
        """
        op = self.operator
        d, B, C = op.coef_shape
        n = op.n_samples
        if multipliers is None:
            return op.adjoint(R)
        if not isinstance(multipliers, (list, tuple)):
            multipliers = self.split(np.asarray(multipliers))
        H = self.cone_signs[:, :, None] * np.asarray(multipliers[0], dtype=op.dtype).reshape(n, B, C)
        for k, (size, signs, masks) in enumerate(
            zip(self.level_sizes, self.level_signs, self.level_masks)
        ):
            lam = signs[:, :, None] * np.asarray(multipliers[k + 1], dtype=op.dtype).reshape(
                n, B // size, C
            )
            H += masks[:, :, None] * np.repeat(lam, size, axis=1)
        if R is not None:
            R = np.asarray(R, dtype=op.dtype).reshape(n, C)
            H += op.masks[:, :, None] * R[:, None, :]
        return (op.X.T @ H.reshape(n, B * C)).reshape(d, B, C)

    def violation(self, Z):
        """Largest constraint violation of any family, relative to that family's scale.

        Parameters
        ----------
        Z : ndarray of shape (n_samples, n_blocks, n_outputs)
            Product :math:`XU`.

        Returns
        -------
        violation : float
            Max over families of :math:`\\max(-\\text{values})_+ /
            \\max|\\text{pre-activations}|` (0 at feasible points).
        """
        if Z.size == 0:
            return 0.0
        worst = super().violation(Z)
        for k, signs in enumerate(self.level_signs):
            h = self._node_sums(k, Z)
            bad = float(np.max(-(signs[:, :, None] * h))) if h.size else 0.0
            if bad > 0:
                worst = max(worst, bad / float(np.max(np.abs(h))))
        return worst

    # ----------------------------------------------------------- certificate
    def evaluate(self, W, intercept=None, multipliers=None):
        """Certificate at ``W`` with multipliers of every family.

        Parameters
        ----------
        W : ndarray of shape coef_shape
            Coefficients (the primal value ignores the constraints).
        intercept : ndarray of shape (n_outputs,), default=None
            Warm start of the intercept.
        multipliers : list of ndarray, default=None
            :math:`\\Lambda_k \\ge 0` (clipped at 0); None means 0.

        Returns
        -------
        certificate : Certificate
            Primal value at ``W`` and a certified lower bound.
        intercept : ndarray of shape (n_outputs,)
            The optimal intercept.
        G : ndarray of shape coef_shape
            Gradient of the Lagrangian.
        """
        value, b, grad = self.smooth(self.operator.forward(W), intercept)
        if multipliers is None:
            G = self.operator.adjoint(grad)
        else:
            G = self.nested_adjoint(grad, [-np.maximum(m, 0) for m in multipliers])
        return self.certificate(W, value, grad, G), b, G

    # ----------------------------------------------------------- feasibility
    def _upper_margins(self):
        if self._level_margins is None:
            # The directions do not depend on the output: one product column.
            X = self.operator.X
            Zd = (X @ self.directions.astype(X.dtype, copy=False))[:, :, None]
            self._level_margins = [
                signs * self._node_sums(k, Zd)[:, :, 0]
                for k, signs in enumerate(self.level_signs)
            ]
        return self._level_margins

    def restore(self, W, Z=None):
        """Move a nearly feasible point into every cone (level 1 first, then each upper level).

        At level :math:`k`, node :math:`v` (output :math:`c`) moves by
        :math:`t\\,\\delta_v` with the smallest :math:`t \\ge 0` that makes its
        constraint hold, :math:`\\delta` the ``directions``; it is zeroed
        when that shift would be larger than the node itself or cannot fix
        the violation.

        Parameters
        ----------
        W : ndarray of shape coef_shape
            Coefficients.
        Z : ndarray of shape (n_samples, n_blocks, n_outputs), default=None
            ``operator.product(W)`` if known.

        Returns
        -------
        W_feasible : ndarray of shape coef_shape
            Feasible at every level (when ``interior`` and ``directions`` are
            known).
        n_changed : int
            Number of columns and nodes moved or zeroed.
        """
        W, changed = super().restore(W, Z)
        if not self.level_sizes or self.directions is None:
            return W, changed
        op = self.operator
        Z = op.product(W) if (changed or Z is None) else Z
        d, B, C = W.shape
        for k, (size, signs) in enumerate(zip(self.level_sizes, self.level_signs)):
            excess = -(signs[:, :, None] * self._node_sums(k, Z))
            bad = excess.max(axis=0) > 0 if excess.size else np.zeros((B // size, C), bool)
            if not bad.any():
                continue
            margins = self._upper_margins()[k][:, :, None]
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(excess > 0, excess / margins, 0.0)
            t = ratio.max(axis=0) * (1 + 16 * np.finfo(W.dtype).eps)
            dirs = self.directions.reshape(d, B // size, size)
            shift = t * np.linalg.norm(dirs, axis=(0, 2))[:, None]
            Wn = W.reshape(d, B // size, size, C)
            node_size = np.sqrt(np.einsum("dvsc,dvsc->vc", Wn, Wn))
            zero = bad & ~(np.isfinite(shift) & (shift <= node_size))
            step = np.where(bad & ~zero, t, 0.0).astype(W.dtype)
            Wn = Wn + dirs[:, :, :, None] * step[None, :, None, :]
            Wn *= ~zero[None, :, None, :]
            W = Wn.reshape(d, B, C)
            Z = op.product(W)
            changed += int(bad.sum())
        return W, changed

    # ----------------------------------------------------------- cvxpy
    def level_matrices(self):
        """Explicit constraint matrices of the upper levels, one output column each.

        Returns
        -------
        matrices : list of scipy.sparse.csr_array
            For level :math:`k`, rows ``(node, sample)`` (rows of zero weight
            dropped) holding :math:`s_{k,jv}\\,e_{k,jb}\\,x_j^\\top` in the
            columns of every leaf ``b`` of the node (pattern-major, as
            :meth:`~skconvex.programs.operators.PatternOperator.explicit`).
        """
        d, B, _ = self.coef_shape
        X = self.operator.X.astype(np.float64)
        out = []
        for size, signs, masks in zip(self.level_sizes, self.level_signs, self.level_masks):
            nodes, rows = np.nonzero(signs.T)
            leaves = nodes[:, None] * size + np.arange(size)[None, :]
            coef = (signs[rows, nodes][:, None] * masks[rows[:, None], leaves]).astype(np.float64)
            check_memory(
                20 * coef.size * d,
                what=f"An explicit constraint matrix with {coef.size * d} entries",
                lower="n_arrangements",
            )
            vals = coef[:, :, None] * X[rows][:, None, :]
            cols = leaves[:, :, None] * d + np.arange(d)[None, None, :]
            r = np.repeat(np.arange(len(rows)), size * d)
            keep = vals.ravel() != 0
            out.append(
                sp.csr_array(
                    (vals.ravel()[keep], (r[keep], cols.ravel()[keep])),
                    shape=(len(rows), B * d),
                )
            )
        return out

    def cvxpy_constraints(self, W_vars):
        """CVXPY constraints of every family (level 1 first, then each upper level per output).

        Parameters
        ----------
        W_vars : list of cvxpy expressions of shape (n_blocks, n_features)
            One per output.

        Returns
        -------
        constraints : list of cvxpy constraints
            ``n_levels * n_outputs`` sparse inequalities, family-major; see
            :meth:`multipliers_from_cvxpy`.
        """
        import cvxpy as cp

        constraints = super().cvxpy_constraints(W_vars)
        d, B, _ = self.coef_shape
        for G in self.level_matrices():
            constraints += [G @ cp.reshape(Wc, (B * d,), order="C") >= 0 for Wc in W_vars]
        return constraints

    def multipliers_from_cvxpy(self, constraints):
        """Read the multipliers of every family from solved :meth:`cvxpy_constraints`.

        Parameters
        ----------
        constraints : list of solved cvxpy constraints
            As returned by :meth:`cvxpy_constraints`.

        Returns
        -------
        multipliers : list of ndarray
            Non-negative, of the shapes of :meth:`multiplier_shapes`.
        """
        C = self.coef_shape[2]
        out = [super().multipliers_from_cvxpy(constraints[:C])]
        for k, signs in enumerate(self.level_signs):
            lam = np.zeros((signs.shape[0], signs.shape[1], C), dtype=self.dtype)
            nodes, rows = np.nonzero(signs.T)
            for c, con in enumerate(constraints[(k + 1) * C : (k + 2) * C]):
                if con.dual_value is not None:
                    lam[rows, nodes, c] = np.maximum(np.asarray(con.dual_value).ravel(), 0)
            out.append(lam)
        return out

    # ----------------------------------------------------------- views
    def astype(self, dtype):
        """Return the same problem in another compute dtype.

        Parameters
        ----------
        dtype : {np.float32, np.float64}
            Target dtype.

        Returns
        -------
        problem : NestedConeProblem
            ``self`` if the dtype already matches, else a converted copy.
        """
        new = super().astype(dtype)
        if new is not self:
            new.level_signs = [s.astype(dtype) for s in self.level_signs]
            new.level_masks = [m.astype(dtype) for m in self.level_masks]
            new.directions = None if self.directions is None else self.directions.astype(dtype)
            new._level_margins = None
        return new


def certify_nested(problem, W, intercept, multipliers, Z=None):
    """Certify a point of a nested cone program: restore feasibility, primal and dual values.

    Parameters
    ----------
    problem : NestedConeProblem
        The program.
    W : ndarray of shape coef_shape
        A (nearly feasible) point.
    intercept : ndarray of shape (n_outputs,) or None
        Warm start of the intercept.
    multipliers : list of ndarray or None
        Multiplier estimates of every family.
    Z : ndarray, default=None
        ``problem.operator.product(W)`` if known.

    Returns
    -------
    W_feasible : ndarray of shape coef_shape
        The restored point.
    certificate : Certificate
        Primal value at ``W_feasible``, dual value from ``(W, multipliers)``.
    intercept : ndarray of shape (n_outputs,)
        Optimal intercept of ``W_feasible``.
    violation : float
        Relative violation of ``W``.
    violation_after : float
        Relative violation of ``W_feasible``.
    """
    op = problem.operator
    if Z is None:
        Z = op.product(W)
    violation = problem.violation(Z)
    value, b, grad = problem.smooth(op.reduce(Z), intercept)
    if multipliers is None:
        G = op.adjoint(grad)
    else:
        G = problem.nested_adjoint(grad, [-np.maximum(m, 0) for m in multipliers])
    dual = problem.dual_value(grad, G)
    W_feas, changed = problem.restore(W, Z)
    if changed:
        Z = op.product(W_feas)
        value, b = problem.smooth_value(op.reduce(Z), b)
    primal = value + problem.alpha * problem.penalty.value(W_feas)
    return W_feas, Certificate(primal, dual), b, violation, problem.violation(Z)
