#!/usr/bin/env python3
"""Pseudo speaker labels for the training set, from an exported encoder.

Embeds every utterance of a training manifest with an encoder exported by
``export.py`` (an SSL run, or a stage-two ``train_pl.py`` run for another
iteration), clusters the embeddings (spherical k-means into K1 clusters,
then average-linkage merging of the centroids, cosine distance, into K2
pseudo speakers; ``speechbrain_ssps.pseudo_labels``) and writes

* ``<output_folder>/train_pl.csv``: the manifest with ``spk_id`` replaced by
  the pseudo label (``pl00042``); the original ``spk_id`` is kept as
  ``true_spk_id`` (only used for the metrics);
* ``<output_folder>/pseudo_labels.json``: the options, cluster sizes and,
  when the manifest has true labels, NMI / ARI against speakers and videos
  and the share of clusters dominated by one video.

To run::

    python pseudo_label.py \\
        --export_folder=results/dino_ssps/1986/export \\
        --train_csv=results/dino_ssps/1986/save/train.csv \\
        --output_folder=results/pl/iter1 \\
        --num_clusters=50000 --num_speakers=7500

then train on the labels with ``train_pl.py hparams/pl_ecapa.yaml``. Both
files are written atomically; an existing output made with other options is
refused unless ``--overwrite`` (a rerun with the same options does nothing).

Authors
 * speechbrain-ssps contributors
"""

import argparse
import csv
import io
import json
import logging
import os
import sys
import tempfile
from typing import Dict, List, Optional

import soundfile as sf
import torch
from speechbrain.dataio.preprocess import AudioNormalizer
from speechbrain.utils.logger import get_logger

from speechbrain_ssps.checkpoints import ENCODER_CKPT
from speechbrain_ssps.embeddings import embed_utterances, feature_encoder
from speechbrain_ssps.inference import load_exported
from speechbrain_ssps.pseudo_labels import (
    METHODS,
    cluster_embeddings,
    clustering_metrics,
    format_label,
)

logger = get_logger(__name__)

CSV_NAME = "train_pl.csv"
JSON_NAME = "pseudo_labels.json"
REQUIRED_COLUMNS = ("ID", "wav")
TRUE_SPEAKER = "true_spk_id"


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """The command line (``--key=value`` options)."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--export_folder", required=True, help="export.py's folder")
    add("--train_csv", required=True, help="training manifest (train.csv)")
    add("--output_folder", required=True, help="where the outputs go")
    add("--num_clusters", type=int, required=True, help="K1 (k-means)")
    add("--num_speakers", type=int, required=True, help="K2 (pseudo spk)")
    add("--method", default=METHODS[0], choices=METHODS)
    add(
        "--crop_seconds",
        type=float,
        default=None,
        help="embed the centre crop of this length (default: whole utterances)",
    )
    add("--batch_size", type=int, default=64, help="crops per batch")
    add(
        "--batch_seconds",
        type=float,
        default=120.0,
        help="whole utterances: padded audio per batch",
    )
    add("--max_chunk_seconds", type=float, default=60.0)
    add("--num_iters", type=int, default=10, help="k-means iterations")
    add("--seed", type=int, default=1986)
    add("--device", default=None, help="default: cuda:0 if available")
    add("--num_workers", type=int, default=2, help="audio-reading threads")
    add("--data_folder", default=None, help="replaces $data_root in wav")
    add("--overwrite", action="store_true")
    return parser.parse_args(argv)


def read_rows(path: str, data_folder: Optional[str]):
    """The manifest's columns and rows, checked (ValueError naming it)."""
    if not os.path.isfile(path):
        raise ValueError(f"--train_csv: manifest not found: {path}")
    with open(path, newline="", encoding="utf-8") as fin:
        reader = csv.DictReader(fin, skipinitialspace=True)
        columns = list(reader.fieldnames or [])
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise ValueError(
                f"--train_csv {path} lacks column(s) {missing} (has {columns})"
            )
        rows = [
            row
            for row in reader
            if any((v or "").strip() for v in row.values())
        ]
    if not rows:
        raise ValueError(f"--train_csv {path} has no data rows")
    ids = [row["ID"] for row in rows]
    if len(set(ids)) != len(ids):
        raise ValueError(f"--train_csv {path} has duplicate IDs")
    for row in rows:
        if "$data_root" in row["wav"]:
            if data_folder is None:
                raise ValueError(
                    f"--train_csv {path} uses $data_root: pass --data_folder"
                )
    return columns, rows


def check_export(folder: str) -> None:
    """The export folder must hold an encoder (ValueError otherwise)."""
    for name in ("hyperparams.yaml", f"{ENCODER_CKPT}.ckpt"):
        if not os.path.isfile(os.path.join(folder, name)):
            raise ValueError(
                f"--export_folder {folder} has no {name}; pass a folder "
                "written by export.py"
            )


def true_labels(columns, rows):
    """True speakers and videos (``spk/video``) when every row has them."""
    column = TRUE_SPEAKER if TRUE_SPEAKER in columns else "spk_id"
    if column not in columns or not all(r[column] for r in rows):
        return None, None
    speakers = [r[column] for r in rows]
    videos = None
    if "video_id" in columns and all(r["video_id"] for r in rows):
        videos = [f"{s}/{r['video_id']}" for s, r in zip(speakers, rows)]
    return speakers, videos


def embed_crops(encoder, paths, seconds, batch_size) -> Dict[str, torch.Tensor]:
    """Embeddings of the centre crop (at most ``seconds``) of each file."""
    rate = encoder.audio_normalizer.sample_rate
    normalizer = AudioNormalizer(rate)
    mods = encoder.mods
    encode = feature_encoder(
        mods.compute_features,
        mods.mean_var_norm,
        mods.embedding_model,
        device=encoder.device,
    )
    uids, out = list(paths), {}
    with torch.no_grad():
        for first in range(0, len(uids), batch_size):
            signals = []
            for uid in uids[first : first + batch_size]:
                info = sf.info(paths[uid])
                want = int(seconds * info.samplerate)
                start = max(0, (info.frames - want) // 2)
                audio, file_rate = sf.read(
                    paths[uid],
                    start=start,
                    stop=min(info.frames, start + want),
                    dtype="float32",
                    always_2d=True,
                )
                signals.append(normalizer(torch.from_numpy(audio), file_rate))
            longest = max(len(s) for s in signals)
            wavs = torch.zeros(len(signals), longest)
            for row, signal in enumerate(signals):
                wavs[row, : len(signal)] = signal
            lens = torch.tensor([len(s) / longest for s in signals])
            emb = encode(wavs, lens).detach().to("cpu", torch.float32)
            for uid, row in zip(uids[first:], emb.reshape(len(signals), -1)):
                out[uid] = row
    return out


def _atomic_write(path: str, text: str) -> None:
    """Writes ``text`` to ``path`` through a temporary file and a rename."""
    folder = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fout:
            fout.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _options(args) -> Dict[str, object]:
    """The options that determine the outputs (compared on a rerun)."""
    return {
        "export_folder": os.path.abspath(args.export_folder),
        "train_csv": os.path.abspath(args.train_csv),
        "num_clusters": args.num_clusters,
        "num_speakers": args.num_speakers,
        "method": args.method,
        "crop_seconds": args.crop_seconds,
        "max_chunk_seconds": args.max_chunk_seconds,
        "num_iters": args.num_iters,
        "seed": args.seed,
    }


def check_outputs(args, options) -> bool:
    """True when the outputs exist with the same options (nothing to do).

    Raises a ValueError when other outputs are there and not --overwrite.
    """
    folder = args.output_folder
    paths = [os.path.join(folder, n) for n in (CSV_NAME, JSON_NAME)]
    existing = [p for p in paths if os.path.exists(p)]
    if not existing or args.overwrite:
        return False
    try:
        with open(paths[1], encoding="utf-8") as fin:
            previous = json.load(fin).get("options")
    except (OSError, ValueError):
        previous = None
    if previous == options and len(existing) == 2:
        return True
    raise ValueError(
        f"--output_folder {folder} already holds {existing} from other "
        "options; pass --overwrite or choose another folder"
    )


def main(argv: Optional[List[str]] = None) -> Dict[str, object]:
    """Embeds, clusters, writes; returns the content of the json."""
    args = parse_args(argv)
    # 1. Every check before any work.
    if args.num_speakers < 1:
        raise ValueError(
            f"--num_speakers must be >= 1, got {args.num_speakers}"
        )
    if args.num_speakers > args.num_clusters:
        raise ValueError(
            f"--num_speakers={args.num_speakers} (K2) is larger than "
            f"--num_clusters={args.num_clusters} (K1); merging cannot "
            "create clusters"
        )
    if args.crop_seconds is not None and args.crop_seconds <= 0:
        raise ValueError(f"--crop_seconds must be > 0, got {args.crop_seconds}")
    if args.batch_size < 1:
        raise ValueError(f"--batch_size must be >= 1, got {args.batch_size}")
    check_export(args.export_folder)
    columns, rows = read_rows(args.train_csv, args.data_folder)
    if args.num_clusters > len(rows):
        raise ValueError(
            f"--num_clusters={args.num_clusters} (K1) is larger than the "
            f"{len(rows)} utterances of --train_csv {args.train_csv}"
        )
    options = _options(args)
    if check_outputs(args, options):
        logger.info(f"{args.output_folder} is up to date; nothing to do")
        with open(os.path.join(args.output_folder, JSON_NAME)) as fin:
            return json.load(fin)
    os.makedirs(args.output_folder, exist_ok=True)

    # 2. Embeddings.
    device = args.device or ("cuda:0" if torch.cuda.is_available() else "cpu")
    encoder = load_exported(args.export_folder, device)
    encoder.mods.eval()
    paths = {}
    for row in rows:
        wav = row["wav"]
        if args.data_folder is not None:
            wav = wav.replace("$data_root", args.data_folder)
        paths[row["ID"]] = wav
    logger.info(f"Embedding {len(paths)} utterances on {device}")
    if args.crop_seconds is None:
        embeddings = embed_utterances(
            encoder,
            paths,
            batch_seconds=args.batch_seconds,
            max_chunk_seconds=args.max_chunk_seconds,
            num_workers=args.num_workers,
            log_every=100,
        )
    else:
        embeddings = embed_crops(
            encoder, paths, args.crop_seconds, args.batch_size
        )
    matrix = torch.stack([embeddings[row["ID"]] for row in rows])

    # 3. Clustering and metrics.
    result = cluster_embeddings(
        matrix,
        args.num_clusters,
        args.num_speakers,
        method=args.method,
        num_iters=args.num_iters,
        seed=args.seed,
    )
    labels = [format_label(i, result.num_speakers) for i in result.labels]
    speakers, videos = true_labels(columns, rows)
    summary = {
        "num_clusters": args.num_clusters,
        "num_speakers": args.num_speakers,
        "method": args.method,
        "options": options,
        "metrics": clustering_metrics(labels, speakers, videos),
    }
    if args.method == "kmeans-ahc":
        summary["kmeans_metrics"] = clustering_metrics(
            result.kmeans_labels.tolist(), speakers, videos
        )

    # 4. Outputs, each written atomically (the csv first: the json marks
    # a complete run).
    out_columns = list(columns)
    if "spk_id" not in out_columns:
        out_columns.append("spk_id")
    keep_true = "spk_id" in columns and TRUE_SPEAKER not in columns
    if keep_true:
        out_columns.append(TRUE_SPEAKER)
    lines = []
    for row, label in zip(rows, labels):
        new = {c: row.get(c, "") for c in out_columns}
        if keep_true:
            new[TRUE_SPEAKER] = row["spk_id"]
        new["spk_id"] = label
        lines.append(new)
    stream = io.StringIO()
    writer = csv.DictWriter(stream, out_columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(lines)
    _atomic_write(os.path.join(args.output_folder, CSV_NAME), stream.getvalue())
    _atomic_write(
        os.path.join(args.output_folder, JSON_NAME),
        json.dumps(summary, indent=2) + "\n",
    )
    metrics = summary["metrics"]
    logger.info(
        f"{len(rows)} utterances -> {metrics['num_clusters']} pseudo "
        f"speakers (sizes {metrics['size_min']}-{metrics['size_max']})"
        + (
            f", NMI {metrics['nmi_speaker']:.3f}, ARI "
            f"{metrics['ari_speaker']:.3f}"
            if "nmi_speaker" in metrics
            else ""
        )
    )
    return summary


if __name__ == "__main__":
    # No experiment folder here: progress and results go to stderr.
    logging.basicConfig(level=logging.INFO, format="%(name)s - %(message)s")
    try:
        main()
    except ValueError as error:
        sys.exit(f"pseudo_label.py: error: {error}")
