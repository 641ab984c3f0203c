"""Offline resampling of a corpus to the recipe's sample rate.

The recipe reads audio at one rate (``sample_rate``, 16 kHz) and does not
resample while training. :func:`resample_tree` writes a copy of a corpus at
that rate, once: every ``.wav`` / ``.flac`` under ``src`` becomes the file
with the same relative path under ``dst`` (same container, same channels,
same sample format where the container allows it). Files already at the
target rate are copied unchanged, and the files of ``<src>/meta/`` (the
trial lists) are copied too, so ``dst`` is a complete data root that
``voxceleb_prepare.py`` can be pointed at. The originals are never touched.

The run is resumable: each output is written under a temporary name and
renamed into place only once complete (``os.replace``), so a killed run
leaves no half-written file, and an output that already exists is skipped
on the next run. Files are processed by a pool of ``workers`` threads
(soundfile and torch release the GIL while they work).

:func:`fix_command` gives the command that resamples the corpus holding a
given file; the start-up checks print it next to a file at another rate.

Authors
-------
* SSPS contributors 2025
"""

import logging
import os
import shutil
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Dict, List, Tuple

import numpy as np
import soundfile as sf

logger = logging.getLogger(__name__)

#: The recipe's sample rate (``sample_rate`` in its yamls).
TARGET_RATE = 16000
AUDIO_EXTENSIONS = (".wav", ".flac")
#: Suffix of an output being written (removed or renamed when done).
PARTIAL_SUFFIX = ".partial"
#: Folder of a data root whose files (trial lists) are copied as they are.
META_FOLDER = "meta"
# Sample formats written as float; every other input is written as 16-bit.
_FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")


def fix_command(path: str, sample_rate: int = TARGET_RATE) -> str:
    """The command that resamples the corpus holding ``path``.

    The data root is the folder above the last ``wav`` folder of the path
    (VoxCeleb's ``<root>/wav/<speaker>/<video>/<utt>.wav``), else the
    file's folder.

    Arguments
    ---------
    path : str
        An audio file at the wrong rate.
    sample_rate : int
        The rate the recipe expects.

    Returns
    -------
    str
        A shell command (run in ``recipes/VoxCeleb/SSPS``), and where to
        point ``--data_folder`` afterwards.

    Example
    -------
    >>> print(fix_command("/data/vox/wav/id1/v1/00001.wav"))
    python convert_to_wav.py --resample --src /data/vox \
--dst /data/vox_16k (in recipes/VoxCeleb/SSPS), then use \
--data_folder=/data/vox_16k
    """
    path = os.path.abspath(path)
    parts = path.split(os.sep)
    if "wav" in parts[:-1]:
        last = len(parts) - 2 - parts[-2::-1].index("wav")
        root = os.sep.join(parts[:last]) or os.sep
    else:
        root = os.path.dirname(path)
    khz = f"{sample_rate / 1000:g}k"
    dst = f"{root.rstrip(os.sep)}_{khz}"
    rate = "" if sample_rate == TARGET_RATE else f" --sample_rate {sample_rate}"
    return (
        f"python convert_to_wav.py --resample --src {root} --dst {dst}"
        f"{rate} (in recipes/VoxCeleb/SSPS), then use --data_folder={dst}"
    )


def list_resample_jobs(src: str, dst: str) -> List[Tuple[str, str]]:
    """(input, output) pairs of every audio file and meta file under src.

    Arguments
    ---------
    src : str
        The corpus root, searched recursively (hidden files skipped).
    dst : str
        The root of the copy.

    Returns
    -------
    list of (str, str)
        Sorted by input path.

    Example
    -------
    >>> src = getfixture("tmp_path") / "c"
    >>> (src / "wav" / "id1").mkdir(parents=True)
    >>> _ = (src / "wav" / "id1" / "a.flac").write_bytes(b"")
    >>> _ = (src / "wav" / "id1" / "notes.txt").write_bytes(b"")
    >>> dst = str(src) + "_16k"
    >>> [os.path.relpath(o, dst) for _, o in list_resample_jobs(str(src), dst)]
    ['wav/id1/a.flac']
    """
    jobs = []
    for folder, subfolders, files in os.walk(src):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        rel = os.path.relpath(folder, src)
        in_meta = rel.split(os.sep)[0] == META_FOLDER
        for name in sorted(files):
            if name.startswith(".") or name.endswith(PARTIAL_SUFFIX):
                continue
            is_audio = os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS
            if is_audio or in_meta:
                out = os.path.normpath(os.path.join(dst, rel, name))
                jobs.append((os.path.join(folder, name), out))
    return jobs


def _write_atomically(dst: str, write) -> None:
    """Calls ``write(tmp)``, then renames tmp to dst (tmp removed on error)."""
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    tmp = dst + PARTIAL_SUFFIX
    try:
        write(tmp)
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def resample_file(src: str, dst: str, sample_rate: int = TARGET_RATE) -> str:
    """Writes src at sample_rate to dst; returns what was done.

    Arguments
    ---------
    src : str
        A ``.wav`` / ``.flac`` file (or a meta file, copied).
    dst : str
        The output (written as ``dst + ".partial"``, then renamed).
    sample_rate : int
        The output rate.

    Returns
    -------
    str
        ``"resampled"`` or ``"copied"``.

    Raises
    ------
    ValueError
        If src cannot be read as audio (the message names src).

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> sf.write(str(tmp / "a.wav"), np.zeros(8000, "int16"), 8000)
    >>> resample_file(str(tmp / "a.wav"), str(tmp / "b.wav"))
    'resampled'
    >>> sf.info(str(tmp / "b.wav")).frames
    16000
    """
    if os.path.splitext(src)[1].lower() not in AUDIO_EXTENSIONS:
        _write_atomically(dst, lambda tmp: shutil.copyfile(src, tmp))
        return "copied"
    try:
        info = sf.info(src)
        if info.samplerate == sample_rate:
            _write_atomically(dst, lambda tmp: shutil.copyfile(src, tmp))
            return "copied"
        audio, rate = sf.read(src, dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as error:
        raise ValueError(f"cannot read {src}: {error}") from None
    if audio.shape[0] == 0:
        raise ValueError(f"cannot resample {src}: it holds no audio")
    out = resample_signal(audio, rate, sample_rate)
    subtype = info.subtype if info.subtype in _FLOAT_SUBTYPES else "PCM_16"
    if subtype == "PCM_16":
        out = np.clip(out, -1.0, 32767 / 32768)

    def write(tmp: str) -> None:
        sf.write(tmp, out, sample_rate, subtype=subtype, format=info.format)

    _write_atomically(dst, write)
    return "resampled"


def resample_signal(
    audio: np.ndarray, orig_rate: int, new_rate: int
) -> np.ndarray:
    """Band-limited resampling of ``(frames, channels)`` audio.

    Uses ``torchaudio.functional.resample`` (windowed sinc); the output has
    ``ceil(frames * new_rate / orig_rate)`` frames.

    Arguments
    ---------
    audio : numpy.ndarray
        ``(frames, channels)`` float32 samples.
    orig_rate : int
        Rate of ``audio``.
    new_rate : int
        Rate of the result.

    Returns
    -------
    numpy.ndarray
        ``(new_frames, channels)`` float32.

    Example
    -------
    >>> resample_signal(np.zeros((441, 1), "float32"), 44100, 16000).shape
    (160, 1)
    """
    import torch
    import torchaudio.functional as AF

    waveform = torch.from_numpy(np.ascontiguousarray(audio.T))
    with torch.no_grad():
        out = AF.resample(waveform, int(orig_rate), int(new_rate))
    return out.T.contiguous().numpy()


def _is_done(path: str) -> bool:
    """True if path exists and is not empty (a finished output)."""
    return os.path.isfile(path) and os.path.getsize(path) > 0


def resample_tree(
    src: str,
    dst: str,
    sample_rate: int = TARGET_RATE,
    workers: int = 4,
) -> Dict[str, object]:
    """Resamples (or copies) every audio and meta file of src into dst.

    Arguments
    ---------
    src : str
        The corpus root (e.g. ``/data/corpus`` holding ``wav/`` and
        ``meta/``).
    dst : str
        The root of the resampled copy; must differ from src (originals
        are kept).
    sample_rate : int
        The output rate.
    workers : int
        Files processed at once.

    Returns
    -------
    dict
        Counts ``found``, ``skipped`` (already done), ``resampled``,
        ``copied``, ``failed``, and ``failures``: ``(path, message)`` of
        each failed file, sorted.

    Example
    -------
    >>> src = getfixture("tmp_path") / "c"
    >>> (src / "wav" / "id1" / "v1").mkdir(parents=True)
    >>> sf.write(str(src / "wav/id1/v1/1.wav"), np.zeros(441), 44100)
    >>> counts = resample_tree(str(src), str(src) + "_16k", workers=1)
    >>> counts["resampled"], counts["failed"]
    (1, 0)
    >>> resample_tree(str(src), str(src) + "_16k")["skipped"]
    1
    """
    if workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    if sample_rate < 1:
        raise ValueError(f"--sample_rate must be > 0, got {sample_rate}")
    src, dst = os.path.abspath(src), os.path.abspath(dst)
    if not os.path.isdir(src):
        raise FileNotFoundError(f"--src folder not found: {src}")
    if dst == src or dst.startswith(src + os.sep):
        raise ValueError(
            f"--dst {dst} must lie outside --src {src}: the originals are "
            "kept and the copy is a separate tree"
        )
    jobs = list_resample_jobs(src, dst)
    audio = [i for i, _ in jobs if i.lower().endswith(AUDIO_EXTENSIONS)]
    if not audio:
        raise FileNotFoundError(
            f"No audio ({', '.join(AUDIO_EXTENSIONS)}) found under {src}"
        )
    todo = [(i, o) for i, o in jobs if not _is_done(o)]
    counts: Dict[str, object] = {
        "found": len(jobs),
        "skipped": len(jobs) - len(todo),
        "resampled": 0,
        "copied": 0,
        "failed": 0,
    }
    logger.info(
        "%d files under %s, %d already done, %d to write to %s at %d Hz "
        "with %d workers.",
        len(jobs),
        src,
        counts["skipped"],
        len(todo),
        dst,
        sample_rate,
        workers,
    )
    failures: List[Tuple[str, str]] = []
    step = max(1, len(todo) // 20)
    with ThreadPoolExecutor(workers) as pool:
        futures = {
            pool.submit(resample_file, i, o, sample_rate): i for i, o in todo
        }
        for done, future in enumerate(as_completed(futures), start=1):
            try:
                counts[future.result()] += 1
            except (ValueError, OSError) as error:
                counts["failed"] += 1
                failures.append((futures[future], str(error)))
            if done % step == 0 or done == len(todo):
                logger.info("Wrote %d / %d files.", done, len(todo))
    counts["failures"] = sorted(failures)
    for path, error in counts["failures"][:10]:
        logger.error("Failed: %s: %s", path, error)
    return counts


def main_counts_line(counts: Dict[str, object]) -> str:
    """One summary line of :func:`resample_tree`'s counts.

    Arguments
    ---------
    counts : dict
        As returned by :func:`resample_tree`.

    Returns
    -------
    str
        ``found N, skipped N, resampled N, copied N, failed N``.

    Example
    -------
    >>> main_counts_line({"found": 2, "skipped": 1, "resampled": 1,
    ...                   "copied": 0, "failed": 0})
    'found 2, skipped 1, resampled 1, copied 0, failed 0'
    """
    keys = ("found", "skipped", "resampled", "copied", "failed")
    return ", ".join(f"{key} {counts[key]}" for key in keys)
