"""Estimators, one module per family of convex networks."""

from .gated import ConvexGatedReLUClassifier, ConvexGatedReLURegressor

__all__ = ["ConvexGatedReLUClassifier", "ConvexGatedReLURegressor"]
