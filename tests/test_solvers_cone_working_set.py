import numpy as np
import pytest
from relu_problems import LOSSES, build, reference

from skconvex.losses import SquaredError
from skconvex.solvers.auglag import augmented_lagrangian
from skconvex.solvers.working_set import cone_working_set_solve


def _ids(case):
    return case[0]


def _column_norms(W):
    return np.sqrt(np.einsum("dkc,dkc->k", W, W))


@pytest.mark.parametrize("case", LOSSES, ids=_ids)
def test_path_step_matches_clarabel_on_a_working_set(case):
    # One step of a regularization path: from the solution at a larger alpha
    # the working set (its support plus the best-ranked columns) holds the new
    # support, and the full certificate closes on the reference optimum.
    kind, datafit, C = case
    problem = build(4, kind, datafit, C, n=60, n_gates=60, alpha=0.04)
    previous = augmented_lagrangian(problem, tol=1e-8)
    problem.alpha = 0.02
    ref = reference(problem)
    res = cone_working_set_solve(
        problem, coef_init=previous.coef, intercept_init=previous.intercept, tol=1e-8, max_iter=2000
    )
    assert res.converged and res.info["rounds"] >= 1
    P = problem.coef_shape[1]
    assert res.info["working_set"].size < P
    np.testing.assert_allclose(res.objective, ref.objective, rtol=1e-6)
    # the full program's bound, although columns outside the working set were
    # never solved for
    assert res.dual_objective <= ref.objective * (1 + 1e-12)
    assert res.gap <= 1e-8 * res.objective
    # zero outside the working set, and the point satisfies every cone
    outside = np.setdiff1d(np.arange(P), res.info["working_set"])
    assert not res.coef[:, outside].any()
    Z = problem.operator.product(res.coef)
    assert problem.constraint_values(Z).min() >= -1e-12 * np.abs(Z).max()
    assert res.info["multipliers"].shape == problem.multiplier_shape


def test_columns_missing_from_the_start_are_found():
    problem = build(5, "squared", SquaredError(), 1, n=60, n_gates=60, alpha=0.01)
    ref = reference(problem)
    norms = _column_norms(ref.coef)
    support = np.flatnonzero(norms > 1e-6 * norms.max())
    assert support.size >= 4
    # a start with only the largest column: with one column added per round
    # at first, the rest must be found by the full certificate's tests
    start = problem.zeros()
    start[:, support[np.argmax(norms[support])]] = ref.coef[:, support[np.argmax(norms[support])]]
    res = cone_working_set_solve(problem, coef_init=start, tol=1e-8, max_iter=2000, min_size=1)
    assert res.converged and res.info["rounds"] >= 2
    assert np.isin(support, res.info["working_set"]).all()
    np.testing.assert_allclose(res.objective, ref.objective, rtol=1e-6)
    assert res.dual_objective <= ref.objective * (1 + 1e-12)


def test_certified_start_runs_no_round():
    problem = build(6, "squared", SquaredError(), 1)
    solved = augmented_lagrangian(problem, tol=1e-9)
    res = cone_working_set_solve(
        problem,
        coef_init=solved.coef,
        intercept_init=solved.intercept,
        multipliers_init=solved.info["multipliers"],
        tol=1e-6,
    )
    assert res.converged and res.info["rounds"] == 0 and res.n_iter == 1
    np.testing.assert_allclose(res.objective, solved.objective, rtol=1e-12)


def test_budget_is_shared_by_the_rounds():
    problem = build(5, "squared", SquaredError(), 1, n=60, n_gates=60, alpha=0.01)
    start = problem.zeros()
    start[:, 0] = 1e-3 * problem.operator.X[0][:, None] * problem.cone_signs[0, 0]
    res = cone_working_set_solve(problem, coef_init=start, tol=1e-12, max_iter=15)
    assert not res.converged and res.n_iter <= 15
    # an unconverged answer still carries a true, if loose, certificate
    ref = reference(problem)
    assert res.dual_objective <= ref.objective * (1 + 1e-12) <= res.objective * (1 + 1e-9)
