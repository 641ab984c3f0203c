"""DINO (self-distillation with no labels) as an ``SSLBrain`` framework.

The student (``embedding_model`` + ``head``) sees every view; the teacher
(``teacher_model`` + ``teacher_head``, an EMA of the student) sees the
global views only, and its centred, sharpened outputs are the targets of
:class:`~speechbrain_ssps.losses.DINOLoss`. With SSPS, the teacher's
outputs are the positives: the rows of the anchors SSPS pairs with a
pseudo-positive are replaced by that utterance's stored teacher outputs.

What SSPS stores is the ``queue`` option (yaml key ``dino_queue``):

* ``"bottleneck"``: the teacher head's normalised bottleneck (256-d in the
  paper's head); the current teacher's prototype layer is applied once to
  the rows after the swap;
* ``"logits"``: the teacher's full outputs (65,536-d), as the paper does.

Authors
 * speechbrain-ssps contributors
"""

from __future__ import annotations

from typing import Dict, List, Tuple

import torch

from speechbrain_ssps.frameworks.base import Framework, unwrap
from speechbrain_ssps.precision import full_precision
from speechbrain_ssps.teacher import (
    cancel_last_layer_gradients_,
    copy_student_to_teacher,
    ema_update_,
)

QUEUES = ("bottleneck", "logits")


class DINO(Framework):
    """DINO's student/teacher step, positives and teacher update.

    Arguments
    ---------
    queue : str
        What SSPS stores and swaps: ``"bottleneck"`` or ``"logits"``.
    freeze_last_layer : int
        The head's last layer gets no update during this many first epochs.

    Example
    -------
    >>> from speechbrain_ssps.heads import DINOHead
    >>> head = DINOHead(8, out_dim=32, hidden_dim=16, bottleneck_dim=4)
    >>> modules = {"head": head, "teacher_head": head}
    >>> DINO().positive_dim(modules), DINO("logits").positive_dim(modules)
    (4, 32)
    """

    name = "dino"
    reference_model = "teacher_model"

    def __init__(self, queue: str = "bottleneck", freeze_last_layer: int = 0):
        if queue not in QUEUES:
            raise ValueError(
                f"dino_queue must be one of {QUEUES}, got {queue!r}"
            )
        self.queue = queue
        self.freeze_last_layer = int(freeze_last_layer)

    @classmethod
    def from_hparams(cls, hparams) -> "DINO":
        """``dino_queue`` and ``freeze_last_layer`` of the run."""
        return cls(
            queue=getattr(hparams, "dino_queue", "bottleneck"),
            freeze_last_layer=int(getattr(hparams, "freeze_last_layer", 0)),
        )

    @property
    def stores_logits(self) -> bool:
        """Whether SSPS's positive queue holds full teacher logits."""
        return self.queue == "logits"

    def trained_modules(self, modules) -> List[str]:
        """The student encoder and its head."""
        names = ["embedding_model", "head"]
        return names + (["projector"] if "projector" in modules else [])

    def positive_dim(self, modules) -> int:
        """The teacher head's bottleneck or output width."""
        head = unwrap(modules["teacher_head"])
        return head.out_dim if self.stores_logits else head.bottleneck_dim

    def on_fit_start(self, brain) -> None:
        """The teacher starts as a copy of the student.

        A recovered checkpoint then overwrites it with its saved state.
        The loss's centre moves once per optimizer step (after the EMA),
        from the teacher outputs of the accumulated batches.
        """
        modules = brain.modules
        unwrap(modules.ssl_loss).defer_center_update = True
        copy_student_to_teacher(modules.embedding_model, modules.teacher_model)
        copy_student_to_teacher(modules.head, modules.teacher_head)

    def forward(
        self, brain, groups: List[torch.Tensor], student: torch.Tensor
    ) -> Dict[str, torch.Tensor]:
        """Student logits of every view; teacher outputs of global views.

        Returns
        -------
        dict
            ``student`` [(G+L)*B, out]; ``teacher_bottleneck`` [G*B, 256];
            ``teacher`` [G*B, out] logits when they are what SSPS stores
            (else None: the prototype layer runs once, after the swap).
        """
        modules = brain.modules
        out = {"student": modules.head(student)}
        with torch.no_grad():
            t_repr = brain.encode(modules.teacher_model, groups[0])
            t_bottleneck = modules.teacher_head.bottleneck(t_repr)
            out["teacher_bottleneck"] = t_bottleneck
            out["teacher"] = (
                self._teacher_logits(brain, t_bottleneck)
                if self.stores_logits
                else None
            )
        return out

    def positives(
        self, brain, predictions: Dict, batch_size: int
    ) -> Tuple[torch.Tensor, int]:
        """The teacher's bottleneck (or logits) of the global views."""
        key = "teacher" if self.stores_logits else "teacher_bottleneck"
        return predictions[key], brain.hparams.num_global_views

    def targets(
        self, brain, predictions: Dict, indices: torch.Tensor
    ) -> torch.Tensor:
        """Teacher logits [G*B, out], the SSPS-paired anchors' swapped.

        SSPS swaps what its positive queue stores (the bottleneck or the
        logits); a stored bottleneck goes through the current teacher's
        prototype layer afterwards.
        """
        rows, views = self.positives(brain, predictions, indices.numel())
        targets = brain.ssps_positives(indices, predictions, rows, views)
        if not self.stores_logits:
            targets = self._teacher_logits(brain, targets)
        return targets

    @staticmethod
    @torch.no_grad()
    def _teacher_logits(brain, bottleneck: torch.Tensor) -> torch.Tensor:
        """The teacher's prototype layer in float32 (autocast off)."""
        with full_precision(bottleneck):
            return brain.modules.teacher_head.prototypes(bottleneck.float())

    def loss(self, brain, predictions: Dict, indices: torch.Tensor):
        """DINO's cross-entropy with the (swapped) teacher targets."""
        targets = self.targets(brain, predictions, indices)
        return brain.modules.ssl_loss(
            predictions["student"], targets, brain.epoch - 1
        )

    def before_optimizer_step(self, brain) -> None:
        """No update of the head's last layer in the first epoch(s)."""
        cancel_last_layer_gradients_(
            unwrap(brain.modules.head).last_layer_parameters,
            brain.epoch,
            self.freeze_last_layer,
        )

    def after_optimizer_step(self, brain) -> None:
        """EMA update of the teacher at the step just taken."""
        momentum = brain.teacher_momentum(brain.optimizer_step - 1)
        modules = brain.modules
        ema_update_(
            modules.teacher_model, unwrap(modules.embedding_model), momentum
        )
        ema_update_(modules.teacher_head, unwrap(modules.head), momentum)
        unwrap(modules.ssl_loss).step_center()

    def epoch_stats(self, brain, step: int) -> Dict[str, float]:
        """Teacher momentum and temperature."""
        loss = unwrap(brain.modules.ssl_loss)
        return {
            "momentum": brain.teacher_momentum(step),
            "teacher_temp": loss.teacher_temperature(brain.epoch - 1),
        }

    def __repr__(self) -> str:
        return (
            f"DINO(queue={self.queue!r}, "
            f"freeze_last_layer={self.freeze_last_layer})"
        )
