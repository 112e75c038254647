"""Sampling, solving and reporting shared by the three-layer and path-regularized estimators."""

import numpy as np
from sklearn.utils._param_validation import StrOptions

from ..arrangements import (
    SubnetworkArrangements,
    compute_subnetwork_patterns,
    sample_subnetworks,
)
from ..programs._chunks import unique_columns
from ..programs.nested_cones import NestedConeProblem
from ..programs.penalties import ColumnGroupL2
from ..solvers import cvxpy_solve, fista, solve_certified
from ..solvers.nested import cvxpy_nested_solve, nested_augmented_lagrangian
from ..solvers.working_set import working_set_solve
from ._base import (
    BaseConvexNetwork,
    finish_stalled,
)

__all__ = []

# solver="auto" hands a nested program that the augmented Lagrangian leaves
# uncertified (a stall) to Clarabel when its rows times constraint columns
# times features are at most this: measured 1.1 s for 110,000 (scikit-learn's
# sample-weight check data, three classes), 5.4 s for 202,000 and 16 s for
# 405,000 (its regression data) on 2 cores (benchmarks/README.md, "Nested
# cones and patch features").
_INTERIOR_POINT_SIZE = 150_000


_SOLVER_OPTIONS = {
    "auglag": {"inner", "sigma", "rho", "growth", "max_outer"},
    "fista": set(),
}


def _arrangements_on(X, sample_weight, gates, leaf_weights, edge_weights):
    """Sub-network arrangements of given (previously sampled) weights on data ``X``."""
    depth = len(edge_weights) + 2
    node_patterns = compute_subnetwork_patterns(X, leaf_weights, edge_weights)
    P, N1, d = leaf_weights.shape
    cand_gates = np.concatenate([gates, leaf_weights.reshape(-1, d).T], axis=1)
    cand_patterns = np.concatenate(
        [X @ gates >= 0, node_patterns[0].reshape(X.shape[0], -1)], axis=1
    )
    rows = sample_weight > 0
    kept, position = unique_columns(np.packbits(cand_patterns[rows], axis=0))
    width = int(round(N1 ** (1.0 / (depth - 2))))
    return SubnetworkArrangements(
        gates=np.ascontiguousarray(cand_gates[:, kept]),
        first_patterns=np.ascontiguousarray(cand_patterns[:, kept]),
        leaf_weights=leaf_weights,
        edge_weights=tuple(edge_weights),
        leaf_index=position[gates.shape[1] :].reshape(P, N1),
        node_patterns=node_patterns,
        patterns=np.ascontiguousarray(node_patterns[-1][:, :, 0]),
        n_sampled=P,
        gate_index=np.arange(P),
        depth=depth,
        width=width,
    )


_SOLVER_DOC = """
    solver : {{"auto", "auglag", "fista", "cvxpy"}}, default="auto"
        ``"auglag"`` (exact program): augmented Lagrangian with semismooth
        Newton steps, solved exactly through a Woodbury factorization with
        one block per sub-network
        (:func:`~skconvex.solvers.nested.nested_augmented_lagrangian`).
        ``"fista"`` (gated program): accelerated proximal gradient{working_set}.
        ``"cvxpy"``: the conic program through CVXPY, Clarabel unless
        ``solver_options["solver"]`` names another installed solver (the
        accuracy reference: practical for a few thousand variables only;
        Clarabel may fail on the exponential cones of the logistic loss).
        ``"auto"`` is ``"fista"`` for ``gated=True`` and ``"auglag"``
        otherwise; an exact fit that ``"auglag"`` leaves uncertified short
        of ``max_iter`` (a stall) is then solved again by Clarabel when the
        program is small (at most 150,000 rows times constraint columns
        times features), the better certificate is kept and ``solver_``
        reads ``"auglag+cvxpy"``.
    solver_options : dict, default=None
        Extra options: ``"auglag"``: ``inner`` ("newton-cg", "fista"),
        ``sigma``, ``rho``, ``growth``, ``max_outer``; ``"cvxpy"``:
        ``solver`` and that solver's keyword arguments.
    tol : float, default=1e-4
        Stop when the certified duality gap is at most ``tol`` times the
        objective (and, for the exact program, the relative cone violation of
        the iterate is at most ``tol``; the returned point is always moved
        exactly into the cones, so ``dual_gap_`` bounds its suboptimality).
    max_iter : int, default=1000
        Maximum number of iterations: Newton steps for ``"auglag"``,
        proximal-gradient steps for ``"fista"`` (unused by ``"cvxpy"``).
    warm_start : bool, default=False
        Reuse the sampled sub-networks and start from the previous solution
        when refitting (e.g. with another ``alpha``).
    dtype : {{None, "float32", "float64"}}, default=None
        Dtype of the data and gates. None uses float32 when ``X`` is float32
        and float64 otherwise. Certificates are computed in float64.
    n_jobs : int, default=None
        Parallel jobs for sampling the sub-networks (joblib; any backend).
    random_state : int, RandomState instance or None, default=None
        Seed of the sampled sub-networks.
    verbose : int, default=0
        Solver progress: 1 prints every outer iteration, 2 every inner one.
"""


class _DeepReLUBase(BaseConvexNetwork):
    """Sampling, solving and reporting shared by the three-layer and path estimators."""

    _parameter_constraints = {
        **{
            k: v
            for k, v in BaseConvexNetwork._parameter_constraints.items()
            if k not in ("penalty", "n_arrangements")
        },
        "gated": ["boolean"],
        "solver": [StrOptions({"auto", "auglag", "fista", "cvxpy"})],
        "solver_options": [None, dict],
    }

    def _solver_plan(self):
        solver = self.solver
        if solver == "auto":
            solver = "fista" if self.gated else "auglag"
        if solver == "fista" and not self.gated:
            raise ValueError(
                "solver='fista' solves the gated program only (gated=True); the exact "
                "program needs solver='auglag' or 'cvxpy'."
            )
        if solver == "auglag" and self.gated:
            raise ValueError(
                "solver='auglag' solves the exact program only (gated=False); the gated "
                "program needs solver='fista' or 'cvxpy'."
            )
        options = dict(self.solver_options or {})
        if solver in _SOLVER_OPTIONS:
            unknown = set(options) - _SOLVER_OPTIONS[solver]
            if unknown:
                raise ValueError(
                    f"solver_options has keys {sorted(unknown)} that solver={solver!r} does "
                    f"not accept; accepted: {sorted(_SOLVER_OPTIONS[solver])}."
                )
        elif "solver" in options:
            import cvxpy as cp

            if options["solver"] not in cp.installed_solvers():
                raise ValueError(
                    f"solver_options['solver']={options['solver']!r} is not an installed "
                    f"CVXPY solver; installed: {cp.installed_solvers()}."
                )
        return solver, options

    def _subnetworks(self, X_aug, sw, n_first, n_sub, depth, width):
        """Sub-networks of the fit: reused on a warm start, sampled otherwise."""
        state = getattr(self, "_sampled", None)
        if (
            self.warm_start
            and state is not None
            and state["gates"].shape[0] == X_aug.shape[1]
            and state["leaf_weights"].shape[1] == width ** (depth - 2)
        ):
            return _arrangements_on(
                X_aug,
                sw,
                state["gates"].astype(X_aug.dtype),
                state["leaf_weights"].astype(X_aug.dtype),
                tuple(w.astype(X_aug.dtype) for w in state["edge_weights"]),
            )
        arr = sample_subnetworks(
            X_aug,
            n_sub,
            n_first=n_first,
            depth=depth,
            width=width,
            sample_weight=sw,
            n_jobs=self.n_jobs,
            random_state=self.random_state,
        )
        return arr

    def _solve(self, problem, solver, options):
        coef_init, intercept_init = None, None
        previous = getattr(self, "_convex_solution", None)
        if (
            self.warm_start
            and previous is not None
            and previous[0].shape == problem.coef_shape
        ):
            coef_init, intercept_init = previous
        if solver == "cvxpy":
            options = dict(options)
            name = options.pop("solver", "CLARABEL")
            if isinstance(problem, NestedConeProblem):
                result = cvxpy_nested_solve(
                    problem, solver=name, solver_options=options, verbose=self.verbose
                )
            else:
                result = cvxpy_solve(
                    problem, solver=name, solver_options=options, verbose=self.verbose
                )
            result.converged = result.converged or result.relative_gap <= self.tol
        elif solver == "auglag":
            result = nested_augmented_lagrangian(
                problem,
                coef_init=coef_init,
                intercept_init=intercept_init,
                tol=self.tol,
                max_iter=self.max_iter,
                verbose=self.verbose,
                **options,
            )
            if self.solver == "auto":
                result, solver = self._finish_uncertified(problem, result)
        else:
            # Sub-network groups of the path program span several columns,
            # which working sets would split; the three-layer columns are
            # independent groups.
            inner = (
                working_set_solve
                if isinstance(problem.penalty, ColumnGroupL2)
                else fista
            )
            result = solve_certified(
                problem,
                inner,
                tol=self.tol,
                max_iter=self.max_iter,
                coef_init=coef_init,
                intercept_init=intercept_init,
                verbose=self.verbose,
            )
        self._convex_solution = (
            np.asarray(result.coef).copy(),
            np.asarray(result.intercept, dtype=np.float64).copy(),
        )
        self.solver_ = solver
        return result

    def _finish_uncertified(self, problem, result):
        """Let Clarabel finish a small nested program the augmented Lagrangian left uncertified.

        Its Newton steps can stall short of ``tol`` with the penalties
        growing and the dual bound stuck (scikit-learn's sample-weight check
        data: a relative gap of 0.64 where Clarabel certifies 6e-6 in about a
        second). Programs of at most ``_INTERIOR_POINT_SIZE`` rows times
        constraint columns times features are solved again and the better
        certificate is kept; ``solver_`` then reads ``"auglag+cvxpy"``.
        """
        n, d = problem.operator.n_samples, problem.coef_shape[0]
        columns = sum(shape[1] * shape[2] for shape in problem.multiplier_shapes())
        if n * columns * d > _INTERIOR_POINT_SIZE:
            return result, "auglag"
        result, finished = finish_stalled(
            result, self.max_iter, self.tol, lambda: cvxpy_nested_solve(problem, verbose=self.verbose)
        )
        return result, "auglag+cvxpy" if finished else "auglag"

    def _finish(self, problem, result, W, objective_net):
        """Certificate attributes: the convex objective at the stored point and the network's."""
        problem64 = problem.astype(np.float64)
        objective, b = problem64.objective(W, result.intercept)
        result.objective = objective
        self._report(result)
        self.nonconvex_objective_ = float(objective_net(b))
        if isinstance(problem64, NestedConeProblem):
            self.constraint_violation_ = float(
                problem64.violation(problem64.operator.product(W))
            )
        else:
            self.constraint_violation_ = 0.0
        return b

    def _set_intercept(self, b):
        b = np.asarray(b, dtype=np.float64)
        self.intercept_ = float(b[0]) if getattr(self, "_y_1d", False) else b

    def __getstate__(self):
        state = super().__getstate__()
        # The previous convex solution only serves warm starts; it can be large.
        if not self.warm_start:
            state.pop("_convex_solution", None)
        return state


# ---------------------------------------------------------------------------
# Three-layer estimators
# ---------------------------------------------------------------------------
