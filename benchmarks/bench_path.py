"""Regularization path vs independent fits over the same grid of ``alpha``.

For each dataset and formulation the script computes the grid once (from the
exact alpha_max), then times ``convex_relu_path`` (one estimator warm-started
down the grid, gates shared) against one cold fit per ``alpha``, in the same
run. Columns: wall time of each, their ratio, total solver iterations of
each, and the largest certified relative gap of each (a fit that stops at
``max_iter`` is cheaper but not certified).

Run ``python benchmarks/bench_path.py`` (``--quick`` for a smoke run;
``--per-alpha`` also prints, for every ``alpha``, the time and iterations of
the warm-started fit and of the cold one; ``--max-iter`` sets every fit's
budget, e.g. high enough that the cold fits certify too).
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from skconvex import (
    ConvexGatedReLUClassifier,
    ConvexGatedReLURegressor,
    ConvexReLUClassifier,
    ConvexReLURegressor,
    alpha_grid,
    convex_relu_path,
)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--n-alphas", type=int, default=10)
    parser.add_argument("--eps", type=float, default=1e-2)
    parser.add_argument("--per-alpha", action="store_true")
    parser.add_argument("--max-iter", type=int, default=None,
                        help="max_iter of every fit (default: the estimators' own)")
    args = parser.parse_args()
    X_d, y_d = load_diabetes(return_X_y=True)
    X_c, y_c = load_breast_cancer(return_X_y=True)
    cases = [
        ("diabetes", "gated", ConvexGatedReLURegressor(random_state=0), X_d, y_d),
        ("diabetes", "exact", ConvexReLURegressor(random_state=0), X_d, y_d),
        ("breast_cancer", "gated", ConvexGatedReLUClassifier(random_state=0), X_c, y_c),
        ("breast_cancer", "exact", ConvexReLUClassifier(random_state=0), X_c, y_c),
    ]
    n_alphas = 3 if args.quick else args.n_alphas
    if args.max_iter is not None:
        cases = [(n, f, e.set_params(max_iter=args.max_iter), X, y) for n, f, e, X, y in cases]
    if args.quick:
        cases = [(n, f, e, X[:150], y[:150]) for n, f, e, X, y in cases[:1]]
    print(f"{'dataset':<15}{'model':<8}{'path (s)':>10}{'independent (s)':>17}{'speed-up':>10}"
          f"{'iters path':>12}{'iters indep.':>14}{'max gap path':>14}{'max gap indep.':>16}")
    for name, formulation, est, X, y in cases:
        X = StandardScaler().fit_transform(X)
        alphas = alpha_grid(est, X, y, n_alphas=n_alphas, eps=args.eps)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            t0 = time.perf_counter()
            path = convex_relu_path(X, y, est, alphas=alphas)
            t_path = time.perf_counter() - t0
            t0 = time.perf_counter()
            iters, gap_indep = 0, 0.0
            for alpha in alphas:
                fit = est.__class__(**{**est.get_params(), "alpha": alpha}).fit(X, y)
                iters += fit.n_iter_
                gap_indep = max(gap_indep, fit.dual_gap_ / fit.objective_)
            t_indep = time.perf_counter() - t0
        gap = np.max(path.dual_gaps / path.objectives)
        if args.per_alpha:
            per_alpha(est, X, y, alphas)
        print(f"{name:<15}{formulation:<8}{t_path:>10.2f}{t_indep:>17.2f}{t_indep / t_path:>9.2f}x"
              f"{int(path.n_iter.sum()):>12}{iters:>14}{gap:>14.1e}{gap_indep:>16.1e}")


def per_alpha(est, X, y, alphas):
    """Time each warm-started fit of the path next to the cold fit of the same alpha."""
    warm = est.__class__(**{**est.get_params(), "warm_start": True})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for alpha in alphas:
            t0 = time.perf_counter()
            warm.set_params(alpha=alpha).fit(X, y)
            t_warm = time.perf_counter() - t0
            t0 = time.perf_counter()
            cold = est.__class__(**{**est.get_params(), "alpha": alpha}).fit(X, y)
            t_cold = time.perf_counter() - t0
            print(f"  alpha {alpha:.3e}  neurons {warm.n_neurons_:4d}  warm {t_warm:6.3f}s "
                  f"({warm.n_iter_:5d} iters)  cold {t_cold:6.3f}s ({cold.n_iter_:5d} iters)")


if __name__ == "__main__":
    main()
