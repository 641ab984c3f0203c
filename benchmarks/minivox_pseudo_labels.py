"""MiniVox pseudo-label benchmark: SSL -> pseudo labels -> stage two.

On the quality benchmark's corpus and synthetic MUSAN / RIR folders
(unless ``--no-augmentation``), per seed: ``ssl_baseline`` (SimCLR, every
epoch kept) and ``ssl_ssps`` (SSPS continuing its checkpoint at
``ssps_start_epoch - 2``, as ``minivox_quality.py``); from each SSL export,
pseudo labels (``pseudo_label.py``: K1 k-means clusters merged into K2) and
``train_pl.py`` initialised from it (``pl_iter1_<ssl>``), then the same
from that model (``pl_iter2_<ssl>``); and ``supervised``: ``train_pl.py``
on the true labels from the baseline's export (the upper bound). Every
stage-two run of a seed gets the same budget (only ``--train_csv``,
``--output_folder``, ``--init_from`` differ); every run is exported and
verified on the baseline's trial list. Finished runs are reused (an
interrupted benchmark resumes); ``--jobs`` runs train at once, each once its
inputs exist. Writes ``results.json`` (set-up, per-seed results, mean and
sd per row of EER, minDCF and the labels' NMI / ARI with speakers and
videos and video-dominated share) and ``results.md`` beside it.

Run (CPU: about 30 min a seed, one thread a run)::

    python benchmarks/minivox_pseudo_labels.py --seeds 3 --jobs 2 \\
        --out results/minivox_pl/results.json

Authors
 * speechbrain-ssps contributors
"""

import argparse
import importlib.util
import json
import os
import socket
import statistics
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Callable, Dict, List, Optional, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
_SPEC = importlib.util.spec_from_file_location(
    "minivox_quality", os.path.join(HERE, "minivox_quality.py")
)
quality = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(quality)

RECIPE = quality.RECIPE
FRAMEWORK = "simclr"
ENCODERS = ("baseline", "ssps")  # the SSL runs (minivox_quality conditions)
PL_YAML = "hparams/minivox_pl_ecapa.yaml"
#: Stage-two budget (train_pl.py overrides; ``--pl-args`` replaces keys):
#: as many epochs as the SSL runs (``minivox_quality.BUDGET``).
PL_BUDGET = {"number_of_epochs": quality.BUDGET[FRAMEWORK]["number_of_epochs"]}
#: Model sizes of the SSL runs, given to stage two too (unless
#: ``--pl-args`` sets them) so that ``--init_from`` fits.
MODEL_KEYS = ("n_mels", "channels", "emb_dim")
#: Options the benchmark sets itself (refused in --ssl-args / --pl-args).
RESERVED = set(
    "seed data_folder output_folder train_csv init_from continue_from "
    "keep_checkpoints musan_folder rir_folder device".split()
)
#: The table's rows and what each is.
DESCRIPTIONS = {
    "ssl_baseline": "SimCLR",
    "ssl_ssps": "SimCLR + SSPS",
    "pl_iter1_baseline": "stage two, labels of ssl_baseline",
    "pl_iter1_ssps": "stage two, labels of ssl_ssps",
    "pl_iter2_baseline": "stage two, labels of pl_iter1_baseline",
    "pl_iter2_ssps": "stage two, labels of pl_iter1_ssps",
    "supervised": "stage two, true labels",
}
ROWS = tuple(DESCRIPTIONS)
LABEL_METRICS = tuple(
    "nmi_speaker ari_speaker nmi_video ari_video video_dominated_share".split()
)
METRICS = ("eer", "mindcf", *LABEL_METRICS)
RECORD = "benchmark_run.json"  # a run's steps and wall seconds

Unit = Dict[str, object]
Runner = Callable[[List[str], str, str], float]


seed_list = quality.seed_list  # the seeds: 1986 + offset + i


def default_clusters(params: Dict[str, object]) -> Tuple[int, int]:
    """Default K1 and K2 of a corpus.

    K1: half the training videos (SSPS's K in ``minivox_quality``); K2:
    1.25 x the training speakers (the paper's 7,500 for VoxCeleb2's 5,994
    speakers), at most K1.
    """
    speakers = int(params["speakers"])
    k1 = max(2, speakers * int(params["videos"]) // 2)
    return k1, min(k1, max(1, round(1.25 * speakers)))


def parse_args_option(text: str, option: str) -> Dict[str, str]:
    """``--key=value`` words as a dict (ValueError naming ``option``).

    Keys that the benchmark sets itself (``RESERVED``) are refused.
    """
    try:
        overrides = quality.parse_overrides(text.split())
    except ValueError as err:
        raise ValueError(str(err).replace("--train-args", option)) from None
    taken = sorted(set(overrides) & RESERVED)
    if taken:
        raise ValueError(f"{option}: the benchmark sets {taken} itself")
    return overrides


def stage_two_budget(
    ssl_overrides: Dict[str, str], pl_overrides: Dict[str, str]
) -> Dict[str, str]:
    """The train_pl.py overrides of every stage-two run."""
    budget = {k: str(v) for k, v in PL_BUDGET.items()}
    budget.update((k, v) for k, v in ssl_overrides.items() if k in MODEL_KEYS)
    budget.update(pl_overrides)
    return budget


def _kv(**options: object) -> List[str]:
    """``--key=value`` arguments."""
    return [f"--{k}={v}" for k, v in options.items()]


def seed_plan(
    work: str,
    corpus: str,
    seed: int,
    ssl_overrides: Dict[str, str],
    pl_budget: Dict[str, str],
    clusters: Tuple[int, int],
    device: str = "cpu",
    augmentation_args: Sequence[str] = (),
) -> List[Unit]:
    """The runs of one seed: dicts of ``name`` (``<row>/<seed>``), ``row``,
    ``seed``, ``folder``, ``needs`` (names), ``steps`` (label, args)."""
    units: List[Unit] = []
    base = os.path.join(work, FRAMEWORK, "baseline", str(seed))
    train_csv = f"{base}/save/train.csv"
    common = _kv(data_folder=corpus, device=device) + ["--noprogressbar"]

    def add(row: str, folder: str, needs: List[str], steps: list) -> None:
        verify = ["verify.py", "hparams/verification.yaml"] + _kv(
            export_folder=f"{folder}/export",
            prep_folder=f"{base}/save",
            output_folder=f"{folder}/verification",
            device=device,
            make_plots=False,
            num_workers=1,
        )
        steps += [("export", ["export.py", folder]), ("verify", verify)]
        units.append(dict(name=f"{row}/{seed}", row=row, seed=seed))
        needs = [f"{n}/{seed}" for n in needs]
        units[-1].update(folder=folder, needs=needs, steps=steps)

    for encoder in ENCODERS:
        yaml, args = quality.condition_args(FRAMEWORK, encoder, ssl_overrides)
        args += quality.plain_sharing_args(
            FRAMEWORK, encoder, seed, work, ssl_overrides
        )
        folder = os.path.join(work, FRAMEWORK, encoder, str(seed))
        train = ["train.py", f"hparams/{yaml}", *common, f"--seed={seed}"]
        train += [f"--output_folder={folder}", *args, *augmentation_args]
        needs = [] if encoder == "baseline" else ["ssl_baseline"]
        add(f"ssl_{encoder}", folder, needs, [("train", train)])

    budget = [*common, f"--seed={seed}", *augmentation_args, *_kv(**pl_budget)]
    for encoder in ENCODERS:
        source_row = f"ssl_{encoder}"
        source = os.path.join(work, FRAMEWORK, encoder, str(seed))
        for iteration in (1, 2):
            row = f"pl_iter{iteration}_{encoder}"
            folder = os.path.join(work, f"pl_iter{iteration}", encoder)
            folder = os.path.join(folder, str(seed))
            labels = ["pseudo_label.py"] + _kv(
                export_folder=f"{source}/export",
                train_csv=train_csv,
                output_folder=f"{folder}/labels",
                num_clusters=clusters[0],
                num_speakers=clusters[1],
                seed=seed,
                device=device,
                num_workers=1,
            )
            train = ["train_pl.py", PL_YAML, *budget] + _kv(
                train_csv=f"{folder}/labels/train_pl.csv",
                output_folder=folder,
                init_from=f"{source}/export",
            )
            steps = [("pseudo_label", labels), ("train", train)]
            add(row, folder, [source_row], steps)
            source_row, source = row, folder
    folder = os.path.join(work, "supervised", str(seed))
    train = ["train_pl.py", PL_YAML, *budget] + _kv(
        train_csv=train_csv, output_folder=folder, init_from=f"{base}/export"
    )
    add("supervised", folder, ["ssl_baseline"], [("train", train)])
    return units


def _load(path: str) -> dict:
    with open(path, encoding="utf-8") as fin:
        return json.load(fin)


def finished(unit: Unit) -> Optional[Dict[str, object]]:
    """The record of a verified run (reused as it is), else None; a
    ValueError when the record holds other steps (options) than the plan's.
    """
    folder, steps = str(unit["folder"]), json.loads(json.dumps(unit["steps"]))
    if not os.path.isfile(os.path.join(folder, "verification", "results.json")):
        return None
    path = os.path.join(folder, RECORD)
    record = _load(path) if os.path.isfile(path) else {"seconds": None}
    if record.get("steps", steps) != steps:
        raise ValueError(
            f"{folder} was run with other options than {unit['name']} has "
            "now; use another --work or delete it"
        )
    return record


def run_unit(unit: Unit, work: str, runner: Runner) -> Dict[str, float]:
    """Runs the steps of one run; its wall seconds per step.

    The steps and seconds are recorded in ``<folder>/benchmark_run.json``.
    """
    log = os.path.join(work, "logs", str(unit["name"]).replace("/", "_"))
    os.makedirs(os.path.dirname(log), exist_ok=True)
    seconds: Dict[str, float] = {}
    for label, args in unit["steps"]:
        seconds[label] = runner([sys.executable, *args], RECIPE, log)
    seconds["total"] = sum(seconds.values())
    with open(os.path.join(str(unit["folder"]), RECORD), "w") as fout:
        json.dump({"steps": unit["steps"], "seconds": seconds}, fout, indent=2)
    return seconds


def execute(
    units: Sequence[Unit], work: str, jobs: int = 1, runner: Runner = None
) -> Dict[str, Optional[Dict[str, object]]]:
    """Runs every unfinished run, ``jobs`` at a time, each after its needs;
    the first failure stops new runs and is raised once the others end.

    Returns wall seconds per step of each run, in plan order (a reused run:
    those of its record with ``reused``, or None without a record).
    """
    runner, jobs = runner or quality.run, max(1, jobs)
    records = {str(u["name"]): finished(u) for u in units}
    done = {name for name, record in records.items() if record}
    seconds: Dict[str, Optional[Dict[str, object]]] = {}
    for name in (n for n in records if n in done):  # plan order
        stored = records[name]["seconds"]
        seconds[name] = {**stored, "reused": True} if stored else None
    pending = [u for u in units if u["name"] not in done]
    running = {}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        while pending or running:
            for unit in list(pending):  # in plan order, once inputs exist
                if len(running) < jobs and set(unit["needs"]) <= done:
                    pending.remove(unit)
                    print(f"{unit['name']}: started", flush=True)
                    running[pool.submit(run_unit, unit, work, runner)] = unit
            if not running:
                raise ValueError(f"{pending[0]['name']}: needs not planned")
            ended, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in ended:
                unit = running.pop(future)
                if future.exception() is not None:
                    pending.clear()  # no new run; the running ones end
                    wait(running)
                    raise future.exception()
                seconds[str(unit["name"])] = future.result()
                done.add(str(unit["name"]))
                print(f"{unit['name']}: done", flush=True)
    return {name: seconds[name] for name in records}


def collect(units: Sequence[Unit]) -> Dict[str, List[Dict[str, object]]]:
    """Per row, one result per seed: EER, minDCF, labelling metrics.

    ``verification`` holds verify.py's entry of trial list O, ``labels``
    the metrics of ``pseudo_label.py`` (without the cluster sizes).
    """
    rows: Dict[str, List[Dict[str, object]]] = {}
    for unit in units:
        folder = str(unit["folder"])
        trial = _load(os.path.join(folder, "verification", "results.json"))["O"]
        result: Dict[str, object] = {
            "seed": unit["seed"],
            "eer": float(trial["eer_percent"]),
            "mindcf": float(trial["min_dcf"]),
            "verification": trial,
        }
        labels = os.path.join(folder, "labels", "pseudo_labels.json")
        if os.path.isfile(labels):
            metrics = dict(_load(labels)["metrics"])
            metrics.pop("sizes", None)
            result.update({k: metrics.get(k) for k in LABEL_METRICS})
            result["labels"] = metrics
        rows.setdefault(str(unit["row"]), []).append(result)
    return rows


def summarise(runs: Sequence[Dict[str, object]]) -> Dict[str, object]:
    """Mean and sd (0 for one seed) over seeds of each metric of all runs."""
    summary: Dict[str, object] = {"num_seeds": len(runs)}
    summary["seeds"] = [r["seed"] for r in runs]
    for metric in METRICS:
        values = [r.get(metric) for r in runs]
        if not values or any(v is None for v in values):
            continue
        summary[f"{metric}_mean"] = statistics.fmean(values)
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        summary[f"{metric}_sd"] = sd
    return summary


def caption_line(setup: Dict[str, object]) -> str:
    """What the table was measured on: corpus, seeds, budget."""
    p, seeds = setup["corpus"], setup["seeds"]
    ssl, pl = setup["budget"]["ssl"], setup["budget"]["stage_two"]
    return (
        f"MiniVox: {p['speakers']} speakers x {p['videos']} videos x "
        f"{p['utterances']} utterances ({p['test-speakers']} test speakers, "
        f"channel strength {p['channel-strength']}, corpus seed {p['seed']}),"
        f" augmentation {'on' if setup['augmentation'] else 'off'}; "
        f"{len(seeds)} seed(s) ({', '.join(map(str, seeds))}); SSL "
        f"{ssl['number_of_epochs']} epochs (SSPS from epoch "
        f"{ssl['ssps_start_epoch']}, K = {ssl['ssps_num_clusters']}), every "
        f"stage-two run {pl.get('number_of_epochs', '(yaml)')} epochs; pseudo"
        f" labels K1 = {setup['num_clusters']}, K2 = {setup['num_speakers']}"
        " (NMI / ARI: of the labels the row was trained on)."
    )


def markdown_table(summary: Dict[str, Dict[str, object]], caption: str) -> str:
    """The table (``mean ± sd`` cells), then the caption line."""
    lines = [
        "| Row | Model | EER (%) | minDCF | NMI spk | ARI spk | NMI video "
        "| ARI video | video-dominated (%) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    fmt = quality.fmt
    for row in (r for r in ROWS if r in summary):
        s = summary[row]
        cells = [row, DESCRIPTIONS[row], fmt(s, "eer")]
        cells += [fmt(s, m, digits=3) for m in ("mindcf", *LABEL_METRICS[:4])]
        cells.append(fmt(s, "video_dominated_share", 100, 1))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\n" + caption + "\n"


#: Command-line options: (flag, default, help); the type is the default's.
OPTIONS = (
    ("--seeds", 3, "number of seeds (1986 + offset + i)"),
    ("--seed-offset", 0, "first seed - 1986"),
    ("--out", "results.json", "results.json path; results.md beside it"),
    ("--work", None, "runs folder (default: next to --out); reused runs"),
    ("--corpus", None, "corpus folder (made if missing; <work>/corpus)"),
    ("--corpus-params", "", "CORPUS overrides, e.g. 'speakers=60,videos=4'"),
    ("--jobs", 1, "runs trained at the same time"),
    ("--device", "cpu", "of every script, e.g. cuda:0"),
    ("--threads", quality.DEFAULT_THREADS, "OMP_NUM_THREADS unless set"),
    ("--ssl-args", "", "train.py overrides of both SSL runs"),
    ("--pl-args", "", "train_pl.py overrides of every stage-two run"),
    ("--num-clusters", 0, "K1 (0: half the training videos)"),
    ("--num-speakers", 0, "K2 (0: 1.25 x training speakers, <= K1)"),
)


def main(argv: Optional[List[str]] = None, runner: Runner = None) -> dict:
    """Runs the benchmark; returns the content of results.json.

    ``runner(cmd, cwd, log_file) -> seconds`` runs one recipe command
    (default: ``minivox_quality.run``, a subprocess).
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for flag, default, text in OPTIONS:
        kind = type(default) if default not in ("", None) else str
        parser.add_argument(flag, type=kind, default=default, help=text)
    parser.add_argument("--no-augmentation", action="store_true")
    args = parser.parse_args(argv)
    try:
        params = quality.corpus_params(args.corpus_params)
        ssl_args = parse_args_option(args.ssl_args, "--ssl-args")
        pl_args = parse_args_option(args.pl_args, "--pl-args")
    except ValueError as err:
        parser.error(str(err))
    ssl = quality.run_overrides(
        FRAMEWORK, params, [f"--{k}={v}" for k, v in ssl_args.items()]
    )
    if int(ssl["ssps_start_epoch"]) < 3:  # train.py's seed_from_plain_run
        parser.error("ssps_start_epoch must be >= 3 to continue the baseline")
    pl_budget = stage_two_budget(ssl, pl_args)
    k1, k2 = default_clusters(params)
    k1 = args.num_clusters or k1
    k2 = args.num_speakers or min(k1, k2)
    if k2 > k1:
        parser.error(f"--num-speakers={k2} is more than --num-clusters={k1}")
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    out = os.path.abspath(args.out)
    work = os.path.abspath(args.work or os.path.splitext(out)[0] + "_runs")
    corpus = os.path.abspath(args.corpus or os.path.join(work, "corpus"))
    os.makedirs(work, exist_ok=True)
    seeds = seed_list(args.seeds, args.seed_offset)

    start = time.time()
    log = os.path.join(work, "corpus.log")
    corpus_seconds = quality.make_corpus(corpus, log, params)
    augmentation, augmentation_args = None, []
    if not args.no_augmentation:
        augmentation, augmentation_args = quality.make_augmentation(
            os.path.join(work, "augmentation"),
            os.path.join(work, "augmentation.log"),
            params["seed"],
        )
    units: List[Unit] = []
    for seed in seeds:
        units += seed_plan(
            work, corpus, seed, ssl, pl_budget, (k1, k2), args.device,
            augmentation_args,
        )  # fmt: skip
    seconds = execute(units, work, args.jobs, runner)
    runs = collect(units)
    yamls = {"stage_two": PL_YAML}
    for encoder in ENCODERS:
        yamls[f"ssl_{encoder}"] = quality.condition_args(
            FRAMEWORK, encoder, ssl
        )[0]
    setup = {
        "corpus": params,
        "corpus_folder": corpus,
        "augmentation": augmentation,
        "seeds": seeds,
        "num_clusters": k1,
        "num_speakers": k2,
        # The baseline gets the ssl overrides without the ssps_* keys.
        "budget": {"ssl": ssl, "stage_two": pl_budget, "yamls": yamls},
        "host": socket.gethostname(),
        "device": args.device,
        "jobs": args.jobs,
        "threads": os.environ["OMP_NUM_THREADS"],
        "corpus_seconds": corpus_seconds,
        "wall_seconds": seconds,
        "total_seconds": time.time() - start,
    }
    summary = {row: summarise(runs[row]) for row in ROWS}
    report = {"setup": setup, "runs": runs, "summary": summary}
    with open(out, "w", encoding="utf-8") as fout:
        json.dump(report, fout, indent=2)
    table = markdown_table(summary, caption_line(setup))
    with open(os.path.splitext(out)[0] + ".md", "w", encoding="utf-8") as fout:
        fout.write(table)
    print(table)
    return report


if __name__ == "__main__":
    main()
