import pickle

import numpy as np
import pytest
from scipy.special import expit, log_softmax, softmax
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning

from skconvex import (
    ConvexBatchNormReLUClassifier,
    ConvexBatchNormReLURegressor,
    ConvexReLURegressor,
    enumerate_arrangements,
)
from skconvex.models.batchnorm import batchnorm_closed_form

# ----------------------------------------------------------------- helpers (independent of the package)


def _bn_stats(X, W, s):
    """Weighted batch mean and standard deviation of the pre-activations X @ W.T."""
    H = X @ W.T
    mu = s @ H
    return mu, np.sqrt(s @ (H - mu) ** 2)


def _bn_net(X, W, mu, sd, gamma, beta, A, b):
    """BN-ReLU network with frozen statistics, written out directly."""
    with np.errstate(divide="ignore", invalid="ignore"):
        N = np.where(sd > 0, (X @ W.T - mu) / sd, 0.0)
    return np.maximum(gamma * N + beta, 0) @ A + b


def _mean_loss(kind, out, Y, s):
    if kind == "squared":
        return 0.5 * s @ np.sum((out - Y) ** 2, axis=1)
    if kind == "logistic":
        return s @ np.logaddexp(0, -Y * out)[:, 0]
    return -s @ np.sum(Y * log_softmax(out, axis=1), axis=1)


def _encode(est, y):
    if isinstance(est, ConvexBatchNormReLURegressor):
        Y = np.asarray(y, float).reshape(len(y), -1)
        return Y, "squared", est.alpha * np.sqrt(np.mean(np.var(Y, axis=0)))
    codes = np.searchsorted(est.classes_, y)
    C = len(est.classes_)
    Y = np.where(codes == 1, 1.0, -1.0)[:, None] if C == 2 else np.eye(C)[codes]
    if est.loss == "squared_error":
        return Y, "squared", est.alpha
    return Y, ("logistic" if C == 2 else "multinomial"), est.alpha


def _whitened(X, s):
    """Weighted-centred, whitened coordinates (our own SVD)."""
    mean = s @ X
    Xc = X - mean
    _, sv, Vt = np.linalg.svd(np.sqrt(s)[:, None] * Xc, full_matrices=False)
    # the documented sign convention of the package (largest entry of each
    # principal direction positive), so that gates mean the same patterns
    Vt = Vt * np.sign(Vt[np.arange(len(Vt)), np.argmax(np.abs(Vt), axis=1)])[:, None]
    r = int(np.sum(sv > sv[0] * 1e-10))
    return Xc @ Vt[:r].T / sv[:r], sv[:r], Vt[:r]


def _independent_objective(est, X, y, s=None):
    """Objective of the recovered BN network, from its parameters and the data only."""
    s = np.full(len(X), 1 / len(X)) if s is None else s / s.sum()
    Y, kind, alpha = _encode(est, y)
    W = est.hidden_weights_
    mu, sd = _bn_stats(X, W, s)
    out = _bn_net(X, W, mu, sd, est.gamma_, est.beta_, est.output_weights_, est.intercept_)
    Xc = X - s @ X
    # whitened unit direction of each neuron: Z zhat = Xc w / sd
    Z, sv, _ = _whitened(X, s)
    with np.errstate(divide="ignore", invalid="ignore"):
        zhat = np.where(sd[:, None] > 0, (Z.T @ (s[:, None] * (Xc @ W.T))).T / sd[:, None], 0.0)
    m = sv[0] / sv if est.implicit_regularization else np.ones_like(sv)
    gamma_pen = est.gamma_**2 * np.sum((zhat * m[: zhat.shape[1]]) ** 2, axis=1)
    decay = 0.5 * (np.sum(gamma_pen) + np.sum(est.beta_**2) + np.sum(est.output_weights_**2))
    return _mean_loss(kind, out, Y, s) + alpha * decay, (mu, sd, out)


def _train_bn(X, Y, kind, alpha, width, seed, *, steps=1500, lr=0.02):
    """Adam on the training objective of a BN-ReLU network (full batch, numpy)."""
    rng = np.random.default_rng(seed)
    n, d = X.shape
    s = np.full(n, 1 / n)
    params = [
        rng.standard_normal((width, d)),
        rng.standard_normal(width),
        0.5 * rng.standard_normal(width),
        0.5 * rng.standard_normal((width, Y.shape[1])),
        np.zeros(Y.shape[1]),
    ]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]

    def value_and_grads(W, g, be, A, b):
        H = X @ W.T
        Hc = H - s @ H
        sd = np.sqrt(s @ Hc**2)
        N = Hc / sd
        P = g * N + be
        R = np.maximum(P, 0)
        out = R @ A + b
        if kind == "squared":
            dout = s[:, None] * (out - Y)
        elif kind == "logistic":
            dout = s[:, None] * (-Y * expit(-Y * out))
        else:
            dout = s[:, None] * (softmax(out, axis=1) - Y)
        value = _mean_loss(kind, out, Y, s) + 0.5 * alpha * (g @ g + be @ be + np.sum(A**2))
        dP = (dout @ A.T) * (P > 0)
        dN = dP * g
        dHc = dN / sd - s[:, None] * N * (np.sum(dN * N, axis=0) / sd)
        dH = dHc - s[:, None] * dHc.sum(axis=0)
        grads = [
            dH.T @ X,
            np.sum(dP * N, axis=0) + alpha * g,
            dP.sum(axis=0) + alpha * be,
            R.T @ dout + alpha * A,
            dout.sum(axis=0),
        ]
        return value, grads

    best = np.inf
    for t in range(1, steps + 1):
        value, grads = value_and_grads(*params)
        best = min(best, value)
        for i, g in enumerate(grads):
            m[i] = 0.9 * m[i] + 0.1 * g
            v[i] = 0.999 * v[i] + 0.001 * g * g
            params[i] = params[i] - lr * (m[i] / (1 - 0.9**t)) / (np.sqrt(v[i] / (1 - 0.999**t)) + 1e-10)
    return min(best, value_and_grads(*params)[0])


def _fit_on_gates(est, X, y, gates, **fit_params):
    est.set_params(warm_start=True)
    est.gates_ = gates
    return est.fit(X, y, **fit_params)


@pytest.fixture
def anisotropic():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((70, 3)) @ np.array([[3.0, 0.5, 0.0], [0.0, 0.2, 0.1], [0.0, 0.0, 5.0]]) + [5, -2, 1]
    y = np.maximum(X[:, 0] - 5, 0) - 0.3 * np.abs(X[:, 2] - 1) + 0.05 * rng.standard_normal(70)
    return X, y


@pytest.fixture
def iris():
    X, y = load_iris(return_X_y=True)
    return X, y


# ----------------------------------------------------------------- the reduction


@pytest.mark.parametrize(
    "kind", ["regression", "multioutput", "binary", "multiclass", "squared-classifier", "implicit"]
)
def test_convex_objective_equals_recovered_bn_network(anisotropic, iris, kind):
    if kind in ("regression", "multioutput", "implicit"):
        X, y = anisotropic
        if kind == "multioutput":
            y = np.c_[y, np.sin(X[:, 1])]
        est = ConvexBatchNormReLURegressor(
            alpha=1e-2, tol=1e-8, implicit_regularization=kind == "implicit", random_state=0
        )
    else:
        X, y = iris
        if kind == "binary":
            y = (y == 2).astype(int)
        loss = "squared_error" if kind == "squared-classifier" else "log_loss"
        est = ConvexBatchNormReLUClassifier(alpha=1e-2, loss=loss, tol=1e-8, random_state=0)
    est.fit(X, y)
    assert est.solver_ == "auglag" and est.n_neurons_ > 0
    value, (mu, sd, out) = _independent_objective(est, X, y)
    # frozen statistics are the batch statistics of the recovered weights
    np.testing.assert_allclose(est.bn_mean_, mu, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(est.bn_std_, sd, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(value, est.objective_, rtol=1e-7)
    np.testing.assert_allclose(est.nonconvex_objective_, est.objective_, rtol=1e-10)
    assert est.dual_gap_ <= 1e-8 * est.objective_
    assert est.constraint_violation_ <= 1e-12
    assert np.all(est.gamma_ >= 0)
    # the convex model on the lifted batch: sum_p D_p U (v_p - w_p) + b
    Z, _, _ = _whitened(X, np.full(len(X), 1 / len(X)))
    scale = est.singular_values_ / est.singular_values_[0] if kind == "implicit" else 1.0
    U = np.c_[Z * scale, np.ones(len(X))]
    D = U @ est.gates_ >= 0
    P = D.shape[1]
    Wp = est.pattern_weights_
    convex = np.einsum("np,npc->nc", D, np.einsum("nd,pdc->npc", U, Wp[:P] - Wp[P:]))
    np.testing.assert_allclose(out, convex + est.intercept_, rtol=1e-7, atol=1e-8)


def test_predict_uses_frozen_statistics(anisotropic):
    X, y = anisotropic
    reg = ConvexBatchNormReLURegressor(random_state=0).fit(X, y)
    X_new = np.random.default_rng(1).standard_normal((9, 3)) * 4
    expected = _bn_net(
        X_new, reg.hidden_weights_, reg.bn_mean_, reg.bn_std_, reg.gamma_, reg.beta_, reg.output_weights_, reg.intercept_
    )
    np.testing.assert_allclose(reg.predict(X_new), expected[:, 0], rtol=1e-10, atol=1e-12)
    # one sample at a time: the statistics are not recomputed on the new batch
    one = np.concatenate([reg.predict(row[None]) for row in X_new])
    np.testing.assert_allclose(one, reg.predict(X_new), rtol=1e-12)


@pytest.mark.parametrize("kind", ["squared", "logistic"])
def test_convex_optimum_below_gradient_descent(kind):
    rng = np.random.default_rng(3)
    n = 16
    X = rng.standard_normal((n, 2)) @ np.array([[2.0, 0.5], [0.0, 0.3]]) + [1, -2]
    signal = np.maximum(X[:, 0] - 1, 0) - np.maximum(X[:, 1] + 2, 0) + 0.2 * rng.standard_normal(n)
    Z, _, _ = _whitened(X, np.full(n, 1 / n))
    gates = enumerate_arrangements(np.c_[Z, np.ones(n)]).gates
    if kind == "squared":
        y, est = signal, ConvexBatchNormReLURegressor(alpha=0.05, tol=1e-9)
    else:
        y = (signal > np.median(signal)).astype(int)
        est = ConvexBatchNormReLUClassifier(alpha=0.05, tol=1e-9)
    _fit_on_gates(est, X, y, gates)
    Y, loss_kind, alpha = _encode(est, y)
    gd = [_train_bn(X, Y, loss_kind, alpha, max(est.n_neurons_, 2), seed) for seed in range(4)]
    # every pattern of the lifted batch is in the program: its optimum is the
    # global minimum over BN networks of any width
    assert est.objective_ <= min(gd) * (1 + 1e-9)
    assert min(gd) <= 1.05 * est.objective_  # and gradient descent gets close to it
    assert est.dual_gap_ <= 1e-9 * est.objective_


# ----------------------------------------------------------------- closed form


def test_closed_form_function_matches_conic_solve():
    cp = pytest.importorskip("cvxpy")
    rng = np.random.default_rng(5)
    n = 9
    Y = rng.standard_normal((n, 2))
    s = rng.random(n) + 0.1
    s /= s.sum()
    for fit_intercept in (True, False):
        p, m, b, value = batchnorm_closed_form(Y, s, 0.15, fit_intercept=fit_intercept)
        P, M, B = cp.Variable((n, 2), nonneg=True), cp.Variable((n, 2), nonneg=True), cp.Variable(2)
        norms = [cp.norm(cp.multiply(np.sqrt(s), V[:, c])) for V in (P, M) for c in range(2)]
        fit = Y - P + M - (np.ones((n, 1)) @ cp.reshape(B, (1, 2), order="C") if fit_intercept else 0)
        obj = 0.5 * cp.sum(cp.multiply(s[:, None], cp.square(fit))) + 0.15 * sum(norms)
        prob = cp.Problem(cp.Minimize(obj))
        prob.solve(solver="CLARABEL")
        np.testing.assert_allclose(value, prob.value, rtol=1e-6)
        np.testing.assert_allclose(p - m + b, P.value - M.value + (B.value if fit_intercept else 0), atol=1e-4)
        assert np.all(p >= 0) and np.all(m >= 0) and not np.any((p > 0) & (m > 0))


@pytest.mark.parametrize("kind", ["regression", "one-hot"])
def test_closed_form_is_the_global_optimum(kind):
    rng = np.random.default_rng(2)
    n, d = 10, 14
    X = rng.standard_normal((n, d)) * np.linspace(0.1, 3, d)
    if kind == "regression":
        y = X[:, 0] - 2 * np.abs(X[:, 1]) + 0.1 * rng.standard_normal(n)
        Est = ConvexBatchNormReLURegressor
    else:
        y = np.arange(n) % 3
        Est = ConvexBatchNormReLUClassifier
    params = dict(alpha=0.05) if kind == "regression" else dict(alpha=0.05, loss="squared_error")
    closed = Est(**params).fit(X, y)
    assert closed.solver_ == "closed_form" and closed.n_iter_ == 1
    # certified over every network of every width
    assert closed.dual_gap_ <= 1e-10 * closed.objective_
    np.testing.assert_allclose(closed.nonconvex_objective_, closed.objective_, rtol=1e-10)
    np.testing.assert_allclose(_independent_objective(closed, X, y)[0], closed.objective_, rtol=1e-9)
    # two neurons per output, both active on the whole batch
    assert closed.n_neurons_ <= 2 * closed.output_weights_.shape[1]
    pre = closed.gamma_ * (X @ closed.hidden_weights_.T - closed.bn_mean_) / closed.bn_std_ + closed.beta_
    assert np.all(pre >= -1e-9)
    # the iterative solver on sampled patterns reaches it, and never goes below
    iterative = Est(solver="auglag", tol=1e-10, random_state=0, **params).fit(X, y)
    assert iterative.objective_ >= closed.objective_ * (1 - 1e-10)
    np.testing.assert_allclose(iterative.objective_, closed.objective_, rtol=1e-7)
    np.testing.assert_allclose(iterative.predict(X), closed.predict(X), atol=1e-4)
    if kind == "regression":
        Y, loss_kind, alpha = _encode(closed, y)
        for seed in range(2):
            gd = _train_bn(X, Y, loss_kind, alpha, 4, seed, steps=1500)
            assert closed.objective_ <= gd * (1 + 1e-9)


def test_closed_form_with_weights_equals_repetition():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((15, 30)), rng.standard_normal(15)
    sw = rng.integers(0, 4, 15)
    weighted = ConvexBatchNormReLURegressor().fit(X, y, sample_weight=sw)
    repeated = ConvexBatchNormReLURegressor().fit(np.repeat(X, sw, 0), np.repeat(y, sw))
    assert weighted.solver_ == repeated.solver_ == "closed_form"
    np.testing.assert_allclose(weighted.objective_, repeated.objective_, rtol=1e-12)
    np.testing.assert_allclose(weighted.predict(X), repeated.predict(X), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "params, X_shape, match",
    [
        (dict(solver="closed_form"), (40, 3), "rank"),
        (dict(solver="closed_form", implicit_regularization=True), (8, 12), "implicit"),
        (dict(solver="closed_form", rank=3), (8, 12), "rank"),
        (dict(solver="closed_form", solver_options={"inner": "fista"}), (8, 12), "solver_options"),
    ],
)
def test_closed_form_only_where_it_applies(params, X_shape, match):
    rng = np.random.default_rng(0)
    X = rng.standard_normal(X_shape)
    with pytest.raises(ValueError, match=match):
        ConvexBatchNormReLURegressor(**params).fit(X, X[:, 0])


def test_closed_form_needs_squared_loss():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((8, 12))
    y = np.arange(8) % 2
    with pytest.raises(ValueError, match="log_loss"):
        ConvexBatchNormReLUClassifier(solver="closed_form").fit(X, y)
    clf = ConvexBatchNormReLUClassifier(random_state=0).fit(X, y)
    assert clf.solver_ == "auglag" and clf.score(X, y) == 1.0


# ----------------------------------------------------------------- implicit regularization


def test_implicit_regularization_is_the_relu_program_on_principal_coordinates(anisotropic):
    X, y = anisotropic
    bn = ConvexBatchNormReLURegressor(alpha=0.02, tol=1e-10, implicit_regularization=True, random_state=0)
    bn.fit(X, y)
    _, sv, Vt = _whitened(X, np.full(len(X), 1 / len(X)))
    np.testing.assert_allclose(bn.penalty_weights_, sv[0] / sv, rtol=1e-10)

    def principal(data):
        return (data - X.mean(0)) @ Vt.T / sv[0]

    relu = _fit_on_gates(ConvexReLURegressor(alpha=0.02, tol=1e-10), principal(X), y, bn.gates_)
    np.testing.assert_allclose(relu.objective_, bn.objective_, rtol=1e-7)
    X_new = np.random.default_rng(4).standard_normal((20, 3)) * 3
    np.testing.assert_allclose(relu.predict(principal(X_new)), bn.predict(X_new), rtol=1e-5, atol=1e-6)
    # = weight decay on the BN network folded into a ReLU network
    w_eff = (bn.gamma_ / bn.bn_std_)[:, None] * bn.hidden_weights_
    decay = 0.5 * (sv[0] ** 2 * np.sum(w_eff**2) + np.sum(bn.beta_**2) + np.sum(bn.output_weights_**2))
    loss = 0.5 * np.mean((bn.predict(X) - y) ** 2)
    np.testing.assert_allclose(loss + 0.02 * np.std(y) * decay, bn.objective_, rtol=1e-8)
    # heavier penalty on the low-variance directions: never a lower optimum
    # (the same patterns come from the gates mapped to the plain coordinates)
    same_patterns = bn.gates_ * np.r_[sv / sv[0], 1.0][:, None]
    plain = _fit_on_gates(ConvexBatchNormReLURegressor(alpha=0.02, tol=1e-10), X, y, same_patterns)
    assert plain.objective_ <= bn.objective_ * (1 + 1e-8)


def test_gradient_descent_on_w_is_preconditioned_in_whitened_coordinates(anisotropic):
    # The derivation behind implicit_regularization: for any loss of the
    # pre-activations X w, grad_w = V Sigma grad_z with z = Sigma V^T w, so a
    # gradient step on w moves z by Sigma^2 times a gradient step on z.
    X, y = anisotropic
    n = len(X)
    Z, sv, Vt = _whitened(X, np.full(n, 1 / n))
    rng = np.random.default_rng(0)
    w = Vt.T @ rng.standard_normal(len(sv))
    gamma, beta = 1.3, 0.2

    def loss_of_z(z):
        h = Z @ z
        out = np.maximum(gamma * (h - h.mean()) / h.std() + beta, 0)
        return 0.5 * np.mean((out - y) ** 2)

    def loss_of_w(w):
        return loss_of_z(sv * (Vt @ w))

    def num_grad(f, x, eps=1e-6):
        return np.array([(f(x + eps * e) - f(x - eps * e)) / (2 * eps) for e in np.eye(len(x))])

    z = sv * (Vt @ w)
    g_w, g_z = num_grad(loss_of_w, w), num_grad(loss_of_z, z)
    np.testing.assert_allclose(g_w, Vt.T @ (sv * g_z), rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(sv * (Vt @ g_w), sv**2 * g_z, rtol=1e-5, atol=1e-9)


# ----------------------------------------------------------------- rank truncation


def test_rank_truncation_is_an_exact_restriction(anisotropic):
    X, y = anisotropic
    trunc = ConvexBatchNormReLURegressor(alpha=0.02, tol=1e-10, rank=2, random_state=0).fit(X, y)
    assert trunc.rank_ == 2 and trunc.components_.shape == (3, 2)
    # the recovered network is an exact BN network on the full data
    np.testing.assert_allclose(_independent_objective(trunc, X, y)[0], trunc.objective_, rtol=1e-7)
    # whose first layer lies in the top-2 principal subspace
    _, _, Vt = _whitened(X, np.full(len(X), 1 / len(X)))
    np.testing.assert_allclose(trunc.hidden_weights_ @ Vt[2], 0, atol=1e-10)
    # the full program on gates that contain the truncated ones (padded) is below it
    rng = np.random.default_rng(1)
    padded = np.insert(trunc.gates_, 2, 0.0, axis=0)
    gates = np.hstack([padded, rng.standard_normal((4, 60))])
    full = _fit_on_gates(ConvexBatchNormReLURegressor(alpha=0.02, tol=1e-10), X, y, gates)
    assert full.rank_ == 3
    assert full.objective_ <= trunc.objective_ * (1 + 1e-8)


def test_rank_as_a_variance_fraction(anisotropic):
    X, y = anisotropic
    _, sv, _ = _whitened(X, np.full(len(X), 1 / len(X)))
    energy = np.cumsum(sv**2) / np.sum(sv**2)
    for fraction in (0.5, float(energy[1]) - 1e-6, 1.0):
        reg = ConvexBatchNormReLURegressor(rank=fraction, random_state=0).fit(X, y)
        assert reg.rank_ == int(np.searchsorted(energy, fraction)) + 1
    assert ConvexBatchNormReLURegressor(rank=10, random_state=0).fit(X, y).rank_ == 3


# ----------------------------------------------------------------- weights, dtypes, estimator API


def test_sample_weight_equals_repetition_within_certified_gaps(iris):
    X, y = iris[0][::2], iris[1][::2]  # 75 rows keep the test fast
    sw = np.random.default_rng(0).integers(0, 4, len(y))
    for Est, target in ((ConvexBatchNormReLUClassifier, y), (ConvexBatchNormReLURegressor, X[:, 0] ** 2)):
        weighted = Est(tol=1e-8, n_arrangements=20, random_state=0).fit(X, target, sample_weight=sw)
        repeated = Est(tol=1e-8, n_arrangements=20, random_state=0).fit(np.repeat(X, sw, 0), np.repeat(target, sw, 0))
        np.testing.assert_allclose(weighted.mean_, repeated.mean_, rtol=1e-12)
        np.testing.assert_array_equal(weighted.gates_, repeated.gates_)
        gap = weighted.dual_gap_ + repeated.dual_gap_
        assert abs(weighted.objective_ - repeated.objective_) <= gap * (1 + 1e-6) + 1e-12
        np.testing.assert_allclose(weighted.predict(X), repeated.predict(X), rtol=1e-3, atol=1e-3)


def test_float32_input(iris):
    X, y = iris[0][::2], iris[1][::2]  # 75 rows keep the test fast
    clf32 = ConvexBatchNormReLUClassifier(tol=1e-7, n_arrangements=20, random_state=0).fit(X.astype(np.float32), y)
    clf64 = ConvexBatchNormReLUClassifier(tol=1e-7, n_arrangements=20, random_state=0).fit(X, y)
    assert clf32.gates_.dtype == np.float32
    np.testing.assert_allclose(clf32.objective_, clf64.objective_, rtol=1e-5)
    assert clf32.predict_proba(X.astype(np.float32)).dtype == np.float64


def test_warm_start_reuses_gates_and_converges_faster(iris):
    X, y = iris[0][::2], iris[1][::2]  # 75 rows keep the test fast
    params = dict(n_arrangements=20, random_state=0)
    clf = ConvexBatchNormReLUClassifier(warm_start=True, tol=1e-6, **params).fit(X, y)
    gates = clf.gates_.copy()
    cold = ConvexBatchNormReLUClassifier(tol=1e-8, **params).fit(X, y)
    # a tighter refit restarts from the solution and the multipliers
    clf.set_params(tol=1e-8).fit(X, y)
    np.testing.assert_array_equal(clf.gates_, gates)
    assert clf.n_iter_ < cold.n_iter_ / 2
    np.testing.assert_allclose(clf.objective_, cold.objective_, rtol=1e-6)
    # another alpha keeps the gates (only the primal point is reused: the
    # multipliers of another alpha are dropped, so it is not faster here)
    clf.set_params(alpha=clf.alpha * 1.01).fit(X, y)
    np.testing.assert_array_equal(clf.gates_, gates)
    assert clf.dual_gap_ <= 1e-8 * clf.objective_ * (1 + 1e-6)


def test_invariant_to_affine_maps_of_the_inputs():
    # BN makes the network class invariant to invertible affine maps of x, so
    # with every pattern of the lifted batch the optimum is the same
    rng = np.random.default_rng(8)
    n = 20
    X = rng.standard_normal((n, 2))
    y = np.maximum(X[:, 0], 0) - np.abs(X[:, 1]) + 0.1 * rng.standard_normal(n)
    A = np.array([[3.0, 1.0], [-0.5, 0.2]])
    fits = []
    for data in (X, X @ A + [4.0, -7.0]):
        Z, _, _ = _whitened(data, np.full(n, 1 / n))
        gates = enumerate_arrangements(np.c_[Z, np.ones(n)]).gates
        fits.append(_fit_on_gates(ConvexBatchNormReLURegressor(tol=1e-10), data, y, gates))
    np.testing.assert_allclose(fits[0].objective_, fits[1].objective_, rtol=1e-7)
    np.testing.assert_allclose(fits[0].predict(X), fits[1].predict(X @ A + [4.0, -7.0]), atol=1e-3)


def test_convergence_warning_and_pickle(iris):
    X, y = iris
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        clf = ConvexBatchNormReLUClassifier(max_iter=1, random_state=0).fit(X, y)
    np.testing.assert_allclose(clf.nonconvex_objective_, clf.objective_, rtol=1e-10)
    clone = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(clone.predict_proba(X), clf.predict_proba(X))
    assert not hasattr(clf, "_lift")


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(rank=0), "rank"),
        (dict(rank=1.5), "rank"),
        (dict(rank="all"), "rank"),
        (dict(implicit_regularization="yes"), "implicit_regularization"),
        (dict(solver="newton"), "solver"),
        (dict(alpha=-1.0), "alpha"),
    ],
)
def test_bad_parameters_are_rejected(iris, params, match):
    X, y = iris
    with pytest.raises(ValueError, match=match):
        ConvexBatchNormReLUClassifier(**params).fit(X, y)
