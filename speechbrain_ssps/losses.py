"""Self-supervised objectives: the DINO loss and SimCLR's NT-Xent loss.

Both follow the SSPS authors' implementation (theolepage/sslsv,
``sslsv/methods/DINO/DINOLoss.py`` and ``sslsv/methods/SimCLR/SimCLRLoss.py``)
and reference DINO (facebookresearch/dino, ``main_dino.py``), with the pair
loops replaced by single matrix products.

* ``DINOLoss``: cross-entropy between the centred, sharpened teacher
  distribution and the student distribution, over every (teacher global view,
  student view) pair except a view with itself, averaged over pairs and batch.
  It owns the ``center`` buffer (an EMA of the teacher outputs, all-reduced
  over ranks).
* ``NTXentLoss``: SimCLR's normalised-temperature cross-entropy on cosine
  similarities, with the negatives of all ranks gathered with an
  autograd-aware all-gather.

Both losses run in float32 with autocast disabled: with temperatures of
0.03-0.04, bf16 logits would be off by a sizeable fraction of a unit (the
full list of what keeps full precision: :mod:`speechbrain_ssps.precision`).
"""

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from speechbrain_ssps.distributed import (
    all_gather_no_grad,
    all_gather_with_grad,
    all_reduce_mean_,
    rank,
)


class DINOLoss(nn.Module):
    """DINO self-distillation loss with teacher centring and sharpening.

    For teacher global view ``g`` and student view ``v`` (``v != g``), the
    term is ``mean_b sum_d -softmax((t_gb - c) / tau_t)_d *
    log_softmax(s_vb / tau_s)_d``; the loss is the mean of these terms. The
    teacher side carries no gradient. After each call, the centre moves
    towards the batch mean of the raw teacher outputs (mean over all ranks):
    ``c <- m * c + (1 - m) * mean(t)``, with the centre used by the loss being
    the one from before the update (as in reference DINO and sslsv). With
    ``defer_center_update`` (set by the DINO framework), the calls only
    accumulate and :meth:`step_center` updates once per optimizer step.

    Arguments
    ---------
    out_dim : int
        Number of prototypes (dimension of the head outputs).
    n_global : int
        Number of global views; the teacher sees only these.
    n_local : int
        Number of local views (student only).
    student_temp : float
        Student temperature ``tau_s``.
    teacher_temp : float
        Teacher temperature ``tau_t`` after the warm-up.
    warmup_teacher_temp : float
        Teacher temperature at epoch 0.
    warmup_teacher_temp_epochs : int
        Number of warm-up epochs: the temperature goes linearly from
        ``warmup_teacher_temp`` (epoch 0) to ``teacher_temp`` (epoch
        ``warmup_teacher_temp_epochs - 1``), like ``numpy.linspace`` in
        reference DINO, and stays at ``teacher_temp`` afterwards.
    center_momentum : float
        Momentum ``m`` of the centre update.

    Example
    -------
    >>> loss_fn = DINOLoss(out_dim=8, n_global=2, n_local=1)
    >>> student = torch.randn(3 * 4, 8, requires_grad=True)
    >>> teacher = torch.randn(2 * 4, 8)
    >>> loss = loss_fn(student, teacher, epoch=0)
    >>> loss.backward()
    >>> loss.dim(), student.grad.shape
    (0, torch.Size([12, 8]))
    >>> bool(loss_fn.center.abs().sum() > 0)
    True
    """

    def __init__(
        self,
        out_dim: int,
        n_global: int = 2,
        n_local: int = 4,
        student_temp: float = 0.1,
        teacher_temp: float = 0.04,
        warmup_teacher_temp: float = 0.04,
        warmup_teacher_temp_epochs: int = 0,
        center_momentum: float = 0.9,
    ):
        super().__init__()
        if out_dim < 1:
            raise ValueError(f"out_dim must be >= 1, got {out_dim}")
        if n_global < 1:
            raise ValueError(f"n_global must be >= 1, got {n_global}")
        if n_local < 0:
            raise ValueError(f"n_local must be >= 0, got {n_local}")
        if n_global + n_local < 2:
            raise ValueError(
                "DINOLoss needs at least 2 views in total (n_global + "
                f"n_local), got {n_global + n_local}"
            )
        for name, value in (
            ("student_temp", student_temp),
            ("teacher_temp", teacher_temp),
            ("warmup_teacher_temp", warmup_teacher_temp),
        ):
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        if warmup_teacher_temp_epochs < 0:
            raise ValueError(
                "warmup_teacher_temp_epochs must be >= 0, got "
                f"{warmup_teacher_temp_epochs}"
            )
        if not 0.0 <= center_momentum <= 1.0:
            raise ValueError(
                f"center_momentum must be in [0, 1], got {center_momentum}"
            )
        self.out_dim = int(out_dim)
        self.n_global = int(n_global)
        self.n_local = int(n_local)
        self.student_temp = float(student_temp)
        self.teacher_temp = float(teacher_temp)
        self.warmup_teacher_temp = float(warmup_teacher_temp)
        self.warmup_teacher_temp_epochs = int(warmup_teacher_temp_epochs)
        self.center_momentum = float(center_momentum)
        self.register_buffer("center", torch.zeros(1, out_dim))
        #: True: ``forward`` only accumulates the teacher outputs and
        #: :meth:`step_center` moves the centre (once per optimizer step).
        self.defer_center_update = False
        self._pending: Optional[torch.Tensor] = None  # sum of [1, out_dim]
        self._pending_rows = 0

    @property
    def n_views(self) -> int:
        """Total number of student views (global then local)."""
        return self.n_global + self.n_local

    def teacher_temperature(self, epoch: int) -> float:
        """Teacher temperature for a 0-based epoch index.

        Arguments
        ---------
        epoch : int
            Number of finished epochs (0 during the first epoch).

        Returns
        -------
        float
            The temperature ``tau_t`` used during that epoch.

        Example
        -------
        >>> loss_fn = DINOLoss(8, warmup_teacher_temp=0.04, teacher_temp=0.07,
        ...                    warmup_teacher_temp_epochs=4)
        >>> [round(loss_fn.teacher_temperature(e), 3) for e in range(6)]
        [0.04, 0.05, 0.06, 0.07, 0.07, 0.07]
        """
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0 (0-based), got {epoch}")
        n_warm = self.warmup_teacher_temp_epochs
        if epoch >= n_warm:
            return self.teacher_temp
        if n_warm == 1:
            return self.warmup_teacher_temp
        frac = epoch / (n_warm - 1)
        start, end = self.warmup_teacher_temp, self.teacher_temp
        return start + (end - start) * frac

    def _check_shapes(self, student_out, teacher_out) -> int:
        """Validate the inputs and return the per-view batch size."""
        if student_out.dim() != 2 or teacher_out.dim() != 2:
            raise ValueError(
                "DINOLoss expects 2-D student_out and teacher_out, got "
                f"{tuple(student_out.shape)} and {tuple(teacher_out.shape)}"
            )
        for name, out in (
            ("student_out", student_out),
            ("teacher_out", teacher_out),
        ):
            if out.shape[1] != self.out_dim:
                raise ValueError(
                    f"{name} has {out.shape[1]} columns, expected out_dim="
                    f"{self.out_dim}"
                )
        rows = teacher_out.shape[0]
        if rows == 0 or rows % self.n_global != 0:
            raise ValueError(
                f"teacher_out has {rows} rows, not a positive multiple of "
                f"n_global={self.n_global}"
            )
        batch = rows // self.n_global
        if student_out.shape[0] != self.n_views * batch:
            raise ValueError(
                f"student_out has {student_out.shape[0]} rows, expected "
                f"(n_global + n_local) * B = {self.n_views} * {batch}"
            )
        return batch

    def forward(
        self,
        student_out: torch.Tensor,
        teacher_out: torch.Tensor,
        epoch: int,
    ) -> torch.Tensor:
        """Compute the loss, then update the centre.

        Arguments
        ---------
        student_out : torch.Tensor
            Student head outputs ``[(n_global + n_local) * B, out_dim]``,
            view by view (global views first, in the teacher's order).
        teacher_out : torch.Tensor
            Teacher head outputs of the global views ``[n_global * B,
            out_dim]``, view by view. No gradient flows into it.
        epoch : int
            0-based epoch index (number of finished epochs), which selects
            the teacher temperature.

        Returns
        -------
        torch.Tensor
            Scalar loss.
        """
        batch = self._check_shapes(student_out, teacher_out)
        if self.center.device != teacher_out.device:
            self.center = self.center.to(teacher_out.device)
        n_g, n_v, dim = self.n_global, self.n_views, self.out_dim
        tau_t = self.teacher_temperature(epoch)
        with torch.autocast(student_out.device.type, enabled=False):
            log_s = F.log_softmax(student_out.float() / self.student_temp, -1)
            with torch.no_grad():
                teacher = teacher_out.detach().float()
                probs_t = F.softmax((teacher - self.center) / tau_t, dim=-1)
            # ce[g, v] = -mean_b sum_d p_t[g, b, d] * log_s[v, b, d], all
            # pairs at once as one [G, B*D] x [B*D, V] product.
            ce = (
                probs_t.reshape(n_g, batch * dim)
                @ log_s.reshape(n_v, batch * dim).T
            )
            ce = -ce / batch
            keep = torch.ones(n_g, n_v, dtype=torch.bool, device=ce.device)
            keep[torch.arange(n_g), torch.arange(n_g)] = False
            loss = ce[keep].mean()
        if self.defer_center_update:
            self.accumulate_center(teacher_out)
        else:
            self.update_center(teacher_out)
        return loss

    @torch.no_grad()
    def accumulate_center(self, teacher_out: torch.Tensor) -> None:
        """Adds the raw teacher outputs to the next :meth:`step_center`.

        Arguments
        ---------
        teacher_out : torch.Tensor
            Teacher outputs ``[n_global * B, out_dim]`` (before centring).
        """
        rows = teacher_out.detach().float().sum(dim=0, keepdim=True)
        self._pending = rows if self._pending is None else self._pending + rows
        self._pending_rows += teacher_out.shape[0]

    @torch.no_grad()
    def step_center(self) -> None:
        """One centre update from the outputs accumulated since the last.

        With gradient accumulation, the batches of one optimizer step are
        centred with the same centre, then it moves once towards their
        mean (all ranks): as one batch of their total size. No-op when
        nothing was accumulated.

        Example
        -------
        >>> loss_fn = DINOLoss(out_dim=2, n_global=2, n_local=0)
        >>> loss_fn.defer_center_update = True
        >>> for t in (torch.zeros(2, 2), torch.full((2, 2), 2.0)):
        ...     _ = loss_fn(torch.randn(2, 2), t, epoch=0)
        >>> loss_fn.center.tolist()  # unchanged until the step
        [[0.0, 0.0]]
        >>> loss_fn.step_center()
        >>> [round(v, 4) for v in loss_fn.center[0].tolist()]  # 0.1 * 1.0
        [0.1, 0.1]
        """
        if self._pending is None:
            return
        batch_mean = self._pending / self._pending_rows
        self._pending, self._pending_rows = None, 0
        self._move_center(batch_mean)

    @torch.no_grad()
    def update_center(self, teacher_out: torch.Tensor) -> None:
        """EMA update of the centre from the raw teacher outputs.

        Arguments
        ---------
        teacher_out : torch.Tensor
            Teacher outputs ``[n_global * B, out_dim]`` (before centring).
            The batch mean is averaged over ranks when distributed.
        """
        self._move_center(
            teacher_out.detach().float().mean(dim=0, keepdim=True)
        )

    def _move_center(self, batch_mean: torch.Tensor) -> None:
        """``c <- m c + (1 - m) mean``, the mean averaged over ranks."""
        all_reduce_mean_(batch_mean)
        m = self.center_momentum
        self.center.mul_(m).add_(batch_mean.to(self.center), alpha=1.0 - m)


class NTXentLoss(nn.Module):
    """SimCLR's NT-Xent loss over both views, with negatives from all ranks.

    The embeddings of both views are L2-normalised and stacked into
    ``Z = [z1; z2]`` (``2N`` rows). Each local row is compared, by cosine
    similarity divided by the temperature, with every row of ``Z`` gathered
    from all ranks. Its positive is the other view of the same utterance; all
    other gathered rows except itself are negatives. The loss is the
    cross-entropy of the positive, averaged over the ``2N`` local rows, as in
    sslsv's ``SimCLRLoss``. Under DDP the gradient averaging over ranks turns
    this into the loss of the concatenated global batch.

    False-negative masking (``assignments``, SSPS): a negative pair of two
    *different* utterances with the same cluster index gets the logit 0 (a
    cosine of 0) instead of its similarity, as in sslsv's ``SimCLRLoss``
    (``sslsv/methods/SimCLR/SimCLRLoss.py``, ``ssps_assignments``); the
    positive and the row itself are never touched. Unlike sslsv, ``-1`` (no
    cluster) never matches, not even another ``-1``: sslsv assigns every
    utterance, whereas here utterances not yet in the reference queue are
    unassigned and masking them with each other would drop true negatives.

    Arguments
    ---------
    temperature : float
        Softmax temperature ``tau``.

    Example
    -------
    >>> loss_fn = NTXentLoss(temperature=0.1)
    >>> z1 = torch.randn(4, 16, requires_grad=True)
    >>> loss = loss_fn(z1, z1.detach() + 0.01 * torch.randn(4, 16))
    >>> loss.backward()
    >>> loss.dim(), z1.grad.shape
    (0, torch.Size([4, 16]))
    """

    def __init__(self, temperature: float = 0.03):
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)

    def forward(
        self,
        z1: torch.Tensor,
        z2: torch.Tensor,
        assignments: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Compute the loss for one (anchor view, positive view) batch.

        Arguments
        ---------
        z1 : torch.Tensor
            Embeddings of view 1, ``[N, D]``.
        z2 : torch.Tensor
            Embeddings of view 2, ``[N, D]``; row ``i`` is the positive of
            ``z1[i]`` and vice versa. Every rank must use the same ``N``.
        assignments : torch.Tensor, optional
            LongTensor[N], the cluster of each anchor (-1 = none). Negatives
            of the same cluster (both views, all ranks) get the logit 0.
            Under DDP every rank passes its own anchors' clusters (or every
            rank passes None).

        Returns
        -------
        torch.Tensor
            Scalar loss.
        """
        if z1.dim() != 2 or z1.shape != z2.shape or z1.shape[0] == 0:
            raise ValueError(
                "NTXentLoss expects two non-empty [N, D] tensors of the same "
                f"shape, got {tuple(z1.shape)} and {tuple(z2.shape)}"
            )
        n = z1.shape[0]
        with torch.autocast(z1.device.type, enabled=False):
            z = F.normalize(torch.cat((z1, z2), dim=0).float(), p=2, dim=1)
            z_all = all_gather_with_grad(z)
            logits = z @ z_all.T / self.temperature  # [2N, W * 2N]
            rows = torch.arange(2 * n, device=z.device)
            offset = rank() * 2 * n
            self_mask = torch.zeros_like(logits, dtype=torch.bool)
            self_mask[rows, offset + rows] = True
            targets = offset + (rows + n) % (2 * n)
            if assignments is not None:
                same = self._same_cluster(assignments, n, z.device)
                same[rows, targets] = False  # the positive stays
                logits = logits.masked_fill(same, 0.0)
            logits = logits.masked_fill(self_mask, float("-inf"))
            return F.cross_entropy(logits, targets)

    @staticmethod
    def _same_cluster(
        assignments: torch.Tensor, n: int, device: torch.device
    ) -> torch.Tensor:
        """Bool[2N, W * 2N]: local row and gathered column share a cluster.

        Rows and columns follow ``[z1; z2]`` (the cluster of an anchor holds
        for both its views); -1 matches nothing.
        """
        if assignments.dim() != 1 or assignments.numel() != n:
            raise ValueError(
                f"NTXentLoss: assignments must be a 1-D tensor of {n} "
                f"cluster indices, got shape {tuple(assignments.shape)}"
            )
        local = assignments.to(device=device, dtype=torch.long).repeat(2)
        gathered = all_gather_no_grad(local)
        same = local[:, None] == gathered[None, :]
        return same & (local >= 0)[:, None]
