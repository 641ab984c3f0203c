"""Tests for speechbrain_ssps.crops."""

import numpy as np
import pytest
import soundfile as sf
import torch
from speechbrain.dataio.batch import PaddedBatch
from speechbrain.dataio.dataset import DynamicItemDataset

from speechbrain_ssps.crops import (
    make_ssl_views_pipeline,
    multi_crop,
    random_crop,
    ssl_view_keys,
)


def circular_start(crop, signal):
    """Start index s such that crop == signal[(s + arange(n)) % T], or None."""
    t, n = signal.shape[0], crop.shape[0]
    for s in range(t):
        idx = (s + torch.arange(n)) % t
        if torch.equal(signal[idx], crop):
            return s
    return None


def test_long_input_gives_plain_slice():
    torch.manual_seed(0)
    wav = torch.arange(50, dtype=torch.float32)
    starts = set()
    for _ in range(300):
        crop = random_crop(wav, 20)
        assert crop.shape == (20,)
        s = int(crop[0])
        assert torch.equal(crop, wav[s : s + 20])  # contiguous, no wrap
        starts.add(s)
    assert starts == set(range(31))  # every valid start is reachable


def test_exact_length_returns_whole_signal():
    wav = torch.randn(16)
    assert torch.equal(random_crop(wav, 16), wav)


@pytest.mark.parametrize("length", [1, 2, 7])
def test_short_input_wraps_around(length):
    torch.manual_seed(length)
    wav = torch.randn(length)
    for _ in range(20):
        crop = random_crop(wav, 25)
        assert crop.shape == (25,)
        assert circular_start(crop, wav) is not None


def test_short_input_starts_are_uniform_over_signal():
    torch.manual_seed(1)
    wav = torch.arange(4, dtype=torch.float32)
    starts = {int(random_crop(wav, 9)[0]) for _ in range(200)}
    assert starts == {0, 1, 2, 3}


def test_seeded_generator_is_deterministic():
    wav = torch.randn(1000)
    a = multi_crop(wav, [300, 300, 100], torch.Generator().manual_seed(5))
    b = multi_crop(wav, [300, 300, 100], torch.Generator().manual_seed(5))
    c = multi_crop(wav, [300, 300, 100], torch.Generator().manual_seed(6))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))
    assert [x.shape[0] for x in a] == [300, 300, 100]
    for crop in a:
        assert circular_start(crop, wav) is not None


def test_bad_input_raises():
    with pytest.raises(ValueError, match="empty"):
        random_crop(torch.zeros(0), 10)
    with pytest.raises(ValueError, match="1-D"):
        random_crop(torch.zeros(10, 2), 4)
    with pytest.raises(ValueError, match="num_samples"):
        random_crop(torch.zeros(10), 0)
    with pytest.raises(ValueError, match="local_samples"):
        make_ssl_views_pipeline(2, 100, 4, None)
    with pytest.raises(ValueError, match="num_global"):
        make_ssl_views_pipeline(0, 100)


def test_view_keys():
    assert ssl_view_keys(2, 0) == ["view_0", "view_1"]
    assert ssl_view_keys(2, 4, True) == [f"view_{i}" for i in range(6)] + [
        "ref"
    ]


def _write(path, n, seed):
    rng = np.random.default_rng(seed)
    sf.write(str(path), rng.uniform(-0.5, 0.5, n).astype(np.float32), 16000)
    data, _ = sf.read(str(path), dtype="float32")
    return torch.from_numpy(data)


def test_pipeline_on_wav_files_and_padded_batch(tmp_path):
    signals = {
        "long": _write(tmp_path / "long.wav", 3000, 0),
        "short": _write(tmp_path / "short.wav", 150, 1),  # shorter than views
    }
    data = DynamicItemDataset(
        {k: {"wav": str(tmp_path / f"{k}.wav")} for k in signals}
    )
    pipeline = make_ssl_views_pipeline(
        num_global=2,
        global_samples=800,
        num_local=3,
        local_samples=400,
        reference_samples=1000,
    )
    data.add_dynamic_item(pipeline)
    keys = ssl_view_keys(2, 3, with_reference=True)
    data.set_output_keys(["id"] + keys)
    items = [data[i] for i in range(len(data))]
    lengths = [800, 800, 400, 400, 400, 1000]
    for item in items:
        signal = signals[item["id"]]
        for key, n in zip(keys, lengths):
            view = item[key]
            assert view.dtype == torch.float32 and view.shape == (n,)
            assert circular_start(view, signal) is not None, key
    batch = PaddedBatch(items)
    for key, n in zip(keys, lengths):
        assert batch[key].data.shape == (2, n)
        assert torch.equal(batch[key].lengths, torch.ones(2))


def test_pipeline_without_locals_or_reference(tmp_path):
    _write(tmp_path / "a.wav", 500, 2)
    pipeline = make_ssl_views_pipeline(2, 200, 0, None)
    data = DynamicItemDataset({"a": {"wav": str(tmp_path / "a.wav")}})
    data.add_dynamic_item(pipeline)
    data.set_output_keys(ssl_view_keys(2, 0))
    assert sorted(data[0]) == ["view_0", "view_1"]


def test_pipeline_reads_start_stop_dict(tmp_path):
    signal = _write(tmp_path / "seg.wav", 2000, 3)
    pipeline = make_ssl_views_pipeline(1, 100)
    data = DynamicItemDataset(
        {"a": {"wav": {"file": str(tmp_path / "seg.wav"), "start": 500}}}
    )
    data.add_dynamic_item(pipeline)
    data.set_output_keys(["view_0"])
    for _ in range(10):
        view = data[0]["view_0"]
        assert circular_start(view, signal[500:]) is not None
