"""Verification plots: DET curve, score histogram, t-SNE of embeddings.

matplotlib is imported lazily and drawn through its Agg canvas on a private
``Figure`` (no pyplot state, no global backend switch), so these functions
work on headless machines and inside training processes. Every picture is
written atomically (:func:`save_figure`), with its legend outside the axes;
the DET axes are fitted to the curve (:func:`det_limits`). The training
curves (:mod:`speechbrain_ssps.curves`) use the same two helpers.

Authors
-------
* SSPS contributors 2025
"""

import os
from typing import List, Optional, Sequence, Tuple

import numpy as np

from speechbrain_ssps.scoring import compute_eer, det_curve

# DET tick positions (error rates) and their level: the axes take a range of
# them, with the finer levels when there is room for their labels.
_DET_TICKS = {
    0.0001: 0, 0.0002: 2, 0.0005: 1, 0.001: 0, 0.002: 2, 0.005: 1,
    0.01: 0, 0.02: 2, 0.05: 1, 0.1: 0, 0.2: 1, 0.4: 0,
    0.6: 1, 0.8: 1, 0.9: 0, 0.95: 1, 0.98: 2, 0.99: 0,
}  # fmt: skip
_DET_UPPER = (0.4, 0.6, 0.8, 0.9, 0.95, 0.99)


def blank_figure(width: float, height: float):
    """A matplotlib Figure attached to an Agg canvas (no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _new_figure(width: float = 5.0, height: float = 5.0):
    """A figure from :func:`blank_figure` and its single axes."""
    figure = blank_figure(width, height)
    return figure, figure.add_subplot(1, 1, 1)


def save_figure(figure, path: str) -> str:
    """Writes the figure atomically (format from the extension).

    The image goes to a temporary file in the same folder, renamed over
    ``path``: a killed process never leaves a truncated picture. Folders
    are created; the bounding box is fitted to every artist (legends
    placed outside the axes included).
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fmt = os.path.splitext(path)[1].lstrip(".").lower() or "png"
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        figure.savefig(tmp, format=fmt, bbox_inches="tight", pad_inches=0.1)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def det_limits(p_fa, p_miss, eer: float) -> Tuple[float, float]:
    """Error-rate range of the DET axes, fitted to the curve.

    The upper bound leaves the EER point well inside the axes: 40 % up to
    an EER of 16 %, then up to 99 % for weak models (the curve of an EER of
    40 % is fully visible). The lower one is the tick below where the curve
    enters the axes (its smallest rate while the other rate is within the
    upper bound), and never below the finest rate the list resolves (one
    trial of the larger class): no empty corner, no cut curve.

    Arguments
    ---------
    p_fa, p_miss : array-like
        The curve (:func:`~speechbrain_ssps.scoring.det_curve`).
    eer : float
        Equal error rate (fraction).

    Returns
    -------
    (float, float)
        The lower and upper rates (fractions), both in ``_DET_TICKS``; the
        lower one is 0.01 % to 5 %.

    Example
    -------
    >>> det_limits([0.0, 0.0, 0.5, 1.0], [1.0, 0.5, 0.0, 0.0], 0.25)
    (0.05, 0.8)
    """
    p_fa = np.asarray(p_fa, dtype=np.float64)
    p_miss = np.asarray(p_miss, dtype=np.float64)
    high = next((u for u in _DET_UPPER if u >= 2.5 * eer), _DET_UPPER[-1])
    rates = np.r_[p_fa, p_miss]
    finest = rates[rates > 0].min() if (rates > 0).any() else 1.0
    inside_fa, inside_miss = p_fa[p_miss <= high], p_miss[p_fa <= high]
    entry = min(inside_fa.min(initial=1.0), inside_miss.min(initial=1.0))
    floor = max(finest, entry)
    low = max([t for t in _DET_TICKS if t < floor] or [min(_DET_TICKS)])
    return min(low, 0.05), high


def det_ticks(low: float, high: float, min_gap: float = 0.09) -> List[float]:
    """Tick rates from ``low`` to ``high``, far enough apart to be read.

    The finest level of ``_DET_TICKS`` whose ticks are all at least
    ``min_gap`` of the span apart (normal-deviate scale); both limits are
    ticks.

    Example
    -------
    >>> det_ticks(0.01, 0.4)
    [0.01, 0.02, 0.05, 0.1, 0.2, 0.4]
    >>> det_ticks(0.0001, 0.99)
    [0.0001, 0.001, 0.01, 0.1, 0.4, 0.9, 0.99]
    """
    from scipy.stats import norm

    gap = min_gap * float(norm.ppf(high) - norm.ppf(low))
    for level in (2, 1, 0):
        inner = [
            t
            for t, tick_level in sorted(_DET_TICKS.items())
            if tick_level <= level
            and norm.ppf(t) - norm.ppf(low) >= gap
            and norm.ppf(high) - norm.ppf(t) >= gap
        ]
        ticks = [low, *inner, high]
        if all(np.diff(norm.ppf(ticks)) >= gap):
            break
    return ticks


def _outside_legend(axes, **kwargs) -> None:
    """A legend to the right of the axes, clear of what they show."""
    axes.legend(
        loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
        **kwargs,
    )  # fmt: skip


def plot_det(scores, labels, path: str, title: Optional[str] = None) -> str:
    """Draws the detection error trade-off (DET) curve.

    Both axes are on the normal-deviate scale (``scipy.stats.norm.ppf`` of
    the error rates), where Gaussian score distributions give straight
    lines, over the range of :func:`det_limits` (a weak model's curve is
    not cut off). The EER point and the diagonal are drawn; the legend
    sits outside the axes.

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
    low, high = det_limits(p_fa, p_miss, eer)

    def deviate(rates):
        # Zero and one go far off the axes; the drawn line is cut at them.
        return norm.ppf(np.clip(rates, 1e-9, 1.0 - 1e-9))

    figure, axes = _new_figure(6.2, 4.6)
    limits = norm.ppf([low, high])
    axes.plot(limits, limits, ls=":", lw=0.8, color="0.6")  # FA = FR
    axes.plot(deviate(p_fa), deviate(p_miss), lw=1.5, label="DET")
    eer_point = deviate(eer)
    axes.plot([eer_point], [eer_point], "o", color="C3", label=f"EER {eer:.2%}")
    ticks = det_ticks(low, high)
    tick_labels = [f"{100 * t:g}" for t in ticks]
    for set_ticks, set_labels in (
        (axes.set_xticks, axes.set_xticklabels),
        (axes.set_yticks, axes.set_yticklabels),
    ):
        set_ticks(norm.ppf(ticks))
        set_labels(tick_labels, fontsize=8)
    axes.set_xlim(*limits)
    axes.set_ylim(*limits)
    axes.set_aspect("equal")
    axes.set_xlabel("False acceptance rate (%)")
    axes.set_ylabel("False rejection rate (%)")
    axes.grid(True, lw=0.5, alpha=0.5)
    _outside_legend(axes)
    if title:
        axes.set_title(title)
    return save_figure(figure, path)


def plot_score_histogram(
    scores, labels, path: str, title: Optional[str] = None
) -> str:
    """Draws the target and non-target score distributions.

    Each class is normalised to unit area (the legend gives its trial
    count); the EER threshold is drawn; the legend sits outside the axes.

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
    for name, chosen in (("non-target", ~labels), ("target", labels)):
        axes.hist(
            scores[chosen],
            bins=bins,
            density=True,
            alpha=0.6,
            label=f"{name} ({int(chosen.sum())})",
        )
    axes.axvline(threshold, color="k", ls="--", lw=1, label="EER threshold")
    axes.set_xlabel("Score")
    axes.set_ylabel("Density")
    _outside_legend(axes, fontsize=8)
    if title:
        axes.set_title(title)
    return save_figure(figure, path)


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
        One label per row (e.g. speaker IDs); a legend (outside the axes)
        is drawn for up to 20 distinct labels.
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
        _outside_legend(axes, fontsize=7, markerscale=2)
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
    axes.set_xlabel(f"t-SNE, perplexity {perplexity:.3g}")
    axes.set_title(title or "t-SNE")
    return save_figure(figure, path)
