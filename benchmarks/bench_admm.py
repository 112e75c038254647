"""ADMM against the augmented Lagrangian on squared-loss exact ReLU programs.

Both solvers of :class:`~skconvex.ConvexReLURegressor` solve the same program
(same gates, ``random_state=0``) on standardized data, in the same run, at the
estimator's default ``tol=1e-4``: ``solver="auglag"`` (semismooth Newton
augmented Lagrangian, the default) and ``solver="admm"`` (one ``d x d``
factorization shared by all cones). The table gives the fit time, the
certified relative duality gap, whether the fit certified, and the ratios
ADMM / auglag (wall and CPU time: on a shared machine CPU time is the fairer
measure). The issue's bar for keeping ADMM: within 2x of auglag.

Run ``python benchmarks/bench_admm.py`` (``--quick`` for a smoke run).
"""

import argparse
import os
import time
import warnings

import numpy as np
from sklearn import datasets
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from skconvex import ConvexReLURegressor


def load(name, quick):
    if name == "diabetes":
        X, y = datasets.load_diabetes(return_X_y=True)
    elif name == "friedman1":
        X, y = datasets.make_friedman1(n_samples=500, random_state=0)
    else:
        X, y = datasets.fetch_california_housing(return_X_y=True)
    if quick:
        X, y = X[:80], y[:80]
    return StandardScaler().fit_transform(X), y


def fit(est, X, y):
    """Wall and CPU seconds of ``est.fit`` and whether it certified."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0, c0 = time.perf_counter(), time.process_time()
        est.fit(X, y)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    certified = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return wall, cpu, certified


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small subsets, smoke run")
    args = parser.parse_args()
    # (dataset, n_arrangements)
    cases = [("diabetes", 20), ("diabetes", 50), ("friedman1", 20)]
    if args.quick:
        cases = [("diabetes", 5)]
    max_iter = 20_000 if args.quick else 100_000
    print(f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}")
    print(
        f"{'dataset':<12}{'n':>6}{'P':>5}{'solver':>8}{'fit s':>9}{'cpu s':>9}{'cert. gap':>11}"
        f"{'certified':>11}{'ratio':>8}{'(cpu)':>8}"
    )
    for name, P in cases:
        X, y = load(name, args.quick)
        base = {}
        for solver in ("auglag", "admm"):
            est = ConvexReLURegressor(n_arrangements=P, random_state=0, solver=solver, max_iter=max_iter)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                wall, cpu, certified = fit(est, X, y)
            base.setdefault("wall", wall)
            base.setdefault("cpu", cpu)
            gap = est.dual_gap_ / max(abs(est.objective_), np.finfo(float).tiny)
            print(
                f"{name:<12}{len(X):>6}{P:>5}{solver:>8}{wall:>9.2f}{cpu:>9.2f}{gap:>11.1e}"
                f"{'yes' if certified else 'no':>11}{wall / base['wall']:>7.1f}x{cpu / base['cpu']:>7.1f}x",
                flush=True,
            )

if __name__ == "__main__":
    main()
