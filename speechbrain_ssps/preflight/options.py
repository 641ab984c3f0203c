"""The start-up check of the run's options against each other and the data.

Only the rules of the *run* live here: sizes that must be positive, a
global batch no larger than the training set, and an SSPS start that comes
before the last epoch. SSPS's own option rules (sampling method, number of
clusters and neighbours, ``start_epoch >= 2``) are checked in one place
only, :class:`speechbrain_ssps.ssps.SSPS`'s constructor; the recipe maps
its errors to the command-line names.
"""

import numbers
from typing import Optional


def check_training_options(
    num_utterances: int,
    batch_size: int,
    number_of_epochs: int,
    world_size: int = 1,
    ssps_start_epoch: Optional[int] = None,
) -> None:
    """Check the training options against each other and the training set.

    Each error names the options as typed on the command line
    (``--batch_size``, ``--ssps_start_epoch``, ...).

    Arguments
    ---------
    num_utterances : int
        Rows of the training manifest.
    batch_size : int
        Batch size per process.
    number_of_epochs : int
        Last epoch of the run.
    world_size : int
        Number of processes (GPUs); the global batch is
        ``batch_size * world_size``.
    ssps_start_epoch : int, optional
        First epoch with SSPS positives (1-based; epoch
        ``ssps_start_epoch - 1`` fills the queues). None: no SSPS. Whether
        the value itself is valid (an integer >= 2) is SSPS's rule, checked
        by its constructor; a value that is not a number is left to it.

    Raises
    ------
    ValueError
        Naming the options at fault.

    Example
    -------
    >>> check_training_options(1000, 64, 10, ssps_start_epoch=5)
    >>> check_training_options(1000, 64, 10, ssps_start_epoch=11)
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: --ssps_start_epoch=11 is after --number_of_epochs=10: ...
    """
    for option, value in (
        ("the training manifest's row count", num_utterances),
        ("--batch_size", batch_size),
        ("--number_of_epochs", number_of_epochs),
        ("the world size (number of processes)", world_size),
    ):
        if int(value) != value or value < 1:
            raise ValueError(
                f"{option} must be a positive integer, got {value!r}"
            )
    global_batch = batch_size * world_size
    if global_batch > num_utterances:
        batch = f"--batch_size={batch_size}"
        if world_size > 1:
            batch += f" x {world_size} processes = {global_batch}"
        raise ValueError(
            f"{batch} is larger than the training set ({num_utterances} "
            "utterances): with drop_last an epoch would have no step; lower "
            "--batch_size"
        )
    if (
        isinstance(ssps_start_epoch, numbers.Real)
        and ssps_start_epoch > number_of_epochs
    ):
        raise ValueError(
            f"--ssps_start_epoch={ssps_start_epoch} is after "
            f"--number_of_epochs={number_of_epochs}: SSPS would never run; "
            "lower --ssps_start_epoch or raise --number_of_epochs"
        )
