"""SwAV: Sinkhorn-Knopp, the swapped prediction, the queue, SSPS's swap."""

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from speechbrain_ssps.frameworks import SwAV
from speechbrain_ssps.frameworks.swav import (
    Prototypes,
    SwAVLoss,
    sinkhorn_knopp,
    swapped_prediction_loss,
)
from speechbrain_ssps.frameworks.vicreg import MLPProjector


def _manual_sinkhorn(scores, eps, iters):
    """Caron et al. (2020), Algorithm 1 (distributed_sinkhorn), in lists."""
    n, k = len(scores), len(scores[0])
    q = [[math.exp(scores[i][j] / eps) for i in range(n)] for j in range(k)]
    total = sum(map(sum, q))
    q = [[v / total for v in row] for row in q]
    for _ in range(iters):
        q = [[v / sum(row) / k for v in row] for row in q]  # prototypes
        cols = [sum(q[j][i] for j in range(k)) for i in range(n)]
        q = [[q[j][i] / cols[i] / n for i in range(n)] for j in range(k)]
    return [[q[j][i] * n for j in range(k)] for i in range(n)]


def test_sinkhorn_matches_the_published_algorithm():
    scores = [
        [0.9, 0.1, -0.2],
        [0.8, 0.3, 0.0],
        [0.7, -0.5, 0.4],
        [1.0, 0.2, 0.1],
    ]
    for iters in (1, 3):
        got = sinkhorn_knopp(torch.tensor(scores), epsilon=0.3, iters=iters)
        expected = torch.tensor(_manual_sinkhorn(scores, 0.3, iters))
        assert torch.allclose(got, expected, atol=1e-6)


def test_sinkhorn_rows_are_distributions_and_columns_equipartition():
    torch.manual_seed(0)
    # Every sample prefers prototype 0; the codes still share the batch.
    scores = torch.rand(12, 4) * 0.2
    scores[:, 0] += 0.5
    codes = sinkhorn_knopp(scores, epsilon=0.05, iters=3)
    assert torch.allclose(codes.sum(dim=1), torch.ones(12), atol=1e-5)
    assert torch.allclose(codes.sum(dim=0), torch.full((4,), 3.0), atol=0.3)
    many = sinkhorn_knopp(scores, epsilon=0.05, iters=200)
    assert torch.allclose(many.sum(dim=0), torch.full((4,), 3.0), atol=1e-3)
    assert (codes >= 0).all()
    # Adding a constant to every score changes nothing, and scores whose
    # plain exp(s / eps) overflows float32 (e^200) still give codes.
    shifted = sinkhorn_knopp(scores + 1.0, epsilon=0.05, iters=3)
    assert torch.allclose(codes, shifted, atol=1e-4)
    big = sinkhorn_knopp(scores * 10.0, epsilon=0.01, iters=3)
    assert torch.isfinite(big).all()
    assert torch.allclose(big.sum(dim=1), torch.ones(12), atol=1e-5)


def test_smaller_epsilon_gives_sharper_codes():
    torch.manual_seed(1)
    scores = torch.randn(8, 4)

    def entropy(codes):
        return float(-(codes * codes.clamp_min(1e-12).log()).sum(1).mean())

    sharp = sinkhorn_knopp(scores, epsilon=0.05, iters=3)
    soft = sinkhorn_knopp(scores, epsilon=1.0, iters=3)
    assert entropy(sharp) < entropy(soft)


@pytest.mark.parametrize(
    "kwargs, option",
    [
        ({"epsilon": 0.0}, "swav_sk_epsilon"),
        ({"epsilon": -0.05}, "swav_sk_epsilon"),
        ({"iters": 0}, "swav_sk_iters"),
    ],
)
def test_bad_sinkhorn_options_name_the_option(kwargs, option):
    with pytest.raises(ValueError, match=option):
        sinkhorn_knopp(torch.zeros(2, 2), **kwargs)


def test_swapped_prediction_matches_the_formula_and_its_gradient():
    s1 = torch.tensor([[0.2, -0.1, 0.4], [0.0, 0.3, -0.3]], requires_grad=True)
    s2 = torch.tensor([[0.1, 0.1, -0.2], [0.5, -0.4, 0.0]], requires_grad=True)
    q1 = torch.tensor([[0.7, 0.2, 0.1], [0.0, 0.5, 0.5]])
    q2 = torch.tensor([[0.1, 0.1, 0.8], [1.0, 0.0, 0.0]])
    tau = 0.5

    def ce(q, s):  # -mean_n sum_k q log softmax(s / tau)
        total = 0.0
        for qn, sn in zip(q.tolist(), s.tolist()):
            z = sum(math.exp(v / tau) for v in sn)
            total -= sum(a * (v / tau - math.log(z)) for a, v in zip(qn, sn))
        return total / len(q)

    loss = swapped_prediction_loss([s1, s2], [q1, q2], tau)
    expected = (ce(q1, s2) + ce(q2, s1)) / 2
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    loss.backward()
    # d/ds2 of CE(q1, s2 / tau) / 2 = (softmax(s2 / tau) - q1) / (2 N tau).
    grad2 = (torch.softmax(s2.detach() / tau, dim=1) - q1) / (2 * 2 * tau)
    assert torch.allclose(s2.grad, grad2, atol=1e-6)


def test_prototypes_are_unit_vectors():
    protos = Prototypes(dim=3, num_prototypes=4)
    z = torch.randn(5, 3)
    before = protos(z)
    with torch.no_grad():
        protos.weight.mul_(7.0)
    assert torch.allclose(protos(z), before, atol=1e-6)
    unit = F.normalize(protos.weight, dim=1)
    assert torch.allclose(before, z @ unit.t(), atol=1e-6)
    with pytest.raises(ValueError, match="swav_num_prototypes"):
        Prototypes(dim=3, num_prototypes=0)


def test_queue_keeps_the_newest_rows_and_joins_sinkhorn_from_its_epoch():
    loss = SwAVLoss(dim=2, queue_size=4, queue_start_epoch=3)
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    loss.enqueue(a, -a)
    assert int(loss.queue_filled) == 3
    b = torch.tensor([[0.8, 0.6], [-0.6, 0.8], [0.0, -1.0]])
    loss.enqueue(b, -b)
    assert int(loss.queue_filled) == 4
    assert torch.equal(loss.queue[0], torch.cat([b, a[:1]]))
    assert torch.equal(loss.queue[1], -torch.cat([b, a[:1]]))
    protos = Prototypes(2, 3)
    scores = protos(a[:2])
    assert not loss.uses_queue(2) and loss.uses_queue(3)
    without = loss.codes(scores, 0, protos, epoch=2)
    with_queue = loss.codes(scores, 0, protos, epoch=3)
    assert without.shape == with_queue.shape == (2, 3)
    joint = sinkhorn_knopp(torch.cat([scores, protos(loss.queue[0])]))[:2]
    assert torch.allclose(with_queue, joint)
    assert torch.allclose(without, sinkhorn_knopp(scores))
    assert not torch.allclose(with_queue, without)
    assert not SwAVLoss(dim=2, queue_size=0).uses_queue(100)


@pytest.mark.parametrize(
    "kwargs, option",
    [
        ({"temperature": 0.0}, "swav_temperature"),
        ({"sk_epsilon": 0.0}, "swav_sk_epsilon"),
        ({"sk_epsilon": -1.0}, "swav_sk_epsilon"),
        ({"sk_iters": 0}, "swav_sk_iters"),
        ({"queue_size": -1}, "swav_queue_size"),
        ({"queue_start_epoch": 0}, "swav_queue_start_epoch"),
    ],
)
def test_bad_loss_options_name_the_option(kwargs, option):
    with pytest.raises(ValueError, match=option):
        SwAVLoss(dim=4, **kwargs)
    with pytest.raises(ValueError, match="swav_freeze_prototypes"):
        SwAV(freeze_prototypes=-1)


class FakeBrain:
    """What SwAV reads from SSLBrain, with SSPS's swap replaceable."""

    def __init__(self, swap=None, epoch=1):
        torch.manual_seed(0)
        self.modules = torch.nn.ModuleDict(
            {
                "embedding_model": torch.nn.Linear(6, 8),
                "projector": MLPProjector(8, 16, 5),
                "prototypes": Prototypes(5, 7),
                "ssl_loss": SwAVLoss(dim=5, queue_size=8, queue_start_epoch=2),
            }
        )
        self.hparams = SimpleNamespace(num_global_views=2, num_local_views=0)
        self.epoch = epoch
        self.swap = swap
        self.calls = []

    def ssps_positives(self, indices, predictions, rows, views):
        self.calls.append((rows.detach().clone(), views))
        return rows if self.swap is None else self.swap(rows)


def test_modules_and_views_are_checked_at_start():
    SwAV().on_fit_start(FakeBrain())
    brain = FakeBrain()
    brain.hparams.num_local_views = 4
    with pytest.raises(ValueError, match="local"):
        SwAV().on_fit_start(brain)
    brain = FakeBrain()
    del brain.modules["prototypes"]
    with pytest.raises(ValueError, match="prototypes"):
        SwAV().on_fit_start(brain)


def test_prototypes_are_frozen_during_the_first_epochs():
    for epoch, frozen in ((1, True), (2, False)):
        brain = FakeBrain(epoch=epoch)
        weight = brain.modules.prototypes.weight
        weight.grad = torch.ones_like(weight)
        SwAV(freeze_prototypes=1).before_optimizer_step(brain)
        assert (weight.grad is None) == frozen


def test_ssps_swapped_second_view_reaches_the_loss_and_own_rows_the_queue():
    torch.manual_seed(3)
    replacement = F.normalize(torch.randn(4, 5), dim=1)

    def swap(rows):  # anchors 1 and 2 get a pseudo-positive
        out = rows.clone()
        out[1], out[2] = replacement[1], replacement[2]
        return out

    brain = FakeBrain(swap=swap)
    swav = SwAV()
    student = brain.modules.embedding_model(torch.randn(8, 6))
    out = swav.forward(brain, [], student)
    assert torch.allclose(out["student"].norm(dim=1), torch.ones(8))
    assert swav.positive_dim(brain.modules) == 5
    loss = swav.loss(brain, out, torch.arange(4))
    ((rows, views),) = brain.calls
    z1, z2 = out["student"][:4], out["student"][4:]
    assert views == 1 and torch.equal(rows, z2.detach())
    protos = brain.modules.prototypes
    reference = SwAVLoss(dim=5, queue_size=8, queue_start_epoch=2)
    expected = reference(z1, swap(z2), protos, epoch=1)
    assert float(loss) == pytest.approx(float(expected), rel=1e-6)
    plain = reference(z1, z2, protos, epoch=1)
    assert abs(float(loss) - float(plain)) > 1e-5
    queue = brain.modules.ssl_loss.queue
    assert torch.equal(queue[1, :4], z2.detach())  # own rows, not swapped
    loss.backward()
    assert protos.weight.grad.abs().sum() > 0
    assert swav.epoch_stats(brain, 0) == {"swav_queue": 0.0}
