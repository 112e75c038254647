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


def test_network_display_draws_cnn_filters():
    from sklearn.datasets import load_digits

    from skconvex import ConvexCNNClassifier

    X, y = load_digits(return_X_y=True)
    clf = ConvexCNNClassifier(image_shape=(8, 8), gated=True, n_arrangements=8, random_state=0)
    clf.fit(X[:150] / 16, y[:150])
    disp = NetworkDisplay.from_estimator(clf, max_neurons=5)
    assert disp.filters.shape == (min(5, clf.n_filters_), 3, 3, 1)
    assert disp.axes_[1].get_title() == "filters"
    # The filters drawn are those of the strongest neurons, strongest first.
    out = np.linalg.norm(clf.output_weights_.reshape(clf.n_filters_, -1), axis=1)
    flat = np.column_stack([clf.filters_.reshape(clf.n_filters_, -1), clf.filter_biases_])
    order = np.argsort(-out * np.linalg.norm(flat, axis=1))[:5]
    np.testing.assert_array_equal(disp.filters, clf.filters_[order])


def test_matplotlib_is_not_imported_by_skconvex():
    import subprocess
    import sys

    code = "import sys, skconvex; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
