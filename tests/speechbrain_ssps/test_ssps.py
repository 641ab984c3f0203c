"""Tests of SSPS's sampler: draws, swap, checkpoints, DDP (ssps/sampler.py).

The other parts of SSPS have their own test modules (test_ssps_options,
test_ssps_queues, test_ssps_clustering, test_ssps_index,
test_ssps_diagnostics, test_ssps_oracle); ``SSPS.step`` and old checkpoints
are in test_ssps_step.
"""

import pytest
import torch
import torch.nn.functional as F
from gloo_ranks import run_on_ranks
from ssps_helpers import clustered, fill
from ssps_reference import reference_neighbors, reference_sample

from speechbrain_ssps.ssps import SSPS


def test_inactive_sample_keeps_ordinary_positive():
    ssps = SSPS(8, 4, 3, queue_size=8, num_clusters=2, start_epoch=2)
    ssps.on_epoch_start(1)
    fill(ssps, 8)
    assert (ssps.sample(torch.arange(8)) == -1).all()
    z = torch.randn(1, 8, 3)
    assert torch.equal(ssps.swap(z), z)


def test_scs_never_self_and_same_cluster():
    ssps, _, _ = clustered(n=12, k=3)
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
    fill(ssps, n)
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
    ssps, _, z = clustered(n=12, k=3, views=2, sampling="scs")
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


def test_swap_before_sample_is_an_error():
    with pytest.raises(RuntimeError, match="before SSPS.sample"):
        SSPS(10, 4, 3, num_clusters=2, queue_size=4).swap(torch.zeros(1, 1, 3))


def test_checkpoint_round_trip_continues_the_same_draws(tmp_path):
    ssps, _, _ = clustered(n=30, k=3, queue=12, sampling="ncs", m=2)
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


# (sampling, N, K, M, Q, filled queue entries, exclusion groups, seed)
REFERENCE_CONFIGS = [
    ("scs", 30, 3, 1, 12, 30, None, 0),
    ("scs", 40, 20, 1, 8, 40, None, 1),  # most clusters empty in Q'
    ("scs", 24, 4, 1, 64, 40, 6, 2),  # Q' > N, videos as groups
    ("ncs", 30, 5, 2, 16, 30, None, 3),
    ("ncs", 50, 12, 4, 40, 25, None, 4),  # Q' not full
    ("ncs", 24, 8, 7, 64, 200, None, 5),  # M = K - 1, every utterance twice
    ("ncs", 36, 6, 3, 32, 50, 9, 6),  # with exclusion groups
]


@pytest.mark.parametrize("config", REFERENCE_CONFIGS)
def test_vectorised_sample_matches_the_reference_loop(config, monkeypatch):
    sampling, n, k, m, q, pushed, num_groups, seed = config
    gen = torch.Generator().manual_seed(seed)
    ssps = SSPS(
        n,
        8,
        3,
        queue_size=q,
        num_clusters=k,
        sampling=sampling,
        num_neighbors=m,
        start_epoch=2,
        seed=seed,
    )
    groups = torch.arange(n)
    if num_groups:
        groups = torch.randint(num_groups, (n,), generator=gen)
        ssps.set_exclusion_groups(groups)
    ssps.on_epoch_start(1)
    order = torch.randint(n, (pushed,), generator=gen)
    for batch in order.split(5):
        b = batch.numel()
        ssps.update(batch, torch.randn(b, 8), torch.randn(1, b, 3))
    ssps.epoch = 2
    # Unassigned utterances and, from K = 5 on, two clusters left empty.
    assignments = torch.randint(-1, k, (n,), generator=gen)
    if k >= 5:
        assignments[(assignments == 0) | (assignments == k - 1)] = -1
    centroids = torch.randn(k, 8, generator=gen)
    ssps.set_clusters(assignments, centroids)
    if sampling == "ncs":
        neighbors = reference_neighbors(ssps.centroids, m)
        assert ssps.neighbors.tolist() == neighbors
    else:
        neighbors = [[c] for c in range(k)]
    draws = []
    uniform = ssps._uniform

    def recorded(batch, columns=2):
        draws.append(uniform(batch, columns))
        return draws[-1]

    monkeypatch.setattr(ssps, "_uniform", recorded)
    covered = 0
    for _ in range(6):
        anchors = torch.randint(n, (7,), generator=gen)
        positives = ssps.sample(anchors)
        slots, expected = reference_sample(
            ssps.pos_indices.tolist(),
            assignments.tolist(),
            neighbors,
            groups.tolist(),
            anchors.tolist(),
            draws[-1].tolist(),
        )
        assert ssps._last_slots.tolist() == slots
        assert positives.tolist() == expected
        covered += sum(s >= 0 for s in slots)
        # Move the queue on: the index follows by merge or by rebuild.
        batch = torch.randint(n, (3,), generator=gen)
        ssps.update(batch, torch.randn(3, 8), torch.randn(1, 3, 3))
    assert covered > 0
