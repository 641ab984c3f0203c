"""Tests of the label oracle (speechbrain_ssps/ssps/oracle.py)."""

from functools import partial

import pytest
import torch
from ssps_helpers import fill

from speechbrain_ssps.ssps import SSPS, label_oracle


def test_label_oracle_same_speaker_other_video():
    # 4 speakers x 3 videos x 2 utterances; clusters = speakers (fixed),
    # exclusion groups = videos: positives come from another video.
    n = 24
    spk = torch.arange(n) // 6
    vid = torch.arange(n) // 2
    ssps = SSPS(
        n, 4, 3, queue_size=n, num_clusters=4, sampling="scs", start_epoch=2
    )
    ssps.on_epoch_start(1)
    fill(ssps, n)
    ssps.set_exclusion_groups(vid)
    ssps.set_clusters(spk, torch.eye(4, 4), fixed=True)
    ssps.on_epoch_start(2)  # no k-means: the clustering is kept
    assert torch.equal(ssps.assignments, spk)
    anchors = torch.arange(n)
    for _ in range(50):
        pos = ssps.sample(anchors)
        assert (pos >= 0).all()
        assert torch.equal(spk[pos], spk)
        assert (vid[pos] != vid).all()


def test_label_oracle_builds_the_train_script_oracle():
    # 3 speakers x 2 videos x 2 utterances, speakers named out of order.
    names = ["id9", "id1", "id5"]
    speakers = [names[i // 4] for i in range(12)]
    videos = [f"v{i // 2}" for i in range(12)]
    factory = partial(
        SSPS, repr_dim=4, pos_dim=3, queue_size=12, start_epoch=2, seed=4
    )
    oracle = label_oracle(factory, speakers, videos)
    assert oracle.sampling == "scs" and oracle.num_clusters == 3
    codes = torch.tensor([sorted(names).index(s) for s in speakers])
    assert torch.equal(oracle.assignments, codes)
    oracle.on_epoch_start(1)
    fill(oracle, 12)
    oracle.on_epoch_start(2)  # fixed clusters: no k-means
    assert torch.equal(oracle.assignments, codes)
    vid = torch.arange(12) // 2
    for _ in range(20):
        pos = oracle.sample(torch.arange(12))
        assert (pos >= 0).all()
        assert torch.equal(codes[pos], codes)
        assert (vid[pos] != vid).all()
    metrics = oracle.metrics()
    assert metrics["speaker_acc"] == 1.0 and metrics["video_acc"] == 0.0
    assert metrics["nmi_speaker"] == pytest.approx(1.0)


def test_label_oracle_draws_as_the_hand_built_oracle():
    # What recipes/VoxCeleb/SSPS/train.py did by hand before label_oracle.
    speakers = [f"s{(i * 7) % 5}" for i in range(30)]
    videos = [f"v{i % 9}" for i in range(30)]
    factory = partial(
        SSPS, repr_dim=4, pos_dim=3, queue_size=16, start_epoch=2, seed=2
    )
    names = sorted(set(speakers))
    manual = factory(num_utterances=30, num_clusters=5, sampling="scs")
    manual.set_exclusion_groups(videos)
    manual.set_clusters(
        torch.tensor([names.index(s) for s in speakers]),
        torch.zeros_like(manual.centroids),
        fixed=True,
    )
    manual.set_labels(speakers, videos)
    oracle = label_oracle(factory, speakers, videos)
    for ssps in (manual, oracle):
        ssps.on_epoch_start(1)
        fill(ssps, 30, seed=3)
        ssps.on_epoch_start(2)
    for _ in range(5):
        batch = torch.randperm(30)[:8]
        assert torch.equal(manual.sample(batch), oracle.sample(batch))
    assert manual.metrics() == oracle.metrics()
