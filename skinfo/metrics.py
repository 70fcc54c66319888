"""Calibration, proper-scoring and out-of-distribution (OOD) metrics.

numpy in, float out. Nothing here imports torch: the functions take the
outputs of ``predict_proba`` and ``score_samples`` of any estimator.

Calibration (``y_true`` any labels, ``y_prob`` of shape (n_samples, n_classes)
with its columns in the order of ``labels``; default: the sorted unique labels
of ``y_true``, as :func:`sklearn.metrics.log_loss`):

* :func:`calibration_bins` -- the one binning routine: per-bin mean confidence,
  accuracy and count of the top-label predictions (equal-width bins).
* :func:`expected_calibration_error`, :func:`max_calibration_error`,
  :func:`integrated_calibration_error` -- top-label calibration errors of
  Guo et al. (2017), computed from :func:`calibration_bins`.
* :func:`ibinn_calibration_errors` -- the all-class variant of appendix C of
  Ardizzone et al. (2020) (IB-INN): every one of the K probabilities of every
  sample is binned, with that appendix's bin edges (:data:`IBINN_BIN_EDGES`).
* :func:`accuracy_at_confidence` -- accuracy of the samples whose confidence
  reaches a threshold (Padhy et al. 2020, Figure 4), OOD samples counting as
  errors.

Proper scores and entropies: :func:`brier_score`,
:func:`negative_log_likelihood`, :func:`predictive_entropy`,
:func:`entropy_increase`.

OOD detection (``f(scores_in, scores_out, *, balance=False, random_state=None)``):
:func:`ood_auroc`, :func:`ood_aupr_in`, :func:`ood_aupr_out`,
:func:`tnr_at_tpr`, :func:`fpr_at_tpr`.

Sign convention of the OOD metrics: the scores are *normality* scores as
returned by ``score_samples`` of scikit-learn's outlier detectors and of every
skinfo estimator: **higher = more in-distribution**. AUROC, AUPR-in and the
true positive rate treat the in-distribution (ID) samples as the positive
class. pyod and pytorch-ood use the opposite convention (outlier positive,
higher = more anomalous): pass ``-scores`` from those libraries, and note that
their "AUPR" usually is our :func:`ood_aupr_out`. AUROC is the same number in
both conventions. ``balance=True`` subsamples the larger of the two sets to
the size of the smaller one before computing the metric, as Chali et al.
(2023) require for comparable ROC-based numbers.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import entr
from scipy.stats import rankdata
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    roc_auc_score,
    roc_curve,
)
from sklearn.utils import check_array, check_consistent_length, check_random_state, column_or_1d

__all__ = [
    "IBINN_BIN_EDGES",
    "CalibrationBins",
    "accuracy_at_confidence",
    "brier_score",
    "calibration_bins",
    "entropy_increase",
    "expected_calibration_error",
    "fpr_at_tpr",
    "ibinn_calibration_errors",
    "integrated_calibration_error",
    "max_calibration_error",
    "negative_log_likelihood",
    "ood_aupr_in",
    "ood_aupr_out",
    "ood_auroc",
    "predictive_entropy",
    "tnr_at_tpr",
]

#: Bin edges of appendix C of Ardizzone et al. (2020): 0.00-0.04 in steps of
#: 0.01, 0.05-0.85 in steps of 0.1, 0.95-0.99 in steps of 0.01, and 1. Twenty
#: edges, so **19 bins**: [0, 0.01), ..., [0.04, 0.05), [0.05, 0.15), ...,
#: [0.85, 0.95), [0.95, 0.96), ..., [0.99, 1].
IBINN_BIN_EDGES: np.ndarray = np.array(
    [0.00, 0.01, 0.02, 0.03, 0.04]
    + [0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85]
    + [0.95, 0.96, 0.97, 0.98, 0.99, 1.00]
)
IBINN_BIN_EDGES.setflags(write=False)

# A row of probabilities must sum to one within this tolerance where the
# metric needs a distribution (the entropies).
_SUM_TOL = 1e-5


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------


def _renormalize_rounding(proba: np.ndarray) -> np.ndarray:
    """Renormalize rows that sum to 1 up to rounding (within ``_SUM_TOL``).

    Float32 probabilities (from a float32 model) sum to 1 only to float32
    precision; scikit-learn checks their float64 copy at float64 precision and
    warns. Rows further from 1 are left alone, so scikit-learn still warns
    about inputs that are not probabilities.
    """
    sums = proba.sum(axis=1, keepdims=True)
    if np.allclose(sums, 1.0, rtol=0, atol=_SUM_TOL):
        return proba / sums
    return proba


def _check_labels_proba(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    labels: ArrayLike | None,
    is_ood: ArrayLike | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate labels and probabilities.

    Returns ``(y_idx, proba, labels)``: ``y_idx[i]`` is the column of the true
    label of sample i (-1 for samples flagged by ``is_ood``), ``proba`` a
    float64 array of shape (n_samples, n_classes) and ``labels`` the label of
    each column. A 1-D ``y_prob`` is the probability of ``labels[-1]`` in a
    two-class problem (what scikit-learn's scorers pass for binary
    classifiers) and is expanded to two columns.
    """
    y_true = column_or_1d(y_true)
    if y_true.shape[0] == 0:
        raise ValueError("y_true is empty: the metric needs at least one sample.")
    if y_true.dtype.kind in "fc" and not np.all(np.isfinite(y_true)):
        raise ValueError("y_true contains NaN or infinity.")
    proba = check_array(
        y_prob, ensure_2d=False, dtype=np.float64, input_name="y_prob", allow_nd=False
    )
    check_consistent_length(y_true, proba)
    if is_ood is None:
        ood = np.zeros(y_true.shape[0], dtype=bool)
    else:
        ood = column_or_1d(is_ood).astype(bool)
        check_consistent_length(y_true, ood)
    try:
        if labels is None:
            labels = np.unique(y_true[~ood])
        else:
            labels = column_or_1d(labels)
            if np.unique(labels).shape[0] != labels.shape[0]:
                raise ValueError(f"labels contains duplicates: {labels!r}.")
        known = np.isin(y_true[~ood], labels)
    except TypeError as exc:  # e.g. strings mixed with numbers
        raise ValueError(f"y_true and labels mix label types: {exc}") from exc
    if not np.all(known):
        unknown = np.unique(y_true[~ood][~known])
        raise ValueError(f"y_true contains labels that are not in labels: {unknown[:10]!r}.")
    n_classes = labels.shape[0]
    if n_classes < 2:
        raise ValueError(
            f"Need at least two classes, got labels={labels!r}. When y_true holds a single "
            "class (e.g. a small cross-validation fold), pass labels= with all the classes."
        )
    if proba.ndim == 1 or proba.shape[1] == 1:
        if n_classes != 2:
            raise ValueError(
                "A 1-D y_prob is read as the probability of the positive class labels[-1] and "
                f"needs exactly two labels; got {n_classes}: {labels!r}."
            )
        p = proba.reshape(-1)
        proba = np.column_stack([1.0 - p, p])
    elif proba.shape[1] != n_classes:
        raise ValueError(
            f"y_prob has {proba.shape[1]} columns but there are {n_classes} labels "
            f"({labels[:10]!r}); pass labels= with one label per column, in column order."
        )
    if np.any(proba < 0.0) or np.any(proba > 1.0):
        raise ValueError(
            f"y_prob must hold probabilities in [0, 1]; got values in "
            f"[{proba.min():.6g}, {proba.max():.6g}]."
        )
    y_idx = np.full(y_true.shape[0], -1, dtype=np.intp)
    sorter = np.argsort(labels)
    y_idx[~ood] = sorter[np.searchsorted(labels, y_true[~ood], sorter=sorter)]
    return y_idx, proba, labels


def _check_distribution(y_prob: ArrayLike, name: str = "y_prob") -> np.ndarray:
    """Validate a 2-D array of probability rows that sum to one (1-D: binary)."""
    proba = check_array(y_prob, ensure_2d=False, dtype=np.float64, input_name=name)
    if proba.ndim == 1:
        proba = np.column_stack([1.0 - proba, proba])
    if np.any(proba < 0.0) or np.any(proba > 1.0):
        raise ValueError(f"{name} must hold probabilities in [0, 1].")
    sums = proba.sum(axis=1)
    if np.any(np.abs(sums - 1.0) > _SUM_TOL):
        raise ValueError(
            f"The rows of {name} must sum to one (predict_proba); found sums in "
            f"[{sums.min():.6g}, {sums.max():.6g}]."
        )
    return proba


def _check_positive_int(value: int, name: str) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def _check_scores(scores: ArrayLike, name: str) -> np.ndarray:
    """1-D float scores; infinities are allowed (only the order matters), NaN is not."""
    try:
        arr = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric scores: {exc}") from exc
    arr = column_or_1d(arr)
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty.")
    if np.any(np.isnan(arr)):
        raise ValueError(f"{name} contains NaN.")
    return arr


# ---------------------------------------------------------------------------
# Binning (shared by every calibration metric)
# ---------------------------------------------------------------------------


def _top_label(proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Predicted column (the first on ties) and its probability, the confidence."""
    pred = np.argmax(proba, axis=1)
    return pred, proba[np.arange(proba.shape[0]), pred]


def _bin_sums(
    values: np.ndarray, hits: np.ndarray, edges: np.ndarray, *, right: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count, sum of ``values`` and sum of ``hits`` in each bin.

    ``right=True``: bins ``(e_b, e_{b+1}]`` with ``e_0`` itself in the first
    bin (Guo et al.). ``right=False``: half-open bins ``[e_b, e_{b+1})`` with
    the last edge itself in the last bin (IB-INN appendix C).
    """
    n_bins = edges.shape[0] - 1
    side = "left" if right else "right"
    idx = np.clip(np.searchsorted(edges, values, side=side) - 1, 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    value_sum = np.bincount(idx, weights=values, minlength=n_bins)
    hit_sum = np.bincount(idx, weights=hits, minlength=n_bins)
    return count, value_sum, hit_sum


class CalibrationBins(NamedTuple):
    """Per-bin statistics of the top-label predictions (see :func:`calibration_bins`).

    Parameters
    ----------
    edges : ndarray of shape (n_bins + 1,)
        Bin edges.
    confidence : ndarray of shape (n_bins,)
        Mean top-label confidence in each bin (NaN for an empty bin).
    accuracy : ndarray of shape (n_bins,)
        Fraction of correct top-label predictions in each bin (NaN for an empty bin).
    count : ndarray of shape (n_bins,)
        Number of samples in each bin.
    """

    edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray


def calibration_bins(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    *,
    n_bins: int = 15,
    labels: ArrayLike | None = None,
) -> CalibrationBins:
    """Bin the top-label predictions by confidence (equal-width bins).

    The confidence of a sample is its largest predicted probability and its
    prediction the label of that column (the first one on ties, as
    ``argmax``). Bin b is ``((b - 1) / n_bins, b / n_bins]`` (Guo et al.
    2017), a confidence of exactly 0 going to the first bin. The rows of
    ``y_prob`` need not sum to one (e.g. one-vs-all probabilities).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels (any type).
    y_prob : array-like of shape (n_samples, n_classes) or (n_samples,)
        Predicted probabilities, columns in the order of ``labels``; a 1-D
        array is the probability of ``labels[-1]`` in a binary problem.
    n_bins : int, default=15
        Number of equal-width bins on [0, 1].
    labels : array-like of shape (n_classes,), default=None
        Label of each column of ``y_prob``; default: the sorted unique labels
        of ``y_true``.

    Returns
    -------
    bins : CalibrationBins
        Named tuple ``(edges, confidence, accuracy, count)``; ``confidence``
        and ``accuracy`` are NaN in empty bins.

    Examples
    --------
    >>> from skinfo.metrics import calibration_bins
    >>> bins = calibration_bins([0, 1, 1], [[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]], n_bins=5)
    >>> bins.count
    array([0, 0, 0, 2, 1])
    >>> bins.accuracy[3], bins.confidence[3]
    (np.float64(0.5), np.float64(0.75))
    """
    n_bins = _check_positive_int(n_bins, "n_bins")
    y_idx, proba, _ = _check_labels_proba(y_true, y_prob, labels)
    pred, conf = _top_label(proba)
    correct = (pred == y_idx).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    count, conf_sum, hit_sum = _bin_sums(conf, correct, edges, right=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.where(count > 0, conf_sum / count, np.nan)
        accuracy = np.where(count > 0, hit_sum / count, np.nan)
    return CalibrationBins(edges, confidence, accuracy, count)


def _calibration_errors(count: np.ndarray, widths: np.ndarray, gaps: np.ndarray) -> dict:
    """ECE, MCE and ICE of the kept bins from their counts, widths and |accuracy - confidence|."""
    ece = np.sum(count * gaps) / np.sum(count)
    return {"ece": float(ece), "mce": float(np.max(gaps)), "ice": float(np.sum(widths * gaps))}


def _top_label_errors(
    y_true: ArrayLike, y_prob: ArrayLike, n_bins: int, labels: ArrayLike | None
) -> dict[str, float]:
    """:func:`_calibration_errors` of the non-empty bins of :func:`calibration_bins`."""
    bins = calibration_bins(y_true, y_prob, n_bins=n_bins, labels=labels)
    filled = bins.count > 0
    gaps = np.abs(bins.accuracy[filled] - bins.confidence[filled])
    return _calibration_errors(bins.count[filled], np.diff(bins.edges)[filled], gaps)


def expected_calibration_error(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    *,
    n_bins: int = 15,
    labels: ArrayLike | None = None,
) -> float:
    """Top-label expected calibration error (Guo et al. 2017).

    ``ECE = sum_b (n_b / n) |acc_b - conf_b|`` over the equal-width
    confidence bins of :func:`calibration_bins`, where ``acc_b`` is the
    accuracy and ``conf_b`` the mean confidence of the ``n_b`` samples in bin
    b. A fraction in [0, 1] (not percent); lower is better.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels (any type).
    y_prob : array-like of shape (n_samples, n_classes) or (n_samples,)
        Predicted probabilities, columns in the order of ``labels``; a 1-D
        array is the probability of ``labels[-1]`` in a binary problem.
    n_bins : int, default=15
        Number of equal-width bins.
    labels : array-like of shape (n_classes,), default=None
        Label of each column; default: the sorted unique labels of ``y_true``.

    Returns
    -------
    ece : float
        The expected calibration error.

    Examples
    --------
    A predictor that always says 0.8 and is right 3 times out of 4 has
    ECE = ``|0.75 - 0.8|`` = 0.05:

    >>> from skinfo.metrics import expected_calibration_error
    >>> y_prob = [[0.8, 0.2]] * 4
    >>> round(expected_calibration_error([0, 0, 0, 1], y_prob), 10)
    0.05
    """
    return _top_label_errors(y_true, y_prob, n_bins, labels)["ece"]


def max_calibration_error(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    *,
    n_bins: int = 15,
    labels: ArrayLike | None = None,
) -> float:
    """Top-label maximum calibration error (Guo et al. 2017).

    ``MCE = max_b |acc_b - conf_b|`` over the non-empty bins of
    :func:`calibration_bins`. A fraction in [0, 1]; lower is better. Sensitive
    to sparsely filled bins: read it together with the bin counts.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels (any type).
    y_prob : array-like of shape (n_samples, n_classes) or (n_samples,)
        Predicted probabilities, columns in the order of ``labels``.
    n_bins : int, default=15
        Number of equal-width bins.
    labels : array-like of shape (n_classes,), default=None
        Label of each column; default: the sorted unique labels of ``y_true``.

    Returns
    -------
    mce : float
        The maximum calibration error.

    Examples
    --------
    >>> from skinfo.metrics import max_calibration_error
    >>> y_prob = [[0.9, 0.1], [0.9, 0.1], [0.3, 0.7], [0.3, 0.7]]
    >>> round(max_calibration_error([0, 1, 1, 1], y_prob, n_bins=10), 10)
    0.4
    """
    return _top_label_errors(y_true, y_prob, n_bins, labels)["mce"]


def integrated_calibration_error(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    *,
    n_bins: int = 15,
    labels: ArrayLike | None = None,
) -> float:
    """Top-label integrated calibration error: area between reliability curve and diagonal.

    ``ICE = sum_b (e_{b+1} - e_b) |acc_b - conf_b|`` over the non-empty bins
    of :func:`calibration_bins` (edges ``e``). This is Eq. (64) of appendix C
    of Ardizzone et al. (2020), "summed error per bin" weighted by bin width,
    applied to the top-label bins of Guo et al.; where that appendix uses the
    bin centre as the confidence, this function uses the mean confidence of
    the bin, as ECE does. Unlike the ECE, every non-empty bin weighs the same
    whatever its count. With equal-width bins it is the mean gap over the
    non-empty bins times their total width. For the all-class variant of the
    appendix see :func:`ibinn_calibration_errors`.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels (any type).
    y_prob : array-like of shape (n_samples, n_classes) or (n_samples,)
        Predicted probabilities, columns in the order of ``labels``.
    n_bins : int, default=15
        Number of equal-width bins.
    labels : array-like of shape (n_classes,), default=None
        Label of each column; default: the sorted unique labels of ``y_true``.

    Returns
    -------
    ice : float
        The integrated calibration error, in [0, 1].

    Examples
    --------
    >>> from skinfo.metrics import integrated_calibration_error
    >>> y_prob = [[0.9, 0.1], [0.9, 0.1], [0.3, 0.7], [0.3, 0.7]]
    >>> round(integrated_calibration_error([0, 1, 1, 1], y_prob, n_bins=10), 10)
    0.07
    """
    return _top_label_errors(y_true, y_prob, n_bins, labels)["ice"]


def ibinn_calibration_errors(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    *,
    bin_edges: ArrayLike | None = None,
    min_count: int = 21,
    labels: ArrayLike | None = None,
) -> dict[str, float]:
    """All-class calibration errors of IB-INN (Ardizzone et al. 2020, appendix C).

    Unlike the top-label metrics, **all K predicted probabilities** of every
    sample are binned, n * K predictions in all; prediction ``p(y'|x_j)``
    is correct when ``y'`` is the true label ``y_j``. With bin edges
    ``b_1 = 0 < ... < b_{K+1} = 1``, for each bin i with ``n_i`` predictions
    of which ``n_c,i`` are correct (Eqs. 58-59), confidence
    ``P_i = (b_i + b_{i+1}) / 2`` (the bin centre, Eq. 60) and accuracy
    ``Q_i = n_c,i / n_i`` (Eq. 61)::

        ECE = sum_i (n_i / n_tot) |P_i - Q_i|        (Eq. 62)
        MCE = max_i |P_i - Q_i|                      (Eq. 63)
        ICE = sum_i (b_{i+1} - b_i) |P_i - Q_i|      (Eq. 64)
        geometric_mean = (ECE * MCE * ICE) ** (1/3)  (Section 4.2)

    with ``n_tot = sum_i n_i``, all sums over the bins that are kept.
    Fractions, not percent (the paper's tables are in percent).

    How the ambiguities of the appendix are resolved:

    * **Correctness** (Eq. 59). Printed, Eq. 59 counts a prediction
      ``p(y'|x_j)`` as correct when ``argmax_y' p(y'|x_j) = y_j``, re-using
      the summation variable ``y'`` inside the argmax. Read literally, every
      probability of a correctly classified sample would count as correct,
      near-zero ones included, which contradicts the text of Section 4.2
      ("which fraction of predictions in each bin was correct") and the
      small errors the paper reports. We use ``[y' = y_j]``, the all-class
      (one-vs-rest) reading; the authors' public evaluation code does the
      same.
    * **Bin edges.** The appendix's
      ``concatenate(range(0.00, 0.05, 0.01), range(0.05, 0.95, 0.1),
      range(0.95, 1.00, 0.01))`` with ``b_{K+1} = 1`` gives the 20 edges of
      :data:`IBINN_BIN_EDGES`, i.e. **19 bins** (the ranges exclude their
      stop value; 0.95 is reached by the third range).
    * **Half-open bins** ``B_i = [b_i, b_{i+1})`` would leave a probability
      of exactly 1 in no bin; the last bin is closed, ``[0.99, 1]``.
    * **Sparse bins.** The appendix states no rule, but ``Q_i`` is undefined
      for an empty bin. The authors' evaluation code keeps only bins holding
      more than 20 predictions, which produced the published numbers; that
      is the default ``min_count=21``. ``min_count=1`` keeps every non-empty
      bin (the literal appendix). Dropped bins leave all sums, ``n_tot``
      included.
    * **ICE.** We follow Eq. (64) (bin-width-weighted sum). The authors'
      code instead integrates ``|P - Q|`` with the trapezoidal rule over the
      kept bin centres, which gives slightly different values.

    Note: the "Geo. mean" column of the paper's Tables 1 and 2 comes first,
    before ECE, MCE and ICE (e.g. IB-INN, gamma = 1 on CIFAR-10: geometric
    mean 1.26, ECE 0.54, MCE 3.25, ICE 1.13 percent).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels (any type).
    y_prob : array-like of shape (n_samples, n_classes) or (n_samples,)
        Predicted probabilities, columns in the order of ``labels``; a 1-D
        array is the probability of ``labels[-1]`` in a binary problem.
    bin_edges : array-like, default=None
        Increasing bin edges from 0 to 1; default :data:`IBINN_BIN_EDGES`
        (the appendix's).
    min_count : int, default=21
        Bins with fewer predictions than this are dropped.
    labels : array-like of shape (n_classes,), default=None
        Label of each column; default: the sorted unique labels of ``y_true``.

    Returns
    -------
    errors : dict
        ``{"ece": float, "mce": float, "ice": float, "geometric_mean": float}``.

    Raises
    ------
    ValueError
        If no bin holds ``min_count`` predictions (lower ``min_count``).

    Examples
    --------
    A three-class predictor that puts 0.9 on its predicted class, right 90 %
    of the time, and 0.05 on each other class, right 5 % of the time. The 0.9
    predictions land in bin [0.85, 0.95) with centre 0.9: no error. The 0.05
    predictions land in bin [0.05, 0.15), whose centre 0.1 is their
    confidence: a gap of 0.05 for 40 of the 60 predictions.

    >>> import numpy as np
    >>> from skinfo.metrics import ibinn_calibration_errors
    >>> y_prob = np.tile([0.9, 0.05, 0.05], (20, 1))
    >>> y_true = np.array([0] * 18 + [1, 2])
    >>> errors = ibinn_calibration_errors(y_true, y_prob, labels=[0, 1, 2], min_count=1)
    >>> {k: round(v, 4) for k, v in errors.items()}
    {'ece': 0.0333, 'mce': 0.05, 'ice': 0.005, 'geometric_mean': 0.0203}
    """
    if bin_edges is None:
        edges = np.asarray(IBINN_BIN_EDGES)
    else:
        edges = column_or_1d(np.asarray(bin_edges, dtype=np.float64))
        if edges.shape[0] < 2 or edges[0] != 0.0 or edges[-1] != 1.0 or np.any(np.diff(edges) <= 0):
            raise ValueError("bin_edges must increase strictly from 0 to 1.")
    min_count = _check_positive_int(min_count, "min_count")
    y_idx, proba, _ = _check_labels_proba(y_true, y_prob, labels)
    onehot = np.zeros_like(proba)
    onehot[np.arange(proba.shape[0]), y_idx] = 1.0
    count, _, n_correct = _bin_sums(proba.ravel(), onehot.ravel(), edges, right=False)
    keep = count >= min_count
    if not np.any(keep):
        raise ValueError(
            f"No bin holds at least min_count={min_count} predictions "
            f"({proba.size} predictions in all); lower min_count."
        )
    centres = 0.5 * (edges[:-1] + edges[1:])[keep]
    accuracy = n_correct[keep] / count[keep]
    errors = _calibration_errors(count[keep], np.diff(edges)[keep], np.abs(centres - accuracy))
    errors["geometric_mean"] = float(np.cbrt(errors["ece"] * errors["mce"] * errors["ice"]))
    return errors


def accuracy_at_confidence(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    *,
    thresholds: ArrayLike | None = None,
    is_ood: ArrayLike | None = None,
    labels: ArrayLike | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Accuracy of the samples whose confidence is at least tau, for each threshold tau.

    The accuracy-vs-confidence curve of Padhy et al. (2020, Figure 4; after
    Lakshminarayanan et al. 2017): keep the samples whose confidence (largest
    predicted probability) is ``>= tau`` and measure their accuracy. On a
    mixed set of in- and out-of-distribution samples, the OOD samples
    (``is_ood``) count as errors whatever is predicted; their entries of
    ``y_true`` are ignored.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels (any type; anything for OOD samples).
    y_prob : array-like of shape (n_samples, n_classes) or (n_samples,)
        Predicted probabilities, columns in the order of ``labels``; rows need
        not sum to one (e.g. one-vs-all probabilities).
    thresholds : array-like, default=None
        Confidence thresholds tau; default ``numpy.linspace(0, 1, 101)``.
    is_ood : array-like of bool of shape (n_samples,), default=None
        Marks the out-of-distribution samples.
    labels : array-like of shape (n_classes,), default=None
        Label of each column; default: the sorted unique labels of the
        in-distribution entries of ``y_true``.

    Returns
    -------
    thresholds : ndarray of shape (n_thresholds,)
        The thresholds.
    accuracy : ndarray of shape (n_thresholds,)
        Accuracy among the kept samples (NaN where none is kept).
    coverage : ndarray of shape (n_thresholds,)
        Fraction of all samples that are kept.

    Examples
    --------
    >>> from skinfo.metrics import accuracy_at_confidence
    >>> y_prob = [[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.7, 0.3]]
    >>> tau, acc, cov = accuracy_at_confidence(
    ...     [0, 1, 1, -1], y_prob, thresholds=[0.5, 0.8], is_ood=[0, 0, 0, 1])
    >>> acc.tolist(), cov.tolist()
    ([0.5, 1.0], [1.0, 0.5])
    """
    y_idx, proba, _ = _check_labels_proba(y_true, y_prob, labels, is_ood=is_ood)
    if thresholds is None:
        thresholds = np.linspace(0.0, 1.0, 101)
    tau = column_or_1d(np.asarray(thresholds, dtype=np.float64))
    pred, conf = _top_label(proba)
    correct = pred == y_idx  # y_idx is -1 for OOD samples: never correct
    kept = conf[None, :] >= tau[:, None]
    n_kept = kept.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(n_kept > 0, (kept & correct[None, :]).sum(axis=1) / n_kept, np.nan)
    return tau, accuracy, n_kept / conf.shape[0]


# ---------------------------------------------------------------------------
# Proper scores and entropies
# ---------------------------------------------------------------------------


def brier_score(y_true: ArrayLike, y_prob: ArrayLike, *, labels: ArrayLike | None = None) -> float:
    """Multiclass Brier score ``mean_i sum_k (p_ik - [y_i = k])^2``.

    Not divided by the number of classes: it lies in [0, 2]. This is
    :func:`sklearn.metrics.brier_score_loss` with ``scale_by_half=False``,
    which this function calls. For two classes it is therefore **twice**
    scikit-learn's default binary Brier score (``mean_i (p_i - y_i)^2``),
    also when ``y_prob`` is given as the 1-D probability of ``labels[-1]``.
    Lower is better.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels (any type).
    y_prob : array-like of shape (n_samples, n_classes) or (n_samples,)
        Predicted probabilities, columns in the order of ``labels`` (unlike
        scikit-learn, whose columns follow the *sorted* labels).
    labels : array-like of shape (n_classes,), default=None
        Label of each column; default: the sorted unique labels of ``y_true``.

    Returns
    -------
    brier : float
        The Brier score.

    Examples
    --------
    >>> from skinfo.metrics import brier_score
    >>> round(brier_score(["a", "b"], [[0.8, 0.2], [0.4, 0.6]]), 10)
    0.2
    """
    y_idx, proba, _ = _check_labels_proba(y_true, y_prob, labels)
    proba = _renormalize_rounding(proba)
    classes = np.arange(proba.shape[1])
    return float(brier_score_loss(y_idx, proba, labels=classes, scale_by_half=False))


def negative_log_likelihood(
    y_true: ArrayLike, y_prob: ArrayLike, *, labels: ArrayLike | None = None
) -> float:
    """Mean negative log-likelihood of the true labels (nats): :func:`sklearn.metrics.log_loss`.

    Probabilities are clipped away from 0 by scikit-learn, so a zero
    probability on the true label gives a large but finite value. Columns
    follow ``labels`` as given (scikit-learn's ``log_loss`` reads them in
    sorted label order; here the labels are encoded first, so both agree when
    ``labels`` is sorted). Lower is better.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels (any type).
    y_prob : array-like of shape (n_samples, n_classes) or (n_samples,)
        Predicted probabilities, columns in the order of ``labels``.
    labels : array-like of shape (n_classes,), default=None
        Label of each column; default: the sorted unique labels of ``y_true``.

    Returns
    -------
    nll : float
        ``-mean_i log p(y_i | x_i)``.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfo.metrics import negative_log_likelihood
    >>> nll = negative_log_likelihood([1, 0], [[0.5, 0.5], [0.25, 0.75]])
    >>> bool(np.isclose(nll, -(np.log(0.5) + np.log(0.25)) / 2))
    True
    """
    y_idx, proba, _ = _check_labels_proba(y_true, y_prob, labels)
    proba = _renormalize_rounding(proba)
    return float(log_loss(y_idx, proba, labels=np.arange(proba.shape[1])))


def predictive_entropy(y_prob: ArrayLike) -> np.ndarray:
    """Entropy ``-sum_k p_k log p_k`` of each predictive distribution, in nats.

    ``0 log 0 = 0``. Divide by ``log(2)`` for bits; the maximum is
    ``log(n_classes)`` (uniform prediction).

    Parameters
    ----------
    y_prob : array-like of shape (n_samples, n_classes) or (n_samples,)
        Predicted probabilities; each row must sum to one. A 1-D array is the
        positive-class probability of a binary problem.

    Returns
    -------
    entropy : ndarray of shape (n_samples,)
        Entropy of each row.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfo.metrics import predictive_entropy
    >>> h = predictive_entropy([[0.5, 0.5], [1.0, 0.0]])
    >>> bool(np.isclose(h[0], np.log(2))), float(h[1])
    (True, 0.0)
    """
    return entr(_check_distribution(y_prob)).sum(axis=1)


def entropy_increase(y_prob_in: ArrayLike, y_prob_out: ArrayLike) -> float:
    """Increase of the predictive entropy on OOD data over in-distribution data (nats).

    ``mean H(Y|x_out) - mean H(Y|x_in)`` with :func:`predictive_entropy`:
    the "increased OoD prediction entropy" of Ardizzone et al. (2020,
    Section 4.2, after Ovadia et al. 2019), who subtract the in-distribution
    test entropy so that a less accurate (hence more uncertain) model does
    not look better. Higher is better. The paper does not state its log
    base; this function uses nats (divide by ``log(2)`` for bits).

    Parameters
    ----------
    y_prob_in : array-like of shape (n_in, n_classes)
        Predicted probabilities on in-distribution test data.
    y_prob_out : array-like of shape (n_out, n_classes)
        Predicted probabilities on OOD data (same classes).

    Returns
    -------
    increase : float
        Mean entropy on OOD data minus mean entropy on in-distribution data.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfo.metrics import entropy_increase
    >>> inc = entropy_increase([[1.0, 0.0]], [[0.5, 0.5]])
    >>> bool(np.isclose(inc, np.log(2)))
    True
    """
    p_in = _check_distribution(y_prob_in, "y_prob_in")
    p_out = _check_distribution(y_prob_out, "y_prob_out")
    if p_in.shape[1] != p_out.shape[1]:
        raise ValueError(
            f"y_prob_in has {p_in.shape[1]} columns and y_prob_out {p_out.shape[1]}; "
            "both must predict the same classes."
        )
    return float(entr(p_out).sum(axis=1).mean() - entr(p_in).sum(axis=1).mean())


# ---------------------------------------------------------------------------
# Out-of-distribution detection
# ---------------------------------------------------------------------------


def _ood_targets_scores(
    scores_in: ArrayLike,
    scores_out: ArrayLike,
    balance: bool,
    random_state: int | np.random.RandomState | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Targets (ID = 1) and scores for the sklearn ranking metrics.

    Optionally subsamples the larger set without replacement to the size of
    the smaller one. The scores are replaced by their ranks (ties kept), which
    changes none of the ranking metrics and lets infinite scores through.
    """
    s_in = _check_scores(scores_in, "scores_in")
    s_out = _check_scores(scores_out, "scores_out")
    if balance:
        rng = check_random_state(random_state)
        n = min(s_in.shape[0], s_out.shape[0])
        if s_in.shape[0] > n:
            s_in = s_in[rng.choice(s_in.shape[0], n, replace=False)]
        elif s_out.shape[0] > n:
            s_out = s_out[rng.choice(s_out.shape[0], n, replace=False)]
    y = np.concatenate([np.ones(s_in.shape[0], dtype=int), np.zeros(s_out.shape[0], dtype=int)])
    ranks = rankdata(np.concatenate([s_in, s_out]))
    return y, ranks


def ood_auroc(
    scores_in: ArrayLike,
    scores_out: ArrayLike,
    *,
    balance: bool = False,
    random_state: int | np.random.RandomState | None = None,
) -> float:
    """Area under the ROC curve of ID-vs-OOD detection (ID positive).

    :func:`sklearn.metrics.roc_auc_score` with in-distribution = 1 and the
    normality scores: the probability that a random ID sample scores higher
    than a random OOD sample (ties count one half). 1 = perfect separation,
    0.5 = chance, 0 = perfectly reversed. Invariant to strictly increasing
    transforms of the scores, and the same number as pyod's outlier-positive
    AUROC on the negated scores.

    Parameters
    ----------
    scores_in : array-like of shape (n_in,)
        Normality scores of in-distribution samples (higher = more
        in-distribution, as ``score_samples``). Infinite values are allowed.
    scores_out : array-like of shape (n_out,)
        Normality scores of out-of-distribution samples.
    balance : bool, default=False
        Subsample the larger set (without replacement) to the size of the
        smaller one first (Chali et al. 2023).
    random_state : int, RandomState instance or None, default=None
        Seeds the subsampling when ``balance=True``.

    Returns
    -------
    auroc : float
        Area under the ROC curve.

    Examples
    --------
    >>> from skinfo.metrics import ood_auroc
    >>> ood_auroc([3.0, 2.0, 1.5], [1.0, 2.5])
    0.6666666666666666
    """
    y, s = _ood_targets_scores(scores_in, scores_out, balance, random_state)
    return float(roc_auc_score(y, s))


def ood_aupr_in(
    scores_in: ArrayLike,
    scores_out: ArrayLike,
    *,
    balance: bool = False,
    random_state: int | np.random.RandomState | None = None,
) -> float:
    """Area under the precision-recall curve with the in-distribution samples positive.

    :func:`sklearn.metrics.average_precision_score` with ID = 1 and the
    normality scores. Its chance level is the fraction of ID samples, so it
    depends on the ID/OOD ratio (see ``balance``).

    Parameters
    ----------
    scores_in : array-like of shape (n_in,)
        Normality scores of in-distribution samples (higher = more
        in-distribution, as ``score_samples``). Infinite values are allowed.
    scores_out : array-like of shape (n_out,)
        Normality scores of out-of-distribution samples.
    balance : bool, default=False
        Subsample the larger set (without replacement) to the size of the
        smaller one first (Chali et al. 2023).
    random_state : int, RandomState instance or None, default=None
        Seeds the subsampling when ``balance=True``.

    Returns
    -------
    aupr_in : float
        Average precision, ID positive.

    Examples
    --------
    >>> from skinfo.metrics import ood_aupr_in
    >>> ood_aupr_in([3.0, 2.0], [1.0, 0.0])
    1.0
    """
    y, s = _ood_targets_scores(scores_in, scores_out, balance, random_state)
    return float(average_precision_score(y, s))


def ood_aupr_out(
    scores_in: ArrayLike,
    scores_out: ArrayLike,
    *,
    balance: bool = False,
    random_state: int | np.random.RandomState | None = None,
) -> float:
    """Area under the precision-recall curve with the OOD samples positive.

    :func:`sklearn.metrics.average_precision_score` with OOD = 1 and the
    negated normality scores (higher = more anomalous): the "AUPR" of pyod and
    pytorch-ood.

    Parameters
    ----------
    scores_in : array-like of shape (n_in,)
        Normality scores of in-distribution samples (higher = more
        in-distribution, as ``score_samples``). Infinite values are allowed.
    scores_out : array-like of shape (n_out,)
        Normality scores of out-of-distribution samples.
    balance : bool, default=False
        Subsample the larger set (without replacement) to the size of the
        smaller one first (Chali et al. 2023).
    random_state : int, RandomState instance or None, default=None
        Seeds the subsampling when ``balance=True``.

    Returns
    -------
    aupr_out : float
        Average precision, OOD positive.

    Examples
    --------
    >>> from skinfo.metrics import ood_aupr_out
    >>> ood_aupr_out([3.0, 2.0], [1.0, 0.0])
    1.0
    """
    y, s = _ood_targets_scores(scores_in, scores_out, balance, random_state)
    return float(average_precision_score(1 - y, -s))


def tnr_at_tpr(
    scores_in: ArrayLike,
    scores_out: ArrayLike,
    tpr: float = 0.95,
    *,
    balance: bool = False,
    random_state: int | np.random.RandomState | None = None,
) -> float:
    """Fraction of OOD samples rejected at the threshold that keeps ``tpr`` of the ID samples.

    A sample is accepted as in-distribution when its score is ``>= t``; t is
    the largest threshold that accepts at least a fraction ``tpr`` of the ID
    samples (on ties, the tied OOD samples are accepted too). Returns the
    fraction of OOD samples with score ``< t`` (TNR@95%TPR for the default).
    Read off :func:`sklearn.metrics.roc_curve`. Higher is better.

    Parameters
    ----------
    scores_in : array-like of shape (n_in,)
        Normality scores of in-distribution samples (higher = more
        in-distribution, as ``score_samples``). Infinite values are allowed.
    scores_out : array-like of shape (n_out,)
        Normality scores of out-of-distribution samples.
    tpr : float, default=0.95
        True positive rate (fraction of ID samples kept), in (0, 1].
    balance : bool, default=False
        Subsample the larger set (without replacement) to the size of the
        smaller one first (Chali et al. 2023).
    random_state : int, RandomState instance or None, default=None
        Seeds the subsampling when ``balance=True``.

    Returns
    -------
    tnr : float
        True negative rate at that threshold.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfo.metrics import tnr_at_tpr
    >>> scores_in = np.arange(1.0, 21.0)  # 1, ..., 20: keeping 95 % means t = 2
    >>> tnr_at_tpr(scores_in, [0.5, 1.5, 2.5, 10.5])
    0.5
    """
    if not isinstance(tpr, numbers.Real) or not 0.0 < tpr <= 1.0:
        raise ValueError(f"tpr must be in (0, 1], got {tpr!r}.")
    y, s = _ood_targets_scores(scores_in, scores_out, balance, random_state)
    fprs, tprs, _ = roc_curve(y, s, drop_intermediate=False)
    i = min(int(np.searchsorted(tprs, tpr, side="left")), tprs.shape[0] - 1)
    return float(1.0 - fprs[i])


def fpr_at_tpr(
    scores_in: ArrayLike,
    scores_out: ArrayLike,
    tpr: float = 0.95,
    *,
    balance: bool = False,
    random_state: int | np.random.RandomState | None = None,
) -> float:
    """Fraction of OOD samples accepted at the threshold that keeps ``tpr`` of the ID samples.

    ``1 - tnr_at_tpr(...)`` (FPR@95%TPR for the default). Lower is better.

    Parameters
    ----------
    scores_in : array-like of shape (n_in,)
        Normality scores of in-distribution samples (higher = more
        in-distribution, as ``score_samples``). Infinite values are allowed.
    scores_out : array-like of shape (n_out,)
        Normality scores of out-of-distribution samples.
    tpr : float, default=0.95
        True positive rate (fraction of ID samples kept), in (0, 1].
    balance : bool, default=False
        Subsample the larger set (without replacement) to the size of the
        smaller one first (Chali et al. 2023).
    random_state : int, RandomState instance or None, default=None
        Seeds the subsampling when ``balance=True``.

    Returns
    -------
    fpr : float
        False positive rate at that threshold.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfo.metrics import fpr_at_tpr
    >>> fpr_at_tpr(np.arange(1.0, 21.0), [0.5, 1.5, 2.5, 10.5])
    0.5
    """
    return 1.0 - tnr_at_tpr(scores_in, scores_out, tpr, balance=balance, random_state=random_state)
