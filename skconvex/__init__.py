"""skconvex: neural networks trained by solving their exact convex reformulations."""

__version__ = "0.1.0.dev0"

from ._config import MemoryBudgetError, config_context, get_config, set_config
from .arrangements import Arrangements, compute_patterns, sample_arrangements
from .models import ConvexGatedReLUClassifier, ConvexGatedReLURegressor

__all__ = [
    "Arrangements",
    "ConvexGatedReLUClassifier",
    "ConvexGatedReLURegressor",
    "MemoryBudgetError",
    "compute_patterns",
    "config_context",
    "get_config",
    "sample_arrangements",
    "set_config",
]
