"""SpeechBrain's ``--debug`` in an SSL run: what is adapted, and the Brain."""

import os

import pytest
import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml
from test_brain import N_UTT, make_batch, make_brain

from speechbrain_ssps import debug_run

HPARAMS = os.path.join(
    os.path.dirname(__file__), "..", "..", "recipes", "VoxCeleb", "SSPS",
    "hparams",
)  # fmt: skip


def test_epoch_changes_reach_the_last_debug_epoch():
    values = {
        "ssps_start_epoch": 81,
        "swav_queue_start_epoch": 16,
        "valid_every": 5,
    }
    assert debug_run.debug_epoch_changes(values, 2, ssps=True) == {
        "ssps_start_epoch": (81, 2),
        "swav_queue_start_epoch": (16, 2),
        "valid_every": (5, 2),
    }
    assert debug_run.debug_epoch_changes(values, 3, ssps=False) == {
        "swav_queue_start_epoch": (16, 3),
        "valid_every": (5, 3),
    }
    # Already reached, validation off, every epoch run (debug_epochs <= 0).
    kept = {"ssps_start_epoch": 2, "valid_every": 0}
    assert debug_run.debug_epoch_changes(kept, 2, ssps=True) == {}
    assert debug_run.debug_epoch_changes(values, 0, ssps=True) == {}
    # One debug epoch: SSPS cannot run, and the line says so.
    assert "ssps_start_epoch" not in debug_run.debug_epoch_changes(
        values, 1, ssps=True
    )
    note = debug_run.ssps_skipped_note({"ssps": True, **values}, 1)
    assert "SSPS not run" in note
    assert debug_run.ssps_skipped_note({"ssps": True, **values}, 2) is None


@pytest.mark.parametrize(
    "k, m, sampling, filled, expected",
    [
        (25000, 1, "ncs", 8, {"num_clusters": (25000, 4)}),
        (4, 1, "ncs", 8, {}),  # k-means can run as it is
        (25000, 1, "scs", 2, {"num_clusters": (25000, 2)}),
        (25000, 1, "scs", 1, {"num_clusters": (25000, 1)}),
        (100, 5, "centroid", 6, {"num_clusters": (100, 3),
                                 "num_neighbors": (5, 2)}),
        (25000, 50, "knn", 8, {}),  # no k-means
    ],
)  # fmt: skip
def test_ssps_sizes_fit_the_filled_rows(k, m, sampling, filled, expected):
    assert debug_run.debug_ssps_changes(k, m, sampling, filled) == expected


def test_filled_rows_count_whole_global_batches():
    assert debug_run.debug_filled_rows(1000, 32, 4, 2) == 256
    assert debug_run.debug_filled_rows(24, 4, 1, 2) == 8
    assert debug_run.debug_filled_rows(10, 4, 2, 2) == 8  # one global batch


def test_read_and_override_a_recipe_yaml():
    path = os.path.join(HPARAMS, "minivox_dino_ssps.yaml")
    user = "data_folder: /x\nchannels: [16, 16, 16, 16, 48]\nemb_dim: 32"
    values = debug_run.read_top_level(path, user, debug_run.EPOCH_OPTIONS)
    assert values == {"ssps_start_epoch": 7, "valid_every": 1, "ssps": True}
    changes = debug_run.debug_epoch_changes(values, 2, values["ssps"])
    merged = debug_run.merge_overrides(
        user, {k: new for k, (_, new) in changes.items()}
    )
    with open(path, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, merged)
    assert hparams["ssps_start_epoch"] == 2
    assert hparams["ssps"].keywords["start_epoch"] == 2  # the !ref follows
    assert hparams["channels"] == [16, 16, 16, 16, 48]
    plain = os.path.join(HPARAMS, "minivox_dino.yaml")
    assert not debug_run.read_top_level(plain, "data_folder: /x", [])["ssps"]


def test_merge_keeps_tags_and_dict_overrides():
    merged = debug_run.merge_overrides("a: !ref <b>\nc: [1, 2]", {"d": 3})
    assert "!ref <b>" in merged and "d: 3" in merged
    assert "c: [1, 2]" in merged
    assert debug_run.merge_overrides({"a": 1}, {"a": 2}).strip() == "a: 2"
    assert debug_run.merge_overrides("", {"a": 2}).strip() == "a: 2"


def test_describe_names_every_change_and_note():
    line = debug_run.describe_debug(
        2, 2, {"ssps_start_epoch": (81, 2)}, ["x skipped"]
    )
    assert line.startswith("--debug (2 epochs x 2 batches): ")
    assert "ssps_start_epoch 81 -> 2; x skipped; schedules sized" in line
    assert "no option changed" in debug_run.describe_debug(1, 2, {})
    assert debug_run.describe_debug(0, 2, {}).startswith("--debug (all")


def test_debug_brain_sizes_schedules_and_fill_pass_to_debug_batches():
    brain = make_brain("simclr", with_ssps=True, ssps_fill="pass")
    brain.debug, brain.debug_batches = True, 1
    data = [torch.zeros(1)] * N_UTT
    brain.make_dataloader(data, sb.Stage.TRAIN, batch_size=2)
    assert brain.steps_per_epoch == 1  # not N_UTT // 2
    half = N_UTT // 2
    brain._train_loader = [
        make_batch(range(half)),
        make_batch(range(half, N_UTT)),
    ]
    brain.on_stage_start(sb.Stage.TRAIN, 2)  # the fill pass, then k-means
    ssps = brain.modules["ssps"]
    assert ssps.ref_filled[:half].all() and not ssps.ref_filled[half:].any()
    assert ssps.active
