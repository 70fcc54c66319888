"""skinfo.metrics against independent computations: loops, closed forms and sklearn."""

import warnings

import numpy as np
import pytest
from scipy.stats import entropy as scipy_entropy
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss

from skinfo import metrics
from skinfo.metrics import (
    IBINN_BIN_EDGES,
    accuracy_at_confidence,
    brier_score,
    calibration_bins,
    entropy_increase,
    expected_calibration_error,
    fpr_at_tpr,
    ibinn_calibration_errors,
    integrated_calibration_error,
    max_calibration_error,
    negative_log_likelihood,
    ood_aupr_in,
    ood_aupr_out,
    ood_auroc,
    predictive_entropy,
    tnr_at_tpr,
)

# ---------------------------------------------------------------------------
# helpers: random predictions and brute-force reference implementations
# ---------------------------------------------------------------------------


def _random_proba(rng, n, k, sharpness=3.0):
    logits = rng.normal(scale=sharpness, size=(n, k))
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


def _loop_top_label_bins(y, proba, n_bins):
    """Guo et al.'s bins ((b-1)/M, b/M] written as plain Python loops."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    members = [[] for _ in range(n_bins)]
    for i in range(len(y)):
        row = list(proba[i])
        conf = max(row)
        pred = row.index(conf)
        for b in range(n_bins):
            lo, hi = edges[b], edges[b + 1]
            if (lo < conf <= hi) or (b == 0 and conf == 0.0):
                members[b].append((conf, pred == y[i]))
                break
    out = []
    for b, m in enumerate(members):
        if m:
            conf = sum(c for c, _ in m) / len(m)
            acc = sum(1.0 for _, ok in m if ok) / len(m)
            out.append((len(m), conf, acc, edges[b + 1] - edges[b]))
    return out


def _loop_ece_mce_ice(y, proba, n_bins):
    bins = _loop_top_label_bins(y, proba, n_bins)
    n = len(y)
    ece = sum(cnt / n * abs(acc - conf) for cnt, conf, acc, _ in bins)
    mce = max(abs(acc - conf) for _, conf, acc, _ in bins)
    ice = sum(w * abs(acc - conf) for _, conf, acc, w in bins)
    return ece, mce, ice


def _loop_ibinn(y, proba, edges, min_count):
    """Appendix C of the IB-INN paper, Eqs. 58-64, with [y' = y_j] and a closed last bin."""
    n_bins = len(edges) - 1
    n = [0] * n_bins
    n_c = [0] * n_bins
    for j in range(len(y)):
        for k in range(proba.shape[1]):
            p = proba[j, k]
            for i in range(n_bins):
                last = i == n_bins - 1
                if edges[i] <= p < edges[i + 1] or (last and p == edges[i + 1]):
                    n[i] += 1
                    n_c[i] += int(k == y[j])
                    break
    kept = [i for i in range(n_bins) if n[i] >= min_count]
    n_tot = sum(n[i] for i in kept)
    gap = {i: abs((edges[i] + edges[i + 1]) / 2 - n_c[i] / n[i]) for i in kept}
    ece = sum(n[i] / n_tot * gap[i] for i in kept)
    mce = max(gap.values())
    ice = sum((edges[i + 1] - edges[i]) * gap[i] for i in kept)
    return ece, mce, ice


# ---------------------------------------------------------------------------
# top-label calibration
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n_bins", [1, 5, 15])
def test_ece_mce_ice_match_loops(seed, n_bins):
    rng = np.random.default_rng(seed)
    proba = _random_proba(rng, 150, 4)
    y = rng.integers(0, 4, size=150)
    y[:4] = np.arange(4)
    ece, mce, ice = _loop_ece_mce_ice(y, proba, n_bins)
    assert expected_calibration_error(y, proba, n_bins=n_bins) == pytest.approx(ece, abs=1e-12)
    assert max_calibration_error(y, proba, n_bins=n_bins) == pytest.approx(mce, abs=1e-12)
    assert integrated_calibration_error(y, proba, n_bins=n_bins) == pytest.approx(ice, abs=1e-12)


def test_calibration_bins_match_loops():
    rng = np.random.default_rng(7)
    proba = _random_proba(rng, 200, 3)
    y = rng.integers(0, 3, size=200)
    bins = calibration_bins(y, proba, n_bins=10)
    loop = _loop_top_label_bins(y, proba, 10)
    filled = bins.count > 0
    np.testing.assert_array_equal(bins.count[filled], [c for c, *_ in loop])
    np.testing.assert_allclose(bins.confidence[filled], [c for _, c, _, _ in loop])
    np.testing.assert_allclose(bins.accuracy[filled], [a for _, _, a, _ in loop])
    assert np.all(np.isnan(bins.accuracy[~filled])) and np.all(np.isnan(bins.confidence[~filled]))
    np.testing.assert_allclose(bins.edges, np.linspace(0, 1, 11))
    assert bins.count.sum() == 200


def test_bin_boundaries_are_right_closed():
    # confidence exactly 0.6 goes to (0.4, 0.6] with 5 bins, 0.600001 to (0.6, 0.8]
    y_prob = [[0.6, 0.4], [0.600001, 0.399999]]
    bins = calibration_bins([0, 0], y_prob, n_bins=5, labels=[0, 1])
    np.testing.assert_array_equal(bins.count, [0, 0, 1, 1, 0])


def test_constant_confidence_closed_form():
    # always 0.7 on class 0, right 60 % of the time: |0.6 - 0.7| = 0.1 exactly
    n = 1000
    y_prob = np.tile([0.7, 0.2, 0.1], (n, 1))
    y = np.array([0] * 600 + [1] * 300 + [2] * 100)
    assert expected_calibration_error(y, y_prob) == pytest.approx(0.1, abs=1e-12)
    assert max_calibration_error(y, y_prob) == pytest.approx(0.1, abs=1e-12)
    assert integrated_calibration_error(y, y_prob) == pytest.approx(0.1 / 15, abs=1e-12)


def test_perfectly_calibrated_predictions_have_small_ece():
    rng = np.random.default_rng(0)
    n = 100_000
    p = rng.uniform(size=n)
    y = (rng.uniform(size=n) < p).astype(int)  # P(y = 1) = p exactly
    y_prob = np.column_stack([1 - p, p])
    assert expected_calibration_error(y, y_prob) < 0.01
    # an overconfident version of the same predictions is clearly worse
    sharp = np.clip(1.5 * (p - 0.5) + 0.5, 0, 1)
    assert expected_calibration_error(y, np.column_stack([1 - sharp, sharp])) > 0.05


def test_string_labels_and_column_order():
    rng = np.random.default_rng(1)
    proba = _random_proba(rng, 80, 3)
    y_int = rng.integers(0, 3, size=80)
    names = np.array(["cat", "dog", "emu"])
    y_str = names[y_int]
    ece = expected_calibration_error(y_int, proba)
    assert expected_calibration_error(y_str, proba) == pytest.approx(ece)
    # columns given in another order, with labels= saying so
    order = [2, 0, 1]
    assert expected_calibration_error(y_str, proba[:, order], labels=names[order]) == (
        pytest.approx(ece)
    )
    assert negative_log_likelihood(y_str, proba[:, order], labels=names[order]) == (
        pytest.approx(negative_log_likelihood(y_int, proba))
    )
    assert brier_score(y_str, proba[:, order], labels=names[order]) == (
        pytest.approx(brier_score(y_int, proba))
    )
    ib = ibinn_calibration_errors(y_int, proba, min_count=1)
    ib_str = ibinn_calibration_errors(y_str, proba[:, order], labels=names[order], min_count=1)
    assert ib_str == pytest.approx(ib)


def test_labels_absent_from_y_true():
    # a class that never occurs in y_true still needs its column
    y_prob = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]])
    assert expected_calibration_error([0, 1], y_prob, labels=[0, 1, 2]) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="columns"):
        expected_calibration_error([0, 1], y_prob)


def test_binary_one_dimensional_probabilities():
    rng = np.random.default_rng(2)
    p = rng.uniform(size=60)
    y = rng.integers(0, 2, size=60)
    two = np.column_stack([1 - p, p])
    assert expected_calibration_error(y, p) == pytest.approx(expected_calibration_error(y, two))
    assert brier_score(y, p) == pytest.approx(brier_score(y, two))
    assert negative_log_likelihood(y, p) == pytest.approx(negative_log_likelihood(y, two))
    np.testing.assert_allclose(predictive_entropy(p), predictive_entropy(two))


def test_ova_probabilities_need_not_sum_to_one():
    # one-vs-all probabilities: the calibration metrics only read the maximum
    y_prob = np.array([[0.3, 0.1], [0.05, 0.2]])
    assert expected_calibration_error([0, 0], y_prob, n_bins=10, labels=[0, 1]) == pytest.approx(
        0.5 * 0.7 + 0.5 * 0.2
    )


# ---------------------------------------------------------------------------
# IB-INN appendix C
# ---------------------------------------------------------------------------


def test_ibinn_bin_edges():
    expected = [0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85]
    expected += [0.95, 0.96, 0.97, 0.98, 0.99, 1.0]
    np.testing.assert_allclose(IBINN_BIN_EDGES, expected, atol=1e-15)
    assert len(IBINN_BIN_EDGES) == 20  # 19 bins
    with pytest.raises(ValueError):
        IBINN_BIN_EDGES[0] = 0.5  # read-only


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("min_count", [1, 21])
def test_ibinn_matches_loops(seed, min_count):
    rng = np.random.default_rng(seed)
    proba = _random_proba(rng, 120, 5, sharpness=2.0)
    y = rng.integers(0, 5, size=120)
    y[:5] = np.arange(5)
    ece, mce, ice = _loop_ibinn(y, proba, IBINN_BIN_EDGES.tolist(), min_count)
    got = ibinn_calibration_errors(y, proba, min_count=min_count)
    assert set(got) == {"ece", "mce", "ice", "geometric_mean"}
    assert got["ece"] == pytest.approx(ece, abs=1e-12)
    assert got["mce"] == pytest.approx(mce, abs=1e-12)
    assert got["ice"] == pytest.approx(ice, abs=1e-12)
    assert got["geometric_mean"] == pytest.approx((ece * mce * ice) ** (1 / 3), rel=1e-12)


def test_ibinn_closed_form_and_exact_one():
    # probabilities 1 and 0 only: 1.0 must land in the last bin [0.99, 1], 0 in [0, 0.01)
    y = np.array([0, 1, 2, 0])
    y_prob = np.eye(3)[[0, 1, 2, 1]]  # the last sample is wrong
    got = ibinn_calibration_errors(y, y_prob, min_count=1)
    # bin [0.99, 1]: 4 predictions, 3 correct, centre 0.995
    # bin [0, 0.01): 8 predictions, 1 correct, centre 0.005
    gap_hi, gap_lo = abs(0.995 - 0.75), abs(0.005 - 0.125)
    assert got["ece"] == pytest.approx((4 * gap_hi + 8 * gap_lo) / 12)
    assert got["mce"] == pytest.approx(gap_hi)
    assert got["ice"] == pytest.approx(0.01 * gap_hi + 0.01 * gap_lo)


def test_ibinn_differs_from_top_label_and_drops_sparse_bins():
    y_prob = np.tile([0.9, 0.05, 0.05], (20, 1))
    y = np.array([0] * 18 + [1, 2])
    got = ibinn_calibration_errors(y, y_prob, min_count=1)
    assert got["mce"] == pytest.approx(0.05)  # 0.05-predictions: centre 0.1, accuracy 0.05
    assert expected_calibration_error(y, y_prob) == pytest.approx(0.0, abs=1e-12)
    # with min_count=21 only the bin of the 40 small predictions is left
    kept = ibinn_calibration_errors(y, y_prob, min_count=21)
    assert kept["ece"] == pytest.approx(0.05) and kept["mce"] == pytest.approx(0.05)
    assert kept["ice"] == pytest.approx(0.1 * 0.05)
    with pytest.raises(ValueError, match="min_count"):
        ibinn_calibration_errors(y, y_prob, min_count=41)


def test_ibinn_custom_edges_and_validation():
    rng = np.random.default_rng(3)
    proba = _random_proba(rng, 50, 3)
    y = rng.integers(0, 3, size=50)
    edges = np.linspace(0, 1, 11)
    ece, mce, ice = _loop_ibinn(y, proba, edges.tolist(), 1)
    got = ibinn_calibration_errors(y, proba, bin_edges=edges, min_count=1)
    assert (got["ece"], got["mce"], got["ice"]) == pytest.approx((ece, mce, ice))
    for bad in ([0.0, 0.5], [0.1, 1.0], [0.0, 0.6, 0.4, 1.0], [0.0]):
        with pytest.raises(ValueError, match="bin_edges"):
            ibinn_calibration_errors(y, proba, bin_edges=bad)
    with pytest.raises(ValueError, match="min_count"):
        ibinn_calibration_errors(y, proba, min_count=0)


# ---------------------------------------------------------------------------
# accuracy vs confidence
# ---------------------------------------------------------------------------


def test_accuracy_at_confidence_matches_loop():
    rng = np.random.default_rng(4)
    proba = _random_proba(rng, 100, 3)
    y = rng.integers(0, 3, size=100).astype(object)
    is_ood = rng.uniform(size=100) < 0.3
    y[is_ood] = "ood"  # anything goes for OOD samples
    tau = np.linspace(0, 1, 21)
    got_tau, acc, cov = accuracy_at_confidence(y, proba, thresholds=tau, is_ood=is_ood)
    np.testing.assert_array_equal(got_tau, tau)
    for t, a, c in zip(tau, acc, cov):
        kept = [i for i in range(100) if proba[i].max() >= t]
        assert c == pytest.approx(len(kept) / 100)
        if not kept:
            assert np.isnan(a)
            continue
        right = [i for i in kept if not is_ood[i] and proba[i].argmax() == y[i]]
        assert a == pytest.approx(len(right) / len(kept))


def test_accuracy_at_confidence_defaults():
    tau, acc, cov = accuracy_at_confidence([0, 1], [[0.9, 0.1], [0.4, 0.6]])
    assert tau.shape == (101,) and tau[0] == 0.0 and tau[-1] == 1.0
    assert acc[0] == 1.0 and cov[0] == 1.0 and np.isnan(acc[-1])


# ---------------------------------------------------------------------------
# proper scores and entropies
# ---------------------------------------------------------------------------


def test_brier_multiclass_formula_and_sklearn():
    rng = np.random.default_rng(5)
    proba = _random_proba(rng, 70, 4)
    y = rng.integers(0, 4, size=70)
    y[:4] = np.arange(4)
    onehot = np.eye(4)[y]
    expected = np.mean(np.sum((proba - onehot) ** 2, axis=1))
    assert brier_score(y, proba) == pytest.approx(expected, rel=1e-12)
    assert brier_score(y, proba) == pytest.approx(
        brier_score_loss(y, proba, labels=np.arange(4), scale_by_half=False)
    )


def test_brier_binary_is_twice_sklearn_default():
    rng = np.random.default_rng(6)
    p = rng.uniform(size=50)
    y = rng.integers(0, 2, size=50)
    assert brier_score(y, p) == pytest.approx(2 * brier_score_loss(y, p))
    assert brier_score(y, np.column_stack([1 - p, p])) == pytest.approx(2 * brier_score_loss(y, p))


def test_nll_matches_log_loss():
    rng = np.random.default_rng(7)
    proba = _random_proba(rng, 60, 3)
    y = rng.integers(0, 3, size=60)
    y[:3] = np.arange(3)
    assert negative_log_likelihood(y, proba) == pytest.approx(log_loss(y, proba))
    expected = -np.mean(np.log(proba[np.arange(60), y]))
    assert negative_log_likelihood(y, proba) == pytest.approx(expected)


def test_nll_and_brier_of_float32_probabilities_match_float64_without_warning():
    rng = np.random.default_rng(9)
    proba = _random_proba(rng, 200, 10)
    y = rng.integers(0, 10, size=200)
    y[:10] = np.arange(10)
    proba32 = proba.astype(np.float32)
    assert np.abs(proba32.sum(1, dtype=np.float64) - 1).max() > np.sqrt(np.finfo(float).eps)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nll = negative_log_likelihood(y, proba32)
        brier = brier_score(y, proba32)
    assert nll == pytest.approx(-np.mean(np.log(proba[np.arange(200), y])), rel=1e-6)
    onehot = np.eye(10)[y]
    assert brier == pytest.approx(np.mean(np.sum((proba - onehot) ** 2, axis=1)), rel=1e-6)
    # probabilities that do not sum to one are not silently renormalized
    with pytest.warns(UserWarning, match="do not sum to one"):
        negative_log_likelihood(y, proba * 0.9)


def test_predictive_entropy():
    rng = np.random.default_rng(8)
    proba = _random_proba(rng, 30, 5)
    np.testing.assert_allclose(predictive_entropy(proba), scipy_entropy(proba, axis=1))
    uniform = np.full((3, 5), 0.2)
    np.testing.assert_allclose(predictive_entropy(uniform), np.log(5))
    assert predictive_entropy(np.eye(4)).tolist() == [0.0] * 4
    with pytest.raises(ValueError, match="sum to one"):
        predictive_entropy([[0.5, 0.4]])


def test_entropy_increase():
    p_in = np.array([[1.0, 0.0, 0.0], [0.8, 0.1, 0.1]])
    p_out = np.full((4, 3), 1 / 3)
    expected = np.log(3) - 0.5 * scipy_entropy([0.8, 0.1, 0.1])
    assert entropy_increase(p_in, p_out) == pytest.approx(expected)
    assert entropy_increase(p_out, p_in) == pytest.approx(-expected)
    with pytest.raises(ValueError, match="same classes"):
        entropy_increase(p_in, [[0.5, 0.5]])


# ---------------------------------------------------------------------------
# OOD metrics
# ---------------------------------------------------------------------------


def _brute_auroc(s_in, s_out):
    total = 0.0
    for a in s_in:
        for b in s_out:
            total += 1.0 if a > b else 0.5 if a == b else 0.0
    return total / (len(s_in) * len(s_out))


def test_auroc_matches_pairwise_count_and_is_rank_invariant():
    rng = np.random.default_rng(9)
    s_in = rng.normal(1.0, size=40).round(1)  # rounding makes ties
    s_out = rng.normal(0.0, size=30).round(1)
    auroc = ood_auroc(s_in, s_out)
    assert auroc == pytest.approx(_brute_auroc(s_in, s_out))
    assert ood_auroc(np.exp(s_in), np.exp(s_out)) == pytest.approx(auroc)
    assert ood_auroc(3 * s_in - 7, 3 * s_out - 7) == pytest.approx(auroc)
    # swapping the roles (or negating the scores) gives 1 - AUROC
    assert ood_auroc(s_out, s_in) == pytest.approx(1 - auroc)
    assert ood_auroc(-s_in, -s_out) == pytest.approx(1 - auroc)


def test_auroc_extremes():
    assert ood_auroc([5.0, 6.0, 7.0], [1.0, 2.0]) == 1.0
    assert ood_auroc([1.0, 2.0], [5.0, 6.0, 7.0]) == 0.0
    assert ood_auroc([1.0, 1.0], [1.0]) == 0.5


def test_infinite_scores_are_allowed():
    # e.g. a log-likelihood of -inf for a far-away input
    assert ood_auroc([0.0, 1.0], [-np.inf, -5.0]) == 1.0
    assert tnr_at_tpr([0.0, 1.0, np.inf], [-np.inf, 0.5]) == pytest.approx(0.5)


def test_aupr_in_and_out():
    rng = np.random.default_rng(10)
    s_in, s_out = rng.normal(1.0, size=25), rng.normal(size=35)
    y = np.r_[np.ones(25), np.zeros(35)]
    s = np.r_[s_in, s_out]
    assert ood_aupr_in(s_in, s_out) == pytest.approx(average_precision_score(y, s))
    assert ood_aupr_out(s_in, s_out) == pytest.approx(average_precision_score(1 - y, -s))
    # AUPR-out is AUPR-in with the roles of the two sets swapped and the scores negated
    assert ood_aupr_out(s_in, s_out) == pytest.approx(ood_aupr_in(-s_out, -s_in))
    assert ood_aupr_in([3.0, 2.0], [1.0, 0.0]) == 1.0
    assert ood_aupr_out([3.0, 2.0], [1.0, 0.0]) == 1.0


def test_tnr_at_tpr_hand_made():
    s_in = np.arange(1.0, 21.0)  # keeping 95 % of them: threshold 2
    s_out = np.array([0.5, 1.5, 2.5, 10.5])
    assert tnr_at_tpr(s_in, s_out) == 0.5  # 0.5 and 1.5 rejected
    assert fpr_at_tpr(s_in, s_out) == 0.5
    # tpr=0.5 keeps 11..20 (threshold 11): everything below 11 is rejected
    assert tnr_at_tpr(s_in, s_out, tpr=0.5) == 1.0
    # tpr=1 keeps all ID samples (threshold 1): only 0.5 rejected
    assert tnr_at_tpr(s_in, s_out, tpr=1.0) == 0.25
    # an OOD score tied with the threshold is accepted
    assert tnr_at_tpr([1.0, 2.0, 3.0, 4.0], [2.0], tpr=0.75) == 0.0
    assert tnr_at_tpr([1.0, 2.0, 3.0, 4.0], [1.9], tpr=0.75) == 1.0


def test_tnr_matches_percentile_rule():
    # threshold at the 5th percentile of the ID scores, fraction of OOD scores below it
    rng = np.random.default_rng(11)
    s_in, s_out = rng.normal(2.0, size=2000), rng.normal(size=1500)
    thr = np.sort(s_in)[int(np.floor(0.05 * 2000))]  # largest t keeping >= 95 %
    assert tnr_at_tpr(s_in, s_out) == pytest.approx(np.mean(s_out < thr))


def test_balance_subsamples_reproducibly():
    rng = np.random.default_rng(12)
    s_in, s_out = rng.normal(1.0, size=500), rng.normal(size=60)
    # all scores tied: AUPR-in is the fraction of ID samples, 1/2 once balanced
    ties_in, ties_out = np.zeros(500), np.zeros(60)
    assert ood_aupr_in(ties_in, ties_out) == pytest.approx(500 / 560)
    assert ood_aupr_in(ties_in, ties_out, balance=True, random_state=0) == 0.5
    assert ood_aupr_in(ties_out, ties_in, balance=True, random_state=0) == 0.5
    for f in (ood_auroc, ood_aupr_in, ood_aupr_out, tnr_at_tpr, fpr_at_tpr):
        a = f(s_in, s_out, balance=True, random_state=3)
        assert a == f(s_in, s_out, balance=True, random_state=3)
    values = {ood_aupr_in(s_in, s_out, balance=True, random_state=s) for s in range(5)}
    assert len(values) > 1  # different subsets
    # imbalanced AUPR-in is inflated by the many ID samples; balancing removes that
    assert ood_aupr_in(s_in, s_out) > ood_aupr_in(s_in, s_out, balance=True, random_state=0)
    # equal sizes: nothing to subsample
    assert ood_auroc(s_in[:60], s_out, balance=True) == ood_auroc(s_in[:60], s_out)


# ---------------------------------------------------------------------------
# input validation
# ---------------------------------------------------------------------------

_CAL = [
    expected_calibration_error,
    max_calibration_error,
    integrated_calibration_error,
    calibration_bins,
    ibinn_calibration_errors,
    brier_score,
    negative_log_likelihood,
    accuracy_at_confidence,
]


@pytest.mark.parametrize("metric", _CAL, ids=lambda f: f.__name__)
@pytest.mark.parametrize(
    ("y_true", "y_prob", "match"),
    [
        ([0, 1, 1], [[0.5, 0.5], [0.2, 0.8]], "inconsistent numbers of samples"),
        ([0, 1], [[1.5, -0.5], [0.2, 0.8]], r"\[0, 1\]"),
        ([0, 1], [[np.nan, 0.5], [0.2, 0.8]], "NaN"),
        ([0, 1], [[0.2, 0.3, 0.5], [0.2, 0.3, 0.5]], "3 columns but there are 2 labels"),
        ([], np.empty((0, 2)), "empty"),
        ([0, 0], [[0.5, 0.5], [0.2, 0.8]], "at least two classes"),
        ([0, 1, 2], [0.2, 0.3, 0.4], "exactly two labels"),
        ([0, 1], np.ones((2, 2, 1)) / 2, "dim"),
        ([[0, 1]], [[0.5, 0.5]], "shape"),
        ([0.0, np.nan], [[0.5, 0.5], [0.2, 0.8]], "NaN"),
    ],
)
def test_calibration_input_errors(metric, y_true, y_prob, match):
    with pytest.raises(ValueError, match=match):
        metric(y_true, y_prob)


def test_label_errors():
    y_prob = [[0.5, 0.5], [0.2, 0.8]]
    with pytest.raises(ValueError, match="not in labels"):
        expected_calibration_error(["a", "c"], y_prob, labels=["a", "b"])
    with pytest.raises(ValueError, match="duplicates"):
        expected_calibration_error(["a", "b"], y_prob, labels=["a", "a"])
    with pytest.raises(ValueError, match="n_bins"):
        expected_calibration_error([0, 1], y_prob, n_bins=0)
    with pytest.raises(ValueError, match="n_bins"):
        expected_calibration_error([0, 1], y_prob, n_bins=2.5)


@pytest.mark.parametrize("metric", [ood_auroc, ood_aupr_in, ood_aupr_out, tnr_at_tpr, fpr_at_tpr])
def test_ood_input_errors(metric):
    with pytest.raises(ValueError, match="scores_in is empty"):
        metric([], [1.0])
    with pytest.raises(ValueError, match="scores_out is empty"):
        metric([1.0], [])
    with pytest.raises(ValueError, match="NaN"):
        metric([1.0, np.nan], [0.0])
    with pytest.raises(ValueError, match="numeric"):
        metric(["a"], [0.0])
    with pytest.raises(ValueError):
        metric(np.ones((3, 2)), [0.0])


@pytest.mark.parametrize("tpr", [0.0, -0.1, 1.5, "0.9"])
def test_tnr_tpr_validation(tpr):
    with pytest.raises(ValueError, match="tpr"):
        tnr_at_tpr([1.0, 2.0], [0.0], tpr=tpr)


def test_metrics_do_not_import_torch():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(metrics))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (
            node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")]
        )
    }
    assert "torch" not in imported and "skorch" not in imported
