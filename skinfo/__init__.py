"""skinfo: scikit-learn estimators for uncertainty-aware, information-theoretic deep learning."""

from ._net import TrainingDivergedError
from .ova import OVAClassifier
from .softmax import SoftmaxClassifier

__version__ = "0.1.0"

__all__ = [
    "OVAClassifier",
    "SoftmaxClassifier",
    "TrainingDivergedError",
    "__version__",
]
