"""Rows of the recipe's manifests, from the audio file headers.

``voxceleb_prepare.py`` writes ``train.csv``, ``dev.csv`` and ``test.csv``
with the header ``ID,duration,wav,spk_id,video_id``: one row per utterance,
``duration`` the file length in seconds read from its header (the audio
itself is not read), ``spk_id`` and ``video_id`` the first two parts of the
ID ``<speaker>/<video>/<utt>``. Headers are read by a thread pool in blocks
of files; a file at another rate than the recipe's is an error that gives
the command resampling the corpus.

Authors
-------
* SSPS contributors 2025
"""

import csv
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional, Sequence, Tuple

import soundfile as sf
from speechbrain.utils.logger import get_logger

from speechbrain_ssps.resample import fix_command

logger = get_logger(__name__)

CSV_HEADER = ["ID", "duration", "wav", "spk_id", "video_id"]
_FILES_PER_TASK = 1024


def make_rows(
    ids: List[str],
    paths: Dict[str, str],
    sample_rate: Optional[int],
    num_workers: int,
    drop_empty: bool,
) -> List[List[str]]:
    """Manifest rows of ids, with durations read from the file headers.

    Arguments
    ---------
    ids : list of str
        Utterance IDs ``<speaker>/<video>/<utt>``, in row order.
    paths : dict
        ID to audio file.
    sample_rate : int, optional
        The only accepted rate; None accepts any.
    num_workers : int
        Threads reading the headers.
    drop_empty : bool
        Leave out empty files (with a warning) instead of raising.

    Returns
    -------
    list of list of str
        One ``[ID, duration, wav, spk_id, video_id]`` row per kept ID.

    Example
    -------
    >>> import numpy as np
    >>> path = str(getfixture("tmp_path") / "a.wav")
    >>> sf.write(path, np.zeros(8000, "int16"), 16000)
    >>> make_rows(["s/v/a"], {"s/v/a": path}, 16000, 1, True)[0][:2]
    ['s/v/a', '0.50000']
    """
    files = [paths[utt_id] for utt_id in ids]
    blocks = [
        files[i : i + _FILES_PER_TASK]
        for i in range(0, len(files), _FILES_PER_TASK)
    ]
    with ThreadPoolExecutor(max(1, num_workers)) as pool:
        infos = [info for block in pool.map(_headers, blocks) for info in block]
    rows, empty = [], []
    for utt_id, path, (frames, rate) in zip(ids, files, infos):
        if sample_rate is not None and rate != sample_rate:
            raise ValueError(
                f"{path} is sampled at {rate} Hz, expected {sample_rate} Hz. "
                "Resample the corpus once, offline: "
                f"{fix_command(path, sample_rate)} (or pass sample_rate=None "
                "to accept any rate)"
            )
        if frames == 0:
            empty.append(path)
            continue
        speaker, video, _ = utt_id.split("/")
        rows.append([utt_id, f"{frames / rate:.5f}", path, speaker, video])
    if empty and not drop_empty:
        raise ValueError(f"Empty test audio file: {empty[0]}")
    if empty:
        logger.warning(
            "Dropped %d empty audio file(s) (e.g. %s).", len(empty), empty[0]
        )
    return rows


def _headers(paths: List[str]) -> List[Tuple[int, int]]:
    """(frames, sample rate) of each audio file, read from its header."""
    infos = []
    for path in paths:
        try:
            info = sf.info(path)
        except Exception as err:
            raise ValueError(
                f"Cannot read audio header of {path}: {err}"
            ) from err
        infos.append((info.frames, info.samplerate))
    return infos


def write_csv(
    path: str,
    rows: List[List[str]],
    header: Optional[Sequence[str]] = None,
) -> None:
    """Writes a manifest atomically (temporary file, then rename).

    Arguments
    ---------
    path : str
        The CSV file.
    rows : list of list of str
        As returned by :func:`make_rows`.
    header : sequence of str, optional
        The column names (default: the training manifest's ``CSV_HEADER``).

    Example
    -------
    >>> path = str(getfixture("tmp_path") / "m.csv")
    >>> write_csv(path, [["s/v/a", "0.5", "/a.wav", "s", "v"]])
    >>> open(path).read().splitlines()[1]
    's/v/a,0.5,/a.wav,s,v'
    """
    tmp = path + ".tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_HEADER if header is None else list(header))
        writer.writerows(rows)
    os.replace(tmp, path)
