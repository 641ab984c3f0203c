"""Finds the audio of a corpus laid out as VoxCeleb.

A data root holds ``<root>/wav/<speaker>/<video>/<utt>.wav`` (``.flac``
also accepted). :func:`scan_root` maps each utterance ID
``<speaker>/<video>/<utt>`` to its file from the folder names alone (no
audio is read). VoxCeleb2 ships ``.m4a`` files, which soundfile cannot
read: an ``.m4a`` without a ``.wav`` / ``.flac`` beside it is an error that
points to ``convert_to_wav.py``.

Authors
-------
* SSPS contributors 2025
"""

import os
from typing import Dict, List, Optional

AUDIO_EXTENSIONS = (".wav", ".flac")
M4A_EXTENSION = ".m4a"


def scan_root(root: str) -> Dict[str, str]:
    """Maps ``<spk>/<video>/<utt>`` to the audio path, for one root.

    Arguments
    ---------
    root : str
        A data root (holding ``wav/``).

    Returns
    -------
    dict
        Utterance ID to absolute audio path.

    Raises
    ------
    FileNotFoundError
        Without ``wav/`` or without audio.
    ValueError
        Two audio files for one ID, or unconverted ``.m4a`` files.

    Example
    -------
    >>> root = getfixture("tmp_path")
    >>> (root / "wav" / "id1" / "v1").mkdir(parents=True)
    >>> _ = (root / "wav" / "id1" / "v1" / "00001.wav").write_bytes(b"")
    >>> list(scan_root(str(root)))
    ['id1/v1/00001']
    """
    wav_dir = os.path.join(root, "wav")
    if not os.path.isdir(wav_dir):
        m4a = find_one_m4a(root)
        if m4a is not None:
            raise ValueError(m4a_message(root, m4a, 1))
        raise FileNotFoundError(
            f"No wav/ folder in {root}: expected "
            f"{wav_dir}/<speaker>/<video>/<utt>.wav"
        )
    audio: Dict[str, str] = {}
    m4a: Dict[str, str] = {}
    for speaker in _subdirs(wav_dir):
        spk_dir = os.path.join(wav_dir, speaker)
        for video in _subdirs(spk_dir):
            video_dir = os.path.join(spk_dir, video)
            _scan_video(video_dir, speaker, video, audio, m4a)
    unconverted = sorted(set(m4a) - set(audio))
    if unconverted:
        first = m4a[unconverted[0]]
        raise ValueError(m4a_message(root, first, len(unconverted)))
    if not audio:
        raise FileNotFoundError(
            f"No audio ({', '.join(AUDIO_EXTENSIONS)}) found under "
            f"{wav_dir}/<speaker>/<video>/"
        )
    return audio


def _scan_video(
    video_dir: str,
    speaker: str,
    video: str,
    audio: Dict[str, str],
    m4a: Dict[str, str],
) -> None:
    """Adds the audio and .m4a files of one video folder to the maps."""
    with os.scandir(video_dir) as entries:
        for entry in entries:
            stem, ext = os.path.splitext(entry.name)
            if entry.name.startswith(".") or not entry.is_file():
                continue
            utt_id = f"{speaker}/{video}/{stem}"
            if ext in AUDIO_EXTENSIONS:
                if utt_id in audio:
                    raise ValueError(
                        f"Two audio files for {utt_id}: "
                        f"{audio[utt_id]} and {entry.path}"
                    )
                audio[utt_id] = entry.path
            elif ext == M4A_EXTENSION:
                m4a[utt_id] = entry.path


def _subdirs(folder: str) -> List[str]:
    """Sorted names of the non-hidden sub-folders of folder."""
    with os.scandir(folder) as entries:
        return sorted(
            entry.name
            for entry in entries
            if entry.is_dir() and not entry.name.startswith(".")
        )


def find_one_m4a(root: str) -> Optional[str]:
    """The first .m4a file found under root, or None.

    Arguments
    ---------
    root : str
        The folder searched (recursively).

    Returns
    -------
    str or None
        An .m4a path.

    Example
    -------
    >>> find_one_m4a(str(getfixture("tmp_path"))) is None
    True
    """
    for folder, _, files in os.walk(root):
        for name in files:
            if name.endswith(M4A_EXTENSION):
                return os.path.join(folder, name)
    return None


def m4a_message(root: str, example: str, count: int) -> str:
    """Error text for .m4a audio that soundfile cannot read.

    Arguments
    ---------
    root : str
        The data root.
    example : str
        One unconverted .m4a file.
    count : int
        How many there are.

    Returns
    -------
    str
        What is wrong and the command that converts the files.

    Example
    -------
    >>> m4a_message("/d", "/d/x/1.m4a", 1).split(" (e.g.")[0]
    '1 .m4a file(s) under /d have no .wav/.flac version'
    """
    return (
        f"{count} .m4a file(s) under {root} have no .wav/.flac version "
        f"(e.g. {example}). VoxCeleb2 ships AAC audio that soundfile cannot "
        "read: convert it first with "
        f"`python convert_to_wav.py --src {os.path.dirname(example)}"
        " --workers 8` (see recipes/VoxCeleb/SSPS/convert_to_wav.py), and "
        "lay the result out as <root>/wav/<speaker>/<video>/<utt>.wav."
    )
