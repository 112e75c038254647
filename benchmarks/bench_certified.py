"""Certified global optima: lower bound, upper bound and gap of every method, against gradient training.

For each data set every method fits the same architecture (a two-layer ReLU
network with hidden biases, neurons shared by all outputs, squared loss, the
package's objective: mean loss + alpha * weight decay, alpha times std(y) for
regression) and reports

* ``lower``: a certified lower bound on the optimal training objective,
* ``upper``: the objective of the network it returns,
* ``rel. gap``: ``(upper - lower) / upper``,
* ``scope``: what the lower bound bounds -- ``all networks`` (every cell of
  the arrangement: the unsampled problem) or ``sampled cells`` (networks
  whose neurons use the sampled activation patterns),
* the fit time,

and the best objective of 10 runs of gradient training (about 8000 steps of
minibatch Adam with a cosine schedule, then 2000 full-batch steps) of the same
architecture (as wide as the widest convex solution, at least 20 neurons)
from random initializations. With
``scope = sampled cells`` gradient training may legitimately go *below*
``lower`` (its neurons are not restricted to the sampled cells).

Data sets: ``iris`` (150 x 4, three classes as one-hot targets),
``diabetes`` (442 x 10, one target) and ``synthetic`` (40 x 2 inputs, two
targets: inputs of rank 3 with the bias, so every cell is enumerated and the
bounds hold for the unsampled problem). Target: a certified relative gap of
at most 1e-3 on iris and synthetic within 60 s each on 2 cores.

Run ``python benchmarks/bench_certified.py`` (``--quick`` for a smoke run).
"""

import argparse
import platform
import time
import warnings

import numpy as np
from sklearn.datasets import load_diabetes, load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_info

from skconvex import (
    CopositiveNetClassifier,
    CopositiveNetRegressor,
    CuttingPlaneReLUClassifier,
    CuttingPlaneReLURegressor,
)


def datasets(quick):
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    Xd, yd = load_diabetes(return_X_y=True)
    Xd = StandardScaler().fit_transform(Xd)
    rng = np.random.default_rng(0)
    n = 15 if quick else 40
    Xs = rng.standard_normal((n, 2))
    Ys = np.c_[np.sin(2 * Xs[:, 0]) + 0.3 * Xs[:, 1], np.cos(Xs[:, 1]) - 0.5 * Xs[:, 0]]
    Ys += 0.05 * rng.standard_normal(Ys.shape)
    if quick:
        X, y = X[::5], y[::5]
        Xd, yd = Xd[::8], yd[::8]
    return [("iris", X, y, "classification"), ("diabetes", Xd, yd, "regression"), ("synthetic", Xs, Ys, "regression")]


def methods(name, kind, quick):
    """(label, estimator, scope) for a data set."""
    alpha = 1e-3
    cells = 6 if quick else 50
    if name == "synthetic":
        return [
            ("CopositiveNet sdp", CopositiveNetRegressor(alpha, method="sdp", arrangement="exhaustive", n_arrangements=5000), "all networks"),
            ("CopositiveNet frank_wolfe", CopositiveNetRegressor(alpha, method="frank_wolfe", arrangement="exhaustive", n_arrangements=5000, tol=1e-4), "all networks"),
            ("CuttingPlaneReLU exhaustive", CuttingPlaneReLURegressor(alpha, oracle="exhaustive", max_faces=10**6, tol=1e-4), "all networks"),
        ]
    if kind == "classification":
        return [
            ("CopositiveNet sdp", CopositiveNetClassifier(alpha, method="sdp", n_arrangements=cells, random_state=0), "sampled cells"),
            ("CopositiveNet frank_wolfe", CopositiveNetClassifier(alpha, method="frank_wolfe", n_arrangements=cells, random_state=0, tol=1e-4), "sampled cells"),
            ("CuttingPlaneReLU sampled", CuttingPlaneReLUClassifier(alpha, loss="squared_error", oracle="sampled", n_arrangements=cells, random_state=0, tol=1e-4), "sampled cells"),
        ]
    return [
        ("CopositiveNet sdp", CopositiveNetRegressor(alpha, method="sdp", n_arrangements=cells, random_state=0), "sampled cells"),
        ("CopositiveNet frank_wolfe", CopositiveNetRegressor(alpha, method="frank_wolfe", n_arrangements=cells, random_state=0, tol=1e-4), "sampled cells"),
        ("CuttingPlaneReLU sampled", CuttingPlaneReLURegressor(alpha, oracle="sampled", n_arrangements=cells, random_state=0, tol=1e-4), "sampled cells"),
    ]


def encode(y, kind):
    if kind == "classification":
        return np.eye(len(np.unique(y)))[np.searchsorted(np.unique(y), y)]
    return np.asarray(y, dtype=np.float64).reshape(len(y), -1)


def gradient_training(X, Y, alpha, width, seed, epochs, batch=32, lr=1e-2, full_steps=2000):
    """Objective reached by Adam on f(x) = sum_j (x~^T u_j)_+ v_j^T + b (same objective as the convex methods)."""
    rng = np.random.default_rng(seed)
    n, d = X.shape
    Xa = np.c_[X, np.ones(n)]
    C = Y.shape[1]
    params = [rng.standard_normal((d + 1, width)) * np.sqrt(2 / (d + 1)), rng.standard_normal((width, C)) / np.sqrt(width), Y.mean(axis=0)]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]

    def grads(rows):
        U, V, b = params
        H = np.maximum(Xa[rows] @ U, 0)
        G = (H @ V + b - Y[rows]) / len(rows)
        return [Xa[rows].T @ ((G @ V.T) * (H > 0)) + alpha * U, H.T @ G + alpha * V, G.sum(axis=0)]

    def step(g, t, rate):
        for i in range(3):
            m[i] = 0.9 * m[i] + 0.1 * g[i]
            v[i] = 0.999 * v[i] + 0.001 * g[i] ** 2
            params[i] -= rate * (m[i] / (1 - 0.9**t)) / (np.sqrt(v[i] / (1 - 0.999**t)) + 1e-12)

    t = 0
    for epoch in range(epochs):
        rate = lr * 0.5 * (1 + np.cos(np.pi * epoch / epochs))
        for rows in np.array_split(rng.permutation(n), max(1, n // batch)):
            t += 1
            step(grads(rows), t, rate)
    # A full-batch phase polishes the minibatch solution.
    everything = np.arange(n)
    for k in range(full_steps):
        t += 1
        step(grads(everything), t, 1e-3 * (1 - k / full_steps) + 1e-5)
    U, V, b = params
    R = np.maximum(Xa @ U, 0) @ V + b - Y
    return 0.5 * np.mean(np.sum(R**2, axis=1)) + 0.5 * alpha * (np.sum(U**2) + np.sum(V**2))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data, few runs (smoke test)")
    args = parser.parse_args(argv)
    blas = [(i.get("internal_api"), i.get("num_threads")) for i in threadpool_info()]
    print(f"{platform.processor() or platform.machine()}, python {platform.python_version()}, BLAS {blas}")
    print(
        f"\n{'data':<10}{'method':<29}{'lower':>14}{'upper':>14}{'rel. gap':>10}{'time (s)':>10}"
        f"{'neurons':>9}  scope"
    )
    rows = []
    for name, X, y, kind in datasets(args.quick):
        Y = encode(y, kind)
        scale = 1.0 if kind == "classification" else float(np.sqrt(np.mean(np.var(Y, axis=0))))
        best_neurons = 1
        for label, est, scope in methods(name, kind, args.quick):
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                est.fit(X, y)
            elapsed = time.perf_counter() - t0
            lower = getattr(est, "lower_bound_")
            upper = est.objective_
            gap = (upper - lower) / upper
            best_neurons = max(best_neurons, est.n_neurons_)
            rows.append((name, label, lower, upper, gap, elapsed))
            print(f"{name:<10}{label:<29}{lower:>14.8f}{upper:>14.8f}{gap:>10.1e}{elapsed:>10.2f}{est.n_neurons_:>9d}  {scope}", flush=True)
        alpha = 1e-3 * scale
        width = max(20, best_neurons)
        n_runs = 2 if args.quick else 10
        # About 8000 minibatch steps per run (fewer for --quick).
        epochs = max(10, (100 if args.quick else 8000) // max(1, len(Y) // 32))
        t0 = time.perf_counter()
        full_steps = 100 if args.quick else 2000
        trained = [
            gradient_training(X, Y, alpha, width, seed, epochs=epochs, full_steps=full_steps)
            for seed in range(n_runs)
        ]
        elapsed = time.perf_counter() - t0
        print(
            f"{name:<10}{f'Adam, best of {n_runs} (width {width})':<29}{'':>14}{min(trained):>14.8f}"
            f"{'':>10}{elapsed:>10.2f}{'':>9}  (median {np.median(trained):.8f})",
            flush=True,
        )
    print()
    for name in ("iris", "synthetic"):
        best = min((r for r in rows if r[0] == name), key=lambda r: r[4])
        ok = best[4] <= 1e-3 and best[5] <= 60
        print(f"target (gap <= 1e-3 within 60 s) on {name}: {'met' if ok else 'NOT met'} by {best[1]} "
              f"(gap {best[4]:.1e}, {best[5]:.1f} s)")
    return rows


if __name__ == "__main__":
    main()
