"""scikit-learn's estimator checks on every estimator the package defines."""

import pytest
from sklearn.utils.estimator_checks import (
    check_dataframe_column_names_consistency,
    check_param_validation,
    parametrize_with_checks,
)

from skconvex.discovery import all_estimators

ESTIMATORS = [cls() for _, cls in all_estimators()]

# Every entry needs a reason; the checks below fail for a documented cause.
_FIRST_ORDER_WEIGHTS = (
    "the default solver stops at a relative duality gap of tol=1e-4, so "
    "weighted and repeated fits agree to that accuracy, not to the check's "
    "1e-7; tests/test_models_gated.py runs this check at tol=1e-10 to 1e-12, where it passes"
)


def expected_failures(estimator):
    name = type(estimator).__name__
    if name in ("ConvexGatedReLURegressor", "ConvexGatedReLUClassifier"):
        return {"check_sample_weight_equivalence_on_dense_data": _FIRST_ORDER_WEIGHTS}
    return {}


def test_discovery_finds_estimators():
    names = {type(e).__name__ for e in ESTIMATORS}
    assert {"ConvexGatedReLURegressor", "ConvexGatedReLUClassifier"} <= names


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failures)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_param_validation(estimator):
    check_param_validation(type(estimator).__name__, estimator)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_dataframe_column_names(estimator):
    pytest.importorskip("pandas")
    check_dataframe_column_names_consistency(type(estimator).__name__, estimator)
