"""Sub-network sampling, nested cone programs and their solvers (the pieces of the deep models)."""

import numpy as np
import pytest

from skconvex import sample_arrangements, sample_subnetworks
from skconvex.arrangements import compute_subnetwork_patterns
from skconvex.programs.datafits import Logistic, SquaredError
from skconvex.programs.deep import path_program as _path_program
from skconvex.programs.deep import three_layer_program as _three_layer_program
from skconvex.programs.penalties import ColumnBlockL2
from skconvex.solvers.nested import cvxpy_nested_solve, nested_augmented_lagrangian

TIGHT = {"tol_gap_rel": 1e-10, "tol_gap_abs": 1e-12, "tol_feas": 1e-10}


def _data(seed=0, n=14):
    rng = np.random.default_rng(seed)
    X = np.c_[rng.standard_normal((n, 2)), np.ones(n)]
    y = np.sign(X[:, 0] * X[:, 1]) + 0.1 * rng.standard_normal(n)
    return X, y[:, None]


# ----------------------------------------------------------------- sampling


def test_subnetwork_sampling_is_seeded_and_n_jobs_invariant():
    X, _ = _data()
    a = sample_subnetworks(X, 60, n_first=7, batch_size=16, random_state=3)
    b = sample_subnetworks(X, 60, n_first=7, batch_size=16, random_state=3, n_jobs=2)
    for name in ("gates", "first_patterns", "leaf_weights", "leaf_index", "patterns"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    c = sample_subnetworks(X, 60, n_first=7, batch_size=16, random_state=4)
    assert not np.array_equal(a.leaf_weights, c.leaf_weights)
    via_kind = sample_arrangements(X, (7, 60), kind="subnetwork", batch_size=16, random_state=3)
    np.testing.assert_array_equal(via_kind.patterns, a.patterns)


@pytest.mark.parametrize("depth, width", [(3, 2), (3, 3), (4, 2)])
def test_subnetwork_patterns_are_those_of_the_sampled_networks(depth, width):
    X, _ = _data(1, n=25)
    arr = sample_subnetworks(X, 80, n_first=5, depth=depth, width=width, random_state=0)
    P, N1 = arr.n_patterns, arr.n_leaves
    assert N1 == width ** (depth - 2)
    # Recompute every node's pre-activation with an explicit loop over sub-networks.
    for k in range(P):
        z = X @ arr.leaf_weights[k].T
        np.testing.assert_array_equal(arr.node_patterns[0][:, k], z >= 0)
        for level, e in enumerate(arr.edge_weights, start=1):
            a = np.maximum(z, 0) * e[k]
            z = a.reshape(len(X), -1, width).sum(axis=2)
            np.testing.assert_array_equal(arr.node_patterns[level][:, k], z >= 0)
    np.testing.assert_array_equal(arr.patterns, arr.node_patterns[-1][:, :, 0])
    # Distinct tuples, no all-zero top pattern, leaves mapped to their first-level pattern.
    keys = {
        tuple(np.concatenate([p[:, k].ravel() for p in arr.node_patterns] + [np.sign(w[k]) for w in arr.edge_weights]))
        for k in range(P)
    }
    assert len(keys) == P and arr.patterns.any(axis=0).all()
    for k in range(P):
        for j in range(N1):
            i = arr.leaf_index[k, j]
            if i < 0:
                assert not arr.node_patterns[0][:, k, j].any()
            else:
                np.testing.assert_array_equal(arr.first_patterns[:, i], arr.node_patterns[0][:, k, j])
    assert len({arr.first_patterns[:, i].tobytes() for i in range(arr.n_first)}) == arr.n_first
    again = compute_subnetwork_patterns(X, arr.leaf_weights, arr.edge_weights)
    for p, q in zip(again, arr.node_patterns):
        np.testing.assert_array_equal(p, q)


def test_zero_weight_rows_do_not_split_tuples():
    X, _ = _data(2, n=20)
    w = np.ones(20)
    w[:6] = 0
    weighted = sample_subnetworks(X, 50, sample_weight=w, random_state=0)
    subset = sample_subnetworks(X[6:], 50, random_state=0)
    np.testing.assert_array_equal(weighted.leaf_weights, subset.leaf_weights)


# scikit-learn's check_sample_weights_shape data (four distinct rows, each
# four times) with a bias column: with this seed the four sub-networks drawn
# first are all silent on every row, and the three-layer program had no
# column (a reshape error in the solver, about 1 draw in 200 of the check).
_FEW_ROWS = np.hstack(
    [np.repeat([[1.0, 3.0], [2.0, 1.0], [3.0, 3.0], [4.0, 1.0]], 4, axis=0), np.ones((16, 1))]
)


def test_a_draw_of_silent_subnetworks_is_drawn_again():
    first = sample_subnetworks(_FEW_ROWS, 4, random_state=15, batch_size=4)
    # A second round of 4 was drawn; the kept ones are active somewhere.
    assert first.n_sampled == 8
    assert first.gate_index.min() >= 4 and first.patterns.shape[1] >= 1
    assert first.patterns.any(axis=0).all()
    again = sample_subnetworks(_FEW_ROWS, 4, random_state=15, batch_size=4)
    np.testing.assert_array_equal(first.leaf_weights, again.leaf_weights)
    # Draws that keep something in their first round are unchanged.
    usual = sample_subnetworks(_FEW_ROWS, 4, random_state=0, batch_size=4)
    assert usual.n_sampled == 4


def test_only_silent_subnetworks_raise(monkeypatch):
    from skconvex import arrangements

    batch = arrangements._subnetwork_batch

    def silent(*args):
        out = batch(*args)
        return (*out[:4], np.zeros_like(out[4]))

    monkeypatch.setattr(arrangements, "_subnetwork_batch", silent)
    with pytest.raises(ValueError, match="None of 44 sampled sub-networks is active"):
        sample_subnetworks(_FEW_ROWS, 4, random_state=0)


def test_three_layer_fit_on_few_distinct_rows_with_silent_first_draw():
    from skconvex import ConvexThreeLayerReLURegressor

    X, y = _FEW_ROWS[:, :2], np.tile([1.0, 2.0, 1.0, 2.0], (4, 1)).T.ravel()
    est = ConvexThreeLayerReLURegressor(n_arrangements=(2, 4), random_state=15).fit(X, y)
    assert est.dual_gap_ <= est.tol * est.objective_
    np.testing.assert_allclose(est.predict(X), y, atol=0.05)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_subnetworks=0), "n_subnetworks"),
        (dict(n_subnetworks=5, depth=2), "depth"),
        (dict(n_subnetworks=5, width=0), "width"),
        (dict(n_subnetworks=5, n_first=-1), "n_first"),
    ],
)
def test_subnetwork_sampling_rejects_bad_parameters(kwargs, match):
    X, _ = _data()
    with pytest.raises(ValueError, match=match):
        sample_subnetworks(X, **kwargs)


def test_kind_subnetwork_rejects_bad_level_counts():
    X, _ = _data()
    with pytest.raises(ValueError, match="n_arrangements"):
        sample_arrangements(X, (1, 2, 3), kind="subnetwork")
    with pytest.raises(ValueError, match="n_subnetworks"):
        sample_arrangements(X, (3, 0), kind="subnetwork")


# ----------------------------------------------------------------- pieces


def _programs():
    X, y = _data(3)
    sw = np.full(len(X), 1 / len(X))
    arr3 = sample_subnetworks(X, 8, n_first=2, random_state=0)
    arr4 = sample_subnetworks(X, 12, depth=4, random_state=0)
    three, _ = _three_layer_program(
        X, arr3, y, SquaredError(), sw, 0.05, gated=False, fit_intercept=True, dtype=np.float64
    )
    path3, _ = _path_program(X, sample_subnetworks(X, 20, random_state=1), y, SquaredError(), sw, 0.05,
                             gated=False, fit_intercept=True, dtype=np.float64)
    path4, _ = _path_program(X, arr4, y, SquaredError(), sw, 0.05, gated=False, fit_intercept=True,
                             dtype=np.float64)
    return {"three": three, "path3": path3, "path4": path4}


@pytest.mark.parametrize("name", ["three", "path3", "path4"])
def test_nested_adjoint_is_the_adjoint(name):
    problem = _programs()[name]
    rng = np.random.default_rng(0)
    U = rng.standard_normal(problem.coef_shape)
    n = problem.operator.n_samples
    K = problem.flat_values(problem.operator.product(U)).shape[1]
    R, lam = rng.standard_normal((n, 1)), rng.standard_normal((n, K))
    lhs = float(np.vdot(problem.operator.forward(U), R)) + float(
        np.vdot(problem.flat_values(problem.operator.product(U)), lam)
    )
    rhs = float(np.vdot(U, problem.nested_adjoint(R, lam)))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-10)


@pytest.mark.parametrize("name", ["three", "path3", "path4"])
def test_restore_moves_points_into_every_cone(name):
    problem = _programs()[name]
    rng = np.random.default_rng(1)
    # The directions themselves are feasible; a perturbed copy is not.
    D = np.broadcast_to(problem.directions[:, :, None], problem.coef_shape)
    assert problem.violation(problem.operator.product(D)) <= 1e-12
    W = D + 0.01 * rng.standard_normal(problem.coef_shape)
    assert problem.violation(problem.operator.product(W)) > 1e-6
    W_feas, changed = problem.restore(W)
    assert changed > 0
    for values in problem.level_values(problem.operator.product(W_feas)):
        assert values.min() >= -1e-12 * np.abs(problem.operator.product(W_feas)).max()


@pytest.mark.parametrize("name", ["three", "path3", "path4"])
def test_explicit_constraint_matrices_are_the_level_values(name):
    cp = pytest.importorskip("cvxpy")
    problem = _programs()[name]
    rng = np.random.default_rng(2)
    W = rng.standard_normal(problem.coef_shape)
    d, B, C = W.shape
    values = problem.level_values(problem.operator.product(W))
    signs = [problem.cone_signs] + problem.level_signs
    mats = [problem.cone_matrix()] + problem.level_matrices()
    for v, S, M in zip(values, signs, mats):
        # rows are (node, sample) pairs with a constraint, node-major
        expected = v[:, :, 0].T[np.nonzero(S.T)]
        np.testing.assert_allclose(M @ W[:, :, 0].T.ravel(), expected, rtol=1e-10, atol=1e-12)
    assert len(problem.cvxpy_constraints([cp.Variable((B, d))])) == problem.n_levels


def test_column_block_penalty():
    rng = np.random.default_rng(0)
    pen = ColumnBlockL2(3)
    W = rng.standard_normal((4, 6, 2))
    expected = sum(np.linalg.norm(W[:, 3 * g : 3 * g + 3, c]) for g in range(2) for c in range(2))
    np.testing.assert_allclose(pen.value(W), expected, rtol=1e-12)
    G = rng.standard_normal(W.shape)
    assert np.vdot(W, G) <= pen.value(W) * pen.dual_norm(G) + 1e-12
    t = 0.7
    P, value = pen.prox(W, t, return_value=True)
    np.testing.assert_allclose(value, pen.value(P), rtol=1e-12)
    base = 0.5 * np.sum((P - W) ** 2) + t * pen.value(P)
    for _ in range(50):
        Q = P + 1e-3 * rng.standard_normal(W.shape)
        assert 0.5 * np.sum((Q - W) ** 2) + t * pen.value(Q) >= base - 1e-12
    cp = pytest.importorskip("cvxpy")
    Wv = [cp.Constant(W[:, :, c].T) for c in range(2)]
    np.testing.assert_allclose(pen.cvxpy(Wv).value, pen.value(W), rtol=1e-10)


# ----------------------------------------------------------------- solvers


@pytest.mark.parametrize("name", ["three", "path3", "path4"])
def test_newton_augmented_lagrangian_matches_clarabel(name):
    pytest.importorskip("cvxpy")
    problem = _programs()[name]
    ref = cvxpy_nested_solve(problem, solver_options=TIGHT)
    res = nested_augmented_lagrangian(problem, tol=1e-9)
    assert res.converged and res.constraint_violation <= 1e-12
    assert ref.relative_gap <= 1e-7 and res.relative_gap <= 1e-9
    np.testing.assert_allclose(res.objective, ref.objective, rtol=1e-7)
    # both are certified: each objective lies above the other's lower bound
    assert res.objective >= ref.dual_objective - 1e-12 and ref.objective >= res.dual_objective - 1e-12


def test_newton_augmented_lagrangian_logistic_and_fista_inner():
    X, y = _data(4, n=20)
    sw = np.full(20, 1 / 20)
    arr = sample_subnetworks(X, 20, random_state=0)
    problem, _ = _path_program(X, arr, np.where(y > 0, 1.0, -1.0), Logistic(), sw, 0.02,
                               gated=False, fit_intercept=True, dtype=np.float64)
    newton = nested_augmented_lagrangian(problem, tol=1e-8)
    first_order = nested_augmented_lagrangian(problem, inner="fista", tol=1e-3, max_iter=5000)
    assert newton.converged and newton.relative_gap <= 1e-8
    # the first-order variant is certified too: its objective is above Newton's lower bound
    assert first_order.objective >= newton.dual_objective - 1e-12
    assert first_order.objective <= newton.objective * (1 + 1e-2)
    with pytest.raises(ValueError, match="inner"):
        nested_augmented_lagrangian(problem, inner="lbfgs")
