"""Matrix-free Newton steps on multinomial programs: block-Jacobi against diagonal preconditioning.

Multinomial exact ReLU programs take the augmented Lagrangian's matrix-free
Newton path early: their Woodbury systems have ``n_samples * n_classes`` rows
(200 MiB at about 5,100 of them). Its truncated conjugate gradient was
preconditioned by the Hessian's diagonal; it now uses the inverse of each
column's ``d x d`` block (the envelope's and the active cones' curvature,
the datafit's diagonal) where the row Gram fits. This script fits
:class:`~skconvex.ConvexReLUClassifier` (defaults otherwise, after
``StandardScaler``) on the first rows of a stratified shuffle of digits with
both preconditioners in the same run ("diagonal" forces the old path) and
prints the fit time, Newton steps, objective and certified relative gap.

Run ``python benchmarks/bench_matrix_free_newton.py`` (``--quick`` for a
smoke run; ``--rows`` and ``--n-arrangements`` choose the programs, e.g.
``--rows 600 --n-arrangements 100`` for the 600-digit default program, several
minutes per fit). Set ``OPENBLAS_NUM_THREADS`` to control BLAS threads.
"""

import argparse
import os
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import skconvex.solvers.auglag as auglag
from skconvex import ConvexReLUClassifier


def fit(n_rows, n_arrangements, preconditioner, max_iter):
    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, train_size=n_rows, stratify=y, random_state=0)
    scaler = StandardScaler().fit(X_tr)
    est = ConvexReLUClassifier(
        n_arrangements=n_arrangements,
        max_iter=max_iter,
        solver_options={"inner": "newton-cg"},
        random_state=0,
    )
    bytes_ = auglag._preconditioner_bytes
    if preconditioner == "diagonal":
        # The path before the block preconditioner: as if its blocks never fit.
        auglag._preconditioner_bytes = lambda problem: np.inf
    try:
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            est.fit(scaler.transform(X_tr), y_tr)
        seconds = time.perf_counter() - t0
    finally:
        auglag._preconditioner_bytes = bytes_
    return {
        "seconds": seconds,
        "steps": est.n_iter_,
        "objective": est.objective_,
        "gap": est.dual_gap_ / est.objective_,
        "certified": not any(issubclass(w.category, ConvergenceWarning) for w in caught),
        "test": est.score(scaler.transform(X_te), y_te),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one tiny program")
    parser.add_argument("--rows", type=int, nargs="*", default=[150, 300])
    parser.add_argument("--n-arrangements", type=int, default=20)
    parser.add_argument("--max-iter", type=int, default=1000)
    args = parser.parse_args(argv)
    rows = [60] if args.quick else args.rows
    P = 5 if args.quick else args.n_arrangements
    max_iter = 30 if args.quick else args.max_iter
    print(f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}")
    print("| rows | P | preconditioner | fit s | Newton steps | objective | rel. gap | certified | test acc |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n in rows:
        for preconditioner in ("diagonal", "block"):
            r = fit(n, P, preconditioner, max_iter)
            print(
                f"| {n} | {P} | {preconditioner} | {r['seconds']:.2f} | {r['steps']} | {r['objective']:.7f} | "
                f"{r['gap']:.1e} | {'yes' if r['certified'] else 'no'} | {r['test']:.4f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
