"""Tests for speechbrain_ssps.plots: real PNG files are written."""

import sys

import numpy as np
import pytest
import torch

from speechbrain_ssps.plots import plot_det, plot_score_histogram, plot_tsne

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path):
    data = open(path, "rb").read()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 1000  # more than an empty canvas header


@pytest.fixture
def trials():
    rng = np.random.default_rng(0)
    scores = np.r_[rng.normal(1, 1, 300), rng.normal(-1, 1, 700)]
    labels = np.r_[np.ones(300, int), np.zeros(700, int)]
    return scores, labels


def test_det_and_histogram(tmp_path, trials):
    det = tmp_path / "plots" / "det.png"
    assert plot_det(*trials, str(det), title="Vox1-O") == str(det)
    assert_png(det)
    hist = tmp_path / "hist.png"
    assert plot_score_histogram(*trials, str(hist)) == str(hist)
    assert_png(hist)
    # Perfect separation (EER 0) still draws (rates clipped on the axes).
    plot_det([2.0, 1.0, -1.0, -2.0], [1, 1, 0, 0], str(tmp_path / "p.png"))
    assert_png(tmp_path / "p.png")


def test_plots_do_not_touch_pyplot_state(tmp_path, trials):
    plot_det(*trials, str(tmp_path / "det.png"))
    if "matplotlib.pyplot" in sys.modules:
        assert not sys.modules["matplotlib.pyplot"].get_fignums()


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="both target"):
        plot_det([0.1, 0.2], [1, 1], str(tmp_path / "x.png"))
    with pytest.raises(ValueError, match="length"):
        plot_score_histogram([0.1], [1, 0], str(tmp_path / "x.png"))
    with pytest.raises(ValueError, match="n >= 3"):
        plot_tsne(np.zeros((2, 4)), ["a", "b"], str(tmp_path / "x.png"))
    with pytest.raises(ValueError, match="labels"):
        plot_tsne(np.zeros((5, 4)), ["a"], str(tmp_path / "x.png"))
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("n,n_speakers", [(5, 2), (60, 4), (90, 30)])
def test_tsne(tmp_path, n, n_speakers):
    # Small sets need the perplexity clamp (sklearn requires < n).
    gen = torch.Generator().manual_seed(0)
    centers = 3 * torch.randn(n_speakers, 16, generator=gen)
    labels = [f"id{i % n_speakers:05d}" for i in range(n)]
    emb = centers[[i % n_speakers for i in range(n)]]
    emb = emb + 0.1 * torch.randn(n, 16, generator=gen)
    path = tmp_path / f"tsne_{n}.png"
    assert plot_tsne(emb, labels, str(path), seed=1) == str(path)
    assert_png(path)
