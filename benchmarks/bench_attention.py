"""Convex attention heads on frozen token features: transfer learning on digits, offline.

Sahiner et al. (ICML 2022) fine-tune convex self-attention, MLP-mixer and FNO
heads on the tokens of a frozen pre-trained transformer (CIFAR-100). No
pre-trained vision model ships inside a PyPI package we can install here, so
the frozen backbone is a fixed random one: scikit-learn's 8x8 digits are cut
into 9 overlapping 4x4 patches (stride 2), each patch goes through a fixed
random filter bank with a ReLU (32 filters), a fixed random projection to
``token_dim`` channels, a per-channel normalization and a fixed random
positional embedding (as in a ViT). Every head sees the same tokens; the flat
heads (logistic regression, the convex two-layer gated network, an MLP) see
them flattened. No per-feature standardization is applied: it would subtract
the positional embedding, which the (permutation-invariant) mean-pooled
attention head needs to know where a token is.

The table gives the test accuracy on a stratified 2/3-1/3 split, the fit
time, the number of heads of the convex models and their certified relative
duality gap. Run ``python benchmarks/bench_attention.py`` (``--quick`` for a
smoke run).
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

from skconvex import ConvexAttentionHead, ConvexGatedReLUClassifier


def frozen_backbone(images, reference, *, token_dim=6, width=32, seed=0):
    """Tokens of a fixed random patch backbone, shape (n_images, 9 * token_dim).

    ``reference`` images (the training images; labels unused) fix the
    per-channel normalization, shared by all positions as in a transformer.
    The same backbone is used in ``examples/plot_attention_transfer_learning.py``.
    """
    rng = np.random.default_rng(seed)
    filters = rng.standard_normal((16, width)) / 2
    bias = rng.standard_normal(width) / 2
    project = rng.standard_normal((width, token_dim)) / np.sqrt(width)
    position = rng.standard_normal((9, token_dim))

    def embed(imgs):
        n = len(imgs)
        corners = [(i, j) for i in (0, 2, 4) for j in (0, 2, 4)]
        patches = np.stack(
            [imgs[:, i : i + 4, j : j + 4].reshape(n, 16) for i, j in corners], axis=1
        )
        return np.maximum(patches / 16 @ filters + bias, 0) @ project

    ref = embed(reference)
    mean, std = ref.mean(axis=(0, 1)), ref.std(axis=(0, 1))
    return ((embed(images) - mean) / std + position).reshape(len(images), -1)


def models(n_tokens, n_gates, dtype, max_iter, quick):
    heads = [
        ("self_attention", "linear"),
        ("self_attention", "gated_relu"),
        ("mlp_mixer", "linear"),
        ("mlp_mixer", "gated_relu"),
        ("fno", "linear"),
        ("fno", "gated_relu"),
    ]
    if quick:
        heads = [("mlp_mixer", "linear"), ("fno", "linear")]
    out = [
        ("LogisticRegression (flat)", LogisticRegression(max_iter=5000)),
        ("ConvexGatedReLUClassifier (flat)", ConvexGatedReLUClassifier(random_state=0)),
        ("MLPClassifier (flat)", MLPClassifier(max_iter=1000, random_state=0)),
    ]
    if quick:
        out = out[:1]
    for head, activation in heads:
        est = ConvexAttentionHead(
            n_tokens=n_tokens,
            head=head,
            activation=activation,
            n_gates=n_gates,
            dtype=dtype,
            max_iter=max_iter,
            random_state=0,
        )
        out.append((f"ConvexAttentionHead {head}, {activation}", est))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="a subset, two heads (seconds)"
    )
    parser.add_argument("--token-dim", type=int, default=6)
    parser.add_argument("--n-gates", type=int, default=4)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--max-iter", type=int, default=5000)
    args = parser.parse_args()

    X, y = load_digits(return_X_y=True)
    images = X.reshape(-1, 8, 8)
    if args.quick:
        images, y = images[:300], y[:300]
    img_train, img_test, y_train, y_test = train_test_split(
        images, y, test_size=1 / 3, stratify=y, random_state=0
    )
    X_train = frozen_backbone(img_train, img_train, token_dim=args.token_dim)
    X_test = frozen_backbone(img_test, img_train, token_dim=args.token_dim)
    try:
        from threadpoolctl import threadpool_info

        threads = {
            info["internal_api"]: info["num_threads"] for info in threadpool_info()
        }
    except ImportError:
        threads = "unknown"
    print(
        f"digits tokens: {len(X_train)} train / {len(X_test)} test, 9 tokens x "
        f"{args.token_dim} channels; n_gates={args.n_gates}, dtype={args.dtype}; "
        f"BLAS threads {threads}"
    )
    print(f"\n{'head':<46}{'test acc.':>10}{'fit s':>8}{'heads':>7}{'rel. gap':>10}")
    rows = []
    for name, est in models(9, args.n_gates, args.dtype, args.max_iter, args.quick):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X_train, y_train)
        fit_time = time.perf_counter() - t0
        acc = est.score(X_test, y_test)
        if hasattr(est, "n_heads_"):
            extra = f"{est.n_heads_:>7d}{est.dual_gap_ / est.objective_:>10.1e}"
        elif hasattr(est, "n_neurons_"):
            extra = f"{est.n_neurons_:>7d}{est.dual_gap_ / est.objective_:>10.1e}"
        else:
            extra = f"{'':>7}{'n/a':>10}"
        print(f"{name:<46}{acc:>10.4f}{fit_time:>8.2f}{extra}", flush=True)
        rows.append((name, acc, fit_time))
    return rows


if __name__ == "__main__":
    main()
