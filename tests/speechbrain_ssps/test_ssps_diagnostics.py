"""Tests of SSPS's diagnostics (speechbrain_ssps/ssps/diagnostics.py)."""

import pytest
import torch
import torch.nn.functional as F

from speechbrain_ssps.ssps import SSPS


def test_kmeans_at_epoch_start_and_metrics():
    # 4 speakers x 2 videos, embeddings dominated by the speaker.
    torch.manual_seed(0)
    n = 64
    spk = torch.arange(n) // 16
    vid = torch.arange(n) // 8
    voice = F.normalize(torch.randn(4, 8), dim=1)
    y = F.normalize(voice[spk] + 0.05 * torch.randn(n, 8), dim=1)
    ssps = SSPS(
        n, 8, 8, queue_size=n, num_clusters=4, sampling="scs", start_epoch=2
    )
    ssps.set_labels([f"id{s}" for s in spk.tolist()], vid)
    ssps.on_epoch_start(1)
    for batch in torch.arange(n).split(8):
        ssps.update(batch, y[batch], y[batch].unsqueeze(0))
    ssps.on_epoch_start(2)
    assert (ssps.assignments >= 0).all()
    assert torch.allclose(ssps.centroids.norm(dim=1), torch.ones(4))
    anchors = torch.arange(n)
    pos = ssps.sample(anchors)
    found = pos >= 0
    metrics = ssps.metrics()
    assert metrics["coverage"] == pytest.approx(found.float().mean().item())
    spk_acc = (spk[pos[found]] == spk[found]).float().mean().item()
    vid_acc = (vid[pos[found]] == vid[found]).float().mean().item()
    assert metrics["speaker_acc"] == pytest.approx(spk_acc)
    assert metrics["video_acc"] == pytest.approx(vid_acc)
    assert metrics["nmi_speaker"] == pytest.approx(1.0)
    assert 0 < metrics["nmi_video"] < 1
    assert metrics["kmeans_seconds"] >= 0
    # New epoch: counters restart.
    ssps.on_epoch_start(3)
    assert ssps.metrics()["coverage"] == 0.0


def test_labels_must_cover_every_utterance():
    ssps = SSPS(6, 4, 3, num_clusters=2, queue_size=4)
    with pytest.raises(ValueError, match="speakers must hold one label"):
        ssps.set_labels([0, 1], [0] * 6)
    with pytest.raises(ValueError, match="set_exclusion_groups: groups"):
        ssps.set_exclusion_groups([0] * 5)
