"""Speaker-verification scoring: cosine scores, EER, minDCF, score norms.

Every metric is sort-based (one sweep over the sorted scores, O(n log n)),
so the VoxCeleb1-E and -H lists (~580k and ~550k trials) score in well under
a second, where SpeechBrain's ``metric_stats.EER``/``minDCF`` are
quadratic. The EER follows SpeechBrain's definition (the operating point
where false-acceptance and false-rejection rates are closest, reported as
their mean), and the minDCF is normalised as in NIST SRE and VoxSRC (divided by
``min(c_miss * p_target, c_fa * (1 - p_target))``), which SpeechBrain's
``minDCF`` is not. Returned thresholds mean "accept if score >= threshold".

S-norm and adaptive S-norm (AS-norm, Matejka et al., Interspeech 2017)
normalise each trial score with the statistics of the enrolment and test
embeddings scored against a cohort (typically training embeddings).

Authors
-------
* SSPS contributors 2025
"""

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

_AUDIO_EXTENSIONS = (".wav", ".flac", ".m4a")


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


def read_trials(path: str, with_line_numbers: bool = False) -> List[tuple]:
    """Reads a trial list of ``<label> <enrol> <test>`` lines.

    Audio extensions (``.wav``, ``.flac``, ``.m4a``) are stripped from the
    IDs, so raw VoxCeleb lists and the prepared ``trials_*.txt`` both work.
    Blank lines are skipped.

    Arguments
    ---------
    path : str
        The trial file.
    with_line_numbers : bool
        Also return each trial's line number (for error messages).

    Returns
    -------
    list of tuple
        ``(label, enrol_id, test_id)`` per trial, followed by the line
        number when ``with_line_numbers``.

    Example
    -------
    >>> path = getfixture("tmp_path") / "trials.txt"
    >>> _ = path.write_text("1 id1/v1/00001.wav id1/v2/00001.wav\\n")
    >>> read_trials(str(path))
    [(1, 'id1/v1/00001', 'id1/v2/00001')]
    """
    trials = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 3 or fields[0] not in ("0", "1"):
                raise ValueError(
                    f"{path}, line {line_no}: expected '<0|1> <enrol> "
                    f"<test>', got {line.strip()!r}"
                )
            trial = (
                int(fields[0]),
                _strip_ext(fields[1]),
                _strip_ext(fields[2]),
            )
            trials.append(trial + (line_no,) if with_line_numbers else trial)
    return trials


def _strip_ext(name: str) -> str:
    """Removes a known audio extension."""
    for ext in _AUDIO_EXTENSIONS:
        if name.endswith(ext):
            return name[: -len(ext)]
    return name


def _stack(
    embeddings: Dict[str, torch.Tensor], ids: Sequence[str], where: str
) -> torch.Tensor:
    """Stacks and L2-normalises the embeddings of ids, shape (len(ids), D)."""
    if not ids:
        raise ValueError(f"No embedding to stack ({where})")
    missing = next((u for u in ids if u not in embeddings), None)
    if missing is not None:
        raise KeyError(f"No embedding for {missing!r} ({where})")
    rows = [torch.as_tensor(embeddings[u]).detach().cpu() for u in ids]
    sizes = {row.numel() for row in rows}
    if len(sizes) > 1:
        dim = rows[0].numel()
        odd, size = next(
            (u, row.numel()) for u, row in zip(ids, rows) if row.numel() != dim
        )
        raise ValueError(
            f"Embedding of {odd!r} has {size} values, "
            f"{ids[0]!r} has {dim} (shapes (D,), (1, D) or (1, 1, D) "
            "accepted)"
        )
    try:  # fast path: one C call when all shapes agree
        matrix = torch.stack(rows).reshape(len(rows), -1)
    except RuntimeError:
        matrix = torch.stack([row.reshape(-1).float() for row in rows])
    return F.normalize(matrix.float(), dim=1)


def _index(ids: Sequence[str]) -> Tuple[List[str], np.ndarray]:
    """Unique ids (first-seen order) and the position of each id in them."""
    position: Dict[str, int] = {}
    inverse = np.fromiter(
        (position.setdefault(i, len(position)) for i in ids),
        dtype=np.int64,
        count=len(ids),
    )
    return list(position), inverse


def score_trials(
    embeddings: Dict[str, torch.Tensor],
    trials: Sequence[Tuple[int, str, str]],
    chunk_size: int = 65536,
) -> Tuple[np.ndarray, np.ndarray]:
    """Cosine scores of a trial list.

    Arguments
    ---------
    embeddings : dict
        Utterance ID to embedding, each of shape ``(D,)``, ``(1, D)`` or
        ``(1, 1, D)``.
    trials : sequence of (int, str, str)
        ``(label, enrol_id, test_id)`` per trial (see ``read_trials``).
    chunk_size : int
        Trials scored per vectorised block (bounds memory).

    Returns
    -------
    scores : numpy.ndarray
        Cosine score per trial (float64).
    labels : numpy.ndarray
        Label per trial (int64).

    Example
    -------
    >>> emb = {"a": torch.tensor([1.0, 0.0]), "b": torch.tensor([0.0, 3.0])}
    >>> score_trials(emb, [(1, "a", "a"), (0, "a", "b")])
    (array([1., 0.]), array([1, 0]))
    """
    if len(trials) == 0:
        raise ValueError("No trial to score")
    labels = np.fromiter((t[0] for t in trials), np.int64, count=len(trials))
    ids, inverse = _index([u for t in trials for u in (t[1], t[2])])
    missing = next((u for u in ids if u not in embeddings), None)
    if missing is not None:
        line = next(
            n for n, t in enumerate(trials, 1) if missing in (t[1], t[2])
        )
        raise KeyError(f"No embedding for {missing!r} (trial {line})")
    matrix = _stack(embeddings, ids, "score_trials")
    enrol = torch.from_numpy(np.ascontiguousarray(inverse[0::2]))
    test = torch.from_numpy(np.ascontiguousarray(inverse[1::2]))
    scores = torch.empty(len(trials), dtype=torch.float32)
    for start in range(0, len(trials), chunk_size):
        stop = start + chunk_size
        scores[start:stop] = torch.linalg.vecdot(
            matrix.index_select(0, enrol[start:stop]),
            matrix.index_select(0, test[start:stop]),
        )
    return scores.double().numpy(), labels


def _cohort_stats(
    matrix: torch.Tensor,
    cohort: torch.Tensor,
    top_k: Optional[int],
    chunk_size: int,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Mean and std of each row's (top-k) cosine scores against the cohort."""
    means, stds = [], []
    for start in range(0, len(matrix), chunk_size):
        block = matrix[start : start + chunk_size] @ cohort.T
        if top_k is not None:
            block = block.topk(top_k, dim=1).values
        means.append(block.mean(dim=1))
        stds.append(block.std(dim=1, unbiased=False))
    return torch.cat(means), torch.cat(stds).clamp_min(1e-8)


def as_norm(
    scores,
    enrol_ids: Sequence[str],
    test_ids: Sequence[str],
    embeddings: Dict[str, torch.Tensor],
    cohort: torch.Tensor,
    top_k: Optional[int] = None,
    chunk_size: int = 4096,
) -> np.ndarray:
    """Symmetric score normalisation: AS-norm with top_k, S-norm without.

    For a trial (e, t) with raw score s, the normalised score is
    ``((s - mu_e) / sd_e + (s - mu_t) / sd_t) / 2`` where ``mu_x`` and
    ``sd_x`` are the mean and (population) standard deviation of the cosine
    scores of x against the cohort: all of it (S-norm), or only its top_k
    highest scores (adaptive S-norm).

    Arguments
    ---------
    scores : array-like
        Raw cosine score per trial, shape ``(n,)``.
    enrol_ids : sequence of str
        Enrolment ID per trial.
    test_ids : sequence of str
        Test ID per trial.
    embeddings : dict
        Utterance ID to embedding (as in ``score_trials``).
    cohort : torch.Tensor
        Cohort embeddings, shape ``(C, D)`` (normalised here).
    top_k : int, optional
        Number of best-matching cohort scores kept per utterance
        (2 <= top_k <= C); None uses the whole cohort (S-norm).
    chunk_size : int
        Utterances scored against the cohort per block (bounds memory).

    Returns
    -------
    numpy.ndarray
        Normalised score per trial (float64).

    Example
    -------
    >>> emb = {"a": torch.tensor([1.0, 0.0]), "b": torch.tensor([0.6, 0.8])}
    >>> cohort = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    >>> as_norm([0.6], ["a"], ["b"], emb, cohort, top_k=2).round(3)
    array([-0.4])
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1 or not len(scores) == len(enrol_ids) == len(test_ids):
        raise ValueError(
            f"scores {scores.shape}, enrol_ids ({len(enrol_ids)}) and "
            f"test_ids ({len(test_ids)}) must be 1-D of one length"
        )
    cohort = torch.as_tensor(cohort).detach().to("cpu", torch.float32)
    if cohort.ndim != 2 or len(cohort) < 2:
        raise ValueError(
            f"cohort must be (C, D) with C >= 2, got {tuple(cohort.shape)}"
        )
    if top_k is not None and not 2 <= top_k <= len(cohort):
        raise ValueError(
            f"top_k must be in [2, cohort size {len(cohort)}], got {top_k}"
        )
    ids, inverse = _index(list(enrol_ids) + list(test_ids))
    matrix = _stack(embeddings, ids, "as_norm")
    if matrix.shape[1] != cohort.shape[1]:
        raise ValueError(
            f"cohort has dimension {cohort.shape[1]}, embeddings "
            f"{matrix.shape[1]}"
        )
    mean, std = _cohort_stats(
        matrix, F.normalize(cohort, dim=1), top_k, chunk_size
    )
    mean, std = mean.double().numpy(), std.double().numpy()
    enrol, test = inverse[: len(scores)], inverse[len(scores) :]
    return 0.5 * (
        (scores - mean[enrol]) / std[enrol] + (scores - mean[test]) / std[test]
    )


def s_norm(
    scores,
    enrol_ids: Sequence[str],
    test_ids: Sequence[str],
    embeddings: Dict[str, torch.Tensor],
    cohort: torch.Tensor,
    top_k: Optional[int] = None,
) -> np.ndarray:
    """S-norm (whole cohort); same as ``as_norm``, which it calls.

    Arguments
    ---------
    scores : array-like
        Raw cosine score per trial, shape ``(n,)``.
    enrol_ids : sequence of str
        Enrolment ID per trial.
    test_ids : sequence of str
        Test ID per trial.
    embeddings : dict
        Utterance ID to embedding.
    cohort : torch.Tensor
        Cohort embeddings, shape ``(C, D)``.
    top_k : int, optional
        If given, adaptive S-norm over the top_k cohort scores.

    Returns
    -------
    numpy.ndarray
        Normalised score per trial.

    Example
    -------
    >>> emb = {"a": torch.tensor([1.0, 0.0]), "b": torch.tensor([0.0, 1.0])}
    >>> cohort = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> s_norm([0.0], ["a"], ["b"], emb, cohort)
    array([-1.])
    """
    return as_norm(scores, enrol_ids, test_ids, embeddings, cohort, top_k)
