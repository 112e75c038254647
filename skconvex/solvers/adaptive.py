"""Adaptive arrangements: grow the activation patterns of a program where its dual is violated.

A program over sampled patterns is a restriction of the training problem
over *all* patterns. At a solution of the restriction, a pattern :math:`D`
outside it lowers the objective exactly when its dual constraint is
violated, :math:`R^\\circ(X^\\top D\\,\\Theta) > \\alpha` (gated program) or
:math:`\\max_{u \\in K_D}\\|\\Theta^\\top D X u\\| > \\alpha` (exact program,
:math:`K_D` the cone of the pattern), with :math:`\\Theta = -\\nabla F` at the
solution. :func:`grow_patterns` is column generation on patterns: propose
candidate gates, evaluate their dual norms at once, add the most violated
new patterns, re-solve warm, and stop when no candidate violates its
constraint by more than ``alpha * (1 + tol)`` or the budget is spent.

The function is generic: the caller says how to rebuild the program for a
set of gates, how to solve it from a starting point, how to pad a solution
with zero blocks for new patterns, how to propose candidates and how to
measure their violation. It knows nothing of scikit-learn.
"""

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

__all__ = ["GrowthResult", "grow_patterns", "pattern_keys"]


@dataclass
class GrowthResult:
    """Outcome of :func:`grow_patterns`.

    Parameters
    ----------
    result : SolveResult
        Solution of the last program (over ``gates``).
    problem : object
        That program.
    gates : ndarray of shape (n_features, n_patterns)
        Gates of the grown arrangement (the initial ones first).
    patterns : ndarray of shape (n_samples, n_patterns), dtype bool
        Their activation patterns.
    max_violation : float
        Largest dual norm, relative to ``alpha``, over the patterns of the
        program and the candidates of the last proposal, at ``result``
        (``<= 1 + tol`` means no proposed pattern improves the solution by
        more than the tolerance).
    violating_gate : ndarray of shape (n_features,)
        The gate attaining ``max_violation``.
    n_rounds : int
        Re-solves after the first solve.
    history : list of dict
        Per round: ``n_patterns``, ``objective``, ``max_violation``,
        ``n_added``.
    """

    result: object
    problem: object
    gates: np.ndarray
    patterns: np.ndarray
    max_violation: float
    violating_gate: np.ndarray
    n_rounds: int = 0
    history: list = field(default_factory=list)


def pattern_keys(X, gates, support=None):
    """Hashable keys of the activation patterns ``X @ gates >= 0`` (rows in ``support`` only).

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
        Data.
    gates : ndarray of shape (n_features, n_gates)
        Gates.
    support : ndarray of shape (n_samples,), dtype bool, default=None
        Rows that count (rows with zero weight do not change the program).

    Returns
    -------
    keys : list of bytes
        One key per gate; equal keys mean equal patterns on ``support``.
    patterns : ndarray of shape (n_samples, n_gates), dtype bool
        The full patterns.
    """
    patterns = np.asarray(X @ gates) >= 0
    rows = patterns if support is None else patterns[support]
    packed = np.packbits(rows, axis=0)
    return [packed[:, j].tobytes() for j in range(packed.shape[1])], patterns


def _margins_ok(X, U, rtol):
    """Candidates with no training row on their hyperplane (up to ``rtol``).

    A row on the hyperplane has an ambiguous pattern entry (rounding in
    another dtype could flip it) and a gate without margin is not inside its
    cell, which the exact program uses to move points into the cones.
    """
    H = np.abs(np.asarray(X @ U))
    row_norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel()) if sp.issparse(X) else np.linalg.norm(X, axis=1)
    scale = row_norms[:, None] * np.linalg.norm(U, axis=0)[None, :]
    return np.all((H > rtol * scale) | (scale == 0), axis=0)


def grow_patterns(
    problem,
    gates,
    result,
    *,
    rebuild,
    solve,
    pad,
    propose,
    violation,
    max_patterns,
    tol,
    max_rounds=10,
    n_add=None,
    support=None,
    margin=1e-6,
    n_draws=3,
    verbose=0,
):
    """Grow a program's activation patterns by column generation on its dual.

    Parameters
    ----------
    problem : ConvexProblem or ConeConstrainedProblem
        Program over the patterns of ``gates``; ``problem.operator.X`` is the
        data the gates act on.
    gates : ndarray of shape (n_features, n_patterns)
        Initial gates.
    result : SolveResult
        Solution of ``problem`` (the fixed-pattern fit growth starts from).
    rebuild : callable
        ``rebuild(gates, patterns) -> problem``: the program over new gates.
    solve : callable
        ``solve(problem, coef_init, intercept_init) -> SolveResult``.
    pad : callable
        ``pad(coef, n_new) -> coef``: a solution with zero blocks for
        ``n_new`` gates appended (feasible for the grown program, same
        objective).
    propose : callable
        ``propose(theta, coef, round) -> ndarray of shape (n_features, k)``:
        candidate gates at dual point ``theta`` (see
        :func:`skconvex.arrangements.propose_gates`).
    violation : callable
        ``violation(theta, gates) -> ndarray of shape (k,)``: dual norm of the
        pattern of each gate.
    max_patterns : int
        Budget: stop once the program has this many patterns.
    tol : float
        Patterns whose dual norm exceeds ``alpha * (1 + tol)`` are violated.
    max_rounds : int, default=10
        Maximum number of re-solves.
    n_add : int, default=None
        Patterns added per round (the most violated); None adds half the
        initial number (at least 8).
    support : ndarray of shape (n_samples,), dtype bool, default=None
        Rows that count when comparing patterns.
    margin : float, default=1e-6
        Candidates with a training row closer than ``margin`` (relative) to
        their hyperplane are not added (see :func:`_margins_ok`).
    n_draws : int, default=3
        Proposals drawn at one solution before declaring that no pattern
        violates its constraint.
    verbose : int, default=0
        Print one line per round.

    Returns
    -------
    growth : GrowthResult
        The last program, its solution, the grown gates and the remaining
        violation. The objective is never above that of ``result``: if the
        grown program's solve ends higher (it may, within its tolerance),
        the initial program and solution are returned.
    """
    X = problem.operator.X
    alpha = float(problem.alpha)
    threshold = alpha * (1.0 + tol)
    keys, patterns = pattern_keys(X, gates, support)
    known = set(keys)
    n_add = max(8, gates.shape[1] // 2) if n_add is None else int(n_add)
    start = (problem, gates, patterns, result)
    history = []
    rounds = 0
    empty = np.packbits(np.zeros(X.shape[0] if support is None else int(np.sum(support)), bool)).tobytes()
    while True:
        W = np.asarray(result.coef)
        _, _, grad = problem.smooth(problem.operator.forward(W), result.intercept)
        theta = -np.asarray(grad, dtype=np.float64)
        own = np.asarray(violation(theta, gates.astype(np.float64)), dtype=np.float64)
        best_value, violating_gate = -np.inf, None
        if own.size:
            best_value, violating_gate = float(own.max()), gates[:, int(np.argmax(own))]
        # Proposals are cheap next to a solve: a solution is only declared
        # unimprovable after ``n_draws`` proposals without a new violated
        # pattern (the reported violation covers all of them).
        for _ in range(n_draws):
            U = np.asarray(propose(theta, W, rounds), dtype=np.float64)
            values = np.asarray(violation(theta, U), dtype=np.float64)
            if values.size and values.max() > best_value:
                best_value, violating_gate = float(values.max()), U[:, int(np.argmax(values))]
            cand_keys, _ = pattern_keys(X, U, support)
            new = np.array([k not in known and k != empty for k in cand_keys], dtype=bool)
            new &= _margins_ok(X, U, margin)
            violated = np.flatnonzero(new & (values > threshold))
            if violated.size:
                break
        if alpha > 0:
            max_violation = max(best_value, 0.0) / alpha
        else:
            max_violation = np.inf if best_value > 0 else 0.0
        violating_gate = np.zeros(X.shape[1]) if violating_gate is None else np.asarray(violating_gate, np.float64)
        history.append(
            {
                "n_patterns": gates.shape[1],
                "objective": float(result.objective),
                "max_violation": max_violation,
            }
        )
        if verbose:
            print(
                f"adaptive round {rounds}: {gates.shape[1]} patterns, objective "
                f"{result.objective:.6g}, max violation {max_violation:.4f} x alpha"
            )
        room = max_patterns - gates.shape[1]
        if rounds >= max_rounds or room <= 0 or not violated.size:
            break
        chosen, seen = [], set()
        for j in violated[np.argsort(-values[violated], kind="stable")]:
            if cand_keys[j] in seen:
                continue
            seen.add(cand_keys[j])
            chosen.append(j)
            if len(chosen) == min(n_add, room):
                break
        chosen = np.array(chosen, dtype=np.intp)
        known.update(seen)
        new_gates = U[:, chosen].astype(gates.dtype)
        gates = np.ascontiguousarray(np.hstack([gates, new_gates]))
        patterns = np.hstack([patterns, np.asarray(X @ new_gates) >= 0])
        problem = rebuild(gates, patterns)
        result = solve(problem, pad(W, chosen.size), np.asarray(result.intercept))
        history[-1]["n_added"] = int(chosen.size)
        rounds += 1
    if result.objective > start[3].objective:
        # Guarantee of the method: never worse than the fixed-pattern fit.
        problem, gates, patterns, result = start
        return grow_patterns(
            problem, gates, result, rebuild=rebuild, solve=solve, pad=pad, propose=propose,
            violation=violation, max_patterns=gates.shape[1], tol=tol, max_rounds=0,
            support=support, margin=margin, n_draws=n_draws,
        )
    return GrowthResult(
        result=result,
        problem=problem,
        gates=gates,
        patterns=patterns,
        max_violation=max_violation,
        violating_gate=violating_gate,
        n_rounds=rounds,
        history=history,
    )
