"""export.py --threshold_from: decisions at the stored threshold, errors."""

import csv
import json
import os
import shutil
import sys

import pytest
from recipe_helpers import RECIPE, run_script
from trained_export import train_and_export

from speechbrain_ssps.inference import (
    CalibratedSpeakerRecognition,
    load_verifier,
)

sys.path.insert(0, RECIPE)

import export  # noqa: E402


@pytest.fixture(scope="module")
def verified(corpus, tmp_path_factory):
    """A 2-epoch run, its export and verify.py's results on list O.

    verify.py runs with one file per batch (tiny ``batch_seconds``), so its
    scores are those of ``verify_files`` (no padding) up to float noise.
    """
    root = tmp_path_factory.mktemp("threshold")
    out, folder = train_and_export(corpus, root / "run")
    verification = os.path.join(out, "verification")
    run_script(
        [
            "verify.py",
            "hparams/verification.yaml",
            f"--export_folder={folder}",
            f"--prep_folder={out}/save",
            f"--output_folder={verification}",
            "--device=cpu",
            "--batch_seconds=0.0001",
            "--make_plots=False",
        ]
    )
    with open(os.path.join(verification, "results.json")) as fin:
        results = json.load(fin)
    with open(os.path.join(out, "save", "test.csv"), newline="") as fin:
        wavs = {r["ID"]: r["wav"] for r in csv.DictReader(fin)}
    with open(os.path.join(out, "save", "trials_O.txt")) as fin:
        trials = [line.split() for line in fin if line.strip()]
    return {
        "run": out,
        "export": folder,
        "verification": verification,
        "results": results,
        "wavs": wavs,
        "trials": [(int(lab), a, b) for lab, a, b in trials],
    }


def _error_counts(verifier, verified, **kwargs):
    false_accepts = false_rejects = 0
    for label, enrol, test in verified["trials"]:
        wavs = verified["wavs"]
        _, same = verifier.verify_files(wavs[enrol], wavs[test], **kwargs)
        false_accepts += int(bool(same) and label == 0)
        false_rejects += int(not bool(same) and label == 1)
    return false_accepts, false_rejects


def test_stored_eer_threshold_reproduces_verify_error_rates(verified):
    folder = export.main(
        [
            verified["run"],
            f"--threshold_from={verified['verification']}",
            "--threshold_list=O",
            "--threshold_kind=eer",
        ]
    )
    stats = verified["results"]["O"]
    with open(os.path.join(folder, "threshold.json")) as fin:
        info = json.load(fin)
    assert info["threshold"] == stats["eer_threshold"]
    assert (info["kind"], info["trial_list"]) == ("eer", "O")
    assert info["source"] == os.path.join(
        verified["verification"], "results.json"
    )
    assert info["eer_percent"] == stats["eer_percent"]

    verifier = load_verifier(folder)
    assert isinstance(verifier, CalibratedSpeakerRecognition)
    assert verifier.threshold == stats["eer_threshold"]
    assert verifier.hparams.threshold == stats["eer_threshold"]

    # The rates verify.py measured at its EER threshold (accept if >=).
    threshold = stats["eer_threshold"]
    scores = []
    with open(os.path.join(verified["verification"], "scores_O.txt")) as fin:
        for line in fin:
            label, _, _, score = line.split()
            scores.append((int(label), float(score)))
    # scores_O.txt rounds to 6 decimals, the threshold is a trial's score.
    measured_fa = sum(s >= threshold - 1e-6 for lab, s in scores if lab == 0)
    measured_fr = sum(s < threshold - 1e-6 for lab, s in scores if lab == 1)
    n_target = stats["num_targets"]
    n_nontarget = stats["num_trials"] - n_target
    eer = 50.0 * (measured_fa / n_nontarget + measured_fr / n_target)
    assert eer == pytest.approx(stats["eer_percent"])

    false_accepts, false_rejects = _error_counts(verifier, verified)
    assert abs(false_accepts - measured_fa) <= 1
    assert abs(false_rejects - measured_fr) <= 1

    # threshold= overrides the stored value (SpeechBrain's verify_files
    # has no such argument).
    assert _error_counts(verifier, verified, threshold=2.0) == (0, n_target)


def test_manual_threshold_and_clearing(verified, tmp_path):
    folder = str(tmp_path / "export")
    export.main(
        [verified["run"], f"--export_folder={folder}", "--threshold=0.5"]
    )
    verifier = load_verifier(folder)
    assert verifier.threshold == 0.5
    assert verifier.threshold_info["kind"] == "manual"
    # A new export without a threshold removes the stored one.
    export.main([verified["run"], f"--export_folder={folder}"])
    assert not os.path.exists(os.path.join(folder, "threshold.json"))
    with pytest.raises(ValueError, match="has no threshold.json"):
        load_verifier(folder)
    plain = CalibratedSpeakerRecognition.from_hparams(
        source=folder, savedir=None
    )
    assert plain.threshold is None
    wav = next(iter(verified["wavs"].values()))
    with pytest.raises(ValueError, match="stores no decision threshold"):
        plain.verify_files(wav, wav)
    _, same = plain.verify_files(wav, wav, threshold=0.9)
    assert bool(same)


def test_trial_list_not_in_results(verified, tmp_path):
    folder = str(tmp_path / "export")
    args = [
        verified["run"],
        f"--export_folder={folder}",
        f"--threshold_from={verified['verification']}",
    ]
    with pytest.raises(ValueError) as error:
        export.main(args + ["--threshold_list=H"])
    assert "--threshold_list 'H' is not in" in str(error.value)
    assert "results.json" in str(error.value)
    assert not os.path.exists(folder)  # checked before exporting

    result = run_script(["export.py", *args, "--threshold_list=H"], check=False)
    assert result.returncode != 0
    assert "export.py: error: --threshold_list 'H'" in result.stderr


def test_results_of_another_model(verified, tmp_path):
    # verify.py measured the 1-epoch export; this one averages 2 epochs.
    folder = str(tmp_path / "export")
    with pytest.raises(ValueError, match="weights differ") as error:
        export.main(
            [
                verified["run"],
                f"--export_folder={folder}",
                "--average=2",
                f"--threshold_from={verified['verification']}",
            ]
        )
    assert verified["export"] in str(error.value)
    assert not os.path.exists(os.path.join(folder, "threshold.json"))


def test_threshold_file_of_another_model(verified, tmp_path):
    source = str(tmp_path / "calibrated")
    export.main(
        [verified["run"], f"--export_folder={source}", "--threshold=0.7"]
    )
    other = str(tmp_path / "other")
    export.main([verified["run"], f"--export_folder={other}", "--average=2"])
    shutil.copy(os.path.join(source, "threshold.json"), other)
    with pytest.raises(ValueError) as error:
        load_verifier(other)
    assert os.path.join(other, "threshold.json") in str(error.value)
    assert "does not match the model" in str(error.value)


def test_bad_threshold_sources(verified, tmp_path):
    folder = str(tmp_path / "export")
    base = [verified["run"], f"--export_folder={folder}"]
    with pytest.raises(ValueError, match="does not exist"):
        export.main(base + [f"--threshold_from={tmp_path}"])
    # Score-normalised thresholds do not apply to raw cosines.
    normed = tmp_path / "normed"
    shutil.copytree(verified["verification"], normed)
    results = dict(verified["results"])
    results["O"] = {**results["O"], "score_norm": "s-norm"}
    (normed / "results.json").write_text(json.dumps(results))
    with pytest.raises(ValueError, match="score_norm=s-norm"):
        export.main(base + [f"--threshold_from={normed}"])
    # results.json alone: the verified model is unknown.
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(os.path.join(verified["verification"], "results.json"), alone)
    with pytest.raises(ValueError, match="hyperparams.yaml not found"):
        export.main(base + [f"--threshold_from={alone}/results.json"])
    with pytest.raises(SystemExit):  # argparse: mutually exclusive
        export.main(
            base
            + [
                "--threshold=0.3",
                f"--threshold_from={verified['verification']}",
            ]
        )
