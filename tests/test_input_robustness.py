"""Every estimator either works or raises a clear ValueError on unusual input.

Never a raw torch error and never a NaN prediction. Property-based over input
dtypes, shapes and label types (bounded examples), plus the edge cases listed
one by one.
"""

import os
import traceback
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from estimator_zoo import fast_classifiers, fast_detectors
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from skorch.callbacks import Callback

CLASSIFIERS = fast_classifiers()
ALL = CLASSIFIERS + fast_detectors()
ids = [repr(e)[:60] for e in ALL]
clf_ids = [repr(e)[:60] for e in CLASSIFIERS]

SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _fit_and_check(est, X, y, *, must_fit=False):
    """Fit; on success every output is finite (proba rows sum to 1).

    A ValueError raised by skinfo or sklearn is an accepted answer unless
    ``must_fit``; one raised from inside torch is not (it would be a raw
    torch error, not a clear message).
    """
    try:
        est.fit(X, y)
    except ValueError as error:
        origin = traceback.extract_tb(error.__traceback__)[-1].filename
        assert f"{os.sep}torch{os.sep}" not in origin, f"raw torch error: {error!r}"
        assert not must_fit, f"well-formed data refused: {error!r}"
        return
    if hasattr(est, "predict_proba"):
        proba = est.predict_proba(X)
        assert np.isfinite(proba).all()
        np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-9)
        assert set(np.unique(est.predict(X))) <= set(est.classes_)
    scores = est.score_samples(X)
    assert not np.isnan(scores).any()


@st.composite
def datasets(draw):
    n = draw(st.integers(2, 40))
    d = draw(st.integers(1, 5))
    dtype = draw(st.sampled_from([np.float16, np.float32, np.float64, np.int32, np.int64]))
    scale = draw(st.sampled_from([1e-3, 1.0, 1e3]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    X = (rng.normal(size=(n, d)) * scale).astype(dtype)
    n_classes = draw(st.integers(2, min(n, 6)))
    codes = np.r_[np.arange(n_classes), rng.integers(0, n_classes, n - n_classes)]
    kind = draw(st.sampled_from(["int", "str", "object", "bool"]))
    if kind == "bool":
        codes = codes % 2
        y = codes.astype(bool)
    elif kind == "str":
        y = np.array([f"class {c}" for c in codes])
    elif kind == "object":
        y = np.array([f"c{c}" for c in codes], dtype=object)
    else:
        y = codes * 7 - 3
    return X, y, scale


@pytest.mark.parametrize("est", ALL, ids=ids)
@SETTINGS
@given(data=datasets())
def test_any_dtype_shape_and_label_type(est, data):
    X, y, scale = data
    # inputs of unit scale or below must train; larger ones may diverge (a clear error)
    _fit_and_check(clone(est), X, y, must_fit=scale <= 1.0)


@pytest.mark.parametrize("est", CLASSIFIERS, ids=clf_ids)
def test_edge_cases(est):
    rng = np.random.default_rng(0)
    # two samples, n < batch_size
    _fit_and_check(clone(est), rng.normal(size=(2, 3)), np.array([0, 1]), must_fit=True)
    # 100 classes, 2 samples each
    X = rng.normal(size=(200, 4))
    y = np.repeat(np.arange(100), 2)
    fitted = clone(est).fit(X, y)
    assert fitted.predict_proba(X).shape == (200, 100)
    # a class missing from most batches
    X = rng.normal(size=(300, 3))
    y = np.zeros(300, dtype=int)
    y[:3] = 1
    _fit_and_check(clone(est).set_params(batch_size=16), X, y, must_fit=True)
    # constant features
    X = np.c_[np.ones(50), rng.normal(size=50), np.zeros(50)]
    _fit_and_check(clone(est), X, np.arange(50) % 2, must_fit=True)
    # denormals
    X = rng.normal(size=(40, 3)) * 1e-310
    _fit_and_check(clone(est), X, np.arange(40) % 2, must_fit=True)
    # huge magnitudes: either trains or stops with TrainingDivergedError (a ValueError)
    X = rng.normal(size=(40, 3)) * 1e30
    _fit_and_check(clone(est), X, np.arange(40) % 2)


@pytest.mark.parametrize("est", CLASSIFIERS, ids=clf_ids)
def test_predicting_far_outside_the_training_range(est):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    fitted = clone(est).fit(X, np.arange(60) % 3)
    try:
        proba = fitted.predict_proba(X * 1e30)
    except ValueError as error:
        assert "NaN" in str(error)
    else:
        assert np.isfinite(proba).all()


@pytest.mark.parametrize("est", ALL, ids=ids)
def test_pandas_feature_names(est):
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(40, 3)), columns=["a", "b", "c"])
    y = np.arange(40) % 2
    fitted = clone(est).fit(df, y)
    np.testing.assert_array_equal(fitted.feature_names_in_, ["a", "b", "c"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fitted.score_samples(df)  # same names: no warning
    with pytest.warns(UserWarning, match="feature names"):
        fitted.score_samples(df.to_numpy())
    with pytest.raises(ValueError, match="feature names"):
        fitted.score_samples(df[["c", "b", "a"]])


@pytest.mark.parametrize("est", ALL, ids=ids)
def test_sparse_input_densified_when_small(est, monkeypatch):
    rng = np.random.default_rng(0)
    X = sp.random(40, 5, density=0.3, random_state=0, format="csr")
    y = np.arange(40) % 2
    dense = clone(est).fit(X.toarray(), y).score_samples(X.toarray())
    sparse = clone(est).fit(X, y).score_samples(X)
    np.testing.assert_array_equal(dense, sparse)
    import skinfo._input

    monkeypatch.setattr(skinfo._input, "MAX_DENSIFIED_SIZE", 100)
    with pytest.raises(ValueError, match="too large to densify"):
        clone(est).fit(sp.random(40, 5, density=0.1, random_state=rng.integers(9)), y)


def _is_detector(est):
    return not hasattr(est, "predict_proba")


def _bad_inputs(detector):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 4))
    y = np.arange(30) % 3
    nan, inf = X.copy(), X.copy()
    nan[3, 1], inf[5, 2] = np.nan, np.inf
    cases = {
        "nan": (nan, y, "NaN"),
        "inf": (inf, y, "infinity|inf"),
        "1d": (X[:, 0], y, "2D array"),
        "empty": (X[:0], y[:0], "0 sample"),
        "huge": (X * 1e39, y, "too large"),
        # (n, H, W) and (n, C, H, W) are images (tests/test_usability.py); 5-D is not
        "5d": (X.reshape(30, 1, 1, 2, 2), y, "dim 5|2D|2 dimensions"),
    }
    if not detector:
        cases["one-class"] = (X, np.zeros(30, dtype=int), "class")
        cases["mismatch"] = (X, y[:-1], "inconsistent numbers of samples")
    return cases


@pytest.mark.parametrize("est", ALL, ids=ids)
def test_bad_input_gives_clear_value_error_for_every_estimator(est):
    """NaN/inf, 1-D or 5-D X, empty X, one class, mismatched lengths: sklearn's ValueError."""
    detector = _is_detector(est)
    for X, y, match in _bad_inputs(detector).values():
        with pytest.raises(ValueError, match=match):
            clone(est).fit(X, None if detector else y)
    X, y, _ = _bad_inputs(detector)["nan"]
    X = np.nan_to_num(X)
    fitted = clone(est).fit(X, None if detector else y)
    with pytest.raises(ValueError, match="X has 3 features, but .* is expecting 4"):
        fitted.score_samples(X[:, :3])
    with pytest.raises(ValueError, match="NaN"):
        fitted.score_samples(np.where(np.isfinite(X) & (X > 1.5), np.nan, X))


class _PoisonWeights(Callback):
    """skorch callback: set every weight to NaN after `after` training batches."""

    def __init__(self, after):
        self.after = after

    def initialize(self):
        self.batches = 0
        return self

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        if training:
            self.batches += 1
            if self.batches == self.after:
                with torch.no_grad():
                    for p in net.module_.parameters():
                        p.fill_(float("nan"))


@pytest.mark.parametrize("est", ALL, ids=ids)
def test_divergence_stops_with_an_error_naming_epoch_and_components(est):
    """NaN weights in epoch 2 (3 batches per epoch): TrainingDivergedError, epochs kept."""
    from skinfo import TrainingDivergedError

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = None if _is_detector(est) else np.arange(60) % 2
    params = dict(batch_size=20, max_epochs=4, callbacks=[_PoisonWeights(after=4)])
    diverging = clone(est).set_params(**params)
    with pytest.raises(TrainingDivergedError, match=r"epoch 2, batch 2 .*component\(s\) \[") as e:
        diverging.fit(X, y)
    assert isinstance(e.value, ValueError)
    assert len(e.value.history) == 1 and np.isfinite(e.value.history[:, "train_loss"]).all()
    assert not hasattr(diverging, "net_")  # a failed fit leaves the estimator unfitted
    restoring = clone(est).set_params(on_nan="restore", **params)
    with pytest.warns(UserWarning, match="weights of epoch 1 .* were restored"):
        restoring.fit(X, y)
    scores = restoring.score_samples(X)
    assert np.isfinite(scores).all()
    reference = clone(est).set_params(max_epochs=1, batch_size=20).fit(X, y)
    np.testing.assert_allclose(scores, reference.score_samples(X), rtol=1e-5, atol=1e-6)
