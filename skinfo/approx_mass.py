"""Approximate-mass penalized normalizing flow for OOD detection (Chali et al., 2023)."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import OutlierMixin
from sklearn.metrics import roc_auc_score
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import Callback

from ._base import NeuralEstimator
from ._inference import INFERENCE_BATCH_SIZE
from ._input import check_sample_weight
from ._net import _dataset_tensors
from ._params import MAX_SIZE, Interval, Options, Sizes
from ._training import atomic_fit
from .nn.realnvp import FlowTrainingModule, RealNVP, approximate_mass
from .objectives.approx_mass import ApproxMassLoss

_SCORES = ("approx_mass", "log_likelihood")
_ARCHITECTURES = ("dense", "multiscale")
#: Training epochs of ``max_epochs="auto"`` for images (flat rows: 50).
IMAGE_EPOCHS = 25


def _weighted_quantile(values: np.ndarray, q: float, weights: np.ndarray | None) -> float:
    """``np.quantile(values, q)`` (linear method) with each value repeated by its weight.

    Integer weights give exactly the quantile of the repeated values; a weight
    of 0 removes a value. Fractional weights stretch a value's share of the
    sorted positions in proportion (a value of weight ``w`` covers ``w``
    positions of the ``sum(weights)`` ones).
    """
    if weights is None:
        return float(np.quantile(values, q))
    order = np.argsort(values, kind="stable")
    keep = weights[order] > 0
    sorted_values, cumulative = values[order][keep], np.cumsum(weights[order][keep])
    position = max((cumulative[-1] - 1.0) * q, 0.0)  # h of numpy's linear method
    low = np.floor(position)

    def at(k: float) -> float:  # the value at 0-based position k of the repeated values
        i = min(int(np.searchsorted(cumulative, k, side="right")), len(sorted_values) - 1)
        return float(sorted_values[i])

    return at(low) + (position - low) * (at(low + 1) - at(low))


class ApproxMassFlowDetector(OutlierMixin, NeuralEstimator):
    """Unsupervised OOD detector: a RealNVP flow trained with the approximate-mass penalty.

    Training minimizes (Chali et al. 2023, Eq. 2, with per-sample gradients)
    ``-mean_i log p(x_i) + alpha * mean_i ||d log p(x_i) / d x_i||``
    by double backpropagation. ``alpha=0`` is plain maximum likelihood (the
    paper's ablation) and costs one backward pass. The OOD score is the
    approximate mass ``||d log p(x) / dx||`` (higher = more OOD);
    :meth:`score_samples` returns its negative (higher = more normal, sklearn's
    convention).

    The flow (:class:`skinfo.nn.RealNVP`, built from FrEIA modules) is
    RealNVP with dense affine couplings on the flattened rows, for feature
    vectors and images alike (``architecture='dense'``), or, for images, the
    paper's multi-scale architecture with checkerboard and channel masks and
    squeezes (``architecture='multiscale'``; far more costly per image, see
    the user guide). With a single feature a coupling has nothing to
    condition on, so the dense flow is an elementwise affine layer alone (a
    learned 1-D Gaussian).

    Parameters
    ----------
    alpha : float, default=2.0
        Weight of the approximate-mass penalty (the paper's alpha; 0 = maximum
        likelihood). The paper found alpha=2 best for its image RealNVP; the
        reference code defaults to 0.1. On standardized digits the OOD
        detection of the approximate mass improved with alpha up to 2 and not
        beyond, and alpha=0.1 was close to plain maximum likelihood (tables on
        the approximate-mass page of the documentation, produced by
        ``python -m benchmarks.approx_mass --alpha-grid ...``).
    noise : float, default=0.05
        Dequantization: standard deviation of the Gaussian noise added to every
        training batch, in the units of X (e.g. after ``StandardScaler``).
        Discrete features (the 17 grey levels of digits) and constant features
        (the always-blank corner pixels) otherwise let the maximum-likelihood
        flow shrink those directions without bound and the loss diverge.
        0 disables it (for continuous data).
    ood_score : {"approx_mass", "log_likelihood"}, default="approx_mass"
        What :meth:`score_samples` returns: minus the approximate mass, or the
        log-likelihood.
    contamination : float in (0, 0.5], default=0.05
        Fraction of training rows to flag as outliers: ``offset_`` is
        ``np.quantile`` of the training scores at ``contamination`` (weighted
        by ``sample_weight``, a row of weight 2 counting as two rows), so
        :meth:`predict` flags that fraction of the training rows (as
        :class:`sklearn.covariance.EllipticEnvelope`). There is no
        ``'auto'``: in sklearn, ``contamination='auto'`` (IsolationForest,
        LocalOutlierFactor) means a fixed offset that the score's definition
        singles out, and neither the approximate mass nor the log-likelihood
        has one.
    architecture : {"dense", "multiscale"}, default="dense"
        ``'dense'``: affine couplings with MLP st-networks on the flattened
        rows (any input, images included). ``'multiscale'``: the paper's
        convolutional multi-scale RealNVP; needs images (``input_shape=(C, H,
        W)`` or image-shaped X).
    n_blocks : int or None, default=None
        Dense flow: number of affine couplings (None = 6). Multi-scale flow:
        residual blocks in each coupling's st-network, the paper's "blocks"
        (None = 2).
    hidden_width : int, default=64
        Width of the st-networks: hidden units (dense) or convolution
        channels (multi-scale).
    n_hidden : int, default=2
        Hidden layers of each dense st-network (dense flow only).
    n_scales : int, default=2
        Multi-scale flow only: its number of scales (the paper's "scales"; a
        scale is three checkerboard couplings, a squeeze, three channel
        couplings, and half of the channels factored out; the last scale is four
        checkerboard couplings). Height and width must be divisible by
        ``2 ** (n_scales - 1)``.
    clamp : float, default=2.0
        Soft clamp of the coupling log-scales, ``clamp * tanh(s / clamp)``.
    input_shape : None or tuple of int, default=None
        ``(C, H, W)``: the shape of one image, for ``architecture='multiscale'``
        (rows are reshaped, so pipelines with scalers work); image-shaped X,
        ``(n, C, H, W)`` or ``(n, H, W)``, gives it too. None or
        ``(n_features,)``: flat rows.
    max_epochs : int or "auto", default="auto"
        Training epochs; ``'auto'`` is 50 for flat rows and 25 for images
        (``input_shape=(C, H, W)`` or image-shaped X), where the held-out
        detection does not improve beyond (see the user guide).
    batch_size, lr, optimizer, weight_decay, validation_fraction, \
early_stopping, n_iter_no_change, device, random_state, verbose, callbacks, on_nan
        Common parameters, see :ref:`common-parameters`.

    Attributes
    ----------
    offset_ : float
        ``decision_function = score_samples - offset_``.
    n_features_in_ : int
        Number of features seen in ``fit``.
    history_ : skorch.history.History
        Per epoch ``train_loss``, ``train_nll`` and (alpha > 0) ``train_mass``
        (and ``valid_*`` with ``validation_fraction``); see also
        :class:`ApproxMassMonitor`.
    n_iter_ : int
        Number of epochs run.
    net_ : skorch.NeuralNet
        The fitted skorch net; ``net_.module_.flow`` is the flow.

    See Also
    --------
    skinfo.approx_mass.ApproxMassMonitor : logs the approximate mass and the OOD AUROC per epoch.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfo import ApproxMassFlowDetector
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(300, 3))
    >>> det = ApproxMassFlowDetector(max_epochs=5, hidden_width=8, random_state=0).fit(X)
    >>> det.predict(X[:4]).shape
    (4,)
    >>> far = rng.normal(loc=6.0, size=(5, 3))
    >>> bool(det.score_samples(far).max() < np.median(det.score_samples(X)))
    True
    """

    def __init__(
        self,
        *,
        alpha=2.0,
        noise=0.05,
        ood_score="approx_mass",
        contamination=0.05,
        architecture="dense",
        n_blocks=None,
        hidden_width=64,
        n_hidden=2,
        n_scales=2,
        clamp=2.0,
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
        on_nan="raise",
        **kwargs,
    ):
        self.alpha = alpha
        self.noise = noise
        self.ood_score = ood_score
        self.contamination = contamination
        self.architecture = architecture
        self.n_blocks = n_blocks
        self.hidden_width = hidden_width
        self.n_hidden = n_hidden
        self.n_scales = n_scales
        self.clamp = clamp
        self.input_shape = input_shape
        super().__init__(
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
            on_nan=on_nan,
            **kwargs,
        )

    _auto: dict = {"max_epochs": (50, IMAGE_EPOCHS)}
    _constraints: dict = {
        **NeuralEstimator._constraints,
        "max_epochs": [Options(("auto",)), *NeuralEstimator._constraints["max_epochs"]],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "noise": [Interval(Real, 0, None, closed="left")],
        "ood_score": [Options(_SCORES)],
        "contamination": [Interval(Real, 0, 0.5, closed="right")],
        "architecture": [Options(_ARCHITECTURES)],
        "n_blocks": [None, Interval(Integral, 1, 1024)],
        "hidden_width": [Interval(Integral, 1, MAX_SIZE)],
        "n_hidden": [Interval(Integral, 1, 1024)],
        "n_scales": [Interval(Integral, 1, 64)],
        "clamp": [Interval(Real, 0, None, closed="neither")],
        "input_shape": [None, Sizes(lengths=(1, 1)), Sizes(lengths=(3, 3))],
    }

    _fitted_attributes: dict = {
        **NeuralEstimator._fitted_attributes,
        "offset_": Interval(Real, None, None),
    }

    def _build_module(self, X, y, sample_weight=None):
        shape = self._sample_shape(X.shape[1])
        image = self.architecture == "multiscale"
        if image and len(shape) != 3:
            raise ValueError(
                "architecture='multiscale' needs images: pass input_shape=(C, H, W) or "
                f"image-shaped X (n, C, H, W); got rows of shape {shape}."
            )
        n_blocks = self.n_blocks if self.n_blocks is not None else (2 if image else 6)
        shape = shape if image else (X.shape[1],)
        return FlowTrainingModule(
            RealNVP(
                shape,
                n_blocks=n_blocks,
                hidden_width=self.hidden_width,
                n_hidden=self.n_hidden,
                n_scales=self.n_scales,
                clamp=float(self.clamp),
                seed=self._seed,
            )
        )

    def _build_criterion(self, X, y):
        return ApproxMassLoss(alpha=float(self.alpha), noise=float(self.noise))

    @atomic_fit
    def fit(self, X, y=None, sample_weight=None):
        """Train the flow on ``X``; ``y`` is ignored.

        A fit that raises leaves the detector as it was before the call.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or image-shaped
            Training rows (in-distribution data), or images ``(n, C, H, W)`` /
            ``(n, H, W)``.
        y : None
            Ignored; present for API consistency.
        sample_weight : array-like of shape (n_samples,) or None, default=None
            Weight of each row in the loss (its log-likelihood and its
            approximate-mass penalty) and in the quantile that sets
            ``offset_``.

        Returns
        -------
        self : object
            The fitted detector.
        """
        X = self._check_input(X, reset=True)
        if X.shape[0] < 2:
            raise ValueError(
                f"ApproxMassFlowDetector needs at least 2 samples, got n_samples = {X.shape[0]}."
            )
        self._fit_tensors(X, None, check_sample_weight(sample_weight, len(X)))
        return self

    def _after_fit(self, X, y, sample_weight=None) -> None:
        scores = self._scores(X)
        self.offset_ = _weighted_quantile(scores, float(self.contamination), sample_weight)

    def _scores(self, X: np.ndarray) -> np.ndarray:
        if self.ood_score == "log_likelihood":
            return self._infer(X, lambda m, x: m.flow.log_prob(x))
        return -self._infer(X, lambda m, x: approximate_mass(m.flow, x)[1], grad=True)

    def approximate_mass(self, X) -> np.ndarray:
        """The approximate mass ``||d log p(x) / dx||`` per row (higher = more OOD).

        The gradient is taken with respect to X as given (after any pipeline
        step before the detector), without dequantization noise.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, in the format of the training data.

        Returns
        -------
        ndarray of shape (n_samples,)
            The approximate mass of each row.
        """
        return self._infer(
            self._validate_X(X), lambda m, x: approximate_mass(m.flow, x)[1], grad=True
        )

    def log_likelihood(self, X) -> np.ndarray:
        """``log p(x)`` per row under the flow (nats; a density in the units of X).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, in the format of the training data.

        Returns
        -------
        ndarray of shape (n_samples,)
            The log-likelihood of each row.
        """
        return self._infer(self._validate_X(X), lambda m, x: m.flow.log_prob(x))

    def score_samples(self, X) -> np.ndarray:
        """Normality score per row, higher = more normal (``ood_score`` chooses which).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, in the format of the training data.

        Returns
        -------
        ndarray of shape (n_samples,)
            The score of each row.
        """
        return self._scores(self._validate_X(X))

    def decision_function(self, X) -> np.ndarray:
        """``score_samples(X) - offset_``: negative for outliers.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, in the format of the training data.

        Returns
        -------
        ndarray of shape (n_samples,)
            The shifted score of each row.
        """
        return self.score_samples(X) - self.offset_

    def predict(self, X) -> np.ndarray:
        """+1 for inliers, -1 for outliers.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, in the format of the training data.

        Returns
        -------
        ndarray of shape (n_samples,)
            ``+1`` or ``-1`` (int) for each row.
        """
        return np.where(self.decision_function(X) < 0, -1, 1).astype(int)

    def score(self, X, y=None) -> float:
        """Mean log-likelihood of ``X`` (``y`` is ignored)."""
        return float(np.mean(self.log_likelihood(X)))

    def sample(self, n_samples: int = 1, random_state=None) -> np.ndarray:
        """Draw ``n_samples`` rows from the flow (float64, shape (n, n_features)).

        Parameters
        ----------
        n_samples : int, default=1
            Number of rows to draw.
        random_state : int, RandomState instance or None, default=None
            Seeds the base Gaussian draws.

        Returns
        -------
        ndarray of shape (n_samples, n_features)
            The drawn rows (float64).
        """
        check_is_fitted(self, "net_")
        if not isinstance(n_samples, Integral) or isinstance(n_samples, bool) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive int, got {n_samples!r}.")
        rng = check_random_state(random_state)
        z = rng.standard_normal((n_samples, self.n_features_in_)).astype(np.float32)
        module = self.net_.module_.eval()
        with torch.no_grad():
            x = module.flow.inverse(torch.from_numpy(z).to(self.net_.device))
        return x.to("cpu", torch.float64).numpy()


def _mass_and_log_p(net, X) -> tuple[np.ndarray, np.ndarray]:
    """Approximate mass and log-likelihood of rows ``X`` under ``net``'s flow (eval mode)."""
    module = net.module_
    was_training = module.training
    module.eval()
    X = torch.as_tensor(np.asarray(X, dtype=np.float32))
    mass, log_p = [], []
    try:
        with torch.enable_grad():
            for start in range(0, len(X), INFERENCE_BATCH_SIZE):
                x = X[start : start + INFERENCE_BATCH_SIZE].to(net.device)
                lp, m = approximate_mass(module.flow, x)
                mass.append(m.detach().cpu())
                log_p.append(lp.detach().cpu())
    finally:
        module.train(was_training)
    return torch.cat(mass).double().numpy(), torch.cat(log_p).double().numpy()


class ApproxMassMonitor(Callback):
    """Log per epoch the mean approximate mass of in-distribution data and the OOD AUROC.

    At the end of every epoch, records in the history:

    * ``mass_in``: mean approximate mass of ``X_in`` (default: up to
      ``max_rows`` training rows, without dequantization noise), and
      ``mass_in_median`` (the mass is heavy-tailed: a few rows can dominate
      the mean);
    * with ``X_ood``: ``mass_ood`` and ``mass_ood_median`` (the same for the
      OOD rows), ``mass_auroc`` (AUROC of minus the mass, in-distribution
      positive) and ``loglik_auroc`` (AUROC of the log-likelihood).

    ``mass_auroc`` below 0.5 is the reversal of Chali et al. (2023, Fig. 1):
    under plain maximum likelihood the flow ends up giving the training data a
    *larger* approximate mass than OOD data.

    Parameters
    ----------
    X_ood : array-like of shape (n_ood, n_features) or None, default=None
        Validation OOD rows, in the format the detector sees (after any
        pipeline step before it).
    X_in : array-like of shape (n_in, n_features) or None, default=None
        In-distribution rows to compare with; None uses the training rows.
        Pass held-out rows to measure the AUROC on unseen data.
    max_rows : int, default=1000
        At most this many training rows are used when ``X_in`` is None.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfo import ApproxMassFlowDetector
    >>> from skinfo.approx_mass import ApproxMassMonitor
    >>> rng = np.random.RandomState(0)
    >>> X, X_ood = rng.normal(size=(200, 2)), rng.normal(loc=5.0, size=(50, 2))
    >>> det = ApproxMassFlowDetector(
    ...     max_epochs=3, hidden_width=8, random_state=0,
    ...     callbacks=[ApproxMassMonitor(X_ood=X_ood)]).fit(X)
    >>> len(det.history_[:, "mass_auroc"])
    3
    """

    def __init__(self, X_ood=None, X_in=None, max_rows: int = 1000) -> None:
        self.X_ood = X_ood
        self.X_in = X_in
        self.max_rows = max_rows

    def on_epoch_end(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        X_in = self.X_in
        if X_in is None:
            X_in = _dataset_tensors(dataset_train)[0][: self.max_rows]
        mass_in, ll_in = _mass_and_log_p(net, X_in)
        net.history.record("mass_in", float(mass_in.mean()))
        net.history.record("mass_in_median", float(np.median(mass_in)))
        if self.X_ood is not None:
            mass_out, ll_out = _mass_and_log_p(net, self.X_ood)
            labels = np.r_[np.ones(len(mass_in)), np.zeros(len(mass_out))]
            net.history.record("mass_ood", float(mass_out.mean()))
            net.history.record("mass_ood_median", float(np.median(mass_out)))
            net.history.record(
                "mass_auroc", float(roc_auc_score(labels, -np.r_[mass_in, mass_out]))
            )
            ll = np.r_[ll_in, ll_out]
            ll = np.where(np.isfinite(ll), ll, np.finfo(np.float64).min)
            net.history.record("loglik_auroc", float(roc_auc_score(labels, ll)))
