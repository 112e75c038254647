"""The problem layer: operators, datafits, penalties, cones and the composite programs.

Every convex network of the package is one program
:math:`\\min_W F(\\mathcal{A}W + \\mathbf{1}b^\\top) + \\alpha R(W)`, possibly with
cone constraints, assembled from the pieces below; solvers
(:mod:`skconvex.solvers`) take such a program and return a
:class:`~skconvex.solvers.SolveResult`, estimators (``skconvex.models``)
build the program from data. This subpackage imports numpy, scipy,
``array-api-compat`` and ``skconvex._config`` only (cvxpy lazily, inside the
``cvxpy`` forms).

Which piece builds which network (operators and problems are classes of this
subpackage, solvers functions of :mod:`skconvex.solvers`, estimators classes of
``skconvex``):

.. list-table::
   :header-rows: 1

   * - family
     - operator
     - problem (penalty)
     - solver
     - estimator
   * - gated two-layer ReLU
     - ``PatternOperator``
     - ``ConvexProblem`` (``GroupL2``/``GroupNuclear``)
     - ``working_set_solve`` + ``fista``, ``support_newton``
     - ``ConvexGatedReLU*``
   * - exact two-layer ReLU
     - ``PatternOperator`` (signed)
     - ``ConeConstrainedProblem`` (``ColumnGroupL2``)
     - ``augmented_lagrangian``, ``cone_working_set_solve``, ``cvxpy_cone_solve``
     - ``ConvexReLU*``, ``*CV``
   * - unsampled two-layer ReLU
     - ``PatternOperator`` on neuron directions
     - ``ConvexProblem`` (output layer) + oracles
     - ``cutting_plane``
     - ``CuttingPlaneReLU*``
   * - vector outputs
     - (cells of the data)
     - copositive relaxation (``oracles``)
     - ``copositive_sdp``, ``frank_wolfe``, ``spike_free_closed_form``
     - ``CopositiveNet*``
   * - 1-D ReLU (splines)
     - ``RampOperator``
     - ``ConvexProblem`` (``GroupL2``)
     - ``spline_qp``, ``fista``
     - ``ConvexSplineRegressor``
   * - two-layer CNN
     - ``PatchOperator``
     - ``ConvexProblem`` / ``ConeConstrainedProblem``
     - ``fista``, ``augmented_lagrangian``, cvxpy
     - ``ConvexCNN*``
   * - three-layer CNN
     - ``PatchOperator``
     - ``SubnetworkConeProblem``
     - ``augmented_lagrangian``, cvxpy
     - ``ConvexCNN*`` (``n_layers=3``)
   * - batch-norm ReLU
     - ``PatternOperator`` on whitened data
     - ``ConeConstrainedProblem`` (``ColumnGroupL2``)
     - ``augmented_lagrangian``, closed form
     - ``ConvexBatchNormReLU*``
   * - three-layer parallel ReLU
     - ``PatternOperator``
     - ``NestedConeProblem`` (``three_layer_program``)
     - ``nested_augmented_lagrangian``, ``fista``
     - ``ConvexThreeLayerReLU*``
   * - path-regularized ReLU
     - ``PatternOperator``
     - ``NestedConeProblem`` (``ColumnBlockL2``, ``path_program``)
     - ``nested_augmented_lagrangian``, ``fista``
     - ``PathRegularizedReLU*``
   * - parallel deep linear
     - ``PatternOperator``
     - ``ConvexProblem`` (``GroupNuclear``)
     - ``fista``, closed form
     - ``ParallelDeepLinearRegressor``
   * - attention / mixer / FNO
     - ``TokenFeatureOperator``
     - ``ConvexProblem`` (``GroupNuclear``)
     - ``fista``
     - ``ConvexAttentionHead*``
   * - WGAN (ReLU discriminator)
     - (cells of ``[X; G]``)
     - ``relu_cell_values``, ``relu_generator_program``
     - cvxpy SOCP, closed forms
     - ``ConvexWGAN``

The interfaces every piece implements are declared in
:mod:`skconvex.programs` (:class:`Operator`, :class:`Problem`,
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
