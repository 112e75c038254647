"""Row blocks (issue 23): the blocked operator is the whole-array one, in bounded memory.

Products are compared with :class:`PatternOperator` on the same data and
patterns; fits with small blocks must certify the whole-array optimum (same
gates, objectives within the two certified gaps), and the peak memory of a
blocked fit is measured with :mod:`tracemalloc` against a budget that the
whole-array plan exceeds.
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
    MemoryBudgetError,
    config_context,
)
from skconvex._config import choose_block_size
from skconvex.arrangements import sample_arrangements
from skconvex.programs.operators import PatternOperator
from skconvex.programs.row_blocks import RowBlockOperator, packed_patterns


def _data(n=300, d=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.sin(X[:, 0]) + X[:, 1] * X[:, 2] + 0.1 * rng.standard_normal(n)
    return X, y


def _operators(n=203, d=6, P=17, C=1, block_size=24, sparse=False, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    if sparse:
        X[rng.random((n, d)) < 0.6] = 0.0
    gates = rng.standard_normal((d, P))
    patterns = X @ gates >= 0
    Xo = sp.csr_array(X) if sparse else X
    dense = PatternOperator(Xo, patterns, n_outputs=C, dtype=dtype)
    blocked = RowBlockOperator(Xo, np.packbits(patterns, axis=0), block_size=block_size, n_outputs=C, dtype=dtype)
    return dense, blocked, rng


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("C", [1, 3])
@pytest.mark.parametrize("block_size", [8, 24, 1000])
def test_products_equal_whole_array_operator(sparse, C, block_size):
    dense, blocked, rng = _operators(C=C, block_size=block_size, sparse=sparse)
    assert blocked.coef_shape == dense.coef_shape
    W = rng.standard_normal(dense.coef_shape)
    W[:, ::3] = 0.0  # zero blocks take the live-block path
    R = rng.standard_normal((dense.n_samples, C))
    np.testing.assert_allclose(blocked.forward(W), dense.forward(W), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(blocked.adjoint(R), dense.adjoint(R), rtol=1e-12, atol=1e-11)
    # adjoint identity <A W, R> = <W, A* R>
    assert np.isclose(np.vdot(blocked.forward(W), R), np.vdot(W, blocked.adjoint(R)), rtol=1e-12)
    h = rng.random(dense.n_samples)
    np.testing.assert_allclose(blocked.block_gram_diagonals(h), dense.block_gram_diagonals(h), rtol=1e-12)
    if C == 1:
        np.testing.assert_allclose(
            blocked.block_gram_products(W, h), dense.block_gram_products(W, h), rtol=1e-11, atol=1e-11
        )
    s = rng.random(dense.n_samples)
    assert np.isclose(blocked.lipschitz(s), dense.lipschitz(s), rtol=1e-10)
    keep = np.array([0, 4, 5, 11])
    np.testing.assert_allclose(
        blocked.restrict(keep).forward(W[:, keep]), dense.restrict(keep).forward(W[:, keep]), rtol=1e-12, atol=1e-12
    )
    np.testing.assert_allclose(
        blocked.restrict(keep).adjoint(R), dense.restrict(keep).adjoint(R), rtol=1e-12, atol=1e-11
    )
    lin = blocked.aslinearoperator()
    np.testing.assert_allclose(lin.matvec(W.ravel()), dense.forward(W).ravel(), rtol=1e-12, atol=1e-12)


def test_float32_operator_shares_X_and_casts_per_block():
    dense, blocked, rng = _operators(dtype=np.float32)
    X32 = dense.X
    blocked = RowBlockOperator(X32, np.packbits(dense.masks > 0, axis=0), block_size=16, dtype=np.float32)
    assert blocked.X.dtype == np.float32
    op64 = blocked.astype(np.float64)
    assert op64.dtype == np.float64 and op64.X is blocked.X  # no float64 copy of X
    W = rng.standard_normal(dense.coef_shape)
    ref = PatternOperator(X32.astype(np.float64), dense.masks > 0, dtype=np.float64)
    out = op64.forward(W)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, ref.forward(W), rtol=1e-12, atol=1e-12)
    assert blocked.forward(W).dtype == np.float32


def test_threads_do_not_change_results():
    dense, blocked, rng = _operators(n=1000, block_size=64)
    threaded = RowBlockOperator(blocked.X, np.packbits(dense.masks > 0, axis=0), block_size=64, n_jobs=2)
    W = rng.standard_normal(dense.coef_shape)
    R = rng.standard_normal((1000, 1))
    np.testing.assert_array_equal(threaded.forward(W), blocked.forward(W))
    np.testing.assert_array_equal(threaded.adjoint(R), blocked.adjoint(R))



@pytest.mark.parametrize("C", [1, 3])
def test_reused_work_arrays_keep_products_exact_and_operator_picklable(C):
    # Products reuse per-thread work arrays (masks, X_b W, a float32 cast of a
    # float64 X_b): repeated products, products of a restricted copy in
    # between, and an unpickled copy (dask moves row blocks between workers)
    # all give the whole-array operator's results.
    import pickle

    dense, blocked, rng = _operators(n=203, P=17, C=C, block_size=24)
    ops32 = (dense.astype(np.float32), blocked.astype(np.float32))
    for d_op, b_op in ((dense, blocked), ops32):
        tol = 1e-12 if b_op.dtype == np.float64 else 1e-5
        W = rng.standard_normal(d_op.coef_shape)
        R = rng.standard_normal((203, C))
        first = (b_op.forward(W), b_op.adjoint(R))
        sub = b_op.restrict(np.arange(0, 17, 3))
        sub.forward(W[:, ::3]), sub.adjoint(R)
        again = pickle.loads(pickle.dumps(b_op))
        for op in (b_op, again):
            np.testing.assert_allclose(op.forward(W), d_op.forward(W), rtol=tol, atol=tol)
            np.testing.assert_allclose(op.adjoint(R), d_op.adjoint(R), rtol=tol, atol=tol)
        np.testing.assert_array_equal(first[0], b_op.forward(W))
        np.testing.assert_array_equal(first[1], b_op.adjoint(R))


def test_packed_patterns_and_blocked_sampling_match_whole():
    X, _ = _data(n=301)
    gates = np.random.default_rng(1).standard_normal((X.shape[1], 40))
    np.testing.assert_array_equal(packed_patterns(X, gates, 13), np.packbits(X @ gates >= 0, axis=0))
    sw = np.ones(301)
    sw[::5] = 0.0
    whole = sample_arrangements(X, 200, sample_weight=sw, packed=True, random_state=0)
    blocked = sample_arrangements(X, 200, sample_weight=sw, packed=True, random_state=0, row_block_size=40)
    np.testing.assert_array_equal(whole.gates, blocked.gates)
    np.testing.assert_array_equal(whole.patterns, blocked.patterns)
    with pytest.raises(ValueError, match="packed=True"):
        sample_arrangements(X, 20, row_block_size=40)


def _assert_same_fit(whole, blocked):
    np.testing.assert_array_equal(whole.gates_, blocked.gates_)
    slack = whole.dual_gap_ + blocked.dual_gap_ + 1e-9 * max(1.0, abs(whole.objective_))
    assert abs(whole.objective_ - blocked.objective_) <= slack


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_small_block_regression_fit_equals_whole_fit(dtype):
    X, y = _data()
    X = X.astype(dtype)
    kw = dict(alpha=1e-2, n_arrangements=40, random_state=0, tol=1e-6)
    whole = ConvexGatedReLURegressor(block_size=None, **kw).fit(X, y)
    blocked = ConvexGatedReLURegressor(block_size=16, **kw).fit(X, y)
    _assert_same_fit(whole, blocked)
    np.testing.assert_allclose(blocked.predict(X), whole.predict(X), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_small_block_classification_fit_equals_whole_fit(n_classes):
    X, y = _data()
    labels = np.digitize(y, np.quantile(y, np.linspace(0, 1, n_classes + 1)[1:-1]))
    kw = dict(alpha=1e-2, n_arrangements=30, random_state=0, tol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        whole = ConvexGatedReLUClassifier(block_size=None, **kw).fit(X, labels)
        blocked = ConvexGatedReLUClassifier(block_size=24, **kw).fit(X, labels)
    _assert_same_fit(whole, blocked)
    np.testing.assert_allclose(blocked.predict_proba(X), whole.predict_proba(X), rtol=1e-3, atol=1e-3)


def test_blocked_sparse_fit_equals_dense_whole_fit():
    X, y = _data()
    X[np.random.default_rng(3).random(X.shape) < 0.5] = 0.0
    kw = dict(alpha=1e-2, n_arrangements=30, random_state=0, tol=1e-6)
    whole = ConvexGatedReLURegressor(block_size=None, **kw).fit(X, y)
    blocked = ConvexGatedReLURegressor(block_size=40, **kw).fit(sp.csr_array(X), y)
    _assert_same_fit(whole, blocked)


def test_warm_start_reuses_gates_when_blocked():
    X, y = _data()
    est = ConvexGatedReLURegressor(alpha=1e-1, n_arrangements=30, random_state=0, block_size=32, warm_start=True)
    est.fit(X, y)
    gates = est.gates_.copy()
    est.set_params(alpha=1e-2).fit(X, y)
    np.testing.assert_array_equal(est.gates_, gates)
    cold = ConvexGatedReLURegressor(alpha=1e-2, n_arrangements=30, random_state=0, block_size=None).fit(X, y)
    assert abs(est.objective_ - cold.objective_) <= est.dual_gap_ + cold.dual_gap_ + 1e-9


def test_n_jobs_invariance_and_reproducibility():
    X, y = _data(n=400)
    kw = dict(n_arrangements=30, random_state=0, block_size=64)
    one = ConvexGatedReLURegressor(n_jobs=1, **kw).fit(X, y)
    two = ConvexGatedReLURegressor(n_jobs=2, **kw).fit(X, y)
    again = ConvexGatedReLURegressor(n_jobs=1, **kw).fit(X, y)
    np.testing.assert_array_equal(one.gates_, two.gates_)
    np.testing.assert_allclose(one.pattern_weights_, two.pattern_weights_, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(one.pattern_weights_, again.pattern_weights_)
    other = ConvexGatedReLURegressor(n_jobs=1, n_arrangements=30, random_state=1, block_size=64).fit(X, y)
    assert not np.array_equal(other.gates_, one.gates_)


def test_peak_memory_of_blocked_fit_stays_under_budget():
    # n x P float arrays of the whole-array plan are ~20 MB here; blocks of
    # 512 rows keep the fit's peak under 8 MiB (X itself is 0.5 MB).
    rng = np.random.default_rng(0)
    n, d = 12000, 5
    X = rng.standard_normal((n, d))
    y = np.maximum(X @ rng.standard_normal(d), 0)
    budget = 8 * 2**20
    kw = dict(alpha=1e-2, n_arrangements=100, random_state=0, max_iter=30)
    with config_context(max_memory=budget):
        with pytest.raises(MemoryBudgetError):
            ConvexGatedReLURegressor(block_size=None, **kw).fit(X, y)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            tracemalloc.start()
            try:
                est = ConvexGatedReLURegressor(block_size="auto", **kw).fit(X, y)
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
    assert peak < budget, peak
    assert est.pattern_weights_.shape[0] > 50
    # "auto" chose blocks (the whole plan does not fit) and an explicit size works too
    with config_context(max_memory=budget):
        assert choose_block_size("auto", n, whole_bytes=2 * budget, bytes_per_row=1000, what="x") is not None
        assert choose_block_size("auto", n, whole_bytes=budget // 2, bytes_per_row=1000, what="x") is None
    assert choose_block_size(100, n, whole_bytes=0, bytes_per_row=1, what="x") == 100
    assert choose_block_size(None, n, whole_bytes=10**15, bytes_per_row=1, what="x") is None


def test_auto_without_room_for_a_block_raises():
    with config_context(max_memory=1000):
        with pytest.raises(MemoryBudgetError, match="n_arrangements"):
            choose_block_size("auto", 10**6, whole_bytes=10**9, bytes_per_row=10**4, what="A fit")


@pytest.mark.parametrize("bad", [0, -5, 2.5, "big"])
def test_bad_block_size_raises(bad):
    X, y = _data(n=50)
    with pytest.raises((ValueError, TypeError), match="block_size"):
        ConvexGatedReLURegressor(block_size=bad, n_arrangements=5).fit(X, y)


@pytest.mark.parametrize("bad", [0, -1, 1.5, None])
def test_operator_rejects_bad_block_size(bad):
    dense, blocked, _ = _operators()
    with pytest.raises(ValueError, match="block_size"):
        RowBlockOperator(blocked.X, np.packbits(dense.masks > 0, axis=0), block_size=bad)


def test_operator_rejects_unpacked_patterns():
    dense, blocked, _ = _operators()
    with pytest.raises(ValueError, match="packbits"):
        RowBlockOperator(blocked.X, dense.masks > 0, block_size=8)


@pytest.mark.parametrize("P", [16, 17, 1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8])
def test_masks_block_unpacks_exactly(P, dtype):
    # float32 unpacks through a byte -> 8 floats table, the others through
    # numpy.unpackbits: both must give the patterns, padding bits cut off.
    dense, blocked, _ = _operators(n=75, P=P, block_size=16, dtype=np.float32)
    masks = dense.masks > 0
    for k, s in enumerate(blocked._row_slices()):
        M = blocked.masks_block(k, dtype)
        assert M.dtype == dtype and M.shape == (s.stop - s.start, P)
        np.testing.assert_array_equal(M, masks[s].astype(dtype))
