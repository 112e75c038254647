"""Convex WGAN (closed form) vs gradient descent-ascent on the same game, on digits.

The game: a linear generator :math:`g = \\mu + W^\\top z` and a quadratic-activation
discriminator with weight decay, whose hidden layer collapses to a symmetric
matrix :math:`M` with penalty :math:`\\beta_d\\|M\\|_*` (unit hidden weights,
:math:`\\sum_j|v_j|`):

    min_W max_M  tr(W^T W) + <M, C_x - W^T W> - beta_d ||M||_*.

``ConvexWGAN`` solves it in closed form (direct fit at 8x8 and progressive
2x2 -> 4x4 -> 8x8); the baseline runs simultaneous gradient descent-ascent
(proximal on the nuclear norm) from a small random generator, as the
"Progressive GDA" baseline of ProCoGAN does with Adam. Reported: generator
energy ``tr(W^T W)``, the constraint gap ``||C_x - W^T W||_2 - beta_d`` (0 at
the solution), the Fréchet distance between Gaussian fits of held-out digits
and the generator, and time.

Run ``python benchmarks/bench_gan.py`` (``--quick`` for a smoke run).
"""

import argparse
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from skconvex import ConvexWGAN  # noqa: E402
from skconvex.models.gan import frechet_distance  # noqa: E402


def gda(C, beta, steps, lr_g, lr_d, seed=0):
    """Simultaneous proximal gradient descent-ascent; returns the final and best-gap generators."""
    rng = np.random.default_rng(seed)
    d = len(C)
    W = 0.1 * rng.standard_normal((d, d))
    M = np.zeros((d, d))
    best = (np.inf, W.T @ W)
    for _ in range(steps):
        S = W.T @ W
        gap = np.linalg.norm(C - S, 2) - beta
        if gap < best[0]:
            best = (gap, S)
        W, M = W - lr_g * (2 * W - 2 * W @ M), M + lr_d * (C - S)
        lam, V = np.linalg.eigh(M)
        lam = np.sign(lam) * np.maximum(np.abs(lam) - lr_d * beta, 0)
        M = (V * lam) @ V.T
    return W.T @ W, best[1]


def run(quick=False, out=print):
    X, _ = load_digits(return_X_y=True)
    X_train, X_test = train_test_split(X, test_size=0.3, random_state=0)
    mean, C = X_train.mean(axis=0), np.cov(X_train.T, bias=True)
    test_mean, test_cov = X_test.mean(axis=0), np.cov(X_test.T, bias=True)
    rows = []

    def record(method, S, seconds, beta):
        rows.append(
            dict(
                method=method,
                energy=float(np.trace(S)),
                gap=float(np.linalg.norm(C - S, 2) - beta),
                fd=frechet_distance(test_mean, test_cov, mean, S),
                seconds=seconds,
            )
        )

    for k in (10, 20):
        t0 = time.perf_counter()
        gan = ConvexWGAN(n_components=k).fit(X_train)
        seconds = time.perf_counter() - t0
        record(f"ConvexWGAN closed form, rank {k}", gan.generated_moments()[1], seconds, gan.beta_d_)
    t0 = time.perf_counter()
    prog = ConvexWGAN(progressive=True, image_shape=(8, 8), stage_components=[3, 8, 20]).fit(X_train)
    record("ConvexWGAN progressive 2-4-8, ranks 3/8/20", prog.generated_moments()[1], time.perf_counter() - t0, prog.beta_d_[-1])
    beta = gan.beta_d_  # rank 20
    steps = 300 if quick else 20000
    top = np.linalg.eigvalsh(C)[-1]
    for lr_d in (0.2 / top, 1.0 / top):
        t0 = time.perf_counter()
        final, best = gda(C, beta, steps, lr_g=0.01, lr_d=lr_d)
        seconds = time.perf_counter() - t0
        record(f"GDA {steps} steps, lr_d={lr_d:.1e} (final)", final, seconds, beta)
        record(f"GDA {steps} steps, lr_d={lr_d:.1e} (best gap)", best, seconds, beta)
    out(f"beta_d = {beta:.4f} (rank 20); data energy tr C_x = {np.trace(C):.2f}")
    out("| method | energy tr(C_g) | constraint gap | Fréchet distance (test) | time (s) |")
    out("|---|---|---|---|---|")
    for r in rows:
        out(f"| {r['method']} | {r['energy']:.2f} | {r['gap']:.2e} | {r['fd']:.2f} | {r['seconds']:.3f} |")
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few GDA steps, for a smoke run")
    run(quick=parser.parse_args().quick)
