"""VIBClassifier: deep variational information bottleneck and the IB surrogate objectives."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from skorch.callbacks import Callback
from torch import nn

from ._base import NeuralClassifier, probability_score
from ._feature_scores import DISTANCE_SCORES
from ._params import BOOLEAN, MAX_SIZE, Interval, Options
from .nn.vib import VIBNetwork, gaussian_kl_standard
from .objectives.vib import VIBLoss

#: ``max_epochs='auto'`` on images. On MNIST-5k under early stopping (patience 5)
#: training stopped after 31-39 epochs (seeds 0, 1); 40 epochs take about 100 s on two
#: CPU cores. Flat rows: 50.
IMAGE_EPOCHS = 40

_REGULARIZERS = ("kl", "l2", "logvar", "cond_logvar")
#: Added to every variance of the fitted marginal (sklearn's ``reg_covar`` default).
MARGINAL_REG_VAR = 1e-6

_OOD_SCORES = ("neg_rate", "neg_marginal_rate", "max_proba", "neg_entropy")


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

    Training with ``'kl'`` computes the sample, the rate and the decoder
    with plain PyTorch operations (:func:`skinfo.nn.sample_with_rate`),
    differentiated by autograd.

    OOD scores (:meth:`score_samples`, higher = more in-distribution):

    * ``'neg_marginal_rate'`` (default): minus an upper bound on the rate
      ``KL(p(z|x) || r(z))`` with respect to the marginal ``r(z)`` of the
      training encodings, the MASS paper's "Rate" method (Table 5: the KL
      between the VIB's marginal and the representation). ``r`` is fitted
      once after training: a mixture over the classes (weights = class
      frequencies) of diagonal Gaussians moment-matched to the class
      aggregate posteriors ``p(z|y) = mean_{x in y} p(z|x)``; with
      ``sample_weight`` (times ``class_weight``) the frequencies and means
      are weighted, so a row of weight 2 counts as two rows; every variance
      gets ``1e-6`` added (the ridge of sklearn's ``GaussianMixture``), so a
      class whose encodings collapsed to a point gives finite rates. The KL to a
      mixture has no closed form; the score uses the bound
      ``min_c [KL(p(z|x) || N(m_c, v_c)) - log w_c]``. Works for every
      regularizer (``p(z|x)`` has the zero-entropy-noise variance for the
      deterministic encoders). Costs one inference pass over the training
      data at the end of ``fit``. Strongest on far-OOD inputs (transformed
      images); for unseen classes of the same kind of input and for noise
      ``'max_proba'`` was as good or better on digits and MNIST.
    * ``'neg_rate'``: minus ``KL(p(z|x) || N(0, I))``, the rate of the
      training objective (``regularizer='kl'`` only). With small ``beta`` it
      is dominated by ``||mu(x)||^2 / 2``, and the encoder maps unfamiliar
      inputs (noise, unseen classes) *nearer the origin* than training-like
      inputs, where the decoder is unsure: on digits this score ranks those
      OOD sets as more in-distribution than the test digits (see the VIB page
      of the documentation). It is kept for comparison; it is not a good
      detector here.
    * ``'max_proba'``, ``'neg_entropy'``: maximum predicted probability and
      minus the predictive entropy.

    Parameters
    ----------
    beta : float, default=1e-3
        Weight of the rate / regularizer (Alemi's beta; Kirsch et al.'s gamma).
    regularizer : {'kl', 'l2', 'logvar', 'cond_logvar'}, default='kl'
    latent_dim : int, default=32
        Dimension K of Z.
    n_samples : int, default=12
        Monte-Carlo samples of Z at prediction.
    ood_score : {'neg_marginal_rate', 'neg_rate', 'max_proba', 'neg_entropy', 'knn', \
'mahalanobis', 'relative_mahalanobis'}, default='neg_marginal_rate'
        :meth:`score_samples` score (see above).
        ``'neg_rate'`` needs ``regularizer='kl'``.
    track_information : bool, default=True
        Log ``train_izx`` and the information-plane keys ``info_izx`` /
        ``info_hyz`` per epoch (see :class:`InformationPlane`).
    max_epochs : int or 'auto', default='auto'
        Number of epochs; ``'auto'`` is 50 for flat rows and ``IMAGE_EPOCHS``
        (40) for images.
    encoder, hidden_layer_sizes, activation, input_shape, batch_size, lr, \
optimizer, weight_decay, validation_fraction, early_stopping, n_iter_no_change, device, \
random_state, verbose, callbacks, warm_start, on_nan, accelerator, \
compile
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

    The fitted marginal ``r(z)`` lives in the module buffers
    ``net_.module_.marginal_mean``, ``marginal_var`` (n_classes, K) and
    ``marginal_log_weight`` (n_classes,).

    Examples
    --------
    >>> import numpy as np
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
    >>> noise = np.random.default_rng(0).uniform(size=(5, 64))
    >>> bool(clf.score_samples(noise).max() < np.median(clf.score_samples(X / 16)))
    True
    >>> bool(np.allclose(clf.score_samples(X[:3] / 16), -clf.marginal_rate(X[:3] / 16)))
    True
    """

    def __init__(
        self,
        *,
        beta=1e-3,
        regularizer="kl",
        latent_dim=32,
        n_samples=12,
        ood_score="neg_marginal_rate",
        track_information=True,
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
            compile=compile,
            class_weight=class_weight,
            **kwargs,
        )

    #: ``"auto"`` values: (flat rows, images)
    _auto: dict = {"max_epochs": (50, IMAGE_EPOCHS)}

    _constraints: dict = {
        **NeuralClassifier._constraints,
        "max_epochs": [Options(("auto",)), *NeuralClassifier._constraints["max_epochs"]],
        "beta": [Interval(Real, 0, None, closed="left")],
        "regularizer": [Options(_REGULARIZERS)],
        "latent_dim": [Interval(Integral, 1, MAX_SIZE)],
        "n_samples": [Interval(Integral, 1, MAX_SIZE)],
        "ood_score": [Options((*_OOD_SCORES, *DISTANCE_SCORES))],
        "track_information": [BOOLEAN],
    }

    def _check_param_combinations(self) -> None:
        super()._check_param_combinations()
        if self.ood_score == "neg_rate" and self.regularizer != "kl":
            raise ValueError("ood_score='neg_rate' needs regularizer='kl'.")

    def _build_module(self, X, y, sample_weight=None) -> nn.Module:
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

    def _after_fit(self, X, y, sample_weight=None) -> None:
        # Moment-matched mixture of the class aggregate posteriors p(z|y) = mean_{x in y} p(z|x),
        # means over the rows weighted by sample_weight (a row of weight 2 counts as two rows):
        # mean_c = E_w[mu(x) | y=c], var_c = Var_w[mu(x) | y=c] + E_w[sigma(x)^2 | y=c].
        stats = self._infer(X, lambda m, x: torch.cat(m.distribution(x), dim=-1))
        mu, var_x = stats[:, : self.latent_dim], stats[:, self.latent_dim :] ** 2
        n_classes = len(self.classes_)
        w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, np.float64)
        counts = np.bincount(y, weights=w, minlength=n_classes)[:, None]
        absent = counts[:, 0] <= 0  # partial_fit batch or zero weights: N(0, I), tiny weight
        counts[absent] = 0.5 * w[w > 0].min()

        def class_mean(values: np.ndarray) -> np.ndarray:
            sums = np.zeros((n_classes, values.shape[1]))
            np.add.at(sums, y, w[:, None] * values)
            return sums / counts

        mean, noise_var = class_mean(mu), class_mean(var_x)
        var = np.maximum(class_mean(mu**2 + var_x) - mean**2, noise_var)  # max: float safety
        # plus the ridge of sklearn's GaussianMixture (reg_covar=1e-6): a class whose
        # encodings collapsed to one point would give a zero variance and infinite rates
        var += MARGINAL_REG_VAR
        mean[absent], var[absent] = 0.0, 1.0
        log_weight = np.log(counts[:, 0] / w.sum())
        self.net_.module_.set_marginal(*map(torch.from_numpy, (mean, var, log_weight)))

    def rate(self, X) -> np.ndarray:
        """Per-row rate ``KL(p(z|x) || N(0, I))`` in nats, the term ``beta`` weighs in training.

        Only for ``regularizer='kl'``. Minus this is the ``'neg_rate'`` OOD score.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, in the format of the training data.

        Returns
        -------
        ndarray of shape (n_samples,)
            The rate of each row, in nats.
        """
        if self.regularizer != "kl":
            raise ValueError("rate() needs regularizer='kl'.")
        return self._infer(
            self._validate_X(X), lambda m, x: gaussian_kl_standard(*m.distribution(x))
        )

    def marginal_rate(self, X) -> np.ndarray:
        """Per-row upper bound on ``KL(p(z|x) || r(z))`` in nats, ``r`` the fitted marginal.

        ``r(z) = sum_c w_c N(z; m_c, diag v_c)`` is fitted after training to
        the encodings of the training data: ``w_c`` the class frequencies,
        ``m_c`` and ``v_c`` the mean and variance of the aggregate posterior
        ``p(z|y=c) = mean_{x in c} p(z|x)`` (frequencies and means weighted by
        the training ``sample_weight`` when one was given). The bound is
        ``min_c [KL(p(z|x) || N(m_c, v_c)) - log w_c]``. Minus this is the
        default OOD score ``'neg_marginal_rate'``; every regularizer has it.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, in the format of the training data.

        Returns
        -------
        ndarray of shape (n_samples,)
            The rate of each row, in nats.
        """
        return self._infer(self._validate_X(X), lambda m, x: m.marginal_rate(x))

    def _score_samples_batch(self, module, x):
        score = self.ood_score
        if score == "neg_rate":
            return -gaussian_kl_standard(*module.distribution(x))
        if score == "neg_marginal_rate":
            return -module.marginal_rate(x)
        return probability_score(module.log_proba(x), score)
