"""Command line of MiniVox: ``python -m speechbrain_ssps.minivox``."""

import argparse
import json
import logging
from typing import Optional, Sequence

from speechbrain_ssps.minivox.corpus import generate_corpus


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point (``python -m speechbrain_ssps.minivox``).

    Arguments
    ---------
    argv : sequence of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status (0 on success).
    """
    parser = argparse.ArgumentParser(
        prog="python -m speechbrain_ssps.minivox",
        description="Write a synthetic VoxCeleb-like corpus "
        "(DIR/wav/idNNNNN/<video>/NNNNN.wav + DIR/meta/veri_test2.txt).",
    )
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument(
        "--speakers", type=int, required=True, help="training speakers"
    )
    parser.add_argument(
        "--videos", type=int, required=True, help="videos per speaker (>= 2)"
    )
    parser.add_argument(
        "--utterances", type=int, required=True, help="utterances per video"
    )
    parser.add_argument(
        "--test-speakers", type=int, required=True, help="test speakers (>= 2)"
    )
    parser.add_argument("--seed", type=int, default=0, help="corpus seed")
    parser.add_argument("--min-duration", type=float, default=2.0)
    parser.add_argument("--max-duration", type=float, default=4.0)
    parser.add_argument(
        "--trials",
        type=int,
        default=None,
        help="even number of trials (default: 8 per test utterance)",
    )
    parser.add_argument(
        "--channel-strength",
        type=float,
        default=1.0,
        help="scale of the per-video channels (0 = clean, default 1)",
    )
    parser.add_argument(
        "--session-variability",
        type=float,
        default=1.0,
        help="scale of the per-video voice changes (0 = none, default 1)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes (default: min(2, cpu count))",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a different corpus already in --out",
    )
    parser.add_argument(
        "--augmentation",
        metavar="DIR_AUG",
        default=None,
        help="also write synthetic augmentation data (DIR_AUG/musan, "
        "DIR_AUG/RIRS_NOISES; default sizes and --seed, --workers, "
        "--overwrite as above; more options: python -m "
        "speechbrain_ssps.minivox.augmentation)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        summary = generate_corpus(
            args.out,
            num_speakers=args.speakers,
            num_videos=args.videos,
            num_utterances=args.utterances,
            num_test_speakers=args.test_speakers,
            seed=args.seed,
            min_duration=args.min_duration,
            max_duration=args.max_duration,
            num_trials=args.trials,
            channel_strength=args.channel_strength,
            session_variability=args.session_variability,
            workers=args.workers,
            overwrite=args.overwrite,
        )
        if args.augmentation is not None:
            # Imported here, so that ``python -m speechbrain_ssps.minivox.
            # augmentation`` does not find the module imported (runpy warns).
            from speechbrain_ssps.minivox.augmentation import (
                generate_augmentation,
            )

            summary["augmentation"] = generate_augmentation(
                args.augmentation,
                seed=args.seed,
                workers=args.workers,
                overwrite=args.overwrite,
            )
    except ValueError as error:
        parser.error(str(error))
    print(json.dumps(summary, indent=2, sort_keys=True))
    return 0
