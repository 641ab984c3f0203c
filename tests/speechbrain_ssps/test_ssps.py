"""Tests of the SSPS module: schedule, sampling rules, queues, state."""

from functools import partial

import pytest
import torch
import torch.nn.functional as F
from gloo_ranks import run_on_ranks

from speechbrain_ssps.ssps import SSPS, SSPSOptionError, label_oracle


def _fill(ssps, n, views=1, dim=None, seed=0):
    """Pushes every utterance once, in batches, returns the stored z."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(views, n, dim or ssps.pos_dim, generator=gen)
    y = torch.randn(n, ssps.repr_dim, generator=gen)
    for batch in torch.arange(n).split(4):
        ssps.update(batch, y[batch], z[:, batch])
    return y, z


def _clustered(n=12, k=3, queue=None, sampling="scs", m=1, views=1, **kw):
    """An SSPS in its first active epoch with a known clustering."""
    ssps = SSPS(
        n,
        4,
        3,
        pos_views=views,
        queue_size=queue or n,
        num_clusters=k,
        sampling=sampling,
        num_neighbors=m,
        start_epoch=2,
        **kw,
    )
    ssps.on_epoch_start(1)
    y, z = _fill(ssps, n, views)
    ssps.epoch = 2  # enter the active epoch without k-means
    assignments = torch.arange(n) % k
    centroids = torch.eye(k, 4)
    ssps.set_clusters(assignments, centroids)
    return ssps, y, z


def test_schedule_boundaries():
    ssps = SSPS(8, 4, 3, queue_size=8, num_clusters=2, start_epoch=3)
    expected = {
        1: (False, False),
        2: (True, False),
        3: (True, True),
        4: (True, True),
    }
    for epoch, (filling, active) in expected.items():
        if epoch == 3:
            _fill(ssps, 8)
        ssps.on_epoch_start(epoch)
        assert (ssps.filling, ssps.active) == (filling, active)
        if epoch == 1:
            # Nothing written while not filling, nothing sampled.
            _fill(ssps, 8)
            assert not ssps.ref_filled.any()
            assert (ssps.pos_indices == -1).all()
            assert (ssps.sample(torch.arange(4)) == -1).all()
    assert (ssps.assignments >= 0).all()


def test_inactive_sample_keeps_ordinary_positive():
    ssps = SSPS(8, 4, 3, queue_size=8, num_clusters=2, start_epoch=2)
    ssps.on_epoch_start(1)
    _fill(ssps, 8)
    assert (ssps.sample(torch.arange(8)) == -1).all()
    z = torch.randn(1, 8, 3)
    assert torch.equal(ssps.swap(z), z)


def test_scs_never_self_and_same_cluster():
    ssps, _, _ = _clustered(n=12, k=3)
    anchors = torch.arange(12)
    for _ in range(200):
        pos = ssps.sample(anchors)
        assert (pos >= 0).all()
        assert (pos != anchors).all()
        assert torch.equal(pos % 3, anchors % 3)


def test_ncs_draws_from_nearest_clusters():
    n, k = 40, 4
    ssps = SSPS(
        n,
        4,
        3,
        queue_size=n,
        num_clusters=k,
        sampling="ncs",
        num_neighbors=2,
        start_epoch=2,
    )
    ssps.on_epoch_start(1)
    _fill(ssps, n)
    ssps.epoch = 2
    gen = torch.Generator().manual_seed(1)
    centroids = F.normalize(torch.randn(k, 4, generator=gen), dim=1)
    assignments = torch.arange(n) % k
    ssps.set_clusters(assignments, centroids)
    # Independent nearest-cluster table.
    sim = centroids @ centroids.T
    sim.fill_diagonal_(-2.0)
    nearest = sim.argsort(dim=1, descending=True)[:, :2]
    anchors = torch.arange(n)
    seen = {c: set() for c in range(k)}
    for _ in range(300):
        pos = ssps.sample(anchors)
        assert (pos >= 0).all()
        for a, p in zip(anchors.tolist(), pos.tolist()):
            target = assignments[p].item()
            assert target in nearest[assignments[a]].tolist()
            seen[assignments[a].item()].add(target)
    # Both neighbours get drawn (uniform over the M nearest).
    assert all(len(s) == 2 for s in seen.values())


def test_fallback_without_candidates():
    # Cluster 0 = {0} only; cluster 1 = the rest; utterance 7 not queued.
    n = 8
    ssps = SSPS(
        n, 4, 3, queue_size=n, num_clusters=2, sampling="scs", start_epoch=2
    )
    ssps.on_epoch_start(1)
    y, z = torch.randn(7, 4), torch.randn(1, 7, 3)
    ssps.update(torch.arange(7), y, z)
    ssps.epoch = 2
    assignments = torch.tensor([0, 1, 1, 1, 1, 1, 1, -1])
    ssps.set_clusters(assignments, torch.eye(2, 4))
    pos = ssps.sample(torch.tensor([0, 7, 1]))
    assert pos[0] == -1  # only itself in its cluster
    assert pos[1] == -1  # not assigned
    assert pos[2] in range(2, 7)
    zz = torch.randn(1, 3, 3)
    out = ssps.swap(zz)
    assert torch.equal(out[:, :2], zz[:, :2])
    assert torch.equal(out[0, 2], z[0, pos[2]])


def test_uniform_over_queue_entries():
    # Anchor 0 in cluster 0 with candidates 1, 2, 3; utterance 3 is queued
    # twice, so the draw is uniform over the 4 entries: p(3) = 1/2.
    n = 8
    ssps = SSPS(
        n,
        4,
        3,
        queue_size=6,
        num_clusters=2,
        sampling="scs",
        start_epoch=2,
        seed=3,
    )
    ssps.on_epoch_start(1)
    entries = torch.tensor([0, 1, 2, 3, 0, 3])
    ssps.update(entries, torch.randn(6, 4), torch.randn(1, 6, 3))
    ssps.epoch = 2
    assignments = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    ssps.set_clusters(assignments, torch.eye(2, 4))
    draws = torch.cat(
        [ssps.sample(torch.zeros(64, dtype=torch.long)) for _ in range(100)]
    )
    freq = torch.bincount(draws, minlength=4).float() / draws.numel()
    assert freq[0] == 0
    expected = torch.tensor([0.0, 0.25, 0.25, 0.5])
    # 6400 draws: the standard error is below 0.007.
    assert torch.allclose(freq[:4], expected, atol=0.03)


def test_swap_replaces_exactly_the_sampled_rows_and_keeps_grad():
    ssps, _, z = _clustered(n=12, k=3, views=2, sampling="scs")
    anchors = torch.tensor([0, 1, 2, 3])
    pos = ssps.sample(anchors)
    zb = torch.randn(2, 4, 3, requires_grad=True)
    out = ssps.swap(zb)
    for j, p in enumerate(pos.tolist()):
        if p >= 0:
            # The stored entry of the drawn utterance, both views.
            assert torch.equal(out[:, j], z[:, p])
        else:
            assert torch.equal(out[:, j], zb[:, j])
    out.sum().backward()
    expected_grad = (pos < 0).float()[None, :, None].expand(2, 4, 3)
    assert torch.equal(zb.grad, expected_grad)


def test_update_fifo_and_reference_rows():
    ssps = SSPS(10, 4, 3, queue_size=6, num_clusters=2, start_epoch=2)
    ssps.on_epoch_start(1)
    y = torch.randn(10, 4)
    z = torch.randn(1, 10, 3)
    ssps.update(torch.arange(4), y[:4], z[:, :4])
    ssps.update(torch.arange(4, 8), y[4:8], z[:, 4:8])
    # Slots 0..5 hold 6, 7, 2, 3, 4, 5 (8 entries through a ring of 6).
    assert ssps.pos_indices.tolist() == [6, 7, 2, 3, 4, 5]
    assert int(ssps.pos_ptr) == 2
    assert torch.equal(ssps.pos_queue[0, 0], z[0, 6])
    assert ssps.ref_filled.tolist() == [True] * 8 + [False] * 2
    assert torch.allclose(ssps.ref_queue[:8], F.normalize(y[:8], dim=1))
    # A batch larger than the queue keeps its newest entries.
    ssps.update(torch.arange(10)[torch.randperm(10)][:8], y[:8], z[:, :8])
    assert int(ssps.pos_ptr) == (2 + 6) % 6


def test_incremental_index_matches_rebuild():
    n, k = 50, 5
    ssps = SSPS(n, 4, 3, queue_size=20, num_clusters=k, start_epoch=2)
    ssps.on_epoch_start(1)
    _fill(ssps, n)
    ssps.epoch = 2
    ssps.set_clusters(torch.randint(-1, k, (n,)), torch.randn(k, 4))
    for step in range(30):
        batch = torch.randperm(n)[:2]
        ssps.update(batch, torch.randn(2, 4), torch.randn(1, 2, 3))
        # Independent key: (cluster * N + utterance) * Q + slot, invalid
        # entries (unassigned utterance) after every valid one.
        utt = ssps.pos_indices
        cluster = ssps.assignments[utt]
        group = torch.where(
            cluster >= 0, cluster * n + utt, torch.full_like(utt, k * n)
        )
        expected = torch.sort(group * 20 + torch.arange(20)).values
        assert torch.equal(ssps._sorted_keys, expected), step


def test_float16_storage_returns_caller_dtype():
    ssps, _, z = _clustered(n=12, k=3, queue_dtype="float16")
    assert ssps.pos_queue.dtype == torch.float16
    assert ssps.ref_queue.dtype == torch.float16
    pos = ssps.sample(torch.arange(4))
    out = ssps.swap(torch.zeros(1, 4, 3))
    assert out.dtype == torch.float32
    assert torch.allclose(out[0, 0], z[0, pos[0]], atol=1e-2)


def test_kmeans_at_epoch_start_and_metrics():
    # 4 speakers x 2 videos, embeddings dominated by the speaker.
    torch.manual_seed(0)
    n = 64
    spk = torch.arange(n) // 16
    vid = torch.arange(n) // 8
    voice = F.normalize(torch.randn(4, 8), dim=1)
    y = F.normalize(voice[spk] + 0.05 * torch.randn(n, 8), dim=1)
    ssps = SSPS(
        n, 8, 8, queue_size=n, num_clusters=4, sampling="scs", start_epoch=2
    )
    ssps.set_labels([f"id{s}" for s in spk.tolist()], vid)
    ssps.on_epoch_start(1)
    for batch in torch.arange(n).split(8):
        ssps.update(batch, y[batch], y[batch].unsqueeze(0))
    ssps.on_epoch_start(2)
    assert (ssps.assignments >= 0).all()
    assert torch.allclose(ssps.centroids.norm(dim=1), torch.ones(4))
    anchors = torch.arange(n)
    pos = ssps.sample(anchors)
    found = pos >= 0
    metrics = ssps.metrics()
    assert metrics["coverage"] == pytest.approx(found.float().mean().item())
    spk_acc = (spk[pos[found]] == spk[found]).float().mean().item()
    vid_acc = (vid[pos[found]] == vid[found]).float().mean().item()
    assert metrics["speaker_acc"] == pytest.approx(spk_acc)
    assert metrics["video_acc"] == pytest.approx(vid_acc)
    assert metrics["nmi_speaker"] == pytest.approx(1.0)
    assert 0 < metrics["nmi_video"] < 1
    assert metrics["kmeans_seconds"] >= 0
    # New epoch: counters restart.
    ssps.on_epoch_start(3)
    assert ssps.metrics()["coverage"] == 0.0


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_neighbors"):
        SSPS(10, 4, 3, num_clusters=3, num_neighbors=3, queue_size=4)
    with pytest.raises(ValueError, match="num_clusters"):
        SSPS(10, 4, 3, num_clusters=11, queue_size=4)
    with pytest.raises(ValueError, match="start_epoch"):
        SSPS(10, 4, 3, num_clusters=2, queue_size=4, start_epoch=1)
    with pytest.raises(ValueError, match="sampling"):
        SSPS(10, 4, 3, num_clusters=2, queue_size=4, sampling="xyz")
    ssps = SSPS(10, 4, 3, num_clusters=5, queue_size=4, start_epoch=2)
    ssps.on_epoch_start(1)
    with pytest.raises(ValueError, match="y_ref must have shape"):
        ssps.update(torch.arange(2), torch.randn(2, 5), torch.randn(1, 2, 3))
    with pytest.raises(ValueError, match="z_pos must have shape"):
        ssps.update(torch.arange(2), torch.randn(2, 4), torch.randn(2, 2, 3))
    with pytest.raises(ValueError, match="indices must lie"):
        ssps.update(torch.tensor([10]), torch.randn(1, 4), torch.randn(1, 1, 3))
    ssps.update(torch.arange(3), torch.randn(3, 4), torch.randn(1, 3, 3))
    with pytest.raises(ValueError, match=r"num_clusters \(5\).*filled.*\(3"):
        ssps.on_epoch_start(2)
    with pytest.raises(RuntimeError, match="before SSPS.sample"):
        SSPS(10, 4, 3, num_clusters=2, queue_size=4).swap(torch.zeros(1, 1, 3))


def test_checkpoint_round_trip_continues_the_same_draws(tmp_path):
    ssps, _, _ = _clustered(n=30, k=3, queue=12, sampling="ncs", m=2)
    ssps.set_labels(torch.arange(30) % 5, torch.arange(30) % 7)
    for _ in range(3):
        ssps.sample(torch.arange(6))
    ssps._save(tmp_path / "ssps.ckpt")
    restored = SSPS(
        30,
        4,
        3,
        queue_size=12,
        num_clusters=3,
        sampling="ncs",
        num_neighbors=2,
        start_epoch=2,
    )
    restored.set_labels(torch.arange(30) % 5, torch.arange(30) % 7)
    restored._load(tmp_path / "ssps.ckpt", end_of_epoch=False)
    # Re-entering the same epoch keeps the restored clustering.
    restored.on_epoch_start(2)
    for name, buf in ssps.state_dict().items():
        assert torch.equal(buf, restored.state_dict()[name]), name
    assert restored.metrics() == ssps.metrics()
    for _ in range(5):
        batch = torch.randperm(30)[:6]
        assert torch.equal(ssps.sample(batch), restored.sample(batch))
        z = torch.randn(1, 6, 3)
        assert torch.equal(ssps.swap(z), restored.swap(z))
        y = torch.randn(6, 4)
        ssps.update(batch, y, z)
        restored.update(batch, y, z)
    assert torch.equal(ssps._sorted_keys, restored._sorted_keys)


def _ddp_worker(rank, world):
    n = 32
    ssps = SSPS(
        n,
        4,
        3,
        queue_size=16,
        num_clusters=4,
        sampling="ncs",
        start_epoch=2,
        seed=5,
    )
    ssps.set_labels(torch.arange(n) % 4, torch.arange(n) % 8)
    gen = torch.Generator().manual_seed(0)  # same data on every rank
    y = torch.randn(n, 4, generator=gen)
    z = torch.randn(1, n, 3, generator=gen)
    samples = []
    for epoch in (1, 2):
        ssps.on_epoch_start(epoch)
        for batch in torch.arange(n).split(8):
            mine = batch[rank::world]  # each rank its own half
            samples.append(ssps.sample(mine))
            ssps.update(mine, y[mine], z[:, mine])
    metrics = ssps.metrics()
    return {
        "state": ssps.state_dict(),
        "samples": samples,
        "metrics": metrics,
    }


def test_two_process_queues_identical(tmp_path):
    r0, r1 = run_on_ranks(_ddp_worker, tmp_path)
    for name, buf in r0["state"].items():
        assert torch.equal(buf, r1["state"][name]), name
    assert (r0["state"]["assignments"] >= 0).all()
    # Counters are summed over ranks; only the timing is per rank.
    r0["metrics"].pop("kmeans_seconds")
    r1["metrics"].pop("kmeans_seconds")
    assert r0["metrics"] == r1["metrics"]
    # Gathered in rank order: batch [0..7] -> rank 0 has 0,2,4,6, rank 1
    # 1,3,5,7, so the queue holds 0,2,4,6,1,3,5,7 for the first batch.
    n_epoch2 = 32
    assert r0["state"]["ref_filled"].all()
    assert int(r0["state"]["pos_ptr"]) == (2 * n_epoch2) % 16
    # In the active epoch each rank drew pseudo-positives for its anchors.
    assert any((s >= 0).any() for s in r0["samples"][4:])
    assert any((s >= 0).any() for s in r1["samples"][4:])


def test_label_oracle_same_speaker_other_video():
    # 4 speakers x 3 videos x 2 utterances; clusters = speakers (fixed),
    # exclusion groups = videos: positives come from another video.
    n = 24
    spk = torch.arange(n) // 6
    vid = torch.arange(n) // 2
    ssps = SSPS(
        n, 4, 3, queue_size=n, num_clusters=4, sampling="scs", start_epoch=2
    )
    ssps.on_epoch_start(1)
    _fill(ssps, n)
    ssps.set_exclusion_groups(vid)
    ssps.set_clusters(spk, torch.eye(4, 4), fixed=True)
    ssps.on_epoch_start(2)  # no k-means: the clustering is kept
    assert torch.equal(ssps.assignments, spk)
    anchors = torch.arange(n)
    for _ in range(50):
        pos = ssps.sample(anchors)
        assert (pos >= 0).all()
        assert torch.equal(spk[pos], spk)
        assert (vid[pos] != vid).all()


@pytest.mark.parametrize(
    "kwargs, option",
    [
        (dict(num_utterances=0), "num_utterances"),
        (dict(num_utterances=None), "num_utterances"),
        (dict(repr_dim=2.5), "repr_dim"),
        (dict(pos_dim=0), "pos_dim"),
        (dict(pos_views=-1), "pos_views"),
        (dict(queue_size="8"), "queue_size"),
        (dict(num_clusters=0), "num_clusters"),
        (dict(num_clusters=11), "num_clusters"),
        (dict(num_neighbors=0), "num_neighbors"),
        (dict(num_neighbors=3, num_clusters=3), "num_neighbors"),
        (dict(kmeans_iters=0), "kmeans_iters"),
        (dict(sampling="knn"), "sampling"),
        (dict(start_epoch=1), "start_epoch"),
        (dict(start_epoch=2.5), "start_epoch"),
        (dict(seed=0.5), "seed"),
        (dict(queue_dtype="float64"), "queue_dtype"),
        (dict(queue_dtype=torch.int8), "queue_dtype"),
        (dict(kmeans_backend="sklearn"), "kmeans_backend"),
    ],
)
def test_bad_option_names_the_constructor_argument(kwargs, option):
    args = dict(num_utterances=10, repr_dim=4, pos_dim=3, queue_size=4)
    args.update(num_clusters=2, sampling="ncs", num_neighbors=1)
    args.update(kwargs)
    with pytest.raises(SSPSOptionError, match=option) as info:
        SSPS(**args)
    assert isinstance(info.value, ValueError)
    assert info.value.option == option
    assert (
        info.value.value is kwargs[option]
        or info.value.value == (kwargs[option])
    )


def test_label_oracle_builds_the_train_script_oracle():
    # 3 speakers x 2 videos x 2 utterances, speakers named out of order.
    names = ["id9", "id1", "id5"]
    speakers = [names[i // 4] for i in range(12)]
    videos = [f"v{i // 2}" for i in range(12)]
    factory = partial(
        SSPS, repr_dim=4, pos_dim=3, queue_size=12, start_epoch=2, seed=4
    )
    oracle = label_oracle(factory, speakers, videos)
    assert oracle.sampling == "scs" and oracle.num_clusters == 3
    codes = torch.tensor([sorted(names).index(s) for s in speakers])
    assert torch.equal(oracle.assignments, codes)
    oracle.on_epoch_start(1)
    _fill(oracle, 12)
    oracle.on_epoch_start(2)  # fixed clusters: no k-means
    assert torch.equal(oracle.assignments, codes)
    vid = torch.arange(12) // 2
    for _ in range(20):
        pos = oracle.sample(torch.arange(12))
        assert (pos >= 0).all()
        assert torch.equal(codes[pos], codes)
        assert (vid[pos] != vid).all()
    metrics = oracle.metrics()
    assert metrics["speaker_acc"] == 1.0 and metrics["video_acc"] == 0.0
    assert metrics["nmi_speaker"] == pytest.approx(1.0)


def test_label_oracle_draws_as_the_hand_built_oracle():
    # What recipes/VoxCeleb/SSPS/train.py did by hand before label_oracle.
    speakers = [f"s{(i * 7) % 5}" for i in range(30)]
    videos = [f"v{i % 9}" for i in range(30)]
    factory = partial(
        SSPS, repr_dim=4, pos_dim=3, queue_size=16, start_epoch=2, seed=2
    )
    names = sorted(set(speakers))
    manual = factory(num_utterances=30, num_clusters=5, sampling="scs")
    manual.set_exclusion_groups(videos)
    manual.set_clusters(
        torch.tensor([names.index(s) for s in speakers]),
        torch.zeros_like(manual.centroids),
        fixed=True,
    )
    manual.set_labels(speakers, videos)
    oracle = label_oracle(factory, speakers, videos)
    for ssps in (manual, oracle):
        ssps.on_epoch_start(1)
        _fill(ssps, 30, seed=3)
        ssps.on_epoch_start(2)
    for _ in range(5):
        batch = torch.randperm(30)[:8]
        assert torch.equal(manual.sample(batch), oracle.sample(batch))
    assert manual.metrics() == oracle.metrics()
