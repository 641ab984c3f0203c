"""Converts VoxCeleb2's .m4a files to 16 kHz mono 16-bit .wav with ffmpeg.

Every ``<src>/<rel>.m4a`` becomes ``<dst>/<rel>.wav`` (``dst`` defaults to
``src``: the .wav is written beside the .m4a). Originals are never deleted.
The conversion is resumable: an output that exists and is not empty is
skipped, and each output is written under a temporary name then renamed, so
an interrupted run leaves no half-written .wav. Files are converted in
parallel by ``--workers`` ffmpeg processes.

Usage
-----
python convert_to_wav.py --src /data/vox2/dev/aac --dst /data/vox2/wav \\
    --workers 8

Then point ``voxceleb_prepare.py`` at ``/data/vox2`` (the parent of ``wav``).

With ``--resample``, the .wav / .flac files of a corpus at another rate
(8, 22.05, 44.1, 48 kHz, ...) are instead resampled to ``--sample_rate``
(16 kHz, the recipe's rate) into a separate tree with the same layout (no
ffmpeg needed; same resumability and temporary-file rule; files already at
the rate and the ``meta/`` trial lists are copied), see
``speechbrain_ssps.resample``::

    python convert_to_wav.py --resample --src /data/corpus \
        --dst /data/corpus_16k --workers 8

then use ``--data_folder=/data/corpus_16k``.

Authors
-------
* SSPS recipe contributors 2025
"""

import argparse
import logging
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Dict, List, Optional, Tuple

# Plain logging: this tool runs without importing SpeechBrain (fast start).
logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
PARTIAL_SUFFIX = ".partial"


def find_ffmpeg(ffmpeg: str = "ffmpeg") -> str:
    """Returns the ffmpeg executable, or raises a clear error.

    Arguments
    ---------
    ffmpeg : str
        Name (looked up on PATH) or path of the ffmpeg executable.

    Returns
    -------
    str
        The full path of the executable.

    Example
    -------
    >>> find_ffmpeg("surely-not-an-ffmpeg")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: ffmpeg executable 'surely-not-an-ffmpeg' not found...
    """
    path = shutil.which(ffmpeg)
    if path is None:
        raise FileNotFoundError(
            f"ffmpeg executable {ffmpeg!r} not found on PATH. Install ffmpeg "
            "(e.g. `apt-get install ffmpeg` or `conda install -c conda-forge "
            "ffmpeg`) or pass its path with --ffmpeg."
        )
    return path


def list_jobs(src: str, dst: str) -> List[Tuple[str, str]]:
    """Lists (input .m4a, output .wav) pairs under src, sorted.

    Arguments
    ---------
    src : str
        Folder searched recursively for .m4a files.
    dst : str
        Folder mirroring src that receives the .wav files.

    Returns
    -------
    list of (str, str)
        Input and output paths.

    Example
    -------
    >>> src = getfixture("tmp_path")
    >>> (src / "id1" / "v1").mkdir(parents=True)
    >>> _ = (src / "id1" / "v1" / "00001.m4a").write_bytes(b"")
    >>> [os.path.relpath(o, src) for _, o in list_jobs(str(src), str(src))]
    ['id1/v1/00001.wav']
    """
    jobs = []
    for folder, subfolders, files in os.walk(src):
        subfolders.sort()
        rel = os.path.relpath(folder, src)
        for name in sorted(files):
            stem, ext = os.path.splitext(name)
            if ext.lower() != ".m4a" or name.startswith("."):
                continue
            out = os.path.normpath(os.path.join(dst, rel, stem + ".wav"))
            jobs.append((os.path.join(folder, name), out))
    return jobs


def is_done(path: str) -> bool:
    """True if path exists and is not empty (a finished conversion)."""
    return os.path.isfile(path) and os.path.getsize(path) > 0


def convert_file(ffmpeg: str, src: str, dst: str) -> Optional[str]:
    """Converts one file; returns None on success, else the error text.

    Arguments
    ---------
    ffmpeg : str
        Path of the ffmpeg executable.
    src : str
        Input audio file.
    dst : str
        Output .wav (written as ``dst + ".partial"``, then renamed).

    Returns
    -------
    str or None
        None if the conversion succeeded, else ffmpeg's message.
    """
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    tmp = dst + PARTIAL_SUFFIX
    command = [
        ffmpeg,
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-i",
        src,
        "-vn",
        "-ac",
        "1",
        "-ar",
        str(SAMPLE_RATE),
        "-c:a",
        "pcm_s16le",
        "-f",
        "wav",
        tmp,
    ]
    try:
        result = subprocess.run(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        if result.returncode != 0 or not is_done(tmp):
            message = result.stderr.decode(errors="replace").strip()
            return message or f"ffmpeg exited with {result.returncode}"
        os.replace(tmp, dst)
        return None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def convert_tree(
    src: str,
    dst: Optional[str] = None,
    workers: int = 4,
    ffmpeg: str = "ffmpeg",
) -> Dict[str, int]:
    """Converts every .m4a under src into a .wav under dst.

    Arguments
    ---------
    src : str
        Folder holding the .m4a files (any depth).
    dst : str, optional
        Output folder with the same layout; defaults to src.
    workers : int
        Number of ffmpeg processes run at once.
    ffmpeg : str
        Name or path of the ffmpeg executable.

    Returns
    -------
    dict
        Counts: ``found``, ``skipped`` (already converted), ``converted``,
        ``failed``.
    """
    if workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    src = os.path.abspath(src)
    dst = os.path.abspath(dst) if dst is not None else src
    if not os.path.isdir(src):
        raise FileNotFoundError(f"--src folder not found: {src}")
    ffmpeg = find_ffmpeg(ffmpeg)
    jobs = list_jobs(src, dst)
    if not jobs:
        raise FileNotFoundError(f"No .m4a file found under {src}")
    todo = [(i, o) for i, o in jobs if not is_done(o)]
    counts = {
        "found": len(jobs),
        "skipped": len(jobs) - len(todo),
        "converted": 0,
        "failed": 0,
    }
    logger.info(
        "%d .m4a files under %s, %d already converted, %d to convert "
        "with %d workers.",
        len(jobs),
        src,
        counts["skipped"],
        len(todo),
        workers,
    )
    failures = []
    step = max(1, len(todo) // 20)
    with ThreadPoolExecutor(workers) as pool:
        futures = {pool.submit(convert_file, ffmpeg, i, o): i for i, o in todo}
        for done, future in enumerate(as_completed(futures), start=1):
            error = future.result()
            if error is None:
                counts["converted"] += 1
            else:
                counts["failed"] += 1
                failures.append((futures[future], error))
            if done % step == 0 or done == len(todo):
                logger.info("Converted %d / %d files.", done, len(todo))
    for path, error in sorted(failures)[:10]:
        logger.error("Failed to convert %s: %s", path, error)
    return counts


def main(argv: Optional[List[str]] = None) -> int:
    """Command-line entry point.

    Arguments
    ---------
    argv : list of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0 if every file is converted, 1 otherwise.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--src", required=True, help="folder with .m4a")
    parser.add_argument(
        "--dst", default=None, help="output folder (default: --src)"
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--ffmpeg", default="ffmpeg")
    parser.add_argument(
        "--resample",
        action="store_true",
        help="resample the .wav/.flac of a corpus root into --dst instead",
    )
    parser.add_argument(
        "--sample_rate",
        type=int,
        default=SAMPLE_RATE,
        help="output rate of --resample",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    if args.resample:
        return _resample_main(args)
    try:
        counts = convert_tree(args.src, args.dst, args.workers, args.ffmpeg)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(
        "found {found}, skipped {skipped}, converted {converted}, "
        "failed {failed}".format(**counts)
    )
    return 1 if counts["failed"] else 0


def _resample_main(args: argparse.Namespace) -> int:
    """``--resample``: the corpus at --src resampled into --dst."""
    from speechbrain_ssps.resample import main_counts_line, resample_tree

    if args.dst is None:
        message = "error: --resample needs --dst (the originals are kept)"
        print(message, file=sys.stderr)
        return 2
    try:
        counts = resample_tree(
            args.src, args.dst, args.sample_rate, args.workers
        )
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for path, error in counts["failures"]:
        print(f"failed: {path}: {error}", file=sys.stderr)
    print(main_counts_line(counts))
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
