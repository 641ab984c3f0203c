"""Tests of SSPS's option rules (speechbrain_ssps/ssps/options.py)."""

import pytest
import torch
from ssps_helpers import fill

from speechbrain_ssps.ssps import SSPS, SSPSOptionError


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="num_neighbors"):
        SSPS(10, 4, 3, num_clusters=3, num_neighbors=3, queue_size=4)
    with pytest.raises(ValueError, match="num_clusters"):
        SSPS(10, 4, 3, num_clusters=11, queue_size=4)
    with pytest.raises(ValueError, match="start_epoch"):
        SSPS(10, 4, 3, num_clusters=2, queue_size=4, start_epoch=1)
    with pytest.raises(ValueError, match="sampling"):
        SSPS(10, 4, 3, num_clusters=2, queue_size=4, sampling="xyz")


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
        (dict(sampling="lsh"), "sampling"),
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


@pytest.mark.parametrize("m", [3, 4, 50])
def test_scs_accepts_num_neighbors_not_below_num_clusters(m):
    # SCS draws from the anchor's own cluster: M is not used.
    n, k = 12, 3
    ssps = SSPS(
        n,
        4,
        3,
        queue_size=n,
        num_clusters=k,
        sampling="scs",
        num_neighbors=m,
        start_epoch=2,
    )
    assert ssps.neighbors.shape == (k, 1)
    ssps.on_epoch_start(1)
    fill(ssps, n)
    ssps.epoch = 2
    ssps.set_clusters(torch.arange(n) % k, torch.eye(k, 4))
    assert ssps.neighbors.squeeze(1).tolist() == list(range(k))
    anchors = torch.arange(n)
    pos = ssps.sample(anchors)
    assert (pos >= 0).all() and (pos != anchors).all()
    assert torch.equal(pos % k, anchors % k)


def test_ncs_with_one_cluster_per_utterance_and_all_others_as_neighbours():
    # K = N = 1000 and M = K - 1 = 999, the largest NCS accepts.
    n = 1000
    ssps = SSPS(
        n,
        8,
        3,
        queue_size=n,
        num_clusters=n,
        sampling="ncs",
        num_neighbors=n - 1,
        start_epoch=2,
    )
    ssps.on_epoch_start(1)
    gen = torch.Generator().manual_seed(0)
    y = torch.randn(n, 8, generator=gen)
    for batch in torch.arange(n).split(250):
        ssps.update(batch, y[batch], torch.randn(1, batch.numel(), 3))
    ssps.on_epoch_start(2)  # k-means with K = N
    assert (ssps.assignments >= 0).all()
    assert ssps.neighbors.shape == (n, n - 1)
    own = torch.arange(n).unsqueeze(1)
    assert not (ssps.neighbors == own).any()
    # Every row lists each other cluster exactly once.
    assert torch.equal(
        torch.sort(ssps.neighbors, dim=1).values.sum(1),
        n * (n - 1) // 2 - torch.arange(n),
    )
    anchors = torch.arange(n)
    pos = ssps.sample(anchors)
    assert (pos != anchors).all()
    found = pos >= 0
    assert found.float().mean() > 0.5
    # A pseudo-positive comes from one of the anchor's neighbour clusters.
    assert (
        ssps.assignments[pos[found]] != ssps.assignments[anchors[found]]
    ).all()
