"""The training problem of a two-layer ReLU network over all its neurons.

Column generation, the copositive relaxations and their closed forms solve
the *unsampled* problem

.. math:: \\min_{\\|u_j\\| \\le 1,\\ a_j,\\ b}\\;
          F\\Big(\\sum_j (Xu_j)_+ a_j^\\top + \\mathbf{1}b^\\top\\Big)
          + \\alpha \\sum_j \\|a_j\\|,

the scale-free form of weight decay :math:`\\tfrac{\\alpha}{2}\\sum_j
\\|u_j\\|^2 + \\|a_j\\|^2` (balanced neurons; Pilanci & Ergen, 2020). Its
dual constraint :math:`\\max_{\\|u\\| \\le 1} \\|\\Theta^\\top (Xu)_+\\| \\le
\\alpha` is checked by the oracles of :mod:`skconvex.programs.oracles`; for
fixed directions ``U`` the problem is a group lasso over the output weights
(:meth:`ReLUNetworkProblem.output_layer`), the restricted master problem of
column generation (Sahiner, Ergen, Pauly & Pilanci, 2021, for vector outputs).

References
----------
M. Pilanci and T. Ergen. Neural networks are convex regularizers: exact
polynomial-time convex optimization formulations for two-layer networks.
ICML 2020, arXiv:2002.10553.

A. Sahiner, T. Ergen, J. Pauly and M. Pilanci. Vector-output ReLU neural
network problems are copositive programs: convex analysis of two layer
networks and polynomial-time algorithms. ICLR 2021, arXiv:2012.13329.
"""

import numpy as np

from .operators import PatternOperator
from .penalties import GroupL2
from .problem import ConvexProblem, check_row_weights

__all__ = ["ReLUNetworkProblem"]


class ReLUNetworkProblem:
    """Weight-decay training problem of a two-layer ReLU network with free width.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Data the neurons act on (with a ones column for hidden biases).
    y : ndarray of shape (n_samples, n_outputs)
        Encoded targets.
    datafit : Datafit
        Loss (:mod:`skconvex.programs.datafits`), weighted by ``sample_weight``.
    sample_weight : ndarray of shape (n_samples,)
        Row weights (summing to one for a mean loss).
    alpha : float
        Weight-decay strength.
    fit_intercept : bool, default=True
        Free (unpenalized) output intercept.

    Examples
    --------
    >>> import numpy as np
    >>> from skconvex.programs.datafits import SquaredError
    >>> from skconvex.programs.network import ReLUNetworkProblem
    >>> X = np.array([[1.0, 1.0], [-1.0, 1.0]])
    >>> problem = ReLUNetworkProblem(X, np.array([[1.0], [0.0]]), SquaredError(), np.full(2, 0.5), 0.1)
    >>> U = np.array([[1.0], [0.0]])  # one neuron, (x_1)_+
    >>> float(problem.objective(U, np.array([[1.0]]), np.zeros(1)))
    0.1
    """

    def __init__(self, X, y, datafit, sample_weight, alpha, *, fit_intercept=True):
        self.X = np.asarray(X, dtype=np.float64)
        self.y = np.asarray(y, dtype=np.float64).reshape(self.X.shape[0], -1)
        self.datafit = datafit
        # Negative weights make the loss unbounded below: nothing to certify.
        self.sample_weight = check_row_weights(sample_weight)
        self.alpha = float(alpha)
        self.fit_intercept = bool(fit_intercept)

    @property
    def n_outputs(self):
        """Number of output columns."""
        return self.y.shape[1]

    def with_data(self, X):
        """Return the same problem with the neurons acting on other columns ``X``.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_columns)
            New data (for example the data in the coordinates of its row space).

        Returns
        -------
        problem : ReLUNetworkProblem
            Shares targets, loss, weights and ``alpha``.
        """
        return ReLUNetworkProblem(
            X, self.y, self.datafit, self.sample_weight, self.alpha, fit_intercept=self.fit_intercept
        )

    def objective(self, directions, output, intercept):
        """Objective of the network with unit ``directions`` and ``output`` weights.

        :math:`F((XU)_+A + \\mathbf{1}b^\\top) + \\alpha\\sum_j \\|a_j\\|`, the
        mean loss plus the weight decay of the balanced network.

        Parameters
        ----------
        directions : ndarray of shape (n_features, n_neurons)
            Unit hidden directions.
        output : ndarray of shape (n_neurons, n_outputs)
            Output weights.
        intercept : ndarray of shape (n_outputs,)
            Output intercept.

        Returns
        -------
        objective : float
            Weighted loss plus ``alpha`` times the sum of output-weight norms.
        """
        pred = np.maximum(self.X @ directions, 0.0) @ output + intercept
        penalty = float(np.linalg.norm(output, axis=1).sum())
        return self.datafit.value(pred, self.y, self.sample_weight) + self.alpha * penalty

    def output_layer(self, directions):
        """The group lasso over the output weights of fixed unit ``directions``.

        :math:`\\min_{A, b} F((XU)_+A + \\mathbf{1}b^\\top) + \\alpha\\sum_j\\|a_j\\|`,
        the restricted master problem of column generation.

        Parameters
        ----------
        directions : ndarray of shape (n_features, n_neurons)
            Unit hidden directions.

        Returns
        -------
        problem : ConvexProblem
            One block (a row :math:`a_j` of the output weights) per neuron.
        """
        features = np.maximum(self.X @ directions, 0.0)
        # The pattern operator computes sum_p diag(m_p) X W_p; with X a column
        # of ones and real-valued "masks" equal to the features it is F @ A,
        # one block per neuron, which is what the group penalty needs.
        operator = PatternOperator(np.ones((self.X.shape[0], 1)), features, n_outputs=self.n_outputs)
        return ConvexProblem(
            operator,
            self.datafit,
            GroupL2(),
            self.y,
            self.sample_weight,
            self.alpha,
            fit_intercept=self.fit_intercept,
        )
