"""Tight-tol fits of ConvexReLUClassifier on scikit-learn's weight-check data (issue 18).

The data of ``check_sample_weight_equivalence_on_dense_data`` (15 samples, 30
features, 3 classes, integer weights): one fit on the repeated rows, one on
the weighted rows, for each ``tol``. Prints the certified relative gaps,
Newton steps, seconds, whether a ConvergenceWarning was raised, and how far
apart the two fits' probabilities are (the check asks for 1e-7).

Run: ``OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/bench_tight_tol_weights.py``
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import shuffle

from skconvex import ConvexReLUClassifier


def data():
    # As in sklearn.utils.estimator_checks._check_sample_weight_equivalence.
    rng = np.random.RandomState(42)
    X = rng.rand(15, 30)
    y = rng.randint(0, 3, size=15)
    sw = rng.randint(0, 5, size=15)
    Xr, yr = X.repeat(sw, axis=0), y.repeat(sw)
    Xw, yw, sw = shuffle(X, y, sw, random_state=0)
    return X, (Xr, yr, None), (Xw, yw, sw)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one tol (1e-6) instead of four")
    args = parser.parse_args()
    tols = (1e-6,) if args.quick else (1e-4, 1e-6, 1e-8, 1e-10)
    X, repeated, weighted = data()
    print(f"{'tol':>7} {'fit':>9} {'rel. gap':>9} {'steps':>6} {'s':>6} warning")
    for tol in tols:
        proba = []
        for name, (Xf, yf, sw) in (("repeated", repeated), ("weighted", weighted)):
            t0 = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ConvergenceWarning)
                est = ConvexReLUClassifier(tol=tol, random_state=0).fit(Xf, yf, sample_weight=sw)
            seconds = time.perf_counter() - t0
            warned = any(issubclass(w.category, ConvergenceWarning) for w in caught)
            rel = est.dual_gap_ / est.objective_
            print(f"{tol:7.0e} {name:>9} {rel:9.2e} {est.n_iter_:6d} {seconds:6.2f} {warned}")
            proba.append(est.predict_proba(X))
        print(f"{tol:7.0e} max |proba difference| {np.abs(proba[0] - proba[1]).max():.2e}")


if __name__ == "__main__":
    main()
