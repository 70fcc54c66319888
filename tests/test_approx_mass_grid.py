"""Fast checks of the alpha / noise sweep of the approximate-mass benchmark."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from benchmarks.approx_mass import alpha_noise_grid, grid_to_markdown
from skinfo import ApproxMassFlowDetector
from skinfo.datasets import load_digits_held_out, load_digits_split, make_digits_ood


def _direct_mean_auroc(alpha, noise, epochs, seed):
    """Mean AUROC over 'flip' and the held-out digits of flows fitted for ``epochs`` epochs."""
    X_tr, X_te, _, _ = load_digits_split(random_state=seed)
    X_tr_in, _, X_te_in, _, X_held_out = load_digits_held_out((0, 1, 2, 3, 4), random_state=seed)
    tasks = [
        (X_tr, X_te, make_digits_ood(X_te, "flip", random_state=seed)),
        (X_tr_in, X_te_in, X_held_out),
    ]
    aurocs = []
    for X_train, X_in, X_out in tasks:
        det = ApproxMassFlowDetector(alpha=alpha, noise=noise, max_epochs=epochs, random_state=seed)
        pipe = make_pipeline(StandardScaler(), det).fit(X_train)
        # the flip set is as large as the test set and the held-out set nearly so: balance
        n = min(len(X_in), len(X_out))
        rng = np.random.RandomState(seed)
        keep_in = rng.choice(len(X_in), n, replace=False) if len(X_in) > n else slice(None)
        keep_out = rng.choice(len(X_out), n, replace=False) if len(X_out) > n else slice(None)
        s_in, s_out = pipe.score_samples(X_in)[keep_in], pipe.score_samples(X_out)[keep_out]
        labels = np.r_[np.ones(len(s_in)), np.zeros(len(s_out))]
        aurocs.append(roc_auc_score(labels, np.r_[s_in, s_out]))
    return float(np.mean(aurocs))


def test_grid_snapshots_equal_shorter_fits_and_table():
    grid = alpha_noise_grid([0], [2.0], [0.1], [1, 2], ["flip"])
    assert set(grid) == {"alpha=2, noise=0.05", "alpha=2, noise=0.1"}
    row = grid["alpha=2, noise=0.05"]
    assert row["seeds"] == [0] and set(row) >= {"1", "2"}
    assert "2" not in grid["alpha=2, noise=0.1"]  # the noise sweep uses the first epochs only
    # the epoch-1 snapshot of the 2-epoch run scores like a 1-epoch fit (sklearn AUROC)
    expected = _direct_mean_auroc(2.0, 0.05, 1, seed=0)
    assert row["1"]["mass"][0] == pytest.approx(expected, abs=1e-12)
    text = grid_to_markdown(
        {"settings": {"seeds": [0], "grid_epochs": [1, 2], "kinds": ["flip"]}, "grid": grid}
    )
    assert "| alpha | noise | mass, 1 epochs | log-lik, 1 epochs | mass, 2 epochs |" in text
    assert f"| 2 | 0.05 | {row['1']['mass'][0]:.3f} |" in text
