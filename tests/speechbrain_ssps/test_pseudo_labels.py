"""Pseudo speaker labels: k-means + average-linkage merging, and metrics."""

import pytest
import torch

from speechbrain_ssps.pseudo_labels import (
    agglomerative_merge,
    cluster_embeddings,
    clustering_metrics,
    format_label,
)


def _blobs(num_blobs, per_blob, dim=16, spread=0.02, seed=0):
    """Well separated blobs on the sphere; returns points and blob ids."""
    gen = torch.Generator().manual_seed(seed)
    centres = torch.linalg.qr(torch.randn(dim, dim, generator=gen))[0]
    centres = centres[:num_blobs]  # orthonormal directions
    points = centres.repeat_interleave(per_blob, 0)
    points = points + spread * torch.randn(points.shape, generator=gen)
    blob = torch.arange(num_blobs).repeat_interleave(per_blob)
    perm = torch.randperm(len(blob), generator=gen)
    return points[perm], blob[perm]


def _same_partition(a, b):
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def test_separated_blobs_recovered_exactly():
    points, blob = _blobs(num_blobs=4, per_blob=30)
    result = cluster_embeddings(points, num_clusters=12, num_speakers=4)
    assert result.num_speakers == 4
    assert sorted(set(result.labels.tolist())) == [0, 1, 2, 3]
    assert _same_partition(result.labels, blob)
    # k-means over-clusters, the merge maps every cluster to one blob.
    assert len(set(result.kmeans_labels.tolist())) > 4
    assert torch.equal(
        result.cluster_to_speaker[result.kmeans_labels], result.labels
    )
    metrics = clustering_metrics(result.labels.tolist(), blob.tolist())
    assert metrics["nmi_speaker"] == pytest.approx(1.0)
    assert metrics["ari_speaker"] == pytest.approx(1.0)
    assert metrics["sizes"] == [30, 30, 30, 30]


def test_labels_numbered_by_first_utterance():
    points, _ = _blobs(num_blobs=3, per_blob=10, seed=3)
    labels = cluster_embeddings(points, 9, 3).labels.tolist()
    first_seen = []
    for label in labels:
        if label not in first_seen:
            first_seen.append(label)
    assert first_seen == [0, 1, 2]


def test_k2_equal_k1_leaves_kmeans_labels():
    from speechbrain_ssps.kmeans import spherical_kmeans

    points, _ = _blobs(num_blobs=3, per_blob=10, seed=1)
    result = cluster_embeddings(points, 6, 6, seed=5)
    expected = spherical_kmeans(points, 6, num_iters=10, seed=5)
    assert torch.equal(result.labels, expected.assignments)
    assert torch.equal(result.kmeans_labels, expected.assignments)


def test_kmeans_method_clusters_straight_into_k2():
    points, blob = _blobs(num_blobs=3, per_blob=20, seed=2)
    result = cluster_embeddings(points, 10, 3, method="kmeans")
    assert len(set(result.labels.tolist())) <= 3
    assert result.kmeans_labels.max() < 3


@pytest.mark.parametrize(
    "k1, k2, message",
    [
        (4, 5, "must not exceed"),
        (50, 2, "larger than the number"),
        (4, 0, ">= 1"),
    ],
)
def test_bad_cluster_counts_rejected(k1, k2, message):
    points, _ = _blobs(num_blobs=2, per_blob=10)
    with pytest.raises(ValueError, match=message):
        cluster_embeddings(points, k1, k2)


def test_unknown_method_rejected():
    points, _ = _blobs(num_blobs=2, per_blob=5)
    with pytest.raises(ValueError, match="method"):
        cluster_embeddings(points, 4, 2, method="spectral")


def test_average_linkage_hand_case():
    # Angles 0, 10, 20 degrees and 90, 95: average linkage to 2 groups.
    import math

    angles = [0, 10, 20, 90, 95]
    pts = torch.tensor(
        [[math.cos(math.radians(a)), math.sin(math.radians(a))] for a in angles]
    )
    assert agglomerative_merge(pts, 2).tolist() == [0, 0, 0, 1, 1]
    assert agglomerative_merge(pts, 1).tolist() == [0] * 5
    assert agglomerative_merge(pts, 5).tolist() == [0, 1, 2, 3, 4]
    # Average linkage: single and complete linkage would both give
    # [0, 0, 1, 1, 1, 1] here.
    angles = [9, 25, 55, 79, 100, 103]
    pts6 = torch.tensor(
        [[math.cos(math.radians(a)), math.sin(math.radians(a))] for a in angles]
    )
    assert agglomerative_merge(pts6, 2).tolist() == [0, 0, 0, 1, 1, 1]
    # Exactly K groups even with tied distances (four identical points).
    tied = torch.ones(4, 3)
    assert len(set(agglomerative_merge(tied, 2).tolist())) == 2
    with pytest.raises(ValueError, match="num_clusters"):
        agglomerative_merge(pts, 6)


def test_metrics_known_cases():
    speakers = ["a", "a", "a", "a", "b", "b", "b", "b"]
    videos = ["a1", "a1", "a2", "a2", "b1", "b1", "b1", "b2"]
    # Perfect speaker clustering: NMI = ARI = 1; clusters mix two videos,
    # cluster b is dominated by b1 (3 of 4), cluster a is not (2 of 4).
    perfect = clustering_metrics([0, 0, 0, 0, 1, 1, 1, 1], speakers, videos)
    assert perfect["nmi_speaker"] == pytest.approx(1.0)
    assert perfect["ari_speaker"] == pytest.approx(1.0)
    assert perfect["purity_speaker"] == pytest.approx(1.0)
    assert perfect["video_dominated_share"] == pytest.approx(0.5)
    # Clustering by video: NMI/ARI against videos are 1.
    by_video = clustering_metrics(videos, speakers, videos)
    assert by_video["nmi_video"] == pytest.approx(1.0)
    assert by_video["ari_video"] == pytest.approx(1.0)
    assert by_video["video_dominated_share"] == pytest.approx(1.0)
    assert by_video["num_clusters"] == 4
    assert by_video["sizes"] == [3, 2, 2, 1]
    # One cluster: NMI 0, ARI 0.
    single = clustering_metrics([0] * 8, speakers, videos)
    assert single["nmi_speaker"] == pytest.approx(0.0)
    assert single["ari_speaker"] == pytest.approx(0.0)
    assert single["purity_speaker"] == pytest.approx(0.5)
    # Without true labels only the sizes are reported.
    bare = clustering_metrics([0, 1, 1])
    assert "nmi_speaker" not in bare and bare["size_max"] == 2
    with pytest.raises(ValueError, match="speakers"):
        clustering_metrics([0, 1], speakers=["a"])


def test_format_label():
    assert format_label(0, 10) == "pl00000"
    assert format_label(123456, 200000) == "pl123456"
    with pytest.raises(ValueError):
        format_label(10, 10)
