"""Training objectives, one torch criterion per method (one file per method).

Every criterion is an ``nn.Module`` called as
``criterion(output, y, X=X, module=module)`` with the module's forward output,
the encoded labels (or ``None`` for unsupervised estimators), the input batch
and the module itself. It returns a dict: ``"loss"`` is the scalar to
minimize; every other entry is a named scalar component, logged to the history
per epoch as ``history_[:, "train_<name>"]``.
"""

from .approx_mass import ApproxMassLoss
from .ibinn import IBINNLoss
from .mass import MASSLoss
from .softmax_ova import OneVsAllLoss, SoftmaxCrossEntropy
from .vib import VIBLoss

__all__ = [
    "ApproxMassLoss",
    "IBINNLoss",
    "MASSLoss",
    "OneVsAllLoss",
    "SoftmaxCrossEntropy",
    "VIBLoss",
]
