"""The end-of-epoch verification pass (EpochValidator, SSLBrain.validate)."""

import numpy as np
import pytest
import soundfile as sf
import torch

from speechbrain_ssps.epoch_validation import EpochValidator, read_segment
from speechbrain_ssps.scoring import compute_eer, compute_min_dcf

RATE = 16000


def _corpus(tmp_path, freqs, seconds=1.0):
    """One tone per utterance; the manifest and its IDs."""
    rows = []
    for i, (freq, dur) in enumerate(zip(freqs, seconds)):
        t = np.arange(int(dur * RATE)) / RATE
        path = tmp_path / f"u{i}.wav"
        sf.write(str(path), 0.5 * np.sin(2 * np.pi * freq * t), RATE)
        rows.append(f"u{i},{path}")
    manifest = tmp_path / "test.csv"
    manifest.write_text("ID,wav\n" + "\n".join(rows) + "\n")
    return str(manifest)


def _spectrum(wavs):
    return torch.fft.rfft(wavs).abs()[:, :2000]


def test_read_segment_cuts_long_and_repeats_short(tmp_path):
    path = str(tmp_path / "a.wav")
    sf.write(path, np.linspace(-0.5, 0.5, 100, dtype=np.float32), RATE)
    full, _ = sf.read(path, dtype="float32")
    np.testing.assert_array_equal(read_segment(path, 40), full[:40])
    long = read_segment(path, 250)
    np.testing.assert_array_equal(long[:100], full)
    np.testing.assert_array_equal(long[100:200], full)
    np.testing.assert_array_equal(long[200:], full[:50])


def test_scores_match_a_direct_computation(tmp_path):
    freqs = [200, 210, 400, 900, 905, 1500]
    seconds = [0.3, 1.0, 0.7, 1.0, 0.4, 0.6]
    manifest = _corpus(tmp_path, freqs, seconds)
    lines = ["1 u0 u1", "0 u0 u2", "1 u3 u4", "0 u1 u5", "0 u2 u3", "1 u2 u2"]
    trials = tmp_path / "trials_O.txt"
    trials.write_text("\n".join(lines) + "\n")
    validator = EpochValidator(
        str(trials), manifest, segment_seconds=0.5, batch_size=4
    )
    got = validator(_spectrum)

    # Direct: 0.5 s segments, cosine of the spectra.
    seg = {
        f"u{i}": torch.from_numpy(read_segment(str(tmp_path / f"u{i}.wav"), 8000))
        for i in range(6)
    }
    emb = {k: _spectrum(v[None])[0] for k, v in seg.items()}
    scores, labels = [], []
    for line in lines:
        label, a, b = line.split()
        scores.append(float(torch.cosine_similarity(emb[a], emb[b], dim=0)))
        labels.append(int(label))
    eer, _ = compute_eer(np.array(scores), np.array(labels))
    dcf, _ = compute_min_dcf(np.array(scores), np.array(labels))
    assert got["valid_eer"] == pytest.approx(100 * eer, abs=1e-3)
    assert got["valid_mindcf"] == pytest.approx(dcf, abs=1e-3)


def test_due_every_n_epochs_and_off(tmp_path):
    manifest = _corpus(tmp_path, [100, 300], [0.2, 0.2])
    trials = tmp_path / "t.txt"
    trials.write_text("1 u0 u0\n0 u0 u1\n")
    every3 = EpochValidator(str(trials), manifest, every=3)
    assert [e for e in range(1, 10) if every3.due(e)] == [3, 6, 9]
    off = EpochValidator(str(trials), manifest, every=0)
    assert not any(off.due(e) for e in range(1, 10))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"every": -1}, "valid_every=-1"),
        ({"segment_seconds": 0.0}, "valid_segment_seconds=0.0"),
    ],
)
def test_impossible_options_name_the_option(tmp_path, kwargs, message):
    manifest = _corpus(tmp_path, [100, 300], [0.2, 0.2])
    trials = tmp_path / "t.txt"
    trials.write_text("1 u0 u0\n0 u0 u1\n")
    with pytest.raises(ValueError, match=message):
        EpochValidator(str(trials), manifest, **kwargs)


def test_unknown_trial_id_names_the_list_and_manifest(tmp_path):
    manifest = _corpus(tmp_path, [100, 300], [0.2, 0.2])
    trials = tmp_path / "trials_O.txt"
    trials.write_text("1 u0 u0\n0 u0 nobody\n")
    with pytest.raises(ValueError, match="trials_O.txt names 'nobody'"):
        EpochValidator(str(trials), manifest)


def test_a_list_with_one_class_is_refused(tmp_path):
    manifest = _corpus(tmp_path, [100, 300], [0.2, 0.2])
    trials = tmp_path / "t.txt"
    trials.write_text("1 u0 u0\n1 u1 u1\n")
    with pytest.raises(ValueError, match="target and non-target"):
        EpochValidator(str(trials), manifest)(_spectrum)


def test_brain_validates_in_eval_mode_and_restores_training(tmp_path):
    from types import SimpleNamespace

    from speechbrain_ssps.brain import SSLBrain

    class Recorder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = torch.nn.BatchNorm1d(1)
            self.modes = []

        def forward(self, feats):
            self.modes.append(self.training)
            return feats.mean(dim=1, keepdim=True)

    model = Recorder().train()
    before = model.norm.running_mean.clone()
    seen = {}

    def validator(encode, device):
        seen["emb"] = encode(torch.randn(3, 1600))
        return {"valid_eer": 1.0}

    brain = SimpleNamespace(
        modules={"embedding_model": model},
        validator=validator,
        device="cpu",
        encode=lambda m, w: m(w[:, None, :]).squeeze(1),
    )
    assert SSLBrain.validate(brain) == {"valid_eer": 1.0}
    assert model.modes == [False]  # the forward ran in eval mode
    assert model.training  # and training mode is back
    assert torch.equal(model.norm.running_mean, before)
    assert seen["emb"].shape == (3, 1600)
