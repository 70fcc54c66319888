"""OOD scores fitted on a classifier's representation: k-NN, Mahalanobis, ViM.

One place for the maths of the feature-space scores, used by every skinfo
classifier (``ood_score="knn"`` etc.) and by :class:`skinfo.OODDetector`. The
fitted statistics are a dict of numpy arrays and numbers, so that
:func:`skinfo.save` stores them as data. The nearest-neighbour search and the
covariance estimates are sklearn's.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import eigh
from scipy.spatial.distance import cdist
from scipy.special import logsumexp, softmax
from sklearn.covariance import EmpiricalCovariance, LedoitWolf
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import normalize
from sklearn.utils import check_random_state
from torch import nn

#: The scores computed from the representation ``z = transform(X)`` alone ...
DISTANCE_SCORES = ("knn", "mahalanobis", "relative_mahalanobis")
#: ... and all of them, with ViM, which also needs a linear softmax head.
FEATURE_SCORES = (*DISTANCE_SCORES, "vim")

COVARIANCES = {"empirical": EmpiricalCovariance, "ledoit_wolf": LedoitWolf}


def are_statistics(value) -> bool:
    """Whether ``value`` has the form of fitted statistics (a check for loaded files)."""
    if not isinstance(value, dict) or value.get("score") not in FEATURE_SCORES:
        return False
    numbers = (int, float, np.integer, np.floating)
    return all(
        isinstance(v, numbers)
        or (isinstance(v, np.ndarray) and v.dtype.kind in "fi" and v.ndim <= 2)
        for k, v in value.items()
        if k != "score"
    )


def _whitening(covariance) -> np.ndarray:
    """``W`` with ``W W^T`` the precision of a fitted sklearn covariance estimator.

    ``(a - b)^T P (a - b) = ||a W - b W||^2``, so squared Mahalanobis distances
    become squared Euclidean distances of whitened rows.
    """
    eigenvalues, eigenvectors = eigh(covariance.get_precision())
    return eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))


def vim_dim(n_features: int) -> int:
    """The principal dimension of Wang et al.'s code for a representation of this width."""
    if n_features >= 2048:
        return 1000
    if n_features >= 768:
        return 512
    return n_features // 2


def vim_head(
    module: nn.Module | None, Z: np.ndarray, proba: np.ndarray, name: str
) -> tuple[np.ndarray, np.ndarray]:
    """``(W, b)`` of a module's linear output layer, checked to give ``proba`` from ``Z``.

    ViM needs class probabilities that are the softmax of a linear layer
    (``module.head`` or ``module.decoder``) applied to the representation.
    """
    requirement = (
        "ood_score='vim' needs a classifier whose predict_proba is the softmax of a "
        "linear output layer applied to transform(X) (a skinfo classifier with an "
        "nn.Linear head, e.g. SoftmaxClassifier)"
    )
    layers = [getattr(module, n, None) for n in ("head", "decoder")]
    head = next((layer for layer in layers if isinstance(layer, nn.Linear)), None)
    if head is None:
        raise ValueError(f"{requirement}; {name} has no linear output layer.")
    W = head.weight.detach().cpu().double().numpy()
    b = np.zeros(len(W)) if head.bias is None else head.bias.detach().cpu().double().numpy()
    if W.shape[1] != Z.shape[1] or not np.allclose(
        softmax(Z @ W.T + b, axis=1), proba, rtol=1e-3, atol=1e-4
    ):
        raise ValueError(
            f"{requirement}; the softmax of {name}'s output layer on transform(X) is not "
            "its predict_proba."
        )
    return W, b


def fit_feature_statistics(
    kind: str,
    Z: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    head: tuple[np.ndarray, np.ndarray] | None = None,
    n_neighbors: int | None = 50,
    max_samples: int | None = None,
    covariance: str = "empirical",
    principal_dim: int | None = None,
    random_state=None,
) -> dict:
    """Fit the statistics of the feature-space score ``kind`` on the representations ``Z``.

    Parameters
    ----------
    kind : {"knn", "mahalanobis", "relative_mahalanobis", "vim"}
        The score.
    Z : ndarray of shape (n_samples, n_features)
        Training representations.
    labels : ndarray of shape (n_samples,) or None
        Class of each row (Mahalanobis scores only).
    head : (W, b) or None
        The linear output layer ``logits = Z W^T + b`` (ViM only).
    n_neighbors : int or None
        ``k`` of ``"knn"``, capped at the number of stored rows. None: one
        per 1,000 stored rows (at least 1), the ratio of Sun et al.'s settings
        (k=50 of CIFAR-10's 50,000 images; k=10 of a 1 % sample of ImageNet).
    max_samples : int or None
        ``"knn"`` stores at most this many training rows (a random subset).
    covariance : {"empirical", "ledoit_wolf"}
        Covariance estimator of the Mahalanobis scores.
    principal_dim : int or None
        ViM's principal dimension; None follows :func:`vim_dim`.
    random_state : int, RandomState or None
        Seeds the ``"knn"`` subset.

    Returns
    -------
    dict
        The statistics, numpy arrays and numbers only.
    """
    Z = np.asarray(Z, dtype=np.float64)
    if Z.ndim != 2 or len(Z) == 0:
        raise ValueError(f"The representation must be a non-empty 2-D array, got shape {Z.shape}.")
    if kind == "knn":
        if max_samples is not None and len(Z) > max_samples:
            rows = check_random_state(random_state).choice(len(Z), max_samples, replace=False)
            Z = Z[np.sort(rows)]
        k = max(1, round(len(Z) / 1000)) if n_neighbors is None else int(n_neighbors)
        return {"bank": normalize(Z), "n_neighbors": min(k, len(Z))}
    if kind == "vim":
        return _fit_vim(Z, *head, principal_dim)
    classes, encoded = np.unique(labels, return_inverse=True)
    means = np.stack([Z[encoded == c].mean(axis=0) for c in range(len(classes))])
    shared = COVARIANCES[covariance](assume_centered=True).fit(Z - means[encoded])
    stats = {
        "class_means": means,
        "covariance": shared.covariance_,
        "whitening": _whitening(shared),
    }
    if kind == "relative_mahalanobis":
        background = COVARIANCES[covariance]().fit(Z)
        stats["background_mean"] = background.location_
        stats["background_whitening"] = _whitening(background)
    return stats


def _fit_vim(Z: np.ndarray, W: np.ndarray, b: np.ndarray, principal_dim: int | None) -> dict:
    n_features = Z.shape[1]
    dim = vim_dim(n_features) if principal_dim is None else int(principal_dim)
    if dim >= n_features:
        raise ValueError(
            f"vim_dim={dim} must be smaller than the width of the representation ({n_features})."
        )
    origin = -np.linalg.pinv(W) @ b
    covariance = EmpiricalCovariance(assume_centered=True).fit(Z - origin).covariance_
    eigenvalues, eigenvectors = eigh(covariance)
    null_space = eigenvectors[:, np.argsort(eigenvalues)[::-1][dim:]]
    residual = np.linalg.norm((Z - origin) @ null_space, axis=1).mean()
    if not residual > 0:
        raise ValueError(
            f"The training representations lie in ViM's principal subspace (vim_dim={dim}): "
            "no residual to match; use a smaller vim_dim."
        )
    logits = Z @ W.T + b
    return {
        "head_weight": W,
        "head_bias": b,
        "origin": origin,
        "null_space": null_space,
        "alpha": float(logits.max(axis=1).mean() / residual),
        "dim": dim,
    }


def feature_scores(kind: str, stats: dict, Z: np.ndarray) -> np.ndarray:
    """Normality scores (higher = more in-distribution) of representations ``Z``.

    Parameters
    ----------
    kind : {"knn", "mahalanobis", "relative_mahalanobis", "vim"}
        The score whose statistics ``stats`` holds.
    stats : dict
        The output of :func:`fit_feature_statistics`.
    Z : ndarray of shape (n_samples, n_features)
        Representations to score.

    Returns
    -------
    ndarray of shape (n_samples,)
    """
    Z = np.asarray(Z, dtype=np.float64)
    if kind == "knn":
        k = int(stats["n_neighbors"])
        search = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(stats["bank"])
        distances, _ = search.kneighbors(normalize(Z))
        return -distances[:, -1]
    if kind == "vim":
        virtual = np.linalg.norm((Z - stats["origin"]) @ stats["null_space"], axis=1)
        logits = Z @ stats["head_weight"].T + stats["head_bias"]
        return logsumexp(logits, axis=1) - stats["alpha"] * virtual
    W = stats["whitening"]
    scores = -cdist(Z @ W, stats["class_means"] @ W, "sqeuclidean").min(axis=1)
    if kind == "relative_mahalanobis":
        W0 = stats["background_whitening"]
        scores += np.square((Z - stats["background_mean"]) @ W0).sum(axis=1)
    return scores
