"""Every operator and problem of :mod:`skconvex.programs` against its declared protocol.

Classes are discovered, as ``test_common.py`` discovers estimators: a new
operator or problem class fails ``test_every_class_has_a_builder`` until it
gets a tiny instance below, and then runs every check.
"""

import importlib
import inspect
import pkgutil

import numpy as np
import pytest

import skconvex.programs
from skconvex import ConvexCNNRegressor, sample_arrangements, sample_subnetworks
from skconvex.programs import Datafit, Operator, Penalty, Problem, supports_restrict
from skconvex.programs.attention import (
    attention_operator,
    sample_token_gates,
    tokens_from_features,
)
from skconvex.programs.cones import ConeConstrainedProblem
from skconvex.programs.datafits import Logistic, SquaredError
from skconvex.programs.deep import path_program, three_layer_program
from skconvex.programs.operators import PatternOperator
from skconvex.programs.patches import PatchOperator, extract_patches, image_geometry
from skconvex.programs.penalties import ColumnGroupL2, GroupL2
from skconvex.programs.problem import ConvexProblem
from skconvex.programs.ramps import RampOperator
from skconvex.programs.row_blocks import RowBlockOperator, packed_patterns
from skconvex.solvers import cvxpy_cone_solve, cvxpy_solve
from skconvex.solvers.nested import cvxpy_nested_solve

TIGHT = {"tol_gap_rel": 1e-10, "tol_gap_abs": 1e-12, "tol_feas": 1e-10}


def _program_classes():
    operators, problems = {}, {}
    for info in pkgutil.walk_packages(skconvex.programs.__path__, prefix="skconvex.programs."):
        module = importlib.import_module(info.name)
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != info.name:
                continue
            if issubclass(cls, ConvexProblem):
                problems[name] = cls
            elif callable(getattr(cls, "forward", None)) and callable(getattr(cls, "adjoint", None)):
                operators[name] = cls
    for protocol in ("Operator", "Problem", "Datafit", "Penalty"):
        operators.pop(protocol, None)
        problems.pop(protocol, None)
    return operators, problems


OPERATORS, PROBLEMS = _program_classes()


def _data(n=12, d=2, seed=0):
    rng = np.random.default_rng(seed)
    X = np.c_[rng.standard_normal((n, d)), np.ones(n)]
    y = np.sin(2 * X[:, 0]) - X[:, 1] + 0.1 * rng.standard_normal(n)
    return X, y[:, None], np.full(n, 1.0 / n)


# ------------------------------------------------------------------ builders
# Each returns a tiny instance; problems also return their CVXPY reference.


def _pattern_operator():
    X, _, _ = _data()
    arr = sample_arrangements(X, 6, random_state=0)
    P = arr.patterns.shape[1]
    return PatternOperator(X, np.hstack([arr.patterns] * 2), signs=[1] * P + [-1] * P, n_outputs=2)


def _row_block_operator():
    X, _, _ = _data()
    arr = sample_arrangements(X, 6, random_state=0)
    return RowBlockOperator(X, packed_patterns(X, arr.gates, 8), block_size=8, n_outputs=2)


def _patch_operator():
    rng = np.random.default_rng(1)
    images = rng.standard_normal((6, 16))
    geometry = image_geometry(16, (4, 4), 1, 2, 1, 0, None)
    patches = extract_patches(images, geometry, fit_intercept=True)
    n, K, h = patches.shape
    arr = sample_arrangements(patches, 4, kind="patch", random_state=0)
    masks = (patches.reshape(n * K, h) @ arr.gates >= 0)
    return PatchOperator(patches, masks, pool_weights=np.full(K, 1.0 / K), n_outputs=2)


def _ramp_operator():
    X, _, s = _data(n=10, d=2)
    return RampOperator(X[:, :2], s)


def _token_operator():
    rng = np.random.default_rng(2)
    tokens = tokens_from_features(rng.standard_normal((8, 6)), 3)
    head, activation = "mlp_mixer", "gated_relu"
    gates = sample_token_gates(head, 3, tokens.shape[1], tokens.shape[2], random_state=0)
    return attention_operator(tokens, head, activation, gates=gates, n_outputs=2)


def _namespace_pattern_operator():
    # The array-API operator on array-api-compat's numpy namespace: numpy
    # arrays in and out, so the protocol tests apply unchanged (the torch and
    # array-api-strict namespaces are tested in tests/test_array_api.py).
    from sklearn.externals.array_api_compat import numpy as xp_numpy

    return _pattern_operator().to_namespace(xp_numpy, "cpu")


OPERATOR_BUILDERS = {
    "PatternOperator": _pattern_operator,
    "NamespacePatternOperator": _namespace_pattern_operator,
    "PatchOperator": _patch_operator,
    "RampOperator": _ramp_operator,
    "RowBlockOperator": _row_block_operator,
    "TokenFeatureOperator": _token_operator,
}


def _relu_pieces(n_gates=6):
    X, Y, s = _data()
    arr = sample_arrangements(X, n_gates, random_state=0)
    P = arr.patterns.shape[1]
    op = PatternOperator(X, np.hstack([arr.patterns] * 2), signs=[1] * P + [-1] * P)
    return X, Y, s, arr, op


def _convex_problem():
    X, Y, s, arr, _ = _relu_pieces()
    op = PatternOperator(X, arr.patterns)
    return ConvexProblem(op, SquaredError(), GroupL2(), Y, s, 0.02), cvxpy_solve


def _namespace_problem():
    from sklearn.externals.array_api_compat import numpy as xp_numpy

    problem, _ = _convex_problem()

    def reference(namespace_problem, **kwargs):
        return cvxpy_solve(namespace_problem.to_host(), **kwargs)

    return problem.to_namespace(xp_numpy, "cpu"), reference


def _cone_problem():
    X, Y, s, arr, op = _relu_pieces()
    problem = ConeConstrainedProblem(
        op, SquaredError(), ColumnGroupL2(), Y, s, 0.02, interior=np.hstack([arr.gates] * 2)
    )
    return problem, cvxpy_cone_solve


def _nested_problem():
    X, Y, s = _data(n=10)
    arr = sample_subnetworks(X, 8, n_first=3, random_state=0)
    problem, _ = three_layer_program(
        X, arr, Y, SquaredError(), s, 0.05, gated=False, fit_intercept=True, dtype=np.float64
    )
    return problem, cvxpy_nested_solve


def _path_nested_problem():
    X, Y, s = _data(n=10)
    arr = sample_subnetworks(X, 6, n_first=3, depth=3, width=2, random_state=1)
    y = np.where(Y > np.median(Y), 1.0, -1.0)
    problem, _ = path_program(X, arr, y, Logistic(), s, 0.05, gated=False, fit_intercept=True, dtype=np.float64)
    return problem, cvxpy_nested_solve


class _Captured(Exception):
    pass


def _subnetwork_problem():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((8, 9))
    y = X[:, 4] - X[:, 0] + 0.1 * rng.standard_normal(8)
    est = ConvexCNNRegressor(
        image_shape=(3, 3), kernel_size=2, n_layers=3, n_arrangements=2, n_subnetworks=2, random_state=0
    )

    def capture(problem, *args, **kwargs):
        raise _Captured(problem)

    # The estimator assembles the program from its patches; stop it before the solve.
    est._solve = capture
    with pytest.raises(_Captured) as info:
        est.fit(X, y)
    return info.value.args[0], cvxpy_cone_solve


PROBLEM_BUILDERS = {
    "ConvexProblem": [_convex_problem],
    "NamespaceProblem": [_namespace_problem],
    "ConeConstrainedProblem": [_cone_problem],
    "NestedConeProblem": [_nested_problem, _path_nested_problem],
    "SubnetworkConeProblem": [_subnetwork_problem],
}
PROBLEM_CASES = [(name, b) for name, builders in PROBLEM_BUILDERS.items() for b in builders]


def test_every_class_has_a_builder():
    assert set(OPERATORS) == set(OPERATOR_BUILDERS), "give new operators a tiny instance here"
    assert set(PROBLEMS) == set(PROBLEM_BUILDERS), "give new problems a tiny instance here"


def test_pieces_satisfy_their_protocols():
    for build in OPERATOR_BUILDERS.values():
        assert isinstance(build(), Operator)
    problem, _ = _cone_problem()
    assert isinstance(problem, Problem)
    assert isinstance(problem.datafit, Datafit) and isinstance(problem.penalty, Penalty)


# ------------------------------------------------------------------ operators


@pytest.mark.parametrize("name", sorted(OPERATOR_BUILDERS))
def test_operator_adjoint_identity(name):
    op = OPERATOR_BUILDERS[name]()
    assert type(op).__name__ == name
    rng = np.random.default_rng(0)
    W = rng.standard_normal(op.coef_shape)
    pred = op.forward(W)
    R = rng.standard_normal(pred.shape)
    lhs = float(np.vdot(pred, R))
    rhs = float(np.vdot(W, op.adjoint(R)))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(OPERATOR_BUILDERS))
def test_operator_astype(name):
    op = OPERATOR_BUILDERS[name]()
    W = np.random.default_rng(1).standard_normal(op.coef_shape)
    op32 = op.astype(np.float32)
    expected = np.float32 if getattr(op, "supports_float32", True) else np.float64
    assert op32.dtype == expected
    out32 = op32.forward(W.astype(np.float32))
    assert out32.dtype == expected
    np.testing.assert_allclose(out32, op.forward(W), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", sorted(OPERATOR_BUILDERS))
def test_operator_restrict(name):
    op = OPERATOR_BUILDERS[name]()
    if not supports_restrict(op):
        assert not callable(getattr(op, "restrict", None))
        return
    rng = np.random.default_rng(2)
    d, B, C = op.coef_shape
    blocks = np.array([0, B - 1])
    sub = op.restrict(blocks)
    assert sub.coef_shape[1] == len(blocks)
    W = np.zeros(op.coef_shape)
    W[:, blocks] = rng.standard_normal((d, len(blocks), C))
    np.testing.assert_allclose(sub.forward(W[:, blocks]), op.forward(W), rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ problems


def _feasible_point(problem, rng):
    W = 0.3 * rng.standard_normal(problem.coef_shape)
    if hasattr(problem, "restore"):
        W, _ = problem.restore(W)
        assert problem.violation(problem.operator.product(W)) <= 1e-10
    return W


@pytest.mark.parametrize("name, build", PROBLEM_CASES, ids=[f"{n}-{b.__name__}" for n, b in PROBLEM_CASES])
def test_problem_gaps_bound_the_error(name, build):
    problem, reference = build()
    assert type(problem).__name__ == name
    optimum = reference(problem, solver_options=TIGHT).objective
    rng = np.random.default_rng(0)
    scale = max(abs(optimum), 1.0)
    for W in (problem.zeros(), _feasible_point(problem, rng)):
        cert, _, _ = problem.evaluate(W)
        gap = cert.primal - cert.dual
        assert gap >= -1e-9 * scale
        # dual <= optimum <= primal: the gap bounds the suboptimality of W.
        assert cert.dual <= optimum + 1e-6 * scale
        assert cert.primal >= optimum - 1e-6 * scale
        assert cert.primal - optimum <= gap + 1e-6 * scale


@pytest.mark.parametrize("name, build", PROBLEM_CASES, ids=[f"{n}-{b.__name__}" for n, b in PROBLEM_CASES])
def test_problem_astype(name, build):
    problem, _ = build()
    W = _feasible_point(problem, np.random.default_rng(1))
    p32 = problem.astype(np.float32)
    assert p32.dtype == np.float32 and type(p32) is type(problem)
    np.testing.assert_allclose(p32.objective(W.astype(np.float32))[0], problem.objective(W)[0], rtol=1e-4)


@pytest.mark.parametrize("name, build", PROBLEM_CASES, ids=[f"{n}-{b.__name__}" for n, b in PROBLEM_CASES])
def test_problem_restrict_where_supported(name, build):
    problem, _ = build()
    B = problem.coef_shape[1]
    blocks = np.array([0, B - 1])
    if not problem.supports_restrict:
        with pytest.raises(TypeError, match="supports_restrict"):
            problem.restrict(blocks)
        return
    sub = problem.restrict(blocks)
    W = np.zeros(problem.coef_shape)
    W[:, blocks] = _feasible_point(problem, np.random.default_rng(2))[:, blocks]
    np.testing.assert_allclose(sub.objective(W[:, blocks])[0], problem.objective(W)[0], rtol=1e-12)
