#!/usr/bin/env python3
"""Writes one speaker embedding per audio file with an exported encoder.

Embeds every audio file below ``--folder`` (``.npy`` files mirroring the
relative paths) or every row of ``--csv`` (columns ``ID`` and ``wav``;
``<ID>.npy``), whole files in length-sorted padded batches as verify.py
does (``speechbrain_ssps.embeddings.embed_utterances``), and writes the
index ``<output_folder>/embeddings.csv`` (``ID,wav,npy,duration``; ``npy``
relative to the output folder). A second run with the same export skips
the files already embedded (so an interrupted run resumes). The model is
loaded offline with ``SpeakerRecognition.from_hparams``.

To run::

    python embed.py --export_folder=results/dino_ssps/1986/export \\
        --folder=/data/my_corpus --output_folder=results/my_embeddings

    python embed.py --export_folder=results/dino_ssps/1986/export \\
        --csv=results/dino_ssps/1986/save/test.csv \\
        --output_folder=results/test_embeddings --device=cuda:0

Read one back with ``numpy.load(<output_folder>/<npy>)`` (shape ``(D,)``).

Authors
 * speechbrain-ssps contributors
"""

import argparse
import sys
from typing import Dict, List, Optional

import torch

from speechbrain_ssps.embed_files import (
    DEFAULT_EXTENSIONS,
    embed_to_folder,
    items_from_csv,
    items_from_folder,
)
from speechbrain_ssps.inference import load_exported
from speechbrain_ssps.thresholds import check_export_folder, model_fingerprint


def _chunk_seconds(text: str) -> Optional[float]:
    """``--max_chunk_seconds``: a positive number, or 0/none (never split)."""
    if text.lower() in ("0", "none", "null"):
        return None
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0 or none, got {text}")
    return value


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--export_folder", required=True, help="written by export.py"
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--csv", help="CSV with ID and wav columns")
    source.add_argument("--folder", help="folder of audio files (recursive)")
    parser.add_argument("--output_folder", required=True)
    parser.add_argument(
        "--device", default=None, help="default: cuda:0 if available, else cpu"
    )
    parser.add_argument(
        "--batch_size", type=int, default=32, help="most files per batch"
    )
    parser.add_argument(
        "--batch_seconds",
        type=float,
        default=120.0,
        help="most padded audio per batch (bounds memory)",
    )
    parser.add_argument(
        "--max_chunk_seconds",
        type=_chunk_seconds,
        default=60.0,
        help="longer files: average of chunk embeddings (none: never split)",
    )
    parser.add_argument(
        "--num_workers", type=int, default=2, help="audio-reading threads"
    )
    parser.add_argument(
        "--extensions",
        default=",".join(DEFAULT_EXTENSIONS),
        help="--folder: audio file endings, comma separated",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="re-embed everything, even another export's output folder",
    )
    parser.add_argument("--noprogressbar", action="store_true")
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f"--batch_size must be >= 1, got {args.batch_size}")
    if args.batch_seconds <= 0:
        parser.error(f"--batch_seconds must be > 0, got {args.batch_seconds}")
    return args


def main(argv: Optional[List[str]] = None) -> Dict[str, int]:
    """Embeds the files; returns the counts (embedded, skipped, total)."""
    args = parse_args(argv)
    export_folder = check_export_folder(args.export_folder)
    if args.csv is not None:
        items = items_from_csv(args.csv)
    else:
        items = items_from_folder(args.folder, args.extensions.split(","))
    device = args.device or ("cuda:0" if torch.cuda.is_available() else "cpu")
    encoder = load_exported(export_folder, device)
    info = {
        "export_folder": export_folder,
        "model_sha256": model_fingerprint(export_folder),
        "max_chunk_seconds": args.max_chunk_seconds,
        "sample_rate": int(encoder.audio_normalizer.sample_rate),
    }
    counts = embed_to_folder(
        encoder,
        items,
        args.output_folder,
        info,
        batch_size=args.batch_size,
        batch_seconds=args.batch_seconds,
        max_chunk_seconds=args.max_chunk_seconds,
        num_workers=args.num_workers,
        overwrite=args.overwrite,
        progress=not args.noprogressbar,
    )
    print(
        f"{counts['embedded']} embedded, {counts['skipped']} already "
        f"embedded by this export (skipped), {counts['total']} in "
        f"{args.output_folder}"
    )
    return counts


if __name__ == "__main__":
    try:
        main()
    except ValueError as error:
        sys.exit(f"embed.py: error: {error}")
