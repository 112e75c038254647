"""Oracles of the semi-infinite dual of two-layer ReLU networks with weight decay.

For a dual point :math:`\\Theta \\in \\mathbb{R}^{n \\times C}` (the negative
gradient of the loss), the dual constraint of the training problem is

.. math:: \\omega(\\Theta) = \\max_{\\|u\\|_2 \\le 1} \\big\\|\\Theta^\\top (Xu)_+\\big\\|_2 \\le \\alpha

(Ergen & Pilanci, 2021, for one output; Sahiner et al., 2021, for vector
outputs, where it is a cone-constrained PCA on every cell of the arrangement).
An oracle evaluates :math:`\\omega` and returns maximizing directions, which
become new neurons in column generation and Frank-Wolfe.

* :class:`ExhaustiveOracle` maximizes over *every* face of the arrangement of
  ``X`` (data of small rank): exact for the unsampled problem. On the relative
  interior of a face with flat :math:`L` the objective is
  :math:`\\|B^\\top u\\|` with :math:`B = X^\\top D \\Theta` fixed, whose
  maximizers over the unit sphere of :math:`L` are top eigenvectors of
  :math:`\\Pi_L B B^\\top \\Pi_L`; the global maximizer lies in some face, so
  the best of these candidates (evaluated with the true ReLU) is the maximum.
  With several outputs this relies on the top eigenvalue of that face being
  simple, which holds for all but a measure-zero set of :math:`\\Theta`.
* :class:`PatternOracle` maximizes over the closed cones
  :math:`\\mathcal{K}_p = \\{u : (2D_p - I)Xu \\ge 0\\}` of given patterns
  (the restricted problem of sampled arrangements). With one output the
  maximum over a cone is the norm of the projection of
  :math:`\\pm X^\\top D_p\\theta` onto it (exact, by non-negative least
  squares). With several outputs the exact value enumerates the faces of each
  cone when that is cheap; otherwise a projected power iteration gives the
  directions and the spectral norm of :math:`X^\\top D_p\\Theta` (the gated
  bound) a certified upper bound.

References
----------
T. Ergen and M. Pilanci. Convex geometry and duality of over-parameterized
neural networks. JMLR 22(212), 2021, arXiv:2002.11219.

A. Sahiner, T. Ergen, J. Pauly and M. Pilanci. Vector-output ReLU neural
network problems are copositive programs: convex analysis of two layer
networks and polynomial-time algorithms. ICLR 2021, arXiv:2012.13329.
"""

from dataclasses import dataclass
from math import comb

import numpy as np
from scipy.optimize import nnls

from .._config import check_memory, memory_budget
from ._geometry import _subsets, cone_facets, face_points, row_space

__all__ = [
    "OracleResult",
    "ExhaustiveOracle",
    "PatternOracle",
    "gated_dual_norms",
    "project_cone",
    "relu_dual_norm",
]

# Columns of (n, k) intermediates evaluated at once.
_CHUNK_ENTRIES = 2**22
# Cones of larger rank are not reduced to their facets (Qhull's cost grows
# exponentially with the dimension).
_MAX_HULL_RANK = 6


@dataclass
class OracleResult:
    """Value and maximizers of :math:`\\max_{\\|u\\| \\le 1}\\|\\Theta^\\top(Xu)_+\\|`.

    Parameters
    ----------
    value : float
        Best value found (attained by ``directions[:, 0]``).
    upper : float
        Certified upper bound on the maximum (equal to ``value`` when
        ``exact``).
    directions : ndarray of shape (n_features, n_directions)
        Unit directions of the best candidates, best first, with distinct
        activation patterns.
    scores : ndarray of shape (n_directions,)
        Their values.
    exact : bool
        Whether the maximization was exact (no heuristic), so that ``upper``
        equals ``value``.
    """

    value: float
    upper: float
    directions: np.ndarray
    scores: np.ndarray
    exact: bool


def relu_dual_norm(X, Theta, U):
    """:math:`\\|\\Theta^\\top (X u)_+\\|` for every column ``u`` of ``U``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Data.
    Theta : ndarray of shape (n_samples, n_outputs)
        Dual point.
    U : ndarray of shape (n_features, n_directions)
        Directions (not necessarily unit).

    Returns
    -------
    values : ndarray of shape (n_directions,)
        The norms, one per column of ``U``.
    """
    Theta = np.asarray(Theta, dtype=np.float64).reshape(X.shape[0], -1)
    U = np.asarray(U, dtype=np.float64)
    out = np.empty(U.shape[1])
    if hasattr(X, "tocsr"):
        X = X.tocsr()  # row blocks of CSC would copy column by column
    for cols, rows in _gate_and_row_chunks(X.shape, U.shape[1], Theta.shape[1], _CHUNK_ENTRIES):
        S = np.zeros((Theta.shape[1], cols.stop - cols.start))
        for r, Xb in _row_blocks64(X, rows):
            S += Theta[r].T @ np.maximum(np.asarray(Xb @ U[:, cols]), 0.0)
        out[cols] = np.linalg.norm(S, axis=0)
    return out


def _gate_and_row_chunks(shape, n_gates, n_outputs, entries):
    """Chunks of gates and, for each, the row-block size of its products.

    A chunk's ``d x k x C`` sums and a row block's ``(b, k)`` products, masks
    and ``(b, k C)`` masked targets each hold at most ``entries`` numbers. Rows
    are blocked, not whole: a float32 ``X`` is cast to float64 one block at a
    time instead of whole for every chunk of gates (that cast made these
    reports cost twice the solve at 10^6 rows).
    """
    d = shape[1]
    C = max(1, n_outputs)
    step = max(1, min(n_gates, entries // max(1, d * C)))
    for start in range(0, n_gates, step):
        k = min(step, n_gates - start)
        yield slice(start, start + k), max(1, entries // (k * (C + 2)))


def _row_blocks64(X, rows):
    """``(row slice, X[row slice] in float64)`` for consecutive blocks of ``rows`` rows."""
    for start in range(0, X.shape[0], rows):
        r = slice(start, min(start + rows, X.shape[0]))
        Xb = X[r]
        yield r, (Xb.astype(np.float64) if hasattr(Xb, "tocsr") else np.asarray(Xb, dtype=np.float64))


def _top_directions(B):
    """Top left singular vector of each (k, C) matrix of the stack ``B`` (and its singular value)."""
    if B.shape[2] == 1:
        norms = np.linalg.norm(B[:, :, 0], axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            dirs = B[:, :, 0] / norms[:, None]
        dirs[norms == 0] = 0.0
        return dirs, norms
    k, C = B.shape[1], B.shape[2]
    if C < k:
        # Top right singular vector from the small C x C Gram matrix, then
        # the left one is B v / ||B v||.
        w, V = np.linalg.eigh(np.matmul(B.transpose(0, 2, 1), B))
        left = np.einsum("fkc,fc->fk", B, V[:, :, -1])
        norms = np.linalg.norm(left, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            left /= norms[:, None]
        left[norms == 0] = 0.0
        return left, norms
    w, V = np.linalg.eigh(np.matmul(B, B.transpose(0, 2, 1)))
    return V[:, :, -1], np.sqrt(np.clip(w[:, -1], 0.0, None))


def project_cone(G, c):
    """Euclidean projection of ``c`` onto the cone :math:`\\{a : Ga \\ge 0\\}`.

    By Moreau's decomposition :math:`\\Pi_K(c) = c + G^\\top\\lambda^\\star`
    with :math:`\\lambda^\\star = \\arg\\min_{\\lambda \\ge 0}\\|c +
    G^\\top\\lambda\\|`, a non-negative least-squares problem.

    Parameters
    ----------
    G : ndarray of shape (n_rows, k)
        Constraint rows.
    c : ndarray of shape (k,)
        Point to project.

    Returns
    -------
    projection : ndarray of shape (k,)
        The closest point of the cone.
    """
    if G.shape[0] == 0 or np.all(G @ c >= 0):
        return c
    lam, _ = nnls(G.T, -c, maxiter=50 * G.shape[0])
    return c + G.T @ lam


def _select(X, U, scores, n_directions, tol):
    """The ``n_directions`` best columns of ``U`` with distinct activation patterns."""
    order = np.argsort(-scores, kind="stable")
    chosen, seen = [], set()
    scale = np.linalg.norm(X, axis=1)
    for j in order:
        if len(chosen) == n_directions or not np.isfinite(scores[j]):
            break
        key = np.packbits(X @ U[:, j] > tol * scale).tobytes()
        if key in seen:
            continue
        seen.add(key)
        chosen.append(j)
    chosen = np.array(chosen, dtype=np.intp)
    return U[:, chosen], scores[chosen]


class ExhaustiveOracle:
    """Exact dual oracle over every face of the arrangement of ``X`` (data of small rank).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Data the neurons act on (with a ones column for hidden biases).
    max_faces : int, default=200_000
        Refuse data whose arrangement may have more faces (``ValueError``).
    tol : float, default=1e-9
        Geometric tolerance of the enumeration (see ``skconvex.programs._geometry``).

    Attributes
    ----------
    n_faces : int
        Number of face candidates examined per call.
    rank : int
        Rank of ``X``.
    """

    exact = True

    def __init__(self, X, *, max_faces=200_000, tol=1e-9):
        self.X = np.asarray(X, dtype=np.float64)
        self.basis, self.Z = row_space(self.X)
        self.rank = self.Z.shape[1]
        self.tol = tol
        if self.rank == 0:
            self.groups = []
            self.n_faces = 0
            return
        self.groups = face_points(self.Z, tol=tol, max_faces=max_faces)
        self.n_faces = int(sum(p.shape[1] for _, p in self.groups))
        n = self.Z.shape[0]
        check_memory(
            self.n_faces * (n // 8 + 1 + 8 * self.rank**2) + 8 * n * min(self.n_faces, _CHUNK_ENTRIES // max(n, 1)),
            what=f"The exhaustive oracle with {self.n_faces} faces",
            lower="the number of samples (or use sampled arrangements)",
        )
        scale = np.linalg.norm(self.Z, axis=1)[:, None]
        # Masks of the faces: rows whose hyperplane contains the face have
        # x_j^T u = 0 there and are left out (their value does not matter).
        self.masks = [np.packbits(self.Z @ p > tol * scale, axis=0) for _, p in self.groups]

    def __call__(self, Theta, *, n_directions=1):
        """Maximize :math:`\\|\\Theta^\\top (Xu)_+\\|` over the unit ball.

        Parameters
        ----------
        Theta : ndarray of shape (n_samples, n_outputs)
            Dual point.
        n_directions : int, default=1
            Number of maximizing directions to return (distinct patterns).

        Returns
        -------
        result : OracleResult
        """
        Theta = np.asarray(Theta, dtype=np.float64).reshape(self.Z.shape[0], -1)
        n, C = Theta.shape
        if self.rank == 0:
            d = self.X.shape[1]
            return OracleResult(0.0, 0.0, np.zeros((d, 0)), np.zeros(0), True)
        cands = []
        step = max(1, _CHUNK_ENTRIES // max(n * C, 1))
        for (bases, points), packed in zip(self.groups, self.masks):
            for start in range(0, points.shape[1], step):
                stop = min(start + step, points.shape[1])
                M = np.unpackbits(packed[:, start:stop], axis=0, count=n).astype(np.float64)
                # c_f = Z^T D_f Theta for every face f, then projected on its flat.
                G = np.einsum("nr,nc,nf->frc", self.Z, Theta, M, optimize=True)
                Q = bases[start:stop]
                B = np.einsum("frk,frc->fkc", Q, G)
                b, _ = _top_directions(B)
                a = np.einsum("frk,fk->rf", Q, b)
                cands.append(np.concatenate([a, -a], axis=1))
        U = np.concatenate(cands, axis=1)
        scores = relu_dual_norm(self.Z, Theta, U)
        dirs, best = _select(self.Z, U, scores, n_directions, self.tol)
        value = float(best[0]) if best.size else 0.0
        return OracleResult(value, value, self.basis @ dirs, best, True)


class PatternOracle:
    """Dual oracle restricted to the closed cones of given activation patterns.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Data the neurons act on.
    patterns : ndarray of shape (n_samples, n_patterns), dtype bool
        Activation patterns (cells of the arrangement).
    gates : ndarray of shape (n_features, n_patterns), default=None
        A point inside each cell (the sampled gates); used to find the facets
        of the cones for exact vector-output maximization.
    max_face_subsets : int, default=200_000
        With several outputs, a cone is maximized exactly by enumerating its
        faces when it has at most this many candidate faces; otherwise by
        projected power iteration, with the gated spectral bound as the
        certified upper bound.

    Attributes
    ----------
    n_patterns : int
        Number of cones.
    """

    def __init__(self, X, patterns, *, gates=None, max_face_subsets=200_000):
        self.basis, self.Z = row_space(np.asarray(X, dtype=np.float64))
        self.X = np.asarray(X, dtype=np.float64)
        self.patterns = np.asarray(patterns, dtype=bool)
        self.n_patterns = self.patterns.shape[1]
        self.signs = np.where(self.patterns, 1.0, -1.0)
        self.gates = None if gates is None else self.basis.T @ np.asarray(gates, dtype=np.float64)
        self.max_face_subsets = int(max_face_subsets)
        self._facets = {}
        self._bases = {}
        self.exact = True

    def _cone_rows(self, p):
        """Rows of the constraint matrix of cone ``p`` (its facets when known)."""
        G = self.signs[:, p, None] * self.Z
        if G.shape[1] > _MAX_HULL_RANK:
            # Convex hulls in high dimension cost too much; non-negative
            # least squares copes with redundant rows.
            return G
        if p not in self._facets:
            self._facets[p] = cone_facets(G, None if self.gates is None else self.gates[:, p])
        return G[self._facets[p]]

    def _scalar(self, Theta, n_directions):
        theta = Theta[:, 0]
        c = (self.Z * theta[:, None]).T @ self.patterns  # (r, P)
        c = np.concatenate([c, -c], axis=1)
        cone = np.concatenate([np.arange(self.n_patterns)] * 2)
        bound = np.linalg.norm(c, axis=0)
        uppers = bound.copy()
        values = np.zeros(c.shape[1])
        dirs = np.zeros_like(c)
        best = 0.0
        # Cones in decreasing order of the gated bound ||c||: once it falls
        # below the best exact value no cone can do better.
        for j in np.argsort(-bound):
            if bound[j] <= best * (1 - 1e-12) and len(values[values > 0]) >= n_directions:
                break
            proj = project_cone(self._cone_rows(cone[j]), c[:, j])
            norm = np.linalg.norm(proj)
            values[j] = norm
            uppers[j] = norm
            if norm > 0:
                dirs[:, j] = proj / norm
            best = max(best, norm)
        return dirs, values, uppers

    def _face_bases(self, p):
        """Orthonormal bases of the flats spanned by subsets of the facets of cone ``p``.

        They do not depend on the dual point, so they are computed once per
        cone: a list of ``(n_flats, r, dim)`` stacks, one per codimension.
        """
        if p in self._bases:
            return self._bases[p]
        G = self._cone_rows(p)
        f, r = G.shape
        stacks = [np.eye(r)[None]]
        for size in range(1, min(f, r - 1) + 1):
            _, s, Vt = np.linalg.svd(G[_subsets(f, size)])
            ok = s[:, -1] > 1e-7
            if ok.any():
                stacks.append(np.ascontiguousarray(Vt[ok, size:].transpose(0, 2, 1)))
        self._bases[p] = stacks
        return stacks

    def _cone_maximum(self, p, B, floor=0.0):
        """Exact :math:`\\max_{a \\in K_p, \\|a\\| = 1}\\|B^\\top a\\|` over the faces of cone ``p``."""
        G = self._cone_rows(p)
        scale = np.linalg.norm(G, axis=1)[:, None]
        # When the top singular direction (either sign) lies in the cone it
        # is the maximum over the cone: no face needs examining.
        b, top = _top_directions(B[None])
        for a in (b[0], -b[0]):
            if top[0] > 0 and np.all(G @ a >= -1e-9 * scale[:, 0]):
                return float(top[0]), a
        stacks = self._face_bases(p)
        Bs = [np.einsum("frk,rc->fkc", Q, B) for Q in stacks]
        grams = [np.matmul(b.transpose(0, 2, 1), b) for b in Bs]
        # The face's value squared is the top eigenvalue of its Gram matrix,
        # at most its trace and its largest absolute row sum (Gershgorin):
        # faces below the best value already found (in any cone) cannot
        # raise the maximum.
        keep = [
            np.minimum(np.trace(g, axis1=1, axis2=2), np.abs(g).sum(axis=2).max(axis=1)) > floor**2
            for g in grams
        ]
        stacks = [Q[k] for Q, k in zip(stacks, keep) if k.any()]
        Bs = [b[k] for b, k in zip(Bs, keep) if k.any()]
        grams = [g[k] for g, k in zip(grams, keep) if k.any()]
        if not Bs:
            return 0.0, None
        # One eigendecomposition for every flat of every dimension: the
        # C x C Gram matrices share their shape.
        _, V = np.linalg.eigh(np.concatenate(grams))
        V = V[:, :, -1]
        cands, start = [], 0
        for Q, b in zip(stacks, Bs):
            left = np.einsum("fkc,fc->fk", b, V[start : start + len(b)])
            start += len(b)
            norms = np.linalg.norm(left, axis=1)
            live = norms > 0
            cands.append(np.einsum("frk,fk->rf", Q[live], left[live] / norms[live, None]))
        U = np.concatenate(cands, axis=1)
        U = np.concatenate([U, -U], axis=1)
        U = U[:, np.all(G @ U >= -1e-9 * scale, axis=0)]
        if not U.shape[1]:
            return 0.0, None
        vals = np.linalg.norm(B.T @ U, axis=0)
        j = int(np.argmax(vals))
        return float(vals[j]), U[:, j]

    def _power(self, G, A, start, n_iter=50):
        """Projected power iteration for max a^T A a over the cone ``G a >= 0`` and the unit ball."""
        a = start / max(np.linalg.norm(start), 1e-300)
        shift = np.trace(A)
        for _ in range(n_iter):
            b = project_cone(G, A @ a + shift * a)
            nb = np.linalg.norm(b)
            if nb == 0:
                break
            b /= nb
            if np.linalg.norm(b - a) < 1e-10:
                a = b
                break
            a = b
        return a

    def _vector(self, Theta, n_directions):
        r = self.Z.shape[1]
        B = np.einsum("nr,nc,np->prc", self.Z, Theta, self.patterns.astype(np.float64), optimize=True)
        A = np.matmul(B, B.transpose(0, 2, 1))
        gated = np.sqrt(np.clip(np.linalg.eigvalsh(A)[:, -1], 0.0, None))
        values = np.zeros(self.n_patterns)
        uppers = gated.copy()
        dirs = np.zeros((r, self.n_patterns))
        best = 0.0
        exact = True
        n_power = 0
        for p in np.argsort(-gated):
            if gated[p] <= best * (1 - 1e-12) and np.count_nonzero(values) >= n_directions:
                # The gated bound already certifies this cone.
                continue
            G = self._cone_rows(p)
            n_subsets = sum(comb(G.shape[0], k) for k in range(1, r))
            if n_subsets <= self.max_face_subsets:
                value, a = self._cone_maximum(p, B[p], floor=best)
                if a is not None:
                    values[p], dirs[:, p] = value, a
                # Faces pruned against ``best`` are certified by it.
                uppers[p] = max(values[p], best)
            else:
                # Too many faces: the gated bound stays the certificate and
                # projected power iteration on the most promising cones
                # supplies directions.
                exact = False
                n_power += 1
                if n_power > max(2 * n_directions, 10):
                    continue
                start = self.gates[:, p] if self.gates is not None else np.linalg.eigh(A[p])[1][:, -1]
                a = self._power(G, A[p], start)
                values[p], dirs[:, p] = np.linalg.norm(B[p].T @ a), a
            best = max(best, values[p])
        return dirs, values, uppers, exact

    def __call__(self, Theta, *, n_directions=1):
        """Maximize :math:`\\|\\Theta^\\top D_p X u\\|` over the unit ball of every cone.

        Parameters
        ----------
        Theta : ndarray of shape (n_samples, n_outputs)
            Dual point.
        n_directions : int, default=1
            Number of maximizing directions to return (distinct patterns).

        Returns
        -------
        result : OracleResult
            ``upper`` certifies the maximum over the given cones.
        """
        Theta = np.asarray(Theta, dtype=np.float64).reshape(self.Z.shape[0], -1)
        if self.Z.shape[1] == 0 or self.n_patterns == 0:
            return OracleResult(0.0, 0.0, np.zeros((self.X.shape[1], 0)), np.zeros(0), True)
        if Theta.shape[1] == 1:
            dirs, values, uppers = self._scalar(Theta, n_directions)
            exact = True
        else:
            dirs, values, uppers, exact = self._vector(Theta, n_directions)
        upper = float(uppers.max())
        keep = values > 0
        dirs, scores = _select(self.Z, dirs[:, keep], values[keep], n_directions, 1e-9)
        value = float(scores[0]) if scores.size else 0.0
        self.exact = exact
        return OracleResult(value, max(upper, value), self.basis @ dirs, scores, exact)


def gated_dual_norms(X, grad, gates, penalty):
    """Dual block norm :math:`R^\\circ(X^\\top D_g \\nabla F)` of the pattern of every gate.

    The dual constraint of the gated program is that this norm is at most
    ``alpha`` for every pattern: a gate whose pattern violates it would lower
    the objective if its block were added (the violation of a pattern not in
    the program is the optimality test of column generation). Computed for
    every gate at once with one masked GEMM per chunk of gates.

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
        Data the gates act on (with the ones column for hidden biases).
    grad : ndarray of shape (n_samples, n_outputs)
        Gradient of the datafit at the current predictions (the dual point is
        its negative; the sign does not change the norm).
    gates : ndarray of shape (n_features, n_gates)
        Candidate gates; gate ``g`` has pattern ``X @ g >= 0``.
    penalty : BlockPenalty
        Block penalty of the program (``GroupL2``: Frobenius norm,
        ``GroupNuclear``: spectral norm).

    Returns
    -------
    norms : ndarray of shape (n_gates,)
        Dual block norm of each gate's pattern, in float64.
    """
    grad = np.asarray(grad, dtype=np.float64).reshape(X.shape[0], -1)
    C = grad.shape[1]
    K = gates.shape[1]
    out = np.empty(K)
    if hasattr(X, "tocsr"):
        X = X.tocsr()  # row blocks of CSC would copy column by column
    # Gates in chunks and rows in blocks (see _gate_and_row_chunks), within a
    # fraction of the memory budget so that a row-blocked fit stays bounded.
    entries = min(_CHUNK_ENTRIES, memory_budget() // (4 * 8))
    for cols, rows in _gate_and_row_chunks(X.shape, K, C, entries):
        U = np.asarray(gates[:, cols], dtype=np.float64)
        k = U.shape[1]
        G = np.zeros((X.shape[1], k * C))
        for r, Xb in _row_blocks64(X, rows):
            masks = np.asarray(Xb @ U) >= 0  # (b, k)
            # X_b^T (m_g * grad_b) for every gate and output at once: (d, k * C).
            G += np.asarray(Xb.T @ (masks[:, :, None] * grad[r, None, :]).reshape(-1, k * C))
        out[cols] = penalty.dual_group_norms(G.reshape(X.shape[1], k, C))
    return out
