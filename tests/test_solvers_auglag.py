import numpy as np
import pytest
from relu_problems import LOSSES, build, reference, relu_program

from skconvex.programs.datafits import Logistic, SquaredError
from skconvex.solvers import cvxpy_cone_solve
from skconvex.solvers._al_newton import _KINK_RTOL, newton_al
from skconvex.solvers.auglag import _ColumnCones, augmented_lagrangian


def _ids(case):
    return case[0]


@pytest.mark.parametrize("case", LOSSES, ids=_ids)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_newton_auglag_matches_clarabel(case, seed):
    kind, datafit, C = case
    problem = build(seed, kind, datafit, C, weights=seed == 1)
    ref = reference(problem)
    res = augmented_lagrangian(problem, tol=1e-8)
    assert res.converged
    np.testing.assert_allclose(res.objective, ref.objective, rtol=1e-6)
    # Both certificates are true lower bounds of the optimum, and ours is
    # tight: the gap brackets Clarabel's optimum.
    assert res.dual_objective <= ref.objective * (1 + 1e-12)
    assert res.objective - res.gap <= ref.objective * (1 + 1e-12)
    assert res.gap <= 1e-8 * res.objective
    # The returned point satisfies the cones exactly.
    Z = problem.operator.product(res.coef)
    assert problem.constraint_values(Z).min() >= -1e-12 * np.abs(Z).max()
    np.testing.assert_allclose(
        problem.operator.forward(res.coef) + res.intercept,
        problem.operator.forward(ref.coef) + ref.intercept,
        atol=2e-3,
    )


@pytest.mark.parametrize("case", LOSSES, ids=_ids)
def test_newton_with_tied_rows_active_matches_clarabel(case):
    # The retry after a stall of the exact Newton steps counts the cone rows
    # tied at the kink of the penalty as active in the Newton systems
    # (another element of the generalized Hessian): run from the start, it
    # must reach the same certified optimum.
    kind, datafit, C = case
    problem = build(1, kind, datafit, C)
    ref = reference(problem)
    family = _ColumnCones(problem.astype(np.float64), kink_rtol=_KINK_RTOL)
    # At tol=1e-8 this variant creeps for hundreds of steps, more or fewer
    # with the restored points' gaps that steer the penalties (on build
    # seeds 0-3: 529 / 287 / 699 / 1397 steps when restore only shifted,
    # 324 / 758 / 699 / 946 since it projects).
    res = newton_al(
        family, None, None, None, tol=1e-8, max_iter=1000, max_outer=100,
        sigma=None, rho=None, growth=10.0, verbose=0,
    )
    assert res.converged
    np.testing.assert_allclose(res.objective, ref.objective, rtol=1e-6)
    assert res.dual_objective <= ref.objective * (1 + 1e-12)
    assert res.gap <= 1e-8 * res.objective


def test_stopped_newton_is_solved_again_with_tied_rows_active():
    # Two outer iterations leave the first run short of tol without spending
    # max_iter (as a stall does): augmented_lagrangian then solves again with
    # the tied rows active on the rest of the budget and returns the better
    # certificate, with the iterations of both runs.
    problem = build(0, "squared", SquaredError(), 1).astype(np.float64)
    kw = {"tol": 1e-8, "max_outer": 2, "sigma": None, "rho": None, "growth": 10.0, "verbose": 0}
    first = newton_al(_ColumnCones(problem), None, None, None, max_iter=500, **kw)
    second = newton_al(
        _ColumnCones(problem, kink_rtol=_KINK_RTOL), None, None, None, max_iter=500 - first.n_iter, **kw
    )
    assert not first.converged and first.n_iter < 500
    res = augmented_lagrangian(problem, tol=1e-8, max_outer=2)
    assert res.n_iter == first.n_iter + second.n_iter
    # The better of the two, or lower: the finish on the faces of the cones
    # only ever replaces a point by a better one.
    best = min((first, second), key=lambda r: r.relative_gap)
    assert res.relative_gap <= best.relative_gap
    assert res.objective <= best.objective
    assert res.dual_objective >= best.dual_objective
    # A spent budget is not a stall: no second run.
    spent = augmented_lagrangian(problem, tol=1e-8, max_outer=2, max_iter=3)
    assert spent.n_iter == 3


@pytest.mark.parametrize("case", LOSSES[1:], ids=_ids)
def test_matrix_free_newton_matches_clarabel(case):
    # the path large problems take: truncated CG instead of the Woodbury solve
    kind, datafit, C = case
    problem = build(2, kind, datafit, C)
    ref = reference(problem)
    res = augmented_lagrangian(problem, inner="newton-cg", tol=1e-8)
    assert res.converged
    np.testing.assert_allclose(res.objective, ref.objective, rtol=1e-6)
    assert res.dual_objective <= ref.objective * (1 + 1e-12)


@pytest.mark.parametrize("case", LOSSES[::2], ids=_ids)
def test_fista_auglag_matches_clarabel(case):
    # The FISTA subproblem solver is slow at tight tolerances (the cone
    # penalty's curvature shrinks its steps), so the problems are tiny.
    kind, datafit, C = case
    problem = build(3, kind, datafit, C, n=20, n_gates=8, alpha=0.05)
    ref = reference(problem)
    res = augmented_lagrangian(problem, inner="fista", tol=1e-6, max_iter=100000)
    assert res.converged
    assert res.info["inner"] == "fista"
    np.testing.assert_allclose(res.objective, ref.objective, rtol=1e-6)
    assert res.dual_objective <= ref.objective * (1 + 1e-12)


@pytest.mark.parametrize("inner", ["newton", "fista"])
def test_gap_bounds_the_true_suboptimality_along_the_way(inner):
    problem = build(4, "logistic", Logistic(), 1, alpha=0.005)
    ref = reference(problem)
    budgets = (2, 6, 12) if inner == "newton" else (20, 100, 400)
    converged = []
    for max_iter in budgets:
        res = augmented_lagrangian(problem, inner=inner, tol=1e-12, max_iter=max_iter)
        # (The final polish on the faces can certify even a short run.)
        converged.append(res.converged)
        # feasible point, so objective >= optimum (>= Clarabel's lower bound:
        # polished points end below Clarabel's own, 2e-9 above the optimum);
        # its gap bounds the distance
        assert res.objective >= ref.dual_objective * (1 - 1e-12)
        assert res.objective - ref.objective <= res.gap * (1 + 1e-9) + 1e-14
        assert res.dual_objective <= ref.objective * (1 + 1e-12)
    assert not converged[0]


def test_kkt_conditions_at_solution():
    problem = build(5, "squared", SquaredError(), 1, alpha=0.05)
    res = augmented_lagrangian(problem, tol=1e-10)
    assert res.converged
    lam = res.info["multipliers"]
    W = res.coef
    Z = problem.operator.product(W)
    slack = problem.constraint_values(Z)
    # dual feasibility and complementary slackness of the cones
    assert lam.min() >= 0
    scale = np.abs(Z).max() * lam.max()
    assert np.abs(lam * slack).max() <= 1e-6 * scale
    # stationarity: for every non-zero column, A^T grad F - G^T lam = -alpha u/|u|
    _, _, G = problem.evaluate(W, res.intercept, multipliers=lam)
    norms = np.sqrt(np.einsum("dkc,dkc->kc", W, W))
    active = norms > 0
    assert active.any() and (~active).any()
    unit = W[:, active] / norms[active]
    np.testing.assert_allclose(-G[:, active], problem.alpha * unit, atol=1e-4 * problem.alpha)
    # zero columns: the Lagrangian gradient is in the dual ball
    Gn = np.sqrt(np.einsum("dkc,dkc->kc", G, G))
    assert np.all(Gn[~active] <= problem.alpha * (1 + 1e-4))


def test_certificate_is_a_lower_bound_for_any_multipliers(rng):
    problem = build(6, "squared2", SquaredError(), 2)
    ref = reference(problem)
    W = problem.zeros()
    for _ in range(5):
        lam = np.abs(rng.standard_normal((problem.operator.n_samples,) + problem.coef_shape[1:]))
        cert, _, _ = problem.evaluate(W, multipliers=0.01 * lam)
        assert cert.dual <= ref.objective * (1 + 1e-12)


def test_float32_problem_gets_float64_certificate():
    p64 = build(7, "logistic", Logistic(), 1)
    p32 = p64.astype(np.float32)
    assert p32.operator.X.dtype == np.float32
    r64 = augmented_lagrangian(p64, tol=1e-8)
    r32 = augmented_lagrangian(p32, tol=1e-8)
    assert r32.converged and r32.coef.dtype == np.float64
    np.testing.assert_allclose(r32.objective, r64.objective, rtol=1e-7)
    # the certificate is that of the float32 data, evaluated in float64
    cert, _, _ = p32.astype(np.float64).evaluate(r32.coef, r32.intercept)
    np.testing.assert_allclose(cert.primal, r32.objective, rtol=1e-12)


def test_warm_start_takes_fewer_iterations():
    problem = build(8, "squared", SquaredError(), 1)
    cold = augmented_lagrangian(problem, tol=1e-8)
    state = dict(
        coef_init=cold.coef,
        intercept_init=cold.intercept,
        multipliers_init=cold.info["multipliers"],
        sigma=cold.info["sigma"],
        rho=cold.info["rho"],
    )
    warm = augmented_lagrangian(problem, tol=1e-8, **state)
    assert warm.converged and warm.n_iter < cold.n_iter / 4
    # and along a path: a new alpha from the previous state
    problem.alpha *= 1.5
    cold = augmented_lagrangian(problem, tol=1e-8)
    warm = augmented_lagrangian(problem, tol=1e-8, **state)
    assert warm.converged and warm.n_iter < cold.n_iter
    np.testing.assert_allclose(warm.objective, cold.objective, rtol=1e-7)


@pytest.mark.parametrize("inner", ["newton", "fista"])
@pytest.mark.parametrize("kind", ["squared", "logistic"])
def test_stops_once_the_returned_point_is_certified(inner, kind):
    # Started at the optimum without multipliers, the iterates leave the
    # cones while the multipliers form; the feasible start is certified as
    # soon as they are good, and the solver stops there (the iterates'
    # own violation does not count).
    datafit = SquaredError() if kind == "squared" else Logistic()
    problem = build(4, kind, datafit, 1, n=60, n_gates=60, alpha=0.03)
    ref = reference(problem)
    tol = 1e-5
    res = augmented_lagrangian(problem, coef_init=ref.coef, tol=tol, inner=inner)
    assert res.converged
    gaps = [(h[0] - h[1]) / abs(h[0]) for h in res.history]
    assert gaps[-1] <= tol and all(g > tol for g in gaps[:-1])
    assert res.info["iterate_violation"] > tol
    assert res.constraint_violation <= 1e-12
    np.testing.assert_allclose(res.objective, ref.objective, rtol=1e-8)


def test_zero_weight_rows_carry_no_constraint():
    full = build(9, "squared", SquaredError(), 1, n=40, weights=True)
    w = full.sample_weight.copy()
    w[::4] = 0
    weighted = build(9, "squared", SquaredError(), 1, n=40, weights=True)
    weighted.sample_weight = w / w.sum()
    weighted.cone_signs[w == 0] = 0
    keep = w > 0
    from relu_problems import relu_program

    X = full.operator.X
    patterns = full.operator.masks[:, : full.operator.n_patterns // 2] != 0
    gates = full.interior[:, : full.operator.n_patterns // 2]
    removed = relu_program(X[keep], patterns[keep], gates, SquaredError(), full.y[keep], w[keep] / w.sum(), full.alpha)
    a = augmented_lagrangian(weighted, tol=1e-9)
    b = augmented_lagrangian(removed, tol=1e-9)
    np.testing.assert_allclose(a.objective, b.objective, rtol=1e-7)


def test_no_intercept():
    problem = build(10, "squared", SquaredError(), 1)
    problem.fit_intercept = False
    res = augmented_lagrangian(problem, tol=1e-8)
    assert not res.intercept.any()
    np.testing.assert_allclose(res.objective, reference(problem).objective, rtol=1e-6)


def test_large_alpha_gives_zero_solution():
    problem = build(11, "logistic", Logistic(), 1)
    problem.alpha = 2 * problem.alpha_max()
    res = augmented_lagrangian(problem, tol=1e-8)
    assert res.converged and not res.coef.any()


def test_any_installed_cvxpy_solver_by_name():
    problem = build(12, "squared", SquaredError(), 1, n=30, n_gates=10)
    ref = reference(problem)
    scs = cvxpy_cone_solve(problem, solver="SCS", solver_options={"eps_abs": 1e-7, "eps_rel": 1e-7})
    assert scs.solver == "cvxpy-scs"
    # a first-order conic solver: less accurate, but the certificate is valid
    # and the restored point feasible
    assert scs.dual_objective <= ref.objective * (1 + 1e-8) <= scs.objective * (1 + 2e-8)
    np.testing.assert_allclose(scs.objective, ref.objective, rtol=1e-3)
    assert scs.constraint_violation <= 1e-12
    with pytest.raises(ValueError, match="not installed"):
        cvxpy_cone_solve(problem, solver="NOT_A_SOLVER")


def test_inner_must_be_known():
    problem = build(13, "squared", SquaredError(), 1, n=20, n_gates=5)
    with pytest.raises(ValueError, match="inner"):
        augmented_lagrangian(problem, inner="lbfgs")


def test_block_inverses_survive_numerically_indefinite_blocks():
    from skconvex.solvers._lowrank import _spd_inverses

    rng = np.random.default_rng(0)
    B = rng.standard_normal((3, 3))
    good = B @ B.T + np.eye(3)
    # Positive definite in exact arithmetic, but the penalty's 1e22 scale
    # leaves Cholesky a negative pivot (the block hypothesis found).
    u = np.array([1.0, -1.0, 1.0]) / np.sqrt(3)
    bad = 1e22 * np.outer(u, u) + np.eye(3)
    inv = _spd_inverses(np.stack([good, bad]))
    np.testing.assert_allclose(inv[0], np.linalg.inv(good), rtol=1e-10)
    assert np.all(np.isfinite(inv[1]))
    np.testing.assert_allclose(inv[1], inv[1].T)
    # Positive definite (its small eigenvalues are below the block's rounding
    # level, so they are floored there, not recovered).
    assert np.linalg.eigvalsh(inv[1]).min() > 0


def test_capacitance_factor_survives_rounding_of_huge_curvature():
    # I + A with A PSD of norm 1e18: the identity drowns in A's rounding and
    # plain Cholesky meets a negative pivot (a flaky failure of the exact
    # Newton path on scikit-learn's sparse check data). The factor must
    # still exist and solve the system to the accuracy the rounding allows.
    from scipy.linalg import cho_factor, cho_solve

    from skconvex.solvers._lowrank import _cho_factor_capacitance

    rng = np.random.default_rng(0)
    V = rng.standard_normal((50, 3))
    K = np.eye(50) + 1e18 * (V @ V.T)
    with pytest.raises(np.linalg.LinAlgError):
        cho_factor(K, lower=True, check_finite=False)
    factor = _cho_factor_capacitance(K.copy())
    b = K @ rng.standard_normal(50)
    x = cho_solve(factor, b)
    assert np.all(np.isfinite(x))
    assert np.linalg.norm(K @ x - b) <= 1e-6 * np.linalg.norm(K, 2) * np.linalg.norm(x)
    # A well-conditioned capacitance matrix is factorized unchanged.
    W = rng.standard_normal((20, 20))
    K = np.eye(20) + W @ W.T
    np.testing.assert_allclose(_cho_factor_capacitance(K.copy())[0], cho_factor(K, lower=True)[0])


@pytest.mark.parametrize("case", LOSSES, ids=_ids)
def test_matrix_free_block_preconditioner_inverts_the_column_blocks(case):
    # The matrix-free Newton's block-Jacobi preconditioner is the inverse of
    # each column's d x d block: the envelope's and the active cones'
    # curvature of the exact Newton system (sub.hessian), plus the datafit's
    # diagonal, which the Woodbury solve treats through its low-rank term.
    from skconvex.solvers._al_newton import _NewtonSubproblem

    kind, datafit, C = case
    problem = build(4, kind, datafit, C).astype(np.float64)
    exact, free = _ColumnCones(problem), _ColumnCones(problem, matrix_free=True)
    assert free.matrix_free and free.row_gram is not None
    res = augmented_lagrangian(problem, tol=1e-3)
    d, B, C = problem.coef_shape
    rng = np.random.default_rng(0)
    lam = res.info["multipliers"]
    gamma = 0.1 * rng.standard_normal(problem.coef_shape)
    sigma, rho, ridge, radial = 2.0, 3.0, 1e-6, 0.5
    U = res.coef + 0.05 * rng.standard_normal(problem.coef_shape)
    # half the columns inside the envelope's ball (V = 0)
    U[:, ::2], gamma[:, ::2] = 0.0, 0.0
    subs = [_NewtonSubproblem(problem, gamma, lam, sigma, rho, f.row_gram) for f in (exact, free)]
    M = subs[0].hessian(subs[0].evaluate(U)[1], ridge, radial)[0]
    parts = subs[1].hessian_free(subs[1].evaluate(U)[1], ridge, radial)
    # some columns are outside the envelope's ball (radial term) and some
    # cone rows are active (row Gram term)
    outside, active = parts[5], parts[7]
    assert outside.any() and not outside.all() and active.any()
    # the datafit's diagonal, as hessian_free computes it for the diagonal path
    R = parts[1]
    w = np.einsum("jac,jac->jc", R, R)
    masks2 = problem.operator.masks ** 2
    loss_diag = ((problem.operator.X**2).T @ (masks2[:, :, None] * w[:, None, :]).reshape(-1, B * C)).T
    blocks = M + loss_diag[:, :, None] * np.eye(d)[None]
    r = rng.standard_normal(problem.coef_shape)
    expected = np.linalg.solve(blocks, r.transpose(1, 2, 0).reshape(B * C, d, 1))
    np.testing.assert_allclose(
        parts[-1](r), expected.reshape(B, C, d).transpose(2, 0, 1), rtol=1e-7, atol=1e-10 * np.abs(expected).max()
    )


def test_matrix_free_newton_certifies_a_multinomial_digits_program():
    # Multinomial programs take the matrix-free path early (their Woodbury
    # systems have n_samples * n_classes rows). With the Hessian's diagonal
    # as preconditioner its truncated CG directions were poor on correlated
    # pixels: this program ended uncertified after 183 Newton steps with
    # a relative gap of 7e-2 and an objective 1.5% above the optimum; the
    # block-Jacobi preconditioner certifies it in about 75 steps.
    from sklearn.datasets import load_digits
    from sklearn.preprocessing import StandardScaler

    from skconvex.arrangements import sample_arrangements
    from skconvex.programs.datafits import Multinomial

    X, y = load_digits(return_X_y=True)
    keep = np.flatnonzero(y < 4)[:80]
    rng = np.random.default_rng(0)
    X = X[keep][:, np.linspace(0, 63, 16).astype(int)] + 1e-3 * rng.standard_normal((80, 16))
    X_aug = np.c_[StandardScaler().fit_transform(X), np.ones(80)]
    arr = sample_arrangements(X_aug, 10, random_state=0)
    problem = relu_program(X_aug, arr.patterns, arr.gates, Multinomial(), np.eye(4)[y[keep]], np.full(80, 1 / 80), 1e-3)
    assert _ColumnCones(problem, matrix_free=True).row_gram is not None
    res = augmented_lagrangian(problem, inner="newton-cg", tol=1e-6, max_iter=300)
    assert res.converged and res.n_iter < 300
    ref = reference(problem)
    np.testing.assert_allclose(res.objective, ref.objective, rtol=1e-5)
    assert res.dual_objective <= ref.objective * (1 + 1e-9)
