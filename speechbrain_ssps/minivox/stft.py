"""The STFT grid of the MiniVox synthesiser and spectral envelopes on it.

Sources are shaped frame by frame in the STFT domain: ``_stft`` and
``_istft`` (periodic Hann window, overlap-add that inverts it exactly),
``_frame_centres`` (the sample at the centre of each frame), and, on the
STFT's frequency bins, log envelopes of resonator cascades
(``_log_resonances``) normalised to unit power (``_unit_power``).

Example
-------
>>> x = np.random.default_rng(0).standard_normal(1000)
>>> bool(np.allclose(_istft(_stft(x), 1000), x))
True
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from speechbrain_ssps.minivox.audio import SAMPLE_RATE

# STFT used to apply time-varying spectral envelopes (hop divides nfft).
_NFFT = 512
_HOP = 128
_PAD = _NFFT - _HOP
_WINDOW = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(_NFFT) / _NFFT)
_OLA_GAIN = float(np.sum(_WINDOW**2) / _HOP)  # 1.5 for a periodic Hann
_FREQS = np.fft.rfftfreq(_NFFT, 1.0 / SAMPLE_RATE)
_OMEGA = 2.0 * np.pi * _FREQS / SAMPLE_RATE


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
