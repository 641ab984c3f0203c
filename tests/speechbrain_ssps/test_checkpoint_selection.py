"""``export.py --select best_dev``: choosing epochs by their dev EER.

A hand-made run: a training yaml and one end-of-epoch checkpoint per epoch
whose encoder weights all equal the epoch number, with the validation meta
that ``SSLBrain`` stores (``valid_trials``, ``valid_eer``, ``valid_mindcf``).
"""

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN

from speechbrain_ssps.checkpoint_selection import (
    epoch_meta,
    keep_best_keys,
    save_epoch_checkpoint,
    select_checkpoints,
)
from speechbrain_ssps.checkpoints import (
    SafeCheckpointer,
    find_epoch_checkpoints,
)
from speechbrain_ssps.export import export_encoder

RECIPE_DIR = Path(__file__).resolve().parents[2] / "recipes/VoxCeleb/SSPS"
YAML = "n_mels: 24\nchannels: [8, 8, 8, 8, 24]\nemb_dim: 16\n"
DEV_EER = {1: 20.0, 2: 12.0, 3: 15.0, 4: 18.0}


def make_run(folder, eers=DEV_EER, trials="dev"):
    """Training output folder with one checkpoint per epoch of ``eers``."""
    folder.mkdir()
    (folder / "hyperparams.yaml").write_text(YAML)
    model = ECAPA_TDNN(24, channels=[8, 8, 8, 8, 24], lin_neurons=16)
    ckpt = SafeCheckpointer(str(folder / "save"), {"embedding_model": model})
    validator = SimpleNamespace(trials_name=trials) if trials else None
    for epoch, eer in eers.items():
        with torch.no_grad():
            for tensor in model.state_dict().values():
                if tensor.is_floating_point():
                    tensor.fill_(float(epoch))
        stats = {} if eer is None else {"valid_eer": eer, "valid_mindcf": 0.5}
        meta = epoch_meta(epoch, 1.0, validator, stats)
        ckpt.save_and_keep_only(meta=meta, num_to_keep=len(eers))
    return str(folder)


def exported_weight(folder):
    state = torch.load(Path(folder) / "embedding_model.ckpt")
    return state["blocks.0.conv.conv.weight"].flatten()[0].item()


def test_best_dev_exports_the_lowest_dev_eer(tmp_path):
    run = make_run(tmp_path / "run")
    folder = export_encoder(run, select="best_dev")
    assert exported_weight(folder) == 2.0
    record = json.loads((Path(folder) / "selection.json").read_text())
    assert record["select"] == "best_dev" and record["epochs"] == [2]
    assert record["valid_trials"] == ["dev"]
    assert record["valid_eer"] == [12.0]
    header = (Path(folder) / "hyperparams.yaml").read_text()
    assert "# selection: best_dev, epochs [2], dev EER [12.0] %" in header


def test_best_dev_with_average_averages_the_n_best(tmp_path):
    run = make_run(tmp_path / "run")
    folder = export_encoder(run, average_last=2, select="best_dev")
    assert exported_weight(folder) == pytest.approx(2.5)  # epochs 2 and 3
    record = json.loads((Path(folder) / "selection.json").read_text())
    assert record["epochs"] == [2, 3] and record["valid_eer"] == [12.0, 15.0]


def test_default_stays_the_last_epochs(tmp_path):
    run = make_run(tmp_path / "run")
    assert exported_weight(export_encoder(run)) == 4.0
    folder = export_encoder(run, average_last=2)
    assert exported_weight(folder) == pytest.approx(3.5)
    record = json.loads((Path(folder) / "selection.json").read_text())
    assert record["select"] == "last" and record["epochs"] == [3, 4]


def test_ties_go_to_the_later_epoch_and_unvalidated_epochs_are_skipped(
    tmp_path,
):
    run = make_run(tmp_path / "run", {1: 9.0, 2: None, 3: 9.0, 4: None})
    checkpoints = find_epoch_checkpoints(str(Path(run) / "save"))
    chosen, record = select_checkpoints(checkpoints, "best_dev", 1)
    assert record["epochs"] == [3]
    with pytest.raises(ValueError, match="only 2 checkpoint.*--keep_checkp"):
        select_checkpoints(checkpoints, "best_dev", 3, "save")


def test_refused_when_validation_was_on_a_test_list(tmp_path):
    run = make_run(tmp_path / "run", trials="O")
    with pytest.raises(ValueError) as error:
        export_encoder(run, select="best_dev")
    message = str(error.value)
    assert "--select=best_dev" in message and "CKPT.yaml" in message
    assert "['O']" in message and "--dev_speakers" in message
    assert not (Path(run) / "export").exists()


def test_refused_without_validation(tmp_path):
    run = make_run(tmp_path / "run", {1: None, 2: None}, trials=None)
    with pytest.raises(ValueError, match=r"no end-of-epoch .*\['none'\]"):
        export_encoder(run, select="best_dev")
    with pytest.raises(ValueError, match="--select=best: choose one of"):
        select_checkpoints([], "best", 1)


def test_command_line(tmp_path, capsys):
    sys.path.insert(0, str(RECIPE_DIR))
    import export as export_script

    run = make_run(tmp_path / "run")
    folder = export_script.main([run, "--select", "best_dev"])
    assert exported_weight(folder) == 2.0
    with pytest.raises(SystemExit):
        export_script.main([run, "--select", "best"])
    assert "invalid choice" in capsys.readouterr().err
    test_run = make_run(tmp_path / "o", trials="O")
    with pytest.raises(ValueError, match="--select=best_dev"):
        export_script.main([test_run, "--select", "best_dev"])


def test_checkpointer_keeps_the_best_dev_epochs(tmp_path):
    """What SSLBrain's save does: the recent ones and the best dev ones."""
    model = torch.nn.Linear(1, 1)
    ckpt = SafeCheckpointer(str(tmp_path), {"m": model})
    dev = SimpleNamespace(trials_name="dev")
    brain = SimpleNamespace(checkpointer=ckpt, validator=dev, hparams=None)
    brain.hparams = SimpleNamespace(keep_checkpoints=1)
    for epoch, eer in DEV_EER.items():
        save_epoch_checkpoint(brain, epoch, 1.0, {"valid_eer": eer})
    kept = [c.meta["epoch"] for c in find_epoch_checkpoints(str(tmp_path))]
    assert kept == [2, 4]  # best dev EER, most recent
    assert keep_best_keys(SimpleNamespace(trials_name="O")) == []
