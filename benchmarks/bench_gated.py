"""Speed of the certified gated-ReLU solver on the two reference problems.

Problems (``../shared/design/anchors.md``): X ~ N(0, 1), y from a planted
10-neuron ReLU teacher (standardized, noise 0.1), Gaussian gates,
``lambda = 0.1 lambda_max``, objective ``0.5 ||sum_i D_i X u_i - y||^2 +
lambda sum_i ||u_i||`` (summed loss). Every solver runs to a certified
relative duality gap of 1e-6 in the same process, so ratios are meaningful
even on a noisy machine.

Columns: wall time (best of ``--repeat``), certified relative gap (the
solver's float64 certificate; for skglm and Clarabel the gap of our dual point
built from their answer), solver iterations, GEMMs with
the data matrix, and "per-GEMM" = solver time / time of the same sequence of
GEMMs done bare (1.0 = the solver costs nothing but its matrix products).

Rows "+Newton" add the Newton end-game on the support that the gated
estimators use (``fista(..., polish=support_newton)``); its GEMM count
includes the Newton-CG products but not the preconditioner's Gram blocks.

Run ``python benchmarks/bench_gated.py`` (``--quick`` for a smoke run,
``--skip-reference`` to skip skglm and Clarabel).
"""

import argparse
import platform
import sys
import time
import tracemalloc

import numpy as np
from threadpoolctl import threadpool_info

from skconvex.programs.datafits import SquaredError
from skconvex.programs.operators import PatternOperator
from skconvex.programs.penalties import GroupL2
from skconvex.programs.problem import ConvexProblem
from skconvex.solvers import solve_certified
from skconvex.solvers.support_newton import support_newton
from skconvex.solvers.working_set import working_set_solve


def make_problem(n, d, P, seed=0, dtype=np.float64):
    """The anchors.md generator; returns (problem, X, y, patterns)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    U = rng.standard_normal((d, 10))
    a = rng.standard_normal(10)
    y = np.maximum(X @ U, 0) @ a
    y = (y - y.mean()) / y.std() + 0.1 * rng.standard_normal(n)
    patterns = X @ rng.standard_normal((d, P)) >= 0
    op = PatternOperator(X.astype(dtype), patterns)
    problem = ConvexProblem(op, SquaredError(), GroupL2(), y[:, None], np.ones(n), 1.0, fit_intercept=False)
    problem.alpha = 0.1 * problem.astype(np.float64).alpha_max()
    return problem, X, y, patterns


class CountingOperator(PatternOperator):
    """A PatternOperator that records the shape of every GEMM it performs."""

    calls = []

    def product(self, W):
        CountingOperator.calls.append(("forward", self.X.dtype, self.masks.shape[1] * self.n_outputs))
        return super().product(W)

    def adjoint(self, R):
        CountingOperator.calls.append(("adjoint", self.X.dtype, self.masks.shape[1] * self.n_outputs))
        return super().adjoint(R)


def bare_gemm_time(X, kind, n_cols, cache, repeat=5):
    """Best time of the bare GEMM a product of this kind and width performs."""
    key = (kind, X.dtype, n_cols)
    if key not in cache:
        rng = np.random.default_rng(0)
        if kind == "forward":
            B = rng.standard_normal((X.shape[1], n_cols)).astype(X.dtype)

            def f():
                return X @ B
        else:
            B = rng.standard_normal((X.shape[0], n_cols)).astype(X.dtype)

            def f():
                return X.T @ B

        f()
        best = np.inf
        for _ in range(repeat):
            t0 = time.perf_counter()
            f()
            best = min(best, time.perf_counter() - t0)
        cache[key] = best
    return cache[key]


def run_ours(problem, dtype, repeat, polish=None):
    counting = CountingOperator.__new__(CountingOperator)
    counting.__dict__.update(problem.operator.astype(dtype).__dict__)
    prob = problem._with_operator(counting)
    best, result, calls = np.inf, None, None
    for _ in range(repeat):
        CountingOperator.calls = []
        t0 = time.perf_counter()
        result = solve_certified(prob, working_set_solve, tol=1e-6, max_iter=20000, polish=polish)
        elapsed = time.perf_counter() - t0
        if elapsed < best:
            best, calls = elapsed, list(CountingOperator.calls)
    Xs = {np.dtype(np.float64): problem.operator.X.astype(np.float64),
          np.dtype(np.float32): problem.operator.X.astype(np.float32)}
    cache = {}
    bare = sum(bare_gemm_time(Xs[np.dtype(dt)], kind, cols, cache) for kind, dt, cols in calls)
    # The certificate the solver reports (primal at the returned point, best
    # dual bound seen), both in float64 for the data as stored in ``dtype``;
    # check the primal value independently.
    data64 = problem.astype(dtype).astype(np.float64)
    primal, _ = data64.objective(np.asarray(result.coef, np.float64))
    assert abs(primal - result.objective) <= 1e-9 * abs(primal), (primal, result.objective)
    return best, result.relative_gap, result, len(calls), best / bare


def run_skglm(problem, X, y, patterns, tol):
    from skglm import GroupLasso

    n, d = X.shape
    P = patterns.shape[1]
    design = np.asarray(problem.operator.astype(np.float64).explicit().todense())
    # skglm's datafit is 1/(2n)||y - Xw||^2: divide lambda by n.
    warm = GroupLasso(groups=d, alpha=1.0, tol=1e-2, fit_intercept=False)
    warm.fit(design[:50, : 2 * d], y[:50])  # numba compilation, not timed
    model = GroupLasso(groups=d, alpha=problem.alpha / n, tol=tol, fit_intercept=False, max_iter=200)
    t0 = time.perf_counter()
    model.fit(design, y)
    elapsed = time.perf_counter() - t0
    W = model.coef_.reshape(P, d).T[:, :, None]
    cert, _, _ = problem.astype(np.float64).evaluate(W)
    return elapsed, cert


def run_clarabel(problem):
    from skconvex.solvers import cvxpy_solve

    t0 = time.perf_counter()
    res = cvxpy_solve(problem.astype(np.float64), solver_options={"tol_gap_rel": 1e-9, "tol_gap_abs": 1e-9})
    elapsed = time.perf_counter() - t0
    cert, _, _ = problem.astype(np.float64).evaluate(res.coef.astype(np.float64))
    return elapsed, cert


def rel(cert):
    return cert.gap / cert.primal


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny problems, one repeat")
    parser.add_argument("--skip-reference", action="store_true", help="skip skglm and Clarabel")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", metavar="PATH", help="also write the table to PATH (doc/benchmarks.rst plots it)")
    args = parser.parse_args()
    records = []

    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}")
    for info in threadpool_info():
        print(
            f"BLAS: {info.get('internal_api')} {info.get('version')} "
            f"arch={info.get('architecture')} threads={info.get('num_threads')}"
        )
    sizes = [("small", 2000, 50, 200), ("large", 10000, 100, 500)]
    if args.quick:
        sizes = [("small", 300, 10, 30), ("large", 600, 20, 50)]
    repeat = 1 if args.quick else args.repeat

    print(f"\n{'problem':<8}{'solver':<26}{'time (s)':>10}{'ratio':>8}{'rel. gap':>11}{'iters':>7}{'GEMMs':>7}{'per-GEMM':>10}")
    for name, n, d, P in sizes:
        tracemalloc.start()
        problem, X, y, patterns = make_problem(n, d, P)
        rows = []
        ours = {}
        for polish in (None, support_newton):
            for dtype in (np.float64, np.float32):
                t, gap, res, n_gemm, per = run_ours(problem, dtype, repeat, polish)
                ours[dtype, polish] = t
                label = f"skconvex fista-ws{' +Newton' if polish else ''} {np.dtype(dtype).name}"
                rows.append((label, t, gap, res.n_iter, n_gemm, f"{per:.2f}x"))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        if name == "small" and not args.skip_reference:
            try:
                if args.quick:
                    raise ImportError  # numba compilation would dominate a smoke run
                t, cert = run_skglm(problem, X, y, patterns, tol=1e-7)
                rows.append(("skglm GroupLasso (explicit)", t, rel(cert), "", "", ""))
            except ImportError:
                print("skglm skipped (--quick, or not installed: pip install -e '.[bench]')")
            t, cert = run_clarabel(problem)
            rows.append(("cvxpy + Clarabel", t, rel(cert), "", "", ""))
        base = ours[np.float32, None]
        for label, t, gap, iters, gemms, per in rows:
            print(f"{name:<8}{label:<26}{t:>10.3f}{t / base:>8.1f}{gap:>11.1e}{iters!s:>7}{gemms!s:>7}{per:>10}")
            records.append({"problem": f"{name} (n={n}, d={d}, P={P})", "solver": label, "time": t,
                            "relative_gap": float(gap), "ratio": t / base})
        print(f"{name:<8}objective {problem.objective(np.zeros(problem.coef_shape))[0]:.6g} at 0; "
              f"peak traced memory (data + float64 and float32 solves) {peak / 2**20:.0f} MiB")
    print("\nratio = time / time of skconvex float32 (without Newton) on the same problem.")
    if args.json:
        import json

        meta = {"python": platform.python_version(), "numpy": np.__version__, "blas": threadpool_info()}
        with open(args.json, "w") as f:
            json.dump({"command": " ".join(["python", "benchmarks/bench_gated.py", *sys.argv[1:]]),
                       "machine": meta, "rows": records}, f, indent=1, default=str)


if __name__ == "__main__":
    main()
