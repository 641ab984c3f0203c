"""Nearest-neighbour sampling (``sampling="knn"``) of SSPS, vectorised.

For each anchor, the pseudo-positive is drawn uniformly among the M entries
of the positive queue ``Q'`` whose reference representations (their rows of
``Q^``) are the most cosine-similar to the anchor's current reference
representation, the anchor's own exclusion group (by default the anchor
itself) excluded, as sslsv's ``SSPS_KNNSampling``
(``sslsv/methods/_SSPS/SSPSSamplingMethods.py``). No k-means is needed. An
utterance held by several slots counts once, by its newest slot (sslsv maps
a drawn utterance to its newest slot too); empty slots and utterances
without a reference row are never candidates. Fewer than M candidates: the
draw is uniform among those there are; none: the ordinary positive.

One step is one ``[B, Q]`` matrix product and one ``topk`` (in row chunks
of at most :data:`_KNN_SCORES` similarities), no per-anchor loop. The
draws are SSPS's DDP-invariant uniforms, and the queues are identical on
every rank, so the result does not depend on the number of processes; the
state is the queues and ``num_draws``, already checkpointed.

Example
-------
>>> from speechbrain_ssps.ssps import SSPS
>>> ssps = SSPS(num_utterances=3, repr_dim=2, pos_dim=1, queue_size=3,
...             num_clusters=1, sampling="knn", num_neighbors=1)
>>> ssps.on_epoch_start(1)
>>> y = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
>>> ssps.update(torch.arange(3), y, torch.zeros(1, 3, 1))
>>> ssps.on_epoch_start(2)
>>> ssps.sample(torch.arange(3), y).tolist()  # each one's nearest other
[1, 0, 1]
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F

__all__ = ["KNNSampling"]

#: Largest number of anchor x slot similarities computed at once.
_KNN_SCORES = 1 << 24


class KNNSampling(torch.nn.Module):
    """The knn draw of :class:`~speechbrain_ssps.ssps.SSPS` (a mixin)."""

    # Set by SSPS.__init__ and the other parts of SSPS.
    num_utterances: int
    num_neighbors: int
    queue_size: int
    pos_indices: torch.Tensor
    pos_ptr: torch.Tensor
    ref_queue: torch.Tensor
    ref_filled: torch.Tensor
    _groups: torch.Tensor

    def _newest_entries(self) -> torch.Tensor:
        """Bool[Q]: the slot is its utterance's newest, with a ``Q^`` row."""
        q, utt = self.queue_size, self.pos_indices
        safe = utt.clamp(min=0)
        valid = (utt >= 0) & self.ref_filled[safe]
        # Age in the ring: 0 = oldest (the next slot to write), Q-1 = newest.
        age = (torch.arange(q, device=utt.device) - self.pos_ptr) % q
        newest = torch.full(
            (self.num_utterances,), -1, dtype=torch.long, device=utt.device
        )
        newest.scatter_reduce_(0, safe[valid], age[valid], "amax")
        return valid & (newest[safe] == age)

    def _draw_knn_slots(
        self,
        anchors: torch.Tensor,
        y_ref: Optional[torch.Tensor],
        u: torch.Tensor,
    ) -> torch.Tensor:
        """A slot uniform among each anchor's M nearest queue entries.

        Arguments
        ---------
        anchors : torch.Tensor
            LongTensor[B], the anchors' utterances.
        y_ref : torch.Tensor or None
            Tensor[B, D], the anchors' current reference representations
            (normalised here); None: their stored ``Q^`` rows (anchors
            without one get no pseudo-positive).
        u : torch.Tensor
            Tensor[B] of uniform draws in [0, 1): neighbour
            ``floor(u * count)`` by decreasing similarity.

        Returns
        -------
        torch.Tensor
            LongTensor[B], the drawn slot, or -1 where there is no
            candidate.
        """
        dev, q, b = self.pos_indices.device, self.queue_size, anchors.numel()
        keep = self._newest_entries()
        utt = self.pos_indices.clamp(min=0)
        refs = self.ref_queue[utt].float()  # [Q, D]
        if y_ref is None:
            y = self.ref_queue[anchors].float()
            has_ref = self.ref_filled[anchors]
        else:
            y = F.normalize(y_ref.detach().float().to(dev), dim=1)
            has_ref = torch.ones(b, dtype=torch.bool, device=dev)
        slot_groups, own = self._groups[utt], self._groups[anchors]
        m = min(self.num_neighbors, q)
        slots = torch.full((b,), -1, dtype=torch.long, device=dev)
        rows = max(1, _KNN_SCORES // q)
        for lo in range(0, b, rows):  # row chunks, not anchors
            hi = min(lo + rows, b)
            sim = y[lo:hi] @ refs.T
            bad = ~keep[None, :] | (slot_groups[None, :] == own[lo:hi, None])
            sim.masked_fill_(bad, -math.inf)
            top = sim.topk(m, dim=1)  # sorted: candidates come first
            count = torch.isfinite(top.values).sum(dim=1)
            pick = (u[lo:hi] * count.clamp(min=1)).long()
            pick = torch.minimum(pick, (count - 1).clamp(min=0))
            chosen = top.indices.gather(1, pick[:, None]).squeeze(1)
            found = (count > 0) & has_ref[lo:hi]
            slots[lo:hi] = torch.where(found, chosen, -1)
        return slots
