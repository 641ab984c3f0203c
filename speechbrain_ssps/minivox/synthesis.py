"""Waveform synthesis of a MiniVox utterance (source-filter model).

The source is a glottal pulse train made by phase accumulation of a smooth
f0 contour (with per-cycle jitter and shimmer) plus aspiration and
frication noise. It is shaped frame by frame in the STFT domain by a
cascade of five formant resonators (an antiresonance for nasals, a
spectral tilt for the voice quality) that follow the random syllables of
:mod:`~speechbrain_ssps.minivox.phonetics` with smooth formant and f0
transitions. ``synthesize_utterance`` records the speech through a
video's :class:`~speechbrain_ssps.minivox.channels.Channel`.
"""

import math

import numpy as np
from scipy import ndimage

from speechbrain_ssps.minivox.audio import SAMPLE_RATE
from speechbrain_ssps.minivox.channels import Channel
from speechbrain_ssps.minivox.phonetics import (
    _BANDWIDTHS,
    _F45,
    _phone_segments,
)
from speechbrain_ssps.minivox.stft import (
    _FREQS,
    _HOP,
    _frame_centres,
    _istft,
    _log_resonances,
    _stft,
    _unit_power,
)
from speechbrain_ssps.minivox.voices import Voice


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
