import numpy as np
import pytest
from relu_problems import build, reference

from skconvex import config_context
from skconvex.programs.datafits import Logistic, Multinomial, SquaredError
from skconvex.programs.penalties import GroupL2
from skconvex.solvers._al_newton import newton_al
from skconvex.solvers.auglag import _ColumnCones, augmented_lagrangian
from skconvex.solvers import face_newton as face_newton_module
from skconvex.solvers.face_newton import face_newton, finish_on_faces
from skconvex.solvers.working_set import cone_working_set_solve

# (loss, seed, alpha before, alpha after): path steps whose support does not
# change; in the second, the face changes (rows leave and join it), in the
# third, columns of the start leave the support.
STEPS = [
    ("squared", 4, 0.04, 0.036),
    ("squared", 5, 0.04, 0.03),
    ("logistic", 7, 0.03, 0.04),
]
DATAFITS = {"squared": SquaredError(), "logistic": Logistic()}


def _step(kind, seed, a0, a1):
    """The solution at ``a0`` and the program at ``a1`` with the support's best multipliers there."""
    problem = build(seed, kind, DATAFITS[kind], 1, n=60, n_gates=60, alpha=a0)
    previous = augmented_lagrangian(problem, tol=1e-9)
    assert previous.converged
    problem.alpha = a1
    _, _, grad = problem.smooth(problem.operator.forward(previous.coef), previous.intercept)
    support = np.flatnonzero(np.linalg.norm(previous.coef[:, :, 0], axis=0) > 0)
    lam, _ = problem.refine_multipliers(grad, None, max_columns=problem.coef_shape[1], blocks=support)
    return problem, previous, lam


def _support(W, rtol=1e-6):
    norms = np.linalg.norm(W[:, :, 0], axis=0)
    return norms > rtol * norms.max()


def _min_constraint(problem, W):
    Z = problem.operator.product(W)
    return problem.constraint_values(Z).min() / max(np.abs(Z).max(), np.finfo(float).tiny)


@pytest.mark.parametrize("step", STEPS, ids=lambda s: f"{s[0]}-{s[1]}-{s[3]}")
def test_path_step_reaches_the_reference_optimum(step):
    problem, previous, lam = _step(*step)
    ref = reference(problem)
    W, b, info = face_newton(problem, previous.coef, previous.intercept, lam, max_steps=50)
    assert info["applied"] and info["converged"]
    objective, _ = problem.objective(W, b)
    np.testing.assert_allclose(objective, ref.objective, rtol=1e-8)
    np.testing.assert_array_equal(_support(W), _support(ref.coef))
    assert _min_constraint(problem, W) >= -1e-12
    # a KKT point of the full program: the best multipliers of every column
    # certify it (the start's gap is 1e-3 or more)
    _, _, grad = problem.smooth(problem.operator.forward(W), b)
    _, G = problem.refine_multipliers(grad, None, max_columns=problem.coef_shape[1])
    dual = problem.dual_value(grad, G)
    assert objective - dual <= 1e-5 * objective
    if step[1] == 5 and step[0] == "squared":
        assert info["released"] >= 1 and info["added"] >= 1
    if step[0] == "logistic":
        assert info["dropped"] >= 1


def test_wrong_faces_still_give_a_feasible_point():
    # Rows far from their constraints marked tight: the first faces are
    # wrong, the point must nevertheless stay in the cones.
    problem, previous, _ = _step("squared", 4, 0.04, 0.036)
    lam = np.ones(problem.multiplier_shape)
    W, b, info = face_newton(problem, previous.coef, previous.intercept, lam, rel_tight=0.05)
    assert info["applied"] and W.any()
    assert _min_constraint(problem, W) >= -1e-12
    objective, _ = problem.objective(W, b)
    assert np.isfinite(objective) and np.all(np.isfinite(W))


def test_programs_it_does_not_cover_are_left_alone(monkeypatch):
    # One norm per pattern block over several outputs couples the outputs'
    # columns: not a norm per column.
    problem = build(4, "squared", SquaredError(), 2, n=60, n_gates=60, alpha=0.04)
    previous = augmented_lagrangian(problem, tol=1e-6)
    problem.penalty = GroupL2()
    W, b, info = face_newton(problem, previous.coef, previous.intercept, previous.info["multipliers"])
    assert not info["applied"] and W is previous.coef
    problem, previous, lam = _step("squared", 4, 0.04, 0.036)
    W, b, info = face_newton(problem, previous.coef, previous.intercept, lam, max_variables=3)
    assert not info["applied"] and W is previous.coef
    W, b, info = face_newton(problem, problem.zeros(), None, lam)
    assert not info["applied"]
    # Dense systems beyond the memory budget (or its own bound): left alone,
    # and the finish of a cold fit too.
    with config_context(max_memory=2000):
        W, b, info = face_newton(problem, previous.coef, previous.intercept, lam)
        assert not info["applied"] and W is previous.coef
    monkeypatch.setattr(face_newton_module, "_MAX_BYTES", 2000)
    W, b, info = face_newton(problem, previous.coef, previous.intercept, lam)
    assert not info["applied"] and W is previous.coef
    res = augmented_lagrangian(problem, tol=1e-4)
    assert "face_newton" not in res.info and res.converged


@pytest.mark.parametrize("kind", ["squared", "logistic"])
def test_polished_warm_start_needs_fewer_newton_steps(kind):
    problem, previous, _ = _step(kind, 5, 0.04, 0.03)
    ref = reference(problem)
    runs = {
        polish: cone_working_set_solve(
            problem,
            coef_init=previous.coef,
            intercept_init=previous.intercept,
            tol=1e-6,
            max_iter=2000,
            polish=polish,
        )
        for polish in (False, True)
    }
    for res in runs.values():
        assert res.converged
        assert res.dual_objective <= ref.objective * (1 + 1e-12)
        np.testing.assert_allclose(res.objective, ref.objective, rtol=1e-6)
    assert runs[True].n_iter <= runs[False].n_iter / 2


@pytest.mark.parametrize(
    "kind, datafit, C", [("squared2", SquaredError(), 2), ("multinomial", Multinomial(), 3)]
)
def test_several_outputs_reach_the_reference_optimum(kind, datafit, C):
    # One column per (pattern, output), each on a face of its pattern's cone;
    # the datafit's Hessian couples the outputs.
    problem = build(1, kind, datafit, C, n=40, n_gates=20, alpha=0.03)
    ref = reference(problem)
    # The engine's point without the finish augmented_lagrangian adds.
    start = newton_al(
        _ColumnCones(problem), None, None, None, max_iter=500, tol=1e-6, max_outer=100,
        sigma=None, rho=None, growth=10.0, verbose=0,
    )
    W, b, info = face_newton(
        problem, start.coef, start.intercept, start.info["multipliers"], tol=0.0, max_steps=30
    )
    assert info["applied"] and info["converged"]
    objective, _ = problem.objective(W, b)
    np.testing.assert_allclose(objective, ref.objective, rtol=1e-8)
    assert _min_constraint(problem, W) >= -1e-12
    # Its predictions are the optimum's (unique for these strictly convex
    # datafits).
    pred, ref_pred = (problem.operator.forward(V) + c for V, c in ((W, b), (ref.coef, ref.intercept)))
    np.testing.assert_allclose(pred, ref_pred, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", [("squared", SquaredError(), 1), ("multinomial", Multinomial(), 3)])
def test_augmented_lagrangian_ends_on_the_faces(case):
    # The finish takes the certified tol=1e-4 point to the optimum's
    # rounding level; two programs with the same optimum (weighted rows and
    # repeated rows) then agree far below tol.
    kind, datafit, C = case
    problem = build(2, kind, datafit, C, n=30, n_gates=15, alpha=0.03)
    ref = reference(problem)
    res = augmented_lagrangian(problem, tol=1e-4)
    assert res.converged and res.info["face_newton"]["converged"]
    # Below Clarabel's tight point (its own gap is 1e-9 to 1e-8), above its
    # lower bound.
    assert ref.dual_objective * (1 - 1e-12) <= res.objective <= ref.objective
    assert res.dual_objective <= ref.objective * (1 + 1e-12)
    assert res.constraint_violation <= 1e-12
    # Left alone, the engine's own point is further from the optimum.
    raw = augmented_lagrangian(problem, tol=1e-4)
    raw.coef, raw.intercept = res.coef * 0, res.intercept
    assert finish_on_faces(problem, raw, 1e-4) is raw


def test_finish_keeps_the_better_point():
    # A result whose multipliers mark wrong faces (every row tight): the
    # polished point is worse or equal, and the result is left as it was.
    problem = build(3, "squared", SquaredError(), 1, n=30, n_gates=15, alpha=0.03)
    res = augmented_lagrangian(problem, tol=1e-6)
    before = (res.objective, res.dual_objective, res.coef.copy())
    res.info["multipliers"] = np.ones(problem.multiplier_shape)
    res = finish_on_faces(problem, res, 1e-6)
    assert res.objective <= before[0]
    assert res.dual_objective >= before[1]
    if res.objective == before[0]:
        np.testing.assert_array_equal(res.coef, before[2])
