"""The three-layer CNN program: per-column cones plus one cone per sub-network.

A three-layer CNN with pooling is, over sampled first- and second-layer
patterns, a group-:math:`\\ell_1` program whose columns carry two families of
cone constraints: the ReLU cone of every column on the patch rows, and the
cone of every sub-network's second-layer pattern, which couples the columns
of one sub-network (Ergen & Pilanci, 2021). The operator is
:class:`~skconvex.programs.patches.PatchOperator`.

References
----------
T. Ergen and M. Pilanci. Implicit convex regularizers of CNN architectures:
convex optimization of two- and three-layer networks in polynomial time.
ICLR 2021, arXiv:2006.14798.
"""

import numpy as np
import scipy.sparse as sp

from .._config import check_memory
from .cones import ConeConstrainedProblem

__all__ = ["SubnetworkConeProblem"]


class SubnetworkConeProblem(ConeConstrainedProblem):
    """Cone program of the three-layer CNN: per-column cones plus one cone per sub-network.

    Blocks are pairs ``b = t * J + j`` of a sub-network ``t`` (a second-layer
    pattern :math:`D_{2t}` with output sign :math:`\\sigma_t`) and an inner
    column ``j`` (a first-layer pattern :math:`D_{1j}` with sign
    :math:`\\epsilon_j`); the operator's mask of block ``b`` is
    :math:`\\sigma_t\\epsilon_j D_{2t} D_{1j}`. Besides the cone of every
    column, :math:`(2D_{1j} - I)X_{\\rm st}q_b \\ge 0` (the parent class, with
    ``cone_patterns`` the first-layer patterns), every sub-network and output
    satisfies

    .. math:: (2D_{2t} - I)\\, h_t \\ge 0, \\qquad
              h_t = \\sum_j \\epsilon_j D_{1j} X_{\\rm st} q_{t j},

    the second ReLU's pattern. Constraint values, multipliers and the joint
    adjoint stack both families along the block axis (``n_blocks +
    n_subnetworks`` columns), so the augmented Lagrangian and the CVXPY
    reference handle them like the first family.

    Parameters
    ----------
    operator : PatchOperator
        Operator with the blocks above.
    datafit : Datafit
        The loss.
    penalty : ColumnGroupL2
        Penalty (one group per column and output).
    y : ndarray of shape (n_samples, n_outputs)
        Encoded targets.
    sample_weight : ndarray of shape (n_samples,)
        Sample weights summing to one.
    alpha : float
        Penalty strength.
    inner_patterns : ndarray of shape (n_rows, n_inner), dtype bool
        First-layer patterns :math:`D_{1j}` of the inner columns.
    inner_signs : ndarray of shape (n_inner,)
        Signs :math:`\\epsilon_j`.
    outer_patterns : ndarray of shape (n_rows, n_subnetworks), dtype bool
        Second-layer patterns :math:`D_{2t}`.
    interior : ndarray of shape (patch_size, n_blocks), default=None
        A point of every column's first-layer cone (the gate of its pattern).
    outer_interior : ndarray of shape (patch_size, n_blocks), default=None
        For every sub-network ``t``, columns ``t * J .. (t + 1) * J`` of a
        point satisfying both families of its constraints (the random
        sub-network that produced :math:`D_{2t}`); used by :meth:`restore`.
    fit_intercept : bool, default=True
        Whether the output intercept is free.

    Attributes
    ----------
    outer_signs : ndarray of shape (n_rows, n_subnetworks)
        :math:`2D_{2t} - 1`, 0 on rows of zero sample weight.
    inner_masks : ndarray of shape (n_rows, n_inner)
        :math:`\\epsilon_j D_{1j}` as floats.

    References
    ----------
    T. Ergen and M. Pilanci. Global optimality beyond two layers: training
    deep ReLU networks via convex programs. ICML 2021, arXiv:2110.05518.
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
        inner_patterns,
        inner_signs,
        outer_patterns,
        interior=None,
        outer_interior=None,
        fit_intercept=True,
    ):
        inner_patterns = np.asarray(inner_patterns, dtype=bool)
        outer_patterns = np.asarray(outer_patterns, dtype=bool)
        J, T = inner_patterns.shape[1], outer_patterns.shape[1]
        if operator.n_patterns != J * T:
            raise ValueError(
                f"The operator has {operator.n_patterns} blocks, expected n_subnetworks * "
                f"n_inner = {T} * {J}."
            )
        super().__init__(
            operator,
            datafit,
            penalty,
            y,
            sample_weight,
            alpha,
            cone_patterns=np.tile(inner_patterns, (1, T)),
            interior=interior,
            fit_intercept=fit_intercept,
        )
        dtype = operator.dtype
        self.n_inner, self.n_subnetworks = J, T
        self.inner_masks = np.ascontiguousarray(
            inner_patterns.astype(dtype) * np.asarray(inner_signs, dtype=dtype)[None, :]
        )
        outer = np.where(outer_patterns, 1.0, -1.0).astype(dtype)
        outer[self.sample_weight[operator.row_samples] <= 0] = 0.0
        self.outer_signs = np.ascontiguousarray(outer)
        if outer_interior is not None:
            outer_interior = np.ascontiguousarray(outer_interior, dtype=dtype)
            if outer_interior.shape != (operator.coef_shape[0], J * T):
                raise ValueError(
                    f"outer_interior must have shape {(operator.coef_shape[0], J * T)}, got "
                    f"{outer_interior.shape}."
                )
        self.outer_interior = outer_interior
        self._outer_margins = None

    # ------------------------------------------------------------ second family
    def _hidden(self, Z):
        """Second-layer pre-activations :math:`h_t` of every sub-network, ``(n_rows, T, C)``."""
        n_rows, _, C = Z.shape
        Z = Z.reshape(n_rows, self.n_subnetworks, self.n_inner, C)
        return np.einsum("rj,rtjc->rtc", self.inner_masks, Z)

    @property
    def multiplier_shape(self):
        """Shape ``(n_rows, n_blocks + n_subnetworks, n_outputs)`` of the multipliers."""
        n_rows, B, C = super().multiplier_shape
        return (n_rows, B + self.n_subnetworks, C)

    def multiplier_support(self):
        """Where constraints exist (both families), broadcastable to :attr:`multiplier_shape`.

        Returns
        -------
        support : ndarray of shape (n_rows, n_blocks + n_subnetworks, 1), dtype bool
            False on rows of zero sample weight.
        """
        return np.concatenate([self.cone_signs != 0, self.outer_signs != 0], axis=1)[:, :, None]

    @property
    def n_constraints(self):
        """Number of scalar constraints of both families."""
        C = self.operator.n_outputs
        return super().n_constraints + int(np.count_nonzero(self.outer_signs)) * C

    def constraint_values(self, Z):
        """Both constraint families from the product ``Z``, stacked along the block axis.

        Parameters
        ----------
        Z : ndarray of shape (n_rows, n_blocks, n_outputs)
            Product :math:`X_{\\rm st}U`.

        Returns
        -------
        values : ndarray of shape (n_rows, n_blocks + n_subnetworks, n_outputs)
            Non-negative at feasible points.
        """
        first = super().constraint_values(Z)
        second = self.outer_signs[:, :, None] * self._hidden(Z)
        return np.concatenate([first, second], axis=1)

    def violation(self, Z):
        """Largest violation of either family, relative to its largest pre-activation.

        Parameters
        ----------
        Z : ndarray of shape (n_rows, n_blocks, n_outputs)
            Product of the forward pass.

        Returns
        -------
        violation : float
            0 at feasible points.
        """
        first = super().violation(Z)
        if Z.size == 0:
            return first
        H = self._hidden(Z)
        worst = float(np.max(-(self.outer_signs[:, :, None] * H)))
        if worst <= 0:
            return first
        return max(first, worst / float(np.max(np.abs(H))))

    def joint_adjoint(self, R, multipliers=None):
        """:math:`\\mathcal{A}^\\top R + \\mathcal{G}^\\top\\Lambda` for both families in one GEMM.

        Parameters
        ----------
        R : ndarray of shape (n_samples, n_outputs) or None
            Datafit gradient.
        multipliers : ndarray of shape multiplier_shape, default=None
            :math:`\\Lambda`.

        Returns
        -------
        G : ndarray of shape (patch_size, n_blocks, n_outputs)
            The adjoint.
        """
        op = self.operator
        if multipliers is None:
            return op.adjoint(R)
        d, B, C = op.coef_shape
        n_rows, T = op.n_rows, self.n_subnetworks
        lam = np.asarray(multipliers, dtype=op.dtype).reshape(n_rows, B + T, C)
        H = self.cone_signs[:, :, None] * lam[:, :B]
        outer = self.outer_signs[:, :, None] * lam[:, B:]
        H += (outer[:, :, None, :] * self.inner_masks[:, None, :, None]).reshape(n_rows, B, C)
        if R is not None:
            H += op.masks[:, :, None] * op.expand(R)[:, None, :]
        return (op.X.T @ H.reshape(n_rows, B * C)).reshape(d, B, C)

    def refine_multipliers(self, grad, multipliers=None, *, max_columns=2000):
        """The Lagrangian gradient for the given multipliers (no column refinement).

        The column-wise refinement of the parent class assumes one
        constraint family; the coupled second family makes it a joint
        problem, so the multipliers are returned unchanged.

        Parameters
        ----------
        grad : ndarray of shape (n_samples, n_outputs)
            Datafit gradient.
        multipliers : ndarray of shape multiplier_shape, default=None
            Current multipliers.
        max_columns : int, default=2000
            Unused.

        Returns
        -------
        multipliers : ndarray of shape multiplier_shape
            Non-negative multipliers.
        G : ndarray of shape coef_shape
            :math:`\\mathcal{A}^\\top\\nabla F - \\mathcal{G}^\\top\\Lambda`.
        """
        lam = (
            np.zeros(self.multiplier_shape)
            if multipliers is None
            else np.maximum(np.asarray(multipliers, dtype=np.float64), 0).reshape(self.multiplier_shape)
        )
        return lam, np.asarray(self.joint_adjoint(grad, -lam), dtype=np.float64)

    def restore(self, W, Z=None):
        """Move a nearly feasible point into both families of cones.

        First every column is restored into its first-layer cone (parent
        class); then every sub-network and output whose second-layer
        constraint is violated moves along its interior sub-network
        :math:`Q_t` by the smallest :math:`\\tau \\ge 0` that satisfies it
        (its columns stay in their first-layer cones, as :math:`Q_t`'s
        columns lie in them), or is zeroed when no such shift is smaller than
        the sub-network itself.

        Parameters
        ----------
        W : ndarray of shape coef_shape
            Coefficients.
        Z : ndarray of shape (n_rows, n_blocks, n_outputs), default=None
            ``operator.product(W)`` if known.

        Returns
        -------
        W_feasible : ndarray of shape coef_shape
            A feasible point.
        n_changed : int
            Number of columns and sub-networks moved or zeroed.
        """
        W, changed = super().restore(W, Z)
        if changed or Z is None:
            Z = self.operator.product(W)
        H = self._hidden(Z)
        excess = -(self.outer_signs[:, :, None] * H)
        bad = excess.max(axis=0) > 0 if excess.size else np.zeros(H.shape[1:], bool)
        if not bad.any():
            return W, changed
        d, B, C = self.coef_shape
        T, J = self.n_subnetworks, self.n_inner
        W = np.array(W, copy=True)
        Wt = W.reshape(d, T, J, C)
        if self.outer_interior is None:
            Wt[:, bad.any(axis=1)] = 0
            return W, changed + int(bad.sum())
        Q, margins = self._strict_outer_interior()
        margins = margins[:, :, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(excess > 0, excess / np.where(margins > 0, margins, 0.0), 0.0)
        tau = ratio.max(axis=0) * (1 + 16 * np.finfo(W.dtype).eps)
        shift = tau * np.sqrt(np.einsum("dtj,dtj->t", Q, Q))[:, None]
        size = np.sqrt(np.einsum("dtjc,dtjc->tc", Wt, Wt))
        zero = bad & ~(np.isfinite(shift) & (shift <= size))
        step = np.where(bad & ~zero, tau, 0.0).astype(W.dtype)
        Wt += Q[:, :, :, None] * step[None, :, None, :]
        t_idx, c_idx = np.nonzero(zero)
        Wt[:, t_idx, :, c_idx] = 0
        return W, changed + int(bad.sum())

    def _strict_outer_interior(self):
        """Interior points of the sub-networks with positive second-layer margins, and the margins.

        The random sub-network :math:`Q_t` that produced :math:`D_{2t}` has
        :math:`h_t = 0` on rows where its units are all inactive, so it
        cannot push such rows into the cone. Adding :math:`\\epsilon_t`
        times the gates of every positive inner column raises :math:`h_t` on
        every row where some first-layer pattern is active (a row where none
        is active has :math:`h_t = 0` for every point), keeps the columns in
        their first-layer cones, and keeps the rows with :math:`h_t < 0`
        negative for :math:`\\epsilon_t` below half their smallest ratio.
        """
        if self._outer_margins is None:
            d, B, _ = self.coef_shape
            T, J = self.n_subnetworks, self.n_inner
            Q0 = self.outer_interior.reshape(d, T, J)
            X = self.operator.X
            h0 = self._hidden((X @ self.outer_interior)[:, :, None])[:, :, 0]
            if self.interior is None:
                Q, h = Q0, h0
            else:
                positive = (self.inner_masks > 0).any(axis=0)
                lift = self.interior.reshape(d, T, J) * positive[None, None, :]
                hg = self._hidden((X @ lift.reshape(d, B))[:, :, None])[:, :, 0]
                negative = self.outer_signs < 0
                with np.errstate(divide="ignore", invalid="ignore"):
                    room = np.where(negative & (hg > 0), -h0 / hg, np.inf).min(axis=0)
                scale = np.sqrt(np.einsum("dtj,dtj->t", Q0, Q0))
                scale_lift = np.sqrt(np.einsum("dtj,dtj->t", lift, lift))
                with np.errstate(divide="ignore", invalid="ignore"):
                    eps = np.where(
                        np.isfinite(room), 0.5 * room, np.where(scale > 0, scale / scale_lift, 1.0)
                    )
                eps = np.nan_to_num(eps, nan=0.0, posinf=0.0).astype(self.dtype)
                Q = Q0 + eps[None, :, None] * lift
                h = h0 + eps[None, :] * hg
            self._outer_margins = (Q, self.outer_signs * h)
        return self._outer_margins

    # ------------------------------------------------------------ cvxpy
    def cone_matrix(self):
        """The explicit constraint matrix of one output column, both families.

        Returns
        -------
        G : scipy.sparse.csr_array of shape (n_constraints / n_outputs, n_blocks * patch_size)
            Rows of the first family (as the parent class), then the
            second-layer rows, sub-network by sub-network.
        """
        first = super().cone_matrix()
        d, B, _ = self.coef_shape
        T, J = self.n_subnetworks, self.n_inner
        check_memory(
            20 * int(np.count_nonzero(self.outer_signs)) * J * d,
            what="The explicit second-layer cone constraints",
            lower="n_subnetworks or n_arrangements",
        )
        X = np.asarray(self.operator.X, dtype=np.float64)
        inner = sp.csr_array(
            (self.inner_masks.astype(np.float64)[:, :, None] * X[:, None, :]).reshape(X.shape[0], J * d)
        )
        blocks = []
        for t in range(T):
            rows = np.flatnonzero(self.outer_signs[:, t])
            blocks.append(sp.diags_array(self.outer_signs[rows, t].astype(np.float64)) @ inner[rows])
        second = sp.block_diag(blocks, format="csr")
        return sp.vstack([first, second], format="csr")

    def multipliers_from_cvxpy(self, constraints):
        """Read both families of multipliers from the dual values of :meth:`cvxpy_constraints`.

        Parameters
        ----------
        constraints : list of solved cvxpy constraints
            One per output.

        Returns
        -------
        multipliers : ndarray of shape multiplier_shape
            Non-negative.
        """
        n_rows, width, C = self.multiplier_shape
        B = width - self.n_subnetworks
        lam = np.zeros((n_rows, width, C), dtype=self.dtype)
        blocks, rows = np.nonzero(self.cone_signs.T)
        subnets, rows2 = np.nonzero(self.outer_signs.T)
        for c, con in enumerate(constraints):
            if con.dual_value is None:
                continue
            dual = np.maximum(np.asarray(con.dual_value).ravel(), 0)
            lam[rows, blocks, c] = dual[: len(rows)]
            lam[rows2, B + subnets, c] = dual[len(rows):]
        return lam

    # ------------------------------------------------------------ views
    def astype(self, dtype):
        """Return the same program in another compute dtype.

        Parameters
        ----------
        dtype : {np.float32, np.float64}
            Target dtype.

        Returns
        -------
        problem : SubnetworkConeProblem
            ``self`` if the dtype already matches.
        """
        new = super().astype(dtype)
        if new is not self:
            new.inner_masks = self.inner_masks.astype(dtype)
            new.outer_signs = self.outer_signs.astype(dtype)
            new.outer_interior = None if self.outer_interior is None else self.outer_interior.astype(dtype)
            new._outer_margins = None
        return new
