"""The :class:`SSPS` module: sampling, swapping and the training step.

:class:`SSPS` puts together the queues (:mod:`.queues`), the epoch schedule
and clustering (:mod:`.clustering`), the cluster/slot index
(:mod:`.index`) and the diagnostics (:mod:`.diagnostics`), and adds what
happens at every training step, in the words of SSPS.md §3 ("At every
active step, for each anchor i of the batch"):

1. :meth:`SSPS.sample` chooses the target cluster ``ĉ_i`` (SCS: ``c_i``;
   NCS: uniform over the M nearest clusters of ``c_i``),
2. draws ``pos(i)`` uniformly among the entries of ``Q'`` assigned to
   ``ĉ_i``, never ``i`` itself (nor, for the oracle, its video),
3. and keeps the ordinary positive (-1) when there is no such entry or
   ``i`` is not assigned;
4. :meth:`SSPS.swap` replaces the positive embeddings by the stored ones;
5. after the loss, :meth:`SSPS.update` pushes ``(i, z'_i)`` into ``Q'``
   and ``(i, ŷ_i)`` into ``Q^``.

:meth:`SSPS.step` runs 1-5 (the loss in between is the caller's) under the
schedule. The random draws are DDP-invariant (:meth:`SSPS._uniform`).

Authors
 * speechbrain-ssps contributors
"""

from __future__ import annotations

import os
from typing import Optional, Union

import torch
from speechbrain.utils.checkpoints import (
    mark_as_loader,
    mark_as_saver,
    register_checkpoint_hooks,
)

from speechbrain_ssps import distributed
from speechbrain_ssps.ssps.clustering import Clustering
from speechbrain_ssps.ssps.diagnostics import Diagnostics
from speechbrain_ssps.ssps.index import SlotIndex
from speechbrain_ssps.ssps.knn import KNNSampling
from speechbrain_ssps.ssps.options import as_queue_dtype, check_options
from speechbrain_ssps.ssps.queues import Queues

__all__ = ["SSPS"]

# Multiplier mixing (seed, call) into one 63-bit seed per draw.
_SEED_STRIDE = 1_000_003


@register_checkpoint_hooks
class SSPS(Diagnostics, Clustering, KNNSampling, SlotIndex, Queues):
    """Self-Supervised Positive Sampling: queues, clustering and sampling.

    Epochs are SpeechBrain's 1-based epochs: the queues are filled from epoch
    ``start_epoch - 1`` and positives are swapped from ``start_epoch`` on.
    A training step calls, in this order, ``sample`` (for the batch's
    anchors), ``swap`` (on the positive-branch embeddings), the framework's
    loss, then ``update`` (pushes the batch into the queues); ``step`` does
    all of it. Under ``torch.distributed`` every rank samples for its own
    anchors, ``update`` gathers all ranks' rows so that the queues stay
    identical everywhere, and k-means runs on rank 0 and is broadcast.

    Arguments
    ---------
    num_utterances : int
        N, the number of training utterances (rows of the reference queue).
    repr_dim : int
        D, the size of the reference representations (encoder output).
    pos_dim : int
        P, the size of each stored positive embedding.
    pos_views : int
        V, how many embeddings each positive-queue entry holds (DINO: the 2
        teacher global views; SimCLR: 1).
    queue_size : int
        |Q'|, the number of entries of the positive queue (paper: 25,000).
    num_clusters : int
        K of the k-means on the reference queue (paper: 25,000).
    sampling : str
        ``"scs"`` (same cluster), ``"ncs"`` (one of the ``num_neighbors``
        nearest other clusters; the paper's best setting with M = 1),
        ``"knn"`` (one of the M queue entries nearest to the anchor's
        reference representation, :mod:`.knn`; no k-means) or
        ``"centroid"`` (as NCS, but the positive is the target cluster's
        centroid; needs ``pos_dim == repr_dim``).
    num_neighbors : int
        M: nearest clusters for ``"ncs"``/``"centroid"`` (M < K), nearest
        queue entries for ``"knn"`` (M <= |Q'|); unused by ``"scs"``.
    start_epoch : int
        First (1-based) epoch whose positives are replaced; must be >= 2 so
        that one epoch fills the queues first.
    kmeans_iters : int
        Lloyd iterations of the k-means run at each active epoch start.
    seed : int
        Seeds the k-means and the sampler (each step's draws are seeded from
        ``(seed, number of earlier draws)`` and sliced by rank, so resuming
        is exact and the draws do not depend on the number of processes).
    queue_dtype : str or torch.dtype
        Storage type of both queues (``"float16"`` halves their memory);
        values are returned in the caller's dtype.
    kmeans_backend : str
        Backend of :func:`speechbrain_ssps.kmeans.spherical_kmeans`.

    Raises
    ------
    SSPSOptionError
        Naming the first bad option (:mod:`speechbrain_ssps.ssps.options`).

    Example
    -------
    >>> ssps = SSPS(num_utterances=8, repr_dim=4, pos_dim=3, queue_size=8,
    ...             num_clusters=2, sampling="scs", start_epoch=2)
    >>> ssps.on_epoch_start(1)
    >>> ssps.filling, ssps.active
    (True, False)
    >>> idx = torch.arange(8)
    >>> y = torch.randn(8, 4)
    >>> ssps.update(idx, y, torch.randn(1, 8, 3))
    >>> ssps.on_epoch_start(2)
    >>> pos = ssps.sample(idx)
    >>> bool((pos != idx).all())
    True
    >>> ssps.swap(torch.zeros(1, 8, 3)).shape
    torch.Size([1, 8, 3])
    """

    def __init__(
        self,
        num_utterances: int,
        repr_dim: int,
        pos_dim: int,
        pos_views: int = 1,
        queue_size: int = 25000,
        num_clusters: int = 25000,
        sampling: str = "ncs",
        num_neighbors: int = 1,
        start_epoch: int = 2,
        kmeans_iters: int = 10,
        seed: int = 0,
        queue_dtype: Union[str, torch.dtype] = "float32",
        kmeans_backend: str = "auto",
    ):
        super().__init__()
        check_options(
            num_utterances=num_utterances,
            repr_dim=repr_dim,
            pos_dim=pos_dim,
            pos_views=pos_views,
            queue_size=queue_size,
            num_clusters=num_clusters,
            sampling=sampling,
            num_neighbors=num_neighbors,
            start_epoch=start_epoch,
            kmeans_iters=kmeans_iters,
            seed=seed,
            queue_dtype=queue_dtype,
            kmeans_backend=kmeans_backend,
        )
        self.num_utterances = int(num_utterances)
        self.repr_dim = int(repr_dim)
        self.pos_dim = int(pos_dim)
        self.pos_views = int(pos_views)
        self.queue_size = int(queue_size)
        self.num_clusters = int(num_clusters)
        self.sampling = sampling
        self.num_neighbors = int(num_neighbors)
        self.start_epoch = int(start_epoch)
        self.kmeans_iters = int(kmeans_iters)
        self.seed = int(seed)
        self.queue_dtype = as_queue_dtype(queue_dtype)
        self.kmeans_backend = kmeans_backend
        # Buffers in checkpoint order: queues, clustering, then the derived
        # (non-persistent) index and diagnostics.
        self._init_queues()
        self._init_clustering()
        self._init_index()
        self._init_diagnostics()
        self.epoch = 0
        self.num_draws = 0
        self._last_slots: Optional[torch.Tensor] = None

    def _uniform(self, batch: int, columns: int = 2) -> torch.Tensor:
        """Uniform draws [columns, batch] in [0, 1) for this rank's anchors.

        Every rank draws the same [columns, world_size * batch] matrix,
        seeded by (seed, number of earlier draws), and keeps its own slice
        of the global batch: the draws of an anchor do not depend on how
        the global batch is split over processes, and a resumed run
        (``num_draws`` is checkpointed) continues the same sequence.
        """
        world, rank = distributed.world_size(), distributed.rank()
        gen = torch.Generator()
        gen.manual_seed(self.seed * _SEED_STRIDE + self.num_draws)
        self.num_draws += 1
        draws = torch.rand(
            columns, world * batch, generator=gen, dtype=torch.float64
        )
        return draws[:, rank * batch : (rank + 1) * batch]

    @torch.no_grad()
    def anchor_clusters(self, indices: torch.Tensor) -> Optional[torch.Tensor]:
        """The cluster ``c_i`` of each anchor while sampling is on, else None.

        What :meth:`sample` starts from (step 1), exposed for SimCLR's
        false-negative masking (sslsv: ``ssps.sampling.assignments[indices]``).

        Arguments
        ---------
        indices : torch.Tensor
            LongTensor[B], the utterance index of each anchor.

        Returns
        -------
        torch.Tensor or None
            LongTensor[B] (-1 = not assigned), or None when SSPS is not
            active or has no clustering (no masking then).
        """
        if not (self.active and self._has_clusters):
            return None
        self._check_indices(indices, "anchor_clusters")
        return self.assignments[indices.to(self.assignments.device)]

    @torch.no_grad()
    def sample(
        self, indices: torch.Tensor, y_ref: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """Draws a pseudo-positive for each anchor (steps 1-3 above).

        Arguments
        ---------
        indices : torch.Tensor
            LongTensor[B], the utterance index of each anchor.
        y_ref : torch.Tensor, optional
            Tensor[B, D], the anchors' current reference representations;
            used by ``"knn"`` only (None: their stored ``Q^`` rows).

        Returns
        -------
        torch.Tensor
            LongTensor[B], the utterance index of each anchor's
            pseudo-positive, or -1 where the ordinary positive is kept (SSPS
            inactive, anchor not clustered, or no candidate in the queue).
            With ``"centroid"``: an utterance of the target cluster, drawn
            for the diagnostics only (the centroid is the positive).
        """
        self._check_indices(indices, "sample")
        dev = self.pos_indices.device
        indices = indices.to(dev)
        b = indices.numel()
        ready = self._has_clusters or not self.needs_clusters
        if not (self.active and ready):
            self._last_slots = torch.full(
                (b,), -1, dtype=torch.long, device=dev
            )
            return self._last_slots.clone()
        u = self._uniform(b).to(dev)
        if self.sampling == "knn":
            slots = self._draw_knn_slots(indices, y_ref, u[0])
            return self._found(indices, slots)
        # Step 1, target cluster: column floor(u * M) of the anchor's row of
        # the neighbour table (SCS: the cluster itself; -1: not assigned).
        own = self.assignments[indices]
        column = (u[1] * self.neighbors.shape[1]).long()
        column.clamp_(max=self.neighbors.shape[1] - 1)
        target = self.neighbors[own.clamp(min=0), column]
        target = torch.where(own >= 0, target, torch.full_like(target, -1))
        if self.sampling == "centroid":  # _last_slots holds clusters here
            positives = self._draw_members(target, u[0])
            found = positives >= 0
            self._last_slots = torch.where(found, target, -1)
            self._count(indices, positives, found)
            return positives
        # Step 2, pos(i): a slot of Q' uniform among the target cluster's
        # entries outside the anchor's exclusion group (never i itself).
        slots = self._draw_slots(target, indices, u[0])
        return self._found(indices, slots)

    def _found(self, indices: torch.Tensor, slots: torch.Tensor):
        """Step 3 (fallback: slot -1 keeps the ordinary positive), counted."""
        found = slots >= 0
        self._last_slots = slots
        positives = torch.where(
            found,
            self.pos_indices[slots.clamp(min=0)],
            torch.full_like(slots, -1),
        )
        self._count(indices, positives, found)
        return positives

    def swap(self, z_pos: torch.Tensor) -> torch.Tensor:
        """Replaces positives by the pseudo-positives of the last ``sample``.

        Step 4: for SimCLR the stored ``z'`` of ``pos(i)``, for DINO both
        stored teacher global outputs of ``pos(i)``.

        Arguments
        ---------
        z_pos : torch.Tensor
            Tensor[V, B, P], the ordinary positive embeddings of the batch.

        Returns
        -------
        torch.Tensor
            Tensor[V, B, P] in ``z_pos``'s dtype: rows of anchors that got a
            pseudo-positive hold the stored embeddings (no gradient), the
            others are ``z_pos``'s rows (gradient preserved).
        """
        if self._last_slots is None:
            raise RuntimeError("SSPS.swap called before SSPS.sample")
        expected = (self.pos_views, self._last_slots.numel(), self.pos_dim)
        if tuple(z_pos.shape) != expected:
            raise ValueError(
                f"SSPS.swap: z_pos must have shape {expected} (views, batch, "
                f"pos_dim), got {tuple(z_pos.shape)}"
            )
        slots = self._last_slots.to(z_pos.device)
        if self.sampling == "centroid":  # the target clusters' centroids
            stored = self.centroids.index_select(0, slots.clamp(min=0))
            stored = stored[None].expand(self.pos_views, -1, -1).to(z_pos)
        else:
            stored = self.pos_queue.index_select(0, slots.clamp(min=0))
            stored = stored.transpose(0, 1).to(z_pos)
        return torch.where((slots >= 0)[None, :, None], stored, z_pos)

    @torch.no_grad()
    def update(
        self, indices: torch.Tensor, y_ref: torch.Tensor, z_pos: torch.Tensor
    ) -> None:
        """Pushes a batch into both queues (a no-op before filling starts).

        Step 5. Under ``torch.distributed`` all ranks' rows are gathered (in
        rank order), so every rank holds identical queues; the cluster/slot
        index follows the overwritten slots.

        Arguments
        ---------
        indices : torch.Tensor
            LongTensor[B], the utterance index of each item.
        y_ref : torch.Tensor
            Tensor[B, D], representations of the reference crops (normalised
            here).
        z_pos : torch.Tensor
            Tensor[V, B, P], the ordinary positive embeddings to store.
        """
        self._check_update(indices, y_ref, z_pos)
        if not self.filling:
            return
        indices, y_ref, z_pos = self._gather_batch(indices, y_ref, z_pos)
        self._write_references(indices, y_ref)
        indices, z_pos, slots = self._claim_slots(indices, z_pos)
        old_keys = self._slot_keys(slots) if self._has_clusters else None
        self._write_positives(indices, z_pos)
        if self._has_clusters:
            self._replace_in_index(slots, old_keys)

    def step(
        self,
        indices: torch.Tensor,
        y_ref: Optional[torch.Tensor],
        positives: torch.Tensor,
    ) -> torch.Tensor:
        """One training step of SSPS: sample, swap, update, schedule inside.

        Before the filling epoch the positives are returned unchanged (and
        ``y_ref`` may be None); in the filling epoch the batch is pushed into
        the queues; from ``start_epoch`` on, every anchor's positives are
        first replaced by its pseudo-positive's stored embeddings. The queue
        always receives the batch's own (unswapped) positives.

        Arguments
        ---------
        indices : torch.Tensor
            LongTensor[B], the utterance index of each anchor.
        y_ref : torch.Tensor or None
            Tensor[B, D], representations of the reference crops.
        positives : torch.Tensor
            Tensor[V, B, P], the ordinary positive-branch embeddings.

        Returns
        -------
        torch.Tensor
            Tensor[V, B, P], the positives the loss should use.
        """
        if not self.filling:
            return positives
        swapped = positives
        if self.active:
            self.sample(indices, y_ref)  # steps 1-3
            swapped = self.swap(positives)  # step 4
        self.update(indices, y_ref, positives.detach())  # step 5
        return swapped

    # ------------------------------------------------------------------
    # Checkpointing
    # ------------------------------------------------------------------
    def extra_state(self) -> dict:
        """Plain-Python state that is not a buffer (saved with the queues)."""
        return {
            "epoch": self.epoch,
            "clustered_epoch": self.clustered_epoch,
            "num_draws": self.num_draws,
            "kmeans_seconds": float(self.kmeans_seconds),
            "nmi": dict(self.nmi),
            "has_clusters": self._has_clusters,
            "fixed_clusters": self.fixed_clusters,
            "counts": self._counts.cpu(),
        }

    @mark_as_saver
    def _save(self, path: Union[str, os.PathLike]) -> None:
        state = {
            "buffers": {k: v.cpu() for k, v in self.state_dict().items()},
            "extra": self.extra_state(),
        }
        torch.save(state, path)

    @mark_as_loader
    def _load(
        self, path: Union[str, os.PathLike], end_of_epoch: bool = False
    ) -> None:
        del end_of_epoch  # the state is the same either way
        state = torch.load(path, map_location="cpu", weights_only=True)
        self.load_state_dict(state["buffers"])
        extra = state["extra"]
        self.epoch = int(extra["epoch"])
        self.clustered_epoch = int(extra["clustered_epoch"])
        self.num_draws = int(extra["num_draws"])
        self.kmeans_seconds = float(extra["kmeans_seconds"])
        self.nmi = {k: float(v) for k, v in extra["nmi"].items()}
        self._has_clusters = bool(extra["has_clusters"])
        self.fixed_clusters = bool(extra.get("fixed_clusters", False))
        self._counts.copy_(extra["counts"])
        self._last_slots = None
        self._members = None
        if self._has_clusters:
            self._rebuild_index()
