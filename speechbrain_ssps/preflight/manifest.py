"""The start-up check of a training manifest and of every file it names.

:func:`check_manifest` reads the CSV with the same rules as
``DynamicItemDataset.from_csv``, checks every row, then every audio header
(:mod:`speechbrain_ssps.preflight.audio`, in a thread pool). All problems
are collected and reported in one :class:`ManifestError`, so a user fixes
them in one go. The CSV is read in chunks of rows, so the memory stays
bounded on VoxCeleb's 1.1 M rows.

Accepted by design (counted in the :class:`ManifestReport` and logged):
files shorter than the longest crop (crops wrap around, see
:mod:`speechbrain_ssps.crops`) and multi-channel files (downmixed to mono
when read). Rejected: any sample rate other than the expected one; the
recipe does not resample on the fly, resample the corpus offline.
"""

import csv
import itertools
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from speechbrain.utils.logger import get_logger

from speechbrain_ssps.preflight.audio import inspect_audio_files

logger = get_logger(__name__)

#: How many offending rows an error message lists.
MAX_LISTED = 10
_VARIABLE = re.compile(r"\$([\w.]+)")
_ROWS_PER_CHUNK = 16384  # CSV rows checked at a time (bounds the memory)


class ManifestError(ValueError):
    """A training manifest that cannot be trained on, with what is wrong."""


@dataclass
class ManifestReport:
    """What :func:`check_manifest` found in a valid manifest.

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


def check_manifest(
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
    >>> check_manifest(str(csv_file), min_samples=1600).num_short
    1
    >>> _ = csv_file.write_text("ID,duration\\na,0.05\\n", encoding="utf-8")
    >>> try:
    ...     check_manifest(str(csv_file))
    ... except ManifestError as err:
    ...     print(err)  # doctest: +ELLIPSIS
    /...train.csv: lacks column(s) 'wav'; header is 'ID,duration'
    """
    start_time = time.perf_counter()
    required = list(dict.fromkeys(["ID", *required_columns, audio_column]))
    report = ManifestReport(csv_path=csv_path, num_rows=0)
    problems = _ProblemLog()
    total_frames = 0
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
        for chunk in _chunks(_numbered_rows(reader), _ROWS_PER_CHUNK):
            report.num_rows += len(chunk)
            good_rows = rows.check(chunk, problems)
            paths = [path for _, _, path in good_rows]
            all_facts = inspect_audio_files(
                pool, paths, sample_rate, check_finite
            )
            for (line, utt_id, path), facts in zip(good_rows, all_facts):
                if facts.problem_kind is not None:
                    problems.add(
                        _Problem(
                            line,
                            utt_id,
                            path,
                            facts.problem_kind,
                            facts.problem_detail,
                        )
                    )
                    continue
                total_frames += facts.frames
                report.num_stereo += int(facts.channels > 1)
                report.num_float_checked += int(facts.float_checked)
                if min_samples is not None and facts.frames < min_samples:
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
    report.total_seconds = total_frames / sample_rate
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


class _ProblemLog:
    """Counts problems per kind and keeps the first MAX_LISTED by line.

    Rows are checked chunk by chunk in file order, so sorting each chunk
    is enough to list the first offending lines of the whole file.
    """

    def __init__(self):
        self.count_per_kind: Dict[str, int] = {}
        self.total = 0
        self.listed: List[_Problem] = []
        self._chunk: List[_Problem] = []

    def add(self, problem: _Problem) -> None:
        kind = problem.kind
        self.count_per_kind[kind] = self.count_per_kind.get(kind, 0) + 1
        self.total += 1
        if len(self.listed) < MAX_LISTED:
            self._chunk.append(problem)

    def end_chunk(self) -> None:
        self._chunk.sort(key=lambda p: p.line)
        self.listed += self._chunk[: MAX_LISTED - len(self.listed)]
        self._chunk = []

    def message(self, csv_path: str) -> str:
        summary = ", ".join(
            f"{n} {kind}" for kind, n in self.count_per_kind.items()
        )
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
        self.num_columns = len(header)
        self.id_column = header.index("ID")
        self.audio_column = header.index(audio_column)
        self.duration_column = (
            header.index("duration") if "duration" in header else None
        )
        self.replacements = dict(replacements or {})
        self.first_line_of_id: Dict[str, int] = {}

    def check(
        self, rows: List[Tuple[int, List[str]]], problems: _ProblemLog
    ) -> List[Tuple[int, str, str]]:
        """Adds row problems; returns (line, ID, audio path) of good rows."""
        good_rows = []
        for line, fields in rows:
            if len(fields) != self.num_columns:
                problems.add(self._wrong_width(line, fields))
                continue
            utt_id, path = fields[self.id_column], fields[self.audio_column]
            problem = self._field_problem(fields)
            if problem is not None:
                kind, detail = problem
                problems.add(_Problem(line, utt_id, path, kind, detail))
                continue
            self.first_line_of_id[utt_id] = line
            path = _VARIABLE.sub(lambda m: str(self.replacements[m[1]]), path)
            good_rows.append((line, utt_id, path))
        return good_rows

    def _wrong_width(self, line: int, fields: List[str]) -> _Problem:
        has_id = len(fields) > self.id_column
        return _Problem(
            line,
            fields[self.id_column] if has_id else "",
            "",
            "malformed row",
            f"malformed row: {len(fields)} fields, the header has "
            f"{self.num_columns}",
        )

    def _field_problem(self, fields: List[str]) -> Optional[Tuple[str, str]]:
        """(kind, detail) of the first problem of a full-width row, or None."""
        utt_id = fields[self.id_column]
        if not utt_id:
            return "malformed row", "empty ID"
        if utt_id in self.first_line_of_id:
            first = self.first_line_of_id[utt_id]
            return "duplicate ID", f"duplicate ID (first on line {first})"
        for name in _VARIABLE.findall(",".join(fields)):
            if name not in self.replacements:
                return "malformed row", f"${name} has no replacement"
        if self.duration_column is not None:
            duration = fields[self.duration_column]
            if not _is_number(duration):
                return "malformed row", f"duration {duration!r} is not a number"
        return None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


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
