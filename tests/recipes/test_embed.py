"""Tests for recipes/VoxCeleb/SSPS/embed.py on a tiny MiniVox export."""

import csv
import json
import os
import shutil
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from recipe_helpers import RECIPE, run_script
from trained_export import train_and_export

from speechbrain_ssps.inference import load_exported

sys.path.insert(0, RECIPE)

import embed  # noqa: E402


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    """A 2-epoch run, its export and a second export averaging 2 epochs."""
    root = tmp_path_factory.mktemp("embed")
    out, export = train_and_export(corpus, root / "run")
    other = str(root / "other_export")
    run_script(["export.py", out, "--average=2", f"--export_folder={other}"])
    model = load_exported(export, "cpu")
    return {"run": out, "export": export, "other": other, "model": model}


def _reference(model, wav):
    """``SpeakerRecognition.encode_batch`` of one whole, unpadded file."""
    with torch.no_grad():
        emb = model.encode_batch(model.load_audio(wav, savedir=None)[None])
    return emb.reshape(-1).numpy()


def _index(folder):
    with open(os.path.join(folder, "embeddings.csv"), newline="") as fin:
        reader = csv.reader(fin)
        return next(reader), list(reader)


def _run(trained, out, *extra, source=None):
    argv = [f"--export_folder={trained['export']}", f"--output_folder={out}"]
    argv += list(source or []) + ["--device=cpu", "--noprogressbar"]
    return embed.main(argv + list(extra))


def _wav_files(folder):
    found = []
    for here, _, names in os.walk(folder):
        found += [os.path.join(here, n) for n in names if n.endswith(".wav")]
    return sorted(found)


def test_folder_embeddings_equal_encode_batch_and_index(
    trained, corpus, tmp_path
):
    folder = os.path.join(corpus, "wav", "id10001")
    out = tmp_path / "emb"
    counts = _run(trained, out, "--batch_size=1", source=[f"--folder={folder}"])
    wavs = _wav_files(folder)
    assert counts == {"embedded": len(wavs), "skipped": 0, "total": len(wavs)}

    header, rows = _index(out)
    assert header == ["ID", "wav", "npy", "duration"]
    rels = [os.path.relpath(w, folder)[: -len(".wav")] for w in wavs]
    assert [r[0] for r in rows] == rels
    for (_, wav, npy, duration), rel, path in zip(rows, rels, wavs):
        assert wav == path
        assert npy == rel + ".npy"  # mirrors the relative path
        info = sf.info(path)
        assert float(duration) == pytest.approx(
            info.frames / info.samplerate, abs=1e-5
        )
        vector = np.load(os.path.join(out, npy))
        assert vector.dtype == np.float32 and vector.ndim == 1
        # One file per batch: no padding, so exactly encode_batch's result.
        np.testing.assert_allclose(
            vector, _reference(trained["model"], path), rtol=1e-4, atol=1e-5
        )
    with open(out / "embed_info.json") as fin:
        assert json.load(fin)["export_folder"] == trained["export"]


def test_batched_csv_embeddings_close_to_encode_batch(trained, tmp_path):
    test_csv = os.path.join(trained["run"], "save", "test.csv")
    with open(test_csv, newline="") as fin:
        manifest = list(csv.DictReader(fin))
    out = tmp_path / "emb"
    _run(trained, out, "--batch_size=4", source=[f"--csv={test_csv}"])
    _, rows = _index(out)
    assert [r[0] for r in rows] == [m["ID"] for m in manifest]
    for row, entry in zip(rows, manifest):
        assert row[1] == entry["wav"] and row[2] == entry["ID"] + ".npy"
        got = np.load(os.path.join(out, row[2]))
        ref = _reference(trained["model"], entry["wav"])
        cosine = got @ ref / np.linalg.norm(got) / np.linalg.norm(ref)
        assert cosine > 0.99  # padded batches: reflect padding, not exact


def test_resume_skips_files_of_the_same_export(trained, corpus, tmp_path):
    folder = os.path.join(corpus, "wav", "id10002")
    out = tmp_path / "emb"
    source = [f"--folder={folder}"]
    first = _run(trained, out, source=source)
    header, rows = _index(out)
    # Simulate an interruption: last file lost, a torn index line.
    lost = rows[-1]
    os.remove(os.path.join(out, lost[2]))
    with open(out / "embeddings.csv", "w", newline="") as fout:
        csv.writer(fout).writerows([header, *rows[:-1]])
        fout.write(f"{lost[0]},{lost[1]}")
    stamps = {
        r[2]: os.stat(os.path.join(out, r[2])).st_mtime_ns for r in rows[:-1]
    }

    again = _run(trained, out, source=source)
    assert again == {
        "embedded": 1,
        "skipped": first["total"] - 1,
        "total": first["total"],
    }
    assert _index(out) == (header, rows)
    for npy, stamp in stamps.items():  # not rewritten
        assert os.stat(os.path.join(out, npy)).st_mtime_ns == stamp
    assert _run(trained, out, source=source)["skipped"] == first["total"]

    # A copy of the same export is the same model: still skipped.
    copy = tmp_path / "copy"
    shutil.copytree(trained["export"], copy)
    argv = [f"--export_folder={copy}", f"--output_folder={out}", *source]
    assert embed.main(argv + ["--noprogressbar"])["skipped"] == first["total"]

    # Another model's output folder is refused, unless --overwrite.
    argv = [f"--export_folder={trained['other']}", f"--output_folder={out}"]
    argv += source + ["--noprogressbar"]
    with pytest.raises(ValueError, match="--overwrite") as error:
        embed.main(argv)
    assert str(out) in str(error.value)
    assert embed.main(argv + ["--overwrite"])["embedded"] == first["total"]
    with open(out / "embed_info.json") as fin:
        assert json.load(fin)["export_folder"] == trained["other"]


def test_folder_without_audio(trained, tmp_path):
    empty = tmp_path / "no_audio"
    empty.mkdir()
    (empty / "notes.txt").write_text("no audio here\n")
    with pytest.raises(ValueError, match="holds no audio files") as error:
        _run(trained, tmp_path / "out", source=[f"--folder={empty}"])
    assert str(empty) in str(error.value)


def test_csv_missing_column(trained, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("ID,path\nx,/tmp/x.wav\n")
    match = r"lacks the column\(s\) \['wav'\]"
    with pytest.raises(ValueError, match=match) as e:
        _run(trained, tmp_path / "out", source=[f"--csv={bad}"])
    assert str(bad) in str(e.value)


def test_csv_naming_a_missing_file(trained, corpus, tmp_path):
    good = _wav_files(os.path.join(corpus, "wav", "id10001"))[0]
    bad = tmp_path / "bad.csv"
    bad.write_text(f"ID,wav\na,{good}\nb,{tmp_path}/gone.wav\n")
    with pytest.raises(ValueError) as error:
        _run(trained, tmp_path / "out", source=[f"--csv={bad}"])
    assert f"{bad}, line 3" in str(error.value)
    assert "gone.wav does not exist" in str(error.value)
    assert not (tmp_path / "out").exists()  # checked before any work


def test_export_folder_without_encoder(trained, corpus, tmp_path):
    broken = tmp_path / "export"
    broken.mkdir()
    shutil.copy(os.path.join(trained["export"], "hyperparams.yaml"), broken)
    result = run_script(
        [
            "embed.py",
            f"--export_folder={broken}",
            f"--folder={corpus}/wav/id10001",
            f"--output_folder={tmp_path}/out",
        ],
        check=False,
    )
    assert result.returncode != 0
    assert "embed.py: error: --export_folder" in result.stderr
    assert "embedding_model.ckpt" in result.stderr
    assert str(broken) in result.stderr
