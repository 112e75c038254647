"""skconvex: neural networks trained by solving their exact convex reformulations."""

__version__ = "0.1.0.dev0"

from ._config import MemoryBudgetError, config_context, get_config, set_config
from .arrangements import (
    Arrangements,
    SubnetworkArrangements,
    compute_patterns,
    enumerate_arrangements,
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
    "sample_arrangements",
    "sample_subnetworks",
    "set_config",
    "standard_deep_linear",
]


def _alias_moved_modules():
    # The problem pieces moved to skconvex.programs (0.1); user code that
    # imports them from the package root keeps working.
    import importlib
    import sys

    moved = {
        "operators": "operators",
        "losses": "datafits",
        "penalties": "penalties",
        "problem": "problem",
        "cones": "cones",
        "nested_cones": "nested_cones",
        "patches": "patches",
        "ramps": "ramps",
        "attention_operators": "attention",
        "oracles": "oracles",
    }
    for old, new in moved.items():
        module = importlib.import_module(f"{__name__}.programs.{new}")
        sys.modules[f"{__name__}.{old}"] = module
        globals()[old] = module
    # The path moved to skconvex.models (0.1), next to the CV estimators
    # that share it.
    path = importlib.import_module(f"{__name__}.models.path")
    sys.modules[f"{__name__}.path"] = path
    globals()["path"] = path


_alias_moved_modules()
del _alias_moved_modules

