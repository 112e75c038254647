"""Gaussian against adaptive arrangements, next to the MLP, in the same run.

For ``bench_defaults.py``'s eleven datasets, the demo's digits split and the
spirals of the examples (300 points, 1.5 turns, noise 0.1), every model is
fitted on the same train/test splits after a ``StandardScaler``:
``MLPClassifier()`` / ``MLPRegressor()`` with their defaults, the gated
estimator with its defaults (``arrangement="gaussian"``), and the same with
``arrangement="adaptive"``. The table prints the mean test accuracy
(classification) or R^2 (regression), the mean fit time, the number of
patterns and the remaining dual violation; the summary gives each convex
model's mean and worst score margin over the MLP and its total fit time
against the MLP's.

Run ``python benchmarks/bench_adaptive.py`` (``--quick`` for a smoke run,
``--datasets spirals,digits-demo`` for a subset, ``--exact`` to add the exact
``ConvexReLUClassifier`` on spirals).
"""

import argparse
import importlib.util
import pathlib
import time
import warnings

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit, train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skconvex import (
    ConvexGatedReLUClassifier,
    ConvexGatedReLURegressor,
    ConvexReLUClassifier,
)


def _bench_defaults():
    path = pathlib.Path(__file__).with_name("bench_defaults.py")
    spec = importlib.util.spec_from_file_location("bench_defaults", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_spirals(n_samples, *, noise=0.1, turns=1.5, random_state=0):
    """The two interleaved spirals of ``examples/plot_path_regularized_spirals.py``."""
    rng = np.random.default_rng(random_state)
    t = np.sqrt(rng.uniform(0, 1, n_samples)) * turns * 2 * np.pi
    labels = rng.integers(0, 2, n_samples)
    radius = 3 * t / (turns * 2 * np.pi)
    angle = t + np.pi * labels
    X = np.c_[radius * np.cos(angle), radius * np.sin(angle)]
    return X + noise * rng.standard_normal(X.shape), labels


def evaluate(estimator, X, y, splits):
    scores, times, patterns, violations = [], [], [], []
    for train, test in splits:
        model = make_pipeline(StandardScaler(), clone(estimator))
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X[train], y[train])
        times.append(time.perf_counter() - t0)
        scores.append(model.score(X[test], y[test]))
        patterns.append(getattr(model[-1], "n_patterns_", np.nan))
        violations.append(getattr(model[-1], "max_violation_", np.nan))
    return {
        "score": float(np.mean(scores)),
        "time": float(np.mean(times)),
        "patterns": float(np.mean(patterns)),
        "violation": float(np.max(violations)),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="three small datasets, one split")
    parser.add_argument("--n-splits", type=int, default=3)
    parser.add_argument("--datasets", default=None, help="comma-separated subset")
    parser.add_argument("--exact", action="store_true", help="add ConvexReLUClassifier on spirals")
    args = parser.parse_args()
    n_splits = 1 if args.quick else args.n_splits

    clf_data, reg_data = _bench_defaults().load(args.quick)
    width = {}
    if args.quick:
        # A smoke run: two small datasets, few gates.
        clf_data, reg_data = {"iris": clf_data["iris"]}, reg_data
        width = {"n_arrangements": 20}
    X_digits, y_digits = _bench_defaults().load(False)[0]["digits"]
    extra_splits = {}
    if not args.quick:
        clf_data = {**clf_data, "spirals": make_spirals(300)}
        # The demo's split (python -m skconvex demo).
        extra_splits["digits-demo"] = (X_digits, y_digits)
    wanted = None if args.datasets is None else set(args.datasets.split(","))

    rows, margins, times = [], {}, {}
    tasks = [("classifier", name, Xy) for name, Xy in clf_data.items()]
    tasks += [("classifier", name, Xy) for name, Xy in extra_splits.items()]
    tasks += [("regressor", name, Xy) for name, Xy in reg_data.items()]
    for kind, name, (X, y) in tasks:
        if wanted is not None and name not in wanted:
            continue
        if name == "digits-demo":
            train, test = train_test_split(
                np.arange(len(y)), test_size=0.25, stratify=y, random_state=0
            )
            splits = [(train, test)]
        elif kind == "classifier":
            cv = StratifiedShuffleSplit(n_splits, test_size=0.25, random_state=0)
            splits = list(cv.split(X, y))
        else:
            splits = list(ShuffleSplit(n_splits, test_size=0.25, random_state=0).split(X, y))
        if kind == "classifier":
            models = {
                "MLP default": MLPClassifier(random_state=0),
                "gated gaussian": ConvexGatedReLUClassifier(random_state=0, **width),
                "gated adaptive": ConvexGatedReLUClassifier(
                    arrangement="adaptive", random_state=0, **width
                ),
            }
            if args.exact and name == "spirals":
                models["exact gaussian"] = ConvexReLUClassifier(random_state=0)
                models["exact adaptive"] = ConvexReLUClassifier(arrangement="adaptive", random_state=0)
        else:
            models = {
                "MLP default": MLPRegressor(random_state=0),
                "gated gaussian": ConvexGatedReLURegressor(random_state=0, **width),
                "gated adaptive": ConvexGatedReLURegressor(
                    arrangement="adaptive", random_state=0, **width
                ),
            }
        results = {label: evaluate(est, X, y, splits) for label, est in models.items()}
        base = results["MLP default"]
        for label, r in results.items():
            rows.append((name, label, r))
            if label != "MLP default":
                margins.setdefault(label, []).append((name, r["score"] - base["score"]))
                times.setdefault(label, [0.0, 0.0])
                times[label][0] += r["time"]
                times[label][1] += base["time"]
        print(f"done {name}", flush=True)

    print(f"\n{'dataset':<16}{'model':<17}{'score':>8}{'fit s':>9}{'patterns':>10}{'violation':>11}")
    for name, label, r in rows:
        pat = "" if np.isnan(r["patterns"]) else f"{r['patterns']:.0f}"
        vio = "" if np.isnan(r["violation"]) else f"{r['violation']:.3f}"
        print(f"{name:<16}{label:<17}{r['score']:8.4f}{r['time']:9.3f}{pat:>10}{vio:>11}")
    print("\nscore margin over the MLP default (benchmark datasets: bench_defaults.py's eleven):")
    for label, m in margins.items():
        eleven = [v for n, v in m if n not in ("spirals", "digits-demo")]
        worst = min(m, key=lambda t: t[1])
        mean = f"{np.mean(eleven):+.4f}" if eleven else "n/a"
        print(
            f"{label:<17} mean over the eleven {mean}  worst {worst[1]:+.4f} ({worst[0]})  "
            f"fit time {times[label][0]:.1f} s vs MLP {times[label][1]:.1f} s"
        )


if __name__ == "__main__":
    main()
