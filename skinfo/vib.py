"""VIBClassifier: deep variational information bottleneck and the IB surrogate objectives."""

from __future__ import annotations

import math
from numbers import Integral, Real

import torch
from skorch.callbacks import Callback
from torch import nn

from ._base import NeuralClassifier
from .nn.vib import VIBNetwork
from .objectives.vib import VIBLoss, gaussian_kl_standard

_REGULARIZERS = ("kl", "l2", "logvar", "cond_logvar")
_OOD_SCORES = ("neg_rate", "max_proba", "neg_entropy")


class InformationPlane(Callback):
    """Record an information-plane point per epoch.

    From the per-epoch loss components (batch averages over the epoch),
    writes ``info_izx``: an upper bound on the preserved information I(X;Z)
    in nats (the rate for ``'kl'``; the Gaussian bound
    ``sum_i 0.5 log(2 pi e Var[Z_i])`` on H[Z] = I(X;Z) with zero-entropy
    noise), and ``info_hyz``: the decoder cross-entropy, an upper bound on the
    residual information H[Y|Z]. Draw with
    ``skinfo.plotting.information_plane(clf.history_, x_key='info_izx',
    y_key='info_hyz')``.
    """

    def on_epoch_end(self, net, **kwargs) -> None:
        row = net.history[-1]
        if "train_izx" in row:
            net.history.record("info_izx", row["train_izx"])
        if "train_ce" in row:
            net.history.record("info_hyz", row["train_ce"])


class VIBClassifier(NeuralClassifier):
    """Information-bottleneck classifier: encoder -> Z -> linear softmax decoder.

    Training minimizes ``CE(y, softmax(W z + b)) + beta * R`` with one sample
    of Z per row (the decoder cross-entropy, an upper bound on H[Y|Z]):

    * ``regularizer='kl'`` (Alemi et al., deep VIB): Gaussian encoder
      ``p(z|x) = N(mu(x), diag sigma(x)^2)``, ``sigma = softplus(rho - 5)``,
      reparametrized samples, rate ``R = mean_x KL(p(z|x) || N(0, I))``
      (closed form).
    * ``'l2'``, ``'logvar'``, ``'cond_logvar'`` (Kirsch, Lyle & Gal,
      Observation 8): deterministic encoder plus zero-entropy noise
      ``eps ~ N(0, I/(2 pi e))`` on Z, and ``R`` = ``E||Z||^2``,
      ``sum_i 0.5 log(2 pi e Var[Z_i])`` or
      ``sum_y p_hat(y) sum_i 0.5 log(2 pi e Var[Z_i|y])``, batch estimates on
      the noisy Z, unbiased variances; ``p_hat(y)`` are the batch class
      frequencies; a class with < 2 rows in the batch contributes 0.
      ``beta`` is the paper's ``gamma``.

    Prediction averages the decoder softmax over ``n_samples`` draws of Z;
    the standard-normal draws are fixed at fit (a module buffer) and shared by
    every row, so predictions are deterministic and subset-invariant.

    Parameters
    ----------
    beta : float, default=1e-3
        Weight of the rate / regularizer (Alemi's beta; Kirsch et al.'s gamma).
    regularizer : {'kl', 'l2', 'logvar', 'cond_logvar'}, default='kl'
    latent_dim : int, default=32
        Dimension K of Z.
    n_samples : int, default=12
        Monte-Carlo samples of Z at prediction.
    ood_score : {'neg_rate', 'max_proba', 'neg_entropy'} or None, default=None
        :meth:`score_samples` score (higher = more in-distribution). None:
        ``'neg_rate'`` (minus KL(p(z|x)||N(0,I))) for ``'kl'``, else
        ``'max_proba'``. ``'neg_rate'`` needs ``regularizer='kl'``.
    track_information : bool, default=True
        Log ``train_izx`` and the information-plane keys ``info_izx`` /
        ``info_hyz`` per epoch (see :class:`InformationPlane`).
    encoder, hidden_layer_sizes, activation, input_shape, max_epochs, batch_size, lr, \
optimizer, weight_decay, validation_fraction, early_stopping, n_iter_no_change, device, \
random_state, verbose, callbacks, warm_start, on_nan, accelerator
        Common parameters, see :ref:`common-parameters`.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    net_ : skorch.NeuralNet
    history_ : skorch.history.History
        Per epoch ``train_loss``, ``train_ce``, ``train_rate`` (``'kl'``) or
        ``train_reg``, and with ``track_information`` ``train_izx``,
        ``info_izx``, ``info_hyz``.
    n_iter_ : int
    device_ : str

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skinfo import VIBClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = VIBClassifier(beta=1e-3, max_epochs=5, random_state=0).fit(X / 16, y)
    >>> clf.predict_proba(X[:2] / 16).shape
    (2, 10)
    >>> clf.score(X / 16, y) > 0.8
    True
    >>> clf.transform(X[:2] / 16).shape
    (2, 32)
    """

    def __init__(
        self,
        *,
        beta=1e-3,
        regularizer="kl",
        latent_dim=32,
        n_samples=12,
        ood_score=None,
        track_information=True,
        encoder=None,
        hidden_layer_sizes=(400, 200),
        activation="elu",
        input_shape=None,
        max_epochs=50,
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
    ):
        self.beta = beta
        self.regularizer = regularizer
        self.latent_dim = latent_dim
        self.n_samples = n_samples
        self.ood_score = ood_score
        self.track_information = track_information
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
        )

    def _validate_params_extra(self) -> None:
        if self.regularizer not in _REGULARIZERS:
            raise ValueError(
                f"regularizer must be one of {_REGULARIZERS}, got {self.regularizer!r}."
            )
        if (
            not isinstance(self.beta, Real)
            or isinstance(self.beta, bool)
            or not math.isfinite(self.beta)
            or self.beta < 0
        ):
            raise ValueError(f"beta must be a finite float >= 0, got {self.beta!r}.")
        for name in ("latent_dim", "n_samples"):
            value = getattr(self, name)
            if not isinstance(value, Integral) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}.")
        if self.ood_score is not None and self.ood_score not in _OOD_SCORES:
            raise ValueError(
                f"ood_score must be None or one of {_OOD_SCORES}, got {self.ood_score!r}."
            )
        if self.ood_score == "neg_rate" and self.regularizer != "kl":
            raise ValueError("ood_score='neg_rate' needs regularizer='kl'.")

    def _build_module(self, X, y) -> nn.Module:
        encoder, width = self._make_encoder(X.shape[1])
        return VIBNetwork(
            encoder,
            width,
            int(self.latent_dim),
            len(self.classes_),
            stochastic=self.regularizer == "kl",
            n_samples=int(self.n_samples),
        )

    def _build_criterion(self, X, y) -> nn.Module:
        return VIBLoss(
            self.regularizer,
            self.beta,
            len(self.classes_),
            track_information=bool(self.track_information),
        )

    def _extra_callbacks(self) -> list:
        return [("information_plane", InformationPlane())] if self.track_information else []

    def _resolved_ood_score(self) -> str:
        if self.ood_score is not None:
            return self.ood_score
        return "neg_rate" if self.regularizer == "kl" else "max_proba"

    def rate(self, X):
        """Per-row rate ``KL(p(z|x) || N(0, I))`` in nats (``regularizer='kl'`` only)."""
        if self.regularizer != "kl":
            raise ValueError("rate() needs regularizer='kl'.")
        return self._infer(
            self._validate_X(X), lambda m, x: gaussian_kl_standard(*m.distribution(x))
        )

    def _score_samples_batch(self, module, x):
        score = self._resolved_ood_score()
        if score == "neg_rate":
            return -gaussian_kl_standard(*module.distribution(x))
        log_p = torch.log_softmax(module.log_proba(x).double(), dim=-1)
        if score == "max_proba":
            return log_p.max(dim=-1).values.exp()
        return (log_p.exp() * log_p).sum(-1)
