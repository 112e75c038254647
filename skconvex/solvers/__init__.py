"""Solvers: each takes a problem and returns a :class:`~skconvex.solvers.SolveResult`; none knows scikit-learn."""

from ._result import SolveResult
from .conic import SolverError, cvxpy_cone_solve, cvxpy_solve
from .fista import fista, solve_certified

__all__ = ["SolveResult", "SolverError", "cvxpy_cone_solve", "cvxpy_solve", "fista", "solve_certified"]
