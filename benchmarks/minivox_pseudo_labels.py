"""MiniVox pseudo-label benchmark: SSL -> pseudo labels -> stage two.

On one generated MiniVox corpus, with the same stage-two budget (yaml,
epochs, model, chunks, seed) for every supervised run:

- ``ssl``: SimCLR (``minivox_simclr.yaml``), the starting encoder;
- ``pl_iter1``: pseudo labels from the SSL export (``pseudo_label.py``,
  K1 k-means clusters merged to K2), then ``train_pl.py`` initialised from
  the SSL export;
- ``pl_iter2``: pseudo labels again, from the ``pl_iter1`` export, then
  ``train_pl.py`` initialised from it;
- ``supervised``: ``train_pl.py`` on the true labels (``train.csv``),
  initialised from the SSL export: the upper bound of stage two.

Every run is exported (``export.py``) and verified (``verify.py`` on the
MiniVox trial list). ``results.json`` holds the EER / minDCF per run and
the clustering metrics (NMI, ARI against speakers and videos, video-
dominated clusters) of each pseudo-labelling; ``results.md`` the table.

Run::

    python benchmarks/minivox_pseudo_labels.py --work bench_pl \\
        --num-clusters 200 --num-speakers 40
    python benchmarks/minivox_pseudo_labels.py --work bench_pl \\
        --ssl-args="--number_of_epochs=4" --pl-args="--number_of_epochs=4"

Authors
 * speechbrain-ssps contributors
"""

import argparse
import json
import os
import subprocess
import sys
from typing import Dict, List, Sequence

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPE = os.path.join(REPO, "recipes", "VoxCeleb", "SSPS")
SSL_YAML = "hparams/minivox_simclr.yaml"
PL_YAML = "hparams/minivox_pl_ecapa.yaml"
#: Default MiniVox corpus (python -m speechbrain_ssps.minivox options).
CORPUS = {
    "speakers": 40,
    "videos": 3,
    "utterances": 6,
    "test-speakers": 10,
    "seed": 0,
}
STAGES = ("pl_iter1", "pl_iter2", "supervised")


def plan(
    work: str,
    corpus: str,
    num_clusters: int,
    num_speakers: int,
    ssl_args: Sequence[str] = (),
    pl_args: Sequence[str] = (),
    device: str = "cpu",
) -> List[Dict[str, object]]:
    """The benchmark's steps, in order: ``{"name", "script", "args"}``.

    Every ``train_pl.py`` run gets the same ``pl_args`` (the budget); the
    runs differ only in ``--train_csv`` and ``--init_from``.
    """
    ssl = os.path.join(work, "ssl")
    train_csv = os.path.join(ssl, "save", "train.csv")
    steps: List[Dict[str, object]] = []

    def add(name, script, args):
        steps.append({"name": name, "script": script, "args": list(args)})

    def export_verify(name, folder):
        add(f"{name}:export", "export.py", [folder])
        add(
            f"{name}:verify",
            "verify.py",
            [
                "hparams/verification.yaml",
                f"--export_folder={folder}/export",
                f"--prep_folder={ssl}/save",
                f"--output_folder={folder}/verification",
                f"--device={device}",
            ],
        )

    common = [f"--data_folder={corpus}", "--noprogressbar"]
    if device != "cpu":
        common.append(f"--device={device}")
    add(
        "ssl:train",
        "train.py",
        [SSL_YAML, *common, f"--output_folder={ssl}"] + list(ssl_args),
    )
    export_verify("ssl", ssl)
    source = f"{ssl}/export"
    for stage in STAGES:
        folder = os.path.join(work, stage)
        labels = train_csv
        if stage != "supervised":
            add(
                f"{stage}:pseudo_label",
                "pseudo_label.py",
                [
                    f"--export_folder={source}",
                    f"--train_csv={train_csv}",
                    f"--output_folder={folder}/labels",
                    f"--num_clusters={num_clusters}",
                    f"--num_speakers={num_speakers}",
                    f"--device={device}",
                ],
            )
            labels = f"{folder}/labels/train_pl.csv"
        init = source if stage != "supervised" else f"{ssl}/export"
        add(
            f"{stage}:train",
            "train_pl.py",
            [
                PL_YAML,
                *common,
                f"--train_csv={labels}",
                f"--output_folder={folder}",
                f"--init_from={init}",
                *pl_args,
            ],
        )
        export_verify(stage, folder)
        if stage != "supervised":
            source = f"{folder}/export"
    return steps


def collect(work: str) -> Dict[str, Dict[str, object]]:
    """EER/minDCF of every run and the metrics of every labelling."""
    results: Dict[str, Dict[str, object]] = {}
    for name in ("ssl", *STAGES):
        entry: Dict[str, object] = {}
        path = os.path.join(work, name, "verification", "results.json")
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as fin:
                entry["verification"] = json.load(fin)
        labels = os.path.join(work, name, "labels", "pseudo_labels.json")
        if os.path.isfile(labels):
            with open(labels, encoding="utf-8") as fin:
                entry["pseudo_labels"] = json.load(fin)["metrics"]
        results[name] = entry
    return results


def markdown_table(results: Dict[str, Dict[str, object]]) -> str:
    """One row per run: EER, minDCF and the labelling's NMI / ARI."""
    lines = [
        "| Run | EER (%) | minDCF | NMI spk | ARI spk | NMI video "
        "| video-dominated |",
        "|---|---|---|---|---|---|---|",
    ]

    def cell(value, digits):
        return "-" if value is None else f"{value:.{digits}f}"

    for name, entry in results.items():
        trial = (entry.get("verification") or {}).get("O", {})
        labels = entry.get("pseudo_labels") or {}
        lines.append(
            f"| {name} | {cell(trial.get('eer_percent'), 2)} "
            f"| {cell(trial.get('min_dcf'), 3)} "
            f"| {cell(labels.get('nmi_speaker'), 3)} "
            f"| {cell(labels.get('ari_speaker'), 3)} "
            f"| {cell(labels.get('nmi_video'), 3)} "
            f"| {cell(labels.get('video_dominated_share'), 2)} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> Dict[str, Dict[str, object]]:
    """Generates the corpus, runs every step, writes results.json/.md."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", required=True)
    parser.add_argument("--corpus", default=None, help="existing MiniVox")
    parser.add_argument("--num-clusters", type=int, default=200)
    parser.add_argument("--num-speakers", type=int, default=40)
    parser.add_argument("--ssl-args", default="", help="train.py overrides")
    parser.add_argument("--pl-args", default="", help="train_pl.py overrides")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    env.setdefault("OMP_NUM_THREADS", "1")
    log = open(os.path.join(work, "log.txt"), "a", encoding="utf-8")
    corpus = args.corpus or os.path.join(work, "corpus")
    if args.corpus is None and not os.path.isdir(os.path.join(corpus, "wav")):
        cmd = [sys.executable, "-m", "speechbrain_ssps.minivox"]
        cmd += [f"--{k}={v}" for k, v in CORPUS.items()]
        subprocess.run(
            cmd + [f"--out={corpus}"], check=True, stdout=log, stderr=log
        )
    steps = plan(
        work,
        corpus,
        args.num_clusters,
        args.num_speakers,
        args.ssl_args.split(),
        args.pl_args.split(),
        args.device,
    )
    for step in steps:
        print(f"[{step['name']}]", flush=True)
        cmd = [sys.executable, step["script"], *step["args"]]
        done = subprocess.run(cmd, cwd=RECIPE, env=env, stdout=log, stderr=log)
        if done.returncode:
            sys.exit(f"step {step['name']} failed; see {work}/log.txt")
    results = collect(work)
    summary = {
        "corpus": CORPUS if args.corpus is None else args.corpus,
        "num_clusters": args.num_clusters,
        "num_speakers": args.num_speakers,
        "ssl_args": args.ssl_args,
        "pl_args": args.pl_args,
        "runs": results,
    }
    with open(os.path.join(work, "results.json"), "w") as fout:
        json.dump(summary, fout, indent=2)
    table = markdown_table(results)
    with open(os.path.join(work, "results.md"), "w") as fout:
        fout.write(table)
    print(table)
    return results


if __name__ == "__main__":
    main()
