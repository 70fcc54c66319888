"""MASSClassifier: Minimal Achievable Sufficient Statistic learning (Cvitkovic & Koliander)."""

from __future__ import annotations

import copy
from numbers import Integral, Real

import numpy as np
import torch
from torch import nn

from ._base import NeuralClassifier, class_frequencies
from ._feature_scores import DISTANCE_SCORES
from ._params import BOOLEAN, MAX_SIZE, Check, Interval, Options
from ._training import head_param_groups
from .nn.gmm import ClassConditionalGMM, MASSNetwork
from .nn.jacobian import mlp_layers
from .objectives.mass import MASSLoss

#: ``max_epochs='auto'`` on images. On MNIST-5k under early stopping (patience 5)
#: training stopped after 9-13 epochs; 15 epochs take about 90 s on two CPU cores.
#: Flat rows: 50.
IMAGE_EPOCHS = 15

_OOD_SCORES = ("max_class_density", "marginal_density")
_JACOBIAN = ("auto", "analytic", "autograd")
#: ``head_lr=None`` trains the variational head ``q`` at this multiple of ``lr``.
HEAD_LR_FACTOR = 30.0
#: EM steps of the refit of ``q`` on the training representation at the end of ``fit``.
REFIT_STEPS = 20


def _check_volume_rank(module: MASSNetwork, latent_dim: int, n_features: int) -> None:
    """Refuse a representation whose narrowest layer makes ``log J_f = -inf`` everywhere.

    ``Df`` has rank at most the width of the narrowest layer of ``f``; the
    log-volume needs rank ``min(latent_dim, n_features)``. Every layer of an
    MLP encoder is checked; of any other encoder only its output width (a
    narrower layer inside it shows as a ``-inf`` or very negative ``log J``).
    """
    need = min(latent_dim, n_features)
    layers = mlp_layers(module.encoder, module.projection)
    if layers is None:
        widths = [module.projection.in_features]
    else:
        widths = [layer.out_features for layer in layers[0:-1:2]]
    narrowest = min(widths, default=need)
    if narrowest < need:
        raise ValueError(
            f"With beta > 0 every layer of the representation must be at least "
            f"min(latent_dim, n_features) = {need} wide: the narrowest is {narrowest}, so "
            f"f cannot have a {need}-dimensional volume and log J_f is -inf. Widen the "
            "encoder (hidden_layer_sizes) or lower latent_dim."
        )


def _density(module: MASSNetwork) -> ClassConditionalGMM:
    """The density ``q`` of the scores: the refitted copy of the head where there is one."""
    density = getattr(module, "density_head", None)
    return module.head if density is None else density


class MASSClassifier(NeuralClassifier):
    """Neural classifier trained by MASS learning with a Gaussian-mixture head.

    Follows Cvitkovic & Koliander, "Minimal Achievable Sufficient Statistic
    Learning" (ICML 2019). The representation ``z = f(x)`` is the encoder
    followed by a linear layer to ``latent_dim`` outputs. A variational
    density ``q(z | y)``, a mixture of ``n_components`` full-covariance
    Gaussians per class (learned weights, means and Cholesky factors), gives
    ``q(z) = sum_y q(z | y) p(y)`` with ``p(y)`` the training class frequencies
    and ``q(y | z)`` by Bayes' rule. Training minimizes (Eq. 2 of the paper)::

        mean_i [ -log q(y_i | f(x_i)) - beta log q(f(x_i)) - beta log J_f(x_i) ]

    with ``J_f(x) = sqrt(det(Df(x) Df(x)^T))``. The Jacobian term is averaged
    over a random ``jacobian_fraction`` of each batch. ``predict_proba`` is
    ``q(y | f(x))``.

    When ``latent_dim`` exceeds ``n_features`` (``Df Df^T`` is then singular),
    ``J_f = sqrt(det(Df^T Df))``, the volume scaling onto the image of ``f``, is
    used instead (a documented extension; the paper assumes ``d <= D``).

    Parameters
    ----------
    beta : float, default=1e-3
        Weight of the entropy and log-Jacobian terms (the paper's ``beta``;
        1e-2 to 1e-4 in its tables). ``beta=0`` is "MASS, beta=0": the
        cross-entropy of the Gaussian-mixture head only, at SoftmaxCE's cost
        (no Jacobian is computed).
    latent_dim : int, default=10
        Width ``d`` of the representation (the paper: 10 or 15). With
        ``beta > 0`` every layer of the encoder must be at least
        ``min(latent_dim, n_features)`` wide (else ``f`` has no
        ``d``-dimensional volume, ``log J_f = -inf``, and ``fit`` raises a
        ``ValueError``).
    n_components : int, default=10
        Gaussians per class in ``q(z | y)`` (the paper: 10).
    jacobian_fraction : float in (0, 1] or None, default=None
        Fraction of each batch on which ``log J_f`` is computed; ``None`` is
        ``1 / n_classes`` (the paper).
    jacobian : {'auto', 'analytic', 'autograd'}, default='auto'
        ``'analytic'``: the chain ``W_L diag(act'(h_{L-1})) ... W_1`` of an MLP
        encoder, reusing the forward pass (fast; for wide inputs, when it takes
        fewer multiply-adds, only ``Df Df^T = C (W_1 W_1^T) C^T`` is formed,
        see :func:`skinfo.nn.mlp_log_volume`); ``'autograd'``:
        ``torch.func`` ``vmap(jacrev)`` for any encoder (CNNs; batch norm uses
        its running statistics for the Jacobian); ``'auto'``: analytic when the
        encoder is an MLP. Both give the exact Jacobian.
    ood_score : {'max_class_density', 'marginal_density', 'knn', 'mahalanobis', \
'relative_mahalanobis'}, default='max_class_density'
        Normality score of :meth:`score_samples`: ``max_y log q(f(x) | y)``
        (the paper's OOD detector, Table 5) or ``log q(f(x))``. Both are
        densities of the representation under the learned ``q``, without the
        ``log J_f`` term (as in the paper); they are only as good as ``q``'s fit
        to ``f(X)`` (see ``head_lr`` and ``refit_head``).
    min_scale : float, default=1e-3
        Floor on the diagonal of the Cholesky factors (``softplus(raw) + min_scale``).
    head_lr : float or None, default=None
        Learning rate of the parameters of ``q`` (mixture weights, means and
        covariances); ``None`` is ``30 * lr``. With Adam each step moves a
        parameter by about the learning rate, so at the encoder's rate the
        means and covariances of ``q`` (a few units wide in ``z``) barely move
        in a small data set's few hundred steps while the encoder rescales
        ``z`` freely: ``q`` then does not fit ``f(X)``, the cross-entropy
        pushes the training representations into its tails, and the density
        scores of :meth:`score_samples` rank out-of-distribution inputs
        *above* the training data. On digits (see the MASS page of the
        documentation), with ``head_lr = 30 * lr`` the density scores rank
        OOD inputs below the training data and accuracy is unchanged.
    refit_head : bool, default=True
        At the end of ``fit``, refit a copy of ``q(z | y)`` to the final
        training representation ``f(X)`` by maximum likelihood: 20 EM steps
        per class from the trained mixture
        (:meth:`skinfo.nn.gmm.ClassConditionalGMM.refit`, weighted by
        ``sample_weight``), kept as the module's ``density_head`` (saved by
        :func:`skinfo.save`). :meth:`score_samples` and
        :meth:`log_class_density` use it; ``predict_proba`` keeps the head
        trained with the encoder, which gave the better accuracy and NLL. The
        trained head lags the encoder, and the density scores suffer most from
        it (measurements on the MASS page of the documentation). A deviation
        from the paper, which scores with the trained ``q``; ``False`` does
        too. ``partial_fit`` does not refit (it sees one batch): the scores
        then use the trained head.
    max_epochs : int or 'auto', default='auto'
        Number of epochs; ``'auto'`` is 50 for flat rows and ``IMAGE_EPOCHS``
        (15) for images.
    encoder, hidden_layer_sizes, activation, input_shape, batch_size, lr, \
optimizer, weight_decay, validation_fraction, early_stopping, n_iter_no_change, device, \
random_state, verbose, callbacks, warm_start, on_nan, accelerator, \
compile
        Common parameters, see :ref:`common-parameters`. The default encoder is
        the paper's SmallMLP (400-200, ELU). For images, pass
        ``encoder=skinfo.nn.resnet20`` and ``input_shape=(C, H, W)``.
        ``compile=True`` fuses the many small operations of the head and the
        Jacobian term (``torch.compile``): each step takes less time after a
        one-time compilation, so it pays in long trainings (timings on the
        MASS page of the documentation).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    class_prior_ : ndarray of shape (n_classes,)
        Training class frequencies ``p(y)``.
    n_features_in_ : int
        Number of features seen in ``fit``.
    net_ : skorch.NeuralNet
        The fitted skorch net (``net_.module_`` is a :class:`~skinfo.nn.MASSNetwork`).
    history_ : skorch.history.History
        Per epoch: ``train_loss`` and the three terms without ``beta`` (the
        paper's Figure 2): ``train_cross_entropy`` (H(Y|f(X)) estimate),
        ``train_entropy`` (H(f(X)) estimate) and ``train_log_jacobian``
        (E[log J_f], only when ``beta > 0``).
    n_iter_ : int
        Number of epochs run.
    device_ : str
        Device the model was trained on.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skinfo import MASSClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = MASSClassifier(beta=1e-3, hidden_layer_sizes=(64,), max_epochs=10, lr=3e-3,
    ...                      random_state=0).fit(X / 16, y)
    >>> clf.predict_proba(X[:2] / 16).shape
    (2, 10)
    >>> clf.score(X / 16, y) > 0.8
    True
    >>> clf.transform(X[:3] / 16).shape
    (3, 10)
    >>> terms = ("train_cross_entropy", "train_entropy", "train_log_jacobian")
    >>> len(clf.history_[:, terms]) == clf.n_iter_
    True
    """

    def __init__(
        self,
        *,
        beta=1e-3,
        latent_dim=10,
        n_components=10,
        jacobian_fraction=None,
        jacobian="auto",
        ood_score="max_class_density",
        min_scale=1e-3,
        head_lr=None,
        refit_head=True,
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
        self.latent_dim = latent_dim
        self.n_components = n_components
        self.jacobian_fraction = jacobian_fraction
        self.jacobian = jacobian
        self.ood_score = ood_score
        self.min_scale = min_scale
        self.head_lr = head_lr
        self.refit_head = refit_head
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
        "latent_dim": [Interval(Integral, 1, MAX_SIZE)],
        "n_components": [Interval(Integral, 1, MAX_SIZE)],
        "jacobian_fraction": [None, Interval(Real, 0, 1, closed="right")],
        "jacobian": [Options(_JACOBIAN)],
        "ood_score": [Options((*_OOD_SCORES, *DISTANCE_SCORES))],
        "min_scale": [Interval(Real, 0, None, closed="neither")],
        "head_lr": [None, Interval(Real, 0, None, closed="neither")],
        "refit_head": [BOOLEAN],
    }

    _fitted_attributes: dict = {
        **NeuralClassifier._fitted_attributes,
        "class_prior_": Check(
            lambda v: isinstance(v, np.ndarray) and v.ndim == 1 and v.dtype.kind == "f",
            "a 1-D float array",
        ),
    }

    def _param_groups(self) -> list:
        return head_param_groups(self.head_lr, self._value("lr"), HEAD_LR_FACTOR)

    def _build_module(self, X, y, sample_weight=None) -> nn.Module:
        encoder, width = self._make_encoder(X.shape[1])
        prior = class_frequencies(y, len(self.classes_), sample_weight)
        head = ClassConditionalGMM(
            int(self.latent_dim),
            len(self.classes_),
            int(self.n_components),
            class_prior=prior,
            min_scale=float(self.min_scale),
        )
        module = MASSNetwork(encoder, width, head, jacobian=self.jacobian)
        if self.refit_head:
            module.density_head = copy.deepcopy(head)
        if self.beta > 0:
            _check_volume_rank(module, int(self.latent_dim), X.shape[1])
        return module

    def _fit_tensors(self, X, y, sample_weight=None, *, partial=False):
        super()._fit_tensors(X, y, sample_weight, partial=partial)
        module = self.net_.module_
        density = getattr(module, "density_head", None)
        if density is not None:
            density.load_state_dict(module.head.state_dict())
            if not partial:
                z = torch.from_numpy(self._infer(X, lambda m, x: m.embed(x)))
                weight = None if sample_weight is None else torch.as_tensor(sample_weight)
                density.refit(z, torch.from_numpy(np.asarray(y)), weight, n_iter=REFIT_STEPS)
        return self

    def _after_fit(self, X, y, sample_weight=None) -> None:
        self.class_prior_ = self.net_.module_.head.log_prior.detach().exp().double().cpu().numpy()

    def _build_criterion(self, X, y) -> nn.Module:
        frac = self.jacobian_fraction
        frac = 1.0 / len(self.classes_) if frac is None else float(frac)
        return MASSLoss(beta=float(self.beta), jacobian_fraction=frac)

    def _score_samples_batch(self, module, x):
        z, density = module.embed(x), _density(module)
        if self.ood_score == "marginal_density":
            return density.log_marginal(z)
        return density.log_class_conditional(z).max(dim=-1).values

    def log_class_density(self, X) -> np.ndarray:
        """``log q(f(x) | y)`` for every class (the refitted ``q`` under ``refit_head``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, in the format of the training data.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``.
        """
        return self._infer(
            self._validate_X(X), lambda m, x: _density(m).log_class_conditional(m.embed(x))
        )

    def log_jacobian(self, X) -> np.ndarray:
        """``log J_f(x)`` of the fitted representation for every row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, in the format of the training data.

        Returns
        -------
        ndarray of shape (n_samples,)
            ``-inf`` where the map has no volume at that row.
        """

        def fn(module, x):
            return module.log_jacobian(x, torch.arange(len(x), device=x.device)).detach()

        return self._infer(self._validate_X(X), fn, grad=True)
