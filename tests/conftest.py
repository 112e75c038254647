import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def make_problem_data(rng, n=60, d=4, n_outputs=1, kind="squared"):
    """Small standardized data with a ones column and targets of each kind."""
    X = np.c_[rng.standard_normal((n, d)), np.ones(n)]
    if kind == "squared":
        y = rng.standard_normal((n, n_outputs))
    elif kind == "logistic":
        y = np.sign(X[:, :1] + 0.5 * rng.standard_normal((n, 1)))
        y[y == 0] = 1
    else:
        y = np.eye(n_outputs)[rng.integers(0, n_outputs, n)]
    return X, y
