"""Verification plots: DET curve, score histogram, t-SNE of embeddings.

matplotlib is imported lazily and drawn through its Agg canvas on a private
``Figure`` (no pyplot state, no global backend switch), so these functions
work on headless machines and inside training processes.

Authors
-------
* SSPS contributors 2025
"""

import os
from typing import Optional, Sequence

import numpy as np

from speechbrain_ssps.scoring import compute_eer, det_curve

_DET_TICKS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4]


def _new_figure(width: float = 5.0, height: float = 5.0):
    """A matplotlib Figure attached to an Agg canvas, and its axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot(1, 1, 1)


def _save(figure, path: str) -> str:
    """Writes the figure as an image (format from the extension)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path)
    return path


def plot_det(scores, labels, path: str, title: Optional[str] = None) -> str:
    """Draws the detection error trade-off (DET) curve.

    Both axes are on the normal-deviate scale (``scipy.stats.norm.ppf`` of
    the error rates), where Gaussian score distributions give straight
    lines. The EER point is marked.

    Arguments
    ---------
    scores : array-like
        One score per trial.
    labels : array-like
        1 for a target trial, 0 for a non-target trial.
    path : str
        Output image (e.g. ``det.png``); folders are created.
    title : str, optional
        Figure title.

    Returns
    -------
    str
        path.

    Example
    -------
    >>> path = str(getfixture("tmp_path") / "det.png")
    >>> plot_det([0.9, 0.4, 0.6, 0.1], [1, 1, 0, 0], path) == path
    True
    """
    from scipy.stats import norm

    p_fa, p_miss, _ = det_curve(scores, labels)
    eer, _ = compute_eer(scores, labels)
    low, high = 5e-4, 0.5
    p_fa, p_miss = np.clip(p_fa, low, high), np.clip(p_miss, low, high)

    figure, axes = _new_figure()
    axes.plot(norm.ppf(p_fa), norm.ppf(p_miss), lw=1.5, label="DET")
    eer_point = norm.ppf(np.clip(eer, low, high))
    axes.plot([eer_point], [eer_point], "o", color="C3", label=f"EER {eer:.2%}")
    ticks = norm.ppf(_DET_TICKS)
    tick_labels = [f"{100 * t:g}" for t in _DET_TICKS]
    for set_ticks, set_labels in (
        (axes.set_xticks, axes.set_xticklabels),
        (axes.set_yticks, axes.set_yticklabels),
    ):
        set_ticks(ticks)
        set_labels(tick_labels)
    limits = norm.ppf([low, high])
    axes.set_xlim(*limits)
    axes.set_ylim(*limits)
    axes.set_xlabel("False acceptance rate (%)")
    axes.set_ylabel("False rejection rate (%)")
    axes.grid(True, lw=0.5, alpha=0.5)
    axes.legend(loc="upper right")
    if title:
        axes.set_title(title)
    return _save(figure, path)


def plot_score_histogram(
    scores, labels, path: str, title: Optional[str] = None
) -> str:
    """Draws the target and non-target score distributions.

    Arguments
    ---------
    scores : array-like
        One score per trial.
    labels : array-like
        1 for a target trial, 0 for a non-target trial.
    path : str
        Output image; folders are created.
    title : str, optional
        Figure title.

    Returns
    -------
    str
        path.

    Example
    -------
    >>> path = str(getfixture("tmp_path") / "hist.png")
    >>> plot_score_histogram([0.9, 0.4, 0.6, 0.1], [1, 1, 0, 0], path) == path
    True
    """
    _, threshold = compute_eer(scores, labels)  # also validates the inputs
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    n_bins = int(np.clip(np.sqrt(len(scores)), 10, 100))
    bins = np.histogram_bin_edges(scores, bins=n_bins)

    figure, axes = _new_figure(6.0, 4.0)
    axes.hist(
        scores[~labels], bins=bins, density=True, alpha=0.6, label="non-target"
    )
    axes.hist(
        scores[labels], bins=bins, density=True, alpha=0.6, label="target"
    )
    axes.axvline(threshold, color="k", ls="--", lw=1, label="EER threshold")
    axes.set_xlabel("Score")
    axes.set_ylabel("Density")
    axes.legend()
    if title:
        axes.set_title(title)
    return _save(figure, path)


def plot_tsne(
    embeddings: np.ndarray,
    labels: Sequence,
    path: str,
    seed: int = 0,
    perplexity: float = 30.0,
    title: Optional[str] = None,
    n_threads: int = 1,
) -> str:
    """Draws a 2-D t-SNE map of embeddings, coloured by label.

    Arguments
    ---------
    embeddings : numpy.ndarray
        Shape ``(n, D)`` with n >= 3 (a torch tensor is converted).
    labels : sequence
        One label per row (e.g. speaker IDs); a legend is drawn for up to
        20 distinct labels.
    path : str
        Output image; folders are created.
    seed : int
        Random state of the t-SNE.
    perplexity : float
        Perplexity, clamped to ``(n - 1) / 3`` for small sets.
    title : str, optional
        Figure title.
    n_threads : int
        OpenMP threads used by the t-SNE. One is the default: on a busy
        machine more threads can make sklearn's Barnes-Hut t-SNE far slower
        (spin-waiting), measured 0.2 s vs 13 s for 60 points on 2 loaded
        cores.

    Returns
    -------
    str
        path.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> emb = rng.normal(size=(12, 4))
    >>> path = str(getfixture("tmp_path") / "tsne.png")
    >>> plot_tsne(emb, ["a"] * 6 + ["b"] * 6, path) == path
    True
    """
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    if hasattr(embeddings, "detach"):
        embeddings = embeddings.detach().cpu().numpy()
    embeddings = np.asarray(embeddings, dtype=np.float32)
    labels = list(labels)
    if embeddings.ndim != 2 or len(embeddings) < 3:
        raise ValueError(
            f"embeddings must be (n, D) with n >= 3, got {embeddings.shape}"
        )
    if len(labels) != len(embeddings):
        raise ValueError(
            f"{len(labels)} labels for {len(embeddings)} embeddings"
        )
    perplexity = float(min(perplexity, max(1.0, (len(embeddings) - 1) / 3)))
    tsne = TSNE(
        n_components=2, perplexity=perplexity, init="pca", random_state=seed
    )
    with threadpool_limits(n_threads):
        points = tsne.fit_transform(embeddings)

    names = sorted(set(labels), key=str)
    code_of = {name: code for code, name in enumerate(names)}
    codes = np.array([code_of[label] for label in labels])
    figure, axes = _new_figure(6.0, 6.0)
    if len(names) <= 20:
        from matplotlib import colormaps

        palette = colormaps["tab10" if len(names) <= 10 else "tab20"]
        for code, name in enumerate(names):
            mask = codes == code
            axes.scatter(
                points[mask, 0],
                points[mask, 1],
                color=palette(code),
                s=8,
                alpha=0.8,
                label=str(name),
            )
        axes.legend(fontsize=7, markerscale=2)
    else:
        axes.scatter(
            points[:, 0],
            points[:, 1],
            c=codes,
            cmap="nipy_spectral",
            s=8,
            alpha=0.8,
        )
    axes.set_xticks([])
    axes.set_yticks([])
    axes.set_title(title or f"t-SNE (perplexity {perplexity:g})")
    return _save(figure, path)
