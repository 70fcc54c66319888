"""Safe persistence: parameters and fitted state as JSON, weights as a torch state dict.

``pickle``/``joblib`` work for every estimator, but loading a pickle runs
whatever code the file asks for. :func:`save` writes one file that
:func:`load` reads with ``torch.load(weights_only=True)``: only tensors and
plain containers are unpickled. What :func:`load` trusts and refuses:

* the estimator class is one of skinfo's own estimators, looked up by name;
* a callable parameter (an optimizer class, an encoder factory) must be one
  of an exact table of allowed callables (:data:`SAFE_CALLABLES`); nothing is
  imported or looked up from a name in the file;
* every parameter is checked with the constructor's own constraints before
  anything is built; sizes are bounded;
* only the fitted attributes the estimator declares are set, each checked;
  arrays only in plain numeric, boolean or short string dtypes;
* the module is first built without memory (on torch's ``meta`` device) and
  its state dict compared with the stored weights, so a file cannot make
  ``load`` allocate more than the weights it holds.

A file can still choose among the allowed callables and any parameter values
within their limits, and its weights decide the predictions: load files from
people you trust to give you a model, as with any model file.
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from typing import Any

import numpy as np
import torch
from skorch.history import History

from ._params import check_params, resolve_device
from ._training import OPTIMIZERS, build_net, torch_seed
from .nn.encoders import MLP, SmallCNN
from .nn.resnet import ResNet, resnet20

FORMAT = "skinfo-estimator"
FORMAT_VERSION = 1

#: The callables a file may name: torch's optimizer classes and skinfo's encoder factories.
SAFE_CALLABLES: dict[str, Any] = {
    f"{obj.__module__}:{obj.__qualname__}": obj
    for obj in (
        *OPTIMIZERS.values(),
        *(
            getattr(torch.optim, name)
            for name in dir(torch.optim)
            if isinstance(getattr(torch.optim, name), type)
            and issubclass(getattr(torch.optim, name), torch.optim.Optimizer)
        ),
        MLP,
        SmallCNN,
        ResNet,
        resnet20,
    )
}
_CALLABLE_NAMES = {id(obj): name for name, obj in SAFE_CALLABLES.items()}

#: Array dtypes a file may hold: booleans, numbers and strings of up to 9999 characters.
_DTYPE = re.compile(r"[<>|=]?(b1|[iuf][1248]|U\d{1,4})")
#: Deepest nesting of containers in a file's JSON.
_MAX_DEPTH = 32
#: Most values (rows x features) of the dummy input used to rebuild a module.
_MAX_DUMMY_VALUES = 2**25


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
            return {"__ndarray__": value.tolist(), "dtype": np.asarray(value.tolist()).dtype.str}
        raise ValueError(f"{where}: arrays of dtype {value.dtype} cannot be stored safely.")
    if isinstance(value, History):
        return {"__history__": [_encode(dict(row), where) for row in value]}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, where) for v in value]}
    if isinstance(value, list):
        return [_encode(v, where) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"__dict__": {k: _encode(v, f"{where}[{k!r}]") for k, v in value.items()}}
    if id(value) in _CALLABLE_NAMES:
        return {"__callable__": _CALLABLE_NAMES[id(value)]}
    raise ValueError(
        f"{where}={value!r} cannot be stored in the safe format. Save with joblib/pickle "
        "instead, or leave it out and pass it to skinfo.load(path, <name>=...)."
    )


def _decode(value: Any, depth: int = 0) -> Any:
    """Inverse of :func:`_encode`; raises ValueError on anything it did not write."""
    if depth > _MAX_DEPTH:
        raise ValueError(f"containers are nested deeper than {_MAX_DEPTH} levels")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [_decode(v, depth + 1) for v in value]
    if not isinstance(value, dict) or len(value) not in (1, 2):
        raise ValueError(f"unexpected entry {str(value)[:80]!r}")
    (tag, content), *rest = value.items()
    if tag == "__float__" and not rest and content in ("inf", "-inf", "nan"):
        return float(content)
    if tag == "__ndarray__" and rest and rest[0][0] == "dtype":
        dtype = rest[0][1]
        if not (isinstance(dtype, str) and _DTYPE.fullmatch(dtype)):
            raise ValueError(f"arrays of dtype {dtype!r} are not accepted")
        try:
            return np.array(_decode(content, depth + 1), dtype=np.dtype(dtype))
        except (TypeError, ValueError, OverflowError) as error:
            raise ValueError(f"an array entry does not fit its dtype ({error})") from None
    if tag == "__history__" and not rest and isinstance(content, list):
        rows = [_decode(row, depth + 1) for row in content]
        if not all(isinstance(row, dict) for row in rows):
            raise ValueError("the history holds entries that are not epoch records")
        return History(rows)
    if tag == "__tuple__" and not rest and isinstance(content, list):
        return tuple(_decode(v, depth + 1) for v in content)
    if tag == "__dict__" and not rest and isinstance(content, dict):
        return {str(k): _decode(v, depth + 1) for k, v in content.items()}
    if tag == "__callable__" and not rest:
        if not (isinstance(content, str) and content in SAFE_CALLABLES):
            raise ValueError(
                f"the callable {str(content)[:80]!r} is not one the safe format allows "
                f"(optimizer classes and skinfo's encoder factories); pass it to "
                "skinfo.load(path, <name>=...) if you trust it"
            )
        return SAFE_CALLABLES[content]
    raise ValueError(f"unknown entry {sorted(value)[:4]}")


def _load_weights(target: torch.nn.Module, state: dict, what: str, path, params: dict) -> None:
    """``target.load_state_dict(state)``, with a clear ValueError when they do not fit."""
    try:
        target.load_state_dict(state)
    except RuntimeError as error:
        details = "; ".join(
            line.strip().rstrip(".") for line in str(error).splitlines()[1:] if line.strip()
        )
        _refuse_mismatch(path, what, details, params)


def _refuse_mismatch(path, what: str, details: str, params: dict) -> None:
    message = f"The weights stored in {path} do not fit the {what} rebuilt here ({details})."
    if params:
        names = ", ".join(f"{k}={v!r}" for k, v in params.items())
        message += (
            f" The parameters passed to load ({names}) change the fitted model; load "
            "without them, or refit the estimator to change them."
        )
    raise ValueError(message)


def _check_shapes(module: torch.nn.Module, state: dict, what: str, path, params: dict) -> None:
    """Compare a (meta-device) module's state dict with stored weights, names and shapes."""
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    stored = {k: tuple(v.shape) for k, v in state.items()}
    if expected != stored:
        missing = sorted(set(expected) - set(stored))[:3]
        unexpected = sorted(set(stored) - set(expected))[:3]
        shapes = [k for k in set(expected) & set(stored) if expected[k] != stored[k]][:3]
        details = "; ".join(
            text
            for text in (
                f"missing {missing}" if missing else "",
                f"unexpected {unexpected}" if unexpected else "",
                ", ".join(f"{k}: {stored[k]} stored, {expected[k]} expected" for k in shapes),
            )
            if text
        )
        _refuse_mismatch(path, what, details, params)


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
        name: getattr(estimator, name)
        for name in type(estimator)._fitted_attributes
        if hasattr(estimator, name)
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


def _read_payload(path) -> dict:
    """The file's top-level dict, checked for every key and type :func:`save` writes."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch's pickle-protocol notice
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except OSError:
        raise
    except Exception as error:  # noqa: BLE001 - any unreadable file is the same refusal
        lines = [line for line in str(error).splitlines() if "GLOBAL" in line]
        reason = lines[0].strip() if lines else (str(error).splitlines() or [""])[0]
        raise ValueError(
            f"{path} cannot be loaded safely: it is not a skinfo file, or it holds objects "
            f"other than tensors and plain data ({type(error).__name__}: {reason[:200]}). "
            "Nothing from it was run."
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a skinfo estimator file.")
    if payload.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path} uses file format {payload.get('format_version')!r}, this skinfo reads "
            f"format {FORMAT_VERSION}."
        )
    kinds = {
        "skinfo_version": str,
        "estimator": str,
        "params": str,
        "fitted": str,
        "module": dict,
        "criterion": dict,
    }
    for key, kind in kinds.items():
        if not isinstance(payload.get(key), kind):
            raise ValueError(f"{path} is damaged: its entry {key!r} is missing or malformed.")
    for key in ("module", "criterion"):
        if not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in payload[key].items()
        ):
            raise ValueError(f"{path} is damaged: its {key} weights are not all tensors.")
    return payload


def _read_json(path, payload: dict, key: str) -> dict:
    try:
        raw = json.loads(payload[key])
        if not isinstance(raw, dict):
            raise ValueError("not a mapping")
        return {str(k): _decode(v) for k, v in raw.items()}
    except RecursionError:
        raise ValueError(f"{path}: its {key} are nested too deeply.") from None
    except ValueError as error:
        raise ValueError(f"{path}: its {key} cannot be read ({error}).") from None


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
        model: a parameter that changes the shape of stored weights
        (``hidden_layer_sizes``, ``latent_dim``, ...) raises a ValueError;
        refit to change it.

    Returns
    -------
    estimator : skinfo estimator
        The fitted estimator, predicting exactly as the saved one.

    Raises
    ------
    ValueError
        For any file that is not a well-formed skinfo file, names a callable
        outside :data:`SAFE_CALLABLES`, holds parameters outside their
        constraints, or weights that do not fit the model they describe.
    """
    import skinfo

    from ._base import NeuralEstimator

    payload = _read_payload(path)
    if payload["skinfo_version"] != skinfo.__version__:
        warnings.warn(
            f"{path} was written by skinfo {payload['skinfo_version'][:40]}; this is "
            f"{skinfo.__version__}. Check its predictions before relying on them.",
            InconsistentVersionWarning,
            stacklevel=2,
        )
    name = payload["estimator"]
    cls = getattr(skinfo, name, None) if name in skinfo.__all__ else None
    if not (isinstance(cls, type) and issubclass(cls, NeuralEstimator)):
        raise ValueError(f"{path} names an unknown estimator {name[:80]!r}.")
    stored = _read_json(path, payload, "params")
    fitted = _read_json(path, payload, "fitted")
    accepted = cls().get_params(deep=False)
    routed = {
        k for k in (set(stored) | set(params)) if k.startswith("optimizer__") and k.count("__") == 1
    }
    unknown = sorted((set(stored) | set(params)) - set(accepted) - routed)
    if unknown:
        raise ValueError(f"{path}: {name} has no parameter(s) {unknown[:5]}.")
    estimator = cls(**{**stored, **params})
    try:
        check_params(estimator)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    for attr, value in fitted.items():
        check = cls._fitted_attributes.get(attr)
        if check is None:
            raise ValueError(f"{path}: {name} has no fitted attribute {attr[:80]!r}.")
        if not check(value) or (attr == "history_" and not isinstance(value, History)):
            raise ValueError(f"{path}: the fitted attribute {attr} must be {check}.")
        setattr(estimator, attr, value)
    missing = [a for a in ("n_features_in_", "_seed", "device_") if not hasattr(estimator, a)]
    if missing or (
        issubclass(cls, skinfo._base.NeuralClassifier) and not hasattr(estimator, "classes_")
    ):
        raise ValueError(
            f"{path} is damaged: the fitted attributes {missing or ['classes_']} are missing."
        )
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None and len(names) != estimator.n_features_in_:
        raise ValueError(f"{path}: feature_names_in_ does not match n_features_in_.")
    try:
        estimator.device_ = resolve_device(device if device is not None else estimator.device_)
    except ValueError:
        if device is not None:
            raise
        estimator.device_ = "cpu"  # e.g. trained on GPU, loaded on a machine without one
    classes = getattr(estimator, "classes_", None)
    n = len(classes) if classes is not None else 2
    n_features = int(estimator.n_features_in_)
    if n * n_features > _MAX_DUMMY_VALUES:
        raise ValueError(f"{path}: {n} classes x {n_features} features is beyond this reader.")
    X = np.zeros((n, n_features), dtype=np.float32)
    y = None if classes is None else np.arange(n, dtype=np.int64)
    with torch_seed(estimator._seed, "cpu"):
        try:  # first without memory: the stored weights must be what the parameters build
            with torch.device("meta"):
                shapes = (estimator._build_module(X, y), estimator._build_criterion(X, y))
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None
        _check_shapes(shapes[0], payload["module"], "network", path, params)
        _check_shapes(shapes[1], payload["criterion"], "objective", path, params)
        module = estimator._build_module(X, y)
        net = build_net(estimator, module, estimator._build_criterion(X, y), None)
        net.initialize()
    _load_weights(net.module_, payload["module"], "network", path, params)
    _load_weights(net.criterion_, payload["criterion"], "objective", path, params)
    estimator.net_ = net
    return estimator
