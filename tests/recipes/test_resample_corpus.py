"""``convert_to_wav.py --resample``: a corpus at another rate, prepared.

The MiniVox corpus of ``conftest.py`` is first written at 8 kHz (as a user's
corpus could be); the prep refuses it with the command that fixes it, the
command resamples it to 16 kHz into a new tree, and the prep of that tree
gives the same manifests as the 16 kHz original.
"""

import csv
import sys
from pathlib import Path

import pytest
import soundfile as sf

from speechbrain_ssps.resample import resample_tree

RECIPE_DIR = Path(__file__).resolve().parents[2] / "recipes/VoxCeleb/SSPS"
sys.path.insert(0, str(RECIPE_DIR))

import convert_to_wav as cw  # noqa: E402
import voxceleb_prepare as vp  # noqa: E402


def ids_and_durations(path):
    with open(path, newline="") as f:
        return [
            (r["ID"], round(float(r["duration"]), 2)) for r in csv.DictReader(f)
        ]


@pytest.fixture(scope="module")
def corpus_8k(corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("minivox_8k") / "corpus"
    counts = resample_tree(corpus, str(root), sample_rate=8000, workers=2)
    assert counts["failed"] == 0
    return str(root)


def test_prep_refuses_with_the_fixing_command(corpus_8k, tmp_path):
    with pytest.raises(ValueError) as error:
        vp.prepare_voxceleb(corpus_8k, str(tmp_path / "p"))
    message = str(error.value)
    assert "8000 Hz, expected 16000 Hz" in message
    assert f"convert_to_wav.py --resample --src {corpus_8k} --dst" in message


def test_resample_command_then_prep(corpus, corpus_8k, tmp_path, capsys):
    dst = str(tmp_path / "corpus_16k")
    argv = ["--resample", "--src", corpus_8k, "--dst", dst, "--workers", "2"]
    assert cw.main(argv) == 0
    assert "failed 0" in capsys.readouterr().out
    out = vp.prepare_voxceleb(dst, str(tmp_path / "p"))
    ref = vp.prepare_voxceleb(corpus, str(tmp_path / "ref"))
    for key in ("train", "test"):
        assert ids_and_durations(out[key]) == ids_and_durations(ref[key])
    assert (
        Path(out["trials_O"]).read_text() == Path(ref["trials_O"]).read_text()
    )
    first = ids_and_durations(out["train"])[0][0]
    assert sf.info(str(Path(dst) / "wav" / f"{first}.wav")).samplerate == 16000
    # Resumable: a second run skips everything.
    assert cw.main(argv) == 0
    assert "resampled 0" in capsys.readouterr().out


def test_resample_command_errors(corpus_8k, tmp_path, capsys):
    assert cw.main(["--resample", "--src", corpus_8k]) == 2
    assert "needs --dst" in capsys.readouterr().err
    bad = tmp_path / "bad" / "wav" / "s" / "v"
    bad.mkdir(parents=True)
    (bad / "1.wav").write_bytes(b"garbage")
    argv = ["--resample", "--src", str(tmp_path / "bad")]
    assert cw.main(argv + ["--dst", str(tmp_path / "o")]) == 1
    assert str(bad / "1.wav") in capsys.readouterr().err
