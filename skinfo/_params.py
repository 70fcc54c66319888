"""Parameter constraints: one declarative table per estimator, checked in one place.

Each estimator class declares ``_constraints``: a dict mapping every
constructor parameter to a list of accepted alternatives (as in
scikit-learn): an :class:`Interval`, an :class:`Options` set, ``None``, a type,
or one of the small checkers below. :func:`check_params` runs at ``fit`` and
when :func:`skinfo.load` reads parameters from a file, so a file gets exactly
the checks a constructor call gets. Sizes have upper bounds, so that no
parameter value can ask for an absurd amount of memory.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch

#: Largest width, latent size or component count a parameter may ask for.
MAX_SIZE = 2**16
#: Largest number of entries of a size tuple (layers, image dimensions).
MAX_LENGTH = 64


@dataclass(frozen=True)
class Interval:
    """Numbers of ``kind`` (``Integral`` or ``Real``) between ``low`` and ``high``.

    ``None`` for a bound means unbounded on that side; for reals an
    unbounded ``high`` still excludes infinity unless ``high=math.inf`` with
    ``closed`` including the right end. NaN and booleans never match.
    """

    kind: type
    low: float | None
    high: float | None
    closed: str = "both"  # 'both', 'left', 'right' or 'neither'

    def __call__(self, value: Any) -> bool:
        if isinstance(value, bool | np.bool_) or not isinstance(value, self.kind):
            return False
        if isinstance(value, Real) and math.isnan(value):
            return False
        left = self.closed in ("both", "left")
        right = self.closed in ("both", "right")
        if self.low is not None and not (value >= self.low if left else value > self.low):
            return False
        if self.high is None:
            return math.isfinite(value)
        return value <= self.high if right else value < self.high

    def __str__(self) -> str:
        kind = "an int" if self.kind is Integral else "a float"
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        left = "[" if self.closed in ("both", "left") and self.low is not None else "("
        right = "]" if self.closed in ("both", "right") and self.high is not None else ")"
        return f"{kind} in the range {left}{lo}, {hi}{right}"


@dataclass(frozen=True)
class Options:
    """One of a fixed set of values (strings, booleans, ...)."""

    values: tuple

    def __call__(self, value: Any) -> bool:
        return isinstance(value, str | bool | np.bool_ | type(None)) and any(
            value == v and type(value) is type(v) for v in self.values
        )

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)


@dataclass(frozen=True)
class Sizes:
    """A tuple or list of ints, each in ``[low, MAX_SIZE]``, of length ``lengths``."""

    low: int = 1
    lengths: tuple[int, int] = (0, MAX_LENGTH)

    def __call__(self, value: Any) -> bool:
        if not isinstance(value, tuple | list):
            return False
        return self.lengths[0] <= len(value) <= self.lengths[1] and all(
            Interval(Integral, self.low, MAX_SIZE)(v) for v in value
        )

    def __str__(self) -> str:
        lo, hi = self.lengths
        return f"a tuple of {lo} to {hi} ints in [{self.low}, {MAX_SIZE}]"


@dataclass(frozen=True)
class Check:
    """Any value accepted by ``test``, described by ``text``."""

    test: Callable[[Any], bool]
    text: str

    def __call__(self, value: Any) -> bool:
        return bool(self.test(value))

    def __str__(self) -> str:
        return self.text


BOOLEAN = Check(lambda v: isinstance(v, bool | np.bool_), "a bool")
RANDOM_STATE = Check(
    lambda v: (
        v is None or isinstance(v, np.random.RandomState) or Interval(Integral, 0, 2**32 - 1)(v)
    ),
    "None, an int in [0, 2**32 - 1] or a numpy RandomState",
)
CALLBACKS = Check(lambda v: v is None or isinstance(v, list | tuple), "None or a list")
ANY = Check(lambda v: True, "anything")
DEVICE = Check(lambda v: isinstance(v, str | torch.device), "a device name or torch.device")


def _describe(alternatives: list) -> str:
    texts = [
        "None" if a is None else (a.__name__ if isinstance(a, type) else str(a))
        for a in alternatives
    ]
    return texts[0] if len(texts) == 1 else ", ".join(texts[:-1]) + " or " + texts[-1]


def _matches(alternative: Any, value: Any) -> bool:
    if alternative is None:
        return value is None
    if isinstance(alternative, type):
        return isinstance(value, alternative)
    return alternative(value)


def check_params(estimator: Any) -> None:
    """Check every parameter of ``estimator`` against its ``_constraints``.

    Also refuses keywords other than routed ``optimizer__<option>`` ones that
    the constructor or ``set_params`` stored (they are checked here, at fit,
    never in ``__init__``).

    Raises
    ------
    ValueError
        Naming the parameter, what it accepts and what it got.
    """
    name = type(estimator).__name__
    names = set(estimator._get_param_names())
    for attr in vars(estimator):  # keywords the constructor or set_params stored
        routed = attr.startswith("optimizer__") and attr.count("__") == 1
        if not (routed or attr in names or attr.startswith("_") or attr.endswith("_")):
            raise ValueError(
                f"{name} got an unexpected parameter {attr!r}; besides its own parameters "
                "it takes only optimizer__<option> (routed to the optimizer)."
            )
    for param, alternatives in estimator._constraints.items():
        value = getattr(estimator, param)
        if not any(_matches(a, value) for a in alternatives):
            raise ValueError(
                f"The {param!r} parameter of {name} must be {_describe(alternatives)}; "
                f"got {value!r}."
            )
    estimator._check_param_combinations()


def resolve_device(device: str | torch.device) -> str:
    """The torch device a ``device`` parameter names, checked to exist here.

    ``'auto'`` is CUDA when available, else the CPU. ``'cpu'``, ``'cuda'``,
    ``'cuda:N'`` (N below the number of visible GPUs) and ``'mps'`` (where
    available) are accepted.

    Raises
    ------
    ValueError
        For any other name, or a device this machine does not have.
    """
    n_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps is not None and mps.is_available())
    available = ["'auto'", "'cpu'"]
    available += ["'cuda'"] + [f"'cuda:{i}'" for i in range(n_gpus)] if n_gpus else []
    available += ["'mps'"] if has_mps else []
    text = str(device)
    if text == "auto":
        return "cuda" if n_gpus else "cpu"
    try:
        parsed = torch.device(text)
    except (RuntimeError, TypeError, ValueError):
        parsed = None
    ok = parsed is not None and (
        (parsed.type == "cpu" and parsed.index in (None, 0))
        or (parsed.type == "cuda" and n_gpus and (parsed.index or 0) < n_gpus)
        or (parsed.type == "mps" and has_mps)
    )
    if not ok:
        raise ValueError(
            f"The 'device' parameter got {text!r}, which is not a device of this machine; "
            f"available here: {', '.join(available)}"
            + ("" if n_gpus else " (torch sees no CUDA GPU)")
            + "."
        )
    return text
