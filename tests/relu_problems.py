"""Small exact-ReLU programs shared by the cone-solver and recovery tests."""

import numpy as np

from skconvex import sample_arrangements
from skconvex.programs.cones import ConeConstrainedProblem
from skconvex.programs.datafits import Logistic, Multinomial, SquaredError
from skconvex.programs.operators import PatternOperator
from skconvex.programs.penalties import ColumnGroupL2
from skconvex.solvers import cvxpy_cone_solve

# (name, datafit, n_outputs)
LOSSES = [
    ("squared", SquaredError(), 1),
    ("squared2", SquaredError(), 2),
    ("logistic", Logistic(), 1),
    ("multinomial", Multinomial(), 3),
]

TIGHT_CLARABEL = {"tol_gap_rel": 1e-10, "tol_gap_abs": 1e-12, "tol_feas": 1e-10}


def targets(rng, X, kind, C):
    """Targets of each kind from a planted two-neuron ReLU network."""
    n = X.shape[0]
    signal = np.maximum(X[:, 0] + 0.3, 0) - np.maximum(X[:, 1] - 0.2, 0)
    if kind.startswith("squared"):
        return np.column_stack([signal * (c + 1) for c in range(C)]) + 0.1 * rng.standard_normal((n, C))
    if kind == "logistic":
        y = np.sign(signal - np.median(signal) + 0.3 * rng.standard_normal(n))
        y[y == 0] = 1
        return y[:, None]
    labels = np.digitize(signal + 0.3 * rng.standard_normal(n), np.quantile(signal, [1 / 3, 2 / 3]))
    return np.eye(C)[labels]


def relu_program(X_aug, patterns, gates, datafit, Y, sample_weight, alpha, fit_intercept=True):
    """The exact two-layer ReLU program on the given patterns (blocks [V, W])."""
    P = patterns.shape[1]
    op = PatternOperator(
        X_aug, np.hstack([patterns, patterns]), signs=[1] * P + [-1] * P, n_outputs=Y.shape[1]
    )
    return ConeConstrainedProblem(
        op,
        datafit,
        ColumnGroupL2(),
        Y,
        sample_weight,
        alpha,
        interior=np.hstack([gates, gates]),
        fit_intercept=fit_intercept,
    )


def build(seed, kind, datafit, C, *, n=40, d=2, n_gates=30, alpha=0.02, weights=False):
    """A small random exact-ReLU program of the given loss."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    Y = targets(rng, X, kind, C)
    X_aug = np.c_[X, np.ones(n)]
    s = rng.random(n) + 0.2 if weights else np.ones(n)
    arr = sample_arrangements(X_aug, n_gates, random_state=seed)
    return relu_program(X_aug, arr.patterns, arr.gates, datafit, Y, s / s.sum(), alpha)


def reference(problem):
    """A tight Clarabel solve (the accuracy oracle)."""
    return cvxpy_cone_solve(problem, solver_options=TIGHT_CLARABEL)


def weight_check_data():
    """``X, y, sw`` as scikit-learn's ``check_sample_weight_equivalence_on_dense_data`` draws them.

    15 samples in 30 dimensions, 3 classes (separable) and integer weights in
    0-4 (the check repeats each row that many times).
    """
    rng = np.random.RandomState(42)
    X = rng.rand(15, 30)
    y = rng.randint(0, 3, size=15)
    sw = rng.randint(0, 5, size=15)
    return X, y, sw
