"""The MoCo, VICReg and SwAV MiniVox yamls end to end, through the scripts.

prep -> 2 training epochs (SSPS active in epoch 2 for ``*_ssps``) ->
export -> verify -> offline load with SpeechBrain's ``SpeakerRecognition``.
"""

import os
import re

import pytest
import torch
from recipe_helpers import load_offline, run_script, tiny_args, verify_export

# Framework-specific tiny sizes (the MoCo queue must exceed the batch of 4).
TINY_FRAMEWORK = {
    "moco": ["--moco_queue_size=16"],
    "vicreg": ["--projector_hidden_dim=32", "--projector_out_dim=16"],
    "swav": [
        "--projector_hidden_dim=32",
        "--projector_out_dim=16",
        "--swav_num_prototypes=8",
        "--swav_queue_size=8",
        "--swav_queue_start_epoch=2",
    ],
}


def _epochs(train_log):
    with open(train_log, encoding="utf-8") as f:
        lines = [line for line in f if line.startswith("epoch:")]
    return [
        {k: float(v) for k, v in re.findall(r"train (\w+): ([-+0-9.eE]+)", ln)}
        for ln in lines
    ]


def _framework(yaml):
    """``minivox_moco_ssps.yaml`` -> ``moco``."""
    return yaml[len("minivox_") :].split(".")[0].split("_")[0]


def _train(yaml, corpus, out):
    args = [f"--data_folder={corpus}", f"--output_folder={out}"]
    args += tiny_args(yaml) + TINY_FRAMEWORK[_framework(yaml)]
    args += ["--number_of_epochs=2"]
    if "ssps" in yaml:
        args.append("--ssps_start_epoch=2")
    return run_script(["train.py", f"hparams/{yaml}", *args])


@pytest.mark.parametrize(
    "yaml",
    [
        "minivox_moco.yaml",
        "minivox_moco_ssps.yaml",
        "minivox_vicreg.yaml",
        "minivox_vicreg_ssps.yaml",
        "minivox_swav.yaml",
        "minivox_swav_ssps.yaml",
    ],
)
def test_prep_train_export_verify_load(yaml, corpus, tmp_path):
    out = str(tmp_path / "run")
    _train(yaml, corpus, out)

    save = os.path.join(out, "save")
    ckpts = sorted(d for d in os.listdir(save) if d.startswith("CKPT+"))
    assert ckpts
    epochs = _epochs(os.path.join(out, "train_log.txt"))
    assert len(epochs) == 2
    assert all(e["loss"] == e["loss"] for e in epochs)  # finite, not NaN
    for e in epochs:
        assert 0.0 <= e["valid_eer"] <= 100.0
    latest = os.path.join(save, ckpts[-1])
    if "moco" in yaml:
        # The EMA key encoder and the negative queue are checkpointed.
        assert epochs[1]["momentum"] == pytest.approx(0.99)
        for name in ("teacher_model.ckpt", "ssl_loss.ckpt"):
            assert os.path.isfile(os.path.join(latest, name)), name
        state = torch.load(os.path.join(latest, "ssl_loss.ckpt"))
        assert state["queue"].shape == (2, 16, 32)
        # 2 epochs x 6 steps x 4 keys written into a ring of 16 rows.
        assert int(state["queue_ptr"]) == (2 * 6 * 4) % 16
    elif "swav" in yaml:
        # The prototypes and the queue are checkpointed; the queue is on
        # in epoch 2 (--swav_queue_start_epoch=2) and full (8 rows).
        for name in ("projector.ckpt", "prototypes.ckpt", "ssl_loss.ckpt"):
            assert os.path.isfile(os.path.join(latest, name)), name
        state = torch.load(os.path.join(latest, "ssl_loss.ckpt"))
        assert state["queue"].shape == (2, 8, 16)
        assert int(state["queue_filled"]) == 8
        assert [e["swav_queue"] for e in epochs] == [0.0, 1.0]
    else:
        assert os.path.isfile(os.path.join(latest, "projector.ckpt"))
        for term in ("vicreg_inv", "vicreg_var", "vicreg_cov"):
            assert epochs[1][term] >= 0.0
    if "ssps" in yaml:
        assert epochs[0]["coverage"] == 0.0
        assert epochs[1]["coverage"] > 0.0
        for key in ("speaker_acc", "video_acc"):
            assert 0.0 <= epochs[1][key] <= 1.0

    run_script(["export.py", out])
    export = os.path.join(out, "export")
    assert os.path.isfile(os.path.join(export, "embedding_model.ckpt"))
    verification = os.path.join(out, "verification")
    results = verify_export(export, save, verification)
    assert 0.0 <= results["O"]["eer_percent"] <= 100.0
    assert results["O"]["num_trials"] > 0

    model = load_offline(export)
    emb = model.encode_batch(torch.zeros(2, 16000))
    assert emb.shape == (2, 1, 32)


@pytest.mark.parametrize(
    "yaml, option, value",
    [
        ("minivox_moco.yaml", "moco_queue_size", 4),  # = the batch of 4
        ("minivox_moco.yaml", "moco_temperature", 0),
        ("minivox_moco.yaml", "momentum_teacher", 1.5),
        ("minivox_vicreg.yaml", "vicreg_cov_weight", -0.1),
        ("minivox_swav.yaml", "swav_sk_epsilon", 0),
        ("minivox_swav.yaml", "swav_sk_epsilon", -0.05),
        ("minivox_swav.yaml", "swav_temperature", 0),
    ],
)
def test_bad_options_stop_the_run_naming_them(
    yaml, option, value, corpus, tmp_path
):
    tiny = [
        a
        for a in TINY_FRAMEWORK[_framework(yaml)]
        if not a.startswith(f"--{option}=")
    ]
    result = run_script(
        [
            "train.py",
            f"hparams/{yaml}",
            f"--data_folder={corpus}",
            f"--output_folder={tmp_path}",
            *tiny_args(yaml),
            *tiny,
            "--number_of_epochs=1",
            f"--{option}={value}",
        ],
        check=False,
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert re.search(rf"\b{option}(=\S+)? must", output), output[-3000:]
