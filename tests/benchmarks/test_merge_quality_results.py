"""Pooling the seeds of separate ``minivox_quality.py`` invocations."""

import importlib.util
import json
import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
sys.path.insert(0, os.path.join(REPO, "benchmarks"))
SPEC = importlib.util.spec_from_file_location(
    "merge_quality_results",
    os.path.join(REPO, "benchmarks", "merge_quality_results.py"),
)
merge = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(merge)
bench = merge.bench

BUDGET = {
    "simclr/baseline": ["minivox_simclr.yaml", "--number_of_epochs=24"],
    "simclr/ssps": [
        "minivox_simclr_ssps.yaml",
        "--number_of_epochs=24",
        "--ssps_start_epoch=21",
    ],
}


def report(seeds, eers, conditions=("baseline", "ssps"), corpus=None):
    """A results.json of ``seeds`` with one EER per (condition, seed)."""
    out = {"simclr": {}}
    for condition in conditions:
        runs = [
            {
                "seed": seed,
                "eer": eers[condition][i],
                "mindcf": 0.5,
                "per_epoch": {"21": {"valid_eer": eers[condition][i]}},
            }
            for i, seed in enumerate(seeds)
        ]
        out["simclr"][condition] = bench.summarise(runs)
    return {
        **out,
        "premise": {"simclr": {"speaker_acc": 0.8, "K": 1000}},
        "corpus": corpus or {"speakers": 100, "videos": 10},
        "budget": {
            k: v for k, v in BUDGET.items() if k.split("/")[1] in conditions
        },
        "plain_phase": "shared",
        "augmentation": {"seed": 7919},
        "device": "cpu",
        "seeds": list(seeds),
        "total_seconds": 10.0,
    }


def test_seeds_are_pooled_and_resummarised():
    a = report([1986], {"baseline": [12.0], "ssps": [9.0]})
    b = report([1987, 1988], {"baseline": [10.0, 14.0], "ssps": [8.0, 10.0]})
    merged = merge.merge_reports([b, a], ["b.json", "a.json"])
    base = merged["simclr"]["baseline"]
    assert [r["seed"] for r in base["runs"]] == [1986, 1987, 1988]
    assert base["num_seeds"] == 3
    assert base["eer_mean"] == pytest.approx(12.0)
    assert base["eer_sd"] == pytest.approx(2.0)
    assert merged["simclr"]["ssps"]["eer_mean"] == pytest.approx(9.0)
    assert merged["seeds"] == [1986, 1987, 1988]
    # The premise of the lowest seed's file stays the headline one.
    assert [p["file"] for p in merged["premise_runs"]] == ["a.json", "b.json"]
    assert merged["total_seconds"] == pytest.approx(20.0)


def test_a_condition_with_fewer_seeds_is_kept_and_marked():
    a = report(
        [1986],
        {"baseline": [12.0], "ssps": [9.0], "oracle": [3.0]},
        conditions=("baseline", "ssps", "oracle"),
    )
    b = report([1987], {"baseline": [10.0], "ssps": [8.0]})
    merged = merge.merge_reports([a, b])
    assert merged["simclr"]["oracle"]["num_seeds"] == 1
    assert list(merged["simclr"]) == ["baseline", "ssps", "oracle"]
    table = bench.markdown_table({"simclr": merged["simclr"]})
    assert "| oracle (labels) (1 seed) |" in table
    assert "| same utterance | 11.00" in table


def test_different_setups_or_repeated_seeds_are_refused():
    a = report([1986], {"baseline": [12.0], "ssps": [9.0]})
    other = report(
        [1987], {"baseline": [1.0], "ssps": [1.0]}, corpus={"speakers": 50}
    )
    with pytest.raises(merge.MergeError, match="b.json: corpus differs"):
        merge.merge_reports([a, other], ["a.json", "b.json"])
    budget = report([1987], {"baseline": [1.0], "ssps": [1.0]})
    budget["budget"]["simclr/ssps"] = ["minivox_simclr_ssps.yaml", "--x=1"]
    with pytest.raises(merge.MergeError, match="budget of simclr/ssps"):
        merge.merge_reports([a, budget], ["a.json", "b.json"])
    with pytest.raises(merge.MergeError, match="seed 1986 of simclr/baseline"):
        merge.merge_reports([a, a], ["a.json", "again.json"])


def test_command_line_writes_json_table_and_plot(tmp_path):
    paths = []
    for name, seeds, eers in (
        ("a", [1986], {"baseline": [12.0], "ssps": [9.0]}),
        ("b", [1987], {"baseline": [10.0], "ssps": [8.0]}),
    ):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(report(seeds, eers)))
        paths.append(str(path))
    out = tmp_path / "merged" / "results.json"
    merge.main([*paths, "--out", str(out)])
    merged = json.loads(out.read_text())
    assert merged["simclr"]["ssps"]["eer_mean"] == pytest.approx(8.5)
    assert (
        "| simclr | SSPS | 8.50 ± 0.71 |"
        in (tmp_path / "merged" / "results.md").read_text()
    )
    assert (tmp_path / "merged" / "results_simclr.png").stat().st_size > 0
    assert merge.ssps_start_epoch(merged, "simclr") == 21
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SystemExit):
        merge.main([str(bad), "--out", str(out)])
