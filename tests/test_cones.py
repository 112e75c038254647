import numpy as np
import pytest
from relu_problems import build, reference

from skconvex.programs.datafits import Multinomial, SquaredError
from skconvex.programs.penalties import ColumnGroupL2, GroupL2


def _problem(C=1, seed=0, **kw):
    datafit = SquaredError() if C < 3 else Multinomial()
    kind = {1: "squared", 2: "squared2", 3: "multinomial"}[C]
    return build(seed, kind, datafit, C, **kw)


@pytest.mark.parametrize("C", [1, 3])
def test_constraint_values_are_sign_flips_of_the_product(rng, C):
    problem = _problem(C)
    op = problem.operator
    W = rng.standard_normal(op.coef_shape)
    Z = op.product(W)
    G = problem.constraint_values(Z)
    X = op.X
    n, B = problem.cone_signs.shape
    P = B // 2
    patterns = op.masks[:, :P] != 0
    for k in range(B):
        D = np.where(patterns[:, k % P], 1.0, -1.0)
        np.testing.assert_allclose(G[:, k, :], D[:, None] * (X @ W[:, k, :]), atol=1e-12)


@pytest.mark.parametrize("C", [1, 2])
def test_joint_adjoint_is_the_adjoint_of_both_maps(rng, C):
    problem = _problem(C)
    op = problem.operator
    W = rng.standard_normal(op.coef_shape)
    R = rng.standard_normal((op.n_samples, C))
    L = rng.standard_normal((op.n_samples,) + op.coef_shape[1:])
    lhs = np.vdot(op.forward(W), R) + np.vdot(problem.constraint_values(op.product(W)), L)
    rhs = np.vdot(W, problem.joint_adjoint(R, L))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12)
    np.testing.assert_allclose(problem.joint_adjoint(R), op.adjoint(R), atol=1e-12)


@pytest.mark.parametrize("C", [1, 3])
def test_cone_curvature_adjoint_is_both_adjoints_fused(rng, C):
    # A matrix-free Newton product needs A^T R + G^T(W * G U); the fused
    # form (one pass over X U instead of four) must give the same numbers,
    # also with rows of zero weight (no constraints) counted active.
    from skconvex.programs.cones import ConeConstrainedProblem

    problem = _problem(C, weights=True)
    w = problem.sample_weight.copy()
    w[:4] = 0
    problem = ConeConstrainedProblem(
        problem.operator, problem.datafit, problem.penalty, problem.y, w / w.sum(),
        problem.alpha, interior=problem.interior,
    )
    op = problem.operator
    Z = op.product(rng.standard_normal(op.coef_shape))
    R = rng.standard_normal((op.n_samples, C))
    active = (rng.random(Z.shape) < 0.4).astype(float)
    active[:4] = 1.0
    weights = 3.7 * active
    expected = problem.joint_adjoint(R, weights * problem.constraint_values(Z))
    got = problem.cone_curvature_adjoint(R, Z, problem.cone_curvature_weights(weights))
    np.testing.assert_array_equal(got, expected)

    class Stacked(ConeConstrainedProblem):
        # Cones of a subclass are used as that subclass defines them.
        def constraint_values(self, Z):
            return 2.0 * super().constraint_values(Z)

    stacked = Stacked(
        op, problem.datafit, problem.penalty, problem.y, problem.sample_weight,
        problem.alpha, interior=problem.interior,
    )
    np.testing.assert_array_equal(stacked.cone_curvature_weights(weights), weights)
    np.testing.assert_allclose(
        stacked.cone_curvature_adjoint(R, Z, weights),
        stacked.joint_adjoint(R, weights * stacked.constraint_values(Z)),
    )
    assert not np.allclose(stacked.cone_curvature_adjoint(R, Z, weights), expected)


def test_cone_matrix_is_the_explicit_constraint_map(rng):
    problem = _problem(1)
    op = problem.operator
    W = rng.standard_normal(op.coef_shape)
    G = problem.cone_matrix()
    rows, blocks = np.nonzero(problem.cone_signs)
    expected = problem.constraint_values(op.product(W))[:, :, 0]
    order = np.lexsort((rows, blocks))
    np.testing.assert_allclose(
        G @ W[:, :, 0].T.ravel(), expected[rows[order], blocks[order]], atol=1e-12
    )


def test_violation_is_relative_and_zero_when_feasible(rng):
    problem = _problem(1)
    op = problem.operator
    assert problem.violation(op.product(problem.zeros())) == 0.0
    # the interior points (the gates) are feasible
    W = problem.interior[:, :, None].copy()
    assert problem.violation(op.product(W)) == 0.0
    W = rng.standard_normal(op.coef_shape)
    v = problem.violation(op.product(W))
    assert 0 < v <= 1
    np.testing.assert_allclose(problem.violation(op.product(7 * W)), v, rtol=1e-12)


def test_restore_makes_points_feasible_with_a_small_change(rng):
    problem = _problem(2)
    ref = reference(problem)
    op = problem.operator
    noisy = ref.coef + 1e-6 * rng.standard_normal(ref.coef.shape) * (ref.coef != 0)
    assert problem.violation(op.product(noisy)) > 0
    fixed, changed = problem.restore(noisy)
    assert changed > 0
    Z = op.product(fixed)
    assert problem.constraint_values(Z).min() >= -1e-14 * np.abs(Z).max()
    # columns move by a small multiple of the perturbation, or vanish
    assert np.abs(fixed - noisy).max() <= 1e-3 * np.abs(ref.coef).max() or not fixed.any()
    np.testing.assert_allclose(problem.objective(fixed)[0], ref.objective, rtol=1e-4)


@pytest.mark.parametrize("C", [1, 3])
def test_restore_projects_nearly_feasible_columns_on_their_cones(rng, C):
    # A column violated by a small fraction of its pre-activations moves to
    # its Euclidean projection on the cone (CVXPY's, to solver accuracy),
    # not along its gate: the shift along a random gate cost the multinomial
    # digits program's restored point 55 % of its objective.
    import cvxpy as cp

    problem = _problem(C)
    op = problem.operator
    X = op.X
    d, B, _ = op.coef_shape
    k = int(np.argmax(np.abs(problem.cone_signs).sum(axis=0)))
    A = problem.cone_signs[:, k, None] * X
    # a point of the cone's boundary pushed 0.5 % outward across one row
    u = problem.interior[:, k] + 0.3 * rng.standard_normal(d)
    u = np.asarray(problem.restore(np.tile(u[:, None, None], (1, B, C)))[0][:, k, 0])
    margins = A @ u
    i = int(np.argmin(np.where(margins > 0, margins, np.inf)))
    v = u - (margins[i] + 5e-3 * np.abs(X @ u).max()) * A[i] / (A[i] @ A[i])
    W = np.zeros(op.coef_shape)
    W[:, k, -1] = v
    assert problem.violation(op.product(W)) > 1e-3
    fixed, changed = problem.restore(W)
    assert changed == 1
    Z = op.product(fixed)
    assert problem.constraint_values(Z).min() >= -1e-14 * np.abs(Z).max()
    # Feasible and no farther from v than CVXPY's projection (up to restore's
    # 1e-8 overstep): for a feasible x, |x - x*|^2 <= |x - v|^2 - |x* - v|^2,
    # so it is the projection up to CVXPY's accuracy (which is worse: 2e-5).
    x = cp.Variable(d)
    cp.Problem(cp.Minimize(cp.norm(x - v)), [A @ x >= 0]).solve(solver="CLARABEL")
    dist = np.linalg.norm(fixed[:, k, -1] - v)
    assert dist <= np.linalg.norm(x.value - v) * (1 + 1e-7)
    np.testing.assert_allclose(fixed[:, k, -1], x.value, atol=1e-3 * np.linalg.norm(v))
    # columns violated by most of their pre-activation are still shifted or zeroed
    W[:, k, -1] = -v
    fixed, _ = problem.restore(W)
    shifted = fixed[:, k, -1] + v
    assert not fixed[:, k, -1].any() or np.allclose(
        shifted / np.linalg.norm(shifted), problem.interior[:, k] / np.linalg.norm(problem.interior[:, k])
    )


def test_zero_weight_rows_are_unconstrained():
    problem = _problem(1, weights=True)
    w = problem.sample_weight.copy()
    w[:5] = 0
    from skconvex.programs.cones import ConeConstrainedProblem

    p2 = ConeConstrainedProblem(
        problem.operator, problem.datafit, problem.penalty, problem.y, w / w.sum(),
        problem.alpha, interior=problem.interior,
    )
    assert not p2.cone_signs[:5].any() and p2.cone_signs[5:].all()
    assert p2.n_constraints == 35 * problem.operator.n_patterns


def test_bad_shapes_are_rejected():
    problem = _problem(1)
    from skconvex.programs.cones import ConeConstrainedProblem

    args = (problem.operator, problem.datafit, problem.penalty, problem.y, problem.sample_weight, 0.1)
    with pytest.raises(ValueError, match="cone_patterns"):
        ConeConstrainedProblem(*args, cone_patterns=np.ones((3, 3), bool))
    with pytest.raises(ValueError, match="interior"):
        ConeConstrainedProblem(*args, interior=np.ones((2, 2)))


def test_restrict_and_astype_keep_the_cones():
    problem = _problem(1)
    blocks = np.array([0, 2, 3])
    sub = problem.restrict(blocks)
    np.testing.assert_array_equal(sub.cone_signs, problem.cone_signs[:, blocks])
    np.testing.assert_array_equal(sub.interior, problem.interior[:, blocks])
    p32 = problem.astype(np.float32)
    assert p32.cone_signs.dtype == np.float32 and p32.interior.dtype == np.float32


# ---------------------------------------------------------------- penalty


@pytest.mark.parametrize("shape", [(5, 7, 1), (4, 6, 3)])
def test_column_group_l2_value_prox_and_dual(rng, shape):
    pen = ColumnGroupL2()
    W = rng.standard_normal(shape)
    cols = np.linalg.norm(W, axis=0)
    np.testing.assert_allclose(pen.value(W), cols.sum(), rtol=1e-12)
    G = rng.standard_normal(shape)
    np.testing.assert_allclose(pen.dual_norm(G), np.linalg.norm(G, axis=0).max(), rtol=1e-12)
    assert np.vdot(W, G) <= pen.value(W) * pen.dual_norm(G) + 1e-12
    t = 0.7
    Pw, value = pen.prox(W, t, return_value=True)
    np.testing.assert_allclose(value, pen.value(Pw), rtol=1e-12)

    def obj(V):
        return 0.5 * np.sum((V - W) ** 2) + t * pen.value(V)

    for _ in range(20):
        assert obj(Pw + 1e-3 * rng.standard_normal(shape)) >= obj(Pw) - 1e-12
    assert pen.dual_norm((W - Pw) / t) <= 1 + 1e-12
    if shape[2] == 1:
        np.testing.assert_allclose(pen.value(W), GroupL2().value(W))
        np.testing.assert_allclose(Pw, GroupL2().prox(W, t))


def test_refined_multipliers_tighten_a_valid_certificate():
    from skconvex.programs.datafits import Logistic
    from skconvex.solvers.auglag import augmented_lagrangian

    problem = build(0, "logistic", Logistic(), 1, alpha=0.01)
    ref = reference(problem)
    res = augmented_lagrangian(problem, tol=1e-12, max_iter=4)
    U, lam = res.info["iterate"], res.info["multipliers"]
    _, _, grad = problem.smooth(problem.operator.forward(U))
    plain = problem.dual_value(grad, problem.joint_adjoint(grad, -lam))
    for start in (lam, None):
        refined_lam, G = problem.refine_multipliers(grad, start)
        assert refined_lam.min() >= 0
        np.testing.assert_allclose(G, problem.joint_adjoint(grad, -refined_lam), atol=1e-10)
        refined = problem.dual_value(grad, G)
        # still a lower bound of the optimum, and a better one
        assert plain < refined <= ref.objective * (1 + 1e-12)


def test_refined_multipliers_only_on_the_given_blocks():
    from skconvex.programs.datafits import Logistic

    problem = build(0, "logistic", Logistic(), 1, alpha=0.01)
    _, _, grad = problem.smooth(problem.operator.forward(problem.zeros()))
    B = problem.coef_shape[1]
    every, G_every = problem.refine_multipliers(grad)
    chosen = np.arange(0, B, 3)
    some, G_some = problem.refine_multipliers(grad, blocks=chosen)
    others = np.setdiff1d(np.arange(B), chosen)
    assert every[:, chosen].any() and every[:, others].any()
    # the chosen columns get the same multipliers, the others none
    np.testing.assert_array_equal(some[:, chosen], every[:, chosen])
    assert not some[:, others].any()
    np.testing.assert_allclose(G_some[:, chosen], G_every[:, chosen])


@pytest.mark.parametrize("kind, datafit, C", [("logistic", "Logistic", 1), ("multinomial", "Multinomial", 3)])
def test_refining_for_the_bound_only_gives_the_bound_of_refining_every_column(kind, datafit, C):
    # The dual bound sees the columns only through their largest dual norm,
    # so refining in decreasing order of norm may stop once the largest
    # refined norm reaches the next column's: same bound, fewer solves.
    from skconvex.programs import datafits

    problem = build(1, kind, getattr(datafits, datafit)(), C, n=60, d=3, n_gates=40, alpha=1e-3)
    rng = np.random.default_rng(0)
    for U in (problem.zeros(), 0.3 * rng.standard_normal(problem.coef_shape)):
        _, _, grad = problem.smooth(problem.operator.forward(U))
        every, G_every = problem.refine_multipliers(grad)
        some, G_some = problem.refine_multipliers(grad, bound_only=True)
        # fewer columns solved for ...
        assert np.count_nonzero(np.abs(some).sum(axis=0)) < np.count_nonzero(np.abs(every).sum(axis=0))
        np.testing.assert_allclose(G_some, problem.joint_adjoint(grad, -some), atol=1e-10)
        # ... the same largest dual norm, hence the same certified bound
        np.testing.assert_allclose(problem.penalty.dual_norm(G_some), problem.penalty.dual_norm(G_every), rtol=1e-12)
        assert problem.dual_value(grad, G_some) == pytest.approx(problem.dual_value(grad, G_every), rel=1e-12)
        # the columns left alone keep their multipliers (none here)
        assert problem.dual_value(grad, G_some) > problem.dual_value(grad, problem.joint_adjoint(grad, 0 * some))
