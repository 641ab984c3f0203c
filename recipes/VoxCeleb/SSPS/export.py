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

Authors
 * speechbrain-ssps contributors
"""

import argparse
import sys
from typing import List, Optional

from speechbrain.utils.logger import get_logger

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
        help="average the encoder over the last N end-of-epoch checkpoints",
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
    args = parser.parse_args(argv)
    folder = export_encoder(
        args.output_folder,
        export_folder=args.export_folder,
        average_last=args.average,
        recoverable=args.encoder,
    )
    print(folder)
    return folder


if __name__ == "__main__":
    try:
        main()
    except ValueError as error:
        sys.exit(f"export.py: error: {error}")
