#!/usr/bin/env python3
"""The ten-minute demo: SSPS end to end on MiniVox, on a CPU.

Runs the recipe's own scripts, in order, on the embedded synthetic corpus:

1. ``python -m speechbrain_ssps.minivox`` generates a VoxCeleb-shaped corpus
   and its synthetic MUSAN/RIR augmentation folders (skipped when they
   already exist); every training view is augmented from them, as the
   paper does with the real MUSAN and RIRs;
2. ``train.py hparams/minivox_dino_ssps.yaml`` prepares the manifests and
   trains DINO, then DINO + SSPS (per-epoch progress is printed);
3. ``export.py`` writes a folder that SpeechBrain's ``SpeakerRecognition``
   loads offline;
4. ``verify.py hparams/verification.yaml`` scores the MiniVox trial list
   (EER, minDCF, DET curve, score histogram, t-SNE of test embeddings);
5. an inference example through ``SpeakerRecognition.from_hparams``;

then prints a short table of the results and the SSPS diagnostics.

To run (from anywhere)::

    python recipes/VoxCeleb/SSPS/minivox_demo.py \
        [--yaml minivox_simclr_ssps.yaml]

Authors
 * speechbrain-ssps contributors
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time

RECIPE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(RECIPE)))

# The demo corpus (the quality benchmark's): 20 training speakers x 8 videos
# x 4 utterances of 2-4 s, and 10 test speakers for the trial list.
CORPUS = {
    "speakers": 20,
    "videos": 8,
    "utterances": 4,
    "test-speakers": 10,
    "seed": 0,
    "channel-strength": 0.5,
}


def run(cmd, cwd=REPO):
    """Runs one step, streaming its output; stops the demo if it fails."""
    print(f"\n$ {' '.join(cmd)}", flush=True)
    start = time.time()
    result = subprocess.run(cmd, cwd=cwd)
    if result.returncode != 0:
        sys.exit(f"step failed ({result.returncode}): {' '.join(cmd)}")
    return time.time() - start


def last_epoch_stats(train_log):
    """The ``train <name>: <value>`` pairs of the last line of the log."""
    with open(train_log, encoding="utf-8") as f:
        lines = [line for line in f if line.strip()]
    pairs = re.findall(r"train (\w+): ([-+0-9.eE]+)", lines[-1])
    return {k: float(v) for k, v in pairs}


def inference_example(export_folder, prep_folder):
    """Scores one target and one non-target trial with the inference API."""
    import csv

    import torch
    from speechbrain.inference.speaker import SpeakerRecognition
    from speechbrain.utils.fetching import FetchConfig

    model = SpeakerRecognition.from_hparams(
        source=export_folder,
        savedir=None,
        fetch_config=FetchConfig(allow_network=False),
        run_opts={"device": "cpu"},
    )
    with open(os.path.join(prep_folder, "test.csv"), encoding="utf-8") as f:
        wav_of = {row["ID"]: row["wav"] for row in csv.DictReader(f)}
    examples = {}
    trials = os.path.join(prep_folder, "trials_O.txt")
    with open(trials, encoding="utf-8") as f:
        for line in f:
            label, a, b = line.split()
            examples.setdefault(label, (a, b))
    print("\nSpeakerRecognition.verify_files on two MiniVox trials:")
    for label in ("1", "0"):
        a, b = examples[label]
        score, _ = model.verify_files(wav_of[a], wav_of[b])
        kind = "same speaker" if label == "1" else "different speakers"
        print(f"  {kind:18s} score={float(score):+.3f}  {a} vs {b}")
    emb = model.encode_batch(torch.zeros(1, 16000))
    print(f"  encode_batch: embedding of shape {tuple(emb.shape)}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--yaml",
        default="minivox_dino_ssps.yaml",
        help="a hparams/minivox_*.yaml",
    )
    parser.add_argument(
        "--data_folder", default=os.path.join(REPO, "data", "minivox")
    )
    parser.add_argument(
        "--output_folder",
        default=None,
        help="default: results/minivox_demo/<yaml name>",
    )
    args, train_overrides = parser.parse_known_args(argv)
    name = os.path.splitext(args.yaml)[0]
    out = os.path.abspath(
        args.output_folder
        or os.path.join(REPO, "results", "minivox_demo", name)
    )
    data = os.path.abspath(args.data_folder)
    py = sys.executable
    timings = {}
    start = time.time()

    corpus = [f"--{k}={v}" for k, v in CORPUS.items()]
    augmentation = data + "_augmentation"
    timings["corpus"] = run(
        [py, "-m", "speechbrain_ssps.minivox", "--out", data, *corpus]
        + ["--augmentation", augmentation]
    )
    timings["training"] = run(
        [
            py,
            "train.py",
            f"hparams/{args.yaml}",
            f"--data_folder={data}",
            f"--output_folder={out}",
            f"--musan_folder={augmentation}/musan",
            f"--rir_folder={augmentation}/RIRS_NOISES",
            "--noprogressbar",
            # Validation every 3 epochs (each pass ~10 s here): the demo
            # stays within its 10 minutes.
            "--valid_every=3",
            *train_overrides,
        ],
        cwd=RECIPE,
    )
    timings["export"] = run([py, "export.py", out], cwd=RECIPE)
    verification = os.path.join(out, "verification")
    timings["verification"] = run(
        [
            py,
            "verify.py",
            "hparams/verification.yaml",
            f"--export_folder={out}/export",
            f"--prep_folder={out}/save",
            f"--output_folder={verification}",
            "--make_tsne=True",
        ],
        cwd=RECIPE,
    )
    inference_example(os.path.join(out, "export"), os.path.join(out, "save"))

    with open(
        os.path.join(verification, "results.json"), encoding="utf-8"
    ) as f:
        results = json.load(f)
    stats = last_epoch_stats(os.path.join(out, "train_log.txt"))
    rows = [
        ("EER (MiniVox-O)", f"{results['O']['eer_percent']:.2f} %"),
        ("minDCF (p=0.01)", f"{results['O']['min_dcf']:.4f}"),
    ]
    for key, label in (
        ("coverage", "SSPS coverage"),
        ("speaker_acc", "pseudo-positive speaker acc."),
        ("video_acc", "pseudo-positive video acc."),
        ("nmi_speaker", "k-means NMI (speaker)"),
        ("nmi_video", "k-means NMI (video)"),
    ):
        if key in stats:
            rows.append((label, f"{stats[key]:.3f}"))
    total = time.time() - start
    print(f"\n=== MiniVox demo: {args.yaml} ===")
    for label, value in rows:
        print(f"| {label:30s} | {value:>10s} |")
    print("\nSSPS diagnostics are those of the last training epoch.")
    print(f"Plots: {verification}; training curves: {out}/curves.png")
    print(
        "Time: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
        + f"; total {total / 60:.1f} min"
    )


if __name__ == "__main__":
    main()
