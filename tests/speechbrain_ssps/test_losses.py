"""Tests for speechbrain_ssps.losses against explicit reference formulas."""

import math

import numpy as np
import pytest
import torch
from gloo_ranks import run_on_ranks

from speechbrain_ssps.losses import DINOLoss, NTXentLoss

# --------------------------------------------------------------------------
# Independent reference formulas (explicit loops, float64)
# --------------------------------------------------------------------------


def ref_dino(student, teacher, center, n_global, n_views, tau_s, tau_t):
    """DINO loss with explicit loops over view pairs, rows and classes."""
    s = student.double()
    t = teacher.double()
    batch = t.shape[0] // n_global
    total, terms = 0.0, 0
    for g in range(n_global):
        for v in range(n_views):
            if v == g:
                continue
            pair = 0.0
            for b in range(batch):
                t_logits = (t[g * batch + b] - center.double()[0]) / tau_t
                q = torch.softmax(t_logits, dim=0)
                s_logits = s[v * batch + b] / tau_s
                log_p = s_logits - torch.logsumexp(s_logits, dim=0)
                pair += float(-(q * log_p).sum())
            total += pair / batch
            terms += 1
    return total / terms


def ref_ntxent(z1, z2, tau):
    """NT-Xent with an explicit per-row log-softmax over all other rows."""
    z = torch.cat([z1, z2]).double()
    z = z / z.norm(dim=1, keepdim=True)
    n2 = z.shape[0]
    n = n2 // 2
    losses = []
    for i in range(n2):
        pos = (i + n) % n2
        others = [k for k in range(n2) if k != i]
        logits = torch.stack([z[i] @ z[k] / tau for k in others])
        log_den = torch.logsumexp(logits, dim=0)
        losses.append(float(z[i] @ z[pos] / tau - log_den))
    return -sum(losses) / n2


# --------------------------------------------------------------------------
# DINO
# --------------------------------------------------------------------------


@pytest.mark.parametrize("n_global,n_local", [(2, 4), (2, 0), (3, 1)])
def test_dino_matches_explicit_loops(n_global, n_local):
    torch.manual_seed(0)
    batch, dim = 3, 7
    n_views = n_global + n_local
    loss_fn = DINOLoss(dim, n_global, n_local, student_temp=0.1)
    student = torch.randn(n_views * batch, dim)
    teacher = torch.randn(n_global * batch, dim)
    # A non-zero centre, so that centring matters.
    loss_fn.center.copy_(torch.randn(1, dim))
    center = loss_fn.center.clone()
    loss = loss_fn(student, teacher, epoch=0)
    expected = ref_dino(student, teacher, center, n_global, n_views, 0.1, 0.04)
    assert float(loss) == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_dino_gradient_reaches_student_only():
    torch.manual_seed(1)
    loss_fn = DINOLoss(5, 2, 2)
    student = torch.randn(4 * 3, 5, requires_grad=True)
    teacher = torch.randn(2 * 3, 5, requires_grad=True)
    loss_fn(student, teacher, epoch=0).backward()
    assert teacher.grad is None
    assert student.grad is not None and student.grad.abs().sum() > 0
    # Gradient equals the finite-difference-free autograd of the reference.
    s_ref = student.detach().double().requires_grad_(True)
    t = teacher.detach().double()
    q = torch.softmax(t / 0.04, dim=1).view(2, 3, 5)
    ls = torch.log_softmax(s_ref / 0.1, dim=1).view(4, 3, 5)
    terms = [
        -(q[g] * ls[v]).sum(1).mean()
        for g in range(2)
        for v in range(4)
        if v != g
    ]
    torch.stack(terms).mean().backward()
    assert torch.allclose(student.grad.double(), s_ref.grad, atol=1e-6)


def test_dino_center_update_formula():
    torch.manual_seed(2)
    loss_fn = DINOLoss(6, 2, 1, center_momentum=0.9)
    assert torch.equal(loss_fn.center, torch.zeros(1, 6))
    student = torch.randn(3 * 4, 6)
    t1, t2 = torch.randn(2 * 4, 6), torch.randn(2 * 4, 6)
    loss_fn(student, t1, epoch=0)
    c1 = 0.1 * t1.mean(0, keepdim=True)
    assert torch.allclose(loss_fn.center, c1, atol=1e-7)
    # The second call uses c1 (the centre from before its own update).
    loss2 = loss_fn(student, t2, epoch=0)
    assert float(loss2) == pytest.approx(
        ref_dino(student, t2, c1, 2, 3, 0.1, 0.04), rel=1e-5
    )
    c2 = 0.9 * c1 + 0.1 * t2.mean(0, keepdim=True)
    assert torch.allclose(loss_fn.center, c2, atol=1e-7)
    assert "center" in loss_fn.state_dict()


def test_dino_teacher_temperature_warmup():
    loss_fn = DINOLoss(
        4,
        warmup_teacher_temp=0.04,
        teacher_temp=0.07,
        warmup_teacher_temp_epochs=30,
    )
    ref = np.concatenate([np.linspace(0.04, 0.07, 30), np.full(20, 0.07)])
    got = [loss_fn.teacher_temperature(e) for e in range(50)]
    assert got == pytest.approx(ref.tolist(), abs=1e-12)
    assert loss_fn.teacher_temperature(0) == pytest.approx(0.04)
    assert loss_fn.teacher_temperature(29) == pytest.approx(0.07)
    assert loss_fn.teacher_temperature(1000) == 0.07
    no_warm = DINOLoss(4, teacher_temp=0.05, warmup_teacher_temp=0.01)
    assert no_warm.teacher_temperature(0) == 0.05
    with pytest.raises(ValueError, match="epoch"):
        loss_fn.teacher_temperature(-1)


def test_dino_uses_warmup_temperature_in_loss():
    torch.manual_seed(3)
    loss_fn = DINOLoss(
        5, 2, 1, warmup_teacher_temp=0.02, warmup_teacher_temp_epochs=3
    )
    s, t = torch.randn(3 * 2, 5), torch.randn(2 * 2, 5)
    zero = torch.zeros(1, 5)
    for epoch, tau in ((0, 0.02), (1, 0.03), (2, 0.04), (7, 0.04)):
        loss_fn.center.zero_()
        got = float(loss_fn(s, t, epoch=epoch))
        assert got == pytest.approx(
            ref_dino(s, t, zero, 2, 3, 0.1, tau), rel=1e-5
        )


def test_dino_autocast_keeps_float32():
    torch.manual_seed(4)
    loss_fn = DINOLoss(64, 2, 2)
    s, t = torch.randn(4 * 8, 64), torch.randn(2 * 8, 64)
    ref = float(loss_fn(s, t, epoch=0))
    loss_fn.center.zero_()  # the same centre for both calls
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = loss_fn(s, t, epoch=0)
    assert got.dtype == torch.float32
    assert float(got) == pytest.approx(ref, rel=1e-6)


def test_dino_bad_input_raises():
    loss_fn = DINOLoss(4, 2, 1)
    with pytest.raises(ValueError, match="student_out"):
        loss_fn(torch.randn(5, 4), torch.randn(4, 4), 0)
    with pytest.raises(ValueError, match="n_global"):
        loss_fn(torch.randn(6, 4), torch.randn(3, 4), 0)
    with pytest.raises(ValueError, match="out_dim"):
        loss_fn(torch.randn(6, 5), torch.randn(4, 5), 0)
    with pytest.raises(ValueError, match="views"):
        DINOLoss(4, n_global=1, n_local=0)
    with pytest.raises(ValueError, match="center_momentum"):
        DINOLoss(4, center_momentum=1.5)


# --------------------------------------------------------------------------
# NT-Xent
# --------------------------------------------------------------------------


@pytest.mark.parametrize("tau", [0.03, 0.5])
def test_ntxent_matches_explicit_formula(tau):
    torch.manual_seed(6)
    z1, z2 = torch.randn(5, 8), torch.randn(5, 8)
    got = float(NTXentLoss(tau)(z1, z2))
    assert got == pytest.approx(ref_ntxent(z1, z2, tau), rel=1e-5)


def test_ntxent_normalises_and_is_symmetric():
    torch.manual_seed(7)
    loss_fn = NTXentLoss(0.1)
    z1, z2 = torch.randn(4, 6), torch.randn(4, 6)
    base = float(loss_fn(z1, z2))
    scales = torch.rand(4, 1) * 10 + 0.1
    assert float(loss_fn(z1 * scales, z2)) == pytest.approx(base, rel=1e-5)
    assert float(loss_fn(z2, z1)) == pytest.approx(base, rel=1e-5)


def test_ntxent_perfect_pairs_give_low_loss():
    # Orthogonal utterances, identical views: loss close to 0 at low tau.
    z = torch.eye(4)
    assert float(NTXentLoss(0.03)(z, z.clone())) < 1e-6
    # One utterance only: no negative, the loss is exactly 0.
    one = torch.randn(1, 3)
    assert float(NTXentLoss(0.5)(one, torch.randn(1, 3))) == 0.0


def test_ntxent_bad_input_raises():
    with pytest.raises(ValueError, match="same shape"):
        NTXentLoss()(torch.randn(3, 4), torch.randn(2, 4))
    with pytest.raises(ValueError, match="temperature"):
        NTXentLoss(0.0)


# --------------------------------------------------------------------------
# Two gloo ranks: NT-Xent and the DINO centre
# --------------------------------------------------------------------------

WORLD, N, DIM = 2, 3, 5


def _data():
    g = torch.Generator().manual_seed(123)
    z1 = torch.randn(WORLD * N, DIM, generator=g)
    z2 = torch.randn(WORLD * N, DIM, generator=g)
    # DINO: 2 global + 1 local views of WORLD * N utterances, view by view.
    s = torch.randn(3, WORLD * N, 7, generator=g)
    t = torch.randn(2, WORLD * N, 7, generator=g)
    return z1, z2, s, t


def _worker(r, world):
    z1, z2, s, t = _data()
    rows = slice(r * N, (r + 1) * N)
    a = z1[rows].clone().requires_grad_(True)
    b = z2[rows].clone().requires_grad_(True)
    loss = NTXentLoss(0.1)(a, b)
    loss.backward()
    dino = DINOLoss(7, 2, 1)
    local_s = s[:, rows].reshape(-1, 7)
    local_t = t[:, rows].reshape(-1, 7)
    dino_loss = dino(local_s, local_t, epoch=0)
    return {
        "loss": loss.detach(),
        "g1": a.grad,
        "g2": b.grad,
        "dino_loss": dino_loss.detach(),
        "center": dino.center.clone(),
    }


def test_two_ranks_match_single_process(tmp_path):
    res = run_on_ranks(_worker, tmp_path, world=WORLD)
    z1, z2, s, t = _data()

    # NT-Xent: mean of the rank losses == loss of the concatenated batch.
    a = z1.clone().requires_grad_(True)
    b = z2.clone().requires_grad_(True)
    full = NTXentLoss(0.1)(a, b)
    full.backward()
    mean_loss = sum(float(x["loss"]) for x in res) / WORLD
    assert mean_loss == pytest.approx(float(full), rel=1e-5)
    assert float(full) == pytest.approx(ref_ntxent(z1, z2, 0.1), rel=1e-5)
    # Each rank's local gradient is the sum over ranks of d(L_k)/d(z_r), i.e.
    # WORLD * d(L_full)/d(z_r); DDP's averaging divides it by WORLD again.
    for r, x in enumerate(res):
        rows = slice(r * N, (r + 1) * N)
        assert torch.allclose(x["g1"] / WORLD, a.grad[rows], atol=1e-6)
        assert torch.allclose(x["g2"] / WORLD, b.grad[rows], atol=1e-6)

    # DINO: mean of rank losses == global loss; centre from the global mean.
    dino = DINOLoss(7, 2, 1)
    full_dino = dino(s.reshape(-1, 7), t.reshape(-1, 7), epoch=0)
    mean_dino = sum(float(x["dino_loss"]) for x in res) / WORLD
    assert mean_dino == pytest.approx(float(full_dino), rel=1e-5)
    expected_center = 0.1 * t.reshape(-1, 7).mean(0, keepdim=True)
    for x in res:
        assert torch.allclose(x["center"], expected_center, atol=1e-6)
        assert torch.allclose(x["center"], dino.center, atol=1e-6)
    assert math.isfinite(mean_dino)
