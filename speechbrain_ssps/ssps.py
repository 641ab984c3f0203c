"""Self-Supervised Positive Sampling (SSPS).

SSPS replaces the same-utterance positive of a self-supervised speaker
framework (DINO, SimCLR) by the embedding of *another* utterance that the
model itself believes is spoken by the same speaker, recorded in another
condition (T. Lepage and R. Dehak, "SSPS: Self-Supervised Positive Sampling
for Robust Self-Supervised Speaker Verification", Interspeech 2025,
arXiv 2505.14561).

The module holds two memory queues:

* the **reference queue** ``Q^``: one row per training utterance (keyed by the
  utterance index, not circular) with the latest L2-normalised
  representation of its clean reference crop, and a *filled* mark;
* the **positive queue** ``Q'``: a FIFO ring of the last ``queue_size``
  positive-branch embeddings (``pos_views`` of them per entry, of size
  ``pos_dim``) with their utterance index.

At the start of every active epoch, spherical k-means clusters the filled
rows of the reference queue and the table of each cluster's ``num_neighbors``
nearest clusters is built. At every active step, each anchor draws a target
cluster (its own: ``"scs"``; one of its nearest: ``"ncs"``) and then,
uniformly, an entry of the positive queue whose utterance belongs to that
cluster and is not the anchor itself; without candidates, the ordinary
positive is kept.

Sampling is fully vectorised. Each slot of the positive queue has the unique
key ``(cluster * G + group) * Q + slot`` (``Q`` slots; the exclusion group of
an utterance is by default the utterance itself, ``G = N``);
the sorted keys are rebuilt once per clustering and then updated by a merge
at every queue update (O(Q) memory passes, no sort). A cluster's candidates
are one contiguous segment of the sorted keys and the anchor's own entries a
contiguous sub-segment of it: four ``searchsorted`` calls give every anchor
both, so one uniform draw per anchor picks a candidate exactly uniformly
while skipping the anchor itself, and ``key % Q`` is the chosen slot. With
speakers as fixed clusters and videos as exclusion groups, the same code is
the label oracle of the paper (a positive of the same speaker from another
video).

Authors
 * speechbrain-ssps contributors
"""

from __future__ import annotations

import math
import time
from typing import Callable, Dict, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from speechbrain.utils.checkpoints import (
    mark_as_loader,
    mark_as_saver,
    register_checkpoint_hooks,
)

from speechbrain_ssps import distributed
from speechbrain_ssps.kmeans import spherical_kmeans

__all__ = ["SAMPLING_METHODS", "SSPS", "SSPSOptionError", "label_oracle"]

SAMPLING_METHODS = ("scs", "ncs")
_NEIGHBOUR_CHUNK = 1024
# Multiplier mixing (seed, call) into one 63-bit seed per draw.
_SEED_STRIDE = 1_000_003


class SSPSOptionError(ValueError):
    """A bad option of :class:`SSPS`, named as the constructor names it.

    The recipe maps :attr:`option` to its command-line name (for example
    ``num_clusters`` -> ``--ssps_num_clusters``).

    Arguments
    ---------
    option : str
        The constructor argument at fault (``"num_clusters"``, ...).
    value : object
        The value it was given.
    message : str
        What is wrong, naming the option in constructor terms.

    Example
    -------
    >>> err = SSPSOptionError("num_clusters", 0, "SSPS: num_clusters ...")
    >>> err.option, err.value, isinstance(err, ValueError)
    ('num_clusters', 0, True)
    """

    def __init__(self, option: str, value, message: str):
        super().__init__(message)
        self.option = option
        self.value = value


_QUEUE_DTYPES = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}
_KMEANS_BACKENDS = ("auto", "torch", "faiss")


def _as_dtype(dtype: Union[str, torch.dtype]) -> torch.dtype:
    if isinstance(dtype, torch.dtype) and dtype in _QUEUE_DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype in _QUEUE_DTYPES:
        return _QUEUE_DTYPES[dtype]
    raise SSPSOptionError(
        "queue_dtype",
        dtype,
        f"SSPS: queue_dtype must be float32, float16 or bfloat16, "
        f"got {dtype!r}",
    )


def _is_integer(value) -> bool:
    try:
        return int(value) == value
    except (TypeError, ValueError):
        return False


def _label_codes(labels: Union[Sequence, torch.Tensor], n: int, name: str):
    if isinstance(labels, torch.Tensor):
        labels = labels.cpu().numpy()
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ValueError(
            f"set_labels: {name} must hold one label per utterance "
            f"({n}), got shape {labels.shape}"
        )
    _, codes = np.unique(labels, return_inverse=True)
    return torch.from_numpy(codes.astype(np.int64))


def _check_options(
    num_utterances,
    repr_dim,
    pos_dim,
    pos_views,
    queue_size,
    num_clusters,
    sampling,
    num_neighbors,
    start_epoch,
    kmeans_iters,
    seed,
    kmeans_backend,
) -> None:
    """SSPS's own option rules (the only place they are written).

    Raises :class:`SSPSOptionError` naming the first bad option.
    """
    for name, value in (
        ("num_utterances", num_utterances),
        ("repr_dim", repr_dim),
        ("pos_dim", pos_dim),
        ("pos_views", pos_views),
        ("queue_size", queue_size),
        ("num_clusters", num_clusters),
        ("num_neighbors", num_neighbors),
        ("kmeans_iters", kmeans_iters),
    ):
        if not _is_integer(value) or value < 1:
            raise SSPSOptionError(
                name,
                value,
                f"SSPS: {name} must be a positive integer, got {value!r}",
            )
    if sampling not in SAMPLING_METHODS:
        raise SSPSOptionError(
            "sampling",
            sampling,
            f"SSPS: sampling must be one of {SAMPLING_METHODS}, "
            f"got {sampling!r}",
        )
    if num_clusters > num_utterances:
        raise SSPSOptionError(
            "num_clusters",
            num_clusters,
            f"SSPS: num_clusters ({num_clusters}) is larger than "
            f"num_utterances ({num_utterances})",
        )
    if sampling == "ncs" and num_neighbors >= num_clusters:
        raise SSPSOptionError(
            "num_neighbors",
            num_neighbors,
            f"SSPS: num_neighbors ({num_neighbors}) must be smaller than "
            f"num_clusters ({num_clusters}) with sampling='ncs' (a "
            "cluster's neighbours exclude itself)",
        )
    if not _is_integer(start_epoch) or start_epoch < 2:
        raise SSPSOptionError(
            "start_epoch",
            start_epoch,
            f"SSPS: start_epoch must be an integer >= 2 (epoch "
            f"start_epoch - 1 fills the queues), got {start_epoch!r}",
        )
    if not _is_integer(seed):
        raise SSPSOptionError(
            "seed", seed, f"SSPS: seed must be an integer, got {seed!r}"
        )
    if kmeans_backend not in _KMEANS_BACKENDS:
        raise SSPSOptionError(
            "kmeans_backend",
            kmeans_backend,
            f"SSPS: kmeans_backend must be one of {_KMEANS_BACKENDS}, "
            f"got {kmeans_backend!r}",
        )


@register_checkpoint_hooks
class SSPS(torch.nn.Module):
    """Self-Supervised Positive Sampling: queues, clustering and sampling.

    Epochs are SpeechBrain's 1-based epochs: the queues are filled from epoch
    ``start_epoch - 1`` and positives are swapped from ``start_epoch`` on.
    A training step calls, in this order, ``sample`` (for the batch's
    anchors), ``swap`` (on the positive-branch embeddings), the framework's
    loss, then ``update`` (pushes the batch into the queues). Under
    ``torch.distributed`` every rank samples for its own anchors, ``update``
    gathers all ranks' rows so that the queues stay identical everywhere,
    and k-means runs on rank 0 and is broadcast.

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
        ``"scs"`` (same cluster) or ``"ncs"`` (one of the ``num_neighbors``
        nearest other clusters; the paper's best setting with M = 1).
    num_neighbors : int
        M, the number of nearest clusters used by ``"ncs"``.
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
        _check_options(
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
        self.queue_dtype = _as_dtype(queue_dtype)
        self.kmeans_backend = kmeans_backend

        n, q, k = self.num_utterances, self.queue_size, self.num_clusters
        m = self.num_neighbors if sampling == "ncs" else 1
        dt = self.queue_dtype
        self.register_buffer("ref_queue", torch.zeros(n, repr_dim, dtype=dt))
        self.register_buffer("ref_filled", torch.zeros(n, dtype=torch.bool))
        self.register_buffer(
            # [Q, V, P]: a slot's views are contiguous (one gather per slot)
            "pos_queue",
            torch.zeros(q, pos_views, pos_dim, dtype=dt),
        )
        self.register_buffer(
            "pos_indices", torch.full((q,), -1, dtype=torch.long)
        )
        self.register_buffer("pos_ptr", torch.zeros((), dtype=torch.long))
        self.register_buffer(
            "assignments", torch.full((n,), -1, dtype=torch.long)
        )
        self.register_buffer("centroids", torch.zeros(k, repr_dim))
        self.register_buffer(
            "neighbors", torch.full((k, m), -1, dtype=torch.long)
        )
        # Derived (rebuilt on load): positive-queue slots sorted by key.
        self.register_buffer(
            "_sorted_keys", n * k * q + torch.arange(q), persistent=False
        )
        self.register_buffer("_groups", torch.arange(n), persistent=False)
        self._num_groups = n
        self.register_buffer(
            "_speakers", torch.empty(0, dtype=torch.long), persistent=False
        )
        self.register_buffer(
            "_videos", torch.empty(0, dtype=torch.long), persistent=False
        )
        # Per-epoch counters: anchors, covered, same speaker, same video.
        self.register_buffer(
            "_counts", torch.zeros(4, dtype=torch.float64), persistent=False
        )
        self.epoch = 0
        self.clustered_epoch = -1
        self.fixed_clusters = False
        self.num_draws = 0
        self.kmeans_seconds = 0.0
        self.nmi: Dict[str, float] = {}
        self._has_clusters = False
        self._last_slots: Optional[torch.Tensor] = None

    # ------------------------------------------------------------------
    # Schedule
    # ------------------------------------------------------------------
    @property
    def filling(self) -> bool:
        """Whether ``update`` writes the queues in the current epoch."""
        return self.epoch >= self.start_epoch - 1

    @property
    def active(self) -> bool:
        """Whether positives are replaced in the current epoch."""
        return self.epoch >= self.start_epoch

    def on_epoch_start(self, epoch: int) -> None:
        """Enters a (1-based) epoch; clusters the reference queue if active.

        Re-entering the epoch that was already clustered (a resumed run)
        keeps the restored clustering and counters, so the run continues
        exactly as it would have without the interruption.

        Arguments
        ---------
        epoch : int
            SpeechBrain's 1-based epoch number.
        """
        epoch = int(epoch)
        if epoch == self.epoch and epoch == self.clustered_epoch:
            return
        self.epoch = epoch
        self._counts.zero_()
        if self.active and not self.fixed_clusters:
            self.cluster()

    def cluster(self) -> None:
        """Runs spherical k-means on the filled rows and installs it."""
        rows = self.ref_filled.nonzero().squeeze(1)
        if rows.numel() < self.num_clusters:
            raise ValueError(
                f"SSPS: num_clusters ({self.num_clusters}) is larger than "
                f"the number of filled reference-queue rows "
                f"({rows.numel()} of {self.num_utterances}) at epoch "
                f"{self.epoch}; lower num_clusters or start SSPS later"
            )
        start = time.perf_counter()
        dev = self.ref_queue.device
        centroids = torch.zeros_like(self.centroids)
        assignments = torch.full_like(self.assignments, -1)
        if distributed.rank() == 0:
            result = spherical_kmeans(
                self.ref_queue[rows].float(),
                self.num_clusters,
                num_iters=self.kmeans_iters,
                seed=self.seed + self.epoch,
                backend=self.kmeans_backend,
            )
            centroids = result.centroids.to(dev)
            assignments[rows] = result.assignments.to(dev)
        if distributed.is_distributed():
            torch.distributed.broadcast(centroids, src=0)
            torch.distributed.broadcast(assignments, src=0)
        self.kmeans_seconds = time.perf_counter() - start
        self.set_clusters(assignments, centroids)

    def set_clusters(
        self,
        assignments: torch.Tensor,
        centroids: torch.Tensor,
        fixed: bool = False,
    ) -> None:
        """Installs a clustering of the utterances.

        Arguments
        ---------
        assignments : torch.Tensor
            LongTensor[N], the cluster of each utterance, -1 = not assigned.
        centroids : torch.Tensor
            Tensor[K, D], the cluster centroids (normalised here).
        fixed : bool
            Keep this clustering for the rest of training instead of running
            k-means at each active epoch (e.g. the label oracle of the
            benchmarks: clusters = speakers).
        """
        k, d = self.centroids.shape
        if tuple(centroids.shape) != (k, d):
            raise ValueError(
                f"set_clusters: centroids must have shape {(k, d)}, "
                f"got {tuple(centroids.shape)}"
            )
        if tuple(assignments.shape) != (self.num_utterances,):
            raise ValueError(
                f"set_clusters: assignments must have shape "
                f"({self.num_utterances},), got {tuple(assignments.shape)}"
            )
        assignments = assignments.to(self.assignments.device, torch.long)
        if bool((assignments >= k).any() | (assignments < -1).any()):
            raise ValueError(
                f"set_clusters: assignments must lie in [-1, {k - 1}]"
            )
        self.assignments.copy_(assignments)
        self.centroids.copy_(F.normalize(centroids.float(), dim=1))
        if self.sampling == "ncs":
            self.neighbors.copy_(self._nearest_clusters(self.centroids))
        else:
            self.neighbors.copy_(
                torch.arange(k, device=self.neighbors.device).unsqueeze(1)
            )
        self._has_clusters = True
        self.fixed_clusters = bool(fixed)
        self.clustered_epoch = self.epoch
        self._rebuild_index()
        if self._speakers.numel():
            self._compute_nmi()

    def _nearest_clusters(self, centroids: torch.Tensor) -> torch.Tensor:
        """The ``num_neighbors`` most similar other centroids of each."""
        k = centroids.shape[0]
        out = torch.empty(
            k, self.num_neighbors, dtype=torch.long, device=centroids.device
        )
        for lo in range(0, k, _NEIGHBOUR_CHUNK):
            hi = min(lo + _NEIGHBOUR_CHUNK, k)
            sim = centroids[lo:hi] @ centroids.T
            own = torch.arange(lo, hi, device=sim.device)
            sim[torch.arange(hi - lo, device=sim.device), own] = -math.inf
            out[lo:hi] = sim.topk(self.num_neighbors, dim=1).indices
        return out

    # ------------------------------------------------------------------
    # Sorted cluster -> queue-slot index
    # ------------------------------------------------------------------
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
        slots = torch.arange(self.queue_size, device=self.pos_indices.device)
        self._sorted_keys = torch.sort(self._slot_keys(slots)).values

    def _replace_in_index(self, slots: torch.Tensor, old_keys: torch.Tensor):
        """Replaces the keys of ``slots`` (distinct) by a sorted merge."""
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

    # ------------------------------------------------------------------
    # Step: sample -> swap -> (loss) -> update
    # ------------------------------------------------------------------
    def _check_indices(self, indices: torch.Tensor, where: str):
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
    def sample(self, indices: torch.Tensor) -> torch.Tensor:
        """Draws a pseudo-positive for each anchor.

        Arguments
        ---------
        indices : torch.Tensor
            LongTensor[B], the utterance index of each anchor.

        Returns
        -------
        torch.Tensor
            LongTensor[B], the utterance index of each anchor's
            pseudo-positive, or -1 where the ordinary positive is kept (SSPS
            inactive, anchor not clustered, or no candidate in the queue).
        """
        self._check_indices(indices, "sample")
        dev = self.pos_indices.device
        indices = indices.to(dev)
        b = indices.numel()
        if not (self.active and self._has_clusters):
            self._last_slots = torch.full(
                (b,), -1, dtype=torch.long, device=dev
            )
            return self._last_slots.clone()
        g = self._num_groups
        u = self._uniform(b).to(dev)
        own = self.assignments[indices]
        column = (u[1] * self.neighbors.shape[1]).long()
        column.clamp_(max=self.neighbors.shape[1] - 1)
        target = self.neighbors[own.clamp(min=0), column]
        target = torch.where(own >= 0, target, torch.full_like(target, -1))

        keys = self._sorted_keys
        q = self.queue_size
        base = target.clamp(min=0) * g
        own_group = base + self._groups[indices]
        seg_lo = torch.searchsorted(keys, base * q)
        seg_hi = torch.searchsorted(keys, (base + g) * q)
        self_lo = torch.searchsorted(keys, own_group * q)
        n_self = torch.searchsorted(keys, (own_group + 1) * q) - self_lo
        count = seg_hi - seg_lo - n_self
        found = (target >= 0) & (count > 0)
        pick = (u[0] * count.clamp(min=1)).long()
        pick = torch.minimum(pick, (count - 1).clamp(min=0))
        pos = seg_lo + pick
        pos = pos + n_self * (pos >= self_lo)
        slots = keys[pos.clamp(max=q - 1)] % q
        slots = torch.where(found, slots, torch.full_like(slots, -1))
        self._last_slots = slots
        positives = torch.where(
            found,
            self.pos_indices[slots.clamp(min=0)],
            torch.full_like(slots, -1),
        )
        self._count(indices, positives, found)
        return positives

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
        first replaced by its pseudo-positive's stored embeddings.

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
            self.sample(indices)
            swapped = self.swap(positives)
        self.update(indices, y_ref, positives.detach())
        return swapped

    def _count(self, anchors, positives, found) -> None:
        """Adds this step's anchors, coverage and label hits (no sync)."""
        self._counts[0] += anchors.numel()
        self._counts[1] += found.sum()
        if self._speakers.numel():
            safe = positives.clamp(min=0)
            for row, labels in ((2, self._speakers), (3, self._videos)):
                same = found & (labels[safe] == labels[anchors])
                self._counts[row] += same.sum()

    def swap(self, z_pos: torch.Tensor) -> torch.Tensor:
        """Replaces positives by the pseudo-positives of the last ``sample``.

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
        stored = self.pos_queue.index_select(0, slots.clamp(min=0))
        stored = stored.transpose(0, 1).to(z_pos)
        return torch.where((slots >= 0)[None, :, None], stored, z_pos)

    @torch.no_grad()
    def update(
        self, indices: torch.Tensor, y_ref: torch.Tensor, z_pos: torch.Tensor
    ) -> None:
        """Pushes a batch into both queues (a no-op before filling starts).

        Under ``torch.distributed`` all ranks' rows are gathered (in rank
        order), so every rank holds identical queues.

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
        if not self.filling:
            return
        dev = self.ref_queue.device
        indices = distributed.all_gather_no_grad(indices.to(dev))
        y_ref = distributed.all_gather_no_grad(y_ref.detach().to(dev))
        z_pos = distributed.all_gather_no_grad(z_pos.detach().to(dev), dim=1)

        self.ref_queue.index_copy_(
            0, indices, F.normalize(y_ref.float(), dim=1).to(self.queue_dtype)
        )
        self.ref_filled[indices] = True

        q = self.queue_size
        if indices.numel() > q:  # only the newest q entries survive
            indices, z_pos = indices[-q:], z_pos[:, -q:]
        count = indices.numel()
        ptr = int(self.pos_ptr)
        slots = (ptr + torch.arange(count, device=dev)) % q
        old_keys = self._slot_keys(slots) if self._has_clusters else None
        # The slots are ptr..ptr+count-1, wrapping at most once: two slices.
        head = min(count, q - ptr)
        z_pos = z_pos.to(self.queue_dtype)
        z_pos = z_pos.transpose(0, 1)  # [B, V, P], the queue's layout
        self.pos_queue[ptr : ptr + head] = z_pos[:head]
        self.pos_indices[ptr : ptr + head] = indices[:head]
        self.pos_queue[: count - head] = z_pos[head:]
        self.pos_indices[: count - head] = indices[head:]
        self.pos_ptr.fill_((ptr + count) % q)
        if self._has_clusters:
            self._replace_in_index(slots, old_keys)

    # ------------------------------------------------------------------
    # Diagnostics
    # ------------------------------------------------------------------
    def set_labels(
        self,
        speakers: Union[Sequence, torch.Tensor],
        videos: Union[Sequence, torch.Tensor],
    ) -> None:
        """Gives speaker and video labels, for diagnostics only.

        They are never used for sampling; they make ``metrics`` report the
        pseudo-positive speaker/video accuracies and the NMI of the k-means
        assignments.

        Arguments
        ---------
        speakers : sequence or torch.Tensor
            One speaker label (any hashable) per utterance.
        videos : sequence or torch.Tensor
            One video/session label per utterance.
        """
        dev = self.assignments.device
        self._speakers = _label_codes(
            speakers, self.num_utterances, "speakers"
        ).to(dev)
        self._videos = _label_codes(videos, self.num_utterances, "videos").to(
            dev
        )
        if self._has_clusters:
            self._compute_nmi()

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
        codes = _label_codes(groups, self.num_utterances, "groups")
        self._groups = codes.to(self.assignments.device)
        self._num_groups = int(codes.max()) + 1
        if self._has_clusters:
            self._rebuild_index()

    def _compute_nmi(self) -> None:
        from sklearn.metrics import normalized_mutual_info_score

        rows = (self.assignments >= 0).nonzero().squeeze(1)
        pred = self.assignments[rows].cpu().numpy()
        self.nmi = {
            f"nmi_{name}": float(
                normalized_mutual_info_score(labels[rows].cpu().numpy(), pred)
            )
            for name, labels in (
                ("speaker", self._speakers),
                ("video", self._videos),
            )
        }

    def metrics(self) -> Dict[str, float]:
        """Diagnostics of the current epoch.

        Under ``torch.distributed`` the step counters are summed over ranks,
        so every rank must call this.

        Returns
        -------
        dict
            ``coverage`` (fraction of anchors that got a pseudo-positive),
            ``kmeans_seconds``, ``filled`` (fraction of the reference queue
            written); with labels, ``speaker_acc`` and ``video_acc`` (among
            pseudo-positives, the fraction from the anchor's speaker / video)
            and ``nmi_speaker``, ``nmi_video`` of the k-means assignments.
        """
        counts = self._counts.clone()
        if distributed.is_distributed():
            torch.distributed.all_reduce(counts)
        anchors, covered, same_spk, same_vid = counts.tolist()
        out = {
            "coverage": covered / anchors if anchors else 0.0,
            "kmeans_seconds": float(self.kmeans_seconds),
            "filled": float(self.ref_filled.float().mean()),
        }
        if self._speakers.numel():
            out["speaker_acc"] = same_spk / covered if covered else 0.0
            out["video_acc"] = same_vid / covered if covered else 0.0
            out.update(self.nmi)
        return out

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
    def _save(self, path) -> None:
        state = {
            "buffers": {k: v.cpu() for k, v in self.state_dict().items()},
            "extra": self.extra_state(),
        }
        torch.save(state, path)

    @mark_as_loader
    def _load(self, path, end_of_epoch: bool = False) -> None:
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
        if self._has_clusters:
            self._rebuild_index()


def label_oracle(
    factory: Callable[..., SSPS],
    speakers: Sequence,
    videos: Sequence,
) -> SSPS:
    """The label oracle of the paper's Table 1: same speaker, other video.

    Builds an SSPS from ``factory`` (e.g. the recipe's
    ``!name:speechbrain_ssps.ssps.SSPS`` partial) with one fixed cluster per
    speaker (codes in sorted order of the speaker names) and the videos as
    exclusion groups, so every pseudo-positive is an utterance of the
    anchor's speaker recorded in another video. The labels are also given
    to :meth:`SSPS.set_labels` for the diagnostics.

    Arguments
    ---------
    factory : callable
        Builds an SSPS from ``num_utterances``, ``num_clusters`` and
        ``sampling`` keyword arguments (the other options preset).
    speakers : sequence
        One speaker label per training utterance (row order of the data).
    videos : sequence
        One video/session label per training utterance.

    Returns
    -------
    SSPS
        With its clustering installed (``fixed``: no k-means is run).

    Example
    -------
    >>> from functools import partial
    >>> factory = partial(SSPS, repr_dim=4, pos_dim=3, queue_size=8)
    >>> spk = ["b", "b", "a", "a", "b", "a"]
    >>> vid = ["v1", "v2", "v3", "v4", "v1", "v3"]
    >>> oracle = label_oracle(factory, spk, vid)
    >>> oracle.assignments.tolist(), oracle.sampling, oracle.fixed_clusters
    ([1, 1, 0, 0, 1, 0], 'scs', True)
    """
    speakers, videos = list(speakers), list(videos)
    names = sorted(set(speakers))
    code = {name: k for k, name in enumerate(names)}
    ssps = factory(
        num_utterances=len(speakers), num_clusters=len(names), sampling="scs"
    )
    ssps.set_exclusion_groups(videos)
    ssps.set_clusters(
        torch.tensor([code[s] for s in speakers]),
        torch.zeros_like(ssps.centroids),
        fixed=True,
    )
    ssps.set_labels(speakers, videos)
    return ssps
