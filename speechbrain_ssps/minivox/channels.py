"""Recording channels: the room, noise, microphone and level of a video.

Every video draws a channel shared by all of its utterances: a reverberant
room (exponentially decaying synthetic impulse response), coloured noise
(and sometimes mains hum) at a per-video SNR, a microphone equaliser
(peaking and shelving filters), band-limiting (high-pass and a 3-8 kHz
low-pass) and a level. ``strength`` scales all of it (0 = clean,
1 = default). A model can match two crops of one video by their channel
instead of their voice, which is the confound SSPS removes.
"""

import math
from dataclasses import dataclass
from typing import Dict, Tuple

import numpy as np
from scipy import signal

from speechbrain_ssps.minivox.audio import SAMPLE_RATE
from speechbrain_ssps.minivox.metadata import _fmt
from speechbrain_ssps.minivox.options import _opt


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
