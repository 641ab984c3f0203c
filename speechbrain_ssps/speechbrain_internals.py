"""The places where this package relies on SpeechBrain's private code.

Everything else uses SpeechBrain's public hooks. What is here could not:

* :func:`step_optimizers` is ``Brain.optimizers_step`` with a hook between
  unscaling and stepping. SpeechBrain clips the norm of parameter group 0
  only, at that point, with no way to change the rule; SSL training needs
  DINO's per-parameter clipping, a norm over *every* group, and a frozen
  layer, all after unscaling (mixed precision) and before the step.
* :func:`wrap_distributed` is ``Brain._wrap_distributed`` with
  ``broadcast_buffers=False`` (a student runs several forwards per step;
  an in-place buffer broadcast between them breaks BatchNorm's backward)
  and SyncBatchNorm only on CUDA.
* :class:`RedirectableCheckpointer` overrides ``Checkpointer``'s private
  ``_new_checkpoint_dirpath`` / ``_custom_checkpoint_dirpath`` so a save can
  be written into a folder of the caller's choosing (a staging folder that
  is renamed into place), and reads a checkpoint folder back with its
  private ``_construct_checkpoint_objects``.

``tests/speechbrain_ssps/test_speechbrain_internals.py`` pins these to the
SpeechBrain range that ``setup.py`` supports (:data:`SUPPORTED`): it fails
when the installed SpeechBrain's methods no longer do what these copies
assume.

Authors
 * speechbrain-ssps contributors
"""

from __future__ import annotations

import pathlib
from typing import Callable, List, Optional

import torch
from speechbrain.utils.checkpoints import Checkpoint, Checkpointer
from torch.nn.parallel import DistributedDataParallel as DDP

#: The SpeechBrain versions these copies are checked against (setup.py).
SUPPORTED = ">=1.0.0,<2"


def step_optimizers(
    brain, adjust_gradients: Callable[[List[torch.nn.Parameter]], None]
) -> None:
    """SpeechBrain's optimizer step with our own gradient rules.

    Same sequence as ``speechbrain.core.Brain.optimizers_step``: the
    optimizers not frozen by ``brain.freeze_optimizers``, unscaled, then
    ``adjust_gradients`` in place of SpeechBrain's group-0 clipping, the
    non-finite check, the step, the scaler update, zeroed gradients and the
    step counter.

    Arguments
    ---------
    brain : speechbrain.core.Brain
        The Brain whose ``optimizers_dict`` is stepped.
    adjust_gradients : callable
        Called with every parameter of the stepped optimizers, after
        unscaling; clips or masks their gradients in place.
    """
    optimizers = brain.freeze_optimizers(brain.optimizers_dict)
    for opt in optimizers.values():
        brain.scaler.unscale_(opt)
    adjust_gradients(
        [
            param
            for opt in optimizers.values()
            for group in opt.param_groups
            for param in group["params"]
        ]
    )
    if not brain.scaler.is_enabled() and brain.skip_nonfinite_grads:
        brain.check_gradients()
    for opt in optimizers.values():
        brain.scaler.step(opt)
    brain.scaler.update()
    for opt in optimizers.values():
        opt.zero_grad(set_to_none=True)
    brain.optimizer_step += 1


def wrap_distributed(brain, sync_batchnorm: bool = True) -> None:
    """Wraps the trained modules in DDP without buffer broadcasts.

    Arguments
    ---------
    brain : speechbrain.core.Brain
        A Brain launched with ``torchrun`` (``distributed_launch``).
    sync_batchnorm : bool
        Convert BatchNorm to SyncBatchNorm; applied on CUDA only (gloo on
        the CPU keeps per-process statistics).
    """
    on_cuda = torch.device(brain.device).type == "cuda"
    for name, module in brain.modules.items():
        if not any(p.requires_grad for p in module.parameters()):
            continue
        if sync_batchnorm and on_cuda:
            module = torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
        brain.modules[name] = DDP(
            module,
            device_ids=[brain.device] if on_cuda else None,
            find_unused_parameters=brain.find_unused_parameters,
            broadcast_buffers=False,
        )


class RedirectableCheckpointer(Checkpointer):
    """A ``Checkpointer`` whose saves can be sent to another folder.

    While :attr:`redirect` is set, SpeechBrain's ``save_checkpoint`` writes
    into that folder instead of the one it would name.

    Example
    -------
    >>> import torch
    >>> tmp = getfixture("tmp_path")
    >>> ckpt = RedirectableCheckpointer(tmp, {"a": torch.nn.Linear(2, 2)})
    >>> ckpt.default_checkpoint_dir("x").name
    'CKPT+x'
    >>> ckpt.redirect = tmp / "elsewhere"
    >>> _ = ckpt.save_checkpoint(meta={"epoch": 1}, name="x")
    >>> sorted(p.name for p in (tmp / "elsewhere").iterdir())
    ['CKPT.yaml', 'a.ckpt']
    >>> ckpt.read_checkpoint(tmp / "elsewhere").meta["epoch"]
    1
    """

    redirect: Optional[pathlib.Path] = None

    def default_checkpoint_dir(self, name: Optional[str] = None):
        """The folder SpeechBrain would save the next checkpoint into.

        Arguments
        ---------
        name : str, optional
            A custom checkpoint name (else a time-stamped one).
        """
        if name is None:
            return Checkpointer._new_checkpoint_dirpath(self)
        return Checkpointer._custom_checkpoint_dirpath(self, name)

    def read_checkpoint(self, path) -> Checkpoint:
        """The :class:`Checkpoint` record of a checkpoint folder."""
        return self._construct_checkpoint_objects([pathlib.Path(path)])[0]

    def _new_checkpoint_dirpath(self):
        return self.redirect or super()._new_checkpoint_dirpath()

    def _custom_checkpoint_dirpath(self, name):
        return self.redirect or super()._custom_checkpoint_dirpath(name)
