"""train.py with the MiniVox augmentation set as its MUSAN and RIR folders.

A tiny set (synthetic noise, music, babble and simulated RIRs) is passed
as ``--musan_folder`` / ``--rir_folder``; the run writes the augmentation
CSVs and trains SimCLR for 2 epochs, with SSPS active in epoch 2.
"""

import csv
import os

from recipe_helpers import run_script, tiny_args

from speechbrain_ssps.minivox.augmentation import generate_augmentation

YAML = "minivox_simclr_ssps.yaml"
COUNTS = {"noise": 3, "music": 2, "speech": 2, "rir": 3}


def _rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_simclr_ssps_trains_with_minivox_augmentation(corpus, tmp_path):
    aug = generate_augmentation(
        tmp_path / "aug",
        seed=1,
        num_noise=COUNTS["noise"],
        num_music=COUNTS["music"],
        num_speech=COUNTS["speech"],
        num_rirs=COUNTS["rir"],
        duration=2.0,
        workers=1,
    )
    out = str(tmp_path / "run")
    args = [f"--data_folder={corpus}", f"--output_folder={out}"]
    args += tiny_args(YAML)
    args += ["--number_of_epochs=2", "--schedule_epochs=2"]
    args += ["--ssps_start_epoch=2"]
    args += [
        f"--musan_folder={aug['musan_folder']}",
        f"--rir_folder={aug['rir_folder']}",
    ]
    run_script(["train.py", f"hparams/{YAML}", *args])

    # The augmentation lists list every file of the set.
    augment = os.path.join(out, "save", "augment")
    for category in ("noise", "music", "speech"):
        rows = _rows(os.path.join(augment, f"musan_{category}.csv"))
        assert len(rows) == COUNTS[category], category
        assert all(row["wav"].startswith(aug["musan_folder"]) for row in rows)
    rirs = _rows(os.path.join(augment, "rir.csv"))
    assert len(rirs) == COUNTS["rir"]
    assert all(row["wav"].startswith(aug["rir_folder"]) for row in rirs)

    # Both epochs ran, the second one with SSPS.
    with open(os.path.join(out, "train_log.txt"), encoding="utf-8") as f:
        epochs = [line for line in f if line.startswith("epoch:")]
    assert [line.split(",")[0] for line in epochs] == ["epoch: 1", "epoch: 2"]
    coverage = [
        float(line.split("train coverage: ")[1].split(",")[0])
        for line in epochs
    ]
    assert coverage[0] == 0.0 and coverage[1] > 0.0  # queues, then swaps
    with open(os.path.join(out, "log.txt"), encoding="utf-8") as f:
        assert "augmentation is off" not in f.read()
