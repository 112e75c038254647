"""CopositiveNet: SDP relaxation, Frank-Wolfe, soft-thresholded SVD, and their bounds."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from skconvex import (
    CopositiveNet,
    CopositiveNetClassifier,
    CopositiveNetRegressor,
    CuttingPlaneReLURegressor,
    enumerate_arrangements,
    sample_arrangements,
)
from skconvex.programs.datafits import SquaredError
from skconvex.programs.network import ReLUNetworkProblem
from skconvex.programs.oracles import PatternOracle
from skconvex.solvers.copositive import (
    copositive_sdp,
    relaxation_dual_bound,
    sdp_relaxation,
    spike_free_check,
    spike_free_closed_form,
)
from skconvex.solvers.cutting_plane import cutting_plane

cp = pytest.importorskip("cvxpy")


def _whitened(n=6, d=8, seed=5):
    Q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, n)))
    return Q.T  # orthonormal rows


def _synthetic(n=20, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 2))
    Y = np.c_[np.sin(2 * X[:, 0]) + 0.3 * X[:, 1], np.cos(X[:, 1]) - 0.5 * X[:, 0]]
    return X, Y


def _matrix_fractional_form(X, Y, s, alpha, patterns):
    """Reference: the relaxation in the n x n matrix-fractional form of Sahiner et al. (2021).

    min_{U_p in DNN(K_p), b} 1/2 tr((Y - 1 b^T)^T (S^-1 + (1/alpha) sum_p D_p X U_p X^T D_p)^-1 (Y - 1 b^T))
    + alpha/2 sum_p tr U_p, with the entrywise constraints on *all* rows of
    (2 D_p - I) X (not only the facets).
    """
    n, d = X.shape
    Us = [cp.Variable((d, d), PSD=True) for _ in range(patterns.shape[1])]
    b = cp.Variable((1, Y.shape[1]))
    M = np.diag(1 / s)
    cons = []
    for p, U in enumerate(Us):
        DX = patterns[:, p, None] * X
        M = M + (1 / alpha) * (DX @ U @ DX.T)
        G = (2 * patterns[:, p, None] - 1) * X
        cons.append(G @ U @ G.T >= 0)
    R = Y - np.ones((n, 1)) @ b
    obj = 0.5 * cp.matrix_frac(R, M) + 0.5 * alpha * sum(cp.trace(U) for U in Us)
    problem = cp.Problem(cp.Minimize(obj), cons)
    problem.solve(solver="CLARABEL")
    return problem.value


# ---------------------------------------------------------------- formulations
def test_per_block_relaxation_equals_matrix_fractional_form():
    """Our d x d per-cell SDP and the n x n matrix-fractional SDP have the same value (DER, checked)."""
    rng = np.random.default_rng(5)
    X = np.c_[rng.standard_normal((8, 2)), np.ones(8)]
    Y = rng.standard_normal((8, 2))
    s = rng.uniform(0.5, 1.5, 8)
    s /= s.sum()
    arr = sample_arrangements(X, 8, random_state=1)
    value, info = sdp_relaxation(ReLUNetworkProblem(X, Y, SquaredError(), s, 0.02), arr.patterns, gates=arr.gates)
    reference = _matrix_fractional_form(X, Y, s, 0.02, arr.patterns)
    np.testing.assert_allclose(value, reference, rtol=2e-6)
    # The facet rows define the same doubly non-negative cone as all rows.
    assert sum(len(F) for F in info["facets"]) < 8 * arr.n_patterns


def test_whitened_closed_form_equals_sdp_and_network():
    """N5(b): orthonormal rows, disjoint one-hot labels, no intercept."""
    X = _whitened()
    labels = np.array([0, 0, 1, 1, 1, 2])
    Y = np.eye(3)[labels]
    n, beta = 6, 0.5  # summed-loss strength of the notes; ours is the mean: alpha = beta / n
    s, alpha = np.full(n, 1 / n), beta / n
    closed = spike_free_closed_form(ReLUNetworkProblem(X, Y, SquaredError(), s, alpha, fit_intercept=False))
    counts = np.bincount(labels)
    formula = sum(0.5 * min(np.sqrt(c), beta) ** 2 + beta * max(np.sqrt(c) - beta, 0) for c in counts) / n
    np.testing.assert_allclose(closed.dual_objective, formula, rtol=1e-12)
    np.testing.assert_allclose(closed.objective, formula, rtol=1e-12)
    assert closed.info["is_exact"]
    arr = enumerate_arrangements(X)
    sdp = copositive_sdp(ReLUNetworkProblem(X, Y, SquaredError(), s, alpha, fit_intercept=False), arr.patterns, gates=arr.gates)
    np.testing.assert_allclose(sdp.dual_objective, formula, rtol=1e-6)
    np.testing.assert_allclose(sdp.objective, formula, rtol=1e-6)
    clf = CopositiveNetClassifier(alpha=alpha, fit_intercept=False).fit(X, labels)
    assert clf.method_ == "svd" and clf.is_exact_
    np.testing.assert_allclose(clf.weight_decay_objective(X, labels), formula, rtol=1e-10)
    np.testing.assert_array_equal(clf.predict(X), labels)


def test_whitened_with_intercept_is_spike_free_and_bounds_hold():
    X = _whitened()
    Y = np.eye(3)[[0, 0, 1, 1, 1, 2]]
    s, alpha = np.full(6, 1 / 6), 0.5 / 6
    assert spike_free_check(X, s, True)[0]
    closed = spike_free_closed_form(ReLUNetworkProblem(X, Y, SquaredError(), s, alpha, fit_intercept=True))
    Xa = np.c_[X, np.ones(6)]
    arr = enumerate_arrangements(Xa)
    sdp = copositive_sdp(ReLUNetworkProblem(Xa, Y, SquaredError(), s, alpha), arr.patterns, gates=arr.gates)
    # The linear problem bounds the unsampled ReLU problem from below; the
    # exhaustive SDP brackets its optimum.
    assert closed.dual_objective <= sdp.objective * (1 + 1e-9)
    assert sdp.dual_objective <= closed.objective * (1 + 1e-9)
    assert sdp.relative_gap <= 1e-5


def test_spike_free_check_rejects_generic_data():
    X = np.random.default_rng(0).standard_normal((30, 3))
    ok, reason = spike_free_check(X, np.full(30, 1 / 30), True)
    assert not ok and "spike-free" in reason
    with pytest.raises(ValueError, match="method='svd'"):
        CopositiveNetRegressor(method="svd").fit(X, X[:, 0])
    with pytest.raises(ValueError, match="squared_error"):
        CopositiveNetClassifier(method="svd", loss="log_loss").fit(X, X[:, 0] > 0)


# ------------------------------------------------------------------ orderings
def test_relaxation_lower_le_exact_restricted_optimum_le_rounded_scalar():
    """One output: the restricted exact problem is CP1, solved here directly in CVXPY."""
    rng = np.random.default_rng(3)
    X = np.c_[rng.standard_normal((25, 3)), np.ones(25)]
    y = np.maximum(X[:, :3] @ [1.0, -0.5, 0.3], 0) - np.maximum(X[:, 1], 0) + 0.1 * rng.standard_normal(25)
    s, alpha = np.full(25, 1 / 25), 0.01
    arr = sample_arrangements(X, 12, random_state=0)
    M = arr.patterns.astype(float)
    V, W, b = cp.Variable((4, M.shape[1])), cp.Variable((4, M.shape[1])), cp.Variable()
    pred = cp.sum(cp.multiply(M, X @ (V - W)), axis=1) + b
    S = 2 * M - 1
    exact = cp.Problem(
        cp.Minimize(0.5 * cp.sum(cp.multiply(s, cp.square(pred - y))) + alpha * (cp.sum(cp.norm(V, axis=0)) + cp.sum(cp.norm(W, axis=0)))),
        [cp.multiply(S, X @ V) >= 0, cp.multiply(S, X @ W) >= 0],
    )
    exact.solve(solver="CLARABEL")
    res = copositive_sdp(ReLUNetworkProblem(X, y[:, None], SquaredError(), s, alpha), arr.patterns, gates=arr.gates)
    assert res.dual_objective <= exact.value * (1 + 1e-7)
    assert exact.value <= res.objective * (1 + 1e-7)


def test_relaxation_brackets_the_restricted_vector_problem():
    """Several outputs: the restricted problem's optimum is bracketed by column generation with an exact oracle."""
    X, Y = _synthetic(25, seed=2)
    Xa = np.c_[X, np.ones(25)]
    s, alpha = np.full(25, 1 / 25), 0.01
    arr = sample_arrangements(Xa, 15, random_state=0)
    sdp = copositive_sdp(ReLUNetworkProblem(Xa, Y, SquaredError(), s, alpha), arr.patterns, gates=arr.gates)
    oracle = PatternOracle(Xa, arr.patterns, gates=arr.gates)
    cg = cutting_plane(ReLUNetworkProblem(Xa, Y, SquaredError(), s, alpha), oracle, tol=1e-7, max_iter=300)
    assert cg.info["oracle_exact"]
    assert sdp.dual_objective <= cg.objective * (1 + 1e-8)
    assert cg.dual_objective <= sdp.objective * (1 + 1e-8)
    # Both upper bounds are networks using the sampled cells only, so both
    # lie above the certified lower bounds.
    assert cg.dual_objective <= sdp.objective and sdp.dual_objective <= cg.objective


def _gd_objective(X, Y, alpha, width, seed, steps=4000, lr=0.02):
    """Weight-decay objective reached by full-batch Adam on the same architecture."""
    rng = np.random.default_rng(seed)
    n, d = X.shape
    Xa = np.c_[X, np.ones(n)]
    params = [rng.standard_normal((d + 1, width)) * 0.5, rng.standard_normal((width, Y.shape[1])) * 0.5, np.zeros(Y.shape[1])]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]

    def objective(U, V, b):
        H = np.maximum(Xa @ U, 0)
        R = H @ V + b - Y
        return 0.5 * np.mean(np.sum(R**2, axis=1)) + 0.5 * alpha * (np.sum(U**2) + np.sum(V**2)), H, R

    for t in range(1, steps + 1):
        U, V, b = params
        _, H, R = objective(U, V, b)
        G = R / n
        grads = [Xa.T @ ((G @ V.T) * (H > 0)) + alpha * U, H.T @ G + alpha * V, G.sum(axis=0)]
        for i, g in enumerate(grads):
            m[i] = 0.9 * m[i] + 0.1 * g
            v[i] = 0.999 * v[i] + 0.001 * g**2
            params[i] = params[i] - lr * (m[i] / (1 - 0.9**t)) / (np.sqrt(v[i] / (1 - 0.999**t)) + 1e-12)
    return objective(*params)[0]


def test_lower_le_trained_network_le_upper_with_every_cell():
    """Generic case with every cell: no network, however trained, beats lower_bound_."""
    X, Y = _synthetic(20, seed=1)
    reg = CopositiveNetRegressor(alpha=1e-2, method="sdp", arrangement="exhaustive", n_arrangements=500)
    reg.fit(X, Y)
    assert reg.gap_ <= 1e-3 * reg.upper_bound_
    alpha = 1e-2 * np.sqrt(np.mean(np.var(Y, axis=0)))
    trained = [_gd_objective(X, Y, alpha, width=20, seed=seed) for seed in range(3)]
    for value in trained:
        assert reg.lower_bound_ <= value
    # With the gap certified, the returned network is within the gap of any trained one.
    assert reg.upper_bound_ <= min(trained) + reg.gap_ * (1 + 1e-9)


def test_sdp_and_frank_wolfe_bounds_are_consistent():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    common = dict(alpha=1e-2, n_arrangements=20, random_state=0)
    sdp = CopositiveNetClassifier(method="sdp", **common).fit(X, y)
    fw = CopositiveNetClassifier(method="frank_wolfe", **common).fit(X, y)
    np.testing.assert_array_equal(sdp.gates_, fw.gates_)
    assert max(sdp.lower_bound_, fw.lower_bound_) <= min(sdp.upper_bound_, fw.upper_bound_) * (1 + 1e-9)
    for est in (sdp, fw):
        np.testing.assert_allclose(est.weight_decay_objective(X, y), est.objective_, rtol=1e-9)
        assert est.score(X, y) > 0.95


def test_iris_gap_is_certified_below_1e3():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    clf = CopositiveNetClassifier(alpha=1e-2, n_arrangements=50, random_state=0).fit(X, y)
    assert clf.method_ == "sdp"
    assert 0 <= clf.gap_ <= 1e-3 * clf.upper_bound_
    assert clf.is_exact_ == (clf.gap_ <= clf.tol * clf.upper_bound_) or clf.is_exact_


def test_certificate_survives_an_inaccurate_relaxation_solution():
    """Any relaxation point, even a perturbed one, yields a valid lower bound (dual point made feasible)."""
    X, Y = _synthetic(20, seed=3)
    Xa = np.c_[X, np.ones(20)]
    s, alpha = np.full(20, 1 / 20), 1e-2
    arr = sample_arrangements(Xa, 15, random_state=0)
    full = copositive_sdp(ReLUNetworkProblem(Xa, Y, SquaredError(), s, alpha), arr.patterns, gates=arr.gates)
    _, info = sdp_relaxation(ReLUNetworkProblem(Xa, Y, SquaredError(), s, alpha), arr.patterns, gates=arr.gates)
    rng = np.random.default_rng(0)
    for scale in (1e-3, 1e-1, 1.0):
        noisy = dict(info)
        noisy["coef_r"] = info["coef_r"] + scale * rng.standard_normal(info["coef_r"].shape)
        noisy["multipliers"] = [
            None if m is None else np.abs(m + scale * rng.standard_normal(m.shape))
            for m in info["multipliers"]
        ]
        bound, _ = relaxation_dual_bound(ReLUNetworkProblem(Xa, Y, SquaredError(), s, alpha), noisy)
        assert bound <= full.objective
    exact_bound, _ = relaxation_dual_bound(ReLUNetworkProblem(Xa, Y, SquaredError(), s, alpha), info)
    assert bound <= exact_bound <= full.objective


def test_scs_solver_gives_certified_bounds():
    X, Y = _synthetic(15, seed=4)
    common = dict(alpha=1e-2, method="sdp", n_arrangements=10, random_state=0)
    clarabel = CopositiveNetRegressor(**common).fit(X, Y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scs = CopositiveNetRegressor(solver="SCS", solver_options={"eps": 1e-9}, **common).fit(X, Y)
    assert scs.lower_bound_ <= clarabel.upper_bound_ * (1 + 1e-9)
    assert clarabel.lower_bound_ <= scs.upper_bound_ * (1 + 1e-9)


# ---------------------------------------------------------------- estimators
def test_auto_method_rule():
    X = _whitened()
    assert CopositiveNetRegressor(fit_intercept=False).fit(X, X[:, 0] ** 2).method_ == "svd"
    Xs, Y = _synthetic(30)
    assert CopositiveNetRegressor(random_state=0).fit(Xs, Y).method_ == "sdp"
    Xh = np.random.default_rng(0).standard_normal((40, 8))
    reg = CopositiveNetRegressor(random_state=0).fit(Xh, Xh[:, :2] ** 2)
    assert reg.method_ == "frank_wolfe" and reg.lower_bound_ <= reg.upper_bound_


@pytest.mark.parametrize("method", ["sdp", "frank_wolfe"])
def test_objective_equals_weight_decay_of_network(method):
    X, Y = _synthetic(30, seed=6)
    reg = CopositiveNetRegressor(alpha=1e-2, method=method, random_state=0).fit(X, Y)
    np.testing.assert_allclose(reg.weight_decay_objective(X, Y), reg.objective_, rtol=1e-9)
    assert reg.lower_bound_ <= reg.upper_bound_ == reg.objective_
    hidden = np.c_[reg.hidden_weights_, reg.hidden_intercepts_]
    out = np.maximum(np.c_[X, np.ones(30)] @ hidden.T, 0) @ reg.output_weights_ + reg.intercept_
    np.testing.assert_allclose(out, reg.predict(X), rtol=1e-12, atol=1e-12)
    # Every neuron lies in the closed cone of a cell in gates_.
    Xa = np.c_[X, np.ones(30)]
    signs = 2 * (Xa @ reg.gates_ >= 0) - 1
    for u in hidden:
        z = Xa @ u
        assert np.any(np.all(signs * z[:, None] >= -1e-7 * np.abs(z).max(), axis=0))


def test_exhaustive_arrangement_budget():
    X, Y = _synthetic(30)
    with pytest.raises(ValueError, match="n_arrangements"):
        CopositiveNetRegressor(arrangement="exhaustive", n_arrangements=50).fit(X, Y)


def test_log_loss_classifier_has_proba_and_bounds():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)[::3]
    y = y[::3]
    clf = CopositiveNetClassifier(alpha=1e-2, loss="log_loss", n_arrangements=10, random_state=0).fit(X, y)
    np.testing.assert_allclose(clf.predict_proba(X).sum(axis=1), 1.0)
    assert clf.lower_bound_ <= clf.upper_bound_
    np.testing.assert_allclose(clf.weight_decay_objective(X, y), clf.objective_, rtol=1e-9)
    binary = CopositiveNetClassifier(alpha=1e-2, n_arrangements=10, random_state=0).fit(X, y == 2)
    assert binary.decision_function(X).shape == (50,)


@pytest.mark.parametrize(
    "make",
    [
        lambda: CopositiveNetRegressor(alpha=1e-2, method="sdp", n_arrangements=10, random_state=0),
        lambda: CopositiveNetRegressor(alpha=1e-2, method="frank_wolfe", n_arrangements=10, random_state=0),
        lambda: CuttingPlaneReLURegressor(alpha=1e-2, tol=1e-6),
    ],
)
def test_weighted_and_repeated_fits_have_overlapping_bounds(make):
    X, Y = _synthetic(16, seed=7)
    w = np.r_[np.full(8, 2), np.ones(8)]
    weighted = make().fit(X, Y, sample_weight=w)
    repeated = make().fit(np.r_[X[:8], X], np.r_[Y[:8], Y])
    assert weighted.lower_bound_ <= repeated.objective_ * (1 + 1e-7)
    assert repeated.lower_bound_ <= weighted.objective_ * (1 + 1e-7)
    # Zero weights are the same as dropping the rows.
    zero = np.r_[np.zeros(4), np.ones(12)]
    a = make().fit(X, Y, sample_weight=zero)
    b = make().fit(X[4:], Y[4:])
    np.testing.assert_allclose(a.objective_, b.objective_, rtol=1e-9)
    np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-6, atol=1e-8)


def test_whitened_scalar_split_into_positive_and_negative_parts():
    """N3: one output on orthonormal rows; the optimum splits y into y+ and y- (two neurons).

    The linear-network bound of ``method="svd"`` is not tight for one output,
    but the refit over the efficient neurons (minimum-norm preimages of the
    parts) attains the closed-form optimum.
    """
    rng = np.random.default_rng(4)
    X = _whitened(n=7, d=12, seed=4)
    y = rng.standard_normal(7)
    beta = 0.4
    s, alpha = np.full(7, 1 / 7), beta / 7
    res = spike_free_closed_form(ReLUNetworkProblem(X, y[:, None], SquaredError(), s, alpha, fit_intercept=False))
    parts = (np.maximum(y, 0), np.maximum(-y, 0))
    optimum = sum(0.5 * min(np.linalg.norm(v), beta) ** 2 + beta * max(np.linalg.norm(v) - beta, 0) for v in parts) / 7
    np.testing.assert_allclose(res.objective, optimum, rtol=1e-8)
    assert res.dual_objective <= optimum and not res.info["is_exact"]
    # The exhaustive SDP certifies the same optimum.
    arr = enumerate_arrangements(X)
    sdp = copositive_sdp(ReLUNetworkProblem(X, y[:, None], SquaredError(), s, alpha, fit_intercept=False), arr.patterns, gates=arr.gates)
    assert sdp.dual_objective <= optimum * (1 + 1e-8) and sdp.relative_gap <= 1e-5


def test_copositive_net_is_the_vector_output_regressor():
    """CopositiveNet fits the regressor's program on vector outputs, with a valid certificate."""
    X, Y = _synthetic(20, seed=8)
    Y = np.c_[Y, np.maximum(X[:, 0] - X[:, 1], 0)]
    params = dict(alpha=1e-2, method="sdp", arrangement="exhaustive", n_arrangements=500)
    net = CopositiveNet(**params).fit(X, Y)
    reg = CopositiveNetRegressor(**params).fit(X, Y)
    assert type(net).__name__ == "CopositiveNet" and net.get_params() == reg.get_params()
    assert net.predict(X).shape == (20, 3) and net.output_weights_.shape == (net.n_neurons_, 3)
    np.testing.assert_allclose(net.predict(X), reg.predict(X), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose([net.lower_bound_, net.upper_bound_], [reg.lower_bound_, reg.upper_bound_], rtol=1e-9)
    # The certificate: the objective is the returned network's, and with
    # every cell no trained network of any width goes below lower_bound_.
    np.testing.assert_allclose(net.weight_decay_objective(X, Y), net.objective_, rtol=1e-9)
    assert net.lower_bound_ <= net.upper_bound_ == net.objective_
    assert net.gap_ <= 1e-3 * net.upper_bound_
    alpha = 1e-2 * np.sqrt(np.mean(np.var(Y, axis=0)))
    assert net.lower_bound_ <= _gd_objective(X, Y, alpha, width=20, seed=0)
