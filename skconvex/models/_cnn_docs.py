"""Docstring sections shared by the two convex CNN estimators."""

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
    (:func:`~skconvex.sample_subnetworks` on the patch rows),
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
