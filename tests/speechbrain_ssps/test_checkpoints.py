"""Tests of SafeCheckpointer (atomic saves, latest-only files, plain meta)
and of reading a run back (epoch discovery, averaging, state dict checks)."""

import numpy as np
import pytest
import torch
from speechbrain.utils.checkpoints import (
    mark_as_loader,
    mark_as_saver,
    register_checkpoint_hooks,
)

from speechbrain_ssps.checkpoints import (
    SafeCheckpointer,
    average_encoder,
    check_state_dict,
    find_epoch_checkpoints,
    plain_meta,
)


@register_checkpoint_hooks
class Flaky:
    """A recoverable whose saver can be made to crash half-way."""

    def __init__(self):
        self.value = 0
        self.crash = False

    @mark_as_saver
    def save(self, path):
        if self.crash:
            raise KeyboardInterrupt("killed while saving")
        torch.save({"value": self.value}, path)

    @mark_as_loader
    def load(self, path, end_of_epoch):
        self.value = torch.load(path, weights_only=True)["value"]


def test_crash_while_saving_keeps_last_good_checkpoint(tmp_path):
    model, flaky = torch.nn.Linear(2, 2), Flaky()
    ckpt = SafeCheckpointer(tmp_path, {"model": model, "flaky": flaky})
    flaky.value = 1
    ckpt.save_and_keep_only(meta={"epoch": 1})
    flaky.value, flaky.crash = 2, True
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_and_keep_only(meta={"epoch": 2})
    # The half-written checkpoint is invisible; the good one recovers.
    assert [c.meta["epoch"] for c in ckpt.list_checkpoints()] == [1]
    flaky.value = 99
    fresh = SafeCheckpointer(tmp_path, {"model": model, "flaky": flaky})
    assert fresh.recover_if_possible().meta["epoch"] == 1
    assert flaky.value == 1
    # The next save clears the stale staging folder.
    flaky.crash = False
    fresh.save_and_keep_only(meta={"epoch": 2})
    assert sorted(p.name.startswith("CKPT") for p in tmp_path.iterdir()) == [
        True
    ]


def test_latest_only_recoverables(tmp_path):
    small, big = torch.nn.Linear(2, 2), torch.nn.Linear(50, 50)
    ckpt = SafeCheckpointer(
        tmp_path, {"small": small, "big": big}, latest_only=["big"]
    )
    for epoch in (1, 2, 3):
        ckpt.save_and_keep_only(meta={"epoch": epoch}, num_to_keep=3)
    files = {
        c.meta["epoch"]: sorted(p.name for p in c.path.iterdir())
        for c in ckpt.list_checkpoints()
    }
    assert "big.ckpt" in files[3]
    assert "big.ckpt" not in files[1] and "big.ckpt" not in files[2]
    assert "small.ckpt" in files[1]


def test_custom_name_is_replaced_atomically(tmp_path):
    model = torch.nn.Linear(2, 2)
    ckpt = SafeCheckpointer(tmp_path, {"model": model})
    ckpt.save_checkpoint(meta={"v": 1}, name="latest")
    ckpt.save_checkpoint(meta={"v": 2}, name="latest")
    found = ckpt.list_checkpoints()
    assert [c.meta["v"] for c in found] == [2]


def test_meta_must_be_plain():
    assert plain_meta({"a": np.float64(1.5), "b": torch.tensor(3)}) == {
        "a": 1.5,
        "b": 3,
    }
    with pytest.raises(TypeError, match="'bad'"):
        plain_meta({"bad": [1, 2]})


def test_epochs_of_a_resumed_run_and_their_average(tmp_path):
    layer = torch.nn.Linear(1, 1, bias=False)
    ckpt = SafeCheckpointer(tmp_path, {"embedding_model": layer})
    for epoch, weight in ((1, 1.0), (2, 5.0), (2, 2.0), (3, 4.0)):
        layer.weight.data.fill_(weight)  # epoch 2 saved again on resume
        ckpt.save_checkpoint(meta={"epoch": epoch}, end_of_epoch=True)
    ckpt.save_checkpoint(meta={"epoch": 4}, end_of_epoch=False)
    found = find_epoch_checkpoints(str(tmp_path))
    assert [c.meta["epoch"] for c in found] == [1, 2, 3]
    averaged = average_encoder(found[-2:])  # default: embedding_model
    assert float(averaged["weight"]) == pytest.approx(3.0)


def test_reading_a_run_back_says_what_is_missing(tmp_path):
    with pytest.raises(ValueError, match="Checkpoint folder not found"):
        find_epoch_checkpoints(str(tmp_path / "nowhere"))
    ckpt = SafeCheckpointer(tmp_path, {"model": torch.nn.Linear(1, 1)})
    ckpt.save_checkpoint(meta={"epoch": 1})
    with pytest.raises(ValueError, match="has no teacher_model.ckpt"):
        average_encoder(ckpt.list_checkpoints(), "teacher_model")
    state = torch.nn.Linear(2, 1).state_dict()
    with pytest.raises(ValueError, match=r"x.ckpt .*weight: \(1, 2\) vs"):
        check_state_dict(torch.nn.Linear(3, 1), state, "x.ckpt")
