"""Sparse X (issue 23): the two-layer estimators fit and predict on scipy sparse input.

The fitted program must be the dense one (same gates, objective within the
certified gaps) and ``X`` must never be densified.
"""

import tracemalloc
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from skconvex import (
    ConvexGatedReLUClassifier,
    ConvexGatedReLURegressor,
    ConvexReLUClassifier,
    ConvexReLURegressor,
)
from skconvex.programs.operators import PatternOperator

SPARSE_TYPES = [sp.csr_matrix, sp.csc_matrix, sp.csr_array, sp.csc_array]


def _data(n=80, d=8, density=0.3, seed=0):
    rng = np.random.default_rng(seed)
    Xs = sp.random(n, d, density=density, random_state=seed, format="csr", data_rvs=rng.standard_normal)
    X = Xs.toarray()
    y = np.maximum(X @ rng.standard_normal(d), 0) + 0.1 * rng.standard_normal(n)
    return X, Xs, y


def _fit_quietly(est, X, y):
    # The matrix-free Newton variant (the exact estimators' solver for
    # sparse X) may stop short of tol; the comparison below uses the gaps it
    # certifies, which is what the contract promises.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


def _assert_same_fit(dense, sparse, X, atol=1e-8):
    slack = dense.dual_gap_ + sparse.dual_gap_ + atol * max(1.0, abs(dense.objective_))
    assert abs(dense.objective_ - sparse.objective_) <= slack
    np.testing.assert_array_equal(dense.gates_, sparse.gates_)


@pytest.mark.parametrize("to_sparse", SPARSE_TYPES)
def test_gated_regressor_sparse_equals_dense(to_sparse):
    X, Xs, y = _data()
    kw = dict(n_arrangements=30, random_state=0)
    dense = ConvexGatedReLURegressor(**kw).fit(X, y)
    sparse = ConvexGatedReLURegressor(**kw).fit(to_sparse(Xs), y)
    _assert_same_fit(dense, sparse, X)
    np.testing.assert_allclose(sparse.predict(X), dense.predict(X), rtol=1e-5, atol=1e-6)
    # predict on sparse input equals predict on the same rows dense.
    np.testing.assert_allclose(sparse.predict(to_sparse(Xs)), sparse.predict(X), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("to_sparse", [sp.csr_array, sp.csc_matrix])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_gated_classifier_sparse_equals_dense(to_sparse, n_classes):
    X, Xs, y = _data()
    labels = np.digitize(y, np.quantile(y, np.linspace(0, 1, n_classes + 1)[1:-1]))
    kw = dict(n_arrangements=30, random_state=0)
    dense = ConvexGatedReLUClassifier(**kw).fit(X, labels)
    sparse = ConvexGatedReLUClassifier(**kw).fit(to_sparse(Xs), labels)
    _assert_same_fit(dense, sparse, X)
    np.testing.assert_allclose(
        sparse.predict_proba(to_sparse(Xs)), dense.predict_proba(X), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_array_equal(sparse.predict(to_sparse(Xs)), sparse.predict(X))


def test_gated_float32_sparse():
    X, Xs, y = _data()
    kw = dict(n_arrangements=30, random_state=0)
    dense = ConvexGatedReLURegressor(**kw).fit(X.astype(np.float32), y)
    sparse = ConvexGatedReLURegressor(**kw).fit(Xs.astype(np.float32), y)
    _assert_same_fit(dense, sparse, X, atol=1e-5)
    assert sparse.predict(Xs.astype(np.float32)).dtype == np.float32


@pytest.mark.parametrize("solver", ["auto", "cvxpy"])
def test_relu_regressor_sparse_equals_dense(solver):
    X, Xs, y = _data(n=60, d=6)
    kw = dict(n_arrangements=12, random_state=0, solver=solver)
    dense = _fit_quietly(ConvexReLURegressor(**kw), X, y)
    sparse = _fit_quietly(ConvexReLURegressor(**kw), sp.csc_array(Xs), y)
    _assert_same_fit(dense, sparse, X, atol=1e-6)
    np.testing.assert_allclose(sparse.predict(Xs), sparse.predict(X), rtol=1e-12, atol=1e-12)
    # Predictions agree as far as the certified objectives allow.
    scale = np.abs(dense.predict(X)).max()
    assert np.abs(sparse.predict(X) - dense.predict(X)).max() <= 0.1 * scale


def test_relu_classifier_sparse_equals_dense():
    X, Xs, y = _data(n=60, d=6)
    labels = (y > np.median(y)).astype(int)
    kw = dict(n_arrangements=12, random_state=0)
    dense = _fit_quietly(ConvexReLUClassifier(**kw), X, labels)
    sparse = _fit_quietly(ConvexReLUClassifier(**kw), sp.csr_matrix(Xs), labels)
    _assert_same_fit(dense, sparse, X, atol=1e-6)
    np.testing.assert_array_equal(sparse.predict(Xs), sparse.predict(X))
    assert np.mean(sparse.predict(X) == dense.predict(X)) >= 0.95


def test_relu_sparse_refuses_dense_only_solvers():
    X, Xs, y = _data(n=30, d=4)
    with pytest.raises(ValueError, match="inner'\\]='newton' needs dense X"):
        ConvexReLURegressor(solver_options={"inner": "newton"}, n_arrangements=4).fit(Xs, y)


@pytest.mark.parametrize(
    "Est", [ConvexGatedReLURegressor, ConvexReLURegressor], ids=lambda e: e.__name__
)
def test_sparse_bad_input_errors(Est):
    _, Xs, y = _data(n=30, d=4)
    bad = Xs.copy()
    bad.data[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        Est(n_arrangements=4).fit(bad, y)
    bad.data[0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        Est(n_arrangements=4).fit(bad, y)
    est = Est(n_arrangements=4, random_state=0)
    _fit_quietly(est, Xs, y)
    bad.data[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        est.predict(bad)
    # scipy.sparse holds no strings; complex is its non-real dtype.
    with pytest.raises(ValueError, match="Complex data not supported"):
        Est(n_arrangements=4).fit(Xs.astype(np.complex128), y)


def test_sparse_operator_matches_dense():
    rng = np.random.default_rng(1)
    X, Xs, _ = _data(n=40, d=5)
    masks = rng.random((40, 7)) > 0.5
    for C in (1, 3):
        dense = PatternOperator(X, masks, n_outputs=C)
        sparse = PatternOperator(Xs, masks, n_outputs=C)
        assert sparse.sparse and not dense.sparse
        W = rng.standard_normal(dense.coef_shape)
        R = rng.standard_normal((40, C))
        np.testing.assert_allclose(sparse.forward(W), dense.forward(W), atol=1e-12)
        np.testing.assert_allclose(sparse.adjoint(R), dense.adjoint(R), atol=1e-12)
        np.testing.assert_allclose(
            sparse.explicit().toarray(), dense.explicit().toarray(), atol=1e-12
        )
    h = rng.random(40)
    dense, sparse = PatternOperator(X, masks), PatternOperator(Xs, masks)
    W = rng.standard_normal(dense.coef_shape)
    np.testing.assert_allclose(sparse.block_gram_diagonals(h), dense.block_gram_diagonals(h))
    np.testing.assert_allclose(sparse.block_gram_products(W, h), dense.block_gram_products(W, h))
    assert sp.issparse(sparse.astype(np.float32).X)
    assert sp.issparse(sparse.restrict(np.array([0, 2])).X)


def test_sparse_fit_never_densifies():
    n, d = 20000, 5000
    rng = np.random.default_rng(0)
    # n d / 1000 nonzeros at random places; scipy.sparse.random would spend seconds
    # drawing them without replacement from the n d cells.
    nnz = n * d // 1000
    X = sp.csr_array(
        (rng.random(nnz), (rng.integers(0, n, nnz), rng.integers(0, d, nnz))), shape=(n, d)
    )
    y = np.asarray(X @ rng.standard_normal(d)).ravel() + 0.01 * rng.standard_normal(n)
    dense_bytes = 8 * n * d  # 800 MB
    tracemalloc.start()
    try:
        est = ConvexGatedReLURegressor(n_arrangements=10, max_iter=50, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X, y)
        est.predict(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"peak traced memory {peak / 2**20:.1f} MiB (dense X would be {dense_bytes / 2**20:.0f} MiB)")
    assert peak < dense_bytes / 10


def _midpoint_bound(dense, sparse, curvature):
    """Right side of :math:`\\sum_i s_i m_i (z^d_i - z^s_i)^2 \\le 4 (g_d + g_s)`.

    Both fits are feasible points of the same convex program with
    objectives within their gaps ``g`` of the optimum, so their midpoint
    (feasible: the cones are convex) is no better than the optimum; along
    the segment each row's loss has curvature at least ``m_i`` (``s_i`` the
    normalized row weight), which bounds the distance of the predictions.
    """
    return 4 * (dense.dual_gap_ + sparse.dual_gap_) + 1e-10 * max(1.0, abs(dense.objective_))


@pytest.mark.parametrize("tol", [None, 1e-6])
@pytest.mark.parametrize("kind", ["regressor", "classifier"])
def test_relu_sparse_default_fit_certifies_like_dense(kind, tol):
    # Small sparse X (issue 18): the default solver runs its exact Newton
    # systems on a dense copy, so the fit certifies like the dense one; the
    # matrix-free variant stopped short of tol=1e-6 on this data (relative
    # gaps 9e-6 and 3e-5 after 500 Newton steps).
    X, Xs, y = _data(n=60, d=6)
    if kind == "regressor":
        Est, target = ConvexReLURegressor, y
    else:
        Est, target = ConvexReLUClassifier, (y > np.median(y)).astype(int)
    fits = {}
    for name, data in (("dense", X), ("sparse", Xs)):
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            est = Est(random_state=0) if tol is None else Est(random_state=0, tol=tol)
            fits[name] = est.fit(data, target)
    dense, sparse = fits["dense"], fits["sparse"]
    for est in (dense, sparse):
        assert est.dual_gap_ <= est.tol * abs(est.objective_)
    _assert_same_fit(dense, sparse, X)
    if kind == "regressor":
        z_d, z_s = dense.predict(X), sparse.predict(X)
        curvature = np.ones(len(X))  # half squared error
    else:
        z_d, z_s = dense.decision_function(X), sparse.decision_function(X)
        # sigma' is quasi-concave: its minimum on a segment is at an end.
        p_d, p_s = dense.predict_proba(X)[:, 1], sparse.predict_proba(X)[:, 1]
        curvature = np.minimum(p_d * (1 - p_d), p_s * (1 - p_s))
        np.testing.assert_array_equal(sparse.predict(Xs), sparse.predict(X))
    distance = np.mean(curvature * (z_d - z_s) ** 2)
    assert distance <= _midpoint_bound(dense, sparse, curvature)
    np.testing.assert_allclose(sparse.predict(Xs), sparse.predict(X), rtol=1e-12, atol=1e-12)


def test_newton_densifies_only_small_sparse_problems():
    from skconvex import config_context
    from skconvex.programs.cones import ConeConstrainedProblem
    from skconvex.programs.datafits import SquaredError
    from skconvex.programs.penalties import ColumnGroupL2
    from skconvex.solvers.auglag import _dense_for_newton

    def problem(n, d, P=2):
        rng = np.random.default_rng(0)
        Xs = sp.random(n, d, density=0.01, format="csr", random_state=0)
        masks = rng.random((n, P)) > 0.5
        op = PatternOperator(Xs, np.hstack([masks, masks]), signs=[1] * P + [-1] * P)
        return ConeConstrainedProblem(
            op, SquaredError(), ColumnGroupL2(), rng.standard_normal(n), np.full(n, 1 / n), 0.1
        )

    small = problem(60, 6)
    dense = _dense_for_newton(small)
    assert not dense.operator.sparse and small.operator.sparse
    np.testing.assert_array_equal(dense.operator.X, small.operator.X.toarray())
    np.testing.assert_array_equal(dense.cone_signs, small.cone_signs)
    W = np.random.default_rng(1).standard_normal(small.coef_shape)
    np.testing.assert_allclose(dense.objective(W)[0], small.objective(W)[0], rtol=1e-12)
    # Over the memory budget, or over the 200 MiB cap (n^2 doubles of the
    # squared loss's system: 288 MB at n = 6000), X stays sparse.
    with config_context(max_memory=10_000):
        assert _dense_for_newton(small) is small
    large = problem(6000, 20)
    assert _dense_for_newton(large) is large
    assert dense.densified() is dense


def test_pattern_operator_densified_matches_sparse():
    rng = np.random.default_rng(2)
    _, Xs, _ = _data(n=40, d=5)
    masks = rng.random((40, 7)) > 0.5
    sparse = PatternOperator(Xs, masks, n_outputs=2)
    dense = sparse.densified()
    assert sparse.sparse and not dense.sparse and dense.densified() is dense
    assert dense.masks is sparse.masks and dense.coef_shape == sparse.coef_shape
    W = rng.standard_normal(sparse.coef_shape)
    R = rng.standard_normal((40, 2))
    np.testing.assert_allclose(dense.forward(W), sparse.forward(W), atol=1e-12)
    np.testing.assert_allclose(dense.adjoint(R), sparse.adjoint(R), atol=1e-12)


@pytest.mark.parametrize("solver_options", [None, {"inner": "newton-cg"}], ids=["auto", "newton-cg"])
def test_sparse_exact_fit_never_densifies(solver_options):
    # X dense would be 229 MiB: far above any size at which the exact solver
    # may choose to densify a small sparse X (its dense Newton systems are at
    # least n x d), so the matrix-free path runs and X stays sparse.
    n, d = 6000, 5000
    rng = np.random.default_rng(0)
    # n d / 1000 nonzeros at random places; scipy.sparse.random would spend seconds
    # drawing them without replacement from the n d cells.
    nnz = n * d // 1000
    X = sp.csr_array(
        (rng.random(nnz), (rng.integers(0, n, nnz), rng.integers(0, d, nnz))), shape=(n, d)
    )
    y = np.asarray(X @ rng.standard_normal(d)).ravel() + 0.01 * rng.standard_normal(n)
    dense_bytes = 8 * n * d
    tracemalloc.start()
    try:
        est = ConvexReLURegressor(
            n_arrangements=6, max_iter=5, random_state=0, solver_options=solver_options
        )
        _fit_quietly(est, X, y)
        est.predict(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"peak traced memory {peak / 2**20:.1f} MiB (dense X would be {dense_bytes / 2**20:.0f} MiB)")
    assert peak < dense_bytes / 4
    assert np.isfinite(est.objective_) and est.dual_gap_ >= 0


@pytest.mark.parametrize(
    "Est, kw",
    [
        (ConvexGatedReLURegressor, {"n_arrangements": 30}),
        (ConvexGatedReLUClassifier, {"n_arrangements": 30}),
        (ConvexReLURegressor, {"n_arrangements": 8, "tol": 1e-3}),
        (ConvexReLUClassifier, {"n_arrangements": 8, "tol": 1e-3}),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_sparse_n_jobs_invariance_and_reproducibility(Est, kw):
    # The exact estimators' matrix-free solver once started its curvature
    # estimate (ARPACK) from a random vector: refits differed.
    _, Xs, y = _data(n=80, d=6)
    if Est in (ConvexGatedReLUClassifier, ConvexReLUClassifier):
        y = (y > np.median(y)).astype(int)
    Xs = sp.csr_array(Xs)
    one = _fit_quietly(Est(n_jobs=1, random_state=0, **kw), Xs, y)
    two = _fit_quietly(Est(n_jobs=2, random_state=0, **kw), Xs, y)
    again = _fit_quietly(Est(n_jobs=1, random_state=0, **kw), Xs, y)
    np.testing.assert_array_equal(one.gates_, two.gates_)
    np.testing.assert_allclose(one.pattern_weights_, two.pattern_weights_, rtol=1e-10, atol=1e-12)
    assert one.objective_ == pytest.approx(two.objective_, rel=1e-10)
    # Same seed, same n_jobs: bitwise the same fit.
    np.testing.assert_array_equal(one.gates_, again.gates_)
    np.testing.assert_array_equal(one.pattern_weights_, again.pattern_weights_)
    np.testing.assert_array_equal(one.predict(Xs), again.predict(Xs))
    # Another seed draws other gates.
    other = _fit_quietly(Est(n_jobs=1, random_state=1, **kw), Xs, y)
    assert not np.array_equal(other.gates_, one.gates_)
