"""Tests of speechbrain_ssps.resample: a corpus resampled once, offline."""

import hashlib
import os

import numpy as np
import pytest
import soundfile as sf

from speechbrain_ssps import resample
from speechbrain_ssps.preflight import check_manifest

RATES = (8000, 22050, 44100, 48000)


def tone(rate, seconds=0.5, freq=440.0, channels=1):
    t = np.arange(int(rate * seconds)) / rate
    signal = 0.5 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    return np.stack([signal] * channels, axis=1) if channels > 1 else signal


def digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture
def tree(tmp_path):
    """A corpus root with wav/flac at several rates and a trial list."""
    src = tmp_path / "corpus"
    files = {}
    for i, rate in enumerate(RATES):
        ext = ".flac" if rate == 22050 else ".wav"
        path = src / "wav" / f"id{i}" / "v1" / f"00001{ext}"
        path.parent.mkdir(parents=True)
        sf.write(str(path), tone(rate, channels=1 + (rate == 48000)), rate)
        files[str(path)] = rate
    same = src / "wav" / "id9" / "v1" / "00001.wav"
    same.parent.mkdir(parents=True)
    sf.write(str(same), tone(16000), 16000)
    files[str(same)] = 16000
    (src / "meta").mkdir()
    (src / "meta" / "veri_test2.txt").write_text("1 a/b/c.wav a/b/d.wav\n")
    return src, files


def test_every_rate_becomes_16k_of_the_right_length(tree, tmp_path):
    src, files = tree
    before = {path: digest(path) for path in files}
    dst = tmp_path / "corpus_16k"
    counts = resample.resample_tree(str(src), str(dst), workers=2)
    assert counts["failed"] == 0 and counts["failures"] == []
    assert counts["resampled"] == 4 and counts["copied"] == 2  # + meta
    for path, rate in files.items():
        out = dst / os.path.relpath(path, src)
        info = sf.info(str(out))
        frames = sf.info(path).frames
        assert info.samplerate == 16000
        assert info.frames == int(np.ceil(frames * 16000 / rate))
        assert info.channels == sf.info(path).channels
        assert info.format == sf.info(path).format  # flac stays flac
        assert digest(path) == before[path]  # originals untouched
    audio, _ = sf.read(str(dst / "wav/id2/v1/00001.wav"))
    spectrum = np.abs(np.fft.rfft(audio))
    peak = np.argmax(spectrum) * 16000 / len(audio)
    assert abs(peak - 440.0) < 5.0  # same tone, at the new rate
    meta = dst / "meta" / "veri_test2.txt"
    assert meta.read_text() == (src / "meta" / "veri_test2.txt").read_text()
    assert not list(dst.rglob("*" + resample.PARTIAL_SUFFIX))


def test_rerun_skips_done_files(tree, tmp_path):
    src, files = tree
    dst = tmp_path / "out"
    resample.resample_tree(str(src), str(dst), workers=1)
    done = dst / "wav/id0/v1/00001.wav"
    stamp = os.stat(done).st_mtime_ns
    os.remove(dst / "wav/id1/v1/00001.flac")  # as if killed before it
    counts = resample.resample_tree(str(src), str(dst), workers=1)
    assert counts["skipped"] == len(files) + 1 - 1
    assert counts["resampled"] == 1
    assert os.stat(done).st_mtime_ns == stamp


def test_a_failed_write_leaves_no_file(tree, tmp_path, monkeypatch):
    src, _ = tree
    dst = tmp_path / "out"

    def broken_write(path, *args, **kwargs):
        with open(path, "wb") as f:
            f.write(b"RIFF half")
        raise OSError("disk full")

    monkeypatch.setattr(resample.sf, "write", broken_write)
    counts = resample.resample_tree(str(src), str(dst), workers=1)
    assert counts["failed"] == 4
    written = [p for p in dst.rglob("*") if p.is_file()]
    assert all(p.suffix in (".wav", ".txt") for p in written)
    assert not list(dst.rglob("*" + resample.PARTIAL_SUFFIX))
    assert {p.name for p in written} == {"00001.wav", "veri_test2.txt"}
    assert len(written) == 2  # the 16 kHz copy and the meta file only


def test_corrupt_input_is_named(tree, tmp_path):
    src, _ = tree
    bad = src / "wav" / "id0" / "v1" / "00002.wav"
    bad.write_bytes(b"not audio at all")
    counts = resample.resample_tree(str(src), str(tmp_path / "out"))
    assert counts["failed"] == 1
    [(path, message)] = counts["failures"]
    assert path == str(bad) and str(bad) in message
    assert not (tmp_path / "out" / "wav/id0/v1/00002.wav").exists()


def test_bad_requests(tree, tmp_path):
    src, _ = tree
    with pytest.raises(ValueError, match="must lie outside --src"):
        resample.resample_tree(str(src), str(src / "16k"))
    with pytest.raises(FileNotFoundError, match="--src folder not found"):
        resample.resample_tree(str(tmp_path / "nope"), str(tmp_path / "x"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="No audio"):
        resample.resample_tree(str(tmp_path / "empty"), str(tmp_path / "y"))
    with pytest.raises(ValueError, match="--workers"):
        resample.resample_tree(str(src), str(tmp_path / "z"), workers=0)


def test_training_check_gives_path_and_command(tree, tmp_path):
    src, _ = tree
    low = src / "wav" / "id0" / "v1" / "00001.wav"
    manifest = tmp_path / "train.csv"
    manifest.write_text(
        f"ID,duration,wav,spk_id,video_id\nid0/v1/00001,0.5,{low},id0,v1\n"
    )
    with pytest.raises(ValueError) as error:
        check_manifest(str(manifest), sample_rate=16000, min_samples=1)
    message = str(error.value)
    assert str(low) in message and "sampled at 8000 Hz" in message
    command = f"python convert_to_wav.py --resample --src {src} --dst {src}_16k"
    assert command in message
    assert f"--data_folder={src}_16k" in message


def test_fix_command_outside_a_wav_tree(tmp_path):
    path = tmp_path / "x" / "a.flac"
    command = resample.fix_command(str(path), 8000)
    assert f"--src {tmp_path / 'x'} --dst {tmp_path / 'x'}_8k" in command
    assert "--sample_rate 8000" in command
