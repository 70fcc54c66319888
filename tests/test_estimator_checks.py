"""sklearn's estimator checks for every skinfo estimator."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skinfo import OVAClassifier, SoftmaxClassifier

# Small, fast settings: the checks fit many times on tiny data.
FAST = dict(hidden_layer_sizes=(32,), max_epochs=20, lr=1e-2, random_state=0, device="cpu")

ESTIMATORS = [
    SoftmaxClassifier(**FAST),
    OVAClassifier(logits="distance", **FAST),
    OVAClassifier(logits="affine", **FAST),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible(estimator, check):
    check(estimator)
