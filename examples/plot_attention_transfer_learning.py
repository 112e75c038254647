"""
Convex attention heads on a frozen backbone (transfer learning, offline)
========================================================================

Sahiner et al. (ICML 2022) train token-mixing heads -- self-attention, an
MLP-mixer, a Fourier neural operator (FNO) -- on the tokens of a frozen
transformer, to global optimality, by solving their convex reformulations.
No pre-trained vision model ships inside an installable package, so the
frozen backbone here is a fixed random one on scikit-learn's digits: 9
overlapping 4x4 patches per image, a random filter bank with a ReLU, a random
projection to 6 channels and a random positional embedding. Every head gets
the same tokens; logistic regression, the convex two-layer gated network and
an MLP get them flattened. ``benchmarks/bench_attention.py`` runs all six
convex heads; this example fits three of them.
"""

# %%
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

from skconvex import ConvexAttentionHead, ConvexGatedReLUClassifier


def frozen_backbone(images, reference, *, token_dim=6, width=32, seed=0):
    """Tokens of a fixed random patch backbone, shape (n_images, 9 * token_dim)."""
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

    # One normalization per channel, shared by all positions (a per-feature
    # scaler would subtract the positional embedding).
    ref = embed(reference)
    mean, std = ref.mean(axis=(0, 1)), ref.std(axis=(0, 1))
    return ((embed(images) - mean) / std + position).reshape(len(images), -1)


X, y = load_digits(return_X_y=True)
img_train, img_test, y_train, y_test = train_test_split(
    X.reshape(-1, 8, 8), y, test_size=1 / 3, stratify=y, random_state=0
)
X_train = frozen_backbone(img_train, img_train)
X_test = frozen_backbone(img_test, img_train)
print(f"{len(X_train)} training and {len(X_test)} test images, 9 tokens x 6 channels")

# %%
# Fit the heads. The convex ones report the number of heads they recovered
# (the rank of their solution) and a certified bound on their distance to the
# global optimum of the training objective.
heads = {
    "logistic regression": LogisticRegression(max_iter=5000),
    "MLPClassifier": MLPClassifier(max_iter=1000, random_state=0),
    "convex 2-layer (gated)": ConvexGatedReLUClassifier(random_state=0),
    "convex self-attention": ConvexAttentionHead(
        n_tokens=9,
        head="self_attention",
        activation="gated_relu",
        n_gates=4,
        dtype="float32",
        random_state=0,
    ),
    "convex MLP-mixer": ConvexAttentionHead(
        n_tokens=9,
        head="mlp_mixer",
        activation="gated_relu",
        n_gates=4,
        dtype="float32",
        random_state=0,
    ),
    "convex FNO": ConvexAttentionHead(
        n_tokens=9, head="fno", dtype="float32", random_state=0
    ),
}
accuracy, fit_time = {}, {}
for name, est in heads.items():
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X_train, y_train)
    fit_time[name] = time.perf_counter() - t0
    accuracy[name] = est.score(X_test, y_test)
    certificate = ""
    if hasattr(est, "n_heads_"):
        gap = est.dual_gap_ / est.objective_
        certificate = f"  {est.n_heads_} heads, certified rel. gap {gap:.1e}"
    print(
        f"{name:<24} test accuracy {accuracy[name]:.3f}  "
        f"fit {fit_time[name]:5.1f} s{certificate}"
    )

# %%
# Test accuracy and fit time (one run on two cores; times are indicative).
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5), layout="constrained")
names = list(heads)
colors = ["0.6"] * 3 + ["C0", "C1", "C2"]
ax1.barh(names, [accuracy[n] for n in names], color=colors)
ax1.set_xlim(0.85, 1.0)
ax1.set_xlabel("test accuracy")
ax1.invert_yaxis()
ax2.barh(names, [fit_time[n] for n in names], color=colors)
ax2.set_xlabel("fit time (s)")
ax2.set_yticks([])
ax2.invert_yaxis()
plt.show()
