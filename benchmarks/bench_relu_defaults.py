"""Default exact ReLU networks against the gated ones with the same ``n_arrangements``.

What a new user gets first: :class:`~skconvex.ConvexReLURegressor` /
:class:`~skconvex.ConvexReLUClassifier` with default parameters after
``StandardScaler``, next to :class:`~skconvex.ConvexGatedReLURegressor` /
:class:`~skconvex.ConvexGatedReLUClassifier` with the same
``n_arrangements`` (the exact estimators' default, 100) and otherwise
default parameters, fitted in the same run on the whole of each dataset:
diabetes, breast_cancer, wine, iris, digits and
``make_friedman1(n_samples=3000)``.

The table gives both fit times (wall and CPU seconds: on a shared machine the
CPU time is the fairer measure), their ratios (exact / gated), whether each fit
certified (no ``ConvergenceWarning``) and the certified relative duality gap
(``dual_gap_ / objective_``). The issue's targets: every exact fit certified,
ratio at most 5 (median over the datasets) and at most 10 on any one, digits
certified in under 20 s.

Run ``python benchmarks/bench_relu_defaults.py`` (``--quick`` for a smoke run
of a few seconds; ``--datasets`` for a subset; ``--draws K --rows N`` counts
instead how many of K gate draws certify on the first N rows of each
dataset). Set ``OPENBLAS_NUM_THREADS``
to control BLAS threads; the thread count is printed.
"""

import argparse
import os
import time
import warnings

import numpy as np
from sklearn import datasets
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from skconvex import (
    ConvexGatedReLUClassifier,
    ConvexGatedReLURegressor,
    ConvexReLUClassifier,
    ConvexReLURegressor,
)

DATASETS = ["diabetes", "breast_cancer", "wine", "iris", "digits", "friedman1"]


def load(name, quick):
    if name == "friedman1":
        X, y = datasets.make_friedman1(n_samples=3000, random_state=0)
    else:
        X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    if quick:
        if name == "digits":
            X, y = X[y < 3], y[y < 3]
        rng = np.random.default_rng(0)
        keep = np.sort(rng.permutation(len(X))[:60])
        X, y = X[keep], y[keep]
    return StandardScaler().fit_transform(X), y, name in ("diabetes", "friedman1")


def fit(est, X, y):
    """Wall and CPU seconds of ``est.fit``, whether it certified, its relative gap."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0, c0 = time.perf_counter(), time.process_time()
        est.fit(X, y)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    certified = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    gap = est.dual_gap_ / max(abs(est.objective_), np.finfo(float).tiny)
    return wall, cpu, certified, gap


def over_draws(names, rows, n_draws):
    """Certification of default exact fits over gate draws (``random_state`` 0 .. n_draws - 1).

    Each dataset is cut to its first ``rows`` rows and standardized on them,
    as a new user trying the estimator on a small sample would.
    """
    print(f"{'dataset':<14}{'n x d':>9}{'draws':>6}{'certified':>10}{'median s':>9}{'max s':>7}  solvers")
    for name in names:
        X, y, regression = load(name, quick=False)
        X, y = StandardScaler().fit_transform(X[:rows]), y[:rows]
        Est = ConvexReLURegressor if regression else ConvexReLUClassifier
        walls, certified, solvers = [], 0, {}
        for seed in range(n_draws):
            est = Est(random_state=seed)
            wall, _, ok, _ = fit(est, X, y)
            walls.append(wall)
            certified += ok
            solvers[est.solver_] = solvers.get(est.solver_, 0) + 1
        used = ", ".join(f"{k} {v}" for k, v in sorted(solvers.items()))
        print(
            f"{name:<14}{X.shape[0]:>5}x{X.shape[1]:<3}{n_draws:>6}{certified:>10}"
            f"{np.median(walls):>9.2f}{max(walls):>7.2f}  {used}",
            flush=True,
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="60-row subsets (digits: 3 classes) and n_arrangements=10, smoke run",
    )
    parser.add_argument("--datasets", nargs="*", default=DATASETS, choices=DATASETS)
    parser.add_argument(
        "--draws",
        type=int,
        default=0,
        help="instead of the table: fit the exact defaults with this many gate draws "
        "(random_state 0, 1, ...) on the first --rows rows of each dataset and count "
        "the certified fits",
    )
    parser.add_argument("--rows", type=int, default=100, help="rows used with --draws")
    args = parser.parse_args()
    print(f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}")
    if args.draws:
        over_draws(args.datasets, args.rows, args.draws)
        return
    print(
        f"{'dataset':<14}{'n x d':>9}{'exact s':>9}{'(cpu)':>8}{'cert.':>6}{'rel. gap':>9}"
        f"{'gated s':>9}{'(cpu)':>8}{'cert.':>6}{'rel. gap':>9}{'ratio':>7}{'(cpu)':>7}",
        flush=True,
    )
    ratios = []
    for name in args.datasets:
        X, y, regression = load(name, args.quick)
        exact = ConvexReLURegressor() if regression else ConvexReLUClassifier()
        if args.quick:
            exact.set_params(n_arrangements=10)
        Gated = ConvexGatedReLURegressor if regression else ConvexGatedReLUClassifier
        gated = Gated(n_arrangements=exact.n_arrangements)
        w_exact, c_exact, ok_exact, g_exact = fit(exact, X, y)
        w_gated, c_gated, ok_gated, g_gated = fit(gated, X, y)
        ratio, cpu_ratio = w_exact / max(w_gated, 1e-9), c_exact / max(c_gated, 1e-9)
        ratios.append((ratio, cpu_ratio))
        shape = f"{X.shape[0]}x{X.shape[1]}"
        print(
            f"{name:<14}{shape:>9}{w_exact:>9.2f}{c_exact:>8.2f}{'yes' if ok_exact else 'NO':>6}"
            f"{g_exact:>9.1e}{w_gated:>9.2f}{c_gated:>8.2f}{'yes' if ok_gated else 'NO':>6}"
            f"{g_gated:>9.1e}{ratio:>6.1f}x{cpu_ratio:>6.1f}x",
            flush=True,
        )
    ratios = np.array(ratios)
    print(
        f"median ratio {np.median(ratios[:, 0]):.1f}x (cpu {np.median(ratios[:, 1]):.1f}x), "
        f"largest {ratios[:, 0].max():.1f}x (cpu {ratios[:, 1].max():.1f}x)"
    )


if __name__ == "__main__":
    main()
