"""Wasserstein GANs with two-layer discriminators, trained through their convex duals.

The WGAN game with a two-layer discriminator :math:`D(x) = \\sum_j
\\sigma(\\tilde x^\\top u_j)\\,v_j`, :math:`\\|u_j\\| \\le 1` and penalty
:math:`\\beta_d\\sum_j|v_j|` (weight decay after rescaling),

.. math:: \\min_G\\ R(G) + \\max_D\\ \\mathbb{E}_{x}D(x) - \\mathbb{E}_{g}D(g)
          - \\beta_d\\sum_j |v_j| ,

has an inner maximum equal to 0 when
:math:`|\\mathbb{E}_x\\sigma(\\tilde x^\\top u) - \\mathbb{E}_g\\sigma(\\tilde g^\\top u)| \\le
\\beta_d` for every unit :math:`u`, and :math:`+\\infty` otherwise: the
discriminator becomes a constraint on the generated distribution (Sahiner,
Ergen, Ozturkler, Bartan, Pauly, Mardani & Pilanci, 2022). For a linear
activation it matches means, for the quadratic one second moments (a
spectral-norm ball), for the ReLU activated means on every cell of the
arrangement of data and generated samples.
"""

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from ..programs.wgan import _lift, relu_cell_values, relu_generator_program
from ._base import _unfitted_on_interrupt

__all__ = ["ConvexWGAN", "frechet_distance", "quadratic_generator"]


# --------------------------------------------------------------------------
# closed forms
# --------------------------------------------------------------------------


def _sym_eig(C):
    """Eigenvalues (descending) and eigenvectors of a symmetric matrix."""
    lam, V = np.linalg.eigh((C + C.T) / 2)
    return lam[::-1], V[:, ::-1]


def _numerical_rank(values, scale, size):
    """Count of ``values`` above the rounding level of a matrix of norm ``scale``."""
    if scale <= 0:
        return 0
    return int(np.count_nonzero(values > scale * max(size, 1) * np.finfo(np.float64).eps))


def quadratic_generator(moment, latent_map, *, n_components=None, beta_d=None):
    """Closed-form generator of the WGAN with a quadratic-activation discriminator.

    With second-moment matrices :math:`C_x` (data) and :math:`C_g = B^\\top B`
    (a linear generator :math:`g = B^\\top z`, :math:`z \\sim N(0, I)`), the
    discriminator constraint is :math:`\\|C_x - C_g\\|_2 \\le \\beta_d`, and the
    generator of least energy :math:`\\operatorname{tr} C_g` solves the SDP
    :math:`\\min\\{\\operatorname{tr} S : \\|C_x - S\\|_2 \\le \\beta_d,\\ S \\succeq 0\\}`,
    whose solution thresholds the eigenvalues,
    :math:`S^\\star = \\sum_i (\\lambda_i - \\beta_d)_+ v_iv_i^\\top` (any feasible
    :math:`S \\succeq C_x - \\beta_d I` has :math:`\\lambda_i(S) \\ge
    \\lambda_i - \\beta_d`). It is realized through a linear stage
    :math:`B = A W` on top of an input factor :math:`A` (latent rows
    :math:`\\to` stage input) with SVD :math:`A = P\\Delta Q^\\top` by
    :math:`W = Q_k\\Delta_k^{-1}(\\Lambda_k - \\beta_d)^{1/2}V_k^\\top`, the
    least-Frobenius-norm choice (Sahiner et al., 2022, ProCoGAN).

    Parameters
    ----------
    moment : ndarray of shape (n_features, n_features)
        The data's (centred) second-moment matrix :math:`C_x`.
    latent_map : ndarray of shape (latent_dim, n_inputs)
        Input factor :math:`A`: the stage input is :math:`A^\\top z`.
    n_components : int, default=None
        Rank :math:`k` of :math:`C_g`; sets :math:`\\beta_d =
        \\lambda_{k+1}` (the constraint then holds with equality). None
        with ``beta_d`` None keeps every positive eigenvalue.
    beta_d : float, default=None
        Discriminator penalty; sets :math:`k = \\#\\{\\lambda_i > \\beta_d\\}`.

    Returns
    -------
    weights : ndarray of shape (n_inputs, n_features)
        Stage weights :math:`W`.
    info : dict
        ``beta_d``, ``n_components`` (rank used), ``requested`` (rank the
        data asked for), ``eigenvalues`` of :math:`C_x`, ``energy``
        (:math:`\\operatorname{tr} C_g`) and ``constraint_gap``
        (:math:`\\|C_x - C_g\\|_2 - \\beta_d`, 0 at the closed form unless the
        input rank is too small).

    References
    ----------
    A. Sahiner, T. Ergen, B. Ozturkler, B. Bartan, J. Pauly, M. Mardani and
    M. Pilanci. Hidden convexity of Wasserstein GANs: interpretable
    generative models with closed-form solutions. ICLR 2022,
    arXiv:2107.05680.

    Examples
    --------
    >>> import numpy as np
    >>> from skconvex.models.gan import quadratic_generator
    >>> C = np.diag([4.0, 2.0, 1.0])
    >>> W, info = quadratic_generator(C, np.eye(3), n_components=2)
    >>> np.round(np.diag(W.T @ W), 6).tolist(), info["beta_d"]
    ([3.0, 1.0, 0.0], 1.0)
    """
    lam, V = _sym_eig(np.asarray(moment, dtype=np.float64))
    d = len(lam)
    positive = _numerical_rank(lam, max(lam[0], 0.0) if d else 0.0, d)
    A = np.asarray(latent_map, dtype=np.float64)
    P, delta, Qt = np.linalg.svd(A, full_matrices=False)
    cap = _numerical_rank(delta, delta[0] if delta.size else 0.0, max(A.shape))
    if beta_d is not None:
        requested = int(np.count_nonzero(lam > beta_d))
        beta = float(beta_d)
    else:
        requested = positive if n_components is None else min(int(n_components), positive)
        beta = float(lam[requested]) if requested < d else 0.0
        beta = max(beta, 0.0)
    k = min(requested, cap)
    if k < requested and beta_d is None:
        # Keep the constraint tight for the rank that can be realized.
        beta = max(float(lam[k]), 0.0)
    scale = np.sqrt(np.maximum(lam[:k] - beta, 0.0))
    W = (Qt[:k].T / delta[:k]) @ (scale[:, None] * V[:, :k].T)
    Cg = (V[:, :k] * scale**2) @ V[:, :k].T
    gap = float(np.linalg.norm(moment - Cg, 2)) - beta if d else -beta
    info = {
        "beta_d": beta,
        "n_components": k,
        "requested": requested,
        "eigenvalues": lam,
        "energy": float(np.sum(scale**2)),
        "constraint_gap": gap,
    }
    return W, info


def frechet_distance(mean1, cov1, mean2, cov2):
    """Fréchet distance between two Gaussians.

    .. math:: \\|\\mu_1 - \\mu_2\\|^2 + \\operatorname{tr}\\big(C_1 + C_2 -
              2(C_1^{1/2}C_2C_1^{1/2})^{1/2}\\big),

    with symmetric square roots from eigendecompositions (negative rounding
    eigenvalues clipped), so it is exact for singular covariances.

    Parameters
    ----------
    mean1 : ndarray of shape (n_features,)
        Mean of the first Gaussian.
    cov1 : ndarray of shape (n_features, n_features)
        Covariance of the first Gaussian.
    mean2 : ndarray of shape (n_features,)
        Mean of the second Gaussian.
    cov2 : ndarray of shape (n_features, n_features)
        Covariance of the second Gaussian.

    Returns
    -------
    distance : float
        The squared Fréchet (2-Wasserstein) distance, >= 0.

    Examples
    --------
    >>> import numpy as np
    >>> from skconvex.models.gan import frechet_distance
    >>> float(frechet_distance(np.zeros(2), np.eye(2), np.ones(2), 4 * np.eye(2)))
    4.0
    """

    def sqrtm(C):
        lam, V = np.linalg.eigh((C + C.T) / 2)
        return (V * np.sqrt(np.maximum(lam, 0))) @ V.T

    root = sqrtm(np.asarray(cov1, dtype=np.float64))
    cross = sqrtm(root @ np.asarray(cov2, dtype=np.float64) @ root)
    diff = np.asarray(mean1, dtype=np.float64) - np.asarray(mean2, dtype=np.float64)
    value = diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(cross)
    return float(max(value, 0.0))


# --------------------------------------------------------------------------
# images
# --------------------------------------------------------------------------


def _image_dims(image_shape):
    H, W = int(image_shape[0]), int(image_shape[1])
    C = int(image_shape[2]) if len(image_shape) == 3 else 1
    return H, W, C


def _downsample(X, image_shape, height):
    """Average-pool flattened ``(H, W, C)`` images to ``height`` rows."""
    H, W, C = _image_dims(image_shape)
    f = H // height
    imgs = X.reshape(len(X), height, f, W // f, f, C)
    return imgs.mean(axis=(2, 4)).reshape(len(X), -1)


def _upsample(B, image_shape, height, factor):
    """Nearest-neighbour upsampling of flattened images (rows of ``B``) by ``factor``."""
    H, W, C = _image_dims(image_shape)
    width = W * height // H
    imgs = B.reshape(len(B), height, width, C)
    imgs = imgs.repeat(factor, axis=1).repeat(factor, axis=2)
    return imgs.reshape(len(B), -1)


# --------------------------------------------------------------------------
# ReLU discriminator
# --------------------------------------------------------------------------


def _relu_socp(Xc, Z, Dg, gates, beta, solver_options):
    """Solve the generator SOCP (:func:`~skconvex.programs.wgan.relu_generator_program`).

    Returns ``(W, b, value)``, or None when the conic solver fails.
    """
    import cvxpy as cp

    problem, W, b = relu_generator_program(Xc, Z, Dg, gates, beta)
    options = dict(solver_options or {})
    solver = options.pop("solver", "CLARABEL")
    try:
        problem.solve(solver=solver, **options)
    except cp.error.SolverError:
        return None
    if problem.status not in ("optimal", "optimal_inaccurate") or W.value is None:
        return None
    return np.asarray(W.value), np.asarray(b.value), float(problem.value)


def _whitened_latent(rng, m, k):
    """``m`` latent rows with zero mean and identity second moment exactly."""
    Z = rng.standard_normal((m, k))
    Z -= Z.mean(axis=0)
    Q, R = np.linalg.qr(Z)
    Q *= np.sign(np.diag(R))
    return np.sqrt(m) * Q


# --------------------------------------------------------------------------
# estimator
# --------------------------------------------------------------------------


class ConvexWGAN(TransformerMixin, BaseEstimator):
    """Wasserstein GAN with a linear generator and a two-layer discriminator, solved convexly.

    The discriminator's weight decay turns it into a constraint on the
    generated distribution (Sahiner et al., 2022); the generator of least
    energy under that constraint is found in closed form (linear and
    quadratic activations) or by a convex program for fixed generator
    activation patterns (ReLU). The generator maps latent codes
    :math:`z \\sim N(0, I)` to samples :math:`g = \\mu + B^\\top z`.

    Parameters
    ----------
    discriminator : {"quadratic", "linear", "relu"}, default="quadratic"
        Activation of the discriminator's hidden layer. ``"quadratic"``
        matches second moments within ``beta_d`` in spectral norm (closed
        form: thresholded eigenvalues); ``"linear"`` matches means (closed
        form: every sample at the soft-thresholded mean, a linear
        discriminator cannot see variance); ``"relu"`` matches activated
        means on sampled cells (convex program per set of generator
        patterns, iterated until the patterns are stable).
    n_components : int, default=None
        Rank of the generator (quadratic discriminator): :math:`\\beta_d` is
        set to the next eigenvalue of the data's covariance, as in ProCoGAN's
        truncation index. None keeps every direction (up to ``latent_dim``).
    beta_d : float, default=None
        Discriminator penalty (in the units of the matched moments), instead
        of ``n_components``. None: from ``n_components`` (quadratic), 0.1
        times the root mean squared distance of the data to its mean
        (linear, ReLU).
    latent_dim : int, default=None
        Dimension of the latent codes; None uses ``n_features``.
    fit_intercept : bool, default=True
        Work with data centred at its mean and add the mean back to the
        generated samples; otherwise match raw (uncentred) moments.
    progressive : bool, default=False
        Train stage by stage over image resolutions (ProCoGAN), quadratic
        discriminator only; needs ``image_shape``.
    image_shape : tuple of int, default=None
        ``(height, width)`` or ``(height, width, channels)`` of the
        flattened images (row-major, channels last).
    resolutions : list of int, default=None
        Increasing image heights of the stages, each dividing the next, the
        last equal to ``height``. None halves ``height`` down to 2 (e.g.
        ``[2, 4, 8]`` for 8x8 images).
    stage_components : list of int, default=None
        Rank of each progressive stage (None: ``n_components`` for every
        stage).
    n_arrangements : int, default=50
        Gates sampled for the ReLU discriminator's cells.
    max_iter : int, default=10
        Most convex programs solved for the ReLU discriminator (each fixes
        the generator patterns of the previous generator).
    tol : float, default=1e-6
        ReLU discriminator: a generator is accepted when its certified
        constraint gap on the sampled cells is at most ``tol * beta_d``; the
        iteration stops when the patterns are stable or an iteration does
        not lower the energy of the best accepted generator by a relative
        ``tol``.
    solver_options : dict, default=None
        Options of the ReLU discriminator's conic solver (``"solver"`` names
        a CVXPY solver, Clarabel by default; the rest go to it).
    random_state : int, RandomState instance or None, default=None
        Seed of the latent sample of the ReLU fit and the default seed of
        :meth:`sample`.

    Attributes
    ----------
    coef_ : ndarray of shape (`latent_dim_`, `n_features_in_`)
        The generator :math:`B`: samples are ``intercept_ + Z @ coef_``.
    intercept_ : ndarray of shape (`n_features_in_`,)
        Mean of the generated distribution.
    mean_ : ndarray of shape (`n_features_in_`,)
        Data mean (zeros when ``fit_intercept=False``).
    generator_weights_ : list of ndarray
        Weights :math:`W_t` of each stage (one for non-progressive fits):
        stage ``t`` maps ``[upsample(previous centred output), z]`` (just
        ``z`` at the first stage) to its centred output.
    stage_coef_ : list of ndarray
        Cumulative generator of each stage (``z -> centred output``).
    stage_intercepts_ : list of ndarray
        Data mean at each stage's resolution.
    stage_resolutions_ : list of int
        Image height of each stage (``[n_features_in_]`` when not
        progressive).
    beta_d_ : float or list of float
        Discriminator penalty used (a list for progressive fits).
    n_components_ : int or list of int
        Rank of the generator (per stage when progressive).
    singular_values_ : ndarray of shape (`n_features_in_`,)
        Square roots of the eigenvalues of the data's (final-stage) second
        moment matrix.
    energy_ : float
        Generator energy :math:`\\mathbb{E}\\|g - \\mu\\|^2` (final stage).
    constraint_gap_ : float
        Certified discriminator constraint value minus ``beta_d``: 0 when the
        constraint holds with equality, negative when it is slack, positive
        when it is violated (quadratic: the spectral norm; ReLU: the largest
        value over the sampled cells).
    stage_constraint_gaps_ : list of float
        ``constraint_gap_`` of every stage.
    stage_energies_ : list of float
        Energy of every stage.
    latent_dim_ : int
        Dimension of the latent codes.
    n_iter_ : int
        Convex programs solved (1 for the closed forms).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column
        names.

    See Also
    --------
    sklearn.mixture.GaussianMixture : A likelihood-based generative model.

    Notes
    -----
    **Objective.** With the discriminator normalized to unit hidden weights
    and penalty :math:`\\beta_d\\sum_j|v_j|`, the inner maximum of the WGAN
    game is 0 when the moment constraint below holds and infinite
    otherwise, so training the generator is
    :math:`\\min_G \\mathbb{E}\\|g - \\mu\\|^2` subject to it (the energy of
    the generated samples around the data mean, :math:`\\mu = 0` without
    intercept; for a generator :math:`g = \\mu + b + B^\\top z` it is
    :math:`\\|b\\|^2 + \\|B\\|_F^2`).

    * Linear: :math:`\\|\\bar x - \\mathbb{E} g\\| \\le \\beta_d`; the optimum is
      :math:`B = 0`, :math:`b = (1 - \\beta_d/\\|\\bar x - \\mu\\|)_+(\\bar x - \\mu)`.
    * Quadratic: :math:`\\|C_x - \\mathbb{E}(g-\\mu)(g-\\mu)^\\top\\|_2 \\le \\beta_d`;
      closed form :func:`~skconvex.models.gan.quadratic_generator` (ProCoGAN's formula), equal to
      the SDP lower bound. With ``n_components=k``,
      :math:`\\beta_d = \\lambda_{k+1}` and the constraint is tight.
    * ReLU (our formulation; the paper's convex-concave statement could not
      be consulted): on the cell of a sampled gate :math:`h_p` the
      discriminator value is linear in :math:`u`; fixing the generated
      samples' pattern :math:`D^g_p` makes it linear in the generator too,
      and dualizing the data cone gives the SOCP
      :math:`\\|c_p(G) + \\tilde X^\\top S_p\\lambda_p\\| \\le \\beta_d`,
      :math:`\\lambda_p \\ge 0` (both signs), minimized over the generator on
      a fixed whitened latent sample (starting from the Gaussian fit of
      the data). Patterns are recomputed and the SOCP re-solved; every
      iterate is checked against the true ReLU constraint on each sampled
      cell of the arrangement of data and generated samples
      (:func:`~skconvex.programs.wgan.relu_cell_values`), and the accepted generator of least
      energy is returned, so ``constraint_gap_ <= tol * beta_d`` is a
      certificate on those cells. The energy is that of a local choice of
      patterns, not a certified global optimum.

    **Progressive training** (quadratic only). Stage :math:`t` fits images
    downsampled to ``resolutions[t]`` by a closed-form linear map of its
    input: the previous stage's centred output upsampled by nearest
    neighbours, concatenated with the latent code. ProCoGAN's code feeds the
    upsampled output plus a bias column only; its rank then cannot grow
    from stage to stage (every stage is a linear map of the first), so
    requested ranks beyond it only invert rounding-level singular values.
    The latent skip keeps each stage's closed form and lets the rank grow;
    since the previous output's directions dominate the stage input, each
    stage's leading components are driven by the latent directions of the
    previous stage (coherent samples across resolutions). The final
    generated distribution is the same as a direct fit of the final rank.

    ``score(X)`` is minus the Fréchet distance between the Gaussian fit of
    ``X`` (biased covariance) and the generated distribution, which for a
    linear generator of Gaussian codes is exactly Gaussian.

    References
    ----------
    A. Sahiner, T. Ergen, B. Ozturkler, B. Bartan, J. Pauly, M. Mardani and
    M. Pilanci. Hidden convexity of Wasserstein GANs: interpretable
    generative models with closed-form solutions. ICLR 2022,
    arXiv:2107.05680.

    Examples
    --------
    >>> import numpy as np
    >>> from skconvex import ConvexWGAN
    >>> X = np.random.default_rng(0).standard_normal((200, 5)) * [3, 2, 1, 0.5, 0.1]
    >>> gan = ConvexWGAN(n_components=2).fit(X)
    >>> gan.sample(4, random_state=0).shape
    (4, 5)
    >>> round(gan.constraint_gap_, 12) == 0
    True
    """

    _parameter_constraints = {
        "discriminator": [StrOptions({"quadratic", "linear", "relu"})],
        "n_components": [None, Interval(Integral, 1, None, closed="left")],
        "beta_d": [None, Interval(Real, 0, None, closed="left")],
        "latent_dim": [None, Interval(Integral, 1, None, closed="left")],
        "fit_intercept": ["boolean"],
        "progressive": ["boolean"],
        "image_shape": [None, tuple, list],
        "resolutions": [None, list, tuple],
        "stage_components": [None, list, tuple],
        "n_arrangements": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "solver_options": [None, dict],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        discriminator="quadratic",
        *,
        n_components=None,
        beta_d=None,
        latent_dim=None,
        fit_intercept=True,
        progressive=False,
        image_shape=None,
        resolutions=None,
        stage_components=None,
        n_arrangements=50,
        max_iter=10,
        tol=1e-6,
        solver_options=None,
        random_state=None,
    ):
        self.discriminator = discriminator
        self.n_components = n_components
        self.beta_d = beta_d
        self.latent_dim = latent_dim
        self.fit_intercept = fit_intercept
        self.progressive = progressive
        self.image_shape = image_shape
        self.resolutions = resolutions
        self.stage_components = stage_components
        self.n_arrangements = n_arrangements
        self.max_iter = max_iter
        self.tol = tol
        self.solver_options = solver_options
        self.random_state = random_state

    # ------------------------------------------------------------------ fit
    @_unfitted_on_interrupt
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the generator to the data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (flattened images when ``progressive``).
        y : None
            Ignored.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
        X64 = np.asarray(X, dtype=np.float64)
        d = X.shape[1]
        if self.n_components is not None and self.beta_d is not None:
            raise ValueError(
                "Set at most one of n_components and beta_d (both fix the discriminator "
                f"penalty); got n_components={self.n_components!r}, beta_d={self.beta_d!r}."
            )
        self.latent_dim_ = d if self.latent_dim is None else int(self.latent_dim)
        heights = self._stage_heights(d)
        self.n_iter_ = 1
        if self.discriminator == "quadratic":
            self._fit_quadratic(X64, heights)
        else:
            if self.progressive:
                raise ValueError(
                    "progressive=True needs discriminator='quadratic' (the stages are "
                    f"closed forms); got discriminator={self.discriminator!r}."
                )
            self._fit_moment_free(X64)
        self.coef_ = self.stage_coef_[-1].astype(X.dtype, copy=False)
        return self

    def _stage_heights(self, d):
        """Image heights of the stages (validated), or ``[None]`` for one flat stage."""
        if not self.progressive:
            for name in ("resolutions", "stage_components"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name} needs progressive=True; got {name}={getattr(self, name)!r}.")
            return [None]
        if self.image_shape is None:
            raise ValueError("progressive=True needs image_shape=(height, width[, channels]).")
        shape = tuple(self.image_shape)
        if len(shape) not in (2, 3) or not all(isinstance(v, Integral) and v > 0 for v in shape):
            raise ValueError(f"image_shape must be 2 or 3 positive ints, got {self.image_shape!r}.")
        H, W, C = _image_dims(shape)
        if H * W * C != d:
            raise ValueError(
                f"image_shape={self.image_shape!r} has {H * W * C} values per image but X "
                f"has {d} features."
            )
        if self.beta_d is not None:
            raise ValueError(
                "progressive=True sets the penalty of each stage from its rank; use "
                "stage_components (or n_components) instead of beta_d."
            )
        if self.resolutions is None:
            heights = [H]
            while heights[0] % 2 == 0 and heights[0] > 2 and (W * heights[0] // 2) % H == 0:
                heights.insert(0, heights[0] // 2)
        else:
            heights = [int(r) for r in self.resolutions]
        ok = heights[-1] == H and all(
            a > 0 and b % a == 0 and b > a and H % a == 0 and (W * a) % H == 0
            for a, b in zip(heights[:-1], heights[1:])
        )
        if not ok or heights[0] <= 0:
            raise ValueError(
                f"resolutions must increase, each dividing the next and the height {H} "
                f"(with an integer width), and end at {H}; got {self.resolutions!r}."
            )
        if self.stage_components is not None and len(self.stage_components) != len(heights):
            raise ValueError(
                f"stage_components must have one rank per stage ({len(heights)}); got "
                f"{self.stage_components!r}."
            )
        if self.stage_components is not None and not all(
            isinstance(k, Integral) and k >= 1 for k in self.stage_components
        ):
            raise ValueError(f"stage_components must be positive ints, got {self.stage_components!r}.")
        return heights

    def _moments(self, X):
        mean = X.mean(axis=0) if self.fit_intercept else np.zeros(X.shape[1])
        centred = X - mean
        return mean, centred.T @ centred / len(X)

    def _fit_quadratic(self, X, heights):
        k_lat = self.latent_dim_
        coefs, means, weights, gaps, energies, betas, ranks = [], [], [], [], [], [], []
        A = np.eye(k_lat)
        for t, height in enumerate(heights):
            Xt = X if height is None else _downsample(X, self.image_shape, height)
            mean, C = self._moments(Xt)
            if t > 0:
                factor = height // heights[t - 1]
                A = np.hstack([_upsample(coefs[-1], self.image_shape, heights[t - 1], factor), np.eye(k_lat)])
            k = self.n_components if self.stage_components is None else self.stage_components[t]
            W, info = quadratic_generator(C, A, n_components=k, beta_d=self.beta_d)
            explicit = k is not None or self.beta_d is not None
            if explicit and info["n_components"] < info["requested"]:
                warnings.warn(
                    f"Stage {t} needs rank {info['requested']} but its input has rank "
                    f"{info['n_components']} (latent_dim={k_lat}); the generator keeps "
                    f"{info['n_components']} components"
                    + (" and the discriminator constraint is violated." if self.beta_d is not None else "."),
                    UserWarning,
                )
            weights.append(W)
            coefs.append(A @ W)
            means.append(mean)
            gaps.append(info["constraint_gap"])
            energies.append(info["energy"])
            betas.append(info["beta_d"])
            ranks.append(info["n_components"])
        self._store(coefs, means, weights, gaps, energies, heights, X.shape[1])
        self.singular_values_ = np.sqrt(np.maximum(info["eigenvalues"], 0))
        self.beta_d_ = betas if self.progressive else betas[0]
        self.n_components_ = ranks if self.progressive else ranks[0]

    def _store(self, coefs, means, weights, gaps, energies, heights, d):
        self.generator_weights_ = weights
        self.stage_coef_ = coefs
        self.stage_intercepts_ = means
        self.stage_resolutions_ = [d] if heights == [None] else list(heights)
        self.stage_constraint_gaps_ = gaps
        self.stage_energies_ = energies
        self.constraint_gap_ = gaps[-1]
        self.energy_ = energies[-1]
        self.mean_ = means[-1]
        self.intercept_ = means[-1].copy()

    def _default_beta(self, centred):
        return 0.1 * float(np.sqrt(np.mean(np.sum(centred**2, axis=1))))

    def _fit_moment_free(self, X):
        """Linear (closed form) and ReLU (iterated SOCP) discriminators."""
        mean, C = self._moments(X)
        centred = X - mean
        beta = self._default_beta(X - X.mean(axis=0)) if self.beta_d is None else float(self.beta_d)
        lam, _ = _sym_eig(C)
        self.singular_values_ = np.sqrt(np.maximum(lam, 0))
        k_lat, d = self.latent_dim_, X.shape[1]
        if self.discriminator == "linear":
            target = centred.mean(axis=0)
            norm = float(np.linalg.norm(target))
            shift = target * max(0.0, 1 - beta / norm) if norm > 0 else target
            B = np.zeros((k_lat, d))
            gap = float(np.linalg.norm(target - shift)) - beta
            energy = float(shift @ shift)
            self._store([B], [mean + shift], [B.copy()], [gap], [energy], [None], d)
            self.mean_ = mean
            self.beta_d_ = beta
            self.n_components_ = 0
            return
        self._fit_relu(centred, mean, C, beta)

    def _fit_relu(self, Xc, mean, C, beta):
        from ..arrangements import sample_arrangements

        rng = check_random_state(self.random_state)
        n, d = Xc.shape
        k_lat = self.latent_dim_
        m = max(n, k_lat + 1)
        Z = _whitened_latent(rng, m, k_lat)
        # Start from the Gaussian fit of the data (quadratic closed form, beta 0).
        W, _ = quadratic_generator(C, np.eye(k_lat))
        b = np.zeros(d)
        G = Z @ W
        arr = sample_arrangements(
            np.vstack([_lift(Xc), _lift(G)]),
            self.n_arrangements,
            random_state=rng.randint(np.iinfo(np.int32).max),
        )
        gates = arr.gates
        scale = max(beta, np.finfo(np.float64).tiny)
        best, n_solved, converged = None, 0, False
        for _ in range(self.max_iter):
            Dg = _lift(G) @ gates >= 0
            solution = _relu_socp(Xc, Z, Dg, gates, beta, self.solver_options)
            n_solved += 1
            if solution is None:
                break
            W, b, _ = solution
            G = Z @ W + b
            gap = float(np.max(relu_cell_values(Xc, G, gates))) - beta
            energy = float(np.sum(W**2) + b @ b)
            improved = gap <= self.tol * scale and (
                best is None or energy < best[0] * (1 - self.tol)
            )
            if improved:
                best = (energy, W, b, gap)
            if np.array_equal(_lift(G) @ gates >= 0, Dg) or (best is not None and not improved):
                converged = best is not None
                break
        if best is None:
            raise ValueError(
                "The ReLU-discriminator programs found no generator meeting the constraint "
                f"on the sampled cells (beta_d={beta:.3g}); increase beta_d."
            )
        energy, W, b, gap = best
        if not converged:
            warnings.warn(
                f"ConvexWGAN(discriminator='relu') stopped after {n_solved} convex programs "
                "while the generator's energy was still decreasing; the returned generator "
                "meets the constraint on the sampled cells. Increase max_iter (or beta_d) "
                "for a lower energy.",
                ConvergenceWarning,
            )
        energy = float(np.sum(W**2) + b @ b)
        self._store([W], [mean + b], [W.copy()], [gap], [energy], [None], d)
        self.mean_ = mean
        self.beta_d_ = beta
        self.n_components_ = int(np.linalg.matrix_rank(W)) if W.size else 0
        self.n_iter_ = max(n_solved, 1)
        self.gates_ = gates

    # ------------------------------------------------------------ generate
    def _check_latent(self, Z):
        check_is_fitted(self)
        if self.latent_dim_ == self.n_features_in_:
            return validate_data(self, Z, dtype=[np.float64, np.float32], reset=False)
        Z = check_array(Z, dtype=[np.float64, np.float32])
        if Z.shape[1] != self.latent_dim_:
            raise ValueError(
                f"Z has {Z.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.latent_dim_} latent features as input."
            )
        return Z

    def predict(self, Z):
        """Map latent codes to generated samples.

        Parameters
        ----------
        Z : array-like of shape (n_samples, `latent_dim_`)
            Latent codes (standard normal for samples of the fitted
            distribution). When ``latent_dim_ == n_features_in_`` they are
            validated like data.

        Returns
        -------
        samples : ndarray of shape (n_samples, `n_features_in_`)
            ``intercept_ + Z @ coef_``.
        """
        Z = self._check_latent(Z)
        return Z @ self.coef_.astype(Z.dtype, copy=False) + self.intercept_.astype(Z.dtype)

    def transform(self, Z):
        """Map latent codes to generated samples (same as :meth:`predict`).

        Parameters
        ----------
        Z : array-like of shape (n_samples, `latent_dim_`)
            Latent codes.

        Returns
        -------
        samples : ndarray of shape (n_samples, `n_features_in_`)
            Generated samples.
        """
        return self.predict(Z)

    def sample(self, n_samples=1, random_state=None):
        """Draw samples from the generator.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples.
        random_state : int, RandomState instance or None, default=None
            Seed of the latent codes; None uses the estimator's
            ``random_state`` (so an integer ``random_state`` makes repeated
            calls identical).

        Returns
        -------
        samples : ndarray of shape (n_samples, `n_features_in_`)
            Generated samples.
        """
        check_is_fitted(self)
        if not isinstance(n_samples, Integral) or isinstance(n_samples, bool) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive int, got {n_samples!r}.")
        rng = check_random_state(self.random_state if random_state is None else random_state)
        Z = rng.standard_normal((int(n_samples), self.latent_dim_))
        return Z @ self.coef_.astype(np.float64) + self.intercept_

    def generated_moments(self):
        """Mean and covariance of the generated distribution.

        Returns
        -------
        mean : ndarray of shape (`n_features_in_`,)
            ``intercept_``.
        covariance : ndarray of shape (`n_features_in_`, `n_features_in_`)
            ``coef_.T @ coef_`` (codes are standard normal).
        """
        check_is_fitted(self)
        B = np.asarray(self.coef_, dtype=np.float64)
        return np.asarray(self.intercept_, dtype=np.float64), B.T @ B

    def score(self, X, y=None):
        """Return minus the Fréchet distance between the Gaussian fit of ``X`` and the generator.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.
        y : None
            Ignored.

        Returns
        -------
        score : float
            :math:`-\\|\\bar x - \\mu_g\\|^2 - \\operatorname{tr}(C_x + C_g -
            2(C_x^{1/2}C_gC_x^{1/2})^{1/2})` (higher is better, 0 at best).
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        X = np.asarray(X, dtype=np.float64)
        mean = X.mean(axis=0)
        centred = X - mean
        mu_g, C_g = self.generated_moments()
        return -frechet_distance(mean, centred.T @ centred / len(X), mu_g, C_g)

    def get_feature_names_out(self, input_features=None):
        """Return the names of the generated features (the data's).

        Parameters
        ----------
        input_features : array-like of str, default=None
            Ignored beyond validation: the outputs are in the data space.

        Returns
        -------
        names : ndarray of str
            ``feature_names_in_`` if set, else ``x0, x1, ...``.
        """
        check_is_fitted(self)
        if hasattr(self, "feature_names_in_"):
            return np.asarray(self.feature_names_in_, dtype=object)
        return np.asarray([f"x{i}" for i in range(self.n_features_in_)], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        return tags
