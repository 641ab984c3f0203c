"""Small ``torch.distributed`` helpers shared by the SSL losses and queues.

Every function works unchanged in a single process: when
``torch.distributed`` is not initialised the collectives are identities, the
world size is 1 and the rank is 0. All of them work with the ``gloo`` backend
on CPU as well as with ``nccl`` on GPU.

The autograd-aware gather plays the role of sslsv's ``GatherLayer``
(``sslsv/utils/distributed.py``): the forward concatenates every rank's rows
in rank order, and the backward sums the incoming gradients over ranks and
hands each rank the slice of its own rows. SimCLR uses it so that the
negatives of the other ranks also push gradients back to the local rows.
"""

from typing import List

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn


def is_distributed() -> bool:
    """Tell whether a default ``torch.distributed`` process group exists.

    Returns
    -------
    bool
        True when ``torch.distributed`` is available and initialised.

    Example
    -------
    >>> is_distributed()
    False
    """
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    """Number of processes in the default group (1 when not distributed).

    Returns
    -------
    int
        The world size.

    Example
    -------
    >>> world_size()
    1
    """
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    """Rank of this process in the default group (0 when not distributed).

    Returns
    -------
    int
        The global rank.

    Example
    -------
    >>> rank()
    0
    """
    return dist.get_rank() if is_distributed() else 0


def all_gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's ``tensor`` along dim 0, keeping the graph.

    The backward pass sums the gradients that all ranks computed for the
    gathered tensor and returns to each rank the rows it contributed, so a
    loss that uses other ranks' rows still trains the local rows. Every rank
    must pass a tensor of the same shape.

    Arguments
    ---------
    tensor : torch.Tensor
        Local rows, shape ``[N, ...]``.

    Returns
    -------
    torch.Tensor
        Shape ``[world_size * N, ...]``, rank 0's rows first. The input itself
        when not distributed.

    Example
    -------
    >>> x = torch.ones(2, 3, requires_grad=True)
    >>> all_gather_with_grad(x) is x
    True
    """
    if not is_distributed() or world_size() == 1:
        return tensor
    return torch.cat(dist_fn.all_gather(tensor.contiguous()), dim=0)


@torch.no_grad()
def all_gather_no_grad(tensor: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Concatenate every rank's ``tensor`` along ``dim``, without autograd.

    Meant for bookkeeping (queues of embeddings and indices). Every rank must
    pass a tensor of the same shape.

    Arguments
    ---------
    tensor : torch.Tensor
        Local tensor.
    dim : int
        Dimension along which the ranks' tensors are concatenated.

    Returns
    -------
    torch.Tensor
        The gathered tensor, rank 0's part first; the input itself when not
        distributed.

    Example
    -------
    >>> all_gather_no_grad(torch.arange(3)).tolist()
    [0, 1, 2]
    """
    if not is_distributed() or world_size() == 1:
        return tensor
    tensor = tensor.detach().contiguous()
    parts: List[torch.Tensor] = [
        torch.empty_like(tensor) for _ in range(world_size())
    ]
    dist.all_gather(parts, tensor)
    return torch.cat(parts, dim=dim)


@torch.no_grad()
def all_reduce_mean_(tensor: torch.Tensor) -> torch.Tensor:
    """Replace ``tensor`` in place by its mean over all ranks.

    Arguments
    ---------
    tensor : torch.Tensor
        Local tensor (same shape on every rank). Modified in place.

    Returns
    -------
    torch.Tensor
        The same tensor object, now holding the cross-rank mean.

    Example
    -------
    >>> t = torch.tensor([1.0, 3.0])
    >>> all_reduce_mean_(t) is t
    True
    """
    if not is_distributed() or world_size() == 1:
        return tensor
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    tensor.div_(world_size())
    return tensor
