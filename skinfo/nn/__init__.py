"""Pure-torch building blocks of the skinfo estimators (no sklearn here).

The estimators build their modules from these; they are public so that a
user can pass one as an ``encoder`` (:class:`MLP`, :class:`SmallCNN`,
:class:`ResNet`, :func:`resnet20`), inspect a fitted ``net_.module_``, or
reuse a piece in their own training loop.
"""

from .encoders import ACTIVATIONS, MLP, SmallCNN, output_width
from .flow_blocks import Flow
from .gmm import ClassConditionalGMM, MASSNetwork
from .heads import DistanceLogits, OVANetwork, SoftmaxNetwork
from .inn import INN_PRESETS, IBINNNetwork, conv_inn, dense_inn
from .jacobian import batched_jacobian, log_jacobian, mlp_log_volume
from .latent_gmm import LatentGMM
from .realnvp import RealNVP, approximate_mass
from .resnet import ResNet, resnet20
from .vib import VIBNetwork, gaussian_kl_standard, sample_with_rate

__all__ = [
    "ACTIVATIONS",
    "INN_PRESETS",
    "MLP",
    "ClassConditionalGMM",
    "DistanceLogits",
    "Flow",
    "IBINNNetwork",
    "LatentGMM",
    "MASSNetwork",
    "OVANetwork",
    "RealNVP",
    "ResNet",
    "SmallCNN",
    "SoftmaxNetwork",
    "VIBNetwork",
    "approximate_mass",
    "batched_jacobian",
    "conv_inn",
    "dense_inn",
    "gaussian_kl_standard",
    "log_jacobian",
    "mlp_log_volume",
    "output_width",
    "resnet20",
    "sample_with_rate",
]
