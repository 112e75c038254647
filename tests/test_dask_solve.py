"""The gated regressor solved on a dask cluster (issue 23): rows stay on the workers.

A ``LocalCluster`` of two single-threaded worker processes is started here.
A fit on dask arrays must certify the in-memory optimum (same gates,
objectives within the two certified gaps); the traffic of the solve must be
the weights and per-block sums, independent of the number of rows; a worker
killed mid-fit must give either a correct certified fit or a clear error.
"""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from skconvex import ConvexGatedReLURegressor

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

from skconvex.distributed import DaskSolveError, dask_gated_regression, is_dask_array
from skconvex.programs.penalties import GroupL2

# Each FISTA iteration on the cluster is a round trip (tens of ms on a busy
# machine): a small program and a moderate tol keep each fit to ~100 rounds.
# The assertions compare objectives within the certified gaps, so a looser
# tol loosens nothing that they claim.
KW = {"alpha": 5e-2, "n_arrangements": 10, "random_state": 0, "tol": 3e-3}
# classifiers: 3 to 6 times fewer rounds than alpha=1e-2, tol=2e-3
CLF_KW = {"alpha": 5e-2, "n_arrangements": 10, "random_state": 0, "tol": 5e-3}
# The traffic tests count bytes per round, whatever the accuracy reached.
WIRE_KW = {**KW, "tol": 2e-2}
# The workers' functions of a round (one task per block each).
ROUND_TASKS = (
    "_block_sums", "_block_fista_step", "_block_class_step", "_block_values", "_block_curvature", "_block_intercept_step",
    "_block_datafit_gradient", "_block_dual", "_block_gradient_curvature", "_block_hessian_product",
)


def _round_tasks(stream):
    return [t for t in stream.data if any(f in str(t["key"]) for f in ROUND_TASKS)]


def _data(n=600, d=4, seed=0, n_outputs=None):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.sin(X[:, 0]) + X[:, 1] * X[:, 2] + 0.1 * rng.standard_normal(n)
    if n_outputs:
        y = np.column_stack([y * (k + 1) + k for k in range(n_outputs)])
    return X, y


@pytest.fixture(scope="module")
def reference(client):
    """The in-memory fit of ``_data()`` and its dask fit (3 chunks of 200 rows), fitted once per module."""
    X, y = _data()
    mem = ConvexGatedReLURegressor(**KW).fit(X, y)
    dk = ConvexGatedReLURegressor(n_jobs=1, **KW).fit(
        da.from_array(X, chunks=(200, 4)), da.from_array(y, chunks=200)
    )
    return X, y, mem, dk


def _assert_same_fit(mem, dk):
    np.testing.assert_array_equal(mem.gates_, dk.gates_)
    slack = mem.dual_gap_ + dk.dual_gap_ + 1e-9 * abs(mem.objective_)
    assert abs(mem.objective_ - dk.objective_) <= slack, (mem.objective_, dk.objective_, slack)
    assert dk.dual_gap_ <= dk.tol * dk.objective_ * (1 + 1e-9)


@pytest.mark.parametrize("n_outputs", [None, 2])
def test_dask_fit_equals_in_memory_fit(client, reference, n_outputs):
    if n_outputs is None:
        X, y, mem, dk = reference
    else:
        X, y = _data(n_outputs=n_outputs)
        mem = ConvexGatedReLURegressor(**KW).fit(X, y)
        chunks = (200, X.shape[1])
        dk = ConvexGatedReLURegressor(**KW).fit(
            da.from_array(X, chunks=chunks), da.from_array(y, chunks=(200,) + y.shape[1:])
        )
    _assert_same_fit(mem, dk)
    assert dk.predict(X).shape == mem.predict(X).shape
    assert dk.n_features_in_ == X.shape[1]
    assert dk.dask_info_["n_blocks"] == 3


def test_float32_dask_fit_has_float64_certificate(client):
    X, y = _data()
    X32 = X.astype(np.float32)
    mem = ConvexGatedReLURegressor(**KW).fit(X32, y)
    dk = ConvexGatedReLURegressor(**KW).fit(da.from_array(X32, chunks=(300, 4)), y)
    _assert_same_fit(mem, dk)


def test_weights_cross_the_wire_not_rows(client):
    # The same program shape on 4x the rows (same number of chunks): the
    # bytes per round do not change, and they are O(d P) per block.
    per_round = []
    for n in (400, 1600):
        X, y = _data(n=n)
        est = ConvexGatedReLURegressor(**WIRE_KW)
        with distributed.get_task_stream(client) as stream:
            est.fit(da.from_array(X, chunks=(n // 2, 4)), da.from_array(y, chunks=n // 2))
        info = est.dask_info_
        d, P = est.pattern_weights_.shape[1], est.pattern_weights_.shape[0]
        per_round.append((info["bytes_out"] + info["bytes_in"]) / info["rounds"])
        # out: W (d x P x 1 float64) per block; in: its adjoint plus three scalars per block.
        assert per_round[-1] <= 2 * info["n_blocks"] * (8 * d * P + 64)
        # every round's task ran where its block was: no block was moved
        sums = _round_tasks(stream)
        assert len(sums) == info["n_blocks"] * info["rounds"]
        moved = [s for t in sums for s in t["startstops"] if s["action"] == "transfer"]
        assert not moved
    assert per_round[0] == pytest.approx(per_round[1], rel=0.05)
    # a round moves a fraction of what one block of rows would
    assert per_round[1] < 800 * 4 * 8 / 4


def test_reproducible_and_n_jobs_invariant(client, reference):
    X, y, _, one = reference  # fitted with n_jobs=1
    Xd, yd = da.from_array(X, chunks=(200, 4)), da.from_array(y, chunks=200)
    two = ConvexGatedReLURegressor(n_jobs=2, **KW).fit(Xd, yd)
    np.testing.assert_array_equal(one.gates_, two.gates_)
    np.testing.assert_array_equal(one.pattern_weights_, two.pattern_weights_)
    other = ConvexGatedReLURegressor(**{**KW, "random_state": 1}).fit(Xd, yd)
    assert not np.array_equal(other.gates_, one.gates_)


def test_worker_killed_mid_fit_recovers_or_raises(client, reference):
    X, y, mem, _ = reference
    Xd, yd = da.from_array(X, chunks=(200, 4)), da.from_array(y, chunks=200)
    nanny = client.cluster.workers[min(client.cluster.workers)]
    killed = []

    def kill(iteration):
        # SIGKILL to the worker process this test's cluster started; its
        # nanny restarts it empty, with another address.
        if iteration == 5 and not killed:
            killed.append(nanny.process.process.pid)
            os.kill(nanny.process.process.pid, signal.SIGKILL)

    try:
        result = dask_gated_regression(
            Xd, yd, alpha=KW["alpha"], penalty=GroupL2(), n_arrangements=KW["n_arrangements"],
            random_state=0, tol=KW["tol"], client=client, callback=kill,
        )
    except DaskSolveError as exc:
        assert killed and "dask cluster" in str(exc)
    else:
        assert killed
        assert result.converged
        np.testing.assert_array_equal(result.info["gates"], mem.gates_)
        assert abs(result.objective - mem.objective_) <= result.gap + mem.dual_gap_ + 1e-9
    client.wait_for_workers(2, timeout=60)


def test_bad_input_on_dask(client):
    X, y = _data()
    Xn = X.copy()
    Xn[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ConvexGatedReLURegressor(**KW).fit(da.from_array(Xn, chunks=(200, 4)), y)
    with pytest.raises(ValueError, match="rows"):
        ConvexGatedReLURegressor(**KW).fit(da.from_array(X, chunks=(200, 4)), y[:-1])


def test_in_memory_fit_does_not_import_dask():
    # Telling a dask array apart must not import dask.array: that import cost
    # the first fit of every process about half a second (issue 19's demo).
    code = (
        "import sys, numpy as np\n"
        "from skconvex import ConvexGatedReLURegressor\n"
        "from skconvex.distributed import is_dask_array\n"
        "X = np.random.default_rng(0).standard_normal((30, 3))\n"
        "ConvexGatedReLURegressor(n_arrangements=5).fit(X, X[:, 0])\n"
        "assert not is_dask_array(X)\n"
        "print('dask.array' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stdout + out.stderr
    assert is_dask_array(da.ones(3)) and not is_dask_array(np.ones(3))


# ----------------------------------------------------- sample weights (issue 23 follow-up)
@pytest.mark.parametrize("as_dask", [True, False])
@pytest.mark.parametrize("n_outputs", [None, 2])
def test_weighted_dask_fit_equals_in_memory_fit(client, as_dask, n_outputs):
    X, y = _data(n_outputs=n_outputs)
    sw = np.random.default_rng(1).uniform(0.2, 3.0, X.shape[0])
    sw[::7] = 0.0  # zero weights: the gates are deduplicated on the support, as in memory
    mem = ConvexGatedReLURegressor(**KW).fit(X, y, sample_weight=sw)
    dk = ConvexGatedReLURegressor(**KW).fit(
        da.from_array(X, chunks=(200, 4)),
        da.from_array(y, chunks=(200,) + y.shape[1:]),
        sample_weight=da.from_array(sw, chunks=150) if as_dask else sw,  # rechunked like X
    )
    assert hasattr(dk, "dask_info_")
    _assert_same_fit(mem, dk)
    # the weights matter: the unweighted optimum is another one
    plain = ConvexGatedReLURegressor(**KW).fit(X, y)
    assert abs(plain.objective_ - mem.objective_) > mem.dual_gap_ + plain.dual_gap_


def test_weighted_fit_ships_weights_not_rows(client):
    per_round = []
    for n in (400, 1600):
        X, y = _data(n=n)
        sw = np.random.default_rng(n).uniform(0.5, 2.0, n)
        est = ConvexGatedReLURegressor(**WIRE_KW)
        with distributed.get_task_stream(client) as stream:
            est.fit(
                da.from_array(X, chunks=(n // 2, 4)), da.from_array(y, chunks=n // 2),
                sample_weight=da.from_array(sw, chunks=n // 2),
            )
        info = est.dask_info_
        d, P = est.pattern_weights_.shape[1], est.pattern_weights_.shape[0]
        per_round.append((info["bytes_out"] + info["bytes_in"]) / info["rounds"])
        assert per_round[-1] <= 2 * info["n_blocks"] * (8 * d * P + 64)
        sums = _round_tasks(stream)
        assert len(sums) == info["n_blocks"] * info["rounds"]
        assert not [s for t in sums for s in t["startstops"] if s["action"] == "transfer"]
    assert per_round[0] == pytest.approx(per_round[1], rel=0.05)


def test_bad_sample_weight_on_dask(client):
    X, y = _data()
    Xd = da.from_array(X, chunks=(200, 4))
    est = ConvexGatedReLURegressor(**KW)
    with pytest.raises(ValueError, match="sample_weight"):
        est.fit(Xd, y, sample_weight=np.ones(X.shape[0] - 1))
    with pytest.raises(ValueError, match="sample_weight.*non-negative"):
        est.fit(Xd, y, sample_weight=-np.ones(X.shape[0]))
    with pytest.raises(ValueError, match="sample_weight.*positive sum"):
        est.fit(Xd, y, sample_weight=np.zeros(X.shape[0]))
    bad = np.ones(X.shape[0])
    bad[5] = np.nan
    with pytest.raises(ValueError, match="sample_weight.*NaN"):
        est.fit(Xd, y, sample_weight=da.from_array(bad, chunks=200))


# ------------------------------------------------------------- classifiers (issue 23 follow-up)
def _class_data(n=600, d=4, n_classes=2, seed=0):
    X, y = _data(n=n, d=d, seed=seed)
    edges = np.quantile(y, np.linspace(0, 1, n_classes + 1)[1:-1])
    labels = np.array(["ant", "bee", "cat", "dog"])[: n_classes]
    return X, labels[np.searchsorted(edges, y)]


@pytest.mark.parametrize("n_classes, weighted", [(2, False), (3, True)])
def test_dask_classifier_equals_in_memory_fit(client, n_classes, weighted):
    from skconvex import ConvexGatedReLUClassifier

    X, y = _class_data(n_classes=n_classes)
    sw = np.random.default_rng(2).uniform(0.2, 3.0, X.shape[0]) if weighted else None
    kw = CLF_KW
    mem = ConvexGatedReLUClassifier(**kw).fit(X, y, sample_weight=sw)
    dk = ConvexGatedReLUClassifier(**kw).fit(
        da.from_array(X, chunks=(200, 4)), da.from_array(y, chunks=200),
        sample_weight=None if sw is None else da.from_array(sw, chunks=200),
    )
    assert hasattr(dk, "dask_info_")
    np.testing.assert_array_equal(dk.classes_, mem.classes_)
    _assert_same_fit(mem, dk)
    assert np.shape(dk.intercept_) == np.shape(mem.intercept_)
    assert dk.decision_function(X).shape == mem.decision_function(X).shape
    assert np.mean(dk.predict(X) == mem.predict(X)) > 0.95
    np.testing.assert_allclose(dk.predict_proba(X).sum(axis=1), 1.0)


def test_dask_classifier_ships_weights_not_rows(client):
    from skconvex import ConvexGatedReLUClassifier

    per_round = []
    for n in (200, 800):
        X, y = _class_data(n=n, n_classes=3)
        est = ConvexGatedReLUClassifier(**{**CLF_KW, "tol": WIRE_KW["tol"]})
        with distributed.get_task_stream(client) as stream:
            est.fit(da.from_array(X, chunks=(n // 2, 4)), da.from_array(y, chunks=n // 2))
        info = est.dask_info_
        P, d, C = est.pattern_weights_.shape
        per_round.append((info["bytes_out"] + info["bytes_in"]) / info["rounds"])
        # a round moves at most the weights out and an adjoint back per block (plus C^2 Hessian entries)
        assert per_round[-1] <= 2 * info["n_blocks"] * (8 * d * P * C + 8 * C * C + 64)
        rounds = [t for t in stream.data if "_block_" in str(t["key"])]
        assert not [s for t in rounds for s in t["startstops"] if s["action"] == "transfer"]
    # the bytes of a round do not grow with the rows
    assert per_round[1] <= 1.5 * per_round[0]
    assert per_round[1] < 800 * 4 * 8 / 2


def test_dask_classifier_bad_labels(client):
    from skconvex import ConvexGatedReLUClassifier

    X, y = _data()
    Xd = da.from_array(X, chunks=(200, 4))
    with pytest.raises(ValueError, match="continuous|Unknown label"):
        ConvexGatedReLUClassifier(**KW).fit(Xd, y)
    with pytest.raises(ValueError, match="2 classes"):
        ConvexGatedReLUClassifier(**KW).fit(Xd, np.zeros(X.shape[0], dtype=int))


# ------------------------------------------------------- warm start, adaptive (issue 23 audit)
def test_warm_start_on_dask_reuses_gates_and_solution(client, reference):
    X, y, _, cold = reference  # the same fit without warm_start
    Xd, yd = da.from_array(X, chunks=(200, 4)), da.from_array(y, chunks=200)
    kw = KW
    est = ConvexGatedReLURegressor(warm_start=True, **kw).fit(Xd, yd)
    gates = est.gates_.copy()
    cold_rounds = est.dask_info_["rounds"]
    # Refit at the same alpha: the previous solution is already certified.
    est.fit(Xd, yd)
    np.testing.assert_array_equal(est.gates_, gates)
    assert est.n_iter_ == 0
    assert est.dask_info_["rounds"] < cold_rounds
    # Another alpha: same gates, and the in-memory optimum on them.
    est.set_params(alpha=3e-2).fit(Xd, yd)
    np.testing.assert_array_equal(est.gates_, gates)
    mem = ConvexGatedReLURegressor(**{**kw, "alpha": 3e-2}).fit(X, y)
    np.testing.assert_array_equal(mem.gates_, gates)  # same seed: the same gates
    _assert_same_fit(mem, est)
    # Without warm_start the solve starts from zero: the first warm_start fit
    # had no previous solution, so it is the cold fit, round for round.
    np.testing.assert_array_equal(cold.gates_, gates)
    assert cold.dask_info_["rounds"] == cold_rounds


def test_warm_start_classifier_on_dask(client):
    from skconvex import ConvexGatedReLUClassifier

    X, y = _class_data(n=400, n_classes=3)
    Xd, yd = da.from_array(X, chunks=(200, 4)), da.from_array(y, chunks=200)
    kw = {"n_arrangements": 10, "random_state": 0, "tol": 1e-2}
    est = ConvexGatedReLUClassifier(alpha=1e-1, warm_start=True, **kw).fit(Xd, yd)
    gates = est.gates_.copy()
    est.set_params(alpha=5e-2).fit(Xd, yd)
    np.testing.assert_array_equal(est.gates_, gates)
    mem = ConvexGatedReLUClassifier(alpha=5e-2, **kw).fit(X, y)
    _assert_same_fit(mem, est)
    # Two classes now: the gates are reused, the 3-output solution is not a start.
    y2 = np.where(y == "cat", "bee", y)
    est.fit(Xd, da.from_array(y2, chunks=200))
    np.testing.assert_array_equal(est.gates_, gates)
    mem2 = ConvexGatedReLUClassifier(alpha=5e-2, **kw).fit(X, y2)
    _assert_same_fit(mem2, est)


def test_adaptive_arrangement_on_dask_raises(client):
    from skconvex import ConvexGatedReLUClassifier

    X, y = _class_data()
    Xd = da.from_array(X, chunks=(200, 4))
    for Est, target in ((ConvexGatedReLURegressor, _data()[1]), (ConvexGatedReLUClassifier, y)):
        with pytest.raises(ValueError, match="arrangement='adaptive'.*dask"):
            Est(arrangement="adaptive", n_arrangements=10).fit(Xd, target)


def test_classifier_worker_killed_mid_fit_recovers_or_raises(client):
    from skconvex import ConvexGatedReLUClassifier
    from skconvex.distributed import dask_gated_classification

    X, y = _class_data(n=400, n_classes=3)
    kw = {"alpha": 5e-2, "n_arrangements": 10, "random_state": 0, "tol": 1e-2}
    mem = ConvexGatedReLUClassifier(**kw).fit(X, y)
    Xd, yd = da.from_array(X, chunks=(200, 4)), da.from_array(y, chunks=200)
    client.wait_for_workers(2, timeout=60)
    nanny = client.cluster.workers[max(client.cluster.workers)]
    killed = []

    def kill(iteration):
        if iteration == 3 and not killed:
            killed.append(nanny.process.process.pid)
            os.kill(nanny.process.process.pid, signal.SIGKILL)

    try:
        result = dask_gated_classification(
            Xd, yd, penalty=mem._penalty(), client=client, callback=kill, **kw,
        )
    except DaskSolveError as exc:
        assert killed and "dask cluster" in str(exc)
    else:
        assert killed
        assert result.converged
        np.testing.assert_array_equal(result.info["gates"], mem.gates_)
        assert abs(result.objective - mem.objective_) <= result.gap + mem.dual_gap_ + 1e-9
    client.wait_for_workers(2, timeout=60)


def test_int_block_size_sets_the_workers_row_blocks(client, reference):
    # Chunks of 200 rows in blocks of 48: the blocked products on the workers
    # certify the in-memory optimum.
    X, y, mem, _ = reference
    dk = ConvexGatedReLURegressor(block_size=48, **KW).fit(
        da.from_array(X, chunks=(200, 4)), da.from_array(y, chunks=200)
    )
    _assert_same_fit(mem, dk)


@pytest.mark.parametrize("kind", ["regressor", "classifier"])
def test_newton_end_game_on_the_cluster_reaches_a_tight_tol(client, kind):
    # FISTA alone needs well over a thousand rounds for a relative gap of
    # 1e-9 on these programs (one round trip each); Newton's method on the
    # support, whose products are rounds of per-block sums, ends them in a
    # few dozen. The classifier's curvature and intercept come from the
    # point (Newton rounds on the intercept). No block moves.
    from skconvex import ConvexGatedReLUClassifier
    from skconvex.distributed import dask_gated_classification

    tol = 1e-9
    if kind == "regressor":
        X, y = _data()
        mem = ConvexGatedReLURegressor(**{**KW, "tol": tol}).fit(X, y)
        solve, extra = dask_gated_regression, {}
    else:
        X, y = _class_data()
        mem = ConvexGatedReLUClassifier(**{**CLF_KW, "tol": tol}).fit(X, y)
        solve, extra = dask_gated_classification, {"loss": "log_loss"}
    Xd, yd = da.from_array(X, chunks=(200, 4)), da.from_array(y, chunks=200)
    with distributed.get_task_stream(client) as stream:
        result = solve(
            Xd, yd, alpha=mem.alpha, penalty=GroupL2(), n_arrangements=mem.n_arrangements,
            random_state=0, tol=tol, max_iter=300, client=client, **extra,
        )
    info = result.info
    assert result.converged and info["newton_steps"] > 0
    assert 0 <= result.objective - result.dual_objective <= tol * result.objective
    # Same gates and row weights summing to one: the estimator's program.
    slack = mem.dual_gap_ + (result.objective - result.dual_objective) + 1e-12
    assert abs(mem.objective_ - result.objective) <= slack
    d, P = info["gates"].shape
    assert (info["bytes_out"] + info["bytes_in"]) / info["rounds"] <= 2 * info["n_blocks"] * (8 * d * P + 64)
    # Every round's task ran where its block was.
    rounds = _round_tasks(stream)
    assert len(rounds) >= info["n_blocks"] * info["rounds"]
    assert not [s for t in rounds for s in t["startstops"] if s["action"] == "transfer"]


class _MemoryRounds:
    """The FISTA rounds of a ``ConvexProblem`` computed in memory (predictions kept by token, as on the blocks)."""

    def __init__(self, problem):
        self.problem, self.states, self.tokens = problem, {}, iter(range(1, 10**9))

    def start(self, V, ws):
        return None

    def step(self, base, x, y, x_new, beta, blocks):
        sub = self.problem.restrict(blocks)
        z_new = sub.operator.forward(x_new)
        z_x, z_y = (z_new, z_new) if base is None else self.states[base]
        z_next = z_new + beta * (z_new - z_x)
        token = next(self.tokens)
        self.states[token] = (z_new, z_next)
        f_new = sub.smooth_value(z_new)[0]
        f_y, _, grad_y = sub.smooth(z_y)
        _, b, grad = sub.smooth(z_next)
        G = sub.operator.adjoint(grad)
        self.pending = (sub.dual_value(grad, G), b, G)
        remainder = f_new - f_y - np.vdot(grad_y, z_new - z_y)
        return f_new + sub.alpha * sub.penalty.value(x_new), remainder, token

    def gradient(self):
        return self.pending


def test_cluster_fista_rejects_a_polish_that_does_not_improve():
    # _fista_working_sets keeps the polished point only if its objective is
    # lower, and stops polishing after the first failure; the certificate
    # still comes from full evaluations. In memory: the evaluations of a
    # ConvexProblem stand in for the rounds.
    from skconvex.distributed import _backtracking_inner, _fista_working_sets
    from skconvex.programs.datafits import SquaredError
    from skconvex.programs.operators import PatternOperator
    from skconvex.programs.problem import ConvexProblem
    from skconvex.solvers.support_newton import support_newton

    rng = np.random.default_rng(0)
    X = np.c_[rng.standard_normal((80, 3)), np.ones(80)]
    masks = (X @ rng.standard_normal((4, 12)) > 0).astype(float)
    y = np.sin(X[:, 0]) + X[:, 1] * X[:, 2]
    problem = ConvexProblem(PatternOperator(X, masks), SquaredError(), GroupL2(), y[:, None], np.full(80, 1 / 80), 0.02)

    def evaluate(W, float64=False, blocks=None):
        sub = problem if blocks is None else problem.restrict(blocks)
        cert, b, G = sub.evaluate(W)
        return cert.primal, cert.dual, b, G

    def lipschitz(blocks):
        return 1.1 * problem.restrict(blocks).operator.lipschitz(problem.sample_weight)

    calls = []

    def worse(W, b):
        calls.append(1)
        return 2 * W

    def newton(W, b):
        calls.append(1)
        return support_newton(problem, W, b, tol=1e-12)[0]

    tol = 1e-6
    inner = _backtracking_inner(_MemoryRounds(problem), lipschitz, problem.penalty, problem.alpha)
    args = (evaluate, problem.coef_shape, inner, problem.penalty, problem.alpha, tol, 5000, None)
    plain = _fista_working_sets(*args)
    rejected = _fista_working_sets(*args, polish=worse)
    assert len(calls) == 1
    polished = _fista_working_sets(*args, polish=newton)
    for (primal, _, _), dual, n_iter in (plain, rejected, polished):
        assert 0 <= primal - dual <= tol * primal
    np.testing.assert_allclose(rejected[0][0], plain[0][0], rtol=2 * tol)
    assert polished[2] < plain[2] / 2


def test_cluster_support_models_match_the_in_memory_model(client):
    # The models newton_on_support runs on the cluster give the values,
    # gradients and curvature products of the in-memory model of the same
    # program (squared error: rounds of per-block sums; logistic: the
    # curvature kept on the blocks between rounds).
    from skconvex.distributed import (
        _attach_patterns,
        _block_weight_adjoint,
        _Cluster,
        _ClusterClassifierSupport,
        _ClusterSupport,
        _make_block,
    )
    from skconvex.programs.datafits import Logistic, SquaredError
    from skconvex.programs.operators import PatternOperator
    from skconvex.programs.problem import ConvexProblem
    from skconvex.solvers.support_newton import SupportModel, _HostOps, _ProgramSupport

    rng = np.random.default_rng(0)
    X, y = _data(n=300)
    X_aug = np.c_[X, np.ones(300)]
    gates = rng.standard_normal((5, 8))
    support = np.array([1, 2, 5, 6])
    U, V = rng.standard_normal((2, 5, 4, 1))
    s = 1 / 300
    for datafit, target in ((SquaredError(), y), (Logistic(), np.where(y > np.median(y), 1.0, -1.0))):
        blocks = [client.submit(_make_block, X[i:i + 100], target[i:i + 100], None, True, np.float64, pure=False)
                  for i in (0, 100, 200)]
        cluster = _Cluster(client, blocks)
        cluster.replace(_attach_patterns, gates, 1, np.float64, 64)
        if isinstance(datafit, SquaredError):
            A1 = sum(cluster.map(_block_weight_adjoint, s))
            remote = _ClusterSupport(cluster, s, support, A1, True)
        else:
            remote = _ClusterClassifierSupport(cluster, s, support, datafit, True, 0.0)
        problem = ConvexProblem(
            PatternOperator(X_aug, (X_aug @ gates >= 0).astype(float)), datafit, GroupL2(), target[:, None],
            np.full(300, s), 0.01,
        )
        local = _ProgramSupport(problem.restrict(support), _HostOps(np.float64), False)
        assert isinstance(remote, SupportModel) and isinstance(local, SupportModel)
        b0 = np.zeros(1)
        for model in (remote, local):
            model.results = [model.value(U, b0), model.linearize(U, b0)]
            model.results += [model.self_products(U), model.hessian_product(V), model.block_diagonals()]
        (v_r, bv_r), (b_r, G_r), own_r, HV_r, D_r = remote.results
        (v_l, bv_l), (b_l, G_l), own_l, HV_l, D_l = local.results
        np.testing.assert_allclose(v_r, v_l, rtol=1e-10)
        np.testing.assert_allclose([bv_r, b_r], [bv_l, b_l], rtol=1e-8, atol=1e-12)
        for a, b in ((G_r, G_l), (own_r, own_l), (HV_r, HV_l), (D_r, D_l)):
            np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-12 * np.abs(b).max())
        kept = remote.restrict(np.array([0, 2]))
        np.testing.assert_array_equal(kept.support, [1, 5])


def _forget_predictions(block):
    # What a block recomputed from its lineage on another worker looks like.
    block.__dict__.pop("fista_states", None)


def _small_program(client, target, seed):
    """``_data(300)`` in three 100-row blocks on the cluster with ``target``, 8 gates, the dense ``n x (d P)`` matrix."""
    from skconvex.distributed import _attach_patterns, _Cluster, _make_block

    rng = np.random.default_rng(seed)
    X, _ = _data(n=300)
    X_aug = np.c_[X, np.ones(300)]
    gates = rng.standard_normal((5, 8))
    A = np.concatenate([(X_aug @ gates[:, [p]] >= 0) * X_aug for p in range(8)], axis=1)
    blocks = [client.submit(_make_block, X[i:i + 100], target[i:i + 100], None, True, np.float64, pure=False)
              for i in (0, 100, 200)]
    cluster = _Cluster(client, blocks)
    cluster.replace(_attach_patterns, gates, 1, np.float64, 64)
    return cluster, A, rng


def test_fista_rounds_are_the_in_memory_step_and_survive_lost_predictions(client):
    # A FISTA round keeps the predictions on the blocks and combines them
    # for the momentum point: its primal value at x_new, the exact remainder
    # F(x_new) - F(y) - <grad F(y), x_new - y> of the backtracking test, and
    # the intercept and gradient at y_next = x_new + beta (x_new - x) are
    # those computed in numpy from the whole matrix. Blocks that lost their
    # predictions (recomputed elsewhere) rebuild them from the coefficients in
    # one more round, with the same result.
    from skconvex.distributed import _block_weight_adjoint, _SquaredErrorRounds

    n = 300
    _, y = _data(n=n)
    cluster, A, rng = _small_program(client, y, 1)
    s, alpha, pen = 1 / n, 0.01, GroupL2()
    A1 = sum(cluster.map(_block_weight_adjoint, s))
    rounds = _SquaredErrorRounds(cluster, s, A1, np.array([y.mean()]), True, pen, alpha)

    def flat(W):
        return W[:, :, 0].T.ravel()  # pattern-major, as the columns of A

    def smooth(W):
        r = A @ flat(W) - y
        rc = r - r.mean()  # the intercept minimized out
        return 0.5 * s * rc @ rc, -r.mean(), (A.T @ (s * rc)).reshape(8, 5).T[:, :, None]

    x, x1, x2 = 0.1 * rng.standard_normal((3, 5, 8, 1))
    x[:, 3] = 0
    ws = np.arange(8)
    primal, dual, b, G = rounds.evaluate(x)
    f, b_ref, G_ref = smooth(x)
    np.testing.assert_allclose([primal, b[0]], [f + alpha * pen.value(x), b_ref], rtol=1e-10)
    np.testing.assert_allclose(G, G_ref, rtol=1e-9, atol=1e-12)
    assert dual <= primal
    token, *_ = rounds.start(x, ws)
    # Two steps, the second from a momentum point y1 != x1.
    *_, token1 = rounds.step(token, x, x, x1, 0.4, ws)
    rounds.gradient()
    y1 = x1 + 0.4 * (x1 - x)
    beta = 0.7
    y2 = x2 + beta * (x2 - x1)
    expected = (
        smooth(x2)[0] + alpha * pen.value(x2),
        smooth(x2)[0] - smooth(y1)[0] - np.vdot(smooth(y1)[2], x2 - y1),
        smooth(y2)[1],
        smooth(y2)[2],
    )
    for forget in (False, True):
        if forget:
            cluster.map(_forget_predictions)
        before = cluster.rounds
        p_new, remainder, _ = rounds.step(token1, x1, y1, x2, beta, ws)
        _, b_next, G_next = rounds.gradient()
        assert cluster.rounds - before == (2 if forget else 1)
        np.testing.assert_allclose([p_new, remainder, b_next[0]], expected[:3], rtol=1e-9)
        np.testing.assert_allclose(G_next, expected[3], rtol=1e-9, atol=1e-12)


def test_classifier_rounds_are_the_in_memory_step_and_survive_lost_predictions(client):
    # A classifier's step round returns the datafit's value at x_new and its
    # remainder bound at A y + b (the in-memory line search's test) with the
    # last intercept b; the gradient round, after one Newton step on the
    # intercept at the momentum point, returns A^T grad there. Lost
    # predictions are rebuilt in one more round, with the same result.
    from skconvex.distributed import _ClassifierRounds
    from skconvex.programs.datafits import Logistic

    n = 300
    _, y = _data(n=n)
    t = np.where(y > np.median(y), 1.0, -1.0)
    cluster, A, rng = _small_program(client, t, 2)
    s, alpha, pen, fit = 1 / n, 0.01, GroupL2(), Logistic()
    sw = np.full(n, s)
    state = {"b": np.array([0.3])}
    rounds = _ClassifierRounds(cluster, fit, s, True, 0.0, False, pen, alpha, state)
    T = t[:, None]

    def pred(W):
        return (A @ W[:, :, 0].T.ravel())[:, None]

    def newton_b(z, b):
        g = fit.gradient(z + b, T, sw).sum(axis=0)
        R = fit.hessian_factor(z + b, T, sw)
        return b - np.linalg.solve(np.einsum("nkc,nkd->cd", R, R), g)

    def adjoint(grad):
        return (A.T @ grad[:, 0]).reshape(8, 5).T[:, :, None]

    x, x1, x2 = 0.3 * rng.standard_normal((3, 5, 8, 1))
    ws = np.arange(8)
    p0, rem0, token = rounds.step(None, None, None, x, 0.0, ws)
    np.testing.assert_allclose(p0, fit.value(pred(x) + 0.3, T, sw) + alpha * pen.value(x), rtol=1e-10)
    assert rem0 == 0
    _, b0, G0 = rounds.gradient()
    np.testing.assert_allclose(b0, newton_b(pred(x), np.array([0.3])), rtol=1e-10)
    np.testing.assert_allclose(G0, adjoint(fit.gradient(pred(x) + b0, T, sw)), rtol=1e-9, atol=1e-12)
    *_, token1 = rounds.step(token, x, x, x1, 0.4, ws)
    _, b1, _ = rounds.gradient()
    y1 = x1 + 0.4 * (x1 - x)
    beta = 0.7
    y2 = x2 + beta * (x2 - x1)
    b2 = newton_b(pred(y2), b1)
    expected = (
        fit.value(pred(x2) + b1, T, sw) + alpha * pen.value(x2),
        fit.remainder_bound(pred(y1) + b1, T, sw, pred(x2) - pred(y1)),
        adjoint(fit.gradient(pred(y2) + b2, T, sw)),
    )
    for forget in (False, True):
        if forget:
            cluster.map(_forget_predictions)
        state["b"] = b1
        before = cluster.rounds
        p_new, remainder, _ = rounds.step(token1, x1, y1, x2, beta, ws)
        assert cluster.rounds - before == (2 if forget else 1)
        _, b_next, G_next = rounds.gradient()
        np.testing.assert_allclose([p_new, remainder], expected[:2], rtol=1e-9)
        np.testing.assert_allclose(b_next, b2, rtol=1e-10)
        np.testing.assert_allclose(G_next, expected[2], rtol=1e-9, atol=1e-12)
