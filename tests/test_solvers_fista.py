import numpy as np
import pytest

from conftest import make_problem_data
from skconvex import sample_arrangements
from skconvex.programs.datafits import Logistic, Multinomial, SquaredError
from skconvex.programs.operators import PatternOperator
from skconvex.programs.penalties import ColumnGroupL2, GroupL2, GroupNuclear
from skconvex.programs.problem import ConvexProblem
from skconvex.solvers import cvxpy_solve, fista, solve_certified
from skconvex.solvers.working_set import working_set_solve

CASES = [
    ("squared", SquaredError(), GroupL2(), 1),
    ("squared", SquaredError(), GroupNuclear(), 2),
    ("logistic", Logistic(), GroupL2(), 1),
    ("multinomial", Multinomial(), GroupL2(), 3),
    ("multinomial", Multinomial(), GroupNuclear(), 3),
]


def build(seed, kind, datafit, penalty, C, alpha=0.02, dtype=np.float64, weights=False, n=50):
    rng = np.random.default_rng(seed)
    X, y = make_problem_data(rng, n=n, d=3, n_outputs=C, kind=kind)
    patterns = sample_arrangements(X, 15, random_state=seed).patterns
    op = PatternOperator(X, patterns, n_outputs=y.shape[1], dtype=dtype)
    s = rng.random(n) + 0.2 if weights else np.ones(n)
    return ConvexProblem(op, datafit, penalty, y, s / s.sum(), alpha)


def _ids(case):
    return f"{case[0]}-{case[2]!r}"


@pytest.mark.parametrize("case", CASES, ids=_ids)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fista_matches_clarabel(case, seed):
    kind, datafit, penalty, C = case
    problem = build(seed, kind, datafit, penalty, C, weights=seed == 1)
    ref = cvxpy_solve(problem, solver_options={"tol_gap_rel": 1e-10, "tol_gap_abs": 1e-12})
    for solver in (fista, working_set_solve):
        res = solver(problem, tol=1e-8, max_iter=20000)
        assert res.converged
        np.testing.assert_allclose(res.objective, ref.objective, rtol=1e-6)
        # the certificate is a true lower bound of the optimum
        assert res.dual_objective <= ref.objective + 1e-12
        assert res.objective - res.gap <= ref.objective + 1e-12
        np.testing.assert_allclose(
            problem.operator.forward(res.coef) + res.intercept,
            problem.operator.forward(ref.coef) + ref.intercept,
            atol=2e-3,
        )


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_kkt_conditions_at_solution(case):
    kind, datafit, penalty, C = case
    problem = build(3, kind, datafit, penalty, C, alpha=0.06)
    res = fista(problem, tol=1e-10, max_iter=50000)
    _, _, G = problem.evaluate(res.coef, res.intercept)
    norms = penalty.group_norms(res.coef)
    dual = penalty.dual_group_norms(G)
    alpha = problem.alpha
    zero = norms == 0
    assert zero.any() and (~zero).any()
    # zero groups: ||gradient block|| <= alpha
    assert np.all(dual[zero] <= alpha * (1 + 1e-3))
    # non-zero groups: the gradient block is (minus) alpha times a subgradient
    assert np.allclose(dual[~zero], alpha, rtol=1e-3)
    for p in np.flatnonzero(~zero):
        Wp = res.coef[:, p, :]
        if type(penalty) is GroupL2:
            # -G_p = alpha W_p / ||W_p||_F
            np.testing.assert_allclose(-G[:, p, :], alpha * Wp / np.linalg.norm(Wp), atol=2e-3 * alpha)
            continue
        # -G_p = alpha (U V^T + Z) with Z orthogonal to the singular pairs of W_p,
        # hence -G_p V = alpha U.
        U, s, Vt = np.linalg.svd(res.coef[:, p, :], full_matrices=False)
        keep = s > 1e-6 * s[0]
        np.testing.assert_allclose(
            -G[:, p, :] @ Vt[keep].T, alpha * U[:, keep], atol=2e-3 * alpha
        )


def test_gap_bounds_suboptimality_along_the_way():
    problem = build(4, "logistic", Logistic(), GroupL2(), 1, alpha=0.005)
    ref = cvxpy_solve(problem, solver_options={"tol_gap_rel": 1e-10})
    for it in (5, 20, 80):
        res = fista(problem, tol=1e-12, max_iter=it)
        assert not res.converged
        assert res.objective - ref.objective <= res.gap + 1e-10
        assert res.gap > 0


def test_alpha_max_gives_zero_solution():
    problem = build(5, "squared", SquaredError(), GroupL2(), 1)
    problem.alpha = problem.alpha_max() * 1.0001
    res = fista(problem, tol=1e-10)
    assert not res.coef.any()
    assert res.converged and res.gap <= 1e-10 * res.objective
    problem.alpha = problem.alpha_max() * 0.9
    assert fista(problem, tol=1e-8, max_iter=5000).coef.any()


def test_float32_compute_float64_certificate():
    p64 = build(6, "squared", SquaredError(), GroupL2(), 1, alpha=0.01, n=200)
    p32 = build(6, "squared", SquaredError(), GroupL2(), 1, alpha=0.01, n=200, dtype=np.float32)
    assert p32.operator.X.dtype == np.float32
    r64 = solve_certified(p64, working_set_solve, tol=1e-7, max_iter=20000)
    r32 = solve_certified(p32, working_set_solve, tol=1e-7, max_iter=20000)
    assert r32.converged
    # The float32 answer's certificate holds in float64 on the data it saw
    # (X rounded to float32): its primal value is the float64 objective of
    # its point, and its dual value (the best over the solve's dual points,
    # not the one at the last point, whose gap is 1.06e-7 here) is below
    # that program's optimum (to the 1e-9 of a reference solve).
    exact = p32.astype(np.float64)
    cert, _, _ = exact.evaluate(np.asarray(r32.coef, np.float64), r32.intercept)
    np.testing.assert_allclose(r32.objective, cert.primal, rtol=1e-12)
    assert r32.dual_objective <= solve_certified(exact, working_set_solve, tol=1e-9, max_iter=20000).objective
    assert cert.primal - r32.dual_objective <= 1e-7 * cert.primal * (1 + 1e-6)
    np.testing.assert_allclose(r32.objective, r64.objective, rtol=2e-7)


def test_warm_start_is_faster():
    problem = build(7, "logistic", Logistic(), GroupL2(), 1)
    cold = fista(problem, tol=1e-8, max_iter=20000)
    warm = fista(problem, tol=1e-8, max_iter=20000, coef_init=cold.coef, intercept_init=cold.intercept)
    assert warm.n_iter < cold.n_iter / 2


def test_no_intercept():
    problem = build(8, "squared", SquaredError(), GroupL2(), 1)
    problem.fit_intercept = False
    res = fista(problem, tol=1e-9, max_iter=20000)
    ref = cvxpy_solve(problem)
    assert not res.intercept.any()
    np.testing.assert_allclose(res.objective, ref.objective, rtol=1e-6)


@pytest.mark.parametrize(
    "case, polish",
    [(CASES[4], False), (CASES[3], True), (CASES[2], True)],
    ids=["nuclear-multinomial", "frobenius-multinomial-polished", "logistic-polished"],
)
def test_sparse_dual_points_far_from_tol_change_nothing(monkeypatch, case, polish):
    # While the gap is far above tol (and above the polish's trigger) FISTA
    # takes a dual point every few iterations only. The stop, the polish and
    # the answer must be those of a dual point at every iteration.
    import importlib

    from skconvex.solvers.support_newton import support_newton

    fista_module = importlib.import_module("skconvex.solvers.fista")
    kind, datafit, penalty, C = case
    problem = build(4, kind, datafit, penalty, C, alpha=0.01, n=80)
    calls = []
    dual_value = type(problem).dual_value

    def counted(self, grad, G):
        calls.append(1)
        return dual_value(self, grad, G)

    monkeypatch.setattr(type(problem), "dual_value", counted)
    runs = {}
    for every in (1, fista_module._FAR_DUAL_EVERY):
        monkeypatch.setattr(fista_module, "_FAR_DUAL_EVERY", every)
        calls.clear()
        res = fista(problem, tol=1e-8, max_iter=20000, polish=support_newton if polish else None)
        runs[every] = res, len(calls)
    (dense, n_dense), (sparse, n_sparse) = runs[1], runs[fista_module._FAR_DUAL_EVERY]
    assert sparse.converged and sparse.n_iter == dense.n_iter
    assert sparse.info["newton_steps"] == dense.info["newton_steps"]
    np.testing.assert_array_equal(sparse.coef, dense.coef)
    assert sparse.objective == dense.objective and sparse.dual_objective == dense.dual_objective
    assert n_sparse < n_dense


def test_support_newton_says_where_it_cannot_apply():
    from skconvex.solvers.support_newton import applies_to, support_newton

    assert support_newton.applies_to is applies_to
    assert not applies_to(build(0, "squared", SquaredError(), ColumnGroupL2(), 1))
    assert applies_to(build(0, "multinomial", Multinomial(), GroupL2(), 3))
    assert applies_to(build(0, "logistic", Logistic(), GroupNuclear(), 1))
    # Nuclear blocks of several outputs go to Newton on their factors.
    assert applies_to(build(0, "multinomial", Multinomial(), GroupNuclear(), 3))
    # Column groups of the exact programs: FISTA drops the polish at once.
    problem = build(0, "squared", SquaredError(), ColumnGroupL2(), 1)
    assert fista(problem, tol=1e-8, max_iter=20000, polish=support_newton).info["newton_steps"] == 0
