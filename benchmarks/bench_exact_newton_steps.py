"""Exact nested-cone and CNN fits: time, Newton steps and time per step.

The exact programs whose Newton systems have large blocks: the
path-regularized network (:class:`~skconvex.PathRegularizedReLUClassifier`,
exact, ``alpha=1e-3``) on wine and on the spirals of ``bench_deep.py``, the
exact :class:`~skconvex.ConvexThreeLayerReLUClassifier` (defaults) on the
spirals, and the exact :class:`~skconvex.ConvexCNNClassifier` (8 patterns,
squared loss, global average pooling; 300 digits) as in ``bench_cnn.py``.
The iteration counts move with rounding from one version of the code to the
next, so the time per Newton step is the column to compare between versions:
run the script under two checkouts (``PYTHONPATH=/path/to/other/checkout``)
one after the other on the same machine.

Run ``python benchmarks/bench_exact_newton_steps.py`` (``--quick`` for a smoke
run of a few seconds; ``--seeds 1 2 3`` runs instead the nested-cone fits with
those gate draws, to count how many certify). Set ``OPENBLAS_NUM_THREADS`` to
control BLAS threads.
"""

import argparse
import os
import time
import warnings

from bench_deep import load
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

import skconvex
from skconvex import (
    ConvexCNNClassifier,
    ConvexThreeLayerReLUClassifier,
    PathRegularizedReLUClassifier,
)


def nested_cases(quick, seed):
    suffix = f", seed {seed}" if seed else ""
    for name in ("wine", "spirals"):
        n_sub = 15 if quick else (300 if name == "spirals" else 100)
        yield f"path-reg. exact, {name}{suffix}", PathRegularizedReLUClassifier(
            alpha=1e-3, n_arrangements=n_sub, random_state=seed
        ), load(name, quick)
    yield f"three-layer exact, spirals{suffix}", ConvexThreeLayerReLUClassifier(
        n_arrangements=(2, 4) if quick else (10, 16), random_state=seed
    ), load("spirals", quick)


def cases(quick, seeds=None):
    if seeds:
        # Certification over gate draws: the nested programs only.
        for seed in seeds:
            yield from nested_cases(quick, seed)
        return
    yield from nested_cases(quick, 0)
    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X / 16, y, test_size=0.25, stratify=y, random_state=0)
    n = 40 if quick else 300
    yield f"CNN exact, global avg, {n} images", ConvexCNNClassifier(
        image_shape=(8, 8), kernel_size=3, alpha=1e-3, n_arrangements=8, loss="squared_error", random_state=0
    ), (X_tr[:n], X_te, y_tr[:n], y_te)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small subsets (smoke run)")
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        help="instead: the nested-cone fits (path-regularized and three-layer) with these gate draws",
    )
    args = parser.parse_args(argv)
    print(f"skconvex from {os.path.dirname(skconvex.__file__)}")
    print(f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}")
    print(f"{'fit':<34}{'time [s]':>9}{'steps':>7}{'s/step':>8}{'test acc':>9}{'rel. gap':>10}  certified  objective")
    for label, est, (X_tr, X_te, y_tr, y_te) in cases(args.quick, args.seeds):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            t0 = time.perf_counter()
            est.fit(X_tr, y_tr)
            elapsed = time.perf_counter() - t0
        certified = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
        print(
            f"{label:<34}{elapsed:9.2f}{est.n_iter_:7d}{elapsed / est.n_iter_:8.3f}"
            f"{est.score(X_te, y_te):9.4f}{est.dual_gap_ / est.objective_:10.1e}  {certified!s:<9}  {est.objective_:.8g}",
            flush=True,
        )


if __name__ == "__main__":
    main()
