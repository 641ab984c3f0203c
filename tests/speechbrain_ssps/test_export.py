"""Tests for speechbrain_ssps.export (offline SpeakerRecognition export)."""

import importlib.resources
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F
from hyperpyyaml import load_hyperpyyaml
from speechbrain.inference.speaker import SpeakerRecognition
from speechbrain.lobes.features import Fbank
from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN
from speechbrain.processing.features import InputNormalization
from speechbrain.utils.checkpoints import Checkpointer
from speechbrain.utils.fetching import FetchConfig

from speechbrain_ssps.checkpoints import find_epoch_checkpoints
from speechbrain_ssps.embeddings import embed_utterances
from speechbrain_ssps.export import (
    build_export_yaml,
    export_encoder,
    read_training_hparams,
)
from speechbrain_ssps.inference import load_exported

RECIPE_DIR = Path(__file__).resolve().parents[2] / "recipes/VoxCeleb/SSPS"
N_MELS, CHANNELS, EMB_DIM = 24, [8, 8, 8, 8, 24], 16

# A training-style yaml: references, tags, a placeholder and objects that
# must not be built (a class that does not exist).
TRAIN_YAML = f"""
seed: 3
__set_seed: !apply:speechbrain.utils.seed_everything [!ref <seed>]
data_folder: !PLACEHOLDER
output_folder: results/x
sample_rate: 16000
n_mels: {N_MELS}
channels: {CHANNELS}
half_emb: {EMB_DIM // 2}
emb_dim: !ref <half_emb> * 2
compute_features: !new:speechbrain.lobes.features.Fbank
    n_mels: !ref <n_mels>
mean_var_norm: !new:speechbrain.processing.features.InputNormalization
    norm_type: sentence
    std_norm: False
embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN
    input_size: !ref <n_mels>
    channels: !ref <channels>
    lin_neurons: !ref <emb_dim>
head: !new:speechbrain_ssps.does_not_exist.Head
    out_dim: 65536
modules:
    embedding_model: !ref <embedding_model>
    head: !ref <head>
opt_class: !name:torch.optim.SGD
    lr: 0.1
"""


def tiny_ecapa():
    return ECAPA_TDNN(N_MELS, channels=CHANNELS, lin_neurons=EMB_DIM)


@pytest.fixture
def run(tmp_path):
    """A fake training output folder: yaml and 3 epochs of checkpoints.

    Returns the folder and the encoder state dict saved at each epoch.
    """
    out = tmp_path / "out"
    out.mkdir()
    (out / "hyperparams.yaml").write_text(TRAIN_YAML)
    torch.manual_seed(0)
    model, teacher = tiny_ecapa(), tiny_ecapa()
    checkpointer = Checkpointer(
        str(out / "save"), {"embedding_model": model, "teacher_model": teacher}
    )
    states = []
    for epoch in (1, 2, 3):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.1 * torch.randn_like(p))
            for name, b in model.named_buffers():
                if "running" in name:
                    b.add_(torch.rand_like(b))
                else:
                    b.fill_(10 * epoch + 1)  # num_batches_tracked
            teacher.load_state_dict(model.state_dict())
            for p in teacher.parameters():
                p.mul_(2.0)  # the teacher is twice the student
        checkpointer.save_checkpoint(meta={"epoch": epoch}, end_of_epoch=True)
        states.append({k: v.clone() for k, v in model.state_dict().items()})
    # Intra-epoch checkpoints are not epochs: never exported.
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(123.0)
    checkpointer.save_checkpoint(meta={"epoch": 4}, end_of_epoch=False)
    return out, states


@pytest.fixture
def two_wavs(tmp_path):
    rng = np.random.default_rng(1)
    paths = []
    for i, n in enumerate((8000, 12000)):
        path = tmp_path / f"w{i}.wav"
        sf.write(
            str(path), (0.3 * rng.standard_normal(n)).astype("float32"), 16000
        )
        paths.append(str(path))
    return paths


def load_offline(folder, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return SpeakerRecognition.from_hparams(
        source=folder,
        savedir=None,
        fetch_config=FetchConfig(allow_network=False),
        run_opts={"device": "cpu"},
    )


def reference_embedding(state, wav):
    """Fbank -> sentence mean norm -> ECAPA (eval), built here."""
    model = tiny_ecapa()
    model.load_state_dict(state)
    model.eval()
    with torch.no_grad():
        feats = Fbank(n_mels=N_MELS)(wav)
        feats = InputNormalization(norm_type="sentence", std_norm=False)(
            feats, torch.ones(len(wav))
        )
        return model(feats)


def test_training_yaml_is_read_not_built(run):
    out, _ = run
    tree = read_training_hparams(str(out / "hyperparams.yaml"))
    assert tree["emb_dim"] == EMB_DIM
    assert tree["head"].tag.value.endswith("does_not_exist.Head")


def test_round_trip_offline(run, two_wavs, monkeypatch):
    out, states = run
    folder = export_encoder(str(out))
    assert folder == str(out / "export")
    assert sorted(os.listdir(folder)) == [
        "embedding_model.ckpt",
        "hyperparams.yaml",
        "selection.json",
    ]
    recognizer = load_offline(folder, monkeypatch)
    wav = torch.from_numpy(sf.read(two_wavs[0], dtype="float32")[0])[None]
    got = recognizer.encode_batch(wav)
    expected = reference_embedding(states[-1], wav)
    assert got.shape == (1, 1, EMB_DIM)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)

    score, decision = recognizer.verify_files(*two_wavs)
    wav2 = torch.from_numpy(sf.read(two_wavs[1], dtype="float32")[0])[None]
    cos = F.cosine_similarity(
        expected.flatten(), reference_embedding(states[-1], wav2).flatten(), 0
    )
    assert float(score) == pytest.approx(float(cos), abs=1e-4)
    assert bool(decision) == (float(score) > 0.25)

    # The library's batched embeddings use the same modules.
    emb = embed_utterances(recognizer, {"a": two_wavs[0]})
    torch.testing.assert_close(emb["a"], expected.flatten())

    # The library's loader (verify.py, benchmarks) gives the same model.
    loaded = load_exported(folder)
    torch.testing.assert_close(loaded.encode_batch(wav), expected)


def test_exported_yaml_is_the_filled_template(run):
    out, _ = run
    template = importlib.resources.files("speechbrain_ssps") / "templates"
    assert (template / "inference.yaml").is_file()  # ships with the package
    folder = export_encoder(str(out))
    text = (Path(folder) / "hyperparams.yaml").read_text()
    assert "$" not in text.replace("$placeholders", "")
    assert "# encoder: embedding_model, epochs [3] averaged" in text
    hparams = load_hyperpyyaml(text)
    assert hparams["sample_rate"] == 16000
    assert hparams["n_mels"] == N_MELS
    assert hparams["channels"] == CHANNELS
    assert hparams["emb_dim"] == EMB_DIM
    assert hparams["compute_features"].compute_fbanks.n_mels == N_MELS
    norm = hparams["mean_var_norm"]
    assert (norm.norm_type, norm.std_norm) == ("sentence", False)
    encoder = hparams["embedding_model"]
    assert encoder.blocks[0].conv.conv.in_channels == N_MELS
    assert encoder.blocks[0].conv.conv.out_channels == CHANNELS[0]
    assert encoder.mfa.conv.conv.out_channels == CHANNELS[-1]
    assert encoder.fc.conv.out_channels == EMB_DIM  # lin_neurons
    assert hparams["audio_normalizer"].sample_rate == 16000
    assert sorted(hparams["modules"]) == [
        "compute_features",
        "embedding_model",
        "mean_var_norm",
    ]
    assert list(hparams["pretrainer"].loadables) == ["embedding_model"]
    assert dict(hparams["pretrainer"].paths) == {}


def test_training_arguments_and_overrides_are_carried(tmp_path):
    path = tmp_path / "h.yaml"
    path.write_text(
        TRAIN_YAML.replace(
            "    n_mels: !ref <n_mels>\n",
            "    n_mels: !ref <n_mels>\n    f_max: 7600\n",
        ).replace(
            "    lin_neurons: !ref <emb_dim>\n",
            "    lin_neurons: !ref <emb_dim>\n    attention_channels: 16\n"
            "    groups: [1, 1, 1, 1, 1]\n",
        )
    )
    tree = read_training_hparams(str(path))
    text, stateful = build_export_yaml(tree, emb_dim=12, sample_rate=8000)
    hparams = load_hyperpyyaml(text)
    assert not stateful
    assert (hparams["emb_dim"], hparams["sample_rate"]) == (12, 8000)
    assert hparams["compute_features"].compute_fbanks.f_max == 7600
    encoder = hparams["embedding_model"]
    assert encoder.fc.conv.out_channels == 12
    assert encoder.asp.tdnn.conv.conv.out_channels == 16  # attention
    # Values absent from the training yaml: the constructor defaults.
    text, _ = build_export_yaml({"n_mels": N_MELS})
    assert load_hyperpyyaml(text)["channels"] == [512, 512, 512, 512, 1536]


def test_unknown_values_and_bad_entries_say_so(tmp_path):
    def tree(text):
        (tmp_path / "h.yaml").write_text(text)
        return read_training_hparams(str(tmp_path / "h.yaml"))

    identity = "!new:torch.nn.Identity {}\n"
    with pytest.raises(
        ValueError,
        match="n_mels is not in the training yaml"
        " and torch.nn.Identity has no default n_mels; pass "
        "n_mels= explicitly",
    ):
        build_export_yaml(tree("compute_features: " + identity))
    with pytest.raises(
        ValueError,
        match="mean_var_norm.norm_type is not in"
        ".*Identity has no default norm_type",
    ):
        build_export_yaml(tree("n_mels: 24\nmean_var_norm: " + identity))
    with pytest.raises(ValueError, match="'mean_var_norm' must be '!new"):
        build_export_yaml(tree("n_mels: 24\nmean_var_norm: {}\n"))
    with pytest.raises(ValueError, match="comment lines"):
        build_export_yaml({"n_mels": N_MELS}, header="n_mels: 3")


def test_loading_a_folder_without_export_says_so(tmp_path):
    with pytest.raises(ValueError, match="hyperparams.yaml.*export.py"):
        load_exported(str(tmp_path))


def test_average_of_two_epochs(run, tmp_path):
    out, states = run
    folder = export_encoder(str(out), str(tmp_path / "avg"), average_last=2)
    exported = torch.load(os.path.join(folder, "embedding_model.ckpt"))
    assert set(exported) == set(states[-1])
    for key, value in exported.items():
        a, b = states[-2][key], states[-1][key]
        assert value.dtype == b.dtype
        if b.is_floating_point():
            torch.testing.assert_close(value, (a + b) / 2)
        else:  # num_batches_tracked: 21 and 31
            assert int(value) == 26
    assert "epochs [2, 3]" in (Path(folder) / "hyperparams.yaml").read_text()


def test_teacher_and_cli(run, tmp_path):
    out, states = run
    sys.path.insert(0, str(RECIPE_DIR))
    try:
        import export as cli  # noqa: E402
    finally:
        sys.path.remove(str(RECIPE_DIR))
    folder = cli.main(
        [
            str(out),
            "--average",
            "3",
            "--export_folder",
            str(tmp_path / "cli"),
            "--encoder",
            "teacher_model",
        ]
    )
    exported = torch.load(os.path.join(folder, "embedding_model.ckpt"))
    key = "blocks.0.conv.conv.weight"
    mean = sum(s[key] for s in states) / 3
    torch.testing.assert_close(exported[key], 2 * mean)


def test_key_and_shape_mismatch(run, tmp_path):
    out, _ = run
    with pytest.raises(ValueError, match="shape mismatches.*fc"):
        export_encoder(str(out), str(tmp_path / "x"), emb_dim=EMB_DIM + 1)
    # A checkpoint of another architecture (a linear layer).
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "hyperparams.yaml").write_text(TRAIN_YAML)
    Checkpointer(
        str(bad / "save"), {"embedding_model": torch.nn.Linear(2, 2)}
    ).save_checkpoint(meta={"epoch": 1}, end_of_epoch=True)
    with pytest.raises(ValueError, match="missing keys.*unexpected keys"):
        export_encoder(str(bad))
    assert not (bad / "export").exists()


def test_bad_requests(run, tmp_path):
    out, _ = run
    with pytest.raises(ValueError, match="average_last=4 but .* holds 3"):
        export_encoder(str(out), average_last=4)
    with pytest.raises(ValueError, match="average_last must be >= 1"):
        export_encoder(str(out), average_last=0)
    with pytest.raises(ValueError, match="hyperparameters not found"):
        export_encoder(str(tmp_path / "nowhere"))
    epochs = [c.meta["epoch"] for c in find_epoch_checkpoints(out / "save")]
    assert epochs == [1, 2, 3]


def test_global_normalizer_is_exported(tmp_path, two_wavs, monkeypatch):
    out = tmp_path / "global"
    out.mkdir()
    (out / "hyperparams.yaml").write_text(
        TRAIN_YAML.replace("norm_type: sentence", "norm_type: global")
    )
    torch.manual_seed(0)
    model = tiny_ecapa().eval()
    norm = InputNormalization(norm_type="global", std_norm=False)
    fbank = Fbank(n_mels=N_MELS)
    for _ in range(3):  # accumulate global statistics
        norm(fbank(torch.randn(2, 8000) + 3.0), torch.ones(2), epoch=0)
    Checkpointer(
        str(out / "save"), {"embedding_model": model, "normalizer": norm}
    ).save_checkpoint(meta={"epoch": 1}, end_of_epoch=True)
    folder = export_encoder(str(out))
    assert "normalizer.ckpt" in os.listdir(folder)
    recognizer = load_offline(folder, monkeypatch)
    wav = torch.from_numpy(sf.read(two_wavs[0], dtype="float32")[0])[None]
    norm.eval()
    with torch.no_grad():
        expected = model(norm(fbank(wav), torch.ones(1)))
    torch.testing.assert_close(recognizer.encode_batch(wav), expected)
