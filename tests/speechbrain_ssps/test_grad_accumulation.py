"""Gradient accumulation: optimizer-step schedules, per-step updates."""

import pytest
import torch
from speechbrain.dataio.batch import PaddedBatch
from speechbrain.utils.epoch_loop import EpochCounter
from test_brain import GLOBAL, LOCAL, N_UTT, REF, make_brain

from speechbrain_ssps.losses import DINOLoss, NTXentLoss
from speechbrain_ssps.precision import optimizer_steps_per_epoch

EPOCHS, BATCH = 2, 4  # 16 utterances: 4 batches per epoch


class _Log:
    """A stand-in for the recipe's ``train_logger``."""

    def __init__(self):
        self.rows = []

    def log_stats(self, stats_meta, train_stats=None, **kwargs):
        self.rows.append((stats_meta, train_stats))


def _items(n=N_UTT, seed=0):
    gen = torch.Generator().manual_seed(seed)
    keys = ("view_0", "view_1", "view_2", "ref")
    return [
        {
            "id": f"u{i}",
            "index": i,
            **{
                k: torch.randn(length, generator=gen) / 10
                for k, length in zip(keys, (GLOBAL, GLOBAL, LOCAL, REF))
            },
        }
        for i in range(n)
    ]


def _count(obj, name, calls, record):
    """Wraps ``obj.name`` to append ``record()`` at every call."""
    original = getattr(obj, name)

    def wrapper(*args, **kwargs):
        calls.append(record())
        return original(*args, **kwargs)

    setattr(obj, name, wrapper)


def _fit(framework, factor, with_ssps=False):
    """``Brain.fit`` over 2 epochs of 4 batches; what the hooks saw."""
    brain = make_brain(
        framework,
        with_ssps,
        grad_accumulation_factor=factor,
        schedule_epochs=EPOCHS,
        train_logger=_Log(),
        lr_final=1e-4,
        lr_schedule="cosine",
    )
    seen = {"after": [], "before": [], "center": [], "update": []}

    def after():
        group = brain.optimizer.param_groups[0]
        step = brain.optimizer_step
        return step, group["lr"], brain.teacher_momentum(step - 1)

    _count(brain.framework, "after_optimizer_step", seen["after"], after)
    _count(brain.framework, "before_optimizer_step", seen["before"], int)
    if framework == "dino":
        loss = brain.modules.ssl_loss
        _count(loss, "step_center", seen["center"], lambda: loss._pending_rows)
    if with_ssps:
        _count(brain.modules["ssps"], "update", seen["update"], int)
    brain.fit(
        EpochCounter(EPOCHS),
        _items(),
        train_loader_kwargs={
            "batch_size": BATCH,
            "collate_fn": PaddedBatch,
            "drop_last": True,
        },
    )
    return brain, seen


@pytest.mark.parametrize("factor", [1, 2, 3])
def test_dino_steps_schedules_and_updates_follow_optimizer_steps(factor):
    brain, seen = _fit("dino", factor, with_ssps=True)
    batches = N_UTT // BATCH
    total = EPOCHS * (batches // factor)  # SpeechBrain: step % factor == 0
    assert brain.steps_per_epoch == batches
    assert brain.optimizer_steps_per_epoch == batches // factor
    assert brain.optimizer_step == total == brain._total_steps()
    # Teacher EMA, clipping/last-layer rule and centre: once per step.
    steps = [s for s, _, _ in seen["after"]]
    assert steps == list(range(1, total + 1))
    assert len(seen["before"]) == total
    assert len(seen["center"]) == total
    # The centre moves from the teacher rows of the accumulated batches
    # (2 global views x BATCH per batch); SpeechBrain drops the gradient of
    # an epoch's last batches % factor batches, the centre keeps their rows.
    assert seen["center"][0] == 2 * BATCH * factor
    # SSPS: every forward batch enters the queues.
    assert len(seen["update"]) == EPOCHS * batches
    assert bool(brain.modules["ssps"].ref_filled.all())
    # The schedules are indexed by the optimizer step and end with the run.
    lrs = [lr for _, lr, _ in seen["after"]]
    expected = [brain.learning_rate(k) for k in range(total)]
    assert lrs == pytest.approx(expected)
    assert lrs[0] == pytest.approx(brain.hparams.lr)
    if total > 1:
        assert lrs[-1] < lrs[0]
    assert brain.learning_rate(total) == pytest.approx(1e-4)
    momenta = [m for _, _, m in seen["after"]]
    assert momenta[0] == pytest.approx(0.9)
    assert brain.teacher_momentum(total) == pytest.approx(1.0)


def test_simclr_with_ssps_takes_half_the_optimizer_steps():
    plain, seen_1 = _fit("simclr", 1, with_ssps=True)
    halved, seen_2 = _fit("simclr", 2, with_ssps=True)
    assert plain.optimizer_step == 2 * halved.optimizer_step == 8
    assert len(seen_1["after"]) == 8 and len(seen_2["after"]) == 4
    assert len(seen_1["update"]) == len(seen_2["update"]) == 8


def test_accumulation_factor_larger_than_an_epoch_is_refused():
    with pytest.raises(ValueError, match="--grad_accumulation_factor=5"):
        _fit("simclr", 5)
    assert optimizer_steps_per_epoch(7, 2) == 3
    with pytest.raises(ValueError, match="--grad_accumulation_factor"):
        optimizer_steps_per_epoch(4, 0)


def _dino_inputs(batch=6, views=3, dim=10, seed=0):
    gen = torch.Generator().manual_seed(seed)
    student = torch.randn(views, batch, dim, generator=gen)
    teacher = torch.randn(2, batch, dim, generator=gen)
    return student.requires_grad_(), teacher


def test_dino_two_half_batches_equal_one_batch():
    """Fixed centre within a step: the loss is a mean of per-row terms."""
    student, teacher = _dino_inputs()
    full_loss = DINOLoss(10, n_global=2, n_local=1)
    full_loss.center.normal_()
    half_loss = DINOLoss(10, n_global=2, n_local=1)
    half_loss.center.copy_(full_loss.center)
    half_loss.defer_center_update = True

    full_loss(student.reshape(-1, 10), teacher.reshape(-1, 10), 0).backward()
    full_grad = student.grad.clone()
    student.grad = None
    for half in (slice(0, 3), slice(3, 6)):
        s = student[:, half].reshape(-1, 10)
        t = teacher[:, half].reshape(-1, 10)
        (half_loss(s, t, 0) / 2).backward()  # as SpeechBrain scales it
    assert torch.allclose(student.grad, full_grad, atol=1e-7)
    half_loss.step_center()
    assert torch.allclose(half_loss.center, full_loss.center, atol=1e-7)


def test_ntxent_half_batches_differ_from_one_batch():
    """Why accumulation is not a larger batch for contrastive losses.

    A half batch has half the negatives: its gradient is not half of the
    full batch's, so accumulating N batches of B / N is not one batch of B
    (the paper's SimCLR batch needs B per step: more GPUs, not more steps).
    """
    gen = torch.Generator().manual_seed(0)
    z1 = torch.randn(6, 8, generator=gen, requires_grad=True)
    z2 = torch.randn(6, 8, generator=gen)
    loss = NTXentLoss(temperature=0.1)
    loss(z1, z2).backward()
    full_grad = z1.grad.clone()
    z1.grad = None
    for half in (slice(0, 3), slice(3, 6)):
        (loss(z1[half], z2[half]) / 2).backward()
    assert not torch.allclose(z1.grad, full_grad, atol=1e-3)
