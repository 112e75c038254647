"""Adaptive arrangements for the two-layer estimators (gated and exact).

The estimators keep their own fit; after the fixed-pattern solve they hand
the program to :meth:`AdaptiveArrangementsMixin._grow`, which runs
:func:`skconvex.solvers.adaptive.grow_patterns` with the proposals of
:func:`~skconvex.propose_gates` and the dual norms of the
program, and stores ``n_patterns_``, ``max_violation_`` and
``violating_gate_``.
"""

from numbers import Integral

import numpy as np
import scipy.sparse as sp
from sklearn.utils._param_validation import Interval, StrOptions

from .._config import check_memory
from ..arrangements import propose_gates
from ..programs._chunks import seed_sequence
from ..programs.oracles import gated_dual_norms, project_cone, relu_dual_norm
from ..solvers.adaptive import grow_patterns

__all__ = ["AdaptiveArrangementsMixin"]

# Re-solves of one adaptive fit (each adds up to half the initial patterns);
# the budget max_arrangements usually stops it first.
_MAX_ROUNDS = 30

ADAPTIVE_DOC = """
    arrangement : {{"gaussian", "adaptive"}}, default="gaussian"
        How the activation patterns are chosen. ``"gaussian"``: the patterns
        of ``n_arrangements`` Gaussian gates, fixed. ``"adaptive"``: start
        from those, then grow the set where the dual says it pays: at the
        solution, candidate gates (the active neurons' weights and
        perturbations of them, hyperplanes through pairs of training points,
        Gaussian gates, each refined by ascent on the dual) are scored by
        their dual constraint,
        {dual}.
        The most violated new patterns are added and the program is
        re-solved warm, until no candidate violates it by more than
        ``alpha * (1 + tol)`` or ``max_arrangements`` is reached. The
        objective never ends above the fixed-pattern fit's.
    max_arrangements : int, default=None
        Budget of patterns for ``arrangement="adaptive"`` (at least
        ``n_arrangements``); None means ``4 * n_arrangements``. Ignored for
        ``"gaussian"``.
"""

ADAPTIVE_ATTRIBUTES = """
    n_patterns_ : int
        Number of activation patterns of the program (columns of ``gates_``).
    max_violation_ : float
        Largest dual norm of a pattern, relative to ``alpha``, at the
        solution{dual_note}: over the fitted patterns and, with
        ``arrangement="adaptive"``, the patterns dropped during the growth
        and the candidates of the last proposals. At most ``1 + tol``
        (up to the solver's accuracy on the fitted patterns) means the
        solution is optimal over its patterns and no proposed pattern
        improves it by more than the tolerance.
    violating_gate_ : ndarray of shape (n_features + fit_intercept,)
        The gate attaining ``max_violation_``.
"""


def _top_directions(W):
    """Seeds from a solution of shape (d, B, C): the top left singular vector of each non-zero block."""
    norms = np.linalg.norm(W, axis=(0, 2))
    active = np.flatnonzero(norms > 1e-12 * max(norms.max(initial=0.0), 1e-300))
    if not active.size:
        return np.zeros((W.shape[0], 0))
    B = W[:, active, :].transpose(1, 0, 2).astype(np.float64)
    if B.shape[2] == 1:
        return B[:, :, 0].T
    U, _, _ = np.linalg.svd(B, full_matrices=False)
    return U[:, :, 0].T


def _exact_cone_values(X, theta, U, values, threshold, n_exact=32):
    r"""Raise lower bounds to the exact cone-constrained dual norm where it decides.

    For one output the maximum of :math:`|\theta^\top D X u|` over the unit
    ball of the cone :math:`K_D` is the norm of the projection of
    :math:`\pm X^\top D\theta` onto it (non-negative least squares, see
    :func:`~skconvex.programs.oracles.project_cone`). It is computed for the
    ``n_exact`` candidates whose gated upper bound :math:`\|X^\top
    D\theta\|` is largest among those the lower bound leaves undecided
    (at most ``threshold`` while the bound exceeds it).
    """
    theta = theta[:, 0]
    masks = np.asarray(X @ U) >= 0
    C = np.asarray(X.T @ (masks * theta[:, None]))  # (d, k)
    upper = np.linalg.norm(C, axis=0)
    undecided = np.flatnonzero((values <= threshold) & (upper > threshold))
    if not undecided.size:
        return values
    values = values.copy()
    for j in undecided[np.argsort(-upper[undecided], kind="stable")][:n_exact]:
        G = np.where(masks[:, j], 1.0, -1.0)[:, None] * X
        values[j] = max(
            values[j],
            *(np.linalg.norm(project_cone(G, sign * C[:, j])) for sign in (1.0, -1.0)),
        )
    return values


class AdaptiveArrangementsMixin:
    """Parameters ``arrangement`` and ``max_arrangements`` and the growth of the patterns.

    Subclasses set ``_adaptive_kind`` (``"gated"`` or ``"relu"``) and call
    :meth:`_grow` after their first solve.
    """

    _adaptive_constraints = {
        "arrangement": [StrOptions({"gaussian", "adaptive"})],
        "max_arrangements": [None, Interval(Integral, 1, None, closed="left")],
    }

    _adaptive_kind = "gated"

    #: Relative gap of the intermediate solves of the growth (None: ``tol``).
    _round_tol = None

    def _adaptive_budget(self):
        budget = self.max_arrangements
        if budget is None:
            return 4 * self.n_arrangements
        if budget < self.n_arrangements:
            raise ValueError(
                f"max_arrangements={budget} must be at least n_arrangements="
                f"{self.n_arrangements} (the adaptive fit starts from the sampled patterns)."
            )
        return int(budget)

    def _check_adaptive_params(self):
        """Validate the cross-parameter constraint before any work."""
        if getattr(self, "arrangement", "gaussian") == "adaptive":
            self._adaptive_budget()

    # ------------------------------------------------------------ programs
    def _rebuild(self, problem):
        from ..programs.cones import ConeConstrainedProblem
        from ..programs.operators import PatternOperator

        X, dtype, C = problem.operator.X, problem.dtype, problem.n_outputs

        if self._adaptive_kind == "gated":

            def rebuild(gates, patterns):
                return problem._with_operator(PatternOperator(X, patterns, n_outputs=C, dtype=dtype))

        else:

            def rebuild(gates, patterns):
                P = gates.shape[1]
                signs = np.concatenate([np.ones(P), -np.ones(P)])
                operator = PatternOperator(
                    X, np.hstack([patterns, patterns]), signs=signs, n_outputs=C, dtype=dtype
                )
                return ConeConstrainedProblem(
                    operator,
                    problem.datafit,
                    problem.penalty,
                    problem.y,
                    problem.sample_weight,
                    problem.alpha,
                    interior=np.hstack([gates, gates]).astype(dtype),
                    fit_intercept=problem.fit_intercept,
                )

        return rebuild

    def _take(self, coef, keep, n_new):
        d, B, C = coef.shape
        zeros = np.zeros((d, n_new, C), dtype=coef.dtype)
        if self._adaptive_kind == "gated":
            return np.concatenate([coef[:, keep], zeros], axis=1)
        P = B // 2
        return np.concatenate([coef[:, keep], zeros, coef[:, P + keep], zeros], axis=1)

    def _pattern_norms(self, coef):
        norms = np.linalg.norm(coef, axis=(0, 2))
        if self._adaptive_kind == "gated":
            return norms
        P = coef.shape[1] // 2
        return norms[:P] + norms[P:]

    def _violation(self, problem):
        X = problem.operator.X
        if self._adaptive_kind == "gated":
            penalty = problem.penalty

            def violation(theta, U):
                return gated_dual_norms(X, theta, U, penalty)

        else:
            threshold = problem.alpha * (1 + self.tol)

            def violation(theta, U):
                # The value at the candidate itself, a direction inside its
                # pattern's cone: a lower bound on the cone-constrained dual
                # norm (candidates are refined by ascent, so it is often
                # nearly attained).
                norms = np.linalg.norm(U, axis=0)
                norms[norms == 0] = 1.0
                values = relu_dual_norm(X, theta, U / norms)
                if theta.shape[1] == 1 and not sp.issparse(X):
                    values = _exact_cone_values(X, theta, U, values, threshold)
                return values

        return violation

    # --------------------------------------------------------------- growth
    def _grow(self, problem, gates, result, solve):
        """Grow the patterns of a solved program; return the final (problem, gates, result).

        Also stores ``n_patterns_``, ``max_violation_`` and ``violating_gate_``.
        """
        arrangement = getattr(self, "arrangement", "gaussian")
        budget = self._adaptive_budget() if arrangement == "adaptive" else gates.shape[1]
        X = problem.operator.X
        n, d = X.shape
        if budget > gates.shape[1]:
            check_memory(
                np.dtype(problem.dtype).itemsize * n * budget * self._blocks_per_pattern
                * (self._arrays_per_block + problem.n_outputs),
                what=(
                    f"Growing {type(self).__name__}'s arrangement to max_arrangements={budget} "
                    f"patterns on {n} samples"
                ),
                lower="max_arrangements",
            )
        # A generator of its own: the initial gates drew from the same seed.
        ss = seed_sequence(self.random_state)
        rng = np.random.default_rng([*ss.generate_state(4), 19])
        support = problem.sample_weight > 0
        n_init = max(int(self.n_arrangements), 8)

        def propose(theta, coef, round_):
            return propose_gates(
                X,
                theta,
                seeds=_top_directions(coef)[:, : 2 * n_init],
                n_random=n_init,
                n_pairs=n_init,
                n_perturb=2,
                n_ascent=5,
                bias=self.fit_intercept,
                support=support,
                random_state=rng,
            )

        growth = grow_patterns(
            problem,
            gates,
            result,
            rebuild=self._rebuild(problem),
            solve=solve,
            take=self._take,
            pattern_norms=self._pattern_norms,
            propose=propose,
            violation=self._violation(problem),
            max_patterns=budget,
            tol=self.tol,
            max_rounds=_MAX_ROUNDS if arrangement == "adaptive" else 0,
            round_tol=self._round_tol,
            # Fixed arrangements report the violation over their own patterns
            # only: no proposal (it would cost memory of the order of n * 300).
            n_draws=3 if arrangement == "adaptive" else 0,
            support=support,
            verbose=self.verbose,
        )
        self.n_patterns_ = int(growth.gates.shape[1])
        self.max_violation_ = float(growth.max_violation)
        self.violating_gate_ = growth.violating_gate
        return growth.problem, growth.gates, growth.result
