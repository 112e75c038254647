"""
A convolutional network on digits, trained by solving a convex program
======================================================================

A two-layer CNN (3x3 filters, ReLU, pooling, linear output) trained with
weight decay is a group lasso over the activation patterns of its filters,
joint over all patches of all images (Ergen & Pilanci, 2021).
:class:`skconvex.ConvexCNNClassifier` solves that program, certifies the
solution with a duality gap, and recovers the filters, which we plot.

We compare on the 8x8 digits (a quarter held out) the gated convex CNN with
local pooling over 2x2 regions, the exact convex CNN (the cone-constrained
program, with global pooling, fewer patterns and fewer images: its solver is
much slower), scikit-learn's ``MLPClassifier`` and the fully connected
convex network :class:`skconvex.ConvexGatedReLUClassifier`. To keep the
script short the training set is subsampled; ``benchmarks/bench_cnn.py``
runs the full comparison.
"""

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

from skconvex import ConvexCNNClassifier, ConvexGatedReLUClassifier

X, y = load_digits(return_X_y=True)
X = X / 16.0
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
X_train, y_train = X_train[:400], y_train[:400]

models = {
    "convex CNN (gated)": ConvexCNNClassifier(
        image_shape=(8, 8), kernel_size=3, pool_size=3, gated=True, n_arrangements=60,
        alpha=1e-3, random_state=0,
    ),
    "convex CNN (exact)": ConvexCNNClassifier(
        image_shape=(8, 8), kernel_size=3, n_arrangements=8, alpha=1e-3,
        loss="squared_error", random_state=0,
    ),
    "MLPClassifier(100,)": MLPClassifier(hidden_layer_sizes=(100,), max_iter=500, random_state=0),
    "convex FC (gated)": ConvexGatedReLUClassifier(n_arrangements=60, random_state=0),
}
scores, times = {}, {}
# The exact program (an augmented Lagrangian over patch rows) is far costlier
# than the gated one: it gets the first 120 training images only.
n_train = {"convex CNN (exact)": 120}
for name, model in models.items():
    n = n_train.get(name, len(X_train))
    start = time.perf_counter()
    model.fit(X_train[:n], y_train[:n])
    times[name] = time.perf_counter() - start
    scores[name] = model.score(X_test, y_test)
    print(f"{name:22s} test accuracy {scores[name]:.3f}  fit {times[name]:.1f} s ({n} images)")

cnn = models["convex CNN (gated)"]
print(
    f"gated CNN: {cnn.n_filters_} filters, objective {cnn.objective_:.5f}, certified "
    f"relative gap {cnn.dual_gap_ / cnn.objective_:.1e}"
)
exact = models["convex CNN (exact)"]
print(
    f"exact CNN: objective {exact.objective_:.6f} = recovered CNN's "
    f"{exact.nonconvex_objective_:.6f}"
)

# %%
# The recovered filters, the strongest first (by the norm of their output
# weights), and the test accuracies.
strength = np.linalg.norm(cnn.output_weights_.reshape(cnn.n_filters_, -1), axis=1)
order = np.argsort(-strength)[:24]
fig = plt.figure(figsize=(11, 4), layout="constrained")
grid = fig.add_gridspec(3, 12)
for i, j in enumerate(order):
    ax = fig.add_subplot(grid[i // 8, i % 8])
    ax.imshow(cnn.filters_[j, :, :, 0], cmap="RdBu_r")
    ax.set_xticks([])
    ax.set_yticks([])
ax = fig.add_subplot(grid[:, 9:])
ax.barh(list(scores), list(scores.values()))
ax.set_xlim(min(scores.values()) - 0.05, 1.0)
ax.set_xlabel("test accuracy")
fig.suptitle("Filters of the convex CNN (left) and test accuracies (right)")
plt.show()
