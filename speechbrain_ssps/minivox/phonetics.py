"""Phonetic inventory and random syllable sequences of MiniVox speech.

The tables hold reference (adult male) formant targets of ten vowels and
of the approximants, F4, F5 and the formant bandwidths, and per place of
articulation the formant loci, frication, burst and nasal zero of the
consonants. ``_phone_segments`` draws the content of an utterance: a
random sequence of syllables built from vowel, approximant, nasal,
fricative and plosive segments, as segment-wise targets that
:mod:`~speechbrain_ssps.minivox.synthesis` turns into smooth tracks.
"""

import math
from typing import Dict, List, Tuple

import numpy as np

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
