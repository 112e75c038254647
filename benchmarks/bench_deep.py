"""Deep convex networks against a two-hidden-layer MLP and the two-layer convex model.

For each dataset (standardized, 70/30 stratified split, ``random_state=0``):

* ``spirals``: two interleaved spirals (generated, 1.5 turns, Gaussian noise);
* ``wine`` and ``breast_cancer`` from scikit-learn;

the table gives the training and test accuracy and the fit time of

* ``MLPClassifier(hidden_layer_sizes=(h, h))`` (``h = 50``, ``max_iter=2000``);
* :class:`~skconvex.ConvexGatedReLUClassifier` (the two-layer convex network,
  defaults);
* :class:`~skconvex.PathRegularizedReLUClassifier` (parallel three-layer ReLU
  sub-networks with path regularization, the exact program, ``depth=3``);
* :class:`~skconvex.ConvexThreeLayerReLUClassifier` with ``gated=True``
  (parallel three-layer gated sub-networks with weight decay).

The exact :class:`~skconvex.ConvexThreeLayerReLUClassifier` (``gated=False``)
is left out of the table: on the 210 spiral training points (unstandardized, a
separate run) one fit with its default ``n_arrangements=(10, 16)`` took 325 s
(test accuracy 0.90); see ``benchmarks/README.md``.

Run ``python benchmarks/bench_deep.py`` (``--quick`` for a smoke run on
subsets, under 30 s). Set ``OPENBLAS_NUM_THREADS`` to control BLAS threads.
"""

import argparse
import os
import time
import warnings

import numpy as np
from sklearn import datasets
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

from skconvex import (
    ConvexGatedReLUClassifier,
    ConvexThreeLayerReLUClassifier,
    PathRegularizedReLUClassifier,
)


def make_spirals(n_samples, *, noise=0.1, turns=1.5, random_state=0):
    """Two interleaved spirals in the plane, labels 0 and 1."""
    rng = np.random.default_rng(random_state)
    t = np.sqrt(rng.uniform(0, 1, n_samples)) * turns * 2 * np.pi
    labels = rng.integers(0, 2, n_samples)
    radius = 3 * t / (turns * 2 * np.pi)
    angle = t + np.pi * labels
    X = np.c_[radius * np.cos(angle), radius * np.sin(angle)]
    return X + noise * rng.standard_normal(X.shape), labels


def load(name, quick):
    if name == "spirals":
        X, y = make_spirals(120 if quick else 300)
    elif name == "wine":
        X, y = datasets.load_wine(return_X_y=True)
    else:
        X, y = datasets.load_breast_cancer(return_X_y=True)
    if quick and name != "spirals":
        keep = np.random.default_rng(0).permutation(len(y))[:120]
        X, y = X[keep], y[keep]
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    scaler = StandardScaler().fit(X_tr)
    return scaler.transform(X_tr), scaler.transform(X_te), y_tr, y_te


def models(name, quick):
    h = 50
    # Spirals need many sampled sub-networks; the tabular sets have more
    # features (larger Newton blocks) and fewer are enough.
    n_path = (30 if name == "spirals" else 15) if quick else (300 if name == "spirals" else 100)
    return [
        ("MLP (h, h)", MLPClassifier(hidden_layer_sizes=(h, h), max_iter=2000, random_state=0)),
        ("convex 2-layer (gated)", ConvexGatedReLUClassifier(random_state=0)),
        (
            "path-reg. 3-layer (exact)",
            PathRegularizedReLUClassifier(
                alpha=1e-3, n_arrangements=n_path, random_state=0
            ),
        ),
        (
            "3-layer weight decay (gated)",
            ConvexThreeLayerReLUClassifier(
                alpha=1e-3, n_arrangements=(4, 8) if quick else (20, 40), gated=True, random_state=0
            ),
        ),
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small subsets (smoke run)")
    args = parser.parse_args(argv)
    print(f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}")
    header = f"{'dataset':<14} {'model':<30} {'train acc':>9} {'test acc':>9} {'fit [s]':>8} {'sub-nets':>8}"
    print(header)
    print("-" * len(header))
    for name in ("spirals", "wine", "breast_cancer"):
        X_tr, X_te, y_tr, y_te = load(name, args.quick)
        for label, est in models(name, args.quick):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                start = time.perf_counter()
                est.fit(X_tr, y_tr)
                elapsed = time.perf_counter() - start
            units = getattr(est, "n_subnetworks_", None)
            print(
                f"{name:<14} {label:<30} {est.score(X_tr, y_tr):>9.3f} "
                f"{est.score(X_te, y_te):>9.3f} {elapsed:>8.2f} "
                f"{'-' if units is None else units:>8}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
