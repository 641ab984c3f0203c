"""Tests for speechbrain_ssps.distributed (single process and 2 gloo ranks)."""

import pytest
import torch
from gloo_ranks import run_on_ranks

from speechbrain_ssps import distributed as D

WORLD = 2


def test_single_process_identities():
    assert not D.is_distributed()
    assert D.world_size() == 1
    assert D.rank() == 0
    x = torch.randn(3, 2, requires_grad=True)
    assert D.all_gather_with_grad(x) is x
    assert torch.equal(D.all_gather_no_grad(x, dim=1), x)
    t = torch.tensor([1.0, 2.0])
    assert D.all_reduce_mean_(t) is t
    assert t.tolist() == [1.0, 2.0]


def _rank_rows(r):
    """Rows owned by rank r (distinct per rank)."""
    return torch.arange(6, dtype=torch.float32).view(3, 2) + 10.0 * r


def _worker(r, world):
    res = {"rank": D.rank(), "world": D.world_size()}
    res["is_dist"] = D.is_distributed()
    x = _rank_rows(r).requires_grad_(True)
    gathered = D.all_gather_with_grad(x)
    res["gathered"] = gathered.detach().clone()
    # A loss that weights every gathered row differently, computed on
    # every rank; the backward must sum all ranks' contributions.
    weights = torch.arange(gathered.numel(), dtype=torch.float32)
    weights = weights.view_as(gathered) * (r + 1)
    (gathered * weights).sum().backward()
    res["grad"] = x.grad.clone()
    res["no_grad_dim1"] = D.all_gather_no_grad(_rank_rows(r), dim=1)
    t = torch.tensor([float(r), 2.0 * r + 1.0])
    D.all_reduce_mean_(t)
    res["mean"] = t
    return res


def test_two_gloo_ranks(tmp_path):
    results = run_on_ranks(_worker, tmp_path, world=WORLD)
    full = torch.cat([_rank_rows(r) for r in range(WORLD)], dim=0)
    # Weights summed over ranks: rank k used arange * (k + 1).
    base = torch.arange(full.numel(), dtype=torch.float32).view_as(full)
    summed = base * sum(k + 1 for k in range(WORLD))
    for r, res in enumerate(results):
        assert res["is_dist"] and res["rank"] == r and res["world"] == WORLD
        assert torch.equal(res["gathered"], full)
        assert torch.equal(res["grad"], summed[3 * r : 3 * (r + 1)])
        expected_dim1 = torch.cat([_rank_rows(k) for k in range(WORLD)], 1)
        assert torch.equal(res["no_grad_dim1"], expected_dim1)
        # mean over ranks of [r, 2r + 1] with r in {0, 1}
        assert res["mean"].tolist() == pytest.approx([0.5, 2.0])
