"""sklearn's estimator checks for every skinfo estimator."""

import os
import subprocess
import sys

import pytest
from estimator_zoo import expected_failed_checks, fast_classifiers, fast_detectors
from sklearn.utils.estimator_checks import parametrize_with_checks

from skinfo import OVAClassifier, SoftmaxClassifier

# Small, fast settings: the checks fit many times on tiny data.
FAST = dict(hidden_layer_sizes=(32,), max_epochs=20, lr=1e-2, random_state=0, device="cpu")

ESTIMATORS = [
    SoftmaxClassifier(**FAST),
    OVAClassifier(logits="distance", **FAST),
    OVAClassifier(logits="affine", **FAST),
]


# Every check runs and passes except one that sklearn itself skips:
# check_array_api_input(array_namespace="numpy") needs the environment variable
# SCIPY_ARRAY_API=1 set before scipy is first imported, which a test cannot do
# inside this process. test_array_api_check_with_numpy_inputs below runs it in a
# fresh process with the variable set.
@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)


_ARRAY_API_CHILD = """
import sys
sys.path.insert(0, {tests_dir!r})
from estimator_zoo import fast_classifiers, fast_detectors
from sklearn.utils.estimator_checks import check_array_api_input
from skinfo import OVAClassifier, SoftmaxClassifier
FAST = {fast!r}
estimators = [SoftmaxClassifier(**FAST), OVAClassifier(**FAST),
              OVAClassifier(logits="affine", **FAST), *fast_classifiers(), *fast_detectors()]
for est in estimators:
    check_array_api_input(type(est).__name__, est, array_namespace="numpy",
                          expect_only_array_outputs=False)
    print("ok", type(est).__name__)
"""


@pytest.mark.slow
def test_array_api_check_with_numpy_inputs():
    """The array-API check that parametrize_with_checks skips, run with SCIPY_ARRAY_API=1.

    Covers these estimators and every one of ``estimator_zoo`` (whose own
    check suites skip it for the same reason).
    """
    env = {**os.environ, "SCIPY_ARRAY_API": "1"}
    code = _ARRAY_API_CHILD.format(fast=FAST, tests_dir=os.path.dirname(__file__))
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    n_estimators = len(ESTIMATORS) + len(fast_classifiers()) + len(fast_detectors())
    assert result.stdout.split().count("ok") == n_estimators
