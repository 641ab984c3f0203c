"""Tests for speechbrain_ssps.trials: reading and scoring trial lists."""

import numpy as np
import pytest
import torch

from speechbrain_ssps.scoring import compute_eer
from speechbrain_ssps.trials import read_trials, score_trials


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
