"""
A one-dimensional ReLU network trained to global optimality is a linear spline
===============================================================================

With one input, a two-layer ReLU network :math:`f(x) = \\sum_j (w_jx + c_j)_+
a_j + b` trained with weight decay on :math:`w_j, a_j` is optimal as a
linear spline whose knots are data points, and training it is exactly a
Lasso over the ramps :math:`(x - x_k)_+` and :math:`(x_k - x)_+` (Ergen &
Pilanci, 2021). :class:`skconvex.ConvexSplineRegressor` solves that Lasso,
certifies the result with a duality gap, and returns the network: one neuron
per knot.

We fit it for two values of ``alpha`` (the penalty bounds the total change of
slope), mark its knots, and compare with a scikit-learn
:class:`~sklearn.neural_network.MLPRegressor` trained by stochastic
optimization from a random start.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.neural_network import MLPRegressor

from skconvex import ConvexSplineRegressor

rng = np.random.default_rng(0)
x = np.sort(rng.uniform(-3, 3, 60))
y = np.sin(1.5 * x) + 0.3 * np.sign(x) + 0.15 * rng.standard_normal(60)
X = x[:, None]
grid = np.linspace(-3.3, 3.3, 600)[:, None]

# %%
# Convex fits: each is the global optimum of the network's training problem.
fits = {alpha: ConvexSplineRegressor(alpha=alpha).fit(X, y) for alpha in (1e-3, 2e-2)}
for alpha, reg in fits.items():
    print(
        f"alpha={alpha:g}: {reg.n_neurons_} neurons, objective {reg.objective_:.6f}, "
        f"certified gap {reg.dual_gap_:.1e}"
    )

# %%
# A non-convex network of 100 ReLU neurons trained with Adam, for comparison.
mlp = MLPRegressor(hidden_layer_sizes=(100,), alpha=1e-3, max_iter=3000, tol=1e-6, random_state=0).fit(X, y)

# %%
fig, ax = plt.subplots(figsize=(8, 4.5))
ax.scatter(x, y, s=14, color="0.4", label="data")
colors = {1e-3: "tab:blue", 2e-2: "tab:orange"}
for alpha, reg in fits.items():
    ax.plot(grid[:, 0], reg.predict(grid), color=colors[alpha], lw=2,
            label=f"convex spline, alpha={alpha:g} ({reg.n_neurons_} neurons)")
    knots = np.unique(reg.knots_)
    ax.plot(knots, reg.predict(knots[:, None]), "o", mfc="white", color=colors[alpha], ms=6)
ax.plot(grid[:, 0], mlp.predict(grid), "k--", lw=1.5, label="MLPRegressor (100,), Adam")
ax.set_xlabel("x")
ax.set_ylabel("y")
ax.set_title("Globally optimal ReLU networks on one input are linear splines (knots: circles)")
ax.legend(fontsize=8, loc="upper left")
fig.tight_layout()
plt.show()
