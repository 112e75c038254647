"""Parallel work runs unchanged on a dask cluster through joblib.

The cluster is a ``distributed.LocalCluster`` of worker *processes* on the
loopback interface; results must equal the local run and the task stream must
show that the work ran on the workers. On a real cluster the same code runs
with ``Client("scheduler-address:8786")`` (skconvex installed on every
worker), see the user guide.
"""

import numpy as np
import pytest
from joblib import parallel_config
from sklearn.datasets import load_iris
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import StandardScaler

from skconvex import ConvexGatedReLUClassifier, ConvexGatedReLUClassifierCV, sample_arrangements

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _on_workers(client, run):
    workers = set(client.scheduler_info()["workers"])
    with distributed.get_task_stream(client) as stream:
        result = run()
    used = {task["worker"] for task in stream.data}
    assert used and used <= workers, (used, workers)
    return result


def test_sampling_on_dask_equals_local(client, iris):
    X, _ = iris
    local = sample_arrangements(X, 600, batch_size=100, random_state=0)
    with parallel_config(backend="dask"):
        remote = _on_workers(
            client, lambda: sample_arrangements(X, 600, batch_size=100, n_jobs=2, random_state=0)
        )
    np.testing.assert_array_equal(local.gates, remote.gates)
    np.testing.assert_array_equal(local.patterns, remote.patterns)


def test_grid_search_on_dask_equals_local(client, iris):
    X, y = iris
    grid = {"alpha": [1e-2, 1e-1]}
    local = GridSearchCV(ConvexGatedReLUClassifier(random_state=0), grid, cv=3).fit(X, y)
    with parallel_config(backend="dask"):
        remote = _on_workers(
            client,
            lambda: GridSearchCV(ConvexGatedReLUClassifier(random_state=0), grid, cv=3, n_jobs=2).fit(X, y),
        )
    np.testing.assert_allclose(
        local.cv_results_["mean_test_score"], remote.cv_results_["mean_test_score"]
    )
    assert local.best_params_ == remote.best_params_


def test_cv_estimator_on_dask_equals_local(client, iris):
    X, y = iris
    local = ConvexGatedReLUClassifierCV(n_alphas=3, random_state=0).fit(X, y)
    with parallel_config(backend="dask"):
        remote = _on_workers(
            client, lambda: ConvexGatedReLUClassifierCV(n_alphas=3, n_jobs=2, random_state=0).fit(X, y)
        )
    np.testing.assert_allclose(local.scores_, remote.scores_)
    assert local.alpha_ == remote.alpha_
