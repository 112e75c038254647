"""The result object every solver returns."""

from dataclasses import dataclass, field

import numpy as np

__all__ = ["SolveResult"]


@dataclass
class SolveResult:
    """Solution of a convex program together with what certifies it.

    Parameters
    ----------
    coef : ndarray of shape (n_features, n_patterns, n_outputs)
        Block coefficients ``W``.
    intercept : ndarray of shape (n_outputs,)
        Output intercept (zeros when not fitted).
    objective : float
        Objective value at ``(coef, intercept)``.
    dual_objective : float
        A certified lower bound on the optimal value (``-inf`` if the solver
        provides none).
    n_iter : int
        Iterations performed.
    converged : bool
        Whether the stopping criterion was met.
    solver : str
        Name of the solver.
    constraint_violation : float
        Largest violation of the constraints (0 for unconstrained programs).
    n_products : int
        Number of GEMMs with the data matrix (forward and adjoint, line search
        included), for benchmarks.
    history : list
        Per-iteration records when the solver keeps them.
    info : dict
        Solver-specific extras (e.g. the last step size, for warm starts).
    """

    coef: np.ndarray
    intercept: np.ndarray
    objective: float
    dual_objective: float
    n_iter: int
    converged: bool
    solver: str
    constraint_violation: float = 0.0
    n_products: int = 0
    history: list = field(default_factory=list)
    info: dict = field(default_factory=dict)

    @property
    def gap(self):
        """Certified duality gap ``objective - dual_objective`` (absolute)."""
        return self.objective - self.dual_objective

    @property
    def relative_gap(self):
        """Duality gap relative to the objective."""
        return self.gap / max(abs(self.objective), np.finfo(float).tiny)
