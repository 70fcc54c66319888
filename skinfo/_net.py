"""The skorch side of the bridge: a fast batch iterator and the training net.

Two small additions to skorch, nothing else:

* :class:`TensorBatchIterator` slices whole tensors per batch instead of
  collating rows one by one through a per-row ``Dataset`` (skorch's default
  data path), which removes most of skorch's overhead over a hand-written
  loop.
* :class:`SkinfoNet` lets a criterion see the input batch and the module,
  records every named loss component of every batch in the history, stops
  training with :class:`TrainingDivergedError` as soon as a loss becomes
  NaN or infinite, and can evaluate the training objective through
  ``torch.compile`` (``compile_objective``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import EarlyStopping
from skorch.hf import AccelerateMixin
from torch.utils.data import Subset


class TrainingDivergedError(FloatingPointError, ValueError):
    """Raised when a training loss becomes NaN or infinite.

    The message names the epoch, the batch and the loss components that were
    not finite, so that the user knows which term of the objective diverged.
    It derives from ``ValueError`` (sklearn's error for bad fits) and from
    ``FloatingPointError``.
    """


def _dataset_arrays(dataset) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """The (X, y, sample_weight) tensors behind a skorch ``Dataset`` or a ``Subset`` of one.

    ``X`` is a tensor, or a dict ``{"X": ..., "sample_weight": ...}`` when the
    estimator was fitted with sample weights.
    """
    indices = None
    if isinstance(dataset, Subset):
        indices = torch.as_tensor(np.asarray(dataset.indices), dtype=torch.long)
        dataset = dataset.dataset
    X, weight = dataset.X, None
    if isinstance(X, dict):
        X, weight = X["X"], torch.as_tensor(X["sample_weight"])
    X = torch.as_tensor(X)
    y = None if dataset.y is None else torch.as_tensor(dataset.y)
    if indices is not None:
        X = X[indices]
        y = None if y is None else y[indices]
        weight = None if weight is None else weight[indices]
    return X, y, weight


def _dataset_tensors(dataset) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The (X, y) tensors behind a skorch ``Dataset`` or a ``Subset`` of one."""
    return _dataset_arrays(dataset)[:2]


class TensorBatchIterator:
    """Iterate over mini-batches by slicing tensors, one slice per batch.

    With sample weights, each batch is ``(X, (y, sample_weight))``; the
    criterion receives the weights as ``sample_weight``.

    Parameters
    ----------
    dataset : skorch.dataset.Dataset or torch.utils.data.Subset of one
        Holds ``X`` (and optionally ``y``) as tensors or arrays; ``X`` may be a
        dict ``{"X": ..., "sample_weight": ...}``.
    batch_size : int
        Rows per batch; the last batch may be smaller.
    shuffle : bool, default=False
        Draw a new permutation every epoch.
    seed : int or None, default=None
        Seed of the permutation generator; the same seed gives the same batches.
    """

    def __init__(
        self, dataset, batch_size: int, shuffle: bool = False, seed: int | None = None
    ) -> None:
        self.X, self.y, self.sample_weight = _dataset_arrays(dataset)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.generator = torch.Generator()
        if seed is not None:
            self.generator.manual_seed(int(seed))
        else:
            self.generator.seed()

    def __len__(self) -> int:
        return (len(self.X) + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        n = len(self.X)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            if order is None:
                rows = slice(start, start + self.batch_size)
            else:
                rows = order[start : start + self.batch_size]
            y = None if self.y is None else self.y[rows]
            if self.sample_weight is None:
                yield self.X[rows], y
            else:
                yield self.X[rows], (y, self.sample_weight[rows])


def compiled_objective(criterion: Callable) -> Callable:
    """``criterion`` through ``torch.compile``, as ``compile=True`` trains it.

    ``dynamic=False``: shapes and float attributes (``beta``,
    ``jacobian_fraction``) are constants of the graph, so each configuration
    and batch size (the full and the last batch) is a graph of its own.
    Data-dependent Python control flow in the objective (e.g. the MASS Gram
    route's precision check) splits it into several graphs, run in turn.
    """
    return torch.compile(criterion, dynamic=False)


class SkinfoNet(NeuralNet):
    """skorch ``NeuralNet`` whose criterion returns named loss components.

    The criterion is called as ``criterion(output, y, X=X, module=module)`` and
    returns a dict with the total ``"loss"`` (a scalar tensor to minimize) and
    any number of other scalar entries (detached or not). Every entry other
    than ``"loss"`` is recorded per batch as ``"train_<name>"`` or
    ``"valid_<name>"``; :class:`skinfo.callbacks.LossComponents` turns them
    into per-epoch averages.
    """

    def _set_training(self, training=True):
        # skorch walks every submodule before each batch; only do it when the mode changes
        module = getattr(self, "module_", None)
        if module is not None and module.training == training:
            return
        super()._set_training(training)

    #: Evaluate the training objective through ``torch.compile`` (set by the estimator).
    compile_objective = False

    def _objective(self, training: bool):
        """The criterion to call: its ``torch.compile``-d version for training batches
        when ``compile_objective`` is set, else the criterion itself.

        The compiled callable is built on first use and rebuilt when the
        criterion changes; it is not pickled (see :meth:`__getstate__`).
        Validation batches and inference always run eagerly.
        """
        if not (training and self.compile_objective):
            return self.criterion_
        cached = self.__dict__.get("_compiled_objective")
        if cached is None or cached[0] is not self.criterion_:
            cached = (self.criterion_, compiled_objective(self.criterion_))
            self.__dict__["_compiled_objective"] = cached
        return cached[1]

    def train_step_single(self, batch, **fit_params):
        """skorch's training step; with a compiled objective, a compiler failure (in the
        forward or, lazily compiled, the backward graph) falls back to eager training
        and the step is redone eagerly, with a ``RuntimeWarning`` naming the cause."""
        if not (self.compile_objective and self.module_.training):
            return super().train_step_single(batch, **fit_params)
        try:
            return super().train_step_single(batch, **fit_params)
        except Exception as error:  # noqa: BLE001 - a compiler failure: train eagerly
            # an error of the objective itself raises again from the eager step below
            self.compile_objective = False
            self.__dict__.pop("_compiled_objective", None)
            self.optimizer_.zero_grad()
            result = super().train_step_single(batch, **fit_params)
            lines = [line.strip() for line in str(error).splitlines() if line.strip()]
            summary = " ".join(lines[:2] if lines and lines[0].endswith(":") else lines[:1])
            warnings.warn(
                f"torch.compile of the training objective failed ({type(error).__name__}: "
                f"{summary}); training continues without compilation (compile=False).",
                RuntimeWarning,
                stacklevel=2,
            )
            return result

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        """skorch's loop; a user's ``KeyboardInterrupt`` (Ctrl-C) is noted
        (``interrupted_``) before skorch stops training and keeps the completed epochs.

        skorch's ``EarlyStopping`` stops training by raising ``KeyboardInterrupt``
        too, once its patience is used up; that stop is not an interruption.
        """
        self.interrupted_ = False
        try:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        except KeyboardInterrupt:
            self.interrupted_ = not any(
                isinstance(cb, EarlyStopping) and cb.misses_ == cb.patience
                for _, cb in getattr(self, "callbacks_", [])
            )
            raise

    def predict_proba(self, X):
        """Class probabilities from the module's ``log_proba`` (evaluation mode, no grad).

        Lets skorch's scoring callbacks (``EpochScoring("accuracy")``, sklearn scorer
        names) see probabilities and labels, not the module's raw training output.
        """
        if not hasattr(self.module_, "log_proba"):
            return super().predict_proba(X)
        self.module_.eval()
        rows = []
        with torch.no_grad():
            for Xi in self.get_iterator(self.get_dataset(X), training=False):
                Xi = Xi[0] if isinstance(Xi, tuple | list) else Xi
                log_p = self.module_.log_proba(torch.as_tensor(Xi).to(self.device))
                rows.append(torch.softmax(log_p.double(), -1).cpu())
        return torch.cat(rows).numpy()

    def predict(self, X):
        """Encoded class labels (``argmax`` of :meth:`predict_proba`)."""
        return self.predict_proba(X).argmax(axis=1)

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_compiled_objective", None)  # compiled code is rebuilt after loading
        return state

    def get_loss(self, y_pred, y_true, X=None, training=False):
        weights = {}
        if isinstance(y_true, tuple):  # (y, sample_weight) from TensorBatchIterator
            y_true, weights["sample_weight"] = y_true
        terms = self._objective(training)(y_pred, y_true, X=X, module=self.module_, **weights)
        loss = terms["loss"]
        prefix = "train" if training else "valid"
        values, converted = {}, {}
        for name, value in terms.items():
            if name != "loss":  # one conversion (a synchronization on GPUs) per distinct tensor
                key = id(value)
                if key not in converted:
                    converted[key] = float(value)
                values[name] = converted[key]
        if values:  # what History.record_batch does per entry, with one history lookup
            batch = self.history[-1]["batches"][-1]
            for name, value in values.items():
                batch[f"{prefix}_{name}"] = value
        if not bool(torch.isfinite(loss.detach()).all()):
            bad = [name for name, value in values.items() if not np.isfinite(value)]
            where = f"in the loss component(s) {bad}" if bad else "in the total loss"
            n_batch = len(self.history[-1]["batches"]) if len(self.history) else 0
            raise TrainingDivergedError(
                f"Training diverged at epoch {len(self.history)}, batch {n_batch} "
                f"({prefix}): a non-finite value appeared {where}; total loss = "
                f"{float(loss.detach())}. Components: {values}. Try a smaller lr, "
                "standardized inputs, or a smaller weight on the diverging term."
            )
        return loss


class AcceleratedSkinfoNet(AccelerateMixin, SkinfoNet):
    """``SkinfoNet`` with skorch's ``accelerate`` integration (data-parallel training).

    Used when an estimator gets ``accelerator=accelerate.Accelerator(...)``;
    launch the script with ``accelerate launch`` to train on several GPUs.
    skorch imports ``accelerate`` only through the accelerator object, so this
    class costs nothing when unused.
    """
