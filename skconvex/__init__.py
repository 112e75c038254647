"""skconvex: neural networks trained by solving their exact convex reformulations."""

__version__ = "0.1.0.dev0"

from ._config import MemoryBudgetError, config_context, get_config, set_config
from .arrangements import (
    Arrangements,
    SubnetworkArrangements,
    compute_patterns,
    enumerate_arrangements,
    propose_gates,
    sample_arrangements,
    sample_subnetworks,
)
from .models import (
    ConvexAttentionHead,
    ConvexAttentionHeadRegressor,
    ConvexBatchNormReLUClassifier,
    ConvexBatchNormReLURegressor,
    ConvexCNNClassifier,
    ConvexCNNRegressor,
    ConvexGatedReLUClassifier,
    ConvexGatedReLUClassifierCV,
    ConvexGatedReLURegressor,
    ConvexGatedReLURegressorCV,
    ConvexReLUClassifier,
    ConvexReLUClassifierCV,
    ConvexReLURegressor,
    ConvexReLURegressorCV,
    ConvexSplineRegressor,
    ConvexThreeLayerReLUClassifier,
    ConvexThreeLayerReLURegressor,
    ConvexWGAN,
    CopositiveNet,
    CopositiveNetClassifier,
    CopositiveNetRegressor,
    CuttingPlaneReLUClassifier,
    CuttingPlaneReLURegressor,
    ParallelDeepLinearRegressor,
    PathRegularizedReLUClassifier,
    PathRegularizedReLURegressor,
    alpha_grid,
    convex_relu_path,
    standard_deep_linear,
)

__all__ = [
    "alpha_grid",
    "convex_relu_path",
    "Arrangements",
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
    "MemoryBudgetError",
    "ParallelDeepLinearRegressor",
    "PathRegularizedReLUClassifier",
    "PathRegularizedReLURegressor",
    "SubnetworkArrangements",
    "compute_patterns",
    "config_context",
    "enumerate_arrangements",
    "get_config",
    "propose_gates",
    "sample_arrangements",
    "sample_subnetworks",
    "set_config",
    "standard_deep_linear",
]


def _alias_moved_modules():
    # Modules moved in the 0.1 layout (doc/changelog.rst); user code that
    # imports them from their old paths keeps working.
    import importlib
    import sys

    moved = {
        "operators": "programs.operators",
        "losses": "programs.datafits",
        "penalties": "programs.penalties",
        "problem": "programs.problem",
        "cones": "programs.cones",
        "nested_cones": "programs.nested_cones",
        "patches": "programs.patches",
        "ramps": "programs.ramps",
        "attention_operators": "programs.attention",
        "oracles": "programs.oracles",
        "recovery": "networks",
        "path": "models.path",
    }
    for old, new in moved.items():
        module = importlib.import_module(f"{__name__}.{new}")
        sys.modules[f"{__name__}.{old}"] = module
        globals()[old] = module


_alias_moved_modules()
del _alias_moved_modules
