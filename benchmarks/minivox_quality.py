"""MiniVox quality benchmark: plain baseline vs SSPS vs label oracle.

For DINO and SimCLR, trains on one generated MiniVox corpus, with the same
budget (epochs, schedule, model, crops) and the same seeds:

- ``baseline``: the framework alone (same-utterance positives);
- ``ssps``: SSPS from ``ssps_start_epoch`` (no labels used for training);
- ``oracle``: positives of the same speaker from another video, drawn with
  the labels from ``ssps_start_epoch`` (the paper's Table 1 upper bound);
- ``ssps_logits`` (DINO only): SSPS with the paper's full-logit positive
  queue instead of the default memory-light bottleneck queue;
- ``ssps_fill_pass``: SSPS whose queues are filled by one eval-mode pass at
  the start of its first epoch (``--ssps_fill=pass``, the authors' buffer
  creation) instead of by the training steps of the epoch before;
- ``ssps_paper``: both of the authors' choices, the fill pass and a
  positive queue of K entries (|Q'| = K, the paper's 25,000 = K) instead of
  one epoch (|Q'| = N);
- ``ssps_fn_mask`` (SimCLR only): SSPS with NT-Xent's negatives from the
  anchor's own k-means cluster masked (``ssps_mask_false_negatives``).

The plain phase is shared: every baseline is trained first, keeping each
epoch's checkpoint, and SSPS, the oracle and ``ssps_logits`` continue from
its checkpoint at ``ssps_start_epoch - 2`` (train.py's ``continue_from``;
``ssps_start_epoch - 1`` for the fill-pass conditions, whose epoch before
SSPS is a plain one), so all conditions of a seed start SSPS from the same
base model and the plain epochs are trained once (``--independent-plain``:
every run from scratch). Every run augments its views with MiniVox's
synthetic MUSAN and RIR folders (generated once under the work folder with
another seed than the corpus; ``--no-augmentation`` turns them off), as the
paper does with the real ones.

Each run is ``train.py`` + ``export.py`` + ``verify.py`` (cosine scoring of
the MiniVox trial list). The benchmark then embeds every test utterance with
the exported encoder and runs spherical k-means with K = number of test
speakers on these embeddings; NMI(speaker) and NMI(video) compare its
clusters with the test labels (same procedure for every condition).
Pseudo-positive speaker/video accuracy is the last training epoch's value
from ``train_log.txt`` (SSPS and oracle runs only; ``*_first``: the first
SSPS epoch). ``premise`` in results.json is SSPS's premise check on each
framework's trained baseline (first seed): the share of NCS pseudo-positives
from the anchor's speaker and from its video at the benchmark's K
(``benchmarks/ssps_positives.py``; SSPS.md's premise: >= 50 % right speaker
and <= 10 % same video is where SSPS is expected to pay).

Run::

    # CPU, 2 cores: a SimCLR run takes about 15 min (630 steps), a DINO
    # run about 30 min (1,260 steps); two at a time
    python benchmarks/minivox_quality.py --seeds 3 --jobs 2 --out results.json
    python benchmarks/minivox_quality.py --seeds 1 --frameworks simclr \\
        --conditions baseline,oracle --corpus data/minivox_bench
    # One GPU: several small runs share it. On an H100 with 16 cores,
    # --jobs 4 --num-workers 2 ran the 4 DINO conditions of one seed in
    # 3 min 20 s (0.14 s/step each); with --jobs 18 --num-workers 0
    # a DINO step took 0.33-0.38 s.
    python benchmarks/minivox_quality.py --device cuda:0 --jobs 4 \\
        --num-workers 2 --out results.json

``--corpus-params`` and ``--train-args`` change the corpus and the budget
(both are recorded in results.json); calibrate them with the baseline and
the oracle only. ``benchmarks/ssps_positives.py`` then tells, for a trained
baseline, how often SSPS's pseudo-positives would have the anchor's speaker
for each K.

Writes ``results.json`` (mean and sd over seeds per framework and
condition, every run's numbers, the corpus parameters and the budget) and
``results.md`` (a markdown table for the recipe README) next to it.
"""

import argparse
import csv
import json
import os
import re
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPE = os.path.join(REPO, "recipes", "VoxCeleb", "SSPS")

# The benchmark corpus (fixed; recorded in results.json), calibrated with
# the SimCLR baseline and oracle only (1 seed each, see the recipe README):
# 20 speakers x 8 videos x 4 utterances at channel 0.5 left both baselines
# at 40-42 % EER (near chance, below raw filterbank statistics); 60 speakers
# x 6 x 3 at channel 0.35 / 0.25 gave SimCLR 25.8 / 24.9 % with the oracle
# at 10.1 / 10.4 %; 150 speakers x 6 x 3 at channel 0.25 gave 18.5 % with
# the oracle at 2.9 %. More speakers matter most: with 20 training speakers
# a batch holds several false negatives and nothing generalises to unseen
# test speakers.
CORPUS = {
    "speakers": 150,
    "videos": 6,
    "utterances": 3,
    "test-speakers": 20,
    "seed": 0,
    "min-duration": 2.0,
    "max-duration": 4.0,
    "channel-strength": 0.25,
    "session-variability": 1.0,
}

# Training budget (train.py overrides for every condition of a framework;
# --train-args replaces values key by key). The plain phase is 2/3 of the
# epochs, SSPS (or the oracle) the last third. On the corpus above an epoch
# is 42 SimCLR steps (batch 64) or 84 DINO steps (batch 32).
BUDGET = {
    "dino": {
        "number_of_epochs": 15,
        "schedule_epochs": 15,
        "ssps_start_epoch": 11,
    },
    "simclr": {
        "number_of_epochs": 15,
        "schedule_epochs": 15,
        "ssps_start_epoch": 11,
    },
}
# MoCo, VICReg and SwAV: SimCLR's budget (batch 64, as their MiniVox yamls).
for _name in ("moco", "vicreg", "swav"):
    BUDGET[_name] = dict(BUDGET["simclr"])

# The augmentation folders use the corpus seed plus this offset, so that
# their babble voices are not training speakers.
AUGMENTATION_SEED_OFFSET = 7919

FRAMEWORKS = ("dino", "simclr", "moco", "vicreg", "swav")
# What runs without --frameworks (the paper's two main frameworks).
DEFAULT_FRAMEWORKS = ("dino", "simclr")
# Torch threads per run (OMP_NUM_THREADS unless already set): on a loaded
# 2-core machine two threads per process were 4-10x slower than one.
DEFAULT_THREADS = 1
CONDITIONS = (
    "baseline",
    "ssps",
    "oracle",
    "ssps_logits",
    "ssps_fill_pass",
    "ssps_paper",
    "ssps_fn_mask",
)
# Conditions that exist for one framework only (skipped for the others).
FRAMEWORK_ONLY = {"ssps_logits": "dino", "ssps_fn_mask": "simclr"}

# Every run of a framework uses the SSPS yaml's budget; the baseline uses the
# plain yaml with the same number of epochs and schedule.
YAMLS = {
    "dino": ("minivox_dino.yaml", "minivox_dino_ssps.yaml"),
    "simclr": ("minivox_simclr.yaml", "minivox_simclr_ssps.yaml"),
    "moco": ("minivox_moco.yaml", "minivox_moco_ssps.yaml"),
    "vicreg": ("minivox_vicreg.yaml", "minivox_vicreg_ssps.yaml"),
    "swav": ("minivox_swav.yaml", "minivox_swav_ssps.yaml"),
}

METRICS = (
    "eer",
    "mindcf",
    "nmi_speaker",
    "nmi_video",
    "pp_speaker_acc",
    "pp_video_acc",
    "pp_speaker_acc_first",
    "pp_video_acc_first",
    "coverage",
    "kmeans_nmi_speaker",
    "kmeans_nmi_video",
    "train_seconds",
)


def run(cmd, cwd, log_file):
    """Runs one command, its output appended to ``log_file``."""
    start = time.time()
    with open(log_file, "a", encoding="utf-8") as log:
        log.write(f"\n$ {' '.join(cmd)}\n")
        log.flush()
        result = subprocess.run(cmd, cwd=cwd, stdout=log, stderr=log)
    if result.returncode != 0:
        raise RuntimeError(
            f"failed ({result.returncode}, see {log_file}): {' '.join(cmd)}"
        )
    return time.time() - start


def seed_list(num_seeds, offset=0):
    """The benchmark seeds: ``1986 + offset + i``."""
    return [1986 + offset + i for i in range(num_seeds)]


def corpus_params(overrides=""):
    """``CORPUS`` with ``key=value,...`` overrides (keys as in CORPUS)."""
    from speechbrain_ssps.minivox.options import override_options

    return override_options(CORPUS, overrides, "--corpus-params")


def make_corpus(folder, log_file, params):
    """Generates the corpus (minivox skips it when already complete)."""
    args = [f"--{k}={v}" for k, v in params.items()]
    cmd = [sys.executable, "-m", "speechbrain_ssps.minivox", "--out", folder]
    return run(cmd + args, REPO, log_file)


def make_augmentation(folder, log_file, corpus_seed):
    """The MiniVox MUSAN/RIR folders (another seed than the corpus).

    Returns
    -------
    info : dict
        Where they are and how they were made (for results.json).
    args : list of str
        The ``--musan_folder`` / ``--rir_folder`` overrides of train.py.
    """
    seed = AUGMENTATION_SEED_OFFSET + int(corpus_seed)
    cmd = [
        sys.executable,
        "-m",
        "speechbrain_ssps.minivox.augmentation",
        "--out",
        folder,
        "--seed",
        str(seed),
    ]
    seconds = run(cmd, REPO, log_file)
    musan = os.path.join(folder, "musan")
    rir = os.path.join(folder, "RIRS_NOISES")
    info = {"folder": folder, "seed": seed, "seconds": seconds}
    return info, [f"--musan_folder={musan}", f"--rir_folder={rir}"]


def premise_check(work, framework, seed, overrides):
    """SSPS's premise on the trained baseline of one seed.

    The share of pseudo-positives from the anchor's speaker and from its
    video that SSPS would draw (its K, NCS with M = 1, one draw per
    utterance) on whole-utterance embeddings of the training set by the
    baseline's exported encoder; see ``benchmarks/ssps_positives.py``.
    """
    here = os.path.dirname(os.path.abspath(__file__))
    if here not in sys.path:
        sys.path.insert(0, here)
    import ssps_positives  # noqa: E402 (a sibling script)

    out = os.path.join(work, framework, "baseline", str(seed))
    rows = ssps_positives.load_rows(os.path.join(out, "save", "train.csv"))
    speakers = ssps_positives.codes(r["spk_id"] for r in rows)
    videos = ssps_positives.codes(r["video_id"] for r in rows)
    x = ssps_positives.embed(os.path.join(out, "export"), rows)
    k = int(overrides["ssps_num_clusters"])
    stats = ssps_positives.pseudo_positive_stats(
        x, speakers, videos, k, "ncs", 1, seed
    )
    return {
        "model": f"{framework} baseline, seed {seed}, last epoch",
        "K": k,
        "sampling": "ncs",
        "M": 1,
        **ssps_positives.label_references(x, speakers, videos),
        **stats,
    }


def parse_overrides(train_args):
    """``["--key=value", ...]`` as an ordered dict (a later key wins)."""
    overrides = {}
    for arg in train_args:
        key, sep, value = arg.removeprefix("--").partition("=")
        if not arg.startswith("--") or not sep or not key:
            raise ValueError(f"--train-args: {arg!r} is not --key=value")
        overrides[key] = value
    return overrides


def run_overrides(framework, params, train_args=()):
    """train.py overrides shared by every condition of ``framework``.

    The SSPS queue holds one epoch of utterances and K is half the number
    of training videos (both from the corpus), then ``BUDGET``, then
    ``train_args`` (each replacing earlier values of the same key).
    """
    videos = int(params["speakers"]) * int(params["videos"])
    overrides = {
        "ssps_queue_size": str(videos * int(params["utterances"])),
        "ssps_num_clusters": str(max(2, videos // 2)),
    }
    overrides.update({k: str(v) for k, v in BUDGET[framework].items()})
    overrides.update(parse_overrides(train_args))
    return overrides


def condition_args(framework, condition, overrides):
    """(yaml, train.py overrides) of one condition."""
    plain, ssps_yaml = YAMLS[framework]
    args = [f"--{k}={v}" for k, v in overrides.items()]
    if condition == "baseline":
        # The plain yaml has no SSPS: same budget, no ssps_* keys (nor the
        # reference crop, which only SSPS reads).
        return plain, [
            f"--{k}={v}"
            for k, v in overrides.items()
            if not k.startswith("ssps_") and k != "ref_crop_seconds"
        ]
    if condition == "ssps":
        return ssps_yaml, args
    if condition == "oracle":
        return ssps_yaml, args + ["--ssps_oracle=True"]
    if condition == "ssps_fill_pass":
        # The queues filled by one eval-mode pass (the authors' way).
        return ssps_yaml, args + ["--ssps_fill=pass"]
    if condition == "ssps_paper":
        # The authors' way on both counts: the queues filled by a pass and
        # |Q'| = K (the paper: 25,000 each), so a share of the anchors
        # keeps its same-utterance positive (coverage < 1).
        paper = {**overrides, "ssps_queue_size": overrides["ssps_num_clusters"]}
        args = [f"--{k}={v}" for k, v in paper.items()]
        return ssps_yaml, args + ["--ssps_fill=pass"]
    if condition == "ssps_fn_mask":
        if framework != "simclr":
            raise ValueError("ssps_fn_mask only applies to simclr")
        # NT-Xent negatives from the anchor's own k-means cluster masked
        # (the authors' ssps_assignments; off in the plain ssps condition).
        return ssps_yaml, args + ["--ssps_mask_false_negatives=True"]
    if condition == "ssps_logits":
        if framework != "dino":
            raise ValueError("ssps_logits only applies to dino")
        # SSPS's positive width follows from the queue (train.py).
        args = [a for a in args if not a.startswith("--ssps_pos_dim=")]
        return ssps_yaml, args + ["--dino_queue=logits"]
    raise ValueError(f"unknown condition {condition!r}")


def epoch_stats(train_log):
    """``{epoch: {name: value}}`` of the log's ``train <name>: <value>``."""
    with open(train_log, encoding="utf-8") as f:
        lines = [line for line in f if line.strip()]
    stats = {}
    for line in lines:
        epoch = re.match(r"epoch: (\d+)", line)
        pairs = re.findall(r"train (\w+): ([-+0-9.eE]+)", line)
        if epoch:
            stats[int(epoch.group(1))] = {k: float(v) for k, v in pairs}
    return stats


def embedding_nmi(export_folder, test_csv, seed):
    """NMI of k-means (K = test speakers) on the test embeddings.

    Returns
    -------
    dict
        ``nmi_speaker`` and ``nmi_video`` against the test labels.
    """
    import torch
    from sklearn.metrics import normalized_mutual_info_score

    from speechbrain_ssps.embeddings import embed_utterances
    from speechbrain_ssps.inference import load_exported
    from speechbrain_ssps.kmeans import spherical_kmeans

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", 1)))
    with open(test_csv, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    encoder = load_exported(export_folder, "cpu")
    paths = {r["ID"]: r["wav"] for r in rows}
    emb = embed_utterances(encoder, paths, num_workers=1)
    x = torch.stack([emb[r["ID"]].flatten() for r in rows]).float()
    speakers = [r["spk_id"] for r in rows]
    videos = [r["video_id"] for r in rows]
    k = len(set(speakers))
    # Best of 5 initialisations by the k-means objective (total cosine).
    best = None
    for init in range(5):
        res = spherical_kmeans(x, k, num_iters=30, seed=seed * 10 + init)
        score = float(res.similarities.sum())
        if best is None or score > best[0]:
            best = (score, res.assignments.numpy())
    pred = best[1]
    return {
        "nmi_speaker": float(normalized_mutual_info_score(speakers, pred)),
        "nmi_video": float(normalized_mutual_info_score(videos, pred)),
    }


def run_condition(
    framework,
    condition,
    seed,
    corpus,
    work,
    num_workers,
    overrides,
    device="cpu",
    share_plain=True,
    extra_args=(),
):
    """Trains, exports and verifies one (framework, condition, seed).

    With ``share_plain`` the baseline keeps every epoch's checkpoint and
    the other conditions continue from its checkpoint at
    ``ssps_start_epoch - 2`` (``continue_from``): the same base model, and
    the plain epochs trained once. ``extra_args`` go to every train.py.
    """
    out = os.path.join(work, framework, condition, str(seed))
    log_file = os.path.join(work, "logs", f"{framework}_{condition}_{seed}")
    os.makedirs(os.path.dirname(log_file), exist_ok=True)
    results_json = os.path.join(out, "verification", "results.json")
    yaml, extra = condition_args(framework, condition, overrides)
    extra = [*extra, *extra_args]
    if share_plain:
        extra += plain_sharing_args(framework, condition, seed, work, overrides)
    py = sys.executable
    train_seconds = None
    if not os.path.exists(results_json):
        train_seconds = run(
            [
                py,
                "train.py",
                f"hparams/{yaml}",
                f"--data_folder={corpus}",
                f"--output_folder={out}",
                f"--seed={seed}",
                f"--num_workers={num_workers}",
                f"--device={device}",
                "--noprogressbar",
                *extra,
            ],
            RECIPE,
            log_file,
        )
        run([py, "export.py", out], RECIPE, log_file)
        run(
            [
                py,
                "verify.py",
                "hparams/verification.yaml",
                f"--export_folder={out}/export",
                f"--prep_folder={out}/save",
                f"--output_folder={out}/verification",
                "--make_plots=False",
                "--num_workers=1",
                f"--device={device}",
            ],
            RECIPE,
            log_file,
        )
    with open(results_json, encoding="utf-8") as f:
        verification = json.load(f)["O"]
    row = {
        "seed": seed,
        "eer": float(verification["eer_percent"]),
        "mindcf": float(verification["min_dcf"]),
    }
    if train_seconds is not None:
        row["train_seconds"] = train_seconds
    row.update(
        embedding_nmi(
            os.path.join(out, "export"),
            os.path.join(out, "save", "test.csv"),
            seed,
        )
    )
    by_epoch = epoch_stats(os.path.join(out, "train_log.txt"))
    stats = by_epoch[max(by_epoch)]
    row["per_epoch"] = {str(e): by_epoch[e] for e in sorted(by_epoch)}
    if condition != "baseline":
        row["pp_speaker_acc"] = stats.get("speaker_acc")
        row["pp_video_acc"] = stats.get("video_acc")
        first = by_epoch.get(int(overrides["ssps_start_epoch"]), {})
        row["pp_speaker_acc_first"] = first.get("speaker_acc")
        row["pp_video_acc_first"] = first.get("video_acc")
        row["coverage"] = stats.get("coverage")
        if condition != "oracle":
            row["kmeans_nmi_speaker"] = stats.get("nmi_speaker")
            row["kmeans_nmi_video"] = stats.get("nmi_video")
    return row


def plain_sharing_args(framework, condition, seed, work, overrides):
    """train.py overrides that share the baseline's plain epochs.

    The baseline keeps all its epoch checkpoints; every other condition
    starts from the baseline's save folder (``--continue_from``), whose
    checkpoint at ``ssps_start_epoch - 2`` train.py copies (``- 1`` with
    ``--ssps_fill=pass``).
    """
    if condition == "baseline":
        return [f"--keep_checkpoints={overrides['number_of_epochs']}"]
    base = os.path.join(work, framework, "baseline", str(seed), "save")
    return [f"--continue_from={base}"]


def summarise(runs):
    """Mean and sd over seeds of every metric present in all runs."""
    summary = {"runs": runs, "num_seeds": len(runs)}
    for metric in METRICS:
        values = [r[metric] for r in runs if r.get(metric) is not None]
        if not values or len(values) != len(runs):
            continue
        summary[f"{metric}_mean"] = statistics.fmean(values)
        summary[f"{metric}_sd"] = (
            statistics.stdev(values) if len(values) > 1 else 0.0
        )
    return summary


def fmt(summary, metric, scale=1.0, digits=2):
    """``mean ± sd`` of one metric, or a dash."""
    if f"{metric}_mean" not in summary:
        return "–"
    mean = summary[f"{metric}_mean"] * scale
    sd = summary[f"{metric}_sd"] * scale
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


def markdown_table(results):
    """The README table: one row per (framework, condition)."""
    lines = [
        "| Framework | Positives | EER (%) | minDCF | NMI spk | NMI video "
        "| PP spk acc (%) | PP video acc (%) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    names = {
        "baseline": "same utterance",
        "ssps": "SSPS",
        "oracle": "oracle (labels)",
        "ssps_logits": "SSPS, logit queue",
        "ssps_fill_pass": "SSPS, queues filled by a pass",
        "ssps_paper": "SSPS, filled by a pass, |Q'| = K",
        "ssps_fn_mask": "SSPS, same-cluster negatives masked",
    }
    most = max(
        (s.get("num_seeds", 0) for c in results.values() for s in c.values()),
        default=0,
    )
    for framework, conditions in results.items():
        for condition, s in conditions.items():
            name = names[condition]
            if s.get("num_seeds", most) < most:  # e.g. merged partial runs
                n = s["num_seeds"]
                name += f" ({n} seed{'s' if n > 1 else ''})"
            lines.append(
                f"| {framework} | {name} | {fmt(s, 'eer')} "
                f"| {fmt(s, 'mindcf', digits=3)} "
                f"| {fmt(s, 'nmi_speaker', digits=3)} "
                f"| {fmt(s, 'nmi_video', digits=3)} "
                f"| {fmt(s, 'pp_speaker_acc', 100, 1)} "
                f"| {fmt(s, 'pp_video_acc', 100, 1)} |"
            )
    return "\n".join(lines) + "\n"


PLOTTED = (
    ("valid_eer", "validation EER (%), MiniVox-O"),
    ("speaker_acc", "pseudo-positive speaker acc."),
    ("video_acc", "pseudo-positive video acc."),
    ("nmi_speaker", "k-means NMI with speakers"),
    ("nmi_video", "k-means NMI with videos"),
    ("loss", "training loss"),
)


def plot_epochs(results, framework, path, ssps_start):
    """Per-epoch training statistics of every condition of one framework.

    One panel per statistic of ``PLOTTED`` (from ``train_log.txt``: the
    validation pass, the SSPS diagnostics and the loss), one line per
    condition (mean over seeds), the first SSPS epoch marked; epochs that
    swapped no positive (queue filling) have no pseudo-positive accuracy.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    rows = (len(PLOTTED) + 2) // 3
    fig, axes = plt.subplots(rows, 3, figsize=(13, 3.3 * rows + 0.8))
    axes = list(axes.flat)
    for ax in axes[len(PLOTTED) :]:
        ax.set_visible(False)
    # One colour per condition in every panel.
    colours = {c: f"C{i}" for i, c in enumerate(CONDITIONS)}
    for ax, (key, title) in zip(axes, PLOTTED):
        for condition, summary in results[framework].items():
            if condition == "oracle" and key.startswith("nmi_"):
                continue  # its "clusters" are the labels themselves
            curves = {}
            for r in summary["runs"]:
                for epoch, stats in r.get("per_epoch", {}).items():
                    swapped = stats.get("coverage", 1.0) > 0
                    if key in stats and (swapped or "acc" not in key):
                        curves.setdefault(int(epoch), []).append(stats[key])
            if curves:
                epochs = sorted(curves)
                means = [statistics.fmean(curves[e]) for e in epochs]
                ax.plot(
                    epochs,
                    means,
                    marker=".",
                    color=colours[condition],
                    label=condition,
                )
        ax.axvline(ssps_start - 0.5, color="grey", linestyle=":", lw=1)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles, labels = axes[0].get_legend_handles_labels()
    for ax in axes[1 : len(PLOTTED)]:  # the union of the conditions
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=len(labels))
    fig.suptitle(f"MiniVox benchmark, {framework} (dotted: SSPS starts)")
    fig.tight_layout(rect=(0, 0.07, 1, 0.95))
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--seed-offset", type=int, default=0)
    parser.add_argument("--out", default="results.json")
    parser.add_argument(
        "--frameworks",
        default=",".join(DEFAULT_FRAMEWORKS),
        help=f"comma-separated, of {','.join(FRAMEWORKS)}",
    )
    parser.add_argument(
        "--conditions",
        default=",".join(CONDITIONS),
        help="ssps_logits is run for dino only, ssps_fn_mask for simclr",
    )
    parser.add_argument(
        "--corpus",
        default=None,
        help="corpus folder (generated there if missing; default: "
        "<work>/corpus)",
    )
    parser.add_argument(
        "--work",
        default=None,
        help="runs folder (default: next to --out); finished runs are reused",
    )
    parser.add_argument(
        "--corpus-params",
        default="",
        help="overrides of the benchmark corpus, e.g. "
        "'speakers=60,channel-strength=0.35' (recorded in results.json)",
    )
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument(
        "--device",
        default="cpu",
        help="train.py/verify.py device, e.g. cuda:0 (NMI embeds on cpu)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="runs trained at the same time (e.g. several small runs "
        "sharing one GPU); results do not depend on it",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_THREADS,
        help="torch threads per run (OMP_NUM_THREADS, unless set)",
    )
    parser.add_argument(
        "--independent-plain",
        action="store_true",
        help="train every condition from scratch instead of continuing "
        "SSPS and the oracle from the baseline's checkpoint",
    )
    parser.add_argument(
        "--no-augmentation",
        action="store_true",
        help="train without the MiniVox MUSAN/RIR augmentation folders",
    )
    parser.add_argument(
        "--train-args",
        default="",
        help="extra train.py overrides for every run, e.g. "
        "'--ssps_start_epoch=3' (recorded in results.json; use a new --work)",
    )
    args = parser.parse_args(argv)
    train_args = args.train_args.split()
    # Inherited by every train/export/verify subprocess.
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

    frameworks = [f for f in args.frameworks.split(",") if f]
    conditions = [c for c in args.conditions.split(",") if c]
    for name, given, known in (
        ("--frameworks", frameworks, FRAMEWORKS),
        ("--conditions", conditions, CONDITIONS),
    ):
        unknown = sorted(set(given) - set(known))
        if unknown or not given:
            parser.error(f"{name}: unknown or empty {unknown}; use {known}")
    out = os.path.abspath(args.out)
    work = os.path.abspath(args.work or os.path.splitext(out)[0] + "_runs")
    corpus = os.path.abspath(args.corpus or os.path.join(work, "corpus"))
    os.makedirs(work, exist_ok=True)
    seeds = seed_list(args.seeds, args.seed_offset)

    start = time.time()
    try:
        params = corpus_params(args.corpus_params)
    except ValueError as err:
        parser.error(str(err))
    corpus_seconds = make_corpus(
        corpus, os.path.join(work, "corpus.log"), params
    )
    augmentation, augmentation_args = None, []
    if not args.no_augmentation:
        augmentation, augmentation_args = make_augmentation(
            os.path.join(work, "augmentation"),
            os.path.join(work, "augmentation.log"),
            params["seed"],
        )
    # (framework, condition) pairs; the logit queue only exists for DINO.
    pairs = [
        (framework, condition)
        for framework in frameworks
        for condition in conditions
        if FRAMEWORK_ONLY.get(condition, framework) == framework
    ]
    overrides = {}
    for framework in frameworks:
        try:
            overrides[framework] = run_overrides(framework, params, train_args)
        except ValueError as err:
            parser.error(str(err))
    budget = {}
    for framework, condition in pairs:
        yaml, extra = condition_args(framework, condition, overrides[framework])
        budget[f"{framework}/{condition}"] = [yaml, *extra]
    # Seed-major order: an interrupted run has whole seeds done.
    tasks = [(f, c, seed) for seed in seeds for f, c in pairs]

    share = not args.independent_plain

    def one(task):
        framework, condition, seed = task
        print(f"{framework} {condition} seed {seed}: started", flush=True)
        row = run_condition(
            *task,
            corpus,
            work,
            args.num_workers,
            overrides[task[0]],
            args.device,
            share_plain=share,
            extra_args=augmentation_args,
        )
        print(f"{framework} {condition} seed {seed}: {row}", flush=True)
        return row

    # Shared plain phase: every baseline first (also those not reported),
    # then the conditions that continue from them.
    first = [(f, "baseline", seed) for seed in seeds for f in frameworks]
    first = first if share else [t for t in tasks if t[1] == "baseline"]
    rest = [t for t in tasks if t not in first]
    rows = {}
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for phase in (first, rest):
            rows.update(zip(phase, pool.map(one, phase)))
    premise = {
        f: premise_check(work, f, seeds[0], overrides[f]) for f in frameworks
    }
    results = {f: {} for f in frameworks}
    for framework, condition, seed in tasks:
        runs = results[framework].setdefault(condition, [])
        runs.append(rows[framework, condition, seed])
    results = {
        framework: {c: summarise(runs) for c, runs in by_condition.items()}
        for framework, by_condition in results.items()
    }

    report = {
        **results,
        "premise": premise,
        "corpus": params,
        "budget": budget,
        "plain_phase": "shared: SSPS and oracle continue from the "
        "baseline's checkpoint at ssps_start_epoch - 2 (- 1 with the "
        "fill pass)"
        if share
        else "independent: every condition trains from scratch",
        "augmentation": augmentation,
        "device": args.device,
        "seeds": seeds,
        "nmi": "spherical k-means (K = test speakers, best of 5 inits) on "
        "the test-set embeddings vs test speaker / video labels",
        "pp_acc": "last training epoch (train_log.txt); *_first: the "
        "first SSPS epoch",
        "corpus_seconds": corpus_seconds,
        "total_seconds": time.time() - start,
    }
    with open(out, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    for framework in frameworks:
        plot_epochs(
            results,
            framework,
            f"{os.path.splitext(out)[0]}_{framework}.png",
            int(overrides[framework]["ssps_start_epoch"]),
        )
    table = markdown_table(results)
    with open(os.path.splitext(out)[0] + ".md", "w", encoding="utf-8") as f:
        f.write(table)
    print(table)


if __name__ == "__main__":
    main()
