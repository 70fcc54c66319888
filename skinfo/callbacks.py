"""skorch callbacks used by the skinfo estimators.

:class:`LossComponents` turns the per-batch loss components that
:class:`skinfo._net.SkinfoNet` records into per-epoch averages, so that
``estimator.history_[:, "train_<component>"]`` gives one value per epoch.
"""

from __future__ import annotations

import copy

import numpy as np
from skorch.callbacks import Callback

_SKORCH_KEYS = {"train_loss", "valid_loss", "train_batch_size", "valid_batch_size"}


class LossComponents(Callback):
    """Average every recorded loss component over the batches of an epoch.

    Batch entries named ``train_<name>`` / ``valid_<name>`` (other than skorch's
    own ``*_loss`` and ``*_batch_size``) are averaged with the batch sizes as
    weights, i.e. the per-sample mean over the epoch, and written to the epoch
    row of the history under the same name.

    Examples
    --------
    >>> from skorch.history import History
    >>> h = History()
    >>> h.new_epoch()
    >>> for size, ce in [(4, 1.0), (2, 4.0)]:
    ...     h.new_batch()
    ...     h.record_batch("train_batch_size", size)
    ...     h.record_batch("train_ce", ce)
    >>> class _Net:
    ...     history = h
    >>> LossComponents().on_epoch_end(_Net())
    >>> h[-1, "train_ce"]
    2.0
    """

    def on_epoch_end(self, net, **kwargs) -> None:
        batches = net.history[-1]["batches"]
        for prefix in ("train", "valid"):
            sizes_key = f"{prefix}_batch_size"
            names = {
                key
                for batch in batches
                for key in batch
                if key.startswith(prefix + "_") and key not in _SKORCH_KEYS
            }
            for name in sorted(names):
                rows = [(b[sizes_key], b[name]) for b in batches if name in b and sizes_key in b]
                if not rows:
                    continue
                weights, values = np.asarray(rows, dtype=np.float64).T
                net.history.record(name, float(np.average(values, weights=weights)))


class BestWeights(Callback):
    """Keep an in-memory copy of the weights of the epoch with the best finite score.

    Used by ``on_nan='restore'``: when a later epoch diverges, the estimator
    loads ``state`` back. Costs one copy of the weights per improving epoch.

    Parameters
    ----------
    monitor : str, default="train_loss"
        History key to minimize.
    """

    def __init__(self, monitor: str = "train_loss") -> None:
        self.monitor = monitor

    def initialize(self):
        self.state = None
        self.epoch = None
        self.best = np.inf
        return self

    def on_epoch_end(self, net, **kwargs) -> None:
        score = net.history[-1].get(self.monitor, np.nan)
        if np.isfinite(score) and score < self.best:
            self.best = float(score)
            self.epoch = len(net.history)
            self.state = copy.deepcopy(net.module_.state_dict())


class DivergenceCheck(Callback):
    """Stop a training whose loss grows by orders of magnitude, even while finite.

    At the end of every epoch the mean training loss is compared with the
    loss of the very first batch (the freshly initialized model): a rise by
    more than ``factor * (|first| + 1)`` raises
    :class:`~skinfo.TrainingDivergedError` (a loss that becomes NaN or
    infinite already raises at its batch). A minimized loss that ends up a
    thousand times above where it started has diverged, e.g. SGD with a far
    too large learning rate.

    Parameters
    ----------
    factor : float, default=1e3
        Largest allowed rise of the epoch's mean training loss over the first
        batch's loss, in units of ``|first| + 1``.
    """

    def __init__(self, factor: float = 1e3) -> None:
        self.factor = factor

    def on_epoch_end(self, net, **kwargs) -> None:
        from ._net import TrainingDivergedError

        first = (
            net.history[0]["batches"][0].get("train_loss") if net.history[0]["batches"] else None
        )
        loss = net.history[-1].get("train_loss")
        if first is None or loss is None:
            return
        if loss - first > self.factor * (abs(first) + 1.0):
            raise TrainingDivergedError(
                f"Training diverged at epoch {len(net.history)}: the training loss grew from "
                f"{first:.4g} (first batch) to {loss:.4g}. Try a smaller lr, standardized "
                "inputs, or a smaller weight on the regularizing term."
            )


class ValidAccuracy(Callback):
    """Record the accuracy on the validation rows as ``valid_acc`` every epoch.

    Added by the classifiers when ``validation_fraction`` is set, next to
    ``valid_loss``; computed from the module's class probabilities in
    evaluation mode.
    """

    def on_epoch_end(self, net, dataset_valid=None, **kwargs) -> None:
        if dataset_valid is None:
            return
        from ._net import _dataset_tensors

        X, y = _dataset_tensors(dataset_valid)
        predicted = net.predict(X)
        net.history.record("valid_acc", float(np.mean(predicted == y.numpy())))
