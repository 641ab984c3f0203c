"""Tests of the MiniVox augmentation set (synthetic MUSAN and simulated RIRs).

Tiny sets (a few files of 0.6 s) keep the file fast; the recipe's CSV
writers and SpeechBrain's ``AddNoise``/``AddReverb`` read them as they
would read MUSAN and RIRS_NOISES.
"""

import csv
import functools
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from speechbrain.augment.time_domain import AddNoise, AddReverb

from speechbrain_ssps import minivox
from speechbrain_ssps.minivox import (
    Channel,
    Voice,
    generate_corpus,
    synthesize_utterance,
)
from speechbrain_ssps.minivox import augmentation as aug_module
from speechbrain_ssps.minivox.augmentation import generate_augmentation
from speechbrain_ssps.minivox.augmentation_layout import BABBLE_SPEAKERS
from speechbrain_ssps.minivox.augmentation_sounds import (
    BABBLE_TALKERS,
    NOISE_KINDS,
    babble_voices,
)
from speechbrain_ssps.minivox.metadata import _fmt
from speechbrain_ssps.minivox.seeds import _TAG_VOICE, _rng

RECIPE_DIR = Path(__file__).resolve().parents[2] / "recipes/VoxCeleb/SSPS"
sys.path.insert(0, str(RECIPE_DIR))

import augment_prepare  # noqa: E402

SR = 16000
SEED = 3
TINY = dict(num_noise=3, num_music=2, num_speech=2, num_rirs=4, duration=0.6)
RIR = "RIRS_NOISES/simulated_rirs"
EXPECTED = [
    f"{RIR}/largeroom/Room001/Room001-00001.wav",
    f"{RIR}/mediumroom/Room001/Room001-00001.wav",
    f"{RIR}/smallroom/Room001/Room001-00001.wav",
    f"{RIR}/smallroom/Room001/Room001-00002.wav",
    "augmentation.json",
    "musan/music/synth/music-0000.wav",
    "musan/music/synth/music-0001.wav",
    "musan/noise/bursts/noise-0002.wav",
    "musan/noise/coloured/noise-0000.wav",
    "musan/noise/hum/noise-0001.wav",
    "musan/speech/babble/speech-0000.wav",
    "musan/speech/babble/speech-0001.wav",
]


def _files(root):
    """Relative paths of every file under root, sorted."""
    root = Path(root)
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()
    )


def _wavs(root):
    return [f for f in _files(root) if f.endswith(".wav")]


@pytest.fixture(scope="module")
def aug(tmp_path_factory):
    """A tiny set written by one process; its summary."""
    out = tmp_path_factory.mktemp("aug")
    return generate_augmentation(out, seed=SEED, workers=1, **TINY)


def test_layout_and_record(aug):
    root = Path(aug["out_dir"])
    assert _files(root) == EXPECTED
    assert aug["musan_folder"] == str(root / "musan")
    assert aug["rir_folder"] == str(root / "RIRS_NOISES")
    assert aug["num_files"] == 11 and aug["skipped"] is False
    for rel in _wavs(root):
        if rel.startswith(RIR):
            assert re.fullmatch(
                rf"{RIR}/(small|medium|large)room/Room(\d{{3}})/Room\2-\d{{5}}"
                r"\.wav",
                rel,
            ), rel
        else:
            assert re.fullmatch(
                r"musan/(noise|music|speech)/[a-z]+/\1-\d{4}\.wav", rel
            ), rel
    record = json.loads((root / "augmentation.json").read_text())
    assert record["complete"] is True
    assert record["params"]["version"] == aug_module.AUGMENTATION_VERSION
    assert record["params"]["seed"] == SEED
    for key, value in TINY.items():
        assert record["params"][key] == value
    assert record["summary"]["num_files"] == 11
    assert sorted(record["files"]) == _wavs(root)
    for rel, info in record["files"].items():
        if "/noise/" in rel:  # one MUSAN subset per noise family
            assert info["kind"] == rel.split("/")[2] in NOISE_KINDS


def test_wav_format(aug):
    root = Path(aug["out_dir"])
    record = json.loads((root / "augmentation.json").read_text())
    for rel in _wavs(root):
        info = sf.info(str(root / rel))
        assert (info.samplerate, info.channels) == (SR, 1), rel
        assert (info.format, info.subtype) == ("WAV", "PCM_16"), rel
        wav, _ = sf.read(str(root / rel))
        assert np.max(np.abs(wav)) > 0.001, rel  # not silent
        if rel.startswith("musan/"):
            assert info.frames == round(TINY["duration"] * SR), rel
        else:  # a direct-path spike that AddReverb aligns on, then decay
            direct = record["files"][rel]["direct_index"]
            assert int(np.argmax(np.abs(wav))) == direct, rel
            head = np.sum(wav[direct + 1 : direct + 1 + len(wav) // 4] ** 2)
            tail = np.sum(wav[len(wav) - len(wav) // 4 :] ** 2)
            assert tail < 1e-3 * head, rel


def test_deterministic_worker_independent_and_seeded(aug, tmp_path):
    root = Path(aug["out_dir"])
    two = generate_augmentation(tmp_path / "b", seed=SEED, workers=2, **TINY)
    other = generate_augmentation(tmp_path / "c", seed=SEED + 1, **TINY)
    assert _files(two["out_dir"]) == EXPECTED
    for rel in EXPECTED:  # the files and the record
        assert (root / rel).read_bytes() == (
            Path(two["out_dir"]) / rel
        ).read_bytes(), rel
    for rel in _wavs(root):
        assert (root / rel).read_bytes() != (
            Path(other["out_dir"]) / rel
        ).read_bytes(), rel


def test_babble_voices_are_not_corpus_speakers(aug, tmp_path):
    record = json.loads(
        (Path(aug["out_dir"]) / "augmentation.json").read_text()
    )
    for rel, info in record["files"].items():
        if "/speech/" in rel:
            low, high = BABBLE_TALKERS
            assert low <= len(set(info["talkers"])) <= high
            assert all(0 <= k < BABBLE_SPEAKERS for k in info["talkers"])
    babble = babble_voices(SEED, BABBLE_SPEAKERS)
    assert len(set(babble)) == BABBLE_SPEAKERS
    # The speakers of corpora with this seed and others (as workers.py
    # draws them) ...
    for seed in (0, 1, SEED):
        corpus = {Voice.sample(_rng(seed, _TAG_VOICE, i)) for i in range(100)}
        assert not corpus & set(babble)
    # ... and of a corpus written with the set's seed.
    generate_corpus(
        tmp_path / "corpus",
        num_speakers=1,
        num_videos=2,
        num_utterances=1,
        num_test_speakers=2,
        seed=SEED,
        min_duration=0.3,
        max_duration=0.3,
        workers=1,
    )
    speakers = pd.read_csv(tmp_path / "corpus" / "meta" / "speakers.csv")
    corpus_f0 = set(speakers["f0_mean_hz"].map(_fmt))
    assert not corpus_f0 & {_fmt(v.f0_mean) for v in babble}


def _csv_paths(csv_file):
    with open(csv_file, newline="", encoding="utf-8") as f:
        return sorted(row["wav"] for row in csv.DictReader(f))


@pytest.fixture(scope="module")
def lists(aug, tmp_path_factory):
    """The recipe's CSVs of the tiny set."""
    save = tmp_path_factory.mktemp("augment")
    musan = augment_prepare.prepare_musan(aug["musan_folder"], str(save))
    rir = augment_prepare.prepare_rir(aug["rir_folder"], str(save))
    return musan, rir


def test_recipe_lists_every_file(aug, lists):
    musan, rir = lists
    root = Path(aug["out_dir"])
    assert sorted(musan) == ["music", "noise", "speech"]
    for category, csv_file in musan.items():
        on_disk = [
            str(root / rel)
            for rel in _wavs(root)
            if rel.startswith(f"musan/{category}/")
        ]
        assert _csv_paths(csv_file) == sorted(on_disk)
    rirs = [str(root / rel) for rel in _wavs(root) if rel.startswith(RIR)]
    assert _csv_paths(rir) == sorted(rirs) and len(rirs) == TINY["num_rirs"]


def test_speechbrain_augmenters_change_minivox_audio(lists):
    musan, rir = lists
    rng = np.random.default_rng(0)
    batch = torch.from_numpy(
        np.stack(
            [
                synthesize_utterance(
                    Voice.sample(rng), Channel.sample(rng), 0.5, rng
                )
                for _ in range(3)
            ]
        )
    )
    lengths = torch.ones(3)
    rates = dict(clean_sample_rate=SR)
    torch.manual_seed(0)
    outputs = [
        AddNoise(csv_file=path, noise_sample_rate=SR, **rates)(
            batch.clone(), lengths
        )
        for path in musan.values()
    ]
    reverb = AddReverb(csv_file=rir, reverb_sample_rate=SR, **rates)
    outputs.append(reverb(batch.clone()))  # AddReverb takes no lengths
    for out in outputs:
        assert out.shape == batch.shape
        assert torch.isfinite(out).all()
        assert not torch.allclose(out, batch, atol=1e-4)


def test_skip_refuse_and_overwrite(tmp_path):
    out = tmp_path / "set"
    small = dict(TINY, num_noise=1, num_music=1, num_speech=1, num_rirs=1)
    generate_augmentation(out, workers=1, **small)
    wav = out / "musan" / "noise" / "coloured" / "noise-0000.wav"
    stamp = wav.stat().st_mtime_ns
    again = generate_augmentation(out, workers=1, **small)
    assert again["skipped"] is True and wav.stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="differs in seed.*--overwrite"):
        generate_augmentation(out, seed=1, workers=1, **small)
    assert wav.stat().st_mtime_ns == stamp  # nothing was touched
    other = generate_augmentation(
        out, seed=1, workers=1, overwrite=True, **dict(small, num_noise=2)
    )
    assert other["skipped"] is False and other["num_noise"] == 2
    assert len(_wavs(out)) == 5
    assert (
        json.loads((out / "augmentation.json").read_text())["params"]["seed"]
        == 1
    )
    foreign = tmp_path / "foreign"
    (foreign / "musan" / "noise").mkdir(parents=True)
    with pytest.raises(ValueError, match="not made by minivox"):
        generate_augmentation(foreign, workers=1, **small)


@pytest.mark.parametrize(
    "kwargs, flag",
    [
        (dict(num_noise=0), "--noise"),
        (dict(num_rirs=1.5), "--rirs"),
        (dict(duration=0.1), "--duration"),
        (dict(duration=float("nan")), "--duration"),
        (dict(workers=0), "--workers"),
        (dict(seed=-1), "--seed"),
    ],
)
def test_invalid_arguments(tmp_path, kwargs, flag):
    with pytest.raises(ValueError, match=re.escape(flag)):
        generate_augmentation(tmp_path / "x", **{**TINY, **kwargs})
    assert not (tmp_path / "x").exists()


def test_command_lines(tmp_path, monkeypatch, capsys):
    cmd = [
        sys.executable, "-m", "speechbrain_ssps.minivox.augmentation",
        "--out", str(tmp_path / "cli"), "--seed", "2", "--noise", "1",
        "--music", "1", "--speech", "1", "--rirs", "2", "--duration", "0.5",
        "--workers", "1",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    summary = json.loads(done.stdout)
    assert summary["num_files"] == 5 and summary["num_rirs"] == 2
    assert "RuntimeWarning" not in done.stderr
    with pytest.raises(SystemExit):
        aug_module.main(["--out", str(tmp_path / "bad"), "--noise", "0"])
    assert "--noise" in capsys.readouterr().err

    # The corpus command line writes a set too with --augmentation (here
    # with tiny sizes instead of the defaults).
    tiny = functools.partial(generate_augmentation, **TINY)
    monkeypatch.setattr(aug_module, "generate_augmentation", tiny)
    minivox.main(
        [
            "--out", str(tmp_path / "corpus"), "--speakers", "1",
            "--videos", "2", "--utterances", "1", "--test-speakers", "2",
            "--min-duration", "0.3", "--max-duration", "0.3",
            "--workers", "1", "--seed", "4",
            "--augmentation", str(tmp_path / "set"),
        ]
    )  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert summary["num_utterances"] == 6
    assert summary["augmentation"]["num_files"] == 11
    assert _files(tmp_path / "set") == EXPECTED
    record = json.loads((tmp_path / "set" / "augmentation.json").read_text())
    assert record["params"]["seed"] == 4  # the corpus's --seed
