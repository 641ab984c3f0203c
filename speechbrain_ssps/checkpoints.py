"""A SpeechBrain ``Checkpointer`` that is safe to kill and light on disk.

SpeechBrain writes a checkpoint's ``CKPT.yaml`` *before* its parameter
files, so a run killed while saving leaves a newest checkpoint that looks
valid but cannot be loaded, and every later resume fails on it. SSPS also
adds large queues (the reference queue alone is N x D floats) that would
otherwise be copied into every kept epoch checkpoint.

:class:`SafeCheckpointer` fixes both:

* every checkpoint is written into a staging folder whose name SpeechBrain
  never lists, then renamed into place in one atomic ``rename`` once all its
  files are complete (a crash leaves at most a stale staging folder, removed
  at the next save);
* recoverables named in ``latest_only`` (the SSPS state) are kept in the
  most recent checkpoint only and removed from the older ones after each
  save; register them with ``optional_load=True`` so an older checkpoint
  still loads;
* meta values are checked to be plain Python scalars or strings, so that
  ``CKPT.yaml`` stays readable by ``yaml.SafeLoader``.

Exporting a run reads its checkpoints back: :func:`find_epoch_checkpoints`
lists the end-of-epoch ones (one per epoch), :func:`average_encoder`
averages one recoverable's weights over several of them and
:func:`check_state_dict` checks the result against a freshly built model.

Authors
 * speechbrain-ssps contributors
"""

from __future__ import annotations

import logging
import numbers
import os
import pathlib
import shutil
from typing import Dict, Iterable, List, Optional, Sequence

import torch
from speechbrain.utils.checkpoints import (
    CKPT_PREFIX,
    PARAMFILE_EXT,
    Checkpoint,
    Checkpointer,
    average_checkpoints,
)
from speechbrain.utils.distributed import (
    ddp_barrier,
    ddp_broadcast,
    if_main_process,
)
from speechbrain.utils.logger import get_logger

from speechbrain_ssps.speechbrain_internals import RedirectableCheckpointer

logger = get_logger(__name__)
STAGING_PREFIX = ".staging-"
#: The recoverable holding the speaker encoder (the student for DINO).
ENCODER_CKPT = "embedding_model"


def plain_meta(meta: dict) -> dict:
    """Converts meta values to plain Python scalars (or raises).

    Arguments
    ---------
    meta : dict
        Checkpoint meta information.

    Returns
    -------
    dict
        The same keys with ``int``, ``float``, ``bool`` or ``str`` values.

    Example
    -------
    >>> import numpy as np
    >>> plain_meta({"epoch": np.int64(3), "loss": np.float32(0.5)})
    {'epoch': 3, 'loss': 0.5}
    """
    out = {}
    for key, value in meta.items():
        if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
            value = value.item()  # numpy / torch scalar
        if isinstance(value, bool) or isinstance(value, str) or value is None:
            out[key] = value
        elif isinstance(value, numbers.Integral):
            out[key] = int(value)
        elif isinstance(value, numbers.Real):
            out[key] = float(value)
        else:
            raise TypeError(
                f"checkpoint meta {key!r} must be a plain number or string, "
                f"got {type(value).__name__}"
            )
    return out


class SafeCheckpointer(RedirectableCheckpointer):
    """Checkpointer with atomic saves and latest-only recoverables.

    Arguments
    ---------
    checkpoints_dir : str
        Where checkpoints are saved.
    recoverables : dict, optional
        As for :class:`speechbrain.utils.checkpoints.Checkpointer`.
    latest_only : iterable of str
        Names of recoverables kept only in the most recent checkpoint.
    **kwargs
        Passed to :class:`speechbrain.utils.checkpoints.Checkpointer`.

    Example
    -------
    >>> import torch
    >>> tmp = getfixture("tmp_path")
    >>> ckpt = SafeCheckpointer(tmp, {"a": torch.nn.Linear(2, 2),
    ...                               "big": torch.nn.Linear(2, 2)},
    ...                         latest_only=["big"])
    >>> _ = ckpt.save_and_keep_only(meta={"epoch": 1}, num_to_keep=2)
    >>> _ = ckpt.save_and_keep_only(meta={"epoch": 2}, num_to_keep=2)
    >>> sorted((c.meta["epoch"], sorted(c.paramfiles))
    ...        for c in ckpt.list_checkpoints())
    [(1, ['a']), (2, ['a', 'big'])]
    """

    def __init__(
        self,
        checkpoints_dir,
        recoverables=None,
        latest_only: Optional[Iterable[str]] = None,
        **kwargs,
    ):
        super().__init__(checkpoints_dir, recoverables, **kwargs)
        self.latest_only = list(latest_only or [])

    def save_checkpoint(
        self, meta=None, end_of_epoch=True, name=None, verbosity=logging.INFO
    ):
        """Saves a checkpoint into a staging folder, then renames it.

        Arguments
        ---------
        meta : dict
            Plain-scalar meta information (checked).
        end_of_epoch : bool
            Whether the checkpoint is at the end of an epoch.
        name : str, optional
            Custom checkpoint name.
        verbosity : int
            Logging level of the "saved" message.

        Returns
        -------
        Checkpoint or None
            The saved checkpoint (None on non-main processes).
        """
        meta = plain_meta(meta or {})
        final = None
        if if_main_process():
            self._remove_stale_staging()
            final = self.default_checkpoint_dir(name)
        final = pathlib.Path(ddp_broadcast(final, src=0))
        self.redirect = final.parent / (STAGING_PREFIX + final.name)
        try:
            super().save_checkpoint(
                meta=meta,
                end_of_epoch=end_of_epoch,
                name=name,
                verbosity=logging.DEBUG,
            )
        finally:
            staging, self.redirect = self.redirect, None
        ddp_barrier()  # every rank's files are written
        if not if_main_process():
            return None
        if final.exists():  # re-saving a custom name: replace it
            trash = final.parent / (STAGING_PREFIX + "old-" + final.name)
            os.replace(final, trash)
            os.replace(staging, final)
            shutil.rmtree(trash)
        else:
            os.replace(staging, final)
        ckpt_type = "end-of-epoch" if end_of_epoch else "intra-epoch"
        logger.log(verbosity, f"Saved an {ckpt_type} checkpoint in {final}")
        checkpoint = self.read_checkpoint(final)
        return Checkpoint(final, checkpoint.meta, checkpoint.paramfiles)

    def save_and_keep_only(self, *args, **kwargs):
        """As SpeechBrain's, then strips ``latest_only`` from older ones."""
        result = super().save_and_keep_only(*args, **kwargs)
        if if_main_process() and self.latest_only:
            self._strip_latest_only()
        ddp_barrier()
        return result

    def _strip_latest_only(self) -> None:
        checkpoints = sorted(
            self.list_checkpoints(), key=lambda c: c.meta["unixtime"]
        )
        for checkpoint in checkpoints[:-1]:
            for name in self.latest_only:
                path = checkpoint.path / f"{name}{PARAMFILE_EXT}"
                if path.exists():
                    path.unlink()
                    logger.debug(f"Removed {path} (kept in the latest only)")

    def _remove_stale_staging(self) -> None:
        if not self.checkpoints_dir.exists():
            return
        for path in self.checkpoints_dir.iterdir():
            if path.name.startswith(STAGING_PREFIX + CKPT_PREFIX) or (
                path.name.startswith(STAGING_PREFIX + "old-")
            ):
                logger.warning(f"Removing unfinished checkpoint {path}")
                shutil.rmtree(path, ignore_errors=True)


def find_epoch_checkpoints(save_folder: str) -> List[Checkpoint]:
    """End-of-epoch checkpoints of a run, oldest epoch first.

    Intra-epoch checkpoints are left out. A resumed run can save the same
    epoch twice: only the most recent save of each epoch is kept.

    Arguments
    ---------
    save_folder : str
        The folder holding the ``CKPT+*`` directories.

    Returns
    -------
    list of speechbrain.utils.checkpoints.Checkpoint
        Sorted by (epoch, save time); checkpoints whose meta has no
        ``epoch`` come first, by save time.

    Example
    -------
    >>> folder = str(getfixture("tmp_path"))
    >>> ckpt = Checkpointer(folder, {"m": torch.nn.Linear(1, 1)})
    >>> for epoch in (1, 2, 2):
    ...     _ = ckpt.save_checkpoint(meta={"epoch": epoch}, end_of_epoch=True)
    >>> _ = ckpt.save_checkpoint(meta={"epoch": 3}, end_of_epoch=False)
    >>> [c.meta["epoch"] for c in find_epoch_checkpoints(folder)]
    [1, 2]
    """
    if not os.path.isdir(save_folder):
        raise ValueError(f"Checkpoint folder not found: {save_folder}")
    listed = Checkpointer(save_folder).list_checkpoints()

    def order(ckpt: Checkpoint):
        epoch = ckpt.meta.get("epoch")
        return (epoch is not None, epoch or 0, ckpt.meta["unixtime"])

    latest: Dict[object, Checkpoint] = {}
    for ckpt in sorted(listed, key=order):
        if ckpt.meta.get("end-of-epoch", False):
            latest[ckpt.meta.get("epoch", ckpt.path)] = ckpt
    return sorted(latest.values(), key=order)


def _load_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """A saved state dict, on the CPU."""
    return torch.load(path, map_location="cpu")


def average_encoder(
    checkpoints: Sequence[Checkpoint], name: str = ENCODER_CKPT
) -> Dict[str, torch.Tensor]:
    """One recoverable's state dict averaged over checkpoints.

    Floating-point tensors get their mean; integer tensors (BatchNorm's
    ``num_batches_tracked``) the rounded mean, in their own dtype.

    Arguments
    ---------
    checkpoints : sequence of Checkpoint
        The checkpoints to average (at least one).
    name : str
        The recoverable (``<name>.ckpt`` in each checkpoint).

    Returns
    -------
    dict
        The averaged state dict (contiguous CPU tensors).

    Example
    -------
    >>> folder = str(getfixture("tmp_path"))
    >>> layer = torch.nn.Linear(1, 1, bias=False)
    >>> ckpt = Checkpointer(folder, {"m": layer})
    >>> for w in (1.0, 2.0):
    ...     _ = layer.weight.data.fill_(w)
    ...     _ = ckpt.save_checkpoint(end_of_epoch=True)
    >>> average_encoder(ckpt.list_checkpoints(), "m")["weight"]
    tensor([[1.5000]])
    >>> average_encoder([], "m")
    Traceback (most recent call last):
     ...
    ValueError: No checkpoint to average
    """
    if not checkpoints:
        raise ValueError("No checkpoint to average")
    for ckpt in checkpoints:
        if name not in ckpt.paramfiles:
            raise ValueError(f"{ckpt.path} has no {name}.ckpt")
    last = _load_state_dict(checkpoints[-1].paramfiles[name])
    dtypes = {key: value.dtype for key, value in last.items()}
    averaged = {}
    for key, value in average_checkpoints(list(checkpoints), name).items():
        dtype = dtypes.get(key, value.dtype)
        if value.is_floating_point() and not dtype.is_floating_point:
            value = value.round()
        averaged[key] = value.to(dtype).contiguous()
    return averaged


def check_state_dict(
    model: torch.nn.Module, state_dict: Dict[str, torch.Tensor], source: str
) -> None:
    """Raises a ValueError unless state_dict fits model exactly.

    SpeechBrain's ``Pretrainer`` loads non-strictly (a mismatch only logs a
    warning and leaves weights random), so exports are checked here.

    Arguments
    ---------
    model : torch.nn.Module
        A freshly built model.
    state_dict : dict
        The parameters to export.
    source : str
        Where the parameters come from (for the message).

    Example
    -------
    >>> check_state_dict(torch.nn.Linear(2, 1), {"weight": 0}, "x.ckpt")
    Traceback (most recent call last):
     ...
    ValueError: x.ckpt does not match the encoder built from the training \
hyperparameters: missing keys ['bias']
    """
    expected = model.state_dict()
    problems = []
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    if missing:
        problems.append(f"missing keys {_few(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {_few(unexpected)}")
    if not problems:
        shapes = [
            f"{k}: {tuple(state_dict[k].shape)} vs {tuple(v.shape)}"
            for k, v in expected.items()
            if tuple(state_dict[k].shape) != tuple(v.shape)
        ]
        if shapes:
            problems.append(f"shape mismatches (ckpt vs model) {_few(shapes)}")
    if problems:
        raise ValueError(
            f"{source} does not match the encoder built from the training "
            f"hyperparameters: {'; '.join(problems)}"
        )


def _few(items: List[str], count: int = 5) -> str:
    """The first few items of a list, and how many more."""
    more = f" and {len(items) - count} more" if len(items) > count else ""
    return f"{items[:count]}{more}"
