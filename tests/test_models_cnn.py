"""Convex CNNs: patches, pooling, the programs, recovery and the estimators."""

import pickle
import warnings

import numpy as np
import pytest
from scipy.special import expit, log_softmax
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skconvex import ConvexCNNClassifier, ConvexCNNRegressor, sample_arrangements
from skconvex.programs.cones import ConeConstrainedProblem
from skconvex.programs.datafits import SquaredError
from skconvex.programs.patches import PatchOperator, extract_patches, image_geometry
from skconvex.programs.penalties import ColumnGroupL2

# ----------------------------------------------------------------- independent references


def _patches(X, H, W, C, kh, kw, stride=1, pad=0, bias=True):
    """Patches by slicing every filter position (written independently of the package)."""
    n = len(X)
    images = np.pad(X.reshape(n, H, W, C), ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    oh = (H + 2 * pad - kh) // stride + 1
    ow = (W + 2 * pad - kw) // stride + 1
    cols = [
        images[:, r * stride : r * stride + kh, c * stride : c * stride + kw, :].reshape(n, -1)
        for r in range(oh)
        for c in range(ow)
    ]
    P = np.stack(cols, axis=1)
    if bias:
        P = np.concatenate([P, np.ones(P.shape[:2] + (1,))], axis=2)
    return P, (oh, ow)


def _regions(grid, pool):
    """Pooling region of every filter position and the average-pooling weights."""
    (oh, ow), (qh, qw) = grid, pool
    rows, cols = np.divmod(np.arange(oh * ow), ow)
    region = (rows // qh) * (-(-ow // qw)) + cols // qw
    return region, 1.0 / np.bincount(region)[region]


def _filters(est):
    U = est.filters_.reshape(len(est.filters_), -1)
    return np.c_[U, est.filter_biases_] if est.fit_intercept else U


def _cnn_output(est, P, region, weights, X=None):
    """f(x) = sum_j sum_r a_jr sum_{k in r} w_k phi_j(x_k) + b, phi = ReLU or gated."""
    U = _filters(est)
    Z = P @ U.T
    if est.gated and est.arrangement == "conv":
        # gates see the whole (augmented) image, the same for all its patches
        act = Z * (np.c_[X, np.ones(len(X))] @ est.gates_[:, est.filter_gates_] >= 0)[:, None, :]
    elif est.gated:
        act = Z * (P @ est.gates_[:, est.filter_gates_] >= 0)
    else:
        act = np.maximum(Z, 0)
    onehot = (region[:, None] == np.arange(region.max() + 1)[None, :]) * weights[:, None]
    pooled = np.einsum("nkm,kr->nrm", act, onehot)
    return np.einsum("nrm,mrc->nc", pooled, est.output_weights_) + np.atleast_1d(est.intercept_)


def _three_layer_output(est, P, weights):
    """Exact three-layer CNN: sum_t a_t sum_k w_k (sum_j v_j (x_k^T u_j)_+)_+ + b."""
    A1 = np.maximum(P @ _filters(est).T, 0)
    S = est.subnetwork_output_weights_.shape[0]
    V = np.zeros((len(est.second_layer_weights_), S))
    V[np.arange(len(V)), est.filter_subnetworks_] = est.second_layer_weights_
    hidden = np.maximum(A1 @ V, 0)
    return np.einsum("nks,k->ns", hidden, weights) @ est.subnetwork_output_weights_ + np.atleast_1d(
        est.intercept_
    )


def _targets(est, y):
    """Encoded targets, loss kind and effective alpha (independently of the estimator)."""
    if isinstance(est, ConvexCNNRegressor):
        Y = np.asarray(y, float).reshape(len(y), -1)
        return Y, "squared", est.alpha * np.sqrt(np.mean(np.var(Y, axis=0)))
    codes = np.searchsorted(est.classes_, y)
    if est.loss == "squared_error":
        Y = np.where(codes == 1, 1.0, -1.0)[:, None] if len(est.classes_) == 2 else np.eye(len(est.classes_))[codes]
        return Y, "squared", est.alpha
    if len(est.classes_) == 2:
        return np.where(codes == 1, 1.0, -1.0)[:, None], "logistic", est.alpha
    return np.eye(len(est.classes_))[codes], "multinomial", est.alpha


def _mean_loss(kind, out, Y):
    if kind == "squared":
        return 0.5 * np.mean(np.sum((out - Y) ** 2, axis=1))
    if kind == "logistic":
        return np.mean(np.logaddexp(0, -Y * out))
    return -np.mean(np.sum(Y * log_softmax(out, axis=1), axis=1))


def _images(seed, n=30, H=5, W=5, C=1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, H * W * C))
    imgs = X.reshape(n, H, W, C)
    signal = np.maximum(imgs[:, :2, :2].sum(axis=(1, 2, 3)), 0) - np.maximum(imgs[:, 2:, 2:].mean(axis=(1, 2, 3)), 0)
    return X, signal + 0.1 * rng.standard_normal(n)


def _labels(signal, n_classes):
    if n_classes == 2:
        return (signal > np.median(signal)).astype(int)
    return np.digitize(signal, np.quantile(signal, np.linspace(0, 1, n_classes + 1)[1:-1]))


# ----------------------------------------------------------------- geometry and patches


@pytest.mark.parametrize(
    "shape, C, k, s, p", [((5, 5), 1, 3, 1, 0), ((6, 4), 2, (3, 2), 1, 1), ((7, 7), 3, 3, 2, 1), ((8, 8), 1, 2, 2, 0)]
)
def test_patches_match_slicing(shape, C, k, s, p):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4, shape[0] * shape[1] * C))
    geo = image_geometry(X.shape[1], shape, C, k, s, p)
    kh, kw = (k, k) if isinstance(k, int) else k
    ref, grid = _patches(X, *shape, C, kh, kw, s, p)
    assert geo.output_shape == grid
    np.testing.assert_array_equal(extract_patches(X, geo, fit_intercept=True), ref)


def test_one_dimensional_rule_for_flat_inputs():
    geo = image_geometry(7, None, 1, 3)
    assert geo.image_shape == (7, 1) and geo.kernel == (3, 1) and geo.n_patches == 5
    # the kernel is clipped to short signals
    assert image_geometry(2, None, 1, 3).kernel == (2, 1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(image_shape=(8, 7)), "image_shape=\\(8, 7\\).*needs H \\* W \\* C = 56"),
        (dict(image_shape=(8, 8), n_channels=2), "n_channels=2 needs H \\* W \\* C = 128"),
        (dict(image_shape=(8, 8), kernel_size=9), "kernel_size=\\(9, 9\\) does not fit"),
        (dict(image_shape=(8, 8), kernel_size=3, stride=2), "stride=\\(2, 2\\) skips the last 1 pixel"),
        (dict(image_shape=(8, 8), kernel_size=2, padding=2), "padding=\\(2, 2\\) must be smaller"),
        (dict(image_shape=(8, 8), pool_size=6), "pool_size=6 must pool more than one"),
        (dict(image_shape=(8, 8), kernel_size=(3, 3, 3)), "kernel_size must be an int or a pair"),
        (dict(image_shape=(8, -8)), "image_shape must be an int or a pair"),
        (dict(image_shape=(8, 8), n_layers=3, pool_size=2), "pool_size must be None"),
        (dict(image_shape=(8, 8), arrangement="conv"), "arrangement='conv' needs gated=True"),
    ],
)
def test_bad_geometry_is_rejected_clearly(kwargs, match):
    X = np.random.default_rng(0).standard_normal((10, 64))
    y = np.arange(10) % 2
    with pytest.raises(ValueError, match=match):
        ConvexCNNClassifier(**kwargs).fit(X, y)


def test_feature_count_checked_at_predict():
    X, y = _images(0, n=20, H=4, W=4)
    reg = ConvexCNNRegressor(image_shape=(4, 4), kernel_size=2, gated=True, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        reg.predict(X[:, :15])


# ----------------------------------------------------------------- arrangements


def test_patch_arrangements_are_joint_over_patches():
    rng = np.random.default_rng(0)
    P = rng.standard_normal((6, 5, 3))
    arr = sample_arrangements(P, 40, kind="patch", random_state=0)
    rows = P.reshape(30, 3)
    assert arr.patterns.shape == (30, arr.n_patterns)
    np.testing.assert_array_equal(arr.patterns, rows @ arr.gates >= 0)
    # zero-weight samples are ignored when deduplicating, row by row
    sw = np.r_[np.ones(5), 0.0]
    arr_w = sample_arrangements(P, 40, kind="patch", sample_weight=sw, random_state=0)
    keys = {tuple(p) for p in arr_w.patterns[:25].T}
    assert len(keys) == arr_w.n_patterns
    with pytest.raises(ValueError, match="kind='patch' needs X of shape"):
        sample_arrangements(rows, 10, kind="patch")


def test_conv_gates_live_on_a_window():
    rng = np.random.default_rng(1)
    X = np.c_[rng.standard_normal((20, 6 * 5 * 2)), np.ones(20)]
    arr = sample_arrangements(
        X, 30, kind="conv", random_state=0,
        gate_params={"image_shape": (6, 5), "n_channels": 2, "window": (3, 2)},
    )
    G = arr.gates[:-1].T.reshape(-1, 6, 5, 2)
    for g in G:
        rows, cols = np.nonzero(np.abs(g).sum(axis=2))
        assert rows.max() - rows.min() < 3 and cols.max() - cols.min() < 2
        assert np.count_nonzero(g) == 3 * 2 * 2
    np.testing.assert_array_equal(arr.patterns, X @ arr.gates >= 0)
    with pytest.raises(ValueError, match="gate_params"):
        sample_arrangements(X, 5, kind="conv")


# ----------------------------------------------------------------- the operator


def test_patch_operator_pools_and_is_adjoint():
    rng = np.random.default_rng(2)
    n, K, h, B, C = 7, 6, 4, 5, 3
    P = rng.standard_normal((n, K, h))
    masks = rng.random((n * K, B)) < 0.5
    signs = rng.choice([-1.0, 1.0], B)
    w = rng.random(K)
    op = PatchOperator(P, masks, signs=signs, pool_weights=w, n_outputs=C)
    W = rng.standard_normal(op.coef_shape)
    # sum_b s_b sum_k w_k m_ikb x_ik^T W_b, written out
    ref = np.einsum("b,ikb,k,ikh,hbc->ic", signs, masks.reshape(n, K, B), w, P, W)
    np.testing.assert_allclose(op.forward(W), ref, rtol=1e-12)
    np.testing.assert_allclose(op.reduce(op.product(W)), ref, rtol=1e-12)
    R = rng.standard_normal((n, C))
    np.testing.assert_allclose(np.vdot(op.forward(W), R), np.vdot(W, op.adjoint(R)), rtol=1e-12)
    # explicit design, pattern-major columns
    E = op.explicit().toarray()
    np.testing.assert_allclose(E @ W[:, :, 1].T.ravel(), ref[:, 1], rtol=1e-12)
    sub = op.restrict(np.array([1, 3]))
    np.testing.assert_allclose(sub.forward(W[:, [1, 3]]), op.forward(W * np.isin(np.arange(B), [1, 3])[None, :, None]))
    assert op.astype(np.float32).forward(W).dtype == np.float32


def test_cone_problem_on_patch_rows():
    """Cone constraints live on patch rows; zero-weight samples and rows outside a block's support carry none."""
    rng = np.random.default_rng(3)
    n, K, h = 6, 4, 3
    P = rng.standard_normal((n, K, h))
    arr = sample_arrangements(P, 20, kind="patch", random_state=0)
    B = arr.n_patterns
    support = rng.random((n * K, B)) < 0.7
    op = PatchOperator(P, arr.patterns & support, pool_weights=np.full(K, 1 / K))
    sw = np.r_[np.zeros(1), np.full(n - 1, 1 / (n - 1))]
    prob = ConeConstrainedProblem(
        op, SquaredError(), ColumnGroupL2(), rng.standard_normal((n, 1)), sw, 0.1,
        cone_patterns=arr.patterns, cone_support=support, interior=arr.gates,
    )
    assert prob.multiplier_shape == (n * K, B, 1)
    assert np.all(prob.cone_signs[:K] == 0)
    assert np.all(prob.cone_signs[K:][~support[K:]] == 0)
    lam = rng.random(prob.multiplier_shape)
    W = rng.standard_normal(op.coef_shape)
    R = rng.standard_normal((n, 1))
    lhs = np.vdot(op.forward(W), R) + np.vdot(prob.constraint_values(op.product(W)), lam)
    np.testing.assert_allclose(lhs, np.vdot(W, prob.joint_adjoint(R, lam)), rtol=1e-12)
    W_feas, _ = prob.restore(rng.standard_normal(op.coef_shape) * 0.01 + arr.gates[:, :, None])
    assert prob.violation(op.product(W_feas)) == 0.0


# ----------------------------------------------------------------- convex optimum = recovered CNN


VARIANTS = {
    "exact-avg": dict(),
    "exact-sum": dict(pooling="sum"),
    "exact-local": dict(pool_size=2),
    "gated-avg": dict(gated=True),
    "gated-local": dict(gated=True, pool_size=(2, 3)),
    "gated-conv": dict(gated=True, arrangement="conv"),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("task", ["regression", "binary", "multiclass"])
def test_two_layer_objective_equals_recovered_cnn(variant, task):
    X, signal = _images(4, n=24)
    kw = dict(image_shape=(5, 5), kernel_size=2, alpha=1e-2, n_arrangements=12, random_state=0, **VARIANTS[variant])
    if task == "regression":
        y = np.c_[signal, -signal] if variant == "exact-avg" else signal
        est = ConvexCNNRegressor(**kw).fit(X, y)
    else:
        y = _labels(signal, 2 if task == "binary" else 3)
        est = ConvexCNNClassifier(**kw).fit(X, y)
    Y, kind, alpha = _targets(est, y)
    P, grid = _patches(X, 5, 5, 1, 2, 2)
    region, avg = _regions(grid, est._geometry.pool_size or grid)
    weights = np.ones(len(region)) if est.pooling == "sum" else avg
    out = _cnn_output(est, P, region, weights, X)
    U, A = _filters(est), est.output_weights_
    if est.gated:
        decay = 0.5 * (np.sum(U**2) + np.sum(A**2))
    else:
        # the exact program's decay: squared l1 norm of each filter's output weights
        decay = 0.5 * (np.sum(U**2) + np.sum(np.abs(A).sum(axis=(1, 2)) ** 2))
    np.testing.assert_allclose(_mean_loss(kind, out, Y) + alpha * decay, est.objective_, rtol=1e-6)
    np.testing.assert_allclose(est.nonconvex_objective_, est.objective_, rtol=1e-9)
    assert est.filters_.shape == (est.n_filters_, 2, 2, 1) and est.n_filters_ > 0
    assert est.dual_gap_ <= est.tol * est.objective_ * (1 + 1e-9)
    if not est.gated:
        # every filter feeds one region and one output: the l1^2 decay is the usual one
        assert np.all((A != 0).sum(axis=(1, 2)) == 1)
        assert est.constraint_violation_ <= 1e-12
    # predict is the recovered CNN, on new images too
    X_new, _ = _images(5, n=9)
    P_new, _ = _patches(X_new, 5, 5, 1, 2, 2)
    new = _cnn_output(est, P_new, region, weights, X_new)
    got = est.decision_function(X_new) if hasattr(est, "classes_") else est.predict(X_new)
    np.testing.assert_allclose(np.asarray(got).reshape(new.shape), new, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("gated", [False, True])
def test_strided_padded_multichannel_objective_equals_recovered_cnn(gated):
    """Channels, stride and padding: the recovered CNN on independently sliced patches."""
    rng = np.random.default_rng(13)
    X = rng.standard_normal((20, 5 * 5 * 2))
    y = (X[:, :4].sum(axis=1) > 0).astype(int)
    est = ConvexCNNClassifier(
        image_shape=(5, 5), n_channels=2, kernel_size=3, stride=2, padding=1, pooling="sum", alpha=1e-2,
        gated=gated, n_arrangements=10, random_state=0,
    ).fit(X, y)
    Y, kind, alpha = _targets(est, y)
    P, grid = _patches(X, 5, 5, 2, 3, 3, stride=2, pad=1)
    assert grid == est.output_shape_ == (3, 3)
    assert est.filters_.shape == (est.n_filters_, 3, 3, 2) and est.n_filters_ > 0
    region, _ = _regions(grid, grid)
    out = _cnn_output(est, P, region, np.ones(len(region)), X)
    U, A = _filters(est), est.output_weights_
    decay = 0.5 * (np.sum(U**2) + np.sum(np.abs(A).sum(axis=(1, 2)) ** 2))
    np.testing.assert_allclose(_mean_loss(kind, out, Y) + alpha * decay, est.objective_, rtol=1e-6)
    np.testing.assert_allclose(est.decision_function(X), out.ravel(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("task", ["regression", "binary"])
@pytest.mark.parametrize("gated", [False, True])
def test_three_layer_objective_equals_recovered_cnn(gated, task):
    X, signal = _images(6, n=14, H=4, W=4)
    kw = dict(image_shape=(4, 4), kernel_size=2, alpha=1e-2, n_layers=3, gated=gated,
              n_arrangements=2, n_subnetworks=3, random_state=0)
    if task == "regression":
        est = ConvexCNNRegressor(**kw).fit(X, signal)
        y = signal
    else:
        y = _labels(signal, 2)
        est = ConvexCNNClassifier(**kw).fit(X, y)
    assert est.n_filters_ > 0
    Y, kind, alpha = _targets(est, y)
    P, _ = _patches(X, 4, 4, 1, 2, 2)
    w = np.full(P.shape[1], 1 / P.shape[1])
    if gated:
        U = _filters(est)
        rows = P.reshape(-1, P.shape[2])
        first = rows @ est.gates_[:, est.filter_gates_] >= 0
        leaves = est.subnetwork_leaf_weights_[est.filter_subnetworks_]
        edges = est.subnetwork_edge_weights_[est.filter_subnetworks_]
        second = np.einsum("rmj,mj->rm", np.maximum(np.einsum("rd,mjd->rmj", rows, leaves), 0), edges) >= 0
        act = (first & second) * (rows @ U.T)
        out = np.einsum("nkm,k->nm", act.reshape(P.shape[0], P.shape[1], -1), w) @ est.output_weights_[:, 0]
        out = out + est.intercept_
        decay = 0.5 * (np.sum(U**2) + np.sum(est.output_weights_**2))
    else:
        out = _three_layer_output(est, P, w)
        v, a = est.second_layer_weights_, est.subnetwork_output_weights_
        decay = 0.5 * (np.sum(v**2) + np.sum(a**2))
        # unit-Frobenius first layer of every sub-network
        U = _filters(est)
        norms = np.bincount(est.filter_subnetworks_, weights=np.sum(U**2, axis=1))
        np.testing.assert_allclose(norms, 1.0, rtol=1e-9)
        assert est.constraint_violation_ <= 1e-9
    loss = _mean_loss(kind, out.reshape(len(Y), -1), Y)
    np.testing.assert_allclose(loss + alpha * decay, est.objective_, rtol=1e-6)
    got = est.predict(X) if task == "regression" else est.decision_function(X)
    np.testing.assert_allclose(got, out.ravel(), rtol=1e-9, atol=1e-12)


# ----------------------------------------------------------------- agreement with cvxpy


@pytest.mark.parametrize("kw", [dict(), dict(pool_size=2), dict(gated=True), dict(gated=True, pool_size=2)])
def test_two_layer_matches_cvxpy(kw):
    X, signal = _images(7, n=16, H=4, W=4)
    y = _labels(signal, 2)
    base = dict(image_shape=(4, 4), kernel_size=2, alpha=1e-2, n_arrangements=10, random_state=0, tol=1e-8, **kw)
    ours = ConvexCNNClassifier(**base).fit(X, y)
    ref = ConvexCNNClassifier(
        solver="cvxpy", solver_options={"tol_gap_rel": 1e-10, "tol_feas": 1e-10, "tol_gap_abs": 1e-12}, **base
    ).fit(X, y)
    assert ours.solver_ == ("fista" if ours.gated else "auglag") and ref.solver_ == "cvxpy"
    np.testing.assert_allclose(ours.objective_, ref.objective_, rtol=1e-6)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-3)


def test_three_layer_proximal_matches_cvxpy():
    X, signal = _images(8, n=10, H=3, W=3)
    base = dict(image_shape=(3, 3), kernel_size=2, alpha=2e-2, n_layers=3, n_arrangements=1,
                n_subnetworks=2, random_state=1)
    ref = ConvexCNNRegressor(solver="cvxpy", **base).fit(X, signal)
    ours = ConvexCNNRegressor(solver="auglag", tol=1e-5, max_iter=40000, **base).fit(X, signal)
    assert ours.solver_ == "auglag" and ref.solver_ == "cvxpy"
    # each objective is a feasible value, above the other's certified lower bound
    assert ours.objective_ >= ref.objective_ - ref.dual_gap_ - 1e-9
    assert ref.objective_ >= ours.objective_ - ours.dual_gap_ - 1e-9
    np.testing.assert_allclose(ours.objective_, ref.objective_, rtol=2e-5)


def test_gated_three_layer_matches_cvxpy():
    X, signal = _images(8, n=12, H=3, W=3)
    base = dict(image_shape=(3, 3), kernel_size=2, alpha=1e-2, n_layers=3, gated=True, n_arrangements=3,
                n_subnetworks=3, random_state=0)
    ours = ConvexCNNRegressor(tol=1e-8, max_iter=20000, **base).fit(X, signal)
    ref = ConvexCNNRegressor(solver="cvxpy", **base).fit(X, signal)
    assert ours.solver_ == "fista" and ref.solver_ == "cvxpy"
    np.testing.assert_allclose(ours.objective_, ref.objective_, rtol=1e-6)
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), atol=1e-3)


# ----------------------------------------------------------------- global optimality


def _train_cnn(P, Y, kind, alpha, region, weights, width, seed, *, steps=2000, lr=0.02, l1_output=False):
    """Adam on the weight-decay objective of a two-layer CNN without biases (numpy)."""
    rng = np.random.default_rng(seed)
    n, K, h = P.shape
    R = region.max() + 1
    Q = (region[:, None] == np.arange(R)[None, :]) * weights[:, None]  # (K, R)
    params = [rng.standard_normal((width, h)) * 0.7, rng.standard_normal((width, R)) * 0.7]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]

    def objective_and_grads(U, A):
        Z = P @ U.T  # (n, K, m)
        H = np.maximum(Z, 0)
        pooled = np.einsum("nkm,kr->nmr", H, Q)
        out = np.einsum("nmr,mr->n", pooled, A)[:, None]
        if kind == "squared":
            g = (out - Y) / n
        else:
            g = -Y * expit(-Y * out) / n
        if l1_output:
            l1 = np.abs(A).sum(axis=1)
            pen, gA = 0.5 * alpha * (np.sum(U**2) + np.sum(l1**2)), alpha * l1[:, None] * np.sign(A)
        else:
            pen, gA = 0.5 * alpha * (np.sum(U**2) + np.sum(A**2)), alpha * A
        value = _mean_loss(kind, out, Y) + pen
        gH = g[:, 0, None, None] * np.einsum("kr,mr->km", Q, A)[None] * (Z > 0)
        return value, [np.einsum("nkm,nkh->mh", gH, P) + alpha * U, np.einsum("nmr,n->mr", pooled, g[:, 0]) + gA]

    best = np.inf
    for t in range(1, steps + 1):
        value, grads = objective_and_grads(*params)
        best = min(best, value)
        for i, g in enumerate(grads):
            m[i] = 0.9 * m[i] + 0.1 * g
            v[i] = 0.999 * v[i] + 0.001 * g * g
            params[i] = params[i] - lr * (m[i] / (1 - 0.9**t)) / (np.sqrt(v[i] / (1 - 0.999**t)) + 1e-10)
    return min(best, objective_and_grads(*params)[0])


@pytest.mark.parametrize("task, pool", [("regression", None), ("binary", None), ("regression", 3)])
def test_convex_optimum_below_gradient_descent(task, pool):
    """With every pattern of the patch matrix the exact program is the global minimum."""
    rng = np.random.default_rng(9)
    n, L = 10, 7
    X = rng.standard_normal((n, L))
    signal = np.maximum(X[:, :3].sum(1), 0) - np.maximum(X[:, 4:].sum(1), 0) + 0.1 * rng.standard_normal(n)
    kw = dict(kernel_size=2, alpha=0.05 if task == "regression" else 0.01, fit_intercept=False, arrangement="exhaustive",
              n_arrangements=1000, pool_size=pool, tol=1e-9)
    if task == "regression":
        est = ConvexCNNRegressor(**kw).fit(X, signal)
        y = signal
    else:
        y = (signal > np.median(signal)).astype(int)
        est = ConvexCNNClassifier(**kw).fit(X, y)
    Y, kind, alpha = _targets(est, y)
    P, grid = _patches(X, L, 1, 1, 2, 1, bias=False)
    # all 2 * (number of patch rows) cells of the rank-2 arrangement
    assert est.gates_.shape[1] >= 2 * n * grid[0] - 2
    region, avg = _regions(grid, (pool or grid[0], 1))
    gd = [
        _train_cnn(
            P, Y, kind, alpha, region, avg, max(est.n_filters_, 4), seed, steps=1000, l1_output=pool is not None
        )
        for seed in range(5)
    ]
    assert est.n_filters_ > 0
    assert est.objective_ <= min(gd) * (1 + 1e-9)
    # not vacuous: the best run gets close to the certified optimum (within 1e-3 here)
    assert min(gd) <= est.objective_ * 1.01
    assert est.dual_gap_ <= 1e-8 * est.objective_


# ----------------------------------------------------------------- sample weights, dtypes, API


def test_weights_equal_repetition_within_certified_gaps():
    X, signal = _images(10, n=12, H=4, W=4)
    y = _labels(signal, 2)
    sw = np.r_[np.full(6, 2.0), np.ones(5), 0.0]
    kw = dict(image_shape=(4, 4), kernel_size=2, alpha=1e-2, random_state=0, tol=1e-8)
    weighted = ConvexCNNClassifier(**kw).fit(X, y, sample_weight=sw)
    keep = np.repeat(np.arange(12), sw.astype(int))
    repeated = ConvexCNNClassifier(**kw).fit(X[keep], y[keep])
    np.testing.assert_array_equal(weighted.gates_.shape, repeated.gates_.shape)
    gap = weighted.dual_gap_ + repeated.dual_gap_
    assert abs(weighted.objective_ - repeated.objective_) <= gap + 1e-12
    np.testing.assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), atol=1e-3)


def test_float32_pipeline_pickle_and_warm_start():
    X, signal = _images(11, n=30, H=4, W=4)
    y = _labels(signal, 3)
    clf = make_pipeline(StandardScaler(), ConvexCNNClassifier(image_shape=(4, 4), kernel_size=2, random_state=0))
    clf.fit(X.astype(np.float32), y)
    assert clf.score(X, y) > 0.6
    est = pickle.loads(pickle.dumps(clf[-1]))
    np.testing.assert_allclose(est.predict_proba(X[:3]), clf[-1].predict_proba(X[:3]))
    reg = ConvexCNNRegressor(image_shape=(4, 4), kernel_size=2, gated=True, warm_start=True, random_state=0, tol=1e-5)
    reg.fit(X, signal)
    first, gates = reg.n_iter_, reg.gates_.copy()
    reg.set_params(alpha=reg.alpha * 1.05).fit(X, signal)
    np.testing.assert_array_equal(reg.gates_, gates)
    assert reg.n_iter_ < first


def test_convergence_warning_and_solver_options_checked():
    X, signal = _images(12, n=20, H=4, W=4)
    with pytest.warns(ConvergenceWarning):
        ConvexCNNRegressor(image_shape=(4, 4), kernel_size=2, max_iter=1, random_state=0).fit(X, signal)
    with pytest.raises(ValueError, match="solver='fista' solves gated programs"):
        ConvexCNNRegressor(image_shape=(4, 4), solver="fista").fit(X, signal)
    with pytest.raises(ValueError, match="solver_options has keys"):
        ConvexCNNRegressor(image_shape=(4, 4), solver_options={"bogus": 1}).fit(X, signal)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        ConvexCNNRegressor(image_shape=(4, 4), kernel_size=2, random_state=0).fit(X, signal)


def test_digits_filters_and_local_pooling_helps():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X[:400] / 16
    y = y[:400]
    kw = dict(image_shape=(8, 8), gated=True, n_arrangements=40, alpha=1e-3, random_state=0)
    local = ConvexCNNClassifier(pool_size=3, **kw).fit(X[:300], y[:300])
    assert local.filters_.shape[1:] == (3, 3, 1)
    assert local.output_weights_.shape[1] == local.n_pool_regions_ == 4
    # pooling over 2x2 regions keeps where strokes are: better than global pooling
    glob = ConvexCNNClassifier(**kw).fit(X[:300], y[:300])
    assert local.score(X[300:], y[300:]) > max(0.85, glob.score(X[300:], y[300:]))


def test_exact_fit_ends_at_the_optimum_below_tol():
    # The augmented Lagrangian certifies within tol=1e-4; the finish on the
    # faces of the patch cones (solvers/face_newton.py) then takes the point
    # to the optimum itself, so weighted and repeated fits agree far below tol.
    X, signal = _images(7, n=16, H=4, W=4)
    base = {"image_shape": (4, 4), "kernel_size": 2, "alpha": 1e-2, "n_arrangements": 10, "random_state": 0}
    ours = ConvexCNNRegressor(**base).fit(X, signal)
    ref = ConvexCNNRegressor(
        solver="cvxpy", solver_options={"tol_gap_rel": 1e-11, "tol_feas": 1e-11, "tol_gap_abs": 1e-13}, **base
    ).fit(X, signal)
    assert ours.solver_ == "auglag"
    np.testing.assert_allclose(ours.objective_, ref.objective_, rtol=1e-9)
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-5, atol=1e-7)
