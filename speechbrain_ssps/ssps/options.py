"""The option rules of :class:`~speechbrain_ssps.ssps.SSPS`, in one place.

The constructor calls :func:`check_options` before it builds anything; a bad
option raises :class:`SSPSOptionError`, which names the constructor argument
so that the recipe can map it to its command-line flag (``num_clusters`` ->
``--ssps_num_clusters``). Rules that depend on the data seen during training
(enough filled reference rows for K clusters) are checked where they apply,
in :meth:`SSPS.cluster <speechbrain_ssps.ssps.SSPS.cluster>`.

Example
-------
>>> check_options(num_utterances=10, repr_dim=4, pos_dim=3, pos_views=1,
...               queue_size=8, num_clusters=2, sampling="ncs",
...               num_neighbors=1, start_epoch=2, kmeans_iters=10, seed=0)
>>> as_queue_dtype("float16")
torch.float16
"""

from __future__ import annotations

from typing import Union

import torch

__all__ = [
    "CLUSTER_NEIGHBOUR_METHODS",
    "KMEANS_BACKENDS",
    "QUEUE_DTYPES",
    "SAMPLING_METHODS",
    "SSPSOptionError",
    "as_queue_dtype",
    "check_options",
]

#: ``"scs"``: same-cluster sampling; ``"ncs"``: neighbouring clusters;
#: ``"knn"``: one of the M nearest queue entries (no k-means);
#: ``"centroid"``: the centroid of one of the M nearest clusters.
SAMPLING_METHODS = ("scs", "ncs", "knn", "centroid")
#: The methods whose M counts neighbouring clusters (M < K).
CLUSTER_NEIGHBOUR_METHODS = ("ncs", "centroid")
#: Storage types of the queues, by the names the yaml uses.
QUEUE_DTYPES = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}
#: Backends of :func:`speechbrain_ssps.kmeans.spherical_kmeans`.
KMEANS_BACKENDS = ("auto", "torch", "faiss")


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

    def __init__(self, option: str, value: object, message: str):
        super().__init__(message)
        self.option = option
        self.value = value


def _is_integer(value: object) -> bool:
    try:
        return int(value) == value
    except (TypeError, ValueError):
        return False


def as_queue_dtype(dtype: Union[str, torch.dtype]) -> torch.dtype:
    """The storage type of the queues, from its name or a torch dtype.

    Arguments
    ---------
    dtype : str or torch.dtype
        ``"float32"``, ``"float16"``, ``"bfloat16"`` or one of these dtypes.

    Returns
    -------
    torch.dtype
        The dtype.

    Raises
    ------
    SSPSOptionError
        For any other value (option ``queue_dtype``).

    Example
    -------
    >>> as_queue_dtype(torch.bfloat16), as_queue_dtype("float32")
    (torch.bfloat16, torch.float32)
    >>> try:
    ...     as_queue_dtype("float64")
    ... except SSPSOptionError as err:
    ...     print(err.option, err.value)
    queue_dtype float64
    """
    if isinstance(dtype, torch.dtype) and dtype in QUEUE_DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype in QUEUE_DTYPES:
        return QUEUE_DTYPES[dtype]
    raise SSPSOptionError(
        "queue_dtype",
        dtype,
        f"SSPS: queue_dtype must be float32, float16 or bfloat16, "
        f"got {dtype!r}",
    )


def check_options(
    num_utterances: int,
    repr_dim: int,
    pos_dim: int,
    pos_views: int,
    queue_size: int,
    num_clusters: int,
    sampling: str,
    num_neighbors: int,
    start_epoch: int,
    kmeans_iters: int,
    seed: int,
    queue_dtype: Union[str, torch.dtype] = "float32",
    kmeans_backend: str = "auto",
) -> None:
    """Checks SSPS's constructor options; raises on the first bad one.

    The rules: sizes are integers >= 1; ``sampling`` is one of
    :data:`SAMPLING_METHODS`; K <= N; with NCS and centroid, M < K (a
    cluster's neighbours exclude the cluster itself; SCS does not use M, so
    any M >= 1 is accepted); with knn, M <= |Q'| (M nearest queue
    entries); with centroid, ``pos_dim == repr_dim`` (the centroid is the
    positive: it lives in the reference space);
    ``start_epoch >= 2`` (epoch ``start_epoch - 1`` fills the queues); an
    integer seed; a known k-means backend and queue dtype.

    Arguments are those of :class:`SSPS` (same names, same meaning).

    Raises
    ------
    SSPSOptionError
        Naming the first option at fault, in the order above.

    Example
    -------
    >>> options = dict(num_utterances=10, repr_dim=4, pos_dim=3,
    ...                pos_views=1, queue_size=8, num_clusters=3,
    ...                num_neighbors=3, start_epoch=2, kmeans_iters=10,
    ...                seed=0)
    >>> check_options(sampling="scs", **options)  # M is unused by SCS
    >>> try:
    ...     check_options(sampling="ncs", **options)
    ... except SSPSOptionError as err:
    ...     print(err.option)
    num_neighbors
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
    if sampling in CLUSTER_NEIGHBOUR_METHODS and num_neighbors >= num_clusters:
        raise SSPSOptionError(
            "num_neighbors",
            num_neighbors,
            f"SSPS: num_neighbors ({num_neighbors}) must be smaller than "
            f"num_clusters ({num_clusters}) with sampling={sampling!r} (a "
            "cluster's neighbours exclude itself)",
        )
    if sampling == "knn" and num_neighbors > queue_size:
        raise SSPSOptionError(
            "num_neighbors",
            num_neighbors,
            f"SSPS: num_neighbors ({num_neighbors}) is larger than "
            f"queue_size ({queue_size}) with sampling='knn' (M nearest "
            "entries of the positive queue)",
        )
    if sampling == "centroid" and pos_dim != repr_dim:
        raise SSPSOptionError(
            "sampling",
            sampling,
            f"SSPS: sampling='centroid' uses the cluster centroid (of size "
            f"repr_dim={repr_dim}) as the positive, so pos_dim must equal "
            f"repr_dim, got pos_dim={pos_dim}",
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
    if kmeans_backend not in KMEANS_BACKENDS:
        raise SSPSOptionError(
            "kmeans_backend",
            kmeans_backend,
            f"SSPS: kmeans_backend must be one of {KMEANS_BACKENDS}, "
            f"got {kmeans_backend!r}",
        )
    as_queue_dtype(queue_dtype)
