"""scikit-learn scorers built on :mod:`skinfo.metrics`.

Ready-made scorers for ``GridSearchCV``, ``cross_validate`` and friends.
Every scorer follows scikit-learn's rule "greater is better": a loss is
negated, and the scorer for metric ``m`` is named ``neg_m``:

* :data:`neg_expected_calibration_error` -- minus
  :func:`~skinfo.metrics.expected_calibration_error` (15 top-label bins);
* :data:`neg_max_calibration_error` -- minus
  :func:`~skinfo.metrics.max_calibration_error`;
* :data:`neg_brier_score` -- minus the multiclass
  :func:`~skinfo.metrics.brier_score` (not halved: for two classes it is
  twice scikit-learn's ``neg_brier_score``);
* :data:`neg_negative_log_likelihood` -- minus
  :func:`~skinfo.metrics.negative_log_likelihood`, i.e. the mean
  log-likelihood of the true labels (the same number as scikit-learn's
  ``neg_log_loss``).

They are made with :func:`sklearn.metrics.make_scorer` and call
``predict_proba``. As with scikit-learn's ``neg_log_loss``, the columns are
matched to the labels present in the scored ``y``: every class must appear in
each validation fold (stratified folds, the default for classifiers, see to
that).

:func:`make_ood_scorer` builds a scorer that compares the estimator's
normality scores (``score_samples``) on the held-out in-distribution data with
those on a fixed out-of-distribution set, so a search can select, e.g., a
regularization weight by OOD AUROC.

scikit-learn's own registry of scorer names cannot be extended without
patching it, so the strings above are not understood by ``GridSearchCV``
directly; pass the objects, or look them up with :func:`get_scorer`, which
also returns scikit-learn's scorers for scikit-learn's names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import get_scorer as _sklearn_get_scorer
from sklearn.metrics import make_scorer

from . import metrics

__all__ = [
    "get_scorer",
    "get_scorer_names",
    "make_ood_scorer",
    "neg_brier_score",
    "neg_expected_calibration_error",
    "neg_max_calibration_error",
    "neg_negative_log_likelihood",
]

#: Minus the top-label expected calibration error (15 equal-width bins).
neg_expected_calibration_error = make_scorer(
    metrics.expected_calibration_error, greater_is_better=False, response_method="predict_proba"
)
#: Minus the top-label maximum calibration error (15 equal-width bins).
neg_max_calibration_error = make_scorer(
    metrics.max_calibration_error, greater_is_better=False, response_method="predict_proba"
)
#: Minus the multiclass Brier score ``mean_i sum_k (p_ik - [y_i = k])^2``.
neg_brier_score = make_scorer(
    metrics.brier_score, greater_is_better=False, response_method="predict_proba"
)
#: Minus the mean negative log-likelihood: the mean log-likelihood of the labels.
neg_negative_log_likelihood = make_scorer(
    metrics.negative_log_likelihood, greater_is_better=False, response_method="predict_proba"
)

_SCORERS = {
    "neg_expected_calibration_error": neg_expected_calibration_error,
    "neg_max_calibration_error": neg_max_calibration_error,
    "neg_brier_score": neg_brier_score,
    "neg_negative_log_likelihood": neg_negative_log_likelihood,
}


def get_scorer_names() -> list[str]:
    """Names of the scorers defined by skinfo.

    Returns
    -------
    names : list of str
        Sorted names understood by :func:`get_scorer` in addition to
        scikit-learn's (:func:`sklearn.metrics.get_scorer_names`).

    Examples
    --------
    >>> from skinfo.scorers import get_scorer_names
    >>> get_scorer_names()[0]
    'neg_brier_score'
    """
    return sorted(_SCORERS)


def get_scorer(scoring: str | Callable) -> Callable:
    """Look up a scorer by name: skinfo's names first, then scikit-learn's.

    Note that skinfo's ``"neg_brier_score"`` (multiclass Brier, not halved)
    shadows scikit-learn's scorer of the same name.

    Parameters
    ----------
    scoring : str or callable
        A name from :func:`get_scorer_names` or
        :func:`sklearn.metrics.get_scorer_names`; a callable is returned
        unchanged (as :func:`sklearn.metrics.get_scorer` does).

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y)``.

    Examples
    --------
    >>> from skinfo.scorers import get_scorer, neg_expected_calibration_error
    >>> get_scorer("neg_expected_calibration_error") is neg_expected_calibration_error
    True
    >>> get_scorer("accuracy")
    make_scorer(accuracy_score, response_method='predict')
    """
    if isinstance(scoring, str) and scoring in _SCORERS:
        return _SCORERS[scoring]
    return _sklearn_get_scorer(scoring)


def _n_samples(X: ArrayLike) -> int:
    return int(X.shape[0]) if hasattr(X, "shape") else len(X)


# name -> (metric, sign): the scorer returns sign * metric (greater is better)
_OOD_METRICS: dict[str, tuple[Callable[..., float], float]] = {
    "auroc": (metrics.ood_auroc, 1.0),
    "aupr_in": (metrics.ood_aupr_in, 1.0),
    "aupr_out": (metrics.ood_aupr_out, 1.0),
    "tnr_at_tpr": (metrics.tnr_at_tpr, 1.0),
    "fpr_at_tpr": (metrics.fpr_at_tpr, -1.0),
}
_SCORE_METHODS = ("score_samples", "decision_function", "max_proba")


class _OODScorer:
    """Callable ``scorer(estimator, X, y=None)``; see :func:`make_ood_scorer`."""

    def __init__(
        self,
        X_ood: ArrayLike,
        metric: str | Callable[..., float],
        score_method: str | Callable[[Any, ArrayLike], ArrayLike],
        balance: bool,
        random_state: int | np.random.RandomState | None,
        metric_params: Mapping[str, Any] | None,
    ):
        self.X_ood = X_ood
        self.metric = metric
        self.score_method = score_method
        self.balance = balance
        self.random_state = random_state
        self.metric_params = metric_params

    def _scores(self, estimator: Any, X: ArrayLike) -> np.ndarray:
        method = self.score_method
        if callable(method):
            return np.asarray(method(estimator, X))
        if method == "max_proba":
            return np.max(np.asarray(estimator.predict_proba(X)), axis=1)
        if not hasattr(estimator, method):
            raise AttributeError(
                f"{type(estimator).__name__} has no {method}(); choose another score_method "
                f"({', '.join(_SCORE_METHODS)} or a callable)."
            )
        scores = np.asarray(getattr(estimator, method)(X))
        if scores.ndim != 1:
            raise ValueError(
                f"{method}() returned an array of shape {scores.shape}; an OOD score needs one "
                "number per sample."
            )
        return scores

    def __call__(self, estimator: Any, X: ArrayLike, y: ArrayLike | None = None) -> float:
        if isinstance(self.metric, str):
            func, sign = _OOD_METRICS[self.metric]
        else:
            func, sign = self.metric, 1.0
        value = func(
            self._scores(estimator, X),
            self._scores(estimator, self.X_ood),
            balance=self.balance,
            random_state=self.random_state,
            **dict(self.metric_params or {}),
        )
        return float(sign * value)

    def __repr__(self) -> str:
        def name(obj: Any) -> str:
            return obj if isinstance(obj, str) else getattr(obj, "__name__", repr(obj))

        return (
            f"make_ood_scorer(X_ood=<{_n_samples(self.X_ood)} samples>, "
            f"metric={name(self.metric)!r}, score_method={name(self.score_method)!r}, "
            f"balance={self.balance})"
        )


def make_ood_scorer(
    X_ood: ArrayLike,
    metric: str | Callable[..., float] = "auroc",
    *,
    score_method: str | Callable[[Any, ArrayLike], ArrayLike] = "score_samples",
    balance: bool = False,
    random_state: int | np.random.RandomState | None = None,
    metric_params: Mapping[str, Any] | None = None,
) -> Callable[..., float]:
    """Scorer of out-of-distribution detection against a held-out OOD set.

    The returned ``scorer(estimator, X, y=None)`` scores the (held-out,
    in-distribution) ``X`` and ``X_ood`` with the fitted estimator's
    normality score (higher = more in-distribution) and returns the OOD
    metric, ID positive; ``y`` is ignored. It works for classifiers and
    outlier detectors alike, and for a ``Pipeline`` (its own
    ``score_samples`` runs the transforms first, on ``X_ood`` too).

    Parameters
    ----------
    X_ood : array-like of shape (n_ood, n_features)
        Out-of-distribution samples, in the same raw format as ``X``.
    metric : {"auroc", "aupr_in", "aupr_out", "tnr_at_tpr", "fpr_at_tpr"} or callable, \
default="auroc"
        The :mod:`skinfo.metrics` function ``ood_<metric>``
        (``tnr_at_tpr`` / ``fpr_at_tpr`` as named). ``"fpr_at_tpr"`` is a
        loss and is returned negated. A callable must take
        ``(scores_in, scores_out, *, balance, random_state, **metric_params)``
        and return a score where greater is better.
    score_method : {"score_samples", "decision_function", "max_proba"} or callable, \
default="score_samples"
        How to score samples: the estimator's method of that name,
        ``"max_proba"`` for the largest ``predict_proba`` column (the
        maximum-softmax-probability baseline, for classifiers without
        ``score_samples``), or ``callable(estimator, X) -> scores``.
    balance : bool, default=False
        Subsample the larger of the two sets to the size of the smaller one
        (Chali et al. 2023).
    random_state : int, RandomState instance or None, default=None
        Seeds that subsampling. With an int, every call subsamples alike, so
        the candidates of a search are compared on the same subsets (for
        equal set sizes).
    metric_params : dict, default=None
        Extra keyword arguments of the metric, e.g. ``{"tpr": 0.9}``.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y=None) -> float``, greater is better.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.ensemble import IsolationForest
    >>> from skinfo.scorers import make_ood_scorer
    >>> rng = np.random.RandomState(0)
    >>> X_train, X_test = rng.normal(size=(200, 2)), rng.normal(size=(50, 2))
    >>> X_ood = rng.normal(loc=6.0, size=(50, 2))
    >>> scorer = make_ood_scorer(X_ood)
    >>> scorer(IsolationForest(random_state=0).fit(X_train), X_test)
    1.0
    """
    if isinstance(metric, str):
        if metric not in _OOD_METRICS:
            raise ValueError(f"metric must be one of {sorted(_OOD_METRICS)} or a callable.")
    elif not callable(metric):
        raise TypeError(f"metric must be a string or a callable, got {metric!r}.")
    if isinstance(score_method, str):
        if score_method not in _SCORE_METHODS:
            raise ValueError(f"score_method must be one of {_SCORE_METHODS} or a callable.")
    elif not callable(score_method):
        raise TypeError(f"score_method must be a string or a callable, got {score_method!r}.")
    if _n_samples(X_ood) == 0:
        raise ValueError("X_ood is empty.")
    return _OODScorer(X_ood, metric, score_method, balance, random_state, metric_params)
