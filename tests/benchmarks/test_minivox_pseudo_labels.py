"""The pseudo-label benchmark's plan and report (no training here).

The benchmark trains for minutes and is not run in CI; these tests pin the
comparison: every stage-two run gets the same budget, iteration 2 starts
from iteration 1's export, the upper bound uses the true labels.
"""

import importlib.util
import json
import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
SPEC = importlib.util.spec_from_file_location(
    "minivox_pseudo_labels",
    os.path.join(REPO, "benchmarks", "minivox_pseudo_labels.py"),
)
bench = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(bench)


def _args(step):
    return dict(
        a[2:].split("=", 1)
        for a in step["args"]
        if a.startswith("--") and "=" in a
    )


def test_plan_same_budget_and_chained_exports(tmp_path):
    work, corpus = str(tmp_path / "w"), str(tmp_path / "c")
    steps = bench.plan(work, corpus, 20, 5, [], ["--number_of_epochs=3"])
    by_name = {s["name"]: s for s in steps}
    assert len(by_name) == len(steps)
    trains = [by_name[f"{s}:train"] for s in bench.STAGES]
    budgets = [
        {
            k: v
            for k, v in _args(s).items()
            if k not in ("train_csv", "output_folder", "init_from")
        }
        for s in trains
    ]
    assert all(b == budgets[0] for b in budgets)
    assert budgets[0]["number_of_epochs"] == "3"
    assert all(s["args"][0] == bench.PL_YAML for s in trains)

    ssl_export = f"{work}/ssl/export"
    iter1 = _args(by_name["pl_iter1:pseudo_label"])
    iter2 = _args(by_name["pl_iter2:pseudo_label"])
    assert iter1["export_folder"] == ssl_export
    assert iter2["export_folder"] == f"{work}/pl_iter1/export"
    assert iter1["num_clusters"] == iter2["num_clusters"] == "20"
    assert (
        _args(by_name["pl_iter2:train"])["init_from"] == iter2["export_folder"]
    )
    sup = _args(by_name["supervised:train"])
    assert sup["train_csv"] == f"{work}/ssl/save/train.csv"
    assert sup["init_from"] == ssl_export
    assert "supervised:pseudo_label" not in by_name
    # Every run is exported, then verified on the SSL run's trials.
    for name in ("ssl", *bench.STAGES):
        names = [s["name"] for s in steps]
        assert names.index(f"{name}:export") < names.index(f"{name}:verify")
        verify = _args(by_name[f"{name}:verify"])
        assert verify["prep_folder"] == f"{work}/ssl/save"


def test_collect_and_table(tmp_path):
    work = tmp_path
    os.makedirs(work / "ssl" / "verification")
    (work / "ssl" / "verification" / "results.json").write_text(
        json.dumps({"O": {"eer_percent": 12.5, "min_dcf": 0.8}})
    )
    os.makedirs(work / "pl_iter1" / "labels")
    (work / "pl_iter1" / "labels" / "pseudo_labels.json").write_text(
        json.dumps({"metrics": {"nmi_speaker": 0.9, "ari_speaker": 0.5}})
    )
    results = bench.collect(str(work))
    assert results["ssl"]["verification"]["O"]["eer_percent"] == 12.5
    assert results["pl_iter1"]["pseudo_labels"]["nmi_speaker"] == 0.9
    table = bench.markdown_table(results).splitlines()
    assert table[2].startswith("| ssl | 12.50 | 0.800 | - |")
    assert "| pl_iter1 | - | - | 0.900 | 0.500 | - | - |" in table
    assert len(table) == 2 + 4
