#!/usr/bin/env python3
"""Speaker verification of an exported SSPS encoder (cosine scoring).

Embeds every test utterance named by the trial lists (whole utterances,
length-sorted batches; very long files are split into chunks whose
embeddings are averaged), scores each trial list with the cosine similarity,
optionally normalises the scores (S-norm or AS-norm with a cohort of
training utterances drawn with the yaml's seed), and reports the EER (in
percent) and the normalised minDCF (p_target 0.01, C_miss = C_fa = 1 by
default) per list.

Outputs in ``output_folder``: ``results.json``
(``{"O": {"eer_percent": .., "min_dcf": .., "num_trials": .., ...}, ...}``),
``scores_<list>.txt``, ``det_<list>.png``, ``score_hist_<list>.png`` and,
with ``make_tsne: True``, ``tsne.png``. The model is loaded with
``SpeakerRecognition.from_hparams`` from ``export_folder`` (written by
``export.py``) without any network access.

To run::

    python verify.py hparams/verification.yaml \\
        --export_folder=results/dino_ssps/1986/export \\
        --prep_folder=results/dino_ssps/1986/save \\
        --output_folder=results/dino_ssps/1986/verification

Options: ``--trial_lists=[O]``, ``--score_norm=as-norm``, ``--device=cuda:0``
(see ``hparams/verification.yaml``). The plots are titled by corpus and list
(``VoxCeleb1-O``, ``MiniVox, trials O``; ``--corpus_name=...`` overrides
the corpus found from the test data).

Authors
 * speechbrain-ssps contributors
"""

import csv
import glob
import json
import os
import random
import re
import sys
from typing import Dict, List, Optional, Sequence, Set, Tuple

import numpy as np
import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml
from speechbrain.utils.logger import get_logger

from speechbrain_ssps.embeddings import embed_utterances
from speechbrain_ssps.inference import load_exported as load_encoder
from speechbrain_ssps.plots import plot_det, plot_score_histogram, plot_tsne
from speechbrain_ssps.score_norm import as_norm, s_norm
from speechbrain_ssps.scoring import compute_eer, compute_min_dcf
from speechbrain_ssps.trials import read_trials, score_trials

logger = get_logger(__name__)

SCORE_NORMS = (None, "s-norm", "as-norm")
STANDARD_ORDER = ("O", "E", "H")
COHORT_PREFIX = "cohort::"

Trial = Tuple[int, str, str]


def read_manifest(path: str) -> Dict[str, Dict[str, str]]:
    """Rows of a prepared CSV (``ID,duration,wav,spk_id,video_id``) by ID."""
    if not os.path.isfile(path):
        raise ValueError(f"Manifest not found: {path}")
    with open(path, newline="", encoding="utf-8") as fin:
        reader = csv.DictReader(fin)
        missing = {"ID", "wav"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path} lacks column(s) {sorted(missing)}")
        return {row["ID"]: row for row in reader}


def find_trial_lists(
    prep_folder: str, names: Optional[Sequence[str]]
) -> Dict[str, str]:
    """Trial files ``trials_<name>.txt``: the named ones, or all found.

    Found lists come in the order O, E, H, then the others by name.
    """
    if names is not None:
        if isinstance(names, str):
            names = [names]
        files = {
            str(n): os.path.join(prep_folder, f"trials_{n}.txt") for n in names
        }
        for name, path in files.items():
            if not os.path.isfile(path):
                raise ValueError(
                    f"trial_lists names {name!r} but {path} does not exist"
                )
    else:
        files = {}
        for path in glob.glob(os.path.join(prep_folder, "trials_*.txt")):
            match = re.fullmatch(r"trials_(.+)\.txt", os.path.basename(path))
            files[match.group(1)] = path
        if not files:
            raise ValueError(f"No trials_*.txt in prep_folder {prep_folder}")

    def rank(name):
        known = name in STANDARD_ORDER
        return (not known, STANDARD_ORDER.index(name) if known else 0, name)

    return {name: files[name] for name in sorted(files, key=rank)}


def read_checked_trials(
    files: Dict[str, str], known_ids: Set[str], manifest: str
) -> Dict[str, List[Trial]]:
    """Reads trial lists; every ID must be in the test manifest.

    Raises a ValueError naming the trial file, line and ID of the first
    unknown utterance (before anything is embedded).
    """
    lists = {}
    for name, path in files.items():
        trials = read_trials(path)
        if not trials:
            raise ValueError(f"Trial list {path} is empty")
        bad = next(
            (
                (i, uid)
                for i, t in enumerate(trials)
                for uid in t[1:]
                if uid not in known_ids
            ),
            None,
        )
        if bad is not None:
            raise ValueError(
                f"{path}, line {_line_number(path, bad[0])}: utterance "
                f"{bad[1]!r} is not in {manifest}"
            )
        lists[name] = trials
    return lists


def _line_number(path: str, index: int) -> int:
    """1-based line of the index-th trial (``read_trials`` skips blanks)."""
    with open(path, encoding="utf-8") as fin:
        non_blank = (n for n, line in enumerate(fin, 1) if line.split())
        for position, line_no in enumerate(non_blank):
            if position == index:
                return line_no
    raise ValueError(f"{path} has no trial number {index + 1}")


def draw_cohort(
    train: Dict[str, Dict[str, str]], size: int, seed: int
) -> Dict[str, str]:
    """``size`` training utterances drawn with ``seed``: ID -> wav path."""
    if size < 2:
        raise ValueError(f"cohort_size must be >= 2, got {size}")
    ids = sorted(train)
    if len(ids) < 2:
        raise ValueError("The training manifest needs >= 2 utterances")
    if size > len(ids):
        logger.warning(
            f"cohort_size={size} but train.csv has {len(ids)} utterances: "
            "using all of them"
        )
        size = len(ids)
    chosen = random.Random(seed).sample(ids, size)
    return {uid: train[uid]["wav"] for uid in sorted(chosen)}


def evaluate_list(
    trials: List[Trial],
    embeddings: Dict[str, torch.Tensor],
    cohort: Optional[torch.Tensor],
    hparams: dict,
) -> Tuple[dict, np.ndarray, np.ndarray]:
    """Scores one list; returns its metrics and the final scores."""
    scores, labels = score_trials(embeddings, trials)
    stats = {}
    norm = hparams["score_norm"]
    if norm is not None:
        raw_eer, _ = compute_eer(scores, labels)
        raw_dcf, _ = compute_min_dcf(
            scores,
            labels,
            hparams["p_target"],
            hparams["c_miss"],
            hparams["c_fa"],
        )
        stats["raw_eer_percent"] = 100.0 * raw_eer
        stats["raw_min_dcf"] = raw_dcf
        enrol = [t[1] for t in trials]
        test = [t[2] for t in trials]
        if norm == "s-norm":
            scores = s_norm(scores, enrol, test, embeddings, cohort)
        else:
            top_k = int(hparams["top_k"])
            if top_k > len(cohort):
                logger.warning(
                    f"top_k={top_k} exceeds the cohort ({len(cohort)}): "
                    "using the whole cohort"
                )
                top_k = len(cohort)
            scores = as_norm(scores, enrol, test, embeddings, cohort, top_k)
    eer, eer_threshold = compute_eer(scores, labels)
    min_dcf, dcf_threshold = compute_min_dcf(
        scores, labels, hparams["p_target"], hparams["c_miss"], hparams["c_fa"]
    )
    stats = {
        "eer_percent": 100.0 * eer,
        "min_dcf": min_dcf,
        "num_trials": len(trials),
        "num_targets": int(labels.sum()),
        "score_norm": norm,
        "p_target": hparams["p_target"],
        "eer_threshold": eer_threshold,
        "min_dcf_threshold": dcf_threshold,
        **stats,
    }
    return stats, scores, labels


def write_scores(path: str, trials: List[Trial], scores) -> None:
    """One ``label enrol test score`` line per trial."""
    with open(path, "w", encoding="utf-8") as fout:
        for (label, enrol, test), score in zip(trials, scores):
            fout.write(f"{label} {enrol} {test} {score:.6f}\n")


def tsne_selection(
    test: Dict[str, Dict[str, str]],
    embedded: Set[str],
    max_speakers: int,
    seed: int,
) -> Tuple[List[str], List[str]]:
    """Utterances (embedded ones) of up to ``max_speakers`` test speakers."""
    by_speaker: Dict[str, List[str]] = {}
    for uid in sorted(embedded):
        speaker = test[uid].get("spk_id") or uid.split("/")[0]
        by_speaker.setdefault(speaker, []).append(uid)
    speakers = sorted(by_speaker)
    if len(speakers) > max_speakers:
        speakers = sorted(random.Random(seed).sample(speakers, max_speakers))
    uids = [u for s in speakers for u in by_speaker[s]]
    return uids, [test[u].get("spk_id") or u.split("/")[0] for u in uids]


def corpus_of(test: Dict[str, Dict[str, str]]) -> str:
    """The corpus of the test utterances, for the plot titles.

    ``MiniVox`` when a dataset root (``<root>/wav/<spk>/<video>/<utt>``)
    holds the MiniVox marker ``minivox.json``, else ``VoxCeleb1`` (the
    corpus whose trial lists ``voxceleb_prepare.py`` reads).
    """
    roots = set()
    for row in test.values():
        root = row["wav"]
        for _ in range(4):
            root = os.path.dirname(root)
        roots.add(root)
    for root in roots:
        if os.path.isfile(os.path.join(root, "minivox.json")):
            return "MiniVox"
    return "VoxCeleb1"


def list_title(corpus: str, name: str) -> str:
    """``VoxCeleb1-O`` for VoxCeleb1's lists, else ``<corpus>, trials O``."""
    if corpus == "VoxCeleb1" and name in STANDARD_ORDER:
        return f"VoxCeleb1-{name}"
    return f"{corpus}, trials {name}"


def save_plots(
    name: str, stats: dict, scores, labels, output_folder: str, corpus: str
) -> None:
    """``det_<name>.png`` and ``score_hist_<name>.png``, titled by list."""
    title = list_title(corpus, name)
    plot_det(
        scores,
        labels,
        os.path.join(output_folder, f"det_{name}.png"),
        title=f"{title}: EER {stats['eer_percent']:.2f}%",
    )
    plot_score_histogram(
        scores,
        labels,
        os.path.join(output_folder, f"score_hist_{name}.png"),
        title=f"{title}: {len(scores)} trials",
    )


def save_tsne(
    embeddings: Dict[str, torch.Tensor],
    uids: List[str],
    speakers: List[str],
    output_folder: str,
    seed: int,
    corpus: str,
) -> None:
    """``tsne.png`` of the given utterances coloured by speaker."""
    if len(uids) < 3:
        logger.warning("t-SNE skipped: fewer than 3 test utterances")
        return
    plot_tsne(
        torch.stack([embeddings[u] for u in uids]),
        speakers,
        os.path.join(output_folder, "tsne.png"),
        seed=seed,
        title=f"{corpus} test set: {len(set(speakers))} speakers, "
        f"{len(uids)} utterances",
    )


def log_table(results: Dict[str, dict]) -> None:
    """Logs one line per list."""
    lines = [f"{'list':<8}{'trials':>10}{'EER (%)':>10}{'minDCF':>10}"]
    for name, stats in results.items():
        lines.append(
            f"{name:<8}{stats['num_trials']:>10d}"
            f"{stats['eer_percent']:>10.2f}{stats['min_dcf']:>10.4f}"
        )
    logger.info("Verification results\n" + "\n".join(lines))


def _device(run_opts, hparams) -> str:
    """--device, else the yaml's device, else cuda:0 when available."""
    if isinstance(run_opts, dict):
        given = run_opts.get("device")
    else:
        given = getattr(run_opts, "device", None)
    device = given or hparams["device"]
    if device is None:
        device = "cuda:0" if torch.cuda.is_available() else "cpu"
    return device


def main(argv: List[str]) -> Dict[str, dict]:
    """Runs the evaluation described by the yaml and command line."""
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    if hparams["score_norm"] not in SCORE_NORMS:
        raise ValueError(
            f"score_norm must be one of {SCORE_NORMS}, got "
            f"{hparams['score_norm']!r}"
        )

    # 1. Manifests and trial lists, all checked before any embedding.
    prep_folder = hparams["prep_folder"]
    test_csv = os.path.join(prep_folder, "test.csv")
    test = read_manifest(test_csv)
    files = find_trial_lists(prep_folder, hparams["trial_lists"])
    lists = read_checked_trials(files, set(test), test_csv)
    needed = sorted({u for ts in lists.values() for t in ts for u in t[1:]})
    paths = {uid: test[uid]["wav"] for uid in needed}
    if any(uid.startswith(COHORT_PREFIX) for uid in paths):
        raise ValueError(f"Test IDs must not start with {COHORT_PREFIX!r}")
    if hparams["score_norm"] is not None:
        train = read_manifest(os.path.join(prep_folder, "train.csv"))
        cohort_paths = draw_cohort(
            train, int(hparams["cohort_size"]), hparams["seed"]
        )
        paths.update({COHORT_PREFIX + u: p for u, p in cohort_paths.items()})

    output_folder = os.path.normpath(hparams["output_folder"])
    sb.create_experiment_directory(
        experiment_directory=output_folder,
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )
    logger.info(
        f"{len(lists)} trial list(s) ({', '.join(lists)}), "
        f"{len(needed)} test utterances"
    )

    # 2. Embeddings (test utterances and cohort in one pass).
    device = _device(run_opts, hparams)
    encoder = load_encoder(hparams["export_folder"], device)
    logger.info(f"Embedding {len(paths)} utterances on {device}")
    embeddings = embed_utterances(
        encoder,
        paths,
        batch_seconds=hparams["batch_seconds"],
        max_chunk_seconds=hparams["max_chunk_seconds"],
        num_workers=hparams["num_workers"],
        log_every=100,
    )
    cohort = None
    if hparams["score_norm"] is not None:
        keys = [k for k in embeddings if k.startswith(COHORT_PREFIX)]
        cohort = torch.stack([embeddings.pop(k) for k in keys])

    # 3. Scores, metrics, plots.
    corpus = hparams["corpus_name"] or corpus_of(test)
    results = {}
    for name, trials in lists.items():
        stats, scores, labels = evaluate_list(
            trials, embeddings, cohort, hparams
        )
        results[name] = stats
        if hparams["write_scores"]:
            path = os.path.join(output_folder, f"scores_{name}.txt")
            write_scores(path, trials, scores)
        if hparams["make_plots"]:
            save_plots(name, stats, scores, labels, output_folder, corpus)
    if hparams["make_tsne"]:
        uids, speakers = tsne_selection(
            test,
            set(embeddings),
            int(hparams["tsne_max_speakers"]),
            hparams["seed"],
        )
        save_tsne(
            embeddings, uids, speakers, output_folder, hparams["seed"], corpus
        )

    with open(
        os.path.join(output_folder, "results.json"), "w", encoding="utf-8"
    ) as fout:
        json.dump(results, fout, indent=2)
    log_table(results)
    return results


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except ValueError as error:
        sys.exit(f"verify.py: error: {error}")
