"""Tests of SSPS's queues (speechbrain_ssps/ssps/queues.py)."""

import pytest
import torch
import torch.nn.functional as F
from ssps_helpers import clustered

from speechbrain_ssps.ssps import SSPS


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


def test_float16_storage_returns_caller_dtype():
    ssps, _, z = clustered(n=12, k=3, queue_dtype="float16")
    assert ssps.pos_queue.dtype == torch.float16
    assert ssps.ref_queue.dtype == torch.float16
    pos = ssps.sample(torch.arange(4))
    out = ssps.swap(torch.zeros(1, 4, 3))
    assert out.dtype == torch.float32
    assert torch.allclose(out[0, 0], z[0, pos[0]], atol=1e-2)


def test_bad_update_arguments():
    ssps = SSPS(10, 4, 3, num_clusters=5, queue_size=4, start_epoch=2)
    ssps.on_epoch_start(1)
    with pytest.raises(ValueError, match="y_ref must have shape"):
        ssps.update(torch.arange(2), torch.randn(2, 5), torch.randn(1, 2, 3))
    with pytest.raises(ValueError, match="z_pos must have shape"):
        ssps.update(torch.arange(2), torch.randn(2, 4), torch.randn(2, 2, 3))
    with pytest.raises(ValueError, match="indices must lie"):
        ssps.update(torch.tensor([10]), torch.randn(1, 4), torch.randn(1, 1, 3))
    with pytest.raises(ValueError, match="1-D integer tensor"):
        ssps.update(torch.zeros(2), torch.randn(2, 4), torch.randn(1, 2, 3))
