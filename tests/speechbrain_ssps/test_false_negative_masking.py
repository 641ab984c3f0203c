"""False-negative masking of NT-Xent with SSPS's clusters (SimCLR).

Semantics of sslsv's ``SimCLRLoss(..., ssps_assignments)``: a negative pair
of two different utterances in the same cluster gets the logit 0; the
positive and the row itself are untouched. Here -1 (no cluster) matches
nothing (sslsv would mask -1 with -1; see ``NTXentLoss``'s docstring).
"""

import math
import pathlib

import pytest
import speechbrain as sb
import torch
from gloo_ranks import run_on_ranks
from test_brain import make_batch, make_brain

from speechbrain_ssps.frameworks import SimCLR
from speechbrain_ssps.losses import NTXentLoss

E = math.e


def ref_masked(z1, z2, tau, a):
    """Explicit loops: logit 0 for same-cluster negatives (a >= 0)."""
    z = torch.cat([z1, z2]).double()
    z = z / z.norm(dim=1, keepdim=True)
    n2 = z.shape[0]
    n = n2 // 2
    total = 0.0
    for i in range(n2):
        pos = (i + n) % n2
        logits = []
        for k in range(n2):
            if k == i:
                continue
            same = a[k % n] == a[i % n] and a[i % n] >= 0
            masked = k != pos and same
            logits.append(0.0 if masked else float(z[i] @ z[k]) / tau)
        pos_logit = float(z[i] @ z[pos]) / tau
        total += -pos_logit + math.log(sum(math.exp(x) for x in logits))
    return total / n2


def test_all_distinct_is_the_unmasked_loss():
    torch.manual_seed(0)
    z1, z2 = torch.randn(5, 8), torch.randn(5, 8)
    loss_fn = NTXentLoss(0.1)
    plain = float(loss_fn(z1, z2))
    assert float(loss_fn(z1, z2, assignments=torch.arange(5))) == (
        pytest.approx(plain, rel=1e-6)
    )
    # -1 matches nothing, not even another -1.
    none = torch.full((5,), -1)
    assert float(loss_fn(z1, z2, assignments=none)) == pytest.approx(
        plain, rel=1e-6
    )


def test_all_equal_by_hand():
    # Every row identical: all cosines are 1. tau = 1.
    z = torch.ones(2, 3)
    loss_fn = NTXentLoss(1.0)
    # Unmasked: -1 + log(3e) = log 3.
    assert float(loss_fn(z, z.clone())) == pytest.approx(math.log(3), 1e-6)
    # Same cluster: both negatives get logit 0: -1 + log(e + 2).
    got = float(loss_fn(z, z.clone(), assignments=torch.tensor([4, 4])))
    assert got == pytest.approx(math.log(E + 2) - 1, rel=1e-6)


def test_mixed_case_by_hand():
    # N = 3, all cosines 1, tau = 1, clusters [0, 0, 1].
    # Anchors 0, 1 (4 rows): positive 1, negatives [0, 1, 0, 1]
    #   -> -1 + log(3e + 2); anchor 2 (2 rows): -1 + log(5e) = log 5.
    z = torch.ones(3, 2)
    a = torch.tensor([0, 0, 1])
    got = float(NTXentLoss(1.0)(z, z.clone(), assignments=a))
    expected = (4 * (math.log(3 * E + 2) - 1) + 2 * math.log(5)) / 6
    assert got == pytest.approx(expected, rel=1e-6)
    assert got != pytest.approx(math.log(5), rel=1e-3)


@pytest.mark.parametrize("a", [[0, 1, 0, 2, 1, -1], [3, 3, 3, -1, -1, 0]])
def test_random_case_matches_loops_and_keeps_gradient(a):
    torch.manual_seed(1)
    z1 = torch.randn(6, 4, requires_grad=True)
    z2 = torch.randn(6, 4)
    a = torch.tensor(a)
    loss = NTXentLoss(0.2)(z1, z2, assignments=a)
    assert float(loss) == pytest.approx(ref_masked(z1, z2, 0.2, a), 1e-5)
    loss.backward()
    assert torch.isfinite(z1.grad).all()


def test_bad_assignments_raise():
    with pytest.raises(ValueError, match="assignments"):
        NTXentLoss()(torch.randn(3, 4), torch.randn(3, 4), torch.zeros(2))


# --------------------------------------------------------------------------
# Two gloo ranks: each passes its own anchors' clusters
# --------------------------------------------------------------------------

WORLD, N, DIM = 2, 3, 5
# Cross-rank pairs: anchor 0 (rank 0) and 3 (rank 1) share cluster 7, ...
CLUSTERS = torch.tensor([7, 1, -1, 7, 1, -1])


def _data():
    g = torch.Generator().manual_seed(5)
    return torch.randn(WORLD * N, DIM, generator=g), torch.randn(
        WORLD * N, DIM, generator=g
    )


def _worker(r, world):
    z1, z2 = _data()
    rows = slice(r * N, (r + 1) * N)
    a = z1[rows].clone().requires_grad_(True)
    b = z2[rows].clone().requires_grad_(True)
    loss = NTXentLoss(0.1)(a, b, assignments=CLUSTERS[rows])
    loss.backward()
    return {"loss": loss.detach(), "g1": a.grad, "g2": b.grad}


def test_two_ranks_match_the_concatenated_batch(tmp_path):
    res = run_on_ranks(_worker, tmp_path, world=WORLD)
    z1, z2 = _data()
    a = z1.clone().requires_grad_(True)
    b = z2.clone().requires_grad_(True)
    full = NTXentLoss(0.1)(a, b, assignments=CLUSTERS)
    full.backward()
    assert float(full) == pytest.approx(ref_masked(z1, z2, 0.1, CLUSTERS))
    # The clusters pair anchors across ranks: masking changes the loss.
    assert float(full) != pytest.approx(float(NTXentLoss(0.1)(z1, z2)))
    mean_loss = sum(float(x["loss"]) for x in res) / WORLD
    assert mean_loss == pytest.approx(float(full), rel=1e-5)
    for r, x in enumerate(res):
        rows = slice(r * N, (r + 1) * N)
        assert torch.allclose(x["g1"] / WORLD, a.grad[rows], atol=1e-6)
        assert torch.allclose(x["g2"] / WORLD, b.grad[rows], atol=1e-6)


# --------------------------------------------------------------------------
# The option reaches the loss in a training step
# --------------------------------------------------------------------------


def _spy(brain):
    calls = []
    loss = brain.modules.ssl_loss
    original = loss.forward

    def forward(z1, z2, assignments=None):
        calls.append(None if assignments is None else assignments.clone())
        return original(z1, z2, assignments=assignments)

    loss.forward = forward
    return calls


@pytest.mark.parametrize("mask", [False, True])
def test_option_reaches_the_loss(mask):
    brain = make_brain(SimCLR(mask_false_negatives=mask), with_ssps=True)
    calls = _spy(brain)
    batch = make_batch(range(8), 1)
    brain.on_stage_start(sb.Stage.TRAIN, 1)  # filling: nothing to mask
    brain.fit_batch(batch)
    brain.fit_batch(make_batch(range(8, 16), 2))
    brain.on_stage_start(sb.Stage.TRAIN, 2)  # SSPS active
    brain.fit_batch(batch)
    assert calls[:2] == [None, None]
    if not mask:
        assert calls[2] is None
        return
    ssps = brain.modules["ssps"]
    expected = ssps.assignments[torch.arange(8)]
    assert torch.equal(calls[2], expected)
    assert (expected >= 0).all()


def test_option_needs_ssps():
    brain = make_brain(SimCLR(mask_false_negatives=True), with_ssps=False)
    brain.on_stage_start(sb.Stage.TRAIN, 1)
    with pytest.raises(ValueError, match="ssps_mask_false_negatives"):
        brain.fit_batch(make_batch(range(8), 1))


@pytest.mark.parametrize("name", ["simclr_ssps", "minivox_simclr_ssps"])
def test_yaml_key_reaches_the_framework(name):
    from hyperpyyaml import load_hyperpyyaml

    root = pathlib.Path(__file__).resolve().parents[2]
    path = root / "recipes/VoxCeleb/SSPS/hparams" / f"{name}.yaml"
    text = path.read_text()
    for value in (False, True):
        hp = load_hyperpyyaml(
            text,
            {"data_folder": "/nonexistent", "ssps_mask_false_negatives": value},
        )
        assert hp["framework"].mask_false_negatives is value
