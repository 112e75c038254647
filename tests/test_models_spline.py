"""ConvexSplineRegressor: the exact 1-D program (Lasso over ramps) and its network."""

import numpy as np
import pytest

from skconvex import ConvexSplineRegressor
from skconvex.programs.ramps import (
    RampOperator,
    ramp_dictionary,
    ramp_features,
    spline_problem,
)
from skconvex.solvers.spline import spline_qp


@pytest.fixture
def wave():
    rng = np.random.default_rng(0)
    x = np.sort(rng.uniform(-3, 3, 40))
    return x[:, None], np.sin(x) + 0.1 * rng.standard_normal(40)


def test_ramp_operator_matches_dense_features():
    rng = np.random.default_rng(0)
    # Ties, several features, and zero-weight rows that fall between knots.
    X = np.c_[rng.integers(0, 7, 40).astype(float), rng.standard_normal(40)]
    w = rng.uniform(size=40)
    w[:5] = 0
    op = RampOperator(X, w)
    F = ramp_features(X, op.knots, op.features, op.signs)
    z = rng.standard_normal(op.coef_shape[1])
    r = rng.standard_normal(40)
    np.testing.assert_allclose(op.forward(z.reshape(op.coef_shape))[:, 0], F @ z, atol=1e-12)
    np.testing.assert_allclose(op.adjoint(r[:, None]).ravel(), F.T @ r, atol=1e-12)
    knots, features, signs = ramp_dictionary(X, w)
    assert set(knots[features == 0]) <= set(X[w > 0, 0])


def test_spline_program_equals_dense_lasso(wave):
    cp = pytest.importorskip("cvxpy")
    x, y = wave
    n, alpha = len(y), 0.01
    knots, features, signs = ramp_dictionary(x)
    F = ramp_features(x, knots, features, signs)
    z, b = cp.Variable(F.shape[1]), cp.Variable()
    dense = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(F @ z + b - y) / n + alpha * cp.norm1(z)))
    dense.solve(solver="CLARABEL", tol_gap_rel=1e-12, tol_gap_abs=1e-14, tol_feas=1e-12)
    for solver in ("clarabel", "osqp"):
        res = spline_qp(spline_problem(x, y, np.full(n, 1 / n), alpha), solver=solver)
        # Both solvers are accurate to ~1e-10 relative; the certified
        # interval of ours must contain the reference optimum.
        assert res.dual_objective <= dense.value + 1e-10 * dense.value
        assert dense.value <= res.objective + 1e-10 * dense.value
        assert res.gap <= 1e-6 * res.objective


def test_objective_equals_weight_decay_of_recovered_network(wave):
    x, y = wave
    reg = ConvexSplineRegressor(alpha=1e-2).fit(x, y)
    np.testing.assert_allclose(reg.weight_decay_objective(x, y), reg.objective_, rtol=1e-10)
    w, c, a = reg.hidden_weights_[:, 0], reg.hidden_intercepts_, reg.output_weights_[:, 0]
    out = np.maximum(np.outer(x[:, 0], w) + c, 0) @ a + reg.intercept_
    np.testing.assert_allclose(out, reg.predict(x), rtol=1e-12, atol=1e-12)
    # Knots are data points, and each neuron is a ramp starting there.
    assert set(np.round(reg.knots_, 12)) <= set(np.round(x[:, 0], 12))
    np.testing.assert_allclose(-c / w, reg.knots_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.abs(w) * np.abs(a), np.abs(reg.coef_), rtol=1e-10)
    assert reg.dual_gap_ <= 1e-6 * reg.objective_


def test_spline_is_piecewise_linear_with_kinks_at_knots(wave):
    x, y = wave
    reg = ConvexSplineRegressor(alpha=1e-2).fit(x, y)
    grid = np.linspace(-3.5, 3.5, 7001)
    f = reg.predict(grid[:, None])
    second = np.abs(np.diff(f, 2))
    near = np.min(np.abs(grid[1:-1, None] - reg.knots_[None, :]), axis=1) <= 1.5e-3
    assert second[~near].max() <= 1e-10
    assert second[near].max() > 1e-6


def _gd_network_objective(x, y, alpha, width, seed, steps=3000, lr=0.01):
    """Weight-decay objective (biases free) reached by full-batch Adam on a 1-D network."""
    rng = np.random.default_rng(seed)
    w, c, a = rng.standard_normal(width), rng.uniform(-3, 3, width), 0.1 * rng.standard_normal(width)
    b = 0.0
    params = [w, c, a, np.array([b])]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    n = len(y)

    def objective(w, c, a, b):
        H = np.outer(x, w) + c
        r = np.maximum(H, 0) @ a + b[0] - y
        return 0.5 * np.mean(r**2) + 0.5 * alpha * (w @ w + a @ a), H, r

    for t in range(1, steps + 1):
        w, c, a, b = params
        _, H, r = objective(w, c, a, b)
        act = H > 0
        g = r / n
        grads = [
            ((g[:, None] * act) * x[:, None]).sum(0) * a + alpha * w,
            (g[:, None] * act).sum(0) * a,
            np.maximum(H, 0).T @ g + alpha * a,
            np.array([g.sum()]),
        ]
        for i, gr in enumerate(grads):
            m[i] = 0.9 * m[i] + 0.1 * gr
            v[i] = 0.999 * v[i] + 0.001 * gr**2
            params[i] = params[i] - lr * (m[i] / (1 - 0.9**t)) / (np.sqrt(v[i] / (1 - 0.999**t)) + 1e-12)
    return objective(*params)[0]


def test_no_trained_network_beats_the_certified_optimum(wave):
    """Knots anywhere, any width: the objective stays above objective_ - dual_gap_."""
    x, y = wave
    reg = ConvexSplineRegressor(alpha=1e-2).fit(x, y)
    alpha = 1e-2 * np.std(y)
    for seed in range(3):
        value = _gd_network_objective(x[:, 0], y, alpha, width=30, seed=seed)
        assert value >= reg.objective_ - reg.dual_gap_


def test_solvers_agree(wave):
    x, y = wave
    fits = [ConvexSplineRegressor(alpha=1e-2, solver=s).fit(x, y) for s in ("clarabel", "osqp", "fista")]
    lower = max(f.objective_ - f.dual_gap_ for f in fits)
    assert lower <= min(f.objective_ for f in fits) * (1 + 1e-12)
    for f in fits[1:]:
        np.testing.assert_allclose(f.objective_, fits[0].objective_, rtol=1e-6)


def test_weights_equal_repetition(wave):
    x, y = wave
    w = np.r_[np.full(20, 2.0), np.ones(20)]
    a = ConvexSplineRegressor(alpha=1e-2).fit(x, y, sample_weight=w)
    b = ConvexSplineRegressor(alpha=1e-2).fit(np.r_[x[:20], x], np.r_[y[:20], y])
    np.testing.assert_allclose(a.predict(x), b.predict(x), rtol=1e-6, atol=1e-7)
    zero = np.r_[np.zeros(5), np.ones(35)]
    c = ConvexSplineRegressor(alpha=1e-2).fit(x, y, sample_weight=zero)
    d = ConvexSplineRegressor(alpha=1e-2).fit(x[5:], y[5:])
    np.testing.assert_allclose(c.predict(x), d.predict(x), rtol=1e-6, atol=1e-7)


def test_additive_model_with_several_features():
    rng = np.random.default_rng(1)
    X = rng.uniform(-2, 2, (60, 2))
    y = np.abs(X[:, 0]) + np.maximum(X[:, 1], 0)
    reg = ConvexSplineRegressor(alpha=1e-3).fit(X, y)
    # f(x1, x2) - f(x1', x2) does not depend on x2.
    g = np.linspace(-2, 2, 9)
    A = reg.predict(np.c_[np.full(9, 0.3), g]) - reg.predict(np.c_[np.full(9, -1.1), g])
    np.testing.assert_allclose(A, A[0], atol=1e-10)
    np.testing.assert_allclose(reg.weight_decay_objective(X, y), reg.objective_, rtol=1e-10)
    assert set(reg.knot_features_) == {0, 1}
    assert reg.score(X, y) > 0.99


def test_large_alpha_gives_the_mean_and_bad_alpha_is_rejected(wave):
    x, y = wave
    reg = ConvexSplineRegressor(alpha=1e3).fit(x, y)
    assert reg.n_neurons_ == 0
    np.testing.assert_allclose(reg.predict(x), y.mean())
    with pytest.raises(ValueError, match="alpha"):
        ConvexSplineRegressor(alpha=-1.0).fit(x, y)
    with pytest.raises(ValueError, match="solver"):
        ConvexSplineRegressor(solver="lbfgs").fit(x, y)


def test_matrix_free_problem_certificate(wave):
    x, y = wave
    problem = spline_problem(x, y, np.full(40, 1 / 40), 0.01)
    zero = problem.zeros()
    cert, b, _ = problem.evaluate(zero)
    np.testing.assert_allclose(b, y.mean())
    assert cert.dual <= cert.primal
