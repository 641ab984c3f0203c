"""What the start-up check learns from each audio file of the manifest.

Every file is opened with soundfile, which reads its header only; the
facts kept are its length and channel count, or the one problem that makes
it unusable (missing, unreadable, empty, at another sample rate). Only
floating-point files (subtype ``FLOAT`` or ``DOUBLE``) can hold NaN or
infinite samples, so only those are read fully; integer PCM is checked from
its header alone, which keeps the check cheap on VoxCeleb's 1.1 M files.
Files are inspected in blocks over a thread pool (soundfile releases the
GIL while reading), and the results come back in the order of the paths.
"""

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import List, Optional

import numpy as np
import soundfile as sf

from speechbrain_ssps.resample import fix_command

#: Subtypes that can hold NaN / infinite samples (read fully when checked).
FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")
_FILES_PER_TASK = 64  # files inspected by one thread-pool task
_FRAMES_PER_READ = 1 << 20  # frames per read when scanning a float file


@dataclass
class AudioFacts:
    """Header facts of one file, or the problem that makes it unusable.

    Arguments
    ---------
    frames : int
        Length in frames (samples per channel).
    channels : int
        Number of channels.
    float_checked : bool
        Whether every sample was read and found finite.
    problem_kind : str, optional
        What is wrong, as counted in the error summary (e.g.
        ``"missing audio file"``); None for a usable file.
    problem_detail : str
        What is wrong with this file, for its line of the error message.
    """

    frames: int = 0
    channels: int = 0
    float_checked: bool = False
    problem_kind: Optional[str] = None
    problem_detail: str = ""


def inspect_audio_file(
    path: str, sample_rate: int, check_finite: bool
) -> AudioFacts:
    """Header (and, for float files, sample) checks of one audio file.

    Arguments
    ---------
    path : str
        The audio file.
    sample_rate : int
        The only accepted sample rate, in Hz.
    check_finite : bool
        Read floating-point files fully and reject NaN / inf samples.

    Returns
    -------
    AudioFacts
        Length and channels, or the problem found (never raises).

    Example
    -------
    >>> import numpy as np, soundfile as sf
    >>> path = str(getfixture("tmpdir") / "a.wav")
    >>> sf.write(path, np.zeros((800, 2), "int16"), 16000)
    >>> inspect_audio_file(path, 16000, check_finite=True)
    AudioFacts(frames=800, channels=2, float_checked=False, \
problem_kind=None, problem_detail='')
    >>> inspect_audio_file(path, 8000, True).problem_kind
    'wrong sample rate'
    >>> inspect_audio_file(path + "x", 16000, True).problem_detail
    'file not found'
    """
    try:
        with sf.SoundFile(path) as audio:
            facts = AudioFacts(frames=audio.frames, channels=audio.channels)
            if audio.frames <= 0:
                facts.problem_kind = "zero-length audio file"
                facts.problem_detail = "0 samples"
            elif audio.samplerate != sample_rate:
                facts.problem_kind = "wrong sample rate"
                facts.problem_detail = (
                    f"sampled at {audio.samplerate} Hz, expected "
                    f"{sample_rate} Hz (the recipe does not resample; "
                    "resample the corpus once, offline: "
                    f"{fix_command(path, sample_rate)})"
                )
            elif check_finite and audio.subtype in FLOAT_SUBTYPES:
                facts.float_checked = True
                bad_frame = first_nonfinite_frame(audio)
                if bad_frame is not None:
                    facts.problem_kind = "NaN/inf samples"
                    facts.problem_detail = (
                        f"NaN or infinite sample at frame {bad_frame}"
                    )
            return facts
    except Exception as err:  # soundfile raises several types
        # Classify only on failure: no extra stat() per good file.
        if not os.path.exists(path):
            return AudioFacts(
                problem_kind="missing audio file",
                problem_detail="file not found",
            )
        if not os.path.isfile(path):
            return AudioFacts(
                problem_kind="unreadable audio file",
                problem_detail="not a regular file",
            )
        reason = str(err).strip().replace("\n", " ")
        return AudioFacts(
            problem_kind="unreadable audio file",
            problem_detail=(
                f"soundfile cannot read it ({type(err).__name__}: {reason})"
            ),
        )


def first_nonfinite_frame(audio: sf.SoundFile) -> Optional[int]:
    """Frame index of the first NaN / inf sample of an open file, or None.

    Reads from the current position to the end, ``_FRAMES_PER_READ`` frames
    at a time (bounded memory for long files).

    Arguments
    ---------
    audio : soundfile.SoundFile
        A file open for reading, at its first frame.

    Returns
    -------
    int or None
        The first frame with a non-finite sample in any channel.

    Example
    -------
    >>> import numpy as np, soundfile as sf
    >>> path = str(getfixture("tmpdir") / "f.wav")
    >>> signal = np.zeros(100, np.float32)
    >>> signal[42] = np.nan
    >>> sf.write(path, signal, 16000, subtype="FLOAT")
    >>> with sf.SoundFile(path) as audio:
    ...     first_nonfinite_frame(audio)
    42
    """
    offset = 0
    while True:
        block = audio.read(_FRAMES_PER_READ, dtype="float64", always_2d=True)
        if block.shape[0] == 0:
            return None
        finite = np.isfinite(block).all(axis=1)
        if not finite.all():
            return offset + int(np.argmin(finite))
        offset += block.shape[0]


def _inspect_files(
    paths: List[str], sample_rate: int, check_finite: bool
) -> List[AudioFacts]:
    """One thread-pool task: ``inspect_audio_file`` of a block of paths."""
    return [inspect_audio_file(p, sample_rate, check_finite) for p in paths]


def inspect_audio_files(
    pool: Optional[ThreadPoolExecutor],
    paths: List[str],
    sample_rate: int,
    check_finite: bool,
) -> List[AudioFacts]:
    """``inspect_audio_file`` of every path, in blocks over a pool, in order.

    Arguments
    ---------
    pool : ThreadPoolExecutor, optional
        Threads to inspect blocks of files in; None: in this thread.
    paths : list of str
        The audio files.
    sample_rate, check_finite
        As for :func:`inspect_audio_file`.

    Returns
    -------
    list of AudioFacts
        One per path, in the order of ``paths``.

    Example
    -------
    >>> tmp = getfixture("tmpdir")
    >>> facts = inspect_audio_files(None, [str(tmp / "x.wav")], 16000, True)
    >>> [f.problem_kind for f in facts]
    ['missing audio file']
    """
    blocks = [
        paths[start : start + _FILES_PER_TASK]
        for start in range(0, len(paths), _FILES_PER_TASK)
    ]
    if pool is None:
        results = [_inspect_files(b, sample_rate, check_finite) for b in blocks]
    else:
        futures = [
            pool.submit(_inspect_files, b, sample_rate, check_finite)
            for b in blocks
        ]
        results = [future.result() for future in futures]
    return [facts for block in results for facts in block]
