"""SimCLR (contrastive learning with NT-Xent) as an ``SSLBrain`` framework.

Two views of each utterance go through the encoder (and the optional
projector); :class:`~speechbrain_ssps.losses.NTXentLoss` pulls the two
embeddings of an utterance together and pushes the others away. With
SSPS, the second view's embedding is the positive: the rows of the anchors
SSPS pairs with a pseudo-positive are replaced by that utterance's stored
second-view embedding.

Authors
 * speechbrain-ssps contributors
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch

from speechbrain_ssps.frameworks.base import Framework, unwrap


class SimCLR(Framework):
    """SimCLR's step: two views, NT-Xent, the second view as positive.

    Arguments
    ---------
    embedding_dim : int, optional
        Width of the encoder's embeddings. Needed only without a projector
        and for an encoder other than SpeechBrain's ECAPA-TDNN (whose width
        is read from its last layer).
    mask_false_negatives : bool
        With SSPS active, pass each anchor's k-means cluster to the loss,
        which removes same-cluster negatives (logit 0, as sslsv's
        ``ssps_assignments``; off by default as in the authors' latest
        code). Needs an ``ssps`` module.

    Example
    -------
    >>> from speechbrain_ssps.heads import SimCLRProjector
    >>> SimCLR().positive_dim({"projector": SimCLRProjector(8, 16, 4)})
    4
    >>> SimCLR(embedding_dim=192).positive_dim({"embedding_model": None})
    192
    """

    name = "simclr"
    reference_model = "embedding_model"

    def __init__(
        self,
        embedding_dim: Optional[int] = None,
        mask_false_negatives: bool = False,
    ):
        self.embedding_dim = embedding_dim
        self.mask_false_negatives = bool(mask_false_negatives)

    def trained_modules(self, modules) -> List[str]:
        """The encoder and, if there is one, the projector."""
        names = ["embedding_model"]
        return names + (["projector"] if "projector" in modules else [])

    def positive_dim(self, modules) -> int:
        """The projector's output width, else the encoder's."""
        if "projector" in modules:
            return unwrap(modules["projector"]).out_dim
        if self.embedding_dim is not None:
            return int(self.embedding_dim)
        encoder = unwrap(modules["embedding_model"])
        try:  # SpeechBrain's ECAPA_TDNN: its last layer is a 1x1 conv
            return int(encoder.fc.conv.out_channels)
        except AttributeError:
            raise ValueError(
                f"cannot read the embedding width of {type(encoder).__name__}"
                ": give SimCLR(embedding_dim=...) in the yaml"
            ) from None

    def forward(
        self, brain, groups: List[torch.Tensor], student: torch.Tensor
    ) -> Dict[str, torch.Tensor]:
        """Embeddings of both views ``[2*B, P]`` (projected if configured)."""
        if "projector" in brain.modules:
            student = brain.modules.projector(student)
        return {"student": student}

    def positives(
        self, brain, predictions: Dict, batch_size: int
    ) -> Tuple[torch.Tensor, int]:
        """The second view's embeddings (one view)."""
        return predictions["student"][batch_size:], 1

    def loss(self, brain, predictions: Dict, indices: torch.Tensor):
        """NT-Xent between view 1 and the (swapped) view 2."""
        z1 = predictions["student"][: indices.numel()]
        z2, views = self.positives(brain, predictions, indices.numel())
        z2 = brain.ssps_positives(indices, predictions, z2, views)
        if not self.mask_false_negatives:
            return brain.modules.ssl_loss(z1, z2)
        return brain.modules.ssl_loss(
            z1, z2, assignments=self.anchor_clusters(brain, indices)
        )

    @staticmethod
    def anchor_clusters(brain, indices: torch.Tensor):
        """SSPS's cluster of each anchor (None while SSPS is not active)."""
        ssps = brain.ssps
        if ssps is None:
            raise ValueError(
                "ssps_mask_false_negatives needs SSPS (an ssps module): "
                "use a *_ssps.yaml or set it to False"
            )
        if getattr(ssps, "sampling", None) == "knn":
            raise ValueError(
                "ssps_mask_false_negatives needs a clustering, and "
                "ssps_sampling=knn has none: use ncs, scs or centroid"
            )
        return ssps.anchor_clusters(indices)

    def __repr__(self) -> str:
        mask = ", mask_false_negatives=True" * self.mask_false_negatives
        return f"SimCLR(embedding_dim={self.embedding_dim}{mask})"
