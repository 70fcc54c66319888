"""The estimator classes every skinfo estimator derives from.

:class:`NeuralEstimator` stores the training parameters and ties together the
concepts that live in their own modules: parameter constraints
(:mod:`skinfo._params`), input checks (:mod:`skinfo._input`), building and
training the skorch net (:mod:`skinfo._training`) and batched inference
(:mod:`skinfo._inference`). :class:`NeuralClassifier` adds the encoder
parameters, label encoding and the classifier outputs.

A concrete estimator only says *what* to train:

* ``_build_module(X, y)`` returns the ``nn.Module`` (no side effects);
* ``_build_criterion(X, y)`` returns the objective (see :mod:`skinfo.objectives`);
* classifier modules implement ``log_proba(x)`` (normalized log-probabilities)
  and ``embed(x)`` (the representation returned by ``transform``);
* ``_score_samples_batch(module, x)`` gives the OOD normality score of a batch;
* ``_constraints`` declares what each parameter accepts.

Optional hooks: ``_param_groups()`` (per-parameter-group optimizer options),
``_extra_callbacks()``, ``_after_fit(X, y, sample_weight)`` and ``_check_param_combinations()``.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
)
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ._feature_scores import (
    FEATURE_SCORES,
    are_statistics,
    feature_scores,
    fit_feature_statistics,
    vim_head,
)
from ._inference import infer
from ._input import check_input, check_sample_weight
from ._params import (
    ANY,
    BOOLEAN,
    CALLBACKS,
    DEVICE,
    RANDOM_STATE,
    Check,
    Interval,
    Options,
    Sizes,
)
from ._training import OPTIMIZERS, atomic_fit, train
from .nn.encoders import ACTIVATIONS, MLP, Reshape, SmallCNN, output_width
from .nn.resnet import ResNet


def _is_optimizer(value) -> bool:
    if isinstance(value, str):
        return value.lower() in OPTIMIZERS
    return isinstance(value, type) and issubclass(value, torch.optim.Optimizer)


def probability_score(log_proba: torch.Tensor, kind: str) -> torch.Tensor:
    """An OOD normality score from class log-probabilities (or logits), per row.

    ``'max_proba'``: the largest class probability; ``'neg_entropy'``: minus
    the entropy of the predicted distribution, ``sum_k p_k log p_k``. The
    input is renormalized in float64 first.
    """
    log_p = torch.log_softmax(log_proba.double(), dim=-1)
    if kind == "max_proba":
        return log_p.max(dim=-1).values.exp()
    if kind == "neg_entropy":
        return (log_p.exp() * log_p).sum(-1)
    raise ValueError(f"Unknown probability score {kind!r}.")


def class_frequencies(
    y: np.ndarray, n_classes: int, sample_weight: np.ndarray | None = None
) -> np.ndarray:
    """Relative (weighted) frequency of each encoded class in ``y``, shape (n_classes,).

    A class absent from ``y`` (possible in a first ``partial_fit`` batch)
    counts as one unit-weight row, so every frequency is positive.
    """
    counts = np.bincount(y, weights=sample_weight, minlength=n_classes).astype(np.float64)
    counts[counts <= 0] = 1.0 if sample_weight is None else float(np.mean(sample_weight))
    return counts / counts.sum()


def _takes_no_argument(factory) -> bool:
    """Whether ``factory()`` can be called with no argument (e.g. a module class)."""
    try:
        inspect.signature(factory).bind()
    except (TypeError, ValueError):
        return False
    return True


def class_sample_weight(class_weight, classes: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-row weights from a ``class_weight`` parameter (sklearn's meaning).

    ``'balanced'``: ``n_samples / (n_classes * count(class))`` over the classes
    present in ``y``; a dict maps class labels to weights (others get 1).
    """
    if isinstance(class_weight, dict):
        unknown = [label for label in class_weight if label not in set(classes.tolist())]
        if unknown:
            raise ValueError(f"class_weight names labels not in the data: {unknown[:5]}.")
    return compute_sample_weight(class_weight, y)


class NeuralEstimator(BaseEstimator):
    """Base class of all skinfo estimators (not for direct use).

    Common parameters (same names in every estimator)
    --------------------------------------------------
    max_epochs, batch_size, lr : int, int, float
        Training length, mini-batch size and learning rate.
    optimizer : {'adam', 'adamw', 'sgd', 'rmsprop'} or torch optimizer class
    weight_decay : float
    validation_fraction : float in (0, 1) or None
        Fraction held out (stratified for classifiers) to record ``valid_loss``
        and its components each epoch. ``None``: train on everything.
    early_stopping : bool
        Stop when the validation loss has not improved for
        ``n_iter_no_change`` epochs and restore the best weights.
    n_iter_no_change : int
    device : 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'
        ``'auto'`` uses CUDA when available. A device this machine does not
        have is a ValueError at fit.
    random_state : int, RandomState or None
        Seeds weight initialization, batch order and any sampling; with an int,
        fits on CPU are reproducible.
    verbose : int
        0 is silent; > 0 prints a per-epoch table with a progress bar.
    callbacks : list of skorch callbacks or (name, callback) pairs, or None
        Deep-copied at every fit, so the parameter is never modified.
    on_nan : {'raise', 'restore'}
        What to do when training diverges (a loss becomes NaN/inf, or grows a
        thousandfold above its first batch): raise
        :class:`~skinfo.TrainingDivergedError` (naming the epoch and the loss
        component), or restore the weights of the best earlier epoch and warn
        with :class:`~skinfo.TrainingDivergedWarning`. A fit that raises
        leaves the estimator as it was before the call.
    """

    _auto: dict = {}  # {name: (value for flat rows, value for images)} of "auto" parameters
    _constraints: dict = {
        "max_epochs": [Interval(Integral, 1, 10**6)],
        "batch_size": [Interval(Integral, 1, 2**24)],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "optimizer": [Check(_is_optimizer, f"one of {sorted(OPTIMIZERS)} or an Optimizer class")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "validation_fraction": [None, Interval(Real, 0, 1, closed="neither")],
        "early_stopping": [BOOLEAN],
        "n_iter_no_change": [Interval(Integral, 1, 10**6)],
        "device": [DEVICE],
        "random_state": [RANDOM_STATE],
        "verbose": [BOOLEAN, Interval(Integral, 0, 100)],
        "callbacks": [CALLBACKS],
        "on_nan": [Options(("raise", "restore"))],
    }

    #: Fitted attributes (besides ``net_``) and what :func:`skinfo.load` accepts for each.
    _fitted_attributes: dict = {
        "n_features_in_": Interval(Integral, 1, 10**8),
        "feature_names_in_": Check(
            lambda v: isinstance(v, np.ndarray) and v.ndim == 1 and v.dtype.kind in "OU",
            "a 1-D array of str",
        ),
        "history_": ANY,  # a skorch History, type-checked by the file reader
        "n_iter_": Interval(Integral, 0, 10**6),
        "device_": DEVICE,
        "_seed": Interval(Integral, 0, 2**31),
        "image_shape_": Sizes(lengths=(3, 3)),
    }

    def __init__(
        self,
        *,
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
        on_nan="raise",
        **kwargs,
    ):
        vars(self).update(kwargs)  # routed optimizer__<option> parameters, checked at fit
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.n_iter_no_change = n_iter_no_change
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        self.on_nan = on_nan

    # ------------------------------------------------- routed optimizer options
    def get_params(self, deep: bool = True) -> dict:
        """Get parameters, the routed ``optimizer__<option>`` ones included.

        Parameters
        ----------
        deep : bool, default=True
            Also return the parameters of contained objects that are estimators.

        Returns
        -------
        params : dict
            Parameter names mapped to their values.
        """
        params = super().get_params(deep=deep)
        params.update(self._optimizer_options())
        return params

    def set_params(self, **params):
        """Set parameters, routed ``optimizer__<option>`` ones included (skorch's convention).

        Parameters
        ----------
        **params : dict
            Estimator parameters, e.g. ``lr=1e-2`` or ``optimizer__momentum=0.9``.

        Returns
        -------
        self : object
            The estimator.
        """
        valid = set(self._get_param_names())
        # routed options, and (like the constructor's) other keywords checked at fit
        extra = {
            k: params.pop(k)
            for k in list(params)
            if k.startswith("optimizer__") or k.split("__")[0] not in valid
        }
        vars(self).update(extra)
        return super().set_params(**params)

    def _optimizer_options(self) -> dict:
        """The routed ``optimizer__<option>`` parameters, as set."""
        return {k: v for k, v in vars(self).items() if k.startswith("optimizer__")}

    # ------------------------------------------------------------------ hooks
    def _build_module(
        self, X: np.ndarray, y: np.ndarray | None, sample_weight: np.ndarray | None = None
    ) -> nn.Module:
        raise NotImplementedError

    def _build_criterion(self, X: np.ndarray, y: np.ndarray | None) -> nn.Module:
        raise NotImplementedError

    def _param_groups(self) -> list:
        """skorch ``optimizer__param_groups``: ``[(pattern, {option: value}), ...]``."""
        return []

    def _extra_callbacks(self) -> list:
        return []

    def _after_fit(
        self, X: np.ndarray, y: np.ndarray | None, sample_weight: np.ndarray | None = None
    ) -> None:
        """Called after training with the float32 training data and the row weights."""

    def _check_param_combinations(self) -> None:
        """Constraints between parameters (each one alone is in ``_constraints``)."""
        if self.early_stopping and self.validation_fraction is None:
            raise ValueError("early_stopping=True needs a validation_fraction in (0, 1).")

    def _stratify(self) -> bool:
        return False

    # -------------------------------------------------------------- plumbing
    def _value(self, name: str):
        """A parameter's value, ``"auto"`` resolved from ``_auto`` for flat rows or images."""
        value = getattr(self, name)
        if not (isinstance(value, str) and value == "auto"):
            return value
        return self._auto[name][len(self._sample_shape(self.n_features_in_)) == 3]

    def _sample_shape(self, n_features: int) -> tuple[int, ...]:
        """The shape of one sample: ``input_shape``, else the fitted image shape, else flat."""
        shape = getattr(self, "input_shape", None) or getattr(self, "image_shape_", None)
        shape = (n_features,) if shape is None else tuple(int(s) for s in shape)
        if int(np.prod(shape)) != n_features:
            raise ValueError(
                f"input_shape={shape} holds {int(np.prod(shape))} values but X has "
                f"{n_features} features."
            )
        return shape

    def _fit_tensors(
        self,
        X: np.ndarray,
        y: np.ndarray | None,
        sample_weight: np.ndarray | None = None,
        *,
        partial: bool = False,
    ) -> NeuralEstimator:
        train(self, X, y, sample_weight=sample_weight, partial=partial)
        return self

    def _infer(
        self,
        X: np.ndarray,
        fn: Callable[[nn.Module, torch.Tensor], torch.Tensor],
        *,
        grad: bool = False,
        finite: bool = True,
    ) -> np.ndarray:
        """:func:`skinfo._inference.infer` on the fitted module."""
        return infer(self.net_.module_, self.net_.device, X, fn, grad=grad, finite=finite)

    def _check_input(self, X, y="no_validation", *, reset: bool):
        return check_input(self, X, y, reset=reset)

    def _validate_X(self, X) -> np.ndarray:
        check_is_fitted(self, "net_")
        return self._check_input(X, reset=False)

    def __setstate__(self, state) -> None:
        super().__setstate__(state)
        # A model trained on GPU and unpickled on a machine without CUDA: skorch has
        # already mapped the weights to the CPU; predict there too.
        device = getattr(self, "device_", None)
        if device is not None and "cuda" in str(device) and not torch.cuda.is_available():
            self.device_ = "cpu"

    def save(self, path) -> None:
        """Save the fitted estimator in the safe format (see :func:`skinfo.save`).

        Parameters
        ----------
        path : str or path-like
            Destination file.
        """
        from .persistence import save

        save(self, path)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = True  # densified when small enough, see _input.check_input
        tags.non_deterministic = False
        return tags


class NeuralClassifier(
    ClassifierMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, NeuralEstimator
):
    """Base class of the skinfo classifiers (not for direct use).

    Labels may be any hashable values (ints, strings); they are encoded to
    ``0..n_classes-1`` in the sorted order of ``classes_``. The module's
    ``log_proba`` gives the class log-probabilities; ``predict_proba`` returns
    their exponential, renormalized in float64 so each row sums to 1.

    Encoder parameters (every classifier)
    -------------------------------------
    encoder : None, nn.Module class/factory or nn.Module instance
        ``None`` builds an :class:`~skinfo.nn.MLP` with
        ``hidden_layer_sizes`` and ``activation``. A callable is called as
        ``encoder(input_shape)`` (``input_shape`` or ``(n_features,)``) and must
        return a module mapping flat rows ``(B, n_features)`` to ``(B, d)``;
        an instance is deep-copied at every fit.
    hidden_layer_sizes : tuple of int
        Hidden widths of the default MLP encoder.
    activation : str
        Activation of the default MLP encoder.
    input_shape : tuple of int or None
        Shape of one sample for image encoders, e.g. ``(1, 8, 8)``; rows of X
        are reshaped by the encoder. Its product must equal ``n_features``.
    warm_start : bool
        If True and the estimator is fitted, ``fit`` continues training the
        fitted weights and optimizer state for ``max_epochs`` more epochs
        (same classes and features required), with the current
        ``max_epochs``, ``batch_size`` and learning rates; otherwise every
        ``fit`` starts afresh.
    accelerator : accelerate.Accelerator or None
        Train through skorch's Hugging Face ``accelerate`` integration, e.g.
        data-parallel on several GPUs (run the script with ``accelerate
        launch``). ``device`` is then left to the accelerator. Needs the
        ``dist`` extra.
    compile : bool
        Evaluate the training objective through ``torch.compile`` (see the
        user guide, "Common parameters"). Validation and inference always run
        eagerly.
    """

    _constraints: dict = {
        **NeuralEstimator._constraints,
        "encoder": [None, nn.Module, Check(callable, "a callable")],
        "hidden_layer_sizes": [Sizes()],
        "activation": [Options(tuple(ACTIVATIONS))],
        "input_shape": [None, Sizes(lengths=(1, 3))],
        "warm_start": [BOOLEAN],
        "accelerator": [ANY],
        "compile": [BOOLEAN],
        "class_weight": [None, Options(("balanced",)), dict],
    }

    _fitted_attributes: dict = {
        **NeuralEstimator._fitted_attributes,
        "classes_": Check(
            lambda v: isinstance(v, np.ndarray) and v.ndim == 1 and 2 <= len(v) <= 10**5,
            "a 1-D array of 2 to 100000 labels",
        ),
        "_n_features_out": Interval(Integral, 1, 10**8),
        "feature_statistics_": Check(are_statistics, "the statistics of a feature-space score"),
    }

    #: Training rows kept for ``ood_score="knn"`` (a random subset of larger sets).
    knn_max_samples = 10_000
    #: ``k`` of ``ood_score="knn"``; None: one per 1,000 kept rows (at least 1).
    knn_n_neighbors = None

    def __init__(
        self,
        *,
        encoder=None,
        hidden_layer_sizes=(400, 200),
        activation="elu",
        input_shape=None,
        warm_start=False,
        accelerator=None,
        compile=False,
        class_weight=None,
        **training,
    ):
        self.class_weight = class_weight
        self.encoder = encoder
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.input_shape = input_shape
        self.warm_start = warm_start
        self.accelerator = accelerator
        self.compile = compile
        super().__init__(**training)

    def _stratify(self) -> bool:
        return True

    def _make_encoder(self, n_features: int) -> tuple[nn.Module, int]:
        """Build the encoder for flat rows of ``n_features``; return it and its width.

        For images (``input_shape`` or image-shaped X) the default encoder is
        :class:`~skinfo.nn.SmallCNN`, and a user's module receives the rows
        reshaped to ``(B, C, H, W)``. A module class whose constructor takes
        no argument is instantiated as it is; other callables are called with
        the input shape.
        """
        shape = self._sample_shape(n_features)
        image = len(shape) == 3
        if self.encoder is None:
            module = (
                SmallCNN(shape)
                if image
                else MLP(n_features, self.hidden_layer_sizes, self.activation)
            )
        elif isinstance(self.encoder, nn.Module):
            module = copy.deepcopy(self.encoder)
        else:
            module = self.encoder() if _takes_no_argument(self.encoder) else self.encoder(shape)
            if not isinstance(module, nn.Module):
                raise ValueError(f"encoder must build a torch nn.Module, got {type(module)}.")
        if image and not isinstance(module, (MLP, SmallCNN, ResNet)):  # ours take flat rows
            module = nn.Sequential(Reshape(shape), module)
        return module, output_width(module, n_features)

    @atomic_fit
    def fit(self, X, y, sample_weight=None):
        """Train the network on ``X`` and labels ``y``.

        A fit that raises leaves the estimator as it was before the call.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Labels (any hashable values).
        sample_weight : array-like of shape (n_samples,) or None, default=None
            Weight of each row in the loss (each term of the objective is a
            weighted mean over the rows); multiplied by ``class_weight``.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        continuing = bool(self.warm_start) and hasattr(self, "net_")
        X, y = self._check_input(X, y, reset=not continuing)
        check_classification_targets(y)
        classes, y_encoded = np.unique(y, return_inverse=True)
        if continuing and not np.array_equal(classes, self.classes_):
            raise ValueError(
                f"warm_start=True needs the classes seen before {list(self.classes_)}; "
                f"got {list(classes)}. Set warm_start=False to train afresh."
            )
        if len(classes) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes in the data, "
                f"but the data contains only one class: {classes[0]!r}."
            )
        self.classes_ = classes
        return self._train_encoded(X, y, y_encoded, sample_weight)

    @atomic_fit
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Train one epoch on the batch ``X, y``, continuing the fitted network.

        The first call builds the network for ``classes`` (all the classes
        that will ever be seen); later calls continue its weights and
        optimizer state, whatever ``warm_start`` says. A call that raises
        leaves the estimator as it was.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A batch of training data.
        y : array-like of shape (n_samples,)
            Its labels, all in ``classes``.
        classes : array-like of shape (n_classes,) or None, default=None
            Every class, required at the first call; later calls may pass it
            again (it must not change) or leave it out.
        sample_weight : array-like of shape (n_samples,) or None, default=None
            Weight of each row in the loss.

        Returns
        -------
        self : object
            The estimator.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.datasets import load_iris
        >>> from skinfo import SoftmaxClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> clf = SoftmaxClassifier(hidden_layer_sizes=(16,), random_state=0)
        >>> for batch in np.array_split(np.random.RandomState(0).permutation(150), 5):
        ...     clf = clf.partial_fit(X[batch], y[batch], classes=[0, 1, 2])
        >>> clf.n_iter_, clf.predict_proba(X[:2]).shape
        (5, (2, 3))
        """
        first = not hasattr(self, "net_")
        if first and classes is None:
            raise ValueError("classes must be passed to the first call of partial_fit.")
        X, y = self._check_input(X, y, reset=first)
        check_classification_targets(y)
        if classes is not None:
            classes = np.unique(np.asarray(classes))
            if not first and not np.array_equal(classes, self.classes_):
                raise ValueError(
                    f"classes={list(classes)} differs from the classes of the first call "
                    f"{list(self.classes_)}."
                )
            if len(classes) < 2:
                raise ValueError(f"classes must hold at least 2 classes, got {list(classes)}.")
        if self.class_weight == "balanced":
            raise ValueError(
                "class_weight='balanced' needs every class count, which partial_fit does not "
                "see; pass a dict of class weights, or use fit."
            )
        known = self.classes_ if not first else classes
        y_encoded = np.searchsorted(known, y).clip(0, len(known) - 1)
        unseen = known[y_encoded] != y
        if unseen.any():
            raise ValueError(
                f"y holds labels not in classes {list(known)}: {sorted(set(y[unseen]))[:5]}."
            )
        self.classes_ = known
        return self._train_encoded(X, y, y_encoded, sample_weight, partial=True)

    def _train_encoded(self, X, y, y_encoded, sample_weight, *, partial: bool = False):
        """Train on float32 ``X`` and encoded labels with the combined sample weights."""
        weights = check_sample_weight(sample_weight, len(X))
        if self.class_weight is not None:
            weights = (1.0 if weights is None else weights) * class_sample_weight(
                self.class_weight, self.classes_, y
            )
        self._fit_tensors(X, y_encoded.astype(np.int64), weights, partial=partial)
        module = self.net_.module_.eval()
        with torch.no_grad():
            first_row = torch.from_numpy(np.array(X[:1], np.float32)).to(self.net_.device)
            self._n_features_out = int(module.embed(first_row).shape[1])
        vars(self).pop("feature_statistics_", None)
        if self.ood_score in FEATURE_SCORES:
            self.feature_statistics_ = self._fit_feature_statistics(X, y_encoded)
        return self

    def _fit_feature_statistics(self, X: np.ndarray, y_encoded: np.ndarray) -> dict:
        """The statistics of ``ood_score`` (a feature-space score) on the training rows."""
        kind = self.ood_score
        Z = self._infer(X, lambda m, x: m.embed(x))
        options: dict = {"random_state": self._seed}
        if kind == "knn":
            options.update(max_samples=self.knn_max_samples, n_neighbors=self.knn_n_neighbors)
        elif kind == "vim":
            proba = self._infer(X, lambda m, x: torch.softmax(m.log_proba(x).double(), -1))
            options["head"] = vim_head(self.net_.module_, Z, proba, type(self).__name__)
        else:
            options["labels"] = y_encoded
        return {"score": kind, **fit_feature_statistics(kind, Z, **options)}

    def predict_log_proba(self, X) -> np.ndarray:
        """Log of :meth:`predict_proba`, computed in log space (float64).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, in the format of the training data.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Log-probabilities; columns follow ``classes_``.
        """
        return self._infer(
            self._validate_X(X), lambda m, x: torch.log_softmax(m.log_proba(x).double(), -1)
        )

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities; rows sum to 1 up to float64 rounding.

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
            self._validate_X(X), lambda m, x: torch.softmax(m.log_proba(x).double(), -1)
        )

    def predict(self, X) -> np.ndarray:
        """Most probable class label for each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, in the format of the training data.

        Returns
        -------
        ndarray of shape (n_samples,)
            ``classes_[argmax(predict_proba(X))]``.
        """
        log_proba = self.predict_log_proba(X)
        return self.classes_[np.argmax(log_proba, axis=1)]

    def transform(self, X) -> np.ndarray:
        """The learned representation (deterministic).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, in the format of the training data.

        Returns
        -------
        ndarray of shape (n_samples, d)
            The representation of each row.
        """
        return self._infer(self._validate_X(X), lambda m, x: m.embed(x))

    def score_samples(self, X) -> np.ndarray:
        """OOD normality score per row: higher means more in-distribution.

        Which score is used depends on the estimator's ``ood_score`` parameter.
        The feature-space scores (``'knn'``, ``'mahalanobis'``,
        ``'relative_mahalanobis'`` and, with a linear softmax head, ``'vim'``)
        use statistics of the training representation fitted by ``fit``
        (``feature_statistics_``; see the user guide, "OOD detection").

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, in the format of the training data.

        Returns
        -------
        ndarray of shape (n_samples,)
            The score of each row.
        """
        if self.ood_score not in FEATURE_SCORES:
            return self._infer(
                self._validate_X(X), self._score_samples_batch, grad=self._score_grad()
            )
        check_is_fitted(self)
        stats = getattr(self, "feature_statistics_", {})
        if stats.get("score") != self.ood_score:
            raise ValueError(
                f"ood_score={self.ood_score!r} scores with statistics of the training "
                "representation, fitted by fit; this estimator was fitted with another "
                "ood_score. Fit it again."
            )
        return feature_scores(self.ood_score, stats, self.transform(X))

    def _score_samples_batch(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _score_grad(self) -> bool:
        return False
