"""Tests for recipes/VoxCeleb/SSPS/voxceleb_prepare.py on a tiny fake tree."""

import csv
import logging
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

RECIPE_DIR = Path(__file__).resolve().parents[2] / "recipes/VoxCeleb/SSPS"
sys.path.insert(0, str(RECIPE_DIR))

import voxceleb_prepare as vp  # noqa: E402

RATE = 16000

# (root, speaker, video, utt, extension, number of samples)
VOX1 = [
    ("id10001", "vidA", "00001", ".wav", 8000),
    ("id10001", "vidA", "00002", ".wav", 12000),
    ("id10001", "vidB", "00001", ".flac", 16000),
    ("id10002", "vidC", "00001", ".wav", 9600),
    ("id10002", "vidD", "00003", ".wav", 4800),
    ("id10003", "vidE", "00001", ".flac", 11200),
    ("id10003", "vidE", "00002", ".wav", 6400),
]
VOX2 = [
    ("id00001", "v1", "00001", ".wav", 3200),
    ("id00001", "v2", "00001", ".flac", 5600),
    ("id00002", "v3", "00001", ".wav", 7200),
]
VERI_TEST2 = [
    "1 id10001/vidA/00001.wav id10001/vidB/00001.wav",
    "0 id10001/vidA/00002.wav id10002/vidC/00001.wav",
    "",
    "1 id10002/vidC/00001.wav id10002/vidD/00003.wav",
]


def write_tree(root, files, seed=0):
    """Writes short noise files; returns {ID: (path, n_samples)}."""
    rng = np.random.default_rng(seed)
    out = {}
    for spk, vid, utt, ext, n in files:
        folder = root / "wav" / spk / vid
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{utt}{ext}"
        audio = 0.1 * rng.standard_normal(n).astype("float32")
        sf.write(str(path), audio, RATE, subtype="PCM_16")
        out[f"{spk}/{vid}/{utt}"] = (str(path), n)
    return out


def write_trials(root, lines, name="veri_test2.txt"):
    (root / "meta").mkdir(parents=True, exist_ok=True)
    path = root / "meta" / name
    path.write_text("\n".join(lines) + "\n")
    return path


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


@pytest.fixture
def corpus(tmp_path):
    vox1 = write_tree(tmp_path / "vox1", VOX1, seed=1)
    vox2 = write_tree(tmp_path / "vox2", VOX2, seed=2)
    write_trials(tmp_path / "vox1", VERI_TEST2)
    return tmp_path, vox1, vox2


def expected_row(utt_id, path, n):
    spk, vid, _ = utt_id.split("/")
    return [utt_id, f"{n / RATE:.5f}", path, spk, vid]


def test_full_preparation(corpus):
    tmp, vox1, vox2 = corpus
    save = tmp / "prep"
    out = vp.prepare_voxceleb(f"{tmp / 'vox2'},{tmp / 'vox1'}", str(save))
    assert out == {
        "train": str(save / "train.csv"),
        "test": str(save / "test.csv"),
        "trials_O": str(save / "trials_O.txt"),
    }

    # Train: every vox2 utterance and the non-test vox1 speaker, by ID.
    test_speakers = {"id10001", "id10002"}
    everything = {**vox1, **vox2}
    train_ids = sorted(
        u for u in everything if u.split("/")[0] not in test_speakers
    )
    header, rows = read_csv(out["train"])
    assert header == ["ID", "duration", "wav", "spk_id", "video_id"]
    assert rows == [expected_row(u, *everything[u]) for u in train_ids]
    assert any(row[2].endswith(".flac") for row in rows)
    assert all(os.path.isabs(row[2]) for row in rows)
    assert not {row[3] for row in rows} & test_speakers

    # Test: exactly the utterances the trials name.
    trial_ids = sorted(
        {f.rsplit(".", 1)[0] for line in VERI_TEST2 for f in line.split()[1:]}
    )
    header, rows = read_csv(out["test"])
    assert rows == [expected_row(u, *vox1[u]) for u in trial_ids]

    # Trials: normalised, IDs as in test.csv, blank lines dropped.
    expected = [line.replace(".wav", "") for line in VERI_TEST2 if line.strip()]
    assert Path(out["trials_O"]).read_text().splitlines() == expected

    # A list of roots, in another order, gives the same manifests.
    out2 = vp.prepare_voxceleb(
        [str(tmp / "vox1"), str(tmp / "vox2")], str(tmp / "prep2")
    )
    for key in ("train", "test", "trials_O"):
        assert Path(out2[key]).read_text() == Path(out[key]).read_text()


def test_all_standard_lists_and_test_speaker_removal(corpus):
    tmp, _, _ = corpus
    hard = ["0 id10003/vidE/00001.wav id10001/vidA/00001.wav"]
    write_trials(tmp / "vox1", hard, "list_test_hard2.txt")
    out = vp.prepare_voxceleb(
        [str(tmp / "vox1"), str(tmp / "vox2")], str(tmp / "prep")
    )
    assert set(out) == {"train", "test", "trials_O", "trials_H"}
    _, rows = read_csv(out["train"])
    # id10003 is a speaker of list H only: removed too, vox2 remains.
    assert {row[3] for row in rows} == {"id00001", "id00002"}
    _, test_rows = read_csv(out["test"])
    assert "id10003/vidE/00001" in {row[0] for row in test_rows}


def test_explicit_lists_and_separate_test_folder(corpus):
    tmp, vox1, vox2 = corpus
    custom = tmp / "my_list.txt"
    custom.write_text("1 id10003/vidE/00001 id10003/vidE/00002\n")
    out = vp.prepare_voxceleb(
        str(tmp / "vox2"),
        str(tmp / "prep"),
        trial_lists={"O": None, "mine": str(custom)},
        test_folder=str(tmp / "vox1"),
    )
    _, rows = read_csv(out["train"])
    assert [row[0] for row in rows] == sorted(vox2)
    _, test_rows = read_csv(out["test"])
    assert {row[0] for row in test_rows} >= {"id10003/vidE/00002"}
    assert Path(out["trials_mine"]).read_text() == (
        "1 id10003/vidE/00001 id10003/vidE/00002\n"
    )
    # Only the requested lists are used.
    out = vp.prepare_voxceleb(
        str(tmp / "vox2"),
        str(tmp / "prep3"),
        trial_lists={"mine": str(custom)},
        test_folder=str(tmp / "vox1"),
    )
    _, test_rows = read_csv(out["test"])
    assert [row[0] for row in test_rows] == [
        "id10003/vidE/00001",
        "id10003/vidE/00002",
    ]


def test_no_trial_list_writes_train_only(tmp_path):
    vox2 = write_tree(tmp_path / "vox2", VOX2)
    out = vp.prepare_voxceleb(str(tmp_path / "vox2"), str(tmp_path / "p"))
    assert set(out) == {"train"}
    _, rows = read_csv(out["train"])
    assert [row[0] for row in rows] == sorted(vox2)


def test_skip_if_prepared(corpus, caplog):
    tmp, _, _ = corpus
    save = tmp / "prep"
    roots = f"{tmp / 'vox1'},{tmp / 'vox2'}"
    out = vp.prepare_voxceleb(roots, str(save))
    assert (save / vp.OPT_FILE).is_file()
    old = 1_000_000_000
    for path in out.values():
        os.utime(path, ns=(old, old))

    with caplog.at_level(logging.INFO):
        assert vp.prepare_voxceleb(roots, str(save)) == out
    assert all(os.stat(p).st_mtime_ns == old for p in out.values())
    assert "skipping" in caplog.text

    # A changed option rewrites.
    vp.prepare_voxceleb(roots, str(save), sample_rate=None)
    assert all(os.stat(p).st_mtime_ns != old for p in out.values())

    # A missing output rewrites too.
    for path in out.values():
        os.utime(path, ns=(old, old))
    os.remove(out["test"])
    vp.prepare_voxceleb(roots, str(save), sample_rate=None)
    assert os.path.isfile(out["test"])
    assert os.stat(out["train"]).st_mtime_ns != old

    # skip_prep touches nothing and reports what is there.
    for path in out.values():
        os.utime(path, ns=(old, old))
    assert vp.prepare_voxceleb("/nonexistent", str(save), skip_prep=True) == (
        out
    )
    assert all(os.stat(p).st_mtime_ns == old for p in out.values())


def test_m4a_is_refused_with_pointer_to_converter(tmp_path):
    folder = tmp_path / "vox2" / "wav" / "id00001" / "v1"
    folder.mkdir(parents=True)
    (folder / "00001.m4a").write_bytes(b"not audio")
    with pytest.raises(ValueError, match="convert_to_wav.py") as err:
        vp.prepare_voxceleb(str(tmp_path / "vox2"), str(tmp_path / "p"))
    assert "00001.m4a" in str(err.value)

    # The official VoxCeleb2 layout (dev/aac/...) is recognised too.
    aac = tmp_path / "raw" / "dev" / "aac" / "id00001" / "v1"
    aac.mkdir(parents=True)
    (aac / "00001.m4a").write_bytes(b"x")
    with pytest.raises(ValueError, match="convert_to_wav.py"):
        vp.prepare_voxceleb(str(tmp_path / "raw"), str(tmp_path / "p"))


def test_m4a_beside_converted_wav_is_fine_but_partial_is_not(tmp_path):
    files = write_tree(tmp_path / "vox2", VOX2)
    for path, _ in files.values():
        Path(path).with_suffix(".m4a").write_bytes(b"aac")
    out = vp.prepare_voxceleb(str(tmp_path / "vox2"), str(tmp_path / "p"))
    _, rows = read_csv(out["train"])
    assert len(rows) == len(VOX2)
    extra = tmp_path / "vox2" / "wav" / "id00002" / "v3" / "00009.m4a"
    extra.write_bytes(b"aac")
    with pytest.raises(ValueError, match="1 .m4a file") as err:
        vp.prepare_voxceleb(str(tmp_path / "vox2"), str(tmp_path / "p2"))
    assert str(extra) in str(err.value)


def test_missing_folder_and_no_audio(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        vp.prepare_voxceleb(str(missing), str(tmp_path / "p"))
    (tmp_path / "flat").mkdir()
    with pytest.raises(FileNotFoundError, match="No wav/ folder"):
        vp.prepare_voxceleb(str(tmp_path / "flat"), str(tmp_path / "p"))
    (tmp_path / "empty" / "wav" / "id1" / "v1").mkdir(parents=True)
    (tmp_path / "empty" / "wav" / "id1" / "v1" / "notes.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match="No audio") as err:
        vp.prepare_voxceleb(str(tmp_path / "empty"), str(tmp_path / "p"))
    assert str(tmp_path / "empty") in str(err.value)
    assert not (tmp_path / "p").exists()


def test_trial_naming_missing_file(corpus):
    tmp, _, _ = corpus
    path = write_trials(
        tmp / "vox1",
        VERI_TEST2[:2] + ["1 id10001/vidA/00001.wav id10002/vidZ/00007.wav"],
    )
    with pytest.raises(FileNotFoundError) as err:
        vp.prepare_voxceleb(str(tmp / "vox1"), str(tmp / "p"))
    message = str(err.value)
    assert str(path) in message and "line 3" in message
    assert "id10002/vidZ/00007" in message
    assert not (tmp / "p").exists()


@pytest.mark.parametrize(
    "bad_line",
    [
        "1 id10001/vidA/00001.wav",
        "yes id10001/vidA/00001.wav id10002/vidC/00001.wav",
        "1 id10001/00001.wav id10002/vidC/00001.wav",
    ],
)
def test_malformed_trial_line(corpus, bad_line):
    tmp, _, _ = corpus
    path = write_trials(tmp / "vox1", VERI_TEST2 + [bad_line])
    with pytest.raises(ValueError, match="line 5") as err:
        vp.prepare_voxceleb(str(tmp / "vox1"), str(tmp / "p"))
    assert str(path) in str(err.value)


def test_missing_requested_trial_list(corpus):
    tmp, _, _ = corpus
    with pytest.raises(FileNotFoundError, match="list_test_all2.txt"):
        vp.prepare_voxceleb(
            str(tmp / "vox1"), str(tmp / "p"), trial_lists={"E": None}
        )
    with pytest.raises(ValueError, match="needs a path"):
        vp.prepare_voxceleb(
            str(tmp / "vox1"), str(tmp / "p"), trial_lists={"X": None}
        )


def test_zero_training_utterances_left(tmp_path):
    files = [f for f in VOX1 if f[0] != "id10003"]
    write_tree(tmp_path / "vox1", files)
    write_trials(tmp_path / "vox1", VERI_TEST2)
    with pytest.raises(ValueError, match="No training utterance left") as e:
        vp.prepare_voxceleb(str(tmp_path / "vox1"), str(tmp_path / "p"))
    assert str(tmp_path / "vox1") in str(e.value)


def test_wrong_sample_rate_and_duplicates(tmp_path):
    files = write_tree(tmp_path / "vox2", VOX2)
    path = files["id00002/v3/00001"][0]
    sf.write(path, np.zeros(800, dtype="float32"), 8000)
    with pytest.raises(ValueError, match="8000 Hz") as err:
        vp.prepare_voxceleb(str(tmp_path / "vox2"), str(tmp_path / "p"))
    assert path in str(err.value)
    out = vp.prepare_voxceleb(
        str(tmp_path / "vox2"), str(tmp_path / "p"), sample_rate=None
    )
    _, rows = read_csv(out["train"])
    assert rows[-1][1] == f"{800 / 8000:.5f}"

    twin = Path(path).with_suffix(".flac")
    sf.write(str(twin), np.zeros(800, dtype="float32"), 16000)
    with pytest.raises(ValueError, match="Two audio files"):
        vp.prepare_voxceleb(str(tmp_path / "vox2"), str(tmp_path / "p"))
    twin.unlink()

    write_tree(tmp_path / "copy", VOX2[:1])
    with pytest.raises(ValueError, match="two data roots"):
        vp.prepare_voxceleb(
            [str(tmp_path / "vox2"), str(tmp_path / "copy")],
            str(tmp_path / "p"),
        )


def test_command_line(corpus, capsys):
    tmp, _, _ = corpus
    out = vp.main(
        [
            "--data_folder",
            f"{tmp / 'vox1'},{tmp / 'vox2'}",
            "--save_folder",
            str(tmp / "cli"),
            "--trial",
            "O",
        ]
    )
    assert set(out) == {"train", "test", "trials_O"}
    assert str(tmp / "cli" / "train.csv") in capsys.readouterr().out
