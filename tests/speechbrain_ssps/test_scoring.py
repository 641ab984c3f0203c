"""Tests for speechbrain_ssps.scoring against independent formulas."""

import math

import numpy as np
import pytest
import torch
from speechbrain.utils.metric_stats import EER, minDCF

from speechbrain_ssps.scoring import compute_eer, compute_min_dcf, cosine_score


def random_trials(seed, n_pos=150, n_neg=250, decimals=None):
    rng = np.random.default_rng(seed)
    scores = np.concatenate(
        [rng.normal(0.8, 1.0, n_pos), rng.normal(-0.8, 1.0, n_neg)]
    )
    if decimals is not None:  # creates ties
        scores = scores.round(decimals)
    labels = np.array([1] * n_pos + [0] * n_neg)
    order = rng.permutation(len(scores))
    return scores[order], labels[order]


def rates_at(scores, labels, threshold):
    """Brute force: (p_fa, p_miss) accepting score >= threshold."""
    accept = scores >= threshold
    return accept[labels == 0].mean(), (~accept)[labels == 1].mean()


def sb_split(scores, labels):
    pos = torch.tensor(scores[labels == 1], dtype=torch.float64)
    neg = torch.tensor(scores[labels == 0], dtype=torch.float64)
    return pos, neg


@pytest.mark.parametrize("seed,decimals", [(0, None), (1, None), (2, 1)])
def test_eer_matches_speechbrain(seed, decimals):
    scores, labels = random_trials(seed, decimals=decimals)
    eer, threshold = compute_eer(scores, labels)
    sb_eer, _ = EER(*sb_split(scores, labels))
    assert eer == pytest.approx(sb_eer, abs=1e-6)  # SB counts in float32
    # The threshold gives the reported operating point.
    p_fa, p_miss = rates_at(scores, labels, threshold)
    assert (p_fa + p_miss) / 2 == pytest.approx(eer)


@pytest.mark.parametrize(
    "p_target,c_miss,c_fa", [(0.01, 1.0, 1.0), (0.05, 2.0, 1.0), (0.5, 1, 3)]
)
@pytest.mark.parametrize("seed", [0, 3])
def test_min_dcf_matches_speechbrain_normalised(seed, p_target, c_miss, c_fa):
    scores, labels = random_trials(seed, decimals=2)
    dcf, threshold = compute_min_dcf(scores, labels, p_target, c_miss, c_fa)
    sb_dcf, _ = minDCF(
        *sb_split(scores, labels), c_miss=c_miss, c_fa=c_fa, p_target=p_target
    )
    c_default = min(c_miss * p_target, c_fa * (1 - p_target))
    assert dcf == pytest.approx(sb_dcf / c_default, abs=1e-6)
    p_fa, p_miss = rates_at(scores, labels, threshold)
    cost = c_miss * p_target * p_miss + c_fa * (1 - p_target) * p_fa
    assert cost / c_default == pytest.approx(dcf)


def test_hand_computed_case():
    # targets 0.9 0.8 0.3, non-targets 0.7 0.2 0.1
    scores = [0.9, 0.7, 0.8, 0.2, 0.3, 0.1]
    labels = [1, 0, 1, 0, 1, 0]
    # accept >= 0.7: one miss (0.3) and one false alarm (0.7) of three.
    assert compute_eer(scores, labels) == pytest.approx((1 / 3, 0.7))
    # p=0.01: cost/0.01 = p_miss + 99 p_fa; best: accept >= 0.8 -> 1/3.
    assert compute_min_dcf(scores, labels) == pytest.approx((1 / 3, 0.8))
    # p=0.5, c_fa=3: (0.5 p_miss + 1.5 p_fa) / 0.5 -> also 1/3 at 0.8.
    dcf, thr = compute_min_dcf(scores, labels, p_target=0.5, c_fa=3.0)
    assert (dcf, thr) == pytest.approx((1 / 3, 0.8))
    # Perfect separation.
    assert compute_eer([3, 2, 1, 0], [1, 1, 0, 0])[0] == 0.0
    assert compute_min_dcf([3, 2, 1, 0], [1, 1, 0, 0])[0] == 0.0


def test_large_trial_list_matches_gaussian_theory():
    # 550k trials (VoxCeleb1-H size); targets N(1, 1), non-targets N(-1, 1):
    # EER = Phi(-1) and minDCF follows from the two Gaussian tails.
    rng = np.random.default_rng(0)
    n_pos, n_neg = 275_000, 275_000
    scores = np.concatenate([rng.normal(1, 1, n_pos), rng.normal(-1, 1, n_neg)])
    labels = np.r_[np.ones(n_pos, int), np.zeros(n_neg, int)]
    phi = np.vectorize(lambda x: 0.5 * math.erfc(-x / math.sqrt(2)))
    eer, threshold = compute_eer(scores, labels)
    assert eer == pytest.approx(phi(-1.0), abs=3e-3)
    assert threshold == pytest.approx(0.0, abs=0.02)
    grid = np.linspace(-3, 6, 9001)
    theory = (0.01 * phi(grid - 1) + 0.99 * phi(-grid - 1)).min() / 0.01
    dcf, _ = compute_min_dcf(scores, labels)
    assert dcf == pytest.approx(theory, abs=0.03)


@pytest.mark.parametrize(
    "scores,labels,match",
    [
        ([0.1, 0.2], [1, 1], "both target"),
        ([0.1, 0.2], [1, 2], "0 or 1"),
        ([0.1, float("nan")], [1, 0], "not finite"),
        ([0.1, 0.2, 0.3], [1, 0], "length"),
    ],
)
def test_metric_input_errors(scores, labels, match):
    with pytest.raises(ValueError, match=match):
        compute_eer(scores, labels)
    with pytest.raises(ValueError, match=match):
        compute_min_dcf(scores, labels)


def test_cosine_score():
    torch.manual_seed(0)
    enrol, test = torch.randn(7, 5), torch.randn(7, 5)
    expected = [
        float(e @ t / (e.norm() * t.norm())) for e, t in zip(enrol, test)
    ]
    assert cosine_score(enrol, test).tolist() == pytest.approx(expected)
    with pytest.raises(ValueError, match="must both be"):
        cosine_score(enrol, test[:3])
