"""The dual constraint of a Wasserstein GAN with a two-layer ReLU discriminator.

With a ReLU discriminator :math:`D(x) = \\sum_j (\\tilde x^\\top u_j)_+ v_j`,
:math:`\\|u_j\\| \\le 1` and penalty :math:`\\beta_d\\sum_j|v_j|`, the inner
maximum of the WGAN game is finite exactly when the activated means of data
and generated samples differ by at most :math:`\\beta_d` on every cell of the
arrangement of ``[X; G]`` (Sahiner et al., 2022). :func:`relu_cell_values`
evaluates that constraint on sampled cells; :func:`relu_generator_program`
is the convex program of the least-energy linear generator satisfying it for
fixed generated patterns. The estimator is :class:`skconvex.ConvexWGAN`.

References
----------
A. Sahiner, T. Ergen, B. Ozturkler, B. Bartan, J. Pauly, M. Mardani and
M. Pilanci. Hidden convexity of Wasserstein GANs: interpretable generative
models with closed-form solutions. ICLR 2022, arXiv:2107.05680.
"""

import numpy as np

__all__ = ["relu_cell_values", "relu_generator_program"]


def _lift(X):
    return np.column_stack([X, np.ones(len(X))])


def relu_cell_values(X, G, gates):
    """Largest ReLU-discriminator value on each sampled cell of the arrangement of ``[X; G]``.

    For a gate :math:`h` the cell :math:`K` is the set of unit :math:`u` with
    the activation pattern of :math:`h` on the lifted data and generated
    samples. On it :math:`c(u) = \\tfrac1n\\sum_i(\\tilde x_i^\\top u)_+ -
    \\tfrac1m\\sum_j(\\tilde g_j^\\top u)_+ = c^\\top u` is linear, and
    :math:`\\max_{u\\in K, \\|u\\|\\le1} \\pm c^\\top u = \\|\\Pi_K(\\pm c)\\|
    = \\min_{\\lambda\\ge0}\\|\\pm c + H^\\top S\\lambda\\|` (Moreau
    decomposition; a non-negative least-squares problem).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Data.
    G : ndarray of shape (n_generated, n_features)
        Generated samples.
    gates : ndarray of shape (n_features + 1, n_gates)
        Gates on the lifted space (last row multiplies the ones column).

    Returns
    -------
    values : ndarray of shape (n_gates,)
        :math:`\\max_{u \\in K, \\|u\\| \\le 1} |c(u)|` per cell.

    Examples
    --------
    >>> import numpy as np
    >>> from skconvex.programs.wgan import relu_cell_values
    >>> X = np.array([[0.0], [2.0]])
    >>> float(relu_cell_values(X, X.copy(), np.array([[1.0], [0.5]]))[0])
    0.0
    """
    from scipy.optimize import nnls

    Xt, Gt = _lift(X), _lift(G)
    H = np.vstack([Xt, Gt])
    weights = np.concatenate([np.full(len(X), 1 / len(X)), np.full(len(G), -1 / len(G))])
    D = H @ gates >= 0
    S = np.where(D, 1.0, -1.0)
    C = H.T @ (weights[:, None] * D)
    values = np.empty(gates.shape[1])
    for p in range(gates.shape[1]):
        basis = (S[:, p, None] * H).T
        best = 0.0
        for sign in (1.0, -1.0):
            _, residual = nnls(basis, -sign * C[:, p], maxiter=50 * H.shape[0])
            best = max(best, residual)
        values[p] = best
    return values


def relu_generator_program(Xc, Z, Dg, gates, beta):
    """Least-energy linear generator for fixed generator patterns, as a cvxpy SOCP.

    The generated activation on the cell of gate :math:`h_p` is replaced by
    the fixed pattern :math:`D^g_p`; the data side keeps its exact cone,
    whose constraint is dualized with multipliers :math:`\\lambda \\ge 0`:

    .. math:: \\min_{W, b} \\|W\\|_F^2 + \\|b\\|^2 \\quad\\text{s.t.}\\quad
              \\|\\pm c_p(W, b) + \\tilde X^\\top S_p \\lambda^\\pm_p\\| \\le \\beta_d .

    Parameters
    ----------
    Xc : ndarray of shape (n_samples, n_features)
        Centred data.
    Z : ndarray of shape (n_generated, n_latent)
        Latent samples; the generator is :math:`g = W^\\top z + b`.
    Dg : ndarray of shape (n_generated, n_gates), dtype=bool
        Fixed activation patterns of the generated samples.
    gates : ndarray of shape (n_features + 1, n_gates)
        Gates on the lifted space.
    beta : float
        Discriminator penalty :math:`\\beta_d`.

    Returns
    -------
    problem : cvxpy.Problem
        The SOCP.
    W : cvxpy.Variable of shape (n_latent, n_features)
        Generator weights.
    b : cvxpy.Variable of shape (n_features,)
        Generator bias.
    """
    import cvxpy as cp

    n, d = Xc.shape
    m, k = Z.shape
    Xt = _lift(Xc)
    Dx = Xt @ gates >= 0
    S = np.where(Dx, 1.0, -1.0)
    P = gates.shape[1]
    ax = Xt.T @ Dx / n
    F = Z.T @ Dg / m
    phi = Dg.sum(axis=0) / m
    W = cp.Variable((k, d))
    b = cp.Variable(d)
    gen = cp.vstack([W.T @ F + cp.reshape(b, (d, 1), order="C") @ phi[None, :], phi[None, :]])
    Cexpr = ax - gen
    lam_p = cp.Variable((n, P), nonneg=True)
    lam_m = cp.Variable((n, P), nonneg=True)
    cons = [
        cp.norm(Cexpr + Xt.T @ cp.multiply(S, lam_p), 2, axis=0) <= beta,
        cp.norm(-Cexpr + Xt.T @ cp.multiply(S, lam_m), 2, axis=0) <= beta,
    ]
    return cp.Problem(cp.Minimize(cp.sum_squares(W) + cp.sum_squares(b)), cons), W, b
