"""VICReg: the three terms against the formula, gradients, SSPS's swap."""

import math
from types import SimpleNamespace

import pytest
import torch

from speechbrain_ssps.frameworks import VICReg
from speechbrain_ssps.frameworks.vicreg import (
    MLPProjector,
    VICRegLoss,
    covariance_term,
    variance_term,
)


def _manual_vicreg(za, zb, lam, mu, nu, eps=1e-4):
    """Bardes et al. (2022), eqs. 1-6, written with Python lists."""
    a, b = za.tolist(), zb.tolist()
    n, d = len(a), len(a[0])
    inv = sum((x - y) ** 2 for ra, rb in zip(a, b) for x, y in zip(ra, rb))
    inv /= n * d

    def var(z):
        out = 0.0
        for j in range(d):
            col = [row[j] for row in z]
            m = sum(col) / n
            v = sum((c - m) ** 2 for c in col) / (n - 1)
            out += max(0.0, 1.0 - math.sqrt(v + eps))
        return out / d

    def cov(z):
        means = [sum(row[j] for row in z) / n for j in range(d)]
        out = 0.0
        for j in range(d):
            for k in range(d):
                if j != k:
                    c = sum(
                        (row[j] - means[j]) * (row[k] - means[k]) for row in z
                    ) / (n - 1)
                    out += c * c
        return out / d

    return lam * inv + mu * (var(a) + var(b)) + nu * (cov(a) + cov(b))


def test_terms_on_hand_computed_cases():
    # Column 0 has variance 2 (std > 1: no penalty), column 1 is constant.
    z = torch.tensor([[0.0, 3.0], [2.0, 3.0]])
    assert float(variance_term(z)) == pytest.approx(
        (0.0 + 1.0 - math.sqrt(1e-4)) / 2
    )
    # cov = [[2, -1], [-1, 0.5]] for these rows: off-diagonal (-1)^2 x 2 / 2.
    z = torch.tensor([[0.0, 1.0], [2.0, 0.0]])
    assert float(covariance_term(z)) == pytest.approx(1.0)
    # Uncorrelated columns: no covariance penalty.
    z = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    assert float(covariance_term(z)) == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("weights", [(1.0, 1.0, 0.04), (25.0, 25.0, 1.0)])
def test_loss_matches_the_published_formula(weights):
    torch.manual_seed(0)
    za, zb = torch.randn(6, 5) * 0.7, torch.randn(6, 5) * 0.7
    lam, mu, nu = weights
    got = VICRegLoss(lam, mu, nu)(za, zb)
    assert float(got) == pytest.approx(
        _manual_vicreg(za, zb, lam, mu, nu), rel=1e-5
    )


def test_each_weight_scales_its_own_term():
    torch.manual_seed(1)
    za, zb = torch.randn(8, 4) * 0.5, torch.randn(8, 4) * 0.5
    inv = VICRegLoss(1.0, 0.0, 0.0)(za, zb)
    var = VICRegLoss(0.0, 1.0, 0.0)(za, zb)
    cov = VICRegLoss(0.0, 0.0, 1.0)(za, zb)
    both = VICRegLoss(2.0, 3.0, 0.5)(za, zb)
    assert float(inv) == pytest.approx(float(((za - zb) ** 2).mean()))
    assert float(both) == pytest.approx(
        float(2 * inv + 3 * var + 0.5 * cov), rel=1e-6
    )
    loss = VICRegLoss()
    loss(za, zb)
    assert set(loss.last_terms) == {"inv", "var", "cov"}
    assert float(loss.last_terms["var"]) == pytest.approx(float(var))


def test_gradients_of_the_invariance_and_variance_terms():
    za = torch.tensor([[1.0, 0.0], [0.0, 0.0]], requires_grad=True)
    zb = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    VICRegLoss(1.0, 0.0, 0.0)(za, zb).backward()
    # d/dza mean((za - zb)^2) = 2 (za - zb) / (N D).
    assert torch.allclose(za.grad, 2 * za.detach() / 4)
    # Variance below 1 pushes the rows apart (away from the column mean).
    z = torch.tensor([[0.1, 0.0], [-0.1, 0.0]], requires_grad=True)
    variance_term(z).backward()
    assert z.grad[0, 0] < 0 < z.grad[1, 0]
    # A collapsed pair with a decorrelation target: finite gradients.
    za = torch.zeros(4, 3, requires_grad=True)
    VICRegLoss()(za, torch.zeros(4, 3)).backward()
    assert torch.isfinite(za.grad).all()


@pytest.mark.parametrize(
    "kwargs, option",
    [
        ({"inv_weight": -1.0}, "vicreg_inv_weight"),
        ({"var_weight": -0.5}, "vicreg_var_weight"),
        ({"cov_weight": -0.04}, "vicreg_cov_weight"),
        ({"cov_weight": float("nan")}, "vicreg_cov_weight"),
        ({"eps": 0.0}, "eps"),
    ],
)
def test_bad_options_name_the_option(kwargs, option):
    with pytest.raises(ValueError, match=option):
        VICRegLoss(**kwargs)


def test_bad_shapes_and_a_single_row_are_refused():
    with pytest.raises(ValueError, match="two"):
        VICRegLoss()(torch.zeros(4, 3), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="at least 2"):
        VICRegLoss()(torch.zeros(1, 3), torch.zeros(1, 3))


def test_projector_layers_and_options():
    proj = MLPProjector(8, hidden_dim=16, out_dim=4, layers=3)
    linears = [m for m in proj.modules() if isinstance(m, torch.nn.Linear)]
    norms = [m for m in proj.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (8, 16),
        (16, 16),
        (16, 4),
    ]
    assert len(norms) == 2
    assert MLPProjector(8, 16, 4, layers=1)(torch.randn(2, 8)).shape == (2, 4)
    with pytest.raises(ValueError, match="out_dim"):
        MLPProjector(8, 16, 0)


class FakeBrain:
    """What VICReg reads from SSLBrain, with SSPS's swap replaceable."""

    def __init__(self, swap=None, views=2, local=0):
        torch.manual_seed(0)
        self.modules = torch.nn.ModuleDict(
            {
                "embedding_model": torch.nn.Linear(6, 8),
                "projector": MLPProjector(8, 16, 5),
                "ssl_loss": VICRegLoss(),
            }
        )
        self.hparams = SimpleNamespace(
            num_global_views=views, num_local_views=local
        )
        self.swap = swap
        self.calls = []

    def ssps_positives(self, indices, predictions, rows, views):
        self.calls.append((rows.detach().clone(), views))
        return rows if self.swap is None else self.swap(rows)


def test_views_and_modules_are_checked_at_start():
    VICReg().on_fit_start(FakeBrain())
    with pytest.raises(ValueError, match="num_global_views"):
        VICReg().on_fit_start(FakeBrain(views=3))
    with pytest.raises(ValueError, match="local"):
        VICReg().on_fit_start(FakeBrain(local=2))
    no_projector = FakeBrain()
    del no_projector.modules["projector"]
    with pytest.raises(ValueError, match="projector"):
        VICReg().on_fit_start(no_projector)


def test_ssps_swapped_second_branch_reaches_the_loss():
    torch.manual_seed(2)
    replacement = torch.randn(4, 5)

    def swap(rows):  # anchors 0 and 2 get a pseudo-positive
        out = rows.clone()
        out[0], out[2] = replacement[0], replacement[2]
        return out

    brain = FakeBrain(swap=swap)
    vicreg = VICReg()
    student = brain.modules.embedding_model(torch.randn(8, 6))
    out = vicreg.forward(brain, [], student)
    assert vicreg.positive_dim(brain.modules) == 5
    loss = vicreg.loss(brain, out, torch.arange(4))
    ((rows, views),) = brain.calls
    assert views == 1 and torch.equal(rows, out["student"][4:].detach())
    za, zb = out["student"][:4], out["student"][4:]
    expected = VICRegLoss()(za, swap(zb))
    assert float(loss) == pytest.approx(float(expected))
    assert abs(float(loss) - float(VICRegLoss()(za, zb))) > 1e-4
    loss.backward()
    assert brain.modules.projector.net[0].weight.grad.abs().sum() > 0
    stats = vicreg.epoch_stats(brain, 0)
    assert set(stats) == {"vicreg_inv", "vicreg_var", "vicreg_cov"}
