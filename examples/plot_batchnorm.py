"""
=====================================================
Batch-normalized ReLU networks as convex programs
=====================================================

A two-layer ReLU network with batch normalization (BN) before the activation,
trained with weight decay, is *exactly* a plain two-layer ReLU network on the
whitened training batch with a ones column appended (Ergen et al., ICLR 2022).
:class:`~skconvex.ConvexBatchNormReLUClassifier` solves that convex program
and hands back the BN network (weights, ``gamma``, ``beta`` and frozen batch
statistics).

This example shows

1. the convex optimum equals the training objective of the recovered BN
   network, which predicts with frozen statistics;
2. the closed form of the high-dimensional regime (``n_samples <=
   n_features``), certified over networks of any width;
3. the explicit regularizer of gradient descent's bias towards high-variance
   directions (``implicit_regularization=True``), which whitening removes;
4. rank truncation, an exact restriction of the first layer to the top
   principal directions.
"""

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, make_moons
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skconvex import ConvexBatchNormReLUClassifier, ConvexBatchNormReLURegressor

# %%
# 1. The BN network behind the convex program
# -------------------------------------------
# Two moons stretched along one axis: BN whitens them, so the stretch does
# not matter to the network.
X, y = make_moons(200, noise=0.15, random_state=0)
X = X * [10.0, 0.5] + [3.0, -1.0]
clf = ConvexBatchNormReLUClassifier(alpha=1e-3, n_arrangements=200, random_state=0).fit(X, y)
print(f"convex objective      {clf.objective_:.10f}")
print(f"recovered BN network  {clf.nonconvex_objective_:.10f}")
print(f"certified rel. gap    {clf.dual_gap_ / clf.objective_:.1e}, {clf.n_neurons_} neurons")
print(f"frozen std of x^T w   {np.round(clf.bn_std_[:4], 6)} ...")

xx, yy = np.meshgrid(np.linspace(-10, 16, 300), np.linspace(-2, 0, 200))
proba = clf.predict_proba(np.c_[xx.ravel(), yy.ravel()])[:, 1].reshape(xx.shape)
fig, ax = plt.subplots(figsize=(6, 3))
ax.contourf(xx, yy, proba, levels=20, cmap="RdBu_r", alpha=0.6)
ax.scatter(*X.T, c=y, cmap="RdBu_r", edgecolor="k", s=15)
ax.set_title("Convex BN-ReLU network, frozen batch statistics")
fig.tight_layout()

# %%
# 2. Closed form in the high-dimensional regime
# ---------------------------------------------
# With at most ``n_features + 1`` samples the whitened lifted batch is square:
# every activation pattern is realizable and two neurons, active on every
# sample, are optimal over networks of any width. Their output is the group
# soft-thresholding of the residual's positive and negative parts.
digits = load_digits()
rng = np.random.default_rng(0)
idx = rng.choice(len(digits.data), 50, replace=False)
Xd, yd = digits.data[idx], digits.target[idx].astype(float)
for solver in ("closed_form", "auglag"):
    t0 = time.perf_counter()
    reg = ConvexBatchNormReLURegressor(alpha=0.05, solver=solver, tol=1e-8, random_state=0).fit(Xd, yd)
    print(
        f"{solver:12s} objective {reg.objective_:.10f}  gap {reg.dual_gap_:.1e}  "
        f"neurons {reg.n_neurons_:2d}  {time.perf_counter() - t0:.3f}s"
    )

# %%
# 3. Implicit regularization
# --------------------------
# Whitening rescales every principal direction to unit variance, so with few
# samples the BN program fits the labels through directions of tiny variance
# (noise). Gradient descent on the first-layer weights moves along
# high-variance directions much faster (it is gradient descent preconditioned
# by the squared singular values), an implicit bias that
# ``implicit_regularization=True`` writes into the convex objective as a
# penalty :math:`\sigma_1/\sigma_k` on whitened direction ``k``.
Xtr, Xte, ytr, yte = train_test_split(digits.data, digits.target, train_size=60, stratify=digits.target, random_state=0)
scaler = StandardScaler().fit(Xtr)
scores = {}
for implicit in (False, True):
    model = ConvexBatchNormReLUClassifier(n_arrangements=10, implicit_regularization=implicit, random_state=0)
    model.fit(scaler.transform(Xtr), ytr)
    scores[implicit] = model.score(scaler.transform(Xte), yte)
    print(f"implicit_regularization={implicit!s:5s}  test accuracy {scores[implicit]:.3f}")

# %%
# 4. Rank truncation
# ------------------
# Keeping ``rank`` principal directions restricts the first-layer weights to
# that subspace: the fit is an exact BN network, and on the same activation
# patterns its optimum bounds the untruncated one from above. Here every rank
# samples its own gates, so the curve is only roughly decreasing.
Xb, yb = load_breast_cancer(return_X_y=True)
Xb, yb = Xb[:200], yb[:200]
ranks = [1, 2, 4, 8, 16, 30]
objectives = [
    ConvexBatchNormReLUClassifier(rank=r, n_arrangements=50, random_state=0).fit(Xb, yb).objective_ for r in ranks
]
fig, axes = plt.subplots(1, 2, figsize=(9, 3))
axes[0].plot(ranks, objectives, "o-")
axes[0].set_xscale("log", base=2)
axes[0].set_xlabel("rank (principal directions kept)")
axes[0].set_ylabel("training objective")
axes[0].set_title("Rank truncation (breast cancer)")
axes[1].bar(["whitened (plain)", "implicit reg."], [scores[False], scores[True]], color=["C0", "C1"])
axes[1].set_ylim(0, 1)
axes[1].set_title("Digits, 60 training images: test accuracy")
fig.tight_layout()
plt.show()
