"""GPU behaviour; these run only where CUDA is available (marker ``gpu``).

skinfo trains in float32 whatever the input dtype (float64 input is cast), and
offers no mixed precision (AMP): the density and Jacobian terms of MASS, IB-INN
and the approximate-mass flow need float32 accuracy.
"""

import pickle

import numpy as np
import pytest
import torch
from estimator_zoo import fast_classifiers, fast_detectors
from sklearn.datasets import make_blobs

import skinfo

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

ZOO = [*fast_classifiers(), *fast_detectors()]


@pytest.fixture(scope="module")
def data():
    return make_blobs(n_samples=200, centers=3, n_features=5, random_state=0)


def _target(est, y):
    return y if hasattr(est, "predict_proba") else None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("est", ZOO, ids=lambda e: repr(e)[:50])
def test_cuda_fit_matches_cpu_fit_and_loads_on_cpu(est, dtype, data, tmp_path):
    X, y = data
    X = X.astype(dtype)
    gpu = pickle.loads(pickle.dumps(est)).set_params(device="cuda").fit(X, _target(est, y))
    cpu = pickle.loads(pickle.dumps(est)).set_params(device="cpu").fit(X, _target(est, y))
    assert gpu.device_ == "cuda" and next(gpu.net_.module_.parameters()).is_cuda
    # same seed, same data: CPU and GPU kernels differ only in float32 rounding
    if hasattr(est, "predict_proba"):
        np.testing.assert_allclose(gpu.predict_proba(X), cpu.predict_proba(X), atol=2e-3)
    np.testing.assert_allclose(gpu.score_samples(X), cpu.score_samples(X), rtol=1e-2, atol=1e-2)
    again = pickle.loads(pickle.dumps(gpu))
    np.testing.assert_array_equal(again.score_samples(X), gpu.score_samples(X))
    # the safe format stores CPU tensors: the model loads onto the CPU on request
    gpu.save(tmp_path / "gpu.skinfo")
    on_cpu = skinfo.load(tmp_path / "gpu.skinfo", device="cpu")
    assert on_cpu.device_ == "cpu"
    np.testing.assert_allclose(on_cpu.score_samples(X), gpu.score_samples(X), rtol=1e-4, atol=1e-4)


def test_auto_device_picks_cuda(data):
    X, y = data
    est = fast_classifiers()[0].set_params(device="auto").fit(X, y)
    assert est.device_ == "cuda"


@pytest.mark.slow
@pytest.mark.parametrize("est", fast_classifiers(), ids=lambda e: repr(e)[:50])
def test_cuda_compiled_objective_trains_like_eager(est, data):
    """compile=True on CUDA (Triton kernels): the same losses as eager CUDA training."""
    X, y = data
    eager = pickle.loads(pickle.dumps(est)).set_params(device="cuda").fit(X, y)
    compiled = pickle.loads(pickle.dumps(est)).set_params(device="cuda", compile=True).fit(X, y)
    assert "_compiled_objective" in compiled.net_.__dict__  # it did not fall back
    np.testing.assert_allclose(
        compiled.history_[:, "train_loss"], eager.history_[:, "train_loss"], rtol=1e-3, atol=1e-4
    )
