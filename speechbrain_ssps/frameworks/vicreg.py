"""VICReg (variance-invariance-covariance regularisation) as a framework.

Two views of each utterance go through the encoder and the expander
(``projector``, :class:`MLPProjector`); :class:`VICRegLoss` (Bardes et al.,
ICLR 2022) makes the two embeddings of an utterance equal (invariance),
keeps every dimension's standard deviation over the batch above 1
(variance) and decorrelates the dimensions (covariance):

.. math::

    L = \\lambda\\, \\mathrm{mean}_{n,d} (z^a_{nd} - z^b_{nd})^2
      + \\mu\\, \\sum_{z \\in \\{z^a, z^b\\}}
        \\mathrm{mean}_d\\, \\max(0, 1 - \\sqrt{\\mathrm{Var}(z_{\\cdot d})
        + \\epsilon})
      + \\nu\\, \\sum_{z \\in \\{z^a, z^b\\}} \\frac{1}{D}
        \\sum_{d \\ne d'} C(z)_{dd'}^2

with ``C(z)`` the (N-1)-normalised covariance matrix of the batch. The
variance and covariance terms use the batch of every rank, the invariance
term the local rows (as sslsv's ``VICRegLoss``). With SSPS, the second
view's embedding is the positive: the rows of the anchors SSPS pairs with
a pseudo-positive are replaced by that utterance's stored embedding.

Authors
 * speechbrain-ssps contributors
"""

from __future__ import annotations

from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from speechbrain_ssps.distributed import all_gather_with_grad
from speechbrain_ssps.frameworks.base import Framework, unwrap
from speechbrain_ssps.precision import full_precision


class MLPProjector(nn.Module):
    """Expander/projector: (Linear, BatchNorm1d, ReLU) x (layers-1), Linear.

    sslsv's projector of VICReg and SwAV (2048-BN-R-2048-BN-R-512 in the
    SSPS configurations).

    Arguments
    ---------
    in_dim : int
        Width of the encoder output.
    hidden_dim : int
        Width of the hidden layers.
    out_dim : int
        Width of the embedding.
    layers : int
        Number of linear layers (>= 1).

    Example
    -------
    >>> proj = MLPProjector(16, hidden_dim=32, out_dim=8)
    >>> proj(torch.randn(4, 16)).shape, proj.out_dim
    (torch.Size([4, 8]), 8)
    """

    def __init__(
        self,
        in_dim: int,
        hidden_dim: int = 2048,
        out_dim: int = 512,
        layers: int = 3,
    ):
        super().__init__()
        for name, value in (
            ("in_dim", in_dim),
            ("hidden_dim", hidden_dim),
            ("out_dim", out_dim),
            ("layers", layers),
        ):
            if int(value) < 1:
                raise ValueError(f"projector {name} must be >= 1, got {value}")
        self.out_dim = int(out_dim)
        blocks: List[nn.Module] = []
        width = int(in_dim)
        for _ in range(int(layers) - 1):
            blocks += [
                nn.Linear(width, hidden_dim),
                nn.BatchNorm1d(hidden_dim),
                nn.ReLU(),
            ]
            width = int(hidden_dim)
        blocks.append(nn.Linear(width, out_dim))
        self.net = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, in_dim]`` -> ``[B, out_dim]``."""
        return self.net(x)


def variance_term(z: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """``mean_d relu(1 - sqrt(Var_n(z[:, d]) + eps))`` (unbiased variance).

    Example
    -------
    >>> z = torch.tensor([[0.0, 0.0], [2.0, 0.0]])  # stds sqrt(2+eps), ~0.01
    >>> round(float(variance_term(z)), 4)  # (0 + (1 - 0.01)) / 2
    0.495
    """
    std = torch.sqrt(z.var(dim=0) + eps)
    return F.relu(1.0 - std).mean()


def covariance_term(z: torch.Tensor) -> torch.Tensor:
    """Sum of the squared off-diagonal covariances, divided by D.

    Example
    -------
    >>> z = torch.tensor([[1.0, 1.0], [-1.0, -1.0]])  # cov = [[2, 2], [2, 2]]
    >>> float(covariance_term(z))  # (2^2 + 2^2) / 2
    4.0
    """
    n, d = z.shape
    centred = z - z.mean(dim=0)
    cov = centred.t() @ centred / (n - 1)
    off = cov - torch.diag(torch.diagonal(cov))
    return off.pow(2).sum() / d


class VICRegLoss(nn.Module):
    """VICReg's loss (sslsv's weighting: 1, 1, 0.04 = the paper's 25:25:1).

    Arguments
    ---------
    inv_weight : float
        lambda, weight of the invariance (MSE) term.
    var_weight : float
        mu, weight of the variance term.
    cov_weight : float
        nu, weight of the covariance term.
    eps : float
        Added to the variance before the square root.

    Example
    -------
    >>> loss = VICRegLoss(inv_weight=1.0, var_weight=0.0, cov_weight=0.0)
    >>> za = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> zb = torch.tensor([[0.0, 0.0], [0.0, 1.0]])
    >>> float(loss(za, zb))  # mean of the squared differences: 1 / 4
    0.25
    """

    def __init__(
        self,
        inv_weight: float = 1.0,
        var_weight: float = 1.0,
        cov_weight: float = 0.04,
        eps: float = 1e-4,
    ):
        super().__init__()
        for name, value in (
            ("vicreg_inv_weight", inv_weight),
            ("vicreg_var_weight", var_weight),
            ("vicreg_cov_weight", cov_weight),
        ):
            if not float(value) >= 0.0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if not float(eps) > 0.0:
            raise ValueError(f"vicreg eps must be > 0, got {eps}")
        self.inv_weight = float(inv_weight)
        self.var_weight = float(var_weight)
        self.cov_weight = float(cov_weight)
        self.eps = float(eps)
        #: The last call's unweighted terms (detached tensors).
        self.last_terms: Dict[str, torch.Tensor] = {}

    def forward(self, za: torch.Tensor, zb: torch.Tensor) -> torch.Tensor:
        """The loss of two branches ``[B, D]`` (rows paired by index).

        Raises
        ------
        ValueError
            If the shapes differ or there are fewer than 2 rows (over all
            ranks) to estimate a variance from.
        """
        if za.shape != zb.shape or za.dim() != 2:
            raise ValueError(
                f"VICReg needs two [B, D] branches, got {tuple(za.shape)} "
                f"and {tuple(zb.shape)}"
            )
        with full_precision(za):  # float32 variance and covariance
            za, zb = za.float(), zb.float()
            inv = F.mse_loss(za, zb)
            za, zb = all_gather_with_grad(za), all_gather_with_grad(zb)
            if za.shape[0] < 2:
                raise ValueError("VICReg needs a global batch of at least 2")
            var = variance_term(za, self.eps) + variance_term(zb, self.eps)
            cov = covariance_term(za) + covariance_term(zb)
        self.last_terms = {
            "inv": inv.detach(),
            "var": var.detach(),
            "cov": cov.detach(),
        }
        return (
            self.inv_weight * inv
            + self.var_weight * var
            + self.cov_weight * cov
        )


class VICReg(Framework):
    """VICReg's step: two views, the expander, the second view as positive.

    Modules: ``embedding_model``, ``projector`` (:class:`MLPProjector` or
    any module with ``out_dim``) and ``ssl_loss`` (:class:`VICRegLoss`).

    Example
    -------
    >>> modules = {"embedding_model": None, "projector": MLPProjector(8, 16, 4)}
    >>> VICReg().positive_dim(modules), VICReg().trained_modules(modules)
    (4, ['embedding_model', 'projector'])
    """

    name = "vicreg"
    reference_model = "embedding_model"

    def trained_modules(self, modules) -> List[str]:
        """The encoder and the expander."""
        return ["embedding_model", "projector"]

    def positive_dim(self, modules) -> int:
        """The expander's output width."""
        if "projector" not in modules:
            raise ValueError("VICReg needs a 'projector' module (expander)")
        return int(unwrap(modules["projector"]).out_dim)

    def on_fit_start(self, brain) -> None:
        """Checks the modules and the number of views."""
        self.positive_dim(brain.modules)
        self.require_two_views(brain)

    def forward(
        self, brain, groups: List[torch.Tensor], student: torch.Tensor
    ) -> Dict[str, torch.Tensor]:
        """Embeddings of both views ``[2*B, P]``."""
        return {"student": brain.modules.projector(student)}

    def positives(
        self, brain, predictions: Dict, batch_size: int
    ) -> Tuple[torch.Tensor, int]:
        """The second view's embeddings (one view)."""
        return predictions["student"][batch_size:], 1

    def loss(self, brain, predictions: Dict, indices: torch.Tensor):
        """VICReg between view 1 and the (swapped) view 2."""
        za = predictions["student"][: indices.numel()]
        zb, views = self.positives(brain, predictions, indices.numel())
        zb = brain.ssps_positives(indices, predictions, zb, views)
        return brain.modules.ssl_loss(za, zb)

    def epoch_stats(self, brain, step: int) -> Dict[str, float]:
        """The last step's three terms (unweighted)."""
        terms = getattr(unwrap(brain.modules.ssl_loss), "last_terms", {})
        return {f"vicreg_{k}": float(v) for k, v in terms.items()}

    def __repr__(self) -> str:
        return "VICReg()"
