"""Cells and faces of central hyperplane arrangements, for data of small rank.

The hyperplanes are :math:`\\{u : x_j^\\top u = 0\\}`, one per row of ``X``.
Every activation pattern :math:`1[Xu \\ge 0]` of a ReLU neuron is constant on
the cells (full-dimensional regions) of this arrangement, so enumerating the
cells gives *every* pattern, and the convex programs of Pilanci & Ergen (2020)
with all cells are exact for the unsampled training problem.

Algorithm. Work in coordinates of the row space (rank :math:`r`). A cell of a
central arrangement of rank :math:`r \\ge 2` is a pointed polyhedral cone, so it
has an extreme ray, and every extreme ray is a one-dimensional *flat* (an
intersection of hyperplanes of rank :math:`r-1`). Around a ray :math:`v` the
arrangement looks like the arrangement, inside :math:`v^\\perp`, of the
hyperplanes that contain :math:`v`; its cells (found recursively, or as the
:math:`2^{r-1}` orthants when exactly :math:`r-1` hyperplanes meet there) give
the cells adjacent to :math:`v` through points :math:`v + \\varepsilon d`.
Cost: :math:`\\binom{m}{r-1}` rays for :math:`m` distinct hyperplanes, which is
where the exponential dependence on the rank lives.

*Faces* (relatively open cells of the arrangement restricted to every flat)
are what exact maximization over the sphere needs: the maximizer of a function
that is a smooth function of :math:`D X u` on each face lies in the relative
interior of some face, where it is a stationary point inside that face's flat.
"""

from itertools import combinations
from math import comb

import numpy as np

from .._config import check_memory

__all__ = ["row_space", "cell_points", "face_points", "count_cells_bound", "estimate_faces", "cone_facets"]


def row_space(X, *, tol=1e-10):
    """Orthonormal basis of the row space of ``X`` and the coordinates of the rows in it.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Data.
    tol : float, default=1e-10
        Singular values below ``tol`` times the largest one are treated as zero.

    Returns
    -------
    basis : ndarray of shape (n_features, rank)
        Orthonormal columns spanning the row space.
    Z : ndarray of shape (n_samples, rank)
        ``X @ basis``.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.size == 0 or not np.any(X):
        return np.zeros((X.shape[1], 0)), np.zeros((X.shape[0], 0))
    _, s, Vt = np.linalg.svd(X, full_matrices=False)
    rank = int(np.sum(s > tol * s[0]))
    basis = Vt[:rank].T
    return basis, X @ basis


def count_cells_bound(n_hyperplanes, rank):
    """Largest number of cells of a central arrangement (Cover, 1965).

    :math:`2\\sum_{k=0}^{r-1}\\binom{m-1}{k}` for :math:`m` hyperplanes through
    the origin of :math:`\\mathbb{R}^r` in general position; any other
    arrangement of the same size and rank has fewer cells.

    Parameters
    ----------
    n_hyperplanes : int
        Number of distinct hyperplanes (rows of the data, up to scaling).
    rank : int
        Rank of the data.

    Returns
    -------
    bound : int
        The number of cells in general position.
    """
    m, r = int(n_hyperplanes), int(rank)
    if r <= 0 or m <= 0:
        return 1
    return 2 * sum(comb(m - 1, k) for k in range(min(r, m)))


def _unit_hyperplanes(Z, tol):
    """Unit normals of the distinct hyperplanes among the rows of ``Z`` (zero rows dropped)."""
    norms = np.linalg.norm(Z, axis=1)
    if norms.size == 0 or norms.max() == 0:
        return np.zeros((0, Z.shape[1]))
    H = Z[norms > tol * norms.max()]
    H = H / np.linalg.norm(H, axis=1, keepdims=True)
    # A hyperplane has two unit normals; make the first clearly non-zero
    # coordinate positive, then merge normals that agree to rounding.
    lead = np.argmax(np.abs(H) > 1e-8, axis=1)
    H = H * np.sign(H[np.arange(len(H)), lead])[:, None]
    keys = np.round(H / 1e-9).astype(np.int64)
    _, first = np.unique(keys, axis=0, return_index=True)
    return H[np.sort(first)]


def _ternary(S, tol):
    """Signs of ``S`` with entries within ``tol`` of zero set to 0, as int8."""
    out = np.sign(S).astype(np.int8)
    out[np.abs(S) <= tol] = 0
    return out


def _null_vectors(A):
    """Unit null vector of each (k-1, k) matrix in the stack ``A``, and its conditioning."""
    k = A.shape[2]
    if k == 2:
        V = np.stack([-A[:, 0, 1], A[:, 0, 0]], axis=1)
        return V / np.linalg.norm(V, axis=1, keepdims=True), np.linalg.norm(A[:, 0], axis=1)
    if k == 3:
        V = np.cross(A[:, 0], A[:, 1])
        size = np.linalg.norm(V, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return V / size[:, None], size
    _, s, Vt = np.linalg.svd(A)
    return Vt[:, -1], s[:, -1]


def _complement_basis(v):
    """Orthonormal basis (k, k-1) of the orthogonal complement of the unit vector ``v``."""
    k = v.shape[0]
    # Householder reflection mapping e_1 to v: its other columns span v-perp.
    e = np.zeros(k)
    e[0] = 1.0
    w = v - e if v[0] < 0 else v + e
    H = np.eye(k) - 2.0 * np.outer(w, w) / (w @ w)
    return H[:, 1:]


def cell_points(Z, *, tol=1e-9, max_cells=None):
    """One interior point of every cell of the central arrangement of the rows of ``Z``.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, k)
        Normals of the hyperplanes, of rank ``k`` (zero rows are ignored).
    tol : float, default=1e-9
        A unit normal whose inner product with a unit ray is below ``tol`` is
        taken to contain it.
    max_cells : int, default=None
        Refuse (``ValueError``) when the number of candidate rays would exceed
        this many.

    Returns
    -------
    points : ndarray of shape (k, n_points)
        Points strictly inside cells; every cell has at least one (duplicates
        are possible and are removed by the callers through the patterns).
    """
    k = Z.shape[1]
    if k == 1:
        return np.array([[1.0, -1.0]])
    H = _unit_hyperplanes(Z, tol)
    m = len(H)
    if m < k - 1:
        raise ValueError("cell_points needs data whose rows span the space.")
    n_subsets = comb(m, k - 1)
    if max_cells is not None and 2 * n_subsets > max_cells:
        raise ValueError(
            f"Enumerating the arrangement would examine {2 * n_subsets} rays "
            f"(rank {k}, {m} distinct hyperplanes), more than the limit of {max_cells}."
        )
    check_memory(
        2 * n_subsets * (m + 8 * k),
        what=f"Enumerating the arrangement of {m} hyperplanes of rank {k}",
        lower="the number of samples or features",
    )
    if k == 2:
        subsets = np.arange(m)[:, None]
    else:
        subsets = _subsets(m, k - 1)
    V, size = _null_vectors(H[subsets])
    V = V[size > 1e-7]
    V = np.concatenate([V, -V])
    S = H @ V.T
    T = _ternary(S, tol)
    # Rays found from several subsets of hyperplanes (degenerate vertices)
    # repeat; keep one per distinct sign vector.
    packed = np.packbits(np.concatenate([T > 0, T == 0], axis=0), axis=0)
    _, first = np.unique(packed, axis=1, return_index=True)
    V, S, T = V[first], S[:, first], T[:, first]
    zero = T == 0
    n_zero = zero.sum(axis=0)
    points = []

    generic = np.flatnonzero(n_zero == k - 1)
    if generic.size:
        # Around a ray where exactly k-1 hyperplanes meet, the adjacent cells
        # are the 2^(k-1) orthants of those hyperplanes inside v-perp.
        J = np.nonzero(zero[:, generic].T)[1].reshape(len(generic), k - 1)
        HJ = H[J]
        pinv = np.linalg.pinv(HJ)
        signs = np.array(
            np.meshgrid(*([[-1.0, 1.0]] * (k - 1)), indexing="ij")
        ).reshape(k - 1, -1)
        D = np.einsum("rkj,js->rks", pinv, signs)
        points.append(_perturb(V[generic], S[:, generic], zero[:, generic], H, D))

    for ray in np.flatnonzero(n_zero > k - 1):
        v = V[ray]
        Q = _complement_basis(v)
        local = cell_points(H[zero[:, ray]] @ Q, tol=tol)
        D = (Q @ local)[None]
        points.append(_perturb(V[ray : ray + 1], S[:, ray : ray + 1], zero[:, ray : ray + 1], H, D))
    return np.concatenate(points, axis=1) if points else np.zeros((k, 0))


def _perturb(V, S, zero, H, D):
    """Points ``v + eps * d`` for rays ``V`` (R, k) and directions ``D`` (R, k, s).

    ``eps`` is half the largest step that keeps the sign of every hyperplane
    not containing the ray.
    """
    HD = np.einsum("mk,rks->rms", H, D)
    margin = np.where(zero.T, np.inf, np.abs(S.T))[:, :, None]
    with np.errstate(divide="ignore"):
        ratio = np.where(zero.T[:, :, None], np.inf, margin / np.abs(HD))
    eps = 0.5 * np.minimum(ratio.min(axis=1), 1.0)
    P = V[:, :, None] + eps[:, None, :] * D
    P /= np.linalg.norm(P, axis=1, keepdims=True)
    return P.transpose(1, 0, 2).reshape(V.shape[1], -1)


def _subsets(m, size):
    """All ``size``-subsets of ``range(m)`` as an int array (n_subsets, size)."""
    count = comb(m, size)
    return np.fromiter(
        (i for c in combinations(range(m), size) for i in c), dtype=np.intp, count=count * size
    ).reshape(count, size)


def _flats(H, dim, tol):
    """Orthonormal bases (n_flats, k, dim) of the distinct flats of dimension ``dim``.

    A flat is the intersection of the hyperplanes with normals ``H[J]`` for
    some set ``J`` of rank ``k - dim``; flats reached from several such sets
    are kept once (same set of hyperplanes containing them).
    """
    m, k = H.shape
    if dim == k:
        return np.eye(k)[None]
    codim = k - dim
    _, s, Vt = np.linalg.svd(H[_subsets(m, codim)])
    Q = Vt[s[:, -1] > 1e-7, codim:].transpose(0, 2, 1)
    contains = np.abs(np.einsum("mk,fkd->fmd", H, Q)).max(axis=2) <= tol
    _, first = np.unique(np.packbits(contains, axis=1), axis=0, return_index=True)
    return Q[np.sort(first)]


def estimate_faces(Z, *, tol=1e-9):
    """Upper bound on the number of faces of the arrangement of the rows of ``Z`` (rank = ``Z.shape[1]``).

    Sum over flat dimensions ``k`` of (number of ``r - k``-subsets of
    hyperplanes) times Cover's bound on the cells of a rank-``k`` arrangement.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, r)
        Data in coordinates of its row space.
    tol : float, default=1e-9
        Tolerance for merging repeated hyperplanes.

    Returns
    -------
    estimate : int
        Upper bound on the number of faces of every dimension.
    """
    r = Z.shape[1]
    if r == 0:
        return 0
    m = len(_unit_hyperplanes(Z, tol))
    return sum(comb(m, r - dim) * count_cells_bound(m, dim) for dim in range(1, r + 1))


def face_points(Z, *, tol=1e-9, max_faces=None):
    """Flats and relative-interior points of every face of the arrangement of ``Z``'s rows.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, r)
        Data in coordinates of its row space (rank ``r``).
    tol : float, default=1e-9
        See :func:`cell_points`.
    max_faces : int, default=None
        Refuse (``ValueError``) when the estimated number of faces exceeds it.

    Returns
    -------
    faces : list of (bases, points)
        Groups of faces of one dimension ``dim``: ``bases`` (n_points, r, dim)
        holds the orthonormal basis of the flat of each face and ``points``
        (r, n_points) a unit point in its relative interior (every face
        appears at least once).
    """
    r = Z.shape[1]
    H = _unit_hyperplanes(Z, tol)
    m = len(H)
    estimate = estimate_faces(Z, tol=tol)
    if max_faces is not None and estimate > max_faces:
        raise ValueError(
            f"The arrangement of {m} distinct hyperplanes of rank {r} has up to "
            f"{estimate} faces, more than the limit of {max_faces}."
        )
    faces = []
    for dim in range(r, 0, -1):
        bases = _flats(H, dim, tol)
        if dim == 1:
            # Rays: the two unit points of each line, all in one group.
            Q = bases[:, :, 0].T
            faces.append((np.concatenate([bases, bases]), np.concatenate([Q, -Q], axis=1)))
            continue
        for Q in bases:
            local = H @ Q
            keep = np.linalg.norm(local, axis=1) > tol
            pts = Q @ cell_points(local[keep], tol=tol)
            faces.append((np.broadcast_to(Q, (pts.shape[1],) + Q.shape), pts))
    return faces


def cone_facets(G, interior=None, *, tol=1e-9):
    """Rows of ``G`` that define facets of the cone :math:`\\{a : Ga \\ge 0\\}`.

    The facets of the cone are the extreme rays of the dual cone generated by
    the rows :math:`g_j`. With a point :math:`c` inside the cone
    (:math:`Gc > 0`), the rays cut the hyperplane :math:`c^\\top x = 1` at
    :math:`g_j / c^\\top g_j`, and the extreme rays are the vertices of the
    convex hull of those points (Qhull); rows that repeat a direction are kept
    once.

    Parameters
    ----------
    G : ndarray of shape (n_rows, k)
        Constraint rows.
    interior : ndarray of shape (k,), default=None
        A point with ``G @ interior > 0``; found by linear programming when
        None or not strictly inside.
    tol : float, default=1e-9
        Relative tolerance for zero rows and repeated directions.

    Returns
    -------
    rows : ndarray of int
        Indices of facet-defining rows (all non-zero rows when the cone has
        an empty interior, which the callers never produce).
    """
    from scipy.optimize import linprog
    from scipy.spatial import ConvexHull, QhullError

    n, k = G.shape
    norms = np.linalg.norm(G, axis=1)
    live = np.flatnonzero(norms > tol * max(norms.max(initial=0.0), 1e-300))
    if live.size <= 1 or k == 1:
        return live[:1] if k == 1 else live
    Gn = G[live] / norms[live, None]
    keys = np.round(Gn / 1e-9).astype(np.int64)
    _, first = np.unique(keys, axis=0, return_index=True)
    live, Gn = live[np.sort(first)], Gn[np.sort(first)]
    if live.size <= k - 1:
        return live
    c = None if interior is None else np.asarray(interior, dtype=np.float64)
    if c is None or np.any(Gn @ c <= tol * np.linalg.norm(c)):
        # max t s.t. Gn c >= t, -1 <= c <= 1: a well-centred interior point.
        res = linprog(
            np.r_[np.zeros(k), -1.0],
            A_ub=np.c_[-Gn, np.ones(len(Gn))],
            b_ub=np.zeros(len(Gn)),
            bounds=[(-1, 1)] * k + [(None, 1)],
            method="highs",
        )
        if res.status != 0 or res.x[-1] <= 1e-12:
            return live
        c = res.x[:k]
    c = c / np.linalg.norm(c)
    pts = Gn / (Gn @ c)[:, None]
    coords = pts @ _complement_basis(c)
    if k == 2:
        return live[[int(np.argmin(coords[:, 0])), int(np.argmax(coords[:, 0]))]]
    try:
        hull = ConvexHull(coords)
    except QhullError:
        return live
    return live[np.sort(hull.vertices)]
