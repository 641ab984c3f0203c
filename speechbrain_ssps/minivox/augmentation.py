"""The MiniVox augmentation set: synthetic MUSAN noise and simulated RIRs.

Without augmentation the two views of an SSL pair differ only by their
crop position, and a model can match them by the video's channel rather
than the speaker. This writes stand-ins for the two public sets that the
recipe's ``--musan_folder`` and ``--rir_folder`` expect, in their
layouts::

    DIR/musan/noise/{coloured,hum,bursts}/noise-0000.wav
    DIR/musan/music/synth/music-0000.wav
    DIR/musan/speech/babble/speech-0000.wav
    DIR/RIRS_NOISES/simulated_rirs/{small,medium,large}room/
        Room001/Room001-00001.wav
    DIR/augmentation.json       parameters, counts, what each file holds

All files are 16 kHz mono PCM-16 WAV. Noise cycles through the three
families of :func:`~speechbrain_ssps.minivox.augmentation_sounds.noise_sound`
(one MUSAN subset each), music is
:func:`~speechbrain_ssps.minivox.augmentation_music.music_sound`, speech is
babble of MiniVox voices that no corpus has
(:func:`~speechbrain_ssps.minivox.augmentation_sounds.babble_voices`), and
the RIRs cycle through the three room sizes,
``RIRS_PER_ROOM`` positions per room
(:class:`~speechbrain_ssps.minivox.augmentation_rooms.Room`).

Every file is drawn from its own seed stream (tags of
:mod:`~speechbrain_ssps.minivox.seeds` that the corpus does not use), so
the set is independent of any corpus's channels, and the same arguments
give byte-identical files whatever the number of workers.

Command line (also ``python -m speechbrain_ssps.minivox ... --augmentation
DIR``)::

    python -m speechbrain_ssps.minivox.augmentation --out DIR --seed 0
    python train.py hparams/minivox_simclr_ssps.yaml ... \\
        --musan_folder=DIR/musan --rir_folder=DIR/RIRS_NOISES
"""

import argparse
import json
import logging
import multiprocessing
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Dict, Optional, Sequence, Union

import numpy as np

from speechbrain_ssps.minivox.audio import SAMPLE_RATE
from speechbrain_ssps.minivox.augmentation_layout import (
    BABBLE_SPEAKERS,
    RIRS_PER_ROOM,
    _file_job,
    augmentation_files,
)
from speechbrain_ssps.minivox.metadata import _write_json

logger = logging.getLogger(__name__)

AUGMENTATION_VERSION = 1
MARKER = "augmentation.json"
FOLDERS = ("musan", "RIRS_NOISES")

# Options of generate_augmentation and their command-line flags.
_FLAGS = {
    "seed": "--seed",
    "num_noise": "--noise",
    "num_music": "--music",
    "num_speech": "--speech",
    "num_rirs": "--rirs",
    "duration": "--duration",
    "workers": "--workers",
}


def _check(name: str, value, minimum: float, integer: bool = True) -> None:
    """Raise a ValueError naming the option (and its flag) if invalid."""
    label = f"{name} ({_FLAGS[name]})"
    types = (int, np.integer) if integer else (int, float, np.number)
    if isinstance(value, bool) or not isinstance(value, types):
        what = "an integer" if integer else "a number"
        raise ValueError(f"{label} must be {what}, got {value!r}")
    if not minimum <= value < float("inf"):
        raise ValueError(
            f"{label} must be finite and at least {minimum}, got {value}"
        )


def _claim(out: Path, params: Dict, overwrite: bool) -> Optional[Dict]:
    """The stored record if ``out`` holds this set complete, else None.

    A set made with other parameters, or ``musan``/``RIRS_NOISES``
    folders without a record, is an error unless ``overwrite``, which
    deletes them and the record.
    """
    marker = out / MARKER
    record = json.loads(marker.read_text()) if marker.exists() else None
    if record is not None and record.get("params") == params:
        files = record.get("files", {})
        if record.get("complete") and all((out / p).exists() for p in files):
            return record
        return None  # same set, unfinished: write it again in place
    found = [name for name in FOLDERS if (out / name).exists()]
    if record is None and not found:
        return None
    if not overwrite:
        if record is not None:
            old = record.get("params", {})
            diff = sorted(k for k in params if old.get(k) != params[k])
            what = f"another augmentation set (differs in {', '.join(diff)})"
        else:
            what = f"{' and '.join(found)} not made by minivox"
        raise ValueError(
            f"--out {out} already holds {what}; choose another --out or "
            "pass --overwrite (overwrite=True) to replace it"
        )
    logger.info("Replacing the augmentation set in %s", out)
    for name in found:
        shutil.rmtree(out / name)
    marker.unlink(missing_ok=True)
    return None


def generate_augmentation(
    out_dir: Union[str, Path],
    seed: int = 0,
    num_noise: int = 30,
    num_music: int = 15,
    num_speech: int = 15,
    num_rirs: int = 60,
    duration: float = 5.0,
    workers: Optional[int] = None,
    overwrite: bool = False,
) -> Dict:
    """Write a synthetic augmentation set in the MUSAN and RIR layouts.

    If ``out_dir/augmentation.json`` records a complete set made with the
    same parameters, nothing is written (``skipped=True``). Another set,
    or ``musan``/``RIRS_NOISES`` folders of unknown origin, is an error
    unless ``overwrite``, which deletes them first.

    Arguments
    ---------
    out_dir : str or Path
        Output directory.
    seed : int
        Seed of the set (>= 0). Its draws never repeat a corpus's, even
        for the corpus seed.
    num_noise : int
        Noise files (>= 1), cycling through coloured, hum and bursts.
    num_music : int
        Music files (>= 1).
    num_speech : int
        Babble files (>= 1).
    num_rirs : int
        Impulse responses (>= 1), cycling through small, medium and large
        rooms with ``RIRS_PER_ROOM`` per room.
    duration : float
        Seconds of every noise, music and babble file (>= 0.5); longer
        than a training crop, so that each crop gets its own excerpt.
    workers : int, optional
        Processes; default ``min(2, os.cpu_count())``. The files do not
        depend on it.
    overwrite : bool
        Replace a different set found in ``out_dir``.

    Returns
    -------
    dict
        ``out_dir``, ``musan_folder``, ``rir_folder`` (the two train.py
        options), the counts, ``num_files``, ``total_hours``, ``seconds``
        (wall time) and ``skipped``.

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     kwargs = dict(num_noise=1, num_music=1, num_speech=1,
    ...                   num_rirs=1, duration=0.5, workers=1)
    ...     first = generate_augmentation(tmp, **kwargs)
    ...     again = generate_augmentation(tmp, **kwargs)
    >>> first["num_files"], first["skipped"], again["skipped"]
    (4, False, True)
    """
    start = time.perf_counter()
    _check("seed", seed, 0)
    for name, count in (
        ("num_noise", num_noise),
        ("num_music", num_music),
        ("num_speech", num_speech),
        ("num_rirs", num_rirs),
    ):
        _check(name, count, 1)
    _check("duration", duration, 0.5, integer=False)
    if workers is None:
        workers = min(2, os.cpu_count() or 1)
    _check("workers", workers, 1)
    params = {
        "version": AUGMENTATION_VERSION,
        "sample_rate": SAMPLE_RATE,
        "seed": int(seed),
        "num_noise": int(num_noise),
        "num_music": int(num_music),
        "num_speech": int(num_speech),
        "num_rirs": int(num_rirs),
        "duration": float(duration),
        "rirs_per_room": RIRS_PER_ROOM,
        "babble_speakers": BABBLE_SPEAKERS,
    }
    out = Path(out_dir)
    paths = {
        "out_dir": str(out),
        "musan_folder": str(out / "musan"),
        "rir_folder": str(out / "RIRS_NOISES"),
    }
    record = _claim(out, params, overwrite)
    if record is not None:
        logger.info("Augmentation set in %s already exists: skipping", out)
        seconds = time.perf_counter() - start
        return {
            **paths,
            **record["summary"],
            "seconds": seconds,
            "skipped": True,
        }

    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / MARKER, {"params": params, "complete": False})
    specs = augmentation_files(num_noise, num_music, num_speech, num_rirs)
    jobs = [(str(out), seed, float(duration), spec) for spec in specs]
    logger.info("Writing %d augmentation files to %s", len(jobs), out)
    if workers == 1:
        results = [_file_job(job) for job in jobs]
    else:
        with multiprocessing.get_context().Pool(
            min(workers, len(jobs))
        ) as pool:
            results = pool.map(_file_job, jobs, chunksize=1)
    summary = {
        "num_noise": num_noise,
        "num_music": num_music,
        "num_speech": num_speech,
        "num_rirs": num_rirs,
        "num_files": len(results),
        "total_hours": round(
            sum(n for _, n, _ in results) / SAMPLE_RATE / 3600.0, 6
        ),
    }
    _write_json(
        out / MARKER,
        {
            "params": params,
            "complete": True,
            "summary": summary,
            "files": {path: info for path, _, info in results},
        },
    )
    seconds = time.perf_counter() - start
    logger.info("Wrote %d augmentation files in %.1f s", len(results), seconds)
    return {**paths, **summary, "seconds": seconds, "skipped": False}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Write a set from the command line and print its summary as JSON.

    ``python -m speechbrain_ssps.minivox.augmentation --out DIR`` runs it;
    an invalid option exits with status 2 and a message naming its flag.

    Arguments
    ---------
    argv : sequence of str, optional
        The flags; ``sys.argv[1:]`` when omitted.

    Returns
    -------
    int
        0 once the set is written (or found complete).
    """
    parser = argparse.ArgumentParser(
        prog="python -m speechbrain_ssps.minivox.augmentation",
        description="Write synthetic augmentation data: DIR/musan "
        "(noise, music, babble) and DIR/RIRS_NOISES/simulated_rirs; train "
        "with --musan_folder=DIR/musan --rir_folder=DIR/RIRS_NOISES.",
    )
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--seed", type=int, default=0, help="seed of the set")
    for flag, name, kind, what in (
        ("--noise", "num_noise", int, "noise files (default 30)"),
        ("--music", "num_music", int, "music files (default 15)"),
        ("--speech", "num_speech", int, "babble files (default 15)"),
        ("--rirs", "num_rirs", int, "impulse responses (default 60)"),
        ("--duration", "duration", float, "seconds a sound (default 5)"),
        ("--workers", "workers", int, "processes (default 2)"),
    ):
        parser.add_argument(flag, dest=name, type=kind, help=what)
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a different set already in --out",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        given = {
            name: value
            for name, value in vars(args).items()
            if name in _FLAGS and value is not None
        }
        summary = generate_augmentation(
            args.out, overwrite=args.overwrite, **given
        )
    except ValueError as error:
        parser.error(str(error))
    print(json.dumps(summary, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
