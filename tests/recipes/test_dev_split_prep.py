"""``voxceleb_prepare.py --dev_speakers`` and ``--valid_trials=dev``.

On the tiny MiniVox corpus of ``conftest.py`` (4 training speakers x 2
videos x 3 utterances, 2 test speakers with the O list).
"""

import csv
import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from speechbrain_ssps.epoch_validation import EpochValidator
from speechbrain_ssps.trials import read_trials

RECIPE_DIR = Path(__file__).resolve().parents[2] / "recipes/VoxCeleb/SSPS"
sys.path.insert(0, str(RECIPE_DIR))

import voxceleb_prepare as vp  # noqa: E402


def load_train_script():
    """recipes/VoxCeleb/SSPS/train.py as a module (its main not run)."""
    spec = importlib.util.spec_from_file_location(
        "ssps_train_script", RECIPE_DIR / "train.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def speakers(path):
    return {row["spk_id"] for row in rows(path)}


def test_dev_split_is_held_out_and_balanced(corpus, tmp_path):
    full = vp.prepare_voxceleb(corpus, str(tmp_path / "full"))
    out = vp.prepare_voxceleb(corpus, str(tmp_path / "p"), dev_speakers=2)
    assert set(out) == {"train", "test", "trials_O", "dev", "dev_trials"}
    train, dev = speakers(out["train"]), speakers(out["dev"])
    test = speakers(out["test"])
    assert len(dev) == 2 and len(train) == 2
    assert not dev & train and not dev & test and not train & test
    assert train | dev == speakers(full["train"])  # all of them, moved
    assert rows(out["dev"])[0].keys() == rows(out["train"])[0].keys()
    dev_ids = {row["ID"] for row in rows(out["dev"])}
    assert len(dev_ids) == 2 * 2 * 3  # every utterance of each
    trials = read_trials(out["dev_trials"])
    labels = [label for label, _, _ in trials]
    assert labels.count(1) == labels.count(0) > 0
    for label, enrol, test_id in trials:
        assert {enrol, test_id} <= dev_ids
        assert (enrol.split("/")[0] == test_id.split("/")[0]) == bool(label)
        if label:  # targets across videos
            assert enrol.split("/")[1] != test_id.split("/")[1]
    # The test lists are untouched by the dev split.
    with open(full["trials_O"]) as a, open(out["trials_O"]) as b:
        assert a.read() == b.read()


def test_dev_split_is_deterministic_and_seeded(corpus, tmp_path):
    a = vp.prepare_voxceleb(corpus, str(tmp_path / "a"), dev_speakers=2)
    b = vp.prepare_voxceleb(corpus, str(tmp_path / "b"), dev_speakers=2)
    for key in ("train", "dev", "dev_trials"):
        assert Path(a[key]).read_text() == Path(b[key]).read_text()
    seeds = {
        frozenset(
            speakers(
                vp.prepare_voxceleb(
                    corpus,
                    str(tmp_path / f"s{seed}"),
                    dev_speakers=2,
                    dev_seed=seed,
                )["dev"]
            )
        )
        for seed in range(6)
    }
    assert len(seeds) > 1  # the seed changes the choice


@pytest.mark.parametrize(
    "num, match",
    [
        (4, "--dev_speakers=4: the training data has only 4 speakers"),
        (9, "--dev_speakers=9"),
        (-1, "--dev_speakers=-1: must be >= 0"),
        (1, "--dev_speakers=1: .*non-target"),
    ],
)
def test_bad_dev_speakers(corpus, tmp_path, num, match):
    with pytest.raises(ValueError, match=match):
        vp.prepare_voxceleb(corpus, str(tmp_path / "p"), dev_speakers=num)
    assert not (tmp_path / "p" / "dev.csv").exists()


def test_changing_the_split_prepares_again(corpus, tmp_path, caplog):
    save = str(tmp_path / "p")
    out = vp.prepare_voxceleb(corpus, save, dev_speakers=2)
    stamp = os.stat(out["dev"]).st_mtime_ns
    assert vp.prepare_voxceleb(corpus, save, dev_speakers=2) == out
    assert os.stat(out["dev"]).st_mtime_ns == stamp  # skipped
    other = vp.prepare_voxceleb(corpus, save, dev_speakers=3)
    assert len(speakers(other["dev"])) == 3
    assert len(speakers(other["train"])) == 1
    fewer = vp.prepare_voxceleb(corpus, save, dev_speakers=2, dev_trials=4)
    assert len(read_trials(fewer["dev_trials"])) == 4
    # No dev split any more: the stale one is removed, all back in training.
    plain = vp.prepare_voxceleb(corpus, save)
    assert not os.path.exists(out["dev"])
    assert not os.path.exists(out["dev_trials"])
    assert len(speakers(plain["train"])) == 4
    assert "dev" not in vp.prepare_voxceleb(corpus, save, skip_prep=True)
    # A dev file appearing next to a plain preparation is not trusted.
    Path(out["dev"]).write_text("stale")
    vp.prepare_voxceleb(corpus, save)
    assert not os.path.exists(out["dev"])


def test_killed_preparation_is_not_taken_for_done(corpus, tmp_path):
    save = str(tmp_path / "p")
    vp.prepare_voxceleb(corpus, save, dev_speakers=2)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    original = vp.dev_split.write_dev_trials
    vp.dev_split.write_dev_trials = crash
    try:
        with pytest.raises(KeyboardInterrupt):
            vp.prepare_voxceleb(corpus, save, dev_speakers=3)
    finally:
        vp.dev_split.write_dev_trials = original
    # train.csv holds the 3-speaker split now; the old options are gone.
    assert not (Path(save) / vp.OPT_FILE).exists()
    out = vp.prepare_voxceleb(corpus, save, dev_speakers=2)
    assert len(speakers(out["train"])) == 2


def test_skip_prep_and_command_line(corpus, tmp_path, capsys):
    save = str(tmp_path / "p")
    out = vp.main(
        ["--data_folder", corpus, "--save_folder", save, "--dev_speakers", "2"]
    )
    assert os.path.isfile(out["dev"]) and os.path.isfile(out["dev_trials"])
    assert vp.prepare_voxceleb(corpus, save, skip_prep=True) == out
    assert '"dev_trials"' in capsys.readouterr().out


def spectrum(wavs):
    """A fixed "encoder": the magnitude spectrum of the first 0.1 s."""
    return torch.fft.rfft(wavs[:, :1600]).abs()[:, :400]


def test_validator_on_dev(corpus, tmp_path):
    save = str(tmp_path / "p")
    vp.prepare_voxceleb(corpus, save, dev_speakers=2)
    train = load_train_script()
    hparams = {
        "save_folder": save,
        "sample_rate": 16000,
        "valid_trials": "dev",
        "valid_segment_seconds": 0.5,
    }
    validator = train.make_validator(hparams)
    assert isinstance(validator, EpochValidator)
    assert validator.trials_name == "dev"
    dev_ids = {row["ID"] for row in rows(os.path.join(save, "dev.csv"))}
    assert set(validator.ids) <= dev_ids
    stats = validator(spectrum)
    assert 0.0 <= stats["valid_eer"] <= 100.0
    assert np.isfinite(stats["valid_mindcf"])
    # The O list validator is named O (monitoring only).
    assert (
        train.make_validator(dict(hparams, valid_trials="O")).trials_name == "O"
    )


def test_valid_trials_dev_without_a_dev_split(corpus, tmp_path):
    save = str(tmp_path / "p")
    vp.prepare_voxceleb(corpus, save)
    train = load_train_script()
    hparams = {"save_folder": save, "sample_rate": 16000}
    with pytest.raises(
        ValueError, match="--valid_trials=dev: no .*dev_speakers"
    ):
        train.make_validator(dict(hparams, valid_trials="dev"))
    with pytest.raises(ValueError, match="--valid_trials=E: no"):
        train.make_validator(dict(hparams, valid_trials="E"))
    assert (
        train.make_validator(dict(hparams, valid_every=0, valid_trials="dev"))
        is None
    )
