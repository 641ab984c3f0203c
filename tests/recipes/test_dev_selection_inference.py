"""One tiny run: dev split -> validation on dev -> ``--select best_dev``,
and inference of its export on 8 kHz and 44.1 kHz audio.

Training holds 2 of the 4 MiniVox training speakers out (``--dev_speakers
2``), validates on them every epoch (``--valid_trials=dev``), and the export
takes the epoch of lowest dev EER. SpeechBrain's ``SpeakerRecognition``
resamples any input rate to the export's 16 kHz (its ``audio_normalizer``),
so the same utterance at 8 or 44.1 kHz scores close to itself at 16 kHz.
"""

import csv
import json
import os

import pytest
import soundfile as sf
import torch
import torchaudio.functional as AF
import yaml
from recipe_helpers import load_offline, run_script, tiny_args

YAML = "simclr.yaml"
EPOCHS = 3


@pytest.fixture(scope="module")
def run(corpus, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("dev_run") / "run")
    args = [f"--data_folder={corpus}", f"--output_folder={out}"]
    args += tiny_args(YAML) + [
        f"--number_of_epochs={EPOCHS}",
        f"--keep_checkpoints={EPOCHS}",
        "--dev_speakers=2",
        "--valid_trials=dev",
        "--valid_segment_seconds=1.0",
    ]
    run_script(["train.py", f"hparams/{YAML}", *args])
    result = run_script(["export.py", out, "--select", "best_dev"])
    return out, result.stdout.strip().splitlines()[-1]


def epoch_metas(out):
    save = os.path.join(out, "save")
    metas = []
    for name in sorted(os.listdir(save)):
        if name.startswith("CKPT+"):
            with open(os.path.join(save, name, "CKPT.yaml")) as f:
                metas.append(yaml.safe_load(f))
    return metas


def test_dev_validation_and_best_dev_export(run):
    out, export = run
    save = os.path.join(out, "save")
    with open(os.path.join(save, "train.csv"), newline="") as f:
        train_speakers = {row["spk_id"] for row in csv.DictReader(f)}
    with open(os.path.join(save, "dev.csv"), newline="") as f:
        dev_speakers = {row["spk_id"] for row in csv.DictReader(f)}
    assert len(train_speakers) == len(dev_speakers) == 2
    assert not train_speakers & dev_speakers
    metas = epoch_metas(out)
    assert len(metas) == EPOCHS
    assert {m["valid_trials"] for m in metas} == {"dev"}
    best = min(metas, key=lambda m: (m["valid_eer"], -m["epoch"]))
    with open(os.path.join(export, "selection.json")) as f:
        record = json.load(f)
    assert record["select"] == "best_dev"
    assert record["epochs"] == [best["epoch"]]
    assert record["valid_eer"] == [best["valid_eer"]]
    with open(os.path.join(out, "train_log.txt")) as f:
        assert all("valid_eer" in line for line in f if line.strip())


def resampled_copy(path, rate, folder):
    audio, orig = sf.read(path, dtype="float32")
    wav = AF.resample(torch.from_numpy(audio)[None], orig, rate)[0]
    target = os.path.join(folder, f"{rate}_{os.path.basename(path)}")
    sf.write(target, wav.numpy(), rate)
    return target


def test_inference_on_other_rates(run, corpus, tmp_path):
    _, export = run
    model = load_offline(export)
    with open(os.path.join(run[0], "save", "test.csv"), newline="") as f:
        paths = [row["wav"] for row in csv.DictReader(f)][:3]
    for path in paths:
        assert sf.info(path).samplerate == 16000
        for rate in (8000, 44100):
            other = resampled_copy(path, rate, str(tmp_path))
            assert sf.info(other).samplerate == rate
            score, _ = model.verify_files(path, other)
            assert float(score) > 0.9, (path, rate, float(score))
