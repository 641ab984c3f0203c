"""train.py with --precision and --grad_accumulation_factor."""

import re

import pytest
from recipe_helpers import run_script, tiny_args


def _train(yaml, corpus, out, *extra, check=True):
    return run_script(
        [
            "train.py",
            f"hparams/{yaml}",
            f"--data_folder={corpus}",
            f"--output_folder={out}",
            "--number_of_epochs=2",
            *tiny_args(yaml),
            *extra,
        ],
        check=check,
    )


def test_fp16_on_the_cpu_stops_before_data_preparation(corpus, tmp_path):
    out = tmp_path / "run"
    result = _train("simclr.yaml", corpus, out, "--precision=fp16", check=False)
    assert result.returncode != 0
    assert "--precision=fp16 needs a CUDA device" in result.stderr
    assert not (out / "save" / "train.csv").exists()  # no prep ran


@pytest.mark.parametrize("yaml", ["dino_ssps.yaml", "simclr_ssps.yaml"])
def test_bf16_with_accumulation_trains(yaml, corpus, tmp_path):
    out = tmp_path / "run"
    _train(
        yaml,
        corpus,
        out,
        "--precision=bf16",
        "--grad_accumulation_factor=2",
        "--ssps_start_epoch=2",
        "--schedule_epochs=2",
        "--valid_every=0",
    )
    log = (out / "train_log.txt").read_text()
    lines = [line for line in log.splitlines() if line.startswith("epoch")]
    assert len(lines) == 2
    losses = [float(x) for x in re.findall(r"loss: ([-0-9.e+na]+)", log)]
    assert len(losses) == 2 and all(x == x for x in losses)  # not NaN
    assert "coverage" in lines[1]
