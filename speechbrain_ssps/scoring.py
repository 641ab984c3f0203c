"""Speaker-verification metrics and cosine scoring: EER, minDCF, DET.

Every metric is sort-based (one sweep over the sorted scores, O(n log n)),
so the VoxCeleb1-E and -H lists (~580k and ~550k trials) score in well under
a second, where SpeechBrain's ``metric_stats.EER``/``minDCF`` are
quadratic. The EER follows SpeechBrain's definition (the operating point
where false-acceptance and false-rejection rates are closest, reported as
their mean), and the minDCF is normalised as in NIST SRE and VoxSRC (divided by
``min(c_miss * p_target, c_fa * (1 - p_target))``), which SpeechBrain's
``minDCF`` is not. Returned thresholds mean "accept if score >= threshold".

Trial lists and their batched scoring are in ``speechbrain_ssps.trials``,
score normalisation (S-norm, AS-norm) in ``speechbrain_ssps.score_norm``.

Authors
-------
* SSPS contributors 2025
"""

from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F


def _check_scores_labels(scores, labels) -> Tuple[np.ndarray, np.ndarray]:
    """Validates scores and binary labels; returns them as 1-D arrays."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    if scores.ndim != 1 or labels.ndim != 1:
        raise ValueError(
            f"scores and labels must be 1-D, got shapes {scores.shape} and "
            f"{labels.shape}"
        )
    if len(scores) != len(labels):
        raise ValueError(
            f"scores ({len(scores)}) and labels ({len(labels)}) differ in "
            "length"
        )
    if not np.isfinite(scores).all():
        bad = int(np.flatnonzero(~np.isfinite(scores))[0])
        raise ValueError(f"scores[{bad}] is not finite: {scores[bad]}")
    if not np.isin(labels, (0, 1)).all():
        bad = int(np.flatnonzero(~np.isin(labels, (0, 1)))[0])
        raise ValueError(
            f"labels must be 0 or 1, labels[{bad}] is {labels[bad]}"
        )
    labels = labels.astype(np.int64)
    n_target = int(labels.sum())
    if n_target == 0 or n_target == len(labels):
        raise ValueError(
            "labels need both target (1) and non-target (0) trials, got "
            f"{n_target} targets out of {len(labels)}"
        )
    return scores, labels


def _error_counts(scores, labels):
    """Error counts at every distinct threshold, from one sort.

    Returns the false-acceptance counts, false-rejection counts, the
    numbers of non-target and target trials, and the thresholds (accept if
    score >= threshold; the first one, +inf, rejects everything).
    """
    scores, labels = _check_scores_labels(scores, labels)
    order = np.argsort(-scores, kind="stable")
    ranked, is_target = scores[order], labels[order]
    # Last position of every run of equal scores (scores descending).
    last = np.r_[np.flatnonzero(np.diff(ranked)), len(ranked) - 1]
    n_target = int(is_target.sum())
    n_nontarget = len(is_target) - n_target
    accepted_targets = np.r_[0, np.cumsum(is_target)[last]]
    false_accepts = np.r_[0, last + 1] - accepted_targets
    misses = n_target - accepted_targets
    thresholds = np.r_[np.inf, ranked[last]]
    return false_accepts, misses, n_nontarget, n_target, thresholds


def det_curve(scores, labels) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False-acceptance and false-rejection rates at every threshold.

    Arguments
    ---------
    scores : array-like
        One score per trial (higher means "same speaker").
    labels : array-like
        1 for a target trial, 0 for a non-target trial.

    Returns
    -------
    p_fa : numpy.ndarray
        False-acceptance rate per threshold (non-decreasing).
    p_miss : numpy.ndarray
        False-rejection rate per threshold (non-increasing).
    thresholds : numpy.ndarray
        Decreasing thresholds (accept if score >= threshold), starting at
        +inf (reject everything).

    Example
    -------
    >>> p_fa, p_miss, _ = det_curve([0.9, 0.2, 0.5], [1, 1, 0])
    >>> p_fa.tolist(), p_miss.tolist()
    ([0.0, 0.0, 1.0, 1.0], [1.0, 0.5, 0.5, 0.0])
    """
    fa, miss, n_nontarget, n_target, thresholds = _error_counts(scores, labels)
    return fa / n_nontarget, miss / n_target, thresholds


def compute_eer(scores, labels) -> Tuple[float, float]:
    """Equal error rate and its threshold.

    Arguments
    ---------
    scores : array-like
        One score per trial (higher means "same speaker").
    labels : array-like
        1 for a target trial, 0 for a non-target trial.

    Returns
    -------
    eer : float
        The EER as a fraction (0..1): the mean of the false-acceptance and
        false-rejection rates at the threshold where they are closest.
    threshold : float
        That threshold (accept if score >= threshold).

    Example
    -------
    >>> scores = [0.9, 0.8, 0.3, 0.7, 0.2, 0.1]
    >>> eer, threshold = compute_eer(scores, [1, 1, 1, 0, 0, 0])
    >>> round(eer, 4), threshold
    (0.3333, 0.7)
    """
    fa, miss, n_nontarget, n_target, thresholds = _error_counts(scores, labels)
    # |p_fa - p_miss| scaled by n_target * n_nontarget: exact integers.
    gap = np.abs(fa * n_target - miss * n_nontarget)
    # Last minimum: on ties keep the lowest threshold, as SpeechBrain does.
    index = len(gap) - 1 - int(np.argmin(gap[::-1]))
    eer = (fa[index] / n_nontarget + miss[index] / n_target) / 2
    return float(eer), float(thresholds[index])


def compute_min_dcf(
    scores,
    labels,
    p_target: float = 0.01,
    c_miss: float = 1.0,
    c_fa: float = 1.0,
) -> Tuple[float, float]:
    """Normalised minimum detection cost (NIST SRE / VoxSRC) and threshold.

    Arguments
    ---------
    scores : array-like
        One score per trial (higher means "same speaker").
    labels : array-like
        1 for a target trial, 0 for a non-target trial.
    p_target : float
        Prior probability of a target trial.
    c_miss : float
        Cost of a false rejection.
    c_fa : float
        Cost of a false acceptance.

    Returns
    -------
    min_dcf : float
        ``min over thresholds of (c_miss * p_miss * p_target + c_fa * p_fa *
        (1 - p_target))`` divided by ``min(c_miss * p_target, c_fa * (1 -
        p_target))``.
    threshold : float
        The minimising threshold (accept if score >= threshold).

    Example
    -------
    >>> dcf, threshold = compute_min_dcf([0.9, 0.8, 0.3, 0.7], [1, 1, 1, 0])
    >>> round(dcf, 4), threshold
    (0.3333, 0.8)
    """
    if not 0.0 < p_target < 1.0:
        raise ValueError(f"p_target must be in (0, 1), got {p_target}")
    if c_miss <= 0 or c_fa <= 0:
        raise ValueError(f"c_miss and c_fa must be > 0, got {c_miss}, {c_fa}")
    fa, miss, n_nontarget, n_target, thresholds = _error_counts(scores, labels)
    p_fa, p_miss = fa / n_nontarget, miss / n_target
    cost = c_miss * p_target * p_miss + c_fa * (1.0 - p_target) * p_fa
    index = int(np.argmin(cost))
    c_default = min(c_miss * p_target, c_fa * (1.0 - p_target))
    return float(cost[index] / c_default), float(thresholds[index])


def cosine_score(enrol: torch.Tensor, test: torch.Tensor) -> torch.Tensor:
    """Row-wise cosine similarity of two embedding matrices.

    Arguments
    ---------
    enrol : torch.Tensor
        Enrolment embeddings, shape ``(n, D)``.
    test : torch.Tensor
        Test embeddings, shape ``(n, D)``.

    Returns
    -------
    torch.Tensor
        Shape ``(n,)``: ``cos(enrol[i], test[i])``.

    Example
    -------
    >>> cosine_score(torch.tensor([[1.0, 0.0]]), torch.tensor([[2.0, 2.0]]))
    tensor([0.7071])
    """
    if enrol.ndim != 2 or enrol.shape != test.shape:
        raise ValueError(
            "enrol and test must both be (n, D), got "
            f"{tuple(enrol.shape)} and {tuple(test.shape)}"
        )
    return (F.normalize(enrol, dim=1) * F.normalize(test, dim=1)).sum(dim=1)
