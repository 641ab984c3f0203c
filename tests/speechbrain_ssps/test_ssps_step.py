"""Tests of ``SSPS.step`` (schedule gates) and of loading old checkpoints."""

import json
import os

import torch

from speechbrain_ssps.ssps import SSPS

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def _ssps(**kw):
    args = dict(
        num_utterances=8,
        repr_dim=4,
        pos_dim=3,
        queue_size=8,
        num_clusters=2,
        sampling="scs",
        start_epoch=3,
        seed=1,
    )
    args.update(kw)
    return SSPS(**args)


def test_step_before_filling_returns_input_and_writes_nothing():
    ssps = _ssps()
    ssps.on_epoch_start(1)
    z = torch.randn(1, 8, 3)
    out = ssps.step(torch.arange(8), None, z)
    assert out is z
    assert not bool(ssps.ref_filled.any())
    assert bool((ssps.pos_indices == -1).all())


def test_step_in_filling_epoch_writes_but_does_not_swap():
    ssps = _ssps()
    ssps.on_epoch_start(2)
    z = torch.randn(1, 8, 3)
    out = ssps.step(torch.arange(8), torch.randn(8, 4), z)
    assert torch.equal(out, z)
    assert bool(ssps.ref_filled.all())
    assert torch.equal(ssps.pos_queue[:, 0], z[0])


def test_step_when_active_swaps_then_stores_the_unswapped_positives():
    ssps = _ssps()
    ssps.on_epoch_start(2)
    idx = torch.arange(8)
    y = torch.randn(8, 4)
    z_old = torch.randn(1, 8, 3)
    ssps.step(idx, y, z_old)
    ssps.on_epoch_start(3)  # k-means on the filled reference queue
    z_new = torch.randn(1, 8, 3, requires_grad=True)
    out = ssps.step(idx, y, z_new)
    swapped = ssps._last_slots >= 0
    assert bool(swapped.any())
    # swapped rows hold the stored (old) embeddings of the drawn slots;
    # slot i was filled with utterance i
    slots = ssps._last_slots[swapped]
    assert torch.equal(out[0][swapped], z_old[0][slots])
    # the queue now holds this batch's own, unswapped positives
    assert torch.equal(ssps.pos_queue[:, 0], z_new[0].detach())
    # gradient reaches only the rows that kept their own positive
    out.sum().backward()
    grad_rows = z_new.grad[0].abs().sum(1) > 0
    assert torch.equal(grad_rows, ~swapped)


def test_checkpoint_saved_before_the_restructure_loads_and_continues():
    with open(os.path.join(FIXTURES, "ssps_state_v1.json")) as f:
        expected = json.load(f)
    kw = expected["kwargs"]
    ssps = SSPS(**kw)
    n = kw["num_utterances"]
    ssps.set_labels([i // 6 for i in range(n)], [i // 3 for i in range(n)])
    ssps._load(os.path.join(FIXTURES, "ssps_state_v1.ckpt"))
    assert ssps.assignments.tolist() == expected["assignments"]
    torch.manual_seed(0)
    torch.randn(n, kw["repr_dim"])
    z = torch.randn(2, n, kw["pos_dim"])
    nxt = torch.tensor(expected["next_indices"])
    assert ssps.sample(nxt).tolist() == expected["next_positives"]
    swapped = ssps.swap(z[:, nxt])
    assert abs(float(swapped.sum()) - expected["swapped_sum"]) < 1e-5
    metrics = ssps.metrics()
    for key in ("coverage", "speaker_acc", "video_acc", "nmi_speaker"):
        assert abs(metrics[key] - expected["metrics"][key]) < 1e-9
