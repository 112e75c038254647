import os

# scikit-learn's array-API checks (and array_api_dispatch itself) need scipy's
# array-API mode, which scipy reads once, at its import: set it before
# anything below imports scipy. Subprocesses (xdist workers) inherit it.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

# Under pytest-xdist every worker is a process of its own: BLAS threads on top
# of them would oversubscribe the cores. Subprocesses (the scripts) inherit the
# environment variables.
_BLAS_LIMIT = None
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = "1"
    _BLAS_LIMIT = threadpool_limits(1)


@pytest.fixture(scope="session")
def client():
    """A dask ``Client`` on a ``LocalCluster`` of 2 single-threaded worker processes.

    One cluster per test process (each pytest-xdist worker starts its own):
    starting and closing one costs seconds. Tests that kill a worker wait for
    its nanny to bring it back before they return.
    """
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=40,
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


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
