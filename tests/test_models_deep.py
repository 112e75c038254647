"""Deep convex networks: three-layer, path-regularized and parallel deep linear.

Every fitted model is checked against the network it recovers, evaluated
here independently (explicit loops over the sub-networks and their layers):
the convex objective must equal the network's training objective, the
convex optimum must not be beaten by local training of the same
architecture, and the solvers must agree with the CVXPY reference.
"""

import warnings

import numpy as np
import pytest
from relu_problems import weight_check_data
from scipy.optimize import minimize
from sklearn.exceptions import ConvergenceWarning

from skconvex import (
    ConvexThreeLayerReLUClassifier,
    ConvexThreeLayerReLURegressor,
    ParallelDeepLinearRegressor,
    PathRegularizedReLUClassifier,
    PathRegularizedReLURegressor,
    sample_arrangements,
    standard_deep_linear,
)

RTOL = 1e-6


def _relu(z):
    return np.maximum(z, 0.0)


def _regression(seed=0, n=16, d=1):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(n, d))
    y = np.abs(X[:, 0]) - 2 * _relu(X[:, 0] - 0.5) + 0.1 * rng.standard_normal(n)
    return X, y


def _classification(seed=0, n=24):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 2))
    return X, X[:, 0] * X[:, 1] > 0


def _scale(y):
    """The regressors' alpha scale: the standard deviation of y."""
    return float(np.sqrt(np.mean((y - y.mean()) ** 2)))


def _loss(est, f, y):
    """Mean training loss of outputs ``f`` (one column), computed here."""
    if hasattr(est, "classes_"):
        t = np.where(y == est.classes_[1], 1.0, -1.0)
        return float(np.mean(np.logaddexp(0.0, -t * f)))
    return 0.5 * float(np.mean((f - y) ** 2))


# ------------------------------------------------------- independent networks


def _three_layer_net(est, X):
    """Outputs and weight decay of the recovered three-layer sub-networks."""
    Xa = np.c_[X, np.ones(len(X))] if est.fit_intercept else X
    f = np.full(len(X), float(np.ravel(est.intercept_)[0]))
    decay = 0.0
    for W1, w2, w3 in est.subnetworks_:
        # The first layer of every sub-network has unit Frobenius norm.
        np.testing.assert_allclose(np.linalg.norm(W1), 1.0, rtol=1e-9)
        f += _relu(_relu(Xa @ W1) @ w2) * float(np.sum(w3))
        decay += 0.5 * (float(w2 @ w2) + float(w3 @ w3))
    return f, decay


def _tree_net(est, X):
    """Outputs and path norms of the recovered tree sub-networks (explicit loops)."""
    Xa = np.c_[X, np.ones(len(X))] if est.fit_intercept else X
    f = np.full(len(X), float(np.ravel(est.intercept_)[0]))
    total = 0.0
    width = est.width
    for k in range(est.n_subnetworks_):
        leaves = est.leaf_weights_[k]
        if est.fit_intercept:
            leaves = np.c_[leaves, est.leaf_intercepts_[k]]
        z = Xa @ leaves.T  # (n, n_leaves)
        # Squared weight products of every path below each node.
        sq = np.sum(leaves**2, axis=1)
        for e in est.edge_weights_:
            e = e[k]
            a = _relu(z) * e
            z = np.stack([a[:, i : i + width].sum(axis=1) for i in range(0, a.shape[1], width)], axis=1)
            s = sq * e**2
            sq = np.array([s[i : i + width].sum() for i in range(0, len(s), width)])
        w_out = est.output_weights_[k]
        f += _relu(z[:, 0]) * float(np.sum(w_out))
        total += np.sqrt(sq[0] * float(w_out @ w_out))
    return f, total


def _check_objective(est, X, y, f_net, penalty):
    alpha = est.alpha * (_scale(y) if not hasattr(est, "classes_") else 1.0)
    value = _loss(est, f_net, y) + alpha * penalty
    np.testing.assert_allclose(est.objective_, value, rtol=RTOL)
    np.testing.assert_allclose(est.nonconvex_objective_, value, rtol=RTOL)
    assert est.dual_gap_ <= est.tol * est.objective_ * (1 + 1e-9)
    assert est.constraint_violation_ <= 1e-8


# ------------------------------------------------- convex = network objective


@pytest.mark.parametrize("gated", [False, True])
def test_three_layer_regressor_objective_is_the_networks(gated):
    X, y = _regression()
    est = ConvexThreeLayerReLURegressor(
        alpha=1e-2, n_arrangements=(6, 12), gated=gated, tol=1e-6, random_state=0
    ).fit(X, y)
    assert est.n_subnetworks_ > 0
    f, decay = _three_layer_net(est, X) if not gated else (est.predict(X), None)
    if gated:
        # Gated units: the gates are the sampled patterns; the weight decay is
        # still that of the recovered layers.
        decay = 0.5 * sum(float(w2 @ w2) + float(w3 @ w3) for _, w2, w3 in est.subnetworks_)
        for W1, _, _ in est.subnetworks_:
            np.testing.assert_allclose(np.linalg.norm(W1), 1.0, rtol=1e-9)
    else:
        np.testing.assert_allclose(est.predict(X), f, rtol=1e-9, atol=1e-12)
    _check_objective(est, X, y, f, decay)


def test_three_layer_classifier_objective_is_the_networks():
    X, y = _classification()
    est = ConvexThreeLayerReLUClassifier(
        alpha=1e-2, n_arrangements=(4, 8), tol=1e-6, random_state=0
    ).fit(X, y)
    f, decay = _three_layer_net(est, X)
    np.testing.assert_allclose(est.decision_function(X), f, rtol=1e-9, atol=1e-12)
    _check_objective(est, X, y, f, decay)
    assert est.score(X, y) >= 0.9


@pytest.mark.parametrize("depth, width", [(3, 2), (4, 2), (3, 3)])
def test_path_regressor_objective_is_the_networks(depth, width):
    X, y = _regression(1, n=20)
    est = PathRegularizedReLURegressor(
        alpha=1e-2, n_arrangements=60, depth=depth, width=width, tol=1e-6, random_state=0
    ).fit(X, y)
    f, norms = _tree_net(est, X)
    np.testing.assert_allclose(est.predict(X), f, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(est.path_norms_.sum(), norms, rtol=1e-9)
    _check_objective(est, X, y, f, norms)
    # Sparsity over whole sub-networks: most sampled groups are unused.
    assert 0 < est.n_subnetworks_ < est.group_norms_.size
    assert np.count_nonzero(est.group_norms_) == est.n_subnetworks_
    assert len(est.edge_weights_) == depth - 2
    assert est.leaf_weights_.shape[1] == width ** (depth - 2)


def test_path_gated_and_classifier_objectives():
    X, y = _regression(2, n=20)
    gated = PathRegularizedReLURegressor(
        alpha=1e-2, n_arrangements=60, gated=True, tol=1e-6, random_state=0
    ).fit(X, y)
    _check_objective(gated, X, y, gated.predict(X), gated.path_norms_.sum())
    exact = PathRegularizedReLURegressor(
        alpha=1e-2, n_arrangements=60, tol=1e-6, random_state=0
    ).fit(X, y)
    # The gated program relaxes the exact one on the same sampled tuples.
    assert gated.objective_ <= exact.objective_ * (1 + 1e-6)

    Xc, yc = _classification(1)
    clf = PathRegularizedReLUClassifier(
        alpha=1e-2, n_arrangements=60, tol=1e-6, random_state=0
    ).fit(Xc, yc)
    f, norms = _tree_net(clf, Xc)
    np.testing.assert_allclose(clf.decision_function(Xc), f, rtol=1e-9, atol=1e-12)
    _check_objective(clf, Xc, yc, f, norms)


def _branch_objective(est, X, Y):
    out = np.full(Y.shape, 0.0) + est.intercept_
    reg = 0.0
    for branch in est.branches_:
        h = X
        for layer in branch:
            h = h @ layer
        out += h
        reg += np.prod([np.linalg.norm(layer) for layer in branch])
    alpha = est.alpha * float(np.sqrt(np.mean((Y - Y.mean(axis=0)) ** 2)))
    return 0.5 * float(np.mean(np.sum((out - Y) ** 2, axis=1))) + alpha * reg, out


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_parallel_deep_linear_objective_is_the_networks(depth):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 5))
    Y = X @ rng.standard_normal((5, 3)) + 0.5 * rng.standard_normal((40, 3))
    est = ParallelDeepLinearRegressor(alpha=1.0, depth=depth, tol=1e-10, max_iter=20000).fit(X, Y)
    assert all(len(b) == depth for b in est.branches_)
    value, out = _branch_objective(est, X, Y)
    np.testing.assert_allclose(est.predict(X), out, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(est.objective_, value, rtol=RTOL)
    np.testing.assert_allclose(est.nonconvex_objective_, value, rtol=RTOL)
    assert 0 < est.rank_ < 3  # the nuclear norm lowers the rank


# ------------------------------------------- convex optimum <= local training


def _best_local(objective, n_params, n_starts=6, seed=0, scale=0.5):
    rng = np.random.default_rng(seed)
    best = np.inf
    for _ in range(n_starts):
        theta0 = scale * rng.standard_normal(n_params)
        res = minimize(objective, theta0, method="L-BFGS-B", options={"maxiter": 3000})
        best = min(best, objective(res.x))
    return best


def test_three_layer_optimum_beats_local_training():
    X, y = _regression(3, n=12)
    alpha = 1e-2
    est = ConvexThreeLayerReLURegressor(
        alpha=alpha, n_arrangements=(10, 20), tol=1e-6, random_state=0
    ).fit(X, y)
    a = alpha * _scale(y)
    Xa = np.c_[X, np.ones(len(X))]
    K, m = 3, 3

    def objective(theta):
        V = theta[: K * m * 2].reshape(K, 2, m)
        w2 = theta[K * m * 2 : K * m * 3].reshape(K, m)
        w3 = theta[K * m * 3 : K * m * 3 + K]
        f = np.full(len(X), theta[-1])
        for k in range(K):
            W1 = V[k] / max(np.linalg.norm(V[k]), 1e-12)  # ||W1||_F = 1
            f += _relu(_relu(Xa @ W1) @ w2[k]) * w3[k]
        return 0.5 * np.mean((f - y) ** 2) + a * 0.5 * (np.sum(w2**2) + np.sum(w3**2))

    best = _best_local(objective, K * m * 3 + K + 1)
    assert est.objective_ <= best * (1 + 1e-6)


def test_path_optimum_beats_local_training():
    X, y = _regression(4, n=12)
    alpha = 1e-2
    est = PathRegularizedReLURegressor(
        alpha=alpha, n_arrangements=1000, tol=1e-6, random_state=0
    ).fit(X, y)
    a = alpha * _scale(y)
    Xa = np.c_[X, np.ones(len(X))]
    K, m = 3, 2

    def objective(theta):
        W1 = theta[: K * m * 2].reshape(K, m, 2)
        w2 = theta[K * m * 2 : K * m * 3].reshape(K, m)
        w3 = theta[K * m * 3 : K * m * 3 + K]
        f = np.full(len(X), theta[-1])
        reg = 0.0
        for k in range(K):
            f += _relu(_relu(Xa @ W1[k].T) @ w2[k]) * w3[k]
            reg += np.sqrt(np.sum(np.sum(W1[k] ** 2, axis=1) * w2[k] ** 2)) * abs(w3[k])
        return 0.5 * np.mean((f - y) ** 2) + a * reg

    best = _best_local(objective, K * m * 3 + K + 1)
    assert est.objective_ <= best * (1 + 1e-6)


def test_parallel_deep_linear_optimum_beats_local_training_and_standard_network():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((30, 3))
    Y = X @ np.diag([3.0, 2.0, 1.0]) + 0.1 * rng.standard_normal((30, 3))
    alpha = 0.05
    est = ParallelDeepLinearRegressor(alpha=alpha, depth=3, tol=1e-10, max_iter=20000).fit(X, Y)
    a = alpha * float(np.sqrt(np.mean((Y - Y.mean(axis=0)) ** 2)))
    K = 3

    def objective(theta):
        out = np.full(Y.shape, 0.0) + theta[-3:]
        reg = 0.0
        for k in range(K):
            w1, w2, w3 = theta[7 * k : 7 * k + 3], theta[7 * k + 3], theta[7 * k + 4 : 7 * k + 7]
            out += np.outer(X @ w1 * w2, w3)
            reg += np.linalg.norm(w1) * abs(w2) * np.linalg.norm(w3)
        return 0.5 * np.mean(np.sum((out - Y) ** 2, axis=1)) + a * reg

    best = _best_local(objective, 7 * K + 3)
    assert est.objective_ <= best * (1 + 1e-6)
    # The standard (one-branch) network of the same depth has a duality gap here.
    res = standard_deep_linear(X, Y, depth=3, alpha=alpha, n_init=2, random_state=0)
    np.testing.assert_allclose(res.parallel_objective, est.objective_, rtol=1e-6)
    assert res.gap > 1e-3 * est.objective_


# ------------------------------------------------------------ cvxpy reference


@pytest.mark.parametrize(
    "cls, params",
    [
        (ConvexThreeLayerReLURegressor, {"n_arrangements": (3, 5)}),
        (ConvexThreeLayerReLURegressor, {"n_arrangements": (3, 5), "gated": True}),
        (PathRegularizedReLURegressor, {"n_arrangements": 20}),
        (PathRegularizedReLURegressor, {"n_arrangements": 20, "depth": 4}),
        (PathRegularizedReLURegressor, {"n_arrangements": 20, "gated": True}),
    ],
)
def test_solvers_agree_with_cvxpy(cls, params):
    pytest.importorskip("cvxpy")
    X, y = _regression(5, n=10)
    fast = cls(alpha=1e-2, tol=1e-7, max_iter=5000, random_state=0, **params).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = cls(alpha=1e-2, solver="cvxpy", random_state=0, **params).fit(X, y)
    assert ref.solver_ == "cvxpy" and fast.solver_ != "cvxpy"
    np.testing.assert_allclose(fast.objective_, ref.objective_, rtol=1e-5)
    np.testing.assert_allclose(fast.predict(X), ref.predict(X), atol=1e-3 * np.ptp(y))


# --------------------------------------------------- nuclear norm closed form


def test_nuclear_closed_form_equals_iterative_solution():
    rng = np.random.default_rng(2)
    n, d = 30, 4
    A = rng.standard_normal((n, d))
    Q, _ = np.linalg.qr(A - A.mean(axis=0))
    X = np.sqrt(n) * Q  # centered, X^T X / n = I
    Y = X @ rng.standard_normal((d, 3)) + rng.standard_normal((n, 3))
    closed = ParallelDeepLinearRegressor(alpha=0.2, solver="closed_form").fit(X, Y)
    auto = ParallelDeepLinearRegressor(alpha=0.2).fit(X, Y)
    fista = ParallelDeepLinearRegressor(alpha=0.2, solver="fista", tol=1e-12, max_iter=50000).fit(X, Y)
    assert closed.solver_ == auto.solver_ == "closed_form" and fista.solver_ == "fista"
    np.testing.assert_allclose(closed.coef_, fista.coef_, atol=1e-6)
    np.testing.assert_allclose(closed.intercept_, fista.intercept_, atol=1e-6)
    np.testing.assert_allclose(closed.objective_, fista.objective_, rtol=1e-8)
    np.testing.assert_allclose(closed.singular_values_, fista.singular_values_, atol=1e-6)
    assert closed.dual_gap_ <= 1e-10 * closed.objective_
    # Not an orthogonal design: the closed form refuses.
    with pytest.raises(ValueError, match="solver='closed_form'"):
        ParallelDeepLinearRegressor(solver="closed_form").fit(A, Y)


# ------------------------------------------------ sampling, seeds, validation


def test_subnetwork_sampling_and_fits_are_seeded_and_n_jobs_invariant():
    X, _ = _regression(6, n=30, d=2)
    Xa = np.c_[X, np.ones(len(X))]
    kwargs = {"kind": "subnetwork", "depth": 4, "batch_size": 8, "random_state": 5}
    a = sample_arrangements(Xa, (5, 40), n_jobs=1, **kwargs)
    b = sample_arrangements(Xa, (5, 40), n_jobs=2, **kwargs)
    for name in ("gates", "leaf_weights", "leaf_index", "patterns"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    for k in range(len(a.node_patterns)):
        np.testing.assert_array_equal(a.node_patterns[k], b.node_patterns[k])
        if k < len(a.edge_weights):
            np.testing.assert_array_equal(a.edge_weights[k], b.edge_weights[k])
    c = sample_arrangements(Xa, (5, 40), **{**kwargs, "random_state": 6})
    assert not np.array_equal(a.leaf_weights, c.leaf_weights)

    X, y = _regression(6, n=20)
    fits = [
        ConvexThreeLayerReLURegressor(
            n_arrangements=(4, 8), gated=True, n_jobs=n_jobs, random_state=1
        ).fit(X, y)
        for n_jobs in (1, 2)
    ]
    np.testing.assert_array_equal(fits[0].convex_weights_, fits[1].convex_weights_)


@pytest.mark.parametrize(
    "cls, params, match",
    [
        (ConvexThreeLayerReLURegressor, {"solver": "fista"}, "gated=True"),
        (ConvexThreeLayerReLURegressor, {"gated": True, "solver": "auglag"}, "gated=False"),
        (PathRegularizedReLURegressor, {"solver_options": {"bogus": 1}}, "solver_options"),
        (ConvexThreeLayerReLURegressor, {"n_arrangements": (1, 2, 3)}, "n_arrangements"),
        (PathRegularizedReLURegressor, {"depth": 2}, "depth"),
    ],
)
def test_invalid_parameters_are_named(cls, params, match):
    X, y = _regression()
    with pytest.raises(ValueError, match=match):
        cls(**params).fit(X, y)


def test_warm_start_reuses_subnetworks():
    X, y = _regression(7, n=20)
    est = PathRegularizedReLURegressor(
        alpha=1e-2, n_arrangements=40, warm_start=True, random_state=0
    ).fit(X, y)
    first = est.subnetwork_gates_[0].copy()
    est.set_params(alpha=2e-2, random_state=1).fit(X, y)
    np.testing.assert_array_equal(est.subnetwork_gates_[0], first)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        cold = PathRegularizedReLURegressor(alpha=2e-2, n_arrangements=40, random_state=0).fit(X, y)
    np.testing.assert_allclose(est.objective_, cold.objective_, rtol=1e-3)


@pytest.mark.parametrize(
    "cls, params",
    [
        (PathRegularizedReLURegressor, {"n_arrangements": 40}),
        (ConvexThreeLayerReLURegressor, {"n_arrangements": (3, 6)}),
    ],
)
def test_exact_programs_integer_weights_equal_repeated_rows(cls, params):
    # The common checks run the gated programs; this is their sample-weight
    # check for the exact ones, to the solvers' certified accuracy.
    X, y = _regression(8, n=14)
    w = np.r_[np.full(7, 2), np.ones(7)].astype(int)
    weighted = cls(alpha=1e-2, tol=1e-8, max_iter=5000, random_state=0, **params).fit(X, y, sample_weight=w)
    repeated = cls(alpha=1e-2, tol=1e-8, max_iter=5000, random_state=0, **params).fit(
        np.repeat(X, w, axis=0), np.repeat(y, w)
    )
    np.testing.assert_allclose(weighted.objective_, repeated.objective_, rtol=1e-6)
    np.testing.assert_allclose(weighted.predict(X), repeated.predict(X), atol=1e-3 * np.ptp(y))


def test_default_exact_fit_certifies_on_repeated_multiclass_rows():
    # scikit-learn's sample-weight check data (15 points in 30 dimensions,
    # three classes, rows repeated by integer weights): the augmented
    # Lagrangian's dual bound could stall there at a relative gap of 0.64;
    # solver="auto" must end certified at the conic reference's optimum.
    X, y, w = weight_check_data()
    X, y = X.repeat(w, axis=0), y.repeat(w)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est = ConvexThreeLayerReLUClassifier(n_arrangements=(2, 4), random_state=0).fit(X, y)
    ref = ConvexThreeLayerReLUClassifier(n_arrangements=(2, 4), random_state=0, solver="cvxpy").fit(X, y)
    assert est.solver_ in ("auglag", "auglag+cvxpy")
    assert est.dual_gap_ <= 1e-4 * est.objective_
    np.testing.assert_allclose(est.objective_, ref.objective_, rtol=1e-4)


def test_finish_stalled_keeps_the_better_certificate():
    from skconvex.models._base import finish_stalled
    from skconvex.solvers import SolveResult
    from skconvex.solvers.conic import SolverError

    def result(gap, n_iter, converged=False):
        return SolveResult(
            coef=np.zeros((1, 1, 1)), intercept=np.zeros(1), objective=1.0, dual_objective=1.0 - gap,
            n_iter=n_iter, converged=converged, solver="test",
        )

    def failing():
        raise SolverError("no")

    stalled = result(0.5, 40)
    # A stall handed over: the better certificate, with both runs' iterations.
    kept, finished = finish_stalled(stalled, 100, 1e-4, lambda: result(1e-6, 30))
    assert finished and kept.converged and kept.n_iter == 70
    # A worse interior-point result, a failing solver, a spent budget and a
    # converged result are left alone.
    for interior, max_iter, start in [
        (lambda: result(0.9, 30), 100, stalled),
        (failing, 100, stalled),
        (lambda: result(1e-6, 30), 40, stalled),
        (lambda: result(1e-6, 30), 100, result(1e-5, 40, converged=True)),
    ]:
        kept, finished = finish_stalled(start, max_iter, 1e-4, interior)
        assert kept is start and not finished
