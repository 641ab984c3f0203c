"""The demo script: its budget rules, and one tiny run end to end.

The tiny run goes through every step of ``minivox_demo.py`` (corpus and
augmentation, plain baseline, SSPS continued from the baseline's
checkpoint, export, verification, inference) on a 4-speaker corpus with a
tiny model, and checks the table it records.
"""

import doctest
import importlib.util
import json
import math
import os
import sys

import pytest
from recipe_helpers import RECIPE, TINY

# The demo imports its sibling demo_summary, as when it runs as a script.
sys.path.insert(0, RECIPE)
SPEC = importlib.util.spec_from_file_location(
    "minivox_demo", os.path.join(RECIPE, "minivox_demo.py")
)
demo = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(demo)


def test_budget_follows_the_corpus():
    corpus = demo.parse_corpus("speakers=10,videos=3,utterances=2")
    shared, ssps = demo.budget(corpus, epochs=9, ssps_start=8)
    assert "--number_of_epochs=9" in shared
    assert "--schedule_epochs=9" in shared
    # K = one cluster per training session, |Q'| = one epoch of utterances.
    assert "--ssps_num_clusters=30" in ssps
    assert "--ssps_queue_size=60" in ssps
    assert "--ssps_start_epoch=8" in ssps
    # Options of the SSPS yaml only never reach the plain run.
    assert not any(arg.startswith("--ssps_") for arg in shared)


def test_docstring_examples():
    import demo_summary

    assert doctest.testmod(demo).failed == 0
    assert doctest.testmod(demo_summary).failed == 0


def test_the_ssps_run_continues_the_epoch_its_fill_mode_leaves_plain():
    _, ssps = demo.budget(demo.CORPUS, epochs=16, ssps_start=13)
    assert demo.continued_epoch(ssps, 13) == 12  # the demo fills by a pass
    user = demo.merge_options(ssps, ["--ssps_fill=epoch"])
    assert demo.continued_epoch(user, 13) == 11
    assert "epochs 13-16 with SSPS" in demo.continuation_line(12, 13, 16)
    assert "epoch 12 fills its queues" in demo.continuation_line(11, 13, 16)


def test_verdict_reads_the_rows():
    worse = {
        "baseline": {"eer_percent": 10.0},
        "ssps": {"eer_percent": 12.0, "speaker_acc": 0.5},
    }
    assert "did not beat" in demo.verdict(worse)
    assert "50 %" in demo.verdict(worse)
    better = {
        "baseline": {"eer_percent": 10.0},
        "ssps": {"eer_percent": 8.0, "speaker_acc": 0.8},
    }
    assert demo.verdict(better).startswith("SSPS beat the baseline")
    assert "0.80x" in demo.verdict(better)


def test_corpus_overrides_are_checked():
    assert demo.parse_corpus("")["speakers"] == demo.CORPUS["speakers"]
    assert demo.parse_corpus("channel-strength=0.5")["channel-strength"] == 0.5
    with pytest.raises(SystemExit, match="speakerz"):
        demo.parse_corpus("speakerz=3")
    with pytest.raises(SystemExit, match="videos"):
        demo.parse_corpus("videos=many")


def test_ssps_options_go_to_the_ssps_run_only():
    both, ssps = demo.split_overrides(
        ["--lr=0.01", "--ssps_num_neighbors=2", "--dino_queue=logits"]
    )
    assert both == ["--lr=0.01"]
    assert ssps == ["--ssps_num_neighbors=2", "--dino_queue=logits"]
    assert demo.split_overrides(["--ref_crop_seconds=3"]) == (
        [],
        ["--ref_crop_seconds=3"],
    )


def test_user_options_replace_the_demos():
    _, ssps = demo.budget(demo.CORPUS)
    merged = demo.merge_options(ssps, ["--ssps_num_clusters=200"])
    assert merged.count("--ssps_num_clusters=200") == 1
    assert not any(o.startswith("--ssps_num_clusters=4") for o in merged)
    assert "--ssps_start_epoch=13" in merged


def test_impossible_ssps_start_is_refused(tmp_path):
    with pytest.raises(SystemExit):
        demo.main(
            [
                f"--output_folder={tmp_path}",
                "--epochs=4",
                "--ssps_start_epoch=6",
            ]
        )
    assert not os.listdir(tmp_path)


def test_tiny_demo_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "out"
    demo.main(
        [
            f"--data_folder={tmp_path / 'corpus'}",
            f"--output_folder={out}",
            "--corpus=speakers=4,videos=2,utterances=3,test-speakers=2,"
            "min-duration=2.5,max-duration=3.0",
            "--epochs=3",
            "--ssps_start_epoch=3",
            *TINY,
        ]
    )
    with open(out / "demo_results.json", encoding="utf-8") as f:
        record = json.load(f)
    base, ssps = record["results"]["baseline"], record["results"]["ssps"]
    for row in (base, ssps):
        assert 0.0 <= row["eer_percent"] <= 100.0
        assert math.isfinite(row["min_dcf"])
    # SSPS ran in the last epoch: its diagnostics are recorded, the
    # baseline has none.
    assert 0.0 <= ssps["speaker_acc"] <= 1.0
    assert "speaker_acc" not in base
    assert "--ssps_num_clusters=8" in record["train_overrides"]["ssps"]
    # SSPS continued the baseline's epoch 2 (ssps_start_epoch - 1: its
    # queues are filled by a pass, not by a training epoch).
    assert "--ssps_fill=pass" in record["train_overrides"]["ssps"]
    with open(out / "ssps" / "train_log.txt", encoding="utf-8") as f:
        epochs = [line.split(",")[0] for line in f if line.strip()]
    assert epochs == ["epoch: 3"]
    for run in ("baseline", "ssps"):
        assert os.path.isfile(out / run / "export" / "hyperparams.yaml")
    assert os.path.isfile(out / "ssps" / "verification" / "results.json")
    # The user's OMP_NUM_THREADS is kept and recorded.
    assert record["threads"] == "1"

    assert record["verdict"] == demo.verdict(record["results"])


def test_steps_get_all_cores_unless_the_user_sets_threads(monkeypatch):
    check = "import os, sys; sys.exit(os.environ['OMP_NUM_THREADS'] != '{}')"
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(demo.os, "cpu_count", lambda: 2)
    demo.run([sys.executable, "-c", check.format(2)])
    monkeypatch.setattr(demo.os, "cpu_count", lambda: 32)
    demo.run([sys.executable, "-c", check.format(demo.DEMO_THREADS)])
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    demo.run([sys.executable, "-c", check.format(1)])
    # A step whose environment differs fails the demo.
    with pytest.raises(SystemExit, match="step failed"):
        demo.run([sys.executable, "-c", check.format(3)])
