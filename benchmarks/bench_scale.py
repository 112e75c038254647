"""Scale: certified gated fits from 10^4 to 10^6 rows, and on sparse text-like data.

Part 1, rows. Gated regression on the anchors' generator
(``../shared/design/anchors.md``: X ~ N(0, 1), a planted 10-neuron ReLU
teacher, standardized y plus noise 0.1, Gaussian gates), d=50, P=200,
``lambda = 0.1 lambda_max`` (summed squared loss, no intercept), float32
compute with the float64 certificate, working sets + Newton polish
(the gated estimators' solver), relative certified gap 1e-4. Each
(n, operator) runs in its own subprocess so that its peak resident memory
(``ru_maxrss``, data included) is its own; "traced" is the peak of
:mod:`tracemalloc` during the solve alone. Operators: ``whole`` (the
:class:`PatternOperator`, n x P float masks) and ``blocked`` (the
:class:`RowBlockOperator`, bit-packed masks, ``--block-size`` rows per
block). "passes" counts forward and adjoint products (each one GEMM with X).

Part 2, sparse. n=20000, d=20000, density 0.25 % (TF-IDF-like: non-negative
log-counts, rows normalized), labels from a planted two-layer ReLU teacher,
75/25 split. ``ConvexGatedReLUClassifier(n_arrangements=100)`` on the
sparse matrix against ``LogisticRegression`` and ``MLPClassifier`` on the
same sparse data, in the same run.

Part 3, cluster (``--dask N``). The estimator (same program: alpha = 0.1
alpha_max, no intercept, float32) fitted in memory with row blocks and on a
``LocalCluster`` of 2 single-threaded worker processes (X in 4 row chunks),
in the same run: time, certified objective, rounds and bytes moved.

Run ``python benchmarks/bench_scale.py`` (n = 10^4, 10^5 and the sparse
problem), ``--million`` to add n = 10^6 (minutes), ``--dask 100000`` for the
cluster comparison, ``--quick`` for a smoke run; ``--sizes`` picks the n of
part 1, ``--n-jobs`` the threads over row blocks, and ``--estimator`` adds
the whole ``ConvexGatedReLURegressor(block_size=...).fit`` after each blocked
solve (its objective is the solve's divided by n; "passes" is not counted).
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
import tracemalloc

import numpy as np

from skconvex.programs.datafits import SquaredError
from skconvex.programs.operators import PatternOperator
from skconvex.programs.penalties import GroupL2
from skconvex.programs.problem import ConvexProblem
from skconvex.programs.row_blocks import RowBlockOperator, packed_patterns
from skconvex.solvers import solve_certified
from skconvex.solvers.support_newton import support_newton
from skconvex.solvers.working_set import working_set_solve

PASSES = [0]


def _counting(cls):
    class Counting(cls):
        def forward(self, W):
            PASSES[0] += 1
            return super().forward(W)

        def adjoint(self, R):
            PASSES[0] += 1
            return super().adjoint(R)

    Counting.__name__ = cls.__name__
    return Counting


def anchors_data(n, d, seed=0, chunk=100_000):
    """The anchors.md generator in float32, built in row chunks (no float64 n x d copy)."""
    rng = np.random.default_rng(seed)
    U = rng.standard_normal((d, 10))
    a = rng.standard_normal(10)
    X = np.empty((n, d), dtype=np.float32)
    y = np.empty(n)
    for i in range(0, n, chunk):
        rows = slice(i, min(i + chunk, n))
        X[rows] = rng.standard_normal((rows.stop - rows.start, d), dtype=np.float32)
        y[rows] = np.maximum(X[rows] @ U, 0) @ a
    y = (y - y.mean()) / y.std() + 0.1 * rng.standard_normal(n)
    gates = rng.standard_normal((d, 200)).astype(np.float32)
    return X, y, gates


def child_gated(n, mode, block_size, P, tol, n_jobs=None):
    d = 50
    X, y, gates = anchors_data(n, d)
    gates = gates[:, :P]
    tracemalloc.start()
    t0 = time.perf_counter()
    if mode == "whole":
        op = _counting(PatternOperator)(X, X @ gates >= 0, dtype=np.float32)
    else:
        op = _counting(RowBlockOperator)(X, packed_patterns(X, gates, block_size), block_size=block_size,
                                         dtype=np.float32, n_jobs=n_jobs)
    problem = ConvexProblem(op, SquaredError(), GroupL2(), y[:, None], np.ones(n), 1.0, fit_intercept=False)
    problem.alpha = 0.1 * problem.astype(np.float64).alpha_max()
    PASSES[0] = 0
    result = solve_certified(problem, working_set_solve, tol=tol, max_iter=20000, polish=support_newton)
    elapsed = time.perf_counter() - t0
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(dict(
        n=n, mode=mode, time=elapsed, rss=rss, traced=traced, gap=result.relative_gap,
        objective=result.objective, passes=PASSES[0], nnz_blocks=int(np.count_nonzero(
            np.abs(np.asarray(result.coef)).sum(axis=(0, 2)))),
    )))


def child_estimator(n, block_size, P, tol, n_jobs=None):
    """``ConvexGatedReLURegressor.fit`` on the part-1 problem: validation, gates and report included."""
    from skconvex import ConvexGatedReLURegressor

    X, y, _ = anchors_data(n, 50)
    kw = dict(n_arrangements=P, tol=tol, random_state=0, dtype="float32", fit_intercept=False)
    alpha = 0.1 * ConvexGatedReLURegressor(block_size=8192, **kw)._alpha_max(X, y)
    tracemalloc.start()
    t0 = time.perf_counter()
    est = ConvexGatedReLURegressor(alpha=alpha, block_size=block_size, n_jobs=n_jobs, **kw).fit(X, y)
    elapsed = time.perf_counter() - t0
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(dict(
        n=n, mode="estimator", time=elapsed, rss=rss, traced=traced, gap=est.dual_gap_ / est.objective_,
        objective=est.objective_, passes=-1, nnz_blocks=int(est.n_neurons_),
    )))


def child_dask(n, P, tol, n_jobs=None):
    """The estimator in memory (row blocks) and on a 2-worker LocalCluster, same run."""
    import dask.array as da
    import distributed

    from skconvex import ConvexGatedReLURegressor

    X, y, _ = anchors_data(n, 50)
    kw = dict(n_arrangements=P, tol=tol, random_state=0, dtype="float32", fit_intercept=False)
    alpha = 0.1 * ConvexGatedReLURegressor(block_size=8192, **kw)._alpha_max(X, y)
    t0 = time.perf_counter()
    mem = ConvexGatedReLURegressor(alpha=alpha, block_size=8192, n_jobs=n_jobs, **kw).fit(X, y)
    t_mem = time.perf_counter() - t0
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, silence_logs=40) as cluster, distributed.Client(cluster):
        Xd = da.from_array(X, chunks=(-(-n // 4), 50))
        yd = da.from_array(y, chunks=-(-n // 4))
        t0 = time.perf_counter()
        dk = ConvexGatedReLURegressor(alpha=alpha, **kw).fit(Xd, yd)
        t_dask = time.perf_counter() - t0
    print(json.dumps(dict(n=n, t_mem=t_mem, t_dask=t_dask, obj_mem=mem.objective_, obj_dask=dk.objective_,
                          gap_mem=mem.dual_gap_ / mem.objective_, gap_dask=dk.dual_gap_ / dk.objective_,
                          rounds=dk.dask_info_["rounds"],
                          bytes=dk.dask_info_["bytes_out"] + dk.dask_info_["bytes_in"])))


def run_child(*args):
    out = subprocess.run([sys.executable, __file__, "--child", *map(str, args)], capture_output=True, text=True,
                         check=False)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def sparse_problem(n, d, density, seed=0):
    """TF-IDF-like sparse X (non-negative log counts, unit rows) and teacher labels."""
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    # Zipf-like column popularity, as word frequencies.
    popularity = 1.0 / np.arange(1, d + 1) ** 0.8
    popularity /= popularity.sum()
    nnz_per_row = max(int(density * d), 1)
    cols = rng.choice(d, size=(n, nnz_per_row), p=popularity)
    rows = np.repeat(np.arange(n), nnz_per_row)
    vals = np.log1p(rng.poisson(2.0, size=n * nnz_per_row) + 1.0)
    X = sp.csr_array((vals, (rows, cols.ravel())), shape=(n, d))
    X.sum_duplicates()
    X = sp.csr_array(X.multiply(1.0 / np.sqrt(X.multiply(X).sum(axis=1))[:, None]))
    U = rng.standard_normal((d, 10)) * np.sqrt(d * 0.05)
    a = rng.standard_normal(10)
    f = np.maximum(np.asarray(X @ U) - 0.5, 0) @ a
    y = (f > np.median(f)).astype(int)
    return X, y


def run_sparse(n, d, density, quick=False, n_jobs=None):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    from skconvex import ConvexGatedReLUClassifier

    X, y = sparse_problem(n, d, density)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    rows = []
    models = [
        (f"ConvexGatedReLUClassifier(P={20 if quick else 100})",
         ConvexGatedReLUClassifier(n_arrangements=20 if quick else 100, random_state=0, n_jobs=n_jobs)),
        ("LogisticRegression()", LogisticRegression(max_iter=1000)),
        ("MLPClassifier(early_stopping)", MLPClassifier(early_stopping=True, random_state=0,
                                                        max_iter=20 if quick else 200)),
    ]
    for name, model in models:
        tracemalloc.start()
        t0 = time.perf_counter()
        model.fit(Xtr, ytr)
        elapsed = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        gap = getattr(model, "dual_gap_", None)
        rel = None if gap is None else gap / model.objective_
        rows.append((name, elapsed, peak, model.score(Xte, yte), rel))
    return X.nnz, rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run (small n, small sparse problem)")
    parser.add_argument("--million", action="store_true", help="add n = 10^6 (blocked only; minutes)")
    parser.add_argument("--block-size", type=int, default=8192)
    parser.add_argument("--n-jobs", type=int, default=None,
                        help="threads over row blocks (blocked operator, in-memory estimator fits) and n_jobs of "
                             "the sparse ConvexGatedReLUClassifier; default None (one)")
    parser.add_argument("--sizes", type=str, default=None,
                        help="comma-separated n of the rows part (default 10000,100000; --quick 500,2000)")
    parser.add_argument("--estimator", action="store_true",
                        help="add a ConvexGatedReLURegressor(block_size=...) fit after each blocked row (whole fit: "
                             "validation, gates, solve and the max_violation_ report)")
    parser.add_argument("--skip-sparse", action="store_true")
    parser.add_argument("--skip-rows", action="store_true")
    parser.add_argument("--dask", type=int, default=None, metavar="N",
                        help="also fit n=N rows on a 2-worker LocalCluster against the in-memory fit")
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        n, mode, block, P, tol, n_jobs = args.child
        n_jobs = None if n_jobs == "None" else int(n_jobs)
        if mode == "dask":
            return child_dask(int(n), int(P), float(tol), n_jobs)
        if mode == "estimator":
            return child_estimator(int(n), int(block), int(P), float(tol), n_jobs)
        return child_gated(int(n), mode, int(block), int(P), float(tol), n_jobs)

    from threadpoolctl import threadpool_info

    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}, "
          f"numpy {np.__version__}")
    print("# BLAS:", [(i["internal_api"], i["num_threads"], i.get("architecture")) for i in threadpool_info()])
    P, tol = (20, 1e-4) if args.quick else (200, 1e-4)
    sizes = [500, 2000] if args.quick else [10_000, 100_000]
    if args.sizes:
        sizes = [int(v) for v in args.sizes.split(",") if v]
    runs = [] if args.skip_rows else [(n, m) for n in sizes for m in ("whole", "blocked")]
    if args.million:
        runs.append((1_000_000, "blocked"))
    if args.estimator:
        runs = [r for n, m in runs for r in ([(n, m), (n, "estimator")] if m == "blocked" else [(n, m)])]
    print(f"\n## Gated regression, anchors generator, d=50, P={P}, lambda=0.1 lambda_max, tol={tol}, float32, "
          f"block_size={args.block_size}, n_jobs={args.n_jobs}\n")
    print("| n | operator | time (s) | peak RSS (MiB) | traced solve peak (MiB) | rel. gap | passes | "
          "objective | time / time(previous n, same operator) |")
    print("|---|---|---|---|---|---|---|---|---|")
    previous = {}
    for n, mode in runs:
        r = run_child(n, mode, args.block_size, P, tol, args.n_jobs)
        ratio = "" if mode not in previous else f"{r['time'] / previous[mode]:.2f}"
        previous[mode] = r["time"]
        print(f"| {n} | {mode} | {r['time']:.2f} | {r['rss'] / 2**20:.0f} | {r['traced'] / 2**20:.0f} | "
              f"{r['gap']:.1e} | {r['passes'] if r['passes'] >= 0 else ''} | {r['objective']:.6g} | {ratio} |", flush=True)
    dask_n = args.dask
    if dask_n:
        r = run_child(dask_n, "dask", 0, P, tol, args.n_jobs)
        print(f"\n## Estimator (alpha = 0.1 alpha_max, no intercept, float32) in memory vs 2-worker LocalCluster, "
              f"n={dask_n}, 4 row chunks\n")
        print("| where | time (s) | objective | certified rel. gap | rounds | bytes moved in the solve |")
        print("|---|---|---|---|---|---|")
        print(f"| in memory, block_size=8192 | {r['t_mem']:.2f} | {r['obj_mem']:.8g} | {r['gap_mem']:.1e} | | |")
        print(f"| LocalCluster(2 x 1 thread) | {r['t_dask']:.2f} | {r['obj_dask']:.8g} | {r['gap_dask']:.1e} | "
              f"{r['rounds']} | {r['bytes'] / 2**20:.1f} MiB |")
        print(f"\ntime ratio cluster / in memory: {r['t_dask'] / r['t_mem']:.2f}")
    if args.skip_sparse:
        return None
    n, d, density = (600, 600, 0.01) if args.quick else (20000, 20000, 0.0025)
    nnz, rows = run_sparse(n, d, density, args.quick, args.n_jobs)
    print(f"\n## Sparse classification, n={n}, d={d}, nnz={nnz} ({100 * nnz / (n * d):.2f} %), 75/25 split\n")
    print("| model | fit time (s) | traced peak (MiB) | test accuracy | certified rel. gap |")
    print("|---|---|---|---|---|")
    for name, elapsed, peak, score, rel in rows:
        print(f"| {name} | {elapsed:.2f} | {peak / 2**20:.0f} | {score:.3f} | {'' if rel is None else f'{rel:.1e}'} |")
    return None


if __name__ == "__main__":
    main()
