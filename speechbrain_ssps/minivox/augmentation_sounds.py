"""Synthetic noise and babble of the MiniVox augmentation set.

Each function draws one sound from its generator and returns the samples
(float64, peak at most 0.99) and a short description of what was drawn
(music is in :mod:`~speechbrain_ssps.minivox.augmentation_music`):

* :func:`noise_sound`: one of three families (``NOISE_KINDS``): coloured
  noise (white, pink or brown with a random extra tilt, sometimes a broad
  spectral bump and a slow level modulation), mains hum (50 or 60 Hz with
  up to 12 harmonics and a slow frequency drift, over a noise floor), or
  intermittent bursts (clicks and decaying noise bursts of random colour
  at random times, over a faint floor);
* :func:`babble_sound`: 3-7 talkers of MiniVox speech
  (:func:`~speechbrain_ssps.minivox.synthesis.synthesize_speech`) at
  random offsets and levels, sometimes in a small room. The talkers are
  :func:`babble_voices`, drawn from a stream of their own, so that no
  babble voice is a speaker of a MiniVox corpus, whatever its seed.

The ranges are broader than those of the per-video channels of
:mod:`~speechbrain_ssps.minivox.channels` (noise slopes 0-2 and hum with
5 harmonics there), so that augmentation cannot identify a video.

Example
-------
>>> wav, info = noise_sound("hum", 8000, np.random.default_rng(0))
>>> wav.shape, info["kind"], bool(np.max(np.abs(wav)) <= 0.99)
((8000,), 'hum', True)
"""

import functools
import math
from typing import Dict, List, Tuple

import numpy as np
from scipy import signal

from speechbrain_ssps.minivox.audio import SAMPLE_RATE
from speechbrain_ssps.minivox.augmentation_rooms import Room
from speechbrain_ssps.minivox.seeds import _TAG_AUG_BABBLE_VOICE, _rng
from speechbrain_ssps.minivox.synthesis import synthesize_speech
from speechbrain_ssps.minivox.voices import Voice

NOISE_KINDS = ("coloured", "hum", "bursts")
COLOURS = {"white": 0.0, "pink": 1.0, "brown": 2.0}
BABBLE_TALKERS = (3, 7)  # fewest and most talkers of a babble file

_NYQUIST_GUARD = 7800.0  # no partial above this frequency (Hz)
Sound = Tuple[np.ndarray, Dict]


def _to_level(wav: np.ndarray, level_dbfs: float) -> np.ndarray:
    """Scale to an RMS level in dB full scale, then limit the peak to 0.99."""
    rms = math.sqrt(float(np.mean(wav**2)))
    if rms > 0:
        wav = wav * (10.0 ** (level_dbfs / 20.0) / rms)
    peak = float(np.max(np.abs(wav), initial=0.0))
    return wav * (0.99 / peak) if peak > 0.99 else wav


def _place(out: np.ndarray, piece: np.ndarray, start: int) -> None:
    """Add ``piece`` into ``out`` at ``start``, cut at the end of ``out``."""
    if start < out.shape[0]:
        piece = piece[: out.shape[0] - start]
        out[start : start + piece.shape[0]] += piece


def coloured_noise(
    num_samples: int,
    slope: float,
    rng: np.random.Generator,
    bump: Tuple[float, float, float] = (1000.0, 0.0, 1.0),
) -> np.ndarray:
    """Gaussian noise with power spectrum ``f ** -slope`` (unit RMS).

    Arguments
    ---------
    num_samples : int
        Length in samples.
    slope : float
        0 white, 1 pink, 2 brown; negative values rise with frequency.
    rng : numpy.random.Generator
        Source of randomness.
    bump : tuple of float
        ``(centre_hz, gain_db, width_octaves)`` of a log-Gaussian bump of
        the spectrum (gain 0: none).

    Returns
    -------
    numpy.ndarray
        The noise, without content below 15 Hz.

    Example
    -------
    >>> x = coloured_noise(4000, 2.0, np.random.default_rng(0))
    >>> round(float(np.sqrt(np.mean(x**2))), 6)
    1.0
    """
    freqs = np.fft.rfftfreq(num_samples, 1.0 / SAMPLE_RATE)
    octaves = np.log2(np.maximum(freqs, 15.0) / 1000.0)
    centre, gain_db, width = bump
    distance = (octaves - math.log2(centre / 1000.0)) / width
    log_gain = -0.5 * slope * math.log(2.0) * octaves
    log_gain += gain_db / 20.0 * math.log(10.0) * np.exp(-0.5 * distance**2)
    gains = np.where(freqs >= 15.0, np.exp(log_gain), 0.0)
    white = np.fft.rfft(rng.standard_normal(num_samples))
    noise = np.fft.irfft(white * gains, n=num_samples)
    return noise / (math.sqrt(float(np.mean(noise**2))) + 1e-12)


def _random_coloured(num_samples: int, rng: np.random.Generator) -> Sound:
    """Coloured noise of a random family and tilt, maybe a bump and sway."""
    colour = str(rng.choice(list(COLOURS)))
    slope = COLOURS[colour] + float(rng.uniform(-0.5, 0.5))
    bump = (1000.0, 0.0, 1.0)
    if rng.random() < 0.5:
        centre = math.exp(rng.uniform(math.log(100.0), math.log(6000.0)))
        bump = (centre, float(rng.uniform(-12.0, 12.0)), rng.uniform(0.3, 1.5))
    noise = coloured_noise(num_samples, slope, rng, bump)
    if rng.random() < 0.5:
        rate, depth = rng.uniform(0.1, 2.0), rng.uniform(0.1, 0.6)
        t = np.arange(num_samples) / SAMPLE_RATE
        phase = rng.uniform(0.0, 2.0 * np.pi)
        noise *= 1.0 + depth * np.sin(2.0 * np.pi * rate * t + phase)
    return noise, {"colour": colour, "slope": slope, "bump_db": bump[1]}


def _hum(num_samples: int, rng: np.random.Generator) -> Sound:
    """Mains hum with harmonics and a slow drift, over a noise floor."""
    mains = float(rng.choice([50.0, 60.0]))
    num_harmonics = int(rng.integers(3, 13))
    orders = np.arange(1, num_harmonics + 1)
    amps = orders ** -rng.uniform(0.3, 1.5) * np.exp(
        rng.normal(0.0, 0.5, num_harmonics)
    )
    if rng.random() < 0.5:  # buzz: odd harmonics stand out
        amps *= np.where(orders % 2 == 1, 1.0, rng.uniform(0.1, 0.5))
    t = np.arange(num_samples) / SAMPLE_RATE
    knots = rng.normal(0.0, 0.003, int(t[-1]) + 2)
    drift = np.interp(t, np.arange(knots.shape[0]), knots)
    phase = 2.0 * np.pi * mains * np.cumsum(1.0 + drift) / SAMPLE_RATE
    offsets = rng.uniform(0.0, 2.0 * np.pi, num_harmonics)
    hum = np.zeros(num_samples)
    for order, amp, offset in zip(orders, amps, offsets):
        if order * mains < _NYQUIST_GUARD:
            hum += amp * np.sin(order * phase + offset)
    hum /= math.sqrt(float(np.mean(hum**2))) + 1e-12
    floor_db = float(rng.uniform(-35.0, -10.0))
    floor = coloured_noise(num_samples, rng.uniform(0.0, 2.0), rng)
    hum += 10.0 ** (floor_db / 20.0) * floor
    info = {"mains_hz": mains, "harmonics": num_harmonics, "floor_db": floor_db}
    return hum, info


def _bursts(num_samples: int, rng: np.random.Generator) -> Sound:
    """Clicks and decaying noise bursts at random times, a faint floor."""
    duration = num_samples / SAMPLE_RATE
    rate = float(rng.uniform(0.5, 4.0))
    count = max(1, int(rng.poisson(rate * duration)))
    out = 10.0 ** (rng.uniform(-40.0, -15.0) / 20.0) * coloured_noise(
        num_samples, rng.uniform(0.0, 2.0), rng
    )
    for _ in range(count):
        click = rng.random() < 0.3
        seconds = rng.uniform(0.001, 0.005) if click else rng.uniform(0.03, 0.5)
        length = max(int(seconds * SAMPLE_RATE), 8)
        burst = coloured_noise(length, rng.uniform(-0.5, 2.5), rng)
        t = np.arange(length) / SAMPLE_RATE
        envelope = np.exp(-t * rng.uniform(2.0, 6.0) / seconds)
        attack = min(length, int(rng.uniform(0.0005, 0.01) * SAMPLE_RATE) + 1)
        envelope[:attack] *= np.linspace(0.0, 1.0, attack)
        start = int(rng.integers(0, max(num_samples - length, 1)))
        gain = 10.0 ** (rng.uniform(-12.0, 0.0) / 20.0)
        _place(out, gain * burst * envelope, start)
    return out, {"bursts": count, "rate_per_s": rate}


_NOISES = {"coloured": _random_coloured, "hum": _hum, "bursts": _bursts}


def noise_sound(kind: str, num_samples: int, rng: np.random.Generator) -> Sound:
    """One noise of a family, at a random level of -35 to -15 dBFS.

    Arguments
    ---------
    kind : str
        One of ``NOISE_KINDS``.
    num_samples : int
        Length in samples.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    numpy.ndarray
        The noise.
    dict
        ``kind``, ``level_dbfs`` and the family's draws.
    """
    if kind not in _NOISES:
        raise ValueError(f"noise kind must be one of {NOISE_KINDS}, got {kind}")
    wav, info = _NOISES[kind](num_samples, rng)
    level = float(rng.uniform(-35.0, -15.0))
    return _to_level(wav, level), {"kind": kind, "level_dbfs": level, **info}


@functools.lru_cache(maxsize=8)
def babble_voices(seed: int, count: int) -> Tuple[Voice, ...]:
    """The talkers of the babble files: a pool of voices of their own.

    They come from their own seed stream (not the corpus's voice stream),
    so no babble voice is a speaker of any MiniVox corpus.

    Arguments
    ---------
    seed : int
        Seed of the augmentation set.
    count : int
        Size of the pool.

    Returns
    -------
    tuple of Voice
        The voices.

    Example
    -------
    >>> len(babble_voices(0, 4)), babble_voices(0, 4) == babble_voices(0, 4)
    (4, True)
    """
    return tuple(
        Voice.sample(_rng(seed, _TAG_AUG_BABBLE_VOICE, k)) for k in range(count)
    )


def babble_sound(
    voices: Tuple[Voice, ...], num_samples: int, rng: np.random.Generator
) -> Sound:
    """Babble: 3-7 talkers of ``voices`` speaking at once.

    Each talker speaks for 50-100 % of the file from a random offset at a
    level spread of 3 dB; half of the files are heard in a small room.

    Arguments
    ---------
    voices : tuple of Voice
        The pool of talkers (at least ``BABBLE_TALKERS[1]``).
    num_samples : int
        Length in samples (at least 0.5 s).
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    numpy.ndarray
        The babble, at a random level of -30 to -18 dBFS.
    dict
        ``talkers`` (indices into ``voices``), ``reverb`` and ``level_dbfs``.
    """
    low, high = BABBLE_TALKERS
    if len(voices) < high:
        raise ValueError(f"babble needs at least {high} voices")
    count = int(rng.integers(low, high + 1))
    talkers: List[int] = sorted(
        int(k) for k in rng.choice(len(voices), size=count, replace=False)
    )
    mix = np.zeros(num_samples)
    for k in talkers:
        length = int(rng.uniform(0.5, 1.0) * num_samples)
        speech = synthesize_speech(voices[k], length / SAMPLE_RATE, rng)
        gain = 10.0 ** (rng.normal(0.0, 3.0) / 20.0)
        _place(
            mix, gain * speech, int(rng.integers(0, num_samples - length + 1))
        )
    reverb = bool(rng.random() < 0.5)
    if reverb:
        room = Room.sample(rng, "smallroom")
        mix = signal.fftconvolve(mix, room.impulse_response(rng)[0])[
            :num_samples
        ]
    level = float(rng.uniform(-30.0, -18.0))
    info = {"talkers": talkers, "reverb": reverb, "level_dbfs": level}
    return _to_level(mix, level), info
