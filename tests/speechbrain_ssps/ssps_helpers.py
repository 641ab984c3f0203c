"""Builders shared by the SSPS tests (one test module per SSPS module)."""

import torch

from speechbrain_ssps.ssps import SSPS


def fill(ssps, n, views=1, dim=None, seed=0):
    """Pushes every utterance once, in batches of 4; returns (y, z)."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(views, n, dim or ssps.pos_dim, generator=gen)
    y = torch.randn(n, ssps.repr_dim, generator=gen)
    for batch in torch.arange(n).split(4):
        ssps.update(batch, y[batch], z[:, batch])
    return y, z


def clustered(n=12, k=3, queue=None, sampling="scs", m=1, views=1, **kw):
    """An SSPS in its first active epoch with the clustering ``i % k``."""
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
    y, z = fill(ssps, n, views)
    ssps.epoch = 2  # enter the active epoch without k-means
    assignments = torch.arange(n) % k
    centroids = torch.eye(k, 4)
    ssps.set_clusters(assignments, centroids)
    return ssps, y, z
