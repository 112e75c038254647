"""Gated-ReLU fits on numpy (CPU) against torch tensors (GPU when available).

Problems (``../shared/design/anchors.md``'s generator): X ~ N(0, 1), y from a
planted 10-neuron ReLU teacher (standardized, noise 0.1); the estimator
``ConvexGatedReLURegressor(fit_intercept=False, n_arrangements=P)`` at
``alpha = 0.1 alpha_max`` and ``tol=1e-4``. Sizes: n=1e4, d=100, P=500, and
with ``--large`` n=1e6, d=50, P=200.

Rows: the same fit with numpy input, then with torch input on ``--device``
(default: cuda when available, else cpu) under
``sklearn.config_context(array_api_dispatch=True)``. Columns: wall time of the
fit (best of ``--repeat``), certified relative gap, solver iterations, time per
iteration, the bare GEMM pair of one iteration on that row's backend (forward
``X @ W`` with W of shape (d, P), adjoint ``X.T @ M`` with M of shape (n, P)),
"per-GEMM" = time per iteration / bare GEMM pair, and the fit's speed-up over
the numpy row, all measured in the same run.

Run ``python benchmarks/bench_gpu.py`` (``--quick`` for a smoke run at
n=2000, d=20, P=50; ``--large`` adds n=1e6).
"""

import argparse
import os
import platform
import time

os.environ.setdefault("SCIPY_ARRAY_API", "1")  # before scipy is imported

import numpy as np  # noqa: E402
from sklearn import config_context  # noqa: E402

from skconvex import ConvexGatedReLURegressor  # noqa: E402


def make_data(n, d, seed=0):
    """The anchors.md generator (data and targets; the estimator samples its gates)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    U = rng.standard_normal((d, 10))
    a = rng.standard_normal(10)
    y = np.maximum(X @ U, 0) @ a
    y = (y - y.mean()) / y.std() + 0.1 * rng.standard_normal(n)
    return X, y


def best_time(f, repeat, sync=lambda: None):
    best = np.inf
    for _ in range(repeat):
        sync()
        t0 = time.perf_counter()
        f()
        sync()
        best = min(best, time.perf_counter() - t0)
    return best


def gemm_pair(xp_name, X, P, device, repeat):
    """Best time of one forward and one adjoint GEMM of the solver's shapes."""
    n, d = X.shape
    rng = np.random.default_rng(0)
    W = rng.standard_normal((d, P))
    M = (rng.standard_normal((n, P)) >= 0).astype(X.dtype)
    if xp_name == "numpy":
        return best_time(lambda: X @ W, repeat) + best_time(lambda: X.T @ M, repeat)
    import torch

    Xt, Wt, Mt = (torch.asarray(a, device=device) for a in (X, W, M))
    sync = torch.cuda.synchronize if str(device).startswith("cuda") else (lambda: None)
    return best_time(lambda: Xt @ Wt, repeat, sync) + best_time(lambda: Xt.T @ Mt, repeat, sync)


def run_case(n, d, P, device, repeat):
    X, y = make_data(n, d)
    est = ConvexGatedReLURegressor(fit_intercept=False, n_arrangements=P, tol=1e-4, random_state=0)
    est.set_params(alpha=0.1 * est._alpha_max(X, y))
    backends = [("numpy", "cpu", (X, y))]
    try:
        import torch

        backends.append(("torch", device, (torch.asarray(X, device=device), torch.asarray(y, device=device))))
    except ImportError:
        print("torch is not installed: numpy row only")

    def sync(dev):
        if str(dev).startswith("cuda"):
            torch.cuda.synchronize()

    # Repeats interleave the backends, so that a load change on a shared
    # machine hits both rows alike; each row keeps its best time.
    best = {}
    for _ in range(repeat):
        for xp_name, dev, args in backends:
            sync(dev)
            t0 = time.perf_counter()
            with config_context(array_api_dispatch=xp_name != "numpy"):
                est.fit(*args)
            sync(dev)
            t = time.perf_counter() - t0
            if t < best.get(xp_name, (np.inf,))[0]:
                best[xp_name] = (t, est.dual_gap_ / est.objective_, est.n_iter_)
    rows = []
    for xp_name, dev, _ in backends:
        t, gap, it = best[xp_name]
        gemm = gemm_pair(xp_name, X, P, dev, max(repeat, 3))
        rows.append((xp_name, dev, t, gap, it, t / max(it, 1), gemm))
    t_np = rows[0][2]
    print(f"\nn={n}, d={d}, P={P}, tol=1e-4")
    print(f"{'backend':8s} {'device':6s} {'fit (s)':>9s} {'rel. gap':>9s} {'iters':>6s} "
          f"{'s/iter':>9s} {'GEMM pair':>10s} {'per-GEMM':>9s} {'speed-up':>9s}")
    for xp_name, dev, t, gap, it, per_iter, gemm in rows:
        print(f"{xp_name:8s} {str(dev):6s} {t:9.3f} {gap:9.1e} {it:6d} {per_iter:9.2e} "
              f"{gemm:10.2e} {per_iter / gemm:9.1f} {t_np / t:9.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run on a small problem")
    parser.add_argument("--large", action="store_true", help="add n=1e6, d=50, P=200")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    device = args.device
    try:
        import torch

        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        card = torch.cuda.get_device_name(device) if str(device).startswith("cuda") else "CPU"
        print(f"torch {torch.__version__} on {device} ({card}), {torch.get_num_threads()} threads")
    except ImportError:
        device = "cpu"
    print(f"numpy {np.__version__}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    if args.quick:
        cases = [(2000, 20, 50)]
    else:
        cases = [(10_000, 100, 500)]
        if args.large:
            cases.append((1_000_000, 50, 200))
    for n, d, P in cases:
        run_case(n, d, P, device, 1 if args.quick else args.repeat)


if __name__ == "__main__":
    main()
