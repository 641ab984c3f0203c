"""Tests for speechbrain_ssps.scoring against independent formulas."""

import math

import numpy as np
import pytest
import torch
from speechbrain.utils.metric_stats import EER, minDCF

from speechbrain_ssps.scoring import (
    as_norm,
    compute_eer,
    compute_min_dcf,
    cosine_score,
    read_trials,
    s_norm,
    score_trials,
)


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


def test_read_trials(tmp_path):
    path = tmp_path / "trials.txt"
    path.write_text(
        "1 id1/v1/00001.wav id1/v2/00001.wav\n\n0 id1/v1/00001 id2/v3/00002\n"
    )
    assert read_trials(str(path)) == [
        (1, "id1/v1/00001", "id1/v2/00001"),
        (0, "id1/v1/00001", "id2/v3/00002"),
    ]
    path.write_text("1 a b\n1 a b\n2 a b\n")
    with pytest.raises(ValueError, match="line 3"):
        read_trials(str(path))
    path.write_text("1 a\n")
    with pytest.raises(ValueError, match="line 1"):
        read_trials(str(path))


def make_embeddings(n=30, dim=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    shapes = [(dim,), (1, dim), (1, 1, dim)]
    return {
        f"spk{i % 5}/v{i}/00001": torch.randn(*shapes[i % 3], generator=gen)
        for i in range(n)
    }


def make_trials(ids, n, seed=0):
    rng = np.random.default_rng(seed)
    return [
        (int(rng.integers(2)), ids[rng.integers(len(ids))], ids[j])
        for j in rng.integers(len(ids), size=n)
    ]


def test_score_trials_matches_per_trial_loop():
    emb = make_embeddings()
    trials = make_trials(list(emb), 200)
    scores, labels = score_trials(emb, trials, chunk_size=64)
    for (label, e, t), score, lab in zip(trials, scores, labels):
        a, b = emb[e].flatten().double(), emb[t].flatten().double()
        cos = float(a @ b / (a.norm() * b.norm()))
        assert score == pytest.approx(cos, rel=1e-5, abs=1e-6)
        assert lab == label
    assert scores.dtype == np.float64 and labels.dtype == np.int64


def test_score_trials_errors():
    emb = make_embeddings()
    ids = list(emb)
    trials = [(1, ids[0], ids[1]), (0, ids[2], "spk9/missing/00001")]
    with pytest.raises(KeyError, match="spk9/missing/00001.*trial 2"):
        score_trials(emb, trials)
    emb[ids[1]] = torch.randn(9)
    with pytest.raises(ValueError, match=ids[1]):
        score_trials(emb, trials[:1])


def brute_norm(score, e, t, cohort, top_k):
    def stats(x):
        c = [float(x @ y / (x.norm() * y.norm())) for y in cohort]
        c = sorted(c, reverse=True)[:top_k] if top_k else c
        return np.mean(c), np.std(c)

    (me, se), (mt, st) = stats(e), stats(t)
    return 0.5 * ((score - me) / se + (score - mt) / st)


@pytest.mark.parametrize("top_k", [None, 2, 7])
def test_as_norm_matches_brute_force(top_k):
    emb = make_embeddings(seed=1)
    cohort = torch.randn(12, 8, generator=torch.Generator().manual_seed(2))
    trials = make_trials(list(emb), 40, seed=1)
    scores, _ = score_trials(emb, trials)
    enrol_ids = [t[1] for t in trials]
    test_ids = [t[2] for t in trials]
    got = as_norm(
        scores, enrol_ids, test_ids, emb, cohort, top_k=top_k, chunk_size=7
    )
    expected = [
        brute_norm(
            s,
            emb[e].flatten().double(),
            emb[t].flatten().double(),
            cohort.double(),
            top_k,
        )
        for s, e, t in zip(scores, enrol_ids, test_ids)
    ]
    assert got == pytest.approx(expected, rel=1e-4, abs=1e-4)
    if top_k is None:
        same = s_norm(scores, enrol_ids, test_ids, emb, cohort)
        assert same == pytest.approx(got)
        # top_k = C keeps the whole cohort: AS-norm equals S-norm.
        full = as_norm(scores, enrol_ids, test_ids, emb, cohort, top_k=12)
        assert full == pytest.approx(got, abs=1e-6)


def test_as_norm_errors():
    emb = make_embeddings()
    ids = list(emb)
    cohort = torch.randn(5, 8)
    with pytest.raises(ValueError, match="top_k"):
        as_norm([0.1], ids[:1], ids[1:2], emb, cohort, top_k=6)
    with pytest.raises(ValueError, match="one length"):
        as_norm([0.1, 0.2], ids[:1], ids[1:2], emb, cohort)
    with pytest.raises(ValueError, match="dimension"):
        as_norm([0.1], ids[:1], ids[1:2], emb, torch.randn(5, 4))
    with pytest.raises(KeyError, match="nobody"):
        as_norm([0.1], ["nobody"], ids[1:2], emb, cohort)


def test_score_trials_on_550k_trials():
    gen = torch.Generator().manual_seed(0)
    ids = [f"id{i:05d}/v/00001" for i in range(5000)]
    matrix = torch.randn(len(ids), 32, generator=gen)
    emb = dict(zip(ids, matrix))
    rng = np.random.default_rng(0)
    pairs = rng.integers(len(ids), size=(550_000, 2))
    labels = rng.integers(2, size=550_000)
    trials = [(int(lab), ids[a], ids[b]) for lab, (a, b) in zip(labels, pairs)]
    scores, got_labels = score_trials(emb, trials)
    assert scores.shape == (550_000,)
    assert (got_labels == labels).all()
    check = rng.choice(550_000, size=500, replace=False)
    unit = (matrix / matrix.norm(dim=1, keepdim=True)).double().numpy()
    expected = (unit[pairs[check, 0]] * unit[pairs[check, 1]]).sum(axis=1)
    assert scores[check] == pytest.approx(expected, abs=1e-5)
    eer, _ = compute_eer(scores, labels)
    assert 0.4 < eer < 0.6  # random embeddings: chance level
