"""Synthetic music of the MiniVox augmentation set.

:func:`music_sound` plays note sequences on a random scale (``SCALES``),
root and tempo (60-180 beats per minute): a melody that wanders over two
octaves of the scale, with an optional bass line (one note a bar),
chords (one triad a bar) and percussion (a bright noise hit a beat).
Every voice has its own timbre (:func:`_timbre`): 1-8 harmonics with a
random roll-off (sometimes odd ones only), either plucked (partials
decaying, the higher the faster, slightly inharmonic) or sustained
(slow attack, vibrato).
"""

import math
from typing import Dict

import numpy as np

from speechbrain_ssps.minivox.audio import SAMPLE_RATE
from speechbrain_ssps.minivox.augmentation_sounds import (
    _NYQUIST_GUARD,
    Sound,
    _place,
    _to_level,
    coloured_noise,
)

SCALES = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
    "pentatonic": (0, 2, 4, 7, 9),
    "blues": (0, 3, 5, 6, 7, 10),
}


def _timbre(rng: np.random.Generator) -> Dict:
    """An instrument: harmonic amplitudes, decay, attack and vibrato."""
    num_partials = int(rng.integers(1, 9))
    orders = np.arange(1, num_partials + 1)
    amps = orders ** -rng.uniform(0.5, 2.5)
    if rng.random() < 0.3:  # hollow, clarinet-like: odd partials only
        amps = np.where(orders % 2 == 1, amps, 0.0)
    plucked = bool(rng.random() < 0.5)
    return {
        "amps": amps,
        "decay": float(rng.uniform(0.15, 1.2)) if plucked else 0.0,
        "attack": float(rng.uniform(0.002, 0.01 if plucked else 0.08)),
        "vibrato_cents": 0.0 if plucked else float(rng.uniform(0.0, 25.0)),
        "vibrato_hz": float(rng.uniform(4.0, 7.0)),
        "inharmonicity": float(rng.uniform(0.0, 3e-4)) if plucked else 0.0,
    }


def _note(freq: float, seconds: float, timbre: Dict) -> np.ndarray:
    """One note of ``timbre``: decaying or sustained partials, soft edges."""
    length = max(int(seconds * SAMPLE_RATE), 32)
    t = np.arange(length) / SAMPLE_RATE
    cents = timbre["vibrato_cents"] * np.sin(
        2 * np.pi * timbre["vibrato_hz"] * t
    )
    phase = (
        2.0 * np.pi * freq * np.cumsum(2.0 ** (cents / 1200.0)) / SAMPLE_RATE
    )
    note = np.zeros(length)
    for k, amp in enumerate(timbre["amps"], start=1):
        stretch = k * math.sqrt(1.0 + timbre["inharmonicity"] * k * k)
        if amp == 0.0 or stretch * freq >= _NYQUIST_GUARD:
            continue
        partial = amp * np.sin(stretch * phase)
        if timbre["decay"] > 0:
            partial *= np.exp(-t * (1.0 + 0.5 * (k - 1)) / timbre["decay"])
        note += partial
    edge = min(length // 2, int(timbre["attack"] * SAMPLE_RATE) + 1)
    note[:edge] *= np.linspace(0.0, 1.0, edge)
    fade = min(length // 2, int(0.02 * SAMPLE_RATE))
    note[length - fade :] *= np.linspace(1.0, 0.0, fade)
    return note


def music_sound(num_samples: int, rng: np.random.Generator) -> Sound:
    """Harmonic note sequences on a random scale, tempo and timbres.

    Arguments
    ---------
    num_samples : int
        Length in samples.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    numpy.ndarray
        The music, at a random level of -30 to -15 dBFS.
    dict
        ``scale``, ``root_midi``, ``tempo_bpm`` and the voices present.

    Example
    -------
    >>> wav, info = music_sound(16000, np.random.default_rng(0))
    >>> wav.shape, 60.0 <= info["tempo_bpm"] <= 180.0
    ((16000,), True)
    """
    scale_name = str(rng.choice(list(SCALES)))
    scale = SCALES[scale_name]
    root = int(rng.integers(43, 60))  # MIDI note of the bass register
    beat = 60.0 / float(rng.uniform(60.0, 180.0))
    seconds = num_samples / SAMPLE_RATE

    def pitch(degree: int, octave: int) -> float:
        steps = scale[degree % len(scale)] + 12 * (
            octave + degree // len(scale)
        )
        return 440.0 * 2.0 ** ((root + steps - 69) / 12.0)

    parts = {"melody": 1.0}
    for name, chance, gain_db in (("bass", 0.7, -6.0), ("chords", 0.5, -9.0)):
        if rng.random() < chance:
            parts[name] = 10.0 ** ((gain_db + rng.normal(0.0, 2.0)) / 20.0)
    mix = np.zeros(num_samples)
    for name, gain in parts.items():
        timbre = _timbre(rng)
        voice = np.zeros(num_samples)
        time, degree = 0.0, int(rng.integers(0, len(scale)))
        while time < seconds:
            if name == "melody":
                length = beat * float(
                    rng.choice([0.25, 0.5, 0.5, 1.0, 1.0, 2.0])
                )
                degree = int(np.clip(degree + rng.integers(-3, 4), 0, 14))
                notes = [] if rng.random() < 0.1 else [pitch(degree, 1)]
            else:  # one chord (or bass note) a bar, on a chord degree
                length = 4.0 * beat
                degree = int(rng.choice([0, 3, 4, 5]))
                notes = [pitch(degree, 0)]
                if name == "chords":
                    notes = [pitch(degree + k, 1) for k in (0, 2, 4)]
            for freq in notes:
                _place(
                    voice, _note(freq, length, timbre), int(time * SAMPLE_RATE)
                )
            time += length
        mix += gain * voice / (math.sqrt(float(np.mean(voice**2))) + 1e-12)
    if rng.random() < 0.4:
        parts["percussion"] = 1.0
        decay = rng.uniform(0.02, 0.08)
        hit = coloured_noise(int(4 * decay * SAMPLE_RATE), -1.0, rng)
        hit *= np.exp(-np.arange(hit.shape[0]) / (decay * SAMPLE_RATE))
        for k in range(int(seconds / beat) + 1):
            _place(mix, 0.5 * hit, int(k * beat * SAMPLE_RATE))
    level = float(rng.uniform(-30.0, -15.0))
    return _to_level(mix, level), {
        "scale": scale_name,
        "root_midi": root,
        "tempo_bpm": 60.0 / beat,
        "parts": sorted(parts),
        "level_dbfs": level,
    }
