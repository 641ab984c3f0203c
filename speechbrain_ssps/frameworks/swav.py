"""SwAV (swapping assignments between views) as an ``SSLBrain`` framework.

Two views of each utterance go through the encoder, the projector
(:class:`~speechbrain_ssps.frameworks.vicreg.MLPProjector`) and L2
normalisation, then are scored against K unit prototypes
(:class:`Prototypes`). Codes are computed from the scores without gradient
by Sinkhorn-Knopp (:func:`sinkhorn_knopp`: an entropic equipartition of the
batch, optionally with a queue of recent embeddings, over the prototypes),
and each view predicts the other view's codes (Caron et al., NeurIPS 2020):

.. math::

    L = \\tfrac12 [\\ell(z_1, q_2) + \\ell(z_2, q_1)], \\quad
    \\ell(z, q) = -\\mathrm{mean}_n \\sum_k q_{nk}
        \\log \\mathrm{softmax}_k(c_k \\cdot z_n / \\tau)

With SSPS, the second view's normalised embedding is the positive: the
rows of the anchors SSPS pairs with a pseudo-positive are replaced by
that utterance's stored embedding before scoring (as sslsv's ``SwAV``);
the queue receives the batch's own embeddings.

Authors
 * speechbrain-ssps contributors
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from speechbrain_ssps.distributed import (
    all_reduce_mean_,
    is_distributed,
    world_size,
)
from speechbrain_ssps.frameworks.base import Framework, unwrap
from speechbrain_ssps.precision import full_precision
from speechbrain_ssps.teacher import cancel_last_layer_gradients_


def _all_reduce_sum_(tensor: torch.Tensor) -> torch.Tensor:
    return all_reduce_mean_(tensor).mul_(world_size())


@torch.no_grad()
def sinkhorn_knopp(
    scores: torch.Tensor, epsilon: float = 0.05, iters: int = 3
) -> torch.Tensor:
    """Soft codes of a batch: Sinkhorn-Knopp on ``exp(scores / epsilon)``.

    Alternately rescales the prototypes (each gets a total weight 1/K) and
    the samples (each 1/N, N counted over all ranks), ``iters`` times,
    then multiplies by N: every row of the result sums to 1 (a
    distribution over prototypes) and every column to about N/K.

    Arguments
    ---------
    scores : torch.Tensor
        ``[N, K]`` prototype scores of this rank's rows.
    epsilon : float
        Entropic regularisation (> 0); smaller is sharper.
    iters : int
        Number of (prototype, sample) normalisation rounds (>= 1).

    Returns
    -------
    torch.Tensor
        ``[N, K]`` codes (float32; computed in float64).

    Example
    -------
    >>> codes = sinkhorn_knopp(torch.tensor([[1.0, 0.0], [0.9, 0.1]]), 0.5, 50)
    >>> [round(v, 6) for v in codes.sum(dim=1).tolist()]
    [1.0, 1.0]
    >>> [round(v, 3) for v in codes.sum(dim=0).tolist()]
    [1.0, 1.0]
    """
    if not epsilon > 0:
        raise ValueError(f"swav_sk_epsilon must be > 0, got {epsilon}")
    if int(iters) < 1:
        raise ValueError(f"swav_sk_iters must be >= 1, got {iters}")
    # float64 and a shift by the global maximum: exp(s / eps) neither
    # overflows nor (for eps >= 0.01 and cosine scores) underflows; a sum
    # that still underflows is clamped instead of giving 0 / 0.
    scores = scores.detach().double() / epsilon
    top = scores.max()
    if is_distributed():  # the same shift on every rank
        dist.all_reduce(top, op=dist.ReduceOp.MAX)
    codes = torch.exp(scores - top).t()  # [K, N]
    tiny = torch.finfo(codes.dtype).tiny
    n_protos = codes.shape[0]
    n_rows = codes.shape[1] * world_size()
    codes /= _all_reduce_sum_(codes.sum()).clamp_min(tiny)
    for _ in range(int(iters)):
        rows = _all_reduce_sum_(codes.sum(dim=1, keepdim=True))
        codes /= rows.clamp_min(tiny) * n_protos
        codes /= codes.sum(dim=0, keepdim=True).clamp_min(tiny) * n_rows
    return (codes * n_rows).t().float()


def swapped_prediction_loss(
    scores: Sequence[torch.Tensor],
    codes: Sequence[torch.Tensor],
    temperature: float,
) -> torch.Tensor:
    """Mean over ordered view pairs (i != j) of CE(codes_i, scores_j / tau).

    Example
    -------
    >>> s = [torch.zeros(1, 2), torch.zeros(1, 2)]  # uniform predictions
    >>> q = [torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])]
    >>> round(float(swapped_prediction_loss(s, q, 0.1)), 4)  # log 2
    0.6931
    """
    losses = []
    for i, code in enumerate(codes):
        for j, score in enumerate(scores):
            if i != j:
                log_p = F.log_softmax(score / temperature, dim=1)
                losses.append(-(code * log_p).sum(dim=1).mean())
    return torch.stack(losses).mean()


class Prototypes(nn.Module):
    """K trainable unit prototypes: ``scores = z @ normalise(W).T``.

    The same as sslsv's weight-normalised linear layer with its gain
    fixed to 1.

    Example
    -------
    >>> protos = Prototypes(dim=3, num_prototypes=5)
    >>> protos(torch.randn(2, 3)).shape
    torch.Size([2, 5])
    """

    def __init__(self, dim: int, num_prototypes: int = 3000):
        super().__init__()
        if int(num_prototypes) < 1:
            raise ValueError(
                f"swav_num_prototypes must be >= 1, got {num_prototypes}"
            )
        if int(dim) < 1:
            raise ValueError(f"prototype dim must be >= 1, got {dim}")
        weight = torch.empty(int(num_prototypes), int(dim))
        nn.init.kaiming_uniform_(weight, a=5**0.5)
        self.weight = nn.Parameter(weight)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``[N, dim]`` -> ``[N, K]`` scores."""
        return z @ F.normalize(self.weight, dim=1).t().to(z.dtype)


class SwAVLoss(nn.Module):
    """SwAV's swapped prediction, with Sinkhorn codes and a feature queue.

    The queue (``[2, queue_size, dim]`` per rank, newest rows first) holds
    the last embeddings of each view; from ``queue_start_epoch`` on, its
    filled rows join the batch in Sinkhorn-Knopp (their codes are dropped).

    Arguments
    ---------
    dim : int
        Width of the embeddings.
    temperature : float
        tau of the predictions (> 0).
    sk_epsilon : float
        Sinkhorn-Knopp's regularisation (> 0).
    sk_iters : int
        Sinkhorn-Knopp's rounds (>= 1).
    queue_size : int
        Rows per view and rank (0: no queue).
    queue_start_epoch : int
        First (1-based) epoch that uses the queue.

    Example
    -------
    >>> loss = SwAVLoss(dim=4, queue_size=6)
    >>> z = F.normalize(torch.randn(6, 4), dim=1)  # 2 views x 3 utterances
    >>> loss(z[:3], z[3:], Prototypes(4, 5), epoch=1).shape
    torch.Size([])
    >>> loss.enqueue(z[:3], z[3:]); int(loss.queue_filled)
    3
    """

    def __init__(
        self,
        dim: int,
        temperature: float = 0.1,
        sk_epsilon: float = 0.05,
        sk_iters: int = 3,
        queue_size: int = 3840,
        queue_start_epoch: int = 16,
    ):
        super().__init__()
        checks = (
            ("swav_temperature", temperature > 0, "> 0"),
            ("swav_sk_epsilon", sk_epsilon > 0, "> 0"),
            ("swav_sk_iters", int(sk_iters) >= 1, ">= 1"),
            ("swav_queue_size", int(queue_size) >= 0, ">= 0"),
            ("swav_queue_start_epoch", int(queue_start_epoch) >= 1, ">= 1"),
        )
        values = (
            temperature,
            sk_epsilon,
            sk_iters,
            queue_size,
            queue_start_epoch,
        )
        for (name, ok, rule), value in zip(checks, values):
            if not ok:
                raise ValueError(f"{name} must be {rule}, got {value}")
        self.temperature = float(temperature)
        self.sk_epsilon = float(sk_epsilon)
        self.sk_iters = int(sk_iters)
        self.queue_start_epoch = int(queue_start_epoch)
        self.register_buffer("queue", torch.zeros(2, int(queue_size), dim))
        self.register_buffer("queue_filled", torch.zeros((), dtype=torch.long))

    def uses_queue(self, epoch: int) -> bool:
        """Whether the (1-based) epoch's codes see the queue."""
        return self.queue.shape[1] > 0 and epoch >= self.queue_start_epoch

    def codes(self, scores: torch.Tensor, view: int, prototypes, epoch):
        """Sinkhorn codes ``[N, K]`` of one view's scores (queue included)."""
        n = scores.shape[0]
        filled = int(self.queue_filled)
        if self.uses_queue(epoch) and filled:
            with torch.no_grad():  # the module itself, not a DDP wrapper
                rows = self.queue[view, :filled].to(scores.dtype)
                extra = unwrap(prototypes)(rows)
            scores = torch.cat([scores.detach(), extra])
        return sinkhorn_knopp(scores, self.sk_epsilon, self.sk_iters)[:n]

    def forward(self, z1, z2, prototypes, epoch: int) -> torch.Tensor:
        """The loss of two views' normalised embeddings ``[B, D]``.

        In float32 with autocast off: the prototype scores, divided by the
        temperature, and the Sinkhorn codes (float64 inside).
        """
        with full_precision(z1):
            # One call for both views (one forward of a DDP-wrapped module).
            z = torch.cat([z1, z2]).float()
            scores = list(prototypes(z).chunk(2))
            codes = [
                self.codes(s, v, prototypes, epoch)
                for v, s in enumerate(scores)
            ]
            return swapped_prediction_loss(scores, codes, self.temperature)

    @torch.no_grad()
    def enqueue(self, z1: torch.Tensor, z2: torch.Tensor) -> None:
        """Pushes this rank's rows to the front of the queue."""
        size = self.queue.shape[1]
        if size == 0:
            return
        new = torch.stack([z1, z2]).detach().to(self.queue.dtype)[:, :size]
        n = new.shape[1]
        self.queue[:, n:] = self.queue[:, : size - n].clone()
        self.queue[:, :n] = new
        self.queue_filled.fill_(min(size, int(self.queue_filled) + n))


class SwAV(Framework):
    """SwAV's step: two views, Sinkhorn codes, the second view as positive.

    Modules: ``embedding_model``, ``projector`` (with ``out_dim``),
    ``prototypes`` (:class:`Prototypes`) and ``ssl_loss``
    (:class:`SwAVLoss`).

    Arguments
    ---------
    freeze_prototypes : int
        The prototypes get no update during this many first epochs.

    Example
    -------
    >>> from speechbrain_ssps.frameworks.vicreg import MLPProjector
    >>> modules = {"projector": MLPProjector(8, 16, 4), "prototypes": None}
    >>> SwAV().positive_dim(modules)
    4
    """

    name = "swav"
    reference_model = "embedding_model"

    def __init__(self, freeze_prototypes: int = 1):
        if int(freeze_prototypes) < 0:
            raise ValueError(
                f"swav_freeze_prototypes must be >= 0, got {freeze_prototypes}"
            )
        self.freeze_prototypes = int(freeze_prototypes)

    def trained_modules(self, modules) -> List[str]:
        """The encoder, the projector and the prototypes."""
        return ["embedding_model", "projector", "prototypes"]

    def positive_dim(self, modules) -> int:
        """The projector's output width."""
        for name in ("projector", "prototypes"):
            if name not in modules:
                raise ValueError(f"SwAV needs a {name!r} module")
        return int(unwrap(modules["projector"]).out_dim)

    def on_fit_start(self, brain) -> None:
        """Checks the modules and the number of views."""
        self.positive_dim(brain.modules)
        if not isinstance(unwrap(brain.modules.ssl_loss), SwAVLoss):
            raise ValueError("SwAV needs ssl_loss: !new:...swav.SwAVLoss")
        self.require_two_views(brain)

    def forward(
        self, brain, groups: List[torch.Tensor], student: torch.Tensor
    ) -> Dict[str, torch.Tensor]:
        """Normalised embeddings of both views ``[2*B, P]``."""
        return {"student": F.normalize(brain.modules.projector(student), dim=1)}

    def positives(
        self, brain, predictions: Dict, batch_size: int
    ) -> Tuple[torch.Tensor, int]:
        """The second view's normalised embeddings (one view)."""
        return predictions["student"][batch_size:], 1

    def loss(self, brain, predictions: Dict, indices: torch.Tensor):
        """Swapped prediction with the (swapped) second view."""
        b = indices.numel()
        z1 = predictions["student"][:b]
        z2, views = self.positives(brain, predictions, b)
        swapped = brain.ssps_positives(indices, predictions, z2, views)
        loss_fn = brain.modules.ssl_loss
        loss = loss_fn(z1, swapped, brain.modules.prototypes, brain.epoch)
        unwrap(loss_fn).enqueue(z1, z2)
        return loss

    def before_optimizer_step(self, brain) -> None:
        """No update of the prototypes in the first epoch(s)."""
        cancel_last_layer_gradients_(
            list(unwrap(brain.modules.prototypes).parameters()),
            brain.epoch,
            self.freeze_prototypes,
        )

    def epoch_stats(self, brain, step: int) -> Dict[str, float]:
        """Whether the epoch's codes used the queue."""
        loss = unwrap(brain.modules.ssl_loss)
        return {"swav_queue": float(loss.uses_queue(brain.epoch))}

    def __repr__(self) -> str:
        return f"SwAV(freeze_prototypes={self.freeze_prototypes})"
