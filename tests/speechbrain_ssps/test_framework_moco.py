"""MoCo: InfoNCE against the formula, the key queue, the EMA, SSPS's swap."""

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from speechbrain_ssps.frameworks import MoCo
from speechbrain_ssps.frameworks.moco import MoCoLoss, info_nce


def _manual_info_nce(q, k, negatives, tau):
    """-mean_i log(e^(q_i.k_i/t) / (e^(q_i.k_i/t) + sum_n e^(q_i.n/t)))."""
    total = 0.0
    for qi, ki in zip(q.tolist(), k.tolist()):
        pos = math.exp(sum(a * b for a, b in zip(qi, ki)) / tau)
        neg = sum(
            math.exp(sum(a * b for a, b in zip(qi, n)) / tau)
            for n in negatives.tolist()
        )
        total += -math.log(pos / (pos + neg))
    return total / len(q)


def test_info_nce_matches_the_formula_on_a_hand_case():
    q = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    k = torch.tensor([[0.8, 0.6], [0.0, 1.0]])
    n = torch.tensor([[0.0, 1.0], [-1.0, 0.0], [0.6, -0.8]])
    # Row 0 by hand: logits (0.8, 0, -1, 0.6) / 0.5 = (1.6, 0, -2, 1.2).
    row0 = -math.log(
        math.exp(1.6)
        / (math.exp(1.6) + math.exp(0) + math.exp(-2) + math.exp(1.2))
    )
    # Row 1: logits (0.8, 0.8, -0.6, -0.28) / 0.5.
    row1 = -math.log(
        math.exp(1.6)
        / (math.exp(1.6) + math.exp(1.6) + math.exp(-1.2) + math.exp(-0.56))
    )
    got = info_nce(q, k, n, temperature=0.5)
    assert float(got) == pytest.approx((row0 + row1) / 2, rel=1e-6)
    assert float(got) == pytest.approx(_manual_info_nce(q, k, n, 0.5))


def test_info_nce_gradient_is_the_softmax_residual():
    torch.manual_seed(0)
    q = F.normalize(torch.randn(3, 4), dim=1).requires_grad_(True)
    k = F.normalize(torch.randn(3, 4), dim=1)
    n = F.normalize(torch.randn(5, 4), dim=1)
    tau = 0.2
    info_nce(q, k, n, tau).backward()
    # d/dq_i = (sum_j p_ij c_j - k_i) / (tau N), c = [k_i, n_1..n_K].
    for i in range(3):
        cands = torch.cat([k[i : i + 1], n])
        p = torch.softmax(cands @ q[i].detach() / tau, dim=0)
        expected = (p @ cands - k[i]) / (tau * 3)
        assert torch.allclose(q.grad[i], expected, atol=1e-6)


def test_moco_loss_is_symmetric_with_one_queue_per_view():
    loss = MoCoLoss(dim=2, queue_size=2, temperature=0.1)
    loss.queue[0] = torch.tensor([[0.0, 1.0], [0.0, -1.0]])
    loss.queue[1] = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # q1, q2 (B = 1)
    k = torch.tensor([[0.0, 1.0], [1.0, 0.0]])  # k1, k2
    expected = (
        _manual_info_nce(q[:1], k[1:], loss.queue[1], 0.1)
        + _manual_info_nce(q[1:], k[:1], loss.queue[0], 0.1)
    ) / 2
    assert float(loss(q, k)) == pytest.approx(expected, rel=1e-5)
    # The other pairing (q1 with its own view's key) gives another value.
    wrong = (
        _manual_info_nce(q[:1], k[:1], loss.queue[0], 0.1)
        + _manual_info_nce(q[1:], k[1:], loss.queue[1], 0.1)
    ) / 2
    assert abs(expected - wrong) > 0.3
    # The loss leaves the queue alone; keys get no gradient.
    loss.queue.copy_(F.normalize(torch.randn(2, 2, 2), dim=2))
    keys = k.clone().requires_grad_(True)
    queries = F.normalize(q + 0.3, dim=1).requires_grad_(True)
    loss(queries, keys).backward()
    assert keys.grad is None and queries.grad.abs().sum() > 0


def test_the_queue_is_a_ring_of_the_latest_keys_per_view():
    loss = MoCoLoss(dim=2, queue_size=5, temperature=0.1)
    initial = loss.queue.clone()
    assert torch.allclose(initial.norm(dim=2), torch.ones(2, 5))
    first = torch.arange(12.0).view(6, 2)  # B = 3: view 1 rows 0-2
    loss.enqueue(first)
    assert torch.equal(loss.queue[0, :3], first[:3])
    assert torch.equal(loss.queue[1, :3], first[3:])
    assert torch.equal(loss.queue[:, 3:], initial[:, 3:])
    second = -torch.arange(1.0, 13.0).view(6, 2)
    loss.enqueue(second)  # slots 3, 4, then 0 (wraps)
    assert int(loss.queue_ptr) == 1
    assert torch.equal(loss.queue[0, 3:], second[:2])
    assert torch.equal(loss.queue[0, 0], second[2])
    assert torch.equal(loss.queue[1, 0], second[5])
    assert torch.equal(loss.queue[0, 1:3], first[1:3])
    with pytest.raises(ValueError, match="moco_queue_size"):
        loss.enqueue(torch.zeros(12, 2))  # 6 keys per view > 5


@pytest.mark.parametrize(
    "kwargs, option",
    [
        ({"temperature": 0.0}, "moco_temperature"),
        ({"temperature": -1.0}, "moco_temperature"),
        ({"queue_size": 0}, "moco_queue_size"),
        ({"dim": 0}, "dim"),
    ],
)
def test_bad_loss_options_name_the_option(kwargs, option):
    args = {"dim": 4, "queue_size": 8, "temperature": 0.1, **kwargs}
    with pytest.raises(ValueError, match=option):
        MoCoLoss(**args)


class FakeBrain:
    """What MoCo reads from SSLBrain, with SSPS's swap replaceable."""

    def __init__(self, queue_size=16, batch_size=4, swap=None, momentum=0.9):
        torch.manual_seed(0)
        self.modules = torch.nn.ModuleDict(
            {
                "embedding_model": torch.nn.Linear(6, 4),
                "teacher_model": torch.nn.Linear(6, 4),
                "ssl_loss": MoCoLoss(dim=4, queue_size=queue_size),
            }
        )
        self.hparams = SimpleNamespace(
            batch_size=batch_size,
            momentum_teacher=momentum,
            momentum_teacher_end=momentum,
        )
        self.optimizer_step = 1
        self.swap = swap
        self.calls = []

    def encode(self, model, wavs):
        return model(wavs)

    def teacher_momentum(self, step):
        return self.hparams.momentum_teacher

    def ssps_positives(self, indices, predictions, rows, views):
        self.calls.append((rows.clone(), views))
        return rows if self.swap is None else self.swap(rows)


def test_on_fit_start_checks_options_and_copies_the_query_encoder():
    brain = FakeBrain()
    MoCo().on_fit_start(brain)
    student = brain.modules.embedding_model
    teacher = brain.modules.teacher_model
    assert torch.equal(student.weight, teacher.weight)
    assert not teacher.weight.requires_grad
    with pytest.raises(ValueError, match="moco_queue_size=4 must be larger"):
        MoCo().on_fit_start(FakeBrain(queue_size=4, batch_size=4))
    with pytest.raises(ValueError, match="momentum_teacher"):
        MoCo().on_fit_start(FakeBrain(momentum=1.5))
    missing = FakeBrain()
    del missing.modules["teacher_model"]
    with pytest.raises(ValueError, match="teacher_model"):
        MoCo().on_fit_start(missing)


def test_the_key_encoder_is_an_ema_of_the_query_encoder():
    brain = FakeBrain(momentum=0.75)
    moco = MoCo()
    moco.on_fit_start(brain)
    student = brain.modules.embedding_model
    teacher = brain.modules.teacher_model
    before = teacher.weight.clone()
    with torch.no_grad():
        student.weight.add_(1.0)
    moco.after_optimizer_step(brain)
    expected = 0.75 * before + 0.25 * student.weight
    assert torch.allclose(teacher.weight, expected)
    assert moco.epoch_stats(brain, 0) == {"momentum": 0.75}


def test_forward_gives_unit_queries_with_gradient_and_keys_without():
    brain = FakeBrain()
    moco = MoCo()
    moco.on_fit_start(brain)
    wavs = torch.randn(8, 6)  # 2 views x B = 4
    student = brain.encode(brain.modules.embedding_model, wavs)
    out = moco.forward(brain, [wavs], student)
    assert torch.allclose(out["query"].norm(dim=1), torch.ones(8))
    assert torch.allclose(out["key"].norm(dim=1), torch.ones(8))
    assert out["query"].requires_grad and not out["key"].requires_grad
    # Same weights at the start: keys equal queries.
    assert torch.allclose(out["key"], out["query"].detach(), atol=1e-6)
    rows, views = moco.positives(brain, out, 4)
    assert views == 2 and rows.shape == (8, 4)
    assert moco.positive_dim(brain.modules) == 4


def test_ssps_swapped_keys_reach_the_loss_and_own_keys_the_queue():
    torch.manual_seed(1)
    replacement = F.normalize(torch.randn(8, 4), dim=1)

    def swap(rows):  # anchors 1 and 3 get a pseudo-positive (both views)
        out = rows.clone()
        for j in (1, 3, 5, 7):
            out[j] = replacement[j]
        return out

    brain = FakeBrain(swap=swap)
    moco = MoCo()
    moco.on_fit_start(brain)
    query = F.normalize(torch.randn(8, 4), dim=1)
    key = F.normalize(torch.randn(8, 4), dim=1)
    queue_before = brain.modules.ssl_loss.queue.clone()
    loss = moco.loss(brain, {"query": query, "key": key}, torch.arange(4))
    ((rows, views),) = brain.calls
    assert views == 2 and torch.equal(rows, key)
    fresh = MoCoLoss(dim=4, queue_size=16)
    fresh.queue.copy_(queue_before)
    assert float(loss) == pytest.approx(float(fresh(query, swap(key))))
    assert abs(float(loss) - float(fresh(query, key))) > 1e-4
    # The batch's own keys, not the swapped ones, become negatives.
    queue = brain.modules.ssl_loss.queue
    assert torch.equal(queue[0, :4], key[:4])
    assert torch.equal(queue[1, :4], key[4:])
