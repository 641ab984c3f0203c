"""What a self-supervised framework provides to :class:`SSLBrain`.

:class:`~speechbrain_ssps.brain.SSLBrain` keeps what every framework
shares: the step-indexed schedules, DDP, the optimizer step with its
gradient clipping, the encoding of the un-augmented reference crop, SSPS's
epoch hooks and logging. A :class:`Framework` supplies the rest, in six
small pieces:

==========================  ==============================================
``trained_modules``         names in ``brain.modules`` that the optimizer
                            updates (the student)
``reference_model``         the module that encodes SSPS's reference crop
``positive_dim``            width of the rows SSPS stores and swaps
``positives``               those rows in a step's outputs
``forward``                 outputs of one step from the encoded views
``loss``                    the loss, with the positives passed through
                            ``brain.ssps_positives`` (SSPS's swap)
``before_optimizer_step``,  gradient rules and updates around the step
``after_optimizer_step``    (e.g. a frozen layer, an EMA teacher)
==========================  ==============================================

``on_fit_start`` and ``epoch_stats`` are optional. A new framework (MoCo,
VICReg, SwAV, ...) is one module holding such a class and one yaml naming
it (``framework: !new:my_package.MyFramework``); SSPS is untouched.

Authors
 * speechbrain-ssps contributors
"""

from __future__ import annotations

from typing import Dict, List, Tuple

import torch


def unwrap(module: torch.nn.Module) -> torch.nn.Module:
    """The module behind a DDP/DP wrapper (the module itself otherwise).

    Example
    -------
    >>> layer = torch.nn.Linear(2, 2)
    >>> unwrap(layer) is layer
    True
    """
    return module.module if hasattr(module, "module") else module


class Framework:
    """Base class of the framework objects used by ``SSLBrain``.

    Subclasses set :attr:`name` and :attr:`reference_model` and implement
    :meth:`trained_modules`, :meth:`positive_dim`, :meth:`forward` and
    :meth:`loss`; the other hooks do nothing by default.
    """

    #: Short name used in logs and in ``framework: <name>`` yamls.
    name: str = ""
    #: Name of the module in ``brain.modules`` that encodes the reference.
    reference_model: str = "embedding_model"

    @classmethod
    def from_hparams(cls, hparams) -> "Framework":
        """Builds the framework from a run's hyperparameters.

        Used when a yaml names the framework by its short name
        (``framework: dino``) instead of building the object.
        """
        return cls()

    def trained_modules(self, modules) -> List[str]:
        """Names of the modules the optimizer updates.

        Arguments
        ---------
        modules : dict-like
            ``brain.modules``.
        """
        raise NotImplementedError

    def positive_dim(self, modules) -> int:
        """Width of one positive row (SSPS's ``pos_dim``).

        Arguments
        ---------
        modules : dict-like
            The run's modules (before or after wrapping).
        """
        raise NotImplementedError

    def on_fit_start(self, brain) -> None:
        """Called before SpeechBrain's set-up and checkpoint recovery."""

    def forward(
        self, brain, groups: List[torch.Tensor], student: torch.Tensor
    ) -> Dict[str, torch.Tensor]:
        """The outputs of one training step.

        Arguments
        ---------
        brain : SSLBrain
            The Brain (its ``modules``, ``hparams`` and ``encode``).
        groups : list of torch.Tensor
            The views' waveforms: global views stacked ``[G*B, T]``, then
            the local views ``[L*B, T]`` if there are any.
        student : torch.Tensor
            The student encoder's embeddings of all views, in the same
            order, ``[(G+L)*B, D]``.

        Returns
        -------
        dict
            Whatever :meth:`loss` needs.
        """
        raise NotImplementedError

    def positives(
        self, brain, predictions: Dict, batch_size: int
    ) -> Tuple[torch.Tensor, int]:
        """The rows SSPS stores and swaps, and how many views they hold.

        Arguments
        ---------
        brain : SSLBrain
            The Brain.
        predictions : dict
            The output of :meth:`forward`.
        batch_size : int
            B, the number of anchors.

        Returns
        -------
        rows : torch.Tensor
            ``[views * B, positive_dim]``, view-major.
        views : int
        """
        raise NotImplementedError

    def loss(
        self, brain, predictions: Dict, indices: torch.Tensor
    ) -> torch.Tensor:
        """The loss of one step.

        The positives (:meth:`positives`) pass through
        ``brain.ssps_positives(indices, predictions, rows, views)``, which
        applies SSPS (sample, swap, queue update) when it is on and returns
        them unchanged otherwise.

        Arguments
        ---------
        brain : SSLBrain
            The Brain.
        predictions : dict
            The output of :meth:`forward`, plus ``y_ref``.
        indices : torch.Tensor
            [B] utterance indices of the batch.
        """
        raise NotImplementedError

    def before_optimizer_step(self, brain) -> None:
        """After gradient clipping, before the optimizer step."""

    def after_optimizer_step(self, brain) -> None:
        """After each optimizer step (``optimizer_step`` already counts it)."""

    def epoch_stats(self, brain, step: int) -> Dict[str, float]:
        """Framework-specific values logged at the end of each epoch.

        Arguments
        ---------
        brain : SSLBrain
            The Brain.
        step : int
            The last optimizer step of the epoch.
        """
        return {}

    def require_two_views(self, brain) -> None:
        """Stops a run that is not two global views and no local view."""
        views = int(brain.hparams.num_global_views)
        local = int(getattr(brain.hparams, "num_local_views", 0) or 0)
        if views != 2 or local:
            raise ValueError(
                f"{type(self).__name__} needs num_global_views=2 and no "
                f"local views, got {views} and {local}"
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
