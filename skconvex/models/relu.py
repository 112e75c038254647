"""Exact two-layer ReLU networks solved as cone-constrained group lasso programs."""

import numpy as np
import scipy.sparse as sp
from sklearn.base import ClassifierMixin, RegressorMixin, _fit_context
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import check_is_fitted

from ..networks import factorize_columns, relu_forward, weight_decay
from ..programs.cones import ConeConstrainedProblem
from ..programs.operators import PatternOperator
from ..programs.penalties import ColumnGroupL2
from ..solvers import cvxpy_cone_solve
from ..solvers.auglag import augmented_lagrangian
from ..solvers.working_set import cone_working_set_solve
from ._base import (
    BaseConvexNetwork,
    ClassificationTargets,
    RegressionTargets,
    _as_dtype,
    augment,
    finish_stalled,
)
from ._adaptive import ADAPTIVE_ATTRIBUTES, ADAPTIVE_DOC, AdaptiveArrangementsMixin
from ._relu_network import TwoLayerNetworkMixin

__all__ = ["ConvexReLURegressor", "ConvexReLUClassifier"]

# solver="auto" hands a squared-loss program that the augmented Lagrangian
# leaves uncertified (a stall, not an exhausted max_iter) to Clarabel when
# its cone rows times features are at most this: measured 1.0-1.9 s on 2
# cores for 220,000-252,000 (benchmarks/README.md, "Uncertified default
# fits"). Exponential cones (logistic losses) come back from Clarabel with
# relative gaps of 1e-2, so classifiers are not handed over.
_INTERIOR_POINT_SIZE = 250_000

# Options each solver accepts through ``solver_options`` (cvxpy forwards
# everything but "solver" to the chosen conic solver).
_SOLVER_OPTIONS = {
    "auglag": {"inner", "sigma", "rho", "growth", "max_outer"},
}

_COMMON_DOC = """
    Parameters
    ----------
    alpha : float, default=1e-3
        Weight-decay strength. The objective is the **mean** loss (weighted by
        ``sample_weight``) plus ``alpha`` times the group penalty (equal to
        the weight decay of the network), so the same ``alpha`` means the
        same thing for any number of samples.{alpha_scale} Larger values give
        fewer neurons. ``alpha=0`` needs ``solver="cvxpy"``: the default augmented
        Lagrangian solver certifies only ``alpha > 0`` and raises a
        ValueError for ``alpha=0``.
    n_arrangements : int, default=100
        Number of gates sampled; each distinct activation pattern gives two
        convex columns per output (a positive and a negative neuron).
{adaptive}    fit_intercept : bool, default=True
        Give every neuron a bias (a ones column appended to ``X``; the bias is
        penalized with the neuron's weights) and the output an unpenalized
        intercept.
"""

_COMMON_DOC_REST = """
    solver : {{"auto", "auglag", "cvxpy"}}, default="auto"
        ``"auglag"``: augmented Lagrangian with semismooth Newton steps,
        solved exactly through a Woodbury factorization with ``n_samples *
        n_outputs`` rows, or by matrix-free conjugate gradient when that
        system would exceed 200 MiB (sparse ``X``: exact systems on a dense
        copy of ``X`` when they and the copy fit in 200 MiB and the memory
        budget, matrix-free on the sparse ``X`` otherwise)
        (:func:`~skconvex.solvers.auglag.augmented_lagrangian`).
        ``"cvxpy"``: the conic program through CVXPY, Clarabel unless
        ``solver_options["solver"]`` names another installed solver
        (interior point: accurate, slow beyond a few thousand variables).
        ``"auto"`` is ``"auglag"`` (any loss, dense or sparse ``X``):
        the faster of the two on every benchmark of
        ``benchmarks/bench_relu.py``, and the only one that scales past a
        few thousand variables. (An ADMM solver, 15 to 100 times slower
        than ``"auglag"`` on the same squared-loss programs, was removed;
        see ``benchmarks/README.md``.) When it stalls uncertified
        (not at ``max_iter``) on a dense squared-loss program of at most
        250,000 cone rows times features (e.g. 100 samples, 10 features
        and 100 arrangements), ``"cvxpy"`` solves it again and the better
        certified result is kept.
    solver_options : dict, default=None
        Extra options of the solver. ``"auglag"``: ``inner`` ("newton",
        "newton-cg", "fista"), ``sigma``, ``rho``, ``growth``, ``max_outer``;
        ``"cvxpy"``: ``solver`` (a name from :func:`cvxpy.installed_solvers`)
        and that solver's own keyword arguments (e.g. ``tol_gap_rel`` for
        Clarabel).
    tol : float, default=1e-4
        Stop when the certified duality gap is at most ``tol`` times the
        objective and the relative cone violation of the iterate is at most
        ``tol`` (``"auglag"``; ``"cvxpy"`` uses the conic
        solver's own tolerances). The returned point is always moved exactly
        into the cones, so ``dual_gap_`` bounds its suboptimality.
    max_iter : int, default=1000
        Maximum number of iterations: Newton steps (or FISTA steps with
        ``solver_options={{"inner": "fista"}}``) for ``"auglag"`` (unused by
        ``"cvxpy"``, see ``solver_options``).
    warm_start : bool, default=False
        Reuse the gates and start from the previous solution when refitting
        (e.g. with another ``alpha``). A warm start from no or an all-zero
        previous solution first checks whether the empty network is already
        certified optimal (one non-negative least-squares pass over the
        columns), which makes the fits of a path at and above alpha_max
        cheap. With ``"auglag"``, a warm start from a non-empty solution
        solves on its support plus the columns that fail their optimality
        test (working sets, certified on all columns), which makes a path
        step cheaper than a cold fit. Clones made by ``GridSearchCV`` do not
        share it.
    dtype : {{None, "float32", "float64"}}, default=None
        Dtype of the data and gates. None uses float32 when ``X`` is float32
        and float64 otherwise. The second-order solvers and the certificate
        always compute in float64.
    n_jobs : int, default=None
        Parallel jobs for sampling the arrangements (joblib; any backend).
    random_state : int, RandomState instance or None, default=None
        Seed of the gates.
    verbose : int, default=0
        Solver progress: 1 prints every outer iteration, 2 every inner one.
"""

_COMMON_ATTRIBUTES = """
    gates_ : ndarray of shape (n_features + fit_intercept, n_patterns)
        Gate of each pattern (the last row multiplies the ones column).
    pattern_weights_ : ndarray of shape (2 * n_patterns, n_features + fit_intercept, n_outputs)
        The convex solution: rows ``[:n_patterns]`` hold :math:`v_p` (positive
        neurons), rows ``[n_patterns:]`` hold :math:`w_p` (negative neurons),
        one column per output.
    coef_ : ndarray of shape (2 * n_patterns * n_outputs, n_features)
        Input weights of the convex columns without the bias column; row
        ``k * n_outputs + c`` is block ``k`` (as in ``pattern_weights_``),
        output ``c``. Columns are input features, so
        :class:`~sklearn.feature_selection.SelectFromModel` ranks features by
        the norm of their column.
    hidden_weights_ : ndarray of shape (n_neurons, n_features)
        Input weights :math:`u_j = v/\\sqrt{{\\|v\\|}}` of the recovered neurons.
    hidden_intercepts_ : ndarray of shape (n_neurons,)
        Biases of the recovered neurons (zeros when ``fit_intercept=False``).
    output_weights_ : ndarray of shape (n_neurons, n_outputs)
        Output weights :math:`\\pm\\sqrt{{\\|v\\|}}`, one non-zero entry per
        neuron.
    neuron_patterns_ : ndarray of shape (n_neurons,)
        Pattern (column of ``gates_``) each neuron comes from.
    n_neurons_ : int
        Number of neurons of the recovered network (non-zero convex columns).
    objective_ : float
        Objective of the convex program at the solution (which satisfies the
        cone constraints).
    nonconvex_objective_ : float
        Weight-decay objective of the recovered network on the training data;
        equal to ``objective_`` (Pilanci & Ergen, 2020, Theorem 1).
    dual_gap_ : float
        Certified duality gap: an upper bound on ``objective_`` minus the
        optimum of the program with these gates, computed in float64.
    constraint_violation_ : float
        Largest violation of the cone constraints at the solution, relative to
        the largest pre-activation (0 up to rounding).
    solver_ : str
        The solver that ran (``"auto"`` resolved): ``"auglag+cvxpy"`` when
        ``"auto"`` handed a stalled fit to Clarabel (see ``solver``).
    n_iter_ : int
        Solver iterations (of the last solve with ``arrangement="adaptive"``).
{adaptive}    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column names.
"""

_ADAPTIVE_DOC = (
    ADAPTIVE_DOC.format(
        dual=":math:`\\|\\nabla F^\\top (\\tilde X u)_+\\|` at the candidate direction\n"
        "        :math:`u` (a lower bound on the cone-constrained dual norm of its\n"
        "        pattern)"
    )
    .lstrip("\n")
)
_ADAPTIVE_ATTRIBUTES = (
    ADAPTIVE_ATTRIBUTES.format(
        dual_note=(
            "\n        (the value at the gate itself, a lower bound on the\n"
            "        cone-constrained dual norm)"
        )
    )
    .lstrip("\n")
)

_NOTES = """
    With :math:`\\tilde x = (x, 1)` and the activation patterns
    :math:`D_p = \\mathrm{{diag}}(1[\\tilde X g_p \\ge 0])` of the sampled gates,
    the exact program of Pilanci & Ergen (2020) is

    .. math:: \\min_{{v, w, b}}\\; \\sum_j s_j\\,
              \\ell\\Big(\\sum_p D_p \\tilde X (v_p - w_p) + b,\\ y\\Big)_j
              + \\alpha \\sum_p \\|v_p\\|_2 + \\|w_p\\|_2
              \\quad\\text{{s.t.}}\\quad (2D_p - I)\\tilde X v_p \\ge 0,\\
              (2D_p - I)\\tilde X w_p \\ge 0,

    with weights :math:`s` summing to one (one pair :math:`v_p, w_p` per
    pattern and output column for several outputs). Every non-zero
    :math:`v_p` becomes the neuron :math:`u = v_p/\\sqrt{{\\|v_p\\|}}`,
    :math:`a = \\sqrt{{\\|v_p\\|}}` (and :math:`a = -\\sqrt{{\\|w_p\\|}}` for
    :math:`w_p`), a ReLU network :math:`f(x) = \\sum_j (\\tilde x^\\top u_j)_+
    a_j^\\top + b` whose weight-decay objective
    :math:`\\sum_j s_j \\ell(f(x_j), y_j) + \\tfrac{{\\alpha}}{{2}}\\sum_j
    \\|u_j\\|^2 + \\|a_j\\|^2` equals the convex optimum. With all patterns of
    the data this optimum is the global minimum over networks of any width;
    with sampled patterns it is the minimum over networks whose neurons'
    activation patterns on the training data are among the sampled ones.
    ``predict`` evaluates the recovered ReLU network (valid out of sample).
    {vector_outputs}
    References
    ----------
    M. Pilanci and T. Ergen. Neural networks are convex regularizers: exact
    polynomial-time convex optimization formulations for two-layer networks.
    ICML 2020, arXiv:2002.10553.

    A. Mishkin, A. Sahiner and M. Pilanci. Fast convex optimization for
    two-layer ReLU networks: equivalent model classes and cone
    decompositions. ICML 2022, arXiv:2202.01331.
"""

_VECTOR_OUTPUTS = """
    **Several outputs** ({what}): the program has one pair of columns
    :math:`v_{{pc}}, w_{{pc}}` per pattern and output, each with its own cone
    constraints and :math:`\\ell_2` norm, so every recovered neuron feeds a
    single output. It is exactly equivalent to training the vector-output
    network :math:`f(x) = \\sum_j (\\tilde x^\\top u_j)_+ a_j^\\top + b`,
    :math:`a_j \\in \\mathbb{{R}}^C`, with the weight decay
    :math:`\\tfrac{{\\alpha}}{{2}}\\sum_j \\|u_j\\|_2^2 + \\|a_j\\|_1^2` (squared
    :math:`\\ell_1` norm of each neuron's output weights): rescaling shows
    that penalty equals :math:`\\alpha\\sum_j\\|u_j\\|_2\\|a_j\\|_1 =
    \\alpha\\sum_{{j,c}} \\|u_j |a_{{jc}}|\\|_2`, so splitting a neuron into one
    neuron per output changes neither the predictions nor the penalty, and
    the optimal networks of that problem are the recovered ones, whose
    output weights have one non-zero entry each (so their standard weight
    decay :math:`\\tfrac{{\\alpha}}{{2}}\\sum_j \\|u_j\\|^2 + \\|a_j\\|_2^2` is the
    same number, ``nonconvex_objective_``). This is the decoupled program of
    Pilanci & Ergen's vector-output extension; shared neurons under plain
    weight decay would need a copositive program.
"""


def _sparse_solver_options(solver, options):
    """Options of ``solver`` for sparse ``X``, or a ValueError when it needs dense ``X``.

    The augmented Lagrangian's default inner solver decides by size: its
    exact Newton systems run on a dense copy of a small sparse ``X`` and
    matrix-free (sparse products only) otherwise, so an explicit
    ``inner="newton"``, which promises the exact systems whatever the size,
    is refused.
    """
    if solver == "auglag" and options.get("inner") == "newton":
        raise ValueError(
            "solver='auglag' with solver_options['inner']='newton' needs dense X (its "
            "exact Newton systems hold dense row products of X); got a sparse matrix. "
            "Leave 'inner' unset (exact Newton systems on a dense copy of X when they fit "
            "in 200 MiB and the memory budget, matrix-free otherwise), use "
            "inner='newton-cg' or 'fista', or densify X."
        )
    return options


class _ReLUBase(AdaptiveArrangementsMixin, TwoLayerNetworkMixin, BaseConvexNetwork):
    """Fit, recovery and prediction of exact two-layer ReLU networks."""

    # Sparse X is solved by the augmented Lagrangian (exact Newton systems on
    # a dense copy when they are small, matrix-free sparse products
    # otherwise) or by CVXPY.
    _accept_sparse = ["csr", "csc"]

    # Blocks [V, W]; cone signs, multipliers and constraint values per block.
    _blocks_per_pattern = 2
    _arrays_per_block = 5
    _adaptive_kind = "relu"

    _parameter_constraints = {
        **{k: v for k, v in BaseConvexNetwork._parameter_constraints.items() if k != "penalty"},
        "solver": [StrOptions({"auto", "auglag", "cvxpy"})],
        "solver_options": [None, dict],
    }

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the network by solving its exact convex program.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data. Scipy sparse matrices and arrays (CSR or CSC;
            other formats are converted to CSR) are accepted; the default
            solver copies them densely only when its exact Newton systems
            fit in 200 MiB and the memory budget, and never densifies
            larger ones.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Row weights; the loss is their weighted mean.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        self._check_adaptive_params()
        problem, gates, signs, n_features = self._build_problem(X, y, sample_weight)
        result, solver = self._solve_problem(problem)

        def solve(program, coef, intercept, tol, max_iter=None):
            return self._solve_problem(program, start=(coef, intercept), tol=tol, max_iter=max_iter)[0]

        problem, gates, result = self._grow(problem, gates, result, solve)
        P = gates.shape[1]
        signs = np.concatenate([np.ones(P), -np.ones(P)])
        self.solver_ = solver
        self._store_solution(problem, result, gates, signs, n_features)
        return self

    def _solve_problem(self, problem, start=None, tol=None, max_iter=None):
        """Run the chosen solver on ``problem``; return the result and the solver's name.

        Shared with the estimators that solve this program on other data
        (batch-norm networks on whitened, lifted data). ``start``, a pair
        ``(coef, intercept)``, replaces the warm-start point (adaptive
        arrangements re-solve from the previous, padded solution), and
        ``tol`` and ``max_iter`` replace ``self.tol`` and ``self.max_iter``
        (their rounds ask for their own).
        """
        tol = self.tol if tol is None else tol
        max_iter = self.max_iter if max_iter is None else min(max_iter, self.max_iter)
        solver, options = self._solver_plan(problem.datafit)
        if getattr(problem.operator, "sparse", False):
            options = _sparse_solver_options(solver, options)
        if start is None:
            coef_init, intercept_init = self._warm_start_point(problem.operator.coef_shape)
        else:
            coef_init, intercept_init = start
        if solver == "cvxpy":
            options = dict(options)
            result = cvxpy_cone_solve(
                problem,
                solver=options.pop("solver", "CLARABEL"),
                solver_options=options,
                verbose=self.verbose,
            )
            # An interior-point solver may report "inaccurate" for a point
            # whose certificate is nevertheless within tol.
            result.converged = result.converged or result.relative_gap <= tol
        else:
            run = augmented_lagrangian
            if coef_init is not None and coef_init.any():
                # A warm start (the previous fit of a path) predicts the
                # support: solving on it and the columns that fail their
                # optimality test is cheaper than the full program.
                run = cone_working_set_solve
            state = self._solver_state_for(
                solver, problem, coef_init, options, working_set=run is cone_working_set_solve
            )
            result = None
            if start is not None:
                state = {}
            if self.warm_start and start is None and (coef_init is None or not np.any(coef_init)):
                # A warm start from the empty network (the first fits of a
                # path, at and above alpha_max) first certifies it: a budget
                # of 0 is the certificate of the start alone, with the best
                # cone multipliers of every column.
                result = cone_working_set_solve(problem, tol=tol, max_iter=0)
                if not result.converged:
                    result = None
            if result is None:
                result = run(
                    problem,
                    coef_init=coef_init,
                    intercept_init=intercept_init,
                    tol=tol,
                    max_iter=max_iter,
                    verbose=self.verbose,
                    **{**state, **options},
                )
            if self.solver == "auto" and solver == "auglag":
                result, solver = self._finish_uncertified(problem, result, max_iter)
            if self.warm_start:
                # Multipliers and penalties make a warm start converge in a few
                # steps; kept sparse (only tight constraints carry multipliers).
                self._solver_state = {
                    "solver": solver,
                    "multipliers": sp.csr_array(
                        np.asarray(result.info["multipliers"]).reshape(problem.operator.n_samples, -1)
                    ),
                    "sigma": result.info.get("sigma"),
                    "rho": result.info.get("rho"),
                    "alpha": self.alpha,
                }
        return result, solver

    def _finish_uncertified(self, problem, result, max_iter=None):
        """Let the interior-point solver finish a small program the augmented Lagrangian left uncertified.

        The augmented Lagrangian can stall short of ``tol`` when many cone
        rows sit on the kink of its penalty (issue 18; measured in
        ``benchmarks/README.md``): its Newton steps then shrink to 1e-6 and
        the penalties grow without progress, and its second run (see
        :func:`~skconvex.solvers.auglag.augmented_lagrangian`) does not
        always recover. A stall (not
        an exhausted ``max_iter``) of a squared-loss program of at most
        ``_INTERIOR_POINT_SIZE`` cone rows times features is solved again by
        Clarabel, and the better certified result is kept. ``max_iter`` is
        the budget the solve had (``self.max_iter`` when None).
        """
        op = problem.operator
        n, d = op.n_samples, op.coef_shape[0]
        size = n * op.n_patterns * op.coef_shape[2] * d
        if (
            not getattr(problem.datafit, "quadratic", False)
            or getattr(op, "sparse", False)
            or size > _INTERIOR_POINT_SIZE
        ):
            return result, "auglag"
        result, finished = finish_stalled(
            result,
            self.max_iter if max_iter is None else max_iter,
            self.tol,
            lambda: cvxpy_cone_solve(problem, verbose=self.verbose),
        )
        return result, "auglag+cvxpy" if finished else "auglag"

    def _build_problem(self, X, y, sample_weight):
        """Validate the data and assemble the cone-constrained program."""
        X, y, sw = self._validate_fit_data(
            X, y, sample_weight, multi_output=self._multi_output, y_numeric=self._y_numeric
        )
        Y, datafit = self._encode_targets(y)
        dtype = _as_dtype(self.dtype, X)
        X_aug = augment(X.astype(dtype, copy=False), self.fit_intercept)
        gates, patterns = self._arrangements(X_aug, sw, Y.shape[1])
        P = gates.shape[1]
        signs = np.concatenate([np.ones(P), -np.ones(P)])
        operator = PatternOperator(
            X_aug, np.hstack([patterns, patterns]), signs=signs, n_outputs=Y.shape[1], dtype=dtype
        )
        problem = ConeConstrainedProblem(
            operator,
            datafit,
            ColumnGroupL2(),
            Y,
            sw,
            self.alpha * self._alpha_scale(Y, sw),
            interior=np.hstack([gates, gates]),
            fit_intercept=self.fit_intercept,
        )
        return problem, gates, signs, X.shape[1]

    def _alpha_max(self, X, y, sample_weight=None):
        """Smallest ``alpha`` (in this estimator's units) whose solution is the empty network.

        Zero is optimal iff every column's gradient can be offset by cone
        multipliers to a norm at most ``alpha``; the best multipliers of each
        column solve a non-negative least-squares problem, so the threshold is
        exact (up to that solver's tolerance), not the cone-free upper bound.
        """
        problem, _, _, _ = self._build_problem(X, y, sample_weight)
        _, _, grad = problem.smooth(problem.operator.forward(problem.zeros()))
        d, B, C = problem.coef_shape
        problem.alpha = 0.0  # refine every column, not only those above alpha
        _, G = problem.refine_multipliers(grad, max_columns=B * C, bound_only=True)
        return problem.penalty.dual_norm(G) / self._alpha_scale(problem.y, problem.sample_weight)

    def _solver_state_for(self, solver, problem, coef_init, options, working_set=False):
        """Warm-start multipliers and penalties of the previous fit, when they apply."""
        state = getattr(self, "_solver_state", None)
        if coef_init is None or state is None or state["solver"] != solver:
            return {}
        n, (_, B, C) = problem.operator.n_samples, problem.coef_shape
        if state["multipliers"].shape != (n, B * C):
            return {}
        multipliers = state["multipliers"].toarray().reshape(n, B, C)
        if state.get("alpha") != self.alpha:
            # Multipliers and penalties tuned for another alpha mislead the
            # augmented Lagrangian (measured along a path: it stalls far from
            # the optimum). The working set of a warm start only tests columns
            # with the multipliers: a column they keep within alpha needs no
            # new least-squares solve, the others are solved for first.
            return {"multipliers_init": multipliers} if working_set else {}
        out = {"multipliers_init": multipliers}
        out.update({k: state[k] for k in ("sigma", "rho") if state.get(k) is not None and k not in options})
        return out

    def _solver_plan(self, datafit):
        """The solver to run and its options (parameters are left untouched)."""
        solver = "auglag" if self.solver == "auto" else self.solver
        options = dict(self.solver_options or {})
        if solver in _SOLVER_OPTIONS:
            unknown = set(options) - _SOLVER_OPTIONS[solver]
            if unknown:
                raise ValueError(
                    f"solver_options has keys {sorted(unknown)} that solver={solver!r} "
                    f"does not accept; accepted: {sorted(_SOLVER_OPTIONS[solver])}."
                )
        elif "solver" in options:
            import cvxpy as cp

            if options["solver"] not in cp.installed_solvers():
                raise ValueError(
                    f"solver_options['solver']={options['solver']!r} is not an installed "
                    f"CVXPY solver; installed: {cp.installed_solvers()}."
                )
        return solver, options

    def _store_convex_solution(self, problem, result, gates, signs):
        """Store the convex solution and its certificate; return its neurons.

        Returns the float64 problem, the hidden and output weights of the
        recovered neurons (one per non-zero column) and the intercept. Shared
        with the estimators that solve this program on other data.
        """
        problem = problem.astype(np.float64)
        W = np.array(result.coef, dtype=np.float64)
        hidden, output, blocks, keep = factorize_columns(W, signs)
        # Columns dropped as numerically zero are zeroed in the stored
        # solution too, so that objective_ and the network agree exactly.
        W[:, ~keep] = 0.0
        objective, b = problem.objective(W, result.intercept)
        result.objective = objective
        self._report(result)
        self.constraint_violation_ = float(problem.violation(problem.operator.product(W)))

        self.gates_ = gates
        self.pattern_weights_ = np.ascontiguousarray(W.transpose(1, 0, 2))
        self.intercept_ = float(b[0]) if getattr(self, "_y_1d", False) else np.asarray(b)
        self.neuron_patterns_ = blocks % gates.shape[1]
        self.n_neurons_ = int(len(blocks))
        return problem, hidden, output, b

    def _store_solution(self, problem, result, gates, signs, n_features):
        problem, hidden, output, b = self._store_convex_solution(problem, result, gates, signs)
        self.coef_ = np.ascontiguousarray(
            self.pattern_weights_[:, :n_features, :].transpose(0, 2, 1)
        ).reshape(-1, n_features)
        self._set_neurons(hidden, output, n_features)

        # The theorem, evaluated: the recovered ReLU network's weight-decay
        # objective on the training data.
        X_aug = problem.operator.X
        X_aug = X_aug.astype(np.float64) if sp.issparse(X_aug) else np.asarray(X_aug, np.float64)
        out = relu_forward(X_aug, hidden, output, b)
        self.nonconvex_objective_ = float(
            problem.datafit.value(out, problem.y, problem.sample_weight)
            + problem.alpha * weight_decay(hidden, output)
        )

    # ------------------------------------------------------------ predict
    def _mlp_layers(self, mlp):
        """Give ``mlp`` the recovered weights and the attributes its predict needs."""
        mlp.coefs_ = [
            np.ascontiguousarray(self.hidden_weights_.T, dtype=np.float64),
            np.ascontiguousarray(self.output_weights_, dtype=np.float64),
        ]
        mlp.intercepts_ = [
            np.asarray(self.hidden_intercepts_, dtype=np.float64).copy(),
            np.atleast_1d(np.asarray(self.intercept_, dtype=np.float64)).copy(),
        ]
        mlp.n_layers_ = 3
        mlp.n_outputs_ = self.output_weights_.shape[1]
        mlp.n_features_in_ = self.n_features_in_
        if hasattr(self, "feature_names_in_"):
            mlp.feature_names_in_ = self.feature_names_in_
        mlp.n_iter_ = 0
        mlp.t_ = 0
        return mlp


class ConvexReLURegressor(RegressionTargets, RegressorMixin, _ReLUBase):
    __doc__ = (
        """Two-layer ReLU regressor trained to global optimality.

    Squared error on one or several outputs with weight decay: the exact
    convex reformulation of Pilanci & Ergen (2020), a group lasso with cone
    constraints over sampled activation patterns, solved with a certified
    duality gap; the equivalent ReLU network is recovered and predicts.
"""
        + _COMMON_DOC.format(
            adaptive=_ADAPTIVE_DOC,
            alpha_scale=" It is multiplied by the standard deviation of ``y``,"
            " which makes the fit equivariant to the unit of ``y``."
        ).rstrip("\n")
        + """
    loss : {"squared_error"}, default="squared_error"
        Data-fitting term: half the squared error, averaged over samples."""
        + _COMMON_DOC_REST.format().rstrip("\n")
        + """

    Attributes
    ----------"""
        + _COMMON_ATTRIBUTES.format(adaptive=_ADAPTIVE_ATTRIBUTES)
        + """    n_outputs_ : int
        Number of outputs.
    intercept_ : float or ndarray of shape (n_outputs,)
        Output intercept (a float for one-dimensional ``y``).

    See Also
    --------
    ConvexReLUClassifier : The classifier counterpart.
    ConvexGatedReLURegressor : The gated relaxation (fixed gates, no cones).
    sklearn.neural_network.MLPRegressor : A two-layer network trained by
        gradient descent (see :meth:`to_mlp`).

    Notes
    -----"""
        + _NOTES.format(vector_outputs=_VECTOR_OUTPUTS.format(what="multi-output regression"))
        + """
    Examples
    --------
    >>> import numpy as np
    >>> from skconvex import ConvexReLURegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((60, 2))
    >>> y = np.maximum(X[:, 0], 0) - np.maximum(X[:, 1], 0)
    >>> reg = ConvexReLURegressor(alpha=1e-3, random_state=0).fit(X, y)
    >>> bool(abs(reg.nonconvex_objective_ - reg.objective_) <= 1e-8 * reg.objective_)
    True
    >>> mlp = reg.to_mlp()
    >>> bool(np.allclose(mlp.predict(X), reg.predict(X)))
    True
"""
    )

    _multi_output = True
    _y_numeric = True

    _parameter_constraints = {
        **_ReLUBase._parameter_constraints,
        **AdaptiveArrangementsMixin._adaptive_constraints,
        "loss": [StrOptions({"squared_error"})],
    }

    def __init__(
        self,
        alpha=1e-3,
        *,
        n_arrangements=100,
        arrangement="gaussian",
        max_arrangements=None,
        fit_intercept=True,
        loss="squared_error",
        solver="auto",
        solver_options=None,
        tol=1e-4,
        max_iter=1000,
        warm_start=False,
        dtype=None,
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.alpha = alpha
        self.n_arrangements = n_arrangements
        self.arrangement = arrangement
        self.max_arrangements = max_arrangements
        self.fit_intercept = fit_intercept
        self.loss = loss
        self.solver = solver
        self.solver_options = solver_options
        self.tol = tol
        self.max_iter = max_iter
        self.warm_start = warm_start
        self.dtype = dtype
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def to_mlp(self):
        """Export the recovered network as a fitted :class:`~sklearn.neural_network.MLPRegressor`.

        Returns
        -------
        mlp : MLPRegressor
            ``hidden_layer_sizes=(n_neurons_,)``, ``activation="relu"``,
            identity output, carrying ``hidden_weights_``,
            ``hidden_intercepts_``, ``output_weights_`` and ``intercept_``.
            Its ``predict`` equals this estimator's (a vector for a single
            output, as scikit-learn's MLP returns). Its training
            hyperparameters are scikit-learn's defaults: refitting it trains
            by gradient descent from scratch.

        Examples
        --------
        >>> import numpy as np
        >>> from skconvex import ConvexReLURegressor
        >>> X = np.random.default_rng(0).standard_normal((40, 3))
        >>> reg = ConvexReLURegressor(random_state=0).fit(X, X[:, 0] ** 2)
        >>> reg.to_mlp().hidden_layer_sizes == (reg.n_neurons_,)
        True
        """
        from sklearn.neural_network import MLPRegressor

        check_is_fitted(self)
        mlp = MLPRegressor(
            hidden_layer_sizes=(self.n_neurons_,),
            activation="relu",
            random_state=self.random_state,
        )
        mlp = self._mlp_layers(mlp)
        mlp.out_activation_ = "identity"
        return mlp


class ConvexReLUClassifier(ClassificationTargets, ClassifierMixin, _ReLUBase):
    __doc__ = (
        """Two-layer ReLU classifier trained to global optimality.

    Logistic loss for two classes, multinomial cross-entropy for more (one
    output per class), with weight decay: the exact convex reformulation of
    Pilanci & Ergen (2020), a group lasso with cone constraints over sampled
    activation patterns, solved with a certified duality gap; the equivalent
    ReLU network is recovered and predicts.
"""
        + _COMMON_DOC.format(adaptive=_ADAPTIVE_DOC, alpha_scale="").rstrip("\n")
        + """
    loss : {"log_loss", "squared_error"}, default="log_loss"
        ``"log_loss"``: logistic / multinomial cross-entropy (gives
        ``predict_proba``); ``"squared_error"``: squared error on +-1 or
        one-hot targets."""
        + _COMMON_DOC_REST.format().rstrip("\n")
        + """

    Attributes
    ----------"""
        + _COMMON_ATTRIBUTES.format(adaptive=_ADAPTIVE_ATTRIBUTES)
        + """    classes_ : ndarray of shape (n_classes,)
        Class labels.
    intercept_ : ndarray of shape (n_outputs,)
        Output intercept (one output for two classes, else one per class).

    See Also
    --------
    ConvexReLURegressor : The regressor counterpart.
    ConvexGatedReLUClassifier : The gated relaxation (fixed gates, no cones).
    sklearn.neural_network.MLPClassifier : A two-layer network trained by
        gradient descent (see :meth:`to_mlp`).

    Notes
    -----"""
        + _NOTES.format(
            vector_outputs=_VECTOR_OUTPUTS.format(
                what="more than two classes, where the multinomial loss couples the outputs"
            )
        )
        + """
    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skconvex import ConvexReLUClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> X = StandardScaler().fit_transform(X)
    >>> clf = ConvexReLUClassifier(random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:1]).shape
    (1, 3)
    >>> clf.to_mlp().predict(X[:5]).tolist() == clf.predict(X[:5]).tolist()
    True
"""
    )

    _multi_output = False
    _y_numeric = False

    _parameter_constraints = {
        **_ReLUBase._parameter_constraints,
        **AdaptiveArrangementsMixin._adaptive_constraints,
        "loss": [StrOptions({"log_loss", "squared_error"})],
    }

    def __init__(
        self,
        alpha=1e-3,
        *,
        n_arrangements=100,
        arrangement="gaussian",
        max_arrangements=None,
        fit_intercept=True,
        loss="log_loss",
        solver="auto",
        solver_options=None,
        tol=1e-4,
        max_iter=1000,
        warm_start=False,
        dtype=None,
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.alpha = alpha
        self.n_arrangements = n_arrangements
        self.arrangement = arrangement
        self.max_arrangements = max_arrangements
        self.fit_intercept = fit_intercept
        self.loss = loss
        self.solver = solver
        self.solver_options = solver_options
        self.tol = tol
        self.max_iter = max_iter
        self.warm_start = warm_start
        self.dtype = dtype
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    def to_mlp(self):
        """Export the recovered network as a fitted :class:`~sklearn.neural_network.MLPClassifier`.

        Returns
        -------
        mlp : MLPClassifier
            ``hidden_layer_sizes=(n_neurons_,)``, ``activation="relu"``, a
            logistic output for two classes and a softmax for more, carrying
            the recovered weights, ``classes_`` and its label binarizer. Its
            ``predict`` equals this estimator's, and so does its
            ``predict_proba`` with ``loss="log_loss"`` (with
            ``loss="squared_error"`` it is the sigmoid or softmax of the
            scores, which this estimator does not offer). Its training
            hyperparameters are scikit-learn's defaults: refitting it trains
            by gradient descent from scratch.

        Examples
        --------
        >>> import numpy as np
        >>> from skconvex import ConvexReLUClassifier
        >>> X = np.random.default_rng(0).standard_normal((40, 2))
        >>> clf = ConvexReLUClassifier(random_state=0).fit(X, X[:, 0] * X[:, 1] > 0)
        >>> mlp = clf.to_mlp()
        >>> bool(np.allclose(mlp.predict_proba(X), clf.predict_proba(X)))
        True
        """
        from sklearn.neural_network import MLPClassifier
        from sklearn.preprocessing import LabelBinarizer

        check_is_fitted(self)
        mlp = MLPClassifier(
            hidden_layer_sizes=(self.n_neurons_,),
            activation="relu",
            random_state=self.random_state,
        )
        mlp = self._mlp_layers(mlp)
        mlp.out_activation_ = "logistic" if len(self.classes_) == 2 else "softmax"
        mlp.classes_ = self.classes_
        mlp._label_binarizer = LabelBinarizer().fit(self.classes_)
        return mlp
