"""Pooling the seeds of separate ``minivox_pseudo_labels.py`` invocations."""

import importlib.util
import json
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
SPEC = importlib.util.spec_from_file_location(
    "merge_pseudo_label_results",
    os.path.join(REPO, "benchmarks", "merge_pseudo_label_results.py"),
)
merge = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(merge)

BUDGET = {
    "ssl": {
        "number_of_epochs": "15",
        "ssps_start_epoch": "11",
        "ssps_num_clusters": "450",
        "ssps_queue_size": "2700",
    },
    "stage_two": {"number_of_epochs": "15"},
    "yamls": {"stage_two": "hparams/minivox_pl_ecapa.yaml"},
}


def report(seeds, eers, folder="/tmp/a", budget=None, aug_seed=7919):
    """A results.json of ``seeds``: rows -> one EER per seed."""
    runs = {
        row: [
            {"seed": s, "eer": e, "mindcf": 0.5, "nmi_speaker": 0.9}
            for s, e in zip(seeds, values)
        ]
        for row, values in eers.items()
    }
    setup = {
        "corpus": {
            "speakers": 150, "videos": 6, "utterances": 3,
            "test-speakers": 20, "seed": 0, "channel-strength": 0.25,
        },  # fmt: skip
        "corpus_folder": f"{folder}/corpus",
        "augmentation": {"folder": f"{folder}/aug", "seed": aug_seed},
        "seeds": list(seeds),
        "num_clusters": 450,
        "num_speakers": 188,
        "budget": budget or BUDGET,
        "host": "vm",
        "device": "cpu",
        "jobs": 2,
        "total_seconds": 100.0,
        "wall_seconds": {f"ssl_baseline/{s}": {"total": 9.0} for s in seeds},
    }
    summary = {r: merge.bench.summarise(v) for r, v in runs.items()}
    return {"setup": setup, "runs": runs, "summary": summary}


def test_seeds_are_pooled_in_seed_and_row_order_and_resummarised():
    a = report([1988], {"supervised": [4.0], "ssl_baseline": [12.0]})
    b = report(
        [1986, 1987],
        {"ssl_baseline": [10.0, 11.0], "supervised": [5.0, 6.0]},
        folder="/tmp/b",
    )
    merged = merge.merge_reports([a, b], ["a.json", "b.json"])
    assert list(merged["runs"]) == ["ssl_baseline", "supervised"]
    assert [r["seed"] for r in merged["runs"]["ssl_baseline"]] == [
        1986, 1987, 1988,
    ]  # fmt: skip
    base = merged["summary"]["ssl_baseline"]
    assert base["num_seeds"] == 3
    assert base["eer_mean"] == pytest.approx(11.0)
    assert base["eer_sd"] == pytest.approx(1.0)
    assert merged["summary"]["supervised"]["eer_mean"] == pytest.approx(5.0)
    setup = merged["setup"]
    assert setup["seeds"] == [1986, 1987, 1988]
    assert setup["total_seconds"] == pytest.approx(200.0)
    assert [m["file"] for m in setup["merged_from"]] == ["a.json", "b.json"]
    assert setup["merged_from"][1]["corpus_folder"] == "/tmp/b/corpus"
    # The caption is written from the merged set-up: all three seeds.
    assert "3 seed(s) (1986, 1987, 1988)" in merge.bench.caption_line(setup)


def test_different_budget_is_refused_naming_the_key():
    other = {**BUDGET, "stage_two": {"number_of_epochs": "30"}}
    a = report([1986], {"ssl_baseline": [10.0]})
    b = report([1987], {"ssl_baseline": [11.0]}, budget=other)
    with pytest.raises(merge.MergeError, match="b.json: setup.budget"):
        merge.merge_reports([a, b], ["a.json", "b.json"])


def test_different_augmentation_seed_is_refused():
    a = report([1986], {"ssl_baseline": [10.0]})
    b = report([1987], {"ssl_baseline": [11.0]}, aug_seed=1)
    with pytest.raises(merge.MergeError, match="augmentation seed 1"):
        merge.merge_reports([a, b], ["a.json", "b.json"])


def test_a_seed_twice_in_a_row_is_refused():
    a = report([1986], {"ssl_baseline": [10.0]})
    b = report([1986], {"ssl_baseline": [11.0]})
    with pytest.raises(merge.MergeError, match="seed 1986 of ssl_baseline"):
        merge.merge_reports([a, b], ["a.json", "b.json"])


def test_cli_writes_json_and_table_and_refuses_overwriting_an_input(
    tmp_path, capsys
):
    paths = []
    for seeds, eers in (([1986], [10.0]), ([1987], [12.0])):
        path = tmp_path / f"r{seeds[0]}.json"
        path.write_text(json.dumps(report(seeds, {"ssl_baseline": eers})))
        paths.append(str(path))
    out = tmp_path / "merged" / "results.json"
    merge.main(paths + ["--out", str(out)])
    written = json.loads(out.read_text())
    assert written["summary"]["ssl_baseline"]["eer_mean"] == pytest.approx(11)
    table = (tmp_path / "merged" / "results.md").read_text()
    assert "| ssl_baseline | SimCLR | 11.00 ± 1.41 |" in table
    before = (tmp_path / "r1986.json").read_text()
    with pytest.raises(SystemExit):
        merge.main(paths + ["--out", paths[0]])
    assert "is one of the inputs" in capsys.readouterr().err
    assert (tmp_path / "r1986.json").read_text() == before


def test_a_file_of_another_benchmark_is_refused(tmp_path):
    with pytest.raises(merge.MergeError, match="x.json: not a"):
        merge.merge_reports([{"simclr": {}}], ["x.json"])
