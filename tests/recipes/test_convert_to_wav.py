"""Tests for recipes/VoxCeleb/SSPS/convert_to_wav.py with a fake ffmpeg.

The fake ffmpeg is a small Python script put first on PATH. It records its
arguments, reads the number of samples to produce from the fake .m4a (a text
file), and writes a real 16-bit wav with the stdlib ``wave`` module. An input
starting with ``FAIL`` makes it write half a file and exit 1; ``SLOW`` makes
it write half a file and sleep (to be killed).
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf

RECIPE_DIR = Path(__file__).resolve().parents[2] / "recipes/VoxCeleb/SSPS"
SCRIPT = RECIPE_DIR / "convert_to_wav.py"
sys.path.insert(0, str(RECIPE_DIR))

import convert_to_wav as cw  # noqa: E402

FAKE_FFMPEG = """#!{python}
import json, os, sys, time, wave
args = sys.argv[1:]
src, dst = args[args.index("-i") + 1], args[-1]
with open(os.environ["FAKE_FFMPEG_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
data = open(src, "rb").read()
if data.startswith(b"FAIL") or data.startswith(b"SLOW"):
    with open(dst, "wb") as f:
        f.write(b"RIFF half")
    if data.startswith(b"SLOW"):
        time.sleep(60)
    sys.stderr.write("fake decode error\\n")
    sys.exit(1)
rate = int(args[args.index("-ar") + 1])
with wave.open(dst, "wb") as w:
    w.setnchannels(int(args[args.index("-ac") + 1]))
    w.setsampwidth(2)
    w.setframerate(rate)
    w.writeframes(b"\\x01\\x00" * int(data))
"""

FILES = {
    "id00001/v1/00001.m4a": b"1600",
    "id00001/v1/00002.m4a": b"3200",
    "id00001/v2/00001.m4a": b"800",
    "id00002/v3/00001.m4a": b"400",
}


@pytest.fixture
def fake_ffmpeg(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "ffmpeg"
    exe.write_text(FAKE_FFMPEG.format(python=sys.executable))
    exe.chmod(0o755)
    log = tmp_path / "ffmpeg_calls.jsonl"
    log.write_text("")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_FFMPEG_LOG", str(log))
    return log


def calls(log):
    return [json.loads(line) for line in log.read_text().splitlines()]


def make_src(root, files=FILES):
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def snapshot(root):
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_converts_all_then_resumes(tmp_path, fake_ffmpeg):
    src = make_src(tmp_path / "aac")
    before = snapshot(src)
    counts = cw.convert_tree(str(src), str(tmp_path / "wav"), workers=3)
    assert counts == {"found": 4, "skipped": 0, "converted": 4, "failed": 0}
    for rel, data in FILES.items():
        out = tmp_path / "wav" / rel.replace(".m4a", ".wav")
        info = sf.info(str(out))
        assert (info.samplerate, info.channels) == (16000, 1)
        assert info.subtype == "PCM_16" and info.frames == int(data)
    made = calls(fake_ffmpeg)
    assert len(made) == 4
    for args in made:
        assert args[args.index("-ar") + 1] == "16000"
        assert args[args.index("-ac") + 1] == "1"
        assert args[args.index("-c:a") + 1] == "pcm_s16le"
        assert args[-1].endswith(".wav.partial")
    assert snapshot(src) == before  # originals untouched
    assert not list((tmp_path / "wav").rglob("*.partial"))

    # Second run: nothing to do, ffmpeg never called.
    counts = cw.convert_tree(str(src), str(tmp_path / "wav"), workers=2)
    assert counts["skipped"] == 4 and counts["converted"] == 0
    assert len(calls(fake_ffmpeg)) == 4

    # An empty output counts as not done.
    empty = tmp_path / "wav" / "id00002" / "v3" / "00001.wav"
    empty.write_bytes(b"")
    counts = cw.convert_tree(str(src), str(tmp_path / "wav"), workers=2)
    assert counts == {"found": 4, "skipped": 3, "converted": 1, "failed": 0}
    assert sf.info(str(empty)).frames == 400


def test_in_place_default_keeps_originals(tmp_path, fake_ffmpeg):
    src = make_src(tmp_path / "vox2" / "wav")
    assert cw.main(["--src", str(src), "--workers", "2"]) == 0
    for rel in FILES:
        assert (src / rel).is_file()
        assert (src / rel.replace(".m4a", ".wav")).is_file()


def test_failure_leaves_no_file_and_is_reported(tmp_path, fake_ffmpeg):
    files = dict(FILES)
    files["id00002/v3/00002.m4a"] = b"FAIL"
    src = make_src(tmp_path / "aac", files)
    dst = tmp_path / "wav"
    assert cw.main(["--src", str(src), "--dst", str(dst)]) == 1
    bad = dst / "id00002" / "v3" / "00002.wav"
    assert not bad.exists()
    assert not Path(str(bad) + ".partial").exists()
    assert len(list(dst.rglob("*.wav"))) == 4


def test_killed_run_leaves_no_half_file(tmp_path, fake_ffmpeg):
    files = dict(FILES)
    files["id00003/v9/00001.m4a"] = b"SLOW"  # sorted last
    src = make_src(tmp_path / "aac", files)
    dst = tmp_path / "wav"
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--src", str(src), "--dst", str(dst)]
        + ["--workers", "1"],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    partial = dst / "id00003" / "v9" / "00001.wav.partial"
    try:
        deadline = time.time() + 60
        while not partial.exists() and time.time() < deadline:
            time.sleep(0.05)
        assert partial.exists()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (dst / "id00003" / "v9" / "00001.wav").exists()
    assert len(list(dst.rglob("*.wav"))) == 4

    # Resume: only the interrupted file is converted.
    (src / "id00003" / "v9" / "00001.m4a").write_bytes(b"100")
    n_calls = len(calls(fake_ffmpeg))
    counts = cw.convert_tree(str(src), str(dst), workers=2)
    assert counts == {"found": 5, "skipped": 4, "converted": 1, "failed": 0}
    assert len(calls(fake_ffmpeg)) == n_calls + 1
    assert sf.info(str(dst / "id00003/v9/00001.wav")).frames == 100
    assert not partial.exists()


def test_missing_ffmpeg_is_a_clear_error(tmp_path, monkeypatch):
    src = make_src(tmp_path / "aac")
    monkeypatch.setenv("PATH", str(tmp_path / "empty_bin"))
    with pytest.raises(FileNotFoundError, match="ffmpeg .* not found"):
        cw.convert_tree(str(src))
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--src", str(src)],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": str(tmp_path / "empty_bin")},
    )
    assert result.returncode == 2
    assert "ffmpeg" in result.stderr and "not found" in result.stderr
    assert not list(src.rglob("*.wav"))


def test_bad_inputs(tmp_path, fake_ffmpeg):
    with pytest.raises(FileNotFoundError, match="nope"):
        cw.convert_tree(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="No .m4a"):
        cw.convert_tree(str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="workers"):
        cw.convert_tree(str(tmp_path / "empty"), workers=0)
