import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.datasets import load_diabetes, load_iris  # noqa: E402

from skconvex import ConvexGatedReLUClassifier, ConvexGatedReLURegressor, ConvexReLUClassifier  # noqa: E402
from skconvex import convex_relu_path  # noqa: E402
from skconvex.plotting import NetworkDisplay, RegularizationPathDisplay  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_path_display_renders(tmp_path):
    X, y = load_diabetes(return_X_y=True)
    disp = RegularizationPathDisplay.from_estimator(
        ConvexGatedReLURegressor(random_state=0), X[:300], y[:300], X_val=X[300:], y_val=y[300:], n_alphas=4
    )
    assert len(disp.axes_) == 3
    np.testing.assert_array_equal(disp.axes_[0].lines[0].get_ydata(), disp.n_neurons)
    assert disp.n_neurons[0] == 0
    disp.figure_.savefig(tmp_path / "path.png")
    assert (tmp_path / "path.png").stat().st_size > 0


def test_path_display_from_path_without_estimators():
    X, y = load_diabetes(return_X_y=True)
    path = convex_relu_path(X, y, ConvexGatedReLURegressor(random_state=0), n_alphas=3)
    disp = RegularizationPathDisplay.from_path(path)
    assert len(disp.axes_) == 2
    with pytest.raises(ValueError, match="return_estimators"):
        RegularizationPathDisplay.from_path(path, X_val=X, y_val=y)


@pytest.mark.parametrize("Est", [ConvexReLUClassifier, ConvexGatedReLUClassifier])
def test_network_display_renders(Est, tmp_path):
    X, y = load_iris(return_X_y=True)
    clf = Est(random_state=0).fit(X, y)
    disp = NetworkDisplay.from_estimator(clf, X, max_neurons=10)
    assert disp.activations.shape == (150, min(10, clf.n_neurons_))
    disp.figure_.savefig(tmp_path / "net.png")


def test_matplotlib_is_not_imported_by_skconvex():
    import subprocess
    import sys

    code = "import sys, skconvex; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
