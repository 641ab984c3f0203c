"""Tests of SSPS's schedule and clustering (ssps/clustering.py)."""

import pytest
import torch
from ssps_helpers import fill

from speechbrain_ssps.ssps import SSPS


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
            fill(ssps, 8)
        ssps.on_epoch_start(epoch)
        assert (ssps.filling, ssps.active) == (filling, active)
        if epoch == 1:
            # Nothing written while not filling, nothing sampled.
            fill(ssps, 8)
            assert not ssps.ref_filled.any()
            assert (ssps.pos_indices == -1).all()
            assert (ssps.sample(torch.arange(4)) == -1).all()
    assert (ssps.assignments >= 0).all()


def test_kmeans_needs_as_many_filled_rows_as_clusters():
    ssps = SSPS(10, 4, 3, num_clusters=5, queue_size=4, start_epoch=2)
    ssps.on_epoch_start(1)
    ssps.update(torch.arange(3), torch.randn(3, 4), torch.randn(1, 3, 3))
    with pytest.raises(ValueError, match=r"num_clusters \(5\).*filled.*\(3"):
        ssps.on_epoch_start(2)


def test_set_clusters_checks_shapes_and_range():
    ssps = SSPS(6, 4, 3, num_clusters=2, queue_size=4)
    with pytest.raises(ValueError, match="centroids must have shape"):
        ssps.set_clusters(torch.zeros(6, dtype=torch.long), torch.eye(3, 4))
    with pytest.raises(ValueError, match="assignments must have shape"):
        ssps.set_clusters(torch.zeros(5, dtype=torch.long), torch.eye(2, 4))
    with pytest.raises(ValueError, match=r"must lie in \[-1, 1\]"):
        ssps.set_clusters(torch.full((6,), 2), torch.eye(2, 4))
