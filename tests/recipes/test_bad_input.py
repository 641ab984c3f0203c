"""train.py rejects impossible options before training, naming them."""

import os
import shutil

import pytest
from recipe_helpers import run_script, tiny_args


@pytest.mark.parametrize(
    "override, message",
    [
        (["--ssps_start_epoch=5"], "--ssps_start_epoch"),
        (["--batch_size=64"], "--batch_size"),
        (["--ssps_num_clusters=500"], "--ssps_num_clusters=500"),
        (["--ssps_num_neighbors=4"], "--ssps_num_neighbors=4"),
        (["--ssps_pos_dim=7"], "--ssps_pos_dim=7 contradicts"),
        (["--ssps_fill=buffers"], "--ssps_fill"),
        (["--no_such_option=1"], "no_such_option"),
        (["--valid_trials=E"], "--valid_trials=E: no "),
        (["--valid_every=-1"], "valid_every=-1"),
        (
            ["--ssps_mask_false_negatives=True", "--ssps_sampling=knn"],
            "--ssps_mask_false_negatives needs",
        ),
    ],
)
def test_impossible_options_fail_before_training(
    override, message, corpus, tmp_path
):
    out = tmp_path / "run"
    base = [*tiny_args("simclr_ssps.yaml"), "--ssps_start_epoch=2"]
    args = {a.split("=")[0]: a for a in base}
    args.update({a.split("=")[0]: a for a in override})
    result = run_script(
        [
            "train.py",
            "hparams/simclr_ssps.yaml",
            f"--data_folder={corpus}",
            f"--output_folder={out}",
            "--number_of_epochs=2",
            *args.values(),
        ],
        check=False,
    )
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    # Nothing trained: no checkpoint was written.
    save = out / "save"
    assert not save.exists() or not any(
        p.name.startswith("CKPT") for p in save.iterdir()
    )


def test_bad_audio_in_manifest_is_reported_at_start_up(corpus, tmp_path):
    # A copy of the corpus with one training file that is not audio.
    data = tmp_path / "data"
    shutil.copytree(corpus, data)
    wavs = sorted((data / "wav").rglob("*.wav"))
    victim = wavs[0]
    victim.write_text("not audio")
    out = tmp_path / "run"
    result = run_script(
        [
            "train.py",
            "hparams/simclr.yaml",
            f"--data_folder={data}",
            f"--output_folder={out}",
            "--number_of_epochs=1",
            *tiny_args("simclr.yaml"),
        ],
        check=False,
    )
    assert result.returncode != 0
    assert os.path.basename(str(victim)) in result.stdout + result.stderr
