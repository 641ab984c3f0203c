"""The framework objects: what each positive is, and how yamls name them."""

from types import SimpleNamespace

import pytest
import torch
from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN

from speechbrain_ssps.frameworks import (
    DINO,
    FRAMEWORKS,
    Framework,
    SimCLR,
    resolve_framework,
)
from speechbrain_ssps.heads import DINOHead, SimCLRProjector


def test_short_names_build_from_the_run_hyperparameters():
    hparams = SimpleNamespace(dino_queue="logits", freeze_last_layer=2)
    dino = resolve_framework("dino", hparams)
    assert isinstance(dino, DINO)
    assert (dino.queue, dino.freeze_last_layer) == ("logits", 2)
    assert dino.stores_logits
    plain = resolve_framework("dino", SimpleNamespace())
    assert (plain.queue, plain.freeze_last_layer) == ("bottleneck", 0)
    assert isinstance(resolve_framework("simclr", None), SimCLR)
    assert set(FRAMEWORKS) == {"dino", "simclr"}


def test_an_object_is_used_as_given():
    framework = SimCLR(embedding_dim=7)
    assert resolve_framework(framework, None) is framework


@pytest.mark.parametrize("spec", ["moco", 3, None])
def test_unknown_frameworks_are_refused_by_name(spec):
    with pytest.raises(ValueError, match="framework must be"):
        resolve_framework(spec, None)


def test_bad_dino_queue_names_the_option():
    with pytest.raises(ValueError, match="dino_queue"):
        DINO(queue="prototypes")


def test_dino_positives_follow_the_queue_content():
    head = DINOHead(in_dim=8, out_dim=40, hidden_dim=16, bottleneck_dim=6)
    modules = {"teacher_head": head}
    assert DINO(queue="bottleneck").positive_dim(modules) == 6
    assert DINO(queue="logits").positive_dim(modules) == 40


def test_simclr_positives_are_the_projection_or_the_embedding():
    encoder = ECAPA_TDNN(
        input_size=20, channels=[8, 8, 8, 8, 24], lin_neurons=12
    )
    assert SimCLR().positive_dim({"embedding_model": encoder}) == 12
    projector = SimCLRProjector(in_dim=12, hidden_dim=16, out_dim=5)
    modules = {"embedding_model": encoder, "projector": projector}
    assert SimCLR().positive_dim(modules) == 5
    assert SimCLR().trained_modules(modules) == [
        "embedding_model",
        "projector",
    ]
    with pytest.raises(ValueError, match="embedding_dim"):
        SimCLR().positive_dim({"embedding_model": torch.nn.Linear(2, 3)})
    assert SimCLR(embedding_dim=3).positive_dim(
        {"embedding_model": torch.nn.Linear(2, 3)}
    ) == 3


def test_dino_trains_the_student_only():
    modules = {"embedding_model": None, "head": None, "teacher_model": None}
    assert DINO().trained_modules(modules) == ["embedding_model", "head"]
    assert DINO.reference_model == "teacher_model"
    assert SimCLR.reference_model == "embedding_model"
    assert issubclass(DINO, Framework) and issubclass(SimCLR, Framework)
