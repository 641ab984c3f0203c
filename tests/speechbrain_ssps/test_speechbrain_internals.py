"""The copies of SpeechBrain's private code still match SpeechBrain.

These tests fail when the installed SpeechBrain leaves the range that
``setup.py`` supports, or when its ``optimizers_step`` / ``Checkpointer``
change what :mod:`speechbrain_ssps.speechbrain_internals` assumes.
"""

import inspect
import os
import re

import speechbrain as sb
import torch
from packaging.specifiers import SpecifierSet
from packaging.version import Version
from speechbrain.utils.checkpoints import Checkpointer

from speechbrain_ssps.speechbrain_internals import (
    SUPPORTED,
    RedirectableCheckpointer,
    step_optimizers,
)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


def test_installed_speechbrain_is_in_the_supported_range():
    assert Version(sb.__version__) in SpecifierSet(SUPPORTED)


def test_supported_range_is_the_one_setup_py_declares():
    with open(os.path.join(REPO, "setup.py"), encoding="utf-8") as f:
        declared = re.search(r'"speechbrain([<>=!~][^"]*)"', f.read())
    assert SpecifierSet(declared.group(1)) == SpecifierSet(SUPPORTED)


def test_the_private_methods_relied_on_exist():
    for name in (
        "_new_checkpoint_dirpath",
        "_custom_checkpoint_dirpath",
        "_construct_checkpoint_objects",
    ):
        assert callable(getattr(Checkpointer, name)), name
    for name in ("freeze_optimizers", "check_gradients", "optimizers_step"):
        assert callable(getattr(sb.Brain, name)), name


def test_optimizers_step_has_the_sequence_step_optimizers_copies():
    source = inspect.getsource(sb.Brain.optimizers_step)
    calls = [
        "self.freeze_optimizers(",
        "self.scaler.unscale_(",
        "clip_grad_norm_(",
        "self.check_gradients()",
        "self.scaler.step(",
        "self.scaler.update()",
        "zero_grad(set_to_none=True)",
        "self.optimizer_step += 1",
    ]
    positions = [source.index(call) for call in calls]
    assert positions == sorted(positions)


class _Regression(sb.Brain):
    def compute_forward(self, batch, stage):
        return self.modules.lin(batch[0])

    def compute_objectives(self, predictions, batch, stage):
        return ((predictions - batch[1]) ** 2).mean()


class _CopiedStep(_Regression):
    def optimizers_step(self):
        step_optimizers(
            self,
            lambda params: torch.nn.utils.clip_grad_norm_(
                params, self.max_grad_norm
            ),
        )


def _brain(cls, tmp_path):
    torch.manual_seed(0)
    return cls(
        modules={"lin": torch.nn.Linear(3, 2)},
        opt_class=lambda params: torch.optim.SGD(params, lr=0.5),
        run_opts={"device": "cpu", "max_grad_norm": 0.1},
        checkpointer=None,
    )


def test_step_optimizers_matches_speechbrain_on_one_parameter_group(
    tmp_path,
):
    gen = torch.Generator().manual_seed(1)
    batches = [
        (torch.randn(5, 3, generator=gen), 10 * torch.randn(5, 2, generator=gen))
        for _ in range(3)
    ]
    theirs, ours = _brain(_Regression, tmp_path), _brain(_CopiedStep, tmp_path)
    for brain in (theirs, ours):
        brain.on_fit_start()
        for batch in batches:
            brain.fit_batch(batch)
    for a, b in zip(theirs.modules.parameters(), ours.modules.parameters()):
        assert torch.equal(a, b)
    assert theirs.optimizer_step == ours.optimizer_step == 3
    # The clipping really acted (large targets, max_grad_norm 0.1).
    torch.manual_seed(0)
    assert not torch.allclose(
        torch.nn.Linear(3, 2).weight, ours.modules.lin.weight, atol=1e-3
    )


def test_redirect_unset_saves_where_speechbrain_would(tmp_path):
    ckpt = RedirectableCheckpointer(tmp_path, {"a": torch.nn.Linear(2, 2)})
    assert ckpt.redirect is None
    saved = ckpt.save_checkpoint(meta={"epoch": 3}, name="mine")
    assert saved.path == ckpt.default_checkpoint_dir("mine")
    assert saved.path.parent == tmp_path
    assert ckpt.list_checkpoints()[0].meta["epoch"] == 3
