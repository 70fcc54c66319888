"""OVAClassifier: one-vs-all training with affine or distance logits (Padhy et al., 2020)."""

from __future__ import annotations

from numbers import Real

import numpy as np
from torch import nn

from ._base import NeuralClassifier, probability_score
from ._feature_scores import FEATURE_SCORES
from ._params import Interval, Options
from ._training import head_param_groups
from .nn.heads import DistanceLogits, OVANetwork
from .objectives import OneVsAllLoss

_LOGITS = ("distance", "scaled_distance", "affine")
_OOD_SCORES = ("max_ova_proba", "max_proba")

#: ``max_epochs='auto'`` on images: on MNIST-5k, early stopping (patience 5) kept the
#: affine model of epoch 13 (seed 0) and stopped at epoch 17.
IMAGE_EPOCHS = 15

#: ``head_lr=None`` trains the head (class centers, or the affine layer) at this multiple of ``lr``.
HEAD_LR_FACTOR = 10.0


class OVAClassifier(NeuralClassifier):
    """One-vs-all classifier with affine or distance-based logits.

    Follows Padhy et al., "Revisiting One-vs-All Classifiers for Predictive
    Uncertainty and Out-of-Distribution Detection in Neural Networks" (2020).
    An encoder ``f`` gives the representation; the logits are

    * ``logits='affine'``: ``z_k = w_k . f(x) + b_k`` and ``p_k = sigmoid(z_k)`` (Eq. 5);
    * ``logits='distance'``: ``z_k = -||f(x) - w_k||`` (Euclidean, not squared) and
      ``p_k = 2 sigmoid(z_k)`` (Eq. 6), so a distance of 0 to the class center
      ``w_k`` gives confidence 1 and the confidence falls with the distance;
    * ``logits='scaled_distance'``: ``z_k = -s ||f(x) - w_k||`` with one scalar
      ``s > 0`` trained with the centers (starting at 1, the paper's logits).
      Not in the paper: a learned inverse temperature of the distances.

    Training minimizes the one-vs-all loss (Eq. 7), K independent binary
    problems: ``mean_i [ -log p_{y_i}(x_i) - sum_{k != y_i} log(1 - p_k(x_i)) ]``.

    Outputs:

    * :meth:`predict_ova_proba`: the K one-vs-all probabilities ``p_k`` of the
      paper. They do not sum to 1: all of them can be small ("none of the
      above").
    * :meth:`predict_proba`: rows sum to 1 (sklearn's contract). It is the
      probability of class k given that exactly one of the K independent
      one-vs-all events holds (the closed-world assumption of sklearn's
      classifier API): ``p_k prod_{j != k} (1 - p_j)``, normalized, which is the
      softmax of the log-odds ``log(p_k / (1 - p_k))``. For affine logits this
      is exactly ``softmax(z)``. The argmax, and hence :meth:`predict`, is the
      one-vs-all argmax. Use :meth:`predict_ova_proba` for the open-world
      confidences of the paper. This normalization is not the paper's; it gave
      a lower ECE than ``p_k / sum_j p_j`` at every training length measured
      (see the OVA page of the documentation).
    * :meth:`score_samples`: ``max_k p_k`` (``ood_score='max_ova_proba'``,
      default; higher = more in-distribution) or the max of the normalized
      probabilities (``'max_proba'``).

    The paper's distance logits have no temperature: a confident prediction needs the
    representation of every test point within a few tenths of its class
    center and several units from the other centers. On flat rows (8x8
    digits) the default ReLU MLP reaches this within the default 50 epochs
    (with ``activation='relu'`` and ``head_lr = 10 * lr``, two defaults that
    differ from the other skinfo estimators); on images the convolutional
    encoder does not (test points stay about 0.9 from their center, where
    ``p_k`` is about 0.6: underconfident), so ``logits='auto'`` picks distance
    logits for flat rows and affine logits for images. The measurements are on
    the OVA page of the documentation.

    Parameters
    ----------
    logits : {'auto', 'distance', 'scaled_distance', 'affine'}, default='auto'
        Logit type, see above. ``'auto'``: ``'distance'`` for flat rows,
        ``'affine'`` for images (``input_shape`` of length 3 or image-shaped X),
        where affine logits are calibrated and distance logits are
        underconfident but rank unseen classes lower (the OVA page of the
        documentation).
    center_init : {'zeros', 'normal'}, default='zeros'
        Initial class centers of the distance head. The paper and its
        reference code initialize them at zero (the labels break the symmetry
        through the encoder); ``'normal'`` draws N(0, 1/d) per coordinate.
    ood_score : {'max_ova_proba', 'max_proba', 'knn', 'mahalanobis', 'relative_mahalanobis', \
'vim'}, default='max_ova_proba'
        Normality score returned by :meth:`score_samples`. ``'vim'`` needs
        affine logits.
    head_lr : float or None, default=None
        Learning rate of the head: the class centers ``w_k`` of the distance
        logits, or ``w_k, b_k`` of the affine logits. ``None`` is ``10 * lr``.
        With Adam each step moves a parameter by about the learning rate, and
        the centers start at zero and must end up several units apart: at the
        encoder's ``lr=1e-3`` this takes a few hundred steps, during which every
        ``p_k`` stays moderate and :meth:`score_samples` can rank unseen
        classes *above* the training classes (measurements on the OVA page of
        the documentation). The math of the paper is unchanged.
    activation : str, default='relu'
        Activation of the default MLP encoder. ReLU, not the ELU of the other
        skinfo estimators (the OVA paper's networks are ReLU networks): an
        inactive ReLU unit outputs exactly 0 for a whole class, while an ELU
        unit varies in its negative tail until it saturates far below zero,
        and that residual within-class spread adds to every distance
        ``||f(x) - w_k||``, which leaves the model underconfident for longer
        (measurements on the OVA page of the documentation).
    max_epochs : int or 'auto', default='auto'
        Number of epochs; ``'auto'`` is 50 for flat rows and ``IMAGE_EPOCHS``
        (15) for images.
    encoder, hidden_layer_sizes, input_shape, batch_size, lr, \
optimizer, weight_decay, validation_fraction, early_stopping, n_iter_no_change, device, \
random_state, verbose, callbacks, warm_start, on_nan, accelerator, \
compile
        Common parameters, see :ref:`common-parameters`.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    n_features_in_ : int
        Number of features seen in ``fit``.
    net_ : skorch.NeuralNet
        The fitted skorch net.
    history_ : skorch.history.History
        Per-epoch ``train_loss`` and its components ``train_positive``
        (``-log p_y``) and ``train_negative`` (``-sum_{k != y} log(1 - p_k)``).
    n_iter_ : int
        Number of epochs run.
    device_ : str
        Device the model was trained on.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfo import OVAClassifier
    >>> from skinfo.datasets import make_ova_toy
    >>> X, y = make_ova_toy(200, random_state=0)
    >>> clf = OVAClassifier(hidden_layer_sizes=(16, 16), max_epochs=30, lr=1e-2,
    ...                     random_state=0).fit(X, y)
    >>> clf.score(X, y) > 0.9
    True
    >>> angles = np.linspace(0, 2 * np.pi, 32, endpoint=False)
    >>> far = 100 * np.c_[np.cos(angles), np.sin(angles)]  # 5x the data's radius
    >>> bool(np.median(clf.predict_ova_proba(far).max(axis=1)) < 0.5)  # "none of the above"
    True
    """

    def __init__(
        self,
        *,
        logits="auto",
        center_init="zeros",
        ood_score="max_ova_proba",
        head_lr=None,
        encoder=None,
        hidden_layer_sizes=(400, 200),
        activation="relu",
        input_shape=None,
        max_epochs="auto",
        batch_size=128,
        lr=1e-3,
        optimizer="adam",
        weight_decay=0.0,
        validation_fraction=None,
        early_stopping=False,
        n_iter_no_change=10,
        device="auto",
        random_state=None,
        verbose=0,
        callbacks=None,
        warm_start=False,
        on_nan="raise",
        accelerator=None,
        compile=False,
        class_weight=None,
        **kwargs,
    ):
        self.logits = logits
        self.center_init = center_init
        self.ood_score = ood_score
        self.head_lr = head_lr
        super().__init__(
            encoder=encoder,
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            input_shape=input_shape,
            max_epochs=max_epochs,
            batch_size=batch_size,
            lr=lr,
            optimizer=optimizer,
            weight_decay=weight_decay,
            validation_fraction=validation_fraction,
            early_stopping=early_stopping,
            n_iter_no_change=n_iter_no_change,
            device=device,
            random_state=random_state,
            verbose=verbose,
            callbacks=callbacks,
            warm_start=warm_start,
            on_nan=on_nan,
            accelerator=accelerator,
            compile=compile,
            class_weight=class_weight,
            **kwargs,
        )

    #: ``"auto"`` values: (flat rows, images); see the OVA page of the documentation
    _auto: dict = {"logits": ("distance", "affine"), "max_epochs": (50, IMAGE_EPOCHS)}

    _constraints: dict = {
        **NeuralClassifier._constraints,
        "logits": [Options(("auto", *_LOGITS))],
        "max_epochs": [Options(("auto",)), *NeuralClassifier._constraints["max_epochs"]],
        "ood_score": [Options((*_OOD_SCORES, *FEATURE_SCORES))],
        "center_init": [Options(("zeros", "normal"))],
        "head_lr": [None, Interval(Real, 0, None, closed="neither")],
    }

    def _param_groups(self) -> list:
        return head_param_groups(self.head_lr, self._value("lr"), HEAD_LR_FACTOR)

    def _build_module(self, X, y, sample_weight=None) -> nn.Module:
        encoder, width = self._make_encoder(X.shape[1])
        n_classes = len(self.classes_)
        logits = self._value("logits")
        distance = logits != "affine"
        head = (
            DistanceLogits(
                width,
                n_classes,
                init=self.center_init,
                learn_scale=logits == "scaled_distance",
            )
            if distance
            else nn.Linear(width, n_classes)
        )
        return OVANetwork(encoder, head, distance=distance)

    def _build_criterion(self, X, y) -> nn.Module:
        return OneVsAllLoss(distance=self._value("logits") != "affine")

    def predict_ova_proba(self, X) -> np.ndarray:
        """The K one-vs-all probabilities ``p_k`` (Eq. 5 or 6); rows need not sum to 1.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, in the format of the training data.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``.
        """
        return np.exp(self._infer(self._validate_X(X), lambda m, x: m.ova_log_proba(x)))

    def _score_samples_batch(self, module, x):
        if self.ood_score == "max_ova_proba":
            return module.ova_log_proba(x).max(dim=-1).values.exp()
        return probability_score(module.log_proba(x), self.ood_score)
