"""``SSLBrain``: self-supervised speaker embeddings (optionally with SSPS).

One :class:`speechbrain.core.Brain` subclass trains every framework; the
yaml's ``framework`` entry is the object that says what is specific to it
(:class:`~speechbrain_ssps.frameworks.DINO`,
:class:`~speechbrain_ssps.frameworks.SimCLR`, or your own
:class:`~speechbrain_ssps.frameworks.Framework`). SSPS is on when the
modules hold an ``ssps`` entry. What the Brain itself does (SSPS.md §8):

* ``compute_forward``: Fbank + sentence mean normalisation of every view,
  the student encoder, the framework's own outputs, and the un-augmented
  reference crop through the framework's reference encoder in eval mode
  under ``no_grad`` (BatchNorm running statistics are never touched by it);
* ``compute_objectives``: the framework's loss, whose positives pass
  through :meth:`SSLBrain.ssps_positives`, one ``SSPS.step`` (sample ->
  swap -> queue update, gated by SSPS's schedule);
* per-step schedules (lr, weight decay, teacher momentum) are pure
  functions of the global optimizer step: a resumed run follows them
  (``--grad_accumulation_factor``, ``--precision``: :mod:`.precision`);
* ``optimizers_step``: per-parameter clipping (``clip_grad`` > 0) or the
  norm over *all* parameter groups, then the framework's gradient rules;
  after the step, the framework's update (e.g. DINO's EMA teacher).

Expected hyperparameters (see ``recipes/VoxCeleb/SSPS/hparams/*.yaml``):
``framework``, ``modules`` (``compute_features``, ``mean_var_norm``,
``embedding_model``, ``ssl_loss`` and what the framework uses),
``num_global_views``, ``num_local_views``, ``opt_class``, ``lr``,
``lr_final``, ``lr_warmup_epochs``, ``lr_schedule`` (``cosine`` | ``step``),
``weight_decay``, ``weight_decay_end``, ``schedule_epochs``, ``clip_grad``,
``momentum_teacher``, ``momentum_teacher_end``, ``augment_prob``,
``train_logger``, ``keep_checkpoints``, ``sync_batchnorm``, ``seed``, with SSPS
``ssps_fill`` (:mod:`.queue_filling`); augmentations and crops: arguments.

Authors
 * speechbrain-ssps contributors
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import speechbrain as sb
import torch

from speechbrain_ssps import checkpoint_selection as selection
from speechbrain_ssps import precision
from speechbrain_ssps.curves import write_training_curves
from speechbrain_ssps.frameworks import resolve_framework, unwrap
from speechbrain_ssps.param_groups import split_decay_groups
from speechbrain_ssps.queue_filling import (
    check_fill_mode,
    fill_pass,
    fills_during_steps,
    needs_fill_pass,
)
from speechbrain_ssps.schedules import (
    cosine_schedule,
    step_decay,
    teacher_momentum,
)
from speechbrain_ssps.speechbrain_internals import (
    step_optimizers,
    wrap_distributed,
)
from speechbrain_ssps.teacher import clip_gradients_per_parameter_
from speechbrain_ssps.view_augmentation import ViewAugmenter


class SSLBrain(sb.Brain):
    """Self-supervised speaker-embedding training (any framework + SSPS).

    See the module docstring for the hyperparameters it reads. Batches hold
    ``index`` (the utterance index, row order of the training manifest),
    ``view_0`` ... (global views first, then local views) and, with SSPS,
    ``ref`` (the reference crop).

    Arguments
    ---------
    *args, **kwargs
        As for :class:`speechbrain.core.Brain` (``modules``, ``opt_class``,
        ``hparams``, ``run_opts``, ``checkpointer``). An ``ssps`` module is
        registered with the checkpointer (``optional_load``: a plain run's
        checkpoint still loads).
    augmentations : sequence of callables, optional
        Waveform augmentations, one per training view with probability
        ``augment_prob`` (see :class:`.view_augmentation.ViewAugmenter`).
    views_pipeline : object, optional
        The seeded crop pipeline; its ``set_epoch`` is called at the start
        of each training epoch, before the loader's workers start.
    validator : EpochValidator, optional
        Verification at the end of its epochs, logged as ``valid_eer`` and
        ``valid_mindcf`` (:mod:`speechbrain_ssps.epoch_validation`).
    """

    def __init__(
        self,
        *args,
        augmentations: Optional[Sequence] = None,
        views_pipeline=None,
        validator=None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.framework = resolve_framework(
            getattr(self.hparams, "framework", None), self.hparams
        )
        self.steps_per_epoch: Optional[int] = None
        self._epoch = 0
        self.augment = ViewAugmenter(
            augmentations or [],
            seed=int(getattr(self.hparams, "seed", 0)),
            prob=getattr(self.hparams, "augment_prob", 1.0),
        )
        self.views_pipeline = views_pipeline
        self.validator = validator  # an EpochValidator, or None
        self.ssps_fill = check_fill_mode(
            getattr(self.hparams, "ssps_fill", None) or "epoch"
        )
        self._train_loader = None
        if self.ssps is not None and self.checkpointer is not None:
            self.checkpointer.add_recoverable(
                "ssps", self.ssps, optional_load=True
            )

    @property
    def ssps(self):
        """The SSPS module, or None when SSPS is off."""
        return self.modules["ssps"] if "ssps" in self.modules else None

    @property
    def epoch(self) -> int:
        """The current training epoch (1-based; 0 before the first)."""
        return self._epoch

    def _student_modules(self) -> List[torch.nn.Module]:
        names = self.framework.trained_modules(self.modules)
        return [self.modules[n] for n in names]

    def make_dataloader(self, dataset, stage, **loader_kwargs):
        """Records the number of training steps per epoch for schedules."""
        loader = super().make_dataloader(dataset, stage, **loader_kwargs)
        if stage == sb.Stage.TRAIN:
            self._train_loader = loader  # for SSPS's fill pass
            self.steps_per_epoch = len(loader)
            if self.steps_per_epoch == 0:
                raise ValueError(
                    "the training loader has no batch: batch_size is larger "
                    "than the training set (per process) with drop_last"
                )
            if self.debug:  # SpeechBrain ends each epoch at debug_batches
                self.steps_per_epoch = min(len(loader), int(self.debug_batches))
            _ = self.optimizer_steps_per_epoch  # raises if factor > batches
        return loader

    def on_fit_start(self):
        """The framework's set-up (before wrapping and recovery), then SB's."""
        self.framework.on_fit_start(self)
        super().on_fit_start()

    def _wrap_distributed(self):
        """DDP with per-device BatchNorm handling and no buffer broadcast.

        See :func:`speechbrain_ssps.speechbrain_internals.wrap_distributed`
        (``sync_batchnorm``: SyncBatchNorm on CUDA only).
        """
        if not self.distributed_launch:
            return super()._wrap_distributed()
        wrap_distributed(self, getattr(self.hparams, "sync_batchnorm", True))

    def init_optimizers(self):
        """One optimizer over the student; DINO-style decay groups."""
        groups = split_decay_groups(
            [unwrap(m) for m in self._student_modules()]
        )
        self.optimizer = self.opt_class(groups)
        self.optimizers_dict = {"optimizer": self.optimizer}
        if self.checkpointer is not None:
            self.checkpointer.add_recoverable("optimizer", self.optimizer)

    # ------------------------------------------------------------------
    # Schedules: pure functions of the global optimizer step
    # ------------------------------------------------------------------
    @property
    def optimizer_steps_per_epoch(self) -> int:
        """Optimizer steps per epoch: batches // grad_accumulation_factor."""
        return precision.optimizer_steps_per_epoch(
            self.steps_per_epoch or 1, self.grad_accumulation_factor
        )

    def _total_steps(self) -> int:
        epochs = int(self.hparams.schedule_epochs)
        return max(1, epochs * self.optimizer_steps_per_epoch)

    def learning_rate(self, step: int) -> float:
        """Learning rate at a global optimizer step."""
        hp = self.hparams
        if getattr(hp, "lr_schedule", "cosine") == "step":
            return step_decay(
                step,
                self.optimizer_steps_per_epoch,
                hp.lr,
                factor=hp.lr_decay_factor,
                every_epochs=hp.lr_decay_every,
            )
        warmup = int(
            getattr(hp, "lr_warmup_epochs", 0) * self.optimizer_steps_per_epoch
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
    def _features(self, wavs: torch.Tensor) -> torch.Tensor:
        lengths = torch.ones(wavs.shape[0], device=wavs.device)
        feats = self.modules.compute_features(wavs)
        return self.modules.mean_var_norm(feats, lengths)

    def encode(self, model, wavs: torch.Tensor) -> torch.Tensor:
        """Features, normalisation and ``model``: [B, T] -> [B, D]."""
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
            [B, D] representations (normalised by SSPS when stored), by the
            framework's ``reference_model``.
        """
        model = unwrap(self.modules[self.framework.reference_model])
        was_training = model.training
        model.eval()
        try:
            return self.encode(model, wavs).float()
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
            views = [
                self.augment(v, self._epoch, self.step, i)
                for i, v in enumerate(views)
            ]
        groups = [torch.cat(views[:n_global])]
        if n_local:
            groups.append(torch.cat(views[n_global:]))
        return groups

    def compute_forward(self, batch, stage, fill: bool = False):
        """The framework's outputs, and the reference representation.

        Returns
        -------
        dict
            The framework's outputs (``student``, ...) and ``y_ref`` [B, D]
            when SSPS fills its queues (or ``fill``: the fill pass), else
            None.
        """
        batch = batch.to(self.device)
        groups = self._view_groups(batch, stage)
        student = torch.cat(
            [self.encode(self.modules.embedding_model, g) for g in groups]
        )
        out: Dict[str, Optional[torch.Tensor]] = self.framework.forward(
            self, groups, student
        )
        ssps = self.ssps
        out["y_ref"] = (
            self.encode_reference(batch.ref.data)
            if stage == sb.Stage.TRAIN
            and ssps is not None
            and (fill or fills_during_steps(ssps, self.ssps_fill))
            else None
        )
        return out

    # ------------------------------------------------------------------
    # Objectives
    # ------------------------------------------------------------------
    def ssps_positives(self, indices, predictions, positives, views):
        """Positive rows [views * B, P] after ``SSPS.step`` (if SSPS is on).

        The rows are viewed as SSPS's [V, B, P] layout, passed through
        ``SSPS.step`` (sample, swap and queue update, gated by its schedule)
        and returned in the caller's layout.

        Arguments
        ---------
        indices : torch.Tensor
            [B] utterance indices.
        predictions : dict
            The step's outputs (``y_ref`` is read).
        positives : torch.Tensor
            [views * B, P] the framework's positive rows, view-major.
        views : int
            How many positive views the rows hold.
        """
        if self.ssps is None or not fills_during_steps(
            self.ssps, self.ssps_fill
        ):
            return positives
        stacked = positives.reshape(views, indices.numel(), -1).float()
        with precision.full_precision(stacked):  # float32 in and out
            out = self.ssps.step(indices, predictions["y_ref"], stacked)
        return out.reshape(positives.shape)

    def compute_objectives(self, predictions, batch, stage):
        """The framework's loss (its positives through SSPS)."""
        indices = batch.index.to(self.device).long().reshape(-1)
        return self.framework.loss(self, predictions, indices)

    # ------------------------------------------------------------------
    # Optimisation
    # ------------------------------------------------------------------
    def _adjust_gradients(self, params: List[torch.nn.Parameter]) -> None:
        """Clipping, then the framework's gradient rules.

        ``clip_grad`` > 0 (DINO): each parameter's gradient is clipped to
        ``clip_grad`` on its own. Otherwise the global norm over every
        parameter group is clipped to ``max_grad_norm`` (SpeechBrain's
        default clips group 0 only).
        """
        clip = float(getattr(self.hparams, "clip_grad", 0.0) or 0.0)
        if clip > 0:
            clip_gradients_per_parameter_(params, clip)
        elif self.max_grad_norm and self.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(params, self.max_grad_norm)
        self.framework.before_optimizer_step(self)

    def optimizers_step(self):
        """SpeechBrain's step with :meth:`_adjust_gradients` after unscaling."""
        step_optimizers(self, self._adjust_gradients)

    def on_fit_batch_end(self, batch, outputs, loss, should_step):
        """The framework's update after each optimizer step."""
        if should_step:
            self.framework.after_optimizer_step(self)

    # ------------------------------------------------------------------
    # Stage hooks
    # ------------------------------------------------------------------
    def on_stage_start(self, stage, epoch=None):
        """Enters the epoch in the crop pipeline and SSPS (k-means)."""
        if stage == sb.Stage.TRAIN:
            self._epoch = int(epoch or 0)
            # Seeded crops are a function of the epoch (set before the
            # DataLoader iterator and its workers are created).
            views = self.views_pipeline
            if views is not None and hasattr(views, "set_epoch"):
                views.set_epoch(self._epoch)
            ssps = self.ssps
            if ssps is not None and needs_fill_pass(
                ssps, self.ssps_fill, self._epoch
            ):
                limit = int(self.debug_batches) if self.debug else None
                fill_pass(self, self._train_loader, self._epoch, limit)
            if ssps is not None:
                ssps.on_epoch_start(self._epoch)

    def epoch_stats(self) -> Dict[str, float]:
        """Schedules, framework values and SSPS diagnostics of the epoch."""
        step = max(self.optimizer_step - 1, 0)
        stats = {"lr": self.learning_rate(step), "wd": self.weight_decay(step)}
        stats.update(self.framework.epoch_stats(self, step))
        if self.ssps is not None:
            stats.update(self.ssps.metrics())
        return stats

    def validate(self) -> Dict[str, float]:
        """The validator's EER and minDCF with the encoder in eval mode.

        Computed on the main process only (it writes the log); no
        collective is involved, the other ranks go on to the checkpoint.
        """
        if not sb.utils.distributed.if_main_process():
            return {}
        model = unwrap(self.modules["embedding_model"])
        was_training = model.training
        model.eval()
        try:
            return self.validator(lambda w: self.encode(model, w), self.device)
        finally:
            model.train(was_training)

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Logs the epoch and saves a checkpoint (every rank calls these)."""
        if stage != sb.Stage.TRAIN:
            return
        stats = self.epoch_stats()
        if self.validator is not None and self.validator.due(epoch):
            stats.update(self.validate())
        meta = {"epoch": epoch, "lr": stats.pop("lr")}
        train_stats = {"loss": stage_loss, **stats}
        self.hparams.train_logger.log_stats(
            stats_meta=meta, train_stats=train_stats
        )
        if self.checkpointer is not None:  # with the validation, best dev kept
            selection.save_epoch_checkpoint(self, epoch, stage_loss, stats)
        if sb.utils.distributed.if_main_process():  # curves.png
            start = getattr(self.ssps, "start_epoch", None)
            write_training_curves(self.hparams, ssps_start_epoch=start)
