"""Which epoch checkpoints an export averages, and the record of it.

Training stores the end-of-epoch validation with each epoch checkpoint
(``CKPT.yaml``): ``valid_trials`` (the list: ``dev``, ``O``, ...) and its
``valid_eer`` (%) and ``valid_mindcf``, see :func:`epoch_meta`. With a
dev list (``voxceleb_prepare.py --dev_speakers=N``, ``train.py
--valid_trials=dev``) the checkpointer also keeps the ``keep_checkpoints``
best epochs by dev EER next to the most recent ones
(:func:`keep_best_keys`).

:func:`select_checkpoints` then chooses what ``export.py`` averages:

* ``last`` (default): the ``N`` most recent epochs (``--average N``);
* ``best_dev``: the ``N`` epochs with the lowest dev EER (ties: the later
  epoch). It is refused when no checkpoint was validated on ``dev``: a test
  list (VoxCeleb1-O, E, H) must not select checkpoints.

The choice (epochs, their validation values) is written to the export as
``selection.json`` and in the header of its ``hyperparams.yaml``.

Authors
-------
* SSPS contributors 2025
"""

import json
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from speechbrain.utils.checkpoints import METAFNAME, Checkpoint

SELECT_LAST = "last"
SELECT_BEST_DEV = "best_dev"
SELECTIONS = (SELECT_LAST, SELECT_BEST_DEV)
#: The trial list that may select checkpoints.
DEV_LIST = "dev"
#: The export file recording the choice.
SELECTION_FILE = "selection.json"
_VALUES = ("valid_eer", "valid_mindcf")


def epoch_meta(
    epoch: int, loss: float, validator: Any, stats: Mapping[str, float]
) -> dict:
    """Meta of an end-of-epoch checkpoint: epoch, loss and validation.

    Arguments
    ---------
    epoch : int
        The epoch (1-based).
    loss : float
        Its average training loss.
    validator : EpochValidator or None
        The run's validator (its ``trials_name`` names the list).
    stats : mapping
        The epoch's logged values (``valid_eer`` when it validated; absent
        on the other DDP ranks, which do not write the meta).

    Returns
    -------
    dict
        ``epoch``, ``loss`` and, after a validation, ``valid_trials``,
        ``valid_eer`` and ``valid_mindcf``.

    Example
    -------
    >>> from types import SimpleNamespace
    >>> v = SimpleNamespace(trials_name="dev")
    >>> epoch_meta(3, 1.5, v, {"valid_eer": 12.5, "valid_mindcf": 0.9})
    {'epoch': 3, 'loss': 1.5, 'valid_trials': 'dev', 'valid_eer': 12.5, \
'valid_mindcf': 0.9}
    >>> epoch_meta(3, 1.5, v, {"wd": 0.0})
    {'epoch': 3, 'loss': 1.5}
    """
    meta = {"epoch": int(epoch), "loss": float(loss)}
    if validator is None or "valid_eer" not in stats:
        return meta
    meta["valid_trials"] = str(validator.trials_name)
    meta.update({key: float(stats[key]) for key in _VALUES if key in stats})
    return meta


def keep_best_keys(validator: Any) -> List[str]:
    """``min_keys`` for ``save_and_keep_only``: the dev EER, if on dev.

    Arguments
    ---------
    validator : EpochValidator or None
        The run's validator.

    Returns
    -------
    list of str
        ``["valid_eer"]`` when the validation list is ``dev``, else ``[]``
        (the best checkpoints by a test list are not kept on purpose).

    Example
    -------
    >>> from types import SimpleNamespace
    >>> keep_best_keys(SimpleNamespace(trials_name="dev"))
    ['valid_eer']
    >>> keep_best_keys(SimpleNamespace(trials_name="O")), keep_best_keys(None)
    ([], [])
    """
    if validator is None or validator.trials_name != DEV_LIST:
        return []
    return ["valid_eer"]


def save_epoch_checkpoint(
    brain: Any, epoch: int, loss: float, stats: Mapping[str, float]
) -> None:
    """Saves an end-of-epoch checkpoint of a Brain with its validation.

    Keeps the ``keep_checkpoints`` most recent checkpoints and, when the
    validation is on ``dev``, also the ``keep_checkpoints`` best by dev
    EER. Every DDP rank calls it (the meta is written by the main one).

    Arguments
    ---------
    brain : SSLBrain
        Its ``checkpointer``, ``validator`` (or None) and
        ``hparams.keep_checkpoints`` (default 1) are used.
    epoch : int
        The epoch (1-based).
    loss : float
        Its average training loss.
    stats : mapping
        The epoch's logged values.

    Example
    -------
    >>> import torch
    >>> from types import SimpleNamespace as NS
    >>> from speechbrain.utils.checkpoints import Checkpointer as C
    >>> ckpt = C(getfixture("tmp_path"), {"m": torch.nn.Linear(1, 1)})
    >>> brain = NS(checkpointer=ckpt, validator=NS(trials_name="dev"),
    ...            hparams=NS())
    >>> for epoch, eer in [(1, 5.0), (2, 9.0), (3, 7.0)]:
    ...     save_epoch_checkpoint(brain, epoch, 0.0, {"valid_eer": eer})
    >>> sorted(c.meta["epoch"] for c in brain.checkpointer.list_checkpoints())
    [1, 3]
    """
    validator = getattr(brain, "validator", None)
    brain.checkpointer.save_and_keep_only(
        meta=epoch_meta(epoch, loss, validator, stats),
        end_of_epoch=True,
        num_to_keep=int(getattr(brain.hparams, "keep_checkpoints", 1)),
        min_keys=keep_best_keys(validator),
    )


def select_checkpoints(
    checkpoints: Sequence[Checkpoint],
    select: str = SELECT_LAST,
    count: int = 1,
    save_folder: str = "",
) -> Tuple[List[Checkpoint], Dict[str, Any]]:
    """The checkpoints to average, oldest epoch first, and the record.

    Arguments
    ---------
    checkpoints : sequence of Checkpoint
        End-of-epoch checkpoints, oldest epoch first
        (:func:`speechbrain_ssps.checkpoints.find_epoch_checkpoints`).
    select : str
        ``last`` or ``best_dev``.
    count : int
        How many to average (``--average``).
    save_folder : str
        Where they are (for the messages).

    Returns
    -------
    chosen : list of Checkpoint
        Sorted by epoch.
    record : dict
        ``select``, ``average``, ``epochs`` and, per chosen epoch, its
        validation list and values (``valid_trials``, ``valid_eer``, ...).

    Example
    -------
    >>> ckpts = [Checkpoint(f"CKPT{e}", {"epoch": e, "valid_trials": "dev",
    ...          "valid_eer": eer}, {}) for e, eer in [(1, 9.0), (2, 7.5),
    ...          (3, 8.0)]]
    >>> chosen, record = select_checkpoints(ckpts, "best_dev", 2)
    >>> record["epochs"], record["valid_eer"]
    ([2, 3], [7.5, 8.0])
    >>> select_checkpoints(ckpts, "last", 1)[1]["epochs"]
    [3]
    """
    count = int(count)
    if select not in SELECTIONS:
        raise ValueError(
            f"--select={select}: choose one of {', '.join(SELECTIONS)}"
        )
    if count < 1:
        raise ValueError(f"--average={count}: must be >= 1")
    if select == SELECT_LAST:
        if len(checkpoints) < count:
            raise ValueError(
                f"average_last={count} but {save_folder} holds "
                f"{len(checkpoints)} end-of-epoch checkpoint(s)"
            )
        chosen = list(checkpoints[-count:])
    else:
        chosen = _best_dev(checkpoints, count, save_folder)
    return chosen, _record(select, count, chosen)


def _best_dev(
    checkpoints: Sequence[Checkpoint], count: int, save_folder: str
) -> List[Checkpoint]:
    """The count checkpoints of lowest dev EER, sorted by epoch."""
    scored = [
        c
        for c in checkpoints
        if c.meta.get("valid_trials") == DEV_LIST and "valid_eer" in c.meta
    ]
    if not scored:
        lists = sorted(
            {str(c.meta.get("valid_trials", "none")) for c in checkpoints}
        )
        looked = (
            os.path.join(str(checkpoints[-1].path), METAFNAME)
            if checkpoints
            else save_folder
        )
        raise ValueError(
            f"--select={SELECT_BEST_DEV}: no end-of-epoch checkpoint in "
            f"{save_folder} records a dev validation EER (looked at "
            f"valid_trials/valid_eer in each {METAFNAME}, e.g. {looked}; "
            f"validation lists found: {lists}). A test list "
            "must not select checkpoints: prepare with "
            "voxceleb_prepare.py --dev_speakers=N and train with "
            "--valid_trials=dev, or export without --select (the last "
            "epochs)."
        )
    if len(scored) < count:
        raise ValueError(
            f"--select={SELECT_BEST_DEV} --average={count}: only "
            f"{len(scored)} checkpoint(s) in {save_folder} have a dev EER "
            f"(epochs {[c.meta.get('epoch') for c in scored]}); train with "
            f"--keep_checkpoints={count} or more, or average fewer"
        )
    order = sorted(
        scored,
        key=lambda c: (float(c.meta["valid_eer"]), -int(c.meta["epoch"])),
    )
    return sorted(order[:count], key=lambda c: int(c.meta["epoch"]))


def _record(
    select: str, count: int, chosen: Sequence[Checkpoint]
) -> Dict[str, Any]:
    """What was chosen, for selection.json and the yaml header."""
    record: Dict[str, Any] = {
        "select": select,
        "average": count,
        "epochs": [c.meta.get("epoch") for c in chosen],
        "checkpoints": [os.path.basename(str(c.path)) for c in chosen],
    }
    lists = {c.meta.get("valid_trials") for c in chosen} - {None}
    if lists:
        record["valid_trials"] = sorted(str(name) for name in lists)
        for key in _VALUES:
            record[key] = [c.meta.get(key) for c in chosen]
    return record


def selection_header(record: Mapping[str, Any]) -> str:
    """One ``#`` comment line describing the choice.

    Arguments
    ---------
    record : mapping
        As returned by :func:`select_checkpoints`.

    Returns
    -------
    str
        e.g. ``# selection: best_dev, epochs [2, 3], dev EER [7.5, 8.0] %``.

    Example
    -------
    >>> selection_header({"select": "last", "epochs": [3]})
    '# selection: last, epochs [3]'
    """
    line = f"# selection: {record['select']}, epochs {record['epochs']}"
    if record.get("valid_trials"):
        names = "/".join(record["valid_trials"])
        line += f", {names} EER {record['valid_eer']} %"
    return line


def write_selection(
    export_folder: str, record: Optional[Mapping[str, Any]]
) -> str:
    """Writes ``selection.json`` in an export folder.

    Arguments
    ---------
    export_folder : str
        The export.
    record : mapping
        As returned by :func:`select_checkpoints`.

    Returns
    -------
    str
        The path written.

    Example
    -------
    >>> folder = str(getfixture("tmp_path"))
    >>> path = write_selection(folder, {"select": "last", "epochs": [3]})
    >>> json.load(open(path))["epochs"]
    [3]
    """
    path = os.path.join(export_folder, SELECTION_FILE)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fout:
        json.dump(dict(record or {}), fout, indent=2)
    os.replace(tmp, path)
    return path
