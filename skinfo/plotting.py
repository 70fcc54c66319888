"""Matplotlib figures for calibration, OOD detection and training trajectories.

matplotlib is an optional dependency (``pip install skinfo[plot]``); it is
imported when a function is called. Every function draws on ``ax`` (a new
figure when None) and returns that Axes (:func:`confidence_landscapes`
returns a Figure); the numbers come from
:mod:`skinfo.metrics`.

* :func:`reliability_diagram` -- accuracy per confidence bin vs the diagonal.
* :func:`roc_curves` -- OOD-detection ROC curves (in-distribution positive).
* :func:`accuracy_vs_confidence` -- accuracy above a confidence threshold
  (Padhy et al. 2020, Figure 4).
* :func:`confidence_landscape` -- confidence over a 2-D input plane
  (Padhy et al. 2020, Figure 1).
* :func:`confidence_landscapes` -- those landscapes for several classifiers
  side by side (one figure).
* :func:`information_plane` -- a trajectory of two logged quantities over
  the epochs (e.g. rate vs. distortion).
* :func:`latent_space` -- the learned representation, coloured by class.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.metrics import auc, roc_curve
from sklearn.utils import check_array, check_random_state
from sklearn.utils.validation import check_is_fitted

from . import metrics

__all__ = [
    "accuracy_vs_confidence",
    "confidence_landscape",
    "confidence_landscapes",
    "information_plane",
    "latent_space",
    "reliability_diagram",
    "roc_curves",
]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "skinfo.plotting needs matplotlib, an optional dependency: pip install skinfo[plot]"
        ) from exc
    return plt


def _axes(ax):
    if ax is None:
        _, ax = _pyplot().subplots()
    return ax


def _unit_square_diagonal(ax, label: str, linestyle: str) -> None:
    """The gray diagonal y = x, with both axes limited to [0, 1]."""
    ax.plot([0.0, 1.0], [0.0, 1.0], linestyle=linestyle, color="gray", label=label)
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.0)


def reliability_diagram(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    *,
    n_bins: int = 15,
    labels: ArrayLike | None = None,
    ax: Any = None,
) -> Any:
    """Reliability diagram of the top-label predictions.

    Bars of the accuracy in each equal-width confidence bin
    (:func:`skinfo.metrics.calibration_bins`), the gap to the bin's mean
    confidence shaded above or below each bar, the diagonal of perfect
    calibration, and the expected calibration error in the title.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels (any type).
    y_prob : array-like of shape (n_samples, n_classes)
        Predicted probabilities, columns in the order of ``labels``.
    n_bins : int, default=15
        Number of equal-width bins.
    labels : array-like of shape (n_classes,), default=None
        Label of each column; default: the sorted unique labels of ``y_true``.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.

    Returns
    -------
    ax : matplotlib Axes
        The Axes drawn on.

    Examples
    --------
    >>> from skinfo.plotting import reliability_diagram
    >>> ax = reliability_diagram([0, 1, 1, 0], [[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.9, 0.1]])
    >>> ax.get_xlabel()
    'Confidence'
    """
    bins = metrics.calibration_bins(y_true, y_prob, n_bins=n_bins, labels=labels)
    ece = metrics.expected_calibration_error(y_true, y_prob, n_bins=n_bins, labels=labels)
    ax = _axes(ax)
    left, width = bins.edges[:-1], np.diff(bins.edges)
    filled = bins.count > 0
    accuracy = np.where(filled, bins.accuracy, 0.0)
    ax.bar(
        left,
        accuracy,
        width=width,
        align="edge",
        color="tab:blue",
        edgecolor="black",
        linewidth=0.5,
        label="Accuracy",
    )
    ax.bar(
        left[filled],
        (bins.confidence - bins.accuracy)[filled],
        bottom=accuracy[filled],
        width=width[filled],
        align="edge",
        color="tab:red",
        alpha=0.3,
        edgecolor="tab:red",
        hatch="//",
        label="Gap to confidence",
    )
    _unit_square_diagonal(ax, "Perfect calibration", "--")
    ax.set_xlabel("Confidence")
    ax.set_ylabel("Accuracy")
    ax.set_title(f"ECE = {100.0 * ece:.2f} %")
    ax.legend(loc="upper left", fontsize="small")
    return ax


def roc_curves(
    scores_in: ArrayLike,
    scores_out_by_name: Mapping[str, ArrayLike],
    *,
    balance: bool = False,
    random_state: int | np.random.RandomState | None = None,
    ax: Any = None,
) -> Any:
    """ROC curves of OOD detection, one per OOD set, in-distribution positive.

    x: fraction of OOD samples accepted (false positive rate); y: fraction of
    in-distribution samples accepted (true positive rate), as the threshold
    on the normality score (higher = more in-distribution) decreases. The
    legend gives each AUROC (:func:`skinfo.metrics.ood_auroc`, computed from
    the same, possibly balanced, samples as the curve).

    Parameters
    ----------
    scores_in : array-like of shape (n_in,)
        Normality scores of the in-distribution samples.
    scores_out_by_name : dict of str to array-like
        Normality scores of each OOD set, by name.
    balance : bool, default=False
        Subsample the larger set of each pair to the size of the smaller one.
    random_state : int, RandomState instance or None, default=None
        Seeds that subsampling.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.

    Returns
    -------
    ax : matplotlib Axes
        The Axes drawn on.

    Examples
    --------
    >>> from skinfo.plotting import roc_curves
    >>> ax = roc_curves([3.0, 2.0, 1.0], {"noise": [0.0, 1.5], "flip": [2.5, 0.5]})
    >>> [t.get_text() for t in ax.get_legend().get_texts()][:1]
    ['noise (AUROC 0.833)']
    """
    if not isinstance(scores_out_by_name, Mapping):
        raise TypeError("scores_out_by_name must be a dict mapping a name to OOD scores.")
    ax = _axes(ax)
    for name, scores_out in scores_out_by_name.items():
        y, s = metrics._ood_targets_scores(scores_in, scores_out, balance, random_state)
        fpr, tpr, _ = roc_curve(y, s)
        ax.plot(fpr, tpr, label=f"{name} (AUROC {auc(fpr, tpr):.3f})")
    _unit_square_diagonal(ax, "Chance", ":")
    ax.set_xlabel("False positive rate (OOD accepted)")
    ax.set_ylabel("True positive rate (in-distribution accepted)")
    ax.legend(loc="lower right", fontsize="small")
    return ax


def accuracy_vs_confidence(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    *,
    is_ood: ArrayLike | None = None,
    labels: ArrayLike | None = None,
    thresholds: ArrayLike | None = None,
    label: str | None = None,
    ax: Any = None,
) -> Any:
    """Accuracy on the samples whose confidence is at least tau, against tau.

    The curve of Padhy et al. (2020, Figure 4), computed by
    :func:`skinfo.metrics.accuracy_at_confidence`: on a mixed test set,
    out-of-distribution samples (``is_ood``) count as errors. A model whose
    confidence is informative gives an increasing curve. Thresholds at which
    no sample is kept are not drawn.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels (anything for OOD samples).
    y_prob : array-like of shape (n_samples, n_classes)
        Predicted probabilities, columns in the order of ``labels``.
    is_ood : array-like of bool of shape (n_samples,), default=None
        Marks the out-of-distribution samples.
    labels : array-like of shape (n_classes,), default=None
        Label of each column; default: the sorted unique labels of the
        in-distribution entries of ``y_true``.
    thresholds : array-like, default=None
        Confidence thresholds; default ``numpy.linspace(0, 1, 101)``.
    label : str, default=None
        Legend entry of the curve.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.

    Returns
    -------
    ax : matplotlib Axes
        The Axes drawn on.

    Examples
    --------
    >>> from skinfo.plotting import accuracy_vs_confidence
    >>> y_prob = [[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.7, 0.3]]
    >>> ax = accuracy_vs_confidence([0, 1, 1, -1], y_prob, is_ood=[0, 0, 0, 1], label="model")
    >>> ax.get_ylabel()
    'Accuracy (confidence >= τ)'
    """
    tau, accuracy, _ = metrics.accuracy_at_confidence(
        y_true, y_prob, thresholds=thresholds, is_ood=is_ood, labels=labels
    )
    ax = _axes(ax)
    ax.plot(tau, accuracy, label=label)
    ax.set_xlabel("Confidence threshold τ")
    ax.set_ylabel("Accuracy (confidence >= τ)")
    ax.set_ylim(0.0, 1.02)
    if label is not None:
        ax.legend(loc="lower right", fontsize="small")
    return ax


def _max_proba(estimator: Any, X: np.ndarray) -> np.ndarray:
    return np.max(np.asarray(estimator.predict_proba(X)), axis=1)


def confidence_landscape(
    estimator: Any,
    X: ArrayLike,
    y: ArrayLike,
    *,
    radius: float | None = None,
    resolution: int = 150,
    confidence: str | Callable[[Any, np.ndarray], ArrayLike] = "max_proba",
    ax: Any = None,
) -> Any:
    """Filled contours of a fitted classifier's confidence over a 2-D input plane.

    Padhy et al. (2020, Figure 1): away from the training data a softmax
    classifier stays confident, a distance-based one-vs-all classifier does
    not. The grid is a square centred on the middle of the data's bounding
    box; the data points are drawn on top, coloured by class.

    Parameters
    ----------
    estimator : fitted estimator
        Takes inputs with two features.
    X : array-like of shape (n_samples, 2)
        The data to draw (e.g. the training data).
    y : array-like of shape (n_samples,)
        Their labels (colours).
    radius : float, default=None
        Half the side of the square grid; default: twice the largest
        coordinate distance of a point from the centre, so the plot reaches
        well beyond the data.
    resolution : int, default=150
        Grid points per axis (``resolution ** 2`` predictions, in one call).
    confidence : "max_proba", "score_samples" or callable, default="max_proba"
        What to draw: the largest ``predict_proba`` column, the estimator's
        ``score_samples``, or ``callable(estimator, X_grid) -> values``
        (e.g. the largest one-vs-all probability). "max_proba" uses the
        fixed colour range [0, 1].
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.

    Returns
    -------
    ax : matplotlib Axes
        The Axes drawn on.

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skinfo.plotting import confidence_landscape
    >>> X, y = make_blobs(n_samples=60, centers=3, random_state=0)
    >>> ax = confidence_landscape(LogisticRegression().fit(X, y), X, y, resolution=20)
    >>> ax.get_xlabel()
    'x1'
    """
    check_is_fitted(estimator)
    X_arr = check_array(X, dtype=np.float64)
    if X_arr.shape[1] != 2:
        raise ValueError(f"confidence_landscape needs 2-D inputs, got {X_arr.shape[1]} features.")
    y = np.asarray(y)
    if y.shape[0] != X_arr.shape[0]:
        raise ValueError(f"X has {X_arr.shape[0]} samples but y has {y.shape[0]}.")
    if int(resolution) < 2:
        raise ValueError(f"resolution must be at least 2, got {resolution!r}.")
    centre = 0.5 * (X_arr.min(axis=0) + X_arr.max(axis=0))
    if radius is None:
        radius = 2.0 * float(np.max(np.abs(X_arr - centre))) or 1.0
    if not radius > 0:
        raise ValueError(f"radius must be positive, got {radius!r}.")
    axis = np.linspace(-radius, radius, int(resolution))
    g1, g2 = np.meshgrid(centre[0] + axis, centre[1] + axis)
    grid = np.column_stack([g1.ravel(), g2.ravel()])
    if hasattr(X, "columns"):  # keep the feature names the estimator was fitted with
        grid = type(X)(grid, columns=X.columns)
    if confidence == "max_proba":
        values, levels, title = _max_proba(estimator, grid), np.linspace(0, 1, 21), "Confidence"
    elif confidence == "score_samples":
        values, levels, title = estimator.score_samples(grid), 20, "score_samples"
    elif callable(confidence):
        values = confidence(estimator, grid)
        levels, title = 20, getattr(confidence, "__name__", "Confidence")
    else:
        raise ValueError("confidence must be 'max_proba', 'score_samples' or a callable.")
    values = np.asarray(values, dtype=np.float64).reshape(g1.shape)
    ax = _axes(ax)
    contour = ax.contourf(g1, g2, values, levels=levels, cmap="viridis")
    ax.figure.colorbar(contour, ax=ax, label=title)
    _, codes = np.unique(y, return_inverse=True)
    ax.scatter(
        X_arr[:, 0], X_arr[:, 1], c=codes, cmap="tab10", s=8, edgecolors="white", linewidths=0.3
    )
    ax.set_xlim(centre[0] - radius, centre[0] + radius)
    ax.set_ylim(centre[1] - radius, centre[1] + radius)
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.set_aspect("equal")
    return ax


def information_plane(
    history: Iterable[Mapping[str, Any]],
    *,
    x_key: str,
    y_key: str,
    ax: Any = None,
    label: str | None = None,
) -> Any:
    """Trajectory of two logged quantities over the epochs (an information plane).

    Each epoch with both ``x_key`` and ``y_key`` logged is one point, joined
    in epoch order; the first and the last epoch are annotated. Used e.g. for
    the rate and the distortion of a variational information bottleneck.

    Parameters
    ----------
    history : list of dict or skorch History
        One mapping per epoch (``estimator.history_`` or the skorch net's
        ``history``); its ``"epoch"`` entry, when present, numbers the points.
    x_key, y_key : str
        Keys of the quantities on the x and y axes.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.
    label : str, default=None
        Legend entry of the trajectory.

    Returns
    -------
    ax : matplotlib Axes
        The Axes drawn on.

    Examples
    --------
    >>> from skinfo.plotting import information_plane
    >>> history = [{"epoch": e, "rate": 1.0 / e, "distortion": 2.0 / e} for e in (1, 2, 3)]
    >>> ax = information_plane(history, x_key="rate", y_key="distortion")
    >>> ax.get_xlabel(), len(ax.lines[0].get_xdata())
    ('rate', 3)
    """
    rows = [row for row in history if isinstance(row, Mapping)]
    points = [
        (row.get("epoch", i + 1), float(row[x_key]), float(row[y_key]))
        for i, row in enumerate(rows)
        if row.get(x_key) is not None and row.get(y_key) is not None
    ]
    if not points:
        keys = sorted({k for row in rows for k in row})
        raise ValueError(f"No epoch has both {x_key!r} and {y_key!r}; logged keys: {keys[:30]}.")
    epochs, xs, ys = zip(*points)
    ax = _axes(ax)
    (line,) = ax.plot(xs, ys, marker="o", markersize=3, label=label)
    for k in {0, len(xs) - 1}:
        ax.annotate(
            f"epoch {epochs[k]}",
            (xs[k], ys[k]),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize="small",
            color=line.get_color(),
        )
    ax.set_xlabel(x_key)
    ax.set_ylabel(y_key)
    if label is not None:
        ax.legend(fontsize="small")
    return ax


def latent_space(
    estimator: Any,
    X: ArrayLike,
    y: ArrayLike,
    *,
    projection: str = "pca",
    max_points: int | None = 2000,
    random_state: int | np.random.RandomState | None = 0,
    ax: Any = None,
) -> Any:
    """Scatter plot of the learned representation ``estimator.transform(X)``, by class.

    Shows how a method arranges the classes in its latent space (e.g. the
    Gaussian clusters of MASS or IB-INN, the compression of VIB). A
    representation with more than two dimensions is projected to two.

    Parameters
    ----------
    estimator : fitted estimator
        Has ``transform(X)`` returning an array of shape (n_samples, d), d >= 2.
    X : array-like of shape (n_samples, n_features)
        Inputs to embed.
    y : array-like of shape (n_samples,)
        Their labels (colours and legend).
    projection : {"pca", "first"}, default="pca"
        ``"pca"``: the first two principal components of the representation
        (:class:`sklearn.decomposition.PCA`); ``"first"``: its first two
        coordinates. Both are the identity when d = 2.
    max_points : int or None, default=2000
        Draw at most this many points (a random subset; None draws all).
        The projection is computed on all of them.
    random_state : int, RandomState instance or None, default=0
        Seeds that subset.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.

    Returns
    -------
    ax : matplotlib Axes
        The Axes drawn on.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    >>> from skinfo.plotting import latent_space
    >>> X, y = load_iris(return_X_y=True)
    >>> ax = latent_space(LinearDiscriminantAnalysis().fit(X, y), X, y)
    >>> ax.get_xlabel()
    'PC 1'
    """
    check_is_fitted(estimator)
    if not hasattr(estimator, "transform"):
        raise TypeError(f"{type(estimator).__name__} has no transform method.")
    Z = check_array(estimator.transform(X), dtype=np.float64)
    y = np.asarray(y)
    if y.shape[0] != Z.shape[0]:
        raise ValueError(f"X has {Z.shape[0]} samples but y has {y.shape[0]}.")
    if Z.shape[1] < 2:
        raise ValueError(f"latent_space needs at least 2 latent dimensions, got {Z.shape[1]}.")
    if projection == "pca":
        if Z.shape[1] > 2:
            Z = PCA(n_components=2).fit_transform(Z)
        names = ("PC 1", "PC 2")
    elif projection == "first":
        Z = Z[:, :2]
        names = ("z1", "z2")
    else:
        raise ValueError(f"projection must be 'pca' or 'first', got {projection!r}.")
    idx = np.arange(len(Z))
    if max_points is not None and len(Z) > max_points:
        idx = np.sort(check_random_state(random_state).choice(len(Z), max_points, replace=False))
    ax = _axes(ax)
    for k, label in enumerate(np.unique(y)):
        keep = idx[y[idx] == label]
        ax.scatter(Z[keep, 0], Z[keep, 1], s=6, color=f"C{k % 10}", label=str(label))
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.legend(fontsize="small", markerscale=2, loc="best")
    return ax


def confidence_landscapes(
    estimators: Mapping[str, Any],
    X: ArrayLike,
    y: ArrayLike,
    *,
    ncols: int = 3,
    fit: bool = True,
    radius: float | None = None,
    resolution: int = 150,
    panel_size: float = 4.0,
) -> Any:
    """Confidence landscapes of several classifiers side by side (one figure).

    The comparison of Padhy et al. (2020, Figure 1) for any set of
    classifiers: one :func:`confidence_landscape` panel per estimator, all on
    the same grid, titled with its name and training accuracy.

    Parameters
    ----------
    estimators : dict of str to estimator or (estimator, confidence)
        The classifiers by panel title; a pair also gives the panel's
        ``confidence`` (see :func:`confidence_landscape`; default
        ``"max_proba"``).
    X : array-like of shape (n_samples, 2)
        Training data.
    y : array-like of shape (n_samples,)
        Labels.
    ncols : int, default=3
        Panels per row.
    fit : bool, default=True
        Fit a clone of each estimator (:func:`sklearn.base.clone`) on
        ``(X, y)`` and draw the clone, leaving the given estimators unchanged;
        False draws the given estimators, which must be fitted.
    radius : float, default=None
        Half the side of the square grid (see :func:`confidence_landscape`).
    resolution : int, default=150
        Grid points per axis.
    panel_size : float, default=4.0
        Width of each panel in inches.

    Returns
    -------
    fig : matplotlib Figure
        The figure; ``fig.axes`` holds the panels (followed by their colour bars).

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from skinfo.plotting import confidence_landscapes
    >>> X, y = make_blobs(n_samples=60, centers=3, random_state=0)
    >>> models = {"logistic": LogisticRegression(), "5-NN": KNeighborsClassifier()}
    >>> fig = confidence_landscapes(models, X, y, resolution=20)
    >>> [ax.get_title().split(" (")[0] for ax in fig.axes[:2]]
    ['logistic', '5-NN']
    """
    if not isinstance(estimators, Mapping) or not estimators:
        raise TypeError("estimators must be a non-empty dict mapping a title to an estimator.")
    if int(ncols) < 1:
        raise ValueError(f"ncols must be a positive int, got {ncols!r}.")
    plt = _pyplot()
    n = len(estimators)
    ncols = min(int(ncols), n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(panel_size * ncols, 0.85 * panel_size * nrows), squeeze=False
    )
    panels = axes.ravel()
    for ax, (title, entry) in zip(panels, estimators.items()):
        est, confidence = entry if isinstance(entry, tuple) else (entry, "max_proba")
        if fit:
            est = clone(est).fit(X, y)
        confidence_landscape(
            est, X, y, radius=radius, resolution=resolution, confidence=confidence, ax=ax
        )
        ax.set_title(f"{title} (train acc {est.score(X, y):.2f})", fontsize="medium")
    for ax in panels[n:]:
        fig.delaxes(ax)
    fig.tight_layout()
    return fig
