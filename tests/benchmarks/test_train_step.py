"""The training-step benchmark at a tiny size: its --precision option."""

import importlib.util
import os
import sys
import tempfile
from pathlib import Path

import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
SPEC = importlib.util.spec_from_file_location(
    "train_step", os.path.join(REPO, "benchmarks", "train_step.py")
)
bench = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(bench)

TINY = [
    "--frameworks", "simclr", "--channels", "16", "--batch", "2",
    "--local_seconds", "0.5", "--ref_seconds", "0.5", "--steps", "1",
    "--warmup", "0", "--utterances", "40", "--clusters", "4", "--queue", "40",
]  # fmt: skip


def _args(monkeypatch, *extra):
    monkeypatch.setattr(sys, "argv", ["train_step.py", *TINY, *extra])
    return bench.parse_args()


def test_precision_option_defaults_and_checks(monkeypatch):
    assert _args(monkeypatch).precisions == ["fp32"]  # CPU default
    args = _args(monkeypatch, "--precision", "fp32,bf16")
    assert args.precisions == ["fp32", "bf16"]
    with pytest.raises(ValueError, match="--precision=fp16"):
        _args(monkeypatch, "--precision", "fp16")


def test_bf16_step_is_measured(monkeypatch, capsys):
    args = _args(monkeypatch, "--precision", "bf16")
    with tempfile.TemporaryDirectory() as tmp:
        result = bench.bench_one(
            "simclr", 16, args, torch.device("cpu"), Path(tmp), "bf16"
        )
    assert result["precision"] == "bf16" and result["finite"]
    assert result["base"] > 0 and result["ssps"] > 0
    assert result["ssps_mem"] > 0  # peak RSS on the CPU
    bench.print_precision([result], torch.device("cpu"))
    assert "bf16" in capsys.readouterr().out
