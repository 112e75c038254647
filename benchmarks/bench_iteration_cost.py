"""Cost of one FISTA iteration of the default gated classifier on the demo's digits split.

``ConvexGatedReLUClassifier(random_state=seed)`` (defaults: nuclear blocks,
10 classes, float32 products with the float64 certificate) on the
standardized split of ``python -m skconvex demo``, for several gate seeds.
Changes to the per-iteration work (prox, datafit, certificate) can move the
iteration count of a seed either way through rounding, so the comparable
number is the time per iteration, summed over the seeds. Compare two
checkouts by running the script once per checkout, alternately, with
``PYTHONPATH`` pointing at each.

Columns: seed, fit time, FISTA iterations (every solve of the fit: working
sets, float32 and float64), time per iteration, certified relative gap, test
accuracy.

Run ``python benchmarks/bench_iteration_cost.py`` (``--seeds 0 1`` for a
shorter run, ``--quick`` for a smoke run: seed 0 on 400 images).
"""

import argparse
import importlib
import time
import warnings

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skconvex import ConvexGatedReLUClassifier


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3])
    parser.add_argument("--quick", action="store_true", help="smoke run: seed 0 on 400 images")
    args = parser.parse_args()

    X, y = load_digits(return_X_y=True)
    if args.quick:
        X, y, args.seeds = X[:400], y[:400], [0]
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

    # Every FISTA solve of a fit, counted through the working-set solver's inner solver.
    fista_module = importlib.import_module("skconvex.solvers.fista")
    working_set = importlib.import_module("skconvex.solvers.working_set")
    iterations = []

    def counted(problem, **kwargs):
        result = fista_module.fista(problem, **kwargs)
        iterations.append(result.n_iter)
        return result

    working_set.working_set_solve.__kwdefaults__["inner"] = counted

    print(f"{'seed':>4} {'fit s':>7} {'iterations':>11} {'ms / iter':>10} {'rel. gap':>9} {'accuracy':>9}")
    total_time = total_iter = 0
    for seed in args.seeds:
        iterations.clear()
        model = ConvexGatedReLUClassifier(random_state=seed)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X_train, y_train)
        elapsed = time.perf_counter() - t0
        n_iter = sum(iterations)
        total_time, total_iter = total_time + elapsed, total_iter + n_iter
        gap = model.dual_gap_ / abs(model.objective_)
        print(
            f"{seed:>4} {elapsed:>7.2f} {n_iter:>11d} {1e3 * elapsed / n_iter:>10.2f} "
            f"{gap:>9.1e} {model.score(X_test, y_test):>9.4f}"
        )
    print(f"{'all':>4} {total_time:>7.2f} {total_iter:>11d} {1e3 * total_time / total_iter:>10.2f}")


if __name__ == "__main__":
    main()
