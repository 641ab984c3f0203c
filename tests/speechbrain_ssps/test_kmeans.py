"""Tests for speechbrain_ssps.kmeans (spherical k-means, both backends)."""

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score

from speechbrain_ssps.kmeans import (
    KMeansResult,
    available_backends,
    default_backend,
    spherical_kmeans,
)

BACKENDS = [
    "torch",
    pytest.param(
        "faiss",
        marks=pytest.mark.skipif(
            "faiss" not in available_backends(), reason="faiss not installed"
        ),
    ),
]


def initial_rows(num_rows, num_clusters, seed):
    """The rows the spec says seed the centroids (K distinct, seeded)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(num_rows, generator=generator)[:num_clusters]


def blobs(num_rows, num_groups, dim, noise, seed, first_rows=None):
    """Noisy copies of random unit directions, with their group labels.

    When ``first_rows`` is given, row ``first_rows[g]`` belongs to group g,
    so k-means seeded with those rows starts with one centroid per group.
    """
    generator = torch.Generator().manual_seed(1000 + seed)
    centres = torch.randn(num_groups, dim, generator=generator)
    centres = centres / centres.norm(dim=1, keepdim=True)
    labels = torch.arange(num_rows) % num_groups
    if first_rows is not None:
        others = torch.ones(num_rows, dtype=torch.bool)
        others[first_rows] = False
        labels[first_rows] = torch.arange(len(first_rows)) % num_groups
        labels[others] = torch.arange(int(others.sum())) % num_groups
    # Random lengths: the clustering must only depend on directions.
    lengths = torch.rand(num_rows, 1, generator=generator) * 4 + 0.5
    x = centres[labels] + noise * torch.randn(
        num_rows, dim, generator=generator
    )
    return x * lengths, labels


def unit(x):
    """Rows of x divided by their L2 norm, in float64."""
    x = x.double()
    return x / x.norm(dim=1, keepdim=True)


@pytest.mark.parametrize("backend", BACKENDS)
def test_recovers_separated_clusters(backend, device):
    num_rows, k = 1200, 12
    x, labels = blobs(num_rows, k, 24, 0.1, 0, initial_rows(num_rows, k, 0))
    result = spherical_kmeans(x.to(device), k, num_iters=10, backend=backend)
    assert isinstance(result, KMeansResult)
    assert result.assignments.shape == (num_rows,)
    assert result.assignments.dtype == torch.long
    assert result.assignments.device.type == torch.device(device).type
    assert adjusted_rand_score(labels, result.assignments.cpu()) == 1.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_centroids_and_similarities_consistent(backend, device):
    num_rows, k = 900, 9
    x, _ = blobs(num_rows, k, 16, 0.3, 1)
    result = spherical_kmeans(x.to(device), k, num_iters=5, backend=backend)
    centroids = result.centroids.cpu().double()
    assignments = result.assignments.cpu()
    similarities = result.similarities.cpu().double()
    assert result.centroids.dtype == torch.float32
    assert result.similarities.dtype == torch.float32
    assert centroids.shape == (k, 16)
    assert torch.allclose(
        centroids.norm(dim=1), torch.ones(k, dtype=torch.float64), atol=1e-5
    )
    xn = unit(x)
    # similarity = cosine of the row with its own centroid ...
    own = (xn * centroids[assignments]).sum(dim=1)
    assert torch.allclose(similarities, own, atol=1e-5)
    # ... and that centroid is the most similar one (final E-step).
    best = (xn @ centroids.T).max(dim=1).values
    assert torch.all(similarities >= best - 1e-5)


def test_converged_centroids_are_normalised_cluster_means(device):
    num_rows, k = 1000, 5
    x, _ = blobs(num_rows, k, 8, 0.2, 2, initial_rows(num_rows, k, 0))
    result = spherical_kmeans(x.to(device), k, num_iters=10)
    xn = unit(x)
    assignments = result.assignments.cpu()
    for cluster in range(k):
        mean = xn[assignments == cluster].mean(dim=0)
        expected = mean / mean.norm()
        got = result.centroids[cluster].cpu().double()
        assert torch.allclose(got, expected, atol=1e-5)


def test_same_seed_is_bitwise_identical_on_cpu():
    x, _ = blobs(800, 10, 16, 1.0, 3)
    a = spherical_kmeans(x, 10, num_iters=4, seed=7, backend="torch")
    b = spherical_kmeans(x.clone(), 10, num_iters=4, seed=7, backend="torch")
    c = spherical_kmeans(x, 10, num_iters=4, seed=8, backend="torch")
    assert torch.equal(a.assignments, b.assignments)
    assert torch.equal(a.centroids, b.centroids)
    assert torch.equal(a.similarities, b.similarities)
    assert not torch.equal(a.centroids, c.centroids)


@pytest.mark.parametrize("backend", BACKENDS)
def test_same_seed_same_result(backend, device):
    x, _ = blobs(600, 6, 12, 1.0, 4)
    x = x.to(device)
    a = spherical_kmeans(x, 6, num_iters=3, seed=3, backend=backend)
    b = spherical_kmeans(x, 6, num_iters=3, seed=3, backend=backend)
    assert torch.equal(a.assignments, b.assignments)
    assert torch.allclose(a.centroids, b.centroids, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_duplicate_rows_force_empty_clusters_without_nan(backend, device):
    # 3 distinct rows repeated 10 times, 6 clusters: at least 3 are empty.
    distinct = torch.tensor(
        [[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, -3.0]]
    )
    x = distinct.repeat(10, 1).to(device)
    result = spherical_kmeans(x, 6, num_iters=5, backend=backend)
    assert torch.isfinite(result.centroids).all()
    assert torch.isfinite(result.similarities).all()
    assert torch.allclose(
        result.centroids.norm(dim=1).cpu(), torch.ones(6), atol=1e-5
    )
    assert int(result.assignments.min()) >= 0
    assert int(result.assignments.max()) < 6
    # Every row sits on its own direction, so it is matched exactly.
    assert torch.allclose(result.similarities.cpu(), torch.ones(30), atol=1e-5)
    assert len(torch.unique(result.assignments)) == 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_rows_cancelling_out_give_a_unit_centroid(backend, device):
    # The mean of these rows is zero: no direction to normalise.
    x = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    result = spherical_kmeans(x.to(device), 1, num_iters=3, backend=backend)
    centroid = result.centroids.cpu().double()
    assert torch.allclose(
        centroid.norm(dim=1), torch.ones(1, dtype=torch.float64)
    )
    own = (unit(x) * centroid[result.assignments.cpu()]).sum(dim=1)
    assert torch.allclose(result.similarities.cpu().double(), own)


def test_empty_cluster_is_reseeded_from_worst_served_rows():
    # Two initial centroids are the same row, so one of them gets no rows;
    # group 1 has no initial centroid. Re-seeding the empty cluster with
    # the rows worst served (those of group 1) recovers all four groups;
    # keeping the duplicate centroid would not.
    num_rows, k = 400, 4
    first = initial_rows(num_rows, k, 0)
    x, labels = blobs(num_rows, k, 16, 0.05, 5, first)
    x[first[1]] = x[first[0]]
    labels[first[1]] = labels[first[0]]
    assert labels[first].tolist() == [0, 0, 2, 3]
    result = spherical_kmeans(x, k, num_iters=5, seed=0, backend="torch")
    assert adjusted_rand_score(labels, result.assignments) == 1.0


def test_more_clusters_than_rows_is_a_clear_error():
    with pytest.raises(ValueError, match=r"num_clusters \(5\).*rows.*\(3\)"):
        spherical_kmeans(torch.randn(3, 4), 5)


@pytest.mark.parametrize(
    "x, kwargs, match",
    [
        (torch.randn(8), {}, "2-D"),
        (torch.randn(2, 3, 4), {}, "2-D"),
        (torch.ones(4, 3, dtype=torch.long), {}, "floating"),
        (torch.tensor([[1.0, 2.0], [float("nan"), 1.0]]), {}, "row 1"),
        (torch.tensor([[1.0, 2.0], [float("inf"), 1.0]]), {}, "finite"),
        (torch.tensor([[1.0, 2.0], [0.0, 0.0]]), {}, "row 1 is all zeros"),
        (torch.randn(4, 3), {"num_iters": 0}, "num_iters"),
        (torch.randn(4, 3), {"chunk_size": 0}, "chunk_size"),
        (torch.randn(4, 3), {"backend": "sklearn"}, "backend"),
    ],
)
def test_invalid_input_is_rejected(x, kwargs, match):
    with pytest.raises(ValueError, match=match):
        spherical_kmeans(x, kwargs.pop("num_clusters", 1), **kwargs)


@pytest.mark.parametrize("k", [0, -2, 1.5, True])
def test_invalid_num_clusters_is_rejected(k):
    with pytest.raises(ValueError, match="num_clusters"):
        spherical_kmeans(torch.randn(4, 3), k)


def test_integer_like_options_are_accepted():
    x = torch.randn(10, 3)
    a = spherical_kmeans(
        x, np.int64(2), num_iters=np.int32(2), seed=np.int64(1)
    )
    b = spherical_kmeans(x, 2, num_iters=2, seed=1)
    assert torch.equal(a.assignments, b.assignments)


@pytest.mark.skipif(
    "faiss" not in available_backends(), reason="faiss not installed"
)
def test_backends_reach_comparable_objective(device):
    # Overlapping groups: a real optimisation problem, same initial rows.
    num_rows, k = 2000, 20
    x, _ = blobs(num_rows, k, 32, 0.4, 6)
    xn = unit(x)
    start = xn @ xn[initial_rows(num_rows, k, 0)].T
    start_objective = float(start.max(dim=1).values.mean())
    objectives = {}
    for backend in ("torch", "faiss"):
        result = spherical_kmeans(
            x.to(device), k, num_iters=10, backend=backend
        )
        objectives[backend] = float(result.similarities.mean())
    # Both improve clearly on the shared initial centroids, equally well.
    assert objectives["torch"] > start_objective + 0.05
    assert objectives["faiss"] == pytest.approx(objectives["torch"], abs=0.01)


@pytest.mark.parametrize("backend", BACKENDS)
def test_float16_input_matches_float32(backend, device):
    num_rows, k = 600, 6
    x, labels = blobs(num_rows, k, 16, 0.1, 7, initial_rows(num_rows, k, 0))
    x = x.to(device)
    half = spherical_kmeans(x.half(), k, num_iters=5, backend=backend)
    full = spherical_kmeans(x, k, num_iters=5, backend=backend)
    assert half.centroids.dtype == torch.float32
    assert half.similarities.dtype == torch.float32
    assert torch.equal(half.assignments, full.assignments)
    assert torch.allclose(half.centroids, full.centroids, atol=2e-3)
    assert adjusted_rand_score(labels, half.assignments.cpu()) == 1.0


def test_chunk_size_does_not_change_the_result(device):
    x, _ = blobs(500, 8, 16, 0.3, 8, initial_rows(500, 8, 0))
    x = x.to(device)
    whole = spherical_kmeans(x, 8, num_iters=4, backend="torch")
    chunked = spherical_kmeans(x, 8, num_iters=4, backend="torch", chunk_size=7)
    assert torch.equal(whole.assignments, chunked.assignments)
    assert torch.allclose(whole.centroids, chunked.centroids, atol=1e-6)
    assert torch.allclose(whole.similarities, chunked.similarities, atol=1e-6)


def test_auto_backend_uses_the_default(device):
    x, _ = blobs(300, 3, 8, 0.5, 9)
    x = x.to(device)
    assert default_backend(x.device) in available_backends()
    auto = spherical_kmeans(x, 3, num_iters=3, backend="auto")
    chosen = spherical_kmeans(
        x, 3, num_iters=3, backend=default_backend(x.device)
    )
    assert torch.equal(auto.assignments, chosen.assignments)
    assert torch.equal(auto.centroids, chosen.centroids)
