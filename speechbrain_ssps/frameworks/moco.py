"""MoCo (momentum contrast) as an ``SSLBrain`` framework.

Both views go through the query encoder (``embedding_model``, trained) and,
without gradient, through the key encoder (``teacher_model``, an EMA of the
query encoder). Each query is contrasted with the key of the *other* view
of its utterance (the positive) and with a queue of keys from earlier
batches (the negatives), with InfoNCE (He et al., CVPR 2020; the symmetric
form of MoCo v2+/v3, as in sslsv's ``MoCo``):

.. math::

    \\ell(q, k^+, Q) = -\\log \\frac{e^{q \\cdot k^+ / \\tau}}
        {e^{q \\cdot k^+ / \\tau} + \\sum_{n \\in Q} e^{q \\cdot n / \\tau}}

    L = \\tfrac12 [\\ell(q_1, k_2, Q_2) + \\ell(q_2, k_1, Q_1)]

``Q_v`` holds the keys of view ``v`` of the last ``queue_size`` utterances
(all ranks). With SSPS, the keys are the positives (two views): the rows
of the anchors SSPS pairs with a pseudo-positive are replaced by that
utterance's stored keys. The queue receives the batch's own keys (sslsv
enqueues the swapped ones, which would put copies of stored keys into
the negatives).

Authors
 * speechbrain-ssps contributors
"""

from __future__ import annotations

from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from speechbrain_ssps.distributed import all_gather_no_grad, world_size
from speechbrain_ssps.frameworks.base import Framework, unwrap
from speechbrain_ssps.precision import full_precision
from speechbrain_ssps.teacher import copy_student_to_teacher, ema_update_


def info_nce(
    query: torch.Tensor,
    key: torch.Tensor,
    negatives: torch.Tensor,
    temperature: float,
) -> torch.Tensor:
    """InfoNCE of queries against their key and a set of negatives.

    Arguments
    ---------
    query : torch.Tensor
        ``[N, D]`` L2-normalised queries.
    key : torch.Tensor
        ``[N, D]`` L2-normalised positive keys (row ``i`` for query ``i``).
    negatives : torch.Tensor
        ``[K, D]`` L2-normalised negative keys, shared by every query.
    temperature : float
        tau > 0.

    Returns
    -------
    torch.Tensor
        The mean over queries of
        ``-log softmax([q.k, q.n_1, ..., q.n_K] / tau)[0]``.

    Example
    -------
    >>> q = torch.tensor([[1.0, 0.0]])
    >>> k = torch.tensor([[1.0, 0.0]])
    >>> n = torch.tensor([[0.0, 1.0]])
    >>> loss = info_nce(q, k, n, temperature=1.0)
    >>> round(float(loss), 4)  # -log(e / (e + 1))
    0.3133
    """
    pos = (query * key).sum(dim=1, keepdim=True)
    neg = query @ negatives.to(query.dtype).t()
    logits = torch.cat([pos, neg], dim=1) / temperature
    target = torch.zeros(query.shape[0], dtype=torch.long, device=query.device)
    return F.cross_entropy(logits, target)


class MoCoLoss(nn.Module):
    """Symmetric InfoNCE with a queue of negative keys per view.

    The queue is a buffer (``[2, queue_size, dim]``, random unit rows at
    the start as in MoCo) so that it moves with the module and is saved in
    checkpoints (register ``ssl_loss`` with the checkpointer).

    Arguments
    ---------
    dim : int
        Width of the keys.
    queue_size : int
        Number of negative keys per view (the paper's K).
    temperature : float
        tau of InfoNCE.
    seed : int
        Seed of the queue's random initial rows.

    Example
    -------
    >>> loss = MoCoLoss(dim=4, queue_size=8, temperature=0.1)
    >>> q = F.normalize(torch.randn(6, 4), dim=1)  # 2 views x 3 utterances
    >>> k = F.normalize(torch.randn(6, 4), dim=1)
    >>> loss(q, k).shape
    torch.Size([])
    >>> loss.enqueue(k)
    >>> int(loss.queue_ptr), torch.equal(loss.queue[1, :3], k[3:])
    (3, True)
    """

    def __init__(
        self,
        dim: int,
        queue_size: int = 65536,
        temperature: float = 0.2,
        seed: int = 0,
    ):
        super().__init__()
        if int(dim) < 1:
            raise ValueError(f"moco dim must be >= 1, got {dim}")
        if int(queue_size) < 1:
            raise ValueError(f"moco_queue_size must be >= 1, got {queue_size}")
        if not temperature > 0:
            raise ValueError(f"moco_temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
        self.queue_size = int(queue_size)
        gen = torch.Generator().manual_seed(int(seed))
        queue = torch.randn(2, self.queue_size, int(dim), generator=gen)
        self.register_buffer("queue", F.normalize(queue, dim=2))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    def forward(self, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        """The loss of one step (the queue is left unchanged).

        Arguments
        ---------
        query : torch.Tensor
            ``[2*B, D]`` normalised queries, view 1 then view 2.
        key : torch.Tensor
            ``[2*B, D]`` normalised keys, same layout (no gradient needed).

        Returns
        -------
        torch.Tensor
            ``(l(q1, k2, Q_2) + l(q2, k1, Q_1)) / 2``, in float32 with
            autocast off (the logits are divided by tau).
        """
        with full_precision(query):
            q1, q2 = query.float().chunk(2)
            k1, k2 = key.detach().float().chunk(2)
            # A copy: the queue is written (enqueue) before the backward
            # pass, which needs the negatives as they were.
            queue = self.queue.detach().float().clone()
            loss_1 = info_nce(q1, k2, queue[1], self.temperature)
            loss_2 = info_nce(q2, k1, queue[0], self.temperature)
            return (loss_1 + loss_2) / 2

    @torch.no_grad()
    def enqueue(self, key: torch.Tensor) -> None:
        """Writes the keys (all ranks) over the oldest rows of the queue.

        Arguments
        ---------
        key : torch.Tensor
            ``[2*B, D]`` keys of this rank, view 1 then view 2.
        """
        views = all_gather_no_grad(key.detach().reshape(2, -1, key.shape[1]), 1)
        n = views.shape[1]
        if n > self.queue_size:
            raise ValueError(
                f"moco_queue_size={self.queue_size} must be larger than the "
                f"global batch ({n} keys per view)"
            )
        slots = (int(self.queue_ptr) + torch.arange(n)) % self.queue_size
        slots = slots.to(self.queue.device)
        self.queue[:, slots] = views.to(self.queue.dtype)
        self.queue_ptr.fill_((int(self.queue_ptr) + n) % self.queue_size)


class MoCo(Framework):
    """MoCo's query/key step, key positives and momentum update.

    Modules: ``embedding_model`` (query encoder), ``teacher_model`` (key
    encoder, same architecture) and ``ssl_loss`` (:class:`MoCoLoss`);
    optionally ``projector`` with its EMA copy ``teacher_projector``. The
    momentum follows ``momentum_teacher`` -> ``momentum_teacher_end``
    (equal values: constant, as sslsv's MoCo).

    Example
    -------
    >>> moco = MoCo()
    >>> moco.positive_dim({"ssl_loss": MoCoLoss(dim=6, queue_size=4)})
    6
    >>> moco.trained_modules({"embedding_model": None})
    ['embedding_model']
    """

    name = "moco"
    reference_model = "embedding_model"

    def trained_modules(self, modules) -> List[str]:
        """The query encoder and, if there is one, its projector."""
        names = ["embedding_model"]
        return names + (["projector"] if "projector" in modules else [])

    def positive_dim(self, modules) -> int:
        """The width of the keys (the loss's queue width)."""
        return int(unwrap(modules["ssl_loss"]).queue.shape[2])

    def on_fit_start(self, brain) -> None:
        """Checks the options; the key encoder starts as the query encoder.

        Raises
        ------
        ValueError
            When a module is missing, or the queue is not larger than the
            global batch (``batch_size`` x processes).
        """
        modules = brain.modules
        for name in ("teacher_model", "ssl_loss"):
            if name not in modules:
                raise ValueError(f"MoCo needs a {name!r} module")
        if "projector" in modules and "teacher_projector" not in modules:
            raise ValueError("MoCo with a projector needs 'teacher_projector'")
        loss = unwrap(modules.ssl_loss)
        if not isinstance(loss, MoCoLoss):
            raise ValueError("MoCo needs ssl_loss: !new:...moco.MoCoLoss")
        batch = getattr(brain.hparams, "batch_size", None)
        if batch is not None and loss.queue_size <= int(batch) * world_size():
            raise ValueError(
                f"moco_queue_size={loss.queue_size} must be larger than the "
                f"global batch ({int(batch)} x {world_size()} processes)"
            )
        for hp in ("momentum_teacher", "momentum_teacher_end"):
            value = float(getattr(brain.hparams, hp))
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{hp} must be in [0, 1], got {value}")
        copy_student_to_teacher(modules.embedding_model, modules.teacher_model)
        if "projector" in modules:
            copy_student_to_teacher(
                modules.projector, modules.teacher_projector
            )

    def forward(
        self, brain, groups: List[torch.Tensor], student: torch.Tensor
    ) -> Dict[str, torch.Tensor]:
        """Normalised queries (with gradient) and keys of both views."""
        modules = brain.modules
        if "projector" in modules:
            student = modules.projector(student)
        with torch.no_grad():
            keys = brain.encode(modules.teacher_model, groups[0])
            if "projector" in modules:
                keys = modules.teacher_projector(keys)
        return {
            "query": F.normalize(student, dim=1),
            "key": F.normalize(keys.float(), dim=1),
        }

    def positives(
        self, brain, predictions: Dict, batch_size: int
    ) -> Tuple[torch.Tensor, int]:
        """The keys of both views (two views)."""
        return predictions["key"], 2

    def loss(self, brain, predictions: Dict, indices: torch.Tensor):
        """InfoNCE with the (swapped) keys; then the batch's keys enqueued."""
        keys, views = self.positives(brain, predictions, indices.numel())
        swapped = brain.ssps_positives(indices, predictions, keys, views)
        loss_fn = brain.modules.ssl_loss
        loss = loss_fn(predictions["query"], swapped)
        unwrap(loss_fn).enqueue(keys)
        return loss

    def after_optimizer_step(self, brain) -> None:
        """EMA update of the key encoder (and projector)."""
        momentum = brain.teacher_momentum(brain.optimizer_step - 1)
        modules = brain.modules
        ema_update_(
            modules.teacher_model, unwrap(modules.embedding_model), momentum
        )
        if "projector" in modules:
            ema_update_(
                modules.teacher_projector, unwrap(modules.projector), momentum
            )

    def epoch_stats(self, brain, step: int) -> Dict[str, float]:
        """The key encoder's momentum."""
        return {"momentum": brain.teacher_momentum(step)}

    def __repr__(self) -> str:
        return "MoCo()"
