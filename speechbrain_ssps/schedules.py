"""Training schedules as pure functions of the global optimizer step.

Reference DINO precomputes per-iteration arrays (``utils.cosine_scheduler``)
and indexes them with the global iteration; sslsv computes the same values
on the fly. Here each value is a closed-form function of the step, so a run
resumed from a checkpoint (which restores SpeechBrain's ``optimizer_step``)
gets exactly the values it would have had without the interruption.

Steps are 0-based: step 0 is the first optimizer step.
"""

import math


def _check_total(total_steps: int) -> None:
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")


def cosine_schedule(
    step: int,
    total_steps: int,
    base_value: float,
    final_value: float,
    warmup_steps: int = 0,
    warmup_start_value: float = 0.0,
) -> float:
    """Linear warm-up, then a cosine from ``base_value`` to ``final_value``.

    Same values as reference DINO's ``cosine_scheduler(base_value,
    final_value, epochs, niter_per_ep, warmup_epochs, start_warmup_value)``
    indexed at ``step`` (with ``total_steps = epochs * niter_per_ep``):

    * ``step < warmup_steps``: ``numpy.linspace(warmup_start_value,
      base_value, warmup_steps)[step]`` (so the last warm-up step already
      reaches ``base_value``);
    * ``warmup_steps <= step < total_steps``: ``final + (base - final) *
      (1 + cos(pi * (step - warmup_steps) / (total_steps - warmup_steps)))
      / 2``;
    * ``step >= total_steps``: ``final_value``.

    Arguments
    ---------
    step : int
        0-based global optimizer step.
    total_steps : int
        Length of the schedule in steps.
    base_value : float
        Value at the end of the warm-up (start of the cosine).
    final_value : float
        Value the cosine tends to, and the value after ``total_steps``.
    warmup_steps : int
        Number of linear warm-up steps (``< total_steps``).
    warmup_start_value : float
        Value at step 0 when there is a warm-up.

    Returns
    -------
    float
        The scheduled value.

    Example
    -------
    >>> cosine_schedule(0, 100, 1.0, 0.0)
    1.0
    >>> round(cosine_schedule(50, 100, 1.0, 0.0), 6)
    0.5
    >>> cosine_schedule(100, 100, 1.0, 0.0)
    0.0
    >>> [cosine_schedule(s, 10, 1.0, 0.0, warmup_steps=3) for s in range(3)]
    [0.0, 0.5, 1.0]
    """
    _check_total(total_steps)
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(
            f"warmup_steps must be in [0, total_steps={total_steps}), got "
            f"{warmup_steps}"
        )
    if step >= total_steps:
        return float(final_value)
    if step < warmup_steps:
        if warmup_steps == 1:
            return float(warmup_start_value)
        frac = step / (warmup_steps - 1)
        return warmup_start_value + (base_value - warmup_start_value) * frac
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    cos = 1.0 + math.cos(math.pi * progress)
    return final_value + 0.5 * (base_value - final_value) * cos


def step_decay(
    step: int,
    steps_per_epoch: int,
    base_value: float,
    factor: float = 0.95,
    every_epochs: int = 5,
) -> float:
    """Multiply ``base_value`` by ``factor`` once every ``every_epochs`` epochs.

    sslsv's default learning-rate schedule for SimCLR (equivalent to
    ``StepLR(step_size=5, gamma=0.95)`` stepped per epoch):
    ``base * factor ** ((step // steps_per_epoch) // every_epochs)``.

    Arguments
    ---------
    step : int
        0-based global optimizer step.
    steps_per_epoch : int
        Optimizer steps per epoch.
    base_value : float
        Value during the first ``every_epochs`` epochs.
    factor : float
        Decay factor applied at each boundary.
    every_epochs : int
        Number of epochs between two decays.

    Returns
    -------
    float
        The scheduled value.

    Example
    -------
    >>> step_decay(49, 10, 1e-3)  # epoch index 4: no decay yet
    0.001
    >>> round(step_decay(50, 10, 1e-3), 8)  # epoch index 5
    0.00095
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
    if every_epochs < 1:
        raise ValueError(f"every_epochs must be >= 1, got {every_epochs}")
    epoch = step // steps_per_epoch
    return base_value * factor ** (epoch // every_epochs)


def teacher_momentum(
    step: int, total_steps: int, base: float = 0.996, final: float = 1.0
) -> float:
    """EMA momentum of the DINO teacher: cosine from ``base`` to ``final``.

    Same as reference DINO's ``momentum_schedule`` and sslsv's
    ``MomentumUpdater.update_tau``: ``final - (final - base) * (1 + cos(pi *
    step / total_steps)) / 2``, and ``final`` from ``total_steps`` on.

    Arguments
    ---------
    step : int
        0-based global optimizer step.
    total_steps : int
        Total number of optimizer steps of the training run.
    base : float
        Momentum at step 0.
    final : float
        Momentum reached at the end of training.

    Returns
    -------
    float
        The momentum for this step.

    Example
    -------
    >>> teacher_momentum(0, 1000)
    0.996
    >>> round(teacher_momentum(500, 1000), 6)
    0.998
    >>> teacher_momentum(1000, 1000)
    1.0
    """
    if not 0.0 <= base <= 1.0 or not 0.0 <= final <= 1.0:
        raise ValueError(
            f"base and final momentum must be in [0, 1], got {base}, {final}"
        )
    return cosine_schedule(step, total_steps, base, final)
