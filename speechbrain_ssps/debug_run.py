"""What SpeechBrain's ``--debug`` changes in an SSL run, so every path runs.

SpeechBrain's debug mode (``--debug``; ``--debug_epochs``, default 2, and
``--debug_batches``, default 2) stops each epoch after ``debug_batches``
batches and the run after ``debug_epochs`` epochs. A recipe yaml sized for
VoxCeleb would then skip most of what it does: SSPS starts at epoch 81 or
101, SwAV's queue at epoch 16, and with two batches SSPS's queues hold a
few rows only, too few for a k-means with K = 25,000. Under ``--debug``
the recipe therefore adapts, and says so in one log line:

* epoch options (:func:`debug_epoch_changes`): ``ssps_start_epoch``,
  ``swav_queue_start_epoch`` and ``valid_every`` later than the last debug
  epoch become the last debug epoch. SSPS's queues are then filled in the
  epoch before (``ssps_fill: epoch``) or by a fill pass limited to
  ``debug_batches`` batches (``ssps_fill: pass``), and the last debug epoch
  clusters them and swaps positives. With ``--debug_epochs=1`` SSPS cannot
  run (one epoch must fill the queues first): the line says so;
* SSPS's sizes (:func:`debug_ssps_changes`): a K larger than the rows the
  debug batches fill becomes half of those rows (clusters of two, so that
  same-cluster sampling also finds positives), and M stays below K;
* the lr / weight-decay / momentum schedules are sized to ``debug_batches``
  steps per epoch (:class:`~speechbrain_ssps.brain.SSLBrain`), so that
  epoch-based and step-based rules agree on the epoch.

Epoch options are command-line overrides, merged into the user's
(:func:`merge_overrides`), so the run's ``hyperparams.yaml`` records them;
SSPS's sizes depend on the training set and are passed to its factory.

Example
-------
>>> changes = debug_epoch_changes(
...     {"ssps_start_epoch": 81, "valid_every": 1}, debug_epochs=2, ssps=True
... )
>>> changes
{'ssps_start_epoch': (81, 2)}
>>> debug_ssps_changes(25000, 1, "ncs", filled_rows=8)
{'num_clusters': (25000, 4)}
>>> line = describe_debug(2, 2, {**changes, "ssps_num_clusters": (25000, 4)})
>>> for part in line.split(", "):
...     print(part)
--debug (2 epochs x 2 batches): ssps_start_epoch 81 -> 2
ssps_num_clusters 25000 -> 4; schedules sized to 2 steps per epoch
"""

from __future__ import annotations

import io
from typing import Dict, Iterable, Optional, Tuple, Union

from ruamel.yaml import YAML

#: Epoch options moved to the last debug epoch when they come later.
EPOCH_OPTIONS = ("ssps_start_epoch", "swav_queue_start_epoch", "valid_every")

Change = Tuple[object, object]


def _round_trip() -> YAML:
    yaml = YAML()  # round trip: keeps HyperPyYAML tags and flow lists
    yaml.width = 4096
    return yaml


def read_top_level(hparams_file: str, overrides, keys: Iterable[str]) -> dict:
    """Top-level values of a HyperPyYAML file, without building anything.

    References are resolved with the overrides applied
    (``hyperpyyaml.resolve_references``); no object is constructed.

    Arguments
    ---------
    hparams_file : str
        The yaml.
    overrides : str or dict
        The command-line overrides (``sb.parse_arguments``' third value).
    keys : iterable of str
        The keys to read; absent keys are left out.

    Returns
    -------
    dict
        ``{key: value}`` for each key present, plus ``"ssps"`` (True when
        the yaml defines SSPS).
    """
    from hyperpyyaml import resolve_references

    with open(hparams_file, encoding="utf-8") as fin:
        resolved = resolve_references(fin, overrides or None)
    data = _round_trip().load(resolved) or {}
    values = {k: data[k] for k in keys if k in data}
    values["ssps"] = "ssps" in data
    return values


def debug_epoch_changes(
    values: dict, debug_epochs: int, ssps: bool
) -> Dict[str, Change]:
    """Epoch options to move so that the debug epochs reach them.

    Arguments
    ---------
    values : dict
        The yaml's values of :data:`EPOCH_OPTIONS` (absent or None: kept).
    debug_epochs : int
        SpeechBrain's ``--debug_epochs``; <= 0 runs every epoch (no change).
    ssps : bool
        Whether the yaml trains with SSPS (``ssps_start_epoch`` is ignored
        otherwise).

    Returns
    -------
    dict
        ``{option: (old, new)}``.

    Example
    -------
    >>> debug_epoch_changes({"swav_queue_start_epoch": 16}, 2, ssps=False)
    {'swav_queue_start_epoch': (16, 2)}
    >>> debug_epoch_changes({"ssps_start_epoch": 81}, 1, ssps=True)
    {}
    """
    last = int(debug_epochs)
    if last <= 0:
        return {}
    changes: Dict[str, Change] = {}
    for option in EPOCH_OPTIONS:
        value = values.get(option)
        if value is None or (option == "ssps_start_epoch" and not ssps):
            continue
        if option == "ssps_start_epoch" and last < 2:
            continue  # one epoch fills the queues: SSPS cannot run
        if option == "valid_every" and int(value) <= 0:
            continue  # validation off
        if int(value) > last:
            changes[option] = (value, last)
    return changes


def ssps_skipped_note(values: dict, debug_epochs: int) -> Optional[str]:
    """Why SSPS does not run in this debug run, or None.

    Example
    -------
    >>> ssps_skipped_note({"ssps": True, "ssps_start_epoch": 81}, 1)
    'SSPS not run (it needs 2 debug epochs: one fills its queues)'
    """
    last = int(debug_epochs)
    if values.get("ssps") and values.get("ssps_start_epoch") and 0 < last < 2:
        return "SSPS not run (it needs 2 debug epochs: one fills its queues)"
    return None


def debug_filled_rows(
    num_utterances: int, batch_size: int, world_size: int, debug_batches: int
) -> int:
    """Reference rows written by ``debug_batches`` batches (drop_last).

    Example
    -------
    >>> debug_filled_rows(24, 4, 1, 2), debug_filled_rows(6, 4, 1, 2)
    (8, 4)
    """
    global_batch = int(batch_size) * int(world_size)
    batches = min(int(debug_batches), int(num_utterances) // global_batch)
    return max(batches, 0) * global_batch


def debug_ssps_changes(
    num_clusters: int, num_neighbors: int, sampling: str, filled_rows: int
) -> Dict[str, Change]:
    """SSPS sizes that the rows filled by the debug batches can hold.

    K-means needs at least K filled rows: a larger K becomes
    ``max(2, filled_rows // 2)`` (at most ``filled_rows``); the number of
    neighbouring clusters M stays below K. ``knn`` sampling has no k-means
    and is left as it is.

    Arguments
    ---------
    num_clusters, num_neighbors : int
        SSPS's K and M.
    sampling : str
        SSPS's ``sampling``.
    filled_rows : int
        :func:`debug_filled_rows`.

    Returns
    -------
    dict
        ``{ssps_argument: (old, new)}`` (``num_clusters``,
        ``num_neighbors``).

    Example
    -------
    >>> debug_ssps_changes(8, 1, "ncs", 8)
    {}
    >>> debug_ssps_changes(25000, 3, "ncs", 4)
    {'num_clusters': (25000, 2), 'num_neighbors': (3, 1)}
    """
    if sampling == "knn" or int(num_clusters) <= int(filled_rows):
        return {}
    k = min(int(filled_rows), max(2, int(filled_rows) // 2))
    changes: Dict[str, Change] = {"num_clusters": (num_clusters, k)}
    if sampling in ("ncs", "centroid") and int(num_neighbors) >= k:
        changes["num_neighbors"] = (num_neighbors, max(k - 1, 1))
    return changes


def merge_overrides(
    overrides: Union[str, dict, None], values: Dict[str, object]
) -> str:
    """The command-line overrides with ``values`` set (a yaml string).

    Example
    -------
    >>> print(merge_overrides("a: 1\\nb: [1, 2]", {"a": 5}), end="")
    a: 5
    b: [1, 2]
    """
    yaml = _round_trip()
    if isinstance(overrides, dict):
        data = dict(overrides)
    else:
        data = yaml.load(overrides) if overrides else None
        data = data if data is not None else {}
    for key, value in values.items():
        data[key] = value
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    return buffer.getvalue()


def describe_debug(
    debug_epochs: int,
    debug_batches: int,
    changes: Dict[str, Change],
    notes: Iterable[str] = (),
) -> str:
    """The one log line of a debug run: what it changed, what it skipped."""
    parts = [f"{k} {old} -> {new}" for k, (old, new) in changes.items()]
    parts = [", ".join(parts)] if parts else ["no option changed"]
    parts += list(notes)
    parts.append(f"schedules sized to {debug_batches} steps per epoch")
    epochs = int(debug_epochs)
    epochs = "all epochs" if epochs <= 0 else f"{epochs} epoch" + "s" * (
        epochs != 1
    )  # fmt: skip
    head = f"--debug ({epochs} x {debug_batches} batches): "
    return head + "; ".join(parts)
