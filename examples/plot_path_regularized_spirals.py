"""
Spirals: a path-regularized three-layer network trained to global optimality
============================================================================

Parallel three-layer ReLU networks :math:`f(x) = \\sum_k w_{3k}\\,
\\big(\\sum_j w_{2kj}(\\tilde x^\\top w_{1kj})_+\\big)_+ + b` regularized by the
path norms of their sub-networks,
:math:`\\sum_k (\\sum_j \\|w_{1kj}\\|^2 w_{2kj}^2)^{1/2}|w_{3k}|`, are trained
exactly by a group-sparse convex program over sampled sub-network patterns
(Ergen & Pilanci, "Path regularization: a convexity and sparsity inducing
regularization for parallel ReLU networks", ICLR 2023).
:class:`skconvex.PathRegularizedReLUClassifier` solves it with a certified
duality gap and returns the sub-networks it selects.

As in the paper's spirals figure, we compare the decision boundaries of

* a weight-decayed two-layer ReLU network and
* a three-layer ReLU network, both trained by gradient descent (Adam, from a
  random start; scikit-learn's :class:`~sklearn.neural_network.MLPClassifier`),
* the convex path-regularized three-layer network.
"""

# %%
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

from skconvex import PathRegularizedReLUClassifier


def make_spirals(n_samples, *, noise=0.1, turns=1.5, random_state=0):
    rng = np.random.default_rng(random_state)
    t = np.sqrt(rng.uniform(0, 1, n_samples)) * turns * 2 * np.pi
    labels = rng.integers(0, 2, n_samples)
    radius = 3 * t / (turns * 2 * np.pi)
    angle = t + np.pi * labels
    X = np.c_[radius * np.cos(angle), radius * np.sin(angle)]
    return X + noise * rng.standard_normal(X.shape), labels


X, y = make_spirals(240)
X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)

models = {
    "2-layer, weight decay (GD)": MLPClassifier(
        hidden_layer_sizes=(50,), alpha=1e-2, max_iter=3000, random_state=0
    ),
    "3-layer (GD)": MLPClassifier(hidden_layer_sizes=(50, 50), max_iter=3000, random_state=0),
    "3-layer, path reg. (convex)": PathRegularizedReLUClassifier(
        alpha=1e-3, n_arrangements=200, random_state=0
    ),
}
for name, model in models.items():
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_tr, y_tr)
    print(
        f"{name:<28} test accuracy {model.score(X_te, y_te):.3f}  "
        f"fit {time.perf_counter() - start:.1f} s"
    )
convex = models["3-layer, path reg. (convex)"]
print(
    f"convex: {convex.n_subnetworks_} sub-networks selected out of "
    f"{convex.group_norms_.size} candidates, certified relative gap "
    f"{convex.dual_gap_ / convex.objective_:.1e}"
)

# %%
# Decision boundaries (test points drawn).
xx, yy = np.meshgrid(np.linspace(-3.6, 3.6, 200), np.linspace(-3.6, 3.6, 200))
grid = np.c_[xx.ravel(), yy.ravel()]
fig, axes = plt.subplots(1, 3, figsize=(13, 4.4), sharex=True, sharey=True)
for ax, (name, model) in zip(axes, models.items()):
    zz = model.predict(grid).reshape(xx.shape)
    ax.contourf(xx, yy, zz, levels=[-0.5, 0.5, 1.5], colors=["#9ecae1", "#fdae6b"], alpha=0.7)
    ax.scatter(X_te[:, 0], X_te[:, 1], c=y_te, cmap="coolwarm", s=12, edgecolor="k", lw=0.3)
    ax.set_title(f"{name}\ntest accuracy {model.score(X_te, y_te):.2f}", fontsize=10)
    ax.set_aspect("equal")
fig.tight_layout()
plt.show()
