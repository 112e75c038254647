"""Multi-output Newton end-game of the gated classifier on digits.

``ConvexGatedReLUClassifier(penalty=...)`` (defaults otherwise) on the
standardized digits split of ``python -m skconvex demo`` (1347 training rows,
64 features, 10 classes: a multinomial program with 10 outputs per block).
"before" runs the same fit with the Newton end-games restricted to
single-output programs, as they were before multi-output support (FISTA then
closes the gap alone): no Newton on the support of Frobenius blocks of
several outputs, and no Newton on the factors of nuclear blocks
(:mod:`skconvex.solvers.factored_newton`). "after" is the current code. Both
run in the same process, alternately, so the ratio is meaningful on a noisy
machine.

``--tols`` sets the estimator's ``tol`` (default: its default and 1e-6).
Columns: fit time (best of ``--repeat``), FISTA iterations (``n_iter_``),
certified relative gap, objective, test accuracy.

Run ``python benchmarks/bench_gated_multioutput.py`` (``--repeat 1`` for a
shorter run; ``--quick`` is a smoke run on 300 rows, Frobenius only).
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skconvex import ConvexGatedReLUClassifier
from skconvex.solvers import support_newton as sn

_applicable = sn._applicable
_factored_applies = sn._factored.applies_to


def _single_output_only(problem):
    """The rule before multi-output support: one output only."""
    return _applicable(problem) and problem.operator.coef_shape[2] == 1


def _never(problem):
    return False


def fit(penalty, tol, X_train, y_train, X_test, y_test, before):
    sn._applicable = _single_output_only if before else _applicable
    sn._factored.applies_to = _never if before else _factored_applies
    try:
        model = ConvexGatedReLUClassifier(penalty=penalty, tol=tol, random_state=0)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X_train, y_train)
        elapsed = time.perf_counter() - t0
    finally:
        sn._applicable = _applicable
        sn._factored.applies_to = _factored_applies
    rel_gap = model.dual_gap_ / abs(model.objective_)
    return elapsed, model.n_iter_, rel_gap, model.objective_, model.score(X_test, y_test)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--penalties", nargs="+", default=["frobenius", "nuclear"])
    parser.add_argument("--tols", nargs="+", type=float, default=[ConvexGatedReLUClassifier().tol, 1e-6])
    parser.add_argument("--quick", action="store_true", help="smoke run: 300 rows, one fit each")
    args = parser.parse_args()
    X, y = load_digits(return_X_y=True)
    if args.quick:
        X, y = X[:400], y[:400]
        args.repeat, args.penalties, args.tols = 1, ["frobenius"], args.tols[:1]
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    print(f"digits: {X_train.shape[0]} training rows, {X_train.shape[1]} features, {len(np.unique(y))} classes")
    header = f"{'penalty':<10} {'tol':>7} {'variant':<7} {'fit s':>7} {'n_iter':>7} {'rel gap':>9} {'objective':>12} {'test acc':>8}"
    print(header)
    print("-" * len(header))
    for penalty, tol in ((p, t) for p in args.penalties for t in args.tols):
        best = {}
        for _ in range(args.repeat):
            for before in (True, False):
                row = fit(penalty, tol, X_train, y_train, X_test, y_test, before)
                if before not in best or row[0] < best[before][0]:
                    best[before] = row
        for before in (True, False):
            t, n_iter, gap, obj, acc = best[before]
            name = "before" if before else "after"
            print(f"{penalty:<10} {tol:7.0e} {name:<7} {t:7.2f} {n_iter:7d} {gap:9.1e} {obj:12.6f} {acc:8.3f}")
        print(f"{penalty:<10} {tol:7.0e} speed-up {best[True][0] / best[False][0]:.2f}x")


if __name__ == "__main__":
    main()
