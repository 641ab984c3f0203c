"""Pseudo speaker labels from the embeddings of a self-supervised encoder.

Stage two of the SSL speaker-verification recipe: embed every training
utterance with the exported SSL encoder, cluster the embeddings into
pseudo speakers, then train a supervised (AAM-softmax) encoder on those
labels. Clustering is done in two steps:

1. spherical k-means (:func:`speechbrain_ssps.kmeans.spherical_kmeans`)
   into K1 clusters (over-clustering: K1 well above the number of
   speakers);
2. agglomerative merging of the non-empty k-means centroids into K2
   clusters with cosine distance and average linkage (UPGMA; scipy's
   ``linkage``, whose first ``C - K2`` merges are replayed so that exactly
   K2 clusters remain). Each utterance takes the label of its centroid.

``method="kmeans"`` skips the merging and runs k-means with K2 clusters.
The linkage holds the ``C (C - 1) / 2`` pairwise distances of the C
non-empty centroids in float64 (2.5 GB for C = 25,000).

:func:`clustering_metrics` measures a labelling against the true speakers
and videos when the manifest has them: cluster sizes, NMI and ARI, and the
share of clusters in which a single video holds more than half of the
utterances (a cluster built around a recording channel rather than a
speaker).

Authors
-------
* SSPS contributors 2025
"""

from collections import Counter
from dataclasses import dataclass
from typing import Dict, Optional, Sequence

import numpy as np
import torch

from speechbrain_ssps.kmeans import spherical_kmeans

__all__ = [
    "METHODS",
    "PseudoLabels",
    "agglomerative_merge",
    "cluster_embeddings",
    "clustering_metrics",
    "format_label",
]

#: Clustering methods of :func:`cluster_embeddings`.
METHODS = ("kmeans-ahc", "kmeans")


@dataclass
class PseudoLabels:
    """Output of :func:`cluster_embeddings`.

    Arguments
    ---------
    labels : torch.Tensor
        LongTensor [N], the pseudo speaker of each utterance, in
        ``[0, num_speakers)``.
    kmeans_labels : torch.Tensor
        LongTensor [N], the k-means cluster of each utterance.
    cluster_to_speaker : torch.Tensor
        LongTensor [K], the pseudo speaker of each k-means cluster (-1 for a
        cluster left empty by k-means).
    num_speakers : int
        K2, the number of distinct labels.
    """

    labels: torch.Tensor
    kmeans_labels: torch.Tensor
    cluster_to_speaker: torch.Tensor
    num_speakers: int


def format_label(index: int, num_labels: int) -> str:
    """The manifest label of pseudo speaker ``index`` (``pl`` + digits).

    Labels are zero-padded to at least 5 digits (as many as the largest
    label needs) so that they sort in index order.

    Arguments
    ---------
    index : int
        The pseudo speaker, ``0 <= index < num_labels``.
    num_labels : int
        Number of pseudo speakers.

    Returns
    -------
    str
        E.g. ``pl00042``.

    Example
    -------
    >>> format_label(42, 100), format_label(7, 123456)
    ('pl00042', 'pl000007')
    """
    if not 0 <= int(index) < int(num_labels):
        raise ValueError(f"label {index} is not in [0, {num_labels})")
    width = max(5, len(str(int(num_labels) - 1)))
    return f"pl{int(index):0{width}d}"


def agglomerative_merge(
    centroids: torch.Tensor, num_clusters: int
) -> torch.Tensor:
    """Merges points into ``num_clusters`` groups (cosine, average linkage).

    Runs scipy's average-linkage clustering on the cosine distances of the
    rows and replays its first ``C - num_clusters`` merges, so exactly
    ``num_clusters`` groups remain even when distances tie. Groups are
    numbered by their lowest row index (with ``num_clusters == C`` row ``i``
    keeps label ``i``).

    Arguments
    ---------
    centroids : torch.Tensor
        [C, D] points (e.g. k-means centroids), no all-zero row.
    num_clusters : int
        Number of groups, ``1 <= num_clusters <= C``.

    Returns
    -------
    torch.Tensor
        LongTensor [C], the group of each row.

    Example
    -------
    >>> points = torch.tensor(
    ...     [[1.0, 0.0], [0.0, 1.0], [0.99, 0.1], [0.1, 0.99], [-1.0, 0.1]]
    ... )
    >>> agglomerative_merge(points, 3).tolist()
    [0, 1, 0, 1, 2]
    >>> agglomerative_merge(points, 5).tolist()
    [0, 1, 2, 3, 4]
    """
    from scipy.cluster.hierarchy import linkage

    count = int(centroids.shape[0])
    num_clusters = int(num_clusters)
    if not 1 <= num_clusters <= count:
        raise ValueError(
            f"num_clusters must be in [1, {count}] (the number of points), "
            f"got {num_clusters}"
        )
    parent = list(range(count))
    if num_clusters < count:
        points = centroids.detach().to("cpu", torch.float64).numpy()
        norms = np.linalg.norm(points, axis=1)
        if not np.all(norms > 0) or not np.all(np.isfinite(points)):
            raise ValueError("points must be finite and not all zero")
        tree = linkage(points / norms[:, None], "average", metric="cosine")

        def root(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        # Row j of the linkage joins nodes a and b into node count + j;
        # node ids >= count stand for the merged group of that row.
        representative = list(range(count))
        for j in range(count - num_clusters):
            a, b = int(tree[j, 0]), int(tree[j, 1])
            ra, rb = root(representative[a]), root(representative[b])
            low, high = min(ra, rb), max(ra, rb)
            parent[high] = low
            representative.append(low)
        parent = [root(i) for i in range(count)]
    # Number the groups by their lowest member.
    numbers: Dict[int, int] = {}
    groups = [numbers.setdefault(p, len(numbers)) for p in parent]
    return torch.tensor(groups, dtype=torch.long)


def cluster_embeddings(
    embeddings: torch.Tensor,
    num_clusters: int,
    num_speakers: int,
    method: str = "kmeans-ahc",
    num_iters: int = 10,
    seed: int = 0,
) -> PseudoLabels:
    """Pseudo speaker labels: k-means, then merging of its centroids.

    Arguments
    ---------
    embeddings : torch.Tensor
        [N, D] utterance embeddings (L2-normalised inside k-means).
    num_clusters : int
        K1, the k-means clusters (``num_speakers <= K1 <= N``).
    num_speakers : int
        K2, the pseudo speakers. With ``K2 == K1`` the k-means labels are
        returned unchanged; otherwise pseudo speakers are numbered in the
        order of their first utterance.
    method : str
        ``"kmeans-ahc"`` (k-means into K1, average-linkage merging into K2)
        or ``"kmeans"`` (k-means straight into K2; K1 is only checked).
    num_iters : int
        k-means iterations.
    seed : int
        k-means initialisation seed.

    Returns
    -------
    PseudoLabels
        Labels, k-means labels and the cluster-to-speaker map.

    Raises
    ------
    ValueError
        For an unknown method, ``K2 > K1``, ``K1 > N``, or fewer non-empty
        k-means clusters than K2.

    Example
    -------
    >>> x = torch.tensor(
    ...     [[1.0, 0.0], [0.98, 0.2], [0.9, 0.4], [0.0, 1.0], [0.2, 0.98]]
    ... )
    >>> result = cluster_embeddings(x, num_clusters=4, num_speakers=2)
    >>> result.labels.tolist()
    [0, 0, 0, 1, 1]
    >>> result.num_speakers
    2
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    num_clusters, num_speakers = int(num_clusters), int(num_speakers)
    num_rows = int(embeddings.shape[0]) if embeddings.dim() else 0
    if num_speakers < 1:
        raise ValueError(f"num_speakers must be >= 1, got {num_speakers}")
    if num_speakers > num_clusters:
        raise ValueError(
            f"num_speakers (K2={num_speakers}) must not exceed num_clusters "
            f"(K1={num_clusters}): merging cannot create clusters"
        )
    if num_clusters > num_rows:
        raise ValueError(
            f"num_clusters (K1={num_clusters}) is larger than the number of "
            f"utterances ({num_rows})"
        )
    kmeans_k = num_speakers if method == "kmeans" else num_clusters
    result = spherical_kmeans(
        embeddings, kmeans_k, num_iters=num_iters, seed=seed
    )
    assignments = result.assignments.cpu()
    if kmeans_k == num_speakers:
        identity = torch.arange(kmeans_k)
        return PseudoLabels(assignments, assignments, identity, num_speakers)
    counts = torch.bincount(assignments, minlength=kmeans_k)
    used = torch.nonzero(counts > 0).flatten()
    if len(used) < num_speakers:
        raise ValueError(
            f"k-means left only {len(used)} non-empty clusters (fewer than "
            f"num_speakers={num_speakers}); lower --num_speakers or check "
            "for duplicated embeddings"
        )
    merged = agglomerative_merge(result.centroids.cpu()[used], num_speakers)
    # Number the pseudo speakers by their first utterance.
    order: Dict[int, int] = {}
    for speaker in merged[torch.searchsorted(used, assignments)].tolist():
        order.setdefault(speaker, len(order))
    renumber = torch.tensor([order[s] for s in range(num_speakers)])
    cluster_to_speaker = torch.full((kmeans_k,), -1, dtype=torch.long)
    cluster_to_speaker[used] = renumber[merged]
    labels = cluster_to_speaker[assignments]
    return PseudoLabels(labels, assignments, cluster_to_speaker, num_speakers)


def _dominated_share(labels: Sequence, groups: Sequence) -> float:
    """Share of clusters where one group holds more than half the members."""
    members: Dict[object, Counter] = {}
    for label, group in zip(labels, groups):
        members.setdefault(label, Counter())[group] += 1
    if not members:
        return 0.0
    dominated = sum(
        1
        for counter in members.values()
        if max(counter.values()) > 0.5 * sum(counter.values())
    )
    return dominated / len(members)


def _purity(labels: Sequence, groups: Sequence) -> float:
    """Share of utterances in their cluster's majority group."""
    members: Dict[object, Counter] = {}
    for label, group in zip(labels, groups):
        members.setdefault(label, Counter())[group] += 1
    total = sum(sum(c.values()) for c in members.values())
    return sum(max(c.values()) for c in members.values()) / max(total, 1)


def clustering_metrics(
    labels: Sequence,
    speakers: Optional[Sequence] = None,
    videos: Optional[Sequence] = None,
) -> Dict[str, object]:
    """Cluster sizes, and agreement with true speakers / videos if known.

    NMI is scikit-learn's (arithmetic normalisation), ARI the adjusted
    Rand index. Purity is the share of utterances that belong to their
    cluster's majority speaker. ``video_dominated_share`` is the share of
    clusters in which one video holds more than half of the utterances.

    Arguments
    ---------
    labels : sequence
        Cluster label of each utterance.
    speakers : sequence, optional
        True speaker of each utterance.
    videos : sequence, optional
        Video (session) of each utterance; videos of different speakers
        must have different names (e.g. ``spk/video``).

    Returns
    -------
    dict
        ``num_clusters``, ``sizes`` (largest first), ``size_min``,
        ``size_median``, ``size_max``; with speakers ``num_true_speakers``,
        ``nmi_speaker``, ``ari_speaker``, ``purity_speaker``; with videos
        ``nmi_video``, ``ari_video``, ``video_dominated_share``.

    Example
    -------
    >>> m = clustering_metrics(
    ...     [0, 0, 1, 1], speakers=["a", "a", "b", "b"],
    ...     videos=["a1", "a2", "b1", "b1"],
    ... )
    >>> m["sizes"], m["nmi_speaker"], m["ari_speaker"]
    ([2, 2], 1.0, 1.0)
    >>> m["video_dominated_share"]
    0.5
    """
    from sklearn.metrics import (
        adjusted_rand_score,
        normalized_mutual_info_score,
    )

    labels = [str(x) for x in labels]
    for name, values in (("speakers", speakers), ("videos", videos)):
        if values is not None and len(values) != len(labels):
            raise ValueError(
                f"{name} has {len(values)} entries for {len(labels)} labels"
            )
    sizes = sorted(Counter(labels).values(), reverse=True)
    metrics: Dict[str, object] = {
        "num_utterances": len(labels),
        "num_clusters": len(sizes),
        "sizes": sizes,
        "size_min": sizes[-1] if sizes else 0,
        "size_median": float(np.median(sizes)) if sizes else 0.0,
        "size_max": sizes[0] if sizes else 0,
    }
    if speakers is not None and labels:
        speakers = [str(x) for x in speakers]
        metrics["num_true_speakers"] = len(set(speakers))
        metrics["nmi_speaker"] = float(
            normalized_mutual_info_score(speakers, labels)
        )
        metrics["ari_speaker"] = float(adjusted_rand_score(speakers, labels))
        metrics["purity_speaker"] = _purity(labels, speakers)
    if videos is not None and labels:
        videos = [str(x) for x in videos]
        metrics["nmi_video"] = float(
            normalized_mutual_info_score(videos, labels)
        )
        metrics["ari_video"] = float(adjusted_rand_score(videos, labels))
        metrics["video_dominated_share"] = _dominated_share(labels, videos)
    return metrics
