"""Tests for recipes/VoxCeleb/SSPS/verify.py on a tiny tree and random ECAPA."""

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy.signal import lfilter
from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN
from speechbrain.utils.checkpoints import Checkpointer

from speechbrain_ssps.export import export_encoder

RECIPE_DIR = Path(__file__).resolve().parents[2] / "recipes/VoxCeleb/SSPS"
sys.path.insert(0, str(RECIPE_DIR))

import verify  # noqa: E402

YAML = str(RECIPE_DIR / "hparams/verification.yaml")
RATE = 16000
HEADER = ["ID", "duration", "wav", "spk_id", "video_id"]


def write_split(root, save, name, speakers, rng):
    """Wavs <root>/wav/<spk>/<vid>/<utt>.wav and <save>/<name>.csv."""
    rows = []
    for spk in speakers:
        # A speaker = a fixed spectral tilt, so embeddings are not random.
        tilt = rng.uniform(-0.9, 0.9)
        for vid in ("v1", "v2"):
            for utt in ("00001", "00002"):
                n = int(rng.integers(8000, 16000))
                audio = lfilter([1.0], [1.0, -tilt], rng.standard_normal(n))
                path = root / "wav" / spk / vid / f"{utt}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                audio = (0.1 * audio).astype("float32")
                sf.write(str(path), audio, RATE)
                uid = f"{spk}/{vid}/{utt}"
                rows.append([uid, f"{n / RATE:.5f}", str(path), spk, vid])
    with open(save / f"{name}.csv", "w", newline="") as fout:
        writer = csv.writer(fout)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return [r[0] for r in rows]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """Prepared folder (test/train csv, trial list) and an export."""
    root = tmp_path_factory.mktemp("verify")
    save = root / "out" / "save"
    save.mkdir(parents=True)
    rng = np.random.default_rng(0)
    test_ids = write_split(root, save, "test", ["id1", "id2", "id3"], rng)
    write_split(root, save, "train", ["id7", "id8"], rng)
    lines = []
    for i, a in enumerate(test_ids):
        for b in test_ids[i + 1 :]:
            lines.append(f"{int(a[:3] == b[:3])} {a} {b}")
    (save / "trials_O.txt").write_text("\n".join(lines) + "\n")

    (root / "out" / "hyperparams.yaml").write_text(
        "n_mels: 24\nchannels: [8, 8, 8, 8, 24]\nemb_dim: 16\n"
    )
    torch.manual_seed(0)
    model = ECAPA_TDNN(24, channels=[8, 8, 8, 8, 24], lin_neurons=16)
    Checkpointer(str(save), {"embedding_model": model}).save_checkpoint(
        meta={"epoch": 1}, end_of_epoch=True
    )
    export = export_encoder(str(root / "out"))
    return {"root": root, "save": save, "export": export, "lines": lines}


def run_verify(tree, out, *extra):
    return verify.main(
        [
            YAML,
            f"--export_folder={tree['export']}",
            f"--prep_folder={tree['save']}",
            f"--output_folder={out}",
            "--device=cpu",
            "--num_workers=0",
            *extra,
        ]
    )


def test_end_to_end(tree, tmp_path):
    out = tmp_path / "verification"
    results = run_verify(tree, out, "--make_tsne=True")
    saved = json.loads((out / "results.json").read_text())
    assert saved == results
    assert list(saved) == ["O"]
    stats = saved["O"]
    assert stats["num_trials"] == len(tree["lines"])
    assert stats["num_targets"] == sum(ln[0] == "1" for ln in tree["lines"])
    assert 0.0 <= stats["eer_percent"] <= 100.0
    assert 0.0 <= stats["min_dcf"] <= 1.0 + 1e-9  # normalised: 1 = no skill
    assert stats["score_norm"] is None and stats["p_target"] == 0.01
    for png in ("det_O.png", "score_hist_O.png", "tsne.png"):
        assert (out / png).stat().st_size > 1000
    assert (out / "log.txt").exists() and (out / "hyperparams.yaml").exists()

    # Scores: one line per trial, cosines of the model's own embeddings.
    rows = [ln.split() for ln in (out / "scores_O.txt").read_text().split("\n")]
    rows = [r for r in rows if r]
    assert [" ".join(r[:3]) for r in rows] == tree["lines"]
    scores = np.array([float(r[3]) for r in rows])
    labels = np.array([int(r[0]) for r in rows])
    assert np.all(np.abs(scores) <= 1.0 + 1e-6)
    # EER by brute force over thresholds, independent of scoring.py.
    best = min(
        (abs(far - frr), (far + frr) / 2)
        for th in np.r_[scores, np.inf]
        for far in [np.mean(scores[labels == 0] >= th)]
        for frr in [np.mean(scores[labels == 1] < th)]
    )[1]
    assert stats["eer_percent"] == pytest.approx(100 * best, abs=1e-6)


def test_unknown_trial_id_fails_before_embedding(tree, tmp_path, monkeypatch):
    prep = tmp_path / "prep"
    prep.mkdir()
    for name in ("test.csv", "train.csv"):
        (prep / name).write_text((tree["save"] / name).read_text())
    lines = tree["lines"][:3] + ["", "0 id1/v1/00001 id9/zz/00009"]
    (prep / "trials_O.txt").write_text("\n".join(lines) + "\n")

    def forbidden(*args, **kwargs):
        raise AssertionError("embedding started before the check")

    monkeypatch.setattr(verify, "embed_utterances", forbidden)
    monkeypatch.setattr(verify, "load_encoder", forbidden)
    with pytest.raises(ValueError) as error:
        verify.main(
            [
                YAML,
                f"--export_folder={tree['export']}",
                f"--prep_folder={prep}",
                f"--output_folder={tmp_path / 'v'}",
            ]
        )
    message = str(error.value)
    assert "trials_O.txt, line 5" in message
    assert "'id9/zz/00009'" in message and "test.csv" in message


def test_missing_list_is_named(tree, tmp_path):
    with pytest.raises(ValueError, match="trials_H.txt does not exist"):
        run_verify(tree, tmp_path / "v", "--trial_lists=[H]")
    with pytest.raises(ValueError, match="score_norm"):
        run_verify(tree, tmp_path / "v", "--score_norm=z-norm")


def test_s_norm_matches_formula(tree, tmp_path, monkeypatch):
    captured = {}
    real = verify.embed_utterances

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        captured.update(out)
        return out

    monkeypatch.setattr(verify, "embed_utterances", spy)
    out = tmp_path / "snorm"
    results = run_verify(
        tree,
        out,
        "--score_norm=s-norm",
        "--cohort_size=5",
        "--make_plots=False",
    )
    stats = results["O"]
    assert stats["score_norm"] == "s-norm"
    assert 0.0 <= stats["eer_percent"] <= 100.0
    assert 0.0 <= stats["raw_eer_percent"] <= 100.0
    assert not (out / "det_O.png").exists()

    # The cohort: 5 training utterances drawn with the yaml's seed.
    train = verify.read_manifest(str(tree["save"] / "train.csv"))
    drawn = verify.draw_cohort(train, 5, seed=1986)
    assert drawn == verify.draw_cohort(train, 5, seed=1986)
    cohort_keys = [k for k in captured if k.startswith(verify.COHORT_PREFIX)]
    assert sorted(k[len(verify.COHORT_PREFIX) :] for k in cohort_keys) == (
        sorted(drawn)
    )

    # S-norm of every trial, recomputed from the embeddings verify used.
    def unit(x):
        return (x / x.norm(dim=-1, keepdim=True)).double()

    cohort = unit(torch.stack([captured[k] for k in cohort_keys]))
    rows = [ln.split() for ln in (out / "scores_O.txt").read_text().split("\n")]
    rows = [r for r in rows if r]
    assert len(rows) == len(tree["lines"])
    enrol = unit(torch.stack([captured[r[1]] for r in rows]))
    test = unit(torch.stack([captured[r[2]] for r in rows]))
    raw = (enrol * test).sum(1)
    ce, ct = enrol @ cohort.T, test @ cohort.T
    expected = 0.5 * (
        (raw - ce.mean(1)) / ce.std(1, unbiased=False)
        + (raw - ct.mean(1)) / ct.std(1, unbiased=False)
    )
    got = torch.tensor([float(r[3]) for r in rows], dtype=torch.float64)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-3)


def test_plot_titles_name_the_corpus_and_list(tmp_path):
    # The test tree of a plain VoxCeleb-shaped corpus...
    wav = tmp_path / "vox" / "wav" / "id1" / "v1" / "00001.wav"
    test = {"id1/v1/00001": {"ID": "id1/v1/00001", "wav": str(wav)}}
    assert verify.corpus_of(test) == "VoxCeleb1"
    assert verify.list_title("VoxCeleb1", "O") == "VoxCeleb1-O"
    # ... and MiniVox, recognised by its marker at the dataset root.
    (tmp_path / "vox").mkdir(exist_ok=True)
    (tmp_path / "vox" / "minivox.json").write_text("{}")
    assert verify.corpus_of(test) == "MiniVox"
    assert verify.list_title("MiniVox", "O") == "MiniVox, trials O"
    assert verify.list_title("VoxCeleb1", "mine") == "VoxCeleb1, trials mine"


def test_corpus_name_option_titles_the_plots(tree, tmp_path, monkeypatch):
    titles = []
    for name in ("plot_det", "plot_score_histogram"):
        monkeypatch.setattr(
            verify,
            name,
            lambda *args, title=None, **kwargs: titles.append(title),
        )
    run_verify(tree, tmp_path / "v", "--corpus_name=CN-Celeb")
    assert titles[0].startswith("CN-Celeb, trials O: EER ")
    assert titles[1].startswith("CN-Celeb, trials O: ")
