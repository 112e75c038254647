import numpy as np
import pytest
import scipy.sparse as sp

from conftest import make_problem_data
from skconvex import sample_arrangements
from skconvex.programs.datafits import Logistic, Multinomial, SquaredError
from skconvex.programs.penalties import ColumnGroupL2, GroupL2, GroupNuclear
from skconvex.programs.operators import PatternOperator
from skconvex.programs.problem import ConvexProblem
from skconvex.solvers import cvxpy_solve, fista
from skconvex.solvers.support_newton import support_newton
from test_solvers_fista import build

SINGLE_OUTPUT = [
    ("squared", SquaredError(), GroupL2()),
    ("squared", SquaredError(), GroupNuclear()),
    ("logistic", Logistic(), GroupL2()),
]


def _support(problem, W):
    return problem.penalty.group_norms(W) > 0


@pytest.mark.parametrize("kind, datafit, penalty", SINGLE_OUTPUT, ids=lambda c: repr(c))
@pytest.mark.parametrize("weights", [False, True])
def test_newton_on_the_optimal_support_certifies_in_few_steps(kind, datafit, penalty, weights):
    problem = build(0, kind, datafit, penalty, 1, alpha=0.01, weights=weights)
    ref = fista(problem, tol=1e-11, max_iter=100000)
    assert ref.converged
    # A point with the optimal support, as FISTA's end-game provides: the
    # optimum with every entry off by up to 2 % (Newton's model of a block
    # norm is accurate within about the block's own norm, and the smallest
    # optimal block here is 1 % of the largest).
    rng = np.random.default_rng(1)
    start = ref.coef * (1 + 0.02 * rng.uniform(-1, 1, ref.coef.shape))
    W, b, info = support_newton(problem, start, None, tol=1e-12)
    assert info["applied"] and 1 <= info["n_steps"] <= 8
    cert, _, _ = problem.evaluate(W, b)
    # Quadratic convergence: the *full* program's certified gap closes, which
    # a wrong Hessian (or intercept correction) would not achieve in 8 steps.
    assert cert.gap <= 1e-8 * abs(cert.primal)
    np.testing.assert_allclose(cert.primal, ref.objective, rtol=1e-8)
    np.testing.assert_array_equal(_support(problem, W), _support(problem, ref.coef))


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_extra_blocks_are_dropped(fit_intercept):
    problem = build(2, "squared", SquaredError(), GroupL2(), 1, alpha=0.02)
    problem.fit_intercept = fit_intercept
    ref = fista(problem, tol=1e-11, max_iter=100000)
    optimal = _support(problem, ref.coef)
    zero = np.flatnonzero(~optimal)
    assert zero.size >= 2
    # Blocks whose optimum is zero start non-zero along minus their gradient,
    # as a proximal step leaves them (one small, one sizeable).
    _, _, G = problem.evaluate(ref.coef, ref.intercept)
    start = ref.coef.copy()
    start[:, zero[0], 0] = -0.01 * G[:, zero[0], 0]
    start[:, zero[1], 0] = -1.0 * G[:, zero[1], 0]
    W, b, info = support_newton(problem, start, None, tol=1e-12, max_steps=20)
    cert, _, _ = problem.evaluate(W, b)
    assert cert.gap <= 1e-7 * abs(cert.primal)
    np.testing.assert_array_equal(_support(problem, W), optimal)


def test_missing_blocks_give_the_restricted_optimum_and_an_honest_gap():
    problem = build(3, "logistic", Logistic(), GroupL2(), 1, alpha=0.005)
    ref = fista(problem, tol=1e-11, max_iter=100000)
    support = np.flatnonzero(_support(problem, ref.coef))
    assert support.size >= 2
    start = ref.coef.copy()
    start[:, support[0], 0] = 0
    W, b, _ = support_newton(problem, start, None, tol=1e-12)
    assert not _support(problem, W)[support[0]]
    cert, _, _ = problem.evaluate(W, b)
    # Better than where it started, never better than the optimum, and the
    # certificate still says the point is not optimal.
    assert cert.primal <= problem.objective(start)[0] + 1e-12
    assert cert.primal >= ref.objective - 1e-12
    assert cert.gap > 1e-6 * abs(cert.primal)


# Nuclear blocks of several outputs go to factored_newton
# (tests/test_solvers_factored_newton.py).
@pytest.mark.parametrize("datafit, penalty, C", [(SquaredError(), ColumnGroupL2(), 1)])
def test_other_programs_are_left_alone(datafit, penalty, C):
    kind = "multinomial" if isinstance(datafit, Multinomial) else "squared"
    problem = build(0, kind, datafit, penalty, C)
    start = fista(problem, tol=1e-3).coef
    W, _, info = support_newton(problem, start, None)
    assert not info["applicable"] and not info["applied"] and W is start


def test_empty_support_is_left_alone():
    problem = build(0, "squared", SquaredError(), GroupL2(), 1)
    W, _, info = support_newton(problem, problem.zeros(), None)
    assert info["applicable"] and not info["applied"] and not W.any()


@pytest.mark.parametrize("kind, datafit, penalty", SINGLE_OUTPUT, ids=lambda c: repr(c))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fista_with_polish_reaches_the_same_certified_optimum_sooner(kind, datafit, penalty, dtype):
    problem = build(1, kind, datafit, penalty, 1, alpha=0.005, dtype=dtype, n=80)
    tol = 1e-6 if dtype == np.float64 else 1e-4
    plain = fista(problem, tol=tol, max_iter=50000)
    polished = fista(problem, tol=tol, max_iter=50000, polish=support_newton)
    assert plain.converged and polished.converged
    assert polished.info["newton_steps"] > 0
    assert polished.n_iter < plain.n_iter
    # Both certificates are lower bounds, so the objectives agree to the tolerance.
    assert polished.objective <= plain.dual_objective + 2 * tol * abs(plain.objective) + 1e-12
    assert plain.objective <= polished.dual_objective + 2 * tol * abs(polished.objective) + 1e-12


@pytest.mark.parametrize("kind, datafit, penalty", SINGLE_OUTPUT, ids=lambda c: repr(c))
def test_fista_with_polish_returns_the_optimum_whatever_the_start(kind, datafit, penalty):
    # At tol=1e-3 plain FISTA stops wherever its iterates are; with the
    # Newton end-game the answer is the optimum to machine precision.
    problem = build(4, kind, datafit, penalty, 1, alpha=0.01, n=80)
    ref = fista(problem, tol=1e-12, max_iter=200000)
    rng = np.random.default_rng(0)
    starts = [None, ref.coef + 0.1 * rng.standard_normal(ref.coef.shape)]
    preds = []
    for start in starts:
        res = fista(problem, tol=1e-3, max_iter=50000, coef_init=start, polish=support_newton)
        assert res.converged and res.relative_gap <= 1e-6
        preds.append(problem.operator.forward(res.coef) + res.intercept)
    # The two answers agree far beyond tol=1e-3, and with the reference to
    # its own accuracy (a 1e-12 gap pins predictions to about 1e-6).
    np.testing.assert_allclose(preds[0], preds[1], rtol=0, atol=1e-7)
    np.testing.assert_allclose(preds[0], problem.operator.forward(ref.coef) + ref.intercept, atol=1e-6)


MULTI_OUTPUT = [
    ("multinomial", Multinomial(), 3),
    ("multinomial", Multinomial(), 4),
    ("squared", SquaredError(), 2),
]


@pytest.mark.parametrize("kind, datafit, C", MULTI_OUTPUT, ids=lambda c: repr(c))
@pytest.mark.parametrize("weights", [False, True])
def test_multi_output_newton_on_the_optimal_support_certifies_in_few_steps(kind, datafit, C, weights):
    # Frobenius blocks over C outputs: the per-sample Hessians are C x C
    # (softmax covariance for the multinomial) and the intercept's Schur
    # complement is a C x C pseudo-inverse; a diagonal or single-output
    # Hessian would not close the full program's gap in 8 steps.
    problem = build(0, kind, datafit, GroupL2(), C, alpha=0.01, weights=weights)
    ref = fista(problem, tol=1e-12, max_iter=200000)
    assert ref.converged
    rng = np.random.default_rng(1)
    start = ref.coef * (1 + 0.02 * rng.uniform(-1, 1, ref.coef.shape))
    W, b, info = support_newton(problem, start, None, tol=1e-12)
    assert info["applicable"] and info["applied"] and 1 <= info["n_steps"] <= 8
    cert, _, _ = problem.evaluate(W, b)
    assert cert.gap <= 1e-7 * abs(cert.primal)
    np.testing.assert_allclose(cert.primal, ref.objective, rtol=1e-9)
    np.testing.assert_array_equal(_support(problem, W), _support(problem, ref.coef))


def _multinomial_problem(seed, C, alpha, n=60, n_patterns=10, weights=False, sparse=False):
    rng = np.random.default_rng(seed)
    X, y = make_problem_data(rng, n=n, d=4, n_outputs=C, kind="multinomial")
    patterns = sample_arrangements(X, n_patterns, random_state=seed).patterns
    op = PatternOperator(sp.csr_matrix(X) if sparse else X, patterns, n_outputs=y.shape[1])
    s = rng.random(n) + 0.2 if weights else np.ones(n)
    return ConvexProblem(op, Multinomial(), GroupL2(), y, s / s.sum(), alpha)


@pytest.mark.parametrize(
    "seed, C, alpha, weights, sparse",
    [(0, 3, 0.01, False, False), (1, 4, 0.005, True, False), (2, 3, 0.02, True, False), (3, 4, 0.01, False, True)],
)
def test_multinomial_polish_matches_cvxpy(seed, C, alpha, weights, sparse):
    problem = _multinomial_problem(seed, C, alpha, weights=weights, sparse=sparse)
    assert problem.coef_shape[2] == C
    ref = cvxpy_solve(problem, solver_options={"tol_gap_rel": 1e-10, "tol_gap_abs": 1e-12})
    res = fista(problem, tol=1e-7, max_iter=50000, polish=support_newton)
    assert res.converged and res.info["newton_steps"] > 0
    np.testing.assert_allclose(res.objective, ref.objective, rtol=1e-6)
    # The reported certificate, recomputed from the returned point: a primal
    # value equal to the objective and a gap below the tolerance, whose dual
    # value is a true lower bound of CVXPY's optimum.
    cert, _, _ = problem.evaluate(res.coef, res.intercept)
    np.testing.assert_allclose(cert.primal, res.objective, rtol=1e-12)
    assert cert.gap <= 1e-7 * abs(cert.primal)
    assert cert.primal - cert.gap <= ref.objective + 1e-9
    np.testing.assert_allclose(res.gap, cert.gap, rtol=1e-6, atol=1e-12 * abs(cert.primal))


@pytest.mark.parametrize("kind, datafit, C", MULTI_OUTPUT, ids=lambda c: repr(c))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_multi_output_fista_with_polish_reaches_the_same_certified_optimum_sooner(kind, datafit, C, dtype):
    problem = build(1, kind, datafit, GroupL2(), C, alpha=0.005, dtype=dtype, n=80)
    tol = 1e-6 if dtype == np.float64 else 1e-4
    plain = fista(problem, tol=tol, max_iter=50000)
    polished = fista(problem, tol=tol, max_iter=50000, polish=support_newton)
    assert plain.converged and polished.converged
    assert polished.info["newton_steps"] > 0
    assert polished.n_iter < plain.n_iter
    assert polished.objective <= plain.dual_objective + 2 * tol * abs(plain.objective) + 1e-12
    assert plain.objective <= polished.dual_objective + 2 * tol * abs(polished.objective) + 1e-12
