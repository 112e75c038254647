"""Convolutional networks trained to global optimality through their convex programs."""

from numbers import Integral

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions

from ..arrangements import (
    _first_unique_columns,
    compute_patterns,
    compute_subnetwork_patterns,
    enumerate_arrangements,
    sample_arrangements,
    sample_subnetworks,
)
from ..programs.cones import ConeConstrainedProblem
from ..programs.patches import (
    PatchOperator,
    SubnetworkConeProblem,
    cnn_forward,
    extract_patches,
    image_geometry,
    three_layer_forward,
)
from ..programs.penalties import ColumnGroupL2, GroupNuclear
from ..programs.problem import ConvexProblem
from ..recovery import factorize_blocks, factorize_columns
from ..solvers import cvxpy_cone_solve, cvxpy_solve, solve_certified
from ..solvers.auglag import augmented_lagrangian
from ..solvers.working_set import working_set_solve
from ._base import BaseConvexNetwork, ClassificationTargets, RegressionTargets, _as_dtype, augment
from ._relu_network import _check_classes_left

__all__ = ["ConvexCNNClassifier", "ConvexCNNRegressor"]

_SOLVER_OPTIONS = {"auglag": {"inner", "sigma", "rho", "growth", "max_outer"}, "fista": set()}

# Largest explicit three-layer cone program (nonzeros of the constraint matrix)
# that solver="auto" hands to CVXPY; beyond it the augmented Lagrangian runs.
_CVXPY_THREE_LAYER_NNZ = 400_000

_DOC_PARAMETERS = """
    Parameters
    ----------
    alpha : float, default=1e-3
        Regularization strength. The objective is the **mean** loss
        (weighted by ``sample_weight``) plus ``alpha`` times the convex
        penalty, which equals the network's weight decay (see Notes).{alpha_scale}
        ``alpha=0`` needs ``solver="cvxpy"``: the default augmented
        Lagrangian solver certifies only ``alpha > 0`` and raises a
        ValueError for ``alpha=0``.
    image_shape : tuple of int, default=None
        ``(H, W)`` of the images; each row of ``X`` holds an ``(H, W, C)``
        array in C order (channels last), so ``n_features`` must be ``H * W *
        n_channels``. None treats every row as a 1-D signal (``H =
        n_features / n_channels``, ``W = 1``) and clips the kernel to the
        signal's length, which makes the estimator usable on any 2-D ``X``.
    n_channels : int, default=1
        Number of channels ``C``.
    kernel_size : int or tuple of int, default=3
        Filter size ``(kh, kw)``.
    stride : int or tuple of int, default=1
        Filter stride; it must tile the padded image exactly.
    padding : int or tuple of int, default=0
        Zeros added on each side of the image (smaller than the kernel).
    pooling : {{"avg", "sum"}}, default="avg"
        Average or sum pooling of the filter outputs.
    pool_size : int or tuple of int, default=None
        None pools each filter's map globally (one output weight per
        filter). A size larger than one and smaller than the grid of filter
        positions pools locally over non-overlapping windows, each with its
        own output weights (the last windows may be smaller). Two-layer
        networks only.
    n_layers : {{2, 3}}, default=2
        2: convolution, ReLU, pooling, linear output. 3: parallel
        sub-networks of convolution, ReLU, 1x1 convolution to one channel,
        ReLU, global pooling, linear output (see Notes).
    gated : bool, default=False
        Solve the gated relaxation (fixed gates instead of the ReLU's own
        patterns; a group lasso without cones, fast) instead of the exact
        program.
    arrangement : {{"patch", "conv", "exhaustive"}}, default="patch"
        How patterns are drawn. ``"patch"``: Gaussian filters, each giving
        one pattern jointly over all patches of all samples. ``"conv"``:
        dense gates on the whole image, Gaussian on a random
        ``kernel_size`` window and zero elsewhere (gated two-layer networks
        only: such a gate is not the ReLU of a filter). ``"exhaustive"``:
        every pattern of the stacked patch matrix (small patch dimensions
        only; ``n_arrangements`` is then an upper bound on their number),
        which makes the exact two-layer program the global optimum over
        CNNs of any width.
    n_arrangements : int, default=20
        Number of gates (filters) sampled; distinct patterns become blocks.
        For three layers, the number of extra first-layer gates added to
        those of the sampled sub-networks.
    n_subnetworks : int, default=10
        Three layers only: number of random sub-networks drawn to sample
        second-layer patterns. The exact three-layer program has ``4 P_1
        P_2`` columns per output for ``P_1`` first-layer and ``P_2``
        second-layer patterns, so keep both small.
    subnetwork_width : int, default=2
        Three layers only: first-layer filters of each random sub-network.
    fit_intercept : bool, default=True
        Give every filter a bias (a ones entry appended to every patch,
        penalized with the filter) and the output an unpenalized intercept.
"""

_DOC_REST = """
    solver : {{"auto", "auglag", "cvxpy", "fista"}}, default="auto"
        Exact programs: ``"auglag"`` (augmented Lagrangian; semismooth Newton
        steps for two layers, proximal-gradient steps for three) or
        ``"cvxpy"`` (interior point through CVXPY, Clarabel unless
        ``solver_options["solver"]`` names another solver). Gated programs:
        ``"fista"`` (accelerated proximal gradient with working sets) or
        ``"cvxpy"``. ``"auto"`` is ``"auglag"`` for exact two-layer
        programs, ``"cvxpy"`` for exact three-layer programs small enough
        for it (``"auglag"`` otherwise) and ``"fista"`` for gated ones.
    solver_options : dict, default=None
        ``"auglag"``: ``inner`` ("newton", "newton-cg", "fista"), ``sigma``,
        ``rho``, ``growth``, ``max_outer``; ``"cvxpy"``: ``solver`` and the
        conic solver's own options.
    tol : float, default=1e-4
        Certified relative duality gap (and relative cone violation for
        exact programs) at which the solver stops.
    max_iter : int, default=2000
        Maximum number of iterations (Newton steps, or proximal-gradient
        steps for gated and three-layer programs).
    warm_start : bool, default=False
        Reuse the gates and start from the previous solution when refitting.
    dtype : {{None, "float32", "float64"}}, default=None
        Compute dtype of the patches; None uses float32 for float32 ``X``.
        Certificates and second-order solvers use float64.
    n_jobs : int, default=None
        Parallel jobs for sampling the arrangements.
    random_state : int, RandomState instance or None, default=None
        Seed of the gates and sub-networks.
    verbose : int, default=0
        Solver progress.
"""

_DOC_ATTRIBUTES = """
    Attributes
    ----------
    gates_ : ndarray of shape (n_gate_features, n_patterns)
        Gates of the patterns: filters on patches (``patch_size =
        kh * kw * C + fit_intercept`` rows) or, for ``arrangement="conv"``,
        dense gates on the images (``H * W * C + fit_intercept`` rows).
        For three layers, the first-layer gates.
    n_patches_ : int
        Number of filter positions.
    output_shape_ : tuple of int
        Grid ``(oh, ow)`` of filter positions.
    n_pool_regions_ : int
        Number of pooling regions (1 for global pooling).
    pattern_weights_ : ndarray of shape (n_blocks, patch_size, n_outputs)
        The convex solution, one block per (pattern, region[, sign]) or, for
        three layers, per (sub-network, first-layer column).
    filters_ : ndarray of shape (n_filters, kh, kw, C)
        Recovered (first-layer) filters, ready to plot.
    filter_biases_ : ndarray of shape (n_filters,)
        Their biases (zeros when ``fit_intercept=False``).
    output_weights_ : ndarray of shape (n_filters, n_pool_regions, n_outputs)
        Two layers: output weights of every filter's pooled value in every
        region.
    filter_gates_ : ndarray of shape (n_filters,)
        Gated programs: column of ``gates_`` gating each filter.
    second_layer_weights_ : ndarray of shape (n_filters,)
        Three layers: weight of each filter in its sub-network's 1x1
        convolution.
    filter_subnetworks_ : ndarray of shape (n_filters,)
        Three layers: sub-network of each filter (exact), or index of the
        second-layer gate (gated).
    subnetwork_output_weights_ : ndarray of shape (n_subnetworks, n_outputs)
        Exact three layers: output weights of the sub-networks.
    subnetwork_leaf_weights_ : ndarray of shape (n_second_gates, subnetwork_width, patch_size)
        Gated three layers: first-layer weights of the random sub-networks
        whose second-layer pattern gates the network.
    subnetwork_edge_weights_ : ndarray of shape (n_second_gates, subnetwork_width)
        Gated three layers: their second-layer weights.
    n_filters_ : int
        Number of recovered filters.
    objective_ : float
        Objective of the convex program at the solution.
    nonconvex_objective_ : float
        Objective of the recovered network on the training data (mean loss
        plus ``alpha`` times its weight decay); equal to ``objective_``.
    dual_gap_ : float
        Certified duality gap of the convex solution.
    constraint_violation_ : float
        Exact programs: relative cone violation at the solution (0 up to
        rounding).
    solver_ : str
        The solver that ran.
    n_iter_ : int
        Solver iterations.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column names.
"""

_DOC_NOTES = """
    Notes
    -----
    **Two layers** (Ergen & Pilanci, 2021). Let :math:`x_{i1}, \\dots,
    x_{iK}` be the patches of image :math:`i` (with a ones entry for the
    bias) and :math:`w_k` the pooling weights (1 for ``"sum"``, one over
    the pooling window's size for ``"avg"``). The CNN :math:`f(x) =
    \\sum_j \\sum_r a_{jr} \\sum_{k \\in r} w_k (x_k^\\top u_j)_+` trained
    with the weight decay :math:`\\tfrac{{\\alpha}}{{2}}\\sum_j \\|u_j\\|^2 +
    \\|a_j\\|_1^2` (equal to the usual :math:`\\|a_j\\|_2^2` when each filter
    feeds one output and one pooling region, which the optimum allows:
    splitting a filter per (region, output) changes neither the function nor
    this penalty) is a two-layer ReLU network on the stacked patch matrix
    whose row outputs are pooled. A filter's ReLU pattern is therefore
    joint over all patches, :math:`D_p^{{(k)}} = \\mathrm{{diag}}(1[X_k g_p \\ge
    0])`, and fixing it gives the exact program

    .. math:: \\min_{{v, w}}\\; \\sum_i s_i\\,\\ell\\Big(\\sum_{{p, r}}
              \\sum_{{k \\in r}} w_k D_p^{{(k)}} X_k (v_{{pr}} - w_{{pr}}),\\
              y_i\\Big) + \\alpha \\sum_{{p,r}} \\|v_{{pr}}\\|_2 + \\|w_{{pr}}\\|_2
              \\ \\text{{s.t.}}\\ (2D_p^{{(k)}} - I) X_k v_{{pr}} \\ge 0,\\
              (2D_p^{{(k)}} - I) X_k w_{{pr}} \\ge 0\\ \\ \\forall k \\in r,

    one pair per pattern, pooling region and output; for local pooling a
    column only needs its cone on the patches of its region (the filter's
    other outputs are unused). Each non-zero column :math:`v` is the filter
    :math:`u = v/\\sqrt{{\\|v\\|}}` with output weight
    :math:`\\pm\\sqrt{{\\|v\\|}}` on its region and output, and the CNN
    reproduces the convex predictions and objective. With every pattern of
    the stacked patch matrix (``arrangement="exhaustive"``; polynomial in
    the number of patches for a fixed filter size) the optimum is the
    global minimum over CNNs of any width; with sampled patterns it is the
    minimum over CNNs whose filters' patterns were sampled.
    The gated program drops the cones (a group lasso with nuclear-norm
    blocks, exactly the weight decay of a CNN whose filters are gated by
    fixed filters, :math:`1[x_k^\\top g_p \\ge 0]\\, x_k^\\top u`).

    **Three layers** (our derivation; the paper's own three-layer statement
    could not be checked against its text). Parallel sub-networks
    :math:`f(x) = \\sum_t a_t \\sum_k w_k \\big(\\sum_j v_{{tj}}
    (x_k^\\top u_{{tj}})_+\\big)_+` (convolution, ReLU, 1x1 convolution to one
    channel, ReLU, global pooling) with unit-Frobenius first layers
    :math:`\\|U_t\\|_F \\le 1` and weight decay
    :math:`\\tfrac{{\\alpha}}{{2}}(\\|v_t\\|^2 + a_t^2)` are exactly a three-layer
    ReLU network on the stacked patch matrix followed by pooling. Rescaling
    turns the penalty into :math:`\\alpha\\sum_t |a_t|\\|v_t\\|_2`; by
    Cauchy-Schwarz :math:`\\sum_j |v_{{tj}}|\\|u_{{tj}}\\| \\le \\|v_t\\|`, with
    equality when :math:`\\|u_{{tj}}\\| \\propto |v_{{tj}}|`, so with
    :math:`q_{{tj}} = |a_t v_{{tj}}| u_{{tj}}`, first-layer patterns
    :math:`D_{{1j}}` and signs :math:`\\epsilon_j` of :math:`v_{{tj}}`,
    second-layer pattern :math:`D_{{2t}}` and sign :math:`\\sigma_t` of
    :math:`a_t`, the training problem is the group-:math:`\\ell_1` program

    .. math:: \\min_q\\; \\sum_i s_i\\, \\ell\\Big(\\sum_t \\sigma_t \\sum_k w_k
              D_{{2t}}\\sum_j \\epsilon_j D_{{1j}} X_k q_{{tj}},\\ y_i\\Big) +
              \\alpha\\sum_{{t,j}} \\|q_{{tj}}\\|_2
              \\ \\text{{s.t.}}\\ (2D_{{1j}} - I)X_{{\\rm st}} q_{{tj}} \\ge 0,\\
              (2D_{{2t}} - I)\\sum_j \\epsilon_j D_{{1j}} X_{{\\rm st}} q_{{tj}} \\ge 0

    (sub-networks with equal patterns and signs merge). Recovery: with
    :math:`S_t = \\sum_j \\|q_{{tj}}\\|`, :math:`u_{{tj}} =
    q_{{tj}}/\\sqrt{{\\|q_{{tj}}\\| S_t}}`, :math:`v_{{tj}} = \\epsilon_j
    \\sqrt{{\\|q_{{tj}}\\|}}`, :math:`a_t = \\sigma_t \\sqrt{{S_t}}`; then
    :math:`\\|U_t\\|_F = 1` and the weight decay equals the penalty.
    Second-layer patterns come from random sub-networks
    (:func:`~skconvex.arrangements.sample_subnetworks` on the patch rows),
    so the program is the optimum over networks with those patterns. The
    paper also announces an :math:`\\ell_1` program in the Fourier domain for
    circular CNNs with one ReLU layer; it is not implemented here.

    ``predict`` evaluates the recovered CNN on the patches of new images.

    References
    ----------
    T. Ergen and M. Pilanci. Implicit convex regularizers of CNN
    architectures: convex optimization of two- and three-layer networks in
    polynomial time. ICLR 2021, arXiv:2006.14798.

    T. Ergen and M. Pilanci. Global optimality beyond two layers: training
    deep ReLU networks via convex programs. ICML 2021, arXiv:2110.05518.

    M. Pilanci and T. Ergen. Neural networks are convex regularizers. ICML
    2020, arXiv:2002.10553.
"""


def _check_combination(est, geometry):
    """Reject parameter combinations that have no program."""
    if est.n_layers == 3:
        if geometry.pool_size is not None:
            raise ValueError("pool_size must be None (global pooling) when n_layers=3.")
        if est.arrangement != "patch":
            raise ValueError(
                f"arrangement={est.arrangement!r} is not available with n_layers=3; use "
                "arrangement='patch'."
            )
    if est.arrangement == "conv" and not est.gated:
        raise ValueError(
            "arrangement='conv' needs gated=True: a gate that sees the whole image is not "
            "the ReLU pattern of a filter, so it has no exact program."
        )


class _CNNBase(BaseConvexNetwork):
    """Fit, recovery and prediction of the convex CNNs."""

    _parameter_constraints = {
        **{k: v for k, v in BaseConvexNetwork._parameter_constraints.items() if k != "penalty"},
        "image_shape": [None, tuple, list],
        "n_channels": [Interval(Integral, 1, None, closed="left")],
        "kernel_size": [Interval(Integral, 1, None, closed="left"), tuple, list],
        "stride": [Interval(Integral, 1, None, closed="left"), tuple, list],
        "padding": [Interval(Integral, 0, None, closed="left"), tuple, list],
        "pooling": [StrOptions({"avg", "sum"})],
        "pool_size": [None, Interval(Integral, 2, None, closed="left"), tuple, list],
        "n_layers": [Interval(Integral, 2, 3, closed="both")],
        "gated": ["boolean"],
        "arrangement": [StrOptions({"patch", "conv", "exhaustive"})],
        "n_subnetworks": [Interval(Integral, 1, None, closed="left")],
        "subnetwork_width": [Interval(Integral, 1, None, closed="left")],
        "solver": [StrOptions({"auto", "auglag", "cvxpy", "fista"})],
        "solver_options": [None, dict],
    }

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the CNN by solving its convex program.

        Parameters
        ----------
        X : array-like of shape (n_samples, H * W * C)
            Training images, one flattened ``(H, W, C)`` array per row.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Row weights; the loss is their weighted mean.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        X, y, sw = self._validate_fit_data(
            X, y, sample_weight, multi_output=self._multi_output, y_numeric=self._y_numeric
        )
        geometry = image_geometry(
            X.shape[1], self.image_shape, self.n_channels, self.kernel_size, self.stride,
            self.padding, self.pool_size,
        )
        _check_combination(self, geometry)
        Y, datafit = self._encode_targets(y)
        _check_classes_left(self, Y[sw > 0])
        solver, options = self._solver_plan()
        dtype = _as_dtype(self.dtype, X)
        X = X.astype(dtype, copy=False)
        patches = extract_patches(X, geometry, fit_intercept=self.fit_intercept)
        alpha = self.alpha * self._alpha_scale(Y, sw)
        self._geometry = geometry
        if self.n_layers == 3:
            build = self._three_layer_program
        else:
            build = self._two_layer_program
        problem, plan = build(X, patches, geometry, datafit, Y, sw, alpha, dtype)
        result = self._solve(problem, solver, options, plan)
        self._store(problem, result, plan, geometry, patches, X, Y.shape[1])
        return self

    def _solver_plan(self):
        solver = self.solver
        if solver == "auto":
            solver = "fista" if self.gated else "auglag"
        if self.gated and solver == "auglag":
            raise ValueError("solver='auglag' solves exact programs; use 'fista' or 'cvxpy' with gated=True.")
        if not self.gated and solver == "fista":
            raise ValueError("solver='fista' solves gated programs; use 'auglag' or 'cvxpy' with gated=False.")
        options = dict(self.solver_options or {})
        if solver in _SOLVER_OPTIONS:
            unknown = set(options) - _SOLVER_OPTIONS[solver]
            if unknown:
                raise ValueError(
                    f"solver_options has keys {sorted(unknown)} that solver={solver!r} does not "
                    f"accept; accepted: {sorted(_SOLVER_OPTIONS[solver])}."
                )
        elif "solver" in options:
            import cvxpy as cp

            if options["solver"] not in cp.installed_solvers():
                raise ValueError(
                    f"solver_options['solver']={options['solver']!r} is not an installed CVXPY "
                    f"solver; installed: {cp.installed_solvers()}."
                )
        return solver, options

    def _reuse(self, name, n_rows):
        """A fitted array kept for a warm start when its first dimension still fits."""
        value = getattr(self, name, None) if self.warm_start else None
        return value if value is not None and value.shape[0] == n_rows else None

    # ------------------------------------------------------------ arrangements
    def _first_patterns(self, X, patches, geometry, sw, dtype):
        """Gates and patterns over patch rows (n * K rows) of the two-layer programs."""
        n, K, h = patches.shape
        rows = patches.reshape(n * K, h)
        if self.arrangement == "conv":
            X_aug = augment(X, self.fit_intercept)
            gates = self._reuse("gates_", X_aug.shape[1])
            if gates is None:
                gates = sample_arrangements(
                    X_aug, self.n_arrangements, kind="conv", sample_weight=sw,
                    n_jobs=self.n_jobs, random_state=self.random_state,
                    gate_params={
                        "image_shape": geometry.image_shape,
                        "n_channels": geometry.n_channels,
                        "window": geometry.kernel,
                    },
                ).gates
            gates = gates.astype(dtype, copy=False)
            return gates, np.repeat(compute_patterns(X_aug, gates), K, axis=0)
        gates = self._reuse("gates_", h)
        if gates is None:
            if self.arrangement == "exhaustive":
                gates = enumerate_arrangements(
                    rows, sample_weight=np.repeat(sw, K), max_patterns=self.n_arrangements,
                    budget_name="n_arrangements",
                ).gates
            else:
                gates = sample_arrangements(
                    patches, self.n_arrangements, kind="patch", sample_weight=sw,
                    n_jobs=self.n_jobs, random_state=self.random_state,
                ).gates
        gates = gates.astype(dtype, copy=False)
        return gates, compute_patterns(rows, gates)

    def _two_layer_program(self, X, patches, geometry, datafit, Y, sw, alpha, dtype):
        n, K, h = patches.shape
        gates, patterns = self._first_patterns(X, patches, geometry, sw, dtype)
        support = np.repeat(sw > 0, K)
        row_regions = np.tile(geometry.regions, n)
        # One block per (pattern, pooling region): a pattern matters only on
        # its region's patches, where distinct patterns may coincide.
        block_pattern, block_region = [], []
        for r in range(geometry.n_regions):
            in_region = row_regions == r
            keys = np.packbits(patterns[in_region & support], axis=0)
            first, nonzero = _first_unique_columns(keys)
            keep = first[nonzero]
            block_pattern.append(keep)
            block_region.append(np.full(len(keep), r))
        block_pattern = np.concatenate(block_pattern).astype(np.intp)
        block_region = np.concatenate(block_region).astype(np.intp)
        region_mask = row_regions[:, None] == block_region[None, :]
        masks = patterns[:, block_pattern] & region_mask
        pool_weights = geometry.pool_weights(self.pooling)
        C = Y.shape[1]
        plan = {"gates": gates, "block_pattern": block_pattern, "block_region": block_region}
        if self.gated:
            operator = PatchOperator(patches, masks, pool_weights=pool_weights, n_outputs=C, dtype=dtype)
            problem = ConvexProblem(
                operator, datafit, GroupNuclear(), Y, sw, alpha, fit_intercept=self.fit_intercept
            )
            plan["signs"] = np.ones(len(block_pattern))
            return problem, plan
        B = len(block_pattern)
        signs = np.concatenate([np.ones(B), -np.ones(B)])
        operator = PatchOperator(
            patches, np.hstack([masks, masks]), signs=signs, pool_weights=pool_weights,
            n_outputs=C, dtype=dtype,
        )
        cone = patterns[:, block_pattern]
        problem = ConeConstrainedProblem(
            operator,
            datafit,
            ColumnGroupL2(),
            Y,
            sw,
            alpha,
            cone_patterns=np.hstack([cone, cone]),
            cone_support=np.hstack([region_mask, region_mask]),
            interior=np.tile(gates[:, block_pattern], (1, 2)),
            fit_intercept=self.fit_intercept,
        )
        plan.update(
            signs=signs,
            block_pattern=np.tile(block_pattern, 2),
            block_region=np.tile(block_region, 2),
        )
        return problem, plan

    def _three_layer_program(self, X, patches, geometry, datafit, Y, sw, alpha, dtype):
        n, K, h = patches.shape
        rows = patches.reshape(n * K, h)
        row_sw = np.repeat(sw, K)
        reuse = self._reuse("gates_", h) is not None and hasattr(self, "_subnetworks")
        if reuse:
            sub = self._subnetworks
        else:
            arr = sample_subnetworks(
                rows, self.n_subnetworks, n_first=self.n_arrangements, depth=3,
                width=self.subnetwork_width, sample_weight=row_sw, n_jobs=self.n_jobs,
                random_state=self.random_state,
            )
            sub = {
                "gates": arr.gates, "leaves": arr.leaf_weights, "edges": arr.edge_weights[0],
                "leaf_index": arr.leaf_index,
            }
        self._subnetworks = sub
        gates = sub["gates"].astype(dtype, copy=False)
        leaves = sub["leaves"].astype(dtype, copy=False)
        edges = sub["edges"].astype(dtype, copy=False)
        first = compute_patterns(rows, gates)
        second = compute_subnetwork_patterns(rows, leaves, (edges,))[-1][:, :, 0]
        P1, P2 = first.shape[1], second.shape[1]
        pool_weights = geometry.pool_weights(self.pooling)
        C = Y.shape[1]
        plan = {"gates": gates, "leaves": leaves, "edges": edges}
        if self.gated:
            # Blocks (second gate l, first gate i): masks D_2l * D_1i.
            masks = (second[:, :, None] & first[:, None, :]).reshape(n * K, P2 * P1)
            operator = PatchOperator(patches, masks, pool_weights=pool_weights, n_outputs=C, dtype=dtype)
            problem = ConvexProblem(
                operator, datafit, GroupNuclear(), Y, sw, alpha, fit_intercept=self.fit_intercept
            )
            plan.update(P1=P1, P2=P2)
            return problem, plan
        inner = np.hstack([first, first])
        inner_signs = np.concatenate([np.ones(P1), -np.ones(P1)])
        outer = np.hstack([second, second])
        outer_signs = np.concatenate([np.ones(P2), -np.ones(P2)])
        J, T = 2 * P1, 2 * P2
        masks = (outer[:, :, None] & inner[:, None, :]).reshape(n * K, T * J)
        signs = (outer_signs[:, None] * inner_signs[None, :]).ravel()
        operator = PatchOperator(
            patches, masks, signs=signs, pool_weights=pool_weights, n_outputs=C, dtype=dtype
        )
        # The random sub-network that produced D_2l is a point of every group
        # (l, sign): its leaf j sits in column (leaf pattern, sign of its edge)
        # scaled by |edge|.
        leaf_index = np.asarray(sub["leaf_index"])
        Q = np.zeros((h, P2, J))
        l_idx, j_idx = np.nonzero(leaf_index >= 0)
        cols = leaf_index[l_idx, j_idx] + np.where(edges[l_idx, j_idx] > 0, 0, P1)
        np.add.at(
            Q, (slice(None), l_idx, cols), (np.abs(edges[l_idx, j_idx])[:, None] * leaves[l_idx, j_idx]).T
        )
        outer_interior = np.concatenate([Q, Q], axis=1).reshape(h, T * J)
        problem = SubnetworkConeProblem(
            operator,
            datafit,
            ColumnGroupL2(),
            Y,
            sw,
            alpha,
            inner_patterns=inner,
            inner_signs=inner_signs,
            outer_patterns=outer,
            interior=np.tile(np.hstack([gates, gates]), (1, T)),
            outer_interior=outer_interior,
            fit_intercept=self.fit_intercept,
        )
        plan.update(P1=P1, P2=P2, inner_signs=inner_signs, outer_signs=outer_signs)
        return problem, plan

    # ------------------------------------------------------------ solve
    def _solve(self, problem, solver, options, plan):
        coef_init, intercept_init = self._warm_start_point(problem.coef_shape)
        options = dict(options)
        if solver == "auglag" and self.n_layers == 3 and self.solver == "auto":
            solver = "cvxpy" if self._small_three_layer(problem) else "auglag"
        if solver == "cvxpy":
            name = options.pop("solver", "CLARABEL")
            run = cvxpy_solve if self.gated else cvxpy_cone_solve
            result = run(problem, solver=name, solver_options=options, verbose=self.verbose)
            result.converged = result.converged or result.relative_gap <= self.tol
        elif solver == "fista":
            result = solve_certified(
                problem, working_set_solve, tol=self.tol, max_iter=self.max_iter,
                coef_init=coef_init, intercept_init=intercept_init, verbose=self.verbose,
            )
        else:
            if self.n_layers == 3:
                options.setdefault("inner", "fista")
            result = augmented_lagrangian(
                problem, coef_init=coef_init, intercept_init=intercept_init, tol=self.tol,
                max_iter=self.max_iter, verbose=self.verbose, **options,
            )
        self.solver_ = solver
        return result

    @staticmethod
    def _small_three_layer(problem):
        d = problem.coef_shape[0]
        C = problem.coef_shape[2]
        J = problem.n_inner
        nnz = (int(np.count_nonzero(problem.cone_signs)) + int(np.count_nonzero(problem.outer_signs)) * J) * d
        return nnz * C <= _CVXPY_THREE_LAYER_NNZ

    # ------------------------------------------------------------ recovery
    def _store(self, problem, result, plan, geometry, patches, X, n_outputs):
        problem64 = problem.astype(np.float64)
        W = np.array(result.coef, dtype=np.float64)
        self.gates_ = plan["gates"]
        self.n_patches_ = geometry.n_patches
        self.output_shape_ = geometry.output_shape
        self.n_pool_regions_ = geometry.n_regions
        if self.n_layers == 3 and not self.gated:
            W = self._store_three_layer(W, plan, n_outputs)
        elif self.n_layers == 3:
            W = self._store_gated_three_layer(W, plan)
        elif self.gated:
            W = self._store_gated(W, plan, n_outputs)
        else:
            W = self._store_two_layer(W, plan, n_outputs)
        objective, b = problem64.objective(W, result.intercept)
        result.objective = objective
        self._report(result)
        if not self.gated:
            self.constraint_violation_ = float(problem64.violation(problem64.operator.product(W)))
        self.pattern_weights_ = np.ascontiguousarray(W.transpose(1, 0, 2))
        self.intercept_ = float(b[0]) if getattr(self, "_y_1d", False) else np.asarray(b, dtype=np.float64)
        # The recovered network's own objective on the training data.
        out = self._forward(patches.astype(np.float64), X.astype(np.float64))
        self.nonconvex_objective_ = float(
            problem64.datafit.value(out, problem64.y, problem64.sample_weight)
            + problem64.alpha * self._weight_decay()
        )

    def _set_filters(self, hidden):
        geo = self._geometry
        kh, kw = geo.kernel
        self.filters_ = np.ascontiguousarray(
            hidden[:, : geo.patch_size].reshape(-1, kh, kw, geo.n_channels)
        )
        self.filter_biases_ = hidden[:, geo.patch_size] if self.fit_intercept else np.zeros(len(hidden))
        self.n_filters_ = int(len(hidden))

    def _store_two_layer(self, W, plan, n_outputs):
        hidden, output, blocks, keep = factorize_columns(W, plan["signs"])
        W[:, ~keep] = 0.0
        self._set_filters(hidden)
        A = np.zeros((len(hidden), self._geometry.n_regions, n_outputs))
        A[np.arange(len(hidden)), plan["block_region"][blocks]] = output
        self.output_weights_ = A
        self._block_of_filter = blocks
        return W

    def _store_gated(self, W, plan, n_outputs):
        hidden, output, blocks = factorize_blocks(W)
        kept = np.zeros(W.shape[1], bool)
        kept[blocks] = True
        W[:, ~kept] = 0.0
        self._set_filters(hidden)
        A = np.zeros((len(hidden), self._geometry.n_regions, n_outputs))
        A[np.arange(len(hidden)), plan["block_region"][blocks]] = output
        self.output_weights_ = A
        self.filter_gates_ = plan["block_pattern"][blocks]
        return W

    def _store_three_layer(self, W, plan, n_outputs):
        d, B, C = W.shape
        P1, P2 = plan["P1"], plan["P2"]
        J, T = 2 * P1, 2 * P2
        norms = np.sqrt(np.einsum("dbc,dbc->bc", W, W)).reshape(T, J, C)
        top = norms.max() if norms.size else 0.0
        keep = norms > 1e-10 * top if top > 0 else np.zeros_like(norms, dtype=bool)
        W.reshape(d, T, J, C)[:, ~keep] = 0.0
        norms = np.where(keep, norms, 0.0)
        total = norms.sum(axis=1)  # S_tc
        groups = np.argwhere(total > 0)  # (t, c) pairs, one sub-network each
        group_id = -np.ones((T, C), dtype=np.intp)
        group_id[groups[:, 0], groups[:, 1]] = np.arange(len(groups))
        t_idx, j_idx, c_idx = np.nonzero(keep)
        S = total[t_idx, c_idx]
        q = W.reshape(d, T, J, C)[:, t_idx, j_idx, c_idx].T
        qn = norms[t_idx, j_idx, c_idx]
        hidden = q / np.sqrt(qn * S)[:, None]
        self._set_filters(hidden)
        self.second_layer_weights_ = plan["inner_signs"][j_idx] * np.sqrt(qn)
        self.filter_subnetworks_ = group_id[t_idx, c_idx]
        A = np.zeros((len(groups), n_outputs))
        A[np.arange(len(groups)), groups[:, 1]] = plan["outer_signs"][groups[:, 0]] * np.sqrt(
            total[groups[:, 0], groups[:, 1]]
        )
        self.subnetwork_output_weights_ = A
        return W

    def _store_gated_three_layer(self, W, plan):
        hidden, output, blocks = factorize_blocks(W)
        kept = np.zeros(W.shape[1], bool)
        kept[blocks] = True
        W[:, ~kept] = 0.0
        self._set_filters(hidden)
        second, first = np.divmod(blocks, plan["P1"])
        self.output_weights_ = output[:, None, :]
        self.filter_gates_ = first
        self.filter_subnetworks_ = second
        self.subnetwork_leaf_weights_ = plan["leaves"]
        self.subnetwork_edge_weights_ = plan["edges"]
        return W

    # ------------------------------------------------------------ prediction
    def _hidden(self):
        hidden = self.filters_.reshape(self.filters_.shape[0], self._geometry.patch_size)
        if self.fit_intercept:
            hidden = np.column_stack([hidden, self.filter_biases_])
        return hidden

    def _weight_decay(self):
        hidden = self._hidden()
        if self.n_layers == 3 and not self.gated:
            # Unit-Frobenius first layers; decay on the last two layers.
            return 0.5 * float(np.sum(self.second_layer_weights_**2) + np.sum(self.subnetwork_output_weights_**2))
        return 0.5 * float(np.sum(hidden**2) + np.sum(self.output_weights_**2))

    def _forward(self, patches, X_images):
        geo = self._geometry
        pool_weights = geo.pool_weights(self.pooling)
        hidden = self._hidden().astype(patches.dtype, copy=False)
        intercept = np.atleast_1d(getattr(self, "intercept_", 0.0))
        if self.n_layers == 3 and not self.gated:
            return three_layer_forward(
                patches, hidden, self.second_layer_weights_, self.filter_subnetworks_,
                self.subnetwork_output_weights_, pool_weights=pool_weights, intercept=intercept,
            )
        if self.n_layers == 3:
            n, K, h = patches.shape
            if not len(self.filter_gates_):
                return np.zeros((n, self.output_weights_.shape[2])) + intercept
            rows = patches.reshape(n * K, h)
            first = rows @ self.gates_[:, self.filter_gates_].astype(rows.dtype) >= 0
            second = compute_subnetwork_patterns(
                rows, self.subnetwork_leaf_weights_[self.filter_subnetworks_],
                (self.subnetwork_edge_weights_[self.filter_subnetworks_],),
            )[-1][:, :, 0]
            act = (first & second) * (rows @ hidden.T)
            pooled = np.einsum("nkm,k->nm", act.reshape(n, K, -1), pool_weights.astype(act.dtype))
            return pooled @ self.output_weights_[:, 0, :].astype(act.dtype) + intercept
        if not self.gated:
            return cnn_forward(
                patches, hidden, self.output_weights_, regions=geo.regions,
                pool_weights=pool_weights, intercept=intercept,
            )
        if self.arrangement == "conv":
            X_aug = augment(X_images, self.fit_intercept)
            sample_gates = X_aug @ self.gates_[:, self.filter_gates_].astype(X_aug.dtype) >= 0
            return cnn_forward(
                patches, hidden, self.output_weights_, regions=geo.regions,
                pool_weights=pool_weights, intercept=intercept, sample_gates=sample_gates,
            )
        return cnn_forward(
            patches, hidden, self.output_weights_, regions=geo.regions, pool_weights=pool_weights,
            intercept=intercept, gates=self.gates_[:, self.filter_gates_],
        )

    def _network_output(self, X):
        patches = extract_patches(X, self._geometry, fit_intercept=self.fit_intercept)
        return self._forward(patches, X)


class ConvexCNNRegressor(RegressionTargets, RegressorMixin, _CNNBase):
    __doc__ = (
        """Convolutional network regressor trained to global optimality.

    Images arrive as rows of ``X``; the two- or three-layer CNN (convolution,
    ReLU, pooling, linear output) trained with weight decay is solved
    through its exact convex program (Ergen & Pilanci, 2021), or its gated
    relaxation, with a certified duality gap; the equivalent CNN is
    recovered and predicts.
"""
        + _DOC_PARAMETERS.format(
            alpha_scale=" It is multiplied by the standard deviation of ``y``, which makes "
            "the fit equivariant to the unit of ``y``."
        ).rstrip("\n")
        + """
    loss : {"squared_error"}, default="squared_error"
        Half the squared error, averaged over samples."""
        + _DOC_REST.format().rstrip("\n")
        + "\n"
        + _DOC_ATTRIBUTES.rstrip("\n")
        + """
    n_outputs_ : int
        Number of outputs.
    intercept_ : float or ndarray of shape (n_outputs,)
        Output intercept (a float for one-dimensional ``y``).

    See Also
    --------
    ConvexCNNClassifier : The classifier counterpart.
    ConvexReLURegressor : The fully connected two-layer network.
"""
        + _DOC_NOTES
        + """
    Examples
    --------
    >>> import numpy as np
    >>> from skconvex import ConvexCNNRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((40, 16))
    >>> y = np.maximum(X.reshape(40, 4, 4)[:, :2, :2].sum(axis=(1, 2)), 0)
    >>> reg = ConvexCNNRegressor(image_shape=(4, 4), kernel_size=2, random_state=0).fit(X, y)
    >>> reg.filters_.shape[1:]
    (2, 2, 1)
    >>> bool(abs(reg.nonconvex_objective_ - reg.objective_) <= 1e-8 * reg.objective_)
    True
"""
    )

    _multi_output = True
    _y_numeric = True

    _parameter_constraints = {
        **_CNNBase._parameter_constraints,
        "loss": [StrOptions({"squared_error"})],
    }

    def __init__(
        self,
        alpha=1e-3,
        *,
        image_shape=None,
        n_channels=1,
        kernel_size=3,
        stride=1,
        padding=0,
        pooling="avg",
        pool_size=None,
        n_layers=2,
        gated=False,
        arrangement="patch",
        n_arrangements=20,
        n_subnetworks=10,
        subnetwork_width=2,
        fit_intercept=True,
        loss="squared_error",
        solver="auto",
        solver_options=None,
        tol=1e-4,
        max_iter=2000,
        warm_start=False,
        dtype=None,
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.alpha = alpha
        self.image_shape = image_shape
        self.n_channels = n_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.pooling = pooling
        self.pool_size = pool_size
        self.n_layers = n_layers
        self.gated = gated
        self.arrangement = arrangement
        self.n_arrangements = n_arrangements
        self.n_subnetworks = n_subnetworks
        self.subnetwork_width = subnetwork_width
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
        # Convolution + pooling is translation invariant: on tabular data read
        # as 1-D signals (image_shape=None) it cannot single out one column,
        # which scikit-learn's regression score check requires.
        tags.regressor_tags.poor_score = True
        return tags


class ConvexCNNClassifier(ClassificationTargets, ClassifierMixin, _CNNBase):
    __doc__ = (
        """Convolutional network classifier trained to global optimality.

    Images arrive as rows of ``X``; the two- or three-layer CNN (convolution,
    ReLU, pooling, linear output) trained with weight decay and the logistic
    or multinomial loss is solved through its exact convex program (Ergen &
    Pilanci, 2021), or its gated relaxation, with a certified duality gap;
    the equivalent CNN is recovered and predicts.
"""
        + _DOC_PARAMETERS.format(alpha_scale="").rstrip("\n")
        + """
    loss : {"log_loss", "squared_error"}, default="log_loss"
        ``"log_loss"``: logistic (two classes) or multinomial cross-entropy
        (gives ``predict_proba``); ``"squared_error"``: squared error on +-1
        or one-hot targets."""
        + _DOC_REST.format().rstrip("\n")
        + "\n"
        + _DOC_ATTRIBUTES.rstrip("\n")
        + """
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    intercept_ : ndarray of shape (n_outputs,)
        Output intercept (one output for two classes, else one per class).

    See Also
    --------
    ConvexCNNRegressor : The regressor counterpart.
    ConvexReLUClassifier : The fully connected two-layer network.
"""
        + _DOC_NOTES
        + """
    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skconvex import ConvexCNNClassifier
    >>> X, y = load_digits(n_class=2, return_X_y=True)
    >>> clf = ConvexCNNClassifier(image_shape=(8, 8), gated=True, pool_size=3,
    ...                           random_state=0).fit(X[:100] / 16, y[:100])
    >>> clf.filters_.shape[1:]
    (3, 3, 1)
    >>> clf.predict_proba(X[100:102] / 16).shape
    (2, 2)
"""
    )

    _multi_output = False
    _y_numeric = False

    _parameter_constraints = {
        **_CNNBase._parameter_constraints,
        "loss": [StrOptions({"log_loss", "squared_error"})],
    }

    def __init__(
        self,
        alpha=1e-3,
        *,
        image_shape=None,
        n_channels=1,
        kernel_size=3,
        stride=1,
        padding=0,
        pooling="avg",
        pool_size=None,
        n_layers=2,
        gated=False,
        arrangement="patch",
        n_arrangements=20,
        n_subnetworks=10,
        subnetwork_width=2,
        fit_intercept=True,
        loss="log_loss",
        solver="auto",
        solver_options=None,
        tol=1e-4,
        max_iter=2000,
        warm_start=False,
        dtype=None,
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.alpha = alpha
        self.image_shape = image_shape
        self.n_channels = n_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.pooling = pooling
        self.pool_size = pool_size
        self.n_layers = n_layers
        self.gated = gated
        self.arrangement = arrangement
        self.n_arrangements = n_arrangements
        self.n_subnetworks = n_subnetworks
        self.subnetwork_width = subnetwork_width
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
