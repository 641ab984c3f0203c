"""``SSLBrain``: DINO or SimCLR (optionally with SSPS) as a SpeechBrain Brain.

One :class:`speechbrain.core.Brain` subclass trains both frameworks; the
hyperparameters choose which (``framework: dino`` or ``framework: simclr``)
and whether SSPS is on (an ``ssps`` entry in ``modules``). The mapping to the
design (SSPS.md §8):

* ``compute_forward``: Fbank + sentence mean normalisation of every view, the
  student encoder (ECAPA-TDNN) and head, the teacher on the global views
  (DINO), and the un-augmented reference crop through the reference encoder
  (DINO: teacher encoder; SimCLR: the encoder) in eval mode under
  ``no_grad``, so BatchNorm running statistics are never touched by it;
* ``compute_objectives``: one ``ssps.step`` on the positives (sample ->
  swap -> queue update, gated by SSPS's schedule) -> the framework's loss;
* per-step schedules (learning rate, weight decay, teacher momentum) are pure
  functions of the global optimizer step, so a resumed run follows them
  exactly;
* ``optimizers_step``: per-parameter clipping (DINO), the frozen last layer
  during the first epoch(s), clipping over *all* parameter groups otherwise;
* ``on_fit_batch_end``: EMA update of the teacher after each optimizer step.

Expected hyperparameters (see ``recipes/VoxCeleb/SSPS/hparams/*.yaml``):
``framework``, ``modules`` (``compute_features``, ``mean_var_norm``,
``embedding_model``, ``ssl_loss``; DINO: ``head``, ``teacher_model``,
``teacher_head``; SimCLR: optional ``projector``; optional ``ssps``),
``num_global_views``, ``num_local_views``, ``opt_class``, ``lr``,
``lr_final``, ``lr_warmup_epochs``, ``lr_schedule`` (``cosine`` | ``step``),
``weight_decay``, ``weight_decay_end``, ``schedule_epochs``, ``clip_grad``,
``freeze_last_layer``, ``momentum_teacher``, ``momentum_teacher_end``,
``dino_queue`` (``bottleneck`` | ``logits``), ``augmentations``,
``augment_prob``, ``train_logger``, ``keep_checkpoints``, ``sync_batchnorm``
and ``views_pipeline`` (the seeded crop pipeline, whose epoch is set at the
start of each training epoch).

Authors
 * speechbrain-ssps contributors
"""

from __future__ import annotations

import inspect
import random
from typing import Dict, List, Optional

import speechbrain as sb
import torch
from torch.nn.parallel import DistributedDataParallel as DDP

from speechbrain_ssps.schedules import (
    cosine_schedule,
    step_decay,
    teacher_momentum,
)
from speechbrain_ssps.teacher import (
    cancel_last_layer_gradients_,
    clip_gradients_per_parameter_,
    copy_student_to_teacher,
    ema_update_,
)

FRAMEWORKS = ("dino", "simclr")


def _raw(module: torch.nn.Module) -> torch.nn.Module:
    """The module behind a DDP/DP wrapper."""
    return module.module if hasattr(module, "module") else module


def split_decay_groups(modules: List[torch.nn.Module]) -> List[dict]:
    """Parameter groups as reference DINO: no weight decay on biases/norms.

    Arguments
    ---------
    modules : list of torch.nn.Module
        The trained modules.

    Returns
    -------
    list of dict
        ``[{"params": regularized}, {"params": not_regularized,
        "weight_decay": 0.0}]``; group 0 is the regularized one, the group
        whose weight decay follows the schedule.

    Example
    -------
    >>> groups = split_decay_groups([torch.nn.Linear(3, 2)])
    >>> [len(g["params"]) for g in groups]
    [1, 1]
    """
    decay, no_decay = [], []
    for module in modules:
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            if name.endswith(".bias") or param.ndim <= 1:
                no_decay.append(param)
            else:
                decay.append(param)
    return [
        {"params": decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


class SSLBrain(sb.Brain):
    """Self-supervised speaker-embedding training (DINO / SimCLR + SSPS).

    See the module docstring for the hyperparameters it reads. Batches hold
    ``index`` (the utterance index, row order of the training manifest),
    ``view_0`` ... (global views first, then local views) and, with SSPS,
    ``ref`` (the reference crop).
    """

    # ------------------------------------------------------------------
    # Set-up
    # ------------------------------------------------------------------
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        framework = getattr(self.hparams, "framework", None)
        if framework not in FRAMEWORKS:
            raise ValueError(
                f"framework must be one of {FRAMEWORKS}, got {framework!r}"
            )
        self.framework = framework
        self.steps_per_epoch: Optional[int] = None
        self._epoch = 0
        self._augmentations = [
            (aug, len(inspect.signature(aug.forward).parameters) >= 2)
            for aug in (getattr(self.hparams, "augmentations", None) or [])
        ]
        self._aug_seed = int(getattr(self.hparams, "seed", 0))

    @property
    def ssps(self):
        """The SSPS module, or None when SSPS is off."""
        return self.modules["ssps"] if "ssps" in self.modules else None

    def _student_modules(self) -> List[torch.nn.Module]:
        names = ["embedding_model"]
        names += ["head"] if self.framework == "dino" else []
        names += ["projector"] if "projector" in self.modules else []
        return [self.modules[n] for n in names]

    def make_dataloader(self, dataset, stage, **loader_kwargs):
        """Records the number of training steps per epoch for schedules."""
        loader = super().make_dataloader(dataset, stage, **loader_kwargs)
        if stage == sb.Stage.TRAIN:
            self.steps_per_epoch = len(loader)
            if self.steps_per_epoch == 0:
                raise ValueError(
                    "the training loader has no batch: batch_size is larger "
                    "than the training set (per process) with drop_last"
                )
        return loader

    def on_fit_start(self):
        """Initialises the teacher from the student before wrapping/recovery.

        A recovered checkpoint then overwrites the teacher with its own
        saved state.
        """
        if self.framework == "dino":
            copy_student_to_teacher(
                self.modules.embedding_model, self.modules.teacher_model
            )
            copy_student_to_teacher(
                self.modules.head, self.modules.teacher_head
            )
        super().on_fit_start()

    def _wrap_distributed(self):
        """DDP with per-device BatchNorm handling and no buffer broadcast.

        SpeechBrain converts BatchNorm to SyncBatchNorm before wrapping,
        which only runs on GPUs: here the conversion happens on CUDA when
        ``sync_batchnorm`` is True (the default) and never on CPU (gloo),
        where plain BatchNorm keeps per-process statistics. Buffers are not
        re-broadcast at each forward (``broadcast_buffers=False``): the
        student runs several forwards per step (global and local crops), and
        an in-place broadcast between them would invalidate the running
        statistics that BatchNorm saved for its backward pass.
        """
        if not self.distributed_launch:
            return super()._wrap_distributed()
        on_cuda = torch.device(self.device).type == "cuda"
        sync_bn = getattr(self.hparams, "sync_batchnorm", True) and on_cuda
        for name, module in self.modules.items():
            if not any(p.requires_grad for p in module.parameters()):
                continue
            if sync_bn:
                module = torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
            self.modules[name] = DDP(
                module,
                device_ids=[self.device] if on_cuda else None,
                find_unused_parameters=self.find_unused_parameters,
                broadcast_buffers=False,
            )

    def init_optimizers(self):
        """One optimizer over the student; DINO-style decay groups."""
        groups = split_decay_groups([_raw(m) for m in self._student_modules()])
        self.optimizer = self.opt_class(groups)
        self.optimizers_dict = {"optimizer": self.optimizer}
        if self.checkpointer is not None:
            self.checkpointer.add_recoverable("optimizer", self.optimizer)

    # ------------------------------------------------------------------
    # Schedules: pure functions of the global optimizer step
    # ------------------------------------------------------------------
    def _total_steps(self) -> int:
        return max(
            1,
            int(self.hparams.schedule_epochs) * int(self.steps_per_epoch or 1),
        )

    def learning_rate(self, step: int) -> float:
        """Learning rate at a global optimizer step."""
        hp = self.hparams
        if getattr(hp, "lr_schedule", "cosine") == "step":
            return step_decay(
                step,
                self.steps_per_epoch or 1,
                hp.lr,
                factor=hp.lr_decay_factor,
                every_epochs=hp.lr_decay_every,
            )
        warmup = int(
            getattr(hp, "lr_warmup_epochs", 0) * (self.steps_per_epoch or 1)
        )
        return cosine_schedule(
            step,
            self._total_steps(),
            hp.lr,
            getattr(hp, "lr_final", hp.lr),
            warmup_steps=min(warmup, self._total_steps() - 1),
        )

    def weight_decay(self, step: int) -> float:
        """Weight decay of the regularized group at a global step."""
        hp = self.hparams
        wd = float(getattr(hp, "weight_decay", 0.0))
        return cosine_schedule(
            step,
            self._total_steps(),
            wd,
            float(getattr(hp, "weight_decay_end", wd)),
        )

    def teacher_momentum(self, step: int) -> float:
        """EMA momentum of the teacher at a global step."""
        hp = self.hparams
        return teacher_momentum(
            step,
            self._total_steps(),
            base=hp.momentum_teacher,
            final=hp.momentum_teacher_end,
        )

    def on_fit_batch_start(self, batch, should_step):
        """Sets lr and weight decay for the coming optimizer step."""
        lr = self.learning_rate(self.optimizer_step)
        wd = self.weight_decay(self.optimizer_step)
        for i, group in enumerate(self.optimizer.param_groups):
            group["lr"] = lr
            if i == 0:
                group["weight_decay"] = wd

    # ------------------------------------------------------------------
    # Forward
    # ------------------------------------------------------------------
    def _augment(self, wavs: torch.Tensor, view: int) -> torch.Tensor:
        """One augmentation chosen for this view of this step (or none).

        The choice is a pure function of (seed, epoch, step, view), so a
        resumed run makes the same choices; the augmentations' own draws
        (noise file, SNR, RIR) use torch's RNG.
        """
        if not self._augmentations:
            return wavs
        rng = random.Random(
            hash((self._aug_seed, self._epoch, self.step, view))
        )
        if rng.random() >= getattr(self.hparams, "augment_prob", 1.0):
            return wavs
        aug, takes_lengths = rng.choice(self._augmentations)
        lengths = torch.ones(wavs.shape[0], device=wavs.device)
        out = aug(wavs, lengths) if takes_lengths else aug(wavs)
        return out[:, : wavs.shape[1]]

    def _features(self, wavs: torch.Tensor) -> torch.Tensor:
        lengths = torch.ones(wavs.shape[0], device=wavs.device)
        feats = self.modules.compute_features(wavs)
        return self.modules.mean_var_norm(feats, lengths)

    def _encode(self, model, wavs: torch.Tensor) -> torch.Tensor:
        return model(self._features(wavs)).squeeze(1)

    @torch.no_grad()
    def encode_reference(self, wavs: torch.Tensor) -> torch.Tensor:
        """Reference representations: eval mode, no gradient, BN untouched.

        Arguments
        ---------
        wavs : torch.Tensor
            [B, T] un-augmented reference crops.

        Returns
        -------
        torch.Tensor
            [B, D] representations (normalised by SSPS when stored).
        """
        name = (
            "teacher_model" if self.framework == "dino" else ("embedding_model")
        )
        model = _raw(self.modules[name])
        was_training = model.training
        model.eval()
        try:
            return self._encode(model, wavs).float()
        finally:
            model.train(was_training)

    def _view_groups(self, batch, stage) -> List[torch.Tensor]:
        """Global views stacked [G*B, T], then local views [L*B, T]."""
        n_global = self.hparams.num_global_views
        n_local = getattr(self.hparams, "num_local_views", 0)
        views = [
            getattr(batch, f"view_{i}").data for i in range(n_global + n_local)
        ]
        if stage == sb.Stage.TRAIN:
            views = [self._augment(v, i) for i, v in enumerate(views)]
        groups = [torch.cat(views[:n_global])]
        if n_local:
            groups.append(torch.cat(views[n_global:]))
        return groups

    def compute_forward(self, batch, stage):
        """Student (and teacher) outputs, and the reference representation.

        Returns
        -------
        dict
            ``student``: DINO logits [(G+L)*B, out] or SimCLR embeddings
            [2*B, P]; DINO: ``teacher_bottleneck`` [G*B, 256] and, when
            SSPS stores logits, ``teacher`` logits [G*B, out] (else None);
            ``y_ref`` [B, D] when SSPS fills its queues, else None.
        """
        batch = batch.to(self.device)
        groups = self._view_groups(batch, stage)
        out: Dict[str, Optional[torch.Tensor]] = {}
        student_repr = torch.cat(
            [self._encode(self.modules.embedding_model, g) for g in groups]
        )
        if self.framework == "dino":
            out["student"] = self.modules.head(student_repr)
            with torch.no_grad():
                t_repr = self._encode(self.modules.teacher_model, groups[0])
                t_bottleneck = self.modules.teacher_head.bottleneck(t_repr)
                out["teacher_bottleneck"] = t_bottleneck
                # Logits now only if they are what SSPS stores; otherwise
                # the prototype layer runs once, after the swap.
                out["teacher"] = (
                    self.modules.teacher_head.prototypes(t_bottleneck)
                    if self._stores_dino_logits()
                    else None
                )
        else:
            emb = student_repr
            if "projector" in self.modules:
                emb = self.modules.projector(emb)
            out["student"] = emb
        ssps = self.ssps
        out["y_ref"] = (
            self.encode_reference(batch.ref.data)
            if ssps is not None and ssps.filling and stage == sb.Stage.TRAIN
            else None
        )
        return out

    # ------------------------------------------------------------------
    # Objectives
    # ------------------------------------------------------------------
    def _stores_dino_logits(self) -> bool:
        """Whether SSPS's DINO queue holds full teacher logits."""
        return getattr(self.hparams, "dino_queue", "bottleneck") == "logits"

    def _ssps_dino_targets(self, predictions, indices) -> torch.Tensor:
        """Teacher logits with SSPS pseudo-positives swapped in.

        With the default bottleneck queue, the teacher's 256-d bottlenecks
        are swapped and the current teacher's prototype layer is applied
        once to the result; with ``dino_queue: logits`` the full logits are
        swapped (the paper's queue).
        """
        full = self._stores_dino_logits()
        targets = predictions["teacher" if full else "teacher_bottleneck"]
        n_global = self.hparams.num_global_views
        targets = self._ssps_positives(indices, predictions, targets, n_global)
        if full:
            return targets
        with torch.no_grad():
            return self.modules.teacher_head.prototypes(targets)

    def _ssps_positives(self, indices, predictions, positives, views):
        """Positive rows [views * B, P] after ``SSPS.step`` (if SSPS is on).

        The rows are viewed as SSPS's [V, B, P] layout, passed through
        ``SSPS.step`` (sample, swap and queue update, gated by its schedule)
        and returned in the caller's layout.
        """
        if self.ssps is None:
            return positives
        stacked = positives.reshape(views, indices.numel(), -1)
        out = self.ssps.step(indices, predictions["y_ref"], stacked)
        return out.reshape(positives.shape)

    def compute_objectives(self, predictions, batch, stage):
        """SSPS step (sample -> swap -> update) on the positives -> loss."""
        indices = batch.index.to(self.device).long().reshape(-1)
        if self.framework == "dino":
            teacher = self._ssps_dino_targets(predictions, indices)
            return self.modules.ssl_loss(
                predictions["student"], teacher, self._epoch - 1
            )
        z1, z2 = predictions["student"].split(indices.numel())
        z2 = self._ssps_positives(indices, predictions, z2, 1)
        return self.modules.ssl_loss(z1, z2)

    # ------------------------------------------------------------------
    # Optimisation
    # ------------------------------------------------------------------
    def optimizers_step(self):
        """Clipping, last-layer freeze, step and bookkeeping.

        DINO (``clip_grad`` > 0): each parameter's gradient is clipped to
        ``clip_grad`` on its own. Otherwise the global norm over every
        parameter group is clipped to ``max_grad_norm`` (SpeechBrain's
        default clips group 0 only). During the first ``freeze_last_layer``
        epochs the DINO head's last layer gets no update.
        """
        opt = self.optimizer
        self.scaler.unscale_(opt)
        params = [p for g in opt.param_groups for p in g["params"]]
        clip = float(getattr(self.hparams, "clip_grad", 0.0) or 0.0)
        if clip > 0:
            clip_gradients_per_parameter_(params, clip)
        elif self.max_grad_norm and self.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(params, self.max_grad_norm)
        if self.framework == "dino":
            cancel_last_layer_gradients_(
                _raw(self.modules.head).last_layer_parameters,
                self._epoch,
                int(getattr(self.hparams, "freeze_last_layer", 0)),
            )
        if not self.scaler.is_enabled() and self.skip_nonfinite_grads:
            self.check_gradients()
        self.scaler.step(opt)
        self.scaler.update()
        opt.zero_grad(set_to_none=True)
        self.optimizer_step += 1

    def on_fit_batch_end(self, batch, outputs, loss, should_step):
        """EMA update of the teacher after each optimizer step (DINO)."""
        if self.framework != "dino" or not should_step:
            return
        # optimizer_step was incremented: the step just taken is step - 1.
        momentum = self.teacher_momentum(self.optimizer_step - 1)
        ema_update_(
            self.modules.teacher_model,
            _raw(self.modules.embedding_model),
            momentum,
        )
        ema_update_(
            self.modules.teacher_head, _raw(self.modules.head), momentum
        )

    # ------------------------------------------------------------------
    # Stage hooks
    # ------------------------------------------------------------------
    def on_stage_start(self, stage, epoch=None):
        """Enters the epoch in SSPS (k-means when active)."""
        if stage == sb.Stage.TRAIN:
            self._epoch = int(epoch or 0)
            # Seeded crops are a function of the epoch (set before the
            # DataLoader iterator and its workers are created).
            views = getattr(self.hparams, "views_pipeline", None)
            if views is not None and hasattr(views, "set_epoch"):
                views.set_epoch(self._epoch)
            if self.ssps is not None:
                self.ssps.on_epoch_start(self._epoch)

    def epoch_stats(self) -> Dict[str, float]:
        """Schedules and SSPS diagnostics of the current epoch."""
        step = max(self.optimizer_step - 1, 0)
        stats = {"lr": self.learning_rate(step), "wd": self.weight_decay(step)}
        if self.framework == "dino":
            stats["momentum"] = self.teacher_momentum(step)
            stats["teacher_temp"] = _raw(
                self.modules.ssl_loss
            ).teacher_temperature(self._epoch - 1)
        if self.ssps is not None:
            stats.update(self.ssps.metrics())
        return stats

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Logs the epoch and saves a checkpoint (every rank calls these)."""
        if stage != sb.Stage.TRAIN:
            return
        stats = self.epoch_stats()
        meta = {"epoch": epoch, "lr": stats.pop("lr")}
        train_stats = {"loss": stage_loss, **stats}
        self.hparams.train_logger.log_stats(
            stats_meta=meta, train_stats=train_stats
        )
        if self.checkpointer is not None:
            self.checkpointer.save_and_keep_only(
                meta={"epoch": int(epoch), "loss": float(stage_loss)},
                end_of_epoch=True,
                num_to_keep=int(getattr(self.hparams, "keep_checkpoints", 1)),
            )
