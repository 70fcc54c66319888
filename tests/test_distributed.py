"""Hyperparameter search on existing engines through joblib backends (dask, ray).

Each test runs a small GridSearchCV on a local cluster bound to the loopback
interface and checks that the results equal the local (n_jobs=1) run for the
same seeds: the estimators are deterministic given ``random_state``, whatever
process fits them.
"""

import contextlib
import os
import sys
from functools import partial

import joblib
import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.model_selection import GridSearchCV

from skinfo import OVAClassifier

GRID = {"lr": [1e-2, 3e-2]}


def _accuracy_noting_pid(estimator, X, y, *, pid_dir=None):
    """Accuracy, as GridSearchCV's default; also notes which process scored."""
    if pid_dir is not None:
        (pid_dir / f"{os.getpid()}.pid").touch()
    return estimator.score(X, y)


def _search(pid_dir=None):
    est = OVAClassifier(hidden_layer_sizes=(16,), max_epochs=5, random_state=0, device="cpu")
    return GridSearchCV(est, GRID, cv=2, scoring=partial(_accuracy_noting_pid, pid_dir=pid_dir))


def _worker_pids(pid_dir):
    return {int(p.stem) for p in pid_dir.glob("*.pid")} - {os.getpid()}


@pytest.fixture(scope="module")
def data():
    return make_blobs(n_samples=120, centers=3, n_features=4, random_state=0)


@pytest.fixture(scope="module")
def local_result(data):
    return _search().fit(*data).cv_results_["mean_test_score"]


@pytest.mark.slow
def test_dask_backend_matches_local(data, local_result, tmp_path):
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster),
        joblib.parallel_backend("dask"),
    ):
        scores = _search(tmp_path).fit(*data).cv_results_["mean_test_score"]
    np.testing.assert_array_equal(scores, local_result)
    assert _worker_pids(tmp_path)  # the fits ran in the cluster's worker processes


@pytest.mark.slow
def test_ray_backend_matches_local(data, local_result, tmp_path):
    ray = pytest.importorskip("ray")
    from ray.util.joblib import register_ray

    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        _node_ip_address="127.0.0.1",
    )
    try:
        register_ray()
        # ray's workers cannot import this test module: ship the scorer by value
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
        with joblib.parallel_backend("ray"):
            scores = _search(tmp_path).fit(*data).cv_results_["mean_test_score"]
    finally:
        with contextlib.suppress(ValueError):  # not registered if it failed early
            ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
        ray.shutdown()
    np.testing.assert_array_equal(scores, local_result)
    assert _worker_pids(tmp_path)  # the fits ran in ray's worker processes


def test_accelerate_code_path_on_cpu(data):
    """Data-parallel training goes through skorch's accelerate integration; here on CPU."""
    accelerate = pytest.importorskip("accelerate")
    from skinfo._net import AcceleratedSkinfoNet

    X, y = data
    clf = OVAClassifier(
        hidden_layer_sizes=(16,),
        max_epochs=10,
        lr=1e-2,
        random_state=0,
        accelerator=accelerate.Accelerator(cpu=True),
    ).fit(X, y)
    assert isinstance(clf.net_, AcceleratedSkinfoNet)
    assert clf.net_.device is None  # placement is left to the accelerator
    assert clf.score(X, y) > 0.9
    assert len(clf.history_) == 10 and "train_positive" in clf.history_[-1]
