"""A classifier as an sklearn outlier detector, with feature-space OOD scores.

:class:`OODDetector` wraps any classifier (a skinfo estimator, an sklearn
classifier, a ``Pipeline``) and turns it into an outlier detector with
sklearn's outlier API (``score_samples``, ``decision_function``, ``predict``
with ``+1`` / ``-1``, ``offset_`` set from ``contamination``). Its score is the
classifier's own ``score_samples``, a score of the predicted probabilities or
logits, or a score fitted on the classifier's representation
(``transform(X)``): deep nearest neighbours (Sun et al. 2022), Mahalanobis
(Lee et al. 2018), relative Mahalanobis (Ren et al. 2021) or ViM (Wang et
al. 2022).
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from scipy.special import logsumexp, xlogy
from sklearn.base import BaseEstimator, MetaEstimatorMixin, OutlierMixin, clone
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.utils import get_tags
from sklearn.utils.validation import check_consistent_length, check_is_fitted, validate_data

from ._feature_scores import (
    COVARIANCES,
    FEATURE_SCORES,
    feature_scores,
    fit_feature_statistics,
    vim_head,
)
from ._params import BOOLEAN, RANDOM_STATE, Check, Interval, Options, check_params

#: Scores computed from the class probabilities (those from the representation
#: are ``FEATURE_SCORES``).
PROBABILITY_SCORES = ("max_proba", "neg_entropy")
OOD_SCORES = ("score_samples", *PROBABILITY_SCORES, "energy", *FEATURE_SCORES)

#: The classifier methods each score needs.
_NEEDS = {
    "score_samples": ("score_samples",),
    "max_proba": ("predict_proba",),
    "neg_entropy": ("predict_proba",),
    "energy": ("decision_logits",),
    "knn": ("transform",),
    "mahalanobis": ("transform",),
    "relative_mahalanobis": ("transform",),
    "vim": ("transform", "predict_proba"),
}

#: The fitted attributes of sklearn's input checks.
_INPUT_ATTRIBUTES = ("n_features_in_", "feature_names_in_")


def _final_estimator(estimator):
    """The estimator that makes the predictions: the last step of a Pipeline, unfrozen."""
    while True:
        if isinstance(estimator, Pipeline):
            estimator = estimator[-1]
        elif isinstance(estimator, FrozenEstimator):
            estimator = estimator.estimator
        else:
            return estimator


class OODDetector(OutlierMixin, MetaEstimatorMixin, BaseEstimator):
    """Out-of-distribution detector built on a classifier.

    ``fit(X, y)`` fits a clone of ``classifier`` on labelled in-distribution
    data (or, with ``prefit=True``, uses an already fitted classifier as it
    is), fits the statistics of the chosen score on the classifier's outputs
    for the training rows, and sets the threshold ``offset_`` so that a
    fraction ``contamination`` of the calibration rows (the training rows, or
    held-out rows with ``holdout_fraction``) falls below it. Then, as for
    sklearn's outlier detectors, :meth:`score_samples` is higher for more
    in-distribution rows, ``decision_function(X) = score_samples(X) -
    offset_`` and :meth:`predict` gives ``+1`` (inlier) or ``-1`` (outlier).

    Parameters
    ----------
    classifier : estimator
        A classifier: a skinfo classifier, any sklearn classifier or a
        ``Pipeline`` ending in one. It is cloned and fitted by :meth:`fit`
        unless ``prefit=True``; the object passed here is never fitted.
        Which methods it needs depends on ``ood_score``.
    ood_score : str, default="score_samples"
        The normality score (higher = more in-distribution):

        * ``"score_samples"``: the classifier's own ``score_samples`` (the
          default OOD score of each skinfo classifier).
        * ``"max_proba"``: ``max_k p_k(x)`` from ``predict_proba`` (Hendrycks
          & Gimpel 2017); works with any probabilistic classifier.
        * ``"neg_entropy"``: ``sum_k p_k(x) log p_k(x)``, minus the predictive
          entropy.
        * ``"energy"``: ``logsumexp_k l_k(x)`` of the logits
          ``decision_logits(X)`` (Liu et al. 2020, temperature 1).
        * ``"knn"``: ``-||u(x) - u_(k)||``, minus the distance from the
          L2-normalized representation ``u(x) = z(x) / ||z(x)||``,
          ``z = transform(x)``, to its ``n_neighbors``-th nearest normalized
          training representation (Sun et al. 2022).
        * ``"mahalanobis"``: ``-min_c (z - mu_c)^T S^-1 (z - mu_c)`` with the
          class means ``mu_c`` of the training representations and their
          shared (tied) covariance ``S`` (Lee et al. 2018, without input
          preprocessing or layer ensembles).
        * ``"relative_mahalanobis"``: ``-min_c [(z - mu_c)^T S^-1 (z - mu_c) -
          (z - mu_0)^T S_0^-1 (z - mu_0)]``, with ``N(mu_0, S_0)`` fitted to
          all training representations regardless of class (Ren et al. 2021).
        * ``"vim"``: virtual-logit matching, ``logsumexp_k l_k(z) - alpha
          ||(z - o) R||`` (Wang et al. 2022), with ``l(z) = W z + b`` the
          classifier's linear output layer, ``o = -pinv(W) b``, ``R`` the
          eigenvectors of the (uncentered) covariance of ``z - o`` beyond the
          ``vim_dim`` largest, and ``alpha`` the training mean of ``max_k l_k``
          divided by that of ``||(z - o) R||``. Needs a skinfo classifier
          whose probabilities are the softmax of a linear layer on
          ``transform(X)`` (e.g. :class:`~skinfo.SoftmaxClassifier`).

        The class-conditional scores use the training labels ``y`` (with
        ``y=None``, the classifier's predictions).
    contamination : float in (0, 0.5], default=0.05
        Fraction of the calibration rows to flag as outliers: ``offset_`` is
        ``np.quantile`` of their scores at ``contamination``. As in
        :class:`sklearn.covariance.EllipticEnvelope`, there is no ``"auto"``:
        none of the scores has a threshold fixed by its definition.
    holdout_fraction : float in (0, 1) or None, default=None
        ``None``: the classifier and the score statistics are fitted on all
        rows and ``offset_`` comes from the scores of those same rows (they
        score as more normal than unseen in-distribution data, so new
        in-distribution rows are flagged somewhat more often than
        ``contamination``). A float holds out that fraction of the rows
        (stratified by ``y`` when given), fits on the rest and sets
        ``offset_`` from the scores of the held-out rows, an unbiased
        threshold for new data.
    n_neighbors : int, default=50
        ``k`` of ``"knn"`` (Sun et al. use 50 on CIFAR-10); capped at the
        number of fitting rows.
    covariance : {"empirical", "ledoit_wolf"}, default="empirical"
        Estimator of the covariances of the Mahalanobis scores:
        :class:`sklearn.covariance.EmpiricalCovariance` (Lee et al.; its
        precision is a pseudo-inverse) or the shrunk
        :class:`sklearn.covariance.LedoitWolf` (for representations wider than
        the number of training rows).
    vim_dim : int or None, default=None
        Dimension of ViM's principal subspace. None follows Wang et al.'s
        code: 1000 for representations of width >= 2048, 512 for width >= 768,
        else half the width.
    prefit : bool, default=False
        Use ``classifier`` as it is, already fitted (it is neither cloned nor
        copied; ``y`` may then be None). ``clone`` returns an unfitted copy of
        the classifier, so in a ``GridSearchCV`` wrap a fitted classifier in
        :class:`sklearn.frozen.FrozenEstimator` instead.
    random_state : int, RandomState instance or None, default=None
        Seeds the held-out split of ``holdout_fraction`` (the classifier has
        its own).

    Attributes
    ----------
    classifier_ : estimator
        The fitted classifier (``classifier`` itself when ``prefit=True``).
    offset_ : float
        Threshold: ``decision_function(X) = score_samples(X) - offset_``.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features,)
        Names of the features seen in ``fit``, when they are all strings.
    feature_statistics_ : dict
        The fitted statistics of a feature-space score (numpy arrays and
        numbers): ``"knn"``: ``bank`` (the L2-normalized training
        representations) and ``n_neighbors`` (the ``k`` used,
        ``min(n_neighbors, n_fitting_rows)``); Mahalanobis scores:
        ``class_means`` (sorted label order), the shared ``covariance`` ``S``
        of the class-centered representations and its ``whitening``
        (``W W^T = S^-1``), and for ``"relative_mahalanobis"`` the
        ``background_mean`` and ``background_whitening`` of ``N(mu_0, S_0)``;
        ``"vim"``: ``head_weight`` and ``head_bias`` (``W``, ``b``), ``origin``
        (``o``), ``null_space`` (``R``), ``alpha`` and ``dim``. Absent for the
        other scores.

    See Also
    --------
    skinfo.ApproxMassFlowDetector : An unsupervised detector (a density model of X).
    skinfo.metrics.ood_auroc : Evaluate a score on in- and out-of-distribution rows.

    References
    ----------
    Hendrycks & Gimpel, "A Baseline for Detecting Misclassified and
    Out-of-Distribution Examples in Neural Networks", ICLR 2017.
    Lee, Lee, Lee & Shin, "A Simple Unified Framework for Detecting
    Out-of-Distribution Samples and Adversarial Attacks", NeurIPS 2018.
    Liu, Wang, Owens & Li, "Energy-based Out-of-distribution Detection",
    NeurIPS 2020.
    Ren, Fort, Liu, Roy, Padhy & Lakshminarayanan, "A Simple Fix to
    Mahalanobis Distance for Improving Near-OOD Detection", 2021.
    Sun, Ming, Zhu & Li, "Out-of-Distribution Detection with Deep Nearest
    Neighbors", ICML 2022.
    Wang, Li, Zhang & Zhang, "ViM: Out-Of-Distribution with Virtual-logit
    Matching", CVPR 2022.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skinfo import OODDetector, SoftmaxClassifier
    >>> from skinfo.metrics import ood_auroc
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X / 16
    >>> known = y < 5
    >>> clf = SoftmaxClassifier(hidden_layer_sizes=(32,), max_epochs=10, random_state=0)
    >>> det = OODDetector(clf, ood_score="mahalanobis").fit(X[known][:600], y[known][:600])
    >>> det.predict(X[:3]).shape
    (3,)
    >>> det.feature_statistics_["class_means"].shape
    (5, 32)
    >>> bool(ood_auroc(det.score_samples(X[known][600:]), det.score_samples(X[~known])) > 0.9)
    True
    """

    _constraints: dict = {
        "classifier": [Check(lambda v: hasattr(v, "fit"), "an estimator (with a fit method)")],
        "ood_score": [Options(OOD_SCORES)],
        "contamination": [Interval(Real, 0, 0.5, closed="right")],
        "holdout_fraction": [None, Interval(Real, 0, 1, closed="neither")],
        "n_neighbors": [Interval(Integral, 1, None)],
        "covariance": [Options(tuple(COVARIANCES))],
        "vim_dim": [None, Interval(Integral, 0, None)],
        "prefit": [BOOLEAN],
        "random_state": [RANDOM_STATE],
    }

    def __init__(
        self,
        classifier,
        *,
        ood_score="score_samples",
        contamination=0.05,
        holdout_fraction=None,
        n_neighbors=50,
        covariance="empirical",
        vim_dim=None,
        prefit=False,
        random_state=None,
    ):
        self.classifier = classifier
        self.ood_score = ood_score
        self.contamination = contamination
        self.holdout_fraction = holdout_fraction
        self.n_neighbors = n_neighbors
        self.covariance = covariance
        self.vim_dim = vim_dim
        self.prefit = prefit
        self.random_state = random_state

    def _check_param_combinations(self) -> None:
        missing = [m for m in _NEEDS[self.ood_score] if not hasattr(self.classifier, m)]
        if missing:
            hint = (
                " The probability scores ('max_proba', 'neg_entropy') need only predict_proba."
                if self.ood_score not in PROBABILITY_SCORES
                else ""
            )
            raise ValueError(
                f"ood_score={self.ood_score!r} needs a classifier with "
                + " and ".join(f"a {m} method" for m in missing)
                + f"; {type(self.classifier).__name__} has none.{hint}"
            )

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None):
        """Fit the classifier (unless ``prefit``), the score's statistics and ``offset_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            In-distribution training rows, in the format the classifier takes.
        y : array-like of shape (n_samples,) or None, default=None
            Their labels. Needed to fit the classifier; with ``prefit=True`` it
            may be None (the class-conditional scores then use the
            classifier's predictions).

        Returns
        -------
        self : object
            The fitted detector. A fit that raises leaves it as it was.
        """
        check_params(self)
        before = {k: self.__dict__[k] for k in _INPUT_ATTRIBUTES if k in self.__dict__}
        try:
            self._check_X(X, reset=True)
            state = self._fit_state(X, y)
        except BaseException:  # leave the detector as it was
            for name in _INPUT_ATTRIBUTES:
                self.__dict__.pop(name, None)
            self.__dict__.update(before)
            raise
        self.__dict__.pop("feature_statistics_", None)
        self.__dict__.update(state)
        return self

    def _fit_state(self, X, y) -> dict:
        """Every fitted attribute but those of the input checks, as a dict."""
        if y is not None:
            check_consistent_length(X, y)
        if self.holdout_fraction is None:
            X_fit, y_fit, X_cal = X, y, None
        else:
            parts = train_test_split(
                X,
                *([] if y is None else [y]),
                test_size=self.holdout_fraction,
                stratify=y,
                random_state=self.random_state,
            )
            X_fit, X_cal = parts[0], parts[1]
            y_fit = None if y is None else parts[2]
        if self.prefit:
            check_is_fitted(self.classifier)
            classifier = self.classifier
        else:
            classifier = clone(self.classifier).fit(X_fit, y_fit)

        state = {"classifier_": classifier, "_ood_score": self.ood_score}
        Z_fit = None
        if self.ood_score in FEATURE_SCORES:
            Z_fit = np.asarray(classifier.transform(X_fit), dtype=np.float64)
            state["feature_statistics_"] = self._fit_features(classifier, X_fit, y_fit, Z_fit)
        if X_cal is None:
            scores = self._scores(state, X_fit, Z_fit)
        else:
            scores = self._scores(state, X_cal)
        state["offset_"] = float(np.quantile(scores, self.contamination))
        return state

    def _fit_features(self, classifier, X, y, Z: np.ndarray) -> dict:
        """The statistics of a feature-space score, fitted on the representations ``Z``."""
        options = {"n_neighbors": self.n_neighbors, "covariance": self.covariance}
        if self.ood_score == "vim":
            module = getattr(getattr(_final_estimator(classifier), "net_", None), "module_", None)
            name = type(_final_estimator(classifier)).__name__
            head = vim_head(module, Z, classifier.predict_proba(X), name)
            options.update(head=head, principal_dim=self.vim_dim)
        elif self.ood_score != "knn":
            options["labels"] = classifier.predict(X) if y is None else np.asarray(y)
        return fit_feature_statistics(self.ood_score, Z, **options)

    def _check_X(self, X, *, reset: bool) -> None:
        """sklearn's checks of X's shape and features (``n_features_in_``, feature names).

        The validated copy is discarded: the classifier gets ``X`` as given
        (a DataFrame keeps its column names) and checks its values itself.
        """
        validate_data(
            self,
            X,
            reset=reset,
            accept_sparse=True,
            dtype=None,
            ensure_all_finite=False,
            allow_nd=True,
        )

    # --------------------------------------------------------------- scores
    def _scores(self, state: dict, X, Z: np.ndarray | None = None) -> np.ndarray:
        """The normality score of rows ``X`` under the fitted ``state``."""
        classifier, kind = state["classifier_"], state["_ood_score"]
        if kind == "score_samples":
            scores = classifier.score_samples(X)
        elif kind in PROBABILITY_SCORES:
            proba = np.asarray(classifier.predict_proba(X), dtype=np.float64)
            scores = proba.max(axis=1) if kind == "max_proba" else xlogy(proba, proba).sum(axis=1)
        elif kind == "energy":
            scores = logsumexp(np.asarray(classifier.decision_logits(X), np.float64), axis=1)
        else:
            if Z is None:
                Z = np.asarray(classifier.transform(X), dtype=np.float64)
            scores = feature_scores(kind, state["feature_statistics_"], Z)
        return np.asarray(scores, dtype=np.float64).reshape(-1)

    def score_samples(self, X) -> np.ndarray:
        """Normality score per row (higher = more in-distribution); ``ood_score`` chooses it.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows in the format of the training data.

        Returns
        -------
        ndarray of shape (n_samples,)
            The score of each row (float64).
        """
        check_is_fitted(self)
        self._check_X(X, reset=False)
        return self._scores(self.__dict__, X)

    def decision_function(self, X) -> np.ndarray:
        """``score_samples(X) - offset_``: negative for outliers.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows in the format of the training data.

        Returns
        -------
        ndarray of shape (n_samples,)
            The shifted score of each row.
        """
        return self.score_samples(X) - self.offset_

    def predict(self, X) -> np.ndarray:
        """+1 for inliers, -1 for outliers (``decision_function(X) < 0``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows in the format of the training data.

        Returns
        -------
        ndarray of shape (n_samples,)
            ``+1`` or ``-1`` (int) for each row.
        """
        return np.where(self.decision_function(X) < 0, -1, 1)

    def fit_predict(self, X, y=None):
        """Fit on ``X`` (and ``y``), then predict ``X``: +1 for inliers, -1 for outliers.

        Unlike :meth:`sklearn.base.OutlierMixin.fit_predict`, the labels are
        passed on to :meth:`fit`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            In-distribution training rows.
        y : array-like of shape (n_samples,) or None, default=None
            Their labels (see :meth:`fit`).

        Returns
        -------
        ndarray of shape (n_samples,)
            ``+1`` or ``-1`` (int) for each row.
        """
        return self.fit(X, y).predict(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = get_tags(self.classifier)
        tags.input_tags.sparse = inner.input_tags.sparse
        tags.input_tags.allow_nan = inner.input_tags.allow_nan
        tags.non_deterministic = inner.non_deterministic
        tags.target_tags.required = not self.prefit and inner.target_tags.required
        return tags
