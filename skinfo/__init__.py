"""skinfo: scikit-learn estimators for uncertainty-aware, information-theoretic deep learning.

Estimators are imported lazily (on first attribute access), so ``import
skinfo`` stays cheap and a module that needs an optional dependency only
loads when used.
"""

from importlib import import_module

from ._net import TrainingDivergedError
from ._training import TrainingDivergedWarning
from .persistence import load, save

__version__ = "0.1.0"

_LAZY = {
    "SoftmaxClassifier": "softmax",
    "OVAClassifier": "ova",
    "VIBClassifier": "vib",
    "MASSClassifier": "mass",
    "IBINNClassifier": "ibinn",
    "ApproxMassFlowDetector": "approx_mass",
    "OODDetector": "ood",
}

__all__ = [
    "ApproxMassFlowDetector",
    "IBINNClassifier",
    "MASSClassifier",
    "OODDetector",
    "OVAClassifier",
    "SoftmaxClassifier",
    "TrainingDivergedError",
    "TrainingDivergedWarning",
    "VIBClassifier",
    "__version__",
    "load",
    "save",
]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
