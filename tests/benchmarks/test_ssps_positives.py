"""The pseudo-positive diagnostic on embeddings of known structure."""

import importlib.util
import os

import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
SPEC = importlib.util.spec_from_file_location(
    "ssps_positives", os.path.join(REPO, "benchmarks", "ssps_positives.py")
)
diag = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(diag)


def structured(speaker_scale, video_scale, spk=6, vid=4, utt=5, seed=0):
    """Embeddings = speaker direction + video direction + a little noise."""
    g = torch.Generator().manual_seed(seed)
    d = 32
    s_dirs = torch.randn(spk, d, generator=g)
    v_dirs = torch.randn(spk * vid, d, generator=g)
    speakers = torch.arange(spk).repeat_interleave(vid * utt)
    videos = torch.arange(spk * vid).repeat_interleave(utt)
    x = (
        speaker_scale * s_dirs[speakers]
        + video_scale * v_dirs[videos]
        + 0.05 * torch.randn(len(speakers), d, generator=g)
    )
    return x, speakers, videos


def test_speaker_dominated_space_gives_right_speaker_positives():
    # Videos are small offsets around each speaker: with K = videos, the
    # nearest other cluster is another video of the same speaker.
    x, spk, vid = structured(speaker_scale=3.0, video_scale=0.6)
    refs = diag.label_references(x, spk, vid)
    assert refs["nn_other_video"] == pytest.approx(1.0)
    assert refs["chance"] == pytest.approx((20 - 1) / (120 - 1))
    ncs = diag.pseudo_positive_stats(x, spk, vid, 24, "ncs", 1, seed=0)
    assert ncs["coverage"] == 1.0
    assert ncs["speaker_acc"] > 0.9
    assert ncs["video_acc"] < 0.3  # k-means may merge a few videos
    # SCS with clusters finer than speakers stays within the speaker.
    scs = diag.pseudo_positive_stats(x, spk, vid, 12, "scs", 1, seed=0)
    assert scs["speaker_acc"] > 0.95


def test_channel_dominated_space_gives_wrong_speaker_positives():
    # Videos far apart, speakers barely shared: the failure seen on MiniVox.
    x, spk, vid = structured(speaker_scale=0.3, video_scale=3.0)
    refs = diag.label_references(x, spk, vid)
    ncs = diag.pseudo_positive_stats(x, spk, vid, 24, "ncs", 1, seed=0)
    assert ncs["nmi_video"] > ncs["nmi_speaker"]
    assert ncs["speaker_acc"] < 0.5
    assert refs["nn_other_video"] < 0.9


def test_manifest_needs_labels(tmp_path):
    bad = tmp_path / "train.csv"
    bad.write_text("ID,wav\nu1,a.wav\n")
    with pytest.raises(ValueError, match="spk_id"):
        diag.load_rows(str(bad))
    empty = tmp_path / "empty.csv"
    empty.write_text("ID,wav,spk_id,video_id\n")
    with pytest.raises(ValueError, match="no rows"):
        diag.load_rows(str(empty))


def test_knn_and_centroid_are_reported_like_ncs():
    x, spk, vid = structured(speaker_scale=3.0, video_scale=0.6)
    # knn: the M nearest queue entries of a speaker-dominated space hold
    # the anchor's speaker (its 19 other utterances are the nearest).
    knn = diag.pseudo_positive_stats(x, spk, vid, 24, "knn", 5, seed=0)
    assert knn["speaker_acc"] > 0.95
    assert knn["nmi_speaker"] != knn["nmi_speaker"]  # NaN: no clusters
    cen = diag.pseudo_positive_stats(x, spk, vid, 24, "centroid", 1, seed=0)
    assert cen["speaker_acc"] > 0.9
    assert 0.0 <= cen["nmi_speaker"] <= 1.0
