"""Mixed precision (``--precision=bf16|fp16``) and gradient accumulation.

SpeechBrain runs ``compute_forward`` and ``compute_objectives`` under
``torch.autocast`` (``--precision``), scales the loss with a
``GradScaler`` for fp16 on CUDA, and steps the optimizer every
``--grad_accumulation_factor`` batches. Under autocast, matrix products and
convolutions run in half precision; element-wise operations keep their
inputs' dtype. This package keeps **full precision (float32, autocast
disabled) where half precision would go wrong**:

* **Front end**: SpeechBrain's ``Fbank`` forward is decorated with
  ``fwd_default_precision`` (float32 in and out); ``InputNormalization``
  (sentence mean) is element-wise on that float32 output.
* **Losses**: ``DINOLoss`` and ``NTXentLoss`` (``losses.py``), MoCo's
  InfoNCE (``MoCoLoss``), SwAV's swapped prediction with its prototype
  scores (``SwAVLoss``; Sinkhorn-Knopp itself in float64) and VICReg's
  variance and covariance (``VICRegLoss``) cast their inputs to float32 in
  an autocast-disabled region: temperatures of 0.03-0.2 turn bfloat16's
  ~3 significant digits into logit errors of a sizeable fraction of a
  unit, and a covariance of bf16 products loses the small off-diagonal
  terms.
* **DINO's teacher targets**: the teacher's prototype layer (applied to the
  bottleneck, after SSPS's swap or to the logits SSPS stores) runs in
  float32, since the targets are sharpened by ``tau_t = 0.04``. The
  **centre** is a float32 buffer updated from the float32 teacher logits.
* **SSPS**: ``SSLBrain.ssps_positives`` runs ``SSPS.step`` (sampling, the
  k-NN similarities, the swap and the queue update) on float32 rows with
  autocast off, so swapped rows come back in float32 (before, the stored
  rows were cast to the bf16 of the batch); the queues store explicitly
  cast rows of their own ``queue_dtype`` (float32 by default; references
  normalised in float32 first). k-means and the clusters' neighbours
  (``SSPS.cluster``) run on float32 rows with autocast off (SSLBrain calls
  them outside autocast anyway; the region guards other callers). The
  ``ssps_fill: pass`` fill pass and the epoch validation run outside
  autocast (float32).
* **MoCo's key queue** and **SwAV's queue**: float32 buffers, written with
  an explicit cast.
* **Teacher EMA** (``teacher.ema_update_``): float32 parameters, updated
  after the optimizer step, outside autocast.
* The encoders, the projection heads, the student's DINO prototype layer
  and the reference encoder run in the autocast dtype; their outputs are
  cast to float32 by the consumers above.

Gradient accumulation: SpeechBrain steps when ``step % factor == 0``, with
``step`` the 1-based batch index of the epoch, and drops the gradient of
the last ``batches % factor`` batches of an epoch (``zero_grad`` at the
end of the stage). An epoch therefore has ``batches // factor`` optimizer
steps (:func:`optimizer_steps_per_epoch`), which is what the schedules of
``SSLBrain`` count. Per optimizer step: the lr/wd/momentum values, the
clipping and DINO's last-layer rule, the teacher EMA (DINO, MoCo) and
DINO's centre (its teacher-output mean over the accumulated batches). Per
batch: SSPS's queues and MoCo's and SwAV's queues (every anchor and key of
every batch enters them, as with one large batch).

Authors
 * speechbrain-ssps contributors
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Union

import torch

__all__ = ["full_precision", "optimizer_steps_per_epoch"]


@contextlib.contextmanager
def full_precision(
    where: Union[torch.Tensor, torch.device, str],
) -> Iterator[None]:
    """A region where autocast is off on the device of ``where``.

    Tensors created before the region keep their dtype: cast them with
    ``.float()`` inside it.

    Arguments
    ---------
    where : torch.Tensor, torch.device or str
        A tensor on the device (or the device itself).

    Example
    -------
    >>> a = torch.ones(2, 2)
    >>> with torch.autocast("cpu", dtype=torch.bfloat16):
    ...     half = (a @ a).dtype
    ...     with full_precision(a):
    ...         full = (a @ a).dtype
    >>> half, full
    (torch.bfloat16, torch.float32)
    """
    if isinstance(where, torch.Tensor):
        device_type = where.device.type
    else:
        device_type = torch.device(where).type
    with torch.autocast(device_type, enabled=False):
        yield


def optimizer_steps_per_epoch(batches: int, accumulation: int = 1) -> int:
    """Optimizer steps SpeechBrain takes in an epoch of ``batches``.

    Arguments
    ---------
    batches : int
        Training batches per epoch (per process).
    accumulation : int
        ``--grad_accumulation_factor``.

    Returns
    -------
    int
        ``batches // accumulation`` (the last ``batches % accumulation``
        batches' gradients are dropped at the end of the epoch).

    Raises
    ------
    ValueError
        If ``accumulation`` < 1, or it is larger than ``batches``: the
        epoch would have no optimizer step.

    Example
    -------
    >>> optimizer_steps_per_epoch(10, 1), optimizer_steps_per_epoch(10, 3)
    (10, 3)
    """
    batches, accumulation = int(batches), int(accumulation)
    if accumulation < 1:
        raise ValueError(
            f"--grad_accumulation_factor must be >= 1, got {accumulation}"
        )
    if accumulation > batches:
        raise ValueError(
            f"--grad_accumulation_factor={accumulation} is larger than the "
            f"{batches} training batches of an epoch: no optimizer step "
            "would be taken; lower it or --batch_size"
        )
    return batches // accumulation
