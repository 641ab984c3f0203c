"""What each file of the MiniVox augmentation set is, and how it is made.

:func:`augmentation_files` lists the files of a set (category, seed cell,
path in the MUSAN or simulated-RIR layout); :func:`render` draws one of
them from its own cell of the seed streams; ``_file_job`` writes one
(the worker of :func:`~speechbrain_ssps.minivox.augmentation.
generate_augmentation`).

Noise cycles through the three families of
:func:`~speechbrain_ssps.minivox.augmentation_sounds.noise_sound`, one
MUSAN subset each; RIRs cycle through the three room sizes, with
``RIRS_PER_ROOM`` source/microphone positions per room.
"""

from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

from speechbrain_ssps.minivox.audio import SAMPLE_RATE, write_pcm16
from speechbrain_ssps.minivox.augmentation_music import music_sound
from speechbrain_ssps.minivox.augmentation_rooms import ROOM_SIZES, Room
from speechbrain_ssps.minivox.augmentation_sounds import (
    NOISE_KINDS,
    babble_sound,
    babble_voices,
    noise_sound,
)
from speechbrain_ssps.minivox.metadata import _fmt
from speechbrain_ssps.minivox.seeds import (
    _TAG_AUG_MUSIC,
    _TAG_AUG_NOISE,
    _TAG_AUG_RIR,
    _TAG_AUG_ROOM,
    _TAG_AUG_SPEECH,
    _rng,
)

MUSIC_SUBSET = "synth"
SPEECH_SUBSET = "babble"
RIRS_PER_ROOM = 5  # source/microphone positions per simulated room
BABBLE_SPEAKERS = 40  # talkers the babble files draw from

# A file to write: (category, cell indices, path relative to the set).
FileSpec = Tuple[str, Tuple[int, ...], str]


def augmentation_files(
    num_noise: int, num_music: int, num_speech: int, num_rirs: int
) -> List[FileSpec]:
    """Every file of a set: its category, seed cell and relative path.

    Arguments
    ---------
    num_noise, num_music, num_speech, num_rirs : int
        How many files of each kind.

    Returns
    -------
    list of tuple
        ``(category, cell, path)``, noise first, RIRs last.

    Example
    -------
    >>> for category, cell, path in augmentation_files(2, 0, 1, 4):
    ...     print(category, path)
    noise musan/noise/coloured/noise-0000.wav
    noise musan/noise/hum/noise-0001.wav
    speech musan/speech/babble/speech-0000.wav
    rir RIRS_NOISES/simulated_rirs/smallroom/Room001/Room001-00001.wav
    rir RIRS_NOISES/simulated_rirs/mediumroom/Room001/Room001-00001.wav
    rir RIRS_NOISES/simulated_rirs/largeroom/Room001/Room001-00001.wav
    rir RIRS_NOISES/simulated_rirs/smallroom/Room001/Room001-00002.wav
    """
    files: List[FileSpec] = []
    for i in range(num_noise):
        kind = NOISE_KINDS[i % len(NOISE_KINDS)]
        files.append(("noise", (i,), f"musan/noise/{kind}/noise-{i:04d}.wav"))
    for category, count, subset in (
        ("music", num_music, MUSIC_SUBSET),
        ("speech", num_speech, SPEECH_SUBSET),
    ):
        for i in range(count):
            path = f"musan/{category}/{subset}/{category}-{i:04d}.wav"
            files.append((category, (i,), path))
    sizes = list(ROOM_SIZES)
    for i in range(num_rirs):
        size, rank = i % len(sizes), i // len(sizes)
        room, position = rank // RIRS_PER_ROOM + 1, rank % RIRS_PER_ROOM + 1
        path = (
            f"RIRS_NOISES/simulated_rirs/{sizes[size]}/Room{room:03d}/"
            f"Room{room:03d}-{position:05d}.wav"
        )
        files.append(("rir", (size, room, position), path))
    return files


def render(
    seed: int, category: str, cell: Tuple[int, ...], duration: float
) -> Tuple[np.ndarray, Dict]:
    """The samples and description of one file of a set.

    Arguments
    ---------
    seed : int
        Seed of the set.
    category : str
        ``"noise"``, ``"music"``, ``"speech"`` or ``"rir"``.
    cell : tuple of int
        The file's index (noise, music, speech) or ``(size, room,
        position)`` (RIR), as given by :func:`augmentation_files`.
    duration : float
        Length of noise, music and speech files in seconds (RIRs are as
        long as their reverberation).

    Returns
    -------
    numpy.ndarray
        The samples in [-0.99, 0.99].
    dict
        What was drawn.

    Example
    -------
    >>> wav, info = render(0, "rir", (0, 1, 1), 1.0)
    >>> info["room"], float(np.max(np.abs(wav)))
    ('smallroom', 0.9)
    """
    num_samples = int(round(duration * SAMPLE_RATE))
    if category == "noise":
        kind = NOISE_KINDS[cell[0] % len(NOISE_KINDS)]
        return noise_sound(kind, num_samples, _rng(seed, _TAG_AUG_NOISE, *cell))
    if category == "music":
        return music_sound(num_samples, _rng(seed, _TAG_AUG_MUSIC, *cell))
    if category == "speech":
        voices = babble_voices(seed, BABBLE_SPEAKERS)
        rng = _rng(seed, _TAG_AUG_SPEECH, *cell)
        return babble_sound(voices, num_samples, rng)
    if category == "rir":
        size, room_number, _ = cell
        name = list(ROOM_SIZES)[size]
        room = Room.sample(_rng(seed, _TAG_AUG_ROOM, size, room_number), name)
        wav, info = room.impulse_response(_rng(seed, _TAG_AUG_RIR, *cell))
        return wav, {"room": name, "dims_m": list(room.dims), **info}
    raise ValueError(f"unknown category {category!r}")


def _compact(value):
    """Round the floats of a description to 6 significant digits."""
    if isinstance(value, dict):
        return {key: _compact(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_compact(item) for item in value]
    if isinstance(value, (float, np.floating)):
        return float(_fmt(float(value)))
    if isinstance(value, np.integer):
        return int(value)
    return value


def _file_job(job: Tuple) -> Tuple[str, int, Dict]:
    """Render and write one file (pool worker)."""
    out_dir, seed, duration, (category, cell, path) = job
    wav, info = render(seed, category, cell, duration)
    target = Path(out_dir) / path
    target.parent.mkdir(parents=True, exist_ok=True)
    return path, write_pcm16(target, wav), _compact(info)
