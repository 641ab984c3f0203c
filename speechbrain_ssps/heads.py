"""Projection heads for DINO and SimCLR.

``DINOHead`` follows reference DINO (facebookresearch/dino,
``vision_transformer.py``) and sslsv's ``DINOHead``: an MLP to a 256-d
bottleneck, L2 normalisation, then a weight-normalised linear layer without
bias to the prototypes. The weight norm uses
``torch.nn.utils.parametrizations.weight_norm`` (the old
``nn.utils.weight_norm`` is deprecated and breaks ``copy.deepcopy``), so the
gain is stored as ``last_layer.parametrizations.weight.original0`` and the
direction as ``...original1``. With ``norm_last_layer`` the gain is fixed to 1
and frozen, so every prototype is a unit vector.

The head is split in ``bottleneck`` and ``prototypes`` so that SSPS can store
the 256-d teacher bottleneck in its positive queue and expand it to the
65,536 prototype scores with the current teacher's last layer when swapping.
"""

from typing import List

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm


def _init_linear(module: nn.Module) -> None:
    """Reference DINO init: truncated normal (std 0.02) weights, zero bias."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class DINOHead(nn.Module):
    """DINO projection head: MLP, L2 normalisation, prototype layer.

    Arguments
    ---------
    in_dim : int
        Dimension of the encoder output.
    out_dim : int
        Number of prototypes.
    hidden_dim : int
        Width of the hidden MLP layers.
    bottleneck_dim : int
        Dimension of the (L2-normalised) bottleneck.
    num_layers : int
        Number of linear layers of the MLP (1 means a single linear map to
        the bottleneck).
    use_bn : bool
        Whether to put BatchNorm1d after each hidden linear layer.
    norm_last_layer : bool
        Fix the weight-norm gain to 1 and freeze it (prototypes of unit norm).
        If False, the gain starts at 1 and is trained.

    Example
    -------
    >>> head = DINOHead(in_dim=16, out_dim=32, hidden_dim=24, bottleneck_dim=8)
    >>> x = torch.randn(4, 16)
    >>> head(x).shape
    torch.Size([4, 32])
    >>> b = head.bottleneck(x)
    >>> b.shape, torch.allclose(b.norm(dim=1), torch.ones(4))
    (torch.Size([4, 8]), True)
    >>> torch.allclose(head.prototypes(b), head(x))
    True
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int = 65536,
        hidden_dim: int = 2048,
        bottleneck_dim: int = 256,
        num_layers: int = 3,
        use_bn: bool = True,
        norm_last_layer: bool = True,
    ):
        super().__init__()
        for name, value in (
            ("in_dim", in_dim),
            ("out_dim", out_dim),
            ("hidden_dim", hidden_dim),
            ("bottleneck_dim", bottleneck_dim),
            ("num_layers", num_layers),
        ):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.in_dim = int(in_dim)
        self.out_dim = int(out_dim)
        self.bottleneck_dim = int(bottleneck_dim)

        if num_layers == 1:
            self.mlp = nn.Sequential(nn.Linear(in_dim, bottleneck_dim))
        else:
            layers: List[nn.Module] = []
            width = in_dim
            for _ in range(num_layers - 1):
                layers.append(nn.Linear(width, hidden_dim))
                if use_bn:
                    layers.append(nn.BatchNorm1d(hidden_dim))
                layers.append(nn.GELU())
                width = hidden_dim
            layers.append(nn.Linear(width, bottleneck_dim))
            self.mlp = nn.Sequential(*layers)
        self.mlp.apply(_init_linear)

        # Like reference DINO, the prototype directions keep nn.Linear's
        # default init; only the gain is reset to 1.
        self.last_layer = weight_norm(
            nn.Linear(bottleneck_dim, out_dim, bias=False)
        )
        gain = self.last_layer.parametrizations.weight.original0
        with torch.no_grad():
            gain.fill_(1.0)
        gain.requires_grad_(not norm_last_layer)

    @property
    def last_layer_parameters(self) -> List[nn.Parameter]:
        """Parameters of the prototype layer (to freeze in the first epoch)."""
        return list(self.last_layer.parameters())

    def bottleneck(self, x: torch.Tensor) -> torch.Tensor:
        """Map encoder outputs to the L2-normalised bottleneck.

        Arguments
        ---------
        x : torch.Tensor
            Encoder outputs ``[B, in_dim]``.

        Returns
        -------
        torch.Tensor
            ``[B, bottleneck_dim]``, rows of unit L2 norm.
        """
        return F.normalize(self.mlp(x), p=2, dim=-1)

    def prototypes(self, b: torch.Tensor) -> torch.Tensor:
        """Apply the prototype layer alone to bottleneck vectors.

        Arguments
        ---------
        b : torch.Tensor
            L2-normalised bottleneck vectors ``[B, bottleneck_dim]``.

        Returns
        -------
        torch.Tensor
            Prototype scores ``[B, out_dim]``.
        """
        return self.last_layer(b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Full head: ``prototypes(bottleneck(x))``.

        Arguments
        ---------
        x : torch.Tensor
            Encoder outputs ``[B, in_dim]``.

        Returns
        -------
        torch.Tensor
            Prototype scores ``[B, out_dim]``.
        """
        return self.prototypes(self.bottleneck(x))


class SimCLRProjector(nn.Module):
    """Optional SimCLR projector: Linear, BatchNorm1d, ReLU, Linear.

    The paper's SimCLR configuration uses no projector (the loss is applied
    to the encoder output); this module is there for ablations.

    Arguments
    ---------
    in_dim : int
        Dimension of the encoder output.
    hidden_dim : int
        Width of the hidden layer.
    out_dim : int
        Dimension of the projected embedding.

    Example
    -------
    >>> proj = SimCLRProjector(16, hidden_dim=32, out_dim=8)
    >>> proj(torch.randn(4, 16)).shape
    torch.Size([4, 8])
    """

    def __init__(self, in_dim: int, hidden_dim: int = 2048, out_dim: int = 256):
        super().__init__()
        for name, value in (
            ("in_dim", in_dim),
            ("hidden_dim", hidden_dim),
            ("out_dim", out_dim),
        ):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.out_dim = int(out_dim)
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden_dim),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, out_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Project encoder outputs.

        Arguments
        ---------
        x : torch.Tensor
            Encoder outputs ``[B, in_dim]``.

        Returns
        -------
        torch.Tensor
            Embeddings ``[B, out_dim]``.
        """
        return self.net(x)
