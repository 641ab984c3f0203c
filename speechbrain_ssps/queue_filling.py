"""How SSPS's queues are first filled before its first active epoch.

Two ways, chosen with ``ssps_fill`` in the yaml:

``epoch`` (default)
    The queues are written by the training steps of epoch ``E - 1``
    (``E = ssps_start_epoch``), in train mode, by a model that is still
    being updated; epoch ``E`` clusters them. One pass over the data fewer.
``pass``
    The authors' way (their buffer-creation script): epoch ``E - 1`` trains
    as a plain epoch, then, at the start of epoch ``E``, one pass over the
    training set with every module in eval mode and no gradient writes
    both queues with the model as it stands, before k-means and the first
    SSPS step. The views are those of training (same crops and
    augmentation); the reference crop is encoded as in training.

A run resumed inside epoch ``E`` finds its queues, clustering and counters
in the checkpoint and does not repeat the pass.

Example
-------
>>> check_fill_mode("pass")
'pass'
"""

from __future__ import annotations

import itertools
from typing import Optional

import speechbrain as sb
import torch

#: The values of ``ssps_fill``.
FILL_MODES = ("epoch", "pass")


def check_fill_mode(mode: str) -> str:
    """``mode`` if it is one of :data:`FILL_MODES`, else a ValueError.

    Arguments
    ---------
    mode : str
        The yaml's ``ssps_fill``.
    """
    if mode not in FILL_MODES:
        raise ValueError(
            f"--ssps_fill must be one of {FILL_MODES}, got {mode!r}"
        )
    return mode


def last_plain_epoch(start_epoch: int, mode: str) -> int:
    """The last epoch whose model a run continued with SSPS may start from.

    With ``epoch`` the epoch before ``start_epoch`` fills the queues, so a
    plain run's checkpoint up to ``start_epoch - 2`` is continued; with
    ``pass`` that epoch is plain and ``start_epoch - 1`` qualifies.

    Arguments
    ---------
    start_epoch : int
        ``ssps_start_epoch``.
    mode : str
        One of :data:`FILL_MODES`.

    Example
    -------
    >>> last_plain_epoch(13, "epoch"), last_plain_epoch(13, "pass")
    (11, 12)
    """
    return start_epoch - (1 if check_fill_mode(mode) == "pass" else 2)


def fills_during_steps(ssps, mode: str) -> bool:
    """Whether this epoch's training steps go through ``SSPS.step``.

    With ``pass``, the epoch before SSPS's first active epoch trains as a
    plain epoch (the queues are written by the pass instead).

    Arguments
    ---------
    ssps : SSPS
        The run's SSPS module, already in the current epoch.
    mode : str
        One of :data:`FILL_MODES`.
    """
    return ssps.filling and (mode == "epoch" or ssps.active)


def needs_fill_pass(ssps, mode: str, epoch: int) -> bool:
    """Whether ``epoch`` starts with the fill pass (before clustering).

    Arguments
    ---------
    ssps : SSPS
        The run's SSPS module (not yet in ``epoch``).
    mode : str
        One of :data:`FILL_MODES`.
    epoch : int
        The 1-based epoch about to start.
    """
    return (
        mode == "pass"
        and epoch == ssps.start_epoch
        and ssps.clustered_epoch != epoch  # a resumed epoch keeps its state
        and not ssps.fixed_clusters
    )


@torch.no_grad()
def fill_pass(
    brain, loader, epoch: int, max_batches: Optional[int] = None
) -> int:
    """Writes SSPS's queues in one eval-mode pass over ``loader``.

    SSPS is put in its filling epoch (``epoch - 1``, no clustering), every
    batch's reference representations and framework positives are pushed
    into the queues, and the modules' train/eval modes are restored. The
    caller then enters ``epoch`` (k-means).

    Arguments
    ---------
    brain : SSLBrain
        The Brain (its ``ssps``, ``framework`` and ``compute_forward``).
    loader : iterable
        The training batches (every rank its own shard: ``SSPS.update``
        gathers them, so every rank ends with the same queues).
    epoch : int
        SSPS's first active epoch.
    max_batches : int, optional
        Stop after this many batches (``--debug``: a debug epoch's).

    Returns
    -------
    int
        The number of batches pushed.
    """
    ssps = brain.ssps
    ssps.on_epoch_start(epoch - 1)
    modes = {name: m.training for name, m in brain.modules.items()}
    brain.modules.eval()
    batches = 0
    try:
        for batch in itertools.islice(loader, max_batches):
            out = brain.compute_forward(batch, sb.Stage.TRAIN, fill=True)
            indices = batch.index.to(brain.device).long().reshape(-1)
            b = indices.numel()
            rows, views = brain.framework.positives(brain, out, b)
            ssps.update(indices, out["y_ref"], rows.reshape(views, b, -1))
            batches += 1
    finally:
        for name, module in brain.modules.items():
            module.train(modes[name])
    return batches
