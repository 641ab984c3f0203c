#!/usr/bin/env python3
"""The ten-minute demo: a plain baseline and SSPS on MiniVox, on a CPU.

Runs the recipe's own scripts, in order, on the embedded synthetic corpus:

1. ``python -m speechbrain_ssps.minivox`` generates a VoxCeleb-shaped corpus
   and its synthetic MUSAN/RIR augmentation folders (skipped when they
   already exist); every training view is augmented from them, as the
   paper does with the real MUSAN and RIRs;
2. ``train.py hparams/minivox_simclr.yaml`` prepares the manifests and
   trains the plain baseline (per-epoch progress is printed);
3. ``train.py hparams/minivox_simclr_ssps.yaml --continue_from=...``
   continues the baseline's checkpoint at ``ssps_start_epoch - 1``, fills
   SSPS's queues in one eval-mode pass (``--ssps_fill=pass``, the authors'
   way) and trains the last epochs with SSPS (the same base model, so the
   two rows compare exactly what SSPS adds);
4. ``export.py`` writes folders that SpeechBrain's ``SpeakerRecognition``
   loads offline;
5. ``verify.py hparams/verification.yaml`` scores the MiniVox trial list for
   both models (EER, minDCF, DET curve, score histogram, t-SNE of the test
   embeddings);
6. an inference example through ``SpeakerRecognition.from_hparams``;

then prints the two models side by side with the SSPS diagnostics, and
writes them to ``<output_folder>/demo_results.json``.

To run (from anywhere)::

    python recipes/VoxCeleb/SSPS/minivox_demo.py [--framework dino]

Authors
 * speechbrain-ssps contributors
"""

import argparse
import json
import os
import subprocess
import sys
import time

# The recipe folder is on the path when a script runs (as for train.py's
# voxceleb_prepare).
from demo_summary import (
    continuation_line,
    print_table,
    summary_row,
    verdict,
)

RECIPE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(RECIPE)))

# The demo corpus: 30 training speakers x 10 videos x 5 utterances of 2-4 s
# (1,500 utterances; the sessions and utterances per speaker of the MiniVox
# regime benchmark), 12 test speakers for the trial list. Of three corpora
# of 2,000 utterances (60 x 8 x 4, 50 x 10 x 4, 40 x 10 x 5), 40 x 10 x 5
# gave SSPS's pseudo-positives the anchor's speaker most often at the SSPS
# start (64 % against 51-53 %), the criterion fixed before their SSPS
# results were read. It took 12.0 min on two idle cores, so the demo keeps
# its proportions with fewer speakers: 30 took 10.3 min (baseline 14.2 %
# EER), 25 took 8.7 min but its baseline fell to 25.0 % (the issue fixes
# the corpus on the baseline, never on SSPS). 30 it is, and SSPS fills its
# queues in a pass instead of a training epoch, which saves that epoch.
CORPUS = {
    "speakers": 30,
    "videos": 10,
    "utterances": 5,
    "test-speakers": 12,
    "seed": 0,
    "min-duration": 2.0,
    "max-duration": 4.0,
    "channel-strength": 0.25,
}

# The plain and the SSPS yaml of each framework.
YAMLS = {
    "simclr": ("minivox_simclr.yaml", "minivox_simclr_ssps.yaml"),
    "dino": ("minivox_dino.yaml", "minivox_dino_ssps.yaml"),
}

# The budget, by the rule of the MiniVox regime benchmark (recipe README):
# SSPS over the last quarter of training, K = the number of training
# sessions (videos), |Q'| = one epoch of utterances, a reference crop twice
# the 1.2 s view crop, the queues filled by one eval-mode pass at the SSPS
# start (the authors' way; the SSPS run then continues the baseline's
# epoch E - 1). Validation every 4 epochs (a pass takes ~3 s).
EPOCHS = 16
SSPS_START = 13
VALID_EVERY = 4


def budget(corpus, epochs=EPOCHS, ssps_start=SSPS_START):
    """train.py overrides shared by both runs, and those of the SSPS run.

    Examples
    --------
    >>> shared, ssps = budget(CORPUS)
    >>> shared[:2]
    ['--number_of_epochs=16', '--schedule_epochs=16']
    >>> ssps[:2]
    ['--ssps_start_epoch=13', '--ssps_num_clusters=300']
    """
    videos = int(corpus["speakers"]) * int(corpus["videos"])
    utterances = videos * int(corpus["utterances"])
    shared = [
        f"--number_of_epochs={epochs}",
        f"--schedule_epochs={epochs}",
        f"--valid_every={VALID_EVERY}",
    ]
    ssps = [
        f"--ssps_start_epoch={ssps_start}",
        f"--ssps_num_clusters={videos}",
        f"--ssps_queue_size={utterances}",
        "--ref_crop_seconds=2.4",
        "--ssps_fill=pass",
    ]
    return shared, ssps


def continued_epoch(ssps_args, ssps_start):
    """The baseline epoch that the SSPS run continues (train.py's rule).

    Examples
    --------
    >>> continued_epoch(["--ssps_fill=pass"], 13)
    12
    >>> continued_epoch(["--ssps_fill=pass", "--ssps_fill=epoch"], 13)
    11
    """
    from speechbrain_ssps.queue_filling import last_plain_epoch

    fill = "epoch"
    for arg in ssps_args:
        if arg.startswith("--ssps_fill="):
            fill = arg.split("=", 1)[1]
    return last_plain_epoch(ssps_start, fill)


def parse_corpus(overrides):
    """``CORPUS`` with ``key=value,...`` overrides (keys as in CORPUS).

    Examples
    --------
    >>> parse_corpus("speakers=8,videos=2")["speakers"]
    8
    """
    from speechbrain_ssps.minivox.options import override_options

    try:
        return override_options(CORPUS, overrides, "--corpus")
    except ValueError as err:
        raise SystemExit(str(err)) from None


def split_overrides(overrides):
    """Extra train.py options: (for both runs, for the SSPS run only).

    ``--ssps_*``, ``--dino_queue`` and ``--ref_crop_seconds`` exist in the
    SSPS yaml only.

    Examples
    --------
    >>> split_overrides(["--lr=0.002", "--ssps_num_neighbors=2"])
    (['--lr=0.002'], ['--ssps_num_neighbors=2'])
    """
    ssps_keys = ("--ssps_", "--dino_queue", "--ref_crop_seconds")
    ssps_only = [o for o in overrides if o.startswith(ssps_keys)]
    return [o for o in overrides if o not in ssps_only], ssps_only


def merge_options(defaults, extra):
    """``defaults`` with the ``--key=value`` options of ``extra`` replacing
    those of the same key (a key given twice is an error in hyperpyyaml).

    Examples
    --------
    >>> merge_options(["--lr=0.1", "--seed=1"], ["--lr=0.2", "--debug"])
    ['--seed=1', '--lr=0.2', '--debug']
    """
    keys = {option.split("=", 1)[0] for option in extra}
    kept = [o for o in defaults if o.split("=", 1)[0] not in keys]
    return kept + list(extra)


# A cap on the threads of a step: small-op training gains little from many
# threads (measured here: 2 threads against 1 only, on 2 cores).
DEMO_THREADS = 4


def demo_threads(cpus=None):
    """Torch threads of each step: the machine's cores, at most 4.

    Examples
    --------
    >>> demo_threads(2), demo_threads(16), demo_threads(1)
    (2, 4, 1)
    """
    cpus = os.cpu_count() if cpus is None else cpus
    return max(1, min(DEMO_THREADS, cpus or 1))


def step_threads():
    """``OMP_NUM_THREADS`` of every step: the user's, else
    :func:`demo_threads`."""
    return os.environ.get("OMP_NUM_THREADS", str(demo_threads()))


def run(cmd, cwd=REPO):
    """Runs one step, streaming its output; stops the demo if it fails.

    The steps run one after the other, so each gets all cores (at most
    ``DEMO_THREADS``) unless ``OMP_NUM_THREADS`` is set: on the 2-core
    machine an epoch takes ~22 s on two threads against ~33 s on one.
    """
    print(f"\n$ {' '.join(cmd)}", flush=True)
    start = time.time()
    env = dict(os.environ, OMP_NUM_THREADS=step_threads())
    result = subprocess.run(cmd, cwd=cwd, env=env)
    if result.returncode != 0:
        sys.exit(f"step failed ({result.returncode}): {' '.join(cmd)}")
    return time.time() - start


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
    print(f"\nSpeakerRecognition.verify_files ({export_folder}):")
    for label in ("1", "0"):
        a, b = examples[label]
        score, _ = model.verify_files(wav_of[a], wav_of[b])
        kind = "same speaker" if label == "1" else "different speakers"
        print(f"  {kind:18s} score={float(score):+.3f}  {a} vs {b}")
    emb = model.encode_batch(torch.zeros(1, 16000))
    print(f"  encode_batch: embedding of shape {tuple(emb.shape)}")


def train_export_verify(py, yaml, data, out, augmentation, overrides, tsne):
    """Trains one run, exports it and verifies it; returns the timings."""
    timings = {}
    timings["training"] = run(
        [
            py,
            "train.py",
            f"hparams/{yaml}",
            f"--data_folder={data}",
            f"--output_folder={out}",
            f"--musan_folder={augmentation}/musan",
            f"--rir_folder={augmentation}/RIRS_NOISES",
            "--noprogressbar",
            *overrides,
        ],
        cwd=RECIPE,
    )
    timings["export"] = run([py, "export.py", out], cwd=RECIPE)
    timings["verification"] = run(
        [
            py,
            "verify.py",
            "hparams/verification.yaml",
            f"--export_folder={out}/export",
            f"--prep_folder={out}/save",
            f"--output_folder={out}/verification",
            f"--make_tsne={tsne}",
        ],
        cwd=RECIPE,
    )
    return timings


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--framework", choices=sorted(YAMLS), default="simclr")
    parser.add_argument(
        "--data_folder", default=os.path.join(REPO, "data", "minivox_demo")
    )
    parser.add_argument(
        "--output_folder",
        default=None,
        help="default: results/minivox_demo/<framework>",
    )
    parser.add_argument(
        "--corpus",
        default="",
        help="overrides of the demo corpus, e.g. 'speakers=20,videos=4'",
    )
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument(
        "--ssps_start_epoch",
        type=int,
        default=SSPS_START,
        help="SSPS from this epoch; the baseline's epoch E - 1 is continued",
    )
    args, train_overrides = parser.parse_known_args(argv)
    if not 3 <= args.ssps_start_epoch <= args.epochs:
        parser.error(
            f"--ssps_start_epoch={args.ssps_start_epoch} must be between 3 "
            f"and --epochs={args.epochs} (epoch E - 1 fills the queues)"
        )
    corpus = parse_corpus(args.corpus)
    out = os.path.abspath(
        args.output_folder
        or os.path.join(REPO, "results", "minivox_demo", args.framework)
    )
    data = os.path.abspath(args.data_folder)
    augmentation = data + "_augmentation"
    py = sys.executable
    start = time.time()
    shared, ssps_args = budget(corpus, args.epochs, args.ssps_start_epoch)
    extra_shared, extra_ssps = split_overrides(train_overrides)
    # The user's options replace the demo's of the same key.
    shared = merge_options(shared, extra_shared)
    ssps_args = merge_options(ssps_args, extra_ssps)
    continued = continued_epoch(ssps_args, args.ssps_start_epoch)
    plain_yaml, ssps_yaml = YAMLS[args.framework]
    base_out = os.path.join(out, "baseline")
    ssps_out = os.path.join(out, "ssps")

    timings = {}
    timings["corpus"] = run(
        [py, "-m", "speechbrain_ssps.minivox", "--out", data]
        + [f"--{k}={v}" for k, v in corpus.items()]
        + ["--augmentation", augmentation]
    )
    # The baseline keeps every epoch checkpoint from ssps_start_epoch - 2 on.
    keep = args.epochs - args.ssps_start_epoch + 3
    base_t = train_export_verify(
        py,
        plain_yaml,
        data,
        base_out,
        augmentation,
        merge_options([f"--keep_checkpoints={keep}"], shared),
        tsne=False,
    )
    ssps_t = train_export_verify(
        py,
        ssps_yaml,
        data,
        ssps_out,
        augmentation,
        shared + ssps_args + [f"--continue_from={base_out}/save"],
        tsne=True,
    )
    for key in base_t:
        timings[key] = base_t[key] + ssps_t[key]
    inference_example(
        os.path.join(ssps_out, "export"), os.path.join(ssps_out, "save")
    )

    rows = {"baseline": summary_row(base_out), "ssps": summary_row(ssps_out)}
    total = time.time() - start
    print(f"\n=== MiniVox demo: {args.framework}, baseline vs SSPS ===")
    print_table(rows)
    print(
        "\n" + continuation_line(continued, args.ssps_start_epoch, args.epochs)
    )
    print(verdict(rows))
    print(
        f"Plots: {ssps_out}/verification (DET, scores, t-SNE); curves: "
        f"{base_out}/curves.png, {ssps_out}/curves.png"
    )
    print(
        "Time: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
        + f"; total {total / 60:.1f} min"
    )
    record = {
        "framework": args.framework,
        "corpus": corpus,
        "epochs": args.epochs,
        "ssps_start_epoch": args.ssps_start_epoch,
        "train_overrides": {
            "both": shared,
            "ssps": ssps_args,
        },
        "results": rows,
        "verdict": verdict(rows),
        "seconds": {**timings, "total": total},
        "threads": step_threads(),
        "cpus": os.cpu_count(),
    }
    with open(
        os.path.join(out, "demo_results.json"), "w", encoding="utf-8"
    ) as f:
        json.dump(record, f, indent=2)


if __name__ == "__main__":
    main()
