"""Tests for speechbrain_ssps.heads."""

import copy

import pytest
import torch
from torch import nn

from speechbrain_ssps.heads import DINOHead, SimCLRProjector


def small_head(**kwargs):
    args = dict(in_dim=12, out_dim=40, hidden_dim=32, bottleneck_dim=8)
    args.update(kwargs)
    return DINOHead(**args)


def test_shapes_and_unit_norm_bottleneck(device):
    torch.manual_seed(0)
    head = small_head().to(device)
    x = torch.randn(6, 12, device=device)
    b = head.bottleneck(x)
    assert b.shape == (6, 8)
    assert torch.allclose(b.norm(dim=1), torch.ones(6, device=device))
    out = head(x)
    assert out.shape == (6, 40)
    head.eval()  # BN in eval: both paths see identical statistics
    assert torch.allclose(head.prototypes(head.bottleneck(x)), head(x))


def test_architecture_matches_reference_layout():
    head = small_head()
    kinds = [type(m) for m in head.mlp]
    assert kinds == [
        nn.Linear,
        nn.BatchNorm1d,
        nn.GELU,
        nn.Linear,
        nn.BatchNorm1d,
        nn.GELU,
        nn.Linear,
    ]
    dims = [(m.in_features, m.out_features) for m in head.mlp[::3]]
    assert dims == [(12, 32), (32, 32), (32, 8)]
    no_bn = small_head(use_bn=False, num_layers=2)
    assert [type(m) for m in no_bn.mlp] == [nn.Linear, nn.GELU, nn.Linear]
    one = small_head(num_layers=1)
    assert len(one.mlp) == 1 and one.mlp[0].out_features == 8
    assert one(torch.randn(3, 12)).shape == (3, 40)


def test_weight_norm_gain_fixed_to_one_and_frozen():
    head = small_head()
    wn = head.last_layer.parametrizations.weight
    assert torch.equal(wn.original0, torch.ones(40, 1))
    assert not wn.original0.requires_grad
    assert wn.original1.requires_grad
    assert head.last_layer.bias is None
    # Effective prototypes are unit vectors.
    w = head.last_layer.weight
    assert torch.allclose(w.norm(dim=1), torch.ones(40), atol=1e-6)
    # A training step moves the directions, never the gain.
    opt = torch.optim.SGD(head.parameters(), lr=1.0)
    head(torch.randn(5, 12)).pow(2).sum().backward()
    assert wn.original0.grad is None and wn.original1.grad is not None
    opt.step()
    assert torch.equal(wn.original0, torch.ones(40, 1))
    assert torch.allclose(
        head.last_layer.weight.norm(dim=1), torch.ones(40), atol=1e-6
    )
    trainable = small_head(norm_last_layer=False)
    gain = trainable.last_layer.parametrizations.weight.original0
    assert gain.requires_grad and torch.equal(gain, torch.ones(40, 1))


def test_last_layer_parameters():
    head = small_head()
    params = head.last_layer_parameters
    wn = head.last_layer.parametrizations.weight
    assert {id(p) for p in params} == {id(wn.original0), id(wn.original1)}
    mlp_ids = {id(p) for p in head.mlp.parameters()}
    assert not mlp_ids & {id(p) for p in params}


def test_init_like_reference_dino():
    torch.manual_seed(0)
    head = DINOHead(in_dim=256, out_dim=16, hidden_dim=512, bottleneck_dim=64)
    for m in head.mlp:
        if isinstance(m, nn.Linear):
            assert torch.equal(m.bias, torch.zeros_like(m.bias))
            assert float(m.weight.std()) == pytest.approx(0.02, rel=0.05)
            assert float(m.weight.abs().max()) <= 2.0  # trunc_normal_ bounds


def test_deepcopy_and_teacher_from_state_dict():
    torch.manual_seed(1)
    student = small_head()
    x = torch.randn(4, 12)
    clone = copy.deepcopy(student)
    teacher = small_head()
    teacher.load_state_dict(student.state_dict(), strict=True)
    for m in (student, clone, teacher):
        m.eval()
    ref = student(x)
    assert torch.equal(clone(x), ref)
    assert torch.equal(teacher(x), ref)
    # The copy is independent of the original.
    with torch.no_grad():
        clone.last_layer.parametrizations.weight.original1.add_(1.0)
    assert torch.equal(student(x), ref)
    assert not clone.last_layer.parametrizations.weight.original0.requires_grad


def test_bad_dims_raise():
    with pytest.raises(ValueError, match="bottleneck_dim"):
        DINOHead(in_dim=4, out_dim=8, bottleneck_dim=0)
    with pytest.raises(ValueError, match="hidden_dim"):
        SimCLRProjector(4, hidden_dim=0)


def test_simclr_projector():
    torch.manual_seed(2)
    proj = SimCLRProjector(10, hidden_dim=16, out_dim=6)
    kinds = [type(m) for m in proj.net]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    x = torch.randn(5, 10)
    out = proj(x)
    assert out.shape == (5, 6)
    lin1, bn, _, lin2 = proj.net
    hidden = torch.relu(bn(lin1(x)))
    assert torch.allclose(out, lin2(hidden))
    assert copy.deepcopy(proj)(x).shape == (5, 6)
