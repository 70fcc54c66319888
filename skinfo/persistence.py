"""Safe persistence: parameters and fitted state as JSON, weights as a torch state dict.

``pickle``/``joblib`` work for every estimator, but loading a pickle runs
whatever code the file asks for. :func:`save` writes one file that
:func:`load` reads with ``torch.load(weights_only=True)``: only tensors and
plain containers are unpickled, so loading a file from someone else cannot
run code. The estimator class is looked up among skinfo's own estimators,
never imported from a name in the file.

The file holds the estimator's constructor parameters and its fitted
attributes (as tagged JSON), the state dicts of the torch module and of the
objective, the skinfo version and a format number. Loading rebuilds the
module with the estimator's own ``_build_module`` and loads the weights into
it: modules must keep every data-dependent quantity in parameters or buffers
whose shapes follow from the constructor parameters, the number of features
and the classes. Weights that do not fit the rebuilt module (a tampered file,
or a parameter passed to :func:`load` that changes the model) raise a
ValueError.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import pickle
import warnings
from typing import Any

import numpy as np
import torch
from skorch.history import History

FORMAT = "skinfo-estimator"
FORMAT_VERSION = 1
_SAFE_CALLABLE_ROOTS = ("skinfo.", "torch.optim")


class InconsistentVersionWarning(UserWarning):
    """The file was written by another skinfo version than the one loading it."""


def _encode(value: Any, where: str) -> Any:
    """Tagged-JSON encoding of parameters and fitted attributes."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "biuf":
            return {"__ndarray__": _encode(value.tolist(), where), "dtype": value.dtype.str}
        if value.dtype.kind in "OU" and all(isinstance(v, str) for v in value.ravel()):
            return {"__ndarray__": value.tolist(), "dtype": value.dtype.str}
        raise ValueError(f"{where}: arrays of dtype {value.dtype} cannot be stored safely.")
    if isinstance(value, History):
        return {"__history__": [_encode(dict(row), where) for row in value]}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, where) for v in value]}
    if isinstance(value, list):
        return [_encode(v, where) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"__dict__": {k: _encode(v, f"{where}[{k!r}]") for k, v in value.items()}}
    if callable(value) and getattr(value, "__module__", "").startswith(_SAFE_CALLABLE_ROOTS):
        return {"__callable__": f"{value.__module__}:{value.__qualname__}"}
    raise ValueError(
        f"{where}={value!r} cannot be stored in the safe format. Save with joblib/pickle "
        "instead, or leave it out and pass it to skinfo.load(path, <name>=...)."
    )


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__float__" in value:
        return float(value["__float__"])
    if "__ndarray__" in value:
        return np.array(_decode(value["__ndarray__"]), dtype=np.dtype(value["dtype"]))
    if "__history__" in value:
        return History([_decode(row) for row in value["__history__"]])
    if "__tuple__" in value:
        return tuple(_decode(v) for v in value["__tuple__"])
    if "__dict__" in value:
        return {k: _decode(v) for k, v in value["__dict__"].items()}
    if "__callable__" in value:
        module, _, name = value["__callable__"].partition(":")
        if not module.startswith(_SAFE_CALLABLE_ROOTS):
            raise ValueError(f"Refusing to import {module!r} from a file.")
        obj = importlib.import_module(module)
        for part in name.split("."):
            obj = getattr(obj, part)
        return obj
    raise ValueError(f"Unknown entry in file: {sorted(value)}")


def _load_weights(target: torch.nn.Module, state: dict, what: str, path, params: dict) -> None:
    """``target.load_state_dict(state)``, with a clear ValueError when they do not fit."""
    try:
        target.load_state_dict(state)
    except RuntimeError as error:
        details = "; ".join(
            line.strip().rstrip(".") for line in str(error).splitlines()[1:] if line.strip()
        )
        message = f"The weights stored in {path} do not fit the {what} rebuilt here ({details})."
        if params:
            names = ", ".join(f"{k}={v!r}" for k, v in params.items())
            message += (
                f" The parameters passed to load ({names}) change the fitted model; load "
                "without them, or refit the estimator to change them."
            )
        raise ValueError(message) from None


def save(estimator, path: str | os.PathLike) -> None:
    """Write a fitted skinfo estimator to ``path`` in the safe format.

    Parameters
    ----------
    estimator : skinfo estimator
        A fitted estimator.
    path : str or path-like
        Destination file.

    Examples
    --------
    >>> import tempfile, os, numpy as np
    >>> from sklearn.datasets import load_iris
    >>> import skinfo
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = skinfo.SoftmaxClassifier(max_epochs=3, random_state=0).fit(X, y)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.skinfo")
    >>> clf.save(path)
    >>> again = skinfo.load(path)
    >>> bool(np.array_equal(again.predict_proba(X), clf.predict_proba(X)))
    True
    """
    from . import __version__

    if not hasattr(estimator, "net_"):
        raise ValueError(f"{type(estimator).__name__} is not fitted; there is nothing to save.")
    params = estimator.get_params(deep=False)
    if params.get("callbacks") is not None:
        warnings.warn(
            "callbacks are not stored in the safe format; the loaded estimator has callbacks=None.",
            UserWarning,
            stacklevel=2,
        )
        params["callbacks"] = None
    fitted = {
        name: value
        for name, value in vars(estimator).items()
        if name not in params and name != "net_"
    }
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "skinfo_version": __version__,
        "estimator": type(estimator).__name__,
        "params": json.dumps({k: _encode(v, k) for k, v in params.items()}),
        "fitted": json.dumps({k: _encode(v, k) for k, v in fitted.items()}),
        "module": {k: v.detach().cpu() for k, v in estimator.net_.module_.state_dict().items()},
        "criterion": {
            k: v.detach().cpu() for k, v in estimator.net_.criterion_.state_dict().items()
        },
    }
    torch.save(payload, path)


def load(path: str | os.PathLike, *, device: str | None = None, **params: Any):
    """Load an estimator written by :func:`save` (no code from the file is run).

    Parameters
    ----------
    path : str or path-like
        File written by :func:`save` / ``estimator.save``.
    device : str or None, default=None
        Device to load the weights on; ``None`` keeps the training device when
        it is available here and falls back to ``'cpu'`` otherwise (a model
        trained on GPU loads on a machine without CUDA).
    **params
        Constructor parameters to set instead of the stored ones, e.g. an
        ``encoder`` factory that the safe format could not store, or a
        prediction option such as ``ood_score``. They must describe the fitted
        model: the module is rebuilt with them and the stored weights are
        loaded into it, so a parameter that changes the shape of stored
        weights or buffers (``hidden_layer_sizes``, ``latent_dim``, the
        number of prediction samples ``n_samples`` of
        :class:`~skinfo.VIBClassifier`, ...) raises a ValueError; refit to
        change it.

    Returns
    -------
    estimator : skinfo estimator
        The fitted estimator, predicting exactly as the saved one.
    """
    import skinfo

    from ._base import NeuralEstimator, resolve_device, torch_seed

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch's pickle-protocol notice
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, AttributeError) as error:
        lines = [line for line in str(error).splitlines() if "GLOBAL" in line]
        reason = lines[0].strip() if lines else str(error).splitlines()[0]
        raise ValueError(
            f"{path} cannot be loaded safely: it is not a skinfo file, or it holds objects "
            f"other than tensors and plain data ({reason}). Nothing from it was run."
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a skinfo estimator file.")
    if payload.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path} uses file format {payload.get('format_version')}, this skinfo "
            f"({skinfo.__version__}) reads format {FORMAT_VERSION}."
        )
    if payload["skinfo_version"] != skinfo.__version__:
        warnings.warn(
            f"{path} was written by skinfo {payload['skinfo_version']}; this is "
            f"{skinfo.__version__}. Check its predictions before relying on them.",
            InconsistentVersionWarning,
            stacklevel=2,
        )
    name = payload["estimator"]
    cls = getattr(skinfo, name, None) if name in skinfo.__all__ else None
    if not (isinstance(cls, type) and issubclass(cls, NeuralEstimator)):
        raise ValueError(f"{path} names an unknown estimator {name!r}.")
    stored = {k: _decode(v) for k, v in json.loads(payload["params"]).items()}
    estimator = cls(**{**stored, **params})
    fitted = {attr: _decode(value) for attr, value in json.loads(payload["fitted"]).items()}
    for attr, value in fitted.items():
        setattr(estimator, attr, value)
    if device is not None:
        estimator.device_ = resolve_device(device)
    elif "cuda" in estimator.device_ and not torch.cuda.is_available():
        estimator.device_ = "cpu"
    n_features = int(estimator.n_features_in_)
    classes = getattr(estimator, "classes_", None)
    n = 2 * (len(classes) if classes is not None else 1)
    X = np.zeros((n, n_features), dtype=np.float32)
    y = None if classes is None else np.arange(n, dtype=np.int64) % len(classes)
    with torch_seed(estimator._seed, "cpu"):
        module = estimator._build_module(X, y)
        net = estimator._make_net(module, estimator._build_criterion(X, y), None)
        net.initialize()
    _load_weights(net.module_, payload["module"], "network", path, params)
    _load_weights(net.criterion_, payload["criterion"], "objective", path, params)
    device_ = estimator.device_
    for attr, value in fitted.items():  # building the module may have set some from dummy data
        setattr(estimator, attr, value)
    estimator.device_ = device_
    estimator.net_ = net
    return estimator
