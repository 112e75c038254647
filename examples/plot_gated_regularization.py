"""
Weight decay, sparsity and the certificate of a convex gated-ReLU network
==========================================================================

A two-layer gated-ReLU network trained with weight decay is exactly a group
lasso over activation patterns, so a larger ``alpha`` switches whole neurons
off. For each ``alpha`` we fit :class:`skconvex.ConvexGatedReLUClassifier` on
the breast-cancer data (warm-starting from the previous solution) and plot the
number of active neurons, the test accuracy, and the certified relative
duality gap of every fit: the solver stops only once it can prove the
objective is within ``tol`` of the optimum.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skconvex import ConvexGatedReLUClassifier

X, y = load_breast_cancer(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

# %%
# Fit along a decreasing grid of ``alpha``, reusing gates and solution.
alphas = np.geomspace(3e-1, 3e-4, 12)
clf = ConvexGatedReLUClassifier(warm_start=True, random_state=0)
neurons, accuracy, gaps = [], [], []
for alpha in alphas:
    clf.set_params(alpha=alpha).fit(X_train, y_train)
    neurons.append(clf.n_neurons_)
    accuracy.append(clf.score(X_test, y_test))
    gaps.append(clf.dual_gap_ / clf.objective_)

# %%
fig, axes = plt.subplots(1, 3, figsize=(11, 3.2), sharex=True)
axes[0].plot(alphas, neurons, "o-")
axes[0].set_ylabel("active neurons")
axes[1].plot(alphas, accuracy, "o-")
axes[1].set_ylabel("test accuracy")
axes[2].semilogy(alphas, gaps, "o-")
axes[2].axhline(clf.tol, color="k", ls="--", label="tol")
axes[2].set_ylabel("certified relative gap")
axes[2].legend()
for ax in axes:
    ax.set_xscale("log")
    ax.set_xlabel("alpha")
fig.tight_layout()
plt.show()
