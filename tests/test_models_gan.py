import warnings

import numpy as np
import pytest
import scipy.linalg
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from skconvex import ConvexWGAN
from skconvex.models.gan import frechet_distance
from skconvex.programs.wgan import relu_cell_values


@pytest.fixture
def gaussian_data():
    rng = np.random.default_rng(7)
    A = rng.standard_normal((6, 6)) * [3.0, 2.0, 1.5, 1.0, 0.5, 0.2]
    return rng.standard_normal((200, 6)) @ A.T + 2.0


@pytest.fixture(scope="module")
def digits():
    return load_digits().data[:300]


def _moments(X):
    mean = X.mean(axis=0)
    return mean, (X - mean).T @ (X - mean) / len(X)


def _sdp_energy(C, beta):
    """min tr S s.t. ||C - S||_2 <= beta, S >= 0, by CVXPY (the lower bound)."""
    cp = pytest.importorskip("cvxpy")
    d = len(C)
    S = cp.Variable((d, d), PSD=True)
    prob = cp.Problem(cp.Minimize(cp.trace(S)), [cp.lambda_max(C - S) <= beta, cp.lambda_max(S - C) <= beta])
    prob.solve(solver="CLARABEL")
    return prob.value, S.value


# ----------------------------------------------------------------- quadratic discriminator


@pytest.mark.parametrize("params", [dict(n_components=3), dict(beta_d=1.0), dict()])
def test_quadratic_closed_form_meets_the_constraint_and_the_sdp_bound(gaussian_data, params):
    X = gaussian_data
    gan = ConvexWGAN(**params).fit(X)
    mean, C = _moments(X)
    mu_g, C_g = gan.generated_moments()
    np.testing.assert_allclose(mu_g, mean, rtol=1e-12)
    beta = gan.beta_d_
    lam = np.linalg.eigvalsh(C)[::-1]
    if "n_components" in params:
        np.testing.assert_allclose(beta, lam[3], rtol=1e-12)
    # the discriminator constraint holds with equality (unless it is void)
    np.testing.assert_allclose(np.linalg.norm(C - C_g, 2), max(beta, 0.0), atol=1e-10 * lam[0])
    assert abs(gan.constraint_gap_) <= 1e-10 * lam[0]
    # and the generator's energy is the SDP lower bound
    energy = np.trace(C_g)
    np.testing.assert_allclose(gan.energy_, energy, rtol=1e-12)
    np.testing.assert_allclose(energy, np.sum(np.maximum(lam - beta, 0)), rtol=1e-10, atol=1e-12)
    sdp_value, S = _sdp_energy(C, beta)
    np.testing.assert_allclose(energy, sdp_value, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(C_g, S, atol=1e-4 * lam[0])
    assert np.linalg.matrix_rank(gan.coef_, tol=1e-8 * lam[0]) == gan.n_components_


def test_sampled_moments_match_the_generator(gaussian_data):
    gan = ConvexWGAN(n_components=4, random_state=0).fit(gaussian_data)
    samples = gan.sample(20000, random_state=1)
    mean, C = _moments(samples)
    mu_g, C_g = gan.generated_moments()
    scale = np.sqrt(np.diag(C_g).max())
    np.testing.assert_allclose(mean, mu_g, atol=0.05 * scale)
    np.testing.assert_allclose(C, C_g, atol=0.05 * scale**2)


def test_uncentred_moments_without_intercept(gaussian_data):
    X = gaussian_data
    gan = ConvexWGAN(n_components=2, fit_intercept=False).fit(X)
    M = X.T @ X / len(X)
    mu_g, C_g = gan.generated_moments()
    np.testing.assert_allclose(mu_g, 0)
    lam = np.linalg.eigvalsh(M)[::-1]
    np.testing.assert_allclose(np.linalg.norm(M - C_g, 2), lam[2], rtol=1e-10)


def test_linear_discriminator_matches_the_mean_only(gaussian_data):
    X = gaussian_data
    mean = X.mean(axis=0)
    gan = ConvexWGAN("linear", beta_d=1.0, fit_intercept=False).fit(X)
    # every sample is the soft-thresholded mean: a linear critic cannot see variance
    np.testing.assert_allclose(gan.intercept_, (1 - 1.0 / np.linalg.norm(mean)) * mean, rtol=1e-12)
    samples = gan.sample(5, random_state=0)
    np.testing.assert_allclose(samples, np.tile(gan.intercept_, (5, 1)), rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(mean - gan.intercept_), 1.0, rtol=1e-12)
    assert abs(gan.constraint_gap_) < 1e-12
    centred = ConvexWGAN("linear").fit(X)
    np.testing.assert_allclose(centred.intercept_, mean, rtol=1e-12)
    assert centred.constraint_gap_ < 0


# ----------------------------------------------------------------- generator API


def test_sampling_is_reproducible(gaussian_data):
    gan = ConvexWGAN(n_components=3, random_state=5).fit(gaussian_data)
    a, b = gan.sample(7, random_state=0), gan.sample(7, random_state=0)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, gan.sample(7, random_state=1))
    # None falls back to the estimator's random_state
    np.testing.assert_array_equal(gan.sample(7), gan.sample(7))
    np.testing.assert_array_equal(gan.sample(7), gan.sample(7, random_state=5))
    Z = np.random.RandomState(0).standard_normal((7, gan.latent_dim_))
    np.testing.assert_allclose(gan.predict(Z), gan.intercept_ + Z @ gan.coef_, rtol=1e-12)
    np.testing.assert_allclose(gan.transform(Z), gan.predict(Z))
    np.testing.assert_allclose(a, gan.predict(Z), rtol=1e-12)


def test_score_is_minus_the_frechet_distance(gaussian_data):
    X = gaussian_data
    full = ConvexWGAN().fit(X)
    assert abs(full.score(X)) < 1e-8 * np.trace(_moments(X)[1])
    gan = ConvexWGAN(n_components=2).fit(X)
    X_test = X[:50] + 0.3
    mean, C = _moments(X_test)
    mu_g, C_g = gan.generated_moments()
    cross = scipy.linalg.sqrtm(C @ C_g)
    expected = np.sum((mean - mu_g) ** 2) + np.trace(C + C_g - 2 * np.real(cross))
    np.testing.assert_allclose(-gan.score(X_test), expected, rtol=1e-6)
    np.testing.assert_allclose(frechet_distance(mean, C, mu_g, C_g), expected, rtol=1e-6)
    assert gan.score(X) > ConvexWGAN(n_components=1).fit(X).score(X)


def test_latent_dimension_other_than_the_data(gaussian_data):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # None means "as many as the latent space allows"
        gan = ConvexWGAN(latent_dim=2).fit(gaussian_data)
    assert gan.coef_.shape == (2, 6) and gan.n_components_ == 2
    assert gan.predict(np.zeros((3, 2))).shape == (3, 6)
    with pytest.raises(ValueError, match="expecting 2 latent features"):
        gan.predict(np.zeros((3, 6)))


def test_latent_dimension_too_small_for_beta_warns_and_reports_the_gap(gaussian_data):
    with pytest.warns(UserWarning, match="violated"):
        gan = ConvexWGAN(latent_dim=2, beta_d=0.01).fit(gaussian_data)
    lam = np.linalg.eigvalsh(_moments(gaussian_data)[1])[::-1]
    np.testing.assert_allclose(gan.constraint_gap_, lam[2] - 0.01, rtol=1e-9)


# ----------------------------------------------------------------- progressive


def _upsample(images, shape, factor):
    h, w = shape
    return images.reshape(-1, h, w).repeat(factor, axis=1).repeat(factor, axis=2).reshape(len(images), -1)


def test_progressive_stages_are_closed_forms(digits):
    X = digits
    gan = ConvexWGAN(progressive=True, image_shape=(8, 8), stage_components=[3, 8, 20]).fit(X)
    assert gan.stage_resolutions_ == [2, 4, 8] and gan.n_components_ == [3, 8, 20]
    Z = np.random.default_rng(0).standard_normal((5, 64))
    h = Z @ gan.generator_weights_[0]
    for t, res in enumerate(gan.stage_resolutions_):
        data = X.reshape(-1, res, 8 // res, res, 8 // res).mean(axis=(2, 4)).reshape(len(X), -1)
        mean, C = _moments(data)
        if t > 0:
            h = np.c_[_upsample(h, (res // 2, res // 2), 2), Z] @ gan.generator_weights_[t]
        np.testing.assert_allclose(h, Z @ gan.stage_coef_[t], rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(gan.stage_intercepts_[t], mean, rtol=1e-12)
        C_g = gan.stage_coef_[t].T @ gan.stage_coef_[t]
        lam = np.linalg.eigvalsh(C)[::-1]
        k = gan.n_components_[t]
        np.testing.assert_allclose(gan.beta_d_[t], lam[k], rtol=1e-10)
        np.testing.assert_allclose(np.linalg.norm(C - C_g, 2), lam[k], rtol=1e-8)
        assert abs(gan.stage_constraint_gaps_[t]) <= 1e-9 * lam[0]
        np.testing.assert_allclose(gan.stage_energies_[t], np.sum(lam[:k] - lam[k]), rtol=1e-9)
        # the generated covariance is the thresholded one (its energy is the SDP bound)
        np.testing.assert_allclose(np.trace(C_g), np.sum(lam[:k] - lam[k]), rtol=1e-9)
    np.testing.assert_allclose(gan.predict(Z), h + gan.intercept_, rtol=1e-9)
    # the final distribution is that of a direct fit of the final rank
    direct = ConvexWGAN(n_components=20).fit(X)
    for a, b in zip(direct.generated_moments(), gan.generated_moments()):
        np.testing.assert_allclose(a, b, atol=1e-9 * np.abs(a).max())


def test_progressive_rank_capped_by_the_latent_dimension(digits):
    with pytest.warns(UserWarning, match="rank"):
        gan = ConvexWGAN(progressive=True, image_shape=(8, 8), latent_dim=5, stage_components=[3, 8, 20]).fit(digits)
    assert gan.n_components_ == [3, 5, 5]
    assert max(abs(g) for g in gan.stage_constraint_gaps_) < 1e-9 * np.trace(_moments(digits)[1])


# ----------------------------------------------------------------- ReLU discriminator


def test_relu_cell_values_are_the_exact_maxima_on_each_cell():
    cp = pytest.importorskip("cvxpy")
    rng = np.random.default_rng(3)
    X, G = rng.standard_normal((12, 2)), rng.standard_normal((10, 2)) * 0.5 + 0.3
    gates = rng.standard_normal((3, 6))
    values = relu_cell_values(X, G, gates)
    H = np.vstack([np.c_[X, np.ones(12)], np.c_[G, np.ones(10)]])
    a = np.r_[np.full(12, 1 / 12), np.full(10, -1 / 10)]
    for p in range(6):
        S = np.where(H @ gates[:, p] >= 0, 1.0, -1.0)
        u = cp.Variable(3)
        best = 0.0
        for sign in (1, -1):
            # on the cell, the critic's value is linear: sum a_i (h_i u)_+ = sum a_i D_i h_i u
            c = H.T @ (a * (S > 0))
            prob = cp.Problem(cp.Maximize(sign * c @ u), [cp.multiply(S, H @ u) >= 0, cp.norm(u) <= 1])
            prob.solve(solver="CLARABEL")
            best = max(best, prob.value)
        np.testing.assert_allclose(values[p], best, rtol=1e-6, atol=1e-8)
        g = gates[:, p] / np.linalg.norm(gates[:, p])
        at_gate = abs(a @ np.maximum(H @ g, 0))
        assert values[p] >= at_gate - 1e-12


def test_relu_discriminator_constraint_is_certified():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((30, 2)) * [2.0, 0.5] + [1.0, 0.0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gan = ConvexWGAN("relu", n_arrangements=20, random_state=0).fit(X)
    assert gan.n_iter_ >= 1
    assert gan.constraint_gap_ <= gan.tol * gan.beta_d_
    np.testing.assert_allclose(gan.energy_, np.sum(gan.coef_**2) + np.sum((gan.intercept_ - gan.mean_) ** 2))
    # the energy is below that of the Gaussian fit, which the program starts from
    assert gan.energy_ <= np.trace(_moments(X)[1]) * (1 + 1e-9)
    assert np.isfinite(gan.score(X))


# ----------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(n_components=2, beta_d=1.0), "at most one"),
        (dict(progressive=True), "image_shape"),
        (dict(progressive=True, image_shape=(4, 4)), "values per image"),
        (dict(progressive=True, image_shape=(8, 8), resolutions=[3, 8]), "resolutions"),
        (dict(progressive=True, image_shape=(8, 8), stage_components=[2, 3]), "stage_components"),
        (dict(progressive=True, image_shape=(8, 8), beta_d=1.0), "beta_d"),
        (dict(discriminator="relu", progressive=True, image_shape=(8, 8)), "quadratic"),
        (dict(resolutions=[2, 4]), "progressive"),
        (dict(discriminator="cubic"), "discriminator"),
        (dict(n_components=0), "n_components"),
        (dict(beta_d=-1.0), "beta_d"),
    ],
)
def test_bad_parameters_are_rejected(digits, params, match):
    with pytest.raises(ValueError, match=match):
        ConvexWGAN(**params).fit(digits[:20])


def test_bad_inputs_are_rejected(gaussian_data):
    gan = ConvexWGAN().fit(gaussian_data)
    with pytest.raises(ValueError, match="n_samples"):
        gan.sample(0)
    with pytest.raises(ValueError, match="features"):
        gan.score(gaussian_data[:, :3])
    with pytest.raises(ValueError, match="NaN"):
        ConvexWGAN().fit(np.full((5, 2), np.nan))
    with pytest.raises(ValueError, match="minimum of 2"):
        ConvexWGAN().fit(np.ones((1, 3)))
