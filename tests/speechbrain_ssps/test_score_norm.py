"""Tests for speechbrain_ssps.score_norm against brute-force S-/AS-norm."""

import numpy as np
import pytest
import torch
from test_trials import make_embeddings, make_trials

from speechbrain_ssps.score_norm import as_norm, s_norm
from speechbrain_ssps.trials import score_trials


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
