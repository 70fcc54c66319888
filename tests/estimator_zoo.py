"""Fast instances of every skinfo estimator, shared by the cross-estimator tests."""

from skinfo import (
    ApproxMassFlowDetector,
    IBINNClassifier,
    MASSClassifier,
    OVAClassifier,
    SoftmaxClassifier,
    VIBClassifier,
)

FAST = dict(max_epochs=3, lr=1e-2, random_state=0, device="cpu")


def fast_classifiers():
    """One small, quick-to-fit instance per classifier configuration."""
    return [
        SoftmaxClassifier(hidden_layer_sizes=(8,), **FAST),
        OVAClassifier(logits="distance", hidden_layer_sizes=(8,), **FAST),
        OVAClassifier(logits="affine", hidden_layer_sizes=(8,), **FAST),
        MASSClassifier(hidden_layer_sizes=(8,), latent_dim=2, n_components=2, **FAST),
        IBINNClassifier(n_blocks=2, hidden_layer_sizes=(8,), **FAST),
        VIBClassifier(regularizer="kl", hidden_layer_sizes=(8,), latent_dim=2, **FAST),
        VIBClassifier(regularizer="cond_logvar", hidden_layer_sizes=(8,), latent_dim=2, **FAST),
    ]


def fast_detectors():
    """One small instance per outlier detector."""
    return [ApproxMassFlowDetector(n_blocks=2, hidden_width=8, **FAST)]
