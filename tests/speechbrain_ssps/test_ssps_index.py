"""Tests of SSPS's cluster/slot index (speechbrain_ssps/ssps/index.py)."""

import torch
import torch.nn.functional as F
from ssps_helpers import fill
from ssps_reference import reference_neighbors

from speechbrain_ssps.ssps import SSPS
from speechbrain_ssps.ssps.index import nearest_clusters


def test_incremental_index_matches_rebuild():
    n, k = 50, 5
    ssps = SSPS(n, 4, 3, queue_size=20, num_clusters=k, start_epoch=2)
    ssps.on_epoch_start(1)
    fill(ssps, n)
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


def test_nearest_clusters_match_the_reference_loop():
    gen = torch.Generator().manual_seed(4)
    centroids = F.normalize(torch.randn(30, 8, generator=gen), dim=1)
    for m in (1, 3, 29):
        table = nearest_clusters(centroids, m)
        assert table.tolist() == reference_neighbors(centroids, m), m


def test_exclusion_groups_rebuild_the_index():
    n, q = 12, 12
    ssps = SSPS(n, 4, 3, queue_size=q, num_clusters=2, sampling="scs")
    ssps.on_epoch_start(1)
    fill(ssps, n)
    ssps.set_clusters(torch.arange(n) % 2, torch.eye(2, 4))
    groups = torch.arange(n) // 3
    ssps.set_exclusion_groups([f"g{g}" for g in groups.tolist()])
    utt = ssps.pos_indices
    key = (ssps.assignments[utt] * 4 + groups[utt]) * q + torch.arange(q)
    assert torch.equal(ssps._sorted_keys, torch.sort(key).values)
