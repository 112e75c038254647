import numpy as np
import pytest
from relu_problems import LOSSES, build, reference

from skconvex.programs.datafits import SquaredError
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
    # Without the polish at the start, which solves some of these steps on
    # the previous support and faces at once (rounds == 0).
    res = cone_working_set_solve(
        problem, coef_init=previous.coef, intercept_init=previous.intercept, tol=1e-8, max_iter=2000,
        polish=False,
    )
    assert res.converged and res.info["rounds"] >= 1
    polished = cone_working_set_solve(
        problem, coef_init=previous.coef, intercept_init=previous.intercept, tol=1e-8, max_iter=2000
    )
    assert polished.converged
    np.testing.assert_allclose(polished.objective, ref.objective, rtol=1e-6)
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
    # the polish on the start's faces may only improve it
    assert res.objective <= solved.objective * (1 + 1e-14)
    np.testing.assert_allclose(res.objective, solved.objective, rtol=1e-9)


@pytest.mark.parametrize("scale", [None, 3.0])
def test_start_multipliers_are_refined_on_every_column(scale):
    # A path step starts without multipliers (those of another alpha
    # mislead), and a given guess may be poor anywhere: the start's
    # certificate and the first restricted solve use the best multipliers of
    # every column, support included.
    problem = build(4, "squared", SquaredError(), 1, n=60, n_gates=60, alpha=0.04)
    previous = augmented_lagrangian(problem, tol=1e-8)
    problem.alpha = 0.02
    P = problem.coef_shape[1]
    _, _, grad = problem.smooth(problem.operator.forward(previous.coef), previous.intercept)
    start = None
    if scale is not None:
        start = scale * np.asarray(previous.info["multipliers"]).reshape(problem.multiplier_shape)
    _, G_best = problem.refine_multipliers(grad, None, max_columns=P)
    best_dual = problem.dual_value(grad, G_best)
    # the multipliers given (zero when None) are clearly worse than the best ones
    lam0 = np.zeros(problem.multiplier_shape) if start is None else start
    assert problem.dual_value(grad, problem.joint_adjoint(grad, -lam0)) < 0.6 * best_dual

    given = []

    def spy(sub, **kwargs):
        given.append(kwargs["multipliers_init"])
        return augmented_lagrangian(sub, **kwargs)

    res = cone_working_set_solve(
        problem,
        restricted_solver=spy,
        coef_init=previous.coef,
        intercept_init=previous.intercept,
        multipliers_init=start,
        tol=1e-8,
        max_iter=2000,
        polish=False,  # the certificate is then taken at the start itself
    )
    assert res.converged and res.info["rounds"] == 1
    np.testing.assert_allclose(res.history[0][1], best_dual, rtol=1e-10)
    ws = res.info["working_set"]
    lam = np.zeros(problem.multiplier_shape)
    lam[:, ws] = np.asarray(given[0]).reshape(lam[:, ws].shape)
    G = problem.joint_adjoint(grad, -lam)
    norms = np.sqrt(np.einsum("dkc,dkc->k", G, G))
    assert np.all(norms[ws] <= np.sqrt(np.einsum("dkc,dkc->k", G_best, G_best))[ws] + 1e-10)


def test_budget_is_shared_by_the_rounds():
    problem = build(5, "squared", SquaredError(), 1, n=60, n_gates=60, alpha=0.01)
    start = problem.zeros()
    start[:, 0] = 1e-3 * problem.operator.X[0][:, None] * problem.cone_signs[0, 0]
    res = cone_working_set_solve(problem, coef_init=start, tol=1e-12, max_iter=15)
    assert not res.converged and res.n_iter <= 15
    # an unconverged answer still carries a true, if loose, certificate
    ref = reference(problem)
    assert res.dual_objective <= ref.objective * (1 + 1e-12) <= res.objective * (1 + 1e-9)


def test_columns_keep_their_multipliers_between_rounds(monkeypatch):
    # After a round, the columns outside the working set keep the best
    # multipliers found for them before; only those whose dual norm rose
    # above alpha with the new gradient need a new least-squares solve.
    import scipy.optimize

    problem = build(4, "squared", SquaredError(), 1, n=60, n_gates=60, alpha=0.04)
    previous = augmented_lagrangian(problem, tol=1e-8)
    problem.alpha = 0.036
    calls = []
    nnls = scipy.optimize.nnls

    def counted(*args, **kwargs):
        calls.append(1)
        return nnls(*args, **kwargs)

    monkeypatch.setattr(scipy.optimize, "nnls", counted)
    counts = []
    refine = problem.refine_multipliers

    def spy(*args, **kwargs):
        before = len(calls)
        out = refine(*args, **kwargs)
        counts.append((kwargs.get("blocks"), len(calls) - before))
        return out

    monkeypatch.setattr(problem, "refine_multipliers", spy)
    res = cone_working_set_solve(
        problem, coef_init=previous.coef, intercept_init=previous.intercept, tol=1e-8,
        max_iter=2000, polish=False,
    )
    assert res.converged and res.info["rounds"] >= 1
    outside, solved = counts[1]
    assert outside is not None and outside.size > 20
    assert solved < outside.size / 2
