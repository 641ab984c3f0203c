"""The start-up check of the run's options against each other and the data.

Only the rules of the *run* live here: sizes that must be positive, a
global batch no larger than the training set, an SSPS start that comes
before the last epoch, and a ``--precision`` the device can run
(:func:`check_precision`). SSPS's own option rules (sampling method, number of
clusters and neighbours, ``start_epoch >= 2``) are checked in one place
only, :class:`speechbrain_ssps.ssps.SSPS`'s constructor; the recipe maps
its errors to the command-line names.
"""

import numbers
from typing import Any, Callable, Mapping, Optional

import torch

PRECISIONS = ("fp32", "fp16", "bf16")


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


def run_option(run_opts: Any, hparams: Mapping, name: str, default: Any):
    """A run option as ``sb.Brain`` resolves it: command line > yaml > default.

    Arguments
    ---------
    run_opts : RunOptions or dict
        The second value of ``sb.parse_arguments`` (a ``RunOptions`` with
        ``overridden_args`` in SpeechBrain 1.1.2, a dict of the given
        options in 1.1.0).
    hparams : mapping
        The loaded yaml (a top-level key with the option's name).
    name : str
        The option, e.g. ``"precision"``.
    default : object
        SpeechBrain's default.

    Example
    -------
    >>> run_option({"precision": "bf16"}, {"precision": "fp16"}, "precision",
    ...            "fp32")
    'bf16'
    >>> run_option({}, {"precision": "fp16"}, "precision", "fp32")
    'fp16'
    """
    given = getattr(run_opts, "overridden_args", None)
    if given is None:  # a plain dict of the options given
        given = set(run_opts or {})
    if name in given:
        return run_opts[name]
    if name in hparams:
        return hparams[name]
    return default


def check_precision(
    precision: str,
    device: str,
    eval_precision: str = "fp32",
    bf16_supported: Optional[Callable[[], bool]] = None,
) -> None:
    """Stops a ``--precision`` (or ``--eval_precision``) the device lacks.

    fp16 needs CUDA (SpeechBrain's ``GradScaler`` path; SpeechBrain itself
    refuses fp16 on the CPU, but only once the Brain is built, after data
    preparation); bf16 runs on the CPU and on CUDA devices with bfloat16
    support (``torch.cuda.is_bf16_supported()``).

    Arguments
    ---------
    precision : str
        ``--precision``: ``fp32``, ``fp16`` or ``bf16``.
    device : str
        ``--device`` (``cpu``, ``cuda``, ``cuda:1``, ...).
    eval_precision : str
        ``--eval_precision``.
    bf16_supported : callable, optional
        Whether the CUDA device supports bfloat16 (default:
        ``torch.cuda.is_bf16_supported``).

    Raises
    ------
    ValueError
        Naming the option and the device.

    Example
    -------
    >>> check_precision("bf16", "cpu")
    >>> check_precision("fp16", "cpu")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: --precision=fp16 needs a CUDA device, not cpu: ...
    """
    device_type = torch.device(device).type
    for option, value in (
        ("--precision", precision),
        ("--eval_precision", eval_precision),
    ):
        if value not in PRECISIONS:
            raise ValueError(
                f"{option}={value} is not one of {', '.join(PRECISIONS)}"
            )
        if value == "fp16" and device_type != "cuda":
            raise ValueError(
                f"{option}=fp16 needs a CUDA device, not {device}: "
                f"SpeechBrain has no fp16 autocast there; use "
                f"{option}=bf16 (or fp32)"
            )
        if value == "bf16" and device_type == "cuda":
            supported = bf16_supported or torch.cuda.is_bf16_supported
            if not supported():
                raise ValueError(
                    f"{option}=bf16: the CUDA device {device} has no "
                    f"bfloat16 support; use {option}=fp16 (with a "
                    "GradScaler) or fp32"
                )


def check_run_precision(run_opts: Any, hparams: Mapping) -> None:
    """:func:`check_precision` on the run's resolved options.

    ``--device`` defaults as in SpeechBrain (``infer_device``, CUDA under
    ``torchrun``); the deprecated ``--auto_mix_prec`` and
    ``--bfloat16_mix_prec`` count as fp16 and bf16.

    Arguments
    ---------
    run_opts : RunOptions or dict
        The second value of ``sb.parse_arguments``.
    hparams : mapping
        The loaded yaml.
    """
    from speechbrain.utils.distributed import infer_device

    def option(name, default):
        return run_option(run_opts, hparams, name, default)

    precision = option("precision", "fp32")
    if option("auto_mix_prec", False):
        precision = "fp16"
    if option("bfloat16_mix_prec", False):
        precision = "bf16"
    device = option("device", None) or infer_device()
    check_precision(precision, device, option("eval_precision", "fp32"))
