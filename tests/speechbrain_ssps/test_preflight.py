"""Tests for speechbrain_ssps.preflight (manifest, audio files, options)."""

import logging

import numpy as np
import pytest
import soundfile as sf
from speechbrain.dataio.dataset import DynamicItemDataset

from speechbrain_ssps.preflight import (
    MAX_LISTED,
    ManifestError,
    ManifestReport,
    audio,
    check_manifest,
    check_training_options,
    manifest,
)

HEADER = "ID,duration,wav,spk_id,video_id"


def _wav(path, frames, rate=16000, channels=1, subtype="PCM_16", seed=0):
    rng = np.random.default_rng(seed)
    shape = (frames,) if channels == 1 else (frames, channels)
    sf.write(str(path), rng.uniform(-0.5, 0.5, shape), rate, subtype=subtype)
    return str(path)


def _manifest(tmp_path, rows, header=HEADER, name="train.csv"):
    """Writes rows (lists of fields, or raw strings) under a header."""
    lines = [header] + [r if isinstance(r, str) else ",".join(r) for r in rows]
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def _row(utt_id, path, duration="1.0"):
    return [utt_id, duration, path, "spk", "vid"]


@pytest.fixture
def good(tmp_path):
    """Paths of valid files: mono int16, short, stereo, float32, flac."""
    return {
        "mono": _wav(tmp_path / "mono.wav", 4000),
        "short": _wav(tmp_path / "short.wav", 300, seed=1),
        "stereo": _wav(tmp_path / "stereo.wav", 2000, channels=2, seed=2),
        "float": _wav(tmp_path / "f.wav", 1000, subtype="FLOAT", seed=3),
        "flac": _wav(tmp_path / "c.flac", 2500, seed=4),
    }


def test_valid_manifest_report(tmp_path, good, caplog):
    csv_path = _manifest(tmp_path, [_row(k, p) for k, p in good.items()])
    with caplog.at_level(logging.INFO, logger=manifest.logger.name):
        report = check_manifest(csv_path, min_samples=1600)
    frames = [sf.info(p).frames for p in good.values()]
    assert report == ManifestReport(
        csv_path=csv_path,
        num_rows=5,
        num_short=sum(f < 1600 for f in frames),  # short.wav and f.wav
        num_stereo=1,
        num_float_checked=1,
        total_seconds=sum(frames) / 16000,
    )
    assert report.num_short == 2
    text = caplog.text
    assert "2 file(s) shorter than 1600 samples" in text
    assert "1 multi-channel file(s)" in text
    # The same file loads in SpeechBrain with the same rows, in order.
    data = DynamicItemDataset.from_csv(csv_path)
    assert data.data_ids == list(good)


def test_without_min_samples_nothing_is_short(tmp_path, good):
    csv_path = _manifest(tmp_path, [_row("a", good["short"])])
    assert check_manifest(csv_path).num_short == 0


def _error(csv_path, **kwargs):
    with pytest.raises(ManifestError) as info:
        check_manifest(csv_path, **kwargs)
    assert isinstance(info.value, ValueError)
    return str(info.value)


def test_wrong_sample_rate_is_rejected_with_rate(tmp_path, good):
    low = _wav(tmp_path / "low.wav", 800, rate=8000)
    csv_path = _manifest(
        tmp_path, [_row("ok", good["mono"]), _row("lo", low, "0.1")]
    )
    msg = _error(csv_path)
    assert "1 bad row(s) (1 wrong sample rate)" in msg
    assert f"line 3 (ID 'lo'), {low}: sampled at 8000 Hz" in msg
    assert "expected 16000 Hz" in msg and "resample" in msg
    # The same file is fine when 8 kHz is the expected rate.
    only_low = _manifest(tmp_path, [_row("lo", low)], name="low.csv")
    assert check_manifest(only_low, sample_rate=8000).num_rows == 1


def test_nan_in_float_file_is_rejected(tmp_path, good):
    signal = np.zeros(3000, np.float32)
    signal[2500] = np.nan
    bad = tmp_path / "nan.wav"
    sf.write(str(bad), signal, 16000, subtype="FLOAT")
    inf = tmp_path / "inf.wav"
    signal[2500] = 0.0
    signal[7] = -np.inf
    sf.write(str(inf), signal, 16000, subtype="DOUBLE")
    rows = [_row("a", good["float"]), _row("n", str(bad)), _row("i", str(inf))]
    csv_path = _manifest(tmp_path, rows)
    msg = _error(csv_path)
    assert "2 bad row(s) (2 NaN/inf samples)" in msg
    assert (
        f"line 3 (ID 'n'), {bad}: NaN or infinite sample at frame 2500" in msg
    )
    assert f"line 4 (ID 'i'), {inf}: NaN or infinite sample at frame 7" in msg
    # check_finite=False trusts the samples.
    report = check_manifest(csv_path, check_finite=False)
    assert report.num_rows == 3 and report.num_float_checked == 0


def test_nan_scan_spans_read_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(audio, "_FRAMES_PER_READ", 64)
    signal = np.zeros(1000, np.float32)
    signal[777] = np.inf
    bad = tmp_path / "late.wav"
    sf.write(str(bad), signal, 16000, subtype="FLOAT")
    msg = _error(_manifest(tmp_path, [_row("x", str(bad))]))
    assert "at frame 777" in msg


def test_integer_pcm_is_not_read(tmp_path, good, monkeypatch):
    """Only float files are scanned for NaN: integer PCM cannot hold one."""
    scanned = []
    real = audio.first_nonfinite_frame
    monkeypatch.setattr(
        audio,
        "first_nonfinite_frame",
        lambda opened: scanned.append(opened.name) or real(opened),
    )
    csv_path = _manifest(tmp_path, [_row(k, p) for k, p in good.items()])
    check_manifest(csv_path)
    assert scanned == [good["float"]]


def test_zero_length_unreadable_and_missing_files(tmp_path, good):
    empty = tmp_path / "empty.wav"
    sf.write(str(empty), np.zeros(0, np.float32), 16000)
    text = tmp_path / "notes.wav"
    text.write_text("RIFF? no, just some text\n" * 10, encoding="utf-8")
    missing = str(tmp_path / "missing.wav")
    folder = tmp_path / "dir.wav"
    folder.mkdir()
    rows = [
        _row("z", str(empty)),
        _row("ok", good["mono"]),
        _row("t", str(text)),
        _row("m", missing),
        _row("d", str(folder)),
    ]
    msg = _error(_manifest(tmp_path, rows))
    assert msg.splitlines()[0].endswith(
        "4 bad row(s) (1 zero-length audio file, 2 unreadable audio file, "
        "1 missing audio file); fix or remove them and start again:"
    )
    assert f"line 2 (ID 'z'), {empty}: 0 samples" in msg
    assert f"line 4 (ID 't'), {text}: soundfile cannot read it" in msg
    assert f"line 5 (ID 'm'), {missing}: file not found" in msg
    assert f"line 6 (ID 'd'), {folder}: not a regular file" in msg
    assert "'ok'" not in msg


def test_missing_column_is_named(tmp_path, good):
    csv_path = _manifest(
        tmp_path, [["a", "1.0", "s"]], header="ID,duration,spk_id"
    )
    msg = _error(csv_path)
    assert "lacks column(s) 'wav'" in msg and csv_path in msg
    no_duration = _manifest(
        tmp_path, [["a", good["mono"]]], header="ID,wav", name="b.csv"
    )
    assert "lacks column(s) 'duration'" in _error(no_duration)
    # Not required: accepted.
    ok = check_manifest(no_duration, required_columns=("ID", "wav"))
    assert ok.num_rows == 1


def test_byte_order_mark_is_explained(tmp_path, good):
    path = tmp_path / "bom.csv"
    path.write_text(
        "\ufeffID,duration,wav\na,1.0," + good["mono"] + "\n", encoding="utf-8"
    )
    msg = _error(str(path))
    assert "lacks column(s) 'ID'" in msg and "byte-order mark" in msg


def test_empty_manifests(tmp_path):
    header_only = _manifest(tmp_path, [])
    assert "has no data rows" in _error(header_only)
    blank = tmp_path / "blank.csv"
    blank.write_text("", encoding="utf-8")
    assert "lacks column(s)" in _error(str(blank))
    assert "manifest not found" in _error(str(tmp_path / "nope.csv"))


def test_duplicate_ids_named_with_lines(tmp_path, good):
    rows = [
        _row("a", good["mono"]),
        _row("b", good["flac"]),
        _row("a", good["float"]),
        _row("b", good["mono"]),
    ]
    msg = _error(_manifest(tmp_path, rows))
    assert "2 bad row(s) (2 duplicate ID)" in msg
    assert (
        f"line 4 (ID 'a'), {good['float']}: duplicate ID (first on line 2)"
        in msg
    )
    assert (
        f"line 5 (ID 'b'), {good['mono']}: duplicate ID (first on line 3)"
        in msg
    )


def test_duplicates_across_csv_chunks(tmp_path, good, monkeypatch):
    monkeypatch.setattr(manifest, "_ROWS_PER_CHUNK", 2)
    rows = [_row(f"u{i}", good["mono"]) for i in range(5)]
    rows.append(_row("u1", good["flac"]))
    msg = _error(_manifest(tmp_path, rows))
    assert "1 bad row(s) (1 duplicate ID)" in msg
    assert "line 7 (ID 'u1')" in msg and "first on line 3" in msg
    report = check_manifest(_manifest(tmp_path, rows[:5], name="ok.csv"))
    assert report.num_rows == 5


def test_malformed_rows(tmp_path, good):
    rows = [
        _row("a", good["mono"]),
        "b,1.0," + good["flac"],  # 3 fields for a 5-column header
        _row("c", good["mono"] + "x", "1.0") + ["extra"],
        _row("", good["float"]),
        _row("d", good["mono"], "long"),
        "",  # blank lines are skipped, as DictReader does
        _row("e", good["mono"]),
    ]
    msg = _error(_manifest(tmp_path, rows))
    assert "4 bad row(s) (4 malformed row)" in msg
    assert "line 3 (ID 'b'): malformed row: 3 fields, the header has 5" in msg
    assert "line 4 (ID 'c'): malformed row: 6 fields, the header has 5" in msg
    assert f"line 5, {good['float']}: empty ID" in msg
    assert "line 6 (ID 'd')" in msg and "duration 'long' is not a number" in msg


def test_quoted_fields_and_replacements(tmp_path):
    folder = tmp_path / "with, comma"
    folder.mkdir()
    _wav(folder / "a.wav", 1000)
    csv_path = _manifest(
        tmp_path,
        [
            'a,0.06,"$data_root/a.wav",spk,vid',
            'b,0.06,"$other/a.wav",spk,vid',
        ],
    )
    msg = _error(csv_path, replacements={"data_root": str(folder)})
    assert "1 bad row(s)" in msg
    assert "line 3 (ID 'b')" in msg and "$other has no replacement" in msg
    ok = _manifest(
        tmp_path, ['a,0.06,"$data_root/a.wav",spk,vid'], name="ok.csv"
    )
    report = check_manifest(ok, replacements={"data_root": str(folder)})
    assert report.num_rows == 1


@pytest.mark.parametrize("num_workers, chunk_rows", [(1, 7), (3, 16384)])
def test_many_problems_listed_in_line_order(
    tmp_path, monkeypatch, num_workers, chunk_rows
):
    """Errors from several blocks and CSV chunks keep their own lines."""
    monkeypatch.setattr(audio, "_FILES_PER_TASK", 2)
    monkeypatch.setattr(manifest, "_ROWS_PER_CHUNK", chunk_rows)
    ok = _wav(tmp_path / "ok.wav", 500)
    rows = []
    for i in range(30):
        bad = i % 2 == 1
        path = str(tmp_path / f"missing{i}.wav") if bad else ok
        rows.append(_row(f"u{i}", path))
    msg = _error(_manifest(tmp_path, rows), num_workers=num_workers)
    lines = msg.splitlines()
    assert lines[0].endswith(
        "15 bad row(s) (15 missing audio file); fix or remove them and "
        "start again:"
    )
    listed = lines[1 : 1 + MAX_LISTED]
    expected = [
        f"  line {i + 2} (ID 'u{i}'), {tmp_path}/missing{i}.wav: file not found"
        for i in range(1, 30, 2)
    ][:MAX_LISTED]
    assert listed == expected
    assert lines[-1] == "  ... and 5 more"
    assert len(lines) == MAX_LISTED + 2


# ----------------------------------------------------------------------
# Training options
# ----------------------------------------------------------------------
def test_valid_options_pass():
    check_training_options(1000, 128, 100)
    check_training_options(
        1000,
        250,
        100,
        world_size=4,  # 4 x 250 == 1000: one full batch per epoch
        ssps_start_epoch=100,  # SSPS in the last epoch only
    )
    check_training_options(50, 10, 5, ssps_start_epoch=2)


def test_ssps_start_after_last_epoch_is_named():
    with pytest.raises(
        ValueError,
        match=r"--ssps_start_epoch=101 is after --number_of_epochs=100: "
        r"SSPS would never run",
    ):
        check_training_options(1000, 100, 100, ssps_start_epoch=101)


@pytest.mark.parametrize("start_epoch", [None, 1, 2.5, "late"])
def test_ssps_start_value_is_left_to_ssps(start_epoch):
    """Whether ssps_start_epoch is an integer >= 2 is SSPS's own rule."""
    check_training_options(1000, 100, 100, ssps_start_epoch=start_epoch)


def test_batch_larger_than_training_set():
    with pytest.raises(
        ValueError,
        match=r"--batch_size=600 is larger than the training set "
        r"\(500 utterances\)",
    ):
        check_training_options(500, 600, 10)
    with pytest.raises(
        ValueError, match=r"--batch_size=200 x 3 processes = 600 is larger"
    ):
        check_training_options(500, 200, 10, world_size=3)
    check_training_options(600, 200, 10, world_size=3)


@pytest.mark.parametrize(
    "args, pattern",
    [
        ((0, 1, 1), "row count must be a positive integer"),
        ((10, 0, 1), "--batch_size must be a positive integer, got 0"),
        ((10, 2, 0), "--number_of_epochs must be a positive integer, got 0"),
        ((10, 2.5, 1), "--batch_size must be a positive integer, got 2.5"),
        ((10, 2, 1, 0), r"world size \(number of processes\) must be"),
    ],
)
def test_non_positive_sizes(args, pattern):
    with pytest.raises(ValueError, match=pattern):
        check_training_options(*args)
