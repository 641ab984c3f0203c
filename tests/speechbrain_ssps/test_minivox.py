"""Tests of the minivox synthetic VoxCeleb-like corpus generator."""

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from scipy import signal

from speechbrain_ssps import minivox
from speechbrain_ssps.minivox import (
    Channel,
    Voice,
    generate_corpus,
    sample_trials,
    synthesize_utterance,
    trial_capacity,
)

SR = 16000
PATH_RE = re.compile(r"^(id\d{5})/([A-Za-z0-9_-]{11})/(\d{5})\.wav$")
TRIAL_RE = re.compile(
    r"^([01]) (id\d{5}/[A-Za-z0-9_-]{11}/\d{5}\.wav) "
    r"(id\d{5}/[A-Za-z0-9_-]{11}/\d{5}\.wav)$"
)
TINY = dict(
    num_speakers=1,
    num_videos=2,
    num_utterances=2,
    num_test_speakers=2,
    min_duration=0.5,
    max_duration=0.8,
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """3 training + 3 test speakers, 3 videos of 3 utterances of ~1 s."""
    out = tmp_path_factory.mktemp("minivox")
    summary = generate_corpus(
        out,
        num_speakers=3,
        num_videos=3,
        num_utterances=3,
        num_test_speakers=3,
        seed=0,
        min_duration=1.0,
        max_duration=1.2,
        workers=1,
    )
    return out, summary


def _wav_files(root):
    """Relative paths of every file under root/wav."""
    wav = Path(root) / "wav"
    return sorted(
        str(p.relative_to(wav)) for p in wav.rglob("*") if p.is_file()
    )


def _read_trials(root):
    lines = (Path(root) / "meta" / "veri_test2.txt").read_text().splitlines()
    return [TRIAL_RE.match(line).groups() for line in lines]


def _log_spectrum(x):
    """Long-term average log power spectrum (dB), level removed, 0.1-7 kHz."""
    frames = np.lib.stride_tricks.sliding_window_view(x, 512)[::256]
    power = np.mean(np.abs(np.fft.rfft(frames * np.hanning(512))) ** 2, 0)
    freqs = np.fft.rfftfreq(512, 1 / SR)
    db = 10 * np.log10(power[(freqs >= 100) & (freqs <= 7000)] + 1e-12)
    return db - db.mean()


def _median_f0(x):
    """Median autocorrelation f0 (Hz) over the strongly periodic frames."""
    frames = np.lib.stride_tricks.sliding_window_view(x, 640)[::160]
    frames = frames - frames.mean(axis=1, keepdims=True)
    energy = np.sum(frames**2, axis=1)
    frames = frames[energy > 0.3 * np.median(energy)]
    spec = np.fft.rfft(frames, n=2048, axis=1)
    acf = np.fft.irfft(np.abs(spec) ** 2, axis=1)[:, :400]
    lo, hi = SR // 400, SR // 60
    lag = lo + np.argmax(acf[:, lo:hi], axis=1)
    peak = acf[np.arange(len(lag)), lag] / acf[:, 0]
    voiced = peak > 0.6
    assert voiced.sum() >= 5
    return float(np.median(SR / lag[voiced]))


def _by_video(root):
    """{speaker: {video: [signals]}} of the whole corpus."""
    out = {}
    for rel in _wav_files(root):
        spk, vid, _ = PATH_RE.match(rel).groups()
        x, _ = sf.read(Path(root) / "wav" / rel)
        out.setdefault(spk, {}).setdefault(vid, []).append(x)
    return out


def test_layout(corpus):
    root, summary = corpus
    files = _wav_files(root)
    assert len(files) == 6 * 3 * 3 == summary["num_utterances"]
    parts = [PATH_RE.match(f) for f in files]
    assert all(parts), [f for f, p in zip(files, parts) if not p]
    speakers = sorted({p.group(1) for p in parts})
    assert speakers == [f"id{10001 + i}" for i in range(6)]
    for spk in speakers:
        videos = {p.group(2) for p in parts if p.group(1) == spk}
        assert len(videos) == 3
        for vid in videos:
            utts = [p.group(3) for p in parts if p.group(1, 2) == (spk, vid)]
            assert sorted(utts) == ["00001", "00002", "00003"]
    assert (Path(root) / "meta" / "speakers.csv").is_file()
    assert (Path(root) / "meta" / "videos.csv").is_file()
    assert summary["skipped"] is False


def test_audio_format(corpus):
    root, _ = corpus
    for rel in _wav_files(root):
        info = sf.info(str(Path(root) / "wav" / rel))
        assert (info.samplerate, info.channels) == (16000, 1)
        assert (info.format, info.subtype) == ("WAV", "PCM_16")
        assert 1.0 - 1e-4 <= info.frames / SR <= 1.2 + 1e-4
    x, _ = sf.read(Path(root) / "wav" / rel)
    assert 0.001 < np.sqrt(np.mean(x**2)) < 0.5


def test_splits_and_trials(corpus):
    root, summary = corpus
    meta = pd.read_csv(Path(root) / "meta" / "speakers.csv")
    train = set(meta.spk_id[meta.split == "train"])
    test = set(meta.spk_id[meta.split == "test"])
    assert len(train) == 3 and len(test) == 3 and not train & test
    trials = _read_trials(root)
    # default: 8 per test utterance (27), but only 3 speakers x 3 video
    # pairs x 3 x 3 utterances = 81 cross-video target pairs exist
    assert len(trials) == summary["num_trials"] == 2 * min(8 * 27 // 2, 81)
    labels = [t[0] for t in trials]
    assert labels.count("1") == labels.count("0")
    files = set(_wav_files(root))
    pairs = set()
    for label, a, b in trials:
        assert a in files and b in files and a != b
        (spk_a, vid_a, _), (spk_b, vid_b, _) = (
            PATH_RE.match(a).groups(),
            PATH_RE.match(b).groups(),
        )
        assert spk_a in test and spk_b in test
        if label == "1":
            assert spk_a == spk_b and vid_a != vid_b
        else:
            assert spk_a != spk_b
        pairs.add(frozenset((a, b)))
    assert len(pairs) == len(trials)
    enrol_speakers = [PATH_RE.match(a).group(1) for lab, a, _ in trials]
    target_speakers = [s for s, t in zip(enrol_speakers, trials) if t[0] == "1"]
    assert sorted(set(target_speakers)) == sorted(test)
    counts = [target_speakers.count(s) for s in test]
    assert max(counts) - min(counts) <= 1
    # lines are grouped by enrolment utterance (labels mixed), as in VoxCeleb
    keys = [(a, b) for _, a, b in trials]
    assert keys == sorted(keys) and labels != sorted(labels)


def test_sample_trials_capacity_and_uniqueness():
    # 2 speakers x 2 videos x 2 utterances: 8 cross-video target pairs,
    # 2 * (2*2)^2 / 2 ... = 16 non-target pairs.
    assert trial_capacity(2, 2, 2) == (2 * 1 * 4, 1 * 16)
    trials = sample_trials(2, 2, 2, 16, np.random.default_rng(0))
    speaker = trials[:, 1:] // 4
    video = trials[:, 1:] // 2
    target = trials[:, 0] == 1
    assert np.all(speaker[target, 0] == speaker[target, 1])
    assert np.all(video[target, 0] != video[target, 1])
    assert np.all(speaker[~target, 0] != speaker[~target, 1])
    keys = {tuple(sorted(row)) for row in trials[:, 1:].tolist()}
    assert len(keys) == 16  # all 8 target pairs and 8 distinct non-targets
    with pytest.raises(ValueError, match="--trials"):
        sample_trials(2, 2, 2, 18, np.random.default_rng(0))
    with pytest.raises(ValueError, match="--trials"):
        sample_trials(2, 2, 2, 5, np.random.default_rng(0))


def test_deterministic_and_worker_independent(tmp_path):
    a = generate_corpus(tmp_path / "a", seed=3, workers=1, **TINY)
    b = generate_corpus(tmp_path / "b", seed=3, workers=2, **TINY)
    c = generate_corpus(tmp_path / "c", seed=4, workers=1, **TINY)
    files = [
        str(p.relative_to(tmp_path / "a"))
        for p in sorted((tmp_path / "a").rglob("*"))
        if p.is_file()
    ]
    assert len(files) == 4 * 3 + 1 + 3  # wavs, trials + 2 csv, json
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (
            tmp_path / "b" / rel
        ).read_bytes(), rel
    assert a["num_utterances"] == b["num_utterances"] == c["num_utterances"]
    wav_a, wav_c = _wav_files(tmp_path / "a"), _wav_files(tmp_path / "c")
    assert [f[:8] for f in wav_a] == [f[:8] for f in wav_c]  # same speakers
    assert not set(wav_a) & set(wav_c)  # other video ids
    x = sf.read(tmp_path / "a" / "wav" / wav_a[0])[0]
    y = sf.read(tmp_path / "c" / "wav" / wav_c[0])[0]
    assert x.shape != y.shape or not np.array_equal(x, y)


def test_skip_refuse_and_overwrite(tmp_path):
    out = tmp_path / "corpus"
    generate_corpus(out, workers=1, **TINY)
    wav = out / "wav" / _wav_files(out)[0]
    stamp = wav.stat().st_mtime_ns
    again = generate_corpus(out, workers=1, **TINY)
    assert again["skipped"] is True and wav.stat().st_mtime_ns == stamp
    assert again["num_utterances"] == 12
    with pytest.raises(ValueError, match="--overwrite.*|differs in seed"):
        generate_corpus(out, seed=1, workers=1, **TINY)
    other = generate_corpus(out, seed=1, workers=1, overwrite=True, **TINY)
    assert other["skipped"] is False
    assert not wav.exists()  # the old corpus was removed
    assert len(_wav_files(out)) == 12
    params = json.loads((out / "minivox.json").read_text())["params"]
    assert params["seed"] == 1 and params["num_trials"] == other["num_trials"]


@pytest.mark.parametrize(
    "kwargs, option",
    [
        (dict(num_videos=1), "--videos"),
        (dict(num_test_speakers=1), "--test-speakers"),
        (dict(num_speakers=0), "--speakers"),
        (dict(num_utterances=0), "--utterances"),
        (dict(num_trials=3), "--trials"),
        (dict(num_trials=1000), "--trials"),
        (dict(min_duration=0.9, max_duration=0.5), "--max-duration"),
        (dict(min_duration=0.0), "--min-duration"),
        (dict(channel_strength=-1.0), "--channel-strength"),
        (dict(workers=0), "--workers"),
        (dict(seed=-1), "--seed"),
    ],
)
def test_invalid_arguments(tmp_path, kwargs, option):
    args = {**TINY, **kwargs}
    with pytest.raises(ValueError, match=re.escape(option)):
        generate_corpus(tmp_path / "x", **args)
    assert not (tmp_path / "x").exists()


def test_videos_differ_in_channel(corpus):
    """Same-video utterances have closer spectra than other videos'."""
    root, _ = corpus
    within, across = [], []
    for videos in _by_video(root).values():
        spectra = {
            v: [_log_spectrum(x) for x in xs] for v, xs in videos.items()
        }
        keys = list(spectra)
        spk_within, spk_across = [], []
        for i, vi in enumerate(keys):
            for a in range(3):
                for b in range(a + 1, 3):
                    d = spectra[vi][a] - spectra[vi][b]
                    spk_within.append(np.sqrt(np.mean(d**2)))
                for vj in keys[i + 1 :]:
                    for b in range(3):
                        d = spectra[vi][a] - spectra[vj][b]
                        spk_across.append(np.sqrt(np.mean(d**2)))
        assert np.mean(spk_within) < np.mean(spk_across)
        within += spk_within
        across += spk_across
    assert np.mean(within) < 0.6 * np.mean(across)


def test_channel_strength_scales_channel_differences():
    """At strength 0 videos sound alike; at strength 1 they do not."""
    voice = Voice.sample(np.random.default_rng(0))
    ratios = {}
    for strength in (0.0, 1.0):
        spectra = []
        for video in range(3):
            channel = Channel.sample(np.random.default_rng(video), strength)
            spectra.append(
                [
                    _log_spectrum(
                        synthesize_utterance(
                            voice, channel, 1.0, np.random.default_rng(10 + u)
                        )
                    )
                    for u in range(3)
                ]
            )
        s = np.array(spectra)  # [video, utt, freq]
        within = np.mean(
            [np.sqrt(np.mean((s[v, a] - s[v, b]) ** 2))
             for v in range(3) for a in range(3) for b in range(a)]
        )  # fmt: skip
        across = np.mean(
            [np.sqrt(np.mean((s[v, a] - s[w, b]) ** 2))
             for v in range(3) for w in range(v) for a in range(3)
             for b in range(3)]
        )  # fmt: skip
        ratios[strength] = across / within
    # utterances u use the same content in every video, so at strength 0
    # only the noise realisations differ
    assert ratios[0.0] < 1.3
    assert ratios[1.0] > 2.0


def test_speakers_differ_in_f0(corpus):
    root, _ = corpus
    videos = pd.read_csv(Path(root) / "meta" / "videos.csv", dtype=str)
    session_f0 = dict(
        zip(videos.video_id, videos.session_f0_mean_hz.astype(float))
    )
    log_f0, truth = {}, []
    estimates = []
    for spk, vids in _by_video(root).items():
        for vid, xs in vids.items():
            for x in xs:
                est = np.log(_median_f0(x))
                log_f0.setdefault(spk, []).append(est)
                estimates.append(est)
                truth.append(np.log(session_f0[vid]))
    means = np.array([np.mean(v) for v in log_f0.values()])
    within = np.mean([np.var(v) for v in log_f0.values()])
    assert np.var(means) > 4 * within
    # the estimates follow the documented per-video f0 level
    assert np.corrcoef(estimates, truth)[0, 1] > 0.9


def test_synthesize_utterance_properties():
    rng = np.random.default_rng(0)
    voice, channel = Voice.sample(rng), Channel.sample(rng)
    x = synthesize_utterance(voice, channel, 0.75, np.random.default_rng(1))
    y = synthesize_utterance(voice, channel, 0.75, np.random.default_rng(1))
    assert x.shape == (12000,) and x.dtype == np.float32
    assert np.array_equal(x, y)
    assert np.all(np.isfinite(x)) and np.max(np.abs(x)) <= 0.99
    rms_db = 20 * np.log10(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
    assert abs(rms_db - channel.level_dbfs) < 0.5 or np.max(np.abs(x)) > 0.98


def test_equaliser_bands_have_their_gain():
    base = Channel.sample(np.random.default_rng(0), strength=0.0)
    for band, freq_at in [
        (("peak", 1000.0, 6.0, 1.0), 1000.0),
        (("lowshelf", 300.0, -8.0, 0.707), 60.0),
        (("highshelf", 1000.0, 5.0, 0.707), 6000.0),
    ]:
        channel = dataclasses.replace(base, eq=(band,))
        _, h = signal.sosfreqz(channel.filters(), worN=[freq_at], fs=SR)
        assert abs(20 * np.log10(abs(h[0])) - band[2]) < 0.5, band


def test_cli_entry_point(tmp_path, capsys):
    out = tmp_path / "cli"
    cmd = [
        sys.executable, "-m", "speechbrain_ssps.minivox", "--out", str(out),
        "--speakers", "1", "--videos", "2", "--utterances", "1",
        "--test-speakers", "2", "--seed", "5", "--min-duration", "0.4",
        "--max-duration", "0.4", "--trials", "4", "--workers", "1",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    summary = json.loads(done.stdout)
    assert summary["num_utterances"] == 6 and summary["num_trials"] == 4
    assert len(_wav_files(out)) == 6 and len(_read_trials(out)) == 4
    with pytest.raises(SystemExit):
        minivox.main(cmd[3:-6] + ["--videos", "1"])
    assert "--videos" in capsys.readouterr().err
