"""SSPS's epoch schedule and the clustering of the reference queue.

Epochs are SpeechBrain's 1-based epochs. The queues are written from epoch
``start_epoch - 1`` on (:attr:`~Clustering.filling`) and positives are
replaced from ``start_epoch`` on (:attr:`~Clustering.active`). At the start
of every active epoch, spherical k-means with K clusters runs on the filled
rows of the reference queue (on rank 0, then broadcast), giving the
assignment ``c_i`` of every utterance and the centroids ``m_k``; for
neighbouring-cluster sampling, each cluster's M nearest other clusters are
tabulated (SSPS.md §3). A clustering can also be installed by hand and kept
(``set_clusters(..., fixed=True)``, the label oracle).

Example
-------
>>> from speechbrain_ssps.ssps import SSPS
>>> ssps = SSPS(num_utterances=6, repr_dim=2, pos_dim=1, queue_size=6,
...             num_clusters=3, sampling="ncs", num_neighbors=1)
>>> ssps.set_clusters(torch.tensor([0, 0, 1, 1, 2, -1]),
...                   torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]]))
>>> ssps.neighbors.tolist()  # each cluster's nearest other cluster
[[1], [0], [1]]
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from speechbrain_ssps import distributed
from speechbrain_ssps.kmeans import spherical_kmeans
from speechbrain_ssps.precision import full_precision
from speechbrain_ssps.ssps.index import nearest_clusters
from speechbrain_ssps.ssps.options import CLUSTER_NEIGHBOUR_METHODS

__all__ = ["Clustering"]


class Clustering(torch.nn.Module):
    """Schedule, k-means and installed clustering of SSPS.

    A mixin of :class:`~speechbrain_ssps.ssps.SSPS`: it owns the buffers
    ``assignments`` (LongTensor[N], -1 = not assigned), ``centroids``
    (Tensor[K, D]) and ``neighbors`` (LongTensor[K, M], each cluster's
    target clusters: its M nearest others with NCS, itself with SCS).
    """

    # Set by SSPS.__init__ and the other parts of SSPS.
    num_utterances: int
    repr_dim: int
    num_clusters: int
    num_neighbors: int
    sampling: str
    start_epoch: int
    kmeans_iters: int
    kmeans_backend: str
    seed: int
    epoch: int
    ref_queue: torch.Tensor
    ref_filled: torch.Tensor
    _counts: torch.Tensor
    _speakers: torch.Tensor

    def _init_clustering(self) -> None:
        """Registers an empty clustering."""
        n, k = self.num_utterances, self.num_clusters
        m = (
            self.num_neighbors
            if self.sampling in CLUSTER_NEIGHBOUR_METHODS
            else 1
        )
        self.register_buffer(
            "assignments", torch.full((n,), -1, dtype=torch.long)
        )
        self.register_buffer("centroids", torch.zeros(k, self.repr_dim))
        self.register_buffer(
            "neighbors", torch.full((k, m), -1, dtype=torch.long)
        )
        self.clustered_epoch = -1
        self.fixed_clusters = False
        self.kmeans_seconds = 0.0
        self._has_clusters = False

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
        if self.active and not self.fixed_clusters and self.needs_clusters:
            self.cluster()

    @property
    def needs_clusters(self) -> bool:
        """Whether sampling uses the k-means (every method but knn)."""
        return self.sampling != "knn"

    def cluster(self) -> None:
        """Runs spherical k-means on the filled rows and installs it.

        The k-means is seeded by ``seed + epoch`` and runs on rank 0; its
        result is broadcast, so every rank holds the same clustering.

        Raises
        ------
        ValueError
            If fewer rows than ``num_clusters`` are filled.
        """
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
            result = spherical_kmeans(  # float32 (autocast off inside)
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
        with full_precision(dev):  # the centroid similarities of NCS
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
        if self.sampling in CLUSTER_NEIGHBOUR_METHODS:
            self.neighbors.copy_(
                nearest_clusters(self.centroids, self.num_neighbors)
            )
        else:
            self.neighbors.copy_(
                torch.arange(k, device=self.neighbors.device).unsqueeze(1)
            )
        self._has_clusters = True
        self._members = None  # centroid sampling's member index
        self.fixed_clusters = bool(fixed)
        self.clustered_epoch = self.epoch
        self._rebuild_index()
        if self._speakers.numel():
            self._compute_nmi()
