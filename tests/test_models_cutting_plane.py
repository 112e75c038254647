"""Exhaustive arrangements, the dual oracles and column generation (cutting planes)."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from skconvex import (
    CuttingPlaneReLUClassifier,
    CuttingPlaneReLURegressor,
    enumerate_arrangements,
    sample_arrangements,
)
from skconvex.programs._geometry import count_cells_bound
from skconvex.programs.datafits import Logistic, SquaredError
from skconvex.programs.network import ReLUNetworkProblem
from skconvex.programs.oracles import ExhaustiveOracle, PatternOracle, relu_dual_norm
from skconvex.solvers.cutting_plane import cutting_plane


def _pattern_set(patterns):
    return {p.tobytes() for p in np.packbits(patterns, axis=0).T}


def _cp1(X, y, s, alpha, patterns, loss="squared"):
    """Reference: the exact convex program (CP1) over ``patterns``, written directly in CVXPY.

    Mean loss with a free intercept plus alpha * sum of block norms, cone
    constraints (2 D - I) X v >= 0 (Pilanci & Ergen, 2020).
    """
    cp = pytest.importorskip("cvxpy")
    n, d = X.shape
    M = patterns.astype(float)
    V, W, b = cp.Variable((d, M.shape[1])), cp.Variable((d, M.shape[1])), cp.Variable()
    pred = cp.sum(cp.multiply(M, X @ (V - W)), axis=1) + b
    if loss == "squared":
        fit = 0.5 * cp.sum(cp.multiply(s, cp.square(pred - y)))
    else:
        fit = cp.sum(cp.multiply(s, cp.logistic(-cp.multiply(y, pred))))
    S = 2 * M - 1
    penalty = cp.sum(cp.norm(V, axis=0)) + cp.sum(cp.norm(W, axis=0))
    problem = cp.Problem(
        cp.Minimize(fit + alpha * penalty),
        [cp.multiply(S, X @ V) >= 0, cp.multiply(S, X @ W) >= 0],
    )
    problem.solve(solver="CLARABEL", tol_gap_rel=1e-10, tol_gap_abs=1e-12, tol_feas=1e-10)
    return problem.value


@pytest.fixture
def n1_data():
    """The N1/N2 setting of the design notes: 15 points in R^2 with a bias column."""
    rng = np.random.default_rng(1)
    Xr = rng.standard_normal((15, 2))
    return Xr, np.sin(2 * Xr[:, 0]) + 0.3 * Xr[:, 1]


# ------------------------------------------------------------------ enumeration
@pytest.mark.parametrize("n, r", [(10, 2), (15, 3), (20, 4), (9, 5)])
def test_enumeration_finds_every_cell_of_generic_data(n, r):
    X = np.random.default_rng(n + r).standard_normal((n, r))
    arr = enumerate_arrangements(X)
    cells = _pattern_set(arr.patterns)
    # In general position there are exactly Cover's number of cells; the
    # all-inactive one is dropped when it exists.
    assert len(cells) in (count_cells_bound(n, r) - 1, count_cells_bound(n, r))
    # Each gate realizes its pattern, and random gates find nothing new.
    np.testing.assert_array_equal(X @ arr.gates >= 0, arr.patterns)
    G = np.random.default_rng(0).standard_normal((r, 100_000))
    sampled = _pattern_set((X @ G >= 0)[:, np.any(X @ G >= 0, axis=0)])
    assert sampled <= cells


def test_enumeration_count_equals_cover_bound():
    X = np.random.default_rng(3).standard_normal((25, 3))
    arr = enumerate_arrangements(X)
    on = np.any(X @ arr.gates >= 0, axis=0)
    # Gaussian rows around the origin: the all-inactive cell does not exist.
    assert on.all() and arr.n_patterns == count_cells_bound(25, 3)


def test_enumeration_handles_degenerate_data():
    """Integer grid with repeated points and many points on common lines."""
    rng = np.random.default_rng(0)
    X = np.c_[rng.integers(-2, 3, (60, 2)), np.ones(60)].astype(float)
    arr = enumerate_arrangements(X)
    G = rng.standard_normal((3, 400_000))
    sampled = _pattern_set((X @ G >= 0)[:, np.any(X @ G >= 0, axis=0)])
    assert sampled <= _pattern_set(arr.patterns)


def test_enumeration_rank_deficient_and_weights():
    rng = np.random.default_rng(1)
    x = rng.standard_normal(12)
    # Rank 2 data in 4 columns: the arrangement of a 1-D input with a bias.
    X = np.c_[x, 2 * x, np.ones(12), -np.ones(12)]
    arr = enumerate_arrangements(X)
    assert arr.n_patterns == 2 * 12 - 1
    # Zero-weight rows define no hyperplane.
    w = np.ones(12)
    w[:4] = 0
    sub = enumerate_arrangements(X, sample_weight=w)
    assert _pattern_set(sub.patterns[4:]) == _pattern_set(enumerate_arrangements(X[4:]).patterns)


def test_exhaustive_kind_and_budget_errors():
    X = np.random.default_rng(0).standard_normal((25, 3))
    a = sample_arrangements(X, 10**6, kind="exhaustive")
    assert _pattern_set(a.patterns) == _pattern_set(enumerate_arrangements(X).patterns)
    with pytest.raises(ValueError, match="n_arrangements"):
        sample_arrangements(X, 100, kind="exhaustive")
    with pytest.raises(ValueError, match="max_patterns"):
        enumerate_arrangements(X, max_patterns=100)


# ---------------------------------------------------------------------- oracles
@pytest.mark.parametrize("n_outputs", [1, 3])
def test_exhaustive_oracle_is_the_maximum_on_the_circle(n_outputs):
    """Rank 2: a fine grid of angles brackets the exact maximum."""
    rng = np.random.default_rng(n_outputs)
    X = np.c_[rng.standard_normal(20), np.ones(20)]
    theta = rng.standard_normal((20, n_outputs))
    res = ExhaustiveOracle(X)(theta, n_directions=3)
    angles = np.linspace(0, 2 * np.pi, 2_000_001)
    grid = relu_dual_norm(X, theta, np.stack([np.cos(angles), np.sin(angles)]))
    assert res.exact and res.upper == res.value
    assert res.value >= grid.max() - 1e-12
    assert res.value <= grid.max() + 1e-6 * res.value
    np.testing.assert_allclose(relu_dual_norm(X, theta, res.directions), res.scores, rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(res.directions, axis=0), 1.0)


@pytest.mark.parametrize("n_outputs", [1, 2])
def test_pattern_oracle_on_all_cells_equals_exhaustive(n1_data, n_outputs):
    Xr, _ = n1_data
    X = np.c_[Xr, np.ones(15)]
    theta = np.random.default_rng(5).standard_normal((15, n_outputs))
    arr = enumerate_arrangements(X)
    exact = ExhaustiveOracle(X)(theta)
    cells = PatternOracle(X, arr.patterns, gates=arr.gates)(theta)
    assert cells.exact
    np.testing.assert_allclose(cells.value, exact.value, rtol=1e-9)
    # Random unit directions never beat the exact value.
    U = np.random.default_rng(6).standard_normal((3, 200_000))
    assert relu_dual_norm(X, theta, U / np.linalg.norm(U, axis=0)).max() <= exact.value * (1 + 1e-12)


def test_pattern_oracle_of_few_cells_is_below_exhaustive(n1_data):
    Xr, _ = n1_data
    X = np.c_[Xr, np.ones(15)]
    theta = np.random.default_rng(7).standard_normal((15, 1))
    arr = sample_arrangements(X, 5, random_state=0)
    few = PatternOracle(X, arr.patterns, gates=arr.gates)(theta)
    assert few.value <= ExhaustiveOracle(X)(theta).value * (1 + 1e-12)
    # Its maximizer stays in the sampled cones.
    u = few.directions[:, 0]
    assert any(np.all((2 * arr.patterns[:, p] - 1) * (X @ u) >= -1e-9) for p in range(arr.n_patterns))


# --------------------------------------------------------------- column generation
def test_cutting_plane_converges_to_the_exhaustive_optimum(n1_data):
    """N2 of the design notes: column generation reaches the CP1 optimum over every cell."""
    Xr, y = n1_data
    X = np.c_[Xr, np.ones(15)]
    s = np.full(15, 1 / 15)
    alpha = 0.05 / 15
    reference = _cp1(X, y, s, alpha, enumerate_arrangements(X).patterns)
    res = cutting_plane(ReLUNetworkProblem(X, y[:, None], SquaredError(), s, alpha), ExhaustiveOracle(X), tol=1e-7, max_iter=200)
    assert res.converged and res.info["oracle_exact"]
    assert res.dual_objective <= reference * (1 + 1e-8)
    assert reference <= res.objective * (1 + 1e-8)
    assert res.objective - res.dual_objective <= 1e-7 * res.objective


def test_estimator_certifies_the_unsampled_problem(n1_data):
    Xr, y = n1_data
    reg = CuttingPlaneReLURegressor(alpha=1e-2, tol=1e-6).fit(Xr, y)
    assert reg.oracle_ == "exhaustive" and reg.gates_ is None
    X = np.c_[Xr, np.ones(15)]
    reference = _cp1(X, y, np.full(15, 1 / 15), 1e-2 * np.std(y), enumerate_arrangements(X).patterns)
    assert reg.lower_bound_ <= reference * (1 + 1e-8) <= reg.objective_ * (1 + 1e-8)
    assert reg.dual_gap_ <= 1e-6 * reg.objective_
    np.testing.assert_allclose(reg.oracle_values_[-1], 1.0, atol=1e-6)


def test_logistic_cutting_plane_matches_cp1():
    rng = np.random.default_rng(2)
    Xr = rng.standard_normal((20, 2))
    labels = (Xr[:, 0] ** 2 + 0.5 * Xr[:, 1] > 0.6).astype(int)
    clf = CuttingPlaneReLUClassifier(alpha=1e-2, tol=1e-6).fit(Xr, labels)
    X = np.c_[Xr, np.ones(20)]
    reference = _cp1(
        X, np.where(labels == 1, 1.0, -1.0), np.full(20, 1 / 20), 1e-2,
        enumerate_arrangements(X).patterns, loss="logistic",
    )
    assert clf.oracle_ == "exhaustive"
    assert clf.lower_bound_ <= reference * (1 + 1e-7) <= clf.objective_ * (1 + 1e-7)


def test_sampled_oracle_certifies_the_restricted_problem():
    rng = np.random.default_rng(4)
    Xr = rng.standard_normal((30, 3))
    y = np.maximum(Xr @ [1.0, -1.0, 0.5], 0) - np.maximum(Xr[:, 1], 0)
    reg = CuttingPlaneReLURegressor(alpha=1e-2, oracle="sampled", n_arrangements=40, tol=1e-6, random_state=0)
    reg.fit(Xr, y)
    X = np.c_[Xr, np.ones(30)]
    patterns = X @ reg.gates_ >= 0
    reference = _cp1(X, y, np.full(30, 1 / 30), 1e-2 * np.std(y), patterns)
    assert reg.lower_bound_ <= reference * (1 + 1e-8) <= reg.objective_ * (1 + 1e-8)
    # Every neuron lies in the closed cone of a sampled cell.
    hidden = np.c_[reg.hidden_weights_, reg.hidden_intercepts_]
    signs = 2 * patterns - 1
    for u in hidden:
        z = X @ u
        assert np.any(np.all(signs * z[:, None] >= -1e-9 * np.abs(z).max(), axis=0))


@pytest.mark.parametrize(
    "make",
    [
        lambda: (CuttingPlaneReLURegressor(alpha=1e-2), "multi"),
        lambda: (CuttingPlaneReLUClassifier(alpha=1e-2), "multiclass"),
        lambda: (CuttingPlaneReLUClassifier(alpha=1e-2, loss="squared_error"), "binary"),
    ],
)
def test_objective_equals_weight_decay_of_recovered_network(make):
    est, kind = make()
    rng = np.random.default_rng(8)
    X = rng.standard_normal((40, 2))
    if kind == "multi":
        y = np.c_[np.abs(X[:, 0]), np.maximum(X[:, 1] - X[:, 0], 0)]
    elif kind == "multiclass":
        y = np.digitize(X[:, 0] + 0.3 * X[:, 1] ** 2, [-0.5, 0.5])
    else:
        y = (np.abs(X[:, 0]) > 0.5).astype(int)
    est.fit(X, y)
    assert est.n_neurons_ > 0
    np.testing.assert_allclose(est.weight_decay_objective(X, y), est.objective_, rtol=1e-10)
    # An independent forward pass of the recovered network.
    hidden = np.c_[est.hidden_weights_, est.hidden_intercepts_]
    out = np.maximum(np.c_[X, np.ones(40)] @ hidden.T, 0) @ est.output_weights_ + est.intercept_
    scores = est.predict(X) if kind == "multi" else est.decision_function(X)
    np.testing.assert_allclose(np.squeeze(out), scores, rtol=1e-12, atol=1e-12)
    # Balanced neurons: hidden and output norms agree.
    np.testing.assert_allclose(
        np.linalg.norm(hidden, axis=1), np.linalg.norm(est.output_weights_, axis=1), rtol=1e-10
    )


def test_weighted_fit_equals_fit_on_positive_rows(n1_data):
    Xr, y = n1_data
    w = np.r_[np.zeros(4), np.ones(11)]
    a = CuttingPlaneReLURegressor(alpha=1e-2, tol=1e-8).fit(Xr, y, sample_weight=w)
    b = CuttingPlaneReLURegressor(alpha=1e-2, tol=1e-8).fit(Xr[4:], y[4:])
    np.testing.assert_allclose(a.objective_, b.objective_, rtol=1e-7)
    np.testing.assert_allclose(a.predict(Xr), b.predict(Xr), rtol=1e-5, atol=1e-6)


def test_auto_oracle_and_max_faces():
    rng = np.random.default_rng(0)
    X3 = rng.standard_normal((40, 3))
    y = X3[:, 0] ** 2
    with pytest.raises(ValueError, match="max_faces"):
        CuttingPlaneReLURegressor(oracle="exhaustive", max_faces=100).fit(X3, y)
    reg = CuttingPlaneReLURegressor(max_faces=100, n_arrangements=30, random_state=0).fit(X3, y)
    assert reg.oracle_ == "sampled" and reg.gates_.shape == (4, reg.gates_.shape[1])


def test_convergence_warning_and_bad_parameters(n1_data):
    Xr, y = n1_data
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        reg = CuttingPlaneReLURegressor(alpha=1e-3, max_iter=1).fit(Xr, y)
    assert reg.n_iter_ == 1 and reg.dual_gap_ > 0
    with pytest.raises(ValueError, match="alpha"):
        CuttingPlaneReLURegressor(alpha=0.0).fit(Xr, y)
    with pytest.raises(ValueError, match="oracle"):
        CuttingPlaneReLURegressor(oracle="grid").fit(Xr, y)


def test_fista_master_agrees_with_clarabel(n1_data):
    Xr, y = n1_data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = CuttingPlaneReLURegressor(alpha=1e-2, tol=1e-4, master_solver="fista").fit(Xr, y)
    b = CuttingPlaneReLURegressor(alpha=1e-2, tol=1e-4).fit(Xr, y)
    assert a.dual_gap_ <= 1e-4 * a.objective_
    # Both certificates hold for the same problem: the intervals overlap.
    assert max(a.lower_bound_, b.lower_bound_) <= min(a.objective_, b.objective_) * (1 + 1e-9)


def test_logistic_loss_classes_and_proba():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((30, 1))
    labels = np.where(np.abs(X[:, 0]) > 0.8, "far", "near")
    clf = CuttingPlaneReLUClassifier(alpha=1e-3).fit(X, labels)
    assert set(clf.classes_) == {"far", "near"}
    assert clf.score(X, labels) == 1.0
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # Data of rank 2: every neuron of the exact problem is found.
    assert clf.oracle_ == "exhaustive" and clf.dual_gap_ <= clf.tol * clf.objective_
    with pytest.raises(ValueError, match="labels not seen"):
        clf.weight_decay_objective(X, np.array(["far"] * 29 + ["other"]))


def test_oracle_values_decrease_to_one():
    x = np.linspace(-2, 2, 25)[:, None]
    reg = CuttingPlaneReLURegressor(alpha=1e-2, tol=1e-8).fit(x, np.abs(x[:, 0]) - 0.5 * np.maximum(x[:, 0] - 1, 0))
    assert reg.oracle_values_[0] > 1 and reg.oracle_values_[-1] <= 1 + 1e-6
    assert reg.n_neurons_ <= 4


def test_logistic_datafit_dual_is_used():
    """The lower bound of a logistic problem comes from the conjugate of the logistic loss."""
    rng = np.random.default_rng(9)
    Xr = rng.standard_normal((16, 1))
    X = np.c_[Xr, np.ones(16)]
    y = np.where(Xr[:, 0] > 0.2, 1.0, -1.0)[:, None]
    res = cutting_plane(ReLUNetworkProblem(X, y, Logistic(), np.full(16, 1 / 16), 1e-2), ExhaustiveOracle(X), tol=1e-6)
    assert res.converged and 0 < res.dual_objective <= res.objective
