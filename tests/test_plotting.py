"""skinfo.plotting: every figure renders to a non-empty PNG with labelled axes."""

import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.datasets import make_blobs  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

from skinfo import metrics, plotting  # noqa: E402
from skinfo.plotting import (  # noqa: E402
    accuracy_vs_confidence,
    confidence_landscape,
    confidence_landscapes,
    information_plane,
    latent_space,
    reliability_diagram,
    roc_curves,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def predictions():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=2.0, size=(300, 4))
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.where(rng.uniform(size=300) < 0.7, proba.argmax(axis=1), rng.integers(0, 4, 300))
    return y, proba


def _saved_png(ax, tmp_path, name):
    path = tmp_path / f"{name}.png"
    ax.figure.savefig(path, dpi=60)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    assert ax.get_xlabel() and ax.get_ylabel()
    return path


def test_reliability_diagram(predictions, tmp_path):
    y, proba = predictions
    ax = reliability_diagram(y, proba, n_bins=10)
    _saved_png(ax, tmp_path, "reliability")
    ece = metrics.expected_calibration_error(y, proba, n_bins=10)
    assert ax.get_title() == f"ECE = {100 * ece:.2f} %"
    bins = metrics.calibration_bins(y, proba, n_bins=10)
    heights = [p.get_height() for p in ax.containers[0]]
    np.testing.assert_allclose(heights, np.nan_to_num(bins.accuracy))
    # one gap patch per non-empty bin, reaching up or down to the mean confidence
    gaps = ax.containers[1]
    filled = bins.count > 0
    assert len(gaps) == filled.sum()
    tops = [p.get_y() + p.get_height() for p in gaps]
    np.testing.assert_allclose(tops, bins.confidence[filled])


def test_reliability_diagram_on_given_axes(predictions):
    y, proba = predictions
    fig, (a, b) = plt.subplots(1, 2)
    assert reliability_diagram(y, proba, ax=b) is b
    assert not a.has_data()


def test_roc_curves(tmp_path):
    rng = np.random.default_rng(1)
    s_in = rng.normal(1.0, size=200)
    outs = {"near": rng.normal(0.5, size=150), "far": rng.normal(-2.0, size=100)}
    ax = roc_curves(s_in, outs)
    _saved_png(ax, tmp_path, "roc")
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    for name, s_out in outs.items():
        assert f"{name} (AUROC {metrics.ood_auroc(s_in, s_out):.3f})" in texts
    # the "far" curve dominates: TPR 1 is reached at a small FPR
    far = ax.lines[1]
    fpr, tpr = far.get_xdata(), far.get_ydata()
    assert fpr[np.argmax(tpr >= 1.0)] < 0.5
    ax = roc_curves(s_in, outs, balance=True, random_state=0)
    assert len(ax.lines) == 3
    with pytest.raises(TypeError, match="dict"):
        roc_curves(s_in, outs["near"])


def test_accuracy_vs_confidence(predictions, tmp_path):
    y, proba = predictions
    rng = np.random.default_rng(2)
    ood = rng.dirichlet(np.ones(4), size=100)
    y_mixed = np.r_[y, np.full(100, -1)]
    is_ood = np.r_[np.zeros(len(y), bool), np.ones(100, bool)]
    ax = accuracy_vs_confidence(y, proba, label="in-distribution")
    ax = accuracy_vs_confidence(y_mixed, np.r_[proba, ood], is_ood=is_ood, label="mixed", ax=ax)
    _saved_png(ax, tmp_path, "acc_conf")
    tau, acc, _ = metrics.accuracy_at_confidence(y_mixed, np.r_[proba, ood], is_ood=is_ood)
    np.testing.assert_allclose(ax.lines[1].get_xdata(), tau)
    np.testing.assert_allclose(ax.lines[1].get_ydata(), acc)
    assert len(ax.get_legend().get_texts()) == 2


def test_confidence_landscape(tmp_path):
    X, y = make_blobs(n_samples=150, centers=3, random_state=0)
    clf = LogisticRegression().fit(X, y)
    ax = confidence_landscape(clf, X, y, resolution=40)
    _saved_png(ax, tmp_path, "landscape")
    # the grid reaches well beyond the data
    x_lo, x_hi = ax.get_xlim()
    assert x_lo < X[:, 0].min() and x_hi > X[:, 0].max()
    # softmax confidence far from the data stays high (the pathology of Fig. 1)
    far = X.mean(axis=0) + 3 * (X.max(axis=0) - X.min(axis=0))
    assert clf.predict_proba(far[None]).max() > 0.9


def test_confidence_landscape_options():
    X, y = make_blobs(n_samples=60, centers=2, random_state=1)
    clf = LogisticRegression().fit(X, y)
    calls = []

    def margin(est, grid):
        calls.append(grid.shape)
        return np.abs(est.decision_function(grid))

    ax = confidence_landscape(clf, X, y, radius=5.0, resolution=15, confidence=margin)
    assert calls == [(225, 2)]
    np.testing.assert_allclose(ax.get_xlim(), 0.5 * (X[:, 0].min() + X[:, 0].max()) + [-5, 5])
    with pytest.raises(ValueError, match="2-D inputs"):
        confidence_landscape(clf, np.c_[X, X[:, :1]], y)
    with pytest.raises(ValueError, match="confidence"):
        confidence_landscape(clf, X, y, confidence="entropy")
    with pytest.raises(NotFittedError):
        confidence_landscape(LogisticRegression(), X, y)


def test_confidence_landscape_keeps_feature_names():
    pd = pytest.importorskip("pandas")
    X, y = make_blobs(n_samples=60, centers=2, random_state=1)
    X = pd.DataFrame(X, columns=["a", "b"])
    clf = LogisticRegression().fit(X, y)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "X does not have valid feature names"
        confidence_landscape(clf, X, y, resolution=10)


def test_information_plane(tmp_path):
    history = [{"epoch": e, "rate": 5.0 / e, "distortion": 1.0 + 1.0 / e} for e in range(1, 6)]
    history[2] = {"epoch": 3, "rate": 2.0}  # an epoch without distortion is skipped
    ax = information_plane(history, x_key="rate", y_key="distortion", label="beta=1")
    _saved_png(ax, tmp_path, "info_plane")
    assert ax.get_xlabel() == "rate" and ax.get_ylabel() == "distortion"
    np.testing.assert_allclose(ax.lines[0].get_xdata(), [5.0, 2.5, 1.25, 1.0])
    annotations = [t.get_text() for t in ax.texts]
    assert annotations == ["epoch 1", "epoch 5"] or annotations == ["epoch 5", "epoch 1"]
    with pytest.raises(ValueError, match="logged keys"):
        information_plane(history, x_key="rate", y_key="nope")


def test_information_plane_skorch_history():
    from skorch.history import History

    history = History()
    for epoch in range(1, 4):
        history.new_epoch()
        history.record("epoch", epoch)
        history.record("train_loss", 1.0 / epoch)
        history.record("valid_loss", 1.5 / epoch)
    ax = information_plane(history, x_key="train_loss", y_key="valid_loss")
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [1.5, 0.75, 0.5])


def test_missing_matplotlib_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install skinfo\[plot\]"):
        plotting.reliability_diagram([0, 1], [[0.8, 0.2], [0.3, 0.7]])


def test_latent_space_pca_matches_sklearn(tmp_path):
    from sklearn.decomposition import PCA
    from sklearn.random_projection import GaussianRandomProjection

    X, y = make_blobs(n_samples=120, centers=3, n_features=6, random_state=0)
    proj = GaussianRandomProjection(n_components=4, random_state=0).fit(X)
    ax = latent_space(proj, X, y)
    _saved_png(ax, tmp_path, "latent")
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("PC 1", "PC 2")
    # one scatter per class, holding exactly the PCA coordinates of that class
    expected = PCA(n_components=2).fit_transform(proj.transform(X))
    assert len(ax.collections) == 3
    for k, coll in enumerate(ax.collections):
        np.testing.assert_allclose(coll.get_offsets(), expected[y == k])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["0", "1", "2"]


def test_latent_space_first_coordinates_and_subsampling():
    from sklearn.preprocessing import FunctionTransformer

    X, y = make_blobs(n_samples=300, centers=2, n_features=3, random_state=1)
    ident = FunctionTransformer().fit(X)
    ax = latent_space(ident, X, y, projection="first", max_points=50)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("z1", "z2")
    points = np.vstack([c.get_offsets() for c in ax.collections])
    assert len(points) == 50
    # every drawn point is a row of X's first two coordinates
    rows = {tuple(r) for r in np.round(X[:, :2], 10)}
    assert all(tuple(p) in rows for p in np.round(points, 10))
    with pytest.raises(ValueError, match="at least 2"):
        latent_space(FunctionTransformer(lambda Z: Z[:, :1]).fit(X), X, y)
    with pytest.raises(ValueError, match="projection"):
        latent_space(ident, X, y, projection="tsne")
    with pytest.raises(ValueError, match="samples"):
        latent_space(ident, X, y[:-1])


def test_latent_space_of_a_skinfo_estimator(tmp_path):
    from skinfo import SoftmaxClassifier

    X, y = make_blobs(n_samples=90, centers=3, n_features=4, random_state=2)
    clf = SoftmaxClassifier(hidden_layer_sizes=(8,), max_epochs=2, random_state=0).fit(X, y)
    ax = latent_space(clf, X, y)
    _saved_png(ax, tmp_path, "latent_skinfo")
    n_drawn = sum(len(c.get_offsets()) for c in ax.collections)
    assert n_drawn == len(X)


def test_confidence_landscapes_side_by_side(tmp_path):
    from sklearn.neighbors import KNeighborsClassifier

    X, y = make_blobs(n_samples=90, centers=3, random_state=0)
    calls = []

    def margin(est, grid):
        calls.append(len(grid))
        return est.predict_proba(grid).max(axis=1)

    models = {
        "logistic": LogisticRegression(),
        "3-NN": (KNeighborsClassifier(3), margin),
        "logistic again": LogisticRegression(C=0.01),
        "5-NN": KNeighborsClassifier(5),
    }
    fig = confidence_landscapes(models, X, y, ncols=3, resolution=12)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title().split(" (")[0] for ax in panels] == list(models)
    acc = LogisticRegression().fit(X, y).score(X, y)
    assert panels[0].get_title() == f"logistic (train acc {acc:.2f})"
    assert calls == [144]
    assert all(ax.get_xlabel() == "x1" and ax.get_ylabel() == "x2" for ax in panels)
    # 2 rows x 3 columns, the unused sixth panel removed; 4 colour bars
    assert len(fig.axes) == 4 + 4
    path = tmp_path / "landscapes.png"
    fig.savefig(path, dpi=40)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 1000
    with pytest.raises(TypeError, match="non-empty dict"):
        confidence_landscapes({}, X, y)
    fitted = {"fitted": LogisticRegression().fit(X, y)}
    fig = confidence_landscapes(fitted, X, y, fit=False, resolution=8)
    assert fig.axes[0].get_title().startswith("fitted")


def test_confidence_landscapes_leaves_the_given_estimators_unfitted():
    from sklearn.neighbors import KNeighborsClassifier

    X, y = make_blobs(n_samples=60, centers=3, random_state=0)
    logistic, knn = LogisticRegression(C=0.5), KNeighborsClassifier(3)
    params = [logistic.get_params(), knn.get_params()]
    confidence_landscapes({"logistic": logistic, "3-NN": (knn, "max_proba")}, X, y, resolution=8)
    for est, before in zip((logistic, knn), params):
        with pytest.raises(NotFittedError):
            est.predict(X)
        assert est.get_params() == before
        assert not any(name.endswith("_") and not name.startswith("_") for name in vars(est))
