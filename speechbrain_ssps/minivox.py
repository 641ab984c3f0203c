"""Minivox: a small synthetic multi-speaker corpus laid out like VoxCeleb.

The corpus exists to test and study SSPS without downloading VoxCeleb. Like
VoxCeleb, every speaker is recorded in several "videos", and every video has
its own recording channel (room, microphone, noise, level) shared by all of
its utterances. A model trained with same-utterance positives can therefore
match two crops by channel instead of voice, which is the confound SSPS
removes.

Layout (identical to VoxCeleb's)::

    DIR/wav/id10001/<11-char video id>/00001.wav   16 kHz mono PCM-16
    DIR/meta/veri_test2.txt      "1 idA/vid/00001.wav idA/vid2/00003.wav"
    DIR/meta/speakers.csv        voice parameters of every speaker
    DIR/meta/videos.csv          session voice + channel of every video
    DIR/minivox.json             generation parameters (skip marker)

Training speakers come first (``id10001`` ...), followed by the test
speakers. The trial list only uses test speakers; it is balanced, and its
target trials always pair two different videos of the same speaker.

Voices use a source-filter model: a glottal pulse train made by phase
accumulation of a smooth f0 contour (with per-cycle jitter and shimmer) plus
aspiration and frication noise, shaped frame by frame in the STFT domain by
a cascade of five formant resonators (an antiresonance for nasals, a
spectral tilt for the voice quality). Each speaker has its own f0 level and
range, vocal-tract length (formant scaling), formant bandwidths, spectral
tilt, open quotient, jitter, shimmer, breathiness, speaking rate and small
idiosyncratic shifts of its vowel formants. Each video slightly shifts the
voice (session variability). The content is a random sequence of
syllables built from vowel, approximant, nasal, fricative and plosive
segments, with smooth formant and f0 transitions.

Every video draws a channel: a reverberant room (exponentially decaying
synthetic impulse response), coloured noise (and sometimes mains hum) at a
per-video SNR, a microphone equaliser (peaking and shelving filters),
band-limiting (high-pass and a 3-8 kHz low-pass) and a level.
``channel_strength`` scales all of it (0 = clean, 1 = default).

Everything is seeded per (seed, speaker, video, utterance), so the files
do not depend on the number of worker processes, and the same arguments
give byte-identical files.

Command line::

    python -m speechbrain_ssps.minivox --out DIR --speakers 60 --videos 8 \\
        --utterances 10 --test-speakers 10 --seed 0 --workers 2
"""

import argparse
import csv
import dataclasses
import json
import logging
import math
import multiprocessing
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import soundfile as sf
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage, signal

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
GENERATOR_VERSION = 1
FIRST_SPEAKER_NUMBER = 10001
VIDEO_ID_ALPHABET = (
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
)
VIDEO_ID_LENGTH = 11

# Seed-sequence tags: one independent stream per kind of draw.
_TAG_VOICE = 1
_TAG_SESSION = 2
_TAG_CHANNEL = 3
_TAG_VIDEO_ID = 4
_TAG_UTTERANCE = 5
_TAG_TRIALS = 6

# STFT used to apply time-varying spectral envelopes (hop divides nfft).
_NFFT = 512
_HOP = 128
_PAD = _NFFT - _HOP
_WINDOW = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(_NFFT) / _NFFT)
_OLA_GAIN = float(np.sum(_WINDOW**2) / _HOP)  # 1.5 for a periodic Hann
_FREQS = np.fft.rfftfreq(_NFFT, 1.0 / SAMPLE_RATE)
_OMEGA = 2.0 * np.pi * _FREQS / SAMPLE_RATE

# Reference (adult male) formant targets F1-F3 in Hz of ten vowels.
_VOWELS = np.array(
    [
        [270.0, 2290.0, 3010.0],
        [390.0, 1990.0, 2550.0],
        [530.0, 1840.0, 2480.0],
        [660.0, 1720.0, 2410.0],
        [730.0, 1090.0, 2440.0],
        [570.0, 840.0, 2410.0],
        [440.0, 1020.0, 2240.0],
        [300.0, 870.0, 2240.0],
        [640.0, 1190.0, 2390.0],
        [490.0, 1350.0, 1690.0],
    ]
)
_F45 = (3400.0, 4300.0)  # reference F4, F5
_BANDWIDTHS = np.array([70.0, 90.0, 130.0, 200.0, 250.0])

# Places of articulation: F2, F3 loci (Hz), frication centre / bandwidth /
# level (dB), burst centre / bandwidth / level (dB), nasal zero (Hz).
_PLACES = {
    "lab": (900.0, 2300.0, 6000.0, 8000.0, -24.0, 1200.0, 3000.0, -12.0, 1100),
    "alv": (1700.0, 2700.0, 5200.0, 2000.0, -12.0, 4000.0, 2500.0, -7.0, 1700),
    "pal": (1900.0, 2400.0, 3000.0, 1500.0, -10.0, 2800.0, 1500.0, -7.0, 2200),
    "vel": (2100.0, 2200.0, 2600.0, 1500.0, -14.0, 2200.0, 1200.0, -7.0, 3000),
}
# name: (kind, place, voiced)
_CONSONANTS = {
    "p": ("stop", "lab", False),
    "b": ("stop", "lab", True),
    "t": ("stop", "alv", False),
    "d": ("stop", "alv", True),
    "k": ("stop", "vel", False),
    "g": ("stop", "vel", True),
    "f": ("fric", "lab", False),
    "v": ("fric", "lab", True),
    "s": ("fric", "alv", False),
    "z": ("fric", "alv", True),
    "sh": ("fric", "pal", False),
    "zh": ("fric", "pal", True),
    "h": ("aspirate", "lab", False),
    "m": ("nasal", "lab", True),
    "n": ("nasal", "alv", True),
    "ng": ("nasal", "vel", True),
    "w": ("approx", "lab", True),
    "j": ("approx", "pal", True),
    "l": ("approx", "alv", True),
    "r": ("approx", "alv", True),
}
# Approximant F1-F3 targets (Hz).
_APPROX = {
    "w": (300.0, 700.0, 2200.0),
    "j": (280.0, 2200.0, 2900.0),
    "l": (360.0, 1200.0, 2700.0),
    "r": (350.0, 1200.0, 1600.0),
}
_ONSETS = tuple(_CONSONANTS)
_CODAS = tuple(c for c in _CONSONANTS if c not in ("h", "w", "j"))
_CLUSTER_FIRST = ("p", "b", "t", "d", "k", "g", "f", "sh")
_CLUSTER_SECOND = ("l", "r", "w")

# Option names of generate_corpus and their command-line spelling.
_OPTIONS = {
    "num_speakers": "--speakers",
    "num_videos": "--videos",
    "num_utterances": "--utterances",
    "num_test_speakers": "--test-speakers",
    "seed": "--seed",
    "min_duration": "--min-duration",
    "max_duration": "--max-duration",
    "num_trials": "--trials",
    "channel_strength": "--channel-strength",
    "session_variability": "--session-variability",
    "workers": "--workers",
}


def _opt(name: str) -> str:
    """Name an option of ``generate_corpus`` with its command-line flag."""
    return f"{name} ({_OPTIONS[name]})"


def _rng(seed: int, tag: int, *index: int) -> np.random.Generator:
    """Independent generator for one (seed, kind, speaker, ...) cell."""
    return np.random.default_rng(np.random.SeedSequence([seed, tag, *index]))


# ---------------------------------------------------------------------------
# Voices
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Voice:
    """Parameters of one synthetic voice (source-filter model).

    Arguments
    ---------
    sex : str
        ``"m"`` or ``"f"`` (only used to draw the other parameters).
    f0_mean : float
        Median fundamental frequency in Hz.
    f0_range : float
        Scale of the intonation (semitones).
    vtl_factor : float
        Formant scaling (1.0 = reference male vocal tract; shorter tracts
        have larger factors).
    formant_scales : tuple of float
        Idiosyncratic multipliers of F1..F5.
    vowel_shifts : tuple of tuple of float
        Per-vowel multipliers of (F1, F2), one pair per reference vowel.
    bandwidth_scale : float
        Multiplier of the formant bandwidths.
    tilt : float
        Extra spectral tilt of the voiced source in dB/octave.
    open_quotient : float
        Fraction of each glottal cycle during which the glottis is open.
    jitter : float
        Relative standard deviation of the period, cycle to cycle.
    shimmer : float
        Relative standard deviation of the amplitude, cycle to cycle.
    breathiness : float
        Aspiration noise level relative to the voiced level.
    speaking_rate : float
        Tempo multiplier (2.0 speaks twice as fast).
    fricative_scale : float
        Multiplier of the frication centre frequencies.

    Example
    -------
    >>> voice = Voice.sample(np.random.default_rng(0))
    >>> voice.sex in ("m", "f") and 60.0 < voice.f0_mean < 350.0
    True
    >>> len(voice.vowel_shifts) == len(_VOWELS)
    True
    """

    sex: str
    f0_mean: float
    f0_range: float
    vtl_factor: float
    formant_scales: Tuple[float, ...]
    vowel_shifts: Tuple[Tuple[float, float], ...]
    bandwidth_scale: float
    tilt: float
    open_quotient: float
    jitter: float
    shimmer: float
    breathiness: float
    speaking_rate: float
    fricative_scale: float

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "Voice":
        """Draw a random adult voice.

        Arguments
        ---------
        rng : numpy.random.Generator
            Source of randomness.

        Returns
        -------
        Voice
            The voice.
        """
        female = bool(rng.random() < 0.5)
        if female:
            f0 = 205.0 * math.exp(rng.normal(0.0, 0.12))
            vtl = 1.17 * math.exp(rng.normal(0.0, 0.045))
        else:
            f0 = 115.0 * math.exp(rng.normal(0.0, 0.14))
            vtl = 1.0 * math.exp(rng.normal(0.0, 0.045))
        formant_scales = np.exp(rng.normal(0.0, [0.03, 0.03, 0.04, 0.05, 0.05]))
        vowel_shifts = np.exp(rng.normal(0.0, 0.05, size=(len(_VOWELS), 2)))
        breathiness = 0.08 * math.exp(rng.normal(0.0, 0.5))
        return cls(
            sex="f" if female else "m",
            f0_mean=f0,
            f0_range=float(rng.uniform(1.5, 4.0)),
            vtl_factor=vtl,
            formant_scales=tuple(float(v) for v in formant_scales),
            vowel_shifts=tuple(
                (float(a), float(b)) for a, b in vowel_shifts.tolist()
            ),
            bandwidth_scale=math.exp(rng.normal(0.0, 0.2)),
            tilt=float(rng.normal(0.0, 1.5)),
            open_quotient=float(rng.uniform(0.45, 0.8)),
            jitter=float(rng.uniform(0.003, 0.015)),
            shimmer=float(rng.uniform(0.02, 0.08)),
            breathiness=float(np.clip(breathiness, 0.01, 0.5)),
            speaking_rate=math.exp(rng.normal(0.0, 0.12)),
            fricative_scale=math.exp(rng.normal(0.0, 0.06)),
        )

    def session(self, rng: np.random.Generator, amount: float = 1.0) -> "Voice":
        """Return this voice as heard in one recording session (video).

        Speakers do not sound the same in every video (mood, vocal effort,
        tempo). This shifts f0 (std 0.6 semitone), tempo (4 %), tilt
        (0.6 dB/octave) and breathiness (20 %), times ``amount``.

        Arguments
        ---------
        rng : numpy.random.Generator
            Source of randomness.
        amount : float
            Scale of the changes (0 = identical voice).

        Returns
        -------
        Voice
            The session voice.

        Example
        -------
        >>> voice = Voice.sample(np.random.default_rng(0))
        >>> voice.session(np.random.default_rng(1), 0.0) == voice
        True
        """
        if amount < 0:
            raise ValueError(f"amount must be >= 0, got {amount}")
        shift = rng.normal(0.0, [0.6, 0.04, 0.6, 0.2]) * amount
        return dataclasses.replace(
            self,
            f0_mean=self.f0_mean * 2.0 ** (shift[0] / 12.0),
            speaking_rate=self.speaking_rate * math.exp(shift[1]),
            tilt=self.tilt + float(shift[2]),
            breathiness=float(
                np.clip(self.breathiness * math.exp(shift[3]), 0.005, 0.6)
            ),
        )

    def describe(self) -> Dict[str, str]:
        """Scalar parameters formatted for a CSV row.

        Returns
        -------
        dict
            Parameter name -> formatted value.
        """
        return {
            "sex": self.sex,
            "f0_mean_hz": _fmt(self.f0_mean),
            "f0_range_st": _fmt(self.f0_range),
            "vtl_factor": _fmt(self.vtl_factor),
            "bandwidth_scale": _fmt(self.bandwidth_scale),
            "tilt_db_per_octave": _fmt(self.tilt),
            "open_quotient": _fmt(self.open_quotient),
            "jitter": _fmt(self.jitter),
            "shimmer": _fmt(self.shimmer),
            "breathiness": _fmt(self.breathiness),
            "speaking_rate": _fmt(self.speaking_rate),
        }


def _fmt(value: float) -> str:
    """Format a float compactly and deterministically."""
    return f"{value:.6g}"


# ---------------------------------------------------------------------------
# Channels
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Channel:
    """Recording condition of one video, shared by all its utterances.

    The signal path is: room (impulse response) -> additive noise at
    ``snr_db`` -> equaliser -> band-limiting -> level ``level_dbfs``.

    Arguments
    ---------
    rt60 : float
        Reverberation time in seconds.
    drr_db : float
        Direct-to-reverberant energy ratio in dB (``inf``: no reverb).
    rir_seed : int
        Seed of the noise that shapes the room impulse response.
    rir_damping : float
        Pole (0..1) of the one-pole low-pass that darkens the reverb tail.
    snr_db : float
        Signal-to-noise ratio of the additive noise (whole utterance).
    noise_slope : float
        Noise power spectrum falls as ``f ** -noise_slope`` (0 = white).
    hum_hz : float
        Mains hum frequency (0 = no hum).
    hum_db : float
        Hum power relative to the broadband noise in dB.
    eq : tuple
        Equaliser bands ``(kind, freq_hz, gain_db, q)`` with kind one of
        ``"peak"``, ``"lowshelf"``, ``"highshelf"``.
    highpass_hz : float
        Cut-off of the 2nd-order Butterworth high-pass.
    lowpass_hz : float
        Cut-off of the 6th-order Butterworth low-pass.
    level_dbfs : float
        RMS level of the recorded utterance in dB full scale.

    Example
    -------
    >>> channel = Channel.sample(np.random.default_rng(0))
    >>> 3000.0 <= channel.lowpass_hz <= 7800.0
    True
    >>> clean = Channel.sample(np.random.default_rng(0), strength=0.0)
    >>> clean.eq, clean.drr_db, clean.lowpass_hz
    ((), inf, 7800.0)
    """

    rt60: float
    drr_db: float
    rir_seed: int
    rir_damping: float
    snr_db: float
    noise_slope: float
    hum_hz: float
    hum_db: float
    eq: Tuple[Tuple[str, float, float, float], ...]
    highpass_hz: float
    lowpass_hz: float
    level_dbfs: float

    @classmethod
    def sample(
        cls, rng: np.random.Generator, strength: float = 1.0
    ) -> "Channel":
        """Draw a random recording condition.

        At ``strength`` 1 (the default) the SNR is 10-30 dB, the
        direct-to-reverberant ratio 2-15 dB with RT60 0.1-0.5 s, the
        equaliser has 2-4 peaks (std 5 dB, within +-12 dB) and two shelves
        (std 4 dB), the low-pass lies in 3-7.8 kHz and the high-pass in
        40-300 Hz, and the level in -34..-18 dBFS. Gains in dB, the
        band-limiting, the reverb amplitude and the level spread scale
        linearly with ``strength``; the SNR interpolates from 45 dB
        (strength 0) down to its drawn value (strength 1).

        Arguments
        ---------
        rng : numpy.random.Generator
            Source of randomness.
        strength : float
            Channel strength (0 = clean, 1 = default, >1 = harsher).

        Returns
        -------
        Channel
            The channel.
        """
        if not strength >= 0:
            raise ValueError(
                f"{_opt('channel_strength')} must be >= 0, got {strength}"
            )
        s = float(strength)
        rt60 = float(rng.uniform(0.1, 0.5))
        drr = float(rng.uniform(2.0, 15.0))
        drr_db = drr - 20.0 * math.log10(s) if s > 0 else math.inf
        rir_seed = int(rng.integers(2**31))
        rir_damping = float(rng.uniform(0.2, 0.7))
        snr_db = 45.0 - s * (45.0 - float(rng.uniform(10.0, 30.0)))
        noise_slope = float(rng.uniform(0.0, 2.0))
        has_hum = bool(rng.random() < 0.25)
        hum_hz = float(rng.choice([50.0, 60.0])) if has_hum else 0.0
        hum_db = float(rng.uniform(-5.0, 10.0)) if has_hum else 0.0
        bands = []
        for _ in range(int(rng.integers(2, 5))):
            freq = math.exp(rng.uniform(math.log(150.0), math.log(6000.0)))
            gain = float(np.clip(rng.normal(0.0, 5.0), -12.0, 12.0))
            q = math.exp(rng.uniform(math.log(0.7), math.log(3.0)))
            bands.append(("peak", freq, gain, q))
        low_f, low_g = rng.uniform(100.0, 400.0), rng.normal(0.0, 4.0)
        high_f, high_g = rng.uniform(2000.0, 6000.0), rng.normal(0.0, 4.0)
        bands.append(("lowshelf", float(low_f), float(low_g), 0.707))
        bands.append(("highshelf", float(high_f), float(high_g), 0.707))
        eq = tuple(
            (kind, float(f), float(g) * s, float(q))
            for kind, f, g, q in bands
            if s > 0
        )
        lowpass = float(rng.uniform(3000.0, 7800.0))
        highpass = math.exp(rng.uniform(math.log(40.0), math.log(300.0)))
        level = float(rng.uniform(-8.0, 8.0))
        return cls(
            rt60=rt60,
            drr_db=drr_db,
            rir_seed=rir_seed,
            rir_damping=rir_damping,
            snr_db=snr_db,
            noise_slope=noise_slope,
            hum_hz=hum_hz,
            hum_db=hum_db,
            eq=eq,
            highpass_hz=float(min(20.0 + s * (highpass - 20.0), 600.0)),
            lowpass_hz=float(max(7800.0 - s * (7800.0 - lowpass), 1500.0)),
            level_dbfs=-26.0 + s * level,
        )

    def impulse_response(self) -> np.ndarray:
        """Room impulse response: a direct path and a decaying noise tail.

        Returns
        -------
        numpy.ndarray
            The impulse response (float64), direct path at index 0.

        Example
        -------
        >>> h = Channel.sample(np.random.default_rng(0)).impulse_response()
        >>> float(h[0]), bool(np.all(np.isfinite(h)))
        (1.0, True)
        """
        if not math.isfinite(self.drr_db):
            return np.ones(1)
        rng = np.random.default_rng(self.rir_seed)
        length = int(min(1.5 * self.rt60, 1.0) * SAMPLE_RATE)
        t = np.arange(length) / SAMPLE_RATE
        tail = rng.standard_normal(length) * np.exp(-6.908 * t / self.rt60)
        tail[: int(0.0025 * SAMPLE_RATE)] = 0.0
        tail = signal.lfilter(
            [1.0 - self.rir_damping], [1.0, -self.rir_damping], tail
        )
        tail *= math.sqrt(10.0 ** (-self.drr_db / 10.0) / np.sum(tail**2))
        tail[0] = 1.0
        return tail

    def filters(self) -> np.ndarray:
        """Equaliser and band-limiting as one second-order-section cascade.

        Returns
        -------
        numpy.ndarray
            Second-order sections ``[n_sections, 6]`` for
            ``scipy.signal.sosfilt``.

        Example
        -------
        >>> channel = Channel.sample(np.random.default_rng(0))
        >>> channel.filters().shape[1]
        6
        """
        sections = [_biquad(*band) for band in self.eq]
        sections.append(
            signal.butter(
                2, self.highpass_hz, "high", fs=SAMPLE_RATE, output="sos"
            )
        )
        sections.append(
            signal.butter(
                6, self.lowpass_hz, "low", fs=SAMPLE_RATE, output="sos"
            )
        )
        return np.concatenate([np.atleast_2d(s) for s in sections], axis=0)

    def noise(self, num_samples: int, rng: np.random.Generator) -> np.ndarray:
        """A fresh realisation of this channel's noise, unit power.

        Arguments
        ---------
        num_samples : int
            Length in samples.
        rng : numpy.random.Generator
            Source of randomness (one realisation per utterance).

        Returns
        -------
        numpy.ndarray
            Noise with mean power 1.
        """
        spectrum = np.fft.rfft(rng.standard_normal(num_samples))
        freqs = np.fft.rfftfreq(num_samples, 1.0 / SAMPLE_RATE)
        shape = (np.maximum(freqs, 20.0) / 1000.0) ** (-self.noise_slope / 2)
        noise = np.fft.irfft(spectrum * shape, n=num_samples)
        noise /= math.sqrt(np.mean(noise**2)) + 1e-12
        if self.hum_hz > 0:
            t = np.arange(num_samples) / SAMPLE_RATE
            harmonics = np.arange(1, 6)[:, None]
            phases = rng.uniform(0.0, 2.0 * np.pi, size=(5, 1))
            hum = np.sum(
                np.sin(2 * np.pi * self.hum_hz * harmonics * t + phases)
                / harmonics,
                axis=0,
            )
            hum /= math.sqrt(np.mean(hum**2))
            noise = noise + hum * 10.0 ** (self.hum_db / 20.0)
            noise /= math.sqrt(np.mean(noise**2))
        return noise

    def apply(self, speech: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Record ``speech`` through this channel.

        Arguments
        ---------
        speech : numpy.ndarray
            Clean speech, 1-D, at 16 kHz.
        rng : numpy.random.Generator
            Source of randomness (the noise realisation).

        Returns
        -------
        numpy.ndarray
            The recorded signal (float64, same length, peak <= 0.99).

        Example
        -------
        >>> channel = Channel.sample(np.random.default_rng(0))
        >>> x = np.random.default_rng(1).standard_normal(8000) * 0.1
        >>> y = channel.apply(x, np.random.default_rng(2))
        >>> y.shape, bool(np.max(np.abs(y)) <= 0.99)
        ((8000,), True)
        """
        n = speech.shape[0]
        wet = signal.fftconvolve(speech, self.impulse_response())[:n]
        power = float(np.mean(wet**2))
        noise_gain = math.sqrt(power * 10.0 ** (-self.snr_db / 10.0))
        recorded = wet + noise_gain * self.noise(n, rng)
        recorded = signal.sosfilt(self.filters(), recorded)
        rms = math.sqrt(float(np.mean(recorded**2))) + 1e-12
        recorded *= 10.0 ** (self.level_dbfs / 20.0) / rms
        peak = float(np.max(np.abs(recorded)))
        if peak > 0.99:
            recorded *= 0.99 / peak
        return recorded

    def describe(self) -> Dict[str, str]:
        """Parameters formatted for a CSV row.

        Returns
        -------
        dict
            Parameter name -> formatted value.
        """
        eq = ";".join(
            f"{kind}@{f:.0f}Hz{g:+.1f}dB/q{q:.2f}" for kind, f, g, q in self.eq
        )
        return {
            "rt60_s": _fmt(self.rt60),
            "drr_db": _fmt(self.drr_db),
            "snr_db": _fmt(self.snr_db),
            "noise_slope": _fmt(self.noise_slope),
            "hum_hz": _fmt(self.hum_hz),
            "highpass_hz": _fmt(self.highpass_hz),
            "lowpass_hz": _fmt(self.lowpass_hz),
            "level_dbfs": _fmt(self.level_dbfs),
            "eq": eq,
        }


def _biquad(kind: str, freq: float, gain_db: float, q: float) -> np.ndarray:
    """One equaliser band (Audio-EQ-Cookbook biquad) as an SOS row."""
    amp = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * freq / SAMPLE_RATE
    cos_w0 = math.cos(w0)
    alpha = math.sin(w0) / (2.0 * q)
    if kind == "peak":
        b = [1.0 + alpha * amp, -2.0 * cos_w0, 1.0 - alpha * amp]
        a = [1.0 + alpha / amp, -2.0 * cos_w0, 1.0 - alpha / amp]
    elif kind in ("lowshelf", "highshelf"):
        sign = 1.0 if kind == "lowshelf" else -1.0
        k = 2.0 * math.sqrt(amp) * alpha
        ap, am = amp + 1.0, amp - 1.0
        b = [
            amp * (ap - sign * am * cos_w0 + k),
            sign * 2.0 * amp * (am - sign * ap * cos_w0),
            amp * (ap - sign * am * cos_w0 - k),
        ]
        a = [
            ap + sign * am * cos_w0 + k,
            -sign * 2.0 * (am + sign * ap * cos_w0),
            ap + sign * am * cos_w0 - k,
        ]
    else:
        raise ValueError(f"unknown equaliser band kind {kind!r}")
    return np.array([b[0], b[1], b[2], a[0], a[1], a[2]]) / a[0]


# ---------------------------------------------------------------------------
# Speech synthesis
# ---------------------------------------------------------------------------


def _stft(x: np.ndarray) -> np.ndarray:
    """Hann-windowed STFT, frames ``[F, NFFT/2+1]``; see ``_frame_centres``."""
    extra = (-(x.shape[0] + 2 * _PAD)) % _HOP
    padded = np.pad(x, (_PAD, _PAD + extra))
    frames = sliding_window_view(padded, _NFFT)[::_HOP] * _WINDOW
    return np.fft.rfft(frames, axis=1)


def _istft(spec: np.ndarray, num_samples: int) -> np.ndarray:
    """Weighted overlap-add inverse of ``_stft`` (exact without changes)."""
    frames = np.fft.irfft(spec, n=_NFFT, axis=1) * _WINDOW
    num_frames = frames.shape[0]
    blocks = frames.reshape(num_frames, _NFFT // _HOP, _HOP)
    out = np.zeros((num_frames + _NFFT // _HOP - 1, _HOP))
    for i in range(_NFFT // _HOP):
        out[i : i + num_frames] += blocks[:, i]
    return out.reshape(-1)[_PAD : _PAD + num_samples] / _OLA_GAIN


def _frame_centres(num_samples: int) -> np.ndarray:
    """Sample index at the centre of every ``_stft`` frame (clipped)."""
    num_frames = (num_samples + 2 * _PAD - 1) // _HOP + 1 - _NFFT // _HOP + 1
    centres = np.arange(num_frames) * _HOP + _NFFT // 2 - _PAD
    return np.clip(centres, 0, num_samples - 1)


_COS_OMEGA = np.cos(_OMEGA)
_SIN2_OMEGA = np.sin(_OMEGA) ** 2


def _log_resonances(freq: np.ndarray, bandwidth: np.ndarray) -> np.ndarray:
    """Log magnitude of a cascade of DC-normalised digital resonators.

    The resonators are indexed by the last axis of ``freq`` and
    ``bandwidth`` (shape ``S + (K,)``); the result, on ``_FREQS``, has shape
    ``S + (NFFT/2+1,)``. A resonator with pole radius r and angle t has
    ``|H(w)|^2 = (1 - 2r cos t + r^2)^2 / (d(w - t) d(w + t))`` with
    ``d(x) = 1 - 2r cos x + r^2``; expanding,
    ``d(w - t) d(w + t) = a^2 + b^2 - 2ab cos w - 4r^2 sin^2 w`` with
    ``a = 1 + r^2`` and ``b = 2r cos t``.
    """
    r = np.exp(-np.pi * bandwidth / SAMPLE_RATE)
    a = 1.0 + r * r
    b = 2.0 * r * np.cos(2.0 * np.pi * freq / SAMPLE_RATE)
    num = np.sum(np.log(a - b), axis=-1)
    den = (a * a + b * b)[..., None] - (2.0 * a * b)[..., None] * _COS_OMEGA
    den -= (4.0 * r * r)[..., None] * _SIN2_OMEGA
    return num[..., None] - 0.5 * np.log(np.prod(den, axis=-2))


def _unit_power(log_env: np.ndarray) -> np.ndarray:
    """Shift log envelopes ``[F, bins]`` so each frame has unit power."""
    power = np.mean(np.exp(2.0 * log_env), axis=1, keepdims=True)
    return log_env - 0.5 * np.log(power)


def _smooth(x: np.ndarray, width: int, axis: int = 0) -> np.ndarray:
    """Smooth with a triangular kernel about ``width`` points wide.

    Two passes of a box filter of odd length ``width // 2 + 1``; edges are
    extended with the nearest value.
    """
    size = width // 2 + 1 - (width // 2) % 2
    if size <= 1:
        return x
    once = ndimage.uniform_filter1d(x, size, axis=axis, mode="nearest")
    return ndimage.uniform_filter1d(once, size, axis=axis, mode="nearest")


def _fill_nan(values: np.ndarray) -> np.ndarray:
    """Replace NaNs in a 1-D array by the next (else previous) value."""
    values = values.copy()
    valid = ~np.isnan(values)
    if not valid.any():
        return values
    n = values.shape[0]
    idx = np.where(valid, np.arange(n), n)
    nxt = np.minimum.accumulate(idx[::-1])[::-1]
    idx = np.where(valid, np.arange(n), -1)
    prv = np.maximum.accumulate(idx)
    fill = np.where(nxt < n, nxt, prv)
    return values[fill]


_SEGMENT_FIELDS = (
    "dur f1 f2 f3 voice fric asp fric_fc fric_bw nasal zero accent vowel"
).split()


def _phone_segments(
    rng: np.random.Generator, duration: float, rate: float
) -> Dict[str, np.ndarray]:
    """Random syllable sequence as segment-wise targets.

    Returns one array per field of ``_SEGMENT_FIELDS``: duration (s),
    reference F1-F3 (NaN = take the next segment's), linear amplitudes of
    the voiced, frication and aspiration sources, frication centre and
    bandwidth, nasal weight and zero, f0 accent (semitones) and vowel index
    (-1 for other segments).
    """
    rows: List[Tuple[float, ...]] = []
    nan = math.nan

    def add(
        dur,
        f=(nan, nan, nan),
        voice=0.0,
        fric=0.0,
        asp=0.0,
        fc=nan,
        bw=nan,
        nasal=0.0,
        zero=nan,
        accent=0.0,
        vowel=-1,
    ):
        dur = dur * math.exp(rng.normal(0.0, 0.15)) / rate
        rows.append(
            (dur, *f, voice, fric, asp, fc, bw, nasal, zero, accent, vowel)
        )

    def db(level: float) -> float:
        return 10.0 ** (level / 20.0)

    def consonant(name: str, gain: float) -> None:
        kind, place, voiced = _CONSONANTS[name]
        f2, f3, fc, fbw, flev, bc, bbw, blev, zero = _PLACES[place]
        locus = (300.0, f2, f3)
        if kind == "stop":
            add(0.055, locus, voice=db(-28.0) * gain if voiced else 0.0)
            add(0.012, locus, fric=db(blev) * gain, fc=bc, bw=bbw)
            if voiced:
                add(0.012, asp=db(-18.0) * gain, voice=db(-6.0) * gain)
            else:
                add(0.045, asp=db(-16.0) * gain)
        elif kind == "fric":
            add(
                0.075 if voiced else 0.095,
                locus,
                voice=db(-12.0) * gain if voiced else 0.0,
                fric=db(flev - (6.0 if voiced else 0.0)) * gain,
                fc=fc,
                bw=fbw,
            )
        elif kind == "aspirate":
            add(0.06, asp=db(-14.0) * gain)
        elif kind == "nasal":
            add(
                0.07,
                (260.0, f2, f3),
                voice=db(-8.0) * gain,
                nasal=1.0,
                zero=zero,
            )
        else:
            add(0.06, _APPROX[name], voice=db(-4.0) * gain)

    add(rng.uniform(0.05, 0.2))  # leading silence
    elapsed = rows[-1][0]
    trailing = rng.uniform(0.05, 0.2)
    while True:  # at least one syllable
        start = len(rows)
        stressed = rng.random() < 0.35
        gain = db(rng.normal(0.0, 1.5) + (2.0 if stressed else 0.0))
        u = rng.random()
        if u < 0.12:
            consonant(str(rng.choice(_CLUSTER_FIRST)), gain)
            consonant(str(rng.choice(_CLUSTER_SECOND)), gain)
        elif u < 0.75:
            consonant(str(rng.choice(_ONSETS)), gain)
        v = int(rng.integers(len(_VOWELS)))
        accent = rng.uniform(1.0, 3.0) if stressed else 0.0
        add(
            0.13 if stressed else 0.09,
            tuple(_VOWELS[v]),
            voice=gain,
            accent=accent,
            vowel=v,
        )
        u = rng.random()
        if u < 0.4:
            consonant(str(rng.choice(_CODAS)), gain)
        elif u < 0.5:
            consonant(str(rng.choice(_CODAS)), gain)
            consonant(str(rng.choice(_CODAS)), gain)
        if rng.random() < 0.08:
            add(rng.uniform(0.1, 0.3))  # pause
        elapsed += sum(row[0] for row in rows[start:])
        if elapsed >= duration - trailing:
            break
    add(max(duration - elapsed, 0.0) + 0.05)  # trailing silence
    table = np.array(rows, dtype=np.float64)
    return {name: table[:, i] for i, name in enumerate(_SEGMENT_FIELDS)}


def synthesize_speech(
    voice: Voice, duration: float, rng: np.random.Generator
) -> np.ndarray:
    """Synthesise clean speech of random phone-like content.

    Arguments
    ---------
    voice : Voice
        The voice.
    duration : float
        Length in seconds.
    rng : numpy.random.Generator
        Source of randomness (content, prosody, noise sources).

    Returns
    -------
    numpy.ndarray
        ``round(duration * 16000)`` samples (float64), RMS 0.1.

    Example
    -------
    >>> voice = Voice.sample(np.random.default_rng(0))
    >>> x = synthesize_speech(voice, 0.5, np.random.default_rng(1))
    >>> x.shape, round(float(np.sqrt(np.mean(x**2))), 3)
    ((8000,), 0.1)
    """
    n = int(round(duration * SAMPLE_RATE))
    if n < _HOP:
        raise ValueError(f"duration must be >= {_HOP / SAMPLE_RATE} s")
    # 1. Utterance-level prosody and effort.
    rate = voice.speaking_rate * math.exp(rng.normal(0.0, 0.03))
    f0_shift = rng.normal(0.0, 0.4)
    tilt = voice.tilt + rng.normal(0.0, 0.4)
    seg = _phone_segments(rng, duration, rate)
    bounds = np.round(np.cumsum(seg["dur"]) * SAMPLE_RATE).astype(np.int64)
    lengths = np.diff(np.concatenate([[0], np.minimum(bounds, n)]))
    lengths[-1] += n - lengths.sum()
    seg_of_sample = np.repeat(np.arange(lengths.shape[0]), lengths)
    centres = _frame_centres(n)
    seg_of_frame = seg_of_sample[centres]
    num_frames = centres.shape[0]

    # 2. Formant tracks (frame rate), smooth transitions between targets.
    formants = np.stack([_fill_nan(seg[k]) for k in ("f1", "f2", "f3")], 1)
    formants = np.where(np.isnan(formants), [500.0, 1500.0, 2500.0], formants)
    vowel = seg["vowel"].astype(np.int64)
    shifts = np.asarray(voice.vowel_shifts)[np.maximum(vowel, 0)]
    formants[:, :2] *= np.where(vowel[:, None] >= 0, shifts, 1.0)
    tracks = np.empty((num_frames, 5))
    tracks[:, :3] = _smooth(formants[seg_of_frame], 7)
    tracks[:, 3:] = _F45
    tracks *= voice.vtl_factor * np.asarray(voice.formant_scales)
    for k in range(1, 5):
        tracks[:, k] = np.maximum(tracks[:, k], tracks[:, k - 1] + 200.0)
    tracks = np.minimum(tracks, 7200.0)
    nasal = _smooth(seg["nasal"][seg_of_frame], 5)
    bandwidths = _BANDWIDTHS * voice.bandwidth_scale * np.ones((num_frames, 1))
    bandwidths[:, 0] *= 1.0 + nasal

    # 3. Spectral envelopes (log magnitude per frame and bin).
    log_vt = _log_resonances(tracks, bandwidths)
    zero = _fill_nan(seg["zero"])[seg_of_frame] * voice.vtl_factor
    zero = np.where(np.isnan(zero), 1500.0, zero)
    zero_bw = np.full_like(zero, 150.0 * voice.bandwidth_scale)
    log_vt -= nasal[:, None] * _log_resonances(zero[:, None], zero_bw[:, None])
    octaves = np.log2(np.maximum(_FREQS, 100.0) / 1000.0)
    log_voiced = log_vt + tilt / 20.0 * math.log(10.0) * octaves
    fc = _fill_nan(seg["fric_fc"])[seg_of_frame]
    fbw = _fill_nan(seg["fric_bw"])[seg_of_frame]
    fc = np.minimum(
        np.nan_to_num(fc, nan=4000.0)
        * voice.fricative_scale
        * math.sqrt(voice.vtl_factor),
        7200.0,
    )
    log_fric = _log_resonances(
        fc[:, None], np.nan_to_num(fbw, nan=2000.0)[:, None]
    )
    log_fric += np.log(_FREQS / np.sqrt(_FREQS**2 + 1000.0**2) + 1e-3)

    # 4. Source amplitudes (sample rate), lightly smoothed.
    amp_voice = _smooth(seg["voice"][seg_of_sample], 161)
    amp_fric = _smooth(seg["fric"][seg_of_sample], 49)
    amp_asp = _smooth(seg["asp"][seg_of_sample], 161)

    # 5. f0 contour: declination + slow drift + accents (semitones).
    t = np.arange(num_frames) / num_frames
    knots = rng.normal(0.0, 0.5, size=int(duration / 0.3) + 2)
    drift = np.interp(t, np.linspace(0.0, 1.0, knots.shape[0]), knots)
    declination = rng.uniform(0.0, 0.8) * (0.5 - t)
    accent = seg["accent"][seg_of_frame]
    semitones = voice.f0_range * (drift + declination) + accent + f0_shift
    f0_frames = voice.f0_mean * 2.0 ** (_smooth(semitones, 19) / 12.0)
    f0 = np.interp(np.arange(n), centres, np.clip(f0_frames, 50.0, 450.0))

    # 6. Glottal source by phase accumulation, jitter and shimmer per cycle.
    cycle0 = np.floor(np.cumsum(f0) / SAMPLE_RATE).astype(np.int64)
    jitter = 1.0 + voice.jitter * rng.standard_normal(cycle0[-1] + 2)
    phase = np.cumsum(f0 * jitter[cycle0]) / SAMPLE_RATE + rng.random()
    cycle = np.floor(phase).astype(np.int64)
    frac = phase - cycle
    rise, fall = 0.6 * voice.open_quotient, 0.4 * voice.open_quotient
    flow = np.where(
        frac < rise,
        0.5 - 0.5 * np.cos(np.pi * frac / rise),
        np.where(
            frac < rise + fall, np.cos(0.5 * np.pi * (frac - rise) / fall), 0.0
        ),
    )
    shimmer = 1.0 + voice.shimmer * rng.standard_normal(cycle[-1] + 2)
    source = np.diff(flow, prepend=flow[0]) * shimmer[cycle] * amp_voice

    # 7. Filter the sources in the STFT domain and mix.
    voiced = _istft(_stft(source) * np.exp(log_voiced), n)
    voiced *= math.sqrt(np.sum(amp_voice**2) / (np.sum(voiced**2) + 1e-20))
    aspiration = rng.standard_normal(n) * (
        amp_asp + voice.breathiness * amp_voice * (0.4 + 0.6 * flow)
    )
    frication = rng.standard_normal(n) * amp_fric
    noise_spec = _stft(aspiration) * np.exp(_unit_power(log_vt))
    noise_spec += _stft(frication) * np.exp(_unit_power(log_fric))
    speech = voiced + _istft(noise_spec, n)
    fade = min(160, n // 2)
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(fade) / fade)
    speech[:fade] *= ramp
    speech[n - fade :] *= ramp[::-1]
    rms = math.sqrt(float(np.mean(speech**2)))
    return speech * (0.1 / rms) if rms > 0 else speech


def synthesize_utterance(
    voice: Voice,
    channel: Channel,
    duration: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Synthesise one utterance of ``voice`` recorded through ``channel``.

    Arguments
    ---------
    voice : Voice
        The (session) voice.
    channel : Channel
        The recording condition of the video.
    duration : float
        Length in seconds.
    rng : numpy.random.Generator
        Source of randomness of this utterance (content and noise).

    Returns
    -------
    numpy.ndarray
        ``round(duration * 16000)`` float32 samples in [-0.99, 0.99].

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> voice, channel = Voice.sample(rng), Channel.sample(rng)
    >>> x = synthesize_utterance(voice, channel, 1.0, rng)
    >>> x.shape, x.dtype
    ((16000,), dtype('float32'))
    """
    speech = synthesize_speech(voice, duration, rng)
    return channel.apply(speech, rng).astype(np.float32)


# ---------------------------------------------------------------------------
# Trials
# ---------------------------------------------------------------------------


def trial_capacity(
    num_speakers: int, num_videos: int, num_utterances: int
) -> Tuple[int, int]:
    """Numbers of distinct target (cross-video) and non-target pairs.

    Arguments
    ---------
    num_speakers : int
        Number of test speakers.
    num_videos : int
        Videos per speaker.
    num_utterances : int
        Utterances per video.

    Returns
    -------
    tuple of int
        ``(targets, non_targets)`` unordered pairs available.

    Example
    -------
    >>> trial_capacity(3, 2, 2)
    (12, 48)
    """
    per_speaker = num_videos * num_utterances
    targets = num_speakers * math.comb(num_videos, 2) * num_utterances**2
    non_targets = math.comb(num_speakers, 2) * per_speaker**2
    return targets, non_targets


def sample_trials(
    num_speakers: int,
    num_videos: int,
    num_utterances: int,
    num_trials: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Draw a balanced verification list without repeated pairs.

    Utterances are numbered ``(speaker * num_videos + video) *
    num_utterances + utterance``. Half of the trials are targets, spread as
    evenly as possible over the speakers, each pairing two different videos
    of one speaker; the other half are non-targets drawn uniformly among
    the pairs of utterances of different speakers. Every unordered pair
    occurs at most once, and which side is the enrolment is random.

    Arguments
    ---------
    num_speakers : int
        Number of test speakers (>= 2).
    num_videos : int
        Videos per speaker (>= 2).
    num_utterances : int
        Utterances per video (>= 1).
    num_trials : int
        Even number of trials, at most twice ``min(trial_capacity(...))``.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    numpy.ndarray
        ``[num_trials, 3]`` int64 rows ``(label, enrol, test)``, targets
        first.

    Example
    -------
    >>> trials = sample_trials(2, 2, 1, 4, np.random.default_rng(0))
    >>> trials[:, 0].tolist()
    [1, 1, 0, 0]
    """
    targets_max, non_targets_max = trial_capacity(
        num_speakers, num_videos, num_utterances
    )
    half = num_trials // 2
    if num_trials < 2 or num_trials % 2:
        raise ValueError(
            f"{_opt('num_trials')} must be a positive even number, "
            f"got {num_trials}"
        )
    if half > min(targets_max, non_targets_max):
        raise ValueError(
            f"{_opt('num_trials')}={num_trials} is more than this test set "
            f"allows: at most {2 * min(targets_max, non_targets_max)} "
            f"({targets_max} cross-video target pairs, {non_targets_max} "
            "non-target pairs)"
        )
    per_speaker = num_videos * num_utterances
    # 1. Targets: an even quota per speaker, ranks unranked into pairs of
    #    (video a < video b, utterance in a, utterance in b).
    quota = np.full(num_speakers, half // num_speakers)
    quota[rng.permutation(num_speakers)[: half % num_speakers]] += 1
    video_a, video_b = np.triu_indices(num_videos, 1)
    pairs_per_speaker = video_a.shape[0] * num_utterances**2
    enrol, test = [], []
    for speaker in range(num_speakers):
        rank = rng.choice(pairs_per_speaker, int(quota[speaker]), False)
        vp, rest = np.divmod(rank, num_utterances**2)
        ua, ub = np.divmod(rest, num_utterances)
        base = speaker * per_speaker
        enrol.append(base + video_a[vp] * num_utterances + ua)
        test.append(base + video_b[vp] * num_utterances + ub)
    # 2. Non-targets: ranks over (speaker a < speaker b, utt of a, utt of b).
    spk_a, spk_b = np.triu_indices(num_speakers, 1)
    rank = rng.choice(spk_a.shape[0] * per_speaker**2, half, False)
    sp, rest = np.divmod(rank, per_speaker**2)
    ia, ib = np.divmod(rest, per_speaker)
    enrol.append(spk_a[sp] * per_speaker + ia)
    test.append(spk_b[sp] * per_speaker + ib)
    enrol_all = np.concatenate(enrol).astype(np.int64)
    test_all = np.concatenate(test).astype(np.int64)
    swap = rng.random(num_trials) < 0.5
    labels = np.repeat([1, 0], half)
    return np.stack(
        [
            labels,
            np.where(swap, test_all, enrol_all),
            np.where(swap, enrol_all, test_all),
        ],
        axis=1,
    )


def default_num_trials(
    num_speakers: int, num_videos: int, num_utterances: int
) -> int:
    """Default trial count: 8 per test utterance, within the capacity.

    Arguments
    ---------
    num_speakers : int
        Number of test speakers.
    num_videos : int
        Videos per speaker.
    num_utterances : int
        Utterances per video.

    Returns
    -------
    int
        An even number of trials (VoxCeleb1-O has about 7.7 per utterance).

    Example
    -------
    >>> default_num_trials(10, 4, 5)
    1600
    """
    capacity = min(trial_capacity(num_speakers, num_videos, num_utterances))
    wanted = 8 * num_speakers * num_videos * num_utterances
    return 2 * min(wanted // 2, capacity)


# ---------------------------------------------------------------------------
# Corpus
# ---------------------------------------------------------------------------


def speaker_id(index: int) -> str:
    """VoxCeleb-style speaker id of the ``index``-th speaker (from 0).

    Arguments
    ---------
    index : int
        Speaker index.

    Returns
    -------
    str
        ``id10001`` for index 0, and so on.

    Example
    -------
    >>> speaker_id(0), speaker_id(41)
    ('id10001', 'id10042')
    """
    return f"id{FIRST_SPEAKER_NUMBER + index:05d}"


def video_ids(seed: int, speaker_index: int, num_videos: int) -> List[str]:
    """YouTube-like video ids of one speaker, distinct ignoring case.

    Arguments
    ---------
    seed : int
        Corpus seed.
    speaker_index : int
        Speaker index.
    num_videos : int
        How many ids.

    Returns
    -------
    list of str
        ``num_videos`` ids of 11 characters from ``[A-Za-z0-9_-]``.

    Example
    -------
    >>> ids = video_ids(0, 0, 3)
    >>> [len(v) for v in ids]
    [11, 11, 11]
    """
    ids: List[str] = []
    seen = set()
    for video in range(num_videos):
        attempt = 0
        while True:
            rng = _rng(seed, _TAG_VIDEO_ID, speaker_index, video, attempt)
            letters = rng.integers(len(VIDEO_ID_ALPHABET), size=VIDEO_ID_LENGTH)
            vid = "".join(VIDEO_ID_ALPHABET[i] for i in letters)
            if vid.lower() not in seen:
                break
            attempt += 1
        seen.add(vid.lower())
        ids.append(vid)
    return ids


def _speaker_job(job: Tuple) -> Dict:
    """Synthesise and write every utterance of one speaker (pool worker)."""
    (
        wav_dir,
        index,
        seed,
        num_videos,
        num_utterances,
        min_dur,
        max_dur,
        strength,
        session_amount,
    ) = job
    spk = speaker_id(index)
    voice = Voice.sample(_rng(seed, _TAG_VOICE, index))
    videos = []
    num_samples = 0
    for video, vid in enumerate(video_ids(seed, index, num_videos)):
        session = voice.session(
            _rng(seed, _TAG_SESSION, index, video), session_amount
        )
        channel = Channel.sample(
            _rng(seed, _TAG_CHANNEL, index, video), strength
        )
        folder = Path(wav_dir) / spk / vid
        folder.mkdir(parents=True, exist_ok=True)
        for utt in range(num_utterances):
            rng = _rng(seed, _TAG_UTTERANCE, index, video, utt)
            duration = float(rng.uniform(min_dur, max_dur))
            wav = synthesize_utterance(session, channel, duration, rng)
            pcm = np.round(wav * 32767.0).astype(np.int16)
            sf.write(
                folder / f"{utt + 1:05d}.wav",
                pcm,
                SAMPLE_RATE,
                subtype="PCM_16",
                format="WAV",
            )
            num_samples += pcm.shape[0]
        videos.append(
            {
                "video_id": vid,
                "session_f0_mean_hz": _fmt(session.f0_mean),
                "session_speaking_rate": _fmt(session.speaking_rate),
                "session_tilt_db_per_octave": _fmt(session.tilt),
                **channel.describe(),
            }
        )
    return {
        "spk_id": spk,
        "voice": voice.describe(),
        "videos": videos,
        "num_samples": num_samples,
    }


def _check_int(name: str, value: int, minimum: int, why: str = "") -> None:
    """Raise a ValueError naming the option when ``value < minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{_opt(name)} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(
            f"{_opt(name)} must be at least {minimum}{why}, got {value}"
        )


def _write_csv(path: Path, header: Sequence[str], rows: List[Dict]) -> None:
    """Write dict rows with a fixed header."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(header))
        writer.writeheader()
        writer.writerows(rows)


def _write_json(path: Path, content: Dict) -> None:
    """Write JSON atomically (a temporary file renamed over ``path``)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(content, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def generate_corpus(
    out_dir: Union[str, Path],
    num_speakers: int,
    num_videos: int,
    num_utterances: int,
    num_test_speakers: int,
    seed: int = 0,
    min_duration: float = 2.0,
    max_duration: float = 4.0,
    num_trials: Optional[int] = None,
    channel_strength: float = 1.0,
    session_variability: float = 1.0,
    workers: Optional[int] = None,
    overwrite: bool = False,
) -> Dict:
    """Write a synthetic VoxCeleb-like corpus and its trial list.

    If ``out_dir/minivox.json`` records a complete corpus made with the same
    parameters, nothing is written and the stored summary is returned with
    ``skipped=True``. A directory holding another corpus (or a ``wav`` or
    ``meta`` folder of unknown origin) is an error unless ``overwrite``,
    which deletes ``out_dir/wav``, ``out_dir/meta`` and the JSON first.

    Arguments
    ---------
    out_dir : str or Path
        Output directory.
    num_speakers : int
        Training speakers (ids ``id10001`` ...).
    num_videos : int
        Videos per speaker (>= 2: target trials pair different videos).
    num_utterances : int
        Utterances per video.
    num_test_speakers : int
        Test speakers (>= 2), numbered after the training speakers; only
        they appear in ``meta/veri_test2.txt``.
    seed : int
        Corpus seed (>= 0).
    min_duration : float
        Shortest utterance in seconds.
    max_duration : float
        Longest utterance in seconds (durations are uniform in between).
    num_trials : int, optional
        Even number of trials; default 8 per test utterance within the
        number of distinct pairs.
    channel_strength : float
        Scales the per-video channels (0 = clean, 1 = default).
    session_variability : float
        Scales the per-video changes of each voice (0 = none).
    workers : int, optional
        Processes; default ``min(2, os.cpu_count())``. The output does not
        depend on it.
    overwrite : bool
        Replace a different corpus found in ``out_dir``.

    Returns
    -------
    dict
        Paths (``out_dir``, ``wav_dir``, ``trials_file``,
        ``speakers_file``, ``videos_file``), counts (``num_speakers``,
        ``num_train_speakers``, ``num_test_speakers``, ``num_videos``,
        ``num_utterances``, ``num_trials``, ``num_target_trials``),
        ``total_hours``, ``seconds`` (wall time) and ``skipped``.

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     summary = generate_corpus(tmp, 1, 2, 1, 2, min_duration=0.3,
    ...                               max_duration=0.3, workers=1)
    ...     again = generate_corpus(tmp, 1, 2, 1, 2, min_duration=0.3,
    ...                             max_duration=0.3, workers=1)
    >>> summary["num_utterances"], summary["num_trials"], again["skipped"]
    (6, 4, True)
    """
    start = time.perf_counter()
    # 1. Validate.
    _check_int("num_speakers", num_speakers, 1)
    _check_int(
        "num_videos", num_videos, 2, " (target trials pair different videos)"
    )
    _check_int("num_utterances", num_utterances, 1)
    _check_int(
        "num_test_speakers",
        num_test_speakers,
        2,
        " (non-target trials need two test speakers)",
    )
    _check_int("seed", seed, 0)
    if num_speakers + num_test_speakers > 99999 - FIRST_SPEAKER_NUMBER + 1:
        raise ValueError(
            f"{_opt('num_speakers')} + {_opt('num_test_speakers')} must be "
            f"at most {99999 - FIRST_SPEAKER_NUMBER + 1} (5-digit ids)"
        )
    if not min_duration >= _HOP / SAMPLE_RATE:
        raise ValueError(
            f"{_opt('min_duration')} must be at least "
            f"{_HOP / SAMPLE_RATE} s, got {min_duration}"
        )
    if not max_duration >= min_duration:
        raise ValueError(
            f"{_opt('max_duration')} must be >= {_opt('min_duration')}, got "
            f"{max_duration} < {min_duration}"
        )
    if not channel_strength >= 0:
        raise ValueError(
            f"{_opt('channel_strength')} must be >= 0, got {channel_strength}"
        )
    if not session_variability >= 0:
        raise ValueError(
            f"{_opt('session_variability')} must be >= 0, "
            f"got {session_variability}"
        )
    if workers is None:
        workers = min(2, os.cpu_count() or 1)
    _check_int("workers", workers, 1)
    if num_trials is None:
        num_trials = default_num_trials(
            num_test_speakers, num_videos, num_utterances
        )
    else:
        _check_int("num_trials", num_trials, 2)
    capacity = min(
        trial_capacity(num_test_speakers, num_videos, num_utterances)
    )
    if num_trials % 2 or num_trials // 2 > capacity:
        raise ValueError(
            f"{_opt('num_trials')} must be even and at most {2 * capacity} "
            f"for this test set, got {num_trials}"
        )
    params = {
        "version": GENERATOR_VERSION,
        "sample_rate": SAMPLE_RATE,
        "num_speakers": int(num_speakers),
        "num_videos": int(num_videos),
        "num_utterances": int(num_utterances),
        "num_test_speakers": int(num_test_speakers),
        "seed": int(seed),
        "min_duration": float(min_duration),
        "max_duration": float(max_duration),
        "num_trials": int(num_trials),
        "channel_strength": float(channel_strength),
        "session_variability": float(session_variability),
    }

    # 2. Skip, refuse or clean.
    out = Path(out_dir)
    marker = out / "minivox.json"
    wav_dir, meta_dir = out / "wav", out / "meta"
    paths = {
        "out_dir": str(out),
        "wav_dir": str(wav_dir),
        "trials_file": str(meta_dir / "veri_test2.txt"),
        "speakers_file": str(meta_dir / "speakers.csv"),
        "videos_file": str(meta_dir / "videos.csv"),
    }
    previous = None
    if marker.exists():
        with open(marker, encoding="utf-8") as f:
            previous = json.load(f)
    if (
        previous is not None
        and previous.get("params") == params
        and previous.get("complete")
        and Path(paths["trials_file"]).exists()
    ):
        logger.info("Minivox corpus in %s already exists: skipping", out)
        return {
            **paths,
            **previous["summary"],
            "seconds": time.perf_counter() - start,
            "skipped": True,
        }
    same = previous is not None and previous.get("params") == params
    if not same and (previous is not None or wav_dir.exists()):
        if not overwrite:
            what = "a minivox corpus with other parameters"
            if previous is not None:
                diff = sorted(
                    k
                    for k in params
                    if previous.get("params", {}).get(k) != params[k]
                )
                what += f" (differs in {', '.join(diff)})"
            else:
                what = "a wav/ folder not made by minivox"
            raise ValueError(
                f"--out {out} already holds {what}; choose another --out or "
                "pass --overwrite (overwrite=True) to replace it"
            )
        logger.info("Replacing the corpus in %s", out)
        for folder in (wav_dir, meta_dir):
            if folder.exists():
                shutil.rmtree(folder)
        marker.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    _write_json(marker, {"params": params, "complete": False})

    # 3. Synthesise, one job per speaker.
    total = num_speakers + num_test_speakers
    jobs = [
        (
            str(wav_dir),
            index,
            seed,
            num_videos,
            num_utterances,
            min_duration,
            max_duration,
            channel_strength,
            session_variability,
        )
        for index in range(total)
    ]
    logger.info(
        "Writing %d utterances of %d speakers to %s with %d worker(s)",
        total * num_videos * num_utterances,
        total,
        wav_dir,
        workers,
    )
    if workers == 1 or total == 1:
        results = [_speaker_job(job) for job in jobs]
    else:
        with multiprocessing.get_context().Pool(min(workers, total)) as pool:
            results = pool.map(_speaker_job, jobs, chunksize=1)

    # 4. Metadata and trials.
    meta_dir.mkdir(parents=True, exist_ok=True)
    speaker_rows, video_rows = [], []
    for index, result in enumerate(results):
        split = "train" if index < num_speakers else "test"
        speaker_rows.append(
            {"spk_id": result["spk_id"], "split": split, **result["voice"]}
        )
        for video in result["videos"]:
            video_rows.append({"spk_id": result["spk_id"], **video})
    _write_csv(meta_dir / "speakers.csv", list(speaker_rows[0]), speaker_rows)
    _write_csv(meta_dir / "videos.csv", list(video_rows[0]), video_rows)
    test_paths = [
        f"{result['spk_id']}/{video['video_id']}/{utt + 1:05d}.wav"
        for result in results[num_speakers:]
        for video in result["videos"]
        for utt in range(num_utterances)
    ]
    trials = sample_trials(
        num_test_speakers,
        num_videos,
        num_utterances,
        num_trials,
        _rng(seed, _TAG_TRIALS),
    )
    lines = sorted(  # grouped by enrolment utterance, like VoxCeleb's lists
        (f"{label} {test_paths[a]} {test_paths[b]}" for label, a, b in trials),
        key=lambda line: line.split(" ", 1)[1],
    )
    with open(paths["trials_file"], "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    summary = {
        "num_speakers": total,
        "num_train_speakers": num_speakers,
        "num_test_speakers": num_test_speakers,
        "num_videos": total * num_videos,
        "num_utterances": total * num_videos * num_utterances,
        "num_trials": num_trials,
        "num_target_trials": num_trials // 2,
        "total_hours": round(
            sum(r["num_samples"] for r in results) / SAMPLE_RATE / 3600.0, 6
        ),
    }
    _write_json(
        marker, {"params": params, "complete": True, "summary": summary}
    )
    seconds = time.perf_counter() - start
    logger.info(
        "Wrote %d utterances (%.2f h) and %d trials in %.1f s",
        summary["num_utterances"],
        summary["total_hours"],
        num_trials,
        seconds,
    )
    return {**paths, **summary, "seconds": seconds, "skipped": False}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point (``python -m speechbrain_ssps.minivox``).

    Arguments
    ---------
    argv : sequence of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status (0 on success).
    """
    parser = argparse.ArgumentParser(
        prog="python -m speechbrain_ssps.minivox",
        description="Write a synthetic VoxCeleb-like corpus "
        "(DIR/wav/idNNNNN/<video>/NNNNN.wav + DIR/meta/veri_test2.txt).",
    )
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument(
        "--speakers", type=int, required=True, help="training speakers"
    )
    parser.add_argument(
        "--videos", type=int, required=True, help="videos per speaker (>= 2)"
    )
    parser.add_argument(
        "--utterances", type=int, required=True, help="utterances per video"
    )
    parser.add_argument(
        "--test-speakers", type=int, required=True, help="test speakers (>= 2)"
    )
    parser.add_argument("--seed", type=int, default=0, help="corpus seed")
    parser.add_argument("--min-duration", type=float, default=2.0)
    parser.add_argument("--max-duration", type=float, default=4.0)
    parser.add_argument(
        "--trials",
        type=int,
        default=None,
        help="even number of trials (default: 8 per test utterance)",
    )
    parser.add_argument(
        "--channel-strength",
        type=float,
        default=1.0,
        help="scale of the per-video channels (0 = clean, default 1)",
    )
    parser.add_argument(
        "--session-variability",
        type=float,
        default=1.0,
        help="scale of the per-video voice changes (0 = none, default 1)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes (default: min(2, cpu count))",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a different corpus already in --out",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        summary = generate_corpus(
            args.out,
            num_speakers=args.speakers,
            num_videos=args.videos,
            num_utterances=args.utterances,
            num_test_speakers=args.test_speakers,
            seed=args.seed,
            min_duration=args.min_duration,
            max_duration=args.max_duration,
            num_trials=args.trials,
            channel_strength=args.channel_strength,
            session_variability=args.session_variability,
            workers=args.workers,
            overwrite=args.overwrite,
        )
    except ValueError as error:
        parser.error(str(error))
    print(json.dumps(summary, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
