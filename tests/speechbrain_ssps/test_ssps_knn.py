"""SSPS's ``knn`` and ``centroid`` sampling against brute-force loops."""

import math

import pytest
import torch
import torch.nn.functional as F
from gloo_ranks import run_on_ranks

from speechbrain_ssps.ssps import SSPS, SSPSOptionError
from speechbrain_ssps.ssps.sampler import _SEED_STRIDE


def _knn(n, q, m, dim=4, seed=0, **kw):
    return SSPS(
        n,
        dim,
        3,
        queue_size=q,
        num_clusters=2,
        sampling="knn",
        num_neighbors=m,
        start_epoch=2,
        seed=seed,
        **kw,
    )


def _push(ssps, order, y, z=None):
    """Pushes the utterances of ``order`` (repeats allowed), batches of 4."""
    for batch in order.split(4):
        zb = z[:, batch] if z is not None else torch.randn(1, len(batch), 3)
        ssps.update(batch, y[batch], zb)


def _draws(ssps, b):
    """The uniforms the next ``sample`` of ``b`` anchors will use (1 rank)."""
    gen = torch.Generator()
    gen.manual_seed(ssps.seed * _SEED_STRIDE + ssps.num_draws)
    return torch.rand(2, b, generator=gen, dtype=torch.float64)[0]


def brute_force_candidates(ssps, anchor, y_anchor):
    """Per-anchor loop: the M nearest distinct queue utterances, in order.

    Returns a list of (utterance, newest slot) by decreasing similarity.
    """
    q = ssps.queue_size
    ptr = int(ssps.pos_ptr)
    newest = {}
    for age in range(q):  # oldest to newest: later ones overwrite
        slot = (ptr + age) % q
        utt = int(ssps.pos_indices[slot])
        if utt >= 0 and bool(ssps.ref_filled[utt]):
            newest[utt] = slot
    y = F.normalize(y_anchor.double(), dim=0)
    scored = []
    for utt, slot in newest.items():
        if utt == anchor:
            continue
        sim = float(ssps.ref_queue[utt].double() @ y)
        scored.append((-sim, utt, slot))
    scored.sort()
    return [(utt, slot) for _, utt, slot in scored[: ssps.num_neighbors]]


# (N, Q, M, pushed order, seed): ring wrapped, duplicates, queue not full.
CASES = [
    (12, 12, 1, list(range(12)), 0),
    (12, 8, 3, list(range(12)), 1),  # wrapped: 4 utterances gone
    (10, 16, 4, list(range(10)) + [3, 5, 7, 0], 2),  # duplicates in Q'
    (20, 30, 30, list(range(20)), 3),  # M = Q > candidates, not full
    (9, 6, 5, [1, 2, 3, 4, 5, 6, 7, 8], 4),
]


@pytest.mark.parametrize("case", CASES)
def test_knn_matches_brute_force(case):
    n, q, m, pushed, seed = case
    ssps = _knn(n, q, m, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    y = torch.randn(n, 4, generator=gen)
    ssps.on_epoch_start(1)
    _push(ssps, torch.tensor(pushed), y)
    ssps.on_epoch_start(2)
    for step in range(4):
        anchors = torch.randperm(n, generator=gen)[:5]
        current = torch.randn(5, 4, generator=gen)
        u = _draws(ssps, 5)
        got = ssps.sample(anchors, current)
        slots = ssps._last_slots
        for i, a in enumerate(anchors.tolist()):
            cands = brute_force_candidates(ssps, a, current[i])
            if not cands:
                assert got[i] == -1 and slots[i] == -1
                continue
            pick = min(int(u[i] * len(cands)), len(cands) - 1)
            assert (int(got[i]), int(slots[i])) == cands[pick], (step, i)


def test_knn_never_draws_the_anchor_and_is_uniform():
    n, m = 8, 3
    ssps = _knn(n, n, m)
    y = torch.randn(n, 4, generator=torch.Generator().manual_seed(3))
    ssps.on_epoch_start(1)
    _push(ssps, torch.arange(n), y)
    ssps.on_epoch_start(2)
    anchor = 5
    # The anchor's own row is the most similar to itself: still excluded.
    expected = {u for u, _ in brute_force_candidates(ssps, anchor, y[5])}
    assert len(expected) == m and anchor not in expected
    counts = {}
    draws = 3000
    for _ in range(draws // 300):
        got = ssps.sample(torch.full((300,), anchor), y[[anchor] * 300])
        for v in got.tolist():
            counts[v] = counts.get(v, 0) + 1
    assert set(counts) == expected
    # Binomial(3000, 1/3): sd ~ 26; allow 5 sd.
    for v in counts.values():
        assert abs(v - draws / m) < 5 * math.sqrt(draws / m * (1 - 1 / m))


def test_knn_uses_the_current_reference_and_stored_rows_without_it():
    ssps = _knn(4, 4, 1)
    y = torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0]])
    y = torch.cat([y, torch.tensor([[0, 0.9, 0.1, 0]])])
    ssps.on_epoch_start(1)
    _push(ssps, torch.arange(4), y)
    ssps.on_epoch_start(2)
    # Anchor 0's stored row is e1, but its current representation is near
    # e3: the nearest other entry is 2. Anchor 1 without y_ref: its stored
    # row e2 is nearest to utterance 3.
    now = torch.tensor([[0.0, 0.0, 1.0, 0.1]])
    assert ssps.sample(torch.tensor([0]), now).tolist() == [2]
    assert ssps.sample(torch.tensor([1])).tolist() == [3]  # stored rows


def test_knn_runs_no_kmeans_and_feeds_the_diagnostics(monkeypatch):
    n = 12
    ssps = _knn(n, n, 2)
    ssps.set_labels(torch.arange(n) % 3, torch.arange(n) % 6)
    gen = torch.Generator().manual_seed(0)
    y = torch.randn(3, 4, generator=gen)[torch.arange(n) % 3]
    y = y + 0.05 * torch.randn(n, 4, generator=gen)  # speakers = i % 3
    ssps.on_epoch_start(1)
    _push(ssps, torch.arange(n), y)

    def no_kmeans():
        raise AssertionError("knn must not run k-means")

    monkeypatch.setattr(ssps, "cluster", no_kmeans)
    ssps.on_epoch_start(2)
    assert ssps.anchor_clusters(torch.arange(3)) is None
    pos = ssps.sample(torch.arange(n), y)
    assert (pos >= 0).all() and (pos != torch.arange(n)).all()
    metrics = ssps.metrics()
    assert metrics["coverage"] == 1.0
    assert metrics["speaker_acc"] == 1.0  # tight speaker blobs
    same_video = (pos % 6) == torch.arange(n) % 6
    assert metrics["video_acc"] == pytest.approx(float(same_video.sum()) / n)
    # The swap puts the drawn slots' stored embeddings in place.
    z = torch.zeros(1, n, 3)
    out = ssps.swap(z)
    assert torch.equal(out[0], ssps.pos_queue[ssps._last_slots, 0])


def test_knn_checkpoint_continues_the_same_draws(tmp_path):
    n = 10
    ssps = _knn(n, 8, 3, seed=4)
    y = torch.randn(n, 4)
    ssps.on_epoch_start(1)
    _push(ssps, torch.arange(n), y)
    ssps.on_epoch_start(2)
    ssps.sample(torch.arange(4), y[:4])
    ssps._save(tmp_path / "ssps.ckpt")
    restored = _knn(n, 8, 3, seed=4)
    restored._load(tmp_path / "ssps.ckpt")
    restored.on_epoch_start(2)
    for _ in range(3):
        batch = torch.randperm(n)[:4]
        assert torch.equal(
            ssps.sample(batch, y[batch]), restored.sample(batch, y[batch])
        )
        z = torch.randn(1, 4, 3)
        ssps.update(batch, y[batch], z)
        restored.update(batch, y[batch], z)


def _knn_ddp_worker(rank, world):
    n = 16
    ssps = _knn(n, 12, 3, seed=7)
    gen = torch.Generator().manual_seed(0)  # same data on every rank
    y = torch.randn(n, 4, generator=gen)
    z = torch.randn(1, n, 3, generator=gen)
    samples = []
    for epoch in (1, 2):
        ssps.on_epoch_start(epoch)
        for batch in torch.arange(n).split(8):
            mine = batch[rank::world]
            samples.append(ssps.sample(mine, y[mine]))
            ssps.update(mine, y[mine], z[:, mine])
    return {"samples": samples, "state": ssps.state_dict()}


def test_knn_two_ranks_match_one_process(tmp_path):
    ranks = run_on_ranks(_knn_ddp_worker, tmp_path)
    n = 16
    ssps = _knn(n, 12, 3, seed=7)
    gen = torch.Generator().manual_seed(0)
    y = torch.randn(n, 4, generator=gen)
    z = torch.randn(1, n, 3, generator=gen)
    step = 0
    for epoch in (1, 2):
        ssps.on_epoch_start(epoch)
        for batch in torch.arange(n).split(8):
            glob = torch.cat([batch[0::2], batch[1::2]])  # rank order
            got = ssps.sample(glob, y[glob])
            parts = [r["samples"][step] for r in ranks]
            assert torch.equal(got, torch.cat(parts)), step
            ssps.update(glob, y[glob], z[:, glob])
            step += 1
    assert any((s >= 0).any() for s in ranks[0]["samples"][2:])
    for name, buf in ssps.state_dict().items():
        assert torch.equal(buf, ranks[1]["state"][name]), name


# --------------------------------------------------------------------------
# centroid
# --------------------------------------------------------------------------


def _centroid(n=12, k=4, m=2, views=1):
    ssps = SSPS(
        n,
        4,
        4,
        pos_views=views,
        queue_size=n,
        num_clusters=k,
        sampling="centroid",
        num_neighbors=m,
        start_epoch=2,
    )
    ssps.on_epoch_start(1)
    _push(ssps, torch.arange(n), torch.randn(n, 4), torch.randn(views, n, 4))
    ssps.epoch = 2
    centroids = F.normalize(
        torch.randn(k, 4, generator=torch.Generator().manual_seed(1)), dim=1
    )
    assignments = torch.arange(n) % k
    assignments[-1] = -1  # one unassigned utterance
    ssps.set_clusters(assignments, centroids)
    return ssps, assignments, centroids


def test_centroid_swaps_in_a_neighbouring_centroid():
    ssps, assignments, centroids = _centroid(views=2)
    ssps.set_labels(torch.arange(12) % 2, torch.arange(12))
    anchors = torch.arange(12)
    members = ssps.sample(anchors)
    targets = ssps._last_slots
    z = torch.zeros(2, 12, 4, requires_grad=True)
    out = ssps.swap(z)
    sims = centroids @ centroids.T
    for i in range(12):
        own = int(assignments[i])
        if own < 0:
            assert members[i] == -1 and targets[i] == -1
            assert torch.equal(out[:, i], z[:, i].detach())
            continue
        t = int(targets[i])
        nearest = [
            c for c in sims[own].argsort(descending=True).tolist() if c != own
        ][:2]
        assert t in nearest
        # The diagnostics' stand-in is an utterance of the target cluster.
        assert int(assignments[int(members[i])]) == t
        for v in range(2):
            assert torch.allclose(out[v, i], ssps.centroids[t])
    metrics = ssps.metrics()
    assert metrics["coverage"] == pytest.approx(11 / 12)
    assert 0.0 <= metrics["speaker_acc"] <= 1.0
    assert out.requires_grad


def test_centroid_member_draws_are_uniform():
    ssps, assignments, _ = _centroid(n=40, k=2, m=1)
    anchor = 0  # cluster 0 -> its only neighbour is cluster 1
    counts = {}
    for _ in range(10):
        for v in ssps.sample(torch.full((200,), anchor)).tolist():
            counts[v] = counts.get(v, 0) + 1
    expected = set((assignments == 1).nonzero().squeeze(1).tolist())
    assert set(counts) == expected
    mean = 2000 / len(expected)
    for v in counts.values():
        assert abs(v - mean) < 5 * math.sqrt(mean)


@pytest.mark.parametrize(
    "kwargs, option",
    [
        (dict(sampling="knn", num_neighbors=9, queue_size=8), "num_neighbors"),
        (dict(sampling="centroid", pos_dim=3), "sampling"),
        (
            dict(sampling="centroid", num_neighbors=2, num_clusters=2),
            "num_neighbors",
        ),
        (dict(sampling="nearest"), "sampling"),
    ],
)
def test_bad_options_name_the_option(kwargs, option):
    args = dict(num_utterances=10, repr_dim=4, pos_dim=4, queue_size=8)
    args.update(num_clusters=3, num_neighbors=1, start_epoch=2)
    args.update(kwargs)
    with pytest.raises(SSPSOptionError, match=option) as info:
        SSPS(**args)
    assert info.value.option == option


def test_good_options_are_accepted():
    SSPS(
        10, 4, 3, queue_size=8, num_clusters=3, sampling="knn", num_neighbors=8
    )
    SSPS(
        10,
        4,
        4,
        queue_size=8,
        num_clusters=3,
        sampling="centroid",
        num_neighbors=2,
    )
