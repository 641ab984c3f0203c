#!/usr/bin/env python3
"""Exports the speaker encoder of a training run for offline inference.

Writes ``<output_folder>/export/`` (``hyperparams.yaml`` and
``embedding_model.ckpt``), loadable without network with::

    SpeakerRecognition.from_hparams(source=<export folder>, savedir=None)

To run (after ``train.py``; the paper averages the last 10 epochs)::

    python export.py results/dino_ssps/1986 --average 10

Then evaluate with ``verify.py``::

    python verify.py hparams/verification.yaml \\
        --export_folder=results/dino_ssps/1986/export \\
        --prep_folder=results/dino_ssps/1986/save \\
        --output_folder=results/dino_ssps/1986/verification

and store a calibrated decision threshold (``threshold.json``, and
``threshold:`` in ``hyperparams.yaml``) measured by verify.py on this
export, for ``speechbrain_ssps.inference.load_verifier``::

    python export.py results/dino_ssps/1986 --average 10 \\
        --threshold_from=results/dino_ssps/1986/verification \\
        --threshold_list=O --threshold_kind=eer

(or ``--threshold=0.42``). Without a threshold option a stored one is
removed.

With a dev split (``voxceleb_prepare.py --dev_speakers=N`` and ``train.py
--valid_trials=dev``), ``--select best_dev`` exports the epoch of lowest dev
EER instead of the last one (with ``--average N``: the average of the N
best; train with ``--keep_checkpoints`` >= N). The choice is recorded in
``selection.json``::

    python export.py results/dino_ssps/1986 --select best_dev --average 3

Authors
 * speechbrain-ssps contributors
"""

import argparse
import sys
from typing import List, Optional

from speechbrain.utils.logger import get_logger

from speechbrain_ssps import thresholds
from speechbrain_ssps.export import export_encoder

logger = get_logger(__name__)


def main(argv: Optional[List[str]] = None) -> str:
    """Parses the command line and exports; returns the export folder."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "output_folder",
        help="training output folder (hyperparams.yaml, save/CKPT+*)",
    )
    parser.add_argument(
        "--average",
        type=int,
        default=1,
        help="average the encoder over N end-of-epoch checkpoints (the "
        "last N, or the N best with --select best_dev)",
    )
    parser.add_argument(
        "--select",
        choices=["last", "best_dev"],
        default="last",
        help="last: the last N epochs; best_dev: the N epochs of lowest dev "
        "validation EER (needs --valid_trials=dev in training)",
    )
    parser.add_argument(
        "--export_folder",
        default=None,
        help="where to write (default: <output_folder>/export)",
    )
    parser.add_argument(
        "--encoder",
        default="embedding_model",
        help="checkpointed encoder to export (embedding_model = student, "
        "teacher_model = DINO teacher)",
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--threshold_from",
        help="verify.py output folder (or its results.json) of this export",
    )
    group.add_argument("--threshold", type=float, help="threshold by hand")
    parser.add_argument("--threshold_list", help="trial list, e.g. O")
    parser.add_argument(
        "--threshold_kind", choices=sorted(thresholds.KINDS), default="eer"
    )
    args = parser.parse_args(argv)
    if args.threshold_list and not args.threshold_from:
        parser.error("--threshold_list needs --threshold_from")
    info = None  # read before the export overwrites the verified folder
    if args.threshold_from:
        info = thresholds.threshold_from_results(
            args.threshold_from, args.threshold_list, args.threshold_kind
        )
    elif args.threshold is not None:
        info = thresholds.manual_threshold(args.threshold)
    folder = export_encoder(
        args.output_folder,
        export_folder=args.export_folder,
        average_last=args.average,
        recoverable=args.encoder,
        select=args.select,
    )
    thresholds.clear_threshold(folder)  # never leave a stale one
    if info is not None:
        thresholds.save_threshold(folder, info)
    print(folder)
    return folder


if __name__ == "__main__":
    try:
        main()
    except ValueError as error:
        sys.exit(f"export.py: error: {error}")
