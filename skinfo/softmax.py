"""SoftmaxClassifier: the softmax cross-entropy baseline every paper compares against."""

from __future__ import annotations

from numbers import Real

import torch
from torch import nn

from ._base import NeuralClassifier, probability_score
from ._feature_scores import FEATURE_SCORES
from ._params import Interval, Options
from .nn.heads import SoftmaxNetwork
from .objectives import SoftmaxCrossEntropy

#: ``max_epochs='auto'`` on images. On MNIST-5k under early stopping (patience 5) the
#: validation loss was best at epoch 11 and training stopped at 13-16 epochs (seeds 0, 1);
#: 20 epochs take about 50 s on two CPU cores. Flat rows: 50.
IMAGE_EPOCHS = 20

_OOD_SCORES = ("max_proba", "energy", "neg_entropy")


class SoftmaxClassifier(NeuralClassifier):
    """Neural network trained with softmax cross-entropy (the "SoftmaxCE" baseline).

    An encoder ``f`` followed by an affine layer gives logits ``W f(x) + b``;
    training minimizes ``mean_i -log softmax(W f(x_i) + b)[y_i]`` and
    ``predict_proba`` is the softmax of the logits.

    Parameters
    ----------
    ood_score : {'max_proba', 'energy', 'neg_entropy', 'knn', 'mahalanobis', \
'relative_mahalanobis', 'vim'}, default='max_proba'
        Normality score of :meth:`score_samples` (higher = more
        in-distribution): the maximum softmax probability (Hendrycks & Gimpel),
        the negative energy ``logsumexp_k logit_k`` (Liu et al.), or minus the
        predictive entropy.
    label_smoothing : float in [0, 1), default=0.0
        Train against the smoothed targets ``(1 - s) onehot(y) + s / K``
        (torch's ``cross_entropy(label_smoothing=s)``): the loss becomes
        ``(1 - s) (-log p_y) + s mean_k (-log p_k)``, which is smallest when
        the prediction equals the smoothed target (probability ``1 - s + s / K``
        on the label), so training no longer drives confidences to 1. The IB-INN
        paper trains its baselines with the same smoothing as IB-INN
        (:class:`~skinfo.IBINNClassifier` defaults to 0.05). With ``s > 0`` the
        history also records the unsmoothed cross-entropy as ``train_nll``.
    max_epochs : int or 'auto', default='auto'
        Number of epochs; ``'auto'`` is 50 for flat rows and ``IMAGE_EPOCHS``
        (20) for images.
    encoder, hidden_layer_sizes, activation, input_shape, batch_size, lr, \
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
        The fitted skorch net (its ``module_`` is the torch module).
    history_ : skorch.history.History
        Per-epoch ``train_loss`` and ``train_ce`` (and ``train_nll`` with
        ``label_smoothing > 0``; ``valid_*`` with ``validation_fraction``).
    n_iter_ : int
        Number of epochs run.
    device_ : str
        Device the model was trained on.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skinfo import SoftmaxClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = SoftmaxClassifier(max_epochs=5, random_state=0).fit(X / 16, y)
    >>> clf.predict_proba(X[:2] / 16).shape
    (2, 10)
    >>> clf.score(X / 16, y) > 0.8
    True
    """

    def __init__(
        self,
        *,
        ood_score="max_proba",
        label_smoothing=0.0,
        encoder=None,
        hidden_layer_sizes=(400, 200),
        activation="elu",
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
        self.ood_score = ood_score
        self.label_smoothing = label_smoothing
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

    #: ``"auto"`` values: (flat rows, images)
    _auto: dict = {"max_epochs": (50, IMAGE_EPOCHS)}

    _constraints: dict = {
        **NeuralClassifier._constraints,
        "max_epochs": [Options(("auto",)), *NeuralClassifier._constraints["max_epochs"]],
        "ood_score": [Options((*_OOD_SCORES, *FEATURE_SCORES))],
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
    }

    def _build_module(self, X, y, sample_weight=None) -> nn.Module:
        encoder, width = self._make_encoder(X.shape[1])
        return SoftmaxNetwork(encoder, nn.Linear(width, len(self.classes_)))

    def _build_criterion(self, X, y) -> nn.Module:
        return SoftmaxCrossEntropy(label_smoothing=float(self.label_smoothing))

    def decision_logits(self, X):
        """The logits ``W f(x) + b``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, in the format of the training data.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``.
        """
        return self._infer(self._validate_X(X), lambda m, x: m(x))

    def _score_samples_batch(self, module, x):
        logits = module(x)
        if self.ood_score == "energy":
            return torch.logsumexp(logits, dim=-1)
        return probability_score(logits, self.ood_score)
