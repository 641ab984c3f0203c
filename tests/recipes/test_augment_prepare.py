"""Tests for recipes/VoxCeleb/SSPS/augment_prepare.py on fake MUSAN/RIRs."""

import csv
import logging
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from speechbrain.augment.time_domain import AddNoise, AddReverb

RECIPE_DIR = Path(__file__).resolve().parents[2] / "recipes/VoxCeleb/SSPS"
sys.path.insert(0, str(RECIPE_DIR))

import augment_prepare as ap  # noqa: E402

RATE = 16000
MUSAN = {
    "noise/free-sound/noise-free-sound-0000.wav": 8000,
    "noise/free-sound/noise-free-sound-0001.wav": 24000,
    "noise/sound-bible/noise-sound-bible-0000.wav": 16000,
    "speech/librivox/speech-librivox-0000.wav": 20000,
    "speech/us-gov/speech-us-gov-0000.wav": 12000,
    "music/fma/music-fma-0000.wav": 32000,
}
RIRS = {
    "smallroom/Room001/Room001-00001.wav": 1600,
    "mediumroom/Room001/Room001-00001.wav": 2400,
    "largeroom/Room002/Room002-00003.wav": 3200,
}


def write_files(root, files, seed=0, decay=False):
    rng = np.random.default_rng(seed)
    for rel, n in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        audio = 0.3 * rng.standard_normal(n)
        if decay:  # RIR-like: direct path then exponential tail
            audio *= np.exp(-np.arange(n) / 400)
            audio[0] = 1.0
        sf.write(str(path), audio.astype("float32"), RATE, subtype="PCM_16")
    return root


@pytest.fixture
def musan(tmp_path):
    root = write_files(tmp_path / "musan", MUSAN)
    (root / "README").write_text("MUSAN")
    (root / "noise" / "free-sound" / "ANNOTATIONS").write_text("x")
    return root


@pytest.fixture
def rirs(tmp_path):
    return write_files(tmp_path / "rirs", RIRS, seed=1, decay=True)


def snapshot(root):
    return sorted(
        (str(p.relative_to(root)), p.stat().st_mtime_ns, p.stat().st_size)
        for p in root.rglob("*")
    )


def read_rows(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["ID", "duration", "wav", "wav_format", "wav_opts"]
    return rows[1:]


def expected_rows(root, files, prefix=""):
    rows = []
    for rel, n in sorted(files.items()):
        if not rel.startswith(prefix):
            continue
        utt_id = rel[: -len(".wav")]
        rows.append([utt_id, f"{n / RATE:.5f}", str(root / rel), "wav", ""])
    return rows


def test_musan_csvs_feed_add_noise(musan, tmp_path):
    before = snapshot(musan)
    out = ap.prepare_musan(str(musan), str(tmp_path / "aug"))
    assert out == {
        c: str(tmp_path / "aug" / f"musan_{c}.csv")
        for c in ("noise", "speech", "music")
    }
    for category, path in out.items():
        assert read_rows(path) == expected_rows(musan, MUSAN, category + "/")

    torch.manual_seed(0)
    clean = 0.1 * torch.randn(4, 16000)
    lengths = torch.ones(4)
    for path in out.values():
        noisy = AddNoise(csv_file=path, snr_low=0, snr_high=15)(clean, lengths)
        assert noisy.shape == clean.shape
        assert not torch.allclose(noisy, clean)
        assert torch.isfinite(noisy).all()
    assert snapshot(musan) == before


def test_rir_csv_feeds_add_reverb(rirs, tmp_path):
    before = snapshot(rirs)
    out = ap.prepare_rir(str(rirs), str(tmp_path / "aug"))
    assert out == str(tmp_path / "aug" / "rir.csv")
    rows = read_rows(out)
    assert rows == expected_rows(rirs, RIRS)
    assert len({row[0] for row in rows}) == len(RIRS)  # IDs unique

    torch.manual_seed(0)
    clean = 0.1 * torch.randn(4, 16000)
    reverb = AddReverb(csv_file=out)
    for _ in range(len(RIRS)):
        wet = reverb(clean)
        assert wet.shape == clean.shape
        assert not torch.allclose(wet, clean, atol=1e-3)
    assert snapshot(rirs) == before


def test_absent_folders_return_none_with_one_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        assert ap.prepare_musan(None, str(tmp_path / "aug")) is None
    assert len(caplog.records) == 1
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert ap.prepare_rir(str(tmp_path / "nope"), str(tmp_path)) is None
    assert len(caplog.records) == 1
    assert "nope" in caplog.text
    assert not (tmp_path / "aug").exists()


def test_skip_if_prepared(musan, rirs, tmp_path, caplog):
    save = tmp_path / "aug"
    out = ap.prepare_musan(str(musan), str(save))
    rir = ap.prepare_rir(str(rirs), str(save))
    paths = [*out.values(), rir]
    old = 1_000_000_000
    for path in paths:
        os.utime(path, ns=(old, old))
    with caplog.at_level(logging.INFO):
        assert ap.prepare_musan(str(musan), str(save)) == out
        assert ap.prepare_rir(str(rirs), str(save)) == rir
    assert caplog.text.count("skipping") == 2
    assert all(os.stat(p).st_mtime_ns == old for p in paths)

    # Changed option: rewritten.
    out2 = ap.prepare_musan(str(musan), str(save), categories=["noise"])
    assert list(out2) == ["noise"]
    assert os.stat(out["noise"]).st_mtime_ns != old
    # Missing output: rewritten.
    os.remove(rir)
    assert ap.prepare_rir(str(rirs), str(save)) == rir
    assert os.path.isfile(rir)


def test_errors(musan, rirs, tmp_path):
    with pytest.raises(FileNotFoundError, match="category folder"):
        ap.prepare_musan(str(musan), str(tmp_path / "a"), ["noise", "babble"])
    with pytest.raises(ValueError, match="inside"):
        ap.prepare_rir(str(rirs), str(rirs / "csv"))
    assert not (rirs / "csv").exists()

    (tmp_path / "empty_rirs" / "sub").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="No audio"):
        ap.prepare_rir(str(tmp_path / "empty_rirs"), str(tmp_path / "a"))

    odd = rirs / "smallroom" / "Room009" / "Room009-00001.wav"
    odd.parent.mkdir()
    sf.write(str(odd), np.zeros(800, dtype="float32"), 8000)
    with pytest.raises(ValueError, match="8000 Hz") as err:
        ap.prepare_rir(str(rirs), str(tmp_path / "a"))
    assert str(odd) in str(err.value)
    odd.unlink()


def test_multichannel_files_are_left_out(rirs, tmp_path, caplog):
    stereo = rirs / "real" / "stereo.wav"
    stereo.parent.mkdir()
    sf.write(str(stereo), np.zeros((800, 2), dtype="float32"), RATE)
    before = snapshot(rirs)
    with caplog.at_level(logging.WARNING):
        out = ap.prepare_rir(str(rirs), str(tmp_path / "a"))
    assert str(stereo) not in {row[2] for row in read_rows(out)}
    assert len(read_rows(out)) == len(RIRS)
    assert "multi-channel" in caplog.text
    assert snapshot(rirs) == before
    assert sf.info(str(stereo)).channels == 2
