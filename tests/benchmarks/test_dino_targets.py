"""The DINO target diagnostic: partner draws, statistics, a real checkpoint."""

import importlib.util
import json
import math
import os
import subprocess
import sys

import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
RECIPE = os.path.join(REPO, "recipes", "VoxCeleb", "SSPS")
SPEC = importlib.util.spec_from_file_location(
    "dino_targets", os.path.join(REPO, "benchmarks", "dino_targets.py")
)
diag = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(diag)


def labels(speakers=3, videos=3, utterances=2):
    spk = [f"s{s}" for s in range(speakers) for _ in range(videos * utterances)]
    vid = [
        f"s{s}v{v}"
        for s in range(speakers)
        for v in range(videos)
        for _ in range(utterances)
    ]
    return spk, vid


def test_every_partner_has_the_relation_its_kind_names():
    spk, vid = labels()
    # A small chunk makes the rows cross chunk boundaries.
    partners = diag.draw_partners(spk, vid, seed=3, chunk=4)
    n = len(spk)
    for i in range(n):
        assert partners["same_utterance"][i] == i
        j = int(partners["same_video"][i])
        assert j != i and vid[j] == vid[i]
        j = int(partners["same_speaker_other_video"][i])
        assert spk[j] == spk[i] and vid[j] != vid[i]
        j = int(partners["other_speaker"][i])
        assert spk[j] != spk[i]


def test_kinds_without_a_candidate_are_minus_one():
    # One utterance per video and one video for speaker b.
    spk, vid = ["a", "a", "b"], ["a1", "a2", "b1"]
    partners = diag.draw_partners(spk, vid)
    assert partners["same_video"].tolist() == [-1, -1, -1]
    assert partners["same_speaker_other_video"].tolist() == [1, 0, -1]


def test_draws_cover_every_candidate():
    spk, vid = labels(speakers=2, videos=4, utterances=1)
    seen = {
        int(diag.draw_partners(spk, vid, seed=s)["same_speaker_other_video"][0])
        for s in range(60)
    }
    assert seen == {1, 2, 3}


def test_kl_is_small_only_where_the_student_predicts_the_partner():
    # Teacher targets follow the speaker; the student predicts its own
    # speaker's target: other-video partners cost as little as the same
    # utterance, other speakers a lot.
    spk, vid = labels(speakers=4, videos=2, utterances=2)
    speaker = torch.tensor([int(s[1:]) for s in spk])
    protos = 8.0 * torch.eye(4)
    teacher = protos[speaker]
    student = protos[speaker]
    partners = diag.draw_partners(spk, vid)
    stats = diag.target_stats(
        student, teacher, torch.zeros(1, 4), 1.0, 1.0, partners
    )
    pairs = stats["partners"]
    for kind in pairs:
        s = pairs[kind]
        assert s["kl"] == pytest.approx(
            s["cross_entropy"] - s["teacher_entropy"], abs=1e-5
        )
    assert pairs["same_speaker_other_video"]["kl"] == pytest.approx(
        pairs["same_utterance"]["kl"], abs=1e-6
    )
    assert pairs["other_speaker"]["kl"] > 5.0
    assert pairs["other_speaker"]["top1_agreement"] == 0.0
    assert stats["prototypes_used"] == pytest.approx(4.0, rel=0.05)


def test_a_centre_and_temperature_change_the_targets():
    spk, vid = labels(speakers=2, videos=2, utterances=1)
    student = torch.randn(4, 6, generator=torch.Generator().manual_seed(0))
    teacher = torch.randn(4, 6, generator=torch.Generator().manual_seed(1))
    partners = diag.draw_partners(spk, vid)
    plain = diag.target_stats(
        student, teacher, torch.zeros(1, 6), 0.1, 0.04, partners
    )
    hot = diag.target_stats(
        student, teacher, torch.zeros(1, 6), 0.1, 1.0, partners
    )
    shift = torch.zeros(1, 6)
    shift[0, int(teacher[0].argmax())] = 100.0
    centred = diag.target_stats(student, teacher, shift, 0.1, 0.04, partners)
    same = "same_utterance"
    assert (
        hot["partners"][same]["teacher_entropy"]
        > plain["partners"][same]["teacher_entropy"]
    )
    assert (
        centred["partners"][same]["cross_entropy"]
        != plain["partners"][same]["cross_entropy"]
    )


def test_a_run_without_dino_modules_is_refused(tmp_path):
    with pytest.raises(ValueError, match="hyperparams.yaml"):
        diag.load_run(str(tmp_path), str(tmp_path))
    save = tmp_path / "save"
    save.mkdir()
    with pytest.raises(ValueError, match="no checkpoint of epoch 3"):
        diag.find_checkpoint(str(save), 3)


def test_end_to_end_on_a_one_epoch_dino_run(tmp_path):
    from speechbrain_ssps.minivox import generate_corpus

    data = tmp_path / "corpus"
    generate_corpus(
        data,
        num_speakers=3,
        num_videos=2,
        num_utterances=2,
        num_test_speakers=2,
        seed=0,
        min_duration=0.8,
        max_duration=1.2,
        workers=1,
    )
    run = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    subprocess.run(
        [
            sys.executable,
            "train.py",
            "hparams/minivox_dino.yaml",
            f"--data_folder={data}",
            f"--output_folder={run}",
            "--number_of_epochs=1",
            "--schedule_epochs=1",
            "--batch_size=4",
            "--channels=[16,16,16,16,48]",
            "--emb_dim=32",
            "--global_crop_seconds=0.5",
            "--local_crop_seconds=0.3",
            "--dino_out_dim=64",
            "--dino_hidden_dim=32",
            "--dino_bottleneck_dim=16",
            "--valid_every=0",
            "--write_curves=False",
            "--noprogressbar",
        ],
        cwd=RECIPE,
        env=env,
        check=True,
        capture_output=True,
    )
    out = tmp_path / "targets.json"
    diag.main(["--run", str(run), "--epoch", "1", "--out", str(out)])
    with open(out) as f:
        result = json.load(f)
    assert result["epoch"] == 1 and result["utterances"] == 12
    assert result["crop_seconds"] == 0.5
    pairs = result["stats"]["partners"]
    assert pairs["same_utterance"]["pairs"] == 12
    assert pairs["other_speaker"]["pairs"] == 12
    assert pairs["same_speaker_other_video"]["pairs"] == 12
    for kind in diag.PARTNERS:
        s = pairs[kind]
        assert s["kl"] >= -1e-4
        assert 0.0 <= s["teacher_entropy"] <= math.log(64.0) + 1e-6
    assert 1.0 <= result["stats"]["prototypes_used"] <= 64.0
