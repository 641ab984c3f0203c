"""Spherical (cosine) k-means with a faiss and a vectorised torch backend.

SSPS clusters the reference queue (one L2-normalised representation per
training utterance; 1.09 M rows, K = 25,000, 10 iterations in the paper) at
the start of every active epoch. The reference implementation
(theolepage/sslsv, ``sslsv/methods/_SSPS/KMeans.py``) runs its M-step as a
Python loop over the K clusters; here both steps are single tensor
operations:

* E-step: row blocks of ``x @ centroids.T`` followed by a max over the
  centroids, so memory is bounded by one block of scores, never N x K.
* M-step: ``index_add_`` of the rows into their centroid, then L2
  normalisation.

Both backends start from the same K distinct rows, drawn with a
``torch.Generator`` seeded by ``seed``, run ``num_iters`` (E-step, M-step)
rounds, and end with one more E-step, so the returned assignments and
similarities are those of the returned centroids.

Empty clusters. Torch backend: a cluster left empty by an E-step (or whose
rows cancel out: mean resultant length below 1e-6) is re-seeded with a row
worst served by its centroid in that E-step. The m such clusters, in index
order, get the m distinct rows of lowest cosine similarity, lowest first;
the previous centroid is not kept, as a duplicated centroid would stay
empty for ever. Faiss backend: faiss's own rule, which splits a large
cluster (drawn with probability growing with its size): the empty
centroid becomes a copy of its centroid and both are nudged apart, then
renormalised; a centroid that faiss leaves at zero (rows cancelling out
exactly) is re-seeded as in the torch backend. Neither backend returns NaN
or zero centroids; a cluster can still be empty in the final assignment
when rows are duplicated.

Backend choice (``backend="auto"``) is by measurement with
``benchmarks/kmeans.py`` on this project's 2-core AMD EPYC (AVX2, torch
2.11 with MKL, faiss-cpu 1.15.1 whose bundled OpenBLAS 0.3.15 picked its
Zen/AVX2 kernels here, not the slow SSE3 ones seen on an earlier machine).
The machine was shared with other jobs (load average 5-10), so absolute
numbers are low and the ratio moved from run to run. Default size
(N = 100,000, D = 192, K = 2,500, 10 iterations; 11 E-steps of 2 N K D
flops), fastest of 2 interleaved runs per backend::

    run   torch           faiss           faiss time / torch time
    1     35.5 s 30 GF/s  39.0 s 27 GF/s  1.10
    2     68.1 s 16 GF/s  66.2 s 16 GF/s  0.97
    3     56.3 s 19 GF/s  41.7 s 25 GF/s  0.74

With N = 30,000 and 5 iterations, fastest of 5: 9.5 s vs 7.2 s (0.76),
and in a later in-process run 8.0 s vs 9.0 s (1.12). The E-step alone at
load < 1 (N = 20,000, K = 2,500): torch blocks of 512-4096 rows 126-148
GFLOP/s, faiss's flat inner-product search 100-113 GFLOP/s. The backends
are thus level within noise on CPU; ``auto`` picks torch there, which is
bitwise reproducible and the same code as on CUDA. On CUDA, faiss-gpu was
not available to measure, and this faiss path copies the data through host
memory, so ``auto`` picks torch as well. Rerun the benchmark on new
hardware and change :func:`default_backend` if one backend is clearly
faster.

Authors
 * speechbrain-ssps contributors 2025
"""

import math
import operator
from dataclasses import dataclass
from typing import List, Optional, Tuple, Union

import torch

from speechbrain_ssps.precision import full_precision

__all__ = [
    "KMeansResult",
    "available_backends",
    "default_backend",
    "spherical_kmeans",
]

# The E-step scores a block of rows against all centroids at once. A block
# holds at most 2**28 scores (1 GiB in float32) on any device. On CPU it
# also holds at most 8192 rows: measured here, blocks of 4096-8192 rows ran
# fastest at K = 2,500 and K = 25,000 (whole-array blocks lost ~25 %, the
# max over centroids then streams from memory instead of cache).
_MAX_BLOCK_SCORES = 1 << 28
_CPU_MAX_BLOCK_ROWS = 8192
# A cluster whose mean resultant length is below this is treated as empty.
_MIN_RESULTANT = 1e-6


@dataclass
class KMeansResult:
    """Output of :func:`spherical_kmeans`.

    Arguments
    ---------
    assignments : torch.Tensor
        LongTensor [N], cluster index of each row, on the input's device.
    centroids : torch.Tensor
        float32 [K, D], L2-normalised centroids, on the input's device.
    similarities : torch.Tensor
        float32 [N], cosine similarity of each row to its centroid.
    """

    assignments: torch.Tensor
    centroids: torch.Tensor
    similarities: torch.Tensor


def available_backends() -> List[str]:
    """Names of the backends usable in this environment.

    Returns
    -------
    list of str
        ``"torch"`` always, then ``"faiss"`` when faiss can be imported.

    Example
    -------
    >>> "torch" in available_backends()
    True
    """
    backends = ["torch"]
    try:
        import faiss  # noqa: F401
    except ImportError:
        pass
    else:
        backends.append("faiss")
    return backends


def default_backend(device: Union[torch.device, str]) -> str:
    """Backend that ``backend="auto"`` uses for data on ``device``.

    The choice comes from ``benchmarks/kmeans.py`` (numbers in the module
    docstring): on CPU torch and faiss were level within the noise of a
    shared machine and torch is bitwise reproducible; on CUDA torch runs
    on the tensors' own device, whereas faiss-gpu was not available to
    measure.

    Arguments
    ---------
    device : torch.device or str
        Device of the data to cluster.

    Returns
    -------
    str
        ``"torch"``.

    Example
    -------
    >>> default_backend("cpu")
    'torch'
    """
    torch.device(device)  # raises on a malformed device string
    return "torch"


def spherical_kmeans(
    x: torch.Tensor,
    num_clusters: int,
    num_iters: int = 10,
    seed: int = 0,
    backend: str = "auto",
    chunk_size: int = 65536,
) -> KMeansResult:
    """Cluster the rows of ``x`` by cosine similarity (spherical k-means).

    Rows are L2-normalised (in float32) before clustering. The K initial
    centroids are K distinct rows drawn with a ``torch.Generator`` seeded by
    ``seed``, so a seed fixes the result (bitwise for the torch backend on
    CPU). Each of the ``num_iters`` iterations assigns every row to its most
    similar centroid and sets each centroid to the normalised mean of its
    rows; a final assignment follows the last update. See the module
    docstring for how empty clusters are handled.

    Arguments
    ---------
    x : torch.Tensor
        [N, D] rows to cluster, any floating dtype (computed in float32),
        finite, no all-zero row.
    num_clusters : int
        K, the number of clusters, 1 <= K <= N.
    num_iters : int
        Number of (assignment, update) iterations, at least 1.
    seed : int
        Seed of the initialisation.
    backend : str
        ``"torch"`` (vectorised Lloyd iterations on ``x``'s device),
        ``"faiss"`` (faiss-gpu for CUDA input when faiss sees a GPU, faiss
        on CPU otherwise) or ``"auto"`` (:func:`default_backend`).
    chunk_size : int
        Torch backend: at most this many rows are scored against the
        centroids at once. A block is further capped at 2**28 scores
        (1 GiB; 10,737 rows at K = 25,000), and at 8192 rows on CPU where
        that measured fastest, so memory stays bounded for any N.

    Returns
    -------
    KMeansResult
        Assignments [N], centroids [K, D] and similarities [N], on ``x``'s
        device.

    Raises
    ------
    ValueError
        If ``x`` is not a finite 2-D float tensor without all-zero rows, if
        ``num_clusters`` is not in [1, N], if ``num_iters`` or
        ``chunk_size`` is below 1, or if ``backend`` is unknown or not
        installed.

    Example
    -------
    >>> x = torch.tensor([[1.0, 0.1], [1.0, -0.1], [0.1, 1.0], [-0.1, 1.0]])
    >>> result = spherical_kmeans(x, num_clusters=2, num_iters=3)
    >>> result.assignments[0] == result.assignments[1]
    tensor(True)
    >>> result.assignments[0] != result.assignments[2]
    tensor(True)
    >>> result.centroids.norm(dim=1)
    tensor([1., 1.])
    """
    # 1. Validate the options and the data.
    num_clusters = _as_int("num_clusters", num_clusters, minimum=1)
    num_iters = _as_int("num_iters", num_iters, minimum=1)
    chunk_size = _as_int("chunk_size", chunk_size, minimum=1)
    seed = _as_int("seed", seed)
    if backend == "auto":
        backend = default_backend(x.device)
    elif backend not in ("torch", "faiss"):
        raise ValueError(
            f"backend must be 'auto', 'torch' or 'faiss', got {backend!r}"
        )
    elif backend not in available_backends():
        raise ValueError(
            f"backend {backend!r} is not installed; available backends: "
            f"{available_backends()}"
        )
    xn = _normalised_rows(x)
    num_rows = xn.shape[0]
    if num_clusters > num_rows:
        raise ValueError(
            f"num_clusters ({num_clusters}) is larger than the number of rows "
            f"of x ({num_rows}); k-means needs at least one row per cluster"
        )

    # 2. Initial centroids: K distinct rows, drawn on CPU so every device
    # and backend starts from the same ones.
    generator = torch.Generator(device="cpu")
    generator.manual_seed(seed)
    first = torch.randperm(num_rows, generator=generator)[:num_clusters]
    init = xn[first.to(xn.device)]

    # 3. Run the backend (in float32 even inside an autocast region).
    if backend == "torch":
        with full_precision(xn):
            return _torch_kmeans(xn, init, num_iters, chunk_size)
    return _faiss_kmeans(xn, init, num_iters, seed)


def _as_int(name: str, value: int, minimum: Optional[int] = None) -> int:
    """``value`` as an int, or a ValueError naming ``name``."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an int, got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an int, got {value!r}") from None
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def _normalised_rows(x: torch.Tensor) -> torch.Tensor:
    """Check ``x`` and return its rows L2-normalised, in float32."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(
            f"x must be 2-D [rows, features], got shape {tuple(x.shape)}"
        )
    if not x.is_floating_point():
        raise ValueError(f"x must have a floating dtype, got {x.dtype}")
    finite = torch.isfinite(x).all(dim=1)
    if not bool(finite.all()):
        row = int(torch.nonzero(~finite)[0, 0])
        raise ValueError(f"x must be finite; row {row} has NaN or inf")
    if x.shape[1] == 0:
        raise ValueError("x must have at least one feature (column)")
    xf = x.float()
    # Scale each row by its largest magnitude first so that the norm of
    # rows with huge entries cannot overflow float32.
    scale = xf.abs().amax(dim=1, keepdim=True)
    if not bool((scale > 0).all()):
        row = int(torch.nonzero(scale == 0)[0, 0])
        raise ValueError(
            f"x row {row} is all zeros; cosine k-means needs a direction "
            "for every row"
        )
    xn = xf / scale
    return xn.div_(torch.linalg.vector_norm(xn, dim=1, keepdim=True))


def _rows_per_block(
    num_clusters: int, chunk_size: int, device: torch.device
) -> int:
    """Rows scored at once by the E-step (see ``chunk_size``)."""
    rows = min(chunk_size, max(1, _MAX_BLOCK_SCORES // num_clusters))
    if device.type == "cpu":
        rows = min(rows, _CPU_MAX_BLOCK_ROWS)
    return rows


def _assign(
    xn: torch.Tensor, centroids: torch.Tensor, rows_per_block: int
) -> Tuple[torch.Tensor, torch.Tensor]:
    """E-step: most similar centroid of each row, and that similarity."""
    num_rows = xn.shape[0]
    assignments = torch.empty(num_rows, dtype=torch.long, device=xn.device)
    similarities = torch.empty(num_rows, dtype=torch.float32, device=xn.device)
    rows = min(rows_per_block, num_rows)
    scores = torch.empty(
        rows, centroids.shape[0], dtype=torch.float32, device=xn.device
    )
    centroids_t = centroids.t()
    for start in range(0, num_rows, rows):
        end = min(start + rows, num_rows)
        block = torch.mm(xn[start:end], centroids_t, out=scores[: end - start])
        torch.max(
            block, dim=1, out=(similarities[start:end], assignments[start:end])
        )
    return assignments, similarities


def _update(
    xn: torch.Tensor,
    assignments: torch.Tensor,
    similarities: torch.Tensor,
    num_clusters: int,
) -> torch.Tensor:
    """M-step: normalised mean of each cluster, empty ones re-seeded."""
    sums = torch.zeros(
        num_clusters, xn.shape[1], dtype=torch.float32, device=xn.device
    )
    sums.index_add_(0, assignments, xn)
    counts = torch.bincount(assignments, minlength=num_clusters)
    lengths = torch.linalg.vector_norm(sums, dim=1)
    degenerate = lengths <= _MIN_RESULTANT * counts
    centroids = (
        sums / lengths.clamp_min(torch.finfo(torch.float32).tiny)[:, None]
    )
    num_degenerate = int(degenerate.sum())
    if num_degenerate:
        worst = torch.topk(similarities, num_degenerate, largest=False).indices
        centroids[degenerate] = xn[worst]
    return centroids


def _torch_kmeans(
    xn: torch.Tensor, init: torch.Tensor, num_iters: int, chunk_size: int
) -> KMeansResult:
    """Lloyd iterations with tensor ops on ``xn``'s device."""
    num_clusters = init.shape[0]
    rows = _rows_per_block(num_clusters, chunk_size, xn.device)
    centroids = init
    for _ in range(num_iters):
        assignments, similarities = _assign(xn, centroids, rows)
        centroids = _update(xn, assignments, similarities, num_clusters)
    assignments, similarities = _assign(xn, centroids, rows)
    return KMeansResult(assignments, centroids, similarities)


def _faiss_kmeans(
    xn: torch.Tensor, init: torch.Tensor, num_iters: int, seed: int
) -> KMeansResult:
    """Spherical k-means with ``faiss.Kmeans`` from the given centroids."""
    import faiss

    num_rows, dim = xn.shape
    num_clusters = init.shape[0]
    use_gpu = (
        xn.device.type == "cuda"
        and hasattr(faiss, "get_num_gpus")
        and faiss.get_num_gpus() > 0
    )
    kmeans = faiss.Kmeans(
        dim,
        num_clusters,
        niter=num_iters,
        spherical=True,
        seed=seed % (1 << 31),
        gpu=bool(use_gpu),
        # Use every row (faiss subsamples above K * max_points_per_centroid)
        # and skip faiss's warning about few points per centroid.
        max_points_per_centroid=math.ceil(num_rows / num_clusters) + 1,
        min_points_per_centroid=1,
        verbose=False,
    )
    rows = xn.cpu()
    kmeans.train(rows.numpy(), init_centroids=init.cpu().numpy())
    similarities, assignments = kmeans.assign(rows.numpy())
    # faiss leaves a zero centroid where a cluster's rows cancel out exactly;
    # re-seed those as the torch backend does, then assign again.
    centroids = torch.from_numpy(kmeans.centroids).float()
    degenerate = torch.linalg.vector_norm(centroids, dim=1) < 0.5
    num_degenerate = int(degenerate.sum())
    if num_degenerate:
        worst = torch.topk(
            torch.from_numpy(similarities), num_degenerate, largest=False
        ).indices
        centroids[degenerate] = rows[worst]
        kmeans.centroids = centroids.numpy()
        similarities, assignments = kmeans.assign(rows.numpy())
    device = xn.device
    return KMeansResult(
        assignments=torch.from_numpy(assignments).long().to(device),
        centroids=centroids.to(device),
        similarities=torch.from_numpy(similarities).float().to(device),
    )
