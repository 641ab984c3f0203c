"""Start-up checks of the training manifest and of the training options.

A bad file or option should stop a run before the first step, with a
message naming the file, the CSV line or the command-line option at fault,
not hours into an epoch. Two entry points:

* :func:`validate_manifest` reads the CSV with the same rules as
  ``DynamicItemDataset.from_csv`` and checks every row and every audio
  header (in a thread pool); all problems are collected and reported in one
  :class:`ManifestError`, so a user fixes them in one go.
* :func:`validate_training_options` checks batch size, epochs and SSPS
  options against each other and against the size of the training set.

Accepted by design (counted in the :class:`ManifestReport` and logged):
files shorter than the longest crop (crops wrap around, see
:mod:`speechbrain_ssps.crops`) and multi-channel files (downmixed to mono
when read). Rejected: any sample rate other than the expected one; the
recipe does not resample on the fly, resample the corpus offline.

Only floating-point files (subtype ``FLOAT`` or ``DOUBLE``) can hold NaN or
infinite samples, so only those are read fully; integer PCM is checked from
its header alone, which keeps the check cheap on VoxCeleb's 1.1 M files.
"""

import csv
import itertools
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import soundfile as sf
from speechbrain.utils.logger import get_logger

from speechbrain_ssps.ssps import SAMPLING_METHODS

logger = get_logger(__name__)

#: How many offending rows an error message lists.
MAX_LISTED = 10
#: Subtypes that can hold NaN / infinite samples (read fully when checked).
FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")
_VARIABLE = re.compile(r"\$([\w.]+)")
_BLOCK_FILES = 64  # files per thread-pool task
_CHUNK_ROWS = 16384  # CSV rows checked at a time (bounds the memory)
_BLOCK_FRAMES = 1 << 20  # frames per read when scanning a float file


class ManifestError(ValueError):
    """A training manifest that cannot be trained on, with what is wrong."""


@dataclass
class ManifestReport:
    """What :func:`validate_manifest` found in a valid manifest.

    Arguments
    ---------
    csv_path : str
        The manifest.
    num_rows : int
        Number of data rows (utterances).
    num_short : int
        Files with fewer than ``min_samples`` frames (cropped with
        wrap-around by design).
    num_stereo : int
        Files with more than one channel (downmixed to mono by design).
    num_float_checked : int
        Floating-point files read fully to look for NaN / inf samples.
    total_seconds : float
        Total audio duration, from the headers.
    """

    csv_path: str
    num_rows: int
    num_short: int = 0
    num_stereo: int = 0
    num_float_checked: int = 0
    total_seconds: float = 0.0


@dataclass
class _Problem:
    """One offending row: CSV line, ID, path and what is wrong."""

    line: int
    utt_id: str
    path: str
    kind: str
    detail: str

    def describe(self) -> str:
        where = f"line {self.line}"
        if self.utt_id:
            where += f" (ID {self.utt_id!r})"
        if self.path:
            where += f", {self.path}"
        return f"{where}: {self.detail}"


def validate_manifest(
    csv_path: str,
    required_columns: Sequence[str] = ("ID", "duration", "wav"),
    sample_rate: int = 16000,
    min_samples: Optional[int] = None,
    num_workers: int = 8,
    check_finite: bool = True,
    audio_column: str = "wav",
    replacements: Optional[Dict[str, str]] = None,
) -> ManifestReport:
    """Check a training manifest and every audio file it names.

    The CSV is parsed as ``DynamicItemDataset.from_csv`` does (UTF-8,
    ``skipinitialspace``, blank lines skipped, ``$var`` replaced from
    ``replacements``). Every problem found is collected, then one
    :class:`ManifestError` lists up to ten offending rows (CSV line, ID and
    path; the header is line 1) with the total count per kind of problem.

    Problems: no data rows; a required column missing; a row with the wrong
    number of fields, an empty ID, a ``duration`` that is not a number or a
    ``$var`` without replacement; duplicate IDs; and for each audio file:
    missing, unreadable by soundfile (not audio, corrupt), zero frames,
    sample rate other than ``sample_rate`` (resample offline: the recipe
    does not resample) and, for floating-point files when ``check_finite``,
    NaN or infinite samples.

    Arguments
    ---------
    csv_path : str
        The manifest (``ID,duration,wav,...``; row order is the SSPS
        utterance index).
    required_columns : sequence of str
        Columns that must be present; ``ID`` and ``audio_column`` always are.
    sample_rate : int
        The only accepted sample rate, in Hz.
    min_samples : int, optional
        Files with fewer frames are counted as short (not an error: crops
        wrap around). Typically the longest crop, in samples.
    num_workers : int
        Threads reading the audio headers.
    check_finite : bool
        Read floating-point files fully and reject NaN / inf samples.
    audio_column : str
        Column holding the audio path.
    replacements : dict, optional
        ``$var`` substitutions, as passed to ``from_csv``.

    Returns
    -------
    ManifestReport
        Counts of rows, short and multi-channel files.

    Raises
    ------
    ManifestError
        Listing what is wrong, with CSV line, ID and path.

    Example
    -------
    >>> import numpy as np, soundfile as sf
    >>> tmp = getfixture("tmpdir")
    >>> sf.write(str(tmp / "a.wav"), np.zeros(800, "int16"), 16000)
    >>> csv_file = tmp / "train.csv"
    >>> _ = csv_file.write_text(
    ...     f"ID,duration,wav\\na,0.05,{tmp / 'a.wav'}\\n", encoding="utf-8"
    ... )
    >>> validate_manifest(str(csv_file), min_samples=1600).num_short
    1
    >>> _ = csv_file.write_text("ID,duration\\na,0.05\\n", encoding="utf-8")
    >>> validate_manifest(str(csv_file))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    speechbrain_ssps.validation.ManifestError: ...: lacks column(s) 'wav';...
    """
    start_time = time.perf_counter()
    required = list(dict.fromkeys(["ID", *required_columns, audio_column]))
    report = ManifestReport(csv_path=csv_path, num_rows=0)
    problems = _Problems()
    frames_total = 0
    try:
        csv_file = open(csv_path, newline="", encoding="utf-8")
    except FileNotFoundError as err:
        raise ManifestError(f"manifest not found: {csv_path}") from err
    pool = ThreadPoolExecutor(num_workers) if num_workers > 1 else None
    try:
        reader = csv.reader(csv_file, skipinitialspace=True)
        header = next(reader, [])
        _check_header(csv_path, header, required)
        rows = _RowChecker(header, audio_column, replacements)
        for chunk in _chunks(_numbered_rows(reader), _CHUNK_ROWS):
            report.num_rows += len(chunk)
            entries = rows.check(chunk, problems)
            paths = [path for _, _, path in entries]
            infos = _inspect_all(pool, paths, sample_rate, check_finite)
            for (line, utt_id, path), info in zip(entries, infos):
                if info.problem is not None:
                    kind, detail = info.problem
                    problems.add(_Problem(line, utt_id, path, kind, detail))
                    continue
                frames_total += info.frames
                report.num_stereo += int(info.channels > 1)
                report.num_float_checked += int(info.float_checked)
                if min_samples is not None and info.frames < min_samples:
                    report.num_short += 1
            problems.end_chunk()
    except (UnicodeDecodeError, csv.Error) as err:
        raise ManifestError(
            f"{csv_path}: not a UTF-8 CSV file ({err})"
        ) from err
    finally:
        csv_file.close()
        if pool is not None:
            pool.shutdown()
    if report.num_rows == 0:
        raise ManifestError(f"{csv_path}: has no data rows (empty manifest)")
    if problems.total:
        raise ManifestError(problems.message(csv_path))
    report.total_seconds = frames_total / sample_rate
    _log_report(report, min_samples, time.perf_counter() - start_time)
    return report


def _check_header(csv_path: str, header: List[str], required: List[str]):
    """Raise naming the required columns that the header lacks."""
    missing = [c for c in required if c not in header]
    if not missing:
        return
    hint = ""
    if header and header[0].startswith("\ufeff"):
        hint = " (the file starts with a byte-order mark: save it as UTF-8 "
        hint += "without BOM)"
    raise ManifestError(
        f"{csv_path}: lacks column(s) "
        f"{', '.join(repr(c) for c in missing)}; header is "
        f"{','.join(header)!r}{hint}"
    )


def _numbered_rows(reader) -> Iterator[Tuple[int, List[str]]]:
    """Non-blank rows with the CSV line each starts on (header: line 1)."""
    line = reader.line_num
    for fields in reader:
        # A quoted field may span lines: the row starts after `line`.
        start, line = line + 1, reader.line_num
        if fields:
            yield start, fields


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    """Consecutive lists of ``size`` items (the last one shorter)."""
    iterator = iter(items)
    while True:
        chunk = list(itertools.islice(iterator, size))
        if not chunk:
            return
        yield chunk


class _Problems:
    """Counts problems per kind and keeps the first MAX_LISTED by line.

    Rows are checked chunk by chunk in file order, so sorting each chunk
    is enough to list the first offending lines of the whole file.
    """

    def __init__(self):
        self.counts: Dict[str, int] = {}
        self.total = 0
        self.listed: List[_Problem] = []
        self._chunk: List[_Problem] = []

    def add(self, problem: _Problem) -> None:
        self.counts[problem.kind] = self.counts.get(problem.kind, 0) + 1
        self.total += 1
        if len(self.listed) < MAX_LISTED:
            self._chunk.append(problem)

    def end_chunk(self) -> None:
        self._chunk.sort(key=lambda p: p.line)
        self.listed += self._chunk[: MAX_LISTED - len(self.listed)]
        self._chunk = []

    def message(self, csv_path: str) -> str:
        summary = ", ".join(f"{n} {kind}" for kind, n in self.counts.items())
        lines = [
            f"{csv_path}: {self.total} bad row(s) ({summary}); fix or remove "
            "them and start again:"
        ]
        lines += ["  " + p.describe() for p in self.listed]
        if self.total > len(self.listed):
            lines.append(f"  ... and {self.total - len(self.listed)} more")
        return "\n".join(lines)


class _RowChecker:
    """Row-level checks; remembers IDs across chunks to find duplicates."""

    def __init__(
        self,
        header: List[str],
        audio_column: str,
        replacements: Optional[Dict[str, str]],
    ):
        self.width = len(header)
        self.id_col = header.index("ID")
        self.wav_col = header.index(audio_column)
        self.dur_col = (
            header.index("duration") if "duration" in header else None
        )
        self.replacements = dict(replacements or {})
        self.first_line: Dict[str, int] = {}

    def check(
        self, rows: List[Tuple[int, List[str]]], problems: _Problems
    ) -> List[Tuple[int, str, str]]:
        """Adds row problems; returns (line, ID, path) of the good rows."""
        entries = []
        for line, fields in rows:
            problem = self._problem(line, fields)
            if problem is not None:
                problems.add(problem)
                continue
            utt_id, path = fields[self.id_col], fields[self.wav_col]
            self.first_line[utt_id] = line
            path = _VARIABLE.sub(lambda m: str(self.replacements[m[1]]), path)
            entries.append((line, utt_id, path))
        return entries

    def _problem(self, line: int, fields: List[str]) -> Optional[_Problem]:
        if len(fields) != self.width:
            utt_id = fields[self.id_col] if len(fields) > self.id_col else ""
            return _Problem(
                line,
                utt_id,
                "",
                "malformed row",
                f"malformed row: {len(fields)} fields, the header has "
                f"{self.width}",
            )
        utt_id, path = fields[self.id_col], fields[self.wav_col]
        if not utt_id:
            return _Problem(line, "", path, "malformed row", "empty ID")
        if utt_id in self.first_line:
            first = self.first_line[utt_id]
            return _Problem(
                line,
                utt_id,
                path,
                "duplicate ID",
                f"duplicate ID (first on line {first})",
            )
        for name in _VARIABLE.findall(",".join(fields)):
            if name not in self.replacements:
                return _Problem(
                    line,
                    utt_id,
                    path,
                    "malformed row",
                    f"${name} has no replacement",
                )
        if self.dur_col is not None and not _is_number(fields[self.dur_col]):
            return _Problem(
                line,
                utt_id,
                path,
                "malformed row",
                f"duration {fields[self.dur_col]!r} is not a number",
            )
        return None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@dataclass
class _AudioInfo:
    """Header facts of one file, or the problem that makes it unusable."""

    frames: int = 0
    channels: int = 0
    float_checked: bool = False
    problem: Optional[Tuple[str, str]] = None


def _inspect(path: str, sample_rate: int, check_finite: bool) -> _AudioInfo:
    """Header (and, for float files, sample) checks of one audio file."""
    try:
        with sf.SoundFile(path) as audio:
            info = _AudioInfo(frames=audio.frames, channels=audio.channels)
            if audio.frames <= 0:
                info.problem = ("zero-length audio file", "0 samples")
            elif audio.samplerate != sample_rate:
                info.problem = (
                    "wrong sample rate",
                    f"sampled at {audio.samplerate} Hz, expected "
                    f"{sample_rate} Hz (resample the corpus offline; the "
                    "recipe does not resample)",
                )
            elif check_finite and audio.subtype in FLOAT_SUBTYPES:
                info.float_checked = True
                bad = _first_nonfinite(audio)
                if bad is not None:
                    info.problem = (
                        "NaN/inf samples",
                        f"NaN or infinite sample at frame {bad}",
                    )
            return info
    except Exception as err:  # soundfile raises several types
        # Classify only on failure: no extra stat() per good file.
        if not os.path.exists(path):
            return _AudioInfo(problem=("missing audio file", "file not found"))
        if not os.path.isfile(path):
            return _AudioInfo(
                problem=("unreadable audio file", "not a regular file")
            )
        detail = str(err).strip().replace("\n", " ")
        return _AudioInfo(
            problem=(
                "unreadable audio file",
                f"soundfile cannot read it ({type(err).__name__}: {detail})",
            )
        )


def _first_nonfinite(audio: sf.SoundFile) -> Optional[int]:
    """Frame index of the first NaN / inf sample of an open file, or None."""
    offset = 0
    while True:
        block = audio.read(_BLOCK_FRAMES, dtype="float64", always_2d=True)
        if block.shape[0] == 0:
            return None
        finite = np.isfinite(block).all(axis=1)
        if not finite.all():
            return offset + int(np.argmin(finite))
        offset += block.shape[0]


def _inspect_block(
    paths: List[str], sample_rate: int, check_finite: bool
) -> List[_AudioInfo]:
    return [_inspect(p, sample_rate, check_finite) for p in paths]


def _inspect_all(
    pool: Optional[ThreadPoolExecutor],
    paths: List[str],
    sample_rate: int,
    check_finite: bool,
) -> List[_AudioInfo]:
    """``_inspect`` of every path, in blocks over the pool, in order."""
    blocks = [
        paths[i : i + _BLOCK_FILES] for i in range(0, len(paths), _BLOCK_FILES)
    ]
    if pool is None:
        results = [_inspect_block(b, sample_rate, check_finite) for b in blocks]
    else:
        futures = [
            pool.submit(_inspect_block, b, sample_rate, check_finite)
            for b in blocks
        ]
        results = [future.result() for future in futures]
    return [info for block in results for info in block]


def _log_report(
    report: ManifestReport, min_samples: Optional[int], seconds: float
) -> None:
    logger.info(
        "%s: %d utterances, %.1f h of audio, checked in %.1f s",
        report.csv_path,
        report.num_rows,
        report.total_seconds / 3600,
        seconds,
    )
    if report.num_short:
        logger.info(
            "%d file(s) shorter than %d samples: their crops wrap around",
            report.num_short,
            min_samples,
        )
    if report.num_stereo:
        logger.info(
            "%d multi-channel file(s): downmixed to mono when read",
            report.num_stereo,
        )
    if report.num_float_checked:
        logger.info(
            "%d floating-point file(s) read fully: no NaN/inf sample",
            report.num_float_checked,
        )


def validate_training_options(
    num_utterances: int,
    batch_size: int,
    number_of_epochs: int,
    world_size: int = 1,
    ssps_start_epoch: Optional[int] = None,
    num_clusters: Optional[int] = None,
    num_neighbors: Optional[int] = None,
    sampling: str = "ncs",
) -> None:
    """Check the training options against each other and the training set.

    Each error names the options as typed on the command line
    (``--batch_size``, ``--ssps_start_epoch``, ...). SSPS options are only
    checked when ``ssps_start_epoch`` is given (an SSPS run).

    Arguments
    ---------
    num_utterances : int
        Rows of the training manifest.
    batch_size : int
        Batch size per process.
    number_of_epochs : int
        Last epoch of the run.
    world_size : int
        Number of processes (GPUs); the global batch is
        ``batch_size * world_size``.
    ssps_start_epoch : int, optional
        First epoch with SSPS positives (1-based; epoch
        ``ssps_start_epoch - 1`` fills the queues). None: no SSPS.
    num_clusters : int, optional
        K of SSPS's k-means (``ssps_num_clusters``).
    num_neighbors : int, optional
        M of the ``ncs`` sampling (``ssps_num_neighbors``).
    sampling : str
        ``ssps_sampling``: ``"ncs"`` or ``"scs"``.

    Raises
    ------
    ValueError
        Naming the options at fault.

    Example
    -------
    >>> validate_training_options(1000, 64, 10, ssps_start_epoch=5,
    ...                           num_clusters=100, num_neighbors=1)
    >>> validate_training_options(1000, 64, 10, ssps_start_epoch=11)
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: --ssps_start_epoch=11 is after --number_of_epochs=10: ...
    """
    for option, value in (
        ("the training manifest's row count", num_utterances),
        ("--batch_size", batch_size),
        ("--number_of_epochs", number_of_epochs),
        ("the world size (number of processes)", world_size),
    ):
        if int(value) != value or value < 1:
            raise ValueError(
                f"{option} must be a positive integer, got {value!r}"
            )
    global_batch = batch_size * world_size
    if global_batch > num_utterances:
        batch = f"--batch_size={batch_size}"
        if world_size > 1:
            batch += f" x {world_size} processes = {global_batch}"
        raise ValueError(
            f"{batch} is larger than the training set ({num_utterances} "
            "utterances): with drop_last an epoch would have no step; lower "
            "--batch_size"
        )
    if ssps_start_epoch is None:
        return
    if int(ssps_start_epoch) != ssps_start_epoch or ssps_start_epoch < 2:
        raise ValueError(
            f"--ssps_start_epoch={ssps_start_epoch!r} must be an integer >= 2: "
            "epoch ssps_start_epoch - 1 fills the SSPS queues"
        )
    if ssps_start_epoch > number_of_epochs:
        raise ValueError(
            f"--ssps_start_epoch={ssps_start_epoch} is after "
            f"--number_of_epochs={number_of_epochs}: SSPS would never run; "
            "lower --ssps_start_epoch or raise --number_of_epochs"
        )
    if sampling not in SAMPLING_METHODS:
        raise ValueError(
            f"--ssps_sampling={sampling!r} must be one of {SAMPLING_METHODS}"
        )
    if num_clusters is not None:
        if int(num_clusters) != num_clusters or num_clusters < 1:
            raise ValueError(
                f"--ssps_num_clusters={num_clusters!r} must be a positive "
                "integer"
            )
        if num_clusters > num_utterances:
            raise ValueError(
                f"--ssps_num_clusters={num_clusters} is larger than the "
                f"training set ({num_utterances} utterances); lower it"
            )
    if sampling == "ncs" and num_neighbors is not None:
        if int(num_neighbors) != num_neighbors or num_neighbors < 1:
            raise ValueError(
                f"--ssps_num_neighbors={num_neighbors!r} must be a positive "
                "integer"
            )
        if num_clusters is not None and num_neighbors >= num_clusters:
            raise ValueError(
                f"--ssps_num_neighbors={num_neighbors} must be smaller than "
                f"--ssps_num_clusters={num_clusters} with "
                "--ssps_sampling=ncs (a cluster's neighbours exclude itself)"
            )
