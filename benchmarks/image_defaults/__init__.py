"""How each estimator's defaults for image input were chosen: sweeps on MNIST-5k.

Every sweep uses the same protocol, defined here once:

* :func:`mnist_splits`: MNIST-5k (the 5,000 images of the ``mnist`` extra),
  stratified into 4,000 training and 1,000 test images (split seed 0), passed
  as image-shaped arrays ``(n, 1, 28, 28)``; and the held-out-class split
  (train on digits 0-4, test images of 0-4 against those of 5-9).
* :data:`BUDGET`: the training budget of the "honest budget" rule, the same for
  every estimator: 10 % of the training set held out (stratified), early
  stopping after 5 epochs without a better validation loss (best weights
  restored), at most 100 epochs.
* :func:`evaluate`: accuracy, NLL, ECE (15 bins) on the test images, the
  held-out-class AUROC of ``score_samples`` and of the maximum probability,
  the number of epochs trained and the fit time.

Each estimator's sweep is a module of this package
(``python -m benchmarks.image_defaults.<name> [--quick]``), writing
``results/image_defaults_<name>.md`` / ``.json``.
"""

from __future__ import annotations

import time
from functools import cache

import numpy as np
from sklearn.model_selection import train_test_split

from skinfo.metrics import expected_calibration_error, negative_log_likelihood, ood_auroc

#: The training budget shared by every estimator in the image benchmarks.
BUDGET = {
    "validation_fraction": 0.1,
    "early_stopping": True,
    "n_iter_no_change": 5,
    "max_epochs": 100,
}

#: The classes seen in training for the held-out-class OOD split.
KNOWN = (0, 1, 2, 3, 4)


@cache
def mnist_splits() -> dict:
    """MNIST-5k as images: ``split`` (X_tr, X_te, y_tr, y_te) and ``held_out``.

    ``held_out`` is (X_train, y_train, X_in, X_out): the training images of
    digits 0-4, the test images of 0-4 and those of 5-9 (cut to equal counts).
    """
    from skinfo.datasets import load_mnist_5k

    X, y = load_mnist_5k()
    X = X.reshape(-1, 1, 28, 28)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=1000, stratify=y, random_state=0)
    tr, te = np.isin(y_tr, KNOWN), np.isin(y_te, KNOWN)
    X_in, X_out = X_te[te], X_te[~te]
    n = min(len(X_in), len(X_out))
    return {
        "split": (X_tr, X_te, y_tr, y_te),
        "held_out": (X_tr[tr], y_tr[tr], X_in[:n], X_out[:n]),
    }


def evaluate(make, *, ood: bool = True) -> dict:
    """Fit ``make()`` on MNIST-5k and score it; with ``ood``, fit again on digits 0-4.

    ``make`` returns an unfitted classifier. Returns a dict of floats:
    accuracy, nll, ece, epochs, fit_s, and with ``ood`` the held-out-class
    AUROC of ``score_samples`` (``auroc_score``) and of the maximum
    probability (``auroc_max_proba``).
    """
    X_tr, X_te, y_tr, y_te = mnist_splits()["split"]
    start = time.perf_counter()
    clf = make().fit(X_tr, y_tr)
    fit_s = time.perf_counter() - start
    proba = clf.predict_proba(X_te)
    out = {
        "accuracy": float(np.mean(clf.classes_[proba.argmax(1)] == y_te)),
        "nll": negative_log_likelihood(y_te, proba, labels=clf.classes_),
        "ece": expected_calibration_error(y_te, proba, n_bins=15, labels=clf.classes_),
        "epochs": int(clf.n_iter_),
        "fit_s": fit_s,
    }
    if ood:
        X_k, y_k, X_in, X_out = mnist_splits()["held_out"]
        det = make().fit(X_k, y_k)
        out["auroc_score"] = ood_auroc(det.score_samples(X_in), det.score_samples(X_out))
        out["auroc_max_proba"] = ood_auroc(
            det.predict_proba(X_in).max(1), det.predict_proba(X_out).max(1)
        )
    return out
