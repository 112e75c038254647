"""The ``python -m skconvex demo`` job: a convex network next to an MLP on digits."""

import time
import warnings

import numpy as np


def run_demo(*, quick=False, random_state=0, out=print):
    """Fit the gated convex classifier and an MLP of the same width on digits.

    Parameters
    ----------
    quick : bool, default=False
        Use a subset of the data (for smoke tests).
    random_state : int, default=0
        Seed of the split, the gates and the MLP.
    out : callable, default=print
        Where the table lines go.

    Returns
    -------
    rows : list of dict
        One record per model: name, fit time, test accuracy, active neurons,
        relative certified gap (None for the MLP).
    """
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from . import ConvexGatedReLUClassifier

    X, y = load_digits(return_X_y=True)
    if quick:
        X, y = X[:400], y[:400]
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=random_state
    )
    convex = ConvexGatedReLUClassifier(random_state=random_state)
    width = convex.n_arrangements
    models = [
        ("ConvexGatedReLUClassifier", convex),
        (f"MLPClassifier({width},)", MLPClassifier((width,), random_state=random_state)),
    ]
    out(
        f"digits: {len(X_train)} training and {len(X_test)} test images, "
        f"{X.shape[1]} features, {len(np.unique(y))} classes"
    )
    rows = []
    for name, model in models:
        pipe = make_pipeline(StandardScaler(), model)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            pipe.fit(X_train, y_train)
        fit_time = time.perf_counter() - t0
        est = pipe[-1]
        if hasattr(est, "n_neurons_"):
            neurons = est.n_neurons_
            gap = est.dual_gap_ / est.objective_
        else:
            neurons = int(np.sum(np.abs(est.coefs_[0]).sum(axis=0) > 0))
            gap = None
        rows.append(
            {
                "model": name,
                "fit_time": fit_time,
                "accuracy": pipe.score(X_test, y_test),
                "neurons": neurons,
                "gap": gap,
            }
        )
    out(f"\n{'model':<28}{'fit time (s)':>13}{'test acc.':>11}{'neurons':>9}{'certified rel. gap':>20}")
    for r in rows:
        gap = "n/a (non-convex)" if r["gap"] is None else f"{r['gap']:.1e}"
        out(f"{r['model']:<28}{r['fit_time']:>13.2f}{r['accuracy']:>11.4f}{r['neurons']:>9d}{gap:>20}")
    out(
        "\nThe certified gap bounds how far the convex network's training objective "
        "is from the global optimum over networks with its gates."
    )
    return rows
