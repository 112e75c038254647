"""
How a convex self-attention head clusters tokens
================================================

A self-attention head compares tokens through a low-rank similarity
:math:`x_t^\\top W_{1j} x_u`, and the weight decay of its convex program (a
nuclear norm) keeps few heads. Sahiner et al. (ICML 2022) read the result as
an implicit clustering of the tokens. Here each digit is cut into 16 tokens
(2x2 pixel patches, with the patch position appended), a convex linear
self-attention head is fit, and every token is coloured by the head that
carries most of its contribution to the output
(:meth:`skconvex.ConvexAttentionHead.token_clusters`).
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from sklearn.datasets import load_digits

from skconvex import ConvexAttentionHead

X, y = load_digits(return_X_y=True)
images = X.reshape(-1, 8, 8) / 16
patches = images.reshape(-1, 4, 2, 4, 2).transpose(0, 1, 3, 2, 4).reshape(len(X), 16, 4)
rows, cols = np.divmod(np.arange(16), 4)
position = np.stack([rows, cols], axis=1) / 1.5 - 1
tokens = np.concatenate(
    [patches - 0.3, np.broadcast_to(position, (len(X), 16, 2))], axis=2
)
tokens = tokens.reshape(len(X), -1)

head = ConvexAttentionHead(n_tokens=16, alpha=1e-2, random_state=0).fit(
    tokens[:1000], y[:1000]
)
print(
    f"{head.n_heads_} heads, test accuracy {head.score(tokens[1000:], y[1000:]):.3f}, "
    f"certified relative gap {head.dual_gap_ / head.objective_:.1e}"
)

# %%
# Tokens of some test digits, coloured by the head that carries them.
labels = head.token_clusters(tokens[1000:1012])
cmap = ListedColormap(plt.get_cmap("tab10").colors[: head.n_heads_])
fig, axes = plt.subplots(2, 6, figsize=(9, 3.6), layout="constrained")
for ax, image, label in zip(axes.ravel(), images[1000:1012], labels):
    ax.imshow(image, cmap="gray_r")
    overlay = np.kron(label.reshape(4, 4), np.ones((2, 2)))
    im = ax.imshow(overlay, cmap=cmap, alpha=0.5, vmin=-0.5, vmax=head.n_heads_ - 0.5)
    ax.set_axis_off()
fig.colorbar(im, ax=axes, ticks=range(head.n_heads_), label="head", shrink=0.8)

# %%
# Where each head looks: the mean share of the output that each token
# position sends through each head, over the test digits.
contributions = np.linalg.norm(head.token_contributions(tokens[1000:]), axis=3)
share = (contributions / contributions.sum(axis=(1, 2), keepdims=True)).mean(axis=0)
fig, axes = plt.subplots(
    1, head.n_heads_, figsize=(2.2 * head.n_heads_, 2.4), layout="constrained"
)
for j, ax in enumerate(np.atleast_1d(axes)):
    ax.imshow(share[j].reshape(4, 4), cmap="viridis", vmin=0, vmax=share.max())
    ax.set_title(f"head {j}")
    ax.set_axis_off()
plt.show()
