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


def _drawn_figure(monkeypatch):
    """Captures the figure a plot function saves."""
    import speechbrain_ssps.plots as plots

    figures = []
    real = plots.save_figure

    def spy(figure, path):
        figures.append(figure)
        return real(figure, path)

    monkeypatch.setattr(plots, "save_figure", spy)
    return figures


def _binormal(d_prime, n, seed=0):
    rng = np.random.default_rng(seed)
    scores = np.r_[rng.normal(d_prime, 1, n), rng.normal(0, 1, n)]
    return scores, np.r_[np.ones(n, int), np.zeros(n, int)]


def test_det_axes_fit_a_weak_model(tmp_path, monkeypatch):
    from scipy.stats import norm

    from speechbrain_ssps.scoring import compute_eer, det_curve

    figures = _drawn_figure(monkeypatch)
    scores, labels = _binormal(0.5, 3000)  # EER ~40 %
    eer, _ = compute_eer(scores, labels)
    assert 0.37 < eer < 0.43
    title = "MiniVox, trials O: EER 40%"
    plot_det(scores, labels, str(tmp_path / "det.png"), title=title)
    assert_png(tmp_path / "det.png")
    axes = figures[0].axes[0]
    assert axes.get_title() == title
    (x0, x1), (y0, y1) = axes.get_xlim(), axes.get_ylim()
    # Up to 99 %: the EER point sits well inside, not in a corner.
    assert (x0, x1) == (y0, y1)
    assert x1 == pytest.approx(norm.ppf(0.99))
    assert x0 < norm.ppf(eer) - 1.5 and norm.ppf(eer) < x1 - 1.5
    # The curve is inside the axes between its entry and exit points: in
    # the deviate scale, every point with both rates within the limits.
    p_fa, p_miss, _ = det_curve(scores, labels)
    low = norm.cdf(x0)
    inside = (p_fa >= low) & (p_miss >= low) & (p_fa <= 0.99)
    inside &= p_miss <= 0.99
    assert inside.mean() > 0.9
    # The legend is outside the axes, so it cannot hide the curve.
    figures[0].canvas.draw()
    renderer = figures[0].canvas.get_renderer()
    legend_box = axes.get_legend().get_window_extent(renderer)
    assert legend_box.x0 >= axes.get_window_extent(renderer).x1


def test_det_axes_fit_a_good_model(tmp_path, monkeypatch):
    from scipy.stats import norm

    figures = _drawn_figure(monkeypatch)
    plot_det(*_binormal(4.1, 5000), str(tmp_path / "det.png"))
    axes = figures[0].axes[0]
    # EER ~2 %: up to 40 %, down to the list's resolution (1 / 5000).
    assert axes.get_xlim() == pytest.approx(norm.ppf([0.0001, 0.4]))
    labels = [t.get_text() for t in axes.get_xticklabels()]
    assert labels[0] == "0.01" and labels[-1] == "40"


def test_det_limits_and_ticks():
    from speechbrain_ssps.plots import det_limits, det_ticks

    # A tiny list (20 trials per class) starts at its resolution.
    low, high = det_limits(*_curve(_binormal(0.9, 20)), 0.33)
    assert (low, high) == (0.02, 0.9)
    for lo, hi in ((0.0001, 0.99), (0.02, 0.9), (0.001, 0.4)):
        ticks = det_ticks(lo, hi)
        assert ticks[0] == lo and ticks[-1] == hi
        assert ticks == sorted(set(ticks))


def _curve(trials):
    from speechbrain_ssps.scoring import det_curve

    return det_curve(*trials)[:2]


def test_histogram_and_tsne_titles_and_legends(tmp_path, monkeypatch, trials):
    figures = _drawn_figure(monkeypatch)
    plot_score_histogram(*trials, str(tmp_path / "h.png"), title="VoxCeleb1-O")
    axes = figures[0].axes[0]
    assert axes.get_title() == "VoxCeleb1-O"
    texts = [t.get_text() for t in axes.get_legend().get_texts()]
    assert texts == ["non-target (700)", "target (300)", "EER threshold"]
    emb = np.random.default_rng(0).normal(size=(12, 4))
    plot_tsne(emb, ["a"] * 6 + ["b"] * 6, str(tmp_path / "t.png"), title="x")
    axes = figures[1].axes[0]
    assert axes.get_title() == "x" and "perplexity" in axes.get_xlabel()
    for figure in figures:
        figure.canvas.draw()
        renderer = figure.canvas.get_renderer()
        axes = figure.axes[0]
        legend_box = axes.get_legend().get_window_extent(renderer)
        assert legend_box.x0 >= axes.get_window_extent(renderer).x1


def test_saving_is_atomic(tmp_path, monkeypatch, trials):
    path = tmp_path / "det.png"
    path.write_bytes(b"previous")

    def failing(self, target, **kwargs):
        open(target, "wb").write(b"half")
        raise OSError("killed")

    monkeypatch.setattr("matplotlib.figure.Figure.savefig", failing)
    with pytest.raises(OSError, match="killed"):
        plot_det(*trials, str(path))
    assert path.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["det.png"]
