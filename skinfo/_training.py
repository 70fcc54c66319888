"""Building and training the skorch net of an estimator.

:func:`build_net` turns an estimator's parameters into a :class:`SkinfoNet`
(optimizer and its per-group learning rates, callbacks, batch iterators,
validation split); :func:`train` fits it, continuing a fitted net under
``warm_start``, restoring the best weights under ``on_nan='restore'``;
:func:`atomic_fit` makes a ``fit`` that raises leave the estimator exactly as
it was before the call.
"""

from __future__ import annotations

import contextlib
import copy
import fnmatch
import functools
import inspect
import re
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from sklearn.utils import check_random_state
from skorch.callbacks import EarlyStopping, ProgressBar
from skorch.dataset import ValidSplit
from skorch.history import History
from torch import nn

from ._net import AcceleratedSkinfoNet, SkinfoNet, TensorBatchIterator, TrainingDivergedError
from ._params import check_params, resolve_device
from .callbacks import BestWeights, DivergenceCheck, LossComponents, ValidAccuracy

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
}


class TrainingDivergedWarning(UserWarning):
    """Training diverged and the best earlier weights were restored (``on_nan='restore'``)."""


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
    the device; otherwise ``{'foreach': True}`` when the optimizer takes it;
    otherwise ``{}``. ``device=None`` (placement left to ``accelerate``) never
    uses fused. Cached: ``inspect`` costs ~1 ms a fit.
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


def optimizer_class(optimizer: str | type) -> type[torch.optim.Optimizer]:
    """The optimizer class an ``optimizer`` parameter names (already validated)."""
    return OPTIMIZERS[optimizer.lower()] if isinstance(optimizer, str) else optimizer


def optimizer_options(est: Any, optimizer: type[torch.optim.Optimizer]) -> dict:
    """skorch ``optimizer__*`` arguments: ``weight_decay`` and the routed options.

    Raises
    ------
    ValueError
        For an option the optimizer does not take, or one that another
        parameter already sets (``lr``, the learning-rate groups, ``weight_decay``).
    """
    routed = est._optimizer_options()
    accepted = set(inspect.signature(optimizer).parameters) - {"params"}
    for name in routed:
        option = name.removeprefix("optimizer__")
        if option in ("lr", "param_groups"):
            raise ValueError(
                f"{name} is set by the estimator's learning-rate parameters; use lr"
                + (" and head_lr" if "head_lr" in est.get_params(deep=False) else "")
                + " instead."
            )
        if option not in accepted:
            raise ValueError(
                f"{name}: {optimizer.__name__} takes no option {option!r}; it takes "
                f"{', '.join(sorted(accepted - {'lr'}))}."
            )
    if "optimizer__weight_decay" in routed and est.weight_decay:
        raise ValueError("Set either weight_decay or optimizer__weight_decay, not both.")
    return {"optimizer__weight_decay": est.weight_decay, **routed}


def head_param_groups(
    head_lr: float | None, lr: float, factor: float, pattern: str = "head.*"
) -> list:
    """skorch ``optimizer__param_groups`` training the module's head at its own rate.

    ``head_lr=None`` means ``factor * lr``. Used by the estimators whose output
    layer is a density, a set of class centres or class means that must move
    faster than the rest (``MASSClassifier``, ``OVAClassifier``,
    ``IBINNClassifier``); ``pattern`` selects the head's parameters by name.
    """
    rate = factor * float(lr) if head_lr is None else float(head_lr)
    return [(pattern, {"lr": rate})]


def _callbacks(est: Any) -> list:
    callbacks: list = [("loss_components", LossComponents()), ("divergence", DivergenceCheck())]
    if est.on_nan == "restore":
        monitor = "valid_loss" if est.validation_fraction is not None else "train_loss"
        callbacks.append(("best_weights", BestWeights(monitor=monitor)))
    if est.validation_fraction is not None and est._stratify():  # classifiers
        callbacks.append(("valid_acc", ValidAccuracy()))
    if est.verbose and est.verbose > 0 and sys.stdout.isatty():
        callbacks.append(("progress_bar", ProgressBar()))  # one line per epoch elsewhere
    if est.early_stopping:
        stopping = EarlyStopping(
            monitor="valid_loss", patience=est.n_iter_no_change, load_best=True
        )
        callbacks.append(("early_stopping", stopping))
    callbacks += est._extra_callbacks()
    callbacks += copy.deepcopy(list(est.callbacks or []))
    return callbacks


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def print_plain(text: str) -> None:
    """``print`` without ANSI colour codes (skorch's epoch table, written to a log)."""
    print(_ANSI.sub("", text), flush=True)


def build_net(est: Any, module: nn.Module, criterion: nn.Module, split: Any) -> SkinfoNet:
    """The skorch net that trains ``module`` with ``criterion`` (not yet initialized)."""
    accelerator = getattr(est, "accelerator", None)
    if accelerator is not None:
        # accelerate shards torch DataLoaders across processes and places the
        # data itself: skorch's default data path, and no device of our own.
        iterators: dict = {}
        net_class, extra, device = AcceleratedSkinfoNet, {"accelerator": accelerator}, None
    else:
        iterators = dict(
            iterator_train=TensorBatchIterator,
            iterator_train__shuffle=True,
            iterator_train__seed=est._seed,
            iterator_valid=TensorBatchIterator,
        )
        net_class, extra, device = SkinfoNet, {}, est.device_
        if not est.verbose:
            # skorch's PrintLog formats a table every epoch even when it prints nothing
            extra["callbacks__print_log"] = None
        elif not sys.stdout.isatty():
            extra["callbacks__print_log__sink"] = print_plain  # no colour codes in logs
    optimizer = optimizer_class(est.optimizer)
    for option, value in update_kernel_options(optimizer, device).items():
        extra[f"optimizer__{option}"] = value
    extra.update(optimizer_options(est, optimizer))
    net = net_class(
        module=module,
        criterion=criterion,
        optimizer=optimizer,
        optimizer__param_groups=est._param_groups(),
        lr=est._value("lr"),
        max_epochs=est._value("max_epochs"),
        batch_size=est.batch_size,
        train_split=split,
        callbacks=_callbacks(est),
        device=device,
        verbose=int(est.verbose or 0),
        **iterators,
        **extra,
    )
    net.compile_objective = bool(getattr(est, "compile", False))
    est._applied_rates = learning_rates(est)
    return net


def learning_rates(est: Any) -> tuple:
    """``lr`` and the per-group rates of ``_param_groups``, as set now."""
    groups = tuple((pattern, options.get("lr")) for pattern, options in est._param_groups())
    return (est._value("lr"), groups)


def sync_learning_rates(est: Any, net: SkinfoNet) -> None:
    """Set every optimizer group's rate from ``lr`` and ``_param_groups``, keeping its state.

    Called by a warm start when those rates were changed since the last fit
    (``set_params(lr=...)``); otherwise the rates are left alone, so a
    learning-rate schedule (e.g. skorch's ``LRScheduler``) goes on from where
    it stopped. ``initial_lr``, where a scheduler stored it, is reset too, so
    that a new schedule starts from the new rate.
    """
    patterns, lr = est._param_groups(), est._value("lr")
    names = {id(p): name for name, p in net.module_.named_parameters()}
    for group in net.optimizer_.param_groups:
        name = names.get(id(group["params"][0]), "")
        rate = next(
            (opts.get("lr", lr) for pat, opts in patterns if fnmatch.fnmatch(name, pat)),
            lr,
        )
        group["lr"] = rate
        if "initial_lr" in group:
            group["initial_lr"] = rate
    net.lr = lr
    est._applied_rates = learning_rates(est)


def _restore_best(net: SkinfoNet, error: TrainingDivergedError) -> bool:
    """Load the weights of the best finite epoch after a divergence; False if none."""
    best = dict(net.callbacks_).get("best_weights")
    if best is None or best.state is None:
        return False
    net.module_.load_state_dict(best.state)
    warnings.warn(
        f"{error} The weights of epoch {best.epoch} (the best finite {best.monitor}) were "
        "restored (on_nan='restore').",
        TrainingDivergedWarning,
        stacklevel=4,
    )
    return True


def _completed_epochs(net: SkinfoNet) -> History:
    """The history rows of the completed epochs, without per-batch entries."""
    rows = [
        {k: v for k, v in r.items() if k != "batches"} for r in net.history if "train_loss" in r
    ]
    return History(rows)


def train(
    est: Any,
    X: np.ndarray,
    y: np.ndarray | None,
    *,
    sample_weight: np.ndarray | None = None,
    partial: bool = False,
) -> None:
    """Build (or, under ``warm_start``, continue) the estimator's net and train it on ``X``.

    ``sample_weight`` (already validated, float, one per row) weighs each
    row's loss. ``partial=True`` trains one epoch, continuing a fitted net
    (``partial_fit``). Sets ``net_``, ``history_``, ``n_iter_``, ``device_``
    and the seed. A
    ``KeyboardInterrupt`` stops training and keeps the completed epochs. A
    diverging loss raises :class:`TrainingDivergedError` (which carries the
    completed epochs in its ``history``), or with ``on_nan='restore'``
    restores the weights of the best finite epoch and warns.
    """
    check_params(est)
    continuing = hasattr(est, "net_") and (partial or bool(getattr(est, "warm_start", False)))
    if sample_weight is not None and getattr(est, "accelerator", None) is not None:
        raise ValueError("sample_weight is not supported with an accelerator.")
    if not continuing:
        est.device_ = resolve_device(est.device)
        est._seed = int(check_random_state(est.random_state).randint(np.iinfo(np.int32).max))
    X_t = torch.from_numpy(np.array(X, dtype=np.float32, copy=True))
    y_t = None if y is None else torch.from_numpy(np.asarray(y))
    X_in = X_t
    if sample_weight is not None:
        X_in = {"X": X_t, "sample_weight": torch.as_tensor(sample_weight, dtype=torch.float32)}
    previous_epochs = len(est.net_.history) if continuing else 0
    with torch_seed(est._seed + previous_epochs, est.device_):
        if continuing:
            net = est.net_
            # a fresh batch order for the new epochs (set directly: skorch's set_params
            # would re-initialize an initialized net)
            net.iterator_train__seed = est._seed + previous_epochs
            net.compile_objective = bool(getattr(est, "compile", False))
            net.max_epochs, net.batch_size = est._value("max_epochs"), est.batch_size
            if learning_rates(est) != getattr(est, "_applied_rates", None):
                sync_learning_rates(est, net)
        else:
            split = None
            if est.validation_fraction is not None:
                split = ValidSplit(
                    est.validation_fraction, stratified=est._stratify(), random_state=est._seed
                )
            module = est._build_module(X, y, sample_weight)
            net = build_net(est, module, est._build_criterion(X, y), split)
            net.initialize()
        if partial:
            net.max_epochs = 1
        est.net_ = net
        try:
            net.partial_fit(X_in, y_t)
        except TrainingDivergedError as error:
            if est.on_nan != "restore" or not _restore_best(net, error):
                error.history = _completed_epochs(net)
                raise
        est.history_ = _completed_epochs(net)
        est.n_iter_ = len(est.history_)
        if getattr(net, "interrupted_", False):
            warnings.warn(
                f"Training was interrupted (KeyboardInterrupt) after {est.n_iter_} completed "
                "epoch(s); the model of the last completed epoch is kept.",
                UserWarning,
                stacklevel=4,
            )
        est._after_fit(X, y, sample_weight)


def atomic_fit(fit: Callable) -> Callable:
    """Make a ``fit`` method leave the estimator exactly as it was when it raises.

    The estimator's attributes are restored, and under ``warm_start`` (where
    training continues the fitted net in place) the net too, from a copy
    taken before training: a failed refit never leaves a half-trained model
    behind, nor a half-fitted estimator.
    """

    @functools.wraps(fit)
    def wrapper(self, *args, **kwargs):
        before = dict(vars(self))
        net = before.get("net_")
        backup = (
            copy.deepcopy(net) if net is not None and getattr(self, "warm_start", False) else None
        )
        try:
            return fit(self, *args, **kwargs)
        except BaseException:
            vars(self).clear()
            vars(self).update(before)
            if backup is not None:
                self.net_ = backup
            raise

    return wrapper


@contextlib.contextmanager
def torch_seed(seed: int, device: str) -> Iterator[None]:
    """Seed torch inside the block without changing the caller's RNG state afterwards."""
    cuda = torch.device(device).type == "cuda" and torch.cuda.is_available()
    gpus = [torch.device(device).index or 0] if cuda else []
    with torch.random.fork_rng(devices=gpus):
        torch.manual_seed(seed)
        yield
