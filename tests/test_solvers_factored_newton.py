import numpy as np
import pytest
from test_solvers_fista import build

from skconvex import ConvexGatedReLUClassifier
from skconvex.programs.datafits import Multinomial, SquaredError
from skconvex.programs.penalties import GroupL2, GroupNuclear
from skconvex.solvers import cvxpy_solve, fista
from skconvex.solvers.factored_newton import applies_to, factored_newton
from skconvex.solvers.support_newton import support_newton

# Nuclear blocks of several outputs; at these alphas the optimal blocks have
# ranks 0, 1 and 2 (the multinomial's shift invariance caps 3 classes at 2).
NUCLEAR = [
    ("multinomial", Multinomial(), 3),
    ("multinomial", Multinomial(), 4),
    ("squared", SquaredError(), 2),
]


def _ranks(W, rtol=1e-6):
    s = np.linalg.svd(np.asarray(W, dtype=np.float64).transpose(1, 0, 2), compute_uv=False)
    return ((s > rtol * s[:, :1]) & (s[:, :1] > 0)).sum(axis=1)


@pytest.mark.parametrize("kind, datafit, C", NUCLEAR, ids=lambda c: repr(c))
@pytest.mark.parametrize("weights", [False, True])
def test_newton_on_the_factors_certifies_in_few_steps(kind, datafit, C, weights):
    problem = build(0, kind, datafit, GroupNuclear(), C, alpha=0.01, weights=weights)
    assert applies_to(problem)
    ref = fista(problem, tol=1e-12, max_iter=300000)
    assert ref.converged
    assert set(_ranks(ref.coef)) >= {1, 2}
    # FISTA at 1e-3 has the optimal support and ranks here; Newton on the
    # factors must close the *full* program's gap, which a wrong Hessian
    # (the bilinear term, the intercept's Schur complement) would not.
    start = fista(problem, tol=1e-3, max_iter=100000)
    assert start.gap > 1e-4 * abs(start.objective)
    W, b, info = factored_newton(problem, start.coef, start.intercept, tol=1e-12, max_steps=10)
    assert info["applicable"] and info["applied"] and info["converged"]
    assert 1 <= info["n_steps"] <= 8
    cert, _, _ = problem.evaluate(W, b)
    assert cert.gap <= 1e-7 * abs(cert.primal)
    np.testing.assert_allclose(cert.primal, ref.objective, rtol=1e-10)
    np.testing.assert_array_equal(_ranks(W), _ranks(ref.coef))


@pytest.mark.parametrize("seed, kind, datafit, C", [(1, *NUCLEAR[0]), (2, *NUCLEAR[1]), (1, *NUCLEAR[2])])
def test_fista_with_the_nuclear_polish_matches_cvxpy(seed, kind, datafit, C):
    problem = build(seed, kind, datafit, GroupNuclear(), C, alpha=0.01, weights=True)
    ref = cvxpy_solve(problem, solver_options={"tol_gap_rel": 1e-10, "tol_gap_abs": 1e-12})
    plain = fista(problem, tol=1e-7, max_iter=100000)
    res = fista(problem, tol=1e-7, max_iter=100000, polish=support_newton)
    assert res.converged and res.info["newton_steps"] > 0
    assert res.n_iter < plain.n_iter
    np.testing.assert_allclose(res.objective, ref.objective, rtol=1e-6)
    # The reported certificate, recomputed from the returned point.
    cert, _, _ = problem.evaluate(res.coef, res.intercept)
    np.testing.assert_allclose(cert.primal, res.objective, rtol=1e-12)
    assert cert.gap <= 1e-7 * abs(cert.primal)
    assert cert.primal - cert.gap <= ref.objective + 1e-9


def test_a_missing_rank_gives_the_restricted_optimum_and_an_honest_gap():
    problem = build(0, "multinomial", Multinomial(), GroupNuclear(), 3, alpha=0.01)
    ref = fista(problem, tol=1e-12, max_iter=300000)
    start = fista(problem, tol=1e-3, max_iter=100000).coef
    p = int(np.flatnonzero(_ranks(ref.coef) == 2)[0])
    U, s, Vt = np.linalg.svd(start[:, p, :], full_matrices=False)
    start[:, p, :] = s[0] * np.outer(U[:, 0], Vt[0])
    W, b, info = factored_newton(problem, start, None, tol=1e-12, max_steps=20)
    assert info["applied"] and _ranks(W)[p] == 1
    cert, _, _ = problem.evaluate(W, b)
    # No worse than the start, never better than the optimum, and the
    # certificate says the point is not optimal.
    assert cert.primal <= problem.objective(start)[0] + 1e-12
    assert cert.primal >= ref.objective - 1e-12
    assert cert.gap > 1e-6 * abs(cert.primal)


def test_float32_blocks_keep_their_ranks():
    # A float32 prox leaves rounding-level singular values in every block;
    # taken as ranks they would make every factor full width.
    problem = build(1, "multinomial", Multinomial(), GroupNuclear(), 4, alpha=0.01, dtype=np.float32)
    ref = fista(problem.astype(np.float64), tol=1e-12, max_iter=300000)
    start = fista(problem, tol=1e-3, max_iter=100000)
    W, b, info = factored_newton(problem, start.coef, start.intercept, tol=1e-6)
    assert info["applied"] and W.dtype == np.float32
    np.testing.assert_array_equal(_ranks(W, rtol=1e-4), _ranks(ref.coef))
    cert, _, _ = problem.astype(np.float64).evaluate(W.astype(np.float64), b)
    assert cert.primal <= start.objective * (1 + 1e-6)
    np.testing.assert_allclose(cert.primal, ref.objective, rtol=1e-5)


@pytest.mark.parametrize("penalty, C", [(GroupL2(), 3), (GroupNuclear(), 1)])
def test_other_programs_are_not_factored(penalty, C):
    kind = "multinomial" if C > 1 else "squared"
    datafit = Multinomial() if C > 1 else SquaredError()
    problem = build(0, kind, datafit, penalty, C)
    assert not applies_to(problem)
    start = fista(problem, tol=1e-3).coef
    W, _, info = factored_newton(problem, start, None)
    assert not info["applicable"] and not info["applied"] and W is start


def test_empty_support_is_left_alone():
    problem = build(0, "multinomial", Multinomial(), GroupNuclear(), 3)
    W, _, info = factored_newton(problem, problem.zeros(), None)
    assert info["applicable"] and not info["applied"] and not W.any()


def test_gated_classifier_ends_at_the_nuclear_optimum():
    # The default (nuclear) multi-class gated classifier: the fit's answer is
    # the polished optimum, certified to machine precision when its support
    # is right, and agrees with CVXPY.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((90, 3))
    y = np.argmax(X @ rng.standard_normal((3, 3)) + 0.3 * rng.standard_normal((90, 3)), axis=1)
    clf = ConvexGatedReLUClassifier(alpha=0.02, n_arrangements=8, tol=1e-6, random_state=0).fit(X, y)
    assert clf.dual_gap_ <= 1e-6 * clf.objective_
    clf_cvx = ConvexGatedReLUClassifier(alpha=0.02, n_arrangements=8, tol=1e-6, random_state=0, max_iter=1)
    problem, _, _ = clf_cvx._build_problem(X, y, None)
    ref = cvxpy_solve(problem, solver_options={"tol_gap_rel": 1e-10, "tol_gap_abs": 1e-12})
    np.testing.assert_allclose(clf.objective_, ref.objective, rtol=1e-6)
    # Neurons are the blocks' ranks, not their rounding.
    W = clf.pattern_weights_.transpose(1, 0, 2)
    assert clf.n_neurons_ == int(_ranks(W, rtol=1e-6).sum())


def test_a_small_work_budget_changes_the_preconditioner_not_the_optimum(monkeypatch):
    # Row batches of a few rows, and the diagonal preconditioner instead of
    # the blocks (which no longer fit): the same optimum, in more CG steps.
    import skconvex.solvers.factored_newton as fn

    problem = build(1, "multinomial", Multinomial(), GroupNuclear(), 3, alpha=0.01, weights=True)
    ref = fista(problem, tol=1e-12, max_iter=300000)
    start = fista(problem, tol=1e-3, max_iter=100000)
    runs, full, small = {}, fn._BLOCK_BYTES, 8 * 3 * 20 * 7
    for budget in (full, small):
        monkeypatch.setattr(fn, "_BLOCK_BYTES", budget)
        W, b, info = factored_newton(problem, start.coef, start.intercept, tol=1e-12, max_steps=30)
        cert, _, _ = problem.evaluate(W, b)
        assert info["converged"] and cert.gap <= 1e-7 * abs(cert.primal)
        np.testing.assert_allclose(cert.primal, ref.objective, rtol=1e-10)
        runs[budget] = info["n_products"]
    assert runs[small] > runs[full]


def test_sparse_X_reaches_the_dense_optimum():
    # A sparse X keeps its products sparse and takes the diagonal
    # preconditioner (no products of pairs of features).
    import scipy.sparse as sp

    from skconvex.programs.operators import PatternOperator
    from skconvex.programs.problem import ConvexProblem

    dense = build(2, "multinomial", Multinomial(), GroupNuclear(), 3, alpha=0.01, weights=True)
    op = dense.operator
    X = np.asarray(op.X).copy()
    X[np.abs(X) < 0.5] = 0.0
    problems = [
        ConvexProblem(PatternOperator(A, op.masks, n_outputs=3), Multinomial(), GroupNuclear(), dense.y,
                      dense.sample_weight, dense.alpha)
        for A in (X, sp.csr_array(X))
    ]
    ref = fista(problems[0], tol=1e-12, max_iter=300000)
    start = fista(problems[1], tol=1e-3, max_iter=100000)
    W, b, info = factored_newton(problems[1], start.coef, start.intercept, tol=1e-12, max_steps=30)
    assert info["applied"] and info["converged"]
    cert, _, _ = problems[1].evaluate(W, b)
    assert cert.gap <= 1e-7 * abs(cert.primal)
    np.testing.assert_allclose(cert.primal, ref.objective, rtol=1e-10)
