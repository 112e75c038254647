"""The problem layer: operators, datafits, penalties, cones and the composite programs.

Every convex network of the package is one program
:math:`\\min_W F(\\mathcal{A}W + \\mathbf{1}b^\\top) + \\alpha R(W)`, possibly with
cone constraints, assembled from the pieces below; solvers
(:mod:`skconvex.solvers`) take such a program and return a
:class:`~skconvex.solvers.SolveResult`, estimators (:mod:`skconvex.models`)
build the program from data. This subpackage imports numpy, scipy and
:mod:`skconvex._config` only (cvxpy lazily, inside the ``cvxpy`` forms).

The interfaces every piece implements are declared in
:mod:`skconvex.programs._protocols` (:class:`Operator`, :class:`Problem`,
:class:`Datafit`, :class:`Penalty`).
"""

from ._protocols import (
    Datafit,
    Operator,
    Penalty,
    Problem,
    require_restrict,
    supports_restrict,
)

__all__ = ["Datafit", "Operator", "Penalty", "Problem", "require_restrict", "supports_restrict"]
