"""SSPS's queues filled by the training steps or by one eval-mode pass."""

import pytest
import speechbrain as sb
import torch
from test_brain import N_UTT, make_batch, make_brain

from speechbrain_ssps.queue_filling import (
    check_fill_mode,
    fill_pass,
    fills_during_steps,
    needs_fill_pass,
)
from speechbrain_ssps.ssps import SSPS


def _ssps(start_epoch=3):
    return SSPS(8, 4, 4, queue_size=8, num_clusters=2, start_epoch=start_epoch)


def test_unknown_fill_mode_names_the_option():
    with pytest.raises(ValueError, match="--ssps_fill"):
        check_fill_mode("buffers")


@pytest.mark.parametrize(
    "epoch, epoch_mode, pass_mode",
    [(1, False, False), (2, True, False), (3, True, True), (4, True, True)],
)
def test_steps_fill_from_start_minus_one_or_from_start(
    epoch, epoch_mode, pass_mode
):
    ssps = _ssps(start_epoch=3)
    ssps.epoch = epoch
    assert fills_during_steps(ssps, "epoch") is epoch_mode
    assert fills_during_steps(ssps, "pass") is pass_mode


def test_the_pass_runs_once_at_the_start_epoch_only():
    ssps = _ssps(start_epoch=3)
    assert [needs_fill_pass(ssps, "pass", e) for e in (1, 2, 3, 4)] == [
        False,
        False,
        True,
        False,
    ]
    assert not needs_fill_pass(ssps, "epoch", 3)
    ssps.clustered_epoch = 3  # resumed inside epoch 3: state restored
    assert not needs_fill_pass(ssps, "pass", 3)


def _loader():
    half = N_UTT // 2
    return [make_batch(range(0, half)), make_batch(range(half, N_UTT))]


def _bn_state(model):
    return {
        k: v.clone() for k, v in model.state_dict().items() if "running" in k
    }


@pytest.mark.parametrize("framework", ["simclr", "dino"])
def test_pass_mode_trains_epoch_before_start_as_plain(framework):
    brain = make_brain(framework, with_ssps=True, ssps_fill="pass")
    ssps = brain.modules["ssps"]
    brain._train_loader = _loader()
    brain.on_stage_start(sb.Stage.TRAIN, 1)  # start_epoch is 2
    assert ssps.filling and not ssps.active
    out = brain.compute_forward(make_batch(range(8)), sb.Stage.TRAIN)
    assert out["y_ref"] is None  # no reference encoding in a plain epoch
    brain.fit_batch(make_batch(range(8)))
    assert not ssps.ref_filled.any()
    assert int(ssps.pos_ptr) == 0


@pytest.mark.parametrize("framework", ["simclr", "dino"])
def test_fill_pass_writes_queues_in_eval_mode_then_clusters(framework):
    brain = make_brain(framework, with_ssps=True, ssps_fill="pass")
    ssps = brain.modules["ssps"]
    brain._train_loader = _loader()
    model = brain.modules.embedding_model
    model.train()
    before = _bn_state(model)
    brain.on_stage_start(sb.Stage.TRAIN, 2)
    assert ssps.ref_filled.all()  # every utterance written by the pass
    assert int(ssps.clustered_epoch) == 2 and ssps.active
    assert (ssps.assignments >= 0).all()
    assert model.training  # modes restored
    for key, value in _bn_state(model).items():
        assert torch.equal(value, before[key]), key  # eval: stats untouched
    # The stored positives are the framework's, in eval mode.
    batch = make_batch(range(N_UTT // 2, N_UTT))
    brain.modules.eval()
    with torch.no_grad():
        out = brain.compute_forward(batch, sb.Stage.TRAIN, fill=True)
    brain.modules.train()
    rows, views = brain.framework.positives(brain, out, N_UTT // 2)
    stored = ssps.pos_queue[N_UTT // 2 :].transpose(0, 1)
    expected = rows.reshape(views, N_UTT // 2, -1)
    assert torch.allclose(stored.float(), expected, atol=1e-5)
    # Re-entering the clustered epoch (a resume) does not pass again.
    ssps.ref_queue.zero_()
    brain.on_stage_start(sb.Stage.TRAIN, 2)
    assert not ssps.ref_queue.any()


def test_epoch_mode_fills_during_steps_as_before():
    brain = make_brain("simclr", with_ssps=True)
    ssps = brain.modules["ssps"]
    brain._train_loader = _loader()
    brain.on_stage_start(sb.Stage.TRAIN, 1)
    brain.fit_batch(make_batch(range(8)))
    assert ssps.ref_filled[:8].all() and not ssps.ref_filled[8:].any()


def test_fill_pass_counts_its_batches():
    brain = make_brain("simclr", with_ssps=True, ssps_fill="pass")
    assert fill_pass(brain, _loader(), 2) == 2
    assert brain.modules["ssps"].epoch == 1  # filling state, not clustered
    # --debug: no more batches than a debug epoch has.
    assert fill_pass(brain, _loader(), 2, max_batches=1) == 1
