"""The cluster/slot index of the positive queue, which vectorises sampling.

Each slot ``s`` of the positive queue (Q slots) has the unique key
``(c * G + g) * Q + s``, where ``c`` is the cluster of the slot's utterance
and ``g`` its exclusion group (by default the utterance itself, G = N);
empty slots and unassigned utterances get ``K * G * Q + s``, after every
valid key. The keys are sorted once per clustering (:meth:`_rebuild_index`)
and then updated by a merge at every queue update
(:meth:`_replace_in_index`: O(Q) memory passes, no sort).

In sorted order, the candidates of a cluster are one contiguous segment and
the entries of one exclusion group inside it a contiguous sub-segment. Four
``searchsorted`` calls give every anchor both (:meth:`_draw_slots`), so one
uniform draw per anchor picks a candidate exactly uniformly while skipping
the anchor's own group, and ``key % Q`` is the chosen slot. With speakers as
fixed clusters and videos as exclusion groups
(:meth:`set_exclusion_groups`), the same code is the label oracle of the
paper (a positive of the same speaker from another video).

:func:`nearest_clusters` builds the table of each cluster's M nearest other
clusters used by neighbouring-cluster sampling.

Example
-------
>>> from speechbrain_ssps.ssps import SSPS
>>> ssps = SSPS(num_utterances=4, repr_dim=2, pos_dim=1, queue_size=4,
...             num_clusters=2, sampling="scs")
>>> ssps.on_epoch_start(1)
>>> ssps.update(torch.arange(4), torch.randn(4, 2), torch.randn(1, 4, 1))
>>> ssps.set_clusters(torch.tensor([1, 0, 1, 0]), torch.eye(2))
>>> (ssps._sorted_keys % 4).tolist()  # the slots of cluster 0, then 1
[1, 3, 0, 2]
"""

from __future__ import annotations

import math
from typing import Sequence, Union

import numpy as np
import torch

from speechbrain_ssps.ssps.diagnostics import label_codes

__all__ = ["SlotIndex", "nearest_clusters"]

# Rows of centroid similarities computed at once by nearest_clusters.
_NEIGHBOUR_CHUNK = 1024


def nearest_clusters(
    centroids: torch.Tensor, num_neighbors: int
) -> torch.Tensor:
    """The ``num_neighbors`` most similar other centroids of each centroid.

    Arguments
    ---------
    centroids : torch.Tensor
        Tensor[K, D], L2-normalised (the similarity is the dot product).
    num_neighbors : int
        M < K.

    Returns
    -------
    torch.Tensor
        LongTensor[K, M]: row k lists the other clusters by decreasing
        similarity to cluster k (never k itself).

    Example
    -------
    >>> c = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    >>> nearest_clusters(c, 1).tolist()
    [[1], [0], [1]]
    >>> nearest_clusters(c, 2).tolist()
    [[1, 2], [0, 2], [1, 0]]
    """
    k = centroids.shape[0]
    out = torch.empty(
        k, num_neighbors, dtype=torch.long, device=centroids.device
    )
    for lo in range(0, k, _NEIGHBOUR_CHUNK):
        hi = min(lo + _NEIGHBOUR_CHUNK, k)
        sim = centroids[lo:hi] @ centroids.T
        own = torch.arange(lo, hi, device=sim.device)
        sim[torch.arange(hi - lo, device=sim.device), own] = -math.inf
        out[lo:hi] = sim.topk(num_neighbors, dim=1).indices
    return out


class SlotIndex(torch.nn.Module):
    """Sorted slot keys and exclusion groups of the positive queue.

    A mixin of :class:`~speechbrain_ssps.ssps.SSPS`: it reads the positive
    queue's ``pos_indices`` and the clustering's ``assignments``, and keeps
    the derived (non-persistent, rebuilt on load) buffers ``_sorted_keys``
    and ``_groups``.
    """

    # Set by SSPS.__init__ and the other parts of SSPS.
    num_utterances: int
    num_clusters: int
    queue_size: int
    pos_indices: torch.Tensor
    assignments: torch.Tensor
    _has_clusters: bool

    def _init_index(self) -> None:
        """Registers the index of an empty queue, one group per utterance."""
        n, k, q = self.num_utterances, self.num_clusters, self.queue_size
        self.register_buffer(
            "_sorted_keys", n * k * q + torch.arange(q), persistent=False
        )
        self.register_buffer("_groups", torch.arange(n), persistent=False)
        self._num_groups = n
        self._members = None  # centroid sampling: (utterances, clusters)

    def set_exclusion_groups(
        self, groups: Union[Sequence, torch.Tensor]
    ) -> None:
        """Never draws a positive from the anchor's group.

        By default each utterance is its own group ("never the anchor
        itself"). With video labels as groups and speakers as fixed clusters
        this gives the label oracle of the paper's Table 1: a positive of the
        same speaker from another video.

        Arguments
        ---------
        groups : sequence or torch.Tensor
            One group label (any hashable) per utterance.
        """
        codes = label_codes(
            groups, self.num_utterances, "groups", "set_exclusion_groups"
        )
        self._groups = codes.to(self.assignments.device)
        self._num_groups = int(codes.max()) + 1
        if self._has_clusters:
            self._rebuild_index()

    def _slot_keys(self, slots: torch.Tensor) -> torch.Tensor:
        """Unique key ``(cluster * G + group) * Q + slot`` of slots.

        ``group`` is the exclusion group of the slot's utterance (by default
        the utterance itself, G = N). Slots that are empty or hold an
        unassigned utterance get the key ``K * G * Q + slot``, after every
        valid one.
        """
        g, q = self._num_groups, self.queue_size
        utterances = self.pos_indices[slots].clamp(min=0)
        cluster = self.assignments[utterances]
        valid = (self.pos_indices[slots] >= 0) & (cluster >= 0)
        group = torch.where(
            valid,
            cluster * g + self._groups[utterances],
            torch.full_like(cluster, g * self.num_clusters),
        )
        return group * q + slots

    def _rebuild_index(self) -> None:
        """Sorts the keys of every slot from scratch."""
        slots = torch.arange(self.queue_size, device=self.pos_indices.device)
        self._sorted_keys = torch.sort(self._slot_keys(slots)).values

    def _replace_in_index(
        self, slots: torch.Tensor, old_keys: torch.Tensor
    ) -> None:
        """Replaces the keys of ``slots`` (distinct) by a sorted merge.

        Arguments
        ---------
        slots : torch.Tensor
            LongTensor, the slots just overwritten.
        old_keys : torch.Tensor
            Their keys before the overwrite (:meth:`_slot_keys`).
        """
        q, b = self.queue_size, slots.numel()
        if b * 8 >= q:  # a merge is not worth it: sort from scratch
            self._rebuild_index()
            return
        keys = self._sorted_keys
        new = torch.sort(self._slot_keys(slots)).values
        if keys.device.type == "cpu":
            # numpy's delete/insert are plain memory moves, several times
            # cheaper than torch's masked kernels at this size.
            k = keys.numpy()
            kept = np.delete(k, np.searchsorted(k, old_keys.numpy()))
            new_np = new.numpy()
            k[:] = np.insert(kept, np.searchsorted(kept, new_np), new_np)
            return
        keep = torch.ones_like(keys, dtype=torch.bool)
        keep[torch.searchsorted(keys, old_keys)] = False
        kept = keys.masked_select(keep)
        new_pos = torch.searchsorted(kept, new) + torch.arange(
            b, device=keys.device
        )
        is_new = torch.zeros_like(keep)
        is_new[new_pos] = True
        keys.masked_scatter_(~is_new, kept)
        keys[new_pos] = new

    def _draw_slots(
        self, target: torch.Tensor, anchors: torch.Tensor, u: torch.Tensor
    ) -> torch.Tensor:
        """A slot of each target cluster, uniform, outside the anchor's group.

        Arguments
        ---------
        target : torch.Tensor
            LongTensor[B], the cluster to draw from, -1 = none.
        anchors : torch.Tensor
            LongTensor[B], the anchors' utterances (their exclusion groups
            are skipped).
        u : torch.Tensor
            Tensor[B] of uniform draws in [0, 1): candidate
            ``floor(u * count)`` of the segment, in key order.

        Returns
        -------
        torch.Tensor
            LongTensor[B], the drawn slot, or -1 where ``target`` is -1 or
            the cluster has no entry outside the anchor's group.
        """
        keys, q, g = self._sorted_keys, self.queue_size, self._num_groups
        base = target.clamp(min=0) * g
        own_group = base + self._groups[anchors]
        # The target cluster's segment of the sorted keys ...
        seg_lo = torch.searchsorted(keys, base * q)
        seg_hi = torch.searchsorted(keys, (base + g) * q)
        # ... and the anchor's group inside it, which is skipped.
        self_lo = torch.searchsorted(keys, own_group * q)
        n_self = torch.searchsorted(keys, (own_group + 1) * q) - self_lo
        count = seg_hi - seg_lo - n_self
        found = (target >= 0) & (count > 0)
        pick = (u * count.clamp(min=1)).long()
        pick = torch.minimum(pick, (count - 1).clamp(min=0))
        pos = seg_lo + pick
        pos = pos + n_self * (pos >= self_lo)
        slots = keys[pos.clamp(max=q - 1)] % q
        return torch.where(found, slots, torch.full_like(slots, -1))

    def _draw_members(
        self, target: torch.Tensor, u: torch.Tensor
    ) -> torch.Tensor:
        """An utterance assigned to each target cluster, uniform (centroid).

        With ``sampling="centroid"`` the positive is the target cluster's
        centroid; this draw stands for it in the diagnostics (its speaker
        and video), so ``speaker_acc`` estimates the share of the target
        cluster's utterances that have the anchor's speaker. The target is
        never the anchor's own cluster (M nearest *other* clusters).

        Arguments
        ---------
        target : torch.Tensor
            LongTensor[B], the target clusters, -1 = none.
        u : torch.Tensor
            Tensor[B] of uniform draws in [0, 1).

        Returns
        -------
        torch.Tensor
            LongTensor[B], the drawn utterance, or -1 where ``target`` is -1
            or the cluster has no utterance.
        """
        if self._members is None:  # reset by set_clusters and on load
            order = torch.sort(self.assignments, stable=True).indices
            self._members = (order, self.assignments[order])
        order, clusters = self._members
        lo = torch.searchsorted(clusters, target.clamp(min=0))
        count = torch.searchsorted(clusters, target, right=True) - lo
        found = (target >= 0) & (count > 0)
        pick = (u * count.clamp(min=1)).long()
        pick = lo + torch.minimum(pick, (count - 1).clamp(min=0))
        utterances = order[pick.clamp(max=order.numel() - 1)]
        return torch.where(found, utterances, torch.full_like(target, -1))
