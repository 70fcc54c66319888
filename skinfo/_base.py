"""The one shared sklearn <-> skorch bridge.

:class:`NeuralEstimator` holds what every skinfo estimator shares: the common
parameters, input validation, seeding, device choice, building and fitting the
skorch net inside ``fit``, batched inference and the history.
:class:`NeuralClassifier` adds label encoding and the classifier outputs.

A concrete estimator only says *what* to train:

* ``_build_module(X, y)`` returns the ``nn.Module``;
* ``_build_criterion(X, y)`` returns the objective (see :mod:`skinfo.objectives`);
* classifier modules implement ``log_proba(x)`` (normalized log-probabilities)
  and ``embed(x)`` (the representation returned by ``transform``);
* ``_score_samples_batch(module, x)`` gives the OOD normality score of a batch.

Optional hooks: ``_param_groups()`` (per-parameter-group optimizer options),
``_extra_callbacks()`` and ``_after_fit(X, y)``.
"""

from __future__ import annotations

import contextlib
import copy
import fnmatch
import functools
import inspect
import warnings
from collections.abc import Callable, Iterator
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
)
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch.callbacks import EarlyStopping, ProgressBar
from skorch.dataset import ValidSplit
from skorch.history import History
from torch import nn

from ._net import AcceleratedSkinfoNet, SkinfoNet, TensorBatchIterator, TrainingDivergedError
from .callbacks import BestWeights, LossComponents
from .nn.encoders import MLP, output_width

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
}

#: Rows per forward pass at inference; memory does not grow with n_samples.
INFERENCE_BATCH_SIZE = 1024

#: Sparse input with at most this many values (rows x features) is densified.
MAX_DENSIFIED_SIZE = 50_000_000

_FLOAT32_MAX = float(np.finfo(np.float32).max)


class TrainingDivergedWarning(UserWarning):
    """Training diverged and the best earlier weights were restored (``on_nan='restore'``)."""


def resolve_device(device: str | torch.device) -> str:
    """Map ``'auto'`` to ``'cuda'`` when CUDA is available, else ``'cpu'``."""
    if str(device) == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device)


@contextlib.contextmanager
def torch_seed(seed: int, device: str) -> Iterator[None]:
    """Seed torch inside the block without changing the caller's global RNG state."""
    cuda = torch.device(device).type == "cuda" and torch.cuda.is_available()
    gpus = [torch.device(device).index or 0] if cuda else []
    with torch.random.fork_rng(devices=gpus):
        torch.manual_seed(seed)
        yield


def as_float32(X: np.ndarray) -> np.ndarray:
    """Cast validated input to float32, refusing values that float32 cannot hold."""
    X = np.asarray(X)
    if X.size and max(X.max(), -X.min()) > _FLOAT32_MAX:  # no temporary copy of X
        raise ValueError(
            "Input contains values too large for float32 (|x| > 3.4e38); rescale the "
            "features, e.g. with sklearn.preprocessing.StandardScaler."
        )
    return X.astype(np.float32, copy=False)


#: Optimizers with a fused update kernel (one kernel for all parameters) in torch.
_FUSED_OPTIMIZERS = (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD)


@functools.lru_cache(maxsize=32)
def _fused_works(optimizer: type[torch.optim.Optimizer], device_type: str) -> bool:
    """Whether ``optimizer(fused=True)`` steps float32 parameters on ``device_type``.

    Tried once on a one-element parameter (cached), so that a torch build or
    device without the fused kernel falls back instead of failing mid-fit.
    """
    try:
        param = nn.Parameter(torch.zeros(1, device=device_type))
        param.grad = torch.ones_like(param)
        optimizer([param], lr=1e-3, fused=True).step()
    except Exception:  # noqa: BLE001 - any failure means: use the multi-tensor update
        return False
    return True


@functools.lru_cache(maxsize=32)
def update_kernel_options(optimizer: type[torch.optim.Optimizer], device: str | None) -> dict:
    """Optimizer options for the fastest parameter update torch offers here.

    ``{'fused': True}`` for Adam, AdamW and SGD when their fused kernel runs on
    the device (CPU and CUDA in torch >= 2.4; a training step of the default
    MLP on digits takes about 12 % less time on CPU than with the multi-tensor
    update, with the same results to float32 rounding); otherwise ``{'foreach': True}``
    when the optimizer takes it (the multi-tensor update, which torch picks by
    default on GPU only but which is also faster on CPU); otherwise ``{}``.
    ``device=None`` (placement left to ``accelerate``) never uses fused.
    Cached: ``inspect`` costs ~1 ms a fit.
    """
    parameters = inspect.signature(optimizer).parameters
    if (
        device is not None
        and optimizer in _FUSED_OPTIMIZERS
        and "fused" in parameters
        and _fused_works(optimizer, torch.device(device).type)
    ):
        return {"fused": True}
    if "foreach" in parameters:
        return {"foreach": True}
    return {}


def check_head_lr(head_lr) -> None:
    """Validate a ``head_lr`` parameter: None or a positive finite float."""
    if head_lr is not None and (
        isinstance(head_lr, bool) or not isinstance(head_lr, Real) or not 0 < head_lr < np.inf
    ):
        raise ValueError(f"head_lr must be None or a positive float, got {head_lr!r}.")


def head_param_groups(head_lr: float | None, lr: float, factor: float) -> list:
    """skorch ``optimizer__param_groups`` training the module's ``head`` at its own rate.

    ``head_lr=None`` means ``factor * lr``. Used by the estimators whose output
    layer is a density or a set of class centres that must move faster than
    the encoder (``MASSClassifier``, ``OVAClassifier``).
    """
    rate = factor * float(lr) if head_lr is None else float(head_lr)
    return [("head.*", {"lr": rate})]


class NeuralEstimator(BaseEstimator):
    """Base class of all skinfo estimators (not for direct use).

    Common parameters (same names in every estimator)
    --------------------------------------------------
    encoder : None, nn.Module class/factory or nn.Module instance
        ``None`` builds an :class:`~skinfo.nn.encoders.MLP` with
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
    device : 'auto', 'cpu', 'cuda' or 'cuda:N'
        ``'auto'`` uses CUDA when available.
    random_state : int, RandomState or None
        Seeds weight initialization, batch order and any sampling; with an int,
        fits on CPU are reproducible.
    verbose : int
        0 is silent; > 0 prints a per-epoch table with a progress bar.
    callbacks : list of skorch callbacks or (name, callback) pairs, or None
        Deep-copied at every fit, so the parameter is never modified.
    warm_start : bool
        If True and the estimator is fitted, ``fit`` continues training the
        fitted weights and optimizer state for ``max_epochs`` more epochs
        (same classes and features required), with the current
        ``max_epochs``, ``batch_size`` and learning rates (``lr`` and any
        per-group rate such as ``head_lr``); otherwise every ``fit`` starts
        afresh.
    on_nan : {'raise', 'restore'}
        What to do when a loss becomes NaN/inf: raise
        :class:`~skinfo.TrainingDivergedError` (naming the epoch and the loss
        component), or restore the weights of the best finite epoch and warn
        with :class:`TrainingDivergedWarning`.
    accelerator : accelerate.Accelerator or None
        Train through skorch's Hugging Face ``accelerate`` integration, e.g.
        data-parallel on several GPUs (run the script with ``accelerate
        launch``). ``device`` is then left to the accelerator. Needs the
        ``dist`` extra.
    compile : bool
        Evaluate the training objective (the criterion, with whatever it
        computes through the module: densities, Jacobian terms, sampling)
        through ``torch.compile``, which fuses its many small tensor
        operations. Costs a one-time compilation at the first batches of each
        fit (seconds to a minute; on CPU it needs a C++ compiler) and pays off
        in long trainings. Results are reproducible with an int
        ``random_state`` but not bit-identical to ``compile=False``. If
        compilation fails, training continues eagerly with a
        ``RuntimeWarning``. Validation and inference always run eagerly.
    """

    def __init__(
        self,
        *,
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
        compile=False,
    ):
        self.encoder = encoder
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.input_shape = input_shape
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
        self.warm_start = warm_start
        self.on_nan = on_nan
        self.accelerator = accelerator
        self.compile = compile

    # ------------------------------------------------------------------ hooks
    def _build_module(self, X: np.ndarray, y: np.ndarray | None) -> nn.Module:
        raise NotImplementedError

    def _build_criterion(self, X: np.ndarray, y: np.ndarray | None) -> nn.Module:
        raise NotImplementedError

    def _param_groups(self) -> list:
        """skorch ``optimizer__param_groups``: ``[(pattern, {option: value}), ...]``."""
        return []

    def _extra_callbacks(self) -> list:
        return []

    def _after_fit(self, X: np.ndarray, y: np.ndarray | None) -> None:
        """Called after training with the float32 training data."""

    def _validate_params_extra(self) -> None:
        """Validate estimator-specific parameters at fit (never in ``__init__``)."""

    # ------------------------------------------------------------- utilities
    def _make_encoder(self, n_features: int) -> tuple[nn.Module, int]:
        """Build the encoder for flat rows of ``n_features``; return it and its width."""
        shape = (n_features,) if self.input_shape is None else tuple(self.input_shape)
        if self.encoder is None:
            module = MLP(n_features, self.hidden_layer_sizes, self.activation)
        elif isinstance(self.encoder, nn.Module):
            module = copy.deepcopy(self.encoder)
        elif callable(self.encoder):
            module = self.encoder(shape)
            if not isinstance(module, nn.Module):
                raise ValueError(
                    f"encoder(input_shape) must return a torch nn.Module, got {type(module)}."
                )
        else:
            raise ValueError(
                "encoder must be None, an nn.Module, or a callable taking the input shape; "
                f"got {self.encoder!r}."
            )
        return module, output_width(module, n_features)

    def _check_common_params(self, n_features: int) -> None:
        def positive_int(name):
            value = getattr(self, name)
            if not isinstance(value, Integral) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}.")

        for name in ("max_epochs", "batch_size", "n_iter_no_change"):
            positive_int(name)
        if not isinstance(self.lr, Real) or not self.lr > 0:
            raise ValueError(f"lr must be a positive float, got {self.lr!r}.")
        if not isinstance(self.weight_decay, Real) or self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}.")
        vf = self.validation_fraction
        if vf is not None and not (isinstance(vf, Real) and 0 < vf < 1):
            raise ValueError(f"validation_fraction must be None or in (0, 1), got {vf!r}.")
        if self.early_stopping and vf is None:
            raise ValueError("early_stopping=True needs a validation_fraction in (0, 1).")
        if not isinstance(self.compile, bool | np.bool_):
            raise ValueError(f"compile must be True or False, got {self.compile!r}.")
        if self.encoder is None:
            sizes = self.hidden_layer_sizes
            if not all(isinstance(s, Integral) and s > 0 for s in sizes):
                raise ValueError(
                    f"hidden_layer_sizes must be positive ints, got {self.hidden_layer_sizes!r}."
                )
        if self.input_shape is not None and int(np.prod(self.input_shape)) != n_features:
            raise ValueError(
                f"input_shape={tuple(self.input_shape)} holds {int(np.prod(self.input_shape))} "
                f"values but X has {n_features} features."
            )

    def _optimizer_class(self) -> type[torch.optim.Optimizer]:
        if isinstance(self.optimizer, str):
            try:
                return OPTIMIZERS[self.optimizer.lower()]
            except KeyError:
                raise ValueError(
                    f"Unknown optimizer {self.optimizer!r}; expected one of {sorted(OPTIMIZERS)} "
                    "or a torch.optim.Optimizer class."
                ) from None
        if isinstance(self.optimizer, type) and issubclass(self.optimizer, torch.optim.Optimizer):
            return self.optimizer
        raise ValueError(f"optimizer must be a name or an Optimizer class, got {self.optimizer!r}.")

    def _callbacks(self, seed: int) -> list:
        callbacks: list = [("loss_components", LossComponents())]
        if self.on_nan == "restore":
            monitor = "valid_loss" if self.validation_fraction is not None else "train_loss"
            callbacks.append(("best_weights", BestWeights(monitor=monitor)))
        if self.verbose and self.verbose > 0:
            callbacks.append(("progress_bar", ProgressBar()))
        if self.early_stopping:
            callbacks.append(
                (
                    "early_stopping",
                    EarlyStopping(
                        monitor="valid_loss", patience=self.n_iter_no_change, load_best=True
                    ),
                )
            )
        callbacks += self._extra_callbacks()
        callbacks += copy.deepcopy(list(self.callbacks or []))
        return callbacks

    def _stratify(self) -> bool:
        return False

    def _make_net(self, module: nn.Module, criterion: nn.Module, split) -> SkinfoNet:
        """The skorch net that trains ``module`` with ``criterion`` (not yet initialized)."""
        if self.accelerator is not None:
            # accelerate shards torch DataLoaders across processes and places the
            # data itself: skorch's default data path, and no device of our own.
            iterators = {}
            net_class, extra = AcceleratedSkinfoNet, {"accelerator": self.accelerator}
            device = None
        else:
            iterators = dict(
                iterator_train=TensorBatchIterator,
                iterator_train__shuffle=True,
                iterator_train__seed=self._seed,
                iterator_valid=TensorBatchIterator,
            )
            net_class, extra, device = SkinfoNet, {}, self.device_
            if not self.verbose:
                # skorch's PrintLog formats a table every epoch even when it prints nothing
                extra["callbacks__print_log"] = None
        optimizer = self._optimizer_class()
        for option, value in update_kernel_options(optimizer, device).items():
            extra[f"optimizer__{option}"] = value
        net = net_class(
            module=module,
            criterion=criterion,
            optimizer=optimizer,
            optimizer__weight_decay=self.weight_decay,
            optimizer__param_groups=self._param_groups(),
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            train_split=split,
            callbacks=self._callbacks(self._seed),
            device=device,
            verbose=int(self.verbose or 0),
            **iterators,
            **extra,
        )
        net.compile_objective = bool(self.compile)
        self._applied_rates = self._learning_rates()
        return net

    def _fit_tensors(self, X: np.ndarray, y: np.ndarray | None) -> NeuralEstimator:
        """Build the module, criterion and skorch net, and train on float32 ``X``.

        With ``warm_start=True`` and a fitted net, training continues from the
        fitted weights (and optimizer state) for ``max_epochs`` more epochs.
        A ``KeyboardInterrupt`` stops training and keeps the model and the
        history of the completed epochs. A diverging loss raises
        :class:`TrainingDivergedError`, or with ``on_nan='restore'`` restores the
        weights of the best finite epoch and warns.
        """
        self._check_common_params(X.shape[1])
        self._validate_params_extra()
        if self.on_nan not in ("raise", "restore"):
            raise ValueError(f"on_nan must be 'raise' or 'restore', got {self.on_nan!r}.")
        continuing = bool(self.warm_start) and hasattr(self, "net_")
        if not continuing:
            self.device_ = resolve_device(self.device)
            self._seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        X_t = torch.from_numpy(np.array(X, dtype=np.float32, copy=True))
        y_t = None if y is None else torch.from_numpy(np.asarray(y))
        previous_epochs = len(self.net_.history) if continuing else 0
        with torch_seed(self._seed + previous_epochs, self.device_):
            if continuing:
                net = self.net_
                # a fresh batch order for the new epochs (set directly: skorch's set_params
                # would re-initialize an initialized net)
                net.iterator_train__seed = self._seed + previous_epochs
                net.compile_objective = bool(self.compile)
                # the current training settings, as a fresh fit would use them
                net.max_epochs, net.batch_size = self.max_epochs, self.batch_size
                if self._learning_rates() != getattr(self, "_applied_rates", None):
                    self._sync_learning_rates(net)
            else:
                split = None
                if self.validation_fraction is not None:
                    split = ValidSplit(
                        self.validation_fraction,
                        stratified=self._stratify(),
                        random_state=self._seed,
                    )
                module = self._build_module(X, y)
                net = self._make_net(module, self._build_criterion(X, y), split)
                net.initialize()
            self.net_ = net
            try:
                net.partial_fit(X_t, y_t)
            except TrainingDivergedError as error:
                if self.on_nan != "restore" or not self._restore_best(error):
                    raise
            finally:
                # an interrupted or failed epoch has no train_loss: keep completed epochs only
                self.history_ = History(
                    [
                        {k: v for k, v in row.items() if k != "batches"}
                        for row in net.history
                        if "train_loss" in row
                    ]
                )
                self.n_iter_ = len(self.history_)
            self._after_fit(X, y)
        return self

    def _learning_rates(self) -> tuple:
        """``lr`` and the per-group rates of :meth:`_param_groups`, as set now."""
        groups = tuple((pattern, options.get("lr")) for pattern, options in self._param_groups())
        return (self.lr, groups)

    def _sync_learning_rates(self, net: SkinfoNet) -> None:
        """Set the learning rate of every optimizer parameter group from ``lr`` and
        :meth:`_param_groups`, keeping the optimizer's state.

        Called by a warm start when those rates were changed since the last fit
        (``set_params(lr=...)``); otherwise the rates are left alone, so a
        learning-rate schedule (e.g. skorch's ``LRScheduler``) goes on from
        where it stopped. ``initial_lr``, where a scheduler stored it, is reset
        too, so that a new schedule starts from the new rate.
        """
        patterns = self._param_groups()
        names = {id(p): name for name, p in net.module_.named_parameters()}
        for group in net.optimizer_.param_groups:
            name = names.get(id(group["params"][0]), "")
            rate = self.lr
            for pattern, options in patterns:
                if fnmatch.fnmatch(name, pattern):
                    rate = options.get("lr", rate)
                    break
            group["lr"] = rate
            if "initial_lr" in group:
                group["initial_lr"] = rate
        net.lr = self.lr
        self._applied_rates = self._learning_rates()

    def _restore_best(self, error: TrainingDivergedError) -> bool:
        """Load the weights of the best finite epoch after a divergence; False if none."""
        best = dict(self.net_.callbacks_).get("best_weights")
        if best is None or best.state is None:
            return False
        self.net_.module_.load_state_dict(best.state)
        warnings.warn(
            f"{error} The weights of epoch {best.epoch} (the best finite "
            f"{best.monitor}) were restored (on_nan='restore').",
            TrainingDivergedWarning,
            stacklevel=3,
        )
        return True

    def _infer(
        self,
        X: np.ndarray,
        fn: Callable[[nn.Module, torch.Tensor], torch.Tensor],
        *,
        grad: bool = False,
    ) -> np.ndarray:
        """Apply ``fn(module, x_batch)`` to float32 ``X`` batch-wise; float64 numpy out.

        Runs in evaluation mode, under ``torch.no_grad()`` unless ``grad`` is
        True (for scores that differentiate with respect to the input), and
        with torch seeded from the fitted seed, so stochastic outputs are
        reproducible call after call.
        """
        module = self.net_.module_
        module.eval()
        device = self.net_.device
        size = INFERENCE_BATCH_SIZE
        if not (X.flags.c_contiguous and X.flags.writeable):
            X = np.array(X, dtype=np.float32, order="C")  # torch needs a writable buffer
        result = None
        grad_mode = torch.enable_grad() if grad else torch.no_grad()
        with torch_seed(self._seed, self.device_), grad_mode:
            for start in range(0, X.shape[0], size):
                rows = X[start : start + size]
                # Every forward pass sees exactly `size` rows (the last batch is
                # zero-padded): float32 matrix kernels then round each row the same
                # way whatever the batch, so outputs do not depend on which other
                # rows are predicted with it (sklearn's subset-invariance).
                if len(rows) < size:
                    padded = np.zeros((size, X.shape[1]), dtype=np.float32)
                    padded[: len(rows)] = rows
                    rows = padded
                out = fn(module, torch.from_numpy(rows).to(device))[: min(size, len(X) - start)]
                out = out.detach().to("cpu", torch.float64).numpy()
                if result is None:  # one output array, filled in place: memory stays flat
                    result = np.empty((len(X), *out.shape[1:]), dtype=np.float64)
                result[start : start + len(out)] = out
        if np.isnan(result).any():
            bad = int(np.isnan(result).reshape(len(result), -1).any(axis=1).sum())
            raise ValueError(
                f"The model gave NaN for {bad} of {len(result)} rows. Inputs far outside "
                "the training range (e.g. |x| ~ 1e30) overflow float32; rescale them "
                "like the training data."
            )
        return result

    def _check_input(self, X, y="no_validation", *, reset: bool):
        """sklearn validation of X (and y), then float32; sparse X is densified if small.

        Returns ``X``, or ``(X, y)`` when ``y`` is passed (``None`` included, so
        that a missing target gets sklearn's error).
        """
        kwargs = dict(reset=reset, dtype=[np.float64, np.float32], accept_sparse=("csr", "csc"))
        no_y = isinstance(y, str) and y == "no_validation"
        if no_y:
            X = validate_data(self, X, **kwargs)
        else:
            X, y = validate_data(self, X, y, **kwargs)
        if sp.issparse(X):
            if X.shape[0] * X.shape[1] > MAX_DENSIFIED_SIZE:
                raise ValueError(
                    f"Sparse input of shape {X.shape} is too large to densify "
                    f"(> {MAX_DENSIFIED_SIZE:.0e} values); the networks need dense input. "
                    "Reduce it first, e.g. with sklearn.decomposition.TruncatedSVD."
                )
            X = X.toarray()
        X = as_float32(X)
        return X if no_y else (X, y)

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

        Parameters are stored as JSON and weights as a torch state dict;
        :func:`skinfo.load` reads the file without running code from it.
        """
        from .persistence import save

        save(self, path)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = True  # densified when small enough, see _check_input
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
    """

    def _stratify(self) -> bool:
        return True

    def fit(self, X, y):
        """Train the network on ``X`` (n_samples, n_features) and labels ``y``.

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
        self.classes_ = classes
        if len(self.classes_) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes in the data, "
                f"but the data contains only one class: {self.classes_[0]!r}."
            )
        self._fit_tensors(X, y_encoded.astype(np.int64))
        module = self.net_.module_.eval()
        with torch.no_grad():
            first_row = torch.from_numpy(np.array(X[:1], np.float32)).to(self.net_.device)
            self._n_features_out = int(module.embed(first_row).shape[1])
        return self

    def predict_log_proba(self, X) -> np.ndarray:
        """Log of :meth:`predict_proba`, computed in log space (float64)."""
        return self._infer(
            self._validate_X(X), lambda m, x: torch.log_softmax(m.log_proba(x).double(), -1)
        )

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes); rows sum to 1.

        Columns follow ``classes_``. The module's log-probabilities are
        renormalized in float64, so rows sum to 1 up to float64 rounding.
        """
        return self._infer(
            self._validate_X(X), lambda m, x: torch.softmax(m.log_proba(x).double(), -1)
        )

    def predict(self, X) -> np.ndarray:
        """Most probable class label for each row (``classes_[argmax(predict_proba)]``)."""
        log_proba = self.predict_log_proba(X)
        return self.classes_[np.argmax(log_proba, axis=1)]

    def transform(self, X) -> np.ndarray:
        """The learned representation (deterministic), shape (n_samples, d)."""
        return self._infer(self._validate_X(X), lambda m, x: m.embed(x))

    def score_samples(self, X) -> np.ndarray:
        """OOD normality score per row: higher means more in-distribution.

        Which score is used depends on the estimator's ``ood_score`` parameter.
        """
        return self._infer(self._validate_X(X), self._score_samples_batch, grad=self._score_grad())

    def _score_samples_batch(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _score_grad(self) -> bool:
        return False
