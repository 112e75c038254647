import numpy as np
import pytest
from joblib import parallel_config

from skconvex import MemoryBudgetError, compute_patterns, config_context, sample_arrangements


def test_patterns_match_gates_and_are_distinct(rng):
    X = rng.standard_normal((40, 3))
    arr = sample_arrangements(X, 300, random_state=0)
    assert arr.gates.shape == (3, arr.n_patterns)
    assert arr.patterns.shape == (40, arr.n_patterns)
    np.testing.assert_array_equal(arr.patterns, X @ arr.gates >= 0)
    # distinct and never all-zero
    assert len({p.tobytes() for p in arr.patterns.T}) == arr.n_patterns
    assert arr.patterns.any(axis=0).all()
    assert arr.n_sampled == 300
    assert 0 < arr.n_patterns <= 300


def test_first_occurrence_order_and_gate_index(rng):
    X = rng.standard_normal((10, 2))
    arr = sample_arrangements(X, 200, random_state=1)
    assert np.all(np.diff(arr.gate_index) > 0)
    # Re-drawing the same gates reproduces the kept ones at gate_index.
    seq = np.random.SeedSequence(1).spawn(1)[0]
    all_gates = np.random.default_rng(seq).standard_normal((2, 200))
    np.testing.assert_allclose(all_gates[:, arr.gate_index], arr.gates)


def test_rank_two_count_bounded_by_theory(rng):
    # n points in general position in R^2 (through the origin): 2n cells.
    X = rng.standard_normal((12, 2))
    arr = sample_arrangements(X, 20000, random_state=0)
    assert arr.n_patterns <= 2 * 12
    assert arr.n_patterns >= 2 * 12 - 4  # small cells may be missed


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_result_independent_of_n_jobs_and_batches(rng, n_jobs):
    X = rng.standard_normal((50, 4))
    ref = sample_arrangements(X, 700, batch_size=64, n_jobs=1, random_state=3)
    got = sample_arrangements(X, 700, batch_size=64, n_jobs=n_jobs, random_state=3)
    np.testing.assert_array_equal(ref.gates, got.gates)
    np.testing.assert_array_equal(ref.patterns, got.patterns)


def test_result_independent_of_joblib_backend(rng):
    X = rng.standard_normal((30, 3))
    ref = sample_arrangements(X, 300, batch_size=50, random_state=5)
    with parallel_config(backend="loky", n_jobs=2):
        got = sample_arrangements(X, 300, batch_size=50, random_state=5)
    np.testing.assert_array_equal(ref.gates, got.gates)


def test_random_state_reproducible_and_different(rng):
    X = rng.standard_normal((30, 3))
    a = sample_arrangements(X, 100, random_state=0)
    b = sample_arrangements(X, 100, random_state=0)
    c = sample_arrangements(X, 100, random_state=1)
    np.testing.assert_array_equal(a.gates, b.gates)
    assert a.gates.shape != c.gates.shape or not np.allclose(a.gates, c.gates)
    d = sample_arrangements(X, 100, random_state=np.random.RandomState(0))
    assert d.n_patterns > 0


def test_packed_patterns_roundtrip(rng):
    X = rng.standard_normal((37, 3))
    arr = sample_arrangements(X, 100, random_state=0)
    packed = sample_arrangements(X, 100, random_state=0, packed=True)
    assert packed.patterns.shape == (5, arr.n_patterns)
    np.testing.assert_array_equal(packed.unpacked(37), arr.patterns)
    np.testing.assert_array_equal(compute_patterns(X, arr.gates, packed=True), packed.patterns)


def test_zero_weight_rows_do_not_split_patterns(rng):
    X = rng.standard_normal((20, 3))
    w = np.ones(20)
    w[:5] = 0
    full = sample_arrangements(X, 400, sample_weight=w, random_state=0)
    kept = sample_arrangements(X[5:], 400, random_state=0)
    np.testing.assert_array_equal(full.gates, kept.gates)


def test_all_zero_pattern_dropped():
    # Every gate with negative last coordinate fires nowhere on this data.
    X = np.c_[np.zeros((6, 1)), np.ones((6, 1))]
    arr = sample_arrangements(X, 100, random_state=0)
    assert arr.n_patterns == 1
    assert arr.patterns.all()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_arrangements": 0}, "n_arrangements"),
        ({"n_arrangements": 10, "kind": "nope"}, "kind"),
        ({"n_arrangements": 10, "batch_size": 0}, "batch_size"),
        ({"n_arrangements": 10, "sample_weight": np.ones(3)}, "sample_weight"),
    ],
)
def test_bad_parameters(rng, kwargs, match):
    with pytest.raises(ValueError, match=match):
        sample_arrangements(rng.standard_normal((5, 2)), **kwargs)


def test_memory_guard_refuses_before_allocating(rng):
    X = rng.standard_normal((1000, 3))
    with config_context(max_memory=10_000):
        with pytest.raises(MemoryBudgetError, match="n_arrangements"):
            sample_arrangements(X, 1000, random_state=0)
    # and it is a ValueError too
    with config_context(max_memory=10_000):
        with pytest.raises(ValueError):
            sample_arrangements(X, 1000, random_state=0)
