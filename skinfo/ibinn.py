"""IBINNClassifier: an invertible network trained with the Information Bottleneck."""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import GradientNormClipping
from torch import nn

from ._base import NeuralClassifier, class_frequencies
from ._feature_scores import DISTANCE_SCORES
from ._params import BOOLEAN, MAX_SIZE, Check, Interval, Options
from ._training import head_param_groups
from .nn.inn import INN_PRESETS, IBINNNetwork, conv_inn, dense_inn
from .nn.latent_gmm import LatentGMM
from .objectives.ibinn import IBINNLoss

_OOD_SCORES = ("typicality", "log_likelihood", "max_proba")
_LOSSES = ("ib", "class_nll")

#: ``head_lr=None``: the class means train at this multiple of ``lr``.
HEAD_LR_FACTOR = 10.0
#: ``beta="auto"`` with image input (flat rows: 1.0, the paper's trade-off).
IMAGE_BETA = 100.0


class IBINNClassifier(NeuralClassifier):
    """Generative classifier: a normalizing flow trained with the IB-INN loss.

    Ardizzone et al. (2020), "Training normalizing flows with the information
    bottleneck for competitive generative classification". An invertible
    network ``g`` maps ``x`` to ``z = g(x)``; the latent density is a Gaussian
    mixture ``q(z) = sum_y w_y N(z; mu_y, I)`` with learned class means. With
    ``z = g(x + eps)``, ``eps ~ N(0, noise_sigma^2 I)``, training minimizes
    (Eq. 9)

    ``2 / (1 + beta) * (L_X / D - beta * L_Y)``,

    ``L_X = -log q(z) - log|det J_g(x + eps)|`` (the flow's negative
    log-likelihood, nats), ``L_Y = log q(y | z)`` (the GMM's log-posterior of
    the true class, label-smoothed). ``beta`` is the paper's ``gamma``; the
    information-bottleneck weight of its Eq. 8 is ``beta_IB = beta * D``.
    ``beta=0`` trains a plain maximum-likelihood flow with a GMM prior;
    ``beta=np.inf`` trains only ``L_Y`` (the limit ``-2 L_Y``).
    ``predict_proba`` is Bayes' rule in latent space,
    ``softmax_y(log w_y - 0.5 ||z - mu_y||^2)``.

    The INN: FrEIA's all-in-one coupling blocks (affine coupling, random soft
    permutation, global affine scaling, soft clamp ``clamp * tanh(s / clamp)``,
    appendix E). Feature vectors get ``n_blocks`` blocks with MLP subnets of
    widths ``hidden_layer_sizes``. With ``input_shape=(C, H, W)`` the INN is
    convolutional: ``inn_architecture`` (ints = coupling blocks with conv
    subnets, ``'down'`` = i-RevNet downsampling; preset ``'paper'`` is
    ``[8, down, 25, down, 25]``), then ``n_fc_blocks`` dense blocks. With a
    single feature a coupling has no second half to condition on: the flow is
    then one elementwise affine layer ``x * exp(s) + t``.

    Parameters
    ----------
    beta : float, np.inf or 'auto', default='auto'
        Trade-off ``gamma`` of Eq. 9 (``>= 0``); larger favours accuracy,
        smaller the likelihood (bits/dim, OOD detection, calibration).
        ``'auto'``: ``1.0`` (the paper's recommended ``gamma = 1``) for flat
        rows, ``100.0`` for images (where ``gamma = 1`` costs accuracy; the
        IB-INN page of the documentation gives the measured cost).
    loss : {'ib', 'class_nll'}, default='ib'
        ``'class_nll'``: the standard generative classifier, minimizing the
        class-conditional NLL ``-log q(z | y) - log|det J|`` (divided by
        ``D``); ``beta`` and ``label_smoothing`` are then unused.
    noise_sigma : float, default=1e-3
        Standard deviation of the Gaussian noise added to the inputs in
        training. The paper needs ``noise_sigma <= 0.25 * step`` with ``step``
        the data's quantization step *in the units of X* (1/255 for 8-bit
        images in [0, 1]; 1/16 for digits divided by 16; after
        ``StandardScaler`` the step is divided by each feature's std). It also
        bounds the density the flow can put on constant features.
    label_smoothing : float in [0, 1), default=0.05
        Smoothing of the ``L_Y`` targets.
    learn_prior : bool, default=False
        Learn the class weights ``w = softmax(phi)`` from equal weights, with
        gradients of ``L_X`` only (appendix B: ``L_Y`` could be lowered by
        sending one weight to 1); otherwise they are fixed to the training
        label frequencies.
    n_blocks : int, default=4
        Coupling blocks of the dense INN.
    inn_architecture : str or sequence, default='auto'
        Convolutional INN (used for images: ``input_shape`` or image-shaped
        X): ``'auto'`` (``'small'``, ``[down, 4, down, 4]``, for any number
        of channels; the paper's 58 blocks cost about 7x more per image), a
        preset of ``skinfo.nn.INN_PRESETS`` (``'paper'``, ``'small'``) or a
        sequence of ints and ``'down'``.
    n_fc_blocks : int, default=2
        Dense blocks after the convolutional levels.
    conv_width : int, default=32
        Hidden channels of the convolutional subnets.
    clamp : float, default=1.0
        Soft clamp ``c`` of the coupling log-scales, ``c * tanh(s / c)``.
    means_distance : float, default=5.0
        Pairwise distance of the initial class means.
    head_lr : float or None, default=None
        Learning rate of the class means ``mu_y`` (the latent Gaussian
        mixture, the flow's classification head); ``None`` means ``10 * lr``.
    clip_grad_norm : float or None, default=8.0
        Clip the gradient norm of all parameters to this value at every step;
        ``None`` disables clipping. Clipping keeps the large flat-row step
        (``lr=1e-2``) from occasionally degrading longer trainings (see the
        IB-INN page of the documentation).
    ood_score : {'auto', 'typicality', 'log_likelihood', 'max_proba', 'knn', 'mahalanobis', \
'relative_mahalanobis'}, default='auto'
        :meth:`score_samples`: ``-|log q(x) - mean_train log q(x)|`` (the
        single-input typicality test), ``log q(x)``, or the maximum class
        probability of :meth:`predict_proba`. ``'auto'``: ``'typicality'``
        for flat rows, ``'max_proba'`` for images (on images a flow's
        likelihood follows low-level statistics such as the number of inked
        pixels rather than the class, see the documentation).
    encoder
        Must be ``None``: the network is the INN.
    hidden_layer_sizes, activation, input_shape, max_epochs, batch_size, lr, \
optimizer, weight_decay, validation_fraction, early_stopping, n_iter_no_change, device, \
random_state, verbose, callbacks, warm_start, on_nan, accelerator, \
compile
        Common parameters, see :ref:`common-parameters`
        (``hidden_layer_sizes`` / ``activation``: the coupling subnets).
        The defaults differ from the other estimators': ``lr='auto'``
        (``1e-2`` for flat rows, ``1e-3`` for images) and ``max_epochs=20``.
        The couplings start near the identity (FrEIA scales the subnet output
        by 0.1), so the dense flow needs a larger step than an MLP: at
        ``lr=1e-3`` a short training leaves it visibly less accurate; the
        convolutional INN on images is unstable at ``1e-2`` (the defaults are
        explained with measurements on the IB-INN page of the documentation).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    net_ : skorch.NeuralNet
        Its ``module_`` is an :class:`~skinfo.nn.IBINNNetwork`.
    history_ : skorch.history.History
        Per epoch ``train_loss``, ``train_L_X``, ``train_L_Y``,
        ``train_bits_per_dim`` (and ``train_class_nll``).
    n_iter_ : int
    device_ : str
    train_log_likelihood_mean_ : float
        Mean ``log q(x)`` of the training data (the typicality reference).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skinfo import IBINNClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = IBINNClassifier(n_blocks=2, max_epochs=3, random_state=0).fit(X / 16, y)
    >>> clf.predict_proba(X[:2] / 16).shape
    (2, 10)
    >>> clf.transform(X[:2] / 16).shape  # the latent z
    (2, 64)
    >>> X_new, y_new = clf.sample(4, y=3, random_state=0)
    >>> X_new.shape, y_new.tolist()
    ((4, 64), [3, 3, 3, 3])
    """

    def __init__(
        self,
        *,
        beta="auto",
        loss="ib",
        noise_sigma=1e-3,
        label_smoothing=0.05,
        learn_prior=False,
        n_blocks=4,
        inn_architecture="auto",
        n_fc_blocks=2,
        conv_width=32,
        clamp=1.0,
        means_distance=5.0,
        head_lr=None,
        clip_grad_norm=8.0,
        ood_score="auto",
        encoder=None,
        hidden_layer_sizes=(128,),
        activation="relu",
        input_shape=None,
        max_epochs=20,
        batch_size=128,
        lr="auto",
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
        self.loss = loss
        self.noise_sigma = noise_sigma
        self.label_smoothing = label_smoothing
        self.learn_prior = learn_prior
        self.n_blocks = n_blocks
        self.inn_architecture = inn_architecture
        self.n_fc_blocks = n_fc_blocks
        self.conv_width = conv_width
        self.clamp = clamp
        self.means_distance = means_distance
        self.head_lr = head_lr
        self.clip_grad_norm = clip_grad_norm
        self.ood_score = ood_score
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

    #: ``"auto"`` values: (flat rows, images); see "Choosing the defaults" in the docs
    _auto: dict = {
        "lr": (1e-2, 1e-3),
        "beta": (1.0, IMAGE_BETA),
        "ood_score": ("typicality", "max_proba"),
    }

    _constraints: dict = {
        **NeuralClassifier._constraints,
        "lr": [Options(("auto",)), Interval(Real, 0, None, closed="neither")],
        "beta": [Options(("auto",)), Interval(Real, 0, math.inf)],
        "loss": [Options(_LOSSES)],
        "noise_sigma": [Interval(Real, 0, None, closed="left")],
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
        "learn_prior": [BOOLEAN],
        "n_blocks": [Interval(Integral, 1, 1024)],
        "inn_architecture": [
            Options(("auto", *sorted(INN_PRESETS))),
            Check(
                lambda v: (
                    isinstance(v, list | tuple)
                    and len(v) <= 1024
                    and all(x == "down" or Interval(Integral, 1, 1024)(x) for x in v)
                ),
                "a sequence of ints and 'down'",
            ),
        ],
        "n_fc_blocks": [Interval(Integral, 0, 1024)],
        "conv_width": [Interval(Integral, 1, MAX_SIZE)],
        "clamp": [Interval(Real, 0, None, closed="neither")],
        "means_distance": [Interval(Real, 0, None, closed="neither")],
        "head_lr": [None, Interval(Real, 0, None, closed="neither")],
        "clip_grad_norm": [None, Interval(Real, 0, None, closed="neither")],
        "ood_score": [Options(("auto", *_OOD_SCORES, *DISTANCE_SCORES))],
        "encoder": [None],
    }

    _fitted_attributes: dict = {
        **NeuralClassifier._fitted_attributes,
        "train_log_likelihood_mean_": Interval(Real, None, None),
    }

    # ----------------------------------------------------------------- hooks
    def _build_module(self, X, y, sample_weight=None) -> nn.Module:
        n_features = X.shape[1]
        hidden = tuple(int(h) for h in self.hidden_layer_sizes)
        shape = self._sample_shape(n_features)
        if len(shape) != 3:
            flow = dense_inn(n_features, self.n_blocks, hidden, self.activation, self.clamp)
        else:
            architecture = self.inn_architecture
            if isinstance(architecture, str) and architecture == "auto":
                architecture = "small"
            flow = conv_inn(
                shape,
                architecture,
                self.n_fc_blocks,
                hidden,
                self.conv_width,
                self.activation,
                self.clamp,
            )
        prior = class_frequencies(y, len(self.classes_), sample_weight).astype(np.float32)
        gmm = LatentGMM(
            len(self.classes_),
            n_features,
            torch.from_numpy(prior),
            learn_prior=bool(self.learn_prior),
            distance=float(self.means_distance),
        )
        return IBINNNetwork(flow, gmm, self.noise_sigma)

    def _build_criterion(self, X, y) -> nn.Module:
        return IBINNLoss(
            beta=self._value("beta"),
            n_dims=X.shape[1],
            label_smoothing=self.label_smoothing,
            loss=self.loss,
        )

    def _param_groups(self) -> list:
        return head_param_groups(
            self.head_lr, self._value("lr"), HEAD_LR_FACTOR, pattern="gmm.means"
        )

    def _extra_callbacks(self) -> list:
        if self.clip_grad_norm is None:
            return []
        return [("clip_grad_norm", GradientNormClipping(float(self.clip_grad_norm)))]

    def _after_fit(self, X, y, sample_weight=None) -> None:
        self.train_log_likelihood_mean_ = float(
            self._infer(X, lambda m, x: m.log_likelihood(x)).mean()
        )

    def _score_samples_batch(self, module, x):
        score = self._value("ood_score")
        if score == "max_proba":
            return module.log_proba(x).double().exp().amax(-1)
        log_q = module.log_likelihood(x).double()
        if score == "log_likelihood":
            return log_q
        return -(log_q - self.train_log_likelihood_mean_).abs()

    # ---------------------------------------------------------------- public
    def decision_logits(self, X) -> np.ndarray:
        """The latent-space logits ``log w_y - 0.5 ||g(x) - mu_y||^2``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, in the format of the training data.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``.
        """
        return self._infer(self._validate_X(X), lambda m, x: m.logits(x))

    def log_likelihood(self, X) -> np.ndarray:
        """``log q(x)`` per row in nats (density of X in its own units).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, in the format of the training data.

        Returns
        -------
        ndarray of shape (n_samples,)
            The log-likelihood of each row.
        """
        return self._infer(self._validate_X(X), lambda m, x: m.log_likelihood(x))

    def bits_per_dim(self, X) -> float:
        """Mean negative log-likelihood in bits per dimension, ``-mean log q(x) / (D log 2)``.

        The density is that of X in its own units; for data scaled to [0, 1]
        from ``L`` levels, add ``log2(L)`` to compare with bits/dim reported on
        the integer scale (8 for 8-bit images).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, in the format of the training data.

        Returns
        -------
        float
            Bits per dimension.
        """
        return float(-self.log_likelihood(X).mean() / (self.n_features_in_ * math.log(2)))

    def sample(
        self, n_samples: int = 1, y=None, random_state=None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Generate inputs by inverting the flow: ``x = g^-1(z)``, ``z ~ N(mu_y, I)``.

        Parameters
        ----------
        n_samples : int
            Number of rows to generate.
        y : None, a class label, or array-like of n_samples labels
            Classes to generate; ``None`` draws them from the class weights ``w``.
        random_state : int, RandomState or None
            Seeds the class and latent draws.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            The generated rows.
        y : ndarray of shape (n_samples,)
            The labels (values of ``classes_``).
        """
        check_is_fitted(self, "net_")
        if not isinstance(n_samples, Integral) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive int, got {n_samples!r}.")
        rng = check_random_state(random_state)
        module = self.net_.module_.eval()
        if y is None:
            w = torch.softmax(module.gmm.phi.detach().double().cpu(), 0).numpy()
            codes = rng.choice(len(self.classes_), size=n_samples, p=w / w.sum())
        else:
            labels = np.asarray(y)
            labels = np.full(n_samples, labels) if labels.ndim == 0 else labels
            if labels.shape != (n_samples,):
                raise ValueError(f"y must be one label or {n_samples} labels, got {labels.shape}.")
            codes = np.searchsorted(self.classes_, labels)
            codes = np.clip(codes, 0, len(self.classes_) - 1)
            if not np.array_equal(self.classes_[codes], labels):
                raise ValueError(f"y contains labels not in classes_ {list(self.classes_)}.")
        gen = torch.Generator().manual_seed(int(rng.randint(np.iinfo(np.int32).max)))
        with torch.no_grad():
            z = module.gmm.sample(torch.from_numpy(codes).to(module.gmm.means.device), gen)
            x = module.flow.inverse(z)
        return x.to("cpu", torch.float64).numpy(), self.classes_[codes]
