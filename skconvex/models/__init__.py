"""Estimators, one module per family of convex networks."""

from .attention import ConvexAttentionHead, ConvexAttentionHeadRegressor
from .batchnorm import ConvexBatchNormReLUClassifier, ConvexBatchNormReLURegressor
from .cnn import ConvexCNNClassifier, ConvexCNNRegressor
from .copositive import CopositiveNet, CopositiveNetClassifier, CopositiveNetRegressor
from .cutting_plane import CuttingPlaneReLUClassifier, CuttingPlaneReLURegressor
from .cv import (
    ConvexGatedReLUClassifierCV,
    ConvexGatedReLURegressorCV,
    ConvexReLUClassifierCV,
    ConvexReLURegressorCV,
)
from .deep_linear import ParallelDeepLinearRegressor, standard_deep_linear
from .gan import ConvexWGAN
from .gated import ConvexGatedReLUClassifier, ConvexGatedReLURegressor
from .path import alpha_grid, convex_relu_path
from .path_regularized import (
    PathRegularizedReLUClassifier,
    PathRegularizedReLURegressor,
)
from .relu import ConvexReLUClassifier, ConvexReLURegressor
from .spline import ConvexSplineRegressor
from .three_layer import ConvexThreeLayerReLUClassifier, ConvexThreeLayerReLURegressor

__all__ = [
    "alpha_grid",
    "convex_relu_path",
    "ConvexAttentionHead",
    "ConvexAttentionHeadRegressor",
    "ConvexBatchNormReLUClassifier",
    "ConvexBatchNormReLURegressor",
    "ConvexCNNClassifier",
    "ConvexCNNRegressor",
    "ConvexGatedReLUClassifier",
    "ConvexGatedReLUClassifierCV",
    "ConvexGatedReLURegressor",
    "ConvexGatedReLURegressorCV",
    "ConvexReLUClassifier",
    "ConvexReLUClassifierCV",
    "ConvexReLURegressor",
    "ConvexReLURegressorCV",
    "ConvexSplineRegressor",
    "ConvexThreeLayerReLUClassifier",
    "ConvexThreeLayerReLURegressor",
    "ConvexWGAN",
    "CopositiveNet",
    "CopositiveNetClassifier",
    "CopositiveNetRegressor",
    "CuttingPlaneReLUClassifier",
    "CuttingPlaneReLURegressor",
    "ParallelDeepLinearRegressor",
    "PathRegularizedReLUClassifier",
    "PathRegularizedReLURegressor",
    "standard_deep_linear",
]
