"""Batch-normalized two-layer ReLU networks: convex program vs gradient descent vs MLP.

For breast_cancer, wine and digits (70/30 stratified split, ``random_state=0``)
the script fits

* ``ConvexBatchNormReLUClassifier`` (the exact program on whitened, lifted
  data), plain and with ``implicit_regularization=True``;
* the *same* BN network (same width, same objective: mean loss plus
  ``alpha/2 (gamma^2 + beta^2 + a^2)``) trained by full-batch Adam in numpy,
  best of several seeds; test predictions use the frozen training-batch
  statistics, as the convex estimator does;
* scikit-learn's ``MLPClassifier`` of the same width (standardized inputs, no
  BN; its objective is a different one, so only accuracy is compared).

It reports training objectives (the convex optimum over the *sampled*
activation patterns vs gradient descent; the convex value is a global optimum
only when every pattern is in the program, so gradient descent can go below
it), the certified gap of the convex solve (or, for gradient descent, its
relative excess over the convex objective: negative when lower), accuracies
and wall-clock times. Digits is subsampled to 600
training images (the multinomial Newton systems of the solver grow like
``(n_samples * n_classes)^2``).

Run ``python benchmarks/bench_batchnorm.py`` (``--quick`` for a smoke run).
"""

import argparse
import os
import time
import warnings

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from scipy.special import expit, log_softmax, softmax  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_digits, load_wine  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from skconvex import ConvexBatchNormReLUClassifier  # noqa: E402

DATASETS = {"breast_cancer": load_breast_cancer, "wine": load_wine, "digits": load_digits}


def _encode(classes, y):
    codes = np.searchsorted(classes, y)
    if len(classes) == 2:
        return np.where(codes == 1, 1.0, -1.0)[:, None], "logistic"
    return np.eye(len(classes))[codes], "multinomial"


def _loss(kind, out, Y):
    if kind == "logistic":
        return float(np.mean(np.logaddexp(0, -Y * out)))
    return float(-np.mean(np.sum(Y * log_softmax(out, axis=1), axis=1)))


def _bn_forward(X, params, stats=None):
    W, g, be, A, b = params
    H = X @ W.T
    if stats is None:
        stats = (H.mean(axis=0), H.std(axis=0))
    mu, sd = stats
    N = (H - mu) / sd
    P = g * N + be
    return np.maximum(P, 0) @ A + b, (H, N, P, sd, stats)


def train_bn_gd(X, Y, kind, alpha, width, seed, steps, lr=0.01):
    """Full-batch Adam on the BN network's objective; returns (best objective, params)."""
    rng = np.random.default_rng(seed)
    n, d = X.shape
    params = [
        rng.standard_normal((width, d)) / np.sqrt(d),
        np.ones(width),
        np.zeros(width),
        rng.standard_normal((width, Y.shape[1])) / np.sqrt(width),
        np.zeros(Y.shape[1]),
    ]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    best = (np.inf, None)
    for t in range(1, steps + 1):
        W, g, be, A, b = params
        out, (H, N, P, sd, _) = _bn_forward(X, params)
        value = _loss(kind, out, Y) + 0.5 * alpha * (g @ g + be @ be + np.sum(A**2))
        if value < best[0]:
            best = (value, [p.copy() for p in params])
        dout = (-Y * expit(-Y * out) if kind == "logistic" else softmax(out, axis=1) - Y) / n
        R = np.maximum(P, 0)
        dP = (dout @ A.T) * (P > 0)
        dN = dP * g
        dH = dN / sd - N * np.mean(dN * N, axis=0) / sd
        dH -= dH.mean(axis=0)
        grads = [
            dH.T @ X,
            np.sum(dP * N, axis=0) + alpha * g,
            dP.sum(axis=0) + alpha * be,
            R.T @ dout + alpha * A,
            dout.sum(axis=0),
        ]
        for i, gr in enumerate(grads):
            m[i] = 0.9 * m[i] + 0.1 * gr
            v[i] = 0.999 * v[i] + 0.001 * gr * gr
            params[i] = params[i] - lr * (m[i] / (1 - 0.9**t)) / (np.sqrt(v[i] / (1 - 0.999**t)) + 1e-12)
    return best


def _accuracy(classes, out, y):
    pred = (out[:, 0] > 0).astype(int) if out.shape[1] == 1 else np.argmax(out, axis=1)
    return float(np.mean(classes[pred] == y))


def run(quick=False, datasets=None, n_arrangements=200, out=print):
    rows = []
    steps = 100 if quick else 3000
    seeds = 1 if quick else 3
    for name in datasets or DATASETS:
        X, y = DATASETS[name](return_X_y=True)
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
        cap = 60 if quick else (600 if name == "digits" else len(Xtr))
        Xtr, ytr = Xtr[:cap], ytr[:cap]
        scaler = StandardScaler().fit(Xtr)
        Str, Ste = scaler.transform(Xtr), scaler.transform(Xte)
        classes = np.unique(ytr)
        Y, kind = _encode(classes, ytr)
        for implicit in (False, True):
            est = ConvexBatchNormReLUClassifier(
                n_arrangements=20 if quick else n_arrangements,
                implicit_regularization=implicit,
                random_state=0,
            )
            t0 = time.perf_counter()
            # Standardized inputs for every model: the plain BN program is
            # invariant to them, the implicit regularizer (like gradient
            # descent) is not.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                est.fit(Str, ytr)
            rows.append(
                dict(
                    dataset=name,
                    method="convex BN" + (" (implicit reg.)" if implicit else ""),
                    n_train=len(Xtr),
                    width=est.n_neurons_,
                    objective=est.objective_,
                    rel_gap=est.dual_gap_ / est.objective_,
                    train_acc=est.score(Str, ytr),
                    test_acc=est.score(Ste, yte),
                    seconds=time.perf_counter() - t0,
                )
            )
            if not implicit:
                width, alpha, plain = max(est.n_neurons_, 2), est.alpha, rows[-1]
        t0 = time.perf_counter()
        value, params = min(
            (train_bn_gd(Str, Y, kind, alpha, width, seed, steps) for seed in range(seeds)),
            key=lambda r: r[0],
        )
        _, (_, _, _, _, stats) = _bn_forward(Str, params)
        rows.append(
            dict(
                dataset=name,
                method=f"GD BN (Adam, {steps} steps, best of {seeds})",
                n_train=len(Xtr),
                width=width,
                objective=value,
                rel_gap=value / plain["objective"] - 1,
                train_acc=_accuracy(classes, _bn_forward(Str, params, stats)[0], ytr),
                test_acc=_accuracy(classes, _bn_forward(Ste, params, stats)[0], yte),
                seconds=time.perf_counter() - t0,
            )
        )
        t0 = time.perf_counter()
        mlp = MLPClassifier(hidden_layer_sizes=(width,), alpha=alpha, max_iter=300 if quick else 3000, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            mlp.fit(Str, ytr)
        rows.append(
            dict(
                dataset=name,
                method="MLPClassifier (no BN)",
                n_train=len(Xtr),
                width=width,
                objective=np.nan,
                rel_gap=np.nan,
                train_acc=mlp.score(Str, ytr),
                test_acc=mlp.score(Ste, yte),
                seconds=time.perf_counter() - t0,
            )
        )
    out("| dataset | method | n_train | width | objective | rel. gap / GD excess | train acc | test acc | time (s) |")
    out("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        out(
            f"| {r['dataset']} | {r['method']} | {r['n_train']} | {r['width']} | {r['objective']:.6g} | "
            f"{r['rel_gap']:.2e} | {r['train_acc']:.4f} | {r['test_acc']:.4f} | {r['seconds']:.2f} |"
        )
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny subsets, for a smoke run")
    parser.add_argument("--datasets", nargs="*", choices=sorted(DATASETS), default=None)
    parser.add_argument("--n-arrangements", type=int, default=200)
    args = parser.parse_args()
    run(quick=args.quick, datasets=args.datasets, n_arrangements=args.n_arrangements)
