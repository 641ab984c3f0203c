"""Tests for speechbrain_ssps.embeddings (batched utterance embeddings)."""

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F
from speechbrain.lobes.features import Fbank
from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN
from speechbrain.processing.features import InputNormalization

from speechbrain_ssps.embeddings import (
    embed_utterances,
    feature_encoder,
    make_batches,
    plan_pieces,
    reflect_padding,
)

RATE = 16000


@pytest.fixture
def wavs(tmp_path):
    """Mono 16 kHz files of different lengths, with known content."""
    rng = np.random.default_rng(0)
    lengths = [5000, 12000, 7000, 16000, 3000, 9000]
    paths, signals = {}, {}
    for i, n in enumerate(lengths):
        audio = (0.3 * rng.standard_normal(n)).astype("float32")
        path = tmp_path / f"spk{i % 2}" / f"utt{i}.wav"
        path.parent.mkdir(exist_ok=True)
        sf.write(str(path), audio, RATE, subtype="FLOAT")
        paths[f"spk{i % 2}/utt{i}"] = str(path)
        signals[f"spk{i % 2}/utt{i}"] = audio
    return paths, signals


class Recorder:
    """Padding-aware statistics of the valid samples: [mean, sum sq, n].

    Records the shapes it was called with and whether autograd was on.
    """

    def __init__(self):
        self.shapes = []
        self.grad_enabled = []

    def __call__(self, wavs, lens):
        self.shapes.append(tuple(wavs.shape))
        self.grad_enabled.append(torch.is_grad_enabled())
        n = torch.round(lens * wavs.shape[1])
        valid = torch.arange(wavs.shape[1])[None, :] < n[:, None]
        x = wavs.double() * valid
        return torch.stack([x.sum(1) / n, (x**2).sum(1), n], dim=1)[:, None]


def test_embeddings_match_each_file(wavs):
    paths, signals = wavs
    encoder = Recorder()
    out = embed_utterances(encoder, paths, batch_seconds=2.0, num_workers=2)
    assert set(out) == set(paths)
    for uid, audio in signals.items():
        expected = [audio.mean(), (audio.astype(float) ** 2).sum(), len(audio)]
        assert out[uid].shape == (3,)
        np.testing.assert_allclose(
            out[uid].numpy(), expected, rtol=1e-5, atol=1e-6
        )
    # Padded batch size stays within the budget; several files were batched.
    assert all(b * t <= 2.0 * RATE for b, t in encoder.shapes)
    assert max(b for b, _ in encoder.shapes) > 1
    assert not any(encoder.grad_enabled)


def test_long_files_are_chunked_and_averaged(wavs):
    paths, signals = wavs
    encoder = Recorder()
    out = embed_utterances(
        encoder, paths, batch_seconds=1.0, max_chunk_seconds=0.25
    )
    # No chunk longer than 0.25 s reached the encoder.
    assert max(t for _, t in encoder.shapes) <= 0.25 * RATE
    for uid, audio in signals.items():
        # Length-weighted mean of chunk means = mean of the file; the
        # weighted sum-of-squares is sum_c n_c * S_c / n; n_c = n / chunks.
        chunks = int(np.ceil(len(audio) / (0.25 * RATE)))
        np.testing.assert_allclose(out[uid][0], audio.mean(), atol=1e-6)
        np.testing.assert_allclose(
            out[uid][1],
            (audio.astype(float) ** 2).sum() / chunks,
            rtol=1e-3,
        )


def test_resamples_and_downmixes(tmp_path):
    stereo = np.stack([np.full(4000, 0.2), np.full(4000, 0.4)], axis=1)
    path = tmp_path / "stereo8k.wav"
    sf.write(str(path), stereo.astype("float32"), 8000, subtype="FLOAT")
    out = embed_utterances(Recorder(), {"s": str(path)}, num_workers=0)
    mean, _, n = out["s"].tolist()
    assert n == 8000  # 0.5 s at 16 kHz
    assert mean == pytest.approx(0.3, abs=0.02)


def test_missing_and_unreadable_files_are_named(tmp_path, wavs):
    paths, _ = wavs
    bad = dict(paths, gone=str(tmp_path / "gone.wav"))
    encoder = Recorder()
    with pytest.raises(ValueError, match="'gone'.*gone.wav"):
        embed_utterances(encoder, bad)
    assert encoder.shapes == []  # failed before any compute
    text = tmp_path / "text.wav"
    text.write_text("not audio")
    with pytest.raises(ValueError, match="'junk'.*text.wav"):
        embed_utterances(encoder, {"junk": str(text)})
    with pytest.raises(ValueError, match="batch_seconds"):
        embed_utterances(encoder, paths, batch_seconds=0)


def test_plan_and_batches():
    pieces = plan_pieces(
        {"a": ("a.wav", 100, 16000), "b": ("b.wav", 50, 8000)},
        16000,
        30 / 16000,
    )
    a = [(p.start, p.stop) for p in pieces if p.uid == "a"]
    assert a[0][0] == 0 and a[-1][1] == 100
    assert all(s2 == e1 for (_, e1), (s2, _) in zip(a, a[1:]))  # contiguous
    assert len(a) == 4 and max(e - s for s, e in a) <= 30
    b = [p for p in pieces if p.uid == "b"]  # 100 samples at 16 kHz
    assert len(b) == 4 and sum(p.num_samples for p in b) == 100
    batches = make_batches(pieces, 60)
    assert sorted(p for b in batches for p in b) == sorted(pieces)
    for batch in batches:
        assert len(batch) == 1 or len(batch) * batch[0].num_samples <= 60
        sizes = [p.num_samples for p in batch]
        assert sizes == sorted(sizes, reverse=True)


@pytest.mark.parametrize("valid", [1, 2, 4, 9])
def test_reflect_padding_matches_numpy(valid):
    feats = torch.randn(2, 9, 3)
    lens = torch.tensor([valid / 9, 1.0])
    out = reflect_padding(feats, lens)
    expected = np.pad(
        feats[0, :valid].numpy(),
        ((0, 9 - valid), (0, 0)),
        mode="reflect" if valid > 1 else "edge",
    )
    np.testing.assert_allclose(out[0].numpy(), expected)
    assert torch.equal(out[1], feats[1])


def test_batched_ecapa_close_to_single_utterances(wavs, device):
    torch.manual_seed(0)
    paths, signals = wavs
    model = ECAPA_TDNN(24, channels=[16, 16, 16, 16, 48], lin_neurons=8)
    fbank = Fbank(n_mels=24)
    norm = InputNormalization(norm_type="sentence", std_norm=False)
    model.eval().to(device)
    fbank.to(device)
    encoder = feature_encoder(fbank, norm, model, device=device)
    batched = embed_utterances(encoder, paths, batch_seconds=10.0)
    with torch.no_grad():
        for uid, audio in signals.items():
            wav = torch.from_numpy(audio)[None].to(device)
            feats = norm(fbank(wav), torch.ones(1, device=device))
            alone = model(feats).cpu().flatten()
            cos = F.cosine_similarity(alone, batched[uid], dim=0)
            assert cos > 0.99, (uid, float(cos))
