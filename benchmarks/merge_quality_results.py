"""Merge ``minivox_quality.py`` results of the same set-up run seed by seed.

On a CPU the regime benchmark takes hours per seed, so its seeds are run in
separate invocations (``--seed-offset``); this script joins their
``results.json`` files into one, as if all seeds had run together: the runs
of every (framework, condition) pooled and re-summarised (mean and sd over
seeds), the markdown table and the per-epoch plots written again.

The files must describe the same experiment: equal corpus, augmentation
seed and device-independent budget (yaml and ``train.py`` overrides of
every condition present in both) -- otherwise the merge is refused, naming
the key that differs. A seed present twice for one condition is refused
too. Conditions run for fewer seeds than others are kept (their
``num_seeds`` says so and the table marks them). The premise check, run on
the first seed of each invocation, is kept per seed under ``premise_runs``;
``premise`` stays that of the lowest seed.

Run::

    python benchmarks/merge_quality_results.py seed1986/results.json \\
        seeds1987-1988/results.json --out merged/results.json
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import minivox_quality as bench  # noqa: E402

# Keys whose values describe the run set-up, not a per-condition result.
SETUP_KEYS = ("corpus", "budget", "augmentation", "plain_phase")


class MergeError(ValueError):
    """Results that cannot be pooled, with the reason."""


def _conditions(report):
    """``{framework: {condition: summary}}`` of one results file."""
    return {
        f: report[f]
        for f in bench.FRAMEWORKS
        if f in report and isinstance(report[f], dict)
    }


def _check_same_setup(reports, names):
    first = reports[0]
    for report, name in zip(reports[1:], names[1:]):
        if report.get("corpus") != first.get("corpus"):
            raise MergeError(f"{name}: corpus differs from {names[0]}")
        aug_a = (first.get("augmentation") or {}).get("seed")
        aug_b = (report.get("augmentation") or {}).get("seed")
        if aug_a != aug_b:
            raise MergeError(
                f"{name}: augmentation seed {aug_b} differs from "
                f"{names[0]} ({aug_a})"
            )
        if report.get("plain_phase") != first.get("plain_phase"):
            raise MergeError(f"{name}: plain_phase differs from {names[0]}")
        budget_a, budget_b = first.get("budget", {}), report.get("budget", {})
        for key in sorted(set(budget_a) & set(budget_b)):
            if budget_a[key] != budget_b[key]:
                raise MergeError(
                    f"{name}: budget of {key} differs from {names[0]}: "
                    f"{budget_b[key]} vs {budget_a[key]}"
                )


def merge_reports(reports, names=None):
    """One report pooling the seeds of ``reports`` (same set-up).

    Parameters
    ----------
    reports : list of dict
        Parsed ``results.json`` files of ``minivox_quality.py``.
    names : list of str, optional
        Their file names, for error messages.

    Returns
    -------
    dict
        The merged report, in the shape ``minivox_quality.py`` writes.

    Raises
    ------
    MergeError
        Different set-ups, or a seed given twice for one condition.
    """
    if not reports:
        raise MergeError("nothing to merge")
    names = names or [f"report {i}" for i in range(len(reports))]
    _check_same_setup(reports, names)
    runs = {}  # (framework, condition) -> {seed: run}
    for report, name in zip(reports, names):
        for framework, by_condition in _conditions(report).items():
            for condition, summary in by_condition.items():
                pooled = runs.setdefault((framework, condition), {})
                for run in summary["runs"]:
                    if run["seed"] in pooled:
                        raise MergeError(
                            f"{name}: seed {run['seed']} of "
                            f"{framework}/{condition} is already in an "
                            "earlier file"
                        )
                    pooled[run["seed"]] = run
    merged = {}
    for (framework, condition), by_seed in runs.items():
        ordered = [by_seed[s] for s in sorted(by_seed)]
        merged.setdefault(framework, {})[condition] = bench.summarise(ordered)
    # Conditions in the benchmark's own order.
    order = {c: i for i, c in enumerate(bench.CONDITIONS)}
    merged = {
        f: dict(sorted(c.items(), key=lambda kv: order.get(kv[0], 99)))
        for f, c in merged.items()
    }
    by_first_seed = sorted(
        zip(reports, names), key=lambda rn: min(rn[0].get("seeds") or [0])
    )
    premise_runs = []
    for report, name in by_first_seed:
        for framework, entry in (report.get("premise") or {}).items():
            premise_runs.append(
                {"framework": framework, "file": name, **(entry or {})}
            )
    first = by_first_seed[0][0]
    budget = {}
    for report in reports:
        budget.update(report.get("budget", {}))
    return {
        **merged,
        "premise": first.get("premise", {}),
        "premise_runs": premise_runs,
        "corpus": first.get("corpus"),
        "budget": budget,
        "plain_phase": first.get("plain_phase"),
        "augmentation": first.get("augmentation"),
        "device": sorted({str(r.get("device")) for r in reports}),
        "seeds": sorted({s for r in reports for s in r.get("seeds", [])}),
        "nmi": first.get("nmi"),
        "pp_acc": first.get("pp_acc"),
        "merged_from": list(names),
        "total_seconds": sum(r.get("total_seconds", 0.0) for r in reports),
    }


def ssps_start_epoch(report, framework):
    """The first SSPS epoch recorded in the budget of ``framework``."""
    for key, args in report.get("budget", {}).items():
        if not key.startswith(f"{framework}/"):
            continue
        for arg in args:
            if arg.startswith("--ssps_start_epoch="):
                return int(arg.split("=", 1)[1])
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", nargs="+", help="results.json files")
    parser.add_argument("--out", required=True, help="merged results.json")
    args = parser.parse_args(argv)
    reports = []
    for path in args.results:
        try:
            with open(path, encoding="utf-8") as f:
                reports.append(json.load(f))
        except (OSError, json.JSONDecodeError) as err:
            parser.error(f"{path}: cannot read results ({err})")
    try:
        merged = merge_reports(reports, args.results)
    except MergeError as err:
        parser.error(str(err))
    out = os.path.abspath(args.out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(merged, f, indent=2)
    os.replace(tmp, out)
    results = {f: merged[f] for f in _conditions(merged)}
    for framework in results:
        start = ssps_start_epoch(merged, framework)
        if start is not None:
            bench.plot_epochs(
                results,
                framework,
                f"{os.path.splitext(out)[0]}_{framework}.png",
                start,
            )
    table = bench.markdown_table(results)
    with open(os.path.splitext(out)[0] + ".md", "w", encoding="utf-8") as f:
        f.write(table)
    print(table)


if __name__ == "__main__":
    main()
