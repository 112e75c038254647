"""Displays of regularization paths and of recovered networks.

matplotlib is imported only when a display draws,
never when skconvex is imported. Each display follows scikit-learn's
``*Display`` pattern: ``from_estimator`` (or ``from_path``) computes, ``plot``
draws on given or new axes and stores ``figure_``, ``axes_``.
"""

import numpy as np
from sklearn.metrics import check_scoring

from .models.gated import _GatedBase
from .models.path import convex_relu_path

__all__ = ["RegularizationPathDisplay", "NetworkDisplay"]


def check_matplotlib_support(caller_name):
    """Raise a clear ImportError when matplotlib is missing.

    Parameters
    ----------
    caller_name : str
        Name of the function that needs matplotlib, for the message.
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"{caller_name} requires matplotlib: pip install matplotlib "
            "(or the 'doc' extra of skconvex)."
        ) from exc


class RegularizationPathDisplay:
    """Active neurons, objective and validation score along ``alpha``.

    Parameters
    ----------
    alphas : ndarray of shape (n_alphas,)
        Values of ``alpha`` (decreasing).
    n_neurons : ndarray of shape (n_alphas,)
        Neurons of the network fitted at each ``alpha``.
    objectives : ndarray of shape (n_alphas,)
        Objective at each ``alpha``.
    dual_gaps : ndarray of shape (n_alphas,), default=None
        Certified duality gaps (drawn as the band objective - gap).
    validation_scores : ndarray of shape (n_alphas,), default=None
        Score on held-out data at each ``alpha``.
    estimator_name : str, default=None
        Name for the title.

    Attributes
    ----------
    figure_ : matplotlib.figure.Figure
        Figure of the plot.
    axes_ : ndarray of matplotlib.axes.Axes
        The two or three panels.

    See Also
    --------
    skconvex.convex_relu_path : Computes the path.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_diabetes
    >>> from skconvex import ConvexGatedReLURegressor
    >>> from skconvex.plotting import RegularizationPathDisplay
    >>> X, y = load_diabetes(return_X_y=True)
    >>> disp = RegularizationPathDisplay.from_estimator(
    ...     ConvexGatedReLURegressor(random_state=0), X[:300], y[:300],
    ...     X_val=X[300:], y_val=y[300:], n_alphas=5)
    >>> len(disp.axes_)
    3
    """

    def __init__(
        self,
        *,
        alphas,
        n_neurons,
        objectives,
        dual_gaps=None,
        validation_scores=None,
        estimator_name=None,
    ):
        self.alphas = alphas
        self.n_neurons = n_neurons
        self.objectives = objectives
        self.dual_gaps = dual_gaps
        self.validation_scores = validation_scores
        self.estimator_name = estimator_name

    @classmethod
    def from_path(cls, path, *, X_val=None, y_val=None, scoring=None, ax=None):
        """Plot a path returned by :func:`skconvex.convex_relu_path`.

        Parameters
        ----------
        path : Bunch
            Output of :func:`~skconvex.convex_relu_path`; it needs
            ``estimators`` (``return_estimators=True``) for validation scores.
        X_val : array-like of shape (n_samples, n_features), default=None
            Held-out data for the validation panel.
        y_val : array-like of shape (n_samples,), default=None
            Held-out targets.
        scoring : str or callable, default=None
            Score; None uses the estimator's ``score``.
        ax : array of matplotlib Axes, default=None
            Axes to draw on (one per panel); new ones when None.

        Returns
        -------
        display : RegularizationPathDisplay
            The drawn display.
        """
        scores = None
        name = None
        if getattr(path, "estimators", None):
            name = type(path.estimators[0]).__name__
            if X_val is not None:
                scorer = check_scoring(path.estimators[0], scoring=scoring)
                scores = np.array([scorer(est, X_val, y_val) for est in path.estimators])
        elif X_val is not None:
            raise ValueError(
                "Validation scores need the fitted estimators: compute the path with "
                "return_estimators=True."
            )
        disp = cls(
            alphas=path.alphas,
            n_neurons=path.n_neurons,
            objectives=path.objectives,
            dual_gaps=path.dual_gaps,
            validation_scores=scores,
            estimator_name=name,
        )
        return disp.plot(ax=ax)

    @classmethod
    def from_estimator(
        cls,
        estimator,
        X,
        y,
        *,
        X_val=None,
        y_val=None,
        alphas=None,
        n_alphas=20,
        eps=1e-3,
        sample_weight=None,
        scoring=None,
        ax=None,
    ):
        """Compute the path of ``estimator`` on ``(X, y)`` and plot it.

        Parameters
        ----------
        estimator : estimator instance
            A gated or exact skconvex ReLU estimator (its ``alpha`` is ignored).
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Training targets.
        X_val : array-like of shape (n_val, n_features), default=None
            Held-out data for the validation panel.
        y_val : array-like of shape (n_val,), default=None
            Held-out targets.
        alphas : array-like, default=None
            Grid; None starts at the exact :math:`\\alpha_{\\max}`.
        n_alphas : int, default=20
            Grid size when ``alphas`` is None.
        eps : float, default=1e-3
            Grid ratio when ``alphas`` is None.
        sample_weight : array-like of shape (n_samples,), default=None
            Row weights of the fits.
        scoring : str or callable, default=None
            Score; None uses the estimator's ``score``.
        ax : array of matplotlib Axes, default=None
            Axes to draw on; new ones when None.

        Returns
        -------
        display : RegularizationPathDisplay
            The drawn display.
        """
        check_matplotlib_support(f"{cls.__name__}.from_estimator")
        path = convex_relu_path(
            X,
            y,
            estimator,
            alphas=alphas,
            n_alphas=n_alphas,
            eps=eps,
            sample_weight=sample_weight,
            return_estimators=X_val is not None,
        )
        disp = cls.from_path(path, X_val=X_val, y_val=y_val, scoring=scoring, ax=ax)
        disp.estimator_name = type(estimator).__name__
        return disp

    def plot(self, ax=None):
        """Draw the panels.

        Parameters
        ----------
        ax : array of matplotlib Axes, default=None
            One axis per panel (two, or three with validation scores); a new
            figure when None.

        Returns
        -------
        display : RegularizationPathDisplay
            ``self``, with ``figure_`` and ``axes_`` set.
        """
        check_matplotlib_support(f"{type(self).__name__}.plot")
        import matplotlib.pyplot as plt

        n_panels = 2 if self.validation_scores is None else 3
        if ax is None:
            fig, ax = plt.subplots(1, n_panels, figsize=(4 * n_panels, 3.2), sharex=True)
        ax = np.atleast_1d(ax)
        if len(ax) != n_panels:
            raise ValueError(f"ax must hold {n_panels} axes, got {len(ax)}.")
        alphas = np.asarray(self.alphas)
        ax[0].plot(alphas, self.n_neurons, "o-")
        ax[0].set_ylabel("active neurons")
        ax[1].plot(alphas, self.objectives, "o-", label="objective")
        if self.dual_gaps is not None:
            ax[1].fill_between(
                alphas,
                np.asarray(self.objectives) - np.asarray(self.dual_gaps),
                self.objectives,
                alpha=0.3,
                label="certified gap",
            )
            ax[1].legend()
        ax[1].set_ylabel("objective")
        if self.validation_scores is not None:
            ax[2].plot(alphas, self.validation_scores, "o-")
            ax[2].set_ylabel("validation score")
        for a in ax:
            a.set_xscale("log")
            a.set_xlabel("alpha")
        if self.estimator_name:
            ax[0].figure.suptitle(self.estimator_name)
        self.figure_, self.axes_ = ax[0].figure, ax
        return self


class NetworkDisplay:
    """The recovered network: neuron strengths and activation patterns (or filters).

    Parameters
    ----------
    output_weights : ndarray of shape (n_neurons, n_outputs)
        Output weights of the neurons.
    activations : ndarray of shape (n_samples, n_neurons), default=None
        Whether each neuron fires on each sample (its arrangement pattern).
    filters : ndarray of shape (n_filters, kh, kw, n_channels), default=None
        Filters of a convolutional model, drawn instead of the patterns.
    estimator_name : str, default=None
        Name for the title.

    Attributes
    ----------
    figure_ : matplotlib.figure.Figure
        Figure of the plot.
    axes_ : ndarray of matplotlib.axes.Axes
        The panels.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_iris
    >>> from skconvex import ConvexReLUClassifier
    >>> from skconvex.plotting import NetworkDisplay
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = ConvexReLUClassifier(random_state=0).fit(X, y)
    >>> disp = NetworkDisplay.from_estimator(clf, X)
    """

    def __init__(self, *, output_weights, activations=None, filters=None, estimator_name=None):
        self.output_weights = output_weights
        self.activations = activations
        self.filters = filters
        self.estimator_name = estimator_name

    @classmethod
    def from_estimator(cls, estimator, X=None, *, max_neurons=40, ax=None):
        """Draw the network recovered by a fitted estimator.

        Parameters
        ----------
        estimator : estimator instance
            A fitted skconvex network exposing ``output_weights_`` and
            ``hidden_weights_`` (and ``filters_`` for convolutional models).
        X : array-like of shape (n_samples, n_features), default=None
            Samples whose activation patterns are drawn.
        max_neurons : int, default=40
            Draw the strongest neurons only.
        ax : array of matplotlib Axes, default=None
            Axes (two); new ones when None.

        Returns
        -------
        display : NetworkDisplay
            The drawn display.
        """
        from sklearn.utils.validation import check_is_fitted

        check_matplotlib_support(f"{cls.__name__}.from_estimator")
        check_is_fitted(estimator)
        filters = getattr(estimator, "filters_", None)
        if filters is not None:
            # Convolutional models: one neuron per filter, with an output
            # weight per pooling region and output.
            filters = np.asarray(filters, dtype=float)
            out = np.asarray(estimator.output_weights_, dtype=float).reshape(len(filters), -1)
            hidden = filters.reshape(len(filters), -1)
            bias = np.asarray(getattr(estimator, "filter_biases_", np.zeros(len(filters))))
        else:
            out = np.atleast_2d(np.asarray(estimator.output_weights_, dtype=float))
            if out.shape[0] != len(estimator.hidden_weights_):
                out = out.T
            hidden, bias = estimator.hidden_weights_, estimator.hidden_intercepts_
        strength = np.linalg.norm(out, axis=1) * np.linalg.norm(np.column_stack([hidden, bias]), axis=1)
        order = np.argsort(-strength)[:max_neurons]
        activations = None
        if filters is None and X is not None:
            Xv = np.asarray(X, dtype=float)
            hidden = estimator.hidden_weights_[order]
            pre = Xv @ hidden.T + estimator.hidden_intercepts_[order]
            if isinstance(estimator, _GatedBase):
                # Gated networks fire by their gates, not by their weights.
                Xa = np.column_stack([Xv, np.ones(len(Xv))]) if estimator.fit_intercept else Xv
                pre = Xa @ estimator.gates_[:, estimator.neuron_patterns_[order]]
            activations = pre >= 0
        disp = cls(
            output_weights=out[order],
            activations=activations,
            filters=None if filters is None else filters[order],
            estimator_name=type(estimator).__name__,
        )
        return disp.plot(ax=ax)

    def plot(self, ax=None):
        """Draw the panels.

        Parameters
        ----------
        ax : array of matplotlib Axes, default=None
            Two axes; a new figure when None.

        Returns
        -------
        display : NetworkDisplay
            ``self``, with ``figure_`` and ``axes_`` set.
        """
        check_matplotlib_support(f"{type(self).__name__}.plot")
        import matplotlib.pyplot as plt

        if ax is None:
            fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
        ax = np.atleast_1d(ax)
        strength = np.linalg.norm(np.atleast_2d(self.output_weights), axis=1)
        ax[0].bar(np.arange(len(strength)), strength)
        ax[0].set_xlabel("neuron")
        ax[0].set_ylabel("output weight norm")
        if self.filters is not None and len(self.filters):
            tiles = np.asarray(self.filters)[..., 0]
            k = int(np.ceil(np.sqrt(len(tiles))))
            kh, kw = tiles.shape[1:3]
            canvas = np.full((k * (kh + 1), k * (kw + 1)), np.nan)
            for i, tile in enumerate(tiles):
                r, c = divmod(i, k)
                canvas[r * (kh + 1) : r * (kh + 1) + kh, c * (kw + 1) : c * (kw + 1) + kw] = tile
            ax[1].imshow(canvas, cmap="RdBu_r")
            ax[1].set_title("filters")
            ax[1].axis("off")
        elif self.activations is not None:
            ax[1].imshow(self.activations, aspect="auto", interpolation="nearest", cmap="Greys")
            ax[1].set_xlabel("neuron")
            ax[1].set_ylabel("sample")
            ax[1].set_title("activation patterns")
        else:
            ax[1].axis("off")
        if self.estimator_name:
            ax[0].figure.suptitle(self.estimator_name)
        self.figure_, self.axes_ = ax[0].figure, ax
        return self
