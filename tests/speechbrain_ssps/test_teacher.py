"""Tests for speechbrain_ssps.teacher."""

import pytest
import torch
from torch import nn

from speechbrain_ssps.heads import DINOHead
from speechbrain_ssps.teacher import (
    cancel_last_layer_gradients_,
    clip_gradients_per_parameter_,
    copy_student_to_teacher,
    ema_update_,
)


def make_net(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.Linear(6, 3))


def test_copy_student_to_teacher_strict_and_frozen():
    student, teacher = make_net(0), make_net(1)
    student[1].running_mean.fill_(0.5)
    copy_student_to_teacher(student, teacher)
    for (n, p), (_, q) in zip(
        student.state_dict().items(), teacher.state_dict().items()
    ):
        assert torch.equal(p, q), n
    assert all(not p.requires_grad for p in teacher.parameters())
    assert all(p.requires_grad for p in student.parameters())
    with pytest.raises(RuntimeError):
        copy_student_to_teacher(student, nn.Linear(4, 6))


def test_copy_dino_head_keeps_frozen_gain():
    student = DINOHead(8, out_dim=20, hidden_dim=16, bottleneck_dim=4)
    teacher = DINOHead(8, out_dim=20, hidden_dim=16, bottleneck_dim=4)
    copy_student_to_teacher(student, teacher)
    x = torch.randn(3, 8)
    student.eval()
    teacher.eval()
    assert torch.equal(student(x), teacher(x))


def test_ema_endpoints_and_formula():
    student, teacher = make_net(0), make_net(1)
    teacher_before = {k: v.clone() for k, v in teacher.state_dict().items()}
    ema_update_(teacher, student, momentum=1.0)
    for k, v in teacher.state_dict().items():
        assert torch.equal(v, teacher_before[k])

    m = 0.7
    ema_update_(teacher, student, momentum=m)
    for name, p in teacher.named_parameters():
        s = dict(student.named_parameters())[name]
        expected = m * teacher_before[name] + (1 - m) * s.detach()
        assert torch.allclose(p, expected, atol=1e-7), name

    ema_update_(teacher, student, momentum=0.0)
    for (name, p), s in zip(teacher.named_parameters(), student.parameters()):
        assert torch.equal(p, s), name


def test_ema_leaves_buffers_alone():
    student, teacher = make_net(0), make_net(1)
    student[1].running_mean.fill_(3.0)
    teacher[1].running_mean.fill_(-1.0)
    ema_update_(teacher, student, 0.5)
    assert torch.equal(teacher[1].running_mean, torch.full((6,), -1.0))


def test_ema_rejects_mismatch_and_bad_momentum():
    with pytest.raises(ValueError, match="differ"):
        ema_update_(nn.Linear(2, 2), nn.Linear(2, 2, bias=False), 0.9)
    with pytest.raises(ValueError, match="momentum"):
        ema_update_(nn.Linear(2, 2), nn.Linear(2, 2), 1.5)


def test_ema_does_not_track_gradients():
    student, teacher = make_net(0), make_net(1)
    copy_student_to_teacher(student, teacher)
    ema_update_(teacher, student, 0.9)
    assert all(p.grad_fn is None for p in teacher.parameters())
    assert all(not p.requires_grad for p in teacher.parameters())


def test_clip_per_parameter():
    torch.manual_seed(3)
    params = [nn.Parameter(torch.zeros(s)) for s in [(5, 4), (7,), (3, 3)]]
    grads = [torch.randn(5, 4) * 10, torch.randn(7) * 1e-3, torch.randn(3, 3)]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    no_grad = nn.Parameter(torch.zeros(2))
    norms = clip_gradients_per_parameter_(params + [no_grad], max_norm=2.0)
    assert norms == pytest.approx([float(g.norm()) for g in grads], rel=1e-6)
    for p, g in zip(params, grads):
        n = float(g.norm())
        # Reference DINO: scale by clip / (norm + 1e-6) only if that is < 1.
        coef = 2.0 / (n + 1e-6)
        expected = g * coef if coef < 1 else g
        assert torch.allclose(p.grad, expected, rtol=1e-6)
        assert float(p.grad.norm()) <= 2.0 + 1e-5
    assert torch.equal(params[1].grad, grads[1])  # small grad untouched
    assert no_grad.grad is None


def test_clip_accepts_module_and_rejects_bad_norm():
    net = nn.Linear(3, 2)
    net(torch.randn(4, 3) * 100).sum().backward()
    norms = clip_gradients_per_parameter_(net, max_norm=0.5)
    assert len(norms) == 2
    assert all(float(p.grad.norm()) <= 0.5 + 1e-6 for p in net.parameters())
    assert clip_gradients_per_parameter_([nn.Parameter(torch.ones(1))], 1) == []
    with pytest.raises(ValueError, match="max_norm"):
        clip_gradients_per_parameter_(net, max_norm=-1.0)


def test_cancel_last_layer_gradients_one_based():
    head = DINOHead(6, out_dim=10, hidden_dim=8, bottleneck_dim=4)
    head(torch.randn(3, 6)).sum().backward()
    last = head.last_layer_parameters
    # Epoch 2 with freeze_epochs=1: kept.
    assert not cancel_last_layer_gradients_(last, epoch=2, freeze_epochs=1)
    assert any(p.grad is not None for p in last)
    # freeze_epochs=0: never frozen.
    assert not cancel_last_layer_gradients_(last, epoch=1, freeze_epochs=0)
    # Epoch 1 (the first epoch) with freeze_epochs=1: cancelled.
    assert cancel_last_layer_gradients_(last, epoch=1, freeze_epochs=1)
    assert all(p.grad is None for p in last)
    assert all(p.grad is not None for p in head.mlp.parameters())
    with pytest.raises(ValueError, match="1-based"):
        cancel_last_layer_gradients_(last, epoch=0, freeze_epochs=1)


def test_wrapped_student_is_unwrapped():
    student, teacher = make_net(0), make_net(1)
    wrapped = nn.DataParallel(student)  # same "module." prefix as DDP
    copy_student_to_teacher(wrapped, teacher)
    assert torch.equal(teacher[0].weight, student[0].weight)
    with torch.no_grad():
        student[0].weight.add_(1.0)
    ema_update_(teacher, wrapped, momentum=0.0)
    assert torch.equal(teacher[0].weight, student[0].weight)
