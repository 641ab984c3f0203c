"""The two memory queues of SSPS: reference queue Q^ and positive queue Q'.

* The **reference queue** ``Q^`` (``ref_queue``, N x D) holds one row per
  training utterance, keyed by the utterance index (not circular): the
  latest L2-normalised representation of its clean reference crop, with a
  *filled* mark (``ref_filled``). K-means clusters its filled rows.
* The **positive queue** ``Q'`` (``pos_queue``, Q x V x P) is a FIFO ring
  of the last Q positive-branch entries, each of V embeddings of size P
  (DINO: the 2 teacher global views; SimCLR: 1), with the utterance of each
  slot (``pos_indices``, -1 = empty) and the next slot to write
  (``pos_ptr``). Pseudo-positives are drawn from it.

:class:`Queues` is the part of :class:`~speechbrain_ssps.ssps.SSPS` that
owns these buffers; their names are the checkpoint's keys.

Example
-------
>>> from speechbrain_ssps.ssps import SSPS
>>> ssps = SSPS(num_utterances=5, repr_dim=2, pos_dim=1, queue_size=3,
...             num_clusters=1, sampling="scs")
>>> ssps.on_epoch_start(1)
>>> z = torch.arange(5.0).view(1, 5, 1)  # [V, B, P]
>>> ssps.update(torch.arange(5), torch.ones(5, 2), z)
>>> ssps.pos_indices.tolist(), int(ssps.pos_ptr)  # the newest 3 entries
([2, 3, 4], 0)
>>> ssps.ref_filled.tolist()
[True, True, True, True, True]
"""

from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F

from speechbrain_ssps import distributed

__all__ = ["Queues"]


class Queues(torch.nn.Module):
    """Storage, ring pointer and row updates of ``Q^`` and ``Q'``.

    A mixin of :class:`~speechbrain_ssps.ssps.SSPS`, which sets the sizes
    below and calls :meth:`_init_queues` in its constructor. Writing the
    positive queue is split in two (:meth:`_claim_slots`, then
    :meth:`_write_positives`) so that the caller can read the keys of the
    overwritten slots in between, for the cluster/slot index.
    """

    # Set by SSPS.__init__.
    num_utterances: int
    repr_dim: int
    pos_dim: int
    pos_views: int
    queue_size: int
    queue_dtype: torch.dtype

    def _init_queues(self) -> None:
        """Registers the (empty) queue buffers."""
        n, q, dt = self.num_utterances, self.queue_size, self.queue_dtype
        self.register_buffer(
            "ref_queue", torch.zeros(n, self.repr_dim, dtype=dt)
        )
        self.register_buffer("ref_filled", torch.zeros(n, dtype=torch.bool))
        self.register_buffer(
            # [Q, V, P]: a slot's views are contiguous (one gather per slot)
            "pos_queue",
            torch.zeros(q, self.pos_views, self.pos_dim, dtype=dt),
        )
        self.register_buffer(
            "pos_indices", torch.full((q,), -1, dtype=torch.long)
        )
        self.register_buffer("pos_ptr", torch.zeros((), dtype=torch.long))

    def _check_indices(self, indices: torch.Tensor, where: str) -> None:
        """Raises unless ``indices`` is a 1-D tensor of utterance rows."""
        if indices.dim() != 1 or indices.dtype not in (torch.long, torch.int):
            raise ValueError(
                f"SSPS.{where}: indices must be a 1-D integer tensor, got "
                f"{indices.dtype} of shape {tuple(indices.shape)}"
            )
        low, high = torch.aminmax(indices) if indices.numel() else (0, 0)
        if indices.numel() and (
            int(low) < 0 or int(high) >= self.num_utterances
        ):
            raise ValueError(
                f"SSPS.{where}: utterance indices must lie in "
                f"[0, {self.num_utterances - 1}]"
            )

    def _check_update(
        self, indices: torch.Tensor, y_ref: torch.Tensor, z_pos: torch.Tensor
    ) -> None:
        """Raises unless the arguments of ``update`` fit the queues."""
        self._check_indices(indices, "update")
        b = indices.numel()
        if tuple(y_ref.shape) != (b, self.repr_dim):
            raise ValueError(
                f"SSPS.update: y_ref must have shape {(b, self.repr_dim)}, "
                f"got {tuple(y_ref.shape)}"
            )
        if tuple(z_pos.shape) != (self.pos_views, b, self.pos_dim):
            raise ValueError(
                f"SSPS.update: z_pos must have shape "
                f"{(self.pos_views, b, self.pos_dim)}, got "
                f"{tuple(z_pos.shape)}"
            )

    def _gather_batch(
        self, indices: torch.Tensor, y_ref: torch.Tensor, z_pos: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """All ranks' rows in rank order, detached, on the queues' device.

        Without ``torch.distributed`` this rank's rows are returned as they
        are, so every rank ends up with identical queues either way.
        """
        dev = self.ref_queue.device
        return (
            distributed.all_gather_no_grad(indices.to(dev)),
            distributed.all_gather_no_grad(y_ref.detach().to(dev)),
            distributed.all_gather_no_grad(z_pos.detach().to(dev), dim=1),
        )

    def _write_references(
        self, indices: torch.Tensor, y_ref: torch.Tensor
    ) -> None:
        """Stores normalise(``y_ref``) in the rows ``indices`` of ``Q^``."""
        rows = F.normalize(y_ref.float(), dim=1).to(self.queue_dtype)
        self.ref_queue.index_copy_(0, indices, rows)
        self.ref_filled[indices] = True

    def _claim_slots(
        self, indices: torch.Tensor, z_pos: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The entries of a batch that survive, and the slots they will take.

        Arguments
        ---------
        indices : torch.Tensor
            LongTensor[B], the utterance of each entry.
        z_pos : torch.Tensor
            Tensor[V, B, P], the embeddings of each entry.

        Returns
        -------
        indices, z_pos : torch.Tensor
            The newest ``min(B, Q)`` entries (a batch larger than the queue
            overwrites itself).
        slots : torch.Tensor
            LongTensor, the ring slots ``ptr, ptr + 1, ...`` (mod Q) that
            :meth:`_write_positives` fills with them.
        """
        q = self.queue_size
        if indices.numel() > q:
            indices, z_pos = indices[-q:], z_pos[:, -q:]
        ptr = int(self.pos_ptr)
        arange = torch.arange(indices.numel(), device=indices.device)
        return indices, z_pos, (ptr + arange) % q

    def _write_positives(
        self, indices: torch.Tensor, z_pos: torch.Tensor
    ) -> None:
        """Writes at most Q entries at the ring pointer and advances it.

        Arguments
        ---------
        indices : torch.Tensor
            LongTensor[B], B <= Q, the utterance of each entry.
        z_pos : torch.Tensor
            Tensor[V, B, P], stored in the queue's dtype.
        """
        q, count, ptr = self.queue_size, indices.numel(), int(self.pos_ptr)
        # The slots are ptr..ptr+count-1, wrapping at most once: two slices.
        head = min(count, q - ptr)
        z_pos = z_pos.to(self.queue_dtype).transpose(0, 1)  # [B, V, P]
        self.pos_queue[ptr : ptr + head] = z_pos[:head]
        self.pos_indices[ptr : ptr + head] = indices[:head]
        self.pos_queue[: count - head] = z_pos[head:]
        self.pos_indices[: count - head] = indices[head:]
        self.pos_ptr.fill_((ptr + count) % q)
