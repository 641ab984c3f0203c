"""Merge ``minivox_pseudo_labels.py`` results of one set-up run seed by seed.

A seed of the pseudo-label benchmark costs about 67 process-minutes on a
CPU, so seeds may be run in separate invocations (``--seed-offset``), on
one machine or several; this script joins their ``results.json`` files
into one, as if all seeds had run together: the per-seed results of every
row pooled and re-summarised (mean and sd over seeds), ``results.md``
written again.

The files must describe the same experiment -- equal corpus parameters,
augmentation (its seed, or off in all), K1, K2 and budget (SSL and stage
two) -- otherwise the merge is refused, naming the key that differs. A seed
present twice in a row is refused too. Folders, host, jobs and times may
differ; they are kept per input file under ``setup.merged_from``.

Run::

    python benchmarks/merge_pseudo_label_results.py \\
        seeds1986-1987/results.json seed1988/results.json \\
        --out merged/results.json

Authors
 * speechbrain-ssps contributors
"""

import argparse
import importlib.util
import json
import os
from typing import Dict, List, Optional, Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
_SPEC = importlib.util.spec_from_file_location(
    "minivox_pseudo_labels", os.path.join(HERE, "minivox_pseudo_labels.py")
)
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)

#: ``setup`` keys that must be equal in every merged file.
SAME_KEYS = ("corpus", "num_clusters", "num_speakers", "budget")
#: ``setup`` keys kept per input file (where and how each part ran).
PER_FILE_KEYS = (
    "corpus_folder host device jobs threads corpus_seconds wall_seconds "
    "total_seconds".split()
)


class MergeError(ValueError):
    """Results that cannot be pooled, with the reason."""


def _augmentation_seed(setup: Dict[str, object]) -> Optional[int]:
    augmentation = setup.get("augmentation")
    return None if not augmentation else augmentation.get("seed")


def check_same_setup(reports: Sequence[dict], names: Sequence[str]) -> None:
    """Raises MergeError naming the first set-up key that differs."""
    first = reports[0]["setup"]
    for report, name in zip(reports[1:], names[1:]):
        setup = report["setup"]
        for key in SAME_KEYS:
            if setup.get(key) != first.get(key):
                raise MergeError(
                    f"{name}: setup.{key} differs from {names[0]}: "
                    f"{setup.get(key)} vs {first.get(key)}"
                )
        if _augmentation_seed(setup) != _augmentation_seed(first):
            raise MergeError(
                f"{name}: augmentation seed {_augmentation_seed(setup)} "
                f"differs from {names[0]} ({_augmentation_seed(first)})"
            )


def merge_reports(
    reports: Sequence[dict], names: Optional[Sequence[str]] = None
) -> dict:
    """One report pooling the seeds of ``reports`` (same set-up).

    Parameters
    ----------
    reports : list of dict
        Parsed ``results.json`` files of ``minivox_pseudo_labels.py``.
    names : list of str, optional
        Their file names, for error messages and ``merged_from``.

    Returns
    -------
    dict
        ``{"setup", "runs", "summary"}`` as the benchmark writes it; the
        setup's ``seeds`` are all seeds, ``merged_from`` what each file ran.

    Raises
    ------
    MergeError
        Nothing to merge, different set-ups or a seed given twice in a row.
    """
    if not reports:
        raise MergeError("nothing to merge")
    names = list(names or [f"report {i}" for i in range(len(reports))])
    for report, name in zip(reports, names):
        if not {"setup", "runs"} <= set(report):
            raise MergeError(f"{name}: not a minivox_pseudo_labels.py result")
    check_same_setup(reports, names)
    pooled: Dict[str, Dict[int, dict]] = {}
    for report, name in zip(reports, names):
        for row, runs in report["runs"].items():
            by_seed = pooled.setdefault(row, {})
            for run in runs:
                if run["seed"] in by_seed:
                    raise MergeError(
                        f"{name}: seed {run['seed']} of {row} is already in "
                        "an earlier file"
                    )
                by_seed[run["seed"]] = run
    order = {row: i for i, row in enumerate(bench.ROWS)}
    runs: Dict[str, List[dict]] = {
        row: [by_seed[s] for s in sorted(by_seed)]
        for row, by_seed in sorted(
            pooled.items(), key=lambda kv: order.get(kv[0], len(order))
        )
    }
    first = reports[0]["setup"]
    setup = {key: first.get(key) for key in SAME_KEYS}
    setup["augmentation"] = first.get("augmentation")
    setup["seeds"] = sorted({s for r in reports for s in r["setup"]["seeds"]})
    setup["merged_from"] = [
        {
            "file": name,
            "seeds": report["setup"]["seeds"],
            **{k: report["setup"].get(k) for k in PER_FILE_KEYS},
        }
        for report, name in zip(reports, names)
    ]
    setup["total_seconds"] = sum(
        float(r["setup"].get("total_seconds") or 0.0) for r in reports
    )
    summary = {row: bench.summarise(runs[row]) for row in runs}
    return {"setup": setup, "runs": runs, "summary": summary}


def main(argv: Optional[List[str]] = None) -> dict:
    """Reads the files, merges them, writes results.json and results.md."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", nargs="+", help="results.json files")
    parser.add_argument("--out", required=True, help="merged results.json")
    args = parser.parse_args(argv)
    out = os.path.abspath(args.out)
    if out in {os.path.abspath(p) for p in args.results}:
        parser.error(f"--out={args.out} is one of the inputs")
    reports = []
    for path in args.results:
        try:
            with open(path, encoding="utf-8") as fin:
                reports.append(json.load(fin))
        except (OSError, json.JSONDecodeError) as err:
            parser.error(f"{path}: cannot read results ({err})")
    try:
        merged = merge_reports(reports, args.results)
    except MergeError as err:
        parser.error(str(err))
    os.makedirs(os.path.dirname(out), exist_ok=True)
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fout:
        json.dump(merged, fout, indent=2)
    os.replace(tmp, out)
    table = bench.markdown_table(
        merged["summary"], bench.caption_line(merged["setup"])
    )
    with open(os.path.splitext(out)[0] + ".md", "w", encoding="utf-8") as fout:
        fout.write(table)
    print(table)
    return merged


if __name__ == "__main__":
    main()
