"""GPU behaviour; these run only where CUDA is available (marker ``gpu``)."""

import pickle

import numpy as np
import pytest
import torch
from estimator_zoo import fast_classifiers
from sklearn.datasets import make_blobs

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.fixture(scope="module")
def data():
    return make_blobs(n_samples=200, centers=3, n_features=5, random_state=0)


@pytest.mark.parametrize("est", fast_classifiers(), ids=lambda e: repr(e)[:50])
def test_cuda_fit_matches_cpu_fit_and_loads_on_cpu(est, data):
    X, y = data
    gpu = est.set_params(device="cuda").fit(X, y)
    cpu = pickle.loads(pickle.dumps(est)).set_params(device="cpu").fit(X, y)
    assert gpu.device_ == "cuda" and next(gpu.net_.module_.parameters()).is_cuda
    # same seed, same data: CPU and GPU kernels differ only in float32 rounding
    np.testing.assert_allclose(gpu.predict_proba(X), cpu.predict_proba(X), atol=2e-3)
    again = pickle.loads(pickle.dumps(gpu))
    np.testing.assert_array_equal(again.predict_proba(X), gpu.predict_proba(X))


def test_auto_device_picks_cuda(data):
    X, y = data
    est = fast_classifiers()[0].set_params(device="auto").fit(X, y)
    assert est.device_ == "cuda"
