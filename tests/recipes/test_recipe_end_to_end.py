"""The recipe end to end on a tiny MiniVox corpus, through the real scripts.

prep -> 2 training epochs (SSPS active in epoch 2) -> export -> verify ->
offline load with SpeechBrain's ``SpeakerRecognition``, for every yaml.
"""

import os
import re

import pytest
import torch
from recipe_helpers import load_offline, run_script, tiny_args, verify_export


def _epochs(train_log):
    with open(train_log, encoding="utf-8") as f:
        lines = [line for line in f if line.startswith("epoch:")]
    return [
        {k: float(v) for k, v in re.findall(r"train (\w+): ([-+0-9.eE]+)", ln)}
        for ln in lines
    ]


@pytest.mark.parametrize(
    "yaml",
    [
        "dino.yaml",
        "dino_ssps.yaml",
        "simclr.yaml",
        "simclr_ssps.yaml",
        "minivox_dino_ssps.yaml",
    ],
)
def test_prep_train_export_verify_load(yaml, corpus, tmp_path):
    out = str(tmp_path / "run")
    args = [f"--data_folder={corpus}", f"--output_folder={out}"]
    args += tiny_args(yaml) + ["--number_of_epochs=2"]
    # This test checks curves.png: drawing on, unlike the other tiny runs.
    args = [a for a in args if not a.startswith("--write_curves")]
    if "ssps" in yaml:
        args.append("--ssps_start_epoch=2")
    run_script(["train.py", f"hparams/{yaml}", *args])

    # Training artefacts (SpeechBrain's experiment folder + manifests).
    for name in (
        "train_log.txt",
        "curves.png",  # written after every epoch (speechbrain_ssps.curves)
        "log.txt",
        "env.log",
        "hyperparams.yaml",
        "save/train.csv",
        "save/test.csv",
        "save/trials_O.txt",
    ):
        assert os.path.isfile(os.path.join(out, name)), name
    ckpts = [
        d
        for d in os.listdir(os.path.join(out, "save"))
        if d.startswith("CKPT+")
    ]
    assert ckpts
    epochs = _epochs(os.path.join(out, "train_log.txt"))
    assert len(epochs) == 2
    assert all(e["loss"] == e["loss"] for e in epochs)  # finite, not NaN
    # The end-of-epoch verification pass on the O list (valid_every: 1).
    for e in epochs:
        assert 0.0 <= e["valid_eer"] <= 100.0
        assert 0.0 <= e["valid_mindcf"] <= 1.0 + 1e-6
    if "ssps" in yaml:
        # Epoch 1 fills the queues, epoch 2 swaps positives.
        assert epochs[0]["coverage"] == 0.0
        assert epochs[1]["coverage"] > 0.0
        for key in ("speaker_acc", "video_acc", "nmi_speaker", "nmi_video"):
            assert 0.0 <= epochs[1][key] <= 1.0
        # The queues live in the latest checkpoint only.
        with_ssps = [
            c
            for c in ckpts
            if os.path.exists(os.path.join(out, "save", c, "ssps.ckpt"))
        ]
        assert len(with_ssps) == 1

    run_script(["export.py", out])
    export = os.path.join(out, "export")
    assert os.path.isfile(os.path.join(export, "hyperparams.yaml"))
    assert os.path.isfile(os.path.join(export, "embedding_model.ckpt"))

    verification = os.path.join(out, "verification")
    results = verify_export(export, f"{out}/save", verification)
    assert 0.0 <= results["O"]["eer_percent"] <= 100.0
    assert results["O"]["min_dcf"] >= 0.0
    assert results["O"]["num_trials"] > 0
    pngs = [p for p in os.listdir(verification) if p.endswith(".png")]
    assert len(pngs) >= 2

    # The export loads offline behind SpeechBrain's inference API.
    model = load_offline(export)
    with open(os.path.join(out, "save", "trials_O.txt")) as f:
        _, enrol, test = f.readline().split()
    wavs = {}
    with open(os.path.join(out, "save", "test.csv")) as f:
        for line in f.readlines()[1:]:
            fields = line.strip().split(",")
            wavs[fields[0]] = fields[2]
    score, _ = model.verify_files(wavs[enrol], wavs[test])
    assert -1.0 <= float(score) <= 1.0
    emb = model.encode_batch(torch.zeros(2, 16000))
    assert emb.shape == (2, 1, 32)
