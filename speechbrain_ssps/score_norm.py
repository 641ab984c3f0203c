"""Score normalisation against a cohort: S-norm and adaptive S-norm.

S-norm and adaptive S-norm (AS-norm, Matejka et al., Interspeech 2017)
normalise each trial score with the statistics of the enrolment and test
embeddings scored against a cohort (typically training embeddings).

Authors
-------
* SSPS contributors 2025
"""

from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from speechbrain_ssps.trials import _index, _stack


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
    scores, enrol_ids, test_ids, embeddings, cohort
        The trials' raw scores, their enrolment and test IDs, the
        embeddings and the cohort, as in ``as_norm``.
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
