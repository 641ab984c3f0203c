"""Tests for speechbrain_ssps.schedules against array-based references."""

import numpy as np
import pytest

from speechbrain_ssps.schedules import (
    cosine_schedule,
    step_decay,
    teacher_momentum,
)


def ref_cosine_array(base, final, total, warmup, start):
    """Per-iteration array like reference DINO's cosine_scheduler."""
    warm = np.linspace(start, base, warmup) if warmup > 0 else np.array([])
    it = np.arange(total - warmup)
    cos = final + 0.5 * (base - final) * (1 + np.cos(np.pi * it / len(it)))
    return np.concatenate([warm, cos])


@pytest.mark.parametrize(
    "total,warmup,start", [(50, 0, 0.0), (50, 10, 0.0), (37, 1, 0.3)]
)
def test_cosine_matches_reference_array(total, warmup, start):
    ref = ref_cosine_array(0.2, 1e-5, total, warmup, start)
    got = [
        cosine_schedule(s, total, 0.2, 1e-5, warmup, start)
        for s in range(total)
    ]
    assert got == pytest.approx(ref.tolist(), rel=1e-12, abs=1e-15)


def test_cosine_endpoints_monotone_and_clamped():
    total = 100
    values = [cosine_schedule(s, total, 1.0, 0.1) for s in range(total)]
    assert values[0] == 1.0
    assert all(a >= b for a, b in zip(values, values[1:]))
    assert values[-1] > 0.1
    assert cosine_schedule(total, total, 1.0, 0.1) == 0.1
    assert cosine_schedule(10 * total, total, 1.0, 0.1) == 0.1
    warm = [cosine_schedule(s, total, 1.0, 0.1, 5, 0.0) for s in range(5)]
    assert warm == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0])


def test_cosine_bad_arguments():
    with pytest.raises(ValueError, match="total_steps"):
        cosine_schedule(0, 0, 1.0, 0.0)
    with pytest.raises(ValueError, match="warmup_steps"):
        cosine_schedule(0, 10, 1.0, 0.0, warmup_steps=10)
    with pytest.raises(ValueError, match="step"):
        cosine_schedule(-1, 10, 1.0, 0.0)


def test_step_decay_every_five_epochs():
    spe = 7
    for step in range(0, 60 * spe, 3):
        epoch = step // spe
        expected = 1e-3 * 0.95 ** (epoch // 5)
        assert step_decay(step, spe, 1e-3) == pytest.approx(expected)
    assert step_decay(5 * spe - 1, spe, 1e-3) == 1e-3
    assert step_decay(5 * spe, spe, 1e-3) == pytest.approx(0.95e-3)
    assert step_decay(10 * spe, spe, 1.0, 0.5, 2) == pytest.approx(0.5**5)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        step_decay(0, 0, 1.0)


def test_teacher_momentum_cosine_to_one():
    total = 1000
    ref = ref_cosine_array(0.996, 1.0, total, 0, 0.0)
    got = [teacher_momentum(s, total) for s in range(total)]
    assert got == pytest.approx(ref.tolist(), rel=1e-12)
    assert got[0] == 0.996
    assert all(a <= b for a, b in zip(got, got[1:]))
    assert teacher_momentum(total, total) == 1.0
    assert teacher_momentum(total + 5, total) == 1.0
    # sslsv's closed form: end - (end - start) * (cos(pi s / S) + 1) / 2
    s = 123
    closed = 1.0 - 0.004 * (np.cos(np.pi * s / total) + 1) / 2
    assert teacher_momentum(s, total) == pytest.approx(closed, rel=1e-12)
    with pytest.raises(ValueError, match="momentum"):
        teacher_momentum(0, 10, base=1.5)
