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

Authors
 * speechbrain-ssps contributors
"""

from __future__ import annotations

import logging
import numbers
import os
import pathlib
import shutil
from typing import Iterable, Optional

from speechbrain.utils.checkpoints import (
    CKPT_PREFIX,
    PARAMFILE_EXT,
    Checkpoint,
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
