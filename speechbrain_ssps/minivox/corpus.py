"""The MiniVox corpus on disk: its layout and ``generate_corpus``.

Layout (identical to VoxCeleb's)::

    DIR/wav/id10001/<11-char video id>/00001.wav   16 kHz mono PCM-16
    DIR/meta/veri_test2.txt      "1 idA/vid/00001.wav idA/vid2/00003.wav"
    DIR/meta/speakers.csv        voice parameters of every speaker
    DIR/meta/videos.csv          session voice + channel of every video
    DIR/minivox.json             generation parameters (skip marker)

Training speakers come first (``id10001`` ...), followed by the test
speakers. ``generate_corpus`` validates the options, skips a corpus that
is already complete, synthesises one job per speaker
(:mod:`~speechbrain_ssps.minivox.workers`, in a process pool) and writes
the metadata and the trial list.
"""

import json
import logging
import multiprocessing
import os
import shutil
import time
from pathlib import Path
from typing import Dict, Optional, Union

from speechbrain_ssps.minivox.audio import SAMPLE_RATE
from speechbrain_ssps.minivox.ids import FIRST_SPEAKER_NUMBER
from speechbrain_ssps.minivox.metadata import _write_csv, _write_json
from speechbrain_ssps.minivox.options import _check_int, _opt
from speechbrain_ssps.minivox.seeds import _TAG_TRIALS, _rng
from speechbrain_ssps.minivox.stft import _HOP
from speechbrain_ssps.minivox.trials import (
    default_num_trials,
    sample_trials,
    trial_capacity,
)
from speechbrain_ssps.minivox.workers import _speaker_job

logger = logging.getLogger(__name__)

GENERATOR_VERSION = 1


def generate_corpus(
    out_dir: Union[str, Path],
    num_speakers: int,
    num_videos: int,
    num_utterances: int,
    num_test_speakers: int,
    seed: int = 0,
    min_duration: float = 2.0,
    max_duration: float = 4.0,
    num_trials: Optional[int] = None,
    channel_strength: float = 1.0,
    session_variability: float = 1.0,
    workers: Optional[int] = None,
    overwrite: bool = False,
) -> Dict:
    """Write a synthetic VoxCeleb-like corpus and its trial list.

    If ``out_dir/minivox.json`` records a complete corpus made with the same
    parameters, nothing is written and the stored summary is returned with
    ``skipped=True``. A directory holding another corpus (or a ``wav`` or
    ``meta`` folder of unknown origin) is an error unless ``overwrite``,
    which deletes ``out_dir/wav``, ``out_dir/meta`` and the JSON first.

    Arguments
    ---------
    out_dir : str or Path
        Output directory.
    num_speakers : int
        Training speakers (ids ``id10001`` ...).
    num_videos : int
        Videos per speaker (>= 2: target trials pair different videos).
    num_utterances : int
        Utterances per video.
    num_test_speakers : int
        Test speakers (>= 2), numbered after the training speakers; only
        they appear in ``meta/veri_test2.txt``.
    seed : int
        Corpus seed (>= 0).
    min_duration : float
        Shortest utterance in seconds.
    max_duration : float
        Longest utterance in seconds (durations are uniform in between).
    num_trials : int, optional
        Even number of trials; default 8 per test utterance within the
        number of distinct pairs.
    channel_strength : float
        Scales the per-video channels (0 = clean, 1 = default).
    session_variability : float
        Scales the per-video changes of each voice (0 = none).
    workers : int, optional
        Processes; default ``min(2, os.cpu_count())``. The output does not
        depend on it.
    overwrite : bool
        Replace a different corpus found in ``out_dir``.

    Returns
    -------
    dict
        Paths (``out_dir``, ``wav_dir``, ``trials_file``,
        ``speakers_file``, ``videos_file``), counts (``num_speakers``,
        ``num_train_speakers``, ``num_test_speakers``, ``num_videos``,
        ``num_utterances``, ``num_trials``, ``num_target_trials``),
        ``total_hours``, ``seconds`` (wall time) and ``skipped``.

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     summary = generate_corpus(tmp, 1, 2, 1, 2, min_duration=0.3,
    ...                               max_duration=0.3, workers=1)
    ...     again = generate_corpus(tmp, 1, 2, 1, 2, min_duration=0.3,
    ...                             max_duration=0.3, workers=1)
    >>> summary["num_utterances"], summary["num_trials"], again["skipped"]
    (6, 4, True)
    """
    start = time.perf_counter()
    # 1. Validate.
    _check_int("num_speakers", num_speakers, 1)
    _check_int(
        "num_videos", num_videos, 2, " (target trials pair different videos)"
    )
    _check_int("num_utterances", num_utterances, 1)
    _check_int(
        "num_test_speakers",
        num_test_speakers,
        2,
        " (non-target trials need two test speakers)",
    )
    _check_int("seed", seed, 0)
    if num_speakers + num_test_speakers > 99999 - FIRST_SPEAKER_NUMBER + 1:
        raise ValueError(
            f"{_opt('num_speakers')} + {_opt('num_test_speakers')} must be "
            f"at most {99999 - FIRST_SPEAKER_NUMBER + 1} (5-digit ids)"
        )
    if not min_duration >= _HOP / SAMPLE_RATE:
        raise ValueError(
            f"{_opt('min_duration')} must be at least "
            f"{_HOP / SAMPLE_RATE} s, got {min_duration}"
        )
    if not max_duration >= min_duration:
        raise ValueError(
            f"{_opt('max_duration')} must be >= {_opt('min_duration')}, got "
            f"{max_duration} < {min_duration}"
        )
    if not channel_strength >= 0:
        raise ValueError(
            f"{_opt('channel_strength')} must be >= 0, got {channel_strength}"
        )
    if not session_variability >= 0:
        raise ValueError(
            f"{_opt('session_variability')} must be >= 0, "
            f"got {session_variability}"
        )
    if workers is None:
        workers = min(2, os.cpu_count() or 1)
    _check_int("workers", workers, 1)
    if num_trials is None:
        num_trials = default_num_trials(
            num_test_speakers, num_videos, num_utterances
        )
    else:
        _check_int("num_trials", num_trials, 2)
    capacity = min(
        trial_capacity(num_test_speakers, num_videos, num_utterances)
    )
    if num_trials % 2 or num_trials // 2 > capacity:
        raise ValueError(
            f"{_opt('num_trials')} must be even and at most {2 * capacity} "
            f"for this test set, got {num_trials}"
        )
    params = {
        "version": GENERATOR_VERSION,
        "sample_rate": SAMPLE_RATE,
        "num_speakers": int(num_speakers),
        "num_videos": int(num_videos),
        "num_utterances": int(num_utterances),
        "num_test_speakers": int(num_test_speakers),
        "seed": int(seed),
        "min_duration": float(min_duration),
        "max_duration": float(max_duration),
        "num_trials": int(num_trials),
        "channel_strength": float(channel_strength),
        "session_variability": float(session_variability),
    }

    # 2. Skip, refuse or clean.
    out = Path(out_dir)
    marker = out / "minivox.json"
    wav_dir, meta_dir = out / "wav", out / "meta"
    paths = {
        "out_dir": str(out),
        "wav_dir": str(wav_dir),
        "trials_file": str(meta_dir / "veri_test2.txt"),
        "speakers_file": str(meta_dir / "speakers.csv"),
        "videos_file": str(meta_dir / "videos.csv"),
    }
    previous = None
    if marker.exists():
        with open(marker, encoding="utf-8") as f:
            previous = json.load(f)
    if (
        previous is not None
        and previous.get("params") == params
        and previous.get("complete")
        and Path(paths["trials_file"]).exists()
    ):
        logger.info("Minivox corpus in %s already exists: skipping", out)
        return {
            **paths,
            **previous["summary"],
            "seconds": time.perf_counter() - start,
            "skipped": True,
        }
    same = previous is not None and previous.get("params") == params
    if not same and (previous is not None or wav_dir.exists()):
        if not overwrite:
            what = "a minivox corpus with other parameters"
            if previous is not None:
                diff = sorted(
                    k
                    for k in params
                    if previous.get("params", {}).get(k) != params[k]
                )
                what += f" (differs in {', '.join(diff)})"
            else:
                what = "a wav/ folder not made by minivox"
            raise ValueError(
                f"--out {out} already holds {what}; choose another --out or "
                "pass --overwrite (overwrite=True) to replace it"
            )
        logger.info("Replacing the corpus in %s", out)
        for folder in (wav_dir, meta_dir):
            if folder.exists():
                shutil.rmtree(folder)
        marker.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    _write_json(marker, {"params": params, "complete": False})

    # 3. Synthesise, one job per speaker.
    total = num_speakers + num_test_speakers
    jobs = [
        (
            str(wav_dir),
            index,
            seed,
            num_videos,
            num_utterances,
            min_duration,
            max_duration,
            channel_strength,
            session_variability,
        )
        for index in range(total)
    ]
    logger.info(
        "Writing %d utterances of %d speakers to %s with %d worker(s)",
        total * num_videos * num_utterances,
        total,
        wav_dir,
        workers,
    )
    if workers == 1 or total == 1:
        results = [_speaker_job(job) for job in jobs]
    else:
        with multiprocessing.get_context().Pool(min(workers, total)) as pool:
            results = pool.map(_speaker_job, jobs, chunksize=1)

    # 4. Metadata and trials.
    meta_dir.mkdir(parents=True, exist_ok=True)
    speaker_rows, video_rows = [], []
    for index, result in enumerate(results):
        split = "train" if index < num_speakers else "test"
        speaker_rows.append(
            {"spk_id": result["spk_id"], "split": split, **result["voice"]}
        )
        for video in result["videos"]:
            video_rows.append({"spk_id": result["spk_id"], **video})
    _write_csv(meta_dir / "speakers.csv", list(speaker_rows[0]), speaker_rows)
    _write_csv(meta_dir / "videos.csv", list(video_rows[0]), video_rows)
    test_paths = [
        f"{result['spk_id']}/{video['video_id']}/{utt + 1:05d}.wav"
        for result in results[num_speakers:]
        for video in result["videos"]
        for utt in range(num_utterances)
    ]
    trials = sample_trials(
        num_test_speakers,
        num_videos,
        num_utterances,
        num_trials,
        _rng(seed, _TAG_TRIALS),
    )
    lines = sorted(  # grouped by enrolment utterance, like VoxCeleb's lists
        (f"{label} {test_paths[a]} {test_paths[b]}" for label, a, b in trials),
        key=lambda line: line.split(" ", 1)[1],
    )
    with open(paths["trials_file"], "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    summary = {
        "num_speakers": total,
        "num_train_speakers": num_speakers,
        "num_test_speakers": num_test_speakers,
        "num_videos": total * num_videos,
        "num_utterances": total * num_videos * num_utterances,
        "num_trials": num_trials,
        "num_target_trials": num_trials // 2,
        "total_hours": round(
            sum(r["num_samples"] for r in results) / SAMPLE_RATE / 3600.0, 6
        ),
    }
    _write_json(
        marker, {"params": params, "complete": True, "summary": summary}
    )
    seconds = time.perf_counter() - start
    logger.info(
        "Wrote %d utterances (%.2f h) and %d trials in %.1f s",
        summary["num_utterances"],
        summary["total_hours"],
        num_trials,
        seconds,
    )
    return {**paths, **summary, "seconds": seconds, "skipped": False}
