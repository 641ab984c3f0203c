"""Tests for speechbrain_ssps.crops."""

import numpy as np
import pytest
import soundfile as sf
import torch
from speechbrain.dataio.batch import PaddedBatch
from speechbrain.dataio.dataset import DynamicItemDataset
from speechbrain.utils.data_pipeline import provides, takes
from torch.utils.data import DataLoader

from speechbrain_ssps.crops import (
    crop_seed,
    load_mono,
    make_ssl_views_pipeline,
    multi_crop,
    random_crop,
    ssl_view_keys,
)


def circular_start(crop, signal):
    """Start index s such that crop == signal[(s + arange(n)) % T], or None."""
    t, n = signal.shape[0], crop.shape[0]
    # Only positions holding the crop's first sample can start it.
    for s in torch.nonzero(signal == crop[0]).flatten().tolist():
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


# ----------------------------------------------------------------------
# Robust reads: stereo downmix, files that go bad, NaN/inf
# ----------------------------------------------------------------------
def _views_of(path, pipeline=None, keys=("view_0",), index=0):
    pipeline = pipeline or make_ssl_views_pipeline(1, 100)
    data = DynamicItemDataset({"a": {"wav": str(path), "index": index}})
    data.add_dynamic_item(pipeline)
    data.set_output_keys(list(keys))
    return data[0]


def test_stereo_is_downmixed_to_channel_mean(tmp_path):
    rng = np.random.default_rng(4)
    stereo = rng.uniform(-0.5, 0.5, (300, 2)).astype(np.float32)
    sf.write(str(tmp_path / "st.wav"), stereo, 16000, subtype="FLOAT")
    mono = torch.from_numpy((stereo[:, 0] + stereo[:, 1]) / 2)
    assert torch.allclose(load_mono(str(tmp_path / "st.wav")), mono)
    pipeline = make_ssl_views_pipeline(2, 120, 1, 50, 400)
    item = _views_of(tmp_path / "st.wav", pipeline, ssl_view_keys(2, 1, True))
    for view in item.values():
        assert view.dim() == 1
        start = circular_start(view, mono)
        assert start is not None
        # Same positions on the exact mean (tolerance for float rounding).
        idx = (start + torch.arange(view.shape[0])) % mono.shape[0]
        assert torch.allclose(view, mono[idx])


def test_file_deleted_after_start_names_path(tmp_path):
    path = tmp_path / "gone.wav"
    _write(path, 500, 5)
    pipeline = make_ssl_views_pipeline(1, 100)
    data = DynamicItemDataset({"a": {"wav": str(path)}})
    data.add_dynamic_item(pipeline)
    data.set_output_keys(["view_0"])
    assert data[0]["view_0"].shape == (100,)
    path.unlink()
    with pytest.raises(ValueError, match="gone.wav"):
        data[0]


def test_corrupted_file_names_path(tmp_path):
    path = tmp_path / "text.wav"
    path.write_text("this is not audio\n" * 20, encoding="utf-8")
    with pytest.raises(ValueError, match="cannot read audio file.*text.wav"):
        _views_of(path)


def test_empty_file_names_path(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(str(path), np.zeros(0, np.float32), 16000)
    with pytest.raises(ValueError, match="empty.wav"):
        _views_of(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_samples_name_path(tmp_path, bad):
    signal = np.zeros(400, np.float32)
    signal[123] = bad
    path = tmp_path / "nan.wav"
    sf.write(str(path), signal, 16000, subtype="FLOAT")
    with pytest.raises(ValueError, match="nan.wav.*NaN or infinite"):
        _views_of(path)


# ----------------------------------------------------------------------
# Deterministic crops: a pure function of (seed, epoch, index)
# ----------------------------------------------------------------------
def _crop_starts(item, signal):
    return [circular_start(item[k], signal) for k in sorted(item)]


def test_crop_seed_is_a_pure_function_of_its_inputs():
    seeds = {crop_seed(s, e, i) for s in (0, 1) for e in (1, 2) for i in (0, 5)}
    assert len(seeds) == 8  # every triple gives its own seed
    assert all(0 <= x < 2**63 for x in seeds)
    assert crop_seed(1986, 2, 5) == crop_seed(1986, 2, 5)


def test_seeded_crops_follow_seed_epoch_index(tmp_path):
    signal = _write(tmp_path / "u.wav", 16000, 6)
    keys = ssl_view_keys(2, 4, True)

    def views(seed, epoch, index):
        pipeline = make_ssl_views_pipeline(2, 4000, 4, 2000, 4000, seed=seed)
        pipeline.set_epoch(epoch)
        return _views_of(tmp_path / "u.wav", pipeline, keys, index)

    a = views(7, 3, 11)
    torch.manual_seed(0)
    b = views(7, 3, 11)  # global RNG state does not matter
    torch.manual_seed(123)
    assert all(torch.equal(a[k], b[k]) for k in keys)
    # Independent reference: the generator seeded by crop_seed.
    gen = torch.Generator().manual_seed(crop_seed(7, 3, 11))
    expected = multi_crop(signal, [4000] * 2 + [2000] * 4 + [4000], gen)
    assert all(torch.equal(a[k], e) for k, e in zip(keys, expected))
    for other in (views(7, 4, 11), views(7, 3, 12), views(8, 3, 11)):
        assert _crop_starts(other, signal) != _crop_starts(a, signal)


def test_unseeded_pipeline_uses_global_rng(tmp_path):
    _write(tmp_path / "u.wav", 5000, 7)
    pipeline = make_ssl_views_pipeline(2, 1000)
    assert pipeline.takes == ["wav"]
    torch.manual_seed(3)
    a = _views_of(tmp_path / "u.wav", pipeline, ["view_0", "view_1"])
    torch.manual_seed(3)
    b = _views_of(tmp_path / "u.wav", pipeline, ["view_0", "view_1"])
    assert all(torch.equal(a[k], b[k]) for k in a)


def _seeded_dataset(tmp_path, n, seed):
    signals = [
        _write(tmp_path / f"u{i}.wav", 3000 + 500 * i, 10 + i) for i in range(n)
    ]
    data = DynamicItemDataset(
        {f"u{i}": {"wav": str(tmp_path / f"u{i}.wav")} for i in range(n)}
    )
    index_of = {uid: i for i, uid in enumerate(data.data_ids)}

    @takes("id")
    @provides("index")
    def index_pipeline(uid):
        return index_of[uid]

    views = make_ssl_views_pipeline(2, 1200, 1, 600, seed=seed)
    data.add_dynamic_item(index_pipeline)
    data.add_dynamic_item(views)
    data.set_output_keys(["id", "index", *ssl_view_keys(2, 1)])
    return data, views, signals


def _crops_by_id(loader):
    out = {}
    for batch in loader:
        for row, uid in enumerate(batch.id):
            out[uid] = [batch[k].data[row] for k in ssl_view_keys(2, 1)]
    return out


@pytest.mark.parametrize("persistent", [False, True])
def test_seeded_crops_through_dataloader_workers(tmp_path, persistent):
    data, views, signals = _seeded_dataset(tmp_path, 6, seed=5)
    loader = DataLoader(
        data,
        batch_size=2,
        shuffle=True,
        num_workers=2,
        collate_fn=PaddedBatch,
        persistent_workers=persistent,
    )
    per_epoch = {}
    for epoch in (1, 2):
        views.set_epoch(epoch)
        per_epoch[epoch] = _crops_by_id(loader)
        # Main-process reference for the same epoch, in another order.
        for i in reversed(range(len(data))):
            item = data[i]
            got = per_epoch[epoch][item["id"]]
            assert all(
                torch.equal(g, item[k])
                for g, k in zip(got, ssl_view_keys(2, 1))
            )
    for uid, crops in per_epoch[1].items():
        signal = signals[int(uid[1:])]
        for crop in crops:
            assert circular_start(crop, signal) is not None
        starts1 = [circular_start(c, signal) for c in crops]
        starts2 = [circular_start(c, signal) for c in per_epoch[2][uid]]
        assert starts1 != starts2, uid


def test_resumed_epoch_gets_the_crops_of_an_uninterrupted_one(tmp_path):
    data, views, _ = _seeded_dataset(tmp_path, 6, seed=9)
    order = [4, 1, 5, 0, 3, 2]
    views.set_epoch(3)
    full = _crops_by_id(
        DataLoader(data, batch_size=2, sampler=order, collate_fn=PaddedBatch)
    )
    # "Resume" in a fresh pipeline after the first two batches were seen.
    data2, views2, _ = _seeded_dataset(tmp_path, 6, seed=9)
    views2.set_epoch(3)
    torch.manual_seed(999)  # a resumed process has another global RNG state
    rest = _crops_by_id(
        DataLoader(
            data2,
            batch_size=2,
            sampler=order[4:],
            collate_fn=PaddedBatch,
            num_workers=2,
        )
    )
    assert sorted(rest) == ["u2", "u3"]
    for uid, crops in rest.items():
        assert all(torch.equal(a, b) for a, b in zip(crops, full[uid]))
