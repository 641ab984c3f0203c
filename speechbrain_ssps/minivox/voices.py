"""Speaker voices: the source-filter parameters of each MiniVox speaker.

Every speaker has its own f0 level and range, vocal-tract length (formant
scaling), formant bandwidths, spectral tilt, open quotient, jitter,
shimmer, breathiness, speaking rate and small idiosyncratic shifts of its
vowel formants (``Voice.sample``). In every video the voice shifts
slightly (session variability, ``Voice.session``).
"""

import dataclasses
import math
from dataclasses import dataclass
from typing import Dict, Tuple

import numpy as np

from speechbrain_ssps.minivox.metadata import _fmt
from speechbrain_ssps.minivox.phonetics import _VOWELS


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
